"""Data-parallel training proven on the CPU: `accelerate launch --multi_gpu --num_processes 2 -m melanoma.cli train`
(gloo when there is no GPU) against one process with the same global batch, both stages, on generated data."""
import json, os, re, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest
from test_train import make_isic2019

ARGS = ['--size', '32', '--epochs', '2', '--pretrain-epochs', '1', '--n-folds', '2', '--tta', '1', '--workers', '1']


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    env.pop('MELANOMA_CRASH_AT', None)
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    return r


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_two_processes_match_one(tmp_path):
    pytest.importorskip('accelerate')
    from melanoma.sample import make_sample_data
    data = make_sample_data(tmp_path / 'siim', n_train=40, n_test=4, size=48, seed=1, progress=False, dicom=0)
    extra = make_isic2019(data, tmp_path / 'isic2019', n=24)
    common = ['train', '--data', str(data), '--extra', str(extra), '--models-dir', str(tmp_path / 'models'), *ARGS]
    run([sys.executable, '-m', 'melanoma.cli', *common, '--name', 'one', '--bs', '16'])
    accelerate = Path(sys.executable).parent / 'accelerate'
    # accelerate's `--cpu` launcher starts one process; `--multi_gpu` starts several and `train` uses gloo without a GPU
    run([str(accelerate), 'launch', '--multi_gpu', '--num_processes', '2', '--num_machines', '1', '--mixed_precision', 'no',
         '--dynamo_backend', 'no', '-m', 'melanoma.cli', *common, '--name', 'two', '--bs', '8'])  # the same global batch of 16
    one, two = tmp_path / 'models' / 'one', tmp_path / 'models' / 'two'
    assert {p.name for p in one.iterdir()} == {p.name for p in two.iterdir()} >= {'pretrain.safetensors', 'fold0.safetensors', 'fold1.safetensors', 'oof.csv'}
    a, b = (pd.read_csv(r / 'oof.csv', dtype={'image_id': str}).sort_values(['fold', 'image_id'], ignore_index=True) for r in (one, two))
    assert a[['image_id', 'fold', 'source', 'target']].equals(b[['image_id', 'fold', 'source', 'target']])
    main = b[b.source == 'siim2020']
    assert main.image_id.is_unique and len(main) == 40  # every competition image scored once, by its own fold
    # batch norm statistics (per process on the CPU) and augmentation draws differ: close, not equal
    assert np.abs(a.pred - b.pred).max() < 0.05 and np.corrcoef(a.pred, b.pred)[0, 1] > 0.7
    ma, mb = (pd.read_csv(r / 'metrics.csv') for r in (one, two))
    assert ma[['fold', 'epoch', 'stage']].equals(mb[['fold', 'epoch', 'stage']]) and list(mb.stage).count('pretrain') == 1
    # each process trained on its half of every epoch: stage 1 and the folds alike
    imgs = lambda r: [int(m) for m in re.findall(r'\((\d+) images', (r / 'train.log').read_text())]
    n1, n2 = imgs(one), imgs(two)
    assert len(n1) == len(n2) == 5 and all(abs(y - x / 2) <= 8 for x, y in zip(n1, n2)), (n1, n2)
    assert json.loads((two / 'config.json').read_text())['train_args']['bs'] == 8
