"""Latency of one demo prediction on the CPU, with and without the Grad-CAM heatmap.

    .venv/bin/python bench/app_latency.py [--n 30] [--arch tf_efficientnet_lite0] [--size 128] [--folds 5]

Builds a model artifact with the `melanoma train` defaults (tf_efficientnet_lite0, 128 px, 5 folds; offline
ImageNet weights, untrained head: latency does not depend on the weights) under bench/_work/app_latency/, then times,
in the same run:
  * baseline: `MelanomaModel.predict([path])` (open + preprocess + every fold's forward pass), the bare model call;
  * `melanoma.app.predict_image` without and with the heatmap (what the UI calls);
  * the running app (127.0.0.1) through gradio_client, without and with the heatmap (HTTP, queue, PNG encoding).
Prints p50/p95 in ms for each and the ratios to the baseline's p50. Images: the synthetic 256 px example, and a real
512 px JPEG and the biggest competition DICOM from ../shared/data when present."""
import argparse, os, statistics, sys, time
from pathlib import Path
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')
from melanoma import app as A
from melanoma.model import create_model, save_model, load_model

WORK = REPO / 'bench' / '_work' / 'app_latency'
SHARED = REPO.parent / 'shared' / 'data' / 'siim-isic-2020-mini'


def images() -> dict[str, Path]:
    out = {'synthetic 256px JPEG': REPO / 'app' / 'examples' / 'synthetic_melanoma.jpg'}
    if SHARED.exists():
        jpg = sorted((SHARED / 'jpeg' / 'train').glob('*.jpg'))
        if jpg: out['real 512px JPEG'] = jpg[0]
        dcm = max((SHARED / 'train').glob('*.dcm'), key=lambda p: p.stat().st_size, default=None)
        if dcm:
            from PIL import Image
            from melanoma.dicom import read_dicom
            w, h = read_dicom(dcm).size
            out[f'real DICOM {w}x{h} ({dcm.stat().st_size / 1e6:.1f} MB)'] = dcm
    return out


def timings(fn, n: int, warm: int = 3) -> tuple[float, float]:
    for _ in range(warm): fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter(); fn(); ts.append((time.perf_counter() - t) * 1000)
    return float(np.percentile(ts, 50)), float(np.percentile(ts, 95))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, default=30, help='timed predictions per setting')
    ap.add_argument('--arch', default='tf_efficientnet_lite0')
    ap.add_argument('--size', type=int, default=128)
    ap.add_argument('--folds', type=int, default=5)
    a = ap.parse_args()
    import torch
    mdir = WORK / f'{a.arch}-{a.size}-{a.folds}f'
    if not (mdir / 'config.json').exists():
        net = create_model(a.arch, pretrained=a.arch.startswith('tf_efficientnet_lite'))
        save_model([net] * a.folds, mdir, dict(size=a.size))
    model = load_model(mdir, device='cpu')
    print(f'{model!r}; torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs; n={a.n} per setting')
    app = A.build_app(model=model, examples=[])
    url = A.start_app(app)
    from gradio_client import Client, handle_file
    client = Client(url, verbose=False, analytics_enabled=False, download_files=False)
    rows = []
    try:
        for name, path in images().items():
            base = timings(lambda: model.predict([path], progress=False), a.n)
            res = {'baseline model.predict': base}
            for hm in (False, True):
                res[f'predict_image heatmap={hm}'] = timings(lambda: A.predict_image(model, path, heatmap=hm), a.n)
            for hm in (False, True):
                res[f'app via gradio_client heatmap={hm}'] = timings(
                    lambda: client.predict(handle_file(str(path)), None, '', '', hm, 0.5, api_name='/predict'), a.n)
            print(f'\n{name}:')
            for k, (p50, p95) in res.items():
                print(f'  {k:38s} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  ratio to baseline p50 {p50 / base[0]:5.2f}x')
                rows.append((name, k, p50, p95))
    finally: app.close()
    ok = [r for r in rows if r[0].startswith('synthetic') and r[1] == 'predict_image heatmap=False']
    if ok: print(f'\ntarget p50 < 200 ms without heatmap (predict_image, synthetic): {"met" if ok[0][2] < 200 else "NOT met"} ({ok[0][2]:.0f} ms)')


if __name__ == '__main__': main()
