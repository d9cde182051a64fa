"""A project is one program: what the files of a project define, as the other files see it.

Models are defined in one file and used in another (``from models import Net; net = Net()``). The
migration of ``train.py`` must know that ``Net`` is a module that becomes a MindSpore Cell (training
mode, mode calls, attribute renames), although ``train.py`` names no torch API. This module gives
the engine that knowledge:

- the **layout**: which file a dotted module name means, as Python would find it (the project root
  (the nearest ``pyproject.toml``/``.git`` above the paths, else the directory given), a ``src/``
  layout, packages with ``__init__.py``, namespace packages, and the importing script's own directory);
- one **summary** per file, read from that file alone (so it is the same whichever process reads
  it first, and a run with ``--jobs N`` gives what ``--jobs 1`` gives): its classes (module classes
  through torch bases, already-migrated ``mindspore.nn.Cell`` subclasses, the layers their
  attributes hold, bases imported from elsewhere), functions returning modules, partials, aliases
  and registries, its imports and ``__all__``. Summaries are built with the engine's own analysis
  and inference, whose questions about imported names get symbolic answers (``Imported``/``Called``)
  resolved later;
- **resolution** of imports between summaries like Python's (``from models import Net``,
  ``from .blocks import Block``, ``import pkg.mod as M``, ``from pkg import *`` with ``__all__``,
  re-exports through ``__init__.py``), and what a resolved name is to the inference: a class the
  migration makes a Cell (``ProjectClass``, which looks like a same-file ``ClassInfo`` to the
  passes), a factory of normalization layers, a function returning modules, a module.

A class is a Cell after the migration when its file is migrated (it references a normalization layer,
or uses such a class of another file, transitively) or when it already is one. What the index cannot
resolve (dynamic imports, ``importlib``, ``sys.path`` tricks) is unknown, as a name from outside the
project always is; constructing an unknown name imported from a file the run migrates gets PJ001.

Summaries are read when first asked for (most files never are) and kept for the run.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from typing import Iterable

from .inference import (
    ClassT,
    External,
    FactoryT,
    FunctionT,
    MaybeLayerT,
    ModuleT,
    infer_modules,
)
from .references import is_mindspore, is_torch
from .scopes import Binding

# A reference to a value: a module (absolute dotted name; None = the summarised module's own
# namespace) and attribute names from there. ``("pkg.mod", ("Net",))`` is ``pkg.mod.Net``.
Ref = tuple  # (str | None, tuple[str, ...])

# What an expression of a summarised module is (picklable tuples):
#   ("module", rules, cls: Ref | None, container)  an instance (rules: torch names of the norm layers)
#   ("maybe", rules)                               maybe a normalization layer
#   ("factory", rules, certain, partial keywords or None, mindspore side)
#   ("class", Ref)  ("function", name)             a class / a top-level function of the module
#   ("ref", Ref)    ("call", Ref)                  an imported value / the result of calling one
Spec = tuple

_MAX_DEPTH = 40  # re-exports through re-exports; deeper is a loop


# -- what a file says about itself -------------------------------------------------------------


@dataclass
class ClassSummary:
    name: str
    torch_module: bool = False  # a torch module class through torch bases of this file
    mindspore_module: bool = False  # already a Cell (mindspore.nn base)
    norm: str | None = None  # the rule (torch name) of a torch normalization base
    mindspore_norm: str | None = None  # the rule of a MindSpore normalization base (migrated already)
    init: bool = False  # defines __init__ (or a same-file base does)
    bases: tuple = ()  # bases imported from elsewhere (Refs)
    torch_bases: tuple = ()  # torch base classes (qualified), through same-file bases
    mindspore_bases: tuple = ()  # MindSpore base classes (qualified), through same-file bases
    attributes: dict = field(default_factory=dict)  # self.<attr> in __init__ -> Spec


@dataclass
class ModuleSummary:
    path: str
    name: str | None
    is_package: bool
    in_scope: bool = False  # migrated for its own sake (references a torch normalization layer)
    mindspore: bool = False  # imports MindSpore
    classes: dict = field(default_factory=dict)  # name -> ClassSummary
    functions: dict = field(default_factory=dict)  # name -> tuple of return Specs (None: not all known)
    values: dict = field(default_factory=dict)  # name -> Spec
    imports: dict = field(default_factory=dict)  # name -> Ref
    stars: tuple = ()  # absolute module names of `from X import *`
    all: tuple | None = None  # __all__, when a literal
    ambiguous: frozenset = frozenset()  # names bound more than once at module level
    names: frozenset = frozenset()  # every name bound at module level (what is neither of the above too)
    error: str | None = None  # did not parse


# -- the layout: module names and files --------------------------------------------------------


@dataclass(frozen=True)
class Namespace:
    """A directory imported as a namespace package."""

    path: str


class Layout:
    """Which file a dotted module name means."""

    def __init__(self, root: str, files: Iterable[str]):
        self.root = os.path.abspath(root)
        self.files: set[str] = set()
        self.dirs: set[str] = set()
        self._by_stem: dict[str, list[str]] | None = None
        self._found: dict = {}  # (name, importer's directory) -> what find() says
        for f in files:
            if f.endswith((".py", ".pyi")):
                self.add(f)
        src = os.path.join(self.root, "src")
        self.search = [src, self.root] if src in self.dirs else [self.root]
        # Every directory that holds a top-level package (a monorepo's packages, a corpus of unpacked
        # distributions): the place it is imported from.
        tops = set()
        for f in self.files:
            if os.path.basename(f).startswith("__init__."):
                package = os.path.dirname(f)
                while os.path.exists(os.path.join(os.path.dirname(package), "__init__.py")) \
                        and os.path.dirname(package).startswith(self.root):
                    package = os.path.dirname(package)
                tops.add(os.path.dirname(package))
        self.search += sorted(t for t in tops if t not in self.search and t.startswith(self.root))
        if os.path.join(self.root, "__init__.py") in self.files and os.path.basename(self.root).isidentifier():
            # The root is itself a package (a run over pkg/ with no pyproject.toml above): it is
            # imported from the directory that holds it.
            self.search = [os.path.dirname(self.root) if s == self.root else s for s in self.search]

    def add(self, path: str) -> None:
        path = os.path.abspath(path)
        self.files.add(path)
        self._by_stem = None
        self._found: dict = {}
        d = os.path.dirname(path)
        while d.startswith(self.root) and d not in self.dirs:
            self.dirs.add(d)
            d = os.path.dirname(d)

    def by_stem(self) -> dict[str, list[str]]:
        """Files by their name without the suffix (``mymodels`` -> [.../lib/mymodels.py])."""
        if self._by_stem is None:
            self._by_stem = {}
            for f in sorted(self.files):
                self._by_stem.setdefault(os.path.basename(f).rsplit(".", 1)[0], []).append(f)
        return self._by_stem

    def module_of(self, path: str) -> tuple[str | None, bool]:
        """The dotted name of a file under the search roots, and whether it is a package."""
        path = os.path.abspath(path)
        for base in sorted(self.search, key=len, reverse=True):  # the innermost root that holds it
            if path.startswith(base + os.sep):
                parts = os.path.relpath(path, base).split(os.sep)
                stem = parts[-1].rsplit(".", 1)[0]
                if stem == "__init__":
                    return ".".join(parts[:-1]) or None, True
                if not all(p.isidentifier() for p in parts[:-1]):
                    return None, False
                return ".".join([*parts[:-1], stem]), False
        return None, False

    def find(self, name: str, importer: str | None) -> str | Namespace | None:
        """The file (or namespace directory) ``import name`` means in the file ``importer``."""
        here = os.path.dirname(os.path.abspath(importer)) if importer is not None else None
        key = (name, here)
        if key not in self._found:
            self._found[key] = self._find(name, here)
        return self._found[key]

    def _find(self, name: str, here: str | None) -> str | Namespace | None:
        parts = name.split(".")
        bases = list(self.search)
        # A script's own directory is on sys.path; a package's directory is not.
        if here is not None and os.path.join(here, "__init__.py") not in self.files and here not in bases:
            bases.insert(0, here)
        for base in bases:
            p = os.path.join(base, *parts)
            for candidate in (p + ".py", os.path.join(p, "__init__.py"), p + ".pyi", os.path.join(p, "__init__.pyi")):
                if candidate in self.files:
                    return candidate
            if p in self.dirs:
                return Namespace(p)
        return None

    def submodule(self, package: str | Namespace, name: str) -> str | Namespace | None:
        directory = package.path if isinstance(package, Namespace) else os.path.dirname(package)
        if isinstance(package, str) and not os.path.basename(package).startswith("__init__."):
            return None
        p = os.path.join(directory, name)
        for candidate in (p + ".py", os.path.join(p, "__init__.py"), p + ".pyi"):
            if candidate in self.files:
                return candidate
        return Namespace(p) if p in self.dirs else None


def project_root(start: str) -> str:
    """The nearest directory at or above ``start`` with a pyproject.toml (or the top of the git work
    tree), else ``start`` itself."""
    start = os.path.abspath(start)
    directory = start
    while True:
        if os.path.isfile(os.path.join(directory, "pyproject.toml")) or os.path.exists(os.path.join(directory, ".git")):
            return directory
        parent = os.path.dirname(directory)
        if parent == directory:
            return start
        directory = parent


# -- reading a file's summary ------------------------------------------------------------------


class Imported(External):
    """While a file is summarised: a name it imports, not yet resolved."""

    def __init__(self, ref: Ref):
        self.ref = ref

    def called(self, types, call):
        return Called(self.ref)

    def member(self, types, attr):
        module, attrs = self.ref
        return Imported((module, (*attrs, attr)))

    def __eq__(self, other):
        return type(other) is type(self) and other.ref == self.ref

    def __hash__(self):
        return hash((type(self), self.ref))


class Called(Imported):
    """While a file is summarised: the result of calling an imported name."""

    def called(self, types, call):
        return None

    def member(self, types, attr):
        return None


class _Summarising:
    """The project as the inference sees it while one file is summarised: every imported name is
    ``Imported``, resolved later against the other files' summaries."""

    def __init__(self, package: str | None):
        self.package = package

    def view(self, path):
        return self

    def binding(self, types, b: Binding):
        ref = import_ref(b, self.package)
        return Imported(ref) if ref is not None else None

    def star(self, types, name: str, scope):
        if star_modules(scope.module().node, self.package):
            return Imported((None, (name,)))
        return None

    def uses(self, mig) -> bool:
        return False


