"""Central log management: the logs service stores every process' log records and finds them again.

`SqliteLogStore` (the default) keeps them in SQLite segments with a full-text index;
`LogStore` is the interface any other store implements. `parse_query` turns query
parameters into a `LogQuery`, refusing a bad one with a `BadQuery` that says why.
"""

from ._query import BadQuery, LogQuery, parse_query, parse_time
from ._records import BadBatch, StoredRecord, TimestampParser, parse_batch
from ._store import IngestResult, LogStore, Page, SqliteLogStore, StoreStats

__all__ = [
    "BadBatch",
    "BadQuery",
    "IngestResult",
    "LogQuery",
    "LogStore",
    "Page",
    "SqliteLogStore",
    "StoreStats",
    "StoredRecord",
    "TimestampParser",
    "parse_batch",
    "parse_query",
    "parse_time",
]
