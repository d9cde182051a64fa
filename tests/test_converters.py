"""Each named converter on its own: a value (as written) in, what becomes of it out, as data. The
numeric tests prove the conversions under the real frameworks; these pin what each one decides."""

from __future__ import annotations

import ast

import pytest

from codemod.converters import CONVERTERS, Action, Arg
from codemod.ruleset import default_rules

RULES = default_rules()


def convert(name: str, value: str | None, *, param: str = "momentum", layer: str = "torch.nn.BatchNorm2d",
            bound: dict[str, str] | None = None, lines: tuple[str, ...] = ()):
    rule = RULES.layers[layer]
    node = ast.parse(value, mode="eval").body if value is not None else None
    reference = value if value is not None and value.startswith("torch.") else None
    bound_nodes = {k: ast.parse(v, mode="eval").body for k, v in (bound or {}).items()}
    arg = Arg(node, value or "", rule.params[param], rule, RULES.dtypes,
              {code: f.title for code, f in RULES.findings.items()}, reference, bound_nodes, lines,
              segment=lambda n: ast.unparse(n) if n is not node else value)
    return CONVERTERS[name](arg)


@pytest.mark.parametrize("value,expected", [
    ("0.1", "0.9"), ("0.01", "0.99"), ("-0.1", "1.1"), ("1e-2", "0.99"), ("1", "0.0"),
    ("0.30000000000000004", "0.69999999999999996"),
    ("m", "1 - {value}"), ("cfg.m", "1 - {value}"), ("f(m)", "1 - {value}"),
    ("base - 0.05", "1 - ({value})"), ("base * 2", "1 - {value}"), ("-m", "1 - {value}"), ("a or b", "1 - ({value})"), ("0.1 if x else 0.2", "1 - ({value})"),
])
def test_momentum_becomes_one_minus_it(value, expected) -> None:
    conversion = convert("one_minus", value)
    assert (conversion.action, conversion.value) == (Action.REPLACE, expected)


def test_momentum_none_is_refused() -> None:
    conversion = convert("one_minus", "None")
    assert (conversion.action, conversion.code) == (Action.FAIL, "BN003")


@pytest.mark.parametrize("value,action,expected", [
    ("True", Action.OMIT, None), ("False", Action.REPLACE, "True"), ("None", Action.REPLACE, "True"),
    ("flag", Action.REPLACE, "None if {value} else True"), ("not flag", Action.REPLACE, "None if {value} else True"),
    ("a or b", Action.REPLACE, "None if {value} else True"),
    ("a if b else c", Action.REPLACE, "None if ({value}) else True"),
    ("lambda: x", Action.REPLACE, "None if ({value}) else True"),
])
def test_track_running_stats_is_inverted(value, action, expected) -> None:
    conversion = convert("track_running_stats", value, param="track_running_stats")
    assert (conversion.action, conversion.value) == (action, expected)


@pytest.mark.parametrize("value,action,expected", [
    ("1", Action.REPLACE, "1.0"), ("-2", Action.REPLACE, "-2.0"), ("1e-3", Action.KEEP, None),
    ("eps", Action.KEEP, None),
])
def test_an_int_eps_becomes_a_float(value, action, expected) -> None:
    conversion = convert("float", value, param="eps")
    assert (conversion.action, conversion.value) == (action, expected)


def test_a_torch_dtype_becomes_its_mindspore_name() -> None:
    conversion = convert("dtype", "torch.float32", param="dtype")
    assert (conversion.action, conversion.reference, conversion.warnings) == (Action.KEEP, "mindspore.float32", ())


def test_a_float16_batch_norm_keeps_its_dtype_with_a_warning() -> None:
    conversion = convert("dtype", "torch.float16", param="dtype")
    assert conversion.reference == "mindspore.float16"
    assert [code for code, _ in conversion.warnings] == ["BN004"]


def test_dtype_none_is_omitted_and_a_variable_passed_through_with_a_warning() -> None:
    assert convert("dtype", "None", param="dtype").action is Action.OMIT
    passed = convert("dtype", "dt", param="dtype")
    assert (passed.action, passed.reference) == (Action.KEEP, None)
    assert [code for code, _ in passed.warnings] == ["TM004"]


@pytest.mark.parametrize("value,action,code", [
    ("None", Action.FAIL, "FB001"), ("rm if x else None", Action.FAIL, "FB001"), ("rm or None", Action.FAIL, "FB001"),
    ("rm", Action.KEEP, None), ("self.running_mean", Action.KEEP, None),
])
def test_functional_batch_norm_needs_tensor_statistics(value, action, code) -> None:
    conversion = convert("required_tensor", value, param="running_mean", layer="torch.nn.functional.batch_norm")
    assert (conversion.action, conversion.code) == (action, code)


def test_missing_weight_is_derived_from_running_mean_and_spelled_through_the_imports() -> None:
    conversion = convert("ones_like_running_mean", None, param="weight", layer="torch.nn.functional.batch_norm",
                         bound={"running_mean": "self.rm"})
    assert conversion.action is Action.DERIVE
    assert conversion.value == "{name:f}({arg:running_mean})"
    assert conversion.names == (("name:f", "mindspore.ops.ones_like"),)
    assert [code for code, _ in conversion.warnings] == ["FB003"]
    assert convert("ones_like_running_mean", "w", param="weight", layer="torch.nn.functional.batch_norm").action \
        is Action.KEEP


def test_missing_weight_is_refused_when_running_mean_is_not_a_plain_reference() -> None:
    conversion = convert("zeros_like_running_mean", "None", param="bias", layer="torch.nn.functional.batch_norm",
                         bound={"running_mean": "make_stats()"})
    assert (conversion.action, conversion.code) == (Action.FAIL, "FB002")


def test_layer_norm_shapes() -> None:
    layer = "torch.nn.LayerNorm"
    assert convert("shape_tuple", "8", param="normalized_shape", layer=layer).value == "({value},)"
    assert convert("shape_tuple", "(8,)", param="normalized_shape", layer=layer).action is Action.KEEP
    refused = convert("shape_tuple", "(4, 8)", param="normalized_shape", layer=layer)
    assert (refused.action, refused.code) == (Action.FAIL, "LN002")
    hinted = convert("shape_tuple", "(4, 8)", param="normalized_shape", layer=layer,
                     lines=("ln = nn.LayerNorm((4, 8))  # torch2ms: input-rank=4",))
    assert (hinted.action, hinted.adds) == (Action.KEEP, (("begin_norm_axis", "2"), ("begin_params_axis", "2")))
    assumed = convert("shape_tuple", "dim", param="normalized_shape", layer=layer)
    assert (assumed.value, [c for c, _ in assumed.warnings]) == ("({value},)", ["LN001"])


def test_every_converter_is_tested_here() -> None:
    tested = {"identity", "one_minus", "track_running_stats", "float", "dtype", "required_tensor",
              "ones_like_running_mean", "zeros_like_running_mean", "shape_tuple"}
    assert set(CONVERTERS) == tested
    assert convert("identity", "x").action is Action.KEEP
