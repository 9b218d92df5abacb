"""The training loop, written once: validation, the clock, checkpoints, divergence.

``fit`` trains any model given as a loss and initial parameters (or a built-in task) by
minibatch SGD (or momentum) on any backend. Why it is built this way:

* The data, the initial parameters and the minibatch order come from host generators
  (``vecx.data``), so NumPy, PyTorch, JAX and CuPy see the same numbers and the same
  batches; their final parameters agree to float32 rounding (tests check it).
* Steps run in segments, one ``program.segment(state, block)`` call between two
  checkpoints (``vecx.training.schedule``); an executor (``vecx.training.executors``)
  builds the program. Nothing in a segment reads a value back to the host, so
  asynchronous devices stay busy.
* The clock (``vecx.Timer``, synchronising the device at every read) stops around the
  whole-data evaluation at each checkpoint, as d2l does, so ``History.times`` is training
  time only; compilation happens in the executor's warm-up, before the clock starts.
* A run that blows up raises ``vecx.TrainingDiverged`` at the next checkpoint instead of
  reporting ``nan``. That exception, and a ``KeyboardInterrupt`` during the loop, carry
  the run so far as ``exc.history`` (``diverged`` or ``interrupted`` set), so
  ``vecx train`` can still write what was computed.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from vecx.data import check_backend, check_int, host_rng, rows_of
from vecx.protocol import Backend, TrainingDiverged, WorkerFailed
from vecx.pytree import leaves, structure, tree_map
from vecx.timing import Timer
from vecx.training.executors import Executor, Problem, Program, get_executor
from vecx.training.history import Checkpoint, History
from vecx.training.optimizers import Optimizer, get_optimizer
from vecx.training.precision import LossScale, get_policy
from vecx.training.schedule import run_shapes, segments
from vecx.training.tasks import TASKS, Task

__all__ = ["DIVERGENCE_FACTOR", "FINITE_CHECK_ELEMENTS", "fit", "init_params", "run"]

#: A checkpoint loss this many times the initial loss counts as divergence: a run that
#: has grown its loss a millionfold is not coming back, and float32 overflow (then nan)
#: may be many epochs away (airfoil-gd at lr=10 reaches 1e26, still finite, in 10 epochs).
DIVERGENCE_FACTOR = 1e6
#: Elements checked at a time for nan/inf in the data (a bounded temporary, not n x d).
FINITE_CHECK_ELEMENTS = 1 << 20


def fit(
    be: Backend,
    X: Any,
    y: Any,
    *,
    loss: Callable[[Any, Any, Any], Any] | None = None,
    params: Any = None,
    lr: float,
    batch_size: int,
    epochs: int,
    optimizer: str | Optimizer = "sgd",
    seed: int = 0,
    replacement: bool = False,
    log_every: int = 200,
    metrics: Mapping[str, Callable[[Any, Any, Any], Any]] | None = None,
    task: str | Task | None = None,
    executor: str | Executor | None = None,
    mode: str | None = None,
    compute_dtype: str | None = None,
    loss_scale: LossScale | None = None,
    workers: int | None = None,
    preset: str | None = None,
    callback: Callable[[Checkpoint], None] | None = None,
) -> History | None:
    """Train a model by minibatch SGD (or ``optimizer="momentum"``) on ``be``, d2l style.

    ``X`` (n, d) and ``y`` (n,) or (n, k) (a matrix for one-hot labels) are arrays of
    ``be``. ``loss(params, X, y)`` returns the mean loss of a batch, written with the
    backend's operators and methods (``be.log``, ``be.logsumexp``, ...); ``params`` is a
    pytree (dicts, tuples, lists, namedtuples) of host NumPy arrays, or a callable taking
    a host ``numpy.random.Generator`` (seeded from ``seed``) and returning one, so every
    backend starts from the same numbers. Without ``loss`` the model is d2l's linear
    regression (``X @ w + b``, squared loss, ``w ~ N(0, 0.01)``, ``b = 0``); ``task``
    names another built-in model (``"softmax"``, ``"mlp"``). ``metrics`` are functions
    like ``loss`` evaluated with it at every checkpoint (every ``log_every`` examples
    and at the end, outside the clock), as a task's accuracy is.

    ``mode`` says how the steps run (``vecx.MODES``): ``"eager"``, one uncompiled call
    per step; ``"jit"``, one compiled call per step; ``"fused"``, one compiled call per
    run of equal minibatches between checkpoints (JAX's ``lax.scan``). None: ``jit``
    where ``be.jit`` compiles (JAX), else ``eager``. Every mode trains the same steps on
    the same batches; compilation happens before the clock and is timed
    (``history.compile_s``). A mode ``be`` cannot run raises ``vecx.ModeUnsupported``
    saying why, before any step.

    ``compute_dtype="bfloat16"`` or ``"float16"`` trains in mixed precision
    (``vecx.training.precision``): float32 parameters and update, the step computed in
    the low dtype (the parameters and the batch cast at its start, the loss cast back
    before its gradient), float16 with dynamic loss scaling (PyTorch GradScaler's rule:
    ``history.loss_scale``, ``history.skipped_steps``; ``loss_scale=vecx.LossScale(...)``
    for another start, growth or interval). None: the backend's dtype.

    ``workers=N`` trains data-parallel (``vecx.training.parallel``): N torch.distributed
    ranks (gloo on the CPU, NCCL on CUDA), or a mesh of N JAX devices, each on its slice
    of the same minibatches, the gradients summed before the update; the same SGD as one
    worker, its sums reordered. On torch the loss and metrics must be picklable
    (module-level functions), a script that calls ``fit`` needs the usual
    ``if __name__ == "__main__":`` guard (ranks are spawned), and under ``torchrun`` the
    ranks other than 0 return None. A rank that fails raises ``vecx.WorkerFailed``.

    ``seed`` also fixes the minibatch order (``vecx.data_iter`` with the same seed).
    ``history.params`` has the structure of ``params``, as NumPy arrays.

    Raises ``ValueError`` for bad arguments (which one and why) and
    ``vecx.TrainingDiverged`` when a checkpoint loss is non-finite or has grown
    ``DIVERGENCE_FACTOR`` times over the initial loss. That exception, and a
    ``KeyboardInterrupt`` while training, carry the partial :class:`History` (the
    checkpoints before it) as ``exc.history``.
    """
    n = check_args(X, y, lr=lr, batch_size=batch_size, epochs=epochs, seed=seed,
                   log_every=log_every)  # fmt: skip
    check_backend(be)
    check_data(be, X, y)
    optimizer = get_optimizer(optimizer)
    engine = _engine(executor, mode, workers)
    policy = get_policy(be, compute_dtype, loss_scale)
    if policy.mixed and not getattr(engine, "takes_policy", False):
        raise ValueError(
            f"compute_dtype={compute_dtype!r} is a policy of vecx's step executor; executor "
            f"{engine.name!r} runs its own way (leave compute_dtype out, or the executor)"
        )
    if task is not None and loss is not None:
        raise ValueError("pass task= or loss=, not both: task names a built-in model, which "
                         "has its own loss (and params= of its own shapes)")  # fmt: skip
    chosen = _task(task, loss)
    check_callables(loss, metrics, callback)
    if not isinstance(replacement, (bool, np.bool_)):
        raise ValueError(f"replacement must be True or False, got {replacement!r}")
    if chosen is not None:
        y = _targets(chosen, y)
    check_finite(be, X, "X")
    check_finite(be, y, "y")
    if loss is None:
        loss = _bound(be, chosen.loss)
    if metrics is None:
        metrics = {} if chosen is None else {k: _bound(be, m) for k, m in chosen.metrics.items()}
    if params is None:
        if chosen is None:
            raise ValueError("fit(loss=...) needs params: the initial parameters (a pytree "
                             "of NumPy arrays, or a function of a numpy.random.Generator)")
        params = lambda rng: chosen.init(rng, int(X.shape[1]), _outputs(y))  # noqa: E731
    elif chosen is not None:  # a built-in task: params must have its shapes
        _check_structure(chosen, params, seed, int(X.shape[1]), _outputs(y))
    problem = Problem(
        be, X, y, loss, dict(metrics), init_params(be, params, seed), optimizer, float(lr),
        batch_size, chosen, run_shapes(n, batch_size, epochs, log_every), policy,
    )  # fmt: skip
    program = engine.build(problem)
    history = History([], [], [], None, float(lr), batch_size, epochs, be.spec, preset,
                      optimizer=optimizer.describe(), executor=engine.name,
                      mode=_mode_of(engine, program, be), compute_dtype=policy.compute_dtype,
                      workers=getattr(program, "workers", 1),
                      engine=getattr(program, "engine", None),
                      threads_per_worker=getattr(program, "threads", None))  # fmt: skip
    close = getattr(program, "close", None)
    finished = False
    try:
        if getattr(program, "rank", 0) != 0:  # a torchrun rank: rank 0 keeps the history
            program.follow()
            finished = True
            return None
        done = run(program, problem, history, n=n, epochs=epochs, seed=seed,
                   replacement=replacement, log_every=log_every, callback=callback)  # fmt: skip
        finished = True
        return done
    finally:
        if close is not None:
            close(finished)


def _engine(executor: Any, mode: str | None, workers: Any) -> Executor:
    """The executor of ``fit``'s arguments: ``workers > 1`` is the data-parallel one (as
    is a run started by torchrun with several ranks, whose world size it takes)."""
    from vecx.training.parallel import DataParallelExecutor, launched_by_torchrun

    started = launched_by_torchrun()
    if workers is None and started is not None and started[1] > 1:
        workers = started[1]
    if workers is None or (workers == 1 and not isinstance(workers, bool)):
        return get_executor(executor, mode)
    workers = check_int("workers", workers, 1)
    if executor not in (None, "steps"):
        raise ValueError(f"workers={workers} runs vecx's step data-parallel; executor "
                         f"{executor!r} runs its own way (leave out workers or the "
                         "executor)")  # fmt: skip
    return DataParallelExecutor(workers, mode)


def _mode_of(engine: Any, program: Any, be: Backend) -> str | None:
    """The mode the run's steps execute in: the step executor's, resolved; a native
    trainer's as its program declares it; None for an executor that says nothing."""
    fns = getattr(program, "fns", None)
    if fns is not None and getattr(fns, "mode", None):
        return fns.mode
    return getattr(program, "mode", None)


