"""Links in emails: unsubscribe (page and RFC 8058 one-click), guide download, confirmation."""

from __future__ import annotations

import io

from flask import (
    Blueprint,
    abort,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from ..capture.confirm import CONFIRM_MAX_AGE, confirm, resend_confirmation
from ..capture.signup import sign_up
from ..capture.validation import FORM_TRUE, SignupInput
from ..content.guide_uploads import served_key
from ..content.guides import guide_pdf, magnet_guide_key
from ..content.published import NoContent
from ..content.storage import PDF
from ..core import tokens
from ..core.extensions import csrf, db
from ..core.logs import mask
from ..core.models import Magnet, Subscriber, SubscriberStatus
from ..people.downloads import record_download
from ..people.enrolments import running
from ..people.unsubscribe import leave_magnet, unsubscribe
from ..sending.context import Context
from .context import current, settings
from .requestmeta import request_meta

bp = Blueprint("links", __name__)
# Whoever holds a link sees whose it is, not the address: links get forwarded and shared.
bp.add_app_template_filter(mask, "masked")


def _holder(claim: tokens.Claim | None) -> int:
    """The id of the subscriber a genuine token was made for: 404 for anyone else, such as
    a newcomer holding the id of someone erased (columns only: the routes load the row)."""
    row = None
    if claim is not None:
        row = db.session.execute(
            select(Subscriber.token_key, Subscriber.legacy_tokens).where(
                Subscriber.id == claim.subscriber_id
            )
        ).one_or_none()
    if claim is None or row is None or not tokens.binds(claim, row.token_key, row.legacy_tokens):
        abort(404)
    return claim.subscriber_id


def _subscriber_id(purpose: str, token: str) -> int:
    return _holder(tokens.read_token(settings().secret_keys, purpose, token))


def _confirm_token(token: str) -> tuple[int, bool]:
    """(subscriber id, expired) of a confirmation token; 404 unless it binds to its row."""
    claim, expired = tokens.read_timed_token(
        settings().secret_keys, tokens.CONFIRM, token, int(CONFIRM_MAX_AGE.total_seconds())
    )
    return _holder(claim), expired


def _unsubscribe_claim(token: str) -> tokens.Claim:
    """A genuine unsubscribe token of its row (404 otherwise), with the email's magnet."""
    claim = tokens.read_token(settings().secret_keys, tokens.UNSUBSCRIBE, token)
    _holder(claim)
    assert claim is not None  # _holder answered 404 otherwise
    return claim


def _only_this(subscriber: Subscriber, magnet_id: int | None) -> Magnet | None:
    """The magnet to offer "only stop emails about": the link's, while it runs and another
    does too (someone with one magnet is offered the full unsubscribe alone)."""
    if magnet_id is None:
        return None
    magnets = running(subscriber)
    found = next((m for m in magnets if m.id == magnet_id), None)
    return found if len(magnets) > 1 else None


@bp.route("/unsubscribe/<token>", methods=["GET", "HEAD"])
def unsubscribe_page(token: str) -> ResponseReturnValue:
    """Only shows buttons: link scanners prefetch GETs, and must not unsubscribe anyone."""
    claim = _unsubscribe_claim(token)
    subscriber = db.session.get(Subscriber, claim.subscriber_id)
    if subscriber is None:
        abort(404)
    return render_template(
        "unsubscribe.html",
        subscriber=subscriber,
        done=False,
        only_this=_only_this(subscriber, claim.magnet_id),
    )


@bp.post("/unsubscribe/<token>/magnet")
@csrf.exempt  # as the page's other button: the signed token is the proof
def unsubscribe_magnet(token: str) -> ResponseReturnValue:
    """ "Only stop emails about <this magnet>": that sequence stops, the others go on."""
    claim = _unsubscribe_claim(token)
    if claim.magnet_id is None:
        abort(404)
    left = leave_magnet(
        current(), claim.subscriber_id, claim.magnet_id, request_meta("unsubscribe-link")
    )
    if left is None:
        abort(404)
    subscriber, magnet = left
    return render_template(
        "unsubscribe.html", subscriber=subscriber, done=False, stopped=magnet, only_this=None
    )


@bp.post("/unsubscribe/<token>")
@csrf.exempt  # RFC 8058: mail providers post without cookies; the signed token is the proof
def unsubscribe_post(token: str) -> ResponseReturnValue:
    subscriber = unsubscribe(
        current(), _subscriber_id(tokens.UNSUBSCRIBE, token), request_meta("unsubscribe-link")
    )
    if subscriber is None:
        abort(404)
    return render_template("unsubscribe.html", subscriber=subscriber, done=True)


@bp.get("/guide/<token>")
def guide(token: str) -> ResponseReturnValue:
    """The guide of the default magnet, or with `?m=<id>` (and a token made for it) of
    another magnet."""
    ctx, magnet_id = _guide_context()
    subscriber_id = _subscriber_id(tokens.guide_purpose(magnet_id), token)
    if not record_download(ctx, subscriber_id):
        abort(404)
    if ctx.guide_key is None and ctx.settings.guide_url and ctx.default_magnet:
        return redirect(ctx.settings.guide_url, code=302)
    if ctx.guide_key is None and not ctx.default_magnet:
        abort(404)  # a magnet without an uploaded guide: its emails link elsewhere
    name = ctx.content.guide.get("filename", "guide.pdf")
    # Through storage, as every web container sees it; a store that does not answer raises
    # StorageError, which errors.py answers with 503.
    key = magnet_guide_key(ctx.settings, ctx.guide_key)
    if ctx.magnet_id is not None:
        # A guide replaced in the editor: the one sent stays served for 30 days.
        key = served_key(ctx.magnet_id, subscriber_id, ctx.guide_key, ctx.now()) or key
    try:
        data = guide_pdf(ctx.settings, key)
    except KeyError:  # removed from the store since it was looked up: put back next time
        abort(503)
    return send_file(
        io.BytesIO(data),
        mimetype=PDF,
        download_name=name,
        as_attachment=False,
        max_age=0,
        etag=key,  # the content's hash: a reader asking again gets 304 for the same file
    )


def _guide_context() -> tuple[Context, int | None]:
    """The request's context for the magnet `?m=` names (None: the default's)."""
    raw = request.args.get("m")
    if raw is None:
        return current(), None
    if not raw.isdigit() or len(raw) > 12:
        abort(404)
    try:
        ctx = current().for_magnet(int(raw))
    except NoContent:
        abort(404)
    return ctx, int(raw)


@bp.post("/resubscribe/<token>")
def resubscribe(token: str) -> ResponseReturnValue:
    """The unsubscribed page's way back: a fresh consent, recorded like any signup."""
    subscriber = db.session.get(Subscriber, _subscriber_id(tokens.UNSUBSCRIBE, token))
    if subscriber is None:
        abort(404)
    if request.form.get("consent", "").lower() not in FORM_TRUE:
        error = "Please tick the box to agree to receive our emails again."
        return render_template(
            "unsubscribe.html", subscriber=subscriber, done=True, error=error
        ), 422
    data = SignupInput(subscriber.email, subscriber.first_name, None, None, honeypot=False)
    # The token came in an email to this address: proof enough to come back at once, to the
    # magnet that email was about.
    magnet_id = _unsubscribe_claim(token).magnet_id
    sign_up(current(), data, request_meta("resubscribe-page"), proven=True, magnet_id=magnet_id)
    return redirect(url_for("signup.thanks"), code=303)


@bp.get("/confirm/<token>")
def confirm_page(token: str) -> ResponseReturnValue:
    """Only shows a button: link scanners open every link in an email within seconds, and
    must not confirm for the person (as GET /unsubscribe never unsubscribes)."""
    subscriber_id, expired = _confirm_token(token)
    if expired:
        return render_template("confirm.html", state="expired", token=token), 410
    subscriber = db.session.get(Subscriber, subscriber_id)
    if subscriber is None:
        abort(404)
    if subscriber.status != SubscriberStatus.PENDING:
        return render_template("confirm.html", state="confirmed")
    name = subscriber.requested_first_name or subscriber.first_name
    return render_template("confirm.html", state="ask", name=name)


@bp.post("/confirm/<token>")
@csrf.exempt  # the signed token is the proof, as for one-click unsubscribe; scanners only GET
def confirm_post(token: str) -> ResponseReturnValue:
    subscriber_id, expired = _confirm_token(token)
    if expired:
        return render_template("confirm.html", state="expired", token=token), 410
    subscriber, _sent_now = confirm(current(), subscriber_id, request_meta("confirmation-link"))
    if subscriber is None:
        abort(404)
    return render_template("confirm.html", state="confirmed")


@bp.post("/confirm/<token>/resend")
def confirm_resend(token: str) -> ResponseReturnValue:
    """An expired link's page offers a fresh one (still at most one a day per mailbox)."""
    subscriber_id, _expired = _confirm_token(token)
    subscriber = db.session.get(Subscriber, subscriber_id)
    if subscriber is None:
        abort(404)
    resend_confirmation(current(), subscriber)
    return render_template("confirm.html", state="resent")
