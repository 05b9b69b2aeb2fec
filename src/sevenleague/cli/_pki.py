"""`league pki status`: every certificate of the eco-system with its expiry.

Reads only the files under `$LEAGUE_HOME/pki/`, so it answers while the eco-system
is down. Exit 0 when nothing has expired, 1 when something has, 3 when there is no
PKI yet.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..pki import CertInfo, certificate_inventory

NO_PKI = 3
_STATE_STYLE = {"ok": "green", "renew-due": "yellow", "expired": "red"}


def format_remaining(remaining: timedelta) -> str:
    """Two units are enough to read at a glance: `23h 59m`, `89d 23h`, `expired 2h 5m ago`."""
    seconds = int(abs(remaining.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        text = f"{days}d {hours}h"
    elif hours:
        text = f"{hours}h {minutes}m"
    else:
        text = f"{minutes}m {seconds}s"
    return f"expired {text} ago" if remaining.total_seconds() < 0 else text


def common_name(subject: str) -> str:
    """The CN alone: the organisation is the same on every internal certificate."""
    for part in subject.split(","):
        if part.startswith("CN="):
            return part[3:]
    return subject


def inventory_table(certificates: list[CertInfo], pki_dir: Path) -> Table:
    table = Table(title=f"certificates in {pki_dir}", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("kind")
    table.add_column("subject CN")
    table.add_column("SANs", overflow="fold")
    table.add_column("not after (UTC)")
    table.add_column("remaining", no_wrap=True)
    table.add_column("state", no_wrap=True)
    for cert in certificates:
        sans = ", ".join((*cert.dns_names, *cert.ips)) or "-"
        style = _STATE_STYLE.get(cert.state, "")
        table.add_row(cert.name, cert.kind, common_name(cert.subject), sans,
                      f"{cert.not_after:%Y-%m-%d %H:%M}", format_remaining(cert.remaining),
                      f"[{style}]{cert.state}[/{style}]")
    return table


def run_pki_status(home: Path, console: Console, as_json: bool) -> int:
    pki_dir = home / "pki"
    certificates = certificate_inventory(pki_dir, datetime.now(UTC))
    code = 1 if any(c.state == "expired" for c in certificates) else 0 if certificates else NO_PKI
    if as_json:
        report = {"pki": str(pki_dir), "certificates": [c.to_json() for c in certificates]}
        print(json.dumps(report, indent=2))
        return code
    if not certificates:
        console.print(f"no PKI in {pki_dir} yet; `league up` creates it")
        return code
    console.print(inventory_table(certificates, pki_dir))
    return code
