"""Calls that build normalization layers (or call normalization functions): arguments mapped by
the rule's data, values by its named converters, the argument list rewritten in place so
commas, comments and layout inside the call survive."""

from __future__ import annotations

import ast

from ..converters import CONVERTERS, Action, Arg, Conversion, describe, escape, fail, may_be_int
from ..facts.inference import FactoryT, MaybeLayerT, ModuleT, is_partial
from ..migration import Migration
from ..model import Site
from ..plan import Argument, ChangeArguments, InsertStatement, RenameAttribute, ReplaceCall, Template
from ..ruleset import LayerRule, param_name, template_holes, varargs
from . import keyword_dicts


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
        from ..facts.inference import ClassT

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
            and parent.args[0] is ref.node and is_partial(mig, parent.func, ref.scope))


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
    # **dd whose entries the file shows count as the keywords they are; *args and other **kwargs hide.
    shown: dict[str, ast.expr] = {}
    hidden = any(isinstance(a, ast.Starred) for a in call.args)
    for k in call.keywords:
        if k.arg is None:
            entries = keyword_dicts.entries(mig, k, call)
            if isinstance(entries, str):
                hidden = True
            else:
                shown.update(entries)
    keywords = {k.arg: k.value for k in call.keywords if k.arg} | shown
    given = set(keywords)
    parts = []
    ordered = sorted(rules, key=lambda r: r.torch)
    for rule in ordered:
        positional = rule.positional_params()
        needs = []
        if hidden:  # any argument may be there
            needs = [p for p in rule.torch_params if p != "*" and _differs(rule, p, None)]
        for i, a in enumerate(call.args):
            if i < len(positional) and not isinstance(a, ast.Starred) and _differs(rule, positional[i], i, a):
                needs.append(positional[i])
        for key, value in keywords.items():
            if key in rule.params and _differs(rule, key, None, value):
                needs.append(key)
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