def import_ref(b: Binding, package: str | None) -> Ref | None:
    """The Ref an import binding stands for (None for torch, MindSpore and unresolvable ones)."""
    stmt = b.stmt
    if isinstance(stmt, ast.ImportFrom):
        base = absolute_module(stmt.module, stmt.level, package)
        if base is None or is_torch(base) or is_mindspore(base):
            return None
        return base, (b.node.name,)
    if isinstance(stmt, ast.Import):
        if is_torch(b.qual) or is_mindspore(b.qual):
            return None
        return b.qual, ()
    return None


def absolute_module(module: str | None, level: int, package: str | None) -> str | None:
    if not level:
        return module
    if package is None:
        return None
    parts = package.split(".") if package else []
    if level - 1 > len(parts):
        return None
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, *(module.split(".") if module else [])]) or None


def summarize(path: str, text: str, name: str | None, is_package: bool, rules) -> ModuleSummary:
    """What one file defines, read from its text alone."""
    from ..migration import Migration
    from ..model import Config, MigrationError
    from ..source import parse_source

    summary = ModuleSummary(path, name, is_package)
    body = text[1:] if text.startswith("\ufeff") else text
    try:
        tree = parse_source(body, path)
    except MigrationError as exc:
        summary.error = exc.message
        return summary
    package = name if is_package else (name.rpartition(".")[0] if name else None)
    mig = Migration(body, tree, path, Config(markers=False, rules=rules, project=_Summarising(package)))
    infer_modules(mig)
    reader = _Reader(mig, rules)
    scope = mig.index.module_scope
    summary.in_scope = mig.in_scope
    summary.mindspore = any(is_mindspore(b.qual) for b in mig.index.imports)
    summary.stars = star_modules(tree, package)
    ambiguous = set()
    for bname, bindings in scope.bindings.items():
        if len(bindings) != 1:
            ambiguous.add(bname)
            continue
        b = bindings[0]
        if b.kind == "class":
            info = mig.types.classes.get(id(b.node))
            if info is not None:
                summary.classes[bname] = reader.class_summary(info)
        elif b.kind == "def":
            summary.functions[bname] = reader.returns(b.node)
        elif b.kind == "import":
            ref = import_ref(b, package)
            if ref is not None:
                summary.imports[bname] = ref
        elif b.kind == "assign" and b.value is not None:
            if bname == "__all__":
                summary.all = _literal_strings(b.value)
            else:
                spec = reader.spec_of(b.value, scope)
                if spec is not None:
                    summary.values[bname] = spec
    summary.ambiguous = frozenset(ambiguous)
    summary.names = frozenset(scope.bindings)
    mig.close()
    return summary


