"""Python versions (PEP 440) as Debian versions, so apt orders releases the way pip does."""

from __future__ import annotations

import re

from ..errors import UsageError

_PEP440 = re.compile(
    r"^(?P<release>\d+(\.\d+)*)"
    r"(?:[-_.]?(?P<pre>a|b|rc|alpha|beta|c)[-_.]?(?P<pre_n>\d*))?"
    r"(?:[-_.]?post[-_.]?(?P<post>\d*))?"
    r"(?:[-_.]?dev[-_.]?(?P<dev>\d*))?$",
    re.IGNORECASE,
)
_PRE = {"alpha": "a", "beta": "b", "c": "rc"}


def debian_version(python_version: str, build_number: int) -> str:
    """`1.2.0rc1` built as build 7 -> `1.2.0~rc1-7`: `~` sorts before the release, as in pip.

    The build number is the Debian revision: every build of the same code is a new
    package revision, so apt never meets two different files under one version.
    """
    match = _PEP440.match(python_version.strip())
    if match is None:
        raise UsageError(f"version {python_version!r} in pyproject.toml is not a PEP 440 release version",
                         hint='use e.g. "1.2.0", "1.2.0rc1" or "1.2.0.post1" (no local "+..." part)')
    upstream = match["release"]
    if match["pre"]:
        pre = _PRE.get(match["pre"].lower(), match["pre"].lower())
        upstream += f"~{pre}{match['pre_n'] or 0}"
    if match["post"] is not None:
        upstream += f"+post{match['post'] or 0}"
    if match["dev"] is not None:
        upstream += f"~dev{match['dev'] or 0}"
    return f"{upstream}-{build_number}"
