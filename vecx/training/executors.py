"""Executors: how the steps of a segment run, the seam where compiled, mixed-precision
and data-parallel execution plug in without touching the loop.

The loop (``vecx.training.loop``) calls ``program.segment(state, block)`` once between two
checkpoints, with the segment's host index block (``vecx.training.schedule``); an
executor builds that program from the training problem (`Problem`: the backend, the loss,
the optimizer, the data, the initial parameters). Everything else, the clock, the
checkpoints, divergence and the history, belongs to the loop and is the same for every
executor.

* ``steps`` (the default), in one of three modes (``vecx.protocol.MODES``); the step
  gathers the batch (``be.index``), takes ``be.value_and_grad`` of the loss and applies
  the optimizer, the same function in every mode:

  - ``eager``: one uncompiled call per minibatch (on JAX, op-by-op dispatch);
  - ``jit``: one compiled call per minibatch, ``be.compile(step, mode="jit")``:
    ``jax.jit``, ``torch.compile(fullgraph=True)``, the replay compiler on NumPy/CuPy;
  - ``fused``: one compiled call per run of equal batches in a segment,
    ``be.compile(step, mode="fused")`` (``jax.jit`` of ``lax.scan``; on torch:cuda a
    CUDA graph of the run's steps, replayed).

  Without a mode, ``jit`` where ``be.jit`` compiles (JAX), else ``eager``. Compilation
  happens in the warm-up, before the clock, for every batch size and run shape the run
  will use (`Problem.runs`), and is timed (``compile_s``); a compilation inside the
  timed region raises `vecx.Recompiled`. A mode the backend cannot run raises
  `vecx.ModeUnsupported` with the reason before any step.
* ``native``: the framework-native reference trainers of the built-in tasks
  (``vecx.native``): PyTorch ``nn`` + ``optim``, a ``jax.jit`` step from ``jax.grad``.

An executor is any object with ``name`` and ``build(problem) -> Program``; register more
in `EXECUTORS` (an import path, so that none is imported before it is used).
"""

from __future__ import annotations

import importlib
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from vecx.protocol import MODES, Backend, ModeUnsupported, TracedRandomness, capabilities
from vecx.pytree import flatten, structure
from vecx.training.optimizers import Optimizer
from vecx.training.precision import Policy, cast_loss, scaled_update
from vecx.training.schedule import IndexBlock

__all__ = ["EXECUTORS", "Executor", "Problem", "Program", "StepExecutor", "check_mode",
           "default_mode", "get_executor"]  # fmt: skip

LossFn = Callable[[Any, Any, Any], Any]


@dataclass(frozen=True)
class Problem:
    """What to train: the same for every executor. ``params`` are on the backend."""

    be: Backend
    X: Any
    y: Any
    loss: LossFn  # loss(params, X, y): the mean loss of a batch
    metrics: Mapping[str, LossFn]  # metric(params, X, y), evaluated at checkpoints
    params: Any  # the initial parameters (a pytree of arrays of ``be``)
    optimizer: Optimizer
    lr: float
    batch_size: int
    task: Any = None  # the built-in task (vecx.training.tasks.Task), None for a user's loss
    #: The ``(steps, batch)`` shapes of the run's index arrays (`schedule.run_shapes`):
    #: what a warm-up compiles for. Empty: one run per batch size of an epoch.
    runs: frozenset[tuple[int, int]] = frozenset()
    #: The precision policy (`vecx.training.precision`); None: the backend's dtype.
    policy: Policy | None = None

    def batch_sizes(self) -> list[int]:
        """The distinct minibatch sizes, the full one first (errors then name it)."""
        n = int(self.X.shape[0])
        sizes = {b for _, b in self.runs} or {self.batch_size, n % self.batch_size} - {0}
        return sorted(sizes, reverse=True)


class Program(Protocol):
    """One run's compiled pieces, built by an executor.

    ``segment`` runs a block's steps; interrupted (Ctrl-C), it sets ``exc.state`` on the
    ``KeyboardInterrupt`` to the state reached, so the partial history ends where the run
    stopped rather than at the last checkpoint. ``warmup`` compiles before the clock.
    """

    state: Any  # the initial state; ``segment`` returns the next one

    def segment(self, state: Any, block: IndexBlock) -> Any: ...
    def evaluate(self, state: Any) -> tuple[Any, dict[str, Any]]: ...
    def export(self, state: Any) -> Any: ...
    def warmup(self, state: Any) -> None: ...