def star_modules(tree: ast.Module, package: str | None) -> tuple:
    """The modules a file star-imports at module level (``from x import *``, ``from .x import *``:
    the analysis records only absolute ones), as absolute names, in order."""
    out = []
    stack = list(reversed(tree.body))
    while stack:
        stmt = stack.pop()
        if isinstance(stmt, ast.ImportFrom) and any(a.name == "*" for a in stmt.names):
            module = absolute_module(stmt.module, stmt.level, package)
            if module and not is_torch(module) and not is_mindspore(module):
                out.append(module)
        elif isinstance(stmt, (ast.If, ast.Try)):
            for block in (stmt.body, stmt.orelse, getattr(stmt, "finalbody", []),
                          *(h.body for h in getattr(stmt, "handlers", []))):
                stack.extend(reversed(block))
    return tuple(out)


def _literal_strings(node: ast.expr) -> tuple | None:
    if isinstance(node, (ast.List, ast.Tuple)) and all(
            isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
        return tuple(e.value for e in node.elts)
    return None


class _Reader:
    """Turns the inference's answers about one file into Specs."""

    def __init__(self, mig, rules):
        self.mig = mig
        self.rules = rules
        self.types = mig.types
        self.top_classes = {id(b.node): n for n, bs in mig.index.module_scope.bindings.items()
                            for b in bs if b.kind == "class" and len(bs) == 1}
        self.top_functions = {id(b.node): n for n, bs in mig.index.module_scope.bindings.items()
                              for b in bs if b.kind == "def" and len(bs) == 1}
        self.ms_layers = {r.mindspore: r for r in rules.layers.values() if r.kind == "layer"}
        self.ms_containers = {n.mindspore for n in rules.names.values() if n.kind == "container"}

    def spec(self, t) -> Spec | None:
        if isinstance(t, ModuleT):
            cls = None
            if t.cls is not None and id(t.cls.node) in self.top_classes:
                cls = (None, (t.cls.name,))
            return ("module", _rule_names(t.rules), cls, t.container)
        if isinstance(t, MaybeLayerT):
            return ("maybe", _rule_names(t.rules))
        if isinstance(t, FactoryT):
            keywords = tuple(k.arg for k in t.partial.keywords if k.arg) if t.partial is not None else None
            return ("factory", _rule_names(t.rules), t.certain, keywords, False)
        if isinstance(t, ClassT) and id(t.cls.node) in self.top_classes:
            return ("class", (None, (t.cls.name,)))
        if isinstance(t, FunctionT) and id(t.node) in self.top_functions:
            return ("function", self.top_functions[id(t.node)])
        if isinstance(t, Called):
            return ("call", t.ref)
        if isinstance(t, Imported):
            return ("ref", t.ref)
        return None

    def spec_of(self, expr: ast.expr, scope) -> Spec | None:
        spec = self.spec(self.types.of(expr, scope))
        return spec if spec is not None else self._mindspore(expr, scope)

    def _mindspore(self, expr: ast.expr, scope) -> Spec | None:
        """MindSpore layers and partials of them, in a file migrated already."""
        if isinstance(expr, ast.Call):
            qual = self.mig.qualified(expr.func, scope)
            if qual in self.ms_layers:
                return ("module", (self.ms_layers[qual].torch,), None, False)
            if qual in self.ms_containers:
                return ("module", (), None, True)
            if qual in ("functools.partial",) and expr.args:
                target = self.mig.qualified(expr.args[0], scope)
                if target in self.ms_layers:
                    keywords = tuple(k.arg for k in expr.keywords if k.arg)
                    return ("factory", (self.ms_layers[target].torch,), False, keywords, True)
            return None
        qual = self.mig.qualified(expr, scope)
        if qual in self.ms_layers:
            return ("factory", (self.ms_layers[qual].torch,), False, None, True)
        return None

    def returns(self, fn: ast.AST) -> tuple | None:
        scope = self.mig.index.scope_of.get(id(fn))
        if scope is None or not scope.returns or any(r.value is None for r in scope.returns):
            return None
        specs = tuple(self.spec_of(r.value, scope) for r in scope.returns)
        return None if any(s is None for s in specs) else specs

    def class_summary(self, info) -> ClassSummary:
        cs = ClassSummary(info.name)
        cs.torch_module = bool(info.is_module and info.origin)
        cs.norm = info.norm_rule.torch if info.norm_rule is not None else None
        cs.init = info.overrides_init()
        cs.torch_bases = tuple(q for c in info.mro() for q in c.torch_bases)
        cs.mindspore_bases = tuple(q for c in info.mro() for q in c.mindspore_bases)
        bases = []
        for c in info.mro():
            for base in c.node.bases:
                if self.mig.ref(base) is not None or self.types.class_of(base, c.scope) is not None:
                    continue
                qual = self.mig.qualified(base, c.scope)
                if qual is not None and qual.startswith("mindspore.nn."):
                    cs.mindspore_module = True
                    if qual in self.ms_layers and cs.mindspore_norm is None:
                        cs.mindspore_norm = self.ms_layers[qual].torch
                    continue
                t = self.types.of(base, c.scope)
                if isinstance(t, Imported) and not isinstance(t, Called):
                    bases.append(t.ref)
        cs.bases = tuple(bases)
        for c in info.mro():
            init_scope = self.mig.index.scope_of.get(id(c.init)) if c.init is not None else None
            for attr, values in c.init_assigns.items():
                if attr in cs.attributes:
                    continue
                spec = self.spec(self.types.attribute_of(info, attr))
                if spec is None and init_scope is not None and len(values) == 1:
                    spec = self._mindspore(values[0], init_scope)
                if spec is not None:
                    cs.attributes[attr] = spec
        return cs


def _rule_names(rules) -> tuple:
    return tuple(sorted(r.torch for r in rules))


# -- the project: summaries and resolution -----------------------------------------------------


class ProjectClass(External):
    """A class of another file of the project that the migration makes (or has made) a Cell. It
    answers what the passes ask a same-file ``ClassInfo``."""

    def __init__(self, project: "Project", path: str, cs: ClassSummary, bases: list, norm_rule, convertible: bool):
        self.project = project
        self.path = path
        self.summary = cs
        self.name = cs.name
        self.is_module = True
        self.norm_rule = norm_rule
        # Its constructor takes torch's arguments (a torch normalization subclass without __init__,
        # in a file not migrated yet): calls of it are converted like the layer's.
        self.convertible = convertible
        self.origin: frozenset = frozenset()
        self.local_bases = bases
        self.torch_bases, self.mindspore_bases = cs.torch_bases, cs.mindspore_bases
        self.init = _HAS_INIT if cs.init else None
        self.init_assigns: dict = {}
        self.methods: dict = {}
        self.body_assigns: dict = {}  # class attributes of another file are not summarised: unknown
        self.node = None

    def mro(self):
        seen, stack = set(), [self]
        while stack:
            c = stack.pop(0)
            if id(c) in seen:
                continue
            seen.add(id(c))
            yield c
            stack.extend(c.local_bases)

    def overrides_init(self) -> bool:
        return not self.convertible

    def attribute(self, types, attr: str):
        spec = self.summary.attributes.get(attr)
        if spec is None:
            return None
        return self.project.type_of_spec(self.path, spec, types)

    def __repr__(self) -> str:
        return f"ProjectClass({self.name} of {os.path.basename(self.path)})"


_HAS_INIT = object()  # ProjectClass.init: it defines __init__ (no node of this file to show)


class ProjectFunction(External):
    """A function of another file; calling it gives what its return statements build."""

    def __init__(self, project: "Project", path: str, name: str, returns: tuple):
        self.project, self.path, self.name, self.returns = project, path, name, returns

    def called(self, types, call):
        results = [self.project.type_of_spec(self.path, s, types) for s in self.returns]
        return join(results)


class MindSporeFactory(External):
    """A MindSpore layer class or a partial of one, in a file migrated already: what it builds is
    that layer, but its call sites may pass MindSpore's values already (a file migrated before), so
    their arguments are never converted."""

    def __init__(self, rules: frozenset):
        self.rules = rules

    def called(self, types, call):
        return ModuleT(self.rules)


class ProjectModule(External):
    """A module of the project (``import models as M``): its attributes are its names."""

    def __init__(self, project: "Project", where):
        self.project, self.where = project, where

    def member(self, types, attr):
        return self.project.type_of_value(self.project.member(("module", self.where), attr), types)


class Project:
    """The files of a project and what they define. Picklable: summaries are plain data."""

    def __init__(self, layout: Layout, rules=None, texts: dict | None = None):
        from ..ruleset import default_rules

        self.layout = layout
        self._rules = rules
        self.rules = rules or default_rules()
        self.texts = dict(texts or {})  # path -> text, where the caller has it (an editor's buffer)
        self.summaries: dict[str, ModuleSummary] = {}
        self._values: dict = {}
        self._classes: dict = {}
        self._in_scope: dict[str, bool] = {}
        self._pending: set[str] = set()  # files whose in_scope is being decided
        self._provisional: dict[str, bool] = {}

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_values"], state["_classes"] = {}, {}
        state["rules"] = None
        return state

    def __setstate__(self, state):
        from ..ruleset import default_rules

        self.__dict__.update(state)
        self.rules = self._rules or default_rules()

    @classmethod
    def around(cls, paths: Iterable[str], rules=None, texts: dict | None = None) -> "Project":
        """The project the given files and directories belong to (see project_root)."""
        from ..runner.discovery import discover

        paths = [os.path.abspath(p) for p in paths]
        dirs = [p if os.path.isdir(p) else os.path.dirname(p) for p in paths]
        root = project_root(os.path.commonpath(dirs)) if dirs else os.getcwd()
        files = [f.path for f in discover([root]).files if f.path.endswith((".py", ".pyi"))]
        return cls(Layout(root, files), rules, texts)

    # -- texts and summaries ----------------------------------------------------------------------

    def snapshot(self) -> None:
        """Read every file now: a run that writes files in place must not read a file it already
        rewrote (the summaries would depend on the order files are done)."""
        for path in sorted(self.layout.files):
            if path not in self.texts:
                text = self.text(path)
                if text is not None:
                    self.texts[path] = text

    def warm(self, path: str) -> bool:
        """Summarise a file that may define modules (it mentions torch or MindSpore) ahead of need;
        the others are read when asked about. Whether it was summarised."""
        if path in self.summaries:
            return False
        text = self.text(path)
        if text is None or ("torch" not in text and "mindspore" not in text):
            return False
        self.summary(path)
        return True

    def remove(self, path: str) -> None:
        path = os.path.abspath(path)
        self.texts.pop(path, None)
        if path in self.layout.files:
            self.layout.files.discard(path)
            self.layout._by_stem = None
            self.layout._found = {}

        self.invalidate(path)

    def set_text(self, path: str, text: str | None) -> None:
        """An editor's buffer (None: back to the file on disk); the file's summary is read again."""
        path = os.path.abspath(path)
        if text is not None and self.texts.get(path) == text:
            return
        if text is None:
            self.texts.pop(path, None)
        else:
            self.texts[path] = text
        if path.endswith((".py", ".pyi")) and path not in self.layout.files \
                and path.startswith(self.layout.root + os.sep):
            self.layout.add(path)

        self.invalidate(path)

    def invalidate(self, path: str | None = None) -> None:
        if path is not None:
            self.summaries.pop(os.path.abspath(path), None)
        self._values, self._classes, self._in_scope = {}, {}, {}

    def text(self, path: str) -> str | None:
        text = self.texts.get(path)
        if text is not None:
            return text
        from ..runner.files import decode

        try:
            with open(path, "rb") as fh:
                return decode(fh.read()).text
        except (OSError, ValueError):
            return None

    def summary(self, path: str) -> ModuleSummary | None:
        found = self.summaries.get(path)
        if found is None:
            text = self.text(path)
            if text is None:
                return None
            name, is_package = self.layout.module_of(path)
            found = summarize(path, text, name, is_package, self.rules)
            self.summaries[path] = found
        return found

    def read_all(self, paths: Iterable[str] | None = None) -> None:
        """Summarise files now (an editor's background read), instead of when first asked."""
        for path in sorted(paths if paths is not None else self.layout.files):
            self.summary(path)

    # -- names ------------------------------------------------------------------------------------

    def resolve(self, importer: str, ref: Ref, depth: int = 0):
        """The value a Ref means in the file ``importer``: ("module", where), ("class", path, cs),
        ("function", path, name), ("spec", path, spec) or None."""
        module, attrs = ref
        if module is None:
            if not attrs:
                return None
            value = self.lookup(importer, attrs[0], depth + 1)
            attrs = attrs[1:]
        else:
            where = self.layout.find(module, importer)
            if where is None:
                return None
            value = ("module", where)
        for attr in attrs:
            value = self.member(value, attr, depth + 1)
        return value

    def member(self, value, attr: str, depth: int = 0):
        if value is None or value[0] != "module":
            return None
        where = value[1]
        if isinstance(where, Namespace):
            sub = self.layout.submodule(where, attr)
            return ("module", sub) if sub is not None else None
        return self.lookup(where, attr, depth)

    def lookup(self, path: str, name: str, depth: int = 0):
        """A module-level name of the file ``path``."""
        key = (path, name)
        if key in self._values:
            return self._values[key]
        if depth > _MAX_DEPTH:
            return None
        self._values[key] = None  # a re-export loop resolves to nothing
        value = self._lookup(path, name, depth)
        self._values[key] = value
        return value

    def _lookup(self, path: str, name: str, depth: int):
        s = self.summary(path)
        if s is None or s.error is not None:
            return None
        if name in s.ambiguous:
            return ("other", path, name)
        if name in s.classes:
            return ("class", path, s.classes[name])
        if name in s.functions:
            return ("function", path, name) if s.functions[name] is not None else ("other", path, name)
        if name in s.values:
            return ("spec", path, s.values[name])
        if name in s.imports:
            return self.resolve(path, s.imports[name], depth + 1)
        if s.is_package:
            sub = self.layout.submodule(path, name)
            if sub is not None:
                return ("module", sub)
        for star in reversed(s.stars):
            where = self.layout.find(star, path) if star else None
            if isinstance(where, str) and self.exports(where, name):
                return self.lookup(where, name, depth + 1)
        if name in s.names:
            return ("other", path, name)  # defined there, and nothing the migration makes MindSpore's
        return None

    def exports(self, path: str, name: str, seen: frozenset = frozenset()) -> bool:
        """Whether ``from <path's module> import *`` binds ``name``."""
        s = self.summary(path)
        if s is None or s.error is not None or path in seen:
            return False
        if s.all is not None:
            return name in s.all
        if name.startswith("_"):
            return False
        if name in s.names:
            return True
        seen = seen | {path}
        return any(isinstance(w := self.layout.find(star, path), str) and self.exports(w, name, seen)
                   for star in s.stars)

    # -- what values are to the migration ----------------------------------------------------------

    def in_scope(self, path: str) -> bool:
        """Whether the file is migrated: it references a normalization layer, or it imports a class,
        factory or function that the migration makes (or made) MindSpore's. A file being decided is
        taken as not migrated by the files it reaches again (a cycle); that is exact for the file
        asked about, and a result that leaned on such an assumption is kept only if it cannot have
        changed (the whole search said no), so the answer does not depend on the order of questions."""
        known = self._in_scope.get(path)
        if known is not None:
            return known
        if path in self._pending:
            return False
        top = not self._pending
        if not top and path in self._provisional:
            return self._provisional[path]
        self._pending.add(path)
        try:
            s = self.summary(path)
            result = s is not None and s.error is None and (s.in_scope or self._uses_relevant(path, s))
        finally:
            self._pending.discard(path)
        if not top:
            self._provisional[path] = result
            return result
        if result:
            self._in_scope.update({p: True for p, r in self._provisional.items() if r})
        else:
            self._in_scope.update(self._provisional)
        self._in_scope[path] = result
        self._provisional = {}
        return result

    def _uses_relevant(self, path: str, s: ModuleSummary) -> bool:
        for ref in [*s.imports.values(), *((star, ()) for star in s.stars if star)]:
            if self.relevant(self.resolve(path, ref)):
                return True
        return False

    def project_class(self, path: str, cs: ClassSummary, depth: int = 0) -> ProjectClass | None:
        """The class as the migration sees it, if it is (or becomes) a Cell."""
        key = (path, cs.name)
        if key in self._classes:
            return self._classes[key]
        if depth > _MAX_DEPTH:
            return None
        bases = []
        for ref in cs.bases:
            value = self.resolve(path, ref)
            if value is not None and value[0] == "class":
                base = self.project_class(value[1], value[2], depth + 1)
                if base is not None:
                    bases.append(base)
        torch_side = cs.torch_module and self.in_scope(path)
        if not (torch_side or cs.mindspore_module or bases):
            if not self._pending:
                self._classes[key] = None
            return None
        rules = self.rules.layers
        norm_rule = rules.get(cs.norm) if cs.norm else None
        convertible = norm_rule is not None and not cs.init and torch_side
        if norm_rule is None and cs.mindspore_norm:
            norm_rule = rules.get(cs.mindspore_norm)
        for base in bases:
            if norm_rule is None and base.norm_rule is not None:
                norm_rule = base.norm_rule
                convertible = base.convertible and not cs.init
        result = ProjectClass(self, path, cs, bases, norm_rule, convertible)
        if not self._pending:  # else it may rest on a file's scope not decided yet
            self._classes[key] = result
        return result

    def type_of_value(self, value, types):
        """The inference's type for a resolved value (None: unknown, or stays torch)."""
        if value is None:
            return None
        kind = value[0]
        if kind == "module":
            return ProjectModule(self, value[1])
        if kind == "class":
            cls = self.project_class(value[1], value[2])
            return ClassT(cls) if cls is not None else None
        if kind == "function":
            s = self.summary(value[1])
            returns = s.functions.get(value[2]) if s is not None else None
            return ProjectFunction(self, value[1], value[2], returns) if returns else None
        if kind == "spec":
            return self.type_of_spec(value[1], value[2], types)
        return None

    def type_of_spec(self, path: str, spec: Spec, types):
        kind = spec[0]
        layers = self.rules.layers
        if kind == "module":
            _, rule_names, cls_ref, container = spec
            cls = None
            if cls_ref is not None:
                value = self.resolve(path, cls_ref)
                if value is not None and value[0] == "class":
                    cls = self.project_class(value[1], value[2])
                if cls is None:
                    return None  # a class that stays torch
            elif not rule_names and not (container and self._migrated(path)):
                return None
            found = frozenset(layers[r] for r in rule_names if r in layers)
            return ModuleT(found, cls, container)
        if kind == "maybe":
            return MaybeLayerT(frozenset(layers[r] for r in spec[1] if r in layers))
        if kind == "factory":
            _, rule_names, certain, keywords, mindspore_side = spec
            found = frozenset(layers[r] for r in rule_names if r in layers)
            if not found:
                return None
            partial = None
            if keywords is not None:
                # The partial's own keywords (another file's call): what the call site must not repeat.
                partial = ast.Call(func=ast.Name("partial"), args=[],
                                   keywords=[ast.keyword(arg=k, value=ast.Constant(None)) for k in keywords])
            if mindspore_side:
                return MindSporeFactory(found)
            return FactoryT(found, certain, partial)
        if kind == "class":
            return self.type_of_value(self.resolve(path, spec[1]), types)
        if kind == "function":
            return self.type_of_value(("function", path, spec[1]), types)
        if kind == "ref":
            return self.type_of_value(self.resolve(path, spec[1]), types)
        if kind == "call":
            callee = self.type_of_value(self.resolve(path, spec[1]), types)
            if isinstance(callee, ClassT):
                cls = callee.cls
                return ModuleT(frozenset([cls.norm_rule]) if cls.norm_rule else frozenset(), cls)
            if isinstance(callee, FactoryT):
                return ModuleT(callee.rules) if callee.certain else MaybeLayerT(callee.rules)
            if isinstance(callee, External):
                return callee.called(types, None)
        return None

    def _migrated(self, path: str) -> bool:
        """Whether the torch objects a file builds are MindSpore's after the migration."""
        s = self.summary(path)
        return s is not None and (s.mindspore or self.in_scope(path))

    def relevant(self, value, types=None) -> bool:
        """Whether a resolved value makes a file that uses it part of the migration."""
        if value is None:
            return False
        if value[0] == "module":
            return isinstance(value[1], str) and self._migrated(value[1])
        t = self.type_of_value(value, types)
        if isinstance(t, ProjectFunction):
            return t.called(types, None) is not None
        return isinstance(t, (ClassT, FactoryT, ModuleT, MaybeLayerT, MindSporeFactory))

    def may_use(self, text: str, path: str | None) -> bool:
        """Whether a file's text may use what the project makes MindSpore's (else it is not parsed
        for the project's sake): one of its import statements names a module of the project that
        the migration converts, or a class, factory or function of one. A doubt (a line continued
        with a backslash, a name the index cannot place while a file of that name exists) lets the
        file through."""
        if path is None or "import" not in text:
            return False
        path = os.path.abspath(path)
        name, is_package = self.layout.module_of(path)
        package = name if is_package else (name.rpartition(".")[0] if name else None)
        for m in _IMPORT.finditer(text):
            dots, module, names = m.group(1), m.group(2), m.group(3)
            if dots is None:  # import a.b, c as d
                for part in names.split(","):
                    words = part.split()
                    if words and (words[0] == "\\" or self._uses_module(words[0], path, False)):
                        return True
                continue
            base = absolute_module(module or None, len(dots), package) if dots else module
            if not base or (is_torch(base) or is_mindspore(base)):
                continue
            where = self.layout.find(base, path)
            if where is None:
                if not dots and self._guessed_migrated(base, path):
                    return True  # maybe reached by a sys.path trick: the engine says (PJ001)
                continue
            imported = _imported_names(text, m.end())
            if imported is None:
                return True
            for item in imported:
                if item == "*":
                    if isinstance(where, str) and self._migrated(where):
                        return True
                    continue
                value = self.member(("module", where), item)
                if self.relevant(value):
                    return True
        return False

    def _guessed_migrated(self, module: str, path: str) -> bool:
        """A module the layout cannot place, named like exactly one migrated file of the project."""
        found = [f for f in self.layout.by_stem().get(module.rsplit(".", 1)[-1], ()) if f != path]
        return len(found) == 1 and self._migrated(found[0])

    def _uses_module(self, module: str, path: str, relative: bool) -> bool:
        if is_torch(module) or is_mindspore(module):
            return False
        where = self.layout.find(module, path)
        if where is None:
            return self._guessed_migrated(module, path)
        # `import pkg.mod` binds pkg: any migrated module on the way may be used through it.
        parts = module.split(".")
        for i in range(1, len(parts) + 1):
            found = self.layout.find(".".join(parts[:i]), path)
            if isinstance(found, str) and self._migrated(found):
                return True
        return False

    def view(self, path: str | None) -> "FileView | None":
        if path is None:
            return None
        return FileView(self, os.path.abspath(path))


class FileView:
    """The project as one file being migrated sees it (its imports resolved from its place)."""

    def __init__(self, project: Project, path: str):
        self.project = project
        self.path = path
        name, is_package = project.layout.module_of(path)
        self.package = name if is_package else (name.rpartition(".")[0] if name else None)
        self._stars: tuple | None = None

    def stars(self, tree: ast.Module) -> tuple:
        if self._stars is None:
            self._stars = star_modules(tree, self.package)
        return self._stars

    def ref(self, b: Binding) -> Ref | None:
        return import_ref(b, self.package)

    def value(self, b: Binding):
        ref = self.ref(b)
        return self.project.resolve(self.path, ref) if ref is not None else None

    def binding(self, types, b: Binding):
        return self.project.type_of_value(self.value(b), types)

    def star(self, types, name: str, scope):
        value = self._star_value(name, scope)
        return self.project.type_of_value(value, types) if value is not None else None

    def _star_value(self, name: str, scope):
        for module in reversed(self.stars(scope.module().node)):
            where = self.project.layout.find(module, self.path)
            if isinstance(where, str) and self.project.exports(where, name):
                return self.project.lookup(where, name)
        return None

    def uses(self, mig) -> bool:
        """Whether the file uses a module, factory or function that the migration makes MindSpore's."""
        types = mig.types
        for b in mig.index.imports:
            if self.project.relevant(self.value(b), types):
                return True
        for module in self.stars(mig.tree):
            where = self.project.layout.find(module, self.path)
            if isinstance(where, str) and self.project._migrated(where):
                return True
        return False

    def factory_names(self, mig) -> set[str]:
        """Names the file imports that build normalization layers: factories, norm classes."""
        out = set()
        for b in mig.index.imports:
            if not any(isinstance(mig.parent(node), (ast.Call, ast.Subscript)) for node, _ in mig.index.loads.get(b.name, ())):
                continue  # never called (nor looked up in): builds nothing here
            t = self.project.type_of_value(self.value(b), mig.types)
            if isinstance(t, FactoryT) or (isinstance(t, ClassT) and t.cls.norm_rule is not None):
                out.add(b.name)
        return out

    def project_names(self, mig) -> set[str]:
        """Names the file imports from other files of the project (what calling them may build is read
        from there): classes, functions, factories, modules."""
        out = set()
        for b in mig.index.imports:
            if self.project.type_of_value(self.value(b), mig.types) is not None:
                out.add(b.name)
        return out

    def imports_project(self, mig) -> bool:
        """Whether any import of the file names a module of the project (no summary is read)."""
        layout = self.project.layout
        for b in mig.index.imports:
            ref = self.ref(b)
            if ref is not None and ref[0] is not None and (
                    layout.find(ref[0], self.path) is not None or self._guess(ref[0]) is not None):
                return True
        return bool(self.stars(mig.tree))

    def report_unresolved(self, mig) -> None:
        for call, name, where in self.unresolved_constructions(mig):
            mig.finding("PJ001", call, f"{name} is imported from {where}, which torch2ms migrates, but what "
                                       f"{name} is cannot be read from there: if it is a torch module, it is "
                                       f"a MindSpore Cell after the migration (check its training mode: set_train())")

    def unresolved_constructions(self, mig) -> list[tuple[ast.Call, str, str]]:
        """Calls of names imported from a file of the project that the migration converts, where
        the index cannot tell what the name is: (call, name, file)."""
        out = []
        project = self.project
        for b in mig.index.imports:
            ref = self.ref(b)
            if ref is None or not ref[1]:
                continue
            module, attrs = ref
            where = project.layout.find(module, self.path)
            if where is None:
                where = self._guess(module)
                if where is None:
                    continue
            elif not isinstance(where, str):
                continue
            if not project.in_scope(where):
                continue
            if project.resolve(self.path, ref) is not None:
                continue
            for node, scope in mig.index.loads.get(b.name, ()):
                found = scope.resolve(b.name)
                if found is None or b not in found[1]:
                    continue
                call = mig.parent(node)
                if isinstance(call, ast.Call) and call.func is node:
                    out.append((call, b.name, os.path.relpath(where, project.layout.root)))
        return out

    def _guess(self, module: str) -> str | None:
        """A module the layout cannot place (a sys.path trick): the one project file of that name."""
        found = [f for f in self.project.layout.by_stem().get(module.rsplit(".", 1)[-1], ()) if f != self.path]
        return found[0] if len(found) == 1 else None


def _imported_names(text: str, at: int) -> list[str] | None:
    """The names of ``from x import <names>`` starting at ``at`` (None: a continued line, a doubt)."""
    while at < len(text) and text[at] in " \t":
        at += 1
    if text.startswith("(", at):
        end = text.find(")", at)
        chunk = text[at + 1: end if end >= 0 else len(text)]
        chunk = "\n".join(line.split("#", 1)[0] for line in chunk.splitlines())
    else:
        end = min((i for i in (text.find(c, at) for c in "\r\n;#") if i >= 0), default=len(text))
        chunk = text[at:end]
        if "\\" in chunk:
            return None
    out = []
    for part in chunk.split(","):
        words = part.split()
        if words:
            out.append(words[0])
    return out


# Import statements, for may_use: `from ..pkg.mod import x` (dots, module) or `import a.b, c as d`.
_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+(\.*)[ \t]*([\w.]*)[ \t\\]+import\b|import[ \t]+([\w. \t,\\]+))", re.M)


def join(results: list):
    """One type for the values a function may return (the inference's join, for whole modules)."""
    if not results or any(r is None for r in results):
        return None
    first = results[0]
    if all(r == first for r in results):
        return first
    if all(isinstance(r, ModuleT) for r in results):
        all_layers = all(r.is_layer for r in results)
        rules = frozenset().union(*(r.rules for r in results)) if all_layers else frozenset()
        return ModuleT(rules)
    if all(isinstance(r, (ModuleT, MaybeLayerT)) for r in results):
        return MaybeLayerT(frozenset().union(*(r.rules for r in results)))
    return None
