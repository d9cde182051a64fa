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
            positional: bool = True, may_be_none: bool = False):
    rule = RULES.layers.get(layer) or RULES.methods[layer.rsplit(".", 1)[1]]
    node = ast.parse(value, mode="eval").body if value is not None else None
    reference = value if value is not None and value.startswith("torch.") else None
    bound_nodes = {k: ast.parse(v, mode="eval").body for k, v in (bound or {}).items()}
    arg = Arg(node, value or "", rule.params[param], rule, RULES.dtypes,
              {code: f.title for code, f in RULES.findings.items()}, reference, bound_nodes, lines,
              segment=lambda n: ast.unparse(n) if n is not node else value, target=target, positional=positional,
              passed=(ast.Constant(None),) if may_be_none else ())
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
    ("eps", Action.REPLACE, "float(eps)"), ("eps * 2", Action.REPLACE, "float(eps * 2)"),
    ("eps / 2", Action.KEEP, None), ("2 * 1e-3", Action.KEEP, None), ("float(e)", Action.KEEP, None),
])
def test_an_int_eps_becomes_a_float(value, action, expected) -> None:
    conversion = convert("float", value, param="eps")
    assert (conversion.action, conversion.value) == (action, expected)


@pytest.mark.parametrize("value,action,expected", [
    ("0", Action.REPLACE, "0.0"), ("0.1", Action.KEEP, None), ("rate", Action.KEEP, None),
])
def test_a_parameter_mindspore_also_takes_as_int_gets_floats_for_int_literals_only(value, action, expected) -> None:
    conversion = convert("float_literal", value, param="dropout", layer="torch.nn.MultiheadAttention")
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


# -- layers (issue 15) ------------------------------------------------------------------------------

CONV = "torch.nn.Conv2d"


@pytest.mark.parametrize("layer,value,action,expected,adds", [
    (CONV, None, Action.KEEP, None, (("pad_mode", "'valid'"),)),  # MindSpore's default is 'same'
    (CONV, "1", Action.KEEP, None, (("pad_mode", "'pad'"),)),
    (CONV, "0", Action.KEEP, None, (("pad_mode", "'pad'"),)),
    (CONV, "k // 2", Action.KEEP, None, (("pad_mode", "'pad'"),)),
    (CONV, "d * (k - 1) // 2", Action.KEEP, None, (("pad_mode", "'pad'"),)),
    (CONV, "(1, 2)", Action.REPLACE, "(1, 1, 2, 2)", (("pad_mode", "'pad'"),)),
    (CONV, "[ph, pw]", Action.REPLACE, "(ph, ph, pw, pw)", (("pad_mode", "'pad'"),)),
    (CONV, "'same'", Action.OMIT, None, (("pad_mode", "'same'"),)),
    (CONV, '"valid"', Action.OMIT, None, (("pad_mode", "'valid'"),)),
    ("torch.nn.Conv1d", "(2,)", Action.REPLACE, "2", (("pad_mode", "'pad'"),)),
    ("torch.nn.Conv3d", "(1, 2, 0)", Action.REPLACE, "(1, 1, 2, 2, 0, 0)", (("pad_mode", "'pad'"),)),
])
def test_conv_padding_is_spelled_with_a_pad_mode(layer, value, action, expected, adds) -> None:
    conversion = convert("conv_padding", value, param="padding", layer=layer)
    assert (conversion.action, conversion.value, conversion.adds, conversion.warnings) == (action, expected, adds, ())


@pytest.mark.parametrize("value", ["pad", "self.pad", "p * 2", "(k - 1) // 2 * d", "cfg['padding']"])
def test_a_conv_padding_that_may_be_a_tuple_is_taken_for_an_int_with_a_warning(value) -> None:
    conversion = convert("conv_padding", value, param="padding", layer=CONV)
    assert (conversion.action, conversion.adds) == (Action.KEEP, (("pad_mode", "'pad'"),))
    assert [code for code, _ in conversion.warnings] == ["CV002"]


