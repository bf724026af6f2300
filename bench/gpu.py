"""GPU figures for the sizing table, in one run of under 8 minutes on one GPU (`bench/gpu.sh` sets up and calls this).

For each (arch, size) of `--configs` (default: Lite0 and EfficientNet-B0 at 384 and 512 px): the real command
`melanoma train --data <synthetic set> --arch A --size S --store stream --fold 0 --epochs 1 --bs BS --tta 1` (precision
`auto`: bf16 where the GPU computes it natively, else fp16 with loss scaling; channels-last); reported: training
images/s (the run's own `Throughput` figure, `oof_auc.json` `train_images_per_s`), peak GPU memory (`nvidia-smi` sampled every 0.5 s), mean GPU utilisation, and peak host RSS of
the whole process tree. Then `--real` (when ../shared/data is there): one fold of the default recipe at 384 px on the
real minis, wall time and both AUCs.

    python bench/gpu.py [--configs tf_efficientnet_lite0:384,tf_efficientnet_lite0:512,tf_efficientnet_b0:384,tf_efficientnet_b0:512]
                        [--n 2000] [--bs 32] [--epochs 1] [--real] [--cpu-smoke]

`--cpu-smoke` runs the same code path on the CPU at a tiny size (a check of this script, not a figure; `--real` is skipped).
Writes bench/_work/gpu.json and prints a table.
"""
import argparse, json, os, shutil, subprocess, sys, threading, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / 'bench' / '_work'
sys.path.insert(0, str(ROOT / 'bench'))
from scale import make_set, tree_mem  # the synthetic 512 px JPEG sets and the process-tree sampler


def gpu_sample() -> tuple[float, float]:
    "(memory used MiB, utilisation %) summed over GPUs, or (0, 0) without nvidia-smi."
    try:
        out = subprocess.run(['nvidia-smi', '--query-gpu=memory.used,utilization.gpu', '--format=csv,noheader,nounits'],
                             capture_output=True, text=True, timeout=5).stdout
        rows = [[float(v) for v in l.split(',')] for l in out.strip().splitlines() if l.strip()]
        return sum(r[0] for r in rows), sum(r[1] for r in rows) / max(1, len(rows))
    except Exception: return 0., 0.


def run(cmd: list[str], env: dict | None = None) -> dict:
    "Run `cmd`, sampling host RSS of its process tree and the GPU every 0.5 s."
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak, gmem, util = [0], [0.], []
    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_mem(proc.pid)[0])
            m, u = gpu_sample(); gmem[0] = max(gmem[0], m); util.append(u)
            time.sleep(0.5)
    th = threading.Thread(target=sample, daemon=True); th.start()
    out, _ = proc.communicate(); th.join()
    return dict(rc=proc.returncode, wall_s=round(time.perf_counter() - t0, 1), host_rss_gib=round(peak[0] / 2**30, 2),
                gpu_mem_mib=gmem[0], gpu_util_mean=round(sum(util) / len(util), 1) if util else None, tail=out[-1500:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--configs', default='tf_efficientnet_lite0:384,tf_efficientnet_lite0:512,tf_efficientnet_b0:384,tf_efficientnet_b0:512')
    ap.add_argument('--n', type=int, default=2000, help='synthetic images (512 px JPEGs)')
    ap.add_argument('--bs', type=int, default=32)
    ap.add_argument('--epochs', type=int, default=1)
    ap.add_argument('--real', action='store_true', help='also one fold of the default recipe at 384 px on ../shared/data')
    ap.add_argument('--cpu-smoke', action='store_true', help='tiny CPU run of this script (not a figure)')
    a = ap.parse_args()
    if a.cpu_smoke: a.n, a.bs, a.configs = 64, 8, 'tf_efficientnet_lite0:64'
    data = make_set(a.n, root=WORK / f'gpu-set-{a.n}')
    res = dict(date=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), gpu=subprocess.run(
        ['nvidia-smi', '--query-gpu=name', '--format=csv,noheader'], capture_output=True, text=True).stdout.strip() if shutil.which('nvidia-smi') else 'none',
        rows=[])
    for c in a.configs.split(','):
        arch, size = c.split(':')
        name = f'gpu-{arch}-{size}'
        shutil.rmtree(WORK / 'gpu-models' / name, ignore_errors=True)
        cmd = [sys.executable, '-m', 'melanoma.cli', 'train', '--data', str(data), '--arch', arch, '--size', size, '--store', 'stream',
               '--fold', '0', '--epochs', str(a.epochs), '--bs', str(a.bs), '--name', name, '--models-dir', str(WORK / 'gpu-models'),
               '--tta', '1', '--no-cache'] + (['--no-gpu'] if a.cpu_smoke and '--no-gpu' in subprocess.run(
                   [sys.executable, '-m', 'melanoma.cli', 'train', '--help'], capture_output=True, text=True).stdout else [])
        r = run(cmd)
        auc = WORK / 'gpu-models' / name / 'oof_auc.json'
        ips = json.loads(auc.read_text()).get('train_images_per_s') if auc.is_file() else None
        row = dict(arch=arch, size=int(size), bs=a.bs, train_images_per_s=round(ips, 1) if ips else None,
                   **{k: v for k, v in r.items() if k != 'tail'})
        if r['rc']: row['error'] = r['tail'][-600:]
        res['rows'].append(row); print({k: v for k, v in row.items() if k != 'error'}, flush=True)
        if r['rc']: print(r['tail'][-600:], flush=True)
    shared = Path(os.environ.get('MELANOMA_SHARED_DATA', ROOT.parent / 'shared' / 'data'))
    has_real = (shared / 'siim-isic-2020-mini').is_dir()
    if a.real and not a.cpu_smoke and not has_real:
        print(f'--real: {shared}/siim-isic-2020-mini is not here (../shared does not travel to the device machine); skipped', flush=True)
    elif a.real and not a.cpu_smoke:
        name = 'gpu-real-384'
        shutil.rmtree(WORK / 'gpu-models' / name, ignore_errors=True)
        r = run([sys.executable, '-m', 'melanoma.cli', 'train', '--data', str(shared / 'siim-isic-2020-mini'), '--extra',
                 str(shared / 'isic-2019-mini'), '--size', '384', '--fold', '0', '--name', name, '--models-dir', str(WORK / 'gpu-models')],
                env={**os.environ, 'MELANOMA_CACHE': str(WORK / 'cache')})
        auc = WORK / 'gpu-models' / name / 'oof_auc.json'
        res['real'] = dict(**{k: v for k, v in r.items() if k != 'tail'}, **(json.loads(auc.read_text()) if auc.is_file() else {'tail': r['tail']}))
        print('real:', {k: res['real'].get(k) for k in ('wall_s', 'host_rss_gib', 'gpu_mem_mib', 'gpu_util_mean', 'sources', 'train_images_per_s')}, flush=True)
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / 'gpu.json').write_text(json.dumps(res, indent=1))


if __name__ == '__main__':
    main()
