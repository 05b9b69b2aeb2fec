"""The .deb's files as pure functions of a DebSpec, and what the wheels' tags and metadata imply.

The real tools (dpkg, lintian, systemd-analyze) check the same output in
tests/integration/test_deb_package.py.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import re
import shutil
import subprocess
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sevenleague.build._deb_files import (
    HARDENING,
    MODE_SCRIPT,
    DebSpec,
    changelog_gz,
    default_system_user,
    package_depends,
    render_changelog,
    render_conffiles,
    render_control,
    render_copyright,
    render_default,
    render_md5sums,
    render_postinst,
    render_postrm,
    render_prerm,
    render_tree,
    render_triggers,
    render_unit,
    serve_argv,
)
from sevenleague.build._deb_package import (
    libc_depends,
    package_architecture,
    parse_wheel_name,
    python_depends,
    requires_python_floor,
    wheel_depends,
)
from sevenleague.errors import UsageError

APP_WHEEL = "hello-0.1.0-py3-none-any.whl"
BINARY = "orjson-3.13.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
ABI3 = "watchfiles-1.3.0-cp310-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
OLD_GLIBC = "httptools-0.9.0-cp311-cp311-manylinux1_x86_64.manylinux_2_28_x86_64.manylinux_2_5_x86_64.whl"
PURE = ("hello-0.1.0-py3-none-any.whl", "sevenleague-0.1.0-py3-none-any.whl",
        "supervisor-4.3.0-py2.py3-none-any.whl")
BUILT_AT = datetime(2025, 11, 29, 12, 0, tzinfo=UTC)


def make_spec(**changes: Any) -> DebSpec:
    fields: dict[str, Any] = dict(
        package="hello", version="0.1.0-1", app="hello.app:app",
        summary="says hello, the simplest app in the eco-system",
        maintainer="Hello Team <hello@example.org>", app_wheel=APP_WHEEL,
        wheels=(APP_WHEEL, BINARY), architecture="amd64",
        depends=("python3 (>= 3.11)", "python3 (<< 3.12)", "libc6 (>= 2.17)"),
        licenses=((APP_WHEEL, "MIT"), (BINARY, "MPL-2.0 AND (Apache-2.0 OR MIT)")),
        built_at=BUILT_AT,
    )
    fields.update(changes)
    return DebSpec(**fields)


def control_fields(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z-]+): (.*)$", text, re.MULTILINE))


def unit_directives(text: str) -> list[tuple[str, ...]]:
    return [tuple(line.split("=", 1)) for line in text.splitlines() if "=" in line]


# --- names and versions ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["hello", "league-test-hello", "g++", "0ad", "python3.11-venv"])
def test_valid_package_names_are_accepted(name):
    assert make_spec(package=name).package == name


@pytest.mark.parametrize("name", ["", "h", "Hello", "hello_world", "-hello", ".hello", "hello world"])
def test_invalid_package_names_are_usage_errors_with_a_hint(name):
    with pytest.raises(UsageError, match="not a valid Debian package name") as raised:
        make_spec(package=name)
    assert raised.value.hint and "a-z 0-9" in raised.value.hint
    assert raised.value.exit_code == 2


@pytest.mark.parametrize("version", ["0.1.0-1", "1:2.0-3", "1.2.0~rc1-7", "1.0", "2.0+post1-1",
                                     "1.0-2-3", "3.4~dev0-1", "20251129"])
def test_valid_debian_versions_are_accepted(version):
    assert make_spec(version=version).version == version


@pytest.mark.parametrize("version", ["", "a1.0", "1.0-", "1:", "x:1.0", "1.0_1", "1.0-1_2", "1.0 -1",
                                     ":1.0", "-1", "1.0-1:2"])
def test_invalid_debian_versions_are_usage_errors(version):
    with pytest.raises(UsageError, match="not a valid Debian version") as raised:
        make_spec(version=version)
    assert "[epoch:]upstream[-revision]" in (raised.value.hint or "")


@pytest.mark.parametrize(("changes", "message"), [
    ({"app": "hello.app"}, "not an ASGI app reference"),
    ({"app": "hello app:app"}, "not an ASGI app reference"),
    ({"summary": ""}, "summary"),
    ({"summary": "x" * 81}, "at most 80"),
    ({"summary": "two\nlines"}, "one non-empty line"),
    ({"maintainer": "hello@example.org"}, "Full Name <email>"),
    ({"app_wheel": "other-1.0-py3-none-any.whl"}, "not among the wheels"),
    ({"wheels": (APP_WHEEL, APP_WHEEL)}, "listed twice"),
    ({"wheels": (APP_WHEEL, "dir/x-1.0-py3-none-any.whl")}, "not wheel file names"),
    ({"listen": "0.0.0.0 --reload"}, "must be one word"),
    ({"depends": ("python3 >= 3.11",)}, "is not 'name' or 'name \\(op version\\)'"),
    ({"drain_seconds": -1.0}, "between 0 and 600"),
    ({"user": "Hello"}, "not a valid system user name"),
    ({"built_at": datetime(2025, 11, 29)}, "time zone"),
])
def test_bad_fields_are_usage_errors_naming_the_field(changes, message):
    with pytest.raises(UsageError, match=message):
        make_spec(**changes)


def test_the_system_user_is_the_package_name_made_a_valid_user_name():
    assert default_system_user("hello") == "hello"
    assert default_system_user("g++") == "g--"
    assert default_system_user("0ad") == "_0ad"
    assert make_spec(package="python3.11-app").system_user == "python3-11-app"
    assert make_spec(user="svc-hello").system_user == "svc-hello"
    with pytest.raises(UsageError, match="system user"):
        make_spec(package="a" * 33)


def test_the_file_name_leaves_out_the_epoch_as_dpkg_name_does():
    assert make_spec(version="1:2.0-3").deb_name == "hello_2.0-3_amd64.deb"
    assert make_spec().deb_name == "hello_0.1.0-1_amd64.deb"
    assert make_spec(version="1:2.0-3").venv_dir == "/usr/lib/hello/venvs/1_2.0-3"


# --- DEBIAN/control -------------------------------------------------------------------------


def test_control_has_what_dpkg_and_apt_need():
    fields = control_fields(render_control(make_spec(), 51234))
    assert fields["Package"] == "hello"
    assert fields["Version"] == "0.1.0-1"
    assert fields["Architecture"] == "amd64"
    assert fields["Maintainer"] == "Hello Team <hello@example.org>"
    assert fields["Installed-Size"] == "51234"
    assert fields["Priority"] == "optional"
    assert fields["Section"] == "misc"
    assert fields["Description"] == "says hello, the simplest app in the eco-system"
    assert "Rules-Requires-Root" not in fields  # a source package field; dpkg-deb --root-owner-group does it


def test_depends_are_the_wheels_needs_then_venv_pip_and_adduser():
    depends = control_fields(render_control(make_spec(), 1))["Depends"].split(", ")
    assert depends == ["python3 (>= 3.11)", "python3 (<< 3.12)", "libc6 (>= 2.17)", "python3-venv",
                       "python3-pip-whl", "adduser"]


def test_python3_is_a_dependency_even_when_the_wheels_ask_for_no_version():
    assert package_depends(make_spec(depends=(), architecture="all")) == (
        "python3", "python3-venv", "python3-pip-whl", "adduser")


def test_the_extended_description_fits_80_columns_with_paragraph_dots():
    control = render_control(make_spec(description="First paragraph. " * 20 + "\n\nSecond."), 1)
    body = control.split("\nDescription: ", 1)[1].splitlines()[1:]
    assert body and all(line.startswith(" ") and len(line) <= 80 for line in body)
    assert " ." in body
    assert body[-1] == " Second."


def test_homepage_appears_only_when_given():
    assert "Homepage" not in control_fields(render_control(make_spec(), 1))
    spec = make_spec(homepage="https://hello.example.org/")
    assert control_fields(render_control(spec, 1))["Homepage"] == "https://hello.example.org/"


def test_conffiles_triggers_and_md5sums():
    assert render_conffiles(make_spec()) == "/etc/default/hello\n"
    assert render_triggers(make_spec()) == "interest-noawait /usr/bin/python3\n"
    assert render_md5sums({"usr/b": "22", "etc/a": "11"}) == "11  etc/a\n22  usr/b\n"


# --- maintainer scripts ---------------------------------------------------------------------


def test_postinst_builds_the_venv_at_its_final_path_from_the_shipped_wheels_only():
    script = render_postinst(make_spec())
    assert script.startswith("#!/bin/sh\n")
    assert "\nset -e\n" in script
    assert "VENV=/usr/lib/hello/venvs/0.1.0-1\n" in script
    assert "APP_WHEEL=hello-0.1.0-py3-none-any.whl\n" in script
    assert '/usr/bin/python3 -I -m venv --without-pip "$VENV"' in script
    assert 'set -- /usr/share/python-wheels/pip-*.whl' in script
    assert '--no-index --find-links "$BASE/wheels"' in script
    assert "--only-binary :all:" in script
    assert "/opt" not in script


def test_postinst_is_idempotent_by_reading_what_is_there():
    script = render_postinst(make_spec())
    configure = script.split("    configure)\n", 1)[1].split(";;", 1)[0]
    assert "if ! venv_ready; then" in configure
    assert "ensure_user" in configure
    assert 'if ! getent passwd "$SYSTEM_USER"' in script
    assert 'mv -T "$BASE/venv.new" "$BASE/venv"' in script
    assert "adduser --system --group" in script


def test_postinst_keeps_the_venvs_of_the_newest_three_versions_for_rollback():
    script = render_postinst(make_spec())
    configure = script.split("    configure)\n", 1)[1].split(";;", 1)[0]
    assert "\nKEEP=3\n" in script
    assert configure.index("point_current_venv") < configure.index("prune_old_venvs")
    assert 'ls -dt "$BASE"/venvs/*/.ready' in script


def run_prune(script: str, base: Path, current: str) -> subprocess.CompletedProcess[str]:
    """postinst's prune_old_venvs under dash, with Python 3.11 and "in use" read from a marker."""
    functions = script.split('case "$1" in', 1)[0]
    program = functions + textwrap.dedent(f"""
        BASE={base}
        VENV={base}/venvs/{current}
        python_minor() {{ echo 3.11; }}
        venv_in_use() {{ [ -f "$1/in-use" ]; }}
        prune_old_venvs
        """)
    return subprocess.run(["dash", "-c", program], capture_output=True, text=True, check=True)


