"""Tests for melanoma.card: the model card of a real `train --debug` run on `melanoma sample-data`, of a hand-made run
with SIIM-ISIC 2020 and ISIC 2019 populations (licences, counts, bootstrap intervals, the Hub's reading of the front
matter), and `melanoma push` against a Hub replaced at its API boundary."""
import inspect, json, shutil, sys, types
from pathlib import Path
import numpy as np, pandas as pd, pytest
from melanoma.card import (DATASETS, card_license, front_matter, model_card, population_scores, push_cli, training_data,
                           write_model_card, yaml_lines)
from melanoma.core import MelanomaError, safe_auc
from melanoma.metrics import bootstrap_auc, oof_by_image, operating_point
from melanoma.model import create_model, save_model

TOKEN = 'hf_SecretTokenValue1234567890'


def split_card(text: str) -> tuple[dict, str]:
    "The card's front matter (parsed by PyYAML, as the Hub parses it) and its markdown."
    yaml = pytest.importorskip('yaml')
    assert text.startswith('---\n')
    head, body = text[4:].split('\n---\n', 1)
    return yaml.safe_load(head), body


@pytest.fixture(scope='module')
def debug_run(sample_data, tmp_path_factory) -> Path:
    "A real `melanoma train --debug` run on the synthetic sample data."
    from melanoma.train import train
    tmp = tmp_path_factory.mktemp('card')
    data = Path(shutil.copytree(sample_data, tmp / 'siim'))
    return train(data, name='dbg', debug=True, models_dir=tmp / 'models', progress=False)


def test_card_of_a_debug_run(debug_run):
    import melanoma.train
    if 'write_model_card' not in inspect.getsource(melanoma.train): write_model_card(debug_run)  # until `train` writes it
    text = (debug_run / 'README.md').read_text()
    meta, body = split_card(text)
    assert meta['license'] == 'apache-2.0' == card_license(debug_run)  # synthetic images only: the project's licence
    assert meta['library_name'] == 'melanoma' and {'melanoma', 'dermoscopy', 'fastai', 'timm'} <= set(meta['tags'])
    assert meta['datasets'] == [] and meta['model-index'][0]['results'][0]['dataset']['type'] == 'synthetic'
    assert 'forbids commercial use' not in body
    oof = oof_by_image(pd.read_csv(debug_run / 'oof.csv'))
    td = training_data(debug_run)
    assert td[['dataset', 'role', 'folder', 'source', 'license']].values.tolist() == [['synthetic', 'main', 'siim', 'siim2020', 'apache-2.0']]
    assert (td.images[0], td.melanomas[0]) == (len(oof), oof.target.sum())
    cfg = json.loads((debug_run / 'config.json').read_text())
    for needle in ('Research software, not a medical device', 'A smoke-test run', 'Trained on synthetic images',
                   f"| Synthetic images (`melanoma sample-data`) | main | `siim` | Apache-2.0 | {len(oof)} | {int(oof.target.sum())} |",
                   f"{100 * cfg['train_prevalence']:.2f}%", '--prevalence', '## Operating point', '## Intended use',
                   '## Limitations and out-of-scope use', '| `arch` | `"tf_efficientnet_lite0"` |', '| `epochs` |', '| `debug` | `true` |',
                   '`fold0.safetensors`', '`fold1.safetensors`', 'models/dbg'):
        assert needle in body, needle
    assert '/siim' not in body.split('## Model and recipe')[1]  # no absolute paths of the training machine in the recipe
    assert model_card(debug_run) == text  # the same files give the same card


@pytest.fixture
def two_populations(tmp_path) -> Path:
    "A hand-made run: SIIM-ISIC 2020 main data and ISIC 2019 extra data (folders not on this machine), extra images scored by both folds."
    rng = np.random.default_rng(0)
    n_main, n_extra = 400, 150
    y = np.r_[rng.random(n_main) < 0.1, rng.random(n_extra) < 0.3].astype(int)
    p = np.clip(0.1 + 0.3 * y + rng.normal(0, 0.15, len(y)), 0.001, 0.999)
    ids = [f'ISIC_{i:07d}' for i in range(len(y))]
    main = pd.DataFrame(dict(image_id=ids[:n_main], target=y[:n_main], pred=p[:n_main], fold=np.arange(n_main) % 2, source='siim2020'))
    extra = pd.DataFrame(dict(image_id=ids[n_main:], target=y[n_main:], pred=p[n_main:], source='isic2019'))
    oof = pd.concat([main, extra.assign(fold=0), extra.assign(fold=1, pred=np.clip(extra.pred + 0.02, 0, 1))], ignore_index=True)
    run = tmp_path / 'models' / 'two'
    save_model([create_model('resnet18', pretrained=False) for _ in range(2)], run, config=dict(
        name='two', size=64, train_prevalence=0.15, operating_point=operating_point(oof, prevalence=0.15),
        train_args=dict(data='/data/siim-isic-2020', extra=['/data/isic-2019-mini'], arch='resnet18', epochs=8)))
    oof[['image_id', 'target', 'pred', 'fold', 'source']].to_csv(run / 'oof.csv', index=False)
    img = oof_by_image(oof)
    (run / 'oof_auc.json').write_text(json.dumps(dict(auc=safe_auc(main.target, main.pred), folds={'0': 0.8, '1': 0.82},
                                                      sources={s: safe_auc(g.target, g.pred) for s, g in img.groupby('source')})))
    return run


