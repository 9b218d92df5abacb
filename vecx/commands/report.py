"""``vecx report``: a Markdown report of a results file (machine, settings, tables, plots).

``vecx report RESULTS.json > REPORT.md`` links the figures found beside the results;
``--plots DIR`` draws them first. Image links are relative to the report's folder:
``--output FILE``'s folder, or the results' folder when printing to stdout (save the
report beside the results, as in ``bench/results/``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write a Markdown report of a results file",
        description="Write a Markdown report (machine, settings, tables, plots) of a "
        "vecx results file to stdout or --output.",
    )
    p.add_argument("results", metavar="RESULTS.json", help="a results file from 'vecx bench'")
    p.add_argument(
        "--plots",
        metavar="DIR",
        help="draw the figures into DIR and link them (default: link figures already "
        "beside the results, if any)",
    )
    p.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="write the report to FILE instead of stdout (links become relative to it)",
    )
    p.add_argument(
        "--baseline",
        default="numpy",
        metavar="SPEC",
        help="backend the 'vs' columns compare against (default: numpy)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vecx.report import build_report

    text = build_report(
        args.results, plots_dir=args.plots, output=args.output, baseline=args.baseline
    )
    if args.output is None:
        sys.stdout.write(text)
        return 0
    out = Path(args.output)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as e:
        from vecx.cli import describe_os_error

        raise type(e)(f"cannot write report to {out}: {describe_os_error(e)}") from e
    print(out, file=sys.stderr)
    return 0