def _differs(rule: LayerRule, param: str, position: int | None, value: ast.expr | None = None) -> bool:
    """Whether converting the argument by hand takes more than passing it by keyword. ``value``: the
    argument, where the call shows it (a value MindSpore takes as a float only may be an int there)."""
    spec = rule.params.get(param)
    if spec is None:
        return True
    if spec.convert == "float" and value is not None and may_be_int(value):
        return True
    if spec.to is None or spec.convert not in ("identity", "float"):
        return True
    if spec.to != param:
        return True
    if position is not None:
        return rule.mindspore_position(spec.to) != position
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
    if spec.convert != "identity":
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
    kind = kind or {"function": "function", "method": "method"}.get(rule.kind, "construct")
    # A method's site starts at its name: x.transpose(1, 2).contiguous() holds two of them.
    func = call.func
    start = (func.end_lineno, func.end_col_offset - len(func.attr)) if kind == "method" else None
    site = mig.site(kind, call, rule=rule.torch, start=start)
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
    if rule.unmappable:
        mig.unconverted(site, rule.unmappable, call, f"{mig.text.segment(call.func)}: "
                                                     f"{mig.rules.findings[rule.unmappable].title}")
        return site

    args = list(call.args[skip:])
    vararg = rule.varargs
    positional = rule.positional_params()
    # **dd: a dict this file builds, whose entries are converted as if written in the call.
    dict_entries: dict[int, list[tuple[str, ast.expr]]] = {}
    hidden = None
    # A starred argument is fine where torch's *size takes it (``zeros(*shape)``): only there.
    starred = next((a for i, a in enumerate(args) if isinstance(a, ast.Starred)
                    and (vararg is None or i < len(positional))), None)
    if starred is not None:
        hidden = f"*{mig.text.segment(starred.value)} hides"
        if keyword_dicts.is_dict(mig, starred.value):
            hidden = f"*{mig.text.segment(starred.value)} (a dict: one * passes its keys; ** was meant?) hides"
    for k in call.keywords:
        if k.arg is None and hidden is None:
            found = keyword_dicts.entries(mig, k, call)
            if isinstance(found, str):
                hidden = f"**{mig.text.segment(k.value)} hides ({found})"
            else:
                dict_entries[id(k)] = found
    if hidden is not None:
        needs = [_what_to_do(rule, p) for p in rule.param_names() if _differs(rule, p, None)]
        mig.unconverted(site, "TM002", call,
                        f"{hidden} the arguments of {rule.torch_name}; convert by hand: " + "; ".join(needs))
        return site

    # Bind arguments to torch parameter names (those past the positional ones to its *size, if any).
    bound: list[tuple[str, ast.expr, bool]] = []  # (param, value, positional?) in source order
    written: list[str] = []  # each argument as written
    if len(args) > len(positional) and vararg is None:
        mig.unconverted(site, "TM003", call, f"{rule.torch_name} takes at most {len(positional)} positional arguments")
        return site
    for i, a in enumerate(args):
        bound.append((positional[i] if i < len(positional) else vararg, a, True))
        written.append(mig.text.segment(a))
    known = rule.keyword_params()
    names_given = {param for param, _value, _positional in bound}
    from_dicts: list[tuple[str, ast.expr, ast.keyword]] = []  # (param, value, the **dict it comes from)
    for k in call.keywords:
        given = [(k.arg, k.value)] if k.arg is not None else dict_entries[id(k)]
        for param, value in given:
            if param not in known and rule.kind == "method" and k.arg is not None \
                    and param in {param_name(p) for p in rule.mindspore_params}:
                return site  # x.split(2, axis=1): MindSpore's keyword, the call is MindSpore's already
            if param not in known:
                mig.unconverted(site, "TM003", k, f"{rule.torch_name} has no parameter {param!r}"
                                + (f" (a key of {mig.text.segment(k.value)})" if k.arg is None else ""))
                return site
            if param in names_given:
                mig.unconverted(site, "TM003", k, f"{param} is given twice")
                return site
            names_given.add(param)
        if k.arg is None:
            from_dicts += [(param, value, k) for param, value in given]
        else:
            bound.append((k.arg, k.value, False))
            written.append(mig.text.segment(k))
    if factory is not None and factory.partial is not None:
        names_given |= {k.arg for k in factory.partial.keywords if k.arg}
        for k in factory.partial.keywords:
            if k.arg is None:  # partial(nn.LayerNorm, **kw): kw's keys are given too
                found = keyword_dicts.entries(mig, k, factory.partial)
                if isinstance(found, str):
                    mig.unconverted(site, "TM002", call, f"the partial's **{mig.text.segment(k.value)} hides which "
                                                         f"arguments it gives ({found}): convert by hand")
                    return site
                names_given |= {param for param, _value in found}

    arguments: list[Argument] = []
    added: list[tuple[str, Template]] = []
    freeze: dict[str, str] = {}
    infos: list[tuple[str, ast.AST, str]] = []
    # Every value the call gives, its **dict's entries included (a converter reads the others);
    # templates name only the call's own arguments.
    by_param = {param: value for param, value, _ in (*bound, *from_dicts)}
    holes = frozenset(param for param, _value, _positional in bound)
    call_lines = tuple(mig.text.line_text(n) for n in range(call.lineno, call.end_lineno + 1))

    def convert(converter: str, spec, value: ast.expr | None, is_positional: bool = True) -> Conversion:
        ref = mig.ref(value) if value is not None else None
        scope = mig.scope_of_load(value) if isinstance(value, ast.Name) else None
        passed = mig.types.values_passed(value, scope) if scope is not None else ()
        arg = Arg(value, mig.text.segment(value) if value is not None else "", spec, rule, mig.rules.dtypes,
                  mig.titles, ref.qual if ref is not None else None,
                  by_param, call_lines, segment=mig.text.segment, target=site.target, positional=is_positional,
                  holes=holes,
                  passed=passed)
        return CONVERTERS[converter](arg)

    # New MindSpore names are imported next to the callee's torch import (a method has none: next to
    # one whose MindSpore counterpart covers them, see Migration.anchor_ref).
    near = mig.ref(call.func) or mig.anchor_ref(next(
        (spec for text in rule.rewrite for field, spec in template_holes(text) if field == "name"), None))

    def template(conv: Conversion) -> Template:
        return Template(conv.value, tuple((hole, mig.spell(site, target, near=near)) for hole, target in conv.names))

    def plan_argument(param: str, value: ast.expr, is_positional: bool, as_written: str,
                      at: ast.AST | None = None) -> Argument | None:
        """What becomes of one argument (None: the site is left unconverted, with its finding, at
        ``at`` if given, else at the value)."""
        spec = rule.params[param]
        planned = Argument(param, as_written, mig.text.segment(value))
        at = at or value
        if spec.parameter and not _layer_parameter(mig, value):
            mig.unconverted(site, "IT001", at, f"{param}={mig.text.segment(value)}: {mig.rules.findings['IT001'].title}")
            return None
        if spec.drop and spec.convert != "identity":
            # Dropped, unless its value makes that unfaithful: the converter decides, and says what.
            planned.drop = True
            conv = convert(spec.convert, spec, value, is_positional)
            if conv.action is Action.FAIL:
                mig.unconverted(site, conv.code, at, conv.message)
                return None
            infos.extend((code, at, message) for code, message in conv.warnings)
        elif spec.drop:
            planned.drop = True
            infos.append((spec.drop, at, f"{param}={mig.text.segment(value)} dropped: {mig.rules.findings[spec.drop].title}"))
        elif spec.unmappable:
            if mig.text.segment(value) in spec.allow:
                planned.drop = True
            else:
                mig.unconverted(site, spec.unmappable, at,
                                f"{param}={mig.text.segment(value)}: {mig.rules.findings[spec.unmappable].title}")
                return None
        elif spec.freeze:
            planned.drop = True
            if not (isinstance(value, ast.Constant) and value.value is True):
                flag = "False" if isinstance(value, ast.Constant) and not value.value else f"bool({mig.text.segment(value)})"
                for attr in spec.freeze:
                    freeze.setdefault(attr, flag)
        else:
            conv = convert(spec.convert, spec, value, is_positional)
            if conv.names and near is None:
                conv = fail("FB002", f"{param} is required by MindSpore's batch_norm: pass it by hand")
            if conv.action is Action.FAIL:
                mig.unconverted(site, conv.code, at, conv.message)
                return None
            for code, message in conv.warnings:
                infos.append((code, at, message))
            added.extend((keyword, Template(text)) for keyword, text in conv.adds)
            reference[0] = conv.reference
            if conv.action is Action.OMIT:
                planned.drop = True
            else:
                if conv.action is Action.REPLACE:
                    planned.value = template(conv)
                elif conv.action is Action.DERIVE:
                    planned.derived = template(conv)
                if spec.to != param or not is_positional:
                    planned.keyword = spec.to
        return planned

    reference: list[str | None] = [None]  # the MindSpore name the last argument planned is (a dtype)
    for (param, value, is_positional), as_written in zip(bound, written):
        reference[0] = None
        planned = plan_argument(param, value, is_positional, as_written)
        if planned is None:
            return site
        if reference[0] is not None:
            mig.convert_ref(site, mig.ref(value), reference[0])
        arguments.append(planned)
    # A dict's entries become keywords of their own; the ``**dict`` goes (the dict stays for its other uses).
    for k in call.keywords:
        if k.arg is None:
            arguments.append(Argument(f"**{mig.text.segment(k.value)}", mig.text.segment(k),
                                      mig.text.segment(k.value), drop=True))
    for param, value, keyword in from_dicts:
        reference[0] = None
        said = len(infos)
        planned = plan_argument(param, value, False, f"{param}={mig.text.segment(value)}", at=keyword)
        if planned is None:
            return site
        if planned.drop:
            continue
        if rule.params[param].convert == "dtype" and reference[0] is None:
            # Usually None (the layer's default dtype): MindSpore builds float32 parameters. Dropped,
            # and said so (instead of the pass-through warning a dtype written in the call gets).
            del infos[said:]
            infos.append(("TM014", keyword, f"dtype={mig.text.segment(value)} from {mig.text.segment(keyword)} dropped: "
                                            f"{mig.rules.findings['TM014'].title}"))
            continue
        added.append((rule.params[param].to, _dict_value(mig, site, planned, reference[0], value)))

    for param, spec in rule.params.items():
        if spec.when_omitted is not None and param not in names_given:
            conv = convert(spec.when_omitted, spec, None)
            if conv.names and near is None:
                conv = fail("FB002", f"{param} is required by MindSpore's batch_norm: pass it by hand")
            if conv.action is Action.FAIL:
                mig.unconverted(site, conv.code, call, conv.message)
                return site
            for code, message in conv.warnings:
                infos.append((code, call, message))
            added.extend((keyword, Template(text)) for keyword, text in conv.adds)
            if conv.action is Action.DERIVE:
                added.append((spec.to, template(conv)))
    for param, spec in rule.params.items():
        if spec.emit_when_omitted is not None and param not in names_given:
            added.append((spec.to, Template(spec.emit_when_omitted)))

    if freeze:
        if target is None:
            mig.unconverted(site, "TM007", call,
                            f"{rule.torch_name}: {', '.join(freeze)} must be frozen after construction, "
                            f"but the layer is not assigned to a name")
            return site
        stmt, _target_text = target
        for attr, flag in freeze.items():
            ms_attr = rule.attributes.get(attr, attr)
            line = Template(f"{{target}}.{ms_attr}.requires_grad = {escape(flag)}")
            mig.change(site, InsertStatement(site.id, mig.key(stmt), line))
        infos.append(("TM006", call, f"{', '.join(rule.attributes.get(a, a) for a in freeze)} frozen after construction "
                                     f"(torch has no {', '.join(freeze)} here)"))

    rewrite = _rewrite(rule, bound, arguments, added)
    if rewrite is not None:
        # The call becomes an expression (x.size(0) -> x.shape[0]); each argument fills the hole
        # named after the MindSpore parameter it maps to.
        for (param, _value, _positional), planned in zip(bound, arguments):
            planned.keyword = rule.params[param].to
        names = tuple((f"name:{spec}", mig.spell(site, spec, near=near))
                      for field, spec in template_holes(rewrite) if field == "name")
        if near is None and names:
            mig.unconverted(site, "TM003", call, f"no torch import to place the import of {names[0][0][5:]} next to")
            return site
        receiver = mig.text.segment(call.func.value) if isinstance(call.func, ast.Attribute) else ""
        mig.change(site, ReplaceCall(site.id, mig.key(call), Template(rewrite, names), tuple(arguments), tuple(added),
                                     receiver))
    elif not rule.mindspore:
        forms = " or ".join(f"`{t}`" for t in rule.rewrite)
        mig.unconverted(site, "TM003", call, f"{mig.text.segment(call)}: MindSpore's spellings are {forms}, "
                                             f"with no argument left over; convert by hand")
        return site
    else:
        pack = _positions(mig, site, rule, bound, arguments, _partial_keywords(rule, factory))
        if pack is False:
            return site
        if rule.kind == "method" and rule.mindspore_name != rule.torch_name:
            mig.change(site, RenameAttribute(site.id, mig.key(call.func), rule.mindspore_name))
        if any(a.drop or a.keyword or a.value or a.derived or a.positional for a in arguments) or added or pack:
            mig.change(site, ChangeArguments(site.id, mig.key(call), tuple(arguments), tuple(added), skip, pack))
    if ref is not None:
        mig.convert_ref(site, ref, rule.mindspore)
    for code, node, message in infos:
        mig.finding(code, node, message)
    if rule.device_note:
        mig.finding(rule.device_note, call, mig.rules.findings[rule.device_note].title)
    return site


