"""vecx bench under faults: repeated trials of each scripted fault, counted.

Every scenario is one fault of the issue "vecx bench under faults" (its number in the
table's first column), injected as a user would meet it: ``vecx bench``, ``vecx train``,
``vecx info``, ``compare``/``plot``/``report`` in a subprocess, on a small suite whose
cases misbehave on purpose, plugins installed through a ``.dist-info`` folder, files
damaged by hand. Each trial checks what the issue asks (every finished case in
``results.json`` exactly once, no process of the run left alive, one line on stderr
and no traceback, the run over in time) and the table counts the trials in which every
check held, naming any check that failed.

    python bench/faults.py [--trials 10] [--scenarios spin,hang,...] [--vecx CHECKOUT]

``--vecx`` runs the trials against another checkout of vecx (an older main, say).

``disk-full`` mounts a 64 KiB tmpfs, so it needs root (else it is reported skipped).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the vecx under test (--vecx changes it)

SUITE = textwrap.dedent('''
    """Cases c0..c{COUNT-1}; c2 misbehaves as MODE says (an environment variable of the run)."""
    import os, time
    from vecx.results import result
    from vecx.suites import Case

    NAME = "faulty"
    MODE = os.environ.get("FAULT_MODE", "")
    PIDS = os.environ.get("FAULT_PIDS", "")
    COUNT = int(os.environ.get("FAULT_COUNT", "5"))

    def plan(device, *, quick=False, **_):
        return [(f"c{i}", {"i": i}) for i in range(COUNT)]

    def cases(be, *, quick=False, seed=0, **_):
        if PIDS:
            with open(PIDS, "a") as f:
                f.write(f"{os.getpid()}\\n")

        def run(i):
            time.sleep(float(os.environ.get("FAULT_SLEEP", "0.05")))
            ok = result(NAME, f"c{i}", be.name, be.device, params={"i": i}, median_s=1e-3,
                        iqr_s=0.0, n_runs=1, metric="time", value=1e-3, unit="s")
            if i != 2:
                return ok
            if MODE == "crash":
                os._exit(3)
            if MODE == "sigkill":  # as the OOM killer does
                os.kill(os.getpid(), 9)
            if MODE == "segfault":
                import ctypes
                ctypes.string_at(0)
            if MODE == "spin":
                while True:
                    pass
            if MODE in ("hang", "c-hang"):
                time.sleep(1000)
            if MODE in ("fork", "fork-crash") and os.fork() == 0:
                with open(PIDS, "a") as f:
                    f.write(f"{os.getpid()}\\n")
                time.sleep(1000)
                os._exit(0)
            if MODE == "fork-crash":
                os._exit(3)
            if MODE == "kill-after-record":
                from vecx.engine.events import Event
                encode = Event.encode
                def killing(self):
                    if self.kind == "done":
                        os.kill(os.getpid(), 9)
                    return encode(self)
                Event.encode = killing
            if MODE == "none":
                return None
            if MODE == "nan-record":
                return {**ok, "median_s": float("nan")}
            if MODE == "missing-keys":
                return {"suite": NAME, "case": "c2"}
            if MODE == "ctrlc":
                raise KeyboardInterrupt
            return ok

        return [Case(NAME, f"c{i}", {"i": i}, lambda i=i: run(i)) for i in range(COUNT)]
''')

PLUGINS = {
    "quitter.py": "import sys\nsys.exit(3)\n",
    "sleepy.py": textwrap.dedent('''
        import time, vecx
        class Sleepy:
            @staticmethod
            def probe(device):
                time.sleep(30)
            def __init__(self, device, **kw):
                self._inner = vecx.backend("numpy", **kw)
            def __getattr__(self, name):
                return getattr(self._inner, name)
    '''),
    "named.py": textwrap.dedent('''
        import vecx
        class Named:
            def __init__(self, device, **kw):
                self._inner = vecx.backend("numpy", **kw)
                self.name, self.device = "torch2", device
            def __getattr__(self, name):
                return getattr(self._inner, name)
    '''),
    "half.py": textwrap.dedent('''
        import numpy as np
        class Half:
            def __init__(self, device, **kw):
                self.name, self.device, self.dtype = "halfbe", device, "float32"
            def ones(self, shape, dtype=None):
                return np.ones(shape, "float32")
    '''),
}
ENTRY_POINTS = {
    "exit": "quitter = quitter:Backend\n",
    "sleep": "sleepy = sleepy:Sleepy\n",
    "names": "Torch2 = named:Named\nmy:backend = named:Named\n",
    "half": "halfbe = half:Half\n",
}


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class Trial:
    """One trial's folder, its processes and what it found."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.out = folder, folder / "out"
        (folder / "faulty.py").write_text(SUITE)
        self.env = {**os.environ, "FAULT_PIDS": str(folder / "pids"),
                    "PYTHONPATH": os.pathsep.join([str(ROOT), str(folder)])}  # fmt: skip
        self.env.pop("VECX_BACKENDS", None)

    def popen(self, *args: str, **env: str) -> subprocess.Popen:
        """``python -m vecx ARGS``; its output goes to files (`finish` reads them): a
        pipe nobody reads while 2000 progress lines come would stall the run."""
        self.runs = getattr(self, "runs", 0) + 1
        io = self.folder / ".io"
        io.mkdir(exist_ok=True)
        out, err = io / f"stdout-{self.runs}", io / f"stderr-{self.runs}"
        with open(out, "w") as o, open(err, "w") as e:
            proc = subprocess.Popen([sys.executable, "-m", "vecx", *args], cwd=self.folder,
                                    env={**self.env, **env}, stdout=o, stderr=e,
                                    stdin=subprocess.DEVNULL)  # fmt: skip
        proc.out_path, proc.err_path = out, err  # type: ignore[attr-defined]
        return proc

    def vecx(self, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
        proc = self.popen(*args, **env)
        rc, out, err, _ = finish(proc, timeout)
        return subprocess.CompletedProcess(proc.args, rc, out, err)

    def bench(self, mode: str = "", *extra: str, sleep: float = 0.05, count: int = 5,
              out: Path | None = None) -> subprocess.Popen:  # fmt: skip
        return self.popen("bench", "--backends", "numpy", "--suites", "faulty.py", "--out",
                          str(out or self.out), "--quiet", "--no-plots", *extra,
                          FAULT_MODE=mode, FAULT_SLEEP=str(sleep),
                          FAULT_COUNT=str(count))  # fmt: skip

    def records(self, n: int, limit: float = 60) -> bool:
        partial = self.out / "results.json.partial.jsonl"
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if partial.read_bytes().count(b"\n") >= n:
                    return True
            time.sleep(0.002)
        return False

    def results(self) -> list[dict] | None:
        try:
            return json.loads((self.out / "results.json").read_text())["results"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def nothing_left(self) -> bool:
        """No worker or child of the run alive (those still alive are killed)."""
        time.sleep(0.2)
        pids_file = self.folder / "pids"
        pids = [int(p) for p in pids_file.read_text().split()] if pids_file.exists() else []
        left = [p for p in pids if alive(p)]
        for p in left:
            os.kill(p, signal.SIGKILL)
        return not left

    def install(self, plugin: str) -> None:
        for name, text in PLUGINS.items():
            (self.folder / name).write_text(text)
        dist = self.folder / f"fault_{plugin}-0.1.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fault-{plugin}\n"
                                       "Version: 0.1\n")  # fmt: skip
        (dist / "entry_points.txt").write_text("[vecx.backends]\n" + ENTRY_POINTS[plugin])


def finish(proc: subprocess.Popen, limit: float = 60) -> tuple[object, str, str, float]:
    """(exit status or "timeout", stdout, stderr, seconds waited) of a `Trial.popen`."""
    t0 = time.monotonic()
    try:
        rc: object = proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        rc = "timeout"
    out = proc.out_path.read_text(errors="replace")  # type: ignore[attr-defined]
    err = proc.err_path.read_text(errors="replace")  # type: ignore[attr-defined]
    return rc, out, err, time.monotonic() - t0


def one_line(err: str) -> bool:
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err


def measured(recs: list[dict] | None) -> set[str]:
    return {r["case"] for r in recs or () if r.get("error") is None}


def cases_once(recs: list[dict] | None) -> bool:
    names = [r["case"] for r in recs or ()]
    return recs is not None and len(names) == len(set(names))


ALL = {f"c{i}" for i in range(5)}


# --------------------------------------------------------------------------- scenarios
# Each takes a Trial and returns its checks, by name.


def signals(first: int, mode: str = "") -> Callable[[Trial], dict[str, bool]]:
    """Item 1: a second signal 10 ms after the first, while the engine stops the worker
    (``c-hang``: the worker is in C code, a long sleep, when they come)."""

    def scenario(t: Trial) -> dict[str, bool]:
        proc = t.bench(mode, sleep=0.3)
        t.records(1 if not mode else 2)
        if mode:
            time.sleep(0.3)  # c2 is in its sleep
        proc.send_signal(first)
        time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        rc, _, err, _ = finish(proc)
        recs = t.results()
        return {"exit 130": rc == 130, "results kept": bool(recs) and len(measured(recs)) ==
                len(recs), "each case once": cases_once(recs), "nothing left": t.nothing_left()}

    return scenario


def sigterm_assembling(t: Trial) -> dict[str, bool]:
    """Item 1: SIGTERMs every 2 ms from the moment the 2000th record is on disk."""
    proc = t.bench("", sleep=0.0, count=2000)
    t.records(2000, limit=120)
    while proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        time.sleep(0.002)
    finish(proc)
    recs = t.results()
    return {"results.json has all 2000": recs is not None and len(measured(recs)) == 2000,
            "each case once": cases_once(recs), "nothing left": t.nothing_left()}


def sigterm_precheck(t: Trial) -> dict[str, bool]:
    """Item 1: SIGTERM as soon as the run holds its folder (the backends are checked next)."""
    proc = t.bench("")
    lock = t.out / ".vecx-bench.lock"
    deadline = time.monotonic() + 30
    while not lock.exists() and time.monotonic() < deadline:
        time.sleep(0.001)
    proc.send_signal(signal.SIGTERM)
    rc, _, err, _ = finish(proc)
    partial_only = (t.out / "results.json.partial.jsonl").exists() and not (
        t.out / "results.json").exists()  # fmt: skip
    return {"exit 130": rc == 130, "says interrupted": "interrupted" in err,
            "no orphan partial file": not partial_only, "nothing left": t.nothing_left()}


def overlap(t: Trial) -> dict[str, bool]:
    """Item 2: a second run into the same --out while the first runs."""
    proc = t.bench("", sleep=0.3)
    t.records(1)
    second = t.bench("")
    rc2, _, err2, _ = finish(second)
    rc, _, _, _ = finish(proc)
    recs = t.results()
    return {"second refused in one line": rc2 != 0 and one_line(err2) and "in use" in err2,
            "first complete": rc == 0 and measured(recs) == ALL,
            "each case once": cases_once(recs), "nothing left": t.nothing_left()}


def faulty_case(mode: str, bad: bool, *extra: str, says: str = "",
                log_says: str = "") -> Callable[[Trial], dict[str, bool]]:  # fmt: skip
    """Items 3-6 and 11: c2 misbehaves; every other case must be measured, once."""

    def scenario(t: Trial) -> dict[str, bool]:
        rc, _, err, elapsed = finish(t.bench(mode, *extra))
        recs = t.results()
        c2 = next((r for r in recs or () if r["case"] == "c2"), {})
        checks = {"results kept": measured(recs) == (ALL - {"c2"} if bad else ALL),
                  "each case once": cases_once(recs) and len(recs or ()) == 5,
                  "in time": rc != "timeout" and elapsed < 60,
                  "nothing left": t.nothing_left()}  # fmt: skip
        if says:
            checks[f"c2 says {says!r}"] = says in (c2.get("error") or "")
        if log_says:
            logs = "".join(p.read_text() for p in t.out.glob("worker-*.log"))
            checks[f"log says {log_says!r}"] = log_says in logs
        return checks

    return scenario


def disk_full(t: Trial) -> dict[str, bool]:
    """Item 7: the disk fills while the run is under way; its end cannot be written."""
    t.out.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(t.out)],
                             capture_output=True).returncode == 0  # fmt: skip
    if not mounted:
        return {}
    try:
        proc = t.bench("", sleep=0.3)
        t.records(1)
        with contextlib.suppress(OSError), open(t.out / "filler", "wb") as f:
            while True:
                f.write(b"x" * 1024)
                f.flush()
        rc, _, err, _ = finish(proc)
        partial = t.out / "results.json.partial.jsonl"
        (t.out / "filler").unlink()
        report = t.vecx("report", str(partial), "-o", str(t.folder / "R.md"))
        errors = [ln for ln in err.splitlines() if not ln.startswith("[")]  # not progress
        return {"one line": rc not in (0, "timeout") and len(errors) == 1 and (
                    "Traceback" not in err),  # fmt: skip
                "names the partial file": str(partial) in err,
                "report reads it": report.returncode == 0 and "c4" in (
                    t.folder / "R.md").read_text(),  # fmt: skip
                "nothing left": t.nothing_left()}
    finally:
        subprocess.run(["umount", "-l", str(t.out)], capture_output=True)


