"""Which checkpoint keys belong to layers the rules migrate, and what MindSpore calls them.

Pure: works on key names (and, with a source, on its static structure; with a built model, on what
check.cell_layout read from it); no framework is imported.
Every rename comes from the rules' ``attributes`` tables (torch attribute -> MindSpore attribute
path, "" = no counterpart) and every reshape from their ``layouts`` (Conv1d's weight gets an axis),
so a layer added to rules/ is converted without a change here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from ..ruleset import LayerRule, Layout, RuleSet
from .structure import (
    Computed,
    Items,
    Layer,
    Leaf,
    ModelClass,
    Node,
    SourceModel,
    Unknown,
    keeps_keys,
)

# The torch buffer only batch-norm-like layers have: a module with it is taken for one when the
# source does not say what it is.
RUNNING_STAT = "running_mean"


class PlanError(Exception):
    """The keys cannot be matched to a model at all (no such class, several fit equally)."""


@dataclass(frozen=True)
class Move:
    """What happens to one key. ``new`` None: dropped (``why`` says why). ``layout``: the tensor
    is reshaped to MindSpore's layout of the parameter."""

    key: str
    new: str | None
    layer: str | None = None  # the torch layer class the key belongs to, for layers the rules name
    found_by: str = ""  # "source" | "keys" | "model": how the layer was recognised
    why: str = ""
    layout: Layout | None = None

    @property
    def renamed(self) -> bool:
        return self.new is not None and self.new != self.key

    @property
    def reshaped(self) -> bool:
        return self.new is not None and self.layout is not None


@dataclass
class Plan:
    moves: list[Move] = field(default_factory=list)
    mismatches: list[tuple[str, str]] = field(default_factory=list)  # (key, why): not in the model
    notes: list[str] = field(default_factory=list)  # info
    warnings: list[str] = field(default_factory=list)
    model: str | None = None  # "Net (model.py:12)" when the keys were matched against a class
    model_class: ModelClass | None = None
    built: bool = False  # the keys were mapped onto the parameters of the built model

    @property
    def renamed(self) -> list[Move]:
        return [m for m in self.moves if m.renamed]

    @property
    def dropped(self) -> list[Move]:
        return [m for m in self.moves if m.new is None]

    @property
    def unchanged(self) -> list[Move]:
        return [m for m in self.moves if m.new == m.key and m.layout is None]

    @property
    def reshaped(self) -> list[Move]:
        return [m for m in self.moves if m.reshaped]

    def collisions(self) -> list[tuple[str, list[str]]]:
        """MindSpore names more than one key would be written under."""
        by_new: dict[str, list[str]] = {}
        for m in self.moves:
            if m.new is not None:
                by_new.setdefault(m.new, []).append(m.key)
        return [(new, keys) for new, keys in by_new.items() if len(keys) > 1]


def _move(key: str, module: str, rule: LayerRule, found_by: str) -> Move | None:
    """The move for ``key`` (= module + "." + attribute) of a ``rule`` layer; None when the layer
    has no such torch attribute (a rule that names some of its layer's tensors names them all)."""
    attribute = key[len(module) + 1:] if module else key
    if attribute not in rule.attributes:
        return Move(key, key) if keeps_keys(rule) else None
    target = rule.attributes[attribute]
    if not target:
        return Move(key, None, rule.torch_name, found_by, f"{rule.torch_name}.{attribute} has no MindSpore counterpart")
    layout = rule.layouts.get(attribute)
    if target == attribute and layout is None:
        return Move(key, key)  # carries over like any key: no layer to name
    return Move(key, f"{module}.{target}" if module else target, rule.torch_name, found_by, layout=layout)


