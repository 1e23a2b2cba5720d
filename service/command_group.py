"""The `leadmagnet` command group: which commands may make an instance folder, and every
error as one line that starts `leadmagnet: ` (never click's `Error: `)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, ScriptInfo
from sqlalchemy import inspect, text
from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError

from .core.settings import NoInstance

# Only these make an instance (folder, secret key, database) where there is none: any
# other command run from the wrong folder must say so, not start an empty service there.
CREATES_INSTANCE = frozenset({"serve", "db"})
# A command's user reads its output: the INFO lines of the work behind it (a migration run,
# the default magnet loaded, an email sent) are for a server's log, or for `--verbose`.
LOGS_AT_INFO = frozenset({"serve", "run"})
NOT_MIGRATED = "the database is not migrated: run leadmagnet db upgrade"
_NO_INSTANCE = "leadmagnet.no_instance"


class ServiceGroup(FlaskGroup):
    """A FlaskGroup whose app factory is told whether the command may create an instance."""

    def __init__(
        self, *, app_commands: Callable[[], Iterable[click.Command]], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.app_commands = app_commands  # what app.cli holds, for help without an app

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        info = ctx.ensure_object(ScriptInfo)
        if _NO_INSTANCE in info.data:  # help is being listed where there is no instance
            return click.Group.get_command(self, ctx, name) or self._known(name)
        info.create_app = partial(
            self._factory(),
            create_instance=name in CREATES_INSTANCE,
            log_level=_log_level(ctx, name),
        )
        try:
            return super().get_command(ctx, name)
        except NoInstance:
            if ctx.resilient_parsing or self._known(name) is None:
                raise
            # `leadmagnet admin --help` still helps; running it says what is missing.
            return self._known(name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        info = ctx.ensure_object(ScriptInfo)
        info.create_app = partial(
            self._factory(), create_instance=False, log_level=_log_level(ctx, "")
        )
        try:
            return super().list_commands(ctx)
        except NoInstance as exc:
            info.data[_NO_INSTANCE] = exc
            click.echo(exc.code, err=True)
            names = {*click.Group.list_commands(self, ctx), *(c.name for c in self.app_commands())}
            return sorted(name for name in names if name)

    def _factory(self) -> Callable[..., Flask]:
        assert self.create_app is not None  # cli() passes create_app
        return self.create_app

    def _known(self, name: str) -> click.Command | None:
        return next((c for c in self.app_commands() if c.name == name), None)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (OperationalError, ProgrammingError) as exc:
            raise click.ClickException(_database_problem(exc)) from None

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:  # UsageError and BadParameter too
            click.echo(f"leadmagnet: {_one_line(exc)}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("leadmagnet: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _log_level(ctx: click.Context, name: str) -> int:
    return logging.INFO if name in LOGS_AT_INFO or ctx.params.get("verbose") else logging.WARNING


def _one_line(exc: click.ClickException) -> str:
    message = " ".join(exc.format_message().split())
    if isinstance(exc, click.UsageError) and exc.ctx is not None:
        message += f" (see {exc.ctx.command_path} --help)"
    return message


def _database_problem(exc: OperationalError | ProgrammingError) -> str:
    if _answers_but_not_migrated():
        return NOT_MIGRATED
    reason = str(exc.orig or exc).strip().splitlines()[0]
    return f"cannot reach the database named by DATABASE_URL: {reason}"


def _answers_but_not_migrated() -> bool:
    """The database answers, and its schema is not the code's (a table the command needs
    is missing because `db upgrade` never ran)."""
    if not current_app:
        return False
    from .core.extensions import db
    from .insights.readiness import VERSION_TABLE, code_heads

    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        db.session.rollback()
        with db.engine.connect() as conn:
            if not inspect(conn).has_table(VERSION_TABLE):
                return True
            current = frozenset(conn.scalars(text(f"SELECT version_num FROM {VERSION_TABLE}")))
    except SQLAlchemyError:
        return False
    return current != code_heads(app)
