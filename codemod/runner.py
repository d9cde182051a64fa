"""Files: discover, read (encoding and newlines preserved), migrate, write atomically.

Layering: ``migrate_source`` (text) <- ``migrate_file`` (one file) <- ``run`` (many paths).
"""

from __future__ import annotations

import io
import os
import tempfile
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from .engine import Config, MigrationError, MigrationResult, migrate_source
from .findings import Finding

PYTHON_SUFFIXES = (".py", ".pyi")


@dataclass
class FileResult:
    path: str
    result: MigrationResult | None = None
    error: str | None = None  # the file could not be processed (nothing was written)
    written: bool = False
    original: str | None = None

    @property
    def changed(self) -> bool:
        return self.result is not None and self.result.changed

    @property
    def findings(self) -> list[Finding]:
        return self.result.findings if self.result is not None else []


@dataclass
class Summary:
    files: list[FileResult] = field(default_factory=list)

    @property
    def scanned(self) -> int:
        return len(self.files)

    @property
    def changed(self) -> int:
        return sum(1 for f in self.files if f.changed)

    @property
    def errors(self) -> list[FileResult]:
        return [f for f in self.files if f.error]

    @property
    def sites_converted(self) -> int:
        return sum(len([s for s in f.result.sites if s.converted and s.kind != "imports" and s.edits])
                   for f in self.files if f.result is not None)

    def findings_by_severity(self) -> dict[str, int]:
        counts = {"error": 0, "warning": 0, "info": 0}
        for f in self.files:
            for finding in f.findings:
                counts[finding.severity] += 1
        return counts


# -- reading and writing ---------------------------------------------------------------------


@dataclass
class Decoded:
    text: str
    encoding: str


def decode(data: bytes) -> Decoded:
    """Decode Python source as Python would: BOM, PEP 263 cookie, else UTF-8. Newlines are kept."""
    if b"\0" in data:
        raise ValueError("binary file (contains NUL bytes)")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        raise ValueError(f"cannot determine the encoding: {exc}") from None
    try:
        return Decoded(data.decode(encoding), encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise ValueError(f"cannot decode as {encoding}: {exc}") from None


def encode(text: str, encoding: str) -> bytes:
    return text.encode(encoding)


def write_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write through a temporary file in the same directory and rename it over the target, so an
    interrupted run leaves either the old file or the new one, never half of one."""
    directory = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".torch2ms.tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


# -- one file --------------------------------------------------------------------------------


def migrate_text_of(path: Path, config: Config, display: str | None = None) -> tuple[FileResult, Decoded | None]:
    display = display or str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return FileResult(display, error=f"cannot read: {exc.strerror or exc}"), None
    try:
        decoded = decode(data)
    except ValueError as exc:
        return FileResult(display, error=str(exc)), None
    try:
        result = migrate_source(decoded.text, path=display, config=config)
    except MigrationError as exc:
        return FileResult(display, error=f"{exc.line}:{exc.column + 1}: {exc.message}"), decoded
    return FileResult(display, result=result, original=decoded.text), decoded


def migrate_file(path: Path, config: Config, *, write: bool = True, out: Path | None = None,
                 root: Path | None = None, display: str | None = None) -> FileResult:
    fr, decoded = migrate_text_of(path, config, display)
    if fr.result is None or decoded is None:
        return fr
    if out is not None:
        target = out / path.relative_to(root) if root is not None else out / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        data = encode(fr.result.code, decoded.encoding) if fr.changed else path.read_bytes()
        write_atomic(target, data, path.stat().st_mode)
        fr.written = True
        return fr
    if write and fr.changed:
        try:
            data = encode(fr.result.code, decoded.encoding)
        except UnicodeEncodeError as exc:
            fr.error = f"the migrated text cannot be encoded as {decoded.encoding}: {exc}"
            return fr
        if not os.access(path, os.W_OK):
            fr.error = "file is read-only: not modified"
            return fr
        try:
            st = path.stat()
            write_atomic(path, data, st.st_mode)
        except OSError as exc:
            fr.error = f"cannot write: {exc.strerror or exc}"
            return fr
        fr.written = True
    return fr


# -- many files ------------------------------------------------------------------------------


def discover(paths: Iterable[Path], excludes: Iterable[str] = ()) -> Iterator[tuple[Path, Path]]:
    """(file, root) for every Python file under the given paths, in a stable order. Explicitly
    named files are taken whatever their suffix; directories contribute *.py and *.pyi."""
    import fnmatch

    excludes = list(excludes)

    def excluded(rel: str) -> bool:
        return any(fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(os.path.basename(rel), pat) for pat in excludes)

    for root in paths:
        if root.is_dir():
            for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                                     and not excluded(os.path.relpath(os.path.join(dirpath, d), root)))
                for name in sorted(filenames):
                    if not name.endswith(PYTHON_SUFFIXES):
                        continue
                    full = Path(dirpath) / name
                    if full.is_symlink() or excluded(os.path.relpath(full, root)):
                        continue
                    yield full, root
        else:
            yield root, root.parent
