"""The grammar: hypothesis strategies of small PyTorch programs that build the layers of rules/*.toml
in every construction context, set their modes, use them (also under ``no_grad``), read and write
their attributes, and record every result with ``record(name, value)`` on inputs from
``sample(*shape, seed=)`` (the builtins of codemod/verify/harness.py).

Every line of a program carries the entities it builds, uses or sets the mode of (layers, modules,
containers, helper definitions, module-level variables); every record names the entities its value
depends on. The lines of a record are the lines tagged with one of them: a difference in that record
is allowed only where the tool reported a warning or an error on one of those lines.

Only programs torch runs are meant: a layer whose ``weight`` is None (``affine=False``) is not read,
and so on. A program torch rejects is counted apart by the runner ("invalid"), never as a pass.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import itertools
import re
from dataclasses import dataclass, field

from hypothesis import strategies as st

from codemod.ruleset import LayerRule, default_rules

RULES = default_rules()
# The rules of the groups this grammar knows how to feed (FUZZED_GROUPS): the normalization layers,
# whose results depend on the training mode and on every construction context. The layers of issue
# 15 (convolutions, pooling, ... which change shapes) are proven by their numeric suites and the
# whole-model checks; a group added here must bring its values to OPTIONS and SHAPES.
FUZZED_GROUPS = ("norm",)
LAYER_RULES = tuple(sorted((r for r in RULES.layers.values() if r.kind == "layer" and r.group in FUZZED_GROUPS),
                           key=lambda r: r.torch))
FUNCTION_RULES = tuple(sorted((r for r in RULES.layers.values() if r.kind == "function" and r.group in FUZZED_GROUPS),
                              key=lambda r: r.torch, reverse=True))  # F.batch_norm first: the usual spelling
# Containers and the module base, by torch name (torch.nn.Sequential, ...): from rules/modules.toml.
CONTAINERS = tuple(sorted(q.rsplit(".", 1)[1] for q, n in RULES.names.items() if n.kind == "container"))
MODULE_BASE = next(q.rsplit(".", 1)[1] for q, n in RULES.names.items() if n.kind == "module_base")

# Input shapes by rank: channels at position 1 and 4 of them, the last dimension 4 too, so that every
# layer of a rank (BatchNorm, GroupNorm, LayerNorm over the last one or two dimensions) takes the same
# input and layers chain in containers and forward().
CHANNELS = 4
SHAPES = {3: (3, 4, 4), 4: (2, 4, 3, 4), 5: (2, 4, 2, 3, 4)}

# Module-level variables a program may use in arguments, with the values a program draws for them.
VARIABLES = {
    "c": [4],
    "g": [2],
    "m": [0.3, 0.05, 0.1],
    "eps": [1e-3, 0.01],
    "flag": [True, False],
    "track": [True, False],
    "dev": ["cpu"],
    "dt": ["torch.float32"],  # source text: a dtype variable (TM004)
    "shape": [4, (4,)],
}

# How each torch parameter may be written (repeated entries weigh more). Every parameter of every
# layer rule must be here: a rule added to rules/*.toml with a new parameter makes the generator fail,
# not skip it. Values the tool must refuse (momentum=None, a dtype variable, affine=False where the
# layer has no name to freeze parameters on) are rarer, so that most programs run to the end.
OPTIONS = {
    "num_features": ["4", "c", "2 * 2", "c * 1", "int(4.0)"],
    "num_channels": ["4", "c", "2 * c // 2"],
    "num_groups": ["2", "g", "1", "4"],
    "eps": ["1e-3", "0.01", "1e-05", "eps", "eps * 2", "1", "1e-3 + 0"],
    "momentum": ["0.1", "0.3", "0.05", "m", "m / 2", "1 - 0.8", "0.5 * m", "(0.2)", "0.1", "0.3", "m", "None"],
    "affine": ["True", "True", "True", "flag", "not flag", "False"],
    "track_running_stats": ["True", "False", "track", "not track"],
    "elementwise_affine": ["True", "True", "True", "flag", "False"],
    "bias": ["True", "True", "True", "flag", "False"],
    "device": ["'cpu'", "None", "torch.device('cpu')", "dev"],
    "dtype": ["torch.float32", "torch.float32", "torch.float32", "torch.float", "torch.float", "None", "None", "None",
              "None", "dt"],
    "process_group": ["None"],
    "normalized_shape": None,  # depends on the rank: normalized_shape_options()
}
# Parameters whose value decides which attributes exist (a None attribute is not read).
FLAGS = ("affine", "track_running_stats", "elementwise_affine", "bias")
# Values a comprehension or a factory parameter may run a parameter over.
SWEEPS = {"momentum": ("0.1", "0.3"), "eps": ("1e-3", "0.01"), "affine": ("True", "False"),
          "track_running_stats": ("True", "False")}

MODE_CALLS = ["train()", "train(False)", "train(True)", "train(mode=flag)", "train(flag)", "eval()",
              "train().eval()", "eval().train()", "eval().train(False)", "train(mode=False)"]
INPUT_FORMS = ["sample({shape}, seed={seed}) * 2 + 0.5", "sample({shape}, seed={seed})",
               "sample({shape}, seed={seed}) * 3 - 1"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


@functools.lru_cache(maxsize=None)
def torch_defaults(qual: str) -> dict[str, object]:
    """torch's defaults for the parameters of ``qual`` (inspect.Parameter.empty for required ones),
    from the installed torch: the generator then knows which attributes exist."""
    module, name = qual.rsplit(".", 1)
    obj = getattr(importlib.import_module(module), name)
    params = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj).parameters
    return {n: p.default for n, p in params.items() if n != "self"}


def normalized_shape_options(rank: int) -> list[tuple[str, str]]:
    """(text, pragma) for LayerNorm's normalized_shape on inputs of ``rank``."""
    two = SHAPES[rank][-2:]
    multi = f"({two[0]}, {two[1]})"
    return [("4", ""), ("c", ""), ("(4,)", ""), ("[4]", ""), ("(c,)", ""), ("shape", ""), ("[c]", ""),
            (multi, f"  # torch2ms: input-rank={rank}"), (multi, f"  # torch2ms: input-rank={rank}"), (multi, "")]


def ranks_of(rule: LayerRule) -> tuple[int, ...]:
    if "normalized_shape" in rule.torch_params:
        return tuple(SHAPES)  # LayerNorm normalizes the last dimensions of any input
    return (rule.input_rank,)


# -- the program being built ---------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    text: str
    tags: frozenset[str] = frozenset()  # what the line builds, uses or sets the mode of
    deps: frozenset[str] = frozenset()  # what that depends on (default: the tags)


