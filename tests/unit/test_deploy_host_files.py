"""The files a remote host needs to run an eco-system's instances, as pure functions.

Real systemd reads the same files in tests/integration/test_deploy_host_files.py.
"""

from __future__ import annotations

import inspect

import pytest
import yaml

from sevenleague.build import AptRepository
from sevenleague.deploy._host_files import (
    APT_COMPONENT,
    APT_SUITE,
    INSTANCE_ENV,
    NODE_EXPORTER_USER,
    TLS_BUNDLE_ENV,
    HostFile,
    apt_source_files,
    environment_assignment,
    instance_files,
    node_exporter_files,
)
from sevenleague.errors import UsageError
from sevenleague.kit._identity import INSTANCE_ENV as KIT_INSTANCE_ENV
from sevenleague.kit.serve import TLS_BUNDLE_ENV as SERVE_TLS_BUNDLE_ENV

KEYRING = b"\x99\x00\x33\x04binary-keyring"
CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
BUNDLE = (b"-----BEGIN PRIVATE KEY-----\nMC4C\n-----END PRIVATE KEY-----\n"
          b"-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n" + CA)
TRICKY = {
    "SPACES": "two words  and  more",
    "EDGES": "  leading and trailing  ",
    "SINGLE": "it's",
    "DOUBLE": 'say "hi"',
    "DOLLAR": "$HOME and ${LISTEN} and $$",
    "BACKSLASH": "a\\b\\\\c\\",
    "BACKTICK": "`date`",
    "JSON": '{"echo": "https://10.0.0.5:8443/echo", "ledger": "https://edge/ledger"}',
    "HASH": "#not a comment",
    "SEMICOLON": ";not a comment either",
    "SPECIFIER": "%i %n %%",
    "TAB": "a\tb",
    "EMPTY": "",
    "UNICODE": "héllo ☃",
    "EQUALS": "a=b=c",
}


def parse_environment_file(text: str) -> dict[str, str]:
    """systemd's EnvironmentFile= rules (src/basic/env-file.c), for the lines we write.

    Comments start a line with # or ;. Unquoted values drop surrounding whitespace and a
    backslash escapes any character; single quotes keep everything; in double quotes a
    backslash escapes only " \\ ` $ and is kept before anything else.
    """
    values: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.lstrip()
        if not stripped or stripped[0] in "#;":
            continue
        key, _, rest = stripped.partition("=")
        values[key.strip()] = _parse_value(rest.lstrip())
    return values


def _parse_value(rest: str) -> str:
    """After `=`: blanks skipped; quotes open only where a value (re)starts, as in systemd."""
    out: list[str] = []
    chomp: int | None = None  # where trailing unquoted blanks begin
    starting, i = True, 0
    while i < len(rest):
        character = rest[i]
        if starting and character in " \t":
            i += 1
        elif starting and character == "'":
            end = rest.index("'", i + 1)
            out += rest[i + 1:end]
            i = end + 1
        elif starting and character == '"':
            i = _parse_double_quoted(rest, i + 1, out)
        elif character == "\\":
            out.append(rest[i + 1])
            starting, chomp, i = False, None, i + 2
        else:
            if character not in " \t":
                chomp = None
            elif chomp is None:
                chomp = len(out)
            out.append(character)
            starting, i = False, i + 1
    return "".join(out if chomp is None else out[:chomp])


def _parse_double_quoted(rest: str, i: int, out: list[str]) -> int:
    while rest[i] != '"':
        if rest[i] == "\\":
            out.append(rest[i + 1] if rest[i + 1] in '"\\`$' else rest[i:i + 2])
            i += 2
        else:
            out.append(rest[i])
            i += 1
    return i + 1


def by_path(files: list[HostFile]) -> dict[str, HostFile]:
    return {item.path: item for item in files}


def hello_files(environment: dict[str, str] | None = None) -> list[HostFile]:
    return instance_files(
        "league-hello", "league-hello", "hello", "0.0.0.0",
        environment if environment is not None else {
            "LEAGUE_OIDC_ISSUER": "https://10.0.0.2:9100", "LEAGUE_CA_FILE": "/etc/sevenleague/ca.pem"},
        [("hello-1", 8001, BUNDLE), ("hello-2", 8002, BUNDLE)])


