"""Which calls to check: each torch construction site of a file, paired with its migrated call
(from ``migrate_source``, or from a migrated file the user edited), and the values the free names in
their arguments are bound to. No framework is imported here."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..converters import read_input_rank
from ..engine import migrate_source
from ..model import MigrationResult
from ..ruleset import LayerRule, RuleSet, default_rules
from .evaluate import (
    DType,
    Evaluator,
    NotEvaluable,
    TensorSample,
    condition_references,
    free_references,
    import_map,
    qualified_name,
)

CHECKED_KINDS = ("construct", "function", "partial")


@dataclass
class Call:
    """One call as written: its node, and the imports of the module it is in."""

    node: ast.Call
    imports: Mapping[str, str]
    path: str | None
    line: int

    @property
    def arguments(self) -> str:
        """The argument list as written, on one line."""
        text = ", ".join([ast.unparse(a) for a in self.node.args]
                         + [f"{k.arg}={ast.unparse(k.value)}" if k.arg else f"**{ast.unparse(k.value)}"
                            for k in self.node.keywords])
        return text


@dataclass
class CallPair:
    """A torch call and its migrated counterpart; ``skip`` says why it cannot be checked."""

    rule: LayerRule
    original: Call | None
    migrated: Call | None
    mindspore: str | None = None  # the MindSpore callable the migrated call names
    input_rank: int | None = None  # from the source's input-rank hint, else the rule's
    skip: str | None = None
    fail: str | None = None  # wrong before anything runs (the migrated call still names torch)
    bindings: dict[str, Any] = field(default_factory=dict)
    sampled: dict[str, Any] = field(default_factory=dict)  # the part of bindings verify chose

    @property
    def where(self) -> tuple[str | None, int]:
        call = self.original or self.migrated
        return (call.path, call.line) if call else (None, 0)


def parse_call(text: str) -> ast.Call | None:
    try:
        node = ast.parse(f"(\n{text}\n)", mode="eval").body
    except SyntaxError:
        return None
    return node if isinstance(node, ast.Call) else None


def callee_qualified(call: ast.Call, imports: Mapping[str, str], rules: RuleSet) -> str | None:
    qual = qualified_name(call.func, imports)
    return rules.canonical(qual) if qual else None


def mindspore_rule(qual: str | None, rules: RuleSet) -> LayerRule | None:
    """The rule whose MindSpore target a qualified MindSpore name is (re-export paths included)."""
    if not qual or not qual.startswith("mindspore."):
        return None
    for rule in rules.layers.values():
        if qual == rule.mindspore:
            return rule
    last = qual.rsplit(".", 1)[1]
    candidates = [r for r in rules.layers.values() if r.mindspore_name == last]
    return candidates[0] if len(candidates) == 1 else None


# -- pairs from one migration --------------------------------------------------------------------


def pairs_from_migration(source: str, result: MigrationResult, rules: RuleSet | None = None) -> list[CallPair]:
    """Every construction/function site of ``result`` with the call ``migrate_source`` made of it."""
    rules = rules or default_rules()
    original_imports = import_map(_parse(source))
    migrated_imports = import_map(_parse(result.code))
    pairs = []
    for site in result.sites:
        rule = rules.layers.get(site.rule or "")
        if site.kind not in CHECKED_KINDS or rule is None:
            continue
        node = parse_call(site.original)
        original = Call(node, original_imports, result.path, site.line) if node is not None else None
        pair = CallPair(rule, original, None, input_rank=input_rank_hint(source, site))
        pairs.append(pair)
        if site.kind == "partial":
            pair.skip = "built through functools.partial: verify checks direct calls"
            continue
        if not site.converted:
            pair.skip = f"left unconverted ({site.message})" if site.message else "left unconverted"
            continue
        if node is None:
            pair.skip = "the site is not a plain call"
            continue
        if callee_qualified(node, original_imports, rules) != rule.torch:
            pair.skip = (f"built through {ast.unparse(node.func)} (a subclass, alias or factory): "
                         f"verify checks direct calls of {rule.torch}")
            continue
        if site.replacement is None and site.kind != "construct":
            pair.skip = f"migrate_source gives no migrated text for {site.kind} sites: use --against"
            continue
        migrated_node = parse_call(site.replacement or site.original)
        if migrated_node is None:
            pair.skip = "the migrated site is not a plain call"
            continue
        pair.migrated = Call(migrated_node, migrated_imports, result.path, site.line)
        _name_target(pair, rules)
    return pairs


def _name_target(pair: CallPair, rules: RuleSet) -> None:
    """Which MindSpore callable the migrated call names, judged by the migrated module's imports."""
    qual = callee_qualified(pair.migrated.node, pair.migrated.imports, rules)
    if qual is None:
        pair.mindspore = pair.rule.mindspore  # a local name: trust the rule
    elif qual.startswith("mindspore."):
        pair.mindspore = qual
    else:
        pair.fail = f"the migrated call names {qual}, not a MindSpore callable"


