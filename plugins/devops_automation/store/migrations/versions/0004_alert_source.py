"""Alert sources: ``alert_events.source`` names the DAG an alert belongs to (every row so far is
ci_pipeline_analytics'), part of the natural key and of the open-alert index, so DAGs sharing the table
never read or resolve each other's alerts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: The only DAG that wrote alert_events before this revision.
FIRST_SOURCE = "ci_pipeline_analytics"


def upgrade() -> None:
    with op.batch_alter_table("alert_events") as batch:
        batch.add_column(sa.Column("source", sa.String(64), nullable=False, server_default=FIRST_SOURCE))
        batch.drop_index("ix_alert_events_open")
        batch.drop_constraint("uq_alert_events_rule_id_scope_key_started_at", type_="unique")
        batch.create_unique_constraint(
            "uq_alert_events_source_rule_id_scope_key_started_at", ["source", "rule_id", "scope_key", "started_at"]
        )
        batch.create_index("ix_alert_events_open", ["source", "rule_id", "scope_key", "state"])


def downgrade() -> None:
    # Rows of other sources cannot be told apart without the column (and could collide on the old key):
    # the older code would read them as ci_pipeline_analytics' alerts and resolve them, so they go.
    alert_events = sa.table("alert_events", sa.column("source", sa.String(64)))
    op.execute(sa.delete(alert_events).where(alert_events.c.source != FIRST_SOURCE))
    with op.batch_alter_table("alert_events") as batch:
        batch.drop_index("ix_alert_events_open")
        batch.drop_constraint("uq_alert_events_source_rule_id_scope_key_started_at", type_="unique")
        batch.create_unique_constraint(
            "uq_alert_events_rule_id_scope_key_started_at", ["rule_id", "scope_key", "started_at"]
        )
        batch.create_index("ix_alert_events_open", ["rule_id", "scope_key", "state"])
        batch.drop_column("source")
