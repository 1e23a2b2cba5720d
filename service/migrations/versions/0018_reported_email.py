"""The email a bounce or complaint report names (by its Message-ID), kept on the event; guide
downloads counted per magnet taken (on the enrolment), not only per person.

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None
UTC_TIME = sa.DateTime(timezone=True)
COPIED = ("guide_downloads", "first_download_at", "last_download_at")


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
    # Plain ALTER TABLE, never a batch: SQLite's batch copies the table, and the figures'
    # triggers that name enrolment (0013) would break.
    op.add_column(
        "enrolment", sa.Column("guide_downloads", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column("enrolment", sa.Column("first_download_at", UTC_TIME, nullable=True))
    op.add_column("enrolment", sa.Column("last_download_at", UTC_TIME, nullable=True))
    # Downloads before this were counted per person only: they are the magnet's where the
    # person took one magnet; with several, which guide was downloaded is not known (0).
    person = "(SELECT s.{0} FROM subscriber s WHERE s.id = enrolment.subscriber_id)"
    op.execute(
        "UPDATE enrolment SET "
        + ", ".join(f"{c} = {person.format(c)}" for c in COPIED)
        + " WHERE (SELECT count(*) FROM enrolment e"
        " WHERE e.subscriber_id = enrolment.subscriber_id) = 1"
        f" AND {person.format('guide_downloads')} > 0"
    )


def downgrade():
    for column in reversed(COPIED):
        op.drop_column("enrolment", column)
    with op.batch_alter_table("webhook_event") as batch:
        batch.drop_index("ix_webhook_event_email_id")
        batch.drop_constraint("fk_webhook_event_email_id_scheduled_email", type_="foreignkey")
        batch.drop_column("email_id")
