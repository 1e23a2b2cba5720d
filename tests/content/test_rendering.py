"""Every shipped email, rendered with sample data through the worker's own code path."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask
from jinja2 import UndefinedError

from service.content.rendering import _inliner, email_environment, render_email
from service.content.sequence import load_sequence
from service.core.models import Purpose, ScheduledEmail
from service.core.settings import DEFAULT_SEQUENCE_FILE, SHIPPED_TEMPLATES
from service.sending.compose import compose, context, render_for
from service.sending.context import for_app
from service.sending.message import new_message_id
from service.sending.sequence_check import sample_subscriber
from service.sending.transport import serialize
from tests.conftest import PUBLIC_URL
from tests.helpers import parts

SEQUENCE = load_sequence(DEFAULT_SEQUENCE_FILE, DEFAULT_SEQUENCE_FILE.parent)
# (step id, purpose): every step of the shipped file, and the double opt-in confirmation.
CASES = [(step.id, Purpose.DRIP) for step in SEQUENCE.steps] + [("confirm", Purpose.CONFIRM)]
IDS = [case[0] for case in CASES]
URL = re.compile(r"https?://[^\s<>\"')]+")
TRICKY_NAMES = ["<script>alert(1)</script>", 'Zoë "the coach" O\'Neil']


class Page(HTMLParser):
    """What a reader (and a link checker) sees of an HTML part."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.text: list[str] = []
        self.preheader: list[str] = []
        self.preheader_style: str | None = None
        self._in_preheader = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("href", "src"):
            if found.get(name) is not None:
                self.links.append(found[name])
        if tag == "div" and "preheader" in (found.get("class") or "").split():
            self._in_preheader = True
            self.preheader_style = found.get("style") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "div":
            self._in_preheader = False

    def handle_data(self, data: str) -> None:
        (self.preheader if self._in_preheader else self.text).append(data)

    @property
    def visible_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def send_sample(app: Flask, step_id: str, purpose: str, first_name: str | None = "Sam"):
    """Render and compose as deliver() does; return the render, the bytes a transport
    would send, and the message parsed back from those bytes."""
    with app.app_context():
        ctx = for_app(app)
        subscriber = sample_subscriber(first_name)
        email = ScheduledEmail(
            purpose=purpose, step_id=step_id, message_id=new_message_id(ctx.sender)
        )
        rendered = render_for(ctx, email, subscriber)
        assert rendered is not None
        msg, sender, recipient = compose(ctx, email, subscriber, rendered)
        data = serialize(msg, sender, recipient)
    parsed: EmailMessage = message_from_bytes(data, policy=policy.default)  # type: ignore[assignment]
    return rendered, data, parsed


@pytest.mark.parametrize(("step_id", "purpose"), CASES, ids=IDS)
def test_every_email_is_complete_and_well_formed(render_app, step_id, purpose):
    rendered, data, msg = send_sample(render_app, step_id, purpose)
    assert msg.get_content_type() == "multipart/alternative"
    text, html = parts(msg)
    assert text.strip() and html.strip()

    assert rendered.subject and "\n" not in rendered.subject
    assert msg["Subject"] == rendered.subject
    for body in (rendered.subject, text, html):
        assert not re.search(r"\{\{|\{%|\{#", body), "an unrendered Jinja tag"

    lines = data.split(b"\r\n")
    assert b"\n" not in b"".join(lines), "a bare line feed in the message"
    assert max(len(line) for line in lines) <= 998
    # A link alone on its line cannot be wrapped (signed links outgrow 78 characters).
    long_lines = [line for line in text.splitlines() if len(line) > 78 and not URL.fullmatch(line)]
    assert not long_lines


@pytest.mark.parametrize(("step_id", "purpose"), CASES, ids=IDS)
def test_every_link_is_absolute_under_public_url(render_app, step_id, purpose):
    _, _, msg = send_sample(render_app, step_id, purpose)
    text, html = parts(msg)
    page = Page(html)
    text_links = URL.findall(text)
    assert page.links and text_links
    for link in page.links + text_links + URL.findall(page.visible_text):
        assert link.startswith(PUBLIC_URL + "/"), link


