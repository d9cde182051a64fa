"""The grammar: hypothesis strategies of small PyTorch programs that build the layers of rules/*.toml
in every construction context, set their modes, use them (also under ``no_grad``), read and write
their attributes, and record every result with ``record(name, value)`` on inputs from
``sample(*shape, seed=)`` (the builtins of codemod/verify/harness.py) or, for Embedding, integer
indices from ``indices(*shape, high=, seed=)`` (a builtin of the runner).

Every line of a program carries the entities it builds, uses or sets the mode of (layers, modules,
containers, helper definitions, module-level variables); every record names the entities its value
depends on. The lines of a record are the lines tagged with one of them: a difference in that record
is allowed only where the tool reported a warning or an error on one of those lines.

Only programs torch runs are meant. Every construction drawn is built once under torch and fed the
input it will get (``dry_run``): a construction torch refuses is drawn again, the shape it gives is
what the next layer of a container or forward() is drawn for (a convolution or a pool changes it),
and an attribute that is None there (``weight`` with ``affine=False``) is not read. A program torch
rejects is counted apart by the runner ("invalid"), never as a pass.
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
# whose results depend on the training mode and on every construction context, and the layers of
# issue 15 around them. Each layer is fed an input of a shape it takes (SHAPES, or the output of the
# layer before it in a container or forward()); the generator runs every construction it draws once
# under torch (``dry_run``) to learn whether torch takes it and what shape comes out, and draws again
# when torch refuses. A group added here must bring its values to OPTIONS / SHAPED_OPTIONS.
# attention (MultiheadAttention) is left out: it takes three inputs and returns a tuple (it does not
# chain), and every site of it carries the warning MA001, which allows any difference in its results.
FUZZED_GROUPS = ("norm", "activation", "dropout", "conv", "linear", "pooling", "shape", "embedding")
LAYER_RULES = tuple(sorted((r for r in RULES.layers.values() if r.kind == "layer" and r.group in FUZZED_GROUPS),
                           key=lambda r: r.torch))
# The functional calls fuzzed: the normalization functions only (functional() below spells them).
FUNCTION_RULES = tuple(sorted((r for r in RULES.layers.values() if r.kind == "function" and r.group == "norm"),
                              key=lambda r: r.torch, reverse=True))  # F.batch_norm first: the usual spelling
# Containers and the module base, by torch name (torch.nn.Sequential, ...): from rules/modules.toml.
CONTAINERS = tuple(sorted(q.rsplit(".", 1)[1] for q, n in RULES.names.items() if n.kind == "container"))
MODULE_BASE = next(q.rsplit(".", 1)[1] for q, n in RULES.names.items() if n.kind == "module_base")

# Input shapes by rank: channels at position 1 and 4 of them, the last dimension 4 too (LayerNorm's
# normalized_shape=c), room enough in the others for kernels, strides and pools.
CHANNELS = 4
SHAPES = {2: (3, 4), 3: (3, 4, 6), 4: (2, 4, 5, 4), 5: (2, 4, 2, 3, 4)}
# Embedding's input: integer indices in [0, INDEX_HIGH] (``indices(*shape, high=, seed=)``, a builtin
# of the runner like ``sample``); every num_embeddings of OPTIONS exceeds INDEX_HIGH + 1, so that the
# index + step of a use in a loop stays in range.
INDEX_SHAPE = (2, 5)
INDEX_HIGH = 6
# How often a layer of each group is drawn: the normalization layers (whose results depend on the
# mode and every construction context) as often as all the others; the others by their number of layers.
GROUP_WEIGHTS = {"norm": 8, "activation": 3, "conv": 2, "pooling": 2, "shape": 2, "dropout": 1, "linear": 1,
                 "embedding": 1}
# Layers that take inputs of any rank (elementwise, or over the last dimension); the others take their
# rule's input_rank (BatchNorm1d also rank 2).
ANY_RANK_GROUPS = ("activation",)
ANY_RANK_LAYERS = ("Dropout", "Identity", "LayerNorm", "Linear", "Flatten")
EXTRA_RANKS = {"BatchNorm1d": (2,)}
# Parameters of which torch takes exactly one (the grammar passes one of them).
ONE_OF = {"Upsample": (("size", "scale_factor"),)}
# Layers MindSpore 2.10 computes approximately in float32 (rules/activation.toml: tanh is off by up to
# 1e-4 for |x| in [4, 10), and a normalization after it scales that up): the records depending on one
# are compared with the runner's APPROXIMATE_TOLERANCE.
APPROXIMATE_LAYERS = ("Tanh",)

# Module-level variables a program may use in arguments, with the values a program draws for them.
VARIABLES = {
    "c": [4],
    "g": [2],
    # not k: the factories' **k. Not (2,): a 1-tuple through a variable reaches a one-dimensional
    # MindSpore layer as written (tests/fuzz/causes/one_tuple_size_through_variable.py).
    "ks": [3, 2],
    "m": [0.3, 0.05, 0.1],
    "eps": [1e-3, 0.01],
    "flag": [True, False],
    "track": [True, False],
    "dev": ["cpu"],
    "dt": ["torch.float32"],  # source text: a dtype variable (TM004)
    "shape": [4, (4,)],
    "slope": [0.2, 0.01],
    "rate": [0.0, 0],
    "n": [10, 12],
}

# How each torch parameter may be written (repeated entries weigh more). Every parameter of every
# layer rule must be here or in SHAPED_OPTIONS: a rule added to rules/*.toml with a new parameter
# makes the generator fail, not skip it. Values the tool must refuse (momentum=None, a dtype variable,
# affine=False where the layer has no name to freeze parameters on, padding_mode='reflect', p=1 for
# Dropout, max_norm) are rarer, so that most programs run to the end. Dropout's p is 0 (or 1 where
# MindSpore takes it) mostly: any other p makes its training-mode results random (see LayerSpec.random).
OPTIONS = {
    "num_groups": ["2", "g", "1", "4"],
    "eps": ["1e-3", "0.01", "1e-05", "eps", "eps * 2", "1.0", "1e-3 + 0", "1"],
    "momentum": ["0.1", "0.3", "0.05", "m", "m / 2", "1 - 0.8", "0.5 * m", "(0.2)", "0.1", "0.3", "m", "None"],
    "affine": ["True", "True", "True", "flag", "not flag", "False"],
    "track_running_stats": ["True", "False", "track", "not track"],
    "elementwise_affine": ["True", "True", "True", "flag", "False"],
    "bias": ["True", "True", "True", "flag", "False"],
    "device": ["'cpu'", "None", "torch.device('cpu')", "dev"],
    "dtype": ["torch.float32", "torch.float32", "torch.float32", "torch.float", "torch.float", "None", "None", "None",
              "None", "dt"],
    "process_group": ["None"],
    # activation
    "inplace": ["False", "False", "True", "flag"],
    "negative_slope": ["0.01", "0.2", "slope", "0.1 * 2", "1e-2"],
    "alpha": ["1.0", "0.5", "1", "2 * 0.25"],
    "approximate": ["'none'", "'tanh'", "'none'", "\"tanh\""],
    "init": ["0.25", "0.1", "1.0", "0.5 / 2", "1"],
    # dropout
    "p": ["0.0", "0.0", "rate", "0.0 * 2", "1.0", "0.5", "0"],
    # convolutions
    "out_channels": ["4", "c", "2 * c", "8", "4"],
    "dilation": ["1", "1", "2", "(1 + 1)"],
    "groups": ["1", "1", "2", "g", "4", "c"],
    "padding_mode": ["'zeros'", "'zeros'", "\"zeros\"", "'reflect'"],
    "output_padding": ["0", "0", "1"],
    # linear
    "out_features": ["4", "c", "8", "3", "2 * c"],
    # pooling
    "return_indices": ["False", "False", "False", "True"],
    "ceil_mode": ["False", "True", "flag"],
    "count_include_pad": ["True", "False", "not flag"],
    "divisor_override": ["None", "2", "3"],
    # shape
    "start_dim": ["1", "0", "2", "-2", "1"],
    "end_dim": ["-1", "-1", "2", "3"],
    "value": ["0.5", "0", "-1.0", "2.5"],
    "upscale_factor": ["2", "2", "1"],
    "scale_factor": ["2", "2.0", "3", "1.5", "(2, 3)"],
    "align_corners": ["None", "True", "False"],
    "recompute_scale_factor": ["None", "True", "False"],
    # embedding
    "num_embeddings": ["10", "n", "8", "5 + 5"],
    "embedding_dim": ["4", "c", "6", "2 * 3"],
    "padding_idx": ["None", "0", "2", "-1"],
    "max_norm": ["None", "None", "None", "1.0"],
    "norm_type": ["2.0", "2", "1.0"],
    "scale_grad_by_freq": ["False", "False", "True"],
    "sparse": ["False", "True"],
    "_weight": ["None"],
    "_freeze": ["False", "False", "True"],
}
# Parameters whose values depend on the input's shape: name -> options(shape, values so far, rule).
SHAPED_OPTIONS = {}  # filled below, once the functions are defined
# Values a comprehension or a factory parameter may run a parameter over.
SWEEPS = {"momentum": ("0.1", "0.3"), "eps": ("1e-3", "0.01"), "affine": ("True", "False"),
          "track_running_stats": ("True", "False")}

MODE_CALLS = ["train()", "train(False)", "train(True)", "train(mode=flag)", "train(flag)", "eval()",
              "train().eval()", "eval().train()", "eval().train(False)", "train(mode=False)"]
INPUT_FORMS = ["sample({shape}, seed={seed}) * 2 + 0.5", "sample({shape}, seed={seed})",
               "sample({shape}, seed={seed}) * 3 - 1"]
INDEX_FORMS = ["indices({shape}, high={high}, seed={seed})"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


@functools.lru_cache(maxsize=None)
def torch_class(qual: str):
    module, name = qual.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


@functools.lru_cache(maxsize=None)
def torch_defaults(qual: str) -> dict[str, object]:
    """torch's defaults for the parameters of ``qual`` (inspect.Parameter.empty for required ones),
    from the installed torch: the generator then knows which attributes exist."""
    obj = torch_class(qual)
    params = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj).parameters
    return {n: p.default for n, p in params.items() if n != "self"}


def int_forms(n: int) -> list[str]:
    """How a size of ``n`` may be written (literal, variable, expression)."""
    if n == CHANNELS:
        return ["4", "c", "2 * 2", "c * 1", "int(4.0)", "2 * c // 2"]
    if n == 2 * CHANNELS:
        return [str(n), "2 * c", f"{n} * 1"]
    return [str(n), str(n), f"{n} * 1", f"int({n}.0)"]


def spatial_tuple(shape, values) -> str:
    """A tuple with one entry per spatial dimension of ``shape`` (all but the first two), from ``values``."""
    d = max(len(shape) - 2, 1)
    entries = [str(values[i % len(values)]) for i in range(d)]
    return f"({entries[0]},)" if d == 1 else f"({', '.join(entries)})"


def normalized_shape_options(shape) -> list[tuple[str, str]]:
    """(text, pragma) for LayerNorm's normalized_shape on inputs of ``shape``."""
    rank = len(shape)
    last = shape[-1]
    if last == CHANNELS:
        one = [("4", ""), ("c", ""), ("(4,)", ""), ("[4]", ""), ("(c,)", ""), ("shape", ""), ("[c]", "")]
    else:
        one = [(str(last), ""), (f"({last},)", ""), (f"[{last}]", "")]
    if rank < 3:
        return one
    two = shape[-2:]
    multi = f"({two[0]}, {two[1]})"
    return one + [(multi, f"  # torch2ms: input-rank={rank}"), (multi, f"  # torch2ms: input-rank={rank}"), (multi, "")]


