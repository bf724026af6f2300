"Tests for melanoma.prepare: open_image on every awkward kind of file, resize_image, and prepare."
import os, shutil, struct, zlib
from pathlib import Path
import numpy as np
import pandas as pd
import pydicom
import pytest
from PIL import Image
from melanoma.core import MelanomaError
from melanoma.data import read_siim2020
from melanoma.dicom import write_dicom
from melanoma.images import open_image, resize_image, to_rgb

from melanoma.prepare import prepare, prepare_cli, prepare_one, FAILURES_CSV
RNG = np.random.default_rng(0)
BASE = Image.fromarray(RNG.integers(0, 256, (60, 80, 3), dtype=np.uint8))


def _png_header(w: int, h: int) -> bytes:
    "A PNG that claims w x h pixels and holds none."
    chunk = lambda t, d: struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) + chunk(b'IEND', b'')


def make_bad(folder: Path) -> dict[str, str]:
    "Write one file of every bad kind into `folder`; returns {file name: word expected in the error}."
    folder.mkdir(parents=True, exist_ok=True)
    (folder/'empty.jpg').write_bytes(b'')
    (folder/'text.jpg').write_text('this is not an image')
    BASE.save(folder/'whole.jpg')
    (folder/'cut.jpg').write_bytes((folder/'whole.jpg').read_bytes()[:500])
    (folder/'whole.jpg').unlink()
    (folder/'bomb.png').write_bytes(_png_header(100_000, 100_000))
    ds = pydicom.dcmread(write_dicom(BASE, folder/'nopix.dcm', 'ISIC_0000001'))
    del ds.PixelData
    ds.save_as(folder/'nopix.dcm')
    return {'empty.jpg': 'empty', 'text.jpg': 'not an image', 'cut.jpg': 'truncated', 'bomb.png': 'bomb',
            'nopix.dcm': 'no pixel data'}


def make_good(folder: Path) -> list[str]:
    "Write one readable file of every awkward mode into `folder`."
    folder.mkdir(parents=True, exist_ok=True)
    BASE.save(folder/'plain.jpg')
    BASE.convert('CMYK').save(folder/'cmyk.jpg')
    rgba = BASE.convert('RGBA'); rgba.putalpha(128); rgba.save(folder/'rgba.png')
    BASE.convert('L').save(folder/'grey.png')
    BASE.convert('P').save(folder/'palette.png')
    BASE.convert('LA').save(folder/'grey_alpha.png')
    Image.fromarray(np.asarray(BASE.convert('L'), dtype=np.uint16) * 257).save(folder/'grey16.png')
    Image.fromarray(np.asarray(BASE.convert('L'), dtype=np.int32) * 100_000).save(folder/'grey32.tif')
    strip = Image.new('RGB', (80, 60), 'blue'); strip.paste((255, 0, 0), (0, 0, 20, 60))  # red on the left
    ex = Image.Exif(); ex[0x0112] = 8  # to display, rotate 90 degrees counter-clockwise
    strip.save(folder/'exif.jpg', exif=ex)
    write_dicom(BASE, folder/'dicom.dcm', 'ISIC_0000002')
    return sorted(p.name for p in folder.iterdir())


def test_missing_file(tmp_path):
    with pytest.raises(MelanomaError, match='nothere.jpg: no such file'): open_image(tmp_path/'nothere.jpg')
    with pytest.raises(MelanomaError, match='not a file'): open_image(tmp_path)


def test_bad_files_name_themselves(tmp_path):
    for name, word in make_bad(tmp_path).items():
        with pytest.raises(MelanomaError) as e: open_image(tmp_path/name)
        assert str(tmp_path/name) in str(e.value) and word in str(e.value), str(e.value)


def test_every_mode_becomes_rgb(tmp_path):
    for name in make_good(tmp_path):
        im = open_image(tmp_path/name)
        assert im.mode == 'RGB', name
        assert im.size == ((60, 80) if name == 'exif.jpg' else (80, 60)), name
    grey = np.asarray(BASE.convert('L'), dtype=float)
    assert np.abs(np.asarray(open_image(tmp_path/'grey16.png'))[..., 1] - grey).max() <= 1  # scaled, not clipped at 255
    g32 = np.asarray(open_image(tmp_path/'grey32.tif'))[..., 0].astype(float)  # beyond 16 bits: stretched to its range
    assert np.abs(g32 - (grey - grey.min()) * 255 / (grey.max() - grey.min())).max() <= 1
    half = np.asarray(open_image(tmp_path/'rgba.png'), dtype=float)  # 50% alpha over black
    assert np.abs(half - np.asarray(BASE, dtype=float) * 128 / 255).max() <= 2
    cmyk = np.asarray(open_image(tmp_path/'cmyk.jpg'), dtype=float)
    assert np.abs(cmyk - np.asarray(BASE, dtype=float)).mean() < 15
    rot = open_image(tmp_path/'exif.jpg')  # upright: the red strip is now at the bottom
    assert rot.getpixel((30, 75))[0] > 200 and rot.getpixel((30, 5))[2] > 200


