"Tests for melanoma.data: readers, schema, missing images, bad input, de-duplication; real mini sets when present."
import shutil, warnings
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from melanoma.core import MelanomaError, write_csv
from melanoma.data import (SCHEMA, SITES, DIAGNOSES, read_siim2020, read_isic2019, read_ham10000, read_dataset,
                           detect_layout, check_images, combine, conform)

def _img(p: Path, seed: int = 0) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(p)
    return p

def _schema_ok(df: pd.DataFrame):
    assert list(df.columns) == SCHEMA
    assert set(df.site) <= set(SITES) | {''} and set(df.sex) <= {'male', 'female', ''}
    assert set(df.diagnosis) <= set(DIAGNOSES) | ({''} if df.split.eq('test').all() else set()) and df.target.dtype == 'Int64' and df.age.dtype == float
    assert df.group.ne('').all() and df.path.map(lambda p: Path(p).is_absolute()).all()

@pytest.fixture
def siim_copy(sample_data, tmp_path) -> Path:
    "A private copy of the synthetic set that a test may change."
    return Path(shutil.copytree(sample_data, tmp_path/'siim'))

@pytest.fixture
def isic19(tmp_path) -> Path:
    "A 4-row ISIC 2019 layout with 3 images present."
    root = tmp_path/'isic2019'; root.mkdir()
    gt = pd.DataFrame(0, index=range(4), columns=['image'] + DIAGNOSES)
    gt['image'] = ['ISIC_0024306', 'ISIC_0024307', 'ISIC_0000000', 'ISIC_0000001_downsampled']
    gt.loc[[0, 2], 'MEL'] = 1; gt.loc[1, 'NV'] = 1; gt.loc[3, 'SCC'] = 1
    gt.to_csv(root/'ISIC_2019_Training_GroundTruth.csv', index=False)
    pd.DataFrame({'image': gt.image, 'age_approx': [55, '', 30, 40], 'anatom_site_general': ['anterior torso', 'posterior torso', '', 'oral/genital'],
                  'lesion_id': ['HAM_0000118', 'HAM_0000118', '', ''], 'sex': ['male', 'male', '', 'female']}
                ).to_csv(root/'ISIC_2019_Training_Metadata.csv', index=False)
    for k, i in enumerate(gt.image[:3]): _img(root/'ISIC_2019_Training_Input'/f'{i}.jpg', k)
    return root

@pytest.fixture
def ham(tmp_path) -> Path:
    root = tmp_path/'ham'; root.mkdir()
    pd.DataFrame({'lesion_id': ['HAM_0000118', 'HAM_0000118', 'HAM_0002730', 'HAM_0000001'],
                  'image_id': ['ISIC_0024306', 'ISIC_0024307', 'ISIC_0024308', 'ISIC_0024309'],
                  'dx': ['mel', 'mel', 'akiec', 'vasc'], 'dx_type': 'histo', 'age': [80, 80, '', 35],
                  'sex': ['male', 'male', 'unknown', 'female'], 'localization': ['scalp', 'scalp', 'acral', 'hand']}
                ).to_csv(root/'HAM10000_metadata.csv', index=False)
    _img(root/'HAM10000_images_part_1'/'ISIC_0024306.jpg', 10); _img(root/'HAM10000_images_part_2'/'ISIC_0024307.jpg', 11)
    _img(root/'HAM10000_images'/'ISIC_0024308.jpg', 12); _img(root/'ISIC_0024309.jpg', 13)
    return root

# --- SIIM-ISIC 2020 ---------------------------------------------------------------------------------------------

def test_sample_reads_with_schema(sample_data):
    df = read_siim2020(sample_data)
    _schema_ok(df)
    raw = pd.read_csv(sample_data/'train.csv')
    assert len(df) == len(raw) and df.image_id.tolist() == raw.image_name.tolist()
    assert df.target.tolist() == raw.target.tolist() and df.group.eq(df.patient_id).all()
    assert df.source.eq('siim2020').all() and df.split.eq('train').all() and len(check_images(df)) == 0
    assert df.diagnosis[raw.diagnosis.eq('melanoma').to_numpy()].eq('MEL').all()
    te = read_dataset(sample_data, 'test')
    _schema_ok(te)
    assert te.target.isna().all() and te.diagnosis.eq('').all() and te.split.eq('test').all() and len(check_images(te)) == 0

