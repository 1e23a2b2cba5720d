"""Replacing the links of a rendered email: the HTML part's `<a href>`s and the text part's
URLs, in one pass each, after CSS inlining (so the inliner's cache still sees one shape)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from html import escape, unescape

from .rendering import TEXT_WIDTH, RenderedEmail, wrap_text

# The HTML is css-inline's serializer output, which quotes every attribute value with `"`
# and escapes `"` inside it: attributes can be read without a parser. Only <a> and <area>
# navigate; <link>, <base> and the rest keep their href.
HREF = re.compile(
    r'(<(?:a|area)(?:\s+[^\s"\'<>/=]+(?:="[^"]*")?)*?\s+href=")([^"]*)(")', re.IGNORECASE
)
TEXT_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
# Sentence punctuation after a URL in prose is not part of it.
TRAILING = ".,;:!?*_'\""
BRACKETS = {")": "(", "]": "["}  # a closing one ends the URL unless the URL opened it

Replacement = Callable[[str], str | None]  # a link's new URL, or None to leave it


def rewrite_links(rendered: RenderedEmail, replacement: Replacement) -> RenderedEmail:
    """The email with every link the replacement answers for replaced, in both parts; the
    same URL gets the same replacement (asked once)."""
    seen: dict[str, str | None] = {}

    def new(url: str) -> str | None:
        if url not in seen:
            seen[url] = replacement(url)
        return seen[url]

    def href(match: re.Match[str]) -> str:
        found = new(unescape(match.group(2)))
        if found is None:
            return match.group(0)
        return f"{match.group(1)}{escape(found)}{match.group(3)}"

    def text_url(match: re.Match[str]) -> str:
        url, tail = _trimmed(match.group(0))
        found = new(url)
        return match.group(0) if found is None else found + tail

    return replace(
        rendered,
        html=HREF.sub(href, rendered.html),
        text=_rewrapped(TEXT_URL.sub(text_url, rendered.text)),
    )


def _rewrapped(text: str) -> str:
    """A longer link may push a line of prose past 78 characters: such lines are wrapped
    again (a link alone on its line stays: it cannot be broken)."""
    return "\n".join(
        wrap_text(line) if len(line) > TEXT_WIDTH and " " in line.strip() else line
        for line in text.split("\n")
    )


def _trimmed(url: str) -> tuple[str, str]:
    """(the URL, what followed it in the sentence): trailing punctuation, and a closing
    bracket that opened before the URL rather than inside it."""
    end = len(url)
    while end:
        last = url[end - 1]
        opened_before = last in BRACKETS and url.count(BRACKETS[last], 0, end) < url.count(
            last, 0, end
        )
        if last not in TRAILING and not opened_before:
            break
        end -= 1
    return url[:end], url[end:]