@dataclass
class Program:
    """A generated program: its source, and for every record the 1-based lines it depends on."""

    source: str
    records: dict[str, frozenset[int]]
    features: frozenset[str]
    line_tags: tuple[frozenset[str], ...] = ()  # per line, from line 1
    default_lines: frozenset[int] = frozenset()  # the lines of a record not in ``records``
    line_deps: tuple[frozenset[str], ...] = ()  # per line: the entities what it acts on depends on

    @classmethod
    def whole(cls, source: str) -> "Program":
        """A hand-written program (a failure file, a test): every record depends on every line."""
        lines = frozenset(range(1, len(source.splitlines()) + 1))
        return cls(source, {}, frozenset(), tuple(frozenset({"program"}) for _ in lines), lines)

    def lines_of(self, record: str) -> frozenset[int]:
        return self.records.get(record, self.default_lines)

    def entity_lines(self, line: int) -> frozenset[int]:
        """The lines that built, used or set the mode of what ``line`` acts on."""
        if not 1 <= line <= len(self.line_tags):
            return frozenset()
        deps = (self.line_deps[line - 1] if self.line_deps else frozenset()) or self.line_tags[line - 1]
        return frozenset(i for i, t in enumerate(self.line_tags, 1) if t & deps)


@dataclass
class LayerSpec:
    """One construction: the rule, its arguments as written, and what torch makes of them."""

    rule: LayerRule
    positional: list[str]
    keywords: list[tuple[str, str]]
    values: dict[str, object]  # the FLAGS and momentum, evaluated (torch defaults when omitted)
    rank: int
    pragma: str = ""
    star_args: str | None = None  # "*name" / "**name": arguments moved into a variable
    star_kwargs: str | None = None
    prelude: list[str] = field(default_factory=list)  # statements defining those variables
    variables: set[str] = field(default_factory=set)

    def arguments(self, positional=None, keywords=None) -> str:
        positional = self.positional if positional is None else positional
        keywords = self.keywords if keywords is None else keywords
        parts = list(positional)
        if self.star_args:
            parts.append(self.star_args)
        parts += [f"{k}={v}" for k, v in keywords]
        if self.star_kwargs:
            parts.append(self.star_kwargs)
        return ", ".join(parts)

    def call(self, callee: str) -> str:
        return f"{callee}({self.arguments()})"

    def has(self, attr: str) -> bool:
        """Whether torch's attribute holds a value worth recording (not None)."""
        v = self.values
        if attr == "weight":
            return bool(v.get("affine", v.get("elementwise_affine", True)))
        if attr == "bias":
            return bool(v.get("affine", v.get("elementwise_affine", True))) and bool(v.get("bias", True))
        if attr in ("running_mean", "running_var", "num_batches_tracked"):
            return bool(v.get("track_running_stats", False))
        if attr == "momentum":
            return v.get("momentum") is not None
        return True

    def readable(self) -> list[str]:
        return [a for a in self.rule.attributes if self.has(a)] + ["training"]

    def writable(self) -> list[str]:
        out = [a for a in ("momentum", "eps") if a in self.rule.attributes]
        return out + ["training"]


@dataclass
class Handle:
    """An expression that reaches a built layer or module, and what a result through it depends on."""

    expr: str
    deps: frozenset[str]  # the entities a result through it depends on
    rank: int
    spec: LayerSpec | None = None  # a single layer: its attributes can be read
    callable: bool = True
    name: str | None = None  # a plain module-level name bound to it
    own: frozenset[str] | None = None  # the tags of the lines acting on it (default: deps, unshared)

    def __post_init__(self) -> None:
        self.deps = frozenset(self.deps)
        self.own = frozenset(self.own) if self.own is not None else own(self.deps)


def shared(tag: str) -> bool:
    """Entities many others use (module-level variables, helper functions): a line using one is not
    tagged with it, or every record using a variable would depend on every line using it."""
    return tag.startswith(("v:", "H"))


def own(tags) -> frozenset[str]:
    return frozenset(t for t in tags if not shared(t))


@functools.lru_cache(maxsize=None, typed=True)
def _strategy(kind: str, *args):
    # Strategies are built once: hypothesis validates and labels every new one, which costs more
    # than the draw itself.
    if kind == "pick":
        return st.sampled_from(args)
    if kind == "integer":
        return st.integers(*args)
    if kind == "subset":
        return st.lists(st.sampled_from(args[1:]), unique=True, max_size=args[0])
    if kind == "shuffle":
        return st.permutations(args)
    raise ValueError(kind)


# How each import style spells torch.nn (the "names" style imports the classes themselves).
NN_SPELLING = {"nn": "nn", "from_torch": "nn", "torch": "torch.nn", "alias": "tnn", "names": None}


