"Tests for melanoma.store: the streaming store gives the cache's pixels, survives bad files, works in CacheDL workers, and choose_store picks by budget."
import warnings
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from melanoma.store import JPEGStore, choose_store, store_plan, header_ok, decode_pil, decode_tv, DECODERS
from melanoma.store import image_cache, CachedItems

from melanoma.images import load_resized
from melanoma.learner import CacheDL
pytestmark = pytest.mark.timeout(300)


def table(paths) -> pd.DataFrame:
    return pd.DataFrame({'image_id': [Path(p).name for p in paths], 'path': [str(p) for p in paths]})


@pytest.fixture(scope='module')
def images(sample_data):
    "The sample set's JPEGs and DICOMs (distinct ids: the file names)."
    return sorted((sample_data / 'jpeg' / 'train').glob('*.jpg'))[:12] + sorted((sample_data / 'train').glob('*.dcm'))


@pytest.mark.parametrize('decoder', list(DECODERS))
@pytest.mark.parametrize('size', [64, 40])
def test_same_pixels_as_cache(images, decoder, size):
    x, ok = image_cache(table(images), size)
    assert ok.all()
    s = JPEGStore(images, size, decoder)
    assert s.shape == x.shape and s.dtype == x.dtype
    rows = torch.tensor([5, 0, len(images) - 1, 5])
    assert torch.equal(s[rows], x[rows])
    assert torch.equal(s[np.arange(len(images))], x)
    assert not s.bad.any()


def test_same_pixels_real(siim_mini):
    "Real 2020 JPEGs (prepared at 512 px): both decoders match load_resized at 512 and 384."
    paths = sorted((siim_mini / 'jpeg' / 'train').glob('*.jpg'))[:6]
    for size in (512, 384):
        for p in paths:
            ref = torch.from_numpy(load_resized(p, size).copy()).permute(2, 0, 1)
            assert torch.equal(decode_pil(p, size), ref) and torch.equal(decode_tv(p, size), ref), (p, size)


def test_large_jpeg_uses_draft(tmp_path, images):
    "A JPEG over twice the size decodes at reduced scale (Pillow's draft), identically through both decoders."
    from PIL import Image
    big = tmp_path / 'big.jpg'
    Image.open(images[0]).convert('RGB').resize((700, 520)).save(big, quality=90)
    ref = torch.from_numpy(load_resized(big, 128).copy()).permute(2, 0, 1)
    assert torch.equal(decode_tv(big, 128), ref) and torch.equal(decode_pil(big, 128), ref)


@pytest.mark.parametrize('decoder', list(DECODERS))
def test_corrupt_and_missing(tmp_path, images, decoder):
    trunc = tmp_path / 'trunc.jpg'; trunc.write_bytes(images[0].read_bytes()[:400])
    junk = tmp_path / 'junk.jpg'; junk.write_bytes(b'not a jpeg at all' * 10)
    s = JPEGStore([images[0], trunc, junk, tmp_path / 'missing.jpg'], 32, decoder)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        b = s[[0, 1, 2, 3, 1]]
    assert b.shape == (5, 3, 32, 32) and b[0].sum() > 0 and b[1:].sum() == 0
    assert s.bad.tolist() == [False, True, True, True]
    assert 'trunc.jpg' in s.errors[1] and 'junk.jpg' in s.errors[2] and 'no such file' in s.errors[3]
    assert len([m for m in w if 'black image' in str(m.message)]) == 3  # once per file


def test_header_ok(tmp_path, images):
    (tmp_path / 'empty.jpg').write_bytes(b'')
    (tmp_path / 'text.jpg').write_text('hello')
    ok, errs = header_ok([images[0], images[-1], tmp_path / 'empty.jpg', tmp_path / 'text.jpg', tmp_path / 'nope.jpg'])
    assert ok.tolist() == [True, True, False, False, False]
    assert 'empty' in errs[2] and 'not an image' in errs[3] and 'no such file' in errs[4]


