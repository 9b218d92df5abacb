"""Figures of benchmark results, training runs and the normal-density example.

Every figure is drawn on a bare `matplotlib.figure.Figure` (no pyplot), which renders
through Agg for PNG and through matplotlib's own writers for SVG/PDF. That needs no
display, leaves the user's pyplot state and backend alone (safe to call from a notebook),
and keeps no global registry of figures alive between calls. matplotlib is imported
inside the functions so that ``import vecx`` stays light.

`plot_results` writes one PNG and one SVG per figure into a folder (PNG for Markdown
reports, SVG for print); it draws what the document has and skips the rest:

* ``train-methods``: loss against training time (log scale), one line per method (GD,
  SGD, minibatch 100, minibatch 10), one panel per backend x device, as in d2l's
  minibatch-SGD chapter;
* ``train-backends``: one preset (minibatch 10 by default) on every backend and both
  implementations (vecx trainer solid, framework-native dashed) on one panel;
* ``train-accuracy``: training accuracy against time for the presets that report one
  (the digits classifiers), one panel each, every backend and implementation;
* ``matmul``: GFLOP/s of the four strategies per backend x device, grouped bars, log scale;
* ``vector-add``: loop against vectorized time per backend, log scale, speedup on the bars;
* ``scaling``: achieved GB/s and GFLOP/s against problem size with each device's measured
  ceiling as a horizontal line (a roofline view), two panels; the bandwidth panel has a
  second line, the main-memory copy rate (the best copy at the largest sizes), because
  its ceiling, the best copy at any size, is an in-cache rate on a CPU.

Failed records (``error``) are left out of the drawing and listed under the figure, so a
missing bar is explained rather than silently absent.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vecx.tables import (
    backend_label,
    backend_sort_key,
    case_order,
    format_ratio,
    short_error,
)

#: Formats `plot_train_history` and `plot_normal` accept, by file suffix.
FORMATS: tuple[str, ...] = (".png", ".svg", ".pdf")

#: The figures `plot_results` may write, by file stem, each as PNG and SVG.
FIGURES: tuple[str, ...] = (
    "train-methods", "train-backends", "train-accuracy", "matmul", "vector-add", "scaling",
)  # fmt: skip
_RESULT_FORMATS = (".png", ".svg")

#: The d2l minibatch chapter's four methods: preset -> legend label, in drawing order.
TRAIN_METHODS: dict[str, str] = {
    "airfoil-gd": "GD",
    "airfoil-sgd": "SGD",
    "airfoil-mb100": "minibatch 100",
    "airfoil-mb10": "minibatch 10",
}

#: Preferred preset of the cross-backend training figure, first found wins.
CROSS_BACKEND_PRESETS: tuple[str, ...] = (
    "airfoil-mb10",
    "airfoil-mb100",
    "airfoil-sgd",
    "airfoil-gd",
    "linreg",
)

#: Fixed colours per framework so a backend looks the same in every figure.
_FRAMEWORK_COLORS = {"numpy": "C0", "torch": "C1", "jax": "C2", "cupy": "C3"}
_EXTRA_COLORS = ("C4", "C5", "C6", "C7", "C8", "C9")
_METHOD_COLORS = ("C0", "C3", "C2", "C1")

_PNG_DPI = 150
_PANEL_W, _PANEL_H = 4.2, 3.2


# --------------------------------------------------------------------------- plumbing


def _figure(**kwargs: Any) -> Any:
    """A pyplot-free Figure with constrained layout (no overlapping labels)."""
    from matplotlib.figure import Figure

    return Figure(layout="constrained", **kwargs)


def _ensure_dir(directory: Path) -> None:
    """Create ``directory`` or raise an OSError that names it and the cause."""
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"cannot write plots to {directory}: not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise type(e)(f"cannot create plot folder {directory} ({e.strerror or e})") from e
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write plots to {directory}: permission denied")


def _check_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"cannot save a plot as {path}: unknown format {path.suffix or '(no suffix)'!r}; "
            f"use one of {', '.join(FORMATS)}"
        )
    return suffix


def _save(fig: Any, path: Path) -> Path:
    """Save ``fig`` to ``path`` (format from the suffix), reproducibly, and return it.

    SVG and PDF get no creation date and a fixed id salt, so re-plotting the same results
    gives byte-identical files that diff cleanly when committed.
    """
    import matplotlib

    suffix = _check_suffix(path)
    _ensure_dir(path.parent)
    metadata: dict[str, Any] = {}
    if suffix == ".svg":
        metadata = {"Date": None}
    elif suffix == ".pdf":
        metadata = {"CreationDate": None}
    try:
        with matplotlib.rc_context({"svg.hashsalt": "vecx"}):
            fig.savefig(path, dpi=_PNG_DPI, metadata=metadata)
    except OSError as e:
        raise type(e)(f"cannot write plot {path} ({e.strerror or e})") from e
    return path


def _save_both(fig: Any, out_dir: Path, stem: str) -> list[Path]:
    return [_save(fig, out_dir / f"{stem}{ext}") for ext in _RESULT_FORMATS]


def figure_files(out_dir: str | os.PathLike[str]) -> list[Path]:
    """The files of `FIGURES` that exist in ``out_dir`` (``vecx bench`` removes them
    before writing a new results.json there, so no figure of an older run stays)."""
    out = Path(out_dir)
    return [out / f"{s}{ext}" for s in FIGURES for ext in _RESULT_FORMATS
            if (out / f"{s}{ext}").is_file()]  # fmt: skip


def _colors(labels: Sequence[str]) -> dict[str, str]:
    """Colour per backend label: by framework; a second device of it gets a new colour."""
    out: dict[str, str] = {}
    used: set[str] = set()
    extra = iter(_EXTRA_COLORS * 4)
    for label in labels:
        color = _FRAMEWORK_COLORS.get(label.split(":", 1)[0])
        if color is None or color in used:
            color = next(extra)
        used.add(color)
        out[label] = color
    return out


def _labels(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Backend labels in the tables' stable order (numpy, torch, jax, cupy; cpu first)."""
    return sorted({backend_label(r) for r in records}, key=backend_sort_key)


