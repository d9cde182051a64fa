"""Projects with several files (issue 16): a file that uses another file's model is migrated with
what that file defines.

Each case under fixtures/projects/<case>/ is an input tree (``in/``) and the tree torch2ms must
write from it (``out/``); ``findings`` (optional) lists the warnings and errors expected, one
``PATH:LINE:COL CODE`` a line. The tree is migrated through the command line, every file compared
byte for byte; then the outputs must parse, a second run must change nothing, ``--jobs 2`` must
write the same bytes as ``--jobs 1``, and migrating any one file alone (the others as ``out/`` has
them: a project migrated part way) must give that file as migrating the whole tree does.
"""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from codemod.cli import main
from codemod.runner import parallel

PROJECTS = Path(__file__).parent / "fixtures" / "projects"
CASES = sorted(p.name for p in PROJECTS.iterdir() if (p / "in").is_dir())


def tree_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def expected_tree(case: str) -> dict[str, bytes]:
    """out/ holds the files that change; every other file stays as in/ has it."""
    files = tree_files(PROJECTS / case / "in")
    files.update(tree_files(PROJECTS / case / "out") if (PROJECTS / case / "out").is_dir() else {})
    return files


def migrate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["migrate", *args], catch_exceptions=False)
    return result.exit_code, result.output


def copy_case(case: str, tmp_path: Path, which: str = "in") -> Path:
    work = tmp_path / case
    shutil.copytree(PROJECTS / case / which, work)
    return work


def test_there_are_project_cases() -> None:
    assert {"layout", "package_reexports", "import_module_alias", "src_layout", "star_all", "subclass",
            "factory", "circular", "shadow", "migrated_models", "unresolved"} <= set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_project_migrates_to_its_expected_tree(case: str, tmp_path: Path) -> None:
    work = copy_case(case, tmp_path)
    report = tmp_path / "report.json"
    code, output = migrate(str(work), "--jobs", "1", "-q", "--report", str(report))
    assert code == 0, output
    assert tree_files(work) == expected_tree(case)
    for name, data in tree_files(work).items():
        if name.endswith(".py"):
            ast.parse(data, filename=name)
    findings = sorted(f"{Path(x['path']).relative_to(work)}:{x['line']}:{x['column'] + 1} {x['code']}"
                      for f in json.loads(report.read_text())["files"] for x in f["findings"]
                      if x["severity"] != "info")
    expected = PROJECTS / case / "findings"
    wanted = sorted(expected.read_text().split("\n")) if expected.exists() else []
    assert findings == [w for w in wanted if w]
    # A second run changes nothing.
    code, output = migrate(str(work), "--check", "--jobs", "1")
    assert code == 0, output


@pytest.mark.parametrize("case", CASES)
def test_parallel_run_writes_the_same_bytes(case: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(parallel, "MIN_PARALLEL_FILES", 1)
    monkeypatch.setattr(parallel, "MIN_PARALLEL_BYTES", 0)  # fork workers even for a small tree
    work = copy_case(case, tmp_path)
    code, output = migrate(str(work), "--jobs", "2", "-q")
    assert code == 0, output
    assert tree_files(work) == expected_tree(case)


@pytest.mark.parametrize("case", CASES)
def test_one_file_migrated_alone_is_the_same(case: str, tmp_path: Path) -> None:
    """`torch2ms migrate train.py` in a project whose other files were migrated already."""
    expected = expected_tree(case)
    originals = tree_files(PROJECTS / case / "in")
    changed = [name for name in originals if name.endswith(".py") and originals[name] != expected[name]]
    assert changed
    for name in changed:
        work = tmp_path / name.replace("/", "_")
        shutil.copytree(PROJECTS / case / "in", work)
        for other, data in expected.items():
            (work / other).write_bytes(data)
        (work / name).write_bytes(originals[name])
        code, output = migrate(str(work / name), "--jobs", "1", "-q")
        assert code == 0, output
        assert (work / name).read_bytes() == expected[name], name


def test_without_the_project_the_user_of_a_model_is_left_alone(tmp_path: Path) -> None:
    """The silent difference of the issue, and what --no-project keeps: train.py untouched."""
    work = copy_case("layout", tmp_path)
    code, output = migrate(str(work), "--jobs", "1", "-q", "--no-project")
    assert code == 0, output
    assert (work / "train.py").read_bytes() == (PROJECTS / "layout" / "in" / "train.py").read_bytes()
    assert (work / "models.py").read_bytes() == expected_tree("layout")["models.py"]
