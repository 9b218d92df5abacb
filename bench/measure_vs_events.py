"""Does ``vecx.measure`` agree with CUDA events on the same GPU work? (needs torch + CUDA)

``vecx.measure`` reads the host clock after ``be.sync()``; CUDA events time the work on
the device itself. If the synchronisation were missing or misplaced, the host clock would
measure kernel launches (far too fast) or add sync latency to every call (too slow).
This script times the same operations both ways, with the same block size (calls per
timed block), and prints the ratio measure/events; it exits 1 if any ratio is off by
more than 5%.

Operations: a 4096 x 4096 float32 matmul (compute-bound) and a 2^26-element vector add
(bandwidth-bound), on ``torch:cuda``.

    PYTHONPATH=. python bench/measure_vs_events.py

Without a CUDA device (or without torch) it prints one line saying so and exits 0.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from typing import Any

TOLERANCE = 0.05
REPEATS = 15


def event_times(torch: Any, fn: Callable[[], Any], number: int, repeats: int) -> list[float]:
    """Per-call seconds from CUDA events around blocks of ``number`` calls."""
    for _ in range(3):  # warm-up, as measure() does
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(number):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3 / number)  # ms -> s, per call
    return times


def main() -> int:
    try:
        import torch
    except ImportError:
        print("measure_vs_events: skipped: torch is not installed")
        return 0
    if not torch.cuda.is_available():
        print("measure_vs_events: skipped: no CUDA device (torch.cuda.is_available() is False)")
        return 0

    import vecx

    be = vecx.backend("torch:cuda")
    n_mm, n_add = 4096, 2**26
    B, C = be.normal(0, 1, (n_mm, n_mm)), be.normal(0, 1, (n_mm, n_mm))
    a, b = be.normal(0, 1, n_add), be.normal(0, 1, n_add)
    ops: dict[str, tuple[Callable[[], Any], Callable[[float], str]]] = {
        f"matmul {n_mm}": (lambda: be.matmul(B, C),
                           lambda s: f"{2 * n_mm**3 / s / 1e12:.1f} TFLOP/s"),
        f"vector add 2^{n_add.bit_length() - 1}": (lambda: a + b,
                                                    lambda s: f"{12 * n_add / s / 1e9:.0f} GB/s"),
    }  # fmt: skip
    print(f"device: {be.info().get('device_name')}  torch {torch.__version__}  "
          f"precision {be.info().get('matmul_precision')}")  # fmt: skip
    head = f"{'operation':<20} {'measure':>12} {'events':>12} {'ratio':>7}  {'rate':>14}"
    print(f"{head}  calls/block")
    failed = []
    for name, (fn, rate) in ops.items():
        m = vecx.measure(fn, be, min_run_time=1.0, max_run_time=5.0)
        ev = statistics.median(event_times(torch, fn, m.number, REPEATS))
        ratio = m.median / ev
        ok = abs(ratio - 1) <= TOLERANCE
        if not ok:
            failed.append(name)
        print(f"{name:<20} {m.median * 1e3:>9.3f} ms {ev * 1e3:>9.3f} ms {ratio:>7.3f}  "
              f"{rate(m.median):>14}  {m.number}{'' if ok else '  <-- off by more than 5%'}")
    if failed:
        print(f"measure_vs_events: FAILED for {', '.join(failed)}")
        return 1
    print(f"measure_vs_events: measure agrees with CUDA events within {TOLERANCE:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
