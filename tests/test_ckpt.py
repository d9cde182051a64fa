"""``torch2ms convert-ckpt`` end to end, with real PyTorch and MindSpore: torch models built from the
fixture sources, their trained-looking weights converted, loaded into the models torch2ms migrates
from the same sources, and the inference outputs compared."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from codemod import migrate_source
from codemod.ckpt import convert_ckpt
from codemod.cli import main
from codemod.ruleset import default_rules
from tests.test_verify_model import PROJECT_BLOCKS  # the same Block, built here by a package

FIXTURES = Path(__file__).parent / "fixtures" / "ckpt"
BN_MODELS = FIXTURES / "bn_models.py"
NORM_MODELS = FIXTURES / "norm_models.py"
DYNAMIC_MODELS = FIXTURES / "dynamic_models.py"
TOLERANCE = 1e-5
_modules = itertools.count()


def run(*args: str):
    return CliRunner().invoke(convert_ckpt, [str(a) for a in args], catch_exceptions=False)


def load_module(code: str, name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    sys.modules[name] = module  # classes defined in it must be findable (torch.save of a whole model)
    exec(compile(code, name, "exec"), module.__dict__)
    return module


def trained_torch_model(frameworks, source: Path, cls: str, *args):
    """The torch model of ``source`` with random weights and running statistics, as if trained."""
    torch = frameworks.torch
    model = getattr(load_module(source.read_text(), f"torch_{source.stem}"), cls)(*args)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=generator))
            else:
                tensor.fill_(11)  # num_batches_tracked
    return model.eval()


def save_state_dict(frameworks, model, path: Path, wrap=None) -> Path:
    state = model.state_dict()
    frameworks.torch.save(wrap(state) if wrap else state, path)
    return path


def migrated_net(source: Path, cls: str, *args):
    result = migrate_source(source.read_text(), path=str(source))
    assert not result.remaining_torch, result.remaining_torch
    return getattr(load_module(result.code, f"ms_{source.stem}"), cls)(*args)


def load_converted(frameworks, net, ckpt: Path) -> list[str]:
    """Load the converted checkpoint into the migrated net; every key must land on a parameter.
    Returns the parameters it left alone."""
    ms = frameworks.mindspore
    not_loaded, unused = ms.load_param_into_net(net, ms.load_checkpoint(str(ckpt)), strict_load=True)
    assert unused == [], f"converted keys the migrated model does not have: {unused}"
    return sorted(not_loaded)


def outputs_agree(frameworks, model, net, shape) -> float:
    """The largest absolute difference between the torch and MindSpore outputs in inference mode."""
    import numpy as np

    torch, ms = frameworks.torch, frameworks.mindspore
    sample = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    model.eval()
    net.set_train(False)
    with torch.no_grad():
        expected = model(torch.from_numpy(sample.copy()))
    got = net(ms.Tensor(sample.copy()))
    expected = expected if isinstance(expected, tuple) else (expected,)
    got = got if isinstance(got, tuple) else (got,)
    assert len(expected) == len(got)
    worst = 0.0
    for e, g in zip(expected, got):
        assert tuple(e.shape) == tuple(g.shape)
        worst = max(worst, float(np.max(np.abs(e.numpy() - g.asnumpy()))))
    return worst


def needs_rules(*names: str):
    missing = [n for n in names if f"torch.nn.{n}" not in default_rules().layers]
    return pytest.mark.skipif(bool(missing), reason=f"no rule for {', '.join(missing)} yet (issue 5)")


# -- round trips -----------------------------------------------------------------------------------


def convert(frameworks, tmp_path, source: Path, cls: str, *args, cli=("--source", BN_MODELS), wrap=None):
    """A trained-looking torch model of ``source``, its state dict saved (``wrap``ped) and run
    through convert-ckpt: the model, the output path and the command's result."""
    model = trained_torch_model(frameworks, source, cls, *args)
    pth = save_state_dict(frameworks, model, tmp_path / f"{cls}.pth", wrap)
    ckpt = tmp_path / f"{cls}.ckpt"
    return model, ckpt, run(pth, ckpt, *cli)


def on_migrated_model(frameworks, source: Path, cls: str, args, model, ckpt: Path, shape):
    """Load the converted checkpoint into torch2ms's migration of ``source``: the parameters it left
    alone, and the largest difference between the two models' outputs."""
    net = migrated_net(source, cls, *args)
    return load_converted(frameworks, net, ckpt), outputs_agree(frameworks, model, net, shape)


