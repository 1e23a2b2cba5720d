"""Lead magnets: content as versioned data, enrolments, and each email's and consent's magnet.

Existing rows all belong to one default magnet made here; its content is loaded on the
app's first start (the shipped email_templates/ or SEQUENCE_FILE), not by the migration.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
DRIP_ONLY = sa.text("purpose = 'drip'")


def upgrade():
    # The sequence's last applied state now lives in the default magnet's versions.
    op.drop_table("sequence_state")
    _tables()
    _add_magnet_column("consent_record")
    op.create_index("ix_consent_record_magnet_id", "consent_record", ["magnet_id"])
    _add_magnet_column("scheduled_email")
    _backfill()
    # Plain index swaps, no table rebuild on SQLite.
    op.drop_index("uq_scheduled_email_drip_step", table_name="scheduled_email")
    op.create_index(
        "uq_scheduled_email_drip_step",
        "scheduled_email",
        ["subscriber_id", "magnet_id", "step_id"],
        unique=True,
        sqlite_where=DRIP_ONLY,
        postgresql_where=DRIP_ONLY,
    )


def _add_magnet_column(table: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite takes an inline REFERENCES in ADD COLUMN, but no ALTER of constraints, and
        # batch mode would copy the whole table.
        op.execute(f"ALTER TABLE {table} ADD COLUMN magnet_id INTEGER REFERENCES magnet (id)")
        return
    op.add_column(table, sa.Column("magnet_id", sa.Integer(), nullable=True))
    op.create_foreign_key(
        op.f(f"fk_{table}_magnet_id_magnet"), table, "magnet", ["magnet_id"], ["id"]
    )


def _tables() -> None:
    op.create_table(
        "magnet",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("managed_by_file", sa.String(1024), nullable=True),
        sa.Column("guide_key", sa.String(255), nullable=True),
        sa.Column("published_version_id", sa.Integer(), nullable=True),
        sa.Column("archived_at", UTC_TIME, nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_magnet")),
        sa.UniqueConstraint("slug", name=op.f("uq_magnet_slug")),
    )
    op.create_index(
        "uq_magnet_default",
        "magnet",
        ["is_default"],
        unique=True,
        sqlite_where=sa.text("is_default"),
        postgresql_where=sa.text("is_default"),
    )
    op.create_table(
        "magnet_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("magnet_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("files", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["magnet_id"],
            ["magnet.id"],
            name=op.f("fk_magnet_version_magnet_id_magnet"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_magnet_version")),
        sa.UniqueConstraint("magnet_id", "number", name="uq_magnet_version_number"),
    )
    if op.get_bind().dialect.name != "sqlite":  # SQLite cannot add a constraint afterwards
        op.create_foreign_key(
            "fk_magnet_published_version",
            "magnet",
            "magnet_version",
            ["published_version_id"],
            ["id"],
        )
    op.create_table(
        "magnet_publication",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("magnet_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("published_at", UTC_TIME, nullable=False),
        sa.Column("published_by", sa.String(320), nullable=False),
        sa.Column("impact", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["magnet_id"],
            ["magnet.id"],
            name=op.f("fk_magnet_publication_magnet_id_magnet"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["magnet_version.id"],
            name=op.f("fk_magnet_publication_version_id_magnet_version"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_magnet_publication")),
    )
    op.create_index(
        "ix_magnet_publication_magnet", "magnet_publication", ["magnet_id", "published_at"]
    )
    op.create_table(
        "enrolment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("magnet_id", sa.Integer(), nullable=False),
        sa.Column("consent_id", sa.Integer(), nullable=True),
        sa.Column("taken_at", UTC_TIME, nullable=False),
        sa.Column("stopped_at", UTC_TIME, nullable=True),
        sa.Column("stop_reason", sa.String(32), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscriber.id"],
            name=op.f("fk_enrolment_subscriber_id_subscriber"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["magnet_id"], ["magnet.id"], name=op.f("fk_enrolment_magnet_id_magnet")
        ),
        sa.ForeignKeyConstraint(
            ["consent_id"],
            ["consent_record.id"],
            name=op.f("fk_enrolment_consent_id_consent_record"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrolment")),
        sa.UniqueConstraint("subscriber_id", "magnet_id", name="uq_enrolment_subscriber_magnet"),
    )
    op.create_index("ix_enrolment_magnet", "enrolment", ["magnet_id", "taken_at"])


def _backfill() -> None:
    """Everything so far was the one guide's: it becomes the default magnet's."""
    bind = op.get_bind()
    magnet = sa.table(
        "magnet",
        *(sa.column(c) for c in ("id", "slug", "title", "is_default")),
        sa.column("created_at", UTC_TIME),
        sa.column("updated_at", UTC_TIME),
    )
    now = bind.scalar(sa.select(sa.func.current_timestamp()))
    if isinstance(now, str):  # SQLite answers text
        from datetime import datetime

        now = datetime.fromisoformat(now)
    bind.execute(
        magnet.insert().values(
            slug="default", title="Default guide", is_default=True, created_at=now, updated_at=now
        )
    )
    default_id = bind.scalar(sa.select(magnet.c.id).where(magnet.c.is_default))
    bind.execute(sa.text("UPDATE scheduled_email SET magnet_id = :m"), {"m": default_id})
    bind.execute(
        sa.text("UPDATE consent_record SET magnet_id = :m WHERE action <> 'withdrawal'"),
        {"m": default_id},
    )
    # One enrolment per subscriber who ever consented: their first consent entry, and
    # stopped if they are no longer active.
    bind.execute(
        sa.text(
            "INSERT INTO enrolment (subscriber_id, magnet_id, consent_id, taken_at) "
            "SELECT c.subscriber_id, :m, MIN(c.id), MIN(c.created_at) FROM consent_record c "
            "WHERE c.action = 'consent' GROUP BY c.subscriber_id"
        ),
        {"m": default_id},
    )


def downgrade():
    op.drop_index("uq_scheduled_email_drip_step", table_name="scheduled_email")
    op.create_index(
        "uq_scheduled_email_drip_step",
        "scheduled_email",
        ["subscriber_id", "step_id"],
        unique=True,
        sqlite_where=DRIP_ONLY,
        postgresql_where=DRIP_ONLY,
    )
    with op.batch_alter_table("scheduled_email") as batch:
        batch.drop_column("magnet_id")
    op.drop_index("ix_consent_record_magnet_id", table_name="consent_record")
    with op.batch_alter_table("consent_record") as batch:
        batch.drop_column("magnet_id")
    op.drop_table("enrolment")
    op.drop_table("magnet_publication")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_magnet_published_version", "magnet", type_="foreignkey")
    op.drop_table("magnet_version")
    op.drop_table("magnet")
    op.create_table(
        "sequence_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("steps", sa.Text(), nullable=False),
        sa.Column("applied_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sequence_state")),
    )