def results_folder(t: Trial) -> dict[str, bool]:
    """Item 7: OUT/results.json is a folder: refused before any case runs."""
    (t.out / "results.json").mkdir(parents=True)
    rc, _, err, _ = finish(t.bench(""))
    return {"one line, exit 2": rc == 2 and one_line(err),
            "names the path": str(t.out / "results.json") in err,
            "no case ran": not (t.folder / "pids").exists()}


def train_sigterm(t: Trial) -> dict[str, bool]:
    """Item 8: vecx train gets SIGTERM mid-run; the history so far is written, no temp."""
    target = t.folder / "h.json"
    proc = t.popen("train", "--backend", "numpy", "--preset", "digits-mlp", "--epochs",
                   "500", "--json", str(target))  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.out_path.read_text().count("\n") < 2:  # type: ignore[attr-defined]
        time.sleep(0.01)  # the header, then a first checkpoint
    proc.send_signal(signal.SIGTERM)
    rc, _, err, _ = finish(proc)
    try:
        doc = json.loads(target.read_text())
    except (OSError, ValueError):
        doc = {}
    return {"exit 130": rc == 130, "history written": doc.get("interrupted") is True and
            len(doc.get("losses", [])) >= 1,
            "no temp file": not list(t.folder.glob(".h.json.*"))}  # fmt: skip


