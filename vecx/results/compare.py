"""Two runs compared case by case, judged against the noise of both."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

VERDICTS = ("regression", "improvement", "same", "changed", "only-old", "only-new", "error")


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
    if rec is None or rec.get("error") is not None or rec.get("skipped"):
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
    gives ``"only-old"``/``"only-new"``; a case whose ``suite_version`` differs between
    the runs (its suite or workload changed what it computes; a record without one is
    version 1) gives ``"changed"``, never a ratio. Order: old's cases first, then new-only
    ones.
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
        elif str(o.get("suite_version", 1)) != str(n.get("suite_version", 1)):
            verdict = "changed"
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
