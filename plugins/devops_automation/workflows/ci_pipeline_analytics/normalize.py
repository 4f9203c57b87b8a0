"""Raw GitHub Actions and GitLab CI objects -> rows of ``ci_runs``, ``ci_jobs`` and ``ci_deployments``.

Plain Python (no Airflow): the collector fetches, these functions decide what is stored. Every figure
follows ``../shared/api/ci-analytics-definitions.md`` (§1 identity, §2 status vocabulary, §3 durations);
the input shapes are the REST objects as the APIs send them (``GET /repos/{o}/{r}/actions/runs/{id}/attempts/{n}``
and its ``/jobs``; GitLab's single-pipeline object, ``/pipelines/{id}/jobs?include_retried=true`` and
``/bridges``; GitHub deployments + statuses; GitLab deployments).

Rows carry exactly columns of their table (never ``id``), the same keys in every row of a kind (the
store's ``upsert`` takes the updated columns from the first row), aware UTC datetimes, and strings cut to
their column's length (with a warning). Nothing here raises on odd data: an unknown status becomes
``other`` with the raw value kept in ``status_raw`` and a warning naming it; a malformed timestamp
becomes ``None`` with a warning naming the field.

Decisions where the definitions are silent:

* **Status.** GitHub: a ``conclusion`` decides when there is one, else ``status`` (queued, in_progress,
  waiting, pending, requested -> ``running``); ``completed`` without a conclusion is ``other``.
  ``status_raw`` is the value the mapping read (the conclusion once completed, else the status).
  GitLab: the newer non-final statuses ``canceling`` and ``waiting_for_callback`` (gitlab.md) are
  ``running``; ``timed_out`` is ``failed`` with ``failure_reason`` ``job_execution_timeout`` or one of
  its documented aliases/splits (``server_timeout_running``, ``server_timeout_canceling``,
  ``job_execution_server_timeout``). Pipelines have no ``failure_reason``, so a pipeline whose job
  timed out is ``failure`` (the table says "job level").
* **GitHub attempt timing.** Only the jobs of *this* attempt (``run_attempt`` equal to the run's) count
  for the run's duration, queue and end; a job carried over from an earlier attempt still gets its row
  (under its own attempt). Jobs that were skipped are left out of the run's span (a job skipped at once
  would otherwise stretch it back to the run's creation) unless every job was skipped. ``finished_at``
  = latest such job ``completed_at``, else ``updated_at``; both only once the run is ``completed``.
  Queue of attempt 1 = earliest job start − run ``created_at`` (§3); of a re-run attempt the run's
  ``created_at`` is the first attempt's, so its ``run_started_at`` (reset by the re-run) stands for the
  attempt's creation. ``created_at`` is stored as sent (the run's creation); ``started_at`` =
  ``run_started_at``.
* **GitHub jobs.** A job not started yet (queued, waiting, pending, requested) has no ``started_at``
  (the API fills it with the creation time); duration and queue are stored only for jobs that ran (not
  skipped). Negative spans (clock skew between GitHub's services) are stored as 0. ``retried`` stays
  false: GitHub re-runs are attempts (their own run rows), not retried jobs.
* **GitHub names.** ``name`` and ``workflow`` both hold the run's ``name`` (the workflow's name; its
  ``path`` when the name is empty); ``author`` = the head commit's author name (else e-mail);
  ``actor`` = ``triggering_actor`` else ``actor``.
* **GitLab.** One attempt per pipeline (``attempt`` 1); ``workflow`` = the pipeline ``name`` if set,
  else its ``source``; ``author`` = the commit author of the pipeline's first job (the pipeline object
  has none); ``duration_s``/``queue_s`` = ``duration``/``queued_duration`` as sent (no recomputation);
  ``finished_at`` of a completed pipeline (success, failed, canceled, skipped) without one =
  ``updated_at``. ``retried`` = the job's own ``retried`` field when the API sends one, else whether a
  job or bridge of the same name in that pipeline has a higher id. Bridges are job rows (no runner).
* **Child pipelines.** :func:`child_pipeline_ids` returns the downstream pipelines of the bridges in
  the same project (parent-child, definitions §1); a multi-project downstream pipeline belongs to
  another project and is not linked.
* **GitHub deployments.** The status is the newest status (by ``created_at``, then ``id``; the order
  the API sends does not matter): success -> success; failure, error -> failure; in_progress, queued,
  pending -> running. ``inactive`` means a later deployment to the environment superseded this one,
  and GitHub only sets it on deployments that had succeeded: the deployment keeps the mapping and the
  time of its newest status that is not ``inactive`` (``status_raw`` stays ``inactive``, as sent); when
  only ``inactive`` statuses are left (GitHub deletes statuses after 90 days) it is ``success`` at the
  deployment's ``created_at``, with a warning. No status at all -> ``running``. ``finished_at`` = time of
  that status, none while running. ``url`` = that status's ``log_url``/``target_url``, else the API URL.
* **GitLab deployments.** success, failed, canceled, skipped as for jobs; created, running, blocked
  (waiting for approval) -> running. ``finished_at`` = ``finished_at`` if sent, else the deployable
  job's ``finished_at``, else ``updated_at`` (the API object has no finish time of its own).
* **Redeploys of old SHAs** (:func:`mark_redeploys`, both providers). ``redeploy_of`` = the
  ``deployment_id`` of the latest earlier successful deployment of the same SHA to the same environment
  when the environment's latest successful deployment before it was of another SHA (a rollback, through
  ``ci_run_action`` or anyone else); deploying the SHA that is there again is not one. Order: ``created_at``,
  then id. The deployment's own status does not matter (a failed rollback is marked too).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from devops_automation.store import schema

log = logging.getLogger(__name__)

# -- status vocabulary (definitions §2) -----------------------------------------------------------
SUCCESS = "success"
FAILURE = "failure"
TIMED_OUT = "timed_out"
CANCELLED = "cancelled"
SKIPPED = "skipped"
RUNNING = "running"
#: A provider value the table does not know: never guessed, the raw value is kept beside it.
OTHER = "other"
STATUSES = (SUCCESS, FAILURE, TIMED_OUT, CANCELLED, SKIPPED, RUNNING, OTHER)

GITHUB_CONCLUSIONS: Mapping[str, str] = {
    "success": SUCCESS,
    "failure": FAILURE,
    "startup_failure": FAILURE,
    "timed_out": TIMED_OUT,
    "cancelled": CANCELLED,
    "skipped": SKIPPED,
    "neutral": SKIPPED,
    "action_required": SKIPPED,
    "stale": SKIPPED,
}
GITHUB_RUNNING = frozenset({"queued", "in_progress", "waiting", "pending", "requested"})
#: Job statuses before a runner took the job (the API still fills ``started_at``).
GITHUB_NOT_STARTED = GITHUB_RUNNING - {"in_progress"}

GITLAB_STATUSES: Mapping[str, str] = {
    "success": SUCCESS,
    "failed": FAILURE,
    "canceled": CANCELLED,
    "skipped": SKIPPED,
    "manual": SKIPPED,
    "created": RUNNING,
    "waiting_for_resource": RUNNING,
    "preparing": RUNNING,
    "pending": RUNNING,
    "running": RUNNING,
    "scheduled": RUNNING,
    "canceling": RUNNING,  # newer GitLab: on its way to canceled
    "waiting_for_callback": RUNNING,  # newer GitLab
}
#: ``failed`` with one of these is ``timed_out``: the reason of the table plus its documented aliases.
GITLAB_TIMEOUT_REASONS = frozenset(
    {"job_execution_timeout", "job_execution_server_timeout", "server_timeout_running", "server_timeout_canceling"}
)
#: Pipeline/job statuses GitLab calls completed (gitlab.md "Statuses").
GITLAB_COMPLETED = frozenset({"success", "failed", "canceled", "skipped"})

GITHUB_DEPLOYMENT_STATES: Mapping[str, str] = {
    "success": SUCCESS,
    "inactive": SUCCESS,  # superseded by a later deployment; set only on deployments that had succeeded
    "failure": FAILURE,
    "error": FAILURE,
    "in_progress": RUNNING,
    "queued": RUNNING,
    "pending": RUNNING,
}
GITLAB_DEPLOYMENT_STATUSES: Mapping[str, str] = {
    "success": SUCCESS,
    "failed": FAILURE,
    "canceled": CANCELLED,
    "skipped": SKIPPED,
    "created": RUNNING,
    "running": RUNNING,
    "blocked": RUNNING,  # waiting for a deployment approval
}

# -- natural keys (the tables' unique constraints) ------------------------------------------------
RUN_KEYS = ("provider", "repo", "run_id", "attempt")
JOB_KEYS = ("provider", "repo", "run_id", "attempt", "job_id")
DEPLOYMENT_KEYS = ("provider", "repo", "deployment_id")

Row = dict[str, Any]
_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


def _unknown(provider: str, what: str, value: Any, where: str) -> str:
    log.warning(
        "unknown %s %s %r%s: stored as %r, the raw value is kept",
        provider,
        what,
        value,
        f" ({where})" if where else "",
        OTHER,
    )
    return OTHER


def map_github(status: str | None, conclusion: str | None, *, where: str = "") -> str:
    """Our status of a GitHub run, attempt or job (definitions §2); ``other`` (+ a warning) if unknown."""
    if conclusion:
        return GITHUB_CONCLUSIONS.get(conclusion) or _unknown("GitHub", "conclusion", conclusion, where)
    if status in GITHUB_RUNNING:
        return RUNNING
    if status == "completed":
        return _unknown("GitHub", "conclusion", conclusion, where)
    return _unknown("GitHub", "status", status, where)


def github_status_raw(status: str | None, conclusion: str | None) -> str | None:
    """The raw value :func:`map_github` decided on: the conclusion once there is one, else the status."""
    return conclusion or status


def map_gitlab(status: str | None, failure_reason: str | None = None, *, where: str = "") -> str:
    """Our status of a GitLab pipeline, job or bridge (definitions §2); ``other`` (+ a warning) if unknown."""
    mapped = GITLAB_STATUSES.get(status) if status else None
    if mapped is None:
        return _unknown("GitLab", "status", status, where)
    if mapped == FAILURE and failure_reason in GITLAB_TIMEOUT_REASONS:
        return TIMED_OUT
    return mapped


def map_github_deployment(state: str | None, *, where: str = "") -> str:
    """Our status of one GitHub deployment status ``state``; ``other`` (+ a warning) if unknown."""
    mapped = GITHUB_DEPLOYMENT_STATES.get(state) if state else None
    return mapped or _unknown("GitHub", "deployment state", state, where)


def map_gitlab_deployment(status: str | None, *, where: str = "") -> str:
    """Our status of a GitLab deployment; ``other`` (+ a warning) if unknown."""
    mapped = GITLAB_DEPLOYMENT_STATUSES.get(status) if status else None
    return mapped or _unknown("GitLab", "deployment status", status, where)


# -- values ---------------------------------------------------------------------------------------
def parse_ts(value: Any, field: str = "timestamp") -> dt.datetime | None:
    """An API timestamp as an aware UTC datetime.

    Reads GitHub's ``2026-11-20T10:00:00Z``, GitLab's ``2026-11-20T10:00:00.123+01:00`` (any fraction,
    any offset), GitLab webhooks' ``2026-11-20 10:00:00 UTC`` and datetimes; a time without an offset is
    UTC. ``None``, ``""`` and Go's zero time ``0001-01-01…`` are ``None``; anything unreadable is ``None``
    with a warning naming ``field``.
    """
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        if not text or text.startswith("0001-01-01"):
            return None
        if text.endswith(" UTC"):
            text = text[:-4] + "+00:00"
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            log.warning("malformed timestamp in %s: %r (stored as empty)", field, value)
            return None
    else:
        log.warning("malformed timestamp in %s: %r (stored as empty)", field, value)
        return None
    if parsed.year == 1:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:
        log.warning("malformed timestamp in %s: %r (stored as empty)", field, value)
        return None


def _seconds(value: Any, field: str) -> float | None:
    """A duration in seconds as sent (GitLab ``duration``/``queued_duration``)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        number = None
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
    if number is None or number != number or number < 0:  # NaN or negative: not a duration
        log.warning("malformed duration in %s: %r (stored as empty)", field, value)
        return None
    return number


