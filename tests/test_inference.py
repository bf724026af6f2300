"Tests for melanoma.inference: predicting a Kaggle-layout test set into a valid submission, ensembles, bad images, ONNX."
import shutil, warnings
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
import torch
from melanoma.core import MelanomaError, file_stamp
from melanoma.cli import main
from melanoma.inference import blend, predict_dataset, export_onnx, run_name, model_tta, _cache_key
from melanoma.model import create_model, save_model, meta_dim
from melanoma.submission import validate_submission, read_sample_ids, LOG_COLUMNS
from conftest import train_debug

@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    "Two untrained model folders (2-fold image-only, 1-fold metadata) at 64 px: weights don't matter here."
    d = tmp_path_factory.mktemp('models')
    torch.manual_seed(0)
    a = save_model([create_model('resnet18', pretrained=False) for _ in range(2)], d / 'tiny', {'size': 64})
    b = save_model([create_model('resnet18', pretrained=False, n_meta=meta_dim())], d / 'meta', {'size': 64})
    return a, b

@pytest.fixture
def data_copy(sample_data, tmp_path):
    "A private copy of the synthetic data set's test split, safe to damage."
    d = tmp_path / 'siim'
    d.mkdir()
    for f in ('test.csv', 'sample_submission.csv'): shutil.copy(sample_data / f, d / f)
    shutil.copytree(sample_data / 'jpeg' / 'test', d / 'jpeg' / 'test')
    return d

def ids(data): return pd.read_csv(Path(data) / 'test.csv').image_name.tolist()

def test_blend():
    a, b = np.array([0.1, 0.2, 0.9]), np.array([0.3, 0.1, 0.5])
    assert np.allclose(blend([a, b]), [0.2, 0.15, 0.7])
    assert np.allclose(blend([a, b], weights=[1, 0]), a)
    r = blend([a, b], 'rank')
    assert np.allclose(r, [0.5, 0.5, 1])
    with pytest.raises(MelanomaError, match='weight'): blend([a, b], weights=[1])
    with pytest.raises(MelanomaError, match='ensemble'): blend([a, b], 'max')

