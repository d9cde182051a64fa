"""The language server: pygls over stdio, a thin front end over ``fixes`` (which calls the core).

- Diagnostics on open, save and (debounced) change: one per finding (error/warning/information as
  the finding says) and one hint per site a quick-fix converts.
- A ``quickfix`` code action per such site (and per finding at that site) applying that site's
  rewrite, plus the import edits and dependent sites it needs; ``source.fixAll.torch2ms`` applies
  ``migrate_source`` to the whole document. The editor's markers are the diagnostics, so the server
  never adds ``# torch2ms:`` comments.
- A document that does not parse loses its torch2ms diagnostics (they would point at text that
  moved) and gets one hint saying why, until it parses again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from dataclasses import replace
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from .. import __version__
from ..findings import Finding
from ..model import Config, MigrationError, Site
from ..plan import short
from .fixes import Analysis, Lines, analyse, quick_fix, text_changes

logger = logging.getLogger(__name__)

SOURCE = "torch2ms"
FIX_ALL = "source.fixAll.torch2ms"
# A client that cannot resolve code actions lazily gets the edits up front, for this many of the
# sites in the requested range (a selection of the whole file would otherwise cost minutes).
MAX_EAGER_FIXES = 8
SEVERITY = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "info": types.DiagnosticSeverity.Information,
}


class Torch2msServer(LanguageServer):
    def __init__(self, config: Config, debounce: float = 0.15):
        super().__init__("torch2ms", __version__)
        self.config = replace(config, markers=False)
        self.debounce = debounce
        self.analyses: dict[str, Analysis] = {}  # uri -> the analysis of the text last published
        self.pending: dict[str, asyncio.Task] = {}  # uri -> the analysis waiting out the debounce
        self.running: dict[str, asyncio.Future] = {}  # uri -> the analysis in the worker thread
        self.fixes: dict[tuple[str, str, str], str] = {}  # (uri, text, site id) -> the text after the fix
        # The workspace folders' projects (codemod.project.Project), by root: what the other files of
        # a document's project define. Read in a background thread; one lock keeps the project's
        # caches consistent between that thread and the analyses.
        self.projects: dict[str, object] = {}
        self.project_lock = threading.Lock()
        self.project_read: threading.Event = threading.Event()

    # -- the workspace's projects -------------------------------------------------------------------

    def read_projects(self, roots: list[str]) -> None:
        """Find every workspace folder's files and read what they define, in a background thread
        (diagnostics do not wait: a document analysed first reads what it needs itself)."""
        from ..facts.project import Layout, Project
        from ..runner.discovery import discover

        def read() -> None:
            start = time.perf_counter()
            count = 0
            try:
                for root in roots:
                    files = [f.path for f in discover([root]).files if f.path.endswith((".py", ".pyi"))]
                    project = Project(Layout(root, files), self.config.rules)
                    with self.project_lock:
                        self.projects[root] = project
                    for path in sorted(project.layout.files):
                        with self.project_lock:
                            if project.warm(path):
                                count += 1
                        time.sleep(0)  # let an analysis take the lock between two files
            except Exception:  # the project is a help, not a requirement
                logger.exception("torch2ms could not read the workspace")
            self.project_read.set()
            self.window_log_message(types.LogMessageParams(
                types.MessageType.Info,
                f"torch2ms: read the project ({count} files with torch or MindSpore code) in "
                f"{time.perf_counter() - start:.2f} s"))
            self.reanalyse_open_documents()

        threading.Thread(target=read, name="torch2ms-project", daemon=True).start()

    def project_of(self, path: str | None):
        if path is None:
            return None
        path = os.path.abspath(path)
        roots = [r for r in self.projects if path == r or path.startswith(r.rstrip(os.sep) + os.sep)]
        return self.projects[max(roots, key=len)] if roots else None

    def project_changed(self, path: str, text: str | None, deleted: bool = False) -> None:
        """A file of a project changed (an editor's buffer, a save, a file on disk)."""
        project = self.project_of(path)
        if project is None:
            return
        with self.project_lock:
            if deleted:
                project.remove(path)
            else:
                project.set_text(path, text)
        self.analyses.clear()

    def reanalyse_open_documents(self) -> None:
        loop = getattr(self, "_loop", None)
        if loop is None:
            return
        for uri in list(self.workspace.text_documents):
            loop.call_soon_threadsafe(self.schedule, uri, 0)

    # -- analysis and diagnostics ------------------------------------------------------------------

    @property
    def encoding(self) -> str:
        return str(self.workspace.position_encoding or "utf-16")

    def schedule(self, uri: str, delay: float) -> None:
        """(Re)start the analysis of a document after ``delay`` seconds of quiet."""
        previous = self.pending.pop(uri, None)
        if previous is not None:
            previous.cancel()
        self.pending[uri] = asyncio.get_running_loop().create_task(self._analyse_and_publish(uri, delay))

    async def _analyse_and_publish(self, uri: str, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        document = self.workspace.get_text_document(uri)
        text, version = document.source, document.version
        analysis = await self.analysis_of(uri, text)
        if self.workspace.get_text_document(uri).version != version:
            return  # a newer change is on its way; its own analysis publishes
        try:
            diagnostics = self.diagnostics(analysis)
        except Exception:  # never leave the previous version's diagnostics standing
            logger.exception("torch2ms could not describe its findings in %s", uri)
            diagnostics = []
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=uri, version=version, diagnostics=diagnostics))

    async def analysis_of(self, uri: str, text: str) -> Analysis:
        cached = self.analyses.get(uri)
        if cached is not None and cached.text == text:
            return cached
        # In a worker thread, so the server keeps reading messages while it runs. A thread cannot be
        # stopped: an analysis made obsolete by a newer change runs to its end, and the next one
        # waits for it rather than share the interpreter with it (which would slow both down).
        previous = self.running.get(uri)
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        running = asyncio.get_running_loop().run_in_executor(None, self._analyse, uri, text)
        self.running[uri] = running
        analysis = await asyncio.shield(running)
        self.analyses[uri] = analysis
        return analysis

    def config_for(self, path: str | None) -> Config:
        project = self.project_of(path)
        return replace(self.config, project=project) if project is not None else self.config

    def _analyse(self, uri: str, text: str) -> Analysis:
        try:
            path = self.workspace.get_text_document(uri).path
            with self.project_lock:
                return analyse(text, self.config_for(path), path=path)
        except Exception as exc:  # a bug in the engine must not take the editor's server down
            logger.exception("torch2ms failed on %s", uri)
            return Analysis(text, error=exc)

    def diagnostics(self, analysis: Analysis, lines: Lines | None = None, only_site: Site | None = None,
                    fixed_by: dict[int, Site] | None = None) -> list[types.Diagnostic]:
        """The document's diagnostics (or only those about one site)."""
        lines = lines or Lines(analysis.text, self.encoding)
        if analysis.result is None:
            return [self._not_analysed(analysis, lines)]
        sites = [only_site] if only_site is not None else analysis.sites
        fixed_by = _sites_of_findings(analysis, lines) if fixed_by is None else fixed_by
        out = []
        for i, f in enumerate(analysis.result.findings):
            site = fixed_by.get(i)
            if only_site is None or site is only_site:
                out.append(self.finding_diagnostic(f, lines, site))
        out.extend(self.site_diagnostic(s, lines, analysis) for s in sites)
        return out

    def _not_analysed(self, analysis: Analysis, lines: Lines) -> types.Diagnostic:
        error = analysis.error
        if isinstance(error, MigrationError):
            line, column = error.line, error.column
            message = f"torch2ms: not analysed until the file parses ({error.message})"
        else:
            line, column = 1, 0
            message = f"torch2ms failed on this file (internal error: {error!r}); please report it"
        at = _range(lines, line, column, line, column)
        return types.Diagnostic(range=at, severity=types.DiagnosticSeverity.Hint, source=SOURCE,
                                code="not-analysed", message=message)

    def finding_diagnostic(self, finding: Finding, lines: Lines, site: Site | None) -> types.Diagnostic:
        """A finding; ``site`` is the convertible site at the same place, whose quick-fix it offers."""
        return types.Diagnostic(
            range=_range(lines, *_finding_range(finding)),
            severity=SEVERITY.get(finding.severity, types.DiagnosticSeverity.Information),
            code=finding.code, source=SOURCE, message=finding.message,
            data={"site": site.id} if site is not None else None,
        )

    def site_diagnostic(self, site: Site, lines: Lines, analysis: Analysis) -> types.Diagnostic:
        return types.Diagnostic(
            range=_range(lines, *_site_range(site)),
            severity=types.DiagnosticSeverity.Hint, code=site.kind, source=SOURCE,
            message=f"converts to MindSpore: {describe(analysis, site)}", data={"site": site.id},
        )

    # -- code actions ----------------------------------------------------------------------------

    async def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        document = self.workspace.get_text_document(uri)
        analysis = await self.analysis_of(uri, document.source)
        if analysis.result is None:
            return []
        lines = Lines(analysis.text, self.encoding)
        first = lines.offset_of_position(params.range.start.line, params.range.start.character)
        last = lines.offset_of_position(params.range.end.line, params.range.end.character)
        actions = []
        if _wanted(types.CodeActionKind.QuickFix, params.context.only):
            sites = [s for s in analysis.sites
                     if lines.offset(s.line, s.column) <= last and first <= lines.offset(s.end_line, s.end_column)]
            resolves = self._resolves_edits()
            fixed_by = _sites_of_findings(analysis, lines)
            if not resolves:
                sites = sites[:MAX_EAGER_FIXES]  # each costs two analyses of the document, now
            for site in sites:
                action = types.CodeAction(
                    title=f"torch2ms: {describe(analysis, site)}", kind=types.CodeActionKind.QuickFix,
                    diagnostics=self.diagnostics(analysis, lines, only_site=site, fixed_by=fixed_by),
                    is_preferred=True,
                    data={"uri": uri, "version": document.version, "site": site.id},
                )
                if not resolves:
                    action.edit = await self.quick_fix_edit(uri, document.version, analysis, site.id)
                    if action.edit is None:
                        continue
                actions.append(action)
        if _wanted(FIX_ALL, params.context.only) and analysis.result.plan.changes:
            migrated = await asyncio.get_running_loop().run_in_executor(None, analysis.migrated)
            actions.append(types.CodeAction(
                title="torch2ms: migrate this file to MindSpore", kind=FIX_ALL,
                edit=self.workspace_edit(uri, document.version, analysis.text, migrated)))
        return actions

    async def resolve(self, action: types.CodeAction) -> types.CodeAction:
        data = action.data or {}
        uri, site_id = data.get("uri"), data.get("site")
        if action.edit is not None or not uri or not site_id:
            return action
        document = self.workspace.get_text_document(uri)
        if document.version != data.get("version"):
            return action  # the document changed since: the editor asks again for fresh actions
        analysis = await self.analysis_of(uri, document.source)
        if analysis.site(site_id) is not None:
            action.edit = await self.quick_fix_edit(uri, document.version, analysis, site_id)
        return action

    async def quick_fix_edit(self, uri: str, version: int | None, analysis: Analysis,
                             site_id: str) -> types.WorkspaceEdit | None:
        key = (uri, analysis.text, site_id)
        fixed = self.fixes.get(key)
        if fixed is None:
            try:
                fixed = await asyncio.get_running_loop().run_in_executor(
                    None, self._quick_fix, uri, analysis, site_id)
            except Exception:  # offer no fix rather than a wrong one
                logger.exception("torch2ms could not compute the fix for %s in %s", site_id, uri)
                return None
            self.fixes = {k: v for k, v in self.fixes.items() if k[0] != uri or k[1] == analysis.text}
            self.fixes[key] = fixed
        return self.workspace_edit(uri, version, analysis.text, fixed)

    def _quick_fix(self, uri: str, analysis: Analysis, site_id: str) -> str:
        path = self.workspace.get_text_document(uri).path
        with self.project_lock:
            return quick_fix(analysis, site_id, self.config_for(path))

    def workspace_edit(self, uri: str, version: int | None, old: str, new: str) -> types.WorkspaceEdit:
        lines = Lines(old, self.encoding)
        edits = []
        for change in text_changes(old, new):
            (l1, c1), (l2, c2) = lines.position(change.start), lines.position(change.end)
            edits.append(types.TextEdit(
                range=types.Range(types.Position(l1, c1), types.Position(l2, c2)), new_text=change.text))
        if _capability(self.client_capabilities, "workspace", "workspace_edit", "document_changes"):
            # Versioned: the editor refuses the edit if the document changed in between.
            return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
                edits=edits)])
        return types.WorkspaceEdit(changes={uri: edits})

    def _resolves_edits(self) -> bool:
        support = _capability(self.client_capabilities, "text_document", "code_action", "resolve_support")
        return support is not None and "edit" in (support.properties or [])


