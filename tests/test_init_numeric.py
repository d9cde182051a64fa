"""The torch.nn.init rules, proven under both frameworks: each case is a small program that builds a
layer, initialises one of its parameters and records it; the original runs under real PyTorch, its
migration (``migrate_source``: the real rewrite) under real MindSpore. Deterministic initialisers
must give the same numbers; random ones the same distribution (mean, standard deviation, bounds) on
a parameter large enough for the statistics to tell a wrong scale, mode, gain or default apart (the
cases leave torch's defaults out where MindSpore's differ: Normal's sigma is 0.01, torch's std 1)."""

from __future__ import annotations

import numpy as np
import pytest

from codemod import migrate_source
from codemod.verify import load_frameworks
from codemod.verify.harness import run_program

PRELUDE = """\
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(64, 128, 3)
        self.fc = nn.Linear(300, 200)
        self.bn = nn.BatchNorm2d(5000)
        {init}

    def forward(self, x):
        return x


net = Net()
record("p", net.{param})
"""

# (the init statement, the parameter recorded as torch names it)
DETERMINISTIC = [
    ("nn.init.zeros_(self.fc.bias)", "fc.bias"),
    ("nn.init.ones_(self.fc.bias)", "fc.bias"),
    ("nn.init.constant_(self.bn.weight, 0.25)", "bn.weight"),
    ("nn.init.constant_(self.bn.bias, val=-3)", "bn.bias"),
    ("nn.init.ones_(self.bn.running_var)", "bn.running_var"),
]

# (the init statement, the parameter, the distribution it draws from: mean, std, lower, upper bound)
def _kaiming(fan: int, slope: float = 0.0, nonlinearity: str = "leaky_relu") -> float:
    gain = {"relu": np.sqrt(2.0), "leaky_relu": np.sqrt(2.0 / (1 + slope ** 2)), "linear": 1.0}[nonlinearity]
    return gain / np.sqrt(fan)


FAN_IN_CONV, FAN_OUT_CONV = 64 * 9, 128 * 9
FAN_IN_FC, FAN_OUT_FC = 300, 200
RANDOM = [
    ("nn.init.normal_(self.fc.weight)", "fc.weight", (0.0, 1.0, None, None)),
    ("nn.init.normal_(self.fc.weight, 0.5, 0.1)", "fc.weight", (0.5, 0.1, None, None)),
    ("nn.init.normal_(self.fc.weight, std=2.0)", "fc.weight", (0.0, 2.0, None, None)),
    ("nn.init.trunc_normal_(self.fc.weight)", "fc.weight", (0.0, 0.8796, -2.0, 2.0)),
    # a and b are absolute bounds (-2, 2), not in units of std: nothing is cut here
    ("nn.init.trunc_normal_(self.fc.weight, std=0.02)", "fc.weight", (0.0, 0.02, None, None)),
    ("nn.init.trunc_normal_(self.fc.weight, std=0.02, a=-0.02, b=0.02)", "fc.weight", (0.0, 0.01078, -0.02, 0.02)),
    ("nn.init.trunc_normal_(self.fc.weight, mean=1.0, std=1.0, a=0.0, b=2.0)", "fc.weight", (1.0, 0.5395, 0.0, 2.0)),
    ("nn.init.uniform_(self.fc.weight)", "fc.weight", (0.5, 1 / np.sqrt(12), 0.0, 1.0)),
    ("nn.init.uniform_(self.fc.weight, -3, 1)", "fc.weight", (-1.0, 4 / np.sqrt(12), -3.0, 1.0)),
    ("nn.init.kaiming_normal_(self.conv.weight)", "conv.weight", (0.0, _kaiming(FAN_IN_CONV), None, None)),
    ("nn.init.kaiming_normal_(self.conv.weight, mode='fan_out', nonlinearity='relu')", "conv.weight",
     (0.0, _kaiming(FAN_OUT_CONV, nonlinearity="relu"), None, None)),
    ("nn.init.kaiming_normal_(self.fc.weight, a=1.0)", "fc.weight", (0.0, _kaiming(FAN_IN_FC, 1.0), None, None)),
    ("nn.init.kaiming_uniform_(self.conv.weight, a=0.5, mode='fan_out')", "conv.weight",
     (0.0, _kaiming(FAN_OUT_CONV, 0.5), -_kaiming(FAN_OUT_CONV, 0.5) * np.sqrt(3), _kaiming(FAN_OUT_CONV, 0.5) * np.sqrt(3))),
    ("nn.init.kaiming_uniform_(self.fc.weight, nonlinearity='linear')", "fc.weight",
     (0.0, _kaiming(FAN_IN_FC, nonlinearity="linear"), None, None)),
    ("nn.init.xavier_uniform_(self.fc.weight)", "fc.weight",
     (0.0, np.sqrt(2.0 / (FAN_IN_FC + FAN_OUT_FC)), None, None)),
    ("nn.init.xavier_normal_(self.conv.weight, gain=3.0)", "conv.weight",
     (0.0, 3.0 * np.sqrt(2.0 / (FAN_IN_CONV + FAN_OUT_CONV)), None, None)),
]


