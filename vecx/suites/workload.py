"""Benchmark your own code: ``@vecx.workload`` and the suite a file of workloads becomes.

::

    @vecx.workload(sizes=[64, 256, 1024], flops=lambda n: 2 * n**3)
    def square_matmul(be, n, rng):
        a = be.asarray(rng.standard_normal((n, n)))
        b = be.asarray(rng.standard_normal((n, n)))
        return lambda: be.matmul(a, b)          # the call that is timed

The contract:

* The function gets a backend, one value per size parameter (``n``) and ``rng``, a host
  NumPy generator seeded from the run's seed, the workload's name and its parameters, so
  every backend sees the same data. Everything before ``return`` is setup, not timed; the
  returned function of no arguments is timed by :func:`vecx.measure` (synchronised, first
  call apart, repeated, spread reported).
* The output of the last timed call is checked against the same workload run once on the
  NumPy backend in float64: ``max |out - ref| / max |ref|`` (over every array of the
  output) must stay within ``4 sqrt(eps)`` of the workload's dtype (scipy's
  ``xp_assert_close`` default: 1.4e-3 for float32, 2.1e-7 for float64); integers and
  booleans must match exactly. The error is recorded (``check_error``); a result outside
  the tolerance is recorded as an error ("fast but wrong"), never as a number.
  ``check=callable(out, ref)`` replaces the comparison (host arrays; return ``None`` or
  ``True`` when right, ``False`` or a reason when wrong); ``check=None`` turns it off for
  outputs that legitimately differ, and the record says so.
* ``flops=`` or ``bytes=`` (functions of the size parameters) make the metric GFLOP/s or
  GB/s; without either it is the time (the fastest block, `Measurement.headline`).
* ``sizes`` is a list (the parameter ``n``) or ``{"name": [values], ...}`` (every
  combination); ``quick_sizes`` the same for ``--quick`` (default: ``sizes``);
  ``dtype`` the backend dtype the workload runs in (default float32); ``skip`` maps a
  backend name or spec to the reason it cannot run there (or is ``callable(be)`` returning
  a reason or ``None``): the record says "skipped" with the reason.
* A workload's ``suite_version`` is a hash of its source (or ``version=``), so
  ``vecx compare`` never matches a changed workload with its old self.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import math
import traceback
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vecx.protocol import DTYPES
from vecx.pytree import leaves
from vecx.suites import Case, error_text, failed, timed, timing_options
from vecx.suites.suite import Suite
from vecx.timing import measure

#: ``check=`` default: compare with the NumPy float64 run.
REFERENCE = "reference"
#: Tolerance factor on ``sqrt(eps)`` of the dtype (as scipy's ``xp_assert_close``).
RTOL_FACTOR = 4.0
_EPS = {"float64": 2.0**-52, "float32": 2.0**-23, "float16": 2.0**-10, "bfloat16": 2.0**-7}


def tolerance(dtype: str) -> float:
    """Allowed ``max |out - ref| / max |ref|`` for a workload computing in ``dtype``."""
    return RTOL_FACTOR * math.sqrt(_EPS.get(dtype, _EPS["float32"]))


@dataclass(frozen=True)
class Workload:
    """A function to benchmark on every backend, as `workload` declares it."""

    fn: Callable[..., Any]
    name: str
    sizes: tuple[dict[str, Any], ...]
    quick_sizes: tuple[dict[str, Any], ...]
    flops: Callable[..., float] | None = None
    bytes: Callable[..., float] | None = None
    dtype: str = "float32"
    check: Any = REFERENCE
    skip: Any = None
    version: str = "1"
    source: str | None = None  # "path/mybench.py:12"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The decorated function itself, unchanged (usable outside vecx bench too)."""
        return self.fn(*args, **kwargs)

    def skip_reason(self, be: Any) -> str | None:
        if self.skip is None:
            return None
        if callable(self.skip):
            reason = self.skip(be)
            return None if reason is None or reason is False else str(reason)
        for key in (getattr(be, "spec", ""), be.name):
            if key in self.skip:
                return str(self.skip[key])
        return None


