"""The rules, proven numerically: every case goes through ``migrate_source`` (the real rewrite),
then the original runs under real PyTorch and the migrated code under real MindSpore.

The cases are data over the rules: each layer rule gets the argument values below for the torch
parameters it has (BatchNorm2d all their combinations, the others one at a time), so a new rule in
rules/*.toml is covered by adding, at most, a value for a parameter it introduces.
"""

from __future__ import annotations

import ast
import itertools
import shutil

import numpy as np
import pytest

from codemod import migrate_source
from codemod.ruleset import default_rules
from codemod.verify import FAIL, PASS, SKIP, load_frameworks, verify_source
from codemod.model import Config
from codemod.ruleset import load_rules, rules_dir
from codemod.verify.check import NO_CPU_KERNEL, SAMPLE_FUNCTIONS
from codemod.verify.evaluate import Evaluator, NotEvaluable
from codemod.verify.harness import compare_records, run_program

RULES = default_rules()
LAYER_RULES = sorted((r for r in RULES.layers.values() if r.kind == "layer"), key=lambda r: r.torch)

# Arguments a layer cannot be built without, by torch parameter (the leading positional ones).
REQUIRED = {"num_features": "6", "num_channels": "6", "num_groups": "3", "normalized_shape": "5",
            "in_channels": "6", "out_channels": "6", "kernel_size": "3", "in_features": "5", "out_features": "7",
            "num_embeddings": "50", "embedding_dim": "8", "embed_dim": "16", "num_heads": "4",
            "upscale_factor": "2", "output_size": "(2, 3)"}
# ... and where the parameter's name does not say it.
RULE_REQUIRED = {
    "torch.nn.Unflatten": ["1", "(2, 3)"],
    "torch.nn.ZeroPad2d": ["(1, 0, 2, 1)"],
    "torch.nn.ConstantPad2d": ["(1, 0, 2, 1)", "2.5"],
    "torch.nn.AdaptiveAvgPool1d": ["4"],
    "torch.nn.Upsample": ["scale_factor=2"],
}
# Values to try, by torch parameter. Expressions use the module constants in PRELUDE: the check
# evaluates the original and the migrated expression with the same values.
VALUES = {
    "momentum": ["0.1", "0.01", "0.3", "0.9", "base * 2"],
    "eps": ["1e-5", "1e-3"],
    "affine": ["True", "False"],
    "track_running_stats": ["True", "False", "flag", "not flag"],
    # Layers (issue 15). Each value the rules convert, and the values whose MindSpore default differs.
    "padding": ["0", "1", "(1, 2)", "'same'", "'valid'", "pad", "pad + 1"],
    "stride": ["2", "(2, 1)"],
    "dilation": ["2"],
    "groups": ["2", "3", "6"],
    "padding_mode": ["'zeros'", "'reflect'"],
    "output_padding": ["0", "1"],
    "ceil_mode": ["True"],
    "count_include_pad": ["False"],
    "return_indices": ["True"],
    "divisor_override": ["5"],
    "inplace": ["True", "False"],
    "negative_slope": ["0.2", "0.3", "1"],
    "approximate": ["'none'", "'tanh'", "approx"],
    "alpha": ["1.0", "1", "0.5"],
    "p": ["0.3", "0.7", "0.0", "0", "1.0"],
    "num_parameters": ["1", "3"],
    "init": ["0.1", "0"],
    "dim": ["0", "1", "-1", "None"],
    "start_dim": ["0", "2"],
    "end_dim": ["2", "-2"],
    "padding_idx": ["0", "None", "-1"],
    "max_norm": ["None", "1.0"],
    "norm_type": ["2.0"],
    "scale_grad_by_freq": ["False", "True"],
    "sparse": ["True"],
    "_freeze": ["False", "True"],
    "size": ["(4, 7)", "5"],
    "scale_factor": ["2", "2.0", "(2, 3)", "1.5", "scale"],
    "mode": ["'nearest'", "'bilinear'", "'bicubic'", "'area'", "'nearest-exact'"],
    "dropout": ["0.0", "0"],
    "add_bias_kv": ["True"],
    "add_zero_attn": ["True"],
    "batch_first": ["True"],
}
EXTRA_VALUES = {"bias": ["False"], "elementwise_affine": ["False"], "dtype": ["torch.float32"],
                "device": ["'cpu'"]}
