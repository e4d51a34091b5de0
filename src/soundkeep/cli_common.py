"""What every command shares: the --archive and --json options, JSON output, progress bars."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from soundkeep.archive import ENV_VAR

console = Console()
err_console = Console(stderr=True)

ArchiveOpt = Annotated[
    Path,
    typer.Option("--archive", "-a", envvar=ENV_VAR,
                 help="Archive directory (default: the current directory).",
                 file_okay=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]


def print_json(data: Any) -> None:
    """Print a report as JSON on stdout (sorted keys, no colour)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


class _RateColumn(TextColumn):
    """Items per second with a unit, e.g. '812,345 rows/s'."""

    def __init__(self, unit: str) -> None:
        super().__init__("")
        self.unit = unit

    def render(self, task: Any) -> Any:
        from rich.text import Text

        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} {self.unit}/s", style="cyan")


@contextmanager
def progress(unit: str = "rows", quiet: bool = False) -> Iterator[Progress]:
    """A rich progress display with count, rate and ETA; silent when quiet or not a terminal."""
    prog = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        _RateColumn(unit),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=quiet,
        transient=False,
    )
    with prog:
        yield prog
