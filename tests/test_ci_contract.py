"""The numeric tests can never pass CI by skipping: without PyTorch/MindSpore they skip locally, and
fail when TORCH2MS_REQUIRE_FRAMEWORKS=1 (which .ci/run and `make test` set)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Imported at interpreter start (via PYTHONPATH): torch and mindspore become unimportable.
BLOCKER = """\
import importlib.abc, sys
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "mindspore"):
            raise ImportError(f"No module named {name!r}")
sys.meta_path.insert(0, _Block())
"""

NUMERIC_TEST = "tests/test_numeric.py::test_float16_batchnorm_is_reported_and_caught"


def _pytest_without_frameworks(tmp_path: Path, require: bool) -> subprocess.CompletedProcess:
    (tmp_path / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "TORCH2MS_REQUIRE_FRAMEWORKS"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    if require:
        env["TORCH2MS_REQUIRE_FRAMEWORKS"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", NUMERIC_TEST],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_numeric_tests_skip_locally_without_frameworks(tmp_path: Path) -> None:
    result = _pytest_without_frameworks(tmp_path, require=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout


def test_numeric_tests_fail_in_ci_without_frameworks(tmp_path: Path) -> None:
    result = _pytest_without_frameworks(tmp_path, require=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "TORCH2MS_REQUIRE_FRAMEWORKS=1" in result.stdout


def test_ci_runs_the_readme_test_command_with_frameworks_required() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "make test" in ci and "TORCH2MS_REQUIRE_FRAMEWORKS=1" in ci
    assert "make test" in readme
    test_recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "TORCH2MS_REQUIRE_FRAMEWORKS=1" in test_recipe and "pytest" in test_recipe
