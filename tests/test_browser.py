"The demo in a real browser: Debian's headless Chromium, driven by selenium, on 127.0.0.1 only."
import os, shutil, tempfile
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


def test_upload_and_see_result(url, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    browser.get(url)
    wait = WebDriverWait(browser, 90)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#upload input[type=file]'))
    assert 'not a medical device' in browser.find_element(By.ID, 'disclaimer').text
    assert 'resnet18' in browser.find_element(By.ID, 'model-info').text
    browser.find_element(By.CSS_SELECTOR, '#upload input[type=file]').send_keys(str(EXAMPLES / 'synthetic_melanoma.jpg'))
    wait.until(lambda d: 'threshold' in d.find_element(By.ID, 'verdict').text)
    assert 'probability' in browser.find_element(By.ID, 'verdict').text
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#shown img') and d.find_elements(By.CSS_SELECTOR, '#gradcam img'))
    assert browser.find_element(By.CSS_SELECTOR, '#gradcam img').get_attribute('naturalWidth') not in (None, '0')
    shot = Path(os.environ.get('MELANOMA_SCREENSHOT', tmp_path / 'demo.png'))
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