# Values of one rule where the parameter's name means something else (pools take padding up to half
# the kernel; Upsample's size is all there is to say).
RULE_VALUES = {
    "torch.nn.MaxPool2d": {"padding": ["1", "(1, 0)"], "stride": ["2", "(2, 1)", "None", "1"]},
    "torch.nn.MaxPool1d": {"padding": ["1"], "stride": ["2", "None", "1"]},
    "torch.nn.AvgPool2d": {"padding": ["1", "(1, 0)"], "stride": ["2", "(2, 1)", "None", "1"]},
    "torch.nn.AvgPool1d": {"padding": ["1"], "stride": ["2", "None", "1"]},
    "torch.nn.AdaptiveMaxPool2d": {},
    "torch.nn.ConvTranspose2d": {"padding": ["1", "(1, 2)"]},
    "torch.nn.ConvTranspose1d": {"padding": ["1", "(1,)"], "stride": ["2"]},
    "torch.nn.Conv1d": {"padding": ["0", "1", "(2,)", "'same'", "'valid'", "pad"], "stride": ["2"]},
    "torch.nn.Conv3d": {"padding": ["1", "(1, 2, 0)", "'same'", "pad"], "stride": ["2", "(2, 1, 1)"]},
    "torch.nn.Upsample": {"scale_factor": [], "size": []},
}
# Whole argument lists: combinations the one-at-a-time grid does not make.
EXTRA_CASES = {
    "torch.nn.Conv2d": ["6, 6, 3, dtype=torch.float64", "6, 6, 3, 2, 1", "6, 6, 3, 2, 1, 2, 3, False", "6, 6, (3, 5), padding=(1, 2), dilation=(2, 1)",
                        "6, 12, 3, padding=1, groups=6", "6, 6, 4, padding='same', dilation=3"],
    "torch.nn.Conv1d": ["6, 6, 3, 2, 1", "6, 6, 4, padding='same'", "6, 6, (3,), (2,), dilation=(2,)"],
    "torch.nn.MaxPool1d": ["(3,)", "(3,), (2,)", "kernel_size=[2]"],
    "torch.nn.ConvTranspose2d": ["6, 6, 3, dtype=torch.float64", "6, 6, 3, stride=2, padding=1, output_padding=1",
                                 "6, 6, 5, stride=2, padding=2, output_padding=1",
                                 "6, 6, 3, stride=(2, 1), padding=1, output_padding=(1, 0)",
                                 "6, 6, 3, stride=2, padding=1, output_padding=1, dilation=2",
                                 "6, 6, 3, 2, 1, 1, 2, False", "6, 6, 4, 2, 1", "6, 6, 2, 2",
                                 "6, 6, 1, stride=2", "6, 6, (3, 1), stride=2", "6, 6, 2, stride=3, dilation=2"],
    "torch.nn.ConvTranspose1d": ["6, 6, 4, 2, 1", "6, 6, 3, stride=2, output_padding=1", "6, 6, 2, stride=3",
                                 "6, 6, (3,), stride=(2,)",
                                 "6, 6, 1, 2, output_padding=0"],
    "torch.nn.MaxPool2d": ["3, 2, 1", "3, 2, 1, 2, True, True", "2, ceil_mode=True", "3, 2, padding=1, ceil_mode=True"],
    "torch.nn.AvgPool2d": ["3, 2, 1", "3, 2, 1, True, False", "3, 2, 1, count_include_pad=False, ceil_mode=True"],
    "torch.nn.AvgPool1d": ["3, 2, 1, True, False"],
    "torch.nn.Linear": ["5, 7, False"],
    "torch.nn.Embedding": ["50, 8, 0", "50, 8, None, None, 2.0, False, False"],
    "torch.nn.Dropout": ["0.3", "0.7"],
    "torch.nn.Dropout2d": ["0.3", "0"],
    "torch.nn.LeakyReLU": ["0.3", "0.3, True"],
    "torch.nn.Softmax": ["  # torch2ms: input-rank=3", "None  # torch2ms: input-rank=4", "dim=None  # torch2ms: input-rank=2"],
    "torch.nn.LogSoftmax": ["  # torch2ms: input-rank=3", "1"],
    "torch.nn.GELU": ["'tanh'"],
    "torch.nn.PReLU": ["3, 0.1", "1, 1"],
    "torch.nn.Upsample": ["size=(4, 7)", "size=5, mode='bilinear'", "size=(4, 7), mode='bilinear', align_corners=True",
                          "scale_factor=2.0", "scale_factor=(2, 3)", "scale_factor=3, mode='bilinear'",
                          "scale_factor=2, mode='bilinear', align_corners=True",
                          "scale_factor=1.5, mode='bilinear', align_corners=True",
                          "scale_factor=2, mode='nearest', recompute_scale_factor=False",
                          "scale_factor=1.5, recompute_scale_factor=True", "scale_factor=1.5", "scale_factor=scale",
                          "scale_factor=2, mode='bicubic'", "scale_factor=2, mode=mode"],
    "torch.nn.MultiheadAttention": ["16, 4, 0.0, False", "16, 4, kdim=12, vdim=10", "16, 4, batch_first=True, kdim=12",
                                    "16, 4, add_bias_kv=True, add_zero_attn=True, bias=False"],
    "torch.nn.Flatten": ["1, 2", "start_dim=0, end_dim=-1"],
    "torch.nn.Unflatten": ["-1, (2, -1)", "dim=2, unflattened_size=[2, 2]"],
}
# Initial values MindSpore draws differently, said at every site (the rule's device_note); the
# numeric check shows them, and nothing else.
KNOWN_INIT_DIFFERENCES = {"torch.nn.MultiheadAttention": {"out_proj.bias/out_proj.bias"}}
# Cases whose MindSpore layer has no CPU kernel for these arguments: the migration converts them
# (with a warning at the site) and the check shows the kernel's refusal, not a wrong number.
NO_CPU_KERNEL_CASES = {("torch.nn.ELU", "alpha=0.5"): "alpha must be 1.0", ("torch.nn.ELU", "0.5, False"): "alpha must be 1.0",
                       ("torch.nn.Conv2d", "6, 6, 3, dtype=torch.float64"): "Tensor[Float64]",
                       ("torch.nn.ConvTranspose2d", "6, 6, 3, dtype=torch.float64"): "Float64"}
