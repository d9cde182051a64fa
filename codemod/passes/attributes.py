"""Attributes of normalization layers: ``running_mean`` -> ``moving_mean`` and the rest, on
receivers known to be norm layers. Unknown receivers are left alone; the names only batch norm
has are reported there, so nothing silently keeps a torch name."""

from __future__ import annotations

import ast

from ..facts.inference import MaybeLayerT, ModuleT
from ..migration import Migration
from ..plan import RenameAttribute

# Attribute names that only normalization layers have: worth a warning on an unknown receiver.
NORM_SPECIFIC = frozenset({"running_mean", "running_var", "num_batches_tracked"})


def plan_attributes(mig: Migration) -> None:
    names = {a for r in mig.rules.layers.values() for a in r.attributes}
    types = mig.types
    for attr, scope in mig.index.attributes:
        if attr.attr not in names:
            continue
        t = types.of(attr.value, scope)
        if isinstance(t, ModuleT) and t.is_layer:
            _known_layer(mig, attr, t)
        elif isinstance(t, ModuleT) and (t.cls is not None or t.container):
            continue  # a module of another known kind: its attributes are its own
        elif mig.in_scope:
            _maybe_layer(mig, attr, t)


def _maybe_layer(mig: Migration, attr: ast.Attribute, t) -> None:
    """A receiver that may be one of some layers (built by a factory the file does not pin down, an
    item of a container) or of unknown type: what differs on any of them is reported, nothing renamed."""
    maybe = t.maybe if isinstance(t, ModuleT) else t.rules if isinstance(t, MaybeLayerT) else frozenset()
    _report_differences(mig, attr, maybe, maybe=True)
    if any(r.attributes.get(attr.attr, attr.attr) != attr.attr for r in maybe):
        layers = ", ".join(sorted(r.torch_name for r in maybe))
        mig.finding("AT003", attr, f"{mig.text.segment(attr)}: the receiver may be a {layers} (not pinned "
                                   f"down); if it is, rename .{attr.attr} by hand")
    elif attr.attr in NORM_SPECIFIC:
        kind = "may be a normalization layer" if isinstance(t, MaybeLayerT) else "is of unknown type"
        mig.finding("AT003", attr, f"{mig.text.segment(attr)}: the receiver {kind}; if it is a torch "
                                   f"normalization layer, rename .{attr.attr} by hand")


def _report_differences(mig: Migration, attr: ast.Attribute, rules, maybe: bool = False) -> None:
    """What differs where the receiver is (or may be) one of ``rules`` though the name stays: AT005,
    MindSpore holds the tensor with another shape; AT002, an assignment MindSpore never reads."""
    which = f"the receiver may be a {' or '.join(sorted(r.torch_name for r in rules))}; " if maybe else ""
    laid_out = sorted((r.mindspore.rsplit(".", 1)[1], r.layouts[attr.attr]) for r in rules if attr.attr in r.layouts)
    if laid_out:
        how = "; ".join(f"{name}: {layout}" for name, layout in laid_out)
        mig.finding("AT005", attr, f"{mig.text.segment(attr)}: {which}MindSpore lays this tensor out with another "
                                   f"shape ({how}): code reading its shape or values, or assigning it, sees the "
                                   f"difference")
    parent = mig.parent(attr)
    store = isinstance(attr.ctx, ast.Store) or (isinstance(parent, ast.AugAssign) and parent.target is attr)
    if store and any(attr.attr in r.read_when_built for r in rules):
        mig.finding("AT002", attr, f"{mig.text.segment(attr)} = ...: {which}MindSpore reads {attr.attr} only when "
                                   f"the layer is built; pass it to the constructor instead")


def _known_layer(mig: Migration, attr: ast.Attribute, t: ModuleT) -> None:
    rules = t.rules
    mapped = {r.attributes.get(attr.attr) for r in rules}
    if mapped == {None}:
        return  # not an attribute these layers define
    if len(mapped) > 1:
        spelled = "; ".join(f"{r.torch_name}: " + (f".{r.attributes[attr.attr]}" if r.attributes.get(attr.attr)
                                                     else "none") for r in sorted(rules, key=lambda r: r.torch_name))
        mig.finding("AT004", attr, f".{attr.attr} is spelled differently on the layers the receiver may be "
                                   f"({spelled}): not renamed")
        return
    (target,) = mapped
    if target == "":
        site = mig.site("attribute", attr, message=f".{attr.attr} has no MindSpore equivalent")
        site.requires |= t.origin
        mig.unconverted(site, "AT001", attr, f"{mig.text.segment(attr)}: {attr.attr} has no MindSpore equivalent")
        return
    _report_differences(mig, attr, rules)
    if target != attr.attr:
        site = mig.site("attribute", attr, message=f".{attr.attr} -> .{target}")
        site.requires |= t.origin
        mig.change(site, RenameAttribute(site.id, mig.key(attr), target))