def _channels(shape, values, rule):
    return int_forms(shape[1]) if len(shape) > 1 else ["4"]


def _tuples(shape, rule, *forms) -> list[str]:
    return [spatial_tuple(shape, values) for values in forms]


def _kernel(shape, values, rule):
    return ["3", "1", "2", "ks"] + _tuples(shape, rule, [2, 3, 1], [1, 3])


def _stride(shape, values, rule):
    options = ["1", "2", "1"] + _tuples(shape, rule, [2, 1])
    return options + ["None"] if "Pool" in rule.torch_name else options


def _padding(shape, values, rule):
    if rule.torch_name in ("ZeroPad2d", "ConstantPad2d"):
        return ["1", "(1, 0, 2, 1)", "(0, 1, 1, 0)", "2"]
    options = ["0", "1", "0", spatial_tuple(shape, [1, 0])]
    if rule.torch_name.startswith("Conv") and "Transpose" not in rule.torch_name:
        options += ["'same'", "'valid'"]
    return options


def _num_groups(shape, values, rule):
    c = shape[1]
    return [t for t, v in (("2", 2), ("g", 2), ("1", 1), ("4", 4)) if c % v == 0] or ["1"]


def _normalized_shape(shape, values, rule):
    return normalized_shape_options(shape)


def _in_features(shape, values, rule):
    return int_forms(shape[-1])


