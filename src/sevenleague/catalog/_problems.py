"""Everything that can be wrong in a catalog file, each said in one line.

A problem names the file (and line when it can be found), the key path, what was
expected and a hint. Validation collects all problems before reporting, so one run
shows every fix to make.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import LeagueError
from ._catalog import RESERVED_NAMES, host_agent_ports, instance_ports, machine_host
from ._model import NAME_RULE, CatalogSpec


@dataclass(frozen=True)
class Problem:
    key: str
    message: str
    hint: str = ""
    line: int | None = None

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        key = f" {self.key}:" if self.key else ""
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{where}:{key} {self.message}{hint}"


class CatalogError(LeagueError):
    """The catalog file cannot be used; `problems` says every reason, one line each."""

    exit_code = 2

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(self.lines()[0] if self.problems else f"{source}: invalid catalog")

    def lines(self) -> list[str]:
        return [p.render(self.source) for p in self.problems]


# --- key paths and line numbers -------------------------------------------------------


def key_path(loc: Iterable[Any]) -> str:
    """('services', 'hello', 'hosts', 0) -> 'services.hello.hosts[0]'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def locate(text: str, loc: Sequence[Any]) -> int | None:
    """Best-effort line of `loc` in the TOML text: the key's line, else its table's header."""
    parts = [str(p) for p in loc if not isinstance(p, int) and p != "[key]"]
    lines = text.splitlines()
    for depth in range(len(parts), 0, -1):
        header = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(map(re.escape, parts[:depth])) + r"\s*\]")
        for number, line in enumerate(lines, start=1):
            if not header.match(line):
                continue
            if depth == len(parts):
                return number
            key = re.compile(r"^\s*" + re.escape(parts[depth]) + r"\s*=")
            for offset, body in enumerate(lines[number:], start=number + 1):
                if body.lstrip().startswith("["):
                    break
                if key.match(body):
                    return offset
            return number
    if parts:
        key = re.compile(r"^\s*" + re.escape(parts[0]) + r"\s*=")
        for number, line in enumerate(lines, start=1):
            if line.lstrip().startswith("["):
                break
            if key.match(line):
                return number
    return None


# --- syntax ---------------------------------------------------------------------------

_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_TOML_TWICE = re.compile(r"Cannot (?:declare|overwrite a value) \(?(.*?)\)? twice")


def syntax_problem(error: tomllib.TOMLDecodeError) -> Problem:
    message = str(error)
    position = _TOML_POSITION.search(message)
    line = int(position.group(1)) if position else None
    message = _TOML_POSITION.sub("", message)
    twice = _TOML_TWICE.search(message)
    if twice or "Cannot overwrite a value" in message:
        name = twice.group(1).replace("'", "").replace(", ", ".") if twice else ""
        return Problem(
            name,
            "duplicate name: this key or table is defined twice",
            "each name may appear once; rename or merge the two definitions",
            line,
        )
    return Problem("", f"not valid TOML: {message[0].lower()}{message[1:]}", "see https://toml.io", line)


# --- schema ---------------------------------------------------------------------------


def _model_at(loc: Sequence[Any]) -> type[BaseModel] | None:
    """The model class that owns the last key of `loc`, to suggest the keys it allows."""
    model: Any = CatalogSpec
    for part in loc[:-1]:
        if part == "[key]":
            return None
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(str(part))
            if field is None:
                return None
            model = field.annotation
        elif getattr(model, "__origin__", None) is dict:
            model = model.__args__[1]
        elif getattr(model, "__origin__", None) is list:
            model = model.__args__[0]
        else:
            return None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _describe(value: Any) -> str:
    """How a wrong value reads in a message: its kind, and the value itself when it is short."""
    kinds = {str: "a string", bool: "a boolean", int: "an integer", float: "a number",
             list: "a list", dict: "a table"}
    kind = kinds.get(type(value), type(value).__name__)
    return kind if isinstance(value, dict | list) else f"{kind} {value!r}"


REFERENCE = "every key is described in docs/catalog.md"

_TYPE_HINTS = {
    "int_type": "write a whole number, e.g. 8080",
    "int_from_float": "write a whole number, e.g. 8080",
    "string_type": "write text in double quotes",
    "float_type": "write a number, e.g. 1.5",
    "bool_type": "write true or false, without quotes",
    "list_type": 'write a list in brackets, e.g. ["local"]',
    "dict_type": "write a table: [section] with key = value lines",
    "model_type": "write a table: [section] with key = value lines",
    "model_attributes_type": "write a table: [section] with key = value lines",
}

_EXPECTED = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "string_type": "a string",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": 'a list such as ["local"]',
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}


