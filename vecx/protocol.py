"""The `Backend` protocol: the few primitives every vecx algorithm is written against.

Design rules (a newcomer should know these before writing a backend):

* A backend hands out and takes the framework's own arrays; vecx has no tensor wrapper.
  Arithmetic in user code uses the operators all frameworks share (``+ - * / ** @``,
  ``abs``, comparisons, ``x[i]``, ``.shape .reshape() .T``) and the backend's math methods
  (``be.log``, ``be.sum(x, axis=1)``, ...), which have the same semantics everywhere and
  are differentiable everywhere, NumPy and CuPy included.
* A backend imports its framework in its constructor, never at module import, so that
  ``import vecx`` loads no framework.
* Randomness comes from a generator owned by the backend instance and seeded at
  construction: same seed, backend and device give the same numbers.
* Nothing is downcast silently: an unsupported dtype is an error that names the fix.
* What a backend can do is declared in ``capabilities`` (does ``jit`` compile, are arrays
  immutable, which dtypes), never guessed from its behaviour.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

#: Float dtypes by name. Backends may support a subset (NumPy has no bfloat16).
DTYPES: tuple[str, ...] = ("float32", "float64", "float16", "bfloat16")
DEFAULT_DTYPE = "float32"
#: Non-float dtype names that ``astype`` also accepts (masks and labels).
OTHER_DTYPES: tuple[str, ...] = ("int32", "int64", "bool")
#: How the steps of a training run execute (``vecx.training.executors``): one uncompiled
#: call per step, one compiled call per step, one compiled call per segment of steps.
MODES: tuple[str, ...] = ("eager", "jit", "fused")
#: Float32 matmul precision: "float32" is full IEEE float32 (TF32 off); "tf32" opts in.
PRECISIONS: tuple[str, ...] = ("float32", "tf32")

Array = Any  # the framework's native array type
Shape = int | Sequence[int]
Axis = int | Sequence[int] | None
Operand = Any  # an array of the backend or a Python scalar


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, declared by the backend (``be.capabilities``).

    Suites and the trainer read these instead of probing behaviour (``be.jit(f) is f``,
    ``hasattr(x, "at")``). A plugin that declares nothing gets these defaults.
    """

    #: ``be.jit`` compiles (JAX); otherwise it returns the function itself.
    compiles: bool = False
    #: Arrays cannot be written in place (JAX: writes copy, ``x.at[i].set(v)``).
    immutable_arrays: bool = False
    #: Device work is queued and finishes later: time only through ``be.sync``.
    asynchronous: bool = False
    #: ``grad`` of a function that calls ``grad`` works (torch, JAX; not vecx's tape).
    higher_order_grad: bool = False
    #: Float dtype names this backend can compute in, as configured now.
    dtypes: frozenset[str] = frozenset(("float32", "float64", "float16", "bfloat16"))


DEFAULT_CAPABILITIES = Capabilities()


def capabilities(be: Any) -> Capabilities:
    """``be.capabilities``, or the defaults for a plugin that declares none."""
    caps = getattr(be, "capabilities", None)
    return caps if isinstance(caps, Capabilities) else DEFAULT_CAPABILITIES


class VecxError(Exception):
    """Base class of the errors vecx raises on purpose."""


class BackendUnavailable(VecxError, RuntimeError):
    """A known backend that cannot run here: framework not installed, or no device."""

    def __init__(self, spec: str, reason: str, hint: str = "") -> None:
        self.spec, self.reason, self.hint = spec, reason, hint
        message = f"backend {spec!r} is unavailable: {reason}"
        super().__init__(f"{message} ({hint})" if hint else message)


class UnsupportedDtype(VecxError, ValueError):
    """A dtype the framework (or its current configuration) cannot provide without downcasting."""


class TracedRandomness(VecxError, TypeError):
    """``be.normal``/``be.permutation`` inside a compiled function that does not pass the
    backend's random key through: each call would draw the same numbers. Compile it with
    ``be.jit(f, rng=True)``."""


class ModeUnsupported(VecxError, ValueError):
    """A backend cannot run an execution mode (``eager``, ``jit``, ``fused``); the message
    says why, and results record it as unsupported rather than run another mode."""


class Recompiled(VecxError, RuntimeError):
    """A compiled step compiled again inside a timed region (a new shape, dtype or
    constant): its compile time would be counted as training time."""


