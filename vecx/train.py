"""Linear regression by minibatch SGD, written once against the ``Backend`` protocol.

This reproduces *Dive into Deep Learning*'s "linear regression from scratch" and
"minibatch stochastic gradient descent" experiments on every backend. Why it is built
this way:

* The data, the initial parameters and the minibatch order come from host generators
  (``vecx.data``), so NumPy, PyTorch, JAX and CuPy see the same numbers and the same
  batches; their final parameters agree to float32 rounding (tests check it).
* The training step is built once: ``be.jit(step)``, where ``step`` takes the gradient
  with ``be.value_and_grad`` and applies :func:`sgd`. JAX compiles the whole step; the
  eager frameworks run it as it is. Nothing in the loop reads a value back to the host,
  so asynchronous devices stay busy.
* The clock (``vecx.Timer``, synchronising the device at every read) stops around the
  whole-data loss evaluation at each checkpoint, as d2l does, so ``History.times`` is
  training time only.
* A run that blows up raises ``vecx.TrainingDiverged`` at the next checkpoint instead of
  reporting ``nan``. That exception, and a ``KeyboardInterrupt`` during the loop, carry
  the run so far as ``exc.history`` (``diverged`` or ``interrupted`` set), so
  ``vecx train`` can still write what was computed.

:func:`run_loop` is the loop itself with the step passed in, so the framework-native
reference trainers (``vecx.backends.native``) differ from :func:`fit` in the step only.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from vecx.data import check_int, data_iter, host_rng, load_airfoil, rows_of, synthetic_data
from vecx.protocol import Backend, TrainingDiverged
from vecx.timing import Timer

__all__ = [
    "DIVERGENCE_FACTOR",
    "PRESETS",
    "Checkpoint",
    "History",
    "Preset",
    "fit",
    "init_params",
    "linreg",
    "prepare",
    "run_loop",
    "sgd",
    "squared_loss",
    "train",
]

Params = dict[str, Any]

#: A checkpoint loss this many times the initial loss counts as divergence: a run that
#: has grown its loss a millionfold is not coming back, and float32 overflow (then nan)
#: may be many epochs away (airfoil-gd at lr=10 reaches 1e26, still finite, in 10 epochs).
DIVERGENCE_FACTOR = 1e6


# --- the model -------------------------------------------------------------------------


def linreg(X: Any, w: Any, b: Any) -> Any:
    """The linear model ``X @ w + b`` (d2l's ``linreg``)."""
    return X @ w + b


def squared_loss(y_hat: Any, y: Any) -> Any:
    """Elementwise ``(y_hat - y)**2 / 2``; ``y`` is reshaped to ``y_hat``'s shape.

    The reshape guards against d2l's classic bug: ``(n, 1) - (n,)`` broadcasts to (n, n).
    """
    if tuple(y.shape) != tuple(y_hat.shape):
        y = y.reshape(y_hat.shape)
    return (y_hat - y) ** 2 / 2


def sgd(params: Params, grads: Params, lr: float) -> Params:
    """One SGD update, ``p - lr * g`` for each parameter; returns new parameters.

    Functional (no in-place update) so the same code runs under ``jax.jit`` and on
    immutable arrays. The gradient is already that of the *mean* batch loss.
    """
    return {k: p - lr * grads[k] for k, p in params.items()}


def batch_loss(params: Params, X: Any, y: Any) -> Any:
    """Mean squared loss of the linear model on ``(X, y)``: what a step differentiates."""
    return squared_loss(linreg(X, params["w"], params["b"]), y).mean()


State = tuple[Any, Any]  # (w, b): a flat tuple is cheaper for jax.jit to take than a dict
Step = Callable[[State, Any, Any, Any, Any], State]


def make_step(be: Backend) -> tuple[Step, Callable[[State, Any, Any], Any]]:
    """``step((w, b), X, y, idx, lr) -> (w, b)`` and the whole-data loss, jitted.

    The step gathers its minibatch (``be.index`` with the host indices ``idx``), takes
    ``be.value_and_grad`` of the mean batch loss and applies :func:`sgd`, all inside
    ``be.jit``: on JAX that is one compiled call per minibatch, where gathering outside
    would add two eager dispatches costing more than the compiled step itself. Eager
    frameworks run it as it is (a future compiled mode plugs in here).

    Measured choices for a loop where dispatch, not arithmetic, is the cost (JAX, ~11 us
    a step on a CPU): the batch loss is not returned, since nothing reads it (checkpoints
    evaluate the whole data set) and each output array costs ~3 us; the parameters cross
    the jit boundary as a tuple, ~0.5 us cheaper than a dict; ``lr`` is an argument, so
    one compiled step serves every learning rate. Use :func:`compiled` to get them: it
    builds them once per backend.
    """
    value_and_grad = be.value_and_grad(batch_loss)
    index = be.index

    def step(state: State, X: Any, y: Any, idx: Any, lr: Any) -> State:
        params = {"w": state[0], "b": state[1]}
        _, grads = value_and_grad(params, index(X, idx), index(y, idx))
        new = sgd(params, grads, lr)
        return new["w"], new["b"]

    def loss(state: State, X: Any, y: Any) -> Any:
        return batch_loss({"w": state[0], "b": state[1]}, X, y)

    return be.jit(step), be.jit(loss)


@dataclass
class Compiled:
    """A backend's jitted step and loss, and the problem shapes they have already run on."""

    step: Step
    evaluate: Callable[[State, Any, Any], Any]
    jitted: bool  # False where be.jit returns the function itself (eager frameworks)
    warmed: set[tuple[Any, ...]] = field(default_factory=set)
    _lrs: dict[float, Any] = field(default_factory=dict)

    def lr(self, be: Backend, lr: float) -> Any:
        """``lr`` as a device scalar, kept for the next run (a transfer costs ~70 us on JAX)."""
        try:
            return self._lrs[lr]
        except KeyError:
            if len(self._lrs) >= 32:
                self._lrs.clear()
            value = self._lrs[lr] = be.asarray(lr)
            return value


_compiled_lock = threading.Lock()
_compiled: weakref.WeakKeyDictionary[Any, Compiled] = weakref.WeakKeyDictionary()


def compiled(be: Backend) -> Compiled:
    """:func:`make_step` cached per backend instance (weakly, thread-safely).

    Without the cache every ``fit`` would hand ``jax.jit`` a fresh function and pay
    tracing and XLA compilation again (~0.1 s, longer than a whole ``linreg`` run).
    """
    with _compiled_lock:
        try:
            return _compiled[be]
        except KeyError:
            pass
        except TypeError:  # a third-party backend that cannot be weakly referenced
            return _build(be)
        fns = _compiled[be] = _build(be)
        return fns


def _build(be: Backend) -> Compiled:
    step, evaluate = make_step(be)
    return Compiled(step, evaluate, jitted=be.jit(batch_loss) is not batch_loss)


def init_params(be: Backend, d: int, seed: int) -> Params:
    """d2l's initialisation, drawn on the host: ``w ~ N(0, 0.01)`` (d, 1), ``b = 0`` (1,)."""
    w = host_rng(seed, "init").normal(0.0, 0.01, (d, 1))
    return {"w": be.asarray(w.astype(np.float32)), "b": be.asarray(np.zeros(1, np.float32))}


# --- results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """One evaluation of the whole-data loss, as passed to ``fit(callback=...)``."""

    step: int
    epoch: int
    examples: int
    loss: float
    time: float  # cumulative training seconds (evaluations excluded)
    total_examples: int


@dataclass
class History:
    """What a training run produced; ``to_dict()`` is the JSON contract of
    docs/architecture.md (``vecx train --json`` and the ``train`` suite)."""

    examples: list[int]
    losses: list[float]
    times: list[float]
    params: dict[str, np.ndarray]
    lr: float
    batch_size: int
    epochs: int
    backend: str
    preset: str | None = None
    steps: list[int] = field(default_factory=list)
    #: A partial run: stopped by Ctrl-C, or the `TrainingDiverged` message. The
    #: checkpoints are those before it; ``params`` are where it stopped, or empty if
    #: they are not finite.
    interrupted: bool = False
    diverged: str | None = None

    @property
    def complete(self) -> bool:
        """Whether the run trained every epoch (not interrupted, not diverged)."""
        return not (self.interrupted or self.diverged)

    @property
    def loss(self) -> float:
        """The final whole-data loss (the last checkpoint's, for a partial run)."""
        return self.losses[-1]

    @property
    def epoch_time(self) -> float:
        """Mean training seconds per epoch (checkpoint evaluations excluded)."""
        return self.times[-1] / self.epochs

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict in the documented field order.

        A partial run adds ``"interrupted": true`` or ``"diverged": message``; its
        ``loss`` is the last checkpoint's (null without one), ``epoch_time`` is null
        (no whole run to average over) and ``params`` null when they are not finite.
        """
        params = None
        if self.params:
            params = {
                "w": np.asarray(self.params["w"], dtype=float).tolist(),
                "b": np.asarray(self.params["b"], dtype=float).reshape(-1).tolist(),
            }
        doc = {
            "preset": self.preset,
            "backend": self.backend,
            "lr": float(self.lr),
            "batch_size": int(self.batch_size),
            "epochs": int(self.epochs),
            "examples": [int(e) for e in self.examples],
            "losses": [float(v) for v in self.losses],
            "times": [float(t) for t in self.times],
            "loss": float(self.loss) if self.losses else None,
            "epoch_time": float(self.epoch_time) if self.complete else None,
            "params": params,
        }
        if self.interrupted:
            doc["interrupted"] = True
        if self.diverged:
            doc["diverged"] = self.diverged
        return doc

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> History:
        """Inverse of :meth:`to_dict` (params come back as float32 arrays)."""
        params = d.get("params") or {}
        return cls(
            examples=list(d["examples"]),
            losses=list(d["losses"]),
            times=list(d["times"]),
            params={k: np.asarray(params[k], dtype=np.float32) for k in params},
            lr=d["lr"],
            batch_size=d["batch_size"],
            epochs=d["epochs"],
            backend=d["backend"],
            preset=d.get("preset"),
            interrupted=bool(d.get("interrupted", False)),
            diverged=d.get("diverged"),
        )


# --- the loop --------------------------------------------------------------------------


def check_args(
    X: Any, y: Any, *, lr: Any, batch_size: Any, epochs: Any, seed: Any, log_every: Any
) -> tuple[int, int]:
    """Validate ``fit``'s arguments; return (rows, features). ``ValueError`` says which."""
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
    if len(y.shape) == 2 and y.shape[1] != 1:
        raise ValueError(f"y must have shape ({n}, 1) or ({n},), got {tuple(y.shape)}")
    check_int("batch_size", batch_size, 1, n)
    check_int("epochs", epochs, 1)
    check_int("seed", seed, 0)
    check_int("log_every", log_every, 1)
    return n, d


def check_finite(be: Backend, x: Any, name: str) -> None:
    """``ValueError`` if ``x`` holds nan or inf: they would surface as a silent nan loss."""
    host = np.asarray(be.to_numpy(x))
    if not np.isfinite(host).all():
        bad = int(np.size(host) - np.count_nonzero(np.isfinite(host)))
        raise ValueError(f"{name} contains {bad} non-finite value(s) (nan or inf)")


def prepare(
    be: Backend, X: Any, y: Any, *, lr: float, batch_size: int, epochs: int, seed: int,
    log_every: int,
) -> tuple[int, Any, float]:
    """Validate a training call; return (features, y as a column, lr as a float)."""
    _, d = check_args(
        X, y, lr=lr, batch_size=batch_size, epochs=epochs, seed=seed, log_every=log_every
    )
    check_finite(be, X, "X")
    check_finite(be, y, "y")
    if len(y.shape) == 1:
        y = y.reshape(-1, 1)
    return d, y, float(lr)


def run_loop(
    be: Backend,
    X: Any,
    y: Any,
    *,
    step: Callable[[Any, Any, Any, Any, Any], Any],
    state: Any,
    evaluate: Callable[[Any, Any, Any], Any],
    export: Callable[[Any], dict[str, np.ndarray]],
    lr: float,
    batch_size: int,
    epochs: int,
    seed: int = 0,
    replacement: bool = False,
    log_every: int = 200,
    preset: str | None = None,
    callback: Callable[[Checkpoint], None] | None = None,
    warmup: bool = True,
    lr_arg: Any = None,
) -> History:
    """The training loop with the step passed in; arguments already validated.

    ``state = step(state, X, y, idx, lr)`` per minibatch, ``idx`` being the batch's host
    row indices (int64, in ``vecx.data_iter``'s order); ``evaluate(state, X, y)`` is the
    whole-data mean loss; ``export(state)`` returns ``{"w", "b"}`` as NumPy arrays.
    Checkpoints fall where the example count crosses a multiple of ``log_every``, and
    at the end. With ``warmup`` (only for a pure ``step``) the step runs once per batch
    shape before the clock starts, so JAX's compilation is not counted as training.
    ``lr_arg`` is what ``step`` receives as ``lr`` (default ``lr``): ``fit`` passes a
    device scalar, so a jitted step is not handed a fresh host float at every call.
    """
    n = int(X.shape[0])
    batches = data_iter(be, batch_size, X, y, seed=seed, replacement=replacement)
    history = History([], [], [], {}, lr, batch_size, epochs, be.spec, preset)
    step_lr = lr if lr_arg is None else lr_arg
    total = n * epochs

    def loss_of(s: Any) -> float:
        return float(np.asarray(be.to_numpy(evaluate(s, X, y))).reshape(()))

    # NumPy (and the NumPy-based autodiff) warn on overflow as a run diverges; the
    # divergence check below reports it properly, so the warnings would only be noise.
    # errstate changes NumPy's floating-point handling only, in this context only.
    try:
        with np.errstate(all="ignore"):
            if warmup:
                for m in sorted({batch_size, n % batch_size} - {0}):
                    be.sync(step(state, X, y, np.arange(m, dtype=np.int64), step_lr))
            initial = loss_of(state)
            limit = DIVERGENCE_FACTOR * initial if initial > 0 else math.inf
            # Sync on the latest state: it depends on every queued step, so waiting for
            # it waits for all of them, whatever the framework's queueing rules.
            timer = Timer(sync=lambda: be.sync(state))
            examples = step_no = 0
            next_log = min(log_every, total)  # the last step always reaches ``total``
            timer.start()
            for epoch in range(1, epochs + 1):
                # The hot loop: one step call and two integer updates per minibatch,
                # nothing that reads from the device (a read would stall an
                # asynchronous device).
                for idx in batches.indices():
                    state = step(state, X, y, idx, step_lr)
                    step_no += 1
                    examples += len(idx)
                    if examples < next_log:
                        continue
                    timer.stop()
                    loss = loss_of(state)
                    if not loss <= limit:  # nan, inf, or a millionfold growth
                        how = "is not finite" if not math.isfinite(loss) else f"grew to {loss:.3g}"
                        history.diverged = (
                            f"training diverged: the whole-data loss {how} (from {initial:.3g}) "
                            f"at step {step_no}, epoch {epoch}, {examples} examples, "
                            f"with lr={lr:g}; lower the learning rate"
                        )
                        raise TrainingDiverged(history.diverged, history)
                    elapsed = timer.sum()
                    history.examples.append(examples)
                    history.losses.append(loss)
                    history.times.append(elapsed)
                    history.steps.append(step_no)
                    next_log = min((examples // log_every + 1) * log_every, total)
                    if callback is not None:
                        callback(Checkpoint(step_no, epoch, examples, loss, elapsed, total))
                    if examples < total:
                        timer.start()
    except (KeyboardInterrupt, TrainingDiverged) as exc:
        # never lose what was computed: the exception carries the run so far
        history.interrupted = isinstance(exc, KeyboardInterrupt)
        history.params = _finite_export(export, state)
        exc.history = history  # type: ignore[union-attr]
        raise
    history.params = export(state)
    return history


def _finite_export(export: Callable[[Any], dict[str, np.ndarray]], state: Any) -> dict:
    """``export(state)`` if it works and is finite, else ``{}`` (a partial run's params)."""
    try:
        params = export(state)
        finite = all(np.isfinite(np.asarray(v, dtype=float)).all() for v in params.values())
    except Exception:
        return {}
    return params if finite else {}


def fit(
    be: Backend,
    X: Any,
    y: Any,
    *,
    lr: float,
    batch_size: int,
    epochs: int,
    seed: int = 0,
    replacement: bool = False,
    log_every: int = 200,
    preset: str | None = None,
    callback: Callable[[Checkpoint], None] | None = None,
) -> History:
    """Fit ``y ~ X @ w + b`` by minibatch SGD on the mean squared loss, d2l style.

    ``X`` (n, d) and ``y`` (n, 1) are arrays of ``be``. ``w`` starts at ``N(0, 0.01)``
    and ``b`` at 0, drawn on the host from ``seed``, which also fixes the minibatch order
    (``vecx.data_iter`` with the same seed). Every ``log_every`` examples and at the end,
    the whole-data loss is evaluated outside the clock and passed to ``callback``.

    Raises ``ValueError`` for bad arguments (which one and why) and
    ``vecx.TrainingDiverged`` when a checkpoint loss is non-finite or has grown
    ``DIVERGENCE_FACTOR`` times over the initial loss. That exception, and a
    ``KeyboardInterrupt`` while training, carry the partial :class:`History` (the
    checkpoints before it) as ``exc.history``.
    """
    d, y, lr = prepare(
        be, X, y, lr=lr, batch_size=batch_size, epochs=epochs, seed=seed, log_every=log_every
    )
    fns = compiled(be)
    # Compile (JAX) before the clock starts, once per problem shape and backend.
    shapes = (str(X.dtype), tuple(X.shape), batch_size)
    init = init_params(be, d, seed)
    history = run_loop(
        be, X, y,
        step=fns.step,
        state=(init["w"], init["b"]),
        evaluate=fns.evaluate,
        export=lambda s: {"w": _host(be, s[0]), "b": _host(be, s[1])},
        lr=lr, batch_size=batch_size, epochs=epochs, seed=seed, replacement=replacement,
        log_every=log_every, preset=preset, callback=callback, lr_arg=fns.lr(be, lr),
        warmup=fns.jitted and shapes not in fns.warmed,
    )  # fmt: skip
    fns.warmed.add(shapes)
    return history


def _host(be: Backend, x: Any) -> np.ndarray:
    return np.array(be.to_numpy(x))  # a copy in the run's own dtype (float32 for bfloat16)


# --- presets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    """One of d2l's experiments: its data, hyperparameters and the loss the book reports."""

    name: str
    data: str  # "synthetic" or "airfoil"
    lr: float
    batch_size: int
    epochs: int
    d2l_loss: float
    description: str

    @property
    def examples(self) -> int:
        """Rows of the preset's data (the largest batch size it allows)."""
        return 1000 if self.data == "synthetic" else 1500

    def load(self, be: Backend, seed: int = 0) -> tuple[Any, Any]:
        """The preset's data on ``be``."""
        if self.data == "synthetic":
            return synthetic_data(be, [2.0, -3.4], 4.2, self.examples, seed=seed)
        return load_airfoil(be, self.examples)


#: d2l's experiments by name (read-only). ``d2l_loss`` is the book's final loss.
PRESETS: Mapping[str, Preset] = MappingProxyType({
    p.name: p
    for p in (
        Preset("linreg", "synthetic", 0.03, 10, 3, 5e-5,
               "linear regression from scratch: w=[2,-3.4], b=4.2, n=1000"),
        Preset("airfoil-gd", "airfoil", 1.0, 1500, 10, 0.247,
               "airfoil, full-batch gradient descent"),
        Preset("airfoil-sgd", "airfoil", 0.005, 1, 2, 0.245,
               "airfoil, stochastic gradient descent (batch 1)"),
        Preset("airfoil-mb100", "airfoil", 0.4, 100, 2, 0.246,
               "airfoil, minibatch SGD, batch 100"),
        Preset("airfoil-mb10", "airfoil", 0.05, 10, 2, 0.246,
               "airfoil, minibatch SGD, batch 10"),
    )
})  # fmt: skip

_OVERRIDES = ("lr", "batch_size", "epochs", "seed", "replacement", "log_every", "callback")


def train(be: Backend, preset: str, **overrides: Any) -> History:
    """Run a d2l preset (see ``PRESETS``) on ``be``; keyword overrides as in :func:`fit`.

    ``seed`` (default 0) also fixes the synthetic data of ``linreg``.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    unknown = sorted(set(overrides) - set(_OVERRIDES))
    if unknown:
        raise ValueError(
            f"unknown override(s) {', '.join(unknown)} for train(); "
            f"allowed: {', '.join(_OVERRIDES)}"
        )
    p = PRESETS[preset]
    kwargs: dict[str, Any] = {"lr": p.lr, "batch_size": p.batch_size, "epochs": p.epochs}
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    X, y = p.load(be, seed=kwargs.get("seed", 0))
    return fit(be, X, y, preset=preset, **kwargs)
