"""Each named converter on its own: a value (as written) in, what becomes of it out, as data. The
numeric tests prove the conversions under the real frameworks; these pin what each one decides."""

from __future__ import annotations

import ast

import pytest

from codemod.converters import CONVERTERS, Action, Arg, Conversion
from codemod.ruleset import default_rules

RULES = default_rules()


def convert(name: str, value: str | None, *, param: str = "momentum", layer: str = "torch.nn.BatchNorm2d",
            bound: dict[str, str] | None = None, lines: tuple[str, ...] = (), target: str | None = None,
            positional: bool = True):
    rule = RULES.layers.get(layer) or RULES.methods[layer.rsplit(".", 1)[1]]
    node = ast.parse(value, mode="eval").body if value is not None else None
    reference = value if value is not None and value.startswith("torch.") else None
    bound_nodes = {k: ast.parse(v, mode="eval").body for k, v in (bound or {}).items()}
    arg = Arg(node, value or "", rule.params[param], rule, RULES.dtypes,
              {code: f.title for code, f in RULES.findings.items()}, reference, bound_nodes, lines,
              segment=lambda n: ast.unparse(n) if n is not node else value, target=target, positional=positional)
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


# -- functions and tensor methods -------------------------------------------------------------------


@pytest.mark.parametrize("value,action", [("None", Action.OMIT), ("3", Action.KEEP), ("k", Action.KEEP)])
def test_divisor_override_none_is_mindspores_default(value, action) -> None:
    assert convert("omit_none", value, param="divisor_override",
                   layer="torch.nn.functional.avg_pool2d").action is action


@pytest.mark.parametrize("value,action", [(None, Action.FAIL), ("None", Action.FAIL), ("1", Action.KEEP),
                                          ("-1", Action.KEEP), ("dim", Action.KEEP)])
def test_softmax_without_dim_is_refused(value, action) -> None:
    conversion = convert("implicit_dim", value, param="dim", layer="torch.nn.functional.softmax")
    assert conversion.action is action
    assert conversion.code == ("FN002" if action is Action.FAIL else None)


@pytest.mark.parametrize("value,kernel,action", [
    (None, "4", Action.DERIVE), ("None", "(3, 2)", Action.DERIVE), (None, "k", Action.DERIVE),
    (None, "self.k", Action.DERIVE), ("2", "make_k()", Action.KEEP), (None, "make_k()", Action.FAIL),
])
def test_pooling_stride_defaults_to_the_kernel(value, kernel, action) -> None:
    conversion = convert("stride_from_kernel", value, param="stride", layer="torch.nn.functional.avg_pool2d",
                         bound={"kernel_size": kernel})
    assert conversion.action is action
    if action is Action.DERIVE:
        assert conversion.value == "{arg:kernel_size}"
    if action is Action.FAIL:
        assert conversion.code == "FN005"


@pytest.mark.parametrize("value,target,action", [
    ("False", None, Action.OMIT), ("True", "x", Action.OMIT), ("True", "y", Action.FAIL), ("True", None, Action.FAIL),
    ("flag", "x", Action.OMIT), ("flag", None, Action.FAIL),
])
def test_inplace_is_dropped_only_where_the_result_replaces_the_input(value, target, action) -> None:
    conversion = convert("inplace", value, param="inplace", layer="torch.nn.functional.relu",
                         bound={"input": "x"}, target=target)
    assert conversion.action is action
    assert conversion.code == ("FN003" if action is Action.FAIL else None)
    assert [c for c, _ in conversion.warnings] == (["TM010"] if action is Action.OMIT and value != "False" else [])


@pytest.mark.parametrize("value,action", [("'nearest'", Action.KEEP), ("'bilinear'", Action.KEEP),
                                          ("'area'", Action.KEEP), ("'bicubic'", Action.FAIL), ("mode", Action.FAIL)])
def test_interpolate_modes(value, action) -> None:
    assert convert("interpolate_mode", value, param="mode", layer="torch.nn.functional.interpolate").action is action