def workload(
    fn: Callable[..., Any] | None = None,
    *,
    sizes: Sequence[Any] | Mapping[str, Sequence[Any]],
    flops: Callable[..., float] | None = None,
    bytes: Callable[..., float] | None = None,  # noqa: A002 - the contract's name
    dtype: str = "float32",
    quick_sizes: Sequence[Any] | Mapping[str, Sequence[Any]] | None = None,
    check: Any = REFERENCE,
    skip: Mapping[str, str] | Callable[[Any], str | None] | None = None,
    name: str | None = None,
    version: str | int | None = None,
) -> Any:
    """Declare ``fn(be, <size params>, rng)`` a workload (see the module docstring).

    Bad declarations are a ``TypeError`` or ``ValueError`` here, at import of the file,
    naming the workload.
    """

    def declare(f: Callable[..., Any]) -> Workload:
        label = name or getattr(f, "__name__", None)
        if not callable(f) or not label:
            raise TypeError(f"@vecx.workload decorates a function, got {f!r}")
        grid = _grid(label, "sizes", sizes)
        quick = _grid(label, "quick_sizes", quick_sizes) if quick_sizes is not None else grid
        if flops is not None and bytes is not None:
            raise ValueError(f"workload {label}: give flops= or bytes=, not both")
        for what, value in (("flops", flops), ("bytes", bytes)):
            if value is not None and not callable(value):
                raise TypeError(f"workload {label}: {what}= must be a function of the sizes")
        if dtype not in DTYPES:
            raise ValueError(f"workload {label}: unknown dtype {dtype!r}; choose from "
                             f"{', '.join(DTYPES)}")  # fmt: skip
        if not (check is None or check == REFERENCE or callable(check)):
            raise TypeError(f"workload {label}: check= is None, a function or "
                            f"{REFERENCE!r}, got {check!r}")  # fmt: skip
        if skip is not None and not (callable(skip) or isinstance(skip, Mapping)):
            raise TypeError(f"workload {label}: skip= maps backends to reasons, or is a "
                            "function of the backend")  # fmt: skip
        if isinstance(skip, Mapping):
            _check_skip(str(label), skip)
        for what, work in (("flops", flops), ("bytes", bytes)):
            if work is not None:
                _check_work(str(label), what, work, grid + quick)
        return Workload(f, str(label), grid, quick, flops, bytes, dtype, check, skip,
                        str(version) if version is not None else _source_hash(f),
                        _where(f))  # fmt: skip

    return declare if fn is None else declare(fn)


def _grid(label: str, what: str, sizes: Any) -> tuple[dict[str, Any], ...]:
    if isinstance(sizes, Mapping):
        keys = [str(k) for k in sizes]
        values = [list(v) if isinstance(v, (list, tuple, range)) else [v] for v in sizes.values()]
    elif isinstance(sizes, (list, tuple, range)):
        keys, values = ["n"], [list(sizes)]
    else:
        raise TypeError(f"workload {label}: {what}= is a list of sizes or a dict of lists, "
                        f"got {type(sizes).__name__}")  # fmt: skip
    if not keys or any(not v for v in values):
        raise ValueError(f"workload {label}: {what}= is empty")
    for v in itertools.chain.from_iterable(values):
        if not isinstance(v, (int, float, str, bool)) or (isinstance(v, float) and not
                                                           math.isfinite(v)):  # fmt: skip
            raise TypeError(f"workload {label}: {what}= holds {v!r}; sizes are numbers or "
                            "strings (they are recorded in the results)")  # fmt: skip
    return tuple(dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values))


def _check_skip(label: str, skip: Mapping[str, str]) -> None:
    """Every key of ``skip=`` names a known backend or spec (a typo must not run anyway)."""
    from vecx.registry import entries, parse_spec

    for key in skip:
        try:
            parse_spec(str(key))
        except ValueError:
            raise ValueError(f"workload {label}: skip= names unknown backend {key!r}; choose "
                             f"from {', '.join(entries())}") from None  # fmt: skip


def _check_work(label: str, what: str, work: Callable[..., float], grid: Sequence[dict]) -> None:
    """``flops=``/``bytes=`` give a positive finite number for every size, checked now."""
    for params in grid:
        try:
            value = float(work(**params))
        except Exception as exc:
            raise TypeError(f"workload {label}: {what}= fails for {params}: "
                            f"{error_text(exc)}") from None  # fmt: skip
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"workload {label}: {what}= gives {value} for {params}; it must "
                             "be a positive number")  # fmt: skip