def test_batch_norm_models_round_trip_with_equal_outputs(frameworks, tmp_path):
    model, ckpt, result = convert(frameworks, tmp_path, BN_MODELS, "BNNet")

    assert result.exit_code == 0, result.output
    assert "keys matched against BNNet" in result.output
    assert "blocks.1.bn.weight -> blocks.1.bn.bn2d.gamma  (BatchNorm3d)" in result.output
    assert "stem.1.0.running_var -> stem.1.0.moving_variance  (BatchNorm2d)" in result.output
    assert "named.first.num_batches_tracked: dropped" in result.output
    assert f"wrote {ckpt}" in result.output

    # Every converted value is the torch value, bit for bit, under its MindSpore name.
    written = frameworks.mindspore.load_checkpoint(str(ckpt))
    state = model.state_dict()
    assert "blocks.0.bn.bn2d.moving_variance" in written
    assert not any(k.endswith("num_batches_tracked") for k in written)
    for old, new in [("blocks.0.bn.running_var", "blocks.0.bn.bn2d.moving_variance"),
                     ("pool_norm.weight", "pool_norm.gamma"), ("stack.1.bias", "stack.1.beta")]:
        assert (written[new].asnumpy() == state[old].numpy()).all()

    left_alone, difference = on_migrated_model(frameworks, BN_MODELS, "BNNet", (), model, ckpt, (2, 3, 4, 4))
    # tail.0 has affine=False: torch has no weight/bias for it, MindSpore keeps fixed ones/zeros.
    assert left_alone == ["tail.0.beta", "tail.0.gamma"]
    assert difference <= TOLERANCE


@pytest.mark.parametrize("umask", [0o022, 0o077], ids=["umask 022", "umask 077"])
def test_the_checkpoint_gets_the_usual_mode_of_a_new_file(frameworks, tmp_path, umask):
    previous = os.umask(umask)
    try:
        _, ckpt, result = convert(frameworks, tmp_path, BN_MODELS, "BNNet")
        assert result.exit_code == 0, result.output
        assert stat.S_IMODE(ckpt.stat().st_mode) == 0o666 & ~umask  # not MindSpore's read-only 0400
        again = run(tmp_path / "BNNet.pth", ckpt, "--source", BN_MODELS)  # written over, the same way
        assert again.exit_code == 0, again.output
        assert stat.S_IMODE(ckpt.stat().st_mode) == 0o666 & ~umask
    finally:
        os.umask(previous)


@needs_rules("LayerNorm", "GroupNorm")
def test_layer_and_group_norm_models_round_trip_with_equal_outputs(frameworks, tmp_path):
    model, ckpt, result = convert(frameworks, tmp_path, NORM_MODELS, "NormNet", cli=("--source", NORM_MODELS))

    assert result.exit_code == 0, result.output
    assert "body.1.norm.weight -> body.1.norm.gamma  (GroupNorm)" in result.output
    assert "last.bias -> last.beta  (LayerNorm)" in result.output
    left_alone, difference = on_migrated_model(frameworks, NORM_MODELS, "NormNet", (), model, ckpt, (2, 4, 3, 5))
    assert left_alone == []
    assert difference <= TOLERANCE


def test_a_state_dict_inside_a_training_checkpoint_with_a_dataparallel_prefix(frameworks, tmp_path):
    def training_checkpoint(state):
        return {"epoch": 90, "model": {f"module.{k}": v for k, v in state.items()}}

    _, unstripped_ckpt, unstripped = convert(frameworks, tmp_path, BN_MODELS, "NormStack", 3, wrap=training_checkpoint,
                                             cli=("--source", BN_MODELS, "--model", "NormStack"))
    assert unstripped.exit_code == 2
    assert "try --strip-prefix module." in unstripped.output
    assert not unstripped_ckpt.exists()

    model, ckpt, result = convert(frameworks, tmp_path, BN_MODELS, "NormStack", 3, wrap=training_checkpoint,
                                  cli=("--source", BN_MODELS, "--strip-prefix", "module."))
    assert result.exit_code == 0, result.output
    assert "the state dict under 'model', prefix stripped from 10" in result.output
    left_alone, difference = on_migrated_model(frameworks, BN_MODELS, "NormStack", (3,), model, ckpt, (2, 3, 4, 4))
    assert left_alone == [] and difference <= TOLERANCE


def test_without_source_batch_norm_is_recognised_by_its_keys(frameworks, tmp_path):
    model, ckpt, result = convert(frameworks, tmp_path, BN_MODELS, "NormStack", 3, cli=(),
                                  wrap=lambda state: {"state_dict": state})

    assert result.exit_code == 0, result.output
    assert "info: no --source: normalization layers are recognised by their keys alone" in result.output
    assert "cannot be told apart by their keys" in result.output  # BatchNorm3d
    assert "are not recognised: their keys are copied unchanged" in result.output  # LayerNorm & co.
    assert "0.running_mean -> 0.moving_mean  (" in result.output and "by its keys)" in result.output
    left_alone, difference = on_migrated_model(frameworks, BN_MODELS, "NormStack", (3,), model, ckpt, (2, 3, 4, 4))
    assert left_alone == [] and difference <= TOLERANCE


def test_dry_run_prints_the_mapping_and_writes_nothing(frameworks, tmp_path):
    pth = save_state_dict(frameworks, trained_torch_model(frameworks, BN_MODELS, "Block3d", 2), tmp_path / "b.pth")

    result = run(pth, "--dry-run", "--source", BN_MODELS)

    assert result.exit_code == 0, result.output
    assert "bn.running_mean -> bn.bn2d.moving_mean  (BatchNorm3d)" in result.output
    assert "dry run: nothing written" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.pth"]

    checked = run(pth, "--dry-run", "--source", BN_MODELS, "--verify", "--model", "Block3d(2)",
                  "--input-shape", "2,2,1,3,3")
    assert checked.exit_code == 0, checked.output
    assert "verify: Block3d(2) on a sample input of shape (2, 2, 1, 3, 3)" in checked.output
    assert "outputs match" in checked.output and "dry run: nothing written" in checked.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.pth"]


