"""The bench engine: one subprocess per backend x device, streamed, crash-tolerant.

Why it is built this way:

* **One worker process per backend x device**, run one after another in a shuffled
  (seeded, recorded) order. Frameworks in one process fight over threads (OpenBLAS,
  OpenMP and XLA pools spinning against each other made NumPy's 128^3 matmul 500x slower
  in one process here) and over GPU memory; a fresh process per backend also makes every
  first call honest. Workers get ``XLA_PYTHON_CLIENT_PREALLOCATE=false``; any other
  setting that changes numbers (``OPENBLAS_CORETYPE``, thread counts) is passed through
  untouched and recorded, never changed.
* **No framework in this process**: availability is first asked for free (is the
  framework installed, is there an NVIDIA driver at all), then by each worker itself
  before it runs anything (an ``unavailable`` event): asking JAX or torch for GPUs here
  would hold GPU memory for the whole run, and a probe subprocess would import every
  framework once more only to say it is there.
* **Records are streamed**: workers append each finished case to
  ``<out>/results.json.partial.jsonl`` (one fsynced line per record). The engine follows
  the worker's events (`vecx.engine.events`) for progress, and when a worker dies
  (segfault, OOM kill) it records an error for the case it was running and for each
  planned case it never reached, then goes on with the next backend.
* **Interruptions keep what completed**: on Ctrl-C or SIGTERM the engine stops the
  worker, post-processes the completed records and writes ``results.json``. Workers run
  in their own session, so a terminal's Ctrl-C reaches the engine only.
* **Post-processing belongs to the suites** (:meth:`vecx.suites.suite.Suite.finalize`:
  the scaling ceilings, the train agreement check); it rewrites the partial file
  atomically before ``results.json`` is assembled.

The engine returns an `Outcome`; printing tables and drawing figures is the command's job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vecx.engine.events import Event, case_id
from vecx.engine.options import (
    AUTO,
    LOAD_SAMPLE_S,
    RESULTS_NAME,
    BenchOptions,
    OptionError,
    candidate_specs,
    check_baseline,
    check_case_timeout,
    check_compute_dtypes,
    check_modes,
    check_seed,
    check_suites,
    check_threads,
    default_case_timeout,
    shuffled_order,
    thread_env,
)
from vecx.engine.progress import Progress
from vecx.environment import (
    cpu_use_of_others,
    cuda_driver_present,
    idle_cpus,
    machine_info,
    runtime_settings,
)
from vecx.results import ResultWriter, result
from vecx.timing import timeline

#: Environment every worker gets on top of the parent's.
WORKER_ENV = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
#: ``python -P`` (3.11+): no current folder at the front of a worker's ``sys.path``.
SAFE_PATH = ("-P",) if sys.version_info >= (3, 11) else ()
#: Seconds a worker gets to exit after SIGTERM before it is killed.
KILL_GRACE_S = 3.0


@dataclass
class Outcome:
    """What a bench run produced: the document, where it is, and how it ended.

    ``flagged`` maps a description (``"with a disagreeing final loss"``) to how many
    records a suite's `finalize` marked wrong.
    """

    doc: dict[str, Any]
    path: Path
    interrupted: str | None
    errors: int
    elapsed_s: float
    flagged: dict[str, int] = field(default_factory=dict)
    busy: str | None = None

    @property
    def exit_status(self) -> int:
        """130 if interrupted, 1 if any case failed or was flagged wrong, else 0."""
        if self.interrupted:
            return 130
        return 1 if self.errors or any(self.flagged.values()) else 0


class Interrupted(KeyboardInterrupt):
    """SIGTERM, turned into the same path as Ctrl-C."""


def precheck(spec: str) -> str | None:
    """Why ``spec`` surely cannot run here, asked without importing a framework, or None
    (then its worker asks the framework itself)."""
    from vecx.protocol import BackendUnavailable
    from vecx.registry import check_installed, parse_spec

    entry, device = parse_spec(spec)
    try:
        check_installed(entry, spec)
    except BackendUnavailable as exc:
        return exc.reason + (f" ({exc.hint})" if exc.hint else "")
    if device.startswith("cuda") and not cuda_driver_present():
        return "no NVIDIA driver on this machine (no /dev/nvidia0, no libcuda)"
    return None


#: The file in an output folder that one run holds locked (``flock``) while it writes there.
LOCK_NAME = ".vecx-bench.lock"


class FolderInUse(RuntimeError):
    """Another run is writing to the same output folder."""


def lock_folder(folder: Path) -> int | None:
    """Hold ``folder``'s lock for this process, or raise `FolderInUse` naming the holder.

    ``flock`` is released by the kernel when its holder dies, so a lock left by a killed
    run is never stale; the file stays (unlinking it would let two runs hold two locks).
    Workers inherit the locked descriptor, so a worker still finishing a case after its
    engine was killed keeps the folder locked until it exits: its last record cannot land
    in the next run's file.
    None where ``fcntl`` is missing (Windows): no lock, as before.
    """
    try:
        import fcntl
    except ImportError:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return None  # the results writer says why the folder is unusable
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise FolderInUse(f"{folder} is in use by another vecx bench (pid {holder}, or a "
                          "worker it left running); wait for it to finish or choose another "
                          "--out") from None  # fmt: skip
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def run_bench(opts: BenchOptions) -> Outcome:
    """Run the benchmark described by ``opts``; see the module docstring.

    Raises `vecx.engine.options.OptionError` (a ``ValueError``) for a bad option and
    ``OSError`` for an unwritable output folder, before anything runs, `FolderInUse` (a
    ``RuntimeError``) when another run writes to the same folder, and ``RuntimeError``
    when no selected backend is available. Interrupted (Ctrl-C or SIGTERM) before its
    first case, it raises ``KeyboardInterrupt`` and leaves no file behind.
    """
    held: list[int] = []
    # SIGTERM is Ctrl-C from the start: while the backends are checked, too
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        return _run_bench(opts, held)
    finally:
        signal.signal(signal.SIGTERM, previous)
        for fd in held:
            os.close(fd)


@contextlib.contextmanager
def _before_any_case(path: Path) -> Iterator[list[bool]]:
    """Nothing has run: an error or an interruption here leaves no partial file of this
    run. The caller appends to the list it is given once it starts this run's partial
    file (a partial file left by an earlier run stays until then: it may be all it kept)."""
    started: list[bool] = []
    try:
        yield started
    except BaseException as exc:
        if started:
            with contextlib.suppress(OSError):  # an unwritable folder has none to remove
                ResultWriter.partial_path(path).unlink(missing_ok=True)
        if isinstance(exc, KeyboardInterrupt):
            raise KeyboardInterrupt("before any case ran; nothing written") from None
        raise


def _run_bench(opts: BenchOptions, held: list[int]) -> Outcome:
    from vecx.suites.suite import load

    t0 = time.perf_counter()
    out_dir = Path(opts.out)
    path = out_dir / RESULTS_NAME
    selectors = check_suites(opts.suites)
    suites = [load(s) for s in selectors]
    specs = candidate_specs(opts.backends)
    check_seed(opts.seed)
    baseline = check_baseline(opts.baseline)
    threads = check_threads(opts.threads)
    timeout = check_case_timeout(opts.case_timeout) or default_case_timeout(opts.quick)
    opts = _with_modes(opts, suites, selectors)
    original_int = signal.getsignal(signal.SIGINT)
    previous = signal.getsignal(signal.SIGTERM)
    with _before_any_case(path) as started:
        lock = lock_folder(out_dir)  # one writer per folder: before the partial file is reset
        if lock is not None:
            held.append(lock)
        if path.exists() and not path.is_file():
            raise IsADirectoryError(f"cannot write results to {path}: it is a folder, not a "
                                    "file")  # fmt: skip
        started.append(True)  # from here the partial file is this run's
        writer = ResultWriter(path)  # fails here, before any work, if the folder is not writable
        base_env = worker_env()
        unavailable = {s: why for s in specs if (why := precheck(s)) is not None}
        candidates = [s for s in specs if s not in unavailable]
        if not candidates:
            reasons = "; ".join(f"{s}: {why}" for s, why in unavailable.items())
            raise RuntimeError(f"no selected backend is available ({reasons})")

        order = shuffled_order(candidates, opts.seed)
        plans = {
            spec: [
                (suite.name, case, params)
                for suite, sel in zip(suites, selectors, strict=True)
                for case, params in _plan(suite, spec, opts, _sizes(opts, suite, sel))
            ]
            for spec in order
        }
        total = sum(len(p) for p in plans.values())
        from vecx.suites import timing_options

        header: dict[str, Any] = {
            "machine": machine_info(),
            "backends": {},
            "settings": {
                "dtype": "float32",
                "precision": opts.precision,
                "quick": opts.quick,
                "seed": opts.seed,
                "threads": threads,
                "order": order,
                "suites": [s.name for s in suites],
                "suite_versions": {s.name: s.version for s in suites},
                "baseline": baseline,
                "timing": timing_options(opts.quick),
                "env": runtime_settings()["env"],
                "workers": {},
                "load": {},
                "unavailable": unavailable,
            },
        }
        progress = Progress(total, quiet=opts.quiet, start=t0)
        for spec, why in unavailable.items():
            progress.line(f"{spec}  not run: {why}")
        interrupted: str | None = None
        stopped = ""  # the backend whose worker the interruption stopped
        worker: _Worker | None = None
        others = cpu_use_of_others(LOAD_SAMPLE_S)  # CPUs kept busy by others, before each backend
        header["settings"]["case_timeout_s"] = timeout
    try:
        for spec in order:
            count = idle_cpus(others) if threads == AUTO else threads
            env = thread_env(count, base_env)
            todo, attempt = plans[spec], 1
            with timeline(f"worker {spec}"):
                while True:
                    worker = _Worker(spec, selectors, todo, opts, path, env, count, attempt,
                                     restart=todo is not plans[spec],
                                     keep_fds=tuple(held))  # fmt: skip
                    _follow(worker, progress, header, timeout)
                    rc = worker.proc.wait()
                    if worker.unavailable is not None:
                        break
                    worker.settle(path)
                    missing = worker.missing_records(rc)
                    left = worker.not_reached()
                    if not missing:
                        worker.log.unlink(missing_ok=True)
                        break
                    # a new worker for the cases left, if this one got anywhere (each
                    # restart leaves fewer cases, so this ends)
                    ran = worker.current is not None or bool(worker.done)
                    restart = not worker.fatal and bool(left) and ran
                    running = case_id(*worker.current) if worker.current else None
                    fill = ResultWriter(path, append=True)
                    for rec in missing:
                        if restart and case_id(rec["suite"], rec["case"], rec["params"]) != running:
                            continue  # the next worker runs it
                        fill.add(rec)
                        progress.advance(text=f"{spec}  {_case_text(rec)}  ERROR {rec['error']}")
                    if not restart:
                        progress.line(f"{spec}  worker failed; log kept at {worker.log}")
                        break
                    rest = "the case left" if len(left) == 1 else f"the {len(left)} cases left"
                    progress.line(f"{spec}  worker {worker.ending(rc)}; log kept at "
                                  f"{worker.log}; a new worker runs {rest}")  # fmt: skip
                    todo, attempt = left, attempt + 1
            before, others = others, cpu_use_of_others(LOAD_SAMPLE_S)
            if spec in header["settings"]["workers"]:  # it started (not unavailable)
                header["settings"]["workers"][spec]["threads"] = count
                load = header["settings"]["load"].setdefault(spec, {})
                load.update(others_cpus_start=before, others_cpus_end=others)
            if worker.unavailable is not None:
                unavailable[spec] = worker.unavailable
                header["settings"]["order"].remove(spec)
                progress.total -= len(plans[spec])
                progress.line(f"{spec}  not run: {worker.unavailable}")
                worker.log.unlink(missing_ok=True)
            worker = None
    except KeyboardInterrupt as exc:
        _hold_signals()  # a second Ctrl-C or SIGTERM must not cut the stop short
        interrupted = "SIGTERM" if isinstance(exc, Interrupted) else "SIGINT"
        if worker is not None:
            stopped = worker.spec
            worker.stop()
            worker.log.unlink(missing_ok=True)
    finally:
        _hold_signals()  # from here to the written file, signals wait
        progress.close()

    if not header["settings"]["order"] and not interrupted:
        signal.signal(signal.SIGINT, original_int)
        signal.signal(signal.SIGTERM, previous)
        writer.partial.unlink(missing_ok=True)
        reasons = "; ".join(f"{s}: {why}" for s, why in unavailable.items())
        raise RuntimeError(f"no selected backend is available ({reasons})")

    # assemble: no second Ctrl-C or SIGTERM may cut the results file short
    try:
        records = ResultWriter.recover(path)
        # cases the stopped worker recorded after the signal, before the engine read their
        # events: saved, so counted and shown like the others
        for rec in records[progress.done :]:
            who = stopped or f"{rec['backend']}:{rec['device']}"
            progress.advance(text=f"{who}  {_case_text(rec)}")
        flagged = {}
        for suite in suites:
            found = suite.finalize([r for r in records if r["suite"] == suite.name],
                                   precision=opts.precision)  # fmt: skip
            header["settings"].update(found.settings)
            if found.flagged:
                flagged[found.flagged_as] = flagged.get(found.flagged_as, 0) + found.flagged
        completed = sum(1 for r in records if not r.get("error"))
        header["settings"].update(
            interrupted=interrupted, cases_planned=progress.total, cases_recorded=len(records)
        )
        header["settings"]["busy"] = busy_warning(header)  # in the file, not stderr alone
        try:
            _rewrite_partial(path, records)
            doc = ResultWriter(path, append=True).finish(header)
        except OSError as exc:  # disk full, say: the records are safe in the partial file
            partial = ResultWriter.partial_path(path)
            raise type(exc)(
                f"cannot write {path} ({exc.strerror or exc}); the {len(records)} records of "
                f"this run are kept in {partial}, which vecx compare, plot and report read "
                "(a new run into this folder replaces it)"
            ) from None
    finally:
        signal.signal(signal.SIGINT, original_int)
        signal.signal(signal.SIGTERM, previous)
    return Outcome(doc, path, interrupted, len(records) - completed,
                   time.perf_counter() - t0, flagged, doc["settings"]["busy"])  # fmt: skip


def _plan(suite: Any, spec: str, opts: BenchOptions, sizes: dict[str, Any]) -> list[tuple]:
    """``suite.plan(...)`` as a list, or one `OptionError` naming the suite, and the file
    and line that raised, instead of a traceback."""
    import traceback

    from vecx.suites import error_text

    try:
        return [(case, params) for case, params in
                suite.plan(spec, quick=opts.quick, **sizes)]  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - the user's suite: one line, then stop
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
        raise OptionError("suites", f"suite {suite.name!r}: its plan for {spec} raised "
                          f"{error_text(exc)}{where}") from None  # fmt: skip


def _with_modes(opts: BenchOptions, suites: list[Any], selectors: list[str]) -> BenchOptions:
    """``opts`` with its modes and compute dtypes passed, in ``sizes``, to each suite that
    takes them (``Suite.options``; its workers get them there too); an `OptionError` if no
    selected suite takes one that was given."""
    given = {"modes": check_modes(opts.modes),
             "compute_dtypes": check_compute_dtypes(opts.compute_dtypes)}  # fmt: skip
    given = {k: v for k, v in given.items() if v is not None}
    if not given:
        return opts
    sizes = {k: dict(v) for k, v in opts.sizes.items()}
    for option, values in given.items():
        takers = []
        for suite, selector in zip(suites, selectors, strict=True):
            if option in getattr(suite, "options", ()):
                own = sizes.setdefault(suite.name, dict(sizes.get(selector, {})))
                own[option] = values
                takers.append(suite.name)
        if not takers:
            what = "runs in modes" if option == "modes" else "takes compute dtypes"
            raise OptionError(option, f"none of the selected suites {what} ("
                              f"{', '.join(s.name for s in suites)}); the training suite does")
    return dataclasses.replace(opts, sizes=sizes, **given)


def _sizes(opts: BenchOptions, suite: Any, selector: str) -> dict[str, Any]:
    return dict(opts.sizes.get(suite.name, opts.sizes.get(selector, {})))


def busy_warning(doc: Mapping[str, Any]) -> str | None:
    """A sentence if other processes competed for the CPUs while a worker ran, or None.

    Two readings, before and after each backend: the CPUs other processes kept busy
    (``others_cpus_*``, measured over `LOAD_SAMPLE_S`: more than `BUSY_OTHERS_CPUS`
    counts) and the 1-minute load average (above the cores + 0.5: one worker alone loads
    the machine up to its thread count). A multithreaded BLAS call whose threads share a
    CPU with another process waits whole scheduler slices, so the numbers are suspect.
    """
    cores = (doc.get("machine") or {}).get("cores") or 0
    entries = ((doc.get("settings") or {}).get("load") or {}).items()
    loads = [value[0] for _, entry in entries for value in entry.values()
             if isinstance(value, list) and value and _number(value[0])]  # fmt: skip
    others = [(entry.get(k), spec) for spec, entry in entries
              for k in ("others_cpus_start", "others_cpus_end")
              if _number(entry.get(k))]  # fmt: skip
    parts = []
    if others and max(others)[0] > BUSY_OTHERS_CPUS:
        most, spec = max(others)
        parts.append(f"other processes kept {most:.2f} of {cores or '?'} CPUs busy around "
                     f"the {spec} worker")  # fmt: skip
    if cores and loads and max(loads) > cores + 0.5:
        parts.append(f"the 1-minute load average reached {max(loads):.2f} on {cores} cores")
    if not parts:
        return None
    return ("the machine was busy (" + "; ".join(parts) + "): other processes competed "
            "for the CPU, so times may be inflated")  # fmt: skip


#: Other processes' CPU use (in CPUs) above which `busy_warning` speaks.
BUSY_OTHERS_CPUS = 0.5


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _hold_signals() -> None:
    """Ignore SIGINT and SIGTERM until the results file is written (then restored)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted()


