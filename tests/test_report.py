"""vecx.report and the `vecx plot` / `vecx report` commands, bad input included."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from vecx.cli import main
from vecx.report import build_report, default_plot_dir, find_plots, render_report
from vecx.tables import suite_tables

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "run" / "cpu.json"
    path.parent.mkdir()
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


@pytest.fixture
def results_file(synthetic_doc, tmp_path: Path) -> Path:
    """Every suite: for the report's full layout."""
    return _write(tmp_path, synthetic_doc())


@pytest.fixture
def small_results(synthetic_doc, tmp_path: Path) -> Path:
    """Two quick-to-draw suites: for the commands, where drawing time is not the point."""
    return _write(tmp_path, synthetic_doc(("vector-add", "matmul")))


def _images(md: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)


# --------------------------------------------------------------------------- report


def test_report_has_machine_settings_backends_tables_and_flags(synthetic_doc):
    doc = synthetic_doc()
    md = render_report(doc, source="cpu.json")
    assert md.startswith("# vecx benchmark report: Synthetic CPU 9000\n")
    assert "results `cpu.json`" in md
    for heading in ("## Flags", "## Machine", "## Settings", "## Backends", "## Results"):
        assert f"\n{heading}\n" in md
    assert "| cores | 2 |" in md and "| memory | 7.7 GiB |" in md
    assert "| env `OPENBLAS_CORETYPE` | Haswell |" in md
    assert "| openblas | 0.3.27 | 2 |" in md  # BLAS threads
    assert "| torch:cpu | torch | 2.13.0 | Synthetic CPU 9000 | threads: 2 |" in md
    for table in suite_tables(doc):
        assert f"### {table.title}\n" in md
    flags = md.split("## Flags")[1].split("## Machine")[0]
    assert "`OPENBLAS_CORETYPE=Haswell`" in flags
    assert "**Failed**: torch:cpu matmul/element" in flags
    assert "**Disagrees**: jax:cpu train/airfoil-mb10 (native)" in flags
    assert _images(md) == []


def test_report_shows_each_backends_own_thread_pools(synthetic_doc):
    """The torch worker also has NumPy's OpenBLAS loaded; the report shows the pools
    torch computes with (what the backend reports), and the threads each worker got."""
    doc = synthetic_doc(("matmul",))
    numpy_blas = [{"internal_api": "openblas", "num_threads": 2}]
    doc["settings"] = {"workers": {
        "numpy:cpu": {"env": {}, "threads": 2, "blas": numpy_blas,
                      "pools": [{"pool": "BLAS", "library": "openblas", "threads": 2}]},
        "torch:cpu": {"env": {}, "threads": 1, "blas": numpy_blas,
                      "pools": [{"pool": "intra-op", "library": "ATen", "threads": 1},
                                {"pool": "BLAS", "library": "mkl", "threads": 1}]},
    }}  # fmt: skip
    md = render_report(doc)
    assert "the pools each backend computes with" in md
    assert "| numpy:cpu | 2 | BLAS | openblas | 2 | - |" in md
    assert "| torch:cpu | 1 | intra-op | ATen | 1 | - |" in md
    assert "| torch:cpu | 1 | BLAS | mkl | 1 | - |" in md
    assert "torch:cpu | 1 | BLAS | openblas" not in md


