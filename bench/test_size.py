"""Does a trained run score better when its images are fed larger than it trained on? (the train/test resolution
discrepancy: training's zoom augmentation shows lesions larger than prediction does, Touvron et al. 2019, "FixRes").

For a run folder written by `bench/train_quality.py` (or `melanoma train --data siim-isic-2020-mini --extra isic-2019-mini`),
scores both populations at each input size, through the same `MelanomaModel.predict` path training's out-of-fold
scores and `melanoma predict` use; only the size of the pixels fed in changes:

- 2020 mini out of fold: each image by the model of the fold that held it out, `--tta` dihedral views (training's 8);
- the held-out ISIC 2019 fold: the mean of all fold models, one view (as `bench/train_quality.py` scores it).

The run's own size reproduces its `oof_auc.json` (printed beside it as the check).

    OMP_NUM_THREADS=1 python bench/test_size.py bench/_work/models/q-r2e7-s42 --sizes 128,144,160
"""
import argparse, json, os, sys, time
from pathlib import Path
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('runs', nargs='+', help='run folders')
    ap.add_argument('--sizes', default='128,144,160', help='comma list of input sizes')
    ap.add_argument('--tta', type=int, default=8, help='views for the 2020 out-of-fold scores (training uses 8)')
    ap.add_argument('--folds', default='all', help='comma list of the fold models to use (default all): compares a stopped run with the same folds of another')
    ap.add_argument('--shared', default=str(ROOT.parent / 'shared' / 'data'))
    a = ap.parse_args()
    os.environ.setdefault('MELANOMA_CACHE', str(ROOT / 'bench' / '_work' / 'cache'))
    from melanoma.train import train_table, FOLD_SEED
    from melanoma.store import image_cache, work_dir
    from melanoma.model import load_model
    from melanoma.images import Pixels
    from melanoma.core import safe_auc
    siim, isic = Path(a.shared) / 'siim-isic-2020-mini', Path(a.shared) / 'isic-2019-mini'
    df = train_table(siim, [isic], seed=FOLD_SEED)
    main_, ext = df[df.fold >= 0].reset_index(drop=True), df[df.fold < 0].reset_index(drop=True)
    ho = np.flatnonzero((ext.extra_fold == 0).to_numpy())
    out = []
    for run in map(Path, a.runs):
        m = load_model(run, device='cpu')
        keep = [i for i, k in enumerate(m.config.folds) if a.folds == 'all' or str(k) in a.folds.split(',')]
        nets, folds, trained = [m.nets[i] for i in keep], [m.config.folds[i] for i in keep], m.size
        f = run / 'oof_auc.json'  # a stopped run has none
        ref = json.loads(f.read_text())['sources'] if f.is_file() and a.folds == 'all' else {}
        preds = {}
        for s in [int(s) for s in a.sizes.split(',')]:
            t = time.time()
            m.size = s  # the only change: the pixels fed to the same networks
            x, _ = image_cache(main_, s, work_dir(siim) / '.cache' / str(s))
            p = np.full(len(main_), np.nan)
            for k, net in zip(folds, nets):
                idx = np.flatnonzero((main_.fold == k).to_numpy())
                m.nets = [net]
                rows = main_.iloc[idx][['sex', 'age', 'site']].reset_index(drop=True) if m.uses_meta else None
                p[idx] = m.predict(Pixels(x, idx), meta=rows, tta=a.tta, bs=128, progress=False)
            ok = ~np.isnan(p)
            auc20 = safe_auc(main_.target.to_numpy()[ok], p[ok])
            m.nets = nets
            xe, _ = image_cache(ext, s, work_dir(isic) / '.cache' / str(s))
            rows = ext.iloc[ho][['sex', 'age', 'site']].reset_index(drop=True) if m.uses_meta else None
            pe = m.predict(Pixels(xe, ho), meta=rows, tta=1, bs=128, progress=False)
            auc19 = safe_auc(ext.target.to_numpy()[ho], pe)
            preds[s] = (p, pe)
            r = dict(run=run.name, folds=','.join(map(str, folds)), trained=trained, size=s, auc_2020=round(auc20, 4), auc_2019=round(auc19, 4),
                     min=round((time.time() - t) / 60, 1))
            if s == trained: r.update(check_2020=ref.get('siim2020'), check_2019=ref.get('isic2019'))
            out.append(r); print(r, flush=True)
        if len(preds) > 1:  # every size's prediction averaged: a multi-scale TTA
            p = np.mean([v[0] for v in preds.values()], 0); pe = np.mean([v[1] for v in preds.values()], 0); ok = ~np.isnan(p)
            r = dict(run=run.name, folds=','.join(map(str, folds)), trained=trained, size='+'.join(map(str, preds)), auc_2020=round(safe_auc(main_.target.to_numpy()[ok], p[ok]), 4),
                     auc_2019=round(safe_auc(ext.target.to_numpy()[ho], pe), 4))
            out.append(r); print(r, flush=True)
    print('| run | fold models | trained at | fed at | 2020 OOF AUC (their folds) | 2019 held-out AUC (their mean) |\n| --- | --- | --- | --- | --- | --- |')
    for r in out: print(f"| {r['run']} | {r['folds']} | {r['trained']} | {r['size']} | {r['auc_2020']:.3f} | {r['auc_2019']:.3f} |")


if __name__ == '__main__':
    main()