FULL_PRODUCT = {"torch.nn.BatchNorm2d"}  # all combinations; the other rules one value at a time
PRELUDE = "import torch\nimport torch.nn as nn\n\nbase = 0.05\nflag = True\npad = 1\napprox = 'tanh'\nscale = 2\nmode = 'nearest'\n\n"


def required_arguments(rule) -> list[str]:
    if rule.torch in RULE_REQUIRED:
        return list(RULE_REQUIRED[rule.torch])
    out = []
    for param in rule.positional_params():
        if param not in REQUIRED:
            break
        out.append(REQUIRED[param])
    return out


def values_of(rule) -> dict[str, list[str]]:
    own = RULE_VALUES.get(rule.torch, {})
    return {p: own.get(p, VALUES.get(p, [])) for p in rule.torch_params
            if p in own or p in VALUES if own.get(p, VALUES.get(p))}


def argument_cases(rule) -> list[str]:
    required = required_arguments(rule)
    grid = values_of(rule)
    extra = {p: v for p, v in EXTRA_VALUES.items() if p in rule.torch_params}
    if rule.mindspore in NO_CPU_KERNEL:  # nothing runs; one case shows the site is reported
        return [", ".join(required)]
    keyword_sets = []
    if rule.torch in FULL_PRODUCT:
        keyword_sets += [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]
    else:
        keyword_sets += [{p: v} for p, values in grid.items() for v in values]
    keyword_sets += [{p: v} for p, values in extra.items() for v in values]
    cases = [", ".join(required)]
    cases += [", ".join(required + [f"{k}={v}" for k, v in kw.items()]) for kw in keyword_sets]
    if rule.torch in EXTRA_CASES:
        return cases + EXTRA_CASES[rule.torch]
    # Positional spellings: torch position 4 (track_running_stats) is MindSpore's gamma_init.
    positional = []
    for param in rule.positional_params()[len(required):]:
        if len(grid.get(param, ())) < 2:
            break
        positional.append(param)
    for pick in (1, -1):
        if positional:
            cases.append(", ".join(required + [grid[p][pick] for p in positional]))
    return cases


