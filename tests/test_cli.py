"""vecx/cli.py: errors name the subcommand they belong to, in one line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from vecx.cli import main


def test_unknown_option_is_blamed_on_the_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "--backend", "numpy", "--preset", "linreg", "--bogus", "1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["vecx train: error: unrecognized arguments: --bogus 1 (see vecx train --help)"]


def test_unknown_top_level_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--bogus"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "vecx: error: unrecognized arguments: --bogus (see vecx --help)"
    )


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


# --------------------------------------------------------------------------- OS errors


def test_raw_os_errors_read_as_plain_words(tmp_path) -> None:
    from vecx.cli import describe_os_error

    blocker = tmp_path / "afile"
    blocker.write_text("x")
    cases = [
        (IsADirectoryError(21, "Is a directory", str(tmp_path)), f"{tmp_path} is a directory"),
        (PermissionError(13, "Permission denied", "/r.json"), "/r.json: permission denied"),
        (OSError(28, "No space left on device"), "no space left on device"),
        # a regular file where a folder should be, whichever way the OS puts it
        (NotADirectoryError(20, "Not a directory", str(blocker / "sub" / "x.md")),
         f"{blocker} is not a directory"),
        (FileExistsError(17, "File exists", str(blocker)), f"{blocker} is not a directory"),
        (OSError("cannot write results to x (Read-only file system)"),
         "cannot write results to x (Read-only file system)"),  # vecx's own: kept
    ]  # fmt: skip
    for exc, text in cases:
        assert describe_os_error(exc).startswith(text), (exc, describe_os_error(exc))
        assert "Errno" not in describe_os_error(exc)


def _error_line(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    return err.strip()


@pytest.fixture
def results_json(tmp_path) -> str:
    from vecx.results import ResultWriter

    path = tmp_path / "r.json"
    ResultWriter(path).finish({"settings": {}})
    return str(path)


def test_a_folder_given_as_results_file(capsys, tmp_path, results_json) -> None:
    folder = tmp_path / "adir"
    folder.mkdir()
    want = f"{folder} is a directory, not a results file"
    assert _error_line(capsys, "compare", str(folder), results_json) == (
        f"vecx compare: error: {want}"
    )
    assert _error_line(capsys, "plot", str(folder)) == f"vecx plot: error: {want}"
    assert _error_line(capsys, "report", str(folder)) == f"vecx report: error: {want}"


def test_an_unreadable_results_file(capsys, monkeypatch, results_json) -> None:
    from pathlib import Path

    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", denied)
    assert _error_line(capsys, "report", results_json) == (
        f"vecx report: error: cannot read results file {results_json} (Permission denied)"
    )


def test_a_file_where_a_folder_should_be(capsys, tmp_path, results_json) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    for target in (blocker / "x.md", blocker / "sub" / "x.md"):
        assert _error_line(capsys, "report", results_json, "-o", str(target)) == (
            f"vecx report: error: cannot write report to {target}: {blocker} is not a directory"
        )
    for target in (blocker / "x.png", blocker / "sub" / "x.png"):
        line = _error_line(capsys, "train", "--backend", "numpy", "--preset", "linreg",
                           "--plot", str(target))  # fmt: skip
        assert line == f"vecx train: error: --plot {target}: {blocker} is not a directory"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_on_stdout() -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "vecx", "info"], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": root})  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr == "vecx info: error: no space left on device\n"
