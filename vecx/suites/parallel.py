"""``parallel``: data-parallel SGD (``fit(workers=N)``) against one worker, per task.

Opt-in (``vecx bench --suites parallel``): it starts processes and, at full size, holds
a 1 GiB data set per rank. For each task and worker count ``N`` in 2..``workers``
(default: the usable cores, at least 2) two cases beside the one-worker baseline:

* ``strong``: the same global minibatch split over N workers; ``efficiency`` is
  T1 / (N x TN) of the times per epoch (1: N workers are N times faster);
* ``weak``: each worker keeps the baseline's batch (the global batch N times larger);
  ``efficiency`` is the baseline's time per step over N workers' (1: a step costs the
  same, with N times the rows).

Tasks: ``linreg-large`` (linear regression, 2^20 x 256 float32 rows: compute and memory
traffic per step large enough to matter; 2^16 rows with ``--quick``), ``digits-mlp`` and
d2l's small ``linreg`` (1000 x 2, batch 10: communication dominates). Every worker, and
the baseline, computes with ``threads`` CPU threads (default 1), so N workers never
oversubscribe N cores; the records say how many (XLA sizes its pool when JAX starts: a JAX
record says what it has). Times per epoch are the trainer's clock
(the spawning of ranks and the data's transfer excluded: ``wall_s`` has the whole fit),
the fastest of ``repeats`` runs. On JAX the workers are devices of one process: on the CPU
start with ``XLA_FLAGS=--xla_force_host_platform_device_count=N``, else the cases are
skipped, saying so.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vecx.suites import Case, timed
from vecx.suites.suite import FigureSpec, Finalized, ModuleSuite
from vecx.tables import Column, backend_column, backend_label, case_column, format_loss
from vecx.timing import Measurement, timeline

NAME = "parallel"
TASKS = ("linreg-large", "digits-mlp", "linreg")
#: The large linear regression: rows (full, quick), features, batch, learning rate, epochs.
LARGE_ROWS, LARGE_ROWS_QUICK, LARGE_FEATURES = 1 << 20, 1 << 16, 256
LARGE_BATCH, LARGE_LR, LARGE_EPOCHS = 8192, 0.1, 2
#: The presets' own hyperparameters, fewer epochs.
PRESET_EPOCHS = {"digits-mlp": 3, "linreg": 3}
PRESET_EPOCHS_QUICK = {"digits-mlp": 1, "linreg": 1}
REPEATS, REPEATS_QUICK = 3, 1
#: Why the full-size large task does not run on a mesh of forced CPU devices.
CPU_MESH_LIMIT = ("XLA:CPU's all-reduce over forced host devices aborts the process at this "
                  "size here (its 40 s collective rendezvous timeout: bench/README.md)")


def _worker_counts(workers: int | None) -> list[int]:
    from vecx.environment import usable_cpus

    top = workers if workers is not None else max(2, usable_cpus())
    return list(range(2, top + 1))


def plan(device: str, *, quick: bool = False, tasks: Sequence[str] | None = None,
         workers: int | None = None, threads: int = 1, **_: Any) -> list[tuple]:  # fmt: skip
    """Per task: the one-worker baseline, then ``strong`` and ``weak`` for each N."""
    out = []
    for task in tasks or TASKS:
        out.append((task, {"task": task, "scaling": "baseline", "workers": 1,
                           "threads": threads}))  # fmt: skip
        for n in _worker_counts(workers):
            for scaling in ("strong", "weak"):
                out.append((task, {"task": task, "scaling": scaling, "workers": n,
                                   "threads": threads}))  # fmt: skip
    return out


_data_cache: dict[Any, tuple[Any, Any]] = {}


def _large(be: Any, rows: int, seed: int) -> tuple[Any, Any]:
    """The large regression's data on ``be`` (made once per backend and size)."""
    key = (be.spec, be.dtype, rows, seed)
    if key not in _data_cache:
        _data_cache.clear()  # one at a time: 1 GiB each
        from vecx.data import host_rng

        rng = host_rng(seed, "data")
        X = rng.standard_normal((rows, LARGE_FEATURES), dtype=np.float32)
        w = rng.standard_normal((LARGE_FEATURES, 1), dtype=np.float32) / 16
        y = X @ w + np.float32(0.01) * rng.standard_normal((rows, 1), dtype=np.float32)
        _data_cache[key] = (be.asarray(X), be.asarray(y))
    return _data_cache[key]


