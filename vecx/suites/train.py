"""``train``: the trainer's presets, with vecx's trainer and the framework-native way.

One case per preset (``linreg``, ``airfoil-gd``, ``airfoil-sgd``, ``airfoil-mb100``,
``airfoil-mb10``, ``digits-softmax``, ``digits-mlp``) and implementation: ``impl =
"vecx"`` is :func:`vecx.train` (written once against the Backend protocol) on every
backend; ``impl = "native"`` is the same run with the framework-native executor
(``vecx.native``: PyTorch ``nn`` + ``torch.optim.SGD``, a ``jax.jit`` step from
``jax.grad``) on the same data, initial parameters and minibatches, for torch and jax.

* ``min_s``, the headline, and ``median_s``: training seconds per epoch (the trainer's
  clock, synchronised, excluding the whole-data loss evaluations and, with its warm-up,
  JAX's compilation), the fastest and the median of ``repeats`` runs (3 in a full run, 1
  with ``--quick``); ``iqr_s`` their spread.
* ``value``: the final whole-data loss; ``curve``: the loss against training time (and
  ``accuracies`` for a classification preset, whose record also has ``accuracy``, the
  final training accuracy).
* ``agrees`` is set once every backend has run (:meth:`TrainSuite.finalize`,
  `check_agreement`): a final loss that disagrees with the others is a wrong result,
  however fast.

``--quick`` keeps every preset's name and hyperparameters but runs fewer epochs; the
override is recorded in ``params["overrides"]`` so a quick record never passes for a
full one (and the params differ, so ``vecx compare`` never matches the two).
"""

from __future__ import annotations

import importlib.util
import math
import statistics
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from vecx.suites import Case, spec_name, timed
from vecx.suites.suite import FigureSpec, Finalized, ModuleSuite
from vecx.tables import (
    Column,
    backend_column,
    backend_label,
    case_column,
    format_loss,
    with_spread,
)
from vecx.timing import Measurement, timeline

NAME = "train"
#: Backends with a framework-native reference trainer in ``vecx.native``.
NATIVE = ("torch", "jax")
#: Fewer epochs in quick runs (GD's ten full-batch epochs cost next to nothing: kept).
QUICK_OVERRIDES: dict[str, dict[str, Any]] = {
    "linreg": {"epochs": 1},
    "airfoil-sgd": {"epochs": 1},
    "airfoil-mb100": {"epochs": 1},
    "airfoil-mb10": {"epochs": 1},
    "digits-softmax": {"epochs": 2},
    "digits-mlp": {"epochs": 2},
}
NATIVE_NOTES = {
    "torch": "native: nn modules + torch.optim.SGD, loss.backward()",
    "jax": "native: jax.jit step built from jax.grad",
}
REPEATS = 3
REPEATS_QUICK = 1
#: Relative tolerance on final training losses across backends/impls, by matmul precision
#: (see `check_agreement`), and an absolute floor for losses near zero.
AGREE_RTOL = {"float32": 1e-4, "tf32": 1e-2}
AGREE_ATOL = 1e-9
#: Unit roundoff of the mixed-precision compute dtypes, and how many units of it two
#: backends' final losses may differ by (tests/test_precision.py says why 16).
MIXED_ROUNDOFF = {"bfloat16": 2.0**-8, "float16": 2.0**-11}
MIXED_AGREE_U = 16

#: The d2l minibatch chapter's four methods: preset -> legend label, in drawing order.
TRAIN_METHODS: dict[str, str] = {
    "airfoil-gd": "GD",
    "airfoil-sgd": "SGD",
    "airfoil-mb100": "minibatch 100",
    "airfoil-mb10": "minibatch 10",
}
_METHOD_COLORS = ("C0", "C3", "C2", "C1")
#: Preferred preset of the cross-backend training figure, first found wins.
CROSS_BACKEND_PRESETS: tuple[str, ...] = (
    "airfoil-mb10", "airfoil-mb100", "airfoil-sgd", "airfoil-gd", "linreg",
)  # fmt: skip


def _presets() -> list[str]:
    from vecx.training import PRESETS

    return list(PRESETS)


def _has_native() -> bool:
    return importlib.util.find_spec("vecx.native") is not None


