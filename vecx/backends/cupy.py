"""CuPy on a CUDA device: the NumPy backend with the array module swapped.

CuPy mirrors NumPy's API, so the NumPy backend's code (and vecx's reverse-mode
differentiator) serves both; this class only adds the device, its checks and ``sync``.

CuPy computes on the *current* device, not on the device of the arrays. Every method
that allocates or launches work, and every call of a function from ``grad`` or
``value_and_grad``, therefore runs inside this backend's ``cupy.cuda.Device`` context,
so that ``cupy:cuda:1`` computes on device 1 whatever device is current. Operators that
user code applies to the arrays outside these calls run on the current device, as in
CuPy itself.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

from vecx.backends._autodiff import REPLAY
from vecx.backends._base import check_index_bounds, host_index
from vecx.backends.numpy import DRAW_WHILE_REPLAYING, NumpyBackend
from vecx.protocol import (
    DTYPES,
    BackendUnavailable,
    Capabilities,
    ModeUnsupported,
    TracedRandomness,
)


def probe(device: str) -> str | None:
    """Why CuPy cannot run on ``device``; CuPy imports fine without a GPU, so ask CUDA."""
    import cupy

    try:
        if not cupy.cuda.is_available():
            return "no CUDA device available to cupy (cupy.cuda.is_available() is False)"
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError, missing driver libraries, ...
        return f"CUDA is not usable by cupy: {exc}"
    ordinal = int(device.split(":")[1])
    if ordinal >= count:
        return f"{device} requested but cupy sees {count} CUDA device(s)"
    return None


def _set_tf32(cupy: Any, enabled: bool) -> None:
    """Process-wide, as in PyTorch and JAX. CuPy reads ``CUPY_TF32`` only once, at its
    first float32 matmul, so the environment variable cannot switch it later; CuPy's
    compute-type setting can (it falls back to full float32, with a warning, below
    compute capability 8.0)."""
    try:
        from cupy._core import _routines_linalg as linalg

        kind = linalg.COMPUTE_TYPE_TF32 if enabled else linalg.COMPUTE_TYPE_DEFAULT
    except (ImportError, AttributeError):  # no such setting: the variable works until used
        os.environ["CUPY_TF32"] = "1" if enabled else "0"
        return
    linalg.set_compute_type(cupy.float32, kind)


def _tf32(cupy: Any) -> bool:
    try:
        from cupy._core import _routines_linalg as linalg

        return linalg.get_compute_type(cupy.float32) == linalg.COMPUTE_TYPE_TF32
    except (ImportError, AttributeError):
        return os.environ.get("CUPY_TF32", "0") not in ("", "0")


F = TypeVar("F", bound=Callable[..., Any])


def _on_device(method: F) -> F:
    """Run a backend method with this backend's GPU as the current device."""

    @functools.wraps(method)
    def on_device(self: CupyBackend, *args: Any, **kwargs: Any) -> Any:
        with self._cuda_device:
            return method(self, *args, **kwargs)

    return on_device  # type: ignore[return-value]