# --- apt ---------------------------------------------------------------------------------------


def test_apt_sources_name_the_repository_its_own_keyring_and_the_ca_for_its_host_only():
    files = apt_source_files("demo", "https://builds.example.org:9300/apt", KEYRING, CA)
    assert [item.path for item in files] == [
        "/etc/apt/sources.list.d/sevenleague-demo.sources",
        "/usr/share/keyrings/sevenleague-demo.gpg",
        "/etc/sevenleague/ca.pem",
        "/etc/apt/apt.conf.d/60sevenleague-demo",
    ]
    sources, keyring, ca, conf = files
    assert sources.content.decode() == (
        "Types: deb\n"
        "URIs: https://builds.example.org:9300/apt/\n"
        "Suites: stable\n"
        "Components: main\n"
        "Signed-By: /usr/share/keyrings/sevenleague-demo.gpg\n")
    assert keyring.content == KEYRING
    assert ca.content == CA
    assert conf.content.decode() == (
        "// The eco-system's apt repository is served with a certificate of its own CA:\n"
        "// trust that CA for this host, and for apt only (not the system trust store).\n"
        'Acquire::https::builds.example.org::CaInfo "/etc/sevenleague/ca.pem";\n')
    assert {(item.mode, item.owner, item.group) for item in files} == {(0o644, "root", "root")}


def test_the_apt_host_is_the_urls_host_without_port_and_in_lower_case():
    conf = apt_source_files("demo", "https://10.0.0.7/apt/", KEYRING, CA)[3].content.decode()
    assert 'Acquire::https::10.0.0.7::CaInfo "/etc/sevenleague/ca.pem";' in conf
    conf = apt_source_files("demo", "https://Builds.Example.ORG:9300/apt/", KEYRING, CA)[3].content.decode()
    assert "Acquire::https::builds.example.org::CaInfo" in conf


def test_the_suite_and_component_are_those_the_eco_systems_archive_serves():
    defaults = inspect.signature(AptRepository).parameters
    assert (defaults["suite"].default, defaults["component"].default) == (APT_SUITE, APT_COMPONENT)