def _modules(keys: Iterable[str]) -> dict[str, list[str]]:
    """Keys grouped by the module that holds them ("" for the top level)."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(key.rpartition(".")[0], []).append(key)
    return groups


# -- layers the keys must tell apart ----------------------------------------------------------------


def running_stat_rules(rules: RuleSet) -> tuple[list[LayerRule], list[LayerRule]]:
    """The layer rules a ``running_mean`` key can belong to, split into those whose MindSpore
    parameters sit where torch's do (assumed) and those that nest them (cannot be told apart)."""
    layers = [r for r in rules.layers.values() if r.kind == "layer" and r.attributes.get(RUNNING_STAT)]
    flat = [r for r in layers if "." not in r.attributes[RUNNING_STAT]]
    nested = [r for r in layers if "." in r.attributes[RUNNING_STAT]]
    return flat, nested


def _by_candidates(module: str, members: list[str], candidates: list[LayerRule],
                   found_by: str) -> tuple[list[Move] | None, str]:
    """Moves for the keys of one module that may be any of ``candidates``: the candidates whose
    attributes hold every key must all name them alike. Else None, and why."""
    leaves = [k[len(module) + 1:] if module else k for k in members]
    fitting = [r for r in candidates if keeps_keys(r) or all(leaf in r.attributes for leaf in leaves)]
    if not fitting:
        return None, (f"its keys ({', '.join(leaves)}) fit none of "
                      + ", ".join(r.torch_name for r in candidates))
    proposals = [[_move(k, module, r, found_by) for k in members] for r in fitting]
    for what, of in (("names", lambda m: m.new), ("layouts", lambda m: m.layout)):
        if any([of(m) for m in p] != [of(m) for m in proposals[0]] for p in proposals[1:]):
            return None, f"it may be {' or '.join(r.torch_name for r in fitting)}, whose MindSpore {what} differ"
    label = "/".join(sorted(r.torch_name for r in fitting))
    return [Move(m.key, m.new, label if m.layer else None, found_by if m.layer else "", m.why, m.layout)
            for m in proposals[0]], ""


def _by_siblings(keys: list[str], rules: RuleSet) -> tuple[dict[str, Move], list[str]]:
    """Moves for the keys of modules that hold a ``running_mean``; warnings for those that stay
    as they are."""
    flat, _ = running_stat_rules(rules)
    moves: dict[str, Move] = {}
    warnings: list[str] = []
    for module, members in _modules(keys).items():
        if not any(k.rpartition(".")[2] == RUNNING_STAT for k in members) or not flat:
            continue
        planned, why = _by_candidates(module, members, flat, "keys")
        if planned is None:
            warnings.append(f"{module or '(top level)'} has a {RUNNING_STAT} key, but {why}: its keys are "
                            "copied unchanged")
            continue
        moves.update((m.key, m) for m in planned)
    return moves, warnings


# -- without a source: the keys themselves -------------------------------------------------------


def plan_from_keys(keys: list[str], rules: RuleSet) -> Plan:
    moves, warnings = _by_siblings(keys, rules)
    flat, nested = running_stat_rules(rules)
    plan = Plan(warnings=warnings)
    plan.moves = [moves.get(k, Move(k, k)) for k in keys]
    names = "/".join(sorted(r.torch_name for r in flat)) or "batch normalization"
    plan.notes.append(f"no --source: normalization layers are recognised by their keys alone: a module with a "
                      f"{RUNNING_STAT} key is taken for a {names} layer")
    plan.notes.extend(_blind_spots(rules, nested))
    return plan


def _blind_spots(rules: RuleSet, nested: list[LayerRule]) -> list[str]:
    """What reading the keys alone cannot see, from the rules' own data."""
    out = []
    if nested:
        where = ", ".join(f"{r.torch_name} (as {r.attributes[RUNNING_STAT].rpartition('.')[0]}.)" for r in nested)
        out.append(f"MindSpore nests the parameters of {where} one level deeper; such layers cannot be told "
                   "apart by their keys: pass --source if the model has any")
    without = sorted({r.torch_name for r in rules.layers.values() if r.kind == "layer"
                      and not r.attributes.get(RUNNING_STAT)
                      and any(t and t != a for a, t in r.attributes.items())})
    named = ", ".join(without) if without else "LayerNorm and GroupNorm"
    out.append(f"layers without running statistics ({named}; batch norm with track_running_stats=False) have "
               "keys like any other layer and are not recognised: their keys are copied unchanged; pass --source")
    reshaped = sorted({r.torch_name for r in rules.layers.values() if r.kind == "layer" and r.layouts})
    if reshaped:
        out.append(f"MindSpore lays out parameters of {', '.join(reshaped)} otherwise than torch; their keys "
                   "cannot be told from others', so they are not reshaped: pass --source if the model has any")
    return out


