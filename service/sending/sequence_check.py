"""`leadmagnet sequence check`: validate the file, render every step, show who stands where
and what an edit will change for them before anything is sent."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace

from jinja2 import TemplateError
from sqlalchemy import func, inspect, select

from ..content.published import sequence_of
from ..content.rendering import render_email
from ..content.sequence import Sequence, SequenceError, load_sequence
from ..content.versions import published_version
from ..core.clock import utcnow
from ..core.extensions import db
from ..core.models import (
    EmailStatus,
    Magnet,
    MagnetPublication,
    Purpose,
    ScheduledEmail,
    Subscriber,
)
from .compose import context
from .context import Context
from .sequence_sync import Change, plan


def sample_subscriber(first_name: str = "Sam") -> Subscriber:
    """A subscriber row made in memory only, never added to the session: what previews and
    checks render for."""
    return Subscriber(
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


def check_published(ctx: Context, echo: Callable[[str], None]) -> bool:
    """Another magnet (the context's, by for_magnet): its published version has no file to
    compare with, so render every step and show who waits where."""
    ok = _render_steps(ctx, ctx.content, echo)
    _positions(ctx.content, ctx.magnet_id, echo)
    return ok


def check(ctx: Context, echo: Callable[[str], None]) -> bool:
    """Read the file afresh (not the context's snapshot: the point is to check the edit),
    render every step, then show positions and what applying it would change."""
    settings = ctx.settings
    load_sequence.cache_clear()
    try:
        sequence = load_sequence(settings.sequence_file, settings.templates_dir)
    except SequenceError as exc:
        echo(f"error: {exc}")
        return False
    ok = _render_steps(ctx, sequence, echo)
    if inspect(db.engine).has_table(Magnet.__tablename__):
        _positions(sequence, ctx.magnet_id, echo)
        _edits(ctx, sequence, echo)
    return ok


def _render_steps(ctx: Context, sequence: Sequence, echo: Callable[[str], None]) -> bool:
    ok = True
    where = ctx.settings.sequence_file if ctx.default_magnet else f"magnet {ctx.magnet_id}"
    echo(f"{where}: {len(sequence.steps)} steps")
    checked = replace(ctx, content=sequence)
    for step in sequence.steps:
        try:
            variables = context(checked, sample_subscriber(), step.template, step.preheader)
            rendered = render_email(step.template, variables, sequence.templates)
        except TemplateError as exc:
            echo(f"error: step {step.id!r}: template {step.template!r} fails to render: {exc}")
            ok = False
            continue
        window = " (in its send window)" if step.window else ""
        delay = format_delay(int(step.delay.total_seconds()))
        echo(f"  {step.id}: {delay} after the previous email{window}: {rendered.subject}")
    return ok


def _positions(sequence: Sequence, magnet_id: int | None, echo: Callable[[str], None]) -> None:
    rows = db.session.execute(
        select(ScheduledEmail.step_id, func.count())
        .where(
            ScheduledEmail.magnet_id == magnet_id,
            ScheduledEmail.purpose == Purpose.DRIP,
            ScheduledEmail.status.in_(EmailStatus.OPEN),
        )
        .group_by(ScheduledEmail.step_id)
    ).all()
    echo("subscribers waiting for each step:")
    counts = dict(rows)
    for step in sequence.steps:
        echo(f"  {step.id}: {counts.pop(step.id, 0)}")
    for step_id, count in counts.items():
        echo(f"  {step_id} (no longer in the file): {count}")


def _snapshot(sequence: Sequence) -> dict[str, dict]:
    return {
        s.id: {"delay": int(s.delay.total_seconds()), "window": repr(s.window)}
        for s in sequence.steps
    }


def _edits(ctx: Context, sequence: Sequence, echo: Callable[[str], None]) -> None:
    magnet = db.session.get(Magnet, ctx.magnet_id) if ctx.magnet_id is not None else None
    version = published_version(magnet) if magnet is not None else None
    if magnet is None or version is None:
        echo("the file has not been applied yet; the next scheduler pass applies it")
        return
    applied_at = (
        db.session.scalar(
            select(func.max(MagnetPublication.published_at)).where(
                MagnetPublication.version_id == version.id
            )
        )
        or version.created_at
    )
    before = _snapshot(sequence_of(version.id, version.fingerprint))
    after = _snapshot(sequence)
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
        echo(f"no changes since the file was applied on {applied_at:%Y-%m-%d %H:%M} UTC")
        return
    echo(f"changes since the file was applied on {applied_at:%Y-%m-%d %H:%M} UTC:")
    for line in lines:
        echo(line)
    kinds = Counter(_kind(change) for change in plan(sequence, magnet.id))
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "nothing"
    if not ctx.settings.sequence_file_managed:
        echo(
            "SEQUENCE_FILE is not set, so the database is the truth: "
            f"`leadmagnet content import {ctx.settings.templates_dir}` would do to emails "
            f"not yet sent: {summary}"
        )
        return
    echo(f"what the next scheduler pass will do to emails not yet sent: {summary}")


def _kind(change: Change) -> str:
    if change.new_step is None:
        return "ended (no step left for them)"
    if change.new_step != change.old_step:
        return f"moved from {change.old_step} to {change.new_step}"
    return f"rescheduled ({change.old_step})"
