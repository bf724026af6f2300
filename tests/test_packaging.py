"""Packaging: declared dependencies match the code's imports, optional packages stay optional, the floors tested in CI
(.ci/lowest.txt) are the floors pyproject.toml declares, and the standalone scripts in scripts/ answer --help."""
import ast, importlib.metadata, re, subprocess, sys, tomllib
from pathlib import Path
import pytest
from melanoma.cli import EXTRAS

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / 'pyproject.toml').read_text())['project']


def _name(req: str) -> str: return re.split(r'[\s<>=!~;\[]', req, maxsplit=1)[0].lower().replace('_', '-')

def _floors(reqs: list[str]) -> dict[str, str]:
    return {_name(r): m[1] for r in reqs if (m := re.search(r'>=\s*([\w.]+)', r))}

CORE = {_name(r) for r in PROJECT['dependencies']}
OPTIONAL = {k: {_name(r) for r in v} for k, v in PROJECT['optional-dependencies'].items() if k not in ('all', 'dev')}


def _guarded(tree) -> set[int]:
    "ids of the import statements inside a `try:` that catches ImportError (an optional package with a fallback)."
    out = set()
    for t in ast.walk(tree):
        if isinstance(t, ast.Try) and any('ImportError' in ast.unparse(h.type or ast.Name('')) for h in t.handlers):
            out |= {id(n) for b in t.body for n in ast.walk(b)}
    return out

def _imports() -> list[tuple[str, str, bool]]:
    "(file, top-level module, imported at module level?) for every import in melanoma/ that has no fallback."
    out = []
    for f in sorted((REPO / 'melanoma').glob('*.py')):
        tree = ast.parse(f.read_text())
        top, guarded = {id(n) for n in tree.body}, _guarded(tree)
        for node in ast.walk(tree):
            if id(node) in guarded: continue
            if isinstance(node, ast.Import): mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module: mods = [node.module]
            else: continue
            out += [(f.name, m.split('.')[0], id(node) in top) for m in mods]
    return [o for o in out if o[1] not in sys.stdlib_module_names and o[1] != 'melanoma']


# modules that come with a declared distribution: kaggle requires kagglesdk (releases before 1.8 bundled it)
VIA = {'kagglesdk': 'kaggle'}

def test_every_import_is_declared():
    "Each third-party module melanoma/ imports comes from a distribution pyproject.toml names (core or an extra)."
    dists = importlib.metadata.packages_distributions()
    declared = CORE.union(*OPTIONAL.values())
    provides = lambda m: {d.lower().replace('_', '-') for d in dists.get(m, [m])} | {VIA.get(m, m)}
    missing = {(f, m) for f, m, _ in _imports() if not provides(m) & declared}
    assert not missing, f'imported but not declared in pyproject.toml: {sorted(missing)}'


def test_optional_packages_are_imported_lazily():
    "`pip install .` (no extras) must import every module: optional packages only inside the functions that use them."
    eager = [(f, m) for f, m, top in _imports() if top and m in EXTRAS]
    assert not eager, f'optional packages imported at module level: {eager}'
    assert set(EXTRAS.values()) <= set(OPTIONAL), 'melanoma.cli.EXTRAS names an extra pyproject.toml lacks'
    assert not CORE & {'gradio', 'onnx', 'onnxruntime', 'kaggle', 'pylibjpeg-libjpeg', 'accelerate'}
    assert PROJECT['optional-dependencies']['all'] == [f'melanoma[{",".join(OPTIONAL)}]']


def test_lowest_constraints_are_the_declared_floors():
    "CI installs .ci/lowest.txt: every floor must be pinned there at exactly its value, and nothing else."
    pins = dict(re.match(r'([\w.-]+)==([\w.]+)$', l).groups() for l in (REPO / '.ci/lowest.txt').read_text().splitlines()
                if l.strip() and not l.startswith('#'))
    pins = {k.lower(): v for k, v in pins.items()}
    floors = _floors(PROJECT['dependencies'])
    for k, v in PROJECT['optional-dependencies'].items():
        if k != 'dev': floors |= _floors(v)
    assert set(CORE) <= set(floors), f'core dependencies without a floor: {sorted(set(CORE) - set(floors))}'
    assert pins == floors


def test_license():
    assert PROJECT['license'] == 'Apache-2.0' and PROJECT['requires-python'].startswith('>=')
    text = (REPO / 'LICENSE').read_text()
    assert 'Apache License' in text and 'Version 2.0, January 2004' in text and 'END OF TERMS AND CONDITIONS' in text


SCRIPTS = {'batch.py': 'SRC DEST', 'unbatch.py': 'SRC DEST', 'upload_dataset.py': 'ACTION DIR',
           'kaggle_download.py': 'DIR', 'kaggle_train.py': 'KERNEL'}

def test_scripts_are_documented():
    assert sorted(p.name for p in (REPO / 'scripts').glob('*.py')) == sorted(SCRIPTS)
    readme = (REPO / 'README.md').read_text()
    for s in SCRIPTS: assert f'scripts/{s}' in readme, f'{s} is not in the README'

@pytest.mark.parametrize('script', sorted(SCRIPTS))
def test_script_help(script):
    "Each script runs standalone (`python scripts/X.py --help`), under its own name."
    r = subprocess.run([sys.executable, str(REPO / 'scripts' / script), '--help'], capture_output=True, text=True,
                       timeout=300, cwd=REPO.parent)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith(f'usage: {script}') and SCRIPTS[script] in r.stdout, r.stdout[:500]
