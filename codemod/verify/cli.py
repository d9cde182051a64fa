"""``torch2ms verify``: a thin front end over ``codemod.verify`` (frameworks imported only when
the command runs)."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import click

from ..options import (
    common_base,
    config_from,
    project_config,
    selection,
    selection_options,
)
from .compare import DEFAULT_ATOL, DEFAULT_RTOL, Tolerance

EXIT_OK, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--against", type=click.Path(path_type=Path, dir_okay=False), metavar="MIGRATED",
              help="Check the calls of this migrated file (edited by hand, say) instead of migrating ORIGINAL in memory; sites are paired per layer, in order, and its training-mode calls must be those the migration makes. With --model: the MindSpore model is built from it.")
@click.option("--bind", "binds", multiple=True, metavar="NAME=VALUE",
              help="Value for a free name in the arguments (repeatable), e.g. --bind momentum=0.01 --bind cfg.eps=1e-3.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--atol", type=click.FloatRange(min=0), default=DEFAULT_ATOL, show_default=True,
              help="Absolute tolerance (float32; half-precision layers use at least 1e-2).")
@click.option("--rtol", type=click.FloatRange(min=0), default=DEFAULT_RTOL, show_default=True,
              help="Relative tolerance.")
@click.option("--steps", type=click.IntRange(1, 1000), default=3, show_default=True,
              help="Training steps before switching to inference.")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip paths matching GLOB (repeatable).")
@click.option("--model", "model_text", metavar="CLASS(ARGS)",
              help="Check the whole model: build CLASS with these arguments (Python literals, e.g. 'ResNet18()') "
                   "from the file and from its migration, give both the same weights, and compare them over "
                   "--steps training passes and one in inference (runs the file as a module).")
@click.option("--input-shape", metavar="N,C,...", help="With --model: the shape of the random input batches.")
@selection_options
def verify(paths, against, binds, as_json, atol, rtol, steps, exclude, model_text, input_shape, select,
           extend_select, ignore):
    """Prove each normalization layer's migration numerically: build the original under PyTorch and
    the migrated one under MindSpore from the source's own arguments, run both on the same seeded
    tensors, and compare.

    \b
    torch2ms verify PATH...                   migrate in memory and check every site (.py, .ipynb)
    torch2ms verify ORIGINAL --against MIGRATED   check a migrated file edited by hand
    torch2ms verify FILE --model 'Net()' --input-shape 2,3,32,32   check the whole model

    Exit 0 when every checked site passes, 1 on any FAIL, 2 on usage or environment errors.
    """
    from ..model import MigrationError
    from ..runner.files import is_notebook
    from . import load_frameworks, parse_binding, verify_file
    from .frameworks import FrameworksMissing
    from .report import Report

    bindings = {}
    for text in binds:
        try:
            key, value = parse_binding(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--bind") from None
        bindings[key] = value
    missing = [p for p in [*paths, *([against] if against else [])] if not p.exists()]
    if missing:
        raise click.BadParameter(f"no such file or directory: {missing[0]}", param_hint="PATHS")
    if against is not None and (len(paths) != 1 or paths[0].is_dir()):
        raise click.UsageError("--against takes exactly one ORIGINAL file")
    # The same selection as migrate: the options, and [tool.torch2ms] of the nearest pyproject.toml.
    chosen, ignored = selection(select, extend_select, ignore, project_config(common_base(paths)))
    config = replace(config_from(True, None, chosen, ignored), mindspore_version=None)
    if model_text is not None or input_shape is not None:
        shape = _model_options(paths, against, model_text, input_shape, binds, exclude)
        _verify_model(paths[0], against, model_text, shape, Tolerance(atol, rtol), steps, as_json, config)

    try:
        fw = load_frameworks()
    except FrameworksMissing as exc:
        click.echo(f"torch2ms verify: {exc}", err=True)
        sys.exit(EXIT_ERROR)

    tolerance = Tolerance(atol, rtol)
    report = Report(tolerance=tolerance, steps=steps, torch_import_seconds=fw.torch_seconds,
                    mindspore_import_seconds=fw.mindspore_seconds)

    start = time.perf_counter()
    files = [paths[0]] if against is not None else python_files(paths, exclude)
    # The files' project: a model defined in one file and built in another is checked as migrate
    # converts it.
    from ..facts.project import Project

    config = replace(config, project=Project.around([str(p) for p in paths]))
    for path in files:
        display = _display(path)
        try:
            checks, problems = verify_file(
                read(path), path=display, notebook=is_notebook(str(path)),
                against=read(against) if against is not None else None,
                against_path=_display(against) if against else None,
                against_notebook=against is not None and is_notebook(str(against)),
                bindings=bindings, tolerance=tolerance, steps=steps, frameworks=fw, config=config)
            report.checks.extend(checks)
            report.errors.extend((display, problem) for problem in problems)
        except (OSError, ValueError, SyntaxError, MigrationError) as exc:  # report it, check the others
            report.errors.append((display, str(exc)))
    report.check_seconds = time.perf_counter() - start

    if as_json:
        click.echo(report.to_json())
    else:
        if report.checks or report.errors:
            click.echo(report.table())
        click.echo(report.summary(), err=True)
    sys.exit(report.exit_code)


def _model_options(paths, against, model_text, input_shape, binds, exclude) -> tuple[int, ...]:
    """The whole-model check's usage rules; the input shape."""
    from ..runner.files import is_notebook

    if model_text is None:
        raise click.UsageError("--input-shape is for the whole-model check: give --model too")
    if input_shape is None:
        raise click.UsageError("--model needs --input-shape (the shape of the input batches, e.g. 2,3,32,32)")
    if len(paths) != 1 or paths[0].is_dir() or is_notebook(str(paths[0])):
        raise click.UsageError("--model takes exactly one Python file, the one that defines the model")
    if against is not None and is_notebook(str(against)):
        raise click.UsageError("with --model, --against takes the migrated Python file")
    if binds or exclude:
        raise click.UsageError("--bind and --exclude are for the per-layer check, not for --model")
    try:
        return parse_shape(input_shape)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--input-shape") from None


