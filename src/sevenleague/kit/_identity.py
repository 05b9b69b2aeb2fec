"""Who this process is: its service and instance names, set by whoever started it."""

from __future__ import annotations

import os
import socket

SERVICE_ENV = "LEAGUE_SERVICE"
INSTANCE_ENV = "LEAGUE_INSTANCE"


def instance_name() -> str:
    """This process' instance name: set by the supervisor (LEAGUE_INSTANCE), else the host name."""
    return os.environ.get(INSTANCE_ENV) or socket.gethostname()