# -- with a source: walk the model --------------------------------------------------------------


@dataclass(frozen=True)
class _Found:
    """Where one key ends up in the model's tree."""

    kind: str  # layer | keep | unknown | mismatch
    module: str = ""  # layer: the layer's path; unknown: the path of the node the source does not show
    rule: LayerRule | None = None
    why: str = ""
    rules: tuple[LayerRule, ...] = ()  # unknown: the normalization layers the source narrows it to
    # Members on the way whose parameters MindSpore names without their prefix: (path, how), how is
    # "grown" (a container filled after assignment) or "inserted" (insert_child_to_cell).
    unprefixed: tuple[tuple[str, str], ...] = ()
    # Members on the way registered under names computed at run time: (path, registrations).
    computed: tuple[tuple[str, tuple[Computed, ...]], ...] = ()

    @property
    def anonymous(self) -> bool:
        """Placed through a member whose computed name could be any name."""
        return any(all(c.anonymous for c in registrations) for _, registrations in self.computed)


def _walk(root: ModelClass, key: str) -> _Found:
    parts = key.split(".")
    node: Node = root
    path: list[str] = []
    unprefixed: list[tuple[str, str]] = []
    computed: list[tuple[str, tuple[Computed, ...]]] = []

    def found(kind: str, module: str = "", **kw) -> _Found:
        return _Found(kind, module, unprefixed=tuple(unprefixed), computed=tuple(computed), **kw)

    for depth, part in enumerate(parts[:-1]):
        here = ".".join(path) or root.name
        if isinstance(node, Leaf) or isinstance(node, Layer) and node.keeps_keys:
            return found("keep")
        if isinstance(node, Unknown):
            return found("unknown", ".".join(path), why=node.why, rules=node.rules)
        if isinstance(node, Layer):
            # A parameter of a layer's own sublayer (MultiheadAttention's out_proj.weight) is in its table.
            if ".".join(parts[depth:]) in node.rule.attributes:
                return found("layer", ".".join(path), rule=node.rule)
            return found("mismatch", why=f"{here} is {_a(node.rule.torch_name)}, which has no member {part!r}")
        member = ".".join(path + [part])
        if isinstance(node, Items):
            child = node.child(part)
            if node.grown_late:
                unprefixed.append((here, "grown"))
            if child is None and node.filled_elsewhere:
                return found("unknown", ".".join(path), why=f"{here} is filled where the source was not followed")
        else:
            child = node.children().get(part)
            registrations: list[Computed] = []
            if child is None:
                hit = node.computed_member(part)
                if hit is not None:
                    child, registrations = hit
                    computed.append((member, tuple(registrations)))
            if part in node.unprefixed or any(c.unprefixed for c in registrations):
                unprefixed.append((member, "inserted"))
        if child is None:
            if isinstance(node, ModelClass) and node.open_reason:
                return found("unknown", member, why=node.open_reason)
            if isinstance(node, ModelClass):
                names = ", ".join(dict.fromkeys(c.spelled for c in node.computed))
                also = f" (nor one {names} can name)" if names else ""
                return found("mismatch", why=f"{node.name} ({node.where}) has no member {part!r}{also}")
            return found("mismatch", why=f"the container {here} has no member {part!r}")
        node = child
        path.append(part)
    leaf = parts[-1]
    module = ".".join(path)
    if isinstance(node, Layer) and node.keeps_keys:
        return found("keep")
    if isinstance(node, Layer):
        if leaf in node.rule.attributes:
            return found("layer", module, rule=node.rule)
        return found("mismatch", why=f"{module} is {_a(node.rule.torch_name)}, which has no parameter or buffer "
                                         f"{leaf!r}")
    if isinstance(node, ModelClass):
        if (leaf in node.tensors or leaf in node.children() or node.computed_member(leaf) is not None
                or node.open_reason):
            return found("keep")
        return found("mismatch", why=f"{node.name} ({node.where}) has no parameter or buffer {leaf!r}")
    if isinstance(node, Items):
        return found("mismatch", why=f"the container {module} holds modules, not {leaf!r}")
    if isinstance(node, Unknown):
        return found("unknown", module, why=node.why, rules=node.rules)
    return found("keep")


