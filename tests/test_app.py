"""The Gradio demo: predict_image directly, the running app through gradio_client (127.0.0.1 only), the lesion outline
and measurements of a segmentation model, and `melanoma demo --export` (a Hugging Face Space folder, served from a fresh venv)."""
import io, os, struct, subprocess, sys, sysconfig, time, zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import numpy as np
import pytest
from PIL import Image

from melanoma.core import MelanomaError
from melanoma import app as A
from melanoma import space as SP

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / 'app' / 'examples'


OP = dict(target_sensitivity=0.95, threshold=0.4, sensitivity=0.96, specificity=0.55, n=120, positives=25, prevalence=0.3)

def make_model_dir(dest: Path, size: int = 64, meta: bool = False, calibrated: bool = False) -> Path:
    "A small untrained model artifact (resnet18, 2 folds) saved the way `melanoma train` saves one (with `calibrated`, its training prevalence and operating point)."
    import torch
    from melanoma.model import create_model, save_model, meta_dim
    torch.manual_seed(0)
    nets = [create_model('resnet18', pretrained=False, n_meta=meta_dim() if meta else 0) for _ in range(2)]
    save_model(nets, dest, dict(size=size, **(dict(train_prevalence=0.3, operating_point=OP) if calibrated else {})))
    (dest / 'oof_auc.json').write_text('{"auc": 0.75}')
    return dest


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp('models') / 'tiny')


def make_seg_dir(root: Path) -> Path:
    "A segmentation model trained for a few seconds on synthetic lesions (`melanoma seg train`'s artifact: seg.safetensors + config.json)."
    from melanoma.segment import make_seg_sample, train_seg
    d = make_seg_sample(root / 'segdata', 'isic2017', n_train=24, n_valid=4)
    train_seg(d, name='seg', models_dir=root / 'models', epochs=3, bs=8, size=(48, 64), progress=False, threads=1)
    return root / 'models' / 'seg'


@pytest.fixture(scope='module')
def seg_dir(tmp_path_factory) -> Path:
    return make_seg_dir(tmp_path_factory.mktemp('seg'))


@pytest.fixture(scope='module')
def seg(seg_dir):
    from melanoma.segment import load_seg_model
    return load_seg_model(seg_dir, device='cpu')


@pytest.fixture(scope='module')
def model(model_dir):
    from melanoma.model import load_model
    return load_model(model_dir, device='cpu')


@pytest.fixture(scope='module')
def files(tmp_path_factory) -> dict[str, Path]:
    "Good and bad uploads of every kind the demo must cope with."
    d = tmp_path_factory.mktemp('uploads')
    base = Image.open(EXAMPLES / 'synthetic_melanoma.jpg').convert('RGB').resize((96, 64))
    f = {}
    f['jpeg'] = EXAMPLES / 'synthetic_melanoma.jpg'
    f['dicom'] = EXAMPLES / 'synthetic_melanoma_dicom.dcm'
    base.convert('RGBA').save(f.setdefault('rgba', d / 'rgba.png'))
    base.convert('L').save(f.setdefault('gray', d / 'gray.png'))
    base.convert('CMYK').save(f.setdefault('cmyk', d / 'cmyk.jpg'))
    Image.fromarray((np.asarray(base.convert('L'), np.uint16) * 257)).save(f.setdefault('gray16', d / 'gray16.png'))
    ex = Image.Exif(); ex[0x0112] = 6  # orientation: rotate 90° clockwise to view
    base.save(f.setdefault('exif', d / 'exif.jpg'), exif=ex)
    (d / 'notimage.jpg').write_text('this is not an image\n'); f['notimage'] = d / 'notimage.jpg'
    (d / 'empty.png').write_bytes(b''); f['empty'] = d / 'empty.png'
    buf = io.BytesIO(); base.save(buf, 'JPEG'); (d / 'truncated.jpg').write_bytes(buf.getvalue()[:len(buf.getvalue()) // 3])
    f['truncated'] = d / 'truncated.jpg'
    f['bomb'] = d / 'bomb.png'; f['bomb'].write_bytes(png_bomb(60000, 60000))
    return f


def png_bomb(w: int, h: int) -> bytes:
    "A tiny PNG whose header claims w x h pixels (a decompression bomb)."
    def chunk(t, data): return struct.pack('>I', len(data)) + t + data + struct.pack('>I', zlib.crc32(t + data) & 0xffffffff)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(b'\x00' * 64)) + chunk(b'IEND', b''))


