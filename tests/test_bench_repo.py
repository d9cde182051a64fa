"""The pure helpers of benchmarks/bench_repo.py: findings grouped by code, torch references counted."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path

import pytest

from codemod import migrate_source
from codemod.ruleset import default_rules

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_repo.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_repo", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_repo"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules["bench_repo"]


def _report(*findings: tuple[str, str]) -> dict:
    return {"files": [{"path": "a.py", "findings": [{"code": c, "severity": s} for c, s in findings]},
                      {"path": "b.py", "findings": []}]}


def test_findings_are_grouped_by_code_and_severity_leaving_out_info(bench) -> None:
    groups = bench.findings_by_code(_report(("TM002", "error"), ("TM002", "error"), ("FN007", "warning"),
                                            ("TS001", "info")))
    assert groups == Counter({("TM002", "error"): 2, ("FN007", "warning"): 1})


def test_the_table_puts_the_largest_group_after_first_and_shows_groups_that_disappeared(bench) -> None:
    before = Counter({("TM002", "error"): 120, ("FN007", "warning"): 3})
    after = Counter({("TM002", "error"): 5, ("FN001", "error"): 9})
    lines = bench.findings_table(after, before, {"FN001": "a function named, not called"})
    rows = [line.split() for line in lines[1:]]
    assert [r[0] for r in rows[:3]] == ["FN001", "TM002", "FN007"]
    assert rows[0][:5] == ["FN001", "error", "0", "9", "+9"]
    assert "a function named, not called" in lines[1]
    assert rows[1][:5] == ["TM002", "error", "120", "5", "-115"]
    assert rows[2][:5] == ["FN007", "warning", "3", "0", "-3"]
    assert rows[-2][:5] == ["total", "error", "120", "14", "-106"]
    assert rows[-1][:5] == ["total", "warning", "3", "0", "-3"]


def test_the_table_without_a_before_shows_the_after_counts_only(bench) -> None:
    lines = bench.findings_table(Counter({("TM002", "error"): 4}), None, {})
    assert lines[1].split()[:4] == ["TM002", "error", "-", "4"]


SOURCE = """\
import torch
from torch import nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm2d(3)

    def forward(self, x):
        return F.relu(self.bn(x)) + torch.zeros(2, 3)


def local(nn):
    return nn.BatchNorm2d(3)  # a parameter named nn: not torch's
"""


def test_references_are_loads_resolving_to_torch_names(bench) -> None:
    rules = default_rules()
    names, imports = bench.torch_use_of(SOURCE, rules)
    assert imports
    assert names == Counter({"torch.nn.Module": 1, "torch.nn.BatchNorm2d": 1, "torch.nn.functional.relu": 1,
                             "torch.zeros": 1})


def test_a_migrated_file_has_fewer_references_and_a_file_without_torch_none(bench) -> None:
    rules = default_rules()
    migrated = migrate_source(SOURCE, path="net.py").code
    names, imports = bench.torch_use_of(migrated, rules)
    assert sum(names.values()) < 4
    assert bench.torch_use_of("import numpy as np\nx = np.zeros(3)\n", rules) == (Counter(), False)
    assert bench.torch_use_of("from torch.nn import *\n", rules)[1]
    assert bench.torch_use_of("def f(:\n", rules) is None


def test_the_lines_count_files_freed_of_torch_and_the_converted_fraction(bench, tmp_path: Path) -> None:
    rules = default_rules()
    original, migrated = tmp_path / "original", tmp_path / "migrated"
    for root in (original, migrated):
        root.mkdir()
    (original / "net.py").write_text(SOURCE)
    (migrated / "net.py").write_text(migrate_source(SOURCE, path="net.py").code)
    (original / "plain.py").write_text("x = 1\n")  # unchanged: --out does not write it
    files = ["net.py", "plain.py"]
    before, after = bench.torch_use(original, files, rules), bench.torch_use(migrated, files, rules, original)
    assert after.files == 2 and after.unparsable == 0
    assert before.references == 4 and before.importing == {"net.py"}
    lines = bench.torch_use_lines(before, {"migrated": (after, {"net.py"})})
    assert lines[0].startswith("  original: 4 references to torch names in 1 files; 1 of 2 files import torch")
    left = after.references
    assert f"{left} references left, {4 - left} converted ({1 - left / 4:.1%})" in lines[1]
    freed = 0 if after.importing else 1
    assert f"{freed} of the 1 that did import none" in lines[1]
    assert lines[2] == f"    of the 1 files it changed: 1 imported torch, {freed} of them import none after"
