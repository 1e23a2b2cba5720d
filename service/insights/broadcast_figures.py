"""A broadcast's figures: delivered, people who clicked (automated hits apart), click rate,
unsubscribes and complaints after it, and its top links."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, func, select

from ..core.extensions import db
from ..core.models import EmailStatus, ScheduledEmail, Subscriber, SubscriberStatus
from .clicks import ClickFigures, for_emails


@dataclass(frozen=True)
class BroadcastFigures:
    delivered: int
    clicks: ClickFigures
    unsubscribed_after: int  # recipients who unsubscribed after it reached them
    complained_after: int  # recipients marked as complaining since it reached them

    @property
    def click_rate(self) -> float | None:
        return self.clicks.rate(self.delivered)

    def lines(self) -> list[str]:
        rate = self.click_rate
        automated = ", ".join(f"{n} {why}" for why, n in sorted(self.clicks.automated_hits.items()))
        lines = [
            f"delivered: {self.delivered}",
            f"clicked: {self.clicks.people} people"
            + (f" (rate {rate:.1f}%)" if rate is not None else ""),
            f"automated: {self.clicks.automated_people} people, hits: {automated or 'none'}",
            f"unsubscribed after: {self.unsubscribed_after}",
            f"complaints after: {self.complained_after}",
        ]
        lines += [f"link: {link.people} people {link.url}" for link in self.clicks.top_links]
        return lines


def figures(broadcast_id: int) -> BroadcastFigures:
    sent = and_(
        ScheduledEmail.broadcast_id == broadcast_id, ScheduledEmail.status == EmailStatus.SENT
    )
    delivered = db.session.scalar(select(func.count(ScheduledEmail.id)).where(sent)) or 0
    reached = select(Subscriber.id).join(
        ScheduledEmail, ScheduledEmail.subscriber_id == Subscriber.id
    )
    unsubscribed = db.session.scalar(
        select(func.count()).select_from(
            reached.where(
                sent,
                Subscriber.status == SubscriberStatus.UNSUBSCRIBED,
                Subscriber.unsubscribed_at >= ScheduledEmail.sent_at,
            ).subquery()
        )
    )
    complained = db.session.scalar(
        select(func.count()).select_from(
            reached.where(
                sent,
                Subscriber.status == SubscriberStatus.COMPLAINED,
                Subscriber.updated_at >= ScheduledEmail.sent_at,
            ).subquery()
        )
    )
    emails = select(ScheduledEmail.id).where(ScheduledEmail.broadcast_id == broadcast_id)
    return BroadcastFigures(delivered, for_emails(emails), unsubscribed or 0, complained or 0)
