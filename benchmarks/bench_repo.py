#!/usr/bin/env python3
"""Whole-repository benchmark on real code: torch2ms against LibCST baselines, side by side.

    .venv/bin/python benchmarks/bench_repo.py                 # timm + torchvision (+ any --package)
    .venv/bin/python benchmarks/bench_repo.py --package monai==1.6.1 --repeat 5
    .venv/bin/python benchmarks/bench_repo.py --skip-torchfix --before HEAD~3   # or --no-before

The corpus comes from PyPI (``pip download --no-deps``: torchvision's wheel without torch) and is
unpacked, .py files only, under benchmarks/.corpus/ (git-ignored), once. Then, on that tree:

  (a) ``torch2ms migrate CORPUS --out DIR`` with --jobs 1 and --jobs 2 (the installed command), and
      with --jobs 1 and every file read alone (--no-project), for the cost of reading the project;
  (b) the floor: LibCST parse + regenerate of only the files that needed changes;
  (c) TorchFix (pytorch-labs), the nearest LibCST-based peer, linting the same tree with -j 2: it is
      installed by this script into benchmarks/.corpus/torchfix-venv, not a dependency of torch2ms;

each in its own process, timed from start to exit (best of --repeat), with its peak RSS (the
largest process, and the whole process tree sampled). Then robustness on the same corpus: errors
(each checked to be source Python cannot parse), outputs that do not parse, changes on a second run,
and files the prefilter skipped that the engine would have changed (it runs on them without one).

Then what the migration leaves to people, measured in the same run:

  findings by code: the error and warning findings of (a), next to those of the tool as it was at
      git ref --before (default 536706b, before issues 12-17; --no-before to leave it out), checked
      out with ``git archive`` into a temporary directory and run with this interpreter;
  torch API references: every expression that resolves to a torch name (codemod/facts/references.py)
      in the original files and in the migrated copies (a) wrote (and the --before tool's copies), the
      fraction converted, and the files importing torch before and after.
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
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / ".corpus"
DEFAULT_PACKAGES = ["timm==1.0.31", "torchvision==0.29.1"]

TORCHFIX = "torchfix==0.7.0"
# The tool before issues 12-17 were worked on: the "before" of the findings and references figures.
BEFORE_REF = "536706b"
REPO = HERE.parent
TARGETS = """targets (2 cores): (a) --jobs 1 within 1.5x of (b); (a) --jobs 2 >= 25x faster than (c);
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


def torchfix_command(corpus: Path) -> list[str]:
    """TorchFix in a virtual environment of its own (created once)."""
    venv = CORPUS / "torchfix-venv"
    exe = venv / "bin" / "torchfix"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", TORCHFIX], check=True)
    return [str(exe), "-j", "2", str(corpus)]


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


# -- what the migration leaves: findings by code, torch references -----------------------------


def findings_by_code(report: dict, severities: tuple[str, ...] = ("error", "warning")) -> Counter:
    """(code, severity) -> number of findings of those severities in a --report JSON."""
    return Counter((x["code"], x["severity"]) for f in report["files"] for x in f["findings"]
                   if x["severity"] in severities)


def findings_table(after: Counter, before: Counter | None, titles: dict[str, str]) -> list[str]:
    """The groups side by side, largest after first (then largest before), with totals per severity."""
    keys = sorted(set(after) | set(before or ()), key=lambda k: (-after[k], -(before or Counter())[k], k))
    head = f"  {'code':<7} {'severity':<8} {'before':>7} {'after':>7} {'change':>7}  title"
    lines = [head]
    for key in keys:
        code, severity = key
        b = f"{before[key]:7d}" if before is not None else f"{'-':>7}"
        delta = f"{after[key] - before[key]:+7d}" if before is not None else f"{'':>7}"
        lines.append(f"  {code:<7} {severity:<8} {b} {after[key]:7d} {delta}  {titles.get(code, '')}")
    for severity in ("error", "warning"):
        a = sum(n for (_, s), n in after.items() if s == severity)
        b = f"{sum(n for (_, s), n in before.items() if s == severity):7d}" if before is not None else f"{'-':>7}"
        delta = f"{a - int(b):+7d}" if before is not None else f"{'':>7}"
        lines.append(f"  {'total':<7} {severity:<8} {b} {a:7d} {delta}")
    return lines


@dataclass
class TorchUse:
    """The torch a tree of files uses: references to torch names and files importing torch."""

    files: int = 0
    unparsable: int = 0
    references: int = 0
    importing: set[str] = field(default_factory=set)  # relative paths of files with a torch import
    referencing: set[str] = field(default_factory=set)  # relative paths with a torch reference
    by_name: Counter = field(default_factory=Counter)  # canonical torch name -> references


