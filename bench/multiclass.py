"""Seven-class diagnoses on the real ISIC 2019 mini (10,734 images), in one run.

    python bench/multiclass.py [--shared ../shared/data] [--epochs 2] [--limit 0] [--tta 8] [--name bench-multiclass]

1. `melanoma train --data isic-2019-mini --head multiclass --fold 0` at the recipe's size (128 px; every other option
   at its default unless `--epochs` or `--args` say otherwise), models in bench/_work/models, resized-image cache in
   bench/_work/cache (MELANOMA_CACHE): training wall time, CPU time and the load average;
2. `melanoma evaluate --model RUN --data isic-2019-mini --fold 0` on the run's lesion-grouped held-out fold: balanced
   multi-class accuracy (the ISIC 2018/2019 ranking metric), per-class AUC and sensitivity, the confusion matrix, and
   the melanoma AUC with its bootstrap interval; the report (with `confusion.png`) goes to bench/_work/reports/.

`--limit N` trains and evaluates on a random, lesion-grouped subset of about N images instead (a folder of links and
filtered CSVs under bench/_work/), for when the whole set does not fit the time. The shared data folder is read-only,
so `melanoma train` keeps its `folds.csv` in the cache; `evaluate --fold` reads `DATA/folds.csv`, so the evaluation
uses a folder of links to the same images plus a copy of that `folds.csv`. Writes bench/_work/multiclass.json.
Real data and models stay in bench/_work/ (git-ignored).
"""
import argparse, json, os, shutil, sys, time
from pathlib import Path
import numpy as np, pandas as pd

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / 'bench' / '_work'
sys.path.insert(0, str(Path(__file__).resolve().parent))
from segment import Load, run  # noqa: E402  (the load sampler and the subprocess runner of the segmentation bench)

GT, META, INPUT = 'ISIC_2019_Training_GroundTruth.csv', 'ISIC_2019_Training_Metadata.csv', 'ISIC_2019_Training_Input'


def link_folder(src: Path, dest: Path, keep: set | None = None) -> Path:
    "`dest` as an ISIC 2019 layout over `src`'s images (a link to the image folder); the CSVs copied, or filtered to `keep`."
    if (dest / GT).is_file(): return dest  # made by an earlier run: keep it (and the folds.csv a run wrote in it)
    if dest.exists(): shutil.rmtree(dest)
    dest.mkdir(parents=True)
    (dest / INPUT).symlink_to(src.resolve() / INPUT, target_is_directory=True)
    for f in (GT, META):
        df = pd.read_csv(src / f, dtype=str, keep_default_na=False)
        if keep is not None: df = df[df.image.isin(keep)]
        df.to_csv(dest / f, index=False)
    return dest


