"""Issue 25's classifier levers that act on the folds' fits alone, measured paired: the default `melanoma train` recipe
with one fastai callback added to every fold's fit, its stage 1 copied from a default run of the same seed.

    OMP_NUM_THREADS=1 python bench/train_fold_lever.py --lever ema --seed 7 --folds 0,1,2 --stage1-from bench/_work/models/q-default-s7
    python bench/train_quality.py --skip-default --name lever-ema --seeds 7 --references "" --heldout-tta 1 [--lesion SEG]

Levers (`--lever NAME[:VALUE]`):
- `ema[:decay]`: an exponential moving average of the fold network's weights over its steps (timm's `ModelEmaV3`, with
  its warm-up; decay 0.995), the average being what the fold scores and saves;
- `mixup[:alpha]`: fastai's `MixUp` (images, metadata and targets blended; alpha 0.4);
- `cutmix[:alpha]`: fastai's `CutMix` (a box of another image pasted in, targets blended by area; alpha 1);
- `focal[:gamma]`: the folds fit the sigmoid focal loss (`--loss focal`'s, gamma 2) instead of BCE;
- `smooth[:eps]`: label smoothing, training targets eps/2 and 1 - eps/2 (eps 0.1).
The first command trains `bench/_work/models/lever-<lever>-s<seed>` through `melanoma.train.train`. On one torch
thread a fold's training is bit-for-bit the same from the same stage-1 file (the per-epoch metrics of the default run
come out identical), so the contender and the default run differ in the lever alone. The second command scores it on
both populations as the default's runs are scored (2020 out of fold, the 2019 held-out fold), with and without the
lesion view. Not in the package: a bench of levers, each kept only if it wins on both populations.
"""
import argparse, os, shutil
import torch
from pathlib import Path
from fastai.callback.core import Callback
from fastai.callback.mixup import MixUp, CutMix
from timm.utils import ModelEmaV3
from melanoma.learner import BinaryFocalLoss
from melanoma.train import TrainConfig, train  # MELANOMA_CACHE is read when a run starts (melanoma.store), so main() can set it after this import

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / 'bench' / '_work'


class WeightEMA(Callback):
    "An exponential moving average of the weights (and BatchNorm statistics) over the fit's steps, put into the model when the fit ends."
    order = 90
    def __init__(self, decay: float = 0.995, power: float = 0.75): self.decay, self.power = decay, power
    def before_fit(self):
        self.ema = ModelEmaV3(self.learn.model, decay=self.decay, use_warmup=True, warmup_power=self.power)
        self.step = 0
    def after_step(self):
        self.step += 1
        self.ema.update(self.learn.model, step=self.step)
    def after_fit(self):
        if self.step: self.learn.model.load_state_dict(self.ema.module.state_dict())
        print(f'WeightEMA: {self.step} steps averaged (last decay {self.ema.get_decay(self.step):.4f})', flush=True)


class _FirstInput:
    "fastai's mixing callbacks read `self.x`, which is the tuple (images, metadata) when the network takes metadata: the images."
    @property
    def x(self): return self.learn.xb[0]

class MixUpImages(_FirstInput, MixUp):
    "`MixUp` of the images and their metadata, each blended with its own shape of the same weights (fastai's shapes them all as the images)."
    def before_batch(self):
        lam = self.distrib.sample((self.y.size(0),)).squeeze().to(self.x.device)
        self.lam = torch.stack([lam, 1 - lam], 1).max(1)[0]
        shuffle = torch.randperm(self.y.size(0)).to(self.x.device)
        mix = lambda a, b: torch.lerp(a[shuffle], b, self.lam.view(-1, *[1] * (b.ndim - 1)).to(b.dtype))
        self.yb1 = tuple(y[shuffle] for y in self.yb)
        self.learn.xb = tuple(mix(x, x) for x in self.xb)
        if not self.stack_y: self.learn.yb = tuple(mix(y, y) for y in self.yb)
class CutMixImages(_FirstInput, CutMix): "`CutMix` of the images (a box of another image pasted in); the metadata stays the image's own."


class FocalLoss(Callback):
    "The fold's loss is the package's `BinaryFocalLoss` (what `--loss focal` gives; here stage 1 keeps the default BCE)."
    def __init__(self, gamma: float = 2.): self.gamma = gamma
    def before_fit(self): self.old, self.learn.loss_func = self.learn.loss_func, BinaryFocalLoss(self.gamma)
    def after_fit(self): self.learn.loss_func = self.old


class LabelSmoothing(Callback):
    "Training targets pulled towards 1/2 by `eps` (a melanoma 1 - eps/2, any other eps/2); validation keeps the true ones."
    def __init__(self, eps: float = 0.1): self.eps = eps
    def before_batch(self):
        if self.training: self.learn.yb = tuple(y * (1 - self.eps) + self.eps / 2 for y in self.yb)


LEVERS = {'ema': (WeightEMA, 0.995), 'mixup': (MixUpImages, 0.4), 'cutmix': (CutMixImages, 1.0), 'focal': (FocalLoss, 2.),
          'smooth': (LabelSmoothing, 0.1)}


def lever_callback(spec: str) -> Callback:
    "`name[:value]` -> a fresh callback of that lever."
    name, _, v = spec.partition(':')
    cls, default = LEVERS[name]
    return cls(float(v) if v else default)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--lever', required=True, help='ema[:decay], mixup[:alpha], cutmix[:alpha], focal[:gamma] or smooth[:eps]')
    ap.add_argument('--seed', type=int, default=42)
    ap.add_argument('--folds', default='all')
    ap.add_argument('--name', default=None, help='run name prefix (default lever-<lever>)')
    ap.add_argument('--stage1-from', default='', help="a default run whose stage-1 network (`pretrain.safetensors`) this run reuses")
    ap.add_argument('--shared', default=str(ROOT.parent / 'shared' / 'data'))
    ap.add_argument('--debug', action='store_true', help="`melanoma train --debug`: a smoke test in seconds")
    a = ap.parse_args()
    os.environ.setdefault('MELANOMA_CACHE', str(WORK / 'cache'))
    models, run = WORK / 'models', f'{a.name or "lever-" + a.lever.replace(":", "")}-s{a.seed}'
    if a.stage1_from and not (models / run / 'pretrain.safetensors').is_file():
        (models / run).mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(a.stage1_from) / 'pretrain.safetensors', models / run / 'pretrain.safetensors')
    cbs = lambda stage, fold, first_epoch, start: [lever_callback(a.lever)] if fold >= 0 else []  # the folds' fits only
    train(TrainConfig(data=Path(a.shared) / 'siim-isic-2020-mini', extra=[str(Path(a.shared) / 'isic-2019-mini')], seed=a.seed,
                      fold=a.folds, name=run, models_dir=models, cbs=[cbs], debug=a.debug))


if __name__ == '__main__':
    main()
