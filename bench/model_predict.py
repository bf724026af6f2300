"""CPU throughput of `MelanomaModel.predict` against a plain PyTorch loop over the same images and network.

    .venv/bin/python bench/model_predict.py [--n 64] [--size 128] [--arch tf_efficientnet_lite0] [--repeats 3]

Saves one fold of `arch` (offline ImageNet weights, untrained head: speed does not depend on the weights) with
`save_model` under bench/_work/model_predict/, loads it with `load_model(device='cpu')`, and times, in the same run and
on the same files (the first `n` real 512 px JPEGs of ../shared/data/siim-isic-2020-mini when present, else generated
512 px JPEGs):
  * baseline: per image, `PIL.Image.open` + convert + resize + normalise + `net(x[None])` under `torch.no_grad`
    (batch of 1, default memory format): what one writes by hand;
  * `predict(paths, bs=32)`: `open_image` draft decoding, fastai `Resize`, batches of 32, channels_last, inference_mode;
  * `predict(paths, tta=8)`: the eight dihedral views.
Prints median seconds and images/s over `repeats` and the ratio to the baseline. Also checks that the baseline and
`predict` agree (max |dp|; they differ slightly because `predict` decodes JPEGs in draft mode as training does)."""
import argparse, os, statistics, sys, time
from pathlib import Path
import numpy as np, torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from melanoma.model import create_model, save_model, load_model

WORK = REPO / 'bench' / '_work' / 'model_predict'
SHARED = Path(os.environ.get('MELANOMA_SHARED_DATA', REPO.parent / 'shared' / 'data')) / 'siim-isic-2020-mini' / 'jpeg' / 'train'


def images(n: int) -> list[Path]:
    if SHARED.exists(): return sorted(SHARED.glob('*.jpg'))[:n]
    out = WORK / 'generated'; out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = out / f'img{i:03d}.jpg'
        if not p.exists():
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).resize((512, 512), Image.BICUBIC).save(p, quality=90)
        paths.append(p)
    return paths


def med(fn, repeats):
    ts, res = [], None
    for _ in range(repeats):
        t = time.perf_counter(); res = fn(); ts.append(time.perf_counter() - t)
    return statistics.median(ts), res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--n', type=int, default=64); ap.add_argument('--size', type=int, default=128)
    ap.add_argument('--arch', default='tf_efficientnet_lite0'); ap.add_argument('--repeats', type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    paths = images(a.n)
    save_model(create_model(a.arch).eval(), WORK / 'model', {'size': a.size})
    m = load_model(WORK / 'model', device='cpu')
    net = create_model(a.arch, pretrained=False).eval()
    net.load_state_dict(m.nets[0].state_dict())
    mean, std = m.mean, m.std

    def baseline():
        out = []
        with torch.no_grad():
            for p in paths:
                img = Image.open(p).convert('RGB').resize((a.size, a.size), Image.BILINEAR)
                x = (torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255 - mean) / std
                out.append(torch.sigmoid(net(x[None])[0, 0]).item())
        return np.array(out)

    m.predict(paths[:2], progress=False)  # warm up imports / allocator
    rows = [('baseline: PIL + net(x[None]) per image', *med(baseline, a.repeats)),
            ('predict(bs=32)', *med(lambda: m.predict(paths, bs=32, progress=False), a.repeats)),
            ('predict(bs=32, tta=8)', *med(lambda: m.predict(paths, bs=32, tta=8, progress=False), a.repeats))]
    base = rows[0][1]
    print(f'{a.arch} @ {a.size}px, {len(paths)} images ({"real SIIM 512px JPEGs" if SHARED.exists() else "generated 512px JPEGs"}), '
          f'{torch.get_num_threads()} threads, medians of {a.repeats}')
    print(f'{"step":45s} {"median s":>9s} {"img/s":>8s} {"vs baseline":>12s}')
    for name, t, _ in rows: print(f'{name:45s} {t:9.3f} {len(paths) / t:8.1f} {t / base:11.2f}x')
    print(f'max |p_predict - p_baseline| = {np.abs(rows[1][2] - rows[0][2]).max():.4f}')


if __name__ == '__main__': main()
