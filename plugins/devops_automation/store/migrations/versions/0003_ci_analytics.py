"""CI analytics: every attempt's grouping fields, jobs' retries and steps, deployments, daily figures,
the conditional-request cache and the alert history.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from devops_automation.store.schema import JSONType, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ci_runs") as batch:
        batch.add_column(sa.Column("status_raw", sa.String(64)))
        batch.add_column(sa.Column("run_number", sa.Integer))
        batch.add_column(sa.Column("workflow_id", sa.String(64)))
        batch.add_column(sa.Column("workflow", sa.String(512)))
        batch.add_column(sa.Column("actor", sa.String(255)))
        batch.add_column(sa.Column("parent_run_id", sa.String(64)))
        batch.add_column(sa.Column("updated_at", UTCDateTime()))
        batch.create_index("ix_ci_runs_repo_finished", ["provider", "repo", "finished_at"])
        batch.create_index("ix_ci_runs_finished_at", ["finished_at"])
    with op.batch_alter_table("ci_jobs") as batch:
        batch.add_column(sa.Column("status_raw", sa.String(64)))
        batch.add_column(sa.Column("created_at", UTCDateTime()))
        batch.add_column(sa.Column("retried", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("allow_failure", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("steps", JSONType))
        batch.create_index("ix_ci_jobs_run", ["provider", "repo", "run_id"])
    op.create_table(
        "ci_deployments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("repo", sa.String(512), nullable=False),
        sa.Column("deployment_id", sa.String(64), nullable=False),
        sa.Column("environment", sa.String(255), nullable=False),
        sa.Column("sha", sa.String(64)),
        sa.Column("ref", sa.String(512)),
        sa.Column("status", sa.String(32)),
        sa.Column("status_raw", sa.String(64)),
        sa.Column("created_at", UTCDateTime()),
        sa.Column("finished_at", UTCDateTime()),
        sa.Column("url", sa.Text),
        sa.Column("collected_at", UTCDateTime(), nullable=False),
        sa.Column("commits", JSONType),
        sa.PrimaryKeyConstraint("id", name="pk_ci_deployments"),
        sa.UniqueConstraint("provider", "repo", "deployment_id", name="uq_ci_deployments_provider_repo_deployment_id"),
    )
    op.create_index("ix_ci_deployments_env", "ci_deployments", ["provider", "repo", "environment", "finished_at"])
    op.create_table(
        "ci_daily",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("repo", sa.String(512), nullable=False),
        sa.Column("workflow", sa.String(512), nullable=False),
        sa.Column("branch", sa.String(512), nullable=False),
        sa.Column("runs", sa.Integer, nullable=False),
        sa.Column("figures", JSONType, nullable=False),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ci_daily"),
        sa.UniqueConstraint(
            "day", "provider", "repo", "workflow", "branch", name="uq_ci_daily_day_provider_repo_workflow_branch"
        ),
    )
    op.create_table(
        "http_cache",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("etag", sa.String(255)),
        sa.Column("last_modified", sa.String(64)),
        sa.Column("body", JSONType),
        sa.Column("fetched_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_http_cache"),
        sa.UniqueConstraint("key", name="uq_http_cache_key"),
    )
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("scope_key", sa.String(512), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime()),
        sa.Column("last_evaluated_at", UTCDateTime(), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("threshold", sa.Float),
        sa.Column("details", JSONType),
        sa.PrimaryKeyConstraint("id", name="pk_alert_events"),
        sa.UniqueConstraint("rule_id", "scope_key", "started_at", name="uq_alert_events_rule_id_scope_key_started_at"),
    )
    op.create_index("ix_alert_events_open", "alert_events", ["rule_id", "scope_key", "state"])


def downgrade() -> None:
    op.drop_index("ix_alert_events_open", table_name="alert_events")
    op.drop_table("alert_events")
    op.drop_table("http_cache")
    op.drop_table("ci_daily")
    op.drop_index("ix_ci_deployments_env", table_name="ci_deployments")
    op.drop_table("ci_deployments")
    with op.batch_alter_table("ci_jobs") as batch:
        batch.drop_index("ix_ci_jobs_run")
        for column in ("steps", "allow_failure", "retried", "created_at", "status_raw"):
            batch.drop_column(column)
    with op.batch_alter_table("ci_runs") as batch:
        batch.drop_index("ix_ci_runs_finished_at")
        batch.drop_index("ix_ci_runs_repo_finished")
        for column in ("updated_at", "parent_run_id", "actor", "workflow", "workflow_id", "run_number", "status_raw"):
            batch.drop_column(column)
