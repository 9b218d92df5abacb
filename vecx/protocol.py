"""The `Backend` protocol: the few primitives every vecx algorithm is written against.

Design rules (a newcomer should know these before writing a backend):

* A backend hands out and takes the framework's own arrays; vecx has no tensor wrapper.
  Arithmetic in user code uses the operators all frameworks share (``+ - * / ** @``,
  ``.sum() .mean() .reshape() .T``).
* A backend imports its framework in its constructor, never at module import, so that
  ``import vecx`` loads no framework.
* Randomness comes from a generator owned by the backend instance and seeded at
  construction: same seed, backend and device give the same numbers.
* Nothing is downcast silently: an unsupported dtype is an error that names the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

#: Float dtypes by name. Backends may support a subset (NumPy has no bfloat16).
DTYPES: tuple[str, ...] = ("float32", "float64", "float16", "bfloat16")
DEFAULT_DTYPE = "float32"
#: Float32 matmul precision: "float32" is full IEEE float32 (TF32 off); "tf32" opts in.
PRECISIONS: tuple[str, ...] = ("float32", "tf32")

Array = Any  # the framework's native array type
Shape = int | Sequence[int]


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


class TrainingDiverged(VecxError, ArithmeticError):
    """The training loss became non-finite; raised instead of reporting ``nan``.

    ``history`` is the run up to the last good checkpoint (a ``vecx.train.History``
    with ``diverged`` set), or None, so a caller can still save what was computed.
    """

    def __init__(self, message: str, history: Any = None) -> None:
        super().__init__(message)
        self.history = history


def check_dtype(dtype: str) -> str:
    """Return ``dtype`` if it is a known float dtype name, else raise ``ValueError``."""
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    return dtype


@runtime_checkable
class Backend(Protocol):
    """What vecx needs from an array framework on one device.

    Third parties implement this (structurally; no inheritance needed) and register a
    factory under the ``vecx.backends`` entry-point group; see ``vecx.registry``.
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
    def exp(self, x: Array) -> Array: ...

    # transformations
    def grad(self, f: Callable[..., Any], argnums: int | tuple[int, ...] = 0) -> Callable: ...
    def value_and_grad(
        self, f: Callable[..., Any], argnums: int | tuple[int, ...] = 0
    ) -> Callable: ...
    def jit(self, f: Callable) -> Callable: ...

    # execution and metadata
    def sync(self, x: Any = None) -> Any: ...
    def info(self) -> dict[str, Any]: ...
