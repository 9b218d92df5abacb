"""Benchmark results: one JSON file per ``vecx bench`` run, streamed to disk, and compared.

File format (schema 1; a contract: readers and other tools rely on it)::

    {"schema": 1,
     "vecx_version": str,
     "created": str,                 # ISO-8601 UTC, e.g. "2025-01-31T12:00:00+00:00"
     "machine": {"cpu": str, "cores": int, "gpu": str | None, "driver": str | None,
                 "python": str, "platform": str, "memory_gb": float | None},
     "backends": {spec: info_dict},  # e.g. "torch:cpu": Backend.info()
     "settings": {...},              # dtype, precision, quick, threads, plus runtime_settings()
     "results": [record, ...]}

Every record has all of `RESULT_KEYS` (``None`` where it does not apply)::

    {"suite": str, "case": str, "backend": str, "device": str, "dtype": str, "params": dict,
     "median_s": float | None, "iqr_s": float | None, "first_call_s": float | None,
     "n_runs": int | None, "metric": str | None, "value": float | None, "unit": str | None,
     "pct_of_ceiling": float | None, "error": str | None}

and may carry extra keys (e.g. ``"note"``, ``"curve"``, ``"measured_n"``,
``"extrapolated"``). ``params`` hold only what identifies the case (``n``, ``preset``,
``impl``, hyperparameters), never what a run decided for itself, such as how much of a
slow loop it timed (``measured_n``, ``extrapolated``: extra keys), so records of two runs
match on ``params``. Numbers are finite: a failure is written as ``"error"``, never as
``NaN``, so the file is strict JSON.

Writing is crash-tolerant: `ResultWriter` appends each finished record as one line to
``<path>.partial.jsonl`` (fsynced) and only `ResultWriter.finish` produces ``<path>``,
atomically. A run killed half-way keeps every completed case; `ResultWriter.recover` reads it.

This module imports no array framework; framework details come from backends' ``info()``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vecx.environment import ENV_VARS, machine_info, runtime_settings

SCHEMA_VERSION = 1

#: Keys every result record has, in this order.
RESULT_KEYS: tuple[str, ...] = (
    "suite",
    "case",
    "backend",
    "device",
    "dtype",
    "params",
    "median_s",
    "iqr_s",
    "first_call_s",
    "n_runs",
    "metric",
    "value",
    "unit",
    "pct_of_ceiling",
    "error",
)

#: Header keys of a results document (besides "schema" and "results").
HEADER_KEYS: tuple[str, ...] = ("vecx_version", "created", "machine", "backends", "settings")

VERDICTS = ("regression", "improvement", "same", "only-old", "only-new", "error")


# --------------------------------------------------------------------------- records


def _plain(obj: Any, where: str) -> Any:
    """Turn numpy scalars/arrays (also nested) into Python values so ``json.dumps`` works."""
    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    elif isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, Mapping):
        return {str(k): _plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"{where} is {obj}; record a failure in 'error' instead")
    if obj is None or isinstance(obj, (str, int, float)):
        return obj
    raise TypeError(f"{where} has type {type(obj).__name__}, which JSON cannot store")


def _number(name: str, x: Any, kind: type) -> float | int | None:
    if x is None:
        return None
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError(f"{name} must be a number or None, got {type(x).__name__}")
    if kind is int:
        if isinstance(x, float) and not x.is_integer():
            raise TypeError(f"{name} must be an integer, got {x!r}")
        return int(x)
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"{name} is {x}; record a failure in 'error' instead")
    return x


def _text(name: str, x: Any) -> str | None:
    if x is not None and not isinstance(x, str):
        raise TypeError(f"{name} must be a string or None, got {type(x).__name__}")
    return x


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
    """One result record with every key of `RESULT_KEYS`, checked and JSON-ready.

    Checking here, at the source, means a bad record fails in the suite that made it
    instead of corrupting the results file at the end of a long run.
    """
    rec: dict[str, Any] = {}
    for name, text in (
        ("suite", suite),
        ("case", case),
        ("backend", backend),
        ("device", device),
        ("dtype", dtype),
    ):
        if not isinstance(text, str) or not text:
            raise ValueError(f"{name} must be a non-empty string, got {text!r}")
        rec[name] = text
    if params is not None and not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict or None, got {type(params).__name__}")
    rec["params"] = _plain(dict(params or {}), "params")
    for name, x in (("median_s", median_s), ("iqr_s", iqr_s), ("first_call_s", first_call_s)):
        rec[name] = _number(name, x, float)
    rec["n_runs"] = _number("n_runs", n_runs, int)
    rec["metric"] = _text("metric", metric)
    rec["value"] = _number("value", value, float)
    rec["unit"] = _text("unit", unit)
    rec["pct_of_ceiling"] = _number("pct_of_ceiling", pct_of_ceiling, float)
    rec["error"] = _text("error", error)
    for key, val in extra.items():
        rec[key] = _plain(val, key)
    return rec


# --------------------------------------------------------------------------- writing


def _ensure_dir(directory: Path, target: Path) -> None:
    """Create ``directory`` or raise an OSError whose message names ``target`` and the cause."""
    for parent in (directory, *directory.parents):
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(
                    f"cannot write results to {target}: {parent} is not a directory"
                )
            break
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise type(e)(
            f"cannot write results to {target}: cannot create {directory} ({e.strerror or e})"
        ) from e


def _check_record(rec: Any, where: str) -> None:
    if not isinstance(rec, dict):
        raise ValueError(f"{where} is a {type(rec).__name__}, not an object")
    missing = [k for k in RESULT_KEYS if k not in rec]
    if missing:
        raise ValueError(f"{where} is missing keys {', '.join(missing)}")
    for k in ("suite", "case", "backend", "device", "dtype"):
        if not isinstance(rec[k], str):
            raise ValueError(f"{where}: {k!r} must be a string, got {rec[k]!r}")
    if not isinstance(rec["params"], dict):
        raise ValueError(f"{where}: 'params' must be an object, got {rec['params']!r}")


class ResultWriter:
    """Streams result records to ``<path>.partial.jsonl`` and assembles ``path`` at the end.

    Each `add` is one ``write()`` of one complete line to a file opened with ``O_APPEND``,
    then ``fsync``: a killed run loses at most the line being written (which `recover`
    skips), and several processes may `add` to the same partial file at once, because
    POSIX appends of a single write are not interleaved on a local file system (records
    are small, well under a page). Network file systems may not honour ``O_APPEND``.

    ``append=False`` (the default) starts a new run and deletes a stale partial file left
    by an interrupted one; call `recover` first to keep it. Worker processes joining a
    run, or a resumed run, pass ``append=True``.
    """

    def __init__(self, path: str | os.PathLike[str], *, append: bool = False) -> None:
        self.path = Path(path)
        self.partial = self.partial_path(self.path)
        _ensure_dir(self.path.parent, self.path)
        try:  # fail now, not after the first ten-minute case
            fd = os.open(
                self.partial,
                os.O_WRONLY | os.O_CREAT | os.O_APPEND | (0 if append else os.O_TRUNC),
                0o644,
            )
            os.close(fd)
        except OSError as e:
            raise type(e)(
                f"cannot write results to {self.path}: cannot write "
                f"{self.partial} ({e.strerror or e})"
            ) from e

    @staticmethod
    def partial_path(path: str | os.PathLike[str]) -> Path:
        """Where records of the run that will end up in ``path`` are streamed."""
        path = Path(path)
        return path.with_name(path.name + ".partial.jsonl")

    def add(self, record: Mapping[str, Any]) -> None:
        """Append one record (as made by `result`) durably to the partial file."""
        rec = dict(record)
        _check_record(rec, "record")
        line = (json.dumps(_plain(rec, "record"), allow_nan=False) + "\n").encode("utf-8")
        fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(f"short write to {self.partial}: {written} of {len(line)} bytes")
            os.fsync(fd)
        finally:
            os.close(fd)

    @classmethod
    def recover(cls, path: str | os.PathLike[str]) -> list[dict[str, Any]]:
        """Records streamed so far for ``path`` (e.g. after a crash), oldest first.

        A truncated last line (the process died mid-write) is skipped silently; any other
        unreadable line is skipped with a warning. Raises FileNotFoundError if there is no
        partial file.
        """
        partial = cls.partial_path(path)
        try:
            data = partial.read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no partial results for {path}: {partial} does not exist"
            ) from None
        lines = data.split(b"\n")
        records = []
        for i, raw in enumerate(lines):
            if not raw.strip():
                continue
            last = i == len(lines) - 1  # no newline after it: the write was cut short
            try:
                rec = json.loads(raw)
                _check_record(rec, "record")
            except (ValueError, UnicodeDecodeError) as e:
                if not last:
                    warnings.warn(f"{partial} line {i + 1} skipped: {e}", stacklevel=2)
                continue
            records.append(rec)
        return records

    def finish(self, header: Mapping[str, Any]) -> dict[str, Any]:
        """Write the whole document to ``path`` atomically, remove the partial file, return it.

        ``header`` supplies `HEADER_KEYS`; missing ones default to this vecx's version, now,
        `machine_info()`, ``{}`` and ``{}``. Records come from the partial file, so those
        added by other processes are included.
        """
        if "results" in header or header.get("schema", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise ValueError("header must not set 'results' or a different 'schema'")
        doc: dict[str, Any] = {"schema": SCHEMA_VERSION}
        for key in HEADER_KEYS:
            if key in header:
                doc[key] = _plain(header[key], key)
        doc.setdefault("vecx_version", _vecx_version())
        doc.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
        doc.setdefault("machine", machine_info())
        doc.setdefault("backends", {})
        doc.setdefault("settings", {})
        doc.update({k: _plain(v, k) for k, v in header.items() if k not in doc})
        try:
            doc["results"] = self.recover(self.path)
        except FileNotFoundError:
            doc["results"] = []
        _atomic_write(self.path, json.dumps(doc, indent=1, allow_nan=False) + "\n")
        self.partial.unlink(missing_ok=True)
        return doc


def _vecx_version() -> str:
    from vecx import __version__

    return __version__


def _atomic_write(path: Path, text: str) -> None:
    """Write via a temp file in the same directory and ``os.replace``: never a half file."""
    _ensure_dir(path.parent, path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise type(e)(f"cannot write results to {path} ({e.strerror or e})") from e
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- reading


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a results file; errors name ``path`` and what is wrong with it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"results file {path} does not exist") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"{path} is a directory, not a results file") from None
    except OSError as e:  # permission denied, an I/O error
        raise type(e)(f"cannot read results file {path} ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: not UTF-8 text ({e.reason})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path} is not valid JSON: line {e.lineno} column {e.colno} ({e.msg})"
        ) from None
    if not isinstance(doc, dict):
        raise ValueError(
            f"{path} is not a vecx results file: top level is a {type(doc).__name__}, not an object"
        )
    if "schema" not in doc:
        raise ValueError(f"{path} is not a vecx results file: no 'schema' key")
    if doc["schema"] != SCHEMA_VERSION:
        raise ValueError(
            f"{path} has unknown schema version {doc['schema']!r} "
            f"(this vecx reads {SCHEMA_VERSION})"
        )
    if not isinstance(doc.get("results"), list):
        raise ValueError(f"{path} is not a vecx results file: 'results' is not a list")
    for key in ("machine", "backends", "settings"):
        if key in doc and not isinstance(doc[key], dict):
            raise ValueError(f"{path}: {key!r} must be an object")
    for i, rec in enumerate(doc["results"]):
        try:
            _check_record(rec, f"results[{i}]")
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
        _upgrade(rec)
    return doc


#: Keys that files of earlier development versions (same schema) kept in ``params``.
_LEGACY_PARAMS = ("measured_n", "extrapolated")


def _upgrade(rec: dict[str, Any]) -> None:
    """Move `_LEGACY_PARAMS` out of an older file's ``params`` into record keys."""
    params = rec["params"]
    for key in _LEGACY_PARAMS:
        if key in params:
            rec.setdefault(key, params.pop(key))