SITE_CASES = [(rule, args) for rule in LAYER_RULES for args in argument_cases(rule)]


def site_source(rule, args: str) -> str:
    """A program that builds the layer; ``args`` may end with a comment for the line (a hint)."""
    args, _, comment = args.partition("  #")
    return f"{PRELUDE}layer = nn.{rule.torch_name}({args.strip()})" + (f"  #{comment}" if comment else "") + "\n"


def expects_init_comparisons(rule) -> bool:
    """Whether the layer holds tensors the check compares as built."""
    return bool([a for a, m in rule.attributes.items() if m and a in ("weight", "bias", "running_mean",
                 "running_var")] or rule.random_init)


@pytest.fixture(scope="module")
def fw(frameworks):
    return load_frameworks()


@pytest.mark.parametrize("rule,args", SITE_CASES, ids=[f"{r.torch_name}({a})" for r, a in SITE_CASES])
def test_rule_site(rule, args, fw) -> None:
    source = site_source(rule, args)
    result = migrate_source(source)
    [site] = [s for s in result.sites if s.kind == "construct"]
    [check] = verify_source(source, frameworks=fw)
    if rule.mindspore in NO_CPU_KERNEL:
        assert check.status == SKIP and "no CPU kernel" in check.reason
        return
    if not site.converted:  # the engine refused: it must say so as an error, and verify must not pass it
        assert any(f.severity == "error" for f in result.findings)
        assert check.status == SKIP and check.reason.startswith("left unconverted")
        return
    if (rule.torch, args) in NO_CPU_KERNEL_CASES:  # converted with a warning; MindSpore's CPU kernel refuses it
        assert any(f.severity == "warning" for f in result.findings)
        assert check.status == FAIL and NO_CPU_KERNEL_CASES[rule.torch, args] in check.reason
        return
    failed = [f"{c.phase}: {c.quantity} max abs {c.max_abs:.3g} {c.detail}" for c in check.failed]
    if rule.torch in KNOWN_INIT_DIFFERENCES:  # reported at the site; the values after a copy agree
        assert {f"{c.phase}: {c.quantity}" for c in check.failed} <= {f"init: {q}" for q in KNOWN_INIT_DIFFERENCES[rule.torch]}
        assert rule.device_note in [f.code for f in result.findings]
        failed = []
    else:
        assert check.status == PASS, f"{site.replacement}: {check.reason}\n" + "\n".join(failed)
    phases = {c.phase for c in check.comparisons}
    assert {"train 1", "train 3", "eval"} <= phases
    if expects_init_comparisons(rule):
        assert "init" in phases


def test_batchnorm2d_grid_is_the_issue_grid() -> None:
    bn2d = [a for r, a in SITE_CASES if r.torch == "torch.nn.BatchNorm2d"]
    for needle in ("momentum=0.1", "momentum=0.01", "momentum=0.3", "momentum=0.9", "momentum=base * 2",
                   "eps=1e-5", "eps=1e-3", "affine=True", "affine=False", "track_running_stats=True",
                   "track_running_stats=False", "track_running_stats=flag"):
        assert any(needle in a for a in bn2d), needle
    assert len(bn2d) >= 5 * 2 * 2 * 3


def test_float16_batchnorm_is_reported_and_caught(fw) -> None:
    # MindSpore 2.10 on CPU: a float16 BatchNorm2d never updates moving_mean/moving_variance in
    # training, while torch's does. The migration says so at the dtype argument (BN004), and the
    # numeric check shows the difference instead of passing it.
    source = f"{PRELUDE}layer = nn.BatchNorm2d(6, dtype=torch.float16)\n"
    assert "BN004" in [f.code for f in migrate_source(source).findings]
    [check] = verify_source(source, frameworks=fw)
    assert check.status == FAIL
    assert any("moving_mean" in str(c) or "running_mean" in str(c) for c in check.failed)


# -- modes: whole programs, original under torch, migrated under MindSpore ---------------------------