class Builder:
    """One program being drawn: its lines, records and what they depend on, and the choices made."""

    def __init__(self, draw):
        self.draw = draw
        self.lines: list[Line] = []
        self.records: dict[str, frozenset[str]] = {}
        self.record_lines: dict[str, int] = {}
        self.features: set[str] = set()
        self.counters: dict[str, int] = {}
        self.seed = 0
        self.env = {name: self.pick(values) for name, values in VARIABLES.items()}
        self.env_used: set[str] = set()
        self.style = self.pick(list(NN_SPELLING))
        self.features.add(f"style:{self.style}")
        self.nn_names: set[str] = set()  # for the "names" style
        self.needs_torch = self.style == "torch"
        self.needs_functools = False
        self.helpers: dict[str, str] = {}  # helper function name -> entity
        self.extra_imports: set[str] = set()

    # -- choices ---------------------------------------------------------------------------------

    def pick(self, options):
        options = tuple(options)
        try:
            return self.draw(_strategy("pick", *options))
        except TypeError:  # unhashable options (handles, specs)
            return options[self.draw(_strategy("integer", 0, len(options) - 1))]

    def coin(self) -> bool:
        return self.draw(_strategy("pick", False, True))

    def integer(self, lo: int, hi: int) -> int:
        return self.draw(_strategy("integer", lo, hi))

    def subset(self, options, max_size: int) -> list:
        return list(self.draw(_strategy("subset", max_size, *options))) if options else []

    def shuffle(self, items) -> list:
        return list(self.draw(_strategy("shuffle", *items))) if items else []

    # -- naming ----------------------------------------------------------------------------------

    def fresh(self, prefix: str) -> str:
        n = self.counters.get(prefix, 0)
        self.counters[prefix] = n + 1
        return f"{prefix}{n}"

    def next_seed(self) -> int:
        self.seed += 1
        return self.seed

    def nn(self, name: str) -> str:
        """How this program spells torch.nn.<name>."""
        if self.style == "names":
            self.nn_names.add(name)
            return name
        return f"{self.nn_module()}.{name}"

    def nn_module(self) -> str | None:
        """The expression naming torch.nn itself (None in the "names" style)."""
        return NN_SPELLING[self.style]

    def torch(self, attr: str) -> str:
        self.needs_torch = True
        return f"torch.{attr}"

    def emit(self, text: str, tags=frozenset(), record: str | None = None, deps=frozenset(),
             definition: bool = False) -> None:
        """Lines tagged with ``tags`` (shared entities only where they are defined); a record on the
        last one, depending on ``deps`` (default: ``tags``)."""
        line_tags = frozenset(tags) if definition else own(tags)
        line_deps = frozenset(deps or tags)
        for physical in text.split("\n"):
            self.lines.append(Line(physical, line_tags, line_deps))
        if record is not None:
            self.add_record(record, deps or tags, len(self.lines))

    def add_record(self, name: str, deps, line: int) -> None:
        assert name not in self.records, name
        self.records[name] = frozenset(deps)
        self.record_lines[name] = line

    def record_name(self, what: str) -> str:
        return self.fresh("r") + "_" + re.sub(r"\W+", "_", what).strip("_")

    def input_expr(self, rank: int) -> str:
        form = self.pick(INPUT_FORMS)
        return form.format(shape=", ".join(map(str, SHAPES[rank])), seed=self.next_seed())

    def uses_variables(self, text: str) -> set[str]:
        found = {m.group(0) for m in _IDENT.finditer(text)} & set(VARIABLES)
        self.env_used |= found
        if "torch." in text:
            self.needs_torch = True
        return found

    def tags_of(self, spec: LayerSpec, entity: str) -> frozenset[str]:
        return frozenset({entity, *(f"v:{v}" for v in spec.variables)})

    def emit_prelude(self, spec: LayerSpec, tags) -> None:
        for stmt in spec.prelude:
            self.emit(stmt, tags)

    # -- assembling ------------------------------------------------------------------------------

    def program(self) -> Program:
        header: list[Line] = []
        if any(str(self.env[name]).startswith("torch.") for name in self.env_used):
            self.needs_torch = True
        if self.needs_torch:
            header.append(Line("import torch"))
        if self.style == "nn":
            header.append(Line("import torch.nn as nn"))
        elif self.style == "from_torch":
            header.append(Line("from torch import nn"))
        elif self.style == "alias":
            header.append(Line("import torch.nn as tnn"))
        elif self.style == "names" and self.nn_names:
            header.append(Line(f"from torch.nn import {', '.join(sorted(self.nn_names))}"))
        for extra in sorted(self.extra_imports):
            header.append(Line(extra))
        if self.needs_functools:
            header.append(Line("import functools"))
        header.append(Line(""))
        for name in sorted(self.env_used):
            value = self.env[name]
            text = value if isinstance(value, str) and value.startswith("torch.") else repr(value)
            header.append(Line(f"{name} = {text}", frozenset({f"v:{name}"})))
        offset = len(header)
        lines = header + self.lines
        source = "\n".join(line.text for line in lines) + "\n"
        assert len(source.splitlines()) == len(lines), "a Line holding more than one line"
        records = {}
        for name, deps in self.records.items():
            involved = {i + 1 for i, line in enumerate(lines) if line.tags & deps}
            involved.add(self.record_lines[name] + offset)
            records[name] = frozenset(involved)
        return Program(source, records, frozenset(self.features), tuple(line.tags for line in lines),
                       line_deps=tuple(line.deps for line in lines))


# -- arguments -----------------------------------------------------------------------------------


def draw_spec(b: Builder, rule: LayerRule, rank: int | None = None) -> LayerSpec:
    draw = b.draw
    if rank is None:
        rank = b.pick(ranks_of(rule))
    defaults = torch_defaults(rule.torch)
    params = [p for p in rule.torch_params if p != "*"]
    for p in params:
        if p not in OPTIONS:
            raise AssertionError(f"the fuzz grammar has no values for {rule.torch}({p}=...): add them to OPTIONS")
    positional_params = list(rule.positional_params())
    required = [p for p in params if defaults.get(p, inspect.Parameter.empty) is inspect.Parameter.empty]
    optional = [p for p in params if p not in required]
    chosen_optional = b.subset(optional, 4)
    chosen = set(required) | set(chosen_optional)
    # Positional arguments: a prefix of the positional parameters, all of which are passed.
    prefix = 0
    while prefix < len(positional_params) and positional_params[prefix] in chosen:
        prefix += 1
    n_positional = b.integer(0, prefix)
    pragma = ""
    texts: dict[str, str] = {}
    for p in params:
        if p not in chosen:
            continue
        if p == "normalized_shape":
            text, pragma = b.pick(normalized_shape_options(rank))
        else:
            text = b.pick(OPTIONS[p])
        texts[p] = text
    positional = [texts[p] for p in positional_params[:n_positional]]
    keyword_order = [p for p in params if p in chosen and p not in positional_params[:n_positional]]
    keyword_order = b.shuffle(keyword_order)
    keywords = [(p, texts[p]) for p in keyword_order]
    variables = set()
    for text in texts.values():
        variables |= b.uses_variables(text)
    values = {}
    for p in FLAGS + ("momentum",):
        if p in params:
            if p in texts:
                env = {k: v for k, v in b.env.items() if not (isinstance(v, str) and v.startswith("torch."))}
                values[p] = eval(texts[p], {}, env)  # the generator's own texts, see OPTIONS
            else:
                values[p] = defaults[p]
    spec = LayerSpec(rule, positional, keywords, values, rank, pragma, variables=variables)
    b.features.add(f"layer:{rule.torch_name}")
    b.features.update(f"param:{p}" for p in texts)
    if positional and keywords:
        b.features.add("args:positional+keyword")
    # *args / **kwargs: move arguments into a variable (TM002 expected, or a conversion).
    # Rare: a call the tool must refuse (TM002) keeps torch imported, and the MindSpore run stops.
    star = b.pick(["none"] * 40 + ["kwargs_dict", "kwargs_display", "args"])
    if star in ("kwargs_dict", "kwargs_display") and spec.keywords:
        k = b.integer(1, len(spec.keywords))
        moved, spec.keywords = spec.keywords[-k:], spec.keywords[:-k]
        name = b.fresh("kw")
        if star == "kwargs_dict":
            spec.prelude.append(f"{name} = dict({', '.join(f'{p}={v}' for p, v in moved)})")
        else:
            spec.prelude.append(f"{name} = {{{', '.join(f'{p!r}: {v}' for p, v in moved)}}}")
        spec.star_kwargs = f"**{name}"
        b.features.add("args:**dict")
    elif star == "args" and len(spec.positional) >= 1:
        name = b.fresh("args")
        spec.prelude.append(f"{name} = ({', '.join(spec.positional)},)")
        spec.star_args, spec.positional = f"*{name}", []
        b.features.add("args:*tuple")
    return spec


