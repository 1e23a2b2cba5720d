"""Alembic's environment for Flask-Migrate: the app's engine and the models' metadata."""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

config = context.config

# alembic.ini's logging only where nothing set logging up: under the app factory (every
# `leadmagnet` command) it would replace the service's handler, and with it the log format.
if not logging.getLogger().handlers:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

migrate = current_app.extensions["migrate"]
engine = migrate.db.engine
config.set_main_option(
    "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
)
target_metadata = migrate.db.metadata


def run_migrations_offline():
    """`leadmagnet db upgrade --sql`: the SQL printed, nothing run."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _skip_empty_autogenerate(context, revision, directives):
    """`leadmagnet db migrate` with no change to the models writes no empty revision."""
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        logger.info("No changes in schema detected.")


def run_migrations_online():
    conf_args = migrate.configure_args
    conf_args.setdefault("process_revision_directives", _skip_empty_autogenerate)
    with engine.connect() as connection:
        # SQLite: batch mode rebuilds a table by copying it and dropping the old one, and with
        # foreign keys on, that DROP cascade-deletes every row referring to it. The pragma
        # takes only outside a transaction, and must be on again before the pool reuses it.
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            _sqlite_foreign_keys(connection, "OFF")
        try:
            context.configure(connection=connection, target_metadata=target_metadata, **conf_args)
            with context.begin_transaction():
                context.run_migrations()
        finally:
            if sqlite:
                connection.rollback()
                _sqlite_foreign_keys(connection, "ON")


def _sqlite_foreign_keys(connection, state):
    # Straight to the driver: through SQLAlchemy it would run after the app's BEGIN IMMEDIATE
    # (service/__init__.py), inside a transaction, where SQLite ignores it.
    connection.connection.driver_connection.execute(f"PRAGMA foreign_keys={state}")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
