"""convert-ckpt's key planning: which keys belong to normalization layers, and their MindSpore names.

Pure (no framework): the source is read statically and the keys are the names torch gives a state
dict. test_ckpt.py runs the same plans through real torch and MindSpore models.
"""

from __future__ import annotations

import re
import textwrap

import pytest

from codemod import migrate_source
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


def test_a_source_without_module_classes_is_an_error():
    # Neither an nn.Module nor an nn.Cell: nothing the keys could belong to.
    plain = source_of("""
        import mindspore

        class Config:
            def __init__(self):
                self.bn = mindspore.Tensor([1.0])

        def build():
            return Config()
    """)
    with pytest.raises(PlanError, match=r"defines no module class \(a torch nn.Module or MindSpore nn.Cell subclass\)"):
        plan_from_source(bn_keys("bn"), plain)


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


# -- a migrated source (MindSpore) reads as its original ----------------------------------------------


def comparable(plan):
    """A plan's moves and errors, without the file positions the migration may shift."""
    return ([(m.key, m.new, m.layer, m.found_by, m.why) for m in plan.moves],
            [(k, re.sub(r"\(model\.py:\d+\)", "(model.py)", why)) for k, why in plan.mismatches],
            plan.warnings)


@pytest.mark.parametrize("keys", [
    ["stem.0.weight", "stem.0.bias", *bn_keys("stem.1"), *bn_keys("stem.2.0"), "block.conv.weight",
     "block.conv.bias", *bn_keys("block.bn")],
    ["stem.7.weight", "block.bn.scale", "head.weight", "block.bn.bn2d.gamma", *bn_keys("block.bn")],
], ids=["fitting keys", "keys that do not fit"])
def test_the_migrated_source_gives_the_plan_of_the_original(keys):
    migrated = migrate_source(textwrap.dedent(NESTED))
    assert "nn.Cell" in migrated.code and "BatchNorm3d" in migrated.code
    from_torch = plan_from_source(keys, source_of(NESTED))
    from_mindspore = plan_from_source(keys, source_of(migrated.code))
    assert from_torch.model_class.framework == "torch"
    assert from_mindspore.model_class.framework == "mindspore"
    assert comparable(from_mindspore) == comparable(from_torch)


def test_a_mindspore_source_in_its_own_spellings():
    # Written by hand for MindSpore: its import styles, SequentialCell of a list, CellList, CellDict,
    # a layer imported from the module that defines it, a Parameter, the torch names nowhere.
    source = source_of("""
        import mindspore as ms
        from mindspore import nn
        from mindspore.nn import CellList, SequentialCell
        from mindspore.nn.layer.normalization import BatchNorm3d

        class Block(ms.nn.Cell):
            def __init__(self, c):
                super().__init__()
                self.bn = BatchNorm3d(c)

            def construct(self, x):
                return self.bn(x)

        class Net(nn.Cell):
            def __init__(self):
                super().__init__()
                self.seq = SequentialCell([nn.Dense(4, 4), nn.BatchNorm1d(4)])
                self.blocks = CellList([Block(2) for _ in range(2)])
                self.heads = nn.CellDict({"ln": nn.LayerNorm((4,)), "gn": nn.GroupNorm(2, 4)})
                self.scale = ms.Parameter(ms.Tensor([1.0]))
    """)
    keys = ["seq.0.weight", "seq.0.bias", *bn_keys("seq.1"), *bn_keys("blocks.1.bn"), "heads.ln.weight",
            "heads.ln.bias", "heads.gn.weight", "heads.gn.bias", "scale"]
    plan = plan_from_source(keys, source)
    assert plan.model.startswith("Net ") and plan.model_class.framework == "mindspore"
    assert not plan.mismatches and not plan.warnings
    assert renames(plan) == {
        "seq.1.weight": "seq.1.gamma", "seq.1.bias": "seq.1.beta", "seq.1.running_mean": "seq.1.moving_mean",
        "seq.1.running_var": "seq.1.moving_variance", "seq.1.num_batches_tracked": None,
        "blocks.1.bn.weight": "blocks.1.bn.bn2d.gamma", "blocks.1.bn.bias": "blocks.1.bn.bn2d.beta",
        "blocks.1.bn.running_mean": "blocks.1.bn.bn2d.moving_mean",
        "blocks.1.bn.running_var": "blocks.1.bn.bn2d.moving_variance", "blocks.1.bn.num_batches_tracked": None,
        "heads.ln.weight": "heads.ln.gamma", "heads.ln.bias": "heads.ln.beta",
        "heads.gn.weight": "heads.gn.gamma", "heads.gn.bias": "heads.gn.beta",
    }
    assert [m.key for m in plan.unchanged] == ["seq.0.weight", "seq.0.bias", "scale"]
    # A torch key the MindSpore model has no place for is the same error as with the torch source.
    wrong = plan_from_source(["blocks.1.bn.bn2d.gamma", "seq.2.weight"], source, model="Net")
    assert dict(wrong.mismatches) == {"blocks.1.bn.bn2d.gamma": "blocks.1.bn is a BatchNorm3d, which has no member 'bn2d'",
                                      "seq.2.weight": "the container seq has no member '2'"}


