"""What a remote Debian host needs to run an eco-system's instances, as files to write.

Pure functions: each returns `HostFile` values (path, bytes, mode, owner) and touches
nothing; a host driver writes them (creating missing parent directories 0755 root).

Two groups, both decided here rather than in the package, because they depend on the
eco-system and the host, not on the app's version:

- **Where apt finds the eco-system's packages.** A deb822 source whose `Signed-By:`
  names a keyring of its own, so the archive key vouches for this repository only and
  Debian's keys do not vouch for it. The repository is served over HTTPS with a
  certificate of the eco-system's CA; apt is told to trust that CA for the repository's
  host only (`Acquire::https::HOST::CaInfo`). The CA is *not* added to the system trust
  store: there every TLS client on the host (curl, pip, Debian's own apt sources) would
  accept any name the eco-system's CA chose to sign.
- **What each instance needs that its package cannot know:** the eco-system's settings
  (its CA, the identity service, whom it calls) and, per instance, its certificate. The
  package's template unit `PACKAGE@.service` stays as dpkg installed it; a drop-in adds
  two EnvironmentFile= lines after the unit's own `/etc/default/PACKAGE`, and systemd
  lets a later file's assignment win. `/etc/default/PACKAGE` is left to the admin: it
  is a conffile, and rewriting it would make dpkg ask on every upgrade.
- **The host's node exporter** (Debian's prometheus-node-exporter): HTTPS only, with a
  certificate of the eco-system's CA, on the catalog's `node_exporter_port`. Its ARGS
  come the same way as an instance's settings, from a file a drop-in names after the
  package's `/etc/default/prometheus-node-exporter` (also a conffile, left alone).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..build._apt_repo import render_sources_stanza
from ..build._deb_files import check_package_name, check_system_user
from ..catalog._model import NAME_PATTERN, NAME_RULE
from ..errors import UsageError
from ..telemetry import ServerTls, render_web_config

# --- paths and names ---------------------------------------------------------------------

CONFIG_DIR = "/etc/sevenleague"
CA_PATH = f"{CONFIG_DIR}/ca.pem"
ENV_DIR = f"{CONFIG_DIR}/env"
TLS_DIR = f"{CONFIG_DIR}/tls"
KEYRING_DIR = "/usr/share/keyrings"
DROP_IN_NAME = "50-sevenleague.conf"

# How the eco-system's repository is laid out: `open_archive` serves AptRepository's
# default suite and component (docs/builds.md); a unit test keeps the two in step.
APT_SUITE = "stable"
APT_COMPONENT = "main"

# The kit's variable names (kit.serve and kit._identity); a unit test keeps them in step.
TLS_BUNDLE_ENV = "LEAGUE_TLS_BUNDLE"
INSTANCE_ENV = "LEAGUE_INSTANCE"
LISTEN_ENV = "LISTEN"  # the unit's ExecStart reads --host ${LISTEN}
RESERVED = frozenset({LISTEN_ENV, TLS_BUNDLE_ENV, INSTANCE_ENV})

# The node exporter as Debian packages it: its unit runs as the package's own user.
NODE_EXPORTER_PACKAGE = "prometheus-node-exporter"
NODE_EXPORTER_UNIT = f"{NODE_EXPORTER_PACKAGE}.service"
NODE_EXPORTER_USER = "prometheus"
NODE_EXPORTER_DIR = f"{CONFIG_DIR}/node-exporter"
NODE_EXPORTER_WEB_CONFIG = f"{NODE_EXPORTER_DIR}/web.yml"
NODE_EXPORTER_ENV = f"{NODE_EXPORTER_DIR}/node-exporter.env"
NODE_EXPORTER_BUNDLE = f"{TLS_DIR}/node-exporter.pem"
NODE_EXPORTER_DROP_IN = f"/etc/systemd/system/{NODE_EXPORTER_UNIT}.d/{DROP_IN_NAME}"

MODE_PUBLIC = 0o644
MODE_GROUP_READ = 0o640

_NAME = re.compile(NAME_PATTERN)
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLAIN = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")  # nothing systemd's EnvironmentFile parser treats specially
_APT_HOST = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?")
_LISTEN = re.compile(r"[A-Za-z0-9_.:%-]+")  # a name, IPv4 or IPv6 (with a %zone)
_NEED_ESCAPE = re.compile(r'(["\\`$])')
_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----")  # PKCS#8, or an older EC/RSA block
_LINE_BREAKS = ("\n", "\r", "\0")  # systemd ends a line at \n or \r; C strings end at NUL
_PORT_MAX = 65535


@dataclass(frozen=True)
class HostFile:
    """One file to write on a host: absolute `path`, exact `content`, `mode` and owner."""

    path: str
    content: bytes
    mode: int
    owner: str = "root"
    group: str = "root"


# --- validation ----------------------------------------------------------------------------


def _check_name(what: str, name: str) -> None:
    """Names end up in file names under /etc: the catalog's rule keeps them one safe word."""
    if not _NAME.fullmatch(name):
        raise UsageError(f"{what} {name!r} is not a valid name", hint=NAME_RULE)


