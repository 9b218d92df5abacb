"""Tests of vecx.timing: synchronisation, block sizing, stopping rule and statistics.

Timing on a shared machine is noisy, so real-clock tests assert only lower bounds that
the code guarantees (sleeping until queued work is due) or upper bounds with a margin of
hundreds; exact behaviour is checked against a virtual clock.
"""

from __future__ import annotations

import gc
import json
import time

import pytest

from vecx.timing import NOISY_IQR, Measurement, Timer, measure

QUICK = {"min_run_time": 0.02, "max_run_time": 0.2, "min_blocks": 3}


class Pending:
    """The "array" a fake kernel returns: ready once the device clock passes ``due``."""

    def __init__(self, due: float) -> None:
        self.due = due


class FakeAsyncDevice:
    """A device whose kernels return at once and whose ``sync`` waits for queued work.

    Work runs in order, so a kernel is due ``delay`` after the later of now and the
    previous kernel's due time. ``blocks_on_output_only`` mimics JAX: ``sync()`` without
    an argument does nothing, ``sync(x)`` waits for ``x`` only.
    """

    def __init__(self, *, blocks_on_output_only: bool = False) -> None:
        self.due = 0.0
        self.blocks_on_output_only = blocks_on_output_only
        self.synced: list[object] = []

    def now(self) -> float:
        return time.perf_counter()

    def wait_until(self, t: float) -> None:
        while (left := t - time.perf_counter()) > 0:
            time.sleep(left)

    def launch(self, delay: float) -> Pending:
        self.due = max(self.due, self.now()) + delay
        return Pending(self.due)

    def sync(self, x: object = None) -> object:
        self.synced.append(x)
        if isinstance(x, Pending):
            self.wait_until(x.due)
        elif not self.blocks_on_output_only:
            self.wait_until(self.due)
        return x


class VirtualDevice(FakeAsyncDevice):
    """Same queue on a virtual clock: only ``sync`` (and ``spend``) moves time forward."""

    def __init__(self, **kwargs: bool) -> None:
        super().__init__(**kwargs)
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def wait_until(self, t: float) -> None:
        self.t = max(self.t, t)

    def spend(self, seconds: float) -> None:
        self.t += seconds


# --- measure on a fake asynchronous device -------------------------------------------

WORK = 0.002  # seconds of queued work per call


def test_measure_counts_queued_work_when_synced():
    dev = FakeAsyncDevice()
    m = measure(lambda: dev.launch(WORK), dev, **QUICK)
    assert m.min >= WORK  # guaranteed: every block waits for all its queued work
    assert m.median >= WORK
    assert m.first_call_s >= WORK


def test_measure_without_sync_misses_queued_work():
    # Proves the test above can fail: the same kernel timed without sync looks ~free.
    dev = FakeAsyncDevice()
    m = measure(lambda: dev.launch(WORK), None, **QUICK)
    assert m.median < WORK / 2
    assert m.number > 1


def test_measure_passes_last_output_to_sync_jax_style():
    # sync() without an argument does nothing here; only blocking on the output works.
    dev = FakeAsyncDevice(blocks_on_output_only=True)
    outputs: list[Pending] = []

    def fn() -> Pending:
        outputs.append(dev.launch(WORK))
        return outputs[-1]

    m = measure(fn, dev, **QUICK)
    assert m.median >= WORK
    assert outputs[-1] in dev.synced  # the block's last output was handed to sync


def test_measure_keeps_at_most_one_output_alive_in_a_block():
    # An allocating call timed alone frees its output before the next call; a block must
    # too, or it streams through twice the memory it needs.
    import weakref

    class Output:
        pass

    alive: weakref.WeakSet = weakref.WeakSet()
    most = 0

    def fn() -> Output:
        nonlocal most
        out = Output()
        alive.add(out)
        most = max(most, len(alive))  # this output and any still held from earlier calls
        return out

    m = measure(fn, None, **QUICK)
    assert m.number > 1  # blocks of several calls did run
    assert most <= 1
    assert isinstance(m.output, Output)  # the last output is still kept


