"""What runs in a repository's post-receive hook: queue a build of each pushed branch."""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

ZERO = "0" * 40
SOURCE_CLIENT = "source"  # the service account `league up` wants for the git server


def pushed_branches(lines: Iterable[str]) -> list[tuple[str, str]]:
    """(branch, commit) for every branch created or updated; deletions and tags build nothing."""
    pushed = []
    for line in lines:
        parts = line.split()
        if len(parts) != 3:
            continue
        _old, new, ref = parts
        if new != ZERO and ref.startswith("refs/heads/"):
            pushed.append((ref.removeprefix("refs/heads/"), new))
    return pushed


def source_token(home: Path) -> str:
    """The git server's own token for the build service: the `source` service account's.

    A push is not a user signing in: whoever may push may queue a build of what they
    pushed, and the hook does that with the account `league up` had the identity service
    make for it, its secret in a 0600 file only the eco-system's owner can read.
    """
    from ..identity._settings import IdentityPaths
    from ..identity.client import IdentityClient

    secret_file = IdentityPaths.under(home).client_secret(SOURCE_CLIENT)
    try:
        secret = secret_file.read_text().strip()
    except OSError as error:
        from ..errors import LeagueError

        raise LeagueError(f"cannot read the git server's credentials {secret_file}: {error.strerror}",
                          hint="`league up` has the identity service make them") from None
    answer = IdentityClient.from_home(home).client_credentials(SOURCE_CLIENT, secret, "builds",
                                                               scope="builds.write")
    return str(answer["access_token"])


def main(home: str, stdin: TextIO) -> int:
    from ..build.client import BuildClient
    from ..errors import LeagueError

    service = Path.cwd().name.removesuffix(".git")
    who = os.environ.get("GIT_PUSHER") or os.environ.get("REMOTE_USER") or getpass.getuser()
    for branch, commit in pushed_branches(stdin):
        try:
            client = BuildClient.from_home(Path(home), token=lambda: source_token(Path(home)))
            build = client.queue(service, commit, requested_by=f"{who} (push {branch})")
        except LeagueError as error:  # the push itself has landed: say how to build it later
            print(f"league: no build queued for {branch}: {error}")
            print(f"league: once it runs: league build {service} --ref {commit[:12]}")
            continue
        print(f"league: build {build['id']} of {service} {branch} ({commit[:12]}) queued:"
              f" league build show {build['id']}")
    return 0
