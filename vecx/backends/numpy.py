"""NumPy on the CPU, differentiated by vecx's own reverse mode (``_autodiff``).

The math ops are the primitives of the autodiff's table (``_vjps``), called through it,
so they record themselves on the tape when they meet a traced array and run NumPy
directly otherwise. CuPy's backend inherits all of it with ``self.xp`` swapped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vecx.backends import _autodiff
from vecx.backends._autodiff import AS_CONSTANT, ISFINITE, PRIMITIVES, Tracer, derived, own_index
from vecx.backends._base import BaseBackend, CompiledStep, matmul_shape_error, normalize_shape
from vecx.backends._replay import Replayed
from vecx.environment import cpu_model, runtime_settings
from vecx.protocol import DTYPES, Capabilities, ModeUnsupported, TracedRandomness

DRAW_WHILE_REPLAYING = (
    "a random draw inside a step compiled by the replay compiler (mode 'jit') would be "
    "recorded once and replayed at every step; use mode 'eager' for a loss that draws"
)


class NumpyBackend(BaseBackend):
    """NumPy, and the base of CuPy's backend: CuPy swaps ``self.xp`` and the device bits."""

    name = "numpy"
    unsupported_dtypes = frozenset({"bfloat16"})
    capabilities = Capabilities(
        compiles=False, immutable_arrays=False, asynchronous=False, higher_order_grad=False,
        dtypes=frozenset(DTYPES) - unsupported_dtypes,
    )

    def __init__(self, device: str = "cpu", **kwargs: Any) -> None:
        super().__init__(device, **kwargs)
        self.xp = self._import_module()
        self.seed(self._seed)

    def _import_module(self) -> Any:
        import numpy

        return numpy

    def _np_dtype(self, dtype: str | None) -> Any:
        return self.xp.dtype(self._dtype_name(dtype))

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
        if getattr(_autodiff.REPLAY, "tracing", False):
            raise TracedRandomness(DRAW_WHILE_REPLAYING)
        name = self._float_name(dtype)
        draw_dtype = name if name in ("float32", "float64") else "float32"
        x = self._rng.standard_normal(normalize_shape(shape), dtype=getattr(self.xp, draw_dtype))
        x = x * std + mean if (std != 1 or mean != 0) else x
        return x.astype(getattr(self.xp, name), copy=False)

    def permutation(self, n: int) -> Any:
        if getattr(_autodiff.REPLAY, "tracing", False):
            raise TracedRandomness(DRAW_WHILE_REPLAYING)
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
        if type(x) is Tracer:  # the tape keeps its own copy of the indices
            return x[own_index(idx)]
        return x[idx]  # NumPy raises IndexError out of range

    # math: the autodiff's primitives (see vecx.backends._base for the semantics)
    def _map(self, name: str, *args: Any) -> Any:
        return PRIMITIVES[name](self.xp, *args)

    def _reduce(self, name: str, x: Any, axes: Any, keepdims: bool) -> Any:
        return PRIMITIVES[name](self.xp, x, axes, keepdims)

    def _identity(self, x: Any) -> Any:
        return PRIMITIVES["positive"](self.xp, x)

    def _astype(self, x: Any, dtype: str) -> Any:
        if dtype in DTYPES:
            return PRIMITIVES["astype"](self.xp, x, dtype)
        if type(x) is Tracer:  # a mask or labels: a constant
            return derived(AS_CONSTANT, x, self.xp.dtype(dtype))
        return x.astype(dtype)

    def _isfinite(self, x: Any) -> Any:
        return derived(ISFINITE, x) if type(x) is Tracer else self.xp.isfinite(x)

    # transformations
    def value_and_grad(
        self, f: Callable[..., Any], argnums: Any = 0, has_aux: bool = False
    ) -> Callable:
        return _autodiff.value_and_grad(f, argnums, self.xp, self._grad_leaf, has_aux)

    def _value_and_grad_for_grad(self, f: Callable, argnums: Any, has_aux: bool) -> Callable:
        """As ``value_and_grad``, telling the replay compiler the value is not needed."""
        return _autodiff.value_and_grad(f, argnums, self.xp, self._grad_leaf, has_aux,
                                        want_value=False)  # fmt: skip

    def _grad_leaf(self, obj: Any) -> Any:
        """A differentiated argument that is not an array of ours yet: a Python float in
        the backend's dtype (as JAX and the torch backend do), anything else (host arrays,
        NumPy scalars) in its own dtype."""
        if type(obj) is float:
            return self.xp.asarray(obj, dtype=self._np_dtype(None))
        return self.xp.asarray(obj)

    def compile(self, step: Callable, *, mode: str, rng: bool = False) -> CompiledStep:
        """``jit``: the replay compiler (``_replay``), which traces each ``value_and_grad``
        of the step once per signature and replays it. ``fused`` is not possible here."""
        if mode == "jit":
            if rng:
                raise ModeUnsupported(
                    f"mode 'jit' on {self.spec} replays a traced step, and a loss that draws "
                    "random numbers would replay the first call's draws; use mode 'eager'"
                )
            replayed = Replayed(step)
            return CompiledStep(replayed, replayed.compiles, on_seal=replayed.seal)
        if mode == "fused":
            raise ModeUnsupported(
                f"{self.spec} runs one {self.name} call per operation and has nothing to fuse "
                "a segment's steps with (mode 'fused' needs jax, or a CUDA graph)"
            )
        return super().compile(step, mode=mode, rng=rng)

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

    def thread_pools(self) -> list[dict[str, Any]]:
        """NumPy's BLAS pools (threadpoolctl), the only threads NumPy computes with."""
        return [
            {"pool": "BLAS", "library": p.get("internal_api"), "version": p.get("version"),
             "threads": p.get("num_threads"), "architecture": p.get("architecture"),
             "threading_layer": p.get("threading_layer")}
            for p in runtime_settings()["blas"] or ()
        ]  # fmt: skip

    def set_threads(self, threads: int) -> bool:
        """Limit the BLAS pools to ``threads`` from now on (threadpoolctl)."""
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return False
        self._thread_limit = threadpool_limits(limits=threads, user_api="blas")
        return True


def _is_integer(obj: Any) -> bool:
    dtype = getattr(obj, "dtype", None)
    if dtype is not None:
        return getattr(dtype, "kind", "") in ("i", "u", "b")
    return isinstance(obj, int) or (
        isinstance(obj, (list, tuple)) and bool(obj) and all(isinstance(v, int) for v in obj)
    )


def _blas_summary() -> str | None:
    """The BLAS pools of this process in one line, from ``vecx.environment.runtime_settings``."""
    pools = runtime_settings()["blas"]
    return ", ".join(
        " ".join(str(p[k]) for k in ("internal_api", "version", "architecture") if p.get(k))
        + f" threads={p.get('num_threads')}"
        for p in pools or ()
    ) or None
