"""The dashboard's figures: one function each, counted by the database (GROUP BY), not in loops.

Each takes an optional magnet id: None counts everyone and every email (the figures as they
were before magnets), an id only that magnet's emails and the people who took it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Date, SQLColumnExpression, and_, cast, func, literal_column, or_, select
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import ScalarSelect

from ..content.sequence import Sequence
from ..core.extensions import db
from ..core.models import (
    ConsentAction,
    ConsentRecord,
    DeliveryAttempt,
    EmailStatus,
    Enrolment,
    Outcome,
    Purpose,
    ScheduledEmail,
    Subscriber,
    SubscriberStatus,
)

DAYS = 30
INBOX_WINDOW = timedelta(days=1)
INBOX_SAMPLE = 10_000  # the newest first emails read for the percentiles, at most


@dataclass(frozen=True)
class DayCount:
    day: date
    count: int


@dataclass(frozen=True)
class FunnelStage:
    label: str
    count: int


@dataclass(frozen=True)
class StepFigures:
    step_id: str
    sent: int = 0
    failed: int = 0  # given up for another reason than a bounce
    bounced: int = 0
    unsubscribed: int = 0  # the last email before they unsubscribed
    complaints: int = 0
    in_file: bool = True


@dataclass(frozen=True)
class Percentiles:
    p50: timedelta
    p99: timedelta
    count: int


def _utc_day(column: SQLColumnExpression[datetime]) -> ColumnElement[Any]:
    """The UTC calendar day of a timestamp column, on SQLite (naive UTC text) and PostgreSQL."""
    if db.engine.dialect.name == "postgresql":
        # A literal, not a bound parameter: GROUP BY must repeat the SELECT's exact expression.
        return cast(func.timezone(literal_column("'UTC'"), column), Date)
    return func.date(column)


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def signups_per_day(
    now: datetime, days: int = DAYS, magnet_id: int | None = None
) -> list[DayCount]:
    """New subscribers (with a magnet: people taking it) on each UTC day of the last `days`
    days, today included, oldest first."""
    first = (now.astimezone(UTC) - timedelta(days=days - 1)).date()
    since = datetime.combine(first, time(0), UTC)
    if magnet_id is None:
        day = _utc_day(Subscriber.created_at)
        query = select(day, func.count()).where(Subscriber.created_at >= since)
    else:
        day = _utc_day(Enrolment.taken_at)
        query = select(day, func.count()).where(
            Enrolment.taken_at >= since, Enrolment.magnet_id == magnet_id
        )
    rows = db.session.execute(query.group_by(day)).all()
    counts = {_as_date(value): n for value, n in rows}
    return [
        DayCount(first + timedelta(days=i), counts.get(first + timedelta(days=i), 0))
        for i in range(days)
    ]


def _of_magnet(magnet_id: int | None) -> list[ColumnElement[bool]]:
    """The condition on scheduled_email rows that keeps one magnet's (none: all)."""
    return [] if magnet_id is None else [ScheduledEmail.magnet_id == magnet_id]


def _took(magnet_id: int | None, subscriber_id: Any = Subscriber.id) -> list[ColumnElement[bool]]:
    """The condition on subscribers that keeps those who took the magnet (none: all)."""
    if magnet_id is None:
        return []
    took = select(Enrolment.id).where(
        Enrolment.subscriber_id == subscriber_id, Enrolment.magnet_id == magnet_id
    )
    return [took.exists()]


def _step_sent(step_id: str, magnet_id: int | None = None) -> ColumnElement:
    return (
        select(func.count())
        .where(
            ScheduledEmail.purpose == Purpose.DRIP,
            ScheduledEmail.step_id == step_id,
            ScheduledEmail.status == EmailStatus.SENT,
            *_of_magnet(magnet_id),
        )
        .scalar_subquery()
    )


