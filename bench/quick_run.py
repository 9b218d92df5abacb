"""Where does a quick bench run spend its wall time? Measuring, or waiting around it.

Runs ``vecx bench --quick`` (every built-in suite) on the given backends as a user would,
with ``VECX_TIMELINE`` set, so that every ``vecx.measure`` call, every timed training run
(the train suite), every worker's life and the figures append their wall-clock intervals
to a file. Measuring is the union of the measurement and training intervals; the rest of
the command's wall time is waiting: starting Python and vecx, each worker's framework
import and setup (data, float64 references, checks), its exit, and the figures. The
issue "vecx bench for your own code" set the goal: at least 40% of the wall time spent
measuring, with the same cases and GPU-memory safety.

BLAS threads and the relevant environment are printed with the load before and after;
nothing is changed (threads as the user has them: the point is what a user waits for).

With ``--against REV`` the same command also runs on vecx as of a git revision
(extracted with ``git archive``), interleaved with this checkout's runs, and the wall
times are compared side by side (an older vecx has no timeline, so only its wall time).

    PYTHONPATH=. python bench/quick_run.py [--backends numpy,torch,jax] [--repeat 2]
                                           [--against 08dbf0f]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL = 0.40


def union_seconds(intervals: list[tuple[float, float]]) -> float:
    """Total length of the union of ``[start, end]`` intervals (nested ones count once)."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total


def one_run(backends: str, folder: Path, root: Path = ROOT) -> dict[str, float]:
    timeline = folder / "timeline.jsonl"
    env = {**os.environ, "VECX_TIMELINE": str(timeline), "PYTHONPATH": str(root)}
    cmd = [sys.executable, "-m", "vecx", "bench", "--quick", "--backends", backends, "--quiet",
           "--out", str(folder / "out")]  # fmt: skip
    t0 = time.time()
    # cwd: the scratch folder, since ``python -m`` puts the current folder first on sys.path
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=folder,
                          stdin=subprocess.DEVNULL)  # fmt: skip
    wall = time.time() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"vecx bench failed ({proc.returncode}): {proc.stderr[-2000:]}")
    recs = json.loads((folder / "out" / "results.json").read_text())["results"]
    failed = [f"{r['backend']} {r['suite']}/{r['case']}: {r['error']}" for r in recs
              if r["error"]]  # fmt: skip
    if failed:  # a timing of a broken run would mean nothing
        raise SystemExit(f"{len(failed)} cases failed, e.g. {failed[0]}")
    if root != ROOT:
        return {"wall": wall}
    rows = [json.loads(line) for line in timeline.read_text().splitlines() if line.strip()]
    around = ("worker ", "plots")
    measured = [(r["start"], r["end"]) for r in rows if not r["label"].startswith(around)]
    workers = [(r["start"], r["end"]) for r in rows if r["label"].startswith("worker ")]
    plots = [(r["start"], r["end"]) for r in rows if r["label"] == "plots"]
    first_worker = min((s for s, _ in workers), default=t0)
    last_worker = max((e for _, e in workers), default=t0)
    return {
        "wall": wall,
        "measuring": union_seconds(measured),
        "before first worker": first_worker - t0,
        "inside workers, not measuring": union_seconds(workers) - union_seconds(measured),
        "plots": union_seconds(plots),
        "after the workers (tables, plots, exit)": t0 + wall - last_worker,
        "cases": float(len(recs)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="numpy,torch,jax")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--against", metavar="REV", help="also time vecx as of this revision")
    args = parser.parse_args()
    then: Path | None = None
    if args.against:
        then = Path(tempfile.mkdtemp(prefix="vecx-then-"))
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.against, "vecx"],
                                 capture_output=True, check=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(then)], input=archive, check=True)
    from vecx.environment import ENV_VARS, load_averages, runtime_settings

    print(f"# vecx bench --quick --backends {args.backends}: wall time against measuring")
    print(f"load before: {load_averages()}; cores: {os.cpu_count()}")
    print("env:", {k: os.environ[k] for k in ENV_VARS if k in os.environ} or "none set")
    blas = runtime_settings()["blas"] or []
    print("BLAS threads (this process):", [(b.get("internal_api"), b.get("num_threads"))
                                           for b in blas])  # fmt: skip
    runs, olds = [], []
    for i in range(args.repeat):
        if then is not None and i % 2 == 0:  # alternate which goes first
            with tempfile.TemporaryDirectory() as tmp:
                olds.append(one_run(args.backends, Path(tmp), then)["wall"])
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(one_run(args.backends, Path(tmp)))
        if then is not None and i % 2 == 1:
            with tempfile.TemporaryDirectory() as tmp:
                olds.append(one_run(args.backends, Path(tmp), then)["wall"])
        r = runs[-1]
        print(f"run {i + 1}: {int(r['cases'])} cases, wall {r['wall']:.1f} s, measuring "
              f"{r['measuring']:.1f} s = {r['measuring'] / r['wall']:.0%} (goal >= {GOAL:.0%})")
    print()
    print("| part | " + " | ".join(f"run {i + 1}" for i in range(len(runs))) + " |")
    print("|---|" + "---:|" * len(runs))
    for key in runs[0]:
        if key == "cases":
            continue
        cells = [f"{r[key]:.2f} s ({r[key] / r['wall']:.0%})" for r in runs]
        print(f"| {key} | " + " | ".join(cells) + " |")
    if olds:
        import statistics

        now, old = statistics.median(r["wall"] for r in runs), statistics.median(olds)
        print(f"\nwall, median of {len(olds)}: {args.against} {old:.1f} s, this checkout "
              f"{now:.1f} s: ratio now/then {now / old:.2f}")
    print(f"\nload after: {load_averages()}")


if __name__ == "__main__":
    main()
