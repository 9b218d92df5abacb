"""Wall-clock timing that stays honest on asynchronous devices.

Why it is built this way:

* GPU frameworks return before the work is done, so the clock is read only after a
  synchronisation: :class:`Timer` and :func:`measure` call ``sync`` before *every* clock
  read, and :func:`measure` passes the last output to ``sync`` so frameworks that block
  on an array (JAX) wait for it too.
* A clock read plus a sync costs microseconds, so :func:`measure` times *blocks* of
  calls, sized until one block lasts at least ``block_time``; that overhead then
  vanishes against the block.
* The headline is the fastest block (`Measurement.headline`), reported beside the
  median and the interquartile range (IQR), never the mean: interference only adds
  time, and one stalled block moves a mean. A relative IQR above :data:`NOISY_IQR`
  flags the measurement as too noisy to trust; `suspect_reason` flags stalls.
* The first call (compilation, kernel loading, cold caches) is timed on its own and
  reported as ``first_call_s``, never mixed into the steady-state numbers.
* Inside a block each call's output is released before the next call starts, so at most
  one output is alive, as when a call is timed alone: keeping the previous one while the
  next is made doubles the memory an allocating call streams through, and made blocks
  of large vector adds slower than the same add timed call by call (bench/README.md).

Only the standard library, NumPy and `vecx.environment` (the /proc readers) are used
here; a backend is anything with ``sync``.
"""

from __future__ import annotations

import collections.abc
import contextlib
import functools
import gc
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vecx.environment import cpu_seconds, others_between

__all__ = ["NOISY_IQR", "Measurement", "Timer", "measure"]

#: A measurement whose IQR exceeds this fraction of its median is flagged ``warning``.
NOISY_IQR = 0.10

_Clock = Callable[[], float]


def _no_sync(x: Any = None) -> Any:
    return x


class Timer:
    """Record intervals like d2l's ``Timer``, but correct for asynchronous devices.

    As in d2l, the timer starts on construction (``timer = Timer(); ...; timer.stop()``);
    :meth:`start` restarts it. Each :meth:`stop` ends the running interval, so a second
    ``stop()`` without a ``start()`` in between raises.

    ``sync`` (for example a backend's ``be.sync``) is called with no argument before
    every clock read, in :meth:`start` and in :meth:`stop`, so work queued on a device
    is counted in the interval it belongs to. ``_clock`` exists for deterministic tests.
    """

    def __init__(
        self, sync: Callable[[], object] | None = None, *, _clock: _Clock = time.perf_counter
    ) -> None:
        if sync is not None and not callable(sync):
            raise TypeError(f"Timer(sync=...) must be callable or None, got {sync!r}")
        self._sync: Callable[[], object] = sync if sync is not None else _no_sync
        self._clock = _clock
        self._start: float | None = None
        self.times: list[float] = []
        self.start()

    def start(self) -> None:
        """Start (or restart) an interval once all previously queued work is done."""
        self._sync()
        self._start = self._clock()

    def stop(self) -> float:
        """End the interval after queued work finishes; record and return it in seconds."""
        if self._start is None:
            raise RuntimeError("Timer.stop() called without a matching start()")
        self._sync()
        interval = self._clock() - self._start
        self._start = None
        self.times.append(interval)
        return interval

    def avg(self) -> float:
        """Mean recorded interval in seconds."""
        if not self.times:
            raise RuntimeError("Timer.avg(): no interval recorded yet")
        return self.sum() / len(self.times)

    def sum(self) -> float:
        """Total of the recorded intervals in seconds."""
        return float(math.fsum(self.times))

    def cumsum(self) -> list[float]:
        """Running totals of the recorded intervals (handy as an x axis for plots)."""
        return [float(t) for t in itertools.accumulate(self.times)]

    def __enter__(self) -> Timer:
        self.start()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        # An interval cut short by an exception means nothing: drop it, keep the error.
        if exc_type is None:
            self.stop()
        else:
            self._start = None


def _format_seconds(seconds: float, reference: float) -> tuple[str, str]:
    """Scale ``seconds`` to the unit chosen for ``reference``; 3 significant digits.

    A value below 1 in that unit (a small IQR) keeps 2 decimals so it never shows as 0.
    """
    ref = abs(reference)
    unit, scale = next(
        (u, s)
        for u, s in (("ns", 1e-9), ("us", 1e-6), ("ms", 1e-3), ("s", 1.0))
        if ref < s * 1e3 or u == "s"
    )
    scaled_ref = ref / scale
    decimals = 2 if scaled_ref < 10 else 1 if scaled_ref < 100 else 0
    if abs(seconds / scale) < 1:
        decimals = 2
    return f"{seconds / scale:.{decimals}f}", unit


