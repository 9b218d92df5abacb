"""Every reported time includes the device work: the suites and ``vecx.fit`` on a fake
asynchronous backend.

The fake is NumPy with a device queue bolted on. Every operation (each backend method
call, and each operator or index on its arrays: ``a + b``, ``-x``, ``a[i]``, ``c[i] = v``)
returns at once and queues ``WORK`` seconds of "device work" on one serial queue; only
``sync`` (and ``to_numpy``, which reads the result) waits that work out. A time measured
without synchronising is therefore the host's launch cost alone, far below the queued
work, and each assertion below (reported time >= queued work per call) fails.

Two queue semantics are covered: ``device`` (``sync()`` waits for everything queued, as
``torch.cuda.synchronize``) and ``output`` (``sync()`` does nothing, ``sync(x)`` waits
for ``x`` and hence for the work queued before it, as JAX's ``block_until_ready``), so a
sync that forgets to pass the latest output fails too.

Checked by hand when this file was written: with ``measure(fn, None)`` in a suite, with
the trainer's ``Timer`` built without ``sync``, or with ``cold_first_call`` reading the
clock unsynchronised, these tests fail.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pytest

import vecx
from vecx.suites import run_suite

#: Seconds of device work queued per operation: far above the host cost of launching one
#: (a few microseconds), so a time that skipped the sync misses nearly all of it.
WORK = 2e-4

FAST = {"min_run_time": 0.002, "max_run_time": 0.01, "min_blocks": 2, "max_blocks": 5,
        "block_time": 0.0005, "warmup": 0}  # fmt: skip


class Device:
    """One serial queue: an operation finishes ``WORK`` after the later of now and the
    previous operation's end."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.due = 0.0
        self.launches = 0

    def launch(self) -> float:
        self.launches += 1
        self.due = max(self.due, time.perf_counter()) + WORK
        return self.due

    @staticmethod
    def wait(until: float) -> None:
        while (left := until - time.perf_counter()) > 0:
            time.sleep(left)


_device: Device | None = None  # the queue AsyncArray operations go to (set per test)


def _launch() -> float:
    assert _device is not None
    return _device.launch()


