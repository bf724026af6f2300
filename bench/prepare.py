"""Benchmark `melanoma.prepare.prepare` against a plain Pillow/pydicom loop on the real competition files.

    .venv/bin/python bench/prepare.py [--size 512] [--repeats 3] [--workers 0]

Inputs: the full-size competition DICOMs in ../shared/data/siim-isic-2020-mini/{train,test}/*.dcm, and full-size
quality-95 JPEGs made from them once (bench/_work/src_jpeg). Both are laid out as SIIM-ISIC 2020 folders holding
just those images, so `prepare` runs its real path (CSV reading, layout, process pool, atomic writes).
Baselines, in the same run and writing the same number of files:
  JPEG:  Image.open(p).convert('RGB').resize((size, size)).save(out, quality=95)
  DICOM: Image.fromarray(pydicom.dcmread(p).pixel_array).resize((size, size)).save(out, quality=95)
Each is repeated; medians are quoted. Outputs go to bench/_work (git-ignored)."""
import argparse, os, shutil, statistics, sys, time, warnings
from pathlib import Path
import pandas as pd
import pydicom
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from melanoma.dicom import read_dicom, dicom_meta, lenient_dicom
from melanoma.prepare import prepare

DATA = Path(os.environ.get('MELANOMA_SHARED_DATA', REPO.parent/'shared'/'data'))/'siim-isic-2020-mini'
WORK = REPO/'bench'/'_work'/'prepare'


def make_inputs(name: str, keep) -> tuple[Path, Path, list[Path], list[Path]]:
    "SIIM-layout folders of the real DICOMs for which `keep(path)` holds (links) and of full-size JPEGs decoded from them once."
    dcms = [p for p in sorted(DATA.glob('train/*.dcm')) + sorted(DATA.glob('test/*.dcm')) if keep(p)]
    if not dcms: sys.exit(f'no DICOMs under {DATA}')
    src_d, src_j = WORK/f'{name}_dicom', WORK/f'{name}_jpeg'
    for split in ('train', 'test'):
        ids = [p.stem for p in dcms if p.parent.name == split]
        df = pd.read_csv(DATA/f'{split}.csv')
        for root, sub in ((src_d, split), (src_j, f'jpeg/{split}')):
            (root/sub).mkdir(parents=True, exist_ok=True)
            df[df.image_name.isin(ids)].to_csv(root/f'{split}.csv', index=False)
        for i in ids:
            link = src_d/split/f'{i}.dcm'
            if not link.exists(): os.symlink(DATA/split/f'{i}.dcm', link)
            jpg = src_j/'jpeg'/split/f'{i}.jpg'
            if not jpg.exists(): read_dicom(DATA/split/f'{i}.dcm').save(jpg, quality=95)
    return src_d, src_j, sorted(src_d.glob('*/*.dcm')), sorted(src_j.glob('jpeg/*/*.jpg'))


def _megapixels(p: Path) -> float:
    m = dicom_meta(p)
    return m['rows'] * m['columns'] / 1e6


def baseline(paths: list[Path], out: Path, size: int, dicom: bool) -> int:
    "The plain loop: decode at full size, resize, save."
    out.mkdir(parents=True)
    for p in paths:
        if dicom:
            with lenient_dicom(): im = Image.fromarray(pydicom.dcmread(p).pixel_array)
        else: im = Image.open(p).convert('RGB')
        im.resize((size, size)).save(out/f'{p.stem}.jpg', quality=95)
    return len(list(out.iterdir()))


def _cpu() -> float:
    "CPU seconds used by this process and its finished children (the pool's workers once it has shut down)."
    t = os.times(); return t.user + t.system + t.children_user + t.children_system


def timed(fn, cpu: list) -> tuple[float, int]:
    "Wall seconds and the result of `fn()`; appends the CPU seconds it used to `cpu`."
    c, t = _cpu(), time.perf_counter(); n = fn()
    wall = time.perf_counter() - t
    cpu.append(_cpu() - c)
    return wall, n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--size', type=int, default=512)
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--workers', type=int, default=0, help='prepare processes (0: all cores)')
    a = ap.parse_args()
    rows = []
    sets = (('all', 'all competition DICOMs', lambda p: True), ('large', 'those of 2 MP or more', lambda p: _megapixels(p) >= 2))
    for name, what, keep in sets:
        src_d, src_j, dcms, jpgs = make_inputs(name, keep)
        mp = [Image.open(p).size for p in jpgs]
        print(f'\n{name}: {what}: {len(dcms)} DICOMs / {len(jpgs)} JPEGs, {min(w * h for w, h in mp) / 1e6:.1f}-{max(w * h for w, h in mp) / 1e6:.1f} MP '
              f'({sum(w * h for w, h in mp) / 1e6:.0f} MP in all); size {a.size}, {os.cpu_count()} cores, {a.repeats} repeats')
        for kind, src, paths, images in (('JPEG', src_j, jpgs, 'jpeg'), ('DICOM', src_d, dcms, 'dicom')):
            t_base, t_prep, t_one, c_base, c_prep, c_one = [], [], [], [], [], []
            for r in range(a.repeats):
                out = WORK/'out'
                shutil.rmtree(out, ignore_errors=True)
                t, n_base = timed(lambda: baseline(paths, out/'base', a.size, kind == 'DICOM'), c_base)
                t_base.append(t)
                def run(workers, dest):
                    rep = prepare(src, out/dest, size=a.size, images=images, workers=workers, progress=False)
                    assert not rep.failed, rep
                    return rep.written
                t, n_prep = timed(lambda: run(a.workers or None, 'prep'), c_prep); t_prep.append(t)
                t, n_one = timed(lambda: run(1, 'prep1'), c_one); t_one.append(t)
                assert n_base == n_prep == n_one == len(paths), (n_base, n_prep, n_one)
            b, p, o = (statistics.median(x) for x in (t_base, t_prep, t_one))
            n = len(paths)
            cb, cp, co = (statistics.median(x) for x in (c_base, c_prep, c_one))
            rows.append((name, kind, n / b, n / o, n / p, b / p, cb / cp))
            print(f'{kind:5s}: baseline {n / b:6.1f} img/s | prepare 1 process {n / o:6.1f} img/s | '
                  f'prepare {a.workers or os.cpu_count()} processes {n / p:6.1f} img/s | speed-up {b / p:.1f}x '
                  f'(medians of {a.repeats}: {b:.2f}s, {o:.2f}s, {p:.2f}s)\n'
                  f'       CPU s/img: baseline {cb / n:.3f} | prepare 1 process {co / n:.3f} | prepare pool {cp / n:.3f} | '
                  f'CPU-time ratio {cb / cp:.1f}x (pool), {cb / co:.1f}x (1 process)')
    shutil.rmtree(WORK/'out', ignore_errors=True)
    return rows


if __name__ == '__main__':
    warnings.simplefilter('ignore')
    main()
