"""Reports of a run: JSON for tools, Markdown for people, SARIF 2.1.0 for code scanning in CI."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

from . import __version__
from .findings import Finding
from .runner.files import write_atomic
from .runner.one_file import FileResult
from .runner.parallel import Summary

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVELS = {"error": "error", "warning": "warning", "info": "note"}
INFORMATION_URI = "https://pypi.org/project/torch2ms/"


def summary_dict(summary: Summary) -> dict:
    return {
        "files_scanned": summary.scanned,
        "files_changed": summary.changed,
        "files_with_errors": len(summary.errors),
        "sites_converted": summary.sites_converted,
        "findings": summary.findings_by_severity(),
        "interrupted": summary.interrupted,
    }


def _reported(summary: Summary) -> list[FileResult]:
    """The files worth a line: changed, with findings, or not (fully) processed."""
    return [f for f in summary.files if f.changed or f.findings or f.skipped]


def to_json(summary: Summary) -> str:
    files = [{
        "path": f.path,
        "changed": f.changed,
        "error": f.error,
        "problems": f.problems,
        "findings": [x.to_dict() for x in f.findings],
        "remaining_torch": f.remaining_torch,
    } for f in _reported(summary)]
    return json.dumps({"tool": "torch2ms", "version": __version__, "summary": summary_dict(summary),
                       "files": files}, indent=2) + "\n"


def _where(f: Finding) -> str:
    cell = getattr(f, "cell", None)
    position = f"{f.line}:{f.column + 1}"
    return f"cell {cell}, {position}" if cell else position


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(summary: Summary) -> str:
    s = summary_dict(summary)
    counts = s["findings"]
    lines = [
        "# torch2ms report",
        "",
        f"- files scanned: {s['files_scanned']}",
        f"- files changed: {s['files_changed']}",
        f"- sites converted: {s['sites_converted']}",
        f"- findings: {counts['error']} error, {counts['warning']} warning, {counts['info']} info",
        f"- files not (fully) processed: {s['files_with_errors']}",
    ]
    if summary.interrupted:
        lines.append("- **interrupted**: the files not listed were not processed")
    lines.append("")
    for f in _reported(summary):
        state = ("not processed" if f.error else ("changed" if f.written else "would change") if f.changed
                 else "unchanged")
        lines += [f"## {f.path} ({state})", ""]
        if f.error:
            lines += [f"**not processed**: {_md(f.error)}", ""]
        for problem in f.problems:
            lines += [f"**left as it was**: {_md(problem)}", ""]
        if f.findings:
            lines += ["| where | code | severity | message |", "|---|---|---|---|"]
            lines += [f"| {_where(x)} | {x.code} | {x.severity} | {_md(x.message)} |" for x in f.findings]
            lines.append("")
        if f.remaining_torch:
            lines += ["torch APIs that remain: " + ", ".join(f"`{r}`" for r in f.remaining_torch), ""]
    return "\n".join(lines)


# -- SARIF -----------------------------------------------------------------------------------


ROOT_MARKERS = (".git", "pyproject.toml")  # in order of preference


def project_root(paths: list[str]) -> Path:
    """The directory SARIF locations are relative to: the top of the git work tree that holds the
    reported files (the nearest directory with a ``.git`` above them), else the nearest directory
    with a ``pyproject.toml``, else the working directory. Code scanning resolves relative paths
    against the repository, so however a path was spelled on the command line, its ``uri`` is the
    same."""
    cwd = Path.cwd()
    if not paths:
        return cwd
    common = Path(os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths]))
    for marker in ROOT_MARKERS:
        for directory in (common, *common.parents):
            if (directory / marker).exists():
                return directory
    return cwd


def _artifact(path: str, root: Path) -> dict:
    absolute = os.path.abspath(path)
    try:
        relative = os.path.relpath(absolute, root)
    except ValueError:  # another drive
        relative = absolute
    if relative == os.pardir or relative.startswith(os.pardir + os.sep) or os.path.isabs(relative):
        return {"uri": Path(absolute).as_uri()}  # outside the project: an absolute file URI
    return {"uri": quote(relative.replace(os.sep, "/")), "uriBaseId": "%SRCROOT%"}


def _region(f: Finding) -> dict:
    cell = getattr(f, "cell", None)
    if cell:
        # A notebook: the line of the .ipynb file that stores the source line; columns there
        # would count JSON escapes, so none are given.
        return {"startLine": getattr(f, "file_line", None) or 1}
    region = {"startLine": f.line, "startColumn": f.column + 1}
    if f.end_line is not None and f.end_column is not None:
        region["endLine"] = f.end_line
        region["endColumn"] = f.end_column + 1  # exclusive, as ours
    return region


def _rules() -> list[dict]:
    from .ruleset import RuleError, default_rules

    try:
        specs = default_rules().findings
    except RuleError:
        return []
    return [{"id": code, "name": code, "shortDescription": {"text": spec.title},
             "defaultConfiguration": {"level": SARIF_LEVELS[spec.severity]}}
            for code, spec in sorted(specs.items())]


def to_sarif(summary: Summary) -> str:
    root = project_root([f.path for f in summary.files])
    rules = _rules()
    index = {r["id"]: i for i, r in enumerate(rules)}
    results = []
    for f in summary.files:
        for x in f.findings:
            if x.code not in index:
                index[x.code] = len(rules)
                rules.append({"id": x.code, "name": x.code, "shortDescription": {"text": x.code}})
            cell = getattr(x, "cell", None)
            result = {
                "ruleId": x.code,
                "ruleIndex": index[x.code],
                "level": SARIF_LEVELS.get(x.severity, "warning"),
                "message": {"text": f"cell {cell}, line {x.line}: {x.message}" if cell else x.message},
                "locations": [{"physicalLocation": {"artifactLocation": _artifact(f.path, root), "region": _region(x)}}],
            }
            if cell:
                result["properties"] = {"cell": cell, "cellLine": x.line, "cellColumn": x.column + 1}
            results.append(result)
    notifications = []
    for f in summary.files:
        for text in ([f.error] if f.error else []) + f.problems:
            notifications.append({
                "level": "error",
                "message": {"text": f"{f.path}: {text}"},
                "locations": [{"physicalLocation": {"artifactLocation": _artifact(f.path, root)}}],
            })
    run = {
        "tool": {"driver": {"name": "torch2ms", "version": __version__, "semanticVersion": __version__,
                            "informationUri": INFORMATION_URI, "rules": rules}},
        "originalUriBaseIds": {"%SRCROOT%": {"uri": root.as_uri() + "/"}},
        "columnKind": "unicodeCodePoints",
        "invocations": [{"executionSuccessful": not summary.interrupted,
                         "toolExecutionNotifications": notifications}],
        "results": results,
    }
    return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2) + "\n"


WRITERS = {".json": to_json, ".md": to_markdown, ".sarif": to_sarif}


def write_report(summary: Summary, path: Path) -> None:
    writer = WRITERS.get(path.suffix.lower())
    if writer is None:
        raise ValueError(f"unknown report format {path.suffix!r}: use one of {', '.join(sorted(WRITERS))}")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(str(path), writer(summary).encode("utf-8"), durable=False)
