"Lesion segmentation: layout readers, metrics, measurements, crops, training/saving/loading and the `seg` commands."
import json, warnings
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from PIL import Image
from melanoma.core import MelanomaError
from melanoma.segment import (read_seg_dataset, make_seg_sample, read_mask, jaccard, jaccard_summary, lesion_measurements,
                              lesion_box, crop_to_lesion, clean_mask, train_seg, load_seg_model, predict_masks, mask_index,
                              create_seg_model, save_seg_model, DiceBCELoss, LovaszBCELoss, lovasz_hinge, MEASURE_COLUMNS)
from melanoma.cli import main
from conftest import shared_path


@pytest.mark.parametrize('layout', ['isic2017', 'isic2018', 'ph2'])
def test_read_layouts(tmp_path, layout):
    df = read_seg_dataset(make_seg_sample(tmp_path / layout, layout, n_train=3, n_valid=2))
    assert list(df.columns) == ['image_id', 'path', 'mask_path', 'split', 'source'] and len(df) == 5
    assert df.split.value_counts().to_dict() == ({'train': 5} if layout == 'ph2' else {'train': 3, 'valid': 2})
    assert all(Path(p).is_file() for p in df.path) and all(Path(p).is_file() for p in df.mask_path)
    m = read_mask(df.mask_path[0])
    assert m.dtype == bool and m.any() and m.shape == Image.open(df.path[0]).size[::-1]


def test_bad_pairs_are_named_and_skipped(tmp_path):
    d = make_seg_sample(tmp_path / 'd', 'isic2018', n_train=5, n_valid=0)
    gt = d / 'ISIC2018_Task1_Training_GroundTruth'
    (gt / 'ISIC_0000001_segmentation.png').unlink()
    Image.new('L', (5, 5)).save(gt / 'ISIC_0000002_segmentation.png')
    Image.fromarray(np.full((48, 64), 7, np.uint8)).save(gt / 'ISIC_0000003_segmentation.png')
    Image.new('L', (64, 48)).save(gt / 'ISIC_0000099_segmentation.png')
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        df = read_seg_dataset(d)
    msgs = '\n'.join(str(x.message) for x in w)
    assert sorted(df.image_id) == ['ISIC_0000004', 'ISIC_0000005']
    for n in ('ISIC_0000001', 'ISIC_0000002_segmentation.png', 'ISIC_0000003_segmentation.png', 'ISIC_0000099_segmentation.png'): assert n in msgs
    assert 'values must be 0 or 255' in msgs and '5x5' in msgs


def test_ph2_missing_mask_and_test_split_without_ground_truth(tmp_path):
    d = make_seg_sample(tmp_path / 'p', 'ph2', n_train=2, n_valid=0)
    (d / 'IMD001' / 'IMD001_lesion' / 'IMD001_lesion.bmp').unlink()
    with pytest.warns(UserWarning, match='IMD001'): df = read_seg_dataset(d)
    assert list(df.image_id) == ['IMD002']
    d2 = make_seg_sample(tmp_path / 't', 'isic2017', n_train=2, n_valid=0)
    (d2 / 'ISIC-2017_Test_Data').mkdir(); Image.new('RGB', (8, 8)).save(d2 / 'ISIC-2017_Test_Data' / 'ISIC_1.jpg')
    df2 = read_seg_dataset(d2)
    assert (df2[df2.split == 'test'].mask_path == '').all() and len(df2) == 3
    with pytest.raises(MelanomaError, match='no segmentation layout'): read_seg_dataset(tmp_path / 't' / 'ISIC-2017_Test_Data')


def test_metrics():
    a = np.zeros((10, 10), bool); a[:5] = True
    b = np.zeros((10, 10), bool); b[:4] = True
    assert jaccard(a, b) == pytest.approx(0.8) and jaccard(a, a) == 1.0
    r = jaccard_summary([0.9, 0.5, 0.7, 0.8])
    assert r['jaccard'] == pytest.approx(0.725) and r['thresholded_jaccard'] == pytest.approx(0.6)
    assert r['jaccard_ci'][0] <= r['jaccard'] <= r['jaccard_ci'][1] and r['below_threshold'] == 1
    lo = DiceBCELoss()(torch.where(torch.from_numpy(a), 20., -20.)[None, None], torch.from_numpy(a).long()[None])
    assert lo < 0.01


