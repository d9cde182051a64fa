"""The whole-model check (``torch2ms verify FILE --model 'Net()' --input-shape ...``): deep models
built from normalization layers and containers pass; migrations broken on purpose fail and name the
first layer where the models part; a migration that is not complete is refused before anything runs."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from codemod import migrate_source
from codemod.engine import Config
from codemod.ruleset import load_rules, rules_dir
from codemod.verify import ModelCheck, Tolerance, verify_model
from codemod.verify.cli import verify as verify_command
from tests.test_verify import run_without_frameworks

FIXTURES = Path(__file__).parent / "fixtures" / "wholemodel"
NORM_NETS = FIXTURES / "norm_nets.py"
DEEP = "DeepNormNet()"
DEEP_SHAPE = (2, 4, 5, 6)


def check(source: str, model: str = DEEP, shape=DEEP_SHAPE, **options) -> ModelCheck:
    return verify_model(source, path="norm_nets.py", model=model, input_shape=shape, **options)


def run(*args):
    return CliRunner().invoke(verify_command, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def migrated() -> str:
    """torch2ms's migration of the fixture, which the broken versions below start from."""
    result = migrate_source(NORM_NETS.read_text(), path=str(NORM_NETS))
    assert not result.remaining_torch and not [f for f in result.findings if f.severity == "error"]
    return result.code


def broken(migrated: str, old: str, new: str) -> str:
    assert migrated.count(old) == 1, old
    return migrated.replace(old, new)


def torch_buffers(frameworks, model: str) -> list[str]:
    """The floating-point buffers of the torch model (its running statistics), built here."""
    namespace: dict = {"__name__": "norm_nets_for_the_test"}
    exec(compile(NORM_NETS.read_text(), str(NORM_NETS), "exec"), namespace)
    built = eval(model, namespace)  # the test's own model expression
    return [name for name, buffer in built.named_buffers() if buffer.is_floating_point()]


# -- models the migration converts completely ----------------------------------------------------------


def test_a_deep_model_of_norm_layers_passes_with_every_statistic_compared(frameworks):
    result = check(NORM_NETS.read_text())

    assert result.status == "PASS", result.reason
    assert result.exit_code == 0
    # every running statistic of the torch model, under its MindSpore name (BatchNorm3d's one level deeper)
    assert sorted(s.split("/")[0] for s in result.statistics) == sorted(torch_buffers(frameworks, DEEP))
    assert "volume.running_var/bn2d.moving_variance" in result.statistics
    phases = {c.phase for c in result.comparisons}
    assert phases == {"train 1", "train 2", "train 3", "eval"}
    # both outputs and all 18 statistics after every pass
    assert len(result.comparisons) == 4 * (2 + 18)
    assert all(c.passed for c in result.comparisons)
    # layers paired by name in forward order, nested containers included; the model itself last
    assert result.layers[:3] == ["stem.bn", "stem.stage.0.norm", "stem.stage.0.group"]
    assert {"shared", "heads.affine", "heads.scaled", "blocks.1.group", "volume"} <= set(result.layers)
    assert result.layers[-1] == "" and result.unpaired == []
    # affine=False and track_running_stats=False: MindSpore holds parameters torch has no value for
    assert {"shared.gamma", "shared.beta", "plain.gamma", "free.moving_mean"} <= set(result.kept_initial)
    assert result.divergence is None


def test_outputs_in_a_dict_are_compared_by_key(frameworks):
    result = check(NORM_NETS.read_text(), model="NormPair(channels=3)", shape=(4, 3))

    assert result.status == "PASS", result.reason
    assert [row[0] for row in result.largest()][:2] == ["output['left']", "output['right']"]


def test_the_command_prints_the_largest_differences_and_exits_0(frameworks):
    result = run(NORM_NETS, "--model", DEEP, "--input-shape", "2,4,5,6", "--steps", "2")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].endswith("DeepNormNet() on seeded batches of shape 2,4,5,6: 2 training steps, then inference")
    assert any(line.startswith("output[0] ") and line.endswith("PASS") for line in lines)
    assert any(line.startswith("buffers (18), after every pass") and line.endswith("PASS") for line in lines)
    assert "torch2ms verify: DeepNormNet(): PASS (atol 1e-05, rtol 0.0001, 2 training steps)" in result.output


