"""How a metadata model (the `melanoma train` default) predicts photos without age, sex or site, on the real 2020 mini.

    python bench/missing_metadata.py RUN   # a run folder under bench/_work/models, e.g. the one bench/train_quality.py made

Each fold's model re-predicts its own validation images (1 view) four ways: with their metadata; with all three fields
blank and encoded as unknown (what a model without `meta_prior` does); with all three blank and averaged over the
training combinations (`meta_prior`, here made from the other folds only, as training would); and with the age only.
Prints pooled and per-fold AUC and the mean probability (a calibrated model's mean is near the melanoma share).
"""
import os, sys, warnings
from pathlib import Path
import numpy as np, pandas as pd, torch
ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault('MELANOMA_CACHE', str(ROOT / 'bench' / '_work' / 'cache'))
warnings.filterwarnings('ignore')
from melanoma.train import train_table  # noqa: E402
from melanoma.model import load_model, MelanomaModel, meta_prior  # noqa: E402
from melanoma.core import safe_auc  # noqa: E402

siim = ROOT.parent / 'shared' / 'data' / 'siim-isic-2020-mini'
df = train_table(siim)
mm = load_model(ROOT / 'bench' / '_work' / 'models' / sys.argv[1], device='cpu')
assert mm.uses_meta, 'not a metadata model'
res = []
for k in range(len(mm.nets)):
    rows = df[df.fold == k]
    unknown = MelanomaModel({**mm.config, 'meta_prior': []}, [mm.nets[k]], device='cpu')
    prior = MelanomaModel({**mm.config, 'meta_prior': meta_prior(df[(df.fold >= 0) & (df.fold != k)])}, [mm.nets[k]], device='cpu')
    meta = rows[['sex', 'age', 'site']].reset_index(drop=True)
    blank, age_only = meta.assign(sex=None, age=np.nan, site=None), meta.assign(sex=None, site=None)
    paths = list(rows.path)
    res.append(pd.DataFrame(dict(fold=k, target=rows.target.to_numpy(), with_metadata=unknown.predict(paths, meta=meta, progress=False),
                                 blank_as_unknown=unknown.predict(paths, meta=blank, progress=False),
                                 blank_averaged=prior.predict(paths, meta=blank, progress=False),
                                 age_only_averaged=prior.predict(paths, meta=age_only, progress=False))))
r = pd.concat(res)
print(f'{len(r)} images, melanoma share {r.target.mean():.3f}')
for c in r.columns[2:]:
    print(f'{c:18s} pooled AUC {safe_auc(r.target, r[c]):.4f}  mean p {r[c].mean():.3f}  per fold',
          [round(safe_auc(g.target, g[c]), 3) for _, g in r.groupby('fold')])
