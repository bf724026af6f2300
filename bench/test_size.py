"""Does a trained run score better when it sees its images differently at prediction: larger than it trained on (the
train/test resolution discrepancy: training's zoom augmentation shows lesions larger than prediction does, Touvron et
al. 2019, "FixRes"), or as a crop around the lesion a segmentation model finds, beside the whole image?

For a run folder written by `bench/train_quality.py` (or `melanoma train --data siim-isic-2020-mini --extra isic-2019-mini`),
scores both populations through the same `MelanomaModel.predict` path training's out-of-fold scores and `melanoma
predict` use; only the pixels fed in change:

- 2020 mini out of fold: each image by the model of the fold that held it out, `--tta` dihedral views (training's 8);
- the held-out ISIC 2019 fold: the mean of all fold models, one view (as `bench/train_quality.py` scores it).

`--sizes` feeds the whole image at each size, and all of them averaged. `--seg DIR` (a `melanoma seg train` folder)
also feeds, at the run's own size, the lesion crop (`melanoma.segment.lesion_box` at each of `--margins`, from the
image opened at 512 px), and the whole image and the crop averaged: with `--tta`/2 views of each on the 2020 images (the
cost of the whole image alone) and one view of each on the 2019 fold (twice the cost). The run's own size reproduces
its `oof_auc.json` (printed beside it as the check).

    OMP_NUM_THREADS=1 python bench/test_size.py bench/_work/models/q-r2e7-s42 --sizes 128,144,160
    OMP_NUM_THREADS=2 python bench/test_size.py bench/_work/models/q-default-s42 --sizes 128 --seg models/seg --margins 0.1,0.3
"""
import argparse, hashlib, json, os, sys, time
from pathlib import Path
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def lesion_crops(paths, seg_dir: Path, size: int, margins, cache: Path) -> dict:
    """{margin: N x 3 x size x size uint8} lesion crops of `paths` (cached in `cache`, keyed by the segmentation model's and
    the images' sizes and modification times), as the classifier's `load_image` resizes them."""
    import torch
    from melanoma.core import file_stamp
    from melanoma.images import load_image, open_image
    from melanoma.segment import lesion_box, load_seg_model, predict_masks
    key = hashlib.sha256('\n'.join([file_stamp(seg_dir / f) for f in ('config.json', 'seg.safetensors')] + [f'{p} {file_stamp(p)}' for p in paths]).encode()).hexdigest()
    if cache.is_file():
        z = np.load(cache)
        if str(z.get('key', '')) == key and all(f'm{m}' in z for m in margins): return {m: torch.from_numpy(z[f'm{m}']) for m in margins}
        print(f'  {cache}: made from another segmentation model, images or margins; making the crops again', flush=True)
    seg, out, t = load_seg_model(seg_dir), {m: [] for m in margins}, time.time()
    for s in range(0, len(paths), 64):
        ims = [open_image(p, size=512) for p in paths[s:s + 64]]
        # one pass (zoom=0), as `melanoma.segment.LesionView.boxes` cuts the classifier's lesion view
        for im, mask in zip(ims, predict_masks(seg, ims, bs=32, progress=False, zoom=0)):
            for m in margins:
                box = lesion_box(mask, im.size, m)
                out[m].append(load_image(im if box is None else im.crop(box), size).transpose(2, 0, 1))
        print(f'  lesion crops {s + len(ims)}/{len(paths)} ({time.time() - t:.0f} s)', flush=True)
    out = {m: np.stack(v) for m, v in out.items()}
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, key=np.array(key), **{f'm{m}': v for m, v in out.items()})
    return {m: torch.from_numpy(v) for m, v in out.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('runs', nargs='+', help='run folders')
    ap.add_argument('--sizes', default='128,144,160', help='comma list of input sizes')
    ap.add_argument('--tta', type=int, default=8, help='views for the 2020 out-of-fold scores (training uses 8)')
    ap.add_argument('--folds', default='all', help='comma list of the fold models to use (default all): compares a stopped run with the same folds of another')
    ap.add_argument('--seg', default='', help='a `melanoma seg train` model folder: also feed lesion crops at the run\'s size')
    ap.add_argument('--margins', default='0.1,0.3', help='with --seg: comma list of crop margins (`lesion_box`: a fraction of the lesion\'s longer side, each side)')
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
    y20, y19 = main_.target.to_numpy(), ext.target.to_numpy()[ho]
    margins = [float(m) for m in a.margins.split(',')] if a.seg else []
    out = []
    for run in map(Path, a.runs):
        m = load_model(run, device='cpu')
        keep = [i for i, k in enumerate(m.config.folds) if a.folds == 'all' or str(k) in a.folds.split(',')]
        nets, folds, trained = [m.nets[i] for i in keep], [m.config.folds[i] for i in keep], m.size
        f = run / 'oof_auc.json'  # a stopped run has none
        ref = json.loads(f.read_text())['sources'] if f.is_file() and a.folds == 'all' else {}

        def score(x20, x19, tta):
            "(2020 out-of-fold, 2019 held-out) probabilities of the fold models fed uint8 pixels `x20` (all 2020 rows) and `x19` (the held-out rows)."
            p = np.full(len(main_), np.nan)
            for k, net in zip(folds, nets):
                idx = np.flatnonzero((main_.fold == k).to_numpy())
                m.nets = [net]
                rows = main_.iloc[idx][['sex', 'age', 'site']].reset_index(drop=True) if m.uses_meta else None
                p[idx] = m.predict(Pixels(x20, idx), meta=rows, tta=tta, bs=128, progress=False)
            m.nets = nets
            rows = ext.iloc[ho][['sex', 'age', 'site']].reset_index(drop=True) if m.uses_meta else None
            return p, m.predict(x19, meta=rows, tta=1, bs=128, progress=False)

        def report(what, size, p, pe, t=None, **kw):
            ok = ~np.isnan(p)
            r = dict(run=run.name, folds=','.join(map(str, folds)), trained=trained, size=size, fed=what,
                     auc_2020=round(safe_auc(y20[ok], p[ok]), 4), auc_2019=round(safe_auc(y19, pe), 4), **kw)
            if t is not None: r['min'] = round((time.time() - t) / 60, 1)
            out.append(r); print(r, flush=True)

        preds, whole = {}, {}
        for s in sorted({int(s) for s in a.sizes.split(',')} | ({trained} if margins else set())):
            t = time.time()
            m.size = s  # the only change: the pixels fed to the same networks
            x, _ = image_cache(main_, s, work_dir(siim) / '.cache' / str(s))
            xe, _ = image_cache(ext, s, work_dir(isic) / '.cache' / str(s))
            preds[s] = score(x, Pixels(xe, ho), a.tta)
            check = dict(check_2020=ref.get('siim2020'), check_2019=ref.get('isic2019')) if s == trained else {}
            report('whole image', s, *preds[s], t, **check)
            if s == trained: whole = dict(x=x, xe=xe)
        if len(preds) > 1:  # every size's prediction averaged: a multi-scale TTA
            report('whole image', '+'.join(map(str, preds)), *(np.mean([v[i] for v in preds.values()], 0) for i in (0, 1)))
        if margins:
            m.size = trained
            paths = list(main_.path) + list(ext.path.iloc[ho])
            crops = lesion_crops(paths, Path(a.seg), trained, margins, ROOT / 'bench' / '_work' / f'crops-{Path(a.seg).name}-{trained}.npz')
            half = max(a.tta // 2, 1)
            p_half = score(whole['x'], Pixels(whole['xe'], ho), half)
            for mg, c in crops.items():
                t = time.time()
                n = len(main_)
                pc = score(c[:n], Pixels(c[n:]), a.tta)
                report(f'lesion crop, margin {mg}', trained, *pc, t)
                ph = score(c[:n], Pixels(c[n:]), half)
                report(f'whole + lesion crop (margin {mg}), {half} + {half} views', trained, (p_half[0] + ph[0]) / 2, (p_half[1] + ph[1]) / 2)
                report(f'whole + lesion crop (margin {mg}), {a.tta} + {a.tta} views', trained, (preds[trained][0] + pc[0]) / 2, (preds[trained][1] + pc[1]) / 2)
    print('| run | fold models | trained at | fed at | fed | 2020 OOF AUC (their folds) | 2019 held-out AUC (their mean) |\n| --- | --- | --- | --- | --- | --- | --- |')
    for r in out: print(f"| {r['run']} | {r['folds']} | {r['trained']} | {r['size']} | {r['fed']} | {r['auc_2020']:.3f} | {r['auc_2019']:.3f} |")


if __name__ == '__main__':
    main()
