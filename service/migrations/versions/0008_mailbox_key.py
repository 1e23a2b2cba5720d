"""Subscriber: the mailbox an address reaches, and a repeat signup's name awaiting confirmation.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from service.addresses import mailbox_key

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

subscriber = sa.table(
    "subscriber", sa.column("id", sa.Integer()), sa.column("email"), sa.column("mailbox_key")
)


def upgrade():
    # Plain ADD COLUMN and CREATE INDEX: no table rebuild on SQLite (see 0006 for its cost).
    op.add_column("subscriber", sa.Column("mailbox_key", sa.String(length=320), nullable=True))
    op.add_column("subscriber", sa.Column("requested_first_name", sa.String(100), nullable=True))
    op.add_column("subscriber", sa.Column("requested_time_zone", sa.String(64), nullable=True))
    op.create_index("ix_subscriber_mailbox_key", "subscriber", ["mailbox_key"])
    _backfill()


def _backfill() -> None:
    bind = op.get_bind()
    keys = [
        {"row_id": row_id, "key": mailbox_key(email)}
        for row_id, email in bind.execute(sa.select(subscriber.c.id, subscriber.c.email))
    ]
    if keys:  # one executemany, not a round trip per subscriber
        bind.execute(
            subscriber.update()
            .where(subscriber.c.id == sa.bindparam("row_id"))
            .values(mailbox_key=sa.bindparam("key")),
            keys,
        )


def downgrade():
    op.drop_index("ix_subscriber_mailbox_key", table_name="subscriber")
    with op.batch_alter_table("subscriber", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("requested_time_zone")
        batch.drop_column("requested_first_name")
        batch.drop_column("mailbox_key")