def params_text(params: Mapping[str, Any]) -> str:
    """`` (n=256)``: a case's scalar parameters for progress lines."""
    parts = [f"{k}={v}" for k, v in params.items()
             if k != "preset" and not isinstance(v, (dict, list))]  # fmt: skip
    return f" ({', '.join(parts)})" if parts else ""


def _case_text(rec: Mapping[str, Any]) -> str:
    return f"{rec['suite']}/{rec['case']}{params_text(rec.get('params') or {})}"


def worker_env() -> dict[str, str]:
    """The environment of every worker: the engine's, `WORKER_ENV`, and on ``PYTHONPATH``
    this vecx first, then the current folder (where a user's suite module lives): a
    ``vecx/`` folder there must not replace the vecx that runs the engine (workers start
    with ``-P``, so the current folder is not put before it)."""
    env = dict(os.environ)
    env.update(WORKER_ENV)
    root = str(Path(__file__).resolve().parents[2])
    parts = [root, os.getcwd()] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    return env


def _describe_exit(rc: int) -> str:
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        hint = " (out of memory?)" if -rc == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exit status {rc}"


_THREAD = re.compile(r"(Current thread|Thread) 0x[0-9a-f]+ \(most recent call first\):")
_FRAME = re.compile(r'\s+File "(.*)", line (\d+) in (.*)')  # faulthandler's, not a traceback's
_FATAL = re.compile(r"Fatal Python error: (.*)")


