"""CPU throughput of `melanoma predict` against a naive one-image-at-a-time loop, and onnxruntime against torch.

    .venv/bin/python bench/predict.py [--runs 3] [--arch tf_efficientnet_lite0] [--size 128] [--folds 5] [--data DIR]

Builds a model artifact with the `melanoma train` defaults (tf_efficientnet_lite0, 128 px, 5 folds; offline ImageNet
weights, untrained head: speed does not depend on the weights) under bench/_work/predict/, exports it to ONNX, then
times, in the same run, medians of `--runs`:
  * baseline: a naive loop, for each image: `open_image`, `MelanomaModel.preprocess`, every fold's forward pass on a
    batch of one, mean of the sigmoids (what a first script would do);
  * `melanoma predict --no-onnx` (the CLI function with torch, in process: model loading, worker-decoded chunks, batches of 32, fold
    average, validation and the atomic CSV write included);
  * `melanoma predict --onnx` (the same with onnxruntime sessions instead of torch; the default on a CPU once exported).
Images: the 93 real test JPEGs (512 px) of ../shared/data/siim-isic-2020-mini when present, else 93 synthetic 512 px
test images. Prints images/s and the ratios."""
import argparse, os, statistics, sys, time, warnings
from pathlib import Path
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from melanoma.cli import main
from melanoma.data import read_dataset
from melanoma.inference import export_onnx, default_workers
from melanoma.model import create_model, save_model, load_model
from melanoma.images import open_image

WORK = REPO / 'bench' / '_work' / 'predict'
SHARED = REPO.parent / 'shared' / 'data' / 'siim-isic-2020-mini'


def naive(model_dir: Path, paths: list) -> np.ndarray:
    "Baseline: one image at a time through every fold."
    m = load_model(model_dir, device='cpu')
    out = []
    with torch.inference_mode():
        for p in paths:
            x = m.preprocess(open_image(p))[None]
            out.append(np.mean([torch.sigmoid(m.melanoma_logit(net, x)).item() for net in m.nets]))
    return np.array(out)


def timed(fn, runs: int) -> float:
    ts = []
    for _ in range(runs):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def run(args):
    WORK.mkdir(parents=True, exist_ok=True)
    if args.data: data = Path(args.data)
    elif SHARED.exists(): data = SHARED
    else:
        from melanoma.sample import make_sample_data
        data = make_sample_data(WORK / 'sample', n_train=4, n_test=93, size=512, dicom=0, progress=False)
    paths = read_dataset(data, split='test').path.tolist()
    mdir = WORK / f'{args.arch}-{args.size}-{args.folds}f'
    if not (mdir / 'config.json').exists():
        torch.manual_seed(0)
        save_model([create_model(args.arch, pretrained=True) for _ in range(args.folds)], mdir, {'size': args.size})
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        export_onnx(mdir)
    out = WORK / 'sub.csv'
    cli = ['predict', '--model', str(mdir), '--data', str(data), '--out', str(out), '--bs', str(args.bs)]
    print(f'{len(paths)} images from {data}; model {args.arch}, {args.size} px, {args.folds} folds; '
          f'torch threads {torch.get_num_threads()}, decoding workers {default_workers()}; medians of {args.runs}', flush=True)
    # warm up (imports, first model load, page cache)
    main(cli + ['--no-onnx']); main(cli + ['--onnx']); naive(mdir, paths[:4])
    res = {}
    res['naive loop (baseline)'] = timed(lambda: naive(mdir, paths), args.runs)
    res['melanoma predict --no-onnx'] = timed(lambda: main(cli + ['--no-onnx']), args.runs)
    res['melanoma predict --onnx'] = timed(lambda: main(cli + ['--onnx']), args.runs)
    base = res['naive loop (baseline)']
    print('\n| step | median s | images/s | speed-up vs naive |\n| --- | --- | --- | --- |')
    for k, t in res.items(): print(f'| {k} | {t:.2f} | {len(paths) / t:.1f} | {base / t:.2f}x |')
    print(f"\nonnxruntime / torch (predict): {res['melanoma predict --no-onnx'] / res['melanoma predict --onnx']:.2f}x faster")


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--arch', default='tf_efficientnet_lite0')
    ap.add_argument('--size', type=int, default=128)
    ap.add_argument('--folds', type=int, default=5)
    ap.add_argument('--bs', type=int, default=32)
    ap.add_argument('--data', default=None)
    run(ap.parse_args())