def test_json_report(frameworks, tmp_path):
    pth = save_state_dict(frameworks, trained_torch_model(frameworks, BN_MODELS, "Block3d", 2), tmp_path / "b.pth")

    result = run(pth, tmp_path / "b.ckpt", "--source", BN_MODELS, "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["renamed"] == {"bn.weight": "bn.bn2d.gamma", "bn.bias": "bn.bn2d.beta",
                                 "bn.running_mean": "bn.bn2d.moving_mean",
                                 "bn.running_var": "bn.bn2d.moving_variance"}
    assert [d["key"] for d in report["dropped"]] == ["bn.num_batches_tracked"]
    assert report["layers"]["bn.weight"] == {"layer": "BatchNorm3d", "found_by": "source"}
    assert report["model"].startswith("Block3d ")
    assert report["written"] is True and report["errors"] == []


# -- --verify --------------------------------------------------------------------------------------


def test_verify_builds_both_models_and_compares_them(frameworks, tmp_path):
    pth = save_state_dict(frameworks, trained_torch_model(frameworks, BN_MODELS, "BNNet"), tmp_path / "bn.pth")
    ckpt = tmp_path / "bn.ckpt"

    result = run(pth, ckpt, "--source", BN_MODELS, "--verify", "--model", "BNNet(3)", "--input-shape", "2,3,4,4",
                 "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    verdict = report["verify"]
    assert verdict["ok"] is True and verdict["model"] == "BNNet(3)"
    assert verdict["max_abs_error"] <= verdict["tolerance"] == TOLERANCE
    assert verdict["outputs"] == [[2, 3, 4, 4], [2, 3, 4], [2, 3, 1, 4, 4]]
    assert verdict["kept_initial"] == ["tail.0.beta", "tail.0.gamma"]
    assert ckpt.exists()


def test_verify_fails_when_the_migrated_model_computes_something_else(frameworks, tmp_path):
    # The model adds 1 once its base class is no longer torch's: the migrated model is off by 1.
    source = tmp_path / "shifted.py"
    source.write_text(textwrap.dedent("""
        import torch.nn as nn

        class Shifted(nn.Module):
            def __init__(self):
                super().__init__()
                self.bn = nn.BatchNorm2d(3)

            def forward(self, x):
                offset = 0.0 if type(self).__mro__[1].__module__.startswith("torch") else 1.0
                return self.bn(x) + offset
    """))
    pth = save_state_dict(frameworks, trained_torch_model(frameworks, source, "Shifted"), tmp_path / "s.pth")
    ckpt = tmp_path / "s.ckpt"

    result = run(pth, ckpt, "--source", source, "--verify", "--input-shape", "2,3,2,2")

    assert result.exit_code == 1, result.output
    assert "FAILED: the outputs differ" in result.output
    assert "largest absolute difference 1 " in result.output
    assert not ckpt.exists()


def test_verify_refuses_a_model_with_layers_torch2ms_does_not_migrate(frameworks, tmp_path):
    source = tmp_path / "convnet.py"
    source.write_text(textwrap.dedent("""
        import torch.nn as nn

        class ConvNet(nn.Module):
            def __init__(self):
                super().__init__()
                self.bn = nn.BatchNorm1d(3)
                self.rnn = nn.LSTM(3, 3)  # no rule converts it

            def forward(self, x):
                return self.rnn(self.bn(x).permute(2, 0, 1))[0]
    """))
    pth = save_state_dict(frameworks, trained_torch_model(frameworks, source, "ConvNet"), tmp_path / "c.pth")

    result = run(pth, tmp_path / "c.ckpt", "--source", source, "--verify", "--input-shape", "1,3,2")

    assert result.exit_code == 2
    assert "cannot verify: the migrated source still uses torch.nn.LSTM" in result.output
    assert not (tmp_path / "c.ckpt").exists()
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".ckpt"], "no temporary file left behind"


def test_verify_finds_keys_the_migrated_model_does_not_have(frameworks, tmp_path):
    # GrownNet fills its ModuleList after assigning it; MindSpore 2.10 then calls its parameters
    # '0.gamma' instead of 'norms.0.gamma'. The static plan warns; --verify proves it.
    pth = save_state_dict(frameworks, trained_torch_model(frameworks, BN_MODELS, "GrownNet"), tmp_path / "g.pth")

    result = run(pth, tmp_path / "g.ckpt", "--source", BN_MODELS, "--verify", "--input-shape", "2,3,4,4")

    assert result.exit_code == 2
    assert "warning: norms: modules are added to this container after it is assigned" in result.output
    assert "converted keys the migrated model GrownNet() does not have: norms.0.beta" in result.output
    assert not (tmp_path / "g.ckpt").exists()


def test_verify_needs_source_and_input_shape(frameworks, tmp_path):
    pth = save_state_dict(frameworks, trained_torch_model(frameworks, BN_MODELS, "Block3d", 2), tmp_path / "b.pth")
    assert "--verify needs --source" in run(pth, tmp_path / "o.ckpt", "--verify").output
    assert "--verify needs --input-shape" in run(pth, tmp_path / "o.ckpt", "--verify", "--source", BN_MODELS).output


