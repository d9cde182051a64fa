"""The verify report: a table per site, or JSON."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from .check import FAIL, PASS, SKIP, SiteCheck
from .compare import Tolerance

ARGUMENTS_WIDTH = 44


@dataclass
class Report:
    checks: list[SiteCheck] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, message): files not checked
    torch_import_seconds: float = 0.0
    mindspore_import_seconds: float = 0.0
    check_seconds: float = 0.0
    tolerance: Tolerance = Tolerance()
    steps: int = 3

    def count(self, status: str) -> int:
        return sum(1 for c in self.checks if c.status == status)

    @property
    def exit_code(self) -> int:
        if self.errors:
            return 2
        return 1 if self.count(FAIL) else 0

    def to_json(self) -> str:
        return json.dumps({
            "sites": [c.to_dict() for c in self.checks],
            "summary": {"pass": self.count(PASS), "fail": self.count(FAIL), "skip": self.count(SKIP),
                        "errors": len(self.errors)},
            "errors": [{"path": p, "message": m} for p, m in self.errors],
            "tolerance": {"atol": self.tolerance.atol, "rtol": self.tolerance.rtol},
            "steps": self.steps,
            "seconds": {"torch_import": round(self.torch_import_seconds, 3),
                        "mindspore_import": round(self.mindspore_import_seconds, 3),
                        "checks": round(self.check_seconds, 3)},
        }, indent=2)

    def table(self) -> str:
        rows = [("site", "layer", "arguments", "max abs", "max rel", "result")]
        notes: dict[int, list[str]] = {}
        for i, c in enumerate(self.checks, 1):
            where = f"{c.path or '<source>'}:{_cell(c.cell)}{c.line}"
            if c.migrated_path and c.migrated_line and c.migrated_path != c.path:
                where += f" -> {os.path.basename(c.migrated_path)}:{_cell(c.migrated_cell)}{c.migrated_line}"
            rows.append((where, c.layer.rsplit(".", 1)[-1], _shorten(c.arguments), _number(c.max_abs),
                         _number(c.max_rel), c.status))
            lines = []
            if c.status != PASS and c.reason and not c.failed:
                lines.append(c.reason)
            for comp in c.failed[:3]:
                lines.append(f"{comp.phase}: {comp.quantity} max abs {_number(comp.max_abs)}, max rel "
                             f"{_number(comp.max_rel)}" + (f" ({comp.detail})" if comp.detail else ""))
            if c.sampled:
                lines.append("sampled: " + ", ".join(f"{k}={c.bindings[k]}" for k in c.sampled))
            if lines:
                notes[i] = lines
        widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
        out = []
        for i, row in enumerate(rows):
            out.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
            out.extend(f"    {line}" for line in notes.get(i, []))
        for path, message in self.errors:
            out.append(f"{path}: error: {message}")
        return "\n".join(out)

    def summary(self) -> str:
        return (f"torch2ms verify: {len(self.checks)} sites: {self.count(PASS)} PASS, {self.count(FAIL)} FAIL, "
                f"{self.count(SKIP)} SKIP" + (f"; {len(self.errors)} files not checked" if self.errors else "")
                + f" (atol {self.tolerance.atol:g}, rtol {self.tolerance.rtol:g}, {self.steps} training steps)\n"
                f"frameworks imported in {self.torch_import_seconds + self.mindspore_import_seconds:.2f} s "
                f"(torch {self.torch_import_seconds:.2f} s, MindSpore {self.mindspore_import_seconds:.2f} s); "
                f"checks took {self.check_seconds:.2f} s")


def _cell(cell: int | None) -> str:
    """A notebook position as migrate writes it: ``nb.ipynb:cell_3:2``."""
    return f"cell_{cell}:" if cell else ""


def _shorten(text: str) -> str:
    return text if len(text) <= ARGUMENTS_WIDTH else text[: ARGUMENTS_WIDTH - 3] + "..."


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2g}"
