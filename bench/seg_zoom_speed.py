"""The second pass of `predict_masks` (`zoom`) batched against the same pass image by image (how it ran until 2026-12-07).

    OMP_NUM_THREADS=1 python bench/seg_zoom_speed.py bench/_work/models/seg3h [--n 96] [--reps 3] [--zoom 0.8]

Both predict the same real images (the first N official ISIC 2017 validation images of the shared mini set, at their
own size) with the same model: `melanoma.segment.predict_masks(zoom=F)`, whose second pass sends the lesion boxes of a
batch through the network together, and the baseline below, which cut and segmented each image's box alone (the code
as it was, kept here). Prints the median milliseconds per image of each over `--reps` rounds (run alternately), their
ratio, one pass (`zoom=0`) for scale, and how many mask pixels differ (0: the same masks). Writes bench/_work/seg_zoom_speed.json.
"""
import argparse, json, statistics, time
from pathlib import Path
import torch, torch.nn.functional as F
from melanoma.images import open_image
from melanoma.segment import clean_mask, lesion_box, load_seg_model, predict_masks

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / 'bench' / '_work'


@torch.inference_mode()
def image_by_image(model, paths, zoom: float, bs: int = 16) -> list:
    "The baseline: the first pass batched, the second pass one image at a time."
    out, (h_, w_) = [], model.size
    for s in range(0, len(paths), bs):
        ims = [open_image(p) for p in paths[s:s + bs]]
        p = model.probabilities(torch.stack([model.preprocess(i) for i in ims])).float().cpu()
        for k, im in enumerate(ims):
            w, h = im.size
            pr = F.interpolate(p[k:k + 1], size=(h, w), mode='bilinear', align_corners=False)[0, 0]
            box = lesion_box(clean_mask(pr.numpy() > model.threshold), im.size, zoom, w_ / h_)
            if box is not None:
                l, t, r, b = box
                q = model.probabilities(model.preprocess(im.crop(box))[None]).float().cpu()
                pr[t:b, l:r] = (pr[t:b, l:r] + F.interpolate(q, size=(b - t, r - l), mode='bilinear', align_corners=False)[0, 0]) / 2
            out.append(clean_mask(pr.numpy() > model.threshold))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('model', help='a `melanoma seg train` folder')
    ap.add_argument('--shared', default=str(ROOT.parent / 'shared' / 'data'))
    ap.add_argument('--n', type=int, default=96)
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--zoom', type=float, default=0.8)
    ap.add_argument('--threads', type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = load_seg_model(a.model)
    paths = sorted((Path(a.shared) / 'isic-2017-seg-mini' / 'ISIC-2017_Validation_Data').glob('*.jpg'))[:a.n]
    times = {'batched (predict_masks)': [], 'image by image (baseline)': [], 'one pass (zoom 0, for scale)': []}
    for _ in range(a.reps):
        t = time.perf_counter(); predict_masks(model, paths, zoom=0, progress=False)
        times['one pass (zoom 0, for scale)'].append((time.perf_counter() - t) / len(paths) * 1000)
        t = time.perf_counter(); new = predict_masks(model, paths, zoom=a.zoom, progress=False)
        times['batched (predict_masks)'].append((time.perf_counter() - t) / len(paths) * 1000)
        t = time.perf_counter(); old = image_by_image(model, paths, a.zoom)
        times['image by image (baseline)'].append((time.perf_counter() - t) / len(paths) * 1000)
    med = {k: statistics.median(v) for k, v in times.items()}
    diff = sum(int((x != y).sum()) for x, y in zip(new, old))
    for k, v in med.items(): print(f'{k}: {v:.1f} ms per image (median of {a.reps}; {", ".join(f"{x:.1f}" for x in times[k])})')
    ratio = med['batched (predict_masks)'] / med['image by image (baseline)']
    print(f'ratio batched / baseline: {ratio:.2f}; two passes / one: {med["batched (predict_masks)"] / med["one pass (zoom 0, for scale)"]:.2f} '
          f'(the baseline: {med["image by image (baseline)"] / med["one pass (zoom 0, for scale)"]:.2f}); mask pixels that differ: {diff} of {sum(x.size for x in new)}')
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / 'seg_zoom_speed.json').write_text(json.dumps(dict(model=str(a.model), n=len(paths), zoom=a.zoom, threads=a.threads,
                                                             ms_per_image=times, median=med, ratio=ratio, differing_pixels=diff), indent=2))


if __name__ == '__main__': main()