def test_images_auto_jpeg_dicom(siim_copy):
    with pytest.warns(UserWarning, match='60 of 64'): dcm = read_siim2020(siim_copy, images='dicom', missing='drop')
    assert len(dcm) == 4 and dcm.path.str.endswith('.dcm').all()
    first = dcm.image_id[0]
    (siim_copy/'jpeg'/'train'/f'{first}.jpg').unlink()
    auto = read_siim2020(siim_copy)  # falls back to the DICOM for the one JPEG removed
    assert auto.path[auto.image_id == first].iloc[0].endswith(f'train/{first}.dcm')
    assert auto.path[auto.image_id != first].str.endswith('.jpg').all()
    with pytest.warns(UserWarning, match=f'1 of 64 .*{first}.jpg'):
        jp = read_siim2020(siim_copy, images='jpeg')
    assert jp.attrs['n_missing'] == 1 and check_images(jp).image_id.tolist() == [first] and len(jp) == 64

def test_missing_images_policies(siim_copy):
    for p in list((siim_copy/'jpeg'/'train').glob('*.jpg'))[:3]: p.unlink()
    with pytest.warns(UserWarning, match='3 of 64 image file'):
        df = read_siim2020(siim_copy, images='jpeg')
    assert len(df) == 64 and len(check_images(df)) == 3
    with pytest.warns(UserWarning, match='dropped'):
        assert len(read_siim2020(siim_copy, images='jpeg', missing='drop')) == 61
    with pytest.raises(MelanomaError, match='not found'): read_siim2020(siim_copy, images='jpeg', missing='error')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert len(read_siim2020(siim_copy, images='jpeg', missing='ignore')) == 64

@pytest.mark.parametrize('col', ['image_name', 'patient_id', 'target', 'anatom_site_general_challenge'])
def test_missing_column(siim_copy, col):
    pd.read_csv(siim_copy/'train.csv').drop(columns=col).to_csv(siim_copy/'train.csv', index=False)
    with pytest.raises(MelanomaError, match=rf'train\.csv.*{col}'): read_siim2020(siim_copy)

@pytest.mark.parametrize('col,value,words', [
    ('target', 2, ['row 4', 'target', '2']), ('target', '', ['row 4', 'target']),
    ('age_approx', 'forty', ['row 4', 'age', 'forty']), ('age_approx', -5, ['row 4', 'age']),
    ('image_name', 'ISIC_9000000', ['row 4', 'repeated']), ('benign_malignant', 'malignant', ['row 4', 'contradicts'])])
def test_bad_rows(siim_copy, col, value, words):
    tr = pd.read_csv(siim_copy/'train.csv', dtype=str, keep_default_na=False)
    if col == 'benign_malignant': tr.loc[2, 'target'] = '0'
    tr.loc[2, col] = str(value)
    tr.to_csv(siim_copy/'train.csv', index=False)
    with pytest.raises(MelanomaError) as e: read_siim2020(siim_copy)
    assert 'train.csv' in str(e.value) and all(w in str(e.value) for w in words), str(e.value)

def test_unknown_vocabulary_warns(siim_copy):
    tr = pd.read_csv(siim_copy/'train.csv')
    tr.loc[0, 'anatom_site_general_challenge'] = 'elbow'; tr.loc[1, 'diagnosis'] = 'something new'
    tr.loc[2, 'sex'] = 'Male'; tr.loc[3, 'anatom_site_general_challenge'] = 'anterior torso'
    tr.to_csv(siim_copy/'train.csv', index=False)
    with pytest.warns(UserWarning, match="site.*row 2.*elbow"): df = read_siim2020(siim_copy)
    assert df.site[0] == '' and df.diagnosis[1] == 'UNK' and df.sex[2] == 'male' and df.site[3] == 'torso'

