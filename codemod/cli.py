"""The ``torch2ms`` command line. Thin: every command calls the core (``migrate_source``)."""

from __future__ import annotations

import difflib
import os
import sys
from pathlib import Path

import click

from . import __version__
from .engine import Config, MigrationError, migrate_source
from .ruleset import RuleError, default_rules, parse_version

EXIT_OK, EXIT_CHANGES, EXIT_ERROR = 0, 1, 2


def _config(no_markers: bool, mindspore_version: str | None) -> Config:
    try:
        rules = default_rules()
    except RuleError as exc:
        raise click.UsageError(f"the rules are broken: {exc}") from None
    if mindspore_version:
        try:
            parse_version(mindspore_version)
        except ValueError:
            raise click.BadParameter(f"not a version: {mindspore_version!r}", param_hint="--mindspore-version")
    return Config(markers=not no_markers, mindspore_version=mindspore_version or installed_mindspore(), rules=rules)


def installed_mindspore() -> str | None:
    """The installed MindSpore's version, without importing it (that takes seconds)."""
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("mindspore")
    except (PackageNotFoundError, ValueError):
        return None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="torch2ms")
def main() -> None:
    """Migrate PyTorch normalization layers to MindSpore, and prove the rewrite numerically."""


def _diff(path: str, before: str, after: str) -> str:
    return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                        fromfile=f"a/{path}", tofile=f"b/{path}"))


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, allow_dash=True))
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff; write nothing. Exit 1 if anything would change.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if anything would change.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), help="Write migrated copies under DIR (mirroring the tree) instead of in place.")
@click.option("--report", type=click.Path(path_type=Path, dir_okay=False), help="Write every finding to FILE (.json or .md).")
@click.option("--no-markers", is_flag=True, help="Do not add '# torch2ms: CODE ...' comments at sites left unconverted.")
@click.option("--mindspore-version", metavar="VERSION", help="Target MindSpore version (default: the installed one, else the newest the rules know).")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip paths matching GLOB (repeatable).")
@click.option("--strict", is_flag=True, help="Exit 1 when a file changed (or would change) or an error finding remains (for hooks).")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@click.option("-v", "--verbose", is_flag=True, help="Print info findings too.")
def migrate(paths, show_diff, check, out, report, no_markers, mindspore_version, exclude, strict, quiet, verbose):
    """Migrate PATHS (files or directories; - for stdin) in place."""
    from .report import WRITERS, write_report
    from .runner import FileResult, Summary, decode, discover, migrate_file

    config = _config(no_markers, mindspore_version)
    if report is not None and report.suffix.lower() not in WRITERS:
        raise click.BadParameter(f"use one of {', '.join(sorted(WRITERS))}", param_hint="--report")
    if any(str(p) == "-" for p in paths):
        if len(paths) > 1:
            raise click.UsageError("- (stdin) cannot be combined with other paths")
        return _stdin(config, show_diff, check, strict, quiet, verbose)
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise click.BadParameter(f"no such file or directory: {missing[0]}", param_hint="PATHS")

    write = not (show_diff or check)
    summary = Summary()
    out_base = _common_base(paths) if out is not None else None
    for path, root in discover(paths, exclude):
        display = os.path.relpath(path) if not path.is_absolute() else str(path)
        if out is not None:
            rel = Path(os.path.relpath(path, out_base))
            if rel.parts and rel.parts[0] == "..":
                summary.files.append(FileResult(display, error="outside the given roots: not written"))
                continue
            fr = migrate_file(path, config, out=out, root=out_base, display=display)
        else:
            fr = migrate_file(path, config, write=write, display=display)
        summary.files.append(fr)
        if fr.error:
            click.echo(f"{display}: error: {fr.error}", err=True)
            continue
        if show_diff and fr.changed:
            click.echo(_diff(display, fr.original, fr.result.code), nl=False)
        elif check and fr.changed and not quiet:
            click.echo(f"would migrate {display}", err=True)
        _print_findings(fr.findings, quiet, verbose)

    if report is not None:
        write_report(summary, report)
    if not quiet:
        counts = summary.findings_by_severity()
        verb = "would change" if not write and out is None else "changed"
        click.echo(f"torch2ms: {summary.scanned} files scanned, {summary.changed} {verb}, "
                   f"{summary.sites_converted} sites converted; findings: {counts['error']} error, "
                   f"{counts['warning']} warning, {counts['info']} info"
                   + (f"; {len(summary.errors)} files not processed" if summary.errors else ""), err=True)
    if summary.errors:
        sys.exit(EXIT_ERROR)
    if (show_diff or check or strict) and summary.changed:
        sys.exit(EXIT_CHANGES)
    if strict and summary.findings_by_severity()["error"]:
        sys.exit(EXIT_CHANGES)
    sys.exit(EXIT_OK)


def _common_base(paths) -> Path:
    dirs = [str(p.resolve()) if p.is_dir() else str(p.resolve().parent) for p in paths]
    return Path(os.path.commonpath(dirs))


def _print_findings(findings, quiet: bool, verbose: bool) -> None:
    for f in findings:
        if f.severity == "error" or (not quiet and (verbose or f.severity == "warning")):
            click.echo(f.format(), err=True)


def _stdin(config: Config, show_diff: bool, check: bool, strict: bool, quiet: bool, verbose: bool) -> None:
    from .runner import decode

    data = sys.stdin.buffer.read()
    try:
        decoded = decode(data)
        result = migrate_source(decoded.text, path="<stdin>", config=config)
    except ValueError as exc:
        click.echo(f"<stdin>: error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    except MigrationError as exc:
        click.echo(f"error: {exc}", err=True)
        if not (show_diff or check):
            sys.stdout.buffer.write(data)  # a filter passes through what it cannot change
        sys.exit(EXIT_ERROR)
    _print_findings(result.findings, quiet, verbose)
    if show_diff:
        click.echo(_diff("<stdin>", decoded.text, result.code), nl=False)
    elif not check:
        sys.stdout.buffer.write(result.code.encode(decoded.encoding))
    errors = any(f.severity == "error" for f in result.findings)
    sys.exit(EXIT_CHANGES if ((show_diff or check or strict) and result.changed) or (strict and errors) else EXIT_OK)


def _register_commands() -> None:
    """Each further command lives in its own module, which imports nothing heavy at import time."""
    from .ckpt import convert_ckpt
    from .lsp import lsp
    from .verify.cli import verify

    for command in (verify, lsp, convert_ckpt):
        main.add_command(command)


_register_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
