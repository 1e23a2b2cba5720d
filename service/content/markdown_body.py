"""A step's body written in Markdown becomes its two templates: body.html in the shared
_base layout (the renderer inlines the CSS) and a hand-readable body.txt. The Jinja
expressions the owner writes ({{ first_name }}, {{ guide_url }}) pass through untouched."""

from __future__ import annotations

import re
from collections.abc import Iterator

from markdown_it import MarkdownIt
from markdown_it.token import Token

# {{ ... }} and {% ... %}: kept out of Markdown's hands (a URL "{{ guide_url }}" is no
# link destination to it) and put back afterwards, exactly as written.
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
PLACEHOLDER = re.compile(r"JINJAX(\d+)X")
# No raw HTML in Markdown mode: whoever wants it has the HTML mode.
_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


def markdown_html(source: str) -> str:
    """Markdown to an HTML fragment, raw HTML escaped (the one renderer steps and broadcasts
    share)."""
    return _md.render(source)


def to_templates(markdown: str, subject: str) -> tuple[str, str]:
    """(body.html, body.txt) for this Markdown and the step's subject template."""
    source, kept = _hide_jinja(markdown.replace("\r\n", "\n"))
    html = _restore(markdown_html(source), kept)
    text = _restore(_text(_md.parse(source)), kept)
    # The <title> is the subject; a subject cannot end the block it sits in.
    title = subject.replace("{%", "").replace("%}", "").strip()
    html_template = (
        '{% extends "_base/base.html" %}\n'
        f"{{% block subject %}}{title}{{% endblock %}}\n"
        "{% block content %}\n"
        f"{html.strip()}\n"
        "{% endblock %}\n"
    )
    text_template = (
        '{% extends "_base/base.txt" %}\n'
        "{% block content %}\n"
        f"{text.strip()}\n"
        "{% endblock %}\n"
    )
    return html_template, text_template


def _hide_jinja(markdown: str) -> tuple[str, list[str]]:
    kept: list[str] = []

    def keep(match: re.Match[str]) -> str:
        if match.group(0) not in kept:  # the same expression, the same placeholder
            kept.append(match.group(0))
        return f"JINJAX{kept.index(match.group(0))}X"

    return JINJA.sub(keep, markdown), kept


def _restore(rendered: str, kept: list[str]) -> str:
    def back(match: re.Match[str]) -> str:
        number = int(match.group(1))
        return kept[number] if number < len(kept) else match.group(0)

    return PLACEHOLDER.sub(back, rendered)


def _text(tokens: list[Token]) -> str:
    """The plain text part: paragraphs, "- " lists, "1. " lists, "> " quotes, and each
    link as its words followed by its address."""
    return "\n".join(_blocks(tokens)).strip() + "\n"


def _blocks(tokens: list[Token]) -> Iterator[str]:
    prefixes: list[str] = []  # the open lists and quotes, innermost last
    numbers: list[int] = []
    for token in tokens:
        kind = token.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            numbers.append(int(token.attrs.get("start", 1) or 1) if kind[0] == "o" else 0)
        elif kind in ("bullet_list_close", "ordered_list_close"):
            numbers.pop()
            if not numbers:
                yield ""
        elif kind == "list_item_open":
            marker = f"{numbers[-1]}. " if numbers[-1] else "- "
            if numbers[-1]:
                numbers[-1] += 1
            prefixes.append(marker)
        elif kind == "list_item_close":
            prefixes.pop()
        elif kind == "blockquote_open":
            prefixes.append("> ")
        elif kind == "blockquote_close":
            prefixes.pop()
        elif kind == "inline":
            yield from _prefixed(_inline(token), prefixes, tight=bool(numbers))
        elif kind in ("fence", "code_block"):
            yield from _prefixed(token.content.rstrip("\n"), prefixes, tight=False)
        elif kind == "hr":
            yield "----"
            yield ""


def _prefixed(text: str, prefixes: list[str], tight: bool) -> Iterator[str]:
    lead = "".join(prefixes)
    pad = "".join(" " * len(p) if p != "> " else p for p in prefixes)
    for number, line in enumerate(text.split("\n")):
        yield (lead if number == 0 else pad) + line
    if not tight:
        yield ""


def _inline(token: Token) -> str:
    parts: list[str] = []
    hrefs: list[str] = []
    for child in token.children or []:
        kind = child.type
        if kind in ("text", "code_inline"):
            parts.append(child.content)
        elif kind in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif kind == "link_open":
            hrefs.append(str(child.attrs.get("href", "")))
            parts.append("\0")  # where the link's words start
        elif kind == "link_close":
            href = hrefs.pop()
            start = len(parts) - 1 - parts[::-1].index("\0")
            words = "".join(parts[start + 1 :])
            del parts[start:]
            parts.append(f"{words}: {href}" if words and words != href else href)
        elif kind == "image":
            parts.append(child.content or str(child.attrs.get("alt", "")))
    return "".join(parts)
