"""The text of every file in an app's .deb, as pure functions of one `DebSpec`.

The package ships wheels, not a virtual environment: a venv built on the build machine
and copied elsewhere keeps the build's absolute paths (shebangs, pyvenv.cfg) and the
build's Python, which a distribution upgrade replaces. Instead `postinst configure`
builds the venv at its final path, from the shipped wheels only (no network), with the
`/usr/bin/python3` the package depends on, and rebuilds it when that Python changes
(a dpkg file trigger on /usr/bin/python3). Each version gets its own venv directory so
instances still running the previous version keep a coherent set of modules until the
deploy restarts them; see docs/packaging.md.

Nothing here touches the machine: `build_deb` in `_deb_package` writes what these
functions return.
"""

from __future__ import annotations

import gzip
import math
import re
import shlex
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime

from ..errors import UsageError

# --- names, formats and paths ---------------------------------------------------------------

PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")  # Debian policy 5.6.1; match with fullmatch
_EPOCH = re.compile(r"[0-9]+")
_UPSTREAM = re.compile(r"[0-9][A-Za-z0-9.+~-]*")
_REVISION = re.compile(r"[A-Za-z0-9+.~]+")
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_APP = re.compile(rf"{_IDENTIFIER}(\.{_IDENTIFIER})*:{_IDENTIFIER}(\.{_IDENTIFIER})*")
_SYSTEM_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_MAINTAINER = re.compile(r"[^<>,\n]+ <[^<>@\s]+@[^<>\s]+>")
ARCHITECTURE = re.compile(r"all|[a-z0-9][a-z0-9-]*")
_WHEEL_FILE = re.compile(r"[A-Za-z0-9_.+!-]+\.whl")
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_.:+@/\[\]-]+")
_DEPENDENCY = re.compile(r"[a-z0-9][a-z0-9+.-]+( \((<<|<=|=|>=|>>) [A-Za-z0-9.+~:-]+\))?")

SYNOPSIS_MAX = 80
LINE_MAX = 79
DEP5_FORMAT = "https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
STOP_MARGIN_SECONDS = 10

MODE_FILE = 0o644
MODE_SCRIPT = 0o755
MODE_SETTINGS = 0o600  # systemd reads EnvironmentFile= as root; app settings may hold secrets
KEEP_VENVS = 3  # venvs of the newest versions postinst keeps, so a rollback needs no pip


@dataclass(frozen=True)
class DebFile:
    """One file of the package: `path` relative to the package root (`DEBIAN/...` for control)."""

    path: str
    content: bytes
    mode: int = MODE_FILE


@dataclass(frozen=True)
class DebSpec:
    """Everything the package's files are rendered from; invalid values are a UsageError.

    `depends` holds what the wheels need from the system (the python3 range, libc6), as
    `wheel_depends` in `_deb_package` derives it; python3-venv, python3-pip-whl and
    adduser, which the maintainer scripts call, are always added (deb-systemd-invoke's
    init-system-helpers is essential). `licenses` pairs a bundled wheel's file name with
    the license its metadata declares, for the copyright file.
    """

    package: str
    version: str
    app: str
    summary: str
    maintainer: str
    app_wheel: str
    wheels: tuple[str, ...]
    architecture: str = "all"
    depends: tuple[str, ...] = ()
    description: str = ""
    service: str = ""
    user: str = ""
    section: str = "misc"
    homepage: str = ""
    copyright: str = ""
    license: str = "proprietary"
    licenses: tuple[tuple[str, str], ...] = ()
    listen: str = "127.0.0.1"
    drain_seconds: float = 1.5
    graceful_seconds: float = 20.0
    changes: tuple[str, ...] = ()
    built_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        check_package_name(self.package)
        check_version(self.version)
        _check_app(self.app)
        _check_summary(self.summary)
        _check_maintainer(self.maintainer)
        _check_wheels(self.app_wheel, self.wheels)
        _check_fields(self)
        check_system_user(self.system_user)

    # Derived names and paths: one place, so the scripts, the unit and the docs agree.

    @property
    def service_name(self) -> str:
        return self.service or self.package

    @property
    def system_user(self) -> str:
        return self.user or default_system_user(self.package)

    @property
    def base_dir(self) -> str:
        return f"/usr/lib/{self.package}"

    @property
    def wheel_dir(self) -> str:
        return f"{self.base_dir}/wheels"

    @property
    def venv_name(self) -> str:
        """The version's own venv directory name (':' of an epoch is not welcome in paths)."""
        return self.version.replace(":", "_")

    @property
    def venv_dir(self) -> str:
        return f"{self.base_dir}/venvs/{self.venv_name}"

    @property
    def current_venv(self) -> str:
        """A symlink to the venv of the configured version, for operators and tools."""
        return f"{self.base_dir}/venv"

    @property
    def unit_name(self) -> str:
        return f"{self.package}@.service"

    @property
    def unit_path(self) -> str:
        return f"/lib/systemd/system/{self.unit_name}"

    @property
    def default_path(self) -> str:
        return f"/etc/default/{self.package}"

    @property
    def state_dir(self) -> str:
        return f"/var/lib/{self.package}"

    @property
    def doc_dir(self) -> str:
        return f"/usr/share/doc/{self.package}"

    @property
    def native(self) -> bool:
        """A version without a Debian revision names a native package (changelog.gz)."""
        return "-" not in self.version

    @property
    def changelog_name(self) -> str:
        return "changelog.gz" if self.native else "changelog.Debian.gz"

    @property
    def deb_name(self) -> str:
        """NAME_VERSION_ARCH.deb, the epoch left out as dpkg-name does."""
        return f"{self.package}_{self.version.partition(':')[2] or self.version}_{self.architecture}.deb"

    @property
    def stop_timeout_seconds(self) -> int:
        return math.ceil(self.drain_seconds + self.graceful_seconds) + STOP_MARGIN_SECONDS


