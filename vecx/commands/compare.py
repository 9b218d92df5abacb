"""``vecx compare OLD.json NEW.json``: the same cases of two runs side by side, judged by noise."""

from __future__ import annotations

import argparse
import json
import math
import sys

DESCRIPTION = """\
Match the cases of two results files (same suite, case, backend, device, dtype and
parameters) and show their headline times (the fastest block) side by side with the
ratio NEW/OLD (above 1: slower). A case is a regression only if it is slower by more
than the threshold factor AND the difference is beyond the noise of both runs, as asv
judges it: where both runs kept their samples (samples_s), a two-sided Mann-Whitney U
test on them at p < 0.05; in older files without samples, the intervals [median - IQR,
median + IQR] of the two runs must not overlap:

  regression   new > old x (1 + threshold)  and  beyond the noise
  improvement  new < old / (1 + threshold)  and  beyond the noise
  same         otherwise (a change within either run's noise is no change)

The last line says how many cases each test decided.

A case flagged suspect in either run (interference evidence: threads waiting on the run
queue, stalled calls) shows "suspect", never a regression or an improvement. A case with
an error in either run shows "error"; a case in one run only shows
"only-old" / "only-new"; a case whose suite changed what it computes (its suite_version,
for a workload a hash of its source, differs) shows "changed". What a run chooses for
itself (measured_n and extrapolated: how much of a slow loop was timed before scaling to
the full size) is not in a record's parameters, so extrapolated loops of two runs still
match.

When the runs differ in --quick, --precision, dtype or machine (CPU or GPU model), a
warning says so: their numbers may not be comparable.

Exit status: 0; 1 with --fail-on-regression when any case regressed; 2 for a missing or
malformed file.
"""

VERDICT_ORDER = (
    "regression", "improvement", "error", "suspect", "changed", "same", "only-old", "only-new",
)  # fmt: skip


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="compare two results files: ratio and regression/improvement beyond noise",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("old", metavar="OLD.json", help="results of the earlier run")
    p.add_argument("new", metavar="NEW.json", help="results of the later run")
    p.add_argument(
        "--threshold", type=float, default=0.10, metavar="F",
        help="smallest relative change that can count, beyond noise (default: 0.10 = 10%%)",
    )  # fmt: skip
    p.add_argument(
        "--fail-on-regression", action="store_true",
        help="exit with status 1 if any case regressed (for CI)",
    )  # fmt: skip
    p.add_argument(
        "--changes-only", action="store_true",
        help="list only regressions, improvements, errors and changed cases",
    )  # fmt: skip
    p.set_defaults(func=run)


def _params_text(params_key: str) -> str:
    try:
        params = json.loads(params_key)
    except ValueError:
        return params_key
    shown = [f"{k}={v}" for k, v in params.items() if not isinstance(v, (dict, list))]
    return ", ".join(shown) or "-"


def _time(seconds: float | None, iqr: float | None) -> str:
    from vecx.tables import format_time

    if seconds is None:
        return "-"
    text = format_time(seconds)
    if iqr and seconds > 0:
        text += f" ±{100 * iqr / seconds:.0f}%"
    return text


def _ratio(r: float | None) -> str:
    if r is None:
        return "-"
    if math.isinf(r):
        return "inf"
    return f"{r:.3g}x"


def run(args: argparse.Namespace) -> int:
    from vecx.results import compare, has_regression, load, settings_differences

    if not args.threshold >= 0 or math.isinf(args.threshold):
        raise ValueError(f"--threshold must be a finite number >= 0, got {args.threshold}")
    old, new = load(args.old), load(args.new)
    comparisons = compare(old, new, threshold=args.threshold)
    counts = {v: sum(1 for c in comparisons if c.verdict == v) for v in VERDICT_ORDER}
    shown = comparisons
    if args.changes_only:
        shown = [c for c in comparisons
                 if c.verdict in ("regression", "improvement", "error", "suspect",
                                  "changed")]  # fmt: skip

    from vecx.console import console, make_table

    table = make_table(
        f"vecx compare: {args.old} -> {args.new} (threshold {args.threshold:g})",
        ["suite", "case", "backend", "params", "old", "new", "new/old", "verdict"],
        right=("old", "new", "new/old"),
    )
    for c in shown:
        verdict = c.verdict.upper() if c.verdict == "regression" else c.verdict
        table.add_row(
            c.suite, c.case, f"{c.backend}:{c.device}", _params_text(c.params_key),
            _time(c.old_s, c.old_iqr_s), _time(c.new_s, c.new_iqr_s), _ratio(c.ratio), verdict,
        )  # fmt: skip
    out = console()
    if not out.is_terminal:  # a log or a pipe has no width: never fold a row
        out.width = 10_000
        out.width = max(80, out.measure(table).maximum)
    out.print(table)
    summary = ", ".join(f"{counts[v]} {v}" for v in VERDICT_ORDER if counts[v])
    print(f"vecx compare: {len(comparisons)} cases: {summary or 'none'}")
    tests = [c.test.split(" ")[0] for c in comparisons
             if c.test and c.verdict != "suspect"]  # fmt: skip
    if tests:
        by = {"mann-whitney": "a Mann-Whitney U test on the kept samples (p < 0.05)",
              "iqr-overlap": "IQR overlap (no samples kept)"}  # fmt: skip
        print("vecx compare: noise judged by " + "; ".join(
            f"{by[t]} for {tests.count(t)}" for t in by if t in tests))  # fmt: skip
    differences = settings_differences(old, new)
    if differences:
        print(f"vecx compare: warning: the runs differ in {', '.join(differences)}; "
              "the comparison may not be meaningful", file=sys.stderr)  # fmt: skip
    for name, doc in (("old", old), ("new", new)):
        busy = (doc.get("settings") or {}).get("busy")
        if busy:
            print(f"vecx compare: warning: the {name} run says {busy}", file=sys.stderr)
    if args.fail_on_regression and has_regression(comparisons):
        print(f"vecx compare: {counts['regression']} regression(s) beyond noise", file=sys.stderr)
        return 1
    return 0
