"""One file: read, migrate (``migrate_source``, or ``notebook.migrate_notebook``) and write it.
Whatever goes wrong becomes that file's error; nothing half-written is left."""

from __future__ import annotations

import os
import stat
import traceback
from dataclasses import dataclass, field

from ..engine import plan_source
from ..findings import Finding
from ..model import Config, MigrationError
from ..notebook import count_converted, migrate_notebook
from .files import (
    decode,
    decode_json,
    encode,
    is_notebook,
    read_file,
    reason,
    unified_diff,
    write_atomic,
)


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




@dataclass(frozen=True)
class Settings:
    """What every file of a run is told. Picklable: a worker builds its Config from it once."""

    markers: bool = True
    mindspore_version: str | None = None
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    write: bool = True  # False for --check and --diff
    diff: bool = False
    out: str | None = None  # --out DIR, resolved; targets are relative to it
    # The project the files belong to (codemod.project.Project), read before any file is written,
    # so that every file, in whichever process, sees the same project. None: each file alone.
    project: object | None = field(default=None, compare=False)

    def config(self) -> Config:
        from ..ruleset import default_rules

        return Config(markers=self.markers, mindspore_version=self.mindspore_version, rules=default_rules(),
                      project=self.project, select=self.select, ignore=self.ignore)


@dataclass(frozen=True)
class FileTask:
    """One file to process: only paths and small numbers, so handing it to a worker costs nothing."""

    index: int  # its position in the run: results are handed on in this order
    path: str  # absolute
    display: str
    target: str | None = None  # --out: the copy's path relative to Settings.out
    size: int = 0  # bytes, as discovered: what the scheduling goes by


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
    result = plan_source(text, path=display, config=config).migrate(replacements=False)
    return Migrated(result.code, result.findings, result.changed, count_converted(result), list(result.remaining_torch))


def process_file(task: FileTask, settings: Settings, config: Config) -> FileResult:
    """Read, migrate and write one file. A file the rules' prefilter skips is checked (it must
    decode) and copied under --out, but never parsed: the engine applies the prefilter."""
    fr = FileResult(task.display)
    try:
        data, st = read_file(task.path)
    except OSError as exc:
        fr.error = f"cannot read: {reason(exc)}"
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
        fr.error = f"cannot write: {reason(exc)}"
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
        fr.error = f"cannot write: {reason(exc)}"
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
        fr.error = f"cannot write the copy under --out: {reason(exc)}"
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