@dataclass(frozen=True, repr=False)
class Measurement:
    """Per-call times of a benchmarked function, one entry per block of ``number`` calls.

    Statistics are robust ones (median, IQR) because shared machines produce outliers.
    ``output`` is what the last timed call returned (:func:`measure` keeps it), so a
    benchmark can check the result it timed rather than a recomputation; it takes no
    part in equality, ``repr`` or :meth:`to_dict`.
    """

    times: tuple[float, ...]
    number: int
    first_call_s: float
    label: str = ""
    output: Any = field(default=None, repr=False, compare=False)
    #: Seconds this process's threads spent runnable but waiting for a CPU during the
    #: timed blocks (Linux schedstat; None elsewhere), and the blocks' wall time.
    run_queue_wait_s: float | None = field(default=None, compare=False)
    timed_s: float | None = field(default=None, compare=False)
    #: CPUs' worth of work other processes did meanwhile (Linux /proc/stat; None elsewhere).
    others_cpus: float | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        times = tuple(float(t) for t in self.times)
        if not times:
            raise ValueError("Measurement needs at least one time")
        if isinstance(self.number, bool) or not isinstance(self.number, int) or self.number < 1:
            raise ValueError(f"Measurement.number must be an int >= 1, got {self.number!r}")
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "first_call_s", float(self.first_call_s))

    @property
    def n_runs(self) -> int:
        """Number of blocks measured."""
        return len(self.times)

    @property
    def median(self) -> float:
        """Median per-call time in seconds (the headline is `headline`, the fastest block)."""
        return float(np.median(self.times))

    @property
    def headline(self) -> float:
        """The figure vecx reports: the fastest block's per-call time (`min`). Interference
        only adds time, so a minority of stalled blocks cannot move it (chosen by
        experiment: bench/README.md); ``suspect`` flags the stalls it cannot see."""
        return self.min

    @property
    def mean(self) -> float:
        """Mean per-call time in seconds (sensitive to outliers; prefer ``median``)."""
        return float(np.mean(self.times))

    @property
    def min(self) -> float:
        """Fastest block's per-call time in seconds."""
        return float(np.min(self.times))

    @property
    def iqr(self) -> float:
        """75th minus 25th percentile of the per-call times (0 for a single block)."""
        p25, p75 = np.percentile(self.times, [25.0, 75.0])
        return float(p75 - p25)

    @property
    def relative_iqr(self) -> float:
        """IQR as a fraction of the median (``inf`` if the median is 0 but times vary)."""
        iqr, median = self.iqr, self.median
        if median > 0:
            return iqr / median
        return 0.0 if iqr == 0 else math.inf

    @property
    def suspect(self) -> str | None:
        """Why interference probably distorted this measurement, or None (see
        `suspect_reason`)."""
        return suspect_reason(self.times, self.run_queue_wait_s, self.timed_s, self.others_cpus)

    @property
    def warning(self) -> bool:
        """True when the spread is too large to trust: relative IQR above ``NOISY_IQR``."""
        return self.relative_iqr > NOISY_IQR

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able summary (seconds as floats)."""
        return {
            "label": self.label,
            "median_s": self.median,
            "iqr_s": self.iqr,
            "mean_s": self.mean,
            "min_s": self.min,
            "first_call_s": self.first_call_s,
            "number": int(self.number),
            "n_runs": self.n_runs,
            "times": list(self.times),
            "warning": bool(self.warning),
        }

    def __repr__(self) -> str:
        median = self.median
        med_str, unit = _format_seconds(median, median)
        calls = f"{self.number} call{'s' if self.number != 1 else ''}"
        if self.n_runs == 1:
            text = f"{med_str} {unit} (1 block x {calls})"
        else:
            iqr_str, _ = _format_seconds(self.iqr, median)
            best_str, _ = _format_seconds(self.min, median)
            noisy = "; noisy" if self.warning else ""
            suspect = "; suspect" if self.suspect else ""
            text = (
                f"{best_str} {unit} fastest, median {med_str} {unit} ± {iqr_str} {unit} IQR "
                f"({self.n_runs} blocks x {calls}{noisy}{suspect})"
            )
        return f"{self.label}: {text}" if self.label else text

    __str__ = __repr__


def _check_positive(name: str, value: object, *, finite: bool = True) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    if not value > 0 or (finite and math.isinf(value)):
        raise ValueError(
            f"{name} must be a positive{' finite' if finite else ''} number, got {value!r}"
        )


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")


#: Environment variable naming a file where every `measure` call and `timeline` block
#: appends its wall-clock interval (one JSON line): how ``bench/quick_run.py`` tells time
#: spent measuring from time spent around it. Unset (the default), nothing is written.
TIMELINE_ENV = "VECX_TIMELINE"


@contextlib.contextmanager
def timeline(label: str) -> Iterator[None]:
    """Append this block's wall-clock interval to the `TIMELINE_ENV` file, if one is set."""
    path = os.environ.get(TIMELINE_ENV)
    if not path:
        yield
        return
    start = time.time()
    try:
        yield
    finally:
        line = json.dumps({"label": label, "pid": os.getpid(), "start": start,
                           "end": time.time()})  # fmt: skip
        with contextlib.suppress(OSError), open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


