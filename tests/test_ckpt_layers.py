"""convert-ckpt for every layer the rules convert, not only normalization: parameter names from the
rules' attribute tables (Embedding's weight is embedding_table, PReLU's is w), shapes from their
``inserted_axes`` (MindSpore's Conv1d/ConvTranspose1d weights have an extra axis), layers whose rule
renames nothing keeping every key (MultiheadAttention, its out_proj included), and models mixing
them in one run. test_models.py runs the classic architectures through the command.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
import types
from pathlib import Path

import pytest

from codemod.ckpt.keys import CellLayout, plan_from_cell, plan_from_keys, plan_from_source
from codemod.ckpt.structure import SourceModel
from codemod.ruleset import Layout, RuleError, default_rules, load_rules, rules_dir

FIXTURES = Path(__file__).parent / "fixtures" / "ckpt"
LAYER_MODELS = FIXTURES / "layer_models.py"
LAYER_MODELS_MS = FIXTURES / "layer_models_ms.py"


@pytest.fixture(scope="module")
def rules():
    return default_rules()


def source_of(rules, text: str) -> SourceModel:
    model = SourceModel(rules)
    model.add(textwrap.dedent(text), "model.py")
    return model


TORCH_KEYS = ["embed.weight", "conv.weight", "conv.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var",
              "bn.num_batches_tracked", "act.weight", "up.weight", "norm.weight", "norm.bias", "attn.in_proj_weight",
              "attn.in_proj_bias", "attn.out_proj.weight", "attn.out_proj.bias", "head.weight", "head.bias"]
CONV1D = Layout(insert_axis=2)


def test_every_layer_of_a_mixed_model_is_named_and_laid_out_by_its_rule(rules):
    plan = plan_from_source(TORCH_KEYS, SourceModel.read(LAYER_MODELS, rules))

    assert not plan.mismatches and not plan.warnings
    moves = {m.key: (m.new, m.layout) for m in plan.moves}
    assert moves == {
        "embed.weight": ("embed.embedding_table", None),
        "conv.weight": ("conv.weight", CONV1D), "conv.bias": ("conv.bias", None),
        "bn.weight": ("bn.gamma", None), "bn.bias": ("bn.beta", None), "bn.running_mean": ("bn.moving_mean", None),
        "bn.running_var": ("bn.moving_variance", None), "bn.num_batches_tracked": (None, None),
        "act.weight": ("act.w", None),
        "up.weight": ("up.weight", CONV1D),
        "norm.weight": ("norm.gamma", None), "norm.bias": ("norm.beta", None),
        # MultiheadAttention's own Linear: its table names the parameters under out_proj.
        "attn.in_proj_weight": ("attn.in_proj_weight", None), "attn.in_proj_bias": ("attn.in_proj_bias", None),
        "attn.out_proj.weight": ("attn.out_proj.weight", None), "attn.out_proj.bias": ("attn.out_proj.bias", None),
        "head.weight": ("head.weight", None), "head.bias": ("head.bias", None),
    }
    assert {m.layer for m in plan.moves if m.key.startswith("act.")} == {"PReLU"}
    assert [m.key for m in plan.reshaped] == ["conv.weight", "up.weight"]
    assert "conv.weight" not in [m.key for m in plan.unchanged]


def test_a_key_the_layer_does_not_have_is_an_error_that_names_the_layer(rules):
    plan = plan_from_source(["act.weight", "act.bias", "conv.scale", "embed.embedding_table", "attn.bias_k"],
                            SourceModel.read(LAYER_MODELS, rules), "TokenConv")
    assert dict(plan.mismatches) == {
        "act.bias": "act is a PReLU, which has no parameter or buffer 'bias'",
        "conv.scale": "conv is a Conv1d, which has no parameter or buffer 'scale'",
        "embed.embedding_table": "embed is an Embedding, which has no parameter or buffer 'embedding_table'",
    }
    # A layer whose rule renames nothing has whatever keys it has (MultiheadAttention's bias_k with
    # add_bias_kv=True): they carry over.
    assert [m.key for m in plan.unchanged] == ["attn.bias_k"]


def test_a_layer_that_may_be_conv1d_or_conv2d_is_an_error_not_a_guess(rules):
    # Same names, different layouts: the keys cannot say which, and a wrong guess loads a wrong shape.
    source = source_of(rules, """
        from torch import nn

        class Net(nn.Module):
            def __init__(self, c, one_d=True):
                super().__init__()
                self.conv = nn.Conv1d(c, c, 3) if one_d else nn.Conv2d(c, c, 3)
                self.head = nn.Linear(c, 2) if one_d else nn.Identity()
    """)
    plan = plan_from_source(["conv.weight", "conv.bias", "head.weight", "head.bias"], source)
    assert dict(plan.mismatches) == {
        key: "conv: it may be Conv1d or Conv2d, whose MindSpore layouts differ, and the source does not say which"
        for key in ("conv.weight", "conv.bias")}
    # A Linear or a module the rules do not know: whatever keys it has keep their names.
    assert {m.key: m.new for m in plan.moves if m.key.startswith("head.")} == {"head.weight": "head.weight",
                                                                               "head.bias": "head.bias"}


def test_the_built_model_takes_the_tensor_in_its_layout(rules):
    conv1d, linear = rules.layers["torch.nn.Conv1d"], rules.layers["torch.nn.Linear"]
    layout = CellLayout("Net()", {"": (), "conv": (conv1d,), "head": (linear,)},
                        {"conv.weight": ("conv.weight", (8, 4, 1, 3)), "conv.bias": ("conv.bias", (8,)),
                         "head.weight": ("head.weight", (2, 8)), "head.bias": ("head.bias", (2,))})
    shapes = {"conv.weight": (8, 4, 3), "conv.bias": (8,), "head.weight": (2, 8), "head.bias": (2,)}

    plan = plan_from_cell(list(shapes), shapes, layout)
    assert not plan.mismatches
    assert [(m.key, m.layout) for m in plan.reshaped] == [("conv.weight", CONV1D)]

    wrong = plan_from_cell(list(shapes), {**shapes, "conv.weight": (8, 4, 5)}, layout)
    assert wrong.mismatches == [("conv.weight", "shape (8, 4, 5) in the checkpoint (as MindSpore lays it out: "
                                                "(8, 4, 1, 5)), (8, 4, 1, 3) for conv.weight in the built model")]


def test_without_a_source_the_reshaped_layers_are_named_as_a_blind_spot(rules):
    plan = plan_from_keys(TORCH_KEYS, rules)
    notes = "\n".join(plan.notes)
    assert "MindSpore lays out parameters of Conv1d, ConvTranspose1d otherwise than torch" in notes
    assert not plan.reshaped  # a 3-D weight could be anything's


@pytest.mark.parametrize("axes, error", [
    ("weight = -1", "inserted_axes: weight must be a non-negative int (an axis), not -1"),
    ("weight = 2.0", "inserted_axes: weight must be a non-negative int (an axis), not 2.0"),
    ("scale = 2", "inserted_axes: scale is not a parameter with a counterpart in [layer.attributes]"),
])
def test_a_malformed_inserted_axis_is_refused_at_load_naming_the_file_and_layer(tmp_path, axes, error):
    for path in rules_dir().glob("*.toml"):
        shutil.copy(path, tmp_path / path.name)
    conv = tmp_path / "conv.toml"
    text = conv.read_text()
    assert text.count("[layer.inserted_axes]\nweight = 2\n") == 2
    conv.write_text(text.replace("[layer.inserted_axes]\nweight = 2\n", f"[layer.inserted_axes]\n{axes}\n", 1))
    with pytest.raises(RuleError, match="conv.toml: torch.nn.Conv1d") as caught:
        load_rules(tmp_path)
    assert error in str(caught.value)


# -- with the frameworks: the tensors ---------------------------------------------------------------


def load_module(path: Path, name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    sys.modules[name] = module
    exec(compile(path.read_text(), str(path), "exec"), module.__dict__)
    return module


def test_a_mixed_model_round_trips_through_the_checkpoint_with_equal_outputs(frameworks, rules, tmp_path):
    """The torch model's state dict, planned from its source, written as a MindSpore checkpoint, loads
    strictly into the same model written for MindSpore by hand, which then computes the same."""
    import numpy as np

    from codemod.ckpt.frameworks import write_checkpoint

    torch, ms = frameworks.torch, frameworks.mindspore
    torch.manual_seed(0)
    model = load_module(LAYER_MODELS, "torch_layer_models").TokenConv().eval()
    with torch.no_grad():  # moved off the initial values (PReLU's 0.25, LayerNorm's ones, zero biases)
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape) + 0.5 if name.endswith("running_var")
                             else torch.randn(tensor.shape) * 0.5)
    state = model.state_dict()
    plan = plan_from_source(list(state), SourceModel.read(LAYER_MODELS, rules))
    assert not plan.mismatches
    ckpt = write_checkpoint([(m.new, state[m.key], m.layout) for m in plan.moves if m.new], tmp_path)

    net = load_module(LAYER_MODELS_MS, "ms_layer_models").TokenConv()
    not_loaded, unused = ms.load_param_into_net(net, ms.load_checkpoint(str(ckpt)), strict_load=True)
    assert (not_loaded, unused) == ([], [])
    assert tuple(net.conv.weight.shape) == (8, 8, 1, 3)
    assert (net.conv.weight.asnumpy()[:, :, 0, :] == state["conv.weight"].numpy()).all()

    ids = np.random.default_rng(1).integers(0, 16, (2, 5))
    net.set_train(False)
    with torch.no_grad():
        expected = model(torch.from_numpy(ids)).numpy()
    got = net(ms.Tensor(ids, ms.int32)).asnumpy()
    assert expected.shape == got.shape == (2, 5, 3)
    assert np.max(np.abs(expected - got)) <= 1e-5