def _footnote(fig: Any, lines: Sequence[str], *, limit: int = 8) -> None:
    """Notes and left-out records under the figure: wrapped to its width, laid out by
    constrained layout (never overlapping the axes), at most ``limit`` lines."""
    if not lines:
        return
    import textwrap

    # DejaVu Sans at 7 pt averages about 4 pt per character
    width = max(40, int(fig.get_figwidth() * 72 / 4.1))
    wrapped: list[str] = []
    for line in dict.fromkeys(lines):
        wrapped += textwrap.wrap(line, width, subsequent_indent="    ") or [""]
    if len(wrapped) > limit:
        wrapped = wrapped[: limit - 1] + ["... (more in the report's notes)"]
    fig.supxlabel("\n".join(wrapped), fontsize=7, ha="left", x=0.01, color="0.3")


#: Average width of a character of DejaVu Sans, in ems (mixed text, digits, spaces).
_EM_PER_CHAR = 0.6


def _wrapped(text: str, width_in: float, fontsize: float) -> str:
    """``text`` broken into lines that fit ``width_in`` inches at ``fontsize`` points."""
    import textwrap

    chars = max(20, int(width_in * 72 / (_EM_PER_CHAR * fontsize)))
    return "\n".join(textwrap.wrap(text, chars)) or text


def _title(ax: Any, text: str) -> None:
    """An axes title wrapped to the axes' width, so a narrow figure never cuts it off.

    The width is the axes' before layout (matplotlib's default margins), a little less
    than it ends up with: a wrap a few characters early, never a cut.
    """
    from matplotlib import rcParams
    from matplotlib.font_manager import FontProperties

    size = FontProperties(size=rcParams["axes.titlesize"]).get_size_in_points()
    width = ax.get_position().width * ax.figure.get_figwidth()
    ax.set_title(_wrapped(text, width, size))


def _suptitle(fig: Any, text: str, *, right_in: float = 0.0) -> None:
    """A figure title wrapped to the figure's width and centred over the panels:
    ``right_in`` inches at the right are a legend's, which the title must not cross."""
    from matplotlib import rcParams
    from matplotlib.font_manager import FontProperties

    size = FontProperties(size=rcParams["figure.titlesize"]).get_size_in_points()
    width = fig.get_figwidth() - right_in
    fig.suptitle(_wrapped(text, width - 0.3, size), x=width / 2 / fig.get_figwidth())


