"""A new magnet's first files: a copy of the default's published sequence with its own
[magnet] slug and title, page text and consent wording."""

from __future__ import annotations

from datetime import date

import tomli_w

from .draft_steps import SEQUENCE, table


def starting_files(
    default_files: dict[str, str],
    slug: str,
    title: str,
    page_text: str,
    consent_text: str,
    today: date,
) -> dict[str, str]:
    data = table(default_files)
    data["magnet"] = {"slug": slug, "title": title}
    guide = dict(data.get("guide", {}))
    guide["title"] = title
    if page_text.strip():
        guide["summary"] = page_text.strip()
    data["guide"] = guide
    data["consent"] = {"version": today.isoformat(), "text": consent_text.strip()}
    return {**default_files, SEQUENCE: tomli_w.dumps(data)}
