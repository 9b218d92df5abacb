"""vecx bench under faults: repeated trials of each scripted fault, counted.

"results kept" means ``results.json`` exists and holds every case measured except the
faulty one (after a signal: at least one case, none with an error). Each trial runs
``vecx bench`` (as a user would, in a subprocess) on a small suite whose cases misbehave
on purpose, then checks what the issue "vecx bench under faults" asks: every finished
case in ``results.json`` exactly once, nothing left running, and the run over within a
time limit. Scenarios:

* ``double-sigint`` / ``sigterm-sigint``: a second signal 10 ms after the first, while the
  engine stops the worker;
* ``kill-after-record``: the worker is killed between streaming a record and its event;
* ``crash``: the worker dies (``os._exit``) in the middle case; the rest must still run;
* ``spin`` / ``hang``: a case loops in Python / sleeps in C; ``--case-timeout 1``;
* ``fork``: a case leaves a child holding the event pipe open;
* ``overlap``: a second run into the same ``--out`` while the first runs.

    python bench/faults.py [--trials 10] [--scenarios spin,hang,...]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SUITE = textwrap.dedent('''
    """Cases c0..c4; c2 misbehaves as MODE says (an environment variable of the run)."""
    import os, time
    from vecx.results import result
    from vecx.suites import Case

    NAME = "faulty"
    MODE = os.environ.get("FAULT_MODE", "")
    PIDS = os.environ.get("FAULT_PIDS", "")

    def plan(device, *, quick=False, **_):
        return [(f"c{i}", {"i": i}) for i in range(5)]

    def cases(be, *, quick=False, seed=0, **_):
        if PIDS:
            with open(PIDS, "a") as f:
                f.write(f"{os.getpid()}\\n")

        def run(i):
            time.sleep(float(os.environ.get("FAULT_SLEEP", "0.05")))
            if i == 2 and MODE == "crash":
                os._exit(3)
            if i == 2 and MODE == "spin":
                while True:
                    pass
            if i == 2 and MODE == "hang":
                time.sleep(1000)
            if i == 2 and MODE == "fork" and os.fork() == 0:
                with open(PIDS, "a") as f:
                    f.write(f"{os.getpid()}\\n")
                time.sleep(1000)
                os._exit(0)
            if i == 2 and MODE == "kill-after-record":
                from vecx.engine.events import Event
                encode = Event.encode
                def killing(self):
                    if self.kind == "done":
                        os.kill(os.getpid(), 9)
                    return encode(self)
                Event.encode = killing
            return result(NAME, f"c{i}", be.name, be.device, params={"i": i}, median_s=1e-3,
                          iqr_s=0.0, n_runs=1, metric="time", value=1e-3, unit="s")

        return [Case(NAME, f"c{i}", {"i": i}, lambda i=i: run(i)) for i in range(5)]
''')


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def bench(folder: Path, mode: str, *extra: str, sleep: float = 0.05) -> subprocess.Popen:
    env = {**os.environ, "FAULT_MODE": mode, "FAULT_PIDS": str(folder / "pids"),
           "FAULT_SLEEP": str(sleep),
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(folder)])}  # fmt: skip
    cmd = [sys.executable, "-m", "vecx", "bench", "--backends", "numpy", "--suites",
           "faulty.py", "--out", str(folder / "out"), "--quiet", "--no-plots", *extra]  # fmt: skip
    return subprocess.Popen(cmd, cwd=folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def wait_for_records(folder: Path, n: int, limit: float = 30) -> None:
    partial = folder / "out" / "results.json.partial.jsonl"
    deadline = time.time() + limit
    while time.time() < deadline:
        if partial.exists() and partial.read_text().count("\n") >= n:
            return
        time.sleep(0.01)


def trial(scenario: str) -> dict[str, bool]:
    """One trial: did it keep every finished case once, leave nothing, end in time?"""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "faulty.py").write_text(SUITE)
        t0 = time.monotonic()
        expect_all = True
        if scenario in ("double-sigint", "sigterm-sigint"):
            proc = bench(folder, "", sleep=0.3)
            wait_for_records(folder, 1)
            first = signal.SIGINT if scenario == "double-sigint" else signal.SIGTERM
            proc.send_signal(first)
            time.sleep(0.01)
            proc.send_signal(signal.SIGINT)
            expect_all = False
        elif scenario == "overlap":
            proc = bench(folder, "", sleep=0.3)
            wait_for_records(folder, 1)
            second = bench(folder, "")
            second.communicate(timeout=60)
            refused = second.returncode != 0
        else:
            extra = ("--case-timeout", "1") if scenario in ("spin", "hang") else ()
            proc = bench(folder, {"kill-after-record": "kill-after-record"}.get(scenario, scenario),
                         *extra)  # fmt: skip
        try:
            proc.communicate(timeout=60)
            in_time = True
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            in_time = False
        elapsed = time.monotonic() - t0
        try:
            recs = json.loads((folder / "out" / "results.json").read_text())["results"]
        except (OSError, ValueError):
            recs = None
        cases = [r["case"] for r in recs] if recs is not None else []
        once = recs is not None and len(cases) == len(set(cases))
        # every case but the faulty one measured (the signals: whatever finished, no error)
        bad = {"c2"} if scenario in ("crash", "spin", "hang") else set()
        measured = {r["case"] for r in recs or () if r.get("error") is None}
        complete = recs is not None and (
            not expect_all or measured == {f"c{i}" for i in range(5)} - bad)
        if not expect_all:
            complete = complete and len(measured) == len(cases) >= 1
        time.sleep(0.2)
        pids = [int(p) for p in (folder / "pids").read_text().split()] if (
            folder / "pids").exists() else []  # fmt: skip
        left = [p for p in pids if alive(p)]
        for p in left:
            os.kill(p, signal.SIGKILL)
        out = {"results kept": recs is not None and complete, "each case once": once,
               "nothing left running": not left, "in time": in_time and elapsed < 60}
        if scenario == "overlap":
            out["second run refused"] = refused
        return out


SCENARIOS = ("double-sigint", "sigterm-sigint", "kill-after-record", "crash", "spin", "hang",
             "fork", "overlap")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = parser.parse_args()
    print(f"# vecx bench under faults, {args.trials} trials each; load {os.getloadavg()[0]:.2f}")
    print("\n| scenario | " + " | ".join(["results kept", "each case once",
                                            "nothing left running", "in time",
                                            "second run refused"]) + " |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    for scenario in args.scenarios.split(","):
        found = [trial(scenario) for _ in range(args.trials)]
        keys = ["results kept", "each case once", "nothing left running", "in time",
                "second run refused"]  # fmt: skip
        cells = [f"{sum(f[k] for f in found)}/{len(found)}" if k in found[0] else "-"
                 for k in keys]  # fmt: skip
        print(f"| {scenario} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
