"""Every shipped email, rendered with sample data through the worker's own code path."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import Environment, FileSystemLoader, StrictUndefined, UndefinedError, select_autoescape

from service.content import inlining
from service.content.inlining import inliner as _inliner
from service.content.inlining import render_inlined
from service.content.rendering import email_environment, render_email
from service.content.sequence import load_sequence
from service.core.models import Purpose, ScheduledEmail
from service.core.settings import DEFAULT_SEQUENCE_FILE
from service.core.settings import SHIPPED_TEMPLATES as TEMPLATES
from service.sending.compose import compose, context, render_for
from service.sending.context import for_app
from service.sending.message import new_message_id
from service.sending.sequence_check import sample_subscriber
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
            purpose=purpose,
            step_id=step_id,
            message_id=new_message_id(ctx.sender),
        )
        rendered = render_for(ctx, email, subscriber)
        assert rendered is not None
        data = compose(ctx, email, subscriber, rendered)[0].as_bytes()
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
    shipped = email_environment(TEMPLATES)
    assert shipped.autoescape("guide/body.html") is True  # type: ignore[operator]
    assert shipped.autoescape("guide/body.txt") is False  # type: ignore[operator]


def test_a_missing_variable_fails_the_render(render_app):
    with render_app.app_context():
        variables = context(for_app(render_app), sample_subscriber(), "guide", "")
    del variables["guide_url"]
    with pytest.raises(UndefinedError, match="guide_url"):
        render_email("guide", variables, TEMPLATES)


def test_environment_templates_and_inliner_are_built_once_per_process():
    env = email_environment(TEMPLATES)
    assert email_environment(TEMPLATES) is env
    assert env.get_template("guide/body.html") is env.get_template("guide/body.html")
    assert _inliner() is _inliner()


# Inlining once per template shape: the HTML must be byte for byte what css-inline gives when
# it inlines each message itself, as it did before.
HOSTILE_NAMES = [
    *TRICKY_NAMES,
    "",
    "   ",
    " Sam",
    "Sam\r\nBcc: x@example.org",
    "a&amp;b &not &#60; &lt;",
    "\xa0Zo\xeb\xa0",
    "=?utf-8?q?=0D=0ABcc:_x@example.org?=",
    "\u2028\x85\x00\x0c",
    "\ue0000\ue001",
    "\ue000",
    '"><p class="button">',
    "x" * 300,
]
NAMES = st.text(st.characters(exclude_categories=("Cs",)), max_size=100)


def inlined_the_old_way(templates_dir: Path, name: str, ctx: dict) -> str:
    """What the renderer gave before: a plain environment, then css-inline on every message."""
    env = Environment(
        loader=FileSystemLoader(str(templates_dir)),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return _inliner().inline(env.get_template(name).render(ctx))


def sample_context(app: Flask, template: str, first_name: str) -> dict:
    step = SEQUENCE.step(template)
    with app.app_context():
        ctx = replace(for_app(app), content=SEQUENCE)
        return context(ctx, sample_subscriber(first_name), template, step.preheader if step else "")


def templates_of(step_id: str) -> str:
    step = SEQUENCE.step(step_id)
    return step.template if step else "confirm"


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.parametrize(("step_id", "purpose"), CASES, ids=IDS)
def test_the_html_is_what_inlining_each_message_gives(render_app, step_id, purpose, name):
    template = templates_of(step_id)
    ctx = sample_context(render_app, template, name)
    expected = inlined_the_old_way(TEMPLATES, f"{template}/body.html", ctx)
    for _ in range(2):  # the first render may meet the shape, the second surely does
        assert render_email(template, ctx, TEMPLATES).html == expected


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=NAMES)
def test_for_any_name_the_html_is_what_inlining_each_message_gives(render_app, name):
    for step_id, _purpose in CASES:
        template = templates_of(step_id)
        ctx = sample_context(render_app, template, name)
        expected = inlined_the_old_way(TEMPLATES, f"{template}/body.html", ctx)
        assert render_email(template, ctx, TEMPLATES).html == expected


class CountingInliner:
    """The real inliner, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def inline(self, html: str) -> str:
        self.calls += 1
        return _inliner().inline(html)