class TrainingDiverged(VecxError, ArithmeticError):
    """The training loss became non-finite; raised instead of reporting ``nan``.

    ``history`` is the run up to the last good checkpoint (a ``vecx.train.History``
    with ``diverged`` set), or None, so a caller can still save what was computed.
    """

    def __init__(self, message: str, history: Any = None) -> None:
        super().__init__(message)
        self.history = history


class WorkerFailed(VecxError, RuntimeError):
    """A worker of a data-parallel run failed or vanished: the message names its rank
    and its error. ``history`` is the run up to the last checkpoint, as for
    `TrainingDiverged`, so the caller keeps what was computed."""

    def __init__(self, message: str, history: Any = None) -> None:
        super().__init__(message)
        self.history = history


def thread_pools(be: Any) -> list[dict[str, Any]]:
    """The CPU thread pools ``be`` computes with (``be.thread_pools()``: one dict per pool
    with ``pool``, ``library`` and ``threads``), or ``[]`` for a backend that says none.

    Each backend reports its own: a torch worker also has NumPy's OpenBLAS loaded, but
    torch computes with its ATen/OpenMP pool and MKL, and JAX with XLA's."""
    method = getattr(be, "thread_pools", None)
    try:
        pools = method() if callable(method) else []
    except Exception:  # noqa: BLE001 - a report, never a reason to fail a run
        return []
    return [dict(p) for p in pools if isinstance(p, dict)] if isinstance(pools, list) else []


def intra_op_threads(be: Any) -> int | None:
    """The threads of ``be``'s intra-op pool (`thread_pools`), None if it reports none."""
    return next((p.get("threads") for p in thread_pools(be) if p.get("pool") == "intra-op"),
                None)  # fmt: skip


def set_threads(be: Any, threads: int) -> bool:
    """Set the threads ``be`` computes with now (``be.set_threads``); False where the
    framework fixes them at start (XLA) or the backend has no such method."""
    method = getattr(be, "set_threads", None)
    if not callable(method):
        return False
    try:
        return bool(method(int(threads)))
    except Exception:  # noqa: BLE001
        return False


def check_dtype(dtype: str, *, others: bool = False) -> str:
    """Return ``dtype`` if it is a known float dtype name (or, with ``others``, one of
    `OTHER_DTYPES`), else raise ``ValueError``."""
    known = DTYPES + OTHER_DTYPES if others else DTYPES
    if not isinstance(dtype, str):
        name = getattr(dtype, "name", None)  # a NumPy dtype: its name is the same
        if not (isinstance(name, str) and name in known):
            raise TypeError(f"dtype must be a dtype name such as 'float32', got {dtype!r} "
                            f"({type(dtype).__name__})")  # fmt: skip
        dtype = name
    if dtype not in known:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(known)}")
    return dtype


class Distributed(Protocol):
    """A backend's engine for a data-parallel run (``fit(workers=N)``), one per run.

    Optional, offered by a backend as ``be.process_group(workers, rank=, address=)``
    (one process per worker: torch.distributed) or ``be.device_mesh(workers)`` (one
    process, several devices: a JAX mesh). The step asks ``batch`` for this worker's part
    of the minibatch and the share of its rows (None: the part is the whole batch, split
    by a compiler) and sums the gradients over the workers with ``reduce``; ``place``
    puts the data and the state where the step takes them. An engine whose ranks have no
    parent to report to may also offer ``announce(message)`` (a rank says why it stops)
    and ``failure(wait) -> str | None`` (rank 0 reads it when a collective fails).
    """

    workers: int
    rank: int
    engine: str  # "gloo", "nccl", "xla-mesh"
    processes: bool  # one process per worker (rank 0 runs the loop)

    def place(self, x: Any) -> Any: ...
    def batch(self, index: Callable[[Any, Any], Any], X: Any, y: Any, idx: Any,
              ) -> tuple[Any, Any, float | None]: ...  # fmt: skip
    def reduce(self, grads: tuple) -> tuple: ...
    def close(self) -> None: ...


