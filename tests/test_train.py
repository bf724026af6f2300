"Tests for melanoma.train: a --debug run end to end, the artifact round trip, extra data, negative downsampling, real data."
import json, shutil
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from melanoma.cli import main
from melanoma.core import MelanomaError
from melanoma.data import DIAGNOSES
from melanoma.model import create_model, save_model, load_model
from melanoma.train import train, train_table, fold_split

from melanoma.store import image_cache, CachedItems
from melanoma.learner import CacheDL, fold_learner, predict_rows, melanoma_prob, labels, ExtraEpochs
OUTPUTS = {'config.json', 'fold0.safetensors', 'fold1.safetensors', 'metrics.csv', 'oof.csv', 'oof_auc.json'}


@pytest.fixture
def data(sample_data, tmp_path) -> Path:
    "A private copy of the synthetic data set (train writes folds.csv and a cache into it)."
    return Path(shutil.copytree(sample_data, tmp_path / 'siim'))


def make_isic2019(src: Path, dest: Path, n: int = 24) -> Path:
    "A tiny ISIC 2019-layout folder made from `src`'s images under new ids, a third of them melanoma."
    imgs = sorted((src / 'jpeg' / 'train').glob('*.jpg'))[:n]
    (dest / 'ISIC_2019_Training_Input').mkdir(parents=True)
    ids = [f'ISIC_{1000000 + i}' for i in range(len(imgs))]
    for i, p in zip(ids, imgs): shutil.copy(p, dest / 'ISIC_2019_Training_Input' / f'{i}.jpg')
    dx = ['MEL' if j % 3 == 0 else 'NV' for j in range(len(ids))]
    pd.DataFrame({'image': ids, **{d: [int(x == d) for x in dx] for d in DIAGNOSES}}).to_csv(dest / 'ISIC_2019_Training_GroundTruth.csv', index=False)
    pd.DataFrame({'image': ids, 'age_approx': 50, 'anatom_site_general': 'anterior torso', 'lesion_id': [f'L{j // 2}' for j in range(len(ids))],
                  'sex': 'female'}).to_csv(dest / 'ISIC_2019_Training_Metadata.csv', index=False)
    return dest


def check_run(run: Path, sources=('siim2020',)):
    assert OUTPUTS <= {p.name for p in run.iterdir()}
    oof = pd.read_csv(run / 'oof.csv')
    assert list(oof.columns) == ['image_id', 'target', 'pred', 'fold', 'source']
    assert set(oof.fold) == {0, 1} and oof.pred.between(0, 1).all() and set(oof.source) == set(sources)
    met = pd.read_csv(run / 'metrics.csv')
    assert {'fold', 'epoch', 'train_loss', 'valid_loss', 'auc'} <= set(met.columns) and set(met.fold) - {-1} == {0, 1}
    res = json.loads((run / 'oof_auc.json').read_text())
    assert {'auc', 'folds', 'sources'} <= set(res) and set(res['sources']) == set(sources)
    cfg = json.loads((run / 'config.json').read_text())
    assert cfg['size'] == 64 and cfg['train_args']['debug'] and cfg['preprocessing'] == {'resize': 'squish'}
    if cfg['train_args']['meta']:  # the default: metadata fused, the main data's combinations kept for missing fields
        assert cfg['n_meta'] > 0 and cfg['meta_prior'] and {'sex', 'age', 'site', 'count'} == set(cfg['meta_prior'][0])
    runs = pd.read_csv(run.parent / 'runs.csv')
    assert run.name in set(runs.name) and {'auc', 'minutes', 'images_per_s'} <= set(runs.columns)
    return oof


def test_debug_cli_end_to_end_and_resume(data, tmp_path, capsys):
    models = tmp_path / 'models'
    assert main(['train', '--data', str(data), '--name', 'dbg', '--debug', '--models-dir', str(models)]) == 0
    run = models / 'dbg'
    check_run(run)
    assert (data / 'folds.csv').is_file()
    stamp = (run / 'fold0.safetensors').stat().st_mtime_ns
    capsys.readouterr()
    train(data, name='dbg', debug=True, models_dir=models)  # resumes: nothing left to train
    assert 'already trained' in capsys.readouterr().out and (run / 'fold0.safetensors').stat().st_mtime_ns == stamp
    with pytest.raises(MelanomaError, match='another --name'): train(data, name='dbg', arch='resnet18', debug=True, models_dir=models)
    with pytest.raises(SystemExit, match='required argument.*DATA'): main(['train', '--debug'])  # DATA, positional since issue 23


