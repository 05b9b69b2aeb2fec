"""`league up` on the demo catalog: the edge, status, Prometheus and logs, all real processes."""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import time
import uuid
from collections import Counter
from urllib.parse import quote

import pytest

from sevenleague.testing import http_request
from sevenleague.testing.secrets import keep_secret


def query_prometheus(ecosystem, promql: str) -> list[dict]:
    base = ecosystem.endpoints["prometheus"]
    answer = ecosystem.get(f"{base}api/v1/query?query={quote(promql)}").json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def test_edge_spreads_20_requests_over_both_instances(ecosystem):
    edge = ecosystem.endpoints["edge"]
    answers = [ecosystem.get(edge) for _ in range(20)]
    assert [a.status for a in answers] == [200] * 20
    assert {a.body for a in answers} == {b"Hello, world!\n"}
    served = Counter(a.headers["x-served-by"] for a in answers)
    assert set(served) == {"hello/hello-1", "hello/hello-2"}
    assert min(served.values()) >= 8  # round robin, give or take a health check


def test_status_json_shows_every_process_and_instance_healthy(ecosystem):
    status = ecosystem.status()
    assert status["running"] and status["healthy"]
    offset = ecosystem.offset
    assert {p["name"]: p["port"] for p in status["processes"]} == {
        "haproxy": 8443 + offset, "prometheus": 9090 + offset, "alertmanager": 9093 + offset,
        "builds": 9300 + offset, "identity": 9400 + offset, "deploy": 9500 + offset,
        "logs": 9600 + offset, "agent": 9610 + offset, "node-exporter": 9100 + offset}
    assert [(i["name"], i["port"], i["ready"], i["edge"]) for i in status["instances"]] == [
        ("hello-1", 8001 + offset, True, "UP"), ("hello-2", 8002 + offset, True, "UP")]
    assert all(p["state"] == "RUNNING" and p["pid"] > 0 for p in status["processes"])
    assert status["endpoints"]["edge"] == f"https://127.0.0.1:{8443 + offset}/"
    assert status["endpoints"]["edge_http"] == f"http://127.0.0.1:{8080 + offset}/"
    assert status["endpoints"]["prometheus"] == f"https://127.0.0.1:{9090 + offset}/"


def test_prometheus_sees_every_instance_haproxy_and_itself_up(ecosystem):
    offset = ecosystem.offset
    expected = {
        ("hello", f"127.0.0.1:{8001 + offset}"), ("hello", f"127.0.0.1:{8002 + offset}"),
        ("haproxy", f"127.0.0.1:{8404 + offset}"), ("prometheus", f"127.0.0.1:{9090 + offset}"),
        ("alertmanager", f"127.0.0.1:{9093 + offset}"), ("builds", f"127.0.0.1:{9300 + offset}"),
        ("identity", f"127.0.0.1:{9400 + offset}"), ("deploy", f"127.0.0.1:{9500 + offset}"),
    }
    deadline = time.monotonic() + 30
    while True:
        up = {(r["metric"]["job"], r["metric"]["instance"]): r["value"][1]
              for r in query_prometheus(ecosystem, "up")}
        if all(up.get(target) == "1" for target in expected) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert {target: up.get(target) for target in expected} == dict.fromkeys(expected, "1")


def test_prometheus_has_the_request_metrics_of_hello(ecosystem):
    edge = ecosystem.endpoints["edge"]
    for _ in range(10):
        ecosystem.get(edge)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        result = query_prometheus(ecosystem, 'sum(http_requests_total{job="hello",route="/"})')
        if result and float(result[0]["value"][1]) >= 10:
            break
        time.sleep(0.5)
    assert result and float(result[0]["value"][1]) >= 10


def test_one_request_id_is_in_the_edge_and_the_instance_log(ecosystem):
    request_id = f"it-{uuid.uuid4().hex}"
    answer = ecosystem.get(ecosystem.endpoints["edge"], headers={"X-Request-ID": request_id})
    assert answer.headers["x-request-id"] == request_id
    instance = answer.headers["x-served-by"].split("/")[1]

    def lines_with_id(program: str) -> list[dict]:
        text = ecosystem.log_path(program).read_text()
        return [json.loads(line) for line in text.splitlines() if request_id in line]

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (lines_with_id(instance) and lines_with_id("haproxy")):
        time.sleep(0.1)
    [app_line] = lines_with_id(instance)
    assert (app_line["service"], app_line["instance"], app_line["route"], app_line["status"]) == (
        "hello", instance, "/", 200)
    [edge_line] = lines_with_id("haproxy")
    assert (edge_line["service"], edge_line["server"], edge_line["status"]) == ("edge", instance, 200)