def test_measurements_and_crops():
    yy, xx = np.mgrid[:100, :140]
    circ = (xx - 70) ** 2 + (yy - 50) ** 2 <= 30 ** 2
    img = np.where(circ[..., None], np.array([80, 50, 30], np.uint8), np.array([220, 180, 160], np.uint8))
    r = lesion_measurements(Image.fromarray(img), circ)
    assert set(r) == set(MEASURE_COLUMNS)
    assert r['area_frac'] == pytest.approx(circ.mean(), rel=1e-4) and r['asymmetry'] < 0.03
    assert 0.95 < r['border_irregularity'] < 1.2 and r['n_colours'] == 1 and r['contrast'] > 0.3
    two = circ | ((xx - 124) ** 2 + (yy - 50) ** 2 <= 10 ** 2)
    assert lesion_measurements(img, two)['asymmetry'] > 0.05
    assert np.isnan(lesion_measurements(img, np.zeros_like(circ))['asymmetry'])
    assert lesion_box(circ, (140, 100), margin=0) == (40, 20, 101, 81)
    assert crop_to_lesion(Image.fromarray(img), np.zeros_like(circ)).size == (140, 100)
    assert clean_mask(two).sum() == circ.sum()


@pytest.fixture(scope='module')
def tiny_model(tmp_path_factory):
    root = tmp_path_factory.mktemp('seg')
    d = make_seg_sample(root / 'data', 'isic2017', n_train=16, n_valid=4)
    res = train_seg(d, name='tiny', models_dir=root / 'models', epochs=1, bs=8, size=(32, 48), members=2, progress=False)
    return root, d, root / 'models' / 'tiny', res


def test_train_save_load(tiny_model):
    root, d, mdir, res = tiny_model
    assert {'jaccard', 'thresholded_jaccard', 'jaccard_ci', 'train_minutes'} <= set(res) and res['n'] == 4
    assert (mdir / 'seg.safetensors').is_file() and (mdir / 'config.json').is_file() and not list(mdir.glob('*.pkl'))
    m = load_seg_model(mdir)
    assert m.size == (32, 48) and m.config['task'] == 'segmentation'
    imgs = sorted((d / 'ISIC-2017_Validation_Data').glob('*.jpg'))
    out = predict_masks(m, imgs + [Image.open(imgs[0])])
    assert all(o.shape == (48, 64) and o.dtype == bool for o in out) and (out[0] == out[-1]).all()
    bad = root / 'bad.jpg'; bad.write_bytes(b'not a jpeg')
    with pytest.warns(UserWarning, match='bad.jpg'): out = predict_masks(m, [bad, imgs[0]])
    assert out[0] is None and out[1].shape == (48, 64)
    with pytest.raises(MelanomaError, match='not a segmentation model'): load_seg_model(root)


def test_ensemble_members(tiny_model, tmp_path):
    "An ensemble's file holds every member (prefixed m0., m1.); a one-network folder keeps the plain layout; members average."
    import torch
    from safetensors.torch import load_file
    root, d, mdir, res = tiny_model
    m = load_seg_model(mdir)
    assert len(m.nets) == 2 and m.config['members'] == 2 and res['members'] == 2 and len(res['member_jaccard']) == 2
    assert {k.split('.')[0] for k in load_file(str(mdir / 'seg.safetensors'))} == {'m0', 'm1'}
    one = save_seg_model(m.nets[1], tmp_path / 'one', m.config)
    assert not any(k.startswith('m1.') for k in load_file(str(one / 'seg.safetensors')))
    m1 = load_seg_model(one)
    x = torch.randn(2, 3, 32, 48)
    with torch.inference_mode():
        torch.testing.assert_close(m1.probabilities(x), m.member(1).probabilities(x))
        torch.testing.assert_close(m.probabilities(x), (m.member(0).probabilities(x) + m.member(1).probabilities(x)) / 2)
    cfg = json.loads((one / 'config.json').read_text()); cfg['members'] = 3; (one / 'config.json').write_text(json.dumps(cfg))
    with pytest.raises(MelanomaError, match='seg.safetensors: does not match'): load_seg_model(one)
    with pytest.raises(MelanomaError, match='members must be at least 1'): train_seg(d, members=0)