def test_extra_data_never_validated(data, tmp_path):
    extra = make_isic2019(data, tmp_path / 'isic2019')
    df = train_table(data, [extra], n_folds=2)
    assert (df.source == 'isic2019').sum() == 24 and df.fold[df.source == 'isic2019'].eq(-1).all()
    for k in range(2):
        tr, va, xe = fold_split(df, k)
        assert df.source.iloc[va].eq('siim2020').all() and df.fold.iloc[va].eq(k).all()
        assert df.source.iloc[xe].eq('isic2019').all() and not set(tr) & set(xe) and not set(tr) & set(va)
        assert (df.source.iloc[tr] == 'isic2019').sum() > 0
        # one HAM lesion's images stay on one side
        g = df.iloc[xe].group
        assert not set(g) & set(df.iloc[tr].group)
    run = train(data, name='x', extra=[str(extra)], pretrain_epochs=0, debug=True, models_dir=tmp_path / 'm', progress=False)
    oof = check_run(run, ('siim2020', 'isic2019'))
    met = pd.read_csv(run / 'metrics.csv')
    assert len(met) == 2


def test_negative_downsampling_redraws_each_epoch(data):
    df = train_table(data, n_folds=2)
    x, ok = image_cache(df, 32)
    y = labels(df)
    ds = CachedItems(x, y, df.target.to_numpy(), np.arange(len(df)))
    npos = int(df.target.sum())
    dl = CacheDL(ds, neg_ratio=1, bs=8, shuffle=True)
    assert dl.n == 2 * npos
    epochs = [torch.cat([b[1] for b in dl]).view(-1) for _ in range(2)]
    assert all(len(e) == 2 * npos and e.sum() == npos for e in epochs)
    draws = [frozenset(dl.get_idxs()) for _ in range(4)]
    assert len(set(draws)) == 4 and all(set(np.flatnonzero(df.target.to_numpy())) <= d for d in draws)


