"""The sequence editor of one magnet: its draft's steps, previews and test sends, publishing
with the impact shown first, and the version history with restore."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from ..content import drafts, versions
from ..content.draft_steps import EditableStep, StepError, steps_of, with_steps
from ..content.magnet_files import load_files
from ..content.sequence import SequenceError
from ..core.extensions import db
from ..core.models import AuditAction, AuditEntry, Magnet, MagnetDraft, MagnetVersion
from ..people import audit
from ..sending import publish as publishing
from ..sending.context import Context
from ..sending.preview import render_preview
from ..sending.preview_checks import warnings
from ..sending.test_send import send_test
from ..sending.transport import DeliveryError
from . import editor_form
from .admin import bp
from .admin_magnets import magnet_or_404
from .context import current

TESTS_PER_HOUR = 10
STALE_CONFLICT = "The draft was saved again since this page was shown: here it is as it is now."
STALE = (
    "The draft changed since you opened it (someone else saved it). Nothing was saved: "
    "your text is below; copy what you need, then reload to see theirs."
)


def _editable(magnet: Magnet) -> None:
    if magnet.managed_by_file:
        abort(409, description=f"This magnet is managed by a file ({magnet.managed_by_file}).")


def draft_context(magnet: Magnet, files: dict[str, str]) -> Context:
    """The magnet's context with these files in force (SequenceError if they do not load)."""
    ctx = current().for_magnet(magnet.id)
    content = load_files(files)
    return replace(ctx, content=content, sender=ctx.settings.mail_from or content.mail_from)


@bp.get("/magnets/<slug>/edit")
def editor(slug: str) -> ResponseReturnValue:
    magnet = magnet_or_404(slug)
    if magnet.managed_by_file:
        version = db.session.get(MagnetVersion, magnet.published_version_id)
        files = versions.files_of(version) if version else {}
        return _page(magnet, None, steps_of(files), read_only=True)
    draft = drafts.open_draft(magnet, g.owner.email, current().now())
    conflict = drafts.follow(magnet)  # a draft without edits takes a version published since
    return _page(magnet, draft, steps_of(drafts.draft_files(draft)), conflict=conflict)


def _page(
    magnet: Magnet,
    draft: MagnetDraft | None,
    steps: list[EditableStep],
    *,
    read_only: bool = False,
    error: str | None = None,
    field: str = "",
    step_id: str = "",
    revision: int | None = None,
    status: int = 200,
    conflict: drafts.Conflict | None = None,
) -> ResponseReturnValue:
    published = db.session.get(MagnetVersion, magnet.published_version_id)
    changed = bool(
        draft and published and drafts.draft_files(draft) != versions.files_of(published)
    )
    return render_template(
        "admin/editor.html",
        magnet=magnet,
        draft=draft,
        steps=steps,
        read_only=read_only,
        error=error,
        error_field=field,
        error_step=step_id,
        revision=revision if revision is not None else (draft.revision if draft else 0),
        published=published,
        changed=changed,
        conflict=conflict,
    ), status


@bp.post("/magnets/<slug>/edit")
def save_draft(slug: str) -> ResponseReturnValue:
    magnet = magnet_or_404(slug)
    _editable(magnet)
    draft = drafts.open_draft(magnet, g.owner.email, current().now())
    posted = editor_form.read(request.form)
    steps = editor_form.apply_action(posted)
    try:
        files = with_steps(drafts.draft_files(draft), steps)
        load_files(files)
    except StepError as exc:
        return _page(
            magnet,
            draft,
            steps,
            error=str(exc),
            field=exc.field,
            step_id=exc.step_id,
            revision=posted.revision,
            status=422,
        )
    except SequenceError as exc:
        return _page(magnet, draft, steps, error=str(exc), revision=posted.revision, status=422)
    try:
        drafts.save(magnet, files, posted.revision, g.owner.email, current().now())
    except drafts.StaleDraft as stale:
        return _page(
            magnet, stale.current, steps, error=STALE, revision=posted.revision, status=409
        )
    if posted.action == "publish":
        return _review(magnet)
    target = posted.target if posted.action in ("up", "down") else ""
    if posted.action == "add":
        target = steps[-1].id
    flash("Draft saved.")
    anchor = f"#step-{target}" if target else ""
    return redirect(url_for("admin.editor", slug=slug) + anchor, code=303)


