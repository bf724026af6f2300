"""The lesion crop as a classifier's second view (`melanoma seg attach`): one path from images to probabilities with it,
for the out-of-fold rows, `predict` on files, the Kaggle-layout `predict`, and a folder copied elsewhere."""
import json, shutil, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest
from melanoma.cli import main
from melanoma.core import MelanomaError
from melanoma.data import read_dataset
from melanoma.hub import model_files
from melanoma.model import load_model
from melanoma.segment import LesionView, attach_lesion_view, copy_seg_model, create_seg_model, save_seg_model
from conftest import train_debug


@pytest.fixture(scope='module')
def run(sample_data, tmp_path_factory):
    "A `train --debug` classifier on the synthetic data, a segmentation model (ImageNet encoder, untrained decoder), and the data."
    d = tmp_path_factory.mktemp('lesion')
    mdir, data = train_debug(sample_data, d, 'dbg')
    seg = save_seg_model(create_seg_model(size=(48, 64)).eval(), d / 'models' / 'seg')
    return mdir, seg, data


def test_attach_rescores_oof_through_predict(run, capsys):
    mdir, seg, data = run
    before = pd.read_csv(mdir / 'oof.csv', dtype={'image_id': str})
    assert main(['seg', 'attach', '--model', str(mdir), '--seg-model', str(seg), '--margin', '0.2']) == 0
    assert 'with the lesion view (the whole image alone' in capsys.readouterr().out
    oof = pd.read_csv(mdir / 'oof.csv', dtype={'image_id': str})
    pd.testing.assert_frame_equal(pd.read_csv(mdir / 'oof-whole.csv', dtype={'image_id': str}), before)
    assert (oof.drop(columns='pred') == before.drop(columns='pred')).all().all() and not np.allclose(oof.pred, before.pred)
    cfg = json.loads((mdir / 'config.json').read_text())
    assert cfg['lesion']['margin'] == 0.2 and cfg['operating_point']['n'] == len(oof)
    scores = json.loads((mdir / 'oof_auc.json').read_text())
    assert scores['lesion_view']['margin'] == 0.2 and 'auc' in scores['lesion_view']['whole']
    m = load_model(mdir, 'cpu')
    assert isinstance(m.lesion, LesionView) and m.lesion.margin == 0.2
    # an out-of-fold row is what `predict` gives for that image with that fold's network and the run's views
    tta = cfg['train_args']['tta']
    r = oof.iloc[0]
    row = read_dataset(data).set_index('image_id').loc[[r.image_id]]
    p = m.select(int(r.fold)).predict(list(row.path), meta=row[['sex', 'age', 'site']].reset_index(drop=True) if m.uses_meta else None,
                                      tta=tta, progress=False)[0]
    assert abs(p - r.pred) < 1e-5, (p, r.pred)
    # the segmentation model travels with the folder (the Hub, a Kaggle dataset, a copy)
    assert {'lesion.json', 'lesion.safetensors'} <= set(model_files(mdir, card=False))
    # attaching again (another margin) starts from the whole-image scores
    attach_lesion_view(mdir, seg, margin=0.3, progress=False)
    again = json.loads((mdir / 'oof_auc.json').read_text())
    assert again['lesion_view']['whole'] == scores['lesion_view']['whole'] and load_model(mdir, 'cpu').lesion.margin == 0.3


def test_kaggle_layout_predict_matches_files(run, tmp_path, monkeypatch):
    "`melanoma predict --data` (pixels decoded by workers, crops cut beside them) gives what `model.predict(paths)` gives."
    mdir, seg, data = run
    if not (mdir / 'lesion.json').is_file(): attach_lesion_view(mdir, seg, progress=False)
    monkeypatch.chdir(tmp_path)
    assert main(['predict', '--model', str(mdir), '--data', str(data), '--out', 'sub.csv', '--tta', '2', '--workers', '0']) == 0
    sub = pd.read_csv('sub.csv', dtype={'image_name': str})
    m = load_model(mdir, 'cpu')
    test = read_dataset(data, split='test').reset_index(drop=True)
    p = m.predict(list(test.path), meta=test[['sex', 'age', 'site']] if m.uses_meta else None, tta=2, progress=False)
    got = sub.set_index('image_name').loc[test.image_id, 'target'].to_numpy()
    assert np.allclose(got, p, atol=1e-5), np.abs(got - p).max()