# -- pairs against a migrated file ---------------------------------------------------------------


def pairs_against(original_source: str, migrated_source: str, *, original_path: str | None = None,
                  migrated_path: str | None = None, rules: RuleSet | None = None) -> list[CallPair]:
    """Pair the original's sites with the calls of a (hand-edited) migrated file: per MindSpore
    target, in source order. A call the migrated file still makes to torch pairs as a skipped site."""
    rules = rules or default_rules()
    original = migrate_source(original_source, path=original_path)
    original_imports = import_map(_parse(original_source))
    migrated_tree = _parse(migrated_source)
    migrated_imports = import_map(migrated_tree)

    # The migrated file's calls per MindSpore target: MindSpore calls found by their imports, and
    # the torch calls left in it (found by the engine, which resolves torch names properly).
    counterparts: dict[str, list[tuple[int, int, Call, LayerRule | None]]] = {}
    for node in ast.walk(migrated_tree):
        if isinstance(node, ast.Call):
            rule = mindspore_rule(callee_qualified(node, migrated_imports, rules), rules)
            if rule is not None:
                counterparts.setdefault(rule.mindspore, []).append(
                    (node.lineno, node.col_offset, Call(node, migrated_imports, migrated_path, node.lineno), None))
    leftover = migrate_source(migrated_source, path=migrated_path)
    for site in leftover.sites:
        node = parse_call(site.original)
        rule = rules.layers.get(site.rule or "")
        if site.kind in CHECKED_KINDS and rule is not None and node is not None:
            counterparts.setdefault(rule.mindspore, []).append(
                (site.line, site.column, Call(node, migrated_imports, migrated_path, site.line), rule))
    for calls in counterparts.values():
        calls.sort(key=lambda c: (c[0], c[1]))

    pairs: list[CallPair] = []
    taken: dict[str, int] = {}
    for site in original.sites:
        rule = rules.layers.get(site.rule or "")
        if site.kind not in CHECKED_KINDS or rule is None:
            continue
        node = parse_call(site.original)
        call = Call(node, original_imports, original_path, site.line) if node is not None else None
        pair = CallPair(rule, call, None, input_rank=input_rank_hint(original_source, site))
        pairs.append(pair)
        if site.kind == "partial":
            pair.skip = "built through functools.partial: verify checks direct calls"
            continue
        if node is None or callee_qualified(node, original_imports, rules) != rule.torch:
            pair.skip = f"not a direct call of {rule.torch}: verify checks direct calls"
            continue
        index = taken.get(rule.mindspore, 0)
        candidates = counterparts.get(rule.mindspore, [])
        if index >= len(candidates):
            pair.skip = f"no counterpart in the migrated file (it has {len(candidates)} {rule.mindspore_name} calls)"
            continue
        taken[rule.mindspore] = index + 1
        _, _, counterpart, still_torch = candidates[index]
        pair.migrated = counterpart
        if still_torch is not None:
            pair.skip = "still torch in the migrated file"
            continue
        _name_target(pair, rules)
    for target, candidates in counterparts.items():
        for _, _, counterpart, still_torch in candidates[taken.get(target, 0):]:
            if still_torch is None:
                rule = mindspore_rule(target, rules)
                pairs.append(CallPair(rule, None, counterpart, skip="no counterpart in the original file"))
    return pairs


def input_rank_hint(source: str, site) -> int | None:
    """The rank the source's ``# torch2ms: input-rank=N`` hint gives for this site (LayerNorm)."""
    return read_input_rank(source.splitlines()[site.line - 1: site.end_line])


def _parse(source: str) -> ast.Module:
    return ast.parse(source.lstrip("\ufeff"))


# -- bindings -----------------------------------------------------------------------------------

