"""How fast is ``torch2ms verify``? Prints the framework import time, one site's check, and a file
with 50 sites, next to a baseline measured in the same run: the bare forward passes the protocol
cannot avoid (a torch BatchNorm2d and a MindSpore BatchNorm2d, built and run K+1 times).

    .venv/bin/python benchmarks/bench_verify.py [--repeat N]

Targets (issue 4): one site <= 50 ms after import; 50 sites < 5 s.
"""

from __future__ import annotations

import argparse
import statistics
import time

ONE_SITE = "import torch.nn as nn\nbn = nn.BatchNorm2d(8, eps=1e-3, momentum=0.01)\n"


def fifty_sites() -> str:
    variants = ["{c}", "{c}, momentum=0.01", "{c}, eps=1e-3, affine=False", "{c}, track_running_stats=False",
                "{c}, 1e-3, 0.3, True, False"]
    lines = ["import torch.nn as nn", ""]
    for i in range(50):
        lines.append(f"bn{i} = nn.BatchNorm{(1, 2, 2, 3)[i % 4]}d({variants[i % len(variants)].format(c=4 + i % 5)})")
    return "\n".join(lines) + "\n"


def timed(fn, repeat: int) -> float:
    """The median of ``repeat`` runs, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from codemod.verify import PASS, load_frameworks, verify_source

    start = time.perf_counter()
    fw = load_frameworks()
    print(f"framework import: {time.perf_counter() - start:.2f} s "
          f"(torch {fw.torch_seconds:.2f} s, MindSpore {fw.mindspore_seconds:.2f} s)")
    torch, ms, np = fw.torch, fw.mindspore, fw.numpy
    steps = 3
    x = np.random.default_rng(0).standard_normal((2, 8, 3, 5)).astype(np.float32)

    def baseline() -> None:  # build both layers, K training forwards and one eval forward each
        t_layer, m_layer = torch.nn.BatchNorm2d(8), ms.nn.BatchNorm2d(8)
        m_layer.set_train(True)
        for step in range(steps + 1):
            if step == steps:
                t_layer.eval()
                m_layer.set_train(False)
            with torch.no_grad():
                t_layer(torch.from_numpy(x)).numpy()
            m_layer(ms.Tensor(x)).asnumpy()

    source50 = fifty_sites()
    one = verify_source(ONE_SITE, frameworks=fw, steps=steps)  # warm-up, and a sanity check
    fifty = verify_source(source50, frameworks=fw, steps=steps)
    assert [c.status for c in one] == [PASS], one
    assert len(fifty) == 50 and all(c.status == PASS for c in fifty), [c.reason for c in fifty if c.status != PASS]

    base = timed(baseline, args.repeat * 4)
    site = timed(lambda: verify_source(ONE_SITE, frameworks=fw, steps=steps), args.repeat * 4)
    file50 = timed(lambda: verify_source(source50, frameworks=fw, steps=steps), args.repeat)
    print(f"baseline (bare torch + MindSpore BN: build, {steps} train + 1 eval forward): {base * 1e3:.1f} ms")
    print(f"one site's check (migrate + protocol):       {site * 1e3:.1f} ms   target <= 50 ms")
    print(f"file with 50 sites:                           {file50:.2f} s    target < 5 s "
          f"({file50 / 50 * 1e3:.1f} ms per site; baseline x 50 = {base * 50:.2f} s)")


if __name__ == "__main__":
    main()
