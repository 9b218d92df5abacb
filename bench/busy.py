"""Numbers on a busy machine: vecx's figures under 0, 1 and 2 competing busy processes.

For small cases of the built-in suites (matmul, vector add) on NumPy and PyTorch, this
script starts and stops its own competitors (``python -c "while True: pass"``), and for
each condition and repetition times every case with ``vecx.measure`` (the full run's
settings) and with ``torch.utils.benchmark.Timer.blocked_autorange``, side by side. Each
figure is divided by the quiet per-call minimum of the same configuration (same threads:
measured with no competitor right before each condition, as the minimum over single
timed calls, since on a shared machine it moves between conditions). Printed per
case and condition: the worst ratio of each tool, how many of vecx's figures were flagged
``suspect``, the worst ratio among the unflagged ones, and, as candidates for a headline
statistic, the worst 25th percentile and the worst fastest block of vecx's blocks. Goal
(issue "Numbers you can trust on a busy machine"): no unflagged vecx figure above 1.3x.

BLAS and torch threads are as the environment has them (printed), since the point is what
a default run reports; the load is printed before and after.

    PYTHONPATH=. python bench/busy.py [--repeat 5] [--competitors 0,1,2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import vecx  # noqa: E402
from vecx.suites import TIMING_FULL  # noqa: E402

LIMIT = 1.3


def cases() -> list[tuple[str, Any, Callable[[], Any]]]:
    """(label, backend, the call) for each case, on the backends installed here."""
    out = []
    rng = np.random.default_rng(0)
    for spec in ("numpy", "torch:cpu"):
        if not vecx.registry.status(spec).available:
            continue
        be = vecx.backend(spec)
        for n in (64, 256):
            a = be.asarray(rng.standard_normal((n, n)))
            b = be.asarray(rng.standard_normal((n, n)))
            out.append((f"{be.spec} matmul {n}", be, lambda a=a, b=b, be=be: be.matmul(a, b)))
        for n in (10_000, 2**20):
            x = be.asarray(rng.standard_normal(n))
            y = be.asarray(rng.standard_normal(n))
            out.append((f"{be.spec} vector add {n}", be, lambda x=x, y=y: x + y))
    return out


def quiet_minimum(fn: Callable[[], Any], be: Any, calls: int = 300) -> float:
    """Fastest single synchronised call (after a warm-up), with nothing else running."""
    for _ in range(5):
        be.sync(fn())
    best = float("inf")
    for _ in range(calls):
        t0 = time.perf_counter()
        be.sync(fn())
        best = min(best, time.perf_counter() - t0)
    return best


def torch_benchmark(fn: Callable[[], Any], be: Any) -> float | None:
    try:
        from torch.utils.benchmark import Timer
    except ImportError:
        return None
    timer = Timer(stmt="be.sync(fn())", globals={"fn": fn, "be": be})
    return float(timer.blocked_autorange(min_run_time=0.2).median)


def competitors(k: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(k)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--competitors", default="0,1,2")
    args = parser.parse_args()
    conditions = [int(c) for c in args.competitors.split(",")]
    from vecx.environment import load_averages, runtime_settings

    todo = cases()
    print(f"# vecx.measure and torch.utils.benchmark under competing processes, "
          f"{args.repeat} repetitions")  # fmt: skip
    print(f"load before: {load_averages()}; cores: {os.cpu_count()}")
    blas = runtime_settings()["blas"] or []
    print("BLAS threads:", [(b.get("internal_api"), b.get("num_threads")) for b in blas])
    try:
        import torch

        print("torch intra-op threads:", torch.get_num_threads())
    except ImportError:
        pass
    rows = []
    for k in conditions:
        # the quiet reference right before each condition: on a shared machine it moves
        quiet = {label: quiet_minimum(fn, be) for label, be, fn in todo}
        procs = competitors(k)
        try:
            time.sleep(0.5)
            found: dict[str, dict[str, list]] = {
                label: {"vecx": [], "flag": [], "tub": [], "min": [], "p25": []}
                for label, _, _ in todo
            }
            for _ in range(args.repeat):
                for label, be, fn in todo:
                    m = vecx.measure(fn, be, **TIMING_FULL)
                    found[label]["vecx"].append(m.median / quiet[label])
                    found[label]["flag"].append(m.suspect is not None)
                    found[label]["min"].append(m.min / quiet[label])
                    found[label]["p25"].append(float(np.percentile(m.times, 25)) / quiet[label])
                    tub = torch_benchmark(fn, be)
                    if tub is not None:
                        found[label]["tub"].append(tub / quiet[label])
        finally:
            for p in procs:
                p.kill()
                p.wait()
        for label, f in found.items():
            unflagged = [r for r, s in zip(f["vecx"], f["flag"], strict=True) if not s]
            rows.append((label, k, quiet[label], max(f["vecx"]), sum(f["flag"]), len(f["flag"]),
                         max(unflagged) if unflagged else None,
                         max(f["tub"]) if f["tub"] else None, max(f["p25"]),
                         max(f["min"])))  # fmt: skip
    print()
    print("| case | competitors | quiet min | vecx worst | suspect | vecx worst unflagged "
          "| torch.utils.benchmark worst | block p25 worst | fastest block worst |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    bad = 0
    for label, k, ref, worst, flagged, n, unflagged, tub, p25, fastest in rows:
        over = unflagged is not None and unflagged > LIMIT
        bad += over
        uf = "-" if unflagged is None else f"{unflagged:.2f}x" + (" **over**" if over else "")
        print(f"| {label} | {k} | {ref * 1e6:.1f} µs | {worst:.2f}x | {flagged}/{n} | "
              f"{uf} | {'-' if tub is None else f'{tub:.2f}x'} | {p25:.2f}x | {fastest:.2f}x |")
    print(f"\nunflagged vecx figures above {LIMIT}x: {bad} of {len(rows)} case x condition rows")
    print(f"load after: {load_averages()}")


if __name__ == "__main__":
    main()
