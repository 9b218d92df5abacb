"""Where a long run is: a rich progress bar on a terminal, plain lines otherwise.

Shared by ``vecx bench`` (cases done of cases planned) and ``vecx train`` (examples seen
of examples planned). The bar is redrawn only when something happens (no refresh thread,
no spinner), so the display takes no CPU time from the work it is timing. Colour follows
rich's rules, so ``NO_COLOR`` turns it off.
"""

from __future__ import annotations

import sys
import time
from typing import Any


class Progress:
    """``total`` units of work (cases, examples). ``stamp`` prefixes plain lines with
    ``[done/total m:ss]``; ``live`` is decided here (a terminal and not ``quiet``)."""

    def __init__(
        self,
        total: int,
        *,
        quiet: bool = False,
        stream: Any = None,
        start: float | None = None,
        stamp: bool = True,
        status: str = "{task.fields[left]} left",
    ) -> None:
        from rich.console import Console

        self.stream = stream if stream is not None else sys.stderr
        self.console = Console(file=self.stream, highlight=False, markup=False)
        self.total, self.done = total, 0
        self.stamp = stamp
        # the run's clock (``time.perf_counter()`` at its start), so the last line's time
        # matches the summary's
        self.start = time.perf_counter() if start is None else start
        self.live = not quiet and self.console.is_terminal
        self._bar: Any = None
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            # No refresh thread and no spinner: rich's default redraws 10 times a second,
            # on the same cores as the measurement.
            self._bar = RichProgress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn(status), TimeElapsedColumn(), console=self.console,
                transient=True, auto_refresh=False,
            )  # fmt: skip
            self._task = self._bar.add_task("starting", total=total, left=total, status="-")
            self._bar.start()

    def _stamp(self) -> str:
        elapsed = int(time.perf_counter() - self.start)
        width = len(str(self.total))
        return f"[{self.done:>{width}}/{self.total} {elapsed // 60}:{elapsed % 60:02d}] "

    def line(self, text: str) -> None:
        """A message above the bar (or a plain line)."""
        if self.live:
            self.console.print(text)  # the bar's console: printed above it while it runs
        else:
            # one write with its newline: a Ctrl-C between print()'s text and end writes
            # would glue the next line onto this one
            self.stream.write(f"{self._stamp() if self.stamp else ''}{text}\n")
            self.stream.flush()

    def begin(self, description: str) -> None:
        """Say what runs now (on the bar; plain mode says nothing until it ends)."""
        if self._bar is not None:
            self._bar.update(self._task, description=description, refresh=True)

    def advance(self, *, completed: int | None = None, text: str | None = None,
                status: str = "-") -> None:  # fmt: skip
        """One more unit done (or ``completed`` in all), with a line ``text`` if given."""
        self.done = self.done + 1 if completed is None else completed
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, left=self.total - self.done,
                             status=status, refresh=True)  # fmt: skip
        if text is not None:
            self.line(text)

    def tick(self) -> None:
        """Redraw the display (its elapsed time), at most as often as the engine looks."""
        if self._bar is not None:
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