def _num_parameters(shape, values, rule):
    return ["1", "1"] + (int_forms(shape[1]) if len(shape) > 1 else [])


def _softmax_dim(shape, values, rule):
    rank = len(shape)
    return ["1", "-1", "1", str(rank - 1), "-2", ("None", f"  # torch2ms: input-rank={rank}")]


def _unflatten_dim(shape, values, rule):
    return [str(d) for d in range(1, len(shape)) if shape[d] in (4, 6)] or ["1"]


def _unflattened_size(shape, values, rule):
    n = shape[values["dim"]]
    return {4: ["(2, 2)", "[2, 2]", "(1, 4)", "(-1, 2)", "(2, -1)"],
            6: ["(2, 3)", "[3, 2]", "(-1, 3)", "(1, 6)"]}.get(n, [f"({n},)"])


def _output_size(shape, values, rule):
    if len(shape) == 3:
        return ["1", "2", "3", "(2,)"]
    return ["1", "2", "(2, 3)", "(1, 2)", "3"]


def _size(shape, values, rule):
    return [spatial_tuple(shape, [6, 8]), "8", "(8, 10)"]


def _mode(shape, values, rule):
    rank = len(shape)
    linear = {3: "'linear'", 4: "'bilinear'", 5: "'trilinear'"}.get(rank, "'nearest'")
    return ["'nearest'", "'nearest'", linear, linear, "'bicubic'", "'nearest-exact'", "'area'"]


SHAPED_OPTIONS.update({
    "num_features": _channels, "num_channels": _channels, "in_channels": _channels, "num_groups": _num_groups,
    "normalized_shape": _normalized_shape, "in_features": _in_features, "num_parameters": _num_parameters,
    "kernel_size": _kernel, "stride": _stride, "padding": _padding, "dim": _softmax_dim,
    "output_size": _output_size, "size": _size, "mode": _mode,
})
# Unflatten's dim and sizes go together.
UNFLATTEN_OPTIONS = {"dim": _unflatten_dim, "unflattened_size": _unflattened_size}


def ranks_of(rule: LayerRule) -> tuple[int, ...]:
    if rule.group in ANY_RANK_GROUPS or rule.torch_name in ANY_RANK_LAYERS:
        return tuple(SHAPES)
    return EXTRA_RANKS.get(rule.torch_name, ()) + (rule.input_rank,)


