"""New services from a template that builds green as it is: `league new service NAME`.

Rendering is pure (a name in, file texts out) and writing is separate, as with every
renderer in sevenleague: the templates are tested without touching the disk, and the
writer never decides what a file says.
"""

from ._names import NAME_RULE, check_service_name, module_name
from ._service import render_catalog_entry, render_service, write_service

__all__ = [
    "NAME_RULE",
    "check_service_name",
    "module_name",
    "render_catalog_entry",
    "render_service",
    "write_service",
]
