"""Benchmark suites: named cases over one backend, each producing one checked result record.

A suite is a :class:`vecx.suites.suite.Suite` (its cases, post-processing, table and
figures in one place); a user's file of ``@vecx.workload`` functions becomes one
(:mod:`vecx.suites.workload`). This module holds what the built-in suites share.

Design rules:

* A suite imports no array framework. It uses the ``Backend`` protocol and the native
  arrays' shared operators (``+ - @``, ``x[i]``, ``x[:, j]``, ``.shape``) only. NumPy appears
  in suites solely on the host, for the float64 reference that every fast result is
  checked against: a fast wrong result is recorded as an error, never as a number.
* Every timing goes through :func:`vecx.timing.measure` with the backend's ``sync``.
* ``Suite.plan(device, *, quick, **sizes)`` says which cases will run without building a
  backend (the engine needs this to show progress and to record an error for each case
  a crashed worker never finished); ``Suite.cases(be, *, quick, seed, **sizes)`` returns
  :class:`Case` objects in the same order. Array data come from ``be``'s generator, which
  the engine reseeds with ``seed`` before each suite; ``seed`` itself serves suites that
  draw on the host (``train``, workloads).
* Case names are fixed (``vector-add``: ``loop``, ``vectorized``; ``matmul``:
  ``element``, ``column``, ``full``, ``block64``; ...) so runs compare across versions.
  Sizes are keyword arguments so tests can shrink them.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from vecx.protocol import capabilities
from vecx.results import result
from vecx.suites.suite import BUILTIN as SUITES
from vecx.timing import Measurement, Timer

#: Unit roundoff of float32 and of TF32 (10 explicit mantissa bits), for error bounds.
U_FLOAT32 = 2.0**-24
U_TF32 = 2.0**-11
#: Unit roundoff per dtype (the suites run float32; the others for completeness).
UNIT_ROUNDOFF = {"float64": 2.0**-53, "float32": U_FLOAT32, "float16": 2.0**-11,
                 "bfloat16": 2.0**-8}  # fmt: skip
#: The constant c of the probabilistic matmul error bound ``c sqrt(n) u |B||C|``.
MATMUL_C = 8.0
#: Rows of A that the scaling suite recomputes in float64 to check a matmul.
CHECK_ROWS = 8

#: ``measure()`` settings: a full run aims for tight medians, ``--quick`` for a fast answer.
TIMING_FULL: dict[str, Any] = {
    "min_run_time": 0.2,
    "max_run_time": 2.0,
    "min_blocks": 5,
    "max_blocks": 50,
    "block_time": 0.01,
    "warmup": 1,
}
TIMING_QUICK: dict[str, Any] = {
    "min_run_time": 0.02,
    "max_run_time": 0.08,
    "min_blocks": 3,
    "max_blocks": 20,
    "block_time": 0.002,
    "warmup": 1,
}


def timing_options(quick: bool) -> dict[str, Any]:
    """Keyword arguments for :func:`vecx.measure` in a full or a quick run (a copy)."""
    return dict(TIMING_QUICK if quick else TIMING_FULL)


@dataclass(frozen=True)
class Case:
    """One benchmark case: what identifies it in a run, and how to run it.

    ``params`` are the identity params (``n``, ``preset``, ``impl``), and the record that
    ``run()`` returns has exactly these params: whatever the run decided for itself
    (``measured_n``, ``extrapolated``) goes into extra record keys, so results of two
    runs match on ``params``.
    """

    suite: str
    case: str
    params: Mapping[str, Any]
    run: Callable[[], dict[str, Any]] = field(repr=False, compare=False)

    @property
    def key(self) -> str:
        return case_key(self.suite, self.case, self.params)


def case_key(suite: str, case: str, params: Mapping[str, Any]) -> str:
    """Canonical text naming a planned case (suite, case, identity params)."""
    return json.dumps([suite, case, dict(params)], sort_keys=True, separators=(",", ":"))


def plan(name: str, device: str, *, quick: bool = False, **sizes: Any) -> list[tuple[str, dict]]:
    """``[(case, identity params), ...]`` that suite ``name`` will run on ``device``.

    ``device`` is a backend spec (``"torch:cuda:0"``) or a bare device (``"cpu"``); suites
    use it to pick GPU sizes and framework-specific cases (native training for torch/jax).
    """
    from vecx.suites.suite import load

    return list(load(name).plan(device, quick=quick, **sizes))


def cases(name: str, be: Any, *, quick: bool = False, seed: int = 0, **sizes: Any) -> list[Case]:
    """The runnable cases of suite ``name`` on backend ``be``."""
    from vecx.suites.suite import load

    return list(load(name).cases(be, quick=quick, seed=seed, **sizes))


def run_case(case: Case, be: Any) -> dict[str, Any]:
    """Run one case; an exception becomes that case's error record, so the run goes on."""
    try:
        return case.run()
    except Exception as exc:  # OOM, unsupported dtype, a framework bug: record, go on
        return failed(case.suite, case.case, be, case.params, exc)
    except KeyboardInterrupt:  # raised by the case itself: workers get no terminal signals
        return failed(case.suite, case.case, be, case.params,
                      "the case raised KeyboardInterrupt")  # fmt: skip