# --- validation -------------------------------------------------------------------------


def check_package_name(name: str) -> None:
    """Debian policy 5.6.1: lower case letters, digits, + - . ; at least two, starting alphanumeric."""
    if not PACKAGE_NAME.fullmatch(name):
        raise UsageError(f"{name!r} is not a valid Debian package name",
                         hint="use at least two of a-z 0-9 + - . starting with a letter or digit, "
                              'e.g. "hello" or "league-hello"')


def check_version(version: str) -> None:
    """Debian policy 5.6.12: [epoch:]upstream[-revision], upstream starting with a digit."""
    epoch, colon, rest = version.partition(":")
    if not colon:
        epoch, rest = "", version
    upstream, dash, revision = rest.rpartition("-")
    if not dash:
        upstream, revision = rest, ""
    valid = ((not colon or _EPOCH.fullmatch(epoch) is not None)
             and _UPSTREAM.fullmatch(upstream) is not None
             and (not dash or _REVISION.fullmatch(revision) is not None))
    if not valid:
        raise UsageError(f"{version!r} is not a valid Debian version",
                         hint='use [epoch:]upstream[-revision] with upstream starting with a digit, '
                              'e.g. "0.1.0-1" or "1.2.0~rc1-3"')


def default_system_user(package: str) -> str:
    """The package name as a user name: '.' and '+' are not allowed there."""
    name = re.sub(r"[^a-z0-9_-]", "-", package)
    return name if name[:1].isalpha() or name[:1] == "_" else f"_{name}"


def check_system_user(user: str) -> None:
    if not _SYSTEM_USER.fullmatch(user):
        raise UsageError(f"{user!r} is not a valid system user name",
                         hint="use at most 32 of a-z 0-9 _ - starting with a letter or _, "
                              "or set the spec's user explicitly")


def _check_app(app: str) -> None:
    if not _APP.fullmatch(app):
        raise UsageError(f"app {app!r} is not an ASGI app reference",
                         hint='write "module:attribute", e.g. "hello.app:app"')


def _check_summary(summary: str) -> None:
    if not summary.strip() or "\n" in summary or len(summary) > SYNOPSIS_MAX:
        raise UsageError(f"summary {summary!r} must be one non-empty line of at most {SYNOPSIS_MAX} "
                         "characters", hint="it becomes the package's synopsis; details go in description")


def _check_maintainer(maintainer: str) -> None:
    if not _MAINTAINER.fullmatch(maintainer):
        raise UsageError(f"maintainer {maintainer!r} is not 'Full Name <email>'",
                         hint='e.g. "Hello Team <hello@example.org>"')