def test_extra_data_sampled_each_epoch(data):
    "With `extra_ratio`, every main-data item is used each epoch and a fresh sample of extra items, capped by the ratio."
    df = train_table(data, n_folds=2)
    x, ok = image_cache(df, 32)
    ds = CachedItems(x, labels(df), df.target.to_numpy(), np.arange(len(df)))
    extra = np.zeros(len(df), bool); extra[: len(df) * 3 // 4] = True   # pretend 3/4 of the rows are extra data
    n_main = int((~extra).sum())
    dl = CacheDL(ds, extra=extra, extra_ratio=1., bs=8, shuffle=True)
    assert dl.n == 2 * n_main and len(dl) == -(-2 * n_main // 8)
    draws = [dl.get_idxs() for _ in range(4)]
    assert all(len(d) == 2 * n_main and set(np.flatnonzero(~extra)) <= set(d) and extra[d].sum() == n_main for d in draws)
    assert len({frozenset(d) for d in draws}) > 1   # the extra sample is redrawn
    assert CacheDL(ds, extra=extra, extra_ratio=None, bs=8).n == len(df)   # no ratio: everything, every epoch


def test_artifact_round_trip_same_predictions(data, tmp_path):
    df = train_table(data, n_folds=2)
    x, ok = image_cache(df, 64)
    tr, va, _ = fold_split(df, 0)
    for head, meta in (('binary', False), ('multiclass', True)):
        torch.manual_seed(0)
        net = create_model('resnet18', n_out=1 if head == 'binary' else 9, pretrained=False, n_meta=10 if meta else 0)
        learn = fold_learner(x, df, tr, va, net, bs=16, head=head, meta=meta, precision='fp32')
        with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(1, 1e-3)
        p = predict_rows(learn, x, df, va, meta=meta, head=head)
        run = tmp_path / head
        learn.model.to(memory_format=torch.contiguous_format)
        save_model(learn.model, run, {'size': 64}, fold=0)
        m = load_model(run, device='cpu')
        b = learn.dls.valid.new(CachedItems(x, labels(df, head), df.target.to_numpy(), va, None if not meta else
                                            __import__('melanoma.model', fromlist=['x']).meta_frame_to_tensor(df), 1), bs=len(va)).one_batch()
        with torch.no_grad():
            q = melanoma_prob(m.nets[0](*b[:-1])).numpy()
            r = melanoma_prob(learn.model.eval()(*b[:-1])).numpy()
        np.testing.assert_allclose(q, r, atol=1e-5)
        np.testing.assert_allclose(q, p, atol=1e-5)
        # and through MelanomaModel.predict from the image files (decoding and resizing like training)
        meta_df = df.iloc[va][['sex', 'age', 'site']].reset_index(drop=True) if meta else None
        f = m.predict(df.path.iloc[va].tolist(), meta=meta_df, progress=False)
        np.testing.assert_allclose(f, p, atol=1e-5)


def test_real_data_short_run(siim_mini, isic2019_mini, tmp_path, monkeypatch):
    monkeypatch.setenv('MELANOMA_CACHE', str(tmp_path / 'cache'))  # the shared data folders are read-only
    run = train(siim_mini, name='real', extra=[str(isic2019_mini)], debug=True, models_dir=tmp_path / 'models', progress=False)
    check_run(run, ('siim2020', 'isic2019'))
    assert not (Path(siim_mini) / 'folds.csv').exists() or (Path(siim_mini) / 'folds.csv').stat().st_mtime < run.stat().st_mtime


def test_extra_epochs_then_main_data_only():
    "ExtraEpochs(n): extra images are drawn in the first n epochs only; the loader is restored after the fit."
    from types import SimpleNamespace
    t = np.array([1, 0, 0, 0] + [1, 0] * 4)
    extra = np.arange(12) >= 4
    dl = CacheDL(CachedItems(torch.zeros(12, 3, 8, 8, dtype=torch.uint8), torch.tensor(t, dtype=torch.float32)[:, None], t, np.arange(12)),
                 extra=extra, extra_ratio=0.5, bs=2, shuffle=True)
    assert dl.n == 6
    cb = ExtraEpochs(1)
    cb.learn = SimpleNamespace(dls=SimpleNamespace(train=dl), epoch=0)
    cb.before_fit(); cb.before_epoch()
    idx = list(dl.get_idxs())
    assert len(idx) == 6 and sum(extra[i] for i in idx) == 2
    cb.learn.epoch = 1; cb.before_epoch()
    idx = list(dl.get_idxs())
    assert sorted(idx) == [0, 1, 2, 3]
    cb.after_fit()
    assert dl.n == 6 and dl.n_ext == 2


def test_freeze_epochs_recorded(data, tmp_path):
    run = train(data, name='fz', debug=True, freeze_epochs=1, models_dir=tmp_path / 'm', progress=False)
    met = pd.read_csv(run / 'metrics.csv')
    assert list(met.stage) == ['frozen', 'full'] * 2 and list(met.epoch) == [0, 1] * 2
    cfg = json.loads((run / 'config.json').read_text())['train_args']
    assert cfg['freeze_epochs'] == 1 and cfg['main_only_epochs'] == 3 and cfg['tta'] == 8


def test_precision_callbacks_on_cpu():
    "CPU default: channels-last fp32 (measured fastest); bf16 autocast on request; fp16 needs a GPU."
    from melanoma.learner import precision_cbs, ChannelsLastInput, CPUMixedPrecision, PlainInput
    cpu = torch.device('cpu')
    assert [type(c) for c in precision_cbs('auto', cpu)] == [ChannelsLastInput]
    assert [type(c) for c in precision_cbs('fp32', cpu, channels_last=False)] == [PlainInput]
    assert CPUMixedPrecision in [type(c) for c in precision_cbs('bf16', cpu)]
    with pytest.raises(MelanomaError, match='GPU'): precision_cbs('fp16', cpu)
    with pytest.raises(MelanomaError, match='precision'): precision_cbs('fp64', cpu)


def test_pretrain_on_extra_then_folds(data, tmp_path):
    "--pretrain-epochs: one model on the extra data alone, every fold starts from it; extra fold 0 is held out and scored by every fold."
    extra = make_isic2019(data, tmp_path / 'isic2019')
    kw = dict(name='pre', extra=[str(extra)], pretrain_epochs=1, debug=True, models_dir=tmp_path / 'm', progress=False)
    run = train(data, **kw)
    assert (run / 'pretrain.safetensors').is_file()
    met = pd.read_csv(run / 'metrics.csv')
    assert list(met.stage) == ['pretrain', 'full', 'full'] and list(met.fold) == [-1, 0, 1]
    oof = pd.read_csv(run / 'oof.csv', dtype={'image_id': str})
    ext = oof[oof.source == 'isic2019']
    assert len(ext) and set(ext.fold) == {0, 1} and set(ext.image_id[ext.fold == 0]) == set(ext.image_id[ext.fold == 1])
    df = train_table(data, [extra])
    assert set(ext.image_id) <= set(df.image_id[(df.fold < 0)])
    cfg = json.loads((run / 'config.json').read_text())
    assert cfg['train_args']['pretrain_epochs'] == 1 and cfg['train_args']['replay'] == 1.5
    assert cfg['train_args']['pretrain_head'] == 'multiclass'  # the default: stage 1 learns the extra data's diagnoses
    from safetensors.torch import load_file
    assert load_file(str(run / 'pretrain.safetensors'))['head.1.weight'].shape[0] == 9  # one output per diagnosis
    assert load_file(str(run / 'fold0.safetensors'))['head.1.weight'].shape[0] == 1   # the folds: a fresh melanoma head
    assert 0 < cfg['train_prevalence'] < 1
    res = json.loads((run / 'oof_auc.json').read_text())
    assert res['n']['isic2019'] == ext.image_id.nunique()  # the held-out images are scored once each: the fold models' mean
    stamp = (run / 'pretrain.safetensors').stat().st_mtime_ns
    (run / 'fold1.safetensors').unlink()
    with pytest.raises(MelanomaError, match='lr=None; delete it'):  # other stage-1 settings: not silently reused
        train(data, **{**kw, 'lr': 3e-3})
    with pytest.raises(MelanomaError, match="head='multiclass'; delete it"):
        train(data, **{**kw, 'pretrain_head': 'binary'})
    train(data, **kw)  # resumes fold 1 from the saved pretraining: not refitted, its metrics kept
    assert (run / 'pretrain.safetensors').stat().st_mtime_ns == stamp
    assert list(pd.read_csv(run / 'metrics.csv').stage) == ['pretrain', 'full', 'full']


def test_two_stages_without_replay_and_binary_stage1(data, tmp_path):
    "--replay 0: the folds fine-tune on the main data alone; --pretrain-head binary: stage 1 learns melanoma or not."
    extra = make_isic2019(data, tmp_path / 'isic2019')
    run = train(data, name='r0', extra=[str(extra)], pretrain_epochs=1, replay=0, pretrain_head='binary', debug=True,
                models_dir=tmp_path / 'm', progress=False)
    cfg = json.loads((run / 'config.json').read_text())
    assert cfg['train_prevalence'] == pytest.approx(0.5, abs=0.15)  # the debug subset is half melanomas; no extra image is replayed
    from safetensors.torch import load_file
    assert load_file(str(run / 'pretrain.safetensors'))['head.1.weight'].shape[0] == 1  # one melanoma logit
    with pytest.raises(MelanomaError, match='replay'): train(data, name='bad', replay=-1, debug=True, models_dir=tmp_path / 'm')


def test_image_cache_reused_across_path_spellings(data, tmp_path, monkeypatch):
    "The same file named by a relative or an absolute path is one cache entry: a second run decodes nothing."
    import melanoma.store as T
    df = train_table(data).head(6)
    x1, ok1 = image_cache(df, 32, tmp_path / 'c')
    calls = []
    monkeypatch.setattr(T, '_load_many', lambda paths, *a, **k: calls.append(paths) or (_ for _ in ()).throw(AssertionError('decoded again')))
    monkeypatch.chdir(data)
    rel = df.assign(path=[str(Path('.') / Path(p).relative_to(data)) for p in df.path])
    x2, ok2 = image_cache(rel, 32, tmp_path / 'c')
    assert not calls and torch.equal(x1, x2) and (ok1 == ok2).all()



def test_meta_dropout_hides_fields_in_training_only():
    "MetaDropout: p=1 makes every training row 'unknown' (as a blank CSV row encodes); p=0 and validation batches are untouched."
    from types import SimpleNamespace
    from melanoma.model import meta_frame_to_tensor
    from melanoma.learner import MetaDropout
    df = pd.DataFrame(dict(sex=['male', 'female'] * 50, age=[40., 70.] * 50, site=['torso', 'head/neck'] * 50))
    m = meta_frame_to_tensor(df)
    blank = meta_frame_to_tensor(pd.DataFrame(dict(sex=[''], age=[float('nan')], site=[None])))[0]
    def run(p, training=True):
        cb = MetaDropout(p); cb.learn = SimpleNamespace(xb=(torch.zeros(100, 3, 4, 4), m.clone()), training=training)
        cb.before_batch(); return cb.learn.xb[1]
    assert torch.equal(run(1.), blank.expand_as(m)) and torch.equal(run(0.), m) and torch.equal(run(1., training=False), m)
    torch.manual_seed(0)
    half = run(0.5)
    for g in MetaDropout(0.5).groups:  # each field is either kept or blanked, and both happen
        kept, hidden = (half[:, g] == m[:, g]).all(1), (half[:, g] == blank[g]).all(1)
        assert (kept | hidden).all() and kept.any() and hidden.any()


def test_one_log_line_per_epoch_outside_a_terminal(data, tmp_path, capsys):
    "Redirected output (not a TTY): a line per epoch instead of fastai's bar redraws and tables; the same lines in train.log."
    run = train(data, name='log', debug=True, freeze_epochs=1, models_dir=tmp_path / 'm')
    out = capsys.readouterr().out
    lines = [l for l in out.splitlines() if ' epoch ' in l]
    assert '\r' not in out and not any(l.startswith('[') for l in out.splitlines())  # no redraws, no fastai table rows
    assert len(lines) == 4 and lines == (run / 'train.log').read_text().splitlines()  # 2 folds x (frozen + full)
    assert ' fold 0 frozen epoch 1/1: train_loss ' in lines[0] and ' fold 1 full epoch 2/2: ' in lines[-1]
    assert all(' valid_loss ' in l and ' auc ' in l and l.endswith(' s)') for l in lines)


def test_out_of_memory_names_a_batch_size_that_fits(data, tmp_path, monkeypatch):
    "A CUDA out-of-memory error (simulated on the CPU: the network refuses training batches over 8) becomes a MelanomaError naming --bs 8."
    import melanoma.train as T
    real = T.create_model
    def small_memory(*a, **k):
        net = real(*a, **k); forward = net.forward
        def limited(x, *rest):
            if len(x) > 8 and torch.is_grad_enabled(): raise torch.OutOfMemoryError('CUDA out of memory. Tried to allocate 2.00 GiB')
            return forward(x, *rest)
        net.forward = limited
        return net
    monkeypatch.setattr(T, 'create_model', small_memory)
    with pytest.raises(MelanomaError, match=r'out of memory training with --bs 32 at 64 px .*--bs 8 fits \(add --accum 4'):
        train(data, name='oom', debug=True, bs=32, models_dir=tmp_path / 'm', progress=False)
    run = train(data, name='oom', debug=True, bs=8, models_dir=tmp_path / 'm', progress=False)  # the batch size it named
    assert (run / 'fold1.safetensors').is_file()


def test_bars_kept_in_a_terminal(monkeypatch):
    "In a terminal fastai's bars and tables stay; redirected (or with progress off) they give way to the per-epoch lines."
    import sys
    from types import SimpleNamespace
    from melanoma.learner import _quiet
    learn = SimpleNamespace(no_bar=lambda: 'no_bar', no_logging=lambda: 'no_logging')
    monkeypatch.setattr(sys.stdout, 'isatty', lambda: True)
    assert _quiet(learn, True) == [] and _quiet(learn, False) == ['no_bar', 'no_logging']
    monkeypatch.setattr(sys.stdout, 'isatty', lambda: False)
    assert _quiet(learn, True) == ['no_bar', 'no_logging']


def test_streamed_images_train_like_the_cache(data, tmp_path):
    "`--store stream` (images decoded from the files by DataLoader workers) trains exactly as the in-RAM cache: same OOF scores."
    runs = {}
    for store, workers in (('memory', None), ('stream', 2)):
        runs[store] = train(data, name=store, debug=True, store=store, loader_workers=workers, models_dir=tmp_path / 'm', progress=False)
    a, b = (pd.read_csv(runs[s] / 'oof.csv').sort_values(['fold', 'image_id']) for s in ('memory', 'stream'))
    assert list(a.image_id) == list(b.image_id)
    np.testing.assert_allclose(a.pred, b.pred, atol=1e-5)
    assert json.loads((runs['stream'] / 'config.json').read_text())['train_args'] == json.loads((runs['memory'] / 'config.json').read_text())['train_args']
    with pytest.raises(MelanomaError, match='--store'): train(data, name='bad', debug=True, store='disk', models_dir=tmp_path / 'm')


def test_precision_fits_the_gpu(monkeypatch):
    "`auto` on a GPU: bf16 where it is native (compute capability 8+), fp16 with loss scaling on a T4 (7.5), whatever `is_bf16_supported` says."
    from fastai.callback.fp16 import MixedPrecision
    import melanoma.learner as mt
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda *a, **k: True)  # recent PyTorch: True on a T4 (emulated)
    for cap, want in (((7, 5), 'fp16'), ((8, 0), 'bf16'), ((9, 0), 'bf16')):
        monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda *a, cap=cap: cap)
        mp = [c for c in mt.precision_cbs('auto', torch.device('cuda')) if isinstance(c, MixedPrecision)]
        assert len(mp) == 1 and str(mp[0].amp_mode.value) == want, (cap, mp[0].amp_mode)
    assert not [c for c in mt.precision_cbs('auto', torch.device('cpu')) if isinstance(c, MixedPrecision)]  # fp32 on the CPU


