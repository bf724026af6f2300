"""Edit nbdev notebooks as text, run them keeping their outputs, and write README.md: thin wrappers over jupytext and
nbdev's own commands, kept so the habitual commands still work. The commands they run:

    python tools/nbpy.py nb2py nbs/09_model.ipynb     # jupytext --to py:percent -o nbs/_src/09_model.py nbs/09_model.ipynb
    python tools/nbpy.py py2nb nbs/_src/09_model.py   # jupytext --update --to ipynb -o nbs/09_model.ipynb nbs/_src/09_model.py
    python tools/nbpy.py run nbs/09_model.ipynb       # nbdev-test nbs/09_model.ipynb --save; nbdev-clean --fname nbs/09_model.ipynb
    python tools/nbpy.py readme                       # README.md from the markdown cells of nbs/index.ipynb

`--update` keeps every cell's id (the `#<id>` markers `nbdev-export` writes into melanoma/*.py), metadata and the
outputs of cells whose source did not change; a new cell gets a fresh random id, so inserting one changes no other
marker. `run` executes a notebook top to bottom as `nbdev-test` does (cells flagged `#| slow` or `#| notest` are
skipped and keep their old outputs), saves the outputs when every cell passed, drops progress-bar redraws and
libraries' deprecation warnings from stderr, and `nbdev-clean` strips execution counts, timings and object
addresses. jupytext may give a deleted cell's id to a new cell at the same place; ids are never renumbered.
`nbs/_src/` is git-ignored: the notebooks stay the source of truth."""
import json, re, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def _tool(name: str) -> str:
    "The path of command-line tool `name`: the project's `.venv` first, then `PATH`."
    venv = ROOT / '.venv' / 'bin' / name
    if venv.exists(): return str(venv)
    found = shutil.which(name)
    if found: return found
    sys.exit(f'nbpy: `{name}` not found in {ROOT / ".venv/bin"} or on PATH: `.venv/bin/pip install -e ".[dev]" jupytext`')

def _call(*args):
    print('+', ' '.join(map(str, args)), file=sys.stderr)
    subprocess.run([_tool(args[0]), *map(str, args[1:])], check=True)

def nb2py(nb_path: Path) -> Path:
    "Write notebook `nb_path` as percent-format text (`# %%` cells) into `nbs/_src/`."
    dest = nb_path.parent / '_src' / (nb_path.stem + '.py')
    dest.parent.mkdir(exist_ok=True)
    _call('jupytext', '--quiet', '--to', 'py:percent', '-o', dest, nb_path)
    return dest

def py2nb(src: Path) -> Path:
    "Write percent-format file `src` back into its notebook in `nbs/`, keeping ids, metadata and unchanged outputs."
    dest = src.parent.parent / (src.stem + '.ipynb') if src.parent.name == '_src' else src.with_suffix('.ipynb')
    new = not dest.exists()
    _call('jupytext', '--quiet', '--from', 'py:percent', *([] if new else ['--update']), '--to', 'ipynb', '-o', dest, src)
    if new:  # a text file without jupytext's header gives a notebook without a kernel, which nbdev-test skips
        nb = json.loads(dest.read_text())
        nb['metadata'].setdefault('kernelspec', {'display_name': 'python3', 'language': 'python', 'name': 'python3'})
        dest.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + '\n')
    return dest

_BAR = re.compile(r'\[\d\d:\d\d')  # a progress bar's elapsed time: `[00:00<00:01, 2.65batch/s]`
_LIB_WARNING = re.compile(r'/site-packages/.*(FutureWarning|DeprecationWarning)')

def scrub_stderr(text: str) -> str:
    "`text` without progress-bar redraws and libraries' deprecation warnings, which change run to run."
    out, skip = [], False
    for line in text.split('\n'):
        line = next((s for s in reversed(line.split('\r')) if s.strip()), '')  # what a terminal would show
        if skip and line.startswith(' '): continue  # the source line a warning quotes
        skip = bool(_LIB_WARNING.search(line))
        if skip or _BAR.search(line): continue
        out.append(re.sub(r'<ipython-input-\d+-[0-9a-f]+>', '<ipython-input>', line))
    return '\n'.join(out).strip('\n') + '\n' if any(l.strip() for l in out) else ''

def _scrub(nb_path: Path):
    nb = json.loads(nb_path.read_text())
    for c in nb['cells']:
        outs = []
        for o in c.get('outputs', []):
            if o.get('name') == 'stderr': o['text'] = scrub_stderr(''.join(o['text'])).splitlines(keepends=True)
            if o.get('output_type') != 'stream' or o['text']: outs.append(o)
        if 'outputs' in c: c['outputs'] = outs
    nb_path.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + '\n')

def run(nb_path: Path) -> Path:
    "Execute notebook `nb_path` top to bottom and save its outputs (only when every cell passed), then clean it."
    try: _call('nbdev-test', nb_path, '--save')
    finally:
        _scrub(nb_path)
        _call('nbdev-clean', '--fname', nb_path)
    return nb_path

def readme(nb_path: Path = Path('nbs/index.ipynb'), dest: Path = Path('README.md')) -> Path:
    "Write README.md from the markdown cells of `nbs/index.ipynb` (nbdev-readme needs Quarto, which this skips)."
    nb = json.loads(nb_path.read_text())
    text = '\n\n'.join(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown')
    dest.write_text('<!-- Generated from nbs/index.ipynb by `python tools/nbpy.py readme`: edit the notebook. -->\n\n' + text + '\n')
    return dest

if __name__ == '__main__':
    cmds = {'py2nb': py2nb, 'nb2py': nb2py, 'run': run}
    if len(sys.argv) < 2 or sys.argv[1] not in [*cmds, 'readme']: sys.exit(__doc__)
    cmd, *paths = sys.argv[1:]
    if cmd == 'readme': print(readme())
    try:
        for p in paths: print(cmds[cmd](Path(p)))
    except subprocess.CalledProcessError as e: sys.exit(e.returncode)