def plan(
    device: str,
    *,
    quick: bool = False,
    presets: list[str] | None = None,
    native: bool = True,
    modes: Sequence[str] | None = None,
    compute_dtypes: Sequence[str] | None = None,
    **_: Any,
) -> list[tuple]:
    """Every preset with ``impl = "vecx"`` (once per mode of ``modes`` and compute dtype
    of ``compute_dtypes``, each recorded in the params; without, in the backend's default
    mode and dtype); torch and jax also with ``impl = "native"``."""
    names = presets if presets is not None else _presets()
    variants: list[dict[str, Any]] = [
        {"impl": "vecx", **({"mode": m} if m else {}), **({"compute_dtype": d} if d else {})}
        for m in (modes or [None]) for d in (compute_dtypes or [None])
    ]
    if native and spec_name(device) in NATIVE and _has_native():
        variants.append({"impl": "native"})
    return [(p, {"preset": p, **v}) for p in names for v in variants]


def cases(
    be: Any,
    *,
    quick: bool = False,
    presets: list[str] | None = None,
    native: bool = True,
    overrides: dict[str, dict[str, Any]] | None = None,
    repeats: int | None = None,
    seed: int = 0,
    modes: Sequence[str] | None = None,
    compute_dtypes: Sequence[str] | None = None,
) -> list[Case]:
    """The planned cases on ``be``; ``overrides`` (per preset) and ``repeats`` for tests.

    ``seed`` fixes the synthetic data, initial parameters and minibatch order (host
    generators in ``vecx.data``), identical on every backend.
    """
    from vecx.protocol import ModeUnsupported, UnsupportedDtype
    from vecx.results import result
    from vecx.training import PRESETS, train

    extra = overrides if overrides is not None else (QUICK_OVERRIDES if quick else {})
    runs = repeats if repeats is not None else (REPEATS_QUICK if quick else REPEATS)

    def run(params: dict[str, Any]) -> dict[str, Any]:
        preset, impl, mode = params["preset"], params["impl"], params.get("mode")
        compute = params.get("compute_dtype")
        p = PRESETS[preset]
        over = dict(extra.get(preset, {}))
        hyper = {"lr": p.lr, "batch_size": p.batch_size, "epochs": p.epochs, **over}
        histories = []
        label = " ".join(["train", preset, impl, *(x for x in (mode, compute) if x)])
        for _ in range(runs):
            with timeline(label):
                executor = "native" if impl == "native" else None
                try:
                    histories.append(train(be, preset, seed=seed, executor=executor,
                                           mode=mode, compute_dtype=compute, **over))  # fmt: skip
                except (ModeUnsupported, UnsupportedDtype) as exc:  # a limit, not a failure
                    return result(NAME, preset, be.name, be.device, dtype=be.dtype,
                                  params={**params, **hyper, "overrides": over},
                                  skipped=str(exc), mode=mode,
                                  compute_dtype=compute)  # fmt: skip
        times = [h.epoch_time for h in histories]
        median = statistics.median(times)
        h = min(histories, key=lambda x: abs(x.epoch_time - median))
        meas = Measurement(tuple(times), 1, 0.0, label)
        params = {**params, **hyper, "overrides": over, "repeats": runs}
        curve = {"times": h.times, "losses": h.losses, "examples": h.examples}
        scores = {}
        if h.accuracy is not None:
            curve["accuracies"] = h.metrics["accuracy"]
            scores["accuracy"] = h.accuracy
        rec = timed(
            NAME, preset, be, meas, params=params, metric="loss", value=float(h.loss), unit="",
            curve=curve, agrees=None,
            note=NATIVE_NOTES.get(be.name) if impl == "native" else None,
            first_call_s=None,  # the trainer warms up (compiles) before its clock starts
            mode=h.mode, compile_s=histories[0].compile_s, compiles=h.compiles,
            compute_dtype=h.compute_dtype, loss_scale=h.loss_scale,
            skipped_steps=h.skipped_steps,
            **scores,
        )  # fmt: skip
        rec["median_s"] = median  # seconds per epoch, over the runs
        return rec

    return [
        Case(NAME, case, params, lambda p=params: run(p))
        for case, params in plan(be.spec, quick=quick, presets=presets, native=native,
                                 modes=modes, compute_dtypes=compute_dtypes)  # fmt: skip
    ]


def run_train(be: Any, *, quick: bool = False, **sizes: Any) -> Iterator[dict[str, Any]]:
    """Records of every preset (and native implementation) on ``be``."""
    from vecx.suites import run_suite

    yield from run_suite(NAME, be, quick=quick, **sizes)


