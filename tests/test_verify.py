"""``torch2ms verify`` and ``codemod.verify``: the evaluator, site pairing, verdicts on migrations
that are wrong on purpose (the check must be able to fail), the command line, and life without
the frameworks."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from codemod import migrate_source
from codemod.cli import main
from codemod.verify import (
    FAIL,
    PASS,
    SKIP,
    load_frameworks,
    parse_binding,
    verify_modes,
    verify_source,
)
from codemod.verify.cli import verify as verify_command
from codemod.verify.evaluate import (
    DType,
    Evaluator,
    NotEvaluable,
    free_references,
    import_map,
)
from codemod.verify.harness import ProgramError, compare_records, run_program

ROOT = Path(__file__).resolve().parent.parent


def ev(text: str, bindings=None, imports=None):
    return Evaluator(bindings or {}, imports or {})(ast.parse(text, mode="eval").body)


# -- the evaluator (no frameworks needed) -------------------------------------------------------------

@pytest.mark.parametrize("text,value", [
    ("0.1", 0.1), ("1 - 0.1", 0.9), ("-(2 ** 3) // 3", -3), ("(4, 8)", (4, 8)), ("[2] * 2", [2, 2]),
    ("0.1 if fast else 0.01", 0.01), ("not frozen", True), ("a and b", 0), ("1 < m <= 2", True),
    ("max(c, 3) * 2", 8), ("float(c)", 4.0), ("cfg.m", 0.3), ("cfg['m']", 0.5), ("None if t else True", True),
])
def test_evaluator_values(text, value) -> None:
    bindings = {"fast": False, "frozen": False, "a": 1, "b": 0, "m": 1.5, "c": 4, "cfg.m": 0.3,
                "cfg['m']": 0.5, "t": False}
    assert ev(text, bindings) == value


def test_evaluator_knows_dtypes_by_their_imports() -> None:
    assert ev("torch.float32") == DType("float32", "torch")
    assert ev("ms.float16", imports={"ms": "mindspore"}) == DType("float16", "mindspore")
    assert ev("nn.double", imports={"nn": "torch.nn"}) == DType("float64", "torch")


@pytest.mark.parametrize("text", [
    "__import__('os').system('true')", "open('x')", "cfg.load()", "lambda: 0", "10 ** 10 ** 10",
    "'x' * 10 ** 6", "unbound", "[*xs]",
])
def test_evaluator_refuses_what_it_does_not_know(text) -> None:
    with pytest.raises(NotEvaluable):
        ev(text)


def test_free_references() -> None:
    node = ast.parse("f(c, momentum=1 - cfg.m, eps=torch.float32, t=x['k'] if flag else max(y, 2))").body[0].value
    assert free_references(node) == ["c", "cfg.m", "flag", "x['k']", "y"]  # callees are not values


def test_parse_binding() -> None:
    assert parse_binding("m=0.01") == ("m", 0.01)
    assert parse_binding("cfg.shape = (4, 8)") == ("cfg.shape", (4, 8))
    assert parse_binding("dt=torch.float16") == ("dt", DType("float16"))  # either framework's
    for bad in ("m", "=1", "m=os.getcwd()", "1x=2"):
        with pytest.raises(ValueError):
            parse_binding(bad)


def test_import_map() -> None:
    tree = ast.parse("import torch\nimport mindspore.nn as msnn\nfrom torch import nn as tnn\nfrom a.b import c\n")
    assert import_map(tree) == {"torch": "torch", "msnn": "mindspore.nn", "tnn": "torch.nn", "c": "a.b.c"}


# -- verdicts (real frameworks) ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fw(frameworks):
    return load_frameworks()


ORIGINAL = textwrap.dedent("""\
    import torch.nn as nn

    a = nn.BatchNorm2d(8, momentum=0.3)
    b = nn.BatchNorm2d(8, track_running_stats=False)
    c = nn.BatchNorm2d(8, 1e-3, 0.1, True, False)
