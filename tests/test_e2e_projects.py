"""Multi-file projects, end to end (issue 16): the entry script of each fixture project runs under
PyTorch with the original tree on sys.path, and the migrated entry script under MindSpore with the
migrated tree (what test_projects.py proves torch2ms writes) on sys.path; what they record must agree.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from codemod.verify import Tolerance, load_frameworks
from codemod.verify.harness import compare_records, run_program
from tests.test_projects import CASES, PROJECTS, expected_tree, tree_files


def entry_of(case: str) -> str | None:
    """The file of the project that runs it (calls record())."""
    found = [name for name, data in tree_files(PROJECTS / case / "in").items()
             if name.endswith(".py") and b"record(" in data]
    return found[0] if len(found) == 1 else None


RUNNABLE = [c for c in CASES if entry_of(c) is not None]


@pytest.fixture(scope="module")
def fw(frameworks):
    return load_frameworks()


def run_tree(root: Path, entry: str, framework: str, fw) -> dict:
    """Run ``entry`` as a script with the tree (and its src/) first on sys.path, and forget the
    tree's modules afterwards (the other framework's run imports its own copies)."""
    paths = [str(root / "src"), str(root)] if (root / "src").is_dir() else [str(root)]
    paths.insert(0, str((root / entry).parent))
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    sys.path[:0] = paths
    try:
        return run_program((root / entry).read_text(encoding="utf-8"), framework, fw, filename=str(root / entry))
    finally:
        sys.path[:] = saved_path
        for name in set(sys.modules) - saved_modules:
            module = sys.modules.get(name)
            if str(getattr(module, "__file__", "") or "").startswith(str(root)):
                del sys.modules[name]


def test_most_projects_run_end_to_end() -> None:
    assert {"layout", "package_reexports", "import_module_alias", "src_layout", "star_all", "subclass",
            "factory", "circular", "migrated_models"} <= set(RUNNABLE)


@pytest.mark.parametrize("case", RUNNABLE)
def test_project_computes_what_the_original_computes(case: str, tmp_path: Path, fw) -> None:
    entry = entry_of(case)
    original = tmp_path / "original"
    migrated = tmp_path / "migrated"
    for root, files in ((original, tree_files(PROJECTS / case / "in")), (migrated, expected_tree(case))):
        for name, data in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
    if case == "migrated_models":  # its "original" models.py is MindSpore's: run the torch one
        (original / "models.py").write_bytes((PROJECTS / "layout" / "in" / "models.py").read_bytes())
    expected = run_tree(original, entry, "torch", fw)
    actual = run_tree(migrated, entry, "mindspore", fw)
    assert expected, "the program recorded nothing"
    comparisons = compare_records(expected, actual, Tolerance())
    failed = [f"{c.phase}: max abs {c.max_abs:.3g} {c.detail}" for c in comparisons if not c.passed]
    assert not failed, "\n".join(failed)


def test_the_unmigrated_user_of_a_model_computes_something_else(tmp_path: Path, fw) -> None:
    """Why the project matters: models.py migrated, train.py left as it was (what torch2ms wrote
    before it read projects), and MindSpore runs the model in inference mode."""
    case = "layout"
    broken = tmp_path / "broken"
    files = expected_tree(case)
    files["train.py"] = (PROJECTS / case / "in" / "train.py").read_bytes().replace(
        b"net.bn.running_mean", b"net.bn.moving_mean").replace(b"net.bn.running_var", b"net.bn.moving_variance") \
        .replace(b"net.eval()", b"net.set_train(False)").replace(b"net.train()", b"net.set_train()")
    for name, data in files.items():
        (broken / name).parent.mkdir(parents=True, exist_ok=True)
        (broken / name).write_bytes(data)
    original = tmp_path / "original"
    for name, data in tree_files(PROJECTS / case / "in").items():
        (original / name).parent.mkdir(parents=True, exist_ok=True)
        (original / name).write_bytes(data)
    expected = run_tree(original, "train.py", "torch", fw)
    actual = run_tree(broken, "train.py", "mindspore", fw)
    assert not compare_records(expected, actual, Tolerance())[0].passed  # the first output differs
