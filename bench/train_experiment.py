"""One `melanoma.train.train` experiment on the real minis (2020 mini + 2019 mini as --extra), for recipe comparisons.

    python bench/train_experiment.py NAME '{"size": 160, "meta": true}' [FOLDS, default 0,1] [--tta8] [--pre=RUN]

The JSON holds `train` keyword arguments that change the default. Prints and appends to bench/_work/exp_results.jsonl
the pooled and per-fold 2020 OOF AUC and each source's AUC (the held-out extra fold averaged over the fold models); --pre=RUN starts from RUN's stage-1 network (pretrain.safetensors); --tta8 also re-predicts each fold model through `MelanomaModel.predict` with 8 views.
"""
import json, os, sys, time
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT/'bench'/'_work'
os.environ.setdefault('MELANOMA_CACHE', str(WORK/'cache'))
import numpy as np, pandas as pd, torch
SH = ROOT.parent/'shared'/'data'
siim, isic = SH/'siim-isic-2020-mini', SH/'isic-2019-mini'
from melanoma.train import train  # noqa: E402 (after MELANOMA_CACHE is set)
from melanoma.core import safe_auc
name, kw = sys.argv[1], json.loads(sys.argv[2])
folds = sys.argv[3] if len(sys.argv) > 3 and not sys.argv[3].startswith('--') else '0,1'
kw.setdefault('extra', [str(isic)])
if kw['extra'] in (None, []): kw.pop('extra')
pre = next((a.split('=', 1)[1] for a in sys.argv if a.startswith('--pre=')), None)
if pre:  # reuse the stage-1 network of an earlier run (the same extra data and arguments): stage 2 only
    import shutil
    (WORK/'models'/name).mkdir(parents=True, exist_ok=True)
    shutil.copy(WORK/'models'/pre/'pretrain.safetensors', WORK/'models'/name/'pretrain.safetensors')
t = time.time()
run = train(siim, name=name, models_dir=WORK/'models', fold=folds, progress=False, **kw)
mins = (time.time() - t) / 60
oof = pd.read_csv(run/'oof.csv')
m = oof[oof.source == 'siim2020']
per = {int(k): round(safe_auc(g.target, g.pred), 4) for k, g in m.groupby('fold')}
src = json.loads((run/'oof_auc.json').read_text())['sources']  # per image: held-out extra images averaged over the fold models
res = dict(name=name, kw=kw, folds=folds, auc=round(safe_auc(m.target, m.pred), 4), per_fold=per, minutes=round(mins, 1),
           sources={k: round(v, 4) for k, v in src.items() if v is not None})
if '--tta8' in sys.argv:
    from melanoma.model import load_model, MelanomaModel
    from melanoma.train import train_table
    mm = load_model(run)
    df = train_table(siim)
    ps = []
    for i, k in enumerate(sorted(m.fold.unique())):
        va = df[df.fold == k]
        one = MelanomaModel(mm.config, [mm.nets[i]])
        ps.append(pd.DataFrame(dict(target=va.target.to_numpy(), pred=one.predict(list(va.path), tta=8, progress=False), fold=k)))
    ps = pd.concat(ps)
    res['auc_tta8'] = round(safe_auc(ps.target, ps.pred), 4)
    res['per_fold_tta8'] = {int(k): round(safe_auc(g.target, g.pred), 4) for k, g in ps.groupby('fold')}
print('RESULT', json.dumps(res), flush=True)
with open(WORK/'exp_results.jsonl', 'a') as f: f.write(json.dumps(res) + '\n')