def test_predict_cli_end_to_end(tiny, sample_data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(['predict', '--model', str(tiny[0]), '--model', str(tiny[1]), '--data', str(sample_data), '--tta', '2',
                 '--ensemble', 'rank', '--blend-weights', '1', '3', '--workers', '1']) == 0
    out = tmp_path / 'submissions' / 'tiny+meta_tta2_rank.csv'
    assert 'wrote submissions/tiny+meta_tta2_rank.csv: 16 predictions from 2 model(s)' in capsys.readouterr().out
    sub = pd.read_csv(out, dtype={'image_name': str})
    validate_submission(sub, ids(sample_data), read_sample_ids(sample_data))
    log = pd.read_csv(tmp_path / 'submissions' / 'log.csv', dtype=str, keep_default_na=False)
    assert list(log.columns) == LOG_COLUMNS and log.tta[0] == '2' and log.ensemble[0] == 'rank'
    assert log.models[0] == f'{tiny[0]};{tiny[1]}'
    assert not list((tmp_path / 'submissions').glob('.*partial*'))
    # `--model A B` is the same as `--model A --model B` (as in `evaluate`); `--weights` is the deprecated name of --blend-weights
    with pytest.warns(FutureWarning, match='--blend-weights'):
        assert main(['predict', '--model', str(tiny[0]), str(tiny[1]), '--data', str(sample_data), '--tta', '2', '--ensemble', 'rank',
                     '--weights', '1', '3', '--workers', '0', '--out', 'again.csv']) == 0
    assert pd.read_csv('again.csv').equals(pd.read_csv(out))
    with pytest.raises(SystemExit, match='old name'):
        main(['predict', '--model', str(tiny[0]), '--data', str(sample_data), '--weights', '1', '--blend-weights', '1'])

def test_folds_tta_and_meta(tiny, sample_data):
    from melanoma.model import load_model
    m = load_model(tiny[0], device='cpu')
    df = predict_dataset(tiny[0], sample_data, workers=0, progress=False)
    paths = [sample_data / 'jpeg' / 'test' / f'{i}.jpg' for i in ids(sample_data)]
    assert np.allclose(df.target, m.predict(paths, progress=False), atol=1e-5)
    t2 = predict_dataset([m], sample_data, tta=2, workers=0, progress=False)
    assert np.allclose(t2.target, m.predict(paths, tta=2, progress=False), atol=1e-5)
    mm = load_model(tiny[1], device='cpu')
    meta = pd.read_csv(sample_data / 'test.csv')
    got = predict_dataset(tiny[1], sample_data, workers=0, progress=False).target
    from melanoma.data import read_dataset
    want = mm.predict(paths, meta=read_dataset(sample_data, split='test')[['sex', 'age', 'site']], progress=False)
    assert np.allclose(got, want, atol=1e-5) and len(meta) == len(got)

def test_bad_image_filled_or_fatal(tiny, data_copy):
    tid = ids(data_copy)
    bad = data_copy / 'jpeg' / 'test' / f'{tid[2]}.jpg'
    bad.write_bytes(b'not a jpeg at all')
    (data_copy / 'jpeg' / 'test' / f'{tid[5]}.jpg').unlink()
    with pytest.warns(UserWarning, match='2 of 16 test image') as w:
        df = predict_dataset(tiny[0], data_copy, workers=1, progress=False)
    validate_submission(df, tid, read_sample_ids(data_copy))
    assert sorted(i for i, _, _ in df.attrs['skipped']) == sorted([tid[2], tid[5]])
    med = np.median(df.target.drop([2, 5]))
    assert np.isclose(df.target[2], med) and np.isclose(df.target[5], med)
    assert str(bad) in str(w[0].message)
    with pytest.raises(MelanomaError, match=f'2 of 16 test image.*{tid[2]}'):
        predict_dataset(tiny[0], data_copy, workers=0, on_error='fail', progress=False)

def test_resume_from_cache(tiny, sample_data, tmp_path):
    cache = tmp_path / 'partial.csv'
    tid = ids(sample_data)
    stamps = [file_stamp(sample_data / 'jpeg' / 'test' / f'{i}.jpg') for i in tid[:4]]
    pd.DataFrame({'image_name': tid[:4], 'error': '', 'key': _cache_key([tiny[0]], 1, sample_data), 'stamp': stamps, 'p0': 0.25}).to_csv(cache, index=False)
    df = predict_dataset(tiny[0], sample_data, workers=0, cache=cache, progress=False)
    assert (df.target[:4] == 0.25).all() and (df.target[4:] != 0.25).all() and not cache.exists()
    # a cache from other models/settings is ignored
    pd.DataFrame({'image_name': tid[:4], 'error': '', 'key': 'other', 'stamp': stamps, 'p0': 0.25}).to_csv(cache, index=False)
    assert (predict_dataset(tiny[0], sample_data, workers=0, cache=cache, progress=False).target != 0.25).all()

def test_resume_retries_fixed_and_replaced_images(tiny, data_copy, tmp_path):
    "A cached row is reused only for the same file (size and mtime), and a cached error never: a fixed image is predicted."
    tid, jp, cache = ids(data_copy), data_copy / 'jpeg' / 'test', tmp_path / 'partial.csv'
    clean = predict_dataset(tiny[0], data_copy, workers=0, progress=False).target.to_numpy()
    bad = jp / f'{tid[2]}.jpg'
    good = bad.read_bytes()
    for on_error in ('fail', 'fill'):  # --strict, and the default (which gave the fixed image the median, silently)
        bad.write_bytes(b'not a jpeg')
        with pytest.raises(MelanomaError, match=tid[2]):  # the run stops and leaves its partial results
            predict_dataset(tiny[0], data_copy, workers=0, on_error='fail', cache=cache, progress=False)
        assert cache.is_file()
        bad.write_bytes(good)  # fixed
        with warnings.catch_warnings():
            warnings.simplefilter('error', UserWarning)
            df = predict_dataset(tiny[0], data_copy, workers=0, on_error=on_error, cache=cache, progress=False)
        assert np.allclose(df.target, clean, atol=1e-5) and not df.attrs['skipped'] and not cache.exists()
    # a file replaced by another image after its prediction was cached is predicted again
    bad.write_bytes(b'not a jpeg')
    with pytest.raises(MelanomaError, match=tid[2]): predict_dataset(tiny[0], data_copy, workers=0, on_error='fail', cache=cache, progress=False)
    bad.write_bytes(good)
    shutil.copy(jp / f'{tid[0]}.jpg', jp / f'{tid[7]}.jpg')
    df = predict_dataset(tiny[0], data_copy, workers=0, on_error='fail', cache=cache, progress=False)
    assert np.allclose(df.target, np.where(np.arange(len(clean)) == 7, clean[0], clean), atol=1e-5)


def test_unusable_out_refused_before_predicting(tiny, sample_data, tmp_path, monkeypatch):
    "`--out` that is a folder, or lies under a regular file, is refused with one line before any image is predicted."
    import melanoma.inference
    def no_prediction(*a, **k): raise AssertionError('predicted before checking')
    monkeypatch.setattr(melanoma.inference, 'predict_dataset', no_prediction)
    (tmp_path / 'folder').mkdir()
    (tmp_path / 'file').write_text('x')
    args = ['predict', '--model', str(tiny[0]), '--data', str(sample_data), '--workers', '0', '--out']
    with pytest.raises(SystemExit) as e: main(args + [str(tmp_path / 'folder')])
    assert str(e.value) == f'melanoma predict: --out {tmp_path / "folder"}: is a folder; give the CSV file to write'
    out = tmp_path / 'file' / 'sub.csv'
    with pytest.raises(SystemExit) as e: main(args + [str(out)])
    assert str(e.value) == f'melanoma predict: --out {out}: {tmp_path / "file"} exists and is not a folder'
    assert '\n' not in str(e.value)


def test_bad_arguments(tiny, sample_data, tmp_path):
    with pytest.raises(MelanomaError, match='not a model folder'): predict_dataset(tmp_path, sample_data, progress=False)
    with pytest.raises(MelanomaError, match='2 weight'): predict_dataset([tiny[0]], sample_data, weights=[1, 2], progress=False)
    with pytest.raises(MelanomaError, match='test.csv'): predict_dataset(tiny[0], tmp_path, progress=False)
    with pytest.raises(SystemExit): main(['predict', '--data', str(sample_data)])  # --model is required
    assert run_name(['models/a', 'models/b'], 4, 'rank') == 'a+b_tta4_rank' and run_name(['x/run1']) == 'run1'

def test_onnx_export_and_predict(tiny, sample_data, tmp_path, monkeypatch):
    monkeypatch.setattr('melanoma.inference.default_device', lambda cpu=False: torch.device('cpu'))
    m = tmp_path / 'tiny'
    shutil.copytree(tiny[0], m)
    with pytest.raises(MelanomaError, match='export-onnx'): predict_dataset(m, sample_data, onnx=True, progress=False)
    assert main(['export-onnx', '--model', str(m)]) == 0
    assert sorted(p.name for p in m.glob('*.onnx')) == ['fold0.onnx', 'fold1.onnx']
    assert main(['export-onnx', str(m)]) == 0  # the older positional form still works
    with pytest.raises(SystemExit, match='--model DIR'): main(['export-onnx'])
    with pytest.raises(SystemExit, match='pass one'): main(['export-onnx', str(m), '--model', str(tmp_path)])
    import onnx
    g = onnx.load(str(m / 'fold0.onnx'))
    assert g.opset_import[0].version >= 17 and g.graph.input[0].type.tensor_type.shape.dim[0].dim_param == 'batch'
    a = predict_dataset(m, sample_data, workers=0, onnx=True, progress=False)
    b = predict_dataset(m, sample_data, workers=0, onnx=False, progress=False)
    assert np.allclose(a.target, b.target, atol=1e-4)
    # on the CPU an up-to-date export is used by default; a stale one is not, and --onnx refuses it
    from melanoma.inference import _load, OrtNet
    assert isinstance(_load(m).nets[0], OrtNet) and not isinstance(_load(m, onnx=False).nets[0], OrtNet)
    import os, time
    t = time.time() + 5
    os.utime(m / 'fold1.safetensors', (t, t))
    assert not isinstance(_load(m).nets[0], OrtNet)
    with pytest.raises(MelanomaError, match='older than the weights'): _load(m, onnx=True)
    with pytest.raises(SystemExit, match='contradict'): main(['predict', '--model', str(m), '--data', str(sample_data), '--onnx', '--no-onnx'])
    # onnx/onnxruntime are an optional extra: without onnxruntime the export is ignored and torch predicts; --onnx says what to install
    import sys
    m2 = tmp_path / 'again'
    shutil.copytree(m, m2)
    for f in m2.glob('*.safetensors'): os.utime(f)  # not in the future, as `m`'s fold1 is now
    export_onnx(m2)
    assert isinstance(_load(m2).nets[0], OrtNet)
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)  # `import onnxruntime` fails, as when it is not installed
    assert not isinstance(_load(m2).nets[0], OrtNet)
    assert np.allclose(predict_dataset(m2, sample_data, workers=0, progress=False).target, b.target, atol=1e-6)
    with pytest.raises(MelanomaError, match=r"pip install 'melanoma\[onnx\]'"): _load(m2, onnx=True)
    with pytest.raises(SystemExit, match='onnxruntime'): main(['export-onnx', '--model', str(m2)])

