"""``vector-add``: d2l's Python loop ``c[i] = a[i] + b[i]`` against the vectorized ``a + b``.

The point of the suite is the gap between the two, per framework: a Python loop pays the
framework's per-call dispatch cost n times, the vectorized add once.

* Inputs are float32 ``N(0, 1)`` vectors from the backend's seeded generator (not d2l's
  ones: ``1 + 1`` everywhere would hide an indexing bug).
* The loop writes with item assignment on NumPy, PyTorch and CuPy. JAX arrays are
  immutable, so there the loop is ``c = c.at[i].set(a[i] + b[i])``, which copies ``c`` at
  every step; the record's ``note`` says so. The write is chosen by
  :func:`vecx.suites.writer` from the backend's declared capabilities
  (``immutable_arrays``), not by importing JAX or probing the arrays.
* A loop that would take longer than the budget per call (JAX: ~0.4 ms per element on
  this CPU, 4 s for n = 10000) is timed on its first ``measured_n`` elements and scaled
  by ``n / measured_n``; ``c`` keeps its full size, so the per-element cost is the same.
  Such records carry ``extrapolated: true`` and ``measured_n`` as record keys beside
  ``params`` (``{"n": n}``): how a run measured a case is not part of which case it is,
  so ``vecx compare`` matches extrapolated loops across runs.
* ``first_call_s`` is the loop's real first call: the whole loop over n, run cold before
  anything else touches it (no pilot, no warm-up), so JAX's compilations are in it. It
  is never scaled. When that cold loop runs past ``FIRST_CALL_FACTOR`` x the budget it
  is stopped and ``first_call_s`` is ``None`` (said in ``note``): a loop that slow is
  extrapolated anyway, and a scaled first call would multiply one-off costs by n/m.
* Both results are checked elementwise against ``a + b`` computed in float64 on the host
  (one float32 rounding allowed); a mismatch is recorded as the case's error. What is
  checked is the output of the last timed call (``Measurement.output``), not a
  recomputation, so a result that is fast because it is wrong cannot pass.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from vecx.suites import (
    U_FLOAT32,
    Case,
    check_within,
    cold_first_call,
    failed,
    timed,
    timing_options,
    writer,
    writes_by_copy,
)
from vecx.suites.suite import FigureSpec, ModuleSuite
from vecx.tables import (
    Column,
    backend_column,
    backend_label,
    case_column,
    format_ratio,
    format_time,
    param_column,
    relative_speed,
    with_spread,
)
from vecx.timing import measure

NAME = "vector-add"
DEFAULT_N = 10_000
#: Seconds one timed loop may take before the loop is cut to a measured fraction.
LOOP_BUDGET_S = 0.5
LOOP_BUDGET_QUICK_S = 0.03


def loop_budget(quick: bool, override: float | None = None) -> float:
    """Seconds a timed Python loop may take (tests pass ``override``)."""
    if override is not None:
        return override
    return LOOP_BUDGET_QUICK_S if quick else LOOP_BUDGET_S


#: The cold first call of a loop may run this many loop budgets before it is stopped.
FIRST_CALL_FACTOR = 2.0
#: Elements per chunk of the cold first call (the deadline is checked between chunks).
CHUNK = 256
FIRST_CALL_NOTE = (
    "first call not recorded: the cold run of the whole loop was stopped after {:.2g} s"
)


def plan(device: str, *, quick: bool = False, n: int = DEFAULT_N, **_: Any) -> list[tuple]:
    """Same cases on every device; ``n`` stays 10000 in quick runs so they compare."""
    return [("loop", {"n": n}), ("vectorized", {"n": n})]


def loop_size(
    run_range: Any, state: Any, total: int, budget_s: float, be: Any, *, pilot: int, chunk: int
) -> tuple[int, float | None]:
    """``(m, first_call_s)``: how many of ``total`` units to time, and the cold first call.

    The whole loop first runs once cold (:func:`vecx.suites.cold_first_call`, stopped
    after ``FIRST_CALL_FACTOR * budget_s``). If it finished within ``budget_s / 0.8`` the
    warm loop fits too and ``m = total``; otherwise a warm pilot decides
    (:func:`fraction_size`). ``first_call_s`` is ``None`` when the cold loop was stopped.
    """
    first = cold_first_call(
        run_range, state, total, chunk=chunk, deadline_s=FIRST_CALL_FACTOR * budget_s, be=be
    )
    if first is not None and first <= budget_s / 0.8:
        return total, first
    m = fraction_size(lambda k: run_range(state, 0, k), total, budget_s, be, pilot=pilot)
    return m, first


def fraction_size(run_part: Any, total: int, budget_s: float, be: Any, pilot: int) -> int:
    """How many of ``total`` units fit in ``budget_s`` seconds, from a timed pilot.

    The pilot (``run_part(pilot)``) is timed with :func:`vecx.measure` (first call apart,
    so compilation does not shrink the fraction); the answer is at least ``pilot`` and
    becomes ``total`` when the whole job fits or nearly fits (no extrapolation then).
    """
    pilot = max(1, min(pilot, total))
    m = measure(
        lambda: run_part(pilot), be, min_run_time=1e-6, max_run_time=1e-6,
        min_blocks=1, max_blocks=1, block_time=1e-9, warmup=0,
    )  # fmt: skip
    per_unit = max(m.median / pilot, 1e-12)
    units = max(pilot, int(budget_s / per_unit))
    return total if units >= 0.8 * total else units


def cases(
    be: Any,
    *,
    quick: bool = False,
    n: int = DEFAULT_N,
    loop_budget_s: float | None = None,
    timing: dict[str, Any] | None = None,
    seed: int = 0,
) -> list[Case]:
    """The ``loop`` and ``vectorized`` cases on ``be`` (``n``, budget, timing for tests)."""
    opts = timing if timing is not None else timing_options(quick)
    budget = loop_budget(quick, loop_budget_s)
    state: dict[str, Any] = {}

    def inputs() -> tuple[Any, Any, Any]:
        """(a, b, float64 host reference of a + b), made once for both cases."""
        if "a" not in state:
            import numpy as np

            a = be.normal(0.0, 1.0, n)
            b = be.normal(0.0, 1.0, n)
            ref = np.asarray(be.to_numpy(a), np.float64) + np.asarray(be.to_numpy(b), np.float64)
            state.update(a=a, b=b, ref=ref)
        return state["a"], state["b"], state["ref"]

    def run_loop() -> dict[str, Any]:
        a, b, ref = inputs()
        c0 = be.zeros(n)
        functional = writes_by_copy(be)
        write = writer(be)

        def loop(c: Any, start: int, stop: int) -> Any:
            """d2l's loop over elements ``start .. stop - 1`` of ``c``."""
            for i in range(start, stop):
                c = write(c, i, a[i] + b[i])
            return c

        m, first = loop_size(loop, c0, n, budget, be, pilot=32, chunk=CHUNK)
        meas = measure(lambda: loop(c0, 0, m), be, label="vector-add loop", **opts)
        params = {"n": n}
        how = {"measured_n": m, "extrapolated": m < n}
        got = be.to_numpy(meas.output)[:m]  # the result the last timed call produced
        problem = check_within(got, ref[:m], 1.01 * U_FLOAT32 * abs(ref[:m]), "c[i] = a[i] + b[i]")
        if problem:
            return failed(NAME, "loop", be, params, problem, **how)
        notes = []
        if functional:
            notes.append(
                "JAX arrays are immutable: the loop is c = c.at[i].set(a[i] + b[i]), "
                "a copy of c per element"
            )
        if first is None:
            notes.append(FIRST_CALL_NOTE.format(FIRST_CALL_FACTOR * budget))
        time_full = meas.headline * n / m
        return timed(
            NAME, "loop", be, meas, params=params, metric="time", value=time_full, unit="s",
            scale=n / m, first_call_s=first, note="; ".join(notes) or None,
            write="at-set" if functional else "in-place", **how,
        )  # fmt: skip

    def run_vectorized() -> dict[str, Any]:
        a, b, ref = inputs()
        meas = measure(lambda: a + b, be, label="vector-add vectorized", **opts)
        params = {"n": n}
        how = {"measured_n": n, "extrapolated": False}
        got = be.to_numpy(meas.output)  # the result the last timed call produced
        problem = check_within(got, ref, 1.01 * U_FLOAT32 * abs(ref), "a + b")
        if problem:
            return failed(NAME, "vectorized", be, params, problem, **how)
        return timed(
            NAME, "vectorized", be, meas, params=params, metric="time", value=meas.headline,
            unit="s", **how,
        )  # fmt: skip

    runners = {"loop": run_loop, "vectorized": run_vectorized}
    return [Case(NAME, case, params, runners[case]) for case, params in plan(be.spec, n=n)]