def test_predict_on_photos_measures_with_the_views_segmentation(run, tmp_path, monkeypatch):
    "`melanoma predict` on image files with a lesion-view model adds the lesion measurements without `--seg-model`, as with it."
    from melanoma.segment import MEASURE_COLUMNS
    mdir, seg, data = run
    if not (mdir / 'lesion.json').is_file(): attach_lesion_view(mdir, seg, progress=False)
    photos = sorted((data / 'jpeg' / 'test').glob('*.jpg'))[:3]
    monkeypatch.chdir(tmp_path)
    assert main(['predict', *map(str, photos), '--model', str(mdir), '--tta', '2', '--out', 'own.csv']) == 0
    assert main(['predict', *map(str, photos), '--model', str(mdir), '--tta', '2', '--out', 'given.csv', '--seg-model', str(seg)]) == 0
    own, given = pd.read_csv('own.csv'), pd.read_csv('given.csv')
    assert set(MEASURE_COLUMNS) <= set(own.columns) and len(own) == 3
    pd.testing.assert_frame_equal(own, given)  # the view's copy is the same network as the folder it came from


def test_errors_name_what_is_wrong(run, tmp_path):
    mdir, seg, _ = run
    with pytest.raises(MelanomaError, match='not a segmentation model folder'): attach_lesion_view(mdir, tmp_path)
    bare = tmp_path / 'bare'
    shutil.copytree(mdir, bare)
    (bare / 'oof.csv').unlink()
    with pytest.raises(MelanomaError, match='no oof.csv'): attach_lesion_view(bare, seg)
    with pytest.raises(SystemExit): main(['seg', 'attach', '--seg-model', str(seg)])
    plain = tmp_path / 'plain'
    shutil.copytree(mdir, plain, ignore=shutil.ignore_patterns('lesion.*'))
    with pytest.raises(MelanomaError, match='carries no segmentation model'): attach_lesion_view(plain)


def test_load_model_without_segment_says_what_to_import(run):
    "The view's loader comes from `melanoma.segment`; `melanoma.model` alone says so instead of predicting without it."
    mdir, seg, _ = run
    if not (mdir / 'lesion.json').is_file(): attach_lesion_view(mdir, seg, progress=False)
    r = subprocess.run([sys.executable, '-c', f'from melanoma.model import load_model; load_model({str(mdir)!r}, "cpu")'],
                       capture_output=True, text=True)
    assert r.returncode != 0 and 'crop around the lesion' in r.stderr and 'melanoma.segment' in r.stderr, r.stderr[-500:]


def test_space_and_demo_carry_the_view(run, tmp_path):
    "A Space exported from the model carries its segmentation model; the demo's model line says it looks at the crop."
    pytest.importorskip('gradio')
    from melanoma.app import model_summary
    from melanoma.space import export_space
    mdir, seg, _ = run
    if not (mdir / 'lesion.json').is_file(): attach_lesion_view(mdir, seg, progress=False)
    space = export_space(tmp_path / 'space', mdir, seg_model_dir=False, pin=True)
    copied = space / 'models' / mdir.name
    assert (copied / 'lesion.safetensors').is_file() and (copied / 'lesion.json').is_file()
    m = load_model(copied, 'cpu')
    assert m.lesion is not None and 'crop around the lesion' in model_summary(m, copied)
    # no --seg-model: the demo outlines the lesion with the classifier's own segmentation model, and a Space needs no copy of it
    from melanoma.app import _load_demo_models, seg_summary
    (seg / 'metrics.json').write_text(json.dumps({'jaccard': 0.785}))
    try: copy_seg_model(seg, mdir)  # what `seg attach` copies: the same weights, and now the held-out Jaccard
    finally: (seg / 'metrics.json').unlink()
    _, _, own, own_dir = _load_demo_models(mdir, None, None, None, 'cpu')
    assert own is not None and own_dir == mdir and len(own.nets) == len(m.lesion.seg.nets)
    line = seg_summary(own, own_dir)  # names the segmentation model it carries, with its score
    assert f'**seg** (the lesion view of {mdir.name})' in line and 'held-out Jaccard 0.785' in line, line
    assert _load_demo_models(mdir, None, False, None, 'cpu')[2] is None  # --no-seg
    space = export_space(tmp_path / 'space2', mdir, pin=True)
    assert sorted(p.name for p in (space / 'models').iterdir()) == [mdir.name] and 'Lesion outline' in (space / 'README.md').read_text()