def test_measure_accepts_any_object_with_sync():
    class OnlySync:
        calls = 0

        def sync(self, x=None):
            self.calls += 1
            return x

    be = OnlySync()
    m = measure(lambda: 1, be, **QUICK)
    assert be.calls >= 3 + 2 * m.n_runs  # first call 2, warm-up 1, each block 2


# --- Timer ----------------------------------------------------------------------------


def test_timer_sync_includes_pending_work_virtual_clock():
    dev = VirtualDevice()
    timer = Timer(sync=dev.sync, _clock=dev.now)
    timer.start()
    dev.launch(0.02)
    assert timer.stop() == pytest.approx(0.02)

    unsynced = Timer(_clock=dev.now)  # same kernel, no sync: the work is missed
    unsynced.start()
    dev.launch(0.02)
    assert unsynced.stop() == 0.0


def test_timer_sync_before_start_excludes_earlier_work():
    dev = VirtualDevice()
    timer = Timer(sync=dev.sync, _clock=dev.now)
    dev.launch(1.0)  # queued before the interval: must not be charged to it
    timer.start()
    dev.launch(0.5)
    assert timer.stop() == pytest.approx(0.5)


def test_timer_sync_real_clock():
    dev = FakeAsyncDevice()
    timer = Timer(sync=dev.sync)
    timer.start()
    dev.launch(0.01)
    assert timer.stop() >= 0.01


def test_timer_accumulates_with_fake_clock():
    clock = iter([-5.0, 0.0, 1.0, 10.0, 12.5, 20.0, 20.25]).__next__  # -5: construction
    timer = Timer(_clock=clock)
    for _ in range(3):
        timer.start()
        timer.stop()
    assert timer.times == [1.0, 2.5, 0.25]
    assert timer.sum() == pytest.approx(3.75)
    assert timer.avg() == pytest.approx(1.25)
    assert timer.cumsum() == pytest.approx([1.0, 3.5, 3.75])


def test_timer_starts_on_construction_like_d2l():
    # d2l: ``timer = Timer(); ...; timer.stop()``; the timer runs from its construction
    timer = Timer(_clock=iter([0.0, 1.5, 4.0, 4.25]).__next__)
    assert timer.stop() == 1.5
    timer.start()  # start() restarts
    assert timer.stop() == 0.25
    assert timer.times == [1.5, 0.25]


def test_timer_construction_syncs_so_earlier_work_is_excluded():
    dev = VirtualDevice()
    dev.launch(1.0)  # queued before the timer exists: waited out by the constructor
    timer = Timer(sync=dev.sync, _clock=dev.now)
    dev.launch(0.5)
    assert timer.stop() == pytest.approx(0.5)


def test_timer_stop_twice_raises():
    timer = Timer(_clock=iter([0.0, 1.0, 2.0]).__next__)
    timer.stop()
    with pytest.raises(RuntimeError, match="start"):  # each interval stops once
        timer.stop()
    with pytest.raises(RuntimeError):
        Timer().avg()


def test_timer_context_manager():
    dev = VirtualDevice()
    timer = Timer(sync=dev.sync, _clock=dev.now)
    with timer as t:
        assert t is timer
        dev.launch(0.25)
    assert timer.times == [pytest.approx(0.25)]
    with pytest.raises(KeyError), timer:
        raise KeyError("boom")
    assert len(timer.times) == 1  # an interrupted interval is not recorded
    with pytest.raises(RuntimeError):
        timer.stop()


def test_timer_rejects_non_callable_sync():
    with pytest.raises(TypeError):
        Timer(sync=3)  # type: ignore[arg-type]


# --- first call and block sizing -------------------------------------------------------


