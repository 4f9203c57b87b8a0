"""Initial results schema: failure triage, CI analytics, metrics, health, notifications, reports.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from devops_automation.store.schema import JSONType, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)


def upgrade() -> None:
    op.create_table(
        "failure_events",
        _id(),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("project_id", sa.String(255), nullable=False),
        sa.Column("project_path", sa.String(512)),
        sa.Column("pipeline_id", sa.String(64), nullable=False),
        sa.Column("ref", sa.String(512)),
        sa.Column("sha", sa.String(64)),
        sa.Column("status", sa.String(32)),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("pipeline_url", sa.Text),
        sa.Column("state", sa.String(32), nullable=False, server_default="new"),
        sa.Column("payload", JSONType),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime()),
        sa.UniqueConstraint(
            "provider", "project_id", "pipeline_id", name="uq_failure_events_provider_project_id_pipeline_id"
        ),
    )
    op.create_table(
        "intake_messages",
        _id(),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(998), nullable=False),
        sa.Column(
            "event_id",
            sa.Integer,
            sa.ForeignKey("failure_events.id", ondelete="SET NULL", name="fk_intake_messages_event_id_failure_events"),
        ),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("sender", sa.String(512)),
        sa.Column("subject", sa.Text),
        sa.Column("folder", sa.String(255)),
        sa.Column("size_bytes", sa.Integer),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime()),
        sa.UniqueConstraint("source", "message_id", name="uq_intake_messages_source_message_id"),
    )
    op.create_table(
        "failure_analyses",
        _id(),
        sa.Column(
            "event_id",
            sa.Integer,
            sa.ForeignKey("failure_events.id", ondelete="CASCADE", name="fk_failure_analyses_event_id_failure_events"),
            nullable=False,
        ),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("job_name", sa.String(512)),
        sa.Column("stage", sa.String(255)),
        sa.Column("job_url", sa.Text),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("root_cause", sa.Text),
        sa.Column("fix_steps", JSONType),
        sa.Column("evidence_lines", JSONType),
        sa.Column("is_transient", sa.Boolean),
        sa.Column("confidence", sa.Float),
        sa.Column("analyser", sa.String(32), nullable=False),
        sa.Column("analyser_note", sa.Text),
        sa.Column("model", sa.String(255)),
        sa.Column("prompt_tokens", sa.Integer),
        sa.Column("completion_tokens", sa.Integer),
        sa.Column("latency_ms", sa.Integer),
        sa.Column("excerpt", sa.Text),
        sa.Column("excerpt_lines", JSONType),
        sa.Column("fingerprint", sa.String(64)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("event_id", "job_id", name="uq_failure_analyses_event_id_job_id"),
    )
    op.create_table(
        "ci_runs",
        _id(),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("repo", sa.String(512), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
        sa.Column("name", sa.String(512)),
        sa.Column("branch", sa.String(512)),
        sa.Column("sha", sa.String(64)),
        sa.Column("author", sa.String(255)),
        sa.Column("event", sa.String(64)),
        sa.Column("status", sa.String(32)),
        sa.Column("conclusion", sa.String(32)),
        sa.Column("created_at", UTCDateTime()),
        sa.Column("started_at", UTCDateTime()),
        sa.Column("finished_at", UTCDateTime()),
        sa.Column("duration_s", sa.Float),
        sa.Column("queue_s", sa.Float),
        sa.Column("url", sa.Text),
        sa.Column("collected_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("provider", "repo", "run_id", "attempt", name="uq_ci_runs_provider_repo_run_id_attempt"),
    )
    op.create_table(
        "ci_jobs",
        _id(),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("repo", sa.String(512), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(512)),
        sa.Column("stage", sa.String(255)),
        sa.Column("status", sa.String(32)),
        sa.Column("conclusion", sa.String(32)),
        sa.Column("started_at", UTCDateTime()),
        sa.Column("finished_at", UTCDateTime()),
        sa.Column("duration_s", sa.Float),
        sa.Column("queue_s", sa.Float),
        sa.Column("runner", sa.String(255)),
        sa.Column("failure_reason", sa.String(128)),
        sa.Column("url", sa.Text),
        sa.UniqueConstraint(
            "provider", "repo", "run_id", "attempt", "job_id", name="uq_ci_jobs_provider_repo_run_id_attempt_job_id"
        ),
    )
    op.create_table(
        "project_metrics",
        _id(),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("project", sa.String(512), nullable=False),
        sa.Column("metric", sa.String(128), nullable=False),
        sa.Column("value_raw", sa.String(255)),
        sa.Column("value", sa.Float),
        sa.Column("unit", sa.String(32)),
        sa.Column("collected_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("day", "source", "project", "metric", name="uq_project_metrics_day_source_project_metric"),
    )
    op.create_table(
        "health_scores",
        _id(),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("project", sa.String(512), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("grade", sa.String(8)),
        sa.Column("components", JSONType),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("day", "project", name="uq_health_scores_day_project"),
    )
    op.create_table(
        "notifications",
        _id(),
        sa.Column("dedup_key", sa.String(255), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("target", sa.String(255)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("message_ref", sa.String(255)),
        sa.Column("error", sa.Text),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime()),
        sa.UniqueConstraint("dedup_key", name="uq_notifications_dedup_key"),
    )
    op.create_table(
        "reports",
        _id(),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("markdown", sa.Text),
        sa.Column("html", sa.Text),
        sa.Column("summary", JSONType),
        sa.Column("archive_path", sa.Text),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime()),
        sa.UniqueConstraint("kind", "period_start", name="uq_reports_kind_period_start"),
    )


def downgrade() -> None:
    for table in (
        "reports",
        "notifications",
        "health_scores",
        "project_metrics",
        "ci_jobs",
        "ci_runs",
        "failure_analyses",
        "intake_messages",
        "failure_events",
    ):
        op.drop_table(table)
