"""torch2ms through LibCST's own codemod CLI (``python -m libcst.tool codemod``) writes the files
``torch2ms migrate`` writes: every fixture, byte for byte."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent


def _expected(case: Path) -> bytes:
    out = case.with_name(case.name[: -len(".in.py")] + ".out.py")
    return (out if out.exists() else case).read_bytes()


def _selection(case: Path) -> str:
    path = case.with_name(case.name[: -len(".in.py")] + ".select")
    return ",".join(path.read_text().split()) if path.exists() else ""


def test_the_libcst_codemod_command_writes_what_migrate_writes(tmp_path: Path) -> None:
    cases = sorted(FIXTURES.rglob("*.in.py"))
    cases = [c for c in cases if "projects" not in c.parts]  # one file at a time: no project index
    # The cases written for a selection (``<case>.select``) run with it, as --select.
    for selection in sorted({_selection(c) for c in cases}):
        root = tmp_path / (selection or "all")
        chosen = [c for c in cases if _selection(c) == selection]
        for case in chosen:
            target = root / case.relative_to(FIXTURES)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(case, target)
        extra = ["--select", selection] if selection else []
        done = subprocess.run([sys.executable, "-m", "libcst.tool", "codemod", "--no-format", "-x",
                               "codemod.libcst_codemod.Migrate", *extra, "."], cwd=root, capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "Failed to codemod 0 files" in done.stderr
        different = [str(c.relative_to(FIXTURES)) for c in chosen
                     if (root / c.relative_to(FIXTURES)).read_bytes() != _expected(c)]
        assert not different


def test_the_libcst_codemod_command_reports_findings_as_warnings(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text("import torch.nn as nn\nbn = nn.BatchNorm2d(3, momentum=None)\n")
    done = subprocess.run([sys.executable, "-m", "libcst.tool", "codemod", "--no-format", "-x",
                           "codemod.libcst_codemod.Migrate", "model.py"], cwd=tmp_path, capture_output=True, text=True)
    assert "BN003 [error] momentum=None" in done.stderr
    assert "# torch2ms: BN003" in (tmp_path / "model.py").read_text()