def test_lovasz_loss_and_hold_out_from_the_command(tmp_path, capsys):
    "`seg train --loss lovasz --hold-out F`: the loss is recorded, the held-out training images are scored apart from validation."
    x = torch.randn(3, 1, 8, 8, requires_grad=True); t = (torch.rand(3, 8, 8) > 0.5).long()
    LovaszBCELoss()(x, t).backward()
    assert x.grad.abs().sum() > 0 and float(lovasz_hinge(20 * (2 * t[:, None].float() - 1), t)) == 0
    d = make_seg_sample(tmp_path / 'data', 'isic2017', n_train=12, n_valid=3)
    assert main(['seg', 'train', str(d), '--name', 'lv', '--models-dir', str(tmp_path / 'models'), '--epochs', '1', '--bs', '4',
                 '--height', '32', '--width', '48', '--members', '1', '--loss', 'lovasz', '--hold-out', '0.25']) == 0
    assert 'held-out training images (3)' in capsys.readouterr().out
    mdir = tmp_path / 'models' / 'lv'
    cfg, met = json.loads((mdir / 'config.json').read_text()), json.loads((mdir / 'metrics.json').read_text())
    assert cfg['train_args']['loss'] == 'lovasz' and cfg['train_args']['n_train'] == 9 and met['hold_out']['n'] == 3
    sc = pd.read_csv(mdir / 'valid_scores.csv')
    assert sc.set.value_counts().to_dict() == {'valid': 3, 'hold_out': 3} and not set(sc.image_id[sc.set == 'valid']) & set(sc.image_id[sc.set == 'hold_out'])
    with pytest.raises(SystemExit, match="loss must be one of 'dice', 'lovasz'"): main(['seg', 'train', str(d), '--loss', 'focal'])
    with pytest.raises(SystemExit, match='hold_out must be a fraction'): main(['seg', 'train', str(d), '--hold-out', '1.5'])


def test_seg_commands(tiny_model, tmp_path, capsys):
    root, d, mdir, _ = tiny_model
    assert main(['seg', '--help']) == 0 and 'seg predict' in capsys.readouterr().out
    imgs = tmp_path / 'imgs'; imgs.mkdir()
    for p in sorted((d / 'ISIC-2017_Validation_Data').glob('*.jpg')): Image.open(p).resize((80, 60)).save(imgs / p.name)
    (imgs / 'broken.jpg').write_bytes(b'xx')
    out = tmp_path / 'masks'
    assert main(['seg', 'predict', '--model', str(mdir), '--data', str(imgs), '--out', str(out), '--measure']) == 0
    txt = capsys.readouterr().out
    assert '4 written' in txt and 'broken.jpg' in txt
    ms = sorted(out.glob('*_segmentation.png'))
    assert len(ms) == 4 and Image.open(ms[0]).size == (80, 60) and set(np.unique(np.asarray(Image.open(ms[0])))) <= {0, 255}
    assert main(['seg', 'predict', '--model', str(mdir), '--data', str(imgs), '--out', str(out)]) == 0
    assert '0 written, 4 already there' in capsys.readouterr().out
    csv = tmp_path / 'm.csv'
    assert main(['seg', 'measure', '--masks', str(out), '--data', str(imgs), '--out', str(csv)]) == 0
    df = pd.read_csv(csv)
    assert len(df) == 4 and list(df.columns) == ['image_id'] + MEASURE_COLUMNS
    assert len(pd.read_csv(out / 'measurements.csv')) == 4
    assert set(mask_index(out)) == {p.stem for p in imgs.glob('ISIC_*.jpg')}