# Deterministic samples for free names, by the parameter they are passed to, else by their own
# name. Numeric samples differ from the defaults, so an argument the migration dropped shows.
SAMPLE_BY_PARAM: dict[str, Any] = {
    "num_features": 4, "num_channels": 4, "num_groups": 2, "normalized_shape": 5,
    "momentum": 0.2, "eps": 1e-3, "epsilon": 1e-3,
    "affine": True, "elementwise_affine": True, "track_running_stats": True, "bias": True,
    "training": True, "use_batch_statistics": None,
    "device": "cpu", "dtype": DType("float32"),
    # Layers (issue 15): sizes that fit the rules' sample shapes, rates that are not the defaults.
    "in_channels": 4, "out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1, "dilation": 1, "groups": 1,
    "in_features": 4, "out_features": 4, "num_embeddings": 10, "embedding_dim": 4, "embed_dim": 8, "num_heads": 2,
    "p": 0.3, "negative_slope": 0.1, "num_parameters": 1, "upscale_factor": 2, "output_size": 2,
    "scale_factor": 2, "inplace": False,
}
# The tensors a normalization function takes, by parameter (torch's and MindSpore's names).
TENSOR_PARAMS = {"input": "input", "input_x": "input", "running_mean": "mean", "running_var": "var",
                 "weight": "weight", "bias": "bias"}
SAMPLE_BY_NAME: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"momentum|mom$"), 0.2),
    (re.compile(r"eps|epsilon"), 1e-3),
    (re.compile(r"group"), 2),
    (re.compile(r"channel|feature|planes|width|dim|^c$|^ch$|^n$|size"), 4),
    (re.compile(r"affine|track|training|^use_|^is_|^has_|enable|flag"), True),
    (re.compile(r"dtype"), DType("float32")),
    (re.compile(r"device"), "cpu"),
]


def sample_for(key: str, param: str | None, tensors: bool = False) -> tuple[bool, Any]:
    if tensors and param in TENSOR_PARAMS:
        return True, TensorSample(TENSOR_PARAMS[param], key)
    if param in SAMPLE_BY_PARAM:
        return True, SAMPLE_BY_PARAM[param]
    name = re.split(r"[.\[]", key)[-1].strip("'\"]").lower() or key.lower()
    for pattern, value in SAMPLE_BY_NAME:
        if pattern.search(name):
            return True, value
    return False, None


def module_constants(tree: ast.Module, imports: Mapping[str, str]) -> dict[str, Any]:
    """Top-level ``NAME = <evaluable expression>`` assigned exactly once: what the program's own
    code binds the name to, a better sample than any guess."""
    counts: dict[str, int] = {}
    for stmt in tree.body:
        for target in _assigned_names(stmt):
            counts[target] = counts.get(target, 0) + 1
    values: dict[str, Any] = {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if len(targets) == 1 and isinstance(targets[0], ast.Name) and counts.get(targets[0].id) == 1:
                try:
                    values[targets[0].id] = Evaluator(values, imports)(stmt.value)
                except NotEvaluable:
                    pass
    return values


def _assigned_names(stmt: ast.stmt) -> list[str]:
    names = []
    for node in ast.walk(stmt):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.append(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.extend((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def bind(pair: CallPair, user: Mapping[str, Any], constants: Mapping[str, Any]) -> None:
    """Fill ``pair.bindings``: the user's bindings, then the module's constants, then samples;
    a free name nothing binds makes the pair skipped."""
    bindings: dict[str, Any] = {}
    for call, param_names in ((pair.original, pair.rule.torch_params), (pair.migrated, pair.rule.mindspore_params)):
        if call is None:
            continue
        conditions = condition_references(call.node)
        for key, param in _free_with_params(call.node, param_names, bindings):
            if key in bindings:  # a name passed to two parameters: the sample of the first it feeds
                continue
            if key in user:
                bindings[key] = user[key]
            elif key in constants:
                bindings[key] = constants[key]
            else:
                found, value = (True, True) if key in conditions else \
                    sample_for(key, param, tensors=pair.rule.kind == "function")
                if not found:
                    pair.skip = pair.skip or f"no sample value for {key}: pass --bind {key}=VALUE"
                    continue
                bindings[key] = value
                pair.sampled[key] = value
    pair.bindings = bindings


def _free_with_params(node: ast.Call, param_names, bound) -> list[tuple[str, str | None]]:
    positional = [p for p in param_names if p != "*"]
    star = list(param_names).index("*") if "*" in param_names else len(positional)
    out = []
    for i, arg in enumerate(node.args):
        param = positional[i] if i < star else None
        out.extend((key, param) for key in free_references(arg, bound))
    for kw in node.keywords:
        out.extend((key, kw.arg) for key in free_references(kw.value, bound))
    return out