def run_vector_add(be: Any, *, quick: bool = False, **sizes: Any) -> Iterator[dict[str, Any]]:
    """Records of both cases on ``be`` (errors recorded, never raised)."""
    from vecx.suites import run_suite

    yield from run_suite(NAME, be, quick=quick, **sizes)


def _vector_add(records: Sequence[Mapping[str, Any]], doc: Mapping[str, Any]) -> Any:
    """Per backend: loop and vectorized time side by side (log scale), speedup on top."""
    from vecx import plots as P
    from vecx.results import headline_s

    recs = [r for r in P.succeeded(records) if headline_s(r) is not None]
    if not recs:
        return None
    labels = P.labels_of(recs)
    x = np.arange(len(labels))
    width = 0.38
    fig = P.new_figure(figsize=(max(6.0, 1.5 * len(labels) + 2), 4.4))
    ax = fig.subplots()
    find = {(backend_label(r), r["case"]): r for r in recs}
    notes = []
    loop_t = [headline_s(find[(lb, "loop")]) if (lb, "loop") in find else 0.0 for lb in labels]
    vec_t = [headline_s(find[(lb, "vectorized")]) if (lb, "vectorized") in find else 0.0
             for lb in labels]  # fmt: skip
    hatches = []
    for lb in labels:
        rec = find.get((lb, "loop"))
        extrapolated = bool(rec and rec.get("extrapolated"))
        hatches.append("//" if extrapolated else "")
        if rec is not None and extrapolated:
            n = (rec.get("params") or {}).get("n")
            notes.append(
                f"{lb} loop (hatched): extrapolated from "
                f"{P.count_text(rec.get('measured_n'))} of {P.count_text(n)} elements"
            )
        for rec in (find.get((lb, "loop")), find.get((lb, "vectorized"))):
            if rec and rec.get("note"):
                notes.append(f"{lb}: {rec['note']}")
    loop_bars = ax.bar(
        x - width / 2,
        loop_t,
        width,
        label="loop c[i] = a[i] + b[i]",
        color=[P.colors_for(doc).get(lb) for lb in labels],
        alpha=0.45,
    )
    for bar, hatch in zip(loop_bars, hatches, strict=True):
        bar.set_hatch(hatch)
    vec_bars = ax.bar(
        x + width / 2,
        vec_t,
        width,
        label="vectorized a + b",
        color=[P.colors_for(doc).get(lb) for lb in labels],
    )
    P.bar_labels(ax, loop_bars, [P.time_label(t) for t in loop_t])
    P.bar_labels(ax, vec_bars, [P.time_label(t) for t in vec_t])
    for xi, lt, vt in zip(x, loop_t, vec_t, strict=True):
        if lt > 0 and vt > 0:
            top = max(lt, vt)
            ax.annotate(
                f"{format_ratio(lt / vt)} faster",
                (xi, top),
                xytext=(0, 14),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8,
                fontweight="bold",
            )
    ax.set_yscale("log")
    P.plain_log_axis(ax.yaxis, time=True)
    ax.set_xticks(x, labels)
    ax.set_ylabel("time per full add (log scale)")
    ns = sorted({(r.get("params") or {}).get("n") for r in recs} - {None})
    P.title(
        ax,
        "vector add"
        + (f", n = {ns[0]:,}" if len(ns) == 1 and isinstance(ns[0], int) else "")
        + ": Python loop against one vectorized call",
    )
    ax.margins(y=0.3)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    # legend entries in neutral grey: colours encode the backend, shade encodes the case
    from matplotlib.patches import Patch

    fig.legend(
        handles=[
            Patch(facecolor="0.6", alpha=0.45, label="loop c[i] = a[i] + b[i] (lighter)"),
            Patch(facecolor="0.35", label="vectorized a + b"),
        ],
        fontsize=8,
        loc="outside upper center",
        ncols=2,
        frameon=False,
    )
    P.footnote(fig, notes + P.failed_notes(records))
    return fig


