"""Shared test set-up.

The numeric tests need real PyTorch and MindSpore. Locally they skip when the frameworks are missing;
with TORCH2MS_REQUIRE_FRAMEWORKS=1 (which .ci/run and `make test` set) a missing framework fails the
test instead, so CI can never pass by skipping them.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

REQUIRE_FRAMEWORKS = os.environ.get("TORCH2MS_REQUIRE_FRAMEWORKS") == "1"


@pytest.fixture(scope="session")
def frameworks():
    """torch and mindspore, imported once per session (MindSpore's import takes seconds)."""
    try:
        import mindspore
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        message = f"PyTorch and MindSpore are needed for the numeric tests: {exc}"
        if REQUIRE_FRAMEWORKS:
            pytest.fail(message + " (TORCH2MS_REQUIRE_FRAMEWORKS=1)")
        pytest.skip(message)
    return SimpleNamespace(torch=torch, mindspore=mindspore)
