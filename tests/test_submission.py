"Tests for melanoma.submission: validation, the log, Kaggle submit/list through a fake API object."
import json, os, subprocess, sys
from pathlib import Path
from types import SimpleNamespace
import numpy as np
import pandas as pd
import pytest
import requests
from melanoma.core import MelanomaError, sha256_file, write_csv
from melanoma import submission as S

IDS = [f'ISIC_{i:07d}' for i in range(8)]

def good():
    return pd.DataFrame({'image_name': IDS, 'target': np.linspace(0, 1, len(IDS))})

BAD = {
    'missing': (lambda d: d.iloc[1:], 'missing 1 id(s): ISIC_0000000'),
    'duplicate': (lambda d: pd.concat([d, d.iloc[[2, 3]]]), 'duplicate image_name for 2 id(s): ISIC_0000002, ISIC_0000003'),
    'extra': (lambda d: pd.concat([d, pd.DataFrame({'image_name': ['ISIC_9'], 'target': [0.5]})]), 'ISIC_9 not in test.csv'),
    'nan': (lambda d: d.assign(target=d.target.where(d.index != 4)), 'NaN or infinite for 1 id(s): ISIC_0000004'),
    'inf': (lambda d: d.assign(target=d.target.where(d.index != 4, np.inf)), 'NaN or infinite'),
    'range': (lambda d: d.assign(target=d.target - 0.5), 'outside [0, 1] for 4 id(s)'),
    'header': (lambda d: d.rename(columns={'image_name': 'image_id'}), 'header must be exactly image_name,target'),
    'extra_col': (lambda d: d.assign(x=1), 'header must be exactly'),
    'text': (lambda d: d.assign(target=['x'] + list(d.target[1:])), 'not a number'),
}

@pytest.mark.parametrize('kind', list(BAD))
def test_each_failure_has_its_own_error_and_writes_nothing(tmp_path, kind):
    make, msg = BAD[kind]
    out = tmp_path / 'sub' / 'a.csv'
    with pytest.raises(MelanomaError, match=None) as e: S.write_submission(make(good()), out, IDS)
    assert msg in str(e.value) and str(out) in str(e.value)
    assert not out.exists() and not (tmp_path / 'sub' / 'log.csv').exists()
    assert not list(tmp_path.rglob('*.tmp'))

def test_messages_are_distinct():
    msgs = set()
    for kind, (make, _) in BAD.items():
        with pytest.raises(MelanomaError) as e: S.validate_submission(make(good()), IDS)
        msgs.add(str(e.value).split(':')[1].split(' for ')[0].split(' 1 ')[0])
    assert len(msgs) >= 7

def test_sample_submission_ids(tmp_path):
    S.validate_submission(good(), IDS, list(reversed(IDS)))
    with pytest.raises(MelanomaError, match='sample_submission.csv'): S.validate_submission(good(), IDS, IDS[:-1] + ['ISIC_X'])
    write_csv(good().assign(target=0.0), tmp_path / 'sample_submission.csv')
    assert S.read_sample_ids(tmp_path) == IDS
    assert S.read_sample_ids(tmp_path / 'nothing') is None

def test_write_and_log(tmp_path):
    p = S.write_submission(good(), tmp_path / 'subs' / 'r1.csv', IDS, models=['models/a', 'models/b'], tta=4,
                           ensemble='rank', oof_aucs=[0.91234, None])
    S.write_submission(good(), tmp_path / 'subs' / 'r2.csv', IDS, log=tmp_path / 'other.csv')
    S.write_submission(good(), tmp_path / 'subs' / 'r3.csv', IDS, log=False)
    lg = pd.read_csv(tmp_path / 'subs' / 'log.csv', dtype=str, keep_default_na=False)
    assert len(lg) == 1 and list(lg.columns) == S.LOG_COLUMNS
    r = lg.iloc[0]
    assert (r.models, r.tta, r.ensemble, r.oof_auc, r.rows) == ('models/a;models/b', '4', 'rank', '0.9123;', '8')
    assert r.sha256 == sha256_file(p) and r.file == str(p)
    assert len(pd.read_csv(tmp_path / 'other.csv')) == 1
    back = S.read_submission(p)
    assert back.image_name.tolist() == IDS and np.allclose(back.target, good().target)
    S.write_submission(good(), tmp_path / 'subs' / 'r1.csv', IDS)
    assert len(pd.read_csv(tmp_path / 'subs' / 'log.csv')) == 2

class FakeApi:
    "Stands in for kaggle's KaggleApi: same method names and signatures, records the calls."
    COMPETITION_SUBMIT_UPLOAD_FAILED_MESSAGE = 'Could not submit to competition'
    def __init__(self, status=None, text='', result='Successfully submitted to SIIM-ISIC Melanoma Classification'):
        self.calls, self.status, self.text, self.result = [], status, text, result
    def _fail(self):
        if self.status:
            r = requests.Response(); r.status_code = self.status; r._content = self.text.encode()
            raise requests.HTTPError(self.text, response=r)
    def competition_submit(self, file_name, message, competition, quiet=False, sandbox=False):
        self.calls.append(dict(file_name=file_name, message=message, competition=competition, quiet=quiet, sandbox=sandbox))
        self._fail()
        return SimpleNamespace(message=self.result)
    def competition_submissions(self, competition, group=None, sort=None, page_number=-1, page_token='', page_size=20):
        self.calls.append(dict(competition=competition)); self._fail()
        return [SimpleNamespace(date='2026-11-23 10:00:00', file_name='r1.csv', description='models/a, TTA 4',
                                status=SimpleNamespace(name='COMPLETE'), public_score='0.9321', private_score='0.9250'),
                None,
                SimpleNamespace(date='2026-11-22 09:00:00', file_name='r0.csv', description='', status=SimpleNamespace(name='PENDING'),
                                public_score=None, private_score=None)]

