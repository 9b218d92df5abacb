"""The record schema: every field of a result record, its type, and one check for all.

File format (schema 1; a contract: readers and other tools rely on it)::

    {"schema": 1,
     "vecx_version": str,
     "created": str,                 # ISO-8601 UTC, e.g. "2025-01-31T12:00:00+00:00"
     "machine": {"cpu": str, "cores": int, "gpu": str | None, "driver": str | None,
                 "python": str, "platform": str, "memory_gb": float | None},
     "backends": {spec: info_dict},  # e.g. "torch:cpu": Backend.info()
     "settings": {...},              # dtype, precision, quick, seed, order, suites, ...
     "results": [record, ...]}

A record has every field of `FIELDS` (``None`` where it does not apply) and may have any
of `OPTIONAL_FIELDS`; a suite may add its own extra keys (``curve``, ``accuracy``), which
need only be JSON. ``params`` hold only what identifies the case (``n``, ``preset``,
``impl``, hyperparameters), never what a run decided for itself (``measured_n``,
``extrapolated``: extra fields), so records of two runs match on ``params``. Numbers are
finite: a failure is written as ``"error"``, never as ``NaN``, so the file is strict JSON.

`check_record` is the one place these rules are enforced: `result` (at the source, so a
bad record fails in the suite that made it), the writer (before a record reaches the
disk) and the loader (on every file read) all call it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypedDict

import numpy as np

SCHEMA_VERSION = 1

#: Header keys of a results document (besides "schema" and "results").
HEADER_KEYS: tuple[str, ...] = ("vecx_version", "created", "machine", "backends", "settings")

_NAME = (str,)
_FLOAT = (float, int)
_INT = (int,)

#: Fields every record has: name -> (accepted types, may be None, meaning).
FIELDS: dict[str, tuple[tuple[type, ...], bool, str]] = {
    "suite": (_NAME, False, "the suite's name (a built-in one, or a file's or module's)"),
    "case": (_NAME, False, "the case's name, fixed across versions"),
    "backend": (_NAME, False, "the framework's backend name (numpy, torch, jax, cupy)"),
    "device": (_NAME, False, "cpu or cuda:N"),
    "dtype": (_NAME, False, "the dtype the case computed in"),
    "params": ((dict,), False, "what identifies the case (sizes, preset, impl)"),
    "median_s": (_FLOAT, True, "median seconds per call (per epoch for training) over the blocks"),
    "iqr_s": (_FLOAT, True, "interquartile range of those seconds"),
    "first_call_s": (_FLOAT, True, "one cold first call, timed before any warm-up"),
    "n_runs": (_INT, True, "how many timed blocks the median is over"),
    "metric": ((str,), True, "what value measures: time, gflops, bandwidth, loss"),
    "value": (_FLOAT, True, "the metric's value"),
    "unit": ((str,), True, "the value's unit: s, GFLOP/s, GB/s, or empty"),
    "pct_of_ceiling": (_FLOAT, True, "value as a percentage of the measured ceiling"),
    "error": ((str,), True, "why the case produced no trustworthy number"),
}
#: Keys every record has, in this order.
RESULT_KEYS: tuple[str, ...] = tuple(FIELDS)

#: Fields a record may have, with their types (``None`` is always accepted).
OPTIONAL_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "suite_version": ((int, str), "the suite's (or workload's) version; compare needs equal"),
    "note": ((str,), "free text qualifying the number; parts joined by '; '"),
    "noisy": ((bool,), "the IQR exceeds 10% of the median"),
    "min_s": (_FLOAT, "the fastest block's seconds per call: the headline time (headline_s)"),
    "suspect": ((str,), "evidence that interference distorted the timing (run-queue wait, stalls)"),
    "samples_s": ((list,), "seconds per call of each timed block (at most 64), in order"),
    "measured_n": (_INT, "how much of a slow loop was timed before scaling"),
    "extrapolated": ((bool,), "the time was scaled up from measured_n"),
    "skipped": ((str,), "why the case was not run on this backend (not an error)"),
    "check": ((str,), "how the result was checked: reference, custom or none"),
    "check_error": (_FLOAT, "max |out - ref| / max |ref| against the float64 reference"),
    "check_tolerance": (_FLOAT, "the largest check_error allowed"),
    "source": ((str,), "file:line of a workload"),
    "agrees": ((bool,), "a training loss agrees with the other backends'"),
    "mode": ((str,), "how a training run's steps executed: eager, jit or fused"),
    "compile_s": (_FLOAT, "seconds a training run's warm-up compiled, before its clock"),
    "compiles": (_INT, "compilations of the training step (jit, fused)"),
    "break_even_steps": (_FLOAT, "steps after which a compiled mode has paid for its "
                         "compile_s against eager on the same backend and preset"),
    "compute_dtype": ((str,), "the dtype a training run's steps computed in"),
    "accumulator": ((str,), "a low-precision matmul's accumulator dtype, measured: float32 "
                    "or the matmul's own"),
    "loss_scale": (_FLOAT, "float16 mixed precision: the loss scale at the end"),
    "skipped_steps": (_INT, "float16 mixed precision: steps skipped for an inf/nan gradient"),
    "loss_vs_float32": (_FLOAT, "mixed precision: relative deviation of the final loss from "
                        "the float32 run of the same backend, preset and mode"),
    "speed_vs_float32": (_FLOAT, "mixed precision: the float32 run's time per epoch over "
                         "this one's"),
    "ceiling": ((dict,), "what pct_of_ceiling divided by"),
    "threads": (_INT, "the CPU threads the backend computed with (BLAS, intra-op)"),
    "remeasured": ((dict,), "a suspect first measurement (threads, median_s, suspect) that "
                   "this record, measured again at one thread, replaces"),
}


#: Fields that are seconds, so never negative.
TIME_FIELDS: tuple[str, ...] = ("median_s", "iqr_s", "first_call_s", "min_s", "compile_s")


class Record(TypedDict, total=False):
    """A result record as a type: the fields of `FIELDS` (and `OPTIONAL_FIELDS`)."""

    suite: str
    case: str
    backend: str
    device: str
    dtype: str
    params: dict[str, Any]
    median_s: float | None
    iqr_s: float | None
    first_call_s: float | None
    n_runs: int | None
    metric: str | None
    value: float | None
    unit: str | None
    pct_of_ceiling: float | None
    error: str | None
    suite_version: int | str
    note: str | None
    skipped: str | None


def plain(obj: Any, where: str) -> Any:
    """Turn numpy scalars/arrays (also nested) into Python values so ``json.dumps`` works."""
    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    elif isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, Mapping):
        return {str(k): plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"{where} is {obj}; record a failure in 'error' instead")
    if obj is None or isinstance(obj, (str, int, float)):
        return obj
    raise TypeError(f"{where} has type {type(obj).__name__}, which JSON cannot store")


def _type_ok(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in types:
        return False
    return isinstance(value, types)


def check_record(rec: Any, where: str = "record") -> None:
    """Raise ``ValueError`` naming ``where`` and the field if ``rec`` breaks the schema."""
    if not isinstance(rec, dict):
        raise ValueError(f"{where} is a {type(rec).__name__}, not an object")
    missing = [k for k in RESULT_KEYS if k not in rec]
    if missing:
        raise ValueError(f"{where} is missing keys {', '.join(missing)}")
    for name, (types, nullable, _) in FIELDS.items():
        value = rec[name]
        if value is None and nullable:
            continue
        if not _type_ok(value, types) or (types is _NAME and not value):
            kind = "a non-empty string" if types is _NAME else "/".join(t.__name__ for t in types)
            raise ValueError(f"{where}: {name!r} must be {kind}"
                             f"{' or null' if nullable else ''}, got {value!r}")  # fmt: skip
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{where}: {name!r} is {value}; record a failure in 'error' instead")
    for name, (types, _) in OPTIONAL_FIELDS.items():
        value = rec.get(name)
        if value is not None and not _type_ok(value, types):
            raise ValueError(f"{where}: {name!r} must be "
                             f"{'/'.join(t.__name__ for t in types)}, got {value!r}")  # fmt: skip
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{where}: {name!r} is {value}; record a failure in 'error' instead")
    for name in TIME_FIELDS:
        value = rec.get(name)
        if value is not None and value < 0:
            raise ValueError(f"{where}: {name!r} is {value}, a time cannot be negative")
    samples = rec.get("samples_s")
    if samples is not None and not all(_number(t) and t >= 0 for t in samples):
        raise ValueError(f"{where}: 'samples_s' must hold non-negative numbers of seconds")


def _scalar(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


def headline_s(rec: Mapping[str, Any], *, allow_zero: bool = False) -> float | None:
    """The time a record is read by everywhere (tables, plots, the report, compare, the
    rates suites derive): its fastest block, ``min_s``, or the median in files without
    one; None when it has neither. A zero time (a no-op timed) counts only with
    ``allow_zero`` (compare takes it; rates and log axes cannot).

    Interference only adds time, so of the statistics tried under 0, 1 and 2 competing
    processes the fastest block stayed closest to the quiet figure (bench/README.md,
    "Numbers on a busy machine"); stalls it cannot see are what ``suspect`` flags, and the
    median and IQR stay in the record beside it.
    """
    for key in ("min_s", "median_s"):
        t = rec.get(key)
        if (isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t)
                and (t > 0 or (allow_zero and t == 0))):  # fmt: skip
            return float(t)
    return None


def result(
    suite: str,
    case: str,
    backend: str,
    device: str,
    *,
    dtype: str = "float32",
    params: Mapping[str, Any] | None = None,
    median_s: float | None = None,
    iqr_s: float | None = None,
    first_call_s: float | None = None,
    n_runs: int | None = None,
    metric: str | None = None,
    value: float | None = None,
    unit: str | None = None,
    pct_of_ceiling: float | None = None,
    error: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One result record with every key of `RESULT_KEYS`, checked (`check_record`) and
    JSON-ready: numbers become Python floats, integral floats for ``n_runs`` ints."""
    if params is not None and not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict or None, got {type(params).__name__}")
    numbers = {"median_s": median_s, "iqr_s": iqr_s, "first_call_s": first_call_s,
               "value": value, "pct_of_ceiling": pct_of_ceiling}  # fmt: skip
    rec: dict[str, Any] = {
        "suite": suite, "case": case, "backend": backend, "device": device, "dtype": dtype,
        "params": plain(dict(params or {}), "params"),
    }  # fmt: skip
    for name, x in numbers.items():
        x = _scalar(x)
        if isinstance(x, bool) or (x is not None and not isinstance(x, (int, float))):
            raise TypeError(f"{name} must be a number or None, got {type(x).__name__}")
        if x is not None and not math.isfinite(x):
            raise ValueError(f"{name} is {x}; record a failure in 'error' instead")
        rec[name] = None if x is None else float(x)
    runs = _scalar(n_runs)
    if isinstance(runs, float) and runs.is_integer():
        runs = int(runs)
    if runs is not None and (isinstance(runs, bool) or not isinstance(runs, int)):
        raise TypeError(f"n_runs must be an integer or None, got {n_runs!r}")
    rec.update(n_runs=runs, metric=metric, unit=unit, error=error)
    rec = {k: rec[k] for k in RESULT_KEYS}
    for key, val in extra.items():
        rec[key] = plain(val, key)
    try:
        check_record(rec)
    except ValueError as exc:
        text = str(exc).removeprefix("record: ")
        raise (TypeError if "must be" in text and "string" not in text else ValueError)(
            text) from None  # fmt: skip
    return rec