# --------------------------------------------------------------------------- agreement


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

    Mixed-precision records are compared only with records of their own compute dtype,
    within `MIXED_AGREE_U` units of its roundoff (the bound tests/test_precision.py
    derives).
    """
    by_preset: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rec in records:
        if rec.get("suite") == "train":
            rec["agrees"] = None
            if not rec.get("error") and _finite(rec.get("value")):
                dtype = rec.get("compute_dtype") or "float32"
                by_preset.setdefault((rec["case"], dtype), []).append(rec)
    disagreements = 0
    for (_, dtype), recs in by_preset.items():
        if len(recs) < 2:
            continue
        rtol = (MIXED_AGREE_U * MIXED_ROUNDOFF[dtype] if dtype in MIXED_ROUNDOFF
                else AGREE_RTOL.get(precision, AGREE_RTOL["float32"]))  # fmt: skip
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


def break_even(records: Iterable[dict[str, Any]]) -> None:
    """Set ``break_even_steps`` on compiled-mode train records in place: the steps after
    which the mode's compile time (less eager's warm-up) is paid back by its faster steps,
    against eager on the same backend, device and preset. A mode no faster than eager
    never pays back: None, and a note says so."""
    from vecx.results import headline_s
    from vecx.training import PRESETS

    eager = {}
    for rec in records:
        if rec.get("suite") == NAME and rec.get("mode") == "eager" and headline_s(rec):
            eager[(rec["backend"], rec["device"], rec["case"], rec.get("compute_dtype"))] = rec
    for rec in records:
        if rec.get("suite") != NAME or rec.get("mode") in (None, "eager") or rec.get("error"):
            continue
        base = eager.get((rec["backend"], rec["device"], rec["case"], rec.get("compute_dtype")))
        mine = headline_s(rec)
        if base is None or mine is None or rec.get("compile_s") is None:
            continue
        batch = (rec.get("params") or {}).get("batch_size")
        preset = PRESETS.get(rec["case"])
        if not batch or preset is None:
            continue
        steps_per_epoch = math.ceil(preset.examples / batch)
        saved = (headline_s(base) - mine) / steps_per_epoch  # seconds per step
        cost = rec["compile_s"] - (base.get("compile_s") or 0.0)
        if saved > 0:
            rec["break_even_steps"] = max(0.0, cost / saved)
        else:
            extra = (f"{rec['mode']} is no faster than eager on {rec['case']}: its compile "
                     "never pays back")  # fmt: skip
            rec["note"] = f"{rec['note']}; {extra}" if rec.get("note") else extra


#: The float64 least-squares optimum of the squared loss / 2 on d2l's 1500 whitened airfoil
#: rows (``numpy.linalg.lstsq`` on the shipped data): no run can reach below it.
AIRFOIL_OPTIMUM = 0.24168795


def check_optimum(records: Iterable[dict[str, Any]]) -> int:
    """Mark an airfoil record whose final loss is below the float64 optimum (by more than
    float32 rounding) as an error: a measurement error, never a result. Returns how many."""
    bad = 0
    for rec in records:
        if (rec.get("suite") == NAME and str(rec.get("case", "")).startswith("airfoil")
                and _finite(rec.get("value")) and not rec.get("error")
                and rec["value"] < AIRFOIL_OPTIMUM * (1 - 1e-5)):  # fmt: skip
            rec["agrees"] = False
            extra = (f"final loss {rec['value']:.6g} is below the float64 least-squares "
                     f"optimum {AIRFOIL_OPTIMUM} of this data: a measurement error")
            rec["note"] = f"{rec['note']}; {extra}" if rec.get("note") else extra
            bad += 1
    return bad


def against_float32(records: Iterable[dict[str, Any]]) -> None:
    """Set ``loss_vs_float32`` (relative deviation of the final loss) and
    ``speed_vs_float32`` (float32's time per epoch over this one's) on mixed-precision
    records, against the float32 record of the same backend, device, preset and mode."""
    from vecx.results import headline_s

    def key(rec: Mapping[str, Any]) -> tuple:
        return (rec["backend"], rec["device"], rec["case"], rec.get("mode"),
                (rec.get("params") or {}).get("impl"))  # fmt: skip

    full = {key(r): r for r in records if r.get("suite") == NAME
            and r.get("compute_dtype") == "float32" and _finite(r.get("value"))}  # fmt: skip
    for rec in records:
        if rec.get("suite") != NAME or rec.get("compute_dtype") in (None, "float32"):
            continue
        base = full.get(key(rec))
        if base is None or not _finite(rec.get("value")):
            continue
        rec["loss_vs_float32"] = abs(rec["value"] - base["value"]) / abs(base["value"])
        mine, theirs = headline_s(rec), headline_s(base)
        if mine and theirs:
            rec["speed_vs_float32"] = theirs / mine


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# --------------------------------------------------------------------------- presentation


def _count(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) else str(x)


def _param(key: str) -> Any:
    return lambda r: _count((r.get("params") or {})[key]) if key in (r.get("params") or {}) else "-"


def _accuracy(value: Any) -> str:
    """A training accuracy as a percentage (``97.8%``), ``-`` for a regression task."""
    return "-" if value is None else f"{100 * float(value):.1f}%"


_AGREES = {True: "yes", False: "NO", None: "-"}


def _seconds(value: Any) -> str:
    """A compile time: ``-`` where nothing compiles, ``cached`` where an earlier run had."""
    from vecx.tables import format_time

    if value is None:
        return "-"
    return "cached" if value == 0 else format_time(value)


def _versus_float32(rec: Mapping[str, Any]) -> str:
    """A mixed-precision record's loss deviation and speed-up against float32's."""
    dev, speed = rec.get("loss_vs_float32"), rec.get("speed_vs_float32")
    if dev is None:
        return "-"
    return f"{dev:.1e} loss" + (f", {speed:.2f}x speed" if speed else "")


def _steps(value: Any) -> str:
    return "-" if value is None else f"{value:,.0f} steps"


def _train_methods(records: Sequence[Mapping[str, Any]], doc: Mapping[str, Any]) -> Any:
    """d2l's figure: one panel per backend x device, one line per method (vecx trainer)."""
    from vecx import plots as P

    recs = [
        r
        for r in P.succeeded(records)
        if r["case"] in TRAIN_METHODS and P.impl_of(r) == "vecx" and P.curve(r) is not None
    ]
    if not recs:
        return None
    labels = P.labels_of(recs)
    ncols = min(len(labels), 3)
    nrows = math.ceil(len(labels) / ncols)
    legend = P.legend_width(list(TRAIN_METHODS.values()))
    fig = P.new_figure(figsize=(P.PANEL_W * ncols + legend, P.PANEL_H * nrows + 0.8))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False))
    for ax, label in zip(axes.flat, labels, strict=False):
        for (preset, method), color in zip(TRAIN_METHODS.items(), _METHOD_COLORS, strict=True):
            for rec in recs:
                if backend_label(rec) == label and rec["case"] == preset:
                    t, y = P.curve(rec)  # type: ignore[misc]
                    ax.plot(t, y, color=color, label=method, lw=1.5)
        ax.set_xscale("log")
        P.plain_log_axis(ax.xaxis)
        P.title(ax, label)
        ax.set_xlabel("training time (s, log scale)")
        ax.set_ylabel("loss")
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(labels) :]:
        ax.set_visible(False)
    P.legend_from_axes(fig, axes.flat)
    P.suptitle(
        fig,
        "Loss against training time on the airfoil data: GD, SGD and minibatches",
        right_in=legend,
    )
    P.footnote(fig, P.failed_notes([r for r in records if r["case"] in TRAIN_METHODS]))
    return fig


