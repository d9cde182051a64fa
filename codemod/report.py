"""Reports of a run: JSON for tools, Markdown for people."""

from __future__ import annotations

import json
from pathlib import Path

from . import __version__
from .runner import Summary


def summary_dict(summary: Summary) -> dict:
    return {
        "files_scanned": summary.scanned,
        "files_changed": summary.changed,
        "files_with_errors": len(summary.errors),
        "sites_converted": summary.sites_converted,
        "findings": summary.findings_by_severity(),
    }


def to_json(summary: Summary) -> str:
    files = []
    for f in summary.files:
        if not (f.changed or f.findings or f.error):
            continue
        files.append({
            "path": f.path,
            "changed": f.changed,
            "error": f.error,
            "findings": [x.to_dict() for x in f.findings],
            "remaining_torch": f.result.remaining_torch if f.result else [],
        })
    return json.dumps({"tool": "torch2ms", "version": __version__, "summary": summary_dict(summary),
                       "files": files}, indent=2) + "\n"


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
        f"- files that could not be processed: {s['files_with_errors']}",
        "",
    ]
    for f in summary.files:
        if not (f.changed or f.findings or f.error):
            continue
        lines.append(f"## {f.path}")
        lines.append("")
        if f.error:
            lines.append(f"**not processed**: {f.error}")
            lines.append("")
            continue
        if f.findings:
            lines.append("| line | column | code | severity | message |")
            lines.append("|---:|---:|---|---|---|")
            for x in f.findings:
                message = x.message.replace("|", "\\|")
                lines.append(f"| {x.line} | {x.column + 1} | {x.code} | {x.severity} | {message} |")
            lines.append("")
        remaining = f.result.remaining_torch if f.result else []
        if remaining:
            lines.append("torch APIs that remain: " + ", ".join(f"`{r}`" for r in remaining))
            lines.append("")
    return "\n".join(lines)


WRITERS = {".json": to_json, ".md": to_markdown}


def write_report(summary: Summary, path: Path) -> None:
    writer = WRITERS.get(path.suffix.lower())
    if writer is None:
        raise ValueError(f"unknown report format {path.suffix!r}: use one of {', '.join(sorted(WRITERS))}")
    path.write_text(writer(summary), encoding="utf-8")
