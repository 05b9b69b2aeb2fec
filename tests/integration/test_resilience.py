"""Things go wrong while requests flow: an instance dies, the edge reloads its config.

The figures (requests answered, requests failed) are recorded as JSON. A drain (SIGTERM)
and a reload must lose nothing. A SIGKILL can only cut what the killed instance was
answering at that instant: HAProxy retries (on another instance) every GET that got no
response, but a response whose headers were already on their way to the client cannot
be taken back, so at most the requests in flight there can fail.
"""

from __future__ import annotations

import os
import signal
import time

from sevenleague.hosts import wait_until
from sevenleague.testing import SteadyLoad, record_figures


def instance(ecosystem, name: str) -> dict:
    return next(i for i in ecosystem.status()["instances"] if i["name"] == name)


CLIENTS = 4


def test_sigkill_of_an_instance_under_load_is_restarted_and_routed_around(ecosystem):
    victim = instance(ecosystem, "hello-1")
    assert victim["healthy"]
    with SteadyLoad(ecosystem.endpoints["edge"], clients=CLIENTS, ca_file=ecosystem.ca_file) as load:
        time.sleep(1.0)
        os.kill(victim["pid"], signal.SIGKILL)
        restarted = wait_until(
            lambda: (lambda i: i["pid"] not in (0, victim["pid"]) and i["healthy"])(
                instance(ecosystem, "hello-1")), timeout=30, interval=0.2)
        time.sleep(1.0)  # traffic keeps flowing after it is back in rotation
    tally = load.tally
    record_figures("sigkill-instance-under-load", tally.as_figures())
    print(f"\nSIGKILL under load: {tally.ok} answered, {tally.failed} failed; {tally.served_by}")
    assert restarted, "supervisord did not restart hello-1, or the edge did not take it back"
    assert tally.ok > 100
    # at most the requests hello-1 was in the middle of answering (one per client)
    assert tally.failed <= CLIENTS, tally.errors
    assert tally.served_by["hello/hello-2"] > 0 and tally.served_by["hello/hello-1"] > 0


def test_a_config_reload_under_load_drops_no_request(ecosystem, tmp_path):
    changed = tmp_path / "ecosystem.toml"
    changed.write_text(ecosystem.catalog.read_text().replace("rise = 2", "rise = 3"))
    before = {i["name"]: i["pid"] for i in ecosystem.status()["instances"]}
    with SteadyLoad(ecosystem.endpoints["edge"], clients=CLIENTS, ca_file=ecosystem.ca_file) as load:
        time.sleep(0.5)
        done = ecosystem.league("up", catalog=changed)
        live_config = (ecosystem.home / "haproxy" / "haproxy.cfg").read_text()
        time.sleep(0.5)
        restored = ecosystem.league("up")
        time.sleep(0.5)
    tally = load.tally
    record_figures("haproxy-reload-under-load", tally.as_figures())
    assert "reloaded haproxy" in done.stdout and "reloaded haproxy" in restored.stdout
    assert {i["name"]: i["pid"] for i in ecosystem.status()["instances"]} == before
    assert "rise 3" in live_config
    assert tally.ok > 100
    assert tally.failed == 0, tally.errors


def test_sigterm_drains_an_instance_out_of_rotation_without_errors(ecosystem):
    victim = instance(ecosystem, "hello-2")
    with SteadyLoad(ecosystem.endpoints["edge"], clients=CLIENTS, ca_file=ecosystem.ca_file) as load:
        time.sleep(0.5)
        os.kill(victim["pid"], signal.SIGTERM)  # supervisord restarts it after it exits
        back = wait_until(
            lambda: (lambda i: i["pid"] not in (0, victim["pid"]) and i["healthy"])(
                instance(ecosystem, "hello-2")), timeout=30, interval=0.2)
        time.sleep(0.5)
    tally = load.tally
    record_figures("sigterm-instance-under-load", tally.as_figures())
    assert back
    assert tally.failed == 0, tally.errors
