"Tests for melanoma.evaluate: bootstrap AUC, operating points, subgroups, report files, the CLI from --preds."
import json
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from melanoma.core import MelanomaError
from melanoma.metrics import bootstrap_auc, operating_points, at_threshold


from melanoma.evaluate import subgroup_table, evaluate
def fake_preds(n=400, prev=0.3, sep=1.5, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prev).astype(int)
    logit = rng.normal(size=n) + sep * y - 1
    return pd.DataFrame({'image_id': [f'ISIC_{i:07d}' for i in range(n)], 'target': y, 'pred': 1 / (1 + np.exp(-logit)),
                         'site': rng.choice(['torso', 'head/neck', ''], n), 'sex': rng.choice(['male', 'female'], n),
                         'age': rng.choice([25., 50, 80, np.nan], n), 'source': 'siim2020'})


def test_known_auc_and_interval():
    # perfectly separated scores: AUC 1 and a degenerate interval at 1
    y = np.r_[np.zeros(50), np.ones(20)]
    p = np.r_[np.linspace(0, .4, 50), np.linspace(.6, 1, 20)]
    lo, hi, _ = bootstrap_auc(y, p, n_boot=200)
    assert lo == hi == 1.0
    # binormal scores with unit variances, shift d: AUC = Phi(d / sqrt 2)
    from scipy.stats import norm
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(3000), np.ones(3000)]
    s = np.r_[rng.normal(size=3000), rng.normal(1, 1, 3000)]
    lo, hi, _ = bootstrap_auc(y, s, n_boot=300)
    assert lo < norm.cdf(1 / np.sqrt(2)) < hi and lo < roc_auc_score(y, s) < hi


def test_thresholds_reach_sensitivity():
    d = fake_preds(300, seed=3)
    for _, r in operating_points(d.target, d.pred, (0.8, 0.9, 0.95)).iterrows():
        got = at_threshold(d.target, d.pred, r.threshold)
        assert got['sensitivity'] >= r.target_sensitivity
        assert np.isclose(got['specificity'], r.specificity)


def test_subgroups():
    d = fake_preds(200)
    d.loc[d.site == 'torso', 'target'] = 0
    st = subgroup_table(d)
    torso = st.query("variable == 'site' and group == 'torso'").iloc[0]
    assert torso.positives == 0 and np.isnan(torso.auc)
    assert st.query("variable == 'site'").n.sum() == 200
    assert 'unknown' in set(st.query("variable == 'age_band'").group)


def test_report_files(tmp_path):
    m = evaluate(fake_preds(), 'run', tmp_path, n_boot=100)
    for f in ['report.md', 'report.html', 'metrics.json', 'roc.png', 'pr.png', 'calibration.png', 'histogram.png']:
        assert (tmp_path / 'run' / f).stat().st_size > 0
    assert m['auc_ci95'][0] <= m['auc'] <= m['auc_ci95'][1]
    assert json.loads((tmp_path / 'run' / 'metrics.json').read_text())['n'] == 400


def test_cli_from_preds(tmp_path, monkeypatch, capsys):
    from melanoma.cli import main
    monkeypatch.chdir(tmp_path)
    fake_preds(150)[['image_id', 'target', 'pred']].rename(columns={'image_id': 'image_name'}).to_csv('valid.csv', index=False)
    assert main(['evaluate', '--preds', 'valid.csv', '--threshold', '0.3', '--n-boot', '100']) == 0
    assert 'AUC' in capsys.readouterr().out
    js = json.loads((tmp_path / 'reports/valid/metrics.json').read_text())
    assert js['at_threshold']['threshold'] == 0.3 and js['n'] == 150
    assert (tmp_path / 'reports/valid/roc.png').stat().st_size > 0


def test_cli_errors(tmp_path, monkeypatch):
    from melanoma.cli import main
    monkeypatch.chdir(tmp_path)
    pd.DataFrame({'image_name': ['a', 'b'], 'target': [0.2, 0.7]}).to_csv('sub.csv', index=False)
    with pytest.raises(SystemExit, match='sub.csv'): main(['evaluate', '--preds', 'sub.csv'])  # a submission needs --data
    fake_preds(20).assign(target=1).to_csv('one.csv', index=False)
    with pytest.raises(SystemExit, match='one.csv'): main(['evaluate', '--preds', 'one.csv'])


