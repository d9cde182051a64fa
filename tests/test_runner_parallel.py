"""Many files at once: --jobs gives the same result whatever N is, Ctrl-C stops cleanly, and a
progress bar shows on a terminal only."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from codemod import migrate_source
from codemod.cli import main
from codemod.runner import parallel

BN = "import torch.nn as nn\n\nbn = nn.BatchNorm2d(3, momentum=0.1)\n"


def module_text(seed: int, blocks: int = 40) -> str:
    """A module with many normalization layers (a realistic amount of work per file)."""
    parts = ["import torch\nimport torch.nn as nn\n\n"]
    for i in range(blocks):
        parts.append(
            f"class Block{seed}_{i}(nn.Module):\n"
            f"    def __init__(self, c={i + 1}):\n"
            f"        super().__init__()\n"
            f"        self.conv = nn.Conv2d(c, c, 3, padding=1)\n"
            f"        self.bn = nn.BatchNorm2d(c, momentum=0.{(seed + i) % 9 + 1}, eps=1e-3)\n"
            f"        self.ln = nn.LayerNorm(c)\n\n"
            f"    def forward(self, x):\n"
            f"        return self.ln(self.bn(self.conv(x)))\n\n\n")
    return "".join(parts)


def varied_tree(root: Path) -> None:
    """Files of every kind a run meets: migrated, untouched, with findings, broken, notebooks."""
    (root / "pkg/sub").mkdir(parents=True)
    for i in range(8):
        (root / f"pkg/model_{i}.py").write_text(module_text(i, blocks=6))
    (root / "pkg/plain.py").write_text("x = 1\n")
    (root / "pkg/sub/none.py").write_text("import torch.nn as nn\nbn = nn.BatchNorm2d(3, momentum=None)\n")
    (root / "pkg/sub/py2.py").write_text("import torch.nn as nn\nprint 'x'\nnn.BatchNorm2d(3)\n")
    (root / "pkg/sub/crlf.py").write_bytes(BN.replace("\n", "\r\n").encode())
    cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": BN.splitlines(True)}
    (root / "pkg/nb.ipynb").write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5},
                                                  indent=1) + "\n")


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


_real_work = parallel._work


def record_pid_and_work(task):
    """The workers' entry point, leaving a trace of which process ran it."""
    with open(os.environ["TORCH2MS_TEST_PIDS"], "a") as fh:
        fh.write(f"{os.getpid()}\n")
    return _real_work(task)


def after_the_worker_starts(trace: Path):
    """process_file for the parent: it starts once a worker has left ``trace`` (or after 2 minutes)."""
    real_process_file, parent = parallel.process_file, os.getpid()

    def process_file(task, *args):
        deadline = time.monotonic() + 120
        while os.getpid() == parent and not trace.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return real_process_file(task, *args)

    return process_file


def test_jobs_1_and_2_give_byte_identical_results(tmp_path, monkeypatch):
    monkeypatch.setattr(parallel, "MIN_PARALLEL_BYTES", 0)  # a small tree, but through the pool
    monkeypatch.setattr(parallel, "_work", record_pid_and_work)
    pids = tmp_path / "pids"
    monkeypatch.setenv("TORCH2MS_TEST_PIDS", str(pids))
    outputs = {}
    for jobs in ("1", "2"):
        root = tmp_path / f"j{jobs}" / "work"
        varied_tree(root)
        if jobs == "2":  # the parent waits for the worker's first file (a loaded machine starts it late)
            monkeypatch.setattr(parallel, "process_file", after_the_worker_starts(pids))
        monkeypatch.chdir(root)
        results = [CliRunner().invoke(main, ["migrate", "pkg", "--jobs", jobs, *extra], catch_exceptions=False)
                   for extra in (["--diff", "-v"], ["--out", "../out", "--report", "../report.json"],
                                 ["--report", "../report.sarif"])]
        outputs[jobs] = {
            "exit": [r.exit_code for r in results],
            "stdout": [r.stdout for r in results],
            "stderr": [r.stderr for r in results],
            "out": tree_bytes(root.parent / "out"),
            "in_place": tree_bytes(root),
            "json": (root.parent / "report.json").read_bytes(),
            "sarif": (root.parent / "report.sarif").read_text().replace(root.as_uri(), "ROOT"),
        }
    assert outputs["1"] == outputs["2"]
    assert outputs["1"]["exit"] == [2, 2, 2]  # py2.py
    assert "momentum=0.9" in outputs["1"]["in_place"]["pkg/model_0.py"].decode()
    worker_pids = set(pids.read_text().split())
    assert worker_pids and str(os.getpid()) not in worker_pids  # --jobs 2 did use other processes


