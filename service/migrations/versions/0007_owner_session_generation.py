"""Owner session generation: signing out or a new password ends every session made before.

Revision ID: 0007
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "owner",
        sa.Column("session_generation", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade():
    with op.batch_alter_table("owner") as batch:
        batch.drop_column("session_generation")
