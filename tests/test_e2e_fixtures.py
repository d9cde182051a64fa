"""Executable fixtures, end to end: a fixture pair whose ``.in.py`` calls ``record(`` is run as a
program, the original under PyTorch and the ``.out.py`` (which test_fixtures.py proves equal to what
``migrate_source`` writes) under MindSpore, with the harness's ``sample``/``record`` builtins; the
recorded values must agree by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from codemod import migrate_source
from codemod.verify import Tolerance, load_frameworks
from codemod.verify.harness import compare_records, run_program

FIXTURES = Path(__file__).parent / "fixtures"


def read(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as fh:
        return fh.read()


def executable_cases() -> list[Path]:
    return sorted(p for p in FIXTURES.rglob("*.in.py") if "record(" in read(p))


CASES = executable_cases()


def migrated_of(case: Path) -> Path:
    out = case.with_name(case.name[: -len(".in.py")] + ".out.py")
    return out if out.exists() else case


@pytest.fixture(scope="module")
def fw(frameworks):
    return load_frameworks()


def test_there_are_executable_fixtures() -> None:
    assert any(c.parent.name == "e2e" for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[str(c.relative_to(FIXTURES))[: -len(".in.py")] for c in CASES])
def test_executable_fixture(case: Path, fw) -> None:
    original, migrated = read(case), read(migrated_of(case))
    assert migrate_source(original, path=str(case)).code == migrated  # what runs is what the tool writes
    expected = run_program(original, "torch", fw, filename=str(case))
    actual = run_program(migrated, "mindspore", fw, filename=str(migrated_of(case)))
    assert expected, "the program recorded nothing"
    comparisons = compare_records(expected, actual, Tolerance())
    failed = [f"{c.phase}: max abs {c.max_abs:.3g}, max rel {c.max_rel:.3g} {c.detail}" for c in comparisons if not c.passed]
    assert not failed, "\n".join(failed)


def test_a_missing_set_train_is_caught(fw) -> None:
    """The harness must see the silent bug the tool exists for: without the inserted set_train(),
    the MindSpore layer normalizes with its initial statistics."""
    case = FIXTURES / "e2e" / "default_then_eval.in.py"
    migrated = read(migrated_of(case))
    assert "bn.set_train()\n" in migrated
    broken = migrated.replace("bn.set_train()\nfor", "for", 1)
    expected = run_program(read(case), "torch", fw)
    actual = run_program(broken, "mindspore", fw)
    failed = {c.phase for c in compare_records(expected, actual) if not c.passed}
    assert {"train_0", "mean", "var"} <= failed


def test_sample_gives_both_frameworks_the_same_numbers(fw) -> None:
    program = "record('x', sample(2, 3, seed=5))\nrecord('y', sample(2, 3))\n"
    torch_run = run_program(program, "torch", fw)
    ms_run = run_program(program, "mindspore", fw)
    assert torch_run["x"].dtype == ms_run["x"].dtype == "float32"
    assert (torch_run["x"] == ms_run["x"]).all()
    assert not (torch_run["x"] == torch_run["y"]).all()  # the seed matters


def test_a_record_missing_on_one_side_fails(fw) -> None:
    expected = run_program("record('a', sample(2))\nrecord('b', sample(2))\n", "torch", fw)
    actual = run_program("record('a', sample(2))\n", "mindspore", fw)
    result = {c.phase: c for c in compare_records(expected, actual)}
    assert result["a"].passed and not result["b"].passed
    assert "not recorded under MindSpore" in result["b"].detail


PROGRAMS_UPDATING_A_RECORDED_STATISTIC = {
    "torch": "import torch.nn as nn\nbn = nn.BatchNorm1d(4)\nstat = bn.running_mean\n",
    "mindspore": "import mindspore.nn as nn\nbn = nn.BatchNorm1d(4)\nbn.set_train()\nstat = bn.moving_mean\n",
}


@pytest.mark.parametrize("framework", ["torch", "mindspore"])
def test_a_record_keeps_the_value_it_was_given(framework, fw) -> None:
    # Both frameworks' arrays share a parameter's memory (torch's .numpy(), MindSpore's .asnumpy()),
    # which a training pass updates in place: a running statistic recorded before the pass was
    # compared with its value after it (found by the fuzzer, as "silent" differences either way).
    program = PROGRAMS_UPDATING_A_RECORDED_STATISTIC[framework] + (
        "record('before', stat)\n"
        "bn(sample(8, 4, seed=1) * 3 + 2)\n"
        "record('after', stat)\n")
    run = run_program(program, framework, fw)
    assert abs(run["before"]).max() == 0 and abs(run["after"]).min() > 0.1
