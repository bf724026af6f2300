"Tests for the training image cache of melanoma.store: what makes a cached image stale."
import os, shutil
from pathlib import Path
import pandas as pd, pytest, torch
from melanoma.data import read_dataset
from melanoma.store import image_cache


@pytest.fixture
def data(sample_data, tmp_path) -> Path:
    "A private copy of the synthetic data set (the test rewrites its images)."
    return Path(shutil.copytree(sample_data, tmp_path / 'siim'))


def test_image_cache_keyed_by_file_size_and_mtime(data, tmp_path, capsys):
    "A cached image whose file changed (size or mtime) is read again, and the cache says so: fixed, replaced, touched."
    df = read_dataset(data).query("split == 'train'").head(5).reset_index(drop=True)
    p0, p1, p2, p3 = (Path(p) for p in df.path[:4])
    good = p0.read_bytes()
    p0.write_bytes(b'not a jpeg')
    x1, ok1 = image_cache(df, 32, tmp_path / 'c')
    assert not ok1[0] and ok1[1:].all()
    p0.write_bytes(good)  # fixed
    shutil.copy(p2, p1)  # replaced by another image
    st = p3.stat(); os.utime(p3, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched
    capsys.readouterr()
    x2, ok2 = image_cache(df, 32, tmp_path / 'c')
    out = capsys.readouterr().out
    assert ok2.all() and '3 cached image(s) changed' in out and str(tmp_path / 'c') in out
    want, _ = image_cache(df, 32)  # memory only: every file read afresh
    assert torch.equal(x2, want) and torch.equal(x2[1], x2[2])
    x3, _ = image_cache(df, 32, tmp_path / 'c')  # nothing changed: nothing read, nothing said
    assert torch.equal(x3, want) and 'changed' not in capsys.readouterr().out
    idx = pd.read_csv(tmp_path / 'c' / 'index.csv'); idx.drop(columns='stamp').to_csv(tmp_path / 'c' / 'index.csv', index=False)
    x4, _ = image_cache(df, 32, tmp_path / 'c')  # an index from before sizes and times were kept
    assert torch.equal(x4, want) and 'rebuilding' in capsys.readouterr().out
