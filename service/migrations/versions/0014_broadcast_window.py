"""Broadcast send window: hours and days in each recipient's own zone, as a step's.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("broadcast") as batch:
        batch.add_column(sa.Column("window_hours", sa.String(16), nullable=True))
        batch.add_column(sa.Column("window_days", sa.String(32), nullable=True))


def downgrade():
    with op.batch_alter_table("broadcast") as batch:
        batch.drop_column("window_days")
        batch.drop_column("window_hours")