def _check_wheels(app_wheel: str, wheels: tuple[str, ...]) -> None:
    bad = [name for name in wheels if not _WHEEL_FILE.fullmatch(name)]
    if bad:
        raise UsageError(f"not wheel file names: {', '.join(map(repr, bad))}",
                         hint="pass file names like hello-0.1.0-py3-none-any.whl, without directories")
    if len(set(wheels)) != len(wheels):
        raise UsageError("a wheel is listed twice", hint="pass each wheel file once")
    if app_wheel not in wheels:
        raise UsageError(f"the app's wheel {app_wheel!r} is not among the wheels",
                         hint="list the app's own wheel with its dependencies")


def _check_fields(spec: DebSpec) -> None:
    problems = []
    if not ARCHITECTURE.fullmatch(spec.architecture):
        problems.append(f"architecture {spec.architecture!r} is not a Debian architecture")
    if not _PLAIN_VALUE.fullmatch(spec.listen):
        problems.append(f"listen address {spec.listen!r} must be one word")
    if spec.service and not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", spec.service):
        problems.append(f"service name {spec.service!r} must be lower case letters, digits, _ . -")
    if not re.fullmatch(r"[a-z0-9-]+(/[a-z0-9-]+)?", spec.section):
        problems.append(f"section {spec.section!r} is not a Debian section")
    if not 0 <= spec.drain_seconds <= 600 or not 0 <= spec.graceful_seconds <= 600:
        problems.append("drain_seconds and graceful_seconds must be between 0 and 600")
    problems += [f"dependency {dep!r} is not 'name' or 'name (op version)'"
                 for dep in spec.depends if not _DEPENDENCY.fullmatch(dep)]
    problems += [f"{name}: only one line is allowed"
                 for name, value in (("homepage", spec.homepage), ("copyright", spec.copyright),
                                     ("license", spec.license)) if "\n" in value]
    if not spec.license.strip():
        problems.append("license must not be empty")
    if spec.built_at.tzinfo is None:
        problems.append("built_at must carry a time zone (the changelog date and file times need one)")
    if problems:
        raise UsageError("; ".join(problems), hint="fix the package spec")


# --- text helpers ------------------------------------------------------------------------


def _wrap(text: str, indent: str = "") -> list[str]:
    """Paragraphs wrapped to LINE_MAX columns; blank lines between paragraphs kept."""
    lines: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        if lines:
            lines.append("")
        lines += textwrap.wrap(" ".join(paragraph.split()), LINE_MAX - len(indent),
                               break_on_hyphens=False) or [""]
    return lines


def _control_text(text: str) -> list[str]:
    """Continuation lines of a deb822 field: one leading space, ' .' for an empty line."""
    return [f" {line}" if line else " ." for line in _wrap(text)]


def _shell_assignments(values: Mapping[str, str]) -> str:
    return "".join(f"{name}={shlex.quote(value)}\n" for name, value in values.items())


def _unit_escape(text: str) -> str:
    """'%' starts a specifier in unit files; a literal one is written '%%'."""
    return text.replace("%", "%%")


def _format_seconds(seconds: float) -> str:
    return f"{seconds:g}"


# --- DEBIAN/ control files ----------------------------------------------------------------


def package_depends(spec: DebSpec) -> tuple[str, ...]:
    """The wheels' needs, then what the maintainer scripts call."""
    depends = list(spec.depends)
    if not any(dep.split(" ")[0] == "python3" for dep in depends):
        depends.insert(0, "python3")
    return (*depends, "python3-venv", "python3-pip-whl", "adduser")


def default_description(spec: DebSpec) -> str:
    return (
        f"This package runs the ASGI app {spec.app} with sevenleague.kit.serve, one "
        f"systemd instance per port: systemctl enable --now {spec.package}@8001.\n\n"
        f"It ships the app's wheel and every dependency wheel in {spec.wheel_dir}; "
        f"its postinst builds a virtual environment from them with the system's "
        f"python3, without network access. Settings are in {spec.default_path}."
    )


