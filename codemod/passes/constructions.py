"""Calls that build normalization layers (or call normalization functions): arguments mapped by
the rule's data, values by its named converters, the argument list rewritten in place so
commas, comments and layout inside the call survive."""

from __future__ import annotations

import ast

from ..converters import CONVERTERS, Action, Arg, Conversion, describe, escape, fail
from ..facts.inference import FactoryT, MaybeLayerT
from ..migration import Migration
from . import keyword_dicts
from ..model import Site
from ..plan import Argument, ChangeArguments, InsertStatement, Template
from ..ruleset import LayerRule


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
        callee = types.of(func, scope)
        if isinstance(callee, FactoryT) and callee.certain and len(callee.rules) == 1:
            (rule,) = callee.rules
            convert_call(mig, call, rule, factory=callee, requires=callee.origin)
            continue
        from ..facts.inference import ClassT

        if isinstance(callee, ClassT) and callee.cls.norm_rule is not None:
            if not callee.cls.overrides_init():
                convert_call(mig, call, callee.cls.norm_rule, requires=callee.cls.origin)
            continue
        if isinstance(callee, FactoryT) or (isinstance(callee, MaybeLayerT)):
            _warn_indirect(mig, call, callee.rules)


def _factory_names(mig: Migration) -> set[str]:
    """Names that may be bound to something that builds norm layers: assigned a layer class (or a
    partial of one, or ``x or nn.BatchNorm2d``), parameters defaulting to one, same-file subclasses."""
    names = {"super"}
    for ref in mig.refs:
        rule = mig.layer_rule(ref.qual)
        if rule is None or rule.kind != "layer":
            continue
        child, node = ref.node, mig.parent(ref.node)
        if isinstance(node, ast.Call) and node.func is child:
            continue  # a construction, not a factory
        while node is not None and not isinstance(node, ast.stmt):
            if isinstance(node, ast.arguments):
                for arg, default in _defaults(node):
                    if default is child:
                        names.add(arg.arg)
                break
            child, node = node, mig.parent(node)
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    names.update(c.name for c in mig.types.classes.values() if c.norm_rule is not None)
    if mig.project is not None:  # factories and norm classes imported from other files of the project
        names.update(mig.project.factory_names(mig))
    return names


