"""A module being planned: its facts (scopes, torch references, types), and the sites, findings and
plan changes the passes add to it. The passes read and write this; the engine makes one per file."""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass

from .facts.keys import NodeKeys
from .facts.references import TorchRef, is_mindspore, torch_references
from .facts.scopes import Index, dotted_chain
from .findings import Finding
from .model import Config, Site, SiteKind
from .plan import Change, Plan, ReplaceReference, Spelling
from .ruleset import LayerRule, rules_of, target_version
from .source import SourceText


@dataclass
class SpelledName:
    """A MindSpore name the migrated code spells: in place of a torch reference (``ref``) or in code
    the tool writes (``ref`` None). Its spelling depends on the imports, decided once every site is
    planned (passes/imports.py); ``group`` is the torch import it stands next to."""

    ref: TorchRef | None
    spelling: Spelling
    site: Site
    group: object = None

    def __post_init__(self) -> None:
        if self.group is None and self.ref is not None:
            self.group = self.ref.group

    @property
    def target(self) -> str:
        return self.spelling.target


class Migration:
    """The state of one migration: the analysis, and the sites, edits and findings it plans."""

    def __init__(self, source: str, tree: ast.Module, path: str | None, config: Config):
        self.source = source
        self.text = SourceText(source)
        self.tree = tree
        self.path = path
        self.config = config
        self.rules = rules_of(config)
        self.titles = {code: spec.title for code, spec in self.rules.findings.items()}
        self.target_version = target_version(config)
        self.index = Index(tree)
        self.refs, self.ambiguous, self.import_groups = torch_references(
            self.index, self.rules.canonical, self.is_known
        )
        self.ref_by_node: dict[int, TorchRef] = {id(r.node): r for r in self.refs}
        self.sites: list[Site] = []
        self._site_by_id: dict[str, Site] = {}
        self.site_by_node: dict[int, Site] = {}
        self.selected: set[str] | None = None  # the sites `only` expands to (see select_components)
        self.findings: list[Finding] = []
        self.spelled: list[SpelledName] = []
        self.converted_refs: set[int] = set()  # id(ref.node) of references a site converts
        self.handled: set[int] = set()  # id(node) of call/reference nodes a pass took care of
        self.keys = NodeKeys(tree, self.index.parents)
        self.types = None  # set by inference.infer_modules
        self.project = config.project.view(path) if config.project is not None else None

    # -- facts -----------------------------------------------------------------------------------

    def is_known(self, qual: str) -> bool:
        r = self.rules
        return qual in r.layers or qual in r.names or qual in r.dtypes

    def qualified(self, node: ast.expr, scope) -> str | None:
        """The dotted name an expression spells through the file's imports (any module), if any."""
        parts = dotted_chain(node)
        if not parts:
            return None
        found = scope.resolve(parts[0])
        if found is None:
            return None
        imports = [b for b in found[1] if b.kind == "import" and b.qual]
        if len(imports) != len(found[1]) or len({b.qual for b in imports}) != 1:
            return None
        return ".".join([imports[0].qual, *parts[1:]])

    def layer_rule(self, qual: str | None) -> LayerRule | None:
        return self.rules.layers.get(qual) if qual else None

    def anchor_ref(self, target: str | None = None) -> TorchRef | None:
        """A reference through a module-level torch import, for MindSpore names that code the tool
        writes needs with no torch name of its own to stand next to (``ops.relu(x)`` for
        ``x.relu()``): the import whose MindSpore counterpart covers ``target`` (``import
        torch.nn.functional as F`` for ``mindspore.ops.relu``: it is spelled ``F.relu`` once that
        import is MindSpore's, whichever step converts it), else the file's first torch import."""
        groups = [g for g in self.import_groups if g.scope is self.index.module_scope and g.bindings and g.refs]
        if not groups:
            return None
        groups.sort(key=lambda g: (g.anchor.lineno, g.anchor.col_offset))
        for counterpart, group in sorted(((self._counterpart(g), g) for g in groups), key=lambda p: -len(p[0] or "")):
            if counterpart and target and (target == counterpart or target.startswith(counterpart + ".")):
                return group.refs[0]
        return groups[0].refs[0]

    def _counterpart(self, group) -> str | None:
        qual = self.rules.canonical(group.qual)
        return self.rules.counterparts.get(qual) or self.rules.mapped(qual)

    def parent(self, node: ast.AST) -> ast.AST | None:
        return self.index.parents.get(node)

    def scope_of_load(self, name: ast.Name):
        """The scope a name is read in (a load the walk recorded), or None."""
        for node, scope in self.index.loads.get(name.id, ()):
            if node is name:
                return scope
        return None

    def ref(self, node: ast.AST) -> TorchRef | None:
        return self.ref_by_node.get(id(node))

    @functools.cached_property
    def in_scope(self) -> bool:
        """A file is migrated when it uses an API the rules cover: it references a torch layer, calls
        a torch function the rules map, or calls a tensor method the rules map on a value known to be
        a tensor; or when it is part way through a migration (it imports MindSpore and still
        references torch's nn.Module & co.); or when it defines module classes and names nothing else
        of torch. A torch function named without being called (passed to ``vmap``, say) does not
        count: calls are what the rules map."""
        layers = self.rules.layers
        if any(self._covers(r.qual, r.node) for r in self.refs) or any(self._covers(a.qual, a.node) for a in self.ambiguous):
            return True
        if any(self._names_layer(r) for r in self.refs):
            return True
        if (any(is_mindspore(b.qual) for b in self.index.imports)
                and any(r.qual in self.rules.names for r in self.refs)) or self.uses_project:
            return True
        if self._module_classes_only():
            return True
        return self.rules.methods and self.types is not None and bool(self.types.tensor_method_calls())

    def _module_classes_only(self) -> bool:
        """The file defines torch module classes (``class Seq(nn.Sequential): ...``) and names nothing
        of torch but what the rules map: its classes become Cells (the files that subclass or build
        them take them for Cells), and nothing in it stays torch."""
        rules = self.rules
        if not rules.complete or not self.refs or self.ambiguous \
                or not any(isinstance(self.parent(r.node), ast.ClassDef) for r in self.refs):
            return False
        return all(r.qual in rules.names or r.qual in rules.layers or r.qual in rules.dtypes for r in self.refs)

    def _covers(self, qual: str, node: ast.AST) -> bool:
        rule = self.rules.layers.get(qual)
        if rule is None:
            return False
        if rule.kind != "function":
            return True
        call = self.parent(node)
        return isinstance(call, ast.Call) and call.func is node

    @functools.cached_property
    def uses_project(self) -> bool:
        """The file uses a class, factory or function of another file of the project that the
        migration makes MindSpore's (``from models import Net``): it is migrated too."""
        return self.project is not None and self.project.uses(self)

    def _names_layer(self, ref: TorchRef) -> bool:
        """``getattr(nn, "BatchNorm2d")``: a layer named by a string on a torch module."""
        call = self.parent(ref.node)
        if not (isinstance(call, ast.Call) and len(call.args) >= 2 and call.args[0] is ref.node
                and isinstance(call.func, ast.Name) and call.func.id == "getattr"
                and isinstance(call.args[1], ast.Constant) and isinstance(call.args[1].value, str)):
            return False
        return self.rules.canonical(f"{ref.qual}.{call.args[1].value}") in self.rules.layers

    # -- sites, edits, findings ------------------------------------------------------------------

    def site(self, kind: SiteKind | str, node: ast.AST, rule: str | None = None, message: str = "",
             start: tuple[int, int] | None = None) -> Site:
        """The site about ``node`` (one per node and kind). ``start`` (line, byte offset) places it
        elsewhere than where the node starts: calls chained on one value all start there."""
        kind = SiteKind(kind)
        line, offset = start or (node.lineno, node.col_offset)
        col = self.text.char_col(line, offset)
        end_line, end_col = node.end_lineno, self.text.char_col(node.end_lineno, node.end_col_offset)
        site_id = f"{line}:{col}:{kind}"
        existing = self._site_by_id.get(site_id)
        if existing is not None:
            return existing
        s = Site(site_id, kind, line, col, end_line, end_col, rule=rule, message=message,
                 original=self.text.segment(node))
        s.node = node
        # A node's own site comes first (its construction); a set_train() chained to it is another.
        self.site_by_node.setdefault(id(node), s)
        self.sites.append(s)
        self._site_by_id[site_id] = s
        return s

    def site_of(self, node: ast.AST) -> Site | None:
        """The site planned for a node, if any."""
        return self.site_by_node.get(id(node))

    def site_at(self, kind: SiteKind | str, line: int, column: int) -> Site:
        kind = SiteKind(kind)
        """A site that belongs to no single node (the import statements of the file)."""
        site_id = f"{line}:{column}:{kind}"
        existing = self._site_by_id.get(site_id)
        if existing is None:
            existing = Site(site_id, kind, line, column, line, column)
            self.sites.append(existing)
            self._site_by_id[site_id] = existing
        return existing

    def active(self, site: Site) -> bool:
        # Import edits follow from the active sites, so they always apply.
        if self.config.only is None or site.kind == "imports":
            return True
        if self.selected is None:
            self.selected = select_components(self.sites, self.site_by_node, self.config.only)
        return site.id in self.selected

    def key(self, node: ast.AST):
        return self.keys.key(node)

    def change(self, site: Site, change: Change) -> Change:
        site.changes.append(change)
        return change

    def convert_ref(self, site: Site, ref: TorchRef, target: str) -> Spelling:
        """The reference now names ``target``, spelled as the import plan decides."""
        spelling = Spelling(target)
        self.spelled.append(SpelledName(ref, spelling, site))
        self.converted_refs.add(id(ref.node))
        self.change(site, ReplaceReference(site.id, self.key(ref.node), spelling, self.text.segment(ref.node)))
        return spelling

    def spell(self, site: Site, target: str, near: TorchRef) -> Spelling:
        """A MindSpore name for code the tool writes, spelled next to the torch import of ``near``."""
        spelling = Spelling(target)
        self.spelled.append(SpelledName(None, spelling, site, group=near.group))
        return spelling

    def finding(self, code: str, node: ast.AST | None, message: str | None = None, *,
                line: int | None = None, column: int | None = None) -> Finding:
        spec = self.rules.findings[code]
        if node is not None:
            line = node.lineno
            column = self.text.char_col(node.lineno, node.col_offset)
            end_line = getattr(node, "end_lineno", None)
            end_col = self.text.char_col(node.end_lineno, node.end_col_offset) if end_line else None
        else:
            end_line = end_col = None
        f = Finding(code, spec.severity, line or 1, column or 0, message or spec.title, self.path,
                    end_line, end_col)
        if self.rules.reports(code):  # a selection may leave the code out
            self.findings.append(f)
        return f

    def unconverted(self, site: Site, code: str, node: ast.AST, message: str) -> None:
        """The site stays as torch: an error finding, and a marker comment in the file."""
        site.converted = False
        site.message = message
        # Whatever the site planned before it found out is withdrawn.
        site.changes.clear()
        withdrawn = [c for c in self.spelled if c.site is site]
        for c in withdrawn:
            self.spelled.remove(c)
            if c.ref is not None:
                self.converted_refs.discard(id(c.ref.node))
        self.finding(code, node, message)
        site.marker = (code, message, node)

    def close(self) -> None:
        """Drop the analysis. Scopes and their bindings, import groups and their references, the
        type queries and the migration all point at each other; cutting those links lets reference
        counting free a whole file's trees at once instead of leaving them to the cyclic collector."""
        for scope in (self.index.module_scope, *self.index.scope_of.values()):
            scope.bindings = {}
        for group in self.import_groups:
            group.refs = []
        self.refs, self.ambiguous, self.import_groups, self.spelled = [], [], [], []
        self.ref_by_node, self.site_by_node = {}, {}
        self.types = self.index = self.tree = self.keys = None
        for site in self.sites:
            site.marker = site.node = None

    # -- result --------------------------------------------------------------------------------

    def plan(self) -> Plan:
        """The changes of the active sites, with what the transformers need to find them."""
        # A reference spelled as it was (its import is what changes) is a change of its site's, but
        # not one the transformers have to make.
        changes = [c for s in self.sites if self.active(s) for c in s.changes
                   if not (type(c) is ReplaceReference and str(c.spelling) == c.written)]
        return Plan(changes, self.keys.ends, self.keys.subtrees)


def select_components(sites: list[Site], site_by_node: dict[int, Site], only: frozenset[str]) -> set[str]:
    """The sites a selection stands for: each selected site with every site it relies on or that
    relies on it (a set_train() insertion, the constructor call it follows, the attribute renames on
    that layer). Applying part of such a group would leave code whose remaining sites can no longer
    be recognised, so a group is converted whole, and one site at a time ends where all at once does."""
    parent = {s.id: s.id for s in sites}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for s in sites:
        for node_id in s.requires:
            other = site_by_node.get(node_id)
            if other is not None:
                parent[find(s.id)] = find(other.id)
    roots = {find(i) for i in only if i in parent}
    return {s.id for s in sites if find(s.id) in roots}