def _apt_host(apt_url: str) -> str:
    """The host as apt keys its per-host options: the URL's host name, without the port."""
    parts = urlsplit(apt_url)
    if parts.scheme != "https" or any(character.isspace() for character in apt_url):
        raise UsageError(f"apt URL {apt_url!r} is not one https URL",
                         hint="the build service serves the repository over HTTPS only, e.g. "
                              "https://builds.example.org:9300/apt/")
    host = parts.hostname or ""
    if not _APT_HOST.fullmatch(host):
        raise UsageError(f"apt URL {apt_url!r} does not name a host apt's configuration can key on",
                         hint="use a DNS name or an IPv4 address; apt.conf cannot name an IPv6 literal")
    return host


def _check_keyring(keyring: bytes) -> None:
    """`.gpg` in Signed-By means a binary keyring to apt; an armored one would not load."""
    if keyring.lstrip().startswith(b"-----BEGIN"):
        raise UsageError("the archive keyring is armored; Signed-By: with a .gpg path needs the binary one",
                         hint="pass league-archive-keyring.gpg, not the .asc")
    if not keyring or not keyring[0] & 0x80:
        raise UsageError("the archive keyring is not an OpenPGP keyring",
                         hint="pass the bytes of $LEAGUE_HOME/apt/league-archive-keyring.gpg")


def _check_ca(ca_pem: bytes) -> None:
    if b"-----BEGIN CERTIFICATE-----" not in ca_pem:
        raise UsageError("the CA is not a certificate in PEM", hint="pass $LEAGUE_HOME/pki/ca.pem's bytes")


def _check_bundle(instance: str, bundle: bytes) -> None:
    """The leaf's bundle.pem: its private key and its certificate chain, in one file."""
    if b"-----BEGIN CERTIFICATE-----" not in bundle or not _PRIVATE_KEY.search(bundle):
        raise UsageError(f"the TLS bundle of {instance} is not a private key and certificate chain in PEM",
                         hint="pass $LEAGUE_HOME/pki/leaves/NAME/bundle.pem")


def _check_value(name: str, value: str) -> None:
    if not _VARIABLE.fullmatch(name):
        raise UsageError(f"{name!r} is not an environment variable name",
                         hint="use letters, digits and _, not starting with a digit")
    if any(character in value for character in _LINE_BREAKS):
        raise UsageError(f"the value of {name} holds a line break or NUL: an EnvironmentFile cannot carry it",
                         hint="put such data in a file and pass its path in the variable")


def _check_instances(instances: list[tuple[str, int, bytes]]) -> None:
    for name, port, bundle in instances:
        _check_name("instance", name)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= _PORT_MAX:
            raise UsageError(f"instance {name}: port {port!r} is not a TCP port", hint="use 1 to 65535")
        _check_bundle(name, bundle)
    _check_unique("name", [name for name, _, _ in instances])
    _check_unique("port", [str(port) for _, port, _ in instances])


def _check_unique(what: str, values: list[str]) -> None:
    repeated = sorted({value for value in values if values.count(value) > 1})
    if repeated:
        raise UsageError(f"instance {what} {', '.join(repeated)} is given twice",
                         hint="give each instance once, with its own port")


# --- formats ---------------------------------------------------------------------------------


