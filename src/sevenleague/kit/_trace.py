"""W3C Trace Context (https://www.w3.org/TR/trace-context/): one trace id across every service.

A request arrives with a `traceparent` header (`00-<trace id>-<parent id>-<flags>`) or
without one. With a valid one, the request belongs to the caller's trace: its trace id
is kept, the caller's span becomes the parent, and the caller's `tracestate` travels on
unchanged. Without one, or with one that does not parse, the request starts a new trace
(and an incoming `tracestate` is dropped, as the specification requires: it belongs to
a trace this request is no longer part of). Either way the request gets a span id of its
own, the server span; calls made while answering it carry that span as their parent, so
a callee's request line names the span of the request that made the call.

The W3C format rather than a home-made header: OpenTelemetry and the tracing backends
speak it, so a trace started outside the eco-system continues through it, and one
started here can be followed by whatever is added later.

Flags: a new trace is `01` (sampled). The flag says the caller may have recorded the
trace, and the kit records every request (one log line each, with its trace id), so
`01` is true. A continued trace keeps the caller's sampled bit: the decision is the
caller's. This is version 00 (Level 1), whose only flag is `sampled`; other bits are
zeroed, as it requires.

Ids are cheap, because every request that comes without a trace needs two. They are cut
from batches of `os.urandom` (4 KiB per system call: 256 trace ids or 512 span ids) by C
code (`bytes.hex` with a separator, then `str.split`). Counted with callgrind, an id costs
about 1,000 instructions, its share of the batch included, against about 2,000 for
formatting `random.getrandbits` and 1,300 plus a system call for `os.urandom(8).hex()`;
no `uuid`. They come from the operating system's CSPRNG, not from `random`, which an app
may seed for its own reasons (every process would then make the same ids). A forked
worker starts with batches of its own, or it would hand out its parent's ids. Taking an
id is one `next()` on a list iterator, atomic under the GIL, so no two threads get the
same one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from typing import NamedTuple

TRACEPARENT = b"traceparent"
TRACESTATE = b"tracestate"
VERSION = "00"
SAMPLED = "01"
NOT_SAMPLED = "00"

# version, trace id, parent id, flags: lower-case hex only, as the specification says
_FIELDS = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_LENGTH = 55  # of a version 00 traceparent, and the least a later version can have
_INVALID_VERSION = "ff"
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
# the flags byte of a traceparent -> the flags passed on: version 00 knows only the sampled bit
_PASSED_FLAGS = {f"{n:02x}": SAMPLED if n & 1 else NOT_SAMPLED for n in range(256)}
_BATCH_BYTES = 4096  # of randomness per system call
_make = tuple.__new__  # a NamedTuple made without its generated (Python) __new__


class Traceparent(NamedTuple):
    """A parsed `traceparent`: whose trace, which span of the caller's, and its sampled flag."""

    trace_id: str
    parent_id: str
    flags: str


class TraceContext(NamedTuple):
    """The trace a request belongs to, and its own (server) span in it."""

    trace_id: str
    span_id: str
    parent_id: str | None  # the caller's span, when the request came with a traceparent
    flags: str
    tracestate: str | None  # the caller's, passed on unchanged

    @property
    def traceparent(self) -> str:
        """The header for a call made while answering this request: this span is its parent."""
        return f"{VERSION}-{self.trace_id}-{self.span_id}-{self.flags}"


def _batch(size: int) -> Iterator[str]:
    """Ids of `size` random bytes each, as lower-case hex; an all-zero one (which means "none") left out."""
    ids = os.urandom(_BATCH_BYTES).hex(" ", size).split()
    zero = "00" * size
    if zero in ids:  # one chance in 2**64 for a span id: checked here, where it costs nothing per id
        ids = [found for found in ids if found != zero]
    return iter(ids)


def _fresh_batches() -> None:
    global _traces, _spans
    _traces, _spans = _batch(16), _batch(8)


_traces: Iterator[str]
_spans: Iterator[str]
_fresh_batches()
os.register_at_fork(after_in_child=_fresh_batches)


def new_trace_id() -> str:
    """32 lower-case hex digits: 128 random bits, never all zeros."""
    global _traces
    found = next(_traces, None)
    if found is None:  # this batch is used up (or another thread just replaced it)
        _traces = _batch(16)
        found = next(_traces)
    return found


def new_span_id() -> str:
    """16 lower-case hex digits: 64 random bits, never all zeros."""
    global _spans
    found = next(_spans, None)
    if found is None:
        _spans = _batch(8)
        found = next(_spans)
    return found


def new_traceparent() -> str:
    """A `traceparent` that starts a new trace: for a call made outside any request."""
    return f"{VERSION}-{new_trace_id()}-{new_span_id()}-{SAMPLED}"


def parse_traceparent(value: bytes | str) -> Traceparent | None:
    """The caller's trace id, span id and sampled flag; None when the header is not usable.

    Version 00 is exactly `00-<32 hex>-<16 hex>-<2 hex>`. A later version (01 to fe) is read
    as far as those four fields go, and only when what follows them starts with a dash,
    as the specification asks; version ff, upper-case hex and all-zero ids are invalid.
    """
    found = _fields(value.decode("latin-1") if isinstance(value, bytes) else value)
    return None if found is None else _make(Traceparent, found)


def _fields(text: str) -> tuple[str, str, str] | None:
    """`parse_traceparent` as a plain tuple: what the request path needs, at less cost."""
    match = _FIELDS.match(text)
    if match is None:
        return None
    version, trace_id, parent_id, flags = match.groups()
    if len(text) > _LENGTH and (version == VERSION or text[_LENGTH] != "-"):
        return None
    if version == _INVALID_VERSION or trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    return trace_id, parent_id, _PASSED_FLAGS[flags]


def trace_from(headers: Iterable[tuple[bytes, bytes]]) -> TraceContext:
    """The trace of a request with these (ASGI) headers, and a new span id for it.

    Two `traceparent` headers are as good as none (which one would be the caller's?); several
    `tracestate` headers are one list, joined with commas as HTTP joins repeated headers.
    """
    parent: bytes | None = None
    state: bytes | None = None
    for name, value in headers:
        if name == TRACEPARENT:
            parent = value if parent is None else b""
        elif name == TRACESTATE:
            state = value if state is None else state + b"," + value
    # The request path is measured: an id straight from its batch (a call only when it is used
    # up), and the tuple made without the generated __new__: each a fraction of the plain way.
    span_id = next(_spans, None) or new_span_id()
    if parent is not None:
        found = _fields(parent.decode("latin-1"))
        if found is not None:
            trace_id, parent_id, flags = found
            return _make(TraceContext, (trace_id, span_id, parent_id, flags,
                                        state.decode("latin-1") if state else None))
    return _make(TraceContext, (next(_traces, None) or new_trace_id(), span_id, None, SAMPLED, None))