def draw_rule(b: Builder, rank: int | None = None) -> LayerRule:
    """A layer rule; the ones MindSpore cannot run on CPU (a device note, InstanceNorm) seldom."""
    candidates = [r for r in LAYER_RULES if rank is None or rank in ranks_of(r)]
    runnable = [r for r in candidates if not r.device_note]
    pool = runnable * 6 + [r for r in candidates if r.device_note]
    return b.pick(pool)


# -- construction contexts -------------------------------------------------------------------------
# Each takes the builder and returns the handles it made (an immediate use records and returns none).


def ctx_assign(b: Builder) -> list[Handle]:
    spec = draw_spec(b, draw_rule(b))
    name, ent = b.fresh("bn"), b.fresh("L")
    tags = b.tags_of(spec, ent)
    b.emit_prelude(spec, tags)
    chained = b.pick(["", "", "", ".eval()", ".train()", ".train(False)"])
    if chained:
        b.features.add("mode:chained-at-construction")
    b.emit(f"{name} = {spec.call(b.nn(spec.rule.torch_name))}{chained}{spec.pragma}", tags)
    return [Handle(name, tags, spec.rank, spec, name=name)]


def _helper(b: Builder, name: str, text: str) -> str:
    """A module-level helper function, defined once; its entity."""
    if name not in b.helpers:
        b.helpers[name] = b.fresh("H")
        b.emit(text, {b.helpers[name]}, definition=True)
    return b.helpers[name]


def ctx_argument(b: Builder) -> list[Handle]:
    spec = draw_spec(b, draw_rule(b))
    ent = b.fresh("L")
    if b.coin():
        helper = _helper(b, "keep", "def keep(module):\n    return module\n")
        tags = b.tags_of(spec, ent) | {helper}
        name = b.fresh("bn")
        b.emit_prelude(spec, tags)
        b.emit(f"{name} = keep({spec.call(b.nn(spec.rule.torch_name))}){spec.pragma}", tags)
        return [Handle(name, tags, spec.rank, spec, name=name)]
    helper = _helper(b, "run", "def run(module, x):\n    return module(x)\n")
    tags = b.tags_of(spec, ent) | {helper}
    b.emit_prelude(spec, tags)
    record = b.record_name("run")
    b.emit(f"record({record!r}, run({spec.call(b.nn(spec.rule.torch_name))}, {b.input_expr(spec.rank)})){spec.pragma}",
           tags, record=record)
    return []


def _two_specs(b: Builder, same_rank=True) -> list[LayerSpec]:
    first = draw_spec(b, draw_rule(b))
    rule = draw_rule(b, first.rank if same_rank else None)
    return [first, draw_spec(b, rule, first.rank if same_rank and first.rank in ranks_of(rule) else None)]


def ctx_display(b: Builder) -> list[Handle]:
    specs = _two_specs(b, same_rank=False)
    kind = b.pick(["list", "tuple", "dict"])
    b.features.add(f"ctx:display-{kind}")
    ents = [b.fresh("L") for _ in specs]
    tags = frozenset().union(*(b.tags_of(s, e) for s, e in zip(specs, ents)))
    for s in specs:
        b.emit_prelude(s, tags)
    calls = [s.call(b.nn(s.rule.torch_name)) for s in specs]
    name = b.fresh("layers")
    pragma = next((s.pragma for s in specs if s.pragma), "")
    if kind == "list":
        b.emit(f"{name} = [{', '.join(calls)}]{pragma}", tags)
        keys = ["0", "1"]
    elif kind == "tuple":
        b.emit(f"{name} = ({', '.join(calls)}){pragma}", tags)
        keys = ["0", "-1"]
    else:
        b.emit(f"{name} = {{'a': {calls[0]}, 'b': {calls[1]}}}{pragma}", tags)
        keys = ["'a'", "'b'"]
    handles = []
    for spec, ent, key in zip(specs, ents, keys):
        expr, deps = f"{name}[{key}]", b.tags_of(spec, ent)
        if b.coin():  # bound to a name of its own
            alias = b.fresh("bn")
            b.emit(f"{alias} = {expr}", deps)
            handles.append(Handle(alias, deps, spec.rank, spec, name=alias))
        else:
            handles.append(Handle(expr, deps, spec.rank, spec))
    return handles


def ctx_comprehension(b: Builder) -> list[Handle]:
    rule = draw_rule(b)
    spec = draw_spec(b, rule)
    ent = b.fresh("L")
    tags = b.tags_of(spec, ent)
    b.emit_prelude(spec, tags)
    swept = [p for p, _ in spec.keywords if p in SWEEPS]
    name = b.fresh("bns")
    callee = b.nn(rule.torch_name)
    specs = [spec, spec]
    if swept and b.pick([True, True, False]):
        param = b.pick(swept)
        values = SWEEPS[param]
        keywords = [(p, "v" if p == param else t) for p, t in spec.keywords]
        call = f"{callee}({spec.arguments(keywords=keywords)})"
        specs = []
        for text in values:
            values_ = dict(spec.values)
            if param in values_:
                values_[param] = eval(text)
            specs.append(LayerSpec(rule, spec.positional, spec.keywords, values_, spec.rank))
        source = f"({', '.join(values)})"
        b.features.add("ctx:comprehension-over-argument")
    else:
        call, source = spec.call(callee), "range(2)"
    var = "_" if source == "range(2)" else "v"
    if b.coin():
        b.emit(f"{name} = [{call} for {var} in {source}]{spec.pragma}", tags)
        keys = ["0", "1"]
        b.features.add("ctx:list-comprehension")
    else:
        b.emit(f"{name} = {{i: {call} for i, {var} in enumerate({source})}}{spec.pragma}", tags)
        keys = ["0", "1"]
        b.features.add("ctx:dict-comprehension")
    return [Handle(f"{name}[{k}]", tags, s.rank, s) for s, k in zip(specs, keys)]


