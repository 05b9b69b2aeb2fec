"""Log records as a busy eco-system's agents ship them, for measuring the logs service.

The records look like what the logs service receives in production: the kit's request
lines (see kit/_ledger.py), HAProxy's edge lines (proxy/_haproxy_cfg.py LOG_FORMAT), and
application lines with varied messages, some warnings and errors with a Python
traceback; each with the fields the agent adds (`id`, `host`, `program`, `service`,
`instance`). A request runs through the edge and one or two services, so its request id
is on 2 to 5 lines of different services, written close together in time. Levels are
info-heavy, times are spread evenly over `span` seconds ending at `end`.

Everything comes from one seeded `random.Random`: the same parameters give the same
lines, byte for byte, so a large corpus can be written once and reused, and grep reads
the very lines the service stored. A few facts are planted so that a measurement knows
the answer to its searches: a rare word on exactly `RARE_COUNT` lines, a word on the
last line only, and one whole request (its id and its records' ids) in the middle.

`post_batches` sends pre-compressed batches to a running logs service from concurrent
clients, each on one persistent connection, and notes when each batch was acknowledged.
"""

from __future__ import annotations

import gzip
import http.client
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

CORPUS_VERSION = 1  # bump when the lines change, so cached corpora are written again
RARE_TERM = "quokkafjord"
RARE_COUNT = 10
LAST_TERM = "lastbatchbeacon"
BATCH_LINES = 5000
GZIP_LEVEL = 6  # what the agent uses (agent/_pipeline.py)
NDJSON_HEADERS = {"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}

HOSTS = ("h1", "h2", "h3")
EDGE_HOST = "h1"
# service: (instances, routes as (method, route template)); the edge is not among them
SERVICES: dict[str, tuple[int, tuple[tuple[str, str], ...]]] = {
    "identity": (1, (("POST", "/oauth/token"), ("GET", "/.well-known/jwks.json"),
                     ("GET", "/api/users/{user}"), ("POST", "/login"))),
    "deploy": (1, (("GET", "/api/releases"), ("POST", "/api/deploys"), ("GET", "/api/deploys/{deploy_id}"))),
    "builds": (1, (("POST", "/api/builds"), ("GET", "/api/builds/{build_id}"),
                   ("GET", "/api/builds/{build_id}/log"))),
    "logs": (1, (("POST", "/api/records"), ("GET", "/api/records"), ("GET", "/api/tail"))),
    "hello": (3, (("GET", "/"), ("GET", "/whoami"), ("GET", "/api/greetings/{name}"))),
    "shop": (4, (("GET", "/api/products"), ("GET", "/api/products/{sku}"), ("POST", "/api/orders"),
                 ("GET", "/api/orders/{order_id}"))),
    "cart": (3, (("GET", "/api/cart"), ("POST", "/api/cart/items"), ("DELETE", "/api/cart/items/{sku}"))),
    "payments": (2, (("POST", "/api/payments"), ("GET", "/api/payments/{payment_id}"))),
    "search": (3, (("GET", "/api/search"), ("GET", "/api/suggest"))),
    "notify": (2, (("POST", "/api/notifications"), ("GET", "/api/notifications"))),
    "inventory": (2, (("GET", "/api/stock/{sku}"), ("POST", "/api/reservations"))),
}
PLATFORM = ("identity", "deploy", "builds", "logs")  # one instance each, program = service name
# How often each service is the first one a request reaches, after the edge.
ENTRY_WEIGHTS = {"identity": 8, "deploy": 1, "builds": 1, "logs": 6, "hello": 10, "shop": 25, "cart": 14,
                 "payments": 5, "search": 18, "notify": 4, "inventory": 8}
DOWNSTREAM = {"shop": ("inventory", "payments", "identity", "search"), "cart": ("inventory", "shop"),
              "payments": ("notify", "identity"), "deploy": ("builds",), "builds": ("logs",),
              "search": ("inventory",), "hello": ("identity",), "notify": ("identity",),
              "identity": ("notify",), "inventory": ("notify",), "logs": ("identity",)}
BACKGROUND_ONLY = ("agent",)  # services that log but serve no request here
USERS = tuple(f"{name}{n}" for name in ("ada", "bo", "chen", "dana", "eli", "fatima", "gus", "hana", "ivo",
                                         "jun", "kofi", "lea", "mo", "noor", "omar", "pia", "quinn", "raj",
                                         "sam", "tove") for n in range(40))
CLIENTS = ("console", "cli", "shop-web", "mobile")
WORDS = ("alpha", "bravo", "cobalt", "delta", "ember", "fjord", "garnet", "harbor", "indigo", "jade",
         "kelp", "lumen", "maple", "nickel", "onyx", "pebble", "quartz", "russet", "sable", "topaz",
         "umber", "violet", "willow", "xenon", "yarrow", "zinc")
TABLES = ("orders", "products", "carts", "payments", "users", "stock", "releases", "builds", "sessions")
ERRORS = ("ConnectTimeout", "ReadTimeout", "RemoteProtocolError", "ConnectionResetError", "HTTPStatusError")
EXCEPTIONS = (("KeyError", "'sku-{n}'"), ("ValueError", "invalid literal for int() with base 10: '{w}'"),
              ("sqlite3.OperationalError", "database is locked"),
              ("httpx.ReadTimeout", "timed out after 5.0 s calling {svc}"),
              ("PermissionError", "[Errno 13] Permission denied: '/srv/{svc}/data/{w}.json'"),
              ("ZeroDivisionError", "division by zero"))
FUNCTIONS = ("handle", "place_order", "reserve", "charge", "render", "lookup", "settle", "dispatch",
             "refresh")

SERVICE_NAMES = tuple(SERVICES)
OTHERS = {name: tuple(s for s in (*SERVICES, "edge") if s != name) for name in (*SERVICES, *BACKGROUND_ONLY)}
R = random.Random
_Message = Callable[[R, str], str]


def _sku(rng: R) -> str:
    return f"sku-{rng.randrange(20000):05d}"


def _hex(rng: R, digits: int) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


def _uuid(rng: R) -> str:
    h = _hex(rng, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def _inode(rng: R) -> int:
    return rng.randrange(10**6, 10**7)


def _other(rng: R, svc: str) -> str:
    return rng.choice(OTHERS[svc])


# Application messages by level; each a function of (rng, service).
MESSAGES: dict[str, tuple[_Message, ...]] = {
    "debug": (
        lambda r, s: f"SQL {r.choice(TABLES)} lookup by id took {r.randrange(1, 40)} ms",
        lambda r, s: f"upstream {_other(r, s)} answered {r.choice((200, 200, 204, 404))} in "
                     f"{r.randrange(2, 300)} ms",
        lambda r, s: f"feature flag {r.choice(WORDS)}-{r.choice(WORDS)} is {r.choice(('on', 'off'))} "
                     f"for {r.choice(USERS)}",
        lambda r, s: f"cache hit for {r.choice(TABLES)}:{r.randrange(100000)}",
    ),
    "info": (
        lambda r, s: f"order {r.randrange(10**6, 10**7)} placed: {r.randrange(1, 9)} items, total "
                     f"{r.randrange(5, 900)}.{r.randrange(100):02d} EUR",
        lambda r, s: f"cache miss for {r.choice(TABLES)}:{r.randrange(100000)}; loaded in "
                     f"{r.randrange(1, 80)} ms",
        lambda r, s: f"user {r.choice(USERS)} signed in from 10.{r.randrange(256)}.{r.randrange(256)}."
                     f"{r.randrange(1, 255)}",
        lambda r, s: f"build {r.randrange(1, 5000)} of {r.choice(SERVICE_NAMES)} finished: "
                     f"{r.choice(('passed', 'passed', 'passed', 'failed'))} in {r.randrange(20, 600)} s",
        lambda r, s: f"deploy {r.randrange(1, 900)} of {r.choice(SERVICE_NAMES)} to "
                     f"{r.choice(('staging', 'prod'))}: batch {r.randrange(1, 4)} of 3 switched",
        lambda r, s: f"sent {r.randrange(1, 50)} notifications by {r.choice(('mail', 'sms', 'push'))}",
        lambda r, s: f"reindexed {r.randrange(10, 5000)} products in {r.randrange(50, 4000)} ms",
        lambda r, s: f"reservation {r.randrange(10**5, 10**6)} holds {r.randrange(1, 5)} units of {_sku(r)}",
        lambda r, s: f"token issued to {r.choice(CLIENTS)} for audience {_other(r, s)}",
        lambda r, s: f"shipped {r.randrange(1, 5000)} records to logs ({r.randrange(1, 900)} KiB)",
        lambda r, s: f"worker {r.randrange(1, 9)} picked job {r.randrange(10**6)} from queue "
                     f"{r.choice(WORDS)}",
        lambda r, s: f"checkpoint saved after {r.randrange(100, 90000)} lines of {r.choice(SERVICE_NAMES)}",
    ),
    "warning": (
        lambda r, s: f"slow query on {r.choice(TABLES)}: {r.randrange(250, 5000)} ms (threshold 250 ms)",
        lambda r, s: f"retrying call to {_other(r, s)} after {r.choice(ERRORS)} "
                     f"(attempt {r.randrange(1, 4)} of 3)",
        lambda r, s: f"connection pool for {r.choice(TABLES)} is {r.randrange(80, 100)}% used",
        lambda r, s: f"token for {r.choice(CLIENTS)} expires in {r.randrange(1, 60)} s; refreshing",
        lambda r, s: f"disk /srv is {r.randrange(85, 99)}% full",
    ),
    "error": (
        lambda r, s: f"payment {r.randrange(10**6)} declined by provider: "
                     f"{r.choice(('insufficient funds', 'card expired', 'fraud suspected'))}",
        lambda r, s: f"call to {_other(r, s)} failed: {r.choice(ERRORS)}",
        lambda r, s: f"could not reserve {_sku(r)}: out of stock",
        lambda r, s: "unhandled exception while handling the request",
    ),
    "critical": (
        lambda r, s: f"database {r.choice(TABLES)} unreachable for {r.randrange(30, 300)} s: giving up",
    ),
}
APP_LEVELS = ("info",) * 75 + ("debug",) * 8 + ("warning",) * 10 + ("error",) * 6 + ("critical",)


def traceback_text(rng: R, svc: str) -> str:
    kind, template = rng.choice(EXCEPTIONS)
    function = rng.choice(FUNCTIONS)
    text = template.format(n=rng.randrange(20000), w=rng.choice(WORDS), svc=_other(rng, svc))
    return ("Traceback (most recent call last):\n"
            f'  File "/srv/{svc}/app/{rng.choice(WORDS)}.py", line {rng.randrange(20, 600)}, in {function}\n'
            f"    result = await {rng.choice(WORDS)}_{function}(request)\n"
            f'  File "/srv/{svc}/app/_{rng.choice(WORDS)}.py", line {rng.randrange(20, 600)}, in '
            f"{rng.choice(WORDS)}_{function}\n"
            f"    return {rng.choice(TABLES)}[key]\n"
            f"{kind}: {text}")


# --- the corpus ------------------------------------------------------------------------------


@dataclass
class CorpusFacts:
    """What the corpus is known to hold: the answers its searches must give."""

    lines: int = 0
    start: float = 0.0  # seconds since the epoch of the earliest record (about)
    end: float = 0.0
    rare_term: str = RARE_TERM
    rare_lines: int = 0
    last_term: str = LAST_TERM
    request_id: str = ""  # one whole request in the middle of the corpus
    request_record_ids: list[str] = field(default_factory=list)
    levels: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"lines": self.lines, "start": self.start, "end": self.end, "rare_term": self.rare_term,
                "rare_lines": self.rare_lines, "last_term": self.last_term, "request_id": self.request_id,
                "request_record_ids": self.request_record_ids, "levels": self.levels}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CorpusFacts:
        return cls(**data)


class _Program:
    """A program's log file as the agent reads it: the record id is the line's place in it."""

    __slots__ = ("host", "instance", "name", "offset", "prefix", "service")

    def __init__(self, host: str, name: str, service: str, instance: str, inode: int) -> None:
        self.host, self.name, self.service, self.instance = host, name, service, instance
        self.prefix = f"{host}/{name}/{inode}/"
        self.offset = 0

    def record(self, ts: str, fields: dict[str, Any]) -> bytes:
        record = {"id": self.prefix + str(self.offset), "ts": ts, "host": self.host, "program": self.name,
                  "service": self.service, "instance": self.instance, **fields}
        data = orjson.dumps(record)
        self.offset += len(data) - len(self.prefix) + 1  # about the line as the program wrote it
        return data


class LogCorpus:
    """`lines` records, oldest first (about), over `span` seconds ending at `end`; iterate to get them.

    `facts` is complete once the iteration is.
    """

    def __init__(self, lines: int, *, end: float, span: float = 86400.0, seed: int = 7) -> None:
        if lines < 200:
            raise ValueError("a corpus needs at least 200 lines to hold its planted facts")
        self.total = lines
        self.end = end
        self.span = span
        self.seed = seed
        self.facts = CorpusFacts(lines=lines, start=end - span, end=end)

    def parameters(self) -> dict[str, Any]:
        return {"version": CORPUS_VERSION, "lines": self.total, "end": self.end, "span": self.span,
                "seed": self.seed}

    def __iter__(self) -> Iterator[bytes]:
        rng = random.Random(self.seed)  # noqa: S311 - made-up data, the same every time
        programs = self._programs(rng)
        edge = _Program(EDGE_HOST, "haproxy", "edge", "edge", _inode(rng))
        entries = list(ENTRY_WEIGHTS)
        entry_weights = [ENTRY_WEIGHTS[s] for s in entries]
        everyone = [*SERVICES, *BACKGROUND_ONLY]
        stamps = _Stamps()
        total, start, span = self.total, self.end - self.span, self.span
        rare_at = [int((k + 0.5) * total / RARE_COUNT) for k in range(RARE_COUNT)]
        levels: Counter[str] = Counter()
        emitted = 0
        while emitted < total - 1:
            moment = start + span * emitted / total + rng.random() * 0.5
            if rare_at and emitted >= rare_at[0]:
                rare_at.pop(0)
                program = rng.choice(programs[rng.choice(everyone)])
                group = [program.record(stamps.kit(moment), {
                    "level": "warning", "logger": f"{program.service}.store",
                    "msg": f"checksum mismatch in {RARE_TERM} shard {rng.randrange(64)}; re-reading it"})]
                self.facts.rare_lines += 1
                levels["warning"] += 1
            elif rng.random() < 0.4:
                service = rng.choice(everyone)
                group = [self._app_line(rng, rng.choice(programs[service]), stamps.kit(moment), levels)]
            else:
                group, request_id = self._request(rng, programs, edge, moment, stamps, entries,
                                                  entry_weights, levels)
                if not self.facts.request_id and emitted >= total // 2 and emitted + len(group) < total - 1:
                    self.facts.request_id = request_id
                    self.facts.request_record_ids = [orjson.loads(line)["id"] for line in group]
            group = group[:total - 1 - emitted]
            emitted += len(group)
            yield from group
        program = programs["logs"][0]
        yield program.record(stamps.kit(self.end), {"level": "info", "logger": "logs.bench",
                                                    "msg": f"end of the corpus: {LAST_TERM}"})
        levels["info"] += 1
        self.facts.levels = dict(sorted(levels.items()))

    @staticmethod
    def _programs(rng: R) -> dict[str, list[_Program]]:
        programs: dict[str, list[_Program]] = {}
        for index, (service, (count, _)) in enumerate(SERVICES.items()):
            if service in PLATFORM:
                programs[service] = [_Program("h1", service, service, f"{service}-1", _inode(rng))]
            else:
                programs[service] = [_Program(HOSTS[(index + n) % len(HOSTS)], f"{service}-{n + 1}", service,
                                              f"{service}-{n + 1}", _inode(rng))
                                     for n in range(count)]
        for service in BACKGROUND_ONLY:
            programs[service] = [_Program(host, service, service, f"{service}-{host}", _inode(rng))
                                 for host in HOSTS]
        return programs

    @staticmethod
    def _app_line(rng: R, program: _Program, ts: str, levels: Counter[str],
                  request: dict[str, str] | None = None) -> bytes:
        level = rng.choice(APP_LEVELS)
        levels[level] += 1
        fields: dict[str, Any] = {"level": level, "logger": f"{program.service}.{rng.choice(FUNCTIONS)}",
                                  "msg": rng.choice(MESSAGES[level])(rng, program.service)}
        if request:
            fields.update(request)
        if level in ("error", "critical") and rng.random() < 0.6:
            fields["exception"] = traceback_text(rng, program.service)
        return program.record(ts, fields)

    def _request(self, rng: R, programs: dict[str, list[_Program]], edge: _Program, moment: float,
                 stamps: _Stamps, entries: list[str], weights: list[int],
                 levels: Counter[str]) -> tuple[list[bytes], str]:
        """One request: the lines of the services it went through, then the edge's, sharing its id."""
        request_id = _uuid(rng)
        traced = rng.random() < 0.5
        trace_id = _hex(rng, 32) if traced else None
        user = rng.choice(USERS) if rng.random() < 0.4 else None
        client = rng.choice(CLIENTS)
        service = rng.choices(entries, weights)[0]
        method, route = rng.choice(SERVICES[service][1])
        path = _path(rng, route)
        duration = rng.lognormvariate(2.5, 1.0)  # ms; median about 12 ms
        roll = rng.random()
        status = 500 if roll < 0.004 else 404 if roll < 0.034 else 401 if roll < 0.044 else \
            201 if method == "POST" else 200
        lines: list[tuple[float, bytes]] = []
        parent_span = None
        at = moment
        first = rng.choice(programs[service])
        front = (method, path, status, duration)  # what the edge saw
        for depth in range(2):
            program = first if depth == 0 else rng.choice(programs[service])
            inside: dict[str, str] = {"request_id": request_id}
            if trace_id:
                inside["trace_id"] = trace_id
            if rng.random() < 0.35:
                when = at + duration / 2000
                lines.append((when, self._app_line(rng, program, stamps.kit(when), levels, inside)))
            span_id = _hex(rng, 16)
            fields: dict[str, Any] = {"level": "error" if status >= 500 else "info", "msg": "request",
                                      "method": method, "route": route, "path": path, "status": status,
                                      "duration_ms": round(duration, 3), "request_id": request_id}
            if trace_id:
                fields.update(trace_id=trace_id, span_id=span_id)
                if parent_span:
                    fields["parent_id"] = parent_span
            if user:
                fields.update(user=user, client=client)
            levels[fields["level"]] += 1
            lines.append((at + duration / 1000, program.record(stamps.kit(at + duration / 1000), fields)))
            if depth == 1 or rng.random() > 0.3:
                break
            # the service called another one on the request's behalf, within its own time
            parent_span = span_id
            service = rng.choice(DOWNSTREAM[service])
            method, route = rng.choice(SERVICES[service][1])
            path = _path(rng, route)
            at += duration * rng.uniform(0.05, 0.2) / 1000
            duration *= rng.uniform(0.2, 0.7)
            status = 500 if status >= 500 else 201 if method == "POST" else 200
        lines.sort(key=lambda pair: pair[0])  # in the order they were written
        method, path, status, duration = front
        edge_ms = int(duration) + rng.randrange(1, 4)
        edge_fields = {"accept_ms": int(moment * 1000), "level": "info",
                       "client": f"10.0.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                       "backend": f"svc_{first.service}", "server": first.instance, "status": status,
                       "bytes": rng.randrange(120, 40000), "duration_ms": edge_ms, "method": method,
                       "path": path, "request_id": request_id, "retries": 0, "termination": "--"}
        levels["info"] += 1
        edge_line = edge.record(stamps.edge(moment + edge_ms / 1000), edge_fields)
        return [line for _, line in lines] + [edge_line], request_id


def _path(rng: R, route: str) -> str:
    if "{" not in route:
        return route + (f"?q={rng.choice(WORDS)}" if route.endswith(("search", "suggest")) else "")
    head, _, rest = route.partition("{")
    name, _, tail = rest.partition("}")
    value = {"sku": _sku(rng), "user": rng.choice(USERS), "name": rng.choice(WORDS)}.get(
        name, str(rng.randrange(1, 10**6)))
    return head + value + tail


class _Stamps:
    """Times as the kit writes them ("...T02:15:23.123Z") and as HAProxy does ("...T02:15:23Z")."""

    def __init__(self) -> None:
        self._seconds: dict[int, str] = {}
        self._millis = tuple(f".{ms:03d}Z" for ms in range(1000))

    def _second(self, whole: int) -> str:
        text = self._seconds.get(whole)
        if text is None:
            if len(self._seconds) > 100_000:
                self._seconds.clear()
            text = self._seconds[whole] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        return text

    def kit(self, moment: float) -> str:
        whole = int(moment)
        return self._second(whole) + self._millis[int((moment - whole) * 1000)]

    def edge(self, moment: float) -> str:
        return self._second(int(moment)) + "Z"


# --- sending it ----------------------------------------------------------------------------------


def gzip_batches(lines: Iterable[bytes], size: int = BATCH_LINES, level: int = GZIP_LEVEL) -> Iterator[
        tuple[bytes, int]]:
    """Lines (without their newline) as gzip NDJSON bodies of `size` lines, with each one's line count."""
    batch: list[bytes] = []
    for line in lines:
        batch.append(line)
        if len(batch) == size:
            yield gzip.compress(b"\n".join(batch) + b"\n", compresslevel=level), size
            batch = []
    if batch:
        yield gzip.compress(b"\n".join(batch) + b"\n", compresslevel=level), len(batch)


@dataclass
class IngestRun:
    """What sending batches took: acknowledged lines over time, and what the service answered."""

    seconds: float
    lines: int
    accepted: int
    duplicates: int
    statuses: dict[int, int]
    errors: list[str]
    timeline: list[tuple[float, int]]  # (seconds since the start, lines acknowledged so far)

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0

    def seconds_to(self, lines: int) -> float | None:
        """When `lines` lines were acknowledged, None if they never were."""
        return next((at for at, done in self.timeline if done >= lines), None)


def post_batches(url: str, bodies: Sequence[tuple[bytes, int]], *, clients: int = 2,
                 timeout: float = 300.0) -> IngestRun:
    """POST every body to `url`/api/records from `clients` threads, each on one persistent connection."""
    parts = urlsplit(url)
    lock = threading.Lock()
    state: dict[str, Any] = {"next": 0, "lines": 0, "accepted": 0, "duplicates": 0}
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    timeline: list[tuple[float, int]] = []
    started = time.perf_counter()

    def client() -> None:
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
        try:
            while True:
                with lock:
                    index = state["next"]
                    state["next"] += 1
                if index >= len(bodies):
                    return
                body, count = bodies[index]
                connection.request("POST", "/api/records", body=body, headers=NDJSON_HEADERS)
                response = connection.getresponse()
                answer = response.read()
                with lock:
                    statuses[response.status] += 1
                    if response.status == 200:
                        result = orjson.loads(answer)
                        state["accepted"] += result["accepted"]
                        state["duplicates"] += result["duplicates"]
                        state["lines"] += count
                        timeline.append((time.perf_counter() - started, state["lines"]))
                    elif len(errors) < 10:
                        errors.append(f"batch {index}: {response.status} {answer[:300]!r}")
        finally:
            connection.close()

    threads = [threading.Thread(target=client, name=f"ingest-client-{n}") for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    return IngestRun(seconds, state["lines"], state["accepted"], state["duplicates"], dict(statuses), errors,
                     timeline)


def metric_value(metrics_text: str, name: str) -> float | None:
    """A sample's value from a Prometheus text exposition (the first sample of that name, no labels)."""
    for line in metrics_text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None
