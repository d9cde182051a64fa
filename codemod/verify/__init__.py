"""The numeric check: run the original layer under PyTorch and the migrated one under MindSpore.

torch and mindspore are imported lazily, only here (pip install 'torch2ms[verify]')::

    from codemod.verify import verify_source
    for check in verify_source(source, path="model.py", bindings={"m": 0.01}):
        print(check.line, check.layer, check.status, check.max_abs)
"""

from __future__ import annotations

import ast
from typing import Any, Mapping

from ..engine import Config, migrate_source
from .check import FAIL, PASS, SKIP, SiteCheck, check_pair
from .compare import DEFAULT_ATOL, DEFAULT_RTOL, Comparison, Tolerance
from .evaluate import import_map, parse_binding
from .frameworks import INSTALL_HINT, Frameworks, FrameworksMissing, load_frameworks
from .sites import CallPair, bind, module_constants, pairs_against, pairs_from_migration

__all__ = [
    "DEFAULT_ATOL", "DEFAULT_RTOL", "FAIL", "INSTALL_HINT", "PASS", "SKIP", "Comparison", "Frameworks",
    "FrameworksMissing", "SiteCheck", "Tolerance", "load_frameworks", "parse_binding", "verify_pair",
    "verify_source",
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
    rules = (config or Config()).ruleset
    if against is None:
        result = migrate_source(source, path=path, config=config)
        pairs = pairs_from_migration(source, result, rules)
        constants = _constants(source)
    else:
        pairs = pairs_against(source, against, original_path=path, migrated_path=against_path, rules=rules)
        constants = {**_constants(against), **_constants(source)}
    return [verify_pair(p, fw, bindings=bindings, constants=constants, tolerance=tolerance, steps=steps)
            for p in pairs]


def verify_pair(pair: CallPair, fw: Frameworks, *, bindings: Mapping[str, Any] | None = None,
                constants: Mapping[str, Any] | None = None, tolerance: Tolerance = Tolerance(),
                steps: int = 3) -> SiteCheck:
    if pair.skip is None and pair.fail is None:
        bind(pair, bindings or {}, constants or {})
    return check_pair(pair, fw, tolerance, steps)


def _constants(source: str) -> dict[str, Any]:
    tree = ast.parse(source.lstrip("\ufeff"))
    return module_constants(tree, import_map(tree))