def describe(analysis: Analysis, site: Site) -> str:
    """What a site's quick-fix does, in one line (from what the engine says of the site, else from
    the migrated text of its node)."""
    if site.message:
        return site.message
    if site.replacement and site.replacement != site.original:
        return f"`{short(site.original)}` -> `{short(site.replacement)}`"
    # The text stays; the import under it changes (every use of the name converts).
    return f"`{short(site.original)}` ({site.rule or site.kind}) becomes MindSpore's through the import"


def _range(lines: Lines, line: int, column: int, end_line: int, end_column: int) -> types.Range:
    start = lines.engine_position(line, column)
    end = lines.engine_position(end_line, end_column)
    return types.Range(types.Position(*start), types.Position(*end))


def _sites_of_findings(analysis: Analysis, lines: Lines) -> dict[int, Site]:
    """For each finding (by index), the site whose quick-fix addresses it: the site at the finding's
    range (``MD001`` at an inserted ``set_train()``), else the smallest site whose node holds the
    finding's text (``TM001`` on a ``device=`` argument the constructor's rewrite drops). Findings
    about text no fix touches (what is left unconverted) get none."""
    sites = analysis.sites
    by_range = {_site_range(s): s for s in sites}
    by_line: dict[int, list[Site]] = {}
    for site in sites:
        for line in range(site.line, site.end_line + 1):
            by_line.setdefault(line, []).append(site)
    out = {}
    for i, finding in enumerate(analysis.result.findings if analysis.result else []):
        at = _finding_range(finding)
        site = by_range.get(at)
        if site is None:
            covering = [s for s in by_line.get(at[0], [])
                        if (s.line, s.column) <= at[:2] and at[2:] <= (s.end_line, s.end_column)]
            site = min(covering, key=lambda s: (s.end_line - s.line, s.end_column - s.column), default=None)
        if site is not None:
            out[i] = site
    return out