GOOD = ['jpeg', 'dicom', 'rgba', 'gray', 'cmyk', 'gray16', 'exif']
BAD = ['notimage', 'empty', 'truncated', 'bomb']


# --- without the UI ---------------------------------------------------------------------------------------------

def test_find_model(tmp_path, model_dir):
    with pytest.raises(MelanomaError, match='make demo'): A.find_model(tmp_path)
    assert A.find_model(model_dir.parent) == model_dir


def test_predict_image(model, files):
    for k in GOOD:
        r = A.predict_image(model, files[k], heatmap=(k == 'jpeg'))
        assert 0 <= r['probability'] <= 1, k
        assert r['label'] in ('melanoma', 'not melanoma') and r['image'].mode == 'RGB', k
    r = A.predict_image(model, files['jpeg'])
    assert r['heatmap'].size == r['image'].size and r['heatmap'].mode == 'RGB'
    assert A.predict_image(model, files['exif'], heatmap=False)['image'].size == (64, 96)  # EXIF rotation applied
    assert A.predict_image(model, Image.open(files['rgba']), heatmap=False)['image'].mode == 'RGB'
    assert A.predict_image(model, files['jpeg'], threshold=0.0, heatmap=False)['label'] == 'melanoma'
    assert A.predict_image(model, files['jpeg'], threshold=1.01, heatmap=False)['label'] == 'not melanoma'


def test_predict_image_bad_files(model, files):
    for k in BAD:
        with pytest.raises(MelanomaError) as e: A.predict_image(model, files[k])
        assert files[k].name in str(e.value), (k, str(e.value))


def test_metadata_model(tmp_path, files):
    from melanoma.model import load_model
    from gradio_client import Client, handle_file
    m = load_model(make_model_dir(tmp_path / 'meta', meta=True), device='cpu')
    assert A.uses_metadata(m)
    p = A.predict_image(m, files['jpeg'], age=50, sex='male', site='torso', heatmap=False)['probability']
    assert 0 <= p <= 1
    assert 0 <= A.predict_image(m, files['dicom'], heatmap=False)['probability'] <= 1  # sex/age/site from the tags
    with pytest.raises(MelanomaError, match='age'): A.predict_image(m, files['jpeg'], age=300)
    app = A.build_app(model=m, examples=[], seg_model_dir=False)
    url = A.start_app(app)
    try:
        c = Client(url, verbose=False, analytics_enabled=False, download_files=False)
        verdict = c.predict(handle_file(str(files['jpeg'])), '50', 'male', 'torso', False, 0.5, None, api_name='/predict')[1]
        assert f'{A.predict_image(m, files["jpeg"], age=50, sex="male", site="torso", heatmap=False)["probability"]:.3f}' in verdict
    finally: app.close()


def test_no_model_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MelanomaError, match='melanoma train'): A.build_app()


# --- the running app, through gradio_client --------------------------------------------------------------------

@pytest.fixture(scope='module')
def client(model):
    from gradio_client import Client
    app = A.build_app(model=model, examples=EXAMPLES, seg_model_dir=False)
    url = A.start_app(app, max_file_size='1mb')
    # a transport timeout above httpx's 5 s: 20 uploads at once on two busy cores can wait longer than that for the server,
    # and what the tests bound is the answer (`result(timeout=...)`), not each upload
    try: yield Client(url, verbose=False, analytics_enabled=False, download_files=False, httpx_kwargs={'timeout': 120})
    finally: app.close()


def ask(client, path, heatmap=True, threshold=0.5):
    from gradio_client import handle_file
    return client.predict(handle_file(str(path)), '', '', '', heatmap, threshold, None, api_name='/predict')