def funnel(
    sequence: Sequence, double_opt_in: bool, magnet_id: int | None = None
) -> list[FunnelStage]:
    """Signed up → confirmed (double opt-in only) → guide sent → downloaded → finished; with
    a magnet, of the people who took it and of its own sequence (`sequence`, its content).
    Downloads are counted per person, whichever guide they downloaded."""
    everyone = select(func.count(Subscriber.id)).where(*_took(magnet_id))
    row = db.session.execute(
        select(
            everyone.scalar_subquery(),
            everyone.where(Subscriber.confirmed_at.is_not(None)).scalar_subquery(),
            _step_sent(sequence.steps[0].id, magnet_id),
            everyone.where(Subscriber.guide_downloads > 0).scalar_subquery(),
            _step_sent(sequence.steps[-1].id, magnet_id),
        )
    ).one()
    signed_up, confirmed, guide_sent, downloaded, finished = (n or 0 for n in row)
    stages = [FunnelStage("Signed up", signed_up)]
    if double_opt_in:
        stages.append(FunnelStage("Confirmed", confirmed))
    stages += [
        FunnelStage("Guide sent", guide_sent),
        FunnelStage("Guide downloaded", downloaded),
        FunnelStage("Finished the sequence", finished),
    ]
    return stages


def _last_drip_step(
    subscriber_id: SQLColumnExpression[int],
    before: SQLColumnExpression[datetime] | None = None,
    magnet_id: int | None = None,
) -> ScalarSelect[str]:
    """The step of a subscriber's latest drip email (of that magnet) that left (or was
    refused), optionally sent no later than `before`: a correlated subquery, one index
    lookup per row counted."""
    query = select(ScheduledEmail.step_id).where(
        ScheduledEmail.subscriber_id == subscriber_id,
        ScheduledEmail.purpose == Purpose.DRIP,
        *_of_magnet(magnet_id),
    )
    if before is None:
        query = query.where(ScheduledEmail.status.in_((EmailStatus.SENT, EmailStatus.FAILED)))
    else:
        query = query.where(
            ScheduledEmail.status == EmailStatus.SENT, ScheduledEmail.sent_at <= before
        )
    return query.order_by(ScheduledEmail.id.desc()).limit(1).scalar_subquery()


def _count_by(step: ColumnElement, *where: ColumnElement, source: type) -> dict[str, int]:
    inner = select(step.label("step_id")).select_from(source).where(*where).subquery()
    rows = db.session.execute(select(inner.c.step_id, func.count()).group_by(inner.c.step_id)).all()
    return {step_id: n for step_id, n in rows if step_id is not None}


def _by_status(status: str, magnet_id: int | None) -> dict[str, int]:
    """People whose status is `status` now, by the last email they got before it happened
    (after a bounce or complaint nothing more is sent, so the latest email is that one)."""
    return _count_by(
        _last_drip_step(Subscriber.id, magnet_id=magnet_id),
        Subscriber.status == status,
        *_took(magnet_id),
        source=Subscriber,
    )


def _withdrawals(magnet_id: int | None) -> list[ColumnElement[bool]]:
    """Withdrawals that stopped this magnet: its own ("only stop emails about it") and the
    one-click ones, which stop all."""
    if magnet_id is None:
        return []
    return [
        or_(ConsentRecord.magnet_id == magnet_id, ConsentRecord.magnet_id.is_(None)),
        *_took(magnet_id, ConsentRecord.subscriber_id),
    ]