def _site_range(site: Site) -> tuple[int, int, int, int]:
    return site.line, site.column, site.end_line, site.end_column


def _finding_range(finding: Finding) -> tuple[int, int, int, int]:
    end_line = finding.end_line or finding.line
    end_column = finding.end_column if finding.end_column is not None else finding.column
    return finding.line, finding.column, end_line, end_column


def _wanted(kind: str, only: list[str] | None) -> bool:
    """Whether a code action kind was asked for (kinds are hierarchical: ``source`` asks for
    ``source.fixAll.torch2ms``)."""
    return only is None or any(kind == o or kind.startswith(o + ".") for o in only)


def _capability(root: Any, *path: str) -> Any:
    for name in path:
        root = getattr(root, name, None)
        if root is None:
            return None
    return root


def _path_of(uri: str) -> str | None:
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else None


def create_server(config: Config, debounce: float = 0.15) -> Torch2msServer:
    server = Torch2msServer(config, debounce)

    @server.feature(types.INITIALIZED)
    def initialized(ls: Torch2msServer, params: types.InitializedParams) -> None:
        ls._loop = asyncio.get_running_loop()
        folders = [f.uri for f in (ls.workspace.folders or {}).values()] or (
            [ls.workspace.root_uri] if ls.workspace.root_uri else [])
        roots = [p for p in (_path_of(u) for u in folders) if p and os.path.isdir(p)]
        if roots:
            ls.read_projects(roots)
        else:
            ls.project_read.set()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: Torch2msServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.project_changed(_path_of(params.text_document.uri) or "", params.text_document.text)
        ls.schedule(params.text_document.uri, 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: Torch2msServer, params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.project_changed(_path_of(uri) or "", ls.workspace.get_text_document(uri).source)
        ls.schedule(uri, ls.debounce)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: Torch2msServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, 0)
        ls.reanalyse_open_documents()  # the others may use what this one defines

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(ls: Torch2msServer, params: types.DidChangeWatchedFilesParams) -> None:
        for change in params.changes:
            path = _path_of(change.uri)
            if path is None or not path.endswith((".py", ".pyi")):
                continue
            if change.uri in ls.workspace.text_documents:
                continue  # the editor's buffer is what counts while it is open
            ls.project_changed(path, None, deleted=change.type == types.FileChangeType.Deleted)
        ls.reanalyse_open_documents()

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: Torch2msServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        pending = ls.pending.pop(uri, None)
        if pending is not None:
            pending.cancel()
        ls.analyses.pop(uri, None)
        ls.running.pop(uri, None)
        ls.project_changed(_path_of(uri) or "", None)  # the file on disk again
        ls.fixes = {k: v for k, v in ls.fixes.items() if k[0] != uri}
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(
        code_action_kinds=[types.CodeActionKind.QuickFix, FIX_ALL], resolve_provider=True))
    async def code_action(ls: Torch2msServer, params: types.CodeActionParams):
        return await ls.code_actions(params)

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def code_action_resolve(ls: Torch2msServer, params: types.CodeAction) -> types.CodeAction:
        return await ls.resolve(params)

    return server
