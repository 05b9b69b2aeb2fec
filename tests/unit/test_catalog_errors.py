"""Every kind of bad ecosystem.toml: one line naming file, line, key, what and a hint; exit 2."""

from __future__ import annotations

import pytest

from sevenleague.catalog import CatalogError, load_catalog
from sevenleague.cli import main

from ..conftest import MINIMAL_CATALOG

CASES = {
    "unknown key": (
        MINIMAL_CATALOG.replace("instances = 2", "instancs = 2"),
        [
            "ecosystem.toml:20: services.hello.instances: required key is missing "
            "(hint: add `instances = ...` to this table)",
            "ecosystem.toml:22: services.hello.instancs: unknown key (hint: did you mean `instances`?)",
        ],
    ),
    "wrong type": (
        MINIMAL_CATALOG.replace("port = 8080", 'port = "8080"'),
        ["ecosystem.toml:11: edge.port: expected an integer, got a string '8080' "
         "(hint: write numbers without quotes)"],
    ),
    "wrong type for a list": (
        MINIMAL_CATALOG.replace('hosts = ["local"]\n\n[edge]', 'hosts = "local"\n\n[edge]'),
        ["ecosystem.toml:8: environments.dev.hosts: expected a list such as [\"local\"], "
         "got a string 'local' (hint: write a list in brackets, e.g. [\"local\"])"],
    ),
    "port clash": (
        MINIMAL_CATALOG.replace("port = 8001", "port = 8079"),
        ["ecosystem.toml:23: services.hello.port: port 8080 clashes with edge.port on host 'local' "
         "(hint: the 2 instances of hello use ports 8079 to 8080; move them to a free range)"],
    ),
    "duplicate name": (
        MINIMAL_CATALOG + '\n[services.hello]\napp = "x:y"\n',
        ["ecosystem.toml:26: services.hello: duplicate name: this key or table is defined twice "
         "(hint: each name may appear once; rename or merge the two definitions)"],
    ),
    "instance count below one": (
        MINIMAL_CATALOG.replace("instances = 2", "instances = 0"),
        ["ecosystem.toml:22: services.hello.instances: expected a number >= 1, got 0 "
         "(hint: every service runs at least one instance)"],
    ),
    "unknown host": (
        MINIMAL_CATALOG.replace('port = 8001\nhosts = ["local"]', 'port = 8001\nhosts = ["locl"]'),
        ["ecosystem.toml:24: services.hello.hosts[0]: unknown host 'locl' "
         "(hint: did you mean `local`?)"],
    ),
    "unknown host of an environment": (
        MINIMAL_CATALOG.replace('[environments.dev]\nhosts = ["local"]',
                                '[environments.dev]\nhosts = ["far-away"]'),
        ["ecosystem.toml:8: environments.dev.hosts[0]: unknown host 'far-away' "
         "(hint: known hosts: local)"],
    ),
    "reserved name": (
        MINIMAL_CATALOG.replace("[services.hello]", "[services.prometheus]"),
        ["ecosystem.toml:20: services.prometheus: the name 'prometheus' is taken by the eco-system "
         "itself (hint: rename the service; reserved: agent, alertmanager, builds, deploy, edge, haproxy, "
         "identity, league, logs, node, node-exporter, prometheus, renewer, show, source, supervisord)"],
    ),
    "invalid name": (
        MINIMAL_CATALOG.replace("[services.hello]", "[services.Hello_World]"),
        ["ecosystem.toml:20: services.Hello_World: 'Hello_World' is not a valid name "
         "(hint: names use lowercase letters, digits and '-', start with a letter, "
         "at most 32 characters)"],
    ),
    "bad duration": (
        MINIMAL_CATALOG.replace("port = 9090", 'port = 9090\nscrape_interval = "often"'),
        ["ecosystem.toml:16: prometheus.scrape_interval: expected a duration such as \"500ms\", "
         "\"5s\" or \"1m\", got 'often' (hint: units are ms, s, m, h and d)"],
    ),
    "missing section": (
        MINIMAL_CATALOG.replace("[alertmanager]\nport = 9093\n", ""),
        ["ecosystem.toml: alertmanager: required key is missing "
         "(hint: add `alertmanager = ...` to this table)"],
    ),
    "not TOML": (
        MINIMAL_CATALOG.replace("port = 8080", "port = = 8080"),
        ["ecosystem.toml:11: not valid TOML: invalid value (hint: see https://toml.io)"],
    ),
    "duplicate route": (
        MINIMAL_CATALOG + '\n[services.world]\napp = "w:app"\ninstances = 1\nport = 8100\n'
        'hosts = ["local"]\n',
        ["ecosystem.toml:26: services.world.route: duplicate route '/': services.hello has it "
         "already (hint: give each service its own path prefix)"],
    ),
    "bad size": (
        MINIMAL_CATALOG + '\n[logs]\nmax_size = "1G"\n',
        ["ecosystem.toml:27: logs.max_size: expected a size such as \"1GiB\" or \"500MB\", got '1G' "
         "(hint: units are B, kB, MB, GB, TB (powers of 1000) and KiB, MiB, GiB, TiB (powers of 1024))"],
    ),
    "size too small": (
        MINIMAL_CATALOG + '\n[logs]\nmax_size = "64kB"\n',
        ["ecosystem.toml:27: logs.max_size: expected a number >= 1048576, got 64000 "
         "(hint: sizes are counted in bytes here; write at least \"1MiB\")"],
    ),
    "the logs service on a taken port": (
        MINIMAL_CATALOG + '\n[logs]\nport = 9090\n',
        ["ecosystem.toml:27: logs.port: port 9090 clashes with prometheus.port on host 'local' "
         "(hint: pick a free port)"],
    ),
    "the node exporter on a taken port": (
        MINIMAL_CATALOG.replace('address = "127.0.0.1"', 'address = "127.0.0.1"\nnode_exporter_port = 8002'),
        ["ecosystem.toml:24: services.hello.port: port 8002 clashes with hosts.local.node_exporter_port "
         "on host 'local' (hint: the 2 instances of hello use ports 8001 to 8002; move them to a free "
         "range)"],
    ),
    "an ssh host's node exporter on an instance's port": (
        MINIMAL_CATALOG.replace('[environments.dev]', '[hosts.far]\ndriver = "ssh"\naddress = "10.0.0.7"\n'
                                'node_exporter_port = 8001\n\n[environments.dev]')
        .replace('port = 8001\nhosts = ["local"]', 'port = 8001\nhosts = ["far"]'),
        ["ecosystem.toml:28: services.hello.port: port 8001 clashes with hosts.far.node_exporter_port "
         "on host 'far' (hint: the 2 instances of hello use ports 8001 to 8002; move them to a free "
         "range)"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_catalog_is_reported_one_line_per_problem(case, write_catalog, monkeypatch):
    text, expected = CASES[case]
    path = write_catalog(text)
    monkeypatch.chdir(path.parent)
    with pytest.raises(CatalogError) as raised:
        load_catalog(path)
    assert raised.value.lines() == expected
    assert raised.value.exit_code == 2


def test_every_kind_of_problem_comes_with_a_hint():
    assert all("(hint: " in line for _, lines in CASES.values() for line in lines)


@pytest.mark.parametrize("case", ["unknown key", "port clash", "unknown host"])
def test_league_validate_prints_the_lines_and_exits_2(case, write_catalog, monkeypatch, capsys):
    text, expected = CASES[case]
    path = write_catalog(text)
    monkeypatch.chdir(path.parent)
    with pytest.raises(SystemExit) as exited:
        main(["validate", "ecosystem.toml"])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"league: {line}" for line in expected]
    assert "Traceback" not in captured.err + captured.out


def test_missing_file_says_how_to_point_at_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["validate"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        "league: ecosystem.toml: no such file (hint: run from the project root or pass --catalog FILE)\n")


def test_port_offset_beyond_the_last_port_is_refused(write_catalog):
    with pytest.raises(CatalogError) as raised:
        load_catalog(write_catalog(MINIMAL_CATALOG), port_offset=60000)
    assert raised.value.lines()[-1].endswith(
        "LEAGUE_PORT_OFFSET: offset 60000 puts port 9610 at 69610 (hint: use an offset from 0 to 55925)")


def test_valid_catalog_validates(write_catalog, monkeypatch, capsys):
    path = write_catalog(MINIMAL_CATALOG)
    monkeypatch.chdir(path.parent)
    with pytest.raises(SystemExit) as exited:
        main(["validate"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == (
        "ecosystem.toml: valid (1 service, 2 instances, 1 host, 1 environment)\n")
