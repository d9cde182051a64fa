#!/usr/bin/env python3
"""Whole-repository benchmark on real code: torch2ms against LibCST baselines, side by side.

    .venv/bin/python benchmarks/bench_repo.py                 # timm + torchvision (+ any --package)
    .venv/bin/python benchmarks/bench_repo.py --package monai==1.6.1 --repeat 5

The corpus comes from PyPI (``pip download --no-deps``: torchvision's wheel without torch) and is
unpacked, .py files only, under benchmarks/.corpus/ (git-ignored), once. Then, on that tree:

  (a) ``torch2ms migrate CORPUS --out DIR`` with --jobs 1 and --jobs 2 (the installed command);
  (b) the floor: LibCST parse + regenerate of only the files that needed changes;
  (c) naive: LibCST parse of every file;

each in its own process, timed from start to exit (best of --repeat), with its peak RSS (the
largest process, and the whole process tree sampled). Then robustness on the same corpus: errors
(each checked to be source Python cannot parse), outputs that do not parse, changes on a second run,
and files the prefilter skipped that the engine would have changed (it runs on them without one).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / ".corpus"
DEFAULT_PACKAGES = ["timm==1.0.31", "torchvision==0.29.1"]

TARGETS = """targets (2 cores): (a) --jobs 1 within 1.5x of (b); (a) --jobs 1 >= 10x faster than (c);
         --jobs 2 >= 1.6x faster than --jobs 1 when >= 100 files change; peak RSS < 300 MB;
         reading the project adds <= 20% to (a) --jobs 1 (compared with (a'), each file alone)"""


# -- the corpus --------------------------------------------------------------------------------


def fetch(specs: list[str]) -> list[tuple[str, str, Path]]:
    """(name, version, tree) per package: downloaded and unpacked once, then reused."""
    downloads = CORPUS / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    out = []
    for spec in specs:
        name = re.split(r"[=<>!~ ]", spec, maxsplit=1)[0]
        archive = _archive_for(spec, name, downloads)
        version = _version_of(archive, name)
        tree = CORPUS / "tree" / f"{name}-{version}"
        if not tree.is_dir():
            _unpack_python(archive, tree)
        out.append((name, version, tree))
    return out


def _archive_for(spec: str, name: str, downloads: Path) -> Path:
    pinned = "==" in spec
    if pinned:
        version = spec.split("==", 1)[1]
        for found in _archives(downloads, name):
            if _version_of(found, name) == version:
                return found
    before = set(downloads.iterdir())
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(downloads), spec],
                   check=True)
    new = [p for p in set(downloads.iterdir()) - before]
    candidates = new or _archives(downloads, name)
    if not candidates:
        raise SystemExit(f"pip download {spec} produced nothing")
    return max(candidates, key=lambda p: p.stat().st_mtime)


def _archives(downloads: Path, name: str) -> list[Path]:
    norm = re.sub(r"[-_.]+", "_", name).lower()
    return [p for p in downloads.iterdir() if re.sub(r"[-_.]+", "_", p.name).lower().startswith(norm + "_")]


def _version_of(archive: Path, name: str) -> str:
    stem = archive.name
    for suffix in (".whl", ".tar.gz", ".zip"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    rest = stem[len(name) + 1:]
    return rest.split("-", 1)[0]


def _unpack_python(archive: Path, tree: Path) -> None:
    tmp = tree.with_name(tree.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if archive.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                if member.endswith(".py") and ".." not in member.split("/"):
                    zf.extract(member, tmp)
    else:
        with tarfile.open(archive) as tf:
            members = [m for m in tf.getmembers() if m.isfile() and m.name.endswith(".py") and ".." not in m.name.split("/")]
            tf.extractall(tmp, members=members, filter="data")
    tmp.rename(tree)


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class Measure:
    wall: float
    cpu: float
    peak_process_mb: float  # the largest single process of the command (its own or a worker)
    peak_tree_mb: float = 0.0  # the whole process tree together, sampled (one extra run)
    returncode: int = 0


# Each timed run goes through a fresh wrapper process, so that getrusage(RUSAGE_CHILDREN) gives
# the CPU time and the largest RSS of that command alone (both accumulate over a process's life).
WRAPPER = r"""
import json, resource, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "maxrss_kb": usage.ru_maxrss,
                  "returncode": proc.returncode}))
"""


def measure(cmd: list[str], stdin_path: Path | None = None) -> Measure:
    with open(stdin_path or os.devnull, "rb") as stdin:
        out = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], stdin=stdin, capture_output=True, text=True,
                             check=True).stdout
    data = json.loads(out)
    return Measure(data["wall"], data["cpu"], data["maxrss_kb"] / 1024, returncode=data["returncode"])


