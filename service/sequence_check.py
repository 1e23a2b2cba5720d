"""`leadmagnet sequence check`: validate the file, render every step, show who stands where."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

from flask import current_app
from jinja2 import TemplateError
from sqlalchemy import func, inspect, select

from . import runtime
from .clock import utcnow
from .emails import context
from .extensions import db
from .models import EmailStatus, Purpose, ScheduledEmail
from .rendering import TEMPLATES_DIR, render_email
from .sequence import SequenceError, load_sequence


def sample_subscriber(first_name: str = "Sam") -> SimpleNamespace:
    return SimpleNamespace(
        id=0, first_name=first_name, email="sam@example.com", created_at=utcnow()
    )


def check(echo: Callable[[str], None]) -> bool:
    settings = runtime.settings()
    load_sequence.cache_clear()
    try:
        sequence = load_sequence(settings.sequence_file, TEMPLATES_DIR)
    except SequenceError as exc:
        echo(f"error: {exc}")
        return False
    app = current_app._get_current_object()
    ok = True
    for step in sequence.steps:
        try:
            rendered = render_email(
                step.template,
                context(app, sequence, sample_subscriber(), step.template, step.preheader),
            )
        except TemplateError as exc:
            echo(f"error: step {step.id!r}: template {step.template!r} fails to render: {exc}")
            ok = False
            continue
        window = " (send window)" if step.window else ""
        echo(f"step {step.id}: after {step.delay}{window}: {rendered.subject}")
    for step_id, count in _positions().items():
        where = step_id if sequence.step(step_id) else f"{step_id} (no longer in the file)"
        echo(f"  {count} subscriber(s) next receive: {where}")
    return ok


def _positions() -> dict[str, int]:
    if not inspect(db.engine).has_table(ScheduledEmail.__tablename__):
        return {}  # a database not yet created holds nobody
    rows = db.session.execute(
        select(ScheduledEmail.step_id, func.count())
        .where(ScheduledEmail.purpose == Purpose.DRIP, ScheduledEmail.status.in_(EmailStatus.OPEN))
        .group_by(ScheduledEmail.step_id)
    )
    return dict(rows.all())