def _legend_width(labels: Sequence[str], fontsize: float = 8) -> float:
    """About how many inches a one-column legend of ``labels`` takes (handle, text, pads)."""
    longest = max((len(label) for label in labels), default=0)
    return (longest * _EM_PER_CHAR * fontsize + 3.5 * fontsize + 8) / 72


def _failed(records: Sequence[Mapping[str, Any]]) -> list[str]:
    return [
        f"not shown: {backend_label(r)} {r['case']} failed ({short_error(str(r['error']), 60)})"
        for r in records
        if r.get("error")
    ]


def _ok(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in records if not r.get("error")]


def _finite_pos(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def _impl(rec: Mapping[str, Any]) -> str:
    return str((rec.get("params") or {}).get("impl", "vecx"))


def _curve(rec: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """(times, losses) of a record's or history's curve, keeping points a log axis can show."""
    curve = rec.get("curve") if "curve" in rec else rec
    if not isinstance(curve, Mapping):
        return None
    times, losses = curve.get("times"), curve.get("losses")
    if not isinstance(times, Sequence) or not isinstance(losses, Sequence):
        return None
    n = min(len(times), len(losses))
    t = np.asarray(times[:n], dtype=float)
    y = np.asarray(losses[:n], dtype=float)
    keep = np.isfinite(t) & np.isfinite(y) & (t > 0)
    if not keep.any():
        return None
    return t[keep], y[keep]


# --------------------------------------------------------------------------- results


def plot_results(doc: Mapping[str, Any], out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write every figure ``doc`` supports into ``out_dir`` (PNG and SVG); return the paths.

    Suites absent from ``doc`` (or with only failed records) produce no figure. Raises
    OSError naming the folder if it cannot be created or written.
    """
    out = Path(out_dir)
    _ensure_dir(out)
    records = [r for r in doc.get("results", []) if isinstance(r, Mapping)]
    by_suite: dict[str, list[Mapping[str, Any]]] = {}
    for rec in records:
        by_suite.setdefault(str(rec.get("suite")), []).append(rec)
    labels = _labels(records)
    colors = _colors(labels)
    paths: list[Path] = []
    if "train" in by_suite:
        paths += _train_methods(by_suite["train"], out)
        paths += _train_backends(by_suite["train"], out, colors)
        paths += _train_accuracy(by_suite["train"], out, colors)
    if "matmul" in by_suite:
        paths += _matmul(by_suite["matmul"], out, colors)
    if "vector-add" in by_suite:
        paths += _vector_add(by_suite["vector-add"], out, colors)
    if "scaling" in by_suite:
        ceilings = (doc.get("settings") or {}).get("ceilings")
        paths += _scaling(
            by_suite["scaling"], out, colors, ceilings if isinstance(ceilings, Mapping) else {}
        )
    return paths


def _train_methods(records: Sequence[Mapping[str, Any]], out: Path) -> list[Path]:
    """d2l's figure: one panel per backend x device, one line per method (vecx trainer)."""
    recs = [
        r
        for r in _ok(records)
        if r["case"] in TRAIN_METHODS and _impl(r) == "vecx" and _curve(r) is not None
    ]
    if not recs:
        return []
    labels = _labels(recs)
    ncols = min(len(labels), 3)
    nrows = math.ceil(len(labels) / ncols)
    legend = _legend_width(list(TRAIN_METHODS.values()))
    fig = _figure(figsize=(_PANEL_W * ncols + legend, _PANEL_H * nrows + 0.8))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False))
    for ax, label in zip(axes.flat, labels, strict=False):
        for (preset, method), color in zip(TRAIN_METHODS.items(), _METHOD_COLORS, strict=True):
            for rec in recs:
                if backend_label(rec) == label and rec["case"] == preset:
                    t, y = _curve(rec)  # type: ignore[misc]
                    ax.plot(t, y, color=color, label=method, lw=1.5)
        ax.set_xscale("log")
        _plain_log_axis(ax.xaxis)
        _title(ax, label)
        ax.set_xlabel("training time (s, log scale)")
        ax.set_ylabel("loss")
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(labels) :]:
        ax.set_visible(False)
    _legend_from_axes(fig, axes.flat)
    _suptitle(
        fig,
        "Loss against training time on the airfoil data: GD, SGD and minibatches",
        right_in=legend,
    )
    _footnote(fig, _failed([r for r in records if r["case"] in TRAIN_METHODS]))
    return _save_both(fig, out, "train-methods")