def test_json_gives_the_same_as_data(frameworks):
    result = run(NORM_NETS, "--model", "NormPair(3)", "--input-shape", "4,3", "--json", "--steps", "1")

    assert result.exit_code == 0
    data = json.loads(result.output[: result.output.rindex("}") + 1])
    assert data["status"] == "PASS" and data["model"] == "NormPair(3)" and data["input_shape"] == [4, 3]
    assert {c["phase"] for c in data["comparisons"]} == {"train 1", "eval"}
    assert data["statistics"] == ["left.running_mean/moving_mean", "left.running_var/moving_variance"]
    assert set(data["seconds"]) == {"torch_import", "mindspore_import", "check"}


# -- migrations broken on purpose: FAIL, naming the first layer that differs -----------------------------


@pytest.mark.parametrize("old,new,layer,quantity", [
    # momentum left in torch's convention on one layer deep inside a Sequential subclass
    ("eps=1e-3, momentum=0.7", "eps=1e-3, momentum=0.3", "stem.stage.1", "stem.stage.1.running_mean/moving_mean"),
    # ... on the layer the forward pass uses twice
    ("affine=False, momentum=0.75", "affine=False, momentum=0.25", "shared", "shared.running_mean/moving_mean"),
    # an eps that changes the output of a layer late in the forward pass; the earlier ones agree
    ("nn.SyncBatchNorm(channels, momentum=0.85)", "nn.SyncBatchNorm(channels, momentum=0.85, eps=1e-2)", "sync",
     "output"),
])
def test_a_broken_migration_fails_at_the_first_diverging_layer(frameworks, migrated, old, new, layer, quantity):
    result = check(NORM_NETS.read_text(), migrated=broken(migrated, old, new), migrated_path="broken.py")

    assert result.status == "FAIL" and result.exit_code == 1
    assert result.divergence is not None
    assert (result.divergence.phase, result.divergence.layer) == ("train 1", layer)
    assert result.divergence.comparison.quantity == quantity
    assert result.divergence.input_differs is None  # the layer itself computes something else


def test_a_set_train_call_removed_from_the_migration_fails_at_its_layer(frameworks, migrated):
    """The forward keeps ``frozen`` in inference mode (``self.frozen.eval()``, migrated to
    ``self.frozen.set_train(False)``); without that call it trains under MindSpore."""
    assert check(NORM_NETS.read_text(), model="FrozenStem()", shape=(2, 4, 3, 3), migrated=migrated).status == "PASS"

    result = check(NORM_NETS.read_text(), model="FrozenStem()", shape=(2, 4, 3, 3),
                   migrated=broken(migrated, "        self.frozen.set_train(False)\n", ""))

    assert result.status == "FAIL"
    assert (result.divergence.phase, result.divergence.layer) == ("train 1", "frozen")
    assert result.divergence.comparison.quantity == "output"


def test_a_difference_in_the_forward_code_is_placed_before_the_layer_it_feeds(frameworks, migrated):
    code = broken(migrated, "x = self.shared(x) + self.sync(x)", "x = self.shared(x) - self.sync(x)")

    result = check(NORM_NETS.read_text(), migrated=code)

    assert result.status == "FAIL"
    assert result.divergence.layer == "volume"  # the first layer whose output differs ...
    assert result.divergence.input_differs is not None  # ... because its input does
    assert "the difference arises in the forward of the model, before this call" in result.divergence.describe()


def test_the_command_names_the_first_diverging_layer_and_exits_1(frameworks, migrated, tmp_path):
    against = tmp_path / "norm_nets_ms.py"
    against.write_text(broken(migrated, "eps=1e-3, momentum=0.7", "eps=1e-3, momentum=0.3"))

    result = run(NORM_NETS, "--against", against, "--model", DEEP, "--input-shape", "2,4,5,6")

    assert result.exit_code == 1, result.output
    assert "first diverging layer: train 1: stem.stage.1 (BatchNorm2d -> BatchNorm2d): " \
           "stem.stage.1.running_mean/moving_mean max abs" in result.output
    assert "torch2ms verify: DeepNormNet(): FAIL" in result.output


