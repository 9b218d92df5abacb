"""Data-parallel SGD (``fit(workers=N)``): the same SGD as one process, on torch's gloo
ranks and a mesh of forced JAX CPU devices; faults stop every rank with one line."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import vecx

pytest.importorskip("torch")
REPO = Path(__file__).resolve().parents[1]
TASK_DATA = {"linreg": "synthetic", "softmax": "digits", "mlp": "digits"}
#: float32: the workers' partial sums round differently from one sum: a few units of
#: float32 roundoff per step, carried through the run's steps (relative to the largest
#: parameter).
FLOAT32_RTOL = 1e-5
FLOAT64_RTOL = 1e-12


def data(be: Any, task: str) -> tuple[Any, Any]:
    if TASK_DATA[task] == "digits":
        X, y = vecx.load_digits(be)
        return X[:600], y[:600]
    return vecx.synthetic_data(be, [2.0, -3.4], 4.2, 600)


def relative_gap(a: dict, b: dict) -> float:
    return max(float(np.max(np.abs(a[k] - b[k])) / np.max(np.abs(a[k]))) for k in a)


def children() -> list[Any]:
    return [p for p in multiprocessing.active_children() if p.name.startswith("vecx-rank")]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_two_gloo_ranks_train_every_task_as_one_process_does(dtype: str) -> None:
    be = vecx.backend("torch", dtype=dtype)
    tol = FLOAT64_RTOL if dtype == "float64" else FLOAT32_RTOL
    for task in TASK_DATA if dtype == "float64" else ("mlp",):
        X, y = data(be, task)
        run = dict(task=task, lr=0.1 if task != "linreg" else 0.03, batch_size=30, epochs=2)
        one = vecx.fit(be, X, y, **run)
        two = vecx.fit(be, X, y, workers=2, **run)
        assert (two.workers, two.engine, two.threads_per_worker) == (2, "gloo", 1)
        assert relative_gap(one.params, two.params) <= tol, (task, dtype)
        assert two.losses == pytest.approx(one.losses, rel=tol) and two.complete
        doc = two.to_dict()
        assert (doc["workers"], doc["engine"]) == (2, "gloo")
    assert not children()  # every rank has exited


def test_an_uneven_split_weights_each_rank_by_its_rows() -> None:
    """A batch of 7 rows on 2 ranks (3 + 4) and a last batch of 5: still one SGD."""
    be = vecx.backend("torch", dtype="float64")
    X, y = vecx.synthetic_data(be, [1.0, -1.0], 0.5, 96)
    run = dict(lr=0.05, batch_size=7, epochs=2)
    one, two = vecx.fit(be, X, y, **run), vecx.fit(be, X, y, workers=2, **run)
    assert relative_gap(one.params, two.params) <= FLOAT64_RTOL


# --- losses the spawned ranks import: module-level, so picklable ----------------------------

_calls = [0]


def squared(params: Any, X: Any, y: Any) -> Any:
    r = X @ params["w"] + params["b"] - y
    return (r * r).mean() / 2


def fails_on_rank_one(params: Any, X: Any, y: Any) -> Any:
    if multiprocessing.current_process().name == "vecx-rank-1":
        _calls[0] += 1
        if _calls[0] > 25:
            raise ZeroDivisionError("rank one gave up")
    return squared(params, X, y)


def killed_on_rank_one(params: Any, X: Any, y: Any) -> Any:
    if multiprocessing.current_process().name == "vecx-rank-1":
        _calls[0] += 1
        if _calls[0] > 25:
            os.kill(os.getpid(), signal.SIGKILL)
    return squared(params, X, y)


def init(rng: np.random.Generator) -> dict:
    return {"w": rng.normal(0, 0.01, (2, 1)), "b": np.zeros(1)}


@pytest.mark.parametrize(("loss", "said"), [(fails_on_rank_one, "rank 1 failed: "
                                             "ZeroDivisionError: rank one gave up"),
                                            (killed_on_rank_one, "rank 1 was killed by "
                                             "signal 9")])  # fmt: skip
def test_a_failed_rank_stops_the_run_with_one_line_and_keeps_the_history(
        loss: Any, said: str) -> None:  # fmt: skip
    be = vecx.backend("torch")
    X, y = vecx.synthetic_data(be, [2.0, -3.4], 4.2, 400)
    start = time.monotonic()
    with pytest.raises(vecx.WorkerFailed) as caught:
        vecx.fit(be, X, y.reshape(-1, 1), loss=loss, params=init, lr=0.03, batch_size=10,
                 epochs=3, log_every=100, workers=2)  # fmt: skip
    assert time.monotonic() - start < 45  # within the time limit, not a hang
    assert said in str(caught.value) and "\n" not in str(caught.value)
    history = caught.value.history
    assert history is not None and not history.complete and history.failed
    assert len(history.losses) >= 1 and history.to_dict()["failed"]  # the checkpoints so far
    assert not children()


from vecx.backends.torch import TorchBackend  # noqa: E402


class FailsToJoin(TorchBackend):
    """A torch backend whose ranks other than 0 fail inside the rendezvous."""

    def process_group(self, workers: int, *, rank: int, **kwargs: Any) -> Any:
        group = super().process_group(workers, rank=rank, **kwargs)
        if rank > 0:
            def join() -> Any:
                raise ConnectionError("the rendezvous refused rank one")

            group.join = join
        return group


def test_a_rank_failing_in_the_rendezvous_is_named_at_once_and_the_next_fit_works() -> None:
    be = FailsToJoin("cpu")
    X, y = vecx.synthetic_data(be, [2.0, -3.4], 4.2, 100)
    start = time.monotonic()
    with pytest.raises(vecx.WorkerFailed, match="rank 1 failed: ConnectionError: the "
                       "rendezvous refused rank one"):  # fmt: skip
        vecx.fit(be, X, y, lr=0.03, batch_size=10, epochs=1, workers=2)
    assert time.monotonic() - start < 30  # not the rendezvous's 60 s timeout
    good = vecx.backend("torch")
    X, y = vecx.synthetic_data(good, [2.0, -3.4], 4.2, 100)
    assert vecx.fit(good, X, y, lr=0.03, batch_size=10, epochs=1, workers=2).complete
    assert not children()


def test_a_process_group_of_the_callers_is_refused_before_any_rank_and_kept() -> None:
    import datetime

    import torch.distributed as dist

    store = dist.TCPStore("127.0.0.1", 0, 1, is_master=True, wait_for_workers=False,
                          timeout=datetime.timedelta(seconds=10))  # fmt: skip
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        be = vecx.backend("torch")
        X, y = vecx.synthetic_data(be, [2.0, -3.4], 4.2, 100)
        with pytest.raises(RuntimeError, match="already running in this process"):
            vecx.fit(be, X, y, lr=0.03, batch_size=10, epochs=1, workers=2)
        assert dist.is_initialized() and not children()  # the caller's group survives
    finally:
        dist.destroy_process_group()


#: The backend a module-level loss draws from (the spawned ranks import their own).
TORCH_BE = vecx.backend("torch")


def draws_on_the_backend(params: Any, X: Any, y: Any) -> Any:
    return squared(params, X + 0.0 * TORCH_BE.normal(0.0, 1.0, tuple(X.shape)), y)


def test_a_loss_that_draws_random_numbers_is_refused_not_silently_different() -> None:
    X, y = vecx.synthetic_data(TORCH_BE, [2.0, -3.4], 4.2, 100)
    with pytest.raises(ValueError, match="the loss draws random numbers"):
        vecx.fit(TORCH_BE, X, y.reshape(-1, 1), loss=draws_on_the_backend, params=init,
                 lr=0.03, batch_size=10, epochs=1, workers=2)  # fmt: skip
    assert not children()


def test_mixed_precision_trains_data_parallel_within_the_roundoff() -> None:
    be = vecx.backend("torch")
    X, y = vecx.synthetic_data(be, [2.0, -3.4], 4.2, 200)
    for dtype, u in (("bfloat16", 2.0**-8), ("float16", 2.0**-11)):
        run = dict(lr=0.03, batch_size=10, epochs=1, compute_dtype=dtype)
        one, two = vecx.fit(be, X, y, **run), vecx.fit(be, X, y, workers=2, **run)
        assert two.compute_dtype == dtype and two.workers == 2
        assert abs(two.loss - one.loss) <= 16 * u * one.loss
        assert two.skipped_steps == one.skipped_steps


def test_rank_1_exits_when_rank_0_is_killed_while_it_starts(tmp_path: Path) -> None:
    script = tmp_path / "slow.py"
    script.write_text(textwrap.dedent("""
        import vecx
        if __name__ == "__main__":
            be = vecx.backend("torch")
            X, y = vecx.synthetic_data(be, [2.0, -3.4], 4.2, 1000)
            vecx.fit(be, X, y, lr=0.03, batch_size=10, epochs=50, workers=2)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], env={**os.environ,
                            "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    kids: set[int] = set()
    deadline = time.monotonic() + 60
    while not kids and time.monotonic() < deadline:
        kids = {int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                and _ppid(p) == proc.pid and b"spawn_main" in _cmdline(p)}  # fmt: skip
        time.sleep(0.05)
    assert kids, "no rank was spawned"
    time.sleep(0.3)  # the rank is importing or joining
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(Path(f"/proc/{k}").exists() and
                                              _state(k) != "Z" for k in kids):  # fmt: skip
        time.sleep(0.1)
    assert not any(Path(f"/proc/{k}").exists() and _state(k) != "Z" for k in kids)


def _ppid(p: Path) -> int:
    try:
        return int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "gone"


def _cmdline(p: Path) -> bytes:
    try:
        return (p / "cmdline").read_bytes()
    except OSError:
        return b""


def test_ctrl_c_on_rank_0_keeps_the_history_and_stops_every_rank() -> None:
    be = vecx.backend("torch")
    X, y = vecx.synthetic_data(be, [2.0, -3.4], 4.2, 400)
    seen = []

    def stop(cp: Any) -> None:
        seen.append(cp.step)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as caught:
        vecx.fit(be, X, y, lr=0.03, batch_size=10, epochs=3, log_every=100, workers=2,
                 callback=stop)  # fmt: skip
    history = caught.value.history  # type: ignore[attr-defined]
    assert history.interrupted and len(history.losses) == 2
    assert not children()


def test_a_port_in_use_is_retried_on_another(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv("MASTER_PORT", str(taken.getsockname()[1]))
        be = vecx.backend("torch")
        X, y = vecx.synthetic_data(be, [2.0, -3.4], 4.2, 100)
        h = vecx.fit(be, X, y, lr=0.03, batch_size=10, epochs=1, workers=2)
    assert h.complete and h.workers == 2


def test_a_master_port_that_is_no_port_is_one_clear_error(monkeypatch: pytest.MonkeyPatch,
                                                          ) -> None:  # fmt: skip
    monkeypatch.setenv("MASTER_PORT", "notaport")
    be = vecx.backend("torch")
    X, y = vecx.synthetic_data(be, [2.0, -3.4], 4.2, 100)
    with pytest.raises(ValueError, match="MASTER_PORT must be a port number .* 'notaport'"):
        vecx.fit(be, X, y, lr=0.03, batch_size=10, epochs=1, workers=2)
    assert not children()


def test_bad_data_parallel_requests_are_one_clear_error() -> None:
    torch_be, numpy_be = vecx.backend("torch"), vecx.backend("numpy")
    X, y = vecx.synthetic_data(torch_be, [2.0, -3.4], 4.2, 100)
    run = dict(lr=0.03, batch_size=10, epochs=1)
    with pytest.raises(ValueError, match="numpy:cpu has no distributed engine"):
        Xn, yn = vecx.synthetic_data(numpy_be, [2.0], 0.0, 100)
        vecx.fit(numpy_be, Xn, yn, workers=2, **run)
    with pytest.raises(ValueError, match="must be picklable"):
        vecx.fit(torch_be, X, y.reshape(-1, 1), loss=lambda p, X, y: squared(p, X, y),
                 params=init, workers=2, **run)  # fmt: skip
    with pytest.raises(ValueError, match="too few to split over 4 workers"):
        vecx.fit(torch_be, X, y, lr=0.03, batch_size=3, epochs=1, workers=4)
    with pytest.raises(vecx.ModeUnsupported, match="runs a data-parallel step eagerly"):
        vecx.fit(torch_be, X, y, mode="jit", workers=2, **run)
    with pytest.raises(ValueError, match="executor 'native' runs its own way"):
        vecx.fit(torch_be, X, y, executor="native", workers=2, **run)
    with pytest.raises(ValueError, match="workers must be >= 1"):
        vecx.fit(torch_be, X, y, workers=0, **run)
    assert not children()


def test_vecx_train_workers_writes_rank_0s_history(tmp_path: Path) -> None:
    out = tmp_path / "h.json"
    done = subprocess.run([sys.executable, "-m", "vecx", "train", "--backend", "torch",
                           "--preset", "linreg", "--workers", "2", "--quiet", "--json",
                           str(out)], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2 workers over gloo, 1 thread(s) each" in done.stdout
    doc = json.loads(out.read_text())
    assert (doc["workers"], doc["engine"]) == (2, "gloo") and doc["loss"] < 1e-3


def test_torchrun_starts_the_same_entry_point(tmp_path: Path) -> None:
    """The README's torchrun command, word for word: torchrun's ranks join through its
    environment; rank 0 alone prints and writes the history."""
    readme = (REPO / "README.md").read_text()
    command = next(line for line in readme.splitlines()
                   if line.startswith("python -m torch.distributed.run"))  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=180,
                          cwd=tmp_path, env=env, stdin=subprocess.DEVNULL)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert sum(ln.startswith("training linreg") for ln in lines) == 1  # rank 0 only
    assert sum(ln.startswith("loss ") for ln in lines) == 1
    doc = json.loads((tmp_path / "dp.json").read_text())
    assert (doc["workers"], doc["engine"]) == (2, "gloo") and doc["loss"] < 1e-3


TORCHRUN_FAILING = textwrap.dedent("""
    import os, sys
    import numpy as np, vecx

    def loss(params, X, y):
        if os.environ["RANK"] == "1":
            raise ZeroDivisionError("rank one gave up")
        return ((X @ params["w"] - y) ** 2).mean()

    be = vecx.backend("torch")
    X, y = vecx.synthetic_data(be, [2.0, -3.4], 4.2, 200)
    try:
        vecx.fit(be, X, y, loss=loss, params={"w": np.zeros((2, 1), np.float32)}, lr=0.03,
                 batch_size=10, epochs=2)
    except vecx.WorkerFailed as exc:
        print(f"rank {os.environ['RANK']}: {exc}")
        sys.exit(3)
""")


def test_under_torchrun_a_rank_that_raises_is_named_on_rank_0(tmp_path: Path) -> None:
    """torchrun's ranks have no parent that collects their errors: the rank that raises
    says so in the rendezvous's store, and rank 0 names it (it said only that a worker
    stopped answering)."""
    (tmp_path / "fails.py").write_text(TORCHRUN_FAILING)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node",
                           "2", "fails.py"], capture_output=True, text=True, timeout=180,
                          cwd=tmp_path, env=env, stdin=subprocess.DEVNULL)  # fmt: skip
    assert done.returncode != 0
    assert ("rank 0: data-parallel training stopped: rank 1 failed: ZeroDivisionError: rank "
            "one gave up") in done.stdout, (done.stdout, done.stderr[-2000:])


