"""Host memory and disk of the training data path against the number of images, in one run.

For N = 2,000, 8,000 and 32,000 distinct 512 px JPEGs in the SIIM-ISIC layout (`train.csv` + `jpeg/train/`), each
measured in a fresh child process (the parent samples the child's whole process tree, DataLoader workers included,
every 0.25 s):

- stream: `melanoma.store.choose_store(mode='stream')` at `--size` (512) px, a `JPEGStore` read by `CacheDL`
  with `--workers` (2) DataLoader worker processes;
- cache: `choose_store(mode='memory')` (the in-RAM cache, `melanoma.store.image_cache`) at `--cache-size` (256) px,
  the loader without workers as today; run only where `store_plan` says the cache fits this machine's default budget
  (a 32k x 512 px cache is a 24 GiB array: it cannot run on a 24 GiB machine, which is the point), else reported
  with the memory it would need.

Each child runs what `melanoma train` runs before and during its first steps: the table and folds (`train_table`),
the store and the ok-mask, `fold_learner` (Lite0, default batch transforms, on the CPU), and `--steps` training steps
at batch size `--bs` (a few hundred Lite0 steps at 512 px take hours on this CPU: the default of 3 steps exercises the
loader, the network's activations and the optimiser state, whose memory does not grow with more steps). Reported:
peak RSS summed over the process tree, the largest single process's peak RSS, peak PSS of the tree (shared pages
counted once), the image bytes of the set and the bytes of files the run derived in the data folder.

    python bench/scale.py [--ns 2000 8000 32000] [--command train|loop] [--steps 3] [--bs 4] [--size 512] [--cache-size 256] [--procs 2]

`--command train` (default) measures the real `melanoma train --store stream|memory --fold 0 --epochs 1`, killed with
SIGKILL after `--steps` steps by its crash-test hook (`MELANOMA_CRASH_AT`); `--command loop` runs the same stages
in-process (the child below), which also reports each stage's time.

Images are made once into bench/_work/scale/pool (from 16 real SIIM-ISIC 2020 mini JPEGs when ../shared/data has them,
else generated ones: a random 512 px window, flip and rotation, plus the image number written into the pixels, so no two files
are equal) with a process pool of `--procs`, and reused by later runs; each set is a folder with its own `train.csv`
and a `jpeg` link to the pool. Needs psutil (for the sampling).
"""
import argparse, json, os, subprocess, sys, threading, time
from pathlib import Path
os.environ.setdefault('OMP_NUM_THREADS', '1')
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / 'bench' / '_work' / 'scale'
SHARED = Path(os.environ.get('MELANOMA_SHARED_DATA', ROOT.parent / 'shared' / 'data'))
SITES = ['torso', 'lower extremity', 'upper extremity', 'head/neck', '']


# ---------------------------------------------------------------- making the images
def _bases(side: int = 640) -> list:
    from PIL import Image
    real = SHARED / 'siim-isic-2020-mini' / 'jpeg' / 'train'
    if real.is_dir(): return [Image.open(p).convert('RGB').resize((side, side)) for p in sorted(real.glob('*.jpg'))[:16]]
    rng = np.random.default_rng(0)
    out = []
    for k in range(16):  # smooth blobs: compress like photographs, unlike pure noise
        yy, xx = np.mgrid[:side, :side] / side
        c = rng.uniform(0.3, 0.7, 2)
        r = np.sqrt((yy - c[0]) ** 2 + (xx - c[1]) ** 2)
        a = np.stack([np.clip(200 - 120 * np.exp(-r ** 2 / rng.uniform(.01, .05)) + 20 * np.sin(xx * rng.uniform(5, 30) + k), 0, 255)] * 3, -1)
        out.append(Image.fromarray((a * rng.uniform(0.7, 1.0, 3)).astype(np.uint8)))
    return out

_BASES = None
def _make_range(args) -> int:
    lo, hi, dest = args
    global _BASES
    from PIL import Image
    if _BASES is None: _BASES = _bases()
    made = 0
    for i in range(lo, hi):
        p = Path(dest) / f'ISIC_{i:07d}.jpg'
        if p.exists(): continue
        rng = np.random.default_rng(i)
        im = _BASES[i % len(_BASES)]
        x0, y0 = (int(v) for v in rng.integers(0, 129, 2))
        im = im.crop((x0, y0, x0 + 512, y0 + 512))  # a 512 px window of the 640 px base: no resize, cheap
        t = int(rng.integers(0, 8))
        if t: im = im.transpose([None, Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.ROTATE_90,
                                  Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270, Image.Transpose.TRANSPOSE, Image.Transpose.TRANSVERSE][t])
        a = np.array(im)
        a[:8, :8 * 17] = np.repeat(np.repeat(((i >> np.arange(17)) & 1).astype(np.uint8) * 255, 8)[None, :, None], 8, 0)  # the number, in 8x8 blocks
        tmp = p.with_name(p.name + '.tmp')
        Image.fromarray(a).save(tmp, 'JPEG', quality=90)
        os.replace(tmp, p)  # a killed run leaves no truncated JPEG under the final name
        made += 1
    return made

