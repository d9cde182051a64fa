"""PyTorch and MindSpore, imported lazily and once: the only place verify imports them."""

from __future__ import annotations

import functools
import importlib
import time
from dataclasses import dataclass
from types import ModuleType

INSTALL_HINT = "pip install 'torch2ms[verify]'  (torch==2.13.0, mindspore==2.10.0, numpy<2)"


class FrameworksMissing(Exception):
    """torch or mindspore cannot be imported: verify cannot run."""

    def __str__(self) -> str:
        return f"{self.args[0]}\nthe numeric check needs PyTorch and MindSpore: {INSTALL_HINT}"


@dataclass(frozen=True)
class Frameworks:
    torch: ModuleType
    mindspore: ModuleType
    numpy: ModuleType
    torch_seconds: float
    mindspore_seconds: float

    @property
    def import_seconds(self) -> float:
        return self.torch_seconds + self.mindspore_seconds

    def resolve(self, qualified: str):
        """The object a qualified name such as ``mindspore.nn.BatchNorm2d`` names."""
        parts = qualified.split(".")
        for split in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:split]))
            except ImportError:
                continue
            for attr in parts[split:]:
                obj = getattr(obj, attr)
            return obj
        raise ImportError(f"cannot import {qualified}")


@functools.lru_cache(maxsize=None)
def load_frameworks() -> Frameworks:
    """Import numpy, torch and mindspore (seconds: MindSpore alone takes about two). Raises
    FrameworksMissing with the install command when one of them is missing or broken."""
    try:
        import numpy
    except ImportError as exc:
        raise FrameworksMissing(f"cannot import numpy: {exc}") from None
    start = time.perf_counter()
    try:
        import torch
    except ImportError as exc:
        raise FrameworksMissing(f"cannot import torch: {exc}") from None
    middle = time.perf_counter()
    try:
        import mindspore
    except (ImportError, AttributeError) as exc:  # AttributeError: MindSpore 2.10 under NumPy 2
        raise FrameworksMissing(f"cannot import mindspore: {exc}") from None
    end = time.perf_counter()
    # verify's ops are tiny. MindSpore's asynchronous pipeline costs ~3 ms on every read of a
    # result, ten times the op itself, and torch's intra-op threads then fight MindSpore's for the
    # cores (a 0.1 ms op takes 15 ms). Synchronous MindSpore and one torch thread change no numbers.
    mindspore.runtime.launch_blocking()
    torch.set_num_threads(1)
    return Frameworks(torch, mindspore, numpy, middle - start, end - middle)