def test_the_readme_example_runs_as_a_script(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    example = next(b for b in readme.split("```python\n")[1:] if "workers=2" in b)
    (tmp_path / "dp.py").write_text(example.split("```")[0])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "dp.py"], capture_output=True, text=True,
                          timeout=180, cwd=tmp_path, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("2 workers over gloo: loss ")
    two, one = done.stdout.split("loss ")[1].split(" (one worker: ")
    assert float(two) == pytest.approx(float(one.rstrip(")\n")), rel=1e-5)


# --- JAX: a mesh of forced CPU devices, in a fresh process ---------------------------------

JAX_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np, vecx, jax
    out = {}
    for dtype in ("float64", "float32"):
        be = vecx.backend("jax", dtype=dtype)
        for task in ("linreg", "softmax", "mlp") if dtype == "float64" else ("mlp",):
            if task == "linreg":
                X, y = vecx.synthetic_data(be, [2.0, -3.4], 4.2, 600)
            else:
                X, y = vecx.load_digits(be)
                X, y = X[:600], y[:600]
            run = dict(task=task, lr=0.1 if task != "linreg" else 0.03, batch_size=30,
                       epochs=2)
            one = vecx.fit(be, X, y, **run)
            for workers, mode in ((2, "jit"), (4, "fused")):
                h = vecx.fit(be, X, y, workers=workers, mode=mode, **run)
                gap = max(float(np.max(np.abs(one.params[k] - h.params[k]))
                                / np.max(np.abs(one.params[k]))) for k in one.params)
                out[f"{dtype} {task} {workers} {mode}"] = [gap, h.engine, h.workers]
    # the compiled step all-reduces the gradient: XLA partitioned it
    from vecx.training.parallel import DataParallelExecutor
    from vecx.training.executors import Problem
    from vecx.training.optimizers import get_optimizer
    be = vecx.backend("jax")
    X, y = vecx.synthetic_data(be, [2.0, -3.4], 4.2, 100)
    t = vecx.TASKS["linreg"]
    import functools
    p = Problem(be, X, y.reshape(-1, 1), functools.partial(t.loss, be), {},
                {"w": be.zeros((2, 1)), "b": be.zeros((1,))}, get_optimizer("sgd"), 0.03, 10)
    prog = DataParallelExecutor(2).build(p)
    inner = prog.inner
    text = inner.fns.step.lower(prog.state, np.arange(10), inner.problem.X,
                                inner.problem.y, inner.lr).compile().as_text()
    out["all-reduce"] = text.count("all-reduce(")
    def dropout(params, X, y):
        r = X @ params["w"] + params["b"] - y
        return be.mean(r * r * (be.normal(0.0, 1.0, tuple(r.shape)) > -1.0)) / 2

    init = lambda rng: {"w": rng.normal(0, 0.01, (2, 1)), "b": np.zeros(1)}
    try:
        vecx.fit(be, X, y.reshape(-1, 1), loss=dropout, params=init, lr=0.03, batch_size=10,
                 epochs=1, workers=2)
    except ValueError as exc:
        out["draws"] = str(exc)
    one = vecx.fit(be, X, y, lr=0.03, batch_size=10, epochs=1, compute_dtype="bfloat16")
    two = vecx.fit(be, X, y, lr=0.03, batch_size=10, epochs=1, compute_dtype="bfloat16",
                   workers=2)
    out["bfloat16"] = [one.loss, two.loss, two.compute_dtype]
    try:
        vecx.fit(be, X, y, lr=0.03, batch_size=10, epochs=1, workers=8)
    except ValueError as exc:
        out["too many"] = str(exc)
    try:
        vecx.fit(be, X, y, lr=0.03, batch_size=10, epochs=1, workers=2, mode="eager")
    except vecx.ModeUnsupported as exc:
        out["eager"] = str(exc)
    print(json.dumps(out))