@pytest.mark.parametrize(("ecosystem", "url", "keyring", "ca", "message"), [
    ("demo", "http://builds:9300/apt/", KEYRING, CA, "not one https URL"),
    ("demo", "https://builds:9300/apt/\nTypes: deb-src", KEYRING, CA, "not one https URL"),
    ("demo", "https://[::1]:9300/apt/", KEYRING, CA, "IPv6"),
    ("Demo", "https://builds/apt/", KEYRING, CA, "eco-system 'Demo' is not a valid name"),
    ("../x", "https://builds/apt/", KEYRING, CA, "not a valid name"),
    ("demo", "https://builds/apt/", b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n", CA, "armored"),
    ("demo", "https://builds/apt/", b"", CA, "not an OpenPGP keyring"),
    ("demo", "https://builds/apt/", KEYRING, b"not a pem", "CA is not a certificate"),
])
def test_bad_apt_inputs_are_usage_errors(ecosystem, url, keyring, ca, message):
    with pytest.raises(UsageError, match=message):
        apt_source_files(ecosystem, url, keyring, ca)


# --- instances ---------------------------------------------------------------------------------


def test_the_drop_in_adds_the_service_file_then_the_instance_file():
    drop_in = by_path(hello_files())["/etc/systemd/system/league-hello@.service.d/50-sevenleague.conf"]
    assert drop_in.content.decode() == (
        "# Added by sevenleague: the eco-system's settings for every league-hello@PORT instance.\n"
        "# systemd reads EnvironmentFile= in order, after the unit's own /etc/default/league-hello,\n"
        "# and a later assignment wins: the service's file, then the instance's own (%i is the\n"
        "# port; '-': an instance without one still starts).\n"
        "[Service]\n"
        "EnvironmentFile=/etc/sevenleague/env/league-hello.env\n"
        "EnvironmentFile=-/etc/sevenleague/env/league-hello-%i.env\n")
    assert (drop_in.mode, drop_in.owner, drop_in.group) == (0o644, "root", "root")


def test_the_service_file_holds_listen_and_the_environment_readable_by_the_apps_group():
    service = by_path(hello_files())["/etc/sevenleague/env/league-hello.env"]
    assert service.content.decode() == (
        "# Settings of every instance of hello (league-hello@PORT.service), written by the\n"
        "# deploy; they win over /etc/default/league-hello. Each instance's own file follows.\n"
        "LISTEN=0.0.0.0\n"
        "LEAGUE_CA_FILE=/etc/sevenleague/ca.pem\n"
        "LEAGUE_OIDC_ISSUER=https://10.0.0.2:9100\n")
    assert (service.mode, service.owner, service.group) == (0o640, "root", "league-hello")


def test_each_instance_gets_its_bundle_and_name_keyed_by_its_port():
    files = by_path(hello_files())
    assert list(files) == [
        "/etc/systemd/system/league-hello@.service.d/50-sevenleague.conf",
        "/etc/sevenleague/env/league-hello.env",
        "/etc/sevenleague/env/league-hello-8001.env", "/etc/sevenleague/tls/hello-1.pem",
        "/etc/sevenleague/env/league-hello-8002.env", "/etc/sevenleague/tls/hello-2.pem",
    ]
    assert files["/etc/sevenleague/env/league-hello-8002.env"].content.decode() == (
        "# hello-2, instance of hello on port 8002: read by systemd for league-hello@8002.service\n"
        "# after /etc/sevenleague/env/league-hello.env; these lines win.\n"
        "LEAGUE_TLS_BUNDLE=/etc/sevenleague/tls/hello-2.pem\n"
        "LEAGUE_INSTANCE=hello-2\n")
    bundle = files["/etc/sevenleague/tls/hello-2.pem"]
    assert (bundle.content, bundle.mode) == (BUNDLE, 0o640)
    assert (bundle.owner, bundle.group) == ("root", "league-hello")
    assert files["/etc/sevenleague/env/league-hello-8001.env"].group == "league-hello"


def test_the_variable_names_are_the_kits():
    assert TLS_BUNDLE_ENV == SERVE_TLS_BUNDLE_ENV
    assert INSTANCE_ENV == KIT_INSTANCE_ENV


def test_every_value_reads_back_exactly_under_systemds_rules():
    text = by_path(hello_files(TRICKY))["/etc/sevenleague/env/league-hello.env"].content.decode()
    assert parse_environment_file(text) == {"LISTEN": "0.0.0.0", **TRICKY}


def test_plain_words_stay_unquoted_and_the_rest_is_double_quoted():
    assert environment_assignment("A", "/etc/sevenleague/ca.pem") == "A=/etc/sevenleague/ca.pem\n"
    assert environment_assignment("A", "https://x:1/a?b") == 'A="https://x:1/a?b"\n'
    assert environment_assignment("A", 'x "y" $z \\ `w`') == 'A="x \\"y\\" \\$z \\\\ \\`w\\`"\n'
    assert environment_assignment("A", "") == 'A=""\n'


@pytest.mark.parametrize("value", ["two\nlines", "carriage\rreturn", "nul\0byte"])
def test_a_line_break_or_nul_in_a_value_is_a_usage_error_naming_the_variable(value):
    with pytest.raises(UsageError, match="the value of LEAGUE_SERVICE_URLS holds a line break or NUL"):
        hello_files({"LEAGUE_SERVICE_URLS": value})


@pytest.mark.parametrize(("changes", "message"), [
    ({"environment": {"1BAD": "x"}}, "'1BAD' is not an environment variable name"),
    ({"environment": {"A B": "x"}}, "not an environment variable name"),
    ({"environment": {"LISTEN": "::"}}, "LISTEN cannot be set in the environment"),
    ({"environment": {"LEAGUE_TLS_BUNDLE": "/x"}}, "LEAGUE_TLS_BUNDLE cannot be set"),
    ({"listen": "0.0.0.0 --reload"}, "is not one address"),
    ({"package": "Hello"}, "not a valid Debian package name"),
    ({"system_user": "Hello"}, "not a valid system user name"),
    ({"service": "hello_world"}, "service 'hello_world' is not a valid name"),
    ({"instances": [("hello-1", 0, BUNDLE)]}, "port 0 is not a TCP port"),
    ({"instances": [("hello-1", 70000, BUNDLE)]}, "not a TCP port"),
    ({"instances": [("../hello", 8001, BUNDLE)]}, "instance '../hello' is not a valid name"),
    ({"instances": [("hello-1", 8001, CA)]}, "TLS bundle of hello-1 is not a private key"),
    ({"instances": [("hello-1", 8001, BUNDLE), ("hello-1", 8002, BUNDLE)]}, "name hello-1 is given twice"),
    ({"instances": [("hello-1", 8001, BUNDLE), ("hello-2", 8001, BUNDLE)]}, "port 8001 is given twice"),
])
def test_bad_instance_inputs_are_usage_errors(changes, message):
    arguments = {"package": "league-hello", "system_user": "league-hello", "service": "hello",
                 "listen": "0.0.0.0", "environment": {}, "instances": [("hello-1", 8001, BUNDLE)], **changes}
    with pytest.raises(UsageError, match=message):
        instance_files(**arguments)


def test_rendering_is_pure():
    assert hello_files() == hello_files()
    with pytest.raises(AttributeError):
        hello_files()[0].mode = 0o777  # type: ignore[misc]


# --- the node exporter ---------------------------------------------------------------------------


def exporter_files(port: int = 9100) -> dict[str, HostFile]:
    return by_path(node_exporter_files(port, BUNDLE))


def test_the_node_exporter_gets_a_drop_in_its_args_its_web_config_and_its_bundle():
    assert list(exporter_files()) == [
        "/etc/systemd/system/prometheus-node-exporter.service.d/50-sevenleague.conf",
        "/etc/sevenleague/node-exporter/node-exporter.env",
        "/etc/sevenleague/node-exporter/web.yml",
        "/etc/sevenleague/tls/node-exporter.pem",
    ]


def test_the_exporters_drop_in_reads_its_args_after_debians_defaults_file():
    drop_in = exporter_files()["/etc/systemd/system/prometheus-node-exporter.service.d/50-sevenleague.conf"]
    text = drop_in.content.decode()
    assert text.endswith("[Service]\nEnvironmentFile=/etc/sevenleague/node-exporter/node-exporter.env\n")
    assert "after the unit's own\n# /etc/default/prometheus-node-exporter" in text
    assert (drop_in.mode, drop_in.owner, drop_in.group) == (0o644, "root", "root")


def test_the_exporter_listens_on_every_address_at_the_catalogs_port_with_the_systemd_collector():
    args = exporter_files(9200)["/etc/sevenleague/node-exporter/node-exporter.env"]
    # Debian's unit runs `prometheus-node-exporter $ARGS`: systemd splits the value on blanks
    assert parse_environment_file(args.content.decode())["ARGS"].split() == [
        "--web.listen-address=:9200", "--web.config.file=/etc/sevenleague/node-exporter/web.yml",
        "--collector.systemd"]


def test_the_exporter_serves_https_with_the_one_bundle_as_key_and_certificate():
    web = yaml.safe_load(exporter_files()["/etc/sevenleague/node-exporter/web.yml"].content)
    assert web == {"tls_server_config": {"cert_file": "/etc/sevenleague/tls/node-exporter.pem",
                                         "key_file": "/etc/sevenleague/tls/node-exporter.pem",
                                         "min_version": "TLS12"}}
    bundle = exporter_files()["/etc/sevenleague/tls/node-exporter.pem"]
    assert (bundle.content, bundle.mode, bundle.owner, bundle.group) == (BUNDLE, 0o640, "root", "prometheus")
    assert NODE_EXPORTER_USER == "prometheus"  # Debian's package runs the unit as its own user


@pytest.mark.parametrize(("port", "bundle", "message"), [
    (0, BUNDLE, "node exporter port 0 is not a TCP port"),
    (70000, BUNDLE, "not a TCP port"),
    (True, BUNDLE, "not a TCP port"),
    (9100, CA, "TLS bundle of the node exporter is not a private key"),
])
def test_bad_node_exporter_inputs_are_usage_errors(port, bundle, message):
    with pytest.raises(UsageError, match=message):
        node_exporter_files(port, bundle)