class AsyncArray(np.ndarray):
    """A NumPy array whose operators and indexing queue device work; ``due`` is when the
    value is ready on the fake device."""

    due: float = 0.0

    def __array_finalize__(self, obj: Any) -> None:
        self.due = getattr(obj, "due", 0.0)  # views (reshape, .T) share the value's due

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        args = [_plain(x) for x in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(_plain(x) for x in kwargs["out"])
        out = getattr(ufunc, method)(*args, **kwargs)
        return _wrap(out, _launch())

    def __getitem__(self, idx: Any) -> Any:
        out = np.asarray(self)[idx]
        return _wrap(out, _launch())

    def __setitem__(self, idx: Any, value: Any) -> None:
        np.asarray(self)[idx] = _plain(value)
        self.due = _launch()


def _plain(x: Any) -> Any:
    """``x`` with every AsyncArray (also inside tuples, lists, dicts) as a plain ndarray."""
    if isinstance(x, AsyncArray):
        return x.view(np.ndarray)
    if isinstance(x, (tuple, list)):
        return type(x)(_plain(v) for v in x)
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x


def _wrap(x: Any, due: float) -> Any:
    """Arrays in ``x`` as AsyncArrays ready at ``due`` (scalars stay scalars)."""
    if isinstance(x, np.ndarray):
        out = x.view(AsyncArray)
        out.due = due
        return out
    if isinstance(x, (tuple, list)):
        return type(x)(_wrap(v, due) for v in x)
    if isinstance(x, dict):
        return {k: _wrap(v, due) for k, v in x.items()}
    return x


def _due(x: Any) -> float:
    """When every array in ``x`` is ready (0 for anything that is no device array)."""
    if isinstance(x, AsyncArray):
        return x.due
    if isinstance(x, (tuple, list)):
        return max((_due(v) for v in x), default=0.0)
    if isinstance(x, dict):
        return max((_due(v) for v in x.values()), default=0.0)
    return 0.0


class AsyncNumpy:
    """The numpy backend behind a fake asynchronous device (see the module docstring)."""

    OPS = ("ones", "zeros", "asarray", "normal", "permutation", "matmul", "index", "exp")
    TRANSFORMS = ("grad", "value_and_grad", "jit")

    def __init__(self, device: Device) -> None:
        self._be = vecx.backend("numpy")
        self.queue = device

    def _op(self, fn: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            out = fn(*_plain(args), **_plain(kwargs))
            return _wrap(out, self.queue.launch())

        return call

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._be, name)
        if name in self.OPS:
            return self._op(attr)
        if name in self.TRANSFORMS:
            return lambda f, *a, **k: self._op(attr(f, *a, **k))
        return attr

    def to_numpy(self, x: Any) -> Any:
        Device.wait(_due(x))  # reading a value waits for it, as on a real device
        return self._be.to_numpy(_plain(x))

    def sync(self, x: Any = None) -> Any:
        if self.queue.mode == "device":
            Device.wait(self.queue.due)
        elif x is not None:
            Device.wait(_due(x))
        return x


@pytest.fixture(params=["device", "output"])
def be(request):
    global _device
    _device = Device(request.param)
    try:
        yield AsyncNumpy(_device)
    finally:
        _device = None


def _launch_cost() -> float:
    """What a fake operation costs the host when nobody waits: must be far below WORK,
    or the assertions below could pass without any sync."""
    global _device
    saved, _device = _device, Device("device")
    try:
        a = np.zeros(64, np.float32).view(AsyncArray)
        t0 = time.perf_counter()
        for i in range(200):
            a[i % 64] = a[i % 64] + a[(i + 1) % 64]
        return (time.perf_counter() - t0) / 600
    finally:
        _device = saved


def test_the_fake_device_is_asynchronous():
    assert _launch_cost() < WORK / 3


def _check(rec: dict[str, Any], ops_per_call: int) -> None:
    """The reported (fastest block) time and the first call include at least the work of
    ``ops_per_call``."""
    assert rec["error"] is None, rec["error"]
    floor = ops_per_call * WORK
    assert rec["min_s"] >= floor, (rec["suite"], rec["case"], rec["min_s"], floor)
    if rec["first_call_s"] is not None:
        assert rec["first_call_s"] >= floor, (rec["suite"], rec["case"], rec["first_call_s"])


@pytest.mark.parametrize("budget", [10.0, 0.01], ids=["whole-loop", "extrapolated"])
def test_vector_add_times_include_the_device_work(be, budget):
    n = 64
    loop, vec = run_suite("vector-add", be, n=n, loop_budget_s=budget, timing=FAST)
    assert loop["extrapolated"] is (budget < 1)
    _check(loop, n)  # at least one write per element, for all n (scaled when extrapolated)
    _check(vec, 1)


def test_matmul_times_include_the_device_work(be):
    n = 8
    recs = {r["case"]: r for r in run_suite("matmul", be, n=n, loop_budget_s=10.0, timing=FAST)}
    _check(recs["element"], n * n)  # one dot product per element
    _check(recs["column"], n)  # one matrix-vector product per column
    _check(recs["full"], 1)
    _check(recs["block64"], math.ceil(n / 64))
    for rec in recs.values():  # GFLOP/s is computed from the synchronised time
        assert rec["value"] == pytest.approx(2 * n**3 / rec["min_s"] / 1e9)


def test_scaling_times_include_the_device_work(be):
    recs = list(run_suite("scaling", be, vector_sizes=[64], matmul_sizes=[8], timing=FAST))
    assert [r["case"] for r in recs] == ["vector-add", "copy", "matmul"]
    for rec in recs:
        _check(rec, 1)


def _steps_per_epoch(examples: int, epochs: int, batch_size: int) -> int:
    return math.ceil(examples / epochs / batch_size)


def test_train_suite_epoch_time_includes_the_device_work(be):
    recs = list(run_suite("train", be, presets=["linreg", "airfoil-mb100"], repeats=1,
                          overrides={"linreg": {"epochs": 1}, "airfoil-mb100": {"epochs": 1}}))
    assert [r["case"] for r in recs] == ["linreg", "airfoil-mb100"]
    for rec in recs:
        p = rec["params"]
        steps = _steps_per_epoch(rec["curve"]["examples"][-1], p["epochs"], p["batch_size"])
        assert rec["error"] is None, rec["error"]
        assert rec["median_s"] >= steps * WORK, (rec["case"], rec["median_s"], steps)
        assert rec["curve"]["times"][-1] >= steps * p["epochs"] * WORK


def test_fit_times_include_the_device_work(be):
    rng = np.random.default_rng(0)
    X = be.asarray(rng.standard_normal((200, 2)).astype(np.float32))
    y = be.asarray(rng.standard_normal((200, 1)).astype(np.float32))
    h = vecx.fit(be, X, y, lr=0.03, batch_size=10, epochs=2, log_every=100)
    steps = 200 // 10
    assert h.epoch_time >= steps * WORK
    assert h.times[-1] >= 2 * steps * WORK
    for k, t in zip(h.examples, h.times, strict=True):  # every checkpoint, cumulatively
        assert t >= (k // 10) * WORK
