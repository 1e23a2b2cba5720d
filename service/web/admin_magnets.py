"""The owner's magnets under /admin/magnets: the list with its figures, a new magnet, a new
guide PDF, archiving; and the audit trail at /admin/audit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from ..content import magnets
from ..content.drafts import version_files
from ..content.guide_uploads import upload, uploads_of
from ..content.magnet_copy import starting_files
from ..content.pdf_check import check_pdf
from ..content.sequence import SequenceError
from ..core.extensions import db
from ..core.models import AuditAction, Enrolment, Magnet, MagnetVersion
from ..people import audit
from ..people.downloads import downloads_per_magnet
from ..people.magnet_archive import archive
from .admin import bp
from .context import current

RECENT = timedelta(days=30)


@dataclass(frozen=True)
class Row:
    magnet: Magnet
    page: str
    signups: int
    downloads: int
    version: int | None


def page_path(magnet: Magnet) -> str:
    return "/" if magnet.is_default else f"/m/{magnet.slug}"


def magnet_or_404(slug: str) -> Magnet:
    found = magnets.by_slug(slug)
    if found is None:
        abort(404)
    return found


def _rows() -> list[Row]:
    since = current().now() - RECENT
    signups = dict(
        db.session.execute(
            select(Enrolment.magnet_id, func.count())
            .where(Enrolment.taken_at >= since)
            .group_by(Enrolment.magnet_id)
        ).all()
    )
    # Each magnet's own guide: a download of another magnet's guide is not one of this.
    downloads = {m: total for m, (total, _people) in downloads_per_magnet().items()}
    numbers = dict(db.session.execute(select(MagnetVersion.id, MagnetVersion.number)).all())
    everyone = db.session.scalars(
        select(Magnet).order_by(Magnet.archived_at.isnot(None), Magnet.id)
    )
    return [
        Row(
            m,
            page_path(m),
            signups.get(m.id, 0),
            int(downloads.get(m.id, 0)),
            numbers.get(m.published_version_id or 0),
        )
        for m in everyone
    ]


@bp.get("/magnets")
def magnets_page() -> ResponseReturnValue:
    return render_template("admin/magnets.html", rows=_rows())


@bp.route("/magnets/new", methods=["GET", "POST"])
def new_magnet() -> ResponseReturnValue:
    form = {k: request.form.get(k, "").strip() for k in ("slug", "title", "page_text", "consent")}
    if request.method == "GET":
        form["consent"] = current().content.consent.text
        return render_template("admin/magnet_new.html", form=form, error=None)
    file = request.files.get("guide")
    data = file.read() if file and file.filename else b""
    try:
        if not form["title"]:
            raise ValueError("The title is empty.")
        if not form["consent"]:
            raise ValueError("The consent text is empty: it is what people agree to.")
        if data:
            check_pdf(data)
        magnet = _create(form)
    except (ValueError, SequenceError) as exc:
        return render_template("admin/magnet_new.html", form=form, error=str(exc)), 422
    if data:
        _upload(magnet, data, (file.filename if file else "") or "")
    flash(f"Magnet {magnet.slug} created: its sequence is a copy of the default's.")
    return redirect(url_for("admin.editor", slug=magnet.slug), code=303)


def _create(form: dict[str, str]) -> Magnet:
    ctx = current()
    default = magnets.default_magnet()
    version = db.session.get(MagnetVersion, default.published_version_id)
    if version is None:
        raise ValueError("The default magnet has no published sequence to copy.")
    files = starting_files(
        version_files(version),
        form["slug"],
        form["title"],
        form["page_text"],
        form["consent"],
        ctx.now().date(),
    )
    audit.note(g.owner.email, AuditAction.CREATE, f"created {form['slug']}", ctx.now())
    magnet = magnets.create(form["slug"], form["title"], files, g.owner.email)
    db.session.commit()  # create() flushes: the magnet, its version and the entry, at once
    return magnet


def _upload(magnet: Magnet, data: bytes, filename: str) -> None:
    ctx = current()
    what = f"new guide for {magnet.slug}: {filename or 'guide.pdf'} ({len(data)} bytes)"
    audit.note(g.owner.email, AuditAction.UPLOAD, what, ctx.now(), magnet.id)
    upload(ctx.settings, magnet, data, filename, g.owner.email, ctx.now())
    ctx.forget_published()  # this process serves the new guide at once; others within seconds


@bp.route("/magnets/<slug>/guide", methods=["GET", "POST"])
def guide_page(slug: str) -> ResponseReturnValue:
    magnet = magnet_or_404(slug)
    error = None
    if request.method == "POST":
        file = request.files.get("guide")
        data = file.read() if file and file.filename else b""
        try:
            check_pdf(data)
        except ValueError as exc:
            error = f"That file was not stored: {exc}."
        else:
            _upload(magnet, data, (file.filename if file else "") or "")
            flash("The new guide is in place. Links sent before keep the old one for 30 days.")
            return redirect(url_for("admin.guide_page", slug=slug), code=303)
    status = 422 if error else 200
    return render_template(
        "admin/guide.html", magnet=magnet, uploads=uploads_of(magnet.id)[::-1], error=error
    ), status


@bp.post("/magnets/<slug>/archive")
def archive_magnet(slug: str) -> ResponseReturnValue:
    magnet = magnet_or_404(slug)
    stop = request.form.get("stop_emails") == "yes"
    try:
        cancelled = archive(current(), magnet, g.owner.email, stop)
    except ValueError as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.magnets_page"), code=303)
    flash(
        f"{magnet.slug} is archived: its page answers 410."
        + (f" {cancelled} emails cancelled." if stop else " Its subscribers finish the sequence.")
    )
    return redirect(url_for("admin.magnets_page"), code=303)


@bp.get("/audit")
def audit_page() -> ResponseReturnValue:
    return render_template("admin/audit.html", entries=audit.recent())