def test_report_renders_bench_settings_workers_ceilings_and_unavailable(synthetic_doc):
    doc = synthetic_doc(("matmul",))
    doc["settings"] = {
        "dtype": "float32",
        "quick": True,
        "suites": ["matmul"],
        "timing": {"min_run_time": 0.02, "warmup": 1},
        "env": {},
        "workers": {
            "numpy:cpu": {
                "env": {"OPENBLAS_L2_SIZE": "512k"},
                "blas": [{"internal_api": "openblas", "num_threads": 2, "architecture": "Zen"}],
            }
        },
        "unavailable": {"cupy:cuda": "no CUDA device"},
        "ceilings": {
            "cpu": {
                "gflops": {
                    "value": 162.6,
                    "unit": "GFLOP/s",
                    "backend": "torch",
                    "case": "matmul",
                    "n": 256,
                },
                "bandwidth_memory": {
                    "value": 14.0,
                    "unit": "GB/s",
                    "backend": "numpy",
                    "case": "copy",
                    "n": 2**24,
                    "basis": "best copy rate at sizes whose 2 arrays take >= 64 MiB "
                    "(main memory)",
                },
            }
        },
        "interrupted": "KeyboardInterrupt",
        "cases_planned": 12,
        "cases_recorded": 11,
    }
    doc["results"][0]["noisy"] = True
    md = render_report(doc)
    assert "| suites | matmul |" in md
    assert "| timing | min_run_time=0.02, warmup=1 |" in md
    assert ("| numpy:cpu | as the environment had them | openblas | 2 | Zen | "
            "`OPENBLAS_L2_SIZE=512k` |") in md
    assert "| cpu | compute (`% of ceiling`) | 163 GFLOP/s | torch matmul n=256 | - |" in md
    assert (
        "| cpu | main-memory bandwidth | 14.0 GB/s | numpy copy n=16,777,216 | "
        "best copy rate at sizes whose 2 arrays take >= 64 MiB (main memory) |"
    ) in md
    assert "- cupy:cuda: no CUDA device" in md
    flags = md.split("## Flags")[1].split("## Machine")[0]
    assert "**Interrupted run**" in flags and "11 of 12 planned cases" in flags
    assert "**Quick run**" in flags and "`OPENBLAS_L2_SIZE=512k`" in flags
    assert "**Noisy**: 1 of 12 measurements" in flags  # the suite's own flag counts


def test_report_tables_are_valid_markdown(synthetic_doc):
    md = render_report(synthetic_doc())
    blocks = re.findall(r"(?:^\|.*\|\n)+", md, flags=re.M)
    assert len(blocks) >= 8  # machine, settings, blas, backends, four suites
    for block in blocks:
        lines = block.splitlines()
        assert re.fullmatch(r"\|( ---:? \|)+", lines[1]), lines[1]
        counts = {len(re.findall(r"(?<!\\)\|", ln)) for ln in lines}
        assert len(counts) == 1, block


def test_report_generates_plots_and_links_them_relatively(results_file, tmp_path):
    md = build_report(results_file, plots_dir=results_file.parent / "plots")
    links = _images(md)
    assert links == [
        "plots/vector-add.png",
        "plots/matmul.png",
        "plots/scaling.png",
        "plots/train-methods.png",
        "plots/train-backends.png",
        "plots/train-accuracy.png",
        "plots/train-modes.png",
    ]
    assert all((results_file.parent / link).is_file() for link in links)
    # each figure sits right under its suite's table
    assert md.index("plots/matmul.png") > md.index("### matmul")
    assert md.index("plots/matmul.png") < md.index("### scaling")
    # found again without --plots (plots/ beside the results), linked from the report file
    md = build_report(results_file, output=tmp_path / "docs" / "REPORT.md")
    assert _images(md)[0] == "../run/plots/vector-add.png"


def test_report_finds_plots_beside_the_results(small_results):
    md = build_report(small_results)
    assert _images(md) == [] and "--plots DIR" in md
    assert main(["plot", str(small_results)]) == 0
    assert default_plot_dir(small_results) == small_results.parent
    assert set(find_plots(small_results)) == {"matmul", "vector-add"}
    md = build_report(small_results)
    assert _images(md) == ["vector-add.png", "matmul.png"]
    assert "--plots DIR" not in md


def test_report_of_an_empty_run():
    md = render_report({"schema": 1, "results": []})
    assert "has no records" in md and "## Machine\n\nNot recorded." in md


# --------------------------------------------------------------------------- commands