def ctx_immediate(b: Builder) -> list[Handle]:
    spec = draw_spec(b, draw_rule(b))
    ent = b.fresh("L")
    tags = b.tags_of(spec, ent)
    b.emit_prelude(spec, tags)
    record = b.record_name("immediate")
    b.emit(f"record({record!r}, {spec.call(b.nn(spec.rule.torch_name))}({b.input_expr(spec.rank)})){spec.pragma}",
           tags, record=record)
    return []


def ctx_unpacking(b: Builder) -> list[Handle]:
    specs = _two_specs(b, same_rank=False)
    ents = [b.fresh("L") for _ in specs]
    tags = frozenset().union(*(b.tags_of(s, e) for s, e in zip(specs, ents)))
    for s in specs:
        b.emit_prelude(s, tags)
    names = [b.fresh("bn") for _ in specs]
    calls = [s.call(b.nn(s.rule.torch_name)) for s in specs]
    pragma = next((s.pragma for s in specs if s.pragma), "")
    if b.coin():
        b.emit(f"{names[0]}, {names[1]} = {calls[0]}, {calls[1]}{pragma}", tags)
    else:
        b.emit(f"({names[0]}, {names[1]}) = [{calls[0]}, {calls[1]}]{pragma}", tags)
    return [Handle(n, b.tags_of(s, e), s.rank, s, name=n) for n, s, e in zip(names, specs, ents)]


def ctx_conditional(b: Builder) -> list[Handle]:
    specs = _two_specs(b, same_rank=True)
    ents = [b.fresh("L") for _ in specs]
    tags = frozenset().union(*(b.tags_of(s, e) for s, e in zip(specs, ents))) | {"v:flag"}
    b.env_used.add("flag")
    for s in specs:
        b.emit_prelude(s, tags)
    name = b.fresh("bn")
    calls = [s.call(b.nn(s.rule.torch_name)) for s in specs]
    pragma = next((s.pragma for s in specs if s.pragma), "")
    b.emit(f"{name} = {calls[0]} if flag else {calls[1]}{pragma}", tags)
    live = specs[0] if b.env["flag"] else specs[1]
    return [Handle(name, tags, live.rank, live, name=name)]


def _split_for_factory(b: Builder, spec: LayerSpec):
    """Which arguments the factory fixes and which its call passes: (fixed keywords, passed keywords)."""
    if not spec.keywords:
        return [], []
    k = b.integer(0, len(spec.keywords))
    return spec.keywords[:k], spec.keywords[k:]


def ctx_factory(b: Builder) -> list[Handle]:
    """lambda, functools.partial, a def, a registry dict, getattr, a parameter default."""
    spec = draw_spec(b, draw_rule(b))
    kinds = ["lambda", "lambda-kwargs", "partial", "def", "def-kwargs", "def-assign", "registry", "default"]
    if b.nn_module() is not None:
        kinds.append("getattr")
    kind = b.pick(kinds)
    b.features.add(f"ctx:factory-{kind}")
    ent, fent = b.fresh("L"), b.fresh("F")
    tags = b.tags_of(spec, ent) | {fent}
    b.emit_prelude(spec, tags)
    callee = b.nn(spec.rule.torch_name)
    make = b.fresh("make")
    name = b.fresh("bn")
    pos = spec.positional
    fixed, passed = _split_for_factory(b, spec)
    if kind in ("lambda", "def", "def-assign"):
        # The call passes values through parameters; the body spells the torch arguments.
        params = [f"p{i}" for i in range(len(pos))] + [f"k_{p}" for p, _ in passed]
        body_keywords = fixed + [(p, f"k_{p}") for p, _ in passed]
        body = f"{callee}({spec.arguments(positional=params[:len(pos)], keywords=body_keywords)})"
        args = ", ".join(list(pos) + [t for _, t in passed])
        if kind == "lambda":
            b.emit(f"{make} = lambda {', '.join(params)}: {body}{spec.pragma}", tags)
        elif kind == "def":
            b.emit(f"def {make}({', '.join(params)}):\n    return {body}{spec.pragma}\n", tags)
        else:
            b.emit(f"def {make}({', '.join(params)}):\n    layer = {body}{spec.pragma}\n    return layer\n", tags)
        b.emit(f"{name} = {make}({args})", tags)
    elif kind in ("lambda-kwargs", "def-kwargs"):
        # The call passes torch-convention keywords through **kwargs.
        inner = ["*a"] + [f"{p}={t}" for p, t in fixed] + ([spec.star_kwargs] if spec.star_kwargs else []) + ["**k"]
        body = f"{callee}({', '.join(inner)})"
        if kind == "lambda-kwargs":
            b.emit(f"{make} = lambda *a, **k: {body}{spec.pragma}", tags)
        else:
            b.emit(f"def {make}(*a, **k):\n    return {body}{spec.pragma}\n", tags)
        call_args = list(pos) + ([spec.star_args] if spec.star_args else []) + [f"{p}={t}" for p, t in passed]
        b.emit(f"{name} = {make}({', '.join(call_args)})", tags)
    elif kind == "partial":
        b.needs_functools = True
        inner = ", ".join([callee] + [f"{p}={t}" for p, t in fixed] + ([spec.star_kwargs] if spec.star_kwargs else []))
        b.emit(f"{make} = functools.partial({inner}){spec.pragma}", tags)
        call_args = list(pos) + ([spec.star_args] if spec.star_args else []) + [f"{p}={t}" for p, t in passed]
        b.emit(f"{name} = {make}({', '.join(call_args)})", tags)
    elif kind == "registry":
        key = b.pick(["'bn'", "'norm'"])
        if b.coin():
            b.emit(f"{make} = {{{key}: {callee}}}", tags)
        else:
            b.emit(f"{make} = dict({key[1:-1]}={callee})", tags)
        b.emit(f"{name} = {make}[{key}]({spec.arguments()}){spec.pragma}", tags)
    elif kind == "getattr":
        b.emit(f"{name} = getattr({b.nn_module()}, {spec.rule.torch_name!r})({spec.arguments()}){spec.pragma}", tags)
    elif kind == "default":
        b.emit(f"def {make}(norm={callee}):\n    return norm({spec.arguments()}){spec.pragma}\n", tags)
        b.emit(f"{name} = {make}()", tags)
    return [Handle(name, tags, spec.rank, spec, name=name)]