def _span(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def _str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _int(value: Any) -> int | None:
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None


def _id_order(value: Any) -> tuple[int, Any]:
    """Ids ordered numerically when they are numbers (GitLab/GitHub ids are)."""
    number = _int(value)
    return (0, number) if number is not None else (1, str(value))


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _aware(collected_at: dt.datetime) -> dt.datetime:
    if not isinstance(collected_at, dt.datetime) or collected_at.tzinfo is None:
        raise ValueError(f"collected_at must be a timezone-aware datetime, got {collected_at!r}")
    return collected_at.astimezone(dt.UTC)


def _fit(table: sa.Table, row: Row) -> Row:
    """Check every key is a column of ``table`` and cut strings to their column's length."""
    for key, value in row.items():
        column = table.c[key]  # KeyError: a builder wrote a column the table does not have
        length = getattr(column.type, "length", None)
        if isinstance(value, str) and length and len(value) > length:
            log.warning("%s.%s: %d characters cut to %d (%r…)", table.name, key, len(value), length, value[:60])
            row[key] = value[:length]
    return row


def _login(user: Any) -> str | None:
    return _str(user.get("login")) if isinstance(user, Mapping) else None


# -- GitHub Actions -------------------------------------------------------------------------------
def github_run_rows(
    repo: str, attempt_run: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]], *, collected_at: dt.datetime
) -> tuple[Row, list[Row]]:
    """One ``ci_runs`` row for one attempt of a workflow run and the ``ci_jobs`` rows of its jobs.

    ``attempt_run`` is ``GET /repos/{repo}/actions/runs/{id}/attempts/{n}`` (the run as of that
    attempt), ``jobs`` every page of ``…/attempts/{n}/jobs``.
    """
    collected_at = _aware(collected_at)
    run_id = str(attempt_run["id"])
    attempt = _int(attempt_run.get("run_attempt")) or 1
    where = f"{repo} run {run_id} attempt {attempt}"
    raw_status, conclusion = attempt_run.get("status"), attempt_run.get("conclusion")
    created = parse_ts(attempt_run.get("created_at"), f"{where}: created_at")
    started = parse_ts(attempt_run.get("run_started_at"), f"{where}: run_started_at")
    updated = parse_ts(attempt_run.get("updated_at"), f"{where}: updated_at")

    job_rows = [_github_job_row(repo, run_id, attempt, job) for job in jobs]
    own = [r for r in job_rows if r["attempt"] == attempt]
    ran = [r for r in own if r["status"] != SKIPPED] or own
    starts = [r["started_at"] for r in ran if r["started_at"] is not None]
    ends = [r["finished_at"] for r in ran if r["finished_at"] is not None]

    finished = duration = None
    if raw_status == "completed" or conclusion:
        if starts and ends:
            finished = max(ends)
            duration = _span(min(starts), finished)
        else:
            finished = updated
            duration = _span(started, updated)
    origin = created if attempt == 1 else (started or created)
    queue = _span(origin, min(starts)) if starts else None

    head_author = (attempt_run.get("head_commit") or {}).get("author") or {}
    row: Row = {
        "provider": "github",
        "repo": repo,
        "run_id": run_id,
        "attempt": attempt,
        "name": _str(attempt_run.get("name")),
        "branch": _str(attempt_run.get("head_branch")),
        "sha": _str(attempt_run.get("head_sha")),
        "author": _str(head_author.get("name")) or _str(head_author.get("email")),
        "event": _str(attempt_run.get("event")),
        "status": map_github(raw_status, conclusion, where=where),
        "conclusion": _str(conclusion),
        "created_at": created,
        "started_at": started,
        "finished_at": finished,
        "duration_s": duration,
        "queue_s": queue,
        "url": _str(attempt_run.get("html_url")),
        "collected_at": collected_at,
        "status_raw": _str(github_status_raw(raw_status, conclusion)),
        "run_number": _int(attempt_run.get("run_number")),
        "workflow_id": _str(attempt_run.get("workflow_id")),
        "workflow": _str(attempt_run.get("name")) or _str(attempt_run.get("path")),
        "actor": _login(attempt_run.get("triggering_actor")) or _login(attempt_run.get("actor")),
        "parent_run_id": None,
        "updated_at": updated,
    }
    return _fit(schema.ci_runs, row), job_rows