def test_cli_report_to_stdout_and_file(small_results, tmp_path, capsys):
    assert main(["report", str(small_results), "--baseline", "torch"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# vecx benchmark report") and "| vs torch |" in out
    dest = tmp_path / "new" / "REPORT.md"
    assert (
        main(["report", str(small_results), "-o", str(dest), "--plots", str(tmp_path / "p")]) == 0
    )
    text = dest.read_text(encoding="utf-8")
    assert "](../p/matmul.png)" in text


def test_cli_report_baseline_unknown_is_an_error_absent_is_a_note(small_results, capsys):
    argv = ["report", str(small_results), "--baseline", "tensorflow"]
    _one_line_error(capsys, argv, "--baseline: unknown backend 'tensorflow'", "has numpy:cpu")
    assert main(["report", str(small_results), "--baseline", "cupy"]) == 0
    out = capsys.readouterr().out
    assert "vs cupy" not in out.replace("no 'vs cupy' column", "").replace('"vs cupy" column', "")
    assert 'cupy is not in this run, so there is no "vs cupy" column.' in out
    assert "- cupy is not in this run: no 'vs cupy' column (--baseline picks another)" in out


def test_cli_plot_results_and_normal(small_results, tmp_path, capsys):
    assert main(["plot", str(small_results), "--out", str(tmp_path / "figs")]) == 0
    printed = capsys.readouterr().out.split()
    assert len(printed) == 4 and all(Path(p).is_file() for p in printed)
    assert main(["plot", "normal", "--out", str(tmp_path / "n")]) == 0
    printed = capsys.readouterr().out.split()
    assert [Path(p).name for p in printed] == ["normal-numpy-cpu.png", "normal-numpy-cpu.svg"]


def _one_line_error(capsys, argv: list[str], *needles: str) -> None:
    code = main(argv)
    captured = capsys.readouterr()
    assert code != 0
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"vecx {argv[0]}: error: ")
    for needle in needles:
        assert needle in lines[0]
    assert "Traceback" not in captured.err


@pytest.mark.parametrize("command", ["plot", "report"])
def test_cli_bad_results_files(command, tmp_path, capsys):
    _one_line_error(capsys, [command, str(tmp_path / "nope.json")], "nope.json", "does not exist")
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": 1, "results": [', encoding="utf-8")
    _one_line_error(capsys, [command, str(bad)], "bad.json", "not valid JSON")
    other = tmp_path / "other.json"
    other.write_text("[1, 2]", encoding="utf-8")
    _one_line_error(capsys, [command, str(other)], "not a vecx results file")


def test_cli_unwritable_destinations(results_file, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _one_line_error(capsys, ["plot", str(results_file), "--out", str(blocker / "d")], str(blocker))
    _one_line_error(capsys, ["plot", "normal", "--out", str(blocker)], str(blocker))
    _one_line_error(
        capsys, ["report", str(results_file), "--plots", str(blocker / "d")], str(blocker)
    )
    _one_line_error(capsys, ["report", str(results_file), "-o", str(blocker / "R.md")], "R.md")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through file permissions")
def test_cli_read_only_folder(results_file, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        _one_line_error(capsys, ["plot", str(results_file), "--out", str(locked)], str(locked))
        _one_line_error(capsys, ["plot", str(results_file), "--out", str(locked / "sub")], "locked")
    finally:
        locked.chmod(0o755)


def test_cli_plot_bad_backend_and_misplaced_option(results_file, capsys):
    _one_line_error(capsys, ["plot", "normal", "--backend", "nosuch"], "nosuch")
    _one_line_error(capsys, ["plot", str(results_file), "--backend", "torch"], "--backend")


def test_python_m_vecx_plot_and_report(small_results, tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    run = subprocess.run(
        [sys.executable, "-m", "vecx", "plot", str(small_results)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert len(run.stdout.split()) == 4
    run = subprocess.run(
        [sys.executable, "-m", "vecx", "report", str(small_results)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "](matmul.png)" in run.stdout
    run = subprocess.run(
        [sys.executable, "-m", "vecx", "report", "missing.json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode != 0 and run.stdout == ""
    assert run.stderr.strip().count("\n") == 0 and "missing.json" in run.stderr


def test_report_shows_the_load_around_each_backend(synthetic_doc):
    doc = synthetic_doc(("matmul",))
    doc["settings"] = {"load": {"numpy:cpu": {"start": [0.5, 0.4, 0.3], "end": [1.2, 0.5, 0.3],
                                              "others_cpus_start": 0.02,
                                              "others_cpus_end": 0.97}}}  # fmt: skip
    md = render_report(doc)
    assert "| numpy:cpu | 0.5 | 1.2 | 0.02 | 0.97 |" in md
    assert '"others_cpus_start"' not in md  # a table, not raw JSON
