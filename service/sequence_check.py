"""`leadmagnet sequence check`: validate the file, render every step, show who stands where
and what an edit will change for them before anything is sent."""

from __future__ import annotations

import json
from collections import Counter
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
from .rendering import render_email
from .sequence import Sequence, SequenceError, load_sequence
from .sequence_sync import Change, plan, snapshot, stored_state


def sample_subscriber(first_name: str = "Sam") -> SimpleNamespace:
    return SimpleNamespace(
        id=0,
        token_key="sample",  # no row has id 0: the sample's links open nobody's page
        first_name=first_name,
        email="sam@example.com",
        created_at=utcnow(),
    )


def format_delay(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s" if seconds else "0"


def check(echo: Callable[[str], None]) -> bool:
    settings = runtime.settings()
    load_sequence.cache_clear()
    try:
        sequence = load_sequence(settings.sequence_file, settings.templates_dir)
    except SequenceError as exc:
        echo(f"error: {exc}")
        return False
    ok = _render_steps(sequence, echo)
    if inspect(db.engine).has_table(ScheduledEmail.__tablename__):
        _positions(sequence, echo)
        _edits(sequence, echo)
    return ok


def _render_steps(sequence: Sequence, echo: Callable[[str], None]) -> bool:
    app = current_app._get_current_object()
    ok = True
    echo(f"{runtime.settings().sequence_file}: {len(sequence.steps)} steps")
    for step in sequence.steps:
        try:
            ctx = context(app, sequence, sample_subscriber(), step.template, step.preheader)
            rendered = render_email(step.template, ctx, runtime.settings().templates_dir)
        except TemplateError as exc:
            echo(f"error: step {step.id!r}: template {step.template!r} fails to render: {exc}")
            ok = False
            continue
        window = " (in its send window)" if step.window else ""
        delay = format_delay(int(step.delay.total_seconds()))
        echo(f"  {step.id}: {delay} after the previous email{window}: {rendered.subject}")
    return ok


def _positions(sequence: Sequence, echo: Callable[[str], None]) -> None:
    rows = db.session.execute(
        select(ScheduledEmail.step_id, func.count())
        .where(ScheduledEmail.purpose == Purpose.DRIP, ScheduledEmail.status.in_(EmailStatus.OPEN))
        .group_by(ScheduledEmail.step_id)
    ).all()
    echo("subscribers waiting for each step:")
    counts = dict(rows)
    for step in sequence.steps:
        echo(f"  {step.id}: {counts.pop(step.id, 0)}")
    for step_id, count in counts.items():
        echo(f"  {step_id} (no longer in the file): {count}")


def _edits(sequence: Sequence, echo: Callable[[str], None]) -> None:
    state = stored_state()
    if state is None:
        echo("the file has not been applied yet; the next scheduler pass applies it")
        return
    before = {s["id"]: s for s in json.loads(state.steps)}
    after = {s["id"]: s for s in snapshot(sequence)}
    lines = [f"  added step {i}" for i in after if i not in before]
    lines += [f"  removed step {i}" for i in before if i not in after]
    lines += [
        f"  step {i}: delay {format_delay(before[i]['delay'])} -> {format_delay(after[i]['delay'])}"
        for i in after
        if i in before and before[i]["delay"] != after[i]["delay"]
    ]
    lines += [
        f"  step {i}: send window changed"
        for i in after
        if i in before and before[i]["window"] != after[i]["window"]
    ]
    if list(before) != list(after) and not lines:
        lines.append("  steps reordered")
    if not lines:
        echo(f"no changes since the file was applied on {state.applied_at:%Y-%m-%d %H:%M} UTC")
        return
    echo(f"changes since the file was applied on {state.applied_at:%Y-%m-%d %H:%M} UTC:")
    for line in lines:
        echo(line)
    kinds = Counter(_kind(change) for change in plan(sequence))
    echo(
        "what the next scheduler pass will do to emails not yet sent: "
        + (", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "nothing")
    )


def _kind(change: Change) -> str:
    if change.new_step is None:
        return "ended (no step left for them)"
    if change.new_step != change.old_step:
        return f"moved from {change.old_step} to {change.new_step}"
    return f"rescheduled ({change.old_step})"
