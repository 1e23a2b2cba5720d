"""Subscriber token keys: links bind to a random value of the row, and ids never repeat.

Existing rows get a random key and `legacy_tokens` (their emails carry id-only links);
on SQLite the table is rebuilt with AUTOINCREMENT so an erased person's id is never
handed to a newcomer. PostgreSQL sequences never reuse ids: nothing to rebuild there.

Revision ID: 0006
Revises: 0005
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

subscriber = sa.table(
    "subscriber",
    sa.column("id", sa.Integer()),
    sa.column("token_key", sa.String()),
    sa.column("legacy_tokens", sa.Boolean()),
)


def upgrade():
    op.add_column("subscriber", sa.Column("token_key", sa.String(length=32), nullable=True))
    op.add_column(
        "subscriber",
        sa.Column("legacy_tokens", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    _backfill()
    # On SQLite this rebuilds the table (env.py turns foreign keys off, or the rebuild's
    # DROP TABLE would cascade-delete every consent record and email of every subscriber).
    with op.batch_alter_table("subscriber", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.alter_column("token_key", existing_type=sa.String(length=32), nullable=False)


def _backfill() -> None:
    """Each existing row: a key of its own (from `secrets`, as new rows get), legacy links on."""
    bind = op.get_bind()
    ids = bind.execute(sa.select(subscriber.c.id)).scalars().all()
    if not ids:
        return
    bind.execute(
        subscriber.update()
        .where(subscriber.c.id == sa.bindparam("row_id"))
        .values(token_key=sa.bindparam("key"), legacy_tokens=sa.true()),
        [{"row_id": row_id, "key": secrets.token_urlsafe(16)} for row_id in ids],
    )


def downgrade():
    with op.batch_alter_table("subscriber", table_kwargs={"sqlite_autoincrement": False}) as batch:
        batch.drop_column("legacy_tokens")
        batch.drop_column("token_key")
