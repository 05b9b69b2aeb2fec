"""The host agent: one per machine, it ships every program's log lines to the logs service.

It follows supervisord's program logs (`P.log` and its rotations) or the systemd journal,
turns each line into a record with an id naming its place (so a line sent twice is stored
once), ships batches to the logs service, and moves its on-disk checkpoint only past what
the logs service acknowledged: at least once, never lost, duplicates dropped by id. It also
exports what supervisord says about each program as metrics. The service is
`sevenleague.agent.service:app`; public names resolve lazily (see `.._lazy`).
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "AgentError": "._settings",
    "AgentSettings": "._settings",
    "FileFollower": "._follow",
    "FilePosition": "._follow",
    "JournalSource": "._journal",
    "Pipeline": "._pipeline",
    "journal_record": "._journal",
    "line_record": "._records",
}
__all__ = [
    "AgentError",
    "AgentSettings",
    "FileFollower",
    "FilePosition",
    "JournalSource",
    "Pipeline",
    "journal_record",
    "line_record",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ._follow import FileFollower, FilePosition
    from ._journal import JournalSource, journal_record
    from ._pipeline import Pipeline
    from ._records import line_record
    from ._settings import AgentError, AgentSettings
