"""The rules: loading, the generated table, and the rules checked against the real frameworks."""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from codemod import Config, migrate_source
from codemod.cli import main
from codemod.rules_table import README_END, README_START, markdown, text
from codemod.ruleset import RuleError, default_rules, load_rules, rules_dir, template_holes

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
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError:  # torch.Tensor.size, mindspore.Tensor.view: an attribute of a class
        owner, _, cls = module.rpartition(".")
        return getattr(getattr(importlib.import_module(owner), cls), name)


def _listed(params: list[inspect.Parameter]) -> list[str]:
    """Parameters as the rules list them: ``*`` before keyword-only ones, ``*name`` for *args."""
    out = []
    for p in params:
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            out.append(f"*{p.name}")
        elif p.kind is inspect.Parameter.VAR_KEYWORD:
            continue
        else:
            if p.kind is inspect.Parameter.KEYWORD_ONLY and not any(q.startswith("*") for q in out):
                out.append("*")
            out.append(p.name)
    return out


def _signature(obj, skip_self: bool) -> list[str] | None:
    """The parameters ``inspect`` reads off a Python callable (None for a builtin, or a wrapper that
    only says ``*args, **kwargs``)."""
    try:
        params = list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):
        return None
    if params and params[0].kind is inspect.Parameter.VAR_POSITIONAL and params[-1].kind is inspect.Parameter.VAR_KEYWORD:
        return None
    return _listed(params[1 if skip_self else 0:])


def _def_parameters(fn: ast.FunctionDef, skip_self: bool) -> list[str]:
    a = fn.args
    plain = [p.arg for p in a.posonlyargs + a.args][1 if skip_self else 0:]
    star = [f"*{a.vararg.arg}"] if a.vararg else ["*"] if a.kwonlyargs else []
    return plain + star + [p.arg for p in a.kwonlyargs]


@functools.lru_cache(maxsize=None)
def _stubs(stub: str, cls: str | None) -> dict[str, list[list[str]]]:
    """torch's type stubs: the overloads of its builtins (torch.cat, torch._C._nn.gelu, Tensor.view),
    the Python signatures its argument parser takes."""
    import torch

    tree = ast.parse((Path(torch.__file__).parent / "_C" / stub).read_text(encoding="utf-8"))
    body = tree.body
    if cls is not None:
        body = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls).body
    out: dict[str, list[list[str]]] = {}
    for node in body:
        if isinstance(node, ast.FunctionDef):
            out.setdefault(node.name, []).append(_def_parameters(node, cls is not None))
    return out


def _torch_signatures(frameworks, rule) -> tuple[list[list[str]], bool]:
    """What torch takes: the signature of a Python callable (exact: True), or the stubs' overloads
    of a builtin (False: a stub does not always mark keyword-only parameters)."""
    obj = _resolve(rule.torch)
    if rule.kind == "layer":
        return [_signature(obj.__init__, skip_self=True)], True
    if rule.kind == "function" and obj in frameworks.torch._jit_internal.boolean_dispatched:
        obj = frameworks.torch._jit_internal.boolean_dispatched[obj]["if_false"]  # F.max_pool2d & co
    found = _signature(obj, skip_self=rule.kind == "method")
    if found is not None:
        return [found], True
    if rule.kind == "method":
        return _stubs("__init__.pyi", "TensorBase")[rule.torch_name], False
    stub = "_nn.pyi" if getattr(obj, "__module__", "") == "torch._C._nn" else "_VariableFunctions.pyi"
    return _stubs(stub, None)[rule.torch_name], False


def _names(params) -> list[str]:
    return [p.lstrip("*") for p in params if p != "*"]


def _positional_count(params) -> int:
    return next((i for i, p in enumerate(params) if p.startswith("*")), len(params))


