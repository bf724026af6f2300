"The demo in a real browser: Debian's headless Chromium, driven by selenium, on 127.0.0.1 only."
import os, re, shutil
from pathlib import Path
import pytest

from test_app import EXAMPLES, make_model_dir

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
DRIVER = shutil.which('chromedriver')
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason='chromium and chromium-driver are not installed')


@pytest.fixture(scope='module')
def url(tmp_path_factory):
    from melanoma import app as A
    app = A.build_app(make_model_dir(tmp_path_factory.mktemp('models') / 'tiny'), examples=EXAMPLES)
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
    browser.find_element(By.CSS_SELECTOR, '#upload input[type=file]').send_keys(str(EXAMPLES / 'synthetic_melanoma.jpg'))
    wait.until(verdict)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#shown img') and d.find_elements(By.CSS_SELECTOR, '#gradcam img'))
    assert browser.find_element(By.CSS_SELECTOR, '#gradcam img').get_attribute('naturalWidth') not in (None, '0')
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
