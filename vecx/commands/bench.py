"""``vecx bench``: run the suites on every available backend x device; tables, JSON, plots."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = """\
Run benchmark suites on every available backend x device, each in its own subprocess,
in a shuffled order (seeded by --seed, recorded).
Every case is synchronised, warmed up, repeated and checked against a float64 reference;
a wrong result is recorded as an error. Results stream to OUT/results.json.partial.jsonl
as each case finishes, so Ctrl-C keeps what completed; at the end OUT/results.json (schema
in vecx/results/schema.py and the README), a table per suite and plots (PNG + SVG) are written;
figures of an earlier run in OUT are removed first, so none describes other results.

Suites (--suites), named in any of these ways:
  {choices}
A workload file holds functions decorated with @vecx.workload (README, "Benchmark your
own code"); installed suites come from the "vecx.suites" entry-point group.

Exit status: 0 all cases ran and agree; 1 a case failed or a training loss disagrees
across backends; 2 bad arguments or an unwritable --out; 130 interrupted (results of
the completed cases are still written).
"""


def _choices() -> str:
    from vecx.suites.suite import choices

    return choices().replace("; ", "\n  ")


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmark every backend x device; tables, results.json and plots",
        description=DESCRIPTION.format(choices=_choices()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--backends", type=_csv, metavar="LIST",
        help="comma-separated names or specs, e.g. numpy,torch,jax:cpu "
        "(default: every available backend x device; unavailable ones are listed)",
    )  # fmt: skip
    p.add_argument(
        "--suites", type=_csv, metavar="LIST",
        help="comma-separated suites: built-in names, installed suites, workload files "
        "(mybench.py) or modules (mypkg.bench); default: every built-in suite",
    )  # fmt: skip
    p.add_argument(
        "--quick", action="store_true",
        help="small sizes, short timings and few epochs: under a minute on 2 CPU cores",
    )  # fmt: skip
    p.add_argument(
        "--out", type=_folder, default=Path("vecx-results"), metavar="DIR",
        help="folder for results.json and the plots (default: ./vecx-results)",
    )  # fmt: skip
    p.add_argument(
        "--precision", choices=("float32", "tf32"), default="float32",
        help="float32 matmul precision: full float32 (TF32 off, default) or tf32",
    )  # fmt: skip
    p.add_argument(
        "--baseline", default="numpy", metavar="BACKEND",
        help="backend the tables compare speed against (default: numpy)",
    )  # fmt: skip
    p.add_argument(
        "--quiet", action="store_true",
        help="plain progress lines instead of the live display (as when not a terminal)",
    )  # fmt: skip
    p.add_argument(
        "--seed", type=int, default=0,
        help="seeds the data and the shuffled backend order (default: 0)",
    )  # fmt: skip
    p.add_argument(
        "--threads", default="auto", metavar="N|auto",
        help="threads of every worker's BLAS pools and torch's intra-op pool (and XLA's, "
        "for 1); default auto: the CPUs other processes leave idle when each backend "
        "starts, and a suspect case measured again at 1. Recorded per backend and case",
    )  # fmt: skip
    p.add_argument(
        "--case-timeout", type=float, default=None, metavar="S",
        help="seconds one case may run before its worker and the worker's children are "
        "killed, the case recorded as timed out and the rest run in a new worker (default: "
        "120, or 100 x the timing's longest measurement if longer)",
    )  # fmt: skip
    p.add_argument(
        "--modes", type=_csv, metavar="LIST",
        help="execution modes of the training suite, comma-separated: eager (one "
        "uncompiled call per step), jit (one compiled call per step), fused (one per "
        "segment); each preset runs in each, with its compile time (default: each "
        "backend's own, jit on jax, eager elsewhere)",
    )  # fmt: skip
    p.add_argument(
        "--compute-dtypes", type=_csv, metavar="LIST",
        help="compute dtypes of the training suite, comma-separated: float32, bfloat16, "
        "float16 (mixed precision: float32 parameters, the step computed in the low dtype; "
        "float16 with dynamic loss scaling); each preset runs in each (default: float32)",
    )  # fmt: skip
    p.add_argument("--no-plots", action="store_true", help="do not draw the figures")
    p.set_defaults(func=run)


def _folder(text: str) -> Path:
    """A non-empty folder name (``--out ""`` would silently mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("needs a folder name, got an empty string")
    return Path(text)


#: Command-line flag of each engine option, for its errors.
_FLAGS = {"backends": "--backends", "suites": "--suites", "seed": "--seed",
          "baseline": "--baseline", "threads": "--threads",
          "case_timeout": "--case-timeout", "modes": "--modes",
          "compute_dtypes": "--compute-dtypes"}  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from vecx.engine import BenchOptions, OptionError, run_bench

    opts = BenchOptions(
        backends=args.backends,
        suites=args.suites,
        quick=args.quick,
        out=args.out,
        precision=args.precision,
        baseline=args.baseline,
        quiet=args.quiet,
        seed=args.seed,
        threads=args.threads,
        case_timeout=args.case_timeout,
        modes=args.modes,
        compute_dtypes=args.compute_dtypes,
    )
    try:
        outcome = run_bench(opts)
    except OptionError as exc:
        flag, text = _FLAGS.get(exc.option, exc.option), str(exc)
        if text.startswith(exc.option + " "):  # "seed must be >= 0" -> "--seed must be >= 0"
            raise ValueError(flag + text[len(exc.option) :]) from None
        raise ValueError(f"{flag}: {text}") from None
    doc = outcome.doc
    _print_tables(doc, doc["settings"].get("baseline", args.baseline))
    plots: list[Path] = []
    plot_error = None
    _remove_old_figures(outcome.path.parent, doc)
    if not args.no_plots and not outcome.interrupted:
        from vecx.timing import timeline

        with timeline("plots"):
            plots, plot_error = _draw(doc, outcome.path.parent)
    settings = doc.get("settings", {})
    n = len(doc["results"])
    backends = ", ".join(settings.get("order", [])) or "none"
    status = f"{n} cases on {backends} in {outcome.elapsed_s:.1f} s"
    if outcome.interrupted:
        status = (
            f"interrupted ({outcome.interrupted}) after {n} of "
            f"{settings.get('cases_planned', '?')} cases on {backends}"
        )
    problems = []
    if outcome.errors:
        problems.append(f"{outcome.errors} failed")
    problems += [f"{count} {what}" for what, count in outcome.flagged.items() if count]
    if problems:
        status += f" ({', '.join(problems)})"
    # an interruption is news for the terminal even when stdout goes to a file
    print(f"vecx bench: {status}", file=sys.stderr if outcome.interrupted else sys.stdout)
    unavailable = settings.get("unavailable") or {}
    if unavailable:
        print(f"vecx bench: not available here: {', '.join(unavailable)} (see 'vecx info')")
    print(f"vecx bench: results written to {outcome.path}")
    if plots:
        print(f"vecx bench: {len(plots)} plot files written to {outcome.path.parent}")
    elif outcome.interrupted and not args.no_plots:
        print(f"vecx bench: plots skipped after the interruption; draw them with: "
              f"vecx plot {outcome.path}", file=sys.stderr)  # fmt: skip
    if outcome.busy:
        print(f"vecx bench: warning: {outcome.busy}", file=sys.stderr)
    if plot_error:
        print(f"vecx bench: plots failed: {plot_error}", file=sys.stderr)
    return outcome.exit_status


def _print_tables(doc: dict, baseline: str) -> None:
    from vecx import tables

    tables.print_tables(tables.suite_tables(doc, baseline=baseline))


def _remove_old_figures(out_dir: Path, doc: dict) -> None:
    """Figures of an earlier run in ``out_dir`` must not sit beside these results."""
    import contextlib

    from vecx.plots import figure_files

    for old in figure_files(out_dir, doc.get("settings", {}).get("suites", [])):
        with contextlib.suppress(OSError):  # never fail a run for a stale figure
            old.unlink()


def _draw(doc: dict, out_dir: Path) -> tuple[list[Path], str | None]:
    """The figures; a failure is one line, never lost results."""
    from vecx.plots import plot_results
    from vecx.suites import error_text

    try:
        return list(plot_results(doc, out_dir)), None
    except Exception as exc:
        return [], error_text(exc)
