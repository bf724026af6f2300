"""Convert between nbdev notebooks and percent-format Python (`# %%` cells), for editing notebooks as text.

    python tools/nbpy.py py2nb nbs/_src/01_data.py   # writes nbs/01_data.ipynb (outputs cleared)
    python tools/nbpy.py nb2py nbs/01_data.ipynb      # writes nbs/_src/01_data.py

`nbs/_src/` is git-ignored: the notebooks stay the source of truth."""
import json, sys
from pathlib import Path

def py2nb(src: Path) -> Path:
    "Write the notebook for percent-format file `src` into `nbs/`."
    cells, cur, kind = [], [], None
    def flush():
        if kind is None: return
        lines = cur[:]
        while lines and not lines[-1].strip(): lines.pop()
        while lines and not lines[0].strip(): lines.pop(0)
        if kind == 'markdown': lines = [l[2:] if l.startswith('# ') else l.lstrip('#') for l in lines]
        text = '\n'.join(lines)
        src_lines = [l + '\n' for l in text.split('\n')]
        if src_lines: src_lines[-1] = src_lines[-1].rstrip('\n')
        c = {'cell_type': kind, 'metadata': {}, 'source': src_lines}
        if kind == 'code': c.update(execution_count=None, outputs=[])
        cells.append(c)
    for line in src.read_text().split('\n'):
        if line.startswith('# %%'):
            flush(); cur = []
            kind = 'markdown' if '[markdown]' in line else 'code'
        else: cur.append(line)
    flush()
    nb = {'cells': cells, 'metadata': {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}},
          'nbformat': 4, 'nbformat_minor': 5}
    for i, c in enumerate(nb['cells']): c['id'] = f'c{i:03d}'
    dest = src.parent.parent / (src.stem + '.ipynb') if src.parent.name == '_src' else src.with_suffix('.ipynb')
    dest.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
    return dest

def nb2py(nb_path: Path) -> Path:
    "Write the percent-format text of notebook `nb_path` into `nbs/_src/`."
    nb = json.loads(nb_path.read_text())
    out = []
    for c in nb['cells']:
        text = ''.join(c['source'])
        if c['cell_type'] == 'markdown':
            out.append('# %% [markdown]'); out += ['# ' + l if l else '#' for l in text.split('\n')]
        else: out.append('# %%'); out.append(text)
        out.append('')
    dest = nb_path.parent / '_src' / (nb_path.stem + '.py')
    dest.parent.mkdir(exist_ok=True)
    dest.write_text('\n'.join(out))
    return dest

def readme(nb_path: Path = Path('nbs/index.ipynb'), dest: Path = Path('README.md')) -> Path:
    "Write README.md from the markdown cells of `nbs/index.ipynb` (nbdev-readme needs Quarto, which this skips)."
    nb = json.loads(nb_path.read_text())
    text = '\n\n'.join(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown')
    dest.write_text('<!-- Generated from nbs/index.ipynb by `python tools/nbpy.py readme`: edit the notebook. -->\n\n' + text + '\n')
    return dest

if __name__ == '__main__':
    cmd, *paths = sys.argv[1:]
    if cmd == 'readme': print(readme())
    for p in paths: print({'py2nb': py2nb, 'nb2py': nb2py}[cmd](Path(p)))
