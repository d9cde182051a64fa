"""The ``torch2ms`` command line. Thin: every command calls the core (``migrate_source``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from . import __version__
from .engine import migrate_source
from .model import Config, MigrationError
from .options import (
    common_base,
    config_from,
    project_config,
    selection,
    selection_options,
)

EXIT_OK, EXIT_CHANGES, EXIT_ERROR = 0, 1, 2


class _Commands(click.Group):
    """``migrate`` is defined here; each other command lives in its own module, imported when that
    command runs (or --help lists it), so a migration does not pay for loading them."""

    elsewhere = {  # name: (module, attribute)
        "convert-ckpt": ("codemod.ckpt.command", "convert_ckpt"),
        "lsp": ("codemod.lsp", "lsp"),
        "rules": ("codemod.rules_table", "rules_command"),
        "verify": ("codemod.verify.cli", "verify"),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.elsewhere})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.elsewhere and name not in self.commands:
            import importlib

            module, attribute = self.elsewhere[name]
            self.add_command(getattr(importlib.import_module(module), attribute), name)
        return super().get_command(ctx, name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="torch2ms")
def main() -> None:
    """Migrate PyTorch normalization layers to MindSpore, and prove the rewrite numerically."""


EXIT_INTERRUPTED = 130  # the shell's code for a run stopped by Ctrl-C


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, allow_dash=True))
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff; write nothing. Exit 1 if anything would change.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if anything would change.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), metavar="DIR", help="Write migrated copies of every file under DIR (mirroring the tree) instead of in place.")
@click.option("--report", type=click.Path(path_type=Path, dir_okay=False), help="Write every finding to FILE: .json, .md or .sarif (SARIF 2.1.0, for code scanning).")
@click.option("--markers/--no-markers", default=None, help="Add (default) or leave out '# torch2ms: CODE ...' comments at sites left unconverted.")
@click.option("--mindspore-version", metavar="VERSION", help="Target MindSpore version (default: [tool.torch2ms], else the installed one, else the newest the rules know).")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip files and directories matching GLOB (repeatable); replaces the exclude list of [tool.torch2ms].")
@click.option("--extend-exclude", multiple=True, metavar="GLOB", help="Like --exclude, but in addition to [tool.torch2ms]'s list.")
@click.option("--no-gitignore", is_flag=True, help="Also take files that .gitignore excludes.")
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=0, show_default="the number of CPUs", help="Processes at work: this one and N-1 workers (0: the number of CPUs). Small runs stay in one process.")
@click.option("--strict", is_flag=True, help="Exit 1 when a file changed (or would change) or an error finding remains (for hooks).")
@click.option("--stdin-filename", metavar="PATH", help="With - (stdin): the file the text stands for. It places the text in its project (what the other files define) and names it in findings and reports.")
@click.option("--no-project", is_flag=True, help="Read each file alone, without what the other files of its project define.")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors; no progress bar.")
@click.option("-v", "--verbose", is_flag=True, help="Print info findings too.")
@selection_options
def migrate(paths, show_diff, check, out, report, markers, mindspore_version, exclude, extend_exclude, no_gitignore,
            jobs, strict, stdin_filename, no_project, quiet, verbose, select, extend_select, ignore):
    """Migrate PATHS (files or directories; - for stdin) in place.

    Directories contribute *.py, *.pyi and *.ipynb files, honouring .gitignore inside a git work
    tree; names starting with a dot and virtual environments are skipped. Settings are read from
    [tool.torch2ms] in the nearest pyproject.toml (exclude, markers, mindspore-version, select,
    extend-select, ignore); options given here win.
    """
    from .report import WRITERS

    if report is not None and report.suffix.lower() not in WRITERS:
        raise click.BadParameter(f"use one of {', '.join(sorted(WRITERS))}", param_hint="--report")
    if any(str(p) == "-" for p in paths):
        if len(paths) > 1:
            raise click.UsageError("- (stdin) cannot be combined with other paths")
        if out is not None:
            raise click.UsageError("--out writes copies of files; with - (stdin) the result goes to stdout")
        where = Path(stdin_filename).resolve().parent if stdin_filename else Path.cwd()
        project = project_config(where)
        config = config_from(_first(markers, project.markers, True), mindspore_version or project.mindspore_version,
                         *selection(select, extend_select, ignore, project))
        return _stdin(config, stdin_filename, not no_project, report, show_diff, check, strict, quiet, verbose)
    if stdin_filename is not None:
        raise click.UsageError("--stdin-filename goes with - (stdin)")
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise click.BadParameter(f"no such file or directory: {missing[0]}", param_hint="PATHS")
    from .runner.discovery import ExcludePattern, discover
    from .runner.one_file import FileTask, Settings
    from .runner.parallel import Interrupted, Summary, default_jobs, run

    base = common_base(paths)
    project = project_config(base)
    config = config_from(_first(markers, project.markers, True), mindspore_version or project.mindspore_version,
                     *selection(select, extend_select, ignore, project))
    cwd = os.getcwd()
    excludes = [ExcludePattern(g, cwd) for g in exclude] if exclude else list(project.exclude)
    excludes += [ExcludePattern(g, cwd) for g in extend_exclude]
    out_dir = _out_dir(out, base, paths) if out is not None else None
    found = discover([str(p) for p in paths], excludes, skip=[out_dir] if out_dir else (),
                     use_git=not no_gitignore)
    for note in found.notes:
        click.echo(f"torch2ms: {note}", err=True)
    tasks = []
    for i, f in enumerate(found.files):
        target = os.path.relpath(f.path, base) if out_dir else None  # both absolute, neither resolved
        tasks.append(FileTask(i, f.path, f.display, target, f.size))
    settings = Settings(markers=config.markers, mindspore_version=config.mindspore_version,
                        select=config.select, ignore=config.ignore,
                        write=not (show_diff or check), diff=show_diff, out=out_dir,
                        project=None if no_project else _read_project([str(p) for p in paths], config))

    summary = Summary()
    long_run = len(tasks) >= _Progress.MIN_FILES
    progress = _Progress(len(tasks)) if long_run and not quiet and _is_terminal(sys.stderr) else None

    def show(fr) -> None:
        summary.files.append(fr)
        output = _file_output(fr, show_diff, check, quiet, verbose)
        if output and progress is not None:
            progress.clear()
        for text, to_stderr in output:
            click.echo(text, err=to_stderr, nl=False)

    try:
        run(tasks, settings, jobs=jobs or default_jobs(), on_result=show,
            on_progress=progress.update if progress is not None else None)
    except Interrupted:
        summary.interrupted = True
    if progress is not None:
        progress.clear()
    report_failed = report is not None and not _write_report(summary, report)
    if summary.interrupted:
        click.echo(f"torch2ms: interrupted: {summary.scanned} of {len(tasks)} files processed, the others not "
                   "touched; every file written is complete", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if not quiet:
        _print_summary(summary, settings, out)
    if summary.errors or report_failed:
        sys.exit(EXIT_ERROR)
    if (show_diff or check or strict) and summary.changed:
        sys.exit(EXIT_CHANGES)
    if strict and summary.findings_by_severity()["error"]:
        sys.exit(EXIT_CHANGES)
    sys.exit(EXIT_OK)


def _read_project(paths: list[str], config: Config, texts: dict | None = None):
    """The project the paths belong to, every file read now (before any is rewritten)."""
    from .facts.project import Project

    project = Project.around(paths, config.rules, texts)
    project.snapshot()
    return project


def _first(*values):
    return next(v for v in values if v is not None)


def _out_dir(out: Path, base: Path, paths) -> str:
    """--out DIR, resolved and created; refused where copies could land on the sources."""
    resolved = os.path.realpath(out)
    real_base = os.path.realpath(base)
    if resolved == real_base:
        raise click.BadParameter("must not be the directory being migrated (that is what in place means)", param_hint="--out")
    for p in paths:
        real = os.path.realpath(p)
        if real == resolved or real.startswith(resolved + os.sep):
            raise click.BadParameter(f"{p} lies inside the output directory", param_hint="--out")
    try:
        os.makedirs(resolved, exist_ok=True)
    except OSError as exc:
        raise click.BadParameter(f"cannot create {out}: {exc.strerror or exc}", param_hint="--out") from None
    return resolved


def _write_report(summary, path: Path) -> bool:
    from .report import write_report

    try:
        write_report(summary, path)
        return True
    except OSError as exc:
        click.echo(f"torch2ms: cannot write the report {path}: {exc.strerror or exc}", err=True)
        return False


def _file_output(fr, show_diff: bool, check: bool, quiet: bool, verbose: bool) -> list[tuple[str, bool]]:
    """What a file's result prints: (text, to stderr), in order."""
    out = []
    if fr.error:
        out.append((f"{fr.path}: error: {fr.error}\n", True))
        if verbose and fr.detail:
            out.append((fr.detail, True))
    out += [(f"{fr.path}: error: {problem}\n", True) for problem in fr.problems]
    if show_diff and fr.diff:
        out.append((fr.diff, False))
    elif check and fr.changed and not quiet:
        out.append((f"would migrate {fr.path}\n", True))
    out += [(f.format() + "\n", True) for f in fr.findings if _shown(f, quiet, verbose)]
    return out


