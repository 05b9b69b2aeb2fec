"""hello through the edge, plain versus secured: what TLS everywhere and token checks cost.

Two copies of the same path, side by side, one instance each behind its own HAProxy:

- plain: HTTP from wrk to HAProxy and from HAProxy to hello, no token checks;
- secured: the eco-system's way, HTTPS at the edge with a certificate from the internal
  CA, HTTPS from HAProxy to hello verified against that CA (`verifyhost`), and hello
  checking a bearer token from a real identity service (ES256, JWKS fetched over HTTPS).

The instances are pinned to CPU 0, wrk and both HAProxys to CPU 1. The machine is
shared and noisy, so the variants run in turn, in many short rounds, and the ratio is
the median of the per-round ratios. Two ratios: requests/s as wrk sees them, and the
servers' capacity, the inverse ratio of the CPU time the instance and its HAProxy spend
per request. On two cores wrk's own TLS work shares a CPU with HAProxy, so the first
understates what the secured path keeps when clients are elsewhere; the second is what
the servers themselves pay. Variants: `/` (public) and `/whoami` (needs the
token when secured) on each side.

    python benchmarks/bench_secure_edge.py [--rounds 8] [--seconds 3] [--connections 32]

Target: secured `/whoami` keeps >= 0.7 of plain `/whoami`'s requests/s.
Results: benchmarks/results/secure_edge.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import cpu_seconds, median, write_results
from _edge import start_haproxy

from sevenleague.pki import ensure_ca, ensure_edge_certificate, ensure_leaf
from sevenleague.testing import free_port, run_wrk, serve_app
from sevenleague.testing.identity import sign_in

TARGET = 0.7
# What the kit reads from its environment: the benchmark decides it, not the shell it runs in.
RUNTIME_ENV = ("LEAGUE_OIDC_ISSUER", "LEAGUE_CA_FILE", "LEAGUE_HOME", "LEAGUE_SERVICE_URLS")


def pin(pid: int, cpu: int) -> None:
    subprocess.run(["taskset", "-pc", str(cpu), str(pid)], check=True, capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    for name in RUNTIME_ENV:
        os.environ.pop(name, None)

    with tempfile.TemporaryDirectory(prefix="bench-secure-edge-") as tmp:
        workdir = Path(tmp)
        ca = ensure_ca(workdir / "pki", "bench")
        hello_leaf, _ = ensure_leaf(ca, "hello-1", ["hello", "hello-1", "localhost"], ["127.0.0.1"])
        identity_leaf, _ = ensure_leaf(ca, "identity", ["identity", "localhost"], ["127.0.0.1"])
        edge_cert, _ = ensure_edge_certificate(ca, ["localhost"], ["127.0.0.1"])
        identity_port = free_port()
        issuer = f"https://127.0.0.1:{identity_port}"
        secure_env = {"LEAGUE_OIDC_ISSUER": issuer, "LEAGUE_CA_FILE": str(ca.ca_file)}
        with serve_app("sevenleague.identity.service:app", workdir, port=identity_port, service="identity",
                       env={"LEAGUE_HOME": str(workdir / "home"), **secure_env},
                       tls_bundle=identity_leaf.bundle, ca_file=ca.ca_file) as _identity, \
                serve_app("hello.app:app", workdir, service="hello") as plain_hello, \
                serve_app("hello.app:app", workdir, service="hello", env=secure_env,
                          tls_bundle=hello_leaf.bundle, ca_file=ca.ca_file) as secure_hello:
            for served in (plain_hello, secure_hello):
                pin(served.process.pid, 0)
            password = (workdir / "home" / "identity" / "admin-password").read_text().strip()
            token = sign_in(issuer, "admin", password, audience="hello", scope="hello.read",
                            ca_file=ca.ca_file)["access_token"]
            plain_edge, plain_url = start_haproxy(workdir, plain_hello.port, name="plain")
            secure_edge, secure_url = start_haproxy(workdir, secure_hello.port, name="secure",
                                                    certificate=edge_cert.bundle, ca_file=ca.ca_file)
            auth = {"Authorization": f"Bearer {token}"}
            variants = {
                "plain_public": (plain_url + "/", {}),
                "secure_public": (secure_url + "/", {}),
                "plain_whoami": (plain_url + "/whoami", {}),
                "secure_whoami": (secure_url + "/whoami", auth),
            }
            # the serving side of each path: its instance and its HAProxy
            servers = {name: ((plain_hello.process.pid, plain_edge.pid) if name.startswith("plain")
                              else (secure_hello.process.pid, secure_edge.pid)) for name in variants}
            try:
                for url, headers in variants.values():  # warm up: JWKS, token cache, connections
                    warm = run_wrk(url, seconds=1, connections=args.connections, cpu=1, headers=headers)
                    assert warm.errors == 0, f"{url}: {warm.errors} failed requests while warming up"
                rounds = []
                names = list(variants)
                for number in range(args.rounds):
                    order = names[number % len(names):] + names[:number % len(names)]
                    result: dict[str, dict[str, float] | float] = {}
                    for name in order:
                        url, headers = variants[name]
                        before = sum(cpu_seconds(pid) for pid in servers[name])
                        wrk = run_wrk(url, seconds=args.seconds, connections=args.connections, cpu=1,
                                      headers=headers)
                        used = sum(cpu_seconds(pid) for pid in servers[name]) - before
                        result[name] = {"rps": wrk.requests_per_second, "p99_ms": wrk.p99_ms,
                                        "errors": wrk.errors,
                                        "server_cpu_us_per_request": 1e6 * used / max(wrk.requests, 1)}
                    rps = {name: float(result[name]["rps"]) for name in names}  # type: ignore[index]
                    cost = {name: float(result[name]["server_cpu_us_per_request"])  # type: ignore[index]
                            for name in names}
                    result["secure_over_plain_whoami"] = rps["secure_whoami"] / rps["plain_whoami"]
                    result["secure_over_plain_public"] = rps["secure_public"] / rps["plain_public"]
                    # what the servers can serve on the same CPU: the inverse ratio of their cost
                    result["capacity_secure_over_plain_whoami"] = cost["plain_whoami"] / cost["secure_whoami"]
                    result["capacity_secure_over_plain_public"] = cost["plain_public"] / cost["secure_public"]
                    rounds.append(result)
                    said = ", ".join(f"{n} {rps[n]:.0f}/s {cost[n]:.0f}us" for n in names)
                    print(f"round {number + 1}: {said}"
                          + f"; whoami ratio {result['secure_over_plain_whoami']:.3f}"
                          + f" (capacity {result['capacity_secure_over_plain_whoami']:.3f})", flush=True)
            finally:
                for process in (plain_edge, secure_edge):
                    process.terminate()
                    process.wait(10)

    summary = {name: {"rps_median": median([r[name]["rps"] for r in rounds]),  # type: ignore[index]
                      "p99_ms_median": median([r[name]["p99_ms"] for r in rounds]),  # type: ignore[index]
                      "server_cpu_us_per_request_median": median(
                          [r[name]["server_cpu_us_per_request"] for r in rounds]),  # type: ignore[index]
                      "errors": sum(r[name]["errors"] for r in rounds)}  # type: ignore[index]
               for name in variants}
    ratios = {key: median([float(r[key]) for r in rounds])  # type: ignore[arg-type]
              for key in ("secure_over_plain_whoami", "secure_over_plain_public",
                          "capacity_secure_over_plain_whoami", "capacity_secure_over_plain_public")}
    path = write_results("secure_edge", {
        "settings": {"rounds": args.rounds, "seconds": args.seconds, "connections": args.connections,
                     "instances": "one hello per side, pinned to CPU 0",
                     "load": "wrk and both HAProxys pinned to CPU 1",
                     "secured": "HTTPS edge (internal CA, P-256), HTTPS to the instance with verifyhost, "
                                "ES256 bearer token checked by the kit"},
        "summary": summary, "ratios": ratios, "target": {"secure_over_plain_whoami": TARGET},
        "meets_target": {"requests_per_second": ratios["secure_over_plain_whoami"] >= TARGET,
                         "server_capacity": ratios["capacity_secure_over_plain_whoami"] >= TARGET},
        "rounds": rounds,
    })
    print(f"secured/plain /whoami: wrk {ratios['secure_over_plain_whoami']:.3f}, server capacity "
          f"{ratios['capacity_secure_over_plain_whoami']:.3f} (target {TARGET}); /: wrk "
          f"{ratios['secure_over_plain_public']:.3f}, "
          f"capacity {ratios['capacity_secure_over_plain_public']:.3f}")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