def test_train_debug_predict_end_to_end(sample_data, tmp_path, monkeypatch):
    "sample data -> `train --debug` model -> predict -> valid CSV."
    from melanoma.train import train
    data = tmp_path / 'siim'
    shutil.copytree(sample_data, data)
    mdir = train(data, name='dbg', debug=True, models_dir=tmp_path / 'models', progress=False)
    monkeypatch.chdir(tmp_path)
    assert main(['predict', '--model', str(mdir), '--data', str(data), '--out', 'sub.csv', '--workers', '0']) == 0
    validate_submission(pd.read_csv(tmp_path / 'sub.csv', dtype={'image_name': str}), ids(data), read_sample_ids(data))
    log = pd.read_csv(tmp_path / 'log.csv', dtype=str, keep_default_na=False)
    assert log.models[0] == str(mdir)

def test_siim_mini_test_set(siim_mini, tmp_path):
    "The 93 real test images: the file's ids match sample_submission.csv (an untrained, ImageNet-pretrained model)."
    torch.manual_seed(0)
    mdir = save_model(create_model('tf_efficientnet_lite0', pretrained=True), tmp_path / 'lite0', {'size': 64})
    main(['predict', '--model', str(mdir), '--data', str(siim_mini), '--out', str(tmp_path / 'sub.csv'), '--bs', '32'])
    sub = pd.read_csv(tmp_path / 'sub.csv', dtype={'image_name': str})
    sample = pd.read_csv(siim_mini / 'sample_submission.csv', dtype={'image_name': str})
    assert len(sub) == 93 and set(sub.image_name) == set(sample.image_name)
    validate_submission(sub, sample.image_name.tolist(), sample.image_name.tolist())
    assert sub.target.between(0, 1).all() and sub.target.nunique() > 1

