"A `melanoma train` killed with SIGKILL in the middle of a fold continues from its last finished epoch and ends as an uninterrupted run."
import json, os, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest
from safetensors.torch import load_file

ARGS = ['--size', '32', '--bs', '8', '--epochs', '2', '--freeze-epochs', '1', '--n-folds', '2', '--fold', '0', '--tta', '1', '--workers', '1']


def melanoma_train(data: Path, models: Path, name: str, crash: str | None = None, args=ARGS) -> subprocess.CompletedProcess:
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONHASHSEED': '0'}
    env.pop('MELANOMA_CRASH_AT', None)
    if crash: env['MELANOMA_CRASH_AT'] = crash
    return subprocess.run([sys.executable, '-m', 'melanoma.cli', 'train', '--data', str(data), '--name', name, '--models-dir', str(models), *args],
                          env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.timeout(900)
def test_killed_mid_fold_resumes_to_the_same_result(tmp_path):
    from melanoma.sample import make_sample_data
    data = make_sample_data(tmp_path / 'siim', n_train=40, n_test=4, size=48, seed=1, progress=False, dicom=0)
    models = tmp_path / 'models'
    ref = melanoma_train(data, models, 'ref')
    assert ref.returncode == 0, ref.stderr[-3000:]
    # fold 0 has 3 epochs (1 frozen + 2 full): killed in the second batch of its last epoch
    r = melanoma_train(data, models, 'cut', crash='0:2:1')
    assert r.returncode == -9, (r.returncode, r.stderr[-3000:])
    run = models / 'cut'
    ck = run / 'checkpoint-fold0.safetensors'
    assert ck.is_file() and not (run / 'fold0.safetensors').exists()
    from safetensors import safe_open
    with safe_open(str(ck), 'pt') as f: st = json.loads(f.metadata()['melanoma_checkpoint'])
    assert (st['stage'], st['epoch'], [x['stage'] for x in st['records']]) == ('full', 1, ['frozen', 'full'])
    r = melanoma_train(data, models, 'cut')  # the same command again
    assert r.returncode == 0, r.stderr[-3000:]
    assert not ck.exists() and {p.name for p in (models / 'ref').iterdir()} == {p.name for p in run.iterdir()}
    a, b = (pd.read_csv(models / n / 'oof.csv') for n in ('ref', 'cut'))
    assert a[['image_id', 'fold']].equals(b[['image_id', 'fold']])
    np.testing.assert_allclose(a.pred, b.pred, atol=1e-6)
    ma, mb = (pd.read_csv(models / n / 'metrics.csv') for n in ('ref', 'cut'))
    assert list(ma.stage) == ['frozen', 'full', 'full'] and ma[['fold', 'epoch', 'stage']].equals(mb[['fold', 'epoch', 'stage']])
    np.testing.assert_allclose(ma[['train_loss', 'valid_loss', 'auc']].to_numpy(), mb[['train_loss', 'valid_loss', 'auc']].to_numpy(), atol=1e-6)
    wa, wb = (load_file(str(models / n / 'fold0.safetensors')) for n in ('ref', 'cut'))
    assert wa.keys() == wb.keys() and max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa) < 1e-5


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_killed_in_stage1_resumes_to_the_same_result(tmp_path):
    "Stage 1 (the extra data alone) killed in its second epoch continues from its checkpoint; the folds then run as usual."
    from melanoma.sample import make_sample_data
    from test_train import make_isic2019
    data = make_sample_data(tmp_path / 'siim', n_train=40, n_test=4, size=48, seed=1, progress=False, dicom=0)
    extra = make_isic2019(data, tmp_path / 'isic2019', n=24)
    args = ['--extra', str(extra), '--pretrain-epochs', '2', '--size', '32', '--bs', '8', '--epochs', '1', '--n-folds', '2', '--fold', '0',
            '--tta', '1', '--workers', '1']
    models = tmp_path / 'models'
    assert melanoma_train(data, models, 'ref', args=args).returncode == 0
    r = melanoma_train(data, models, 'cut', crash='-1:1:0', args=args)
    assert r.returncode == -9 and (models / 'cut' / 'checkpoint-pretrain.safetensors').is_file() and not (models / 'cut' / 'pretrain.safetensors').exists()
    r = melanoma_train(data, models, 'cut', args=args)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not (models / 'cut' / 'checkpoint-pretrain.safetensors').exists()
    pa, pb = (load_file(str(models / n / 'pretrain.safetensors')) for n in ('ref', 'cut'))
    assert max(float((pa[k].float() - pb[k].float()).abs().max()) for k in pa) < 1e-5
    ma, mb = (pd.read_csv(models / n / 'metrics.csv') for n in ('ref', 'cut'))
    assert list(ma.stage) == ['pretrain', 'pretrain', 'full']
    np.testing.assert_allclose(ma[['train_loss', 'valid_loss']].to_numpy(), mb[['train_loss', 'valid_loss']].to_numpy(), atol=1e-6)
    a, b = (pd.read_csv(models / n / 'oof.csv') for n in ('ref', 'cut'))
    np.testing.assert_allclose(a.pred, b.pred, atol=1e-6)