#: Threads waiting on the run queue for more than this share of the timed wall time mean
#: another process had the CPUs (0 on an idle machine: waiting BLAS threads sleep).
RUN_QUEUE_SHARE = 0.25
#: Other processes doing more than this many CPUs' worth of work meanwhile make a run-queue
#: wait theirs; below it the wait is the process's own threads (XLA runs more than cores).
OTHERS_CPUS = 0.25
#: A median this many times the fastest block means a minority of calls stalled.
STALL_GAP = 2.0


def suspect_reason(times: Any, run_queue_wait_s: float | None = None,
                   timed_s: float | None = None,
                   others_cpus: float | None = None) -> str | None:  # fmt: skip
    """Evidence of interference where it happened, as one sentence, or None.

    * run-queue wait (Linux ``schedstat`` of every thread, summed) while other processes
      used the CPUs (``others_cpus``, from /proc/stat; unknown counts as yes): a 2-thread
      BLAS call whose threads share one CPU with a busy process busy-waits through whole
      scheduler ticks, every call costs the same number of ticks, so medians and IQRs stay
      tight and only this sees it. A wait with nobody else running is the process's own
      threads queueing for each other (JAX's XLA runs more threads than cores): no flag;
    * a gap between the fastest block and the median: some calls stalled, some did not.
    """
    times = [float(t) for t in times]
    others_busy = others_cpus is None or others_cpus > OTHERS_CPUS
    if run_queue_wait_s is not None and timed_s and timed_s > 0 and others_busy:
        share = run_queue_wait_s / timed_s
        if share > RUN_QUEUE_SHARE:
            busy = "" if others_cpus is None else f" ({others_cpus:.2f} CPUs' worth)"
            return (f"threads waited on the run queue for {100 * share:.0f}% of the timed "
                    f"wall time: another process had the CPUs{busy}")  # fmt: skip
    if len(times) >= 3:
        fastest, median = min(times), float(np.median(times))
        if fastest > 0 and median > STALL_GAP * fastest:
            return (f"the median block is {median / fastest:.1f}x the fastest: some calls "
                    "stalled")  # fmt: skip
    return None


def run_queue_wait_ns(proc: str = "/proc/self/task") -> int | None:
    """Nanoseconds all threads of this process have waited on a run queue (the second
    field of each thread's ``schedstat``), or None where the kernel does not say."""
    try:
        tasks = os.listdir(proc)
    except OSError:
        return None
    total, seen = 0, False
    for tid in tasks:
        try:
            with open(os.path.join(proc, tid, "schedstat"), encoding="ascii") as f:
                fields = f.read().split()
            total += int(fields[1])
            seen = True
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended meanwhile
    return total if seen else None


def _warn_if_lazy(out: Any, label: str) -> None:
    """A generator or iterator does its work only when consumed: timing the call that
    makes it times nothing (218 ns against 35.4 ms for the same work done eagerly)."""
    if isinstance(out, (collections.abc.Iterator, collections.abc.Generator)):
        import warnings

        what = f"{label}: " if label else ""
        warnings.warn(
            f"{what}the timed function returned a {type(out).__name__}, whose work runs only "
            "when it is consumed, so it is not in the timing; return list(...) or the "
            "arrays themselves",
            RuntimeWarning,
            stacklevel=4,
        )


