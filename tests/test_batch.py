"Tests for melanoma.batch: batch/unbatch by count and bytes, copy/hardlink/move/zip, crashes and resumes, checksums."
import errno, os, random, zipfile
from pathlib import Path
import pandas as pd
import pytest
import melanoma.batch as mb
from melanoma.batch import batch, unbatch, read_manifest, list_files, MANIFEST
from melanoma.core import MelanomaError, sha256_file
from melanoma.cli import main

def make_files(d: Path, n: int = 23, seed: int = 0) -> dict:
    "Write `n` random files (in two sub-folders plus a CSV) under `d`; return {relative path: sha256}."
    rng = random.Random(seed)
    for i in range(n):
        p = d / ('train' if i % 3 else 'test') / f'ISIC_{i:07d}.jpg'
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.randbytes(200 + 37 * i))
    (d / 'train.csv').write_text('image_name,target\n' + ''.join(f'ISIC_{i:07d},0\n' for i in range(n)))
    return snapshot(d)

def snapshot(d: Path) -> dict:
    return {f: sha256_file(d / f) for f in list_files(d)}

def check_batches(dest: Path, max_files=None, max_bytes=None):
    df = read_manifest(dest / MANIFEST)
    g = df.groupby('batch')
    if max_files: assert g.size().max() <= max_files
    if max_bytes: assert all(b <= max_bytes or n == 1 for b, n in zip(g.bytes.sum(), g.size()))
    assert list(g.groups) == [f'batch_{i:04d}' for i in range(len(g))]
    return df

@pytest.mark.parametrize('method', ['copy', 'hardlink', 'move'])
def test_roundtrip_by_count(tmp_path, method):
    src = tmp_path / 'src'; orig = make_files(src)
    df = batch(src, tmp_path / 'b', max_files=5, method=method)
    assert len(df) == len(orig) and df.batch.nunique() == 5
    check_batches(tmp_path / 'b', max_files=5)
    assert dict(zip(df.file, df.sha256)) == orig
    for f, b in zip(df.file, df.batch): assert sha256_file(tmp_path / 'b' / b / f) == orig[f]
    if method == 'move': assert list_files(src) == []
    else: assert snapshot(src) == orig
    if method == 'hardlink': assert os.path.samefile(src / df.file[0], tmp_path / 'b' / df.batch[0] / df.file[0])
    out = tmp_path / 'out'
    unbatch(tmp_path / 'b', out, method=method)
    assert snapshot(out) == orig

def test_by_bytes_and_determinism(tmp_path):
    src = tmp_path / 'src'; make_files(src)
    a = batch(src, tmp_path / 'a', max_bytes='2kB')
    b = batch(src, tmp_path / 'b', max_bytes=2000, max_files=1000)
    check_batches(tmp_path / 'a', max_bytes=2000)
    pd.testing.assert_frame_equal(a, b)
    assert a.file.tolist() == sorted(a.file)

def test_zip_roundtrip_and_deterministic(tmp_path):
    src = tmp_path / 'src'; orig = make_files(src)
    batch(src, tmp_path / 'z1', max_files=10, zip=True)
    batch(src, tmp_path / 'z2', max_files=10, zip=True)
    zips = sorted(p.name for p in (tmp_path / 'z1').glob('*.zip'))
    assert zips == ['batch_0000.zip', 'batch_0001.zip', 'batch_0002.zip']
    for z in zips: assert sha256_file(tmp_path / 'z1' / z) == sha256_file(tmp_path / 'z2' / z)  # same files -> same zip
    with zipfile.ZipFile(tmp_path / 'z1' / zips[0]) as zf:
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist() if i.filename.endswith('.jpg'))
    unbatch(tmp_path / 'z1', tmp_path / 'out', method='move')
    assert snapshot(tmp_path / 'out') == orig and not list((tmp_path / 'z1').glob('*.zip'))

def test_dry_run_changes_nothing(tmp_path, capsys):
    src = tmp_path / 'src'; orig = make_files(src)
    df = batch(src, tmp_path / 'b', max_files=10, method='move', dry_run=True)
    assert df.batch.nunique() == 3 and not (tmp_path / 'b').exists() and snapshot(src) == orig
    assert 'batch_0002' in capsys.readouterr().out

class Crash(Exception): pass

def crash_after(monkeypatch, name: str, k: int):
    "Make melanoma.batch.`name` raise Crash after `k` successful calls."
    real, n = getattr(mb, name), [0]
    def f(*a, **kw):
        if n[0] >= k: raise Crash
        n[0] += 1; return real(*a, **kw)
    monkeypatch.setattr(mb, name, f)