def test_edge_makes_up_a_request_id_when_the_caller_sends_none(ecosystem):
    answer = ecosystem.get(ecosystem.endpoints["edge"])
    assert len(answer.headers["x-request-id"]) == 36  # a UUID from HAProxy


def test_unknown_path_is_answered_by_the_app_not_the_edge(ecosystem):
    answer = ecosystem.get(ecosystem.endpoints["edge"] + "nothing-here")
    # the same 401 as a real protected route: without a token nobody maps which paths exist
    assert answer.status == 401 and answer.json()["error"] == "missing_token"
    assert "x-served-by" in answer.headers


def test_second_up_with_nothing_changed_restarts_nothing(ecosystem):
    before = {p["name"]: p["pid"] for p in ecosystem.status()["instances"] + ecosystem.status()["processes"]}
    done = ecosystem.league("up")
    after = {p["name"]: p["pid"] for p in ecosystem.status()["instances"] + ecosystem.status()["processes"]}
    assert after == before
    assert "all healthy" in done.stdout
    assert "restarted" not in done.stdout and "reloaded" not in done.stdout


def test_league_up_issued_a_verified_certificate_for_every_process(ecosystem):
    done = ecosystem.league("pki", "status", "--json")
    certificates = {c["name"]: c for c in json.loads(done.stdout)["certificates"]}
    names = {p["name"] for p in ecosystem.status()["processes"]} | {"hello-1", "hello-2"}
    assert names - {"haproxy"} <= set(certificates)
    assert {c["state"] for c in certificates.values()} == {"ok"}
    pki = ecosystem.home / "pki"
    leaf = pki / "leaves" / "hello-1"
    verified = subprocess.run(["openssl", "verify", "-CAfile", str(pki / "ca.pem"), "-untrusted",
                               str(leaf / "chain.pem"), str(leaf / "cert.pem")],
                              capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    assert (leaf / "key.pem").stat().st_mode & 0o777 == 0o600


def test_instances_answer_only_https_verified_by_the_eco_systems_ca(ecosystem):
    port = ecosystem.status()["instances"][0]["port"]
    plain = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        plain.request("GET", "/healthz")
        assert plain.getresponse().status != 200  # never reached: the TLS server drops plain HTTP
    plain.close()
    trusted = ssl.create_default_context(cafile=str(ecosystem.home / "pki" / "ca.pem"))
    secure = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=trusted)
    secure.request("GET", "/healthz")
    assert secure.getresponse().status == 200
    secure.close()
    stranger = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=ssl.create_default_context())
    with pytest.raises(ssl.SSLCertVerificationError):
        stranger.request("GET", "/healthz")
    stranger.close()


def test_the_identity_service_runs_publishes_its_keys_and_made_the_first_admin(ecosystem):
    issuer = ecosystem.endpoints["identity"]
    discovery = json.loads(ecosystem.get(issuer + "/.well-known/openid-configuration").body)
    assert discovery["issuer"] == issuer
    keys = json.loads(ecosystem.get(discovery["jwks_uri"]).body)["keys"]
    assert keys and all("d" not in key for key in keys)  # public halves only
    password_file = ecosystem.home / "identity" / "admin-password"
    assert password_file.stat().st_mode & 0o777 == 0o600
    keep_secret(password_file.read_text().strip())
    said = ecosystem.league("up").stdout
    assert str(password_file) in said and password_file.read_text().strip() not in said


def test_plain_http_at_the_edge_only_redirects_to_https(ecosystem):
    plain = ecosystem.endpoints["edge_http"]
    answer = http_request(plain + "whoami?x=1")
    assert answer.status == 301
    assert answer.headers["location"] == ecosystem.endpoints["edge"] + "whoami?x=1"
    assert "x-served-by" not in answer.headers  # nothing behind the edge saw the request
    secure = ecosystem.get(ecosystem.endpoints["edge"])
    assert secure.status == 200 and secure.headers["strict-transport-security"].startswith("max-age=")


@pytest.mark.parametrize("name", ["prometheus", "alertmanager", "builds", "identity", "haproxy_stats"])
def test_every_platform_endpoint_is_https_only_and_verified_by_the_ca(ecosystem, name):
    url = ecosystem.endpoints[name]
    assert url.startswith("https://")
    answer = ecosystem.get(url)
    assert answer.status < 500
    try:
        plain = http_request("http://" + url.removeprefix("https://"))
    except (http.client.HTTPException, OSError):
        pass  # HAProxy and uvicorn drop a connection that does not start a TLS handshake
    else:  # Go's servers (Prometheus, Alertmanager) say why instead, and serve nothing
        assert plain.status == 400 and b"HTTPS" in plain.body, (plain.status, plain.body[:200])
    with pytest.raises(ssl.SSLCertVerificationError):
        http_request(url)  # the system's trust store does not know the eco-system's CA