def render_control(spec: DebSpec, installed_size_kib: int) -> str:
    fields = [
        ("Package", spec.package),
        ("Version", spec.version),
        ("Architecture", spec.architecture),
        ("Maintainer", spec.maintainer),
        ("Installed-Size", str(max(1, installed_size_kib))),
        ("Depends", ", ".join(package_depends(spec))),
        ("Section", spec.section),
        ("Priority", "optional"),
    ]
    if spec.homepage:
        fields.append(("Homepage", spec.homepage))
    lines = [f"{name}: {value}" for name, value in fields]
    lines.append(f"Description: {spec.summary}")
    lines += _control_text(spec.description or default_description(spec))
    return "\n".join(lines) + "\n"


def render_conffiles(spec: DebSpec) -> str:
    return f"{spec.default_path}\n"


def render_triggers(spec: DebSpec) -> str:
    """Run `postinst triggered` when the package owning /usr/bin/python3 is upgraded."""
    return "interest-noawait /usr/bin/python3\n"


def render_md5sums(digests: Mapping[str, str]) -> str:
    """`md5sum` format for paths relative to the root, as dpkg --verify reads it."""
    return "".join(f"{digest}  {path}\n" for path, digest in sorted(digests.items()))


def _script_header(spec: DebSpec, purpose: str) -> str:
    values = {
        "PACKAGE": spec.package,
        "SYSTEM_USER": spec.system_user,
        "BASE": spec.base_dir,
        "VENV_NAME": spec.venv_name,
        "VENV": spec.venv_dir,
        "APP_WHEEL": spec.app_wheel,
        "STATE_DIR": spec.state_dir,
        "GECOS": re.sub(r"[:,=]", " ", spec.summary),
    }
    return f"#!/bin/sh\n# {purpose}\nset -e\n\n{_shell_assignments(values)}"


_POSTINST_BODY = """\
python_minor() {
    /usr/bin/python3 -I -c 'import sys; print("%d.%d" % sys.version_info[:2])'
}

# Ready means completed (the marker is written last) for the Python that is there now.
venv_ready() {
    [ -f "$VENV/.ready" ] && [ "$(cat "$VENV/.ready")" = "$(python_minor)" ]
}

ensure_user() {
    if ! getent passwd "$SYSTEM_USER" >/dev/null; then
        adduser --system --group --quiet --home /nonexistent --no-create-home \\
            --shell /usr/sbin/nologin --gecos "$GECOS" "$SYSTEM_USER"
    fi
}

# Built where it will run, so every path pip and venv record is already the final one.
# pip runs from Debian's own wheel of it and stays out of the venv: the venv holds the app
# and what it imports, nothing that could install more.
build_venv() {
    set -- /usr/share/python-wheels/pip-*.whl
    if [ ! -f "$1" ]; then
        echo "$PACKAGE: no pip wheel in /usr/share/python-wheels (python3-pip-whl)" >&2
        exit 1
    fi
    rm -rf "$VENV"
    mkdir -p "$BASE/venvs"
    /usr/bin/python3 -I -m venv --without-pip "$VENV"
    "$VENV/bin/python" -I "$1/pip" install --isolated --no-index --find-links "$BASE/wheels" \\
        --only-binary :all: --no-cache-dir --disable-pip-version-check \\
        --no-warn-script-location --quiet "$BASE/wheels/$APP_WHEEL"
    python_minor >"$VENV/.ready"
}

# rename(2) over the old symlink: readers see the old venv or the new one, never none.
point_current_venv() {
    ln -sfn "venvs/$VENV_NAME" "$BASE/venv.new"
    mv -T "$BASE/venv.new" "$BASE/venv"
}

# The bracket keeps grep from matching its own command line.
venv_in_use() {
    grep -qs "$1/bin/pytho[n]" /proc/[0-9]*/cmdline
}

# Every other venv, the completed ones newest first (by when their .ready marker was
# written), then the incomplete ones. Version names hold no blanks, newlines or glob
# characters, so ls's lines are safe to split.
other_venvs_newest_first() {
    ls -dt "$BASE"/venvs/*/.ready 2>/dev/null | sed 's|/\\.ready$||' | grep -vxF "$VENV" || true
    for dir in "$BASE"/venvs/*; do
        if [ -d "$dir" ] && [ ! -f "$dir/.ready" ] && [ "$dir" != "$VENV" ]; then
            echo "$dir"
        fi
    done
}

# The venvs of the newest KEEP versions stay (the one just configured counts as the
# newest), so rolling back to one of them with `dpkg -i` only re-points the symlink: no
# pip, no network, seconds. A venv for another Python would be rebuilt anyway, so it does
# not count. An instance still running an older version keeps its venv until restarted.
prune_old_venvs() {
    kept=1
    minor=$(python_minor)
    for dir in $(other_venvs_newest_first); do
        if [ "$kept" -lt "$KEEP" ] && [ "$(cat "$dir/.ready" 2>/dev/null)" = "$minor" ]; then
            kept=$((kept + 1))
        elif venv_in_use "$dir"; then
            echo "$PACKAGE: keeping $dir, a running instance still uses it" >&2
        else
            rm -rf "$dir"
        fi
    done
}

reload_systemd() {
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
    fi
}

case "$1" in
    configure)
        umask 022
        ensure_user
        if ! venv_ready; then
            build_venv
        fi
        point_current_venv
        prune_old_venvs
        reload_systemd
        ;;
    triggered)
        # /usr/bin/python3's package changed; rebuild only if its version did.
        umask 022
        if [ -d "$VENV" ] && ! venv_ready; then
            build_venv
        fi
        ;;
    abort-upgrade|abort-remove|abort-deconfigure)
        ;;
    *)
        echo "postinst called with unknown argument '$1'" >&2
        exit 1
        ;;
esac

exit 0
"""

