"""Terminal output shared by the commands: rich tables, plain when not a terminal.

Colour follows rich's rules (``NO_COLOR`` turns it off); output to a pipe or file gets
plain text without box-drawing, so logs and CI stay readable.
"""

from __future__ import annotations

import sys
from typing import Any


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(file=stream, highlight=False, markup=False, soft_wrap=not stream.isatty())


def make_table(title: str, columns: list[str], *, right: tuple[str, ...] = ()) -> Any:
    from rich import box
    from rich.table import Table

    plain = not sys.stdout.isatty()
    table = Table(title=title, box=box.ASCII if plain else box.SIMPLE_HEAVY, title_justify="left")
    for col in columns:
        table.add_column(col, justify="right" if col in right else "left", overflow="fold")
    return table


def print_table(table: Any) -> None:
    console().print(table)