FIT_INF = """
import numpy as np, vecx
X = np.full((20, 2), 1e30, np.float32)  # finite, but its squared error overflows
y = np.ones((20, 1), np.float32)
try:
    h = vecx.fit(vecx.backend("numpy"), X, y, lr=0.03, batch_size=10, epochs=1)
    print("returned", h.loss)
except vecx.TrainingDiverged as exc:
    print("diverged", exc)
"""


def fit_inf(t: Trial) -> dict[str, bool]:
    """Item 8: vecx.fit from an already infinite loss."""
    proc = subprocess.run([sys.executable, "-c", FIT_INF], capture_output=True, text=True,
                          env=t.env, timeout=120)  # fmt: skip
    return {"TrainingDiverged": proc.stdout.startswith("diverged")}


def plugin(kind: str) -> Callable[[Trial], dict[str, bool]]:
    """Item 9 (and 10's plugin missing methods): a plugin can only break itself."""

    def scenario(t: Trial) -> dict[str, bool]:
        t.install(kind)
        info = t.vecx("info", timeout=60)
        rc, _, err, _ = finish(t.bench(""))
        recs = t.results()
        checks = {"vecx info works": info.returncode == 0 and "numpy:cpu" in info.stdout,
                  "bench on numpy works": rc == 0 and measured(recs) == ALL}  # fmt: skip
        if kind == "names":
            checks["Torch2 is torch2"] = "torch2:cpu" in info.stdout
            checks["one warning for my:backend"] = info.stderr.count("'my:backend' ignored") == 1
        if kind == "half":
            train = t.vecx("train", "--backend", "halfbe", "--preset", "linreg")
            checks["train: one line"] = train.returncode == 1 and one_line(train.stderr) and (
                "lacks" in train.stderr)  # fmt: skip
        return checks

    return scenario


