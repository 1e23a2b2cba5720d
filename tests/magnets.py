"""A second lead magnet for tests: a 2-step "knee checklist" made of the shipped files with
its own [magnet], [consent] and steps (guide, then one follow-up two days later)."""

from __future__ import annotations

import re
from datetime import datetime

from flask import Flask

from service.content.magnets import create, default_magnet, ensure_default
from service.core.extensions import db
from service.core.settings import SHIPPED_TEMPLATES, settings_of
from service.sending.context import Context, for_app

KNEE = "knee-checklist"
KNEE_TITLE = "The knee checklist"
KNEE_CONSENT = (
    "Yes, email me the knee checklist and two short follow-ups about knee-friendly "
    "training. I can unsubscribe at any time."
)
STEPS = """
[[steps]]
id = "guide"
delay = "0"
template = "guide"
preheader = "Your knee checklist is ready."

[[steps]]
id = "knees-over-toes"
delay = "2d"
template = "knees-over-toes"
preheader = "An old squat rule deserves a second look."
"""


def shipped_files() -> dict[str, str]:
    """The shipped email_templates/ as a version holds them: relative path -> text."""
    return {
        str(path.relative_to(SHIPPED_TEMPLATES)): path.read_text(encoding="utf-8")
        for path in sorted(SHIPPED_TEMPLATES.rglob("*"))
        if path.is_file() and path.suffix in (".toml", ".txt", ".html", ".css")
    }


def knee_files(slug: str = KNEE, title: str = KNEE_TITLE) -> dict[str, str]:
    files = shipped_files()
    text = files["sequence.toml"]
    text = text[: text.index("\n[[steps]]")] + STEPS
    text = re.sub(r'(?m)^text = ".*"$', f'text = "{KNEE_CONSENT}"', text, count=1)
    text = re.sub(r'(?m)^version = ".*"$', 'version = "knee-1"', text, count=1)
    text = re.sub(r'(?m)^slug = ".*"$', f'slug = "{slug}"', text, count=1)
    files["sequence.toml"] = re.sub(r'(?m)^title = ".*"$', f'title = "{title}"', text, count=1)
    return files


def add_magnet(
    app: Flask,
    slug: str = KNEE,
    title: str = KNEE_TITLE,
    archived_at: datetime | None = None,
) -> int:
    """A published magnet of its own (content.magnets.create: version 1, published); its id."""
    with app.app_context():
        ensure_default(settings_of(app))  # the default exists first, as on a started service
        magnet = create(slug, title, knee_files(slug, title), by="tests")
        magnet.archived_at = archived_at
        db.session.commit()
        return magnet.id


def default_id(app: Flask) -> int:
    with app.app_context():
        magnet_id = default_magnet().id
        db.session.commit()
        return magnet_id


def magnet_context(app: Flask, magnet_id: int) -> Context:
    """The context of that magnet (its content, as Context.for_magnet has it); call inside
    an app context."""
    return for_app(app).for_magnet(magnet_id)
