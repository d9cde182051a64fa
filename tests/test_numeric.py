"""The rules, proven numerically: every case goes through ``migrate_source`` (the real rewrite),
then the original runs under real PyTorch and the migrated code under real MindSpore.

The cases are data over the rules: each layer rule gets the argument values below for the torch
parameters it has (BatchNorm2d all their combinations, the others one at a time), so a new rule in
rules/*.toml is covered by adding, at most, a value for a parameter it introduces.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from codemod import migrate_source
from codemod.ruleset import default_rules
from codemod.verify import FAIL, PASS, SKIP, load_frameworks, verify_source
from codemod.verify.check import NO_CPU_KERNEL
from codemod.verify.harness import compare_records, run_program

RULES = default_rules()
LAYER_RULES = sorted((r for r in RULES.layers.values() if r.kind == "layer"), key=lambda r: r.torch)

# Arguments a layer cannot be built without, by torch parameter.
REQUIRED = {"num_features": "6", "num_channels": "6", "num_groups": "3", "normalized_shape": "5"}
# Values to try, by torch parameter. Expressions use the module constants in PRELUDE: the check
# evaluates the original and the migrated expression with the same values.
VALUES = {
    "momentum": ["0.1", "0.01", "0.3", "0.9", "base * 2"],
    "eps": ["1e-5", "1e-3"],
    "affine": ["True", "False"],
    "track_running_stats": ["True", "False", "flag", "not flag"],
}
EXTRA_VALUES = {"bias": ["False"], "elementwise_affine": ["False"], "dtype": ["torch.float32"]}
FULL_PRODUCT = {"torch.nn.BatchNorm2d"}  # all combinations; the other rules one value at a time
PRELUDE = "import torch\nimport torch.nn as nn\n\nbase = 0.05\nflag = True\n\n"


def required_arguments(rule) -> list[str]:
    out = []
    for param in rule.positional_params():
        if param not in REQUIRED:
            break
        out.append(REQUIRED[param])
    return out


def argument_cases(rule) -> list[str]:
    required = required_arguments(rule)
    grid = {p: v for p, v in VALUES.items() if p in rule.torch_params}
    extra = {p: v for p, v in EXTRA_VALUES.items() if p in rule.torch_params}
    if rule.mindspore in NO_CPU_KERNEL:  # nothing runs; one case shows the site is reported
        return [", ".join(required)]
    keyword_sets = []
    if rule.torch in FULL_PRODUCT:
        keyword_sets += [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]
    else:
        keyword_sets += [{p: v} for p, values in grid.items() for v in values]
    keyword_sets += [{p: v} for p, values in extra.items() for v in values]
    cases = [", ".join(required)]
    cases += [", ".join(required + [f"{k}={v}" for k, v in kw.items()]) for kw in keyword_sets]
    # Positional spellings: torch position 4 (track_running_stats) is MindSpore's gamma_init.
    positional = []
    for param in rule.positional_params()[len(required):]:
        if param not in grid:
            break
        positional.append(param)
    for pick in (1, -1):
        if positional:
            cases.append(", ".join(required + [grid[p][pick] for p in positional]))
    return cases


SITE_CASES = [(rule, args) for rule in LAYER_RULES for args in argument_cases(rule)]


@pytest.fixture(scope="module")
def fw(frameworks):
    return load_frameworks()


@pytest.mark.parametrize("rule,args", SITE_CASES, ids=[f"{r.torch_name}({a})" for r, a in SITE_CASES])
def test_rule_site(rule, args, fw) -> None:
    source = f"{PRELUDE}layer = nn.{rule.torch_name}({args})\n"
    result = migrate_source(source)
    [site] = [s for s in result.sites if s.kind == "construct"]
    [check] = verify_source(source, frameworks=fw)
    if rule.mindspore in NO_CPU_KERNEL:
        assert check.status == SKIP and "no CPU kernel" in check.reason
        return
    if not site.converted:  # the engine refused: it must say so as an error, and verify must not pass it
        assert any(f.severity == "error" for f in result.findings)
        assert check.status == SKIP and check.reason.startswith("left unconverted")
        return
    failed = [f"{c.phase}: {c.quantity} max abs {c.max_abs:.3g} {c.detail}" for c in check.failed]
    assert check.status == PASS, f"{site.replacement}: {check.reason}\n" + "\n".join(failed)
    phases = {c.phase for c in check.comparisons}
    assert {"init", "train 1", "train 3", "eval"} <= phases


def test_batchnorm2d_grid_is_the_issue_grid() -> None:
    bn2d = [a for r, a in SITE_CASES if r.torch == "torch.nn.BatchNorm2d"]
    for needle in ("momentum=0.1", "momentum=0.01", "momentum=0.3", "momentum=0.9", "momentum=base * 2",
                   "eps=1e-5", "eps=1e-3", "affine=True", "affine=False", "track_running_stats=True",
                   "track_running_stats=False", "track_running_stats=flag"):
        assert any(needle in a for a in bn2d), needle
    assert len(bn2d) >= 5 * 2 * 2 * 3


def test_float16_batchnorm_is_reported_and_caught(fw) -> None:
    # MindSpore 2.10 on CPU: a float16 BatchNorm2d never updates moving_mean/moving_variance in
    # training, while torch's does. The migration says so at the dtype argument (BN004), and the
    # numeric check shows the difference instead of passing it.
    source = f"{PRELUDE}layer = nn.BatchNorm2d(6, dtype=torch.float16)\n"
    assert "BN004" in [f.code for f in migrate_source(source).findings]
    [check] = verify_source(source, frameworks=fw)
    assert check.status == FAIL
    assert any("moving_mean" in str(c) or "running_mean" in str(c) for c in check.failed)


# -- modes: whole programs, original under torch, migrated under MindSpore ---------------------------

def input_shape(rule) -> tuple[int, ...]:
    rank = rule.input_rank or 4
    if "normalized_shape" in rule.torch_params:
        return (2, 6, 4, 5)[: rank - 1] + (5,)
    return (2, 6, 3, 5, 4)[:rank]


def has_statistics(rule) -> bool:
    return bool(rule.attributes.get("running_mean"))


MODE_PROGRAMS = {
    # torch's default: a new module trains; the migrated code must say set_train() itself.
    "default": """\