def _bad_files(good: dict) -> dict[str, str]:
    """Damaged copies of a good results document, as text."""
    import copy

    def mutated(change: Callable[[dict], object]) -> str:
        doc = copy.deepcopy(good)
        change(doc)
        return json.dumps(doc)

    r0 = lambda d: d["results"][0]  # noqa: E731
    return {
        "median_s string": mutated(lambda d: r0(d).update(median_s="fast")),
        "median_s list": mutated(lambda d: r0(d).update(median_s=[1])),
        "median_s true": mutated(lambda d: r0(d).update(median_s=True)),
        "iqr_s string": mutated(lambda d: r0(d).update(iqr_s="x")),
        "value dict": mutated(lambda d: r0(d).update(value={})),
        "ceilings.cpu list": mutated(lambda d: d["settings"].update(ceilings={"cpu": [1]})),
        "NaN median": json.dumps(good).replace('"median_s": 0.001', '"median_s": NaN', 1),
        "Infinity value": json.dumps(good).replace('"value": 0.001', '"value": Infinity', 1),
        "negative time": mutated(lambda d: r0(d).update(median_s=-1.0)),
        "settings a list": mutated(lambda d: d.update(settings=[])),
    }


def bad_results(t: Trial) -> dict[str, bool]:
    """Item 10: damaged results files in compare, plot and report: one line, exit 2."""
    finish(t.bench(""))
    good_path = t.out / "results.json"
    good = json.loads(good_path.read_text())
    checks = {}
    for name, text in _bad_files(good).items():
        bad = t.folder / "bad.json"
        bad.write_text(text)
        runs = [t.vecx("compare", str(good_path), str(bad)),
                t.vecx("plot", str(bad), "--out", str(t.folder / "p")),
                t.vecx("report", str(bad), "-o", str(t.folder / "r.md"))]  # fmt: skip
        checks[name] = all(r.returncode == 2 and one_line(r.stderr) for r in runs)
    return checks