@pytest.mark.parametrize("value", ["'full'", "(1, 2, 3)", "(f(), 1)"])
def test_conv_padding_that_cannot_be_written_is_refused(value) -> None:
    conversion = convert("conv_padding", value, param="padding", layer=CONV)
    assert (conversion.action, conversion.code) == (Action.FAIL, "CV001")


@pytest.mark.parametrize("padding,output_padding,action,expected", [
    ("1", "1", Action.REPLACE, "(1, 0, 1, 0)"),
    ("2", "1", Action.REPLACE, "(2, 1, 2, 1)"),
    ("1", "(1, 0)", Action.REPLACE, "(1, 0, 1, 1)"),
    ("(2, 1)", "1", Action.REPLACE, "(2, 1, 1, 0)"),
    ("1", "0", Action.KEEP, None),  # nothing to fold: as a convolution
    (None, None, Action.KEEP, None),
])
def test_output_padding_is_folded_into_an_asymmetric_padding(padding, output_padding, action, expected) -> None:
    bound = {"output_padding": output_padding} if output_padding is not None else {}
    conversion = convert("conv_transpose_padding", padding, param="padding", layer="torch.nn.ConvTranspose2d",
                         bound=bound)
    assert (conversion.action, conversion.value) == (action, expected)
    assert conversion.adds in ((("pad_mode", "'pad'"),), (("pad_mode", "'valid'"),))
    assert convert("folded_into_padding", output_padding or "1", param="output_padding",
                   layer="torch.nn.ConvTranspose2d").action is Action.OMIT


@pytest.mark.parametrize("padding,output_padding", [("0", "1"), (None, "1"), ("(1, 0)", "1"), ("p", "1"), ("1", "op")])
def test_output_padding_that_cannot_be_folded_is_refused(padding, output_padding) -> None:
    conversion = convert("conv_transpose_padding", padding, param="padding", layer="torch.nn.ConvTranspose2d",
                         bound={"output_padding": output_padding})
    assert (conversion.action, conversion.code) == (Action.FAIL, "CV004")


def test_pools_always_spell_pad_mode_pad() -> None:
    for value in ("1", "(1, 0)", None):
        conversion = convert("pool_padding", value, param="padding", layer="torch.nn.MaxPool2d")
        assert (conversion.action, conversion.adds) == (Action.KEEP, (("pad_mode", "'pad'"),))


@pytest.mark.parametrize("value,kernel,action,expected", [
    (None, "3", Action.DERIVE, "{arg:kernel_size}"), ("None", "(2, 3)", Action.DERIVE, "{arg:kernel_size}"),
    (None, "self.k", Action.DERIVE, "{arg:kernel_size}"), ("2", "3", Action.KEEP, None), ("s", "f()", Action.KEEP, None),
])
def test_a_pool_stride_omitted_is_the_kernel_size(value, kernel, action, expected) -> None:
    conversion = convert("stride_or_kernel_size", value, param="stride", layer="torch.nn.MaxPool2d",
                         bound={"kernel_size": kernel})
    assert (conversion.action, conversion.value) == (action, expected)


def test_a_pool_stride_that_may_be_none_is_the_kernel_size_when_it_is() -> None:
    conversion = convert("stride_or_kernel_size", "s", param="stride", layer="torch.nn.MaxPool2d",
                         bound={"kernel_size": "k"}, may_be_none=True)
    assert (conversion.action, conversion.value) == (Action.DERIVE, "{arg:kernel_size} if {arg:stride} is None else {arg:stride}")


@pytest.mark.parametrize("layer,param,value,action,expected", [
    ("torch.nn.Conv1d", "kernel_size", "(3,)", Action.REPLACE, "3"),
    ("torch.nn.ConvTranspose1d", "stride", "[k]", Action.REPLACE, "k"),
    ("torch.nn.Conv1d", "dilation", "2", Action.KEEP, None),
    ("torch.nn.Conv2d", "kernel_size", "(3,)", Action.KEEP, None),  # not a 1-d layer
    ("torch.nn.Conv1d", "kernel_size", "(*ks,)", Action.KEEP, None),
])
def test_a_one_tuple_size_of_a_one_dimensional_layer_is_an_int(layer, param, value, action, expected) -> None:
    conversion = convert("single_size", value, param=param, layer=layer)
    assert (conversion.action, conversion.value) == (action, expected)


