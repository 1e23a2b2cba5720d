"""The dashboard's figures: one function each, read from the figures the database keeps as
rows change (rollup.py), so a page costs the same at 1,000 people as at a million.

Each takes an optional magnet id: None counts everyone and every email (the figures as they
were before magnets), an id only that magnet's emails and the people who took it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from ..content.sequence import Sequence
from ..core.extensions import db
from ..core.models import EmailStatus, ScheduledEmail
from . import rollup

DAYS = 30
INBOX_WINDOW = timedelta(days=1)
LONGEST = 86_400  # a time to inbox past the last bucket shows as a day


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


def signups_per_day(
    now: datetime, days: int = DAYS, magnet_id: int | None = None
) -> list[DayCount]:
    """New subscribers (with a magnet: people taking it) on each UTC day of the last `days`
    days, today included, oldest first."""
    first = (now.astimezone(UTC) - timedelta(days=days - 1)).date()
    kept = rollup.read(["signups"], rollup.people_of(magnet_id), first.isoformat())
    return [
        DayCount(
            first + timedelta(days=i), kept.get(("signups", str(first + timedelta(days=i))), 0)
        )
        for i in range(days)
    ]


def funnel(
    sequence: Sequence, double_opt_in: bool, magnet_id: int | None = None
) -> list[FunnelStage]:
    """Signed up → confirmed (double opt-in only) → guide sent → downloaded → finished; with
    a magnet, of the people who took it and of its own sequence (`sequence`, its content).
    Downloaded: with a magnet, its takers who downloaded its own guide; else anyone's."""
    people = rollup.read(["people"], rollup.people_of(magnet_id))
    sent = rollup.read(["sent"], rollup.emails_of(magnet_id))
    stages = [FunnelStage("Signed up", people.get(("people", "signed_up"), 0))]
    if double_opt_in:
        stages.append(FunnelStage("Confirmed", people.get(("people", "confirmed"), 0)))
    stages += [
        FunnelStage("Guide sent", sent.get(("sent", sequence.steps[0].id), 0)),
        FunnelStage("Guide downloaded", people.get(("people", "downloaded"), 0)),
        FunnelStage("Finished the sequence", sent.get(("sent", sequence.steps[-1].id), 0)),
    ]
    return stages


def step_figures(
    sequence: Sequence, magnet_id: int | None = None, known_elsewhere: frozenset[str] = frozenset()
) -> list[StepFigures]:
    """Per step: sent, failed, bounced, unsubscribed after it, complaints. Steps no longer in
    the file (nor in `known_elsewhere`: other magnets' steps) but still in the records come
    last. Bounces and complaints count people in that state now, under the drip email the
    report names, else the last one they got; unsubscribes each withdrawal, under the last
    drip email sent before it."""
    counts = rollup.read(["sent", "failed", "refused"], rollup.emails_of(magnet_id))
    counts.update(rollup.read(["bounced", "complained", "unsub"], rollup.people_of(magnet_id)))
    by_step: dict[str, dict[str, int]] = {}
    for (name, step_id), n in counts.items():
        by_step.setdefault(step_id, {})[name] = n
    known = [step.id for step in sequence.steps]
    figures = []
    for step_id in known + sorted(set(by_step) - set(known)):
        got = by_step.get(step_id, {})
        figures.append(
            StepFigures(
                step_id=step_id,
                sent=got.get("sent", 0),
                failed=max(got.get("failed", 0) - got.get("refused", 0), 0),
                bounced=got.get("bounced", 0),
                unsubscribed=got.get("unsub", 0),
                complaints=got.get("complained", 0),
                in_file=step_id in known or step_id in known_elsewhere,
            )
        )
    return figures


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile (`share` in 0..100) of values sorted ascending."""
    rank = max(math.ceil(share / 100 * len(sorted_values)), 1)
    return sorted_values[rank - 1]


def time_to_inbox(
    now: datetime, sequence: Sequence, magnet_id: int | None = None
) -> Percentiles | None:
    """p50 and p99 of signup (or confirmation) to the SMTP server's acceptance, for the
    first emails (the guide, or the confirmation under double opt-in) sent in the last day,
    counted from the start of the hour 24 hours ago. Each is the upper bound of its
    histogram bucket (rollup_sql.BUCKETS): to the second up to 10 s, then within ~25%."""
    since = (now.astimezone(UTC) - INBOX_WINDOW).strftime("%Y-%m-%dT%H")
    kept = rollup.read(["inbox"], rollup.emails_of(magnet_id), since)
    first = {sequence.steps[0].id, ""}  # "": a confirmation email
    buckets: dict[int, int] = {}
    for (_name, part), n in kept.items():
        _hour, bucket, step_id = part.split("|", 2)
        if step_id in first:
            buckets[int(bucket)] = buckets.get(int(bucket), 0) + n
    count = sum(buckets.values())
    if count <= 0:
        return None
    return Percentiles(
        p50=timedelta(seconds=_bucket_percentile(buckets, count, 50)),
        p99=timedelta(seconds=_bucket_percentile(buckets, count, 99)),
        count=count,
    )


def _bucket_percentile(buckets: dict[int, int], count: int, share: float) -> int:
    """The nearest-rank percentile's bucket (its upper bound, in seconds)."""
    rank = max(math.ceil(share / 100 * count), 1)
    seen = 0
    for bound in sorted(buckets):
        seen += buckets[bound]
        if seen >= rank:
            return min(bound, LONGEST)
    return LONGEST


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