def test_in_cachedl_with_workers(tmp_path, images):
    "CacheDL over a JPEGStore with 2 worker processes: the cache's batches; a bad file marked in a worker is seen here."
    trunc = tmp_path / 'trunc.jpg'; trunc.write_bytes(images[1].read_bytes()[:400])
    paths = list(images) + [trunc]
    n = len(paths)
    x, _ = image_cache(table(paths), 48)
    s = JPEGStore(paths, 48)
    y, t = torch.arange(n), np.zeros(n)
    dl = CacheDL(CachedItems(s, y, t, np.arange(n)), bs=5, shuffle=False, num_workers=2)
    assert dl.fake_l.num_workers == 2
    xb, yb = map(torch.cat, zip(*[(b[0], b[1]) for b in dl]))
    assert torch.equal(xb, x) and torch.equal(yb, y)
    assert s.bad.tolist() == [False] * (n - 1) + [True]  # flagged in a worker, through shared memory
    assert s.errors == {}  # the text stayed in the worker that met it
    # shuffled, with the cache's own order of rows
    dl = CacheDL(CachedItems(s, y, t, np.arange(n)), bs=4, shuffle=True, num_workers=2)
    for xb, yb in dl: assert torch.equal(xb, x[yb.cpu()])


def test_store_plan_rule():
    assert store_plan(10_734, 256, budget_gib=8)['mode'] == 'memory'  # 1.97 GiB array, 6.9 GiB peak
    assert store_plan(10_734, 256, budget_gib=6)['mode'] == 'stream'
    assert store_plan(10_734, 256, budget_gib=8, procs=2)['mode'] == 'stream'
    assert store_plan(58_457, 512, budget_gib=1000)['mode'] == 'memory'
    assert store_plan(58_457, 512, budget_gib=1000, mode='stream')['mode'] == 'stream'
    p = store_plan(100, 64)  # default budget: half of available RAM
    assert p['budget_gib'] > 0 and p['mode'] == 'memory' and 'budget' in p['why']


def test_choose_store_by_budget(tmp_path, images):
    df = table(images + [tmp_path / 'gone.jpg'])
    need = store_plan(len(df), 32)['need_gib']
    xs, oks = choose_store(df, 32, budget_gib=need * 0.9)
    xm, okm = choose_store(df, 32, budget_gib=need * 1.1, cache_dir=tmp_path / 'c', keep_npy=False)
    assert isinstance(xs, JPEGStore) and isinstance(xm, torch.Tensor)
    assert oks.tolist() == okm.tolist() == [True] * len(images) + [False]
    r = torch.from_numpy(np.flatnonzero(oks))
    assert torch.equal(xs[r], xm[r])
    assert not (tmp_path / 'c').exists()  # keep_npy=False: nothing on disk
    with pytest.raises(Exception, match='--store must be one of'): choose_store(df, 32, mode='ram')


def test_npy_only_when_smaller(tmp_path, images):
    df = table(images[:6])
    choose_store(df, 16, mode='memory', cache_dir=tmp_path / 'small')
    choose_store(df, 64, mode='memory', cache_dir=tmp_path / 'large')  # 64 px raw > the 64 px sample JPEGs
    assert (tmp_path / 'small' / 'images.npy').is_file() and not (tmp_path / 'large').exists()
    choose_store(df, 64, mode='stream', cache_dir=tmp_path / 'stream')
    assert not (tmp_path / 'stream').exists()


def test_exif_and_grayscale(tmp_path, images):
    "An EXIF-rotated JPEG and a grayscale one: torchvision decoding gives load_resized's pixels (orientation, RGB)."
    from PIL import Image
    im = Image.open(images[0]).convert('RGB').resize((80, 60))
    exif = Image.Exif(); exif[0x0112] = 6  # rotate 90 degrees on display
    im.save(tmp_path / 'rot.jpg', quality=90, exif=exif.tobytes())
    im.convert('L').save(tmp_path / 'gray.jpg', quality=90)
    for p in (tmp_path / 'rot.jpg', tmp_path / 'gray.jpg'):
        for size in (60, 40):
            ref = torch.from_numpy(load_resized(p, size).copy()).permute(2, 0, 1)
            assert torch.equal(decode_tv(p, size), ref), (p.name, size)