def ctx_subclass(b: Builder) -> list[Handle]:
    spec = draw_spec(b, draw_rule(b))
    kind = b.pick(["pass", "forward", "init"])
    b.features.add(f"ctx:subclass-{kind}")
    ent, cent = b.fresh("L"), b.fresh("K")
    tags = b.tags_of(spec, ent) | {cent}
    b.emit_prelude(spec, tags)
    cls = f"My{spec.rule.torch_name}{b.fresh('_')}"
    callee = b.nn(spec.rule.torch_name)
    name = b.fresh("bn")
    if kind == "pass":
        b.emit(f"class {cls}({callee}):\n    pass\n", tags)
        b.emit(f"{name} = {cls}({spec.arguments()}){spec.pragma}", tags)
    elif kind == "forward":
        b.emit(f"class {cls}({callee}):\n    def forward(self, x):\n        return super().forward(x) * 2\n", tags)
        b.emit(f"{name} = {cls}({spec.arguments()}){spec.pragma}", tags)
    else:
        b.emit(f"class {cls}({callee}):\n    def __init__(self):\n        super().__init__({spec.arguments()}){spec.pragma}\n", tags)
        b.emit(f"{name} = {cls}()", tags)
    return [Handle(name, tags, spec.rank, spec, name=name)]


def ctx_holder(b: Builder) -> list[Handle]:
    """An attribute of a module instance: ``holder.bn = <construction>``."""
    spec = draw_spec(b, draw_rule(b))
    ent, hent = b.fresh("L"), b.fresh("N")
    tags = b.tags_of(spec, ent)
    b.emit_prelude(spec, tags)
    holder = b.fresh("holder")
    b.emit(f"{holder} = {b.nn(MODULE_BASE)}()", {hent})
    b.emit(f"{holder}.norm = {spec.call(b.nn(spec.rule.torch_name))}{spec.pragma}", tags | {hent})
    return [Handle(f"{holder}.norm", tags | {hent}, spec.rank, spec, own={ent}),
            Handle(holder, tags | {hent}, spec.rank, None, callable=False, name=holder, own={hent})]


def ctx_container(b: Builder) -> list[Handle]:
    rank_rule = draw_rule(b)
    rank = b.pick(ranks_of(rank_rule))
    specs = [draw_spec(b, rank_rule, rank), draw_spec(b, draw_rule(b, rank), rank)]
    kind = b.pick(CONTAINERS)
    b.features.add(f"ctx:container-{kind}")
    ents = [b.fresh("L") for _ in specs]
    sent = b.fresh("S")
    tags = frozenset().union(*(b.tags_of(s, e) for s, e in zip(specs, ents))) | {sent}
    for s in specs:
        b.emit_prelude(s, tags)
    calls = [s.call(b.nn(s.rule.torch_name)) for s in specs]
    pragma = next((s.pragma for s in specs if s.pragma), "")
    name = b.fresh("seq")
    if kind == "Sequential":
        b.emit(f"{name} = {b.nn(kind)}({', '.join(calls)}){pragma}", tags)
        keys, callable_ = ["0", "1"], True
    elif kind == "ModuleList":
        b.emit(f"{name} = {b.nn(kind)}([{', '.join(calls)}]){pragma}", tags)
        keys, callable_ = ["0", "-1"], False
    else:
        b.emit(f"{name} = {b.nn(kind)}({{'a': {calls[0]}, 'b': {calls[1]}}}){pragma}", tags)
        keys, callable_ = ["'a'", "'b'"], False
    handles = [Handle(f"{name}[{k}]", b.tags_of(s, e) | {sent}, s.rank, s, own={e})
               for s, e, k in zip(specs, ents, keys)]
    handles.append(Handle(name, tags, rank, None, callable=callable_, name=name, own={sent}))
    return handles


