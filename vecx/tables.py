"""Per-suite tables of a results document, for the terminal and for Markdown reports.

One function (`suite_tables`) decides what a reader sees for each suite: which columns,
which units, the speed relative to a baseline backend, and the footnotes that qualify a
number (an extrapolated loop, JAX's functional writes, a backend whose loss disagrees).
`print_tables` (rich) and `markdown_table` only lay that out, so the terminal summary of
``vecx bench`` and ``vecx report`` can never tell different stories.

Conventions:

* Times use an adaptive unit (``s``, ``ms``, ``µs``, ``ns``) with the IQR as a percentage
  of the median (``1.23 ms ±4%``), because a number without its spread cannot be judged.
* "vs <baseline>" is the baseline's median time divided by this record's median time on
  the same case and parameters (``2.0x`` = twice as fast as the baseline). For rates
  (GFLOP/s, GB/s) this equals the rate ratio. ``-`` when the baseline lacks that case;
  no column at all, and a note saying why, when the baseline is not in the run.
* A record with an ``error`` shows its shortened error text in place of every number, and
  the full first line of the error as a note: a failure must never read as a measurement.

This module imports no array framework (only the standard library; rich lazily).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Suites with a dedicated layout, in the order tables are produced.
KNOWN_SUITES: tuple[str, ...] = ("vector-add", "matmul", "scaling", "train")

#: Fixed case order per suite (unknown cases follow in order of appearance).
CASE_ORDER: dict[str, tuple[str, ...]] = {
    "vector-add": ("loop", "vectorized"),
    "matmul": ("element", "column", "full", "block64"),
    "scaling": ("vector-add", "copy", "matmul"),
}


def case_order(suite: str) -> tuple[str, ...]:
    """The fixed case order of ``suite`` (the train suite's: its presets, in order)."""
    if suite == "train":
        from vecx.training import PRESETS  # imports no framework

        return tuple(PRESETS)
    return CASE_ORDER.get(suite, ())

#: Longest error text shown in a table cell; the note carries the full first line.
ERROR_CELL_CHARS = 40


@dataclass
class Table:
    """A rendered-ready table: every cell is already a string with its unit.

    ``align`` holds ``"l"``/``"r"`` per column (empty: all left); renderers right-align
    numbers so that magnitudes line up. ``suite`` is set by `suite_tables`.
    """

    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    align: list[str] = field(default_factory=list)
    suite: str = ""  # the suite it shows, so reports can place its figures beside it

    def is_right(self, column: str) -> bool:
        """Whether ``column`` holds numbers (right-aligned)."""
        if not self.align:
            return False
        return self.align[self.columns.index(column)] == "r"


# --------------------------------------------------------------------------- formatting


def format_time(seconds: float | None) -> str:
    """``0.00123`` -> ``"1.23 ms"``: three significant digits in the unit that fits."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds == 0:
        return "0 s"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(seconds) >= scale:
            return f"{_sig(seconds / scale)} {unit}"
    return f"{_sig(seconds / 1e-9)} ns"


def format_number(x: float | None) -> str:
    """Three significant digits without scientific notation for everyday magnitudes."""
    if x is None or not math.isfinite(x):
        return "-"
    return _sig(x)


def _sig(x: float) -> str:
    ax = abs(x)
    if ax >= 1e6 or (0 < ax < 1e-3):
        return f"{x:.3g}"
    if ax >= 100:
        return f"{x:,.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    if ax >= 1:
        return f"{x:.2f}"
    return f"{x:#.3g}"  # keep trailing zeros: 0.500, not 0.5


def format_ratio(r: float | None) -> str:
    """Relative speed ``2.5`` -> ``"2.50x"`` (``-`` when unknown)."""
    if r is None or not math.isfinite(r) or r <= 0:
        return "-"
    return f"{_sig(r)}x"


def format_loss(x: float | None) -> str:
    """Losses span many magnitudes and converge to a few digits: 4 significant digits."""
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.4g}"


def _with_spread(rec: Mapping[str, Any]) -> str:
    med, iqr = rec.get("median_s"), rec.get("iqr_s")
    text = format_time(med)
    if _positive(med) and isinstance(iqr, (int, float)) and not _single(rec):
        text += f" ±{100 * iqr / med:.0f}%"
    return text


def short_error(error: str, limit: int = ERROR_CELL_CHARS) -> str:
    """First line of an error, cut to ``limit`` characters (with an ellipsis)."""
    line = (error.strip().splitlines() or [""])[0].strip() or "error"
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def backend_label(rec: Mapping[str, Any]) -> str:
    """``"torch:cuda:0"``-style label of a record's backend and device."""
    name, device = str(rec.get("backend", "?")), str(rec.get("device", ""))
    if ":" in name or not device:
        return name
    return f"{name}:{device}"


#: Frameworks in the order tables and figures list them; others follow by name.
FRAMEWORK_ORDER: tuple[str, ...] = ("numpy", "torch", "jax", "cupy")


def backend_sort_key(label: str) -> tuple[int, str, int, str]:
    """Stable order of backend labels: NumPy, PyTorch, JAX, CuPy, others; CPU before CUDA.

    Runs shuffle the backends' order (to spread systematic bias), so tables and figures
    must not follow the order of the records.
    """
    name, _, device = label.partition(":")
    rank = FRAMEWORK_ORDER.index(name) if name in FRAMEWORK_ORDER else len(FRAMEWORK_ORDER)
    return (rank, name, 0 if device in ("", "cpu") else 1, device)


# --------------------------------------------------------------------------- baseline


#: Params that say how a case was implemented, not which question it answers: a
#: framework-native trainer (``impl = "native"``) is compared with the baseline's vecx
#: record. (How a case was *measured*, e.g. ``measured_n``, is never in ``params``.)
HOW_PARAMS: frozenset[str] = frozenset({"impl"})


def _params_key(rec: Mapping[str, Any], *, ignore: frozenset[str] = frozenset()) -> str:
    params = {k: v for k, v in (rec.get("params") or {}).items() if k not in ignore}
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


def _case_key(rec: Mapping[str, Any]) -> tuple[str, str, str, str]:
    return (rec["suite"], rec["case"], rec.get("dtype", ""), _params_key(rec, ignore=HOW_PARAMS))


def _matches_baseline(rec: Mapping[str, Any], baseline: str) -> bool:
    return rec.get("backend") == baseline or backend_label(rec) == baseline


def check_baseline(baseline: str, records: Iterable[Mapping[str, Any]] = ()) -> str:
    """``baseline`` as the tables match it: a backend name (``numpy``) or label
    (``torch:cpu``, ``torch:cuda:0``), lower case, devices canonical (``torch:cuda`` ->
    ``torch:cuda:0``).

    Any backend of ``records`` or known to `vecx.registry` is accepted, even one absent
    from the run (the tables then say so instead of showing a column of ``-``); anything
    else is a ``ValueError`` listing the choices.
    """
    text = "".join(str(baseline).split()).lower()
    records = list(records)
    present = {str(r.get("backend")) for r in records} | {backend_label(r) for r in records}
    if text in present:
        return text
    from vecx.registry import parse_spec  # no framework is imported

    try:
        entry, device = parse_spec(text)
    except ValueError as exc:
        labels = sorted({backend_label(r) for r in records}, key=backend_sort_key)
        here = f" (this run has {', '.join(labels)})" if labels else ""
        raise ValueError(f"--baseline: {exc}{here}") from None
    return entry.name if ":" not in text else f"{entry.name}:{device}"


def _baseline_index(
    records: Sequence[Mapping[str, Any]], baseline: str
) -> dict[tuple[str, str, str, str], list[Mapping[str, Any]]]:
    """Baseline records by `_case_key` (suite, case, dtype, params but `HOW_PARAMS`)."""
    index: dict[tuple[str, str, str, str], list[Mapping[str, Any]]] = {}
    for rec in records:
        if _matches_baseline(rec, baseline):
            index.setdefault(_case_key(rec), []).append(rec)
    return index


def relative_speed(rec: Mapping[str, Any], base: Mapping[str, Any] | None) -> float | None:
    """Speed of ``rec`` relative to ``base`` (>1: faster); None if either is unusable.

    Median times are compared when both have them; otherwise the values, inverted for
    time-like units (``s``), as for a rate.
    """
    if base is None or rec.get("error") or base.get("error"):
        return None
    t, tb = rec.get("median_s"), base.get("median_s")
    if _positive(t) and _positive(tb):
        return tb / t
    v, vb = rec.get("value"), base.get("value")
    if rec.get("unit") != base.get("unit") or not (_positive(v) and _positive(vb)):
        return None
    return vb / v if rec.get("unit") == "s" else v / vb


def _positive(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def _pick_base(
    rec: Mapping[str, Any],
    index: Mapping[tuple[str, str, str, str], list[Mapping[str, Any]]],
) -> Mapping[str, Any] | None:
    """The baseline record for ``rec``: same case and params; prefer the same device,
    then the same implementation (vecx or native), then the vecx one."""
    cands = index.get(_case_key(rec), [])
    if not cands:
        return None

    def impl(r: Mapping[str, Any]) -> str:
        return str((r.get("params") or {}).get("impl", "vecx"))

    def rank(c: Mapping[str, Any]) -> tuple[int, int, int]:
        return (
            c.get("device") != rec.get("device"),
            impl(c) != impl(rec),
            impl(c) != "vecx",
        )

    return min(cands, key=rank)


# --------------------------------------------------------------------------- ordering


def _order(records: Sequence[Mapping[str, Any]], suite: str, baseline: str) -> list[Mapping]:
    """Group by case (fixed order), then params (by size), baseline backend first."""
    cases = list(case_order(suite))
    for rec in records:
        if rec["case"] not in cases:
            cases.append(rec["case"])
    backends = sorted({backend_label(r) for r in records}, key=backend_sort_key)

    def key(item: tuple[int, Mapping[str, Any]]) -> tuple:
        i, rec = item
        params = rec.get("params") or {}
        n = params.get("n") if isinstance(params.get("n"), (int, float)) else -1
        impl = 0 if params.get("impl", "vecx") == "vecx" else 1
        return (
            cases.index(rec["case"]),
            n,
            _params_key(rec) if suite not in KNOWN_SUITES else "",
            0 if _matches_baseline(rec, baseline) else 1,
            backends.index(backend_label(rec)),
            impl,
            i,
        )

    return [rec for _, rec in sorted(enumerate(records), key=key)]


# --------------------------------------------------------------------------- tables


def suite_tables(
    doc: Mapping[str, Any],
    *,
    baseline: str = "numpy",
    suites: Sequence[str] | None = None,
) -> list[Table]:
    """One `Table` per suite present in ``doc`` (known suites first, then others).

    ``baseline`` names a backend (``"numpy"``) or a backend and device (``"torch:cpu"``);
    each row's "vs <baseline>" is its speed relative to the baseline on the same case and
    parameters. ``suites`` limits and orders the output; suites without records are
    skipped.
    """
    records = [r for r in doc.get("results", []) if isinstance(r, Mapping)]
    present = list(dict.fromkeys(r["suite"] for r in records))
    order = [s for s in KNOWN_SUITES if s in present] + [
        s for s in present if s not in KNOWN_SUITES
    ]
    if suites is not None:
        order = [s for s in suites if s in present]
    index = _baseline_index(records, baseline)
    tables = []
    for suite in order:
        recs = _order([r for r in records if r["suite"] == suite], suite, baseline)
        builder = _BUILDERS.get(suite, _generic_table)
        table = builder(suite, recs, index, baseline)
        table.suite = suite
        if not any(_matches_baseline(r, baseline) for r in recs):
            _drop_vs_column(table, baseline)
        if suite == "scaling":  # the second bandwidth reference lives in the header
            table.notes[1:1] = memory_notes(doc)
        table.notes += _single_run_notes(recs)
        tables.append(table)
    return tables


def _drop_vs_column(table: Table, baseline: str) -> None:
    """Without any ``baseline`` record the "vs" column would be all ``-``: drop it, say why."""
    column = f"vs {baseline}"
    if column not in table.columns:
        return
    i = table.columns.index(column)
    del table.columns[i]
    for row in table.rows:
        del row[i]
    if table.align:
        del table.align[i]
    table.notes.insert(
        0, f"{baseline} is not in this run: no '{column}' column (--baseline picks another)"
    )


def _single(rec: Mapping[str, Any]) -> bool:
    """A time measured once: `_with_spread` has no ± to show for it."""
    return isinstance(rec.get("n_runs"), int) and rec["n_runs"] < 2


def _single_run_notes(recs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Say why some times have no ± (a blank there could read as no noise at all)."""
    timed = [r for r in recs if not r.get("error") and _positive(r.get("median_s"))]
    single = [r for r in timed if _single(r)]
    if not single:
        return []
    if len(single) == len(timed):
        return ["every time here is a single measurement: no ± spread"]
    which = dict.fromkeys(f"{backend_label(r)} {r['case']}{_n_text(r)}" for r in single)
    return [f"single measurement, so no ± spread: {', '.join(which)}"]


def _n_text(rec: Mapping[str, Any]) -> str:
    n = (rec.get("params") or {}).get("n")
    return f" (n={n:,})" if isinstance(n, int) else ""


def _error_notes(recs: Iterable[Mapping[str, Any]]) -> list[str]:
    notes = []
    for rec in recs:
        if rec.get("error"):
            first = (str(rec["error"]).strip().splitlines() or ["error"])[0]
            notes.append(f"{backend_label(rec)} {rec['case']} failed: {first}")
    return notes


def _record_notes(recs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Free-text ``note`` keys, each distinct note once with the backends it applies to
    (no prefix when it applies to every backend in the table)."""
    everyone = list(dict.fromkeys(backend_label(r) for r in recs))
    by_note: dict[str, list[str]] = {}
    for rec in recs:
        note = rec.get("note")
        if not isinstance(note, str):
            continue
        # suites join a record's notes with "; ": one line per part, so a part that
        # several records share (JAX's immutable arrays) is said once
        for part in (p.strip() for p in note.split("; ")):
            if part:
                labels = by_note.setdefault(part, [])
                if backend_label(rec) not in labels:
                    labels.append(backend_label(rec))
    out = []
    for note, labels in by_note.items():
        if len(everyone) > 1 and labels == everyone:
            out.append(note)
        else:
            out.append(f"{', '.join(labels)}: {note}")
    return out


def _vs(rec: Mapping[str, Any], index: Mapping, baseline: str) -> str:
    if rec.get("error"):
        return "-"
    return format_ratio(relative_speed(rec, _pick_base(rec, index)))


def _err_row(rec: Mapping[str, Any], lead: list[str], width: int) -> list[str]:
    """A row whose first numeric cell is the error text and the rest ``-``."""
    rest = width - len(lead)
    return lead + [f"error: {short_error(str(rec['error']))}"] + ["-"] * (rest - 1)


def _n(rec: Mapping[str, Any]) -> str:
    n = (rec.get("params") or {}).get("n")
    return f"{n:,}" if isinstance(n, int) else ("-" if n is None else str(n))


def _vector_add_table(
    suite: str, recs: Sequence[Mapping[str, Any]], index: Mapping, baseline: str
) -> Table:
    columns = ["case", "backend", "n", "time per add", "first call", f"vs {baseline}"]
    rows, notes = [], []
    for rec in recs:
        lead = [rec["case"], backend_label(rec), _n(rec)]
        if rec.get("error"):
            rows.append(_err_row(rec, lead, len(columns)))
            continue
        params = rec.get("params") or {}
        time = _with_spread(rec)
        if rec.get("extrapolated"):
            time += " *"
            notes.append(
                f"{backend_label(rec)} {rec['case']} (*): extrapolated from "
                f"{_count(rec.get('measured_n'))} of {_count(params.get('n'))} elements"
            )
        rows.append(lead + [time, format_time(rec.get("first_call_s")), _vs(rec, index, baseline)])
    # how much vectorizing buys, per backend: the point of this suite
    by_backend: dict[str, dict[str, Mapping[str, Any]]] = {}
    for rec in recs:
        by_backend.setdefault(backend_label(rec), {})[rec["case"]] = rec
    for label, cases in by_backend.items():
        loop, vec = cases.get("loop"), cases.get("vectorized")
        if loop and vec:
            r = relative_speed(vec, loop)
            if r is not None:
                notes.append(f"{label}: vectorized is {format_ratio(r)} faster than the loop")
    notes += _record_notes(recs) + _error_notes(recs)
    return Table(
        "vector-add: loop c[i] = a[i] + b[i] against vectorized a + b",
        columns,
        rows,
        notes,
        ["l", "l", "r", "r", "r", "r"],
    )


def _count(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) else str(x)


def _matmul_table(
    suite: str, recs: Sequence[Mapping[str, Any]], index: Mapping, baseline: str
) -> Table:
    columns = ["case", "backend", "n", "time", "GFLOP/s", f"vs {baseline}"]
    rows = []
    for rec in recs:
        lead = [rec["case"], backend_label(rec), _n(rec)]
        if rec.get("error"):
            rows.append(_err_row(rec, lead, len(columns)))
            continue
        rows.append(
            lead + [_with_spread(rec), format_number(rec.get("value")), _vs(rec, index, baseline)]
        )
    notes = _record_notes(recs) + _error_notes(recs)
    return Table(
        "matmul: A = BC four ways (GFLOP/s = 2n³ / time)",
        columns,
        rows,
        notes,
        ["l", "l", "r", "r", "r", "r"],
    )


def _rate(rec: Mapping[str, Any]) -> str:
    """The record's value with its unit, unless the unit is a time (shown elsewhere)."""
    value, unit = rec.get("value"), rec.get("unit")
    if value is None:
        return "-"
    return f"{format_number(value)} {unit}".rstrip() if unit else format_number(value)


def _scaling_table(
    suite: str, recs: Sequence[Mapping[str, Any]], index: Mapping, baseline: str
) -> Table:
    columns = ["case", "backend", "n", "time", "achieved", "% of ceiling", f"vs {baseline}"]
    rows = []
    for rec in recs:
        lead = [rec["case"], backend_label(rec), _n(rec)]
        if rec.get("error"):
            rows.append(_err_row(rec, lead, len(columns)))
            continue
        pct = rec.get("pct_of_ceiling")
        pct_text = f"{pct:.0f}%" if _positive(pct) or pct == 0 else "-"
        rows.append(lead + [_with_spread(rec), _rate(rec), pct_text, _vs(rec, index, baseline)])
    notes = [CEILING_NOTE]
    notes += _record_notes(recs) + _error_notes(recs)
    return Table(
        "scaling: achieved rate against problem size",
        columns,
        rows,
        notes,
        ["l", "l", "r", "r", "r", "r", "r"],
    )


#: What "% of ceiling" divides by (see `vecx.runner.add_ceilings`).
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


def _train_table(
    suite: str, recs: Sequence[Mapping[str, Any]], index: Mapping, baseline: str
) -> Table:
    columns = [
        "preset",
        "backend",
        "impl",
        "batch",
        "epochs",
        "time / epoch",
        "final loss",
        "accuracy",
        "agrees",
        f"vs {baseline}",
    ]
    rows, notes = [], []
    for rec in recs:
        params = rec.get("params") or {}
        lead = [
            rec["case"],
            backend_label(rec),
            str(params.get("impl", "vecx")),
            _count(params["batch_size"]) if "batch_size" in params else "-",
            _count(params["epochs"]) if "epochs" in params else "-",
        ]
        if rec.get("error"):
            rows.append(_err_row(rec, lead, len(columns)))
            continue
        agrees = rec.get("agrees")
        agree_text = {True: "yes", False: "NO", None: "-"}.get(agrees, "-")
        if agrees is False:
            notes.append(
                f"{backend_label(rec)} {params.get('impl', 'vecx')} {rec['case']}: final loss "
                f"{format_loss(rec.get('value'))} disagrees with the other backends"
            )
        rows.append(
            lead
            + [
                _with_spread(rec),
                format_loss(rec.get("value")),
                _accuracy(rec.get("accuracy")),
                agree_text,
                _vs(rec, index, baseline),
            ]
        )
    notes += _record_notes(recs) + _error_notes(recs)
    return Table(
        "train: the trainer's presets (vecx trainer and framework-native)",
        columns,
        rows,
        notes,
        ["l", "l", "l", "r", "r", "r", "r", "r", "l", "r"],
    )


def _accuracy(value: Any) -> str:
    """A training accuracy as a percentage (``97.8%``), ``-`` for a regression task."""
    return "-" if value is None else f"{100 * float(value):.1f}%"


def _generic_table(
    suite: str, recs: Sequence[Mapping[str, Any]], index: Mapping, baseline: str
) -> Table:
    columns = ["case", "backend", "params", "time", "value", f"vs {baseline}"]
    rows = []
    for rec in recs:
        params = rec.get("params") or {}
        ptext = ", ".join(f"{k}={v}" for k, v in params.items()) or "-"
        lead = [rec["case"], backend_label(rec), ptext]
        if rec.get("error"):
            rows.append(_err_row(rec, lead, len(columns)))
            continue
        rows.append(lead + [_with_spread(rec), _rate(rec), _vs(rec, index, baseline)])
    notes = _record_notes(recs) + _error_notes(recs)
    return Table(suite, columns, rows, notes, ["l", "l", "l", "r", "r", "r"])


_BUILDERS = {
    "vector-add": _vector_add_table,
    "matmul": _matmul_table,
    "scaling": _scaling_table,
    "train": _train_table,
}


# --------------------------------------------------------------------------- rendering


def print_tables(tables: Sequence[Table]) -> None:
    """Print each table (rich; ASCII boxes when stdout is not a terminal) and its notes."""
    from vecx.console import console, make_table

    out = console()
    for table in tables:
        right = tuple(c for c in table.columns if table.is_right(c))
        rich_table = make_table(table.title, list(table.columns), right=right)
        for row in table.rows:
            rich_table.add_row(*row)
        if not out.is_terminal:
            # a log or a pipe has no width: never fold a row into several lines
            out.width = 10_000
            out.width = max(80, out.measure(rich_table).maximum)
        out.print(rich_table)
        for note in table.notes:
            out.print(f"  {note}")
        out.print()


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*").replace("\n", " ")


def markdown_table(table: Table, *, heading: str = "###") -> str:
    """A GitHub-flavoured Markdown table under a heading, notes as a list below it."""
    lines = [f"{heading} {table.title}", ""] if heading else []
    lines.append("| " + " | ".join(_md_cell(c) for c in table.columns) + " |")
    seps = ["---:" if table.is_right(c) else "---" for c in table.columns]
    lines.append("| " + " | ".join(seps) + " |")
    for row in table.rows:
        lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
    if table.notes:
        lines.append("")
        lines += [f"- {_md_cell(n)}" for n in table.notes]
    return "\n".join(lines) + "\n"


__all__ = [
    "Table",
    "backend_label",
    "check_baseline",
    "format_ratio",
    "format_time",
    "markdown_table",
    "print_tables",
    "relative_speed",
    "short_error",
    "suite_tables",
]
