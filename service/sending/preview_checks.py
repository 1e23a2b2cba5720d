"""Cheap warnings on a rendered email, of the kind spam filters score: no text part,
links to other hosts than ours, a subject in capitals."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ..content.rendering import RenderedEmail

HREF = re.compile(r"""href\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


def warnings(rendered: RenderedEmail, public_url: str) -> list[str]:
    found: list[str] = []
    if not rendered.text.strip():
        found.append("The email has no text part: some filters score an HTML-only email.")
    ours = (urlsplit(public_url).hostname or "").lower()
    others = sorted(
        {
            host
            for host in (
                (urlsplit(href).hostname or "").lower() for href in HREF.findall(rendered.html)
            )
            if host and host != ours
        }
    )
    if others:
        found.append("Links to other hosts than yours: " + ", ".join(others) + ".")
    letters = [c for c in rendered.subject if c.isalpha()]
    if len(letters) >= 4 and all(c.isupper() for c in letters):
        found.append("The subject is all in capitals: filters score that as shouting.")
    return found
