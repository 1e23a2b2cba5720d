"""Owners of the list: creating them, checking and changing a password, ending sessions."""

from __future__ import annotations

import secrets
from functools import lru_cache

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from ..core.addresses import email_key, normalized
from ..core.clock import utcnow
from ..core.extensions import db
from ..core.models import AuditAction, Owner
from . import audit

MIN_PASSWORD = 12


class OwnerError(ValueError):
    """An owner cannot be created as asked; the message says why."""


def create(address: str, password: str) -> Owner:
    email = normalized(address)
    if email is None:
        raise OwnerError(f"{address!r} is not an email address")
    password_hash = _hash(password)
    key = email_key(email)
    if db.session.scalar(select(Owner.id).where(Owner.email == key)) is not None:
        raise OwnerError(f"an owner {key} exists already")
    owner = Owner(email=key, password_hash=password_hash, created_at=utcnow())
    db.session.add(owner)
    db.session.commit()
    return owner


def change_password(address: str, password: str) -> Owner:
    """Give the owner a new password and end every session they have."""
    password_hash = _hash(password)
    owner = db.session.scalar(select(Owner).where(Owner.email == email_key(address)))
    if owner is None:
        raise OwnerError(f"there is no owner {email_key(address)}")
    owner.password_hash = password_hash
    _bump_generation(owner)
    db.session.commit()
    return owner


def end_sessions(owner: Owner) -> None:
    """Every session made so far stops working (signing out)."""
    _bump_generation(owner)
    db.session.commit()


def _bump_generation(owner: Owner) -> None:
    owner.session_generation = Owner.session_generation + 1  # in SQL: no lost update


def _hash(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise OwnerError(f"the password must be at least {MIN_PASSWORD} characters")
    return generate_password_hash(password, method="scrypt")


def all_owners() -> list[Owner]:
    return list(db.session.scalars(select(Owner).order_by(Owner.email)))


def authenticate(address: str, password: str) -> Owner | None:
    """The owner whose address and password these are, or None, taking the same time either
    way; a success records the login."""
    owner = db.session.scalar(select(Owner).where(Owner.email == email_key(address)))
    valid = check_password_hash(owner.password_hash if owner else _dummy_hash(), password)
    if owner is None or not valid:
        return None
    owner.last_login_at = utcnow()
    audit.note(owner.email, AuditAction.SIGN_IN, "signed in", owner.last_login_at)
    db.session.commit()
    return owner


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Checked when the address is unknown, so a wrong address costs as long as a wrong
    # password and the timing tells nobody which addresses are owners.
    return generate_password_hash(secrets.token_hex(16), method="scrypt")
