"""scheduled_email pages keep a tenth free, so the scheduler's hand-off update stays HOT.

The hand-off sets queued_at, which no index covers or filters on: with room on the row's
page, PostgreSQL writes the new version there and touches no index (a heap-only tuple). On
full pages (fillfactor 100) each handed row wrote an entry into every index of the table,
each a random leaf page at a million rows: most of a cold claim's time (bench/scheduler).
Pages written from now on keep the room; existing pages gain it as rows leave them.
PostgreSQL only: SQLite has no such setting.

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE scheduled_email SET (fillfactor = 90)")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE scheduled_email RESET (fillfactor)")
