"""The package imports downward only: each module imports only modules whose notebooks come earlier in `nbs/`
(data-flow order), at the top of the file. Imports inside functions are for optional third-party packages alone."""
import ast, json, re
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / 'melanoma'

def module_order() -> dict[str, int]:
    "module name -> its notebook's place in `nbs/` (file-name order: `06_metrics` < `07_novelty` < `09_model`)."
    order = {}
    for i, nb in enumerate(sorted((ROOT / 'nbs').glob('[0-9]*.ipynb'))):
        m = re.search(r'#\|\s*default_exp\s+(\w+)', nb.read_text())
        if m: order[m[1]] = i
    return order

def melanoma_imports(path: Path) -> list[tuple[str, int, bool]]:
    "(module imported, line, at the top level?) for each import of a melanoma module in `path`."
    tree, out = ast.parse(path.read_text()), []
    top = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ''
            if node.level == 1: names = [mod] if mod else [a.name for a in node.names]
            elif mod == 'melanoma': names = ['__init__' if a.name == '__version__' else a.name for a in node.names]
            elif mod.startswith('melanoma.'): names = [mod.split('.')[1]]
            else: continue
        elif isinstance(node, ast.Import):
            names = [a.name.split('.')[1] for a in node.names if a.name.startswith('melanoma.')]
        else: continue
        out += [(n, node.lineno, id(node) in top) for n in names]
    return out

def test_every_module_has_a_numbered_notebook():
    order = module_order()
    mods = {p.stem for p in PKG.glob('*.py') if not p.stem.startswith('_')}
    assert mods == set(order), f'modules without a notebook: {mods - set(order)}; notebooks without a module: {set(order) - mods}'
    prefixes = [nb.name.split('_')[0] for nb in (ROOT / 'nbs').glob('[0-9]*.ipynb')]
    assert len(set(prefixes)) == len(prefixes), 'two notebooks share a number'

@pytest.mark.parametrize('mod', sorted(p.stem for p in PKG.glob('*.py') if not p.stem.startswith('_')))
def test_imports_point_down(mod):
    order = module_order()
    for target, line, at_top in melanoma_imports(PKG / f'{mod}.py'):
        if target == '__init__': continue  # `__version__`
        assert at_top, f'melanoma/{mod}.py:{line} imports melanoma.{target} inside a function: import it at the top'
        assert target in order, f'melanoma/{mod}.py:{line} imports unknown module melanoma.{target}'
        assert order[target] < order[mod], (f'melanoma/{mod}.py:{line} imports melanoma.{target}, whose notebook comes after '
                                            f'its own in nbs/: a cycle or an upward edge')
