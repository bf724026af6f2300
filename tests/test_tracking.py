"""Training curves and trackers (issue 24 item 2): a run folder holds its curves (and lr_find.png with --lr find),
`TrainConfig.cbs` reaches every fit, and `--log wandb|tensorboard|mlflow` sends each fold's epochs and the OOF AUCs
to the tracker, read back here offline: W&B's offline run file, TensorBoard's event files, MLflow's local store."""
import functools, importlib.util, json, shutil, subprocess, sys
from pathlib import Path
import pandas as pd, pytest
from fastai.callback.core import Callback
from fastai.learner import Learner
from melanoma.core import MelanomaError
from melanoma.train import TrainConfig, train

EPOCH_KEYS = {'fold0/train_loss', 'fold0/valid_loss', 'fold0/auc'}


@pytest.fixture
def data(sample_data, tmp_path) -> Path:
    "A private copy of the synthetic data set (train writes folds.csv into it)."
    return Path(shutil.copytree(sample_data, tmp_path / 'siim'))


def need(module: str):
    if importlib.util.find_spec(module) is None: pytest.skip(f'{module} not installed (pip install "melanoma[tracking]")')


def run(data, tmp_path, **kw) -> Path:
    "A --debug run of fold 0 (two folds exist) with the settings `kw`."
    return train(data, debug=True, fold='0', models_dir=tmp_path / 'models', name='t', progress=False, **kw)


def oof_auc(run_dir: Path) -> float: return json.loads((run_dir / 'oof_auc.json').read_text())['auc']


class Count(Callback):
    "Counts the fits and epochs it takes part in."
    def __init__(self): self.fits, self.epochs = 0, 0
    def before_fit(self): self.fits += 1
    def after_epoch(self): self.epochs += 1


def test_curves_lr_find_and_own_callbacks(data, tmp_path, monkeypatch):
    monkeypatch.setattr(Learner, 'lr_find', functools.partialmethod(Learner.lr_find, num_it=12))  # a short sweep
    cb = Count()
    r = run(data, tmp_path, freeze_epochs=1, lr='find', cbs=[cb])
    for f in ('curves-fold0.png', 'curves.png', 'lr_find.png'):
        assert (r / f).stat().st_size > 1000, f
        assert (r / f).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n', f
    lf = pd.read_csv(r / 'lr_find.csv')
    assert set(lf.fold) == {0} and lf.valley.gt(0).all()
    assert (cb.fits, cb.epochs) == (2, 2)  # the frozen and the full fit of fold 0 (lr_find's fit does not get it), one epoch each
    assert not list(r.glob('.*.tmp')) and not list(r.glob('.curves*'))  # written atomically: no leftovers


def test_tensorboard_reads_back(data, tmp_path):
    need('tensorboard')
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    r = run(data, tmp_path, log=['tensorboard'])
    ea = EventAccumulator(str(r / 'tensorboard')); ea.Reload()
    tags = set(ea.Tags()['scalars'])
    assert EPOCH_KEYS | {'oof/auc', 'oof/auc_fold0'} <= tags, tags
    vl = pd.read_csv(r / 'metrics.csv').query('fold == 0').valid_loss.tolist()
    assert [e.value for e in ea.Scalars('fold0/valid_loss')] == pytest.approx(vl, rel=1e-5)
    assert ea.Scalars('oof/auc')[0].value == pytest.approx(oof_auc(r), rel=1e-5)


def test_mlflow_reads_back(data, tmp_path, monkeypatch):
    need('mlflow')
    monkeypatch.setenv('MLFLOW_TRACKING_URI', (tmp_path / 'mlruns').as_uri())
    monkeypatch.setenv('MLFLOW_ALLOW_FILE_STORE', 'true')
    r = run(data, tmp_path, log=['mlflow'])
    from mlflow import MlflowClient
    c = MlflowClient()
    (mr,) = c.search_runs([c.get_experiment_by_name('melanoma').experiment_id])
    assert mr.info.run_name == 't' and mr.info.status == 'FINISHED'
    assert EPOCH_KEYS | {'oof/auc', 'oof/auc_fold0'} <= set(mr.data.metrics)
    assert mr.data.metrics['oof/auc'] == pytest.approx(oof_auc(r))
    assert mr.data.params['arch'] == 'tf_efficientnet_lite0' and mr.data.params['size'] == '64' and 'cbs' not in mr.data.params
    h = c.get_metric_history(mr.info.run_id, 'fold0/valid_loss')
    assert [m.step for m in h] == [0] and h[0].value == pytest.approx(pd.read_csv(r / 'metrics.csv').query('fold == 0').valid_loss.iloc[0])


def test_wandb_offline_reads_back(data, tmp_path, monkeypatch):
    need('wandb')
    for k, v in dict(WANDB_MODE='offline', WANDB_SILENT='true', WANDB_PROJECT='melanoma-test').items(): monkeypatch.setenv(k, v)
    monkeypatch.delenv('WANDB_DIR', raising=False)
    r = run(data, tmp_path, log=['wandb'])
    (d,) = (r / 'wandb').glob('offline-run-*')
    out = subprocess.run([str(Path(sys.executable).with_name('wandb')), 'leet', 'inspect', '--json', str(d)],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    recs = [json.loads(l) for l in out.splitlines() if l.startswith('{')]
    hist = {k: v for x in recs if x['type'] == 'history' for k, v in x['history']['item'].items()}
    summ = {k: v for x in recs if x['type'] == 'summary' for k, v in x['summary']['update'].items()}
    cfg = next(x['run']['config']['update'] for x in recs if x['type'] == 'run')
    assert EPOCH_KEYS | {'fold0/epoch'} <= set(hist), sorted(hist)
    assert hist['fold0/valid_loss'] == pytest.approx(pd.read_csv(r / 'metrics.csv').query('fold == 0').valid_loss.iloc[-1])
    assert summ['oof/auc'] == pytest.approx(oof_auc(r))
    assert cfg['arch'] == 'tf_efficientnet_lite0' and cfg['name'] == 't'


def test_log_names_and_missing_packages(monkeypatch):
    assert TrainConfig(data='x', log='tensorboard,mlflow').checked().log == ['tensorboard', 'mlflow'] if all(
        importlib.util.find_spec(m) for m in ('tensorboard', 'mlflow')) else True
    with pytest.raises(MelanomaError, match='--log neptune'): TrainConfig(data='x', log=['neptune']).checked()
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *a: None if name == 'wandb' else real(name, *a))
    with pytest.raises(MelanomaError, match=r'--log wandb .*melanoma\[tracking\]'): TrainConfig(data='x', log=['wandb']).checked()


def test_cli_takes_several_trackers():
    from melanoma.cli import command_parser, load_command
    p = command_parser(load_command('train'), 'melanoma train', 'train')
    assert p.parse_args(['d', '--log', 'wandb', 'tensorboard']).log == ['wandb', 'tensorboard']
    assert p.parse_args(['d', '--log', 'mlflow', '--log', 'wandb']).log == ['mlflow', 'wandb']
    assert p.parse_args(['d']).log is None
    with pytest.raises(SystemExit): p.parse_args(['d', '--log', 'neptune'])
    assert '--cbs' not in p.format_help()