def test_app_predicts(client, files):
    label, verdict, shown, cam = ask(client, files['jpeg'])
    p = {c['label']: c['confidence'] for c in label['confidences']}['melanoma']
    assert 0 <= p <= 1 and f'{p:.3f}' in verdict
    assert cam is not None and shown is not None
    label, verdict, shown, cam = ask(client, files['dicom'], heatmap=False)
    assert cam is None and 'probability' in verdict


def test_app_bad_files(client, files, tmp_path):
    from gradio_client.exceptions import AppError
    for k in BAD:
        with pytest.raises(AppError) as e: ask(client, files[k])
        assert files[k].name in str(e.value) and '/tmp/gradio' not in str(e.value), (k, str(e.value))
    (tmp_path / 'notes.txt').write_text('hello')
    with pytest.raises(AppError, match='Invalid file type'): ask(client, tmp_path / 'notes.txt')
    big = tmp_path / 'big.png'
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (800, 800, 3), dtype=np.uint8)).save(big)
    with pytest.raises(Exception, match='(?i)too large|size'): ask(client, big)
    assert ask(client, files['gray'], heatmap=False)[1]  # still serving


def test_app_concurrent(client, files):
    from gradio_client import handle_file
    jobs = [client.submit(handle_file(str(files['jpeg'])), '', '', '', False, 0.5, None, api_name='/predict') for _ in range(20)]
    res = [j.result(timeout=120) for j in jobs]
    assert len(res) == 20 and len({r[1] for r in res}) == 1  # all answered, same verdict


def test_real_dicom(model, siim_mini):
    "The biggest real competition DICOM (up to 6000x4000) decodes, scores and gets its heatmap at display size."
    dcm = max((siim_mini / 'train').glob('*.dcm'), key=lambda p: p.stat().st_size)
    r = A.predict_image(model, dcm)
    assert 0 <= r['probability'] <= 1 and max(r['image'].size) <= A.DISPLAY and r['heatmap'].size == r['image'].size
    a = np.asarray(r['image'], np.float32)
    assert a[..., 0].mean() > a[..., 2].mean()  # skin: red above blue


def test_calibrated_model(tmp_path, files):
    "Probability at the prevalence asked for; the default threshold is the operating point moved with it, so the verdict stays."
    from melanoma.model import load_model
    from melanoma.metrics import prior_shift
    from gradio_client import Client, handle_file
    m = load_model(make_model_dir(tmp_path / 'cal', calibrated=True), device='cpu')
    r0 = A.predict_image(m, files['jpeg'], heatmap=False)
    assert r0['prevalence'] == 0.3 and r0['threshold'] == OP['threshold'] and 'prevalence 0.3' in r0['verdict']
    for prev in (0.01, A.DEMO_PREVALENCE, 0.5):
        r = A.predict_image(m, files['jpeg'], heatmap=False, prevalence=prev)
        assert np.isclose(r['probability'], prior_shift(r0['probability'], 0.3, prev), atol=1e-6)
        assert np.isclose(r['threshold'], prior_shift(OP['threshold'], 0.3, prev)) and r['label'] == r0['label']
        assert f'prevalence {prev:g}' in r['verdict']
    t, note = A.decision_threshold(m, 0.05)
    assert np.isclose(t, prior_shift(0.4, 0.3, 0.05)) and '95%' in note and 'out-of-fold' in note
    assert A.decision_threshold(load_model(make_model_dir(tmp_path / 'plain'), device='cpu'))[0] == 0.5
    app = A.build_app(model=m, examples=[], seg_model_dir=False)
    url = A.start_app(app)
    try:
        c = Client(url, verbose=False, analytics_enabled=False, download_files=False)
        label, verdict, *_ = c.predict(handle_file(str(files['jpeg'])), '', '', '', False, t, 0.05, api_name='/predict')
        p = {x['label']: x['confidence'] for x in label['confidences']}['melanoma']
        assert np.isclose(p, prior_shift(r0['probability'], 0.3, 0.05), atol=1e-3) and 'prevalence 0.05' in verdict
        from gradio_client.exceptions import AppError
        with pytest.raises(AppError, match='prevalence'): c.predict(handle_file(str(files['jpeg'])), '', '', '', False, t, 0, api_name='/predict')
    finally: app.close()


from test_inference import mc_model  # noqa: E402,F401 (the tiny multi-class model trained in the test)