@pytest.mark.parametrize(("step_id", "purpose"), CASES, ids=IDS)
def test_unsubscribe_link_and_postal_address_in_both_parts(render_app, step_id, purpose):
    _, _, msg = send_sample(render_app, step_id, purpose)
    text, html = parts(msg)
    page = Page(html)
    unsubscribe = msg["List-Unsubscribe"].strip("<>")
    assert unsubscribe.startswith(f"{PUBLIC_URL}/unsubscribe/")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsubscribe in text.split()
    assert unsubscribe in page.links
    assert SEQUENCE.postal_address in " ".join(text.split())
    assert SEQUENCE.postal_address in page.visible_text


@pytest.mark.parametrize("name", TRICKY_NAMES)
@pytest.mark.parametrize(("step_id", "purpose"), CASES, ids=IDS)
def test_a_tricky_first_name_is_escaped_in_html_and_intact_in_text(
    render_app, step_id, purpose, name
):
    _, _, msg = send_sample(render_app, step_id, purpose, first_name=name)
    text, html = parts(msg)
    assert f"Hi {name}," in text
    assert f"Hi {name}," in Page(html).visible_text  # a reader sees it as typed
    assert "<script" not in html.lower()  # and the markup never carries it as a tag
    if "<" in name:
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert msg["To"].addresses[0].display_name == name


@pytest.mark.parametrize(("step_id", "purpose"), CASES, ids=IDS)
def test_without_a_first_name_the_greeting_falls_back(render_app, step_id, purpose):
    rendered, _, msg = send_sample(render_app, step_id, purpose, first_name=None)
    text, html = parts(msg)
    assert "Hi there," in text
    assert "Hi there" in Page(html).visible_text
    assert not rendered.subject.lower().startswith(("there", ","))
    assert "None" not in text


@pytest.mark.parametrize(("step_id", "purpose"), CASES, ids=IDS)
def test_the_preheader_is_in_the_html_and_hidden(render_app, step_id, purpose):
    _, _, msg = send_sample(render_app, step_id, purpose)
    _, html = parts(msg)
    page = Page(html)
    step = SEQUENCE.step(step_id)
    expected = step.preheader if step else "Confirm your address"
    assert expected in " ".join(page.preheader)
    style = (page.preheader_style or "").replace(" ", "")
    assert "display:none" in style  # inlined: clients that drop <style> still hide it
    assert expected not in page.visible_text


def test_long_names_are_wrapped_in_the_text_part(render_app):
    name = " ".join(["Maria"] * 16)  # 95 characters, within the form's 100
    for step_id, purpose in CASES:
        _, _, msg = send_sample(render_app, step_id, purpose, first_name=name)
        text, _ = parts(msg)
        prose = [line for line in text.splitlines() if not URL.fullmatch(line)]
        assert max(len(line) for line in prose) <= 78, step_id
        assert name in " ".join(text.split())


def test_the_email_environment_escapes_html_and_only_html(tmp_path: Path):
    (tmp_path / "t.html").write_text("<p>{{ v }}</p>")
    (tmp_path / "t.txt").write_text("{{ v }}")
    env = email_environment(tmp_path)
    assert env.get_template("t.html").render(v="<b>&") == "<p>&lt;b&gt;&amp;</p>"
    assert env.get_template("t.txt").render(v="<b>&") == "<b>&"
    shipped = email_environment(SHIPPED_TEMPLATES)
    assert shipped.autoescape("guide/body.html") is True  # type: ignore[operator]
    assert shipped.autoescape("guide/body.txt") is False  # type: ignore[operator]


def test_a_missing_variable_fails_the_render(render_app):
    with render_app.app_context():
        variables = context(for_app(render_app), sample_subscriber(), "guide", "")
    del variables["guide_url"]
    with pytest.raises(UndefinedError, match="guide_url"):
        render_email("guide", variables, SHIPPED_TEMPLATES)


def test_environment_templates_and_inliner_are_built_once_per_process():
    env = email_environment(SHIPPED_TEMPLATES)
    assert email_environment(SHIPPED_TEMPLATES) is env
    assert env.get_template("guide/body.html") is env.get_template("guide/body.html")
    assert _inliner() is _inliner()