def _schema_problem(error: Any, text: str) -> Problem:
    loc = error["loc"]
    kind = error["type"]
    key = key_path(loc)
    line = locate(text, loc)
    value = error.get("input")
    ctx = error.get("ctx") or {}
    leaf = str(loc[-1]) if loc else ""

    if kind == "missing":
        return Problem(key, "required key is missing", f"add `{leaf} = ...` to this table", line)
    if kind == "extra_forbidden":
        model = _model_at(loc)
        allowed = sorted(model.model_fields) if model else []
        close = difflib.get_close_matches(leaf, allowed, n=1)
        if close:
            hint = f"did you mean `{close[0]}`?"
        else:
            hint = f"allowed keys here: {', '.join(allowed)}" if allowed else "remove it"
        return Problem(key, "unknown key", hint, line)
    if kind in _EXPECTED:
        if isinstance(value, str) and value.strip().isdigit():
            hint = "write numbers without quotes"
        else:
            hint = _TYPE_HINTS.get(kind, REFERENCE)
        return Problem(key, f"expected {_EXPECTED[kind]}, got {_describe(value)}", hint, line)
    if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
        sign = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=",
                "less_than": "<"}[kind]
        limit = next(iter(ctx.values()))
        hint = "every service runs at least one instance" if leaf == "instances" else REFERENCE
        if leaf.endswith("port"):
            hint = "ports are 1 to 65535"
        if leaf.endswith("size"):
            hint = 'sizes are counted in bytes here; write at least "1MiB"'
        return Problem(key, f"expected a number {sign} {limit}, got {value!r}", hint, line)
    if kind == "string_pattern_mismatch":
        if error["loc"][-1] == "[key]" or leaf in {"name", "hosts", "host"} or isinstance(loc[-1], int):
            return Problem(key, f"{value!r} is not a valid name", NAME_RULE, line)
        if leaf == "app":
            return Problem(key, f"expected \"module:attribute\", got {value!r}", 'e.g. "hello.app:app"', line)
        return Problem(key, f"{value!r} must start with '/'", "paths are absolute, e.g. \"/\"", line)
    if kind == "literal_error":
        return Problem(key, f"expected {ctx.get('expected')}, got {value!r}", REFERENCE, line)
    if kind in {"too_short", "too_long"}:
        return Problem(key, error["msg"].lower(),
                       "list at least one host name" if leaf == "hosts" else REFERENCE, line)
    if kind == "value_error":
        message = str(ctx.get("error", error["msg"]))
        hint = REFERENCE
        if "duration" in message:
            hint = "units are ms, s, m, h and d"
        elif "size" in message:
            hint = "units are B, kB, MB, GB, TB (powers of 1000) and KiB, MiB, GiB, TiB (powers of 1024)"
        return Problem(key, message, hint, line)
    return Problem(key, error["msg"], REFERENCE, line)


def schema_problems(error: ValidationError, text: str) -> list[Problem]:
    return [_schema_problem(e, text) for e in error.errors(include_url=False)]


# --- cross references -----------------------------------------------------------------


def reference_problems(spec: CatalogSpec, text: str) -> list[Problem]:
    """Names that point nowhere, names the eco-system reserves, routes used twice."""
    problems: list[Problem] = []
    known = sorted(spec.hosts)

    def check_host(name: str, loc: tuple[Any, ...]) -> None:
        if name not in spec.hosts:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean `{close[0]}`?" if close else f"known hosts: {', '.join(known)}"
            problems.append(Problem(key_path(loc), f"unknown host {name!r}", hint, locate(text, loc)))

    placed: dict[str, str] = {}
    for env_name, env in spec.environments.items():
        for i, host in enumerate(env.hosts):
            check_host(host, ("environments", env_name, "hosts", i))
            if host in placed and placed[host] != env_name:
                problems.append(Problem(
                    key_path(("environments", env_name, "hosts", i)),
                    f"host {host!r} is in environments.{placed[host]} already",
                    "a host belongs to one environment: a deploy to one must not touch the other",
                    locate(text, ("environments", env_name, "hosts", i))))
            placed.setdefault(host, env_name)
        source = env.promote_from
        if source is not None and (source == env_name or source not in spec.environments):
            others = sorted(set(spec.environments) - {env_name})
            problems.append(Problem(
                f"environments.{env_name}.promote_from",
                "an environment cannot promote from itself" if source == env_name
                else f"unknown environment {source!r}",
                f"environments: {', '.join(others) or '(no other environment)'}",
                locate(text, ("environments", env_name, "promote_from"))))
    for section in ("edge", "prometheus", "alertmanager", "builds", "identity", "deploy", "logs"):
        check_host(getattr(spec, section).host, (section, "host"))
    routes: dict[str, str] = {}
    for name, service in spec.services.items():
        for i, host in enumerate(service.hosts):
            check_host(host, ("services", name, "hosts", i))
        if name in RESERVED_NAMES:
            problems.append(Problem(
                f"services.{name}", f"the name {name!r} is taken by the eco-system itself",
                f"rename the service; reserved: {', '.join(sorted(RESERVED_NAMES))}",
                locate(text, ("services", name)),
            ))
        if service.route in routes:
            problems.append(Problem(
                f"services.{name}.route",
                f"duplicate route {service.route!r}: services.{routes[service.route]} has it already",
                "give each service its own path prefix", locate(text, ("services", name, "route")),
            ))
        routes.setdefault(service.route, name)
        for i, callee in enumerate(service.calls):
            if callee == name or callee not in spec.services:
                others = sorted(set(spec.services) - {name})
                close = difflib.get_close_matches(callee, others, n=1)
                hint = (f"did you mean `{close[0]}`?" if close
                        else f"services it can call: {', '.join(others) or '(no other service)'}")
                what = ("a service cannot call itself this way" if callee == name
                        else f"unknown service {callee!r}")
                problems.append(Problem(f"services.{name}.calls[{i}]", what, hint,
                                        locate(text, ("services", name, "calls", i))))
    return problems