def test_dicom_test_set(tiny, sample_data, tmp_path):
    "A test set with only competition-style DICOMs in test/ (no jpeg/): decoded and predicted like the JPEGs."
    dcm = sorted((sample_data / 'test').glob('*.dcm'))
    assert dcm
    d = tmp_path / 'siim'
    (d / 'test').mkdir(parents=True)
    for f in dcm: shutil.copy(f, d / 'test' / f.name)
    keep = {f.stem for f in dcm}
    for name in ('test.csv', 'sample_submission.csv'):
        t = pd.read_csv(sample_data / name)
        t[t.image_name.isin(keep)].to_csv(d / name, index=False)
    sub = predict_dataset(tiny[0], d, workers=0, onnx=False, progress=False)
    validate_submission(sub, sorted(keep), read_sample_ids(d))
    jp = predict_dataset(tiny[0], sample_data, workers=0, onnx=False, images='jpeg', progress=False).set_index('image_name')
    assert np.allclose(sub.set_index('image_name').target, jp.target[sub.image_name], atol=0.05)

def test_default_tta_follows_the_model(tmp_path, sample_data, monkeypatch, capsys):
    "Without --tta, predict uses as many TTA views as the model's out-of-fold scores (train --tta, saved in config.json)."
    torch.manual_seed(0)
    d = save_model([create_model('resnet18', pretrained=False)], tmp_path / 'm4', {'size': 64, 'train_args': {'tta': 4}})
    old = save_model([create_model('resnet18', pretrained=False)], tmp_path / 'old', {'size': 64})
    assert model_tta(d) == 4 and model_tta(old) == 1 and model_tta(tmp_path / 'nowhere') == 1
    monkeypatch.chdir(tmp_path)
    assert main(['predict', '--model', str(d), '--data', str(sample_data), '--workers', '0']) == 0
    assert 'TTA 4' in capsys.readouterr().out and (tmp_path / 'submissions' / 'm4_tta4.csv').is_file()
    from melanoma.model import load_model
    m = load_model(d, device='cpu')
    got = predict_dataset(m, sample_data, workers=0, progress=False).target
    paths = [sample_data / 'jpeg' / 'test' / f'{i}.jpg' for i in ids(sample_data)]
    assert np.allclose(got, m.predict(paths, tta=4, progress=False), atol=1e-5)
    with pytest.raises(MelanomaError, match='tta'): predict_dataset(m, sample_data, tta=9, progress=False)



