"""Click figures: the people who clicked, kept apart from hits that look automated, and the
top links. Read from the click table alone (it holds the step), counted by the database."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Select, SQLColumnExpression, case, distinct, func, literal_column, select
from sqlalchemy.sql.elements import ColumnElement

from ..core.extensions import db
from ..core.models import Click, ScheduledEmail

TOP_LINKS = 5
ALL = ""  # the key of figures counted over everything asked for, in no groups


@dataclass(frozen=True)
class LinkFigure:
    url: str
    people: int  # distinct people who clicked it (not hits): once per person and link


@dataclass(frozen=True)
class ClickFigures:
    people: int = 0  # distinct people with a hit nothing marks as automated
    automated_people: int = 0  # people whose every hit looks automated: apart, never clicks
    automated_hits: dict[str, int] = field(default_factory=dict)  # by reason: head, burst...
    top_links: tuple[LinkFigure, ...] = ()

    def rate(self, delivered: int) -> float | None:
        """Clicked people per email delivered, as a percentage; None with none delivered."""
        return 100 * self.people / delivered if delivered else None


def per_step(magnet_id: int | None = None) -> dict[str, ClickFigures]:
    """The figures of each step (of drip emails, and guide resends under the first step);
    with a magnet, of that magnet's emails only."""
    if magnet_id is None:
        return figures(Click.step_id)
    of_magnet = select(ScheduledEmail.id).where(ScheduledEmail.magnet_id == magnet_id)
    return figures(Click.step_id, Click.email_id.in_(of_magnet))


def for_emails(emails: Select) -> ClickFigures:
    """The figures of a set of emails, given as a query of their ids (a broadcast's page:
    `select(ScheduledEmail.id).where(...)`)."""
    return figures(None, Click.email_id.in_(emails)).get(ALL, ClickFigures())


def figures(
    key: SQLColumnExpression[str] | None, *where: ColumnElement[bool]
) -> dict[str, ClickFigures]:
    """Click figures grouped by a column of the click table (None: one group, ALL), over the
    hits `where` selects. Three GROUP BY queries, whatever the number of hits."""
    name = key if key is not None else literal_column("''")  # SQL text: no GROUP BY needed
    groups = [key] if key is not None else []
    human = Click.automated.is_(None)
    people = db.session.execute(
        select(
            name,
            func.count(distinct(case((human, Click.subscriber_id)))),
            func.count(distinct(Click.subscriber_id)),
        )
        .where(*where)
        .group_by(*groups)
    ).all()
    reasons = db.session.execute(
        select(name, Click.automated, func.count())
        .where(Click.automated.is_not(None), *where)
        .group_by(*groups, Click.automated)
    ).all()
    links = db.session.execute(
        select(name, Click.url, func.count(distinct(Click.subscriber_id)))
        .where(human, *where)
        .group_by(*groups, Click.url)
    ).all()

    by_reason: dict[str, dict[str, int]] = {}
    for group, reason, hits in reasons:
        by_reason.setdefault(group, {})[str(reason)] = hits
    top: dict[str, list[LinkFigure]] = {}
    for group, url, clicked in links:
        top.setdefault(group, []).append(LinkFigure(url=url, people=clicked))
    found = {}
    for group, clicked, anyone in people:
        if not anyone:
            continue  # no hits at all: the one row of an ungrouped count
        ranked = sorted(top.get(group, ()), key=lambda link: (-link.people, link.url))
        found[group] = ClickFigures(
            people=clicked,
            automated_people=anyone - clicked,
            automated_hits=dict(sorted(by_reason.get(group, {}).items())),
            top_links=tuple(ranked[:TOP_LINKS]),
        )
    return found