""")


def statuses(checks):
    return [c.status for c in checks]


def test_protocol_compares_outputs_statistics_and_parameters(fw) -> None:
    [check] = verify_source("import torch.nn as nn\nbn = nn.BatchNorm2d(4, momentum=0.2)\n", frameworks=fw, steps=2)
    assert check.status == PASS and check.line == 2 and check.layer == "torch.nn.BatchNorm2d"
    seen = {(c.phase, c.quantity) for c in check.comparisons}
    for phase in ("train 1", "train 2"):
        assert {(phase, "output"), (phase, "running_mean/moving_mean"), (phase, "running_var/moving_variance")} <= seen
    assert {("init", "weight/gamma"), ("eval", "output"), ("eval", "bias/beta"), ("eval", "momentum/momentum")} <= seen
    assert ("train 3", "output") not in seen
    assert check.max_abs < 1e-5 and check.seconds > 0


CORRECT = textwrap.dedent("""\
    import mindspore.nn as nn

    a = nn.BatchNorm2d(8, momentum=0.7)
    b = nn.BatchNorm2d(8, use_batch_statistics=True)
    c = nn.BatchNorm2d(8, 1e-3, 0.9, True, use_batch_statistics=True)
""")


def test_a_correct_hand_migration_passes(fw) -> None:
    assert statuses(verify_source(ORIGINAL, against=CORRECT, frameworks=fw)) == [PASS, PASS, PASS]


@pytest.mark.parametrize("mistake,correct,wrong,where", [
    # the naive migrations DESIGN.md warns about; each must FAIL, at the comparison that shows it
    ("momentum copied as is", "momentum=0.7", "momentum=0.3", "train 1: running_mean/moving_mean"),
    ("track_running_stats copied straight", "8, use_batch_statistics=True", "8, use_batch_statistics=False",
     "train 1: output"),
    ("position 4 passed through", "True, use_batch_statistics=True)", "True, False)", "init: weight/gamma"),
])
def test_wrong_migrations_fail(mistake, correct, wrong, where, fw) -> None:
    assert correct in CORRECT
    checks = verify_source(ORIGINAL, against=CORRECT.replace(correct, wrong), frameworks=fw)
    failed = [c for c in checks if c.status == FAIL]
    assert len(failed) == 1, (mistake, statuses(checks))
    first = failed[0].failed[0]
    assert f"{first.phase}: {first.quantity}" == where


def test_a_torch_dtype_left_in_migrated_code_fails(fw) -> None:
    original = "import torch\nimport torch.nn as nn\nbn = nn.BatchNorm2d(4, dtype=torch.float32)\n"
    migrated = "import torch\nimport mindspore.nn as nn\nbn = nn.BatchNorm2d(4, dtype=torch.float32)\n"
    [check] = verify_source(original, against=migrated, frameworks=fw)
    assert check.status == FAIL and "raises under MindSpore" in check.reason


def test_a_migrated_call_that_still_names_torch_fails_or_skips(fw) -> None:
    original = "import torch.nn as nn\nbn = nn.BatchNorm2d(4)\nx = nn.BatchNorm2d(4)\n"
    migrated = "import torch.nn as nn\nimport mindspore\nbn = mindspore.nn.BatchNorm2d(4)\nx = nn.BatchNorm2d(4)\n"
    checks = verify_source(original, against=migrated, frameworks=fw)
    assert statuses(checks) == [PASS, SKIP]
    assert checks[1].reason == "still torch in the migrated file" and checks[1].migrated_line == 4


def test_pairing_is_per_layer_and_in_order(fw) -> None:
    original = "import torch.nn as nn\na = nn.BatchNorm2d(4)\nb = nn.GroupNorm(2, 4)\nc = nn.BatchNorm2d(6, eps=1e-3)\n"
    migrated = ("import mindspore.nn as nn\nb = nn.GroupNorm(2, 4)\na = nn.BatchNorm2d(4)\n"
                "c = nn.BatchNorm2d(6, eps=1e-3)\nd = nn.BatchNorm2d(2)\n")
    checks = verify_source(original, against=migrated, frameworks=fw)
    assert [(c.line, c.migrated_line, c.status) for c in checks] == [
        (2, 3, PASS), (3, 2, PASS), (4, 4, PASS), (5, 5, SKIP)]
    assert checks[3].reason == "no counterpart in the original file"


def test_unbuildable_sites_are_skipped_with_a_reason(fw) -> None:
    source = textwrap.dedent("""\
        import functools
        import torch.nn as nn

        class MyBN(nn.BatchNorm2d):
            pass

        def build(c, *args):
            return [nn.BatchNorm2d(c, *args), functools.partial(nn.BatchNorm2d, momentum=0.1), MyBN(4),
                    nn.BatchNorm2d(c, momentum=cfg.load())]
    """)
    checks = verify_source(source, frameworks=fw)
    reasons = [c.reason for c in checks]
    assert statuses(checks) == [SKIP] * 4, reasons
    assert reasons[0].startswith("left unconverted")
    assert "functools.partial" in reasons[1]
    assert "MyBN" in reasons[2]
    assert "cannot evaluate" in reasons[3] and "cfg.load" in reasons[3]


def test_free_names_use_bindings_then_module_constants_then_samples(fw) -> None:
    source = "import torch.nn as nn\nMOM = 0.05\n\ndef f(c, m, flag):\n    return nn.BatchNorm2d(c, momentum=MOM + m, track_running_stats=not flag)\n"
    [check] = verify_source(source, bindings={"m": 0.25}, frameworks=fw)
    assert check.status == PASS
    assert check.bindings == {"c": "4", "MOM": "0.05", "m": "0.25", "flag": "True"}
    assert check.sampled == ["c", "flag"]


def test_out_of_range_samples_skip_instead_of_failing(fw) -> None:
    [check] = verify_source("import torch.nn as nn\ndef f(m):\n    return nn.BatchNorm2d(3, momentum=-m)\n",
                            frameworks=fw)
    assert check.status == SKIP and "outside [0, 1]" in check.reason


def test_input_rank_hint_is_honoured(fw) -> None:
    source = "import torch.nn as nn\nln = nn.LayerNorm([4, 5])  # torch2ms: input-rank=4\n"
    [check] = verify_source(source, frameworks=fw)
    assert check.status == PASS, check.reason


def test_function_sites_checked_against_a_migrated_file(fw) -> None:
    original = textwrap.dedent("""\
        import torch.nn.functional as F

        def f(x, mean, var, w, b):
            return F.batch_norm(x, mean, var, w, b, True, 0.1, 1e-5)
    """)
    migrated = original.replace("import torch.nn.functional as F", "import mindspore.ops as ops") \
        .replace("F.batch_norm", "ops.batch_norm")
    [check] = verify_source(original, against=migrated, frameworks=fw)
    assert check.status == PASS, check.reason
    assert {c.quantity for c in check.comparisons} == {"output", "mean", "var"}
    wrong = migrated.replace("0.1, 1e-5", "0.9, 1e-5")  # 1 - m is wrong for the functional form
    [check] = verify_source(original, against=wrong, frameworks=fw)
    assert check.status == FAIL and check.failed[0].quantity == "mean"


# -- training mode under --against (the layer checks set the mode themselves) --------------------------

MODE_ORIGINAL = textwrap.dedent("""\
    import torch.nn as nn

    bn = nn.BatchNorm2d(3, momentum=0.1)
    for seed in range(3):
        record(f"train {seed}", bn(sample(2, 3, 4, 4, seed=seed) * 2 + 0.5))
    bn.eval()
    record("eval", bn(sample(2, 3, 4, 4, seed=7) * 2 + 0.5))
