"""Signup input: the same rules and messages for the hosted form and the JSON API."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import available_timezones

from email_validator import EmailNotValidError, validate_email

MAX_NAME = 100
FORM_TRUE = {"on", "true", "yes", "1", "y"}
BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
# Every RFC 2047 encoded word starts so, and decoders (Python's before 3.11.10 included,
# CVE-2024-6923) accept almost anything after it: any charset or none, either case, spaces.
ENCODED_WORD_START = "=?"
DNS_TIMEOUT = 3


@dataclass(frozen=True)
class SignupInput:
    email: str  # normalized
    first_name: str | None
    time_zone: str | None
    page_url: str | None
    honeypot: bool


def email_key(address: str) -> str:
    return address.casefold()


def validate_signup(
    raw: Mapping[str, object], *, from_json: bool, check_deliverability: bool = False
) -> tuple[SignupInput | None, dict[str, str]]:
    """Return the cleaned input, or None and one message per faulty field."""
    errors: dict[str, str] = {}
    address = _email(raw.get("email"), check_deliverability, errors)
    name = _first_name(raw.get("first_name"), errors)
    if not _consented(raw.get("consent"), from_json):
        errors["consent"] = "Please tick the box to agree to receive the guide and our emails."
    for optional in ("time_zone", "page"):
        if raw.get(optional) is not None and not isinstance(raw.get(optional), str):
            errors[optional] = f"The {optional.replace('_', ' ')} must be text."
    if errors or address is None:
        return None, errors
    return SignupInput(
        email=address,
        first_name=name,
        time_zone=valid_time_zone(raw.get("time_zone")),
        page_url=_short_text(raw.get("page"), 2048),
        honeypot=bool(_short_text(raw.get("website"), 200)),
    ), {}


def _email(value: object, check_deliverability: bool, errors: dict[str, str]) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        errors["email"] = "Please enter your email address."
        return None
    if not isinstance(value, str):
        errors["email"] = "The email address must be text."
        return None
    try:
        result = validate_email(
            value.strip(),
            check_deliverability=check_deliverability,
            timeout=DNS_TIMEOUT,
        )
    except EmailNotValidError as exc:
        errors["email"] = str(exc)
        return None
    except Exception:  # DNS trouble is not the visitor's fault: accept the address
        result = validate_email(value.strip(), check_deliverability=False)
    return result.normalized


def _first_name(value: object, errors: dict[str, str]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        errors["first_name"] = "The first name must be text."
        return None
    name = unicodedata.normalize("NFC", value)
    # Checked before trimming: "\r\nBcc: ..." holds control characters even at its ends.
    if any(_is_control(c) for c in name):
        errors["first_name"] = "The first name contains characters that are not allowed."
        return None
    # NFKC too: fullwidth U+FF1D U+FF1F turn into "=?" wherever text is normalized later.
    if ENCODED_WORD_START in name or ENCODED_WORD_START in unicodedata.normalize("NFKC", name):
        errors["first_name"] = 'The first name must not contain "=?".'
        return None
    name = name.strip()
    if len(name) > MAX_NAME:
        errors["first_name"] = f"The first name must be {MAX_NAME} characters or fewer."
        return None
    return name or None


def _is_control(char: str) -> bool:
    # Cs: a lone surrogate (JSON "\ud800") is no character, and no database can store it.
    return unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or char in BIDI_CONTROLS


def _consented(value: object, from_json: bool) -> bool:
    if value is True:
        return True
    return not from_json and isinstance(value, str) and value.strip().lower() in FORM_TRUE


def _short_text(value: object, limit: int) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = "".join(c for c in value.strip() if not _is_control(c))
    return text[:limit] or None


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def valid_time_zone(value: object) -> str | None:
    """An IANA zone name from the browser, or None (the sequence's default zone applies)."""
    if isinstance(value, str) and value in _zones():
        return value
    return None
