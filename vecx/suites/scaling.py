"""``scaling``: achieved rates against problem size, beside the machine's own ceilings.

Cases (one record per size ``n``):

* ``vector-add``: ``a + b`` for n = 2^10 ... 2^24 (2^28 on a GPU), in GB/s counting
  3 arrays x ``itemsize`` bytes per element (read a, read b, write the result).
* ``copy``: the bandwidth ceiling, at the same sizes, counting 2 arrays x ``itemsize``
  (one read, one write). The ``Backend`` protocol has no copy primitive and
  ``be.asarray(x)`` returns ``x`` itself on every built-in backend, so the copy is
  measured as ``y = -x``: a streaming kernel with exactly a copy's memory traffic (read
  each element once, write it once) that no framework can elide, since it changes every
  value. A true memcpy can be slightly faster on CPUs (non-temporal stores), so vector-add
  may reach a little over 100% of this ceiling.
* ``matmul``: ``be.matmul(B, C)`` for n = 64 ... 2048 (8192 on a GPU), in GFLOP/s = 2n^3/s;
  and in ``bfloat16`` and ``float16`` (``params["dtype"]``) at a few large n, checked
  against float64 at that dtype's bound and divided by the float32 ceiling.

Like users' code, ``a + b`` and ``-x`` allocate their result each call; both cases pay
it alike, so the percentage stays fair. ``pct_of_ceiling`` is left empty here and filled
by :meth:`ScalingSuite.finalize` once every backend has run (`add_ceilings`): bandwidth
against the best ``copy`` rate measured on that device, compute against the best
``matmul`` rate any backend reached on that device.

Correctness: each case checks the output of its last timed call (``Measurement.output``),
never a recomputation. Vector-add and copy are checked elementwise against float64 host
results. A matmul of order n is checked three ways, each O(n^2) on the host rather than
a float64 O(n^3) product:

* ``CHECK_ROWS`` rows of ``A``, chosen at random, against the same rows of ``B C``
  computed in float64, with the probabilistic bound ``8 sqrt(n) u |B||C|``
  (:func:`vecx.suites.matmul_bound`; ``u`` = 2^-24, or 2^-11 with ``--precision tf32``):
  tight enough to catch a result 1% off or computed from bf16- or TF32-rounded inputs;
* Freivalds' test, ``A v`` against ``B (C v)`` for a random ``v``, bound
  ``8 sqrt(n) u |B| (|C| |v|)``: loose, but it sees every row, so a wrong block or a
  stale buffer outside the sampled rows is caught;
* in float32 precision, :func:`vecx.suites.tf32_sentinel` at ``min(n, 1024)``, an exact
  test that float32 products are not computed from TF32 inputs; the sampled rows alone
  stop seeing TF32 beyond n = 2048 (its error grows like sqrt(n), the bound like n^1.5).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from vecx.suites import (
    CHECK_ROWS,
    U_FLOAT32,
    Case,
    check_within,
    device_kind,
    failed,
    log2_sizes,
    matmul_bound,
    tf32_sentinel,
    timed,
    timing_options,
    unit_roundoff,
)
from vecx.suites.suite import FigureSpec, Finalized, ModuleSuite
from vecx.tables import (
    Column,
    backend_column,
    backend_label,
    case_column,
    format_number,
    param_column,
    time_column,
)
from vecx.timing import measure

NAME = "scaling"
CASES = ("vector-add", "copy", "matmul")
ITEMSIZE = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}

#: Sizes by (device kind, quick): vector lengths and matmul orders.
VECTOR_SIZES = {
    ("cpu", False): log2_sizes(10, 24),
    ("cuda", False): log2_sizes(10, 28),
    ("cpu", True): log2_sizes(10, 20, 2),
    ("cuda", True): log2_sizes(10, 24, 2),
}
#: Orders of the low-precision matmuls (bfloat16, float16), against the float32 ceiling:
#: a few large ones (NumPy's float16 matmul, without BLAS, takes ~1 s at 512 on a CPU).
LOW_MATMUL_SIZES = {
    ("cpu", False): [512],
    ("cuda", False): [4096, 8192],
    ("cpu", True): [256],
    ("cuda", True): [2048],
}
#: The low-precision dtypes of the matmul cases.
LOW_DTYPES = ("bfloat16", "float16")
MATMUL_SIZES = {
    ("cpu", False): log2_sizes(6, 11),
    ("cuda", False): log2_sizes(6, 13),
    ("cpu", True): log2_sizes(6, 9),
    ("cuda", True): log2_sizes(6, 11),
}


def plan(
    device: str,
    *,
    quick: bool = False,
    vector_sizes: list[int] | None = None,
    matmul_sizes: list[int] | None = None,
    low_matmul_sizes: list[int] | None = None,
    **_: Any,
) -> list[tuple]:
    """Sizes depend on the device (bigger on a GPU) and on ``quick`` (far smaller); the
    low-precision matmuls carry their ``dtype`` in the params. Sizes given choose the
    cases: ``matmul_sizes`` without ``low_matmul_sizes`` runs no low-precision matmul."""
    kind = device_kind(device)
    vec = vector_sizes if vector_sizes is not None else VECTOR_SIZES[kind, quick]
    mm = matmul_sizes if matmul_sizes is not None else MATMUL_SIZES[kind, quick]
    low = low_matmul_sizes if low_matmul_sizes is not None else (
        [] if matmul_sizes is not None else LOW_MATMUL_SIZES[kind, quick])  # fmt: skip
    return (
        [("vector-add", {"n": n}) for n in vec]
        + [("copy", {"n": n}) for n in vec]
        + [("matmul", {"n": n}) for n in mm]
        + [("matmul", {"n": n, "dtype": d}) for d in LOW_DTYPES for n in low]
    )


#: Order of the TF32 sentinel product (at most n): exact, and cheap beside an n^3 matmul.
SENTINEL_SIZE = 1024

COPY_NOTE = "copy measured as y = -x (one read + one write per element; no copy primitive)"


def cases(
    be: Any,
    *,
    quick: bool = False,
    vector_sizes: list[int] | None = None,
    matmul_sizes: list[int] | None = None,
    low_matmul_sizes: list[int] | None = None,
    timing: dict[str, Any] | None = None,
    seed: int = 0,
) -> list[Case]:
    """One case per (kind, n) on ``be``; inputs are made inside each case and freed after."""
    opts = timing if timing is not None else timing_options(quick)
    itemsize = ITEMSIZE.get(be.dtype, 4)
    precision = str(getattr(be, "precision", "float32"))
    u = unit_roundoff(be.dtype, precision)

    def run_vector_add(n: int) -> dict[str, Any]:
        import numpy as np

        a = be.normal(0.0, 1.0, n)
        b = be.normal(0.0, 1.0, n)
        meas = measure(lambda: a + b, be, label=f"vector-add n={n}", **opts)
        ref = np.asarray(be.to_numpy(a), np.float64) + np.asarray(be.to_numpy(b), np.float64)
        got = be.to_numpy(meas.output)  # the last timed call's result, not a recomputation
        problem = check_within(got, ref, 1.01 * U_FLOAT32 * np.abs(ref), "a + b")
        if problem:
            return failed(NAME, "vector-add", be, {"n": n}, problem)
        return timed(
            NAME, "vector-add", be, meas, params={"n": n}, metric="bandwidth",
            value=3 * itemsize * n / meas.headline / 1e9, unit="GB/s",
        )  # fmt: skip

    def run_copy(n: int) -> dict[str, Any]:
        import numpy as np

        x = be.normal(0.0, 1.0, n)
        meas = measure(lambda: -x, be, label=f"copy n={n}", **opts)
        problem = check_within(
            be.to_numpy(meas.output), -np.asarray(be.to_numpy(x), np.float64), 0.0, "-x"
        )
        if problem:
            return failed(NAME, "copy", be, {"n": n}, problem)
        return timed(
            NAME, "copy", be, meas, params={"n": n}, metric="bandwidth",
            value=2 * itemsize * n / meas.headline / 1e9, unit="GB/s", note=COPY_NOTE,
        )  # fmt: skip

    def run_matmul(n: int) -> dict[str, Any]:
        B = be.normal(0.0, 1.0, (n, n))
        C = be.normal(0.0, 1.0, (n, n))
        meas = measure(lambda: be.matmul(B, C), be, label=f"matmul n={n}", **opts)
        problem = check_matmul(be.to_numpy(meas.output), be.to_numpy(B), be.to_numpy(C), u)
        if problem is None and precision == "float32" and be.dtype == "float32":
            problem = tf32_sentinel(be, min(n, SENTINEL_SIZE))
        if problem:
            return failed(NAME, "matmul", be, {"n": n}, problem)
        return timed(
            NAME, "matmul", be, meas, params={"n": n}, metric="gflops",
            value=2.0 * n**3 / meas.headline / 1e9, unit="GFLOP/s",
        )  # fmt: skip

    def run_low_matmul(n: int, dtype: str) -> dict[str, Any]:
        """A ``dtype`` matmul, in GFLOP/s against the float32 ceiling of the device,
        checked against float64 on the rounded inputs at the dtype's bound."""
        from vecx.results import result
        from vecx.suites import UNIT_ROUNDOFF

        params = {"n": n, "dtype": dtype}
        if dtype not in be.capabilities.dtypes:
            why = " (NumPy has no bfloat16 type)" if be.name in ("numpy", "cupy") else ""
            return result(NAME, "matmul", be.name, be.device, dtype=dtype, params=params,
                          skipped=f"{be.spec} cannot compute in {dtype}{why}")  # fmt: skip
        B = be.astype(be.normal(0.0, 1.0, (n, n)), dtype)
        C = be.astype(be.normal(0.0, 1.0, (n, n)), dtype)
        meas = measure(lambda: be.matmul(B, C), be, label=f"matmul n={n} {dtype}", **opts)
        host = [be.to_numpy(be.astype(a, "float32")) for a in (meas.output, B, C)]
        problem = check_matmul(*host, UNIT_ROUNDOFF[dtype])
        if problem:
            return failed(NAME, "matmul", be, params, problem, dtype=dtype)
        return timed(
            NAME, "matmul", be, meas, params=params, metric="gflops", dtype=dtype,
            value=2.0 * n**3 / meas.headline / 1e9, unit="GFLOP/s",
            accumulator=accumulator(be, dtype),
        )  # fmt: skip

    runners = {"vector-add": run_vector_add, "copy": run_copy, "matmul": run_matmul}
    out = []
    for case, params in plan(
        be.spec, quick=quick, vector_sizes=vector_sizes, matmul_sizes=matmul_sizes,
        low_matmul_sizes=low_matmul_sizes,
    ):  # fmt: skip
        if "dtype" in params:
            run = lambda n=params["n"], d=params["dtype"]: run_low_matmul(n, d)  # noqa: E731
        else:
            run = lambda c=case, n=params["n"]: runners[c](n)  # noqa: E731
        out.append(Case(NAME, case, params, run))
    return out


