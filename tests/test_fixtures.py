"""Fixture pairs: ``<case>.in.py`` -> ``<case>.out.py`` (exact expected output); a case without
``.out.py`` must come out byte-identical. ``<case>.findings`` (optional) lists the expected findings,
one ``LINE:COL CODE`` per line. ``<case>.select`` (optional) names the rule selection the case is
run with, one selector per line (``norm``: a case written for the normalization rules, whose
expected output keeps everything else torch). Every case also checks that the output parses and that
migrating it again changes nothing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from codemod import Config, migrate_source

FIXTURES = Path(__file__).parent / "fixtures"
CASES = sorted(FIXTURES.rglob("*.in.py"))


def read(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as fh:  # keep CRLF as CRLF
        return fh.read()


def expected_findings(case: Path) -> list[str] | None:
    path = case.with_name(case.name[: -len(".in.py")] + ".findings")
    if not path.exists():
        return None
    return [line.strip() for line in read(path).splitlines() if line.strip() and not line.startswith("#")]


def config_of(case: Path) -> Config:
    path = case.with_name(case.name[: -len(".in.py")] + ".select")
    if not path.exists():
        return Config()
    return Config(select=tuple(line.strip() for line in read(path).splitlines() if line.strip()))


@pytest.mark.parametrize("case", CASES, ids=[str(c.relative_to(FIXTURES))[: -len(".in.py")] for c in CASES])
def test_fixture(case: Path) -> None:
    source = read(case)
    out = case.with_name(case.name[: -len(".in.py")] + ".out.py")
    expected = read(out) if out.exists() else source
    config = config_of(case)
    result = migrate_source(source, path=str(case), config=config)
    assert result.code == expected
    assert result.changed == (expected != source)
    compile(ast.parse(result.code), str(out), "exec")  # parses, and compiles (no keyword given twice)
    again = migrate_source(result.code, path=str(case), config=config)
    assert again.code == result.code, "a second run must change nothing"
    findings = expected_findings(case)
    if findings is not None:
        got = [f"{f.line}:{f.column} {f.code}" for f in result.findings]
        assert got == findings


def test_every_rule_has_fixtures() -> None:
    """Every rule of every family in rules/ (those added later too) is converted in some fixture."""
    from codemod.ruleset import default_rules

    rules = default_rules()
    sites = [site for case in CASES for site in migrate_source(read(case), path=str(case)).sites if site.rule]
    converted = {site.rule for site in sites if site.converted}
    methods = {r.torch for r in rules.methods.values() if not r.unmappable}
    missing = sorted((set(rules.layers) | set(rules.names) | methods) - converted)
    assert not missing, f"rules no fixture converts: {missing}"
    # A torch-only method is never converted: some fixture reports it.
    reported = {site.rule for site in sites if not site.converted}
    unreported = sorted({r.torch for r in rules.methods.values() if r.unmappable} - reported)
    assert not unreported, f"torch-only methods no fixture reports: {unreported}"
