"""Scanner bursts: three or more distinct links of one email hit within 2 seconds.

A security scanner (Safe Links, Defender, a mail provider's proxy) opens every link of a
message within seconds of delivery; a person opens one and reads. So the hits of such a
window are marked automated, whatever their user agent says.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import select, update

from ..core.extensions import db, rowcount
from ..core.models import Automated, Click

BURST_LINKS = 3
BURST_WINDOW = timedelta(seconds=2)


class Hit(NamedTuple):
    id: int
    url: str
    at: datetime


def in_bursts(hits: Sequence[Hit]) -> set[int]:
    """The ids of hits (sorted by time) that lie in a window of BURST_WINDOW or less
    holding BURST_LINKS or more distinct links."""
    found: set[int] = set()
    end = 0
    for start, first in enumerate(hits):
        end = max(end, start)
        while end + 1 < len(hits) and hits[end + 1].at - first.at <= BURST_WINDOW:
            end += 1
        window = hits[start : end + 1]
        if len({hit.url for hit in window}) >= BURST_LINKS:
            found.update(hit.id for hit in window)
    return found


def mark_bursts(email_id: int, at: datetime) -> int:
    """Mark the hits of one email that form a burst with a hit at `at` (earlier ones it
    completes included); return how many were marked. The caller holds the email's lock,
    so two hits at once each see the other."""
    hits = [
        Hit(*row)
        for row in db.session.execute(
            select(Click.id, Click.url, Click.at)
            .where(
                Click.email_id == email_id,
                Click.at >= at - BURST_WINDOW,
                Click.at <= at + BURST_WINDOW,
            )
            .order_by(Click.at, Click.id)
        )
    ]
    ids = in_bursts(hits)
    if not ids:
        return 0
    # A HEAD or a prefetch keeps the reason it was first marked with.
    result = db.session.execute(
        update(Click)
        .where(Click.id.in_(ids), Click.automated.is_(None))
        .values(automated=Automated.BURST)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)