@pytest.mark.parametrize(("step_id", "purpose"), CASES, ids=IDS)
def test_css_inline_runs_once_per_shape_not_per_message(render_app, monkeypatch, step_id, purpose):
    template = templates_of(step_id)
    counting = CountingInliner()
    monkeypatch.setattr(inlining, "inliner", lambda: counting)
    render_email(template, sample_context(render_app, template, "Sam"), TEMPLATES)
    render_email(template, sample_context(render_app, template, "Sam"), TEMPLATES)
    counting.calls = 0
    for name in ("Ann", "Zoë", 'O\'Neil "the coach" <b>&amp;'):
        html = render_email(template, sample_context(render_app, template, name), TEMPLATES).html
        assert html == inlined_the_old_way(
            TEMPLATES, f"{template}/body.html", sample_context(render_app, template, name)
        )
    assert counting.calls == 0


def test_an_edited_template_is_inlined_anew(tmp_path: Path):
    (tmp_path / "base.html").write_text(
        "<html><head><style>.a { color: red }</style></head><body>"
        "{% block content %}{% endblock %}</body></html>"
    )
    page = tmp_path / "page.html"
    page.write_text(
        '{% extends "base.html" %}{% block content %}<p class="a">{{ v }}</p>{% endblock %}'
    )
    env = email_environment(tmp_path)
    for _ in range(2):
        assert 'style="color: red;">x</p>' in render_inlined(env, "page.html", {"v": "x"})
    (tmp_path / "base.html").write_text(
        "<html><head><style>.a { color: blue }</style></head><body>"
        "{% block content %}{% endblock %}</body></html>"
    )
    stat = (tmp_path / "base.html").stat()
    os.utime(tmp_path / "base.html", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    for _ in range(2):
        assert 'style="color: blue;">y</p>' in render_inlined(env, "page.html", {"v": "y"})


# Templates where a value could change the parse or the styles if css-inline ran on a
# placeholder in its place: each must still give what inlining the message itself gives.
STYLE = "<style>.big { color: red } p { margin: 0 }</style>"
HAZARDS = {
    "value in a class": ('<p class="{{ v }}">x</p>', "big"),
    "value in the stylesheet": ("<style>.{{ v }} { color: red }</style><p class=big>x</p>", "big"),
    "attribute selector": (
        '<style>a[href^="https"] { color: red }</style><a href="{{ v }}">x</a>',
        "https://example.org",
    ),
    "unquoted attribute": ("<a href={{ v }}>x</a>", "x class=big"),
    "filter block": ("{% filter replace('Sam', 'Ann') %}<p>{{ v }}</p>{% endfilter %}", "Sam"),
    "macro": ("{% macro m(x) %}<p>{{ x }}</p>{% endmacro %}{{ m(v)|upper }}", "Sam"),
    "set block": ("{% set b %}<p>{{ v }}</p>{% endset %}{{ b|replace('S', 'Z') }}", "Sam"),
    "character reference": ("<p>&{{ v }}</p>", "amp;"),
    "tag from a value": ("<p><{{ v }}></p>", "b class=big"),
    "whitespace in a table": ("<table>{{ v }}<tr><td>x</td></tr></table>", "  "),
    "empty in the head": ("<head>{{ v }}<title>t</title></head><p>x</p>", ""),
    "carriage return": ("<p>{{ v }}</p>", "a\rb\r\nc"),
    "value in a script": ("<script>var a = '{{ v }}';</script>", "x</script><p class=big>"),
    "value in a comment": ("<!-- {{ v }} --><p>x</p>", "\"'<&"),
    "value in a doctype": ("<!DOCTYPE {{ v }}><p>x</p>", "html"),
    "markup value": ("<div>{{ v|safe }}</div>", '<p class="big">x</p>'),
    "value in raw text": ("<xmp>{{ v }}</xmp>", "'&<b>\xa0"),
    "value in an attribute": ('<a href="{{ v }}" title="{{ v }}">x</a>', 'a"b&c\xa0<>'),
    "value as text": ("<p>{{ v }}</p>", "<b>&amp;\xa0'\""),
    "duplicate attribute": ('<a href="x" href="{{ v }}">y</a>', "z"),
    "placeholder look-alike": ("<p>{{ v|safe }}</p>", "\ue0000\ue001"),
    "autoescape off": ("{% autoescape false %}<p>{{ v }}</p>{% endautoescape %}", "<b>x</b>"),
}


@pytest.mark.parametrize(("body", "value"), HAZARDS.values(), ids=HAZARDS.keys())
def test_a_value_that_could_change_parse_or_styles_is_inlined_as_before(tmp_path, body, value):
    (tmp_path / "page.html").write_text(f"<html><head>{STYLE}</head><body>{body}</body></html>")
    expected = inlined_the_old_way(tmp_path, "page.html", {"v": value})
    env = email_environment(tmp_path)
    for _ in range(3):
        assert render_inlined(env, "page.html", {"v": value}) == expected


def test_a_missing_variable_in_the_html_fails_the_render(tmp_path: Path):
    (tmp_path / "page.html").write_text("<p>{{ missing }}</p>")
    env = email_environment(tmp_path)
    for _ in range(2):
        with pytest.raises(UndefinedError, match="missing"):
            render_inlined(env, "page.html", {})


PLAIN_LAYOUT = "<html><body>{% block content %}{% endblock %}</body></html>"
FILTERING_LAYOUT = (
    "<html><body><main>{% filter replace('Sam', 'Ann') %}{% block content %}{% endblock %}"
    "{% endfilter %}</main></body></html>"
)


def write_later(path: Path, text: str) -> None:
    """Write a template with a newer mtime, so that Jinja's auto-reload sees it changed."""
    mtime = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    os.utime(path, ns=(mtime + 10**9, mtime + 10**9))


def test_a_layout_edited_to_filter_its_blocks_is_inlined_as_before(tmp_path: Path):
    write_later(tmp_path / "base.html", PLAIN_LAYOUT)
    (tmp_path / "page.html").write_text(
        '{% extends "base.html" %}{% block content %}<p>{{ v }}</p>{% endblock %}'
    )
    env = email_environment(tmp_path)
    for _ in range(2):
        assert "<p>Sam</p>" in render_inlined(env, "page.html", {"v": "Sam"})
    write_later(tmp_path / "base.html", FILTERING_LAYOUT)  # reloaded in the render itself
    for _ in range(2):
        assert "<main><p>Ann</p></main>" in render_inlined(env, "page.html", {"v": "Sam"})


def test_a_layout_reloaded_twice_during_a_render_is_inlined_as_before(tmp_path: Path):
    """Another thread may reload a template while this one renders the version before: the
    notes then speak of a version this render did not use."""
    base = tmp_path / "base.html"
    write_later(base, PLAIN_LAYOUT)
    (tmp_path / "page.html").write_text(
        '{% extends "base.html" %}{% block content %}<p>{{ v }}</p>{% endblock %}'
    )
    env = email_environment(tmp_path)
    render_inlined(env, "page.html", {"v": "x"})
    render_inlined(env, "page.html", {"v": "x"})  # notes: the plain layout

    class EditedMeanwhile:
        edited = False

        def __str__(self) -> str:
            if not self.edited:
                self.edited = True
                write_later(base, PLAIN_LAYOUT)
                env.get_template("base.html")  # as another thread would
            return "Sam"

    write_later(base, FILTERING_LAYOUT)  # what this render loads and uses
    html = render_inlined(env, "page.html", {"v": EditedMeanwhile()})
    # Either layout's output, never the filtering layout's markup with the value unfiltered.
    assert html.count("<p>Sam</p>") + html.count("<main><p>Ann</p></main>") == 1
    assert "<main><p>Sam</p>" not in html