def run_suite(
    name: str, be: Any, *, quick: bool = False, seed: int = 0, **sizes: Any
) -> Iterator[dict]:
    """Records of every case of suite ``name`` on ``be``, errors included, in plan order."""
    for case in cases(name, be, quick=quick, seed=seed, **sizes):
        yield run_case(case, be)


# --------------------------------------------------------------------------- helpers for suites


def device_kind(device: str) -> str:
    """``"cuda"`` or ``"cpu"`` from a spec (``"torch:cuda:0"``) or a device (``"cuda:0"``)."""
    return "cuda" if "cuda" in device.split(":") or device.startswith("cuda") else "cpu"


def spec_name(device: str) -> str:
    """The backend name of a spec (``"torch"`` from ``"torch:cuda:0"``), or ``""``."""
    head = device.split(":")[0]
    return "" if head in ("cpu", "cuda", "gpu") else head


def error_text(exc: BaseException | str) -> str:
    """One line naming the exception type, as records and tables show it."""
    if isinstance(exc, str):
        return exc
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def failed(
    suite: str,
    case: str,
    be: Any,
    params: Mapping[str, Any],
    exc: BaseException | str,
    dtype: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A record for a case that produced no trustworthy number."""
    return result(
        suite,
        case,
        be.name,
        be.device,
        dtype=dtype or be.dtype,
        params=dict(params),
        error=error_text(exc),
        **extra,
    )


#: ``timed(first_call_s=...)`` default: the measurement's own first call.
MEASURED = object()


def timed(
    suite: str,
    case: str,
    be: Any,
    m: Measurement,
    *,
    params: Mapping[str, Any],
    metric: str,
    value: float,
    unit: str,
    scale: float = 1.0,
    first_call_s: Any = MEASURED,
    dtype: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A record from a measurement (in ``dtype``, default the backend's); ``scale``
    multiplies the steady-state times
    (``median_s``, ``iqr_s``, ``min_s``, ``samples_s``: extrapolation), never the first
    call.

    ``first_call_s`` is ``m.first_call_s`` unless given (a float, or ``None`` when no
    honest first call exists): a first call is one cold call, compilation included, and
    scaling it would multiply a one-off cost as if it were paid per element.
    """
    first = m.first_call_s if first_call_s is MEASURED else first_call_s
    return result(
        suite,
        case,
        be.name,
        be.device,
        dtype=dtype or be.dtype,
        params=dict(params),
        median_s=m.median * scale,
        iqr_s=m.iqr * scale,
        first_call_s=first,
        n_runs=m.n_runs,
        metric=metric,
        value=value,
        unit=unit,
        noisy=m.warning,
        min_s=m.min * scale,
        samples_s=kept_samples(m.times, scale),
        suspect=m.suspect,
        **extra,
    )


#: At most this many per-call samples are kept in a record (an evenly spaced subset).
MAX_SAMPLES = 64


def kept_samples(times: Any, scale: float = 1.0) -> list[float]:
    """A measurement's per-call times (one per block), scaled, at most `MAX_SAMPLES` of
    them, in the order measured: what ``vecx compare`` tests two runs' difference on."""
    times = [float(t) * scale for t in times]
    if len(times) <= MAX_SAMPLES:
        return times
    step = len(times) / MAX_SAMPLES
    return [times[int(i * step)] for i in range(MAX_SAMPLES)]


def cold_first_call(
    run_range: Callable[[Any, int, int], Any],
    state: Any,
    total: int,
    *,
    chunk: int,
    deadline_s: float,
    be: Any,
) -> float | None:
    """Seconds of the first, cold run of a loop over ``total`` units, or ``None``.

    ``state = run_range(state, start, stop)`` runs units ``start .. stop - 1`` (the loop
    being benchmarked, cut into ranges of ``chunk`` units). This is the loop's first call:
    it must run before any pilot or warm-up, so that compilation, kernel loading and cold
    caches land in it. A loop that would take minutes (JAX's copying loops) is stopped
    once ``deadline_s`` has passed after a chunk; its first call is then unknown (``None``),
    never extrapolated. The clock is read through :class:`vecx.Timer`, synchronised on
    the loop's latest state.
    """
    timer = Timer(sync=lambda: be.sync(state))
    start = time.perf_counter()  # only a budget check: the measurement is the Timer's
    done = 0
    while done < total:
        stop = min(total, done + chunk)
        state = run_range(state, done, stop)
        done = stop
        if done < total and time.perf_counter() - start > deadline_s:
            be.sync(state)  # let the abandoned work finish before anything else is timed
            return None
    return timer.stop()


def writer(be: Any) -> Callable[[Any, Any, Any], Any]:
    """``write(x, index, value)`` for ``be``'s arrays: ``x[index] = value`` in place, or
    ``x.at[index].set(value)`` where arrays are immutable (JAX), per the backend's
    declared capabilities.

    The protocol has no write primitive on purpose (JAX arrays are immutable). NumPy,
    PyTorch and CuPy arrays are written in place and returned; a JAX array is copied with
    the element replaced, which is what d2l's loops cost a JAX user.
    """
    if writes_by_copy(be):
        return _write_copy
    return _write_in_place


def _write_in_place(x: Any, index: Any, value: Any) -> Any:
    x[index] = value
    return x


def _write_copy(x: Any, index: Any, value: Any) -> Any:
    return x.at[index].set(value)


def writes_by_copy(be: Any) -> bool:
    """True when writing into ``be``'s arrays has to copy them (JAX)."""
    return capabilities(be).immutable_arrays


def unit_roundoff(dtype: str = "float32", precision: str = "float32") -> float:
    """``u`` of the arithmetic in force: the dtype's, or TF32's (2^-11) when a float32
    run opted into ``precision="tf32"`` (inputs rounded to 10 mantissa bits)."""
    u = UNIT_ROUNDOFF.get(dtype, U_FLOAT32)
    return max(u, U_TF32) if precision == "tf32" else u


def matmul_bound(abs_b: Any, abs_c: Any, k: int, u: float) -> Any:
    """Elementwise error bound ``c sqrt(k) u (|B| |C|)`` of a float matmul (NumPy arrays).

    A probabilistic bound (Higham and Mary, 2019): rounding errors of a length-``k`` dot
    product behave like a random walk, so they grow like ``sqrt(k) u``, not like the
    worst case ``k u``. The worst case cannot catch anything that matters at large
    sizes: with ``k u``, a result 1% off or computed from TF32- or bf16-rounded inputs
    passed at n = 1024 and 2048. Measured with ``c = 8`` on N(0, 1) float32 inputs,
    n = 64 ... 2048, NumPy, PyTorch and JAX on a CPU: correct results stay below 0.07 of
    the bound on every element; 0.99 BC exceeds it by 59x or more, bf16-rounded inputs
    by 14x or more, TF32-rounded inputs by 3.6-4.3x at n = 1024 and about 2x at 2048
    (that margin shrinks like 1/n, hence :func:`tf32_sentinel` for larger sizes).
    """
    return MATMUL_C * math.sqrt(k) * u * (abs_b @ abs_c) + 1e-30


def tf32_sentinel(be: Any, size: int) -> str | None:
    """None if ``be.matmul`` computes float32 products in float32, else the reason.

    Multiplies two ``size`` x ``size`` matrices of ``1 + 2^-12``: every product is
    ``1 + 2^-11`` (rounded to float32) and every partial sum ``m (1 + 2^-11)`` is exact
    for ``size <= 2^13``, so any float32 matmul, whatever its summation order, returns
    exactly ``size (1 + 2^-11)``; with inputs rounded to TF32 or bf16, ``1 + 2^-12``
    becomes 1 and the result is ``size``. Only meaningful for float32 runs whose
    precision is ``"float32"``.
    """
    import numpy as np

    size = min(int(size), 2**13)
    s = be.asarray(np.full((size, size), 1.0 + 2.0**-12, np.float32))
    got = np.asarray(be.to_numpy(be.matmul(s, s)), np.float64)
    expected = size * (1.0 + 2.0**-11)
    err = float(np.max(np.abs(got - expected)))
    if err > size * 2.0**-13:  # a quarter of what TF32 input rounding does
        return (
            f"wrong result: float32 matmul is not computed in float32 (a {size}x{size} "
            f"product of 1 + 2^-12 is off by {err:.3g}, as with TF32/bf16 inputs; "
            f"expected {expected:.6g})"
        )
    return None


def check_within(got: Any, ref: Any, bound: Any, what: str) -> str | None:
    """None if ``|got - ref| <= bound`` everywhere (NumPy arrays), else a one-line reason."""
    import numpy as np

    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        return f"wrong result: {what} has shape {got.shape}, expected {ref.shape}"
    if not np.all(np.isfinite(got)):
        return f"wrong result: {what} has non-finite values"
    excess = np.abs(got - ref) - np.asarray(bound, dtype=np.float64)
    if np.any(excess > 0):
        i = int(np.argmax(excess))
        err = float(np.abs(got - ref).ravel()[i])
        lim = float(np.broadcast_to(bound, ref.shape).ravel()[i])
        return (
            f"wrong result: {what} differs from the float64 reference by {err:.3g} "
            f"(allowed {lim:.3g}) at flat index {i}"
        )
    return None


def log2_sizes(lo: int, hi: int, step: int = 1) -> list[int]:
    """``[2**lo, 2**(lo+step), ..., 2**hi]``."""
    return [2**e for e in range(lo, hi + 1, step)]


__all__ = [
    "SUITES",
    "TIMING_FULL",
    "TIMING_QUICK",
    "Case",
    "case_key",
    "cases",
    "check_within",
    "cold_first_call",
    "failed",
    "matmul_bound",
    "plan",
    "run_case",
    "run_suite",
    "tf32_sentinel",
    "timed",
    "timing_options",
    "unit_roundoff",
    "writer",
    "writes_by_copy",
]
