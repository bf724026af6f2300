"""The README does what it says: its Python example runs against a model that `melanoma train --debug` wrote, and every
`melanoma ...` command in its shell blocks parses with today's flags."""
import re, shlex, shutil, warnings
from pathlib import Path
import numpy as np
import pytest
from melanoma.cli import command_parser, find_command, load_command, main
from melanoma.core import MelanomaError

README = Path(__file__).resolve().parent.parent / 'README.md'

def blocks(lang: str) -> list[str]:
    return re.findall(rf'```{lang}\n(.*?)```', README.read_text(), re.S)

def shell_commands() -> list[str]:
    "Every `melanoma ...` command line of the README's sh blocks (continuations joined, comments dropped)."
    out = []
    for b in blocks('sh'):
        for line in b.replace('\\\n', ' ').splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ['melanoma']: out.append(words)
    return out

def test_python_example_runs(tmp_path, monkeypatch):
    (code,) = [b for b in blocks('python') if 'load_model' in b]
    assert len(code.strip().splitlines()) <= 5, 'the README promises a five-line example'
    monkeypatch.chdir(tmp_path)
    assert main(['sample-data', 'data', '--n-train', '24', '--n-test', '2', '--size', '64', '--dicom', '0']) == 0
    assert main(['train', 'data', '--debug', '--name', 'demo', '--workers', '1']) == 0  # models/demo, as `make demo` makes
    shutil.copy(next(Path('data/jpeg/test').glob('*.jpg')), 'a.jpg')
    ns = {}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        exec(compile(code, 'README.md', 'exec'), ns)
    probs = np.asarray(ns['probs'])
    assert probs.shape == (1,) and 0 <= probs[0] <= 1

@pytest.mark.parametrize('argv', shell_commands(), ids=lambda a: ' '.join(a[1:4]))
def test_shell_commands_parse(argv):
    name, rest = find_command(argv[1:])
    try: func = load_command(name)
    except MelanomaError as e: pytest.skip(str(e))  # an optional extra that is not installed
    ns = command_parser(func, f'melanoma {name}', name).parse_args(rest)  # SystemExit or MelanomaError on a bad flag
    assert ns is not None

def test_every_folder_is_made_by_an_earlier_step():
    "A folder under data/ that a command reads was written by an earlier line (download, curl/unzip, prepare)."
    made = set()
    for b in blocks('sh'):
        for line in b.replace('\\\n', ' ').splitlines():
            words = shlex.split(line, comments=True)
            folders = [w.split('/$')[0] for w in words if w.startswith('data/')]
            if not words: continue
            if words[0] in ('mkdir', 'curl', 'unzip') or words[:3] in (['melanoma', 'kaggle', 'download'],):
                made.update(f.split('/')[0] + '/' + f.split('/')[1] for f in folders); continue
            if words[:2] == ['melanoma', 'prepare']:
                assert folders[0] in made, f'{folders[0]} is read before any step makes it: {line}'
                made.add(folders[1]); continue
            if words[:2] == ['melanoma', 'batch']: made.add(folders[1])
            for f in folders: assert f in made or words[:2] == ['melanoma', 'batch'], f'{f} is read before any step makes it: {line}'
    assert {'data/siim-isic', 'data/isic2019', 'data/isic2019-512', 'data/siim-512'} <= made