def make_pool(n: int, procs: int = 2) -> Path:
    "At least `n` distinct 512 px JPEGs in bench/_work/scale/pool/jpeg/train (made once, reused)."
    dest = WORK / 'pool' / 'jpeg' / 'train'
    dest.mkdir(parents=True, exist_ok=True)
    have = sum(1 for i in range(n) if (dest / f'ISIC_{i:07d}.jpg').exists())
    if have < n:
        t = time.perf_counter()
        jobs = [(lo, min(n, lo + 500), str(dest)) for lo in range(0, n, 500)]
        if procs > 1:
            from multiprocessing import get_context
            with get_context('spawn').Pool(procs) as pool: made = sum(pool.imap_unordered(_make_range, jobs))
        else: made = sum(map(_make_range, jobs))
        print(f'made {made} JPEGs in {time.perf_counter() - t:.0f} s ({procs} processes)', flush=True)
    return dest

def make_set(n: int, root: Path | None = None, procs: int = 2) -> Path:
    "A SIIM-ISIC 2020 layout folder with the first `n` pool images: `train.csv` + `jpeg` (a link to the pool's)."
    pool = make_pool(n, procs)
    root = Path(root or WORK / f'set-{n}')
    root.mkdir(parents=True, exist_ok=True)
    if not (root / 'jpeg').exists(): os.symlink(pool.parent, root / 'jpeg', target_is_directory=True)
    csv = root / 'train.csv'
    if not csv.is_file() or sum(1 for _ in open(csv)) != n + 1:
        rng = np.random.default_rng(n)
        t = (rng.random(n) < 0.05).astype(int)
        lines = ['image_name,patient_id,sex,age_approx,anatom_site_general_challenge,diagnosis,benign_malignant,target']
        sex, age, site = rng.choice(['male', 'female', ''], n), rng.choice(np.arange(20, 90, 5), n), rng.choice(SITES, n)
        for i in range(n):
            lines.append(f'ISIC_{i:07d},IP_{i // 8:07d},{sex[i]},{age[i]:.1f},{site[i]},{"melanoma" if t[i] else "unknown"},'
                         f'{"malignant" if t[i] else "benign"},{t[i]}')
        tmp = csv.with_suffix('.tmp'); tmp.write_text('\n'.join(lines) + '\n'); os.replace(tmp, csv)
    return root


# ---------------------------------------------------------------- one measured run (child process)
def child(a):
    import torch
    torch.set_num_threads(1)
    from fastai.basics import Callback, CancelFitException
    from melanoma.train import train_table, fold_split
    from melanoma.learner import fold_learner
    from melanoma.store import work_dir
    from melanoma.store import choose_store
    from melanoma.model import create_model
    T = {}
    t = time.perf_counter(); df = train_table(a.set); T['table_s'] = time.perf_counter() - t
    size = a.size if a.mode == 'stream' else a.cache_size
    t = time.perf_counter()
    store, ok = choose_store(df, size, mode=a.mode, cache_dir=work_dir(a.set) / '.cache' / str(size), workers=2)
    T['store_s'] = time.perf_counter() - t
    tr, va, _ = fold_split(df, 0, ok)
    learn = fold_learner(store, df, tr, va, create_model('tf_efficientnet_lite0'), bs=a.bs, device=torch.device('cpu'))
    if a.mode == 'stream': learn.dls.train.fake_l.num_workers = a.workers  # decoding in worker processes
    class Stop(Callback):
        def after_batch(self):
            if self.training and self.iter + 1 >= a.steps: raise CancelFitException
    t = time.perf_counter()
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-4, cbs=Stop())
    T['steps_s'] = time.perf_counter() - t
    print('RESULT', json.dumps(dict(T, n_ok=int(ok.sum()), kind=type(store).__name__)), flush=True)


# ---------------------------------------------------------------- the parent: sampling and the table
def tree_mem(pid: int) -> tuple[int, int, int]:
    "(sum of RSS, largest RSS, sum of PSS) over process `pid` and its descendants."
    import psutil
    try:
        p = psutil.Process(pid); ps = [p] + p.children(recursive=True)
    except psutil.Error: return 0, 0, 0
    rss, mx, pss = 0, 0, 0
    for q in ps:
        try:
            m = q.memory_full_info(); rss += m.rss; mx = max(mx, m.rss); pss += getattr(m, 'pss', m.rss)
        except psutil.Error: pass
    return rss, mx, pss