def _legend_from_axes(fig: Any, axes: Any) -> float:
    """One figure legend with each label once, right of the panels (never over a line);
    returns about how many inches wide it is (see `_legend_width`)."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    if seen:
        fig.legend(
            list(seen.values()),
            list(seen),
            loc="outside right upper",
            fontsize=8,
        )
    return _legend_width(list(seen)) if seen else 0.0


def _train_backends(
    records: Sequence[Mapping[str, Any]], out: Path, colors: Mapping[str, str]
) -> list[Path]:
    """One preset across every backend (vecx solid, native dashed) on one panel."""
    usable = [r for r in _ok(records) if _curve(r) is not None]
    present = {r["case"] for r in usable}
    preset = next((p for p in CROSS_BACKEND_PRESETS if p in present), None)
    if preset is None:
        preset = next(iter(sorted(present)), None)
    if preset is None:
        return []
    recs = [r for r in usable if r["case"] == preset]
    fig = _figure(figsize=(7.0, 4.4))
    ax = fig.subplots()
    for label in _labels(recs):
        for impl, style in (("vecx", "-"), ("native", "--")):
            for rec in recs:
                if backend_label(rec) == label and _impl(rec) == impl:
                    t, y = _curve(rec)  # type: ignore[misc]
                    name = f"{label} ({impl})"
                    if rec.get("agrees") is False:
                        name += ", loss disagrees"
                    ax.plot(t, y, style, color=colors.get(label), label=name, lw=1.5)
    ax.set_xscale("log")
    _plain_log_axis(ax.xaxis)
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
    _title(ax, f"{preset} ({method}) on every backend")
    _footnote(fig, _failed([r for r in records if r["case"] == preset]))
    return _save_both(fig, out, "train-backends")


def _accuracy_curve(rec: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """(times, training accuracies) of a classification record's curve, or None."""
    curve = rec.get("curve") if "curve" in rec else rec
    if not isinstance(curve, Mapping):
        return None
    times, accs = curve.get("times"), curve.get("accuracies")
    if accs is None and isinstance(curve.get("metrics"), Mapping):  # a History dict
        accs = curve["metrics"].get("accuracy")
    if not isinstance(times, Sequence) or not isinstance(accs, Sequence) or not accs:
        return None
    n = min(len(times), len(accs))
    t, a = np.asarray(times[:n], dtype=float), np.asarray(accs[:n], dtype=float)
    keep = np.isfinite(t) & np.isfinite(a) & (t > 0)
    return (t[keep], a[keep]) if keep.any() else None


def _train_accuracy(
    records: Sequence[Mapping[str, Any]], out: Path, colors: Mapping[str, str]
) -> list[Path]:
    """Training accuracy against time, one panel per classification preset, one line per
    backend x implementation (vecx solid, native dashed)."""
    usable = [r for r in _ok(records) if _accuracy_curve(r) is not None]
    presets = [p for p in case_order("train") if any(r["case"] == p for r in usable)]
    presets += sorted({r["case"] for r in usable} - set(presets))
    if not presets:
        return []
    labels = _labels(usable)
    names = [f"{label} ({impl})" for label in labels for impl in ("vecx", "native")]
    legend = _legend_width(names)
    fig = _figure(figsize=(_PANEL_W * len(presets) + legend, _PANEL_H + 0.8))
    axes = np.atleast_1d(fig.subplots(1, len(presets), sharey=True, squeeze=False)).flat
    for ax, preset in zip(axes, presets, strict=True):
        for label in labels:
            for impl, style in (("vecx", "-"), ("native", "--")):
                for rec in usable:
                    if rec["case"] == preset and backend_label(rec) == label and (
                        _impl(rec) == impl
                    ):
                        t, a = _accuracy_curve(rec)  # type: ignore[misc]
                        ax.plot(t, 100 * a, style, color=colors.get(label),
                                label=f"{label} ({impl})", lw=1.5)  # fmt: skip
        ax.set_xscale("log")
        _plain_log_axis(ax.xaxis)
        _title(ax, preset)
        ax.set_xlabel("training time (s, log scale)")
        ax.set_ylabel("training accuracy (%)")
        ax.grid(True, which="both", alpha=0.3)
    _legend_from_axes(fig, np.atleast_1d(fig.axes))
    _suptitle(fig, "Training accuracy against training time (solid: vecx, dashed: native)",
              right_in=legend)  # fmt: skip
    _footnote(fig, _failed([r for r in records if r["case"] in presets]))
    return _save_both(fig, out, "train-accuracy")


