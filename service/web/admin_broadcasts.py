"""/admin/broadcasts: each broadcast's live progress and figures, with pause, resume and
retry-the-failed buttons (writing and sending a broadcast is `leadmagnet broadcast`)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from ..core.clock import utcnow
from ..core.extensions import db
from ..core.models import Broadcast, BroadcastStatus
from ..core.rates import describe
from ..insights.broadcast_figures import figures
from ..sending import broadcast_gap, broadcast_window, broadcasts
from ..sending.broadcast_progress import progress
from .admin import bp
from .context import current

ACTIONS = {
    "pause": broadcasts.pause,
    "resume": broadcasts.resume,
    "retry-failed": broadcasts.retry_failed,
}


@bp.get("/broadcasts")
def broadcast_list() -> ResponseReturnValue:
    now = utcnow()
    rows = db.session.scalars(select(Broadcast).order_by(Broadcast.id.desc()).limit(200)).all()
    found = [(row, progress(row.id, now)) for row in rows]
    db.session.rollback()
    return render_template("admin/broadcasts.html", found=found)


@bp.get("/broadcasts/<int:broadcast_id>")
def broadcast_page(broadcast_id: int) -> ResponseReturnValue:
    row = db.session.get(Broadcast, broadcast_id)
    found = progress(broadcast_id, utcnow())
    if row is None or found is None:
        abort(404)
    page = render_template(
        "admin/broadcast.html",
        broadcast=row,
        progress=found,
        figures=figures(broadcast_id),
        rate=describe(found.rate) if found.rate else "0/s",
        live=found.status in BroadcastStatus.LIVE,
        gap=broadcast_gap.note(current(), row),
        window=broadcast_window.describe(row),
    )
    db.session.rollback()
    return page


@bp.post("/broadcasts/<int:broadcast_id>/<action>")
def broadcast_action(broadcast_id: int, action: str) -> ResponseReturnValue:
    act = ACTIONS.get(action)
    if act is None:
        abort(404)
    try:
        act(current(), broadcast_id)
    except broadcasts.BroadcastError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    return redirect(url_for("admin.broadcast_page", broadcast_id=broadcast_id), 303)