def test_to_rgb_modes():
    assert to_rgb(Image.new('1', (4, 4), 1)).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(Image.new('F', (4, 4), 0.5)).mode == 'RGB'
    assert to_rgb(Image.new('RGBA', (4, 4), (10, 20, 30, 0))).getpixel((0, 0)) == (0, 0, 0)


def test_bomb_limit(tmp_path):
    BASE.save(tmp_path/'a.png')
    with pytest.raises(MelanomaError, match='a.png.*limit'): open_image(tmp_path/'a.png', max_pixels=100)
    assert open_image(tmp_path/'a.png', max_pixels=80 * 60).size == (80, 60)


def test_draft_mode(tmp_path):
    Image.new('RGB', (2000, 1000), 'red').save(tmp_path/'big.jpg')
    assert open_image(tmp_path/'big.jpg', size=100).size == (250, 125)  # 1/8 scale, both sides still >= 100
    assert open_image(tmp_path/'big.jpg', size=200).size == (500, 250)
    assert open_image(tmp_path/'big.jpg').size == (2000, 1000)


def test_resize_modes():
    im = Image.new('RGB', (200, 100), 'blue')
    im.paste((255, 0, 0), (0, 0, 50, 100))  # red strip on the left quarter
    assert resize_image(im, 64).size == (64, 64) and resize_image(im, (32, 16)).size == (32, 16)
    sq = resize_image(im, 64)
    crop = resize_image(im, 64, 'center-crop')
    assert sq.getpixel((2, 32))[0] > 200 and crop.getpixel((2, 32))[2] > 200  # the crop drops the red strip
    with pytest.raises(MelanomaError, match='mode'): resize_image(im, 64, 'stretch')


# ---- prepare

def _siim(root: Path, n: int = 6) -> list[str]:
    "A small SIIM-ISIC 2020 folder: JPEGs for the first half of the ids, DICOMs for the rest."
    ids = [f'ISIC_{i:07d}' for i in range(n)]
    (root/'jpeg'/'train').mkdir(parents=True); (root/'train').mkdir()
    pd.DataFrame(dict(image_name=ids, patient_id=[f'IP_{i}' for i in range(n)], sex='female', age_approx=40.0,
                      anatom_site_general_challenge='torso', diagnosis='nevus', benign_malignant='benign',
                      target=0)).to_csv(root/'train.csv', index=False)
    pd.DataFrame(dict(image_name=ids[:1], target=0.5)).to_csv(root/'sample_submission.csv', index=False)
    for i, iid in enumerate(ids):
        img = Image.fromarray(RNG.integers(0, 256, (90, 120, 3), dtype=np.uint8))
        if i < n // 2: img.save(root/'jpeg'/'train'/f'{iid}.jpg')
        else: write_dicom(img, root/'train'/f'{iid}.dcm', iid)
    return ids


def test_prepare_goes_on_past_bad_images_and_resumes(tmp_path):
    src = tmp_path/'folder'
    bad = make_bad(src/'bad')
    good = make_good(src/'good')
    rep = prepare(src, tmp_path/'out', size=32, workers=1, progress=False)
    assert rep.written == len(good) and rep.skipped == 0 and len(rep.failed) == len(bad)
    for path, why in rep.failed: assert str(path) in why and bad[Path(path).name] in why
    for name in good: assert Image.open(tmp_path/'out'/'good'/Path(name).with_suffix('.jpg')).size == (32, 32)
    assert len(pd.read_csv(tmp_path/'out'/FAILURES_CSV)) == len(bad)
    assert 'FAILED' in str(rep) and 'bomb.png' in str(rep)
    rep = prepare(src, tmp_path/'out', size=32, workers=1, progress=False)  # resumes: everything good is there
    assert (rep.written, rep.skipped, len(rep.failed)) == (0, len(good), len(bad))
    rep = prepare(src, tmp_path/'out', size=32, workers=1, progress=False, overwrite=True)
    assert rep.written == len(good)