def _layer_parameter(mig: Migration, value: ast.expr) -> bool:
    """``m.weight``, ``self.conv.bias``: an attribute of a module, or of an attribute of a module
    that is not known to be anything else (``self.fc`` once it is a MindSpore Dense: a second run
    must agree with the first). MindSpore's ``set_data`` exists on Parameters, not on tensors."""
    if not isinstance(value, ast.Attribute):
        return False
    root = value.value
    while isinstance(root, ast.Attribute):
        root = root.value
    scope = mig.scope_of_load(root) if isinstance(root, ast.Name) else None
    if scope is None:
        return False
    base = value.value
    known = mig.types.of(base, scope)
    if isinstance(known, (ModuleT, MaybeLayerT)):
        return True
    if known is not None or not isinstance(base, ast.Attribute):
        return False
    return _layer_parameter(mig, base)


def _rewrite(rule: LayerRule, bound, arguments: list[Argument], added) -> str | None:
    """The first of the rule's rewrite templates whose holes are exactly the MindSpore parameters the
    call has values for (none of them left over, none missing)."""
    if not rule.rewrite:
        return None
    given = {rule.params[param].to for (param, _value, _positional), planned in zip(bound, arguments)
             if not planned.drop}
    given |= {keyword for keyword, _template in added}
    for text in rule.rewrite:
        if {spec for field, spec in template_holes(text) if field == "arg"} == given:
            return text
    return None


