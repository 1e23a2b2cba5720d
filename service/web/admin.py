"""The owner's view under /admin: dashboard, subscribers and their timelines, the sequence."""

from __future__ import annotations

from collections import defaultdict

from flask import (
    Blueprint,
    abort,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from ..content.magnets import by_slug
from ..content.published import NoContent
from ..content.sequence import Step
from ..core.clock import utcnow
from ..core.extensions import csrf, db
from ..core.models import Magnet, Subscriber, SubscriberStatus
from ..insights import clicks, stats
from ..insights.chart import bar_chart
from ..people import records
from ..people.enrolments import all_magnets
from ..people.timeline import timeline
from ..sending.context import Context
from ..sending.preview import names, render_preview
from ..sending.sequence_check import check
from . import formats
from .context import current
from .embed import snippet
from .login import current_owner

bp = Blueprint("admin", __name__, url_prefix="/admin")
# The guard below checks the session before the CSRF token, so that a stranger's POST gets
# 401 like any other request of theirs; it then checks the token itself.
csrf.exempt(bp)
formats.register(bp)
PER_PAGE = 50
MAX_UPLOAD = 26 * 1024 * 1024  # a 25 MiB guide PDF and the form around it
MAX_FORM = 4 * 1024 * 1024  # the editor's fields, every step's body included
MAX_PAGE = 1_000_000  # 50 million rows in: any page past this is no page anyone asked for
MAX_ID = 2**31 - 1  # the id columns are 32-bit on PostgreSQL
STATUSES = (
    SubscriberStatus.PENDING,
    SubscriberStatus.ACTIVE,
    SubscriberStatus.UNSUBSCRIBED,
    SubscriberStatus.BOUNCED,
    SubscriberStatus.COMPLAINED,
)


def _prefers_json() -> bool:
    best = request.accept_mimetypes.best_match(
        ["text/html", "application/json"], default="text/html"
    )
    return best == "application/json" or request.is_json


def _wants_page() -> bool:
    """A browser navigating (302 to the login page) rather than a script (401)."""
    script = request.headers.get("X-Requested-With") == "XMLHttpRequest" or _prefers_json()
    return request.method in ("GET", "HEAD") and not script


@bp.before_request
def require_owner() -> ResponseReturnValue | None:
    """The one guard of everything under /admin."""
    owner = current_owner()
    # End the read: on SQLite every transaction holds the write lock (BEGIN IMMEDIATE), and
    # the sequence check opens a connection of its own.
    db.session.rollback()
    if owner is None:
        if _wants_page():
            return redirect(url_for("login.login", next=request.full_path.rstrip("?")), 302)
        if _prefers_json():
            return jsonify({"error": "sign in first"}), 401
        page = render_template("error.html", status=401, message="Please sign in first.")
        return page, 401
    # The editor's forms carry every step's body, and a guide upload its PDF: larger than
    # the 16 KiB any visitor may send, and only for a signed-in owner.
    request.max_content_length = MAX_UPLOAD
    request.max_form_memory_size = MAX_FORM
    csrf.protect()  # no-op for GET and HEAD
    g.owner = owner
    return None


@bp.route("/<path:anything>", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
def not_found(anything: str) -> ResponseReturnValue:
    # Unknown /admin paths are guarded too: a stranger learns nothing, not even a 404.
    abort(404)


def _chosen_magnet() -> Magnet | None:
    """The magnet the dashboard's figures are filtered by (`?magnet=slug`); None: all."""
    slug = request.args.get("magnet", "")
    if not slug:
        return None
    magnet = by_slug(slug[:64])
    if magnet is None:
        abort(404)
    return magnet


def _steps_of(ctx: Context, magnet: Magnet) -> tuple[Step, ...]:
    """A magnet's steps as published (none for one without a published version)."""
    try:
        return ctx.for_magnet(magnet.id).content.steps
    except NoContent:
        return ()


@bp.get("/")
def dashboard() -> ResponseReturnValue:
    now = utcnow()
    ctx = current()
    chosen = _chosen_magnet()
    magnet_id = chosen.id if chosen else None
    settings = ctx.settings
    try:
        sequence = ctx.for_magnet(magnet_id).content if chosen else ctx.content
    except NoContent:
        abort(404)  # a magnet with no published version has no figures of its own yet
    magnets = all_magnets()
    elsewhere = frozenset(step.id for m in magnets for step in _steps_of(ctx, m))
    days = stats.signups_per_day(now, magnet_id=magnet_id)
    return render_template(
        "admin/dashboard.html",
        days=days,
        chart=bar_chart(days),
        funnel=stats.funnel(sequence, settings.double_opt_in, magnet_id),
        steps=stats.step_figures(sequence, magnet_id, elsewhere if chosen is None else frozenset()),
        clicks=defaultdict(clicks.ClickFigures, clicks.per_step(magnet_id)),
        track_clicks=settings.track_clicks,
        inbox=stats.time_to_inbox(now, sequence, magnet_id=magnet_id),
        oldest=stats.oldest_due_unsent(now),
        snippet=snippet(
            settings.public_url,
            sequence.consent.text,
            settings.double_opt_in,
            chosen.slug if chosen and not chosen.is_default else None,
        ),
        allowed_origins=settings.allowed_origins,
        magnets=magnets,
        chosen=chosen,
    )


@bp.get("/subscribers")
def subscribers() -> ResponseReturnValue:
    search = request.args.get("q", "").strip()[:320]
    status = request.args.get("status", "")
    query = select(Subscriber).order_by(Subscriber.id.desc())
    if search:
        # email_key is the casefolded address: a case-insensitive substring match.
        query = query.where(Subscriber.email_key.contains(search.casefold(), autoescape=True))
    if status in STATUSES:
        query = query.where(Subscriber.status == status)
    else:
        status = ""
    page = db.paginate(
        query,
        page=_page_number(request.args.get("page", "1")),
        per_page=PER_PAGE,
        max_per_page=PER_PAGE,
        error_out=False,
    )
    return render_template(
        "admin/subscribers.html", page=page, search=search, status=status, statuses=STATUSES
    )


def _page_number(raw: str) -> int:
    """A page number as the links write it (1, 2, ...); anything else is a bad request."""
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_PAGE):
        abort(400)
    return int(raw)


# A larger number is no id of ours (and would overflow the database's integer): 404.
@bp.get(f"/subscribers/<int(max={MAX_ID}):subscriber_id>")
def subscriber(subscriber_id: int) -> ResponseReturnValue:
    found = db.session.get(Subscriber, subscriber_id)
    if found is None:
        abort(404)
    described = records.describe(current(), found)
    return render_template(
        "admin/subscriber.html",
        subscriber=found,
        described=described,
        entries=timeline(described),
    )


@bp.get("/sequence")
def sequence() -> ResponseReturnValue:
    ctx = current()
    lines: list[str] = []
    ok = check(ctx, lines.append)
    previews = [render_preview(ctx, name) for name in names(ctx)]
    steps = {step.id: step for step in ctx.content.steps}
    return render_template(
        "admin/sequence.html",
        previews=previews,
        steps=steps,
        check_ok=ok,
        check_lines=lines,
        clicks=defaultdict(clicks.ClickFigures, clicks.per_step()),
    )