def test_submission_with_labels(sample_data, tmp_path, monkeypatch):
    "A submission-style CSV (image_name,target=prediction) scored against a labelled data folder."
    from melanoma.data import read_dataset
    from melanoma.evaluate import evaluate_cli
    df = read_dataset(sample_data, 'train')
    rng = np.random.default_rng(0)
    pd.DataFrame({'image_name': df.image_id, 'target': np.clip(df.target.astype(float) * .5 + rng.random(len(df)) * .6, 0, 1)}
                 ).to_csv(tmp_path / 'sub.csv', index=False)
    evaluate_cli(preds=str(tmp_path / 'sub.csv'), data=str(sample_data), out_dir=str(tmp_path / 'r'), n_boot=50)
    js = json.loads((tmp_path / 'r/sub/metrics.json').read_text())
    assert js['n'] == len(df) and js['auc'] > 0.6
    assert {s['variable'] for s in js['subgroups']} >= {'site', 'sex', 'age_band', 'source'}


def test_real_fold_report(siim_mini, tmp_path):
    "On a few dozen real SIIM-ISIC images: a (random, tiny) model scored on validation fold 0 writes a full report."
    import torch
    from melanoma.model import create_model, save_model
    from melanoma.data import read_dataset
    from melanoma.folds import make_folds, save_folds
    from melanoma.evaluate import evaluate_cli
    data = tmp_path / 'siim'
    data.mkdir()
    t = pd.read_csv(siim_mini / 'train.csv')
    t = pd.concat([t[t.target == 1].head(24), t[t.target == 0].head(24)])
    t.to_csv(data / 'train.csv', index=False)
    (data / 'jpeg').mkdir()
    (data / 'jpeg' / 'train').symlink_to(siim_mini / 'jpeg' / 'train')
    df = read_dataset(data)
    assert len(df) == 48
    save_folds(make_folds(df, 2), data)
    torch.manual_seed(0)
    save_model([create_model('resnet10t', pretrained=False)], tmp_path / 'run', {'size': 32})
    evaluate_cli(model=[str(tmp_path / 'run')], data=str(data), fold=0, out_dir=str(tmp_path / 'r'), n_boot=100)
    rep = tmp_path / 'r' / 'run-fold0'
    for f in ['report.html', 'report.md', 'metrics.json', 'roc.png', 'pr.png', 'calibration.png', 'histogram.png']:
        assert (rep / f).stat().st_size > 0
    js = json.loads((rep / 'metrics.json').read_text())
    assert 0 < js['positives'] < js['n'] < 48


def test_oof_by_population_with_training_metadata(sample_data, tmp_path, capsys):
    "--oof: 2020 rows and held-out extra rows (once per fold model) scored apart; subgroups from the training folders."
    from melanoma.data import read_dataset
    from melanoma.evaluate import evaluate_cli
    from melanoma.metrics import calibration_error
    df = read_dataset(sample_data, 'train')
    rng = np.random.default_rng(0)
    a = pd.DataFrame({'image_id': df.image_id, 'target': df.target.astype(int), 'fold': np.arange(len(df)) % 2, 'source': 'siim2020',
                      'pred': np.clip(df.target.astype(float) * .4 + rng.random(len(df)) * .6, 0, 1)})
    b = fake_preds(50, prev=0.4, seed=5)[['image_id', 'target', 'pred']].assign(source='isic2019')
    b['image_id'] = 'ISIC_8' + b.image_id.str[6:]
    oof = pd.concat([a, b.assign(fold=0), b.assign(fold=1, pred=1 - b.pred)], ignore_index=True)
    run = tmp_path / 'run'; run.mkdir()
    oof.to_csv(run / 'oof.csv', index=False)
    (run / 'config.json').write_text(json.dumps({'train_args': {'data': str(sample_data), 'extra': [str(tmp_path / 'isic-2019-gone')]}}))
    evaluate_cli(model=[str(run)], oof=True, out_dir=str(tmp_path / 'r'), n_boot=50)
    out = capsys.readouterr().out
    assert 'siim2020: AUC' in out and 'isic2019: AUC – (one class)' not in out and 'ECE' in out
    js = json.loads((tmp_path / 'r/run-oof/metrics.json').read_text())
    s20, s19 = js['sources']['siim2020'], js['sources']['isic2019']
    assert js['population'] == 'siim2020' and js['auc'] == s20['auc'] and s20['n'] == len(df) and s19['n'] == 50
    assert np.isclose(s20['auc'], roc_auc_score(a.target, a.pred)) and np.isclose(s19['brier'], ((0.5 - b.target) ** 2).mean())
    assert np.isclose(s20['ece'], calibration_error(a.target, a.pred))
    groups = {(g['variable'], g['group']) for g in s20['subgroups']}
    assert {('sex', 'male'), ('sex', 'female')} <= groups and any(v == 'site' and g != 'unknown' for v, g in groups)
    assert {g['group'] for g in s19['subgroups'] if g['variable'] == 'sex'} == {'unknown'}  # its folder is missing here
    md = (tmp_path / 'r/run-oof/report.md').read_text()
    assert 'isic-2019-gone' in md and '## Population siim2020' in md and '## Population isic2019' in md
    # --fold keeps the rows each fold's network scored: half the 2020 images, and the extra images as fold 1 saw them
    evaluate_cli(model=[str(run)], oof=True, fold=1, out_dir=str(tmp_path / 'r'), n_boot=50)
    js = json.loads((tmp_path / 'r/run-oof-fold1/metrics.json').read_text())
    assert js['sources']['siim2020']['n'] == (a.fold == 1).sum() and js['sources']['isic2019']['n'] == 50
    assert np.isclose(js['sources']['isic2019']['auc'], roc_auc_score(b.target, 1 - b.pred))
    # several runs take the same forms as in `predict`: `--model A B` or `--model A --model B`
    from melanoma.cli import main
    for args in (['--model', str(run), str(run)], ['--model', str(run), '--model', str(run)]):
        assert main(['evaluate', *args, '--oof', '--out-dir', str(tmp_path / 'r2'), '--n-boot', '20', '--name', 'two']) == 0
        assert f'Out-of-fold predictions of {run}, {run}' in (tmp_path / 'r2/two/report.md').read_text()


