"""What ``shotbank contribute`` shows: per-file lines, progress bars, the summary table.

On a terminal, rich draws an overall bar (bytes of all clips, speed, time left) and one
for the current file; the per-file lines scroll above them. When the output is a pipe
or a file there are no bars, only the per-file lines and the table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

__all__ = ["OK_RESULTS", "Outcome", "Reporter", "Result"]

#: Width of tables and lines when the output is not a terminal (no wrapping of ids).
_PIPE_WIDTH: Final = 200


class Result(StrEnum):
    """What happened to one clip in this run."""

    READY = "ready"  # --dry-run: would be uploaded
    SUBMITTED = "submitted"
    ALREADY_SUBMITTED = "already submitted"
    DUPLICATE = "duplicate"
    INVALID = "invalid"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    NOT_STARTED = "not started"
    # --wait: what ingest decided
    QUEUED = "queued"
    SCORING = "scoring"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    PENDING = "pending"  # still received/probing when --wait-timeout ran out


#: Results that do not make the run fail. A duplicate of another wallet's clip does;
#: a clip this wallet submitted before does not (the duplicate check recognises it).
OK_RESULTS: Final = frozenset(
    {
        Result.READY,
        Result.SUBMITTED,
        Result.ALREADY_SUBMITTED,
        Result.QUEUED,
        Result.SCORING,
        Result.ACCEPTED,
        Result.WITHDRAWN,
    }
)

_STYLES: Final = {
    Result.READY: "cyan",
    Result.SUBMITTED: "green",
    Result.ALREADY_SUBMITTED: "green",
    Result.QUEUED: "green",
    Result.SCORING: "green",
    Result.ACCEPTED: "bold green",
    Result.WITHDRAWN: "dim",
    Result.PENDING: "yellow",
    Result.DUPLICATE: "red",
    Result.INVALID: "red",
    Result.FAILED: "red",
    Result.REJECTED: "red",
    Result.INTERRUPTED: "yellow",
    Result.NOT_STARTED: "dim",
}


@dataclass
class Outcome:
    """The row of one clip in the summary."""

    relative: str
    result: Result
    clip_id: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Whether this clip lets the run succeed."""
        return self.result in OK_RESULTS


class Reporter:
    """Prints per-file lines, drives the progress bars and draws the final table."""

    def __init__(self, console: Console | None = None, *, quiet: bool = False) -> None:
        self.console = console or _default_console()
        self.quiet = quiet
        self._progress: Progress | None = None
        self._overall: TaskID | None = None
        self._current: TaskID | None = None
        self._current_done = 0

    @property
    def interactive(self) -> bool:
        """Whether bars are drawn (a terminal)."""
        return self.console.is_terminal

    def line(self, text: str, *, style: str | None = None) -> None:
        """One line of output (above the bars while they are shown)."""
        if not self.quiet:
            self.console.print(text, style=style, highlight=False, soft_wrap=True)

    def outcome(self, outcome: Outcome) -> None:
        """The per-file line of a finished clip."""
        style = _STYLES[outcome.result]
        text = f"[{style}]{outcome.result.value:>17}[/] {escape(outcome.relative)}"
        if outcome.clip_id:
            text += f"  clip {outcome.clip_id}"
        if outcome.detail:
            text += f"  ({escape(outcome.detail)})"
        if not self.quiet:
            self.console.print(text, highlight=False, soft_wrap=True)

    @contextmanager
    def transfer(self, description: str, total_bytes: int) -> Iterator[None]:
        """Show an overall bar of ``total_bytes`` while inside (on a terminal)."""
        progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.interactive or self.quiet,
            transient=True,
        )
        with progress:
            self._progress = progress
            self._overall = progress.add_task(description, total=total_bytes)
            try:
                yield
            finally:
                self._progress = self._overall = self._current = None

    def start_file(self, name: str, total: int, *, done: int = 0) -> None:
        """Begin the bar of one file (``done`` bytes already on the server)."""
        if self._progress is None:
            return
        if self._current is not None:
            self._progress.remove_task(self._current)
        self._current = self._progress.add_task(escape(name), total=total, completed=done)
        self._current_done = done

    def file_progress(self, done: int) -> None:
        """The current file has ``done`` bytes on the server (or on their way)."""
        if self._progress is None or self._current is None:
            return
        self._progress.update(self._current, completed=done)
        self.advance(done - self._current_done)
        self._current_done = done

    def advance(self, count: float) -> None:
        """Move the overall bar by ``count`` bytes."""
        if self._progress is not None and self._overall is not None:
            self._progress.advance(self._overall, count)

    def finish_file(self) -> None:
        """Remove the current file's bar."""
        if self._progress is not None and self._current is not None:
            self._progress.remove_task(self._current)
        self._current = None

    def table(self, outcomes: Iterable[Outcome], *, title: str) -> None:
        """The summary: one row per clip, then the counts per result."""
        rows = list(outcomes)
        table = Table(expand=False)
        table.add_column("file", overflow="fold")
        table.add_column("result", no_wrap=True)
        table.add_column("clip id", no_wrap=True)
        table.add_column("detail", overflow="fold")
        for row in rows:
            style = _STYLES[row.result]
            table.add_row(
                escape(row.relative),
                f"[{style}]{row.result.value}[/]",
                row.clip_id or "",
                escape(row.detail),
            )
        self.console.print(title, style="bold", highlight=False)
        self.console.print(table)
        counts = Counter(row.result for row in rows)
        summary = ", ".join(f"{count} {result.value}" for result, count in counts.items())
        self.console.print(f"{len(rows)} clip(s): {summary or 'none found'}", highlight=False)


def _default_console() -> Console:
    console = Console()
    if not console.is_terminal:
        console = Console(width=_PIPE_WIDTH)
    return console