def _train_backends(records: Sequence[Mapping[str, Any]], doc: Mapping[str, Any]) -> Any:
    """One preset across every backend (vecx solid, native dashed) on one panel."""
    from vecx import plots as P

    usable = [r for r in P.succeeded(records) if P.curve(r) is not None]
    present = {r["case"] for r in usable}
    preset = next((p for p in CROSS_BACKEND_PRESETS if p in present), None)
    if preset is None:
        preset = next(iter(sorted(present)), None)
    if preset is None:
        return None
    recs = [r for r in usable if r["case"] == preset]
    fig = P.new_figure(figsize=(7.0, 4.4))
    ax = fig.subplots()
    modes = any((r.get("params") or {}).get("mode") for r in recs)
    for label in P.labels_of(recs):
        for impl, style in (("vecx", "-"), ("native", "--")):
            for rec in recs:
                if backend_label(rec) == label and P.impl_of(rec) == impl:
                    t, y = P.curve(rec)  # type: ignore[misc]
                    mode = rec.get("mode") if modes and impl == "vecx" else None
                    name = f"{label} ({impl}{', ' + mode if mode else ''})"
                    if rec.get("agrees") is False:
                        name += ", loss disagrees"
                    ax.plot(t, y, style, color=P.colors_for(doc).get(label), label=name, lw=1.5)
    ax.set_xscale("log")
    P.plain_log_axis(ax.xaxis)
    ax.set_xlabel("training time (s, log scale)")
    ax.set_ylabel("loss")
    ax.grid(True, which="both", alpha=0.3)
    fig.legend(
        *ax.get_legend_handles_labels(),
        loc="outside right upper",
        fontsize=8,
        title="solid: vecx trainer\ndashed: framework-native",
        title_fontsize=8,
    )
    method = TRAIN_METHODS.get(preset, preset)
    P.title(ax, f"{preset} ({method}) on every backend")
    P.footnote(fig, P.failed_notes([r for r in records if r["case"] == preset]))
    return fig


