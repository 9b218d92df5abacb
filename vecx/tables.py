"""Per-suite tables of a results document, for the terminal and for Markdown reports.

`suite_tables` gives one table per suite, laid out by the suite itself (its `Column` list
and footnotes: :meth:`vecx.suites.suite.Suite.table`); this module holds what every table
shares: units, the spread, the speed relative to a baseline backend, failed rows, record
notes, and the order of rows. `print_tables` (rich) and `markdown_table` only lay tables
out, so the terminal summary of ``vecx bench`` and ``vecx report`` can never tell
different stories. It names no suite and no case.

Conventions:

* Times are the headline figure (`vecx.results.headline_s`: the fastest block) in an
  adaptive unit (``s``, ``ms``, ``µs``, ``ns``) with the IQR as a percentage of the
  median (``1.23 ms ±4%``), because a number without its spread cannot be judged.
* "vs <baseline>" is the baseline's headline time divided by this record's on
  the same case and parameters (``2.0x`` = twice as fast as the baseline). For rates
  (GFLOP/s, GB/s) this equals the rate ratio. ``-`` when the baseline lacks that case;
  no column at all, and a note saying why, when the baseline is not in the run.
* A record with an ``error`` shows its shortened error text in place of every number, and
  the full first line of the error as a note: a failure must never read as a measurement.

This module imports no array framework but NumPy (through `vecx.results`; rich lazily).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vecx.results.schema import headline_s

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


def with_spread(rec: Mapping[str, Any]) -> str:
    """The headline time with the IQR as ±% of the median (``1.23 ms ±4%``), marked ``?``
    when the record is suspect (a note under the table says why)."""
    med, iqr = rec.get("median_s"), rec.get("iqr_s")
    text = format_time(headline_s(rec))
    if _positive(med) and isinstance(iqr, (int, float)) and not _single(rec):
        text += f" ±{100 * iqr / med:.0f}%"
    return text + (" ?" if rec.get("suspect") else "")


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
    from vecx.registry import baseline_label  # no framework is imported

    try:
        return baseline_label(text)
    except ValueError as exc:
        labels = sorted({backend_label(r) for r in records}, key=backend_sort_key)
        here = f" (this run has {', '.join(labels)})" if labels else ""
        raise ValueError(f"--baseline: {exc}{here}") from None


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

    Headline times (`vecx.results.headline_s`) are compared when both have them;
    otherwise the values, inverted for time-like units (``s``), as for a rate.
    """
    if base is None or rec.get("error") or base.get("error"):
        return None
    t, tb = headline_s(rec), headline_s(base)
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


# --------------------------------------------------------------------------- columns


@dataclass(frozen=True)
class Column:
    """One column of a suite's table: its header and how a record fills its cell.

    ``identity`` columns say which case a row is (shown on a failed row too); the first
    other column of a failed row holds the error text, the rest ``-``.
    """

    header: str
    cell: Callable[[Mapping[str, Any]], str]
    align: str = "r"
    identity: bool = False


@dataclass(frozen=True)
class TableContext:
    """What every table needs beyond its records: the baseline and its records' index."""

    baseline: str
    index: Mapping[tuple[str, str, str, str], list[Mapping[str, Any]]]

    def vs(self, rec: Mapping[str, Any]) -> str:
        """This record's speed relative to the baseline's on the same case (``2.0x``)."""
        if rec.get("error") or rec.get("skipped"):
            return "-"
        return format_ratio(relative_speed(rec, _pick_base(rec, self.index)))


def case_column(header: str = "case") -> Column:
    return Column(header, lambda r: str(r["case"]), "l", True)


def backend_column() -> Column:
    return Column("backend", backend_label, "l", True)


def param_column(key: str, header: str | None = None, align: str = "r") -> Column:
    """An identity column showing ``params[key]`` (numbers with thousands separators)."""
    return Column(header or key, lambda r: _count_cell((r.get("params") or {}).get(key, "-")),
                  align, True)  # fmt: skip


def time_column(header: str = "time") -> Column:
    """The headline time with its spread (``1.23 ms ±4%``)."""
    return Column(header, with_spread)