def takes_indices(rule: LayerRule) -> bool:
    return rule.sample.integers is not None


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
    # Records that depend on a layer whose training-mode results are random (dropout): compared by shape.
    random_records: frozenset[str] = frozenset()
    # Records that depend on a layer MindSpore computes approximately: compared with APPROXIMATE_TOLERANCE.
    approximate_records: frozenset[str] = frozenset()

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


@dataclass(frozen=True)
class Feed:
    """What a layer or module is fed: floats of ``shape`` (``sample``), or integer indices in
    [0, ``high``] (``indices``, Embedding's input)."""

    shape: tuple[int, ...]
    high: int | None = None

    @property
    def rank(self) -> int:
        return len(self.shape)


@dataclass
class LayerSpec:
    """One construction: the rule, its arguments as written, and what torch makes of them."""

    rule: LayerRule
    positional: list[str]
    keywords: list[tuple[str, str]]
    values: dict[str, object]  # the arguments given, evaluated (momentum: torch's default when omitted)
    feed: Feed  # what it is fed
    out_shape: tuple[int, ...] | None = None  # what comes out on that input (None: not a tensor)
    present: frozenset[str] = frozenset()  # the rule's attributes that hold a value (not None) in torch
    pragma: str = ""
    star_args: str | None = None  # "*name" / "**name": arguments moved into a variable
    star_kwargs: str | None = None
    prelude: list[str] = field(default_factory=list)  # statements defining those variables
    variables: set[str] = field(default_factory=set)
    extra: list = field(default_factory=list)  # var-positional arguments (torch ignores them), evaluated
    given: tuple[str, ...] = ()  # the parameters given
    moved: tuple[str, ...] = ()  # the parameters given through star_kwargs

    @property
    def rank(self) -> int:
        return self.feed.rank

    @property
    def random(self) -> bool:
        """Whether its training-mode results are random (dropout with 0 < p < 1): compared by shape."""
        p = self.values.get("p", torch_defaults(self.rule.torch).get("p"))
        return self.rule.group == "dropout" and not (p == 0 or p == 1)

    @property
    def approximate(self) -> bool:
        """Whether MindSpore computes it approximately (APPROXIMATE_LAYERS): compared more loosely."""
        return self.rule.torch_name in APPROXIMATE_LAYERS

    @property
    def same_shape(self) -> bool:
        """Whether its output takes the place of its input (it can be applied twice)."""
        return self.feed.high is None and self.out_shape == self.feed.shape

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
        if attr == "momentum":
            return self.values.get("momentum") is not None
        return attr in self.present

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
    feed: Feed
    spec: LayerSpec | None = None  # a single layer: its attributes can be read
    callable: bool = True
    name: str | None = None  # a plain module-level name bound to it
    own: frozenset[str] | None = None  # the tags of the lines acting on it (default: deps, unshared)
    unpacked: bool = False  # bound by tuple unpacking

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
        self.random_entities: set[str] = set()  # layers whose training-mode results are random
        self.approximate_entities: set[str] = set()  # layers MindSpore computes approximately

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

    def input_expr(self, feed: Feed) -> str:
        form = self.pick(INPUT_FORMS if feed.high is None else INDEX_FORMS)
        return form.format(shape=", ".join(map(str, feed.shape)), high=feed.high, seed=self.next_seed())

    def uses_variables(self, text: str) -> set[str]:
        found = {m.group(0) for m in _IDENT.finditer(text)} & set(VARIABLES)
        self.env_used |= found
        if "torch." in text:
            self.needs_torch = True
        return found

    def tags_of(self, spec: LayerSpec, entity: str) -> frozenset[str]:
        if spec.random:
            self.random_entities.add(entity)
        if spec.approximate:
            self.approximate_entities.add(entity)
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
        random = frozenset(name for name, deps in self.records.items() if deps & self.random_entities)
        approximate = frozenset(name for name, deps in self.records.items() if deps & self.approximate_entities)
        return Program(source, records, frozenset(self.features), tuple(line.tags for line in lines),
                       line_deps=tuple(line.deps for line in lines), random_records=random,
                       approximate_records=approximate)


# -- arguments -----------------------------------------------------------------------------------


