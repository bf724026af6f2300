"""Issue 25's segmentation levers left untried on this CPU: progressive resizing, a full-resolution decoder stage, recipe knobs, ensembles.

    OMP_NUM_THREADS=1 python bench/seg_lever.py --lever none|progressive[:E1:E2]|fullres|enclr[:D]|zoomaug[:MIN:MAX]|arch:NAME|tversky[:A:B] [--seed 42] [--save]
    python bench/seg_lever.py --ensemble bench/_work/seg_lever-models/none-s42,bench/_work/seg_lever-models/arch-tf_efficientnet_lite1-s42

One network of the default recipe (`melanoma.segment._fit_member`: U-Net over the offline EfficientNet-Lite0, 128x96,
7 epochs one-cycle, Dice + BCE, bs 16, the default augmentation) on the split of `seg train --hold-out 0.2 --members 1`
(`seg1h` in bench/README.md: 1,600 training images; the 150 official validation images and the held-out fifth of the
training images are scored), with one change:

- `none`: the recipe as it is, the reference (run it beside a lever: on one torch thread a run repeats exactly);
- `progressive:E1:E2` (default 5:1): E1 one-cycle epochs at 128x96, then E2 more at 192x144 (one cycle at a third of
  the learning rate) from those weights; the network predicts at 192x144. A 192x144 epoch costs ~2.3 of a 128x96 one, so
  5:1 is ~7.3 of the recipe's 7 epoch-units;
- `fullres`: a fifth decoder stage at the input's resolution, the normalised image itself as its skip (the recipe's
  logits come out at half resolution and are upsampled bilinearly), 16 channels;
- `enclr[:D]` (default 1): the encoder's learning rate the decoder's divided by D instead of the recipe's 5;
- `zoomaug[:MIN:MAX]` (default 0.75:1.3): fastai's `aug_transforms` zoom drawn from MIN..MAX instead of the recipe's
  1..1.15, so lesions are seen smaller as well as larger than they are;
- `arch:NAME`: another encoder (e.g. `tf_efficientnet_lite1`, offline weights);
- `tversky[:A:B]` (default 0.3:0.7): BCE + the Tversky loss in place of Dice, false negatives weighed B and false
  positives A (Dice weighs both 0.5), a network that leans towards including the lesion's faint border.

`--seed` is the training seed; the held-out fifth is always `seg train --hold-out 0.2 --seed 42`'s, so networks of
other seeds score on the same images, and `--save` keeps each network (bench/_work/seg_lever-models/) for
`--ensemble DIR,DIR,...`, which scores saved networks averaged (the members of `seg train`, of any encoders).

Both populations, each image at its own size, through `melanoma.segment.predict_masks` with one pass and with the
default second pass on the lesion's box (`zoom 0.8`): mean Jaccard with a bootstrap 95% interval and thresholded
Jaccard. Writes bench/_work/seg_lever-<lever>-s<seed>.json.
"""
import argparse, json, time
from pathlib import Path
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
import fastai.vision.augment as augment
from fastai.torch_core import set_seed
import melanoma.segment as seg
from melanoma.segment import (LiteUnet, SegModel, _fit_member, _fit_net, _hold_out, _pick_split, _seg_arrays, jaccard,
                              jaccard_summary, load_seg_model, predict_masks, read_mask, read_seg_dataset, save_seg_model)

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / 'bench' / '_work'
ARCH, LR, BS, HOLD_OUT, SPLIT_SEED = 'tf_efficientnet_lite0', 3e-3, 16, 0.2, 42


class _FineHead(nn.Module):
    "The extra stage: the decoder's last features upsampled to the input's size, the normalised input `x` beside them, 3x3 conv, 1 logit."
    def __init__(self, c: int, fine: int = 16):
        super().__init__()
        self.fine = nn.Sequential(nn.Conv2d(c + 3, fine, 3, padding=1, bias=False), nn.BatchNorm2d(fine), nn.ReLU(inplace=True))
        self.out, self.x = nn.Conv2d(fine, 1, 1), None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(h, size=self.x.shape[-2:], mode='bilinear', align_corners=False)
        return self.out(self.fine(torch.cat([h, self.x], 1)))


class FullResUnet(LiteUnet):
    "LiteUnet whose head is `_FineHead`: one more decoder stage at the input's resolution, the normalised image as its skip."
    def __init__(self, body: nn.Module, fine: int = 16):
        super().__init__(body)
        self.head = _FineHead(self.head.in_channels, fine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.head.x = x  # LiteUnet's forward ends in `head`, then a resize that is a no-op at the input's size
        try: return super().forward(x)
        finally: self.head.x = None


def _fullres_model(arch='tf_efficientnet_lite0', decoder='lite', size=(96, 128), pretrained=True):
    "`melanoma.segment.create_seg_model` with `FullResUnet` in place of `LiteUnet` (the same encoder and config)."
    net = FullResUnet(seg.create_model(arch, pretrained=pretrained).body)
    net.seg_config = _create(arch, decoder, size, pretrained).seg_config
    return net


_create, _aug = seg.create_seg_model, augment.aug_transforms


def report(model: SegModel, df, va, ho, res: dict, label: str, file: str) -> None:
    "Score `model` on both populations (one pass and zoom 0.8), print a line each, and write `res` with the scores to bench/_work/`file`."
    for name, idx in (('valid', va), ('hold_out', ho)):
        d = df.iloc[idx]
        truth = [read_mask(m, strict=False) for m in d.mask_path]
        for zoom in (0., 0.8):
            js = [jaccard(p, g) for p, g in zip(predict_masks(model, list(d.path), zoom=zoom, progress=False), truth)]
            s = res[f'{name} zoom {zoom}'] = jaccard_summary(js)
            print(f"{label} {name} ({s['n']}) zoom {zoom}: Jaccard {s['jaccard']:.4f} {s['jaccard_ci']} / thresholded "
                  f"{s['thresholded_jaccard']:.4f}", flush=True)
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / file).write_text(json.dumps(res, indent=2))
    print(f'-> {WORK / file}', flush=True)


