"""`league`: thin commands over the slices, printing tables (rich) or `--json`.

Errors the user can act on (`LeagueError`) become one line each on stderr and a
non-zero exit; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console

from ..errors import LeagueError
from ._context import DEFAULT_CATALOG, Options

app = typer.Typer(
    name="league",
    help="Run the whole micro-service eco-system around your app, from ecosystem.toml.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

CATALOG_HELP = "Catalog file describing the eco-system."


@app.callback()
def options(
    ctx: typer.Context,
    catalog: Annotated[Path, typer.Option("--catalog", help=CATALOG_HELP, envvar="LEAGUE_CATALOG")] = (
        DEFAULT_CATALOG
    ),
) -> None:
    """State lives in $LEAGUE_HOME (default ./.league); $LEAGUE_PORT_OFFSET moves every port."""
    ctx.obj = Options(catalog=catalog)


def _console() -> Console:
    return Console(highlight=False)


@app.command()
def up(
    ctx: typer.Context,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for everything to be healthy.")] = 60.0,
) -> None:
    """Render everything, start it under supervisord, wait until healthy, print endpoints."""
    from ._up_down import run_up

    raise typer.Exit(run_up(ctx.obj.catalog, _console(), timeout))


@app.command()
def status(json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every process and instance with its health and port; exit 0 healthy, 1 degraded, 3 stopped."""
    from ..ecosystem._layout import StateLayout, state_home
    from ._status import run_status

    raise typer.Exit(run_status(StateLayout(state_home()), _console(), json_output))


@app.command()
def down() -> None:
    """Stop every process of the eco-system, supervisord last."""
    from ._up_down import run_down

    raise typer.Exit(run_down(_console()))


@app.command()
def validate(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Argument(help="Catalog to check (default: --catalog).")] = None,
) -> None:
    """Check a catalog file; every problem is one line naming file, key and fix (exit 2)."""
    from ._validate import run_validate

    raise typer.Exit(run_validate(file or ctx.obj.catalog, _console()))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `league` command."""
    try:
        code = app(args=argv, prog_name="league", standalone_mode=False)
    except LeagueError as error:
        for line in error.lines():
            print(f"league: {line}", file=sys.stderr)
        sys.exit(error.exit_code)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        print("league: interrupted", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        print("league: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
