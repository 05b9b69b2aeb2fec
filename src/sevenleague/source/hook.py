"""What runs in a repository's post-receive hook: queue a build of each pushed branch."""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

ZERO = "0" * 40


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


def main(home: str, stdin: TextIO) -> int:
    from ..build.client import BuildClient, BuildServiceUnavailable

    service = Path.cwd().name.removesuffix(".git")
    who = os.environ.get("GIT_PUSHER") or os.environ.get("REMOTE_USER") or getpass.getuser()
    for branch, commit in pushed_branches(stdin):
        try:
            build = BuildClient.from_home(Path(home)).queue(service, commit,
                                                            requested_by=f"{who} (push {branch})")
        except BuildServiceUnavailable as error:
            print(f"league: no build queued for {branch}: {error}")
            print(f"league: once it runs: league build {service} --ref {commit[:12]}")
            continue
        print(f"league: build {build['id']} of {service} {branch} ({commit[:12]}) queued:"
              f" league build show {build['id']}")
    return 0
