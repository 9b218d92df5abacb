"""Two runs compared case by case, judged against the noise of both."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vecx.results.schema import headline_s

VERDICTS = (
    "regression", "improvement", "same", "suspect", "changed", "only-old", "only-new", "error",
)  # fmt: skip


@dataclass(frozen=True)
class Comparison:
    """One case of two runs side by side. ``ratio`` is new/old headline time (the fastest
    block, `vecx.results.headline_s`; >1: slower)."""

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
    test: str = ""  # how the verdict was decided: "mann-whitney p=0.0079", "iqr-overlap"


def _key(rec: Mapping[str, Any]) -> tuple[str, ...]:
    params = json.dumps(rec.get("params") or {}, sort_keys=True, separators=(",", ":"))
    return (rec["suite"], rec["case"], rec["backend"], rec["device"], rec["dtype"], params)


def _usable(rec: Mapping[str, Any] | None) -> bool:
    if rec is None or rec.get("error") is not None or rec.get("skipped"):
        return False
    m = rec.get("median_s")
    return isinstance(m, (int, float)) and math.isfinite(m) and m >= 0


def _headline(rec: Mapping[str, Any]) -> float | None:
    return headline_s(rec, allow_zero=True)


def compare(
    old: Mapping[str, Any], new: Mapping[str, Any], *, threshold: float = 0.10
) -> list[Comparison]:
    """Match the records of two results documents and judge each case.

    Records match on (suite, case, backend, device, dtype, params); if a run has the same
    key twice the last record wins. With ``o``/``n`` the old/new headline times (the
    fastest block; the median in files without one), a change
    counts only if it is larger than the threshold factor (``n > o (1 + threshold)`` for a
    regression, ``n < o / (1 + threshold)`` for an improvement) AND it is beyond the noise
    of both runs, judged as asv does:

    * where both records kept their samples (``samples_s``, at least `MIN_SAMPLES` each),
      by a two-sided Mann-Whitney U test on them (scipy), significant below `ALPHA`;
    * otherwise (older files) when the intervals ``[median - iqr, median + iqr]`` of the
      two runs do not overlap (touching counts as overlap).

    Anything else is ``"same"``; ``Comparison.test`` says which test decided. A record with
    an ``error`` or no ``median_s`` in either run gives ``"error"``; a case in only one run
    gives ``"only-old"``/``"only-new"``; a case flagged ``suspect`` in either run gives
    ``"suspect"`` (interference, never a regression or an improvement); a case whose
    ``suite_version`` differs between
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
        o_s = _headline(o) if o else None
        n_s = _headline(n) if n else None
        o_iqr = o.get("iqr_s") if o else None
        n_iqr = n.get("iqr_s") if n else None
        ratio, test = None, ""
        if n is None:
            verdict = "only-old"
        elif o is None:
            verdict = "only-new"
        elif str(o.get("suite_version", 1)) != str(n.get("suite_version", 1)):
            verdict = "changed"
        elif not (_usable(o) and _usable(n)):
            verdict = "error"
        elif o.get("suspect") or n.get("suspect"):  # interference: no verdict either way
            ratio = n_s / o_s if o_s > 0 else None
            verdict, test = "suspect", str(n.get("suspect") or o.get("suspect"))
        else:
            ratio = n_s / o_s if o_s > 0 else (1.0 if n_s == 0 else math.inf)
            verdict, test = _verdict(o, n, threshold)
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
                test,
            )
        )
    return out


#: Fewest samples per run for the Mann-Whitney test (with 3 and 3 its smallest two-sided
#: p-value is 0.1, so in practice 5 or more are needed to reach `ALPHA`).
MIN_SAMPLES = 3
#: Significance level of the Mann-Whitney test.
ALPHA = 0.05


def _samples(rec: Mapping[str, Any]) -> list[float] | None:
    samples = rec.get("samples_s")
    if not isinstance(samples, list) or len(samples) < MIN_SAMPLES:
        return None
    if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in samples):
        return None
    return [float(x) for x in samples]


def _verdict(old: Mapping[str, Any], new: Mapping[str, Any], threshold: float) -> tuple[str, str]:
    """``(verdict, test)`` of two usable records (see `compare`)."""
    o, n = float(_headline(old) or 0.0), float(_headline(new) or 0.0)
    factor = 1.0 + threshold
    slower, faster = n > o * factor, n < o / factor
    a, b = _samples(old), _samples(new)
    if a is not None and b is not None:
        from scipy.stats import mannwhitneyu

        p = float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
        test = f"mann-whitney p={p:.2g}"
        beyond_noise = p < ALPHA
    else:
        io, in_ = float(old.get("iqr_s") or 0.0), float(new.get("iqr_s") or 0.0)
        mo, mn = float(old["median_s"]), float(new["median_s"])  # the IQR is the median's
        test = "iqr-overlap"
        beyond_noise = (mn - in_ > mo + io) if slower else (mn + in_ < mo - io)
    if slower and beyond_noise:
        return "regression", test
    if faster and beyond_noise:
        return "improvement", test
    return "same", test


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
    record and that differs, then each environment variable that changes the numbers
    (``settings.env``) and each backend's thread count that differs: a regression between
    such runs may be the setting's doing."""

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
    a_set, b_set = old.get("settings"), new.get("settings")
    if not (isinstance(a_set, Mapping) and isinstance(b_set, Mapping)):
        return out
    # environment variables that change the numbers (OPENBLAS_CORETYPE: 1.8x on matmul)
    a_env, b_env = a_set.get("env"), b_set.get("env")
    if isinstance(a_env, Mapping) and isinstance(b_env, Mapping):
        for var in sorted(set(a_env) | set(b_env)):
            if a_env.get(var) != b_env.get(var):
                out.append(f"env {var} ({a_env.get(var, 'unset')} -> {b_env.get(var, 'unset')})")
    # the threads each backend computed with
    a_w, b_w = a_set.get("workers"), b_set.get("workers")
    if isinstance(a_w, Mapping) and isinstance(b_w, Mapping):
        for spec in [s for s in a_w if s in b_w]:
            ta = a_w[spec].get("threads") if isinstance(a_w[spec], Mapping) else None
            tb = b_w[spec].get("threads") if isinstance(b_w[spec], Mapping) else None
            if ta != tb and (ta is not None or tb is not None):
                out.append(f"threads of {spec} ({shown(ta)} -> {shown(tb)})")
    return out


def has_regression(comparisons: Iterable[Comparison]) -> bool:
    """True if any case got slower beyond noise (errors and missing cases do not count)."""
    return any(c.verdict == "regression" for c in comparisons)
