"""Finding the files: the roots' ``*.py``, ``*.pyi`` and notebooks, honouring ``.gitignore`` (git is
asked), ``--exclude`` and ``[tool.torch2ms]`` excludes, never following symlinks out of the roots."""

from __future__ import annotations

import fnmatch
import os
import stat
import subprocess
from dataclasses import dataclass, field
from typing import Sequence

from .files import SOURCE_SUFFIXES, reason


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
                self.result.notes.append(f"{directory}: cannot list: {reason(exc)}")
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