def bad_suite(text: str, says: str) -> Callable[[Trial], dict[str, bool]]:
    """Item 10: a suite whose plan() raises, or whose module does not parse."""

    def scenario(t: Trial) -> dict[str, bool]:
        (t.folder / "broken.py").write_text(text)
        rc, _, err, _ = finish(t.popen("bench", "--backends", "numpy", "--suites", "broken.py",
                                       "--out", str(t.out), "--quiet", "--no-plots"))
        return {"one line, exit 2": rc == 2 and one_line(err),
                f"names {says!r}": says in err, "no partial file": not (
                    t.out / "results.json.partial.jsonl").exists()}  # fmt: skip

    return scenario


PLAN_RAISES = textwrap.dedent('''
    NAME = "broken"
    def plan(device, **_):
        return None + 1
    def cases(be, **_):
        return []
''')


DTYPE = """
import numpy as np, vecx
be = vecx.backend("numpy", dtype=np.dtype("float32"))
assert be.ones(2).dtype == np.float32 and be.normal(0.0, 1.0, (2,)).dtype == np.float32
try:
    vecx.backend("numpy", dtype=3)
except TypeError as exc:
    print("refused", exc)
"""


def dtype_object(t: Trial) -> dict[str, bool]:
    """Item 11: a NumPy dtype object is its name; anything else fails at construction."""
    proc = subprocess.run([sys.executable, "-c", DTYPE], capture_output=True, text=True,
                          env=t.env, timeout=120)  # fmt: skip
    return {"works, then refused": proc.returncode == 0 and proc.stdout.startswith("refused")}