def test_prepare_siim_layout_parallel(tmp_path):
    ids = _siim(tmp_path/'src')
    (tmp_path/'src'/'jpeg'/'train'/f'{ids[0]}.jpg').write_bytes(b'\xff\xd8broken')
    rep = prepare(tmp_path/'src', tmp_path/'out', size=48, workers=2, progress=False)
    assert (rep.written, len(rep.failed), len(rep.missing)) == (5, 1, 0) and ids[0] in rep.failed[0][1]
    assert sorted(rep.tables) == ['sample_submission.csv', 'train.csv']
    df = read_siim2020(tmp_path/'out', missing='ignore')  # the same reader reads the result
    df = df[df.image_id != ids[0]]
    assert sorted(df.image_id) == ids[1:] and all(p.endswith('.jpg') and '/jpeg/train/' in p for p in df.path)
    assert {Image.open(p).size for p in df.path} == {(48, 48)}


def test_prepare_dicom_only_and_center_crop(tmp_path):
    ids = _siim(tmp_path/'src')
    rep = prepare(tmp_path/'src', tmp_path/'out', size=40, mode='center-crop', images='dicom', workers=1, progress=False)
    assert rep.written == 3 and len(rep.missing) == 3 and not rep.failed
    assert sorted(p.stem for p in (tmp_path/'out'/'jpeg'/'train').glob('*.jpg')) == ids[3:]


def test_prepare_cleans_partial_files_and_checks_arguments(tmp_path):
    ids = _siim(tmp_path/'src', n=2)
    out = tmp_path/'out'/'jpeg'/'train'
    out.mkdir(parents=True)
    (out/f'.{ids[0]}.abcd1234.jpg').write_bytes(b'half a jpeg')  # what a killed run leaves behind
    assert prepare(tmp_path/'src', tmp_path/'out', size=16, workers=1, progress=False).written == 2
    assert sorted(os.listdir(out)) == [f'{i}.jpg' for i in ids]
    assert prepare_one((str(tmp_path/'src'/'nothere.jpg'), str(tmp_path/'x.jpg')))[0] == 'failed'
    with pytest.raises(MelanomaError, match='differ'): prepare(tmp_path/'src', tmp_path/'src')
    with pytest.raises(MelanomaError, match='mode'): prepare(tmp_path/'src', tmp_path/'o2', mode='squash')
    with pytest.raises(MelanomaError, match='not found'): prepare(tmp_path/'nothere', tmp_path/'o2')


def test_prepare_cli_exit_status(tmp_path, capsys):
    make_bad(tmp_path/'bad')
    assert prepare_cli(str(tmp_path/'bad'), str(tmp_path/'out'), size=16, workers=1) == 1  # nothing could be written
    assert 'FAILED' in capsys.readouterr().out
    _siim(tmp_path/'ok', n=2)
    assert prepare_cli(str(tmp_path/'ok'), str(tmp_path/'out2'), size=16, workers=1) == 0


def test_prepare_sample_data(sample_data, tmp_path):
    rep = prepare(sample_data, tmp_path/'out', size=32, workers=1, progress=False)
    assert rep.written > 0 and not rep.failed and not rep.missing
    assert len(read_siim2020(tmp_path/'out', missing='error')) == len(read_siim2020(sample_data))


# ---- the real SIIM-ISIC 2020 mini (skipped when ../shared/data is absent)

def _subset(root: Path, dest: Path, ids_per_split: dict[str, list[str]], dicom: bool) -> Path:
    "A SIIM-ISIC 2020 folder holding only the given ids, with links to the real files."
    for split, ids in ids_per_split.items():
        df = pd.read_csv(root/f'{split}.csv')
        dest.mkdir(parents=True, exist_ok=True)
        df[df.image_name.isin(ids)].to_csv(dest/f'{split}.csv', index=False)
        sub = dest/(split if dicom else f'jpeg/{split}')
        sub.mkdir(parents=True, exist_ok=True)
        for i in ids:
            f = root/split/f'{i}.dcm' if dicom else root/'jpeg'/split/f'{i}.jpg'
            os.symlink(f, sub/f.name)
    return dest


def test_real_prepare_jpeg_and_dicom(siim_mini, tmp_path):
    dcm = {s: sorted(p.stem for p in (siim_mini/s).glob('*.dcm')) for s in ('train', 'test')}
    jpg = {'train': sorted(pd.read_csv(siim_mini/'train.csv').image_name)[:30] + dcm['train'], 'test': dcm['test']}
    rep_j = prepare(_subset(siim_mini, tmp_path/'j', jpg, dicom=False), tmp_path/'oj', size=64, workers=2, progress=False)
    rep_d = prepare(_subset(siim_mini, tmp_path/'d', dcm, dicom=True), tmp_path/'od', size=64, images='dicom', workers=2, progress=False)
    assert rep_j.written == sum(map(len, jpg.values())) and rep_d.written == sum(map(len, dcm.values()))
    assert not rep_j.failed and not rep_d.failed
    for split, ids in dcm.items():
        for i in ids:
            a = np.asarray(Image.open(tmp_path/'od'/'jpeg'/split/f'{i}.jpg'), dtype=float)
            b = np.asarray(Image.open(tmp_path/'oj'/'jpeg'/split/f'{i}.jpg'), dtype=float)
            assert a.shape == b.shape == (64, 64, 3)
            assert np.abs(a - b).mean() < 8, i  # the DICOM and the competition JPEG give the same picture
            assert np.abs(a.reshape(-1, 3).mean(0) - b.reshape(-1, 3).mean(0)).max() < 3, i  # not pink