def environment_assignment(name: str, value: str) -> str:
    """One `NAME=value` line as systemd's EnvironmentFile= reads it back exactly.

    Plain words stay plain; anything else is double-quoted with `"`, `\\`, `` ` `` and
    `$` backslash-escaped, the only escapes systemd undoes inside double quotes. systemd
    does no variable expansion in these files; the same text also reads back the same
    when a shell sources it.
    """
    _check_value(name, value)
    if _PLAIN.fullmatch(value):
        return f"{name}={value}\n"
    escaped = _NEED_ESCAPE.sub(r"\\\1", value)
    return f'{name}="{escaped}"\n'


def _environment_file(header: str, values: dict[str, str]) -> bytes:
    return (header + "".join(environment_assignment(name, value) for name, value in values.items())).encode()


def _env_path(name: str) -> str:
    return f"{ENV_DIR}/{name}.env"


def bundle_path(instance: str) -> str:
    return f"{TLS_DIR}/{instance}.pem"


def keyring_path(ecosystem: str) -> str:
    return f"{KEYRING_DIR}/sevenleague-{ecosystem}.gpg"


def drop_in_path(package: str) -> str:
    return f"/etc/systemd/system/{package}@.service.d/{DROP_IN_NAME}"


# --- apt -------------------------------------------------------------------------------------


def render_apt_ca_config(host: str) -> str:
    return ("// The eco-system's apt repository is served with a certificate of its own CA:\n"
            "// trust that CA for this host, and for apt only (not the system trust store).\n"
            f'Acquire::https::{host}::CaInfo "{CA_PATH}";\n')


def apt_source_files(ecosystem: str, apt_url: str, keyring: bytes, ca_pem: bytes) -> list[HostFile]:
    """The eco-system's apt repository as a source of packages, trusted for its signature."""
    _check_name("eco-system", ecosystem)
    host = _apt_host(apt_url)
    _check_keyring(keyring)
    _check_ca(ca_pem)
    sources = render_sources_stanza(apt_url, APT_SUITE, APT_COMPONENT, keyring_path(ecosystem))
    return [
        HostFile(f"/etc/apt/sources.list.d/sevenleague-{ecosystem}.sources", sources.encode(), MODE_PUBLIC),
        HostFile(keyring_path(ecosystem), keyring, MODE_PUBLIC),
        HostFile(CA_PATH, ca_pem, MODE_PUBLIC),
        HostFile(f"/etc/apt/apt.conf.d/60sevenleague-{ecosystem}", render_apt_ca_config(host).encode(),
                 MODE_PUBLIC),
    ]


# --- instances -------------------------------------------------------------------------------


def render_drop_in(package: str) -> str:
    return (f"# Added by sevenleague: the eco-system's settings for every {package}@PORT instance.\n"
            f"# systemd reads EnvironmentFile= in order, after the unit's own /etc/default/{package},\n"
            "# and a later assignment wins: the service's file, then the instance's own (%i is the\n"
            "# port; '-': an instance without one still starts).\n"
            "[Service]\n"
            f"EnvironmentFile={_env_path(package)}\n"
            f"EnvironmentFile=-{_env_path(package + '-%i')}\n")


def _service_environment(listen: str, environment: dict[str, str]) -> dict[str, str]:
    if not _LISTEN.fullmatch(listen):
        raise UsageError(f"listen address {listen!r} is not one address", hint='e.g. "0.0.0.0" or "::"')
    clashing = sorted(RESERVED & environment.keys())
    if clashing:
        raise UsageError(f"{', '.join(clashing)} cannot be set in the environment: the deploy sets it",
                         hint="pass the listen address as `listen`; each instance's bundle and name "
                              "come from `instances`")
    return {LISTEN_ENV: listen, **dict(sorted(environment.items()))}


def _instance_files(package: str, service: str, system_user: str, name: str, port: int,
                    bundle: bytes) -> list[HostFile]:
    """The instance's own settings, and its key with its certificate chain.

    The bundle is group-readable by the package's user because the app (uvicorn) reads
    it, and reads it again after a renewal. The unit runs with PrivateUsers=yes, whose
    user namespace maps only root and the unit's own user and group: the file's owner
    (root) and group (the user's) both stay mapped, so group-read works there too.
    """
    header = (f"# {name}, instance of {service} on port {port}: read by systemd for "
              f"{package}@{port}.service\n# after {_env_path(package)}; these lines win.\n")
    values = {TLS_BUNDLE_ENV: bundle_path(name), INSTANCE_ENV: name}
    return [
        HostFile(_env_path(f"{package}-{port}"), _environment_file(header, values), MODE_GROUP_READ,
                 group=system_user),
        HostFile(bundle_path(name), bundle, MODE_GROUP_READ, group=system_user),
    ]