# -- clear errors ----------------------------------------------------------------------------------


def test_unreadable_checkpoints(frameworks, tmp_path):
    missing = run(tmp_path / "missing.pth", tmp_path / "o.ckpt")
    assert missing.exit_code == 2 and "cannot read" in missing.output and "No such file" in missing.output
    directory = run(tmp_path, tmp_path / "o.ckpt")
    assert directory.exit_code == 2 and "is a directory" in directory.output
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    garbage = run(junk, tmp_path / "o.ckpt")
    assert garbage.exit_code == 2 and "is not a PyTorch checkpoint" in garbage.output
    assert not (tmp_path / "o.ckpt").exists()


def test_a_whole_pickled_model_is_refused_without_running_it(frameworks, tmp_path):
    model = trained_torch_model(frameworks, BN_MODELS, "Block3d", 2)
    frameworks.torch.save(model, tmp_path / "whole.pth")

    result = run(tmp_path / "whole.pth", tmp_path / "o.ckpt")

    assert result.exit_code == 2
    assert "holds pickled Python objects" in result.output and "model.state_dict()" in result.output


@pytest.mark.parametrize("content, message", [
    ({"epoch": 3, "lr": 0.1}, "is not a state dict: a dict with keys 'epoch', 'lr'"),
    ([1, 2, 3], "is not a state dict: it holds a list"),
    ({}, "is not a state dict: a dict with keys (none)"),
])
def test_files_that_hold_no_state_dict(frameworks, tmp_path, content, message):
    frameworks.torch.save(content, tmp_path / "other.pth")
    result = run(tmp_path / "other.pth", tmp_path / "o.ckpt")
    assert result.exit_code == 2
    assert message in result.output


def test_keys_that_do_not_fit_the_source_model(frameworks, tmp_path):
    pth = save_state_dict(frameworks, trained_torch_model(frameworks, BN_MODELS, "BNNet"), tmp_path / "bn.pth")

    result = run(pth, tmp_path / "o.ckpt", "--source", BN_MODELS, "--model", "Block3d")

    assert result.exit_code == 2
    assert "key(s) do not fit the model Block3d" in result.output
    assert "Block3d (" in result.output and "has no member 'stem'" in result.output
    assert "o.ckpt not written" in result.output
    assert not (tmp_path / "o.ckpt").exists()


def test_usage_errors(frameworks, tmp_path):
    assert run(tmp_path / "x.pth").exit_code == 2  # no OUTPUT, no --dry-run
    wrong = run(tmp_path / "x.pth", tmp_path / "x.npz")
    assert wrong.exit_code == 2 and "must end in .ckpt" in wrong.output
    bad_model = run(tmp_path / "x.pth", tmp_path / "x.ckpt", "--model", "Net(size=n)")
    assert bad_model.exit_code == 2 and "Python literals" in bad_model.output


def test_without_the_frameworks_the_command_says_how_to_install_them(tmp_path):
    # Run in a fresh interpreter where torch and mindspore cannot be imported.
    source = tmp_path / "m.py"
    source.write_text("import torch.nn as nn\nbn = nn.BatchNorm2d(3, momentum=0.1)\n")
    script = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None
        sys.modules["mindspore"] = None
        from click.testing import CliRunner
        from codemod.cli import main
        ckpt = CliRunner().invoke(main, ["convert-ckpt", "{tmp_path / 'x.pth'}", "{tmp_path / 'x.ckpt'}"])
        print("convert-ckpt", ckpt.exit_code, ckpt.output)
        migrate = CliRunner().invoke(main, ["migrate", "--diff", "{source}"])
        print("migrate", migrate.exit_code, migrate.output)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    assert out.returncode == 0, out.stderr
    assert "convert-ckpt 2" in out.stdout
    assert "pip install 'torch2ms[verify]'" in out.stdout
    assert "migrate 1" in out.stdout and "momentum=0.9" in out.stdout


# -- a source migrated in place ------------------------------------------------------------------------


def migrate_in_place(tmp_path: Path, *sources: Path) -> Path:
    """Copies of ``sources`` in a directory migrated in place by ``torch2ms migrate`` (the CLI)."""
    tree = tmp_path / "src"
    tree.mkdir()
    for source in sources:
        shutil.copy(source, tree / source.name)
    result = CliRunner().invoke(main, ["migrate", str(tree)], catch_exceptions=False)
    assert "findings: 0 error" in result.output, result.output
    for source in sources:
        migrated = (tree / source.name).read_text()
        assert "(nn.Cell)" in migrated and "nn.Module" not in migrated
    return tree


def mindspore_net(code: str, cls: str, *args):
    """The model a MindSpore source defines (a file migrated in place, or edited after that)."""
    return getattr(load_module(code, f"ms_model_{next(_modules)}"), cls)(*args)


def mapping(result) -> tuple[dict, list]:
    report = json.loads(result.output)
    return report["renamed"], report["dropped"]