# --------------------------------------------------------------------------- comparing


@dataclass(frozen=True)
class Comparison:
    """One case of two runs side by side. ``ratio`` is new/old median time (>1: slower)."""

    suite: str
    case: str
    backend: str
    device: str
    params_key: str  # canonical JSON of params
    old_s: float | None
    new_s: float | None
    ratio: float | None
    old_iqr_s: float | None
    new_iqr_s: float | None
    verdict: str  # one of VERDICTS
    dtype: str = "float32"


def _key(rec: Mapping[str, Any]) -> tuple[str, ...]:
    params = json.dumps(rec.get("params") or {}, sort_keys=True, separators=(",", ":"))
    return (rec["suite"], rec["case"], rec["backend"], rec["device"], rec["dtype"], params)


def _usable(rec: Mapping[str, Any] | None) -> bool:
    if rec is None or rec.get("error") is not None:
        return False
    m = rec.get("median_s")
    return isinstance(m, (int, float)) and math.isfinite(m) and m >= 0


def compare(
    old: Mapping[str, Any], new: Mapping[str, Any], *, threshold: float = 0.10
) -> list[Comparison]:
    """Match the records of two results documents and judge each case.

    Records match on (suite, case, backend, device, dtype, params); if a run has the same
    key twice the last record wins. With ``o``/``n`` the old/new median times and
    ``io``/``in_`` their IQRs (None counts as 0), a case is

    * ``"regression"``  if ``n > o * (1 + threshold)`` AND ``n - in_ > o + io``,
    * ``"improvement"`` if ``n < o / (1 + threshold)`` AND ``n + in_ < o - io``,
    * ``"same"`` otherwise.

    That is, like asv, a change counts only if it is larger than the threshold factor and
    the intervals ``[median - iqr, median + iqr]`` of the two runs do not overlap (touching
    counts as overlap), so noise in either run cannot produce a verdict. A record with an
    ``error`` or no ``median_s`` in either run gives ``"error"``; a case in only one run
    gives ``"only-old"``/``"only-new"``. Order: old's cases first, then new-only ones.
    """
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0, got {threshold!r}")
    olds = {_key(r): r for r in old["results"]}
    news = {_key(r): r for r in new["results"]}
    out = []
    for key in dict.fromkeys([*olds, *news]):
        o, n = olds.get(key), news.get(key)
        o_s = o.get("median_s") if o else None
        n_s = n.get("median_s") if n else None
        o_iqr = o.get("iqr_s") if o else None
        n_iqr = n.get("iqr_s") if n else None
        ratio = None
        if n is None:
            verdict = "only-old"
        elif o is None:
            verdict = "only-new"
        elif not (_usable(o) and _usable(n)):
            verdict = "error"
        else:
            ratio = n_s / o_s if o_s > 0 else (1.0 if n_s == 0 else math.inf)
            verdict = _verdict(o_s, n_s, o_iqr or 0.0, n_iqr or 0.0, threshold)
        suite, case, backend, device, dtype, params_key = key
        out.append(
            Comparison(
                suite,
                case,
                backend,
                device,
                params_key,
                o_s,
                n_s,
                ratio,
                o_iqr,
                n_iqr,
                verdict,
                dtype,
            )
        )
    return out