@pytest.fixture
def sub_file(tmp_path):
    return S.write_submission(good(), tmp_path / 'subs' / 'r1.csv', IDS, models=['models/a'], tta=2, oof_aucs=[0.9])

def test_submit_calls_api(sub_file):
    api = FakeApi()
    assert S.submit(sub_file, 'first try', api=api).startswith('Successfully')
    assert api.calls == [dict(file_name=str(sub_file), message='first try', competition='siim-isic-melanoma-classification',
                              quiet=True, sandbox=False)]

def test_submit_checks_file_first(tmp_path):
    bad = write_csv(good().assign(target=2.0), tmp_path / 'bad.csv')
    api = FakeApi()
    with pytest.raises(MelanomaError, match='outside'): S.submit(bad, 'x', api=api)
    with pytest.raises(MelanomaError, match='not found'): S.submit(tmp_path / 'none.csv', 'x', api=api)
    assert api.calls == []

def test_upload_failure(sub_file):
    with pytest.raises(MelanomaError, match='upload to Kaggle failed'):
        S.submit(sub_file, 'x', api=FakeApi(result=FakeApi.COMPETITION_SUBMIT_UPLOAD_FAILED_MESSAGE))

@pytest.mark.parametrize('status,text,want', [
    (403, 'You must accept this competition\'s rules', 'join it and accept its rules'),
    (429, 'Too many requests', 'daily submission limit'),
    (400, 'Your team has used its daily Submission allowance (5) and has exceeded the limit', 'daily submission limit'),
    (401, 'Unauthorized', 'rejected the credentials'),
    (404, 'Not found', r'not found \(404\)'),
    (500, 'Internal error', 'Kaggle API error 500'),
])
def test_http_errors_mapped(sub_file, monkeypatch, status, text, want):
    monkeypatch.setenv('KAGGLE_USERNAME', 'someone'); monkeypatch.setenv('KAGGLE_KEY', 'abcdef0123456789')
    with pytest.raises(MelanomaError, match=want) as e: S.submit(sub_file, 'x', api=FakeApi(status, text + ' abcdef0123456789'))
    assert 'abcdef0123456789' not in str(e.value)
    with pytest.raises(MelanomaError, match=want): S.list_submissions(api=FakeApi(status, text))

def test_list_submissions():
    api = FakeApi()
    t = S.list_submissions('some-comp', api=api)
    assert api.calls == [dict(competition='some-comp')]
    assert list(t.columns) == ['date', 'file', 'description', 'status', 'public_score', 'private_score']
    assert t.file.tolist() == ['r1.csv', 'r0.csv'] and t.status.tolist() == ['complete', 'pending']
    assert t.public_score.tolist() == ['0.9321', '']

def test_submit_cli_default_message(sub_file, monkeypatch, capsys):
    api = FakeApi()
    monkeypatch.setattr(S, 'kaggle_api', lambda a=None: api)
    S.submit_cli(str(sub_file))
    assert api.calls[0]['message'] == 'r1.csv: models models/a, TTA 2, OOF AUC 0.9000'
    S.submit_cli(str(sub_file), Message='mine')
    assert api.calls[1]['message'] == 'mine'
    S.submissions_cli()
    out = capsys.readouterr().out
    assert 'submitted to siim-isic-melanoma-classification' in out and '0.9321' in out

def _no_creds(monkeypatch, home):
    for k in list(os.environ):
        if k.startswith('KAGGLE_'): monkeypatch.delenv(k)
    monkeypatch.setenv('HOME', str(home))

def test_missing_credentials(tmp_path, monkeypatch, capsys):
    _no_creds(monkeypatch, tmp_path)
    with pytest.raises(MelanomaError, match='no Kaggle credentials.*kaggle.json.*KAGGLE_USERNAME'): S.kaggle_api()
    monkeypatch.setenv('KAGGLE_USERNAME', 'someone')
    with pytest.raises(MelanomaError, match='KAGGLE_KEY is not'): S.kaggle_api()
    monkeypatch.delenv('KAGGLE_USERNAME')
    cfg = tmp_path / 'cfg'; cfg.mkdir(); monkeypatch.setenv('KAGGLE_CONFIG_DIR', str(cfg))
    (cfg / 'kaggle.json').write_text(json.dumps({'username': 'someone'}))
    with pytest.raises(MelanomaError, match='needs both') as e: S.kaggle_api()
    assert str(cfg / 'kaggle.json') in str(e.value)
    (cfg / 'kaggle.json').write_text(json.dumps({'username': 'someone', 'key': 'secret0123456789'}))
    assert S.kaggle_credentials() == str(cfg / 'kaggle.json')
    assert 'secret0123456789' not in capsys.readouterr().out

def test_real_api_object_authenticates_lazily(tmp_path):
    "Importing melanoma.submission (and the kaggle package through it) prints nothing and needs no credentials."
    env = {k: v for k, v in os.environ.items() if not k.startswith('KAGGLE_')}
    env.update(HOME=str(tmp_path), PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    code = ("from melanoma import submission as S\n"
            "try: S.kaggle_api()\nexcept S.MelanomaError as e: print('ERR', e)\n"
            "import os; os.environ.update(KAGGLE_USERNAME='someone', KAGGLE_KEY='secret0123456789')\n"
            "a = S.kaggle_api(); print('AUTH', type(a).__name__, a._authenticated)\n")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('ERR no Kaggle credentials') and 'AUTH KaggleApi True' in r.stdout
    assert 'Authentication required' not in r.stdout and 'secret0123456789' not in r.stdout + r.stderr
