"""The pre-commit hooks, run by the real ``pre-commit`` in a temporary git repository.

The hooks repository is a snapshot of this checkout's working tree (tracked and untracked files,
as ``git ls-files`` lists them, committed in a temporary repository), so the test covers the code
as it is now, uncommitted changes and new files included. (``pre-commit try-repo`` would miss
untracked files, and builds its environment in a throw-away store on every call.) pre-commit
installs it the way users get it: a virtualenv and ``pip install`` of the repository, non-editable,
with click from PyPI, once per test session (PRE_COMMIT_HOME is per session)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRE_COMMIT = [sys.executable, "-m", "pre_commit"]

TORCH_MODEL = "from torch import nn\n\nm = nn.BatchNorm2d(num_features=3, momentum=0.1)\noutput = m(input_py)\n"
MIGRATED_MODEL = "from mindspore import nn\n\nm = nn.BatchNorm2d(num_features=3, momentum=0.9)\nm.set_train()\noutput = m(input_py)\n"
NO_TORCH = "import numpy as np\n\nprint(np.ones(3))  # nn.BatchNorm2d is mentioned only here\n"
PYTHON2 = "import torch.nn as nn\n\nbn = nn.BatchNorm2d(3)\nprint 'not Python 3'\n"
UNCONVERTIBLE = "from torch import nn\n\ncma = nn.BatchNorm2d(3, momentum=None)\n"

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _git_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
    })
    return env


def _run(args, cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def hooks_repo(tmp_path_factory) -> tuple[Path, str]:
    """This checkout's working tree, committed in a temporary repository: (path, commit)."""
    snapshot = tmp_path_factory.mktemp("hooks-repo")
    env = _git_env(snapshot)
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is not listed twice
            (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, snapshot / name)
    for args in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "snapshot"]):
        subprocess.run(args, cwd=snapshot, env=env, check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=snapshot, capture_output=True, text=True,
                            check=True).stdout.strip()
    return snapshot, commit


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


class Project:
    """A user's repository with torch2ms in its .pre-commit-config.yaml and the git hook installed."""

    def __init__(self, path: Path, env: dict[str, str]):
        self.path = path
        self.env = env

    def write(self, name: str, text: str) -> None:
        (self.path / name).write_text(text, encoding="utf-8")

    def read(self, name: str) -> str:
        return (self.path / name).read_text(encoding="utf-8")

    def git(self, *args: str) -> subprocess.CompletedProcess:
        return _run(["git", *args], self.path, self.env)

    def commit(self, *names: str) -> subprocess.CompletedProcess:
        self.git("add", *names)
        return self.git("commit", "-m", "change")

    def pre_commit(self, *args: str) -> subprocess.CompletedProcess:
        return _run([*PRE_COMMIT, *args], self.path, self.env)

    def configure(self, repo: tuple[Path, str], hook: str, args: list[str] | None = None) -> None:
        path, commit = repo
        lines = ["repos:", f"  - repo: {path}", f"    rev: {commit}", "    hooks:", f"      - id: {hook}"]
        if args:
            lines.append(f"        args: [{', '.join(args)}]")
        self.write(".pre-commit-config.yaml", "\n".join(lines) + "\n")


@pytest.fixture
def project(tmp_path, hooks_repo, pre_commit_home) -> Project:
    env = _git_env(tmp_path)
    env["PRE_COMMIT_HOME"] = str(pre_commit_home)
    proj = Project(tmp_path / "project", env)
    proj.path.mkdir()
    proj.git("init", "-q")
    proj.configure(hooks_repo, "torch2ms")
    installed = proj.pre_commit("install")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    proj.git("add", ".pre-commit-config.yaml")
    return proj


def _output(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def test_a_commit_with_torch_is_blocked_and_fixed_and_the_second_commit_passes(project):
    project.write("model.py", TORCH_MODEL)
    project.write("plain.py", NO_TORCH)
    first = project.commit("model.py", "plain.py")
    assert first.returncode != 0, _output(first)
    assert "files were modified by this hook" in _output(first)
    assert project.git("rev-parse", "--verify", "-q", "HEAD").returncode != 0  # nothing was committed
    assert project.read("model.py") == MIGRATED_MODEL
    assert project.read("plain.py") == NO_TORCH

    second = project.commit("model.py", "plain.py")
    assert second.returncode == 0, _output(second)
    assert "torch2ms" in _output(second) and "Passed" in _output(second)
    assert project.git("show", "HEAD:model.py").stdout == MIGRATED_MODEL


def test_a_file_with_a_syntax_error_blocks_the_commit_with_a_clear_message(project):
    project.write("legacy.py", PYTHON2)
    result = project.commit("legacy.py")
    assert result.returncode != 0
    assert "legacy.py: error: 4:1: syntax error" in _output(result), _output(result)
    assert project.read("legacy.py") == PYTHON2


def test_the_check_hook_changes_nothing_and_lists_the_findings(project, hooks_repo):
    project.configure(hooks_repo, "torch2ms-check")
    project.write("model.py", TORCH_MODEL)
    result = project.commit(".pre-commit-config.yaml", "model.py")
    assert result.returncode != 0
    out = _output(result)
    assert "would migrate model.py" in out
    assert "model.py:3:1: MD001 [info] m.set_train() inserted" in out
    assert "files were modified" not in out
    assert project.read("model.py") == TORCH_MODEL


def test_an_error_finding_fails_the_hook_even_when_nothing_changes(project, hooks_repo):
    project.configure(hooks_repo, "torch2ms", ["--no-markers"])
    project.write("cma.py", UNCONVERTIBLE)
    result = project.commit(".pre-commit-config.yaml", "cma.py")
    assert result.returncode != 0
    assert "cma.py:3:34: BN003 [error]" in _output(result), _output(result)
    assert project.read("cma.py") == UNCONVERTIBLE  # --no-markers: not even a comment


def test_arguments_pass_through_to_the_command(project, hooks_repo):
    project.configure(hooks_repo, "torch2ms", ["--exclude", "generated_*.py"])
    project.write("generated_model.py", TORCH_MODEL)
    project.write("model.py", TORCH_MODEL)
    result = project.commit(".pre-commit-config.yaml", "generated_model.py", "model.py")
    assert result.returncode != 0
    assert project.read("model.py") == MIGRATED_MODEL
    assert project.read("generated_model.py") == TORCH_MODEL

    project.configure(hooks_repo, "torch2ms", ["--mindspore-version", "not-a-version"])
    bad = project.pre_commit("run", "--all-files")
    assert bad.returncode != 0
    assert "not a version: 'not-a-version'" in _output(bad)
