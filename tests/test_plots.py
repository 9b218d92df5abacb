"""vecx.plots: figures per suite, training-history plots and the normal densities."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import vecx
import vecx.suites
from vecx.plots import normal_densities, plot_normal, plot_results, plot_train_history
from vecx.results import result

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ALL_STEMS = {"train-methods", "train-backends", "train-accuracy", "train-modes", "matmul",
             "vector-add", "scaling"}


def _check_files(paths: list[Path]) -> set[str]:
    """Every figure has a real PNG and an SVG; returns the figure stems."""
    stems = {p.stem for p in paths}
    for stem in stems:
        png, svg = [p for p in paths if p.stem == stem]
        assert png.suffix == ".png" and svg.suffix == ".svg"
        data = png.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000
        assert svg.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    return stems


def test_plot_results_writes_png_and_svg_for_every_suite(synthetic_doc, tmp_path):
    paths = plot_results(synthetic_doc(), tmp_path / "new" / "plots")
    assert len(paths) == 2 * len(ALL_STEMS)
    assert _check_files(paths) == ALL_STEMS
    assert all(p.parent == tmp_path / "new" / "plots" for p in paths)


def test_figure_names_are_known_to_figure_files_and_the_report(synthetic_doc, tmp_path):
    """vecx bench removes old figures by these names: every name written must be listed."""
    from vecx.plots import figure_files
    from vecx.report import figure_specs
    from vecx.suites.suite import OPT_IN, builtin_figures

    paths = plot_results(synthetic_doc(), tmp_path)  # the default suites' records
    stems = {spec.stem for spec in builtin_figures()}  # the opt-in suites' figures too
    assert {p.stem for p in paths} == set(figure_specs(list(vecx.suites.SUITES)))
    assert stems == set(figure_specs([*vecx.suites.SUITES, *OPT_IN])) > {p.stem for p in paths}
    (tmp_path / "other.png").write_text("")
    assert sorted(figure_files(tmp_path)) == sorted(paths)


def test_plot_results_skips_absent_suites(synthetic_doc, tmp_path):
    paths = plot_results(synthetic_doc(("matmul",)), tmp_path)
    assert _check_files(paths) == {"matmul"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["matmul.png", "matmul.svg"]
    assert plot_results({"schema": 1, "results": []}, tmp_path / "empty") == []


def test_plot_results_leaves_out_failed_records_and_says_so(synthetic_doc, tmp_path):
    only_errors = {
        "results": [result("matmul", "full", "numpy", "cpu", params={"n": 256}, error="boom")]
    }
    assert plot_results(only_errors, tmp_path) == []
    # a failed record among good ones is listed under the figure
    paths = plot_results(synthetic_doc(("matmul",)), tmp_path / "m")
    svg = next(p for p in paths if p.suffix == ".svg").read_text(encoding="utf-8")
    assert "torch:cpu element failed" in svg


def test_svg_output_is_reproducible(synthetic_doc, tmp_path):
    a = plot_results(synthetic_doc(("vector-add",)), tmp_path / "a")
    b = plot_results(synthetic_doc(("vector-add",)), tmp_path / "b")
    svg_a, svg_b = (next(p for p in ps if p.suffix == ".svg").read_bytes() for ps in (a, b))
    assert svg_a == svg_b


def test_plot_results_into_an_unwritable_place_names_it(synthetic_doc, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match=str(blocker)):
        plot_results(synthetic_doc(("matmul",)), blocker / "plots")
    with pytest.raises(OSError, match="not a directory"):
        plot_results(synthetic_doc(("matmul",)), blocker)


# --------------------------------------------------------------------------- history


def _history() -> dict:
    times = [0.01 * 1.5**i for i in range(15)]
    losses = [0.25 + math.exp(-i / 3) for i in range(15)]
    return {
        "preset": "airfoil-mb10",
        "backend": "numpy:cpu",
        "lr": 0.05,
        "batch_size": 10,
        "epochs": 2,
        "examples": list(range(15)),
        "losses": losses,
        "times": times,
        "loss": losses[-1],
        "epoch_time": 0.1,
        "params": {"w": [[0.0]], "b": [0.0]},
    }


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_plot_train_history_formats(tmp_path, suffix):
    path = plot_train_history(_history(), tmp_path / f"loss{suffix}")
    assert path == tmp_path / f"loss{suffix}"
    assert path.stat().st_size > 1000


def test_plot_train_history_rejects_bad_suffix_before_writing(tmp_path):
    with pytest.raises(ValueError, match=r"\.jpeg"):
        plot_train_history(_history(), tmp_path / "loss.jpeg")
    with pytest.raises(ValueError, match="no suffix"):
        plot_train_history(_history(), tmp_path / "loss")
    assert list(tmp_path.iterdir()) == []


def test_plot_train_history_needs_a_curve(tmp_path):
    with pytest.raises(ValueError, match="no times and losses"):
        plot_train_history({"preset": "linreg", "times": [], "losses": []}, tmp_path / "a.png")


# --------------------------------------------------------------------------- normal


class _CountingBackend:
    """The numpy backend, counting the protocol calls the densities go through."""

    def __init__(self) -> None:
        self.inner = vecx.backend("numpy")
        self.spec = self.inner.spec
        self.calls: list[str] = []

    def asarray(self, obj, dtype=None):
        self.calls.append("asarray")
        return self.inner.asarray(obj, dtype)

    def exp(self, x):
        self.calls.append("exp")
        return self.inner.exp(x)

    def to_numpy(self, x):
        self.calls.append("to_numpy")
        return self.inner.to_numpy(x)


def test_normal_densities_integrate_to_one_and_peak_where_they_should():
    x = np.arange(-7, 7, 0.01)
    params = ((0, 1), (0, 2), (3, 1))
    be = _CountingBackend()
    ys = normal_densities(be, x, params)
    assert be.calls.count("exp") == 3 and be.calls.count("to_numpy") == 3
    assert "asarray" in be.calls
    for (mu, sigma), y in zip(params, ys, strict=True):
        assert y.shape == x.shape and y.dtype == np.float64
        # mass within [-7, 7): 1 up to the tails beyond 3.5 std (std 2: 4.7e-4 outside)
        assert np.trapezoid(y, x) == pytest.approx(1.0, abs=1e-3)
        assert y.max() == pytest.approx(1 / math.sqrt(2 * math.pi * sigma**2), rel=1e-4)
        assert x[np.argmax(y)] == pytest.approx(mu, abs=0.01)


def test_normal_densities_reject_a_non_positive_std():
    with pytest.raises(ValueError, match="standard deviation"):
        normal_densities(vecx.backend("numpy"), np.zeros(3), [(0, 0)])


def test_normal_densities_agree_across_backends(backend):
    x = np.linspace(-5, 5, 101)
    ref = normal_densities(vecx.backend("numpy"), x, [(0, 1), (3, 1)])
    got = normal_densities(backend, x, [(0, 1), (3, 1)])
    for r, g in zip(ref, got, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-7)


def test_plot_normal_writes_the_figure(tmp_path):
    path = plot_normal(vecx.backend("numpy"), tmp_path / "normal.png")
    assert path.read_bytes().startswith(PNG_MAGIC)
    with pytest.raises(ValueError, match="unknown format"):
        plot_normal(vecx.backend("numpy"), tmp_path / "normal.gif")


def test_scaling_plot_draws_the_main_memory_bandwidth_line(synthetic_doc, tmp_path):
    """Beside the ceiling (best copy at any size: an in-cache rate on a CPU), a second
    dashed line shows the main-memory copy rate recorded in the run's header."""
    from vecx.suites.scaling import add_ceilings

    doc = synthetic_doc(("scaling",))
    ceilings = add_ceilings(doc["results"])
    assert "bandwidth_memory" in ceilings["cpu"]
    doc["settings"] = {"ceilings": ceilings}
    svg = next(p for p in plot_results(doc, tmp_path / "a") if p.suffix == ".svg")
    assert svg.read_text(encoding="utf-8").count('id="main-memory') == 1  # one device
    del doc["settings"]  # an older file without the header entry: no line, no failure
    svg = next(p for p in plot_results(doc, tmp_path / "b") if p.suffix == ".svg")
    assert 'id="main-memory' not in svg.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- layout