def ctx_module_class(b: Builder) -> list[Handle]:
    """An nn.Module subclass whose __init__ builds 1-3 members (directly, through a class attribute,
    in a container) and whose forward chains them."""
    first = draw_rule(b)
    rank = b.pick(ranks_of(first))
    n = b.integer(1, 3)
    cls, kent, nent = f"Net{b.fresh('_')}", b.fresh("K"), b.fresh("N")
    class_attrs: list[Line] = []
    init: list[Line] = []
    forward: list[Line] = []
    members: list[tuple[str, LayerSpec, frozenset[str]]] = []  # (expression from self, spec, tags)
    init_params = ""
    instance_args = ""
    all_tags = {kent}
    for i in range(n):
        spec = draw_spec(b, first if i == 0 else draw_rule(b, rank), rank)
        ent = b.fresh("L")
        tags = b.tags_of(spec, ent)
        all_tags |= tags
        b.emit_prelude(spec, tags)
        form = b.pick(["direct", "direct", "class-attribute", "container", "parameter", "add_module", "setattr",
                       "appended", "class-attribute-partial", "or-default", "container-comprehension"])
        if form == "or-default" and init_params:
            form = "direct"
        b.features.add(f"ctx:member-{form}")
        callee = b.nn(spec.rule.torch_name)
        attr = f"norm{i}"
        if form == "class-attribute":
            class_attrs.append(Line(f"    factory{i} = {callee}", own(tags)))
            init.append(Line(f"        self.{attr} = self.factory{i}({spec.arguments()}){spec.pragma}", own(tags)))
            members.append((f"{attr}", spec, tags))
            forward.append(Line(f"        x = self.{attr}(x)", own(tags)))
        elif form == "container":
            kind = b.pick(["Sequential", "ModuleList"])
            init.append(Line(f"        self.{attr} = {b.nn(kind)}([{spec.call(callee)}]){spec.pragma}"
                             if kind == "ModuleList" else
                             f"        self.{attr} = {b.nn(kind)}({spec.call(callee)}){spec.pragma}", own(tags)))
            members.append((f"{attr}[0]", spec, tags))
            forward.append(Line(f"        x = self.{attr}[0](x)" if kind == "ModuleList" else f"        x = self.{attr}(x)", own(tags)))
        elif form == "class-attribute-partial":
            b.needs_functools = True
            fixed = ", ".join(f"{p}={t}" for p, t in spec.keywords)
            class_attrs.append(Line(f"    factory{i} = functools.partial({callee}{', ' if fixed else ''}{fixed})", own(tags)))
            init.append(Line(f"        self.{attr} = self.factory{i}({spec.arguments(keywords=[])}){spec.pragma}",
                             own(tags)))
            members.append((attr, spec, tags))
            forward.append(Line(f"        x = self.{attr}(x)", own(tags)))
        elif form == "or-default":
            # torchvision's idiom: norm_layer=None, then norm_layer = norm_layer or nn.BatchNorm2d.
            init_params = ", norm_layer=None"
            init.append(Line(f"        norm_layer = norm_layer or {callee}", own(tags)))
            init.append(Line(f"        self.{attr} = norm_layer({spec.arguments()}){spec.pragma}", own(tags)))
            members.append((attr, spec, tags))
            forward.append(Line(f"        x = self.{attr}(x)", own(tags)))
        elif form == "container-comprehension":
            kind = b.pick(["Sequential", "ModuleList"])
            star = "*" if kind == "Sequential" else ""
            init.append(Line(f"        self.{attr} = {b.nn(kind)}({star}[{spec.call(callee)} for _ in range(2)]){spec.pragma}",
                             own(tags)))
            members.append((f"{attr}[1]", spec, tags))
            if kind == "Sequential":
                forward.append(Line(f"        x = self.{attr}(x)", own(tags)))
            else:
                forward += [Line(f"        for layer in self.{attr}:", own(tags)), Line("            x = layer(x)", own(tags))]
        elif form in ("add_module", "setattr"):
            call = "self.add_module" if form == "add_module" else "setattr(self, "
            init.append(Line(f"        {call}{'(' if form == 'add_module' else ''}{attr!r}, {spec.call(callee)}){spec.pragma}",
                             own(tags)))
            members.append((attr, spec, tags))
            forward.append(Line(f"        x = self.{attr}(x)", own(tags)))
        elif form == "appended":
            # An empty container filled afterwards (TM011 territory).
            init.append(Line(f"        self.{attr} = {b.nn('ModuleList')}()", own(tags)))
            init.append(Line(f"        self.{attr}.append({spec.call(callee)}){spec.pragma}", own(tags)))
            members.append((f"{attr}[0]", spec, tags))
            forward.append(Line(f"        x = self.{attr}[0](x)", own(tags)))
        elif form == "parameter" and not init_params and any(p == "momentum" for p, _ in spec.keywords):
            # The momentum comes in through __init__'s parameter.
            value = b.pick(["0.3", "0.05"])
            keywords = [(p, "momentum" if p == "momentum" else t) for p, t in spec.keywords]
            init_params = ", momentum=0.1"
            instance_args = b.pick([value, f"momentum={value}", ""])
            spec.values["momentum"] = float(value) if instance_args else 0.1
            init.append(Line(f"        self.{attr} = {callee}({spec.arguments(keywords=keywords)}){spec.pragma}", own(tags)))
            members.append((attr, spec, tags))
            forward.append(Line(f"        x = self.{attr}(x)", own(tags)))
        else:
            init.append(Line(f"        self.{attr} = {spec.call(callee)}{spec.pragma}", own(tags)))
            members.append((attr, spec, tags))
            forward.append(Line(f"        x = self.{attr}(x)", own(tags)))
    if b.integer(0, 9) == 0:
        # A mode set while the module is built (MD004 territory).
        expr, spec, tags = b.pick(members)
        call = b.pick(["eval()", "train(False)"])
        init.append(Line(f"        self.{expr}.{call}", own(tags)))
        b.features.add("mode:in-__init__")
    b.emit(f"class {cls}({b.nn(MODULE_BASE)}):", {kent})
    b.lines.extend(class_attrs)
    b.emit(f"    def __init__(self{init_params}):\n        super().__init__()", {kent})
    b.lines.extend(init)
    b.emit("\n    def forward(self, x):", {kent})
    b.lines.extend(forward)
    b.emit("        return x\n", {kent})
    all_tags = frozenset(all_tags | {nent})
    how = b.pick(["plain", "plain", "eval", "train", "immediate"])
    b.features.add(f"ctx:module-class-{how}")
    if how == "immediate":
        record = b.record_name("net")
        b.emit(f"record({record!r}, {cls}({instance_args})({b.input_expr(rank)}))", all_tags, record=record)
        return []
    net = b.fresh("net")
    b.emit(f"{net} = {cls}({instance_args})" + {"plain": "", "eval": ".eval()", "train": ".train()"}[how], {kent, nent})
    handles = [Handle(net, all_tags, rank, None, name=net, own={nent})]
    for expr, spec, tags in members:
        handles.append(Handle(f"{net}.{expr}", frozenset(tags | {kent, nent}), rank, spec))
    return handles


CONTEXTS = {  # name: (builder, weight)
    "module-class": (ctx_module_class, 4),
    "assign": (ctx_assign, 4),
    "argument": (ctx_argument, 2),
    "display": (ctx_display, 2),
    "comprehension": (ctx_comprehension, 2),
    "immediate": (ctx_immediate, 2),
    "unpacking": (ctx_unpacking, 2),
    "conditional": (ctx_conditional, 2),
    "factory": (ctx_factory, 4),
    "subclass": (ctx_subclass, 2),
    "holder": (ctx_holder, 2),
    "container": (ctx_container, 2),
}


# -- what a program does with what it built ------------------------------------------------------