def peak_tree_mb(cmd: list[str], stdin_path: Path | None = None) -> float:
    """The peak of the summed RSS of the command and its workers, sampled every 50 ms."""
    import psutil

    with open(stdin_path or os.devnull, "rb") as stdin:
        proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        root = psutil.Process(proc.pid)
        peak = 0
        while proc.poll() is None:
            total = 0
            try:
                for p in [root, *root.children(recursive=True)]:
                    total += p.memory_info().rss
            except psutil.Error:
                pass
            peak = max(peak, total)
            time.sleep(0.05)
    return peak / 2**20


def best_of(repeat: int, run, cmd_for_memory) -> tuple[Measure, list[float]]:
    results = [run(i) for i in range(repeat)]
    best = min(results, key=lambda m: m.wall)
    best.peak_process_mb = max(m.peak_process_mb for m in results)
    best.peak_tree_mb = peak_tree_mb(*cmd_for_memory())
    return best, [m.wall for m in results]


LIBCST_SCRIPT = r"""
import sys, time
t0 = time.perf_counter()
import libcst
paths = sys.stdin.read().split("\0")
regenerate = sys.argv[1] == "regenerate"
for path in filter(None, paths):
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        module = libcst.parse_module(data)
    except Exception:
        continue
    if regenerate:
        module.bytes
print(time.perf_counter() - t0)
"""


def libcst_command(paths: list[Path], regenerate: bool, work: Path) -> tuple[list[str], Path]:
    """The baseline as a command reading its file list from stdin."""
    listing = work / ("changed.paths" if regenerate else "all.paths")
    listing.write_text("\0".join(map(str, paths)))
    return [sys.executable, "-c", LIBCST_SCRIPT, "regenerate" if regenerate else "parse"], listing


def _spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def parallel_capacity() -> float:
    """How many times faster two processes finish two equal pure-Python loops than one process
    does: ~2 on an idle 2-core machine, less when other work holds a core. The ceiling for --jobs 2."""
    from multiprocessing import get_context

    n = 3_000_000
    start = time.perf_counter()
    _spin(n)
    _spin(n)
    serial = time.perf_counter() - start
    with get_context("fork").Pool(2) as pool:
        pool.map(_spin, [1, 1])  # started before the clock
        start = time.perf_counter()
        pool.map(_spin, [n, n], chunksize=1)
        parallel = time.perf_counter() - start
    return serial / parallel


# -- the run -----------------------------------------------------------------------------------


def compile_package() -> None:
    """Byte-compile torch2ms as ``pip install`` does: with an editable install (and
    PYTHONDONTWRITEBYTECODE set, as on this machine) every run would compile the modules edited
    since the last .pyc was written, which no installed copy does."""
    import codemod

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(codemod.__file__).parent)],
                   check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""})


