"""Findings: what the tool changed or could not change safely, at a position in the ORIGINAL source."""

from __future__ import annotations

from dataclasses import dataclass

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    """One reportable fact about a site.

    ``line`` is 1-based and ``column`` 0-based, both in the original source; the column counts
    code points (front ends convert, e.g. the language server to UTF-16 units).
    """

    code: str
    severity: str
    line: int
    column: int
    message: str
    path: str | None = None
    end_line: int | None = None
    end_column: int | None = None

    def sort_key(self) -> tuple:
        return (self.path or "", self.line, self.column, self.code, self.message)

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
        }

    def format(self) -> str:
        where = f"{self.path}:" if self.path else ""
        return f"{where}{self.line}:{self.column + 1}: {self.code} [{self.severity}] {self.message}"


@dataclass(frozen=True)
class FindingSpec:
    """A code from rules/findings.toml: its severity and one-line title."""

    code: str
    severity: str
    title: str