def test_unusable_models_dir_refused_before_training(data, tmp_path, monkeypatch):
    "train --models-dir naming a file (or a run folder that is a file) stops at once with one line, before any image is read."
    def boom(*a, **k): raise AssertionError('loaded the data before checking --models-dir')
    monkeypatch.setattr('melanoma.train.train_table', boom)
    f = tmp_path / 'afile'; f.write_text('x')
    with pytest.raises(SystemExit, match=f'--models-dir: cannot make folder {f}/r: {f} is not a folder'):
        main(['train', str(data), '--debug', '--models-dir', str(f), '--name', 'r'])
    (tmp_path / 'm').mkdir(); (tmp_path / 'm' / 'r').write_text('x')
    with pytest.raises(MelanomaError, match=f"--models-dir: {tmp_path / 'm' / 'r'} exists and is not a folder"):
        train(data, debug=True, models_dir=tmp_path / 'm', name='r', progress=False)
    assert f.read_text() == 'x' and not (data / '.cache').exists()


def test_colour_constancy_trained_and_predicted_alike(data, tmp_path):
    "Shades of Gray in training (`--colour-constancy`) is recorded in config.json and applied again by `load_model(...).predict`."
    df = train_table(data, n_folds=2)
    x, _ = image_cache(df, 64)
    tr, va, _ = fold_split(df, 0)
    torch.manual_seed(0)
    net = create_model('resnet18', n_out=1, pretrained=False)
    learn = fold_learner(x, df, tr, va, net, bs=16, meta=False, precision='fp32', colour_constancy=6.)
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(1, 1e-3)
    cfg = {'size': 64, 'preprocessing': {'resize': 'squish', 'colour_constancy': 6.}}
    p = predict_rows(learn, x, df, va, meta=False, config=cfg)  # the out-of-fold path of `train`
    xb, _ = learn.dls.valid.one_batch()  # what validation saw: Shades of Gray on float pixels, inside fastai's pipeline
    with torch.no_grad(): seen = melanoma_prob(learn.model.eval()(xb)).numpy()
    np.testing.assert_allclose(p[:len(seen)], seen, atol=2e-3)  # prediction rounds the balanced pixels to uint8
    learn.model.to(memory_format=torch.contiguous_format)
    save_model(learn.model, tmp_path / 'cc', cfg, fold=0)
    m = load_model(tmp_path / 'cc', device='cpu')
    np.testing.assert_allclose(m.predict(df.path.iloc[va].tolist(), progress=False), p, atol=1e-5)
    save_model(learn.model, tmp_path / 'plain', {'size': 64}, fold=0)  # the same network without it predicts otherwise
    assert np.abs(load_model(tmp_path / 'plain', device='cpu').predict(df.path.iloc[va].tolist(), progress=False) - p).max() > 1e-4
    # the command records it, and refuses a negative power
    assert main(['train', '--data', str(data), '--name', 'cc', '--debug', '--colour-constancy', '6', '--models-dir', str(tmp_path / 'models')]) == 0
    cfg = json.loads((tmp_path / 'models' / 'cc' / 'config.json').read_text())
    assert cfg['preprocessing'] == {'resize': 'squish', 'colour_constancy': 6.0} and cfg['train_args']['colour_constancy'] == 6.0
    with pytest.raises(SystemExit, match='colour-constancy must be'):
        main(['train', '--data', str(data), '--name', 'cc2', '--debug', '--colour-constancy', '-1', '--models-dir', str(tmp_path / 'models')])
