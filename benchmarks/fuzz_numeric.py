"""The differential fuzzer, long run (issue 17): generate PyTorch programs over the grammar of
tests/fuzz/grammar.py, run each under torch and its migration under MindSpore on the same inputs,
and count the differences the tool did not report. Target: 0 silent differences in 5,000 programs.

    .venv/bin/python benchmarks/fuzz_numeric.py --count 5000 [--seed N] [--show K] [--quiet]
    .venv/bin/python benchmarks/fuzz_numeric.py --check FILE...   # judge hand-written programs
    .venv/bin/python benchmarks/fuzz_numeric.py --minimise FILE   # a smaller program failing the same way

Prints every program that failed (the program, its migration, the findings, and what differed) or
that torch rejected, then the outcome counts and the grammar covered. Exit status 1 when any program
failed.

Outcomes. Failures (the tool was silent where it had to speak):
  silent            a record differs in numbers and no warning/error is on a line it depends on
  unreported-raise  the MindSpore run stopped with no warning/error on what it stopped at or on the
                    lines of the records it lost
  unreported-torch  the migration leaves a torch name of the rules with no warning/error on its line
  switched-import   the migration reaches, through a MindSpore import, a name no rule maps to
  unstable          a second migration changes the code
  unparsable        the migration does not parse
  engine-crash      migrate_source raised
Not failures:
  passed            every record equal
  reported          records differ, each on a line with a warning/error
  refused           the MindSpore run stopped at code the tool left with an error finding
  reported-raise    the MindSpore run stopped at code the tool reported with a warning
  torch-left        the MindSpore run stopped at a torch API the tool leaves (a dtype variable,
                    torch.device, ...), every torch name of the rules being converted or reported
  invalid           torch itself rejected the generated program (a grammar bug: should be 0)
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root: tests.fuzz

from tests.fuzz import Program, check_program, generate, load_frameworks_once  # noqa: E402
from tests.fuzz.runner import FAILURES, KINDS  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500, help="distinct programs to run (default 500)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=None, help="print at most this many failing programs")
    parser.add_argument("--quiet", action="store_true", help="print no program, only the figures")
    parser.add_argument("--check", nargs="+", metavar="FILE", help="judge these programs instead (every "
                        "record depending on every line); exit 1 if any fails")
    parser.add_argument("--minimise", metavar="FILE", help="print a smaller program failing the same way")
    args = parser.parse_args()
    if args.check:
        return check_files(args.check)
    if args.minimise:
        from tests.fuzz.runner import minimise

        print(minimise(Path(args.minimise).read_text(encoding="utf-8")), end="")
        return 0

    start = time.perf_counter()
    fw = load_frameworks_once()
    import_seconds = time.perf_counter() - start

    counts: collections.Counter[str] = collections.Counter()
    features: collections.Counter[str] = collections.Counter()
    failing_features: collections.Counter[str] = collections.Counter()
    shown = 0
    generating = checking = 0.0
    records = compared = 0
    programs = iter(generate(args.count, args.seed))
    while True:
        t0 = time.perf_counter()
        program = next(programs, None)
        t1 = time.perf_counter()
        generating += t1 - t0
        if program is None:
            break
        outcome = check_program(program, fw)
        checking += time.perf_counter() - t1
        counts[outcome.kind] += 1
        features.update(program.features)
        records += len(program.records)
        if outcome.mindspore_run is not None:
            compared += sum(1 for name in outcome.mindspore_run.records if name in outcome.torch_run.records)
        if outcome.failed:
            failing_features.update(program.features)
        if outcome.failed or outcome.kind == "invalid":  # invalid: a grammar bug, shown to be fixed
            if not args.quiet and (args.show is None or shown < args.show):
                shown += 1
                print(f"### program {sum(counts.values())} (seed {args.seed})")
                print(outcome.report())
                print()
    total = sum(counts.values())
    failed = sum(counts[k] for k in FAILURES)
    print(f"fuzz_numeric: {total} programs (seed {args.seed}), {records} records, {compared} compared "
          f"under both frameworks")
    for kind in KINDS:
        marker = "  <- failure" if kind in FAILURES and counts[kind] else ""
        print(f"  {kind:17} {counts[kind]:6}{marker}")
    print(f"silent differences: {counts['silent']} in {total} programs; failures of any kind: {failed}")
    print(f"time: frameworks imported in {import_seconds:.1f} s (torch {fw.torch_seconds:.1f} s, MindSpore "
          f"{fw.mindspore_seconds:.1f} s); generating {generating:.1f} s; migrating, running and comparing "
          f"{checking:.1f} s ({1000 * checking / max(total, 1):.0f} ms a program)")
    print("grammar covered (programs using each feature; failing ones in brackets):")
    for feature, n in sorted(features.items()):
        print(f"  {feature:40} {n:6}  [{failing_features[feature]}]")
    return 1 if failed else 0


def check_files(paths: list[str]) -> int:
    """Judge hand-written programs (the minimised failures): print each outcome."""
    fw = load_frameworks_once()
    failed = 0
    for path in paths:
        outcome = check_program(Program.whole(Path(path).read_text(encoding="utf-8")), fw)
        failed += outcome.failed
        print(f"### {path}\n{outcome.report()}\n")
    print(f"{failed} of {len(paths)} programs fail")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