def test_zoom_second_pass(tiny_model, tmp_path):
    """`zoom`: the lesion's box is segmented again and, inside it, the two passes' probabilities are averaged; a new model
    predicts that way (`config.json` `zoom`), `zoom=0` and `seg predict --zoom 0` in one pass."""
    from melanoma.segment import SEG_ZOOM
    root, d, mdir, _ = tiny_model
    m = load_seg_model(mdir)
    assert m.config['zoom'] == SEG_ZOOM == 0.8
    def disc(x):  # a network that always sees a disc of a quarter of its input's height in the middle
        h, w = x.shape[-2:]
        yy, xx = torch.meshgrid(torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2, indexing='ij')
        return ((yy ** 2 + xx ** 2) <= (h / 4) ** 2).float().expand(len(x), 1, h, w)
    m.probabilities = lambda x, tta=False: disc(x)
    img = Image.new('RGB', (480, 360), (200, 160, 140))
    one, = predict_masks(m, [img], zoom=0, progress=False)
    two, = predict_masks(m, [img], zoom=0.1, progress=False)
    # the zoomed pass sees the disc larger, so its own disc is smaller in the image: where only one pass says lesion the
    # mean is 0.5, not above the threshold, so the mask is the smaller disc, inside the first
    assert one.sum() > two.sum() > 0 and not (two & ~one).any()
    h, w = m.size
    box = lesion_box(one, img.size, 0.1, w / h)  # in the network's shape (48x32 here)
    assert box[2] - box[0] < 480 and abs((box[2] - box[0]) / (box[3] - box[1]) - w / h) < 0.02
    ys, xs = np.nonzero(two)
    assert abs((xs.max() - xs.min() + 1) / (box[2] - box[0]) - (h / 2) / w) < 0.02  # the second disc spans h/2 of the input's w
    assert (predict_masks(m, [img], progress=False)[0] == predict_masks(m, [img], zoom=SEG_ZOOM, progress=False)[0]).all()
    imgs = sorted((d / 'ISIC-2017_Validation_Data').glob('*.jpg'))
    assert main(['seg', 'predict', '--model', str(mdir), '--data', str(d / 'ISIC-2017_Validation_Data'), '--out', str(tmp_path / 'one'), '--zoom', '0']) == 0
    for p, want in zip(imgs, predict_masks(load_seg_model(mdir), imgs, zoom=0, progress=False)):
        assert ((np.asarray(Image.open(tmp_path / 'one' / f'{p.stem}_segmentation.png')) > 127) == want).all()
    with pytest.raises(SystemExit): main(['seg', 'predict', '--model', str(mdir), '--data', str(d), '--out', str(tmp_path / 'x'), '--zoom', 'big'])


def test_seg_predict_measure_same_name_in_two_folders(tiny_model, tmp_path):
    "Two images with one file name get one mask (the first's): the second is skipped, never measured against that mask."
    from melanoma.segment import seg_predict, measure_masks
    root, d, mdir, _ = tiny_model
    first, second = sorted((d / 'ISIC-2017_Validation_Data').glob('*.jpg'))[:2]
    imgs = tmp_path / 'imgs'
    (imgs / 'a').mkdir(parents=True); (imgs / 'b').mkdir()
    Image.open(first).resize((80, 60)).save(imgs / 'a' / 'x.jpg')
    Image.open(second).resize((120, 90)).save(imgs / 'b' / 'x.jpg')
    out = tmp_path / 'masks'
    with pytest.warns(UserWarning) as w: res = seg_predict(mdir, imgs, out, measure=True, progress=False)
    assert res['written'] == 1 and any('b/x.jpg' in str(x.message) for x in w)
    df = pd.read_csv(out / 'measurements.csv')
    assert df.image_id.astype(str).tolist() == ['x']  # b/x.jpg has no mask of its own
    want = lesion_measurements(Image.open(imgs / 'a' / 'x.jpg').convert('RGB'), read_mask(out / 'x_segmentation.png'))
    assert df.iloc[0][MEASURE_COLUMNS].astype(float).to_numpy() == pytest.approx(np.array([want[c] for c in MEASURE_COLUMNS], float), nan_ok=True)
    with pytest.warns(UserWarning, match='b/x.jpg: same name as'): assert len(measure_masks(out, imgs)) == 1  # `seg measure`