def test_a_one_tuple_that_a_call_passes_to_a_one_dimensional_size_is_refused() -> None:
    rule = RULES.layers["torch.nn.Conv1d"]
    titles = {code: f.title for code, f in RULES.findings.items()}
    passed = (ast.parse("(3,)", mode="eval").body,)
    arg = Arg(ast.parse("k", mode="eval").body, "k", rule.params["kernel_size"], rule, RULES.dtypes, titles,
              passed=passed, segment=ast.unparse)
    assert (CONVERTERS["single_size"](arg).action, CONVERTERS["single_size"](arg).code) == (Action.FAIL, "TM015")
    ints = Arg(arg.node, "k", arg.param, rule, RULES.dtypes, titles, passed=(ast.parse("3", mode="eval").body,),
               segment=ast.unparse)
    assert CONVERTERS["single_size"](ints).action is Action.KEEP


def test_a_max_pool_1d_stride_omitted_is_the_int_of_a_one_tuple_kernel() -> None:
    conversion = convert("stride_or_kernel_size", None, param="stride", layer="torch.nn.MaxPool1d",
                         bound={"kernel_size": "(3,)"})
    assert (conversion.action, conversion.value) == (Action.DERIVE, "3")
    given = convert("stride_or_kernel_size", "(2,)", param="stride", layer="torch.nn.MaxPool1d",
                    bound={"kernel_size": "(3,)"})
    assert (given.action, given.value) == (Action.REPLACE, "2")


def test_a_pool_stride_omitted_with_a_kernel_size_that_is_a_call_is_refused() -> None:
    conversion = convert("stride_or_kernel_size", None, param="stride", layer="torch.nn.MaxPool2d",
                         bound={"kernel_size": "size()"})
    assert (conversion.action, conversion.code) == (Action.FAIL, "PL001")


@pytest.mark.parametrize("value,action,expected", [
    ("'none'", Action.REPLACE, "False"), ("'tanh'", Action.REPLACE, "True"), ("approx", Action.REPLACE, "{value} == 'tanh'"),
    ("a if b else c", Action.REPLACE, "({value}) == 'tanh'"), ("'exact'", Action.FAIL, None),
])
def test_gelu_approximate_becomes_a_bool(value, action, expected) -> None:
    conversion = convert("gelu_approximate", value, param="approximate", layer="torch.nn.GELU")
    assert (conversion.action, conversion.value) == (action, expected)


def test_softmax_without_dim_needs_the_input_rank() -> None:
    layer = "torch.nn.Softmax"
    assert convert("softmax_dim", "1", param="dim", layer=layer).action is Action.KEEP
    assert convert("softmax_dim", "d", param="dim", layer=layer).action is Action.KEEP
    refused = convert("softmax_dim", None, param="dim", layer=layer)
    assert (refused.action, refused.code) == (Action.FAIL, "SM001")
    for rank, axis in ((1, "0"), (2, "1"), (3, "0"), (4, "1")):
        hint = (f"sm = nn.Softmax()  # torch2ms: input-rank={rank}",)
        omitted = convert("softmax_dim", None, param="dim", layer=layer, lines=hint)
        assert (omitted.action, omitted.value) == (Action.DERIVE, axis)
        none = convert("softmax_dim", "None", param="dim", layer=layer, lines=hint)
        assert (none.action, none.value) == (Action.REPLACE, axis)
        maybe = convert("softmax_dim", "d", param="dim", layer=layer, lines=hint, may_be_none=True)
        assert (maybe.action, maybe.value) == (Action.REPLACE, f"{axis} if d is None else d")
    maybe = convert("softmax_dim", "d", param="dim", layer=layer, may_be_none=True)
    assert (maybe.action, maybe.code) == (Action.FAIL, "SM001")