_REMOVE_VENVS = """\
remove_venvs() {
    rm -rf "$BASE/venv" "$BASE/venv.new" "$BASE/venvs"
}
"""

_PRERM_BODY = _REMOVE_VENVS + """
case "$1" in
    remove)
        if [ -d /run/systemd/system ]; then
            deb-systemd-invoke stop "$PACKAGE@*.service" >/dev/null || true
        fi
        remove_venvs
        ;;
    upgrade|deconfigure|failed-upgrade)
        ;;
    *)
        echo "prerm called with unknown argument '$1'" >&2
        exit 1
        ;;
esac

exit 0
"""

_POSTRM_BODY = _REMOVE_VENVS + """
# Instances enabled with `systemctl enable NAME@PORT` are links to the template.
remove_enablement_links() {
    if [ -d /etc/systemd/system ]; then
        find /etc/systemd/system -type l -name "$PACKAGE@*.service" \\
            -lname "*/$PACKAGE@.service" -delete
    fi
}

reload_systemd() {
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
    fi
}

case "$1" in
    remove|abort-install)
        remove_venvs
        if [ -d "$BASE" ]; then
            rmdir --ignore-fail-on-non-empty "$BASE"
        fi
        reload_systemd
        ;;
    purge)
        remove_venvs
        rm -rf "$STATE_DIR"
        remove_enablement_links
        reload_systemd
        ;;
    upgrade|failed-upgrade|abort-upgrade|disappear)
        ;;
    *)
        echo "postrm called with unknown argument '$1'" >&2
        exit 1
        ;;
esac

exit 0
"""


def render_postinst(spec: DebSpec) -> str:
    return (_script_header(spec, f"postinst of {spec.package}: its system user, then its venv from "
                                 "the shipped wheels") + f"KEEP={KEEP_VENVS}\n\n" + _POSTINST_BODY)


def render_prerm(spec: DebSpec) -> str:
    return (_script_header(spec, f"prerm of {spec.package}: on removal, stop its instances and "
                                 "remove the venvs postinst built") + "\n" + _PRERM_BODY)


def render_postrm(spec: DebSpec) -> str:
    return (_script_header(spec, f"postrm of {spec.package}: what dpkg does not know about; purge "
                                 "also removes its state") + "\n" + _POSTRM_BODY)


# --- the systemd unit and its settings ----------------------------------------------------

HARDENING = (
    "NoNewPrivileges=yes",
    "CapabilityBoundingSet=",
    "AmbientCapabilities=",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "PrivateUsers=yes",
    "PrivateMounts=yes",
    "ProtectHostname=yes",
    "ProtectClock=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectProc=invisible",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "MemoryDenyWriteExecute=yes",
    "RemoveIPC=yes",
    "KeyringMode=private",
    "DevicePolicy=closed",
    "UMask=0077",
    "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service",
    "SystemCallFilter=~@privileged @resources",
    "SystemCallErrorNumber=EPERM",
)
"""What an ASGI app on TCP needs to be denied nothing it uses; docs/packaging.md says why
each is safe and what ProcSubset=pid and IPAddressDeny= would cost."""

