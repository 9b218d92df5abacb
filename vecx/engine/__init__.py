"""The bench engine, split by concern.

* `vecx.engine.options`: what a run is asked to do, validated (`BenchOptions`);
* `vecx.engine.events`: the worker protocol (one `Event` type, encode and decode);
* `vecx.engine.worker`: a worker's main, one backend x device per process;
* `vecx.engine.run`: the orchestration (`run_bench` -> `Outcome`);
* `vecx.engine.progress`: the progress display, shared with ``vecx train``.

The engine returns results; it prints no table and draws no figure (``vecx bench`` does).
"""

from vecx.engine.options import DEFAULT_OUT, RESULTS_NAME, BenchOptions, OptionError
from vecx.engine.run import Outcome, run_bench

__all__ = ["DEFAULT_OUT", "RESULTS_NAME", "BenchOptions", "OptionError", "Outcome", "run_bench"]