def where_it_was(log: Path) -> str:
    """The innermost frame, outside Python's own library, of the thread that ran the
    cases, from the last stack dump (``faulthandler``'s) in a worker's log, or ""."""
    import sysconfig

    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    stacks: list[list[tuple[str, ...]]] = []
    for line in lines:
        if _THREAD.match(line):
            stacks.append([])
        elif stacks and (m := _FRAME.match(line)):
            stacks[-1].append(m.groups())
    stdlib = sysconfig.get_paths()["stdlib"]
    for frames in reversed(stacks):  # innermost first in each
        if any(f[0].replace(os.sep, "/").endswith("vecx/engine/worker.py") for f in frames):
            file, number, func = next((f for f in frames if not f[0].startswith(stdlib)), frames[0])
            return f"{file}:{number} in {func}"
    return ""


def crash_note(log: Path) -> str:
    """What a dead worker's log says of its end: the fatal error and where it happened
    (``Segmentation fault in fake.py:58 in run``), else the log's last line."""
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    fatal = [m.group(1) for ln in lines if (m := _FATAL.match(ln))]
    if fatal:
        where = where_it_was(log)
        return fatal[-1] + (f" in {where}" if where else "")
    return lines[-1][:200] if lines else ""


class _Worker:
    """One backend's subprocess and what the engine learned from its events."""

    def __init__(
        self, spec: str, suites: list[str], planned: list[tuple[str, str, dict]],
        opts: BenchOptions, path: Path, env: Mapping[str, str], threads: int | None,
        attempt: int = 1, restart: bool = False, keep_fds: tuple[int, ...] = (),
    ) -> None:  # fmt: skip
        import json

        self.spec, self.planned = spec, planned
        self.done: set[str] = set()
        self.current: tuple[str, str, dict] | None = None
        self.started_at = 0.0  # time.monotonic() of the current case's start event
        self.timed_out: float | None = None
        self.info: dict[str, Any] | None = None
        self.fatal: str | None = None
        self.unavailable: str | None = None
        suffix = f"-{attempt}" if attempt > 1 else ""
        self.log = path.parent / f"worker-{spec.replace(':', '-')}{suffix}.log"
        self._disk_before = _records_of(path, spec)
        config = {
            "spec": spec, "suites": suites, "quick": opts.quick, "seed": opts.seed,
            "precision": opts.precision, "results": str(path), "sizes": opts.sizes,
            "threads": threads,
            "only": [case_id(*p) for p in planned] if restart else None,
        }  # fmt: skip
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, *SAFE_PATH, "-m", "vecx.engine.worker", json.dumps(config)],
                stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, env=dict(env),
                text=True, bufsize=1, start_new_session=True,
                pass_fds=keep_fds,  # the folder's lock: held while a worker outlives us
            )  # fmt: skip

    def events(self) -> Iterable[Event]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            event = Event.decode(line)
            if event is not None:
                yield event

    def stop(self) -> None:
        """SIGTERM the worker's process group, then SIGKILL if it lingers."""
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def dump_stacks(self) -> None:
        """Have the worker write its Python stacks to its log (where a hung case was)."""
        from vecx.engine.worker import STACKS_SIGNAL

        if STACKS_SIGNAL is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.proc.pid, STACKS_SIGNAL)
            time.sleep(STACKS_WAIT_S)  # written by a C signal handler: at once, unless stopped

    def kill(self) -> None:
        """SIGKILL the worker's whole process group (children it forked included)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def settle(self, path: Path) -> None:
        """Count the running case as done if its record reached the disk: a worker killed
        between writing a record and sending its ``done`` event must not get the case
        recorded twice (once measured, once as a crash)."""
        if self.current is None:
            return
        written = _records_of(path, self.spec) - self._disk_before
        if written > len(self.done):
            self.done.add(case_id(*self.current))
            self.current = None

    def not_reached(self) -> list[tuple[str, str, dict]]:
        """Planned cases neither finished nor running when the worker ended."""
        running = case_id(*self.current) if self.current else None
        return [p for p in self.planned if case_id(*p) not in self.done and case_id(*p) != running]

    def ending(self, rc: int) -> str:
        """How the worker ended, for a progress line."""
        if self.timed_out is not None:
            return f"killed after a case ran {self.timed_out:g} s"
        return "crashed (" + _describe_exit(rc) + ")"

    def missing_records(self, rc: int) -> list[dict[str, Any]]:
        """Error records for every planned case the worker did not finish."""
        backend, device = _backend_device(self.spec)
        why = self.fatal or _describe_exit(rc)
        tail = "" if self.fatal else crash_note(self.log)
        out = []
        for suite, case, params in self.planned:
            if case_id(suite, case, params) in self.done:
                continue
            if self.fatal:
                msg = f"{self.spec} could not start: {why}"
            elif self.current == (suite, case, params) and self.timed_out is not None:
                where = where_it_was(self.log)
                msg = (f"timed out after {self.timed_out:g} s" + (f", in {where}" if where else "")
                       + " (the worker and its children were killed; see --case-timeout)")
            elif self.current == (suite, case, params):
                msg = f"worker crashed during this case ({why})" + (f": {tail}" if tail else "")
            elif self.current is not None:
                cs, cc, cp = self.current
                msg = (f"not run: the {self.spec} worker crashed earlier, in "
                       f"{cs}/{cc}{params_text(cp)}")  # fmt: skip
            else:
                msg = f"not run: the {self.spec} worker ended early ({why})"
            out.append(result(suite, case, backend, device, params=params, error=msg))
        return out


#: Seconds between the engine's looks at a running case (its time limit, the display).
POLL_S = 0.5
#: Seconds a timed-out worker is given to write its stacks before it is killed.
STACKS_WAIT_S = 0.2


def _backend_device(spec: str) -> tuple[str, str]:
    """(backend, device) as records name them, from a spec like ``torch:cuda``."""
    backend, _, device = spec.partition(":")
    return backend, "cuda:0" if device == "cuda" else device


def _records_of(path: Path, spec: str) -> int:
    """How many records of ``spec``'s backend and device the partial file holds."""
    backend, device = _backend_device(spec)
    try:
        records = ResultWriter.recover(path)
    except FileNotFoundError:
        return 0
    return sum(1 for r in records if r.get("backend") == backend and r.get("device") == device)


