"""`league new service NAME`: a service that builds green as written, and the steps after.

The command writes files and prints what to do next; it does not run git or touch the
catalog itself, because both are the user's to commit: the catalog entry needs a port
only they know to be free, and the repository is theirs to name and push.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

new = typer.Typer(
    name="new",
    help="Start something new from a template that builds green as written.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


def next_steps(name: str, directory: Path, catalog_entry: str, python: str) -> str:
    """What `league new service` prints: where the service is, how to ship it, how to run it."""
    return (
        f"wrote service {name!r} to {directory}\n"
        "\n"
        "next steps:\n"
        f"  cd {directory}\n"
        f'  git init -b main && git add . && git commit -m "{name}: first version"\n'
        f"  league repo create {name}            # prints its clone URL\n"
        "  git remote add league URL && git push league main\n"
        "\n"
        "the push builds it: unit, integration and performance tests, wheel, .deb and docs.\n"
        "to run it on this machine, install it where league runs, add this to ecosystem.toml\n"
        "(choose a port that is free) and run `league up`:\n"
        "\n"
        f"  {python} -m pip install -e {directory}\n"
        "\n"
        f"{catalog_entry}"
    )


@new.command("service")
def service(
    name: Annotated[str, typer.Argument(
        help="Service name: lowercase letters, digits and '-', a letter first, at most 32.")],
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="Directory to write it to, new or empty (default: ./NAME).")] = None,
) -> None:
    """The simplest service on the kit: an app, its three kinds of tests, docs and packaging.

    NAME: lowercase letters, digits and '-', a letter first, at most 32 characters.
    """
    from ..scaffold import render_catalog_entry, write_service

    written = write_service(name, directory or Path(name))
    typer.echo(next_steps(name, written, render_catalog_entry(name), sys.executable), nl=False)
