"""Training speed of `melanoma.train`, in one run:

1. fastai overhead: the fastai Learner (`fold_learner`, no augmentation) vs a plain PyTorch loop with the same
   network, cached images, batch size, optimiser (PyTorch's fused AdamW, as `melanoma.learner.adamw`) and precision (the
   default: channels-last fp32 on the CPU, mixed precision on a GPU); ratio of images/s (target >= 0.95); also the
   same Learner with fastai's own Adam (the default before 2026-12-01);
2. the whole default pipeline (batch augmentation included) vs the same in fp32 NCHW, and in channels-last + bf16.

    python bench/train_speed.py [--reps 3] [--n 256] [--size 128] [--bs 32]

Synthetic data (melanoma.sample) in bench/_work/. Medians over `--reps` epochs, alternating the contenders.
"""
import argparse, statistics, time
from pathlib import Path
import numpy as np, torch

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / 'bench' / '_work'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--n', type=int, default=256)
    ap.add_argument('--size', type=int, default=128)
    ap.add_argument('--bs', type=int, default=32)
    ap.add_argument('--arch', default='tf_efficientnet_lite0')
    a = ap.parse_args()
    from melanoma.sample import make_sample_data
    from melanoma.model import create_model
    from melanoma.core import default_device
    from melanoma.train import train_table
    from melanoma.store import image_cache
    from melanoma.learner import fold_learner, precision_cbs, ChannelsLastInput, PlainInput
    from fastai.callback.fp16 import MixedPrecision
    data = make_sample_data(WORK / f'speed-sample-{a.n}', n_train=a.n, n_test=1, size=256, dicom=0, progress=False)
    df = train_table(data, n_folds=2)
    x, ok = image_cache(df, a.size, WORK / f'speed-cache-{a.n}-{a.size}')
    idx = np.arange(len(df))
    dev = default_device()
    cbs = precision_cbs('auto', dev)
    amp = next((c for c in cbs if isinstance(c, MixedPrecision)), None)
    dtype = None if amp is None else (torch.bfloat16 if str(amp.amp_mode).lower().endswith('bf16') else torch.float16)
    print(f'device {dev}, precision auto -> {[type(c).__name__ for c in cbs]}, {len(df)} images at {a.size}px, bs {a.bs}', flush=True)

    def fastai_epoch(precision='auto', aug='none', opt=None, nchw=False):
        torch.manual_seed(0)
        learn = fold_learner(x, df, idx, idx[:a.bs], create_model(a.arch), bs=a.bs, aug=aug, precision=precision, device=dev)
        if nchw: learn.remove_cbs([c for c in learn.cbs if isinstance(c, ChannelsLastInput)]); learn.add_cb(PlainInput())
        if opt == 'fastai':
            from fastai.optimizer import Adam
            learn.opt_func = Adam
        with learn.no_bar(), learn.no_logging():
            learn.fit(1, 1e-4)  # warm-up epoch (first-call allocations, oneDNN kernel selection)
            learn.fit(1, 1e-4)
        return learn.throughput.n / learn.throughput.t

    def torch_epoch():
        torch.manual_seed(0)
        net = create_model(a.arch).to(dev).to(memory_format=torch.channels_last).train()
        opt = torch.optim.AdamW(net.parameters(), 1e-4, eps=1e-5, weight_decay=1e-2, fused=True)  # as melanoma.learner.adamw
        mean = torch.tensor(net.arch_config['mean'], device=dev)[:, None, None]
        std = torch.tensor(net.arch_config['std'], device=dev)[:, None, None]
        y = torch.tensor(df.target.to_numpy(), dtype=torch.float32)[:, None]
        scaler = torch.amp.GradScaler(dev.type, enabled=dtype == torch.float16)
        def epoch():
            n, perm = 0, torch.randperm(len(x))
            for i in range(0, len(x) - a.bs + 1, a.bs):
                b = perm[i:i + a.bs]
                xb = ((x[b].to(dev).float() / 255 - mean) / std).contiguous(memory_format=torch.channels_last)
                with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                    out = net(xb)
                loss = torch.nn.functional.binary_cross_entropy_with_logits(out.float(), y[b].to(dev))
                opt.zero_grad(); scaler.scale(loss).backward(); scaler.step(opt); scaler.update()
                n += len(b)
            if dev.type == 'cuda': torch.cuda.synchronize()
            return n
        epoch()  # warm-up
        t = time.perf_counter(); n = epoch()
        return n / (time.perf_counter() - t)

    res = {k: [] for k in ('fastai', 'fastai_own_adam', 'torch', 'pipeline_default', 'pipeline_bf16', 'pipeline_fp32')}
    for r in range(a.reps):
        if r % 2: res['torch'].append(torch_epoch())  # alternate which contender runs first (allocator and cache state)
        res['fastai'].append(fastai_epoch())
        res['fastai_own_adam'].append(fastai_epoch(opt='fastai'))
        if not r % 2: res['torch'].append(torch_epoch())
        res['pipeline_default'].append(fastai_epoch('auto', 'default'))
        res['pipeline_bf16'].append(fastai_epoch('bf16', 'default'))
        res['pipeline_fp32'].append(fastai_epoch('fp32', 'default', nchw=True))
        print(f'rep {r}: ' + ', '.join(f'{k} {v[-1]:.1f}' for k, v in res.items()), flush=True)
    med = {k: statistics.median(v) for k, v in res.items()}
    print(f"\nmedian images/s over {a.reps} epochs (train step only, no augmentation): fastai {med['fastai']:.1f}, "
          f"plain PyTorch {med['torch']:.1f}; ratio fastai/torch = {med['fastai'] / med['torch']:.3f} "
          f"(with fastai's own Adam instead of torch's AdamW: {med['fastai_own_adam'] / med['torch']:.3f})")
    print(f"median images/s, whole pipeline with augmentation: default {med['pipeline_default']:.1f}, fp32 NCHW "
          f"{med['pipeline_fp32']:.1f}; speed-up = {med['pipeline_default'] / med['pipeline_fp32']:.2f}x "
          f"(channels-last + bf16 autocast: {med['pipeline_bf16']:.1f}, {med['pipeline_bf16'] / med['pipeline_fp32']:.2f}x)")


if __name__ == '__main__':
    main()
