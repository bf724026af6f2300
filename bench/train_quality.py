"""Quality of the default `melanoma train` recipe on both populations of the real mini data sets, over seeds, against
references, in one run.

    python bench/train_quality.py [--folds all] [--seeds 42,7,123] [--shared ../shared/data] [--references logreg,stage1,fine_tune]

Every contender and reference is scored twice:
- **2020**: out-of-fold AUC on the SIIM-ISIC 2020 mini (860 images, patient-grouped folds);
- **2019 held-out**: AUC on the lesion-grouped held-out fold of the ISIC 2019 mini (extra fold 0, ~2,150 HAM10000 + ISIC
  2017 images: the population of the ISIC 2017/2018 test sets and of most photos uploaded to the demo), which no model
  trains on; a k-fold model scores it with the mean of its fold models, as `melanoma predict` would: one view (as
  `melanoma train` scores it, cheaply) and, with `--heldout-tta 8` (the default), the 8 views `predict` uses by default.
The default is judged by the worse of the two (mean over seeds).

1. the default command `melanoma train --data siim-isic-2020-mini --extra isic-2019-mini --seed S` for every seed
   (restricted to `--folds` when given); wall time and images/s;
2. `logreg_2020`: frozen ImageNet features (same backbone, 128 px cache, global-pooled) + scikit-learn
   LogisticRegression fitted on the 2020 training folds; `logreg_both`: the same fitted on the 2020 training folds plus
   the 2019 images outside the held-out fold; `logreg_meta`: logreg_both with age/sex/site appended;
3. `stage1`: the default run's stage-1 network alone (2019 images only, image only; from the first seed's run; one view);
4. `fine_tune`: a plain fastai `fine_tune(4)` at 128 px on the 2020 training folds (fastai's default `aug_transforms`).
With `--lesion SEG`, each seed's run is also given the lesion view of segmentation model SEG (`melanoma seg attach`,
on a copy `<run>-lesion`) and scored again: `default+lesion`.
Writes bench/_work/train_quality-<name>.json. Real data never leaves bench/_work/ (git-ignored).
"""
import argparse, json, os, shutil, subprocess, sys, time
from pathlib import Path
import numpy as np, pandas as pd, torch

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / 'bench' / '_work'


def summary(rows: list[dict]) -> dict:
    "Mean, standard deviation and range over seeds of both AUCs, and the worse of the two means."
    out = {}
    for k in ('auc_2020', 'auc_2019', *sorted({k for r in rows for k in r if k.startswith('auc_2019_tta')})):
        v = np.array([r[k] for r in rows if r.get(k) is not None], float)
        if len(v): out[k] = dict(mean=round(v.mean(), 4), sd=round(v.std(ddof=1), 4) if len(v) > 1 else None,
                                 min=round(v.min(), 4), max=round(v.max(), 4), n=len(v))
    if 'auc_2020' in out and 'auc_2019' in out: out['worse_mean'] = min(out['auc_2020']['mean'], out['auc_2019']['mean'])
    return out


def heldout_tta(run: Path, siim: Path, isic: Path, tta: int) -> float:
    "AUC on the held-out 2019 fold of the trained run `run`, scored as `melanoma predict` scores it: `load_model`, every fold, `tta` views."
    from melanoma.train import train_table, FOLD_SEED
    from melanoma.store import image_cache, work_dir
    from melanoma.model import load_model
    from melanoma.images import Pixels
    from melanoma.core import safe_auc
    df = train_table(siim, [isic], seed=FOLD_SEED)
    ext = df[df.fold < 0].reset_index(drop=True)
    ho = np.flatnonzero((ext.extra_fold == 0).to_numpy())
    m = load_model(run, device='cpu')
    x, _ = image_cache(ext, m.size, work_dir(isic) / '.cache' / str(m.size))
    rows = ext.iloc[ho][['sex', 'age', 'site']].reset_index(drop=True) if m.uses_meta else None
    t = time.time()
    p = m.predict(Pixels(x, ho), meta=rows, tta=tta, bs=128, progress=False)
    auc = safe_auc(ext.target.to_numpy()[ho], p)
    print(f'{run.name}: held-out 2019 AUC with {tta} views, {len(m.nets)} fold model(s): {auc:.4f} ({len(ho)} images, {(time.time() - t) / 60:.1f} min)', flush=True)
    return auc