def _github_steps(steps: Iterable[Mapping[str, Any]], where: str) -> list[dict[str, Any]]:
    return [
        {
            "name": step.get("name"),
            "number": _int(step.get("number")),
            "status": step.get("status"),
            "conclusion": step.get("conclusion"),
            "started_at": _iso(parse_ts(step.get("started_at"), f"{where}: steps[].started_at")),
            "completed_at": _iso(parse_ts(step.get("completed_at"), f"{where}: steps[].completed_at")),
        }
        for step in steps
    ]


def _github_job_row(repo: str, run_id: str, attempt: int, job: Mapping[str, Any]) -> Row:
    job_id = str(job["id"])
    where = f"{repo} run {run_id} job {job_id}"
    raw_status, conclusion = job.get("status"), job.get("conclusion")
    status = map_github(raw_status, conclusion, where=where)
    created = parse_ts(job.get("created_at"), f"{where}: created_at")
    started = None if raw_status in GITHUB_NOT_STARTED else parse_ts(job.get("started_at"), f"{where}: started_at")
    finished = parse_ts(job.get("completed_at"), f"{where}: completed_at")
    ran = started is not None and status != SKIPPED
    row: Row = {
        "provider": "github",
        "repo": repo,
        "run_id": run_id,
        "attempt": _int(job.get("run_attempt")) or attempt,
        "job_id": job_id,
        "name": _str(job.get("name")),
        "stage": None,
        "status": status,
        "conclusion": _str(conclusion),
        "started_at": started,
        "finished_at": finished,
        "duration_s": _span(started, finished) if ran else None,
        "queue_s": _span(created, started) if ran else None,
        "runner": _str(job.get("runner_name")),
        "failure_reason": None,
        "url": _str(job.get("html_url")),
        "status_raw": _str(github_status_raw(raw_status, conclusion)),
        "created_at": created,
        "retried": False,
        "allow_failure": False,
        "steps": _github_steps(job.get("steps") or [], where),
    }
    return _fit(schema.ci_jobs, row)


