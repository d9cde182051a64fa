"""Load rules/*.toml into typed, frozen objects, once.

The TOML files are the single source of truth for what maps to what; the engine only interprets
them. Adding a layer is adding data (plus a converter in converters.py when a value mapping is new).
"""

from __future__ import annotations

import functools
import re
import string
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from .findings import SEVERITIES, FindingSpec
from .prefilter import PASS_EVERYTHING, Prefilter


class RuleError(ValueError):
    """rules/*.toml is malformed: raised at load time, never mid-migration."""


# ---------------------------------------------------------------------------------------------
# MindSpore version ranges ("<=2.10, >=2.5"): a tiny parser so the core needs no `packaging`.

_VERSION = re.compile(r"^\s*(\d+(?:\.\d+)*)")


def parse_version(text: str) -> tuple[int, ...]:
    m = _VERSION.match(text)
    if not m:
        raise ValueError(f"not a version: {text!r}")
    return tuple(int(p) for p in m.group(1).split("."))


def _cmp(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = max(len(a), len(b))
    a, b = a + (0,) * (n - len(a)), b + (0,) * (n - len(b))
    return (a > b) - (a < b)


@dataclass(frozen=True)
class VersionRange:
    text: str
    clauses: tuple[tuple[str, tuple[int, ...]], ...]

    @classmethod
    def parse(cls, text: str) -> "VersionRange":
        clauses = []
        for part in filter(None, (p.strip() for p in text.split(","))):
            m = re.match(r"^(>=|<=|==|>|<)\s*(\d+(?:\.\d+)*)$", part)
            if not m:
                raise RuleError(f"bad version clause {part!r} in {text!r}")
            clauses.append((m.group(1), parse_version(m.group(2))))
        return cls(text, tuple(clauses))

    def contains(self, version: tuple[int, ...]) -> bool:
        ops = {">=": lambda c: c >= 0, "<=": lambda c: c <= 0, ">": lambda c: c > 0,
               "<": lambda c: c < 0, "==": lambda c: c == 0}
        # Compare only as many components as the bound names: "<=2.10" admits 2.10.3.
        return all(ops[op](_cmp(version[: len(bound)], bound)) for op, bound in self.clauses)

    def newest(self) -> tuple[int, ...] | None:
        uppers = [bound for op, bound in self.clauses if op in ("<=", "==")]
        return max(uppers) if uppers else None


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamSpec:
    """How one torch parameter maps. Exactly one of: ``to`` (mapped), ``drop`` (removed with a
    finding), ``unmappable`` (error unless the value is one of ``allow``), ``freeze`` (emits code
    that freezes MindSpore parameters when the torch value is false)."""

    name: str
    to: str | None = None
    convert: str = "identity"
    drop: str | None = None
    unmappable: str | None = None
    allow: tuple[str, ...] = ()
    freeze: tuple[str, ...] = ()
    emit_when_omitted: str | None = None  # MindSpore value to pass when torch omits it (defaults differ)
    when_omitted: str | None = None  # converter that builds the value when torch omits it
    parameter: bool = False  # the value must be a parameter of a known layer (``m.weight``)
    note: str = ""


@dataclass(frozen=True)
class Layout:
    """How MindSpore lays out one parameter of a layer otherwise than torch (a rule's
    ``inserted_axes``): ``insert_axis``, an extra axis of size 1 at that position (MindSpore's Conv1d
    holds its weight (out, in/g, k) as (out, in/g, 1, k)). convert-ckpt reshapes the tensor with it."""

    insert_axis: int

    def mindspore_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        shape = tuple(shape)
        return shape[: self.insert_axis] + (1,) + shape[self.insert_axis:]

    def __str__(self) -> str:
        return f"an axis of size 1 inserted at {self.insert_axis}"


@dataclass(frozen=True)
class SampleSpec:
    """What the numeric check feeds a layer, when the input rank alone does not say it.

    ``shapes``: one Python expression per input tensor, over the torch call's arguments (defaults
    applied), e.g. ``(2, in_channels, 9, 11)``; ``integers``: an expression for the bound of
    integer inputs in [0, bound) (indices); ``random_when``: the torch parameter whose non-zero value
    makes training outputs random, and ``random_output`` how they are compared then: "mask" (the
    zeroed fraction and the scale of the kept values) or "none" (not compared; inference still is)."""

    shapes: tuple[str, ...] = ()
    integers: str | None = None
    random_when: str | None = None
    random_output: str = "none"


def param_name(entry: str) -> str:
    """A parameter's name as a signature list spells it: ``*size`` (var-positional) is ``size``."""
    return entry[1:] if entry.startswith("*") else entry


def positional(params: tuple[str, ...]) -> tuple[str, ...]:
    """The parameters an argument binds to by position, before ``*`` or a ``*name``."""
    out = []
    for p in params:
        if p.startswith("*"):
            break
        out.append(p)
    return tuple(out)


def varargs(params: tuple[str, ...]) -> str | None:
    """The var-positional parameter (``*size``) of a signature list, if any."""
    return next((p[1:] for p in params if p.startswith("*") and p != "*"), None)


@dataclass(frozen=True, eq=False)  # identity: one object per rule, usable in sets
class LayerRule:
    """A torch callable (layer class, function or tensor method) and how its calls become MindSpore
    code: a MindSpore call with the arguments mapped, or one of the ``rewrite`` templates."""

    torch: str
    mindspore: str  # "" for a method whose every spelling is a template (``contiguous``: dropped)
    kind: str  # "layer" (a Module class), "function" or "method" (of torch.Tensor)
    family: str
    group: str  # what --select names it by, with others (norm, conv, ...)
    # In order; "*" starts the keyword-only ones, "*name" is a var-positional parameter (and starts
    # them too). ``params`` names a var-positional parameter without its star.
    torch_params: tuple[str, ...]
    mindspore_params: tuple[str, ...]
    params: Mapping[str, ParamSpec]
    attributes: Mapping[str, str]  # torch attribute -> MindSpore attribute path ("" = none)
    versions: VersionRange
    input_rank: int | None = None
    notes: tuple[str, ...] = ()
    device_note: str | None = None  # finding code reported on every converted site
    unsupported_members: Mapping[str, str] = field(default_factory=dict)  # class attribute -> finding code
    dtype_notes: Mapping[str, str] = field(default_factory=dict)  # torch dtype -> finding code
    read_when_built: frozenset[str] = frozenset()  # torch attributes MindSpore reads only when built
    # How the numeric check feeds the layer (verify): see SampleSpec.
    sample: SampleSpec = field(default_factory=SampleSpec)
    # torch attributes whose initial values are drawn at random: compared by their statistics.
    random_init: tuple[str, ...] = ()
    # torch attribute -> axis of size 1 MindSpore's tensor has in addition (Conv1d's weight is 4-D).
    inserted_axes: Mapping[str, int] = field(default_factory=dict)
    # Expressions that replace the whole call, tried in order: the first whose ``{arg:<name>}`` holes
    # (MindSpore parameter names) all have a value and that uses every argument given applies.
    # ``{receiver}`` is the tensor a method is called on, ``{name:mindspore.x.y}`` a MindSpore name.
    rewrite: tuple[str, ...] = ()
    returns: str = "tensor"  # what a call gives, for the tensor inference: tensor | tensors | other
    unmappable: str | None = None  # no MindSpore counterpart at all: the finding code
    random: bool = False  # draws random numbers: the same distribution, never the same values

    @property
    def layouts(self) -> dict[str, Layout]:
        """torch attribute -> how MindSpore lays out that parameter, where it differs."""
        return {name: Layout(axis) for name, axis in self.inserted_axes.items()}

    @property
    def torch_name(self) -> str:
        return self.torch.rsplit(".", 1)[1]

    @property
    def mindspore_name(self) -> str:
        return self.mindspore.rsplit(".", 1)[-1]

    def positional_params(self) -> tuple[str, ...]:
        return positional(self.torch_params)

    @property
    def varargs(self) -> str | None:
        return varargs(self.torch_params)

    def param_names(self) -> tuple[str, ...]:
        """The torch parameters by name, in order (no ``*`` markers)."""
        return tuple(param_name(p) for p in self.torch_params if p != "*")

    def keyword_params(self) -> frozenset[str]:
        return frozenset(param_name(p) for p in self.torch_params if p != "*")

    def mindspore_position(self, name: str) -> int | None:
        """Where MindSpore takes ``name`` by position (None: by keyword only). A var-positional
        parameter is taken at its position (its values from there on)."""
        ms_positional = positional(self.mindspore_params)
        if name in ms_positional:
            return ms_positional.index(name)
        if name == varargs(self.mindspore_params):
            return len(ms_positional)
        return None


@dataclass(frozen=True)
class NameMapping:
    """A torch name that maps to a MindSpore name wherever it is referenced (Module -> Cell, ...)."""

    torch: str
    mindspore: str
    kind: str  # "module_base" | "container"
    family: str
    group: str
    versions: VersionRange
    always: bool = False  # kept by every selection (the module skeleton every conversion needs)


@dataclass(frozen=True)
class RuleSet:
    layers: Mapping[str, LayerRule]  # layers and functions, by torch name
    names: Mapping[str, NameMapping]
    dtypes: Mapping[str, str]
    module_aliases: Mapping[str, str]
    counterparts: Mapping[str, str]
    findings: Mapping[str, FindingSpec]
    families: Mapping[str, str]  # family -> title
    trigger_words: frozenset[str] = field(default=frozenset())
    # The finding codes a run reports (a selection can leave some out); None: every one.
    reported: frozenset[str] | None = None
    # Every API is converted (no --select/--ignore of APIs): a file whose only torch is module
    # classes is migrated then (a selection that leaves APIs out keeps such files as they are).
    complete: bool = True

    methods: Mapping[str, LayerRule] = field(default_factory=dict)  # tensor methods, by method name
    # Methods of torch modules that Cells spell otherwise, called with no arguments: name -> the
    # expression that replaces the call (``{receiver}``: the module).
    module_methods: Mapping[str, str] = field(default_factory=dict)

    def reports(self, code: str) -> bool:
        return self.reported is None or code in self.reported

    def canonical(self, qual: str) -> str:
        """torch.nn.modules.batchnorm.BatchNorm2d -> torch.nn.BatchNorm2d."""
        head, _, tail = qual.rpartition(".")
        while head:
            alias = self.module_aliases.get(head)
            if alias:
                return f"{alias}.{tail}"
            head, _, last = head.rpartition(".")
            tail = f"{last}.{tail}"
        return qual

    def mapped(self, qual: str) -> str | None:
        """The MindSpore name for a torch name referenced anywhere (layers and shared names)."""
        rule = self.layers.get(qual)
        if rule is not None:
            return rule.mindspore
        name = self.names.get(qual)
        return name.mindspore if name is not None else None

    def newest_version(self) -> tuple[int, ...]:
        newest = [v for r in self.layers.values() if (v := r.versions.newest())]
        return max(newest) if newest else (0,)

    @functools.cached_property
    def prefilter(self) -> Prefilter:
        return Prefilter(self.trigger_words, {q.split(".", 1)[0] for q in self.layers})

    def selected(self, select: tuple[str, ...] = (), ignore: tuple[str, ...] = ()) -> RuleSet:
        """The rules a selection keeps, in the style of ruff's ``--select``/``--ignore``. A selector
        names a group (``norm``), a family (``batchnorm``), a torch name (``torch.nn.BatchNorm2d`` or
        ``BatchNorm2d``) or finding codes (``MD003``, or a prefix: ``MD``). API selectors choose what is
        converted (none in ``select``: everything); code selectors choose what is reported. Rules marked
        ``always`` (the module skeleton) stay unless ignored by name."""
        if not select and not ignore:
            return self
        for selector in (*select, *ignore):
            if not self._names_api(selector) and not self._names_codes(selector):
                raise RuleError(f"unknown selector {selector!r}: not a group ({', '.join(sorted(self.groups))}), "
                                f"a family, a torch name or a finding code")
        api_select = [x for x in select if self._names_api(x)]
        api_ignore = [x for x in ignore if self._names_api(x)]
        code_select = [x for x in select if self._names_codes(x)]
        code_ignore = [x for x in ignore if self._names_codes(x)]

        def kept(rule) -> bool:
            chosen = not api_select or any(_names(x, rule) for x in api_select) or getattr(rule, "always", False)
            return chosen and not any(_names(x, rule) for x in api_ignore)

        layers = {q: r for q, r in self.layers.items() if kept(r)}
        methods = {q: r for q, r in self.methods.items() if kept(r)}
        names = {q: n for q, n in self.names.items() if kept(n)}
        reported = {c for c in self.findings
                    if (not code_select or any(c.startswith(x) for x in code_select))
                    and not any(c.startswith(x) for x in code_ignore)}
        return replace(self, layers=MappingProxyType(layers), methods=MappingProxyType(methods),
                       names=MappingProxyType(names),
                       trigger_words=_triggers(layers, names),
                       reported=frozenset(reported), complete=not api_select and not api_ignore)

    @functools.cached_property
    def groups(self) -> frozenset[str]:
        return frozenset(r.group for r in (*self.layers.values(), *self.methods.values(), *self.names.values()))

    def _names_api(self, selector: str) -> bool:
        return any(_names(selector, r) for r in (*self.layers.values(), *self.methods.values(), *self.names.values()))

    def _names_codes(self, selector: str) -> bool:
        return selector[:1].isupper() and selector.isalnum() and any(c.startswith(selector) for c in self.findings)

    def unfiltered(self) -> RuleSet:
        """These rules with a prefilter that lets every file through: what the prefilter is checked
        against (the tests, the benchmark)."""
        rules = replace(self)
        rules.__dict__["prefilter"] = PASS_EVERYTHING  # the cached property, already computed
        return rules


def _triggers(layers: Mapping[str, LayerRule], names: Mapping[str, NameMapping]) -> frozenset[str]:
    """The prefilter's words: a file is parsed only if its text names something a rule triggers on: a
    layer, a function, the module base class (tensor methods are found in the classes built on it), or
    a container (a class built on one becomes a Cell)."""
    words = {q.rsplit(".", 1)[1] for q in layers}
    words |= {n.torch.rsplit(".", 1)[1] for n in names.values() if n.kind in ("module_base", "container")}
    return frozenset(words)


def _names(selector: str, rule: "LayerRule | NameMapping") -> bool:
    return selector in (rule.group, rule.family, rule.torch, rule.torch.rsplit(".", 1)[1])


# ---------------------------------------------------------------------------------------------


def rules_dir() -> Path:
    """rules/ ships as the package codemod.rules; a source checkout has it at the top."""
    try:
        from importlib.util import find_spec

        # rules/ has no __init__.py: installed, codemod.rules is a namespace package, for which
        # importlib.resources.files() gives a MultiplexedPath whose str() is not a path.
        spec = find_spec("codemod.rules")
        for location in (spec.submodule_search_locations or []) if spec is not None else []:
            packaged = Path(location)
            if packaged.is_dir() and any(packaged.glob("*.toml")):
                return packaged
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parent.parent / "rules"


_FILE_KEYS = {"meta", "layer", "method", "name", "dtypes", "module_aliases", "counterparts", "module_methods"}
_META_KEYS = {"family", "title", "group", "always", "mindspore_versions"}
_LAYER_KEYS = {"torch", "mindspore", "kind", "torch_params", "mindspore_params", "params", "attributes",
               "input_rank", "extends", "notes", "mindspore_versions", "device_note", "unsupported_members",
               "dtype_notes", "read_when_built", "sample", "random_init", "inserted_axes", "rewrite", "returns",
               "unmappable", "random"}
_SAMPLE_KEYS = {"shape", "integers", "random_when", "random_output"}
RANDOM_OUTPUTS = ("mask", "none")
_METHOD_KEYS = {"torch", "mindspore", "torch_params", "mindspore_params", "params", "notes", "mindspore_versions",
                "device_note", "dtype_notes", "rewrite", "returns", "unmappable"}
_NAME_KEYS = {"torch", "mindspore", "kind", "mindspore_versions"}
_PARAM_KEYS = {"to", "convert", "drop", "unmappable", "allow", "freeze", "emit_when_omitted", "when_omitted", "note", "parameter"}
_FINDING_KEYS = {"severity", "title"}
LAYER_KINDS = ("layer", "function")
NAME_KINDS = ("module_base", "container")
RETURNS = ("tensor", "tensors", "other")


def _known_keys(raw: dict, allowed: set[str], where: str) -> None:
    unknown = set(raw) - allowed
    if unknown:
        raise RuleError(f"{where}: unknown keys {sorted(unknown)} (known: {', '.join(sorted(allowed))})")


def _one_of(value, allowed, what: str, where: str) -> None:
    if value not in allowed:
        raise RuleError(f"{where}: {what} {value!r} is not one of {', '.join(map(repr, allowed))}")


def _param(name: str, raw: dict, where: str) -> ParamSpec:
    from .converters import (
        CONVERTERS,  # converters import nothing from here at run time
    )

    _known_keys(raw, _PARAM_KEYS, f"{where}: parameter {name}")
    kinds = [k for k in ("to", "drop", "unmappable", "freeze") if k in raw]
    if len(kinds) != 1:
        raise RuleError(f"{where}: parameter {name} needs exactly one of to/drop/unmappable/freeze, has {kinds}")
    for key in ("convert", "when_omitted"):
        if key in raw:
            _one_of(raw[key], sorted(CONVERTERS), f"parameter {name}: {key} =", where)
    return ParamSpec(
        name=name,
        to=raw.get("to"),
        convert=raw.get("convert", "identity"),
        drop=raw.get("drop"),
        unmappable=raw.get("unmappable"),
        allow=tuple(raw.get("allow", ())),
        freeze=tuple(raw.get("freeze", ())),
        emit_when_omitted=raw.get("emit_when_omitted"),
        when_omitted=raw.get("when_omitted"),
        parameter=bool(raw.get("parameter", False)),
        note=raw.get("note", ""),
    )


def _inserted_axes(raw: dict, attributes: dict, where: str) -> dict[str, int]:
    for name, axis in raw.items():
        if not attributes.get(name):
            raise RuleError(f"{where}: inserted_axes: {name} is not a parameter with a counterpart in "
                            "[layer.attributes]")
        if type(axis) is not int or axis < 0:
            raise RuleError(f"{where}: inserted_axes: {name} must be a non-negative int (an axis), not {axis!r}")
    return dict(raw)


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        if key in ("params", "attributes", "unsupported_members", "dtype_notes", "sample", "inserted_axes") \
                and key in out:
            merged = dict(out[key])
            merged.update(value)
            out[key] = merged
        else:
            out[key] = value
    return out


def template_holes(text: str) -> list[tuple[str, str]]:
    """The ``{field:spec}`` holes of a template, as (field, spec) pairs."""
    return [(field, spec) for _literal, field, spec, _conv in string.Formatter().parse(text) if field is not None]


def _check_rewrite(text: str, kind: str, ms_names: set[str], where: str) -> None:
    """A rewrite template must be an expression whose holes are known: refused at load, not mid-run."""
    import ast

    source = text
    for field, spec in template_holes(text):
        hole = "{" + field + (":" + spec if spec else "") + "}"
        if field == "arg" and spec in ms_names:
            pass
        elif field == "receiver" and not spec and kind == "method":
            pass
        elif field == "name" and spec.startswith("mindspore."):
            pass
        else:
            raise RuleError(f"{where}: rewrite {text!r}: unknown hole {hole} (holes: {{receiver}} for methods, "
                            f"{{arg:<a mindspore_params name>}}, {{name:mindspore.<name>}})")
        source = source.replace(hole, "_hole", 1)
    try:
        ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise RuleError(f"{where}: rewrite {text!r} is not an expression: {exc.msg}") from None


def _rule(raw: dict, kind: str, family: str, group: str, default_versions: str, where: str) -> LayerRule:
    params = {name: _param(name, spec, where) for name, spec in raw.get("params", {}).items()}
    torch_params = tuple(raw.get("torch_params", ()))
    names = [param_name(p) for p in torch_params if p != "*"]
    for name in params:
        if name not in names:
            raise RuleError(f"{where}: parameter {name} is not in torch_params")
    for name in names:
        if name not in params:
            raise RuleError(f"{where}: torch parameter {name} is neither mapped nor marked unmappable")
    ms_params = tuple(raw.get("mindspore_params", ()))
    ms_names = {param_name(p) for p in ms_params if p != "*"}
    for spec in params.values():
        if spec.to and spec.to not in ms_names:
            raise RuleError(f"{where}: {spec.name} maps to {spec.to}, not in mindspore_params")
    rewrite = tuple(raw.get("rewrite", ()))
    for text in rewrite:
        _check_rewrite(text, kind, ms_names, where)
    returns = raw.get("returns", "tensor")
    _one_of(returns, RETURNS, "returns", where)
    mindspore = raw.get("mindspore", "")
    if not (mindspore or rewrite or raw.get("unmappable")):
        raise RuleError(f"{where}: needs a mindspore target, a rewrite or unmappable")
    if kind == "method" and not raw["torch"].startswith("torch.Tensor."):
        raise RuleError(f"{where}: a method rule names torch.Tensor.<method>")
    sample = dict(raw.get("sample", {}))
    _known_keys(sample, _SAMPLE_KEYS, f"{where}: sample")
    _one_of(sample.get("random_output", "none"), RANDOM_OUTPUTS, "sample.random_output", where)
    if sample.get("random_when") and sample["random_when"] not in names:
        raise RuleError(f"{where}: sample.random_when {sample['random_when']} is not in torch_params")
    return LayerRule(
        torch=raw["torch"],
        mindspore=mindspore,
        kind=kind,
        family=family,
        group=group,
        torch_params=torch_params,
        mindspore_params=ms_params,
        params=MappingProxyType(params),
        attributes=MappingProxyType(dict(raw.get("attributes", {}))),
        versions=VersionRange.parse(raw.get("mindspore_versions", default_versions)),
        input_rank=raw.get("input_rank"),
        notes=tuple(raw.get("notes", ())),
        device_note=raw.get("device_note"),
        unsupported_members=MappingProxyType(dict(raw.get("unsupported_members", {}))),
        dtype_notes=MappingProxyType(dict(raw.get("dtype_notes", {}))),
        rewrite=rewrite,
        returns=returns,
        unmappable=raw.get("unmappable"),
        random=bool(raw.get("random", False)),
        read_when_built=frozenset(raw.get("read_when_built", ())),
        sample=SampleSpec(
            shapes=(sample["shape"],) if isinstance(sample.get("shape"), str) else tuple(sample.get("shape", ())),
            integers=sample.get("integers"), random_when=sample.get("random_when"),
            random_output=sample.get("random_output", "none")),
        random_init=tuple(raw.get("random_init", ())),
        inserted_axes=MappingProxyType(_inserted_axes(raw.get("inserted_axes", {}), raw.get("attributes", {}),
                                                      where)),
    )


def load_rules(directory: Path | None = None) -> RuleSet:
    directory = directory or rules_dir()
    layers: dict[str, LayerRule] = {}
    methods: dict[str, LayerRule] = {}
    names: dict[str, NameMapping] = {}
    dtypes: dict[str, str] = {}
    module_aliases: dict[str, str] = {}
    counterparts: dict[str, str] = {}
    module_methods: dict[str, str] = {}
    findings: dict[str, FindingSpec] = {}
    families: dict[str, str] = {}

    paths = sorted(directory.glob("*.toml"))
    if not paths:
        raise RuleError(f"no rules found in {directory}")
    for path in paths:
        with path.open("rb") as fh:
            try:
                data = tomllib.load(fh)
            except tomllib.TOMLDecodeError as exc:
                raise RuleError(f"{path.name}: {exc}") from exc
        if path.name == "findings.toml":
            for code, spec in data.items():
                _known_keys(spec, _FINDING_KEYS, f"findings.toml: {code}")
                if spec.get("severity") not in SEVERITIES:
                    raise RuleError(f"findings.toml: {code} has severity {spec.get('severity')!r}")
                findings[code] = FindingSpec(code, spec["severity"], spec["title"])
            continue
        _known_keys(data, _FILE_KEYS, path.name)
        meta = data.get("meta", {})
        _known_keys(meta, _META_KEYS, f"{path.name}: [meta]")
        family = meta.get("family", path.stem)
        group = meta.get("group", family)
        always = meta.get("always", False)
        families[family] = meta.get("title", family)
        default_versions = meta.get("mindspore_versions", "")
        raw_layers: dict[str, dict] = {}
        for raw in data.get("layer", []):
            where = f"{path.name}: {raw.get('torch', '?')}"
            _known_keys(raw, _LAYER_KEYS, where)
            _one_of(raw.get("kind", "layer"), LAYER_KINDS, "kind", where)
            if "extends" in raw:
                base = raw_layers.get(raw["extends"])
                if base is None:
                    raise RuleError(f"{where}: extends unknown {raw['extends']} (must come earlier in the file)")
                raw = _merge({k: v for k, v in base.items() if k != "extends"}, raw)
            raw_layers[raw["torch"]] = raw
            layers[raw["torch"]] = _rule(raw, raw.get("kind", "layer"), family, group, default_versions, where)
        for raw in data.get("method", []):
            where = f"{path.name}: {raw.get('torch', '?')}"
            _known_keys(raw, _METHOD_KEYS, where)
            rule = _rule(raw, "method", family, group, default_versions, where)
            methods[rule.torch_name] = rule
        for raw in data.get("name", []):
            where = f"{path.name}: {raw.get('torch', '?')}"
            _known_keys(raw, _NAME_KEYS, where)
            _one_of(raw.get("kind"), NAME_KINDS, "kind", where)
            names[raw["torch"]] = NameMapping(
                torch=raw["torch"], mindspore=raw["mindspore"], kind=raw["kind"], family=family, group=group,
                always=always,
                versions=VersionRange.parse(raw.get("mindspore_versions", default_versions)),
            )
        dtypes.update(data.get("dtypes", {}))
        module_aliases.update(data.get("module_aliases", {}))
        counterparts.update(data.get("counterparts", {}))
        for name, text in data.get("module_methods", {}).items():
            if not isinstance(text, str) or "{receiver}" not in text:
                raise RuleError(f"{path.name}: module_methods.{name} must be an expression with {{receiver}}")
            module_methods[name] = text

    every = [*layers.values(), *methods.values()]
    codes_used = {c for r in every for p in r.params.values() for c in (p.drop, p.unmappable) if c}
    codes_used |= {c for r in every for c in (r.device_note, r.unmappable) if c}
    codes_used |= {c for r in every for c in r.unsupported_members.values()}
    codes_used |= {c for r in every for c in r.dtype_notes.values()}
    missing = codes_used - set(findings)
    if missing:
        raise RuleError(f"finding codes used by rules but not in findings.toml: {sorted(missing)}")

    return RuleSet(
        layers=MappingProxyType(layers),
        names=MappingProxyType(names),
        dtypes=MappingProxyType(dtypes),
        module_aliases=MappingProxyType(module_aliases),
        counterparts=MappingProxyType(counterparts),
        module_methods=MappingProxyType(module_methods),
        findings=MappingProxyType(findings),
        families=MappingProxyType(families),
        trigger_words=_triggers(layers, names),
        methods=MappingProxyType(methods),
    )


@functools.lru_cache(maxsize=None)
def default_rules() -> RuleSet:
    return load_rules()


def rules_of(config) -> RuleSet:
    """The rules a migration with ``config`` (model.Config) applies: its own, else the shipped ones,
    as its selection keeps them."""
    rules = config.rules or default_rules()
    select, ignore = tuple(config.select), tuple(config.ignore)
    if not select and not ignore:
        return rules
    key = (id(rules), select, ignore)
    cached = _SELECTIONS.get(key)
    if cached is None or cached[0] is not rules:
        cached = _SELECTIONS[key] = (rules, rules.selected(select, ignore))
    return cached[1]


_SELECTIONS: dict = {}  # (id of the rules, select, ignore) -> (the rules, their selection)


def target_version(config) -> tuple[int, ...]:
    """The MindSpore version a migration with ``config`` targets: asked for, else the newest the rules know."""
    if config.mindspore_version:
        return parse_version(config.mindspore_version)
    return rules_of(config).newest_version()
