"""Speed of `melanoma evaluate`'s bootstrap AUC interval and of a whole report.

    .venv/bin/python bench/evaluate.py [--repeats 3] [--n-boot 1000]

In the same run, on synthetic scores (binormal, prevalence 1.76% as in SIIM-ISIC 2020, and 30%):
  * baseline: a Python loop of `sklearn.metrics.roc_auc_score` over stratified resamples (what a hand-written
    bootstrap does), against `melanoma.metrics.bootstrap_auc` (one rank matrix per chunk of resamples);
  * `melanoma.evaluate.evaluate` (metrics, 4 PNG plots, md/html/json report), for scale.
Prints wall-clock medians and the ratio baseline / ours, and checks both intervals agree."""
import argparse, statistics, sys, tempfile, time
from pathlib import Path
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from melanoma.metrics import bootstrap_auc


from melanoma.evaluate import evaluate
def loop_bootstrap(y, p, n_boot=1000, seed=0):
    "The baseline: stratified resamples scored one by one with roc_auc_score."
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    aucs = []
    for _ in range(n_boot):
        i = np.r_[rng.choice(pos, len(pos)), rng.choice(neg, len(neg))]
        aucs.append(roc_auc_score(y[i], p[i]))
    return np.quantile(aucs, [0.025, 0.975])


def timed(f, repeats):
    ts = []
    for _ in range(repeats):
        t = time.perf_counter(); r = f(); ts.append(time.perf_counter() - t)
    return statistics.median(ts), r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--n-boot', type=int, default=1000)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f'bootstrap of the AUC, {a.n_boot} stratified resamples, medians of {a.repeats}')
    print('| images | prevalence | baseline loop s | bootstrap_auc s | speed-up | CI loop | CI ours |')
    print('| --- | --- | --- | --- | --- | --- | --- |')
    for n, prev in [(1000, 0.3), (10982, 0.0176), (33126, 0.0176)]:
        y = (rng.random(n) < prev).astype(int)
        p = rng.normal(size=n) + 1.5 * y
        tb, (blo, bhi) = timed(lambda: loop_bootstrap(y, p, a.n_boot), a.repeats)
        to, (lo, hi, _) = timed(lambda: bootstrap_auc(y, p, a.n_boot), a.repeats)
        assert abs(lo - blo) < 0.02 and abs(hi - bhi) < 0.02
        print(f'| {n} | {prev} | {tb:.2f} | {to:.2f} | {tb / to:.1f}x | {blo:.3f}-{bhi:.3f} | {lo:.3f}-{hi:.3f} |')
    n = 10982
    y = (rng.random(n) < 0.0176).astype(int)
    df = pd.DataFrame({'image_id': [f'ISIC_{i}' for i in range(n)], 'target': y, 'pred': 1 / (1 + np.exp(-(rng.normal(size=n) + 1.5 * y - 3))),
                       'site': rng.choice(['torso', 'head/neck', ''], n), 'sex': rng.choice(['male', 'female'], n), 'age': rng.choice([30., 50, 70], n)})
    with tempfile.TemporaryDirectory() as d:
        t, _ = timed(lambda: evaluate(df, 'bench', d, n_boot=a.n_boot), a.repeats)
    print(f'\nwhole report (evaluate, {n} images, {a.n_boot} resamples, 4 plots): median {t:.2f} s')


if __name__ == '__main__':
    main()