def draw_spec(b: Builder, rule: LayerRule, feed: Feed | None = None) -> LayerSpec | None:
    """A construction of ``rule`` fed ``feed`` (default: an input of a rank it takes), with arguments
    drawn from OPTIONS / SHAPED_OPTIONS; None when torch refuses it (the caller draws again)."""
    if feed is None:
        feed = home_feed(b, rule)
    defaults = torch_defaults(rule.torch)
    params = [p for p in rule.torch_params if not p.startswith("*")]
    shaped = UNFLATTEN_OPTIONS if rule.torch_name == "Unflatten" else SHAPED_OPTIONS
    for p in params:
        if p not in OPTIONS and p not in shaped:
            raise AssertionError(f"the fuzz grammar has no values for {rule.torch}({p}=...): add them to OPTIONS")
    positional_params = list(rule.positional_params())
    required = [p for p in params if defaults.get(p, inspect.Parameter.empty) is inspect.Parameter.empty]
    optional = [p for p in params if p not in required]
    chosen_optional = b.subset(optional, 4)
    chosen = set(required) | set(chosen_optional)
    for group in ONE_OF.get(rule.torch_name, ()):
        if len(chosen & set(group)) != 1:
            keep = b.pick(group)
            chosen = (chosen - set(group)) | {keep}
    # Positional arguments: a prefix of the positional parameters, all of which are passed.
    prefix = 0
    while prefix < len(positional_params) and positional_params[prefix] in chosen:
        prefix += 1
    n_positional = b.integer(0, prefix)
    pragma = ""
    texts: dict[str, str] = {}
    values: dict[str, object] = {}
    for p in params:
        if p not in chosen:
            continue
        choice = b.pick(shaped[p](feed.shape, values, rule) if p in shaped else OPTIONS[p])
        text, line_pragma = choice if isinstance(choice, tuple) else (choice, "")
        pragma = pragma or line_pragma
        texts[p] = text
        values[p] = evaluate(text, b.env)
    if "momentum" in params and "momentum" not in values:
        values["momentum"] = defaults["momentum"]
    positional = [texts[p] for p in positional_params[:n_positional]]
    extra: list[str] = []
    # Arguments torch ignores (Identity(4)), where its class takes them (Sigmoid does not, whatever
    # rules/activation.toml says: Module.__init__ refuses them).
    if rule.varargs and "__init__" in vars(torch_class(rule.torch)) and b.integer(0, 3) == 0:
        extra = [b.pick(["4", "c", "'x'"])]
        positional = extra
    keyword_order = [p for p in params if p in chosen and p not in positional_params[:n_positional]]
    keyword_order = b.shuffle(keyword_order)
    keywords = [(p, texts[p]) for p in keyword_order]
    extra_values = [evaluate(t, b.env) for t in extra]
    tried = dry_run(rule, {p: values[p] for p in texts}, extra_values, feed)
    if tried is None:
        return None
    out_shape, present = tried
    variables = set()
    for text in list(texts.values()) + extra:
        variables |= b.uses_variables(text)
    spec = LayerSpec(rule, positional, keywords, values, feed, out_shape, present, pragma, variables=variables,
                     extra=extra_values, given=tuple(texts))
    b.features.add(f"layer:{rule.torch_name}")
    b.features.update(f"param:{p}" for p in texts)
    if extra:
        b.features.add("param:*args")
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
        spec.moved = tuple(p for p, _ in moved)
        b.features.add("args:**dict")
    elif star == "args" and len(spec.positional) >= 1:
        name = b.fresh("args")
        spec.prelude.append(f"{name} = ({', '.join(spec.positional)},)")
        spec.star_args, spec.positional = f"*{name}", []
        b.features.add("args:*tuple")
    return spec


def variant(spec: LayerSpec, param: str, text: str, env) -> LayerSpec | None:
    """``spec`` with ``param`` set to ``text`` (a comprehension over its values); None if torch refuses it."""
    values = dict(spec.values)
    values[param] = evaluate(text, env)
    tried = dry_run(spec.rule, {p: values[p] for p in spec.given}, spec.extra, spec.feed)
    if tried is None:
        return None
    return LayerSpec(spec.rule, spec.positional, spec.keywords, values, spec.feed, tried[0], tried[1],
                     extra=spec.extra, given=spec.given)


def evaluate(text: str, env) -> object:
    """The value of an argument as the generator wrote it (see OPTIONS), with the program's variables."""
    import torch

    namespace = {k: eval(v, {"torch": torch}) if isinstance(v, str) and v.startswith("torch.") else v
                 for k, v in env.items()}
    return eval(text, {"torch": torch}, namespace)  # the generator's own texts, see OPTIONS


_DRY_RUNS: dict = {}


def dry_run(rule: LayerRule, kwargs: dict, extra: list, feed: Feed):
    """Build the layer under torch and feed it ``feed``: (output shape or None, attributes holding a
    value), or None when torch refuses the construction or the input."""
    import warnings

    import torch

    key = (rule.torch, repr(sorted(kwargs.items())), repr(extra), feed)
    if key in _DRY_RUNS:
        return _DRY_RUNS[key]
    result = None
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            module = torch_class(rule.torch)(*extra, **kwargs)
            if feed.high is None:
                x = torch.randn(feed.shape)
            else:
                x = torch.randint(0, feed.high + 2, feed.shape)  # + step in a loop
            out = module(x)
            module.eval()
            module(x)
        present = frozenset(a for a in rule.attributes if _attribute(module, a) is not None)
        out_shape = tuple(out.shape) if isinstance(out, torch.Tensor) and out.is_floating_point() else None
        result = (out_shape, present)
    except Exception:  # noqa: BLE001 - torch refusing the arguments or the input is what is asked
        result = None
    _DRY_RUNS[key] = result
    return result


def _attribute(obj, path: str):
    for part in path.split("."):
        obj = getattr(obj, part, None)
    return obj


def home_feed(b: Builder, rule: LayerRule) -> Feed:
    """An input for a layer standing alone: indices for Embedding, else SHAPES of a rank it takes."""
    if takes_indices(rule):
        return Feed(INDEX_SHAPE, INDEX_HIGH)
    return Feed(SHAPES[b.pick(ranks_of(rule))])