def torch_use_of(source: str, rules) -> tuple[Counter, bool] | None:
    """(references by canonical torch name, whether the file imports torch) for one file's source,
    or None if it does not parse. A reference is a load that resolves to a torch import, as the
    migration itself sees it (references.py): ``nn.BatchNorm2d`` is one, ``torch.nn.functional.relu``
    one, a local ``nn`` that is not torch's none."""
    from codemod.facts.references import is_torch, torch_references
    from codemod.facts.scopes import Index

    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    index = Index(tree)
    known = rules.layers.keys() | rules.names.keys() | rules.dtypes.keys()
    refs, ambiguous, _ = torch_references(index, rules.canonical, known.__contains__)
    scopes = [index.module_scope, *index.scope_of.values()]
    imports = any(is_torch(b.qual) for b in index.imports) or any(
        is_torch(module) for s in scopes for module, _ in s.star_imports)
    return Counter(r.qual for r in [*refs, *ambiguous]), imports


def torch_use(root: Path, relative: list[str], rules, unchanged: Path | None = None) -> TorchUse:
    """The torch the files ``relative`` under ``root`` use; a file --out did not write (it was not
    changed) is read from ``unchanged``, the original tree."""
    use = TorchUse()
    for rel in relative:
        path = root / rel
        if unchanged is not None and not path.exists():
            path = unchanged / rel
        text = _source_text(path)
        found = torch_use_of(text, rules) if text is not None else None
        use.files += 1
        if found is None:
            use.unparsable += 1
            continue
        names, imports = found
        use.references += sum(names.values())
        use.by_name += names
        if imports:
            use.importing.add(rel)
        if names:
            use.referencing.add(rel)
    return use


def torch_use_lines(original: TorchUse, migrated: dict[str, tuple[TorchUse, set[str]]]) -> list[str]:
    """The references left and the files freed of torch, per migrated tree (with the files that
    tool changed), against the original."""
    lines = [f"  original: {original.references} references to torch names in {len(original.referencing)} files; "
             f"{len(original.importing)} of {original.files} files import torch"
             + (f" ({original.unparsable} do not parse)" if original.unparsable else "")]
    for label, (use, changed) in migrated.items():
        left = use.references
        converted = 1 - left / original.references if original.references else 0.0
        freed = original.importing - use.importing
        lines.append(f"  {label}: {left} references left, {original.references - left} converted "
                     f"({converted:.1%}); {len(use.importing)} files import torch, "
                     f"{len(freed)} of the {len(original.importing)} that did import none")
        if changed:
            in_changed = sum(1 for rel in changed if rel in original.importing)
            freed_changed = sum(1 for rel in changed if rel in freed)
            lines.append(f"    of the {len(changed)} files it changed: {in_changed} imported torch, "
                         f"{freed_changed} of them import none after")
    return lines


def changed_files(report: dict, root: Path) -> set[str]:
    """The files a --report JSON says were changed, relative to the tree it ran on."""
    return {str(Path(f["path"]).resolve().relative_to(root.resolve())) for f in report["files"] if f["changed"]}


def before_tool(ref: str, work: Path) -> Path:
    """The package as it was at ``ref``, unpacked from git (no worktree is registered)."""
    checkout = work / f"before-{ref}"
    checkout.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", ref], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(checkout)], input=archive, check=True)
    # Installed, rules/ ships as codemod/rules; placed there, the old code reads its own rules even
    # when this environment's editable install would answer for codemod.rules.
    if (checkout / "rules").is_dir() and not (checkout / "codemod" / "rules").exists():
        shutil.copytree(checkout / "rules", checkout / "codemod" / "rules")
    return checkout


