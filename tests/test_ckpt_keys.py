"""convert-ckpt's key planning: which keys belong to normalization layers, and their MindSpore names.

Pure (no framework): the source is read statically and the keys are the names torch gives a state
dict. test_ckpt.py runs the same plans through real torch and MindSpore models.
"""

from __future__ import annotations

import textwrap

import pytest

from codemod.ckpt.keys import PlanError, plan_from_keys, plan_from_source
from codemod.ckpt.structure import SourceModel
from codemod.ruleset import default_rules


def source_of(text: str, path: str = "model.py") -> SourceModel:
    model = SourceModel(default_rules())
    model.add(textwrap.dedent(text), path)
    return model


def bn_keys(prefix: str) -> list[str]:
    """The keys torch gives a BatchNorm layer at ``prefix``."""
    return [f"{prefix}.{name}" for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]


def renames(plan) -> dict[str, str | None]:
    return {m.key: m.new for m in plan.moves if m.new != m.key}


def needs_rule(name: str):
    return pytest.mark.skipif(f"torch.nn.{name}" not in default_rules().layers,
                              reason=f"no {name} rule yet (issue 5)")


NESTED = """
    import torch.nn as nn

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv3d(c, c, 1)
            self.bn = nn.BatchNorm3d(c)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Sequential(nn.BatchNorm1d(8)))
            self.block = Block(8)
"""


def test_nested_submodules_sequential_indices_and_batchnorm3d_nesting():
    keys = ["stem.0.weight", "stem.0.bias", *bn_keys("stem.1"), *bn_keys("stem.2.0"),
            "block.conv.weight", "block.conv.bias", *bn_keys("block.bn")]
    plan = plan_from_source(keys, source_of(NESTED))
    assert plan.model.startswith("Net ")
    assert not plan.mismatches
    assert renames(plan) == {
        "stem.1.weight": "stem.1.gamma", "stem.1.bias": "stem.1.beta",
        "stem.1.running_mean": "stem.1.moving_mean", "stem.1.running_var": "stem.1.moving_variance",
        "stem.1.num_batches_tracked": None,
        "stem.2.0.weight": "stem.2.0.gamma", "stem.2.0.bias": "stem.2.0.beta",
        "stem.2.0.running_mean": "stem.2.0.moving_mean", "stem.2.0.running_var": "stem.2.0.moving_variance",
        "stem.2.0.num_batches_tracked": None,
        # MindSpore's BatchNorm3d wraps a BatchNorm2d.
        "block.bn.weight": "block.bn.bn2d.gamma", "block.bn.bias": "block.bn.bn2d.beta",
        "block.bn.running_mean": "block.bn.bn2d.moving_mean",
        "block.bn.running_var": "block.bn.bn2d.moving_variance",
        "block.bn.num_batches_tracked": None,
    }
    assert [m.key for m in plan.unchanged] == ["stem.0.weight", "stem.0.bias", "block.conv.weight", "block.conv.bias"]
    assert {m.layer for m in plan.moves if m.key.startswith("block.bn")} == {"BatchNorm3d"}
    assert all(m.found_by == "source" for m in plan.moves if m.layer)


def test_containers_by_comprehension_ordered_dict_module_dict_and_subclass():
    source = source_of("""
        from collections import OrderedDict
        from torch import nn

        class ConvBN(nn.Sequential):
            def __init__(self, c):
                super().__init__(nn.Conv2d(c, c, 1), nn.BatchNorm2d(c))

        class Net(nn.Module):
            def __init__(self, c=4, depth=3):
                super().__init__()
                self.layers = nn.ModuleList([nn.BatchNorm2d(c) for _ in range(depth)])
                self.named = nn.Sequential(OrderedDict([("conv", nn.Conv2d(c, c, 1)), ("norm", nn.BatchNorm2d(c))]))
                self.heads = nn.ModuleDict({"left": nn.BatchNorm1d(c), "right": nn.Linear(c, 2)})
                self.convbn = ConvBN(c)
    """)
    keys = [*bn_keys("layers.0"), *bn_keys("layers.2"), "named.conv.weight", *bn_keys("named.norm"),
            *bn_keys("heads.left"), "heads.right.weight", "convbn.0.weight", *bn_keys("convbn.1")]
    plan = plan_from_source(keys, source)
    assert not plan.mismatches and not plan.warnings
    renamed = renames(plan)
    for layer in ("layers.0", "layers.2", "named.norm", "heads.left", "convbn.1"):
        assert renamed[f"{layer}.weight"] == f"{layer}.gamma"
        assert renamed[f"{layer}.running_var"] == f"{layer}.moving_variance"
        assert renamed[f"{layer}.num_batches_tracked"] is None
    assert {m.key for m in plan.unchanged} == {"named.conv.weight", "heads.right.weight", "convbn.0.weight"}


