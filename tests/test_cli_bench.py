"""Tests of ``vecx bench`` as a user runs it: output, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from vecx.cli import main
from vecx.results import load

ROOT = Path(__file__).resolve().parent.parent


def vecx_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "vecx", *args], capture_output=True, text=True,
                          env=full_env, cwd=ROOT, timeout=120)  # fmt: skip


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One real quick run on NumPy (two suites), shared by the tests that read its output."""
    out = tmp_path_factory.mktemp("bench") / "out"
    proc = vecx_cli("bench", "--quick", "--backends", "numpy", "--suites", "vector-add,matmul",
                    "--out", str(out), "--no-plots", "--seed", "3",
                    env={"NO_COLOR": "1"})  # fmt: skip
    return proc, out


def test_quick_run_prints_tables_summary_and_writes_json(quick_run):
    proc, out = quick_run
    assert proc.returncode == 0, proc.stderr
    doc = load(out / "results.json")
    assert {(r["suite"], r["case"]) for r in doc["results"]} == {
        ("vector-add", "loop"), ("vector-add", "vectorized"), ("matmul", "element"),
        ("matmul", "column"), ("matmul", "full"), ("matmul", "block64"),
    }  # fmt: skip
    assert doc["settings"]["quick"] is True and doc["settings"]["seed"] == 3
    assert "vector-add: loop" in proc.stdout and "matmul: A = BC" in proc.stdout
    assert re.search(r"vecx bench: 6 cases on numpy:cpu in [\d.]+ s", proc.stdout)
    assert f"results written to {out / 'results.json'}" in proc.stdout


def test_non_terminal_progress_is_plain_lines_without_colour(quick_run):
    proc, _ = quick_run
    assert re.match(r"\[0/6 0:\d\d\] numpy:cpu  started \(", proc.stderr)  # no probe wait
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("[")]
    assert re.match(r"\[0/6 0:\d\d\] numpy:cpu  started \(", lines[0])
    assert re.match(r"\[1/6 0:\d\d\] numpy:cpu  vector-add/loop \(n=10000\)  \S", lines[1])
    assert re.match(r"\[6/6 0:\d\d\] numpy:cpu  matmul/block64 \(n=256\)  \S+ GFLOP/s",
                    lines[-1])  # fmt: skip
    assert "\x1b[" not in proc.stdout + proc.stderr  # NO_COLOR, and a pipe anyway


def test_an_interrupted_run_says_so_on_stderr_with_a_plot_hint(tmp_path, monkeypatch, capsys):
    import vecx.commands.bench
    import vecx.engine
    from vecx.engine import Outcome

    path = tmp_path / "o" / "results.json"
    doc = {"settings": {"order": ["numpy:cpu"], "cases_planned": 9}, "results": [{}] * 4}
    outcome = Outcome(doc, path, "SIGINT", 0, 1.0)
    monkeypatch.setattr(vecx.engine, "run_bench", lambda opts: outcome)
    monkeypatch.setattr(vecx.commands.bench, "_print_tables", lambda doc, baseline: None)
    assert main(["bench", "--out", str(tmp_path / "o")]) == 130
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        "vecx bench: interrupted (SIGINT) after 4 of 9 cases on numpy:cpu",
        f"vecx bench: plots skipped after the interruption; draw them with: vecx plot {path}",
    ]
    assert out == f"vecx bench: results written to {path}\n"
    assert main(["bench", "--out", str(tmp_path / "o"), "--no-plots"]) == 130
    assert "vecx plot" not in capsys.readouterr().err  # no plots were asked for


SIGNAL_IN_PRECHECK = """
import os, signal, sys
import vecx.engine.run as run
from vecx.cli import main

def precheck(spec):  # the signal arrives while the backends are being checked
    os.kill(os.getpid(), getattr(signal, sys.argv[1]))
    return None

run.precheck = precheck
sys.exit(main(["bench", "--backends", "numpy", "--suites", "vector-add", "--out", sys.argv[2]]))
"""


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_signal_before_any_case_is_one_line_and_leaves_nothing(tmp_path, sig):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", SIGNAL_IN_PRECHECK, sig, str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert proc.returncode == 130, proc.stderr  # not killed silently by the signal
    assert proc.stderr == "vecx bench: interrupted (before any case ran; nothing written)\n"
    assert sorted(p.name for p in out.iterdir()) == [".vecx-bench.lock"]  # no partial file