def torch2ms_command() -> list[str]:
    script = Path(sys.executable).with_name("torch2ms")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from codemod.cli import main; main()"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", action="append", default=[], metavar="SPEC",
                        help="a further PyPI package for the corpus (e.g. monai==1.6.1); repeatable")
    parser.add_argument("--only", nargs="*", metavar="SPEC", help="the corpus is exactly these packages")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per measurement (best is reported)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    specs = args.only if args.only else DEFAULT_PACKAGES + args.package
    packages = fetch(specs)
    work = Path(tempfile.mkdtemp(prefix="torch2ms-bench-"))
    corpus = work / "corpus"
    corpus.mkdir()
    for name, version, tree in packages:
        shutil.copytree(tree, corpus / f"{name}-{version}")
    files = sorted(p for p in corpus.rglob("*.py") if p.is_file())
    size = sum(p.stat().st_size for p in files)

    from codemod.ruleset import default_rules

    prefilter = default_rules().prefilter
    candidates = [p for p in files if (text := _source_text(p)) is not None and prefilter.matches(text)]
    compile_package()
    tool = torch2ms_command()

    def torch2ms_migrate(jobs: int, i: int, *extra: str) -> list[str]:
        out = work / f"out-j{jobs}{''.join(extra)}-{i}"
        shutil.rmtree(out, ignore_errors=True)
        return [*tool, "migrate", str(corpus), "--out", str(out), "--jobs", str(jobs), "-q",
                "--report", str(work / f"report-j{jobs}{''.join(extra)}.json"), *extra]

    print(f"torch2ms benchmark: {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start", flush=True)
    print("corpus: " + ", ".join(f"{n} {v}" for n, v, _ in packages)
          + f" -- {len(files)} .py files, {size / 1e6:.1f} MB; {len(candidates)} files "
          f"({sum(p.stat().st_size for p in candidates) / 1e6:.1f} MB) pass the prefilter (may reference a torch layer)", flush=True)

    capacity_before = parallel_capacity()
    a1, a1_walls = best_of(args.repeat, lambda i: measure(torch2ms_migrate(1, i)),
                           lambda: (torch2ms_migrate(1, args.repeat), None))
    a2, a2_walls = best_of(args.repeat, lambda i: measure(torch2ms_migrate(2, i)),
                           lambda: (torch2ms_migrate(2, args.repeat), None))
    # The cost of reading the project (issue 16): the same run with every file read alone.
    alone, alone_walls = best_of(args.repeat, lambda i: measure(torch2ms_migrate(1, i, "--no-project")),
                                 lambda: (torch2ms_migrate(1, args.repeat, "--no-project"), None))
    capacity_after = parallel_capacity()
    capacity = min(capacity_before, capacity_after)
    report = json.loads((work / "report-j1.json").read_text())
    changed = [Path(f["path"]) for f in report["files"] if f["changed"]]  # absolute: the root was
    changed_bytes = sum(p.stat().st_size for p in changed)
    floor = libcst_command(changed, True, work)
    naive = libcst_command(files, False, work)
    b, b_walls = best_of(args.repeat, lambda i: measure(*floor), lambda: floor)
    c, c_walls = best_of(max(1, min(args.repeat, 2)), lambda i: measure(*naive), lambda: naive)
    same = _same_tree(work / "out-j1-0", work / "out-j2-0")

    # Robustness, on the same corpus.
    errors = [f for f in report["files"] if f["error"] or f["problems"]]
    genuine = [f for f in errors if not _parses(Path(f["path"]))]
    out_tree = work / "out-j1-0"
    copied_as_they_were = {out_tree / Path(f["path"]).relative_to(corpus) for f in errors}
    unparsable_outputs = [p for p in sorted(out_tree.rglob("*.py")) if p not in copied_as_they_were and not _parses(p)]
    subprocess.run([*tool, "migrate", str(out_tree), "--check", "-q", "--report", str(work / "second.json")],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    second_changed = json.loads((work / "second.json").read_text())["summary"]["files_changed"]
    missed = prefilter_misses([p for p in files if p not in set(candidates)])

    def row(label: str, m: Measure, n_files: int, n_bytes: int, walls: list[float]) -> str:
        return (f"{label:<44} {m.wall:7.2f} s {n_files / m.wall:8.0f} files/s {n_bytes / 1e6 / m.wall:6.2f} MB/s "
                f"{m.peak_process_mb:6.0f} MB {m.peak_tree_mb:6.0f} MB   cpu {m.cpu:5.2f} s"
                f"   (runs: {', '.join(f'{w:.2f}' for w in walls)})")

    print()
    print(f"{'':<44} {'wall':>9} {'':>15} {'':>11} {'peak RSS':>9} {'tree':>9}")
    print(row("(a) torch2ms migrate --out, --jobs 1", a1, len(files), size, a1_walls))
    print(row("(a) torch2ms migrate --out, --jobs 2", a2, len(files), size, a2_walls))
    print(row("(a') --jobs 1, each file alone (--no-project)", alone, len(files), size, alone_walls))
    print(row(f"(b) floor: LibCST parse+regenerate, {len(changed)} changed files", b, len(changed), changed_bytes, b_walls))
    print(row(f"(c) naive: LibCST parse of all {len(files)} files", c, len(files), size, c_walls))
    print()
    alone_report = json.loads((work / "report-j1--no-project.json").read_text())["summary"]
    ratios = {
        "project_over_alone": a1.wall / alone.wall,
        "a1_over_b": a1.wall / b.wall,
        "c_over_a1": c.wall / a1.wall,
        "a1_over_a2": a1.wall / a2.wall,
    }
    peak = max(a1.peak_process_mb, a2.peak_process_mb)
    checks = [
        (f"(a) --jobs 1 / (b) = {ratios['a1_over_b']:.2f}x (target <= 1.5x)", ratios["a1_over_b"] <= 1.5),
        (f"(c) / (a) --jobs 1 = {ratios['c_over_a1']:.1f}x faster (target >= 10x)", ratios["c_over_a1"] >= 10),
        (f"--jobs 1 / --jobs 2 = {ratios['a1_over_a2']:.2f}x faster with {len(changed)} files changing "
         f"(target >= 1.6x when >= 100 change; this machine ran two busy loops {capacity_before:.2f}x / "
         f"{capacity_after:.2f}x faster in two processes than in one, before / after)", ratios["a1_over_a2"] >= 1.6 or len(changed) < 100),
        (f"peak RSS {peak:.0f} MB per process, {max(a1.peak_tree_mb, a2.peak_tree_mb):.0f} MB for the tree "
         f"(target < 300 MB)", peak < 300),
        (f"--jobs 1 and --jobs 2 outputs byte-identical: {same}", same),
        (f"reading the project: --jobs 1 {a1.wall:.2f} s with it, {alone.wall:.2f} s with each file alone = "
         f"+{(ratios['project_over_alone'] - 1) * 100:.0f}% (target <= +20%); files changed "
         f"{report['summary']['files_changed']} with it, {alone_report['files_changed']} alone",
         ratios["project_over_alone"] <= 1.2),
    ]
    for text, ok in checks:
        print(f"  [{'ok' if ok else 'MISSED'}] {text}")
    print()
    print(f"robustness: {report['summary']['files_scanned']} files processed, {report['summary']['files_changed']} "
          f"changed, {report['summary']['sites_converted']} sites converted, findings {report['summary']['findings']}")
    print(f"  errors: {len(errors)} ({len(genuine)} of them source that Python itself cannot parse)")
    for f in errors:
        print(f"    {f['path']}: {f['error'] or '; '.join(f['problems'])}")
    print(f"  outputs that fail to parse: {len(unparsable_outputs)}")
    for p in unparsable_outputs:
        print(f"    {p}")
    print(f"  changes on a second run (--check over the output): {second_changed}")
    print(f"  files the prefilter skipped that the engine, run on them anyway, would change or report on: "
          f"{len(missed)} of {len(files) - len(candidates)}")
    for p in missed:
        print(f"    {p}")
    print(f"load average {os.getloadavg()[0]:.2f} at the end (other work on the machine inflates wall times)")
    print(TARGETS)
    if args.json:
        args.json.write_text(json.dumps({
            "corpus": [{"name": n, "version": v} for n, v, _ in packages],
            "files": len(files), "bytes": size, "candidates": len(candidates), "changed": len(changed),
            "a_jobs1": a1.__dict__, "a_jobs2": a2.__dict__, "a_jobs1_no_project": alone.__dict__, "b_floor": b.__dict__, "c_naive": c.__dict__,
            "ratios": ratios, "parallel_capacity": capacity, "errors": len(errors), "genuine_errors": len(genuine),
            "unparsable_outputs": len(unparsable_outputs), "second_run_changes": second_changed,
            "prefilter_misses": len(missed),
        }, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    robust = len(genuine) == len(errors) and not unparsable_outputs and second_changed == 0 and not missed
    return 0 if robust and all(ok for _, ok in checks) else 1


def prefilter_misses(skipped: list[Path]) -> list[Path]:
    """Files the prefilter skipped that the engine, without a prefilter, would change or report on."""
    from codemod import Config, MigrationError, migrate_source
    from codemod.ruleset import default_rules

    unfiltered = Config(rules=default_rules().unfiltered())
    missed = []
    for path in skipped:
        text = _source_text(path)
        if text is None:
            continue  # not source the engine could migrate at all
        try:
            result = migrate_source(text, path=str(path), config=unfiltered)
        except MigrationError:
            continue
        if result.changed or result.findings:
            missed.append(path)
    return missed


def _source_text(path: Path) -> str | None:
    """The file's text as torch2ms reads it, or None if it does not decode."""
    from codemod.runner import decode

    try:
        return decode(path.read_bytes()).text
    except ValueError:
        return None


def _parses(path: Path) -> bool:
    try:
        compile(path.read_bytes(), str(path), "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
        return True
    except (SyntaxError, ValueError):
        return False


def _same_tree(a: Path, b: Path) -> bool:
    fa = {str(p.relative_to(a)): p.read_bytes() for p in a.rglob("*") if p.is_file()}
    fb = {str(p.relative_to(b)): p.read_bytes() for p in b.rglob("*") if p.is_file()}
    return fa == fb


if __name__ == "__main__":
    sys.exit(main())