def _time_per_add(rec: Mapping[str, Any]) -> str:
    return with_spread(rec) + (" *" if rec.get("extrapolated") else "")


def _count(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) else str(x)


class VectorAddSuite(ModuleSuite):
    """d2l's loop against the vectorized add (see the module docstring)."""

    name = NAME
    version = 1
    title = "vector-add: loop c[i] = a[i] + b[i] against vectorized a + b"
    description = "d2l's Python loop c[i] = a[i] + b[i] against the vectorized a + b"
    case_names = ("loop", "vectorized")

    def columns(self, records: Sequence[Mapping[str, Any]]) -> list[Column]:
        return [
            case_column(), backend_column(), param_column("n"),
            Column("time per add", _time_per_add),
            Column("first call", lambda r: format_time(r.get("first_call_s"))),
        ]  # fmt: skip

    def notes(self, records: Sequence[Mapping[str, Any]], doc: Mapping[str, Any]) -> list[str]:
        """Which loops were extrapolated, and how much vectorizing buys per backend."""
        notes = []
        for rec in records:
            if rec.get("extrapolated") and not rec.get("error"):
                notes.append(
                    f"{backend_label(rec)} {rec['case']} (*): extrapolated from "
                    f"{_count(rec.get('measured_n'))} of "
                    f"{_count((rec.get('params') or {}).get('n'))} elements"
                )
        by_backend: dict[str, dict[str, Mapping[str, Any]]] = {}
        for rec in records:
            by_backend.setdefault(backend_label(rec), {})[rec["case"]] = rec
        for label, found in by_backend.items():
            loop, vec = found.get("loop"), found.get("vectorized")
            if loop and vec:
                r = relative_speed(vec, loop)
                if r is not None:
                    notes.append(f"{label}: vectorized is {format_ratio(r)} faster than the loop")
        return notes

    figures = (
        FigureSpec("vector-add", "Loop against vectorized vector add, with the speedup",
                   _vector_add),
    )  # fmt: skip


SUITE = VectorAddSuite(sys.modules[__name__])
