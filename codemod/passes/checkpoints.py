"""Code around checkpoints, which a migration changes without touching it: parameter names differ
(running_mean -> moving_mean, ...), Cells have no state_dict(), and a container filled after it was
assigned gets parameter names MindSpore cannot load. Reported, with what to do."""

from __future__ import annotations

import ast
import re

from ..facts.inference import ModuleT
from ..migration import Migration

_TORCH_ONLY = re.compile(r"\b(running_mean|running_var|num_batches_tracked)\b")
_GROWING = ("append", "extend", "insert")


def plan_checkpoints(mig: Migration) -> None:
    types = mig.types
    for attr, scope in mig.index.attributes:
        call = mig.parent(attr)
        if not (isinstance(call, ast.Call) and call.func is attr):
            continue
        if attr.attr in ("state_dict", "load_state_dict"):
            if isinstance(types.of(attr.value, scope), ModuleT):
                mig.finding("TM012", call, f"{mig.text.segment(attr)}(): {mig.rules.findings['TM012'].title}")
        elif attr.attr in _GROWING and isinstance(attr.value, ast.Attribute):
            owner = attr.value
            t = types.of(owner, scope)
            if isinstance(t, ModuleT) and t.container and isinstance(types.of(owner.value, scope), ModuleT):
                mig.finding("TM011", call, f"{mig.text.segment(attr)}(...): {mig.rules.findings['TM011'].title}")
    for node in mig.index.norm_strings:
        m = _TORCH_ONLY.search(node.value)
        if m:
            mig.finding("TM013", node, f"{m.group(1)!r} in a string: {mig.rules.findings['TM013'].title}")