def test_multiclass_model_names_diagnoses(mc_model, files):
    "A multi-class model: the demo also lists the most likely diagnoses (a binary model's output is unchanged)."
    from melanoma.model import load_model, DIAG_CLASSES
    from gradio_client import Client, handle_file
    m = load_model(mc_model[0], device='cpu')
    r = A.predict_image(m, files['jpeg'], heatmap=False)
    dx = r['diagnoses']
    assert sorted(k.split('(')[-1].rstrip(')') for k in dx) == sorted(DIAG_CLASSES) and 'melanoma (MEL)' in dx
    assert np.isclose(sum(dx.values()), 1, atol=1e-5) and list(dx.values()) == sorted(dx.values(), reverse=True)
    app = A.build_app(model=m, examples=[], seg_model_dir=False)
    url = A.start_app(app)
    try:
        c = Client(url, verbose=False, analytics_enabled=False, download_files=False)
        prev = A.DEMO_PREVALENCE if m.train_prevalence is not None else None
        label, verdict, shown, cam, diag = c.predict(handle_file(str(files['jpeg'])), '', '', '', True, 0.5, prev, api_name='/predict')
        top = [x['label'] for x in diag['confidences']]
        assert top[:3] == list(dx)[:3] and cam is not None
    finally: app.close()


def test_heatmap_leaves_the_lesion_visible(model, files):
    "The Grad-CAM overlay at the shown image's full resolution: at most half colour anywhere, cold pixels untouched."
    from melanoma.explain import gradcam
    r = A.predict_image(model, files['jpeg'])
    img, ov = np.asarray(r['image'], float), np.asarray(r['heatmap'], float)
    heat = gradcam(model, r['image'])
    assert ov.shape == img.shape and heat.shape == img.shape[:2]
    diff = np.abs(ov - img).max(-1)
    assert (diff <= 0.5 * 255 * heat + 1.5).all()
    cold = heat < 0.05
    if cold.any(): assert diff[cold].max() <= 0.05 * 0.5 * 255 + 1.5


# --- the lesion outline and measurements (a segmentation model) -------------------------------------------------

SEG_LABELS = ('Lesion area', 'Asymmetry', 'Border irregularity', 'Colour variegation')


def test_find_seg_model(tmp_path, seg_dir):
    assert A.find_seg_model(tmp_path) is None
    assert A.find_seg_model(seg_dir.parent) == seg_dir
    with pytest.raises(MelanomaError, match='no trained model'): A.find_model(seg_dir.parent)  # not a classifier


def test_draw_outline():
    "A line of the outline colour just outside the mask, all around it; the lesion's own pixels are untouched."
    yy, xx = np.mgrid[:100, :140]
    disc = (xx - 70) ** 2 + (yy - 50) ** 2 <= 25 ** 2
    img = Image.fromarray(np.where(disc[..., None], [90, 60, 40], [210, 170, 150]).astype(np.uint8))
    out = A.draw_outline(img, disc)
    a, o = np.asarray(img), np.asarray(out)
    line = (a != o).any(-1)
    assert out.size == img.size and out.mode == 'RGB' and line.any() and not line[disc].any()
    assert (o[line] == A.OUTLINE_COLOUR).all()
    for y in range(30, 71, 5):
        xs, inside = np.flatnonzero(line[y]), np.flatnonzero(disc[y])
        assert xs.min() < inside.min() and xs.max() > inside.max(), y
    assert A.draw_outline(img, np.zeros((10, 14), bool)).tobytes() == img.tobytes()


def test_predict_image_with_seg(model, seg, files):
    from melanoma.segment import MEASURE_COLUMNS
    r = A.predict_image(model, files['jpeg'], seg=seg)
    shown, o, m = np.asarray(r['image']), np.asarray(r['outline']), r['mask']
    assert r['outline'].size == r['image'].size and m.shape == shown.shape[:2] and m.dtype == bool
    assert set(r['measurements']) == set(MEASURE_COLUMNS)
    assert 0.02 < r['measurements']['area_frac'] < 0.6  # the synthetic lesion, found by the tiny model
    assert (o[m] == shown[m]).all() and (o != shown).any()  # the lesion stays visible inside its outline
    md = A.measurements_markdown(r['measurements'])
    assert all(lab in md for lab in SEG_LABELS) and f"{r['measurements']['area_frac']:.1%}" in md
    assert A.predict_image(model, files['dicom'], heatmap=False, seg=seg)['outline'].size == (256, 256)
    r = A.predict_image(model, files['jpeg'], heatmap=False)
    assert r['outline'] is None and r['measurements'] is None
    assert A.measurements_markdown(None) == A.NO_SEG_NOTE and 'no segmentation model' in A.NO_SEG_NOTE.lower()