class Executor(Protocol):
    name: str

    def build(self, problem: Problem) -> Program: ...


def check_mode(be: Backend, mode: str | None) -> str:
    """The mode ``be`` will run (``mode``, or `default_mode`); `vecx.ModeUnsupported`
    with the reason if it cannot, asked of the backend without compiling anything."""
    if mode is None:
        return default_mode(be)
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    compile_ = getattr(be, "compile", None)
    if mode != "eager" and compile_ is None:
        raise ModeUnsupported(f"{be.spec} has no compiler (its backend has no compile method)")
    if compile_ is not None:
        compile_(lambda state, *args: state, mode=mode)  # raises for an unsupported mode
    return mode


def default_mode(be: Backend) -> str:
    """The mode without one asked for: ``jit`` where ``be.jit`` compiles, else ``eager``."""
    return "jit" if capabilities(be).compiles else "eager"


# --- the default: vecx's step, in a mode ------------------------------------------------


@dataclass
class Compiled:
    """A backend's step (in one mode) and evaluation for one loss, optimizer and state
    layout, and the problem shapes they have already run on."""

    step: Callable[..., Any]  # what the hot loop calls
    evaluate: Callable[..., Any]
    mode: str
    rng: bool = False  # compiled with the random key passed through (the loss draws)
    compiled: Any = None  # the backend's CompiledStep (compiles, seal, verify); None: eager
    warm_step: Callable[..., Any] | None = None  # the step without using up random numbers
    rows: Callable[[Any], Any] | None = None  # a host run as the hot loop iterates it
    warmed: set[tuple[Any, ...]] = field(default_factory=set)
    lrs: dict[float, Any] = field(default_factory=dict)

    def lr(self, be: Backend, lr: float) -> Any:
        """``lr`` as the step takes it: a Python float in eager mode where nothing compiles
        (the cheapest scalar for NumPy and PyTorch), else a device scalar, so that the
        compiled step does not specialise on its value; kept for the next run (a
        transfer costs ~70 us on JAX)."""
        if self.mode == "eager" and not capabilities(be).compiles:
            return float(lr)
        try:
            return self.lrs[lr]
        except KeyError:
            if len(self.lrs) >= 32:
                self.lrs.clear()
            value = self.lrs[lr] = be.asarray(lr)
            return value


_cache_lock = threading.Lock()
_cache: weakref.WeakKeyDictionary[Any, OrderedDict[Any, Compiled]] = weakref.WeakKeyDictionary()
#: Compiled steps kept per backend, the least recently used dropped first (a loss defined
#: anew for every fit, a lambda, would otherwise keep its arrays alive for good).
CACHE_SIZE = 32


def compiled(be: Backend, key: Any, build: Callable[[], Compiled], keep: bool) -> Compiled:
    """``build()`` once per backend instance (weakly) and ``key``, thread-safely, where
    ``keep`` (something compiles: JAX's jit, any compiled mode).

    Without the cache every ``fit`` would hand the compiler fresh functions and pay
    tracing and compilation again (~0.1 s on JAX, seconds for ``torch.compile``, longer
    than a whole ``linreg`` run). Where nothing compiles, building is a few closures:
    nothing is kept.
    """
    if not keep:
        return build()
    with _cache_lock:
        try:
            per_backend = _cache.setdefault(be, OrderedDict())
        except TypeError:  # a third-party backend that cannot be weakly referenced
            return build()
        found = per_backend.get(key)
        if found is None:
            found = per_backend[key] = build()
            while len(per_backend) > CACHE_SIZE:
                per_backend.popitem(last=False)
        else:
            per_backend.move_to_end(key)
        return found


def replace(be: Backend, key: Any, fns: Compiled) -> Compiled:
    """Put ``fns`` in the cache under ``key`` (a loss found to draw: its keyed version)."""
    with _cache_lock:
        try:
            _cache.setdefault(be, OrderedDict())[key] = fns
        except TypeError:
            pass
    return fns


def one_value(out: Any, what: str) -> Any:
    """``out`` if it is one value (an array or a number), else a ``TypeError``: a loss or
    a metric returns the mean over its batch, not a tuple (checked while tracing on JAX)."""
    if isinstance(out, (tuple, list, dict)):
        raise TypeError(
            f"{what} must return one scalar (the mean over the batch), got a "
            f"{type(out).__name__}; fit has no aux outputs: pass other values as metrics="
        )
    if out is None or isinstance(out, (str, bytes)):
        raise TypeError(f"{what} must return one scalar (the mean over the batch), got {out!r}")
    return out