def port_problems(spec: CatalogSpec, text: str) -> list[Problem]:
    """Two things listening on one port of one host."""
    problems: list[Problem] = []
    taken: dict[tuple[str, int], str] = {}

    def claim(host: str, port: int, owner: str, loc: tuple[Any, ...], hint: str) -> None:
        address = spec.hosts[host].address if host in spec.hosts else host
        other = taken.get((address, port))
        if other is not None:
            problems.append(Problem(
                key_path(loc), f"port {port} clashes with {other} on host {host!r}", hint,
                locate(text, loc),
            ))
        else:
            taken[(address, port)] = owner

    claim(spec.edge.host, spec.edge.port, "edge.port", ("edge", "port"), "pick a free port")
    claim(spec.edge.host, spec.edge.stats_port, "edge.stats_port", ("edge", "stats_port"),
          "pick a free port")
    if spec.edge.http_port is not None:
        claim(spec.edge.host, spec.edge.http_port, "edge.http_port", ("edge", "http_port"),
              "pick a free port")
    claim(spec.prometheus.host, spec.prometheus.port, "prometheus.port", ("prometheus", "port"),
          "pick a free port")
    claim(spec.alertmanager.host, spec.alertmanager.port, "alertmanager.port",
          ("alertmanager", "port"), "pick a free port")
    claim(spec.builds.host, spec.builds.port, "builds.port", ("builds", "port"), "pick a free port")
    claim(spec.identity.host, spec.identity.port, "identity.port", ("identity", "port"), "pick a free port")
    claim(spec.deploy.host, spec.deploy.port, "deploy.port", ("deploy", "port"), "pick a free port")
    claim(spec.logs.host, spec.logs.port, "logs.port", ("logs", "port"), "pick a free port")
    machine = machine_host(spec)
    if machine is not None:  # the agent and the node exporter run once, on this machine
        claim(machine, spec.logs.agent_port, "logs.agent_port", ("logs", "agent_port"), "pick a free port")
        claim(machine, spec.hosts[machine].node_exporter_port, f"hosts.{machine}.node_exporter_port",
              ("hosts", machine, "node_exporter_port"), "pick a free port")
        for host, port in host_agent_ports(spec).items():  # and one agent per ssh host, next to it
            claim(machine, port, f"logs.agent_port (the agent of ssh host {host} on {port})",
                  ("logs", "agent_port"), "the agents of the ssh hosts listen on agent_port + 1, + 2, ... "
                  "in host name order: move agent_port to a free range")
    for name, host_spec in spec.hosts.items():  # an ssh host's packaged exporter, beside its instances
        if host_spec.driver == "ssh":
            claim(name, host_spec.node_exporter_port, f"hosts.{name}.node_exporter_port",
                  ("hosts", name, "node_exporter_port"), "pick a port no instance on that host uses")
    for name, service in spec.services.items():
        for i, port in enumerate(instance_ports(service)):
            host = service.hosts[i % len(service.hosts)]
            first, last = service.port, service.port + service.instances - 1
            span = f"ports {first} to {last}" if last > first else f"port {first}"
            claim(host, port, f"services.{name}.port (instance {name}-{i + 1} on {port})",
                  ("services", name, "port"),
                  f"the {service.instances} instances of {name} use {span}; move them to a free range")
    return problems


def offset_problems(spec: CatalogSpec, offset: int) -> list[Problem]:
    highest = max(
        [spec.edge.port, spec.edge.stats_port, spec.edge.http_port or 0, spec.prometheus.port,
         spec.alertmanager.port, spec.builds.port,
         spec.identity.port, spec.deploy.port, spec.logs.port, spec.logs.agent_port,
         *host_agent_ports(spec).values()]
        + [h.node_exporter_port for h in spec.hosts.values() if h.driver == "local"]
        + [max(instance_ports(s)) for s in spec.services.values()]
    )
    if offset < 0 or highest + offset > 65535:
        return [Problem(
            "LEAGUE_PORT_OFFSET", f"offset {offset} puts port {highest} at {highest + offset}",
            f"use an offset from 0 to {65535 - highest}",
        )]
    return []


def source_name(path: Path) -> str:
    """How the file is named in messages: relative to the working directory when it can be."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
