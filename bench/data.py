"""Speed of the data layer: readers, de-duplication, folds and synthetic data, each against a plain baseline.

    .venv/bin/python bench/data.py [--repeats 3]

Uses the real mini sets in ../shared/data when present (else only the synthetic parts run). In the same run:
  * `read_isic2019` (validation, vocabularies, one directory listing for the existence check) vs a plain pandas
    baseline: read both CSVs, merge them, argmax the one-hot columns and `os.path.exists` every image;
  * `combine(siim2020, isic2019)` (equal-size files only, 64 KiB head hash, full SHA-256 only when heads agree) vs
    the obvious baseline: SHA-256 of every file, then drop repeated digests;
  * `make_folds` on ISIC 2019 (StratifiedGroupKFold on ~10.7k rows) — no baseline, absolute time;
  * `make_sample_data` (300 images, 256 px, the `make demo` set) vs its floor: writing 300 random-noise JPEGs of the
    same size with Pillow (encoding + atomic writes only, no drawing).
Prints median seconds and ratios (ours / baseline). Scratch output goes to bench/_work/data/."""
import argparse, os, shutil, statistics, sys, time, warnings
from pathlib import Path
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from melanoma.core import sha256_file, atomic_path
from melanoma.data import read_siim2020, read_isic2019, combine, DIAGNOSES
from melanoma.folds import make_folds
from melanoma.sample import make_sample_data

WORK = REPO/'bench'/'_work'/'data'
SHARED = REPO.parent/'shared'/'data'

def med(fn, repeats: int) -> tuple[float, object]:
    ts, res = [], None
    for _ in range(repeats):
        t = time.perf_counter(); res = fn(); ts.append(time.perf_counter() - t)
    return statistics.median(ts), res

def baseline_read_2019(root: Path) -> pd.DataFrame:
    gt = pd.read_csv(root/'ISIC_2019_Training_GroundTruth.csv')
    meta = pd.read_csv(root/'ISIC_2019_Training_Metadata.csv')
    df = gt.merge(meta, on='image', how='left')
    df['diagnosis'] = np.array(DIAGNOSES)[df[DIAGNOSES].to_numpy().argmax(1)]
    df['path'] = [str(root/'ISIC_2019_Training_Input'/f'{i}.jpg') for i in df.image]
    return df[[os.path.exists(p) for p in df.path]]

def baseline_dedupe(paths: list[str]) -> int:
    seen, dropped = set(), 0
    for p in paths:
        h = sha256_file(p)
        dropped += h in seen
        seen.add(h)
    return dropped

def noise_jpegs(dest: Path, n: int, size: int) -> None:
    from PIL import Image
    rng = np.random.default_rng(0)
    dest.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = Image.fromarray(rng.integers(0, 255, (size // 8, size // 8, 3), dtype=np.uint8)).resize((size, size))
        with atomic_path(dest/f'{i}.jpg') as tmp: img.save(tmp, 'JPEG', quality=90)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--repeats', type=int, default=3)
    a = ap.parse_args()
    warnings.simplefilter('ignore')
    rows = []
    s2020, s2019 = SHARED/'siim-isic-2020-mini', SHARED/'isic-2019-mini'
    if s2019.exists():
        base, _ = med(lambda: baseline_read_2019(s2019), a.repeats)
        ours, d19 = med(lambda: read_isic2019(s2019), a.repeats)
        rows.append(('read ISIC 2019 mini (10,734 rows)', 'pandas merge + os.path.exists', base, ours))
        if s2020.exists():
            d20 = read_siim2020(s2020)
            paths = pd.concat([d20.path, d19.path]).tolist()
            base, nb = med(lambda: baseline_dedupe(paths), a.repeats)
            ours, c = med(lambda: combine(d20, d19), a.repeats)
            assert nb == sum(c.attrs['dropped'].values()), (nb, c.attrs)
            rows.append((f'de-duplicate 2020+2019 mini ({len(paths):,} files, {nb} dupes)', 'sha256 of every file', base, ours))
    if s2020.exists():
        both = [read_siim2020(s2020, sp, images=im, missing='drop').assign(image_id=lambda d: d.image_id + '.' + im)
                for sp in ('train', 'test') for im in ('jpeg', 'dicom')]
        paths = pd.concat([d.path for d in both]).tolist()
        mb = sum(os.path.getsize(p) for p in paths) / 1e6
        base, nb = med(lambda: baseline_dedupe(paths), a.repeats)
        ours, c = med(lambda: combine(*both), a.repeats)
        assert nb == sum(c.attrs['dropped'].values()), (nb, c.attrs)
        rows.append((f'de-duplicate 2020 mini JPEGs + DICOMs ({len(paths):,} files, {mb:.0f} MB, {nb} dupes)', 'sha256 of every file', base, ours))
    if s2019.exists():
        t, f = med(lambda: make_folds(d19), a.repeats)
        rows.append(('make_folds ISIC 2019 mini (5 folds)', '-', float('nan'), t))
    if WORK.exists(): shutil.rmtree(WORK)
    def sample():
        shutil.rmtree(WORK/'sample', ignore_errors=True)
        make_sample_data(WORK/'sample', progress=False)
    def floor():
        shutil.rmtree(WORK/'noise', ignore_errors=True)
        noise_jpegs(WORK/'noise', 300, 256)
    base, _ = med(floor, a.repeats)
    ours, _ = med(sample, a.repeats)
    rows.append(('make_sample_data (300 x 256 px, 8 DICOMs)', '300 noise JPEGs (encode + write)', base, ours))
    t, _ = med(lambda: make_sample_data(WORK/'sample', progress=False), a.repeats)
    rows.append(('make_sample_data again (identical set: no-op)', '-', float('nan'), t))
    print(f'| step | baseline | baseline s | ours s | ours / baseline |\n| --- | --- | --- | --- | --- |')
    for name, bname, b, o in rows:
        print(f'| {name} | {bname} | {b:.3f} | {o:.3f} | {o / b:.2f}x |' if b == b else f'| {name} | {bname} | - | {o:.3f} | - |')
    shutil.rmtree(WORK, ignore_errors=True)

if __name__ == '__main__': main()
