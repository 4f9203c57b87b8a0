"""Tables of the results database (SQLAlchemy Core), as of the newest migration.

The migrations in ``store/migrations/versions/`` create and upgrade these tables; this module is the
description the code reads and writes through. A test compares the two (``test_schema_matches_migrations``)
so that a change here without a migration fails.

Time columns are :class:`UTCDateTime`: aware datetimes in, aware UTC datetimes out, on SQLite and
PostgreSQL alike. Every table has a natural unique key so that writers can upsert and a re-run of a
task for the same data interval changes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC timestamps on every dialect (SQLite has no time zones)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the results store only takes timezone-aware datetimes")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


#: JSON on SQLite, JSONB on PostgreSQL.
JSONType: Any = sa.JSON().with_variant(JSONB(), "postgresql")


def _ts(name: str, **kw: Any) -> sa.Column[Any]:
    return sa.Column(name, UTCDateTime(), **kw)


def _id() -> sa.Column[Any]:
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)


# ---- CI failure triage ---------------------------------------------------------------------------

failure_events = sa.Table(
    "failure_events",
    metadata,
    _id(),
    sa.Column("provider", sa.String(32), nullable=False),  # "gitlab"
    sa.Column("project_id", sa.String(255), nullable=False),  # numeric id as text (or the path)
    sa.Column("project_path", sa.String(512)),
    sa.Column("pipeline_id", sa.String(64), nullable=False),
    sa.Column("ref", sa.String(512)),
    sa.Column("sha", sa.String(64)),
    sa.Column("status", sa.String(32)),
    sa.Column("source", sa.String(16), nullable=False),  # email | webhook | manual: the first that told us
    sa.Column("pipeline_url", sa.Text),
    sa.Column("state", sa.String(32), nullable=False, server_default="new"),  # new | analysed | notified | failed
    sa.Column("payload", JSONType),
    _ts("received_at", nullable=False),
    _ts("updated_at"),
    sa.UniqueConstraint("provider", "project_id", "pipeline_id"),
)

intake_messages = sa.Table(
    "intake_messages",
    metadata,
    _id(),
    sa.Column("source", sa.String(16), nullable=False),  # email | webhook
    sa.Column("message_id", sa.String(998), nullable=False),  # RFC 5322 Message-ID or webhook Idempotency-Key
    sa.Column("event_id", sa.Integer, sa.ForeignKey("failure_events.id", ondelete="SET NULL")),
    sa.Column("status", sa.String(32), nullable=False),  # accepted | ignored | needs_attention | processed
    sa.Column("reason", sa.Text),
    sa.Column("sender", sa.String(512)),
    sa.Column("subject", sa.Text),
    sa.Column("folder", sa.String(255)),
    sa.Column("size_bytes", sa.Integer),
    _ts("received_at", nullable=False),
    _ts("updated_at"),
    sa.UniqueConstraint("source", "message_id"),
)

failure_analyses = sa.Table(
    "failure_analyses",
    metadata,
    _id(),
    sa.Column("event_id", sa.Integer, sa.ForeignKey("failure_events.id", ondelete="CASCADE"), nullable=False),
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
    sa.Column("analyser", sa.String(32), nullable=False),  # llm | heuristic | heuristic_fallback
    sa.Column("analyser_note", sa.Text),
    sa.Column("model", sa.String(255)),
    sa.Column("prompt_tokens", sa.Integer),
    sa.Column("completion_tokens", sa.Integer),
    sa.Column("latency_ms", sa.Integer),
    sa.Column("excerpt", sa.Text),
    sa.Column("excerpt_lines", JSONType),
    sa.Column("fingerprint", sa.String(64), index=True),
    sa.Column("retried_job_id", sa.String(64)),  # set when the job was retried automatically
    _ts("created_at", nullable=False),
    sa.UniqueConstraint("event_id", "job_id"),
    sa.Index("ix_failure_analyses_created_at", "created_at"),  # 0005
)

failure_fingerprints = sa.Table(
    "failure_fingerprints",
    metadata,
    sa.Column("fingerprint", sa.String(64), primary_key=True),
    sa.Column("project_path", sa.String(512)),
    sa.Column("job_name", sa.String(512)),
    sa.Column("first_error", sa.Text),
    sa.Column("occurrences", sa.Integer, nullable=False, server_default="1"),
    sa.Column("thread_refs", JSONType),  # {"slack": {"channel": ..., "ts": ...}, "telegram": {...}}
    _ts("first_seen", nullable=False),
    _ts("last_seen", nullable=False),
)

# ---- CI analytics --------------------------------------------------------------------------------

ci_runs = sa.Table(
    "ci_runs",
    metadata,
    _id(),
    sa.Column("provider", sa.String(32), nullable=False),  # github | gitlab
    sa.Column("repo", sa.String(512), nullable=False),  # owner/name (GitHub), path_with_namespace (GitLab)
    sa.Column("run_id", sa.String(64), nullable=False),  # GitHub run id, GitLab pipeline id
    sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),  # GitHub run_attempt; GitLab: 1
    sa.Column("name", sa.String(512)),
    sa.Column("branch", sa.String(512)),
    sa.Column("sha", sa.String(64)),
    sa.Column("author", sa.String(255)),  # the head commit's author
    sa.Column("event", sa.String(64)),  # GitHub event; GitLab pipeline source
    sa.Column("status", sa.String(32)),  # ours: success failure timed_out cancelled skipped running (definitions §2)
    sa.Column("conclusion", sa.String(32)),  # GitHub's conclusion as sent
    _ts("created_at"),
    _ts("started_at"),
    _ts("finished_at"),
    sa.Column("duration_s", sa.Float),
    sa.Column("queue_s", sa.Float),
    sa.Column("url", sa.Text),
    _ts("collected_at", nullable=False),
    # 0003: every attempt, with what the analytics group and filter by
    sa.Column("status_raw", sa.String(64)),  # the provider's value the mapping read (kept as sent)
    sa.Column("run_number", sa.Integer),
    sa.Column("workflow_id", sa.String(64)),
    sa.Column("workflow", sa.String(512)),  # GitHub workflow name; GitLab pipeline name, else its source
    sa.Column("actor", sa.String(255)),  # GitHub triggering_actor else actor; GitLab user.username
    sa.Column("parent_run_id", sa.String(64)),  # GitLab child pipeline -> its parent pipeline
    _ts("updated_at"),
    sa.UniqueConstraint("provider", "repo", "run_id", "attempt"),
    sa.Index("ix_ci_runs_repo_finished", "provider", "repo", "finished_at"),
    sa.Index("ix_ci_runs_finished_at", "finished_at"),
)

ci_jobs = sa.Table(
    "ci_jobs",
    metadata,
    _id(),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("repo", sa.String(512), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
    sa.Column("job_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(512)),
    sa.Column("stage", sa.String(255)),
    sa.Column("status", sa.String(32)),  # ours (definitions §2)
    sa.Column("conclusion", sa.String(32)),  # GitHub's conclusion as sent
    _ts("started_at"),
    _ts("finished_at"),
    sa.Column("duration_s", sa.Float),
    sa.Column("queue_s", sa.Float),
    sa.Column("runner", sa.String(255)),
    sa.Column("failure_reason", sa.String(128)),
    sa.Column("url", sa.Text),
    # 0003
    sa.Column("status_raw", sa.String(64)),
    _ts("created_at"),
    sa.Column("retried", sa.Boolean, nullable=False, server_default=sa.false()),  # GitLab: a later try exists
    sa.Column("allow_failure", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("steps", JSONType),  # GitHub steps [{name, number, status, conclusion, started_at, completed_at}]
    sa.UniqueConstraint("provider", "repo", "run_id", "attempt", "job_id"),
    sa.Index("ix_ci_jobs_run", "provider", "repo", "run_id"),
)

ci_deployments = sa.Table(
    "ci_deployments",
    metadata,
    _id(),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("repo", sa.String(512), nullable=False),
    sa.Column("deployment_id", sa.String(64), nullable=False),
    sa.Column("environment", sa.String(255), nullable=False),
    sa.Column("sha", sa.String(64)),
    sa.Column("ref", sa.String(512)),
    sa.Column("status", sa.String(32)),  # ours: success failure cancelled running (the latest status)
    sa.Column("status_raw", sa.String(64)),
    _ts("created_at"),
    _ts("finished_at"),  # time of the latest (final) status
    sa.Column("url", sa.Text),
    _ts("collected_at", nullable=False),
    # commits this deployment added since the previous successful one: [{"sha", "authored_at"}] (lead time)
    sa.Column("commits", JSONType),
    # 0007: a redeploy of an old SHA (a rollback): the deployment_id of the latest earlier successful
    # deployment of this SHA to this environment, when another SHA was deployed there in between
    sa.Column("redeploy_of", sa.String(64)),
    sa.UniqueConstraint("provider", "repo", "deployment_id"),
    sa.Index("ix_ci_deployments_env", "provider", "repo", "environment", "finished_at"),
)

#: Per repo x workflow x branch x day: the stored figures (definitions §3); recomputed for a day
#: whenever that day's runs are collected again, so a re-run or backfill rewrites the same rows.
ci_daily = sa.Table(
    "ci_daily",
    metadata,
    _id(),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("repo", sa.String(512), nullable=False),
    sa.Column("workflow", sa.String(512), nullable=False),
    sa.Column("branch", sa.String(512), nullable=False),
    sa.Column("runs", sa.Integer, nullable=False),
    sa.Column("figures", JSONType, nullable=False),
    _ts("computed_at", nullable=False),
    sa.UniqueConstraint("day", "provider", "repo", "workflow", "branch"),
)

#: Conditional-request cache (GitHub ETags): a 304 answer costs no rate limit.
http_cache = sa.Table(
    "http_cache",
    metadata,
    _id(),
    sa.Column("key", sa.String(64), nullable=False, unique=True),  # sha256 of system + method + URL + params
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("etag", sa.String(255)),
    sa.Column("last_modified", sa.String(64)),
    sa.Column("body", JSONType),
    _ts("fetched_at", nullable=False),
)

#: The history of every alert: one row per episode (condition started -> resolved), per source (the DAG
#: that raised it: each reads and resolves only its own; store/alert_events.py).
alert_events = sa.Table(
    "alert_events",
    metadata,
    _id(),
    sa.Column("source", sa.String(64), nullable=False, server_default="ci_pipeline_analytics"),
    sa.Column("rule_id", sa.String(128), nullable=False),
    sa.Column("scope_key", sa.String(512), nullable=False),  # e.g. github:acme/api:CI:main
    sa.Column("severity", sa.String(16), nullable=False),  # critical | warning
    sa.Column("state", sa.String(16), nullable=False),  # firing | resolved
    _ts("started_at", nullable=False),  # end of the interval in which the condition was first seen
    _ts("resolved_at"),
    _ts("last_evaluated_at", nullable=False),
    sa.Column("value", sa.Float),
    sa.Column("threshold", sa.Float),
    sa.Column("details", JSONType),
    sa.UniqueConstraint("source", "rule_id", "scope_key", "started_at"),
    sa.Index("ix_alert_events_open", "source", "rule_id", "scope_key", "state"),
)

#: 0006: the audit trail of ``ci_run_action`` (one row per Airflow run: who asked for what, what was sent,
#: GitHub's/GitLab's answers, the outcome) and the tag of the re-runs made there: ``result_attempt``
#: (GitHub: the attempt it started, a ``ci_runs.attempt``) and ``new_job_ids`` / ``retried_job_ids`` (GitLab:
#: the jobs it created / retried, ``ci_jobs.job_id``). store/run_actions.py reads and writes it.
ci_run_actions = sa.Table(
    "ci_run_actions",
    metadata,
    _id(),
    sa.Column("dag_id", sa.String(250), nullable=False),
    sa.Column("airflow_run_id", sa.String(250), nullable=False),
    sa.Column("triggered_by", sa.String(255)),  # the user who triggered the Airflow run
    _ts("requested_at", nullable=False),  # the Airflow run's run_after
    sa.Column("provider", sa.String(32), nullable=False),  # github | gitlab
    sa.Column("repo", sa.String(512), nullable=False),  # owner/name; GitLab: the project as given
    sa.Column("run_id", sa.String(64)),  # the run / pipeline acted on (redeploy: the one that deploys)
    sa.Column("job_id", sa.String(64)),  # the job acted on (one job re-run; GitLab redeploy: the deploy job)
    sa.Column("action", sa.String(32), nullable=False),  # rerun | rerun_failed | cancel | redeploy
    sa.Column("reason", sa.Text),
    sa.Column("environment", sa.String(255)),
    sa.Column("target", sa.String(255)),  # redeploy: the deployment id or SHA asked for
    sa.Column("target_sha", sa.String(64)),
    sa.Column("deployment_id", sa.String(64)),  # redeploy: the deployment gone back to
    sa.Column("dry_run", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("state", sa.String(16), nullable=False),  # refused | dry_run | sending | sent | done | failed
    sa.Column("plan", JSONType),  # the calls planned (method, path, body) and what is watched
    sa.Column("api_calls", JSONType),  # every write sent: method, path, status, at, answer (redacted)
    sa.Column("attempt_before", sa.Integer),  # GitHub: run_attempt before the re-run
    sa.Column("result_attempt", sa.Integer),  # GitHub: the attempt started here (tag for ci_runs.attempt)
    sa.Column("after_job_id", sa.String(64)),  # GitLab: the newest job id before the retry
    sa.Column("new_job_ids", JSONType),  # GitLab: jobs created here
    sa.Column("retried_job_ids", JSONType),  # GitLab: jobs retried here (ci_jobs.retried once collected)
    sa.Column("new_deployment_id", sa.String(64)),  # GitHub create_deployment
    sa.Column("outcome", sa.String(32)),  # success failure cancelled ... refused timed_out error (plan.OUTCOMES)
    sa.Column("outcome_detail", sa.Text),
    sa.Column("url", sa.Text),  # the run / pipeline / job page
    _ts("created_at", nullable=False),
    _ts("sent_at"),  # the server's Date of the first write's answer
    _ts("finished_at"),  # when GitHub/GitLab says the new attempt, the cancel or the deployment ended
    sa.UniqueConstraint("dag_id", "airflow_run_id"),
    sa.Index("ix_ci_run_actions_run", "provider", "repo", "run_id"),
    sa.Index("ix_ci_run_actions_requested_at", "requested_at"),
)

# ---- Daily metrics and health --------------------------------------------------------------------

project_metrics = sa.Table(
    "project_metrics",
    metadata,
    _id(),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("source", sa.String(32), nullable=False),  # github | prometheus | sonarqube | ci
    sa.Column("project", sa.String(512), nullable=False),
    sa.Column("metric", sa.String(128), nullable=False),
    sa.Column("value_raw", sa.String(255)),  # as the source sent it (Prometheus/SonarQube send strings)
    sa.Column("value", sa.Float),
    sa.Column("unit", sa.String(32)),
    _ts("collected_at", nullable=False),
    sa.UniqueConstraint("day", "source", "project", "metric"),
    sa.Index("ix_project_metrics_project_day", "project", "day"),  # 0005: one project's history
)

health_scores = sa.Table(
    "health_scores",
    metadata,
    _id(),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("project", sa.String(512), nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("grade", sa.String(8)),
    sa.Column("components", JSONType),
    _ts("created_at", nullable=False),
    sa.UniqueConstraint("day", "project"),
    sa.Index("ix_health_scores_project_day", "project", "day"),  # 0005
)

# ---- Delivery ------------------------------------------------------------------------------------

notifications = sa.Table(
    "notifications",
    metadata,
    _id(),
    sa.Column("dedup_key", sa.String(255), nullable=False, unique=True),
    sa.Column("channel", sa.String(32), nullable=False),  # slack | telegram | email
    sa.Column("target", sa.String(255)),  # channel id, chat id, address
    sa.Column("status", sa.String(16), nullable=False),  # pending | sent | failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("message_ref", sa.String(255)),  # Slack ts, Telegram message id
    sa.Column("error", sa.Text),
    _ts("created_at", nullable=False),
    _ts("sent_at"),
)

reports = sa.Table(
    "reports",
    metadata,
    _id(),
    sa.Column("kind", sa.String(32), nullable=False),  # weekly
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("period_end", sa.Date, nullable=False),
    sa.Column("markdown", sa.Text),
    sa.Column("html", sa.Text),
    sa.Column("summary", JSONType),
    sa.Column("archive_path", sa.Text),
    _ts("created_at", nullable=False),
    _ts("updated_at"),
    sa.UniqueConstraint("kind", "period_start"),
)