@pytest.mark.parametrize('method,fn', [('copy', '_copy_hashing'), ('move', '_rename')])
def test_batch_crash_and_resume(tmp_path, monkeypatch, method, fn):
    src = tmp_path / 'src'; orig = make_files(src)
    with monkeypatch.context() as m:
        crash_after(m, fn, 9)
        with pytest.raises(Crash): batch(src, tmp_path / 'b', max_files=4, method=method)
    assert (tmp_path / 'b' / MANIFEST).exists()  # the plan was written before acting
    placed = [p for p in (tmp_path / 'b').rglob('*.*') if p.name != MANIFEST]
    assert len(placed) == 9 and not [p for p in (tmp_path / 'b').rglob('.*')]  # no temporary files left behind
    if method == 'move': assert len(list_files(src)) == len(orig) - 9
    batch(src, tmp_path / 'b', max_files=4, method=method)  # resume
    df = check_batches(tmp_path / 'b', max_files=4)
    assert len(df) == len(orig)
    assert len([p for p in (tmp_path / 'b').rglob('*') if p.is_file()]) == len(orig) + 1  # nothing duplicated
    unbatch(tmp_path / 'b', tmp_path / 'out')
    assert snapshot(tmp_path / 'out') == orig

def test_move_cross_device_crash_window(tmp_path, monkeypatch):
    "Across file systems a move is copy + delete; a crash between the two leaves the file twice, and a re-run fixes it."
    src = tmp_path / 'src'; orig = make_files(src, n=8)
    def exdev(s, t): raise OSError(errno.EXDEV, 'cross-device link')
    monkeypatch.setattr(mb, '_rename', exdev)
    real_unlink, n = Path.unlink, [0]
    def unlink(self, *a, **kw):
        if self.parent.parent == src or self.parent == src:
            n[0] += 1
            if n[0] == 4: raise Crash
        return real_unlink(self, *a, **kw)
    with monkeypatch.context() as m:
        m.setattr(Path, 'unlink', unlink)
        with pytest.raises(Crash): batch(src, tmp_path / 'b', max_files=3, method='move')
    assert len(list_files(src)) == len(orig) - 3  # the 4th file is now in both places
    assert len([p for p in (tmp_path / 'b').rglob('*') if p.is_file() and p.name != MANIFEST]) == 4
    batch(src, tmp_path / 'b', max_files=3, method='move')
    assert list_files(src) == []
    unbatch(tmp_path / 'b', tmp_path / 'out')
    assert snapshot(tmp_path / 'out') == orig

def test_zip_move_crash_and_resume(tmp_path, monkeypatch):
    src = tmp_path / 'src'; orig = make_files(src)
    real, n = mb._zip_batch, [0]
    def f(*a, **kw):
        if n[0] == 2: raise Crash
        n[0] += 1; return real(*a, **kw)
    with monkeypatch.context() as m:
        m.setattr(mb, '_zip_batch', f)
        with pytest.raises(Crash): batch(src, tmp_path / 'z', max_files=5, zip=True, method='move')
    assert len(list((tmp_path / 'z').glob('*.zip'))) == 2
    batch(src, tmp_path / 'z', max_files=5, zip=True, method='move')
    assert list_files(src) == [] and len(list((tmp_path / 'z').glob('*.zip'))) == 5
    unbatch(tmp_path / 'z', tmp_path / 'out')
    assert snapshot(tmp_path / 'out') == orig

def test_unbatch_crash_and_resume(tmp_path, monkeypatch):
    src = tmp_path / 'src'; orig = make_files(src)
    batch(src, tmp_path / 'b', max_files=6, method='move')
    with monkeypatch.context() as m:
        crash_after(m, '_rename', 10)
        with pytest.raises(Crash): unbatch(tmp_path / 'b', src, method='move')
    assert len(list_files(src)) == 10
    unbatch(tmp_path / 'b', src, method='move')
    assert snapshot(src) == orig and list_files(tmp_path / 'b') == [MANIFEST]
    unbatch(tmp_path / 'b', src, method='move')  # idempotent: verifies, changes nothing
    assert snapshot(src) == orig

