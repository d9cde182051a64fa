"""Rule selection, in the style of ruff: --select / --extend-select / --ignore on the command line and
in [tool.torch2ms], by group, family, torch name or finding code; the language server and verify
honour the same selection."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from codemod import Config, migrate_source
from codemod.cli import main
from codemod.ruleset import RuleError, default_rules

SOURCE = """import torch.nn as nn
import torch.nn.functional as F

bn = nn.BatchNorm2d(3, momentum=0.1)
ln = nn.LayerNorm(4)
y = bn(x)
z = F.batch_norm(x, None, None)
"""


def converted(config: Config) -> set[str]:
    return {s.rule for s in migrate_source(SOURCE, config=config).sites if s.converted and s.rule}


def test_everything_by_default() -> None:
    assert {"torch.nn.BatchNorm2d", "torch.nn.LayerNorm"} <= converted(Config())


@pytest.mark.parametrize("select", [("BatchNorm2d",), ("torch.nn.BatchNorm2d",), ("batchnorm",)])
def test_select_by_name_or_family_converts_only_that(select) -> None:
    result = migrate_source(SOURCE, config=Config(select=select))
    assert "nn.LayerNorm(4)" in result.code  # left as torch, with its import
    assert "momentum=0.9" in result.code
    assert "import torch.nn as nn" in result.code


def test_select_a_group() -> None:
    assert {"torch.nn.BatchNorm2d", "torch.nn.LayerNorm"} <= converted(Config(select=("norm",)))


def test_ignore_leaves_a_family_as_torch_and_silent() -> None:
    result = migrate_source(SOURCE, config=Config(ignore=("layernorm", "FB")))
    assert "nn.LayerNorm(4)" in result.code
    codes = [f.code for f in result.findings]
    assert "FB001" not in codes and "# torch2ms: FB001" not in result.code
    assert "MD001" in codes


def test_code_selectors_choose_what_is_reported_not_what_is_converted() -> None:
    result = migrate_source(SOURCE, config=Config(select=("MD",)))
    assert [f.code for f in result.findings] == ["MD001"]
    assert "momentum=0.9" in result.code and "epsilon=1e-05" in result.code


def test_the_module_skeleton_stays_with_any_selection() -> None:
    source = "import torch.nn as nn\n\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n" \
             "        self.bn = nn.BatchNorm2d(3)\n\n    def forward(self, x):\n        return self.bn(x)\n"
    code = migrate_source(source, config=Config(select=("BatchNorm2d",))).code
    assert "class Net(nn.Cell)" in code and "def construct" in code


def test_an_unknown_selector_is_refused() -> None:
    with pytest.raises(RuleError, match="unknown selector 'BatchNorm9d'"):
        default_rules().selected(("BatchNorm9d",))


def test_the_command_line_and_pyproject(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text(SOURCE)
    result = CliRunner().invoke(main, ["migrate", "--diff", "--select", "BatchNorm2d", "model.py"])
    assert result.exit_code == 1
    assert "+bn = ms_nn.BatchNorm2d(3, momentum=0.9)" in result.output and "LayerNorm((4,)" not in result.output
    (tmp_path / "pyproject.toml").write_text('[tool.torch2ms]\nselect = ["layernorm"]\nignore = ["LN001"]\n')
    result = CliRunner().invoke(main, ["migrate", "--diff", "model.py"])
    assert "LayerNorm((4,), epsilon=1e-05)" in result.output and "momentum=0.9" not in result.output
    result = CliRunner().invoke(main, ["migrate", "--diff", "--extend-select", "BatchNorm2d", "model.py"])
    assert "LayerNorm((4,), epsilon=1e-05)" in result.output and "momentum=0.9" in result.output
    result = CliRunner().invoke(main, ["migrate", "--check", "--select", "nonsense", "model.py"])
    assert result.exit_code == 2 and "unknown selector 'nonsense'" in result.output