@bp.get("/magnets/<slug>/steps/<step_id>/preview")
def preview(slug: str, step_id: str) -> ResponseReturnValue:
    magnet = magnet_or_404(slug)
    draft = drafts.draft_of(magnet)
    if draft is not None:
        files = drafts.draft_files(draft)
    else:
        version = db.session.get(MagnetVersion, magnet.published_version_id)
        files = versions.files_of(version) if version else {}
    try:
        ctx = draft_context(magnet, files)
        shown = render_preview(ctx, step_id)
    except KeyError:
        abort(404)
    except SequenceError as exc:
        return render_template(
            "admin/preview.html",
            magnet=magnet,
            step_id=step_id,
            preview=None,
            problems=[str(exc)],
            tests_left=0,
        ), 422
    return render_template(
        "admin/preview.html",
        magnet=magnet,
        step_id=step_id,
        preview=shown,
        problems=warnings(shown.rendered, ctx.settings.public_url),
        tests_left=tests_left(),
    )


def tests_left() -> int:
    """How many test sends the signed-in owner has left this hour (editor and broadcasts)."""
    since = current().now() - timedelta(hours=1)
    sent = db.session.scalar(
        select(func.count()).where(
            AuditEntry.who == g.owner.email,
            AuditEntry.action == AuditAction.TEST_SEND,
            AuditEntry.at >= since,
        )
    )
    return max(0, TESTS_PER_HOUR - int(sent or 0))


@bp.post("/magnets/<slug>/steps/<step_id>/test")
def test_send(slug: str, step_id: str) -> ResponseReturnValue:
    magnet = magnet_or_404(slug)
    back = url_for("admin.preview", slug=slug, step_id=step_id)
    if tests_left() <= 0:
        flash(f"Test sends are limited to {TESTS_PER_HOUR} an hour: try again later.", "error")
        return redirect(back, code=303)
    draft = drafts.draft_of(magnet)
    if draft is None:
        abort(404)
    try:
        subject = send_test(
            draft_context(magnet, drafts.draft_files(draft)), step_id, g.owner.email
        )
    except KeyError:
        abort(404)
    except (SequenceError, DeliveryError) as exc:
        flash(f"The test was not sent: {exc}", "error")
        return redirect(back, code=303)
    now = current().now()
    audit.note(g.owner.email, AuditAction.TEST_SEND, f"test of {slug}/{step_id}", now, magnet.id)
    db.session.commit()
    flash(f"Sent to {g.owner.email}: “{subject}”.")
    return redirect(back, code=303)


def _review(magnet: Magnet) -> ResponseReturnValue:
    """A version made from the draft, then the page that shows its impact."""
    if drafts.follow(magnet) is not None:  # a version published elsewhere since it opened
        return redirect(url_for("admin.conflict", slug=magnet.slug), code=303)
    draft = drafts.draft_of(magnet)
    if draft is None:
        abort(404)
    files = drafts.draft_files(draft)
    published = db.session.get(MagnetVersion, magnet.published_version_id)
    if published is not None and versions.files_of(published) == files:
        flash("The draft is the published version: nothing to publish.")
        return redirect(url_for("admin.editor", slug=magnet.slug), code=303)
    version = versions.new_version(magnet, files, g.owner.email, note="from the editor")
    db.session.commit()
    return redirect(url_for("admin.publish_page", slug=magnet.slug, number=version.number), 303)


def _version(magnet: Magnet, number: int) -> MagnetVersion:
    found = versions.by_number(magnet, number)
    if found is None:
        abort(404)
    return found


@bp.get("/magnets/<slug>/publish/<int(max=1000000):number>")
def publish_page(slug: str, number: int) -> ResponseReturnValue:
    magnet = magnet_or_404(slug)
    version = _version(magnet, number)
    ctx = current().for_magnet(magnet.id)
    return render_template(
        "admin/publish.html",
        magnet=magnet,
        version=version,
        impact=publishing.impact(ctx, magnet, version),
        live=magnet.published_version_id == version.id,
    )


@bp.post("/magnets/<slug>/publish/<int(max=1000000):number>")
def publish_confirmed(slug: str, number: int) -> ResponseReturnValue:
    magnet = magnet_or_404(slug)
    _editable(magnet)
    version = _version(magnet, number)
    if magnet.published_version_id == version.id:
        flash(f"Version {number} is already published: nothing was applied again.")
        return redirect(url_for("admin.history", slug=slug), code=303)
    conflict = drafts.follow(magnet)
    if conflict is not None and versions.files_of(version) == drafts.draft_files(conflict.draft):
        # Made from the draft before another version was published: not over it unseen.
        return redirect(url_for("admin.conflict", slug=slug), code=303)
    ctx = current().for_magnet(magnet.id)
    audit.note(
        g.owner.email,
        AuditAction.PUBLISH,
        f"published {slug} version {number}",
        ctx.now(),
        magnet.id,
    )
    try:
        result = publishing.publish(ctx, magnet, version, g.owner.email, over=_over())
    except publishing.StalePublish as stale:
        return _stale(magnet, version, stale)
    drafts.follow(magnet)  # the draft published: its base is this version now
    flash(f"Version {number} is published. " + " ".join(result.as_lines()))
    return redirect(url_for("admin.history", slug=slug), code=303)