def empty_out(t: Trial) -> dict[str, bool]:
    """Item 11: --out "" is refused, nothing written in the current folder."""
    proc = t.vecx("bench", "--backends", "numpy", "--suites", "faulty.py", "--out", "")
    written = {p.name for p in t.folder.iterdir()} - {"faulty.py", ".io"}
    return {"one line, exit 2": proc.returncode == 2 and one_line(proc.stderr),
            "nothing written": not written}


SCENARIOS: dict[str, tuple[str, Callable[[Trial], dict[str, bool]]]] = {
    "double-sigint": ("1", signals(signal.SIGINT)),
    "sigterm-sigint": ("1", signals(signal.SIGTERM)),
    "double-sigint-in-c": ("1", signals(signal.SIGINT, "c-hang")),
    "sigterm-assembling": ("1", sigterm_assembling),
    "sigterm-precheck": ("1", sigterm_precheck),
    "overlap": ("2", overlap),
    "kill-after-record": ("3", faulty_case("kill-after-record", False)),
    "spin": ("4", faulty_case("spin", True, "--case-timeout", "1", says="timed out after 1 s")),
    "hang": ("4", faulty_case("hang", True, "--case-timeout", "1", says="timed out after 1 s")),
    "fork": ("4", faulty_case("fork", False)),
    "fork-crash": ("4", faulty_case("fork-crash", True, says="worker crashed")),
    "none": ("5", faulty_case("none", True, says="returned None")),
    "nan-record": ("5", faulty_case("nan-record", True, says="nan")),
    "missing-keys": ("5", faulty_case("missing-keys", True, says="missing keys")),
    "crash": ("6", faulty_case("crash", True, says="exit status 3")),
    "sigkill": ("6", faulty_case("sigkill", True, says="SIGKILL")),
    "segfault": ("6, 11", faulty_case("segfault", True, says="Segmentation fault in",
                                      log_says="Fatal Python error: Segmentation fault")),
    "disk-full": ("7", disk_full),
    "results-folder": ("7", results_folder),
    "train-sigterm": ("8", train_sigterm),
    "fit-inf-start": ("8", fit_inf),
    "plugin-exit": ("9", plugin("exit")),
    "plugin-sleep": ("9", plugin("sleep")),
    "plugin-names": ("9", plugin("names")),
    "bad-results": ("10", bad_results),
    "plan-raises": ("10", bad_suite(PLAN_RAISES, "broken.py:4")),
    "syntax-error": ("10", bad_suite("def plan(:\n", "broken.py:1: SyntaxError")),
    "plugin-half": ("10", plugin("half")),
    "dtype-object": ("11", dtype_object),
    "case-ctrlc": ("11", faulty_case("ctrlc", True, says="KeyboardInterrupt")),
    "empty-out": ("11", empty_out),
}


def run_trial(scenario: Callable[[Trial], dict[str, bool]]) -> dict[str, bool]:
    folder = Path(tempfile.mkdtemp(prefix="vecx-fault-"))
    try:
        return scenario(Trial(folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    global ROOT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--vecx", type=Path, default=ROOT, metavar="CHECKOUT",
                        help="the vecx checkout to test (default: this one)")
    args = parser.parse_args()
    ROOT = args.vecx.resolve()
    chosen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "?"  # fmt: skip
    print(f"# vecx bench under faults ({ROOT}, {commit}), {args.trials} trials each; load "
          f"{os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs")  # fmt: skip
    print("\n| item | scenario | trials with every check | checks | failed checks |")
    print("|---|---|---:|---:|---|")
    for name in chosen:
        item, scenario = SCENARIOS[name]
        found = [run_trial(scenario) for _ in range(args.trials)]
        if not found[0]:
            print(f"| {item} | {name} | skipped (needs root for a tmpfs) | - | |", flush=True)
            continue
        good = sum(all(f.values()) for f in found)
        failed = sorted({k for f in found for k, v in f.items() if not v})
        counts = ", ".join(f"{k} ({sum(not f.get(k, True) for f in found)})" for k in failed)
        print(f"| {item} | {name} | {good}/{len(found)} | {len(found[0])} | {counts} |",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
