"""What can go wrong when a service calls another, as exceptions a handler can tell apart.

A handler usually answers each differently: an unknown service is the caller's mistake
(404), a refusal by the issuer means the caller may not have this done on their behalf
(403), anything else is the eco-system failing (502). Every message names the callee and
the reason in words safe to log and to show; none ever holds a token or a secret.
"""

from __future__ import annotations

from ..errors import LeagueError

# Characters kept from text another party wrote (an issuer's error_description): it ends
# up in log lines and answers, so it must not be able to forge a line or a header.
_SHOWN_LENGTH = 200


def shown(text: object, limit: int = _SHOWN_LENGTH) -> str:
    """`text` cut to `limit` printable ASCII characters, safe to put in a log line or an answer."""
    cleaned = "".join(char if " " <= char <= "~" else "?" for char in str(text))
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


class ClientConfigError(LeagueError):
    """The settings of the service client cannot be right (a malformed URL map, an unreadable secret)."""


class CallFailed(LeagueError):
    """A call to another service got no usable answer: the callee or the issuer could not be reached,
    or this service's own credentials were refused. `service` is the callee, `reason` says why."""

    def __init__(self, service: str, reason: str, *, hint: str | None = None) -> None:
        super().__init__(f"call to {service} failed: {reason}", hint=hint)
        self.service = service
        self.reason = reason


class UnknownService(CallFailed):
    """No base URL is known for the service asked for (`LEAGUE_SERVICE_URLS` does not name it)."""

    def __init__(self, service: str, known: list[str]) -> None:
        super().__init__(shown(service, 64), "no URL is known for it",
                         hint=f"known: {', '.join(known) or '(none)'}; LEAGUE_SERVICE_URLS lists them")


class CallRefused(CallFailed):
    """The issuer would not give a token for the callee: the caller (or this service) may not do that.

    `error` is the issuer's OAuth error code (`invalid_scope`, `invalid_target`,
    `invalid_grant`...), `description` its explanation, cleaned for showing.
    """

    def __init__(self, service: str, error: str, description: str) -> None:
        self.error = shown(error, 64)
        self.description = shown(description)
        detail = f"{self.error}: {self.description}" if self.description else self.error
        super().__init__(service, f"the issuer refused a token for {service} ({detail})")