""")
MODE_CORRECT = textwrap.dedent("""\
    import mindspore.nn as nn

    bn = nn.BatchNorm2d(3, momentum=0.9)
    bn.set_train()
    for seed in range(3):
        record(f"train {seed}", bn(sample(2, 3, 4, 4, seed=seed) * 2 + 0.5))
    bn.set_train(False)
    record("eval", bn(sample(2, 3, 4, 4, seed=7) * 2 + 0.5))
""")


@pytest.mark.parametrize("mistake,edit", [
    ("none", None),
    ("set_train() missing after the construction", ("bn.set_train()\n", "")),
    ("set_train(False) changed to set_train(True)", ("bn.set_train(False)", "bn.set_train(True)")),
    ("eval() kept as torch wrote it", ("bn.set_train(False)", "bn.eval()")),
])
def test_against_sees_the_training_mode_of_the_migrated_program(mistake, edit, fw) -> None:
    migrated = MODE_CORRECT if edit is None else MODE_CORRECT.replace(*edit)
    # What the programs really do: the original under torch, the hand-edited file under MindSpore.
    expected = run_program(MODE_ORIGINAL, "torch", fw)
    try:
        actual = run_program(migrated, "mindspore", fw)
        same = all(c.passed for c in compare_records(expected, actual))
    except ProgramError:
        same = False
    assert same == (edit is None), mistake
    # verify --against must say the same, without running either program.
    checks = verify_source(MODE_ORIGINAL, against=migrated, frameworks=fw)
    modes = [c for c in checks if c.layer == "training mode"]
    assert [c.status for c in checks if c not in modes] == [PASS]  # the layer itself is right
    assert (FAIL not in statuses(modes)) == same, (mistake, [(c.status, c.reason) for c in modes])
    assert [c.arguments for c in modes] == ["bn.set_train()", "bn.set_train(False)"]
    if edit is not None:
        (failed,) = [c for c in modes if c.status == FAIL]
        assert edit[0].strip() in failed.reason


def test_against_mode_checks_follow_receivers_and_scopes(fw) -> None:
    original = textwrap.dedent("""\
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.bn = nn.BatchNorm1d(4)

            def forward(self, x):
                return self.bn(x)

        def evaluate(x):
            net.eval()
            return net(x)

        net = Net()
        net.train(True)
        net(x)
    """)
    migrated = migrate_source(original).code
    assert "    net.set_train(False)\n" in migrated and "net = Net()\nnet.set_train()\n" in migrated
    assert [c.status for c in verify_modes(original, migrated)] == [PASS, PASS]
    # Moved to the wrong function: the receiver's calls per scope differ.
    moved = migrated.replace("    net.set_train(False)\n", "").replace("net = Net()\nnet.set_train()\n",
                                                                        "net = Net()\nnet.set_train(False)\n")
    checks = verify_modes(original, moved, path="model.py", against_path="model_ms.py")
    assert sorted((c.status, c.arguments, c.migrated_arguments) for c in checks) == [
        (FAIL, "net.set_train()", "net.set_train(False)"), (FAIL, "net.set_train(False)", None)]
    # A mode call the migration does not make is a difference too.
    extra = migrated + "net.set_train(False)\n"
    (check,) = [c for c in verify_modes(original, extra, path="model.py", against_path="model_ms.py")
                if c.status == FAIL]
    assert (check.path, check.line, check.migrated_arguments) == ("model_ms.py", extra.count("\n"), "net.set_train(False)")


def test_against_accepts_a_mode_call_converted_by_hand_where_the_tool_could_not(fw) -> None:
    original = "import torch.nn as nn\n\ndef evaluate(model, x):\n    model.eval()\n    return model(x)\n"
    assert "model.eval()" in migrate_source(original).code  # the receiver's type is unknown: left (MD002)
    by_hand = original.replace("torch.nn", "mindspore.nn").replace("model.eval()", "model.set_train(False)")
    assert [c.status for c in verify_modes(original, by_hand)] == [PASS]
    assert [c.status for c in verify_modes(original, by_hand.replace("(False)", "(True)"))] == [FAIL]


def test_cli_against_reports_a_missing_set_train(tmp_path, fw) -> None:
    (tmp_path / "model.py").write_text(MODE_ORIGINAL)
    (tmp_path / "model_ms.py").write_text(MODE_CORRECT.replace("bn.set_train()\n", ""))
    result = run_cli(tmp_path / "model.py", "--against", tmp_path / "model_ms.py")
    assert result.exit_code == 1, result.output
    row = next(line for line in result.stdout.splitlines() if "training mode" in line and "FAIL" in line)
    assert "model.py:3" in row and "bn.set_train()" in row
    assert "the migrated file does not call bn.set_train() (inserted: the original uses bn" in result.stdout


# -- the command ---------------------------------------------------------------------------------------

def run_cli(*args):
    return CliRunner().invoke(verify_command, [str(a) for a in args])


def test_cli_table_and_exit_0(tmp_path, fw) -> None:
    result = run_cli(ROOT / "examples")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["site", "layer", "arguments", "max", "abs", "max", "rel", "result"]
    assert any("resnet_block.py:10" in line and "BatchNorm2d" in line and line.endswith("PASS") for line in lines)
    assert "sampled: channels=4, momentum=0.2" in result.stdout
    assert "frameworks imported in" in result.stderr and "checks took" in result.stderr


def test_cli_exit_1_on_fail_and_json(tmp_path, fw) -> None:
    original = tmp_path / "model.py"
    original.write_text(ORIGINAL)
    migrated = tmp_path / "model_ms.py"
    migrated.write_text(CORRECT.replace("momentum=0.7", "momentum=0.3"))
    result = run_cli(original, "--against", migrated, "--json", "--steps", "2")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert [s["status"] for s in report["sites"]] == [FAIL, PASS, PASS]  # momentum=0.3 kept as is
    assert report["summary"] == {"pass": 2, "fail": 1, "skip": 0, "errors": 0}
    assert report["steps"] == 2 and report["tolerance"] == {"atol": 1e-5, "rtol": 1e-4}
    assert set(report["seconds"]) == {"torch_import", "mindspore_import", "checks"}
    site = report["sites"][0]
    assert site["line"] == 3 and site["migrated_line"] == 3 and site["max_abs"] > 1e-3
    assert {"phase", "quantity", "max_abs", "max_rel", "passed", "detail"} == set(site["comparisons"][0])
    # a tolerance wide enough makes the same difference acceptable
    assert run_cli(original, "--against", migrated, "--atol", "10").exit_code == 0


def test_cli_bind(tmp_path, fw) -> None:
    path = tmp_path / "m.py"
    path.write_text("import torch.nn as nn\ndef f(m):\n    return nn.BatchNorm2d(3, momentum=m)\n")
    result = run_cli(path, "--bind", "m=0.7", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["sites"][0]["bindings"] == {"m": "0.7"}


@pytest.mark.parametrize("args,message", [
    (["--bind", "m"], "NAME=VALUE"),
    (["--against", "examples/seed_example.py", "examples/resnet_block.py"], "exactly one"),
    (["no/such/file.py"], "no such file"),
])
def test_cli_usage_errors_exit_2(args, message, fw) -> None:
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        result = CliRunner().invoke(verify_command, ["examples/seed_example.py", *args] if args[0] != "no/such/file.py" else args)
    finally:
        os.chdir(cwd)
    assert result.exit_code == 2 and message in result.output


def test_cli_unparsable_file_exits_2(tmp_path, fw) -> None:
    (tmp_path / "ok.py").write_text("import torch.nn as nn\nbn = nn.BatchNorm2d(3)\n")
    (tmp_path / "py2.py").write_text("import torch.nn as nn\nprint 'BatchNorm2d'\n")
    result = run_cli(tmp_path)
    assert result.exit_code == 2
    assert "py2.py: error:" in result.stdout and "PASS" in result.stdout


# -- notebooks ---------------------------------------------------------------------------------------------

def notebook(*cells: str) -> str:
    return json.dumps({"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                                  "source": cell.splitlines(keepends=True)} for cell in cells],
                       "metadata": {"kernelspec": {"language": "python", "name": "python3"}},
                       "nbformat": 4, "nbformat_minor": 5}, indent=1) + "\n"


NB_CELLS = ("import torch\nfrom torch import nn\n",
            "# a markdown-free notebook\nbn = nn.BatchNorm2d(3, momentum=0.1)\n",
            "%time bn1 = nn.BatchNorm1d(4, momentum=0.2, eps=1e-3)\nbn1(x)\n")


def test_verify_checks_a_notebook_s_sites_named_by_cell(tmp_path, fw) -> None:
    (tmp_path / "nbs").mkdir()
    path = tmp_path / "nbs" / "train.ipynb"
    path.write_text(notebook(*NB_CELLS))
    migrated = CliRunner().invoke(main, ["migrate", "--check", str(path), "--report", str(tmp_path / "r.json")])
    sites = json.loads((tmp_path / "r.json").read_text())["summary"]["sites_converted"]
    for target in (path, tmp_path / "nbs"):  # the notebook, and a directory of notebooks
        result = run_cli(target, "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert [(s["cell"], s["line"], s["layer"], s["status"]) for s in report["sites"]] == [
            (2, 2, "torch.nn.BatchNorm2d", PASS), (3, 1, "torch.nn.BatchNorm1d", PASS)]
    assert migrated.exit_code == 1 and sites >= 2  # what migrate converts there, verify checks
    table = run_cli(path).stdout
    assert any(line.startswith(f"{path}:cell_3:1 ") and line.endswith("PASS") for line in table.splitlines()), table


def test_verify_against_a_hand_migrated_notebook(tmp_path, fw) -> None:
    original = tmp_path / "nb.ipynb"
    original.write_text(notebook(*NB_CELLS))
    correct = [cell.replace("from torch import nn", "from mindspore import nn") for cell in NB_CELLS]
    correct[1] = correct[1].replace("momentum=0.1", "momentum=0.9")
    correct[2] = correct[2].replace("momentum=0.2", "momentum=0.8").replace("\nbn1(x)", "\nbn1.set_train()\nbn1(x)")
    hand = tmp_path / "nb_ms.ipynb"
    hand.write_text(notebook(*correct))
    result = run_cli(original, "--against", hand, "--json")
    assert result.exit_code == 0, result.output
    assert [(s["cell"], s["line"], s["migrated_cell"], s["migrated_line"], s["status"])
            for s in json.loads(result.stdout)["sites"]] == [
        (2, 2, 2, 2, PASS), (3, 1, 3, 1, PASS), (3, 1, 3, 2, PASS)]  # the last: bn1.set_train()
    hand.write_text(notebook(correct[0], correct[1].replace("momentum=0.9", "momentum=0.1"), correct[2]))
    result = run_cli(original, "--against", hand)
    assert result.exit_code == 1
    assert any(line.startswith(f"{original}:cell_2:2 -> nb_ms.ipynb:cell_2:2") and line.endswith("FAIL")
               for line in result.stdout.splitlines()), result.stdout


def test_verify_says_which_notebook_cells_it_could_not_check(tmp_path, fw) -> None:
    path = tmp_path / "nb.ipynb"
    path.write_text(notebook(*NB_CELLS, "def broken(:\n    nn.BatchNorm2d(3)\n"))
    result = run_cli(path)
    assert result.exit_code == 2
    assert f"{path}: error: cell 4: not Python" in result.stdout and "not checked" in result.stdout
    assert "PASS" in result.stdout  # the other cells are checked


# -- without the frameworks ------------------------------------------------------------------------------

BLOCK_FRAMEWORKS = """\
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "mindspore"):
            raise ImportError(f"No module named {name!r}")
sys.meta_path.insert(0, Block())
sys.argv[0] = "torch2ms"
from codemod.cli import main
main()
"""


def run_without_frameworks(*args, stdin=None):
    return subprocess.run([sys.executable, "-c", BLOCK_FRAMEWORKS, *args], capture_output=True, text=True,
                          cwd=ROOT, input=stdin, timeout=120)


def test_verify_without_frameworks_says_how_to_install() -> None:
    result = run_without_frameworks("verify", "examples/seed_example.py")
    assert result.returncode == 2
    assert "pip install 'torch2ms[verify]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_other_commands_work_without_frameworks() -> None:
    result = run_without_frameworks("migrate", "-", stdin="import torch.nn as nn\nbn = nn.BatchNorm2d(3, momentum=0.1)\n")
    assert result.returncode == 0, result.stderr
    assert "mindspore.nn" in result.stdout and "momentum=0.9" in result.stdout
    help_text = run_without_frameworks("verify", "--help")
    assert help_text.returncode == 0 and "--against" in help_text.stdout
