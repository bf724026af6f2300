"""Issue 25's segmentation lever "a second pass on the lesion's box" (`predict_masks(..., zoom=F)`), no retraining.

    OMP_NUM_THREADS=1 python bench/seg_zoom.py bench/_work/models/seg3h [--zooms 0,0.15,0.3,0.5,0.8] [--tta]

A model of `melanoma seg train --hold-out 0.2` predicts every image both populations it holds out (its
`valid_scores.csv`: the 150 official ISIC 2017 validation images and the random fifth of the training images it did not
train on) through `melanoma.segment.predict_masks`, once per `zoom`: 0 is one pass (the whole image at the network's
input); F > 0 cuts the box around the first pass's lesion, grown by F of its longer side on each side in the network's
4:3 shape, segments it again, and averages the two passes' probabilities inside the box. Mean and thresholded Jaccard
at each image's own size, with bootstrap 95% intervals, and the prediction time per image. Writes
bench/_work/seg_zoom-<model>[-tta].json.
"""
import argparse, json, time
from pathlib import Path
import pandas as pd, torch
from melanoma.segment import load_seg_model, read_seg_dataset, read_mask, predict_masks, jaccard, jaccard_summary

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / 'bench' / '_work'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('model', help='a `melanoma seg train --hold-out F` folder')
    ap.add_argument('--shared', default=str(ROOT.parent / 'shared' / 'data'))
    ap.add_argument('--zooms', default='0,0.15,0.3,0.5,0.8')
    ap.add_argument('--tta', action='store_true', help='the four flips in every pass')
    ap.add_argument('--threads', type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model, zooms = load_seg_model(a.model), [float(z) for z in a.zooms.split(',')]
    scores = pd.read_csv(Path(a.model) / 'valid_scores.csv')
    df = read_seg_dataset(Path(a.shared) / 'isic-2017-seg-mini').set_index('image_id').loc[scores.image_id]
    df['set'] = scores.set.to_numpy()
    truth = [read_mask(p, strict=False) for p in df.mask_path]
    res = {}
    for z in zooms:
        t = time.time()
        masks = predict_masks(model, list(df.path), tta=a.tta, zoom=z, progress=False)
        secs = time.time() - t
        js = pd.Series([jaccard(m, g) for m, g in zip(masks, truth)], index=df.index)
        res[f'{z:g}'] = dict(ms_per_image=round(1000 * secs / len(df), 1),
                             **{s: jaccard_summary(js[(df.set == s).to_numpy()].tolist()) for s in ('valid', 'hold_out')})
        v, h = res[f'{z:g}']['valid'], res[f'{z:g}']['hold_out']
        print(f"zoom {z:<4g}: official validation ({v['n']}) {v['jaccard']:.4f} {v['jaccard_ci']} / thresholded {v['thresholded_jaccard']:.4f}; "
              f"held-out fold ({h['n']}) {h['jaccard']:.4f} {h['jaccard_ci']} / {h['thresholded_jaccard']:.4f}; "
              f"{1000 * secs / len(df):.0f} ms per image", flush=True)
    f = WORK / f'seg_zoom-{Path(a.model).name}{"-tta" if a.tta else ""}.json'
    f.write_text(json.dumps(dict(model=a.model, members=len(model.nets), tta=a.tta, date=time.strftime('%Y-%m-%d %H:%M'), zooms=res), indent=2))
    print(f'-> {f}')


if __name__ == '__main__': main()
