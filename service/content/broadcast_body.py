"""A broadcast's text: read from a folder, checked, and rendered into the `_base` layout.

The subject and body are owner-written templates, so they run in Jinja's sandbox, with the
variables a sequence step has (`first_name`, `unsubscribe_url`, `postal_address`...). A
Markdown body is rendered as a template first (no escaping: it is text), then turned into
HTML with raw HTML off, so a value can never inject markup; the Markdown is the text part.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from .inlining import inliner
from .markdown_body import markdown_html
from .rendering import (
    BLANK_LINES,
    ENVIRONMENTS,
    RenderedEmail,
    Templates,
    email_environment,
    wrap_text,
)

MAX_SUBJECT = 200
MAX_BODY = 200_000  # characters: a newsletter, not an attachment
LAYOUT_HTML = (
    '{% extends "_base/base.html" %}{% block subject %}{{ subject }}{% endblock %}'
    "{% block content %}{{ body }}{% endblock %}"
)
LAYOUT_TEXT = '{% extends "_base/base.txt" %}{% block content %}{{ body }}{% endblock %}'


class BodyError(ValueError):
    """A broadcast folder or text that cannot be sent; the message is one line."""


@dataclass(frozen=True)
class BroadcastText:
    subject: str
    body_md: str | None = None
    body_html: str | None = None
    body_txt: str | None = None


def read_folder(folder: Path) -> BroadcastText:
    """subject.txt with body.md, or with body.html and body.txt; BodyError says what is wrong."""
    if not folder.is_dir():
        raise BodyError(f"{folder} is not a folder")
    subject = _read(folder / "subject.txt", required=True) or ""
    md = _read(folder / "body.md")
    html, txt = _read(folder / "body.html"), _read(folder / "body.txt")
    if md is not None and (html is not None or txt is not None):
        raise BodyError(f"{folder} holds body.md and body.html/body.txt: keep one of them")
    if md is None and (html is None or txt is None):
        raise BodyError(f"{folder} needs body.md, or both body.html and body.txt")
    text = BroadcastText(" ".join(subject.split()), md, html, txt)
    check(text)
    return text


def _read(path: Path, required: bool = False) -> str | None:
    if not path.exists():
        if required:
            raise BodyError(f"{path} is missing")
        return None
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BodyError(f"{path} cannot be read as UTF-8 text: {exc}") from None
    if len(content) > MAX_BODY:
        raise BodyError(f"{path} is longer than {MAX_BODY} characters")
    return content


SAMPLE = {
    "first_name": "Ann",
    "greeting_name": "Ann",
    "email": "ann@example.org",
    "signed_up_on": "January 1, 2026",
    "public_url": "https://example.org",
    "unsubscribe_url": "https://example.org/unsubscribe/x",
    "guide_url": "https://example.org/guide/x",
    "postal_address": "1 Main St",
    "sender_name": "Us",
    "guide": {},
    "brand": {"name": "Us"},
    "preheader": "",
}


def check(text: BroadcastText) -> None:
    """Refuse a subject or body that would fail for every recipient: an empty subject, bad
    template syntax, an unknown variable, or what the sandbox forbids."""
    if not text.subject.strip():
        raise BodyError("subject.txt is empty")
    if len(text.subject) > MAX_SUBJECT:
        raise BodyError(f"the subject is longer than {MAX_SUBJECT} characters")
    try:
        render_parts(text, SAMPLE)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise BodyError(f"the broadcast's template does not render{where}: {exc}") from None


def _environment(autoescape: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(autoescape=autoescape, undefined=StrictUndefined)


@lru_cache(maxsize=64)
def _compiled(source: str, autoescape: bool) -> Template:
    # The environment per call: a template's globals cannot leak into another's.
    return _environment(autoescape).from_string(source)


def render_parts(text: BroadcastText, variables: dict) -> tuple[str, Markup, str]:
    """The subject, the HTML fragment and the text of one recipient's copy."""
    subject = " ".join(_compiled(text.subject, False).render(variables).split())
    if text.body_md is not None:
        source = _compiled(text.body_md, False).render(variables)
        return subject, Markup(markdown_html(source)), source  # html off: escaped
    html = _compiled(text.body_html or "", True).render(variables)
    plain = _compiled(text.body_txt or "", False).render(variables)
    return subject, Markup(html), plain


@lru_cache(maxsize=ENVIRONMENTS)
def _layouts(templates: Templates) -> tuple[Template, Template]:
    # From the content snapshot in force (the default magnet's published version), so an
    # edited `_base` layout applies to the next broadcast as it does to the next step.
    # Compiled once per snapshot, as its environment is: compiling them for every
    # recipient was a third of a broadcast worker's time (cProfile, 2,000 recipients).
    env = email_environment(templates)
    return env.from_string(LAYOUT_HTML), env.from_string(LAYOUT_TEXT)


def render_broadcast(text: BroadcastText, variables: dict, templates: Templates) -> RenderedEmail:
    """The whole email: the body inside the `_base` layout, its CSS inlined."""
    subject, fragment, plain = render_parts(text, variables)
    html_layout, text_layout = _layouts(templates)
    values = {**variables, "subject": subject}
    html = html_layout.render({**values, "body": fragment})
    body_text = text_layout.render({**values, "body": plain.strip()})
    return RenderedEmail(
        subject=subject,
        text=wrap_text(BLANK_LINES.sub("\n\n", body_text).strip()) + "\n",
        html=inliner().inline(html),
    )