def test_calibration_error():
    from melanoma.metrics import calibration_error
    y = np.r_[np.zeros(80), np.ones(20)]
    assert calibration_error(y, np.full(100, 0.2)) == pytest.approx(0)
    assert calibration_error(y, np.full(100, 0.5)) == pytest.approx(0.3)
    assert calibration_error(y, y) == 0 and calibration_error(y, 1 - y) == 1


from test_inference import mc_model  # noqa: E402,F401 (the tiny multi-class model trained in the test)


def test_multiclass_model_report(mc_model, tmp_path, capsys):
    "A multi-class model on labelled data: balanced accuracy, per-class AUC and sensitivity, a confusion matrix."
    from melanoma.evaluate import evaluate_cli, diagnosis_metrics
    from melanoma.model import load_model, DIAG_CLASSES
    from melanoma.data import read_dataset
    mdir, data = mc_model
    evaluate_cli(model=[str(mdir)], data=str(data), out_dir=str(tmp_path / 'r'), n_boot=50, tta=1)
    assert 'diagnoses: balanced accuracy' in capsys.readouterr().out
    js = json.loads((tmp_path / 'r/mc/metrics.json').read_text())
    dx = js['diagnoses']
    df = read_dataset(data)
    known = df.diagnosis.isin(DIAG_CLASSES)
    assert dx['n'] == known.sum() and dx['left_out'] == (~known).sum() and 0 <= dx['balanced_accuracy'] <= 1
    assert [c['diagnosis'] for c in dx['classes']] == DIAG_CLASSES and np.array(dx['confusion']).sum() == dx['n']
    m = load_model(mdir, device='cpu')
    P = m.predict_diagnoses(df.path.tolist(), df[['sex', 'age', 'site']], progress=False)
    ref = diagnosis_metrics(df.diagnosis, P)[0]
    assert np.isclose(ref['balanced_accuracy'], dx['balanced_accuracy'])
    assert (tmp_path / 'r/mc/confusion.png').stat().st_size > 5000
    assert 'Diagnoses (multi-class head)' in (tmp_path / 'r/mc/report.md').read_text()


def test_diagnosis_metrics_errors():
    from melanoma.evaluate import diagnosis_metrics
    from melanoma.model import DIAG_CLASSES
    P = pd.DataFrame(np.full((2, 8), 1 / 8), columns=DIAG_CLASSES)
    with pytest.raises(MelanomaError, match='no image has a known diagnosis'): diagnosis_metrics(['UNK', ''], P)
    with pytest.raises(MelanomaError, match='SCC'): diagnosis_metrics(['MEL', 'NV'], P.drop(columns='SCC'))


def test_report_shows_training_curves(tmp_path):
    "A report on model folders shows the curves `melanoma train` drew, copied next to the report."
    from PIL import Image
    run = tmp_path / 'models' / 'r1'; run.mkdir(parents=True)
    for f in ('curves.png', 'curves-fold0.png', 'lr_find.png'): Image.new('RGB', (40, 30), (9, 9, 9)).save(run / f)
    m = evaluate(fake_preds(), 'x', tmp_path / 'reports', models=[run])
    md = (tmp_path / 'reports' / 'x' / 'report.md').read_text()
    assert 'Training: r1' in md and (tmp_path / 'reports' / 'x' / 'train-r1-curves-fold0.png').is_file()
    assert 'train-r1-lr_find.png' in md and m['report'].endswith('report.html')