@runtime_checkable
class Backend(Protocol):
    """What vecx needs from an array framework on one device.

    Third parties implement this (structurally; no inheritance needed) and register a
    factory under the ``vecx.backends`` entry-point group; see ``vecx.registry``. A
    backend should also declare ``capabilities`` (a `Capabilities`); vecx reads it with
    :func:`capabilities`, which gives the defaults to a backend that does not. Two more
    methods are optional, read through :func:`thread_pools` and :func:`set_threads`.
    """

    name: str  # "numpy", "torch", ...
    device: str  # canonical: "cpu" or "cuda:N"
    dtype: str  # default float dtype name

    @property
    def spec(self) -> str: ...

    # creation and transfer
    def ones(self, shape: Shape, dtype: str | None = None) -> Array: ...
    def zeros(self, shape: Shape, dtype: str | None = None) -> Array: ...
    def asarray(self, obj: Any, dtype: str | None = None) -> Array: ...
    def to_numpy(self, x: Array) -> Any: ...

    # randomness from the backend's own seeded generator
    def seed(self, seed: int) -> None: ...
    def normal(self, mean: float, std: float, shape: Shape, dtype: str | None = None) -> Array: ...
    def permutation(self, n: int) -> Array: ...

    # compute
    def matmul(self, a: Array, b: Array) -> Array: ...
    def index(self, x: Array, idx: Any) -> Array: ...

    # elementwise math (Python scalars are accepted as operands; ties of maximum/minimum
    # split the gradient evenly, clip's gradient is 1 on [lo, hi] inclusive)
    def exp(self, x: Operand) -> Array: ...
    def log(self, x: Operand) -> Array: ...
    def tanh(self, x: Operand) -> Array: ...
    def sigmoid(self, x: Operand) -> Array: ...
    def sqrt(self, x: Operand) -> Array: ...
    def abs(self, x: Operand) -> Array: ...
    def maximum(self, a: Operand, b: Operand) -> Array: ...
    def minimum(self, a: Operand, b: Operand) -> Array: ...
    def where(self, cond: Any, a: Operand, b: Operand) -> Array: ...
    def clip(self, x: Operand, lo: Operand = None, hi: Operand = None) -> Array: ...

    # reductions: axis an int, a tuple or None (all); axis=() reduces nothing;
    # max/min return values only and split the gradient evenly between ties
    def sum(self, x: Operand, axis: Axis = None, keepdims: bool = False) -> Array: ...
    def mean(self, x: Operand, axis: Axis = None, keepdims: bool = False) -> Array: ...
    def max(self, x: Operand, axis: Axis = None, keepdims: bool = False) -> Array: ...
    def min(self, x: Operand, axis: Axis = None, keepdims: bool = False) -> Array: ...
    def logsumexp(self, x: Operand, axis: Axis = None, keepdims: bool = False) -> Array: ...

    # dtypes
    def astype(self, x: Array, dtype: str) -> Array: ...
    def isfinite(self, x: Operand) -> Array: ...

    # transformations (JAX's conventions: argnums, has_aux returns ((value, aux), grads))
    def grad(
        self, f: Callable[..., Any], argnums: int | tuple[int, ...] = 0, has_aux: bool = False
    ) -> Callable: ...
    def value_and_grad(
        self, f: Callable[..., Any], argnums: int | tuple[int, ...] = 0, has_aux: bool = False
    ) -> Callable: ...
    def jit(self, f: Callable, *, rng: bool = False) -> Callable: ...
    # Optional (not required of a plugin): ``compile(step, *, mode, rng=False)`` compiles
    # a training step ``step(state, idx, *args) -> state`` for ``mode="jit"`` (one call
    # per step) or ``"fused"`` (``fused(state, block, *args)`` runs the step once per row
    # of the index block ``block``). The result has ``compiles()``, the compilations so
    # far, and ``seal()``, after which compiling again raises `Recompiled`; a mode the
    # backend cannot run raises `ModeUnsupported` naming the reason.

    # execution and metadata
    def sync(self, x: Any = None) -> Any: ...
    def info(self) -> dict[str, Any]: ...


#: What every backend object has: the attributes and methods of `Backend`.
BACKEND_MEMBERS: tuple[str, ...] = tuple(
    sorted({*Backend.__annotations__, *(n for n in vars(Backend) if not n.startswith("_"))})
)


def missing_members(obj: Any) -> list[str]:
    """The members of `Backend` that ``obj`` lacks. For a class, only what a class can
    show (methods and properties, not attributes set in ``__init__``), and nothing for a
    class that answers any name through ``__getattr__`` (a delegating wrapper)."""
    if isinstance(obj, type):
        if hasattr(obj, "__getattr__"):
            return []
        return [m for m in BACKEND_MEMBERS if m not in Backend.__annotations__
                and not hasattr(obj, m)]  # fmt: skip
    return [m for m in BACKEND_MEMBERS if not hasattr(obj, m)]


def describe_missing(what: str, missing: list[str]) -> str:
    """``"its class X lacks 3 of vecx.Backend's members: a, b, c"``, the list cut at 6."""
    shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
    return f"{what} lacks {len(missing)} of vecx.Backend's members: {shown}"