def test_onnx_export_keeps_the_view(run, tmp_path, monkeypatch):
    "The ONNX graphs replace the fold networks; the lesion crops are still cut and scored (by the same graphs)."
    pytest.importorskip('onnxruntime')
    import torch
    from melanoma.inference import OrtNet, _load, export_onnx, predict_dataset
    monkeypatch.setattr('melanoma.inference.default_device', lambda cpu=False: torch.device('cpu'))
    mdir, seg, data = run
    if not (mdir / 'lesion.json').is_file(): attach_lesion_view(mdir, seg, progress=False)
    m = tmp_path / 'onnx'
    shutil.copytree(mdir, m)
    export_onnx(m)
    ort = _load(m)
    assert isinstance(ort.nets[0], OrtNet) and isinstance(ort.lesion, LesionView)
    a = predict_dataset(m, data, workers=0, tta=2, onnx=True, progress=False)
    b = predict_dataset(m, data, workers=0, tta=2, onnx=False, progress=False)
    assert np.allclose(a.target, b.target, atol=1e-4)


def test_attach_interrupted_continues(run, tmp_path, monkeypatch, capsys):
    "A `seg attach` killed after its first chunk of images continues from there, and ends where an uninterrupted one ends."
    import melanoma.segment as S
    mdir, seg, _ = run
    a, b = tmp_path / 'a', tmp_path / 'b'
    for d in (a, b): shutil.copytree(mdir, d)
    monkeypatch.setattr(S, 'LESION_CHUNK', 16)
    attach_lesion_view(a, seg, margin=0.25, progress=False)
    crops, calls = LesionView.crops, []
    def dies_second_time(self, *args, **kw):
        calls.append(1)
        if len(calls) == 2: raise KeyboardInterrupt
        return crops(self, *args, **kw)
    monkeypatch.setattr(LesionView, 'crops', dies_second_time)
    with pytest.raises(KeyboardInterrupt): attach_lesion_view(b, seg, margin=0.25)
    assert (b / '.seg-attach.partial.npz').is_file()
    assert (json.loads((b / 'config.json').read_text()).get('lesion') or {}).get('margin') != 0.25  # config.json is written last
    monkeypatch.setattr(LesionView, 'crops', crops)
    calls.clear()
    attach_lesion_view(b, seg, margin=0.25)
    assert 'continuing an interrupted `seg attach` after 16 image(s)' in capsys.readouterr().out
    assert not (b / '.seg-attach.partial.npz').exists()
    pd.testing.assert_frame_equal(pd.read_csv(a / 'oof.csv'), pd.read_csv(b / 'oof.csv'))


def test_unreadable_image_is_left_out_with_a_warning(run, tmp_path):
    "An image that cannot be read any more loses its out-of-fold row (named in a warning), not the whole run."
    mdir, seg, data = run
    m, d = tmp_path / 'm', tmp_path / 'siim'
    shutil.copytree(mdir, m); shutil.copytree(data, d)
    oof = pd.read_csv(m / 'oof.csv', dtype={'image_id': str})
    victim = read_dataset(d).set_index('image_id').loc[oof.image_id[0], 'path']
    Path(victim).write_bytes(b'not a jpeg')
    with pytest.warns(UserWarning, match=r'1 out-of-fold row\(s\) could not be scored again'):
        attach_lesion_view(m, seg, data=d, progress=False)
    new = pd.read_csv(m / 'oof.csv', dtype={'image_id': str})
    assert len(new) == len(oof) - 1 and oof.image_id[0] not in set(new.image_id)