def _task(task: str | Task | None, loss: Any) -> Task | None:
    if isinstance(task, Task):
        return task
    if task is None:
        return None if loss is not None else TASKS["linreg"]
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    return TASKS[task]


def _outputs(y: Any) -> int:
    return int(y.shape[1]) if len(y.shape) == 2 else 1


def _targets(task: Task, y: Any) -> Any:
    """``y`` as ``task`` needs it: a column for regression on (n,), one-hot for classes."""
    if task.targets == "onehot":
        if len(y.shape) != 2 or int(y.shape[1]) < 2:
            raise ValueError(
                f"task {task.name!r} needs y as one-hot labels of shape (n, classes), got shape "
                f"{tuple(y.shape)}: one-hot integer labels with numpy.eye(classes)[labels] "
                "(vecx.load_digits returns them one-hot)"
            )
        return y
    return y.reshape(-1, 1) if len(y.shape) == 1 else y  # d2l's column of targets


def _check_structure(task: Task, params: Any, seed: int, d: int, k: int) -> None:
    """Parameters given for a built-in task must be shaped as its own initialisation."""
    given = params(host_rng(seed, "init")) if callable(params) else params
    expected = task.init(host_rng(seed, "init"), d, k)
    if structure(given) != structure(expected) or any(
        np.shape(a) != np.shape(b) for a, b in zip(leaves(given), leaves(expected), strict=True)
    ):
        shapes = {key: tuple(v.shape) for key, v in expected.items()}
        raise ValueError(f"params for task {task.name!r} must be shaped as its own: {shapes}")


