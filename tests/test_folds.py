"Tests for melanoma.folds: grouping, stratification, folds.csv, extra sources, the CLI; real mini sets when present."
import numpy as np
import pandas as pd
import pytest
from melanoma.core import MelanomaError
from melanoma.data import read_siim2020, read_isic2019, read_dataset, combine
from melanoma.folds import FOLD_COLS, make_folds, save_folds, load_folds, with_folds, check_folds, fold_summary, folds_cli

def _toy(n_groups=200, seed=0) -> pd.DataFrame:
    "Groups of 1-8 images with a ~10% melanoma rate, some groups all-melanoma."
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_groups):
        risk = rng.choice([0.02, 0.5])
        rows += [dict(image_id=f'I{len(rows)}', group=f'G{g}', target=int(rng.random() < risk)) for _ in range(rng.integers(1, 9))]
    return pd.DataFrame(rows)

def _grouped(df): assert (df.groupby('group').fold.nunique() == 1).all()

@pytest.mark.parametrize('n_folds', [3, 5])
def test_grouped_and_stratified(n_folds):
    df = _toy()
    f = make_folds(df, n_folds, seed=1)
    assert set(f.fold) == set(range(n_folds)) and f.fold.dtype.kind == 'i' and 'fold' not in df
    _grouped(f)
    s = fold_summary(f)
    assert (s.rate - df.target.mean()).abs().max() < 0.05, s
    assert s.images.max() < 1.5 * s.images.min()
    assert make_folds(df, n_folds, seed=1).fold.tolist() == f.fold.tolist()
    assert make_folds(df, n_folds, seed=2).fold.tolist() != f.fold.tolist()

def test_bad_input():
    df = _toy(20)
    with pytest.raises(MelanomaError, match='no target'): make_folds(df.assign(target=pd.array([pd.NA] + [0] * (len(df) - 1), dtype='Int64')))
    with pytest.raises(MelanomaError, match='cannot fill'): make_folds(df.head(3).assign(group='G'))
    with pytest.raises(MelanomaError, match='at least 2'): make_folds(df, 1)
    with pytest.raises(MelanomaError, match='group'): make_folds(df.drop(columns='group'))
    bad = make_folds(df, 3)
    bad.loc[bad.group == bad.group.value_counts().index[0], 'fold'] = [0, 1] + [0] * (bad.group.value_counts().iloc[0] - 2)
    with pytest.raises(MelanomaError, match='spans folds'): check_folds(bad)

def test_save_load_with_folds(sample_data, tmp_path):
    df = make_folds(read_siim2020(sample_data), 4)
    p = save_folds(df, tmp_path)
    assert p == tmp_path/'folds.csv' and list(pd.read_csv(p).columns) == FOLD_COLS
    f = load_folds(tmp_path)
    assert f.fold.tolist() == df.fold.tolist() and f.image_id.tolist() == df.image_id.tolist()
    assert load_folds(p).equals(f)
    # an extra source is always in training: fold -1
    extra = df.head(6).drop(columns='fold').assign(image_id=lambda d: 'X' + d.image_id, source='isic2019')
    w = with_folds(pd.concat([df.drop(columns='fold'), extra], ignore_index=True), tmp_path)
    assert w.fold.tail(6).eq(-1).all() and w.fold.head(len(df)).tolist() == df.fold.tolist()
    # stale folds: a main-source image without a fold
    stale = pd.concat([df.drop(columns='fold'), df.head(1).drop(columns='fold').assign(image_id='ISIC_9999990')])
    with pytest.raises(MelanomaError, match='run `melanoma folds` again'): with_folds(stale, f)
    assert with_folds(stale, f, strict=False).fold.iloc[-1] == -1
    with pytest.raises(MelanomaError, match='not found'): load_folds(tmp_path/'nope')

@pytest.mark.parametrize('col,value,msg', [('fold', 'x', 'row 3: fold'), ('fold', -2, 'row 3: fold'), ('image_id', None, 'row 3: image_id')])
def test_load_bad_rows(sample_data, tmp_path, col, value, msg):
    f = make_folds(read_siim2020(sample_data), 4)[FOLD_COLS].astype({'fold': object})
    f.loc[1, col] = f.image_id[0] if value is None else value
    f.to_csv(tmp_path/'folds.csv', index=False)
    with pytest.raises(MelanomaError, match=msg): load_folds(tmp_path)
    f.drop(columns='group').to_csv(tmp_path/'folds.csv', index=False)
    with pytest.raises(MelanomaError, match='folds.csv.*group'): load_folds(tmp_path)

def test_cli(sample_data, tmp_path, capsys):
    from melanoma.cli import main
    out = tmp_path/'f.csv'
    main(['folds', str(sample_data), '--n-folds', '3', '--out', str(out)])
    printed = capsys.readouterr().out
    assert 'melanoma' in printed and '3 folds' in printed
    f = load_folds(out)
    assert set(f.fold) == {0, 1, 2}
    folds_cli(str(sample_data), 3, out=str(tmp_path/'g.csv'))
    assert load_folds(tmp_path/'g.csv').equals(f)

def test_real_2020_patients(siim_mini):
    df = make_folds(read_siim2020(siim_mini))
    _grouped(df)
    assert (df.groupby('patient_id').fold.nunique() == 1).all()
    assert (fold_summary(df).rate - 432 / 860).abs().max() < 0.03

def test_real_2019_lesions(isic2019_mini):
    df = make_folds(read_isic2019(isic2019_mini))
    _grouped(df)
    ham = df[df.lesion_id.ne('')]
    assert (ham.groupby('lesion_id').fold.nunique() == 1).all() and ham.lesion_id.duplicated().sum() > 1000
    assert (fold_summary(df).rate - 1260 / 10734).abs().max() < 0.01

def test_real_combined_extra(siim_mini, isic2019_mini, tmp_path):
    main = make_folds(read_siim2020(siim_mini))
    save_folds(main, tmp_path)
    both = combine(read_dataset(siim_mini), read_dataset(isic2019_mini), hash_files=False)
    w = with_folds(both, tmp_path)
    assert w.fold[w.source == 'isic2019'].eq(-1).all() and w.fold[w.source == 'siim2020'].ge(0).all()