def test_help_documents_the_options():
    proc = vecx_cli("bench", "--help")
    assert proc.returncode == 0
    for option in ("--backends", "--suites", "--quick", "--out", "--precision", "--baseline",
                   "--quiet", "--seed", "Exit status"):  # fmt: skip
        assert option in proc.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--backends", "tensorflow"], "unknown backend 'tensorflow'"),
        (["--suites", "matmull"], "unknown suite 'matmull'"),
        (["--precision", "fp8"], "invalid choice"),
        (["--seed", "x"], "invalid int value"),
        (["--backends", ""], "--backends: no backend selected; choose from numpy, torch, jax"),
        (["--backends", ","], "--backends: no backend selected; choose from numpy, torch, jax"),
        (["--suites", ""], "--suites: no suite selected; choose from built-in: vector-add, "
                           "matmul, scaling, train"),
        (["--seed", "-1"], "--seed must be >= 0, got -1"),
        (["--baseline", "tensorflow"],
         "--baseline: unknown backend 'tensorflow'; choose one of numpy, torch, jax, cupy"),
        (["--out", ""], "argument --out: needs a folder name, got an empty string"),
        (["--case-timeout", "0"], "--case-timeout: case timeout must be a positive number"),
        (["--threads", "many"], "--threads must be an integer, got 'many' (or 'auto')"),
        (["--modes", "jit,compiled"], "--modes: unknown mode 'compiled'; choose from eager, "
                                      "jit, fused"),
        (["--modes", "jit", "--suites", "matmul"], "--modes: none of the selected suites "
                                                   "runs in modes (matmul)"),
        (["--compute-dtypes", "int8"], "--compute-dtypes: unknown compute dtype 'int8'"),
        (["--compute-dtypes", "float16", "--suites", "vector-add"],
         "--compute-dtypes: none of the selected suites takes compute dtypes (vector-add)"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    proc = vecx_cli("bench", "--out", str(tmp_path / "o"), *args)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("vecx bench: error: ")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()  # checked before anything ran or was written


def test_suite_names_are_case_insensitive_like_backend_names(tmp_path):
    proc = vecx_cli("bench", "--quick", "--backends", "NumPy", "--suites", "Vector-Add",
                    "--out", str(tmp_path / "o"), "--no-plots", "--quiet")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert load(tmp_path / "o" / "results.json")["settings"]["suites"] == ["vector-add"]


def test_a_baseline_absent_from_the_run_is_one_note_per_table(tmp_path):
    proc = vecx_cli("bench", "--quick", "--backends", "numpy", "--suites", "vector-add",
                    "--baseline", "torch", "--out", str(tmp_path / "o"), "--no-plots",
                    "--quiet")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "torch is not in this run: no 'vs torch' column" in proc.stdout
    assert "| vs torch" not in proc.stdout


def test_unwritable_out_is_one_line_before_running(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = vecx_cli("bench", "--backends", "numpy", "--out", str(blocker / "sub"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("vecx bench: error: cannot write results to")
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stdout == ""


def test_plot_failure_is_one_line_and_keeps_the_json(tmp_path, monkeypatch, capsys):
    import vecx.plots

    def broken(doc, out_dir):
        raise RuntimeError("no fonts on this machine")

    monkeypatch.setattr(vecx.plots, "plot_results", broken)
    out = tmp_path / "out"
    status = main(["bench", "--quick", "--backends", "numpy", "--suites", "vector-add",
                   "--out", str(out), "--quiet"])  # fmt: skip
    captured = capsys.readouterr()
    assert status == 0
    assert "vecx bench: plots failed: RuntimeError: no fonts on this machine" in captured.err
    assert len(load(out / "results.json")["results"]) == 2


def test_plots_are_written_next_to_the_json(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    proc = vecx_cli("bench", "--quick", "--backends", "numpy", "--suites", "vector-add",
                    "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert list(out.glob("*.png")) and "plot files written" in proc.stdout
    json.loads((out / "results.json").read_text())