def make_venv(base: Path, version: str, age: int, python: str | None = "3.11") -> Path:
    venv = base / "venvs" / version
    venv.mkdir(parents=True)
    if python is not None:
        (venv / ".ready").write_text(f"{python}\n")
        os.utime(venv / ".ready", (1_700_000_000 - age, 1_700_000_000 - age))
    return venv


@pytest.mark.skipif(shutil.which("dash") is None, reason="dash is not installed")
def test_prune_keeps_the_configured_venv_and_the_two_newest_others(tmp_path):
    for version, age in (("1", 50), ("2", 40), ("3", 30), ("4", 20)):
        make_venv(tmp_path, version, age)
    make_venv(tmp_path, "2b", 35, python="3.9")  # would be rebuilt anyway: no use for a rollback
    make_venv(tmp_path, "half", 0, python=None)  # an interrupted build
    # A rollback to version 2: it counts as the newest although its venv is older.
    run_prune(render_postinst(make_spec()), tmp_path, current="2")
    assert sorted(path.name for path in (tmp_path / "venvs").iterdir()) == ["2", "3", "4"]
    run_prune(render_postinst(make_spec()), tmp_path, current="2")
    assert sorted(path.name for path in (tmp_path / "venvs").iterdir()) == ["2", "3", "4"]


