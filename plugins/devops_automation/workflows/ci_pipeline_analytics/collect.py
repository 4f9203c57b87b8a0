"""Collecting one repository's (or project's) CI runs for one data interval into the results store.

No Airflow here: the operators pass in a hook (``GitHubHook`` / ``GitLabHook``) and a ``ResultsStore``.
Everything is keyed on its natural key and written with ``only_changed``, so collecting the same
interval again changes no row, and a backfill of a past interval gives the rows the daily run gave.

GitHub: the runs created in ``[start - lookback, end)`` are listed (the list bisects its window under
the 1,000-result cap; cached pages answer 304 and cost no rate limit). Every attempt ``1..run_attempt``
is stored; an attempt the store already holds as completed is not fetched again (a completed attempt
never changes), so looking back over a week costs the list pages and the new attempts only. For the
same reason a completed attempt is fetched without the ETag cache (``http_cache`` keeps the list pages
and the attempts still in progress, which are asked for again).
GitLab: the pipelines updated in the same window, each with its jobs (``include_retried``: retried
jobs are the attempts), bridges and the child pipelines they started (linked to their parent).
Deployments to the environments matching ``environments`` are stored with the commits they added
(compare API), for DORA, and with ``redeploy_of`` when they deploy an old SHA again (a rollback).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import sqlalchemy as sa

from devops_automation.store import ResultsStore, schema
from devops_automation.workflows.ci_pipeline_analytics.normalize import (
    DEPLOYMENT_KEYS,
    JOB_KEYS,
    RUN_KEYS,
    RUNNING,
    child_pipeline_ids,
    github_deployment_row,
    github_run_rows,
    gitlab_deployment_row,
    gitlab_run_rows,
    mark_redeploys,
    parse_ts,
)

log = logging.getLogger(__name__)

DEFAULT_ENVIRONMENTS = r"(?i)^(prod|production)$"


@dataclass
class Collected:
    """What one collection did (returned as the mapped task's XCom; no secrets, no raw payloads)."""

    provider: str
    repo: str
    runs_listed: int = 0
    attempts_stored: int = 0
    attempts_skipped: int = 0  # already stored as completed: not fetched again
    jobs_stored: int = 0
    deployments_stored: int = 0
    days: list[str] = field(default_factory=list)  # days (UTC) whose figures must be recomputed
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _day(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).date().isoformat() if value else None


def _completed_attempts(store: ResultsStore, provider: str, repo: str, run_ids: Iterable[str]) -> set[tuple[str, int]]:
    """(run_id, attempt) pairs the store already holds in a final state."""
    ids = sorted(set(run_ids))
    t = schema.ci_runs
    done: set[tuple[str, int]] = set()
    with store.begin() as conn:
        for i in range(0, len(ids), 500):
            rows = conn.execute(
                sa.select(t.c.run_id, t.c.attempt).where(
                    t.c.provider == provider, t.c.repo == repo, t.c.run_id.in_(ids[i : i + 500]), t.c.status != RUNNING
                )
            )
            done.update((str(r.run_id), int(r.attempt)) for r in rows)
    return done


def _unchanged_pipelines(store: ResultsStore, project: str, listed: list[dict[str, Any]]) -> set[str]:
    """Pipelines the store holds as completed with the ``updated_at`` the listing shows."""
    listed_at = {str(p["id"]): parse_ts(p.get("updated_at"), "pipeline updated_at") for p in listed}
    t = schema.ci_runs
    ids = sorted(listed_at)
    same: set[str] = set()
    with store.begin() as conn:
        for i in range(0, len(ids), 500):
            rows = conn.execute(
                sa.select(t.c.run_id, t.c.updated_at).where(
                    t.c.provider == "gitlab",
                    t.c.repo == project,
                    t.c.run_id.in_(ids[i : i + 500]),
                    t.c.status != RUNNING,
                )
            )
            same.update(str(r.run_id) for r in rows if r.updated_at and r.updated_at == listed_at.get(str(r.run_id)))
    return same


def _stored_days(store: ResultsStore, provider: str, repo: str, run_ids: Iterable[str]) -> set[str]:
    """Days on which the stored attempts of these runs finished: a new attempt (a re-run, a retried
    job) moves a run to the day its new final attempt finishes, so the old day must be recomputed too."""
    ids = sorted(set(run_ids))
    t = schema.ci_runs
    days: set[str] = set()
    with store.begin() as conn:
        for i in range(0, len(ids), 500):
            rows = conn.execute(
                sa.select(t.c.finished_at).where(
                    t.c.provider == provider,
                    t.c.repo == repo,
                    t.c.run_id.in_(ids[i : i + 500]),
                    t.c.finished_at.is_not(None),
                )
            )
            days.update(d for r in rows for d in (_day(r.finished_at),) if d)
    return days


def _write(store: ResultsStore, runs: list[dict[str, Any]], jobs: list[dict[str, Any]]) -> None:
    with store.begin() as conn:
        store.upsert(schema.ci_runs, runs, keys=RUN_KEYS, only_changed=True, ignore=["collected_at"], conn=conn)
        store.upsert(schema.ci_jobs, jobs, keys=JOB_KEYS, only_changed=True, conn=conn)


def _is_not_found(exc: Exception) -> bool:
    return getattr(exc, "status", None) == 404


def _repository_still_there(hook: Any, repo: str) -> None:
    """A 404 under a repository means a deleted run or job only if the repository itself still answers
    (GitHub also says 404 for a repository the token can no longer see): otherwise the error stands."""
    hook.request_json("GET", f"/repos/{repo}")  # raises ApiError 404 when the repository is gone


def collect_github(
    hook: Any,
    store: ResultsStore,
    repo: str,
    *,
    start: dt.datetime,
    end: dt.datetime,
    lookback_days: int,
    collected_at: dt.datetime,
    environments: str | None = DEFAULT_ENVIRONMENTS,
) -> Collected:
    result = Collected("github", repo)
    listed = hook.runs_in_window(repo, start - dt.timedelta(days=lookback_days), end)
    result.runs_listed = len(listed)
    done = _completed_attempts(store, "github", repo, (str(r["id"]) for r in listed))
    runs: list[dict[str, Any]] = []
    jobs: list[dict[str, Any]] = []
    days: set[str] = set()
    for run in listed:
        latest = int(run.get("run_attempt") or 1)
        latest_done = str(run.get("status") or "") == "completed"
        for attempt in range(1, latest + 1):
            if (str(run["id"]), attempt) in done:
                result.attempts_skipped += 1
                continue
            # a completed attempt is fetched once (the next run skips it): caching its bodies would only
            # fill http_cache. Every attempt below the latest is completed (GitHub re-runs a finished run).
            cached = attempt == latest and not latest_done
            try:
                attempt_run = run if attempt == latest else hook.run_attempt(repo, run["id"], attempt, cached=False)
            except Exception as exc:
                if not _is_not_found(exc):
                    raise
                _repository_still_there(hook, repo)
                result.warnings.append(f"run {run['id']} attempt {attempt} is gone (404)")
                continue
            try:
                attempt_jobs = hook.attempt_jobs(repo, run["id"], attempt, cached=cached)
            except Exception as exc:
                if not _is_not_found(exc):
                    raise
                _repository_still_there(hook, repo)
                result.warnings.append(f"jobs of run {run['id']} attempt {attempt} are gone (404): stored without jobs")
                attempt_jobs = []
            row, job_rows = github_run_rows(repo, attempt_run, attempt_jobs, collected_at=collected_at)
            runs.append(row)
            jobs.extend(job_rows)
            days.update(d for d in (_day(row["finished_at"]),) if d)
    days |= _stored_days(store, "github", repo, (r["run_id"] for r in runs))
    _write(store, runs, jobs)
    result.attempts_stored, result.jobs_stored = len(runs), len(jobs)
    if environments:
        result.deployments_stored = _github_deployments(hook, store, repo, re.compile(environments), collected_at, days)
    result.days = sorted(days)
    return result


def _github_deployments(
    hook: Any, store: ResultsStore, repo: str, environments: re.Pattern[str], collected_at: dt.datetime, days: set[str]
) -> int:
    rows = []
    for deployment in hook.deployments(repo):
        if not environments.search(str(deployment.get("environment") or "")):
            continue
        statuses = hook.deployment_statuses(repo, deployment["id"])
        rows.append(github_deployment_row(repo, deployment, statuses, collected_at=collected_at))
    _add_commits(rows, lambda base, head: _github_commits(hook, repo, base, head))
    _write_deployments(store, rows, days)
    return len(rows)


def _github_commits(hook: Any, repo: str, base: str, head: str) -> list[dict[str, Any]]:
    body = hook.compare(repo, base, head) or {}
    out = []
    for c in body.get("commits") or []:
        author = (c.get("commit") or {}).get("author") or {}
        out.append({"sha": c.get("sha"), "authored_at": author.get("date")})
    return out


def _add_commits(rows: list[dict[str, Any]], commits_between: Any) -> None:
    """Each successful deployment's commits since the previous successful one to its environment."""
    by_env: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_env.setdefault(row["environment"], []).append(row)
    for env_rows in by_env.values():
        env_rows.sort(key=lambda r: (r["created_at"] or dt.datetime.min.replace(tzinfo=dt.UTC), r["deployment_id"]))
        previous_sha = None
        for row in env_rows:
            if row["status"] != "success" or not row["sha"]:
                continue
            if previous_sha and previous_sha != row["sha"]:
                try:
                    row["commits"] = commits_between(previous_sha, row["sha"])
                except Exception as exc:  # a force-pushed-away SHA: lead time unknown for this one
                    if not _is_not_found(exc):
                        raise
                    log.warning("compare %s...%s: %s", previous_sha[:12], row["sha"][:12], exc)
            previous_sha = row["sha"]


def _write_deployments(store: ResultsStore, rows: list[dict[str, Any]], days: set[str]) -> None:
    """Upsert the deployments of one repository, each marked when it redeploys an old SHA (``redeploy_of``,
    from its environment's stored history too); stored rows whose mark changed are updated."""
    if not rows:
        return
    t = schema.ci_deployments
    provider, repo = rows[0]["provider"], rows[0]["repo"]
    with store.begin() as conn:
        stored = conn.execute(
            sa.select(t.c.deployment_id, t.c.environment, t.c.sha, t.c.status, t.c.created_at, t.c.redeploy_of).where(
                t.c.provider == provider,
                t.c.repo == repo,
                t.c.environment.in_(sorted({r["environment"] for r in rows})),
            )
        )
        changed = mark_redeploys(rows, [dict(r._mapping) for r in stored])
        store.upsert(t, rows, keys=DEPLOYMENT_KEYS, only_changed=True, ignore=["collected_at"], conn=conn)
        for deployment_id, redeploy_of in sorted(changed.items()):
            conn.execute(
                sa.update(t)
                .where(t.c.provider == provider, t.c.repo == repo, t.c.deployment_id == deployment_id)
                .values(redeploy_of=redeploy_of)
            )
    days.update(d for r in rows for d in (_day(r["finished_at"]),) if d)


def collect_gitlab(
    hook: Any,
    store: ResultsStore,
    project: str,
    *,
    start: dt.datetime,
    end: dt.datetime,
    lookback_days: int,
    collected_at: dt.datetime,
    environments: str | None = DEFAULT_ENVIRONMENTS,
) -> Collected:
    result = Collected("gitlab", project)
    # parents before their children (a child pipeline is created after the bridge that starts it)
    listed = sorted(
        hook.pipelines_updated(project, start - dt.timedelta(days=lookback_days), end), key=lambda p: int(p["id"])
    )
    result.runs_listed = len(listed)
    unchanged = _unchanged_pipelines(store, project, listed)
    runs: list[dict[str, Any]] = []
    jobs: list[dict[str, Any]] = []
    days: set[str] = set()
    parents: dict[str, str] = {}
    queue = [(p, None) for p in listed]
    seen: set[str] = set()
    while queue:
        listed_pipeline, parent = queue.pop(0)
        pid = str(listed_pipeline["id"])
        if pid in seen:
            continue
        seen.add(pid)
        parent = parent or parents.get(pid)
        if pid in unchanged:  # stored completed with the same updated_at: nothing new (a job retry updates it)
            result.attempts_skipped += 1
            continue
        try:
            pipeline = hook.pipeline(project, pid)
            pipeline_jobs = list(hook.pipeline_jobs(project, pid, include_retried=True))
            bridges = list(hook.pipeline_bridges(project, pid))
        except Exception as exc:
            if not _is_not_found(exc):
                raise
            result.warnings.append(f"pipeline {pid} is gone (404)")
            continue
        row, job_rows = gitlab_run_rows(
            project, pipeline, pipeline_jobs, bridges, parent_run_id=parent, collected_at=collected_at
        )
        runs.append(row)
        jobs.extend(job_rows)
        days.update(d for d in (_day(row["finished_at"]),) if d)
        for child in child_pipeline_ids(bridges):
            parents[child] = pid
            queue.append(({"id": child}, pid))
    days |= _stored_days(store, "gitlab", project, (r["run_id"] for r in runs))
    _write(store, runs, jobs)
    result.attempts_stored, result.jobs_stored = len(runs), len(jobs)
    if environments:
        pattern = re.compile(environments)
        rows = [
            gitlab_deployment_row(project, d, collected_at=collected_at)
            for d in hook.deployments(
                project, updated_after=start - dt.timedelta(days=lookback_days), updated_before=end
            )
            if pattern.search(str((d.get("environment") or {}).get("name") or ""))
        ]
        _add_commits(rows, lambda base, head: _gitlab_commits(hook, project, base, head))
        _write_deployments(store, rows, days)
        result.deployments_stored = len(rows)
    result.days = sorted(days)
    return result


def _gitlab_commits(hook: Any, project: str, base: str, head: str) -> list[dict[str, Any]]:
    body = hook.compare(project, base, head) or {}
    return [{"sha": c.get("id"), "authored_at": c.get("authored_date")} for c in body.get("commits") or []]


# ---- links to what was collected (the collect tasks' extra link) ---------------------------------


def github_web_url(api_url: str) -> str:
    """GitHub's web base URL for an API base URL: ``https://github.com`` for ``https://api.github.com``,
    ``https://HOST`` for GitHub Enterprise Server (``https://HOST/api/v3``), ``https://SUB.ghe.com`` for
    GitHub Enterprise Cloud with data residency (``https://api.SUB.ghe.com``); any other base URL (a
    proxy, the sandbox) as it is."""
    base = str(api_url).rstrip("/")
    parts = urlsplit(base)
    host = (parts.hostname or "").lower()
    if host == "api.github.com":
        return "https://github.com"
    if base.endswith("/api/v3"):
        return base[: -len("/api/v3")]
    if host.startswith("api.") and host.endswith(".ghe.com") and parts.path in ("", "/"):
        return f"{parts.scheme}://{host[len('api.') :]}" + (f":{parts.port}" if parts.port else "")
    return base


def github_actions_url(api_url: str, repo: str) -> str:
    """The repository's Actions page (every workflow run)."""
    return f"{github_web_url(api_url)}/{quote(str(repo).strip().strip('/'), safe='/')}/actions"


def gitlab_pipelines_url(hook: Any, project: str | int) -> str:
    """The project's pipelines page. A numeric id is looked up for its ``web_url`` (one request); when
    that fails, the instance's ``/projects/{id}`` (which GitLab redirects to the project)."""
    ref = str(project).strip().strip("/")
    if not ref.isdigit():
        return f"{hook.web_url}/{quote(ref, safe='/')}/-/pipelines"
    try:
        web = (hook.project(ref) or {}).get("web_url")
    except Exception as exc:  # the collection itself reports a missing project
        log.warning("GitLab project %s: no web_url (%s)", ref, exc, exc_info=True)
        web = None
    return f"{str(web).rstrip('/')}/-/pipelines" if web else f"{hook.web_url}/projects/{ref}"