def cases(be: Any, *, quick: bool = False, seed: int = 0, tasks: Sequence[str] | None = None,
          workers: int | None = None, threads: int = 1, repeats: int | None = None,
          large_rows: int | None = None) -> list[Case]:  # fmt: skip
    """The planned cases on ``be``; ``repeats`` and ``large_rows`` for tests."""
    from vecx.protocol import ModeUnsupported, intra_op_threads, set_threads
    from vecx.results import result
    from vecx.training import PRESETS, fit, train

    runs = repeats if repeats is not None else (REPEATS_QUICK if quick else REPEATS)
    rows = large_rows or (LARGE_ROWS_QUICK if quick else LARGE_ROWS)
    epochs_of = PRESET_EPOCHS_QUICK if quick else PRESET_EPOCHS

    def hyper(task: str, n: int, scaling: str) -> dict[str, Any]:
        if task == "linreg-large":
            base = {"lr": LARGE_LR, "batch_size": LARGE_BATCH, "epochs": LARGE_EPOCHS}
            examples = rows
        else:
            p = PRESETS[task]
            base = {"lr": p.lr, "batch_size": p.batch_size, "epochs": epochs_of[task]}
            examples = p.examples
        if scaling == "weak":
            base["batch_size"] = min(base["batch_size"] * n, examples)
        base["examples"] = examples
        return base

    def one(task: str, n: int, h: Mapping[str, Any]) -> Any:
        kwargs = {"lr": h["lr"], "batch_size": h["batch_size"], "epochs": h["epochs"],
                  "seed": seed, "log_every": h["examples"]}  # fmt: skip
        workers_ = n if n > 1 else None
        if task == "linreg-large":
            X, y = _large(be, rows, seed)
            return fit(be, X, y, workers=workers_, **kwargs)
        return train(be, task, workers=workers_, **kwargs)

    def run(params: dict[str, Any]) -> dict[str, Any]:
        task, n, scaling = params["task"], params["workers"], params["scaling"]
        h = hyper(task, n, scaling)
        recorded = {**params, **{k: h[k] for k in ("lr", "batch_size", "epochs")},
                    "examples": h["examples"]}  # fmt: skip
        if n > 1 and task == "linreg-large" and callable(getattr(be, "device_mesh", None)) \
                and be.device == "cpu" and rows > LARGE_ROWS_QUICK:  # fmt: skip
            return result(NAME, task, be.name, be.device, dtype=be.dtype, params=recorded,
                          skipped=CPU_MESH_LIMIT)  # fmt: skip
        before = intra_op_threads(be)
        set_threads(be, params["threads"])
        threads = intra_op_threads(be)  # what it computes with (XLA: what it started with)
        histories, walls = [], []
        try:
            if n == 1:  # first calls' one-off costs (torch's lazy set-up) off the clock
                one(task, 1, {**h, "epochs": 1})
            for _ in range(runs):
                with timeline(f"parallel {task} {scaling} {n}"):
                    start = time.perf_counter()
                    histories.append(one(task, n, h))
                    walls.append(time.perf_counter() - start)
        except (ModeUnsupported, ValueError) as exc:  # no engine, too few devices: a limit
            if n == 1:
                raise
            return result(NAME, task, be.name, be.device, dtype=be.dtype, params=recorded,
                          skipped=str(exc).splitlines()[0])  # fmt: skip
        finally:
            if before is not None:
                set_threads(be, before)
        times = [x.epoch_time for x in histories]
        last = histories[-1]
        meas = Measurement(tuple(times), 1, 0.0, f"parallel {task}")
        rec = timed(NAME, task, be, meas, params={**recorded, "repeats": runs}, metric="loss",
                    value=float(last.loss), unit="", first_call_s=None,
                    engine=last.engine, threads_per_worker=last.threads_per_worker or threads,
                    steps_per_epoch=math.ceil(h["examples"] / h["batch_size"]),
                    wall_s=statistics.median(walls), efficiency=None)  # fmt: skip
        rec["median_s"] = statistics.median(times)
        return rec

    return [Case(NAME, case, params, lambda p=params: run(p))
            for case, params in plan(be.spec, quick=quick, tasks=tasks, workers=workers,
                                     threads=threads)]  # fmt: skip


