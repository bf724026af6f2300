"""Lesion segmentation on the real ISIC 2017 Part 1 mini set (2,000 training / 150 official validation images), in one run.

    python bench/segment.py [--shared ../shared/data] [--threads 1] [--args "--epochs 8"] [--skip-train] [--classifier]

1. the default `melanoma seg train --data isic-2017-seg-mini` (official validation split): mean Jaccard and thresholded
   Jaccard (per-image scores below 0.65 count as 0) on the 150 validation images at their own size, with bootstrap 95%
   intervals, and the training wall time; with `--args "--hold-out 0.2"`, also on a random fifth of the training
   images that the model does not train on (and Otsu on them);
2. the same model with flip TTA (`seg predict --tta`, the four flips averaged) on the same images, and a plain Otsu
   baseline on the same 150 images: Otsu threshold of the blue channel, darker side = lesion, largest
   connected component with holes filled (numpy + scipy, no training);
3. `melanoma seg predict` on the 150 validation images: images/s as the command reports it (model loaded, decoding,
   prediction at the images' size and PNG writing) and the command's whole wall time;
4. with `--classifier`: does the lesion mask help the melanoma classifier? Frozen EfficientNet-Lite0 ImageNet features
   (128 px, global-pooled) + logistic regression, as bench/train_quality.py's reference, on full images vs lesion crops
   (mask from the model of step 1) vs features + `lesion_measurements` (ABCD-style), and the measurements alone; scored
   by out-of-fold AUC on the SIIM-ISIC 2020 mini (patient-grouped folds of `melanoma train`) and by AUC on the
   lesion-grouped held-out fold of the ISIC 2019 mini (a random 1,200 of its images by default; fitted on a random
   2,500 of the other 2019 folds' images).
The 1-minute load average is sampled during every step (the machine is shared). Writes bench/_work/segment.json.
Real data and models stay in bench/_work/ (git-ignored).
"""
import argparse, json, os, subprocess, sys, threading, time
from pathlib import Path
import numpy as np, pandas as pd

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / 'bench' / '_work'


class Load:
    "Samples the 1-minute load average every few seconds while a step runs."
    def __init__(self, every: float = 10.): self.every, self.v, self.stop = every, [], threading.Event()
    def __enter__(self):
        def run():
            while not self.stop.wait(self.every): self.v.append(os.getloadavg()[0])
        self.v.append(os.getloadavg()[0]); self.t = threading.Thread(target=run, daemon=True); self.t.start(); return self
    def __exit__(self, *a): self.stop.set(); self.t.join(); self.v.append(os.getloadavg()[0])
    @property
    def summary(self) -> str: return f'{np.mean(self.v):.1f} (max {max(self.v):.1f})'


def otsu_threshold(x: np.ndarray) -> float:
    "Otsu's threshold of an 8-bit array (numpy)."
    h = np.bincount(x.ravel(), minlength=256).astype(np.float64)
    p = h / h.sum(); w = np.cumsum(p); mu = np.cumsum(p * np.arange(256)); mt = mu[-1]
    with np.errstate(divide='ignore', invalid='ignore'): s = (mt * w - mu) ** 2 / (w * (1 - w))
    return float(np.nanargmax(s))


def otsu_mask(img: np.ndarray) -> np.ndarray:
    "Plain Otsu lesion mask: blue channel below its Otsu threshold, largest component, holes filled."
    from melanoma.segment import clean_mask
    b = img[..., 2]
    return clean_mask(b <= otsu_threshold(b))


def run(cmd: list[str]) -> tuple[float, str, float]:
    "Run `cmd`, echoing its output lines as they come (less warnings); (wall seconds, output, CPU seconds it used)."
    import resource
    print(' '.join(cmd), flush=True)
    t, r0 = time.time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for l in p.stdout:
        if 'Warning' in l or 'warnings.warn' in l or 'set_option' in l: continue
        print(l, end='', flush=True); lines.append(l.rstrip('\n'))
    if p.wait(): raise SystemExit(f'failed ({p.returncode}): {" ".join(cmd)}')
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.time() - t, '\n'.join(lines), (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)