@dataclass
class _Match:
    root: ModelClass
    found: dict[str, _Found]

    @property
    def mismatches(self) -> int:
        return sum(1 for f in self.found.values() if f.kind == "mismatch")

    @property
    def unseen(self) -> int:
        return sum(1 for f in self.found.values() if f.kind == "unknown")

    @property
    def rank(self) -> tuple[int, int, int, int]:
        """How well the keys fit the class, the lower the better: keys that do not fit, then keys
        placed only through names that could be any name, then keys the source does not show, then
        keys placed through names computed at run time."""
        found = self.found.values()
        return (self.mismatches, sum(1 for f in found if f.anonymous), self.unseen,
                sum(1 for f in found if f.computed))


def plan_from_source(keys: list[str], source: SourceModel, model: str | None = None) -> Plan:
    """Match the keys against a model class of the source (``model``, else the one they fit best)
    and rename the keys of its normalization layers."""
    match = _choose(keys, source, model)
    plan = Plan(model=f"{match.root.name} ({match.root.where})", model_class=match.root)
    resolved: dict[str, Move] = {}
    # Where the source narrows a layer down to several normalization layers, its keys decide.
    narrowed: dict[str, list[str]] = {}
    for key, found in match.found.items():
        if found.kind == "unknown" and found.rules:
            narrowed.setdefault(found.module, []).append(key)
    for module, members in narrowed.items():
        rules = list(match.found[members[0]].rules)
        planned, why = _by_candidates(module, members, rules, "source")
        if planned is None:
            plan.mismatches.extend((k, f"{module}: {why}, and the source does not say which") for k in members)
        else:
            resolved.update((m.key, m) for m in planned)
            plan.notes.append(f"{module}: {match.found[members[0]].why}; its keys say {planned[0].layer}")
    # Where it does not show the layers at all, batch norm is recognised by its running_mean.
    unseen = [k for k, f in match.found.items() if f.kind == "unknown" and not f.rules]
    by_keys, warnings = _by_siblings(unseen, source.rules) if unseen else ({}, [])
    resolved.update(by_keys)
    plan.warnings.extend(warnings)
    for key in keys:
        found = match.found[key]
        if found.kind == "layer":
            plan.moves.append(_move(key, found.module, found.rule, "source"))
        elif found.kind == "mismatch":
            plan.mismatches.append((key, found.why))
        elif key in resolved:
            plan.moves.append(resolved[key])
        else:
            plan.moves.append(Move(key, key))
    found_list = [f for f in match.found.values() if f.kind != "mismatch"]
    plan.notes.extend(_computed_notes(found_list))
    unseen_by_why: dict[str, list[str]] = {}
    for f in found_list:
        if f.kind == "unknown" and not f.rules:
            unseen_by_why.setdefault(f.why, [])
            if f.module not in unseen_by_why[f.why]:
                unseen_by_why[f.why].append(f.module)
    for why, modules in unseen_by_why.items():
        holds = "it holds" if len(modules) == 1 else "they hold"
        plan.warnings.append(f"{', '.join(m or match.root.name for m in modules)}: the source does not show what "
                             f"{holds} ({why}); batch norm layers there are recognised by their {RUNNING_STAT} "
                             "key, other normalization layers are not")
    plan.warnings.extend(_unprefixed_warnings(found_list))
    if source.skipped:
        plan.warnings.extend(f"not analysed: {s}" for s in source.skipped)
    return plan


