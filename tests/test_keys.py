"""The plan names nodes by key (statement number, kind, rank: codemod/keys.py); the transformers find
them in the LibCST tree by counting the same way (codemod/transform/locate.py). On every fixture and
on generated programs, every key must name the same node in both trees: the same kind of statement,
the same name, the same attribute, the call of the same callee."""

from __future__ import annotations

import ast
from pathlib import Path

import hypothesmith
import libcst as cst
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codemod.facts.keys import NodeKeys
from codemod.facts.scopes import Index
from codemod.plan import Change, Plan
from codemod.transform.locate import Locator
from tests.test_fuzz import fuzz, parses, torch_code

pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning")
FIXTURES = Path(__file__).parent / "fixtures"
CASES = sorted(FIXTURES.rglob("*.py"))
# ast statement classes whose LibCST counterpart has another name.
_STATEMENT_NAMES = {"AsyncFunctionDef": "FunctionDef", "AsyncFor": "For", "AsyncWith": "With", "Delete": "Del"}


def _ast_label(node: ast.AST) -> str:
    if isinstance(node, ast.stmt):
        return _STATEMENT_NAMES.get(type(node).__name__, type(node).__name__)
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return "." + node.attr
    return "call of " + (_ast_label(node.func) if isinstance(node.func, (ast.Name, ast.Attribute)) else "?")


def _cst_label(node: cst.CSTNode) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return "." + node.attr.value
    if isinstance(node, cst.Call):
        return "call of " + (_cst_label(node.func) if isinstance(node.func, (cst.Name, cst.Attribute)) else "?")
    return type(node).__name__


def ast_labels(source: str) -> tuple[dict, NodeKeys]:
    tree = ast.parse(source)
    keys = NodeKeys(tree, Index(tree).parents)
    labels = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.stmt, ast.Call, ast.Attribute, ast.Name)):
            labels[keys.key(node)] = _ast_label(node)
    return labels, keys


class _Recorder(cst.CSTTransformer):
    """A traversal keyed as the transformers' is, asked for every node: records what each key names."""

    def __init__(self, plan: Plan):
        super().__init__()
        self.locator = Locator(plan)
        self.labels: dict = {}

    def on_visit(self, node):
        return self.locator.enter(node)

    def on_leave(self, original, updated):
        key = self.locator.key(original)
        if key is not None:
            self.labels[key] = _cst_label(original)
        self.locator.leave(original)
        return updated

    def on_visit_attribute(self, node, attribute):
        self.locator.enter_field(node, attribute)

    def on_leave_attribute(self, node, attribute):
        self.locator.leave_field(node, attribute)


def assert_keys_agree(source: str) -> None:
    expected, keys = ast_labels(source)
    plan = Plan([Change("all", key) for key in expected], keys.ends, keys.subtrees)
    recorder = _Recorder(plan)
    cst.parse_module(source).visit(recorder)
    assert recorder.labels == expected


def assert_pruned_keys_agree(source: str, every: int) -> None:
    """Asked for only some nodes, the traversal skips the rest and still finds those."""
    expected, keys = ast_labels(source)
    wanted = {k: v for i, (k, v) in enumerate(sorted(expected.items(), key=lambda kv: (kv[0].statement, kv[0].kind.value, kv[0].ordinal))) if i % every == 0}
    plan = Plan([Change("some", key) for key in wanted], keys.ends, keys.subtrees)
    recorder = _Recorder(plan)
    cst.parse_module(source).visit(recorder)
    assert {k: v for k, v in recorder.labels.items() if k in wanted} == wanted


@pytest.mark.parametrize("case", CASES, ids=[str(c.relative_to(FIXTURES)) for c in CASES])
def test_keys_name_the_same_nodes_in_fixtures(case: Path) -> None:
    source = case.read_text(encoding="utf-8")
    assert_keys_agree(source)
    for every in (2, 3, 7):
        assert_pruned_keys_agree(source, every)


def test_keys_in_the_corners_of_the_grammar() -> None:
    source = '''\
@deco(a.b)
async def f(x: int = g(y), *args, k=z.w, **kw) -> r.T:
    global G
    async with open(p) as (h, i), q as j:
        async for a, *b in c(d): e[f](g) if h else i(j)
    try:
        k = lambda m, n=o.p: m(n)
    except (E, F.G) as err:
        raise H(err) from None
    else:
        del k, l.m
    finally:
        nonlocal_ = [q for q in r if s(q) for t in q]
    try:
        pass
    except* I.J as group:
        log(group)
    match u.v:
        case W(x=1, y=Y.Z) | [1, *rest] as w if cond(w):
            pass
        case {"k": V.a, **others}:
            pass
        case _:
            return True, False, None, ...
    x = f"{a.b(c)!r:>{w.d}} {e}" "plain" f"{g}"
    (yield h.i) if j else (k := l.m)
    if a: b.c = d(e)
    elif f.g: h()
    else: i
    while j.k: l(); m.n = o
    class C(B.A, metaclass=M.N, **opts):
        p: q.r = s.t
        u += v.w(x)
    assert y.z, msg(1)
    import a.b.c as d
    from .e import f as g, h
    return a[b:c.d, e::f(g)] @ h ** -i.j
'''
    assert_keys_agree(source)
    for every in (2, 3, 5):
        assert_pruned_keys_agree(source, every)


@fuzz(80)
@given(hypothesmith.from_grammar())
def test_keys_name_the_same_nodes_in_generated_programs(source):
    if not parses(source):
        return
    try:
        cst.parse_module(source)
    except (cst.ParserSyntaxError, RecursionError):
        return  # LibCST refuses it: the engine reports that file (see test_fuzz)
    assert_keys_agree(source)
    assert_pruned_keys_agree(source, 3)


@fuzz(60)
@given(hypothesmith.from_node(), st.lists(torch_code(), min_size=1, max_size=3))
def test_keys_name_the_same_nodes_in_generated_modules(program, torch):
    source = "\n".join(torch) + "\n" + program
    if not parses(source):
        return
    try:
        cst.parse_module(source)
    except (cst.ParserSyntaxError, RecursionError):
        return
    assert_keys_agree(source)
    assert_pruned_keys_agree(source, 2)
