"The demo in a real browser: Debian's headless Chromium, driven by selenium, on 127.0.0.1 only (`apt-get install chromium chromium-driver`)."
import os, re, shutil
from pathlib import Path
import numpy as np
import pytest

from test_app import EXAMPLES, OP, SEG_LABELS, make_model_dir, make_seg_dir

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
DRIVER = shutil.which('chromedriver')
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason='chromium and chromium-driver are not installed')


@pytest.fixture(scope='module')
def url(tmp_path_factory):
    from melanoma import app as A
    app = A.build_app(make_model_dir(tmp_path_factory.mktemp('models') / 'tiny'), examples=EXAMPLES, seg_model_dir=False)
    u = A.start_app(app)
    try: yield u
    finally: app.close()


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for a in ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
              '--disable-component-update', '--disable-sync', '--no-first-run', '--window-size=1280,1400',
              f'--user-data-dir={tmp_path / "chromium-profile"}',
              '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1']:  # nothing but 127.0.0.1 is reachable
        o.add_argument(a)
    d = webdriver.Chrome(service=Service(DRIVER), options=o)
    d.set_page_load_timeout(60)
    try: yield d
    finally: d.quit()


def verdict(d) -> str | None:
    "The verdict text once a prediction has finished (None while processing)."
    from selenium.webdriver.common.by import By
    t = d.find_element(By.ID, 'verdict').text
    busy = d.find_elements(By.CSS_SELECTOR, '.progress-text, .eta-bar') or 'processing' in d.find_element(By.TAG_NAME, 'body').text
    return t if re.search(r'probability \d\.\d{3}', t) and not busy else None