def test_the_weights_are_moved_off_their_initial_values_so_a_statistic_left_behind_shows(frameworks, tmp_path):
    """A key mapping that carried no running mean would leave MindSpore's at its initial zeros, as
    torch's freshly built one is: only weights moved off their initial values show it."""
    rules = tmp_path / "rules"
    shutil.copytree(rules_dir(), rules)
    toml = rules / "batchnorm.toml"
    text = toml.read_text()
    assert 'running_mean = "moving_mean"' in text
    toml.write_text(text.replace('running_mean = "moving_mean"', 'running_mean = ""'))

    result = check(NORM_NETS.read_text(), model="NormPair()", shape=(4, 3), config=Config(rules=load_rules(rules)))

    assert result.status == "FAIL"
    assert [c.phase for c in result.failed] == ["eval"]  # training mode normalises with the batch's own statistics
    assert result.divergence.layer == "left"
    assert "left.moving_mean" in result.kept_initial


def test_a_layer_that_is_random_in_training_runs_as_in_inference_on_both_sides(frameworks):
    original = textwrap.dedent("""\
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.bn = nn.BatchNorm1d(8)
                self.drop = nn.Dropout(0.5)

            def forward(self, x):
                return self.drop(self.bn(x))
        """)
    by_hand = textwrap.dedent("""\
        from mindspore import nn

        class Net(nn.Cell):
            def __init__(self):
                super().__init__()
                self.bn = nn.BatchNorm1d(8, momentum=0.9)
                self.drop = nn.Dropout(p=0.5)

            def construct(self, x):
                return self.drop(self.bn(x))
        """)

    result = verify_model(original, model="Net()", input_shape=(16, 8), migrated=by_hand)

    assert result.status == "PASS", result.reason
    assert result.held_in_inference == ["drop"]
    assert "bn.running_var/moving_variance" in result.statistics


# -- a classic CNN (migrated by hand: convolutions and linear layers do not convert yet) ----------------

RESNET, RESNET_MS = FIXTURES / "resnet.py", FIXTURES / "resnet_ms.py"


@pytest.mark.parametrize("model", ["SmallResNet()", "ResNet18()"])
def test_a_classic_cnn_passes(frameworks, model):
    result = verify_model(RESNET.read_text(), path=str(RESNET), model=model, input_shape=(2, 3, 32, 32),
                          migrated=RESNET_MS.read_text(), migrated_path=str(RESNET_MS))

    assert result.status == "PASS", result.reason
    namespace: dict = {"__name__": "resnet_for_the_test"}
    exec(compile(RESNET.read_text(), str(RESNET), "exec"), namespace)
    torch_model = eval(model, namespace)  # the test's own model expression
    norms = [name for name, m in torch_model.named_modules() if isinstance(m, frameworks.torch.nn.BatchNorm2d)]
    assert len(result.statistics) == 2 * len(norms)
    assert {"conv1", "layer2.0.conv1", "layer2.0.shortcut.0", "linear", ""} <= set(result.layers)
    assert "layer1.0.shortcut" in result.layers  # an empty SequentialCell, which cells_and_names() leaves out
    assert result.unpaired == []
    # float32 noise a batch norm amplifies in a few elements is no layer "diverging"
    assert result.divergence is None


def test_a_wrong_padding_in_a_classic_cnn_is_found_at_its_convolution(frameworks):
    by_hand = RESNET_MS.read_text()
    old = 'self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, pad_mode="pad", padding=1,'
    assert by_hand.count(old) == 1
    # MindSpore's default pad_mode='same' pads a stride-2 convolution on one side only
    wrong = by_hand.replace(old, 'self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, pad_mode="same",')

    result = verify_model(RESNET.read_text(), model="SmallResNet()", input_shape=(2, 3, 32, 32), migrated=wrong)

    assert result.status == "FAIL"
    assert (result.divergence.phase, result.divergence.layer) == ("train 1", "layer2.0.conv1")
    assert result.divergence.input_differs is None


# -- what is not checked -------------------------------------------------------------------------------