def github_deployment_row(
    repo: str,
    deployment: Mapping[str, Any],
    statuses: Sequence[Mapping[str, Any]],
    *,
    collected_at: dt.datetime,
) -> Row:
    """The ``ci_deployments`` row of a GitHub deployment and every page of its ``/statuses``."""
    collected_at = _aware(collected_at)
    deployment_id = str(deployment["id"])
    where = f"{repo} deployment {deployment_id}"
    created = parse_ts(deployment.get("created_at"), f"{where}: created_at")
    timed = [(parse_ts(s.get("created_at"), f"{where}: statuses[].created_at"), s) for s in statuses]
    timed.sort(key=lambda pair: (pair[0] or dt.datetime.min.replace(tzinfo=dt.UTC), _id_order(pair[1].get("id"))))
    newest_first = [s for _, s in reversed(timed)]
    times = {id(s): t for t, s in timed}

    raw = _str(newest_first[0].get("state")) if newest_first else None
    basis = newest_first[0] if newest_first else None
    if raw == "inactive":
        basis = next((s for s in newest_first if s.get("state") != "inactive"), None)
    if not newest_first:
        status, finished = RUNNING, None
    elif basis is None:  # only "inactive" left: GitHub deletes statuses older than 90 days
        status, finished = SUCCESS, created
        log.warning("%s: only 'inactive' statuses left; counted as success at its creation time", where)
    else:
        status = map_github_deployment(basis.get("state"), where=where)
        finished = None if status == RUNNING else times[id(basis)]
    link = basis or {}
    row: Row = {
        "provider": "github",
        "repo": repo,
        "deployment_id": deployment_id,
        "environment": _str(deployment.get("environment")) or _str(deployment.get("original_environment")) or "",
        "sha": _str(deployment.get("sha")),
        "ref": _str(deployment.get("ref")),
        "status": status,
        "status_raw": raw,
        "created_at": created,
        "finished_at": finished,
        "url": _str(link.get("log_url")) or _str(link.get("target_url")) or _str(deployment.get("url")),
        "collected_at": collected_at,
        "commits": None,  # filled by the collector from the compare API (lead time)
        "redeploy_of": None,  # filled by the collector (mark_redeploys: it needs the environment's history)
    }
    return _fit(schema.ci_deployments, row)


