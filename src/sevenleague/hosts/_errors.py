from __future__ import annotations

from ..errors import LeagueError


class HostError(LeagueError):
    """A host could not do what was asked (start, stop, write a file...)."""
