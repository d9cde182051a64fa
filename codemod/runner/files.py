"""Bytes and files: decode and encode source as Python does (PEP 263 cookie, UTF-8 BOM,
newlines kept), read only regular files, write atomically (a temporary file renamed over the
original), and the diffs ``--diff`` prints."""

from __future__ import annotations

import difflib
import io
import os
import stat
import tempfile
import tokenize
from dataclasses import dataclass

PYTHON_SUFFIXES = (".py", ".pyi")
NOTEBOOK_SUFFIX = ".ipynb"
SOURCE_SUFFIXES = PYTHON_SUFFIXES + (NOTEBOOK_SUFFIX,)




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
        os.chmod(tmp, stat.S_IMODE(like.st_mode) if like is not None else 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def umask() -> int:
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


def read_file(path: str) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file (a FIFO or device named *.py is refused, not waited on)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(0, "not a regular file")
        return fh.read(), st


def reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def is_notebook(path: str) -> bool:
    return path.endswith(NOTEBOOK_SUFFIX)