def test_card_of_two_populations(two_populations):
    run = two_populations
    td = training_data(run)
    img = oof_by_image(pd.read_csv(run / 'oof.csv'))
    assert td[['dataset', 'role', 'folder', 'license']].values.tolist() == [
        ['siim2020', 'main', 'siim-isic-2020', 'cc-by-nc-4.0'], ['isic2019', 'extra', 'isic-2019-mini', 'cc-by-nc-4.0']]
    assert td.images.tolist() == [400, 150]  # the extra images scored by both folds count once
    assert td.melanomas.tolist() == [img[img.source == s].target.sum() for s in ('siim2020', 'isic2019')]
    assert card_license(run) == 'cc-by-nc-4.0'
    sc = population_scores(run).set_index('source')
    for s, g in img.groupby('source'):
        lo, hi, _ = bootstrap_auc(g.target, g.pred, n_boot=1000, seed=0)
        assert sc.loc[s, 'auc'] == pytest.approx(safe_auc(g.target, g.pred)) and (sc.loc[s, 'auc_low'], sc.loc[s, 'auc_high']) == pytest.approx((lo, hi))
        assert lo < sc.loc[s, 'auc'] < hi
    text = write_model_card(run).read_text()
    meta, body = split_card(text)
    assert meta['license'] == 'cc-by-nc-4.0' and meta['datasets'] == ['siim-isic-2020', 'isic-2019']
    res = meta['model-index'][0]['results']
    assert [(r['dataset']['type'], r['metrics'][0]['type']) for r in res] == [('isic-2019', 'roc_auc'), ('siim-isic-2020', 'roc_auc')]
    assert [r['metrics'][0]['value'] for r in res] == [round(sc.loc[s, 'auc'], 4) for s in ('isic2019', 'siim2020')]
    row = sc.loc['siim2020']
    assert f"| SIIM-ISIC Melanoma Classification 2020 (main data) | 400 | {int(row.melanomas)} | {row.auc:.4f} | {row.auc_low:.4f}–{row.auc_high:.4f} |" in body
    assert 'fold 0: 0.8000, fold 1: 0.8200' in body and 'non-commercial' in body and 'forbids commercial use' in body and 'includes the HAM10000 images' in body
    op = json.loads((run / 'config.json').read_text())['operating_point']
    assert f"Threshold **{op['threshold']:.4f}**" in body and '| ISIC 2019 Challenge training set | 150 |' in body.split('## Operating point')[1]


def test_hub_reads_the_front_matter(two_populations):
    hh = pytest.importorskip('huggingface_hub')
    card = hh.ModelCard(model_card(two_populations))
    assert card.data.license == 'cc-by-nc-4.0' and card.data.library_name == 'melanoma'
    assert sorted(r.dataset_type for r in card.data.eval_results) == ['isic-2019', 'siim-isic-2020']


def test_licence_is_the_most_restrictive(two_populations, tmp_path):
    oof = pd.read_csv(two_populations / 'oof.csv')
    oof.loc[oof.source == 'isic2019', 'source'] = 'ham10000'
    oof.to_csv(two_populations / 'oof.csv', index=False)
    assert card_license(two_populations) == 'cc-by-nc-sa-4.0'
    bare = tmp_path / 'bare'
    save_model(create_model('resnet18', pretrained=False), bare)
    assert card_license(bare) == 'other' and 'Not recorded' in model_card(bare)
    meta, body = split_card(model_card(bare))
    assert meta['license'] == 'other' and 'model-index' not in meta and 'No out-of-fold scores recorded' in body


def test_yaml_values_read_back_as_written():
    yaml = pytest.importorskip('yaml')
    o = {'a': ['no', 'yes', '1.0', 'on', 'x: y', '# c', 'plain-word', 'ünï', True, None, 3, 0.5], 'b': [], 'c': {}, 'd': [[1, 2], {'e': 'f'}]}
    assert yaml.safe_load('\n'.join(yaml_lines(o))) == o


