"""The rules: loading, the generated table, and the rules checked against the real frameworks."""

from __future__ import annotations

import importlib
import inspect
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from codemod import Config, migrate_source
from codemod.cli import main
from codemod.rules_table import README_END, README_START, markdown, text
from codemod.ruleset import RuleError, default_rules, load_rules, rules_dir

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_shows_the_generated_table() -> None:
    readme = README.read_text(encoding="utf-8")
    start = readme.index(README_START) + len(README_START) + 1
    end = readme.index(README_END)
    assert readme[start:end] == markdown(default_rules()), "run: torch2ms rules --format markdown"


def test_rules_command_prints_the_table() -> None:
    result = CliRunner().invoke(main, ["rules"])
    assert result.exit_code == 0
    assert result.output == text(default_rules())
    assert "torch.nn.BatchNorm2d -> mindspore.nn.BatchNorm2d" in result.output
    md = CliRunner().invoke(main, ["rules", "--format", "markdown"])
    assert md.output == markdown(default_rules())


def test_a_parameter_neither_mapped_nor_marked_is_rejected(tmp_path: Path) -> None:
    for f in rules_dir().glob("*.toml"):
        shutil.copy(f, tmp_path / f.name)
    path = tmp_path / "batchnorm.toml"
    path.write_text(path.read_text().replace('[layer.params.affine]\nto = "affine"\n', ""), encoding="utf-8")
    with pytest.raises(RuleError, match="affine is neither mapped nor marked unmappable"):
        load_rules(tmp_path)


def test_an_unknown_finding_code_is_rejected(tmp_path: Path) -> None:
    for f in rules_dir().glob("*.toml"):
        shutil.copy(f, tmp_path / f.name)
    path = tmp_path / "batchnorm.toml"
    path.write_text(path.read_text().replace('drop = "TM001"', 'drop = "XX999"', 1), encoding="utf-8")
    with pytest.raises(RuleError, match="XX999"):
        load_rules(tmp_path)


def test_target_version_outside_the_rules_range_is_left_unconverted() -> None:
    source = "import torch.nn as nn\nbn = nn.BatchNorm2d(3, momentum=0.1)\n"
    old = migrate_source(source, config=Config(mindspore_version="2.4"))
    assert "momentum=0.1" in old.code and "torch.nn" in old.code
    assert [f.code for f in old.findings] == ["TM009"]
    assert migrate_source(source, config=Config(mindspore_version="2.10.1")).code.count("momentum=0.9") == 1


# -- against the installed frameworks ------------------------------------------------------------


def _resolve(qual: str):
    module, _, name = qual.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _torch_parameters(frameworks, rule) -> list[str]:
    obj = _resolve(rule.torch)
    if rule.kind == "function" and not inspect.isfunction(obj):
        # A builtin ATen operator: read its schema.
        name = rule.torch.rsplit(".", 1)[1]
        schema = getattr(frameworks.torch.ops.aten, name).default._schema
        return [a.name for a in schema.arguments]
    target = obj.__init__ if rule.kind == "layer" else obj
    out = []
    for p in list(inspect.signature(target).parameters.values())[1 if rule.kind == "layer" else 0:]:
        if p.kind is inspect.Parameter.KEYWORD_ONLY and "*" not in out:
            out.append("*")
        out.append(p.name)
    return out


def _mindspore_parameters(rule) -> list[str]:
    obj = _resolve(rule.mindspore)
    target = obj.__init__ if rule.kind == "layer" else obj
    params = list(inspect.signature(target).parameters.values())
    return [p.name for p in params[1 if rule.kind == "layer" else 0:]]


RULES = sorted(default_rules().layers.values(), key=lambda r: r.torch)


@pytest.mark.parametrize("rule", RULES, ids=[r.torch for r in RULES])
def test_rule_matches_the_real_signatures(frameworks, rule) -> None:
    # Every torch parameter the rule names exists, in the same order (positions are converted by it),
    # and every torch parameter is mapped or marked unmappable (the loader enforces the latter).
    assert rule.torch_params == tuple(_torch_parameters(frameworks, rule))
    # The MindSpore signature is the one the rule emits against, positions included.
    ms_params = _mindspore_parameters(rule)
    assert list(rule.mindspore_params) == ms_params
    emitted = {s.to for s in rule.params.values() if s.to}
    assert emitted <= set(ms_params)


LAYER_RULES = [r for r in RULES if r.kind == "layer"]


