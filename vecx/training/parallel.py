"""Data-parallel SGD, ``fit(workers=N)``: an executor of the step, on the engines users
already run.

Every worker trains the same step on its part of the same seeded global minibatch; the
gradients are summed over the workers before the update, so the run is single-process
SGD with its sums reordered (tests check the final parameters against it).

* torch (``be.process_group``): N processes under torch.distributed, gloo on the CPU and
  NCCL on CUDA. On one machine the caller's process is rank 0, the loop, the clock, the
  checkpoints and the history run there, and vecx spawns ranks 1..N-1 (the ``spawn``
  start method, a rendezvous on 127.0.0.1); they get the data through files in
  ``/dev/shm``, the problem pickled, and each segment's index block from rank 0. Each
  rank takes its contiguous slice of the minibatch, weights its mean gradient by its
  share of the rows and all-reduces the sum. Under ``torchrun`` every rank runs ``fit``
  with the same arguments and joins through the environment; ranks other than 0 follow
  rank 0's segments and return None.
* JAX (``be.device_mesh``): one process, the devices as a mesh, each minibatch sharded
  along its first axis inside the compiled step (``jit`` or ``fused``); XLA partitions
  the step and all-reduces the gradient.
* NumPy and CuPy have no distributed engine: ``workers > 1`` is an error saying so.

Faults: a rank that fails sends its error (one line) to rank 0 and exits; rank 0 stops
the others and raises `vecx.WorkerFailed` naming it, carrying the history so far; a rank
that vanishes is found when its peers' next collective fails (gloo sees the closed
socket at once) or after ``timeout`` seconds. The spawned ranks ignore Ctrl-C, which rank
0 turns into a partial history as for one process, and are stopped whatever happens.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import multiprocessing
import multiprocessing.connection
import os
import pickle
import queue
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from vecx.environment import usable_cpus
from vecx.protocol import (
    ModeUnsupported,
    TracedRandomness,
    WorkerFailed,
    intra_op_threads,
    set_threads,
)
from vecx.pytree import tree_map
from vecx.training.executors import Problem, StepExecutor, StepProgram
from vecx.training.schedule import IndexBlock

__all__ = ["DEFAULT_TIMEOUT", "DataParallelExecutor", "launched_by_torchrun"]

#: Seconds a rank waits for the others: to start and join, and in any one collective.
DEFAULT_TIMEOUT = 60.0
#: What torchrun (torch.distributed's env:// rendezvous) sets for every rank.
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def launched_by_torchrun() -> tuple[int, int] | None:
    """``(rank, world size)`` when this process is a rank started by torchrun."""
    if not all(v in os.environ for v in TORCHRUN_VARIABLES):
        return None
    return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])


class DataParallelExecutor:
    """vecx's step on ``workers`` workers (see the module); ``threads`` CPU threads each
    (None: the usable cores divided among them, at least one)."""

    name = "data-parallel"
    takes_policy = True  # vecx's step, with its precision policy

    def __init__(self, workers: int, mode: str | None = None, threads: int | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:  # fmt: skip
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                    or threads < 1):  # fmt: skip
            raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
        self.workers, self.mode, self.threads, self.timeout = workers, mode, threads, timeout

    def build(self, problem: Problem) -> ParallelProgram:
        be = problem.be
        if callable(getattr(be, "device_mesh", None)):
            return self._mesh(problem)
        if callable(getattr(be, "process_group", None)):
            return self._processes(problem)
        raise ValueError(
            f"{be.spec} has no distributed engine, so workers={self.workers} cannot run: "
            "data parallelism runs on torch (torch.distributed) and jax (a device mesh)"
        )

    def _mesh(self, problem: Problem) -> ParallelProgram:
        be = problem.be
        if self.mode == "eager":
            raise ModeUnsupported(f"{be.spec} shards a minibatch over devices inside a "
                                  "compiled step: workers > 1 runs in mode jit or "
                                  "fused")  # fmt: skip
        mesh = be.device_mesh(self.workers)
        placed = dataclasses.replace(problem, X=mesh.place(problem.X), y=mesh.place(problem.y))
        inner = StepExecutor(self.mode, mesh).build(placed)
        return ParallelProgram(inner, mesh, threads=None)

    def _processes(self, problem: Problem) -> ParallelProgram:
        be = problem.be
        if self.mode not in (None, "eager"):
            raise ModeUnsupported(
                f"{be.spec} runs a data-parallel step eagerly: the all-reduce sits between the "
                "gradient and the update, where torch.compile(fullgraph=True) cannot trace it"
            )
        _check_split(problem, self.workers)
        threads = self.threads or max(1, usable_cpus() // self.workers)
        torchrun = launched_by_torchrun()
        if torchrun is not None:
            rank, size = torchrun
            if size != self.workers:
                raise ValueError(f"workers={self.workers}, but torchrun started {size} ranks "
                                 f"(WORLD_SIZE): pass --workers {size}")  # fmt: skip
            group = be.process_group(self.workers, rank=rank, address="env://",
                                     timeout=self.timeout).join()  # fmt: skip
            return _started(problem, group, None, threads, rank)
        ranks = Ranks(problem, self.workers, threads, self.timeout)  # checks the pickling
        try:
            group = be.process_group(self.workers, rank=0, timeout=self.timeout)
        except BaseException:
            ranks.remove_data()
            raise
        try:
            ranks.start(group.address)
            ranks.wait_ready()
            ranks.watch(group.join)  # a rank that fails while joining is named, not waited for
        except BaseException:
            ranks.stop()
            group.close()
            raise
        finally:
            ranks.remove_data()  # every rank has read it (or none will)
        return _started(problem, group, ranks, threads, 0)


def _started(problem: Problem, group: Any, ranks: Ranks | None, threads: int,
             rank: int) -> ParallelProgram:  # fmt: skip
    restore = intra_op_threads(problem.be)
    set_threads(problem.be, threads)
    try:
        inner = StepExecutor("eager", group).build(problem)
    except BaseException:
        if ranks is not None:
            ranks.stop()
        group.close()
        if restore is not None:
            set_threads(problem.be, restore)
        raise
    return ParallelProgram(inner, group, threads, ranks, rank, restore)


def _check_split(problem: Problem, workers: int) -> None:
    """Every minibatch must give each rank at least one row (an empty part's mean is nan)."""
    smallest = min(problem.batch_sizes())
    if smallest < workers:
        n = int(problem.X.shape[0])
        which = ("the batch size" if smallest == problem.batch_size
                 else f"the last minibatch of each epoch ({n} % {problem.batch_size})")  # fmt: skip
        raise ValueError(f"{which} is {smallest} rows, too few to split over {workers} workers: "
                         f"use a batch size (and a remainder) of at least {workers}")  # fmt: skip


@dataclass
class ParallelProgram:
    """A step program made data-parallel: what the loop sees (`executors.Program`)."""

    inner: StepProgram
    group: Any  # the backend's Distributed engine
    threads: int | None
    ranks: Ranks | None = None  # the spawned ranks (rank 0 on one machine)
    rank: int = 0
    restore_threads: int | None = None

    @property
    def workers(self) -> int:
        return self.group.workers

    @property
    def engine(self) -> str:
        return self.group.engine

    @property
    def state(self) -> Any:
        return self.inner.state

    @property
    def fns(self) -> Any:
        return self.inner.fns

    @property
    def compile_s(self) -> float | None:
        return self.inner.compile_s

    def segment(self, state: Any, block: IndexBlock) -> Any:
        be = self.inner.problem.be
        drew = getattr(be, "draws", None)
        try:
            if self.group.processes:
                self.group.share(block)  # the other ranks run the same block
            state = self.inner.segment(state, block)
        except RuntimeError as exc:  # a collective failed: did a rank fail?
            if self.ranks is not None:
                failed = self.ranks.failure(wait=2.0)
            else:  # torchrun's ranks: the one that raised said so in the store
                failed = getattr(self.group, "failure", lambda wait: None)(wait=2.0)
            if failed is None and self.group.processes and _collective_error(exc):
                failed = f"a worker stopped answering ({_first_line(exc)})"
            if failed is None:
                raise
            raise WorkerFailed(f"data-parallel training stopped: {failed}") from None
        if drew is not None and getattr(be, "draws", None) != drew:
            raise ValueError(DRAWS)
        return state

    def follow(self) -> None:
        """A rank other than 0: run rank 0's segments until it says stop; an error is
        announced to rank 0 (under torchrun no parent collects it) before it is raised."""
        state = self.inner.state
        try:
            with np.errstate(all="ignore"):
                while (block := self.group.share()) is not None:
                    state = self.inner.segment(state, block)
        except Exception as exc:
            announce = getattr(self.group, "announce", None)
            if announce is not None and not _collective_error(exc):
                with contextlib.suppress(Exception):
                    announce(_first_line(exc))
            raise

    def evaluate(self, state: Any) -> tuple[Any, dict[str, Any]]:
        return self.inner.evaluate(state)

    def export(self, state: Any) -> Any:
        return self.inner.export(state)

    def warmup(self, state: Any) -> None:
        try:
            self.inner.warmup(state)
        except TracedRandomness:  # found while compiling: the draws would not match
            raise ValueError(DRAWS) from None

    def precision(self, state: Any) -> dict[str, Any]:
        return self.inner.precision(state)

    def compiles(self) -> int | None:
        return self.inner.compiles()

    def close(self, finished: bool) -> None:
        """End the run: tell the other ranks to stop (``finished``) or stop them."""
        try:
            if finished and self.group.processes and self.rank == 0:
                with contextlib.suppress(Exception):  # the run is complete on rank 0
                    self.group.share(None)
            if self.ranks is not None:
                if finished:
                    self.ranks.finish()
                else:
                    self.ranks.stop()
        finally:
            if self.ranks is not None:
                self.ranks.stop()
            self.group.close()
            if self.restore_threads is not None:
                set_threads(self.inner.problem.be, self.restore_threads)


#: Why a loss that draws random numbers cannot run data-parallel.
DRAWS = ("the loss draws random numbers (be.normal, be.permutation): with workers > 1 each "
         "worker would draw its own, not one worker's numbers, so the run would not be the "
         "same SGD; train it with one worker")  # fmt: skip


def _collective_error(exc: BaseException) -> bool:
    text = str(exc)
    return any(s in text for s in ("gloo", "Connection", "NCCL", "timed out", "Timeout"))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


# --- the spawned ranks --------------------------------------------------------------------


@dataclass(frozen=True)
class RankPayload:
    """What a spawned rank needs to build the same problem: pickled, without the data."""

    backend: tuple[type, dict[str, Any]]  # be.constructor()
    device: str
    data: str  # the folder with X.npy and y.npy
    task: Any  # the built-in Task, or None for the caller's loss
    loss: Any
    metrics: dict[str, Any]
    params: Any  # the initial parameters, host arrays
    problem: dict[str, Any]  # Problem's other fields
    threads: int
    timeout: float


class Ranks:
    """Ranks 1..N-1, spawned: started, waited for, and always stopped."""

    def __init__(self, problem: Problem, workers: int, threads: int, timeout: float) -> None:
        self.workers, self.timeout = workers, timeout
        be = problem.be
        memory = "/dev/shm" if os.path.isdir("/dev/shm") else None  # a RAM-backed folder
        _remove_stale(memory or tempfile.gettempdir())
        self.data = tempfile.mkdtemp(prefix=f"{DATA_PREFIX}{os.getpid()}-", dir=memory)
        self.processes: list[Any] = []
        self.errors: dict[int, str] = {}
        try:
            self.payloads = [self._payload(problem, be, rank, threads) for rank in
                             range(1, workers)]  # fmt: skip
            for name, array in (("X", problem.X), ("y", problem.y)):
                np.save(os.path.join(self.data, f"{name}.npy"), np.asarray(be.to_numpy(array)))
            self.context = multiprocessing.get_context("spawn")
            self.messages: Any = self.context.Queue()
        except BaseException:
            self.remove_data()
            raise

    def _payload(self, problem: Problem, be: Any, rank: int, threads: int) -> bytes:
        task = problem.task
        own = task is None
        device = be.device
        if device.startswith("cuda"):  # one GPU per rank
            base = int(device.split(":")[1]) if ":" in device else 0
            device = f"cuda:{base + rank}"
        payload = RankPayload(
            be.constructor(), device, self.data, task, problem.loss if own else None,
            dict(problem.metrics) if own else {},
            tree_map(lambda a: np.asarray(be.to_numpy(a)), problem.params),
            {"optimizer": problem.optimizer, "lr": problem.lr,
             "batch_size": problem.batch_size, "runs": problem.runs,
             "policy": problem.policy},
            threads, self.timeout,
        )  # fmt: skip
        try:
            return pickle.dumps(payload)
        except Exception as exc:
            raise ValueError(
                "workers > 1 on torch runs the loss and metrics in spawned processes, so they "
                "must be picklable: functions defined at module level, not lambdas or closures "
                f"({_first_line(exc)})"
            ) from None

    def start(self, address: str) -> None:
        """Spawn the ranks; they join rank 0's rendezvous at ``address``. They start with
        Ctrl-C ignored (the disposition survives the exec), so a Ctrl-C while one is still
        importing reaches rank 0 alone."""
        with _sigint_ignored():
            for rank, payload in enumerate(self.payloads, start=1):
                process = self.context.Process(
                    target=rank_main, args=(payload, rank, self.workers, address,
                                            self.messages),
                    name=f"vecx-rank-{rank}", daemon=True,
                )  # fmt: skip
                process.start()
                self.processes.append(process)

    def watch(self, join: Any) -> None:
        """``join()`` (rank 0's ``init_process_group``) in a thread, while watching the
        ranks: one that fails is a `WorkerFailed` at once, not a rendezvous timeout."""
        done: list[BaseException | None] = []

        def run() -> None:
            try:
                join()
                done.append(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                done.append(exc)

        thread = threading.Thread(target=run, name="vecx-join", daemon=True)
        thread.start()
        while thread.is_alive():
            thread.join(0.05)
            failed = self.failure(wait=0.0) if thread.is_alive() else None
            if failed:
                raise WorkerFailed(f"data-parallel training could not start: {failed}")
        if done and done[0] is not None:
            failed = self.failure(wait=1.0)
            if failed:
                raise WorkerFailed(f"data-parallel training could not start: {failed}")
            raise done[0]

    def wait_ready(self) -> None:
        """Until every rank has built its problem (and is joining the group)."""
        ready: set[int] = set()
        deadline = time.monotonic() + self.timeout
        while len(ready) < len(self.processes):
            self._read(0.05, ready)
            failed = self._failed()
            if failed:
                raise WorkerFailed(f"data-parallel training could not start: {failed}")
            if time.monotonic() > deadline:
                missing = sorted(set(range(1, self.workers)) - ready)
                raise WorkerFailed(f"data-parallel training could not start: rank "
                                   f"{missing[0]} was not ready after "
                                   f"{self.timeout:g} s")  # fmt: skip

    def _read(self, wait: float, ready: set[int] | None = None) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                kind, rank, text = self.messages.get(timeout=wait)
                wait = 0.0
                if kind == "ready" and ready is not None:
                    ready.add(rank)
                elif kind == "error":
                    self.errors.setdefault(rank, text)

    def _failed(self) -> str | None:
        """The first rank's error, or how it ended without one."""
        if self.errors:
            rank = min(self.errors)
            return f"rank {rank} failed: {self.errors[rank]}"
        for rank, process in enumerate(self.processes, start=1):
            code = process.exitcode
            if code is not None and code != 0:
                how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
                hint = ("" if code < 0 else " before it could say why (a script that calls "
                        "fit(workers=...) needs `if __name__ == \"__main__\":`, and its loss "
                        "must be importable)")  # fmt: skip
                return f"rank {rank} {how}{hint}"
        return None

    def failure(self, wait: float) -> str | None:
        """The failed rank and its error, waiting up to ``wait`` seconds for it to say."""
        deadline = time.monotonic() + wait
        while True:
            self._read(0.05)
            failed = self._failed()
            if failed or time.monotonic() > deadline:
                return failed

    def finish(self) -> None:
        """After the last segment each rank exits by itself (within ``timeout``; `stop`
        ends one that does not). The run is complete on rank 0 by then: a rank that
        fails on its way out changes nothing of it."""
        for process in self.processes:
            process.join(self.timeout)

    def stop(self) -> None:
        """Stop every rank still running: terminate, then kill; none is left behind."""
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        for process in self.processes:
            process.join(5.0)
            if process.is_alive():
                process.kill()
                process.join(5.0)

    def remove_data(self) -> None:
        shutil.rmtree(self.data, ignore_errors=True)


DATA_PREFIX = "vecx-workers-"


def _remove_stale(folder: str) -> None:
    """Data folders left by a rank 0 that was killed (its pid is in the name)."""
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            pid = name.removeprefix(DATA_PREFIX).split("-", 1)[0]
            if name.startswith(DATA_PREFIX) and pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(os.path.join(folder, name), ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _sigint_ignored() -> Any:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _exit_with_parent() -> None:
    """A daemon thread: this rank exits when rank 0 does, whatever it is doing."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def wait() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=wait, name="vecx-parent-watch", daemon=True).start()


def rank_main(payload: bytes, rank: int, workers: int, address: str, messages: Any) -> None:
    """A spawned rank: build the problem, join the group, follow rank 0's segments."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # rank 0 handles Ctrl-C and stops us
    _exit_with_parent()
    group = None
    try:
        spec: RankPayload = pickle.loads(payload)
        cls, kwargs = spec.backend
        be = cls(spec.device, **kwargs)
        set_threads(be, spec.threads)
        X = be.asarray(np.load(os.path.join(spec.data, "X.npy")))
        y = np.load(os.path.join(spec.data, "y.npy"))
        y = be.asarray(y) if y.dtype.kind == "f" else be.asarray(y, dtype=str(y.dtype))
        loss, metrics = spec.loss, spec.metrics
        if spec.task is not None:
            loss = functools.partial(spec.task.loss, be)
            metrics = {k: functools.partial(m, be) for k, m in spec.task.metrics.items()}
        params = tree_map(be.asarray, spec.params)
        problem = Problem(be, X, y, loss, metrics, params, task=spec.task, **spec.problem)
        group = be.process_group(workers, rank=rank, address=address, timeout=spec.timeout)
        messages.put(("ready", rank, ""))
        group.join()
        program = ParallelProgram(StepExecutor("eager", group).build(problem), group,
                                  spec.threads, rank=rank)  # fmt: skip
        program.follow()
    except BaseException as exc:  # one line to rank 0, which names this rank
        with contextlib.suppress(Exception):
            messages.put(("error", rank, _first_line(exc)))
            messages.close()
            messages.join_thread()
        os._exit(1)
    finally:
        if group is not None:
            with contextlib.suppress(Exception):
                group.close()
    sys.exit(0)
