"""sevenleague: the whole micro-service eco-system around a small team's app.

Take giant steps, but step carefully: every capability is a real component (HAProxy,
Prometheus, supervisord, ...), rendered from one catalog, tested and explained.
"""

__version__ = "0.1.0"