m = nn.{name}({args})
for step in range(3):
    record(f"train_{{step}}", m(sample({shape}, seed=step) * 2 + 0.5))
{stats}m.eval()
record("eval", m(sample({shape}, seed=9)))
""",
    "explicit": """\
m = nn.{name}({args})
m.eval()
record("eval_first", m(sample({shape}, seed=1)))
m.train()
record("train", m(sample({shape}, seed=2) - 1))
m.train(False)
record("eval_again", m(sample({shape}, seed=3)))
m.train(True)
record("train_again", m(sample({shape}, seed=4) * 3))
{stats}""",
    "module": """\
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.m = nn.{name}({args})

    def forward(self, x):
        return self.m(x) * 2

net = Net()
record("train", net(sample({shape}, seed=5) + 1))
net.eval()
record("eval", net(sample({shape}, seed=6)))
""",
}


def mode_cases():
    for rule in LAYER_RULES:
        if rule.mindspore in NO_CPU_KERNEL:
            continue  # cannot run on this machine (reported by test_rule_site)
        required = required_arguments(rule)
        variants = [required]
        if "momentum" in rule.torch_params:
            variants.append(required + ["momentum=0.3", "eps=1e-3"])
        for args in variants:
            for mode in MODE_PROGRAMS:
                yield rule, ", ".join(args), mode


MODE_CASES = list(mode_cases())


@pytest.mark.parametrize("rule,args,mode", MODE_CASES, ids=[f"{r.torch_name}({a})-{m}" for r, a, m in MODE_CASES])
def test_rule_modes(rule, args, mode, fw) -> None:
    shape = ", ".join(map(str, input_shape(rule)))
    stats = 'record("mean", m.running_mean)\nrecord("var", m.running_var)\n' if has_statistics(rule) else ""
    program = PRELUDE + MODE_PROGRAMS[mode].format(name=rule.torch_name, args=args, shape=shape, stats=stats)
    migrated = migrate_source(program).code
    expected = run_program(program, "torch", fw)
    actual = run_program(migrated, "mindspore", fw)
    failed = [f"{c.phase}: max abs {c.max_abs:.3g} {c.detail}" for c in compare_records(expected, actual) if not c.passed]
    assert not failed, migrated + "\n" + "\n".join(failed)


# -- the seed: MindSpore's page "Differences with torch.nn.BatchNorm2d" -------------------------------

PAGE_INPUT = np.array([[[[0.1, 0.2], [0.3, 0.4]],
                        [[0.5, 0.6], [0.7, 0.8]],
                        [[0.9, 1], [1.1, 1.2]]]]).astype(np.float32)
# What the page prints for PyTorch, and for its hand-migrated MindSpore code.
PAGE_TORCH_OUTPUT = np.array([[[[-1.3411044, -0.44703478], [0.4470349, 1.3411044]],
                               [[-1.3411043, -0.44703442], [0.44703496, 1.3411049]],
                               [[-1.3411039, -0.44703427], [0.44703534, 1.341105]]]])
PAGE_MINDSPORE_OUTPUT = np.array([[[[-1.3411045, -0.4470348], [0.44703496, 1.3411045]],
                                   [[-1.341105, -0.4470351], [0.44703424, 1.3411041]],
                                   [[-1.3411034, -0.44703388], [0.44703573, 1.3411053]]]])
PAGE_PROGRAM = """\
from torch import nn

m = nn.BatchNorm2d(num_features=3, momentum=0.1)
output = m(input_py)
record("output", output)
"""


def test_seed_page_numbers(fw) -> None:
    migrated = migrate_source(PAGE_PROGRAM).code
    torch_out = run_program(PAGE_PROGRAM, "torch", fw, inputs={"input_py": PAGE_INPUT})["output"]
    ms_out = run_program(migrated, "mindspore", fw, inputs={"input_py": PAGE_INPUT})["output"]
    for ours in (torch_out, ms_out):
        np.testing.assert_allclose(ours, PAGE_TORCH_OUTPUT, atol=1e-5, rtol=0)
        np.testing.assert_allclose(ours, PAGE_MINDSPORE_OUTPUT, atol=1e-5, rtol=0)
    assert abs(ms_out - PAGE_INPUT).max() > 1, "MindSpore must normalize, not return its input"


def test_seed_page_site(fw) -> None:
    [check] = verify_source(PAGE_PROGRAM, frameworks=fw)
    assert check.status == PASS
    assert check.arguments == "num_features=3, momentum=0.1"
    assert check.migrated_arguments == "num_features=3, momentum=0.9"


def test_seed_page_without_set_train_fails(fw) -> None:
    """The page's own warning: without set_train() MindSpore prints the input back almost unchanged."""
    migrated = migrate_source(PAGE_PROGRAM).code.replace("m.set_train()\n", "")
    ms_out = run_program(migrated, "mindspore", fw, inputs={"input_py": PAGE_INPUT})["output"]
    assert abs(ms_out - PAGE_TORCH_OUTPUT).max() > 1
    np.testing.assert_allclose(ms_out, PAGE_INPUT, atol=1e-4, rtol=0)
