"""The CuPy backend's code paths without a GPU: CuPy's API, checked, with NumPy underneath.

CI machines have CuPy installed but no GPU, so ``cupy-cuda`` tests skip there and a call
that CuPy does not have (``cupy.random.Generator.permutation``) went unnoticed until
the first GPU run. Here ``CupyBackend`` runs on a stand-in module that lets through only
names the installed ``cupy`` really has (the module, ``cupy.random.Generator`` and
``cupy.cuda.Device``) and computes them with NumPy. It cannot check what CuPy computes,
only that every name vecx calls exists, and that every array is made while the
backend's device is the current one (CuPy computes on the current device, not on the
arrays' device); the GPU run checks the rest.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

cupy = pytest.importorskip("cupy")

from vecx.backends import cupy as cupy_backend  # noqa: E402


class DeviceArray(np.ndarray):
    """A NumPy array that notes where it was made: on which current device."""

    expected: int | None = None  # the device every new array must be made on
    misplaced: list[str] = []

    def __array_finalize__(self, obj: Any) -> None:
        if DeviceArray.expected is not None and FakeDevice.current[-1] != DeviceArray.expected:
            import traceback

            where = traceback.extract_stack(limit=2)[0]  # who made it
            DeviceArray.misplaced.append(
                f"on device {FakeDevice.current[-1]}: {where.filename}:{where.lineno} {where.line}"
            )


class StrictGenerator:
    """NumPy's generator, offering only the methods ``cupy.random.Generator`` has."""

    def __init__(self, seed: int) -> None:
        self._g = np.random.default_rng(seed)

    def __getattr__(self, name: str) -> Any:
        if not hasattr(cupy.random.Generator, name):
            raise AttributeError(f"'cupy.random.Generator' object has no attribute {name!r}")
        method = getattr(self._g, name)
        return lambda *args, **kwargs: FakeCupy.wrap(method(*args, **kwargs))


class FakeDevice:
    """``cupy.cuda.Device``: a context that makes its ordinal the current device."""

    current: list[int] = [0]  # CUDA's current device: 0 unless a context says otherwise

    def __init__(self, ordinal: int) -> None:
        self.id = ordinal

    def __enter__(self) -> FakeDevice:
        FakeDevice.current.append(self.id)
        return self

    def __exit__(self, *exc: Any) -> None:
        FakeDevice.current.pop()

    def synchronize(self) -> None:
        pass


class FakeCupy(types.ModuleType):
    """``cupy`` with NumPy underneath; a name the real module lacks is an AttributeError."""

    def __init__(self) -> None:
        super().__init__("cupy")
        self.__version__ = cupy.__version__
        self.ndarray = DeviceArray
        self.asnumpy = np.asarray
        self.random = types.SimpleNamespace(default_rng=StrictGenerator)
        runtime = types.SimpleNamespace(
            getDeviceProperties=lambda ordinal: {"name": b"Fake GPU"},
            runtimeGetVersion=lambda: 12000,
        )
        self.cuda = types.SimpleNamespace(Device=FakeDevice, runtime=runtime)

    @staticmethod
    def wrap(out: Any) -> Any:
        return out.view(DeviceArray) if isinstance(out, np.ndarray) else out

    def __getattr__(self, name: str) -> Any:
        if not hasattr(cupy, name):
            raise AttributeError(f"module 'cupy' has no attribute {name!r}")
        value = getattr(np, name)
        if not callable(value) or isinstance(value, (type, np.ufunc)):
            return value  # ufuncs as they are: vecx uses their methods (add.at)
        return lambda *args, **kwargs: self.wrap(value(*args, **kwargs))