def test_bad_arguments(sample_data, tmp_path):
    with pytest.raises(MelanomaError, match='split'): read_siim2020(sample_data, 'valid')
    with pytest.raises(MelanomaError, match='images'): read_siim2020(sample_data, images='png')
    with pytest.raises(MelanomaError, match='missing'): read_siim2020(sample_data, missing='maybe')
    with pytest.raises(MelanomaError, match='not a known data layout'): read_dataset(tmp_path)
    with pytest.raises(MelanomaError, match='not found'): read_dataset(tmp_path/'nope')
    (tmp_path/'train.csv').write_text('image_name\n"unclosed\n')
    with pytest.raises(MelanomaError, match='train.csv'): read_siim2020(tmp_path)

def test_conform_roundtrip(sample_data, tmp_path):
    df = read_siim2020(sample_data)
    back = conform(pd.read_csv(write_csv(df, tmp_path/'df.csv')), tmp_path/'df.csv')
    pd.testing.assert_frame_equal(back, df)
    with pytest.raises(MelanomaError, match='df.csv.*site'): conform(df.drop(columns='site'), tmp_path/'df.csv')

# --- ISIC 2019 and HAM10000 ---------------------------------------------------------------------------------------

def test_isic2019(isic19):
    assert detect_layout(isic19) == 'isic2019'
    with pytest.warns(UserWarning, match='1 of 4.*ISIC_0000001_downsampled.jpg'): df = read_dataset(isic19)
    _schema_ok(df)
    assert df.attrs['n_missing'] == 1 and len(df) == 3 and len(check_images(df)) == 0
    assert df.diagnosis.tolist() == ['MEL', 'NV', 'MEL'] and df.target.tolist() == [1, 0, 1]
    assert df.group.tolist() == ['HAM_0000118', 'HAM_0000118', 'ISIC_0000000'] and df.site.tolist() == ['torso', 'torso', '']
    assert np.isnan(df.age[1]) and df.sex[2] == '' and df.source.eq('isic2019').all()
    with pytest.warns(UserWarning): assert len(read_isic2019(isic19, missing='warn')) == 4
    with pytest.raises(MelanomaError, match='only a train split'): read_dataset(isic19, 'test')

def test_isic2019_bad_onehot(isic19):
    gt = pd.read_csv(isic19/'ISIC_2019_Training_GroundTruth.csv')
    gt.loc[1, 'MEL'] = 1
    gt.to_csv(isic19/'ISIC_2019_Training_GroundTruth.csv', index=False)
    with pytest.raises(MelanomaError, match=r'GroundTruth\.csv: row 3: expected exactly one 1'): read_isic2019(isic19)
    gt.drop(columns='UNK').to_csv(isic19/'ISIC_2019_Training_GroundTruth.csv', index=False)
    with pytest.raises(MelanomaError, match='UNK'): read_isic2019(isic19)

def test_ham10000(ham):
    assert detect_layout(ham) == 'ham10000'
    df = read_dataset(ham)
    _schema_ok(df)
    assert len(check_images(df)) == 0 and df.source.eq('ham10000').all()
    assert df.diagnosis.tolist() == ['MEL', 'MEL', 'AK', 'VASC'] and df.target.tolist() == [1, 1, 0, 0]
    assert df.site.tolist() == ['head/neck', 'head/neck', 'palms/soles', 'upper extremity']
    assert df.sex.tolist() == ['male', 'male', '', 'female'] and df.group.tolist() == df.lesion_id.tolist()
    m = pd.read_csv(ham/'HAM10000_metadata.csv'); m.loc[3, 'dx'] = 'xyz'; m.to_csv(ham/'HAM10000_metadata.csv', index=False)
    with pytest.raises(MelanomaError, match="row 5: dx 'xyz'"): read_ham10000(ham)

# --- combine ------------------------------------------------------------------------------------------------------

