"""What checking bearer tokens costs a service: per token, and in hello's throughput.

Keys are made here (ES256), as the identity service makes them, and the kit's JWKS cache
is pre-loaded, so nothing but the checks is measured:

- a token seen for the first time (signature verified: ECDSA P-256), in microseconds;
- a token seen before (the kit remembers verified tokens until they expire);
- hello's `/whoami` in-process with auth on (a valid token, as a client re-using it
  sends it) against the same route with auth off, as throughput relative to the same
  yardstick (`throughput_in_process`), interleaved; the ratio is auth-on / auth-off.

    python benchmarks/bench_kit_auth.py [--rounds 5]

This is the token part alone, in-process; bench_secure_edge.py measures the whole secured
path (TLS at the edge and to the instance, and the token check) against the plain one,
through HAProxy. Results: benchmarks/results/kit_auth.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from typing import Any

from _common import median, write_results
from joserfc import jwt
from joserfc.jwk import ECKey
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from hello import app as hello_app
from sevenleague import kit
from sevenleague.testing import throughput_in_process

ISSUER = "https://identity.bench.test"
KEY = ECKey.generate_key("P-256", {"kid": "bench-1", "use": "sig", "alg": "ES256"}, private=True)
JWKS = {"keys": [KEY.as_dict(private=False)]}


def token(scope: str = "hello.read") -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "user-1", "aud": "hello", "exp": now + 600, "iat": now,
              "jti": uuid.uuid4().hex, "client_id": "bench", "scope": scope}
    return jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": KEY.kid}, claims, KEY)


def verify_costs(count: int) -> dict[str, float]:
    """Microseconds per verification: fresh tokens (signature checked) and a remembered one."""
    verifier = kit.TokenVerifier(ISSUER, "hello", kit.JwksCache(issuer=ISSUER, keys=JWKS))
    fresh = [token() for _ in range(count)]
    again = token()

    async def run() -> dict[str, float]:
        start = time.perf_counter()
        for each in fresh:
            await verifier.verify(each)
        first = (time.perf_counter() - start) / count
        await verifier.verify(again)
        start = time.perf_counter()
        for _ in range(count * 20):
            await verifier.verify(again)
        remembered = (time.perf_counter() - start) / (count * 20)
        return {"first_seen_us": round(first * 1e6, 1), "remembered_us": round(remembered * 1e6, 2)}

    return asyncio.run(run())


DEV_NULL = kit.JsonLines(os.open(os.devnull, os.O_WRONLY))  # the log lines are written, not shown


def hello(auth: bool) -> Any:
    settings = kit.AuthSettings(issuer=ISSUER, jwks=JWKS) if auth else None
    return kit.instrument(Starlette(routes=hello_app.routes), service="hello", access=hello_app.access,
                          auth=settings, registry=CollectorRegistry(), log=DEV_NULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=300)
    args = parser.parse_args()
    costs = [verify_costs(args.tokens) for _ in range(3)]
    header = [(b"authorization", b"Bearer " + token().encode())]
    secured, plain = hello(auth=True), hello(auth=False)
    ratios, rows = [], []
    for _ in range(args.rounds):
        on = throughput_in_process(secured, path="/whoami", headers=header)
        off = throughput_in_process(plain, path="/whoami")
        assert set(on.statuses) == {200} and set(off.statuses) == {200}
        ratios.append(on.relative / off.relative)
        rows.append({"auth_on": on.figures(), "auth_off": off.figures()})
    first = median([c["first_seen_us"] for c in costs])
    remembered = median([c["remembered_us"] for c in costs])
    path = write_results("kit_auth", {
        "verify_first_seen_us": first,
        "verify_remembered_us": remembered,
        "throughput_ratio_auth_on_over_off_median": round(median(ratios), 3),
        "throughput_ratios": [round(r, 3) for r in ratios],
        "target_ratio": 0.7,
        "rounds": rows,
        "costs": costs,
    })
    print(f"verify: first seen {first} us, remembered {remembered} us; "
          f"hello /whoami auth on / off: {median(ratios):.3f} ({[round(r, 3) for r in ratios]}) -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