def test_a_migration_that_is_not_complete_is_named_and_not_run(frameworks, tmp_path):
    ran = tmp_path / "ran"
    source = textwrap.dedent(f"""\
        import pathlib
        import torch.nn as nn

        pathlib.Path({str(ran)!r}).write_text("the module ran")

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.LazyConv2d(3, 1)  # no rule converts it
                self.bn = nn.BatchNorm2d(3, momentum=None)

            def forward(self, x):
                return self.bn(self.conv(x))
        """)
    path = tmp_path / "net.py"
    path.write_text(source)

    result = run(path, "--model", "Net()", "--input-shape", "2,3,4,4")

    assert result.exit_code == 2
    assert not ran.exists()
    assert "is not complete, so the model is not run" in result.output
    assert "    line 2: import of torch.nn" in result.output
    assert "    line 9: nn.LazyConv2d (torch.nn.LazyConv2d)" in result.output
    assert "    line 10: BN003 momentum=None" in result.output

    as_json = run(path, "--model", "Net()", "--input-shape", "2,3,4,4", "--json")
    data = json.loads(as_json.output[: as_json.output.rindex("}") + 1])
    assert as_json.exit_code == 2 and data["status"] == "ERROR" and data["comparisons"] == []
    assert [(x["kind"], x["line"], x["where"]) for x in data["left"]] == [
        ("torch", 2, "original"), ("torch", 9, "original"), ("torch", 10, "original"), ("finding", 10, "original")]
    assert not ran.exists()


def test_a_migrated_file_that_still_uses_torch_is_not_run(frameworks, migrated):
    half = broken(migrated, "self.rows = nn.BatchNorm1d(channels)",
                  "import torch\n        self.rows = torch.nn.BatchNorm1d(channels)")

    result = check(NORM_NETS.read_text(), migrated=half, migrated_path="half.py")

    assert result.status == "ERROR" and result.exit_code == 2
    assert result.reason.startswith("half.py is not complete")
    lines = half.splitlines()
    imported, used = lines.index("        import torch") + 1, lines.index("        self.rows = torch.nn.BatchNorm1d(channels)") + 1
    assert [x.describe() for x in result.left] == [
        f"line {imported} of half.py: import of torch",
        f"line {used} of half.py: torch.nn.BatchNorm1d (torch.nn.BatchNorm1d)"]


PROJECT_BLOCKS = """\
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c, momentum=0.3)

    def forward(self, x):
        return self.bn(self.conv(x)).relu() + x
"""

PROJECT_NET = """\
import torch.nn as nn
{import_line}


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(Block(3), Block(3))
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        return self.head(self.blocks(x).mean(dim=(2, 3)))
"""


@pytest.mark.parametrize("layout, import_line, model_file", [
    ("package", "from .blocks import Block", "pkg/net.py"),
    ("package", "from pkg.blocks import Block", "pkg/net.py"),
    ("package", "from pkg import blocks\nBlock = blocks.Block", "pkg/net.py"),
    ("scripts", "from blocks import Block", "net.py"),
])
def test_a_model_built_from_other_files_of_its_project_is_checked_with_them(frameworks, tmp_path, layout,
                                                                             import_line, model_file):
    # The files it imports are migrated too (with the project's knowledge: Block is a module, its
    # momentum converted) and imported as the packages they are.
    (tmp_path / "pyproject.toml").write_text("")
    where = tmp_path / "pkg" if layout == "package" else tmp_path
    where.mkdir(exist_ok=True)
    if layout == "package":
        (where / "__init__.py").write_text("")
    (where / "blocks.py").write_text(PROJECT_BLOCKS)
    (tmp_path / model_file).write_text(PROJECT_NET.format(import_line=import_line))

    result = run(tmp_path / model_file, "--model", "Net()", "--input-shape", "2,3,5,5", "--json")

    report = json.loads(result.output)
    assert (result.exit_code, report["status"]) == (0, "PASS"), result.output
    # the running statistics of both blocks' norm layers were compared (momentum 0.3 -> 0.7 or not)
    assert len(report["statistics"]) >= 4, report["statistics"]
    assert not [m for m in sys.modules if m == "pkg" or m.startswith("pkg.") or m == "blocks"]


def test_a_project_file_the_model_imports_that_is_not_migrated_completely_is_named(frameworks, tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "blocks.py").write_text(PROJECT_BLOCKS + "\n\nclass Recurrent(nn.Module):\n"
                                        "    def __init__(self):\n        super().__init__()\n"
                                        "        self.rnn = nn.LSTM(3, 3)\n")
    (tmp_path / "net.py").write_text(PROJECT_NET.format(import_line="from blocks import Block"))

    result = run(tmp_path / "net.py", "--model", "Net()", "--input-shape", "2,3,5,5")

    assert result.exit_code == 2
    assert "not completely migrated" in result.output and "blocks.py" in result.output and "LSTM" in result.output