def _verdict(o: float, n: float, io: float, in_: float, threshold: float) -> str:
    factor = 1.0 + threshold
    if n > o * factor and n - in_ > o + io:
        return "regression"
    if n < o / factor and n + in_ < o - io:
        return "improvement"
    return "same"


#: What makes two runs' numbers incomparable: (header section, key, name shown).
COMPARABLE_SETTINGS: tuple[tuple[str, str, str], ...] = (
    ("settings", "quick", "quick"),
    ("settings", "precision", "precision"),
    ("settings", "dtype", "dtype"),
    ("machine", "cpu", "machine cpu"),
    ("machine", "gpu", "machine gpu"),
)


def settings_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``"quick (no -> yes)"`` for each of `COMPARABLE_SETTINGS` the two documents both
    record and that differs: a regression between such runs may be the setting's doing."""

    def shown(v: Any) -> str:
        if isinstance(v, bool):
            return "yes" if v else "no"
        return "none" if v is None else str(v)

    out = []
    for section, key, name in COMPARABLE_SETTINGS:
        a, b = old.get(section), new.get(section)
        if not (isinstance(a, Mapping) and isinstance(b, Mapping) and key in a and key in b):
            continue  # not recorded in one of them: nothing to say
        if a[key] != b[key]:
            out.append(f"{name} ({shown(a[key])} -> {shown(b[key])})")
    return out


def has_regression(comparisons: Iterable[Comparison]) -> bool:
    """True if any case got slower beyond noise (errors and missing cases do not count)."""
    return any(c.verdict == "regression" for c in comparisons)


__all__ = [
    "ENV_VARS",
    "HEADER_KEYS",
    "RESULT_KEYS",
    "SCHEMA_VERSION",
    "VERDICTS",
    "Comparison",
    "ResultWriter",
    "compare",
    "has_regression",
    "settings_differences",
    "load",
    "machine_info",
    "result",
    "runtime_settings",
]