def test_prepare_copies_jpegs_already_at_size(tmp_path):
    (tmp_path/'src').mkdir()
    Image.fromarray(RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path/'src'/'a.jpg', quality=80)
    Image.fromarray(RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path/'src'/'b.png')
    ex = Image.Exif(); ex[0x0112] = 3
    Image.new('RGB', (32, 32), 'red').save(tmp_path/'src'/'c.jpg', exif=ex)
    assert prepare(tmp_path/'src', tmp_path/'out', size=32, workers=1, progress=False).written == 3
    assert (tmp_path/'out'/'a.jpg').read_bytes() == (tmp_path/'src'/'a.jpg').read_bytes()  # copied, no re-encoding
    assert (tmp_path/'out'/'c.jpg').read_bytes() != (tmp_path/'src'/'c.jpg').read_bytes()  # rotated: re-encoded
    assert Image.open(tmp_path/'out'/'b.jpg').format == 'JPEG'
    Image.new('RGB', (32, 32), 'red').save(tmp_path/'src'/'b.jpg')  # b.jpg and b.png both map to out/b.jpg
    rep = prepare(tmp_path/'src', tmp_path/'out2', size=32, workers=1, progress=False)
    assert rep.written == 3 and len(rep.failed) == 1 and 'same output' in rep.failed[0][1]


def test_real_prepare_isic2019_layout(isic2019_mini, tmp_path):
    from melanoma.data import read_isic2019
    src = tmp_path/'isic'
    (src/'ISIC_2019_Training_Input').mkdir(parents=True)
    gt = pd.read_csv(isic2019_mini/'ISIC_2019_Training_GroundTruth.csv').iloc[::500]
    meta = pd.read_csv(isic2019_mini/'ISIC_2019_Training_Metadata.csv')
    gt.to_csv(src/'ISIC_2019_Training_GroundTruth.csv', index=False)
    meta[meta.image.isin(gt.image)].to_csv(src/'ISIC_2019_Training_Metadata.csv', index=False)
    for i in gt.image: os.symlink(isic2019_mini/'ISIC_2019_Training_Input'/f'{i}.jpg', src/'ISIC_2019_Training_Input'/f'{i}.jpg')
    rep = prepare(src, tmp_path/'out', size=64, workers=1, progress=False)
    assert rep.written == len(gt) and not rep.failed and sorted(rep.tables) == sorted(p.name for p in src.glob('*.csv'))
    df = read_isic2019(tmp_path/'out', missing='error')
    assert len(df) == len(gt) and {Image.open(p).size for p in df.path} == {(64, 64)}


def test_dicom_without_extension(tmp_path):
    from melanoma.images import is_dicom
    p = write_dicom(BASE, tmp_path/'scan', 'ISIC_0000004')  # no .dcm: found by the DICM marker
    assert is_dicom(p) and not is_dicom(tmp_path/'nothere')
    assert open_image(p).size == (80, 60)


def test_prepare_ham10000_layout(tmp_path):
    from melanoma.data import read_ham10000
    src = tmp_path/'ham'
    ids = [f'ISIC_00{i:05d}' for i in range(4)]
    pd.DataFrame(dict(lesion_id=['HAM_1', 'HAM_1', 'HAM_2', 'HAM_3'], image_id=ids, dx=['mel', 'nv', 'bkl', 'nv'],
                      dx_type='histo', age=[50, 50, 30, 40], sex='male', localization='back')).to_csv(src.mkdir() or src/'HAM10000_metadata.csv', index=False)
    for i, iid in enumerate(ids):
        folder = src/('HAM10000_images_part_1' if i < 2 else 'HAM10000_images_part_2')
        folder.mkdir(exist_ok=True)
        Image.fromarray(RNG.integers(0, 256, (45, 60, 3), dtype=np.uint8)).save(folder/f'{iid}.jpg')
    rep = prepare(src, tmp_path/'out', size=24, workers=1, progress=False)
    assert rep.written == 4 and rep.tables == ['HAM10000_metadata.csv']
    assert (tmp_path/'out'/'HAM10000_images_part_2'/f'{ids[3]}.jpg').is_file()
    df = read_ham10000(tmp_path/'out', missing='error')
    assert len(df) == 4 and {Image.open(p).size for p in df.path} == {(24, 24)}