def test_first_call_reported_separately():
    calls = []

    def fn() -> None:
        if not calls:
            time.sleep(0.05)
        calls.append(1)

    m = measure(fn, **QUICK)
    assert m.first_call_s >= 0.05
    assert m.median < 0.005  # steady state is cheap; first call not mixed in
    assert len(calls) >= 2 + m.number * m.n_runs


def test_cheap_function_gets_blocks_of_many_calls():
    m = measure(lambda: None, **QUICK)
    assert m.number > 1
    assert all(t > 0 for t in m.times)
    assert 1 <= m.n_runs <= 50


def test_block_sizing_and_stopping_rule_virtual_clock():
    dev = VirtualDevice()
    m = measure(
        lambda: dev.spend(1e-6),
        min_run_time=0.1,
        max_run_time=10.0,
        min_blocks=3,
        block_time=0.01,
        _clock=dev.now,
    )
    assert m.number * 1e-6 >= 0.01 * (1 - 1e-9)  # one block lasts at least block_time
    assert m.median == pytest.approx(1e-6)
    assert m.iqr == pytest.approx(0.0, abs=1e-15)
    assert m.n_runs * m.number * 1e-6 >= 0.1 - 0.05  # min_run_time honoured (less calibration)
    assert m.n_runs <= 10


def test_max_blocks_caps_the_run_virtual_clock():
    dev = VirtualDevice()
    m = measure(
        lambda: dev.spend(1e-3),
        min_run_time=0.1,
        max_run_time=100.0,
        min_blocks=2,
        max_blocks=4,
        target_rel_iqr=0.0,
        block_time=0.01,
        _clock=dev.now,
    )
    assert m.n_runs == 4  # min_run_time not reached yet, but max_blocks is


def test_noisy_function_stops_at_max_run_time_virtual_clock():
    dev = VirtualDevice()
    k = iter(range(10**9))
    m = measure(
        lambda: dev.spend(0.01 * (1 + next(k) % 3)),
        min_run_time=0.1,
        max_run_time=1.0,
        max_blocks=1000,
        target_rel_iqr=0.0,
        _clock=dev.now,
    )
    assert 1 < m.n_runs < 1000
    total = sum(m.times) * m.number  # virtual time spent in kept blocks = elapsed
    assert 1.0 - 1e-9 <= total <= 1.0 + 0.03 + 1e-9  # stops within one block of the cap


def test_function_slower_than_max_run_time_gets_one_block():
    dev = VirtualDevice()
    calls = []

    def slow() -> None:
        calls.append(1)
        dev.spend(5.0)

    m = measure(slow, min_run_time=0.1, max_run_time=2.0, _clock=dev.now)
    assert (m.n_runs, m.number) == (1, 1)
    assert len(calls) == 3  # first call, one warm-up, one block
    assert m.first_call_s == 5.0 and m.median == 5.0


def test_measure_restores_gc_and_propagates_errors():
    state = iter([None, None, None, ValueError]).__next__

    def fn() -> None:
        err = state()
        if err:
            raise err("fn failed")

    assert gc.isenabled()
    with pytest.raises(ValueError, match="fn failed"):
        measure(fn, **QUICK)
    assert gc.isenabled()


# --- Measurement statistics -------------------------------------------------------------


def test_measurement_statistics_by_hand():
    m = Measurement(times=(4.0, 1.0, 3.0, 2.0, 5.0), number=10, first_call_s=7.0, label="x")
    assert m.n_runs == 5
    assert m.median == 3.0
    assert m.mean == 3.0
    assert m.min == 1.0
    assert m.iqr == 2.0  # 75th (4.0) - 25th (2.0) percentile
    assert m.relative_iqr == pytest.approx(2 / 3)
    assert m.warning
    assert isinstance(m.times, tuple)


def test_measurement_warning_threshold():
    assert NOISY_IQR == 0.10
    calm = Measurement(times=(1.0, 1.02, 1.04, 1.06, 1.08), number=1, first_call_s=0.0)
    assert calm.relative_iqr == pytest.approx(0.04 / 1.04)
    assert not calm.warning
    noisy = Measurement(times=(1.0, 1.06, 1.12, 1.18, 1.24), number=1, first_call_s=0.0)
    assert noisy.relative_iqr == pytest.approx(0.12 / 1.12)
    assert noisy.warning


