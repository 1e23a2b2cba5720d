"""What we hold on people: everything on one person, erasure, and the list as CSV."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any

from sqlalchemy import func, select

from ..core.addresses import email_key
from ..core.extensions import db
from ..core.models import (
    Click,
    ConsentAction,
    ConsentRecord,
    DeliveryAttempt,
    Enrolment,
    Magnet,
    ScheduledEmail,
    Subscriber,
    SuppressionReason,
    WebhookEvent,
)
from ..sending.context import Context
from ..sending.suppression import is_suppressed, suppress
from .enrolments import magnets_of

EXPORT_FIELDS = (
    "email",
    "first_name",
    "status",
    "signed_up_at",
    "consented_at",
    "consent_version",
    "confirmed_at",
    "unsubscribed_at",
    "guide_downloads",
    "magnets",  # the slugs of the magnets taken, space-separated, in alphabetical order
)


def find(address: str) -> Subscriber | None:
    return db.session.scalar(select(Subscriber).where(Subscriber.email_key == email_key(address)))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def describe(ctx: Context, subscriber: Subscriber) -> dict:
    """All we hold on one person, as plain data (for `subscribers show`)."""
    slugs = {row.id: row.slug for row in db.session.execute(select(Magnet.id, Magnet.slug))}
    reports = _reports(subscriber.id)
    return {
        "email": subscriber.email,
        "first_name": subscriber.first_name,
        "status": subscriber.status,
        "time_zone": subscriber.time_zone,
        "signed_up_at": _iso(subscriber.created_at),
        "confirmed_at": _iso(subscriber.confirmed_at),
        "unsubscribed_at": _iso(subscriber.unsubscribed_at),
        "suppressed": is_suppressed(ctx, subscriber.email),
        "guide_downloads": {
            "count": subscriber.guide_downloads,
            "first_at": _iso(subscriber.first_download_at),
            "last_at": _iso(subscriber.last_download_at),
        },
        "magnets": _magnets(subscriber),
        "consents": [_consent(c, slugs) for c in subscriber.consents],
        "emails": [_email(e, slugs, reports) for e in subscriber.emails],
        "clicks": [_click(c) for c in _clicks(subscriber.id)],
    }


def _magnets(subscriber: Subscriber) -> list[dict]:
    """Each magnet taken: when, whether its emails still run, and its consent entries."""
    taken = magnets_of(subscriber)
    slugs = {magnet.id: magnet.slug for magnet, _found in taken}
    return [
        {
            "slug": magnet.slug,
            "title": magnet.title,
            "taken_at": _iso(found.taken_at),
            "stopped_at": _iso(found.stopped_at),
            "stop_reason": found.stop_reason,
            "guide_downloads": found.guide_downloads,  # of this magnet's guide
            "consents": [
                _consent(c, slugs) for c in subscriber.consents if c.magnet_id == magnet.id
            ],
        }
        for magnet, found in taken
    ]


def _consent(record: ConsentRecord, slugs: dict[int, str]) -> dict:
    return {
        "action": record.action,
        "magnet": slugs.get(record.magnet_id) if record.magnet_id else None,  # None: all
        "at": _iso(record.created_at),
        "text": record.text,
        "text_version": record.text_version,
        "text_sha256": record.text_sha256,
        "source": record.source,
        "page_url": record.page_url,
        "ip": record.ip,
        "user_agent": record.user_agent,
    }


def _reports(subscriber_id: int) -> dict[int, list[dict]]:
    """The providers' bounce and complaint reports that name one of this person's emails,
    by email."""
    found: dict[int, list[dict]] = {}
    rows = db.session.scalars(
        select(WebhookEvent)
        .join(ScheduledEmail, ScheduledEmail.id == WebhookEvent.email_id)
        .where(ScheduledEmail.subscriber_id == subscriber_id)
        .order_by(WebhookEvent.id)
    )
    for row in rows:
        assert row.email_id is not None  # the join
        found.setdefault(row.email_id, []).append(
            {"at": _iso(row.received_at), "kind": row.kind, "provider": row.provider}
        )
    return found


def _email(email: ScheduledEmail, slugs: dict[int, str], reports: dict[int, list[dict]]) -> dict:
    return {
        "magnet": slugs.get(email.magnet_id) if email.magnet_id else None,
        "step": email.step_id,
        "purpose": email.purpose,
        "status": email.status,
        "due_at": _iso(email.due_at),
        "sent_at": _iso(email.sent_at),
        "message_id": email.message_id,
        "attempts": [_attempt(a) for a in email.deliveries],
        "reports": reports.get(email.id, []),  # bounces and complaints that name it
    }


def _attempt(attempt: DeliveryAttempt) -> dict:
    return {
        "at": _iso(attempt.created_at),
        "outcome": attempt.outcome,
        "smtp_code": attempt.smtp_code,
        "smtp_reply": attempt.smtp_reply,
    }


def _clicks(subscriber_id: int) -> list[Click]:
    return list(
        db.session.scalars(
            select(Click).where(Click.subscriber_id == subscriber_id).order_by(Click.id)
        )
    )


def _click(click: Click) -> dict:
    return {
        "at": _iso(click.at),
        "step": click.step_id,
        "url": click.url,
        "automated": click.automated,
    }


def forget(ctx: Context, subscriber: Subscriber) -> None:
    """Erase the person; only a keyed hash stays, so they get no email until they consent
    again. Consent records, emails, the delivery log and clicks go with the subscriber row."""
    suppress(ctx, subscriber.email, SuppressionReason.ERASED)
    db.session.delete(subscriber)
    db.session.commit()


def count(magnet_id: int | None = None) -> int:
    """Subscribers (with a magnet: those who took it)."""
    if magnet_id is not None:
        query = select(func.count(Enrolment.id)).where(Enrolment.magnet_id == magnet_id)
        return db.session.scalar(query) or 0
    return db.session.scalar(select(func.count(Subscriber.id))) or 0


def _taken() -> Any:
    """Per subscriber: the slugs of the magnets taken, in one string."""
    return (
        select(
            Enrolment.subscriber_id,
            func.aggregate_strings(Magnet.slug, " ").label("slugs"),
        )
        .join(Magnet, Magnet.id == Enrolment.magnet_id)
        .group_by(Enrolment.subscriber_id)
        .subquery()
    )


def export_rows(batch: int = 1000, magnet_id: int | None = None) -> Iterator[dict]:
    """Every subscriber (with a magnet: who took it) with status, consent times and the
    magnets taken, streamed in id order."""
    taken = _taken()
    first_consent = (
        select(ConsentRecord.subscriber_id, func.min(ConsentRecord.created_at).label("at"))
        .where(ConsentRecord.action == ConsentAction.CONSENT)
        .group_by(ConsentRecord.subscriber_id)
        .subquery()
    )
    last_version = (
        select(ConsentRecord.subscriber_id, func.max(ConsentRecord.text_version).label("version"))
        .group_by(ConsentRecord.subscriber_id)
        .subquery()
    )
    query = (
        select(Subscriber, first_consent.c.at, last_version.c.version, taken.c.slugs)
        .outerjoin(first_consent, first_consent.c.subscriber_id == Subscriber.id)
        .outerjoin(last_version, last_version.c.subscriber_id == Subscriber.id)
        .outerjoin(taken, taken.c.subscriber_id == Subscriber.id)
        .order_by(Subscriber.id)
        .execution_options(yield_per=batch)
    )
    if magnet_id is not None:
        query = query.where(
            select(Enrolment.id)
            .where(Enrolment.subscriber_id == Subscriber.id, Enrolment.magnet_id == magnet_id)
            .exists()
        )
    for subscriber, consented_at, version, slugs in db.session.execute(query):
        yield {
            "email": subscriber.email,
            "first_name": subscriber.first_name or "",
            "status": subscriber.status,
            "signed_up_at": _iso(subscriber.created_at),
            "consented_at": _iso(consented_at) or "",
            "consent_version": version or "",
            "confirmed_at": _iso(subscriber.confirmed_at) or "",
            "unsubscribed_at": _iso(subscriber.unsubscribed_at) or "",
            "guide_downloads": subscriber.guide_downloads,
            "magnets": " ".join(sorted((slugs or "").split())),
        }


def write_csv(out: IO[str], rows: Iterator[dict]) -> int:
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    written = 0
    for row in rows:
        writer.writerow(row)
        written += 1
    return written
