"""`leadmagnet broadcast ...`: write, send, watch, pause, resume and retry broadcasts."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from .content.broadcast_body import BodyError, read_folder
from .core.broker import dispatch_now
from .core.extensions import db
from .core.models import Broadcast
from .core.rates import describe
from .insights.broadcast_figures import figures
from .sending import broadcast_gap, broadcast_window, broadcasts
from .sending.broadcast_audience import FINISHED, TOOK, Audience, size
from .sending.broadcast_progress import Progress, progress
from .sending.context import Context, for_app


def _context() -> Context:
    return for_app(current_app)


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


def _when(raw: str, ctx: Context) -> datetime:
    """ISO 8601; without an offset, in the site's zone (the sequence's time_zone)."""
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise click.ClickException(f"--at {raw!r} is not an ISO 8601 time") from None
    return when if when.tzinfo else when.replace(tzinfo=ctx.content.default_zone)


@click.group("broadcast")
def broadcast_group() -> None:
    """One-off emails to your list (README: Broadcasts)."""


@broadcast_group.command("create")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--magnet", "magnets", multiple=True, help="Only those who took this magnet.")
@click.option("--finished", "finished", multiple=True, help="Only those who finished its sequence.")
@click.option("--at", "at", help="Send at this time (ISO 8601; the site's zone if no offset).")
@click.option("--rate", help="This broadcast's own limit, e.g. 10/s (SEND_RATE still holds).")
@click.option("--hours", help="Send window hours in each recipient's zone, e.g. 9-17.")
@click.option("--days", help="Send window days in each recipient's zone, e.g. mon-fri.")
@with_appcontext
def broadcast_create(
    folder: Path,
    magnets: tuple[str, ...],
    finished: tuple[str, ...],
    at: str | None,
    rate: str | None,
    hours: str | None,
    days: str | None,
) -> None:
    """Make a draft from FOLDER (subject.txt, and body.md or body.html + body.txt)."""
    ctx = _context()
    if magnets and finished:
        raise click.ClickException("use --magnet or --finished, not both")
    try:
        text = read_folder(folder)
        if finished:
            audience = Audience(FINISHED, broadcasts.magnet_ids(list(finished)))
        elif magnets:
            audience = Audience(TOOK, broadcasts.magnet_ids(list(magnets)))
        else:
            audience = Audience()
        send_at = _when(at, ctx) if at else None
        broadcast = broadcasts.create(ctx, text, audience, "cli", send_at, rate, (hours, days))
    except (BodyError, broadcasts.BroadcastError) as exc:
        raise _fail(exc) from None
    count, who = size(audience), audience.describe()
    click.echo(f"broadcast {broadcast.id} created: audience {count} ({who})")
    window = broadcast_window.describe(broadcast)
    if window:
        click.echo(f"send window: {window}, in each recipient's own zone")
    gap = broadcast_gap.note(ctx, broadcast)
    if gap:
        click.echo(gap)
    click.echo(f"send it with: leadmagnet broadcast send {broadcast.id}")


def _get(broadcast_id: int) -> Broadcast:
    found = db.session.get(Broadcast, broadcast_id)
    if found is None:
        raise click.ClickException(f"no broadcast {broadcast_id}")
    return found


@broadcast_group.command("send")
@click.argument("broadcast_id", type=int)
@click.option("--yes", is_flag=True, help="Start it (or schedule it) without asking.")
@with_appcontext
def broadcast_send(broadcast_id: int, yes: bool) -> None:
    """Start a draft now, or schedule it for its --at time."""
    ctx = _context()
    broadcast = _get(broadcast_id)
    audience = Audience.from_json(broadcast.audience)
    count = size(audience)
    when = broadcast.send_at.isoformat() if broadcast.send_at else "now"
    click.echo(f"broadcast {broadcast_id} {broadcast.subject!r}: {count} recipients, {when}")
    if not yes and not click.confirm("send it?", default=False):
        click.echo("nothing sent")
        return
    try:
        click.echo(f"broadcast {broadcast_id}: {broadcasts.send(ctx, broadcast_id)}")
    except broadcasts.BroadcastError as exc:
        raise _fail(exc) from None
    dispatch_now(current_app)  # its rows go at the next pass: ask for one now


def _eta(found: Progress) -> str:
    eta = found.eta
    if found.status not in ("sending",):
        return "-"
    return "unknown" if eta is None else str(eta)


def status_lines(found: Progress) -> list[str]:
    lines = [
        f"state: {found.status}" + (f" ({found.reason})" if found.reason else ""),
        f"sent: {found.sent}",
        f"failed: {found.failed}",
        f"skipped: {found.skipped}",
        f"remaining: {found.remaining}",
        f"rate: {describe(found.rate) if found.rate else '0/s'}",
        f"eta: {_eta(found)}",
    ]
    return lines


@broadcast_group.command("status")
@click.argument("broadcast_id", type=int)
@with_appcontext
def broadcast_status(broadcast_id: int) -> None:
    """Where a broadcast is: sent, failed, skipped, remaining, rate, ETA and state."""
    ctx = _context()
    found = progress(broadcast_id, ctx.now())
    if found is None:
        raise click.ClickException(f"no broadcast {broadcast_id}")
    for line in status_lines(found):
        click.echo(line)
    broadcast = _get(broadcast_id)
    window = broadcast_window.describe(broadcast)
    if window:
        click.echo(f"send window: {window}, in each recipient's own zone")
    gap = broadcast_gap.note(ctx, broadcast)
    if gap:
        click.echo(gap)
    for line in figures(broadcast_id).lines():
        click.echo(line)


def _act(name: str, broadcast_id: int) -> None:
    ctx = _context()
    try:
        if name == "pause":
            broadcasts.pause(ctx, broadcast_id)
            click.echo(f"broadcast {broadcast_id} paused: emails being sent finish, no new ones")
        elif name == "resume":
            broadcasts.resume(ctx, broadcast_id)
            click.echo(f"broadcast {broadcast_id} resumed")
        else:
            count = broadcasts.retry_failed(ctx, broadcast_id)
            click.echo(f"broadcast {broadcast_id}: {count} failed emails queued again")
    except broadcasts.BroadcastError as exc:
        raise _fail(exc) from None


@broadcast_group.command("pause")
@click.argument("broadcast_id", type=int)
@with_appcontext
def broadcast_pause(broadcast_id: int) -> None:
    """Stop new sends of a broadcast (within one batch); resume carries on."""
    _act("pause", broadcast_id)


@broadcast_group.command("resume")
@click.argument("broadcast_id", type=int)
@with_appcontext
def broadcast_resume(broadcast_id: int) -> None:
    """Carry on a paused or stopped broadcast; nothing already sent goes again."""
    _act("resume", broadcast_id)


@broadcast_group.command("retry-failed")
@click.argument("broadcast_id", type=int)
@with_appcontext
def broadcast_retry_failed(broadcast_id: int) -> None:
    """Send the failed emails of a broadcast again (to recipients still subscribed)."""
    _act("retry", broadcast_id)


@broadcast_group.command("list")
@with_appcontext
def broadcast_list() -> None:
    """Every broadcast, newest first: id, state, recipients, subject."""
    rows = db.session.scalars(db.select(Broadcast).order_by(Broadcast.id.desc()))
    for row in rows:
        recipients = "-" if row.recipients is None else str(row.recipients)
        click.echo(f"{row.id}\t{row.status}\t{recipients}\t{row.subject}")
