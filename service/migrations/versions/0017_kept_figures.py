"""Click and broadcast figures kept as they change (frozen/kept_0017.py), and an
index for EMAIL_MIN_GAP's "before the start" count.

Revision ID: 0017
Revises: 0015

A click row carries its email's magnet and broadcast (copied, as its step already is): a
hit's figures are then taken back from the row alone when it goes, even when its email
went first (erasure cascades). A figure's part grows to hold a link.
"""

import sqlalchemy as sa
from alembic import op

from service.migrations.frozen import figures_0013 as rollup_sql
from service.migrations.frozen.kept_0017 import OURS, backfill, create_triggers, drop_triggers

revision = "0017"
down_revision = "0015"
branch_labels = None
depends_on = None

SENT = "status = 'sent' AND purpose <> 'test'"


def upgrade():
    op.add_column("click", sa.Column("magnet_id", sa.Integer(), nullable=True))
    op.add_column("click", sa.Column("broadcast_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE click SET magnet_id = (SELECT e.magnet_id FROM scheduled_email e "
        "WHERE e.id = click.email_id), broadcast_id = (SELECT e.broadcast_id "
        "FROM scheduled_email e WHERE e.id = click.email_id)"
    )
    _part(sa.String(128), sa.String(1100))
    # Only the last EMAIL_MIN_GAP of sends is read: a range of this index, which holds
    # the person too (an index-only scan: no email row is read).
    op.create_index(
        "ix_scheduled_email_sent_at",
        "scheduled_email",
        ["sent_at", "subscriber_id"],
        sqlite_where=sa.text(SENT),
        postgresql_where=sa.text(SENT),
    )
    create_triggers(op.get_bind())
    backfill(op.get_bind())


def _part(was: sa.String, becomes: sa.String) -> None:
    # SQLite's rebuild renames a table 0013's triggers write to, which SQLite refuses while
    # they exist: they go for the rebuild and come back as they were.
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        rollup_sql.drop_triggers(op.get_bind())
    for table in ("figure_delta", "figure_total"):
        with op.batch_alter_table(table) as batch:
            batch.alter_column("part", existing_type=was, type_=becomes, existing_nullable=False)
    if sqlite:
        rollup_sql.create_triggers(op.get_bind())


def downgrade():
    drop_triggers(op.get_bind())
    for table in ("figure_delta", "figure_total"):
        op.execute(f"DELETE FROM {table} WHERE {OURS}")
    op.drop_index("ix_scheduled_email_sent_at", table_name="scheduled_email")
    _part(sa.String(1100), sa.String(128))
    with op.batch_alter_table("click") as batch:
        batch.drop_column("broadcast_id")
        batch.drop_column("magnet_id")
