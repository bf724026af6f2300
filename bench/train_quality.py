"""Quality of the default `melanoma train` recipe on the real mini data sets, against two references, in one run.

    python bench/train_quality.py [--folds 0,1,2,3,4] [--shared ../shared/data]

1. the default command: `melanoma train --data siim-isic-2020-mini --extra isic-2019-mini` (CPU), restricted to
   `--folds` when given; OOF AUC on the 2020 mini and on the 2019 mini (scored out of fold), wall time, images/s;
2. frozen ImageNet features (same backbone, same 128 px cache, global-pooled) + scikit-learn LogisticRegression
   (also with the features averaged over 8 views, and with the metadata the default model fuses appended);
3. a plain fastai `fine_tune(4)` at 128 px (same backbone, fastai's default `aug_transforms`, BCE, lr 2e-3).
References 2 and 3 use the 2020 mini's training folds only, with the same grouped folds.
Writes bench/_work/train_quality.json. Real data never leaves bench/_work/ (git-ignored).
"""
import argparse, json, os, subprocess, sys, time
from pathlib import Path
import numpy as np, pandas as pd, torch

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / 'bench' / '_work'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--folds', default='all')
    ap.add_argument('--shared', default=str(ROOT.parent / 'shared' / 'data'))
    ap.add_argument('--skip-default', action='store_true', help='do not train; read the run --name (when it exists)')
    ap.add_argument('--references', default='logreg,fine_tune', help='which references to run (comma list; "" for none)')
    ap.add_argument('--name', default=None, help='run name (default quality-default-<folds>); an existing run resumes')
    a = ap.parse_args()
    os.environ.setdefault('MELANOMA_CACHE', str(WORK / 'cache'))  # the shared folders are read-only
    siim, isic = Path(a.shared) / 'siim-isic-2020-mini', Path(a.shared) / 'isic-2019-mini'
    res = dict(date=time.strftime('%Y-%m-%d %H:%M'), folds=a.folds, cpu_threads=torch.get_num_threads())
    models = WORK / 'models'

    # 1. the default command
    name = a.name or f'quality-default-{a.folds.replace(",", "")}'
    t = time.time()
    if not a.skip_default:
        cmd = [sys.executable, '-m', 'melanoma.cli', 'train', '--data', str(siim), '--extra', str(isic), '--name', name,
               '--models-dir', str(models), '--fold', a.folds]
        print(' '.join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    if (models / name / 'oof_auc.json').is_file():
        auc = json.loads((models / name / 'oof_auc.json').read_text())
        res['default'] = dict(wall_min=round((time.time() - t) / 60, 1), auc_2020=auc['sources'].get('siim2020'),
                          auc_2019=auc['sources'].get('isic2019'), per_fold=auc['folds'], train_images_per_s=auc.get('train_images_per_s'))
        print('default:', res['default'], flush=True)
    refs = [r for r in a.references.split(',') if r]

    from melanoma.train import train_table, image_cache, work_dir, fold_split, CachedItems, CacheDL, labels, precision_cbs, AUC
    from melanoma.core import safe_auc
    from melanoma.model import create_model, splitter
    from fastai.basics import Learner, DataLoaders, BCEWithLogitsLossFlat, Normalize
    from fastai.vision.augment import aug_transforms, IntToFloatTensor
    import fastai.callback.schedule  # noqa
    df = train_table(siim)
    df = df[df.fold >= 0].reset_index(drop=True)
    x, ok = image_cache(df, 128, work_dir(siim) / '.cache' / '128')
    folds = list(range(int(df.fold.max()) + 1)) if a.folds == 'all' else [int(f) for f in a.folds.split(',')]
    net0 = create_model()
    mean, std = torch.tensor(net0.arch_config['mean'])[:, None, None], torch.tensor(net0.arch_config['std'])[:, None, None]

    # 2. frozen features + logistic regression (also with features averaged over the 8 dihedral views, as the default's TTA)
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from melanoma.model import dihedral
    def features(views):
        body = net0.body.eval().to(memory_format=torch.channels_last)
        out = 0
        with torch.inference_mode():
            for v in range(views):
                f = []
                for i in range(0, len(x), 64):
                    xb = dihedral((x[i:i + 64].float() / 255 - mean) / std, v).contiguous(memory_format=torch.channels_last)
                    f.append(body(xb).float())
                out = out + torch.cat(f).numpy()
        return out / views
    from melanoma.model import meta_frame_to_tensor
    for key, views, with_meta in (('logreg_frozen', 1, False), ('logreg_frozen_tta8', 8, False), ('logreg_frozen_meta', 1, True)):
        if 'logreg' not in refs: break
        t = time.time()
        feats = features(views)
        if with_meta: feats = np.concatenate([feats, meta_frame_to_tensor(df).numpy()], 1)  # + age, sex, site as the default model gets them
        oof = []
        for k in folds:
            tr, va, _ = fold_split(df, k, ok)
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=3000)).fit(feats[tr], df.target.iloc[tr])
            oof.append(pd.DataFrame(dict(target=df.target.iloc[va].to_numpy(), pred=clf.predict_proba(feats[va])[:, 1], fold=k)))
        oof = pd.concat(oof)
        res[key] = dict(wall_min=round((time.time() - t) / 60, 1), auc_2020=safe_auc(oof.target, oof.pred),
                        per_fold={int(k): safe_auc(g.target, g.pred) for k, g in oof.groupby('fold')})
        print(f'{key}:', res[key], flush=True)

    # 3. plain fastai fine_tune at 128 px
    t, n_img = time.time(), 0
    oof = []
    for k in (folds if 'fine_tune' in refs else []):
        torch.manual_seed(k)
        tr, va, _ = fold_split(df, k, ok)
        y, tg = labels(df), df.target.to_numpy()
        tfms = [IntToFloatTensor(), *aug_transforms(), Normalize.from_stats(mean.view(-1), std.view(-1))]
        tdl = CacheDL(CachedItems(x, y, tg, tr), bs=32, shuffle=True, drop_last=True, after_batch=tfms)
        vdl = CacheDL(CachedItems(x, y, tg, va, split_idx=1), bs=64, after_batch=tfms)
        learn = Learner(DataLoaders(tdl, vdl), create_model(), loss_func=BCEWithLogitsLossFlat(), metrics=[AUC()],
                        splitter=splitter, cbs=precision_cbs('auto'))
        learn.fine_tune(4, 2e-3)
        p, tt = learn.get_preds(dl=vdl)
        oof.append(pd.DataFrame(dict(target=tt.view(-1).numpy(), pred=p.view(-1).numpy(), fold=k)))
        n_img += 5 * len(tr)
    if oof:
        oof = pd.concat(oof)
        res['fastai_fine_tune'] = dict(wall_min=round((time.time() - t) / 60, 1), auc_2020=safe_auc(oof.target, oof.pred),
                                       per_fold={int(k): safe_auc(g.target, g.pred) for k, g in oof.groupby('fold')})
        print('fine_tune:', res['fastai_fine_tune'], flush=True)

    ref = [res[k]['auc_2020'] for k in ('logreg_frozen', 'logreg_frozen_tta8', 'logreg_frozen_meta', 'fastai_fine_tune') if k in res]
    if 'default' in res and ref: res['margin_vs_best_reference'] = res['default']['auc_2020'] - max(ref)
    WORK.mkdir(parents=True, exist_ok=True)
    out = WORK / f'train_quality-{name}.json'
    out.write_text(json.dumps(res, indent=2, default=str))
    print('written', out)
    print(json.dumps(res, indent=2, default=str))


if __name__ == '__main__':
    main()
