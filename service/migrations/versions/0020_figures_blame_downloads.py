"""The figures' triggers anew: a bounce or complaint counts under the email its report names
(webhook_event.email_id, 0018) where there is one; a magnet's "guide downloaded" counts the
people who downloaded its own guide (enrolment.guide_downloads, 0018), not any guide.

Revision ID: 0020
Revises: 0019

Only the figures whose counting changed are recounted (people/downloaded, bounced and
complained): a whole backfill reads every email (125-166 s per 4M), these read the people
and their enrolments, and the emails of the bounced and complained alone (bench/dashboard's
fill at 100k people, 1.4% of them stopped: 0.7 s, against 4.5 s for a whole backfill).
The triggers and the recount as of this revision: service/migrations/frozen/figures_0020.py.
No table is rebuilt, so SQLite keeps every trigger but those replaced here.
"""

from alembic import op
from sqlalchemy import Connection, text

from service.migrations.frozen import figures_0013, figures_0020

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

# The figures 0013 and 0020 count differently (frozen/figures_0020.py GROUPS).
CHANGED = ("downloaded", "stopped")


def upgrade():
    conn = op.get_bind()
    figures_0013.drop_triggers(conn)
    figures_0020.create_triggers(conn)
    figures_0020.backfill(conn, CHANGED)


def downgrade():
    conn = op.get_bind()
    figures_0020.drop_triggers(conn)
    figures_0013.create_triggers(conn)
    _recount_as_0013(conn)


def _recount_as_0013(conn: Connection) -> None:
    """The changed figures as 0013 counts them: its contributions of people (0, 1) and of
    the bounced and complained (2), those rows alone."""
    keys = " OR ".join(f"({figures_0020.GROUPS[g]})" for g in CHANGED)
    conn.execute(text(f"DELETE FROM figure_delta WHERE {keys}"))
    conn.execute(text(f"DELETE FROM figure_total WHERE {keys}"))
    for contribution in figures_0013._contributions(conn.dialect.name)[:3]:
        conn.execute(
            text(
                "INSERT INTO figure_delta (magnet_id, name, part, n) "
                f"SELECT * FROM ({contribution}) r WHERE r.part IS NOT NULL AND ({keys})"
            )
        )
    conn.execute(
        text(
            "INSERT INTO figure_total (magnet_id, name, part, n) "
            f"SELECT magnet_id, name, part, SUM(n) FROM figure_delta WHERE {keys} "
            "GROUP BY magnet_id, name, part"
        )
    )
    conn.execute(text(f"DELETE FROM figure_delta WHERE {keys}"))
