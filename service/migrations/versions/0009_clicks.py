"""Clicks: each hit on a link's click redirect, with why it looks automated.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "click",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email_id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("automated", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["email_id"],
            ["scheduled_email.id"],
            name=op.f("fk_click_email_id_scheduled_email"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscriber.id"],
            name=op.f("fk_click_subscriber_id_subscriber"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_click")),
    )
    op.create_index("ix_click_email_at", "click", ["email_id", "at"])
    op.create_index("ix_click_subscriber", "click", ["subscriber_id"])
    op.create_index("ix_click_at", "click", ["at"])
    op.create_index("ix_click_step", "click", ["step_id", "subscriber_id"])


def downgrade():
    op.drop_table("click")