def _follow(worker: _Worker, progress: Progress, header: dict[str, Any],
            timeout: float | None = None) -> None:  # fmt: skip
    """Consume one worker's events until it exits, killing it (and its process group) if
    a case runs longer than ``timeout`` seconds. Events are read on a thread, so the
    engine can look at the clock while a case runs; once the worker has exited, children
    it left holding the pipe are killed too, so they cannot hold up the run."""
    import queue
    import threading

    settings = header["settings"]
    events: queue.Queue[Event | None] = queue.Queue()

    def pump() -> None:
        try:
            for event in worker.events():
                events.put(event)
        finally:
            events.put(None)

    threading.Thread(target=pump, name=f"events {worker.spec}", daemon=True).start()
    while True:
        try:
            event = events.get(timeout=POLL_S)
        except queue.Empty:
            running = time.monotonic() - worker.started_at
            if worker.current is not None:  # the running case and how long it has run
                suite, case, params = worker.current
                progress.begin(f"{worker.spec}  {suite}/{case}{params_text(params)}  "
                               f"{running:.0f} s")  # fmt: skip
            else:
                progress.tick()
            if worker.proc.poll() is not None:
                worker.kill()  # exited, but a child still holds the pipe open
            elif worker.current is not None and timeout and running > timeout:
                worker.timed_out = timeout
                worker.dump_stacks()
                worker.kill()
            continue
        if event is None:
            return
        if event.kind == "backend":
            worker.info = event.info or {}
            header["backends"][worker.spec] = worker.info
            settings["workers"][worker.spec] = event.settings or {}
            settings["load"][worker.spec] = {"start": event.load}
            name = worker.info.get("device_name", "")
            progress.line(f"{worker.spec}  started ({worker.info.get('version', '?')}, {name})")
        elif event.kind == "start":
            worker.current = (event.suite or "", event.case or "", event.params or {})
            worker.started_at = time.monotonic()
            progress.begin(f"{worker.spec}  {event.suite}/{event.case}"
                           f"{params_text(event.params or {})}")  # fmt: skip
        elif event.kind == "done":
            worker.done.add(event.key)
            progress.advance(text=f"{worker.spec}  {event.suite}/{event.case}"
                             f"{params_text(event.params or {})}  {event.text or ''}")  # fmt: skip
            worker.current = None
        elif event.kind == "end":
            settings["load"].setdefault(worker.spec, {})["end"] = event.load
        elif event.kind == "unavailable":
            worker.unavailable = event.error or "unavailable"
        elif event.kind == "fatal":
            worker.fatal = str(event.error)


def _rewrite_partial(path: Path, records: list[dict[str, Any]]) -> None:
    """Replace the partial file by ``records`` atomically (a crash leaves old or new)."""
    staging = path.with_name(f".{path.name}.post")
    tmp = ResultWriter(staging)
    try:
        for rec in records:
            tmp.add(rec)
        os.replace(tmp.partial, ResultWriter.partial_path(path))
    except BaseException:
        tmp.partial.unlink(missing_ok=True)  # the old partial file stands, complete
        raise