def instance_files(package: str, system_user: str, service: str, listen: str, environment: dict[str, str],
                   instances: list[tuple[str, int, bytes]]) -> list[HostFile]:
    """The drop-in, the service's settings and each instance's (name, port, TLS bundle PEM).

    The settings files are not secret (secrets stay in the files they name, e.g.
    LEAGUE_CLIENT_SECRET_FILE), but are no business of other users: 0640, group of the
    package's user.
    """
    check_package_name(package)
    check_system_user(system_user)
    _check_name("service", service)
    values = _service_environment(listen, environment)
    _check_instances(instances)
    header = (f"# Settings of every instance of {service} ({package}@PORT.service), written by the\n"
              f"# deploy; they win over /etc/default/{package}. Each instance's own file follows.\n")
    files = [
        HostFile(drop_in_path(package), render_drop_in(package).encode(), MODE_PUBLIC),
        HostFile(_env_path(package), _environment_file(header, values), MODE_GROUP_READ, group=system_user),
    ]
    for name, port, bundle in instances:
        files += _instance_files(package, service, system_user, name, port, bundle)
    return files


# --- the node exporter -----------------------------------------------------------------------


def render_node_exporter_web_config() -> str:
    """exporter-toolkit's web config, as the local exporter's: HTTPS only, TLS 1.2 at least.

    One file serves as both `cert_file` and `key_file`: the bundle holds the key and the
    chain, and Go's `tls.LoadX509KeyPair` takes the CERTIFICATE blocks of the one and the
    PRIVATE KEY block of the other, skipping the rest. The exporter reads them again for
    every handshake, so a renewed bundle is served from the next connection on.
    """
    bundle = Path(NODE_EXPORTER_BUNDLE)
    return render_web_config(ServerTls(web_config=Path(NODE_EXPORTER_WEB_CONFIG), certificate=bundle,
                                       key=bundle))


def node_exporter_args(port: int) -> str:
    """The exporter's command line: every address of the host (the catalog's address may be a
    name or a NAT'd one the host does not have), and the systemd collector, named so it stays
    on whatever a later package's default (it is Debian's default today)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= _PORT_MAX:
        raise UsageError(f"node exporter port {port!r} is not a TCP port", hint="use 1 to 65535")
    return f"--web.listen-address=:{port} --web.config.file={NODE_EXPORTER_WEB_CONFIG} --collector.systemd"


def render_node_exporter_drop_in() -> str:
    return ("# Added by sevenleague: the node exporter serves HTTPS only, with a certificate of the\n"
            "# eco-system's CA. systemd reads EnvironmentFile= in order, after the unit's own\n"
            f"# /etc/default/{NODE_EXPORTER_PACKAGE}, and a later assignment wins: ARGS comes from here.\n"
            "[Service]\n"
            f"EnvironmentFile={NODE_EXPORTER_ENV}\n")


def node_exporter_files(port: int, bundle: bytes) -> list[HostFile]:
    """The drop-in, the ARGS it names, the web config, and the exporter's key with its chain.

    Only the bundle is secret: 0640, group of the package's user, which the unit runs as
    (the package must be installed first, or the group does not exist).
    """
    _check_bundle("the node exporter", bundle)
    header = (f"# The node exporter's arguments, written by the eco-system's deploy service. They win\n"
              f"# over /etc/default/{NODE_EXPORTER_PACKAGE}: the unit's drop-in reads this file after it.\n")
    return [
        HostFile(NODE_EXPORTER_DROP_IN, render_node_exporter_drop_in().encode(), MODE_PUBLIC),
        HostFile(NODE_EXPORTER_ENV, _environment_file(header, {"ARGS": node_exporter_args(port)}),
                 MODE_PUBLIC),
        HostFile(NODE_EXPORTER_WEB_CONFIG, render_node_exporter_web_config().encode(), MODE_PUBLIC),
        HostFile(NODE_EXPORTER_BUNDLE, bundle, MODE_GROUP_READ, group=NODE_EXPORTER_USER),
    ]