def input_shape(rule) -> tuple[int, ...]:
    if rule.sample.shapes:  # the rule's own sample shape, with the required arguments
        bindings = dict(zip(rule.positional_params(), map(ast.literal_eval, required_arguments(rule))))
        return Evaluator(bindings, functions=SAMPLE_FUNCTIONS)(ast.parse(rule.sample.shapes[0], mode="eval").body)
    rank = rule.input_rank or 4
    if "normalized_shape" in rule.torch_params:
        return (2, 6, 4, 5)[: rank - 1] + (5,)
    return (2, 6, 3, 5, 4)[:rank]


def has_statistics(rule) -> bool:
    return bool(rule.attributes.get("running_mean"))


MODE_PROGRAMS = {
    # torch's default: a new module trains; the migrated code must say set_train() itself.
    "default": """\
m = nn.{name}({args})
for step in range(3):
    record(f"train_{{step}}", m(sample({shape}, seed=step) * 2 + 0.5))
{stats}m.eval()
record("eval", m(sample({shape}, seed=9)))
""",
    "explicit": """\
m = nn.{name}({args})
m.eval()
record("eval_first", m(sample({shape}, seed=1)))
m.train()
record("train", m(sample({shape}, seed=2) - 1))
m.train(False)
record("eval_again", m(sample({shape}, seed=3)))
m.train(True)
record("train_again", m(sample({shape}, seed=4) * 3))
{stats}""",
    "module": """\
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.m = nn.{name}({args})

    def forward(self, x):
        return self.m(x) * 2

net = Net()
record("train", net(sample({shape}, seed=5) + 1))
net.eval()
record("eval", net(sample({shape}, seed=6)))
""",
}


def mode_cases():
    for rule in LAYER_RULES:
        if rule.mindspore in NO_CPU_KERNEL:
            continue  # cannot run on this machine (reported by test_rule_site)
        if rule.sample.integers or len(rule.sample.shapes) > 1 or rule.sample.random_when or rule.random_init:
            continue  # indices, several inputs, random outputs or initial weights: test_rule_site (dropout below)
        if not all(site.converted for site in migrate_source(f"{PRELUDE}m = nn.{rule.torch_name}("
                                                             f"{', '.join(required_arguments(rule))})\n").sites):
            continue  # needs more than the required arguments (Softmax: a dim)
        try:
            input_shape(rule)
        except NotEvaluable:
            continue  # its shape needs arguments the required ones do not give
        required = required_arguments(rule)
        variants = [required]
        if "momentum" in rule.torch_params:
            variants.append(required + ["momentum=0.3", "eps=1e-3"])
        for args in variants:
            for mode in MODE_PROGRAMS:
                yield rule, ", ".join(args), mode


MODE_CASES = list(mode_cases())


@pytest.mark.parametrize("rule,args,mode", MODE_CASES, ids=[f"{r.torch_name}({a})-{m}" for r, a, m in MODE_CASES])
def test_rule_modes(rule, args, mode, fw) -> None:
    shape = ", ".join(map(str, input_shape(rule)))
    stats = 'record("mean", m.running_mean)\nrecord("var", m.running_var)\n' if has_statistics(rule) else ""
    program = PRELUDE + MODE_PROGRAMS[mode].format(name=rule.torch_name, args=args, shape=shape, stats=stats)
    migrated = migrate_source(program).code
    expected = run_program(program, "torch", fw)
    actual = run_program(migrated, "mindspore", fw)
    failed = [f"{c.phase}: max abs {c.max_abs:.3g} {c.detail}" for c in compare_records(expected, actual) if not c.passed]
    assert not failed, migrated + "\n" + "\n".join(failed)


DROPOUT_PROGRAM = """\
m = nn.{name}({args})
x = sample({shape}, seed=1) * 2 + 0.5
record("zeroed_in_training", round(float((m(x) == 0).float().sum()) / x.numel(), 1))
m.eval()
record("eval", m(x))
"""


@pytest.mark.parametrize("name,args,shape", [("Dropout", "0.3", "64, 64, 4, 4"), ("Dropout", "p=0.7", "64, 64, 4, 4"),
                                             ("Dropout2d", "0.3", "64, 64, 4, 4"), ("Dropout1d", "p=0.4", "64, 64, 4")])