def grouped_subset(src: Path, n: int, seed: int = 0) -> set:
    "About `n` image ids of `src`, whole lesions at a time (a lesion's images stay together), in a random order."
    m = pd.read_csv(src / META, dtype=str, keep_default_na=False)
    g = m.lesion_id.where(m.lesion_id != '', m.image)
    order = np.random.default_rng(seed).permutation(g.unique())
    sizes = g.value_counts()
    take = order[:int(np.searchsorted(np.cumsum(sizes[order].to_numpy()), n, side='right'))]
    return set(m.image[g.isin(take)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--shared', default=str(ROOT.parent / 'shared' / 'data'))
    ap.add_argument('--name', default='bench-multiclass')
    ap.add_argument('--epochs', type=int, default=0, help='epochs (0: the train default)')
    ap.add_argument('--limit', type=int, default=0, help='a lesion-grouped subset of about N images (0: all)')
    ap.add_argument('--tta', type=int, default=8, help='dihedral views for the evaluation')
    ap.add_argument('--train-tta', type=int, default=1, help="views for the run's own out-of-fold scores (evaluate re-predicts the fold anyway)")
    ap.add_argument('--args', default='', help='extra `melanoma train` arguments')
    ap.add_argument('--skip-train', action='store_true', help='reuse bench/_work/models/NAME')
    a = ap.parse_args()
    src = Path(a.shared) / 'isic-2019-mini'
    if not (src / GT).is_file(): raise SystemExit(f'{src / GT}: not found')
    os.environ['MELANOMA_CACHE'] = str(WORK / 'cache')
    from melanoma.store import work_dir
    data = link_folder(src, WORK / f'isic-2019-mini-{a.limit}', grouped_subset(src, a.limit)) if a.limit else src
    models, reports = WORK / 'models', WORK / 'reports'
    py = [sys.executable, '-m', 'melanoma.cli']
    res = dict(date=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), cpus=os.cpu_count(), torch_threads=os.environ.get('OMP_NUM_THREADS', 'default'),
               data=str(data), images=len(pd.read_csv(data / GT)), epochs=a.epochs or 'default', args=a.args)
    if not a.skip_train:
        with Load() as ld:
            wall, _, cpu = run(py + ['train', '--data', str(data), '--head', 'multiclass', '--fold', '0', '--size', '128', '--name', a.name,
                                     '--models-dir', str(models), '--tta', str(a.train_tta), *(['--epochs', str(a.epochs)] if a.epochs else []),
                                     *a.args.split()])
        res.update(train_wall_min=round(wall / 60, 1), train_cpu_min=round(cpu / 60, 1), train_load=ld.summary)
    cfg = json.loads((models / a.name / 'config.json').read_text())
    res['train_args'] = cfg.get('train_args', cfg.get('args'))

    folds = work_dir(data) / 'folds.csv'
    ev = data if (data / 'folds.csv').is_file() else link_folder(src, WORK / 'isic-2019-mini-eval')
    if ev != data: shutil.copy(folds, ev / 'folds.csv')
    with Load() as ld:
        wall, _, cpu = run(py + ['evaluate', '--model', str(models / a.name), '--data', str(ev), '--fold', '0', '--tta', str(a.tta),
                                 '--name', a.name, '--out-dir', str(reports)])
    res.update(evaluate_wall_min=round(wall / 60, 1), evaluate_cpu_min=round(cpu / 60, 1), evaluate_load=ld.summary)
    m = json.loads((reports / a.name / 'metrics.json').read_text())
    d = m['diagnoses']
    res['metrics'] = dict(n=d['n'], balanced_accuracy=round(d['balanced_accuracy'], 4),
                          balanced_accuracy_even_prior=round(d.get('balanced_accuracy_even_prior', float('nan')), 4), accuracy=round(d['accuracy'], 4),
                          melanoma_auc=round(m['auc'], 4), melanoma_auc_ci=[round(x, 4) for x in m['auc_ci95']],
                          brier=round(m['brier'], 4), ece=round(m['ece'], 4), classes=d['classes'], confusion=d['confusion'], labels=d['labels'])
    r = res['metrics']
    print(f"\nISIC 2019 mini, held-out fold 0 ({r['n']} images, TTA {a.tta}): balanced accuracy {r['balanced_accuracy']:.3f} "
          f"(under equal class priors {r['balanced_accuracy_even_prior']:.3f}), accuracy {r['accuracy']:.3f}, melanoma AUC {r['melanoma_auc']:.3f} ({r['melanoma_auc_ci'][0]:.3f}-{r['melanoma_auc_ci'][1]:.3f})")
    print('| diagnosis | images | predicted | AUC | sensitivity |\n| --- | --- | --- | --- | --- |')
    f3 = lambda v: '–' if v is None or v != v else f'{v:.3f}'  # a class absent from the fold has no AUC or sensitivity
    for c in r['classes']: print(f"| {c['diagnosis']} | {c['n']} | {c['predicted']} | {f3(c['auc'])} | {f3(c['sensitivity'])} |")
    print('confusion (rows true, columns predicted): ' + ' '.join(r['labels']))
    for l, row in zip(r['labels'], r['confusion']): print(f'  {l:<5}' + ' '.join(f'{v:>5}' for v in row))
    if 'train_wall_min' in res: print(f"train: {res['train_wall_min']} min wall, {res['train_cpu_min']} CPU min, load average {res['train_load']}")
    print(f"evaluate: {res['evaluate_wall_min']} min wall, load average {res['evaluate_load']}; report {reports / a.name}")
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / 'multiclass.json').write_text(json.dumps(res, indent=2, default=str))


if __name__ == '__main__':
    main()