def step_figures(
    sequence: Sequence, magnet_id: int | None = None, known_elsewhere: frozenset[str] = frozenset()
) -> list[StepFigures]:
    """Per step: sent, failed, bounced, unsubscribed after it, complaints. Steps no longer in
    the file (nor in `known_elsewhere`: other magnets' steps) but still in the records come
    last."""
    by_status = db.session.execute(
        select(ScheduledEmail.step_id, ScheduledEmail.status, func.count())
        .where(
            ScheduledEmail.purpose == Purpose.DRIP,
            ScheduledEmail.status.in_((EmailStatus.SENT, EmailStatus.FAILED)),
            *_of_magnet(magnet_id),
        )
        .group_by(ScheduledEmail.step_id, ScheduledEmail.status)
    ).all()
    refused = dict(
        db.session.execute(
            select(ScheduledEmail.step_id, func.count(func.distinct(ScheduledEmail.id)))
            .join(DeliveryAttempt, DeliveryAttempt.email_id == ScheduledEmail.id)
            .where(
                ScheduledEmail.purpose == Purpose.DRIP,
                DeliveryAttempt.outcome == Outcome.BOUNCED,
                *_of_magnet(magnet_id),
            )
            .group_by(ScheduledEmail.step_id)
        ).all()
    )
    unsubscribed = _count_by(
        _last_drip_step(ConsentRecord.subscriber_id, ConsentRecord.created_at, magnet_id),
        ConsentRecord.action == ConsentAction.WITHDRAWAL,
        *_withdrawals(magnet_id),
        source=ConsentRecord,
    )
    bounced = _by_status(SubscriberStatus.BOUNCED, magnet_id)
    complaints = _by_status(SubscriberStatus.COMPLAINED, magnet_id)

    counts: dict[str, dict[str, int]] = {}
    for step_id, status, n in by_status:
        counts.setdefault(step_id, {})[status] = n
    known = [step.id for step in sequence.steps]
    seen = set(counts) | set(unsubscribed) | set(bounced) | set(complaints)
    figures = []
    for step_id in known + sorted(seen - set(known)):
        sent_failed = counts.get(step_id, {})
        figures.append(
            StepFigures(
                step_id=step_id,
                sent=sent_failed.get("sent", 0),
                failed=max(sent_failed.get("failed", 0) - refused.get(step_id, 0), 0),
                bounced=bounced.get(step_id, 0),
                unsubscribed=unsubscribed.get(step_id, 0),
                complaints=complaints.get(step_id, 0),
                in_file=step_id in known or step_id in known_elsewhere,
            )
        )
    return figures


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile (`share` in 0..100) of values sorted ascending."""
    rank = max(math.ceil(share / 100 * len(sorted_values)), 1)
    return sorted_values[rank - 1]


def time_to_inbox(
    now: datetime, sequence: Sequence, sample: int = INBOX_SAMPLE, magnet_id: int | None = None
) -> Percentiles | None:
    """p50 and p99 of signup (or confirmation) to the SMTP server's acceptance, for the
    first emails sent in the last day: the guide, or the confirmation under double opt-in."""
    first_email = and_(
        or_(
            and_(
                ScheduledEmail.purpose == Purpose.DRIP,
                ScheduledEmail.step_id == sequence.steps[0].id,
            ),
            ScheduledEmail.purpose == Purpose.CONFIRM,
        ),
        *_of_magnet(magnet_id),
    )
    rows = db.session.execute(
        select(ScheduledEmail.created_at, ScheduledEmail.sent_at)
        .where(
            first_email,
            ScheduledEmail.status == EmailStatus.SENT,
            ScheduledEmail.sent_at >= now - INBOX_WINDOW,
        )
        .order_by(ScheduledEmail.sent_at.desc())
        .limit(sample)
    ).all()
    if not rows:
        return None
    # sent_at is set on every SENT row: the filter above reads only those.
    seconds = sorted(
        max((sent - created).total_seconds(), 0.0) for created, sent in rows if sent is not None
    )
    return Percentiles(
        p50=timedelta(seconds=percentile(seconds, 50)),
        p99=timedelta(seconds=percentile(seconds, 99)),
        count=len(seconds),
    )


def oldest_due_unsent(now: datetime) -> timedelta | None:
    """How long the most overdue email not yet sent has waited past its due time (None:
    nothing is late): the dashboard shows it and the metric of that name reports it. Rows
    a worker holds count (a send stuck on its way out is late too), retries count from
    their next try. Two minimums, each read from a partial index."""
    pending = (
        select(func.min(ScheduledEmail.due_at))
        .where(ScheduledEmail.status == EmailStatus.PENDING, ScheduledEmail.due_at <= now)
        .scalar_subquery()
    )
    sending = (
        select(func.min(ScheduledEmail.due_at))
        .where(ScheduledEmail.status == EmailStatus.SENDING, ScheduledEmail.due_at <= now)
        .scalar_subquery()
    )
    row = db.session.execute(select(pending, sending)).one()
    found = [value for value in row if value is not None]
    return now - min(found) if found else None
