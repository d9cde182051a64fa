"""Fuzzing the engine with generated programs (hypothesmith), alone and mixed with generated torch
normalization code. Whatever the input: no exception but MigrationError (and that only for source
that does not parse), the output parses, it uses no name it does not define (that the input did
not use already), and migrating the output again changes nothing.

The examples are derandomized: a fixed, bounded set, so that a run costs the same every time and
fails the same way. What the fuzzer found is kept at the end as regression cases."""

from __future__ import annotations

import ast
import builtins
import warnings

import hypothesmith
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codemod import MigrationError, migrate_source
from codemod.ruleset import default_rules


def fuzz(examples: int) -> settings:
    # A bounded number of examples, no example database: the same cost on every run.
    return settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))

# hypothesmith compiles what it generates; Python's warnings about it ("'int' object is not
# callable; perhaps you missed a comma?") are noise here.
pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning")

RULES = default_rules()
LAYERS = sorted(q for q, r in RULES.layers.items() if r.kind == "layer")
FUNCTIONS = sorted(q for q, r in RULES.layers.items() if r.kind == "function")


def parses(source: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(source)
        return True
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False


def names_used(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def names_bound(tree: ast.AST) -> set[str]:
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.Import, ast.ImportFrom)):
            out.update((a.asname or a.name).split(".")[0] for a in n.names)
        elif isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
            out.add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(n.name)
        elif isinstance(n, ast.arg):
            out.add(n.arg)
    return out


def assert_migrates_safely(source: str) -> None:
    try:
        result = migrate_source(source, path="fuzz.py")
    except MigrationError:
        assert not parses(source), "MigrationError for source that parses"
        return
    assert parses(result.code), "the output does not parse"
    if result.changed:
        before, after = ast.parse(source), ast.parse(result.code)
        # Python's builtins are defined (float(...) where MindSpore insists on a float), unless the
        # program rebinds them.
        builtin = set(dir(builtins)) - names_bound(before)
        undefined = names_used(after) - names_used(before) - names_bound(after) - builtin
        assert not undefined, f"the output uses names it never defines: {sorted(undefined)}"
    again = migrate_source(result.code, path="fuzz.py")
    assert again.code == result.code, "a second run changed the output"
    assert not again.changed


# -- generated torch code ----------------------------------------------------------------------

ARGUMENT_VALUES = {
    "momentum": ["0.1", "0.01", "0.003", "None", "m", "1e-2", "base - 0.05", "-0.1", "(0.1)", "0.1 if x else 0.2",
                 "0.30000000000000004", "1", "True", "cfg['m']", "*moms"],
    "eps": ["1e-5", "0", "1", "eps", "1e-3 * 2"],
    "affine": ["True", "False", "flag", "not flag"],
    "track_running_stats": ["True", "False", "t", "None"],
    "device": ["'cpu'", "dev", "torch.device('cuda')"],
    "dtype": ["torch.float16", "torch.float32", "dtype", "None"],
    "elementwise_affine": ["True", "False"],
    "bias": ["True", "False"],
}


@st.composite
def layer_call(draw, spelled: str) -> str:
    first = draw(st.sampled_from(["3", "c", "num_features=8", "*shape", "(4, 4)", "[2, 3]", "c * 2"]))
    args = [first] if not first.startswith("num_features") else []
    keywords = [first] if first.startswith("num_features") else []
    for name in draw(st.lists(st.sampled_from(sorted(ARGUMENT_VALUES)), unique=True, max_size=4)):
        value = draw(st.sampled_from(ARGUMENT_VALUES[name]))
        keywords.append(value if value.startswith("*") else f"{name}={value}")
    if draw(st.booleans()):
        keywords.append(draw(st.sampled_from(["**kwargs", "**cfg", "*rest"])))
    parts = args + keywords
    if draw(st.booleans()):  # a multi-line call with comments and a trailing comma
        return f"{spelled}(\n    " + ",  # note\n    ".join(parts) + ",\n)"
    return f"{spelled}({', '.join(parts)})"