def _source_hash(fn: Callable[..., Any]) -> str:
    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):
        return "1"
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]


def _where(fn: Callable[..., Any]) -> str | None:
    code = getattr(fn, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code is not None else None


# --------------------------------------------------------------------------- the suite


class WorkloadSuite(Suite):
    """The suite of a file or module of workloads, presented generically."""

    def __init__(self, name: str, workloads: Sequence[Workload], source: str | None) -> None:
        from vecx.suites.suite import SuiteError

        self.name = name
        self.workloads = list(workloads)
        names = [w.name for w in self.workloads]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise SuiteError(f"{source or name}: two workloads are named {twice[0]!r}; give one "
                             "another name (name=...)")  # fmt: skip
        self.source = source
        self.case_names = tuple(w.name for w in self.workloads)
        self.description = f"{len(self.workloads)} workload(s) from {source or name}"
        self._reference: Any = None

    def plan(self, device: str, *, quick: bool = False, **sizes: Any) -> list[tuple[str, dict]]:
        return [(w.name, dict(p)) for w in self.workloads
                for p in (w.quick_sizes if quick else w.sizes)]  # fmt: skip

    def cases(self, be: Any, *, quick: bool = False, seed: int = 0, **sizes: Any) -> list[Case]:
        opts = dict(sizes.get("timing") or timing_options(quick))
        by_name = {w.name: w for w in self.workloads}
        return [
            Case(self.name, case, params,
                 lambda w=by_name[case], p=params: self._run(w, be, p, seed, opts))
            for case, params in self.plan(be.spec, quick=quick)
        ]  # fmt: skip

    def reference_backend(self, seed: int) -> Any:
        if self._reference is None:
            from vecx.registry import backend

            self._reference = backend("numpy", dtype="float64", seed=seed)
        return self._reference

    def _run(self, w: Workload, be: Any, params: dict[str, Any], seed: int,
             opts: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
        how = {"suite_version": w.version, "source": w.source}
        reason = w.skip_reason(be)
        if reason:
            from vecx.results import result

            return result(self.name, w.name, be.name, be.device, dtype=w.dtype, params=params,
                          skipped=reason, **how)  # fmt: skip
        try:
            return self._measured(w, be, params, seed, opts, how)
        except Exception as exc:
            return failed(self.name, w.name, be, params, _at(exc, w), **how)

    def _measured(self, w: Workload, be: Any, params: dict[str, Any], seed: int,
                  opts: dict[str, Any], how: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
        wbe = be
        if w.dtype != be.dtype:
            from vecx.protocol import UnsupportedDtype
            from vecx.registry import backend

            try:
                wbe = backend(be.spec, dtype=w.dtype, seed=seed,
                              precision=getattr(be, "precision", "float32"))  # fmt: skip
            except UnsupportedDtype as exc:  # a limit of the backend, not a failure
                from vecx.results import result

                return result(self.name, w.name, be.name, be.device, dtype=w.dtype,
                              params=params, skipped=str(exc), **how)  # fmt: skip
        call = _timed_call(w, wbe, params, seed)
        meas = measure(call, wbe, label=f"{self.name} {w.name}", **opts)
        checked: dict[str, Any] = {"check": "none" if w.check is None else (
            "custom" if callable(w.check) else REFERENCE)}  # fmt: skip
        note = None
        if w.check is None:
            note = "not checked: the workload declares check=None"
        else:
            got = _host(wbe, meas.output)
            ref_call = _timed_call(w, self.reference_backend(seed), params, seed)
            ref = _host(self.reference_backend(seed), ref_call())
            if w.check == REFERENCE and not leaves(got) and not leaves(ref):
                checked["check"] = "none"  # None (or an empty tuple): nothing to compare
                note = ("not checked: the timed call returns no array (return its result "
                        "to have it checked against the NumPy float64 reference)")  # fmt: skip
            else:
                error, problem = _compare(w, got, ref)
                checked.update(check_error=error, check_tolerance=None if callable(w.check)
                               else tolerance(w.dtype))  # fmt: skip
                if problem:
                    return failed(self.name, w.name, wbe, params, problem, **how, **checked)
        best = meas.headline
        if w.flops is not None:
            metric, unit, value = "gflops", "GFLOP/s", float(w.flops(**params)) / best / 1e9
        elif w.bytes is not None:
            metric, unit, value = "bandwidth", "GB/s", float(w.bytes(**params)) / best / 1e9
        else:
            metric, unit, value = "time", "s", best
        return timed(self.name, w.name, wbe, meas, params=params, metric=metric, value=value,
                     unit=unit, note=note, **how, **checked)  # fmt: skip


def _timed_call(w: Workload, be: Any, params: Mapping[str, Any], seed: int) -> Callable[[], Any]:
    """Run the workload's setup on ``be`` with its seeded host generator; the call to time."""
    key = json.dumps(dict(params), sort_keys=True, default=str)
    rng = np.random.default_rng([seed, zlib.crc32(w.name.encode()), zlib.crc32(key.encode())])
    call = w.fn(be, **params, rng=rng)
    if not callable(call):
        raise TypeError(
            f"workload {w.name} must return the call to time (a function of no arguments), "
            f"got {type(call).__name__}"
        )
    return call


def _host(be: Any, out: Any) -> Any:
    """The output as host NumPy arrays (a pytree of them for tuples, lists and dicts)."""
    from vecx.pytree import tree_map

    def convert(x: Any) -> Any:
        if isinstance(x, (bool, int, float, complex, np.generic, np.ndarray)):
            return np.asarray(x)
        return np.asarray(be.to_numpy(x))

    return tree_map(convert, out)


def _compare(w: Workload, got: Any, ref: Any) -> tuple[float | None, str | None]:
    """``(error, problem)``: the recorded error and, if the result is wrong, why."""
    if callable(w.check):
        verdict = w.check(got, ref)
        if verdict is None or verdict is True:
            return None, None
        why = "the workload's check failed" if verdict is False else str(verdict)
        return None, f"wrong result: {w.name}: {why}"
    from vecx.pytree import leaves, structure

    if structure(got) != structure(ref):
        return None, (f"wrong result: {w.name} returned a different structure than the NumPy "
                      "float64 reference")  # fmt: skip
    worst = 0.0
    for g, r in zip(leaves(got), leaves(ref), strict=True):
        g, r = np.asarray(g), np.asarray(r)
        if g.shape != r.shape:
            return None, f"wrong result: {w.name} has shape {g.shape}, expected {r.shape}"
        if r.dtype.kind in "biu":
            bad = int(np.count_nonzero(g != r))
            if bad:
                return None, (f"wrong result: {w.name} differs from the NumPy reference in "
                              f"{bad} of {r.size} integer elements")  # fmt: skip
            continue
        g64, r64 = g.astype(np.float64), r.astype(np.float64)
        g_ok, finite = np.isfinite(g64), np.isfinite(r64)
        if (~g_ok & finite).any():
            return None, (f"wrong result: {w.name} has non-finite values where the reference "
                          "has none")  # fmt: skip
        if (g_ok & ~finite).any():
            return None, (f"wrong result: {w.name} is finite where the NumPy float64 "
                          "reference is not (check=None or check=f if that is right)")  # fmt: skip
        if not np.array_equal(np.isposinf(g64), np.isposinf(r64)):
            return None, f"wrong result: {w.name} has other infinities than the reference"
        if not finite.any():
            if g64.size:
                return None, (f"wrong result: {w.name} is all NaN or infinite (so is the "
                              "reference): nothing was computed to check")  # fmt: skip
            continue
        scale = float(np.max(np.abs(r64[finite])))
        diff = float(np.max(np.abs(g64[finite] - r64[finite])))
        worst = max(worst, diff / scale if scale > 0 else diff)
    tol = tolerance(w.dtype)
    if worst > tol:
        return worst, (f"wrong result: {w.name} differs from the NumPy float64 reference by "
                       f"{worst:.3g} (max |error| / max |reference|; allowed {tol:.3g} for "
                       f"{w.dtype})")  # fmt: skip
    return worst, None


def _at(exc: BaseException, w: Workload) -> str:
    """The error with the line of the workload's file it came from."""
    text = error_text(exc)
    path = (w.source or "").rsplit(":", 1)[0]
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if path and frame.filename == path:
            return f"{text} (at {frame.filename}:{frame.lineno})"
    return text


__all__ = ["REFERENCE", "Workload", "WorkloadSuite", "tolerance", "workload"]
