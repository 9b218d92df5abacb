"""``vecx bench``'s engine: one subprocess per backend x device, streamed, crash-tolerant.

Why it is built this way:

* **One worker process per backend x device**, run one after another in a shuffled
  (seeded, recorded) order. Frameworks in one process fight over threads (OpenBLAS,
  OpenMP and XLA pools spinning against each other made NumPy's 128^3 matmul 500x slower
  in one process here) and over GPU memory; a fresh process per backend also makes every
  first call honest. Workers get ``XLA_PYTHON_CLIENT_PREALLOCATE=false``; any other
  setting that changes numbers (``OPENBLAS_CORETYPE``, thread counts) is passed through
  untouched and recorded, never changed.
* **Availability is probed in a subprocess too** (``python -m vecx.runner probe``): asking
  JAX for its GPUs in the parent would hold GPU memory for the whole run.
* **Records are streamed**: workers append each finished case to
  ``<out>/results.json.partial.jsonl`` (``ResultWriter(append=True)``, one fsynced line
  per record). The parent watches the worker's event pipe for progress, and when a worker
  dies (segfault, OOM kill) it records an error for the case it was running and for each
  planned case it never reached, then goes on with the next backend.
* **Interruptions keep what completed**: on Ctrl-C or SIGTERM the parent stops the worker,
  post-processes the completed records, writes ``results.json`` and prints the summary.
  Workers run in their own session, so a terminal's Ctrl-C reaches the parent only and
  the parent decides what to stop.
* **Post-processing** needs every backend's records: ``pct_of_ceiling`` of the scaling
  suite (:func:`add_ceilings`) and the cross-backend loss check of the train suite
  (:func:`check_agreement`). It rewrites the partial file atomically before
  ``ResultWriter.finish`` assembles ``results.json``.

The worker protocol (``python -m vecx.runner worker CONFIG_JSON``) is internal: one JSON
object per line on the worker's original stdout (``backend``, ``start``, ``done``,
``fatal``); anything the frameworks print goes to stderr, kept in a log file only when the
worker fails.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vecx.results import ResultWriter, machine_info, result, runtime_settings
from vecx.suites import SUITES, case_key, error_text, fmt_rate, suite_name, timing_options
from vecx.suites import plan as suite_plan

RESULTS_NAME = "results.json"
DEFAULT_OUT = "vecx-results"
#: Environment every worker gets on top of the parent's.
WORKER_ENV = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
#: Relative tolerance on final training losses across backends/impls, by matmul precision
#: (see `check_agreement`), and an absolute floor for losses near zero.
AGREE_RTOL = {"float32": 1e-4, "tf32": 1e-2}
AGREE_ATOL = 1e-9
#: Seconds a worker gets to exit after SIGTERM before it is killed.
KILL_GRACE_S = 3.0


@dataclass
class BenchOptions:
    """What ``vecx bench`` was asked to do (the CLI fills it; tests build it directly).

    ``sizes`` maps a suite name to keyword arguments of its ``plan``/``cases`` (tests use it
    to shrink problems); ``backends`` holds names (``torch``: every device kind of torch)
    or specs (``torch:cpu``), ``None`` meaning every known one.
    """

    backends: list[str] | None = None
    suites: list[str] | None = None
    quick: bool = False
    out: Path = Path(DEFAULT_OUT)
    precision: str = "float32"
    baseline: str = "numpy"
    quiet: bool = False
    seed: int = 0
    plots: bool = True
    tables: bool = True
    sizes: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Outcome:
    """What a bench run produced: the document, where it is, and how it ended."""

    doc: dict[str, Any]
    path: Path
    interrupted: str | None
    errors: int
    disagreements: int
    plots: list[Path]
    plot_error: str | None
    elapsed_s: float
    busy: str | None = None

    @property
    def exit_status(self) -> int:
        """130 if interrupted, 1 if any case failed or disagreed, else 0."""
        if self.interrupted:
            return 130
        return 1 if self.errors or self.disagreements else 0


class Interrupted(KeyboardInterrupt):
    """SIGTERM, turned into the same path as Ctrl-C."""


# --------------------------------------------------------------------------- selection


def candidate_specs(selection: Sequence[str] | None) -> list[str]:
    """Specs (``name:kind``) to consider: every known backend x device, or the selection.

    A bare name stands for every device kind of that backend. Raises ``ValueError`` for
    an empty selection (``--backends ""``) or an unknown name or device (no framework is
    imported).
    """
    from vecx.registry import entries, parse_spec

    known = entries()
    if selection is None:
        return [f"{e.name}:{kind}" for e in known.values() for kind in e.devices]
    out: list[str] = []
    for item in selection:
        item = item.strip().lower()
        if not item:
            continue
        entry, device = parse_spec(item)
        if ":" not in item:
            out += [f"{entry.name}:{kind}" for kind in entry.devices]
        else:
            out.append(f"{entry.name}:{'cuda' if device == 'cuda:0' else device}")
    if not out:
        raise ValueError(
            f"--backends is empty; choose from {', '.join(known)} "
            "(or leave it out for every available backend)"
        )
    return list(dict.fromkeys(out))


def check_suites(selection: Sequence[str] | None) -> list[str]:
    """Validated suite names in running order (default: every built-in suite).

    Built-in names are case-insensitive (``Matmul``); a dotted module path is kept as is.
    Raises ``ValueError`` for an empty selection or an unknown suite.
    """
    if selection is None:
        return list(SUITES)
    names = [s.strip() for s in selection if s.strip()]
    if not names:
        raise ValueError(
            f"--suites is empty; choose from {', '.join(SUITES)} (or leave it out for all)"
        )
    names = [n.lower() if n.lower() in SUITES else n for n in names]
    for name in names:
        suite_name(name)  # raises ValueError naming the choices
    return list(dict.fromkeys(names))


def check_seed(seed: Any) -> int:
    """``--seed`` as an int >= 0 (it seeds NumPy, PyTorch and JAX generators alike)."""
    from vecx.data import check_int

    return check_int("--seed", seed, 0)


def probe(specs: Sequence[str], env: Mapping[str, str]) -> list[dict[str, Any]]:
    """Availability of ``specs`` as ``[{spec, available, reason}]``, asked in a subprocess."""
    proc = subprocess.run(
        [sys.executable, "-m", "vecx.runner", "probe", *specs],
        capture_output=True, text=True, env=dict(env), check=False,
    )  # fmt: skip
    try:
        rows = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"could not probe backends: {tail}") from None
    return rows


def _probe_main(specs: Sequence[str]) -> int:
    from vecx.registry import status

    rows = []
    for spec in specs:
        st = status(spec)
        rows.append({"spec": spec, "available": st.available, "reason": st.reason})
    sys.stdout.write(json.dumps(rows) + "\n")
    return 0


def shuffled_order(specs: Sequence[str], seed: int) -> list[str]:
    """The order backends run in: shuffled, so that no backend always runs first (on a
    cold machine) or last (after the others heated it), yet reproducible from ``seed``."""
    order = list(specs)
    random.Random(seed).shuffle(order)
    return order


# --------------------------------------------------------------------------- post-processing


#: Copies whose two arrays take at least this many bytes measure main memory, not a
#: cache (this CPU's last-level cache is 32 MiB; an H100's L2 is 50 MB).
MAIN_MEMORY_BYTES = 64 * 2**20
#: How each ceiling was taken, as tables, reports and plots say it.
CEILING_BASIS = {
    "bandwidth": "best copy rate at any size (on a CPU an in-cache rate)",
    "gflops": "best matmul rate any backend reached",
}


def add_ceilings(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Fill ``pct_of_ceiling`` of scaling records in place; return the ceilings per device.

    Bandwidth records (``vector-add``, ``copy``) are divided by the best ``copy`` rate
    measured on the same device (by any backend, at any size: on a CPU that is a rate
    from cache, so main-memory sizes score far below 100%); ``matmul`` by the best
    matmul rate any backend reached on that device. Failed records and devices without a
    ceiling keep ``None``. Each record gets an extra ``ceiling`` key saying what it was
    divided by, so a percentage can be traced to its source.

    Each device's entry also has ``bandwidth_memory``, a second bandwidth reference that
    no percentage uses: the best copy rate over sizes whose two arrays take at least
    `MAIN_MEMORY_BYTES` (main memory), or, in runs without such sizes (``--quick``), at
    the largest size measured (then ``main_memory`` is false). Every entry says how it
    was taken in ``basis``.
    """
    records = [r for r in records if r.get("suite") == "scaling"]
    kinds = {"bandwidth": "copy", "gflops": "matmul"}
    ceilings: dict[str, dict[str, Any]] = {}
    copies: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        source = kinds.get(rec.get("metric") or "")
        value = rec.get("value")
        if rec.get("error") or source != rec.get("case") or not _positive(value):
            continue
        if source == "copy" and isinstance((rec.get("params") or {}).get("n"), int):
            copies.setdefault(rec["device"], []).append(rec)
        best = ceilings.setdefault(rec["device"], {}).get(rec["metric"])
        if best is None or value > best["value"]:
            ceilings[rec["device"]][rec["metric"]] = _ceiling(rec, CEILING_BASIS[rec["metric"]])
    for device, recs in copies.items():
        ceilings[device]["bandwidth_memory"] = _memory_ceiling(recs)
    for rec in records:
        ceiling = ceilings.get(rec["device"], {}).get(rec.get("metric") or "")
        if rec.get("error") or ceiling is None or not _positive(rec.get("value")):
            rec["pct_of_ceiling"] = None
            continue
        rec["pct_of_ceiling"] = 100.0 * rec["value"] / ceiling["value"]
        rec["ceiling"] = dict(ceiling)
    return ceilings


