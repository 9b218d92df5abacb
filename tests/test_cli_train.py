"""Tests of ``vecx train``: output, ``--json``/``--plot`` files, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vecx.plots
from vecx.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["train", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_python_m_vecx_train_writes_json(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    proc = subprocess.run(
        [sys.executable, "-m", "vecx", "train", "--backend", "numpy", "--preset", "linreg",
         "--json", str(target)],
        capture_output=True, text=True, cwd=str(ROOT), timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(target.read_text())
    assert doc["preset"] == "linreg" and doc["backend"] == "numpy:cpu"
    assert doc["loss"] < 1e-4 and len(doc["losses"]) == 15
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("training linreg on numpy:cpu")
    assert sum("examples" in line and "loss" in line for line in lines) == 15
    assert "sec/epoch" in lines[-1] and "d2l" in lines[-1]
    assert "nan" not in proc.stdout.lower()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]  # no temp left


def test_a_digits_classifier_on_torch_reports_accuracy(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    target, plot = tmp_path / "mlp.json", tmp_path / "mlp.png"
    proc = subprocess.run(
        [sys.executable, "-m", "vecx", "train", "--backend", "torch", "--preset", "digits-mlp",
         "--log-every", "1797", "--json", str(target), "--plot", str(plot)],
        capture_output=True, text=True, cwd=str(ROOT), timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("training digits-mlp on torch:cpu") and "sgd" in lines[0]
    assert sum("accuracy" in line for line in lines[1:-1]) == 10  # one checkpoint an epoch
    assert "accuracy" in lines[-1] and "d2l" not in lines[-1]  # d2l has no such figure
    doc = json.loads(target.read_text())
    assert len(doc["metrics"]["accuracy"]) == 10 and doc["metrics"]["accuracy"][-1] >= 0.95
    assert set(doc["params"]) == {"W1", "b1", "W2", "b2"}
    assert plot.stat().st_size > 0


def test_optimizer_flag(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "m.json"
    code, out, err = run(capsys, "--backend", "numpy", "--preset", "airfoil-mb100",
                         "--optimizer", "Momentum", "--lr", "0.1", "--json", str(target))
    assert code == 0, err
    assert "momentum" in out.splitlines()[0]
    assert json.loads(target.read_text())["optimizer"] == "momentum(beta=0.9)"
    with pytest.raises(SystemExit):
        main(["train", "--backend", "numpy", "--preset", "linreg", "--optimizer", "adam"])
    assert "invalid choice" in capsys.readouterr().err


def test_mode_flag(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--mode jit trains what eager trains, says so, and records it with its compile time."""
    runs = {}
    for mode in ("eager", "jit"):
        target = tmp_path / f"{mode}.json"
        code, out, err = run(capsys, "--backend", "numpy", "--preset", "linreg", "--epochs",
                             "1", "--mode", mode, "--json", str(target))  # fmt: skip
        assert code == 0, err
        assert f", {mode}, float32, seed 0" in out.splitlines()[0]
        assert f"({mode}" in out.splitlines()[-1]
        runs[mode] = json.loads(target.read_text())
    assert runs["jit"]["mode"] == "jit" and runs["jit"]["compile_s"] > 0
    assert runs["eager"]["compile_s"] is None and runs["eager"]["compiles"] is None
    for name in ("w", "b"):
        np.testing.assert_allclose(runs["jit"]["params"][name], runs["eager"]["params"][name],
                                   rtol=1e-5)  # fmt: skip


