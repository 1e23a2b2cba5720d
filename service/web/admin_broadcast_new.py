"""Writing a broadcast in the browser: the form (with a recipient count), then a review step
with the exact audience, the preview and "Send me a test", then the confirm that starts or
schedules it (the engine is sending/broadcasts.py)."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from ..content.broadcast_body import BodyError
from ..core.extensions import db
from ..core.models import AuditAction, Broadcast, BroadcastStatus, Magnet
from ..people import audit
from ..sending import broadcast_gap, broadcast_window, broadcasts
from ..sending.broadcast_audience import Audience, size
from ..sending.preview import render_broadcast_preview
from ..sending.test_send import send_broadcast_test
from ..sending.transport import DeliveryError
from . import broadcast_form
from .admin import bp
from .admin_editor import TESTS_PER_HOUR, tests_left
from .context import current


def _form(
    posted: broadcast_form.Posted, count: int | None = None, status: int = 200
) -> ResponseReturnValue:
    magnets = db.session.execute(
        select(Magnet.id, Magnet.slug, Magnet.title).order_by(Magnet.slug)
    ).all()
    zone = current().content.default_zone
    page = render_template(
        "admin/broadcast_new.html", posted=posted, magnets=magnets, count=count, zone=zone
    )
    db.session.rollback()
    return page, status


@bp.get("/broadcasts/new")
def broadcast_new() -> ResponseReturnValue:
    return _form(broadcast_form.Posted())


@bp.post("/broadcasts/new")
def broadcast_create() -> ResponseReturnValue:
    posted = broadcast_form.read(request.form)
    ctx = current()
    send_at = broadcast_form.validate(posted, ctx.content.default_zone, ctx.now())
    if posted.problems:
        return _form(posted, status=422)
    if request.form.get("action") == "count":
        return _form(posted, count=size(posted.audience()))
    try:
        row = broadcasts.create(
            ctx, posted.text(), posted.audience(), g.owner.email, send_at, window=posted.window()
        )
    except (BodyError, broadcasts.BroadcastError) as exc:
        db.session.rollback()
        posted.problems.append(str(exc))
        return _form(posted, status=422)
    return redirect(url_for("admin.broadcast_review", broadcast_id=row.id), 303)


def _draft(broadcast_id: int) -> Broadcast:
    row = db.session.get(Broadcast, broadcast_id)
    if row is None:
        abort(404)
    return row


@bp.get("/broadcasts/<int:broadcast_id>/review")
def broadcast_review(broadcast_id: int) -> ResponseReturnValue:
    row = _draft(broadcast_id)
    if row.status != BroadcastStatus.DRAFT:
        return redirect(url_for("admin.broadcast_page", broadcast_id=broadcast_id), 303)
    ctx = current()
    audience = Audience.from_json(row.audience)
    page = render_template(
        "admin/broadcast_review.html",
        broadcast=row,
        count=size(audience),
        who=audience.describe(),
        preview=render_broadcast_preview(ctx, broadcasts.text_of(row)),
        send_at=row.send_at.astimezone(ctx.content.default_zone) if row.send_at else None,
        tests_left=tests_left(),
        gap=broadcast_gap.note(current(), row),
        window=broadcast_window.describe(row),
    )
    db.session.rollback()
    return page


@bp.post("/broadcasts/<int:broadcast_id>/test")
def broadcast_test(broadcast_id: int) -> ResponseReturnValue:
    row = _draft(broadcast_id)
    back = url_for("admin.broadcast_review", broadcast_id=broadcast_id)
    if tests_left() <= 0:
        flash(f"Test sends are limited to {TESTS_PER_HOUR} an hour: try again later.", "error")
        return redirect(back, 303)
    ctx = current()
    try:
        subject = send_broadcast_test(ctx, broadcasts.text_of(row), g.owner.email)
    except DeliveryError as exc:
        flash(f"The test was not sent: {exc}", "error")
        return redirect(back, 303)
    audit.note(g.owner.email, AuditAction.TEST_SEND, f"test of broadcast {row.id}", ctx.now())
    db.session.commit()
    flash(f"Sent to {g.owner.email}: “{subject}”.")
    return redirect(back, 303)


@bp.post("/broadcasts/<int:broadcast_id>/confirm")
def broadcast_confirm(broadcast_id: int) -> ResponseReturnValue:
    _draft(broadcast_id)
    try:
        said = broadcasts.send(current(), broadcast_id)
    except broadcasts.BroadcastError as exc:
        db.session.rollback()
        flash(f"Broadcast {broadcast_id}: {exc}.", "error")
    else:
        flash(f"Broadcast {broadcast_id}: {said}.")
    return redirect(url_for("admin.broadcast_page", broadcast_id=broadcast_id), 303)