@pytest.fixture(scope='module')
def seg_client(model, seg_dir, tmp_path_factory):
    from gradio_client import Client
    app = A.build_app(model=model, examples=EXAMPLES, seg_model_dir=seg_dir)
    url = A.start_app(app)
    try: yield Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path_factory.mktemp('downloads')))
    finally: app.close()


def test_app_outline_and_measurements(seg_client, files):
    from gradio_client import handle_file
    for k in ('jpeg', 'dicom'):
        label, verdict, shown, cam, outline, measures = seg_client.predict(
            handle_file(str(files[k])), '', '', '', k == 'jpeg', 0.5, None, api_name='/predict')
        assert Image.open(outline).size == Image.open(shown).size == (256, 256), k
        assert all(lab in measures for lab in SEG_LABELS) and 'probability' in verdict, k
    assert (cam is None) and Image.open(outline).mode == 'RGB'


def test_default_seg_model(tmp_path, monkeypatch, model_dir, seg_dir):
    "build_app() uses the newest models/*/seg.safetensors; seg_model_dir=False (`--no-seg`) or none there: a plain note."
    import shutil
    monkeypatch.chdir(tmp_path)
    shutil.copytree(model_dir, tmp_path / 'models' / 'cls')
    def parts(app): return {b.elem_id: b for b in app.blocks.values() if getattr(b, 'elem_id', None)}
    c = parts(A.build_app(examples=[]))
    assert not c['outline'].visible and c['seg-info'].value == A.NO_SEG_NOTE  # as before: no segmentation model
    shutil.copytree(seg_dir, tmp_path / 'models' / 'seg')
    c = parts(A.build_app(examples=[]))
    assert c['outline'].visible and c['measurements'].visible and '**seg**' in c['seg-info'].value
    assert not parts(A.build_app(examples=[], seg_model_dir=False))['outline'].visible
    with pytest.raises(MelanomaError, match='not a segmentation model'): A.build_app(examples=[], seg_model_dir=tmp_path / 'models' / 'cls')


def test_demo_cli_options(tmp_path):
    from melanoma.cli import main
    with pytest.raises(SystemExit, match='exclude each other'): main(['demo', '--seg-model', 'x', '--no-seg'])
    with pytest.raises(SystemExit, match='only go with --export'): main(['demo', '--pin', '--model', str(tmp_path)])


# --- `melanoma demo --export`: a Hugging Face Space folder --------------------------------------------------------

def test_export_space(tmp_path, model_dir, seg_dir):
    import gradio, yaml
    from melanoma import __version__
    out = SP.export_space(tmp_path / 'space', model_dir, seg_dir, pin=True, title='Melanoma: a demo')
    got = {str(p.relative_to(out)) for p in out.rglob('*') if p.is_file()}
    assert {'app.py', 'requirements.txt', 'README.md', '.gitattributes', 'models/tiny/config.json', 'models/tiny/oof_auc.json',
            'models/tiny/fold0.safetensors', 'models/tiny/fold1.safetensors', 'models/seg/config.json',
            'models/seg/seg.safetensors', 'examples/synthetic_melanoma.jpg'} <= got
    assert not any(f.endswith(('.pkl', '.pt', '.pth', '.whl')) for f in got)
    meta = yaml.safe_load((out / 'README.md').read_text().split('---\n')[1])
    assert meta['sdk'] == 'gradio' and meta['sdk_version'] == gradio.__version__ and meta['app_file'] == 'app.py'
    # the licence follows the training data (`melanoma.card.card_license`); this model's data is unknown: `other`
    assert meta['license'] == 'other' and meta['title'] == 'Melanoma: a demo' and len(meta['short_description']) <= 60
    assert (out / 'requirements.txt').read_text().split() == [f'melanoma[demo]=={__version__}', f'gradio=={gradio.__version__}']
    assert (out / 'app.py').read_text() == SP.SPACE_APP == (REPO / 'app' / 'app.py').read_text()  # the repo's app is the Space's
    with pytest.raises(MelanomaError, match='not empty'): SP.export_space(out, model_dir, pin=True)
    (tmp_path / 'x.whl').write_text('no')
    with pytest.raises(MelanomaError, match='not a melanoma wheel'): SP.export_space(tmp_path / 's2', model_dir, False, wheel=tmp_path / 'x.whl')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['space', 'x.whl']  # nothing half-written
    lic = SP.export_space(tmp_path / 's3', model_dir, False, pin=True, license='cc-by-nc-4.0')
    assert 'license: cc-by-nc-4.0' in (lic / 'README.md').read_text()