def _drawn_figures(monkeypatch) -> list:
    """Figures as they are saved (PNG only), to inspect their layout."""
    import vecx.plots

    figures = []
    save = vecx.plots._save

    def keep(fig, path):
        if Path(path).suffix == ".png":
            figures.append((Path(path).name, fig))
        return save(fig, path)

    monkeypatch.setattr(vecx.plots, "_save", keep)
    return figures


def _cut_titles(figures) -> list[str]:
    """Titles that reach past the figure's edge once drawn (constrained layout done)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    cut = []
    for name, fig in figures:
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        renderer = canvas.get_renderer()
        texts = [ax.title for ax in fig.axes] + ([fig._suptitle] if fig._suptitle else [])
        for text in texts:
            box = text.get_window_extent(renderer)
            if text.get_text() and (box.x0 < 0 or box.x1 > fig.bbox.width):
                cut.append(f"{name}: {text.get_text()!r}")
    return cut


def test_titles_fit_narrow_figures(synthetic_doc, tmp_path, monkeypatch):
    doc = synthetic_doc()  # one backend: the narrowest figures
    doc = {**doc, "results": [r for r in doc["results"] if r["backend"] == "numpy"]}
    figures = _drawn_figures(monkeypatch)
    plot_results(doc, tmp_path)
    history = {**_history(), "interrupted": True, "preset": "airfoil-sgd-with-a-long-name"}
    plot_train_history(history, tmp_path / "h.png")
    classifier = {**_history(), "preset": "digits-mlp", "metrics": {"accuracy": [0.5] * 12}}
    plot_train_history(classifier, tmp_path / "c.png")  # two panels: loss and accuracy
    assert len(figures) == 9
    assert _cut_titles(figures) == []


def test_train_methods_title_stays_clear_of_the_legend(synthetic_doc, tmp_path, monkeypatch):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    doc = synthetic_doc(("train",))
    doc = {**doc, "results": [r for r in doc["results"] if r["backend"] == "numpy"]}
    figures = _drawn_figures(monkeypatch)
    plot_results(doc, tmp_path)
    (fig,) = [f for name, f in figures if name == "train-methods.png"]
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    title = fig._suptitle.get_window_extent(renderer)
    legend = fig.legends[0].get_window_extent(renderer)
    assert title.x1 <= legend.x0 or title.y0 >= legend.y1


def test_figures_drawn_in_parallel_or_one_by_one_are_the_same_files(synthetic_doc, tmp_path):
    """In a fresh process (this one holds frameworks' threads, where forking is unsafe and
    `_can_fork` says no), both ways, compared file by file."""
    import json
    import os
    import subprocess
    import sys

    (tmp_path / "doc.json").write_text(json.dumps(synthetic_doc(("vector-add", "matmul"))))
    code = (
        "import json, os, sys; from pathlib import Path; import vecx.plots as P\n"
        "doc = json.loads(Path(sys.argv[1], 'doc.json').read_text())\n"
        "assert P._can_fork(2), 'a fresh process may fork'\n"
        "a = P.plot_results(doc, Path(sys.argv[1], 'a'))\n"
        "os.environ['VECX_PLOT_JOBS'] = '1'\n"
        "assert not P._can_fork(2)\n"
        "b = P.plot_results(doc, Path(sys.argv[1], 'b'))\n"
        "print(json.dumps([[str(p) for p in a], [str(p) for p in b]]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, env=env, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    parallel, serial = (list(map(Path, x)) for x in json.loads(proc.stdout.splitlines()[-1]))
    assert [p.name for p in parallel] == [p.name for p in serial] and len(parallel) == 4
    for a, b in zip(parallel, serial, strict=True):
        if a.suffix == ".svg":
            assert a.read_bytes() == b.read_bytes()
