"""The README cannot rot: its Python examples run here; its shell commands run in .ci/run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_readme_has_the_two_quick_start_commands() -> None:
    shell = "\n".join(blocks("bash"))
    assert 'python -m pip install -e . && vecx bench --quick' in shell
    assert 'python -m pip install -e ".[test]" && python -m pytest -n auto\n' in shell
    ci = (ROOT / ".ci" / "run").read_text()
    assert "\npython -m pytest -n auto\n" in ci  # CI runs the README's test command


def test_library_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    library = next(b for b in blocks("python") if "vecx.backend(" in b)
    exec(compile(library, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "airfoil-mb10" in out  # the last prints ran


def test_model_example_trains_the_same_on_every_backend(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The README's MLP: what it says (the same loss and parameters everywhere) is true."""
    model = next(b for b in blocks("python") if "loss=loss, params=init" in b)
    exec(compile(model, "README.md", "exec"), {})
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ": loss " in ln]
    assert lines and lines[0].startswith("numpy:cpu")
    results = [ln.split(": ", 1)[1] for ln in lines]
    losses = [float(r.split(",")[0].removeprefix("loss ")) for r in results]
    accuracies = [float(r.split(",")[1].removeprefix(" accuracy ")) for r in results]
    assert max(losses) - min(losses) <= 1e-4 * losses[0]
    assert min(accuracies) >= 0.95


def test_modes_example_trains_the_same_in_every_mode(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("jax")
    example = next(b for b in blocks("python") if "mode=mode" in b)
    exec(compile(example, "README.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["numpy eager", "numpy jit", "jax jit",
                                                 "jax fused"]  # fmt: skip
    weights = {ln.split("w [")[1].split("]")[0] for ln in lines}
    assert len(weights) == 1, lines  # the same parameters, as printed (4 digits)
    assert "None s compiling first" in lines[0] and "None s" not in lines[1]


def test_fixture_example_runs_as_a_third_party_test(tmp_path: Path) -> None:
    example = next(b for b in blocks("python") if "def test_" in b)
    (tmp_path / "test_example.py").write_text(example)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VECX_BACKENDS": "numpy,torch:cpu,jax:cpu"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "vecx.testing", "-rs", str(tmp_path)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "passed" in proc.stdout


def test_every_cli_command_in_the_readme_exists() -> None:
    from vecx.cli import COMMANDS, build_parser

    build_parser()  # every listed command module imports and registers
    used = set(re.findall(r"^vecx (\w+)", "\n".join(blocks("bash")), flags=re.M))
    used |= set(re.findall(r"`vecx (\w+)", README))
    assert used <= set(COMMANDS), used - set(COMMANDS)
    assert set(COMMANDS) <= used, "every command is documented"


def test_workload_example_runs_from_the_readme_alone(tmp_path: Path) -> None:
    """The README's workload file and its two commands, word for word, in a scratch folder."""
    example = next(b for b in blocks("python") if "@vecx.workload" in b)
    (tmp_path / "mybench.py").write_text(example)
    commands = next(b for b in blocks("bash") if "--suites mybench.py" in b)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1",
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", commands], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    import json

    recs = json.loads((tmp_path / "mine" / "results.json").read_text())["results"]
    backends = {r["backend"] for r in recs}
    assert backends == {"numpy", "torch", "jax"} and all(r["error"] is None for r in recs)
    assert all(r["check_error"] is not None for r in recs)
    assert "square_matmul" in proc.stdout and "GFLOP/s" in proc.stdout  # the table
    assert (tmp_path / "mine" / "mybench.png").is_file()
    report = (tmp_path / "mine" / "REPORT.md").read_text()
    assert "### mybench" in report and "(mybench.png)" in report
