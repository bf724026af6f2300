"""Does `novelty` tell dermoscopy images from other photos? Both rates of a trained model's novelty threshold.

    python bench/ood.py [--model models/RUN] [--shared ../shared/data] [--train-args "--fold 0 --epochs 2 --pretrain-epochs 1"]

Dermoscopy images none of the model's networks trained on:
- the lesion-grouped held-out fold of the ISIC 2019 mini (extra fold 0, as `melanoma train` holds it out);
- the 93 test images of the SIIM-ISIC 2020 mini (decoded from the competition's DICOMs).
Photos that are not dermoscopy, all offline: scikit-image's and scikit-learn's sample images, matplotlib's and
Gradio's sample pictures, a centre crop and a blurred quarter-size copy of each, 20 matplotlib figures as PNG
screenshots, and 40 images of `melanoma sample-data` (drawn lesions, not photographs).

Targets (issue 24): at least 95% of the non-dermoscopy photos flagged, at most 2% of the dermoscopy images flagged.
Without `--model` it trains a short run first (`melanoma train 2020-mini --extra 2019-mini` plus `--train-args`) into
bench/_work/; a model without `novelty.safetensors` is fitted on its training images first. Writes
bench/_work/ood.json. Real data never leaves bench/_work/ (git-ignored).
"""
import argparse, io, json, subprocess, sys, time
from pathlib import Path
import numpy as np, pandas as pd

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / 'bench' / '_work'


def photos() -> list[tuple[str, 'Image.Image']]:
    "Non-dermoscopy pictures that ship with installed packages, their crops and rescalings, and rendered plots."
    from PIL import Image, ImageFilter
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    import skimage.data as sd
    from sklearn.datasets import load_sample_images
    out = []
    for n in ['astronaut', 'brick', 'camera', 'chelsea', 'coffee', 'coins', 'grass', 'gravel', 'horse', 'hubble_deep_field',
              'immunohistochemistry', 'logo', 'moon', 'page', 'rocket', 'text', 'clock', 'retina', 'colorwheel',
              'microaneurysms', 'cell']:
        try: a = np.asarray(getattr(sd, n)())
        except Exception: continue  # some need a download
        a = np.stack([a] * 3, -1) if a.ndim == 2 else a[..., :3]
        out.append((n, Image.fromarray(a.astype(np.uint8))))
    out += [(f'sklearn-{i}', Image.fromarray(a)) for i, a in enumerate(load_sample_images().images)]
    site = Path(np.__file__).resolve().parents[1]
    for f in sorted([*(site / 'matplotlib/mpl-data/sample_data').glob('*.[jp][pn]g'), *(site / 'gradio/media_assets/images').glob('*.*')]):
        try: out.append((f.name, Image.open(f).convert('RGB')))
        except Exception: pass
    base = list(out)
    for n, im in base:
        w, h = im.size
        out.append((f'{n}-crop', im.crop((w // 4, h // 4, 3 * w // 4, 3 * h // 4))))
        out.append((f'{n}-small', im.resize((max(8, w // 4), max(8, h // 4))).filter(ImageFilter.GaussianBlur(1)).resize((w, h))))
    for k in range(20):
        fig, ax = plt.subplots(figsize=(4, 3), dpi=80); r = np.random.default_rng(k)
        if k % 4 == 3: ax.hist(r.normal(size=100))
        else: [ax.plot, ax.bar, ax.scatter][k % 4](np.arange(10), r.random(10))
        ax.set_title(f'figure {k}'); buf = io.BytesIO(); fig.savefig(buf, format='png'); plt.close(fig)
        out.append((f'plot{k}', Image.open(buf).convert('RGB')))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--model', help='a trained model folder (default: train a short run into bench/_work)')
    ap.add_argument('--shared', default=str(ROOT.parent / 'shared' / 'data'))
    ap.add_argument('--train-args', default='--fold 0 --epochs 2 --pretrain-epochs 1 --tta 1')
    a = ap.parse_args()
    from melanoma.model import load_model
    from melanoma.novelty import save_novelty
    from melanoma.train import train_table, FOLD_SEED
    from melanoma.sample import make_sample_data
    siim, isic = Path(a.shared) / 'siim-isic-2020-mini', Path(a.shared) / 'isic-2019-mini'
    WORK.mkdir(parents=True, exist_ok=True)
    run, t0 = Path(a.model) if a.model else WORK / 'models' / 'ood', time.time()
    if not a.model:
        subprocess.run([sys.executable, '-m', 'melanoma.cli', 'train', str(siim), '--extra', str(isic), '--name', 'ood',
                        '--models-dir', str(WORK / 'models'), *a.train_args.split()], check=True)
    t_train = time.time() - t0
    m = load_model(run, device='cpu')
    df = train_table(siim, [isic], seed=FOLD_SEED)
    if m.novelty is None:  # a run from before `melanoma train` fitted novelty: fit it on the images it trained on
        trained = df[(df.fold >= 0) | (df.extra_fold != 0)]
        save_novelty(m.fit_novelty(trained.path.tolist()), run)
    held = df[(df.fold < 0) & (df.extra_fold == 0)].path.tolist()
    test20 = sorted(str(p) for p in (siim / 'jpeg' / 'test').glob('*.jpg'))
    synth = make_sample_data(WORK / 'ood-synthetic', n_train=40, n_test=0, size=256, seed=3, progress=False, dicom=0)
    others = photos() + [(p.name, str(p)) for p in sorted((synth / 'jpeg' / 'train').glob('*.jpg'))]
    thr, rows = m.novelty.threshold, {}
    for name, items in [('isic2019_heldout', held), ('siim2020_test', test20), ('not_dermoscopy', [x for _, x in others])]:
        s = m.novelty_scores(items, bs=64, progress=False)
        rows[name] = dict(n=int(np.isfinite(s).sum()), flagged=float(np.mean(s[np.isfinite(s)] > thr)))
        if name == 'not_dermoscopy': rows[name]['missed'] = [n for (n, _), v in zip(others, s) if v <= thr]
    derm = max(rows['isic2019_heldout']['flagged'], rows['siim2020_test']['flagged'])
    res = dict(model=str(run), threshold=thr, k=m.novelty.k, quantile=m.novelty.quantile, reference=len(m.novelty.ref), **rows,
               target_met=bool(rows['not_dermoscopy']['flagged'] >= 0.95 and derm <= 0.02), train_minutes=round(t_train / 60, 1),
               minutes=round((time.time() - t0) / 60, 1))
    (WORK / 'ood.json').write_text(json.dumps(res, indent=1))
    print(f"threshold {thr:.4f} (k {m.novelty.k}, {len(m.novelty.ref)} reference images)")
    for n in ('isic2019_heldout', 'siim2020_test', 'not_dermoscopy'):
        print(f"{n:>18}: {rows[n]['flagged']:6.1%} flagged of {rows[n]['n']}")
    print(f"targets (>= 95% of other photos, <= 2% of dermoscopy flagged): {'met' if res['target_met'] else 'NOT met'}; "
          f"missed: {rows['not_dermoscopy']['missed']}")


if __name__ == '__main__': main()