# The arguments a layer is built with here, when its first parameter alone does not say it (they sit
# at the same positions in both signatures).
BUILD_ARGUMENTS = {"in_channels": [4, 4, 3], "in_features": [4, 4], "num_embeddings": [10, 4], "embed_dim": [8, 2],
                   "kernel_size": [2], "output_size": [2], "padding": [1], "upscale_factor": [2], "num_parameters": [3]}
BUILD_ARGUMENTS_OF = {"torch.nn.Unflatten": [1, (2, 2)], "torch.nn.ConstantPad2d": [1, 2.5]}
NO_ARGUMENTS = ("inplace", "args", "negative_slope", "alpha", "approximate", "p", "start_dim", "size", "dim")


def build_arguments(rule) -> list:
    first = rule.torch_params[0]
    if rule.torch in BUILD_ARGUMENTS_OF:
        return BUILD_ARGUMENTS_OF[rule.torch]
    if first in BUILD_ARGUMENTS:
        return BUILD_ARGUMENTS[first]
    if first in NO_ARGUMENTS:
        return []
    args = {"normalized_shape": (4,), "num_groups": 2}.get(first, 4)
    return [args] if first != "num_groups" else [2, 4]


@pytest.mark.parametrize("rule", LAYER_RULES, ids=[r.torch for r in LAYER_RULES])
def test_rule_attributes_exist_on_real_layers(frameworks, rule) -> None:
    torch_args = build_arguments(rule)
    torch_layer = _resolve(rule.torch)(*torch_args)
    ms_layer = _resolve(rule.mindspore)(*torch_args)
    for torch_attr, ms_path in rule.attributes.items():
        if torch_attr == "num_batches_tracked":
            continue
        if ms_path == "":
            continue  # no counterpart: reported, never renamed
        obj = ms_layer
        for part in ms_path.split("."):
            assert hasattr(obj, part), f"{rule.mindspore} has no {ms_path}"
            obj = getattr(obj, part)
        if getattr(torch_layer, torch_attr, None) is None and torch_attr in ("weight", "bias", "running_mean", "running_var"):
            continue  # e.g. InstanceNorm without affine: torch's attribute is None
        assert hasattr(torch_layer, torch_attr), f"{rule.torch} has no {torch_attr}"
    for torch_attr in [*rule.random_init, *rule.inserted_axes]:  # parameters the numeric check treats apart
        obj = torch_layer
        for part in torch_attr.split("."):
            assert hasattr(obj, part), f"{rule.torch} has no {torch_attr}"  # None where these arguments build none
            obj = getattr(obj, part)


def test_every_finding_code_is_used_somewhere() -> None:
    root = Path(__file__).resolve().parent.parent
    code_text = "".join(p.read_text(encoding="utf-8") for p in (root / "codemod").rglob("*.py"))
    rules_text = "".join(p.read_text(encoding="utf-8") for p in rules_dir().glob("*.toml") if p.name != "findings.toml")
    unused = [c for c in default_rules().findings if f'"{c}"' not in code_text + rules_text]
    assert unused == []


def _rules_copy(tmp_path: Path) -> Path:
    for f in rules_dir().glob("*.toml"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


@pytest.mark.parametrize("file,old,new,message", [
    ("batchnorm.toml", 'convert = "one_minus"', 'convert = "one_minsu"', "batchnorm.toml.*'one_minsu' is not one of"),
    ("layernorm.toml", 'convert = "shape_tuple"', 'convert = "shape_tupel"', "layernorm.toml.*'shape_tupel'"),
    ("batchnorm.toml", 'convert = "one_minus"', 'convert = "one_minus"\nconvrt = "float"', "unknown keys \\['convrt'\\]"),
    ("batchnorm.toml", 'torch = "torch.nn.BatchNorm2d"', 'torch = "torch.nn.BatchNorm2d"\nmindsproe = "x"',
     "BatchNorm2d: unknown keys \\['mindsproe'\\]"),
    ("batchnorm.toml", '[meta]', '[metta]\n[meta]', "batchnorm.toml: unknown keys \\['metta'\\]"),
    ("modules.toml", 'kind = "container"', 'kind = "contaner"', "modules.toml.*'contaner' is not one of"),
    ("functional.toml", 'kind = "function"', 'kind = "functon"', "functional.toml.*'functon' is not one of"),
    ("findings.toml", 'severity = "error"', 'severity = "error"\nseverty = "warning"', "findings.toml.*unknown keys"),
])
def test_rules_with_a_misspelling_are_refused_when_they_load(tmp_path, file, old, new, message) -> None:
    path = _rules_copy(tmp_path) / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(RuleError, match=message):
        load_rules(tmp_path)