@pytest.mark.parametrize("source, cls, args, shape, left_alone", [
    (BN_MODELS, "BNNet", (), (2, 3, 4, 4), ["tail.0.beta", "tail.0.gamma"]),
    (NORM_MODELS, "NormNet", (), (2, 4, 3, 5), []),
    (DYNAMIC_MODELS, "Tree", (3, 3), (2, 3, 4, 4), []),
    (DYNAMIC_MODELS, "Heads", (5,), (2, 3, 5), []),
], ids=["BNNet", "NormNet", "Tree", "Heads"])
def test_a_source_migrated_in_place_converts_as_its_original(frameworks, tmp_path, source, cls, args, shape,
                                                             left_alone):
    tree = migrate_in_place(tmp_path, source)

    model, ckpt, result = convert(frameworks, tmp_path, source, cls, *args, cli=("--source", tree))

    assert result.exit_code == 0, result.output
    assert f"keys matched against {cls} ({tree / source.name}:" in result.output
    assert "a MindSpore Cell (migrated source)" in result.output
    pth = tmp_path / f"{cls}.pth"
    from_torch = run(pth, "--dry-run", "--json", "--source", source)
    from_mindspore = run(pth, "--dry-run", "--json", "--source", tree)
    assert mapping(from_mindspore) == mapping(from_torch)
    assert mapping(from_torch)[0], "the model has normalization layers to rename"
    net = mindspore_net((tree / source.name).read_text(), cls, *args)
    assert load_converted(frameworks, net, ckpt) == left_alone
    assert outputs_agree(frameworks, model, net, shape) <= TOLERANCE


def test_verify_with_a_migrated_source_builds_the_torch_model_from_the_original(frameworks, tmp_path):
    tree = migrate_in_place(tmp_path, BN_MODELS)
    pth = save_state_dict(frameworks, trained_torch_model(frameworks, BN_MODELS, "BNNet"), tmp_path / "bn.pth")
    ckpt = tmp_path / "bn.ckpt"
    verify = ("--source", tree, "--verify", "--input-shape", "2,3,4,4")

    without = run(pth, ckpt, *verify)
    assert without.exit_code == 2
    assert f"cannot verify: BNNet ({tree / 'bn_models.py'}:" in without.output
    assert "is MindSpore code (a migrated source)" in without.output and "--original PATH" in without.output
    assert not ckpt.exists()

    for original in (BN_MODELS, FIXTURES):  # the file, or the directory it is in
        checked = run(pth, ckpt, *verify, "--original", original)
        assert checked.exit_code == 0, checked.output
        assert "outputs match" in checked.output and ckpt.exists()
        ckpt.unlink()

    elsewhere = run(pth, ckpt, *verify, "--original", NORM_MODELS)
    assert elsewhere.exit_code == 2
    assert f"--original {NORM_MODELS} defines no PyTorch module class(es) named 'BNNet'" in elsewhere.output
    torch_source = run(pth, ckpt, "--source", BN_MODELS, "--verify", "--input-shape", "2,3,4,4",
                       "--original", BN_MODELS)
    assert torch_source.exit_code == 2 and "is PyTorch code already" in torch_source.output
    not_verifying = run(pth, ckpt, "--source", tree, "--original", BN_MODELS)
    assert not_verifying.exit_code == 2 and "--original is for --verify" in not_verifying.output
    assert not ckpt.exists()


def test_verify_runs_the_migrated_source_as_the_user_edited_it(frameworks, tmp_path):
    # An edit after the migration that changes the numbers: --verify must run the edited file, not
    # a fresh migration of the original.
    tree = migrate_in_place(tmp_path, BN_MODELS)
    migrated = tree / "bn_models.py"
    edited = migrated.read_text().replace("nn.BatchNorm2d(channels, eps=1e-3)", "nn.BatchNorm2d(channels, eps=0.5)")
    assert edited != migrated.read_text()
    migrated.write_text(edited)
    pth = save_state_dict(frameworks, trained_torch_model(frameworks, BN_MODELS, "NormStack", 3), tmp_path / "n.pth")

    result = run(pth, tmp_path / "n.ckpt", "--source", tree, "--model", "NormStack(3)", "--verify",
                 "--input-shape", "2,3,4,4", "--original", BN_MODELS)

    assert result.exit_code == 1, result.output
    assert "FAILED: the outputs differ" in result.output
    assert not (tmp_path / "n.ckpt").exists()


# -- models whose structure is built at run time -------------------------------------------------------