def _print_summary(summary, settings, out) -> None:
    counts = summary.findings_by_severity()
    verb = "changed" if settings.write else "would change"
    where = f" (copies under {out})" if out is not None else ""
    skipped = len(summary.errors)
    click.echo(f"torch2ms: {_count(summary.scanned, 'file')} scanned, {summary.changed} {verb}{where}, "
               f"{_count(summary.sites_converted, 'site')} converted; findings: {counts['error']} error, "
               f"{counts['warning']} warning, {counts['info']} info"
               + (f"; {_count(skipped, 'file')} not (fully) processed" if skipped else ""), err=True)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _Progress:
    """A one-line bar on stderr for runs over many files: redrawn at most ten times a second,
    wiped before any other output."""

    MIN_FILES, INTERVAL, WIDTH = 50, 0.1, 30

    def __init__(self, total: int):
        import time

        self.clock = time.monotonic
        self.total = total
        self.drawn_at = 0.0
        self.visible = False

    def update(self, done: int) -> None:
        now = self.clock()
        if now - self.drawn_at < self.INTERVAL and done < self.total:
            return
        filled = self.WIDTH * done // max(self.total, 1)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{self.total} files")
        sys.stderr.flush()
        self.drawn_at = now
        self.visible = True

    def clear(self) -> None:
        if self.visible:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self.visible = False