def _defaults(args: ast.arguments):
    positional = args.posonlyargs + args.args
    yield from zip(positional[len(positional) - len(args.defaults):], args.defaults)
    yield from ((a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None)


def _calls(mig: Migration):
    """Calls of names that may build norm layers, with their scope."""
    seen = set()
    for name in _factory_names(mig):
        for node, scope in mig.index.loads.get(name, ()):
            parent = mig.parent(node)
            callee: ast.expr = node
            if isinstance(parent, ast.Subscript) and parent.value is node:
                callee, parent = parent, mig.parent(parent)  # REGISTRY["bn"](...)
            if not (isinstance(parent, ast.Call) and parent.func is callee):
                continue
            call = parent
            attr = mig.parent(parent)
            if name == "super" and isinstance(attr, ast.Attribute) and attr.attr == "__init__" \
                    and isinstance(mig.parent(attr), ast.Call):
                call = mig.parent(attr)  # super().__init__(...)
            if id(call) not in seen:
                seen.add(id(call))
                yield node, call, scope


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
    """A call that may build a torch norm layer: say which arguments follow torch's conventions."""
    if not rules:
        return
    rule = sorted(rules, key=lambda r: r.torch)[0]
    positional = rule.positional_params()
    needs = []
    for i in range(len(call.args)):
        if i < len(positional):
            p = positional[i]
            if _differs(rule, p, i):
                needs.append(p)
    hidden = []
    for k in call.keywords:
        if k.arg is None:  # **dd: what it holds, if the file shows it
            entries = keyword_dicts.entries(mig, k, call)
            if isinstance(entries, str):
                hidden.append(f"**{mig.text.segment(k.value)}: its keys are not visible here, check each against "
                              f"the {rule.torch_name} row of the table")
            else:
                needs += [key for key, _value in entries if _differs(rule, key, None)]
        elif k.arg in rule.params and _differs(rule, k.arg, None):
            needs.append(k.arg)
    if not needs and not hidden:
        return
    names = ", ".join(sorted(r.torch_name for r in rules))
    what = "; ".join([*(_what_to_do(rule, p) for p in dict.fromkeys(needs)), *hidden])
    mig.finding("RF001", call, f"this call may build a torch {names}: {what}")
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


def _what_to_do(rule: LayerRule, param: str) -> str:
    """What a person converting ``param`` by hand must do, from the rule's data."""
    spec = rule.params.get(param)
    if spec is None:
        return f"{param} is not a {rule.torch_name} parameter"
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
    # **dd: a dict this file builds, whose entries are converted as if written in the call.
    dict_entries: dict[int, list[tuple[str, ast.expr]]] = {}
    hidden = None
    starred = next((a for a in args if isinstance(a, ast.Starred)), None)
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
        needs = [_what_to_do(rule, p) for p in rule.torch_params if p != "*" and _differs(rule, p, None)]
        mig.unconverted(site, "TM002", call,
                        f"{hidden} the arguments of {rule.torch_name}; convert by hand: " + "; ".join(needs))
        return site

    # Bind arguments to torch parameter names.
    positional = rule.positional_params()
    bound: list[tuple[str, ast.expr, bool]] = []  # (param, value, positional?) in source order
    written: list[str] = []  # each argument as written
    if len(args) > len(positional):
        mig.unconverted(site, "TM003", call, f"{rule.torch_name} takes at most {len(positional)} positional arguments")
        return site
    for i, a in enumerate(args):
        bound.append((positional[i], a, True))
        written.append(mig.text.segment(a))
    known = rule.keyword_params()
    names_given = set(positional[: len(args)])
    from_dicts: list[tuple[str, ast.expr, ast.keyword]] = []  # (param, value, the **dict it comes from)
    for k in call.keywords:
        given = [(k.arg, k.value)] if k.arg is not None else dict_entries[id(k)]
        for param, value in given:
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

    arguments: list[Argument] = []
    added: list[tuple[str, Template]] = []
    freeze: dict[str, str] = {}
    infos: list[tuple[str, ast.AST, str]] = []
    by_param = {param: value for param, value, _ in bound}
    call_lines = tuple(mig.text.line_text(n) for n in range(call.lineno, call.end_lineno + 1))

    def convert(converter: str, spec, value: ast.expr | None) -> Conversion:
        ref = mig.ref(value) if value is not None else None
        arg = Arg(value, mig.text.segment(value) if value is not None else "", spec, rule, mig.rules.dtypes,
                  mig.titles, ref.qual if ref is not None else None,
                  by_param, call_lines, mig.text.segment)
        return CONVERTERS[converter](arg)

    near = mig.ref(call.func)  # new MindSpore names are imported next to the callee's torch import

    def template(conv: Conversion) -> Template:
        return Template(conv.value, tuple((hole, mig.spell(site, target, near=near)) for hole, target in conv.names))

    def plan_argument(param: str, value: ast.expr, is_positional: bool, as_written: str,
                      at: ast.AST | None = None) -> Argument | None:
        """What becomes of one argument (None: the site is left unconverted, with its finding, at
        ``at`` if given, else at the value)."""
        spec = rule.params[param]
        planned = Argument(param, as_written, mig.text.segment(value))
        at = at or value
        if spec.drop:
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
            conv = convert(spec.convert, spec, value)
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

    # Positions past the point where torch and MindSpore signatures diverge become keywords.
    out_position = 0
    aligned = True
    for (param, _value, is_positional), planned in zip(bound, arguments):
        if not is_positional or planned.drop:
            aligned = aligned and not (is_positional and planned.drop)
            continue
        ms_name = rule.params[param].to
        if aligned and rule.mindspore_params.index(ms_name) == out_position:
            planned.keyword = None
            out_position += 1
        else:
            aligned = False
            planned.keyword = ms_name

    if ref is not None:
        mig.convert_ref(site, ref, rule.mindspore)
    if any(a.drop or a.keyword or a.value or a.derived for a in arguments) or added:
        mig.change(site, ChangeArguments(site.id, mig.key(call), tuple(arguments), tuple(added), skip))
    for code, node, message in infos:
        mig.finding(code, node, message)
    if rule.device_note:
        mig.finding(rule.device_note, call, mig.rules.findings[rule.device_note].title)
    return site


def _dict_value(mig: Migration, site: Site, planned: Argument, reference: str | None, value: ast.expr) -> Template:
    """The new keyword's value for a dict entry: the entry's own expression (copied from the dict),
    converted as the argument would be."""
    if reference is not None:  # torch.float32 -> mindspore.float32, spelled through the imports
        spelling = mig.spell(site, reference, near=mig.ref(value))
        return Template("{name:value}", (("name:value", spelling),))
    text = escape(mig.text.segment(value))
    if planned.value is not None:
        return planned.value.filled("value", text)
    return Template(text)
