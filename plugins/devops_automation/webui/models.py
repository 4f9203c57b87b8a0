"""Response models of the read API (pydantic): what each route answers, in the OpenAPI document.

Times are ISO-8601 UTC, days ``YYYY-MM-DD``; JSON columns of the store (figures, score components,
alert details, report summaries) are passed through as they are stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Page(Model, Generic[T]):
    """A page of a list: pass ``next_cursor`` back as ``cursor`` for the next one (``null``: the last)."""

    items: list[T]
    next_cursor: str | None = None
    limit: int


class Access(Model):
    user: str
    datasets: dict[str, bool] = Field(description="data set -> whether this user may read it")
    dags: dict[str, bool] = Field(description="DAG id -> whether this user may read its data")


# -- failures ------------------------------------------------------------------------------------------
class FailureJob(Model):
    id: int = Field(description="the analysis id (failure_analyses.id)")
    event_id: int = Field(description="the failed pipeline (failure_events.id)")
    provider: str
    project_id: str
    project_path: str | None = None
    pipeline_id: str
    ref: str | None = None
    sha: str | None = None
    pipeline_url: str | None = None
    job_id: str
    job_name: str | None = None
    stage: str | None = None
    job_url: str | None = None
    category: str
    root_cause: str | None = None
    is_transient: bool | None = None
    confidence: float | None = None
    analyser: str
    fingerprint: str | None = None
    retried_job_id: str | None = None
    created_at: dt.datetime


class FailureAnalysis(FailureJob):
    status: str | None = None
    state: str
    received_at: dt.datetime
    dag_run_id: str | None = Field(None, description="the ci_failure_triage run that analysed the pipeline")
    pipeline_at: str | None = None
    sources: list[str] = []
    fix_steps: list[Any] = []
    evidence_lines: list[Any] = Field([], description="[{line, text}]: log lines the cause rests on (redacted)")
    excerpt: str | None = Field(None, description="the log excerpt the analysis read (redacted)")
    excerpt_text_lines: list[str] = Field([], description="the excerpt as lines")
    excerpt_lines: list[str] = Field([], description="line ranges of the job log the excerpt was cut from")
    analyser_note: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: int | None = None


class JobSummary(Model):
    id: int
    job_id: str
    job_name: str | None = None
    stage: str | None = None
    job_url: str | None = None
    category: str
    root_cause: str | None = None
    is_transient: bool | None = None
    confidence: float | None = None
    analyser: str
    fingerprint: str | None = None
    created_at: dt.datetime


class FailurePipeline(Model):
    id: int
    provider: str
    project_id: str
    project_path: str | None = None
    pipeline_id: str
    ref: str | None = None
    sha: str | None = None
    pipeline_url: str | None = None
    status: str | None = None
    state: str
    source: str
    received_at: dt.datetime
    updated_at: dt.datetime | None = None
    dag_run_id: str | None = None
    pipeline_at: str | None = None
    sources: list[str] = []
    analysed_jobs: int
    categories: list[str]


class FailurePipelineDetail(FailurePipeline):
    jobs: list[JobSummary]


class Fingerprint(Model):
    fingerprint: str
    project_path: str | None = None
    job_name: str | None = None
    first_error: str | None = None
    occurrences: int
    first_seen: dt.datetime
    last_seen: dt.datetime


# -- CI ----------------------------------------------------------------------------------------------
class CiSummary(Model):
    """window_summary's answer (``figures`` as in ``ci_daily.figures`` and the weekly report)."""

    window: dict[str, str]
    previous_window: dict[str, str] | None = None
    filters: dict[str, Any]
    group_by: list[str]
    total: dict[str, Any]
    groups: list[dict[str, Any]]


class FlakyJobs(Model):
    window: dict[str, str]
    filters: dict[str, Any]
    flaky_rate: float | None = None
    jobs: list[dict[str, Any]]


class RedBranch(Model):
    model_config = ConfigDict(extra="allow")
    provider: str
    repo: str
    workflow: str | None = None
    branch: str | None = None
    started_at: str | None = None
    age_s: float | None = Field(None, description="age at as_of")
    failed_runs: int
    start_known: bool
    first_run_id: str | None = None
    last_run_id: str | None = None
    last_run_url: str | None = None
    as_of: dt.datetime = Field(description="end of the repository's latest computed day")


class RedBranches(Model):
    as_of: dt.datetime | None = None
    branches: list[RedBranch]