def _computed_notes(found: list[_Found]) -> list[str]:
    """Which members were placed through names computed at run time, and as what."""
    by_registration: dict[tuple[Computed, ...], list[str]] = {}
    for f in found:
        for member, registrations in f.computed:
            members = by_registration.setdefault(registrations, [])
            if member not in members:
                members.append(member)
    notes = []
    for registrations, members in by_registration.items():
        how = " or ".join(f"{c.spelled} (line {c.line})" for c in registrations)
        node = registrations[0].node if len(registrations) == 1 else None
        what = f"; read as {node.name} ({node.where})" if isinstance(node, ModelClass) else ""
        notes.append(f"{', '.join(members)}: registered under names computed at run time, as {how}{what}")
    return notes


def _unprefixed_warnings(found: list[_Found]) -> list[str]:
    warnings = []
    for member, how in dict.fromkeys(u for f in found for u in f.unprefixed):
        last = member.rpartition(".")[2]
        if how == "grown":
            warnings.append(
                f"{member}: modules are added to this container after it is assigned ({last}.append(...) & co.); "
                f"MindSpore (2.10) then names their parameters without the '{member}.' prefix, so the keys below "
                f"it will not load into the migrated model: create the container with its items instead "
                f"(self.{last} = nn.ModuleList([...]))")
        else:
            warnings.append(
                f"{member}: registered with insert_child_to_cell(); MindSpore (2.10) then names its parameters "
                f"without the '{member}.' prefix, so the keys below it will not load into the model: assign it "
                f"instead (setattr(self, name, cell))")
    return warnings


def find_class(source: SourceModel, name: str) -> ModelClass:
    """The one module class of the source named ``name``."""
    found = source.named(name)
    if not found:
        raise PlanError(f"no module class {name!r} in the source; module classes: "
                        + (", ".join(sorted({c.name for c in source.classes})) or "none"))
    if len(found) > 1:
        raise PlanError(f"several module classes are named {name!r}: " + ", ".join(c.where for c in found))
    return found[0]


def _choose(keys: list[str], source: SourceModel, model: str | None) -> _Match:
    if model is not None:
        root = find_class(source, model)
        return _Match(root, {k: _walk(root, k) for k in keys})
    if not source.classes:
        raise PlanError("the source defines no module class (a torch nn.Module or MindSpore nn.Cell subclass)")
    matches = [_Match(c, {k: _walk(c, k) for k in keys}) for c in source.classes]
    best = min(m.rank for m in matches)
    fitting = [m for m in matches if m.rank == best]
    if len(fitting) > 1:
        # A class used inside another is a part, not the model; among the rest, they must agree.
        used = source.used_as_child()
        tops = [m for m in fitting if id(m.root) not in used] or fitting
        plans = {tuple(_summary(m)) for m in tops}
        if len(plans) > 1:
            raise PlanError("the keys fit several model classes equally well ("
                            + ", ".join(m.root.name for m in tops) + "): pass --model")
        fitting = tops
    return fitting[0]


def _summary(match: _Match) -> list[tuple]:
    return [(k, f.kind, f.module, f.rule.torch if f.rule else None) for k, f in match.found.items()]


# -- with the built model: its own parameters ------------------------------------------------------


@dataclass
class CellLayout:
    """What a built MindSpore model holds (check.cell_layout reads it): every cell by its path, with
    the layer rules of its class (empty: not a normalization layer), and every parameter by its
    path, with the name MindSpore gives it (what a checkpoint must use) and its shape."""

    model: str
    cells: dict[str, tuple[LayerRule, ...]]
    params: dict[str, tuple[str, tuple[int, ...]]]


