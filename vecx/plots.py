"""Figures of benchmark results, training runs and the normal-density example.

Every figure is drawn on a bare `matplotlib.figure.Figure` (no pyplot), which renders
through Agg for PNG and through matplotlib's own writers for SVG/PDF. That needs no
display, leaves the user's pyplot state and backend alone (safe to call from a notebook),
and keeps no global registry of figures alive between calls. matplotlib is imported
inside the functions so that ``import vecx`` stays light.

`plot_results` writes one PNG and one SVG per figure into a folder (PNG for Markdown
reports, SVG for print). Which figures a suite has, and how each is drawn, is the
suite's business (:attr:`vecx.suites.suite.Suite.figures`); this module holds the
shared plumbing (figure, saving, colours per backend, log axes, footnotes) and the
generic figure any suite gets: its metric against size, a line per backend, the IQR as
a band. It names no suite and no case.

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

from vecx.tables import backend_label, backend_sort_key, short_error

#: Formats `plot_train_history` and `plot_normal` accept, by file suffix.
FORMATS: tuple[str, ...] = (".png", ".svg", ".pdf")

_RESULT_FORMATS = (".png", ".svg")

#: Fixed colours per framework so a backend looks the same in every figure.
_FRAMEWORK_COLORS = {"numpy": "C0", "torch": "C1", "jax": "C2", "cupy": "C3"}
_EXTRA_COLORS = ("C4", "C5", "C6", "C7", "C8", "C9")

_PNG_DPI = 150
PANEL_W, PANEL_H = 4.2, 3.2


# --------------------------------------------------------------------------- plumbing


def new_figure(**kwargs: Any) -> Any:
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


def save_both(fig: Any, out_dir: Path, stem: str) -> list[Path]:
    return [_save(fig, out_dir / f"{stem}{ext}") for ext in _RESULT_FORMATS]


def figure_files(out_dir: str | os.PathLike[str], suites: Sequence[str] = ()) -> list[Path]:
    """Figure files in ``out_dir`` that a run of the built-in suites or of ``suites`` may
    have written (``vecx bench`` removes them before writing a new results.json there, so
    no figure of an older run stays)."""
    from vecx.suites.suite import builtin_figures, presentation

    stems = [spec.stem for spec in builtin_figures()]
    stems += [spec.stem for name in suites for spec in presentation(name).figures]
    out = Path(out_dir)
    return [out / f"{s}{ext}" for s in dict.fromkeys(stems) for ext in _RESULT_FORMATS
            if (out / f"{s}{ext}").is_file()]  # fmt: skip


def colors_for(doc: Mapping[str, Any]) -> dict[str, str]:
    """Colour per backend label over the whole document, so a backend looks the same in
    every figure of a run."""
    records = [r for r in doc.get("results", []) if isinstance(r, Mapping)]
    return colors_for_labels(labels_of(records))


def colors_for_labels(labels: Sequence[str]) -> dict[str, str]:
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


def labels_of(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Backend labels in the tables' stable order (numpy, torch, jax, cupy; cpu first)."""
    return sorted({backend_label(r) for r in records}, key=backend_sort_key)


def footnote(fig: Any, lines: Sequence[str], *, limit: int = 8) -> None:
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


def title(ax: Any, text: str) -> None:
    """An axes title wrapped to the axes' width, so a narrow figure never cuts it off.

    The width is the axes' before layout (matplotlib's default margins), a little less
    than it ends up with: a wrap a few characters early, never a cut.
    """
    from matplotlib import rcParams
    from matplotlib.font_manager import FontProperties

    size = FontProperties(size=rcParams["axes.titlesize"]).get_size_in_points()
    width = ax.get_position().width * ax.figure.get_figwidth()
    ax.set_title(_wrapped(text, width, size))


