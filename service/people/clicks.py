"""Following a click redirect: check the token against its email row, record the hit, and
answer where it leads. Nothing acts on a hit; the figures read them (insights/clicks.py)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Row, select

from ..core import click_tokens
from ..core.extensions import db
from ..core.models import Automated, Click, ScheduledEmail
from ..sending.context import Context
from .bursts import mark_bursts


def follow(ctx: Context, token: str, automated: Automated | None) -> str | None:
    """The URL a genuine token leads to, after recording the hit (unless TRACK_CLICKS is
    false: links already sent keep working, nothing more is recorded); None for a token
    that is malformed, forged, or made for another row."""
    claim = click_tokens.parse(token)
    if claim is None:
        return None
    email = db.session.execute(
        select(
            ScheduledEmail.subscriber_id,
            ScheduledEmail.step_id,
            ScheduledEmail.message_id,
            ScheduledEmail.magnet_id,
            ScheduledEmail.broadcast_id,
        ).where(ScheduledEmail.id == claim.email_id)
    ).one_or_none()
    if email is None or not click_tokens.genuine(ctx.settings.secret_keys, claim, email.message_id):
        return None
    if ctx.settings.track_clicks:
        _record(ctx, claim.email_id, email, claim.url, automated)
    return claim.url


def _record(
    ctx: Context,
    email_id: int,
    email: Row,
    url: str,
    automated: Automated | None,
) -> None:
    now = ctx.now()
    # One hit of an email at a time (PostgreSQL; SQLite's writes are serial anyway): the
    # burst check below must see a concurrent hit of the same email.
    db.session.execute(
        select(ScheduledEmail.id)
        .where(ScheduledEmail.id == email_id)
        .with_for_update(key_share=True)
    )
    db.session.add(
        Click(
            email_id=email_id,
            subscriber_id=email.subscriber_id,
            step_id=email.step_id,
            magnet_id=email.magnet_id,  # copied for the kept figures (insights/kept_sql.py)
            broadcast_id=email.broadcast_id,
            url=normalized(url),
            at=now,
            automated=automated,
        )
    )
    db.session.flush()
    mark_bursts(email_id, now)
    db.session.commit()


def normalized(url: str) -> str:
    """The link as the figures count it: scheme and host lower-cased, no #fragment (the
    browser never sends it: the same page)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2].lower()  # no user:password part, ever
    return urlunsplit((parts.scheme.lower(), host, parts.path, parts.query, ""))