#: Length of the dot product `accumulator` measures with: exact in bfloat16 and float16,
#: and past where an accumulator of either dtype stalls (256 and 2048 ones).
ACCUMULATOR_PROBE = 4096


def accumulator(be: Any, dtype: str) -> str:
    """The dtype ``be`` accumulates a ``dtype`` matmul in, measured: ``ones(1, k) @
    ones(k, 1)`` is ``k`` with a float32 accumulator and stalls with one of ``dtype``."""
    import numpy as np

    k = ACCUMULATOR_PROBE
    a = be.astype(be.ones((1, k)), dtype)
    b = be.astype(be.ones((k, 1)), dtype)
    total = float(np.asarray(be.to_numpy(be.astype(be.matmul(a, b), "float32"))).reshape(()))
    return "float32" if total == k else dtype


def check_matmul(A: Any, B: Any, C: Any, u: float = U_FLOAT32) -> str | None:
    """None if ``A`` is ``B @ C`` (n x n, NumPy arrays) to the accuracy of unit roundoff
    ``u``, else a one-line reason: ``CHECK_ROWS`` sampled rows against float64 with
    :func:`vecx.suites.matmul_bound`, then Freivalds' test (see the module docstring)."""
    import numpy as np

    A = np.asarray(A)
    n = int(np.shape(B)[0])
    if A.shape != (n, n):
        return f"wrong result: matmul has shape {A.shape}, expected {(n, n)}"
    rng = np.random.default_rng(n)
    B64, C64 = np.asarray(B, np.float64), np.asarray(C, np.float64)
    rows = np.sort(rng.choice(n, size=min(CHECK_ROWS, n), replace=False))
    abs_c = np.abs(C64)
    problem = check_within(
        A[rows], B64[rows] @ C64, matmul_bound(np.abs(B64[rows]), abs_c, n, u),
        f"matmul (rows {', '.join(map(str, rows))} of A)",
    )  # fmt: skip
    if problem:
        return problem
    v = rng.standard_normal(n)
    bound = matmul_bound(np.abs(B64), abs_c @ np.abs(v), n, u)
    return check_within(A.astype(np.float64) @ v, B64 @ (C64 @ v), bound, "matmul (Freivalds A v)")


