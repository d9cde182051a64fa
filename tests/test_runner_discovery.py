"""Which files `torch2ms migrate DIR` takes: suffixes, .gitignore, --exclude, [tool.torch2ms],
symlinks. Asserted through what happens to the files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from codemod import migrate_source
from codemod.cli import main

BN = "import torch.nn as nn\n\nbn = nn.BatchNorm2d(3, momentum=0.1)\n"
MIGRATED = migrate_source(BN).code
NONE_MOMENTUM = "import torch.nn as nn\n\nbn = nn.BatchNorm2d(3, momentum=None)\n"


def run(*args: str):
    return CliRunner().invoke(main, ["migrate", *args], catch_exceptions=False)


def put(root: Path, *names: str, text: str = BN) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def migrated_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and not p.is_symlink() and "momentum=0.9" in p.read_text(errors="replace"))


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_directories_contribute_py_pyi_and_skip_what_is_not_the_project(cwd):
    put(cwd, "proj/a.py", "proj/stubs/b.pyi", "proj/c.txt", "proj/d.pyx", "proj/.hidden/e.py", "proj/.f.py",
        "proj/__pycache__/g.py", "proj/env/lib/h.py", "proj/node_modules/i.py")
    (cwd / "proj/env/pyvenv.cfg").write_text("home = /usr/bin\n")  # a virtual environment
    result = run("proj")
    assert result.exit_code == 0, result.output
    assert migrated_files(cwd) == ["proj/a.py", "proj/stubs/b.pyi"]
    assert "2 files scanned" in result.stderr


def test_a_file_named_explicitly_is_taken_whatever_its_suffix(cwd):
    put(cwd, "script")
    assert run("script").exit_code == 0
    assert migrated_files(cwd) == ["script"]


def test_exclude_globs_by_name_and_by_path(cwd):
    put(cwd, "proj/keep.py", "proj/legacy/old.py", "proj/gen_pb2.py", "proj/sub/legacy.py", "proj/vendor/x/y.py")
    result = run("proj", "--exclude", "legacy", "--exclude", "*_pb2.py", "--exclude", "proj/vendor")
    assert result.exit_code == 0
    assert migrated_files(cwd) == ["proj/keep.py", "proj/sub/legacy.py"]


def test_pyproject_table_excludes_markers_and_target_version(cwd):
    put(cwd, "proj/keep.py", "proj/third_party/lib.py")
    put(cwd, "proj/none.py", text=NONE_MOMENTUM)
    (cwd / "proj/pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.torch2ms]\nexclude = ["third_party/*"]\nmarkers = false\n'
        'mindspore-version = "2.10"\n')
    result = run("proj")
    assert result.exit_code == 0, result.output
    assert migrated_files(cwd) == ["proj/keep.py"]
    assert "torch2ms:" not in (cwd / "proj/none.py").read_text()  # markers = false
    # The table's globs are relative to the pyproject.toml, wherever the run starts from.
    put(cwd, "proj/third_party/lib2.py")
    assert run("proj/third_party").exit_code == 0
    assert not migrated_files(cwd / "proj/third_party")


def test_command_line_options_override_the_pyproject_table(cwd):
    put(cwd, "proj/a.py", "proj/third_party/lib.py")
    put(cwd, "proj/none.py", text=NONE_MOMENTUM)
    (cwd / "proj/pyproject.toml").write_text('[tool.torch2ms]\nexclude = ["third_party"]\nmarkers = false\n')
    assert run("proj", "--markers", "--exclude", "a.py").exit_code == 0
    assert migrated_files(cwd) == ["proj/third_party/lib.py"]  # --exclude replaced the table's list
    assert "# torch2ms: " in (cwd / "proj/none.py").read_text()  # --markers beat markers = false
    put(cwd, "proj/b.py", "proj/third_party/lib2.py")
    assert run("proj", "--extend-exclude", "b.py").exit_code == 0  # --extend-exclude adds to it
    assert "momentum=0.1" in (cwd / "proj/b.py").read_text()
    assert "momentum=0.1" in (cwd / "proj/third_party/lib2.py").read_text()


@pytest.mark.parametrize("table, message", [
    ('[tool.torch2ms]\nexclud = ["x"]\n', "unknown key 'exclud'"),
    ('[tool.torch2ms]\nmarkers = "no"\n', "markers must be true or false"),
    ('[tool.torch2ms]\nmindspore-version = "newest"\n', "not a version"),
])
def test_a_broken_pyproject_table_is_a_usage_error(cwd, table, message):
    put(cwd, "proj/a.py")
    (cwd / "proj/pyproject.toml").write_text(table)
    result = run("proj")
    assert result.exit_code == 2
    assert message in result.stderr
    assert migrated_files(cwd) == []


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=cwd, check=True,
                   capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_gitignore_is_honoured_inside_a_work_tree(cwd):
    repo = cwd / "repo"
    put(repo, "src/a.py", "build/lib/a.py", "src/generated.py", "src/tracked_but_ignored.py", "untracked.py")
    (repo / ".gitignore").write_text("build/\ngenerated.py\ntracked_but_ignored.py\n")
    git(repo, "init", "-q")
    git(repo, "add", "src/a.py", ".gitignore")
    git(repo, "add", "-f", "src/tracked_but_ignored.py")
    result = run("repo")
    assert result.exit_code == 0, result.output
    # Tracked files are taken (git says they are not ignored), untracked ones unless ignored.
    assert migrated_files(repo) == ["src/a.py", "src/tracked_but_ignored.py", "untracked.py"]
    assert run("repo", "--no-gitignore").exit_code == 0
    assert migrated_files(repo) == ["build/lib/a.py", "src/a.py", "src/generated.py",
                                    "src/tracked_but_ignored.py", "untracked.py"]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_directory_named_explicitly_is_taken_even_if_ignored(cwd):
    repo = cwd / "repo"
    put(repo, "build/a.py", "src/b.py")
    (repo / ".gitignore").write_text("build/\n")
    git(repo, "init", "-q")
    assert run("repo/build").exit_code == 0
    assert migrated_files(repo) == ["build/a.py"]


def test_symlinks_are_not_followed_out_of_the_roots_and_loops_do_not_hang(cwd):
    put(cwd, "outside/victim.py", "outside/pkg/deep.py")
    put(cwd, "proj/real.py")
    (cwd / "proj/link_to_file.py").symlink_to(cwd / "outside/victim.py")
    (cwd / "proj/link_to_dir").symlink_to(cwd / "outside/pkg", target_is_directory=True)
    (cwd / "proj/loop").symlink_to(cwd / "proj", target_is_directory=True)
    (cwd / "proj/inner.py").symlink_to(cwd / "proj/real.py")
    result = run("proj")
    assert result.exit_code == 0, result.output
    assert migrated_files(cwd) == ["proj/real.py"]
    assert "1 file scanned" in result.stderr
    assert (cwd / "proj/inner.py").is_symlink()  # a link inside the tree stays a link


def test_a_symlink_named_explicitly_migrates_its_target_and_stays_a_link(cwd):
    put(cwd, "real/model.py")
    (cwd / "model.py").symlink_to(cwd / "real/model.py")
    assert run("model.py").exit_code == 0
    assert (cwd / "model.py").is_symlink()
    assert (cwd / "real/model.py").read_text() == MIGRATED


def test_the_same_file_named_twice_is_processed_once(cwd):
    put(cwd, "proj/a.py")
    result = run("proj", "proj/a.py", "./proj")
    assert result.exit_code == 0
    assert "1 file scanned, 1 changed" in result.stderr


def test_prefilter_parses_only_files_naming_something_a_rule_triggers_on(cwd):
    from codemod.ruleset import default_rules

    # A file that does not parse is only noticed if it is parsed, and it is parsed only when it
    # names one of the rules' trigger words where torch's could be meant - whichever rule it is.
    put(cwd, "proj/no_trigger.py", text="print 'python 2'\nimport torch\n")
    put(cwd, "proj/own_layer_norm.py", text="print 'python 2'\nimport torch\nfrom .layers import LayerNorm\n"
                                            "norm_layer = LayerNorm\n")
    names = sorted({q.rsplit(".", 1)[1] for q in default_rules().layers})
    assert len(names) > 1
    for name in names:
        put(cwd, f"proj/uses_{name}.py", text=f"print 'python 2'\nx = nn.{name}\n")
    result = run("proj")
    assert result.exit_code == 2
    for name in names:
        assert f"proj/uses_{name}.py: error:" in result.stderr
    assert "no_trigger.py" not in result.stderr
    assert "own_layer_norm.py" not in result.stderr
