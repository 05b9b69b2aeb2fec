"""Durations as people write them in config files ("500ms", "5s", "1m", "2h", "15d").

The catalog keeps seconds as floats; renderers turn them back into each tool's own
spelling, so one value means the same thing to HAProxy, Prometheus and the kit.
"""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")


def parse_duration(text: object) -> float:
    """Seconds in `text`; raises ValueError naming the accepted spellings."""
    seconds = parse_wait(text)
    if seconds <= 0:
        raise ValueError(f"expected a duration above zero, got {text!r}")
    return seconds


def parse_wait(text: object) -> float:
    """`parse_duration` for a wait that may be skipped: "0s" is no wait at all."""
    if not isinstance(text, str):
        raise ValueError(f'expected a duration such as "500ms", "5s" or "1m", got {text!r}')
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f'expected a duration such as "500ms", "5s" or "1m", got {text!r}')
    return float(match.group(1)) * _UNITS[match.group(2)]


def format_duration(seconds: float) -> str:
    """The shortest exact spelling both HAProxy and Prometheus accept ("500ms", "5s", "2m")."""
    millis = round(seconds * 1000)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if millis % size == 0:
            return f"{millis // size}{unit}"
    return f"{millis}ms"
