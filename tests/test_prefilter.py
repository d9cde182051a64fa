"""The prefilter skips files without parsing them; it must never skip one the engine would change
or report on. Every fixture and generated torch code in every import style is migrated twice, with
the prefilter and with one that lets everything through: the results must be the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codemod import Config, MigrationError, migrate_source
from codemod.notebook import migrate_notebook
from codemod.ruleset import default_rules
from tests.test_fuzz import fuzz, torch_code

FIXTURES = sorted(Path(__file__).parent.joinpath("fixtures").rglob("*.in.py"))
RULES = default_rules()


UNFILTERED = Config(rules=RULES.unfiltered())


def assert_prefilter_misses_nothing(source: str) -> None:
    try:
        everything = migrate_source(source, path="m.py", config=UNFILTERED)
    except MigrationError:
        return  # nothing to miss
    if everything.changed or everything.findings:
        assert RULES.prefilter.matches(source), "the prefilter skips a file the engine changes"
    filtered = migrate_source(source, path="m.py")
    assert (filtered.code, filtered.findings) == (everything.code, everything.findings)


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_prefilter_lets_every_fixture_through_that_changes(fixture):
    assert_prefilter_misses_nothing(fixture.read_text(encoding="utf-8"))


# Ways to spell a torch layer that the fuzzer's import styles do not cover.
SPELLINGS = [
    "import torch.nn as nn\nbn = (nn\n      .BatchNorm2d)(3)\ny = bn(x)\n",
    "import torch.nn as nn\nbn = (nn.  # the class\n      BatchNorm2d)(3)\ny = bn(x)\n",
    "import torch.nn as nn\nbn = (nn.\n      BatchNorm2d)(3)\ny = bn(x)\n",
    "import torch.nn as nn\nbn = nn . BatchNorm2d(3)\ny = bn(x)\n",
    "import torch.nn as nn\nbn = nn.\\\n    BatchNorm2d(3)\ny = bn(x)\n",
    "import torch.nn as nn\nbn = getattr(nn, 'BatchNorm2d')(3)\ny = bn(x)\n",
    "from torch.nn import (\n    Conv2d,\n    BatchNorm2d,\n)\nbn = BatchNorm2d(3)\ny = bn(x)\n",
    "from torch.nn import Conv2d, \\\n    BatchNorm2d\nbn = BatchNorm2d(3)\ny = bn(x)\n",
    "from torch.nn import Conv2d; from torch.nn import LayerNorm as LN\nln = LN(4)\n",
    "from torch . nn import LayerNorm\nln = LayerNorm(4)\n",
    "from torch.nn.modules import *\nbn = BatchNorm1d(3)\ny = bn(x)\n",
    "import torch.nn.functional as F\ny = F.batch_norm(x, rm, rv, training=True, momentum=0.1)\n",
    "from torch.nn.functional import batch_norm\ny = batch_norm(x, rm, rv, training=True, momentum=0.1)\n",
    # Part way through a migration: MindSpore's layer, and torch's nn.Module still there.
    "import torch\nfrom mindspore.nn import BatchNorm2d\n\nclass Net(torch.nn.Module):\n"
    "    def __init__(self):\n        super().__init__()\n        self.bn = BatchNorm2d(3)\n",
]


@pytest.mark.parametrize("source", SPELLINGS)
def test_the_prefilter_lets_every_spelling_through(source):
    assert_prefilter_misses_nothing(source)


@fuzz(200)
@given(torch_code(), st.sampled_from(["", "# header\n", "import os\n", "from mindspore import ops\n"]))
def test_the_prefilter_lets_generated_torch_code_through(source, header):
    assert_prefilter_misses_nothing(header + source)


def test_a_layer_of_the_projects_own_is_not_parsed():
    # timm defines its own LayerNorm and imports it everywhere it builds blocks: not torch's.
    source = ("import torch\nfrom torch import nn\nfrom timm.layers import LayerNorm, GroupNorm\n\n"
              "def block(dim, norm_layer=LayerNorm):\n    return norm_layer(dim)  # LayerNorm over channels\n")
    assert not RULES.prefilter.matches(source)
    assert not migrate_source(source, config=UNFILTERED).changed


def test_a_notebook_with_a_continued_torch_import_is_parsed():
    cells = ["from torch.nn import Conv2d, \\\n    BatchNorm2d\n", "bn = BatchNorm2d(3)\ny = bn(x)\n"]
    notebook = json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                                      "source": c.splitlines(keepends=True)} for c in cells],
                           "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1)
    assert RULES.prefilter.matches(notebook)
    assert migrate_notebook(notebook).changed


def test_a_torch_name_bound_two_ways_does_not_bring_a_module_into_scope():
    # Found by running the engine without the prefilter over timm: a module with no normalization
    # layer was migrated because `vmap` came from torch or from functorch.
    source = ("import torch\nfrom torch import nn\n\ntry:\n    from torch import vmap\nexcept ImportError:\n"
              "    from functorch import vmap\n\n\nclass Head(nn.Module):\n    def forward(self, x):\n"
              "        return vmap(torch.relu)(x)\n")
    assert not migrate_source(source, config=UNFILTERED).changed
