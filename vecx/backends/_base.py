"""What every built-in backend shares: dtype checks, argument checks and small pytrees.

Subclasses set ``name`` and implement the primitives; they import their framework in
``__init__`` and keep it on the instance (``self.xp``), so importing this module or any
backend module loads no framework.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from vecx.protocol import DEFAULT_DTYPE, PRECISIONS, check_dtype


class BaseBackend:
    name: str = "base"
    #: dtype names this backend cannot provide at all (subclasses narrow this)
    unsupported_dtypes: frozenset[str] = frozenset()

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

    def __repr__(self) -> str:
        return f"<vecx backend {self.spec} dtype={self.dtype} precision={self.precision}>"

    def _check_supported(self, dtype: str) -> str:
        if dtype in self.unsupported_dtypes:
            from vecx.protocol import UnsupportedDtype

            raise UnsupportedDtype(f"{self.name} does not support {dtype}")
        return dtype

    def _dtype_name(self, dtype: str | None) -> str:
        if dtype is None:
            return self.dtype
        return self._check_supported(check_dtype(dtype))

    def grad(self, f: Callable[..., Any], argnums: int | tuple[int, ...] = 0) -> Callable:
        """Gradient of scalar ``f`` with respect to the arguments ``argnums``."""
        value_and_grad = self.value_and_grad(f, argnums)

        def grad_f(*args: Any) -> Any:
            return value_and_grad(*args)[1]

        return grad_f

    def jit(self, f: Callable) -> Callable:
        """Eager frameworks run ``f`` as it is; compiling ones override this."""
        return f

    def _base_info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "device": self.device,
            "dtype": self.dtype,
            "precision": self.precision,
        }


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
    if isinstance(argnums, int):
        return (argnums,), True
    nums = tuple(argnums)
    if not nums or not all(isinstance(i, int) for i in nums):
        raise TypeError(f"argnums must be an int or a non-empty tuple of ints, got {argnums!r}")
    return nums, False


def check_argnums(argnums: tuple[int, ...], nargs: int) -> None:
    for i in argnums:
        if not -nargs <= i < nargs:
            raise ValueError(f"argnums {i} is out of range for a call with {nargs} arguments")


def flatten(tree: Any) -> tuple[list[Any], Callable[[list[Any]], Any]]:
    """Leaves of a tuple/list/dict nest of arrays, and a function that rebuilds the nest."""
    if type(tree) is dict and not any(isinstance(v, _CONTAINERS) for v in tree.values()):
        keys = tuple(tree)  # the common flat {"w": ..., "b": ...}: the fast path
        return list(tree.values()), lambda leaves: dict(zip(keys, leaves, strict=True))
    if isinstance(tree, dict):
        keys = list(tree)
        parts = [flatten(tree[k]) for k in keys]
        sizes = [len(p[0]) for p in parts]

        def unflatten_dict(leaves: list[Any]) -> Any:
            out, start = {}, 0
            for k, (_, rebuild), n in zip(keys, parts, sizes, strict=True):
                out[k] = rebuild(leaves[start : start + n])
                start += n
            return out

        return [leaf for p in parts for leaf in p[0]], unflatten_dict
    if isinstance(tree, (tuple, list)):
        kind = type(tree)
        parts = [flatten(v) for v in tree]
        sizes = [len(p[0]) for p in parts]

        def unflatten_seq(leaves: list[Any]) -> Any:
            out, start = [], 0
            for (_, rebuild), n in zip(parts, sizes, strict=True):
                out.append(rebuild(leaves[start : start + n]))
                start += n
            return kind(out)

        return [leaf for p in parts for leaf in p[0]], unflatten_seq
    return [tree], _single


_CONTAINERS = (dict, list, tuple)


def _single(leaves: list[Any]) -> Any:
    return leaves[0]


def check_index_bounds(idx: Any, n: int) -> None:
    """Raise IndexError like NumPy when a host index array leaves ``[-n, n)``.

    Runs on every ``index`` call with host indices, so the usual short 1-D case (a
    minibatch) avoids NumPy reductions, which cost ~1 us each: Python's ``max``/``min``
    over a short list cost a fraction of that (bench/overhead.py).
    """
    import numpy as np

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