def _partial_keywords(rule: LayerRule, factory) -> frozenset[str]:
    """The MindSpore parameters the converted partial a call goes through may spell as keywords:
    its own keywords, and the defaults its conversion writes out (a superset is safe: an argument
    given by keyword means the same). Empty for anything but a call of a partial."""
    if factory is None or factory.partial is None:
        return frozenset()
    given = {k.arg for k in factory.partial.keywords if k.arg}
    spelled = {rule.params[p].to for p in given if p in rule.params}
    spelled |= {spec.to for p, spec in rule.params.items()
                if p not in given and (spec.emit_when_omitted is not None or spec.when_omitted is not None)}
    return frozenset(n for n in spelled if n)


def _positions(mig: Migration, site: Site, rule: LayerRule, bound, arguments: list[Argument],
               partial_keywords: frozenset[str] = frozenset()):
    """Which arguments MindSpore takes by position: past the point where the torch and MindSpore
    signatures diverge, arguments become keywords, as do those a partial the call goes through sets
    by keyword (``partial(f, alpha=0.01)(0.2)`` gives alpha twice). torch's ``*size`` is passed on
    as MindSpore's ``*size``, or packed into one tuple for a parameter that takes the sequence whole;
    a keyword for a MindSpore ``*size`` becomes positional. Returns the span to pack (or None), False
    when the call cannot be written (the site is then left unconverted)."""
    ms_vararg = varargs(rule.mindspore_params)
    vararg = rule.varargs
    group = [i for i, (param, _value, is_positional) in enumerate(bound) if is_positional and param == vararg]
    pack = None
    if group and rule.params[vararg].to != ms_vararg and not arguments[group[0]].drop:
        starred = any(isinstance(bound[i][1], ast.Starred) for i in group)
        if len(group) > 1 or starred:
            pack = (group[0], group[-1] + 1)
    out_position = 0
    aligned = True
    keyword_before = False
    for i, ((param, value, is_positional), planned) in enumerate(zip(bound, arguments)):
        if planned.drop:
            aligned = aligned and not is_positional
            continue
        ms_name = rule.params[param].to
        if not is_positional:
            if ms_name is not None and ms_name == ms_vararg:  # MindSpore's *size takes no keyword
                if keyword_before or not aligned or rule.mindspore_position(ms_name) != out_position:
                    mig.unconverted(site, "TM003", value, f"{param}= must be passed by position to MindSpore "
                                                          f"({rule.mindspore_name}(*{ms_name})) and cannot be here")
                    return False
                planned.positional, planned.keyword = True, None
                out_position += 1
            else:
                keyword_before = True
            continue
        if param == vararg and i != group[0]:
            # The rest of torch's *size: packed with the first, or passed on by position after it.
            planned.keyword = None
            continue
        if aligned and ms_name not in partial_keywords and rule.mindspore_position(ms_name) == out_position:
            planned.keyword = None
            out_position += 1
        else:
            aligned = False
            planned.keyword = ms_name
            if param == vararg and pack is None and len(group) > 1:
                mig.unconverted(site, "TM003", value, f"{rule.torch_name}(*{vararg}) cannot be passed on by keyword")
                return False
    return pack


def _dict_value(mig: Migration, site: Site, planned: Argument, reference: str | None, value: ast.expr) -> Template:
    """The new keyword's value for a dict entry: the entry's own expression (copied from the dict),
    converted as the argument would be."""
    if reference is not None:  # torch.float32 -> mindspore.float32, spelled through the imports
        spelling = mig.spell(site, reference, near=mig.ref(value))
        return Template("{name:value}", (("name:value", spelling),))
    text = escape(mig.text.segment(value))
    if planned.derived is not None:  # _weight=None -> embedding_table=Normal(sigma=1.0)
        return planned.derived
    if planned.value is not None:
        return planned.value.filled("value", text)
    return Template(text)
