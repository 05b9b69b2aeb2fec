"""When a certificate is renewed: at two thirds of its life.

Renewing at 2/3 leaves a third of the lifetime (8 h of a 24 h leaf) to notice and fix
a renewal that fails, before anything expires; renewing later saves nothing worth
that margin. The decision is a pure function of the certificate and the time, so the
renewer, `league pki status` and the tests all agree on it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography import x509


def renewal_time(cert: x509.Certificate) -> datetime:
    """The moment a certificate becomes due for renewal."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    return start + (end - start) * 2 / 3


def needs_renewal(cert: x509.Certificate, now: datetime) -> bool:
    """True from two thirds of the certificate's life on (and once it has expired)."""
    return now >= renewal_time(cert)


def expired(cert: x509.Certificate, now: datetime) -> bool:
    return now >= cert.not_valid_after_utc


def moment(now: datetime | None) -> datetime:
    """`now` (default: the clock) in UTC, to the second: X.509 times have whole seconds."""
    when = now or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).replace(microsecond=0)
