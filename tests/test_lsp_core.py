"""The language server's core without a client: positions in the three LSP encodings, the edits a fix
sends, the quick-fix closure, and "every quick-fix one by one ends where fix-all does" over every
fixture input. Plus the command itself without pygls."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from codemod import migration
from codemod.engine import migrate_source
from codemod.lsp.fixes import Lines, analyse, apply_changes, quick_fix, text_changes
from codemod.model import Config

CORE = Config(markers=False)
FIXTURES = sorted(Path(__file__).parent.glob("fixtures/*/*.in.py"))

SEED = "from torch import nn\n\nm = nn.BatchNorm2d(3, momentum=0.1)\nm(x)\n"


def _client_offset(text: str, line: int, character: int, encoding: str) -> int:
    """An LSP position to a string offset, the way a client counts (independent of ``Lines``)."""
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n" or (ch == "\r" and text[i + 1:i + 2] != "\n")]
    pos = starts[line]
    units = 0
    while units < character:
        ch = text[pos]
        units += {"utf-8": len(ch.encode("utf-8")), "utf-16": len(ch.encode("utf-16-le")) // 2}.get(encoding, 1)
        pos += 1
    return pos


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32"])
@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("bom", ["", "\ufeff"])
def test_every_site_range_points_at_the_site_text(encoding, newline, bom):
    text = bom + newline.join([
        "import torch.nn as nn  # 🚀 模型",
        'x = "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 中文"; bn = nn.BatchNorm2d(3, momentum=0.1)  # 注释',
        "é = nn.BatchNorm2d(4, momentum=0.2); é(x); bn(x)",
        "",
    ])
    analysis = analyse(text, CORE)
    lines = Lines(text, encoding)
    constructs = [s for s in analysis.sites if s.kind == "construct"]
    assert len(constructs) == 2
    for site in analysis.sites:
        start = _client_offset(text, *lines.engine_position(site.line, site.column), encoding)
        end = _client_offset(text, *lines.engine_position(site.end_line, site.end_column), encoding)
        assert text[start:end] == site.original
        assert lines.offset_of_position(*lines.engine_position(site.line, site.column)) == start


def test_positions_past_a_line_end_are_clamped_as_the_protocol_says():
    lines = Lines("ab\ncd\n")
    assert lines.offset_of_position(0, 99) == 2
    assert lines.offset_of_position(9, 0) == 6


@pytest.mark.parametrize("old,new", [
    ("a\nb\nc\n", "a\nB\nc\n"),
    ("a\nb\nc", "z\na\nb\nc\nd"),
    ("x = 1\r\ny = 2\r\n", "x = 1\r\nimport m\r\ny = 2\r\n"),
    ("", "import m\n"),
    ("keep\n", ""),
])
def test_text_changes_turn_the_old_text_into_the_new_one(old, new):
    assert apply_changes(old, text_changes(old, new)) == new


def test_text_changes_touch_only_the_changed_lines():
    # An editor keeps the cursor, folds and marks of the lines a fix does not touch.
    old = "import torch\nfrom torch import nn\n\nbn = nn.BatchNorm2d(3)\n" + "pass\n" * 50
    new = migrate_source(old, config=CORE).code
    spans = [(old[c.start:c.end], c.text) for c in text_changes(old, new)]
    assert spans == [("from torch import nn\n", "from mindspore import nn\n")]


def test_the_quick_fix_takes_along_the_sites_only_its_site_reveals(monkeypatch):
    # Whatever the engine groups itself, the server checks by re-analysis that applying a site leaves
    # no other site undetectable. Here the engine's grouping is switched off, as if a pass had
    # forgotten to say that the inserted set_train() relies on the constructor.
    monkeypatch.setattr(migration, "select_components", lambda sites, by_node, only: set(only))
    analysis = analyse(SEED, CORE)
    construct = next(s for s in analysis.sites if s.kind == "construct")
    alone = migrate_source(SEED, config=Config(markers=False, only=frozenset({construct.id}))).code
    assert "set_train" not in alone  # the engine alone would lose it...
    assert quick_fix(analysis, construct.id, CORE) == migrate_source(SEED, config=CORE).code  # ...the fix does not
    assert migrate_source(SEED, config=CORE).code == "from mindspore import nn\n\nm = nn.BatchNorm2d(3, momentum=0.9)\nm.set_train()\nm(x)\n"


def test_a_site_whose_only_change_is_the_import_is_offered():
    text = "import torch.nn as nn\n\nbn = nn.BatchNorm3d(2)\nbn.eval()\n"
    analysis = analyse(text, CORE)
    construct = analysis.site("3:5:construct")
    assert construct is not None  # offered, although its text stays:
    migrated = next(s for s in migrate_source(text, config=CORE).sites if s.id == construct.id)
    assert migrated.replacement == construct.original
    assert quick_fix(analysis, construct.id, CORE) == migrate_source(text, config=CORE).code


def test_a_site_that_changes_nothing_is_not_offered():
    text = ("import functools\nimport torch.nn as nn\n\n"
            "norm = functools.partial(nn.BatchNorm2d, momentum=0.01)\na = norm(64)\n")
    result = migrate_source(text, config=CORE)
    call = next(s for s in result.sites if s.kind == "construct" and s.original == "norm(64)")
    assert call.converted
    assert call.id not in {s.id for s in analyse(text, CORE).sites}


def _one_by_one(text: str, pick) -> str:
    for _ in range(200):
        analysis = analyse(text, CORE)
        assert analysis.result is not None
        if not analysis.sites:
            return text
        site = pick(analysis.sites)
        fixed = quick_fix(analysis, site.id, CORE)
        assert fixed != text, f"the quick-fix for {site.id} changed nothing"
        text = fixed
    raise AssertionError("no end")


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_quick_fix_one_by_one_ends_where_fix_all_does(path):
    text = path.read_text(encoding="utf-8")
    try:
        expected = migrate_source(text, config=CORE).code
    except engine.MigrationError:
        pytest.skip("does not parse")
    rng = random.Random(path.name)
    for pick in (lambda sites: sites[0], lambda sites: sites[-1], rng.choice):
        assert _one_by_one(text, pick) == expected


def test_other_commands_work_without_pygls_and_lsp_says_what_is_missing():
    hide_pygls = "import sys; sys.modules['pygls'] = None; from codemod.cli import main; main()"
    migrated = subprocess.run([sys.executable, "-c", hide_pygls, "migrate", "-", "--no-markers"], input=SEED,
                              capture_output=True, text=True, timeout=60)
    assert migrated.returncode == 0, migrated.stderr
    assert "momentum=0.9" in migrated.stdout
    server = subprocess.run([sys.executable, "-c", hide_pygls, "lsp"], capture_output=True, text=True, timeout=60)
    assert server.returncode == 1
    assert "pip install 'torch2ms[lsp]'" in server.stderr
