"""The suppression list: who must get no email, as keyed hashes that survive erasure."""

from __future__ import annotations

import hmac

from sqlalchemy import delete, select

from ..core.addresses import email_key
from ..core.extensions import db
from ..core.models import Suppression, SuppressionReason
from .context import Context


def address_hash(address: str, key: str) -> str:
    # hmac.digest: the one-shot C path, the same bytes as hmac.new(...).digest() for a
    # fraction of its cost (every signup hashes the address once per SECRET_KEY).
    return hmac.digest(key.encode(), email_key(address).encode(), "sha256").hex()


def address_hashes(ctx: Context, address: str) -> list[str]:
    # Every key of SECRET_KEY: an entry made before a key rotation still matches.
    return [address_hash(address, key) for key in ctx.settings.secret_keys]


def suppress(ctx: Context, address: str, reason: SuppressionReason) -> None:
    """Add the address (no-op if present). Part of the caller's transaction."""
    if is_suppressed(ctx, address):
        return
    digest = address_hash(address, ctx.settings.secret_keys[0])
    db.session.add(Suppression(email_hash=digest, reason=reason, created_at=ctx.now()))
    db.session.flush()


def is_suppressed(ctx: Context, address: str) -> bool:
    found = db.session.scalar(
        select(Suppression.id).where(Suppression.email_hash.in_(address_hashes(ctx, address)))
    )
    return found is not None


def lift(ctx: Context, address: str) -> None:
    """A fresh consent lifts the suppression. Part of the caller's transaction."""
    db.session.execute(
        delete(Suppression).where(Suppression.email_hash.in_(address_hashes(ctx, address)))
    )