def _train_accuracy(records: Sequence[Mapping[str, Any]], doc: Mapping[str, Any]) -> Any:
    """Training accuracy against time, one panel per classification preset, one line per
    backend x implementation (vecx solid, native dashed)."""
    from vecx import plots as P

    usable = [r for r in P.succeeded(records) if P.accuracy_curve(r) is not None]
    presets = [p for p in SUITE.case_names if any(r["case"] == p for r in usable)]
    presets += sorted({r["case"] for r in usable} - set(presets))
    if not presets:
        return None
    labels = P.labels_of(usable)
    names = [f"{label} ({impl})" for label in labels for impl in ("vecx", "native")]
    legend = P.legend_width(names)
    fig = P.new_figure(figsize=(P.PANEL_W * len(presets) + legend, P.PANEL_H + 0.8))
    axes = np.atleast_1d(fig.subplots(1, len(presets), sharey=True, squeeze=False)).flat
    for ax, preset in zip(axes, presets, strict=True):
        for label in labels:
            for impl, style in (("vecx", "-"), ("native", "--")):
                for rec in usable:
                    if (
                        rec["case"] == preset
                        and backend_label(rec) == label
                        and (P.impl_of(rec) == impl)
                    ):
                        t, a = P.accuracy_curve(rec)  # type: ignore[misc]
                        ax.plot(t, 100 * a, style, color=P.colors_for(doc).get(label),
                                label=f"{label} ({impl})", lw=1.5)  # fmt: skip
        ax.set_xscale("log")
        P.plain_log_axis(ax.xaxis)
        P.title(ax, preset)
        ax.set_xlabel("training time (s, log scale)")
        ax.set_ylabel("training accuracy (%)")
        ax.grid(True, which="both", alpha=0.3)
    P.legend_from_axes(fig, np.atleast_1d(fig.axes))
    P.suptitle(fig, "Training accuracy against training time (solid: vecx, dashed: native)",
              right_in=legend)  # fmt: skip
    P.footnote(fig, P.failed_notes([r for r in records if r["case"] in presets]))
    return fig


_MODE_COLORS = {"eager": "C0", "jit": "C1", "fused": "C2"}


def _train_modes(records: Sequence[Mapping[str, Any]], doc: Mapping[str, Any]) -> Any:
    """Per preset, time per epoch of each backend x mode (bars) with the compile time it
    paid first beside it: only for runs with ``--modes``."""
    from vecx import plots as P
    from vecx.results import headline_s

    recs = [r for r in P.succeeded(records) if (r.get("params") or {}).get("mode")
            and P.impl_of(r) == "vecx" and headline_s(r)]  # fmt: skip
    presets = [p for p in SUITE.case_names if any(r["case"] == p for r in recs)]
    if not presets:
        return None
    labels = P.labels_of(recs)
    modes = [m for m in _MODE_COLORS if any(r.get("mode") == m for r in recs)]
    fig = P.new_figure(figsize=(P.PANEL_W * 2 + 1.2, P.PANEL_H * 0.55 * len(presets) + 1.4))
    axes = np.atleast_2d(fig.subplots(len(presets), 2, squeeze=False))
    width = 0.8 / max(1, len(modes))
    for row, preset in zip(axes, presets, strict=True):
        speed, cost = row
        for j, mode in enumerate(modes):
            xs, times, compiles = [], [], []
            for i, label in enumerate(labels):
                rec = next((r for r in recs if r["case"] == preset and r.get("mode") == mode
                            and backend_label(r) == label), None)  # fmt: skip
                if rec is not None:
                    xs.append(i + (j - (len(modes) - 1) / 2) * width)
                    times.append(headline_s(rec))
                    compiles.append(rec.get("compile_s") or 0.0)
            color = _MODE_COLORS[mode]
            speed.barh(xs, times, height=width, color=color, label=mode)
            cost.barh(xs, compiles, height=width, color=color, label=mode)
        panels = ((speed, "training time per epoch"), (cost, "warm-up before the clock"))
        for ax, what in panels:
            ax.set_yticks(range(len(labels)), labels, fontsize=7)
            ax.invert_yaxis()
            warmup = ax is cost
            ax.set_xscale("symlog" if warmup else "log", **({"linthresh": 1e-3} if warmup else {}))
            ax.grid(True, axis="x", which="both", alpha=0.3)
            P.title(ax, f"{preset}: {what}")
        P.plain_log_axis(speed.xaxis, time=True)
        cost.set_xlabel("seconds")
    P.legend_from_axes(fig, axes[:1, :1].flat)
    P.suptitle(fig, "Eager, jit and fused: speed, and the warm-up (compilation) that buys it")
    P.footnote(fig, P.failed_notes([r for r in records if (r.get("params") or {}).get("mode")]))
    return fig