def _shown(finding, quiet: bool, verbose: bool) -> bool:
    return finding.severity == "error" or (not quiet and (verbose or finding.severity == "warning"))


def _print_findings(findings, quiet: bool, verbose: bool) -> None:
    for f in findings:
        if _shown(f, quiet, verbose):
            click.echo(f.format(), err=True)


def _stdin(config: Config, filename: str | None, use_project: bool, report: Path | None, show_diff: bool,
           check: bool, strict: bool, quiet: bool, verbose: bool) -> None:
    from dataclasses import replace

    from .notebook import count_converted
    from .runner.files import decode, unified_diff
    from .runner.one_file import FileResult
    from .runner.parallel import Summary

    display = filename or "<stdin>"
    data = sys.stdin.buffer.read()
    fr = FileResult(display)
    summary = Summary([fr])

    def fail(message: str) -> None:
        click.echo(message, err=True)
        fr.error = message
        if not (show_diff or check):
            sys.stdout.buffer.write(data)  # a filter passes through what it cannot change
        if report is not None:
            _write_report(summary, report)
        sys.exit(EXIT_ERROR)

    try:
        decoded = decode(data)
    except ValueError as exc:
        return fail(f"{display}: error: {exc}")
    if filename and use_project:
        # The text on stdin stands for the file: the project sees it, not the file on disk.
        config = replace(config, project=_read_project([filename], config, {os.path.abspath(filename): decoded.text}))
    try:
        result = migrate_source(decoded.text, path=display, config=config)
    except MigrationError as exc:
        return fail(f"error: {exc}")
    fr.findings = result.findings
    fr.changed = result.changed
    fr.sites_converted = count_converted(result)
    fr.remaining_torch = list(result.remaining_torch)
    _print_findings(result.findings, quiet, verbose)
    if show_diff:
        click.echo(unified_diff(display, decoded.text, result.code), nl=False)
    elif not check:
        sys.stdout.buffer.write(result.code.encode(decoded.encoding))
    if report is not None and not _write_report(summary, report):
        sys.exit(EXIT_ERROR)
    errors = any(f.severity == "error" for f in result.findings)
    sys.exit(EXIT_CHANGES if ((show_diff or check or strict) and result.changed) or (strict and errors) else EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