def mark_redeploys(rows: Sequence[Row], stored: Iterable[Mapping[str, Any]] = ()) -> dict[str, str | None]:
    """Set ``redeploy_of`` on each of ``rows`` (``ci_deployments`` rows of one repository) from the history
    of their environments: ``rows`` and the ``stored`` rows of the same repository (``deployment_id``,
    ``environment``, ``sha``, ``status``, ``created_at``, ``redeploy_of``; a row in ``rows`` wins). Returns
    ``deployment_id -> redeploy_of`` of the stored rows not in ``rows`` whose value is not the stored one
    (a deployment collected late changes what came after it; rows stored before the column existed)."""
    given = {str(r["deployment_id"]): r for r in rows}
    history: dict[str, Mapping[str, Any]] = {str(r["deployment_id"]): r for r in stored}
    history.update(given)
    by_env: dict[str, list[Mapping[str, Any]]] = {}
    for row in history.values():
        by_env.setdefault(str(row["environment"]), []).append(row)
    changed: dict[str, str | None] = {}
    for env_rows in by_env.values():
        env_rows.sort(key=lambda r: (r["created_at"] or _EPOCH, _id_order(r["deployment_id"])))
        current: str | None = None  # SHA of the latest successful deployment so far
        last_of: dict[str, str] = {}  # SHA -> its latest successful deployment so far
        for row in env_rows:
            sha, deployment_id = row["sha"], str(row["deployment_id"])
            value = last_of.get(sha) if sha and current is not None and sha != current else None
            mine = given.get(deployment_id)
            if mine is not None:
                mine["redeploy_of"] = value
            elif row.get("redeploy_of") != value:
                changed[deployment_id] = value
            if row["status"] == SUCCESS and sha:
                current, last_of[sha] = sha, deployment_id
    return changed


