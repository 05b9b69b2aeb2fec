"""Applying a plan: checked by the real tools first, written only when all of it passes."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

from sevenleague.catalog import load_catalog
from sevenleague.ecosystem import (
    ConfigRejected,
    Plan,
    RenderedFile,
    StateLayout,
    apply_plan,
    find_tools,
    render_plan,
)
from sevenleague.hosts import LocalHost

from ..conftest import ROOT


@pytest.fixture
def home():
    return Path(tempfile.mkdtemp(prefix="apply-"))


def test_a_config_the_tool_rejects_changes_no_live_file(home):
    layout = StateLayout(home)
    tools = find_tools(sys.executable)
    good = render_plan(load_catalog(ROOT / "ecosystem.toml"), layout, tools)
    alertmanager = next(f for f in good.files if f.checker == "alertmanager")
    broken = RenderedFile(layout.haproxy.config, "frontend edge\n    bind :notaport\n", checker="haproxy")
    plan = Plan(files=(alertmanager, broken), programs=(), listens=(), snapshot={})
    with pytest.raises(ConfigRejected) as raised:
        apply_plan(plan, layout, LocalHost("t", home), tools)
    assert raised.value.lines()[0].startswith("haproxy rejected the rendered haproxy.cfg: ")
    assert not layout.haproxy.config.exists()
    assert not alertmanager.path.exists()  # valid, but not written alone
    assert not (home / "supervisord.pid").exists()


def test_prometheus_yml_is_checked_with_the_new_target_files(home):
    layout = StateLayout(home)
    tools = find_tools(sys.executable)
    good = render_plan(load_catalog(ROOT / "ecosystem.toml"), layout, tools)
    target = next(f for f in good.files if f.path.name == "hello.json")
    files = tuple(RenderedFile(f.path, "not json\n") if f is target else f for f in good.files)
    with pytest.raises(ConfigRejected, match=r"prometheus rejected the rendered prometheus\.yml"):
        apply_plan(Plan(files=files, programs=(), listens=(), snapshot={"ecosystem": "demo"},
                        certificates=good.certificates), layout, LocalHost("t", home), tools)
    assert not target.path.exists()