def test_the_stand_ins_match_the_real_cupy_api() -> None:
    import inspect

    for attr in ("random", "ndarray", "asnumpy", "argsort", "asarray", "ones", "zeros"):
        assert hasattr(cupy, attr), attr
    assert hasattr(cupy.random, "default_rng")
    for attr in ("id", "synchronize", "__enter__", "__exit__"):
        assert hasattr(cupy.cuda.Device, attr), attr
    for attr in ("getDeviceProperties", "runtimeGetVersion", "getDeviceCount"):
        assert hasattr(cupy.cuda.runtime, attr), attr
    assert hasattr(cupy.add, "at")  # the differentiator's scatter-add for index
    assert callable(cupy.cuda.is_available)
    from cupy._core import _routines_linalg as linalg  # the TF32 switch

    compute_type = ("set_compute_type", "get_compute_type", "COMPUTE_TYPE_TF32")
    for attr in (*compute_type, "COMPUTE_TYPE_DEFAULT"):
        assert hasattr(linalg, attr), attr
    for attr in ("strides", "flags", "astype", "swapaxes", "T"):
        assert hasattr(cupy.ndarray, attr), attr
    # the keyword arguments the NumPy backend code passes to the generator
    for method in ("standard_normal", "random"):
        params = inspect.signature(getattr(cupy.random.Generator, method)).parameters
        assert {"size", "dtype"} <= set(params), (method, params)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Build ``cupy:cuda:<n>`` on the stand-in module."""
    module = FakeCupy()
    monkeypatch.setattr(cupy_backend, "probe", lambda device: None)
    monkeypatch.setattr(cupy_backend, "_set_tf32", lambda cupy, enabled: None)
    monkeypatch.setattr(cupy_backend, "_tf32", lambda cupy: False)
    monkeypatch.setattr(cupy_backend.CupyBackend, "_import_module", lambda self: module)

    def build(device: str = "cuda:0", **kwargs: Any) -> Any:
        return cupy_backend.CupyBackend(device, **kwargs)

    yield build
    DeviceArray.expected = None
    DeviceArray.misplaced.clear()


def test_permutation_is_a_seeded_permutation(fake: Any) -> None:
    be = fake(seed=3)
    p = be.to_numpy(be.permutation(50))
    assert p.dtype.kind == "i"
    np.testing.assert_array_equal(np.sort(p), np.arange(50))
    assert not np.array_equal(p, np.arange(50))
    np.testing.assert_array_equal(p, be.to_numpy(fake(seed=3).permutation(50)))
    be.seed(3)
    np.testing.assert_array_equal(p, be.to_numpy(be.permutation(50)))
    assert not np.array_equal(p, be.to_numpy(fake(seed=4).permutation(50)))


def test_every_protocol_method_uses_only_cupy_api(fake: Any) -> None:
    be = fake(seed=0)
    x = be.normal(0.0, 1.0, (6, 2))
    assert be.to_numpy(x).dtype == np.float32
    assert be.to_numpy(be.normal(1.0, 2.0, 3, dtype="float16")).dtype == np.float16
    np.testing.assert_array_equal(be.to_numpy(be.ones((2, 2))), np.ones((2, 2)))
    np.testing.assert_array_equal(be.to_numpy(be.zeros(3)), np.zeros(3))
    host = be.to_numpy(x)
    for idx in ([5, 0, 5], np.array([1, 2]), be.asarray([3, 3])):
        want = host[np.asarray(be.to_numpy(be.asarray(idx)))]
        np.testing.assert_array_equal(be.to_numpy(be.index(x, idx)), want)
    with pytest.raises(IndexError):
        be.index(x, be.asarray([0, 6]))
    np.testing.assert_allclose(be.to_numpy(be.matmul(x.T, x)), host.T @ host, rtol=1e-6)
    np.testing.assert_allclose(be.to_numpy(be.exp(x)), np.exp(host), rtol=1e-6)
    w = be.ones((2, 1))
    value, g = be.value_and_grad(lambda w: (be.index(be.matmul(x, w), [0, 1]) ** 2).sum())(w)
    want = 2 * host[:2].T @ (host[:2] @ np.ones((2, 1)))
    np.testing.assert_allclose(be.to_numpy(g), want, rtol=1e-5)
    assert be.sync(value) is value
    info = be.info()
    assert info["framework"] == "cupy" and info["device_name"] == "Fake GPU"


def test_a_second_gpu_computes_on_its_own_device(fake: Any) -> None:
    """``cupy:cuda:1`` with device 0 current: every array, every kernel on device 1."""
    DeviceArray.expected = 1
    be = fake("cuda:1", seed=0)
    x = be.normal(0.0, 1.0, (6, 2))
    w = be.ones((2, 1))
    rows = be.permutation(6)
    be.seed(1)
    picked = [be.index(x, [0, 5]), be.index(x, rows), be.index(x, np.array([1, 2]))]
    be.matmul(x, w), be.exp(x), be.zeros(2), be.asarray([1.0, 2.0])

    def loss(params: Any) -> Any:
        err = be.matmul(be.index(x, rows), params["w"]) + params["b"]
        new_ops = (be.logsumexp(err, axis=0) + be.max(be.maximum(err, 0.0))
                   + be.sum(be.clip(be.tanh(err), -0.5, 0.5)) + be.mean(be.sigmoid(err))
                   + be.sum(be.where(err > 0, be.sqrt(be.abs(err) + 1.0), 0.0)))  # fmt: skip
        return (be.exp(err) * 0.5 - err * err / 2).mean() + (err == 0).sum() + be.sum(new_ops)

    value, g = be.value_and_grad(loss)({"w": w, "b": be.zeros(1)})
    be.astype(x, "float16"), be.isfinite(x), be.min(x, axis=1)
    be.grad(lambda w: (x @ w).sum())(w)
    assert FakeDevice.current == [0]  # every context was left
    assert sorted({m.split(": ", 1)[1] for m in DeviceArray.misplaced}) == []
    assert be.to_numpy(g["w"]).shape == (2, 1) and len(picked) == 3
    # the stand-in catches what it should: an operator outside any backend call
    x.T @ x
    assert DeviceArray.misplaced and all("x.T @ x" in m for m in DeviceArray.misplaced)


def test_mixed_precision_and_the_replay_compiler_use_only_cupy_api(fake: Any) -> None:
    """float16 mixed precision, eager and replayed (mode "jit"), on cupy:cuda:1 with
    device 0 current: the same steps as NumPy's (the stand-in computes with NumPy), every
    array on device 1, and fused refused with its reason."""
    import vecx

    host = vecx.backend("numpy")
    hX, hy = vecx.synthetic_data(host, [2.0, -3.4], 4.2, 200)
    ref = vecx.fit(host, hX, hy, lr=0.03, batch_size=10, epochs=2, compute_dtype="float16")
    DeviceArray.expected = 1
    be = fake("cuda:1", seed=0)
    X, y = vecx.synthetic_data(be, [2.0, -3.4], 4.2, 200)
    for mode in ("eager", "jit"):
        h = vecx.fit(be, X, y, lr=0.03, batch_size=10, epochs=2, compute_dtype="float16",
                     mode=mode)  # fmt: skip
        np.testing.assert_allclose(h.params["w"], ref.params["w"], rtol=1e-6)
        assert (h.skipped_steps, h.loss_scale) == (ref.skipped_steps, ref.loss_scale)
    with pytest.raises(vecx.ModeUnsupported, match="refuses cuBLAS calls"):
        vecx.fit(be, X, y, lr=0.03, batch_size=10, epochs=1, mode="fused")
    assert sorted({m.split(": ", 1)[1] for m in DeviceArray.misplaced}) == []