def _bar_labels(ax: Any, bars: Any, texts: Sequence[str], fontsize: float = 7) -> None:
    for bar, text in zip(bars, texts, strict=True):
        if text:
            ax.annotate(
                text,
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=fontsize,
            )


def _case_order(suite: str, records: Sequence[Mapping[str, Any]]) -> list[str]:
    cases = [c for c in case_order(suite) if any(r["case"] == c for r in records)]
    return cases + [c for c in dict.fromkeys(r["case"] for r in records) if c not in cases]


def _matmul(
    records: Sequence[Mapping[str, Any]], out: Path, colors: Mapping[str, str]
) -> list[Path]:
    """Grouped bars: strategy on x, one bar per backend x device, GFLOP/s on a log axis."""
    recs = [r for r in _ok(records) if _finite_pos(r.get("value"))]
    if not recs:
        return []
    cases = _case_order("matmul", recs)
    labels = _labels(recs)
    width = 0.8 / len(labels)
    x = np.arange(len(cases))
    fig = _figure(figsize=(min(12.0, max(6.0, 1.6 * len(cases) * max(1, len(labels) / 2))), 4.4))
    ax = fig.subplots()
    for i, label in enumerate(labels):
        values = []
        for case in cases:
            rec = next((r for r in recs if r["case"] == case and backend_label(r) == label), None)
            values.append(rec["value"] if rec else 0.0)
        bars = ax.bar(
            x + (i - (len(labels) - 1) / 2) * width,
            values,
            width,
            label=label,
            color=colors.get(label),
        )
        _bar_labels(ax, bars, [_short(v) if v > 0 else "" for v in values], fontsize=6)
        for xi, case in zip(x + (i - (len(labels) - 1) / 2) * width, cases, strict=True):
            if any(
                r.get("error") and r["case"] == case and backend_label(r) == label for r in records
            ):
                ax.text(
                    xi,
                    0.02,
                    "failed",
                    transform=ax.get_xaxis_transform(),
                    rotation=90,
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    color=colors.get(label),
                )
    ax.set_yscale("log")
    _plain_log_axis(ax.yaxis)
    ax.set_xticks(x, cases)
    ax.set_ylabel("GFLOP/s (log scale)")
    ns = sorted({(r.get("params") or {}).get("n") for r in recs} - {None})
    size = f"{ns[0]}x{ns[0]} " if len(ns) == 1 else ""
    _title(ax, f"matmul A = BC on {size}float32: element, column, full, blocks of 64")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.margins(y=0.15)
    _footnote(fig, _failed(records))
    return _save_both(fig, out, "matmul")


def _count(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) else str(x)


def _plain_log_axis(axis: Any, *, time: bool = False, subs: tuple[float, ...] = (1.0,)) -> None:
    """Log-axis ticks as plain text (``0.1``, ``10``; ``10 ms`` for times), not ``10^-1``.

    Easier to read, and much faster: mathtext tick labels are re-typeset at every layout
    pass, which made saving a figure take seconds.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    from vecx.tables import format_time

    def fmt(v: float, _pos: Any) -> str:
        if time:
            return format_time(v).replace(".00 ", " ").replace(".0 ", " ")
        return f"{v:g}"

    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(fmt))
    axis.set_minor_formatter(NullFormatter())


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _power_of_two_axis(axis: Any) -> None:
    """Ticks at powers of two labelled 2¹⁰ in plain text (no slow mathtext)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    def fmt(v: float, _pos: Any) -> str:
        p = math.log2(v) if v > 0 else 0.0
        return "2" + str(round(p)).translate(_SUPERSCRIPT) if abs(p - round(p)) < 1e-9 else ""

    axis.set_major_locator(LogLocator(base=2, numticks=12))
    axis.set_major_formatter(FuncFormatter(fmt))
    axis.set_minor_formatter(NullFormatter())


