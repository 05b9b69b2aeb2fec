"""The host files for instances, read by real systemd: its verifier, then a booted systemd.

systemd-analyze checks the package's template unit with the drop-in in a scratch root.
Then this machine's root boots in a container (test_deb_package's `booted_container`),
the files are installed there with their modes and owners, and a probe unit, the
package's own hardened template with an ExecStart that dumps its environment, shows
what the exec'd process really gets: every value byte for byte, the drop-in's files
winning over /etc/default, and the bundle readable under PrivateUsers=yes.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sevenleague.build._deb_files import DebSpec, render_unit
from sevenleague.deploy._host_files import HostFile, instance_files

from ..unit.test_deploy_host_files import BUNDLE, TRICKY
from .test_deb_package import booted_container, need, run

pytestmark = pytest.mark.integration

APP_WHEEL = "hello-0.1.0-py3-none-any.whl"
ISSUER = "https://10.0.0.2:9100"
# What the admin's /etc/default/PACKAGE says; the deploy's files must win over it.
DEFAULTS = "LISTEN=127.0.0.9\nLEAGUE_OIDC_ISSUER=from-default\nLEAGUE_INSTANCE=from-default\n"
# Dumps the environment and the bundle where root can read them; $$ is a literal $ to systemd.
PROBE = ("/bin/sh -c 'env -0 >\"$$STATE_DIRECTORY/%i.env\"; if [ -n \"$$LEAGUE_TLS_BUNDLE\" ]; then "
         "cat \"$$LEAGUE_TLS_BUNDLE\" >\"$$STATE_DIRECTORY/%i.pem\"; fi'")


def spec_of(package: str, service: str) -> DebSpec:
    return DebSpec(package=package, version="0.1.0-1", app="hello.app:app", summary="says hello",
                   maintainer="Hello Team <hello@example.org>", app_wheel=APP_WHEEL, wheels=(APP_WHEEL,),
                   service=service, built_at=datetime(2025, 11, 29, tzinfo=UTC))


def drop_in_of(files: list[HostFile]) -> HostFile:
    return next(item for item in files if item.path.endswith(".service.d/50-sevenleague.conf"))


def place(root: Path, path: str, content: bytes, mode: int = 0o644) -> Path:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    target.chmod(mode)
    return target


def test_systemd_verifies_the_packages_unit_with_the_drop_in(tmp_path):
    need("systemd-analyze")
    spec = spec_of("league-hello", "hello")
    root = tmp_path / "root"
    # verify resolves the unit's dependencies (sysinit.target...) and ExecStart inside the root.
    shutil.copytree("/lib/systemd/system", root / "lib/systemd/system", symlinks=True)
    place(root, spec.unit_path, render_unit(spec).encode())
    place(root, f"{spec.venv_dir}/bin/python", Path("/usr/bin/true").read_bytes(), 0o755)
    drop_in = drop_in_of(instance_files(spec.package, spec.system_user, "hello", "0.0.0.0", {},
                                        [("hello-1", 8001, BUNDLE)]))
    written = place(root, drop_in.path, drop_in.content, drop_in.mode)

    def verify() -> list[str]:
        done = run("systemd-analyze", "verify", f"--root={root}", "league-hello@8001.service", check=False)
        assert done.returncode == 0, done.stderr
        return [line for line in done.stderr.splitlines() if "league-hello" in line]

    assert verify() == []
    written.write_text(written.read_text() + "EnviromentFile=/typo\n")
    assert any("50-sevenleague.conf" in line and "EnviromentFile" in line for line in verify()), \
        "the verifier did not read the drop-in"


def probe_unit(spec: DebSpec) -> str:
    """The package's hardened template, running the probe once instead of the app."""
    unit = re.sub(r"^ExecStart=.*$", lambda _: f"ExecStart={PROBE}", render_unit(spec), flags=re.MULTILINE)
    return unit.replace("Restart=on-failure\n", "Restart=no\n")


def install_script(files: list[HostFile], staging: Path) -> str:
    """What a host driver does with HostFiles: install each with its mode and owner."""
    lines = []
    for number, item in enumerate(files):
        (staging / str(number)).write_bytes(item.content)
        lines.append(f"install -D -m {item.mode:04o} -o {item.owner} -g {item.group} "
                     f"/run/debs/{number} {shlex.quote(item.path)}")
    return "\n".join(lines) + "\n"


def environment_of(box, port: int) -> dict[str, str]:
    dump = box.run("cat", f"/var/lib/league-probe/{port}.env").stdout
    return dict(entry.partition("=")[::2] for entry in dump.split("\0") if entry)


def test_the_instance_gets_every_value_exactly_and_the_deploys_files_win(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("booting a container needs root")
    need("systemd-nspawn", "nsenter", "mount")
    spec = spec_of("league-probe", "probe")
    files = instance_files(spec.package, spec.system_user, "probe", "0.0.0.0",
                           {"LEAGUE_OIDC_ISSUER": ISSUER, **TRICKY}, [("probe-1", 8123, BUNDLE)])
    files += [HostFile(spec.unit_path, probe_unit(spec).encode(), 0o644),
              HostFile(spec.default_path, DEFAULTS.encode(), 0o600)]
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "install.sh").write_text(install_script(files, staging))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with booted_container(scratch, staging) as box:
        box.run("adduser", "--system", "--group", "--quiet", "--home", "/nonexistent", "--no-create-home",
                spec.system_user)
        box.run("sh", "-e", "/run/debs/install.sh")
        box.run("systemctl", "daemon-reload")
        for port in (8123, 8124):  # 8124 has no file of its own: '-' lets it start anyway
            box.run("systemctl", "start", "--wait", f"league-probe@{port}.service")
        given = environment_of(box, 8123)
        assert {name: given.get(name) for name in TRICKY} == TRICKY
        assert given["LISTEN"] == "0.0.0.0"
        assert given["LEAGUE_OIDC_ISSUER"] == ISSUER
        assert given["LEAGUE_TLS_BUNDLE"] == "/etc/sevenleague/tls/probe-1.pem"
        assert given["LEAGUE_INSTANCE"] == "probe-1"
        assert given["DRAIN_SECONDS"] == "1.5", "the unit's own defaults still apply"
        assert box.run("cat", "/var/lib/league-probe/8123.pem").stdout.encode() == BUNDLE
        bundle = box.run("stat", "-c", "%a %U %G", "/etc/sevenleague/tls/probe-1.pem").stdout.split()
        assert bundle == ["640", "root", spec.system_user]
        without = environment_of(box, 8124)
        assert (without["LISTEN"], without["LEAGUE_OIDC_ISSUER"]) == ("0.0.0.0", ISSUER)
        assert "LEAGUE_TLS_BUNDLE" not in without
        assert without["LEAGUE_INSTANCE"] == "from-default"