def test_datasets_and_licences():
    assert {k: v['license'] for k, v in DATASETS.items()} == {'siim2020': 'cc-by-nc-4.0', 'isic2019': 'cc-by-nc-4.0', 'ham10000': 'cc-by-nc-sa-4.0',
                                                             'synthetic': 'apache-2.0', 'unknown': 'other'}


class FakeApi:
    "Records the calls of `HfApi`; raises `fail` when set."
    calls, fail = [], None
    def create_repo(self, repo_id, **kw):
        FakeApi.calls.append(('create_repo', repo_id, kw))
        if FakeApi.fail: raise FakeApi.fail
    def upload_folder(self, *, repo_id, allow_patterns=None, **kw):
        FakeApi.calls.append(('upload_folder', repo_id, {**kw, 'allow_patterns': allow_patterns}))
        return types.SimpleNamespace(oid='c0ffee')


@pytest.fixture
def fake_hub(monkeypatch):
    FakeApi.calls, FakeApi.fail = [], None
    monkeypatch.setitem(sys.modules, 'huggingface_hub', types.SimpleNamespace(HfApi=FakeApi))
    monkeypatch.setenv('HF_TOKEN', TOKEN)
    return FakeApi


def test_push_writes_a_missing_card_then_uploads(two_populations, fake_hub, capsys):
    run = two_populations
    (run / 'checkpoint-fold1.safetensors').write_bytes(b'resume state')
    push_cli(model=str(run), repo='me/two')
    out = capsys.readouterr().out
    assert 'wrote the model card' in out and 'load it with --model hf://me/two@c0ffee' in out and TOKEN not in out
    assert 'hf://me/two' in (run / 'README.md').read_text()  # the usage lines name the repository
    (_, repo, kw), (_, _, up) = fake_hub.calls
    assert repo == 'me/two' and kw['private'] is True and kw['token'] is None  # the login's token: huggingface_hub finds it
    assert up['allow_patterns'] == ['README.md', 'config.json', 'fold0.safetensors', 'fold1.safetensors', 'oof.csv', 'oof_auc.json']
    push_cli(model=str(run), repo='me/two', private=False)  # the card is up to date: left as it is
    assert 'model card' not in capsys.readouterr().out and fake_hub.calls[-2][2]['private'] is False


def test_push_keeps_a_card_edited_by_hand_and_refreshes_a_generated_one(two_populations, fake_hub, capsys):
    run = two_populations
    write_model_card(run)
    push_cli(model=str(run), repo='me/two')
    assert 'updated the model card' in capsys.readouterr().out and 'hf://me/two' in (run / 'README.md').read_text()
    (run / 'README.md').write_text('---\nlicense: cc-by-nc-4.0\n---\n# my own words\n')
    push_cli(model=str(run), repo='me/two')
    assert 'kept the model card' in capsys.readouterr().out and (run / 'README.md').read_text().endswith('# my own words\n')


def test_push_errors(two_populations, fake_hub, tmp_path, capsys):
    class HfHubHTTPError(OSError):
        response = types.SimpleNamespace(status_code=401)
    fake_hub.fail = HfHubHTTPError(f'401 Client Error: Unauthorized (Authorization: Bearer {TOKEN})')
    with pytest.raises(MelanomaError, match='refused access') as e: push_cli(model=str(two_populations), repo='me/two')
    assert 'SecretToken' not in str(e.value) + capsys.readouterr().out
    with pytest.raises(MelanomaError, match='no config.json'): push_cli(model=str(tmp_path), repo='me/two')
    with pytest.raises(MelanomaError, match='write OWNER/NAME'): push_cli(model=str(two_populations), repo='two')
    with pytest.raises(MelanomaError, match='--model DIR and --repo'): push_cli(model=str(two_populations))
    with pytest.raises(MelanomaError, match='push a local model folder'): push_cli(model='hf://me/two', repo='me/three')


def test_push_command_line():
    from melanoma.cli import command_parser
    p = command_parser(push_cli, 'melanoma push', 'push')
    ns = p.parse_args(['--model', 'models/x', '--repo', 'me/x', '--no-private', '--message', 'v1'])
    assert (ns.model, ns.repo, ns.private, ns.message) == ('models/x', 'me/x', False, 'v1')
    with pytest.raises(MelanomaError, match='missing required'): p.parse_args(['--model', 'models/x'])
    assert 'token' not in p.format_help().lower()