# -- GitLab CI ------------------------------------------------------------------------------------
def gitlab_run_rows(
    project: str,
    pipeline: Mapping[str, Any],
    jobs: Sequence[Mapping[str, Any]],
    bridges: Sequence[Mapping[str, Any]] = (),
    *,
    parent_run_id: str | int | None = None,
    collected_at: dt.datetime,
) -> tuple[Row, list[Row]]:
    """One ``ci_runs`` row for a pipeline and the ``ci_jobs`` rows of its jobs and bridges.

    ``pipeline`` is ``GET /projects/:id/pipelines/:pipeline_id`` (the single-pipeline object: it has
    the user, timing and durations the list items lack); ``jobs`` every page of
    ``…/pipelines/:pipeline_id/jobs?include_retried=true``; ``bridges`` every page of ``…/bridges``.
    ``parent_run_id``: the parent pipeline's id when this is a child pipeline (see
    :func:`child_pipeline_ids`).
    """
    collected_at = _aware(collected_at)
    run_id = str(pipeline["id"])
    where = f"{project} pipeline {run_id}"
    raw_status = _str(pipeline.get("status"))
    updated = parse_ts(pipeline.get("updated_at"), f"{where}: updated_at")
    finished = parse_ts(pipeline.get("finished_at"), f"{where}: finished_at")
    if finished is None and raw_status in GITLAB_COMPLETED:
        finished = updated

    everything = [*jobs, *bridges]
    retried = _gitlab_retried(everything)
    job_rows = [_gitlab_job_row(project, run_id, job, retried[id(job)]) for job in everything]
    author = next(
        (
            _str(job["commit"].get("author_name"))
            for job in everything
            if isinstance(job.get("commit"), Mapping) and job["commit"].get("author_name")
        ),
        None,
    )
    user = pipeline.get("user")
    name = _str(pipeline.get("name"))
    row: Row = {
        "provider": "gitlab",
        "repo": project,
        "run_id": run_id,
        "attempt": 1,
        "name": name,
        "branch": _str(pipeline.get("ref")),
        "sha": _str(pipeline.get("sha")),
        "author": author,
        "event": _str(pipeline.get("source")),
        "status": map_gitlab(raw_status, where=where),
        "conclusion": None,
        "created_at": parse_ts(pipeline.get("created_at"), f"{where}: created_at"),
        "started_at": parse_ts(pipeline.get("started_at"), f"{where}: started_at"),
        "finished_at": finished,
        "duration_s": _seconds(pipeline.get("duration"), f"{where}: duration"),
        "queue_s": _seconds(pipeline.get("queued_duration"), f"{where}: queued_duration"),
        "url": _str(pipeline.get("web_url")),
        "collected_at": collected_at,
        "status_raw": raw_status,
        "run_number": _int(pipeline.get("iid")),
        "workflow_id": None,
        "workflow": name or _str(pipeline.get("source")),
        "actor": _str(user.get("username")) if isinstance(user, Mapping) else None,
        "parent_run_id": _str(parent_run_id),
        "updated_at": updated,
    }
    return _fit(schema.ci_runs, row), job_rows


