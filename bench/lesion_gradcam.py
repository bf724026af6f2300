"""What the lesion view costs the demo: one `melanoma.app.predict_image` call (probability, and the Grad-CAM overlay),
for the same fold models with and without the view (`melanoma seg attach`).

    OMP_NUM_THREADS=1 .venv/bin/python bench/lesion_gradcam.py --model bench/_work/models/q-default-s42 \
        --with-lesion bench/_work/models/lv-s42 [--n 15]

Round-robin in one process, after one warm-up call each: the run without the view (the baseline), then the same run
with it, each with and without the heatmap (with the view, the heatmap is two Grad-CAM passes, the whole image and the
crop, plus the segmentation that finds the crop). The demo's lesion outline (a `seg` model) is not part of the call
timed here. Images: real 2020 mini JPEGs from ../shared/data. Prints p50 / p95 in ms and the ratios to the baseline."""
import argparse, sys, time
from pathlib import Path
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from melanoma import app as A
import melanoma.segment  # registers the lesion view
from melanoma.model import load_model

SHARED = REPO.parent / 'shared' / 'data' / 'siim-isic-2020-mini'


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--model', required=True, help='a run without the view')
    ap.add_argument('--with-lesion', required=True, help='the same run with the view attached')
    ap.add_argument('--n', type=int, default=15, help='timed calls per setting')
    a = ap.parse_args()
    import torch
    print(f'torch threads {torch.get_num_threads()}')
    paths = sorted((SHARED / 'jpeg' / 'train').glob('*.jpg'))[:a.n]
    if not paths: sys.exit(f'no JPEGs under {SHARED}: the real data is needed')
    models = {'whole image (baseline)': load_model(a.model, 'cpu'), 'with the lesion view': load_model(a.with_lesion, 'cpu')}
    assert models['with the lesion view'].lesion is not None and models['whole image (baseline)'].lesion is None
    settings = [(name, heat) for name in models for heat in (False, True)]
    times = {s: [] for s in settings}
    for s in settings: A.predict_image(models[s[0]], paths[0], heatmap=s[1])  # warm-up
    for p in paths:
        for s in settings:
            t = time.perf_counter(); A.predict_image(models[s[0]], p, heatmap=s[1]); times[s].append(time.perf_counter() - t)
    base = {h: np.median(times[('whole image (baseline)', h)]) for h in (False, True)}
    print(f'{len(paths)} real JPEGs ({SHARED.name}), 5 folds; ms per predict_image call')
    print(f"{'model':<26} {'heatmap':<8} {'p50':>7} {'p95':>7} {'x baseline p50':>15}")
    for (name, heat), t in times.items():
        t = np.array(t) * 1000
        print(f'{name:<26} {str(heat):<8} {np.median(t):7.0f} {np.percentile(t, 95):7.0f} {np.median(t) / 1000 / base[heat]:15.2f}')


if __name__ == '__main__':
    main()
