"""vecx/cli.py: errors name the subcommand they belong to, in one line."""

from __future__ import annotations

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