def _short(v: float) -> str:
    """Compact bar label: 3 significant digits."""
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def _vector_add(
    records: Sequence[Mapping[str, Any]], out: Path, colors: Mapping[str, str]
) -> list[Path]:
    """Per backend: loop and vectorized time side by side (log scale), speedup on top."""
    recs = [r for r in _ok(records) if _finite_pos(r.get("median_s"))]
    if not recs:
        return []
    labels = _labels(recs)
    x = np.arange(len(labels))
    width = 0.38
    fig = _figure(figsize=(max(6.0, 1.5 * len(labels) + 2), 4.4))
    ax = fig.subplots()
    find = {(backend_label(r), r["case"]): r for r in recs}
    notes = []
    loop_t = [find[(lb, "loop")]["median_s"] if (lb, "loop") in find else 0.0 for lb in labels]
    vec_t = [
        find[(lb, "vectorized")]["median_s"] if (lb, "vectorized") in find else 0.0 for lb in labels
    ]
    hatches = []
    for lb in labels:
        rec = find.get((lb, "loop"))
        extrapolated = bool(rec and rec.get("extrapolated"))
        hatches.append("//" if extrapolated else "")
        if rec is not None and extrapolated:
            n = (rec.get("params") or {}).get("n")
            notes.append(
                f"{lb} loop (hatched): extrapolated from "
                f"{_count(rec.get('measured_n'))} of {_count(n)} elements"
            )
        for rec in (find.get((lb, "loop")), find.get((lb, "vectorized"))):
            if rec and rec.get("note"):
                notes.append(f"{lb}: {rec['note']}")
    loop_bars = ax.bar(
        x - width / 2,
        loop_t,
        width,
        label="loop c[i] = a[i] + b[i]",
        color=[colors.get(lb) for lb in labels],
        alpha=0.45,
    )
    for bar, hatch in zip(loop_bars, hatches, strict=True):
        bar.set_hatch(hatch)
    vec_bars = ax.bar(
        x + width / 2,
        vec_t,
        width,
        label="vectorized a + b",
        color=[colors.get(lb) for lb in labels],
    )
    _bar_labels(ax, loop_bars, [_time_label(t) for t in loop_t])
    _bar_labels(ax, vec_bars, [_time_label(t) for t in vec_t])
    for xi, lt, vt in zip(x, loop_t, vec_t, strict=True):
        if lt > 0 and vt > 0:
            top = max(lt, vt)
            ax.annotate(
                f"{format_ratio(lt / vt)} faster",
                (xi, top),
                xytext=(0, 14),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8,
                fontweight="bold",
            )
    ax.set_yscale("log")
    _plain_log_axis(ax.yaxis, time=True)
    ax.set_xticks(x, labels)
    ax.set_ylabel("time per full add (log scale)")
    ns = sorted({(r.get("params") or {}).get("n") for r in recs} - {None})
    _title(
        ax,
        "vector add"
        + (f", n = {ns[0]:,}" if len(ns) == 1 and isinstance(ns[0], int) else "")
        + ": Python loop against one vectorized call",
    )
    ax.margins(y=0.3)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    # legend entries in neutral grey: colours encode the backend, shade encodes the case
    from matplotlib.patches import Patch

    fig.legend(
        handles=[
            Patch(facecolor="0.6", alpha=0.45, label="loop c[i] = a[i] + b[i] (lighter)"),
            Patch(facecolor="0.35", label="vectorized a + b"),
        ],
        fontsize=8,
        loc="outside upper center",
        ncols=2,
        frameon=False,
    )
    _footnote(fig, notes + _failed(records))
    return _save_both(fig, out, "vector-add")


def _time_label(t: float) -> str:
    from vecx.tables import format_time

    return format_time(t).replace(" ", "") if t > 0 else ""


def _ceiling(recs: Sequence[Mapping[str, Any]], device_of: str) -> float | None:
    """A device's ceiling as the runner computed it: value / (pct_of_ceiling / 100)."""
    vals = [
        r["value"] * 100.0 / r["pct_of_ceiling"]
        for r in recs
        if r.get("device") == device_of
        and _finite_pos(r.get("value"))
        and _finite_pos(r.get("pct_of_ceiling"))
    ]
    return float(np.median(vals)) if vals else None


