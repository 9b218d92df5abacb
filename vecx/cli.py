"""The ``vecx`` command: parse, dispatch to ``vecx.commands.<name>``, and turn errors into one line.

Each subcommand lives in its own module under ``vecx.commands`` with ``add_parser(sub)``
(which sets ``func``); this file knows nothing of frameworks or suites. Any expected
failure (bad input, a missing file, an unavailable backend) ends as one line on stderr
and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from vecx import __version__

COMMANDS = ("info", "bench", "train", "compare", "plot", "report")

EXIT_ERROR = 1  # the command ran and failed (or found a regression)
EXIT_USAGE = 2  # bad arguments or input


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line: ``vecx train: error: ... (see --help)``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="vecx",
        description="Compare array frameworks and devices on identical algorithms.",
    )
    parser.add_argument("--version", action="version", version=f"vecx {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"vecx.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"vecx.commands.{name}":
                raise
            continue  # a command still being built is simply not offered
        module.add_parser(sub)
    return parser


def file_in_the_way(path: str | os.PathLike[str]) -> Path | None:
    """The first of ``path`` and its parents that exists and is not a directory, if any:
    why ``path/...`` cannot be created (``a/b/x.md`` when ``a`` is a regular file)."""
    p = Path(path)
    for candidate in (p, *p.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def describe_os_error(exc: OSError) -> str:
    """One readable line for an ``OSError``.

    vecx's own messages (which say what it was doing) are kept. A raw one from the OS,
    ``[Errno 21] Is a directory: 'x'``, becomes plain words that name the path:
    ``x is a directory, not a file``; ``a is not a directory`` (for ``a/x.md`` where
    ``a`` is a file, whether the OS said "Not a directory" or "File exists");
    ``x: permission denied``; ``no space left on device``.
    """
    if exc.strerror is None or not str(exc).startswith("[Errno"):
        return str(exc)
    reason = exc.strerror[:1].lower() + exc.strerror[1:]
    if exc.filename is None:
        return reason
    name = os.fsdecode(exc.filename)
    if isinstance(exc, IsADirectoryError):
        return f"{name} is a directory, not a file"
    if isinstance(exc, (NotADirectoryError, FileExistsError)):
        blocker = file_in_the_way(name)
        if blocker is not None:
            return f"{blocker} is not a directory"
    return f"{name}: {reason}"


def _parser_of(parser: argparse.ArgumentParser, command: str | None) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return action.choices[command]
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:  # blame the subcommand that was given them, not ``vecx`` itself
        _parser_of(parser, getattr(args, "command", None)).error(
            f"unrecognized arguments: {' '.join(extras)}"
        )
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:  # with a message when something could not be saved
        detail = f" ({exc})" if str(exc) else ""
        print(f"vecx {args.command}: interrupted{detail}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except (ValueError, OSError, LookupError, json.JSONDecodeError, RuntimeError) as exc:
        # VecxError subclasses ValueError/RuntimeError/ArithmeticError; OSError covers
        # missing files and unwritable folders. One line, no traceback.
        text = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
        message = text.splitlines()[0] if text else type(exc).__name__
        print(f"vecx {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, (ValueError, LookupError, OSError)) else EXIT_ERROR
    except ArithmeticError as exc:  # TrainingDiverged
        print(f"vecx {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
