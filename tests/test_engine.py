"""Tests of the bench engine (vecx.engine): workers, crashes, interruption, post-processing.

Fake suites (a module written to a temporary folder and put on PYTHONPATH, so workers can
import it too) make crashes and slow cases deterministic and cheap.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import vecx
from vecx.engine.options import BenchOptions, candidate_specs, check_suites, shuffled_order
from vecx.engine.progress import Progress
from vecx.engine.run import busy_warning, run_bench
from vecx.results import ResultWriter, load, result
from vecx.suites.scaling import add_ceilings
from vecx.suites.train import check_agreement

ROOT = Path(__file__).resolve().parent.parent

FAKE_SUITE = '''
"""A suite for tests: cases c0..c{count-1}; c1 misbehaves on the backends in crash_on."""
import os, time
from vecx.results import result
from vecx.suites import Case

NAME = "fake"
STOPPED = []  # SIGTERMs received while mode="interrupt" holds them off

def plan(device, *, quick=False, count=3, **_):
    return [(f"c{i}", {"i": i}) for i in range(count)]

def cases(be, *, quick=False, seed=0, count=3, mode="ok", crash_on="", sleep=0.0,
          pidfile=None):
    if pidfile:
        with open(pidfile, "w") as f:
            f.write(str(os.getpid()))

    def run(i):
        time.sleep(sleep)
        if i == 1 and be.name in crash_on.split(","):
            if mode == "exit":
                os._exit(3)
            if mode == "kill":
                os.kill(os.getpid(), 9)
            if mode == "raise":
                raise RuntimeError("boom in c1")
            if mode == "segv":
                import ctypes
                ctypes.string_at(0)  # reads address 0: SIGSEGV
        if i == 1 and mode == "spin":
            while True:
                pass
        if i == 1 and mode == "hang":
            time.sleep(1000)  # in C: no Python signal handler runs
        if i == 1 and mode == "fork" and os.fork() == 0:  # a child holding the event pipe
            with open(pidfile + ".child", "w") as f:
                f.write(str(os.getpid()))
            time.sleep(1000)
            os._exit(0)
        if i == 1 and mode == "killafter":  # killed between its record and the done event
            from vecx.engine.events import Event
            encode = Event.encode
            def killing(self):
                if self.kind == "done":
                    os.kill(os.getpid(), 9)
                return encode(self)
            Event.encode = killing
        if i == 1 and mode == "none":
            return None
        if i == 1 and mode == "badrecord":
            return {"suite": NAME, "case": "c1"}
        if i == 1 and mode == "ctrlc":
            raise KeyboardInterrupt
        if mode == "interrupt" and i == 1:  # c1 interrupts the parent and still finishes
            import signal
            signal.signal(signal.SIGTERM, lambda *_: STOPPED.append(1))  # noted, obeyed in c2
            os.kill(os.getppid(), signal.SIGINT)
            time.sleep(0.5)  # the parent stops reading events and sends SIGTERM meanwhile
        if mode == "interrupt" and i >= 2:
            deadline = time.time() + 10
            while not STOPPED and time.time() < deadline:
                time.sleep(0.01)
            raise SystemExit(143)
        return result(NAME, f"c{i}", be.name, be.device, params={"i": i}, median_s=1e-3,
                      iqr_s=0.0, n_runs=1, metric="time", value=1e-3, unit="s",
                      env=os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE"), seed=seed)

    return [Case(NAME, f"c{i}", {"i": i}, lambda i=i: run(i)) for i in range(count)]
'''


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """Name of the fake suite module, importable here and in workers."""
    pkg = tmp_path / "fakesuites"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "fake.py").write_text(FAKE_SUITE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    )
    return "fakesuites.fake"


def _opts(tmp_path, suites, sizes=None, backends=("numpy",), **kw):
    return BenchOptions(
        backends=list(backends), suites=list(suites), out=tmp_path / "out", quiet=True,
        sizes=sizes or {}, **kw,
    )  # fmt: skip


def _jax_available() -> bool:
    return vecx.registry.status("jax:cpu").available


# --------------------------------------------------------------------------- end to end


def test_worker_records_stream_and_validate(tmp_path, fake):
    outcome = run_bench(_opts(tmp_path, [fake], seed=5))
    doc = load(outcome.path)  # the file validates
    assert outcome.exit_status == 0 and outcome.errors == 0 and not outcome.interrupted
    assert [r["case"] for r in doc["results"]] == ["c0", "c1", "c2"]
    assert all(r["env"] == "false" for r in doc["results"])  # XLA_PYTHON_CLIENT_PREALLOCATE
    assert all(r["seed"] == 5 for r in doc["results"])
    settings = doc["settings"]
    assert settings["order"] == ["numpy:cpu"] and settings["seed"] == 5
    assert settings["dtype"] == "float32" and settings["precision"] == "float32"
    assert settings["quick"] is False and settings["suites"] == ["fake"]
    assert "env" in settings and settings["interrupted"] is None
    assert settings["workers"]["numpy:cpu"]["blas"] is not None  # threadpoolctl, in the worker
    assert len(settings["load"]["numpy:cpu"]["start"]) == 3
    assert doc["backends"]["numpy:cpu"]["framework"] == "numpy"
    assert not ResultWriter.partial_path(outcome.path).exists()
    assert not list((tmp_path / "out").glob("worker-*.log"))  # logs kept only on failure


def test_a_raising_case_is_an_error_and_the_rest_runs(tmp_path, fake):
    outcome = run_bench(_opts(tmp_path, [fake], {fake: {"mode": "raise", "crash_on": "numpy"}}))
    recs = load(outcome.path)["results"]
    assert [r["case"] for r in recs] == ["c0", "c1", "c2"]
    assert recs[1]["error"] == "RuntimeError: boom in c1"
    assert recs[0]["error"] is None and recs[2]["error"] is None
    assert outcome.errors == 1 and outcome.exit_status == 1


@pytest.mark.parametrize("mode, why", [("exit", "exit status 3"), ("kill", "killed by SIGKILL"),
                                       ("segv", "killed by SIGSEGV")])  # fmt: skip
def test_a_crashing_worker_is_recorded_and_the_run_goes_on(tmp_path, fake, mode, why):
    backends = ("numpy", "jax:cpu") if _jax_available() else ("numpy",)
    outcome = run_bench(
        _opts(tmp_path, [fake], {fake: {"mode": mode, "crash_on": "numpy"}}, backends=backends)
    )
    recs = load(outcome.path)["results"]
    numpy = {r["case"]: r for r in recs if r["backend"] == "numpy"}
    assert numpy["c0"]["error"] is None
    assert numpy["c1"]["error"].startswith(f"worker crashed during this case ({why}")
    assert numpy["c2"]["error"] is None  # run by a new worker, after the crash
    assert [r["case"] for r in recs if r["backend"] == "numpy"] == ["c0", "c1", "c2"]  # once each
    assert numpy["c1"]["params"] == {"i": 1} and numpy["c1"]["device"] == "cpu"
    log = tmp_path / "out" / "worker-numpy-cpu.log"
    assert log.exists()  # kept for the post-mortem
    if mode == "segv":  # which says where: Python's stacks, written by faulthandler
        assert "Fatal Python error: Segmentation fault" in log.read_text()
        assert re.search(r"\(killed by SIGSEGV\): Segmentation fault in .*fake\.py:\d+ in run$",
                         numpy["c1"]["error"])  # fmt: skip
    if len(backends) == 2:  # the other backend ran all its cases
        jax = [r for r in recs if r["backend"] == "jax"]
        assert [r["case"] for r in jax] == ["c0", "c1", "c2"]
        assert all(r["error"] is None for r in jax)
    assert outcome.exit_status == 1


def test_a_backend_that_cannot_start_records_each_planned_case(tmp_path, fake):
    opts = _opts(tmp_path, [fake])
    opts.precision = "fp8"  # the worker's backend constructor rejects it
    outcome = run_bench(opts)
    recs = load(outcome.path)["results"]
    assert [r["case"] for r in recs] == ["c0", "c1", "c2"]
    for rec in recs:
        assert rec["error"].startswith("numpy:cpu could not start: ValueError: unknown precision")
    assert outcome.errors == 3 and outcome.exit_status == 1


def test_unwritable_out_fails_before_running(tmp_path, fake):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    opts = _opts(tmp_path, [fake], {fake: {"sleep": 5.0}})
    opts.out = blocker / "results"
    t0 = time.perf_counter()
    with pytest.raises(OSError, match="cannot write results"):
        run_bench(opts)
    assert time.perf_counter() - t0 < 2.0  # no worker, no probe


def test_unknown_backend_or_suite_fails_before_running(tmp_path):
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        run_bench(_opts(tmp_path, ["vector-add"], backends=["nope"]))
    with pytest.raises(ValueError, match="unknown suite 'nope'"):
        run_bench(_opts(tmp_path, ["nope"]))
    assert not (tmp_path / "out").exists()


def test_only_unavailable_backends_is_one_clear_error(tmp_path):
    if vecx.registry.status("cupy:cuda").available:
        pytest.skip("a GPU is available here")
    with pytest.raises(RuntimeError, match="no selected backend is available.*cupy:cuda"):
        run_bench(_opts(tmp_path, ["vector-add"], backends=["cupy"]))
    assert not ResultWriter.partial_path(tmp_path / "out" / "results.json").exists()


def _start_bench(tmp_path, fake, extra_sizes):
    """`vecx bench` in a subprocess with SIGINT delivered as KeyboardInterrupt."""
    sizes = {fake: {"count": 40, "sleep": 0.3, "pidfile": str(tmp_path / "pid"), **extra_sizes}}
    code = textwrap.dedent(f"""
        import signal, sys
        signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignored
        from pathlib import Path
        from vecx.engine import BenchOptions, run_bench
        opts = BenchOptions(backends=["numpy"], suites=[{fake!r}], quiet=True,
                            out=Path({str(tmp_path / "out")!r}), sizes={sizes!r})
        outcome = run_bench(opts)
        print("SUMMARY", outcome.interrupted, len(outcome.doc["results"]), flush=True)
        sys.exit(outcome.exit_status)
    """)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))


@pytest.mark.parametrize("sig, name", [(signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")])
def test_interruption_keeps_completed_cases_and_prints_summary(tmp_path, fake, sig, name):
    proc = _start_bench(tmp_path, fake, {})
    partial = tmp_path / "out" / "results.json.partial.jsonl"
    deadline = time.time() + 30
    while time.time() < deadline:
        if partial.exists() and partial.read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("no record streamed within 30 s")
    seen = partial.read_text().count("\n")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    doc = load(tmp_path / "out" / "results.json")
    n = len(doc["results"])
    assert seen <= n < 40 and all(r["error"] is None for r in doc["results"])
    assert doc["settings"]["interrupted"] == name and doc["settings"]["cases_planned"] == 40
    assert f"SUMMARY {name} {n}" in out
    assert "+---" not in out  # the engine prints no table (vecx bench the command does)
    worker = int((tmp_path / "pid").read_text())
    with pytest.raises(ProcessLookupError):  # stopped and reaped by the parent, not orphaned
        os.kill(worker, 0)


def test_cases_recorded_after_the_signal_are_counted_and_shown(tmp_path, fake):
    """The worker finishes c1 after the parent got SIGINT: it is saved, so the progress
    lines must show it and count it, as the summary does."""
    proc = _start_bench(tmp_path, fake, {"mode": "interrupt", "sleep": 0.0})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    doc = load(tmp_path / "out" / "results.json")
    assert [r["case"] for r in doc["results"]] == ["c0", "c1"]
    assert "SUMMARY SIGINT 2" in out
    lines = [ln for ln in err.splitlines() if ln.startswith("[")]
    assert lines[-1].startswith("[ 2/40 ") and "fake/c1 (i=1)" in lines[-1], err


def test_figures_of_an_earlier_run_are_removed(tmp_path, fake):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("vector-add.png", "vector-add.svg", "scaling.png", "fake.png", "mine.png",
                 "notes.md"):  # fmt: skip
        (out / name).write_text("old")
    from vecx.cli import main

    # no plots drawn: the old ones, of the built-in suites and of this suite's generic
    # figure, would describe other runs; files no suite draws are left alone
    main(["bench", "--backends", "numpy", "--suites", fake, "--out", str(out), "--no-plots",
          "--quiet"])  # fmt: skip
    from vecx.engine.run import LOCK_NAME

    kept = sorted(p.name for p in out.iterdir() if p.name != LOCK_NAME)
    assert kept == ["mine.png", "notes.md", "results.json"]


def test_progress_clock_counts_from_the_start_of_the_run():
    import io

    stream = io.StringIO()
    progress = Progress(3, quiet=True, stream=stream, start=time.perf_counter() - 65)
    progress.line("x")
    assert stream.getvalue() == "[0/3 1:05] x\n"


# --------------------------------------------------------------------------- order, selection


def test_shuffled_order_is_seeded_and_recorded(tmp_path, fake):
    specs = ["numpy:cpu", "torch:cpu", "jax:cpu", "cupy:cuda"]
    assert shuffled_order(specs, 1) == shuffled_order(specs, 1)
    assert sorted(shuffled_order(specs, 1)) == sorted(specs)
    assert len({tuple(shuffled_order(specs, s)) for s in range(20)}) > 1


def test_candidate_specs():
    assert candidate_specs(["numpy"]) == ["numpy:cpu"]
    assert candidate_specs(["torch"]) == ["torch:cpu", "torch:cuda"]
    assert candidate_specs(["torch:gpu", "torch:cuda"]) == ["torch:cuda"]
    assert candidate_specs(["jax:cuda:1"]) == ["jax:cuda:1"]
    every = candidate_specs(None)
    assert "numpy:cpu" in every and "cupy:cuda" in every
    with pytest.raises(ValueError, match="unknown backend"):
        candidate_specs(["tensorflow"])
    with pytest.raises(ValueError, match="does not run on cuda"):
        candidate_specs(["numpy:cuda"])
    for empty in ([], [""], [" ", ""]):  # --backends "" or "," selects nothing: no default run
        with pytest.raises(ValueError, match="no backend selected; choose from numpy, torch"):
            candidate_specs(empty)


def test_check_suites():
    assert check_suites(None) == ["vector-add", "matmul", "scaling", "train"]
    assert check_suites(["matmul", "matmul"]) == ["matmul"]
    with pytest.raises(ValueError, match="unknown suite"):
        check_suites(["matmull"])
    assert check_suites(["Matmul", "VECTOR-ADD"]) == ["matmul", "vector-add"]
    for empty in ([], [""]):
        with pytest.raises(ValueError, match="no suite selected; choose from built-in: vector-add"):
            check_suites(empty)


def test_negative_seed_fails_before_running(tmp_path):
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        run_bench(_opts(tmp_path, ["vector-add"], seed=-1))
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- post-processing


def _scaling(case, backend, device, n, value, unit, error=None):
    metric = "gflops" if case == "matmul" else "bandwidth"
    return result("scaling", case, backend, device, params={"n": n}, median_s=1.0, metric=metric,
                  value=None if error else value, unit=unit, error=error)  # fmt: skip


def test_add_ceilings_per_device():
    recs = [
        _scaling("copy", "numpy", "cpu", 1024, 40.0, "GB/s"),
        _scaling("copy", "torch", "cpu", 4096, 80.0, "GB/s"),
        _scaling("vector-add", "numpy", "cpu", 4096, 60.0, "GB/s"),
        _scaling("vector-add", "jax", "cpu", 4096, 88.0, "GB/s"),  # above the copy: >100%
        _scaling("matmul", "numpy", "cpu", 512, 100.0, "GFLOP/s"),
        _scaling("matmul", "jax", "cpu", 512, 50.0, "GFLOP/s"),
        _scaling("copy", "torch", "cuda:0", 2**20, 2000.0, "GB/s"),
        _scaling("vector-add", "torch", "cuda:0", 2**20, 1500.0, "GB/s"),
        _scaling("matmul", "torch", "cuda:0", 4096, None, "GFLOP/s", error="OOM"),
        _scaling("vector-add", "cupy", "cuda:1", 64, 10.0, "GB/s"),  # no copy on cuda:1
        result("matmul", "full", "numpy", "cpu", metric="gflops", value=999.0, unit="GFLOP/s"),
    ]
    ceilings = add_ceilings(recs)
    pct = [r["pct_of_ceiling"] for r in recs]
    assert pct[:6] == pytest.approx([50.0, 100.0, 75.0, 110.0, 100.0, 50.0])
    assert pct[6:8] == pytest.approx([100.0, 75.0])
    assert pct[8] is None and pct[9] is None and pct[10] is None  # other suites untouched
    assert ceilings["cpu"]["bandwidth"]["value"] == 80.0
    assert ceilings["cpu"]["bandwidth"]["backend"] == "torch"
    assert ceilings["cpu"]["gflops"]["value"] == 100.0
    assert "gflops" not in ceilings["cuda:0"]
    assert recs[2]["ceiling"]["n"] == 4096 and recs[2]["ceiling"]["case"] == "copy"


def test_add_ceilings_records_a_main_memory_bandwidth():
    """The ceiling stays the best copy at any size (in cache on a CPU); a second reference,
    the best copy at sizes whose 2 arrays take >= 64 MiB, is recorded beside it."""
    recs = [
        _scaling("copy", "torch", "cpu", 2**19, 160.0, "GB/s"),  # 2 x 2 MiB: in cache
        _scaling("copy", "numpy", "cpu", 2**23, 14.0, "GB/s"),  # 2 x 32 MiB
        _scaling("copy", "jax", "cpu", 2**24, 12.0, "GB/s"),
        _scaling("copy", "torch", "cpu", 2**24, 13.0, "GB/s"),
        _scaling("vector-add", "numpy", "cpu", 2**24, 16.0, "GB/s"),
        _scaling("copy", "torch", "cuda:0", 2**18, 900.0, "GB/s"),  # a quick run: small
        _scaling("copy", "torch", "cuda:0", 2**20, 1800.0, "GB/s"),
        _scaling("copy", "cupy", "cuda:0", 2**20, 1700.0, "GB/s"),
    ]
    ceilings = add_ceilings(recs)
    cpu = ceilings["cpu"]
    assert cpu["bandwidth"]["value"] == 160.0 and "in-cache" in cpu["bandwidth"]["basis"]
    assert recs[4]["pct_of_ceiling"] == pytest.approx(10.0)  # still against the ceiling
    mem = cpu["bandwidth_memory"]
    assert (mem["value"], mem["backend"], mem["n"]) == (14.0, "numpy", 2**23)
    assert "64 MiB" in mem["basis"] and mem["main_memory"] is True
    gpu = ceilings["cuda:0"]["bandwidth_memory"]
    assert (gpu["value"], gpu["n"]) == (1800.0, 2**20)
    assert "largest size measured" in gpu["basis"] and gpu["main_memory"] is False


def _train(backend, preset, loss, impl="vecx", error=None):
    return result("train", preset, backend, "cpu", params={"preset": preset, "impl": impl},
                  median_s=0.1, metric="loss", value=None if error else loss, unit="",
                  error=error, agrees=None)  # fmt: skip


def test_check_agreement_flags_the_odd_one_out():
    recs = [
        _train("numpy", "linreg", 4.8466e-05),
        _train("torch", "linreg", 4.8465e-05),
        _train("torch", "linreg", 4.8467e-05, impl="native"),
        _train("jax", "linreg", 5.3e-05),  # 10% off: wrong
        _train("jax", "airfoil-gd", 0.2451732),
        _train("numpy", "airfoil-gd", 0.2451733),
        _train("torch", "airfoil-sgd", 0.2465),  # alone: nothing to compare with
        _train("numpy", "airfoil-sgd", None, error="TrainingDiverged: nan"),
    ]
    assert check_agreement(recs) == 1
    assert [r["agrees"] for r in recs] == [True, True, True, False, True, True, None, None]
    assert "disagrees with the median" in recs[3]["note"]


def test_check_agreement_tolerance_follows_precision():
    def recs():
        return [_train("numpy", "linreg", 0.2450), _train("torch", "linreg", 0.2450),
                _train("jax", "linreg", 0.2462)]  # 0.5% off  # fmt: skip

    assert check_agreement(recs()) == 1  # float32: rounding alone never moves it that far
    assert check_agreement(recs(), precision="tf32") == 0  # TF32 matmuls may


def test_check_agreement_two_that_differ_are_both_flagged():
    recs = [_train("numpy", "linreg", 1.0), _train("jax", "linreg", 2.0)]
    assert check_agreement(recs) == 2
    assert [r["agrees"] for r in recs] == [False, False]


def test_busy_warning():
    doc = {"machine": {"cores": 2}, "settings": {"load": {"numpy:cpu": {"start": [1.9, 1, 1]}}}}
    assert busy_warning(doc) is None
    doc["settings"]["load"]["jax:cpu"] = {"start": [1.0, 1, 1], "end": [3.2, 2, 1]}
    assert "3.20 on 2 cores" in busy_warning(doc)
    assert busy_warning({"machine": {}, "settings": {}}) is None


def test_worker_protocol_usage_line():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "vecx.engine.worker"], capture_output=True,
                         text=True, cwd=ROOT, env=env)  # fmt: skip
    assert out.returncode == 2 and "usage" in out.stderr


def test_precheck_asks_no_framework():
    from vecx.engine.run import precheck
    from vecx.environment import cuda_driver_present

    assert precheck("numpy:cpu") is None
    if not cuda_driver_present():
        assert "no NVIDIA driver" in precheck("torch:cuda")


def test_events_round_trip_and_ignore_foreign_lines():
    from vecx.engine.events import Event

    event = Event("done", suite="s", case="c", params={"n": 4}, text="1 ms")
    assert Event.decode(event.encode()) == event
    assert event.encode().endswith("\n") and "error" not in event.encode()
    for line in ("hello from a framework\n", "[1, 2]\n", '{"kind": "nope"}\n', "{}\n"):
        assert Event.decode(line) is None


# --------------------------------------------------------------------------- progress display


class _FakeTerminal:
    """A text stream that says it is a terminal, so Progress goes live."""

    def __init__(self) -> None:
        import io

        self.buffer = io.StringIO()

    def write(self, text: str) -> int:
        return self.buffer.write(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True


def test_live_progress_redraws_only_on_events():
    """The live bar must not take CPU from the worker it is timing: no refresh thread, no
    spinner, no output while nothing happens (rich's default redraws 10 times a second)."""
    import threading

    stream = _FakeTerminal()
    threads = threading.active_count()
    progress = Progress(2, quiet=False, stream=stream)
    try:
        assert progress.live
        assert threading.active_count() == threads  # no refresh thread started
        columns = [type(c).__name__ for c in progress._bar.columns]
        assert "SpinnerColumn" not in columns
        progress.begin("numpy:cpu  matmul/full (n=256)")
        assert "matmul/full (n=256)" in stream.buffer.getvalue()  # drawn on the event
        size = len(stream.buffer.getvalue())
        time.sleep(0.35)
        assert len(stream.buffer.getvalue()) == size  # nothing redrawn while idle
        progress.advance(text="numpy:cpu  matmul/full (n=256)  12 GFLOP/s")
        assert "1/2" in stream.buffer.getvalue()
    finally:
        progress.close()


def test_records_with_more_params_than_planned_are_not_counted_missing(tmp_path):
    """The train suite's records add their hyperparameters to the planned params: the
    engine must still see each case done (no 'ended early' duplicate, no count past total)."""
    sizes = {"train": {"presets": ["linreg"], "overrides": {"linreg": {"epochs": 1}},
                       "repeats": 1}}  # fmt: skip
    outcome = run_bench(_opts(tmp_path, ["train"], sizes))
    recs = outcome.doc["results"]
    assert len(recs) == 1 and recs[0]["error"] is None and outcome.errors == 0
    assert "lr" in recs[0]["params"]  # more than the planned preset and impl
    assert outcome.doc["settings"]["cases_recorded"] == outcome.doc["settings"]["cases_planned"]


def test_a_worker_that_finds_its_backend_unavailable_is_listed_not_failed(
    tmp_path, fake, monkeypatch
):
    """The engine's free precheck lets a spec through; the worker asks the framework, says
    'unavailable', and the run goes on without counting its cases as failed."""
    if not vecx.registry.status("torch:cpu").available:
        pytest.skip("torch is not installed")
    if vecx.registry.status("torch:cuda").available:
        pytest.skip("a GPU is available here")
    from vecx.engine import run as engine_run

    monkeypatch.setattr(engine_run, "cuda_driver_present", lambda: True)
    outcome = run_bench(_opts(tmp_path, [fake], backends=["numpy", "torch:cuda"]))
    settings = outcome.doc["settings"]
    assert "torch.cuda.is_available() is False" in settings["unavailable"]["torch:cuda"]
    assert settings["order"] == ["numpy:cpu"] and settings["cases_planned"] == 3
    assert {r["backend"] for r in outcome.doc["results"]} == {"numpy"}
    assert not (tmp_path / "out" / "worker-torch-cuda.log").exists()



def test_threads_reach_every_worker_and_are_recorded(tmp_path, fake):
    backends = ["numpy"] + (["torch:cpu"] if vecx.registry.status("torch:cpu").available else [])
    outcome = run_bench(_opts(tmp_path, [fake], backends=backends, threads=1))
    settings = outcome.doc["settings"]
    assert settings["threads"] == 1
    for spec in (f"{b}:cpu" if ":" not in b else b for b in backends):
        worker = settings["workers"][spec]
        env = worker["env"]
        assert env["OMP_NUM_THREADS"] == "1" and env["OPENBLAS_NUM_THREADS"] == "1"
        assert "intra_op_parallelism_threads=1" in worker["env"]["XLA_FLAGS"]
        assert worker["blas"] and all(pool["num_threads"] == 1 for pool in worker["blas"])
    if "torch:cpu" in backends:
        assert outcome.doc["backends"]["torch:cpu"]["threads"] == 1
    with pytest.raises(ValueError, match="threads must be >= 1"):
        run_bench(_opts(tmp_path, [fake], threads=0))


def test_thread_env_leaves_the_environment_alone_by_default():
    from vecx.engine.options import thread_env

    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    assert thread_env(None, env) is env
    two = thread_env(2, env)
    assert two["MKL_NUM_THREADS"] == "2" and two["XLA_FLAGS"] == env["XLA_FLAGS"]  # no flag for 2
    assert thread_env(1, env)["XLA_FLAGS"].startswith("--xla_force_host_platform_device_count=2 ")


def test_auto_threads_give_each_worker_the_idle_cpus_and_record_the_load(tmp_path, fake,
                                                                         monkeypatch):
    """threads="auto" (the default): each backend gets the CPUs other processes leave idle
    when it starts; what they kept busy before and after is in the file."""
    from vecx.engine import run as engine_run

    readings = iter([1.0, 0.0, 0.3])  # before numpy, between, after torch
    monkeypatch.setattr(engine_run, "cpu_use_of_others", lambda interval: next(readings))
    monkeypatch.setattr("vecx.environment.os.sched_getaffinity", lambda pid: {0, 1},
                        raising=False)  # fmt: skip
    backends = ["numpy"] + (["torch:cpu"] if vecx.registry.status("torch:cpu").available else [])
    outcome = run_bench(_opts(tmp_path, [fake], backends=backends, seed=1))
    settings = outcome.doc["settings"]
    assert settings["threads"] == "auto"
    first, *rest = settings["order"]
    worker = settings["workers"][first]
    assert worker["threads"] == 1 and worker["env"]["OMP_NUM_THREADS"] == "1"
    assert settings["load"][first]["others_cpus_start"] == 1.0
    assert settings["load"][first]["others_cpus_end"] == 0.0
    assert {r["threads"] for r in outcome.doc["results"] if r["backend"] == first[:-4]} == {1}
    for spec in rest:  # started with nothing else running: both CPUs
        assert settings["workers"][spec]["threads"] == 2
        assert settings["load"][spec]["others_cpus_end"] == 0.3
    assert "kept 1.00 of" in outcome.busy and first in outcome.busy


def test_threads_option_accepts_auto_a_count_or_none():
    from vecx.engine.options import OptionError, check_threads

    assert check_threads("auto") == "auto" and check_threads(None) is None
    assert check_threads("3") == 3 and check_threads(2) == 2
    with pytest.raises(OptionError, match=r"threads must be an int.*or 'auto'"):
        check_threads("many")


def test_busy_warning_reads_other_processes_cpu_use():
    from vecx.engine.run import busy_warning

    doc = {"machine": {"cores": 2},
           "settings": {"load": {"numpy:cpu": {"start": [0.1, 0, 0], "end": [0.2, 0, 0],
                                               "others_cpus_start": 0.1,
                                               "others_cpus_end": 0.2}}}}  # fmt: skip
    assert busy_warning(doc) is None
    doc["settings"]["load"]["numpy:cpu"]["others_cpus_end"] = 0.98
    assert "other processes kept 0.98 of 2 CPUs busy around the numpy:cpu worker" in (
        busy_warning(doc))
    doc["settings"]["load"]["numpy:cpu"]["start"] = [3.1, 0, 0]
    assert "1-minute load average reached 3.10" in busy_warning(doc)


class _Case:
    """A case whose records come from a list: suspect first, then clean."""

    def __init__(self, records):
        self.records = list(records)


class _ThreadedBackend:
    def __init__(self, can=True):
        self.calls, self.can = [], can

    def set_threads(self, n):
        self.calls.append(n)
        return self.can


def _fake_run_case(case, be):
    return dict(case.records.pop(0))


def test_a_suspect_case_is_measured_again_at_one_thread(monkeypatch):
    from vecx.engine import worker

    monkeypatch.setattr("vecx.suites.run_case", _fake_run_case)
    first = {"case": "c", "median_s": 0.016, "suspect": "threads waited"}
    be = _ThreadedBackend()
    rec = worker.measured(_Case([first, {"case": "c", "median_s": 0.0003}]), be, 2)
    assert be.calls == [1, 2]  # down to one thread, then back
    assert rec["median_s"] == 0.0003 and rec["threads"] == 1
    assert rec["remeasured"] == {"threads": 2, "median_s": 0.016, "suspect": "threads waited"}
    # a clean record, one thread already, or a backend that cannot change: the first stays
    for case, threads, backend in [(_Case([{"case": "c", "median_s": 1.0}]), 2, be),
                                   (_Case([first]), 1, be),
                                   (_Case([first]), 2, _ThreadedBackend(can=False))]:
        kept = worker.measured(case, backend, threads)
        assert "remeasured" not in kept and kept["threads"] == threads
    assert be.calls == [1, 2]  # nothing more was asked of the first backend


def test_robust_ceiling_sets_aside_a_spike_but_not_an_end_or_a_faster_framework():
    from vecx.suites.scaling import robust_best

    def rec(backend, n, value, **kw):
        return {"backend": backend, "params": {"n": n}, "value": value, **kw}

    numpy = [rec("numpy", 256, 80.0), rec("numpy", 512, 419.0), rec("numpy", 1024, 131.0)]
    best, aside = robust_best(numpy + [rec("torch", 512, 120.0)])
    assert best["value"] == 131.0 and [r["value"] for r in aside] == [419.0]
    # the largest size of a rising curve, and a framework twice another: both kept
    best, aside = robust_best([rec("torch", 64, 30.0), rec("torch", 256, 115.0)])
    assert best["value"] == 115.0 and aside == []
    best, aside = robust_best([rec("numpy", 512, 100.0), rec("jax", 512, 50.0)])
    assert best["value"] == 100.0 and aside == []
    # a spike another framework corroborates at its size is no spike
    best, _ = robust_best(numpy + [rec("torch", 512, 300.0)])
    assert best["value"] == 419.0


def test_add_ceilings_skips_suspect_records_and_says_what_it_set_aside():
    recs = [
        _scaling("matmul", "numpy", "cpu", 256, 80.0, "GFLOP/s"),
        _scaling("matmul", "numpy", "cpu", 512, 419.0, "GFLOP/s"),
        _scaling("matmul", "numpy", "cpu", 1024, 131.0, "GFLOP/s"),
        _scaling("matmul", "torch", "cpu", 1024, 500.0, "GFLOP/s"),
    ]
    recs[3]["suspect"] = "the median block is 2.5x the fastest: some calls stalled"
    ceilings = add_ceilings(recs)
    gflops = ceilings["cpu"]["gflops"]
    assert gflops["value"] == 131.0
    assert gflops["set_aside"] == [{"backend": "numpy", "n": 512, "value": 419.0}]
    assert recs[1]["pct_of_ceiling"] == pytest.approx(100 * 419 / 131)  # shown, over 100%


@pytest.mark.parametrize("mode", ["spin", "hang"])
def test_a_hung_case_times_out_and_the_rest_runs_in_a_new_worker(tmp_path, fake, mode):
    t0 = time.monotonic()
    outcome = run_bench(_opts(tmp_path, [fake], {fake: {"mode": mode}}, case_timeout=1.0))
    recs = load(outcome.path)["results"]
    assert [r["case"] for r in recs] == ["c0", "c1", "c2"]
    assert recs[1]["error"].startswith("timed out after 1 s, in ")  # where it hung:
    assert re.search(r"fake\.py:\d+ in run \(the worker", recs[1]["error"])  # its stacks
    assert recs[0]["error"] is None and recs[2]["error"] is None
    assert outcome.doc["settings"]["case_timeout_s"] == 1.0
    assert time.monotonic() - t0 < 30


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie is dead
    except OSError:
        return False


def test_a_child_left_by_a_case_neither_blocks_the_run_nor_survives_it(tmp_path, fake):
    pidfile = str(tmp_path / "pid")
    t0 = time.monotonic()
    outcome = run_bench(_opts(tmp_path, [fake], {fake: {"mode": "fork", "pidfile": pidfile}}))
    assert time.monotonic() - t0 < 30  # the child sleeps 1000 s holding the event pipe
    recs = load(outcome.path)["results"]
    assert [r["case"] for r in recs] == ["c0", "c1", "c2"]
    assert all(r["error"] is None for r in recs)
    child = int(Path(pidfile + ".child").read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_a_worker_killed_after_streaming_a_record_records_that_case_once(tmp_path, fake):
    outcome = run_bench(_opts(tmp_path, [fake], {fake: {"mode": "killafter"}}))
    recs = load(outcome.path)["results"]
    assert [r["case"] for r in recs] == ["c0", "c1", "c2"]  # no crash record for c1 beside it
    assert all(r["error"] is None for r in recs)


@pytest.mark.parametrize("mode, why", [
    ("none", "invalid record: ValueError: the case returned NoneType, not a record"),
    ("badrecord", "invalid record: ValueError: record is missing"),
    ("ctrlc", "the case raised KeyboardInterrupt"),
])  # fmt: skip
def test_a_case_returning_garbage_is_its_own_error_only(tmp_path, fake, mode, why):
    outcome = run_bench(_opts(tmp_path, [fake], {fake: {"mode": mode}}))
    recs = load(outcome.path)["results"]
    assert [r["case"] for r in recs] == ["c0", "c1", "c2"]
    assert recs[1]["error"].startswith(why), recs[1]["error"]
    assert recs[0]["error"] is None and recs[2]["error"] is None


def test_case_timeout_must_be_positive(tmp_path, fake):
    with pytest.raises(ValueError, match="case timeout must be a positive number of seconds"):
        run_bench(_opts(tmp_path, [fake], case_timeout=0))


@pytest.mark.parametrize("first, second", [(signal.SIGINT, signal.SIGINT),
                                           (signal.SIGTERM, signal.SIGINT),
                                           (signal.SIGINT, signal.SIGTERM)])  # fmt: skip
def test_a_second_signal_while_stopping_still_writes_the_results(tmp_path, fake, first, second):
    proc = _start_bench(tmp_path, fake, {})
    partial = tmp_path / "out" / "results.json.partial.jsonl"
    deadline = time.time() + 30
    while time.time() < deadline and not (partial.exists() and partial.read_text().count("\n")):
        time.sleep(0.05)
    seen = partial.read_text().count("\n")
    proc.send_signal(first)
    time.sleep(0.01)  # the engine is stopping the worker now
    proc.send_signal(second)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    doc = load(tmp_path / "out" / "results.json")
    assert len(doc["results"]) >= seen and all(r["error"] is None for r in doc["results"])
    worker = int((tmp_path / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(worker, 0)


def test_signals_while_the_results_file_is_assembled_wait_for_it(tmp_path, fake):
    """SIGTERM and SIGINT as results.json is written: the file is complete all the same."""
    code = textwrap.dedent(f"""
        import os, signal, sys
        from vecx.engine import BenchOptions, run_bench
        from vecx.results import ResultWriter

        finish = ResultWriter.finish
        def signalled(self, header):
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGINT)
            return finish(self, header)
        ResultWriter.finish = signalled
        opts = BenchOptions(backends=["numpy"], suites=[{fake!r}], quiet=True,
                            out={str(tmp_path / "out")!r})
        sys.exit(run_bench(opts).exit_status)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = load(tmp_path / "out" / "results.json")
    assert [r["case"] for r in doc["results"]] == ["c0", "c1", "c2"]


def test_one_output_folder_has_one_writer_and_a_dead_holder_leaves_no_stale_lock(tmp_path,
                                                                                fake):
    from vecx.engine.run import FolderInUse

    proc = _start_bench(tmp_path, fake, {"sleep": 2.0})
    partial = tmp_path / "out" / "results.json.partial.jsonl"
    deadline = time.time() + 30
    while time.time() < deadline and not (partial.exists() and partial.read_text().count("\n")):
        time.sleep(0.05)
    seen = partial.read_text().count("\n")
    try:
        with pytest.raises(FolderInUse, match=rf"in use by another vecx bench \(pid {proc.pid},"):
            run_bench(_opts(tmp_path, [fake]))
        assert partial.read_text().count("\n") >= seen  # the first run's records untouched
        proc.kill()  # SIGKILL: no chance to unlock; its worker, mid-case, still holds it
        proc.communicate(timeout=30)
        with pytest.raises(FolderInUse):
            run_bench(_opts(tmp_path, [fake]))
    finally:
        proc.kill()
        proc.communicate(timeout=30)
        worker = int((tmp_path / "pid").read_text())
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker, signal.SIGKILL)  # the orphaned worker of the killed run
    time.sleep(0.2)  # the kernel drops the flock with the worker's last descriptor
    outcome = run_bench(_opts(tmp_path, [fake]))
    assert [r["case"] for r in load(outcome.path)["results"]] == ["c0", "c1", "c2"]


def test_results_json_being_a_folder_fails_before_any_case(tmp_path, fake):
    (tmp_path / "out" / "results.json").mkdir(parents=True)
    with pytest.raises(IsADirectoryError, match=r"out/results.json: it is a folder, not a file"):
        run_bench(_opts(tmp_path, [fake]))
    assert not ResultWriter.partial_path(tmp_path / "out" / "results.json").exists()


@pytest.mark.parametrize("where", ["finish", "rewrite"])
def test_a_failed_end_names_the_partial_file_which_the_readers_read(tmp_path, fake, monkeypatch,
                                                                    where):  # fmt: skip
    import errno

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    add = ResultWriter.add

    def add_until_the_end(self, rec):  # the disk fills as the partial file is rewritten
        if self.path.name.startswith("."):
            full()
        add(self, rec)

    if where == "finish":
        monkeypatch.setattr(ResultWriter, "finish", full)
    else:
        monkeypatch.setattr(ResultWriter, "add", add_until_the_end)
    with pytest.raises(OSError, match=r"No space left on device\); the 3 records of this run "
                       r"are kept in .*results.json.partial.jsonl, which vecx compare"):
        run_bench(_opts(tmp_path, [fake]))
    monkeypatch.undo()
    partial = ResultWriter.partial_path(tmp_path / "out" / "results.json")
    doc = load(partial)
    assert [r["case"] for r in doc["results"]] == ["c0", "c1", "c2"]
    assert doc["settings"]["partial"] is True
    assert sorted(p.name for p in partial.parent.iterdir()) == [
        ".vecx-bench.lock", "results.json.partial.jsonl"]  # no staging or temp file left
    proc = subprocess.run([sys.executable, "-m", "vecx", "report", str(partial), "-o",
                           str(tmp_path / "R.md")], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "c0" in (tmp_path / "R.md").read_text()


def test_a_suite_whose_plan_raises_is_one_error_naming_its_file_and_line(tmp_path):
    bad = tmp_path / "badplan.py"
    bad.write_text('NAME = "badplan"\n\ndef plan(device, quick=False):\n    return None.x\n\n'
                   "def cases(be, **kw):\n    return []\n")  # fmt: skip
    with pytest.raises(ValueError, match=r"suite 'badplan': its plan for numpy:cpu raised "
                       r"AttributeError: .* at .*badplan.py:4"):
        run_bench(_opts(tmp_path, [str(bad)]))
    assert not ResultWriter.partial_path(tmp_path / "out" / "results.json").exists()