def suptitle(fig: Any, text: str, *, right_in: float = 0.0) -> None:
    """A figure title wrapped to the figure's width and centred over the panels:
    ``right_in`` inches at the right are a legend's, which the title must not cross."""
    from matplotlib import rcParams
    from matplotlib.font_manager import FontProperties

    size = FontProperties(size=rcParams["figure.titlesize"]).get_size_in_points()
    width = fig.get_figwidth() - right_in
    fig.suptitle(_wrapped(text, width - 0.3, size), x=width / 2 / fig.get_figwidth())


def legend_width(labels: Sequence[str], fontsize: float = 8) -> float:
    """About how many inches a one-column legend of ``labels`` takes (handle, text, pads)."""
    longest = max((len(label) for label in labels), default=0)
    return (longest * _EM_PER_CHAR * fontsize + 3.5 * fontsize + 8) / 72


def failed_notes(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Footnotes for what a figure cannot be trusted on: failed records (not drawn) and
    suspect ones (drawn, but interference distorted them)."""
    failed = [
        f"not shown: {backend_label(r)} {r['case']} failed ({short_error(str(r['error']), 60)})"
        for r in records
        if r.get("error")
    ]
    suspect = list(dict.fromkeys(
        f"{backend_label(r)} {r['case']}" for r in records
        if r.get("suspect") and not r.get("error")
    ))  # fmt: skip
    if suspect:
        failed.append(f"suspect (interference; see the report): {', '.join(suspect)}")
    return failed


def succeeded(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in records if not r.get("error")]


def finite_positive(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def impl_of(rec: Mapping[str, Any]) -> str:
    return str((rec.get("params") or {}).get("impl", "vecx"))


def curve(rec: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
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
    """Write every figure ``doc``'s suites draw into ``out_dir`` (PNG and SVG); return the
    paths.

    Each suite present draws its own figures (:attr:`vecx.suites.suite.Suite.figures`; a
    suite vecx does not know gets the generic figure); one with nothing to show (only
    failed records) draws none. Raises OSError naming the folder if it cannot be created
    or written.

    Figures are independent, so they are drawn two at a time in forked processes when this
    process is alone with its main thread and no framework (``vecx bench`` after its
    workers ended: the machine is idle then); otherwise, or with ``VECX_PLOT_JOBS=1``,
    one after another. Either way the files are the same, byte for byte.
    """
    from vecx.suites.suite import BUILTIN, presentation

    out = Path(out_dir)
    _ensure_dir(out)
    records = [r for r in doc.get("results", []) if isinstance(r, Mapping)]
    present = list(dict.fromkeys(str(r.get("suite")) for r in records))
    order = [s for s in BUILTIN if s in present] + [s for s in present if s not in BUILTIN]
    jobs = [
        (spec, [r for r in records if r.get("suite") == name])
        for name in order
        for spec in presentation(name).figures
    ]
    global _JOBS
    _JOBS = (jobs, doc, out)
    try:
        if _can_fork(len(jobs)):
            import multiprocessing

            import matplotlib.figure  # noqa: F401 - loaded once, before the fork

            with multiprocessing.get_context("fork").Pool(min(2, os.cpu_count() or 1)) as pool:
                drawn = pool.map(_draw_job, range(len(jobs)))
        else:
            drawn = [_draw_job(i) for i in range(len(jobs))]
    finally:
        _JOBS = None
    return [path for paths in drawn for path in paths]


#: The figures `plot_results` is drawing: read by the forked processes, set only meanwhile.
_JOBS: Any = None


def _draw_job(i: int) -> list[Path]:
    jobs, doc, out = _JOBS
    spec, records = jobs[i]
    fig = spec.draw(records, doc)
    return [] if fig is None else save_both(fig, out, spec.stem)


def _can_fork(n_jobs: int) -> bool:
    """Forking is safe only without other threads (a framework's pools could deadlock)."""
    import sys
    import threading

    frameworks = ("torch", "jax", "cupy", "tensorflow")
    return (
        n_jobs > 1
        and (os.cpu_count() or 1) > 1
        and hasattr(os, "fork")
        and threading.active_count() == 1
        and not any(name in sys.modules for name in frameworks)
        and os.environ.get("VECX_PLOT_JOBS", "") != "1"
    )


def generic_figure(records: Sequence[Mapping[str, Any]]) -> Any:
    """Each case's value (rate, or time) against its numeric parameter, one panel per case,
    a line per backend and the IQR as a band; ``None`` when nothing can be drawn.

    The point is the headline time (`vecx.results.headline_s`, the fastest block), the
    band reaches from it to the median + IQR/2 (records keep the median and IQR of the
    time, not its quartiles); a rate's point and band are the work over those times.
    """
    from vecx.results import headline_s

    ok = [r for r in succeeded(records) if headline_s(r) is not None]
    cases = list(dict.fromkeys(r["case"] for r in ok))
    if not cases:
        return None
    colors = colors_for_labels(labels_of(records))
    ncols = min(len(cases), 3)
    nrows = math.ceil(len(cases) / ncols)
    fig = new_figure(figsize=(PANEL_W * ncols + 1.6, PANEL_H * nrows + 0.8))
    axes = list(np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).flat)
    for ax, case in zip(axes, cases, strict=False):
        mine = [r for r in ok if r["case"] == case]
        size = _size_param(mine)
        # no numeric parameter: the first one's values as categories, in order of appearance
        keys = list(dict.fromkeys(k for r in mine for k in (r.get("params") or {})))
        category = None if size or not keys else keys[0]
        labels = list(dict.fromkeys(str((r.get("params") or {}).get(category)) for r in mine))
        unit = next((r.get("unit") for r in mine if r.get("unit") not in (None, "", "s")), None)
        values: list[float] = []
        for label in labels_of(mine):
            pts = []
            for r in mine:
                if backend_label(r) != label:
                    continue
                params = r.get("params") or {}
                if size:
                    x = params.get(size)
                elif category:
                    x = labels.index(str(params.get(category)))
                else:
                    x = 0
                t, iqr = float(headline_s(r) or 0.0), float(r.get("iqr_s") or 0.0)
                med = float(r.get("median_s") or t)
                lo, hi = t, max(t, med + iqr / 2)
                if unit and finite_positive(r.get("value")):
                    work = float(r["value"]) * t
                    pts.append((x, work / t, work / hi, work / lo))
                else:
                    pts.append((x, t, lo, hi))
            pts.sort()
            xs, ys, los, his = (np.asarray(v, dtype=float) for v in zip(*pts, strict=True))
            values += [*los, *his]
            color = colors.get(label)
            ax.plot(xs, ys, marker="o", ms=3, color=color, label=label)
            ax.fill_between(xs, los, his, color=color, alpha=0.2, lw=0)
        if size:
            ax.set_xscale("log", base=2)
            power_of_two_axis(ax.xaxis)
            ax.set_xlabel(f"{size} (log scale)")
        elif category:
            ax.set_xticks(range(len(labels)), labels)
            ax.set_xlabel(category)
            ax.set_xlim(-0.5, len(labels) - 0.5)
        ax.set_yscale("log")
        lo_v, hi_v = min(values), max(values)
        if hi_v < 10 * lo_v:  # less than a decade: widen it so the axis has labelled ticks
            mid = math.sqrt(lo_v * hi_v)
            ax.set_ylim(mid / 4, mid * 4)
        plain_log_axis(ax.yaxis, time=unit is None, subs=(1.0, 2.0, 5.0))
        ax.set_ylabel(f"{unit} (log scale)" if unit else "time (log scale)")
        title(ax, case)
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes[len(cases) :]:
        ax.set_visible(False)
    legend = legend_from_axes(fig, axes)
    suite = str(records[0].get("suite")) if records else ""
    suptitle(fig, f"{suite}: each case against size, a line per backend (band: IQR)",
             right_in=legend)  # fmt: skip
    footnote(fig, failed_notes(records))
    return fig


def _size_param(records: Sequence[Mapping[str, Any]]) -> str | None:
    """The numeric parameter the x axis shows: the first that varies, else the first."""
    keys = list(dict.fromkeys(k for r in records for k in (r.get("params") or {})))
    numeric = [
        k for k in keys
        if all(finite_positive((r.get("params") or {}).get(k)) for r in records)
    ]  # fmt: skip
    varying = [k for k in numeric if len({(r.get("params") or {}).get(k) for r in records}) > 1]
    return (varying or numeric or [None])[0]


def legend_from_axes(fig: Any, axes: Any) -> float:
    """One figure legend with each label once, right of the panels (never over a line);
    returns about how many inches wide it is (see `legend_width`)."""
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
    return legend_width(list(seen)) if seen else 0.0


def accuracy_curve(rec: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
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


def bar_labels(ax: Any, bars: Any, texts: Sequence[str], fontsize: float = 7) -> None:
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


def count_text(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) else str(x)


def plain_log_axis(axis: Any, *, time: bool = False, subs: tuple[float, ...] = (1.0,)) -> None:
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


def power_of_two_axis(axis: Any) -> None:
    """Ticks at powers of two labelled 2¹⁰ in plain text (no slow mathtext)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    def fmt(v: float, _pos: Any) -> str:
        p = math.log2(v) if v > 0 else 0.0
        return "2" + str(round(p)).translate(_SUPERSCRIPT) if abs(p - round(p)) < 1e-9 else ""

    axis.set_major_locator(LogLocator(base=2, numticks=12))
    axis.set_major_formatter(FuncFormatter(fmt))
    axis.set_minor_formatter(NullFormatter())


def short_number(v: float) -> str:
    """Compact bar label: 3 significant digits."""
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def time_label(t: float) -> str:
    from vecx.tables import format_time

    return format_time(t).replace(" ", "") if t > 0 else ""


# --------------------------------------------------------------------------- single runs


def plot_train_history(history: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Loss against training time of one ``vecx train --json`` History dict.

    The suffix of ``path`` picks the format (``.png``, ``.svg``, ``.pdf``); any other
    suffix is a ValueError, raised before anything is drawn or written.
    """
    path = Path(path)
    _check_suffix(path)
    points = curve(history)
    if points is None:
        raise ValueError("the training history has no times and losses to plot")
    t, y = points
    accuracy = accuracy_curve(history)
    fig = new_figure(figsize=(6.0 if accuracy is None else 10.0, 4.0))
    ax, *more = np.atleast_1d(fig.subplots(1, 1 if accuracy is None else 2)).flat
    label = str(history.get("backend") or "")
    ax.plot(t, y, marker="o" if len(t) <= 30 else None, ms=3, lw=1.5, label=label or None)
    ax.set_xscale("log")
    plain_log_axis(ax.xaxis)
    ax.set_xlabel("training time (s, log scale)")
    ax.set_ylabel("loss")
    ax.grid(True, which="both", alpha=0.3)
    if accuracy is not None:
        acc_ax = more[0]
        ta, a = accuracy
        acc_ax.plot(ta, 100 * a, marker="o" if len(ta) <= 30 else None, ms=3, lw=1.5,
                    color="C2")  # fmt: skip
        acc_ax.set_xscale("log")
        plain_log_axis(acc_ax.xaxis)
        acc_ax.set_xlabel("training time (s, log scale)")
        acc_ax.set_ylabel("training accuracy (%)")
        acc_ax.grid(True, which="both", alpha=0.3)
        title(acc_ax, f"accuracy {100 * a[-1]:.1f}%")
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
    title(
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
    fig = new_figure(figsize=(6.0, 3.8))
    ax = fig.subplots()
    for (mu, sigma), y in zip(params, ys, strict=True):
        ax.plot(x, y, lw=1.5, label=f"mean {mu:g}, std {sigma:g}")
    ax.set_xlabel("x")
    ax.set_ylabel("p(x)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    spec = getattr(be, "spec", None) or getattr(be, "name", "backend")
    title(ax, f"Normal densities computed with {spec}")
    return _save(fig, path)


__all__ = [
    "FORMATS",
    "colors_for",
    "figure_files",
    "generic_figure",
    "normal_densities",
    "plot_normal",
    "plot_results",
    "plot_train_history",
]