def run_scaling(be: Any, *, quick: bool = False, **sizes: Any) -> Iterator[dict[str, Any]]:
    """Records of every size on ``be``; ``pct_of_ceiling`` is filled later (`add_ceilings`)."""
    from vecx.suites import run_suite

    yield from run_suite(NAME, be, quick=quick, **sizes)


# --------------------------------------------------------------------------- ceilings


#: Copies whose two arrays take at least this many bytes measure main memory, not a
#: cache (this CPU's last-level cache is 32 MiB; an H100's L2 is 50 MB).
MAIN_MEMORY_BYTES = 64 * 2**20
#: How each ceiling was taken, as tables, reports and plots say it.
CEILING_BASIS = {
    "bandwidth": "best copy rate at any size, spikes set aside (on a CPU an in-cache rate)",
    "gflops": "best matmul rate any backend reached, spikes set aside",
}


def add_ceilings(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Fill ``pct_of_ceiling`` of scaling records in place; return the ceilings per device.

    Bandwidth records (``vector-add``, ``copy``) are divided by the best ``copy`` rate
    measured on the same device (by any backend, at any size: on a CPU that is a rate
    from cache, so main-memory sizes score far below 100%); ``matmul`` by the best
    matmul rate any backend reached on that device. Failed records and devices without a
    ceiling keep ``None``. Each record gets an extra ``ceiling`` key saying what it was
    divided by, so a percentage can be traced to its source.

    Each device's entry also has ``bandwidth_memory``, a second bandwidth reference that
    no percentage uses: the best copy rate over sizes whose two arrays take at least
    `MAIN_MEMORY_BYTES` (main memory), or, in runs without such sizes (``--quick``), at
    the largest size measured (then ``main_memory`` is false). Every entry says how it
    was taken in ``basis``.
    """
    records = [r for r in records if r.get("suite") == "scaling"]
    kinds = {"bandwidth": "copy", "gflops": "matmul"}
    ceilings: dict[str, dict[str, Any]] = {}
    copies: dict[str, list[dict[str, Any]]] = {}
    sources: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rec in records:
        source = kinds.get(rec.get("metric") or "")
        if (rec.get("error") or rec.get("suspect") or source != rec.get("case")
                or not _positive(rec.get("value"))
                or "dtype" in (rec.get("params") or {})):  # fmt: skip
            continue  # (a low-precision matmul is measured against float32's ceiling)
        if source == "copy" and isinstance((rec.get("params") or {}).get("n"), int):
            copies.setdefault(rec["device"], []).append(rec)
        sources.setdefault((rec["device"], rec["metric"]), []).append(rec)
    for (device, metric), recs in sources.items():
        best, set_aside = robust_best(recs)
        ceiling = _ceiling(best, CEILING_BASIS[metric])
        if set_aside:
            ceiling["set_aside"] = [
                {"backend": r["backend"], "n": (r.get("params") or {}).get("n"),
                 "value": r["value"]} for r in set_aside
            ]  # fmt: skip
        ceilings.setdefault(device, {})[metric] = ceiling
    for device, recs in copies.items():
        ceilings[device]["bandwidth_memory"] = _memory_ceiling(recs)
    for rec in records:
        ceiling = ceilings.get(rec["device"], {}).get(rec.get("metric") or "")
        if rec.get("error") or ceiling is None or not _positive(rec.get("value")):
            rec["pct_of_ceiling"] = None
            continue
        rec["pct_of_ceiling"] = 100.0 * rec["value"] / ceiling["value"]
        rec["ceiling"] = dict(ceiling)
    return ceilings


#: A rate is corroborated by a neighbour within this factor (see `robust_best`).
CORROBORATION = 1.5


def robust_best(recs: Sequence[Mapping[str, Any]]) -> tuple[Mapping[str, Any], list]:
    """The fastest record that is not a spike, and the faster spikes set aside.

    Rates change smoothly with size, so a rate more than `CORROBORATION` times the same
    backend's rates at the next size down and the next size up, and than every other
    backend's at its size, is a timing accident: one such matmul, twice its reruns, once
    set the ceiling and halved every other percentage. Only a rate with neighbours on
    both sides is judged: at the smallest or largest size a rate may rise or fall
    steeply, and one framework may well be twice another at the same size. Suspect
    records never get here (see `add_ceilings`).
    """

    def n(r: Mapping[str, Any]) -> Any:
        return (r.get("params") or {}).get("n")

    by_backend: dict[str, list[Mapping[str, Any]]] = {}
    for r in recs:
        by_backend.setdefault(r["backend"], []).append(r)
    evidence: dict[int, tuple[list, list]] = {}
    for rows in by_backend.values():
        rows.sort(key=lambda r: n(r) if isinstance(n(r), (int, float)) else 0)
        for i, r in enumerate(rows):
            beside = [o for o in recs if o["backend"] != r["backend"] and n(o) == n(r)]
            evidence[id(r)] = (rows[max(0, i - 1) : i] + rows[i + 1 : i + 2], beside)

    def spike(r: Mapping[str, Any]) -> bool:
        sides, beside = evidence[id(r)]
        if len(sides) < 2:
            return False  # an end of its curve: nothing to judge it by
        return all(o["value"] * CORROBORATION < r["value"] for o in sides + beside)

    ranked = sorted(recs, key=lambda r: r["value"], reverse=True)
    for i, r in enumerate(ranked):
        if not spike(r):
            return r, ranked[:i]
    return ranked[0], []


def _ceiling(rec: Mapping[str, Any], basis: str) -> dict[str, Any]:
    return {
        "value": rec["value"], "unit": rec.get("unit"), "backend": rec["backend"],
        "case": rec["case"], "n": (rec.get("params") or {}).get("n"), "basis": basis,
    }  # fmt: skip


def _memory_ceiling(copies: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The main-memory bandwidth reference from one device's ``copy`` records."""

    def nbytes(rec: Mapping[str, Any]) -> int:
        return 2 * ITEMSIZE.get(rec.get("dtype") or "", 4) * rec["params"]["n"]

    big = [r for r in copies if nbytes(r) >= MAIN_MEMORY_BYTES]
    if big:
        best = max(big, key=lambda r: r["value"])
        basis = (
            f"best copy rate at sizes whose 2 arrays take >= {MAIN_MEMORY_BYTES // 2**20} MiB "
            "(main memory)"
        )
    else:
        largest = max(r["params"]["n"] for r in copies)
        best = max((r for r in copies if r["params"]["n"] == largest), key=lambda r: r["value"])
        basis = (
            f"best copy rate at the largest size measured (2 arrays of "
            f"{nbytes(best) / 2**21:.3g} MiB: may still be in cache)"
        )
    return {**_ceiling(best, basis), "main_memory": bool(big)}


def _positive(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


# --------------------------------------------------------------------------- presentation


#: What "% of ceiling" divides by (see `add_ceilings`).
CEILING_NOTE = (
    "% of ceiling: bandwidth against the best copy rate at any size measured on that "
    "device (on a CPU an in-cache rate, so sizes that live in main memory score low); "
    "compute against the best matmul rate any backend reached on that device."
)


def memory_notes(doc: Mapping[str, Any]) -> list[str]:
    """One line per device with the main-memory copy rate recorded in the run's header."""
    ceilings = (doc.get("settings") or {}).get("ceilings")
    out = []
    for device, kinds in (ceilings or {}).items() if isinstance(ceilings, Mapping) else ():
        mem = kinds.get("bandwidth_memory") if isinstance(kinds, Mapping) else None
        if not isinstance(mem, Mapping) or not _positive(mem.get("value")):
            continue
        n = mem.get("n")
        where = f"{mem.get('backend')} copy" + (f" at n = {n:,}" if isinstance(n, int) else "")
        what = "main-memory bandwidth" if mem.get("main_memory", True) else (
            "copy rate at the largest size (no main-memory size in this run)"
        )  # fmt: skip
        out.append(
            f"{device} {what}: {format_number(mem['value'])} "
            f"{mem.get('unit') or 'GB/s'} ({where}; {mem.get('basis', 'largest sizes')})."
        )
    return out


def _achieved(rec: Mapping[str, Any]) -> str:
    value, unit = rec.get("value"), rec.get("unit")
    if value is None:
        return "-"
    return f"{format_number(value)} {unit}".rstrip() if unit else format_number(value)


def _pct(rec: Mapping[str, Any]) -> str:
    pct = rec.get("pct_of_ceiling")
    return f"{pct:.0f}%" if _positive(pct) or pct == 0 else "-"


def _drawn_ceiling(recs: Sequence[Mapping[str, Any]], device_of: str) -> float | None:
    """A device's ceiling as the runner computed it: value / (pct_of_ceiling / 100)."""
    vals = [
        r["value"] * 100.0 / r["pct_of_ceiling"]
        for r in recs
        if r.get("device") == device_of
        and _positive(r.get("value"))
        and _positive(r.get("pct_of_ceiling"))
    ]
    return float(np.median(vals)) if vals else None


def _scaling(records: Sequence[Mapping[str, Any]], doc: Mapping[str, Any]) -> Any:
    """Roofline view: achieved bandwidth (left) and compute (right) against n, ceilings.

    The run header's ``settings.ceilings`` gives the ``bandwidth_memory`` entries, drawn
    as a second dashed line on the bandwidth panel ("main memory").
    """
    from vecx import plots as P

    ceilings = (doc.get("settings") or {}).get("ceilings")
    ceilings = ceilings if isinstance(ceilings, Mapping) else {}
    recs = [
        r
        for r in P.succeeded(records)
        if P.finite_positive(r.get("value")) and isinstance((r.get("params") or {}).get("n"), int)
        and "dtype" not in (r.get("params") or {})  # low precision: in the table only
    ]
    if not recs:
        return None
    panels = [
        (
            "bandwidth",
            "GB/s",
            [r for r in recs if r.get("unit") == "GB/s"],
            "bandwidth: vector add (3 arrays x bytes / time), copy dotted",
            "best copy at any size; on a CPU in cache",
        ),
        (
            "compute",
            "GFLOP/s",
            [r for r in recs if r.get("unit") == "GFLOP/s"],
            "matmul: 2n³ / time",
            "best matmul rate",
        ),
    ]
    panels = [p for p in panels if p[2]]
    fig = P.new_figure(figsize=(P.PANEL_W * 1.4 * len(panels), 4.6))
    axes_list = list(np.atleast_1d(fig.subplots(1, len(panels), squeeze=False)).flat)
    for ax, (_kind, unit, prs, title, ceiling_name) in zip(axes_list, panels, strict=True):
        devices = list(dict.fromkeys(r["device"] for r in prs))
        for label in P.labels_of(prs):
            for case in SUITE.order(prs):
                pts = sorted(
                    (r["params"]["n"], r["value"])
                    for r in prs
                    if backend_label(r) == label and r["case"] == case
                )
                if not pts:
                    continue
                n, v = zip(*pts, strict=True)
                style = ":" if case == "copy" else "-"
                name = label if case in ("vector-add", "matmul") else f"{label} {case}"
                ax.plot(
                    n, v, style, marker="o", ms=3, color=P.colors_for(doc).get(label), label=name
                )
        for device in devices:
            ceiling = _drawn_ceiling(prs, device)
            if ceiling is None:
                best = [r["value"] for r in prs if r["device"] == device]
                ceiling = max(best) if best else None
            if ceiling:
                ax.axhline(ceiling, color="0.2", ls="--", lw=1)
                ax.annotate(
                    f"{device} ceiling ({ceiling_name}): {P.short_number(ceiling)} {unit}",
                    (0.01, ceiling),
                    xycoords=("axes fraction", "data"),
                    xytext=(2, 3),
                    textcoords="offset points",
                    fontsize=7,
                    color="0.2",
                )
            memory = (ceilings.get(device) or {}).get("bandwidth_memory")
            if (
                unit == "GB/s"
                and isinstance(memory, Mapping)
                and P.finite_positive(memory.get("value"))
            ):
                value = float(memory["value"])
                ax.axhline(value, color="0.45", ls=(0, (6, 3)), lw=1, gid="main-memory")
                what = "main memory" if memory.get("main_memory", True) else (
                    "largest size, may be in cache"
                )  # fmt: skip
                ax.annotate(
                    f"{device} {what} (best copy at the largest sizes): "
                    f"{P.short_number(value)} {unit}",
                    (0.01, value),
                    xycoords=("axes fraction", "data"),
                    xytext=(2, -9),
                    textcoords="offset points",
                    fontsize=7,
                    color="0.45",
                )
        ax.set_xscale("log", base=2)
        P.power_of_two_axis(ax.xaxis)
        ax.set_yscale("log")
        P.plain_log_axis(ax.yaxis, subs=(1.0, 2.0, 5.0))
        ax.set_xlabel("problem size n (log scale)")
        ax.set_ylabel(f"achieved {unit} (log scale)")
        P.title(ax, title)
        ax.grid(True, which="both", alpha=0.3)
        ax.margins(y=0.2)
    legend = P.legend_from_axes(fig, list(axes_list))
    P.suptitle(
        fig,
        "Scaling: achieved rate against problem size, with the measured ceiling",
        right_in=legend,
    )
    P.footnote(fig, P.failed_notes(records))
    return fig


class ScalingSuite(ModuleSuite):
    """Achieved rates against size beside the measured ceilings (module docstring)."""

    name = NAME
    version = 1
    title = "scaling: achieved rate against problem size"
    description = "vector add, copy and matmul against size, as % of the measured ceilings"
    case_names = CASES

    def finalize(self, records: list[dict[str, Any]], *, precision: str = "float32") -> Finalized:
        """``pct_of_ceiling`` of every record, and the ceilings for the header."""
        return Finalized(settings={"ceilings": add_ceilings(records)})

    def columns(self, records: Sequence[Mapping[str, Any]]) -> list[Column]:
        return [
            case_column(), backend_column(), param_column("n"),
            *([param_column("dtype", align="l")]
              if any("dtype" in (r.get("params") or {}) for r in records) else []),
            time_column(), Column("achieved", _achieved), Column("% of ceiling", _pct),
        ]  # fmt: skip

    def notes(self, records: Sequence[Mapping[str, Any]], doc: Mapping[str, Any]) -> list[str]:
        return [CEILING_NOTE, *memory_notes(doc)]

    figures = (
        FigureSpec("scaling", "Achieved bandwidth and compute against problem size, with the "
                   "ceilings", _scaling),
    )  # fmt: skip


SUITE = ScalingSuite(sys.modules[__name__])
