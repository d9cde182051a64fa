"""Comparing a torch result with a MindSpore result: max absolute and relative error against a
tolerance. numpy is imported by the caller's arrays, not here."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

DEFAULT_ATOL = 1e-5
DEFAULT_RTOL = 1e-4
# The defaults hold for float32. Half-precision layers round to ~3 significant digits, so their
# tolerance is at least this (the larger of this and what the user asked for).
HALF_PRECISION_FLOOR = {"float16": (1e-2, 1e-2), "bfloat16": (5e-2, 5e-2)}


@dataclass(frozen=True)
class Tolerance:
    atol: float = DEFAULT_ATOL
    rtol: float = DEFAULT_RTOL

    def for_dtype(self, dtype_name: str) -> "Tolerance":
        floor = HALF_PRECISION_FLOOR.get(dtype_name)
        if floor is None:
            return self
        return Tolerance(max(self.atol, floor[0]), max(self.rtol, floor[1]))


@dataclass
class Comparison:
    """One compared quantity at one point of the protocol."""

    phase: str  # "init", "train 1".."train K", "eval", or a record name
    quantity: str  # "output", "running_mean/moving_mean", ...
    max_abs: float
    max_rel: float
    passed: bool
    detail: str = ""  # why it failed when the numbers cannot say (shape, missing value)

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("max_abs", "max_rel"):  # JSON has no inf/nan
            if not math.isfinite(d[key]):
                d[key] = str(d[key])
        return d


def compare_arrays(phase: str, quantity: str, expected, actual, tolerance: Tolerance) -> Comparison:
    """``expected`` is torch's value, ``actual`` MindSpore's, both numpy arrays (or numbers).
    Passes when every element satisfies |actual - expected| <= atol + rtol * |expected|; NaN equals
    NaN. The relative error is taken over elements at least atol in size, where it means something."""
    import numpy as np

    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if expected.shape != actual.shape:
        return Comparison(phase, quantity, math.inf, math.inf, False,
                          f"shape {tuple(actual.shape)} (MindSpore) != {tuple(expected.shape)} (torch)")
    if expected.size == 0:
        return Comparison(phase, quantity, 0.0, 0.0, True)
    both_nan = np.isnan(expected) & np.isnan(actual)
    with np.errstate(invalid="ignore"):
        diff = np.where(both_nan, 0.0, np.abs(actual - expected))
    diff = np.where(np.isnan(diff), np.inf, diff)  # NaN on one side only
    size = np.abs(np.where(np.isnan(expected), 0.0, expected))
    passed = bool(np.all(diff <= tolerance.atol + tolerance.rtol * size))
    significant = size >= tolerance.atol
    max_rel = float(np.max(diff[significant] / size[significant])) if significant.any() else 0.0
    detail = "NaN on one side only" if np.isinf(diff).any() and not np.isinf(expected).any() else ""
    return Comparison(phase, quantity, float(diff.max()), max_rel, passed, detail)
