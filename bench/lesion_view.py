"""What the lesion view costs at prediction: `melanoma predict` with a model, and with the same model after
`melanoma seg attach` (the whole image and the crop around the lesion, half of the TTA views each), in the same run.

    .venv/bin/python bench/lesion_view.py --model bench/_work/models/q-default-s42 --with-lesion bench/_work/models/lv-s42 [--runs 3] [--threads 1]

Each run is a fresh `python -m melanoma.cli predict DATA --model M --no-onnx` process (model loading included) on the 93
real test JPEGs of ../shared/data/siim-isic-2020-mini (512 px), with the model's own TTA (8 views: 8 whole-image views
against 4 + 4), timed with `/usr/bin/time` (wall seconds, peak RSS). The two models alternate; medians are printed with
the ratio. Also checks that the two submissions differ (the view is used) and that both are complete."""
import argparse, statistics, subprocess, sys, tempfile
from pathlib import Path
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / 'shared' / 'data' / 'siim-isic-2020-mini'


def predict(model: Path, out: Path, threads: int) -> tuple[float, float]:
    "(wall seconds, peak RSS in MiB) of one `melanoma predict` process."
    cmd = ['/usr/bin/time', '-f', '%e %M', sys.executable, '-m', 'melanoma.cli', 'predict', str(SHARED), '--model', str(model),
           '--out', str(out), '--no-onnx', '--workers', '0', '--threads', str(threads)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=out.parent)
    if r.returncode: raise SystemExit(f'{" ".join(cmd)} failed:\n{r.stderr[-2000:]}')
    wall, rss = r.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss) / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--model', required=True, help='a trained model folder (the whole image only)')
    ap.add_argument('--with-lesion', required=True, help='the same model after `melanoma seg attach`')
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--threads', type=int, default=1)
    a = ap.parse_args()
    if not SHARED.is_dir(): raise SystemExit(f'{SHARED}: not found (the real mini data set)')
    n = len(pd.read_csv(SHARED / 'test.csv'))
    res = {'whole': [], 'lesion': []}
    with tempfile.TemporaryDirectory() as d:
        for i in range(a.runs):
            for k, m in (('whole', a.model), ('lesion', a.with_lesion)):
                res[k].append(predict(Path(m).resolve(), Path(d) / f'{k}.csv', a.threads))
                print(f'run {i + 1} {k}: {res[k][-1][0]:.1f} s, {res[k][-1][1]:.0f} MiB', flush=True)
        w, l = (pd.read_csv(Path(d) / f'{k}.csv') for k in ('whole', 'lesion'))
        assert len(w) == len(l) == n and w.target.notna().all() and l.target.notna().all()
        print(f'submissions differ: max |difference| {float((w.target - l.target).abs().max()):.4f}')
    med = {k: (statistics.median(t for t, _ in v), statistics.median(r for _, r in v)) for k, v in res.items()}
    for k, (t, r) in med.items(): print(f'{k:7s} median {t:6.1f} s ({n / t:5.1f} images/s incl. loading), peak RSS {r:6.0f} MiB')
    print(f'lesion view / whole image: {med["lesion"][0] / med["whole"][0]:.2f}x the time, {med["lesion"][1] / med["whole"][1]:.2f}x the memory')


if __name__ == '__main__':
    main()