_array_types: weakref.WeakKeyDictionary[Any, type] = weakref.WeakKeyDictionary()


def array_type(be: Backend) -> type:
    """The type of ``be``'s arrays, asked once per backend (a JAX dispatch costs ~50 us)."""
    try:
        return _array_types[be]
    except KeyError:
        kind = _array_types[be] = type(be.zeros((0,)))
        return kind
    except TypeError:  # cannot be weakly referenced
        return type(be.zeros((0,)))


def check_data(be: Backend, X: Any, y: Any) -> None:
    """``X`` and ``y`` are arrays of ``be``, and float ones are in its dtype: a host array
    on a torch backend, or float64 data on a float32 one, would mix dtypes or fail late."""
    kind = array_type(be)
    for name, a in (("X", X), ("y", y)):
        if not isinstance(a, kind):
            raise ValueError(
                f"{name} must be an array of {be.spec} ({kind.__module__}.{kind.__name__}), "
                f"got {type(a).__module__}.{type(a).__name__}: convert it with be.asarray"
            )
        dtype = str(a.dtype).removeprefix("torch.")
        floating = dtype.startswith(("float", "bfloat"))
        if name == "X" and not floating:
            raise ValueError(f"X must be floating-point ({be.dtype}), got {dtype}")
        if floating and dtype != be.dtype:
            raise ValueError(
                f"{name} is {dtype} but {be.spec} computes in {be.dtype}: convert it with "
                f"be.asarray({name}), or build the backend with dtype={dtype!r}"
            )


