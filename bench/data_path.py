"""Data-path throughput per CPU core: decoded + augmented images/s at 384 and 512 px from prepared JPEGs.

Contenders, in one run, alternating, one thread, `num_workers=0` (so everything runs on one core and images/s is
per core; with k DataLoader workers the decoding spreads over k cores):

- baseline: the in-RAM cache (`melanoma.store.image_cache`), i.e. only the fastai batch transforms per batch;
- stream: `melanoma.store.JPEGStore` (decode + resize in `CacheDL.create_batch`, then the same transforms),
  with Pillow and with torchvision decoding;
- decode only (no transforms), for each decoder: what a DataLoader worker does when the transforms run on the GPU.

The batch transforms are the default training ones (`melanoma.learner.batch_tfms('default')` after `IntToFloatTensor`),
run on the CPU here. Prints images/s and the ratio stream / cache.

    python bench/data_path.py [--n 96] [--bs 16] [--reps 3] [--sizes 384 512]

Images: the real SIIM-ISIC 2020 mini JPEGs (512 px) from ../shared/data when present, else synthetic 512 px JPEGs made
by bench/scale.py's generator in bench/_work.
"""
import argparse, os, statistics, sys, time
from pathlib import Path
os.environ.setdefault('OMP_NUM_THREADS', '1')
import numpy as np, pandas as pd, torch

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / 'bench' / '_work'
SHARED = Path(os.environ.get('MELANOMA_SHARED_DATA', ROOT.parent / 'shared' / 'data'))


def jpegs(n: int) -> list[Path]:
    real = SHARED / 'siim-isic-2020-mini' / 'jpeg' / 'train'
    if real.is_dir(): return sorted(real.glob('*.jpg'))[:n]
    sys.path.insert(0, str(ROOT / 'bench'))
    from scale import make_set
    return sorted((make_set(n, WORK / f'data_path-{n}') / 'jpeg' / 'train').glob('*.jpg'))[:n]


def rate(dl) -> float:
    t = time.perf_counter(); k = 0
    for b in dl: k += len(b[0])
    return k / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--n', type=int, default=96, help='images per measurement')
    ap.add_argument('--bs', type=int, default=16)
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--sizes', type=int, nargs='+', default=[384, 512])
    a = ap.parse_args()
    torch.set_num_threads(1)
    from fastai.vision.augment import IntToFloatTensor
    from melanoma.store import image_cache, CachedItems
    from melanoma.learner import CacheDL, batch_tfms
    from melanoma.store import JPEGStore
    paths = jpegs(a.n)
    n = len(paths)
    df = pd.DataFrame({'image_id': [p.stem for p in paths], 'path': [str(p) for p in paths]})
    y, t = torch.zeros(n, dtype=torch.long), np.zeros(n)
    print(f'{n} JPEGs from {paths[0].parent} ({sum(p.stat().st_size for p in paths) / n / 1024:.0f} KB each), bs {a.bs}, '
          f'1 thread, load average {os.getloadavg()[0]:.2f}')
    rows = []
    for size in a.sizes:
        x, ok = image_cache(df, size)
        tf = [IntToFloatTensor(), *batch_tfms('default')]
        stores = {'cache': x, 'stream-pil': JPEGStore(paths, size, 'pil'), 'stream-torchvision': JPEGStore(paths, size, 'torchvision')}
        res = {k: [] for k in ['cache', 'stream-pil', 'stream-torchvision', 'decode-pil', 'decode-torchvision']}
        for k, s in stores.items():  # warm-up: first-call costs (transforms, decoder imports) out of the timings
            rate(CacheDL(CachedItems(s, y, t, np.arange(min(n, 2 * a.bs))), bs=a.bs, after_batch=tf, device=torch.device('cpu')))
        for r in range(a.reps):
            for k, s in stores.items():
                res[k].append(rate(CacheDL(CachedItems(s, y, t, np.arange(n)), bs=a.bs, shuffle=True, after_batch=tf, device=torch.device('cpu'))))
                if k != 'cache': res['decode-' + k.split('-')[1]].append(rate(CacheDL(CachedItems(s, y, t, np.arange(n)), bs=a.bs, device=torch.device('cpu'))))
        med = {k: statistics.median(v) for k, v in res.items()}
        for k, v in med.items():
            rows.append(dict(size=size, path=k, images_per_s_per_core=round(v, 1), vs_cache=round(v / med['cache'], 2),
                             spread=f'{min(res[k]):.1f}-{max(res[k]):.1f}'))
        del x
    out = pd.DataFrame(rows)
    print(out.to_string(index=False))
    print(f'load average at the end: {" ".join(f"{v:.2f}" for v in os.getloadavg())}')


if __name__ == '__main__':
    main()