def _over() -> int | None:
    """The id of the version in force when the publish page showed its impact ("": none)."""
    raw = request.form.get("over")
    if raw is None or not (raw == "" or raw.isdigit()):
        abort(400)
    return int(raw) if raw else None


def _stale(
    magnet: Magnet, version: MagnetVersion, stale: publishing.StalePublish
) -> ResponseReturnValue:
    """Another version was published after the impact was shown: nothing was applied. The
    draft's conflict when it has edits of its own, else the impact over the new version."""
    if drafts.follow(magnet) is not None:
        return redirect(url_for("admin.conflict", slug=magnet.slug), code=303)
    if magnet.published_version_id == version.id:  # the same version, published by another
        flash(f"Version {version.number} was published meanwhile: nothing was applied again.")
        return redirect(url_for("admin.history", slug=magnet.slug), code=303)
    flash(
        f"Version {version.number} was not published: version {stale.in_force} was published "
        "after this page was shown. Here is its impact now; publish again if it still fits.",
        "error",
    )
    return redirect(
        url_for("admin.publish_page", slug=magnet.slug, number=version.number), code=303
    )


@bp.get("/magnets/<slug>/history")
def history(slug: str) -> ResponseReturnValue:
    magnet = magnet_or_404(slug)
    found = versions.history(magnet)[::-1]  # newest first
    diffs = {}
    for (newer, _), older in zip(found, [*(v for v, _ in found[1:]), None], strict=True):
        old_files = versions.files_of(older) if older else {}
        diffs[newer.id] = versions.diff(old_files, versions.files_of(newer))
    return render_template("admin/history.html", magnet=magnet, versions=found, diffs=diffs)


@bp.post("/magnets/<slug>/history/<int(max=1000000):number>/restore")
def restore(slug: str, number: int) -> ResponseReturnValue:
    magnet = magnet_or_404(slug)
    _editable(magnet)
    version = _version(magnet, number)
    now = current().now()
    audit.note(
        g.owner.email, AuditAction.RESTORE, f"draft of {slug} from version {number}", now, magnet.id
    )
    drafts.restore(magnet, version, g.owner.email, now)
    flash(f"The draft is now version {number}: review it, then publish.")
    return redirect(url_for("admin.editor", slug=slug), code=303)


@bp.get("/magnets/<slug>/conflict")
def conflict(slug: str) -> ResponseReturnValue:
    """What the version published since the draft opened changed, beside what the draft
    changes, and the owner's two ways on: keep the draft or take that version."""
    magnet = magnet_or_404(slug)
    _editable(magnet)
    found = drafts.follow(magnet)
    if found is None:
        return redirect(url_for("admin.editor", slug=slug), code=303)
    return render_template("admin/conflict.html", magnet=magnet, conflict=found)


@bp.post("/magnets/<slug>/conflict/keep")
def conflict_keep(slug: str) -> ResponseReturnValue:
    magnet = magnet_or_404(slug)
    _editable(magnet)
    try:
        drafts.keep_mine(magnet, _revision(), g.owner.email, current().now())
    except drafts.StaleDraft:
        flash(STALE_CONFLICT, "error")
        return redirect(url_for("admin.conflict", slug=slug), code=303)
    return _review(magnet)


@bp.post("/magnets/<slug>/conflict/take")
def conflict_take(slug: str) -> ResponseReturnValue:
    magnet = magnet_or_404(slug)
    _editable(magnet)
    published = db.session.get_one(MagnetVersion, magnet.published_version_id)
    now = current().now()
    files = versions.files_of(published)
    try:
        drafts.save(magnet, files, _revision(), g.owner.email, now, published.id)
    except drafts.StaleDraft:
        flash(STALE_CONFLICT, "error")
        return redirect(url_for("admin.conflict", slug=slug), code=303)
    flash(f"The draft is now version {published.number}, the one in force.")
    return redirect(url_for("admin.editor", slug=slug), code=303)


def _revision() -> int:
    try:
        return int(request.form.get("revision", ""))
    except ValueError:
        abort(400)
