"""Both populations' AUCs of trained runs alone and of their out-of-fold scores averaged row by row (an ensemble of
runs: seeds, architectures), from the runs' own `oof.csv`, with no network pass.

    python bench/oof_ensemble.py bench/_work/models/q-default-s42 bench/_work/models/q-lite1-s42 [--folds 0,1,2]
    python bench/oof_ensemble.py A B C --sets "A+B,A+C"   # named subsets (by position letter) besides all of them

`melanoma train --extra` runs share their folds (`FOLD_SEED`) whatever the seed or architecture, so the rows line up:
- **2020**: the main data's out-of-fold rows (`source` siim2020), each scored by the fold model that did not train on
  it; the ensemble averages the runs' probabilities per row; AUC pooled over the folds given;
- **2019 held-out**: the extra data's shared held-out rows (`source` isic2019, scored once by every fold model, one
  view); each run's score of an image is the mean over its fold models, as `melanoma predict` averages folds (this is
  what `oof_auc.json` reports), and the ensemble averages those.
Only the folds every run has are used (`--folds` narrows them further); each run's own `oof_auc.json` figures and
their folds are printed beside, a check of the recomputed ones when the folds are the same.
"""
import argparse, json, string
from pathlib import Path
import pandas as pd
from melanoma.core import safe_auc as auc


def read_oof(run: Path) -> pd.DataFrame:
    df = pd.read_csv(run / 'oof.csv', dtype={'image_id': str})
    if 'source' not in df: df['source'] = 'siim2020'
    return df


def population_scores(oofs: list[pd.DataFrame], folds: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    "Per-run probabilities: the 2020 rows (image x run) and the 2019 held-out images (mean over fold models; image x run)."
    main, held = [], []
    for i, df in enumerate(oofs):
        df = df[df.fold.isin(folds)]
        m = df[df.source == 'siim2020'].set_index('image_id')
        main.append(m[['target', 'pred']].rename(columns={'pred': i}))
        h = df[df.source != 'siim2020'].groupby('image_id').agg(target=('target', 'first'), pred=('pred', 'mean'))
        held.append(h.rename(columns={'pred': i}))
    def join(parts):
        out = parts[0]
        for p in parts[1:]:
            out = out.join(p.drop(columns='target'), how='inner')
        return out
    return join(main), join(held)



def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('runs', nargs='+')
    ap.add_argument('--folds', default='', help='comma list of folds (default: the folds every run has)')
    ap.add_argument('--sets', default='', help='comma list of subsets by letter, e.g. "A+B,A+C" (default: each run and all)')
    ap.add_argument('--out', default='', help='also write the results as JSON here')
    a = ap.parse_args()
    runs = [Path(r) for r in a.runs]
    oofs = [read_oof(r) for r in runs]
    common = sorted(set.intersection(*[set(d.fold[d.fold >= 0].unique()) for d in oofs]))
    folds = [int(f) for f in a.folds.split(',')] if a.folds else [int(f) for f in common]
    if missing := set(folds) - set(common): raise SystemExit(f'fold(s) {sorted(missing)} are not in every run (common: {common})')
    m, h = population_scores(oofs, folds)
    letters = string.ascii_uppercase[:len(runs)]
    sets = [s.split('+') for s in a.sets.split(',') if s] if a.sets else [[c] for c in letters] + ([list(letters)] if len(runs) > 1 else [])
    print(f'folds {folds}: {len(m)} 2020 rows ({int(m.target.sum())} melanoma), {len(h)} 2019 held-out images ({int(h.target.sum())} melanoma)')
    for c, r in zip(letters, runs):
        rec = json.loads((r / 'oof_auc.json').read_text()) if (r / 'oof_auc.json').is_file() else {}
        own = rec.get('sources', {})
        print(f'  {c} = {r.name}' + (f"  (its oof_auc.json: {own.get('siim2020', float('nan')):.4f} / {own.get('isic2019', float('nan')):.4f} over folds {sorted(int(k) for k in rec.get('folds', {}))})" if own else ''))
    res = []
    for s in sets:
        cols = [letters.index(c) for c in s]
        r = dict(runs='+'.join(s), auc_2020=auc(m.target, m[cols].mean(axis=1)), auc_2019=auc(h.target, h[cols].mean(axis=1)))
        res.append(r)
        print(f"{r['runs']:>10}: 2020 {r['auc_2020']:.4f}   2019 held-out {r['auc_2019']:.4f}   worse {min(r['auc_2020'], r['auc_2019']):.4f}")
    if a.out: Path(a.out).write_text(json.dumps(dict(runs=[str(r) for r in runs], folds=folds, results=res), indent=2))


if __name__ == '__main__': main()