def efficiencies(records: list[dict[str, Any]]) -> None:
    """Set ``efficiency`` on each strong and weak record against its baseline (same
    backend, device and task): strong T1 / (N TN) per epoch, weak per step."""
    from vecx.results import headline_s

    base = {(r["backend"], r["device"], r["case"]): r for r in records
            if r.get("suite") == NAME and (r.get("params") or {}).get("scaling") == "baseline"
            and headline_s(r)}  # fmt: skip
    for rec in records:
        p = rec.get("params") or {}
        one = base.get((rec.get("backend"), rec.get("device"), rec.get("case")))
        mine = headline_s(rec)
        if rec.get("suite") != NAME or p.get("scaling") not in ("strong", "weak") or not (
                one and mine):  # fmt: skip
            continue
        if p["scaling"] == "strong":
            rec["efficiency"] = headline_s(one) / (p["workers"] * mine)
        else:
            rec["efficiency"] = ((headline_s(one) / one["steps_per_epoch"])
                                 / (mine / rec["steps_per_epoch"]))  # fmt: skip


def _efficiency(rec: Mapping[str, Any]) -> str:
    value = rec.get("efficiency")
    return "-" if value is None else f"{value:.2f}"


def _scaling_figure(records: Sequence[Mapping[str, Any]], doc: Mapping[str, Any]) -> Any:
    """Efficiency against workers: a panel per task, strong solid and weak dashed."""
    from vecx import plots as P

    recs = [r for r in P.succeeded(records) if r.get("efficiency") is not None]
    tasks = [t for t in TASKS if any(r["case"] == t for r in recs)]
    if not tasks:
        return None
    fig = P.new_figure(figsize=(P.PANEL_W * len(tasks) + 2.2, P.PANEL_H + 0.8))
    axes = np.atleast_1d(fig.subplots(1, len(tasks), sharey=True, squeeze=False)).flat
    for ax, task in zip(axes, tasks, strict=True):
        for label in P.labels_of(recs):
            for scaling, style in (("strong", "-o"), ("weak", "--s")):
                pts = sorted((r["params"]["workers"], r["efficiency"]) for r in recs
                              if r["case"] == task and backend_label(r) == label
                              and r["params"]["scaling"] == scaling)  # fmt: skip
                if pts:
                    xs, ys = zip(*[(1, 1.0), *pts], strict=True)
                    ax.plot(xs, ys, style, color=P.colors_for(doc).get(label),
                            label=f"{label} {scaling}", lw=1.5)  # fmt: skip
        ax.axhline(1.0, color="0.6", lw=0.8)
        ax.set_xlabel("workers")
        ax.set_ylabel("scaling efficiency")
        ax.grid(True, alpha=0.3)
        P.title(ax, task)
    P.legend_from_axes(fig, np.atleast_1d(fig.axes))
    P.suptitle(fig, "Data-parallel SGD: strong (solid) and weak (dashed) scaling efficiency")
    P.footnote(fig, P.failed_notes(list(records)))
    return fig


class ParallelSuite(ModuleSuite):
    """Data-parallel scaling (see the module docstring)."""

    name = NAME
    version = 1
    title = "parallel: data-parallel SGD against one worker"
    description = "data-parallel SGD: strong and weak scaling against one worker"
    case_names = TASKS

    def finalize(self, records: list[dict[str, Any]], *, precision: str = "float32") -> Finalized:
        efficiencies(records)
        return Finalized()

    def columns(self, records: Sequence[Mapping[str, Any]]) -> list[Column]:
        from vecx.tables import with_spread

        def param(key: str) -> Any:
            return lambda r: str((r.get("params") or {}).get(key, "-"))

        return [
            case_column("task"), backend_column(),
            Column("scaling", param("scaling"), "l", True),
            Column("workers", param("workers"), "r", True),
            Column("threads", lambda r: str(r.get("threads_per_worker") or "-"), "r", True),
            Column("engine", lambda r: str(r.get("engine") or "-"), "l", True),
            Column("batch", lambda r: f"{(r.get('params') or {}).get('batch_size', 0):,}",
                   "r", True),
            Column("time / epoch", with_spread),
            Column("efficiency", _efficiency),
            Column("final loss", lambda r: format_loss(r.get("value"))),
        ]  # fmt: skip

    def summary(self, rec: Mapping[str, Any]) -> str:
        if rec.get("error") or rec.get("value") is None:
            return super().summary(rec)
        from vecx.results import headline_s
        from vecx.tables import format_time

        return f"{format_time(headline_s(rec))}/epoch, loss {rec['value']:.4g}"

    figures = (FigureSpec("parallel-scaling", "Data-parallel SGD: scaling efficiency "
                          "against workers, per task", _scaling_figure),)  # fmt: skip


SUITE = ParallelSuite(sys.modules[__name__])
