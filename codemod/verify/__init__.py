"""The numeric check: run the original layer under PyTorch and the migrated one under MindSpore.

torch and mindspore are imported lazily, only here (pip install 'torch2ms[verify]')::

    from codemod.verify import verify_source
    for check in verify_source(source, path="model.py", bindings={"m": 0.01}):
        print(check.line, check.layer, check.status, check.max_abs)

    # the whole model: both versions built, the same weights, K training passes, then inference
    result = verify_model(source, path="model.py", model="ResNet18()", input_shape=(2, 3, 32, 32))
    print(result.status, result.divergence)
"""

from __future__ import annotations

import ast
from typing import Any, Mapping

from ..engine import migrate_source
from ..model import Config
from ..notebook import NotebookModule, read_notebook
from ..ruleset import rules_of
from .check import FAIL, PASS, SKIP, SiteCheck, check_pair
from .compare import DEFAULT_ATOL, DEFAULT_RTOL, Comparison, Tolerance
from .evaluate import import_map, parse_binding
from .frameworks import INSTALL_HINT, Frameworks, FrameworksMissing, load_frameworks
from .model import ModelCheck, verify_model
from .modes import check_modes, mode_calls, planned_mode_calls
from .sites import CallPair, bind, module_constants, pairs_against, pairs_from_migration

__all__ = [
    "DEFAULT_ATOL", "DEFAULT_RTOL", "FAIL", "INSTALL_HINT", "PASS", "SKIP", "Comparison", "Frameworks",
    "FrameworksMissing", "ModelCheck", "SiteCheck", "Tolerance", "load_frameworks", "parse_binding", "verify_file",
    "verify_model", "verify_modes", "verify_pair", "verify_source",
]


def verify_source(source: str, *, path: str | None = None, against: str | None = None,
                  against_path: str | None = None, bindings: Mapping[str, Any] | None = None,
                  tolerance: Tolerance = Tolerance(), steps: int = 3, config: Config | None = None,
                  frameworks: Frameworks | None = None) -> list[SiteCheck]:
    """Check every normalization site of ``source``: against what ``migrate_source`` makes of it,
    or, with ``against``, against the calls of that (hand-edited) migrated source, paired per layer
    in order. Raises FrameworksMissing without torch/mindspore, MigrationError/SyntaxError for
    source that does not parse."""
    fw = frameworks or load_frameworks()
    rules = rules_of(config or Config())
    if against is None:
        result = migrate_source(source, path=path, config=config)
        pairs = pairs_from_migration(source, result, rules)
        constants = _constants(source)
    else:
        pairs = pairs_against(source, against, original_path=path, migrated_path=against_path, rules=rules)
        constants = {**_constants(against), **_constants(source)}
    checks = [verify_pair(p, fw, bindings=bindings, constants=constants, tolerance=tolerance, steps=steps)
              for p in pairs]
    if against is not None:
        checks += verify_modes(source, against, path=path, against_path=against_path, config=config)
    return checks


def verify_modes(source: str, against: str, *, path: str | None = None, against_path: str | None = None,
                 config: Config | None = None) -> list[SiteCheck]:
    """The training-mode calls of a migrated file against those the migration of ``source`` plans
    (see modes.py); needs no framework."""
    planned = planned_mode_calls(_parse(source), migrate_source(source, path=path, config=config))
    return check_modes(planned, mode_calls(_parse(against)), path=path, migrated_path=against_path)


def verify_file(text: str, *, path: str | None = None, notebook: bool = False, against: str | None = None,
                against_path: str | None = None, against_notebook: bool = False,
                **options: Any) -> tuple[list[SiteCheck], list[str]]:
    """``verify_source`` for a file's text, a module or a notebook (``notebook``): a notebook's code
    cells are checked as one module, as ``migrate`` reads them, and its sites are named by cell.
    Returns the checks and the problems (cells that are not Python, hence not checked). Raises
    MigrationError for a file that is not a notebook or does not parse."""
    source, cells, problems = _module(text, path, notebook)
    against_cells = cells
    if against is not None:
        against, against_cells, more = _module(against, against_path, against_notebook)
        problems = problems + more
        if against is None:
            return [], problems + [f"{against_path} is not a Python notebook: nothing to check against"]
    if source is None:
        return [], problems  # a notebook of another language: no Python to check
    checks = verify_source(source, path=path, against=against, against_path=against_path, **options)
    for check in checks:
        if check.path == path and cells is not None:
            check.cell, check.line, _ = cells.locate(check.line)
        elif check.path == against_path and against_cells is not None:
            check.cell, check.line, _ = against_cells.locate(check.line)
        if check.migrated_line and against_cells is not None:
            check.migrated_cell, check.migrated_line, _ = against_cells.locate(check.migrated_line)
    return checks, problems


def _module(text: str, path: str | None, notebook: bool) -> tuple[str | None, NotebookModule | None, list[str]]:
    if not notebook:
        return text, None, []
    cells = read_notebook(text, path)
    if cells is None:
        return None, None, []
    return cells.source, cells, [f"{p.replace(': left as it is', '')}: not checked" for p in cells.problems]


def verify_pair(pair: CallPair, fw: Frameworks, *, bindings: Mapping[str, Any] | None = None,
                constants: Mapping[str, Any] | None = None, tolerance: Tolerance = Tolerance(),
                steps: int = 3) -> SiteCheck:
    if pair.skip is None and pair.fail is None:
        bind(pair, bindings or {}, constants or {})
    return check_pair(pair, fw, tolerance, steps)


def _constants(source: str) -> dict[str, Any]:
    tree = _parse(source)
    return module_constants(tree, import_map(tree))


def _parse(source: str) -> ast.Module:
    return ast.parse(source.lstrip("\ufeff"))