IMPORT_STYLES = [
    ("import torch.nn as nn\n", "nn.{}"),
    ("from torch import nn\n", "nn.{}"),
    ("import torch\n", "torch.nn.{}"),
    ("import torch.nn as tnn\n", "tnn.{}"),
    ("from torch.nn import {0}\n", "{0}"),
    ("from torch.nn import {0} as Alias\n", "Alias"),
    ("from torch.nn.modules.batchnorm import {0}\n", "{0}"),
    ("from torch.nn import *\n", "{0}"),
    ("from torch.nn.modules import *\n", "{0}"),
]

USES = [
    "bn = {call}\ny = bn(x)\n",
    "bn = {call}; y = bn(x)\n",
    "if flag: bn = {call}\ny = bn(x)\n",
    "with ctx: bn = {call}\nfor _ in range(2): y = bn(x)\n",
    "f = lambda c: {call}\n",
    "out = [{call}][0](x)\n",
    "bn: object = {call}\nbn.train(); bn.eval()\n",
    "async def build():\n    async with lock:\n        return {call}\n",
    "bn = {call}\nbn.train()\nbn.eval()\nbn.momentum = 0.5\nprint(bn.running_mean, bn.weight, bn.num_batches_tracked)\n",
    ("class Net(nn.Module):\n    def __init__(self, c=3):\n        super().__init__()\n        self.norm = {call}\n\n"
     "    def forward(self, x):\n        return self.norm(x)\n\n\nnet = Net()\nnet.train(False)\nout = net(x)\n"),
    "def make(c):\n    return {call}\n\n\nlayer = make(3)\n",
    "seq = nn.Sequential({call}, {call})\n",
    "layers = [{call} for c in range(3)]\n",
    "norm = {call} if flag else None\n",
    "import functools\nfactory = functools.partial({name}, momentum=0.2)\n",
    "registry = {{'bn': {name}}}\nblock = registry['bn'](3)\n",
]


@st.composite
def torch_code(draw) -> str:
    qual = draw(st.sampled_from(LAYERS))
    name = qual.rsplit(".", 1)[1]
    header, spelling = draw(st.sampled_from(IMPORT_STYLES))
    spelled = spelling.format(name)
    use = draw(st.sampled_from(USES))
    calls = iter([draw(layer_call(spelled)) for _ in range(use.count("{call}"))])
    body = use.replace("{name}", spelled)
    while "{call}" in body:
        body = body.replace("{call}", next(calls), 1)
    body = body.replace("{{", "{").replace("}}", "}")
    extra = ""
    if FUNCTIONS and draw(st.booleans()):
        fn = draw(st.sampled_from(FUNCTIONS))
        momentum = draw(st.sampled_from(ARGUMENT_VALUES["momentum"][:6]))
        extra = f"import {fn.rsplit('.', 1)[0]}\ny2 = {fn}(x, rm, rv, w, b, True, {momentum}, 1e-5)\n"
    return header.format(name) + extra + body


# -- the properties ----------------------------------------------------------------------------


@fuzz(60)
@given(hypothesmith.from_grammar())
def test_generated_programs(source):
    assert_migrates_safely(source)


@fuzz(300)
@given(torch_code())
def test_generated_torch_normalization_code(source):
    assert_migrates_safely(source)


@fuzz(150)
@given(st.lists(st.one_of(torch_code(), hypothesmith.from_grammar()), min_size=2, max_size=4))
def test_generated_programs_mixed_with_torch_code(chunks):
    assert_migrates_safely("\n".join(c if c.endswith("\n") else c + "\n" for c in chunks))


@fuzz(40)
@given(hypothesmith.from_node(), torch_code())
def test_torch_code_inside_generated_modules(program, torch):
    assert_migrates_safely(torch + "\n" + program)


# -- what the fuzzer found (fixed in the engine since): kept as regression cases ------------------


def test_a_name_from_a_repeated_star_import():
    assert_migrates_safely("from torch.nn import *\nfrom torch.nn import *\nbn = BatchNorm2d(3)\n")


def test_a_name_from_a_star_import_is_imported_from_mindspore():
    assert_migrates_safely("from torch.nn import *\nbn = BatchNorm2d(3)\n")
