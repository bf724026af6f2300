"Tests for melanoma.sample: layout, determinism, idempotence, safety, learnability, the CLI."
import json
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from melanoma.core import MelanomaError, sha256_file
from melanoma.data import read_siim2020, check_images
from melanoma.sample import make_sample_data, draw_lesion, sample_data_cli, MANIFEST

KW = dict(n_train=30, n_test=8, size=48, dicom=2, progress=False)

def test_layout(sample_data):
    names = {p.name for p in sample_data.iterdir()}
    assert {'train.csv', 'test.csv', 'sample_submission.csv', 'README.txt', 'jpeg', 'train', 'test'} <= names
    tr, te = pd.read_csv(sample_data/'train.csv'), pd.read_csv(sample_data/'test.csv')
    assert list(tr.columns) == ['image_name', 'patient_id', 'sex', 'age_approx', 'anatom_site_general_challenge', 'diagnosis', 'benign_malignant', 'target']
    assert list(te.columns) == ['image_name', 'patient_id', 'sex', 'age_approx', 'anatom_site_general_challenge']
    sub = pd.read_csv(sample_data/'sample_submission.csv')
    assert list(sub.columns) == ['image_name', 'target'] and sub.image_name.tolist() == te.image_name.tolist() and sub.target.eq(0).all()
    assert len(tr) == 64 and len(te) == 16 and not set(tr.patient_id) & set(te.patient_id)
    assert 0.15 <= tr.target.mean() <= 0.4 and tr.patient_id.value_counts().max() > 1
    assert (tr.benign_malignant == tr.target.map({0: 'benign', 1: 'malignant'})).all()
    assert tr.diagnosis[tr.target == 1].eq('melanoma').all() and not tr.diagnosis[tr.target == 0].eq('melanoma').any()
    assert 'SYNTHETIC' in (sample_data/'README.txt').read_text()
    with Image.open(sample_data/'jpeg'/'train'/f'{tr.image_name[0]}.jpg') as im: assert im.size == (64, 64) and im.mode == 'RGB'
    assert len(list((sample_data/'train').glob('*.dcm'))) == 4 and len(list((sample_data/'test').glob('*.dcm'))) == 4
    for split in ('train', 'test'): assert len(check_images(read_siim2020(sample_data, split))) == 0

def test_dicoms_decode(sample_data):
    from melanoma.dicom import read_dicom
    df = read_siim2020(sample_data, images='dicom', missing='ignore').head(4)
    for r in df.itertuples():
        a = np.asarray(read_dicom(r.path).convert('RGB'), dtype=float)
        b = np.asarray(Image.open(sample_data/'jpeg'/'train'/f'{r.image_id}.jpg').convert('RGB'), dtype=float)
        assert a.shape == b.shape and np.abs(a - b).mean() < 8  # the same picture, not pink

def test_deterministic(tmp_path):
    a, b = make_sample_data(tmp_path/'a', **KW), make_sample_data(tmp_path/'b', **KW)
    for f in ['train.csv', 'test.csv', 'sample_submission.csv', 'jpeg/train/ISIC_9000007.jpg', 'jpeg/test/ISIC_9000031.jpg']:
        assert sha256_file(a/f) == sha256_file(b/f), f
    c = make_sample_data(tmp_path/'c', **{**KW, 'seed': 1})
    assert sha256_file(a/'train.csv') != sha256_file(c/'train.csv')

def test_idempotent_and_replace(tmp_path):
    p = make_sample_data(tmp_path/'s', **KW)
    before = {f: f.stat().st_mtime_ns for f in p.rglob('*') if f.is_file()}
    assert make_sample_data(p, **KW) == p
    assert {f: f.stat().st_mtime_ns for f in p.rglob('*') if f.is_file()} == before
    (p/'jpeg'/'train'/'ISIC_9000003.jpg').unlink()  # an incomplete set is rewritten
    make_sample_data(p, **KW)
    assert (p/'jpeg'/'train'/'ISIC_9000003.jpg').is_file()
    make_sample_data(p, **{**KW, 'n_train': 10, 'dicom': 0})  # other options replace the set, no stale files
    assert len(list((p/'jpeg'/'train').iterdir())) == 10 and not list((p/'train').iterdir())
    assert json.loads((p/MANIFEST).read_text())['params']['n_train'] == 10

def test_refuses_foreign_folder(tmp_path):
    (tmp_path/'real').mkdir(); (tmp_path/'real'/'train.csv').write_text('image_name\n')
    with pytest.raises(MelanomaError, match='not a melanoma sample'): make_sample_data(tmp_path/'real', **KW)
    (tmp_path/'file').write_text('x')
    with pytest.raises(MelanomaError, match='not a folder'): make_sample_data(tmp_path/'file', **KW)
    with pytest.raises(MelanomaError, match='n_train'): make_sample_data(tmp_path/'x', n_train=1)

def test_learnable_not_trivial():
    "Melanoma-like lesions are darker and larger on average, but a crude feature does not separate them perfectly."
    from sklearn.metrics import roc_auc_score
    rng = np.random.default_rng(0)
    y = rng.random(120) < 0.3
    m = np.where(y, rng.beta(5, 2.5, 120), rng.beta(2, 5, 120))
    dark = [-np.asarray(draw_lesion(mi, 48, skin=i % 5, rng=i).convert('L'), dtype=float)[16:32, 16:32].mean() for i, mi in enumerate(m)]
    assert 0.65 < roc_auc_score(y, dark) < 0.97

def test_cli(tmp_path, capsys):
    sample_data_cli(str(tmp_path/'d'), n_train=12, n_test=3, size=32, dicom=1)
    out = capsys.readouterr().out
    assert '12 train images' in out and 'synthetic' in out
    assert len(read_siim2020(tmp_path/'d')) == 12