@pytest.mark.parametrize("cls, args, shape, fix", [
    ("Tree", (3, 3), (2, 3, 4, 4), None),
    ("Stages", (4,), (2, 4, 3, 3), None),  # add_module: the migration writes insert_child_to_cell
    ("Heads", (5,), (2, 3, 5), None),
], ids=["recursive tree (__setattr__)", "add_module in a loop", "setattr with f-strings"])
def test_members_under_computed_names_round_trip(frameworks, tmp_path, cls, args, shape, fix):
    code = migrate_source(DYNAMIC_MODELS.read_text()).code
    migrated = tmp_path / "migrated" / "dynamic_models.py"
    migrated.parent.mkdir()
    migrated.write_text(fix(code) if fix else code)
    model, ckpt, result = convert(frameworks, tmp_path, DYNAMIC_MODELS, cls, *args, cli=("--source", DYNAMIC_MODELS))

    assert result.exit_code == 0, result.output  # the static reading: not the whole checkpoint refused
    assert f"keys matched against {cls} (" in result.output
    assert "registered under names computed at run time" in result.output
    assert "warning" not in result.output
    net = mindspore_net(migrated.read_text(), cls, *args)
    assert load_converted(frameworks, net, ckpt) == []
    assert outputs_agree(frameworks, model, net, shape) <= TOLERANCE

    # The built model (its own parameter names) agrees, from the torch source or the migrated one.
    spec = f"{cls}({', '.join(map(str, args))})"
    for source in (DYNAMIC_MODELS, migrated):
        original = ("--original", DYNAMIC_MODELS) if source == migrated else ()
        built = run(tmp_path / f"{cls}.pth", tmp_path / "built.ckpt", "--source", source, "--model", spec,
                    "--verify", "--input-shape", ",".join(map(str, shape)), *original, "--json")
        report = json.loads(built.output)
        if fix is not None and source == DYNAMIC_MODELS:
            # torch2ms's own migration keeps add_module: that model cannot be built, and says why.
            assert built.exit_code == 2
            assert "has no attribute 'add_module'" in report["warnings"][0]
            assert report["warnings"][0].endswith("the layers are read from the source instead")
            continue
        assert built.exit_code == 0, built.output
        assert report["verify"]["ok"] is True
        assert {v["found_by"] for v in report["layers"].values()} == {"model"}
        assert report["renamed"] == json.loads(run(tmp_path / f"{cls}.pth", "--dry-run", "--json", "--source",
                                                   DYNAMIC_MODELS).output)["renamed"]


@needs_rules("LayerNorm")
def test_the_built_model_places_what_the_static_reading_cannot(frameworks, tmp_path):
    # Parts's members come from a helper that builds an nn.Sequential(*layers): statically, batch
    # norm is recognised by its keys and the layer norms are not. The built model knows.
    model, ckpt, result = convert(frameworks, tmp_path, DYNAMIC_MODELS, "Parts", 3, 4,
                                  cli=("--source", DYNAMIC_MODELS))
    assert result.exit_code == 0, result.output
    assert ("warning: part0, part1: the source does not show what they hold (make_part(channels, width)); batch "
            "norm layers there are recognised by their running_mean key, other normalization layers are not"
            in result.output)
    assert "part1.0.running_var -> part1.0.moving_variance  (" in result.output
    net = migrated_net(DYNAMIC_MODELS, "Parts", 3, 4)
    # The blind spot the warning names: the layer norms' weights do not arrive.
    ms = frameworks.mindspore
    not_loaded, unused = ms.load_param_into_net(net, ms.load_checkpoint(str(ckpt)))
    assert sorted(unused) == ["part0.1.bias", "part0.1.weight", "part1.1.bias", "part1.1.weight"]
    assert sorted(not_loaded) == ["part0.1.beta", "part0.1.gamma", "part1.1.beta", "part1.1.gamma"]
    assert outputs_agree(frameworks, model, net, (2, 3, 2, 4)) > TOLERANCE

    built = run(tmp_path / "Parts.pth", ckpt, "--source", DYNAMIC_MODELS, "--model", "Parts(3, 4)")
    assert built.exit_code == 0, built.output
    assert "layers from the built model: keys mapped onto the parameters of Parts(3, 4)" in built.output
    assert "part0.1.weight -> part0.1.gamma  (LayerNorm)" in built.output
    assert "warning" not in built.output
    net = migrated_net(DYNAMIC_MODELS, "Parts", 3, 4)
    assert load_converted(frameworks, net, ckpt) == []
    assert outputs_agree(frameworks, model, net, (2, 3, 2, 4)) <= TOLERANCE


def test_the_built_model_names_the_parameters_of_a_late_filled_container(frameworks, tmp_path):
    # GrownNet fills its CellList after assigning it: MindSpore calls norms.0.gamma '0.gamma'. The
    # static reading warns (and --verify without a built plan fails); the built model says so.
    pth = save_state_dict(frameworks, trained_torch_model(frameworks, BN_MODELS, "GrownNet"), tmp_path / "g.pth")
    ckpt = tmp_path / "g.ckpt"

    result = run(pth, ckpt, "--source", BN_MODELS, "--model", "GrownNet()", "--verify", "--input-shape", "2,3,4,4")

    assert result.exit_code == 0, result.output
    assert "norms.1.running_mean -> 1.moving_mean  (BatchNorm2d)" in result.output
    assert ("the built model names 8 parameter(s) otherwise than their place in it (norms.0.moving_mean is "
            "'0.moving_mean'" in result.output)
    assert "outputs match" in result.output
    assert sorted(frameworks.mindspore.load_checkpoint(str(ckpt))) == sorted(
        f"{i}.{p}" for i in (0, 1) for p in ("gamma", "beta", "moving_mean", "moving_variance"))