def test_onnx_metadata_model_averages_missing_fields_like_torch(sample_data, tmp_path):
    "Through ONNX, rows with missing metadata still get the `meta_prior` average (computed by the kept torch network)."
    from melanoma.inference import _load, OrtNet
    from melanoma.model import default_meta_vocab, meta_prior
    from melanoma.data import read_dataset
    torch.manual_seed(1)
    tr = read_dataset(sample_data, split='train')
    m = save_model([create_model('resnet18', pretrained=False, n_meta=meta_dim())], tmp_path / 'meta',
                   {'size': 64, 'meta_vocab': default_meta_vocab(), 'meta_prior': meta_prior(tr)})
    export_onnx(m)
    te = read_dataset(sample_data, split='test').head(12).reset_index(drop=True)
    meta = te[['sex', 'age', 'site']].copy()
    meta.loc[:3, ['sex', 'age', 'site']] = None; meta.loc[4:6, 'site'] = None  # some rows blank, some partly
    ort, pt = _load(m, onnx=True), _load(m, onnx=False)
    assert isinstance(ort.nets[0], OrtNet) and ort.nets[0].torch_net is not None
    a, b = ort.predict(list(te.path), meta=meta, progress=False), pt.predict(list(te.path), meta=meta, progress=False)
    assert np.allclose(a, b, atol=1e-4)
    assert not np.allclose(b[:4], pt.predict(list(te.path[:4]), meta=te[['sex', 'age', 'site']].head(4), progress=False))


def test_prevalence(sample_data, tmp_path, monkeypatch, capsys):
    "--prevalence P: probabilities corrected from the training prevalence by prior shift; the output says which one."
    from melanoma.metrics import prior_shift
    torch.manual_seed(0)
    m = save_model(create_model('resnet18', pretrained=False), tmp_path / 'm' / 'cal', {'size': 64, 'train_prevalence': 0.3})
    monkeypatch.chdir(tmp_path)
    assert main(['predict', '--model', str(m), '--data', str(sample_data), '--workers', '0', '--out', 'a.csv']) == 0
    assert 'assume the training prevalence 0.3' in capsys.readouterr().out
    assert main(['predict', '--model', str(m), '--data', str(sample_data), '--workers', '0', '--out', 'b.csv', '--prevalence', '0.02']) == 0
    assert 'prevalence of 0.02' in capsys.readouterr().out
    a, b = pd.read_csv('a.csv'), pd.read_csv('b.csv')
    assert np.allclose(b.target, prior_shift(a.target, 0.3, 0.02), atol=1e-6)
    assert (a.target.rank() == b.target.rank()).all()  # a monotone map: the AUC is the same
    with pytest.raises(SystemExit, match='prevalence'):
        main(['predict', '--model', str(m), '--data', str(sample_data), '--workers', '0', '--prevalence', '2'])
    assert _cache_key([m], 1, sample_data) != _cache_key([m], 1, sample_data, 0.02)