def _wait_for(url: str, proc: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    import urllib.request
    t = time.time()
    while time.time() - t < timeout:
        if proc.poll() is not None: pytest.fail(f'app.py exited with {proc.returncode}:\n{log.read_text()[-3000:]}')
        try:
            with urllib.request.urlopen(url, timeout=5): return
        except OSError: time.sleep(1)
    pytest.fail(f'app.py did not answer on {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}')


@pytest.mark.slow
def test_exported_space_serves_from_a_fresh_venv(tmp_path, model, model_dir, seg_dir, files):
    """Build the wheel, `melanoma demo --export` a Space, install its requirements.txt into a fresh venv, start its
    app.py and get one prediction. To stay offline and cheap, the venv sees this environment's packages (and pip)
    through a .pth file, so `pip install --no-index -r requirements.txt` must find every requirement satisfied there;
    (`--system-site-packages` would show the base interpreter's packages, not this venv's). melanoma itself is not
    importable in that venv: the app runs the bundled wheel."""
    from gradio_client import Client, handle_file
    from melanoma.cli import main
    whl = SP.build_wheel(tmp_path / 'wheels')  # `pip wheel --no-deps` on a copy of the checkout (no build/ left in it)
    space = tmp_path / 'space'
    assert main(['demo', '--export', str(space), '--model', str(model_dir), '--seg-model', str(seg_dir), '--wheel', str(whl)]) == 0
    assert (space / whl.name).is_file() and 'torch' in (space / 'requirements.txt').read_text()
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
    py = str(venv / 'bin' / 'python')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'} | {'OMP_NUM_THREADS': '1', 'PYTHONNOUSERSITE': '1'}
    site = subprocess.check_output([py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], text=True, env=env).strip()
    Path(site, '_test_parent_env.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
    r = subprocess.run([py, '-m', 'pip', 'install', '--no-index', '--disable-pip-version-check', '-r', 'requirements.txt'],
                       cwd=space, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r = subprocess.run([py, '-c', 'import melanoma'], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert 'No module named' in r.stderr  # so what answers below is the wheel
    port, log = A.free_port(), tmp_path / 'space.log'
    with open(log, 'w') as f:
        proc = subprocess.Popen([py, 'app.py'], cwd=space, stdout=f, stderr=subprocess.STDOUT,
                                env=env | {'GRADIO_SERVER_NAME': '127.0.0.1', 'GRADIO_SERVER_PORT': str(port), 'GRADIO_ANALYTICS_ENABLED': 'False'})
    try:
        url = f'http://127.0.0.1:{port}/'
        _wait_for(url, proc, log)
        c = Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path / 'downloads'))
        label, verdict, shown, cam, outline, measures = c.predict(handle_file(str(files['jpeg'])), '', '', '', False, 0.5, None,
                                                                 api_name='/predict')
        p = A.predict_image(model, files['jpeg'], heatmap=False)['probability']
        assert f'{p:.3f}' in verdict and Image.open(outline).size == Image.open(shown).size
        assert all(lab in measures for lab in SEG_LABELS)
    finally:
        proc.terminate()
        try: proc.wait(30)
        except subprocess.TimeoutExpired: proc.kill(); proc.wait()
