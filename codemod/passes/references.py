"""References to torch classes that are not constructions: ``isinstance`` checks, bases,
defaults, registries, containers and ``nn.Module`` itself point at the MindSpore class."""

from __future__ import annotations

import ast

from ..migration import Migration
from .constructions import is_partial_of


def plan_references(mig: Migration) -> None:
    rules = mig.rules
    for ref in mig.refs:
        if id(ref.node) in mig.converted_refs:
            continue
        parent = mig.parent(ref.node)
        rule = rules.layers.get(ref.qual)
        if rule is not None:
            if isinstance(parent, ast.Attribute) and parent.attr in rule.unsupported_members:
                # e.g. SyncBatchNorm.convert_sync_batchnorm: no MindSpore counterpart; left as torch.
                code = rule.unsupported_members[parent.attr]
                site = mig.site("reference", parent, rule=ref.qual)
                mig.unconverted(site, code, parent, f"{mig.text.segment(parent)}: {rules.findings[code].title}")
                continue
            if isinstance(parent, ast.Call) and parent.func is ref.node:
                continue  # a construction: its own site decides (it may be left unconverted)
            if isinstance(parent, ast.Attribute) and parent.attr == "__init__":
                continue
            if is_partial_of(mig, ref, parent):
                continue  # functools.partial(nn.BatchNorm2d, ...): planned with the constructions
            site = mig.site("reference", ref.node, rule=ref.qual)
            if rule.kind == "function" and not _passable(rule):
                # Named, not called (act = F.leaky_relu): wherever it is called, torch's conventions
                # (defaults, positions) would meet MindSpore's function.
                mig.unconverted(site, "FN001", ref.node, f"{mig.text.segment(ref.node)} is not called here: "
                                                         f"{mig.rules.findings['FN001'].title}")
                continue
            mig.convert_ref(site, ref, rule.mindspore)
            continue
        name = rules.names.get(ref.qual)
        if name is not None:
            site = mig.site("reference", ref.node, rule=ref.qual)
            mig.convert_ref(site, ref, name.mindspore)


def _passable(rule) -> bool:
    """Whether a function's MindSpore counterpart can stand in for it wherever it is called: every
    parameter the same, at the same position, with the same default."""
    if rule.rewrite or not rule.mindspore:
        return False
    positional = rule.positional_params()
    for name, spec in rule.params.items():
        if spec.to != name or spec.convert != "identity" or spec.emit_when_omitted or spec.when_omitted:
            return False
        if name in positional and rule.mindspore_position(name) != positional.index(name):
            return False
    return True


def plan_ambiguous(mig: Migration) -> None:
    for amb in mig.ambiguous:
        if amb.qual in mig.rules.layers or amb.qual in mig.rules.names:
            site = mig.site("reference", amb.node, rule=amb.qual)
            name = mig.text.segment(amb.node).split(".", 1)[0]
            mig.unconverted(site, "TM005", amb.node,
                            f"{name!r} is bound to torch and to something else in this scope: "
                            f"{mig.text.segment(amb.node)} not converted")
