"""How many 12-hour Kaggle sessions a recipe needs on 2xT4: the README's sizing table, computed from measured per-image costs.

For each (arch, size) of `--configs` (default: EfficientNet-Lite0, B0 and B3 at 384 and 512 px) this measures the
forward FLOPs per image of the network `melanoma train` builds (torch's FlopCounterMode; with `--cpu-time`, also the
seconds per image of a training step on this CPU: forward, backward, fused AdamW, bs `--bs`, channels-last fp32). Kaggle's
T4s are not measured here: their rate comes from an anchor, `--anchor ARCH:PX:IMAGES_PER_S_PER_T4` (default B3 at 512 px,
55 images/s per T4, the issue's figure), scaled to the other configs by the FLOP ratio (`--scale flops`, the default) or
the CPU step ratio (`--scale cpu`), and capped at `--decode-cap` images/s (what Kaggle's 4 CPU cores decode at 512 px,
bench/README.md's data-path section). With a GPU lent, `bash bench/gpu.sh` measures the rate itself: pass its figure as
the anchor. Hours = training images of the recipe / rate, for both T4s together (2 x rate: data-parallel scaling
perfectly) and for one T4's worth (data parallelism gaining nothing); sessions = hours / (`--session-hours` less
`--setup-hours` per session), rounded up. Work (from the README, `--epochs 8` default recipe,
out-of-fold TTA counted as a third of a training image per view): 2.0 million images with the 2019 data (stage 1 + 5 folds
with replay), 1.15 million with the 2020 data alone, 2.9 million for the README's Kaggle example (`--epochs 12`).

    python bench/kaggle_sessions.py [--configs tf_efficientnet_lite0:384,...] [--bs 4] [--threads 1] [--anchor tf_efficientnet_b3:512:55]
"""
import argparse, json, math, os, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORK = {'2020 + 2019': 2.0e6, '2020 only': 1.15e6, '2020 + 2019, --epochs 12': 2.9e6}  # training images (README, sizing)


def step_cost(arch: str, px: int, bs: int, reps: int, cpu_time: bool = False) -> dict:
    "Forward GFLOPs per image and (`cpu_time`) seconds per image of a training step (median of `reps` after 2 warm-ups)."
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from melanoma.model import create_model
    net = create_model(arch, pretrained=False).train().to(memory_format=torch.channels_last)
    x1 = torch.randn(1, 3, px, px)
    with torch.no_grad(), FlopCounterMode(display=False) as fc: net.eval()(x1)
    out = dict(gflops=fc.get_total_flops() / 1e9, s_per_image=None)
    if not cpu_time: return out
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, fused=True)
    x = torch.randn(bs, 3, px, px).to(memory_format=torch.channels_last)
    y = torch.zeros(bs, 1)
    times = []
    for i in range(reps + 2):
        t = time.perf_counter()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x), y)
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        if i >= 2: times.append((time.perf_counter() - t) / bs)
    return {**out, 's_per_image': sorted(times)[len(times) // 2]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--configs', default='tf_efficientnet_lite0:384,tf_efficientnet_lite0:512,tf_efficientnet_b0:384,'
                                         'tf_efficientnet_b0:512,tf_efficientnet_b3:384,tf_efficientnet_b3:512')
    ap.add_argument('--bs', type=int, default=4)
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--anchor', default='tf_efficientnet_b3:512:55', help='ARCH:PX:images/s per T4')
    ap.add_argument('--scale', choices=['cpu', 'flops'], default='flops')
    ap.add_argument('--cpu-time', action='store_true', help='also time a training step on this CPU (noisy on a shared machine)')
    ap.add_argument('--decode-cap', type=float, default=400, help='images/s Kaggle\'s CPUs decode for training (both GPUs together)')
    ap.add_argument('--session-hours', type=float, default=11.5)
    ap.add_argument('--setup-hours', type=float, default=0.25, help='per session: install, unbatch, loading, the unused tail of the last epoch')
    a = ap.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    configs = [(c.rsplit(':', 1)[0], int(c.rsplit(':', 1)[1])) for c in a.configs.split(',')]
    aa, apx, arate = a.anchor.split(':')
    if (aa, int(apx)) not in configs: configs.append((aa, int(apx)))
    res = {}
    for arch, px in configs:
        res[(arch, px)] = step_cost(arch, px, a.bs, a.reps, a.cpu_time or a.scale == 'cpu')
        r = res[(arch, px)]
        print(f'{arch} {px}px: {r["gflops"]:.2f} forward GFLOPs per image'
              + (f', {r["s_per_image"] * 1e3:.0f} ms per training image on this CPU ({a.threads} thread)' if r['s_per_image'] else ''), flush=True)
    key = 's_per_image' if a.scale == 'cpu' else 'gflops'
    ref = res[(aa, int(apx))][key]
    rows, usable = [], a.session_hours - a.setup_hours
    fmt = lambda h: f'{h[0]:.1f} / {h[1]:.1f}'
    print(f'\n| network | px | forward GFLOPs per image (measured) | images/s per T4 (computed) | '
          + ' | '.join(f'hours, {w}: 2xT4 / one T4' for w in WORK) + ' | ' + ' | '.join(f'12-hour sessions, {w}' for w in WORK) + ' |')
    print('| --- ' * (4 + 2 * len(WORK)) + '|')
    for arch, px in configs:
        r = res[(arch, px)]
        rate = float(arate) * ref / r[key]  # per T4
        pair, one = min(2 * rate, a.decode_cap), min(rate, a.decode_cap)
        hours = {w: (n / pair / 3600, n / one / 3600) for w, n in WORK.items()}
        sessions = {w: (math.ceil(h[0] / usable), math.ceil(h[1] / usable)) for w, h in hours.items()}
        rows.append(dict(arch=arch, px=px, **r, images_per_s_per_t4=rate, hours=hours, sessions=sessions))
        print(f'| {arch.replace("tf_efficientnet_", "")} | {px} | {r["gflops"]:.2f} | {rate:.0f} | '
              + ' | '.join(fmt(h) for h in hours.values()) + ' | ' + ' | '.join(f'{s[0]} / {s[1]}' for s in sessions.values()) + ' |')
    out = ROOT / 'bench' / '_work' / 'kaggle_sessions.json'
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(args=vars(a), work=WORK, rows=rows, date=time.strftime('%Y-%m-%d %H:%M'),
                                   cpu=os.cpu_count(), torch=torch.__version__), indent=1))
    print(f'\nwritten: {out}')


if __name__ == '__main__': main()