def _scaling(
    records: Sequence[Mapping[str, Any]],
    out: Path,
    colors: Mapping[str, str],
    ceilings: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Roofline view: achieved bandwidth (left) and compute (right) against n, ceilings.

    ``ceilings`` is the run header's ``settings.ceilings``; its ``bandwidth_memory``
    entries are drawn as a second dashed line on the bandwidth panel ("main memory").
    """
    ceilings = ceilings or {}
    recs = [
        r
        for r in _ok(records)
        if _finite_pos(r.get("value")) and isinstance((r.get("params") or {}).get("n"), int)
    ]
    if not recs:
        return []
    panels = [
        (
            "bandwidth",
            "GB/s",
            [r for r in recs if r.get("unit") == "GB/s"],
            "bandwidth: vector add (3 arrays x bytes / time), copy dotted",
            "best copy at any size; on a CPU in cache",
        ),
        (
            "compute",
            "GFLOP/s",
            [r for r in recs if r.get("unit") == "GFLOP/s"],
            "matmul: 2n³ / time",
            "best matmul rate",
        ),
    ]
    panels = [p for p in panels if p[2]]
    fig = _figure(figsize=(_PANEL_W * 1.4 * len(panels), 4.6))
    axes_list = list(np.atleast_1d(fig.subplots(1, len(panels), squeeze=False)).flat)
    for ax, (_kind, unit, prs, title, ceiling_name) in zip(axes_list, panels, strict=True):
        devices = list(dict.fromkeys(r["device"] for r in prs))
        for label in _labels(prs):
            for case in _case_order("scaling", prs):
                pts = sorted(
                    (r["params"]["n"], r["value"])
                    for r in prs
                    if backend_label(r) == label and r["case"] == case
                )
                if not pts:
                    continue
                n, v = zip(*pts, strict=True)
                style = ":" if case == "copy" else "-"
                name = label if case in ("vector-add", "matmul") else f"{label} {case}"
                ax.plot(n, v, style, marker="o", ms=3, color=colors.get(label), label=name)
        for device in devices:
            ceiling = _ceiling(prs, device)
            if ceiling is None:
                best = [r["value"] for r in prs if r["device"] == device]
                ceiling = max(best) if best else None
            if ceiling:
                ax.axhline(ceiling, color="0.2", ls="--", lw=1)
                ax.annotate(
                    f"{device} ceiling ({ceiling_name}): {_short(ceiling)} {unit}",
                    (0.01, ceiling),
                    xycoords=("axes fraction", "data"),
                    xytext=(2, 3),
                    textcoords="offset points",
                    fontsize=7,
                    color="0.2",
                )
            memory = (ceilings.get(device) or {}).get("bandwidth_memory")
            if unit == "GB/s" and isinstance(memory, Mapping) and _finite_pos(memory.get("value")):
                value = float(memory["value"])
                ax.axhline(value, color="0.45", ls=(0, (6, 3)), lw=1, gid="main-memory")
                what = "main memory" if memory.get("main_memory", True) else (
                    "largest size, may be in cache"
                )  # fmt: skip
                ax.annotate(
                    f"{device} {what} (best copy at the largest sizes): {_short(value)} {unit}",
                    (0.01, value),
                    xycoords=("axes fraction", "data"),
                    xytext=(2, -9),
                    textcoords="offset points",
                    fontsize=7,
                    color="0.45",
                )
        ax.set_xscale("log", base=2)
        _power_of_two_axis(ax.xaxis)
        ax.set_yscale("log")
        _plain_log_axis(ax.yaxis, subs=(1.0, 2.0, 5.0))
        ax.set_xlabel("problem size n (log scale)")
        ax.set_ylabel(f"achieved {unit} (log scale)")
        _title(ax, title)
        ax.grid(True, which="both", alpha=0.3)
        ax.margins(y=0.2)
    legend = _legend_from_axes(fig, list(axes_list))
    _suptitle(
        fig,
        "Scaling: achieved rate against problem size, with the measured ceiling",
        right_in=legend,
    )
    _footnote(fig, _failed(records))
    return _save_both(fig, out, "scaling")


# --------------------------------------------------------------------------- single runs


def plot_train_history(history: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Loss against training time of one ``vecx train --json`` History dict.

    The suffix of ``path`` picks the format (``.png``, ``.svg``, ``.pdf``); any other
    suffix is a ValueError, raised before anything is drawn or written.
    """
    path = Path(path)
    _check_suffix(path)
    curve = _curve(history)
    if curve is None:
        raise ValueError("the training history has no times and losses to plot")
    t, y = curve
    accuracy = _accuracy_curve(history)
    fig = _figure(figsize=(6.0 if accuracy is None else 10.0, 4.0))
    ax, *more = np.atleast_1d(fig.subplots(1, 1 if accuracy is None else 2)).flat
    label = str(history.get("backend") or "")
    ax.plot(t, y, marker="o" if len(t) <= 30 else None, ms=3, lw=1.5, label=label or None)
    ax.set_xscale("log")
    _plain_log_axis(ax.xaxis)
    ax.set_xlabel("training time (s, log scale)")
    ax.set_ylabel("loss")
    ax.grid(True, which="both", alpha=0.3)
    if accuracy is not None:
        acc_ax = more[0]
        ta, a = accuracy
        acc_ax.plot(ta, 100 * a, marker="o" if len(ta) <= 30 else None, ms=3, lw=1.5,
                    color="C2")  # fmt: skip
        acc_ax.set_xscale("log")
        _plain_log_axis(acc_ax.xaxis)
        acc_ax.set_xlabel("training time (s, log scale)")
        acc_ax.set_ylabel("training accuracy (%)")
        acc_ax.grid(True, which="both", alpha=0.3)
        _title(acc_ax, f"accuracy {100 * a[-1]:.1f}%")
    preset = history.get("preset") or "custom run"
    details = []
    if history.get("batch_size") is not None:
        details.append(f"batch {history['batch_size']}")
    if history.get("lr") is not None:
        details.append(f"lr {history['lr']}")
    partial = "interrupted" if history.get("interrupted") else (
        "diverged" if history.get("diverged") else ""
    )  # fmt: skip
    if partial:
        details.append(f"{partial} after {len(t)} checkpoint{'s' * (len(t) != 1)}")
    _title(
        ax, f"{preset} on {label or 'a backend'}" + (f" ({', '.join(details)})" if details else "")
    )
    # upper right: loss curves fall, so that corner stays clear of the line
    ax.text(
        0.98,
        0.96,
        f"{'last' if partial else 'final'} loss {y[-1]:.4g}",
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=9,
        bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "0.8"},
    )
    return _save(fig, path)