def measure(cmd: list[str], env: dict | None = None, killed_ok: bool = False) -> dict:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    peak = [0, 0, 0]
    def sample():
        while proc.poll() is None:
            m = tree_mem(proc.pid)
            peak[:] = [max(x, y) for x, y in zip(peak, m)]
            time.sleep(0.25)
    th = threading.Thread(target=sample, daemon=True); th.start()
    t = time.perf_counter(); out, err = proc.communicate(); wall = time.perf_counter() - t; th.join()
    if proc.returncode and not (killed_ok and proc.returncode == -9):
        raise SystemExit(f'child failed ({proc.returncode}): {" ".join(cmd)}\n{err[-3000:]}')
    lines = [l for l in out.splitlines() if l.startswith('RESULT ')]
    res = json.loads(lines[-1][7:]) if lines else dict(kind='melanoma train', killed=proc.returncode == -9)
    return dict(res, wall_s=wall, rss_tree_gib=peak[0] / 2**30, rss_max_gib=peak[1] / 2**30, pss_tree_gib=peak[2] / 2**30)

def du(path: Path, skip: set = frozenset()) -> int:
    tot = 0
    for dp, dn, fn in os.walk(path):  # does not follow the `jpeg` link
        tot += sum(os.lstat(os.path.join(dp, f)).st_size for f in fn if f not in skip)
    return tot

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ns', type=int, nargs='+', default=[2000, 8000, 32000])
    ap.add_argument('--modes', nargs='+', default=['stream', 'memory'])
    ap.add_argument('--size', type=int, default=512, help='stream image size')
    ap.add_argument('--cache-size', type=int, default=256, help='in-RAM cache image size')
    ap.add_argument('--steps', type=int, default=3)
    ap.add_argument('--bs', type=int, default=4)
    ap.add_argument('--workers', type=int, default=2, help='DataLoader worker processes for the stream')
    ap.add_argument('--procs', type=int, default=2, help='processes making JPEGs')
    ap.add_argument('--command', choices=['train', 'loop'], default='train',
                    help='train: the real `melanoma train --store MODE`, killed after --steps steps; loop: the same steps in-process')
    ap.add_argument('--child', action='store_true'); ap.add_argument('--set'); ap.add_argument('--mode')
    a = ap.parse_args()
    if a.child: return child(a)
    import pandas as pd
    from melanoma.store import store_plan
    print(f'{time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, {os.cpu_count()} CPUs, load average '
          f'{" ".join(f"{v:.2f}" for v in os.getloadavg())}', flush=True)
    rows = []
    for n in sorted(a.ns):
        root = make_set(n, procs=a.procs)
        img = sum(os.stat(root / 'jpeg' / 'train' / f'ISIC_{i:07d}.jpg').st_size for i in range(n))
        for mode in a.modes:
            size = a.size if mode == 'stream' else a.cache_size
            plan = store_plan(n, size)
            row = dict(n=n, store=mode, size=size, images_mib=img / 2**20)
            if mode == 'memory' and plan['mode'] != 'memory':
                rows.append(dict(row, note=f"not run: the cache needs ~{plan['need_gib']:.1f} GiB, budget {plan['budget_gib']:.1f} GiB"))
                print(rows[-1], flush=True); continue
            if a.command == 'train':  # the real command, killed (SIGKILL, its crash-test hook) after --steps training steps
                cmd = [sys.executable, '-m', 'melanoma.cli', 'train', '--data', str(root), '--size', str(size), '--store', mode,
                       '--bs', str(a.bs), '--fold', '0', '--epochs', '1', '--name', f'scale-{n}-{mode}', '--no-cache',
                       '--models-dir', str(WORK / 'models'), '--loader-workers', str(a.workers if mode == 'stream' else 0)]
                r = measure(cmd, env={**os.environ, 'MELANOMA_CRASH_AT': f'0:0:{a.steps}'}, killed_ok=True)
                import shutil; shutil.rmtree(WORK / 'models', ignore_errors=True)
            else:
                cmd = [sys.executable, __file__, '--child', '--set', str(root), '--mode', mode, '--size', str(a.size),
                       '--cache-size', str(a.cache_size), '--steps', str(a.steps), '--bs', str(a.bs), '--workers', str(a.workers)]
                r = measure(cmd)
            rows.append(dict(row, **r, derived_mib=du(root, {'train.csv'}) / 2**20,
                             load=os.getloadavg()[0]))
            print({k: round(v, 3) if isinstance(v, float) else v for k, v in rows[-1].items()}, flush=True)
    df = pd.DataFrame(rows)
    cols = [c for c in ['n', 'store', 'size', 'images_mib', 'derived_mib', 'rss_tree_gib', 'rss_max_gib', 'pss_tree_gib', 'table_s',
                        'store_s', 'steps_s', 'wall_s', 'load', 'note'] if c in df]
    print(df[cols].round(3).to_string(index=False))
    WORK.mkdir(parents=True, exist_ok=True)
    df.to_csv(WORK / 'results.csv', index=False)


if __name__ == '__main__':
    main()