def plan_from_cell(keys: list[str], shapes: dict[str, tuple[int, ...]], layout: CellLayout) -> Plan:
    """Map the keys onto the parameters of the built model: a key of a normalization layer through
    the rules' attributes, any other under its own path; every key must land on a parameter of the
    same shape, and is written under the name MindSpore gives that parameter."""
    plan = Plan(model=layout.model, built=True)
    placed: dict[str, Move] = {}
    used: set[str] = set()  # the paths of the parameters that get a value
    for module, members in _modules(keys).items():
        if module not in layout.cells:
            plan.mismatches.extend((k, _no_cell(module, layout)) for k in members)
            continue
        rules = layout.cells[module]
        if rules:
            planned, why = _by_candidates(module, members, list(rules), "model")
            if planned is None:
                plan.mismatches.extend((k, f"{module or 'the model'} is a MindSpore {rules[0].mindspore_name}: {why}")
                                       for k in members)
                continue
        else:
            planned = [Move(k, k) for k in members]
        for move in planned:
            if move.new is None:
                placed[move.key] = move
                continue
            param = layout.params.get(move.new)
            if param is None:
                plan.mismatches.append((move.key, f"the built model has no parameter {move.new}"))
                continue
            name, shape = param
            if move.key in shapes:
                torch_shape = tuple(shapes[move.key])
                expected = move.layout.mindspore_shape(torch_shape) if move.layout else torch_shape
                if expected != shape:
                    laid_out = f" (as MindSpore lays it out: {_dims(expected)})" if move.layout else ""
                    plan.mismatches.append((move.key, f"shape {_dims(torch_shape)} in the checkpoint{laid_out}, "
                                                      f"{_dims(shape)} for {move.new} in the built model"))
                    continue
            placed[move.key] = Move(move.key, name, move.layer, "model", move.why, move.layout)
            used.add(move.new)
    plan.moves = [placed[k] for k in keys if k in placed]
    renamed = {path: name for path, (name, _) in layout.params.items() if name != path and path in used}
    if renamed:
        shown = ", ".join(f"{path} is {name!r}" for path, name in list(renamed.items())[:4])
        more = f" (+{len(renamed) - 4} more)" if len(renamed) > 4 else ""
        plan.warnings.append(
            f"the built model names {len(renamed)} parameter(s) otherwise than their place in it ({shown}{more}): "
            "the checkpoint uses MindSpore's names, which load_param_into_net looks up; containers filled after "
            "they are assigned and insert_child_to_cell() do that in MindSpore (2.10)")
    names: dict[str, list[str]] = {}
    for path, (name, _) in layout.params.items():
        names.setdefault(name, []).append(path)
    for name, paths in names.items():
        if len(paths) > 1 and used.intersection(paths):
            plan.warnings.append(f"the built model gives {' and '.join(paths)} the same name {name!r}: "
                                 "a checkpoint cannot tell them apart")
    # A layer with some of its parameters in the checkpoint keeps the others (batch norm with
    # affine=False has no weight in torch, fixed ones in MindSpore); a layer with none of them
    # suggests a model built otherwise than the one trained.
    left = [path for path in layout.params if path not in used]
    filled = {path.rpartition(".")[0] for path in used}
    empty = list(dict.fromkeys(p.rpartition(".")[0] for p in left if p.rpartition(".")[0] not in filled))
    partly = [p for p in left if p.rpartition(".")[0] in filled]
    if empty:
        plan.warnings.append(f"{len(empty)} layer(s) of the built model get nothing from the checkpoint and keep their "
                             f"initial values: {', '.join(m or '(top level)' for m in empty)}: was the model built "
                             "with the arguments it was trained with?")
    if partly:
        plan.notes.append(f"{len(partly)} parameter(s) of the built model have no torch counterpart in the "
                          f"checkpoint and keep their initial values: {', '.join(partly)}")
    return plan


def _no_cell(module: str, layout: CellLayout) -> str:
    parts = module.split(".")
    i = len(parts) - 1
    while i > 0 and ".".join(parts[:i]) not in layout.cells:
        i -= 1
    return f"the built model has no cell {'.'.join(parts[:i + 1])}"


def _a(name: str) -> str:
    return f"an {name}" if name[:1] in "AEIOU" else f"a {name}"


def _dims(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
