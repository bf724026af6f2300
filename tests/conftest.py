"Shared pytest fixtures: generated synthetic data, and the real mini data sets in ../shared/data when present."
import os
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get('MELANOMA_SHARED_DATA', REPO.parent / 'shared' / 'data'))

def shared_path(name: str) -> Path:
    "Path of a real mini data set, or skip the test when ../shared/data is absent (as on a user's clone)."
    p = SHARED_DATA / name
    if not p.exists(): pytest.skip(f'real data not available: {p}')
    return p

@pytest.fixture(scope='session')
def siim_mini() -> Path:
    "The real SIIM-ISIC 2020 mini data set (skips when absent)."
    return shared_path('siim-isic-2020-mini')

@pytest.fixture(scope='session')
def isic2019_mini() -> Path:
    "The real ISIC 2019 mini data set (skips when absent)."
    return shared_path('isic-2019-mini')

@pytest.fixture(scope='session')
def sample_data(tmp_path_factory) -> Path:
    "A small synthetic data set in the SIIM-ISIC Kaggle layout, made once per test session."
    from melanoma.sample import make_sample_data
    return make_sample_data(tmp_path_factory.mktemp('sample') / 'siim', n_train=64, n_test=16, size=64, seed=0)

def train_debug(sample_data: Path, dest: Path, name: str, edit=None, **kw) -> tuple[Path, Path]:
    "`train --debug` on a copy of the synthetic data in `dest/siim` (changed first by `edit(data)` when given): (run folder, data folder)."
    import shutil
    from melanoma.train import train
    data = dest / 'siim'
    shutil.copytree(sample_data, data)
    if edit: edit(data)
    return train(data, name=name, debug=True, models_dir=dest / 'models', progress=False, **kw), data
