"""Issue 25's segmentation lever "a second-stage network on the lesion crop", a first look (not in the package).

    OMP_NUM_THREADS=2 python bench/seg_crop_stage.py bench/_work/models/seg1h [--two bench/_work/models/seg3h] [--threads 2]

`predict_masks(zoom=0.8)` segments the box around the lesion a second time with the same network, which learnt on whole
images. Here a second network of the same recipe (`melanoma.segment._fit_member`: U-Net over Lite0, 128x96, 7 epochs,
Dice + BCE, the same augmentation and seed) learns on lesion crops instead: each training image of the first model's
split (its `config.json` `train_args`: seed, `--hold-out`) cut to the box around its annotated lesion, grown by a random
0.4-1.2 of the box's longer side on each side in the network's 4:3 shape (the second pass's 0.8 in the middle), and
resized to 128x96 (`--size 144x192`: at a higher resolution). At prediction the first model finds the box (one pass, grown by 0.8, as `_zoom_pass`) and:

- `zoom 0.8` : the first model segments the box again, averaged with its first pass inside the box (the default today);
- `crop net, averaged`: the crop network segments the box, averaged with the first pass inside the box;
- `crop net alone in the box`: the crop network's probabilities replace the first pass inside the box;
- `both, averaged`: the first pass, the first model's zoomed pass and the crop network's, averaged inside the box.

With `--two M3` (a three-member model of the same split, e.g. `seg3h`) its first two members as a two-network ensemble
with `zoom 0.8`: the same compute as the first model plus the crop network. Both populations the first model held out
(`valid_scores.csv`: the 150 official validation images and the held-out fifth of the training images), each image at
its own size, mean and thresholded Jaccard with bootstrap 95% intervals. Writes bench/_work/seg_crop_stage-<W>x<H>.json.
"""
import argparse, json, time
from pathlib import Path
import numpy as np, pandas as pd, torch, torch.nn.functional as F
from PIL import Image
from melanoma.images import open_image
from melanoma.segment import (SegModel, _fit_member, _hold_out, _pick_split, clean_mask, jaccard, jaccard_summary, lesion_box,
                              load_seg_model, predict_masks, read_mask, read_seg_dataset)

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / 'bench' / '_work'
ZOOM = 0.8


def crop_pair(path: str, mask_path: str, margin: float, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    "The image and its annotated mask cut to the lesion's box grown by `margin` (4:3) and resized to `hw`."
    h, w = hw
    im, m = open_image(path), read_mask(mask_path, strict=False)
    if m.shape != im.size[::-1]: m = np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize(im.size, Image.Resampling.NEAREST)) > 127
    box = lesion_box(m, im.size, margin, w / h) or (0, 0, *im.size)
    img = np.asarray(im.crop(box).resize((w, h), Image.Resampling.BILINEAR, reducing_gap=2.0))
    mk = np.asarray(Image.fromarray(m.astype(np.uint8) * 255).crop(box).resize((w, h), Image.Resampling.BILINEAR)) > 127
    return img, mk.astype(np.uint8)


