"The Gradio demo: predict_image directly, and the running app through gradio_client (127.0.0.1 only)."
import io, struct, zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import numpy as np
import pytest
from PIL import Image

from melanoma.core import MelanomaError
from melanoma import app as A

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
    app = A.build_app(model=m, examples=[])
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
    app = A.build_app(model=model, examples=EXAMPLES)
    url = A.start_app(app, max_file_size='1mb')
    try: yield Client(url, verbose=False, analytics_enabled=False, download_files=False)
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
    from melanoma.model import load_model, prior_shift
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
    app = A.build_app(model=m, examples=[])
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
    app = A.build_app(model=m, examples=[])
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
