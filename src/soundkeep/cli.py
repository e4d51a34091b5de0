"""The soundkeep command: one Typer app; each stage registers its own commands."""

from __future__ import annotations

import sys

import typer

from soundkeep.audio import commands as audio_commands
from soundkeep.audio import encode_commands
from soundkeep.catalog import commands as catalog_commands
from soundkeep.cli_common import err_console
from soundkeep.errors import SoundkeepError
from soundkeep.plan import commands as plan_commands

app = typer.Typer(
    name="soundkeep",
    help="Build and keep a preservation archive for recorded music.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Order follows the data flow: sources -> catalog -> audio -> plan -> encode.
catalog_commands.register(app)
audio_commands.register(app)
plan_commands.register(app)
encode_commands.register(app)


def main() -> None:
    """Entry point: a user's mistake is one line on stderr and exit code 2, never a traceback."""
    try:
        app()
    except SoundkeepError as exc:
        err_console.print(f"[red]error:[/red] {exc.one_line()}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted; run the command again to resume")
        sys.exit(130)
