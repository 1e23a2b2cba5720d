"""Broadcasts: one-off emails to an audience, whose recipients are scheduled_email rows.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
BROADCAST_ONLY = sa.text("purpose = 'broadcast'")
OPEN_BROADCAST_ROWS = sa.text("status IN ('pending', 'sending') AND broadcast_id IS NOT NULL")


def upgrade():
    op.create_table(
        "broadcast",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(998), nullable=False),
        sa.Column("body_md", sa.Text(), nullable=True),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("body_txt", sa.Text(), nullable=True),
        sa.Column("audience", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("send_at", UTC_TIME, nullable=True),
        sa.Column("rate_limit", sa.String(32), nullable=True),
        sa.Column("effective_rate", sa.Float(), nullable=True),
        sa.Column("throttled_at", UTC_TIME, nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.Column("started_at", UTC_TIME, nullable=True),
        sa.Column("finished_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcast")),
    )
    op.create_index("ix_broadcast_status_send_at", "broadcast", ["status", "send_at"])
    if op.get_bind().dialect.name == "sqlite":
        # An inline REFERENCES in ADD COLUMN: no table rebuild.
        op.execute(
            "ALTER TABLE scheduled_email ADD COLUMN broadcast_id INTEGER REFERENCES broadcast (id)"
        )
    else:
        op.add_column("scheduled_email", sa.Column("broadcast_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            op.f("fk_scheduled_email_broadcast_id_broadcast"),
            "scheduled_email",
            "broadcast",
            ["broadcast_id"],
            ["id"],
        )
    op.create_index(
        "uq_scheduled_email_broadcast",
        "scheduled_email",
        ["broadcast_id", "subscriber_id"],
        unique=True,
        sqlite_where=BROADCAST_ONLY,
        postgresql_where=BROADCAST_ONLY,
    )
    op.create_index(
        "ix_scheduled_email_broadcast_open",
        "scheduled_email",
        ["broadcast_id"],
        sqlite_where=OPEN_BROADCAST_ROWS,
        postgresql_where=OPEN_BROADCAST_ROWS,
    )


def downgrade():
    op.drop_index("ix_scheduled_email_broadcast_open", table_name="scheduled_email")
    op.drop_index("uq_scheduled_email_broadcast", table_name="scheduled_email")
    op.execute("DELETE FROM scheduled_email WHERE purpose = 'broadcast'")
    with op.batch_alter_table("scheduled_email") as batch:
        batch.drop_column("broadcast_id")
    op.drop_index("ix_broadcast_status_send_at", table_name="broadcast")
    op.drop_table("broadcast")