def test_gradcam_shows_both_views(run, tmp_path, monkeypatch):
    "Grad-CAM of a model with the view: the crop's half lies inside the box its segmentation finds; `explain --view` picks a half."
    from PIL import Image
    from melanoma.explain import gradcam
    from melanoma.images import open_image
    mdir, seg, data = run
    if not (mdir / 'lesion.json').is_file(): attach_lesion_view(mdir, seg, progress=False)
    m = load_model(mdir, 'cpu')
    img = open_image(read_dataset(data).path.iloc[0]).convert('RGB')
    box = m.lesion.boxes([img])[0]
    l, t, r, b = box or (0, 0, img.width, img.height)
    m.lesion.boxes = lambda ims, bs=32: [(l + 3, t + 2, r - 1, b - 2) for _ in ims]  # a box that is not the whole image
    crop = gradcam(m, img, view='lesion')
    assert crop.shape == (img.height, img.width) and crop.max() == 1
    outside = np.ones_like(crop, bool); outside[t + 2:b - 2, l + 3:r - 1] = False
    assert crop[outside].max() == 0
    whole = gradcam(m, img, view='whole')
    bare = load_model(mdir, 'cpu'); bare.lesion = None
    assert np.allclose(whole, gradcam(bare, img), atol=1e-5)
    both = gradcam(m, img)
    assert both.max() == 1 and not np.allclose(both, whole)
    monkeypatch.chdir(tmp_path)
    assert main(['explain', '--model', str(mdir), '--data', str(data), '--n', '1', '--view', 'lesion', '--out', 'g.png']) == 0
    assert Image.open('g.png').size[0] > 300
    with pytest.raises(MelanomaError, match='expected one of'): gradcam(m, img, view='crop')


def test_train_again_sets_the_view_aside_and_attach_gives_it_back(run, tmp_path):
    "`train` re-run on a folder with the view: nothing left to train keeps it; a fold trained again sets it aside with a warning, and `seg attach --model` alone (the folder's own segmentation model) gives it back."
    from melanoma.train import train
    mdir, seg, data = run
    if not (mdir / 'lesion.json').is_file(): attach_lesion_view(mdir, seg, progress=False)
    again = tmp_path / 'models' / mdir.name
    shutil.copytree(mdir, again)
    viewed = pd.read_csv(again / 'oof.csv', dtype={'image_id': str})
    retrain = lambda: train(data, name=mdir.name, debug=True, models_dir=tmp_path / 'models', progress=False)
    retrain()
    cfg, scores = (json.loads((again / f).read_text()) for f in ('config.json', 'oof_auc.json'))
    assert cfg.get('lesion') and 'lesion_view' in scores
    pd.testing.assert_frame_equal(pd.read_csv(again / 'oof.csv', dtype={'image_id': str}), viewed)
    (again / 'fold1.safetensors').unlink()
    with pytest.warns(UserWarning, match='set aside'): retrain()
    assert 'lesion' not in json.loads((again / 'config.json').read_text()) and load_model(again, 'cpu').lesion is None
    oof, whole = (pd.read_csv(again / f, dtype={'image_id': str}) for f in ('oof.csv', 'oof-whole.csv'))
    pd.testing.assert_frame_equal(oof[oof.fold == 0].reset_index(drop=True), whole[whole.fold == 0].reset_index(drop=True))
    assert main(['seg', 'attach', '--model', str(again)]) == 0
    m = load_model(again, 'cpu')
    assert m.lesion is not None and json.loads((again / 'oof_auc.json').read_text())['lesion_view']['seg_model'] == 'seg'
    pd.testing.assert_frame_equal(pd.read_csv(again / 'oof-whole.csv', dtype={'image_id': str}), oof)


def test_train_seg_model_attaches_the_view(sample_data, tmp_path, capsys):
    "`melanoma train --seg-model S`: the finished run has the lesion view; a re-run with nothing to train leaves it as it is."
    seg = save_seg_model(create_seg_model(size=(48, 64)).eval(), tmp_path / 'seg')
    data = tmp_path / 'siim'
    shutil.copytree(sample_data, data)
    args = ['train', str(data), '--debug', '--name', 'viewed', '--models-dir', str(tmp_path / 'models'), '--threads', '1']
    with pytest.raises(SystemExit, match='not a segmentation model folder'): main(args + ['--seg-model', str(data)])
    assert not (tmp_path / 'models' / 'viewed' / 'fold0.safetensors').exists()  # checked before any training
    assert main(args + ['--seg-model', str(seg)]) == 0
    run = tmp_path / 'models' / 'viewed'
    assert load_model(run, 'cpu').lesion is not None and 'with the lesion view (seg)' in capsys.readouterr().out
    stamp = (run / 'oof.csv').stat().st_mtime_ns
    assert main(args + ['--seg-model', str(seg)]) == 0
    assert 'has the lesion view of' in capsys.readouterr().out and (run / 'oof.csv').stat().st_mtime_ns == stamp
    assert load_model(run, 'cpu').lesion is not None
