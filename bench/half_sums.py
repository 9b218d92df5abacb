"""NumPy float16 training with its sums accumulated in float32 (vecx's ``wide_sum``)
against plain float16 sums, side by side: what the accuracy fix costs.

Each preset trains in ``compute_dtype="float16"`` on the NumPy backend, eager, with
``vecx.backends._autodiff.wide_sum`` (and the VJP table's copy) swapped for a plain
``x.sum`` between runs; one thread, interleaved, medians of the runs. Also the two sums'
results on 8192 rows of ones, 3 columns (plain float16 stalls at 2048).

    PYTHONPATH=. python bench/half_sums.py
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402

import vecx  # noqa: E402
from vecx.backends import _autodiff, _vjps  # noqa: E402

PRESETS = ("airfoil-mb10", "airfoil-mb100", "digits-mlp")
RUNS = 7


def plain_sum(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    return x.sum(axis=axis, keepdims=keepdims)


def main() -> int:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    wide = _autodiff.wide_sum
    ones = np.ones((8192, 3), np.float16)  # rows of 3: the sum runs down a strided axis
    print(f"load average {os.getloadavg()[0]:.2f} (start); 1 thread; numpy {np.__version__}; "
          f"medians of {RUNS} interleaved runs")
    print(f"8192 float16 ones summed over rows: plain {float(plain_sum(ones, 0)[0]):g}, "
          f"wide {float(wide(ones, 0)[0]):g}\n")
    print("| preset | plain float16 sums | float32-accumulated | ratio |")
    print("|---|---:|---:|---:|")
    be = vecx.backend("numpy")
    try:
        for preset in PRESETS:
            times: dict[str, list[float]] = {"plain": [], "wide": []}
            for r in range(RUNS):
                order = (("plain", plain_sum), ("wide", wide))
                for name, fn in order if r % 2 else order[::-1]:
                    _autodiff.wide_sum = _vjps.wide_sum = fn
                    h = vecx.train(be, preset, compute_dtype="float16", epochs=2, mode="eager")
                    times[name].append(h.epoch_time)
            m = {k: statistics.median(v) for k, v in times.items()}
            print(f"| {preset} | {1e3 * m['plain']:.3g} ms | {1e3 * m['wide']:.3g} ms | "
                  f"{m['wide'] / m['plain']:.2f}x |")
    finally:
        _autodiff.wide_sum = _vjps.wide_sum = wide
    print(f"\nload average {os.getloadavg()[0]:.2f} (end)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
