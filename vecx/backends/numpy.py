"""NumPy on the CPU, differentiated by vecx's own reverse mode (``_autodiff``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vecx.backends import _autodiff
from vecx.backends._base import BaseBackend, matmul_shape_error, normalize_shape
from vecx.results import cpu_model, runtime_settings


class NumpyBackend(BaseBackend):
    """NumPy, and the base of CuPy's backend: CuPy swaps ``self.xp`` and the device bits."""

    name = "numpy"
    unsupported_dtypes = frozenset({"bfloat16"})

    def __init__(self, device: str = "cpu", **kwargs: Any) -> None:
        super().__init__(device, **kwargs)
        self.xp = self._import_module()
        self.seed(self._seed)

    def _import_module(self) -> Any:
        import numpy

        return numpy

    def _np_dtype(self, dtype: str | None) -> Any:
        return getattr(self.xp, self._dtype_name(dtype))

    # creation and transfer
    def ones(self, shape: Any, dtype: str | None = None) -> Any:
        return self.xp.ones(normalize_shape(shape), dtype=self._np_dtype(dtype))

    def zeros(self, shape: Any, dtype: str | None = None) -> Any:
        return self.xp.zeros(normalize_shape(shape), dtype=self._np_dtype(dtype))

    def asarray(self, obj: Any, dtype: str | None = None) -> Any:
        if dtype is None and _is_integer(obj):
            return self.xp.asarray(obj)
        return self.xp.asarray(obj, dtype=self._np_dtype(dtype))

    def to_numpy(self, x: Any) -> Any:
        import numpy

        return numpy.asarray(x)

    # randomness
    def seed(self, seed: int) -> None:
        self._seed = int(seed)
        self._rng = self.xp.random.default_rng(self._seed)

    def normal(self, mean: float, std: float, shape: Any, dtype: str | None = None) -> Any:
        name = self._dtype_name(dtype)
        draw_dtype = name if name in ("float32", "float64") else "float32"
        x = self._rng.standard_normal(normalize_shape(shape), dtype=getattr(self.xp, draw_dtype))
        x = x * std + mean if (std != 1 or mean != 0) else x
        return x.astype(getattr(self.xp, name), copy=False)

    def permutation(self, n: int) -> Any:
        return self._rng.permutation(int(n))

    # compute
    def matmul(self, a: Any, b: Any) -> Any:
        try:
            return a @ b
        except ValueError as exc:
            raise matmul_shape_error(a, b, exc) from None

    def index(self, x: Any, idx: Any) -> Any:
        if type(idx) is tuple:  # x[(3, 0)] would index two axes, not gather two rows
            idx = list(idx)
        return x[idx]  # NumPy raises IndexError out of range; a Tracer records the gather

    def exp(self, x: Any) -> Any:
        return x.exp() if type(x) is _autodiff.Tracer else self.xp.exp(x)

    # transformations
    def value_and_grad(self, f: Callable[..., Any], argnums: Any = 0) -> Callable:
        return _autodiff.value_and_grad(f, argnums, self.xp, self._grad_leaf)

    def _grad_leaf(self, obj: Any) -> Any:
        """A differentiated argument that is not an array of ours yet: a Python float in
        the backend's dtype (as JAX and the torch backend do), anything else as it is."""
        if isinstance(obj, float):
            return self.xp.asarray(obj, dtype=self._np_dtype(None))
        return self.xp.asarray(obj)

    def sync(self, x: Any = None) -> Any:
        return x

    def info(self) -> dict[str, Any]:
        import numpy

        return {
            **self._base_info(),
            "framework": "numpy",
            "version": numpy.__version__,
            "device_name": cpu_model(),
            "matmul_precision": "float32",
            "blas": _blas_summary(),
        }


def _is_integer(obj: Any) -> bool:
    dtype = getattr(obj, "dtype", None)
    if dtype is not None:
        return getattr(dtype, "kind", "") in ("i", "u", "b")
    return isinstance(obj, int) or (
        isinstance(obj, (list, tuple)) and bool(obj) and all(isinstance(v, int) for v in obj)
    )


def _blas_summary() -> str | None:
    """The BLAS pools of this process in one line, from ``vecx.results.runtime_settings``."""
    pools = runtime_settings()["blas"]
    return ", ".join(
        " ".join(str(p[k]) for k in ("internal_api", "version", "architecture") if p.get(k))
        + f" threads={p.get('num_threads')}"
        for p in pools or ()
    ) or None
