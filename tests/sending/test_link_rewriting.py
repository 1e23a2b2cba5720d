"""Links in sequence emails go through the click redirect; our own token links, mailto:,
tel:, anchors and odd schemes stay; TRACK_CLICKS=false leaves every link as written."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import dkim
import pytest
from sqlalchemy import select

from service.content import inlining
from service.content.link_rewriting import rewrite_links
from service.content.rendering import RenderedEmail
from service.core import click_tokens
from service.core.extensions import db
from service.core.models import ScheduledEmail
from service.sending.compose import render_for
from service.sending.context import for_app
from service.sending.preview import render_preview
from tests.click_helpers import (
    BLOG,
    OUT_LINKS,
    SHOP,
    TRACKED,
    UNTRACKED_HREFS,
    VIDEO,
    hrefs,
    linking_app,
    send_guide,
    tracked_paths,
)
from tests.conftest import PUBLIC_URL
from tests.helpers import api_signup, dispatch_inline, outbox_messages, parts
from tests.sending.test_dkim import dkim_env, dns_for, key_pair  # noqa: F401 - a fixture

OWN_TOKEN_LINK = re.compile(re.escape(PUBLIC_URL) + r"/(unsubscribe|guide)/[\w.-]+")


def test_every_link_out_goes_through_the_redirect_in_both_parts(env, tmp_path, outbox):
    app = linking_app(env, tmp_path)
    text, html = send_guide(app, outbox)
    paths = tracked_paths(html)
    assert set(paths) == set(OUT_LINKS)  # the tokens lead exactly where the template linked
    for link in OUT_LINKS:
        assert link not in html and link.replace("&", "&amp;") not in html
        assert link not in text
    # The text part carries the same redirects (one token per link and email).
    assert {match.removeprefix(PUBLIC_URL) for match in TRACKED.findall(text)} == set(
        paths.values()
    )
    with app.app_context():
        email_id = db.session.scalars(select(ScheduledEmail.id).filter_by(status="sent")).one()
    for path in paths.values():
        claim = click_tokens.parse(path.removeprefix("/r/"))
        assert claim is not None and claim.email_id == email_id


def test_our_token_links_mailto_tel_anchors_and_odd_schemes_stay(env, tmp_path, outbox):
    app = linking_app(env, tmp_path)
    text, html = send_guide(app, outbox)
    found = hrefs(html)
    for href in UNTRACKED_HREFS:
        assert href in found
    kinds = {m.group(1) for m in OWN_TOKEN_LINK.finditer(html)}
    assert kinds == {"unsubscribe", "guide"}, "unsubscribe and guide links stay as they were"
    assert {m.group(1) for m in OWN_TOKEN_LINK.finditer(text)} == {"unsubscribe", "guide"}
    assert "coach@example.com" in text and "tel:+15555550100" in text


def test_track_clicks_false_leaves_every_link_untouched(env, tmp_path, outbox):
    app = linking_app(env, tmp_path, TRACK_CLICKS="false")
    text, html = send_guide(app, outbox)
    assert f"{PUBLIC_URL}/r/" not in html and f"{PUBLIC_URL}/r/" not in text
    assert BLOG.replace("&", "&amp;") in html and VIDEO in html and SHOP in html
    assert BLOG in text and VIDEO in text and SHOP in text


def test_the_confirmation_email_is_not_tracked(env, tmp_path, outbox):
    app = linking_app(env, tmp_path, DOUBLE_OPT_IN="true")
    assert api_signup(app.test_client(), "cat@example.com").status_code == 202
    assert dispatch_inline(app) == ["sent"]
    [msg] = outbox_messages(outbox)
    text, html = parts(msg)
    assert f'href="{SHOP}"' in html and SHOP in text
    assert f"{PUBLIC_URL}/confirm/" in text
    assert f"{PUBLIC_URL}/r/" not in text + html


class Structure(HTMLParser):
    """Every tag and attribute, hrefs aside, and the text: what a reader's client renders."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.items: list[object] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.items.append((tag, [(k, "" if k == "href" else v) for k, v in attrs]))

    def handle_endtag(self, tag):
        self.items.append(("/", tag))

    def handle_data(self, data):
        self.items.append(data)


def test_the_html_keeps_its_structure_and_the_text_stays_readable(env, tmp_path, outbox):
    app = linking_app(env, tmp_path)
    text, html = send_guide(app, outbox)
    with app.app_context():
        email = db.session.scalars(select(ScheduledEmail).filter_by(status="sent")).one()
        plain = render_for(for_app(app), email, email.subscriber)
    assert plain is not None and f"{PUBLIC_URL}/r/" not in plain.html
    # Only hrefs changed (MIME ends a part with a line break).
    assert Structure(html.rstrip("\n")).items == Structure(plain.html.rstrip("\n")).items
    # Prose keeps every word; a line runs past 78 characters only for a link's sake.
    assert words(text) == words(plain.text)
    for line in text.splitlines():
        assert len(line) <= 78 or "://" in line, line