def make_step(
    be: Backend, loss: LossFn, metrics: Mapping[str, LossFn], optimizer: Optimizer,
    n_params: int, rebuild_params: Callable[[list[Any]], Any],
    rebuild_state: Callable[[list[Any]], Any], mode: str, rng: bool = False,
    policy: Policy | None = None, distribute: Any = None,
) -> Compiled:  # fmt: skip
    """The ``step(state, idx, X, y, lr) -> state`` of ``mode`` and ``evaluate(state, X, y)``.

    The state is a flat tuple: the parameters' leaves, then the optimizer state's (and,
    with loss scaling, the scaler's: scale, finite steps in a row, skipped steps). Flat,
    because it crosses the jit boundary at every step (a tuple is ~0.5 us cheaper for
    ``jax.jit`` than a dict); the step returns nothing else (each extra output costs ~3 us
    on JAX), and ``lr`` is an argument, so one compiled step serves every learning rate.
    The gather is inside the step: on JAX, two eager gathers would cost more than the
    whole compiled step.

    ``distribute`` (`vecx.protocol.Distributed`) makes it data-parallel: its ``batch``
    gives this worker's part of the minibatch (and the part's share of its rows), its
    ``reduce`` sums the gradients over the workers before the update.
    """
    names = tuple(metrics)
    metric_fns = tuple(metrics[n] for n in names)

    def flat_loss(leaves: tuple, X: Any, y: Any) -> Any:
        return one_value(loss(rebuild_params(leaves), X, y), "the loss")

    index = be.index
    update = optimizer.update
    mixed = policy is not None and policy.mixed
    scaling = policy.loss_scale if mixed else None
    if mixed:  # the cast points of the policy (vecx.training.precision)
        grad = be.grad(cast_loss(be, policy, lambda p, X, y: one_value(loss(p, X, y),
                                                                       "the loss"),
                                 rebuild_params))  # fmt: skip
    else:
        grad = be.grad(flat_loss)  # not value_and_grad: a compiler may drop the loss's value

    if distribute is None:

        def gradient(params: tuple, idx: Any, X: Any, y: Any, *scale: Any) -> tuple:
            return grad(params, index(X, idx), index(y, idx), *scale)

    else:
        split, reduce = distribute.batch, distribute.reduce

        def gradient(params: tuple, idx: Any, X: Any, y: Any, *scale: Any) -> tuple:
            X_part, y_part, share = split(index, X, y, idx)
            grads = grad(params, X_part, y_part, *scale)  # the mean over this part
            return reduce(grads if share is None else tuple([g * share for g in grads]))

    def step(state: tuple, idx: Any, X: Any, y: Any, lr: Any) -> tuple:
        params = state[:n_params]
        grads = gradient(params, idx, X, y)
        params, opt = update(params, grads, rebuild_state(state[n_params:]), lr)
        return (*params, *flatten(opt)[0]) if n_params != len(state) else tuple(params)

    def scaled_step(state: tuple, idx: Any, X: Any, y: Any, lr: Any) -> tuple:
        params, scaler = state[:n_params], state[-3:]
        before = state[:-3]
        grads = gradient(params, idx, X, y, scaler[0])
        grads = tuple([g / scaler[0] for g in grads])
        new_params, opt = update(params, grads, rebuild_state(before[n_params:]), lr)
        after = (*new_params, *flatten(opt)[0])
        kept, scaler = scaled_update(be, scaling, grads, before, after, scaler)
        return (*kept, *scaler)

    if scaling is not None:
        step = scaled_step  # noqa: F811 - the policy's step

    def evaluate(state: tuple, X: Any, y: Any) -> tuple:
        params = rebuild_params(state[:n_params])  # in the parameters' dtype
        return (one_value(loss(params, X, y), "the loss"),
                *(one_value(m(params, X, y), f"metric {n!r}")
                  for n, m in zip(names, metric_fns, strict=True)))  # fmt: skip

    evaluate_fn = be.jit(evaluate, rng=rng)
    compile_ = getattr(be, "compile", None)
    if mode == "eager":  # the step as it is; the backend may wrap it (its device, warm-up)
        eager = compile_(step, mode="eager") if compile_ is not None else None
        if eager is None:
            return Compiled(step, evaluate_fn, mode, rng, warm_step=step)
        return Compiled(eager.fn, evaluate_fn, mode, rng, warm_step=eager.warm)
    if compile_ is None:
        raise ModeUnsupported(f"{be.spec} has no compiler (its backend has no compile method)")
    done = compile_(step, mode=mode, rng=rng)
    return Compiled(done.fn, evaluate_fn, mode, rng, done, warm_step=done.warm,
                    rows=getattr(done, "rows", None))  # fmt: skip


