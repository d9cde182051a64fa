"""Argument lists and import names are edited on the text (codemod/sequences.py); LibCST renders the
same edits (tests/libcst_oracle.py). On generated lists -- parentheses, comments, line breaks,
trailing commas, commas inside values -- both must produce the same text, and that text must parse."""

from __future__ import annotations

import ast

from hypothesis import given
from hypothesis import strategies as st

from codemod.passes.constructions import ArgPlan, CallPlan, _rewrite_arguments
from codemod.passes.imports import _without_aliases
from tests import libcst_oracle
from tests.test_fuzz import fuzz

VALUES = ["x", "3", "0.1", "(x)", "((y))", "( z )", "g(a, b)", "[1, 2]", "'a,b)'", "{1: (2, 3)}", "s[1:2]",
          "a if b else c", "lambda q, r: q", "-1", "t.u", "(\n    w\n)", "f'{a},'", "(a, b)"]
# What may stand between two elements: before the comma, and after it up to the next element.
BEFORE_COMMA = ["", " ", "\n    "]
AFTER_COMMA = ["", " ", "  ", "\n    ", "  # note, (a)\n    ", "\n\n        ", "\n    # own line\n    "]
OPENING = ["", " ", "\n    ", "  # first\n    "]
CLOSING = ["", " ", "\n", ",", ", ", ",\n", ",  # last\n", " ,\n  "]
EQUALS = ["=", " = "]
PARAMS = ["p0", "p1", "p2", "p3", "p4", "p5"]


@st.composite
def calls(draw):
    func = draw(st.sampled_from(["f", "nn.BatchNorm2d", "(g)", "functools.partial"]))
    n_pos = draw(st.integers(0, 3))
    n_kw = draw(st.integers(0, 3))
    elements = [draw(st.sampled_from(VALUES)) for _ in range(n_pos)]
    elements += [f"k{i}{draw(st.sampled_from(EQUALS))}{draw(st.sampled_from(VALUES))}" for i in range(n_kw)]
    text = func + "(" + (draw(st.sampled_from(OPENING)) if elements else draw(st.sampled_from(["", " "])))
    for i, element in enumerate(elements):
        text += element
        if i + 1 < len(elements):
            text += draw(st.sampled_from(BEFORE_COMMA)) + "," + draw(st.sampled_from(AFTER_COMMA))
    text += draw(st.sampled_from(CLOSING)) if elements else ""
    text += ")"
    skip = draw(st.integers(0, min(1, n_pos)))
    plan = CallPlan()
    for i in range(skip, len(elements)):
        derive = None
        if draw(st.booleans()) and draw(st.booleans()):
            source = PARAMS[draw(st.integers(0, len(elements) - skip - 1))]
            derive = lambda texts, source=source: f"({texts[source]}) + 1"  # noqa: E731
        keyword = draw(st.sampled_from([None, None, f"n{i}"]))
        plan.args.append(ArgPlan(PARAMS[i - skip], drop=draw(st.booleans()) and draw(st.booleans()),
                                 keyword=keyword, derive=derive))
    # As convert_call plans: once an argument is written with a keyword, every later one is too.
    named = False
    for i, ap in enumerate(plan.args, start=skip):
        if ap.drop:
            continue
        if named and i < n_pos and ap.keyword is None:
            ap.keyword = f"n{i}"
        named = named or ap.keyword is not None or i >= n_pos
    for j in range(draw(st.integers(0, 2))):
        plan.added.append((f"added{j}", draw(st.sampled_from(["None", "(1, 2)", lambda texts: str(len(texts))]))))
    return text, plan, skip


@fuzz(600)
@given(calls())
def test_argument_lists_are_rewritten_as_libcst_renders_them(case):
    text, plan, skip = case
    ast.parse(text, mode="eval")  # the generator makes calls Python accepts
    expected = libcst_oracle.rewrite_arguments(text, plan, skip)
    assert _rewrite_arguments(text, plan, skip) == expected
    ast.parse(expected, mode="eval")


IMPORT_SEPARATORS = [", ", ",", " , ", ",\n    ", ",  # why\n    "]


@st.composite
def imports(draw):
    names = draw(st.lists(st.sampled_from(["a", "b as c", "d.e", "f as g", "h"]), min_size=1, max_size=4, unique=True))
    parens = draw(st.booleans())
    if parens:
        names = [n for n in names if "." not in n] or ["a"]
        body = names[0]
        for name in names[1:]:
            body += draw(st.sampled_from(IMPORT_SEPARATORS)) + name
        text = "from m import (" + draw(st.sampled_from(OPENING)) + body + draw(st.sampled_from(CLOSING)) + ")"
    else:
        body = ", ".join(names)
        text = ("import " if any("." in n for n in names) or draw(st.booleans()) else "from m import ") + body
    keep = [draw(st.booleans()) for _ in names]
    keep[draw(st.integers(0, len(names) - 1))] = True
    return text, keep


@fuzz(300)
@given(imports())
def test_import_names_are_removed_as_libcst_renders_it(case):
    text, keep = case
    expected = libcst_oracle.without_aliases(text, keep)
    assert _without_aliases(text, keep) == expected
    ast.parse(expected)


def test_a_generator_argument_keeps_the_calls_parentheses():
    text = "f(x for x in y)"
    plan = CallPlan([ArgPlan("p0")], added=[])
    assert _rewrite_arguments(text, plan, 0) == text
