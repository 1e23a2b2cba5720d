"""Send rates as operators write them (`50/s`, `20000/d`), read as emails per second."""

from __future__ import annotations

import re

RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour|d|day)\s*", re.I)
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(text: str) -> float:
    """Emails per second for `N/s`, `N/m`, `N/h` or `N/d`; ValueError for anything else."""
    match = RATE.fullmatch(text)
    if match is None:
        raise ValueError(f"must look like 50/s or 20000/d, not {text!r}")
    count = float(match.group(1))
    if count <= 0:
        raise ValueError(f"must allow at least one email, not {text!r}")
    return count / SECONDS[match.group(2)[0].lower()]


def describe(per_second: float) -> str:
    """A rate for people: per second when it is one or more, else per minute or hour."""
    if per_second >= 1:
        return f"{per_second:.1f}/s"
    if per_second * 60 >= 1:
        return f"{per_second * 60:.1f}/min"
    return f"{per_second * 3600:.1f}/h"