@pytest.mark.skipif(shutil.which("dash") is None, reason="dash is not installed")
def test_prune_keeps_a_venv_beyond_the_three_while_an_instance_runs_it(tmp_path):
    for version, age in (("1", 50), ("2", 40), ("3", 30), ("4", 20)):
        make_venv(tmp_path, version, age)
    (tmp_path / "venvs" / "1" / "in-use").touch()
    done = run_prune(render_postinst(make_spec()), tmp_path, current="4")
    assert sorted(path.name for path in (tmp_path / "venvs").iterdir()) == ["1", "2", "3", "4"]
    assert f"hello: keeping {tmp_path}/venvs/1, a running instance still uses it" in done.stderr
    (tmp_path / "venvs" / "1" / "in-use").unlink()
    run_prune(render_postinst(make_spec()), tmp_path, current="4")
    assert sorted(path.name for path in (tmp_path / "venvs").iterdir()) == ["2", "3", "4"]


def test_postinst_rebuilds_on_the_python_trigger_only_if_python_changed():
    triggered = render_postinst(make_spec()).split("    triggered)\n", 1)[1].split(";;", 1)[0]
    assert 'if [ -d "$VENV" ] && ! venv_ready; then' in triggered


def test_values_reach_the_scripts_shell_quoted():
    script = render_postinst(make_spec(summary="it's 100% hello: yes, really"))
    assert "GECOS='it'\"'\"'s 100% hello  yes  really'\n" in script