def test_the_built_model_refuses_keys_it_has_no_place_for(frameworks, tmp_path):
    heads = save_state_dict(frameworks, trained_torch_model(frameworks, DYNAMIC_MODELS, "Heads", 5), tmp_path / "h.pth")
    wider = run(heads, tmp_path / "h.ckpt", "--source", DYNAMIC_MODELS, "--model", "Heads(6)")
    assert wider.exit_code == 2
    assert "head0.weight: shape (5,) in the checkpoint, (6,) for head0.gamma in the built model" in wider.output

    tree = save_state_dict(frameworks, trained_torch_model(frameworks, DYNAMIC_MODELS, "Tree", 3, 3), tmp_path / "t.pth")
    shallower = run(tree, tmp_path / "t.ckpt", "--source", DYNAMIC_MODELS, "--model", "Tree(3, 2)")
    assert shallower.exit_code == 2
    assert "10 key(s) do not fit the model Tree(3, 2) (built from" in shallower.output
    assert "level_2.root.num_batches_tracked: the built model has no cell level_2\n" in shallower.output
    assert "level_1.level_1.root.num_batches_tracked: the built model has no cell level_1.level_1\n" in shallower.output
    deeper = run(tree, tmp_path / "t.ckpt", "--source", DYNAMIC_MODELS, "--model", "Tree(3, 4)")
    assert deeper.exit_code == 0
    assert ("warning: 4 layer(s) of the built model get nothing from the checkpoint and keep their initial values: "
            "level_1.level_1.level_1.root, level_1.level_2.root, level_2.level_1.root, level_3.root: was the model "
            "built with the arguments it was trained with?") in deeper.output
    assert not (tmp_path / "h.ckpt").exists()


def test_two_children_inserted_without_their_prefix_cannot_both_be_written(frameworks, tmp_path):
    torch_source, mindspore_source = tmp_path / "torch_stages.py", tmp_path / "ms_stages.py"
    torch_source.write_text(textwrap.dedent("""
        import torch.nn as nn

        class Stages(nn.Module):
            def __init__(self):
                super().__init__()
                for name in ("stem", "body"):
                    self.add_module(name, nn.Sequential(nn.BatchNorm2d(3)))
    """))
    mindspore_source.write_text(textwrap.dedent("""
        from mindspore import nn

        class Stages(nn.Cell):
            def __init__(self):
                super().__init__()
                for name in ("stem", "body"):
                    self.insert_child_to_cell(name, nn.SequentialCell([nn.BatchNorm2d(3)]))
    """))
    pth = save_state_dict(frameworks, trained_torch_model(frameworks, torch_source, "Stages"), tmp_path / "s.pth")

    static = run(pth, tmp_path / "s.ckpt", "--source", mindspore_source)
    assert static.exit_code == 0
    assert "warning: stem: registered with insert_child_to_cell(); MindSpore (2.10) then names" in static.output
    built = run(pth, tmp_path / "s.ckpt", "--source", mindspore_source, "--model", "Stages()")
    assert built.exit_code == 2
    assert "the built model gives stem.0.moving_mean and body.0.moving_mean the same name '0.moving_mean'" in built.output
    assert "stem.0.weight and body.0.weight would both be written as 0.gamma" in built.output


def test_a_model_that_cannot_be_built_is_read_statically_with_a_warning(frameworks, tmp_path):
    source = tmp_path / "convnet.py"
    source.write_text(textwrap.dedent("""
        import torch.nn as nn

        class ConvNet(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = nn.LSTM(3, 3)  # no rule converts it
                self.bn = nn.BatchNorm2d(3)
    """))
    pth = save_state_dict(frameworks, trained_torch_model(frameworks, source, "ConvNet"), tmp_path / "c.pth")

    result = run(pth, tmp_path / "c.ckpt", "--source", source, "--model", "ConvNet()")

    assert result.exit_code == 0, result.output
    assert ("warning: cannot build ConvNet() (the migrated source still uses torch.nn.LSTM: no rule of torch2ms "
            "converts it; port it by hand first): the layers are read from the source instead") in result.output
    assert "layers from the source: keys matched against ConvNet (" in result.output
    assert "bn.running_var -> bn.moving_variance  (BatchNorm2d)" in result.output


# -- layers beyond normalization (issue 15) ---------------------------------------------------------

LAYER_MODELS = '''
import torch.nn as nn


class Temporal(nn.Module):
    """Conv1d and ConvTranspose1d hold a 4-D weight in MindSpore; PReLU's weight is w."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 8, 5, padding=2)
        self.bn = nn.BatchNorm1d(8)
        self.up = nn.ConvTranspose1d(8, 4, 4, 2, 1)
        self.act = nn.PReLU(4)
        self.fc = nn.Linear(32, 5)

    def forward(self, x):
        return self.fc(self.act(self.up(self.bn(self.conv(x)))))


class Attention(nn.Module):
    """MultiheadAttention keeps torch's names, out_proj.weight one level down."""

    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2)
        self.emb = nn.Embedding(10, 8)
        self.norm = nn.LayerNorm(8)
'''


