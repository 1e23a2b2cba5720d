"""A broadcast's figures: delivered, people who clicked (automated hits apart), click rate,
unsubscribes and complaints after it, and its top links."""

from __future__ import annotations

from dataclasses import dataclass

from . import clicks, rollup
from .clicks import NAMES, ClickFigures


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
    """Read from the kept figures (kept_sql.py): one statement, whatever the audience."""
    kept = rollup.read((*NAMES, "b_sent", "b_unsub", "b_complained"), [-broadcast_id])
    step = f"broadcast-{broadcast_id}"
    return BroadcastFigures(
        delivered=kept.get(("b_sent", ""), 0),
        clicks=clicks.figures(kept).get(step, ClickFigures()),
        unsubscribed_after=kept.get(("b_unsub", ""), 0),
        complained_after=kept.get(("b_complained", ""), 0),
    )