def normal_densities(
    be: Any, x: np.ndarray, params: Sequence[tuple[float, float]]
) -> list[np.ndarray]:
    """d2l's normal densities ``p(x) = exp(-(x - mu)^2 / (2 sigma^2)) / sqrt(2 pi sigma^2)``.

    Computed through the backend (``be.asarray``, native operators, ``be.exp``) and brought
    back with ``be.to_numpy``: the point of the example is that the same formula runs on any
    framework and device. One float64 NumPy array per ``(mu, sigma)``.
    """
    xb = be.asarray(np.asarray(x, dtype=np.float32))
    out = []
    for mu, sigma in params:
        if not sigma > 0:
            raise ValueError(f"standard deviation must be > 0, got {sigma!r}")
        p = be.exp((xb - mu) ** 2 * (-0.5 / sigma**2)) * (1.0 / math.sqrt(2 * math.pi * sigma**2))
        out.append(np.asarray(be.to_numpy(p), dtype=np.float64))
    return out


def plot_normal(
    be: Any,
    path: str | os.PathLike[str],
    *,
    params: Sequence[tuple[float, float]] = ((0, 1), (0, 2), (3, 1)),
) -> Path:
    """d2l's figure of normal densities for ``params`` (mean, std), computed on ``be``."""
    path = Path(path)
    _check_suffix(path)
    x = np.arange(-7, 7, 0.01)
    ys = normal_densities(be, x, params)
    fig = _figure(figsize=(6.0, 3.8))
    ax = fig.subplots()
    for (mu, sigma), y in zip(params, ys, strict=True):
        ax.plot(x, y, lw=1.5, label=f"mean {mu:g}, std {sigma:g}")
    ax.set_xlabel("x")
    ax.set_ylabel("p(x)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    spec = getattr(be, "spec", None) or getattr(be, "name", "backend")
    _title(ax, f"Normal densities computed with {spec}")
    return _save(fig, path)


__all__ = [
    "FIGURES",
    "FORMATS",
    "figure_files",
    "TRAIN_METHODS",
    "normal_densities",
    "plot_normal",
    "plot_results",
    "plot_train_history",
]
