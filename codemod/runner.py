"""Files and trees: find the files, read them as Python would, migrate them, write them atomically.

Layering, bottom up (the CLI sits on top):

- bytes: ``decode``/``encode`` keep a file's encoding (PEP 263 cookie, UTF-8 BOM) and its newlines;
  ``write_atomic`` replaces a file through a temporary file and a rename.
- one file: ``process_file`` reads, migrates (``migrate_source``, or ``notebook.migrate_notebook``)
  and writes one file. Whatever goes wrong becomes that file's error; nothing half-written is left.
- paths: ``discover`` finds the files under the given roots (.gitignore, excludes, no symlinks),
  ``load_project_config`` reads ``[tool.torch2ms]``, and ``run`` processes many files, in one process
  or a pool, handing results back in discovery order whatever the number of jobs.
"""

from __future__ import annotations

import difflib
import fnmatch
import gc
import io
import os
import signal
import stat
import subprocess
import sys
import tempfile
import tokenize
import traceback
from dataclasses import dataclass, field
from typing import Callable, Sequence

from .engine import Config, MigrationError, migrate_source
from .findings import Finding
from .notebook import count_converted, migrate_notebook

PYTHON_SUFFIXES = (".py", ".pyi")
NOTEBOOK_SUFFIX = ".ipynb"
SOURCE_SUFFIXES = PYTHON_SUFFIXES + (NOTEBOOK_SUFFIX,)


@dataclass
class FileResult:
    """What happened to one file. Small and picklable: workers send it back to the parent."""

    path: str  # as reports name it
    changed: bool = False
    written: bool = False
    error: str | None = None  # the file was not processed (or not written): nothing of it changed
    problems: list[str] = field(default_factory=list)  # parts left as they were (notebook cells)
    findings: list[Finding] = field(default_factory=list)
    sites_converted: int = 0
    remaining_torch: list[str] = field(default_factory=list)
    diff: str | None = None
    detail: str | None = None  # the traceback of an internal error, for a bug report

    @property
    def skipped(self) -> bool:
        """Something in this file was not processed: the run's exit code says so."""
        return bool(self.error or self.problems)


@dataclass
class Summary:
    files: list[FileResult] = field(default_factory=list)
    interrupted: bool = False

    @property
    def scanned(self) -> int:
        return len(self.files)

    @property
    def changed(self) -> int:
        """Files changed (or, without writing, that would change); a file that could not be written
        is counted among the errors instead."""
        return sum(1 for f in self.files if f.changed and not f.error)

    @property
    def errors(self) -> list[FileResult]:
        return [f for f in self.files if f.skipped]

    @property
    def sites_converted(self) -> int:
        return sum(f.sites_converted for f in self.files)

    def findings_by_severity(self) -> dict[str, int]:
        counts = {"error": 0, "warning": 0, "info": 0}
        for f in self.files:
            for finding in f.findings:
                counts[finding.severity] += 1
        return counts


@dataclass(frozen=True)
class Settings:
    """What every file of a run is told. Picklable: a worker builds its Config from it once."""

    markers: bool = True
    mindspore_version: str | None = None
    write: bool = True  # False for --check and --diff
    diff: bool = False
    out: str | None = None  # --out DIR, resolved; targets are relative to it
    # The project the files belong to (codemod.project.Project), read before any file is written,
    # so that every file, in whichever process, sees the same project. None: each file alone.
    project: object | None = field(default=None, compare=False)

    def config(self) -> Config:
        from .ruleset import default_rules

        return Config(markers=self.markers, mindspore_version=self.mindspore_version, rules=default_rules(),
                      project=self.project)


@dataclass(frozen=True)
class FileTask:
    """One file to process: only paths and small numbers, so handing it to a worker costs nothing."""

    index: int  # its position in the run: results are handed on in this order
    path: str  # absolute
    display: str
    target: str | None = None  # --out: the copy's path relative to Settings.out
    size: int = 0  # bytes, as discovered: what the scheduling goes by


# -- bytes -----------------------------------------------------------------------------------


@dataclass
class Decoded:
    text: str
    encoding: str


