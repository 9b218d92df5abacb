"""The worker: one backend x device in its own process, streaming records and events.

``python -m vecx.engine.worker CONFIG_JSON`` (internal). Events go, one JSON line each
(`vecx.engine.events.Event`), to the process's original stdout; stdout itself is pointed
at stderr, so whatever the frameworks print (even from C) lands in the log, not the pipe.
Each finished record is appended, fsynced, to the run's partial results file before its
``done`` event is sent, so the engine never reports a case that is not on disk.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any

#: The signal that makes a worker write every thread's Python stack to its log.
STACKS_SIGNAL = getattr(signal, "SIGUSR1", None)  # POSIX


def main(config: Mapping[str, Any]) -> int:
    """Run every planned case of one backend; see the module docstring."""
    events = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    parent = os.getppid()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # the log says where a crash (segfault, abort) or a hung case was: Python's stacks, on
    # the fatal signal or on the engine's SIGUSR1 before it kills a case that timed out
    faulthandler.enable(all_threads=True)
    if STACKS_SIGNAL is not None:
        faulthandler.register(STACKS_SIGNAL, all_threads=True)

    from vecx.engine.events import Event

    def emit(event: Event) -> None:
        events.write(event.encode())
        events.flush()

    from vecx.environment import load_averages, runtime_settings
    from vecx.protocol import BackendUnavailable, thread_pools
    from vecx.registry import backend, status
    from vecx.results import ResultWriter
    from vecx.suites import case_key, error_text, failed
    from vecx.suites.suite import load

    spec, quick, seed = config["spec"], bool(config["quick"]), int(config["seed"])
    sizes: dict[str, dict[str, Any]] = config.get("sizes") or {}
    # a restarted worker runs only the cases its predecessors did not reach
    only = set(config["only"]) if config.get("only") is not None else None
    try:
        st = status(spec)  # the framework's own answer (CUDA visible, ordinal exists)
        if not st.available:
            emit(Event("unavailable", error=st.reason))
            return 0
        be = backend(spec, seed=seed, precision=config.get("precision", "float32"))
        info = be.info()
    except BackendUnavailable as exc:
        emit(Event("unavailable", error=exc.reason + (f" ({exc.hint})" if exc.hint else "")))
        return 0
    except Exception as exc:
        emit(Event("fatal", error=error_text(exc)))
        return 3
    threads = config.get("threads")
    limits = _limit_threads(threads)  # noqa: F841 - held for the worker's life
    settings = {**runtime_settings(), "pools": thread_pools(be)}
    emit(Event("backend", info=info, settings=settings, load=load_averages()))
    writer = ResultWriter(config["results"], append=True)

    def record(suite: Any, rec: Any, planned: dict[str, Any], case: str) -> None:
        """Stream ``rec``; the event names the case by its planned params, which the engine
        tracks (a record's may hold more: the train suite adds its hyperparameters). A
        case that returned something that is not a valid record gets an error record
        instead: one bad case must not end the worker and every case after it."""
        try:
            if not isinstance(rec, dict):
                raise ValueError(f"the case returned {type(rec).__name__}, not a record")
            rec.setdefault("suite_version", suite.version)
            writer.add(rec)
        except (ValueError, TypeError) as exc:
            rec = failed(suite.name, case, be, planned, f"invalid record: {error_text(exc)}")
            rec["suite_version"] = suite.version
            writer.add(rec)
        emit(Event("done", suite=suite.name, case=rec["case"], params=planned,
                   text=suite.summary(rec)))  # fmt: skip

    for selector in config["suites"]:
        suite = load(selector)
        be.seed(seed)  # each suite sees the same data whatever ran before it
        own = sizes.get(suite.name, sizes.get(selector, {}))
        try:
            todo = suite.cases(be, quick=quick, seed=seed, **own)
        except Exception as exc:  # the suite cannot even set up: each case gets the error
            for case, params in suite.plan(spec, quick=quick, **own):
                if only is None or case_key(suite.name, case, params) in only:
                    record(suite, failed(suite.name, case, be, params, exc), dict(params), case)
            continue
        for case in todo:
            if only is not None and case_key(case.suite, case.case, case.params) not in only:
                continue  # run by an earlier worker of this backend, or the case that ended it
            if os.getppid() != parent:
                return 4  # orphaned: the parent is gone, nobody will read this
            emit(Event("start", suite=case.suite, case=case.case, params=dict(case.params)))
            record(suite, measured(case, be, threads), dict(case.params), case.case)
    emit(Event("end", load=load_averages()))
    return 0


def measured(case: Any, be: Any, threads: int | None) -> dict[str, Any]:
    """``case``'s record, measured again at one thread if it came out ``suspect`` at more.

    A suspect record means another process took CPUs during the timing; BLAS and OpenMP
    threads that share a CPU with it spin through whole scheduler ticks, and one thread
    does not. The record kept is the second one, with the first's figure and reason in
    ``remeasured``; where the backend cannot change its threads now (XLA), the first.
    """
    from vecx.protocol import set_threads
    from vecx.suites import run_case

    rec = run_case(case, be)
    if threads is None or not isinstance(rec, dict):
        return rec  # not a record: `record` turns it into an error
    rec.setdefault("threads", threads)
    if not rec.get("suspect") or rec.get("error") or threads <= 1 or not set_threads(be, 1):
        return rec
    try:
        again = run_case(case, be)
    finally:
        set_threads(be, threads)
    again["threads"] = 1
    again["remeasured"] = {"threads": threads, "median_s": rec.get("median_s"),
                           "suspect": rec["suspect"]}  # fmt: skip
    return again


def _limit_threads(threads: int | None) -> Any:
    """Hold every BLAS/OpenMP pool the framework loaded to ``threads`` (the environment
    set them before the import; threadpoolctl also reaches pools that ignore it)."""
    if not threads:
        return None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=int(threads))


def run(argv: Sequence[str] | None = None) -> int:
    import json

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m vecx.engine.worker CONFIG_JSON (internal)", file=sys.stderr)
        return 2
    rc = main(json.loads(args[0]))
    # Every record is on disk (fsynced) and every event flushed: skip the interpreter's
    # teardown of torch and jax (a second or so the next backend would wait for).
    sys.stderr.flush()
    os._exit(rc)


if __name__ == "__main__":
    sys.exit(run())