@torch.inference_mode()
def variants(first: SegModel, crop: SegModel, paths: list) -> dict[str, list[np.ndarray]]:
    "Each variant's mask of every image (see the module's docstring)."
    h, w = first.size
    out = {k: [] for k in ('zoom 0.8', 'crop net, averaged', 'crop net alone in the box', 'both, averaged')}
    for p in paths:
        im = open_image(p)
        W, H = im.size
        pr = F.interpolate(first.probabilities(first.preprocess(im)[None]), size=(H, W), mode='bilinear', align_corners=False)[0, 0]
        box = lesion_box(clean_mask(pr.numpy() > first.threshold), im.size, ZOOM, w / h)
        if box is None:
            for k in out: out[k].append(clean_mask(pr.numpy() > first.threshold))
            continue
        l, t, r, b = box
        x = first.preprocess(im.crop(box))[None]
        up = lambda q: F.interpolate(q, size=(b - t, r - l), mode='bilinear', align_corners=False)[0, 0]
        qz, qc, inside = up(first.probabilities(x)), up(crop.probabilities(crop.preprocess(im.crop(box))[None])), pr[t:b, l:r]
        for k, v in (('zoom 0.8', (inside + qz) / 2), ('crop net, averaged', (inside + qc) / 2),
                     ('crop net alone in the box', qc), ('both, averaged', (inside + qz + qc) / 3)):
            q = pr.clone(); q[t:b, l:r] = v
            out[k].append(clean_mask(q.numpy() > first.threshold))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('model', help='a one-network `melanoma seg train --members 1 --hold-out F` folder: the first pass')
    ap.add_argument('--two', default='', help='a three-member model of the same split: its first two members, zoom 0.8, for the same compute')
    ap.add_argument('--shared', default=str(ROOT.parent / 'shared' / 'data'))
    ap.add_argument('--epochs', type=int, default=7)
    ap.add_argument('--size', default='', help='HEIGHTxWIDTH of the crop network (default: the first model\'s, 96x128); 4:3')
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.time()
    first = load_seg_model(a.model)
    ta = first.config['train_args']
    hw = tuple(int(v) for v in a.size.split('x')) if a.size else tuple(first.size)
    df = read_seg_dataset(Path(a.shared) / 'isic-2017-seg-mini')
    tr, va, how = _pick_split(df, 0.15, ta['seed'])
    tr, ho = _hold_out(tr, ta['hold_out'], ta['seed'])
    rng = np.random.default_rng(ta['seed'])
    rows = [(i, float(rng.uniform(0.4, 1.2))) for i in tr] + [(i, ZOOM) for i in va]
    pairs = [crop_pair(df.path[i], df.mask_path[i], mg, hw) for i, mg in rows]
    X = torch.from_numpy(np.stack([p[0] for p in pairs])).permute(0, 3, 1, 2).contiguous()
    Y = torch.from_numpy(np.stack([p[1] for p in pairs]))
    print(f'{len(tr)} training crops, {len(va)} validation crops ({how}) in {time.time() - t0:.0f} s', flush=True)
    net, curve = _fit_member(X, Y, len(tr), hw, first.config['arch'], first.config.get('decoder', 'lite'), a.epochs, ta['bs'], ta['lr'],
                             ta['loss'], ta['seed'], 'crop network', t0)
    train_min = (time.time() - t0) / 60
    crop = SegModel([net.eval()], {**first.config, 'size': list(hw), 'zoom': 0.})
    scores = pd.read_csv(Path(a.model) / 'valid_scores.csv')
    d = df.set_index('image_id').loc[scores.image_id]
    sets = scores.set.to_numpy()
    truth = [read_mask(p, strict=False) for p in d.mask_path]
    masks = variants(first, crop, list(d.path))
    if a.two:
        m3 = load_seg_model(a.two)
        masks['two whole-image networks, zoom 0.8 (--two)'] = predict_masks(SegModel(m3.nets[:2], {**m3.config, 'members': 2}), list(d.path),
                                                                          zoom=ZOOM, progress=False)
    res = {}
    for k, ms in masks.items():
        js = np.array([jaccard(m, g) for m, g in zip(ms, truth)])
        res[k] = {s: jaccard_summary(js[sets == s].tolist()) for s in ('valid', 'hold_out')}
        v, h = res[k]['valid'], res[k]['hold_out']
        print(f"{k:<45} official validation ({v['n']}) {v['jaccard']:.4f} {v['jaccard_ci']} / thresholded {v['thresholded_jaccard']:.4f}; "
              f"held-out fold ({h['n']}) {h['jaccard']:.4f} {h['jaccard_ci']} / {h['thresholded_jaccard']:.4f}", flush=True)
    WORK.mkdir(parents=True, exist_ok=True)
    f = WORK / f'seg_crop_stage-{hw[1]}x{hw[0]}.json'
    f.write_text(json.dumps(dict(model=a.model, two=a.two, size=list(hw), train_minutes=round(train_min, 1), curve=curve,
                                                             date=time.strftime('%Y-%m-%d %H:%M'), variants=res), indent=2))
    print(f'crop network trained in {train_min:.1f} min; -> {f}')


if __name__ == '__main__': main()
