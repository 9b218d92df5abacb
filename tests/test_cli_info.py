"""``vecx info`` and the CLI's usage errors, run as a user runs them: in a new process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import vecx

REPO = Path(__file__).resolve().parents[1]
BUILTIN_SPECS = ["numpy:cpu", "torch:cpu", "torch:cuda", "jax:cpu", "jax:cuda", "cupy:cuda"]
# What the ``vecx`` console script runs (pyproject: vecx = "vecx.cli:main"), so these tests
# need no installation; ``python -m vecx`` is tested as itself.
CONSOLE_SCRIPT = [sys.executable, "-c", "import sys; from vecx.cli import main; sys.exit(main())"]
MODULE = [sys.executable, "-m", "vecx"]


def vecx_cli(command: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [*command, *args], env=env, capture_output=True, text=True, timeout=180, cwd=REPO
    )


@pytest.fixture(scope="module")
def info_table() -> subprocess.CompletedProcess[str]:
    return vecx_cli(MODULE, "info")


@pytest.fixture(scope="module")
def info_json() -> subprocess.CompletedProcess[str]:
    return vecx_cli(CONSOLE_SCRIPT, "info", "--json")


def test_info_table_lists_every_backend(info_table: subprocess.CompletedProcess[str]) -> None:
    assert info_table.returncode == 0, info_table.stderr
    rows = {line.split("|")[1].strip(): line for line in info_table.stdout.splitlines()
            if line.startswith("|") and ":" in line.split("|")[1]}
    assert list(rows)[: len(BUILTIN_SPECS)] == BUILTIN_SPECS
    for st in vecx.list_backends():
        cells = [c.strip() for c in rows[st.spec].split("|")[1:-1]]
        assert cells[1] == ("yes" if st.available else "no"), rows[st.spec]
        assert cells[2] == (st.version or "-")
    assert "Traceback" not in info_table.stderr


def test_info_json_lists_every_backend(info_json: subprocess.CompletedProcess[str]) -> None:
    assert info_json.returncode == 0, info_json.stderr
    rows = json.loads(info_json.stdout)
    assert [r["spec"] for r in rows][: len(BUILTIN_SPECS)] == BUILTIN_SPECS
    here = {st.spec: st for st in vecx.list_backends()}
    for row in rows:
        assert set(row) >= {"spec", "name", "device", "available", "reason", "version",
                            "device_name"}
        st = here[row["spec"]]
        assert row["available"] == st.available, row
        assert (row["name"], row["device"], row["version"]) == (st.name, st.device, st.version)
        if row["available"]:
            assert row["device_name"] and row["reason"] == ""
        else:
            assert row["reason"] and row["device_name"] == ""
    (numpy_row,) = [r for r in rows if r["spec"] == "numpy:cpu"]
    assert numpy_row["available"] is True


@pytest.mark.parametrize(
    ("args", "prefix", "message"),
    [
        (["bogus"], "vecx: error: ", "invalid choice: 'bogus'"),
        # an unknown option is blamed on the subcommand it was given to
        (["info", "--bogus"], "vecx info: error: ", "unrecognized arguments: --bogus"),
    ],
)
def test_usage_errors_are_one_line_with_exit_status_2(
    args: list[str], prefix: str, message: str
) -> None:
    proc = vecx_cli(MODULE, *args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(prefix) and message in lines[0]


def test_version() -> None:
    proc = vecx_cli(MODULE, "--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"vecx {vecx.__version__}"