SETTINGS = ("LISTEN", "DRAIN_SECONDS", "GRACEFUL_SECONDS", "LOG_LEVEL")


def _settings_defaults(spec: DebSpec) -> dict[str, str]:
    return {
        "LISTEN": spec.listen,
        "DRAIN_SECONDS": _format_seconds(spec.drain_seconds),
        "GRACEFUL_SECONDS": _format_seconds(spec.graceful_seconds),
        "LOG_LEVEL": "INFO",
    }


def serve_argv(spec: DebSpec) -> tuple[str, ...]:
    """The unit's ExecStart, with systemd's `%i` (the port) and ${SETTING} expansions.

    No `--instance`: serve names the instance from `LEAGUE_INSTANCE` when an environment
    file sets it (a deploy names it as the catalog does, hello-2), else SERVICE-PORT.
    """
    return (
        f"{spec.venv_dir}/bin/python", "-m", "sevenleague.kit.serve", spec.app,
        "--host", "${LISTEN}", "--port", "%i",
        "--drain-seconds", "${DRAIN_SECONDS}", "--graceful-seconds", "${GRACEFUL_SECONDS}",
        "--log-level", "${LOG_LEVEL}",
        "--service", spec.service_name,
    )


def render_unit(spec: DebSpec) -> str:
    """The template unit NAME@.service: the instance name is the port it listens on."""
    defaults = " ".join(f"{name}={value}" for name, value in _settings_defaults(spec).items())
    lines = [
        "[Unit]",
        f"Description={_unit_escape(spec.summary)} (port %i)",
        f"Documentation=file:{spec.doc_dir}/",
        "After=network.target",
        "",
        "[Service]",
        "Type=exec",
        f"User={spec.system_user}",
        f"Environment={defaults}",
        f"EnvironmentFile=-{spec.default_path}",
        "ExecStart=" + " ".join(serve_argv(spec)),
        f"SyslogIdentifier={spec.service_name}-%i",
        "Restart=on-failure",
        "RestartSec=1s",
        "KillSignal=SIGTERM",
        f"TimeoutStopSec={spec.stop_timeout_seconds}s",
        f"StateDirectory={spec.package}",
        "StateDirectoryMode=0750",
        *HARDENING,
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"


def render_default(spec: DebSpec) -> str:
    """/etc/default/NAME: a conffile, so dpkg keeps the admin's edits across upgrades."""
    defaults = _settings_defaults(spec)
    budget = spec.stop_timeout_seconds - STOP_MARGIN_SECONDS
    return (
        f"# Settings of every instance of {spec.package} ({spec.package}@PORT.service).\n"
        f"# Read by systemd as an EnvironmentFile; apply with\n"
        f"#   systemctl restart '{spec.package}@*.service'\n"
        "# Every other NAME=value line here reaches the app as an environment variable;\n"
        "# only root can read this file, so it may hold the app's secrets.\n"
        "\n"
        "# Address to listen on: 0.0.0.0 or :: to accept connections from other hosts.\n"
        f"LISTEN={defaults['LISTEN']}\n"
        "\n"
        "# After SIGTERM an instance keeps serving for DRAIN_SECONDS while /readyz says 503,\n"
        "# so the load balancer stops sending first, then lets requests in flight finish\n"
        f"# for up to GRACEFUL_SECONDS. Keep their sum below {budget}: systemd kills the\n"
        f"# instance {spec.stop_timeout_seconds} s after SIGTERM (TimeoutStopSec).\n"
        f"DRAIN_SECONDS={defaults['DRAIN_SECONDS']}\n"
        f"GRACEFUL_SECONDS={defaults['GRACEFUL_SECONDS']}\n"
        "\n"
        "# DEBUG, INFO, WARNING or ERROR.\n"
        f"LOG_LEVEL={defaults['LOG_LEVEL']}\n"
    )


# --- /usr/share/doc -------------------------------------------------------------------------


def render_copyright(spec: DebSpec) -> str:
    """Machine-readable (DEP-5): the app under its license; the bundled wheels each under the
    license its metadata declares, listed rather than restated (each wheel carries its text)."""
    holder = spec.copyright or f"{spec.built_at.year} the {spec.package} authors"
    lines = [
        f"Format: {DEP5_FORMAT}",
        f"Upstream-Name: {spec.package}",
        "",
        "Files: *",
        f"Copyright: {holder}",
        f"License: {spec.license}",
        *_control_text(f"The license of {spec.app_wheel}; its text, if any, is in that wheel's "
                       "*.dist-info directory."),
    ]
    bundled = sorted((wheel, name) for wheel, name in spec.licenses if wheel != spec.app_wheel)
    lines += [
        "",
        f"Files: {spec.wheel_dir.lstrip('/')}/*",
        "Copyright: the authors named in each wheel's metadata",
        "License: bundled",
        *_control_text("Each wheel is distributed under the license its metadata declares, "
                       "listed in the comment below; the license texts are in each wheel's "
                       "*.dist-info directory."),
    ]
    if bundled:
        lines.append("Comment:")
        lines += [f" {' '.join(wheel.split('-')[:2])}: {' '.join(name.split())}" for wheel, name in bundled]
    return "\n".join(lines) + "\n"


def render_changelog(spec: DebSpec) -> str:
    changes = spec.changes or (
        f"Built by sevenleague from {spec.app_wheel} and {len(spec.wheels) - 1} dependency wheels.",)
    lines = [f"{spec.package} ({spec.version}) unstable; urgency=medium", ""]
    for change in changes:
        wrapped = _wrap(change, indent="    ")
        lines.append(f"  * {wrapped[0]}")
        lines += [f"    {line}" if line else "" for line in wrapped[1:]]
    lines += ["", f" -- {spec.maintainer}  {format_datetime(spec.built_at.astimezone(UTC))}", ""]
    return "\n".join(lines)


def changelog_gz(spec: DebSpec) -> bytes:
    """Compressed at level 9 with no name or time in the header, so a rebuild is byte-identical."""
    return gzip.compress(render_changelog(spec).encode(), compresslevel=9, mtime=0)


# --- lintian ---------------------------------------------------------------------------------

LINTIAN_OVERRIDES = (
    ("command-with-path-in-maintainer-script /usr/bin/python3 *",
     "The venv must be built by the python3 this package depends on, never by another one\n"
     "# earlier on PATH (a /usr/local/bin/python3), whose version would not match the wheels."),
    ("initial-upload-closes-no-bugs",
     "Built for the eco-system's own apt repository, not for Debian: there is no ITP bug."),
)
"""Each tag lintian is told to expect, with the reason it is right here."""


def render_lintian_overrides(spec: DebSpec) -> str:
    settings = (f"non-standard-file-perm 0600 != 0644 [{spec.default_path.lstrip('/')}]",
                "Every line of this EnvironmentFile reaches the app, secrets included, and only\n"
                "# systemd (as root) reads it.")
    return "".join(f"# {reason}\n{spec.package}: {tag}\n"
                   for tag, reason in (*LINTIAN_OVERRIDES, settings))


# --- the whole tree -------------------------------------------------------------------------


def render_tree(spec: DebSpec) -> tuple[DebFile, ...]:
    """Every rendered file; the wheels, DEBIAN/control and DEBIAN/md5sums are added by the build,
    which knows their sizes and digests."""
    doc = spec.doc_dir.lstrip("/")
    return (
        DebFile("DEBIAN/conffiles", render_conffiles(spec).encode()),
        DebFile("DEBIAN/triggers", render_triggers(spec).encode()),
        DebFile("DEBIAN/postinst", render_postinst(spec).encode(), MODE_SCRIPT),
        DebFile("DEBIAN/prerm", render_prerm(spec).encode(), MODE_SCRIPT),
        DebFile("DEBIAN/postrm", render_postrm(spec).encode(), MODE_SCRIPT),
        DebFile(spec.unit_path.lstrip("/"), render_unit(spec).encode()),
        DebFile(spec.default_path.lstrip("/"), render_default(spec).encode(), MODE_SETTINGS),
        DebFile(f"{doc}/copyright", render_copyright(spec).encode()),
        DebFile(f"{doc}/{spec.changelog_name}", changelog_gz(spec)),
        DebFile(f"usr/share/lintian/overrides/{spec.package}", render_lintian_overrides(spec).encode()),
    )