@pytest.fixture(scope="module")
def fw(frameworks):
    return load_frameworks()


def _both(fw, init: str, param: str):
    source = PRELUDE.format(init=init, param=param)
    result = migrate_source(source, path="init_case.py")
    assert "nn.init" not in result.code and "set_data" in result.code, result.code
    assert [f.code for f in result.findings if f.severity == "error"] == []
    ms_param = {"bn.weight": "bn.gamma", "bn.bias": "bn.beta", "bn.running_var": "bn.moving_variance"}.get(param, param)
    assert f"record(\"p\", net.{ms_param})" in result.code
    torch_value = np.asarray(run_program(source, "torch", fw)["p"])
    ms_value = np.asarray(run_program(result.code, "mindspore", fw)["p"])
    return torch_value, ms_value


@pytest.mark.parametrize("init, param", DETERMINISTIC, ids=[i for i, _ in DETERMINISTIC])
def test_deterministic_initialisers_give_the_same_numbers(fw, init, param) -> None:
    torch_value, ms_value = _both(fw, init, param)
    assert torch_value.shape == ms_value.shape
    np.testing.assert_array_equal(torch_value, ms_value)


@pytest.mark.parametrize("init, param, distribution", RANDOM, ids=[i for i, _, _ in RANDOM])
def test_random_initialisers_draw_from_torchs_distribution(fw, init, param, distribution) -> None:
    mean, std, low, high = distribution
    torch_value, ms_value = _both(fw, init, param)
    assert torch_value.shape == ms_value.shape
    for value in (torch_value, ms_value):  # the expected figures hold for torch itself: the check is sound
        assert abs(value.mean() - mean) < 0.05 * std + 1e-6, (value.mean(), mean)
        assert abs(value.std() - std) < 0.05 * std, (value.std(), std)
        if low is not None:
            assert value.min() >= low - 1e-6 and value.max() <= high + 1e-6
            assert value.min() < low + 0.1 * (high - low) and value.max() > high - 0.1 * (high - low)
    assert not np.array_equal(torch_value, ms_value)  # drawn, not copied


def test_modules_and_named_modules_walk_the_same_layers(fw) -> None:
    source = """\
import torch.nn as nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.bn = nn.BatchNorm2d(3)

    def forward(self, x):
        return self.bn(self.conv(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = Block()
        self.b = nn.Sequential(Block(), nn.ReLU())
        self.shared = self.a.conv
        self.count = len(list(self.modules()))  # the shared conv once
        self.named_count = len([n for n, _ in self.named_modules()])
        self.kid_count = len(list(self.children()))
        self.named_kid_count = len([n for n, _ in self.named_children()])
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 2.0)

    def forward(self, x):
        return self.b(self.a(x))


net = Net()
record("count", net.count)
record("named_count", net.named_count)
record("kid_count", net.kid_count)
record("named_kid_count", net.named_kid_count)
record("gamma", net.a.bn.weight)
"""
    result = migrate_source(source, path="walk.py")
    assert "cells_and_names" in result.code and ".cells()" in result.code
    torch_records = run_program(source, "torch", fw)
    ms_records = run_program(result.code, "mindspore", fw)
    assert set(torch_records) == set(ms_records)
    for name in torch_records:
        np.testing.assert_array_equal(np.asarray(torch_records[name]), np.asarray(ms_records[name]), err_msg=name)