def test_elu_alpha_is_a_float_and_other_alphas_warn() -> None:
    one = convert("elu_alpha", "1", param="alpha", layer="torch.nn.ELU")
    assert (one.action, one.value, one.warnings) == (Action.REPLACE, "1.0", ())
    assert convert("elu_alpha", "1.0", param="alpha", layer="torch.nn.ELU").action is Action.KEEP
    other = convert("elu_alpha", "0.5", param="alpha", layer="torch.nn.ELU")
    assert (other.action, [c for c, _ in other.warnings]) == (Action.KEEP, ["AC002"])
    other = convert("elu_alpha", "a", param="alpha", layer="torch.nn.ELU")
    assert (other.action, other.value, [c for c, _ in other.warnings]) == (Action.REPLACE, "float(a)", ["AC002"])


@pytest.mark.parametrize("value,action,expected,code", [
    ("0.3", Action.KEEP, None, None), ("0", Action.REPLACE, "0.0", None), ("p", Action.KEEP, None, None),
    ("1.0", Action.FAIL, None, "DR001"), ("1", Action.FAIL, None, "DR001"),
])
def test_dropout_p(value, action, expected, code) -> None:
    conversion = convert("dropout_p", value, param="p", layer="torch.nn.Dropout")
    assert (conversion.action, conversion.value, conversion.code) == (action, expected, code)


def test_dropout_p_that_a_call_passes_as_1_is_refused() -> None:
    passed = (ast.parse("1.0", mode="eval").body, ast.parse("0.5", mode="eval").body)
    rule = RULES.layers["torch.nn.Dropout"]
    arg = Arg(ast.parse("p", mode="eval").body, "p", rule.params["p"], rule, RULES.dtypes,
              {code: f.title for code, f in RULES.findings.items()}, passed=passed, segment=ast.unparse)
    conversion = CONVERTERS["dropout_p"](arg)
    assert (conversion.action, conversion.code) == (Action.FAIL, "DR001")
    arg = Arg(arg.node, "p", arg.param, rule, RULES.dtypes, arg.titles, passed=passed[1:], segment=ast.unparse)
    assert CONVERTERS["dropout_p"](arg).action is Action.KEEP


def test_embedding_table_carries_torchs_initialiser() -> None:
    layer = "torch.nn.Embedding"
    for value in (None, "None"):
        conversion = convert("embedding_table", value, param="_weight", layer=layer)
        assert (conversion.action, conversion.value) == (Action.DERIVE, "{name:normal}(sigma=1.0)")
        assert conversion.names == (("name:normal", "mindspore.common.initializer.Normal"),)
    given = convert("embedding_table", "table", param="_weight", layer=layer)
    assert (given.action, [c for c, _ in given.warnings]) == (Action.KEEP, ["EM002"])


@pytest.mark.parametrize("value,count,action,expected", [
    ("None", "10", Action.OMIT, None), ("0", "10", Action.KEEP, None), ("i", "10", Action.KEEP, None),
    ("-1", "10", Action.REPLACE, "9"), ("-2", "n", Action.DERIVE, "{arg:num_embeddings} - 2"),
    ("-1", "a + b", Action.DERIVE, "({arg:num_embeddings}) - 1"),
])
def test_padding_idx(value, count, action, expected) -> None:
    conversion = convert("padding_idx", value, param="padding_idx", layer="torch.nn.Embedding",
                         bound={"num_embeddings": count})
    assert (conversion.action, conversion.value) == (action, expected)
    if action is not Action.OMIT:
        assert [c for c, _ in conversion.warnings] == ["EM001"]


def test_a_negative_padding_idx_with_a_count_that_is_a_call_is_refused() -> None:
    conversion = convert("padding_idx", "-1", param="padding_idx", layer="torch.nn.Embedding",
                         bound={"num_embeddings": "len(vocab)"})
    assert (conversion.action, conversion.code) == (Action.FAIL, "EM006")


UPSAMPLE = "torch.nn.Upsample"
RECOMPUTE = (("recompute_scale_factor", "True"),)


