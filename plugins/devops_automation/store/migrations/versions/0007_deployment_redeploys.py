"""``ci_deployments.redeploy_of``: a deployment that deploys an old SHA again (a rollback, through
``ci_run_action`` or anyone else) names the earlier successful deployment of that SHA to the same
environment. Computed by ``ci_pipeline_analytics`` when it collects deployments (rows stored before are
marked the next time their environment is collected).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ci_deployments") as batch:
        batch.add_column(sa.Column("redeploy_of", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("ci_deployments") as batch:
        batch.drop_column("redeploy_of")