def draw_rule(b: Builder, feed: Feed | None = None) -> LayerRule:
    """A layer rule taking ``feed`` (any, by default): a group by GROUP_WEIGHTS, then a layer of it, the ones MindSpore cannot run on CPU (a device note,
    InstanceNorm) seldom. (Two small choices: hypothesis draws from a long list unevenly.)"""
    if feed is None:
        candidates = list(LAYER_RULES)
    elif feed.high is not None:
        candidates = [r for r in LAYER_RULES if takes_indices(r)]
    else:
        candidates = [r for r in LAYER_RULES if not takes_indices(r) and feed.rank in ranks_of(r)]
    groups = sorted({r.group for r in candidates})
    group = b.pick([g for g in groups for _ in range(GROUP_WEIGHTS[g])])
    in_group = [r for r in candidates if r.group == group]
    return b.pick([r for r in in_group if not r.device_note] * 3 + [r for r in in_group if r.device_note])


ATTEMPTS = 6
FALLBACK = {"float": ("torch.nn.ReLU", {}), "indices": ("torch.nn.Embedding", {"num_embeddings": "10",
                                                                               "embedding_dim": "4"})}


def draw_layer(b: Builder, feed: Feed | None = None, chain: bool = False) -> LayerSpec:
    """A construction fed ``feed`` (default: its own input); with ``chain``, one whose output is a float
    tensor another layer can take. A few draws, then a layer that takes anything."""
    for _ in range(ATTEMPTS):
        spec = draw_spec(b, draw_rule(b, feed), feed)
        if spec is not None and (not chain or spec.out_shape is not None and len(spec.out_shape) in SHAPES):
            return spec
    qual, texts = FALLBACK["float" if feed is None or feed.high is None else "indices"]
    rule = RULES.layers[qual]
    feed = feed or home_feed(b, rule)
    values = {p: evaluate(t, b.env) for p, t in texts.items()}
    out_shape, present = dry_run(rule, values, [], feed)
    b.features.add(f"layer:{rule.torch_name}")
    b.features.add("layer:fallback")
    return LayerSpec(rule, list(texts.values()), [], values, feed, out_shape, present, given=tuple(texts))


# -- construction contexts -------------------------------------------------------------------------
# Each takes the builder and returns the handles it made (an immediate use records and returns none).


def line_pragma(specs: list[LayerSpec]) -> str:
    """The pragma of a line building ``specs``: an input rank that holds for every one of them, else none
    (the layers that needed it are then reported by the tool)."""
    pragmas = {s.pragma for s in specs if s.pragma}
    if len(pragmas) == 1 and len({s.rank for s in specs}) == 1:
        return pragmas.pop()
    return ""


def ctx_assign(b: Builder) -> list[Handle]:
    spec = draw_layer(b)
    name, ent = b.fresh("bn"), b.fresh("L")
    tags = b.tags_of(spec, ent)
    b.emit_prelude(spec, tags)
    chained = b.pick(["", "", "", ".eval()", ".train()", ".train(False)"])
    if chained:
        b.features.add("mode:chained-at-construction")
    b.emit(f"{name} = {spec.call(b.nn(spec.rule.torch_name))}{chained}{spec.pragma}", tags)
    return [Handle(name, tags, spec.feed, spec, name=name)]


def _helper(b: Builder, name: str, text: str) -> str:
    """A module-level helper function, defined once; its entity."""
    if name not in b.helpers:
        b.helpers[name] = b.fresh("H")
        b.emit(text, {b.helpers[name]}, definition=True)
    return b.helpers[name]


def ctx_argument(b: Builder) -> list[Handle]:
    spec = draw_layer(b)
    ent = b.fresh("L")
    if b.coin():
        helper = _helper(b, "keep", "def keep(module):\n    return module\n")
        tags = b.tags_of(spec, ent) | {helper}
        name = b.fresh("bn")
        b.emit_prelude(spec, tags)
        b.emit(f"{name} = keep({spec.call(b.nn(spec.rule.torch_name))}){spec.pragma}", tags)
        return [Handle(name, tags, spec.feed, spec, name=name)]
    helper = _helper(b, "run", "def run(module, x):\n    return module(x)\n")
    tags = b.tags_of(spec, ent) | {helper}
    b.emit_prelude(spec, tags)
    record = b.record_name("run")
    b.emit(f"record({record!r}, run({spec.call(b.nn(spec.rule.torch_name))}, {b.input_expr(spec.feed)})){spec.pragma}",
           tags, record=record)
    return []


def _two_specs(b: Builder, same_feed=True) -> list[LayerSpec]:
    first = draw_layer(b)
    return [first, draw_layer(b, first.feed if same_feed else None)]


def ctx_display(b: Builder) -> list[Handle]:
    specs = _two_specs(b, same_feed=False)
    kind = b.pick(["list", "tuple", "dict"])
    b.features.add(f"ctx:display-{kind}")
    ents = [b.fresh("L") for _ in specs]
    tags = frozenset().union(*(b.tags_of(s, e) for s, e in zip(specs, ents)))
    for s in specs:
        b.emit_prelude(s, tags)
    calls = [s.call(b.nn(s.rule.torch_name)) for s in specs]
    name = b.fresh("layers")
    pragma = line_pragma(specs)
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
            handles.append(Handle(alias, deps, spec.feed, spec, name=alias))
        else:
            handles.append(Handle(expr, deps, spec.feed, spec))
    return handles


