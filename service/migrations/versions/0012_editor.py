"""The owner's editor: a draft per magnet, the guide uploads, and the audit trail.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "magnet_draft",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("magnet_id", sa.Integer(), nullable=False),
        sa.Column("files", sa.Text(), nullable=False),
        sa.Column("base_version_id", sa.Integer(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.Column("updated_by", sa.String(320), nullable=False),
        sa.ForeignKeyConstraint(
            ["magnet_id"],
            ["magnet.id"],
            name=op.f("fk_magnet_draft_magnet_id_magnet"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["base_version_id"],
            ["magnet_version.id"],
            name=op.f("fk_magnet_draft_base_version_id_magnet_version"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_magnet_draft")),
        sa.UniqueConstraint("magnet_id", name=op.f("uq_magnet_draft_magnet_id")),
    )
    op.create_table(
        "guide_upload",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("magnet_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("uploaded_at", UTC_TIME, nullable=False),
        sa.Column("uploaded_by", sa.String(320), nullable=False),
        sa.Column("replaced_at", UTC_TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["magnet_id"],
            ["magnet.id"],
            name=op.f("fk_guide_upload_magnet_id_magnet"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guide_upload")),
    )
    op.create_index("ix_guide_upload_magnet", "guide_upload", ["magnet_id", "uploaded_at"])
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("who", sa.String(320), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("what", sa.Text(), nullable=False),
        sa.Column("magnet_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["magnet_id"],
            ["magnet.id"],
            name=op.f("fk_audit_entry_magnet_id_magnet"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entry")),
    )
    op.create_index("ix_audit_entry_at", "audit_entry", ["at"])


def downgrade():
    op.drop_index("ix_audit_entry_at", table_name="audit_entry")
    op.drop_table("audit_entry")
    op.drop_index("ix_guide_upload_magnet", table_name="guide_upload")
    op.drop_table("guide_upload")
    op.drop_table("magnet_draft")