@pytest.fixture(scope='session')
def mc_model(sample_data, tmp_path_factory):
    "A tiny multi-class model trained in the test on the synthetic data (`train --debug --head multiclass`), and its data."
    return train_debug(sample_data, tmp_path_factory.mktemp('mc'), 'mc', head='multiclass')


def test_predict_diagnoses_cli(mc_model, tiny, tmp_path, monkeypatch, capsys):
    "--diagnoses: image_name,MEL,...,SCC beside the Kaggle file; the Kaggle file itself is unchanged."
    from melanoma.model import load_model, DIAG_CLASSES
    mdir, data = mc_model
    monkeypatch.chdir(tmp_path)
    assert main(['predict', '--model', str(mdir), '--data', str(data), '--out', 'subs/mc.csv', '--workers', '0', '--diagnoses']) == 0
    assert 'subs/mc_diagnoses.csv' in capsys.readouterr().out
    sub, dx = pd.read_csv('subs/mc.csv', dtype={'image_name': str}), pd.read_csv('subs/mc_diagnoses.csv', dtype={'image_name': str})
    validate_submission(sub, ids(data), read_sample_ids(data))
    assert list(dx.columns) == ['image_name'] + DIAG_CLASSES and list(dx.image_name) == list(sub.image_name)
    assert np.allclose(dx[DIAG_CLASSES].sum(axis=1), 1, atol=1e-5) and dx[DIAG_CLASSES].min().min() >= 0
    m = load_model(mdir, device='cpu')
    test = pd.read_csv(data / 'test.csv')
    paths = [data / 'jpeg' / 'test' / f'{i}.jpg' for i in test.image_name[:3]]
    meta = test[['sex', 'age_approx', 'anatom_site_general_challenge']].head(3).set_axis(['sex', 'age', 'site'], axis=1)
    ref = m.predict_diagnoses(paths, meta, tta=int(m.config['train_args']['tta'] or 1), progress=False)
    assert np.allclose(dx[DIAG_CLASSES].head(3).to_numpy(), ref.to_numpy(), atol=1e-4)
    with pytest.raises(SystemExit, match='binary'):
        main(['predict', '--model', str(tiny[0]), '--data', str(data), '--out', 'b.csv', '--workers', '0', '--diagnoses'])
    with pytest.raises(MelanomaError, match='binary melanoma head'): load_model(tiny[0], device='cpu').predict_diagnoses(paths)


@pytest.fixture(scope='module')
def trained_run(sample_data, tmp_path_factory):
    "`train --debug` (2 folds, 8 TTA views out of fold) on the synthetic data with some age, sex and site fields blanked."
    def blank(data):
        tr = pd.read_csv(data / 'train.csv')
        i = np.arange(len(tr))
        tr.loc[i % 5 == 1, 'anatom_site_general_challenge'] = None
        tr.loc[i % 5 == 2, 'age_approx'] = None
        tr.loc[i % 5 == 3, 'sex'] = None
        tr.to_csv(data / 'train.csv', index=False)
    return train_debug(sample_data, tmp_path_factory.mktemp('roundtrip'), 'rt', edit=blank, workers=1)

def _round_trip(run, data) -> pd.DataFrame:
    """Per validation image: its out-of-fold prediction (training's path, over its image cache), `MelanomaModel.predict`
    of its file by the same fold's network and TTA, and whether its age, sex and site are all known."""
    from melanoma.model import load_model
    from melanoma.data import read_dataset
    m = load_model(run, device='cpu')
    assert m.uses_meta and m.prior is not None and model_tta(m) == 8
    oof = pd.read_csv(run / 'oof.csv', dtype={'image_id': str})
    df = read_dataset(data).set_index('image_id')
    parts = []
    for k in m.folds:
        o = oof[oof.fold == k]
        meta = df.loc[o.image_id, ['sex', 'age', 'site']].reset_index(drop=True)
        p = m.select(k).predict(df.loc[o.image_id, 'path'].tolist(), meta=meta, tta=model_tta(m), progress=False)
        known = meta.age.notna() & (meta[['sex', 'site']].fillna('').astype(str) != '').all(axis=1)
        parts.append(pd.DataFrame({'oof': o.pred.to_numpy(), 'predict': p, 'complete': known.to_numpy()}))
    return pd.concat(parts, ignore_index=True)

