"""Does colour constancy (Shades of Gray) help a melanoma classifier on both populations? A cheap probe, in one run.

    python bench/colour_probe.py [--shared ../shared/data] [--powers 6] [--size 128] [--seeds 0,1,2]

Frozen ImageNet features (the default backbone, offline Lite0 weights, global-pooled) + scikit-learn logistic regression,
as `bench/train_quality.py`'s `logreg` references, on the raw pixels (the baseline) and on the same pixels after
`melanoma.images.shades_of_gray` with each power p. Scored on
- **2020**: out-of-fold AUC on the SIIM-ISIC 2020 mini (the patient-grouped folds of `melanoma train`), fitted on the
  other 2020 folds (`2020`) and on them plus 2,500 random 2019 images outside the held-out fold (`both`);
- **2019 held-out**: AUC on the lesion-grouped held-out ISIC 2019 fold (extra fold 0), fitted on 2,500 random 2019
  images outside it (`2019`) or on both populations (`both`); each 2019 draw repeated for every seed of `--seeds`.
Writes bench/_work/colour_probe-<size>.json.
"""
import argparse, json, os, time
from pathlib import Path
import numpy as np, torch

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / 'bench' / '_work'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--shared', default=str(ROOT.parent / 'shared' / 'data'))
    ap.add_argument('--powers', default='6', help='comma list of Minkowski powers p for Shades of Gray (1: grey world)')
    ap.add_argument('--size', type=int, default=128)
    ap.add_argument('--n-2019', type=int, default=2500, help='2019 training images drawn outside the held-out fold')
    ap.add_argument('--seeds', default='0,1,2', help='draws of the 2019 training images')
    a = ap.parse_args()
    os.environ.setdefault('MELANOMA_CACHE', str(WORK / 'cache'))
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from melanoma.train import train_table, FOLD_SEED
    from melanoma.store import image_cache, work_dir
    from melanoma.model import create_model
    from melanoma.images import shades_of_gray
    from melanoma.core import safe_auc
    siim, isic = Path(a.shared) / 'siim-isic-2020-mini', Path(a.shared) / 'isic-2019-mini'
    df = train_table(siim, [isic], seed=FOLD_SEED)
    main, ho = (df.fold >= 0).to_numpy(), ((df.fold < 0) & (df.extra_fold == 0)).to_numpy()
    rest = np.flatnonzero((df.fold < 0).to_numpy() & ~ho)
    x = torch.cat([image_cache(df[main], a.size, work_dir(siim) / '.cache' / str(a.size))[0],
                   image_cache(df[~main], a.size, work_dir(isic) / '.cache' / str(a.size))[0]])
    net = create_model().body.eval().to(memory_format=torch.channels_last)
    cfg = create_model().arch_config
    mean, std = torch.tensor(cfg['mean'])[:, None, None], torch.tensor(cfg['std'])[:, None, None]
    tgt, folds = df.target.to_numpy().astype(int), sorted(df.fold[main].unique())
    i20, iho = np.flatnonzero(main), np.flatnonzero(ho)

    def feats(xx):
        out = []
        with torch.inference_mode():
            for j in range(0, len(xx), 256):
                b = ((xx[j:j + 256].float() / 255 - mean) / std).contiguous(memory_format=torch.channels_last)
                out.append(net(b).float().numpy())
        return np.concatenate(out)

    clf = lambda: make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=3000))
    res = dict(date=time.strftime('%Y-%m-%d %H:%M'), size=a.size, n_2019=a.n_2019, seeds=a.seeds, results={})
    for p in ['none'] + [float(v) for v in a.powers.split(',') if v]:
        t = time.time()
        xx = x if p == 'none' else torch.cat([shades_of_gray(x[j:j + 512], p) for j in range(0, len(x), 512)])
        F = feats(xx)
        r = {}
        for seed in [int(s) for s in a.seeds.split(',')]:
            tr19 = np.sort(np.random.default_rng(seed).choice(rest, min(a.n_2019, len(rest)), replace=False))
            for how in ('2020', 'both'):
                pr = np.zeros(len(df))
                for k in folds:
                    tr = np.flatnonzero(main & (df.fold != k).to_numpy()); va = np.flatnonzero(main & (df.fold == k).to_numpy())
                    if how == 'both': tr = np.concatenate([tr, tr19])
                    pr[va] = clf().fit(F[tr], tgt[tr]).predict_proba(F[va])[:, 1]
                r.setdefault(f'2020_oof_fit_{how}', []).append(safe_auc(tgt[i20], pr[i20]))
            for how in ('2019', 'both'):
                tr = tr19 if how == '2019' else np.concatenate([i20, tr19])
                r.setdefault(f'2019_heldout_fit_{how}', []).append(safe_auc(tgt[iho], clf().fit(F[tr], tgt[tr]).predict_proba(F[iho])[:, 1]))
        r = {k: dict(mean=round(float(np.mean(v)), 4), sd=round(float(np.std(v, ddof=1)), 4) if len(v) > 1 else None) for k, v in r.items()}
        res['results'][str(p)] = r
        print(f'p={p}: ' + ', '.join(f"{k} {v['mean']:.4f}" for k, v in r.items()) + f' ({time.time() - t:.0f} s)', flush=True)
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / f'colour_probe-{a.size}.json').write_text(json.dumps(res, indent=2))


if __name__ == '__main__':
    main()