def test_a_tree_part_way_through_its_migration():
    # A MindSpore block used by a model still in torch, and the other way round: each class reads
    # with its own framework's names.
    source = SourceModel(default_rules())
    source.add(textwrap.dedent("""
        from mindspore import nn

        class Block(nn.Cell):
            def __init__(self):
                super().__init__()
                self.bn = nn.BatchNorm3d(2)
    """), "block.py")
    source.add(textwrap.dedent("""
        import torch.nn as nn
        from block import Block

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.block = Block()
                self.norm = nn.GroupNorm(1, 2)
    """), "net.py")
    plan = plan_from_source([*bn_keys("block.bn"), "norm.weight"], source)
    assert plan.model.startswith("Net (net.py") and plan.model_class.framework == "torch"
    assert renames(plan)["block.bn.weight"] == "block.bn.bn2d.gamma"
    assert renames(plan)["norm.weight"] == "norm.gamma"


def test_insert_child_to_cell_is_read_and_its_names_flagged():
    # MindSpore does not prefix the parameters of a child inserted with insert_child_to_cell: the
    # keys are right, but a checkpoint cannot load into such a model by name.
    source = source_of("""
        from mindspore import nn

        class Net(nn.Cell):
            def __init__(self):
                super().__init__()
                for name in ("stem", "body"):
                    self.insert_child_to_cell(name, nn.SequentialCell([nn.BatchNorm2d(3)]))
    """)
    plan = plan_from_source([*bn_keys("stem.0"), *bn_keys("body.0")], source)
    assert renames(plan)["body.0.running_var"] == "body.0.moving_variance"
    assert [w.split(":")[0] for w in plan.warnings] == ["stem", "body"]
    assert "registered with insert_child_to_cell(); MindSpore (2.10) then names its parameters without the " \
           "'stem.' prefix" in plan.warnings[0]


# -- members registered under names computed at run time ---------------------------------------------


@pytest.mark.parametrize("register", [
    "self.__setattr__('level_%d' % i, nn.BatchNorm3d(2))",
    "setattr(self, f'level_{i}', nn.BatchNorm3d(2))",
    "self.add_module('level_' + str(i), nn.BatchNorm3d(2))",
    "self.add_module('level_{}'.format(i), module=nn.BatchNorm3d(2))",
    "super().__setattr__('level_%s' % (i,), nn.BatchNorm3d(2))",
    "name = f'level_{i}'; self.register_module(name, nn.BatchNorm3d(2))",
])
def test_a_member_under_a_computed_name_is_what_the_source_registers(register):
    source = source_of(f"""
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self, depth):
                super().__init__()
                self.bn = nn.BatchNorm2d(2)
                for i in range(depth):
                    {register}
    """)
    plan = plan_from_source([*bn_keys("bn"), *bn_keys("level_0"), *bn_keys("level_12")], source)
    assert not plan.mismatches and not plan.warnings
    # BatchNorm3d nests its MindSpore parameters: the keys say BatchNorm2d, the source says 3d.
    assert renames(plan)["level_12.weight"] == "level_12.bn2d.gamma"
    assert renames(plan)["bn.weight"] == "bn.gamma"
    assert {m.found_by for m in plan.moves if m.layer} == {"source"}
    assert plan.notes == [f"level_0, level_12: registered under names computed at run time, as "
                          f"{plan.notes[0].split(', as ')[1]}"]
    assert "line 9" in plan.notes[0]

    # A name the expression cannot produce is still a member the model does not have.
    wrong = plan_from_source(bn_keys("stage_1"), source, model="Net")
    assert [k for k, _ in wrong.mismatches] == bn_keys("stage_1")
    assert "has no member 'stage_1' (nor one " in wrong.mismatches[0][1]


def test_a_recursive_tree_is_followed_as_deep_as_the_keys_go():
    source = source_of("""
        import torch.nn as nn

        class Tree(nn.Module):
            def __init__(self, channels, depth):
                super().__init__()
                self.root = nn.LayerNorm(channels)
                for i in range(1, depth):
                    self.__setattr__('level_%d' % i, Tree(channels, depth - i))
    """)
    keys = ["root.weight", "level_1.root.bias", "level_1.level_2.level_1.root.weight"]
    plan = plan_from_source(keys, source)
    assert renames(plan) == {"root.weight": "root.gamma", "level_1.root.bias": "level_1.root.beta",
                             "level_1.level_2.level_1.root.weight": "level_1.level_2.level_1.root.gamma"}
    assert plan.notes[0].startswith("level_1, level_1.level_2, level_1.level_2.level_1: registered under names "
                                    "computed at run time, as 'level_%d' % i (line 9); read as Tree (model.py:4)")


