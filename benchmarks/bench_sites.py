#!/usr/bin/env python3
"""How the cost of one file grows with its number of sites, next to LibCST's own floor.

    .venv/bin/python benchmarks/bench_sites.py [--sizes 1000,2000,4000,8000] [--repeat 3]

Generated files of N ``bn<i> = nn.BatchNorm2d(c, momentum=m, eps=e)`` lines, each used afterwards
(so each gets its set_train() too). For each N, in one process (best of --repeat, garbage
collector as the engine runs it): ``migrate_source`` on the file, and LibCST's ``parse_module`` +
``.code`` of the same file. Targets: time(8000) / time(1000) <= 12 (linear growth, 8x the sites),
and the 8,000-site file within 1.5x of LibCST's parse + codegen of it.
"""

from __future__ import annotations

import argparse
import gc
import time


def generated(sites: int) -> str:
    lines = ["import torch.nn as nn", "", ""]
    for i in range(sites):
        lines.append(f"bn{i} = nn.BatchNorm2d({i % 7 + 1}, momentum=0.{i % 9 + 1}, eps=1e-{i % 4 + 3})")
    lines.append("")
    lines += [f"y{i} = bn{i}(x)" for i in range(sites)]
    return "\n".join(lines) + "\n"


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,2000,4000,8000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    import libcst

    from codemod import migrate_source

    def floor(source: str) -> None:
        enabled = gc.isenabled()
        gc.disable()  # as the engine runs LibCST: the collector would walk the fresh tree again and again
        try:
            libcst.parse_module(source).code
        finally:
            if enabled:
                gc.enable()

    print(f"{'sites':>6} {'lines':>6} {'migrate_source':>15} {'LibCST parse+code':>18} {'ratio':>6}")
    results = {}
    for n in sizes:
        source = generated(n)
        result = migrate_source(source)
        assert result.changed and len([s for s in result.sites if s.kind == "construct"]) == n
        ours = best(lambda: migrate_source(source), args.repeat)
        base = best(lambda: floor(source), args.repeat)
        results[n] = (ours, base)
        print(f"{n:>6} {source.count(chr(10)):>6} {ours:>13.2f} s {base:>16.2f} s {ours / base:>5.2f}x")
    if 1000 in results and 8000 in results:
        growth = results[8000][0] / results[1000][0]
        within = results[8000][0] / results[8000][1]
        print(f"\n  [{'ok' if growth <= 12 else 'MISSED'}] time(8000) / time(1000) = {growth:.1f} (target <= 12)")
        print(f"  [{'ok' if within <= 1.5 else 'MISSED'}] 8,000 sites: {within:.2f}x LibCST's parse + codegen "
              f"(target <= 1.5x)")


if __name__ == "__main__":
    main()
