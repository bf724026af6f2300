"""Latency of one demo prediction on the CPU, with and without the Grad-CAM heatmap.

    .venv/bin/python bench/app_latency.py [--n 30] [--arch tf_efficientnet_lite0] [--size 128] [--folds 5]

Builds a model artifact with the `melanoma train` defaults (tf_efficientnet_lite0, 128 px, 5 folds; offline
ImageNet weights, untrained head: latency does not depend on the weights) under bench/_work/app_latency/, then times,
in the same run, round-robin:
  * baseline: `MelanomaModel.predict([path])` (open + preprocess + every fold's forward pass), the bare model call;
  * `melanoma.app.predict_image` without and with the heatmap (what the UI calls);
  * the running app (`melanoma demo` in its own process, 127.0.0.1) through gradio_client, without and with the heatmap (HTTP, queue, PNG encoding).
Prints p50/p95 in ms for each and the ratios to the baseline's p50. Images: the synthetic 256 px example, and a real
512 px JPEG and the biggest competition DICOM from ../shared/data when present."""
import argparse, os, subprocess, sys, time
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


def timings(settings: dict, n: int, warm: int = 3) -> dict[str, tuple[float, float]]:
    "p50/p95 in ms of each callable in `settings`, timed round-robin (so load from other processes hits all alike)."
    for fn in settings.values():
        for _ in range(warm): fn()
    ts = {k: [] for k in settings}
    for _ in range(n):
        for k, fn in settings.items():
            t = time.perf_counter(); fn(); ts[k].append((time.perf_counter() - t) * 1000)
    return {k: (float(np.percentile(v, 50)), float(np.percentile(v, 95))) for k, v in ts.items()}


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
    rows, paths = [], images()
    results = {name: {} for name in paths}
    for _ in range(5): model.predict([paths['synthetic 256px JPEG']], progress=False)  # warm up
    for name, path in paths.items():
        results[name] |= timings({
            'baseline model.predict': lambda: model.predict([path], progress=False),
            'predict_image heatmap=False': lambda: A.predict_image(model, path, heatmap=False),
            'predict_image heatmap=True': lambda: A.predict_image(model, path, heatmap=True),
        }, a.n)
    # then the app, as `melanoma demo` in its own process like for real users (no GIL shared with the client); it
    # runs alone, after the direct timings, so the two processes' torch threads never compete for the cores
    port = A.free_port()
    server = subprocess.Popen([sys.executable, '-m', 'melanoma.cli', 'demo', '--model', str(mdir), '--port', str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, 'GRADIO_ANALYTICS_ENABLED': 'False'})
    from gradio_client import Client, handle_file
    try:
        for _ in range(240):
            try: client = Client(f'http://127.0.0.1:{port}/', verbose=False, analytics_enabled=False, download_files=False); break
            except Exception:
                if server.poll() is not None: sys.exit('melanoma demo did not start')
                time.sleep(0.5)
        else: sys.exit('melanoma demo did not answer within 2 minutes')
        for name, path in paths.items():
            results[name] |= timings({
                f'app via gradio_client heatmap={hm}': (lambda hm=hm: client.predict(handle_file(str(path)), '', '', '', hm, 0.5, None, api_name='/predict'))
                for hm in (False, True)}, a.n)
    finally: server.terminate(); server.wait(30)
    for name, res in results.items():
        base = res['baseline model.predict']
        print(f'\n{name}:')
        for k, (p50, p95) in res.items():
            print(f'  {k:38s} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  ratio to baseline p50 {p50 / base[0]:5.2f}x')
            rows.append((name, k, p50, p95))
    ok = [r for r in rows if r[0].startswith('synthetic') and r[1] == 'predict_image heatmap=False']
    if ok: print(f'\ntarget p50 < 200 ms without heatmap (predict_image, synthetic): {"met" if ok[0][2] < 200 else "NOT met"} ({ok[0][2]:.0f} ms)')


if __name__ == '__main__': main()