@dataclass
class StepProgram:
    """The default executor's program: the step in its mode (see the module)."""

    problem: Problem
    fns: Compiled
    state: tuple
    n_params: int
    rebuild: Callable[[list[Any]], Any]
    lr: Any
    shapes: tuple[Any, ...]
    rebuild_with_rng: Callable[[], Compiled]
    #: Seconds the warm-up spent compiling in this run (0.0 when an earlier run had;
    #: None where nothing compiles).
    compile_s: float | None = None
    scaled: bool = False  # the state ends with the loss scaler's three scalars
    #: A loss found to draw random numbers is compiled again with the key passed through
    #: (False: `vecx.TracedRandomness` is raised instead: a data-parallel step).
    rng_allowed: bool = True

    def precision(self, state: tuple) -> dict[str, Any]:
        """What the policy did: the final loss scale and the skipped steps (loss scaling)."""
        if not self.scaled:
            return {}
        be = self.problem.be
        scale, _, skipped = (float(np.asarray(be.to_numpy(v))) for v in state[-3:])
        return {"loss_scale": scale, "skipped_steps": int(round(skipped))}

    def segment(self, state: tuple, block: IndexBlock) -> tuple:
        step, X, y, lr = self.fns.step, self.problem.X, self.problem.y, self.lr
        try:
            if self.fns.mode == "fused":
                for run in block:  # one call per run of equal batches
                    state = step(state, run, X, y, lr)
            else:
                rows = self.fns.rows
                for run in block:  # the hot loop: one call per minibatch, no device read
                    for idx in run if rows is None else rows(run):
                        state = step(state, idx, X, y, lr)
        except KeyboardInterrupt as stop:  # the loop keeps where the run stopped
            stop.state = state  # type: ignore[attr-defined]
            raise
        if self.fns.compiled is not None:
            self.fns.compiled.verify()  # no compilation inside the timed region
        return state

    def evaluate(self, state: tuple) -> tuple[Any, dict[str, Any]]:
        loss, *values = self.fns.evaluate(state, self.problem.X, self.problem.y)
        return loss, dict(zip(self.problem.metrics, values, strict=True))

    def export(self, state: tuple) -> Any:
        return self.rebuild([np.array(self.problem.be.to_numpy(leaf))
                             for leaf in state[: self.n_params]])  # fmt: skip

    def compiles(self) -> int | None:
        """Compilations of the step so far (None in eager mode)."""
        done = self.fns.compiled
        return None if done is None else done.compiles()

    def warmup(self, state: tuple) -> None:
        """Compile before the clock starts, once per batch size (``fused``: per run
        shape) and problem shape, and time it; the step is pure, so running it and
        dropping the result changes nothing. A loss that draws random numbers is found
        here and compiled again with the key passed through."""
        be = self.problem.be
        compiling = self.fns.mode != "eager" or capabilities(be).compiles
        if not compiling:
            return
        if self.shapes in self.fns.warmed:
            self.compile_s = 0.0
            return
        start = time.perf_counter()
        if self.fns.compiled is not None:
            self.fns.compiled.unseal()
        try:
            self._compile(state)
        except TracedRandomness:
            if self.fns.rng or not self.rng_allowed:
                raise
            self.fns = self.rebuild_with_rng()
            self.lr = self.fns.lr(be, self.problem.lr)
            self._compile(state)
        self.fns.warmed.add(self.shapes)
        self.compile_s = time.perf_counter() - start
        if self.fns.compiled is not None:
            self.fns.compiled.seal()

    def _compile(self, state: tuple) -> None:
        """Run the step per batch size (or run shape) and the evaluation once; a function
        compiled with the key passed through runs by its ``warm``, which leaves the
        backend's random numbers as they were (so ``be.seed(s)`` then ``fit`` draws the
        same either way)."""
        be, X, y = self.problem.be, self.problem.X, self.problem.y
        step = self.fns.warm_step or self.fns.step
        evaluate = getattr(self.fns.evaluate, "warm", self.fns.evaluate)
        if self.fns.mode == "fused":
            n = int(X.shape[0])
            runs = self.problem.runs or {(1, b) for b in self.problem.batch_sizes()}
            for steps, size in sorted(runs, key=lambda r: (-r[1], -r[0])):
                block = np.arange(steps * size, dtype=np.int64).reshape(steps, size) % n
                be.sync(step(state, block, X, y, self.lr))
        else:
            for size in self.problem.batch_sizes():
                idx = np.arange(size, dtype=np.int64)
                be.sync(step(state, idx, X, y, self.lr))
        be.sync(evaluate(state, X, y))


