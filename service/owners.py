"""Owners of the list: creating them, checking a password, and what a session is bound to."""

from __future__ import annotations

import hashlib
import secrets
from functools import lru_cache

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from .clock import utcnow
from .extensions import db
from .models import Owner

MIN_PASSWORD = 12


class OwnerError(ValueError):
    """An owner cannot be created as asked; the message says why."""


def owner_key(address: str) -> str:
    return address.strip().casefold()


def create(address: str, password: str) -> Owner:
    from email_validator import EmailNotValidError, validate_email

    try:
        email = validate_email(address.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise OwnerError(f"{address!r} is not an email address: {exc}") from None
    if len(password) < MIN_PASSWORD:
        raise OwnerError(f"the password must be at least {MIN_PASSWORD} characters")
    key = owner_key(email)
    if db.session.scalar(select(Owner.id).where(Owner.email == key)) is not None:
        raise OwnerError(f"an owner {key} exists already")
    owner = Owner(
        email=key,
        password_hash=generate_password_hash(password, method="scrypt"),
        created_at=utcnow(),
    )
    db.session.add(owner)
    db.session.commit()
    return owner


def all_owners() -> list[Owner]:
    return list(db.session.scalars(select(Owner).order_by(Owner.email)))


def authenticate(address: str, password: str) -> Owner | None:
    """The owner whose address and password these are, or None, taking the same time either
    way; a success records the login."""
    owner = db.session.scalar(select(Owner).where(Owner.email == owner_key(address)))
    valid = check_password_hash(owner.password_hash if owner else _dummy_hash(), password)
    if owner is None or not valid:
        return None
    owner.last_login_at = utcnow()
    db.session.commit()
    return owner


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Checked when the address is unknown, so a wrong address costs as long as a wrong
    # password and the timing tells nobody which addresses are owners.
    return generate_password_hash(secrets.token_hex(16), method="scrypt")


def session_stamp(owner: Owner) -> str:
    """What a session is bound to besides the owner's id: a new password ends old sessions."""
    return hashlib.sha256(owner.password_hash.encode()).hexdigest()[:32]