@needs_rule("LayerNorm")
def test_computed_names_of_different_members_are_told_apart_by_their_literal_parts():
    source = source_of("""
        import torch
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self, n):
                super().__init__()
                for i in range(n):
                    setattr(self, f"bn{i}", nn.BatchNorm3d(2))
                    setattr(self, f"ln{i}", nn.LayerNorm(4))
                    self.register_buffer(f"scale{i}", torch.ones(1))
    """)
    plan = plan_from_source([*bn_keys("bn3"), "ln3.weight", "ln3.bias", "scale3"], source)
    assert not plan.mismatches
    assert renames(plan)["bn3.weight"] == "bn3.bn2d.gamma" and renames(plan)["ln3.weight"] == "ln3.gamma"
    assert [m.key for m in plan.unchanged] == ["scale3"]


@needs_rule("LayerNorm")
def test_keys_under_computed_names_the_source_does_not_show_fall_back_to_the_keys_with_a_warning():
    source = source_of("""
        import torch.nn as nn

        def make_part(c):
            layers = [nn.BatchNorm2d(c), nn.LayerNorm(c)]
            return nn.Sequential(*layers)

        class Net(nn.Module):
            def __init__(self, n, c):
                super().__init__()
                self.norm = nn.LayerNorm(c)
                for i in range(n):
                    setattr(self, "part%d" % i, make_part(c))
    """)
    keys = ["norm.weight", *bn_keys("part0.0"), "part0.1.weight", *bn_keys("part1.0"), "part1.1.weight"]
    plan = plan_from_source(keys, source)
    assert not plan.mismatches  # not the whole checkpoint refused
    assert renames(plan)["part1.0.running_mean"] == "part1.0.moving_mean"
    assert {m.key: m.found_by for m in plan.moves if m.layer} == {
        "norm.weight": "source", **{k: "keys" for k in [*bn_keys("part0.0"), *bn_keys("part1.0")]}}
    # The layer norms in there keep their torch names: the warning names where.
    assert [m.key for m in plan.unchanged] == ["part0.1.weight", "part1.1.weight"]
    assert plan.warnings == ["part0, part1: the source does not show what they hold (make_part(c)); batch norm "
                             "layers there are recognised by their running_mean key, other normalization layers "
                             "are not"]


def test_a_name_that_could_be_any_name_is_no_sign_the_keys_belong_to_its_class():
    # Stages takes any member name; Parts only part<N>: Parts's keys are Parts's, though Stages
    # shows what its members are and Parts does not.
    source = source_of("""
        import torch.nn as nn

        class Stages(nn.Module):
            def __init__(self, names):
                super().__init__()
                for name in names:
                    self.add_module(name, nn.Sequential(nn.BatchNorm2d(2)))

        class Parts(nn.Module):
            def __init__(self, parts):
                super().__init__()
                for i, part in enumerate(parts):
                    setattr(self, f"part{i}", part)
    """)
    assert plan_from_source(bn_keys("part0.0"), source).model.startswith("Parts ")
    assert plan_from_source(bn_keys("stem.0"), source).model.startswith("Stages ")


def test_names_from_a_star_import_of_mindspore_nn():
    source = source_of("""
        from mindspore.nn import *

        class Net(Cell):
            def __init__(self):
                super().__init__()
                self.bn = BatchNorm3d(2)
    """)
    plan = plan_from_source(bn_keys("bn"), source)
    assert plan.model_class.framework == "mindspore"
    assert renames(plan)["bn.running_mean"] == "bn.bn2d.moving_mean"


def test_a_container_built_differently_on_different_paths_holds_what_any_path_puts_there():
    # ResNet's shortcut: empty, or a projection; a key can only name the projection's members.
    source = source_of("""
        from torch import nn

        class Block(nn.Module):
            def __init__(self, c_in, c_out, stride=1):
                super().__init__()
                self.shortcut = nn.Sequential()
                if stride != 1 or c_in != c_out:
                    self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride), nn.BatchNorm2d(c_out))
                if stride == 1:
                    self.mixed = nn.Sequential(nn.BatchNorm2d(c_out))
                else:
                    self.mixed = nn.Sequential(nn.BatchNorm3d(c_out))
    """)
    plan = plan_from_source(["shortcut.0.weight", *bn_keys("shortcut.1")], source)
    assert not plan.warnings and not plan.mismatches
    assert renames(plan)["shortcut.1.running_var"] == "shortcut.1.moving_variance"
    assert [m.key for m in plan.moves if m.found_by == "source"] == bn_keys("shortcut.1")
    # Where the paths put layers whose names differ in one place, that place is as open as a single layer.
    mixed = plan_from_source(bn_keys("mixed.0"), source)
    assert {why for _, why in mixed.mismatches} == {
        "mixed.0: it may be BatchNorm2d or BatchNorm3d, whose MindSpore names differ, and the source does not say which"}
