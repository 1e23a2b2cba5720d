"""Subscriber: the mailbox an address reaches, and a repeat signup's name awaiting confirmation.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from service.addresses import mailbox_key

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mailbox_key", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("requested_first_name", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("requested_time_zone", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_subscriber_mailbox_key", ["mailbox_key"])
    subscriber = sa.table(
        "subscriber", sa.column("id", sa.Integer), sa.column("email"), sa.column("mailbox_key")
    )
    conn = op.get_bind()
    keys = [
        {"row_id": row_id, "key": mailbox_key(email)}
        for row_id, email in conn.execute(sa.select(subscriber.c.id, subscriber.c.email))
    ]
    if keys:  # one executemany, not a round trip per subscriber
        conn.execute(
            subscriber.update()
            .where(subscriber.c.id == sa.bindparam("row_id"))
            .values(mailbox_key=sa.bindparam("key")),
            keys,
        )


def downgrade():
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        batch_op.drop_index("ix_subscriber_mailbox_key")
        batch_op.drop_column("requested_time_zone")
        batch_op.drop_column("requested_first_name")
        batch_op.drop_column("mailbox_key")
