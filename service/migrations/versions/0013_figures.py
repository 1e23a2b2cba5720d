"""The dashboard's figures kept as they change: an append-only delta table written by
triggers in the transaction of each change, folded into totals; backfilled from the rows.

Revision ID: 0013
Revises: 0012

What each figure counts, and the triggers, as of this revision: the frozen copy in
service/migrations/frozen/figures_0013.py (the live ones: service/insights/rollup_sql.py).
SQLite drops a table's triggers with the table: a later migration that rebuilds one of
these tables in batch mode must create the triggers of its own revision again.
"""

import sqlalchemy as sa
from alembic import op

from service.migrations.frozen.figures_0013 import backfill, create_triggers, drop_triggers

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "figure_delta",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("magnet_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(16), nullable=False),
        sa.Column("part", sa.String(128), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_figure_delta")),
    )
    op.create_table(
        "figure_total",
        sa.Column("magnet_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(16), nullable=False),
        sa.Column("part", sa.String(128), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("magnet_id", "name", "part", name=op.f("pk_figure_total")),
    )
    create_triggers(op.get_bind())
    backfill(op.get_bind())


def downgrade():
    drop_triggers(op.get_bind())
    op.drop_table("figure_total")
    op.drop_table("figure_delta")
