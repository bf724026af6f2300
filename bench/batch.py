"""Benchmark `melanoma batch` / `melanoma unbatch` against plain copies of the same folder.

    .venv/bin/python bench/batch.py [--src FOLDER] [--repeats 3]

The images are the real SIIM-ISIC 2020 mini set (../shared/data/siim-isic-2020-mini/jpeg/train, 860 JPEGs at 512x512)
when present, else 860 generated files of the same sizes. Each repeat runs, in the same process and on the same files:

- baseline: `shutil.copytree` (a copy, no checksums), then `sha256sum`-equivalent hashing of the copy (what a user does by
  hand to get a verifiable copy);
- `batch` (copy into batch_NNNN/ folders of 100, hashing every file and verifying every copy against the manifest);
- `batch --zip`; `unbatch` (copy back, verifying every checksum); `unbatch --method symlink` (what the Kaggle kernel does).

Medians of the repeats are printed with the ratio to the baseline. Scratch output goes to bench/_work/ (git-ignored).
"""
import argparse, os, shutil, statistics, sys, time
from pathlib import Path
import contextlib, io

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from melanoma.batch import batch, unbatch, list_files, hash_files

def source(work: Path, src: str | None) -> Path:
    if src: return Path(src)
    real = Path(os.environ.get('MELANOMA_SHARED_DATA', REPO.parent / 'shared' / 'data')) / 'siim-isic-2020-mini' / 'jpeg' / 'train'
    if real.exists(): return real
    gen = work / 'generated'
    if not gen.exists():
        rng = __import__('random').Random(0)
        gen.mkdir(parents=True)
        for i in range(860): (gen / f'ISIC_{i:07d}.jpg').write_bytes(rng.randbytes(60_000 + rng.randrange(40_000)))
    return gen

def timed(f) -> float:
    t = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()): f()
    return time.perf_counter() - t

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--src'); ap.add_argument('--repeats', type=int, default=3); ap.add_argument('--workers', type=int, default=2)
    a = ap.parse_args()
    work = REPO / 'bench' / '_work' / 'batch'
    src = source(work, a.src)
    files = list_files(src)
    total = sum((src / f).stat().st_size for f in files)
    print(f'source: {src} ({len(files)} files, {total / 1e6:.1f} MB), {a.repeats} repeats, {a.workers} hashing threads')
    times = {k: [] for k in ('baseline copytree+sha256', 'batch (copy, 100/batch)', 'batch --zip', 'unbatch (copy, verify)', 'unbatch --method symlink')}
    for r in range(a.repeats):
        for d in ('copy', 'b', 'z', 'u', 's'): shutil.rmtree(work / d, ignore_errors=True)
        times['baseline copytree+sha256'].append(timed(lambda: (shutil.copytree(src, work / 'copy'),
                                                                 hash_files([work / 'copy' / f for f in files], a.workers))))
        times['batch (copy, 100/batch)'].append(timed(lambda: batch(src, work / 'b', max_files=100, workers=a.workers)))
        times['batch --zip'].append(timed(lambda: batch(src, work / 'z', max_files=100, zip=True, workers=a.workers)))
        times['unbatch (copy, verify)'].append(timed(lambda: unbatch(work / 'b', work / 'u')))
        times['unbatch --method symlink'].append(timed(lambda: unbatch(work / 'b', work / 's', method='symlink')))
    base = statistics.median(times['baseline copytree+sha256'])
    print(f"{'step':32s} {'median s':>9s} {'MB/s':>8s} {'ratio':>6s}")
    for k, v in times.items():
        m = statistics.median(v)
        print(f'{k:32s} {m:9.3f} {total / 1e6 / m:8.1f} {m / base:6.2f}x')
    for d in ('copy', 'b', 'z', 'u', 's'): shutil.rmtree(work / d, ignore_errors=True)

if __name__ == '__main__': main()