def _gitlab_retried(jobs: Sequence[Mapping[str, Any]]) -> dict[int, bool]:
    """Per job (by object identity): its ``retried`` field if sent, else a newer job of that name exists."""
    newest: dict[Any, tuple[int, Any]] = {}
    for job in jobs:
        key = _id_order(job.get("id"))
        name = job.get("name")
        if name not in newest or key > newest[name]:
            newest[name] = key
    flags = {}
    for job in jobs:
        sent = job.get("retried")
        flags[id(job)] = sent if isinstance(sent, bool) else _id_order(job.get("id")) < newest[job.get("name")]
    return flags


def _gitlab_job_row(project: str, run_id: str, job: Mapping[str, Any], retried: bool) -> Row:
    job_id = str(job["id"])
    where = f"{project} pipeline {run_id} job {job_id}"
    raw_status = _str(job.get("status"))
    failure_reason = _str(job.get("failure_reason"))
    runner = job.get("runner")
    row: Row = {
        "provider": "gitlab",
        "repo": project,
        "run_id": run_id,
        "attempt": 1,
        "job_id": job_id,
        "name": _str(job.get("name")),
        "stage": _str(job.get("stage")),
        "status": map_gitlab(raw_status, failure_reason, where=where),
        "conclusion": None,
        "started_at": parse_ts(job.get("started_at"), f"{where}: started_at"),
        "finished_at": parse_ts(job.get("finished_at"), f"{where}: finished_at"),
        "duration_s": _seconds(job.get("duration"), f"{where}: duration"),
        "queue_s": _seconds(job.get("queued_duration"), f"{where}: queued_duration"),
        "runner": _str(runner.get("description")) if isinstance(runner, Mapping) else None,
        "failure_reason": failure_reason,
        "url": _str(job.get("web_url")),
        "status_raw": raw_status,
        "created_at": parse_ts(job.get("created_at"), f"{where}: created_at"),
        "retried": retried,
        "allow_failure": bool(job.get("allow_failure")),
        "steps": None,
    }
    return _fit(schema.ci_jobs, row)


def child_pipeline_ids(bridges: Sequence[Mapping[str, Any]]) -> list[str]:
    """The child pipelines the bridges started (same project), in order, each once.

    Collect each of them with ``parent_run_id`` = the pipeline these bridges belong to. A bridge that
    started nothing (``downstream_pipeline`` null) or a pipeline in another project (multi-project
    trigger) gives nothing.
    """
    ids: list[str] = []
    for bridge in bridges:
        downstream = bridge.get("downstream_pipeline")
        if not isinstance(downstream, Mapping) or downstream.get("id") is None:
            continue
        parent_project = (bridge.get("pipeline") or {}).get("project_id")
        child_project = downstream.get("project_id")
        if parent_project is not None and child_project is not None and str(parent_project) != str(child_project):
            continue
        pipeline_id = str(downstream["id"])
        if pipeline_id not in ids:
            ids.append(pipeline_id)
    return ids


def gitlab_deployment_row(project: str, deployment: Mapping[str, Any], *, collected_at: dt.datetime) -> Row:
    """The ``ci_deployments`` row of a GitLab deployment (``GET /projects/:id/deployments`` item)."""
    collected_at = _aware(collected_at)
    deployment_id = str(deployment["id"])
    where = f"{project} deployment {deployment_id}"
    raw_status = _str(deployment.get("status"))
    status = map_gitlab_deployment(raw_status, where=where)
    deployable = deployment.get("deployable") if isinstance(deployment.get("deployable"), Mapping) else {}
    environment = deployment.get("environment") if isinstance(deployment.get("environment"), Mapping) else {}
    finished = None
    if status != RUNNING:
        finished = (
            parse_ts(deployment.get("finished_at"), f"{where}: finished_at")
            or parse_ts(deployable.get("finished_at"), f"{where}: deployable.finished_at")
            or parse_ts(deployment.get("updated_at"), f"{where}: updated_at")
        )
    row: Row = {
        "provider": "gitlab",
        "repo": project,
        "deployment_id": deployment_id,
        "environment": _str(environment.get("name")) or "",
        "sha": _str(deployment.get("sha")),
        "ref": _str(deployment.get("ref")),
        "status": status,
        "status_raw": raw_status,
        "created_at": parse_ts(deployment.get("created_at"), f"{where}: created_at"),
        "finished_at": finished,
        "url": _str(deployable.get("web_url")),
        "collected_at": collected_at,
        "commits": None,  # filled by the collector from the compare API (lead time)
        "redeploy_of": None,  # filled by the collector (mark_redeploys: it needs the environment's history)
    }
    return _fit(schema.ci_deployments, row)