def test_seg_predict_resume_is_keyed_by_image_and_settings(tiny_model, tmp_path, capsys):
    """A re-run makes a mask again when its image file changed (replaced or fixed), keeps the others, and refuses other
    settings (zoom, flips, another model) in the same folder instead of mixing masks; a folder without the log resumes as before."""
    from melanoma.segment import SEG_PREDICT_LOG
    root, d, mdir, _ = tiny_model
    src = sorted((d / 'ISIC-2017_Validation_Data').glob('*.jpg'))
    imgs = tmp_path / 'imgs'; imgs.mkdir()
    for p in src: Image.open(p).resize((80, 60)).save(imgs / p.name)
    (imgs / 'broken.jpg').write_bytes(b'xx')
    out, cmd = tmp_path / 'masks', ['seg', 'predict', '--model', str(mdir), '--data', str(imgs), '--out', str(tmp_path / 'masks')]
    assert main(cmd) == 0 and '4 written' in capsys.readouterr().out
    first = out / f'{src[0].stem}_segmentation.png'
    Image.open(src[0]).transpose(Image.Transpose.ROTATE_180).resize((80, 60)).save(imgs / src[0].name)  # the image replaced
    Image.open(src[1]).resize((80, 60)).save(imgs / 'broken.jpg')  # the broken one fixed
    assert main(cmd) == 0
    txt = capsys.readouterr().out
    assert '2 written (1 again: their image changed), 3 already there' in txt, txt
    want, = predict_masks(load_seg_model(mdir), [imgs / src[0].name], progress=False)
    assert ((np.asarray(Image.open(first)) > 127) == want).all()
    assert main(cmd) == 0 and '0 written, 5 already there' in capsys.readouterr().out
    for extra, says in ((['--zoom', '0'], '--zoom 0.8 -> 0.0'), (['--tta'], '--tta 1 -> 4')):
        with pytest.raises(SystemExit, match='were made with other settings') as e: main(cmd + extra)
        assert says in str(e.value) and str(out) in str(e.value)
    other = tmp_path / 'other'
    save_seg_model(create_seg_model('tf_efficientnet_lite0', size=(32, 48), pretrained=False), other, dict(zoom=0.8))
    with pytest.raises(SystemExit, match=r'the model \(its weights\)'): main(['seg', 'predict', '--model', str(other), '--data', str(imgs), '--out', str(out)])
    (out / SEG_PREDICT_LOG).unlink()  # a folder from before the log: its masks are kept
    assert main(cmd + ['--zoom', '0']) == 0 and '0 written, 5 already there' in capsys.readouterr().out


def test_seg_predict_image_changed_while_predicting_is_made_again(tiny_model, tmp_path, monkeypatch):
    "An image replaced after it was read but before its mask was written keeps the stamp of what was read: the next run redoes it."
    import melanoma.segment as S
    root, d, mdir, _ = tiny_model
    imgs = tmp_path / 'imgs'; imgs.mkdir()
    src = sorted((d / 'ISIC-2017_Validation_Data').glob('*.jpg'))[:2]
    for p in src: Image.open(p).resize((80, 60)).save(imgs / p.name)
    real = S.predict_masks
    def replacing(*a, **k):
        out = real(*a, **k)
        Image.open(src[1]).resize((60, 80)).save(imgs / src[0].name)  # replaced while the masks were being made
        return out
    monkeypatch.setattr(S, 'predict_masks', replacing)
    assert S.seg_predict(mdir, imgs, tmp_path / 'masks', progress=False)['written'] == 2
    monkeypatch.setattr(S, 'predict_masks', real)
    res = S.seg_predict(mdir, imgs, tmp_path / 'masks', progress=False)
    assert (res['written'], res['again'], res['skipped']) == (1, 1, 1)
    assert Image.open(tmp_path / 'masks' / f'{src[0].stem}_segmentation.png').size == (60, 80)


def test_prepare_lesion_crop_with_model(tiny_model, tmp_path):
    from melanoma.prepare import prepare
    root, d, mdir, _ = tiny_model
    src = d / 'ISIC-2017_Validation_Data'
    rep = prepare(src, tmp_path / 'crops', size=24, mode='lesion-crop', seg_model=mdir, workers=1, progress=False)
    assert rep.written == 4 and not rep.failed
    assert len(list((tmp_path / 'crops_masks').glob('*_segmentation.png'))) == 4
    assert all(Image.open(p).size == (24, 24) for p in (tmp_path / 'crops').glob('*.jpg'))
    with pytest.raises(MelanomaError, match='lesion-crop'): prepare(src, tmp_path / 'c2', mode='lesion-crop')


def test_real_isic2017_layout():
    d = shared_path('isic-2017-seg-mini')
    df = read_seg_dataset(d, check=False)
    assert df.split.value_counts().to_dict() == {'train': 2000, 'valid': 150}
    m = read_mask(df.mask_path.iloc[0])
    assert m.shape == (192, 256) and m.any()