def test_compute_dtype_flag(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "h.json"
    code, out, err = run(capsys, "--backend", "numpy", "--preset", "airfoil-mb100",
                         "--compute-dtype", "float16", "--json", str(target))  # fmt: skip
    assert code == 0, err
    assert "float16 compute, float32 parameters, dynamic loss scale 65536" in out
    doc = json.loads(target.read_text())
    assert doc["compute_dtype"] == "float16" and doc["skipped_steps"] >= 1
    assert doc["loss_scale"] == 65536 * 0.5 ** doc["skipped_steps"]


def test_overrides_and_quiet(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "h.json"
    code, out, err = run(capsys, "--backend", "numpy", "--preset", "airfoil-mb100", "--lr",
                         "0.2", "--epochs", "1", "--batch-size", "50", "--seed", "3",
                         "--log-every", "500", "--json", str(target), "--quiet")
    assert code == 0 and err == ""
    assert len(out.splitlines()) == 1 and "sec/epoch" in out
    doc = json.loads(target.read_text())
    assert (doc["lr"], doc["batch_size"], doc["epochs"]) == (0.2, 50, 1)
    assert doc["examples"] == [500, 1000, 1500]
    assert "d2l" not in out  # d2l's figure is for its own settings, not these


@pytest.mark.skipif(not hasattr(vecx.plots, "plot_train_history"), reason="no plots yet")
def test_plot(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "curve.svg"
    code, _, err = run(capsys, "--backend", "numpy", "--preset", "airfoil-gd", "--plot",
                       str(target), "--quiet")
    assert code == 0, err
    assert target.read_text().lstrip().startswith(("<?xml", "<svg"))


def test_progress_bar_on_a_terminal(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code, out, _ = run(capsys, "--backend", "numpy", "--preset", "airfoil-gd")
    assert code == 0
    assert "epoch 1  examples" not in out  # the bar, not the plain lines
    assert "15000/15000" in out and "loss 0.245" in out and "sec/epoch" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "numpy", "--preset", "nope"], "unknown preset 'nope'"),
        (["--backend", "nope", "--preset", "linreg"], "unknown backend 'nope'"),
        (["--backend", "numpy:cuda", "--preset", "linreg"], "numpy does not run on cuda"),
        (["--backend", "numpy", "--preset", "linreg", "--lr", "0"],
         "--lr must be a finite number > 0, got 0.0"),
        (["--backend", "numpy", "--preset", "linreg", "--lr", "-1"],
         "--lr must be a finite number > 0, got -1.0"),
        (["--backend", "numpy", "--preset", "linreg", "--lr", "nan"],
         "--lr must be a finite number > 0, got nan"),
        (["--backend", "numpy", "--preset", "linreg", "--lr", "inf"],
         "--lr must be a finite number > 0, got inf"),
        (["--backend", "numpy", "--preset", "linreg", "--batch-size", "0"],
         "--batch-size must be between 1 and 1000, got 0"),
        (["--backend", "numpy", "--preset", "airfoil-gd", "--batch-size", "100000"],
         "--batch-size must be between 1 and 1500, got 100000"),
        (["--backend", "numpy", "--preset", "linreg", "--epochs", "0"],
         "--epochs must be >= 1, got 0"),
        (["--backend", "numpy", "--preset", "linreg", "--epochs", "-3"],
         "--epochs must be >= 1, got -3"),
        (["--backend", "numpy", "--preset", "linreg", "--log-every", "0"],
         "--log-every must be >= 1, got 0"),
        (["--backend", "numpy", "--preset", "linreg", "--seed", "-1"],
         "--seed must be >= 0, got -1"),
        (["--backend", "numpy", "--preset", "linreg", "--json", "/nonexistent-dir/x.json"],
         "cannot write in folder /nonexistent-dir"),
        (["--backend", "numpy", "--preset", "linreg", "--plot", "x.gif"], "suffix"),
        (["--backend", "numpy", "--preset", "linreg", "--mode", "fused"],
         "mode 'fused' needs jax, or a CUDA graph"),
        (["--backend", "numpy", "--preset", "linreg", "--compute-dtype", "bfloat16"],
         "numpy:cpu cannot compute in bfloat16 (NumPy has no bfloat16 type)"),
        (["--backend", "numpy", "--preset", "linreg", "--plot", "/nonexistent-dir/x.png"],
         "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(capsys, args, message) -> None:
    code, out, err = run(capsys, *args)
    assert code != 0
    assert err.count("\n") == 1 and err.startswith("vecx train: error: ")
    assert message in err
    assert out == ""  # checked before the header line


def test_json_path_that_is_a_folder(capsys, tmp_path: Path) -> None:
    code, _, err = run(capsys, "--backend", "numpy", "--preset", "linreg", "--json",
                       str(tmp_path))
    assert code != 0 and "is a folder" in err and err.count("\n") == 1


def test_divergence_writes_the_history_so_far_and_prints_no_nan(capsys, tmp_path: Path) -> None:
    target, figure = tmp_path / "out.json", tmp_path / "out.svg"
    code, out, err = run(capsys, "--backend", "numpy", "--preset", "airfoil-gd", "--lr", "10",
                         "--json", str(target), "--plot", str(figure))
    assert code == 1
    assert err.count("\n") == 1 and "diverged" in err and "lr=10" in err
    assert "nan" not in (out + err).lower()
    doc = json.loads(target.read_text())  # strict JSON
    assert err.strip().endswith(doc["diverged"])
    assert doc["examples"] == [1500, 3000, 4500] and doc["epoch_time"] is None
    assert "diverged after 3 checkpoints" in figure.read_text()
    assert "the history so far is in" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "out.svg"]  # no temp


def test_divergence_before_the_first_checkpoint_says_why_there_is_no_plot(
        capsys, tmp_path: Path) -> None:  # fmt: skip
    target, figure = tmp_path / "out.json", tmp_path / "out.png"
    code, out, err = run(capsys, "--backend", "numpy", "--preset", "airfoil-mb10", "--lr", "2",
                         "--json", str(target), "--plot", str(figure))
    assert code == 1 and err.count("\n") == 1 and "diverged" in err
    assert json.loads(target.read_text())["losses"] == [] and not figure.exists()
    assert f"no plot in {figure}: no checkpoint to draw" in out


def test_ctrl_c_writes_the_history_so_far(capsys, tmp_path: Path, monkeypatch) -> None:
    from vecx.commands import train as command

    def update(self, cp) -> None:
        if cp.examples == 600:
            raise KeyboardInterrupt
        print(f"  examples {cp.examples}")

    monkeypatch.setattr(command._Progress, "update", update)
    target, figure = tmp_path / "t.json", tmp_path / "t.png"
    code, out, err = run(capsys, "--backend", "numpy", "--preset", "linreg", "--json",
                         str(target), "--plot", str(figure))
    assert code == 130 and err == "vecx train: interrupted\n"
    doc = json.loads(target.read_text())
    assert doc["interrupted"] is True and doc["examples"] == [200, 400, 600]
    assert figure.stat().st_size > 0
    assert "interrupted after 3 checkpoint(s): the history so far is in" in out


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_real_sigint_writes_the_history_so_far(tmp_path: Path, signame: str) -> None:
    import signal

    target = tmp_path / "t.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vecx", "train", "--backend", "numpy", "--preset",
         "airfoil-sgd", "--epochs", "500", "--json", str(target)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT),
    )  # fmt: skip
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(4)]  # the header and 3 checkpoints
    proc.send_signal(getattr(signal, signame))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err == "vecx train: interrupted\n", err
    doc = json.loads(target.read_text())
    assert doc["interrupted"] is True and len(doc["losses"]) >= 3, lines
    assert "the history so far is in" in out
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]  # no temporary file left


def test_numpy_divergence_is_one_line_without_warnings() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vecx", "train", "--backend", "numpy", "--preset", "linreg",
         "--lr", "1e6"],
        capture_output=True, text=True, cwd=str(ROOT), timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [proc.stderr.strip()], proc.stderr  # one line
    assert proc.stderr.startswith("vecx train: error: training diverged")
    assert "RuntimeWarning" not in proc.stderr


def test_a_plugin_backend_missing_methods_is_one_line(capsys, monkeypatch) -> None:
    """A registered factory whose object lacks most of the protocol: one line, exit 1."""
    from vecx import registry

    class Half:
        def __init__(self, device: str, **kw: object) -> None:
            self.name, self.device, self.dtype = "half", device, "float32"

    monkeypatch.setattr(registry, "_entries", dict(registry._entries))
    registry.register(registry.BackendEntry("half", Half))
    code, out, err = run(capsys, "--backend", "half", "--preset", "linreg")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("vecx train: error: backend 'half:cpu' is unavailable: the object "
                          "its factory built")  # fmt: skip
    assert "lacks 32 of vecx.Backend's members: abs, asarray" in err
