"""A broadcast's open rows indexed with their status and due time.

The broadcast page counts the rows held back to a later time (by EMAIL_MIN_GAP or the send
window) while it sends: with status and due_at in the open rows' partial index that count is
a range of the index alone, not a read of every open row (bench/dashboard: 257 ms at 1M).
The index's predicate is unchanged, so no update writes an entry it did not write before.

Revision ID: 0019
Revises: 0018
"""

from alembic import op
from sqlalchemy import text

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

NAME = "ix_scheduled_email_broadcast_open"
OPEN = text("status IN ('pending', 'sending') AND broadcast_id IS NOT NULL")


def _index(columns: list[str]) -> None:
    op.drop_index(NAME, table_name="scheduled_email")
    op.create_index(NAME, "scheduled_email", columns, sqlite_where=OPEN, postgresql_where=OPEN)


def upgrade():
    _index(["broadcast_id", "status", "due_at"])


def downgrade():
    _index(["broadcast_id"])