def test_changed_file_detected(tmp_path):
    src = tmp_path / 'src'; make_files(src)
    df = batch(src, tmp_path / 'b', max_files=5)
    f, b = df.file[3], df.batch[3]
    (tmp_path / 'b' / b / f).write_bytes(b'tampered')
    with pytest.raises(MelanomaError, match=f'{f}: checksum differs'): unbatch(tmp_path / 'b', tmp_path / 'out')
    assert len(list_files(tmp_path / 'out')) == len(df) - 1  # the rest was restored
    # a source changed between planning (manifest) and copying
    (tmp_path / 'b2').mkdir(); mb.write_csv(df.assign(batch='batch_0000'), tmp_path / 'b2' / MANIFEST)
    (src / df.file[0]).write_bytes(b'changed')
    with pytest.raises(MelanomaError, match='checksum differs from the manifest'): batch(src, tmp_path / 'b2')

def test_unreadable_file_skipped(tmp_path, monkeypatch, capsys):
    src = tmp_path / 'src'; orig = make_files(src, n=6)
    real = mb.sha256_file
    def f(p, *a):
        if Path(p).name == 'ISIC_0000002.jpg': raise PermissionError(errno.EACCES, 'Permission denied', str(p))
        return real(p, *a)
    monkeypatch.setattr(mb, 'sha256_file', f)
    df = batch(src, tmp_path / 'b')
    assert len(df) == len(orig) - 1 and 'skipped 1 unreadable' in capsys.readouterr().out

def test_disk_full(tmp_path, monkeypatch):
    src = tmp_path / 'src'; make_files(src, n=5)
    def full(*a): raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(mb, '_copy_hashing', full)
    with pytest.raises(MelanomaError, match='disk full.*re-run'): batch(src, tmp_path / 'b')
    assert (tmp_path / 'b' / MANIFEST).exists()

def test_errors(tmp_path):
    with pytest.raises(MelanomaError, match='not a folder'): batch(tmp_path / 'nope', tmp_path / 'b')
    with pytest.raises(MelanomaError, match='method'): batch(tmp_path, tmp_path / 'b', method='teleport')
    with pytest.raises(MelanomaError, match='hardlink'): batch(tmp_path, tmp_path / 'b', method='hardlink', zip=True)
    with pytest.raises(MelanomaError, match='manifest.csv: not found'): unbatch(tmp_path, tmp_path / 'o')
    (tmp_path / 'm').mkdir(); (tmp_path / 'm' / MANIFEST).write_text('file,batch\nx,batch_0000\n')
    with pytest.raises(MelanomaError, match='missing required column.*bytes'): unbatch(tmp_path / 'm', tmp_path / 'o')
    (tmp_path / 'm' / MANIFEST).write_text('file,batch,bytes,sha256\n../evil,batch_0000,1,ab\n')
    with pytest.raises(MelanomaError, match='unsafe path'): unbatch(tmp_path / 'm', tmp_path / 'o')

def test_cli(tmp_path, capsys):
    src = tmp_path / 'src'; orig = make_files(src, n=7)
    assert main(['batch', str(src), str(tmp_path / 'b'), '--max-files', '3', '--zip']) == 0
    assert len(list((tmp_path / 'b').glob('batch_*.zip'))) == 3
    assert main(['unbatch', str(tmp_path / 'b'), str(tmp_path / 'o'), '--method', 'copy']) == 0
    assert snapshot(tmp_path / 'o') == orig
    with pytest.raises(SystemExit): main(['unbatch', str(tmp_path / 'nothing'), str(tmp_path / 'o')])

@pytest.mark.parametrize('bad', ['../victim', 'ABS', 'batch_0000/../../victim', '..', '.', ''])
def test_unbatch_unsafe_batch_column(tmp_path, bad):
    "A manifest whose `batch` names a folder outside the batched folder is refused before anything is read or moved."
    victim = tmp_path / 'victim'; victim.mkdir()
    (victim / 'precious.jpg').write_bytes(b'keep me')
    sha = sha256_file(victim / 'precious.jpg')
    b = str(victim) if bad == 'ABS' else bad
    (tmp_path / 'b').mkdir()
    pd.DataFrame({'file': ['precious.jpg'], 'batch': [b], 'bytes': [7], 'sha256': [sha]}).to_csv(tmp_path / 'b' / MANIFEST, index=False)
    for method in ('move', 'copy'):
        with pytest.raises(MelanomaError, match=r"manifest.csv: unsafe batch"): unbatch(tmp_path / 'b', tmp_path / 'out', method=method)
        assert (victim / 'precious.jpg').read_bytes() == b'keep me' and not (tmp_path / 'out').exists()
    with pytest.raises(MelanomaError, match=r"manifest.csv: unsafe batch"): batch(victim, tmp_path / 'b', method='move')  # resuming
    assert (victim / 'precious.jpg').read_bytes() == b'keep me'