def test_a_container_filled_after_assignment_is_followed_and_flagged():
    source = source_of("""
        from torch import nn

        class Net(nn.Module):
            def __init__(self, c=4):
                super().__init__()
                self.norms = nn.ModuleList()
                for _ in range(3):
                    self.norms.append(nn.BatchNorm2d(c))
    """)
    plan = plan_from_source(bn_keys("norms.2"), source)
    assert renames(plan)["norms.2.weight"] == "norms.2.gamma"
    # MindSpore 2.10 names such parameters '0.gamma': the user must hear that the keys will not load.
    assert any(w.startswith("norms: modules are added to this container after it is assigned") for w in plan.warnings)


@needs_rule("LayerNorm")
@needs_rule("GroupNorm")
def test_layer_and_group_norm_are_found_by_the_source():
    source = source_of("""
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Sequential(nn.GroupNorm(2, 4), nn.Linear(4, 4))
                self.ln = nn.LayerNorm(4)
    """)
    keys = ["body.0.weight", "body.0.bias", "body.1.weight", "body.1.bias", "ln.weight", "ln.bias"]
    plan = plan_from_source(keys, source)
    assert renames(plan) == {"body.0.weight": "body.0.gamma", "body.0.bias": "body.0.beta",
                             "ln.weight": "ln.gamma", "ln.bias": "ln.beta"}
    assert {m.key: m.layer for m in plan.moves if m.layer} == {
        "body.0.weight": "GroupNorm", "body.0.bias": "GroupNorm", "ln.weight": "LayerNorm", "ln.bias": "LayerNorm"}


def test_a_child_the_source_does_not_show_falls_back_to_the_keys_with_a_warning():
    source = source_of("""
        import torch.nn as nn

        def make_layers(c):
            layers = []
            for _ in range(2):
                layers += [nn.Conv2d(c, c, 3), nn.BatchNorm2d(c)]
            return nn.Sequential(*layers)

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = make_layers(8)
    """)
    keys = ["features.0.weight", *bn_keys("features.1"), "features.2.weight", *bn_keys("features.3")]
    plan = plan_from_source(keys, source)
    assert not plan.mismatches
    assert renames(plan)["features.3.running_mean"] == "features.3.moving_mean"
    assert {m.found_by for m in plan.moves if m.layer} == {"keys"}
    assert any(w.startswith("features: the source does not show what it holds (make_layers(8))")
               for w in plan.warnings)


def test_a_layer_that_may_be_batchnorm2d_or_3d_is_an_error_not_a_guess():
    source = source_of("""
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self, volumetric=False):
                super().__init__()
                self.bn = nn.BatchNorm3d(4) if volumetric else nn.BatchNorm2d(4)
    """)
    plan = plan_from_source(bn_keys("bn"), source)
    assert [k for k, _ in plan.mismatches] == bn_keys("bn")
    assert "may be BatchNorm2d or BatchNorm3d" in plan.mismatches[0][1]


@needs_rule("GroupNorm")
def test_the_keys_tell_apart_layers_the_source_leaves_open():
    source = source_of("""
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self, groups=0):
                super().__init__()
                self.norm = nn.GroupNorm(groups, 4) if groups else nn.BatchNorm2d(4)
    """)
    with_stats = plan_from_source(bn_keys("norm"), source)
    assert renames(with_stats)["norm.running_mean"] == "norm.moving_mean"
    affine_only = plan_from_source(["norm.weight", "norm.bias"], source)
    # GroupNorm and BatchNorm2d name weight/bias alike: no need to know which it is.
    assert renames(affine_only) == {"norm.weight": "norm.gamma", "norm.bias": "norm.beta"}
    assert not affine_only.mismatches