def _ceiling(rec: Mapping[str, Any], basis: str) -> dict[str, Any]:
    return {
        "value": rec["value"], "unit": rec.get("unit"), "backend": rec["backend"],
        "case": rec["case"], "n": (rec.get("params") or {}).get("n"), "basis": basis,
    }  # fmt: skip


def _memory_ceiling(copies: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The main-memory bandwidth reference from one device's ``copy`` records."""
    from vecx.suites.scaling import ITEMSIZE

    def nbytes(rec: Mapping[str, Any]) -> int:
        return 2 * ITEMSIZE.get(rec.get("dtype") or "", 4) * rec["params"]["n"]

    big = [r for r in copies if nbytes(r) >= MAIN_MEMORY_BYTES]
    if big:
        best = max(big, key=lambda r: r["value"])
        basis = (
            f"best copy rate at sizes whose 2 arrays take >= {MAIN_MEMORY_BYTES // 2**20} MiB "
            "(main memory)"
        )
    else:
        largest = max(r["params"]["n"] for r in copies)
        best = max((r for r in copies if r["params"]["n"] == largest), key=lambda r: r["value"])
        basis = (
            f"best copy rate at the largest size measured (2 arrays of "
            f"{nbytes(best) / 2**21:.3g} MiB: may still be in cache)"
        )
    return {**_ceiling(best, basis), "main_memory": bool(big)}


def check_agreement(
    records: Iterable[dict[str, Any]], *, precision: str = "float32", atol: float = AGREE_ATOL
) -> int:
    """Set ``agrees`` on train records in place; return how many disagree.

    For each preset, the reference is the median final loss over every backend x device x
    implementation that finished; a record agrees when ``|loss - ref| <= atol + rtol |ref|``
    with ``rtol = AGREE_RTOL[precision]``. The trainer feeds every backend the same data,
    initial parameters and minibatches, so correct runs differ only by float32 rounding:
    across NumPy, PyTorch and JAX (vecx and native) on this CPU the largest relative
    spread measured was 8e-6 (linreg) and 1e-7 (airfoil). ``rtol = 1e-4`` leaves ten times
    that; a wrong gradient, learning rate or batch order moves the loss by far more. TF32
    rounds matmul inputs to 10 bits, hence ``1e-2`` with ``--precision tf32``. With one
    finished record there is nothing to compare and ``agrees`` is ``None``; two that
    disagree are both flagged, since neither can be preferred.
    """
    rtol = AGREE_RTOL.get(precision, AGREE_RTOL["float32"])
    by_preset: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        if rec.get("suite") == "train":
            rec["agrees"] = None
            if not rec.get("error") and _finite(rec.get("value")):
                by_preset.setdefault(rec["case"], []).append(rec)
    disagreements = 0
    for recs in by_preset.values():
        if len(recs) < 2:
            continue
        ref = statistics.median(r["value"] for r in recs)
        for rec in recs:
            ok = abs(rec["value"] - ref) <= atol + rtol * abs(ref)
            rec["agrees"] = ok
            if not ok:
                disagreements += 1
                extra = (
                    f"final loss {rec['value']:.6g} disagrees with the median {ref:.6g} over "
                    f"{len(recs)} backends/impls (tolerance {rtol:g} relative)"
                )
                rec["note"] = f"{rec['note']}; {extra}" if rec.get("note") else extra
    return disagreements


def _positive(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# --------------------------------------------------------------------------- progress


class Progress:
    """Where the run is: rich progress on a terminal, plain lines otherwise.

    Live mode (stderr is a terminal and not ``--quiet``) shows the backend, suite and case
    running, done/total, how many remain and the elapsed time, with one line per finished
    case above the bar. It is redrawn only when a case starts or ends (no refresh thread,
    no spinner), so the display costs the measured worker no CPU time. Plain mode prints
    the same lines and nothing else, for logs and CI.
    Colour follows rich's rules, so ``NO_COLOR`` turns it off.
    """

    def __init__(
        self, total: int, *, quiet: bool, stream: Any = None, start: float | None = None
    ) -> None:
        from rich.console import Console

        self.stream = stream if stream is not None else sys.stderr
        self.console = Console(file=self.stream, highlight=False, markup=False)
        self.total, self.done = total, 0
        # the run's clock (``time.perf_counter()`` at its start, probing included), so the
        # last line's time matches the summary's
        self.start = time.perf_counter() if start is None else start
        self.live = not quiet and self.console.is_terminal
        self._bar: Any = None
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import (
                Progress as RichProgress,
            )

            # No refresh thread and no spinner: the bar is redrawn only when a case starts
            # or ends, so the parent takes no CPU from the worker it is timing (rich's
            # default redraws 10 times a second, on the same cores).
            self._bar = RichProgress(
                TextColumn("{task.description}"), BarColumn(),
                MofNCompleteColumn(), TextColumn("{task.fields[left]} left"),
                TimeElapsedColumn(), console=self.console, transient=True,
                auto_refresh=False,
            )  # fmt: skip
            self._task = self._bar.add_task("starting", total=total, left=total)
            self._bar.start()

    def _stamp(self) -> str:
        elapsed = int(time.perf_counter() - self.start)
        width = len(str(self.total))
        return f"[{self.done:>{width}}/{self.total} {elapsed // 60}:{elapsed % 60:02d}]"

    def line(self, text: str) -> None:
        """A message above the bar (or a plain line); after `close`, in the same style."""
        if self.live:
            self.console.print(text)  # the bar's console: printed above it while it runs
        else:
            # one write with its newline: a Ctrl-C between print()'s text and end writes
            # would glue the next line onto this one
            self.stream.write(f"{self._stamp()} {text}\n")
            self.stream.flush()

    def begin(self, spec: str, suite: str, case: str, params: Mapping[str, Any]) -> None:
        if self._bar is not None:
            self._bar.update(
                self._task, description=f"{spec}  {suite}/{case}{_params(params)}", refresh=True
            )

    def finish_case(self, spec: str, suite: str, case: str, params: Mapping, text: str) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.update(
                self._task, completed=self.done, left=self.total - self.done, refresh=True
            )
        self.line(f"{spec}  {suite}/{case}{_params(params)}  {text}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _params(params: Mapping[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in params.items() if k != "preset"]
    return f" ({', '.join(parts)})" if parts else ""


def _summary_text(rec: Mapping[str, Any]) -> str:
    if rec.get("error"):
        return f"ERROR {rec['error']}"
    if rec.get("metric") == "loss":
        return f"loss {rec.get('value'):.4g}, {fmt_rate(rec.get('median_s'), 's')}/epoch"
    return fmt_rate(rec.get("value"), rec.get("unit"))


# --------------------------------------------------------------------------- the parent


def _worker_env(extra_path: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(WORKER_ENV)
    root = str(Path(__file__).resolve().parent.parent)  # so workers import this vecx
    parts = [root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
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


def _last_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


class _Worker:
    """One backend's subprocess and what the parent learned from its events."""

    def __init__(
        self, spec: str, suites: list[str], planned: list[tuple[str, str, dict]],
        opts: BenchOptions, path: Path, env: Mapping[str, str],
    ) -> None:  # fmt: skip
        self.spec, self.planned = spec, planned
        self.done: set[str] = set()
        self.current: tuple[str, str, dict] | None = None
        self.info: dict[str, Any] | None = None
        self.settings: dict[str, Any] | None = None
        self.fatal: str | None = None
        self.log = path.parent / f"worker-{spec.replace(':', '-')}.log"
        config = {
            "spec": spec,
            "suites": suites,
            "quick": opts.quick,
            "seed": opts.seed,
            "precision": opts.precision,
            "results": str(path),
            "sizes": opts.sizes,
        }
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "vecx.runner", "worker", json.dumps(config)],
                stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, env=dict(env),
                text=True, bufsize=1, start_new_session=True,
            )  # fmt: skip

    def events(self) -> Iterable[dict[str, Any]]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue  # not ours: ignore rather than die
            if isinstance(event, dict):
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

    def missing_records(self, rc: int) -> list[dict[str, Any]]:
        """Error records for every planned case the worker did not finish."""
        backend, _, device = self.spec.partition(":")
        device = "cuda:0" if device == "cuda" else device
        why = self.fatal or _describe_exit(rc)
        tail = "" if self.fatal else _last_line(self.log)
        out = []
        for suite, case, params in self.planned:
            if case_key(suite, case, params) in self.done:
                continue
            if self.fatal:
                msg = f"{self.spec} could not start: {why}"
            elif self.current == (suite, case, params):
                msg = f"worker crashed during this case ({why})" + (f": {tail}" if tail else "")
            elif self.current is not None:
                cs, cc, cp = self.current
                msg = f"not run: the {self.spec} worker crashed earlier, in {cs}/{cc}{_params(cp)}"
            else:
                msg = f"not run: the {self.spec} worker ended early ({why})"
            out.append(result(suite, case, backend, device, params=params, error=msg))
        return out


def run_bench(opts: BenchOptions) -> Outcome:
    """Run the benchmark described by ``opts``; see the module docstring.

    Raises ``OSError`` (unwritable ``--out``) or ``ValueError`` (an empty or unknown
    ``--backends``/``--suites``, a negative ``--seed``, an unknown ``--baseline``) before
    anything runs, and ``RuntimeError`` when no selected backend is available.
    """
    t0 = time.perf_counter()
    out_dir = Path(opts.out)
    path = out_dir / RESULTS_NAME
    suites = check_suites(opts.suites)
    specs = candidate_specs(opts.backends)
    check_seed(opts.seed)
    from vecx.tables import check_baseline

    baseline = check_baseline(opts.baseline)
    writer = ResultWriter(path)  # fails here, before any work, if --out is not writable
    env = _worker_env()
    print("vecx bench: checking which backends are available...", file=sys.stderr, flush=True)
    try:
        rows = probe(specs, env)
    except BaseException:
        writer.partial.unlink(missing_ok=True)
        raise
    available = [r["spec"] for r in rows if r["available"]]
    unavailable = {r["spec"]: r["reason"] for r in rows if not r["available"]}
    if not available:
        writer.partial.unlink(missing_ok=True)
        reasons = "; ".join(f"{s}: {why}" for s, why in unavailable.items())
        raise RuntimeError(f"no selected backend is available ({reasons})")

    order = shuffled_order(available, opts.seed)
    plans: dict[str, list[tuple[str, str, dict]]] = {}
    for spec in order:
        plans[spec] = [
            (suite_name(s), case, params)
            for s in suites
            for case, params in suite_plan(s, spec, quick=opts.quick, **opts.sizes.get(s, {}))
        ]
    total = sum(len(p) for p in plans.values())
    header: dict[str, Any] = {
        "machine": machine_info(),
        "backends": {},
        "settings": {
            "dtype": "float32",
            "precision": opts.precision,
            "quick": opts.quick,
            "seed": opts.seed,
            "order": order,
            "suites": [suite_name(s) for s in suites],
            "baseline": baseline,
            "timing": timing_options(opts.quick),
            "env": runtime_settings()["env"],
            "workers": {},
            "load": {},
            "unavailable": unavailable,
            "agree_tolerance": {
                "rtol": AGREE_RTOL.get(opts.precision, AGREE_RTOL["float32"]),
                "atol": AGREE_ATOL,
            },
        },
    }
    progress = Progress(total, quiet=opts.quiet, start=t0)
    for spec, why in unavailable.items():
        progress.line(f"{spec}  not run: {why}")
    interrupted: str | None = None
    stopped = ""  # the backend whose worker the interruption stopped
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    worker: _Worker | None = None
    try:
        for spec in order:
            worker = _Worker(spec, suites, plans[spec], opts, path, env)
            _follow(worker, progress, header)
            rc = worker.proc.wait()
            missing = worker.missing_records(rc)
            if missing:
                fill = ResultWriter(path, append=True)
                for rec in missing:
                    fill.add(rec)
                    progress.finish_case(spec, rec["suite"], rec["case"], rec["params"],
                                         _summary_text(rec))
                progress.line(f"{spec}  worker failed; log kept at {worker.log}")
            else:
                worker.log.unlink(missing_ok=True)
            worker = None
    except KeyboardInterrupt as exc:
        interrupted = "SIGTERM" if isinstance(exc, Interrupted) else "SIGINT"
        if worker is not None:
            stopped = worker.spec
            worker.stop()
            worker.log.unlink(missing_ok=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        progress.close()

    # assemble: no second Ctrl-C may cut the results file short
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        records = ResultWriter.recover(path)
        # cases the stopped worker recorded after the signal, before the parent read their
        # events: saved, so counted and shown like the others
        for rec in records[progress.done :]:
            progress.finish_case(stopped or f"{rec['backend']}:{rec['device']}", rec["suite"],
                                 rec["case"], rec["params"], _summary_text(rec))  # fmt: skip
        ceilings = add_ceilings(records)
        disagreements = check_agreement(records, precision=opts.precision)
        completed = sum(1 for r in records if not r.get("error"))
        header["settings"].update(
            ceilings=ceilings, interrupted=interrupted, cases_planned=total,
            cases_recorded=len(records),
        )  # fmt: skip
        _rewrite_partial(path, records)
        _remove_old_plots(out_dir)  # figures of an earlier run must not sit beside these
        doc = ResultWriter(path, append=True).finish(header)
    finally:
        signal.signal(signal.SIGINT, old_int)
    errors = len(records) - completed
    plots, plot_error = [], None
    if opts.tables:
        _print_tables(doc, baseline)
    if opts.plots and not interrupted:
        plots, plot_error = _plots(doc, out_dir)
    return Outcome(
        doc, path, interrupted, errors, disagreements, plots, plot_error,
        time.perf_counter() - t0, busy_warning(doc),
    )  # fmt: skip


def busy_warning(doc: Mapping[str, Any]) -> str | None:
    """A sentence if the 1-minute load exceeded the cores (+0.5) while a worker ran.

    One worker alone loads the machine up to its thread count (at most the cores), so
    more means other processes competed for the CPU: on a shared machine that can make a
    multithreaded BLAS call wait a whole scheduler slice, and the numbers are suspect.
    """
    cores = (doc.get("machine") or {}).get("cores") or 0
    loads = [
        value[0]
        for entry in ((doc.get("settings") or {}).get("load") or {}).values()
        for value in entry.values()
        if isinstance(value, list) and value
    ]
    if not cores or not loads or max(loads) <= cores + 0.5:
        return None
    return (
        f"the machine was busy (1-minute load average up to {max(loads):.2f} on {cores} "
        "cores): other processes competed for the CPU, so times may be inflated"
    )


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted()


def _follow(worker: _Worker, progress: Progress, header: dict[str, Any]) -> None:
    """Consume one worker's events until it exits."""
    for event in worker.events():
        kind = event.get("event")
        if kind == "backend":
            worker.info = event.get("info") or {}
            header["backends"][worker.spec] = worker.info
            header["settings"]["workers"][worker.spec] = event.get("settings") or {}
            header["settings"]["load"][worker.spec] = {"start": event.get("load")}
            name = worker.info.get("device_name", "")
            progress.line(f"{worker.spec}  started ({worker.info.get('version', '?')}, {name})")
        elif kind == "start":
            worker.current = (event["suite"], event["case"], event["params"])
            progress.begin(worker.spec, event["suite"], event["case"], event["params"])
        elif kind == "done":
            worker.done.add(case_key(event["suite"], event["case"], event["params"]))
            progress.finish_case(
                worker.spec, event["suite"], event["case"], event["params"], event.get("text", "")
            )
            worker.current = None
        elif kind == "end":
            header["settings"]["load"].setdefault(worker.spec, {})["end"] = event.get("load")
        elif kind == "fatal":
            worker.fatal = str(event.get("error"))


def _rewrite_partial(path: Path, records: list[dict[str, Any]]) -> None:
    """Replace the partial file by ``records`` atomically (a crash leaves old or new)."""
    staging = path.with_name(f".{path.name}.post")
    tmp = ResultWriter(staging)
    for rec in records:
        tmp.add(rec)
    os.replace(tmp.partial, ResultWriter.partial_path(path))


def _print_tables(doc: Mapping[str, Any], baseline: str) -> None:
    try:
        from vecx import tables
    except ModuleNotFoundError:
        return
    tables.print_tables(tables.suite_tables(doc, baseline=baseline))


def _remove_old_plots(out_dir: Path) -> None:
    """Delete the figures ``vecx.plots`` names (and only those) from ``out_dir``."""
    try:
        from vecx.plots import figure_files
    except ModuleNotFoundError:
        return
    for old in figure_files(out_dir):
        with contextlib.suppress(OSError):  # never fail a run for a stale figure
            old.unlink()


def _plots(doc: Mapping[str, Any], out_dir: Path) -> tuple[list[Path], str | None]:
    """Figures via ``vecx.plots`` if present; a failure is one line, never lost results."""
    try:
        from vecx.plots import plot_results
    except ModuleNotFoundError:
        return [], None
    try:
        return list(plot_results(doc, out_dir)), None
    except Exception as exc:
        return [], error_text(exc)


# --------------------------------------------------------------------------- the worker


def _worker_main(config: Mapping[str, Any]) -> int:
    """Run every planned case of one backend, streaming records and events."""
    events = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # frameworks' own prints (even from C) go to the log, not the pipe
    parent = os.getppid()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    def emit(**event: Any) -> None:
        events.write(json.dumps(event, default=str) + "\n")
        events.flush()

    import vecx
    from vecx.suites import cases, failed, run_case

    spec, quick, seed = config["spec"], bool(config["quick"]), int(config["seed"])
    sizes: dict[str, dict[str, Any]] = config.get("sizes") or {}
    try:
        be = vecx.backend(spec, seed=seed, precision=config.get("precision", "float32"))
        info = be.info()
    except Exception as exc:
        emit(event="fatal", error=error_text(exc))
        return 3
    emit(event="backend", info=info, settings=runtime_settings(), load=_load())
    writer = ResultWriter(config["results"], append=True)
    for suite in config["suites"]:
        be.seed(seed)  # each suite sees the same data whatever ran before it
        try:
            todo = cases(suite, be, quick=quick, seed=seed, **sizes.get(suite, {}))
        except Exception as exc:  # the suite cannot even set up: each case gets the error
            for case, params in suite_plan(suite, spec, quick=quick, **sizes.get(suite, {})):
                rec = failed(suite_name(suite), case, be, params, exc)
                writer.add(rec)
                emit(event="done", suite=rec["suite"], case=case, params=params,
                     text=_summary_text(rec))
            continue
        for case in todo:
            if os.getppid() != parent:
                return 4  # orphaned: the parent is gone, nobody will read this
            emit(event="start", suite=case.suite, case=case.case, params=dict(case.params))
            rec = run_case(case, be)
            writer.add(rec)
            emit(event="done", suite=case.suite, case=case.case, params=dict(case.params),
                 text=_summary_text(rec))
    emit(event="end", load=_load())
    return 0


def _load() -> list[float] | None:
    """1, 5 and 15-minute load averages: other work on the machine skews every number."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vecx.runner worker CONFIG_JSON`` or ``... probe SPEC...`` (internal)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["worker"] and len(args) == 2:
        return _worker_main(json.loads(args[1]))
    if args[:1] == ["probe"]:
        return _probe_main(args[1:])
    print("usage: python -m vecx.runner worker CONFIG_JSON | probe SPEC...", file=sys.stderr)
    return 2


__all__ = [
    "AGREE_ATOL",
    "AGREE_RTOL",
    "DEFAULT_OUT",
    "RESULTS_NAME",
    "BenchOptions",
    "Outcome",
    "Progress",
    "add_ceilings",
    "candidate_specs",
    "check_agreement",
    "check_seed",
    "check_suites",
    "run_bench",
    "shuffled_order",
]

if __name__ == "__main__":
    sys.exit(main())
