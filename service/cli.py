"""The `leadmagnet` command: a Flask CLI group bound to the app factory."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from flask_migrate import upgrade

from . import create_app, runtime


@click.group(cls=FlaskGroup, create_app=create_app, add_default_commands=True)
def cli() -> None:
    """Lead-magnet delivery: signup form, guide email, drip sequence."""


def register_commands(app: Flask) -> None:
    app.cli.add_command(serve)
    app.cli.add_command(dispatch_command)
    app.cli.add_command(sequence_group)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@with_appcontext
def serve(host: str, port: int) -> None:
    """Run web app, worker and scheduler in the foreground (Ctrl-C stops all of them)."""
    from .serve import supervise

    upgrade(directory=current_app.extensions["migrate"].directory)
    raise SystemExit(supervise(current_app._get_current_object(), host, port))


@click.command("dispatch")
@with_appcontext
def dispatch_command() -> None:
    """Run one scheduler pass now and send everything due, in this process."""
    from .delivery import deliver
    from .dispatch import run_pass

    outcomes: dict[str, int] = {}

    def send_now(ids: list[int]) -> None:
        for email_id in ids:
            outcome = deliver(email_id)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

    total = run_pass(send_now)
    summary = ", ".join(f"{n} {what}" for what, n in sorted(outcomes.items())) or "nothing due"
    click.echo(f"dispatch: {total} due; {summary}")
    runtime.transport().close()


@click.group("sequence")
def sequence_group() -> None:
    """Inspect the drip sequence file."""


@sequence_group.command("check")
@with_appcontext
def sequence_check() -> None:
    """Check the sequence file and render every step with sample data."""
    from .sequence_check import check

    ok = check(click.echo)
    raise SystemExit(0 if ok else 1)