def test_dropout_drops_where_torch_did(name, args, shape, fw) -> None:
    """A new torch module trains: dropout is active until eval(). The migrated code drops the same
    fraction (set_train() inserted, p by keyword) and passes values through in inference."""
    program = PRELUDE + DROPOUT_PROGRAM.format(name=name, args=args, shape=shape)
    migrated = migrate_source(program).code
    expected = run_program(program, "torch", fw)
    actual = run_program(migrated, "mindspore", fw)
    assert expected["zeroed_in_training"] == actual["zeroed_in_training"] > 0, migrated
    assert [c for c in compare_records(expected, actual) if not c.passed] == []


def test_attention_with_dropout_compares_inference_only(fw) -> None:
    """Dropout inside attention draws other masks than torch's: training outputs are not compared
    (the rule's sample data says so), inference outputs are, and out_proj.bias's init is reported."""
    source = site_source(RULES.layers["torch.nn.MultiheadAttention"], "16, 4, dropout=0.2")
    [check] = verify_source(source, frameworks=fw)
    phases = {(c.phase, c.quantity) for c in check.comparisons}
    assert ("eval", "output 0") in phases and ("eval", "output 1") in phases
    assert not any(phase.startswith("train") for phase, _ in phases)
    assert [f"{c.phase}: {c.quantity}" for c in check.failed] == ["init: out_proj.bias/out_proj.bias"]


# -- silent defaults: each is pinned by a case that fails when the rule is broken ---------------------

# (rules file, text of the rule, what it becomes, layer, arguments): with the rule so broken, the
# case must fail the numeric check; with the rules as they are, test_rule_site shows it passes.
BROKEN_RULES = [
    ("conv.toml", 'when_omitted = "conv_padding"\n', "", "Conv2d", "6, 6, 3"),  # pad_mode left 'same'
    ("conv.toml", 'emit_when_omitted = "True"\n', "", "Conv2d", "6, 6, 3"),  # has_bias left False
    ("conv.toml", 'convert = "conv_padding"\n', 'convert = "pool_padding"\n', "Conv2d", "6, 6, 3, padding=(1, 2)"),
    ("conv.toml", '[layer.params.groups]\nto = "group"', '[layer.params.groups]\ndrop = "TM010"', "Conv2d",
     "6, 6, 3, groups=3"),
    ("conv.toml", 'convert = "folded_into_padding"\n', "", "ConvTranspose2d",
     "6, 6, 3, stride=2, padding=1, output_padding=1"),  # MindSpore's own output_padding
    ("conv.toml", "[layer.inserted_axes]\nweight = 2\n", "", "Conv1d", "6, 6, 3"),
    # pad_mode='valid': MindSpore's shape where the kernel is smaller than the stride
    ("conv.toml", 'when_omitted = "conv_transpose_padding"\n', 'when_omitted = "conv_padding"\n', "ConvTranspose2d",
     "6, 6, 1, stride=2"),
    ("pooling.toml", 'when_omitted = "stride_or_kernel_size"\n', "", "MaxPool2d", "3"),  # stride left 1
    ("pooling.toml", '[layer.params.ceil_mode]\nto = "ceil_mode"', '[layer.params.ceil_mode]\ndrop = "TM010"',
     "MaxPool2d", "3, ceil_mode=True"),
    ("pooling.toml", '[layer.params.count_include_pad]\nto = "count_include_pad"',
     '[layer.params.count_include_pad]\ndrop = "TM010"', "AvgPool2d", "3, 2, 1, count_include_pad=False"),
    ("dropout.toml", 'to = "p"\nconvert = "dropout_p"', 'to = "keep_prob"\nconvert = "dropout_p"', "Dropout", "0.3"),
    ("activation.toml", 'emit_when_omitted = "False"\n', "", "GELU", ""),  # tanh approximation
    ("activation.toml", 'emit_when_omitted = "0.01"\n', "", "LeakyReLU", ""),  # slope 0.2
    ("activation.toml", 'when_omitted = "softmax_dim"\n', "", "Softmax", "  # torch2ms: input-rank=3"),
    ("activation.toml", 'weight = "w"', 'weight = "weight"', "PReLU", "3"),
    ("embedding.toml", 'when_omitted = "embedding_table"\n', "", "Embedding", "50, 8"),  # N(0, 0.01)
    ("shape.toml", 'convert = "interpolation_mode"\n', "", "Upsample", "scale_factor=2, mode='bicubic'"),
    ("shape.toml", 'convert = "scale_factor"\n', "", "Upsample", "scale_factor=2"),
]


