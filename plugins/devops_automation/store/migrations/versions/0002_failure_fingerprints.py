"""Failure fingerprints (one thread per recurring failure) and the automatic-retry record.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from devops_automation.store.schema import JSONType, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "failure_fingerprints",
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("project_path", sa.String(512)),
        sa.Column("job_name", sa.String(512)),
        sa.Column("first_error", sa.Text),
        sa.Column("occurrences", sa.Integer, nullable=False, server_default="1"),
        sa.Column("thread_refs", JSONType),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name="pk_failure_fingerprints"),
    )
    with op.batch_alter_table("failure_analyses") as batch:
        batch.add_column(sa.Column("retried_job_id", sa.String(64)))
        batch.create_index("ix_failure_analyses_fingerprint", ["fingerprint"])


def downgrade() -> None:
    with op.batch_alter_table("failure_analyses") as batch:
        batch.drop_index("ix_failure_analyses_fingerprint")
        batch.drop_column("retried_job_id")
    op.drop_table("failure_fingerprints")