def parse_shape(text: str) -> tuple[int, ...]:
    """``2,3,32,32`` (or ``2x3x32x32``) as a shape."""
    import re

    parts = [p for p in re.split(r"[,x\s]+", text.strip()) if p]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"expected positive integers like 2,3,32,32, got {text!r}")
    return tuple(int(p) for p in parts)


def _verify_model(path: Path, against: Path | None, model_text: str, shape, tolerance, steps: int,
                  as_json: bool, config) -> None:
    """The whole-model check of one file; exits."""
    from ..facts.project import Project
    from ..model import Config
    from . import load_frameworks
    from .frameworks import FrameworksMissing
    from .model import verify_model
    from .model_report import summary, table, to_json

    try:
        fw = load_frameworks()
    except FrameworksMissing as exc:
        click.echo(f"torch2ms verify: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    texts = []
    for file in [path, *([against] if against is not None else [])]:
        try:
            texts.append(read(file))
        except (OSError, ValueError) as exc:
            click.echo(f"torch2ms verify: cannot read {file}: {exc}", err=True)
            sys.exit(EXIT_ERROR)
    source, migrated = texts[0], texts[1] if against is not None else None
    # The file's project, as for the per-layer check: a class of another file is migrated as migrate
    # converts it.
    config = replace(config, project=Project.around([str(path)]))
    check = verify_model(source, path=_display(path), model=model_text, input_shape=shape, migrated=migrated,
                         migrated_path=_display(against) if against is not None else None, steps=steps,
                         tolerance=tolerance, config=config, frameworks=fw)
    if as_json:
        click.echo(to_json(check, fw.torch_seconds, fw.mindspore_seconds))
    else:
        click.echo(table(check))
        click.echo(summary(check, fw.torch_seconds, fw.mindspore_seconds), err=True)
    sys.exit(check.exit_code)


def python_files(paths, excludes=()) -> list[Path]:
    """The files `migrate` would take (same discovery: .gitignore, excludes, no symlinks out of the
    roots), stubs aside unless named: verify checks code that runs, modules and notebooks."""
    from ..runner.discovery import ExcludePattern, discover

    named = {os.path.abspath(p) for p in paths if not p.is_dir()}
    found = discover([str(p) for p in paths], [ExcludePattern(g, os.getcwd()) for g in excludes])
    # Spelled as the user spelled the roots (as `migrate` reports them).
    return [Path(f.display) for f in found.files if f.path.endswith((".py", ".ipynb")) or f.path in named]


def read(path: Path) -> str:
    """Source text as Python decodes it (BOM, PEP 263 cookie, else UTF-8); a notebook's JSON as
    UTF-8."""
    from ..runner.files import decode, decode_json, is_notebook

    data = path.read_bytes()
    return (decode_json(data) if is_notebook(str(path)) else decode(data)).text


def _display(path: Path) -> str:
    return os.path.relpath(path) if not path.is_absolute() else str(path)
