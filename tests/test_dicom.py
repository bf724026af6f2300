"Tests for melanoma.dicom: decoding competition-style DICOMs to RGB (not pink), tags, quirks, writing."
import numpy as np
import pandas as pd
import pydicom
import pytest
from PIL import Image
from melanoma.core import MelanomaError
from melanoma.data import SITES, SEXES
import melanoma.dicom as D
from melanoma.dicom import read_dicom, dicom_meta, write_dicom, site_from_text, parse_age, lenient_dicom

# pylibjpeg is the optional `dicom` extra: compare against it only where it is installed
PLUGINS = ['pillow'] + ['pylibjpeg'] * D._PYLIBJPEG


def _gradient(h=96, w=128):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 200)], -1).astype(np.uint8)


def _channel_gap(a: np.ndarray, b: np.ndarray) -> float:
    "Largest difference between the per-channel means: a double YBR->RGB conversion (pink) moves them by 20+."
    return float(np.abs(a.reshape(-1, 3).mean(0) - b.reshape(-1, 3).mean(0)).max())


@pytest.mark.parametrize('quirks', [False, True])
def test_roundtrip(tmp_path, quirks):
    arr = _gradient()
    p = write_dicom(arr, tmp_path/'x.dcm', 'ISIC_0000042', patient_id='IP_0000001', sex='male', age=62.4,
                    site='head/neck', quirks=quirks)
    ds = pydicom.dcmread(p, force=True)
    assert ds.file_meta.TransferSyntaxUID == '1.2.840.10008.1.2.4.50' and ds.PhotometricInterpretation == 'YBR_FULL_422'
    assert (str(ds.PatientID).startswith('"')) == quirks
    m = dicom_meta(p)
    assert m['image_id'] == 'ISIC_0000042' and m['patient_id'] == 'IP_0000001'
    assert (m['sex'], m['age'], m['site']) == ('male', 62.0, 'head/neck')
    for plugin in ['', *PLUGINS]:
        im = read_dicom(p, plugin=plugin)
        a = np.asarray(im, dtype=float)
        assert im.mode == 'RGB' and im.size == (128, 96)
        assert np.abs(a - arr).mean() < 3 and _channel_gap(a, arr.astype(float)) < 2, plugin


def test_missing_tags_and_no_pixels(tmp_path):
    p = write_dicom(Image.new('RGB', (40, 30), 'white'), tmp_path/'ISIC_0000007.dcm', 'not-an-isic-id')
    m = dicom_meta(p)
    assert m['image_id'] == 'ISIC_0000007'  # falls back to the file name
    assert (m['sex'], m['age'], m['site']) == ('', None, '')
    ds = pydicom.dcmread(p)
    del ds.PixelData
    ds.save_as(tmp_path/'nopix.dcm')
    with pytest.raises(MelanomaError, match='nopix.dcm.*no pixel data'): read_dicom(tmp_path/'nopix.dcm')
    with pytest.raises(MelanomaError, match='nothere.dcm'): read_dicom(tmp_path/'nothere.dcm')
    assert dicom_meta(tmp_path/'nopix.dcm')['rows'] == 30  # tags still readable


def test_missing_pylibjpeg_names_the_extra(tmp_path, monkeypatch):
    p = write_dicom(_gradient(), tmp_path/'x.dcm', 'ISIC_0000001')
    monkeypatch.setattr(D, '_PYLIBJPEG', False)
    with pytest.raises(MelanomaError, match=r'x\.dcm.*melanoma\[dicom\]'): read_dicom(p, plugin='pylibjpeg')
    assert read_dicom(p).size == (128, 96) and read_dicom(p, plugin='pillow').size == (128, 96)  # Pillow needs no extra


def test_quirky_values_do_not_warn(tmp_path, recwarn):
    p = write_dicom(_gradient(), tmp_path/'q.dcm', 'ISIC_0000001', sex='female', age=30, site='torso', quirks=True)
    dicom_meta(p); read_dicom(p)
    assert not [w for w in recwarn if 'pydicom' in str(w.filename)]


def test_draft_and_bomb(tmp_path):
    p = write_dicom(Image.new('RGB', (800, 600), 'teal'), tmp_path/'big.dcm', 'ISIC_0000001')
    assert read_dicom(p, size=100).size == (200, 150)  # 1/4 scale keeps both sides >= 100
    with pytest.raises(MelanomaError, match='big.dcm.*limit'): read_dicom(p, max_pixels=10_000)


def test_vocabulary_helpers():
    assert site_from_text('Skin of part of upper limb') == 'upper extremity'
    assert site_from_text('"PALMS/SOLES"') == 'palms/soles'
    assert site_from_text('posterior torso') == 'torso'
    assert site_from_text('Skin') == ''
    assert parse_age('"070Y"') == 70.0 and parse_age('6M') == 0.5 and parse_age('abc') is None


# ---- the real competition DICOMs (skipped when ../shared/data is absent)

def _real_dicoms(root):
    return sorted(root.glob('train/*.dcm')) + sorted(root.glob('test/*.dcm'))


def test_real_dicoms_match_their_jpegs(siim_mini):
    paths = _real_dicoms(siim_mini)
    assert len(paths) >= 20
    for p in paths:
        ref = np.asarray(Image.open(siim_mini/'jpeg'/p.parent.name/f'{p.stem}.jpg').convert('RGB'), dtype=float)
        im = read_dicom(p, size=512)
        a = np.asarray(im.resize(ref.shape[1::-1], Image.Resampling.LANCZOS), dtype=float)
        assert np.abs(a - ref).mean() < 10, p  # resampling differences only
        assert _channel_gap(a, ref) < 3, p      # the colours are right: not pink, not raw YCbCr


def test_real_fast_path_equals_pydicom(siim_mini):
    small = [p for p in _real_dicoms(siim_mini) if p.stat().st_size < 70_000][:3]
    for p in small:
        fast = np.asarray(read_dicom(p), dtype=float)
        for plugin in PLUGINS:
            ref = np.asarray(read_dicom(p, plugin=plugin), dtype=float)
            assert fast.shape == ref.shape and np.abs(fast - ref).mean() < 1.5, (p, plugin)
        # what the "pink" bug looks like: pydicom's raw YCbCr planes are far from RGB
        with lenient_dicom():
            ds = pydicom.dcmread(p, force=True)
            ds.pixel_array_options(as_rgb=False)
            raw = ds.pixel_array.astype(float)
        assert _channel_gap(raw, fast) > 10


def test_real_tags(siim_mini):
    csv = pd.concat([pd.read_csv(siim_mini/'train.csv'), pd.read_csv(siim_mini/'test.csv')]).set_index('image_name')
    agree = 0
    for p in _real_dicoms(siim_mini):
        m = dicom_meta(p)
        assert m['image_id'] == p.stem and m['patient_id']
        assert m['sex'] in SEXES and m['site'] in SITES + [''] and 0 < m['age'] < 120
        assert m['photometric'] == 'YBR_FULL_422' and m['rows'] > 0 and m['columns'] > 0
        if p.stem in csv.index: agree += csv.loc[p.stem, 'sex'] == m['sex']
    assert agree > 0  # tags may disagree with the CSV, but they are the same kind of values