def test_combine_dedupes(sample_data, isic19, ham, tmp_path):
    with pytest.warns(UserWarning): d19 = read_isic2019(isic19)
    dh, ds = read_ham10000(ham), read_siim2020(sample_data)
    twin = ds.iloc[[5]].assign(image_id='ISIC_9999999', path=str(shutil.copy(ds.path[5], tmp_path/'copy.jpg')))
    dup = tmp_path/'duplicates.csv'
    pd.DataFrame({'ISIC_id': [ds.image_id[0], 'ISIC_0000404'], 'ISIC_id_paired': [ds.image_id[1], ds.image_id[2]]}).to_csv(dup, index=False)
    with pytest.warns(UserWarning, match='dropped 4'):
        c, dropped = combine(d19, dh, ds, twin, duplicates=dup, return_dropped=True)
    got = set(dropped[['image_id', 'reason', 'duplicate_of']].itertuples(index=False, name=None))
    assert c.attrs['dropped'] == {'same image_id': 2, 'identical file': 1, 'official duplicate': 1}
    assert got == {('ISIC_0024306', 'same image_id', 'ISIC_0024306 (isic2019)'), ('ISIC_0024307', 'same image_id', 'ISIC_0024307 (isic2019)'),
                   ('ISIC_9999999', 'identical file', ds.image_id[5]), (ds.image_id[1], 'official duplicate', ds.image_id[0])}
    assert len(c) == 3 + 4 + 64 + 1 - 4 and not c.image_id.duplicated().any() and list(c.columns) == SCHEMA
    assert c.source.tolist()[:3] == ['isic2019'] * 3  # the first source wins
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert combine(ds).attrs['dropped'] == {} and len(combine()) == 0
    assert len(pd.concat([c, ds]))  # attrs stay small and concatenable
    bad = tmp_path/'bad.csv'; bad.write_text('a,b\n1,2\n')
    with pytest.raises(MelanomaError, match='bad.csv.*ISIC_id'): combine(ds, duplicates=bad)

# --- real mini data sets --------------------------------------------------------------------------------------------

def test_siim_mini(siim_mini):
    tr, te = read_siim2020(siim_mini, missing='error'), read_siim2020(siim_mini, 'test', missing='error')
    _schema_ok(tr); _schema_ok(te)
    assert len(tr) == 860 and len(te) == 93 and tr.target.sum() == 432 and tr.patient_id.nunique() == 583
    assert tr.path.str.endswith('.jpg').all() and te.target.isna().all()
    with pytest.warns(UserWarning, match='dropped'):
        dcm = pd.concat([read_siim2020(siim_mini, s, images='dicom', missing='drop') for s in ('train', 'test')])
    on_disk = sorted(p.stem for s in ('train', 'test') for p in (siim_mini/s).glob('*.dcm'))
    assert sorted(dcm.image_id) == on_disk and len(on_disk) >= 20 and dcm.path.map(lambda p: Path(p).is_file()).all()

def test_isic2019_mini(isic2019_mini):
    df = read_isic2019(isic2019_mini, missing='error')
    _schema_ok(df)
    assert len(df) == 10_734 and df.target.sum() == 1260 and len(check_images(df)) == 0
    ham = df[df.lesion_id.str.startswith('HAM_')]
    assert len(ham) == 10_015 and ham.lesion_id.duplicated().any() and ham.group.eq(ham.lesion_id).all()
    assert df.group[df.lesion_id.eq('')].eq(df.image_id[df.lesion_id.eq('')]).all()

def test_identical_files_large(tmp_path):
    "Files that share their first 64 KiB but differ later are not duplicates; identical large files are."
    from melanoma.data import _identical_files
    head = np.random.default_rng(0).bytes(1 << 16)
    for name, tail in [('a', b'x' * 100), ('b', b'y' * 100), ('c', b'x' * 100), ('d', b'x' * 99)]: (tmp_path/name).write_bytes(head + tail)
    first = _identical_files(pd.Series([str(tmp_path/n) for n in 'abcd']))
    assert first.isna().tolist() == [True, True, False, True] and first[2] == 0