def with_lesion(run: Path, seg: Path, seed: int) -> dict:
    "The run with the lesion view of `seg` (`melanoma seg attach`, on a fresh copy `<run>-lesion`): both AUCs and the minutes it took."
    lrun = run.with_name(f'{run.name}-lesion')
    shutil.rmtree(lrun, ignore_errors=True)
    shutil.copytree(run, lrun, ignore=shutil.ignore_patterns('pretrain.safetensors', 'checkpoint-*'))
    t = time.time()
    cmd = [sys.executable, '-m', 'melanoma.cli', 'seg', 'attach', '--model', str(lrun), '--seg-model', str(seg)]
    print(' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    auc = json.loads((lrun / 'oof_auc.json').read_text())
    r = dict(seed=seed, run=lrun.name, attach_min=round((time.time() - t) / 60, 1), auc_2020=auc['sources'].get('siim2020'),
             auc_2019=auc['sources'].get('isic2019'), per_fold=auc['folds'])
    print('default + lesion view:', r, flush=True)
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--folds', default='all')
    ap.add_argument('--seeds', default='42', help='comma list of training seeds for the default command')
    ap.add_argument('--shared', default=str(ROOT.parent / 'shared' / 'data'))
    ap.add_argument('--skip-default', action='store_true', help='do not train; read the runs --name-s<seed> (when they exist)')
    ap.add_argument('--references', default='logreg,stage1,fine_tune', help='which references to run (comma list; "" for none)')
    ap.add_argument('--name', default=None, help='run name prefix (default quality-<folds>); existing runs resume')
    ap.add_argument('--args', default='', help='extra `melanoma train` arguments for the contender, e.g. "--replay 0"')
    ap.add_argument('--heldout-tta', type=int, default=8, help='also score the held-out 2019 fold with this many TTA views, '
                    'as `melanoma predict` does by default (training scores it with one view; 1: skip)')
    ap.add_argument('--lesion', default='', help='a `melanoma seg train` folder: also give each seed\'s run its lesion view '
                    '(`melanoma seg attach`, in a copy `<run>-lesion`) and score that')
    a = ap.parse_args()
    os.environ.setdefault('MELANOMA_CACHE', str(WORK / 'cache'))  # the shared folders are read-only
    siim, isic = Path(a.shared) / 'siim-isic-2020-mini', Path(a.shared) / 'isic-2019-mini'
    res = dict(date=time.strftime('%Y-%m-%d %H:%M'), folds=a.folds, seeds=a.seeds, args=a.args, cpu_threads=torch.get_num_threads())
    models = WORK / 'models'
    name = a.name or f'quality-{a.folds.replace(",", "")}'

    # 1. the default command, once per seed
    runs, lruns = [], []
    for seed in [int(s) for s in a.seeds.split(',') if s]:
        run = f'{name}-s{seed}'
        t = time.time()
        if not a.skip_default:
            cmd = [sys.executable, '-m', 'melanoma.cli', 'train', '--data', str(siim), '--extra', str(isic), '--name', run,
                   '--models-dir', str(models), '--fold', a.folds, '--seed', str(seed), *a.args.split()]
            print(' '.join(cmd), flush=True)
            subprocess.run(cmd, check=True)
        if (models / run / 'oof_auc.json').is_file():
            auc = json.loads((models / run / 'oof_auc.json').read_text())
            r = dict(seed=seed, run=run, wall_min=round((time.time() - t) / 60, 1), auc_2020=auc['sources'].get('siim2020'),
                     auc_2019=auc['sources'].get('isic2019'), per_fold=auc['folds'], train_images_per_s=auc.get('train_images_per_s'))
            if a.heldout_tta > 1: r[f'auc_2019_tta{a.heldout_tta}'] = heldout_tta(models / run, siim, isic, a.heldout_tta)
            runs.append(r); print('default:', r, flush=True)
            if a.lesion: lruns.append(with_lesion(models / run, Path(a.lesion), seed))
    if runs: res['default'] = dict(runs=runs, **summary(runs))
    if lruns: res['default+lesion'] = dict(runs=lruns, seg_model=str(a.lesion), **summary(lruns))
    refs = [r for r in a.references.split(',') if r]
    if not refs: return finish(res, name)
    pre = models / f'{name}-s{a.seeds.split(",")[0]}' / 'pretrain.safetensors'  # the first seed's stage-1 network
    if a.skip_default and not runs: name = f'{name}-references'  # references alone: do not overwrite the full results

    from melanoma.train import train_table, fold_split, FOLD_SEED
    from melanoma.store import image_cache, work_dir, CachedItems
    from melanoma.learner import CacheDL, labels, precision_cbs, AUC
    from melanoma.core import safe_auc
    from melanoma.model import create_model, splitter, meta_frame_to_tensor, _mel_logit
    from melanoma.images import dihedral
    from fastai.basics import Learner, DataLoaders, BCEWithLogitsLossFlat, Normalize
    from fastai.vision.augment import aug_transforms, IntToFloatTensor
    import fastai.callback.schedule  # noqa
    df = train_table(siim, [isic], seed=FOLD_SEED)  # the same folds and held-out 2019 fold as `melanoma train`
    main, ho = (df.fold >= 0).to_numpy(), ((df.fold < 0) & (df.extra_fold == 0)).to_numpy()
    x = torch.cat([image_cache(df[main], 128, work_dir(siim) / '.cache' / '128')[0],
                   image_cache(df[~main], 128, work_dir(isic) / '.cache' / '128')[0]])  # rows: main first, as in df
    assert main[:main.sum()].all()
    folds = sorted(df.fold[main].unique()) if a.folds == 'all' else [int(f) for f in a.folds.split(',')]
    net0 = create_model()
    mean, std = torch.tensor(net0.arch_config['mean'])[:, None, None], torch.tensor(net0.arch_config['std'])[:, None, None]
    tgt = df.target.to_numpy()

    def scores(pred_2020: dict, pred_2019: list) -> dict:
        "AUCs from per-fold 2020 validation predictions {fold: (idx, p)} and a list of held-out 2019 prediction arrays."
        i = np.concatenate([v[0] for v in pred_2020.values()]); p = np.concatenate([v[1] for v in pred_2020.values()])
        out = dict(auc_2020=safe_auc(tgt[i], p), per_fold={int(k): safe_auc(tgt[v[0]], v[1]) for k, v in pred_2020.items()})
        if pred_2019: out['auc_2019'] = safe_auc(tgt[ho], np.mean(pred_2019, 0))
        return out

    def forward(net, idx, views=1, bs=128):
        net = net.eval().to(memory_format=torch.channels_last); out = 0
        with torch.inference_mode():
            for v in range(views):
                f = [net((dihedral((x[idx[j:j + bs]].float() / 255 - mean) / std, v)).contiguous(memory_format=torch.channels_last)).float()
                     for j in range(0, len(idx), bs)]
                out = out + torch.cat(f).numpy()
        return out / views

    # 2. frozen features + logistic regression
    if 'logreg' in refs:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        t = time.time()
        feats = forward(net0.body, np.arange(len(df)))
        res['features_min'] = round((time.time() - t) / 60, 1)
        featm = np.concatenate([feats, meta_frame_to_tensor(df).numpy()], 1)
        for key, X, both in (('logreg_2020', feats, False), ('logreg_both', feats, True), ('logreg_meta', featm, True)):
            t = time.time(); p20, p19 = {}, []
            for k in folds:
                tr, va, _ = fold_split(df, k, holdout=0)
                if not both: tr = tr[main[tr]]
                clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=3000)).fit(X[tr], tgt[tr])
                p20[k] = (va, clf.predict_proba(X[va])[:, 1]); p19.append(clf.predict_proba(X[ho])[:, 1])
            res[key] = dict(wall_min=round((time.time() - t) / 60, 1), **scores(p20, p19))
            print(f'{key}:', res[key], flush=True)

    # 3. the stage-1 network alone
    if 'stage1' in refs and pre.is_file():
        from safetensors.torch import load_file
        sd = load_file(str(pre))  # a binary head (1 output) or the diagnoses' (--pretrain-head multiclass: 9)
        net = create_model(pretrained=False, n_out=sd['head.1.weight'].shape[0]); net.load_state_dict(sd)
        i20 = np.flatnonzero(main)
        p = torch.sigmoid(_mel_logit(torch.from_numpy(forward(net, np.concatenate([i20, np.flatnonzero(ho)]))))).numpy().ravel()
        res['stage1'] = dict(auc_2020=safe_auc(tgt[i20], p[:len(i20)]), auc_2019=safe_auc(tgt[ho], p[len(i20):]))
        print('stage1:', res['stage1'], flush=True)

    # 4. plain fastai fine_tune at 128 px on the 2020 training folds
    if 'fine_tune' in refs:
        t = time.time(); p20, p19 = {}, []
        y = labels(df)
        tfms = [IntToFloatTensor(), *aug_transforms(), Normalize.from_stats(mean.view(-1), std.view(-1))]
        for k in folds:
            torch.manual_seed(k)
            tr, va, _ = fold_split(df, k, holdout=0); tr = tr[main[tr]]
            tdl = CacheDL(CachedItems(x, y, tgt, tr), bs=32, shuffle=True, drop_last=True, after_batch=tfms)
            vdl = CacheDL(CachedItems(x, y, tgt, va, split_idx=1), bs=64, after_batch=tfms)
            learn = Learner(DataLoaders(tdl, vdl), create_model(), loss_func=BCEWithLogitsLossFlat(), metrics=[AUC()],
                            splitter=splitter, cbs=precision_cbs('auto'))
            with learn.no_bar(), learn.no_logging(): learn.fine_tune(4, 2e-3)
            hdl = CacheDL(CachedItems(x, y, tgt, np.flatnonzero(ho), split_idx=1), bs=64, after_batch=tfms)
            p20[k] = (va, learn.get_preds(dl=vdl)[0].view(-1).numpy()); p19.append(learn.get_preds(dl=hdl)[0].view(-1).numpy())
        res['fastai_fine_tune'] = dict(wall_min=round((time.time() - t) / 60, 1), **scores(p20, p19))
        print('fine_tune:', res['fastai_fine_tune'], flush=True)
    finish(res, name)


def finish(res: dict, name: str):
    WORK.mkdir(parents=True, exist_ok=True)
    out = WORK / f'train_quality-{name}.json'
    out.write_text(json.dumps(res, indent=2, default=str))
    print('written', out)
    tta = sorted({k for v in res.values() if isinstance(v, dict) for k in v if k.startswith('auc_2019_tta')})
    print(f'{"":20s} {"2020 OOF":>18s} {"2019 held-out":>18s}' + ''.join(f' {"2019, " + k[9:] + " views":>18s}' for k in tta))
    for k, v in res.items():
        if not isinstance(v, dict) or 'auc_2020' not in v: continue
        f = lambda s: f"{s['mean']:.3f} ± {s['sd'] or 0:.3f} (n={s['n']})" if isinstance(s, dict) else ('—' if s is None else f'{s:.3f}')
        print(f'{k:20s} {f(v.get("auc_2020")):>18s} {f(v.get("auc_2019")):>18s}' + ''.join(f' {f(v.get(t)):>18s}' for t in tta))


if __name__ == '__main__':
    main()
