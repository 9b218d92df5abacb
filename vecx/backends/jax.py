"""JAX on the CPU or a CUDA device; ``jax.value_and_grad`` and ``jax.jit`` natively.

JAX differs from the others in three ways this module hides: arrays are immutable, random
numbers come from explicit keys (kept and split here), and out-of-range gathers clamp
silently (checked here, so ``index`` raises ``IndexError`` like everywhere else).

GPU memory: by default JAX grabs 75% of every GPU's memory when it first initialises,
and with jax[cuda] installed even ``jax.devices("cpu")`` initialises CUDA. vecx runs JAX
next to PyTorch and CuPy in one process (``vecx info``, ``vecx train``, the pytest
plugin), so when this module is the first to import jax it sets
``XLA_PYTHON_CLIENT_PREALLOCATE=false``: JAX then allocates as it goes. The variable is
only set where it is unset, so ``XLA_PYTHON_CLIENT_PREALLOCATE=true`` (or
``XLA_PYTHON_CLIENT_MEM_FRACTION``) in the environment still wins, and a program that
imported jax itself keeps its own settings.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from vecx.backends._base import (
    BaseBackend,
    check_argnums,
    check_index_bounds,
    matmul_shape_error,
    normalize_argnums,
    normalize_shape,
)
from vecx.backends.numpy import _is_integer
from vecx.protocol import UnsupportedDtype
from vecx.results import cpu_model


def _import_jax() -> Any:
    """``import jax``; the first import in the process does not preallocate GPU memory."""
    if "jax" not in sys.modules:
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    import jax

    return jax


def _devices(kind: str) -> list[Any]:
    jax = _import_jax()

    try:
        return jax.devices(kind)
    except RuntimeError:
        return []


def probe(device: str) -> str | None:
    kind = "gpu" if device.startswith("cuda") else "cpu"
    found = _devices(kind)
    if not found:
        return "no CUDA device visible to jax (install jax[cuda12] on a GPU machine)"
    ordinal = int(device.split(":")[1]) if ":" in device else 0
    if ordinal >= len(found):
        return f"{device} requested but jax sees {len(found)} {kind} device(s)"
    return None


def _take(x: Any, idx: Any) -> Any:
    import jax.numpy as jnp

    return jnp.take(x, idx, axis=0, mode="fill")


def _take_checked(x: Any, idx: Any) -> tuple[Any, Any]:
    n = x.shape[0]
    return _take(x, idx), ((idx >= n) | (idx < -n)).any()


class JaxBackend(BaseBackend):
    name = "jax"

    def __init__(self, device: str = "cpu", **kwargs: Any) -> None:
        super().__init__(device, **kwargs)
        jax = _import_jax()
        import jax.numpy as jnp

        from vecx.protocol import BackendUnavailable

        reason = probe(device)
        if reason:
            raise BackendUnavailable(self.spec, reason)
        self.jax, self.xp = jax, jnp
        kind = "gpu" if device.startswith("cuda") else "cpu"
        self._device = _devices(kind)[int(device.split(":")[1]) if ":" in device else 0]
        # Process-wide in JAX: full float32 unless tf32 was asked for (info() reports it).
        precision = "tensorfloat32" if self.precision == "tf32" else "highest"
        jax.config.update("jax_default_matmul_precision", precision)
        self._check_x64(self.dtype)
        # Our own jitted gathers dispatch faster than jnp.take (~1 us): this pays for the
        # host bounds check. Out-of-range rows are NaN ("fill"), never clamped, when the
        # indices cannot be checked (inside jit).
        self._take = jax.jit(_take)
        self._take_checked = jax.jit(_take_checked)
        self.seed(self._seed)

    def _check_x64(self, dtype: str) -> str:
        if dtype == "float64" and not self.jax.config.jax_enable_x64:
            raise UnsupportedDtype(
                "float64 on JAX needs 64-bit mode, which is off: set JAX_ENABLE_X64=1 before "
                "importing jax, or call jax.config.update('jax_enable_x64', True)"
            )
        return dtype

    def _jax_dtype(self, dtype: str | None) -> Any:
        return getattr(self.xp, self._check_x64(self._dtype_name(dtype)))

    def _put(self, x: Any) -> Any:
        return self.jax.device_put(x, self._device)

    def ones(self, shape: Any, dtype: str | None = None) -> Any:
        return self.xp.ones(normalize_shape(shape), self._jax_dtype(dtype), device=self._device)

    def zeros(self, shape: Any, dtype: str | None = None) -> Any:
        return self.xp.zeros(normalize_shape(shape), self._jax_dtype(dtype), device=self._device)

    def asarray(self, obj: Any, dtype: str | None = None) -> Any:
        import numpy as np

        if dtype is None and _is_integer(obj):
            return self._put(np.asarray(obj))
        target = self._jax_dtype(dtype)
        if isinstance(obj, self.jax.Array):
            return self._put(obj.astype(target))
        return self._put(np.asarray(obj).astype(np.dtype(target), copy=False))

    def to_numpy(self, x: Any) -> Any:
        import numpy as np

        if x.dtype == self.xp.bfloat16:
            x = x.astype(self.xp.float32)
        return np.asarray(x)

    def seed(self, seed: int) -> None:
        self._seed = int(seed)
        # Committed to this device, so that splitting and drawing run here, not on JAX's
        # default device (a GPU, when there is one, even for jax:cpu).
        self._key = self._put(self.jax.random.key(self._seed))

    def _next_key(self) -> Any:
        self._key, sub = self.jax.random.split(self._key)
        return sub

    def normal(self, mean: float, std: float, shape: Any, dtype: str | None = None) -> Any:
        x = self.jax.random.normal(
            self._next_key(), normalize_shape(shape), self._jax_dtype(dtype)
        )
        return self._put(x * std + mean if (std != 1 or mean != 0) else x)

    def permutation(self, n: int) -> Any:
        return self._put(self.jax.random.permutation(self._next_key(), int(n)))

    def matmul(self, a: Any, b: Any) -> Any:
        try:
            return a @ b
        except (TypeError, ValueError) as exc:
            raise matmul_shape_error(a, b, exc) from None

    def index(self, x: Any, idx: Any) -> Any:
        """Gather rows; raise IndexError out of range where JAX itself would clamp.

        Host indices are checked on the host. A concrete device index array is checked
        with one device-to-host read. Inside ``jit`` the indices are abstract and cannot be
        checked: out-of-range rows then come back as NaN (``mode="fill"``), never clamped.
        """
        if type(idx) is np.ndarray and idx.ndim == 1 and idx.size <= 256:
            # The hot path, a host minibatch: inlined, as every call here costs more
            # between two JAX dispatches than it does alone (bench/overhead.py).
            if idx.size:
                rows, n = idx.tolist(), x.shape[0]
                if max(rows) >= n or min(rows) < -n:
                    check_index_bounds(idx, n)
            return self._take(x, idx)
        if isinstance(idx, self.jax.Array):
            tracer = self.jax.core.Tracer
            if isinstance(idx, tracer):
                return self._take(x, idx)
            if isinstance(x, tracer):  # inside jit or grad, a constant index: check on host
                check_index_bounds(self.to_numpy(idx), x.shape[0])  # (JAX ops would trace)
                return self._take(x, idx)
            rows, out_of_range = self._take_checked(x, idx)  # one dispatch, one read
            if out_of_range:
                check_index_bounds(self.to_numpy(idx), x.shape[0])
            return rows
        check_index_bounds(idx, x.shape[0])
        return self._take(x, idx if type(idx) is np.ndarray else np.asarray(idx))

    def exp(self, x: Any) -> Any:
        return self.xp.exp(x)

    def value_and_grad(self, f: Callable[..., Any], argnums: Any = 0) -> Callable:
        """``jax.value_and_grad``, but any size-1 output is accepted, as on the other
        backends, and a larger one is a ``ValueError`` (JAX raises ``TypeError``)."""
        nums, single = normalize_argnums(argnums)

        def scalar_f(*args: Any) -> tuple[Any, Any]:
            out = f(*args)
            if getattr(out, "size", 1) != 1:
                raise ValueError(
                    f"value_and_grad needs f to return a scalar, got shape {tuple(out.shape)}"
                )
            return (out.reshape(()) if getattr(out, "ndim", 0) else out), out

        vg = self.jax.value_and_grad(scalar_f, argnums=nums[0] if single else nums, has_aux=True)

        def value_and_grad_f(*args: Any) -> tuple[Any, Any]:
            check_argnums(nums, len(args))  # a ValueError as elsewhere, not JAX's TypeError
            (_, value), grads = vg(*args)
            return value, grads

        return value_and_grad_f

    def jit(self, f: Callable) -> Callable:
        return self.jax.jit(f)

    def sync(self, x: Any = None) -> Any:
        """Block on ``x``; with no argument, on a fresh tiny computation on this device.

        JAX dispatches asynchronously even on the CPU; without ``x`` there is no handle
        to all queued work, so we rely on in-order execution on the device's stream.
        """
        if x is None:
            self.xp.zeros((), device=self._device).block_until_ready()
            return x
        return self.jax.block_until_ready(x)

    def info(self) -> dict[str, Any]:
        jax = self.jax
        name = cpu_model() if self._device.platform == "cpu" else self._device.device_kind
        precision = jax.config.jax_default_matmul_precision
        return {
            **self._base_info(),
            "framework": "jax",
            "version": jax.__version__,
            "device_name": name,
            "matmul_precision": "tf32" if precision == "tensorfloat32" else "float32",
            "x64": bool(jax.config.jax_enable_x64),
        }
