"""``[tool.torch2ms]`` in the nearest ``pyproject.toml``: excludes, markers, the target MindSpore,
the rule selection."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .discovery import ExcludePattern


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ProjectConfig:
    path: str | None = None  # the pyproject.toml it came from
    exclude: tuple[ExcludePattern, ...] = ()
    markers: bool | None = None
    mindspore_version: str | None = None
    select: tuple[str, ...] | None = None  # None: not given (everything)
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()


_CONFIG_KEYS = {"exclude": list, "markers": bool, "mindspore-version": str, "select": list, "extend-select": list,
                "ignore": list}


def load_project_config(start: str) -> ProjectConfig:
    """The ``[tool.torch2ms]`` table of the nearest pyproject.toml that has one, looking up from
    ``start`` and no further than the top of the repository."""
    import tomllib

    directory = os.path.abspath(start)
    while True:
        candidate = os.path.join(directory, "pyproject.toml")
        if os.path.isfile(candidate):
            try:
                with open(candidate, "rb") as fh:
                    data = tomllib.load(fh)
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"{candidate}: {exc}") from None
            table = data.get("tool", {}).get("torch2ms")
            if table is not None:
                return _project_config(candidate, table)
        parent = os.path.dirname(directory)
        if parent == directory or os.path.exists(os.path.join(directory, ".git")):
            return ProjectConfig()
        directory = parent


def _project_config(path: str, table: object) -> ProjectConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.torch2ms] must be a table")
    values = {}
    for key, value in table.items():
        name = key.replace("_", "-")
        kind = _CONFIG_KEYS.get(name)
        if kind is None:
            raise ConfigError(f"{path}: unknown key {key!r} in [tool.torch2ms] (known: {', '.join(_CONFIG_KEYS)})")
        if kind is list and isinstance(value, str):
            value = [value]
        if not isinstance(value, kind) or (kind is list and not all(isinstance(v, str) for v in value)):
            wanted = {list: "a list of strings", bool: "true or false", str: "a string"}[kind]
            raise ConfigError(f"{path}: [tool.torch2ms] {key} must be {wanted}")
        values[name] = value
    base = os.path.dirname(path)
    return ProjectConfig(
        path=path,
        exclude=tuple(ExcludePattern(g, base) for g in values.get("exclude", ())),
        markers=values.get("markers"),
        mindspore_version=values.get("mindspore-version"),
        select=tuple(values["select"]) if "select" in values else None,
        extend_select=tuple(values.get("extend-select", ())),
        ignore=tuple(values.get("ignore", ())),
    )
