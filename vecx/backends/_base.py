"""What every built-in backend shares: the portable math ops, argument checks, dtypes.

The math methods of the protocol (``exp ... logsumexp``, ``astype``, ``isfinite``) are
written once here, with the semantics every backend must share (Python scalars as
operands, ``axis`` as an int, a tuple or None, ``axis=()`` reducing nothing, one error
for each bad input); a framework supplies a few hooks that call its own functions:

* ``_map(name, *args)``: the elementwise op ``name`` (``exp``, ``maximum``, ``where``,
  ``clip``, ...) on arrays of this backend and Python scalars;
* ``_reduce(name, x, axes, keepdims)``: ``sum mean max min logsumexp`` over ``axes``, a
  non-empty tuple of non-negative ints, or None for all;
* ``_identity(x)``, ``_astype(x, dtype)``, ``_isfinite(x)``, ``_floating(x)``.

Subclasses set ``name`` and ``capabilities`` and implement the primitives; they import
their framework in ``__init__`` and keep it on the instance (``self.xp``), so importing
this module or any backend module loads no framework.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from vecx.protocol import (
    DEFAULT_DTYPE,
    DTYPES,
    PRECISIONS,
    Capabilities,
    ModeUnsupported,
    Recompiled,
    UnsupportedDtype,
    check_dtype,
)

#: Python scalars an op accepts as operands (bool is an int); NumPy scalars count too.
SCALARS = (int, float, bool)
#: Reductions that need floating-point input (as in the array API standard).
FLOAT_REDUCTIONS = frozenset(("mean", "logsumexp"))


class CompiledStep:
    """A step compiled by ``be.compile``: ``fn`` is what the hot loop calls; ``compiles()``
    counts the compilations so far; after ``seal()``, ``verify()`` raises `Recompiled` if
    there were more (a backend that can refuse at once, as the replay compiler does,
    does so in ``on_seal``). ``warm`` runs it without using up random numbers;
    ``rows(run)``, if given, turns a host ``(steps, batch)`` index array into what the hot
    loop iterates over, once per run (a tensor's rows, for torch)."""

    __slots__ = ("fn", "warm", "rows", "_count", "_sealed_at", "_on_seal")

    def __init__(
        self, fn: Callable[..., Any], count: Callable[[], int],
        warm: Callable[..., Any] | None = None, on_seal: Callable[[bool], None] | None = None,
        rows: Callable[[Any], Any] | None = None,
    ) -> None:  # fmt: skip
        self.fn = fn
        self.warm = warm or fn
        self.rows = rows
        self._count = count
        self._sealed_at: int | None = None
        self._on_seal = on_seal

    def compiles(self) -> int:
        return self._count()

    def seal(self) -> None:
        self._sealed_at = self._count()
        if self._on_seal is not None:
            self._on_seal(True)

    def unseal(self) -> None:
        """Compiling is allowed again (a warm-up for new shapes)."""
        self._sealed_at = None
        if self._on_seal is not None:
            self._on_seal(False)

    def verify(self) -> None:
        if self._sealed_at is not None and self._count() > self._sealed_at:
            more = self._count() - self._sealed_at
            raise Recompiled(
                f"the step compiled again inside the timed region ({more} more "
                "compilations: a new shape, dtype or constant); the warm-up compiles every "
                "shape a run uses"
            )


class BaseBackend:
    name: str = "base"
    #: dtype names this backend cannot provide at all (subclasses narrow this)
    unsupported_dtypes: frozenset[str] = frozenset()
    capabilities: Capabilities = Capabilities()

    def __init__(
        self, device: str, *, seed: int = 0, dtype: str = DEFAULT_DTYPE, precision: str = "float32"
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(
                f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}"
            )
        self.device = device
        self.precision = precision
        self.dtype = self._check_supported(check_dtype(dtype))
        self._seed = int(seed)

    @property
    def spec(self) -> str:
        return f"{self.name}:{self.device}"

    def constructor(self) -> tuple[type, dict[str, Any]]:
        """The class and keyword arguments that build this backend again on a device:
        ``cls(device, **kwargs)``, in another process (a data-parallel rank)."""
        return type(self), {"seed": self._seed, "dtype": self.dtype,
                            "precision": self.precision}  # fmt: skip

    def __repr__(self) -> str:
        return f"<vecx backend {self.spec} dtype={self.dtype} precision={self.precision}>"

    def _check_supported(self, dtype: str) -> str:
        if dtype in self.unsupported_dtypes:
            raise UnsupportedDtype(f"{self.name} does not support {dtype}")
        return dtype

    def _dtype_name(self, dtype: str | None) -> str:
        """A dtype name for creating arrays: a float one this backend supports, or one of
        ``int32``, ``int64``, ``bool`` (None: the backend's dtype)."""
        if dtype is None:
            return self.dtype
        return self._check_supported(check_dtype(dtype, others=True))

    def _float_name(self, dtype: str | None) -> str:
        """A float dtype name (random draws): the backend's, or a supported float one."""
        if dtype is None:
            return self.dtype
        return self._check_supported(check_dtype(dtype))

    def _supported_dtypes(self) -> frozenset[str]:
        return frozenset(DTYPES) - self.unsupported_dtypes

    # --- the primitives each backend implements (documented here, once) ---------------

    def ones(self, shape: Any, dtype: str | None = None) -> Any:
        """An array of ones on this backend's device (``dtype``: a name, default the
        backend's)."""
        raise NotImplementedError

    def zeros(self, shape: Any, dtype: str | None = None) -> Any:
        """An array of zeros on this backend's device."""
        raise NotImplementedError

    def asarray(self, obj: Any, dtype: str | None = None) -> Any:
        """``obj`` (a host array, a list, a number, an array of this backend) on this
        backend's device: floats in ``dtype`` (default: the backend's, so float64 host
        data becomes float32 on a float32 backend), integers and booleans as they are."""
        raise NotImplementedError

    def to_numpy(self, x: Any) -> Any:
        """``x`` as a host NumPy array (bfloat16 as float32, which holds it exactly)."""
        raise NotImplementedError

    def seed(self, seed: int) -> None:
        """Reset the backend's own random generator."""
        raise NotImplementedError

    def normal(self, mean: float, std: float, shape: Any, dtype: str | None = None) -> Any:
        """Normal draws from the backend's own seeded generator (reproducible per backend,
        not across backends: use a host generator for that, as ``vecx.fit`` does)."""
        raise NotImplementedError

    def permutation(self, n: int) -> Any:
        """A random permutation of ``range(n)`` from the backend's generator."""
        raise NotImplementedError

    def matmul(self, a: Any, b: Any) -> Any:
        """``a @ b``; mismatched shapes are a ``ValueError`` naming both."""
        raise NotImplementedError

    def index(self, x: Any, idx: Any) -> Any:
        """Rows ``idx`` of ``x`` (a gather along axis 0, differentiable in ``x``); an index
        out of range is an ``IndexError`` on every backend."""
        raise NotImplementedError

    def value_and_grad(
        self, f: Callable[..., Any], argnums: int | tuple[int, ...] = 0, has_aux: bool = False
    ) -> Callable:
        """``f``'s value and its gradient with respect to the arguments ``argnums``, as
        ``jax.value_and_grad``: ``f`` returns a scalar (with ``has_aux``, a pair
        ``(value, aux)``, and the call returns ``((value, aux), grads)``); arguments may be
        arrays, Python floats or pytrees of them; gradients have their argument's
        structure and dtype."""
        raise NotImplementedError

    def sync(self, x: Any = None) -> Any:
        """Wait for the device's queued work (on ``x``, or all of it); returns ``x``."""
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        """What the backend is: framework, version, device name, dtype, precision."""
        raise NotImplementedError

    # --- elementwise math ------------------------------------------------------------

    def exp(self, x: Any) -> Any:
        return self._map("exp", self._as_float(x))

    def log(self, x: Any) -> Any:
        return self._map("log", self._as_float(x))

    def tanh(self, x: Any) -> Any:
        return self._map("tanh", self._as_float(x))

    def sigmoid(self, x: Any) -> Any:
        """``1 / (1 + exp(-x))``, computed without overflow; finite gradients everywhere."""
        return self._map("sigmoid", self._as_float(x))

    def sqrt(self, x: Any) -> Any:
        return self._map("sqrt", self._as_float(x))

    def abs(self, x: Any) -> Any:
        """``|x|``; its gradient at 0 is 0 (as in JAX and PyTorch)."""
        return self._map("abs", self._lift(x))

    def maximum(self, a: Any, b: Any) -> Any:
        """Elementwise maximum; where ``a == b`` each gets half the gradient."""
        return self._map("maximum", *self._operands(a, b))

    def minimum(self, a: Any, b: Any) -> Any:
        """Elementwise minimum; where ``a == b`` each gets half the gradient."""
        return self._map("minimum", *self._operands(a, b))

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        """``a`` where ``cond`` is true, else ``b``; ``cond`` (boolean: an array of this
        backend, a host array, a list or a Python bool) is not differentiated."""
        return self._map("where", self._condition(cond), *self._operands(a, b))

    def clip(self, x: Any, lo: Any = None, hi: Any = None) -> Any:
        """``x`` limited to ``[lo, hi]`` (either may be None); the gradient is 1 on the
        closed interval and 0 outside, as in PyTorch. ``lo <= hi`` is the caller's job."""
        if lo is None and hi is None:
            raise ValueError("clip needs lo, hi or both")
        lo, hi = _python(lo), _python(hi)
        if isinstance(lo, float) or isinstance(hi, float):
            x = self._as_float(x)  # integers clipped to a float bound: floats, everywhere
        return self._map("clip", self._lift(x), lo, hi)

    # --- reductions ---------------------------------------------------------------------

    def sum(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return self._reduction("sum", x, axis, keepdims)

    def mean(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return self._reduction("mean", x, axis, keepdims)

    def max(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        """Largest values over ``axis`` (values only); ties share the gradient evenly."""
        return self._reduction("max", x, axis, keepdims)

    def min(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        """Smallest values over ``axis`` (values only); ties share the gradient evenly."""
        return self._reduction("min", x, axis, keepdims)

    def logsumexp(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        """``log(sum(exp(x)))`` over ``axis``, shifted by the maximum: finite for large
        ``|x|``, with the softmax as its gradient."""
        return self._reduction("logsumexp", x, axis, keepdims)

    def _reduction(self, name: str, x: Any, axis: Any, keepdims: bool) -> Any:
        if type(x) in SCALARS or isinstance(x, np.generic):
            x = self.asarray(float(x) if name in FLOAT_REDUCTIONS else _python(x))
        shape = x.shape
        ndim = len(shape)
        if axis is None:
            axes = None
        elif type(axis) is int and -ndim <= axis < ndim:  # the common case, inlined
            axes = (axis % ndim,)
        else:
            axes = normalize_axis(axis, ndim)
        if name in FLOAT_REDUCTIONS and not self._floating(x):
            raise TypeError(f"{name} needs a floating-point array, got {x.dtype}")
        if axes == ():
            return self._identity(x)
        if 0 in shape and name in ("max", "min", "logsumexp"):
            reduced = range(ndim) if axes is None else axes
            if any(shape[a] == 0 for a in reduced):
                raise ValueError(f"{name} of an empty array (shape {tuple(shape)}) has no value")
        return self._reduce(name, x, axes, bool(keepdims))

    # --- dtypes ---------------------------------------------------------------------------

    def astype(self, x: Any, dtype: str) -> Any:
        """``x`` converted to the dtype named ``dtype`` (a float name, ``int32``, ``int64``
        or ``bool``); float to float is differentiable. May return ``x`` itself when it
        already has that dtype."""
        name = check_dtype(dtype, others=True)
        if name in DTYPES:
            self._check_supported(name)
        return self._astype(self._lift(x), name)

    def isfinite(self, x: Any) -> Any:
        """A boolean array: not nan and not infinite. Never differentiated."""
        return self._isfinite(self._lift(x))

    # --- helpers for the ops --------------------------------------------------------------

    def _lift(self, x: Any) -> Any:
        """A Python or NumPy scalar becomes a 0-d array (a float one in this backend's
        dtype, an int one in the framework's default integer type)."""
        if type(x) in SCALARS or isinstance(x, np.generic):
            return self.asarray(_python(x))
        return x

    def _as_float(self, x: Any) -> Any:
        """An operand of a float function (``exp``, ``log``, ...): scalars and integer
        arrays in this backend's dtype, so the result's dtype is the same everywhere."""
        if type(x) in SCALARS or isinstance(x, np.generic):
            return self.asarray(float(x))
        return x if self._floating(x) else self._astype(x, self.dtype)

    def _operands(self, a: Any, b: Any) -> tuple[Any, Any]:
        """Two operands where at most one is a scalar; a NumPy scalar is taken as the
        Python number it holds, so it takes the array operand's dtype as a Python one."""
        if isinstance(a, np.generic):
            a = a.item()
        if isinstance(b, np.generic):
            b = b.item()
        if type(a) in SCALARS and type(b) in SCALARS:
            if isinstance(a, float) or isinstance(b, float):
                return self.asarray(float(a)), b  # two scalars: the backend's float dtype
            return self.asarray(a), b
        return a, b

    def _condition(self, cond: Any) -> Any:
        """``where``'s condition as a boolean array, the same rule everywhere."""
        if isinstance(cond, (bool, np.bool_, list, tuple)):
            cond = np.asarray(cond)
            if cond.dtype != bool:
                raise TypeError(f"where needs a boolean condition, got {cond.dtype}")
            return cond
        dtype = str(getattr(cond, "dtype", "")).removeprefix("torch.")
        if dtype != "bool":
            raise TypeError(f"where needs a boolean condition, got {dtype or type(cond)}")
        return cond

    # hooks (see the module docstring)
    def _map(self, name: str, *args: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement {name}")

    def _reduce(self, name: str, x: Any, axes: tuple[int, ...] | None, keepdims: bool) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement {name}")

    def _identity(self, x: Any) -> Any:
        return x

    def _astype(self, x: Any, dtype: str) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement astype")

    def _isfinite(self, x: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement isfinite")

    def _floating(self, x: Any) -> bool:
        return getattr(getattr(x, "dtype", None), "kind", "f") in "fc"

    # --- transformations ------------------------------------------------------------------

    def grad(
        self, f: Callable[..., Any], argnums: int | tuple[int, ...] = 0, has_aux: bool = False
    ) -> Callable:
        """Gradient of scalar ``f`` with respect to the arguments ``argnums``; with
        ``has_aux`` (``f`` returns ``(value, aux)``) it returns ``(grads, aux)``, as JAX."""
        value_and_grad = self._value_and_grad_for_grad(f, argnums, has_aux)

        if has_aux:

            def grad_aux(*args: Any) -> Any:
                (_, aux), grads = value_and_grad(*args)
                return grads, aux

            return grad_aux

        def grad_f(*args: Any) -> Any:
            return value_and_grad(*args)[1]

        return grad_f

    def _value_and_grad_for_grad(self, f: Callable, argnums: Any, has_aux: bool) -> Callable:
        """The ``value_and_grad`` that ``grad`` drops the value of (a backend whose
        compiler can skip computing an unwanted value says so here)."""
        return self.value_and_grad(f, argnums, has_aux)

    def jit(self, f: Callable, *, rng: bool = False) -> Callable:
        """Eager frameworks run ``f`` as it is (draws inside it just work); compiling ones
        override this, and with ``rng=True`` pass the random key through ``f``."""
        return f

    def compile(self, step: Callable, *, mode: str, rng: bool = False) -> CompiledStep:
        """A training step compiled for ``mode`` (``vecx.protocol``): ``eager`` is the step
        itself; nothing compiles by default."""
        if mode == "eager":
            return CompiledStep(step, lambda: 0)
        raise ModeUnsupported(f"{self.spec} has no compiler for mode {mode!r}")

    def _base_info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "device": self.device,
            "dtype": self.dtype,
            "precision": self.precision,
        }


def _python(x: Any) -> Any:
    """A NumPy scalar as the Python number it holds (Python scalars as they are)."""
    return x.item() if isinstance(x, np.generic) else x


def normalize_axis(axis: Any, ndim: int) -> tuple[int, ...] | None:
    """``axis`` as None (every axis) or a tuple of distinct axes in ``[0, ndim)``.

    Accepts an int (NumPy integers too), a tuple or list of them, or None; negative axes
    count from the end. Out-of-range or repeated axes are a ``ValueError``, as in NumPy.
    """
    if axis is None:
        return None
    if type(axis) is int:
        if not -ndim <= axis < ndim:
            raise ValueError(f"axis {axis} is out of bounds for an array of {ndim} dimension(s)")
        return (axis % ndim,)
    if isinstance(axis, (tuple, list)):
        items = axis
    else:
        items = (axis,)
    out = []
    for a in items:
        if isinstance(a, bool):
            raise TypeError(f"axis must be an int, a tuple of ints or None, got {axis!r}")
        try:
            i = operator.index(a)
        except TypeError:
            raise TypeError(
                f"axis must be an int, a tuple of ints or None, got {axis!r}"
            ) from None
        if not -ndim <= i < ndim:
            raise ValueError(f"axis {i} is out of bounds for an array of {ndim} dimension(s)")
        out.append(i % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis in {axis!r}")
    return tuple(out)


def kept_shape(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> tuple[int, ...]:
    """The shape a reduction over ``axes`` (None: all) has with ``keepdims=True``."""
    if axes is None:
        return (1,) * len(shape)
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def normalize_shape(shape: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(shape, int):
        shape = (shape,)
    try:
        out = tuple(int(s) for s in shape)
    except (TypeError, ValueError):  # ValueError: "ab" iterates into int("a")
        raise TypeError(f"shape must be an int or a sequence of ints, got {shape!r}") from None
    if any(s < 0 for s in out):
        raise ValueError(f"shape must not be negative, got {out}")
    return out


def normalize_argnums(argnums: int | Sequence[int]) -> tuple[tuple[int, ...], bool]:
    """Return (argnums as a tuple, whether the caller passed a single int)."""
    if isinstance(argnums, int) and not isinstance(argnums, bool):
        return (argnums,), True
    try:
        nums = tuple(argnums)
    except TypeError:
        nums = ()
    if not nums or not all(isinstance(i, int) and not isinstance(i, bool) for i in nums):
        raise TypeError(f"argnums must be an int or a non-empty tuple of ints, got {argnums!r}")
    return nums, False


def check_argnums(argnums: tuple[int, ...], nargs: int) -> tuple[int, ...]:
    """``argnums`` made non-negative; a ``ValueError`` for one out of range."""
    for i in argnums:
        if not -nargs <= i < nargs:
            raise ValueError(f"argnums {i} is out of range for a call with {nargs} arguments")
    return tuple(i % nargs for i in argnums)


def not_a_scalar(out: Any) -> TypeError:
    """The error for a differentiated function that returned a container, on every backend."""
    kind = type(out).__name__
    return TypeError(
        f"value_and_grad needs f to return a scalar, got a {kind}; to return more, "
        "return (value, aux) and pass has_aux=True"
    )


def split_aux(out: Any) -> tuple[Any, Any]:
    """``(value, aux)`` from the output of a ``has_aux=True`` function."""
    if not isinstance(out, (tuple, list)):
        raise TypeError("has_aux=True needs f to return a pair (value, aux), got one value")
    if len(out) != 2:
        raise TypeError(
            f"has_aux=True needs f to return a pair (value, aux), got {len(out)} values"
        )
    return out[0], out[1]


def loss_output(out: Any, has_aux: bool) -> tuple[Any, Any]:
    """``(value, aux)`` of a differentiated function's output, the same errors everywhere:
    a pair with ``has_aux``, a single value (never a container) without."""
    aux = None
    if has_aux:
        out, aux = split_aux(out)
    if isinstance(out, (tuple, list, dict)):
        raise not_a_scalar(out)
    return out, aux


def check_index_bounds(idx: Any, n: int) -> None:
    """Raise IndexError like NumPy when a host index array leaves ``[-n, n)``.

    Runs on every ``index`` call with host indices, so the usual short 1-D case (a
    minibatch) avoids NumPy reductions, which cost ~1 us each: Python's ``max``/``min``
    over a short list cost a fraction of that (bench/overhead.py).
    """
    kind = type(idx)
    if kind is np.ndarray and idx.ndim == 1 and idx.size <= 256:
        idx = idx.tolist()
    elif kind is not list and kind is not tuple:
        idx = np.asarray(idx)
    if type(idx) is not np.ndarray:
        if not idx:
            return
        try:
            hi, lo = max(idx), min(idx)
        except TypeError:  # ragged nesting: let NumPy judge it below
            hi = lo = None
        if type(hi) is int and type(lo) is int:  # else nested, bools or NumPy scalars
            if hi >= n or lo < -n:
                bad = next(i for i in idx if i >= n or i < -n)
                raise IndexError(f"index {bad} is out of bounds for axis 0 with size {n}")
            return
        idx = np.asarray(idx)
    if idx.size and (idx.max() >= n or idx.min() < -n):
        bad = idx[(idx >= n) | (idx < -n)][0]
        raise IndexError(f"index {int(bad)} is out of bounds for axis 0 with size {n}")


def host_index(idx: Any) -> Any:
    """A host index sequence as a NumPy array. ``[]`` becomes an empty integer array, as
    in NumPy's own ``x[[]]``, not the float64 array that ``np.asarray([])`` gives."""
    import numpy as np

    idx = np.asarray(idx)
    return idx.astype(np.intp) if idx.size == 0 and idx.dtype.kind == "f" else idx


def matmul_shape_error(a: Any, b: Any, exc: Exception) -> ValueError:
    return ValueError(
        f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} are not aligned ({exc})"
    )
