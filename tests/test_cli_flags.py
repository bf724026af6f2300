"""One flag vocabulary across every subcommand (issue 23): walks each command's parser and checks that no abbreviation
is accepted, every boolean is a `--x/--no-x` switch whose help gives the effective default, required arguments are
marked and enforced, and the shared names (`DATA`, `--model`, `--out`, `--tta`, `--workers`, `--threads`, `--fold`)
have one type and meaning across commands."""
import argparse, inspect, warnings
import pytest
from melanoma.cli import COMMANDS, TORCH_COMMANDS, CommandParser, command_parser, load_command, main, _is_bool
from melanoma.core import MelanomaError

def parser(name: str) -> CommandParser:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        try: func = load_command(name)
        except MelanomaError as e: pytest.skip(str(e))  # an optional extra that is not installed
    return command_parser(func, f'melanoma {name}', name)

def options(p: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    "Visible option string -> action."
    return {s: a for a in p._actions if a.help != argparse.SUPPRESS for s in a.option_strings}

def first_option(p: argparse.ArgumentParser) -> tuple[str, argparse.Action] | None:
    "A long option that takes a value, and its action: the one to abbreviate."
    return next(((s, a) for s, a in options(p).items() if s.startswith('--') and len(s) > 4 and a.nargs != 0
                 and not isinstance(a, argparse._HelpAction)), None)

ALL = list(COMMANDS)

@pytest.mark.parametrize('name', ALL)
def test_no_abbreviations(name):
    p = parser(name)
    assert isinstance(p, CommandParser) and p.allow_abbrev is False
    if (o := first_option(p)) is None: pytest.skip('no option that takes a value')
    fill = ['x' for a in p._actions if not a.option_strings and a.nargs is None]  # SRC DEST, ...
    abbrev = o[0][:-2]  # e.g. `--meta-drop` for --meta-dropout
    _, rest = argparse.ArgumentParser.parse_known_args(p, [*fill, abbrev, '1'])  # argparse alone: no required check
    assert abbrev in rest, f'{name}: {abbrev} was taken as {o[0]}'
    with pytest.raises((SystemExit, MelanomaError)): p.parse_args([*fill, abbrev, '1'])

@pytest.mark.parametrize('name', ALL)
def test_booleans_are_switches_with_their_default(name):
    p = parser(name)
    params = inspect.signature(load_command(name), eval_str=True).parameters
    bools = [k for k, v in params.items() if _is_bool(v.annotation)]
    opts = options(p)
    for k in bools:
        on, off = f"--{k.replace('_', '-')}", f"--no-{k.replace('_', '-')}"
        assert on in opts and off in opts and opts[on] is opts[off], f'{name}: {k} is not a {on}/{off} switch'
        a, d = opts[on], params[k].default
        assert isinstance(a, argparse.BooleanOptionalAction) and a.dest == k and a.default == d
        if isinstance(d, bool): assert a.help.endswith(f"(default: {'on' if d else 'off'})"), (name, k, a.help)
        else: assert 'default' in a.help, f'{name}: --{k} defaults to {d!r}; its help must say what that does'
    for a in p._actions:  # no store_true/store_false left: every flag without a value is a switch
        assert not isinstance(a, (argparse._StoreTrueAction, argparse._StoreFalseAction)), (name, a.option_strings)
        assert not any(s.startswith('--no-no-') for s in a.option_strings), (name, a.option_strings)

@pytest.mark.parametrize('name', ALL)
def test_required_arguments_are_marked_and_checked(name):
    p = parser(name)
    for dest, spelling in p.required.items():
        a = next(a for a in p._actions if a.dest == dest)
        assert a.help.endswith('(required)'), (name, dest, a.help)
        if a.option_strings: assert spelling.split()[0] in a.option_strings
    usage = p.format_usage()
    for spelling in p.required.values(): assert f'[{spelling}' not in usage, f'{name}: {spelling} shown as optional: {usage}'
    if p.required:
        with pytest.raises(MelanomaError, match='missing required'): p.parse_args([])

# how each command takes the shared names: one type, one meaning
SHARED = {
    '--model': (str, 'DIR'), '--out': (str, None), '--tta': (int, 'N'), '--workers': (int, 'N'),
    '--threads': (int, 'N'), '--fold': (str, 'K'),
}

def test_shared_names_have_one_type():
    seen = {k: [] for k in SHARED}
    for name in ALL:
        opts = options(parser(name))
        for flag, (typ, mv) in SHARED.items():
            if flag not in opts: continue
            a = opts[flag]
            seen[flag].append(name)
            assert a.type is typ, f'{name} {flag}: type {a.type}, elsewhere {typ}'
            if mv: assert a.metavar == mv, f'{name} {flag}: shown as {a.metavar}, elsewhere {mv}'
    assert {'train', 'predict', 'evaluate', 'seg predict'} <= set(seen['--tta'])
    assert {'train', 'predict', 'prepare', 'batch'} <= set(seen['--workers'])
    assert {'train', 'evaluate', 'explain'} <= set(seen['--fold'])
    assert set(TORCH_COMMANDS) <= set(seen['--threads']), 'every command that runs torch takes --threads'
    assert set(seen['--threads']) <= set(TORCH_COMMANDS)
    for name in ALL:  # --workers and --threads: one meaning each
        opts = options(parser(name))
        if '--workers' in opts: assert 'in parallel' in opts['--workers'].help or name == 'train', (name, opts['--workers'].help)
        if '--threads' in opts: assert opts['--threads'].help.startswith('torch CPU threads'), (name, opts['--threads'].help)

def test_data_is_positional_everywhere():
    for name in ALL:
        p = parser(name)
        if 'data' not in {a.dest for a in p._actions}: continue
        data = next(a for a in p._actions if a.dest == 'data')
        assert not data.option_strings and data.metavar == 'DATA', name
        assert '--data' not in options(p), f'{name}: --data is a hidden old spelling now'
        others = [w for s in p.required.values() if s.startswith('--') for w in (s.split()[0], 'v')]
        want = ['x'] if data.nargs == '*' else 'x'  # `DATA...` where a command takes several (predict: images)
        assert p.parse_args(['--data', 'x', *others]).data == want, name  # still accepted
        assert p.parse_args(['x', *others]).data == want, name

def test_train_meta_switch():
    p = parser('train')
    assert p.parse_args(['d', '--meta']).meta is True and p.parse_args(['d', '--no-meta']).meta is False
    assert p.parse_args(['d']).meta is True
    with pytest.raises(SystemExit): p.parse_args(['d', '--meta', '0.5'])    # not --meta-dropout 0.5
    with pytest.raises(SystemExit): p.parse_args(['d', '--meta-drop', '0.5'])
    with pytest.raises(MelanomaError, match='contradict'): p.parse_args(['d', '--meta', '--no-meta'])
    for flag in ('cache', 'score_extra', 'debug', 'export_pkl'): assert isinstance(getattr(p.parse_args(['d']), flag), bool)
    assert p.parse_args(['--data', 'd']).data == 'd'  # the old spelling, hidden
    with pytest.raises(SystemExit, match='missing required argument.*DATA'): main(['train', '--meta'])
    with pytest.raises(SystemExit, match='given twice'): main(['train', 'a', '--data', 'b'])

def test_predict_data_and_model_forms():
    p = parser('predict')
    for argv in (['D', '--model', 'A', 'B'], ['--model', 'A', 'B', 'D'], ['--model', 'A', '--model', 'B', 'D'],
                 ['--model', 'A', 'B', '--data', 'D'], ['--model', 'A', 'B', 'D', '--tta', '2']):
        ns = p.parse_args(argv)
        assert (ns.model, ns.data) == (['A', 'B'], ['D']), argv
    ns = p.parse_args(['--model', 'A', 'D'])
    assert (ns.model, ns.data, ns.onnx) == (['A'], ['D'], None)
    assert p.parse_args(['a.jpg', 'b.jpg', '--model', 'M']).data == ['a.jpg', 'b.jpg']  # images: several
    assert p.parse_args(['D', '--model', 'A', '--no-onnx']).onnx is False
    with pytest.raises(MelanomaError, match='--model DIR'): p.parse_args(['D'])

def test_seg_predict_tta_is_a_count():
    p = parser('seg predict')
    base = ['imgs', '--model', 'm', '--out', 'o']
    assert p.parse_args(base).tta == 1 and p.parse_args(base + ['--tta', '4']).tta == 4
    assert p.parse_args(base + ['--tta']).tta == 4  # the switch it was: the four flips
    assert p.parse_args(['--data', 'imgs', '--model', 'm', '--out', 'o']).data == 'imgs'

def test_old_switches_still_work():
    assert parser('unbatch').parse_args(['a', 'b', '--no-verify']).verify is False
    assert parser('unbatch').parse_args(['a', 'b']).verify is True
    try: k = parser('kaggle train')
    except pytest.skip.Exception: k = None
    if k:
        ns = k.parse_args(['kern', '--no-push', '--no-gpu'])
        assert (ns.push, ns.gpu) == (False, False)
    d = parser('demo')
    assert d.parse_args(['--no-seg']).seg is False and d.parse_args([]).seg is True
    e = parser('export-onnx')
    assert e.parse_args(['M']).model == 'M' and e.parse_args(['--model', 'M']).model == 'M'