def _on_timeline(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        if not os.environ.get(TIMELINE_ENV):
            return fn(*args, **kwargs)
        with timeline(str(kwargs.get("label") or "measure")):
            return fn(*args, **kwargs)

    return timed


@_on_timeline
def measure(
    fn: Callable[[], Any],
    backend: Any = None,
    *,
    min_run_time: float = 0.2,
    max_run_time: float = 2.0,
    min_blocks: int = 5,
    max_blocks: int = 50,
    block_time: float = 0.01,
    warmup: int = 1,
    target_rel_iqr: float = 0.05,
    label: str = "",
    _clock: _Clock = time.perf_counter,
) -> Measurement:
    """Time ``fn()`` robustly; only ``backend.sync`` is used (``None``: no sync).

    Steps, each clock read preceded by a sync (``backend.sync(out)`` after the calls,
    ``out`` being ``fn``'s last return value, so JAX-like frameworks block on it):

    1. the first call is timed alone -> ``first_call_s`` (compilation, caches);
    2. ``warmup`` untimed calls;
    3. calibration: blocks of ``number`` calls, ``number`` starting at 1 and growing
       (at least x2, at most x100, aimed at 1.2 x ``block_time`` from the last block)
       until one block lasts ``>= block_time``; that last block is kept as the first
       measurement;
    4. more blocks of ``number`` calls, each giving a per-call time (block time / number).

    The returned measurement keeps the last timed call's return value as ``output``.

    Stopping rule, checked after every block, where ``elapsed`` is the wall time since
    step 3 began (calibration included; first call and warm-up excluded): stop when
    ``blocks >= max_blocks``, or ``elapsed >= max_run_time``, or
    (``elapsed >= min_run_time`` and ``blocks >= min_blocks`` and relative IQR
    ``<= target_rel_iqr``). There is always at least one block, so steps 3-4 last at
    most ``max_run_time`` plus one block; a function slower than ``max_run_time`` is
    called three times in all (first, warm-up, one block). Calibration also stops at
    ``max_run_time``, keeping its last (short) block. The garbage collector is paused
    inside blocks and runs between them.
    """
    if not callable(fn):
        raise TypeError(f"measure() needs a callable taking no arguments, got {fn!r}")
    if backend is None:
        sync: Callable[..., Any] = _no_sync
    else:
        sync = getattr(backend, "sync", None)
        if not callable(sync):
            raise TypeError(
                f"measure(backend=...) needs an object with a callable sync() method; "
                f"{type(backend).__name__} has none (pass backend=None to skip syncing)"
            )
    _check_positive("min_run_time", min_run_time)
    _check_positive("max_run_time", max_run_time, finite=False)
    _check_positive("block_time", block_time)
    if min_run_time > max_run_time:
        raise ValueError(f"min_run_time ({min_run_time}) exceeds max_run_time ({max_run_time})")
    _check_int("min_blocks", min_blocks, 1)
    _check_int("max_blocks", max_blocks, 1)
    if min_blocks > max_blocks:
        raise ValueError(f"min_blocks ({min_blocks}) exceeds max_blocks ({max_blocks})")
    _check_int("warmup", warmup, 0)
    if isinstance(target_rel_iqr, bool) or not isinstance(target_rel_iqr, (int, float)):
        raise TypeError(f"target_rel_iqr must be a number, got {target_rel_iqr!r}")
    if not target_rel_iqr >= 0:
        raise ValueError(f"target_rel_iqr must be >= 0, got {target_rel_iqr!r}")
    if not isinstance(label, str):
        raise TypeError(f"label must be a str, got {label!r}")

    last: list[Any] = [None]  # the latest timed call's output

    def run_block(number: int) -> float:
        last[0] = None  # free the previous block's output before making new ones
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            sync()
            t0 = _clock()
            out = None
            for _ in itertools.repeat(None, number):
                out = None  # one output alive at a time, as in a single timed call
                out = fn()
            sync(out)
            elapsed = _clock() - t0
            last[0] = out
            return elapsed
        finally:
            if gc_was_enabled:
                gc.enable()

    # 1. first call, alone
    sync()
    t0 = _clock()
    out = fn()
    sync(out)
    first_call_s = _clock() - t0
    _warn_if_lazy(out, label)
    # 2. warm-up
    for _ in range(warmup):
        out = None
        out = fn()
        sync(out)
    del out

    # 3. calibration of the block size
    wait0, cpu0 = run_queue_wait_ns(), cpu_seconds()
    start = _clock()
    number = 1
    while True:
        block = run_block(number)
        if block >= block_time or _clock() - start >= max_run_time:
            break
        factor = 100.0 if block <= 0 else min(100.0, max(2.0, 1.2 * block_time / block))
        number = max(number + 1, math.ceil(number * factor))
    times = [block / number]

    # 4. measurement blocks
    while True:
        elapsed = _clock() - start
        n = len(times)
        if n >= max_blocks or elapsed >= max_run_time:
            break
        if elapsed >= min_run_time and n >= min_blocks:
            trial = Measurement(tuple(times), number, first_call_s)
            if trial.relative_iqr <= target_rel_iqr:
                break
        times.append(run_block(number) / number)

    timed_s = _clock() - start
    wait1, cpu1 = run_queue_wait_ns(), cpu_seconds()
    wait = (wait1 - wait0) / 1e9 if wait0 is not None and wait1 is not None else None
    return Measurement(tuple(times), number, first_call_s, label, output=last[0],
                       run_queue_wait_s=wait, timed_s=timed_s,
                       others_cpus=others_between(cpu0, cpu1, timed_s))  # fmt: skip