def classifier_effect(shared: Path, model_dir: Path, res: dict, n_2019_train: int, threads: int, smoke: int = 0, n_2019_heldout: int = 0):
    "Frozen Lite0 features + logistic regression: full images vs lesion crops vs + ABCD measurements, on both populations."
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from PIL import Image
    from melanoma.core import safe_auc
    from melanoma.train import train_table, fold_split, FOLD_SEED
    from melanoma.model import create_model
    from melanoma.images import open_image
    from melanoma.segment import load_seg_model, predict_masks, crop_to_lesion, lesion_measurements, MEASURE_COLUMNS
    if threads: torch.set_num_threads(threads)
    siim, isic = shared / 'siim-isic-2020-mini', shared / 'isic-2019-mini'
    df = train_table(siim, [isic], seed=FOLD_SEED)
    main = (df.fold >= 0).to_numpy(); ho = ((df.fold < 0) & (df.extra_fold == 0)).to_numpy()
    rest = np.flatnonzero((df.fold < 0).to_numpy() & ~ho)
    rest = np.sort(np.random.default_rng(0).choice(rest, min(n_2019_train, len(rest)), replace=False))
    i20, iho = np.flatnonzero(main), np.flatnonzero(ho)
    if n_2019_heldout and n_2019_heldout < len(iho):
        iho = np.sort(np.random.default_rng(1).choice(iho, n_2019_heldout, replace=False))
        ho = np.isin(np.arange(len(df)), iho)
    if smoke:  # a quick check of this code on a few images of each part
        r = np.random.default_rng(0)
        i20, iho, rest = (np.sort(r.choice(v, min(smoke, len(v)), replace=False)) for v in (i20, iho, rest))
        main, ho = np.isin(np.arange(len(df)), i20), np.isin(np.arange(len(df)), iho)
    use = np.concatenate([i20, iho, rest])
    sub = df.iloc[use].reset_index(drop=True)
    is20, isho, is19tr = np.r_[np.ones(main.sum(), bool), np.zeros(len(use) - main.sum(), bool)], np.zeros(len(use), bool), np.zeros(len(use), bool)
    isho[main.sum():main.sum() + ho.sum()] = True; is19tr[main.sum() + ho.sum():] = True
    cache = WORK / f'seg_classifier_cache{"-smoke" if smoke else ""}.npz'
    t = time.time()
    if cache.is_file() and len(np.load(cache)['full']) == len(sub):
        z = np.load(cache); full, crop, meas, found = z['full'], z['crop'], z['meas'], z['found']
    else:
        seg = load_seg_model(model_dir)
        net = create_model().body.eval()
        mean = torch.tensor([0.5] * 3)[:, None, None]; std = torch.tensor([0.5] * 3)[:, None, None]
        def feats(ims):
            x = torch.stack([torch.from_numpy(np.asarray(i.resize((128, 128), Image.Resampling.BICUBIC), np.uint8).copy()).permute(2, 0, 1) for i in ims])
            with torch.inference_mode(): return net(((x.float() / 255 - mean) / std).contiguous(memory_format=torch.channels_last)).float().numpy()
        full, crop, meas, found = [], [], [], []
        bs = 64
        for s in range(0, len(sub), bs):
            ims = [open_image(p, size=256) for p in sub.path[s:s + bs]]
            ims = [i if max(i.size) <= 320 else i.resize((round(i.width * 256 / max(i.size)), round(i.height * 256 / max(i.size))), Image.Resampling.BICUBIC) for i in ims]
            ms = predict_masks(seg, ims, bs=32, progress=False)
            full.append(feats(ims)); crop.append(feats([crop_to_lesion(i, m) for i, m in zip(ims, ms)]))
            meas += ([[lesion_measurements(i, m)[c] for c in MEASURE_COLUMNS] for i, m in zip(ims, ms)])
            found += [bool(m.any()) for m in ms]
            if s % (bs * 10) == 0: print(f'  features {s + len(ims)}/{len(sub)} ({time.time() - t:.0f} s)', flush=True)
        full, crop, meas, found = np.concatenate(full), np.concatenate(crop), np.asarray(meas, float), np.asarray(found)
        np.savez(cache, full=full, crop=crop, meas=meas, found=found)
    res['classifier_features_min'] = round((time.time() - t) / 60, 1)
    meas = np.where(np.isfinite(meas), meas, np.nanmedian(meas, 0))
    tgt = sub.target.to_numpy().astype(int)
    X = {'full': full, 'crop': crop, 'full+crop': np.concatenate([full, crop], 1), 'full+measurements': np.concatenate([full, meas], 1),
         'crop+measurements': np.concatenate([crop, meas], 1), 'measurements': meas}
    folds = sorted(sub.fold[is20].unique())
    out = {}
    for k, x in X.items():
        clf = lambda: make_pipeline(StandardScaler(), LogisticRegression(C=0.05 if x.shape[1] > 100 else 1.0, max_iter=3000))
        p = np.full(len(sub), np.nan)
        for f in folds:
            tr, va = np.flatnonzero(is20 & (sub.fold != f).to_numpy()), np.flatnonzero(is20 & (sub.fold == f).to_numpy())
            p[va] = clf().fit(x[tr], tgt[tr]).predict_proba(x[va])[:, 1]
        a20 = safe_auc(tgt[is20], p[is20])
        p19 = clf().fit(x[is19tr], tgt[is19tr]).predict_proba(x[isho])[:, 1]
        out[k] = dict(auc_2020=round(a20, 4), auc_2019=round(safe_auc(tgt[isho], p19), 4))
        print(f'  {k:<20} 2020 OOF AUC {a20:.4f}   2019 held-out AUC {out[k]["auc_2019"]:.4f}', flush=True)
    res['classifier'] = dict(n_2020=int(is20.sum()), n_2019_train=int(is19tr.sum()), n_2019_heldout=int(isho.sum()),
                             lesion_found=round(float(found.mean()), 3), results=out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--shared', default=str(ROOT.parent / 'shared' / 'data'))
    ap.add_argument('--name', default='bench-seg')
    ap.add_argument('--threads', type=int, default=0, help='torch threads for training (0: default; 1 is faster while another job shares the CPU)')
    ap.add_argument('--args', default='', help='extra `melanoma seg train` arguments')
    ap.add_argument('--skip-train', action='store_true', help='reuse bench/_work/models/NAME')
    ap.add_argument('--classifier', action='store_true', help='also measure lesion crops / measurements with the classifier probe')
    ap.add_argument('--n-2019-train', type=int, default=2500, help='2019 training images sampled for the 2019 probe')
    ap.add_argument('--n-2019-heldout', type=int, default=1200, help='held-out 2019 images sampled for the 2019 probe (0: all)')
    ap.add_argument('--model', default=None, help='with --classifier-only: the segmentation model folder to use')
    ap.add_argument('--classifier-only', type=int, default=-1, metavar='N', help='run only step 4 (N > 0: on N images of each part, a smoke test)')
    a = ap.parse_args()
    data = Path(a.shared) / 'isic-2017-seg-mini'
    if not data.is_dir(): raise SystemExit(f'{data}: not found')
    models = WORK / 'models'; mdir = models / a.name
    py = [sys.executable, '-m', 'melanoma.cli']
    res = dict(date=time.strftime('%Y-%m-%d %H:%M'), cpus=os.cpu_count(), threads=a.threads, args=a.args)
    if a.classifier_only >= 0:
        with Load() as ld: classifier_effect(Path(a.shared), Path(a.model) if a.model else mdir, res, a.n_2019_train, a.threads, a.classifier_only, a.n_2019_heldout)
        res['classifier']['load'] = ld.summary
        print(json.dumps(res['classifier'], indent=1))
        if not a.classifier_only: (WORK / 'segment_classifier.json').write_text(json.dumps(res, indent=2, default=str))
        return

    # 1. the default command
    if not a.skip_train:
        with Load() as ld:
            wall, _, cpu = run(py + ['seg', 'train', '--data', str(data), '--name', a.name, '--models-dir', str(models),
                                '--threads', str(a.threads), *a.args.split()])
        res['train_wall_min'], res['train_cpu_min'], res['train_load'] = round(wall / 60, 1), round(cpu / 60, 1), ld.summary
    m = json.loads((mdir / 'metrics.json').read_text())
    res['model'] = {k: v for k, v in m.items() if k != 'epochs'}
    res['config'] = json.loads((mdir / 'config.json').read_text()).get('train_args')

    # 2. Otsu baseline
    from melanoma.segment import read_seg_dataset, read_mask, jaccard, jaccard_summary
    from melanoma.images import open_image
    va = read_seg_dataset(data).query("split == 'valid'")
    with Load() as ld:
        t, c = time.time(), time.process_time()
        s = [jaccard(otsu_mask(np.asarray(open_image(p))), read_mask(mp)) for p, mp in zip(va.path, va.mask_path)]
        res['otsu'] = dict(**jaccard_summary(s), images_per_s=round(len(va) / (time.time() - t), 1),
                           images_per_cpu_s=round(len(va) / (time.process_time() - c), 1), load=ld.summary)
    if 'hold_out' in m:  # the same baseline on the held-out training images
        sc = pd.read_csv(mdir / 'valid_scores.csv')
        ho = read_seg_dataset(data).set_index('image_id').loc[sc.image_id[sc.set == 'hold_out']]
        res['otsu_hold_out'] = jaccard_summary([jaccard(otsu_mask(np.asarray(open_image(p))), read_mask(mp)) for p, mp in zip(ho.path, ho.mask_path)])

    # 2b. the same model with flip TTA (`seg predict --tta`): the four flips averaged
    from melanoma.segment import load_seg_model, predict_masks
    import torch
    if a.threads: torch.set_num_threads(a.threads)
    model, res['tta'] = load_seg_model(mdir), {}
    for part, d in [('valid', va)] + ([('hold_out', ho)] if 'hold_out' in m else []):
        t = time.time()
        pm = predict_masks(model, list(d.path), tta=True, progress=False)
        res['tta'][part] = dict(**jaccard_summary([jaccard(p, read_mask(mp)) for p, mp in zip(pm, d.mask_path)]),
                                images_per_s=round(len(d) / (time.time() - t), 1))

    # 3. seg predict speed
    out = WORK / 'seg_predict'
    if out.exists(): __import__('shutil').rmtree(out)
    with Load() as ld:
        wall, txt, pcpu = run(py + ['seg', 'predict', '--model', str(mdir), '--data', str(data / 'ISIC-2017_Validation_Data'), '--out', str(out),
                                    '--threads', str(a.threads)])
    ips = float(txt.rsplit(', ', 1)[-1].split()[0]) if 'images/s' in txt else None
    res['predict'] = dict(images=len(va), images_per_s=ips, command_wall_s=round(wall, 1), command_cpu_s=round(pcpu, 1), load=ld.summary)
    s2 = [jaccard(read_mask(out / f'{i}_segmentation.png'), read_mask(mp)) for i, mp in zip(va.image_id, va.mask_path)]
    res['predict']['jaccard_of_written_masks'] = round(float(np.mean(s2)), 4)

    if a.classifier:
        with Load() as ld: classifier_effect(Path(a.shared), mdir, res, a.n_2019_train, a.threads, 0, a.n_2019_heldout)
        res['classifier']['load'] = ld.summary

    mm, o = res['model'], res['otsu']
    rows = [(f"U-Net (`seg train{' ' + a.args if a.args else ''}`)", mm['jaccard'], mm['jaccard_ci'], mm['thresholded_jaccard'], mm['thresholded_jaccard_ci']),
            ('Otsu, blue channel', o['jaccard'], o['jaccard_ci'], o['thresholded_jaccard'], o['thresholded_jaccard_ci'])]
    print(f"\nISIC 2017 official validation split, {mm['n']} images at 256x192 ({res['date']}, {res['cpus']} CPUs)")
    print(f"| method | Jaccard (95% CI) | thresholded Jaccard (95% CI) |\n| --- | --- | --- |")
    tv = res['tta']['valid']
    rows.insert(1, ('the same with flip TTA (`seg predict --tta`)', tv['jaccard'], tv['jaccard_ci'], tv['thresholded_jaccard'], tv['thresholded_jaccard_ci']))
    for n, j, jc, tj, tjc in rows: print(f'| {n} | {j:.3f} ({jc[0]:.3f}-{jc[1]:.3f}) | {tj:.3f} ({tjc[0]:.3f}-{tjc[1]:.3f}) |')
    if 'hold_out' in mm:
        print(f"\nheld-out fold of the training images ({mm['hold_out']['n']} images, `--hold-out {mm['hold_out']['fraction']}`)")
        print(f"| method | Jaccard (95% CI) | thresholded Jaccard (95% CI) |\n| --- | --- | --- |")
        for n, h in [('U-Net', mm['hold_out']), ('the same with flip TTA', res['tta']['hold_out']), ('Otsu, blue channel', res['otsu_hold_out'])]:
            print(f"| {n} | {h['jaccard']:.3f} ({h['jaccard_ci'][0]:.3f}-{h['jaccard_ci'][1]:.3f}) | {h['thresholded_jaccard']:.3f} "
                  f"({h['thresholded_jaccard_ci'][0]:.3f}-{h['thresholded_jaccard_ci'][1]:.3f}) |")
    if 'train_wall_min' in res: print(f"train: {mm['train_minutes']} min in the command ({res['train_wall_min']} min wall, {res['train_cpu_min']} CPU min), load average {res['train_load']}")
    p = res['predict']
    print(f"seg predict: {p['images_per_s']} images/s ({p['images']} images, {p['command_wall_s']} s wall / {p['command_cpu_s']} s CPU for the whole command), load average {p['load']}")
    print(f"Otsu: {o['images_per_s']} images/s ({o['images_per_cpu_s']} per CPU second); flip TTA in this process: {tv['images_per_s']} images/s")
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / 'segment.json').write_text(json.dumps(res, indent=2, default=str))


if __name__ == '__main__':
    main()