def test_measurement_single_block():
    m = Measurement(times=(0.5,), number=3, first_call_s=1.0)
    assert (m.median, m.mean, m.min, m.iqr, m.n_runs) == (0.5, 0.5, 0.5, 0.0, 1)
    assert m.relative_iqr == 0.0 and not m.warning
    assert "1 block x 3 calls" in repr(m)


def test_measurement_to_dict_is_json():
    m = Measurement(times=[1e-3, 2e-3, 3e-3], number=100, first_call_s=0.5)
    d = json.loads(json.dumps(m.to_dict()))
    assert d["median_s"] == pytest.approx(2e-3)
    assert d["iqr_s"] == pytest.approx(1e-3)
    assert d["mean_s"] == pytest.approx(2e-3)
    assert d["min_s"] == pytest.approx(1e-3)
    assert d["first_call_s"] == 0.5
    assert (d["number"], d["n_runs"], d["warning"]) == (100, 3, True)
    assert d["times"] == pytest.approx([1e-3, 2e-3, 3e-3])


def test_measurement_repr_units():
    m = Measurement(times=(1.20e-3, 1.23e-3, 1.28e-3), number=100, first_call_s=0.1)
    assert str(m) == "1.20 ms fastest, median 1.23 ms ± 0.04 ms IQR (3 blocks x 100 calls)"
    wide = Measurement(times=(209.0e-6, 209.1e-6, 209.4e-6), number=58, first_call_s=0.0)
    assert str(wide).startswith("209 us fastest, median 209 us ± 0.20 us IQR")  # IQR not 0
    assert "ns" in repr(Measurement(times=(5e-9,), number=1, first_call_s=0.0))
    assert "us" in repr(Measurement(times=(5e-6,), number=1, first_call_s=0.0))
    assert repr(Measurement(times=(2.5,), number=1, first_call_s=0.0)).startswith("2.50 s ")
    labelled = Measurement(times=(1.0, 2.0), number=1, first_call_s=0.0, label="matmul")
    assert repr(labelled).startswith("matmul: ") and "noisy" in repr(labelled)


def test_measurement_validation():
    with pytest.raises(ValueError):
        Measurement(times=(), number=1, first_call_s=0.0)
    with pytest.raises(ValueError):
        Measurement(times=(1.0,), number=0, first_call_s=0.0)


# --- argument validation -----------------------------------------------------------------


def test_measure_rejects_non_callable():
    with pytest.raises(TypeError):
        measure(42)  # type: ignore[arg-type]


def test_measure_rejects_backend_without_sync():
    with pytest.raises(TypeError, match="sync"):
        measure(lambda: None, object())

    class NotCallable:
        sync = 3

    with pytest.raises(TypeError, match="sync"):
        measure(lambda: None, NotCallable())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_run_time": 0},
        {"min_run_time": -1.0},
        {"max_run_time": 0.0},
        {"block_time": 0},
        {"block_time": -0.01},
        {"min_run_time": 1.0, "max_run_time": 0.5},
        {"min_blocks": 0},
        {"min_blocks": 10, "max_blocks": 5},
        {"warmup": -1},
        {"target_rel_iqr": -0.1},
        {"min_run_time": float("nan")},
    ],
)
def test_measure_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        measure(lambda: None, **kwargs)


