"""CuPy on a CUDA device: the NumPy backend with the array module swapped.

CuPy mirrors NumPy's API, so the NumPy backend's code (and vecx's reverse-mode
differentiator) serves both; this class only adds the device, its checks and ``sync``.
"""

from __future__ import annotations

import os
from typing import Any

from vecx.backends._base import check_index_bounds
from vecx.backends.numpy import NumpyBackend
from vecx.protocol import BackendUnavailable


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


class CupyBackend(NumpyBackend):
    name = "cupy"

    def __init__(self, device: str = "cuda:0", **kwargs: Any) -> None:
        if kwargs.get("precision") == "tf32":
            os.environ.setdefault("CUPY_TF32", "1")  # read by CuPy when it loads cuBLAS
        self.device = device  # for the error message, before the base class runs
        reason = probe(device)
        if reason:
            raise BackendUnavailable(f"cupy:{device}", reason)
        import cupy

        self._cuda_device = cupy.cuda.Device(int(device.split(":")[1]))
        with self._cuda_device:
            super().__init__(device, **kwargs)

    def _import_module(self) -> Any:
        import cupy

        return cupy

    # every allocation goes to this backend's GPU, whatever device is current
    def ones(self, shape: Any, dtype: str | None = None) -> Any:
        with self._cuda_device:
            return super().ones(shape, dtype)

    def zeros(self, shape: Any, dtype: str | None = None) -> Any:
        with self._cuda_device:
            return super().zeros(shape, dtype)

    def asarray(self, obj: Any, dtype: str | None = None) -> Any:
        with self._cuda_device:
            return super().asarray(obj, dtype)

    def normal(self, mean: float, std: float, shape: Any, dtype: str | None = None) -> Any:
        with self._cuda_device:
            return super().normal(mean, std, shape, dtype)

    def permutation(self, n: int) -> Any:
        with self._cuda_device:
            return self._rng.permutation(int(n))

    def to_numpy(self, x: Any) -> Any:
        return self.xp.asnumpy(x)

    def index(self, x: Any, idx: Any) -> Any:
        # CuPy wraps out-of-range indices silently (mode="wrap"): check like NumPy would.
        if isinstance(idx, self.xp.ndarray):
            if idx.size and (int(idx.max()) >= x.shape[0] or int(idx.min()) < -x.shape[0]):
                check_index_bounds(self.xp.asnumpy(idx), x.shape[0])
        else:
            check_index_bounds(idx, x.shape[0])
            with self._cuda_device:
                idx = self.xp.asarray(idx)
        return super().index(x, idx)

    def sync(self, x: Any = None) -> Any:
        self._cuda_device.synchronize()
        return x

    def info(self) -> dict[str, Any]:
        cupy = self.xp
        props = cupy.cuda.runtime.getDeviceProperties(self._cuda_device.id)
        name = props["name"]
        return {
            **super().info(),
            "framework": "cupy",
            "version": cupy.__version__,
            "device_name": name.decode() if isinstance(name, bytes) else name,
            "matmul_precision": "tf32" if os.environ.get("CUPY_TF32") == "1" else "float32",
            "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
            "blas": "cuBLAS",
        }