class TverskyBCELoss(seg.BCEPlusLoss):
    "BCE with logits + (1 - soft Tversky index per image): false negatives weigh `beta`, false positives `alpha` (Dice: 0.5 / 0.5)."
    def __init__(self, alpha: float = 0.3, beta: float = 0.7): super().__init__(1.0); self.alpha, self.beta = alpha, beta
    def term(self, logits: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(logits)
        tp, fp, fn = (p * t).sum(1), (p * (1 - t)).sum(1), ((1 - p) * t).sum(1)
        return (1 - (tp + 1) / (tp + self.alpha * fp + self.beta * fn + 1)).mean()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--lever', default='none')
    ap.add_argument('--seed', type=int, default=42)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--save', action='store_true', help='also save the network to bench/_work/seg_lever-models/<lever>-s<seed>')
    ap.add_argument('--ensemble', default='', help='score saved networks (comma-separated folders) averaged, instead of training')
    ap.add_argument('--shared', default=str(ROOT.parent / 'shared' / 'data'))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.time()
    kind, *opt = a.lever.split(':')
    if kind not in ('none', 'progressive', 'fullres', 'enclr', 'zoomaug', 'arch', 'tversky'): raise SystemExit(f'unknown lever {a.lever!r}')
    df = read_seg_dataset(Path(a.shared) / 'isic-2017-seg-mini')
    tr, va, how = _pick_split(df, 0.15, SPLIT_SEED)
    tr, ho = _hold_out(tr, HOLD_OUT, SPLIT_SEED)  # the same held-out fifth whatever the training seed, as `seg train`'s members
    if a.ensemble:
        ms = [load_seg_model(d) for d in a.ensemble.split(',')]
        model = SegModel([n for m in ms for n in m.nets], {**ms[0].config, 'zoom': 0.})
        return report(model, df, va, ho, dict(ensemble=a.ensemble.split(','), date=time.strftime('%Y-%m-%d %H:%M')), 'ensemble',
                      f"seg_lever-ensemble-{'+'.join(Path(d).name for d in a.ensemble.split(','))}.json")
    rows = df.iloc[np.concatenate([tr, va])].reset_index(drop=True)
    hw = (96, 128)
    X, Y = _seg_arrays(rows, hw)
    e1, e2 = (int(opt[0]), int(opt[1])) if kind == 'progressive' and opt else (5, 1)
    intro = f'seg_lever {a.lever}: {len(tr)} training, {len(va)} validation images ({how})'
    arch, loss = (opt[0] if kind == 'arch' else ARCH), ('tversky' if kind == 'tversky' else 'dice')
    if kind == 'tversky': seg.SEG_LOSSES['tversky'] = lambda: TverskyBCELoss(*(float(v) for v in opt))
    if kind == 'fullres': seg.create_seg_model = _fullres_model
    if kind == 'zoomaug':  # over the recipe's own max_zoom=1.15, which a functools.partial would not override
        zooms = dict(min_zoom=float(opt[0]), max_zoom=float(opt[1])) if opt else dict(min_zoom=0.75, max_zoom=1.3)
        augment.aug_transforms = lambda *args, **kw: _aug(*args, **{**kw, **zooms})
    if kind == 'enclr':  # `_fit_member`'s steps in the same order, the encoder's learning rate divided by `opt[0]` (default 1) instead of 5
        print(intro, flush=True); set_seed(a.seed, reproducible=False)
        net, curve = _fit_net(seg.create_seg_model(ARCH, 'lite', hw, pretrained=True), X, Y, len(tr), 7, BS, LR, enc_div=float(opt[0]) if opt else 1.)
    else: net, curve = _fit_member(X, Y, len(tr), hw, arch, 'lite', e1 if kind == 'progressive' else 7, BS, LR, loss, a.seed, intro, t0)
    seg.create_seg_model, augment.aug_transforms = _create, _aug
    cfg = dict(net.seg_config)
    if kind == 'progressive':
        hw = (144, 192)
        X, Y = _seg_arrays(rows, hw)
        set_seed(a.seed + 500, reproducible=False)
        net, c2 = _fit_net(net, X, Y, len(tr), e2, BS, LR / 3)
        curve = curve + [dict(stage=2, **v) for v in c2]
        cfg['size'] = list(hw)
    train_min = (time.time() - t0) / 60
    if a.save: save_seg_model(net, WORK / 'seg_lever-models' / f"{a.lever.replace(':', '-')}-s{a.seed}", {**cfg, 'zoom': 0.8})
    res = dict(lever=a.lever, seed=a.seed, train_minutes=round(train_min, 1), curve=curve, date=time.strftime('%Y-%m-%d %H:%M'))
    report(SegModel([net.eval()], {**cfg, 'zoom': 0.}), df, va, ho, res, f'{a.lever} s{a.seed}', f"seg_lever-{a.lever.replace(':', '-')}-s{a.seed}.json")
    print(f'trained in {train_min:.1f} min', flush=True)


if __name__ == '__main__': main()
