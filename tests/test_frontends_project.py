"""The project through the other front ends (issue 16): stdin with --stdin-filename, the pre-commit
hook with only the user of a model staged, and verify. (The language server: test_lsp_project.py.)"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_precommit import _output, hooks_repo, pre_commit_home, project  # noqa: F401  (fixtures)
from tests.test_projects import PROJECTS, expected_tree

CLI = [sys.executable, "-m", "codemod.cli"]


def run_cli(*args: str, stdin: bytes = b"", cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, cwd=cwd, timeout=120)


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    work = tmp_path / "layout"
    shutil.copytree(PROJECTS / "layout" / "in", work)
    return work


# -- stdin ---------------------------------------------------------------------------------------


def test_stdin_filename_places_the_text_in_its_project(layout: Path, tmp_path: Path) -> None:
    text = (layout / "train.py").read_bytes()
    report = tmp_path / "r.json"
    result = run_cli("migrate", "-", "--stdin-filename", str(layout / "train.py"), "--report", str(report),
                     stdin=text)
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected_tree("layout")["train.py"]
    data = json.loads(report.read_text())
    (entry,) = data["files"]
    assert entry["path"] == str(layout / "train.py") and entry["changed"]
    assert [f["code"] for f in entry["findings"]] == ["MD001"]
    assert (layout / "train.py").read_bytes() == text  # stdin mode writes only to stdout


def test_stdin_text_is_what_the_project_sees_of_that_file(layout: Path) -> None:
    """The buffer, not the file on disk: a models.py whose Net has no norm layer on stdin is not
    migrated, whatever the file on disk says (and train.py, which uses it, neither)."""
    edited = (layout / "models.py").read_text().replace("nn.BatchNorm2d(4, momentum=0.2)", "nn.Softplus()")
    result = run_cli("migrate", "-", "--stdin-filename", str(layout / "models.py"), stdin=edited.encode())
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == edited


def test_stdin_without_a_filename_is_read_alone_and_reported_as_stdin(layout: Path, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    result = run_cli("migrate", "-", "--report", str(report), stdin=(layout / "train.py").read_bytes(), cwd=layout)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (layout / "train.py").read_bytes()  # nothing of the project is known
    assert json.loads(report.read_text())["summary"]["files_scanned"] == 1
    result = run_cli("migrate", "-", "--report", str(report), stdin=(layout / "models.py").read_bytes(), cwd=layout)
    assert result.stdout == expected_tree("layout")["models.py"]
    assert [f["path"] for f in json.loads(report.read_text())["files"]] == ["<stdin>"]


def test_stdin_with_out_is_refused(layout: Path, tmp_path: Path) -> None:
    result = run_cli("migrate", "-", "--out", str(tmp_path / "o"), stdin=b"x = 1\n")
    assert result.returncode == 2
    assert b"--out" in result.stderr
    assert not (tmp_path / "o").exists()


def test_stdin_filename_needs_stdin(layout: Path) -> None:
    result = run_cli("migrate", str(layout), "--stdin-filename", "x.py")
    assert result.returncode == 2


def test_a_report_is_written_for_stdin_that_does_not_parse(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    result = run_cli("migrate", "-", "--report", str(report), stdin=b"import torch.nn as nn\nbn = nn.BatchNorm2d(3)\nprint 'x'\n")
    assert result.returncode == 2
    (entry,) = json.loads(report.read_text())["files"]
    assert entry["path"] == "<stdin>" and "syntax error" in entry["error"]


# -- pre-commit ----------------------------------------------------------------------------------


def test_pre_commit_with_only_the_user_of_a_model_staged(project):  # noqa: F811
    """models.py was migrated and committed before; the commit that stages only train.py gets it
    migrated with what models.py defines (the hook reads the repository around the staged files)."""
    project.write("models.py", (PROJECTS / "layout" / "in" / "models.py").read_text())
    first = project.commit("models.py")
    assert first.returncode != 0, _output(first)  # migrated by the hook: review, add, commit again
    assert project.commit("models.py").returncode == 0
    assert project.read("models.py") == expected_tree("layout")["models.py"].decode()

    project.write("train.py", (PROJECTS / "layout" / "in" / "train.py").read_text())
    blocked = project.commit("train.py")
    assert blocked.returncode != 0, _output(blocked)
    assert project.read("train.py") == expected_tree("layout")["train.py"].decode()
    assert project.commit("train.py").returncode == 0


# -- verify --------------------------------------------------------------------------------------


def test_verify_sees_a_norm_class_of_another_file(tmp_path: Path, frameworks) -> None:
    (tmp_path / "layers.py").write_text("import torch.nn as nn\n\n\nclass MyBN(nn.BatchNorm1d):\n    pass\n")
    (tmp_path / "train.py").write_text("from layers import MyBN\n\nbn = MyBN(4, momentum=0.3)\n")
    result = run_cli("verify", str(tmp_path / "train.py"), "--json")
    assert result.returncode == 0, result.stderr
    sites = json.loads(result.stdout)["sites"]
    assert [(Path(s["path"]).name, s["line"], s["layer"], s["status"]) for s in sites] == [
        ("train.py", 3, "torch.nn.BatchNorm1d", "SKIP")]
    assert "built through MyBN" in sites[0]["reason"]
    # Without the project, train.py names no normalization layer: nothing to check there.
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(tmp_path / "train.py", alone / "train.py")
    result = run_cli("verify", str(alone / "train.py"), "--json")
    assert json.loads(result.stdout)["sites"] == []