def rate_column(header: str) -> Column:
    """The record's value as a number (its unit is in ``header``)."""
    return Column(header, lambda r: format_number(r.get("value")))


def _count_cell(x: Any) -> str:
    if isinstance(x, bool):
        return str(x).lower()
    return f"{x:,}" if isinstance(x, int) else str(x)


def generic_columns(records: Sequence[Mapping[str, Any]]) -> list[Column]:
    """Columns for any suite: case, backend, one per parameter, the time, the rate (only
    when the metric is not the time itself) and the checked error (when recorded)."""
    keys = list(dict.fromkeys(k for r in records for k in (r.get("params") or {})))
    cols = [case_column(), backend_column()]
    cols += [param_column(k, align="r" if _numeric_param(records, k) else "l") for k in keys]
    cols.append(time_column())
    units = [r.get("unit") for r in records if r.get("value") is not None and not r.get("error")]
    other = [u for u in dict.fromkeys(units) if u != "s"]
    if other:
        header = other[0] if len(other) == 1 and other[0] else "value"
        cols.append(Column(header, _rate_with_unit if header == "value" else
                           (lambda r: format_number(r.get("value")) if r.get("unit") != "s"
                            else "-")))  # fmt: skip
    if any(isinstance(r.get("check_error"), (int, float)) for r in records):
        cols.append(Column("error vs float64", _check_cell))
    return cols


def _numeric_param(records: Sequence[Mapping[str, Any]], key: str) -> bool:
    values = [(r.get("params") or {}).get(key) for r in records]
    return all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values if v is not None
    )


def _rate_with_unit(rec: Mapping[str, Any]) -> str:
    value, unit = rec.get("value"), rec.get("unit")
    if value is None or unit == "s":
        return "-"
    return f"{format_number(value)} {unit}".rstrip() if unit else format_number(value)


def _check_cell(rec: Mapping[str, Any]) -> str:
    err = rec.get("check_error")
    if not isinstance(err, (int, float)):
        return "not checked" if rec.get("check") == "none" else "-"
    return "0" if err == 0 else f"{err:.2g}"


def summary_text(rec: Mapping[str, Any]) -> str:
    """A finished case in a few words, for progress lines (``73.6 GFLOP/s``, ``ERROR ...``)."""
    if rec.get("error"):
        return f"ERROR {rec['error']}"
    if rec.get("skipped"):
        return f"skipped: {rec['skipped']}"
    value, unit = rec.get("value"), rec.get("unit")
    if value is None:
        return format_time(headline_s(rec))
    if unit == "s":
        return format_time(value)
    if unit:
        digits = 3 if abs(value) < 1000 else 0
        return f"{value:.{digits}g} {unit}" if digits else f"{value:.0f} {unit}"
    return f"{value:.4g}"


# --------------------------------------------------------------------------- ordering


def _value_key(v: Any) -> tuple[int, float, str]:
    """Numbers sort as numbers (64 before 256), everything else as its JSON text after."""
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return (0, float(v), "")
    return (1, 0.0, json.dumps(v, sort_keys=True, default=str))


def _params_sort_key(rec: Mapping[str, Any], keep: Callable[[str], bool]) -> tuple:
    params = rec.get("params") or {}
    return tuple((k, _value_key(params[k])) for k in sorted(params) if keep(k))


