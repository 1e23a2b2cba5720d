"""The email a bounce or complaint report names (by its Message-ID), kept on the event.

Revision ID: 0018
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("webhook_event") as batch:
        batch.add_column(sa.Column("email_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_webhook_event_email_id_scheduled_email"),
            "scheduled_email",
            ["email_id"],
            ["id"],
            ondelete="SET NULL",
        )
        # Indexed: deleting an email (erasing its person) looks here to set NULL.
        batch.create_index(op.f("ix_webhook_event_email_id"), ["email_id"])


def downgrade():
    with op.batch_alter_table("webhook_event") as batch:
        batch.drop_index("ix_webhook_event_email_id")
        batch.drop_constraint("fk_webhook_event_email_id_scheduled_email", type_="foreignkey")
        batch.drop_column("email_id")
