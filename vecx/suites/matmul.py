"""``matmul``: d2l's four ways to compute ``A = BC`` for n x n float32 matrices (n = 256).

* ``element``: ``A[i, j] = B[i, :] @ C[:, j]``, one dot product per element (n^2 of them,
  65536 for n = 256: slow in any Python loop). It is timed on the first ``measured_n``
  of the n^2 dot products (row by row) that fit the loop budget and scaled by
  ``n^2 / measured_n`` (record keys ``measured_n`` and ``extrapolated`` beside
  ``params = {"n": n}``, and said in ``note``). ``measured_n`` has the same name as in
  ``vector-add`` so tables and comparisons treat both alike. Its
  ``first_call_s`` is the whole double loop run cold, before any pilot, never scaled;
  ``None`` when that cold run was stopped (as in ``vector-add``).
* ``column``: ``A[:, j] = B @ C[:, j]``, one matrix-vector product per column.
* ``full``: ``A = B @ C``, one call.
* ``block64``: ``A[:, j:j+64] = B @ C[:, j:j+64]``, blocks of 64 columns.

Every product goes through ``be.matmul`` (so a backend's matmul is what is measured and
checked). Writes into the preallocated ``A`` are in place on NumPy, PyTorch and CuPy; on
JAX, whose arrays are immutable, they are ``A = A.at[...].set(...)`` (a copy of A per
write), the idiomatic translation of d2l's in-place code; records say so in ``note``.

GFLOP/s is ``2 n^3 / time``: the exact count of multiply-adds, unlike d2l's rounded
0.03 GFLOP. Each result (the output of the last timed call) is checked elementwise
against ``B @ C`` in float64 on the host with the probabilistic bound
``|A - ref| <= 8 sqrt(n) u |B||C|`` (:func:`vecx.suites.matmul_bound`; ``u`` = 2^-24 for
float32, 2^-11 with ``precision="tf32"``); a violation is recorded as the case's error.
The classical worst case ``n u |B||C|`` would let a result 1% off pass from n ~ 1000 on;
at n = 256 the probabilistic bound catches TF32-rounded inputs by a factor of about 13.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from vecx.suites import (
    MEASURED,
    Case,
    check_within,
    failed,
    matmul_bound,
    timed,
    timing_options,
    unit_roundoff,
    writer,
    writes_by_copy,
)
from vecx.suites.suite import FigureSpec, ModuleSuite
from vecx.suites.vector_add import (
    FIRST_CALL_FACTOR,
    FIRST_CALL_NOTE,
    loop_budget,
    loop_size,
)
from vecx.tables import (
    Column,
    backend_column,
    backend_label,
    case_column,
    param_column,
    rate_column,
    time_column,
)
from vecx.timing import measure

NAME = "matmul"
DEFAULT_N = 256
BLOCK = 64
CASES = ("element", "column", "full", "block64")


def plan(device: str, *, quick: bool = False, n: int = DEFAULT_N, **_: Any) -> list[tuple]:
    """Same cases and n on every device and in quick runs, so runs compare."""
    return [(case, {"n": n}) for case in CASES]


def gflops(n: int, seconds: float) -> float:
    """Rate of one n x n x n matmul (2 n^3 floating-point operations) in GFLOP/s."""
    return 2.0 * n**3 / seconds / 1e9


def cases(
    be: Any,
    *,
    quick: bool = False,
    n: int = DEFAULT_N,
    loop_budget_s: float | None = None,
    timing: dict[str, Any] | None = None,
    seed: int = 0,
) -> list[Case]:
    """The four strategies on ``be`` (``n``, loop budget and timing overridable for tests)."""
    opts = timing if timing is not None else timing_options(quick)
    budget = loop_budget(quick, loop_budget_s)
    precision = str(getattr(be, "precision", "float32"))
    state: dict[str, Any] = {}
    all_cols = slice(None)
    write = writer(be)

    def inputs() -> tuple[Any, Any, Any, Any]:
        """B, C and the host reference (ref = B @ C in float64, bound per element)."""
        if "B" not in state:
            import numpy as np

            B = be.normal(0.0, 1.0, (n, n))
            C = be.normal(0.0, 1.0, (n, n))
            B64 = np.asarray(be.to_numpy(B), np.float64)
            C64 = np.asarray(be.to_numpy(C), np.float64)
            bound = matmul_bound(np.abs(B64), np.abs(C64), n, unit_roundoff(be.dtype, precision))
            state.update(B=B, C=C, ref=B64 @ C64, bound=bound)
        return state["B"], state["C"], state["ref"], state["bound"]

    def element(A: Any, B: Any, C: Any, start: int, stop: int) -> Any:
        """d2l's double loop over (i, j), dot products ``start .. stop - 1`` (row-major);
        a range may end inside a row, so a slow backend needs not finish a whole row."""
        i, j = divmod(start, n)
        while start < stop:
            end = min(n, j + stop - start)
            for jj in range(j, end):
                A = write(A, (i, jj), be.matmul(B[i, :], C[:, jj]))
            start += end - j
            i, j = i + 1, 0
        return A

    def column(A: Any, B: Any, C: Any) -> Any:
        for j in range(n):
            A = write(A, (all_cols, j), be.matmul(B, C[:, j]))
        return A

    def block64(A: Any, B: Any, C: Any) -> Any:
        for j in range(0, n, BLOCK):
            cols = slice(j, min(j + BLOCK, n))
            A = write(A, (all_cols, cols), be.matmul(B, C[:, cols]))
        return A

    def record(
        case: str, fn: Callable[[], Any], count: int = n * n, first: Any = MEASURED
    ) -> dict[str, Any]:
        """Time ``fn`` (computing the first ``count`` elements of A), check, make the record.

        ``first``: the case's cold first call when it was timed apart (``element``).
        """
        _, _, ref, bound = inputs()
        meas = measure(fn, be, label=f"matmul {case}", **opts)
        out = meas.output  # the last timed call's result: that is what gets checked
        params: dict[str, Any] = {"n": n}
        how: dict[str, Any] = {}  # how it was measured: record keys, not identity params
        if case == "element":
            how.update(measured_n=count, extrapolated=count < n * n)
        got = be.to_numpy(out).reshape(-1)[:count]
        problem = check_within(
            got, ref.reshape(-1)[:count], bound.reshape(-1)[:count], f"matmul {case}"
        )
        if problem:
            return failed(NAME, case, be, params, problem, **how)
        notes = []
        if case != "full" and writes_by_copy(be):
            notes.append("JAX arrays are immutable: writes into A are A = A.at[...].set(...)")
        if count < n * n:
            notes.append(
                f"element timed on the first {count:,} of {n * n:,} dot products, "
                "the time then scaled up to all of them"
            )
        if first is None:
            notes.append(FIRST_CALL_NOTE.format(FIRST_CALL_FACTOR * budget))
        scale = n * n / count
        return timed(
            NAME, case, be, meas, params=params, metric="gflops",
            value=gflops(n, meas.headline * scale), unit="GFLOP/s", scale=scale,
            first_call_s=first, note="; ".join(notes) or None, **how,
        )  # fmt: skip

    def run_element() -> dict[str, Any]:
        B, C, _, _ = inputs()
        A0 = be.zeros((n, n))

        def run_range(A: Any, start: int, stop: int) -> Any:
            return element(A, B, C, start, stop)

        count, first = loop_size(run_range, A0, n * n, budget, be, pilot=16, chunk=n)
        return record("element", lambda: element(A0, B, C, 0, count), count, first)

    def run_column() -> dict[str, Any]:
        B, C, _, _ = inputs()
        A0 = be.zeros((n, n))
        return record("column", lambda: column(A0, B, C))

    def run_full() -> dict[str, Any]:
        B, C, _, _ = inputs()
        return record("full", lambda: be.matmul(B, C))

    def run_block64() -> dict[str, Any]:
        B, C, _, _ = inputs()
        A0 = be.zeros((n, n))
        return record("block64", lambda: block64(A0, B, C))

    runners = {
        "element": run_element,
        "column": run_column,
        "full": run_full,
        "block64": run_block64,
    }
    return [Case(NAME, case, params, runners[case]) for case, params in plan(be.spec, n=n)]


def run_matmul(be: Any, *, quick: bool = False, **sizes: Any) -> Iterator[dict[str, Any]]:
    """Records of the four strategies on ``be`` (errors recorded, never raised)."""
    from vecx.suites import run_suite

    yield from run_suite(NAME, be, quick=quick, **sizes)


def _matmul(records: Sequence[Mapping[str, Any]], doc: Mapping[str, Any]) -> Any:
    """Grouped bars: strategy on x, one bar per backend x device, GFLOP/s on a log axis."""
    from vecx import plots as P

    recs = [r for r in P.succeeded(records) if P.finite_positive(r.get("value"))]
    if not recs:
        return None
    cases = SUITE.order(recs)
    labels = P.labels_of(recs)
    width = 0.8 / len(labels)
    x = np.arange(len(cases))
    width_in = min(12.0, max(6.0, 1.6 * len(cases) * max(1, len(labels) / 2)))
    fig = P.new_figure(figsize=(width_in, 4.4))
    ax = fig.subplots()
    for i, label in enumerate(labels):
        values = []
        for case in cases:
            rec = next((r for r in recs if r["case"] == case and backend_label(r) == label), None)
            values.append(rec["value"] if rec else 0.0)
        bars = ax.bar(
            x + (i - (len(labels) - 1) / 2) * width,
            values,
            width,
            label=label,
            color=P.colors_for(doc).get(label),
        )
        P.bar_labels(ax, bars, [P.short_number(v) if v > 0 else "" for v in values], fontsize=6)
        for xi, case in zip(x + (i - (len(labels) - 1) / 2) * width, cases, strict=True):
            if any(
                r.get("error") and r["case"] == case and backend_label(r) == label for r in records
            ):
                ax.text(
                    xi,
                    0.02,
                    "failed",
                    transform=ax.get_xaxis_transform(),
                    rotation=90,
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    color=P.colors_for(doc).get(label),
                )
    ax.set_yscale("log")
    P.plain_log_axis(ax.yaxis)
    ax.set_xticks(x, cases)
    ax.set_ylabel("GFLOP/s (log scale)")
    ns = sorted({(r.get("params") or {}).get("n") for r in recs} - {None})
    size = f"{ns[0]}x{ns[0]} " if len(ns) == 1 else ""
    P.title(ax, f"matmul A = BC on {size}float32: element, column, full, blocks of 64")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.margins(y=0.15)
    P.footnote(fig, P.failed_notes(records))
    return fig


class MatmulSuite(ModuleSuite):
    """d2l's four ways to multiply matrices, in GFLOP/s (see the module docstring)."""

    name = NAME
    version = 1
    title = "matmul: A = BC four ways (GFLOP/s = 2n³ / time)"
    description = "A = BC four ways: per element, per column, one call, blocks of 64"
    case_names = CASES

    def columns(self, records: Sequence[Mapping[str, Any]]) -> list[Column]:
        return [case_column(), backend_column(), param_column("n"), time_column(),
                rate_column("GFLOP/s")]  # fmt: skip

    figures = (FigureSpec("matmul", "matmul GFLOP/s by strategy and backend", _matmul),)


SUITE = MatmulSuite(sys.modules[__name__])