def order_records(
    records: Sequence[Mapping[str, Any]], cases: Sequence[str], baseline: str
) -> list[Mapping[str, Any]]:
    """Group by case (in ``cases`` order), then params (numbers as numbers), the baseline
    backend first, then backends in `backend_sort_key` order, the vecx implementation
    before a framework-native one."""
    cases = list(cases) + [c for c in dict.fromkeys(r["case"] for r in records) if c not in cases]
    backends = sorted({backend_label(r) for r in records}, key=backend_sort_key)

    def key(item: tuple[int, Mapping[str, Any]]) -> tuple:
        i, rec = item
        return (
            cases.index(rec["case"]),
            _params_sort_key(rec, lambda k: k not in HOW_PARAMS),
            0 if _matches_baseline(rec, baseline) else 1,
            backends.index(backend_label(rec)),
            _params_sort_key(rec, lambda k: k in HOW_PARAMS),
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
    """One `Table` per suite present in ``doc`` (built-in suites first, then others), each
    laid out by its suite (:meth:`vecx.suites.suite.Suite.table`).

    ``baseline`` names a backend (``"numpy"``) or a backend and device (``"torch:cpu"``);
    each row's "vs <baseline>" is its speed relative to the baseline on the same case and
    parameters. ``suites`` limits and orders the output; suites without records are
    skipped.
    """
    from vecx.suites.suite import BUILTIN, presentation

    records = [r for r in doc.get("results", []) if isinstance(r, Mapping)]
    present = list(dict.fromkeys(r["suite"] for r in records))
    order = [s for s in BUILTIN if s in present] + [s for s in present if s not in BUILTIN]
    if suites is not None:
        order = [s for s in suites if s in present]
    ctx = TableContext(baseline, _baseline_index(records, baseline))
    tables = []
    for name in order:
        suite = presentation(name)
        mine = [r for r in records if r["suite"] == name]
        recs = order_records(mine, suite.order(mine), baseline)
        table = suite.table(recs, doc, ctx)
        table.suite = name
        if not any(_matches_baseline(r, baseline) for r in recs):
            _drop_vs_column(table, baseline)
        table.notes += _single_run_notes(recs)
        tables.append(table)
    return tables


def build_table(
    title: str,
    columns: Sequence[Column],
    records: Sequence[Mapping[str, Any]],
    ctx: TableContext,
    notes: Sequence[str] = (),
) -> Table:
    """A `Table` of ``records`` (already ordered) with ``columns`` and a "vs" column; the
    notes are ``notes``, then each record's ``note`` once, then each failure's error."""
    cols = [*columns, Column(f"vs {ctx.baseline}", ctx.vs)]
    rows = []
    for rec in records:
        problem = rec.get("error") or rec.get("skipped")
        if not problem:
            rows.append([c.cell(rec) for c in cols])
            continue
        lead = [c.cell(rec) for c in cols if c.identity]
        word = "error" if rec.get("error") else "skipped"
        rest = len(cols) - len(lead)
        rows.append(lead + [f"{word}: {short_error(str(problem))}"] + ["-"] * (rest - 1))
    return Table(
        title, [c.header for c in cols], rows,
        [*notes, *_record_notes(records), *_error_notes(records)], [c.align for c in cols],
    )  # fmt: skip


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
    """A time measured once: `with_spread` has no ± to show for it."""
    return isinstance(rec.get("n_runs"), int) and rec["n_runs"] < 2


def _single_run_notes(recs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Say why some times have no ± (a blank there could read as no noise at all)."""
    timed = [r for r in recs if not r.get("error") and headline_s(r) is not None]
    single = [r for r in timed if _single(r)]
    if not single:
        return []
    if len(single) == len(timed):
        return ["every time here is a single measurement: no ± spread"]
    which = dict.fromkeys(f"{backend_label(r)} {r['case']}{_params_text(r)}" for r in single)
    return [f"single measurement, so no ± spread: {', '.join(which)}"]


def _params_text(rec: Mapping[str, Any]) -> str:
    params = {k: v for k, v in (rec.get("params") or {}).items()
              if isinstance(v, (int, float, str)) and k not in HOW_PARAMS}  # fmt: skip
    if len(params) != 1:
        return ""
    ((key, value),) = params.items()
    return f" ({key}={_count_cell(value)})"


def _error_notes(recs: Iterable[Mapping[str, Any]]) -> list[str]:
    notes = []
    for rec in recs:
        if rec.get("error"):
            first = (str(rec["error"]).strip().splitlines() or ["error"])[0]
            notes.append(f"{backend_label(rec)} {rec['case']} failed: {first}")
        elif rec.get("skipped"):
            notes.append(f"{backend_label(rec)} {rec['case']} skipped: {rec['skipped']}")
        elif rec.get("suspect"):
            notes.append(f"{backend_label(rec)} {rec['case']}{_params_text(rec)} (?): suspect, "
                         f"{rec['suspect']}")  # fmt: skip
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
    "Column",
    "Table",
    "TableContext",
    "build_table",
    "generic_columns",
    "order_records",
    "summary_text",
    "with_spread",
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
