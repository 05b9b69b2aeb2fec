"""`league login`, `league logout`, `league token`, `league user ...`: people and their tokens.

`league login` is the device flow (RFC 8628), because a terminal should never see a
password: it prints a short code and where to enter it, the person signs in on the
identity service's own page (in a browser, perhaps on another machine), and the CLI
only ever holds tokens. The sign-in is kept in the session file (see `_session`), and
every other command gets its tokens from it, one per service.

Secrets go to stdout alone on their line, with plain `print` (never through rich's markup
or line wrapping), and everything said about them to stderr, so `league token` and
`league user add` can be captured by a script (`$(league token)`) without catching the
chatter, and a log of stderr never holds a secret.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from ..identity.client import IdentityClient

LOGIN_AUDIENCE = "identity"
ADMIN_SCOPE = "identity.admin"
SLOW_DOWN_SECONDS = 5  # RFC 8628 3.5: a client told to slow down waits 5 s longer from then on

user = typer.Typer(help="The eco-system's users (needs an admin's `league login`).", no_args_is_help=True,
                   add_completion=False, rich_markup_mode=None)


def _home() -> Path:
    from ..ecosystem._layout import state_home

    return state_home()


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(highlight=False, stderr=stderr, soft_wrap=True)


# --- login ----------------------------------------------------------------------------------------------


def wait_for_approval(client: IdentityClient, device_code: str, interval: int, expires_in: float, *,
                      sleep: Callable[[float], None] = time.sleep,
                      clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Poll the token endpoint at the server's pace until the person approves, denies or the code expires."""
    from ..errors import LeagueError
    from ..identity.client import IdentityRefused

    expired = LeagueError(f"the code expired before it was approved ({int(expires_in) // 60} minutes)",
                          hint="run `league login` again and approve sooner")
    deadline = clock() + expires_in
    while True:
        if clock() + interval > deadline:
            raise expired
        sleep(interval)
        try:
            return client.poll_device(device_code)
        except IdentityRefused as error:
            if error.error == "authorization_pending":
                continue
            if error.error == "slow_down":
                interval += SLOW_DOWN_SECONDS
                continue
            if error.error == "expired_token":
                raise expired from None
            if error.error == "access_denied":
                raise LeagueError("the sign-in was denied on the approval page",
                                  hint="run `league login` again to retry") from None
            raise


def run_login(home: Path) -> int:
    from ..identity.client import IdentityClient
    from ._session import start_session

    out, err = _console(), _console(stderr=True)
    client = IdentityClient.from_home(home)
    grant = client.start_device(audience=LOGIN_AUDIENCE)
    try:
        out.print(f"to sign in, open {grant['verification_uri']} and enter the code {grant['user_code']}",
                  markup=False)
        if grant.get("verification_uri_complete"):
            out.print(f"or open {grant['verification_uri_complete']}", markup=False)
        with err.status("waiting for the approval (Ctrl-C to give up)"):
            answer = wait_for_approval(client, str(grant["device_code"]), int(grant.get("interval", 5)),
                                       float(grant["expires_in"]))
    except KeyboardInterrupt:
        err.print("login cancelled; nothing was saved")
        return 130
    session = start_session(home, client.issuer_url, answer, LOGIN_AUDIENCE)
    out.print(f"logged in as {session.username} ({', '.join(session.roles) or 'no roles'})", markup=False)
    return 0


def login() -> None:
    """Sign in to the eco-system (device flow): approve the printed code in a browser."""
    raise typer.Exit(run_login(_home()))


def logout() -> None:
    """Forget this machine's sign-in to the eco-system (the session file and its tokens)."""
    from ._session import delete_session, load_session

    home = _home()
    session = load_session(home)
    if session is not None and session.refresh_token:
        _revoke(home, session.refresh_token)
    said = "logged out of" if delete_session(home) else "was not logged in to"
    _console().print(f"{said} the eco-system at {home}", markup=False)


def _revoke(home: Path, refresh_token: str) -> None:
    """Tell the identity service the sign-in is over; forgetting it here happens either way."""
    from ..errors import LeagueError
    from ..identity.client import IdentityClient

    try:
        IdentityClient.from_home(home).revoke(refresh_token)
    except LeagueError as error:
        _console(stderr=True).print(f"the identity service was not told ({error}); the sign-in ends when "
                                    "its refresh token expires", markup=False)