def _mindspore_signature(rule) -> list[str] | None:
    """What MindSpore takes: inspect's reading, else the signature the first docstring line gives
    (MindSpore's Tensor methods are builtins)."""
    obj = _resolve(rule.mindspore)
    found = _signature(obj.__init__ if rule.kind == "layer" else obj, skip_self=rule.kind != "function")
    if found is not None:
        return found
    head = (obj.__doc__ or "").strip().splitlines()[0]
    fn = ast.parse(f"def {head[: head.rindex(')') + 1]}: pass").body[0]
    return _def_parameters(fn, skip_self=False)


def _rewrite_names(rule) -> list[str]:
    return [spec for text in rule.rewrite for field, spec in template_holes(text) if field == "name"]


RULES = sorted(default_rules().layers.values(), key=lambda r: r.torch)
METHODS = sorted(default_rules().methods.values(), key=lambda r: r.torch)
CONVERTING = [r for r in RULES + METHODS if not r.unmappable]


@pytest.mark.parametrize("rule", CONVERTING, ids=[r.torch for r in CONVERTING])
def test_rule_matches_the_real_signatures(frameworks, rule) -> None:
    # Every torch parameter the rule names exists, in the same order (positions are converted by it),
    # and every torch parameter is mapped or marked unmappable (the loader enforces the latter). A
    # Python callable has one signature; a builtin's overloads come from torch's stubs, one of which the
    # rule must list whole (taking no more arguments by position than it).
    signatures, exact = _torch_signatures(frameworks, rule)
    if exact:
        assert list(rule.torch_params) == signatures[0]
    else:
        assert any(_names(rule.torch_params) == _names(s) and _positional_count(rule.torch_params) <= _positional_count(s)
                   for s in signatures), signatures
    # The MindSpore signature is the one the rule emits against, positions included; a builtin
    # Tensor method documents one signature: its positions must be the rule's (the keywords the rule
    # spells are run by the numeric cases).
    for name in _rewrite_names(rule):
        assert _resolve(name) is not None
    if rule.mindspore and not (rule.rewrite and rule.kind == "function"):
        ms_params = _mindspore_signature(rule)
        if rule.kind == "method" and _signature(_resolve(rule.mindspore), skip_self=True) is None:
            assert _positional_count(rule.mindspore_params) == _positional_count(ms_params), ms_params
            assert [p.startswith("*") for p in rule.mindspore_params] == [p.startswith("*") for p in ms_params]
        else:
            assert list(rule.mindspore_params) == ms_params
    emitted = {s.to for s in rule.params.values() if s.to}
    assert emitted <= set(_names(rule.mindspore_params))


UNMAPPABLE = [r for r in METHODS if r.unmappable]


@pytest.mark.parametrize("rule", UNMAPPABLE, ids=[r.torch for r in UNMAPPABLE])
def test_torch_only_methods_are_torch_only(frameworks, rule) -> None:
    assert hasattr(frameworks.torch.Tensor, rule.torch_name)
    assert not hasattr(frameworks.mindspore.Tensor, rule.torch_name)


LAYER_RULES = [r for r in RULES if r.kind == "layer"]


# The arguments a layer is built with here, when its first parameter alone does not say it (they sit
# at the same positions in both signatures).
BUILD_ARGUMENTS = {"in_channels": [4, 4, 3], "in_features": [4, 4], "num_embeddings": [10, 4], "embed_dim": [8, 2],
                   "kernel_size": [2], "output_size": [2], "padding": [1], "upscale_factor": [2], "num_parameters": [3]}
BUILD_ARGUMENTS_OF = {"torch.nn.Unflatten": [1, (2, 2)], "torch.nn.ConstantPad2d": [1, 2.5]}
NO_ARGUMENTS = ("inplace", "args", "*args", "negative_slope", "alpha", "approximate", "p", "start_dim", "size", "dim")


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
        obj = torch_layer
        for part in torch_attr.split("."):  # out_proj.weight: a parameter of the layer's own submodule
            assert hasattr(obj, part), f"{rule.torch} has no {torch_attr}"
            obj = getattr(obj, part)
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