def test_upload_and_see_result(url, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from selenium.webdriver.common.keys import Keys
    browser.get(url)
    wait = WebDriverWait(browser, 90)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#upload input[type=file]'))
    assert 'not a medical device' in browser.find_element(By.ID, 'disclaimer').text
    assert 'resnet18' in browser.find_element(By.ID, 'model-info').text
    assert 'No segmentation model is loaded' in browser.find_element(By.ID, 'seg-info').text
    browser.find_element(By.CSS_SELECTOR, '#upload input[type=file]').send_keys(str(EXAMPLES / 'synthetic_melanoma.jpg'))
    wait.until(verdict)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#shown img') and d.find_elements(By.CSS_SELECTOR, '#gradcam img'))
    assert browser.find_element(By.CSS_SELECTOR, '#gradcam img').get_attribute('naturalWidth') not in (None, '0')
    assert not any(e.is_displayed() for e in browser.find_elements(By.CSS_SELECTOR, '#outline, #measurements'))
    src = lambda d: d.find_element(By.CSS_SELECTOR, '#shown img').get_attribute('src')
    first = src(browser)
    # a DICOM, by clicking its example: a new result
    browser.find_element(By.XPATH, "//button[contains(., 'synthetic_melanoma_dicom.dcm')]").click()
    wait.until(lambda d: src(d) != first and verdict(d))
    # the threshold slider relabels the last result
    box = browser.find_element(By.CSS_SELECTOR, '#threshold input[type=number]')
    box.clear(); box.send_keys('1', Keys.TAB)
    wait.until(lambda d: 'not suspected' in (verdict(d) or '') and 'threshold 1.00' in verdict(d))
    shot = Path(os.environ.get('MELANOMA_SCREENSHOT', tmp_path / 'demo.png'))
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


@pytest.fixture(scope='module')
def served(tmp_path_factory):
    "A metadata model with a training prevalence and an operating point, served with `predict_image` recording its arguments."
    from melanoma import app as A
    calls, orig = [], A.predict_image
    def recording(model, file, age=None, sex=None, site=None, heatmap=True, threshold=None, prevalence=None, seg=None):
        calls.append(dict(age=age, sex=sex, site=site, threshold=threshold, prevalence=prevalence))
        return orig(model, file, age, sex, site, heatmap=heatmap, threshold=threshold, prevalence=prevalence, seg=seg)
    A.predict_image = recording  # build_app's handler looks it up at call time
    app = A.build_app(make_model_dir(tmp_path_factory.mktemp('models') / 'cal', meta=True, calibrated=True), examples=EXAMPLES,
                      seg_model_dir=False)
    u = A.start_app(app)
    try: yield u, calls
    finally: app.close(); A.predict_image = orig


def test_age_left_empty_is_missing_and_typed_age_is_sent(served, browser):
    "As a person uses it: upload, leave the age empty, predict; then type an age and predict again. What did the model get?"
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from melanoma import app as A
    from melanoma.metrics import prior_shift
    url, calls = served
    browser.get(url)
    wait = WebDriverWait(browser, 90)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#upload input[type=file]'))
    age = browser.find_element(By.CSS_SELECTOR, '#age textarea, #age input')
    assert age.get_attribute('value') == ''  # shown empty, not 0
    assert browser.find_element(By.CSS_SELECTOR, '#prevalence input').get_attribute('value') == str(A.DEMO_PREVALENCE)
    assert '5%' in browser.find_element(By.ID, 'prevalence-note').text
    assert 'operating point' in browser.find_element(By.ID, 'threshold-note').text
    thr = float(browser.find_element(By.CSS_SELECTOR, '#threshold input[type=number]').get_attribute('value'))
    assert abs(thr - prior_shift(OP['threshold'], 0.3, A.DEMO_PREVALENCE)) < 1e-3
    n = len(calls)
    browser.find_element(By.CSS_SELECTOR, '#upload input[type=file]').send_keys(str(EXAMPLES / 'synthetic_melanoma.jpg'))
    wait.until(lambda d: len(calls) > n and verdict(d))
    got = calls[-1]
    assert got['age'] in ('', None), got  # the empty box sends "missing", not 0
    assert np.isnan(A._meta_frame(got['age'], None, None, {}).age[0])
    assert got['prevalence'] == A.DEMO_PREVALENCE and 'prevalence 0.05' in verdict(browser)
    first = verdict(browser)
    age.send_keys('47')
    n = len(calls)
    browser.find_element(By.ID, 'predict').click()
    wait.until(lambda d: len(calls) > n and verdict(d))
    assert calls[-1]['age'] == '47' and A._meta_frame(calls[-1]['age'], None, None, {}).age[0] == 47.0
    # another prevalence: the probability and the threshold move together, the verdict stays
    from selenium.webdriver.common.keys import Keys
    before = verdict(browser).split(':')[0]
    box = browser.find_element(By.CSS_SELECTOR, '#prevalence input')
    box.clear(); box.send_keys('0.5', Keys.ENTER)
    wait.until(lambda d: 'prevalence 0.5)' in (verdict(d) or ''))
    assert verdict(browser).split(':')[0] == before
    thr = float(browser.find_element(By.CSS_SELECTOR, '#threshold input[type=number]').get_attribute('value'))
    assert abs(thr - prior_shift(OP['threshold'], 0.3, 0.5)) < 2e-3


@pytest.fixture(scope='module')
def seg_url(tmp_path_factory):
    "The demo with a segmentation model (trained for a few seconds on synthetic lesions)."
    from melanoma import app as A
    root = tmp_path_factory.mktemp('segapp')
    app = A.build_app(make_model_dir(root / 'tiny'), examples=EXAMPLES, seg_model_dir=make_seg_dir(root))
    u = A.start_app(app)
    try: yield u
    finally: app.close()


def test_outline_and_measurements_appear(seg_url, browser, tmp_path):
    "Upload an image: the outlined image and the measurements table show up beside the probability and the Grad-CAM."
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    browser.get(seg_url)
    wait = WebDriverWait(browser, 90)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#upload input[type=file]'))
    info = browser.find_element(By.ID, 'seg-info').text
    assert 'segmentation model' in info and 'seg' in info and 'Jaccard' in info
    browser.find_element(By.CSS_SELECTOR, '#upload input[type=file]').send_keys(str(EXAMPLES / 'synthetic_melanoma.jpg'))
    wait.until(verdict)
    def outline_loaded(d):
        im = d.find_elements(By.CSS_SELECTOR, '#outline img')
        return im and im[0].get_attribute('naturalWidth') not in (None, '0') and im[0]
    img = wait.until(outline_loaded)
    assert img.get_attribute('naturalWidth') == '256' and img.is_displayed()
    wait.until(lambda d: 'Asymmetry' in d.find_element(By.ID, 'measurements').text)
    text = browser.find_element(By.ID, 'measurements').text
    assert all(lab in text for lab in SEG_LABELS) and '%' in text
    assert browser.find_elements(By.CSS_SELECTOR, '#gradcam img') and browser.find_element(By.ID, 'probability').text
    shot = Path(os.environ.get('MELANOMA_SCREENSHOT_SEG', tmp_path / 'demo-seg.png'))
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


def test_not_dermoscopy_warning(browser, tmp_path):
    "A photo unlike the training images (a flat grey picture) shows a warning in place of a verdict."
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from melanoma import app as A
    from melanoma.model import load_model
    from melanoma.novelty import save_novelty
    from melanoma.sample import draw_lesion
    mdir = make_model_dir(tmp_path / 'models' / 'nov')
    m = load_model(mdir, 'cpu')
    save_novelty(m.fit_novelty([draw_lesion(0.9 if i % 2 else 0.1, 64, rng=i) for i in range(60)], k=3), mdir)
    grey = tmp_path / 'holiday.png'; Image.new('RGB', (300, 200), (128, 128, 128)).save(grey)
    app = A.build_app(mdir, examples=EXAMPLES, seg_model_dir=False)
    url = A.start_app(app)
    try:
        browser.get(url)
        wait = WebDriverWait(browser, 90)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#upload input[type=file]'))
        browser.find_element(By.CSS_SELECTOR, '#upload input[type=file]').send_keys(str(grey))
        wait.until(lambda d: 'does not look like a dermoscopy image' in d.find_element(By.ID, 'verdict').text)
        assert 'suspected' not in browser.find_element(By.ID, 'verdict').text
    finally: app.close()


@pytest.fixture(scope='module')
def lesion_url(tmp_path_factory):
    "The demo of a classifier with a lesion view (the folder `melanoma seg attach` writes) and no --seg-model: it outlines with its own."
    import json, shutil
    from melanoma import app as A
    root = tmp_path_factory.mktemp('lesionapp')
    mdir, seg = make_model_dir(root / 'viewed'), make_seg_dir(root)
    shutil.copy(seg / 'config.json', mdir / 'lesion.json'); shutil.copy(seg / 'seg.safetensors', mdir / 'lesion.safetensors')
    cfg = json.loads((mdir / 'config.json').read_text())
    (mdir / 'config.json').write_text(json.dumps({**cfg, 'lesion': {'margin': 0.3, 'open_size': 512, 'seg_model': 'seg'}}))
    app = A.build_app(mdir, examples=EXAMPLES)
    u = A.start_app(app)
    try: yield u
    finally: app.close()


def test_lesion_view_model_in_the_browser(lesion_url, browser):
    "A model with the lesion view: the page says so, predicts, and shows the heatmap and the outline from the model's own segmentation."
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    browser.get(lesion_url)
    wait = WebDriverWait(browser, 90)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#upload input[type=file]'))
    assert 'crop around the lesion' in browser.find_element(By.ID, 'model-info').text
    assert 'viewed' in browser.find_element(By.ID, 'seg-info').text  # the classifier's own segmentation model
    browser.find_element(By.CSS_SELECTOR, '#upload input[type=file]').send_keys(str(EXAMPLES / 'synthetic_melanoma.jpg'))
    wait.until(verdict)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#gradcam img') and d.find_elements(By.CSS_SELECTOR, '#outline img'))
    wait.until(lambda d: 'Asymmetry' in d.find_element(By.ID, 'measurements').text)
