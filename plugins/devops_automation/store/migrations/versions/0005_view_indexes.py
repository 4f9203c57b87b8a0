"""Indexes for the DevOps view's reads (``devops_automation.webui.queries``): a project's metrics and
health scores over time (the unique keys start with ``day``, so one project's history read every day's
rows), and failure analyses by time (today's failures, ``since`` filters).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_project_metrics_project_day", "project_metrics", ["project", "day"])
    op.create_index("ix_health_scores_project_day", "health_scores", ["project", "day"])
    op.create_index("ix_failure_analyses_created_at", "failure_analyses", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_failure_analyses_created_at", table_name="failure_analyses")
    op.drop_index("ix_health_scores_project_day", table_name="health_scores")
    op.drop_index("ix_project_metrics_project_day", table_name="project_metrics")
