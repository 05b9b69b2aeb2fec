"""Sizes as people write them in config files ("1GiB", "500MB", "64KiB").

Both families of units are accepted, each with its one meaning (IEC 80000-13): the
binary prefixes KiB, MiB, GiB, TiB are powers of 1024, the SI prefixes kB, MB, GB, TB
powers of 1000. "KB", "K" or "G" alone are refused rather than guessed: "KB" means
1024 bytes to JEDEC and to many tools, 1000 to others, and a store limit off by 7%
is the kind of surprise a config file should not hold. The catalog keeps whole bytes.
"""

from __future__ import annotations

import re
from fractions import Fraction

_UNITS = {
    "B": 1,
    "kB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
    "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4,
}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)(" + "|".join(_UNITS) + r")$")
_EXPECTED = 'expected a size such as "1GiB" or "500MB"'


def parse_size(text: object) -> int:
    """Bytes in `text`; raises ValueError naming the accepted spellings."""
    if not isinstance(text, str):
        raise ValueError(f"{_EXPECTED}, got {text!r}")
    match = _SIZE.match(text.strip())
    if not match:
        raise ValueError(f"{_EXPECTED}, got {text!r}")
    size = Fraction(match.group(1)) * _UNITS[match.group(2)]
    if size.denominator != 1:
        raise ValueError(f"expected a size of whole bytes, got {text!r} ({float(size):g} bytes)")
    if size <= 0:
        raise ValueError(f"expected a size above zero, got {text!r}")
    return int(size)


def format_size(size: int) -> str:
    """The shortest exact spelling of `size` bytes, binary units first on a tie ("1GiB", "500MB")."""
    spellings = [f"{size // factor}{unit}" for unit, factor in _UNITS.items() if size % factor == 0]
    return min(reversed(spellings), key=len)