class TrainSuite(ModuleSuite):
    """The trainer's presets, vecx and framework-native (see the module docstring)."""

    name = NAME
    version = 1
    title = "train: the trainer's presets (vecx trainer and framework-native)"
    description = "the trainer's presets (d2l's linreg, airfoil GD/SGD/minibatch, digits)"
    options = ("modes", "compute_dtypes")

    @property
    def case_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(_presets())

    def finalize(self, records: list[dict[str, Any]], *, precision: str = "float32") -> Finalized:
        """The cross-backend loss check; its tolerance goes into the header."""
        flagged = check_agreement(records, precision=precision)
        flagged += check_optimum(records)
        break_even(records)
        against_float32(records)
        tolerance = {"rtol": AGREE_RTOL.get(precision, AGREE_RTOL["float32"]), "atol": AGREE_ATOL}
        return Finalized({"agree_tolerance": tolerance}, flagged, "with a disagreeing final loss")

    def columns(self, records: Sequence[Mapping[str, Any]]) -> list[Column]:
        return [
            case_column("preset"), backend_column(),
            Column("impl", lambda r: str((r.get("params") or {}).get("impl", "vecx")), "l", True),
            Column("mode", lambda r: str(r.get("mode") or "-"), "l", True),
            Column("compute", lambda r: str(r.get("compute_dtype") or "-"), "l", True),
            Column("batch", _param("batch_size"), "r", True),
            Column("epochs", _param("epochs"), "r", True),
            Column("time / epoch", with_spread),
            Column("compile", lambda r: _seconds(r.get("compile_s"))),
            Column("break-even", lambda r: _steps(r.get("break_even_steps"))),
            Column("final loss", lambda r: format_loss(r.get("value"))),
            Column("vs float32", _versus_float32),
            Column("accuracy", lambda r: _accuracy(r.get("accuracy"))),
            Column("agrees", lambda r: _AGREES.get(r.get("agrees"), "-"), "l"),
        ]  # fmt: skip

    def notes(self, records: Sequence[Mapping[str, Any]], doc: Mapping[str, Any]) -> list[str]:
        return [
            f"{backend_label(r)} {(r.get('params') or {}).get('impl', 'vecx')} {r['case']}: "
            f"final loss {format_loss(r.get('value'))} disagrees with the other backends"
            for r in records
            if r.get("agrees") is False and not r.get("error")
        ]

    def summary(self, rec: Mapping[str, Any]) -> str:
        if rec.get("error") or rec.get("value") is None:
            return super().summary(rec)
        from vecx.results import headline_s
        from vecx.tables import format_time

        return f"loss {rec['value']:.4g}, {format_time(headline_s(rec))}/epoch"

    figures = (
        FigureSpec("train-methods", "Loss against training time per backend: GD, SGD, "
                   "minibatch 100 and 10", _train_methods),
        FigureSpec("train-backends", "One preset on every backend, vecx trainer and "
                   "framework-native", _train_backends),
        FigureSpec("train-accuracy", "Training accuracy against training time of the "
                   "classification presets", _train_accuracy),
        FigureSpec("train-modes", "Time per epoch and compile time of each backend in each "
                   "mode (runs with --modes)", _train_modes),
    )  # fmt: skip


SUITE = TrainSuite(sys.modules[__name__])