def token(
    audience: Annotated[str, typer.Option("--audience", "-a", help="The service the token is for.")] = (
        LOGIN_AUDIENCE
    ),
    scope: Annotated[str | None, typer.Option(help="Space-separated scopes (default: all your roles allow).")]
    = None,
) -> None:
    """Print an access token for one service on stdout, nothing else, for scripts:
    curl -H "Authorization: Bearer $(league token -a hello)" ..."""
    from ._session import access_token

    print(access_token(_home(), audience, scope))


# --- users ------------------------------------------------------------------------------------------------


def _admin_client(home: Path) -> IdentityClient:
    from ..identity.client import IdentityClient
    from ._session import access_token

    return IdentityClient.from_home(home, bearer=lambda: access_token(home, LOGIN_AUDIENCE, ADMIN_SCOPE))


def _state(found: dict[str, Any], now: float) -> str:
    if found.get("disabled"):
        return "disabled"
    if (found.get("locked_until") or 0) > now:
        return "locked"
    return "active"


def _when(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp)) if timestamp else "never"


def _reserve(path: Path) -> int:
    """Create `path` empty, 0600, refusing to replace anything: a password is never written over a file."""
    from ..errors import LeagueError

    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise LeagueError(f"{path} exists already", hint="name a new file for the password") from None
    except OSError as error:
        raise LeagueError(f"cannot create {path} ({error.strerror})") from None


def run_user_add(home: Path, username: str, roles: list[str], name: str | None,
                 password_file: Path | None) -> int:
    fd = _reserve(password_file) if password_file is not None else None
    try:
        answer = _admin_client(home).add_user(username, roles or ["viewer"], name)
    except BaseException:
        if fd is not None and password_file is not None:
            os.close(fd)
            password_file.unlink(missing_ok=True)
        raise
    found, password = answer["user"], str(answer.get("password", ""))
    said = f"added user {found['username']} ({', '.join(found['roles'])})"
    if fd is not None:
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
        _console(stderr=True).print(f"{said}; their one-time password is in {password_file} (mode 0600): "
                                    "hand it over, then delete the file", markup=False)
        return 0
    _console(stderr=True).print(f"{said}; their password, shown this once, follows on stdout", markup=False)
    print(password)
    return 0


def run_user_list(home: Path, as_json: bool) -> int:
    from rich.table import Table

    users = _admin_client(home).list_users()
    if as_json:
        print(json.dumps(users, indent=2))
        return 0
    now = time.time()
    table = Table(title="users", title_justify="left")
    for column in ("username", "name", "roles", "state", "last login"):
        table.add_column(column)
    for found in users:
        table.add_row(found["username"], found.get("name", ""), ", ".join(found.get("roles", [])),
                      _state(found, now), _when(found.get("last_login_at")))
    _console().print(table)
    return 0


def run_user_switch(home: Path, username: str, enable: bool) -> int:
    client = _admin_client(home)
    if enable:
        client.enable_user(username)
        _console().print(f"enabled {username}: they can sign in again", markup=False)
    else:
        client.disable_user(username)
        _console().print(f"disabled {username}: their sign-ins are revoked and tokens already issued expire "
                         "within minutes", markup=False)
    return 0


@user.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="Lowercase letters, digits, '.', '_' and '-'.")],
    role: Annotated[list[str] | None, typer.Option(
        "--role", "-r", help="viewer, developer, operator or admin; repeat for several (default viewer).",
    )] = None,
    name: Annotated[str | None, typer.Option(help="The person's full name.")] = None,
    password_file: Annotated[Path | None, typer.Option(
        help="Write the one-time password to this new file (0600) instead of stdout.")] = None,
) -> None:
    """Add a user with a password made by the identity service, handed over once.

    The password goes to stdout alone on its line (what was done goes to stderr), or with
    --password-file to a new file only you can read, which keeps it out of the terminal's
    scrollback. It is never taken on the command line, where shell history and `ps` see it.
    """
    raise typer.Exit(run_user_add(_home(), username, role or [], name, password_file))


@user.command("list")
def user_list(json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every user with roles, state (active, locked, disabled) and last sign-in."""
    raise typer.Exit(run_user_list(_home(), json_output))


@user.command("disable")
def user_disable(username: Annotated[str, typer.Argument(help="The user to disable.")]) -> None:
    """Disable a user: their sign-ins end now, their tokens expire within minutes."""
    raise typer.Exit(run_user_switch(_home(), username, enable=False))


@user.command("enable")
def user_enable(username: Annotated[str, typer.Argument(help="The user to enable.")]) -> None:
    """Enable a disabled user; they sign in again with `league login`."""
    raise typer.Exit(run_user_switch(_home(), username, enable=True))


def register(app: typer.Typer) -> None:
    """Add these commands to `league`."""
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("token")(token)
    app.add_typer(user, name="user")

