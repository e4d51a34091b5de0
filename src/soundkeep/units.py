"""Parse and print byte sizes and durations the way people write them (300TB, 1.5 GiB)."""

from __future__ import annotations

import re

from soundkeep.errors import ConfigError

_UNITS = {
    "": 1, "B": 1,
    "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15,
    "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "PIB": 2**50,
}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")


def parse_size(text: str | int | float, field: str = "size") -> int:
    """Parse '300TB', '1.5GiB' or a plain number of bytes into bytes; refuse negatives."""
    if isinstance(text, bool):
        raise ConfigError("not a size", field=field, value=text, expected="e.g. 300TB")
    if isinstance(text, int | float):
        if text < 0:
            raise ConfigError("size must not be negative", field=field, value=text,
                              expected="a size >= 0, e.g. 300TB")
        return int(text)
    if str(text).strip().startswith("-"):
        raise ConfigError("size must not be negative", field=field, value=text,
                          expected="a size >= 0, e.g. 300TB")
    m = _SIZE.match(str(text))
    if not m or m.group(2).upper() not in _UNITS:
        raise ConfigError("not a size", field=field, value=text,
                          expected="a number with an optional unit B, KB, MB, GB, TB, PB, GiB...")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def format_size(n: float) -> str:
    """Format bytes with a decimal unit, e.g. 1.50 GB."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(value) < 1000 or unit == "PB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1000
    return f"{value:.2f} PB"
