"""``vecx plot``: figures of a results file, or d2l's normal densities on a backend.

``vecx plot RESULTS.json [--out DIR]`` writes every figure the results support (PNG and
SVG, see `vecx.plots.plot_results`) into DIR (default: the results file's folder, as
``vecx bench`` does, where ``vecx report`` finds them).
``vecx plot normal [--backend SPEC] [--out DIR]`` draws the normal densities computed
through SPEC. A results file literally named ``normal`` can be given as ``./normal``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot",
        help="draw the figures of a results file (or: vecx plot normal)",
        description=(
            "Draw the figures of a vecx results file as PNG and SVG, or with the word "
            "'normal' the normal densities of d2l's example computed through a backend."
        ),
    )
    p.add_argument(
        "target",
        metavar="RESULTS.json|normal",
        help="a results file from 'vecx bench', or 'normal'",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="folder for the figures (default: the results file's folder; "
        "the current folder for 'normal')",
    )
    p.add_argument(
        "--backend",
        metavar="SPEC",
        help="backend for 'normal', e.g. numpy, torch:cpu, jax:cuda (default: numpy)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.target == "normal":
        return _normal(args)
    if args.backend is not None:
        raise ValueError("--backend applies only to 'vecx plot normal'")
    from vecx.plots import plot_results
    from vecx.report import default_plot_dir
    from vecx.results import load

    doc = load(args.target)
    out = Path(args.out) if args.out else default_plot_dir(args.target)
    paths = plot_results(doc, out)
    if not paths:
        raise ValueError(f"{args.target} has no successful results to plot")
    for path in paths:
        print(path)
    return 0


def _normal(args: argparse.Namespace) -> int:
    from vecx.plots import plot_normal
    from vecx.registry import backend

    be = backend(args.backend or "numpy")
    out = Path(args.out) if args.out else Path(".")
    stem = "normal-" + be.spec.replace(":", "-")
    for ext in (".png", ".svg"):
        print(plot_normal(be, out / f"{stem}{ext}"))
    return 0