def test_a_model_built_from_other_files_of_its_project_is_refused_against_a_given_migration(frameworks, tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "blocks.py").write_text("import torch.nn as nn\n\nclass Block(nn.BatchNorm2d):\n    pass\n")
    net = tmp_path / "net.py"
    net.write_text("import torch.nn as nn\nfrom blocks import Block\n\n"
                   "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                   "        self.block = Block(3)\n\n    def forward(self, x):\n        return self.block(x)\n")
    migrated = tmp_path / "net_ms.py"
    from codemod.facts.project import Project

    migrated.write_text(migrate_source(net.read_text(), path=str(net),
                                       config=Config(project=Project.around([str(net)]))).code)

    result = run(net, "--model", "Net()", "--input-shape", "2,3,4,4", "--against", migrated)

    assert result.exit_code == 2
    assert "imports blocks from its project" in result.output and "--against" in result.output


def test_the_main_block_does_not_run(frameworks):
    source = NORM_NETS.read_text() + '\n\nif __name__ == "__main__":\n    raise SystemExit("ran as a script")\n'

    assert check(source, model="NormPair()", shape=(2, 3)).status == "PASS"


@pytest.mark.parametrize("model,shape,status,message", [
    ("Missing()", (2, 3), "ERROR", "the original source defines no class or function 'Missing'"),
    ("NormPair(channels=len([]))", (2, 3), "ERROR", "constructor arguments must be Python literals"),
    ("NormPair()", (2, 5), "ERROR", "train 1: the torch model fails on an input of shape (2, 5)"),
])
def test_what_stops_the_check_on_the_torch_side(frameworks, model, shape, status, message):
    result = check(NORM_NETS.read_text(), model=model, shape=shape)

    assert (result.status, result.exit_code) == (status, 2)
    assert message in result.reason


@pytest.mark.parametrize("old,new,message", [
    ("self.right = nn.LayerNorm((channels,), epsilon=1e-05)", "self.right = nn.LayerNorm((channels + 1,))",
     "the torch weights do not fit the migrated model: 2 key(s) have no place in it: right.weight: shape (3,)"),
    ('return {"left": self.left(x), "right": self.right(x)}', 'return {"left": self.left(x), "right": x.nope()}',
     "train 1: the migrated model fails under MindSpore on an input of shape (4, 3): AttributeError"),
    ("self.left = nn.BatchNorm1d(channels, momentum=0.5)", "self.left = nn.BatchNorm1d(channels, momentum=5)",
     "building the migrated model NormPair() fails under MindSpore: ValueError"),
])
def test_a_migrated_model_that_cannot_run_or_take_the_weights_fails(frameworks, migrated, old, new, message):
    result = check(NORM_NETS.read_text(), model="NormPair()", shape=(4, 3), migrated=broken(migrated, old, new))

    assert result.status == "FAIL" and result.exit_code == 1
    assert message in result.reason


def test_tolerance_is_the_users(frameworks):
    result = check(NORM_NETS.read_text(), tolerance=Tolerance(atol=0.0, rtol=0.0))

    assert result.status == "FAIL"  # two frameworks' float32 results are not equal to the last bit


@pytest.mark.parametrize("args,message", [
    (["--input-shape", "2,3"], "--input-shape is for the whole-model check: give --model too"),
    (["--model", "NormPair()"], "--model needs --input-shape"),
    (["--model", "NormPair()", "--input-shape", "2,a"], "expected positive integers like 2,3,32,32"),
    (["--model", "NormPair()", "--input-shape", "2,3", "--bind", "m=1"], "--bind and --exclude are for the per-layer"),
])
def test_usage_errors(args, message):
    result = run(NORM_NETS, *args)

    assert result.exit_code == 2
    assert message in result.output


def test_one_python_file_only():
    result = run(FIXTURES, "--model", "NormPair()", "--input-shape", "2,3")

    assert result.exit_code == 2
    assert "--model takes exactly one Python file" in result.output


def test_without_frameworks_the_whole_model_check_says_how_to_install():
    result = run_without_frameworks("verify", str(NORM_NETS), "--model", "NormPair()", "--input-shape", "2,3")

    assert result.returncode == 2
    assert "pip install 'torch2ms[verify]'" in result.stderr
    assert "Traceback" not in result.stderr