def ctx_comprehension(b: Builder) -> list[Handle]:
    spec = draw_layer(b)
    rule = spec.rule
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
        specs = [variant(spec, param, text, b.env) for text in values]
        assert all(specs), "a swept value torch refuses"
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
    return [Handle(f"{name}[{k}]", tags, s.feed, s) for s, k in zip(specs, keys)]


def ctx_immediate(b: Builder) -> list[Handle]:
    spec = draw_layer(b)
    ent = b.fresh("L")
    tags = b.tags_of(spec, ent)
    b.emit_prelude(spec, tags)
    record = b.record_name("immediate")
    b.emit(f"record({record!r}, {spec.call(b.nn(spec.rule.torch_name))}({b.input_expr(spec.feed)})){spec.pragma}",
           tags, record=record)
    return []


def ctx_unpacking(b: Builder) -> list[Handle]:
    specs = _two_specs(b, same_feed=False)
    ents = [b.fresh("L") for _ in specs]
    tags = frozenset().union(*(b.tags_of(s, e) for s, e in zip(specs, ents)))
    for s in specs:
        b.emit_prelude(s, tags)
    names = [b.fresh("bn") for _ in specs]
    calls = [s.call(b.nn(s.rule.torch_name)) for s in specs]
    pragma = line_pragma(specs)
    if b.coin():
        b.emit(f"{names[0]}, {names[1]} = {calls[0]}, {calls[1]}{pragma}", tags)
    else:
        b.emit(f"({names[0]}, {names[1]}) = [{calls[0]}, {calls[1]}]{pragma}", tags)
    return [Handle(n, b.tags_of(s, e), s.feed, s, name=n, unpacked=True) for n, s, e in zip(names, specs, ents)]


def ctx_conditional(b: Builder) -> list[Handle]:
    specs = _two_specs(b, same_feed=True)
    ents = [b.fresh("L") for _ in specs]
    tags = frozenset().union(*(b.tags_of(s, e) for s, e in zip(specs, ents))) | {"v:flag"}
    b.env_used.add("flag")
    for s in specs:
        b.emit_prelude(s, tags)
    name = b.fresh("bn")
    calls = [s.call(b.nn(s.rule.torch_name)) for s in specs]
    pragma = line_pragma(specs)
    b.emit(f"{name} = {calls[0]} if flag else {calls[1]}{pragma}", tags)
    live = specs[0] if b.env["flag"] else specs[1]
    return [Handle(name, tags, live.feed, live, name=name)]


def _split_for_factory(b: Builder, spec: LayerSpec):
    """Which arguments the factory fixes and which its call passes: (fixed keywords, passed keywords)."""
    if not spec.keywords:
        return [], []
    k = b.integer(0, len(spec.keywords))
    return spec.keywords[:k], spec.keywords[k:]


def ctx_factory(b: Builder) -> list[Handle]:
    """lambda, functools.partial, a def, a registry dict, getattr, a parameter default."""
    spec = draw_layer(b)
    kinds = ["lambda", "lambda-kwargs", "partial", "def", "def-kwargs", "def-assign", "registry", "default"]
    if b.nn_module() is not None:
        kinds.append("getattr")
    kind = b.pick(kinds)
    # (A **dict in a partial holding a parameter whose omission the tool spells out was a silent
    # difference it found: tests/fixtures/keyword_dicts/partial_dict_eps.in.py.)
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
    return [Handle(name, tags, spec.feed, spec, name=name)]


def ctx_subclass(b: Builder) -> list[Handle]:
    spec = draw_layer(b)
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
    return [Handle(name, tags, spec.feed, spec, name=name)]


def ctx_holder(b: Builder) -> list[Handle]:
    """An attribute of a module instance: ``holder.bn = <construction>``."""
    spec = draw_layer(b)
    ent, hent = b.fresh("L"), b.fresh("N")
    tags = b.tags_of(spec, ent)
    b.emit_prelude(spec, tags)
    holder = b.fresh("holder")
    b.emit(f"{holder} = {b.nn(MODULE_BASE)}()", {hent})
    b.emit(f"{holder}.norm = {spec.call(b.nn(spec.rule.torch_name))}{spec.pragma}", tags | {hent})
    return [Handle(f"{holder}.norm", tags | {hent}, spec.feed, spec, own={ent}),
            Handle(holder, tags | {hent}, spec.feed, None, callable=False, name=holder, own={hent})]


def ctx_container(b: Builder) -> list[Handle]:
    # A chain: the second layer takes what the first gives (Sequential calls them in turn).
    first = draw_layer(b, chain=True)
    specs = [first, draw_layer(b, Feed(first.out_shape), chain=True)]
    kind = b.pick(CONTAINERS)
    b.features.add(f"ctx:container-{kind}")
    if first.out_shape != first.feed.shape:
        b.features.add("chain:reshaped")
    ents = [b.fresh("L") for _ in specs]
    sent = b.fresh("S")
    tags = frozenset().union(*(b.tags_of(s, e) for s, e in zip(specs, ents))) | {sent}
    if any(s.random for s in specs):
        # Calling the container feeds a random layer's output to the next one: the running statistics
        # of a norm layer there are random too, read through any handle of the container.
        b.random_entities.add(sent)
    for s in specs:
        b.emit_prelude(s, tags)
    calls = [s.call(b.nn(s.rule.torch_name)) for s in specs]
    pragma = line_pragma(specs)
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
    handles = [Handle(f"{name}[{k}]", b.tags_of(s, e) | {sent}, s.feed, s, own={e})
               for s, e, k in zip(specs, ents, keys)]
    handles.append(Handle(name, tags, first.feed, None, callable=callable_, name=name, own={sent}))
    return handles


