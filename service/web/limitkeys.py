"""Rate-limit keys that name a person: a keyed hash, never the address itself, since the
keys are stored in Redis and printed in the limiter's log lines."""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app


def hashed_key(kind: str, value: str) -> str:
    """`kind:` and an HMAC of the value under SECRET_KEY: stable per value, unreadable, and
    no dictionary of addresses can be hashed without the key."""
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
    return f"{kind}:{digest[:32]}"
