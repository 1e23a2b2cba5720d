"""JSON from request bodies: nesting too deep for the parser is bad input, never a crash."""

from __future__ import annotations

import json
from typing import Any

from flask.json.provider import DefaultJSONProvider


def loads(data: str | bytes, **kwargs: Any) -> Any:
    """json.loads, with a RecursionError (14 KB of `[`) turned into the ValueError that
    malformed JSON raises: the callers already answer that with a 400."""
    try:
        return json.loads(data, **kwargs)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None


class JSONProvider(DefaultJSONProvider):
    """Flask's provider, reading with loads() above: request.get_json() then answers a too
    deep body with its usual 400 (or None with silent=True, as the rate limiter asks)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s, **kwargs)