# --------------------------------------------------------------------------- settings


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _str_or_none(x: Any) -> bool:
    return x is None or isinstance(x, str)


def _list_of(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda x: isinstance(x, list) and all(check(v) for v in x)


def _map_of(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda x: isinstance(x, dict) and all(check(v) for v in x.values())


def _ceiling(x: Any) -> bool:
    """One ceiling: what ``% of ceiling`` divides by (``value``, ``unit``, who set it)."""
    return x is None or (isinstance(x, dict) and _number(x.get("value"))
                         and isinstance(x.get("unit", ""), str))  # fmt: skip


def _is(*types: type) -> Callable[[Any], bool]:
    return lambda x: _type_ok(x, types)


#: The settings a run writes and the readers use: name -> (check, what it must be).
#: Others (a suite's own) need only be JSON.
SETTINGS_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "dtype": (_is(str), "a string"),
    "precision": (_is(str), "a string"),
    "quick": (_is(bool), "true or false"),
    "seed": (_is(int), "an integer"),
    "threads": (lambda x: x is None or _type_ok(x, (int, str)), "an integer, 'auto' or null"),
    "order": (_list_of(_is(str)), "a list of backend specs"),
    "suites": (_list_of(_is(str)), "a list of suite names"),
    "suite_versions": (_map_of(_is(int, str)), "an object of versions"),
    "baseline": (_str_or_none, "a backend name or null"),
    "timing": (_map_of(_number), "an object of numbers"),
    "env": (_map_of(_str_or_none), "an object of strings"),
    "blas": (lambda x: x is None or _list_of(_is(dict))(x), "a list of objects or null"),
    "workers": (_map_of(_is(dict)), "an object of objects"),
    "load": (_map_of(_is(dict)), "an object of objects"),
    "unavailable": (_map_of(_is(str)), "an object of reasons"),
    "ceilings": (_map_of(_map_of(_ceiling)),
                 "an object of devices, each an object of ceilings with a numeric value"),
    "agree_tolerance": (_map_of(_number), "an object of numbers"),
    "case_timeout_s": (lambda x: x is None or _number(x), "a number or null"),
    "interrupted": (_str_or_none, "a signal name or null"),
    "cases_planned": (_is(int), "an integer"),
    "cases_recorded": (_is(int), "an integer"),
    "busy": (_str_or_none, "a warning or null"),
    "partial": (_is(bool), "true or false"),
}


def check_settings(settings: Any, where: str = "settings") -> None:
    """Raise ``ValueError`` naming the key if a setting the readers use has a wrong type."""
    if not isinstance(settings, dict):
        raise ValueError(f"{where!r} must be an object")
    for name, (check, kind) in SETTINGS_FIELDS.items():
        if name in settings and not check(settings[name]):
            shown = repr(settings[name])
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise ValueError(f"{where}.{name} must be {kind}, got {shown}")