@pytest.mark.parametrize("value,bound,action,expected", [
    ("2", {}, Action.REPLACE, "2.0"), ("2.0", {}, Action.REPLACE, "2.0"), ("(2, 3)", {}, Action.REPLACE, "(2.0, 3.0)"),
    ("[2]", {}, Action.REPLACE, "(2.0,)"), ("None", {}, Action.KEEP, None),
    ("1.5", {}, Action.FAIL, None), ("s", {}, Action.FAIL, None),
    ("1.5", {"mode": "'bilinear'", "align_corners": "True"}, Action.REPLACE, "1.5"),
    ("1.5", {"mode": "'bilinear'", "align_corners": "False"}, Action.FAIL, None),
    ("1.5", {"recompute_scale_factor": "True"}, Action.REPLACE, "1.5"),
])
def test_interpolate_scale_factors(value, bound, action, expected) -> None:
    conversion = convert("interpolate_scale", value, param="scale_factor", layer="torch.nn.functional.interpolate",
                         bound=bound)
    assert (conversion.action, conversion.value) == (action, expected)


@pytest.mark.parametrize("value,scale,action,expected", [
    (None, "2", Action.DERIVE, "True"), ("None", "2", Action.REPLACE, "True"), ("False", "2", Action.REPLACE, "True"),
    ("True", "2", Action.KEEP, None), (None, None, Action.KEEP, None), ("None", "None", Action.KEEP, None),
    ("flag", "2", Action.FAIL, None),
])
def test_interpolate_recomputes_the_scale(value, scale, action, expected) -> None:
    bound = {"scale_factor": scale} if scale else {}
    conversion = convert("interpolate_recompute", value, param="recompute_scale_factor",
                         layer="torch.nn.functional.interpolate", bound=bound)
    assert (conversion.action, conversion.value) == (action, expected)


@pytest.mark.parametrize("value,expected", [("1e-12", "1e-24"), ("0.5", "0.25"), ("2", "4.0"), ("1e-3", "1e-6"),
                                            ("eps", "{value} ** 2"), ("a + b", "({value}) ** 2")])
def test_normalize_eps_is_squared(value, expected) -> None:
    conversion = convert("square", value, param="eps", layer="torch.nn.functional.normalize")
    assert (conversion.action, conversion.value) == (Action.REPLACE, expected)


def test_a_view_dtype_becomes_mindspores() -> None:
    assert convert("dtype_reference", "torch.float16", param="size", layer="torch.Tensor.view").reference \
        == "mindspore.float16"
    assert convert("dtype_reference", "-1", param="size", layer="torch.Tensor.view") == Conversion(Action.KEEP)


@pytest.mark.parametrize("value,positional,action,code,reference", [
    ("torch.float64", True, Action.KEEP, None, "mindspore.float64"),
    ("'cuda'", True, Action.OMIT, "TS001", None), ("torch.device('cuda:0')", True, Action.OMIT, "TS001", None),
    ("x.device", True, Action.OMIT, "TS001", None), ("device", True, Action.OMIT, "TS001", None),
    ("'cuda' if gpu else 'cpu'", True, Action.OMIT, "TS001", None), ("dev", False, Action.OMIT, "TS001", None),
    ("y.dtype", True, Action.KEEP, None, None), ("other", True, Action.KEEP, "TS003", None),
])
def test_the_first_argument_of_to(value, positional, action, code, reference) -> None:
    conversion = convert("device_or_dtype", value, param="device", layer="torch.Tensor.to", positional=positional)
    assert (conversion.action, conversion.reference) == (action, reference)
    assert [c for c, _ in conversion.warnings] == ([code] if code else [])


def test_every_converter_is_tested_here() -> None:
    tested = {"identity", "one_minus", "track_running_stats", "float", "dtype", "required_tensor",
              "ones_like_running_mean", "zeros_like_running_mean", "shape_tuple", "omit_none", "implicit_dim",
              "stride_from_kernel", "inplace", "interpolate_mode", "interpolate_scale", "interpolate_recompute",
              "square", "dtype_reference", "device_or_dtype"}
    assert set(CONVERTERS) == tested
    assert convert("identity", "x").action is Action.KEEP
