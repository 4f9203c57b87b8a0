"""``ci_run_actions``: the audit trail of ``ci_run_action`` (who asked the Airflow run for which re-run,
cancel or redeploy, what was sent, the answers and the outcome), and the tag of the re-runs made there
(the GitHub attempt it started, the GitLab jobs it created and retried).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from devops_automation.store.schema import JSONType, UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ci_run_actions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("airflow_run_id", sa.String(250), nullable=False),
        sa.Column("triggered_by", sa.String(255)),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("repo", sa.String(512), nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("job_id", sa.String(64)),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("environment", sa.String(255)),
        sa.Column("target", sa.String(255)),
        sa.Column("target_sha", sa.String(64)),
        sa.Column("deployment_id", sa.String(64)),
        sa.Column("dry_run", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("plan", JSONType),
        sa.Column("api_calls", JSONType),
        sa.Column("attempt_before", sa.Integer),
        sa.Column("result_attempt", sa.Integer),
        sa.Column("after_job_id", sa.String(64)),
        sa.Column("new_job_ids", JSONType),
        sa.Column("retried_job_ids", JSONType),
        sa.Column("new_deployment_id", sa.String(64)),
        sa.Column("outcome", sa.String(32)),
        sa.Column("outcome_detail", sa.Text),
        sa.Column("url", sa.Text),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime()),
        sa.Column("finished_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_ci_run_actions"),
        sa.UniqueConstraint("dag_id", "airflow_run_id", name="uq_ci_run_actions_dag_id_airflow_run_id"),
    )
    op.create_index("ix_ci_run_actions_run", "ci_run_actions", ["provider", "repo", "run_id"])
    op.create_index("ix_ci_run_actions_requested_at", "ci_run_actions", ["requested_at"])


def downgrade() -> None:
    op.drop_index("ix_ci_run_actions_requested_at", table_name="ci_run_actions")
    op.drop_index("ix_ci_run_actions_run", table_name="ci_run_actions")
    op.drop_table("ci_run_actions")
