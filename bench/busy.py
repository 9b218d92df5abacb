"""Numbers on a busy machine: vecx's figures under 0, 1 and 2 competing busy processes.

For small cases of the built-in suites (matmul, vector add) on NumPy and PyTorch, this
script starts and stops its own competitors (``python -c "while True: pass"``), and for
each condition, thread policy and repetition times every case with ``vecx.measure`` (the
full run's settings) and with ``torch.utils.benchmark.Timer.blocked_autorange``, side by
side. Each figure is divided by the quiet per-call minimum of the configuration it was
measured in (the same thread count), taken right before that figure with the competitors
paused (SIGSTOP): on this shared virtual machine the quiet figure itself moves by up to
1.8x within minutes (other tenants on the host), so a reference taken once per
condition measured the host, not the estimator.

Thread policies (threadpoolctl for every BLAS/OpenMP pool, ``torch.set_num_threads``):

* ``cores``: as many threads as CPUs, which is what the frameworks do by themselves;
* ``one``: one thread, torch.utils.benchmark's default;
* ``auto``: vecx's default, `vecx.environment.idle_cpus` of the CPUs other processes
  kept busy at the condition's start, and a figure flagged ``suspect`` at more than one
  thread measured again at one (what a worker does: `vecx.engine.worker.measured`).

Printed per policy, case and condition: the threads used, the worst ratio among figures
not flagged ``suspect`` for three candidate headline statistics of vecx's blocks (median,
25th percentile, and the fastest block, which this experiment made vecx's headline), how
many were flagged, and torch.utils.benchmark's worst median. Goal (issue "Numbers you
can trust on a busy machine"): no unflagged vecx figure above 1.3x. The load and other
processes' CPU use are printed before and after.

    PYTHONPATH=. python bench/busy.py [--repeat 5] [--competitors 0,1,2] [--policies ...]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import vecx  # noqa: E402
from vecx.environment import cpu_use_of_others, idle_cpus, load_averages  # noqa: E402
from vecx.suites import TIMING_FULL  # noqa: E402

LIMIT = 1.3
STATISTICS = ("median", "p25", "fastest")


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


@contextlib.contextmanager
def threads(k: int) -> Iterator[None]:
    """Every BLAS/OpenMP pool of this process, and torch's intra-op pool, at ``k``."""
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch else None
    with threadpool_limits(limits=k):
        if torch:
            torch.set_num_threads(k)
        try:
            yield
        finally:
            if torch:
                torch.set_num_threads(before)


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
    timer = Timer(stmt="be.sync(fn())", globals={"fn": fn, "be": be},
                  num_threads=sys.modules["torch"].get_num_threads())  # fmt: skip
    return float(timer.blocked_autorange(min_run_time=0.2).median)


def statistics(m: Any) -> dict[str, float]:
    return {"median": m.median, "p25": float(np.percentile(m.times, 25)), "fastest": m.min}


@contextlib.contextmanager
def paused(procs: list[subprocess.Popen]) -> Iterator[None]:
    """The competitors stopped (SIGSTOP) for a moment, then continued."""
    for p in procs:
        p.send_signal(signal.SIGSTOP)
    try:
        time.sleep(0.02 if procs else 0)
        yield
    finally:
        for p in procs:
            p.send_signal(signal.SIGCONT)
        time.sleep(0.05 if procs else 0)


def competitors(k: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(k)]


def measure_once(fn: Callable[[], Any], be: Any, policy: str, k: int) -> tuple[int, Any]:
    """(threads the figure was measured at, its Measurement) under ``policy``."""
    with threads(k):
        m = vecx.measure(fn, be, **TIMING_FULL)
    if policy == "auto" and m.suspect is not None and k > 1:
        k = 1
        with threads(1):
            m = vecx.measure(fn, be, **TIMING_FULL)
    return k, m


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--competitors", default="0,1,2")
    parser.add_argument("--policies", default="cores,one,auto")
    args = parser.parse_args()
    conditions = [int(c) for c in args.competitors.split(",")]
    policies = args.policies.split(",")
    cores = idle_cpus(0.0)
    todo = cases()
    print(f"# vecx.measure and torch.utils.benchmark under competing processes, "
          f"{args.repeat} repetitions")  # fmt: skip
    print(f"load before: {load_averages()}; other processes' CPUs: {cpu_use_of_others()}; "
          f"cores: {cores}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}")
    rows: dict[str, list[tuple]] = {p: [] for p in policies}
    counts = sorted({1, cores})
    for c in conditions:
        procs = competitors(c)
        try:
            time.sleep(0.5)
            others = cpu_use_of_others()
            start = {"cores": cores, "one": 1, "auto": idle_cpus(others, cores)}
            found = {(p, label): [] for p in policies for label, _, _ in todo}
            for _ in range(args.repeat):
                for policy in policies:
                    for label, be, fn in todo:
                        quiet = {}
                        with paused(procs):  # the quiet reference, right before the figure
                            for k in counts:
                                with threads(k):
                                    quiet[k] = quiet_minimum(fn, be)
                        k, m = measure_once(fn, be, policy, start[policy])
                        with threads(k):
                            tub = torch_benchmark(fn, be)
                        found[(policy, label)].append(
                            (k, {s: v / quiet[k] for s, v in statistics(m).items()},
                             m.suspect is not None, None if tub is None else tub / quiet[k]))
        finally:
            for p in procs:
                p.kill()
                p.wait()
        for (policy, label), runs in found.items():
            used = sorted({k for k, *_ in runs})
            unflagged = [r for _, r, flag, _ in runs if not flag]
            worst = {s: max((r[s] for r in unflagged), default=None) for s in STATISTICS}
            tubs = [t for *_, t in runs if t is not None]
            rows[policy].append((label, c, others, used, worst, sum(f for _, _, f, _ in runs),
                                 len(runs), max(tubs) if tubs else None))  # fmt: skip
    for policy in policies:
        print(f"\n## policy {policy}\n")
        print("| case | competitors (their CPUs) | threads | median | p25 | fastest block "
              "(headline) | suspect | torch.utils.benchmark median |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        over = dict.fromkeys(STATISTICS, 0)
        for label, c, others, used, worst, flagged, n, tub in rows[policy]:
            cells = []
            for s in STATISTICS:
                w = worst[s]
                over[s] += w is not None and w > LIMIT
                cells.append("-" if w is None else f"{w:.2f}x" + (" **over**" if w > LIMIT else ""))
            print(f"| {label} | {c} ({others}) | {'/'.join(map(str, used))} | "
                  f"{' | '.join(cells)} | {flagged}/{n} | "
                  f"{'-' if tub is None else f'{tub:.2f}x'} |")
        print(f"\nunflagged figures above {LIMIT}x, of {len(rows[policy])} rows: "
              + ", ".join(f"{s} {over[s]}" for s in STATISTICS))  # fmt: skip
    print(f"\nload after: {load_averages()}; other processes' CPUs: {cpu_use_of_others()}")


if __name__ == "__main__":
    main()