def check_callables(loss: Any, metrics: Any, callback: Any) -> None:
    """``loss``, each metric and ``callback`` are functions (or None): checked before any
    step runs, in messages that name the argument."""
    if loss is not None and not callable(loss):
        raise ValueError(f"loss must be a function loss(params, X, y), got {loss!r}")
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be a function of a Checkpoint, got {callback!r}")
    if metrics is None:
        return
    if not isinstance(metrics, Mapping):
        raise ValueError("metrics must be a dict of name -> metric(params, X, y), got "
                         f"{type(metrics).__name__}")  # fmt: skip
    for name, fn in metrics.items():
        if not isinstance(name, str) or not callable(fn):
            raise ValueError(f"metrics[{name!r}] must be a function metric(params, X, y) "
                             f"under a string name, got {fn!r}")  # fmt: skip


_bound_lock = threading.Lock()
_bound_fns: weakref.WeakKeyDictionary[Any, dict[Any, Callable[..., Any]]] = (
    weakref.WeakKeyDictionary()
)


def _bound(be: Backend, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn(be, ...)`` as ``fn(...)``, the same function object for the same backend, so
    the executor's compiled step is reused (JAX would trace and compile a new one)."""
    with _bound_lock:
        try:
            per_backend = _bound_fns.setdefault(be, {})
        except TypeError:
            return functools.partial(fn, be)
        found = per_backend.get(fn)
        if found is None:  # a partial: a C-level call, cheaper than a lambda on every step
            found = per_backend[fn] = functools.partial(fn, be)
        return found


def init_params(be: Backend, params: Any, seed: int) -> Any:
    """The initial parameters on ``be``: ``params`` (a pytree of host arrays, or a
    function of the ``"init"`` host generator of ``seed`` returning one), each float leaf
    in the backend's dtype."""
    if callable(params):
        params = params(host_rng(seed, "init"))
    if not leaves(params):
        raise ValueError("params has no arrays to train")
    _no_lists_of_numbers(params, "params")

    def on_backend(leaf: Any) -> Any:
        host = np.asarray(leaf) if isinstance(leaf, np.ndarray | np.generic | float | int) else (
            np.asarray(be.to_numpy(leaf)))  # fmt: skip
        if host.dtype.kind != "f":
            raise ValueError(f"params must hold floating-point arrays, got {host.dtype}")
        return be.asarray(host)

    return tree_map(on_backend, params)


def _no_lists_of_numbers(tree: Any, where: str) -> None:
    """A list (or tuple) of plain numbers in ``params`` is an array written as a list:
    lists are pytree nodes, so it would train one scalar per number. Say so."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            _no_lists_of_numbers(v, f"{where}[{k!r}]")
    elif isinstance(tree, (list, tuple)) and tree:
        if all(isinstance(v, (int, float, list)) and not isinstance(v, bool) for v in tree) and (
            any(not isinstance(v, list) for v in _flat(tree))
        ):
            raise ValueError(
                f"{where} is a {type(tree).__name__} of numbers: pass an array "
                "(numpy.array(...)); lists and tuples are containers of parameters"
            )
        for i, v in enumerate(tree):
            _no_lists_of_numbers(v, f"{where}[{i}]")


def _flat(items: Any) -> list[Any]:
    out: list[Any] = []
    for v in items:
        out.extend(_flat(v) if isinstance(v, list) else [v])
    return out


def check_args(
    X: Any, y: Any, *, lr: Any, batch_size: Any, epochs: Any, seed: Any, log_every: Any
) -> int:
    """Validate ``fit``'s arguments; return the number of rows. ``ValueError`` says which."""
    if (
        isinstance(lr, (bool, np.bool_))
        or not isinstance(lr, (int, float, np.integer, np.floating))
        or not math.isfinite(lr)
        or lr <= 0
    ):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    shape = getattr(X, "shape", None)
    if shape is None or len(shape) != 2:
        raise ValueError(f"X must be a 2-D array (examples x features), got shape {shape}")
    n, d = int(shape[0]), int(shape[1])
    if n < 1 or d < 1:
        raise ValueError(f"X must have at least one row and one column, got shape {tuple(shape)}")
    ny = rows_of(y, "y")
    if ny != n:
        raise ValueError(f"X and y must have the same number of rows: X has {n}, y has {ny}")
    check_int("batch_size", batch_size, 1, n)
    check_int("epochs", epochs, 1)
    check_int("seed", seed, 0)
    check_int("log_every", log_every, 1)
    return n


def check_finite(be: Backend, x: Any, name: str) -> None:
    """``ValueError`` if ``x`` holds nan or inf: they would surface as a silent nan loss.

    Checked ``FINITE_CHECK_ELEMENTS`` at a time, so the temporary is a bounded slice and
    its mask, not a boolean array the size of the data (a tenth of a float32 X).
    """
    rows = int(x.shape[0]) if len(x.shape) else 1
    per_row = max(1, int(np.prod(x.shape[1:], dtype=np.int64))) if len(x.shape) > 1 else 1
    step = max(1, FINITE_CHECK_ELEMENTS // per_row)
    bad = 0
    for start in range(0, rows, step):
        part = x if rows <= step else x[start : start + step]  # small data: one read
        chunk = np.asarray(be.to_numpy(part))
        if chunk.dtype.kind in "fc":
            bad += int(chunk.size - np.count_nonzero(np.isfinite(chunk)))
    if bad:
        raise ValueError(f"{name} contains {bad} non-finite value(s) (nan or inf)")


def run(
    program: Program,
    problem: Problem,
    history: History,
    *,
    n: int,
    epochs: int,
    seed: int = 0,
    replacement: bool = False,
    log_every: int = 200,
    callback: Callable[[Checkpoint], None] | None = None,
) -> History:
    """Run ``program`` segment by segment, with checkpoints; fill and return ``history``."""
    be = problem.be
    state = program.state
    total = n * epochs

    def evaluated(s: Any) -> tuple[float, dict[str, float]]:
        loss, values = program.evaluate(s)
        return _scalar(be, loss, "the loss"), {
            k: _scalar(be, v, f"metric {k!r}") for k, v in values.items()
        }

    # NumPy (and the NumPy-based autodiff) warn on overflow as a run diverges; the
    # divergence check below reports it properly, so the warnings would only be noise.
    # errstate changes NumPy's floating-point handling only, in this context only.
    try:
        with np.errstate(all="ignore"):
            program.warmup(state)
            history.compile_s = getattr(program, "compile_s", None)
            initial, _ = evaluated(state)
            if not math.isfinite(initial):
                history.diverged = (
                    f"training cannot start: the whole-data loss of the initial parameters is "
                    f"{initial} (check the parameters, the data and the loss)"
                )
                raise TrainingDiverged(history.diverged, history)
            limit = DIVERGENCE_FACTOR * initial if initial > 0 else math.inf
            # Sync on the latest state: it depends on every queued step, so waiting for
            # it waits for all of them, whatever the framework's queueing rules.
            timer = Timer(sync=lambda: be.sync(state))
            order = host_rng(seed, "order")
            timer.start()
            for seg in segments(n, problem.batch_size, epochs, log_every, order,
                                replacement=replacement):  # fmt: skip
                try:
                    state = program.segment(state, seg.block)
                except KeyboardInterrupt as stop:  # where it stopped, not the last checkpoint
                    state = getattr(stop, "state", state)
                    raise
                timer.stop()
                loss, values = evaluated(state)
                if not loss <= limit:  # nan, inf, or a millionfold growth
                    how = "is not finite" if not math.isfinite(loss) else f"grew to {loss:.3g}"
                    history.diverged = (
                        f"training diverged: the whole-data loss {how} (from {initial:.3g}) "
                        f"at step {seg.steps}, epoch {seg.epoch}, {seg.examples} examples, "
                        f"with lr={problem.lr:g}; lower the learning rate"
                    )
                    raise TrainingDiverged(history.diverged, history)
                elapsed = timer.sum()
                history.examples.append(seg.examples)
                history.losses.append(loss)
                history.times.append(elapsed)
                history.steps.append(seg.steps)
                for name, value in values.items():
                    history.metrics.setdefault(name, []).append(value)
                if callback is not None:
                    reached = state
                    callback(Checkpoint(seg.steps, seg.epoch, seg.examples, loss, elapsed,
                                        total, values,
                                        lambda s=reached: program.export(s)))  # fmt: skip
                if seg.examples < total:
                    timer.start()
    except (KeyboardInterrupt, TrainingDiverged, WorkerFailed) as exc:
        # never lose what was computed: the exception carries the run so far
        history.interrupted = isinstance(exc, KeyboardInterrupt)
        if isinstance(exc, WorkerFailed):
            history.failed = str(exc)
        history.params = _finite_export(program, state)
        with contextlib.suppress(Exception):
            _precision(program, state, history)
        exc.history = history  # type: ignore[union-attr]
        raise
    history.params = program.export(state)
    _precision(program, state, history)
    if history.skipped_steps and history.steps and history.skipped_steps >= history.steps[-1]:
        history.diverged = (
            f"training never stepped: all {history.skipped_steps} steps had a non-finite "
            f"{history.compute_dtype} gradient and were skipped by loss scaling (the scale "
            f"ended at {history.loss_scale:g}); start from a smaller vecx.LossScale(init=...)"
        )
        raise TrainingDiverged(history.diverged, history)
    compiles = getattr(program, "compiles", None)
    history.compiles = compiles() if callable(compiles) else None
    return history


def _precision(program: Program, state: Any, history: History) -> None:
    """The loss scaler's final scale and skipped steps, where the policy scales."""
    done = getattr(program, "precision", None)
    for key, value in (done(state) if callable(done) else {}).items():
        setattr(history, key, value)


def _scalar(be: Backend, x: Any, what: str) -> float:
    value = np.asarray(be.to_numpy(x) if hasattr(x, "shape") else x)
    if value.size != 1:
        raise ValueError(f"{what} must be a scalar (the mean over the data), got shape "
                         f"{value.shape}")  # fmt: skip
    return float(value.reshape(()))


def _finite_export(program: Program, state: Any) -> Any:
    """``program.export(state)`` if it works and is finite, else None (a partial run)."""
    try:
        params = program.export(state)
        finite = all(np.isfinite(np.asarray(v, dtype=float)).all() for v in leaves(params))
    except Exception:
        return None
    return params if finite else None
