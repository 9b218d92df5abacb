"""bench/gpu-check.sh, the prepared GPU check: its plan, its limits and its runner."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "gpu-check.sh"


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)  # fmt: skip


def test_the_dry_run_plans_every_step_within_nine_minutes(tmp_path: Path) -> None:
    proc = run("--dry-run", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    limits = [int(s) for s in re.findall(r"at most +(\d+) s:", proc.stdout)]
    names = re.findall(r"^  (\S+) +at most", proc.stdout, flags=re.M)
    assert names == ["info", "cuda-tests", "bench", "modes", "precision", "overhead",
                     "trainer-overhead", "measure-vs-events"]  # fmt: skip
    assert sum(limits) <= 9 * 60 and f"in all at most {sum(limits)} s" in proc.stdout
    assert "--modes eager,jit,fused" in proc.stdout and "-k cuda" in proc.stdout
    assert not (tmp_path / "out").exists()  # a dry run writes nothing


def test_a_failing_step_is_listed_and_the_rest_still_run(tmp_path: Path) -> None:
    """With a Python that fails at once, every step fails: each is listed in the summary,
    the log keeps them all, and the exit status says so."""
    out = tmp_path / "out"
    proc = run(str(out), env={"PYTHON": "false"})
    assert proc.returncode == 1
    assert "gpu-check: 0 of 8 steps ok" in proc.stdout
    assert proc.stdout.count("FAILED (exit 1)") == 8
    log = (out / "gpu-check.log").read_text()
    assert log.count("===== ") == 16  # a header and a verdict per step
    assert (out / "summary.txt").read_text() == proc.stdout
    assert len(list(out.iterdir())) <= 8


def test_usage_is_one_line_and_exit_2() -> None:
    proc = run()
    assert proc.returncode == 2 and proc.stderr.strip().startswith("usage: ")