def test_keys_that_do_not_fit_the_model_say_why():
    plan = plan_from_source(["stem.7.weight", "block.bn.scale", "head.weight", "block.bn.bn2d.gamma"],
                            source_of(NESTED))
    why = dict(plan.mismatches)
    assert set(why) == {"stem.7.weight", "block.bn.scale", "head.weight", "block.bn.bn2d.gamma"}
    assert "the container stem has no member '7'" in why["stem.7.weight"]
    assert "BatchNorm3d, which has no parameter or buffer 'scale'" in why["block.bn.scale"]
    assert "Net (model.py:" in why["head.weight"] and "no member 'head'" in why["head.weight"]
    assert "BatchNorm3d, which has no member 'bn2d'" in why["block.bn.bn2d.gamma"]  # already converted?


def test_registered_tensors_carry_over():
    source = source_of("""
        import torch
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.scale = nn.Parameter(torch.ones(1))
                self.register_buffer("mask", torch.ones(3))
                self.bn = nn.BatchNorm1d(3)
    """)
    plan = plan_from_source(["scale", "mask", *bn_keys("bn")], source)
    assert not plan.mismatches
    assert [m.key for m in plan.unchanged] == ["scale", "mask"]


def test_the_model_class_is_the_one_the_keys_fit():
    keys = ["block.conv.weight", *bn_keys("block.bn")]
    assert plan_from_source(keys, source_of(NESTED)).model.startswith("Net ")
    inner = plan_from_source(["conv.weight", *bn_keys("bn")], source_of(NESTED))
    assert inner.model.startswith("Block ")
    assert renames(inner)["bn.weight"] == "bn.bn2d.gamma"
    chosen = plan_from_source(["conv.weight", *bn_keys("bn")], source_of(NESTED), model="Block")
    assert chosen.model.startswith("Block ")
    with pytest.raises(PlanError, match="no module class 'Resnet'.*Block, Net"):
        plan_from_source(keys, source_of(NESTED), model="Resnet")


def test_two_classes_that_fit_but_name_keys_differently_need_model():
    source = source_of("""
        import torch.nn as nn

        class Flat(nn.Module):
            def __init__(self):
                super().__init__()
                self.bn = nn.BatchNorm2d(3)

        class Volume(nn.Module):
            def __init__(self):
                super().__init__()
                self.bn = nn.BatchNorm3d(3)
    """)
    with pytest.raises(PlanError, match=r"fit several model classes equally well \(Flat, Volume\): pass --model"):
        plan_from_source(bn_keys("bn"), source)
    assert renames(plan_from_source(bn_keys("bn"), source, model="Volume"))["bn.weight"] == "bn.bn2d.gamma"


def test_a_source_without_torch_modules_is_an_error():
    migrated = source_of("""
        import mindspore.nn as nn

        class Net(nn.Cell):
            def __init__(self):
                super().__init__()
                self.bn = nn.BatchNorm2d(3)
    """)
    with pytest.raises(PlanError, match="defines no torch module class"):
        plan_from_source(bn_keys("bn"), migrated)


def test_a_directory_source_follows_classes_across_files(tmp_path):
    (tmp_path / "blocks.py").write_text(textwrap.dedent("""
        from torch import nn

        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.bn = nn.BatchNorm3d(2)
    """))
    (tmp_path / "net.py").write_text(textwrap.dedent("""
        from torch import nn
        from .blocks import Block

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.block = Block()
    """))
    (tmp_path / "broken.py").write_text("def (:\n")
    source = SourceModel.read(tmp_path, default_rules())
    plan = plan_from_source(bn_keys("block.bn"), source)
    assert plan.model.startswith("Net ")
    assert renames(plan)["block.bn.weight"] == "block.bn.bn2d.gamma"
    assert any(w.startswith("not analysed:") and "broken.py" in w for w in plan.warnings)


def test_without_a_source_running_mean_marks_batch_norm_and_the_blind_spots_are_named():
    keys = ["conv.weight", *bn_keys("bn"), "ln.weight", "ln.bias"]
    plan = plan_from_keys(keys, default_rules())
    assert renames(plan) == {"bn.weight": "bn.gamma", "bn.bias": "bn.beta", "bn.running_mean": "bn.moving_mean",
                             "bn.running_var": "bn.moving_variance", "bn.num_batches_tracked": None}
    assert {m.key for m in plan.unchanged} == {"conv.weight", "ln.weight", "ln.bias"}
    assert all(m.found_by == "keys" for m in plan.moves if m.layer)
    notes = "\n".join(plan.notes)
    assert "no --source" in notes and "running_mean" in notes
    assert "BatchNorm3d (as bn2d.)" in notes
    assert "LayerNorm" in notes and "GroupNorm" in notes and "copied unchanged" in notes
