"""`league logs`: search the logs service, or follow it live.

Records print oldest first, like `tail`: a search fetches the newest `--limit` records
and shows them in the order they happened, so the last line on the screen is the
latest. `--follow` then goes on printing each new record as it is stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape

from ..ecosystem._layout import state_home
from ..logs.client import LogsClient

LEVEL_STYLES = {"debug": "dim", "info": "", "warning": "yellow", "error": "red", "critical": "bold red"}
# Printed in front, or left out of the key=value tail of a line.
_SHOWN = frozenset({"ts", "level", "service", "instance", "msg", "cursor", "id", "host", "program"})


def client() -> LogsClient:
    """The logs service, called with the signed-in user's token for it (`league login`)."""
    from ._session import access_token

    home = state_home()
    return LogsClient.from_home(home, token=lambda: access_token(home, "logs"))


def query_params(service: str | None, *, since: str | None, until: str | None, level: str | None,
                 grep: str | None, request: str | None, trace: str | None, user: str | None,
                 host: str | None, instance: str | None, limit: int) -> dict[str, str]:
    """The API's query parameters for the command's options, only those given."""
    given = {"service": service, "since": since, "until": until, "level": level, "q": grep,
             "request_id": request, "trace_id": trace, "user": user, "host": host, "instance": instance}
    params = {key: value for key, value in given.items() if value is not None}
    params["limit"] = str(limit)
    return params


def format_record(record: Mapping[str, Any]) -> str:
    """One line: time, level, where, message, then the other fields as key=value (rich markup)."""
    level = str(record.get("level", "info"))
    where = str(record.get("instance") or record.get("service") or "-")
    extra = " ".join(f"{key}={_value(value)}" for key, value in record.items() if key not in _SHOWN)
    text = (f"{escape(str(record.get('ts', '')))} {level.upper():<8} {escape(where)}: "
            f"{escape(str(record.get('msg', '')))}")
    if extra:
        text += f" [dim]{escape(extra)}[/dim]"
    style = LEVEL_STYLES.get(level, "")
    return f"[{style}]{text}[/{style}]" if style else text


def _value(value: Any) -> str:
    return value if isinstance(value, str) and " " not in value else json.dumps(value)


def _print(records: Iterable[Mapping[str, Any]], console: Console, as_json: bool) -> None:
    for record in records:
        if as_json:
            console.out(json.dumps(record, separators=(",", ":")), highlight=False)
        else:
            console.print(format_record(record), soft_wrap=True)


def run_logs(params: dict[str, str], console: Console, *, follow: bool, as_json: bool) -> int:
    logs = client()
    page = logs.search(params)
    records = page["records"]
    _print(reversed(records), console, as_json)
    if not follow:
        return 0
    after = records[0]["cursor"] if records else None
    tail_params = {key: value for key, value in params.items() if key not in ("limit", "since", "until")}
    try:
        for record in logs.follow(tail_params, after=after):
            _print([record], console, as_json)
    except KeyboardInterrupt:
        return 0
    return 0