def test_prerm_stops_instances_and_removes_venvs_only_on_remove():
    script = render_prerm(make_spec())
    remove = script.split("    remove)\n", 1)[1].split(";;", 1)[0]
    assert 'deb-systemd-invoke stop "$PACKAGE@*.service"' in remove
    assert "remove_venvs" in remove
    assert "    upgrade|deconfigure|failed-upgrade)\n        ;;" in script
    assert "\nsystemctl" not in script


def test_postrm_purge_removes_state_and_enablement_links_but_not_the_user():
    script = render_postrm(make_spec())
    purge = script.split("    purge)\n", 1)[1].split(";;", 1)[0]
    assert 'rm -rf "$STATE_DIR"' in purge
    assert "remove_enablement_links" in purge
    assert "STATE_DIR=/var/lib/hello\n" in script
    assert "deluser" not in script
    assert "    upgrade|failed-upgrade|abort-upgrade|disappear)\n        ;;" in script


# --- the unit and its settings ----------------------------------------------------------------


def test_the_unit_runs_serve_on_the_port_named_by_the_instance():
    unit = render_unit(make_spec())
    directives = dict(unit_directives(unit))
    assert directives["ExecStart"] == (
        "/usr/lib/hello/venvs/0.1.0-1/bin/python -m sevenleague.kit.serve hello.app:app "
        "--host ${LISTEN} --port %i --drain-seconds ${DRAIN_SECONDS} "
        "--graceful-seconds ${GRACEFUL_SECONDS} --log-level ${LOG_LEVEL} "
        "--service hello")
    assert directives["User"] == "hello"
    assert directives["Type"] == "exec"
    assert directives["EnvironmentFile"] == "-/etc/default/hello"
    assert directives["StateDirectory"] == "hello"
    assert directives["TimeoutStopSec"] == "32s"
    assert directives["WantedBy"] == "multi-user.target"
    assert "Group" not in directives


def test_the_unit_names_the_catalog_service_when_it_differs_from_the_package():
    argv = serve_argv(make_spec(package="league-hello", service="hello"))
    assert argv[-2:] == ("--service", "hello")


def test_every_hardening_directive_is_in_the_unit_and_tcp_stays_allowed():
    directives = unit_directives(render_unit(make_spec()))
    for line in HARDENING:
        assert tuple(line.split("=", 1)) in directives
    assert ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX") in directives
    assert ("MemoryDenyWriteExecute", "yes") in directives
    names = [name for name, _ in directives]
    assert "PrivateNetwork" not in names  # it must listen
    assert "ProcSubset" not in names  # process_* metrics read /proc/stat


def test_a_percent_in_the_summary_is_not_a_unit_specifier():
    unit = render_unit(make_spec(summary="100% hello"))
    assert "Description=100%% hello (port %i)\n" in unit


def test_the_default_file_and_the_unit_agree_on_every_setting():
    spec = make_spec(listen="0.0.0.0", drain_seconds=2.5, graceful_seconds=10)
    defaults = dict(unit_directives(render_unit(spec)))["Environment"]
    from_unit = dict(pair.split("=", 1) for pair in defaults.split())
    from_file = dict(re.findall(r"^([A-Z_]+)=(.*)$", render_default(spec), re.MULTILINE))
    assert from_unit == from_file == {"LISTEN": "0.0.0.0", "DRAIN_SECONDS": "2.5",
                                      "GRACEFUL_SECONDS": "10", "LOG_LEVEL": "INFO"}
    assert "Keep their sum below 13:" in render_default(spec)
    assert "systemd kills the\n# instance 23 s after SIGTERM" in render_default(spec)


# --- /usr/share/doc ---------------------------------------------------------------------------


def test_copyright_is_machine_readable_with_every_bundled_license():
    text = render_copyright(make_spec())
    assert text.startswith("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n")
    paragraphs = text.strip().split("\n\n")
    assert paragraphs[1].startswith("Files: *\nCopyright: 2025 the hello authors\nLicense: proprietary\n ")
    assert paragraphs[2].startswith("Files: usr/lib/hello/wheels/*\n")
    assert " orjson 3.13.0: MPL-2.0 AND (Apache-2.0 OR MIT)" in paragraphs[2]
    assert " hello 0.1.0:" not in text


