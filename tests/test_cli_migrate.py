"""`torch2ms migrate` as a user runs it (issue 2's CLI section): what lands on disk, on stdout and
stderr, and the exit code. Every test runs the real command on a temporary tree."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from codemod import migrate_source
from codemod.cli import main

BN = "import torch.nn as nn\n\nbn = nn.BatchNorm2d(3, momentum=0.1)\n"
PLAIN = "import os\n\nprint(os.getcwd())\n"
TORCH_NO_NORM = "import torch\n\ntorch.manual_seed(3)\n"  # torch, but nothing the rules cover
OLD = 1_000_000_000  # a fixed mtime in the past: a rewrite cannot keep it by accident


def migrated(source: str) -> str:
    code = migrate_source(source).code
    assert code != source
    return code


def run(*args: str, input: str | bytes | None = None):
    return CliRunner().invoke(main, ["migrate", *args], input=input, catch_exceptions=False)


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    os.utime(path, (OLD, OLD))
    return path


def snapshot(root: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file under root: bytes, mtime and mode."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            out[str(p.relative_to(root))] = (p.read_bytes(), st.st_mtime_ns, stat.S_IMODE(st.st_mode))
    return out


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "src/model.py", BN)
    write(tmp_path / "src/util.py", PLAIN)
    write(tmp_path / "src/pkg/tensors.py", TORCH_NO_NORM)
    return tmp_path


def test_in_place_rewrites_only_the_files_that_change(tree):
    before = snapshot(tree)
    result = run("src")
    assert result.exit_code == 0, result.output
    assert (tree / "src/model.py").read_text() == migrated(BN)
    assert "momentum=0.9" in (tree / "src/model.py").read_text()
    after = snapshot(tree)
    for untouched in ("src/util.py", "src/pkg/tensors.py"):
        assert after[untouched] == before[untouched]  # bytes and mtime
    assert "3 files scanned, 1 changed" in result.stderr
    assert not list(tree.rglob("*.tmp"))


def test_second_run_changes_nothing(tree):
    run("src")
    before = snapshot(tree)
    result = run("src")
    assert result.exit_code == 0
    assert snapshot(tree) == before
    assert "0 changed" in result.stderr


def test_check_writes_nothing_and_exits_1_when_something_would_change(tree):
    before = snapshot(tree)
    result = run("--check", "src")
    assert result.exit_code == 1
    assert "would migrate src/model.py" in result.stderr
    assert "1 would change" in result.stderr
    assert snapshot(tree) == before
    run("src")
    assert run("--check", "src").exit_code == 0


def test_diff_prints_a_patch_and_writes_nothing(tree):
    before = snapshot(tree)
    result = run("--diff", "src")
    assert result.exit_code == 1
    assert snapshot(tree) == before
    lines = result.stdout.splitlines()
    assert lines[0] == "--- a/src/model.py" and lines[1] == "+++ b/src/model.py"
    assert "-bn = nn.BatchNorm2d(3, momentum=0.1)" in lines
    assert "+bn = nn.BatchNorm2d(3, momentum=0.9)" in lines
    assert "util.py" not in result.stdout


@pytest.mark.skipif(shutil.which("patch") is None, reason="needs patch(1)")
def test_diff_applies_with_patch_even_without_a_final_newline(tree):
    source = BN.rstrip("\n")
    write(tree / "src/model.py", source)
    diff = run("--diff", "src").stdout
    assert "\\ No newline at end of file" in diff
    subprocess.run(["patch", "-p1", "--quiet"], input=diff.encode(), cwd=tree, check=True)
    assert (tree / "src/model.py").read_text() == migrated(source)


def test_out_mirrors_the_tree_and_leaves_the_sources_alone(tree):
    before = snapshot(tree)
    result = run("src", "--out", "migrated")
    assert result.exit_code == 0, result.output
    copies = snapshot(tree / "migrated")
    assert sorted(copies) == ["model.py", "pkg/tensors.py", "util.py"]
    assert copies["model.py"][0].decode() == migrated(BN)
    assert copies["util.py"][0] == before["src/util.py"][0]
    assert {k: v for k, v in snapshot(tree).items() if not k.startswith("migrated/")} == before
    # Nothing outside DIR: the only new things are under migrated/.
    assert sorted(p.name for p in tree.iterdir()) == ["migrated", "src"]


def test_out_rerun_leaves_up_to_date_copies_alone_and_skips_its_own_directory(tree):
    assert run(".", "--out", "migrated").exit_code == 0
    first = snapshot(tree / "migrated")
    result = run(".", "--out", "migrated")  # migrated/ lies inside the tree being migrated
    assert result.exit_code == 0
    assert "3 files scanned" in result.stderr
    assert snapshot(tree / "migrated") == first  # mtimes too
    assert not (tree / "migrated/migrated").exists()


def test_out_never_writes_through_a_symlink_out_of_the_directory(tree, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (tree / "migrated").mkdir()
    (tree / "migrated/pkg").symlink_to(outside, target_is_directory=True)
    result = run("src", "--out", "migrated")
    assert result.exit_code == 2
    assert "src/pkg/tensors.py: error:" in result.stderr and "symlink" in result.stderr
    assert list(outside.iterdir()) == []
    assert (tree / "migrated/model.py").read_text() == migrated(BN)


def test_out_must_not_be_the_source_directory(tree):
    before = snapshot(tree)
    result = run("src", "--out", "src")
    assert result.exit_code == 2
    assert "--out" in result.stderr
    assert snapshot(tree) == before


def test_stdin_to_stdout():
    result = run("-", input=BN)
    assert result.exit_code == 0
    assert result.stdout == migrated(BN)


def test_stdin_with_diff_and_check():
    diff = run("--diff", "-", input=BN)
    assert diff.exit_code == 1
    assert "+bn = nn.BatchNorm2d(3, momentum=0.9)" in diff.stdout
    check = run("--check", "-", input=BN)
    assert check.exit_code == 1 and check.stdout == ""
    assert run("--check", "-", input=PLAIN).exit_code == 0


def test_stdin_that_does_not_parse_passes_through_with_exit_2():
    broken = "print 'python 2'\nimport torch.nn as nn\nnn.BatchNorm2d(3)\n"
    result = run("-", input=broken)
    assert result.exit_code == 2
    assert result.stdout == broken
    assert "syntax error" in result.stderr


@pytest.mark.parametrize("args", [
    ["does/not/exist.py"],
    ["src", "--report", "report.txt"],
    ["-", "src"],
    ["src", "--jobs", "-1"],
    ["src", "--mindspore-version", "latest"],
])
def test_usage_errors_exit_2_and_touch_nothing(tree, args):
    before = snapshot(tree)
    assert run(*args).exit_code == 2
    assert snapshot(tree) == before


def test_encodings_newlines_and_mode_are_preserved(tree):
    cases = {
        "bom.py": ("\ufeff" + BN + "# é\n", "utf-8-sig"),
        "latin1.py": ("# -*- coding: latin-1 -*-\n" + BN + "s = 'café'\n", "latin-1"),
        "crlf.py": (BN.replace("\n", "\r\n"), "utf-8"),
    }
    for name, (text, encoding) in cases.items():
        write(tree / "enc" / name, text.encode("utf-8" if encoding == "utf-8-sig" else encoding))
    os.chmod(tree / "enc/crlf.py", 0o755)
    result = run("enc")
    assert result.exit_code == 0, result.output
    for name, (text, encoding) in cases.items():
        data = (tree / "enc" / name).read_bytes()
        body = text[1:] if text.startswith("\ufeff") else text
        expected = migrated(body)
        if encoding == "utf-8-sig":
            assert data == b"\xef\xbb\xbf" + expected.encode("utf-8")
        else:
            assert data == expected.encode(encoding)
    assert b"\r\n" in (tree / "enc/crlf.py").read_bytes() and b"\n" not in (tree / "enc/crlf.py").read_bytes().replace(b"\r\n", b"")
    assert stat.S_IMODE((tree / "enc/crlf.py").stat().st_mode) == 0o755


def test_a_file_that_does_not_parse_is_reported_and_left_alone(tree):
    bad = write(tree / "src/py2.py", "import torch.nn as nn\nprint 'hello'\nbn = nn.BatchNorm2d(3)\n")
    before = bad.read_bytes(), bad.stat().st_mtime_ns
    result = run("src")
    assert result.exit_code == 2
    assert "src/py2.py: error: 2:" in result.stderr
    assert (bad.read_bytes(), bad.stat().st_mtime_ns) == before
    assert (tree / "src/model.py").read_text() == migrated(BN)  # the others are still processed


def test_files_that_cannot_be_processed_are_reported_and_the_run_goes_on(tree):
    write(tree / "src/binary.py", b"nn.BatchNorm2d\0\x01\x02")
    write(tree / "src/bad_utf8.py", b"import torch.nn as nn\nbn = nn.BatchNorm2d(3)  # \xff\xfe\n")
    write(tree / "src/empty.py", b"")
    readonly = write(tree / "src/readonly.py", BN)
    os.chmod(readonly, 0o444)
    before = snapshot(tree)
    result = run("src")
    assert result.exit_code == 2
    assert "src/binary.py: error: binary file" in result.stderr
    assert "src/bad_utf8.py: error: cannot decode" in result.stderr
    assert "src/readonly.py: error: file is read-only" in result.stderr
    assert "empty.py" not in result.stderr
    after = snapshot(tree)
    for name in ("binary.py", "bad_utf8.py", "empty.py", "readonly.py"):
        assert after[f"src/{name}"] == before[f"src/{name}"]
    assert (tree / "src/model.py").read_text() == migrated(BN)
    assert "3 files not (fully) processed" in result.stderr
    assert not list(tree.rglob("*.tmp"))


def test_a_ten_megabyte_file(tree):
    big = write(tree / "src/generated.py", "".join(f"value_{i} = {i} * 2  # generated\n" for i in range(330_000)))
    assert big.stat().st_size > 10_000_000
    before = snapshot(tree)
    result = run("src")
    assert result.exit_code == 0
    assert snapshot(tree)["src/generated.py"] == before["src/generated.py"]
    assert "4 files scanned, 1 changed" in result.stderr


def test_a_file_deleted_while_the_run_goes_on_is_not_recreated(tree, monkeypatch):
    from codemod.runner import one_file

    real = one_file.migrate_text

    def and_delete(text, display, config, notebook=False):
        if display.endswith("model.py"):
            os.unlink("src/model.py")
        return real(text, display, config, notebook)

    monkeypatch.setattr(one_file, "migrate_text", and_delete)
    write(tree / "src/other.py", BN)
    result = run("src", "--jobs", "1")
    assert result.exit_code == 2
    assert "src/model.py: error: deleted while torch2ms was running" in result.stderr
    assert not (tree / "src/model.py").exists()
    assert (tree / "src/other.py").read_text() == migrated(BN)


def test_a_file_edited_while_the_run_goes_on_keeps_the_edit(tree, monkeypatch):
    from codemod.runner import one_file

    real = one_file.migrate_text

    def and_edit(text, display, config, notebook=False):
        (tree / "src/model.py").write_text(BN + "# saved by an editor meanwhile\n")
        return real(text, display, config, notebook)

    monkeypatch.setattr(one_file, "migrate_text", and_edit)
    result = run("src/model.py")
    assert result.exit_code == 2
    assert "changed on disk while torch2ms was running" in result.stderr
    assert (tree / "src/model.py").read_text() == BN + "# saved by an editor meanwhile\n"


def test_interrupted_while_writing_leaves_the_old_file_and_no_temporary(tree, monkeypatch):
    def interrupt(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    before = snapshot(tree)
    result = run("src", "--jobs", "1")
    assert result.exit_code == 130
    assert "interrupted" in result.stderr
    assert snapshot(tree) == before
    assert sorted(p.name for p in (tree / "src").iterdir()) == ["model.py", "pkg", "util.py"]


def test_strict_fails_on_changes_and_on_error_findings(tree):
    assert run("--strict", "src").exit_code == 1  # it changed a file
    assert run("--strict", "src").exit_code == 0  # nothing left to do
    write(tree / "src/none.py", "import torch.nn as nn\nbn = nn.BatchNorm2d(3, momentum=None)\n")
    result = run("--strict", "--check", "src/none.py")
    assert result.exit_code == 1
    assert "[error]" in result.stderr


def test_out_through_a_symlinked_root_mirrors_under_the_name_given(tree):
    (tree / "link").symlink_to(tree / "src", target_is_directory=True)
    result = run("link", "--out", "migrated")
    assert result.exit_code == 0, result.output
    assert (tree / "migrated/model.py").read_text() == migrated(BN)
    assert sorted(snapshot(tree / "migrated")) == ["model.py", "pkg/tensors.py", "util.py"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_a_path_that_cannot_be_read_is_reported_without_waiting_on_it(tree):
    os.mkfifo(tree / "src/pipe.py")
    result = run("src/pipe.py", "src/model.py")
    assert result.exit_code == 2
    assert "src/pipe.py: error: cannot read: not a regular file" in result.stderr
    assert (tree / "src/model.py").read_text() == migrated(BN)


