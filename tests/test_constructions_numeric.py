"""Constructions wherever they sit, proven numerically against the migration without them.

test_e2e_fixtures.py runs every executable fixture: the original under PyTorch and what the tool
writes under MindSpore must record the same values. Here each executable fixture about
constructions is also run *without* the part of the migration it is about (the ``set_train()`` the
tool adds, the arguments of a factory call it converts, the mode calls it converts, or the
``set_train()`` an earlier version put in the wrong place): that program must compute something
else, or fail, under MindSpore. So every case shows a silent difference the migration removes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from dataclasses import replace

from codemod import migrate_source, plan_source
from codemod.verify import load_frameworks
from codemod.verify.harness import ProgramError, compare_records, run_program

FIXTURES = Path(__file__).parent / "fixtures"


def read(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as fh:
        return fh.read()


def without_sites(kind: str, only: Callable[[str], bool] = lambda original: True) -> Callable[[str], str]:
    """The migration, less the changes of its sites of ``kind`` (whose original text ``only`` accepts)."""

    def ablate(source: str) -> str:
        planned = plan_source(source)
        dropped = {s.id for s in planned.sites if s.kind == kind and only(s.original)}
        kept = {c.site for c in planned.plan.changes} - dropped
        return replace(planned, plan=planned.plan.for_sites(kept)).migrate().code

    return ablate


def replacing(old: str, new: str) -> Callable[[str], str]:
    """The migration with ``old`` (which must be in it) written as ``new``."""

    def ablate(source: str) -> str:
        code = migrate_source(source).code
        assert old in code
        return code.replace(old, new, 1)

    return ablate


WITHOUT_SET_TRAIN = without_sites("set_train")

# fixture -> how the migration looks without the fix the fixture is about
CASES: dict[str, Callable[[str], str]] = {
    "constructions/argument": WITHOUT_SET_TRAIN,
    "constructions/displays": WITHOUT_SET_TRAIN,
    "constructions/immediate_call": WITHOUT_SET_TRAIN,
    "constructions/unpacking": WITHOUT_SET_TRAIN,
    "constructions/comprehension": WITHOUT_SET_TRAIN,
    "constructions/conditional": WITHOUT_SET_TRAIN,
    "constructions/partial_inline": WITHOUT_SET_TRAIN,
    "constructions/walrus_and_defaults": WITHOUT_SET_TRAIN,
    "constructions/init_not_registered": WITHOUT_SET_TRAIN,
    "constructions/attribute_outside_init": WITHOUT_SET_TRAIN,
    "constructions/class_body_layer": WITHOUT_SET_TRAIN,
    "constructions/lambda_factory": WITHOUT_SET_TRAIN,
    # self.norm(4, momentum=0.25) built with torch's momentum by MindSpore's class
    "constructions/class_attribute_factory": without_sites("construct", lambda o: not o.startswith("nn.")),
    # earlier versions set the layer a function returns after putting it in eval mode back to training
    "constructions/function_returns": replacing("f = frozen(4)\n", "f = frozen(4)\nf.set_train()\n"),
    # set_train() on the container (as earlier versions did) also sets the child in eval mode
    "constructions/container_children_modes": replacing(
        "nn.BatchNorm2d(3, momentum=0.7).set_train())\n", "nn.BatchNorm2d(3, momentum=0.7))\nseq.set_train()\n"),
    # .eval() left on a MindSpore cell (it has none) where the receiver was not known to be a module
    "mode/receivers_built_anywhere": without_sites("mode"),
    # found by the differential fuzzer
    "constructions/helper_passthrough": without_sites("mode"),
    "constructions/container_item": without_sites("attribute"),
    "mode/holder_module": without_sites("mode"),
    "mode/used_through_members": WITHOUT_SET_TRAIN,
    "mode/rebound_to_itself": without_sites("mode"),
    "mode/training_attribute": without_sites("mode"),
    "mode/or_receivers": without_sites("mode"),
    # Cell has no add_module()
    "constructions/add_module": without_sites("skeleton", lambda o: o.endswith(("add_module", "register_module"))),
    "mode/setattr_members": without_sites("mode"),
    "mode/wrapped_in_container": WITHOUT_SET_TRAIN,
}


@pytest.fixture(scope="module")
def fw(frameworks):
    return load_frameworks()


def test_every_executable_constructions_fixture_has_a_case() -> None:
    executable = {str(p.relative_to(FIXTURES))[: -len(".in.py")]
                  for p in (FIXTURES / "constructions").glob("*.in.py") if "record(" in read(p)}
    assert executable <= set(CASES)
    assert all(read(FIXTURES / f"{case}.in.py").count("record(") for case in CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_migration_without_the_fix_computes_something_else(case: str, fw) -> None:
    source = read(FIXTURES / f"{case}.in.py")
    expected = run_program(source, "torch", fw)
    migrated = migrate_source(source).code
    assert all(c.passed for c in compare_records(expected, run_program(migrated, "mindspore", fw)))
    without = CASES[case](source)
    assert without != migrated
    try:
        actual = run_program(without, "mindspore", fw)
    except ProgramError:
        return  # it does not even run
    assert not all(c.passed for c in compare_records(expected, actual)), without