def test_layer_keys_follow_the_rules_attribute_tables(frameworks, tmp_path):
    source = tmp_path / "layers.py"
    source.write_text(LAYER_MODELS)
    model, ckpt, result = convert(frameworks, tmp_path, source, "Temporal", cli=("--source", source))
    assert result.exit_code == 0, result.output
    assert "conv.weight -> conv.weight  (Conv1d; an axis of size 1 inserted at 2)" in result.output
    assert "up.weight -> up.weight  (ConvTranspose1d; an axis of size 1 inserted at 2)" in result.output
    assert "act.weight -> act.w  (PReLU)" in result.output
    kept, worst = on_migrated_model(frameworks, source, "Temporal", (), model, ckpt, (2, 3, 16))
    assert kept == []
    assert worst < 1e-3  # outputs of a few hundred (weights drawn from N(0, 1)): float32 rounding

    _, _, attention = convert(frameworks, tmp_path, source, "Attention", cli=("--source", source, "--dry-run", "--json"))
    assert attention.exit_code == 0, attention.output
    report = json.loads(attention.output)
    assert report["renamed"] == {"emb.weight": "emb.embedding_table", "norm.weight": "norm.gamma",
                                 "norm.bias": "norm.beta"}
    assert {"attn.in_proj_weight", "attn.out_proj.weight", "attn.out_proj.bias"} <= set(report["unchanged"])
    assert report["mismatches"] == []


def test_a_built_model_takes_conv1d_weights_with_the_inserted_axis(frameworks, tmp_path):
    source = tmp_path / "layers.py"
    source.write_text(LAYER_MODELS)
    _, ckpt, result = convert(frameworks, tmp_path, source, "Temporal",
                              cli=("--source", source, "--verify", "--model", "Temporal()", "--input-shape", "2,3,16",
                                   "--tolerance", "1e-3"))
    assert result.exit_code == 0, result.output
    assert "outputs match" in result.output
    shapes = {k: tuple(v.shape) for k, v in frameworks.mindspore.load_checkpoint(str(ckpt)).items()}
    assert shapes["conv.weight"] == (8, 3, 1, 5) and shapes["up.weight"] == (8, 4, 1, 4)


PACKAGE_NET = """\
import torch.nn as nn

from .blocks import Block


class Net(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.blocks = nn.Sequential(Block(c), Block(c))
        self.act = nn.PReLU(c)

    def forward(self, x):
        return self.act(self.blocks(x))
"""


def package_model(frameworks, root: Path) -> Path:
    """pkg/net.py builds its Net of pkg/blocks.py's Block; the torch model's weights, saved."""
    (root / "pkg").mkdir(parents=True)
    (root / "pyproject.toml").write_text("")
    (root / "pkg/__init__.py").write_text("")
    (root / "pkg/blocks.py").write_text(PROJECT_BLOCKS)
    (root / "pkg/net.py").write_text(PACKAGE_NET)
    sys.path.insert(0, str(root))
    try:
        import importlib
        model = importlib.import_module("pkg.net").Net(3)
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == "pkg" or n.startswith("pkg.")]:
            del sys.modules[name]
    torch = frameworks.torch
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.3)
    return save_state_dict(frameworks, model, root / "net.pth")


def test_verify_runs_a_model_built_from_other_files_of_its_package(frameworks, tmp_path):
    # The model's file imports Block from its package: both models are imported as the package they
    # are (the migrated one from a copy of the tree, each file migrated with the project's knowledge).
    pth = package_model(frameworks, tmp_path)
    ckpt = tmp_path / "net.ckpt"

    result = run(pth, ckpt, "--source", tmp_path / "pkg", "--verify", "--model", "Net(3)", "--input-shape", "2,3,5,5",
                 "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["verify"]["ok"] is True, report["verify"]
    assert not [w for w in report["warnings"] if "cannot build" in w], report["warnings"]
    assert ckpt.exists()
    assert not [m for m in sys.modules if m == "pkg" or m.startswith("pkg.")]


def test_verify_runs_a_package_migrated_in_place_against_its_original(frameworks, tmp_path):
    pth = package_model(frameworks, tmp_path / "torch")
    migrated = CliRunner().invoke(main, ["migrate", str(tmp_path / "torch"), "--out", str(tmp_path / "ms")],
                                  catch_exceptions=False)
    assert migrated.exit_code == 0, migrated.output

    result = run(pth, tmp_path / "net.ckpt", "--source", tmp_path / "ms/pkg", "--verify", "--model", "Net(3)",
                 "--input-shape", "2,3,5,5", "--original", tmp_path / "torch/pkg", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["verify"]["ok"] is True


def test_verify_fails_a_package_model_whose_migrated_block_computes_something_else(frameworks, tmp_path):
    pth = package_model(frameworks, tmp_path / "torch")
    CliRunner().invoke(main, ["migrate", str(tmp_path / "torch"), "--out", str(tmp_path / "ms")], catch_exceptions=False)
    blocks = tmp_path / "ms/pkg/blocks.py"
    text = blocks.read_text()
    assert text.count(" + x") == 1
    blocks.write_text(text.replace(" + x", " - x"))

    result = run(pth, tmp_path / "net.ckpt", "--source", tmp_path / "ms/pkg", "--verify", "--model", "Net(3)",
                 "--input-shape", "2,3,5,5", "--original", tmp_path / "torch/pkg")

    assert result.exit_code == 1, result.output
    assert not (tmp_path / "net.ckpt").exists()