def before_command(checkout: Path) -> tuple[list[str], dict[str, str]]:
    """How to run the --before tool: this interpreter, its package first on the path."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "PYTHONSAFEPATH": "1"}
    return [sys.executable, "-m", "codemod.cli"], env


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
    parser.add_argument("--before", default=BEFORE_REF, metavar="REF",
                        help=f"the git ref of the tool the findings and references are compared with (default {BEFORE_REF})")
    parser.add_argument("--no-before", action="store_true", help="compare with no earlier tool")
    parser.add_argument("--skip-torchfix", action="store_true",
                        help="leave out (c), TorchFix (minutes on 2 cores), and its target")
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
    b, b_walls = best_of(args.repeat, lambda i: measure(*floor), lambda: floor)
    if args.skip_torchfix:
        c, c_walls = None, []
    else:
        torchfix = torchfix_command(corpus)
        c, c_walls = best_of(1, lambda i: measure(torchfix), lambda: (torchfix, None))  # minutes: once
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
    if c is not None:
        print(row(f"(c) {TORCHFIX} -j 2, all {len(files)} files", c, len(files), size, c_walls))
    else:
        print(f"(c) {TORCHFIX}: skipped (--skip-torchfix)")
    print()
    alone_report = json.loads((work / "report-j1--no-project.json").read_text())["summary"]
    ratios = {
        "project_over_alone": a1.wall / alone.wall,
        "a1_over_b": a1.wall / b.wall,
        "c_over_a2": c.wall / a2.wall if c is not None else None,
        "a1_over_a2": a1.wall / a2.wall,
    }
    peak = max(a1.peak_process_mb, a2.peak_process_mb)
    checks = [
        (f"(a) --jobs 1 / (b) = {ratios['a1_over_b']:.2f}x (target <= 1.5x)", ratios["a1_over_b"] <= 1.5),
        (f"(c) / (a) --jobs 2 = {ratios['c_over_a2']:.1f}x faster (target >= 25x)", ratios["c_over_a2"] >= 25)
        if c is not None else (f"(c) / (a) --jobs 2: not measured (--skip-torchfix)", None),
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
        print(f"  [{'skipped' if ok is None else 'ok' if ok else 'MISSED'}] {text}")
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

    # What the migration leaves to people, before and after.
    rules = default_rules()
    before_report = before_out = None
    if not args.no_before:
        checkout = before_tool(args.before, work)
        before_cmd, before_env = before_command(checkout)
        where = subprocess.run([*before_cmd[:1], "-c", "import codemod; print(codemod.__file__)"], env=before_env,
                               capture_output=True, text=True, check=True).stdout.strip()
        if not Path(where).resolve().is_relative_to(checkout.resolve()):
            raise SystemExit(f"the --before tool resolves to {where}, not to its checkout {checkout}")
        before_out = work / "out-before"
        started = time.perf_counter()
        done = subprocess.run([*before_cmd, "migrate", str(corpus), "--out", str(before_out), "--jobs", "2", "-q",
                               "--report", str(work / "report-before.json")], env=before_env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        before_wall = time.perf_counter() - started
        if not (work / "report-before.json").exists():
            raise SystemExit(f"the --before tool ({args.before}) wrote no report (exit {done.returncode}):\n"
                             f"{done.stderr[-2000:]}")
        before_report = json.loads((work / "report-before.json").read_text())
    after_groups = findings_by_code(report)
    before_groups = findings_by_code(before_report) if before_report is not None else None
    titles = {code: spec.title for code, spec in rules.findings.items()}
    print()
    if before_report is not None:
        print(f"findings by code (errors and warnings) on the corpus: before = the tool at {args.before} "
              f"(migrate --jobs 2, {before_wall:.1f} s; findings {before_report['summary']['findings']}), "
              f"after = this tree ((a) --jobs 1; findings {report['summary']['findings']})")
    else:
        print(f"findings by code (errors and warnings) on the corpus, this tree ((a) --jobs 1): "
              f"{report['summary']['findings']}")
    for line in findings_table(after_groups, before_groups, titles):
        print(line)
    for label, r in (("before", before_report), ("after", report)):
        unprocessed = sum(1 for f in (r or {"files": []})["files"] if f["error"])
        if unprocessed:
            print(f"  ({label}: {unprocessed} files not processed (see the errors above): their findings are not counted)")

    relative = [str(p.relative_to(corpus)) for p in files]
    original_use = torch_use(corpus, relative, rules)
    migrated_use = {}
    if before_out is not None:
        migrated_use[f"migrated by the tool at {args.before}"] = (
            torch_use(before_out, relative, rules, corpus), changed_files(before_report, corpus))
    migrated_use["migrated by this tree ((a) --jobs 1)"] = (torch_use(out_tree, relative, rules, corpus),
                                                           changed_files(report, corpus))
    print()
    print("torch API references (loads that resolve to a torch name, codemod/facts/references.py), "
          "before and after migration:")
    for line in torch_use_lines(original_use, migrated_use):
        print(line)
    after_use = migrated_use["migrated by this tree ((a) --jobs 1)"][0]
    print("  the torch names referenced most after migration (references left / in the original): "
          + ", ".join(f"{name} {n}/{original_use.by_name[name]}" for name, n in after_use.by_name.most_common(15)))
    print()
    print(f"load average {os.getloadavg()[0]:.2f} at the end (other work on the machine inflates wall times)")
    print(TARGETS)
    if args.json:
        args.json.write_text(json.dumps({
            "corpus": [{"name": n, "version": v} for n, v, _ in packages],
            "files": len(files), "bytes": size, "candidates": len(candidates), "changed": len(changed),
            "a_jobs1": a1.__dict__, "a_jobs2": a2.__dict__, "a_jobs1_no_project": alone.__dict__, "b_floor": b.__dict__,
            "c_torchfix": c.__dict__ if c is not None else None,
            "ratios": ratios, "parallel_capacity": capacity, "errors": len(errors), "genuine_errors": len(genuine),
            "unparsable_outputs": len(unparsable_outputs), "second_run_changes": second_changed,
            "prefilter_misses": len(missed),
            "findings_by_code": {
                "before_ref": None if before_groups is None else args.before,
                "before": None if before_groups is None else {f"{c} {s}": n for (c, s), n in before_groups.items()},
                "after": {f"{c} {s}": n for (c, s), n in after_groups.items()},
            },
            "torch_references": {
                "original": original_use.references,
                "original_files_importing_torch": len(original_use.importing),
                **{label: {"references": u.references, "files_importing_torch": len(u.importing),
                           "files_freed": len(original_use.importing - u.importing)}
                   for label, (u, _) in migrated_use.items()},
            },
        }, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    robust = len(genuine) == len(errors) and not unparsable_outputs and second_changed == 0 and not missed
    return 0 if robust and all(ok is not False for _, ok in checks) else 1


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
    from codemod.runner.files import decode

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