def decode(data: bytes) -> Decoded:
    """Decode Python source as Python would: BOM, PEP 263 cookie, else UTF-8. Newlines are kept."""
    if b"\0" in data:
        raise ValueError("binary file (contains NUL bytes): left untouched")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        raise ValueError(f"cannot determine the encoding: {exc}: left untouched") from None
    try:
        return Decoded(data.decode(encoding), encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise ValueError(f"cannot decode as {encoding}: {exc}: left untouched") from None


def decode_json(data: bytes) -> Decoded:
    """A notebook is JSON, which is UTF-8 (a BOM is kept as it was)."""
    encoding = "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"
    try:
        return Decoded(data.decode(encoding), encoding)
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8, so not a notebook: {exc}: left untouched") from None


def encode(text: str, encoding: str) -> bytes:
    return text.encode(encoding)


def write_atomic(path: str, data: bytes, like: os.stat_result | None = None, *, durable: bool = True) -> None:
    """Write through a temporary file in the same directory and rename it over ``path``, so an
    interrupted run leaves either the old file or the new one, never half of one. ``like`` gives
    the mode (and, where allowed, the owner) to keep. ``durable`` also survives a power cut (fsync);
    copies under --out skip it, the original is still there."""
    directory, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".torch2ms.tmp", dir=directory or ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        if like is not None and hasattr(os, "chown") and like.st_uid != os.getuid():
            try:
                os.chown(tmp, like.st_uid, like.st_gid)
            except OSError:
                pass  # not ours to give away: the file keeps its content and mode
        # mkstemp creates the file 0600: give it the original's mode, or a new file's usual one.
        os.chmod(tmp, stat.S_IMODE(like.st_mode) if like is not None else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it; set back at once
    os.umask(mask)
    return mask


def unified_diff(display: str, before: str, after: str) -> str:
    """A diff ``patch -p1`` applies, also when the last line has no newline."""
    out = []
    for line in difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                     fromfile=f"a/{display}", tofile=f"b/{display}"):
        out.append(line)
        if not line.endswith(("\n", "\r")):
            out.append("\n\\ No newline at end of file\n")
    return "".join(out)


# -- one file --------------------------------------------------------------------------------


def read_file(path: str) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file (a FIFO or device named *.py is refused, not waited on)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(0, "not a regular file")
        return fh.read(), st


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def is_notebook(path: str) -> bool:
    return path.endswith(NOTEBOOK_SUFFIX)


@dataclass
class Migrated:
    """The text-level outcome, the same for a module and a notebook."""

    code: str
    findings: list[Finding]
    changed: bool
    sites_converted: int = 0
    remaining_torch: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def migrate_text(text: str, display: str, config: Config, notebook: bool = False) -> Migrated:
    """Migrate a module's or a notebook's text. Raises MigrationError when it cannot."""
    if notebook:
        nb = migrate_notebook(text, path=display, config=config)
        return Migrated(nb.code, nb.findings, nb.changed, nb.sites_converted, nb.remaining_torch, nb.problems)
    result = migrate_source(text, path=display, config=config)
    return Migrated(result.code, result.findings, result.changed, count_converted(result), list(result.remaining_torch))


def process_file(task: FileTask, settings: Settings, config: Config) -> FileResult:
    """Read, migrate and write one file. A file the rules' prefilter skips is checked (it must
    decode) and copied under --out, but never parsed: the engine applies the prefilter."""
    fr = FileResult(task.display)
    try:
        data, st = read_file(task.path)
    except OSError as exc:
        fr.error = f"cannot read: {_reason(exc)}"
        return fr
    notebook = is_notebook(task.path)
    try:
        decoded = decode_json(data) if notebook else decode(data)
    except ValueError as exc:
        fr.error = str(exc)
        return _copy_unchanged(fr, task, settings, data, st)
    try:
        migrated = migrate_text(decoded.text, task.display, config, notebook)
    except MigrationError as exc:
        fr.error = f"{exc.line}:{exc.column + 1}: {exc.message}: left untouched"
        return _copy_unchanged(fr, task, settings, data, st)
    except Exception as exc:  # a bug in torch2ms: report it for this file, go on with the others
        fr.error = f"internal error ({type(exc).__name__}: {exc}): left untouched; please report it"
        fr.detail = traceback.format_exc()
        return _copy_unchanged(fr, task, settings, data, st)
    fr.findings = migrated.findings
    fr.sites_converted = migrated.sites_converted
    fr.remaining_torch = migrated.remaining_torch
    fr.problems = migrated.problems
    fr.changed = migrated.changed
    if not fr.changed:
        return _copy_unchanged(fr, task, settings, data, st)
    try:
        new_data = encode(migrated.code, decoded.encoding)
    except UnicodeEncodeError as exc:
        fr.changed = False
        fr.error = f"the migrated text cannot be encoded as {decoded.encoding} ({exc}): left untouched"
        return _copy_unchanged(fr, task, settings, data, st)
    if settings.diff:
        fr.diff = unified_diff(task.display, decoded.text, migrated.code)
    if settings.out is not None:
        _write_copy(fr, task, settings, new_data, st)
    elif settings.write:
        _write_in_place(fr, task.path, new_data, st)
    return fr


def _copy_unchanged(fr: FileResult, task: FileTask, settings: Settings, data: bytes, st: os.stat_result) -> FileResult:
    # --out mirrors every file it looked at, so the copy is a complete tree; the original bytes
    # of a file it could not migrate are copied as they are.
    if settings.out is not None:
        _write_copy(fr, task, settings, data, st)
    return fr


def _write_in_place(fr: FileResult, path: str, data: bytes, st: os.stat_result) -> None:
    if os.path.islink(path):
        path = os.path.realpath(path)  # write the file the link names; the link stays a link
    try:
        now = os.stat(path)
    except FileNotFoundError:
        fr.error = "deleted while torch2ms was running: not written"
        return
    except OSError as exc:
        fr.error = f"cannot write: {_reason(exc)}"
        return
    if (now.st_ino, now.st_size, now.st_mtime_ns) != (st.st_ino, st.st_size, st.st_mtime_ns):
        fr.error = "changed on disk while torch2ms was running: not written (run again)"
        return
    # Even where the rename would succeed (root, or a writable directory), a read-only file says
    # "do not change me".
    if not (st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) or not os.access(path, os.W_OK):
        fr.error = "file is read-only: not modified"
        return
    try:
        write_atomic(path, data, st)
    except OSError as exc:
        fr.error = f"cannot write: {_reason(exc)}"
        return
    fr.written = True


def _write_copy(fr: FileResult, task: FileTask, settings: Settings, data: bytes, st: os.stat_result) -> None:
    assert settings.out is not None and task.target is not None
    try:
        directory = ensure_dir_inside(settings.out, os.path.dirname(task.target))
        target = os.path.join(directory, os.path.basename(task.target))
        if not _same_file_content(target, data, st):  # an up-to-date copy is left alone, mtime too
            write_atomic(target, data, st, durable=False)
    except OSError as exc:
        fr.error = f"cannot write the copy under --out: {_reason(exc)}"
        return
    fr.written = True


def _same_file_content(target: str, data: bytes, st: os.stat_result) -> bool:
    try:
        current = os.lstat(target)
        if not stat.S_ISREG(current.st_mode) or current.st_size != len(data):
            return False
        if stat.S_IMODE(current.st_mode) != stat.S_IMODE(st.st_mode):
            return False
        with open(target, "rb") as fh:
            return fh.read() == data
    except OSError:
        return False


def ensure_dir_inside(root: str, relative: str) -> str:
    """Create ``root/relative`` one component at a time, refusing to pass through a symlink or a
    non-directory, so that nothing is ever written outside ``root``."""
    current = root
    for part in filter(None, relative.split(os.sep)):
        if part in (".", ".."):
            raise OSError(0, f"refusing the path component {part!r}")
        current = os.path.join(current, part)
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            try:
                os.mkdir(current)
                continue
            except FileExistsError:
                st = os.lstat(current)
        if stat.S_ISLNK(st.st_mode):
            raise OSError(0, f"{current} is a symlink: not writing through it")
        if not stat.S_ISDIR(st.st_mode):
            raise OSError(0, f"{current} is not a directory")
    return current


# -- many files ------------------------------------------------------------------------------


class Interrupted(Exception):
    """Ctrl-C: the files in progress were finished, nothing else was started."""

    def __init__(self, done: list[FileResult], total: int):
        super().__init__(f"interrupted after {len(done)} of {total} files")
        self.done = done
        self.total = total


# Below these (files found, and their bytes), workers cost more than they save: a worker process
# takes a few hundredths of a second to load the engine.
MIN_PARALLEL_FILES = 4
MIN_PARALLEL_BYTES = 512 * 1024

_worker_state: tuple[Settings, Config] | None = None


def _work(task: FileTask) -> FileResult:
    """What a worker does with one file (a test may put something else here)."""
    assert _worker_state is not None
    settings, config = _worker_state
    return process_file(task, settings, config)


def _worker(number: int, order: list[FileTask], settings: Settings, shared: "_Shared", results) -> None:
    """A worker process: takes the largest file not yet taken until none is left, and sends the
    parent each result, then None."""
    global _worker_state
    # Ctrl-C reaches the whole process group: the parent decides what stops, and a worker finishes
    # the file it is writing rather than dying in the middle of it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_state = (settings, settings.config())  # the rules, loaded (or inherited) once
    from . import passes  # noqa: F401  (the engine loads them on first use: do it now)

    gc.freeze()  # what every file shares (the rules, the modules) is never scanned again
    while (i := shared.take(front=True, worker=number)) is not None:
        results.send((i, _work(order[i])))
    results.send(None)
    results.close()


class _Shared:
    """The files not yet taken are order[front..back], largest first: workers take from the front,
    the parent from the back, so that all finish together. ``holding[w]`` is the file worker w is
    on (-1: none), so that a worker that dies costs only that file. In shared memory, under one
    lock: handing out a file needs no message and no thread of the parent."""

    def __init__(self, context, files: int, workers: int):
        self.bounds = context.Array("i", [0, files - 1])  # front, back; a lock comes with it
        self.holding = context.Array("i", [-1] * workers, lock=False)

    def take(self, front: bool, worker: int = -1) -> int | None:
        with self.bounds.get_lock():
            first, last = self.bounds[0], self.bounds[1]
            if worker >= 0:
                self.holding[worker] = -1
            if first > last:
                return None
            if front:
                self.bounds[0] = first + 1
                if worker >= 0:
                    self.holding[worker] = first
                return first
            self.bounds[1] = last - 1
            return last

    def stop(self) -> None:
        """Hand out nothing more (Ctrl-C): the files being processed are finished."""
        with self.bounds.get_lock():
            self.bounds[1] = self.bounds[0] - 1


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def run(tasks: Sequence[FileTask], settings: Settings, *, jobs: int,
        on_result: Callable[[FileResult], None], on_progress: Callable[[int], None] | None = None) -> list[FileResult]:
    """Process every task; ``on_result`` gets the results in task order (so the output is the same
    whatever ``jobs`` is), ``on_progress`` the number of files done so far. Raises Interrupted."""
    config = settings.config()
    ordered = _InOrder(len(tasks), on_result, on_progress)
    try:
        if jobs <= 1:
            for task in tasks:
                ordered.add(task.index, process_file(task, settings, config))
        else:
            _run_in_parallel(tasks, settings, config, jobs, ordered)
    except KeyboardInterrupt:
        raise Interrupted(ordered.flush_done(), len(tasks)) from None
    return ordered.results()


def _run_in_parallel(tasks, settings: Settings, config: Config, jobs: int, ordered: "_InOrder") -> None:
    """``jobs`` processes at work: the parent and ``jobs - 1`` workers, the workers taking the
    largest files first and the parent the smallest, so that all finish together and no process
    competes with more busy ones than there are cores. Sizes come from discovery: no file is read
    twice to plan the run."""
    if len(tasks) < MIN_PARALLEL_FILES or sum(t.size for t in tasks) < MIN_PARALLEL_BYTES:
        for task in tasks:
            ordered.add(task.index, process_file(task, settings, config))
        return
    import multiprocessing
    from multiprocessing.connection import wait

    # fork (Linux): a worker starts in milliseconds, with the rules and modules the parent loaded.
    # Elsewhere the platform's default; the worker loads the rules then.
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
    order = sorted(tasks, key=lambda t: (-t.size, t.index))
    shared = _Shared(context, len(order), jobs - 1)
    workers, pipes = _start_workers(context, order, settings, shared, jobs - 1)
    received: set[int] = set()

    def receive(block: bool) -> None:
        """Hand on the results that have arrived; with ``block``, wait until every worker is done.
        A worker that died (its pipe ends without its last None) costs the file it held."""
        while pipes:
            ready = wait(list(pipes), timeout=None if block else 0)
            if not ready:
                return
            for pipe in ready:
                try:
                    message = pipe.recv()
                except EOFError:
                    held = shared.holding[pipes.pop(pipe)]
                    if held >= 0 and held not in received:
                        received.add(held)
                        ordered.add(order[held].index, FileResult(
                            order[held].display,
                            error="the worker process died (killed, or out of memory?): left untouched"))
                    continue
                if message is None:
                    del pipes[pipe]
                    continue
                i, result = message
                received.add(i)
                ordered.add(order[i].index, result)

    try:
        while (i := shared.take(front=False)) is not None:
            ordered.add(order[i].index, process_file(order[i], settings, config))
            receive(block=False)
        receive(block=True)
    except BaseException:
        # Ctrl-C: files not started are dropped; the workers finish (and write) the ones they hold.
        shared.stop()
        try:
            receive(block=True)
        except Exception:  # noqa: BLE001  (a message the interruption cut short: that file is not reported)
            pass
        raise
    finally:
        for process in workers:
            process.join()


def _start_workers(context, order, settings: Settings, shared: "_Shared", count: int):
    """The worker processes, and the pipe each sends its results on (pipe -> worker number)."""
    workers, pipes = [], {}
    for number in range(count):
        reader, writer = context.Pipe(duplex=False)
        process = context.Process(target=_worker, args=(number, order, settings, shared, writer), daemon=True)
        process.start()
        # Only the worker holds the writing end now: its pipe ends when it does, even if it dies,
        # and a worker started later does not inherit it.
        writer.close()
        workers.append(process)
        pipes[reader] = number
    return workers, pipes


class _InOrder:
    """Results arrive in any order; hand them on in task order."""

    def __init__(self, total: int, on_result, on_progress):
        self.slots: list[FileResult | None] = [None] * total
        self.next = 0
        self.done = 0
        self.on_result = on_result
        self.on_progress = on_progress

    def add(self, index: int, result: FileResult) -> None:
        if self.slots[index] is not None:
            return
        self.slots[index] = result
        self.done += 1
        if self.on_progress is not None:
            self.on_progress(self.done)
        while self.next < len(self.slots) and self.slots[self.next] is not None:
            self.on_result(self.slots[self.next])
            self.next += 1

    def flush_done(self) -> list[FileResult]:
        """After an interruption: every finished file, in order (gaps are files not processed)."""
        for i in range(self.next, len(self.slots)):
            if self.slots[i] is not None:
                self.on_result(self.slots[i])
        return [r for r in self.slots if r is not None]

    def results(self) -> list[FileResult]:
        return [r for r in self.slots if r is not None]


# -- finding the files -----------------------------------------------------------------------


@dataclass(frozen=True)
class ExcludePattern:
    """A glob from --exclude or [tool.torch2ms]. Without a ``/`` it matches a file or directory
    name anywhere; with one, a path relative to ``base`` (the current directory for --exclude, the
    pyproject.toml's directory for the table). ``*`` matches across ``/``."""

    glob: str
    base: str

    def matches(self, path: str, name: str) -> bool:
        glob = self.glob.rstrip("/")
        if "/" not in glob:
            return fnmatch.fnmatchcase(name, glob)
        if os.path.isabs(glob):
            return fnmatch.fnmatchcase(path, glob)
        if glob.startswith("./"):
            glob = glob[2:]
        rel = os.path.relpath(path, self.base)
        return not rel.startswith("..") and fnmatch.fnmatchcase(rel, glob)


@dataclass(frozen=True)
class Found:
    path: str  # absolute, as found (not resolved: its directory may be a symlink the user named)
    display: str  # the path as the user spelled its root
    size: int = 0


@dataclass
class Discovery:
    files: list[Found] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. .gitignore could not be honoured


# Directory names that never hold a project's own source.
SKIPPED_DIR_NAMES = frozenset({"__pycache__", "node_modules", "site-packages"})


class _Finder:
    def __init__(self, excludes: Sequence[ExcludePattern], skip: Sequence[str], use_git: bool):
        self.excludes = list(excludes)
        self.skip = {os.path.realpath(p) for p in skip}
        self.use_git = use_git
        self.dir_ok: dict[str, bool] = {}
        self.seen: set[str] = set()
        self.result = Discovery()

    def excluded(self, path: str, name: str) -> bool:
        return any(p.matches(path, name) for p in self.excludes)

    def directory_allowed(self, path: str) -> bool:
        ok = self.dir_ok.get(path)
        if ok is None:
            name = os.path.basename(path)
            ok = not (name.startswith(".") or name in SKIPPED_DIR_NAMES or self.excluded(path, name)
                      # a virtual environment or conda environment: installed packages, not the project
                      or os.path.exists(os.path.join(path, "pyvenv.cfg"))
                      or os.path.isdir(os.path.join(path, "conda-meta"))
                      or (self.skip and os.path.realpath(path) in self.skip))
            self.dir_ok[path] = ok
        return ok

    def add(self, path: str, display: str) -> None:
        key = os.path.realpath(path)
        if key not in self.seen:  # the same file named twice (or via two roots) is done once
            self.seen.add(key)
            try:
                size = os.stat(path).st_size
            except OSError:
                size = 0  # processing it will say what is wrong
            self.result.files.append(Found(path, display, size))

    def root(self, given: str) -> None:
        path = os.path.abspath(given)
        if not os.path.isdir(path):
            # A file named explicitly is taken whatever its suffix, unless an exclude says no.
            if not self.excluded(path, os.path.basename(path)):
                self.add(path, os.path.normpath(given))
            return
        listing = self.git_listing(path) if self.use_git else None
        if listing is None:
            listing = self.walk(path)
        for rel in listing:
            self.add(os.path.join(path, rel), os.path.normpath(os.path.join(given, rel)))

    # A file qualifies when its name has a source suffix, it is a regular file (not a symlink:
    # links are never followed, so nothing outside the roots is reached and no loop can form),
    # and neither it nor a directory on its way down is hidden, skipped or excluded.

    def file_allowed(self, path: str, name: str) -> bool:
        if not name.endswith(SOURCE_SUFFIXES) or name.startswith(".") or self.excluded(path, name):
            return False
        try:
            return stat.S_ISREG(os.lstat(path).st_mode)
        except OSError:
            return False  # gone (a tracked file deleted from the work tree, say)

    def walk(self, top: str) -> list[str]:
        out: list[str] = []
        stack = [""]
        while stack:
            rel_dir = stack.pop()
            directory = os.path.join(top, rel_dir) if rel_dir else top
            try:
                with os.scandir(directory) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                self.result.notes.append(f"{directory}: cannot list: {_reason(exc)}")
                continue
            subdirs = []
            for entry in entries:
                rel = os.path.join(rel_dir, entry.name) if rel_dir else entry.name
                if entry.is_dir(follow_symlinks=False):
                    if self.directory_allowed(entry.path):
                        subdirs.append(rel)
                elif self.file_allowed(entry.path, entry.name):
                    out.append(rel)
            stack.extend(reversed(subdirs))
        return sorted(out, key=lambda r: r.split(os.sep))

    def git_listing(self, top: str) -> list[str] | None:
        """The files git would not ignore under ``top`` (tracked, or untracked and not ignored),
        or None outside a work tree (or without git): then .gitignore is not consulted."""
        if not _maybe_in_work_tree(top):
            return None
        entries = _git(top, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
        if entries is None:
            return None
        if _git_ignores(top):  # the root named is itself ignored: the user asked for it anyway
            return None
        out: list[str] = []
        for entry in sorted(set(filter(None, entries.split("\0")))):
            rel = entry.rstrip("/")
            parts = rel.split("/")
            path = os.path.join(top, *parts)
            if not all(self.directory_allowed(os.path.join(top, *parts[:i])) for i in range(1, len(parts))):
                continue
            if entry.endswith("/") or os.path.isdir(path) and not os.path.islink(path):
                # A submodule or a nested repository: its own files, by its own .gitignore.
                if self.directory_allowed(path):
                    nested = self.git_listing(path)
                    if nested is None:
                        nested = self.walk(path)
                    out.extend(os.path.join(rel, n) for n in nested)
                continue
            if self.file_allowed(path, parts[-1]):
                out.append(os.path.join(*parts))
        return sorted(out, key=lambda r: r.split(os.sep))


def _maybe_in_work_tree(directory: str) -> bool:
    """False when no .git is above ``directory``: no need to start git to learn that."""
    if "GIT_DIR" in os.environ or "GIT_WORK_TREE" in os.environ:
        return True
    while True:
        if os.path.exists(os.path.join(directory, ".git")):
            return True
        parent = os.path.dirname(directory)
        if parent == directory:
            return False
        directory = parent


def _git(cwd: str, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", cwd, *args], capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return os.fsdecode(proc.stdout)


def _git_ignores(directory: str) -> bool:
    parent, name = os.path.split(directory.rstrip(os.sep))
    if not name:
        return False
    try:
        proc = subprocess.run(["git", "-C", parent, "check-ignore", "-q", "--", name], capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def discover(roots: Sequence[str], excludes: Sequence[ExcludePattern] = (), *, skip: Sequence[str] = (),
             use_git: bool = True) -> Discovery:
    """Every Python file and notebook under ``roots``, in a stable order. Directories contribute
    *.py, *.pyi and *.ipynb (honouring .gitignore inside a git work tree); ``skip`` names
    directories never to enter (the --out directory)."""
    finder = _Finder(excludes, skip, use_git)
    for given in roots:
        finder.root(given)
    return finder.result


# -- [tool.torch2ms] in pyproject.toml -------------------------------------------------------


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ProjectConfig:
    path: str | None = None  # the pyproject.toml it came from
    exclude: tuple[ExcludePattern, ...] = ()
    markers: bool | None = None
    mindspore_version: str | None = None


_CONFIG_KEYS = {"exclude": list, "markers": bool, "mindspore-version": str}


def load_project_config(start: str) -> ProjectConfig:
    """The ``[tool.torch2ms]`` table of the nearest pyproject.toml that has one, looking up from
    ``start`` and no further than the top of the repository."""
    import tomllib

    directory = os.path.abspath(start)
    while True:
        candidate = os.path.join(directory, "pyproject.toml")
        if os.path.isfile(candidate):
            try:
                with open(candidate, "rb") as fh:
                    data = tomllib.load(fh)
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"{candidate}: {exc}") from None
            table = data.get("tool", {}).get("torch2ms")
            if table is not None:
                return _project_config(candidate, table)
        parent = os.path.dirname(directory)
        if parent == directory or os.path.exists(os.path.join(directory, ".git")):
            return ProjectConfig()
        directory = parent


def _project_config(path: str, table: object) -> ProjectConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.torch2ms] must be a table")
    values = {}
    for key, value in table.items():
        name = key.replace("_", "-")
        kind = _CONFIG_KEYS.get(name)
        if kind is None:
            raise ConfigError(f"{path}: unknown key {key!r} in [tool.torch2ms] (known: {', '.join(_CONFIG_KEYS)})")
        if kind is list and isinstance(value, str):
            value = [value]
        if not isinstance(value, kind) or (kind is list and not all(isinstance(v, str) for v in value)):
            wanted = {list: "a list of globs", bool: "true or false", str: "a string"}[kind]
            raise ConfigError(f"{path}: [tool.torch2ms] {key} must be {wanted}")
        values[name] = value
    base = os.path.dirname(path)
    return ProjectConfig(
        path=path,
        exclude=tuple(ExcludePattern(g, base) for g in values.get("exclude", ())),
        markers=values.get("markers"),
        mindspore_version=values.get("mindspore-version"),
    )