class StepExecutor:
    """vecx's step in one mode (``eager``, ``jit``, ``fused``; None: `default_mode`);
    with ``distribute`` (`vecx.protocol.Distributed`), data-parallel over its workers."""

    name = "steps"
    takes_policy = True  # a precision policy (fit's compute_dtype) applies to its step
    mode: str | None = None
    distribute: Any = None

    def __init__(self, mode: str | None = None, distribute: Any = None) -> None:
        if mode is not None and mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        self.mode = mode
        self.distribute = distribute

    def build(self, problem: Problem) -> StepProgram:
        be = problem.be
        mode = self.mode or default_mode(be)
        leaves, rebuild = flatten(problem.params)
        opt_state = problem.optimizer.init(be, tuple(leaves))
        opt_leaves, rebuild_state = flatten(opt_state)
        policy = problem.policy
        scaler: tuple = ()
        if policy is not None and policy.loss_scale is not None:
            scaler = (be.asarray(policy.loss_scale.init), be.asarray(0.0), be.asarray(0.0))
        distribute = self.distribute
        key = (mode, problem.loss, tuple(problem.metrics.items()), problem.optimizer,
               structure(problem.params), structure(opt_state), policy, distribute)  # fmt: skip
        keep = mode != "eager" or capabilities(be).compiles

        def build(rng: bool) -> Compiled:
            return make_step(be, problem.loss, problem.metrics, problem.optimizer,
                             len(leaves), rebuild, rebuild_state, mode, rng, policy,
                             distribute)  # fmt: skip

        def with_rng() -> Compiled:
            return replace(be, key, build(True))

        fns = compiled(be, key, lambda: build(False), keep)
        X = problem.X
        shapes = (str(X.dtype), tuple(X.shape), tuple(problem.y.shape), problem.batch_size,
                  problem.runs if mode == "fused" else None)  # fmt: skip
        state = (*leaves, *opt_leaves, *scaler)
        lr = fns.lr(be, problem.lr)
        if distribute is not None:  # where the distributed step takes them (a mesh)
            state = tuple([distribute.place(v) for v in state])
            lr = lr if isinstance(lr, float) else distribute.place(lr)
        return StepProgram(problem, fns, state, len(leaves), rebuild, lr, shapes, with_rng,
                           scaled=bool(scaler), rng_allowed=distribute is None)  # fmt: skip


#: Executors by name: the object itself, or ``"module:attribute"`` imported when used.
EXECUTORS: dict[str, Any] = {
    "steps": StepExecutor(),
    "native": "vecx.native:NativeExecutor",
}


def get_executor(spec: str | Executor | None, mode: str | None = None) -> Executor:
    """An executor from its name (``"steps"``, ``"native"``) or itself (None: ``steps``);
    ``mode`` is the step executor's (`StepExecutor`)."""
    if mode is not None:
        if spec not in (None, "steps"):
            raise ValueError(
                f"mode={mode!r} is a mode of vecx's step executor; executor {spec!r} runs "
                "its own way (leave mode out, or the executor)"
            )
        return StepExecutor(mode)
    if spec is None:
        return EXECUTORS["steps"]
    if not isinstance(spec, str):
        if not callable(getattr(spec, "build", None)):
            raise TypeError(f"an executor needs a build(problem) method, got {spec!r}")
        return spec
    found = EXECUTORS.get(spec)
    if found is None:
        raise ValueError(f"unknown executor {spec!r}; choose one of {', '.join(EXECUTORS)}")
    if isinstance(found, str):
        module, _, attr = found.partition(":")
        found = EXECUTORS[spec] = getattr(importlib.import_module(module), attr)()
    return found
