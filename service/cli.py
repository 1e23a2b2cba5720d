"""The `leadmagnet` command: a Flask CLI group bound to the app factory."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade

from . import create_app
from .broadcast_cli import broadcast_group
from .command_group import ServiceGroup
from .core.extensions import db
from .core.settings import settings_of
from .magnet_commands import content_group, magnets_group
from .sending.context import Context, for_app


def own_commands() -> tuple[click.Command, ...]:
    return (
        serve,
        dispatch_command,
        sequence_group,
        preview_command,
        subscribers_group,
        admin_group,
        check_group,
        magnets_group,
        content_group,
        broadcast_group,
    )


def app_commands() -> tuple[click.Command, ...]:
    """What app.cli holds once the app is made: help lists them even without an app."""
    from flask_migrate.cli import db

    return (*own_commands(), db)


@click.group(
    cls=ServiceGroup,
    create_app=create_app,
    add_default_commands=True,
    app_commands=app_commands,
)
@click.option(
    "--verbose", "-v", is_flag=True, help="Also print the INFO log lines of the work done."
)
def cli(verbose: bool) -> None:
    """Lead-magnet delivery: signup form, guide email, drip sequence."""


def _context() -> Context:
    """The command's context: one, like a task's."""
    return for_app(current_app)


def register_commands(app: Flask) -> None:
    for command in own_commands():  # Flask-Migrate adds its `db` itself
        app.cli.add_command(command)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@with_appcontext
def serve(host: str, port: int) -> None:
    """Run web app, worker and scheduler in the foreground (Ctrl-C stops all of them)."""
    from .serve import supervise
    from .serve_guard import ServeRefused, check_port, claim_instance, prepare_outbox

    settings = settings_of(current_app)
    try:
        check_port(host, port)
        lock = claim_instance(settings.instance_path)
        prepare_outbox(settings.email_url)
    except ServeRefused as exc:
        raise click.ClickException(str(exc)) from None
    with lock:
        upgrade(directory=current_app.extensions["migrate"].directory)
        _context()  # the default magnet's content loaded now, before the children start
        db.session.commit()
        raise SystemExit(supervise(current_app, host, port))


@click.command("dispatch")
@with_appcontext
def dispatch_command() -> None:
    """Run one scheduler pass now and send everything due, in this process."""
    from .sending.delivery import deliver
    from .sending.dispatch import run_pass

    ctx = _context()
    outcomes: dict[str, int] = {}

    def send_now(ids: list[int]) -> None:
        for email_id in ids:
            outcome = deliver(ctx, email_id)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

    total = run_pass(ctx, send_now)
    summary = ", ".join(f"{n} {what}" for what, n in sorted(outcomes.items())) or "nothing due"
    click.echo(f"dispatch: {total} due; {summary}")
    ctx.transport.close()


@click.command("preview")
@click.argument("step", required=False)
@click.option(
    "--to",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write <step>.html, <step>.txt and <step>.eml here instead of printing.",
)
@with_appcontext
def preview_command(step: str | None, folder: Path | None) -> None:
    """Render one step (an id, or `confirm`) or every step with sample data."""
    from .sending.preview import run

    raise SystemExit(run(_context(), step, folder, click.echo))


@click.group("sequence")
def sequence_group() -> None:
    """Inspect the drip sequence file."""


@sequence_group.command("check")
@click.option("--magnet", "slug", help="Another magnet's published version (default: the file).")
@with_appcontext
def sequence_check(slug: str | None) -> None:
    """Check the sequence file and render every step with sample data."""
    from .content.magnets import by_slug
    from .sending.sequence_check import check, check_published

    ctx = _context()
    magnet = by_slug(slug) if slug else None
    if slug and magnet is None:
        raise click.ClickException(f"no magnet {slug!r}: `leadmagnet magnets list` shows them")
    if magnet is None or magnet.is_default:
        raise SystemExit(0 if check(ctx, click.echo) else 1)
    raise SystemExit(0 if check_published(ctx.for_magnet(magnet.id), click.echo) else 1)


@click.group("subscribers")
def subscribers_group() -> None:
    """What we hold on subscribers: show, forget, export."""


@subscribers_group.command("show")
@click.argument("email")
@with_appcontext
def subscribers_show(email: str) -> None:
    """Print all we hold on one person as JSON (consents with their text hashes, emails)."""
    from .people import records

    subscriber = records.find(email)
    if subscriber is None:
        raise click.ClickException(f"no subscriber {email}")
    click.echo(json.dumps(records.describe(_context(), subscriber), indent=2, ensure_ascii=False))


@subscribers_group.command("forget")
@click.argument("email")
@with_appcontext
def subscribers_forget(email: str) -> None:
    """Erase one person (GDPR); a keyed hash keeps them from being emailed again."""
    from .people import records

    subscriber = records.find(email)
    if subscriber is None:
        raise click.ClickException(f"no subscriber {email}")
    records.forget(_context(), subscriber)
    click.echo(f"forgot {email}: erased, and suppressed until they sign up again")


@subscribers_group.command("export")
@click.option(
    "--output",
    "-o",
    type=click.File("w", encoding="utf-8"),
    default="-",
    help="CSV file to write (default: standard output).",
)
@click.option(
    "--magnet", "magnet_slug", metavar="SLUG", help="Only those who took this lead magnet."
)
@with_appcontext
def subscribers_export(output: IO[str], magnet_slug: str | None) -> None:
    """Write every subscriber as CSV: status, consent times and the magnets taken."""
    from .content.magnets import by_slug
    from .people import records

    magnet_id = None
    if magnet_slug is not None:
        magnet = by_slug(magnet_slug)
        if magnet is None:
            raise click.ClickException(f"no lead magnet {magnet_slug!r}")
        magnet_id = magnet.id
    total = records.count(magnet_id)
    rows = records.export_rows(magnet_id=magnet_id)
    if output.name == "<stdout>":
        written = records.write_csv(output, rows)
    else:
        with click.progressbar(rows, length=total, label="exporting", file=sys.stderr) as bar:
            written = records.write_csv(output, bar)
    click.echo(f"exported {written} subscribers", err=True)


@click.group("admin")
def admin_group() -> None:
    """Owners who may sign in to /admin: create, password, list."""


@admin_group.command("create")
@click.argument("email")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@with_appcontext
def admin_create(email: str, password_stdin: bool) -> None:
    """Make an owner who signs in to /admin with EMAIL and a password (asked twice)."""
    from .people import owners

    try:
        owner = owners.create(email, _new_password(password_stdin))
    except owners.OwnerError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created owner {owner.email}: sign in at /login")


@admin_group.command("password")
@click.argument("email")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@with_appcontext
def admin_password(email: str, password_stdin: bool) -> None:
    """Give the owner EMAIL a new password (asked twice); every session they had ends."""
    from .people import owners

    try:
        owner = owners.change_password(email, _new_password(password_stdin))
    except owners.OwnerError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"changed the password of {owner.email}: every session of theirs has ended")


def _new_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@admin_group.command("list")
@with_appcontext
def admin_list() -> None:
    """Print every owner with when they were made and last signed in."""
    from .people import owners

    found = owners.all_owners()
    for owner in found:
        last = f"{owner.last_login_at:%Y-%m-%d %H:%M} UTC" if owner.last_login_at else "never"
        made = f"{owner.created_at:%Y-%m-%d %H:%M} UTC"
        click.echo(f"{owner.email}\tcreated {made}\tlast login {last}")
    if not found:
        click.echo("no owners yet: leadmagnet admin create EMAIL", err=True)


@click.group("check")
def check_group() -> None:
    """Check what lies outside the service: the DNS records mail depends on."""


@check_group.command("dns")
@click.option("--domain", help="The sending domain (default: the domain of MAIL_FROM).")
@click.option(
    "--nameserver",
    metavar="ADDRESS[:PORT]",
    help="Ask this DNS server instead of the system's resolver.",
)
@with_appcontext
def check_dns(domain: str | None, nameserver: str | None) -> None:
    """Look up MX, SPF, DKIM and DMARC of the sending domain; exit 1 when one is wrong."""
    from .sending.dns_check import run

    raise SystemExit(run(_context(), domain, nameserver, click.echo))