def words(text: str) -> list[str]:
    """The text's words, links and the brackets around them aside."""
    return [w.strip("(),.") for w in text.split() if "://" not in w]


def test_dkim_and_the_one_click_header_are_untouched(env, tmp_path, smtpd, key_pair):  # noqa: F811
    app = linking_app(env, tmp_path, EMAIL_URL=smtpd.url, **dkim_env(key_pair[0].decode()))
    assert api_signup(app.test_client(), "dee@example.com").status_code == 202
    assert dispatch_inline(app) == ["sent"]
    [received] = smtpd.received
    assert dkim.verify(received.data, dnsfunc=dns_for(key_pair[1]))
    msg = received.message
    assert msg["List-Unsubscribe"].startswith(f"<{PUBLIC_URL}/unsubscribe/")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"{PUBLIC_URL}/r/".encode() in received.data.replace(b"=\r\n", b"")


def test_previews_show_the_links_as_written(env, tmp_path):
    app = linking_app(env, tmp_path)
    with app.app_context():
        preview = render_preview(for_app(app), "guide")
    assert f"{PUBLIC_URL}/r/" not in preview.rendered.html
    assert f"{PUBLIC_URL}/r/".encode() not in preview.data


def test_css_is_still_inlined_once_per_template_shape(env, tmp_path, outbox):
    app = linking_app(env, tmp_path)
    send_guide(app, outbox, "first@example.com")
    before = inlining._shape.cache_info()
    send_guide(app, outbox, "second@example.com")
    after = inlining._shape.cache_info()
    assert after.misses == before.misses and after.hits > before.hits


def rendered(html: str = "", text: str = "") -> RenderedEmail:
    return RenderedEmail(subject="s", text=text, html=html)


def test_hrefs_are_read_unescaped_and_written_escaped():
    asked: list[str] = []

    def replacement(url: str) -> str | None:
        asked.append(url)
        return "https://t.example/r/x?a=1&b=2"

    out = rewrite_links(
        rendered('<p><a href="https://a.example/?x=1&amp;y=&quot;2&quot;">a</a></p>'),
        replacement,
    )
    assert asked == ['https://a.example/?x=1&y="2"']
    assert out.html == '<p><a href="https://t.example/r/x?a=1&amp;b=2">a</a></p>'


@pytest.mark.parametrize(
    ("line", "url", "after"),
    [
        ("see https://a.example/x.", "https://a.example/x", "."),
        ("(https://a.example/x), then", "https://a.example/x", "),"),
        (
            "https://en.example.org/wiki/Squat_(exercise)!",
            "https://en.example.org/wiki/Squat_(exercise)",
            "!",
        ),
        ('"https://a.example/q?x=1"', "https://a.example/q?x=1", '"'),
        ("<https://a.example/y>", "https://a.example/y", ">"),
    ],
)
def test_text_urls_end_before_the_sentence_punctuation(line, url, after):
    asked: list[str] = []

    def replacement(found: str) -> str:
        asked.append(found)
        return "NEW"

    out = rewrite_links(rendered(text=line), replacement)
    assert asked == [url]
    assert out.text == line.replace(url, "NEW")
    assert out.text.split("NEW")[1].startswith(after)


def test_only_links_to_follow_are_asked_for():
    asked: list[str] = []

    def replacement(url: str) -> str:
        asked.append(url)
        return "NEW"

    html = (
        '<link rel="stylesheet" href="https://cdn.example/x.css"><base href="https://b.example/">'
        '<abbr href="https://c.example/"></abbr><a name="x" data-href="https://d.example/">'
        '<A HREF="https://e.example/">e</A><area alt="" href="https://f.example/">'
    )
    out = rewrite_links(rendered(html), replacement)
    assert asked == ["https://e.example/", "https://f.example/"]
    assert out.html == html.replace("https://e.example/", "NEW").replace(
        "https://f.example/", "NEW"
    )


def test_one_url_is_asked_for_once_whatever_its_count():
    asked: list[str] = []

    def replacement(url: str) -> None:
        asked.append(url)

    html = '<a href="https://a.example/">1</a><area href="https://a.example/"><a href="https://b.example/">'
    out = rewrite_links(rendered(html, "https://a.example/ and https://b.example/"), replacement)
    assert asked == ["https://a.example/", "https://b.example/"]
    assert out == rendered(html, "https://a.example/ and https://b.example/")


def test_an_unsaved_row_is_never_tracked(render_app):
    """No id, no token: what previews and the sequence check render."""
    from service.sending.click_links import track_clicks

    with render_app.app_context():
        settings = for_app(render_app).settings
    email = ScheduledEmail(purpose="drip", step_id="guide", message_id="<m@x>")
    before = rendered('<a href="https://a.example/">a</a>', "https://a.example/")
    assert track_clicks(settings, email, before) is before
    email.id = 7
    assert track_clicks(settings, email, before) != before