@pytest.mark.parametrize("value,bound,action,expected,adds", [
    ("2", {}, Action.REPLACE, "2.0", RECOMPUTE), ("2.0", {}, Action.REPLACE, "2.0", RECOMPUTE),
    ("(2, 3)", {}, Action.REPLACE, "(2.0, 3.0)", RECOMPUTE), ("[2]", {}, Action.REPLACE, "(2.0,)", RECOMPUTE),
    ("2", {"recompute_scale_factor": "False"}, Action.REPLACE, "2.0", ()),
    ("1.5", {"recompute_scale_factor": "True"}, Action.REPLACE, "1.5", ()),
    ("1.5", {"mode": "'bilinear'", "align_corners": "True"}, Action.REPLACE, "1.5", RECOMPUTE),
    ("s", {"recompute_scale_factor": "True"}, Action.KEEP, None, ()),
    ("None", {}, Action.KEEP, None, ()),
])
def test_integer_scale_factors_become_floats_with_recompute(value, bound, action, expected, adds) -> None:
    conversion = convert("scale_factor", value, param="scale_factor", layer=UPSAMPLE, bound=bound)
    assert (conversion.action, conversion.value, conversion.adds) == (action, expected, adds)


@pytest.mark.parametrize("value,bound", [("1.5", {}), ("s", {}), ("1.5", {"mode": "'bilinear'"}),
                                         ("(2, 1.5)", {"mode": "'nearest'", "align_corners": "True"})])
def test_other_scale_factors_are_refused(value, bound) -> None:
    conversion = convert("scale_factor", value, param="scale_factor", layer=UPSAMPLE, bound=bound)
    assert (conversion.action, conversion.code) == (Action.FAIL, "UP001")


def test_recompute_scale_factor_is_true_whenever_a_scale_is_given() -> None:
    assert convert("recompute_scale_factor", "False", param="recompute_scale_factor", layer=UPSAMPLE,
                   bound={"scale_factor": "2"}).value == "True"
    assert convert("recompute_scale_factor", "True", param="recompute_scale_factor", layer=UPSAMPLE,
                   bound={"scale_factor": "2"}).action is Action.KEEP
    assert convert("recompute_scale_factor", "False", param="recompute_scale_factor", layer=UPSAMPLE,
                   bound={"size": "4"}).action is Action.KEEP


@pytest.mark.parametrize("value,action", [("'nearest'", Action.KEEP), ("'bilinear'", Action.KEEP),
                                          ("'nearest-exact'", Action.KEEP), ("'area'", Action.KEEP),
                                          ("'bicubic'", Action.FAIL), ("mode", Action.FAIL)])
def test_interpolation_modes(value, action) -> None:
    conversion = convert("interpolation_mode", value, param="mode", layer=UPSAMPLE)
    assert conversion.action is action
    assert conversion.code == ("UP002" if action is Action.FAIL else None)


def test_adaptive_avg_pool_1d_warns_unless_the_size_is_one() -> None:
    layer = "torch.nn.AdaptiveAvgPool1d"
    assert convert("divisible_output_size", "1", param="output_size", layer=layer).warnings == ()
    for value in ("4", "n"):
        conversion = convert("divisible_output_size", value, param="output_size", layer=layer)
        assert (conversion.action, [c for c, _ in conversion.warnings]) == (Action.KEEP, ["PL002"])


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
              "ones_like_running_mean", "zeros_like_running_mean", "shape_tuple",
              "conv_padding", "conv_transpose_padding", "folded_into_padding", "pool_padding",
              "stride_or_kernel_size", "single_size", "float_literal", "gelu_approximate", "softmax_dim", "elu_alpha", "dropout_p",
              "embedding_table", "padding_idx", "scale_factor", "recompute_scale_factor", "interpolation_mode",
              "divisible_output_size", "omit_none", "implicit_dim",
              "stride_from_kernel", "inplace", "interpolate_mode", "interpolate_scale", "interpolate_recompute",
              "square", "dtype_reference", "device_or_dtype"}
    assert set(CONVERTERS) == tested
    assert convert("identity", "x").action is Action.KEEP
