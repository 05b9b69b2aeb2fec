"""The one exception hierarchy of sevenleague.

Errors are part of the interface: the CLI catches every `LeagueError` at the top,
prints its lines (what went wrong, where, how to fix it) and exits with its code.
Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class LeagueError(Exception):
    """A failure the user can act on; `exit_code` is what the CLI exits with."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def lines(self) -> list[str]:
        """One line per problem, each complete on its own (greppable, no context needed)."""
        if self.hint:
            return [f"{self.message} (hint: {self.hint})"]
        return [self.message]

    def __str__(self) -> str:
        return "\n".join(self.lines())


class UsageError(LeagueError):
    """The command line or the environment asked for something impossible."""

    exit_code = 2
