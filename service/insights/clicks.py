"""Click figures: the people who clicked, kept apart from hits that look automated, and the
top links; per step (everyone's, or a magnet's) and per broadcast. Read from the figures
the click table's triggers keep (kept_sql.py), in time bounded by steps and links."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.models import Automated
from . import rollup

TOP_LINKS = 5
NAMES = ("c_anyone", "c_people", "c_link", *(f"c_{reason}" for reason in Automated))


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
    """The figures of each step (of drip emails, guide resends under the first step, and
    each broadcast as its step); with a magnet, of that magnet's emails only."""
    return figures(rollup.read(NAMES, [rollup.EVERYONE if magnet_id is None else magnet_id]))


def figures(kept: dict[tuple[str, str], int]) -> dict[str, ClickFigures]:
    """ClickFigures by step from kept {(name, part): n}: a link's part is `step|url`."""
    by_step: dict[str, dict[str, int]] = {}
    links: dict[str, list[LinkFigure]] = {}
    for (name, part), n in kept.items():
        if name == "c_link":
            step, _, url = part.partition("|")
            links.setdefault(step, []).append(LinkFigure(url=url, people=n))
        else:
            by_step.setdefault(part, {})[name] = n
    found = {}
    for step, got in by_step.items():
        anyone, people = got.get("c_anyone", 0), got.get("c_people", 0)
        if anyone <= 0:
            continue
        ranked = sorted(links.get(step, ()), key=lambda link: (-link.people, link.url))
        found[step] = ClickFigures(
            people=people,
            automated_people=anyone - people,
            automated_hits={
                name.removeprefix("c_"): n
                for name, n in sorted(got.items())
                if name not in ("c_anyone", "c_people")
            },
            top_links=tuple(ranked[:TOP_LINKS]),
        )
    return found