def test_training_and_predict_paths_agree(trained_run):
    "Images with complete metadata: training's out-of-fold scores and `predict` from the files agree to 1e-5 (same pixels, TTA, arithmetic)."
    rt = _round_trip(*trained_run)
    assert rt.complete.sum() >= 4 and (~rt.complete).sum() >= 4
    np.testing.assert_allclose(rt.predict[rt.complete], rt.oof[rt.complete], atol=1e-5)

def test_round_trip_with_missing_metadata(trained_run):
    "Every validation image, missing metadata included: training's out-of-fold scores are `predict`'s to 1e-5."
    rt = _round_trip(*trained_run)
    np.testing.assert_allclose(rt.predict, rt.oof, atol=1e-5)


# --- `melanoma predict --model M IMAGE_OR_DIR ...`: images outside the Kaggle layout ---------------------------------

def test_predict_images_table(trained_run, sample_data, tmp_path, capsys):
    "Files, a folder and a pattern: one readable row per image in the terminal and in the CSV, with verdict and novelty."
    from melanoma.cli import main
    run = trained_run[0] if isinstance(trained_run, tuple) else trained_run
    imgs = sorted((sample_data / 'jpeg' / 'test').glob('*.jpg'))
    (tmp_path / 'photos').mkdir(); shutil.copy(imgs[2], tmp_path / 'photos' / 'lesion.jpg')
    (tmp_path / 'photos' / 'broken.jpg').write_text('not an image')
    out = tmp_path / 'table.csv'
    assert main(['predict', '--model', str(run), str(imgs[0]), str(tmp_path / 'photos'), str(sample_data / 'jpeg' / 'test' / '*1.jpg'),
                 '--out', str(out), '--tta', '1']) == 0
    shown = capsys.readouterr().out
    df = pd.read_csv(out)
    assert {'image', 'probability', 'threshold', 'verdict', 'novelty'} <= set(df.columns)
    assert len(df) == 3 + sum(p.name.endswith('1.jpg') for p in imgs) - (imgs[0].name.endswith('1.jpg'))
    assert df.set_index(df.image.map(lambda s: Path(s).name)).verdict['broken.jpg'] == 'unreadable'
    good = df[df.verdict != 'unreadable']
    assert good.probability.between(0, 1).all() and good.novelty.notna().all()  # `train` fitted novelty scores
    assert set(good.verdict) <= {'melanoma suspected', 'not suspected', 'not like the training images: no verdict'}
    assert 'lesion.jpg' in shown and f'wrote {out}' in shown and 'novelty above 1' in shown
    with pytest.raises(SystemExit, match='nope.jpg: no such file'): main(['predict', '--model', str(run), str(tmp_path / 'nope.jpg')])
    with pytest.raises(SystemExit, match='unreadable'): main(['predict', '--model', str(run), str(tmp_path / 'photos'), '--strict', '--out', str(out)])


def test_run_folder_has_card_curves_and_novelty(trained_run):
    "What `melanoma train` leaves besides the weights: the model card, the training curves and the novelty scores."
    from melanoma.model import load_model
    run = Path(trained_run[0] if isinstance(trained_run, tuple) else trained_run)
    card = (run / 'README.md').read_text()
    assert card.startswith('---\n') and 'not a medical device' in card.lower() and 'license:' in card
    assert (run / 'curves.png').stat().st_size > 1000 and (run / 'novelty.safetensors').is_file()
    m = load_model(run, 'cpu')
    assert m.novelty is not None and 0 < m.novelty.threshold < 2