""")


def test_a_mesh_of_jax_devices_trains_every_task_as_one_device_does() -> None:
    pytest.importorskip("jax")
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_ENABLE_X64": "1", "PYTHONPATH": str(REPO)}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", JAX_SCRIPT], capture_output=True, text=True,
                          env=env, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for key, value in out.items():
        if key.startswith(("float64", "float32")):
            gap, engine, workers = value
            tol = FLOAT64_RTOL if key.startswith("float64") else FLOAT32_RTOL
            assert gap <= tol and engine == "xla-mesh" and workers == int(key.split()[2]), key
    assert len([k for k in out if k.startswith("float")]) == (3 + 1) * 2
    assert out["all-reduce"] >= 1
    assert "workers=8 needs 8 cpu devices; jax sees 4" in out["too many"]
    assert "xla_force_host_platform_device_count=8" in out["too many"]
    assert "runs in mode jit or fused" in out["eager"]
    assert "the loss draws random numbers" in out["draws"]
    one, two, dtype = out["bfloat16"]
    assert dtype == "bfloat16" and abs(two - one) <= 16 * 2.0**-8 * one


# --- the parallel suite ---------------------------------------------------------------------


def test_the_parallel_suite_records_strong_and_weak_efficiency_against_one_worker() -> None:
    from vecx.suites import run_case
    from vecx.suites.suite import load

    suite = load("parallel")
    be, numpy_be = vecx.backend("torch"), vecx.backend("numpy")
    records = [run_case(c, be) for c in suite.cases(be, quick=True, tasks=("linreg-large",),
                                                    workers=2, repeats=1, large_rows=32768)]
    records += [run_case(c, numpy_be) for c in suite.cases(numpy_be, quick=True,
                                                          tasks=("linreg",), workers=2)]
    suite.finalize(records)
    by = {(r["backend"], r["params"]["scaling"]): r for r in records}
    base, strong, weak = (by[("torch", k)] for k in ("baseline", "strong", "weak"))
    assert not any(r.get("error") for r in (base, strong, weak)), records
    assert strong["engine"] == "gloo" and strong["threads_per_worker"] == 1
    assert strong["params"]["batch_size"] == base["params"]["batch_size"]  # split
    assert weak["params"]["batch_size"] == 2 * base["params"]["batch_size"]  # per worker
    assert strong["efficiency"] == pytest.approx(base["min_s"] / (2 * strong["min_s"]))
    per_step = (base["min_s"] / base["steps_per_epoch"], weak["min_s"] / weak["steps_per_epoch"])
    assert weak["efficiency"] == pytest.approx(per_step[0] / per_step[1])
    assert strong["value"] == pytest.approx(base["value"], rel=1e-5)  # the same SGD
    assert "no distributed engine" in by[("numpy", "strong")]["skipped"]
    assert by[("numpy", "baseline")]["efficiency"] is None
    assert not children()


def test_vecx_bench_runs_the_parallel_suite_only_when_named(tmp_path: Path) -> None:
    from vecx.engine.options import check_suites

    assert "parallel" not in check_suites(None)  # not in a default run
    assert check_suites(["Parallel"]) == ["parallel"]
    done = subprocess.run([sys.executable, "-m", "vecx", "bench", "--suites", "parallel",
                           "--backends", "torch", "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "efficiency" in done.stdout and "strong" in done.stdout
    assert (tmp_path / "parallel-scaling.png").is_file()
    doc = json.loads((tmp_path / "results.json").read_text())
    effs = [r["efficiency"] for r in doc["results"] if r["params"]["scaling"] != "baseline"]
    assert len(effs) == 6 and all(e is not None and e > 0 for e in effs)
