"""The whole-model check's report: a table of the largest differences, the first diverging layer, and
what the check could not use; or JSON."""

from __future__ import annotations

import json

from .model import ERROR, PASS, ModelCheck

FAILED_SHOWN = 5
NAMES_SHOWN = 8
KEPT_SHOWN = 3


def to_json(check: ModelCheck, torch_seconds: float = 0.0, mindspore_seconds: float = 0.0) -> str:
    data = check.to_dict()
    data["seconds"] = {"torch_import": round(torch_seconds, 3), "mindspore_import": round(mindspore_seconds, 3),
                       "check": round(check.seconds, 3)}
    return json.dumps(data, indent=2)


def table(check: ModelCheck) -> str:
    where = check.path or "<source>"
    against = f" against {check.migrated_path}" if check.migrated_path else ""
    out = [f"{where}{against}: {check.model} on seeded batches of shape {_shape(check.input_shape)}: "
           f"{check.steps} training steps, then inference"]
    if check.status == ERROR:
        out.append(f"error: {check.reason}")
        out.extend(f"    {left.describe()}" for left in check.left)
        out.extend(f"warning: {w}" for w in check.warnings)
        return "\n".join(out)
    rows = [("compared", "max abs", "max rel", "result")]
    notes: dict[int, list[str]] = {}
    largest = check.largest()
    outputs = [row for row in largest if row[0] not in check.statistics]
    for quantity, max_abs, max_rel, passed in outputs:
        rows.append((quantity, _number(max_abs), _number(max_rel), "PASS" if passed else "FAIL"))
        notes[len(rows) - 1] = [_failure(c) for c in check.failed if c.quantity == quantity][:1]
    statistics = [row for row in largest if row[0] in check.statistics]
    if statistics:
        passed = all(row[3] for row in statistics)
        rows.append((f"buffers ({len(statistics)}), after every pass", _number(max(r[1] for r in statistics)),
                     _number(max(r[2] for r in statistics)), "PASS" if passed else "FAIL"))
        failing = [c for c in check.failed if c.quantity in check.statistics]
        first_each = list({c.quantity: c for c in reversed(failing)}.values())[::-1]
        notes[len(rows) - 1] = [_failure(c) for c in first_each[:FAILED_SHOWN]] + (
            [f"... and {len(first_each) - FAILED_SHOWN} more"] if len(first_each) > FAILED_SHOWN else [])
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    for i, row in enumerate(rows):
        out.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        out.extend(f"    {line}" for line in notes.get(i, []))
    if check.status != PASS and check.reason and not check.failed:
        out.append(f"FAIL: {check.reason}")
    if check.divergence is not None:
        label = "first diverging layer" if check.status != PASS else \
            "note: a layer differs beyond tolerance, though the outputs and buffers agree"
        out.append(f"{label}: {check.divergence.describe()}")
    if check.layers:
        out.append(f"layers compared: {len(check.layers)}, paired by name"
                   + (f"; torch layers with no MindSpore cell at their path: {_names(check.unpaired)}"
                      if check.unpaired else ""))
    if check.held_in_inference:
        out.append(f"run as in inference during the training steps (random in training): "
                   f"{_names(check.held_in_inference)}")
    if check.kept_initial:
        out.append(f"MindSpore parameters with no torch counterpart, at their initial values: {len(check.kept_initial)} "
                   f"({_names(check.kept_initial, KEPT_SHOWN)})")
    out.extend(f"warning: {w}" for w in check.warnings)
    return "\n".join(out)


def summary(check: ModelCheck, torch_seconds: float, mindspore_seconds: float) -> str:
    return (f"torch2ms verify: {check.model}: {check.status} (atol {check.tolerance.atol:g}, rtol "
            f"{check.tolerance.rtol:g}, {check.steps} training steps)\n"
            f"frameworks imported in {torch_seconds + mindspore_seconds:.2f} s (torch {torch_seconds:.2f} s, "
            f"MindSpore {mindspore_seconds:.2f} s); the check took {check.seconds:.2f} s")


def _failure(c) -> str:
    return (f"{c.phase}: {c.quantity} max abs {_number(c.max_abs)}, max rel {_number(c.max_rel)}"
            + (f" ({c.detail})" if c.detail else ""))


def _names(names: list[str], limit: int = NAMES_SHOWN) -> str:
    shown = ", ".join(n or "(the model)" for n in names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def _shape(shape) -> str:
    return ",".join(str(d) for d in shape)


def _number(value: float) -> str:
    return f"{value:.2g}"