def big_tree(root: Path, files: int, blocks: int) -> dict[str, str]:
    (root / "src").mkdir(parents=True)
    sources = {}
    for i in range(files):
        text = module_text(i, blocks)
        (root / f"src/m{i:03}.py").write_text(text)
        sources[f"src/m{i:03}.py"] = text
    return sources


def torch2ms(*args: str) -> list[str]:
    return [sys.executable, "-c", "from codemod.cli import main; main()", "migrate", *args]


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="POSIX process groups")
def test_ctrl_c_stops_cleanly_and_leaves_no_half_written_file(tmp_path):
    sources = big_tree(tmp_path, files=80, blocks=20)
    proc = subprocess.Popen(torch2ms("src", "--jobs", "2", "-q"), cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if any((tmp_path / name).read_text() != text for name, text in sources.items()):
            break  # the run is writing: interrupt it now, as a terminal's Ctrl-C would
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert b"interrupted" in err
    migrated = 0
    for name, text in sources.items():
        now = (tmp_path / name).read_text()
        if now != text:
            assert now == migrate_source(text).code, f"{name} is neither the original nor the migrated file"
            migrated += 1
    assert 0 < migrated < len(sources)  # it stopped part way
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # no worker left behind


def read_pty(fd: int, proc: subprocess.Popen) -> bytes:
    data = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the other side closed
                break
            if not chunk:
                break
            data += chunk
        elif proc.poll() is not None:
            break
    return data


@pytest.mark.parametrize("quiet", [False, True])
def test_progress_bar_on_a_terminal_only(tmp_path, quiet):
    big_tree(tmp_path, files=60, blocks=1)
    args = torch2ms("src", "--check", "--jobs", "1", *(["-q"] if quiet else []))
    master, slave = pty.openpty()
    on_tty = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    terminal = read_pty(master, on_tty)
    on_tty.wait(timeout=120)
    os.close(master)
    piped = subprocess.run(args, cwd=tmp_path, capture_output=True, timeout=120)
    assert on_tty.returncode == piped.returncode == 1
    bar = b"/60 files"
    assert (bar in terminal) is not quiet
    assert bar not in piped.stderr and b"\r" not in piped.stderr
    if not quiet:
        assert b"60 files scanned, 60 would change" in terminal
        assert terminal.rstrip().endswith(b"info")  # the bar was wiped before the summary


def test_small_runs_stay_in_one_process(tmp_path, monkeypatch):
    (tmp_path / "a.py").write_text(BN)
    monkeypatch.chdir(tmp_path)

    def no_workers(*args, **kwargs):
        raise AssertionError("workers were started for one small file")

    monkeypatch.setattr(parallel, "_start_workers", no_workers)
    result = CliRunner().invoke(main, ["migrate", ".", "--jobs", "8"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "momentum=0.9" in (tmp_path / "a.py").read_text()


def die_on_model_3(task):
    if task.path.endswith("model_3.py"):
        Path(os.environ["TORCH2MS_TEST_DIED"]).touch()
        os._exit(1)  # as if the kernel's OOM killer took the worker
    return _real_work(task)


def test_a_worker_that_dies_costs_only_the_files_it_held(tmp_path, monkeypatch):
    monkeypatch.setattr(parallel, "MIN_PARALLEL_BYTES", 0)
    monkeypatch.setattr(parallel, "_work", die_on_model_3)
    varied_tree(tmp_path)
    model_3 = module_text(3, blocks=7)  # the largest file: the one the worker takes first
    (tmp_path / "pkg/model_3.py").write_text(model_3)
    died_flag = tmp_path / "died"
    monkeypatch.setenv("TORCH2MS_TEST_DIED", str(died_flag))
    # The parent starts only once the worker has died: on a loaded machine it could otherwise do
    # every file itself before the worker took one.
    monkeypatch.setattr(parallel, "process_file", after_the_worker_starts(died_flag))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["migrate", "pkg", "--jobs", "2"], catch_exceptions=False)
    assert result.exit_code == 2
    died = [line.split(":")[0] for line in result.stderr.splitlines() if "the worker process died" in line]
    assert died == ["pkg/model_3.py"]  # the file it held, and no other
    assert "Traceback" not in result.stderr
    assert (tmp_path / "pkg/model_3.py").read_text() == model_3
    for i in (0, 1, 2, 4, 5, 6, 7):
        assert (tmp_path / f"pkg/model_{i}.py").read_text() == migrate_source(module_text(i, blocks=6)).code
    assert "momentum=0.9" in (tmp_path / "pkg/sub/crlf.py").read_text()