def test_measure_rejects_bad_types():
    with pytest.raises(TypeError):
        measure(lambda: None, min_blocks=2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        measure(lambda: None, label=3)  # type: ignore[arg-type]


def test_measure_warns_when_the_timed_call_returns_a_generator():
    work = list(range(1000))
    with pytest.warns(RuntimeWarning, match="lazy: the timed function returned a generator"):
        measure(lambda: (x * 2 for x in work), label="lazy", min_run_time=1e-4,
                     max_run_time=1e-3, min_blocks=1, max_blocks=2, block_time=1e-5)  # fmt: skip
    with pytest.warns(RuntimeWarning, match="returned a map"):
        measure(lambda: map(abs, work), min_run_time=1e-4, max_run_time=1e-3,
                     min_blocks=1, max_blocks=2, block_time=1e-5)  # fmt: skip
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        measure(lambda: [x * 2 for x in work], min_run_time=1e-4, max_run_time=1e-3,
                     min_blocks=1, max_blocks=2, block_time=1e-5)  # fmt: skip


def test_a_run_queue_wait_counts_only_while_other_processes_run():
    """XLA runs more threads than cores, so JAX's threads queue for each other on an idle
    machine: that wait is no interference. With another process busy it is."""
    from vecx.timing import suspect_reason

    ticks = [16e-3] * 5
    assert suspect_reason(ticks, run_queue_wait_s=0.9, timed_s=0.5, others_cpus=0.0) is None
    why = suspect_reason(ticks, run_queue_wait_s=0.4, timed_s=0.5, others_cpus=0.98)
    assert why.startswith("threads waited on the run queue for 80%") and "0.98 CPUs" in why


def test_measure_records_what_other_processes_did_meanwhile():
    import subprocess
    import sys

    m = measure(lambda: sum(range(1000)), None, **QUICK)
    assert m.others_cpus is None or m.others_cpus >= 0
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        m = measure(lambda: sum(range(1000)), None, min_run_time=0.3, max_run_time=0.5)
    finally:
        busy.kill()
        busy.wait()
    if m.others_cpus is not None:  # Linux: the spinning child is seen
        assert m.others_cpus > 0.25


def test_suspect_sees_run_queue_wait_and_stalled_blocks():
    from vecx.timing import suspect_reason

    quiet = [1e-3, 1.01e-3, 0.99e-3, 1.02e-3, 1e-3]
    assert suspect_reason(quiet) is None
    assert suspect_reason(quiet, run_queue_wait_s=0.01, timed_s=1.0) is None
    # every call stalled the same number of ticks: tight, so only the run queue tells
    ticks = [16e-3] * 5
    assert suspect_reason(ticks) is None
    why = suspect_reason(ticks, run_queue_wait_s=0.4, timed_s=0.5)
    assert why.startswith("threads waited on the run queue for 80%")
    # a minority of stalled blocks: the gap between the fastest and the median shows it
    planted = [0.15e-3, 0.15e-3, 16e-3, 16e-3, 16e-3]
    assert suspect_reason(planted) == "the median block is 106.7x the fastest: some calls stalled"


def test_run_queue_wait_reads_every_threads_schedstat(tmp_path):
    from vecx.timing import run_queue_wait_ns

    for tid, line in (("1", "100 2500 7\n"), ("2", "50 500 3\n"), ("3", "garbage\n")):
        (tmp_path / tid).mkdir()
        (tmp_path / tid / "schedstat").write_text(line)
    assert run_queue_wait_ns(str(tmp_path)) == 3000
    assert run_queue_wait_ns(str(tmp_path / "missing")) is None


def test_a_suspect_measurement_is_flagged_in_its_record():
    from vecx.suites import timed

    class Be:
        name, device, dtype = "numpy", "cpu", "float32"

    m = Measurement((16e-3,) * 5, 1, 0.0, run_queue_wait_s=0.4, timed_s=0.5)
    rec = timed("s", "c", Be(), m, params={}, metric="time", value=m.median, unit="s")
    assert rec["suspect"].startswith("threads waited on the run queue")
    clean = Measurement((1e-3,) * 5, 1, 0.0, run_queue_wait_s=0.0, timed_s=0.5)
    assert timed("s", "c", Be(), clean, params={}, metric="time", value=1e-3,
                 unit="s")["suspect"] is None  # fmt: skip
