"""Migrating one site at a time (Config(only=...), what an editor's quick-fix does) must end where
migrating the whole file at once does, in whatever order the sites are taken."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from codemod import Config, migrate_source

FIXTURES = Path(__file__).parent / "fixtures"
CASES = sorted(FIXTURES.rglob("*.in.py"))


def _step_candidates(source: str) -> list[str]:
    result = migrate_source(source)
    return [s.id for s in result.sites if s.changes and s.kind != "imports"]


def _one_at_a_time(source: str, pick) -> str:
    for _ in range(60):
        candidates = []
        for site_id in _step_candidates(source):
            after = migrate_source(source, config=Config(only=frozenset({site_id}))).code
            if after != source:
                candidates.append(after)
        if not candidates:
            return source
        source = pick(candidates)
    raise AssertionError("one site at a time did not converge")


@pytest.mark.parametrize("order", ["first", "last", "shuffled"])
@pytest.mark.parametrize("case", CASES, ids=[str(c.relative_to(FIXTURES))[: -len(".in.py")] for c in CASES])
def test_one_site_at_a_time_ends_where_all_at_once_does(case: Path, order: str) -> None:
    source = case.read_text(encoding="utf-8")
    everything = migrate_source(source).code
    rng = random.Random(str(case))
    pick = {"first": lambda c: c[0], "last": lambda c: c[-1], "shuffled": rng.choice}[order]
    assert _one_at_a_time(source, pick) == everything


def test_selecting_a_site_applies_what_it_relies_on() -> None:
    # The set_train() insertion relies on the constructor call being MindSpore's: selecting either
    # converts both, so the half-migrated file is never torch's layer with MindSpore's set_train().
    source = "import torch.nn as nn\nbn = nn.BatchNorm2d(3, momentum=0.1)\ny = bn(x)\n"
    result = migrate_source(source)
    set_train = next(s for s in result.sites if s.kind == "set_train")
    construct = next(s for s in result.sites if s.kind == "construct")
    for site in (set_train, construct):
        only = migrate_source(source, config=Config(only=frozenset({site.id}))).code
        assert only == result.code == (
            "import mindspore.nn as nn\nbn = nn.BatchNorm2d(3, momentum=0.9)\nbn.set_train()\ny = bn(x)\n")