class CupyBackend(NumpyBackend):
    name = "cupy"
    capabilities = Capabilities(
        compiles=False, immutable_arrays=False, asynchronous=True, higher_order_grad=False,
        dtypes=frozenset(DTYPES) - NumpyBackend.unsupported_dtypes,
    )

    def __init__(self, device: str = "cuda:0", **kwargs: Any) -> None:
        self.device = device  # for the error message, before the base class runs
        reason = probe(device)
        if reason:
            raise BackendUnavailable(f"cupy:{device}", reason)
        cupy = self._import_module()
        self._cuda_device = cupy.cuda.Device(int(device.split(":")[1]))
        with self._cuda_device:
            super().__init__(device, **kwargs)
            _set_tf32(cupy, self.precision == "tf32")

    def _import_module(self) -> Any:
        import cupy

        return cupy

    # every allocation and every kernel goes to this backend's GPU, whatever is current
    ones = _on_device(NumpyBackend.ones)
    zeros = _on_device(NumpyBackend.zeros)
    asarray = _on_device(NumpyBackend.asarray)
    normal = _on_device(NumpyBackend.normal)
    seed = _on_device(NumpyBackend.seed)  # the generator's state lives on the device
    matmul = _on_device(NumpyBackend.matmul)
    _map = _on_device(NumpyBackend._map)  # the math ops (vecx.backends._base)
    _reduce = _on_device(NumpyBackend._reduce)
    _identity = _on_device(NumpyBackend._identity)
    _astype = _on_device(NumpyBackend._astype)
    _isfinite = _on_device(NumpyBackend._isfinite)

    @_on_device
    def permutation(self, n: int) -> Any:
        # cupy.random.Generator has no permutation (CuPy 14); sorting uniform keys drawn
        # from the same seeded generator gives one, as RandomState.permutation does.
        if getattr(REPLAY, "tracing", False):
            raise TracedRandomness(DRAW_WHILE_REPLAYING)
        return self.xp.argsort(self._rng.random(int(n)))

    def compile(self, step: Callable, *, mode: str, rng: bool = False) -> Any:
        """``jit`` as on NumPy (the replay compiler). ``fused`` would capture a segment as
        a CUDA graph, but CuPy refuses every cuBLAS call while a stream captures
        (``cupy_backends/cuda/libs/cublas.pyx``: ``setStream`` raises
        ``NotImplementedError``, asserted by CuPy's own ``test_stream_capture_failure_cublas``),
        and each step's matmul is one. The step runs with this backend's GPU current: its
        operators (``p - lr * g``) compute on the current device, not the arrays'."""
        if mode == "fused":
            raise ModeUnsupported(
                f"mode 'fused' on {self.spec} needs a segment captured as a CUDA graph, and "
                "CuPy refuses cuBLAS calls (every matmul) during stream capture; use mode "
                "'jit', or torch:cuda for CUDA graphs"
            )
        done = super().compile(step, mode=mode, rng=rng)
        done.fn = done.warm = self._on_this_device(done.fn)
        return done

    def jit(self, f: Callable, *, rng: bool = False) -> Callable:
        """``f`` itself, run with this backend's GPU current (see `compile`)."""
        return self._on_this_device(f)

    def _on_this_device(self, f: Callable) -> Callable:
        device = self._cuda_device

        @functools.wraps(f)
        def on_device(*args: Any, **kwargs: Any) -> Any:
            with device:
                return f(*args, **kwargs)

        return on_device

    def value_and_grad(
        self, f: Callable[..., Any], argnums: Any = 0, has_aux: bool = False
    ) -> Callable:
        # the tape's arrays and the gradients: on this backend's GPU
        return self._on_this_device(super().value_and_grad(f, argnums, has_aux))

    def _value_and_grad_for_grad(self, f: Callable, argnums: Any, has_aux: bool) -> Callable:
        return self._on_this_device(super()._value_and_grad_for_grad(f, argnums, has_aux))

    def to_numpy(self, x: Any) -> Any:
        return self.xp.asnumpy(x)

    @_on_device
    def index(self, x: Any, idx: Any) -> Any:
        # CuPy wraps out-of-range indices silently (mode="wrap"): check like NumPy would.
        if isinstance(idx, self.xp.ndarray):
            if idx.size and (int(idx.max()) >= x.shape[0] or int(idx.min()) < -x.shape[0]):
                check_index_bounds(self.xp.asnumpy(idx), x.shape[0])
        else:
            check_index_bounds(idx, x.shape[0])
            idx = self.xp.asarray(host_index(idx))
        return super().index(x, idx)

    def sync(self, x: Any = None) -> Any:
        self._cuda_device.synchronize()
        return x

    def thread_pools(self) -> list[dict[str, Any]]:
        return []  # CuPy computes on the GPU; the host's BLAS threads take no part

    def set_threads(self, threads: int) -> bool:
        return False

    def info(self) -> dict[str, Any]:
        cupy = self.xp
        props = cupy.cuda.runtime.getDeviceProperties(self._cuda_device.id)
        name = props["name"]
        return {
            **super().info(),
            "framework": "cupy",
            "version": cupy.__version__,
            "device_name": name.decode() if isinstance(name, bytes) else name,
            "matmul_precision": "tf32" if _tf32(cupy) else "float32",
            "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
            "blas": "cuBLAS",
        }