def ctx_module_class(b: Builder) -> list[Handle]:
    """An nn.Module subclass whose __init__ builds 1-3 members (directly, through a class attribute,
    in a container) and whose forward chains them."""
    n = b.integer(1, 3)
    feed = None  # what the next member takes: forward() feeds each the output of the one before
    cls, kent, nent = f"Net{b.fresh('_')}", b.fresh("K"), b.fresh("N")
    class_attrs: list[Line] = []
    init: list[Line] = []
    forward: list[Line] = []
    members: list[tuple[str, LayerSpec, frozenset[str]]] = []  # (expression from self, spec, tags)
    init_params = ""
    instance_args = ""
    all_tags = {kent}
    for i in range(n):
        spec = draw_layer(b, feed, chain=True)
        if i == 0:
            net_feed = spec.feed
        if i < n - 1 and spec.out_shape != spec.feed.shape:
            b.features.add("chain:reshaped")
        feed = Feed(spec.out_shape)
        ent = b.fresh("L")
        tags = b.tags_of(spec, ent)
        all_tags |= tags
        b.emit_prelude(spec, tags)
        form = b.pick(["direct", "direct", "class-attribute", "container", "parameter", "add_module", "setattr",
                       "appended", "class-attribute-partial", "or-default", "container-comprehension"])
        if form == "or-default" and init_params or form == "container-comprehension" and not spec.same_shape:
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
    if any(spec.random for _expr, spec, _tags in members[:-1]):
        # forward() feeds a random layer's output to the members after it: their running statistics
        # are random too once the whole module has run, read through any handle of it.
        b.random_entities.add(nent)
    all_tags = frozenset(all_tags | {nent})
    how = b.pick(["plain", "plain", "eval", "train", "immediate"])
    b.features.add(f"ctx:module-class-{how}")
    if how == "immediate":
        record = b.record_name("net")
        b.emit(f"record({record!r}, {cls}({instance_args})({b.input_expr(net_feed)}))", all_tags, record=record)
        return []
    net = b.fresh("net")
    b.emit(f"{net} = {cls}({instance_args})" + {"plain": "", "eval": ".eval()", "train": ".train()"}[how], {kent, nent})
    handles = [Handle(net, all_tags, net_feed, None, name=net, own={nent})]
    for expr, spec, tags in members:
        handles.append(Handle(f"{net}.{expr}", frozenset(tags | {kent, nent}), spec.feed, spec))
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
            # (Wrapping a layer bound by tuple unpacking was a silent difference it found:
            # tests/fixtures/mode/unpacked_then_wrapped.in.py.)
            kinds += ["wrap"]
    if h.name is not None:
        kinds += ["rebind-mode"]
    kind = b.pick(kinds)
    b.features.add(f"event:{kind}")
    tags, deps = h.own, h.deps
    if kind == "use":
        record = b.record_name("out")
        b.emit(f"record({record!r}, {h.expr}({b.input_expr(h.feed)}))", tags, record=record, deps=deps)
    elif kind == "use-twice":
        record = b.record_name("loop")
        b.emit(f"for step in range(2):\n    record(f'{record}_{{step}}', {h.expr}({b.input_expr(h.feed)} + step))", tags,
               deps=deps)
        for step in range(2):
            b.add_record(f"{record}_{step}", deps, len(b.lines))
    elif kind == "use-no-grad":
        ctx = b.pick(["no_grad", "no_grad", "inference_mode"])
        b.features.add(f"no_grad:{ctx}")
        record = b.record_name("no_grad")
        b.emit(f"with {b.torch(ctx)}():\n    record({record!r}, {h.expr}({b.input_expr(h.feed)}))", tags, record=record, deps=deps)
    elif kind == "use-no-grad-decorated":
        ctx = b.pick(["no_grad", "inference_mode"])
        b.features.add(f"no_grad:@{ctx}")
        helper = _helper(b, f"infer_{ctx}", f"@{b.torch(ctx)}()\ndef infer_{ctx}(module, x):\n    return module(x)\n")
        record = b.record_name("decorated")
        b.emit(f"record({record!r}, infer_{ctx}({h.expr}, {b.input_expr(h.feed)}))", tags, record=record,
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
        b.emit(f"record({record!r}, {h.expr}.{call}({b.input_expr(h.feed)}))", tags, record=record, deps=deps)
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
        return [Handle(container, h.deps | {sent}, h.feed, None, name=container, own={sent})]
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
    x = b.input_expr(Feed(SHAPES[rank]))
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
                b.emit(f"record({record!r}, {h.expr}({b.input_expr(h.feed)}))", h.own, record=record, deps=h.deps)
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
