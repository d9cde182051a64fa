"""Calls that build normalization layers (or call normalization functions): arguments mapped by
the rule's data, values by its named converters, the argument list rewritten in place so
commas, comments and layout inside the call survive."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Callable

from ..converters import CONVERTERS, Arg, Conversion, describe
from ..engine import Migration, Site
from ..inference import FactoryT, _is_partial
from ..ruleset import LayerRule
from ..sequences import call_arguments


@dataclass
class ArgPlan:
    """What happens to one argument, in source order (positional arguments, then keywords)."""

    param: str = ""
    drop: bool = False
    keyword: str | None = None  # the MindSpore keyword to spell (None: keep as written)
    positional: bool = False
    derive: Callable[[dict], str] | None = None  # a new value built from the other arguments' texts


@dataclass
class CallPlan:
    args: list[ArgPlan] = field(default_factory=list)
    # (keyword, value text or a function of the arguments' texts), appended in order
    added: list[tuple[str, "str | Callable[[dict], str]"]] = field(default_factory=list)


def plan_constructions(mig: Migration) -> None:
    types = mig.types
    for ref in mig.refs:
        rule = mig.layer_rule(ref.qual)
        if rule is None:
            continue
        node = ref.node
        parent = mig.parent(node)
        if isinstance(parent, ast.Call) and parent.func is node:
            convert_call(mig, parent, rule, ref=ref)
        elif (isinstance(parent, ast.Attribute) and parent.attr == "__init__"
              and isinstance(mig.parent(parent), ast.Call) and mig.parent(parent).func is parent):
            # nn.BatchNorm2d.__init__(self, ...) inside a subclass: the first argument is self.
            convert_call(mig, mig.parent(parent), rule, skip=1, kind="construct")
    # functools.partial(nn.BatchNorm2d, momentum=0.01): its keywords convert like a call's. Planned
    # before the calls of partials, which are converted only where the partial is.
    for ref in mig.refs:
        rule = mig.layer_rule(ref.qual)
        parent = mig.parent(ref.node)
        if rule is not None and id(ref.node) not in mig.converted_refs and is_partial_of(mig, ref, parent):
            convert_call(mig, parent, rule, ref=ref, skip=1, kind="partial")
    # Calls whose callee the file pins down: factories, same-file subclasses, super().__init__.
    for _callee, call, scope in _calls(mig):
        if id(call) in mig.handled:
            continue
        func = call.func
        if _is_super_init(call):
            cls = types.enclosing_class(_enclosing_function(mig, call))
            if cls is not None and cls.norm_rule is not None and not any(
                    c.norm_rule is not None and c is not cls and c.init is not None for c in cls.local_bases):
                convert_call(mig, call, cls.norm_rule, kind="construct", requires=cls.origin)
            continue
        if _torch_getattr(mig, call, scope):
            continue
        callee = types.of(func, scope)
        if isinstance(callee, FactoryT) and left_as_torch(mig, callee.origin):
            continue  # a partial left unconverted: what it builds stays torch's, arguments and all
        if isinstance(callee, FactoryT) and callee.certain and len(callee.rules) == 1:
            (rule,) = callee.rules
            convert_call(mig, call, rule, factory=callee, requires=callee.origin)
            continue
        from ..inference import ClassT

        if isinstance(callee, ClassT) and callee.cls.norm_rule is not None:
            if not callee.cls.overrides_init():
                convert_call(mig, call, callee.cls.norm_rule, requires=callee.cls.origin)
            continue
        if isinstance(callee, FactoryT):  # (a call of what may be a layer is its forward pass)
            _warn_indirect(mig, call, callee.rules)


def _calls(mig: Migration):
    """The calls whose callee may build norm layers, with their scope: through a name, an attribute
    (a class attribute, a method), a subscript (a registry), or a call (``partial(...)(c)``). Calls
    of torch names are the constructions above."""
    for call, scope in mig.types.candidate_calls():
        func = call.func
        if isinstance(func, ast.Attribute) and mig.ref(func) is not None:
            continue
        yield func, call, scope


def _torch_getattr(mig: Migration, call: ast.Call, scope) -> bool:
    """``getattr(nn, "BatchNorm2d")(...)``: a torch layer built through a torch module object, which
    stays torch (so does its import): reported, since the migrated file still builds it."""
    func = call.func
    if not (isinstance(func, ast.Call) and isinstance(func.func, ast.Name) and func.func.id == "getattr"
            and len(func.args) >= 2 and scope.resolve("getattr") is None):
        return False
    ref = mig.ref(func.args[0])
    if ref is None:
        return False
    name = func.args[1]
    if isinstance(name, ast.Constant) and isinstance(name.value, str):
        rule = mig.layer_rule(mig.rules.canonical(f"{ref.qual}.{name.value}"))
        rules = [rule] if rule is not None and rule.kind == "layer" else []
    else:
        rules = [r for r in mig.rules.layers.values() if r.kind == "layer" and r.torch.startswith(ref.qual + ".")]
    if not rules:
        return False
    names = ", ".join(sorted({r.torch_name for r in rules}))
    mig.finding("RF001", call, f"{mig.text.segment(func)} builds torch's {names}, left as torch with its import: "
                               f"name the class ({rules[0].torch_name}(...)) to have it converted")
    mig.handled.add(id(call))
    return True


def is_partial_of(mig: Migration, ref, parent: ast.AST | None) -> bool:
    """Whether ``ref`` (a layer class) is the first argument of ``functools.partial(...)``."""
    rule = mig.layer_rule(ref.qual)
    return (rule is not None and rule.kind == "layer" and isinstance(parent, ast.Call) and bool(parent.args)
            and parent.args[0] is ref.node and _is_partial(mig, parent.func, ref.scope))


def converted_here(mig: Migration, origin: frozenset) -> bool:
    """Whether the migration converts what the value relies on: some site of its origin is
    converted and none is left as torch (a class already a Cell relies on nothing converted)."""
    sites = [mig.site_by_node.get(node_id) for node_id in origin]
    sites = [s for s in sites if s is not None]
    return bool(sites) and all(s.converted for s in sites)


def left_as_torch(mig: Migration, origin: frozenset) -> bool:
    """Whether a site the value relies on (its construction, a partial) was left unconverted."""
    for node_id in origin:
        site = mig.site_by_node.get(node_id)
        if site is not None and not site.converted:
            return True
    return False


def _is_super_init(call: ast.Call) -> bool:
    f = call.func
    return (isinstance(f, ast.Attribute) and f.attr == "__init__" and isinstance(f.value, ast.Call)
            and isinstance(f.value.func, ast.Name) and f.value.func.id == "super")


def _enclosing_function(mig: Migration, node: ast.AST) -> ast.AST | None:
    p = mig.parent(node)
    while p is not None and not isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef)):
        p = mig.parent(p)
    return p


def _warn_indirect(mig: Migration, call: ast.Call, rules: frozenset) -> None:
    """A call that may build a torch norm layer: say which arguments follow torch's conventions,
    for each layer it may build (given, hidden behind *args/**kwargs, or omitted where the defaults
    differ), and what the target cannot run."""
    if not rules:
        return
    hidden = any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords)
    given = {k.arg for k in call.keywords if k.arg}
    parts = []
    ordered = sorted(rules, key=lambda r: r.torch)
    for rule in ordered:
        positional = rule.positional_params()
        needs = []
        if hidden:  # any argument may be there
            needs = [p for p in rule.torch_params if p != "*" and _differs(rule, p, None)]
        for i, a in enumerate(call.args):
            if i < len(positional) and not isinstance(a, ast.Starred) and _differs(rule, positional[i], i):
                needs.append(positional[i])
        for k in call.keywords:
            if k.arg and k.arg in rule.params and _differs(rule, k.arg, None):
                needs.append(k.arg)
        named = given | set(positional[: len(call.args)])
        for param, spec in rule.params.items():
            if (spec.emit_when_omitted is not None or spec.when_omitted is not None) and param not in named \
                    and not hidden:
                needs.append(param)  # omitted, and the defaults differ
        if needs:
            what = "; ".join(_what_to_do(rule, p, omitted=p not in named and not hidden) for p in dict.fromkeys(needs))
            parts.append(what if len(ordered) == 1 else f"{rule.torch_name}: {what}")
    names = ", ".join(r.torch_name for r in ordered)
    if parts:
        mig.finding("RF001", call, f"this call may build a torch {names}: " + "; ".join(parts))
        mig.handled.add(id(call))
    for code in sorted({r.device_note for r in ordered if r.device_note}):
        mig.finding(code, call, f"this call may build a torch {names}: {mig.rules.findings[code].title}")
        mig.handled.add(id(call))


def _differs(rule: LayerRule, param: str, position: int | None) -> bool:
    spec = rule.params.get(param)
    if spec is None:
        return True
    if spec.to is None or spec.convert not in ("identity", "float"):
        return True
    if spec.to != param:
        return True
    if position is not None:
        return rule.mindspore_params.index(spec.to) != position
    return False


def _what_to_do(rule: LayerRule, param: str, omitted: bool = False) -> str:
    """What a person converting ``param`` by hand must do, from the rule's data."""
    spec = rule.params.get(param)
    if spec is None:
        return f"{param} is not a {rule.torch_name} parameter"
    if omitted and spec.emit_when_omitted is not None:
        return f"{param} omitted: MindSpore's default differs, pass {spec.to}={spec.emit_when_omitted}"
    if omitted:
        return f"{param} omitted: MindSpore's default differs, pass {spec.to} ({describe(spec.when_omitted)})"
    if spec.drop:
        return f"{param}: drop it (no MindSpore counterpart)"
    if spec.unmappable:
        return f"{param}: no MindSpore counterpart ({spec.unmappable})"
    if spec.freeze:
        attrs = ", ".join(rule.attributes.get(a, a) for a in spec.freeze)
        return f"{param}=False: keep {attrs} frozen after construction instead"
    parts = []
    if spec.to != param:
        parts.append(f"becomes {spec.to}")
    if spec.convert not in ("identity", "float"):
        parts.append(describe(spec.convert))
    return f"{param}: " + ", ".join(parts) if parts else f"{param}: pass it by keyword"


# ---------------------------------------------------------------------------------------------


def assignment_target(mig: Migration, call: ast.Call) -> tuple[ast.stmt, str] | None:
    """The statement and target text when the call is the whole value of a one-target assignment."""
    parent = mig.parent(call)
    if isinstance(parent, ast.Assign) and parent.value is call and len(parent.targets) == 1:
        target = parent.targets[0]
    elif isinstance(parent, ast.AnnAssign) and parent.value is call:
        target = parent.target
    else:
        return None
    if isinstance(target, (ast.Name, ast.Attribute)):
        return parent, mig.text.segment(target)
    return None


def convert_call(mig: Migration, call: ast.Call, rule: LayerRule, *, ref=None, skip: int = 0,
                 kind: str | None = None, factory: FactoryT | None = None,
                 requires: frozenset = frozenset()) -> Site | None:
    mig.handled.add(id(call))
    kind = kind or ("function" if rule.kind == "function" else "construct")
    site = mig.site(kind, call, rule=rule.torch)
    site.requires |= requires
    # A partial is not the layer: code that freezes parameters cannot act on it.
    target = assignment_target(mig, call) if kind != "partial" else None
    if target is not None:
        site.target = target[1]

    if not rule.versions.contains(mig.target_version):
        version = ".".join(map(str, mig.target_version))
        mig.unconverted(site, "TM009", call,
                        f"{rule.torch} -> {rule.mindspore} is known to hold for MindSpore {rule.versions.text}, "
                        f"not {version}: left unconverted")
        return site

    args = list(call.args[skip:])
    if any(isinstance(a, ast.Starred) for a in args) or any(k.arg is None for k in call.keywords):
        needs = [_what_to_do(rule, p) for p in rule.torch_params if p != "*" and _differs(rule, p, None)]
        mig.unconverted(site, "TM002", call,
                        f"*args/**kwargs hide the arguments of {rule.torch_name}; convert by hand: " + "; ".join(needs))
        return site

    # Bind arguments to torch parameter names.
    positional = rule.positional_params()
    bound: list[tuple[str, ast.expr, bool]] = []  # (param, value, positional?) in source order
    if len(args) > len(positional):
        mig.unconverted(site, "TM003", call, f"{rule.torch_name} takes at most {len(positional)} positional arguments")
        return site
    for i, a in enumerate(args):
        bound.append((positional[i], a, True))
    known = rule.keyword_params()
    names_given = set(positional[: len(args)])
    for k in call.keywords:
        if k.arg not in known:
            mig.unconverted(site, "TM003", k, f"{rule.torch_name} has no parameter {k.arg!r}")
            return site
        if k.arg in names_given:
            mig.unconverted(site, "TM003", k, f"{k.arg} is given twice")
            return site
        names_given.add(k.arg)
        bound.append((k.arg, k.value, False))
    if factory is not None and factory.partial is not None:
        names_given |= {k.arg for k in factory.partial.keywords if k.arg}

    plan = CallPlan()
    conversions: list[tuple[ast.expr, Conversion]] = []
    freeze: dict[str, str] = {}
    infos: list[tuple[str, ast.AST, str]] = []
    by_param = {param: value for param, value, _ in bound}

    def convert(spec, value) -> Conversion:
        return CONVERTERS[spec.convert](Arg(value, spec, rule, mig, site, call=call, bound=by_param))

    for param, value, is_positional in bound:
        spec = rule.params[param]
        ap = ArgPlan(param)
        if spec.drop:
            ap.drop = True
            infos.append((spec.drop, value, f"{param}={mig.text.segment(value)} dropped: {mig.rules.findings[spec.drop].title}"))
        elif spec.unmappable:
            if mig.text.segment(value) in spec.allow:
                ap.drop = True
            else:
                mig.unconverted(site, spec.unmappable, value,
                                f"{param}={mig.text.segment(value)}: {mig.rules.findings[spec.unmappable].title}")
                return site
        elif spec.freeze:
            ap.drop = True
            if not (isinstance(value, ast.Constant) and value.value is True):
                flag = "False" if isinstance(value, ast.Constant) and not value.value else f"bool({mig.text.segment(value)})"
                for attr in spec.freeze:
                    freeze.setdefault(attr, flag)
        else:
            conv = convert(spec, value)
            if conv.action == "fail":
                mig.unconverted(site, conv.code, value, conv.message)
                return site
            for code, message in conv.warnings:
                infos.append((code, value, message))
            plan.added.extend(conv.adds)
            if conv.action == "omit":
                ap.drop = True
            else:
                if conv.action == "replace":
                    conversions.append((value, conv))
                elif conv.action == "derive":
                    ap.derive = conv.derive
                if spec.to != param or not is_positional:
                    ap.keyword = spec.to
        ap.positional = is_positional and not ap.drop
        plan.args.append(ap)

    for param, spec in rule.params.items():
        if spec.when_omitted is not None and param not in names_given:
            conv = CONVERTERS[spec.when_omitted](Arg(None, spec, rule, mig, site, call=call, bound=by_param))
            if conv.action == "fail":
                mig.unconverted(site, conv.code, call, conv.message)
                return site
            for code, message in conv.warnings:
                infos.append((code, call, message))
            if conv.action == "derive":
                plan.added.append((spec.to, conv.derive))
    for param, spec in rule.params.items():
        if spec.emit_when_omitted is not None and param not in names_given:
            plan.added.append((spec.to, spec.emit_when_omitted))

    if freeze:
        if target is None:
            mig.unconverted(site, "TM007", call,
                            f"{rule.torch_name}: {', '.join(freeze)} must be frozen after construction, "
                            f"but the layer is not assigned to a name")
            return site
        stmt, target_text = target
        for attr, flag in freeze.items():
            ms_attr = rule.attributes.get(attr, attr)
            line = f"{target_text}.{ms_attr}.requires_grad = {flag}"
            mig.insert_after_statement(site, stmt, lambda line=line: line)
        infos.append(("TM006", call, f"{', '.join(rule.attributes.get(a, a) for a in freeze)} frozen after construction "
                                     f"(torch has no {', '.join(freeze)} here)"))

    # Positions past the point where torch and MindSpore signatures diverge become keywords.
    out_position = 0
    aligned = True
    for (param, _value, is_positional), ap in zip(bound, plan.args):
        if not is_positional or ap.drop:
            aligned = aligned and not (is_positional and ap.drop)
            continue
        ms_name = rule.params[param].to
        if aligned and rule.mindspore_params.index(ms_name) == out_position:
            ap.keyword = None
            out_position += 1
        else:
            aligned = False
            ap.keyword = ms_name

    # Edits: the callee, the converted values (nested), then the argument list as a whole.
    for value, conv in conversions:
        mig.edit(site, *mig.text.span(value), conv.render, is_rewrite=True)
    if ref is not None:
        mig.convert_ref(site, ref, rule.mindspore)
    if any(ap.drop or ap.keyword or ap.derive for ap in plan.args) or plan.added:
        call_plan = plan
        skipped = skip

        def rewrite_arguments(text: str) -> str:
            return _rewrite_arguments(text, call_plan, skipped)

        mig.edit(site, *mig.text.span(call), rewrite_arguments, is_rewrite=True)
    for code, node, message in infos:
        mig.finding(code, node, message)
    if rule.device_note:
        mig.finding(rule.device_note, call, mig.rules.findings[rule.device_note].title)
    return site


def _rewrite_arguments(text: str, plan: CallPlan, skip: int) -> str:
    arguments = call_arguments(text)
    head, args = arguments.elements[:skip], arguments.elements[skip:]
    if len(args) != len(plan.args):
        raise ValueError(f"{len(plan.args)} planned arguments for {len(args)} in {text!r}")
    # The migrated text of every argument, by torch parameter, for values derived from others.
    texts = {ap.param: arguments.value(arg) for arg, ap in zip(args, plan.args)}
    cores: list[str | None] = [arguments.core(arg) for arg in head]
    for arg, ap in zip(args, plan.args):
        if ap.drop:
            cores.append(None)
        else:
            value = ap.derive(texts) if ap.derive is not None else None
            cores.append(arguments.with_keyword(arg, ap.keyword, value))
    added = [f"{keyword}={value if isinstance(value, str) else value(texts)}" for keyword, value in plan.added]
    return arguments.rewrite(cores, added)