class Repo(Model):
    provider: str
    repo: str
    first_day: dt.date
    last_day: dt.date
    runs: int


class CiRun(Model):
    id: int
    provider: str
    repo: str
    run_id: str
    attempt: int
    run_number: int | None = None
    name: str | None = None
    workflow: str | None = None
    branch: str | None = None
    sha: str | None = None
    actor: str | None = None
    event: str | None = None
    status: str | None = None
    conclusion: str | None = None
    created_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    duration_s: float | None = None
    queue_s: float | None = None
    url: str | None = None
    parent_run_id: str | None = None


class CiJob(Model):
    job_id: str
    name: str | None = None
    stage: str | None = None
    status: str | None = None
    conclusion: str | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    duration_s: float | None = None
    queue_s: float | None = None
    runner: str | None = None
    failure_reason: str | None = None
    url: str | None = None
    retried: bool
    allow_failure: bool


class CiAttempt(CiRun):
    jobs: list[CiJob]


class CiRunDetail(Model):
    provider: str
    repo: str
    run_id: str
    attempts: list[CiAttempt]


# -- metrics and health ------------------------------------------------------------------------------
class HealthNow(Model):
    project: str
    day: dt.date
    score: float
    grade: str | None = None
    components: Any = None
    previous_day: dt.date | None = None
    previous_score: float | None = None
    change: float | None = None


class HealthLatest(Model):
    day: dt.date | None = None
    previous_day: dt.date | None = None
    projects: list[HealthNow]


class HealthPoint(Model):
    day: dt.date
    project: str
    score: float
    grade: str | None = None
    components: Any = None
    created_at: dt.datetime


class Metric(Model):
    id: int
    day: dt.date
    source: str
    project: str
    metric: str
    value: float | None = None
    value_raw: str | None = None
    unit: str | None = None
    collected_at: dt.datetime


# -- alerts ------------------------------------------------------------------------------------------
class Alert(Model):
    id: int
    source: str = Field(description="the DAG that raised it")
    rule_id: str
    scope_key: str
    severity: str
    state: str
    started_at: dt.datetime
    resolved_at: dt.datetime | None = None
    last_evaluated_at: dt.datetime
    value: float | None = None
    threshold: float | None = None
    details: Any = None


class Notification(Model):
    dedup_key: str
    kind: str = Field(description="start | resolve")
    channel: str
    target: str | None = None
    status: str
    attempts: int
    error: str | None = None
    created_at: dt.datetime
    sent_at: dt.datetime | None = None


class AlertDetail(Alert):
    notifications: list[Notification]


# -- ci_run_action's audit trail ------------------------------------------------------------------------
class RunAction(Model):
    id: int
    dag_id: str
    airflow_run_id: str = Field(description="the Airflow run that asked for it (its run history is the trail too)")
    triggered_by: str | None = Field(None, description="the Airflow user who triggered the run")
    requested_at: dt.datetime
    provider: str
    repo: str
    run_id: str | None = None
    job_id: str | None = None
    action: str = Field(description="rerun | rerun_failed | cancel | redeploy")
    reason: str | None = None
    environment: str | None = None
    target: str | None = Field(None, description="redeploy: the deployment id or SHA asked for")
    target_sha: str | None = None
    deployment_id: str | None = Field(None, description="redeploy: the deployment gone back to")
    dry_run: bool
    state: str = Field(description="refused | dry_run | sending | sent | done | failed")
    result_attempt: int | None = Field(None, description="GitHub: the run attempt started here")
    new_deployment_id: str | None = None
    outcome: str | None = None
    outcome_detail: str | None = None
    url: str | None = None
    created_at: dt.datetime
    sent_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None


class RunActionDetail(RunAction):
    plan: Any = Field(None, description="the calls planned (method, path, body) and what was watched")
    api_calls: list[Any] = Field([], description="every write sent: method, path, status, at, answer (redacted)")
    attempt_before: int | None = None
    after_job_id: str | None = None
    new_job_ids: list[str] = Field([], description="GitLab: jobs created here")
    retried_job_ids: list[str] = Field([], description="GitLab: jobs retried here")


# -- reports -----------------------------------------------------------------------------------------
class Report(Model):
    id: int
    kind: str
    period_start: dt.date
    period_end: dt.date
    title: str | None = None
    has_data: bool | None = None
    archive_path: str | None = None
    created_at: dt.datetime
    updated_at: dt.datetime | None = None


class ReportDetail(Report):
    summary: Any = None
