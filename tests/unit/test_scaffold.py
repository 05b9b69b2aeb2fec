"""`league new service`: the files a new service gets, the names it may take, where it is written."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import PurePosixPath

import pytest
from typer.testing import CliRunner

from sevenleague.catalog import RESERVED_NAMES, parse_catalog
from sevenleague.cli import app
from sevenleague.errors import UsageError
from sevenleague.scaffold import (
    check_service_name,
    module_name,
    render_catalog_entry,
    render_service,
    write_service,
)

from ..conftest import MINIMAL_CATALOG, ROOT

EVERY_FILE = {
    "pyproject.toml", "README.md", ".gitignore", "docs/index.md",
    "src/demo_svc/__init__.py", "src/demo_svc/app.py",
    "tests/unit/test_app.py", "tests/integration/test_server.py",
    "tests/performance/test_throughput.py",
}


def league(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sevenleague.cli", *args], capture_output=True,
                          text=True, timeout=60, check=False)


# --- rendering ---------------------------------------------------------------------------


def test_a_service_has_its_app_its_three_kinds_of_tests_docs_and_packaging():
    files = render_service("demo-svc")
    assert {str(path) for path in files} == EVERY_FILE
    assert all(isinstance(path, PurePosixPath) and not path.is_absolute() for path in files)
    assert all(text.endswith("\n") for text in files.values())


def test_the_package_is_the_name_with_underscores_and_the_service_keeps_its_name():
    files = {str(path): text for path, text in render_service("demo-svc").items()}
    assert module_name("demo-svc") == "demo_svc"
    assert 'service="demo-svc"' in files["src/demo_svc/app.py"]
    assert "from demo_svc.app import app" in files["tests/unit/test_app.py"]
    assert 'APP = "demo_svc.app:app"' in files["tests/integration/test_server.py"]
    assert "from demo_svc.app import app" in files["tests/performance/test_throughput.py"]
    assert '"demo-svc-in-process"' in files["tests/performance/test_throughput.py"]


def test_no_placeholder_is_left_in_any_path_or_text():
    for path, text in render_service("demo-svc", version="2.0.1").items():
        for placeholder in ("__NAME__", "__MODULE__", "__VERSION__"):
            assert placeholder not in str(path)
            assert placeholder not in text, f"{placeholder} left in {path}"


def test_the_version_is_the_same_in_the_package_metadata_and_the_code():
    files = {str(path): text for path, text in render_service("demo-svc", version="2.0.1").items()}
    assert tomllib.loads(files["pyproject.toml"])["project"]["version"] == "2.0.1"
    assert '__version__ = "2.0.1"' in files["src/demo_svc/__init__.py"]


def test_the_pyproject_builds_with_setuptools_from_src_and_runs_tests_in_importlib_mode():
    pyproject = tomllib.loads(render_service("demo-svc")[PurePosixPath("pyproject.toml")])
    assert pyproject["build-system"]["build-backend"] == "setuptools.build_meta"
    project = pyproject["project"]
    assert project["name"] == "demo-svc"
    assert project["dependencies"] == ["sevenleague", "starlette>=0.37"]
    assert project["optional-dependencies"]["dev"] == ["pytest>=8", "httpx>=0.27"]
    assert pyproject["tool"]["setuptools"]["packages"]["find"]["where"] == ["src"]
    pytest_options = pyproject["tool"]["pytest"]["ini_options"]
    assert "--import-mode=importlib" in pytest_options["addopts"]
    assert pytest_options["pythonpath"] == ["src"]


def test_every_python_file_compiles():
    for path, text in render_service("order-history").items():
        if path.suffix == ".py":
            compile(text, str(path), "exec")


def test_the_printed_catalog_entry_fits_the_demo_catalog_as_it_is():
    demo = (ROOT / "ecosystem.toml").read_text()
    spec = parse_catalog(demo + "\n" + render_catalog_entry("demo-svc"), "ecosystem.toml")
    service = spec.services["demo-svc"]
    assert (service.app, service.port, service.instances, service.route) == (
        "demo_svc.app:app", 8100, 2, "/demo-svc")


# --- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "billing", "order-history", "v2", "a-b-c", "x" * 32])
def test_names_the_catalog_accepts_are_accepted(name):
    assert check_service_name(name) == name
    parse_catalog(MINIMAL_CATALOG + "\n" + render_catalog_entry(name), "ecosystem.toml")


@pytest.mark.parametrize("name", ["", "Billing", "1st", "order_history", "order history", "-billing",
                                  "billing-", "bïlling", "billing.v2"])
def test_a_malformed_name_is_a_usage_error_that_states_the_rule(name):
    with pytest.raises(UsageError) as raised:
        render_service(name)
    assert raised.value.exit_code == 2
    assert raised.value.lines() == [
        f"{name!r} is not a valid service name (hint: use lowercase letters, digits and '-', "
        "start with a letter, end with a letter or digit, at most 32 characters "
        "(e.g. 'billing' or 'order-history'))"]


def test_a_name_longer_than_the_catalog_allows_is_refused_with_its_length():
    with pytest.raises(UsageError, match=r"service name 'x{33}' is 33 characters long \(hint: .*"
                                         r"at most 32 characters"):
        check_service_name("x" * 33)


@pytest.mark.parametrize("name", sorted(RESERVED_NAMES))
def test_names_the_eco_system_uses_are_refused(name):
    with pytest.raises(UsageError, match=f"the service name '{name}' is taken by the eco-system itself"):
        check_service_name(name)


@pytest.mark.parametrize("name", ["json", "email", "http", "starlette", "sevenleague", "httpx",
                                  "prometheus-client", "tests"])
def test_names_whose_package_would_hide_a_module_the_service_imports_are_refused(name):
    with pytest.raises(UsageError, match="hides the module of that name"):
        check_service_name(name)


@pytest.mark.parametrize("name", ["class", "import", "async"])
def test_python_keywords_are_refused(name):
    with pytest.raises(UsageError, match="is a Python keyword"):
        check_service_name(name)


# --- writing -------------------------------------------------------------------------------


def test_a_new_directory_gets_exactly_the_rendered_files(tmp_path):
    written = write_service("demo-svc", tmp_path / "work" / "demo-svc")
    assert written == (tmp_path / "work" / "demo-svc").resolve()
    on_disk = {str(p.relative_to(written)): p.read_text() for p in written.rglob("*") if p.is_file()}
    assert on_disk == {str(path): text for path, text in render_service("demo-svc").items()}


def test_an_existing_empty_directory_is_filled(tmp_path):
    (tmp_path / "svc").mkdir()
    write_service("demo-svc", tmp_path / "svc")
    assert (tmp_path / "svc" / "src" / "demo_svc" / "app.py").is_file()


def test_a_directory_with_anything_in_it_is_refused_and_left_as_it_was(tmp_path):
    directory = tmp_path / "svc"
    directory.mkdir()
    (directory / "notes.txt").write_text("mine\n")
    with pytest.raises(UsageError) as raised:
        write_service("demo-svc", directory)
    assert raised.value.lines() == [
        f"{directory} exists and is not empty (hint: choose a new or empty directory with --dir, "
        "or another service name)"]
    assert [p.name for p in directory.iterdir()] == ["notes.txt"]


def test_a_file_in_the_way_is_refused(tmp_path):
    (tmp_path / "svc").write_text("")
    with pytest.raises(UsageError, match="exists and is not a directory"):
        write_service("demo-svc", tmp_path / "svc")
    with pytest.raises(UsageError, match=r"cannot write service 'demo-svc' to .*svc/inner: Not a directory"):
        write_service("demo-svc", tmp_path / "svc" / "inner")
    assert (tmp_path / "svc").read_text() == ""


def test_a_bad_name_writes_nothing(tmp_path):
    with pytest.raises(UsageError):
        write_service("Demo", tmp_path / "svc")
    assert list(tmp_path.iterdir()) == []


# --- the command ---------------------------------------------------------------------------


def test_league_new_service_writes_it_and_prints_next_steps_and_the_catalog_entry(tmp_path):
    result = CliRunner().invoke(app, ["new", "service", "demo-svc", "--dir", str(tmp_path / "svc")])
    assert result.exit_code == 0, result.output
    where = (tmp_path / "svc").resolve()
    assert result.output.startswith(f"wrote service 'demo-svc' to {where}\n")
    for step in (f"cd {where}", "git init -b main", "league repo create demo-svc",
                 "git remote add league URL && git push league main", f"-m pip install -e {where}"):
        assert step in result.output
    entry = result.output[result.output.index("[services.demo-svc]"):]
    assert entry == render_catalog_entry("demo-svc")
    assert (where / "src" / "demo_svc" / "app.py").is_file()


def test_league_new_service_writes_to_a_directory_named_after_the_service_by_default(tmp_path,
                                                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["new", "service", "billing"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "billing" / "src" / "billing" / "app.py").is_file()


def test_a_bad_name_on_the_command_line_is_one_line_and_exit_2(tmp_path):
    done = league("new", "service", "Demo_Svc", "--dir", str(tmp_path / "svc"))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "league: 'Demo_Svc' is not a valid service name (hint: use lowercase letters, digits and '-', "
        "start with a letter, end with a letter or digit, at most 32 characters "
        "(e.g. 'billing' or 'order-history'))"]
    assert not (tmp_path / "svc").exists()


def test_a_non_empty_directory_on_the_command_line_is_one_line_naming_it_and_exit_2(tmp_path):
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "README.md").write_text("taken\n")
    done = league("new", "service", "demo-svc", "--dir", str(tmp_path / "svc"))
    assert done.returncode == 2
    assert done.stderr == (f"league: {tmp_path / 'svc'} exists and is not empty (hint: choose a new or "
                           "empty directory with --dir, or another service name)\n")
