"""Emails with links of every kind, for the click tests: a copy of the shipped templates
whose guide email links out (three pages, with a query, a fragment and a > in an attribute,
and one of our own pages) beside links that must never be tracked, and whose confirmation
email links to the shop too."""

from __future__ import annotations

import re
import shutil
from html import unescape
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask

from service.core import click_tokens
from service.core.settings import DEFAULT_SEQUENCE_FILE
from tests.conftest import PUBLIC_URL, make_app
from tests.helpers import api_signup, dispatch_inline, outbox_messages, parts

BLOG = "https://blog.example.com/squats?utm_source=email&utm_medium=drip"
VIDEO = "https://Video.Example.com/watch/42#start"
SHOP = "https://shop.example.com/"
OUR_PAGE = f"{PUBLIC_URL}/m/other-guide"  # one of our own pages without a token: counted
OUT_LINKS = (BLOG, VIDEO, SHOP, OUR_PAGE)
UNTRACKED_HREFS = (
    "mailto:coach@example.com",
    "tel:+15555550100",
    "#top",
    "javascript:alert(1)",
    "/relative/page",
    "data:text/html,hi",
)
HTML_LINKS = """
<p>Read <a href="https://blog.example.com/squats?utm_source=email&amp;utm_medium=drip">the
squat post</a>, watch <a title="sets > reps" class="button"
href="https://Video.Example.com/watch/42#start">the video</a>, see
<a href="https://shop.example.com/">the shop</a> or <a href="{{ public_url }}/m/other-guide">another
guide</a>.</p>
<p><a href="mailto:coach@example.com">Write to us</a>, <a href="tel:+15555550100">call</a>,
<a href="#top">back to the top</a>, <a href="javascript:alert(1)">nothing</a>,
<a href="/relative/page">relative</a>, <a href="data:text/html,hi">data</a>.</p>
"""
TEXT_LINKS = """
Read the squat post:
https://blog.example.com/squats?utm_source=email&utm_medium=drip

A short video on it (https://Video.Example.com/watch/42#start), and our shop at https://shop.example.com/.
Another guide: {{ public_url }}/m/other-guide
Write to coach@example.com or call tel:+15555550100.
"""
HREF = re.compile(r'<a\b(?:[^>"]|"[^"]*")*?\shref="([^"]*)"', re.S)  # values may hold a >
TRACKED = re.compile(re.escape(PUBLIC_URL) + r"/r/[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")


def linking_templates(folder: Path) -> Path:
    """The shipped templates with links added to the guide email; returns the sequence file."""
    shutil.copytree(DEFAULT_SEQUENCE_FILE.parent, folder)
    html, text = folder / "guide" / "body.html", folder / "guide" / "body.txt"
    html.write_text(html.read_text().replace("<p>Talk soon,", HTML_LINKS + "<p>Talk soon,"))
    text.write_text(text.read_text().replace("Talk soon,", TEXT_LINKS + "\nTalk soon,"))
    confirm_html, confirm_text = folder / "confirm" / "body.html", folder / "confirm" / "body.txt"
    confirm_html.write_text(
        confirm_html.read_text().replace(
            "<p>{{ sender_name }}", f'<p><a href="{SHOP}">Shop</a></p>\n<p>{{{{ sender_name }}}}'
        )
    )
    confirm_text.write_text(
        confirm_text.read_text().replace("{{ sender_name }}", f"{SHOP}\n\n{{{{ sender_name }}}}")
    )
    return folder / DEFAULT_SEQUENCE_FILE.name


def linking_app(env: dict[str, str], tmp_path: Path, **settings: str) -> Flask:
    sequence = linking_templates(tmp_path / "templates")
    return make_app({**env, "SEQUENCE_FILE": str(sequence), **settings})


def send_guide(app: Flask, outbox: Path, address: str = "ann@example.com") -> tuple[str, str]:
    """Sign someone up and deliver their guide email; its (text, html) parts."""
    assert api_signup(app.test_client(), address, first_name="Ann").status_code == 202
    assert dispatch_inline(app) == ["sent"]
    msg = next(m for m in reversed(outbox_messages(outbox)) if address in m["To"])
    text, html = parts(msg)
    return text.replace("\r\n", "\n"), html.replace("\r\n", "\n")  # as rendered


def hrefs(html: str) -> list[str]:
    return [unescape(href) for href in HREF.findall(html)]


def tracked_paths(html: str) -> dict[str, str]:
    """The HTML part's click-redirect paths, by the URL each token leads to."""
    found = {}
    for href in hrefs(html):
        if href.startswith(f"{PUBLIC_URL}/r/"):
            path = urlsplit(href).path
            claim = click_tokens.parse(path.removeprefix("/r/"))
            assert claim is not None, href
            found[claim.url] = path
    return found