def test_changelog_entry_is_in_debian_format_and_compressed_reproducibly():
    text = render_changelog(make_spec())
    lines = text.splitlines()
    assert lines[0] == "hello (0.1.0-1) unstable; urgency=medium"
    assert lines[2] == "  * Built by sevenleague from hello-0.1.0-py3-none-any.whl and 1 dependency"
    assert lines[-1] == " -- Hello Team <hello@example.org>  Sat, 29 Nov 2025 12:00:00 +0000"
    assert all(len(line) <= 80 for line in lines)
    assert changelog_gz(make_spec()) == changelog_gz(make_spec())
    assert gzip.decompress(changelog_gz(make_spec())).decode() == text


def test_a_native_version_gets_changelog_gz():
    assert make_spec(version="1.0").changelog_name == "changelog.gz"
    assert make_spec().changelog_name == "changelog.Debian.gz"


def test_the_tree_has_every_file_with_its_mode():
    files = {item.path: item.mode for item in render_tree(make_spec())}
    assert files == {
        "DEBIAN/conffiles": 0o644, "DEBIAN/triggers": 0o644,
        "DEBIAN/postinst": MODE_SCRIPT, "DEBIAN/prerm": MODE_SCRIPT, "DEBIAN/postrm": MODE_SCRIPT,
        "lib/systemd/system/hello@.service": 0o644, "etc/default/hello": 0o600,
        "usr/share/doc/hello/copyright": 0o644, "usr/share/doc/hello/changelog.Debian.gz": 0o644,
        "usr/share/lintian/overrides/hello": 0o644,
    }


def test_rendering_is_pure():
    spec = make_spec()
    assert render_tree(spec) == render_tree(dataclasses.replace(spec))


# --- what the wheels say ------------------------------------------------------------------------


def test_a_wheel_name_with_a_build_tag_and_tag_sets_parses():
    tags = parse_wheel_name("pkg-1.0-2-cp311.cp312-cp311.cp312-manylinux_2_17_x86_64.whl")
    assert (tags.distribution, tags.version, tags.pythons) == ("pkg", "1.0", ("cp311", "cp312"))
    assert not tags.pure
    with pytest.raises(UsageError, match="not a wheel file name"):
        parse_wheel_name("pkg-1.0.tar.gz")


def test_pure_wheels_make_an_architecture_all_package():
    assert package_architecture(PURE) == "all"
    assert python_depends(PURE) == ()
    assert libc_depends(PURE) == ()


def test_cp311_binary_wheels_pin_python_to_3_11_and_the_machine():
    architecture, depends = wheel_depends([*PURE, BINARY, ABI3, OLD_GLIBC])
    assert architecture == "amd64"
    assert depends == ("python3 (>= 3.11)", "python3 (<< 3.12)", "libc6 (>= 2.17)")


def test_abi3_wheels_set_only_a_lower_bound():
    assert python_depends([ABI3]) == ("python3 (>= 3.10)",)


def test_requires_python_raises_the_lower_bound():
    assert python_depends(PURE, [">=3.11", ">=3.9.0", ""]) == ("python3 (>= 3.11)",)
    assert requires_python_floor("!=3.0.*, >=3.8.1") == (3, 8)
    assert requires_python_floor("<4") is None


def test_a_wheel_runs_with_its_lowest_glibc_tag():
    assert libc_depends([OLD_GLIBC]) == ("libc6 (>= 2.5)",)
    assert libc_depends(["x-1-cp311-cp311-manylinux_2_28_aarch64.whl"]) == ("libc6 (>= 2.28)",)
    assert libc_depends(["x-1-cp311-cp311-linux_x86_64.whl"]) == ()


def test_aarch64_wheels_make_an_arm64_package():
    assert package_architecture(["x-1-cp311-cp311-manylinux_2_28_aarch64.whl"]) == "arm64"


@pytest.mark.parametrize(("wheels", "message"), [
    ([BINARY, "y-1-cp312-cp312-manylinux_2_17_x86_64.whl"], "no Python runs every wheel"),
    ([BINARY, "y-1-cp311-cp311-manylinux_2_17_aarch64.whl"], "different machines"),
    (["y-1-cp311-cp311-musllinux_1_1_x86_64.whl"], "not for glibc Linux"),
    (["y-1-cp311-cp311-macosx_11_0_arm64.whl"], "not for glibc Linux"),
    (["y-1-py2-none-any.whl"], "not built for CPython 3"),
    (["y-1-pp310-pypy310_pp73-manylinux_2_17_x86_64.whl"], "not built for CPython 3"),
])
def test_wheels_that_cannot_share_one_debian_python_are_refused(wheels, message):
    with pytest.raises(UsageError, match=message):
        wheel_depends(wheels)
