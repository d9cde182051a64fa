"""The classic architectures (tests/fixtures/models/*.in.py, written for these tests): each migrates to
MindSpore code that imports no torch and leaves nothing unconverted, passes the whole-model check
(both models built, the same weights, training passes then inference; outputs and running statistics
within 1e-4 relative), and its torch state dict, converted by ``convert-ckpt --source``, loads into the
migrated model, which then computes what the torch model computes."""

from __future__ import annotations

import ast
import itertools
import sys
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from codemod import migrate_source
from codemod.ckpt import convert_ckpt

MODELS = Path(__file__).parent / "fixtures" / "models"
# (fixture, the model as --model writes it, the input shape)
CASES = [
    ("resnet", "resnet_basic()", (2, 3, 32, 32)),
    ("resnet", "resnet_bottleneck()", (2, 3, 32, 32)),
    ("vgg", "vgg_small()", (2, 3, 32, 32)),
    ("mobilenetv2", "MobileNetV2()", (2, 3, 32, 32)),
    ("densenet", "DenseNet()", (2, 3, 16, 16)),
    ("senet", "SENet()", (2, 3, 16, 16)),
    ("unet", "UNet()", (2, 3, 32, 32)),
    ("transformer", "Encoder()", (2, 7, 12)),
]
IDS = [model.rstrip("()") for _, model, _ in CASES]
RTOL = 1e-4
_modules = itertools.count()


def source(fixture: str) -> str:
    return (MODELS / f"{fixture}.in.py").read_text(encoding="utf-8")


def imported_modules(code: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module.split(".")[0])
    return modules


@pytest.mark.parametrize("fixture", sorted({fixture for fixture, _, _ in CASES}))
def test_the_migration_is_complete_and_imports_no_torch(fixture):
    result = migrate_source(source(fixture), path=f"{fixture}.py")

    assert [f"{f.line}: {f.code} {f.message}" for f in result.findings if f.severity == "error"] == []
    assert result.remaining_torch == []
    assert "torch" not in imported_modules(result.code)
    assert "mindspore" in imported_modules(result.code)


@pytest.mark.parametrize("fixture, model, shape", CASES, ids=IDS)
def test_the_whole_model_check_passes(frameworks, fixture, model, shape):
    from codemod.verify import Tolerance, verify_model

    check = verify_model(source(fixture), path=f"{fixture}.py", model=model, input_shape=shape, steps=3,
                         tolerance=Tolerance(rtol=RTOL))

    failed = [f"{c.phase} {c.quantity}: max abs {c.max_abs:.3g}, max rel {c.max_rel:.3g} {c.detail}"
              for c in check.failed]
    where = check.divergence.describe() if check.divergence else ""
    assert check.status == "PASS", "\n".join([check.reason, where, *[left.describe() for left in check.left], *failed])
    # the outputs after every training pass and in inference, and every running statistic
    assert {c.phase for c in check.comparisons} == {"train 1", "train 2", "train 3", "eval"}
    assert check.unpaired == []


# -- the checkpoint -----------------------------------------------------------------------------------


def load_module(code: str, label: str) -> types.ModuleType:
    name = f"_classic_{label}_{next(_modules)}"
    module = types.ModuleType(name)
    sys.modules[name] = module
    exec(compile(code, name, "exec"), module.__dict__)
    return module


@pytest.mark.parametrize("fixture, model, shape", CASES, ids=IDS)
def test_the_converted_checkpoint_loads_and_gives_the_torch_outputs(frameworks, tmp_path, fixture, model, shape):
    import numpy as np

    torch, ms = frameworks.torch, frameworks.mindspore
    torch.manual_seed(0)
    original = load_module(source(fixture), "torch")
    built = eval(model, vars(original))  # the test's own model expression
    with torch.no_grad():  # as if trained: running statistics away from 0 and 1, biases not zero
        for name, tensor in [*built.named_parameters(), *built.named_buffers()]:
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape) + 0.5 if name.endswith("running_var")
                             else torch.randn(tensor.shape) * 0.2 + (0.1 if name.endswith("running_mean") else 0))
    pth, ckpt = tmp_path / f"{fixture}.pth", tmp_path / f"{fixture}.ckpt"
    torch.save(built.state_dict(), pth)

    result = CliRunner().invoke(convert_ckpt, [str(pth), str(ckpt), "--source", str(MODELS / f"{fixture}.in.py")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output

    migrated = load_module(migrate_source(source(fixture), path=f"{fixture}.py").code, "mindspore")
    net = eval(model, vars(migrated))
    not_loaded, unused = ms.load_param_into_net(net, ms.load_checkpoint(str(ckpt)), strict_load=True)
    assert (not_loaded, unused) == ([], [])

    sample = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
    built.eval()
    net.set_train(False)
    with torch.no_grad():
        expected = built(torch.from_numpy(sample.copy())).numpy()
    got = net(ms.Tensor(sample.copy())).asnumpy()
    assert got.shape == expected.shape
    assert np.allclose(got, expected, rtol=RTOL, atol=1e-5), float(np.max(np.abs(got - expected)))
