"""What the front ends that migrate (``migrate``, ``verify``, ``lsp``) share: the options that
choose the rules and the target, read with ``[tool.torch2ms]``, into a ``Config``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .model import Config
from .ruleset import RuleError, default_rules, parse_version


def validated_version(version: str | None, hint: str) -> str | None:
    if version:
        try:
            parse_version(version)
        except ValueError:
            raise click.BadParameter(f"not a version: {version!r}", param_hint=hint) from None
    return version


def installed_mindspore() -> str | None:
    """The installed MindSpore's version, without importing it (that takes seconds) or
    importlib.metadata (20 ms of every run): the name of its .dist-info directory says it."""
    import re

    pattern = re.compile(r"mindspore-([^-]+)\.(?:dist|egg)-info", re.IGNORECASE)
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            match = pattern.fullmatch(name)
            if match:
                return match.group(1)
    return None


def shipped_rules():
    try:
        return default_rules()
    except RuleError as exc:
        raise click.UsageError(f"the rules are broken: {exc}") from None


def config_from(markers: bool, mindspore_version: str | None, select: tuple[str, ...] = (),
                ignore: tuple[str, ...] = ()) -> Config:
    """The Config the options (and [tool.torch2ms]) ask for; a usage error for what is unknown."""
    rules = shipped_rules()
    version = validated_version(mindspore_version, "--mindspore-version")
    config = Config(markers=markers, mindspore_version=version or installed_mindspore(), rules=rules,
                    select=select, ignore=ignore)
    try:
        rules.selected(select, ignore)
    except RuleError as exc:
        raise click.BadParameter(str(exc), param_hint="--select/--ignore") from None
    return config


def project_config(base: Path):
    from .runner.settings import ConfigError, load_project_config

    try:
        project = load_project_config(str(base))
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    validated_version(project.mindspore_version, f"mindspore-version in {project.path}")
    return project


def common_base(paths) -> Path:
    dirs = [os.path.abspath(p) if p.is_dir() else os.path.dirname(os.path.abspath(p)) for p in paths]
    return Path(os.path.commonpath(dirs))


def selectors(values) -> tuple[str, ...]:
    """--select a,b --select c: ("a", "b", "c")."""
    return tuple(x.strip() for value in values for x in value.split(",") if x.strip())


def selection(select, extend_select, ignore, project=None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(select, ignore) from the options and [tool.torch2ms]: --select replaces the table's select,
    --extend-select adds to it, --ignore adds to the table's ignore."""
    chosen = selectors(select) if select else (project.select if project is not None and project.select else ())
    extra = (project.extend_select if project is not None else ()) + selectors(extend_select)
    if chosen and extra:
        chosen = chosen + extra
    ignored = (project.ignore if project is not None else ()) + selectors(ignore)
    return tuple(dict.fromkeys(chosen)), tuple(dict.fromkeys(ignored))


def selection_options(command):
    """--select/--extend-select/--ignore, on every command that migrates."""
    for option in reversed((
        click.option("--select", multiple=True, metavar="RULES",
                     help="Convert (and report) only these: groups (norm, ...), families, torch names (BatchNorm2d) "
                          "or finding codes (MD003, MD); comma-separated, repeatable. Default: everything."),
        click.option("--extend-select", multiple=True, metavar="RULES", help="Add to the selection."),
        click.option("--ignore", multiple=True, metavar="RULES", help="Leave these out (same names as --select)."),
    )):
        command = option(command)
    return command
