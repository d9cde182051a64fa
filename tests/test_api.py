"""The public API other tools build on: migrate_source, MigrationResult, Finding, Config."""

from __future__ import annotations

import re

import pytest

from codemod import Config, Finding, MigrationError, MigrationResult, migrate_source

SOURCE = "import torch.nn as nn\nbn = nn.BatchNorm2d(3, momentum=None)\nok = nn.BatchNorm2d(3, momentum=0.1)\n"


def test_result_fields() -> None:
    result = migrate_source(SOURCE, path="model.py")
    assert isinstance(result, MigrationResult)
    assert result.changed and result.code != SOURCE
    [finding] = result.findings
    assert isinstance(finding, Finding)
    assert (finding.code, finding.severity, finding.line, finding.column, finding.path) == (
        "BN003", "error", 2, 32, "model.py")
    assert "momentum=None" in finding.message
    assert result.remaining_torch == ["torch.nn.BatchNorm2d"]  # the call left unconverted


def test_markers_can_be_switched_off() -> None:
    with_markers = migrate_source(SOURCE).code
    without = migrate_source(SOURCE, config=Config(markers=False)).code
    assert "# torch2ms: BN003" in with_markers
    assert "# torch2ms" not in without
    assert without == re.sub(r"  # torch2ms: .*", "", with_markers)
    # The finding is reported either way.
    assert [f.code for f in migrate_source(SOURCE, config=Config(markers=False)).findings] == ["BN003"]


def test_unchanged_source_is_returned_as_is() -> None:
    source = "import torch\ntorch.manual_seed(3)  # nothing the rules cover here\n"
    result = migrate_source(source)
    assert result.code is source and not result.changed and result.findings == []


def test_python2_source_raises_with_the_position() -> None:
    source = "import torch.nn as nn\nprint 'hello'\nbn = nn.BatchNorm2d(3)\n"
    with pytest.raises(MigrationError) as info:
        migrate_source(source, path="old.py")
    assert info.value.line == 2 and info.value.path == "old.py"
    assert "syntax error" in str(info.value)


def test_byte_order_mark_is_kept() -> None:
    result = migrate_source("\ufeff" + SOURCE.replace("None", "0.2"))
    assert result.code.startswith("\ufeffimport mindspore.nn as nn\n")
    assert "momentum=0.8" in result.code


def test_positions_count_code_points_on_non_ascii_lines() -> None:
    source = "import torch.nn as nn\nlabel = 'überprüfung ✓'; bn = nn.BatchNorm2d(3, momentum=None)\n"
    [finding] = migrate_source(source).findings
    line = source.splitlines()[1]
    assert line[finding.column:].startswith("None")


def test_sites_describe_each_conversion() -> None:
    result = migrate_source("import torch.nn as nn\nbn = nn.BatchNorm2d(3, momentum=0.1)\n")
    [site] = [s for s in result.sites if s.kind == "construct"]
    assert (site.line, site.column, site.rule, site.target) == (2, 5, "torch.nn.BatchNorm2d", "bn")
    assert site.original == "nn.BatchNorm2d(3, momentum=0.1)"
    assert site.replacement == "nn.BatchNorm2d(3, momentum=0.9)"


def test_the_distribution_ships_every_package() -> None:
    """A non-editable install (pre-commit's) gets the packages pyproject.toml lists: all of them."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "codemod").rglob("__init__.py")}
    assert found | {"codemod.rules"} == listed
