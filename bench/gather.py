"""torch row gathers: ``x[idx]`` (advanced indexing) against ``index_select``, side by side.

The torch backend's ``index`` gathers a 1-D index with ``index_select`` on the CPU; this
measures why, at the shapes the trainer gathers (d2l's linreg, airfoil, digits, the large
regression of the parallel suite). One thread, interleaved, medians of blocks.

    PYTHONPATH=. python bench/gather.py
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
import torch

SHAPES = ((1000, 2, 10), (1500, 5, 100), (1797, 64, 64), (1 << 20, 256, 4096))


def per_call(f, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        f()
    return (time.perf_counter() - start) / calls


def main() -> int:
    torch.set_num_threads(1)
    print(f"load average {os.getloadavg()[0]:.2f}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread; medians of 7 interleaved blocks")
    print(f"{'rows x cols':>16} {'batch':>6} {'x[idx]':>10} {'index_select':>13} {'ratio':>6}")
    for n, d, m in SHAPES:
        X = torch.randn(n, d)
        idx = torch.from_numpy(np.random.default_rng(0).permutation(n)[:m])
        assert torch.equal(X[idx], torch.index_select(X, 0, idx))
        calls = 20 if n > 100_000 else 2000
        a, b = [], []
        for _ in range(7):
            a.append(per_call(lambda: X[idx], calls))  # noqa: B023
            b.append(per_call(lambda: torch.index_select(X, 0, idx), calls))  # noqa: B023
        ta, tb = statistics.median(a), statistics.median(b)
        print(f"{n:>9} x {d:<4} {m:>6} {1e6 * ta:>8.2f}us {1e6 * tb:>11.2f}us {ta / tb:>5.2f}x")
    print(f"load average {os.getloadavg()[0]:.2f} (end)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