def event(b: Builder, handles: list[Handle]) -> list[Handle]:
    """One statement using, setting the mode of, or reading/writing an attribute of a handle; returns
    new handles (a wrapping container)."""
    draw = b.draw
    h = b.pick(handles)
    kinds = ["mode", "mode", "attr-read"]
    if h.callable:
        kinds += ["use", "use", "use", "use-twice", "use-no-grad", "use-no-grad-decorated", "mode-use"]
    if h.spec is not None:
        kinds += ["attr-read", "attr-write"]
        if h.name is not None:
            kinds += ["wrap"]
    if h.name is not None:
        kinds += ["rebind-mode"]
    kind = b.pick(kinds)
    b.features.add(f"event:{kind}")
    tags, deps = h.own, h.deps
    if kind == "use":
        record = b.record_name("out")
        b.emit(f"record({record!r}, {h.expr}({b.input_expr(h.rank)}))", tags, record=record, deps=deps)
    elif kind == "use-twice":
        record = b.record_name("loop")
        b.emit(f"for step in range(2):\n    record(f'{record}_{{step}}', {h.expr}({b.input_expr(h.rank)} + step))", tags,
               deps=deps)
        for step in range(2):
            b.add_record(f"{record}_{step}", deps, len(b.lines))
    elif kind == "use-no-grad":
        ctx = b.pick(["no_grad", "no_grad", "inference_mode"])
        b.features.add(f"no_grad:{ctx}")
        record = b.record_name("no_grad")
        b.emit(f"with {b.torch(ctx)}():\n    record({record!r}, {h.expr}({b.input_expr(h.rank)}))", tags, record=record, deps=deps)
    elif kind == "use-no-grad-decorated":
        ctx = b.pick(["no_grad", "inference_mode"])
        b.features.add(f"no_grad:@{ctx}")
        helper = _helper(b, f"infer_{ctx}", f"@{b.torch(ctx)}()\ndef infer_{ctx}(module, x):\n    return module(x)\n")
        record = b.record_name("decorated")
        b.emit(f"record({record!r}, infer_{ctx}({h.expr}, {b.input_expr(h.rank)}))", tags, record=record,
               deps=deps | {helper})
    elif kind == "mode":
        call = b.pick(MODE_CALLS)
        b.features.add(f"mode:{call}")
        if "flag" in call:
            b.env_used.add("flag")
            tags = tags | {"v:flag"}
        b.emit(f"{h.expr}.{call}", tags, deps=deps | (tags - h.own))
    elif kind == "mode-use":
        call = b.pick(["eval()", "train()", "train(False)"])
        record = b.record_name("mode_out")
        b.emit(f"record({record!r}, {h.expr}.{call}({b.input_expr(h.rank)}))", tags, record=record, deps=deps)
    elif kind == "rebind-mode":
        call = b.pick(["eval()", "train()", "train(False)"])
        b.features.add("mode:rebind")
        b.emit(f"{h.name} = {h.name}.{call}", tags, deps=deps)
    elif kind == "attr-read":
        attrs = h.spec.readable() if h.spec is not None else ["training"]
        attr = b.pick(attrs)
        b.features.add(f"attr-read:{attr}")
        record = b.record_name(attr)
        b.emit(f"record({record!r}, {h.expr}.{attr})", tags, record=record, deps=deps)
    elif kind == "attr-write":
        attr = b.pick(h.spec.writable())
        value = {"momentum": b.pick(["0.5", "0.01"]), "eps": b.pick(["0.5", "1e-2"]),
                 "training": b.pick(["False", "True"])}[attr]
        if attr == "momentum":
            h.spec.values["momentum"] = float(value)
        b.features.add(f"attr-write:{attr}")
        b.emit(f"{h.expr}.{attr} = {value}", tags, deps=deps)
    elif kind == "wrap":
        container = b.fresh("wrapped")
        sent = b.fresh("S")
        b.features.add("ctx:wrap-existing")
        b.emit(f"{container} = {b.nn('Sequential')}({h.name})", {sent}, deps=deps | {sent})
        return [Handle(container, h.deps | {sent}, h.rank, None, name=container, own={sent})]
    return []


def functional(b: Builder) -> None:
    """A call of a normalization function (torch.nn.functional.batch_norm, torch.batch_norm), with the
    running statistics it updates recorded."""
    rule = b.pick(FUNCTION_RULES)
    b.features.add(f"layer:{rule.torch}")
    ent = b.fresh("L")
    rank = rule.input_rank
    rm, rv = b.fresh("rm"), b.fresh("rv")
    tags = {ent}
    b.emit(f"{rm} = sample({CHANNELS}, seed={b.next_seed()}) * 0.1", tags)
    b.emit(f"{rv} = sample({CHANNELS}, seed={b.next_seed()}) * 0.1 + 1", tags)
    training = b.pick(["True", "False", "flag"])
    momentum = b.pick(["0.1", "0.3", "m"])
    eps = b.pick(["1e-05", "eps", "1e-3"])
    weight = b.pick(["None", "None", "w"])
    tags |= {f"v:{v}" for v in b.uses_variables(" ".join([training, momentum, eps]))}
    if weight == "w":
        b.emit(f"w{ent} = sample({CHANNELS}, seed={b.next_seed()}) + 1", tags)
        weight = f"w{ent}"
    x = b.input_expr(rank)
    if rule.torch == "torch.batch_norm":
        call = f"{b.torch('batch_norm')}({x}, {weight}, None, {rm}, {rv}, {training}, {momentum}, {eps}, False)"
    else:
        spelled = b.pick(["F", "torch.nn.functional", "nn.functional"])
        if spelled == "F":
            b.extra_imports.add("import torch.nn.functional as F")
        elif spelled == "torch.nn.functional" or b.nn_module() is None:
            spelled = "torch.nn.functional"
            b.needs_torch = True
        else:
            spelled = f"{b.nn_module()}.functional"
        if b.coin():
            call = f"{spelled}.batch_norm({x}, {rm}, {rv}, {weight}, None, {training}, {momentum}, {eps})"
        else:
            call = (f"{spelled}.batch_norm({x}, {rm}, {rv}, weight={weight}, training={training}, "
                    f"momentum={momentum}, eps={eps})")
    record = b.record_name("functional")
    b.emit(f"record({record!r}, {call})", tags, record=record)
    for stat in (rm, rv):
        record = b.record_name(stat)
        b.emit(f"record({record!r}, {stat})", tags, record=record)


@st.composite
def programs(draw) -> Program:
    """A program: 1-3 construction contexts, then 2-8 statements using what they built, in any order;
    sometimes a functional batch_norm call."""
    b = Builder(draw)
    # In CONTEXTS' order: hypothesis leans to the first choices, so the richest context comes first.
    weighted = [n for n in CONTEXTS for _ in range(CONTEXTS[n][1])]
    handles: list[Handle] = []
    for _ in range(b.pick([1, 1, 2, 2, 3])):
        name = b.pick(weighted)
        b.features.add(f"ctx:{name}")
        handles += CONTEXTS[name][0](b)
    if handles:
        for _ in range(b.integer(2, 8)):
            handles += event(b, handles)
    if b.integer(0, 5) == 0:
        functional(b)
    if not b.records:  # every program records something
        if handles:
            h = next((h for h in handles if h.callable), None)
            if h is not None:
                record = b.record_name("out")
                b.emit(f"record({record!r}, {h.expr}({b.input_expr(h.rank)}))", h.own, record=record, deps=h.deps)
        if not b.records:
            functional(b)
    return b.program()


def generate(count: int, seed: int = 0, batch: int = 250):
    """``count`` distinct programs, the same for the same seed: hypothesis's generation phase only (no
    shrinking, no example database), in rounds of ``batch`` examples seeded from ``seed``."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as seeded

    seen: set[str] = set()
    produced = 0
    for round_ in itertools.count():
        found: list[Program] = []

        @seeded(seed * 1_000_003 + round_)
        @settings(max_examples=batch, phases=[Phase.generate], database=None, deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(programs())
        def collect(program: Program) -> None:
            found.append(program)

        collect()
        for program in found:
            if program.source in seen:
                continue
            seen.add(program.source)
            yield program
            produced += 1
            if produced >= count:
                return
