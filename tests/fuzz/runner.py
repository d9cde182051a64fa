"""Running a generated program both ways and judging the difference.

One process holds both frameworks, imported once. The original runs under torch with MindSpore
blocked; its migration runs under MindSpore with torch blocked, except for the grad-mode context
managers (``torch.no_grad``, ``torch.inference_mode``): the tool leaves them as they are (they are not
its to convert, the report lists them among the torch APIs that remain), and they change nothing in
what these layers compute, so the MindSpore run gets null contexts for them. Any other use of torch
in the migration stops the MindSpore run there.

A program is judged on:
- the migration: it parses, a second migration changes nothing, every torch name of the rules it
  still uses is on a line with a warning or error finding, and every name it reaches through a
  MindSpore import is one the rules map to (an import was not switched under a name left as it was);
- its records: each record torch made must be made by the migration with the same numbers, unless a
  warning or error finding sits on a line the record depends on. A record missing because the
  MindSpore run stopped is also allowed when the run stopped at a line of something the tool
  reported, or at a torch API the tool leaves (the run cannot go on without torch).

Two things the tool does not promise are set aside, the same way on both sides:
- random initial weights (a MindSpore Conv2d or Dense does not draw torch's numbers): while a program
  runs, every layer of a rule with ``random_init`` gets deterministic values for those parameters
  right after it is built, in torch's layout, carried to MindSpore's attribute and layout by the
  rule's attribute table and ``inserted_axes`` (what convert-ckpt does with a checkpoint);
- the masks of dropout in training mode (another random stream): records the grammar marks as
  depending on such a layer (``Program.random_records``) are compared by shape only.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import difflib
import functools
import importlib
import os
import re
import types
import zlib
from dataclasses import dataclass, field

from codemod import MigrationError, migrate_source
from codemod.ruleset import default_rules
from codemod.verify.compare import Tolerance, compare_arrays
from codemod.verify.harness import sample_array, to_numpy, to_tensor

from .grammar import Program

RULES = default_rules()
FILENAME = "<fuzz program>"
REPORTED = ("warning", "error")
# Torch names the rules convert, and the modules holding them (``getattr(nn, "BatchNorm2d")``): left in
# a migration, each must be reported.
RULE_NAMES = frozenset(RULES.layers) | frozenset(RULES.names)
RULE_NAMES |= frozenset(q.rsplit(".", k)[0] for q in RULE_NAMES for k in range(1, q.count(".")))
# What the migration may reach through a MindSpore import: the rules' targets, what lies on the way, and
# what the functional rules' converters write (weight/bias synthesised like running_mean, FB003).
MINDSPORE_TARGETS = frozenset(
    [r.mindspore for r in RULES.layers.values()] + [n.mindspore for n in RULES.names.values()]
    + list(RULES.dtypes.values()) + ["mindspore.ops.ones_like", "mindspore.ops.zeros_like"])
GRAD_MODES = ("no_grad", "inference_mode")
# For the records of layers MindSpore computes approximately (grammar.APPROXIMATE_LAYERS).
APPROXIMATE_TOLERANCE = Tolerance(atol=1e-3, rtol=1e-3)
MARKER = re.compile(r"\s+# torch2ms: [A-Z]+[0-9]+ .*$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*|[0-9][0-9.]*")

# Kinds of outcome. The first ones are failures: the tool was silent where it had to speak.
FAILURES = ("silent", "unreported-raise", "unreported-torch", "switched-import", "unstable", "unparsable",
            "engine-crash")
KINDS = FAILURES + ("passed", "reported", "refused", "reported-raise", "torch-left", "invalid")


class TorchBlocked(ImportError):
    """The migrated program reached for torch in the MindSpore run."""


class MindSporeBlocked(ImportError):
    """The original program reached for MindSpore in the torch run."""


@functools.lru_cache(maxsize=None)
def load_frameworks_once():
    os.environ.setdefault("GLOG_v", "3")  # MindSpore's C++ log: errors only
    from codemod.verify import load_frameworks

    return load_frameworks()


def _torch_stub() -> types.ModuleType:
    stub = types.ModuleType("torch", "torch is blocked in the MindSpore run; grad modes are null contexts")

    class NullGradMode(contextlib.ContextDecorator):
        """``with torch.no_grad():`` and ``@torch.no_grad()``, doing nothing."""

        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    for name in GRAD_MODES:
        setattr(stub, name, NullGradMode)

    def __getattr__(name):
        raise TorchBlocked(f"torch.{name} used in the MindSpore run")

    stub.__getattr__ = __getattr__
    return stub


TORCH_STUB = _torch_stub()


@contextlib.contextmanager
def blocked(framework: str):
    """Imports made by the program (not by the frameworks themselves) of ``framework`` fail; ``import
    torch`` alone gives the grad-mode stub."""
    original = builtins.__import__

    def hook(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and globals is not None and globals.get("__file__") == FILENAME:
            top = name.partition(".")[0]
            if top == "torch" and framework == "torch":
                if name == "torch" and all(n in GRAD_MODES for n in (fromlist or ())):
                    return TORCH_STUB
                raise TorchBlocked(f"import of {name} in the MindSpore run")
            if top == "mindspore" and framework == "mindspore":
                raise MindSporeBlocked(f"import of {name} in the torch run")
        return original(name, globals, locals, fromlist, level)

    builtins.__import__ = hook
    try:
        yield
    finally:
        builtins.__import__ = original


@dataclass
class Run:
    records: dict
    error: BaseException | None = None
    line: int | None = None  # where it raised, in the program that ran (the innermost frame)
    stack: tuple[int, ...] = ()  # the lines of every frame of the program when it raised

    def describe_error(self) -> str:
        """The exception on one line (MindSpore's messages span many)."""
        if self.error is None:
            return ""
        text = " ".join(part for part in str(self.error).split() if set(part) != {"-"})
        return f"{type(self.error).__name__}: {text}"


def initial_values(attr: str, shape: tuple[int, ...]):
    """The deterministic values a random-init parameter ``attr`` of torch's ``shape`` gets in both runs."""
    return sample_array(*shape, seed=zlib.crc32(attr.encode())) * 0.5


def _path(obj, path: str):
    for part in path.split("."):
        obj = getattr(obj, part, None)
    return obj


def _fill_torch(module, rule, fw) -> None:
    with fw.torch.no_grad():
        for attr in rule.random_init:
            param = _path(module, attr)
            if param is not None:
                param.copy_(fw.torch.from_numpy(initial_values(attr, tuple(param.shape))))


def _fill_mindspore(cell, rule, fw) -> None:
    for attr in rule.random_init:
        param = _path(cell, rule.attributes.get(attr) or attr)
        if param is None:
            continue
        shape = tuple(param.shape)
        layout = rule.layouts.get(attr)
        torch_shape = shape[:layout.insert_axis] + shape[layout.insert_axis + 1:] if layout else shape
        values = initial_values(attr, torch_shape).reshape(shape)
        param.set_data(fw.mindspore.Tensor(values, dtype=param.dtype))


@contextlib.contextmanager
def deterministic_init(framework: str, fw):
    """While it lasts, every layer of a rule with ``random_init`` built in ``framework`` gets
    ``initial_values`` for those parameters (a subclass built through ``super().__init__`` too)."""
    fill = _fill_torch if framework == "torch" else _fill_mindspore
    patched = []
    for rule in RULES.layers.values():
        if rule.kind != "layer" or not rule.random_init:
            continue
        module, name = (rule.torch if framework == "torch" else rule.mindspore).rsplit(".", 1)
        cls = getattr(importlib.import_module(module), name)
        original = cls.__dict__.get("__init__")

        def init(self, *args, __init=cls.__init__, __rule=rule, **kwargs):
            __init(self, *args, **kwargs)
            fill(self, __rule, fw)

        patched.append((cls, original))
        cls.__init__ = init
    try:
        yield
    finally:
        for cls, original in reversed(patched):
            if original is None:
                del cls.__init__
            else:
                cls.__init__ = original


def run(source: str, framework: str, fw) -> Run:
    """Like harness.run_program, but the records made before an exception are kept, with the line
    that raised; the other framework is blocked."""
    records: dict = {}

    def sample(*shape: int, seed: int = 0):
        return to_tensor(fw, framework, sample_array(*shape, seed=seed))

    def indices(*shape: int, high: int, seed: int = 0):
        """Integer indices in [0, high] (int64), the same in both runs."""
        import numpy as np

        return to_tensor(fw, framework, np.random.default_rng(seed).integers(0, high + 1, size=shape))

    def record(name: str, value) -> None:
        if name in records:
            raise ValueError(f"record({name!r}, ...) called twice")
        records[name] = to_numpy(value)

    namespace = {"__name__": "__main__", "__file__": FILENAME, "sample": sample, "indices": indices,
                 "record": record}
    code = compile(source, FILENAME, "exec")
    other = "mindspore" if framework == "torch" else "torch"
    try:
        with blocked(other), deterministic_init(framework, fw):
            exec(code, namespace)  # generated programs only (see the module docstring)
    except Exception as exc:  # noqa: BLE001 - any failure of the program is an outcome
        stack = []
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == FILENAME:
                stack.append(tb.tb_lineno)
            tb = tb.tb_next
        return Run(records, exc, stack[-1] if stack else None, tuple(stack))
    return Run(records)


# -- the migration, statically ---------------------------------------------------------------------


def line_map(original: str, migrated: str) -> dict[int, int]:
    """Each line of the migration (1-based) to the line of the original it comes from. Unchanged lines
    are paired by the longest common subsequence; within a block of changed lines, the alignment that
    keeps the order and makes the lines most alike (a line the migration added, ``x.set_train()``, goes
    with the original line before it)."""
    a = original.splitlines()
    b = [MARKER.sub("", line) for line in migrated.splitlines()]  # what the tool appended to a line
    out: dict[int, int] = {}
    i0 = j0 = 0
    for i1, j1 in [*_common_lines(a, b), (len(a), len(b))]:
        if j0 < j1:
            if i0 == i1:
                out.update({j + 1: max(i0, 1) for j in range(j0, j1)})
            else:
                out.update({j0 + j + 1: i0 + i + 1 for j, i in _align(a[i0:i1], b[j0:j1])})
        if i1 < len(a):
            out[j1 + 1] = i1 + 1
        i0, j0 = i1 + 1, j1 + 1
    return out


def _common_lines(a: list[str], b: list[str]) -> list[tuple[int, int]]:
    """(index in a, index in b) of the equal lines of a longest common subsequence. Not difflib's
    matching blocks: those anchor on the longest common run first, which pairs a repeated opening
    (``def __init__(self):``) with the wrong copy and leaves every line between misplaced."""
    longest = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]  # longest[i][j]: of a[i:] and b[j:]
    for i in range(len(a) - 1, -1, -1):
        for j in range(len(b) - 1, -1, -1):
            longest[i][j] = (longest[i + 1][j + 1] + 1 if a[i] == b[j]
                             else max(longest[i + 1][j], longest[i][j + 1]))
    pairs, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif longest[i + 1][j] >= longest[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def _align(a: list[str], b: list[str]) -> list[tuple[int, int]]:
    """(index in b, index in a) for every line of b: the monotone mapping with the most similarity;
    a line like none of a (an inserted statement) goes with the line before it."""
    # Alike by their names and numbers: the migration rewrites arguments, but keeps the names a line
    # assigns and uses (self.norm1 = ...), and its own statements name what they act on.
    words = [[_WORD.findall(line) for line in side] for side in (a, b)]
    sim = [[difflib.SequenceMatcher(None, x, y, autojunk=False).ratio() for x in words[0]] for y in words[1]]
    best = [row[:] for row in sim]  # best[j][i]: lines 0..j placed, line j on a[i]
    back = [[0] * len(a) for _ in b]
    for j in range(1, len(b)):
        run_best, run_arg = float("-inf"), 0
        for i in range(len(a)):
            if best[j - 1][i] > run_best:
                run_best, run_arg = best[j - 1][i], i
            best[j][i], back[j][i] = run_best + sim[j][i], run_arg
    i = max(range(len(a)), key=lambda k: best[-1][k])
    pairs = []
    for j in range(len(b) - 1, -1, -1):
        pairs.append([j, i])
        i = back[j][i]
    pairs.reverse()
    for k in range(1, len(pairs)):
        if sim[pairs[k][0]][pairs[k][1]] < 0.3:
            pairs[k][1] = pairs[k - 1][1]
    return [tuple(p) for p in pairs]


def imported_references(tree: ast.Module) -> list[tuple[str, int]]:
    """(qualified name, line) of every name reached through a module-level import, longest chain."""
    bound: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    bound[a.asname] = a.name
                else:
                    top = a.name.partition(".")[0]
                    bound[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                if a.name != "*":
                    bound[a.asname or a.name] = f"{node.module}.{a.name}"
    parents = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in bound:
            qual, top = bound[node.id], node
            parent = parents.get(top)
            while isinstance(parent, ast.Attribute) and parent.value is top:
                qual, top = f"{qual}.{parent.attr}", parent
                parent = parents.get(top)
            out.append((RULES.canonical(qual), node.lineno))
    return out


def reported_lines(findings) -> set[int]:
    return {f.line for f in findings if f.severity in REPORTED}


def static_problems(result, lines: dict[int, int], migrate) -> list[tuple[str, str]]:
    """What is wrong with the migration itself: (kind, description) pairs."""
    problems = []
    reported = reported_lines(result.findings)
    try:
        tree = ast.parse(result.code)
        compile(tree, "fuzz_program.py", "exec")  # what parses may still not compile (a keyword twice)
    except SyntaxError as exc:
        return [("unparsable", f"the migration does not compile: {exc}")]
    again = migrate(result.code, path="fuzz_program.py")
    if again.code != result.code:
        problems.append(("unstable", "a second migration changes the code:\n" + "".join(
            difflib.unified_diff(result.code.splitlines(True), again.code.splitlines(True), "migrated", "again"))))
    for qual, line in imported_references(tree):
        original_line = lines.get(line, line)
        if qual.startswith("torch.") or qual == "torch":
            if qual in RULE_NAMES and original_line not in reported:
                problems.append(("unreported-torch", f"line {original_line}: {qual} is left as torch with no "
                                                     f"warning or error"))
        elif qual.startswith("mindspore"):
            if not any(t == qual or t.startswith(qual + ".") for t in MINDSPORE_TARGETS) \
                    and original_line not in reported:
                problems.append(("switched-import", f"line {original_line}: {qual} is reached through a "
                                                    f"MindSpore import but no rule maps to it (unreported)"))
    return problems


# -- judging -----------------------------------------------------------------------------------------


@dataclass
class Difference:
    record: str
    what: str  # how it differs
    allowed_by: list = field(default_factory=list)  # the findings that allow it
    note: str = ""  # why it is allowed when no finding is on its lines


@dataclass
class Outcome:
    kind: str
    program: Program
    migrated: str = ""
    findings: list = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    torch_run: Run | None = None
    mindspore_run: Run | None = None

    @property
    def failed(self) -> bool:
        return self.kind in FAILURES

    def summary(self) -> str:
        """One line: the kind and the first thing nobody reported."""
        for kind, text in self.problems:
            if kind == self.kind:
                return f"{self.kind}: {text.splitlines()[0]}"
        for d in self.differences:
            if not d.allowed_by and not d.note:
                return f"{self.kind}: {d.record}: {d.what.splitlines()[0][:140]}"
        run_ = self.mindspore_run
        if run_ is not None and run_.error is not None:
            return f"{self.kind}: MindSpore raised at line {run_.line}: {run_.describe_error()[:120]}"
        return self.kind

    def report(self) -> str:
        out = [f"== {self.kind} ==", "-- program:", numbered(self.program.source)]
        if self.migrated:
            out += ["-- migration:", numbered(self.migrated)]
        out.append("-- findings:")
        out += [f"  {f.line}:{f.column + 1} {f.code} [{f.severity}] {f.message[:120]}" for f in self.findings] or ["  (none)"]
        for kind, text in self.problems:
            out.append(f"-- {kind}: {text}")
        for run_, side in ((self.torch_run, "torch"), (self.mindspore_run, "MindSpore")):
            if run_ is not None and run_.error is not None:
                out.append(f"-- {side} raised at line {run_.line}: {run_.describe_error()[:300]}")
        for d in self.differences:
            allowed = ", ".join(f"{f.code}@{f.line}" for f in d.allowed_by) or d.note or "NOT ALLOWED"
            lines = sorted(self.program.lines_of(d.record))
            out.append(f"-- {d.record} (lines {lines}): {d.what} [{allowed}]")
        return "\n".join(out)


def numbered(source: str) -> str:
    return "\n".join(f"{i:3} | {line}" for i, line in enumerate(source.splitlines(), 1))


def _short(value) -> str:
    import numpy as np

    try:
        arr = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return repr(value)[:80]
    text = np.array2string(arr[:6], precision=5, separator=" ")
    return text + (f" ...({arr.size})" if arr.size > 6 else "")


def compare(name: str, expected, actual, tolerance: Tolerance, shape_only: bool = False) -> str | None:
    """None when equal (with ``shape_only``, of the same shape), else what differs."""
    if shape_only:
        import numpy as np

        shapes = np.shape(expected), np.shape(actual)
        return None if shapes[0] == shapes[1] else f"shape torch {shapes[0]}, MindSpore {shapes[1]} (a random result)"
    try:
        c = compare_arrays(name, "record", expected, actual, tolerance)
    except (TypeError, ValueError) as exc:
        return f"not comparable ({exc}): torch {_short(expected)}, MindSpore {_short(actual)}"
    if c.passed:
        return None
    return (f"max abs {c.max_abs:.3g} {c.detail}: torch {_short(expected)}, MindSpore {_short(actual)}")


def check_program(program: Program, fw=None, tolerance: Tolerance = Tolerance(), migrate=None) -> Outcome:
    """Migrate ``program`` (with ``migrate``, default ``codemod.migrate_source``), run both sides and
    judge every difference."""
    fw = fw or load_frameworks_once()
    migrate = migrate or migrate_source
    try:
        result = migrate(program.source, path="fuzz_program.py")
    except MigrationError as exc:
        return Outcome("engine-crash", program, problems=[("engine-crash", f"MigrationError: {exc}")])
    except Exception as exc:  # noqa: BLE001 - a crash of the engine is an outcome
        return Outcome("engine-crash", program, problems=[("engine-crash", f"{type(exc).__name__}: {exc}")])
    outcome = Outcome("passed", program, result.code, sorted(result.findings, key=lambda f: (f.line, f.column)))
    lines = line_map(program.source, result.code)
    outcome.problems = static_problems(result, lines, migrate)
    if any(k == "unparsable" for k, _ in outcome.problems):
        outcome.kind = "unparsable"
        return outcome
    torch_run = outcome.torch_run = run(program.source, "torch", fw)
    if torch_run.error is not None:
        outcome.kind = "invalid"
        return _with_problems(outcome)
    outcome.mindspore_run = run(result.code, "mindspore", fw)
    _judge_runs(outcome, lines, tolerance)
    return _with_problems(outcome)


def _judge_runs(outcome: Outcome, lines: dict[int, int], tolerance: Tolerance) -> None:
    """Compare the records of both runs; set ``outcome.differences`` and ``outcome.kind``."""
    program, torch_run, ms_run = outcome.program, outcome.torch_run, outcome.mindspore_run
    by_line: dict[int, list] = {}
    for f in outcome.findings:
        if f.severity in REPORTED:
            by_line.setdefault(f.line, []).append(f)
    # The findings on what the MindSpore run stopped at: on a line of the stack, or on a line building,
    # using or setting the mode of what such a line uses.
    torch_left = isinstance(ms_run.error, TorchBlocked)
    origins = [lines[line] for line in ms_run.stack if line in lines]
    stopped_at = [f for origin in origins for f in by_line.get(origin, [])]
    if not stopped_at:
        stopped_at = [f for line in sorted(set().union(*map(program.entity_lines, origins)) if origins else ())
                      for f in by_line.get(line, [])]
    silent_numbers = unreported_missing = False
    for name, expected in torch_run.records.items():
        missing = name not in ms_run.records
        if not missing:
            record_tolerance = APPROXIMATE_TOLERANCE if name in program.approximate_records else tolerance
            what = compare(name, expected, ms_run.records[name], record_tolerance, name in program.random_records)
            if what is None:
                continue
        elif ms_run.error is not None:
            what = f"not recorded: the MindSpore run stopped at line {ms_run.line} ({ms_run.describe_error()[:160]})"
        else:
            what = "not recorded under MindSpore"
        d = Difference(name, what, [f for line in sorted(program.lines_of(name)) for f in by_line.get(line, [])])
        if not d.allowed_by and missing:
            if stopped_at:
                d.allowed_by, d.note = stopped_at, "the MindSpore run stopped at a reported site"
            elif torch_left:
                d.note = "the MindSpore run stopped at a torch API the tool leaves"
        outcome.differences.append(d)
        if not d.allowed_by and not d.note:
            if missing:
                unreported_missing = True
            else:
                silent_numbers = True
    for name in ms_run.records:
        if name not in torch_run.records:
            outcome.differences.append(Difference(name, "recorded under MindSpore only"))
            silent_numbers = True
    if silent_numbers:
        outcome.kind = "silent"
    elif unreported_missing or (ms_run.error is not None and not stopped_at and not torch_left):
        outcome.kind = "unreported-raise"  # even when no record was left to lose
    elif ms_run.error is not None:
        if torch_left and not stopped_at and not any(f.severity == "error" for f in outcome.findings):
            outcome.kind = "torch-left"
        elif any(f.severity == "error" for f in stopped_at or outcome.findings):
            outcome.kind = "refused"
        else:
            outcome.kind = "reported-raise"
    elif outcome.differences:
        outcome.kind = "reported"


def _with_problems(outcome: Outcome) -> Outcome:
    """A static problem outranks what the runs showed (a silent numeric difference outranks it)."""
    kinds = [k for k, _ in outcome.problems] + ([outcome.kind] if outcome.kind in FAILURES else [])
    if kinds:
        outcome.kind = min(kinds, key=FAILURES.index)
    return outcome


def minimise(source: str, fw=None, kind: str | None = None) -> str:
    """A smaller program that fails the same way (``kind``, default: how ``source`` fails), judged as
    a whole (every record depending on every line): runs of 8, 4, 2 and 1 lines are dropped while what
    remains still compiles, runs under torch and fails with ``kind``, until nothing more can go."""
    fw = fw or load_frameworks_once()
    kind = kind or check_program(Program.whole(source), fw).kind

    def still_fails(lines: list[str]) -> bool:
        text = "\n".join(lines) + "\n"
        try:
            compile(text, FILENAME, "exec")
        except SyntaxError:
            return False
        outcome = check_program(Program.whole(text), fw)
        return outcome.kind == kind and outcome.torch_run is not None and outcome.torch_run.error is None

    lines = source.splitlines()
    changed = True
    while changed:
        changed = False
        for size in (8, 4, 2, 1):
            i = 0
            while i < len(lines):
                candidate = lines[:i] + lines[i + size:]
                if candidate and still_fails(candidate):
                    lines, changed = candidate, True
                else:
                    i += 1
    return "\n".join(lines) + "\n"
