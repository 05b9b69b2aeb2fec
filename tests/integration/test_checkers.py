"""The real tools check what sevenleague renders and serves: haproxy -c, promtool, amtool."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sevenleague.catalog import load_catalog
from sevenleague.ecosystem import StateLayout, find_tools, render_plan
from sevenleague.ecosystem._apply import prepare_certificates, prepare_scrape_credentials
from sevenleague.hosts import write_file
from sevenleague.testing import http_request, serve_app

from ..conftest import ROOT
from ..unit.test_renderers import TWO_SERVICES


@pytest.fixture(params=["demo", "two-services"])
def rendered(request, tmp_path, write_catalog):
    if request.param == "demo":
        catalog = load_catalog(ROOT / "ecosystem.toml")
    else:
        catalog = load_catalog(write_catalog(TWO_SERVICES))
    layout = StateLayout(tmp_path / "home")
    plan = render_plan(catalog, layout, find_tools(sys.executable))
    prepare_certificates(layout.pki, catalog.name, plan.certificates)  # the configs name them
    prepare_scrape_credentials(plan)
    for file in plan.files:
        write_file(file.path, file.text, file.mode)
    return layout


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def test_haproxy_accepts_the_rendered_config_without_warnings(rendered):
    done = run("haproxy", "-c", "-f", str(rendered.haproxy.config))
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Configuration file is valid" in output
    assert "WARNING" not in output and "ALERT" not in output


def test_promtool_accepts_prometheus_yml_and_its_target_files(rendered):
    done = run("promtool", "check", "config", str(rendered.prometheus.config))
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "SUCCESS" in output
    assert "WARNING" not in output.upper().replace("WARNINGS", "")


def test_amtool_accepts_alertmanager_yml(rendered):
    done = run("amtool", "check-config", str(rendered.alertmanager.config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_finds_nothing_to_lint_in_hello_metrics(tmp_path):
    with serve_app("hello.app:app", tmp_path) as hello:
        for path in ("/", "/", "/missing"):
            http_request(hello.url + path)
        metrics = http_request(hello.url + "/metrics").body
    done = subprocess.run(["promtool", "check", "metrics"], input=metrics, capture_output=True,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == b"" and done.stderr == b"", done.stdout + done.stderr
    assert b'http_requests_total{method="GET",route="/",status_class="2xx"} 2.0' in metrics
