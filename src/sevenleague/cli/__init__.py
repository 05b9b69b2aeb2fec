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
from typer.core import TyperGroup

from ..errors import LeagueError
from ._auth import register as register_auth_commands
from ._context import DEFAULT_CATALOG, Options
from ._new import new

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


app.add_typer(new, name="new")
register_auth_commands(app)  # login, logout, token, user ...

repo_app = typer.Typer(help="The eco-system's git repositories: a push builds.", no_args_is_help=True)
app.add_typer(repo_app, name="repo")


@repo_app.command("create")
def repo_create(
    name: Annotated[str, typer.Argument(help="Service name; the repository is NAME.git.")],
) -> None:
    """Create a bare repository whose pushes queue builds; prints its clone URL."""
    from ._builds import run_repo_create

    raise typer.Exit(run_repo_create(name, _console()))


@repo_app.command("list")
def repo_list(json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every repository with its branches and clone URL."""
    from ._builds import run_repo_list

    raise typer.Exit(run_repo_list(_console(), json_output))


@app.command("build")
def build(
    target: Annotated[str, typer.Argument(help="SERVICE to build, or `show`.", metavar="SERVICE|show")],
    build_id: Annotated[int | None, typer.Argument(help="With `show`: the build id.", metavar="[ID]")] = None,
    ref: Annotated[str, typer.Option(help="Branch, tag or commit to build.")] = "HEAD",
    log: Annotated[bool, typer.Option("--log", help="With `show`: print the build's log.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """`league build SERVICE [--ref REF]` builds and follows it (exit 0 passed, 1 not);
    `league build show ID [--log]` shows one build."""
    from ._builds import run_build, run_build_show

    if target == "show":
        if build_id is None:
            raise typer.BadParameter("which build? e.g. `league build show 12`", param_hint="ID")
        raise typer.Exit(run_build_show(build_id, _console(), log, json_output))
    if build_id is not None:
        raise typer.BadParameter(f"unexpected {build_id} after the service name (did you mean "
                                 f"`league build show {build_id}`?)", param_hint="ID")
    raise typer.Exit(run_build(target, ref, _console(), json_output))


pki_app = typer.Typer(help="The eco-system's internal CA and certificates.", no_args_is_help=True)
app.add_typer(pki_app, name="pki")


@pki_app.command("status")
def pki_status(json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every certificate (root, intermediate, edge, leaves), its SANs and expiry; exit 1 if one expired."""
    from ..ecosystem._layout import state_home
    from ._pki import run_pki_status

    raise typer.Exit(run_pki_status(state_home(), _console(), json_output))


@app.command("builds")
def builds(
    service: Annotated[str | None, typer.Argument(help="Only this service's builds.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many, newest first.")] = 20,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Builds, newest first, with state, test counts per kind and reason."""
    from ._builds import run_builds

    raise typer.Exit(run_builds(service, _console(), json_output, limit))


JSON_HELP = "Print JSON."

host_app = typer.Typer(help="The catalog's hosts, and whether each can take a deploy.", no_args_is_help=True)
app.add_typer(host_app, name="host")


@host_app.command("add")
def host_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Name of the host in the catalog.")],
    address: Annotated[str, typer.Option("--address", help="IP or DNS name other processes reach it at.")],
    driver: Annotated[str, typer.Option("--driver", help='"ssh" (systemd over SSH) or "local".')] = "ssh",
    env: Annotated[str | None, typer.Option("--env", help="Environment it joins.")] = None,
    ssh_user: Annotated[str, typer.Option("--ssh-user", help="User to log in as.")] = "root",
    ssh_key: Annotated[str, typer.Option("--ssh-key", help="Private key file, from the catalog.")] = "",
    known_hosts: Annotated[str, typer.Option("--known-hosts", help="known_hosts file pinning its key.")] = "",
) -> None:
    """Add a [hosts.NAME] table to the catalog (kept only if the catalog still validates)."""
    from ._hosts import run_host_add

    if driver not in ("ssh", "local"):
        raise typer.BadParameter(f"{driver!r}: use ssh or local", param_hint="--driver")
    raise typer.Exit(run_host_add(ctx.obj.catalog, name, address, driver, env, ssh_user, ssh_key,
                                  known_hosts, _console()))


@host_app.command("list")
def host_list(ctx: typer.Context,
              json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every host with its driver, address, environment and instances."""
    from ..catalog import load_catalog
    from ._hosts import run_host_list

    raise typer.Exit(run_host_list(load_catalog(ctx.obj.catalog), _console(), json_output))


@host_app.command("check")
def host_check(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this host.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """SSH, systemd, the eco-system's apt source and key, clock and disk of each host; exit 1 if one fails."""
    from ..catalog import load_catalog
    from ._hosts import run_host_check

    raise typer.Exit(run_host_check(load_catalog(ctx.obj.catalog), name, _console(), json_output))


class _QueryByDefault(TyperGroup):
    """`league metrics QUERY` is short for `league metrics query QUERY`: a first word that is not
    a subcommand (or --help) goes to `query`, once a `query` subcommand is registered."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = args[0] if args else None
        if first is not None and first not in self.commands and first not in ("--help", "-h") \
                and "query" in self.commands:
            args = ["query", *args]
        return super().parse_args(ctx, args)


metrics_app = typer.Typer(cls=_QueryByDefault, no_args_is_help=True,
                          help="The eco-system's metrics: `query` Prometheus (`league metrics QUERY` "
                               "for short), `check` what a process serves against the register.")
app.add_typer(metrics_app, name="metrics")


@metrics_app.command("query")
def metrics_query(
    promql: Annotated[str, typer.Argument(
        help="PromQL expression, e.g. 'up' or 'rate(http_requests_total[1m])'.", metavar="QUERY")],
    at: Annotated[str | None, typer.Option(
        "--time", help="Evaluate at this time (RFC 3339 or Unix seconds; default: now).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print Prometheus' answer as JSON.")] = False,
) -> None:
    """Ask the eco-system's Prometheus: one row per series (labels, value), a range vector per sample;
    a query Prometheus refuses prints its message, exit 1."""
    from ..ecosystem._layout import state_home
    from ._metrics import run_metrics_query

    raise typer.Exit(run_metrics_query(state_home(), promql, at, _console(), json_output))


@metrics_app.command("check")
def metrics_check(
    sources: Annotated[list[str], typer.Argument(
        help="Prometheus text expositions: files, - for stdin, or https URLs of /metrics.",
        metavar="FILE|URL...")],
    token_file: Annotated[Path | None, typer.Option(
        "--token-file", help="Bearer token for a URL (kit /metrics needs scope SERVICE.metrics).")] = None,
    ca_file: Annotated[Path | None, typer.Option(
        "--ca-file", help="CA to verify a URL with (default: the eco-system's, .league/pki/ca.pem).")] = None,
) -> None:
    """Every metric family registered, typed and labelled as registered, named by Prometheus' conventions,
    and clean for `promtool check metrics`; one line per problem, exit 1 if any."""
    from ._metrics_check import run_metrics_check

    raise typer.Exit(run_metrics_check(sources, _console(), token_file=token_file, ca_file=ca_file))


@app.command("logs")
def logs(
    service: Annotated[str | None, typer.Argument(help="Only this service's records.")] = None,
    since: Annotated[str | None, typer.Option(help="From this time (ISO 8601) or this long ago (15m, 1h).")]
    = None,
    until: Annotated[str | None, typer.Option(help="Up to this time or this long ago.")] = None,
    level: Annotated[str | None, typer.Option(help="This level or worse: debug, info, warning, error...")]
    = None,
    grep: Annotated[str | None, typer.Option(help='Free text: words and "quoted phrases", all must appear.')]
    = None,
    request: Annotated[str | None, typer.Option(help="One request's records (its X-Request-ID).")] = None,
    trace: Annotated[str | None, typer.Option(help="One trace's records (the trace id of its traceparent).")]
    = None,
    user: Annotated[str | None, typer.Option(help="Records of requests this user made.")] = None,
    host: Annotated[str | None, typer.Option(help="Only records from this host.")] = None,
    instance: Annotated[str | None, typer.Option(help="Only records from this instance.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many of the newest records to show.")]
    = 100,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Go on printing new records as they arrive.")]
    = False,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Search every process' logs (oldest first, newest last), or follow them live."""
    from ._logs import query_params, run_logs

    params = query_params(service, since=since, until=until, level=level, grep=grep, request=request,
                          trace=trace, user=user, host=host, instance=instance, limit=limit)
    raise typer.Exit(run_logs(params, _console(), follow=follow, as_json=json_output))


@app.command("deploy")
def deploy(
    service: Annotated[str, typer.Argument(help="Service to deploy.")],
    version: Annotated[str, typer.Argument(help="Version published in the apt repository, e.g. 0.1.0-12.")],
    env: Annotated[str, typer.Option("--env", help="Environment to deploy to.")],
    wait: Annotated[bool, typer.Option("--wait", help="Queue behind a deploy that holds the lock.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Roll VERSION out over SERVICE's instances in ENV, health-gated; follows it step by step.
    Exit 0 succeeded, 1 rolled back, 5 refused (lock held), 6 failed."""
    from ._deploy import run_deploy

    raise typer.Exit(run_deploy(service, version, env, _console(), wait, json_output))


@app.command("rollback")
def rollback(
    service: Annotated[str, typer.Argument(help="Service to roll back.")],
    env: Annotated[str, typer.Option("--env", help="Environment to roll back.")],
    to: Annotated[str | None,
                  typer.Option("--to", help="Version to return to (default: the previous).")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Queue behind a deploy that holds the lock.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Put the previous release back on every instance of ENV, from what the hosts kept."""
    from ._deploy import run_rollback

    raise typer.Exit(run_rollback(service, env, to, _console(), wait, json_output))


@app.command("promote")
def promote(
    service: Annotated[str, typer.Argument(help="Service to promote.")],
    source: Annotated[str, typer.Option("--from", help="Environment whose release is promoted.")],
    target: Annotated[str, typer.Option("--to", help="Environment it goes to.")],
    json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Deploy to --to exactly the release --from runs, if every gate holds; a refusal names the gate."""
    from ._deploy import run_promote

    raise typer.Exit(run_promote(service, source, target, _console(), json_output))


@app.command("releases")
def releases(
    service: Annotated[str, typer.Argument(help="Service to show.")],
    env: Annotated[str | None, typer.Option("--env", help="Only this environment.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """What each instance runs, and the deployments that brought it, newest first."""
    from ._deploy import run_releases

    raise typer.Exit(run_releases(service, env, _console(), json_output))


@app.command("audit")
def audit(
    service: Annotated[str | None, typer.Argument(help="Only this service.")] = None,
    env: Annotated[str | None, typer.Option("--env", help="Only this environment.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Every deploy, rollback, promotion and lock action: who, what, from which version to which, outcome."""
    from ._deploy import run_audit

    raise typer.Exit(run_audit(service, env, _console(), json_output))


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
