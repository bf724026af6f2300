"""Issue 25's lever "lesion crops for training" (after the lesion view at prediction, `melanoma seg attach`): the default
`melanoma train` recipe, but each training image is replaced, with probability `--p`, by the crop around its lesion.

    OMP_NUM_THREADS=2 python bench/train_on_crops.py --seg bench/_work/models/seg3 [--seed 42] [--folds all] [--p 0.5]

An experiment, not a feature: the crops (`melanoma.segment.LesionView`, the view `seg attach` gives, margin 0.3, at the
training size) are cut once for every training row (cached in bench/_work/, keyed by the segmentation model's and the
images' sizes and modification times), and `melanoma.learner.CacheDL.create_batch` is patched so that training batches
(not validation ones) take the crop of each row with probability `--p`. Everything else is `melanoma.train.train` with
the defaults on the real minis (`--data siim-isic-2020-mini --extra isic-2019-mini`), stage 1 included. The run's
out-of-fold scores are then made again with the lesion view (`attach_lesion_view`, the same segmentation model) and both
are printed beside the fold models trained on whole images only (`--reference`, a default run of the same seed).
Writes bench/_work/models/<name> and bench/_work/train_on_crops-<name>.json."""
import argparse, hashlib, json, os, shutil, time
from pathlib import Path
import numpy as np, torch

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / 'bench' / '_work'


def crop_cache(df, seg_dir: Path, size: int) -> torch.Tensor:
    "N x 3 x size x size uint8 lesion crops of `df.path` (the rows of `train_table`), cached under bench/_work."
    from melanoma.core import file_stamp
    from melanoma.segment import LesionView, load_seg_model
    from melanoma.model import LESION_CHUNK
    paths = list(df.path)
    key = hashlib.sha256('\n'.join([file_stamp(seg_dir / f) for f in ('config.json', 'seg.safetensors')] + [f'{p} {file_stamp(p)}' for p in paths]).encode()).hexdigest()
    f = WORK / f'train-crops-{seg_dir.name}-{size}.npz'
    if f.is_file():
        with np.load(f) as z:
            if str(z['key']) == key: return torch.from_numpy(z['x'])
    view, out, t = LesionView(load_seg_model(seg_dir)), np.zeros((len(paths), 3, size, size), np.uint8), time.time()
    for s in range(0, len(paths), LESION_CHUNK):
        for j, c in enumerate(view.crops(paths[s:s + LESION_CHUNK], size)):
            if c is not None: out[s + j] = c.transpose(2, 0, 1)
        print(f'  training crops {min(s + LESION_CHUNK, len(paths))}/{len(paths)} ({time.time() - t:.0f} s)', flush=True)
    with open(f, 'wb') as fh: np.savez(fh, key=np.array(key), x=out)
    return torch.from_numpy(out)


PATCHED = {'batches': 0, 'crops': 0}  # training batches that could take crops, and crops taken


def patch_batches(xc: torch.Tensor, p: float, seed: int) -> None:
    "Training batches of `CacheDL` over a cache of `len(xc)` rows take each row's crop with probability `p`."
    import melanoma.learner as L
    from fastai.torch_core import TensorImage
    make, g = L.CacheDL.create_batch, torch.Generator().manual_seed(seed)
    def create_batch(self, b):
        out = make(self, b)
        ds = self.dataset
        if ds.split_idx != 0 or ds.x.shape[0] != xc.shape[0]: return out
        i = torch.as_tensor(ds.idxs[np.asarray(b, dtype=int)], dtype=torch.long)
        take = torch.rand(len(i), generator=g) < p
        x = out[0].clone()
        x[take] = xc[i[take]]
        PATCHED['batches'] += 1; PATCHED['crops'] += int(take.sum())
        return (TensorImage(x), *out[1:])
    L.CacheDL.create_batch = create_batch


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seg', required=True, help='a `melanoma seg train` folder')
    ap.add_argument('--seed', type=int, default=42)
    ap.add_argument('--folds', default='all')
    ap.add_argument('--p', type=float, default=0.5, help='probability that a training image is replaced by its lesion crop')
    ap.add_argument('--reference', default='', help='a default run of the same seed with its lesion view attached (e.g. bench/_work/models/lv-s42)')
    ap.add_argument('--shared', default=str(ROOT.parent / 'shared' / 'data'))
    ap.add_argument('--name', default=None)
    a = ap.parse_args()
    os.environ.setdefault('MELANOMA_CACHE', str(WORK / 'cache'))  # the shared folders are read-only
    from melanoma.train import train, train_table, FOLD_SEED, TrainConfig
    from melanoma.segment import attach_lesion_view
    siim, isic = Path(a.shared) / 'siim-isic-2020-mini', Path(a.shared) / 'isic-2019-mini'
    name = a.name or f'crops-p{a.p:g}-s{a.seed}'
    size = TrainConfig(data=siim).size
    t = time.time()
    xc = crop_cache(train_table(siim, [isic], seed=FOLD_SEED), Path(a.seg), size)
    crops_min = (time.time() - t) / 60
    patch_batches(xc, a.p, a.seed)
    t = time.time()
    run = train(siim, extra=[str(isic)], name=name, models_dir=WORK / 'models', seed=a.seed, fold=a.folds)
    train_min = (time.time() - t) / 60
    print(f"training batches with crops: {PATCHED['batches']}, crops taken: {PATCHED['crops']}", flush=True)
    if not PATCHED['batches']: raise SystemExit('no training batch took a crop: the cache rows do not match the training table')
    whole = json.loads((run / 'oof_auc.json').read_text())
    lrun = run.with_name(f'{name}-lesion')
    shutil.rmtree(lrun, ignore_errors=True)
    shutil.copytree(run, lrun, ignore=shutil.ignore_patterns('pretrain.safetensors', 'checkpoint-*'))
    lesion = attach_lesion_view(lrun, a.seg)
    res = dict(date=time.strftime('%Y-%m-%d %H:%M'), seed=a.seed, folds=a.folds, p=a.p, seg=a.seg, crops_min=round(crops_min, 1),
               train_min=round(train_min, 1), crops_taken=PATCHED['crops'], whole=whole['sources'], per_fold=whole['folds'], lesion_view=lesion['sources'],
               lesion_per_fold=lesion['folds'])
    if a.reference:
        ref = json.loads((Path(a.reference) / 'oof_auc.json').read_text())
        res['reference'] = dict(whole=ref.get('lesion_view', {}).get('whole', {}).get('sources'), lesion_view=ref['sources'])
    (WORK / f'train_on_crops-{name}.json').write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == '__main__':
    main()
