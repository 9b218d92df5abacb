"""Drawing a run's figures two at a time (forked) against one after another.

Draws every figure of a results file (default: bench/results/cpu-full) with
`vecx.plots.plot_results` both ways, interleaved (parallel, serial, parallel, ...), each
into its own scratch folder, and prints the median seconds of each, their ratio, and
whether the files are the same byte for byte (SVG). ``VECX_PLOT_JOBS=1`` is how the serial
side is forced. Load and cores are printed beside the figures.

    PYTHONPATH=. python bench/figures.py [RESULTS.json] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = ROOT / "bench" / "results" / "cpu-full" / "results.json"
    parser.add_argument("results", nargs="?", default=str(default))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from vecx.environment import load_averages
    from vecx.plots import _can_fork, plot_results
    from vecx.results import load

    doc = load(args.results)
    print(f"# figures of {args.results}: forked two at a time against one by one")
    print(f"load before: {load_averages()}; cores: {os.cpu_count()}; "
          f"this process may fork: {_can_fork(2)}")  # fmt: skip
    times: dict[str, list[float]] = {"parallel": [], "serial": []}
    same = True
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            outs = {}
            for way in ("parallel", "serial"):
                os.environ.pop("VECX_PLOT_JOBS", None)
                if way == "serial":
                    os.environ["VECX_PLOT_JOBS"] = "1"
                t0 = time.perf_counter()
                outs[way] = plot_results(doc, Path(tmp, way))
                times[way].append(time.perf_counter() - t0)
            os.environ.pop("VECX_PLOT_JOBS", None)
            for a, b in zip(outs["parallel"], outs["serial"], strict=True):
                if a.suffix == ".svg" and a.read_bytes() != b.read_bytes():
                    same = False
    par, ser = statistics.median(times["parallel"]), statistics.median(times["serial"])
    n = len(outs["parallel"])
    print(f"{n} files; median of {args.repeat}: two at a time {par:.2f} s, one by one "
          f"{ser:.2f} s, ratio {par / ser:.2f}; SVG files identical: {same}")
    print(f"load after: {load_averages()}")


if __name__ == "__main__":
    main()