@pytest.mark.parametrize("file,old,new,name,args", BROKEN_RULES,
                         ids=[f"{n}({a.strip()})-{f}" for f, _, _, n, a in BROKEN_RULES])
def test_a_broken_rule_fails_its_case(file, old, new, name, args, fw, tmp_path) -> None:
    for path in rules_dir().glob("*.toml"):
        shutil.copy(path, tmp_path / path.name)
    text = (tmp_path / file).read_text(encoding="utf-8")
    assert old in text
    (tmp_path / file).write_text(text.replace(old, new, 1), encoding="utf-8")
    broken = load_rules(tmp_path)
    source = site_source(broken.layers[f"torch.nn.{name}"], args)
    [check] = verify_source(source, config=Config(rules=broken), frameworks=fw)
    assert check.status == FAIL, (check.reason, check.migrated_arguments)


# -- the seed: MindSpore's page "Differences with torch.nn.BatchNorm2d" -------------------------------

PAGE_INPUT = np.array([[[[0.1, 0.2], [0.3, 0.4]],
                        [[0.5, 0.6], [0.7, 0.8]],
                        [[0.9, 1], [1.1, 1.2]]]]).astype(np.float32)
# What the page prints for PyTorch, and for its hand-migrated MindSpore code.
PAGE_TORCH_OUTPUT = np.array([[[[-1.3411044, -0.44703478], [0.4470349, 1.3411044]],
                               [[-1.3411043, -0.44703442], [0.44703496, 1.3411049]],
                               [[-1.3411039, -0.44703427], [0.44703534, 1.341105]]]])
PAGE_MINDSPORE_OUTPUT = np.array([[[[-1.3411045, -0.4470348], [0.44703496, 1.3411045]],
                                   [[-1.341105, -0.4470351], [0.44703424, 1.3411041]],
                                   [[-1.3411034, -0.44703388], [0.44703573, 1.3411053]]]])
PAGE_PROGRAM = """\
from torch import nn

m = nn.BatchNorm2d(num_features=3, momentum=0.1)
output = m(input_py)
record("output", output)
"""


def test_seed_page_numbers(fw) -> None:
    migrated = migrate_source(PAGE_PROGRAM).code
    torch_out = run_program(PAGE_PROGRAM, "torch", fw, inputs={"input_py": PAGE_INPUT})["output"]
    ms_out = run_program(migrated, "mindspore", fw, inputs={"input_py": PAGE_INPUT})["output"]
    for ours in (torch_out, ms_out):
        np.testing.assert_allclose(ours, PAGE_TORCH_OUTPUT, atol=1e-5, rtol=0)
        np.testing.assert_allclose(ours, PAGE_MINDSPORE_OUTPUT, atol=1e-5, rtol=0)
    assert abs(ms_out - PAGE_INPUT).max() > 1, "MindSpore must normalize, not return its input"


def test_seed_page_site(fw) -> None:
    [check] = verify_source(PAGE_PROGRAM, frameworks=fw)
    assert check.status == PASS
    assert check.arguments == "num_features=3, momentum=0.1"
    assert check.migrated_arguments == "num_features=3, momentum=0.9"


def test_seed_page_without_set_train_fails(fw) -> None:
    """The page's own warning: without set_train() MindSpore prints the input back almost unchanged."""
    migrated = migrate_source(PAGE_PROGRAM).code.replace("m.set_train()\n", "")
    ms_out = run_program(migrated, "mindspore", fw, inputs={"input_py": PAGE_INPUT})["output"]
    assert abs(ms_out - PAGE_TORCH_OUTPUT).max() > 1
    np.testing.assert_allclose(ms_out, PAGE_INPUT, atol=1e-4, rtol=0)
