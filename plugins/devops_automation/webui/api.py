"""The read API of the DevOps view: a FastAPI app the plugin mounts in the Airflow API server.

``create_app()`` serves, under the plugin's prefix (``/devops``):

* ``/api/v1/...``: JSON, GET only, every route behind Airflow's login (:mod:`.auth`): failures, CI
  analytics, runs, flaky jobs, red branches, health, metrics, alerts, ci_run_action's audit trail,
  reports (and their archived files),
  and ``/api/v1/events``, the Server-Sent Events stream (:mod:`.events`);
* ``/openapi.json`` and ``/docs`` (a plain HTML page made from it here: no script, no CDN). They
  describe the routes and hold no data, so they need no login (Airflow's own ``/docs`` needs none).

Answers: 401 without a valid Airflow token, 403 without read access to the data set's DAG, 422 for a
bad filter with the field named in ``detail[].loc`` (FastAPI's own validation errors and
:class:`~.queries.InvalidFilter` look the same), 404 for an unknown id, 503 when the results database
cannot be reached. Lists are pages (``limit`` at most :data:`~.queries.MAX_LIMIT`, ``next_cursor``).

The CI figures of a window (``window_summary``: seconds over a million runs), flaky jobs, red branches,
the repository list and the latest health scores are cached as encoded JSON per filter set for
:data:`SUMMARY_TTL_S` seconds, one computation at a time per key (concurrent requests wait for it); up to
:data:`SUMMARY_STALE_S` the previous answer is given at once while it is recomputed in the background
(ci_pipeline_analytics and daily_project_metrics store new rows once a day). Without ``start``/``end`` a CI
window is the 7 UTC days up to the next midnight (today included; one cache key a day).

Routes are plain ``def`` functions: FastAPI runs them in its thread pool, where the blocking database
and auth-manager calls belong.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import html
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from typing import Annotated, Any, Literal

import sqlalchemy.exc
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool

from devops_automation.store import DEFAULT_CONN_ID, ResultsStore
from devops_automation.webui import archive, events, models, queries
from devops_automation.webui.auth import Viewer, forbidden, get_viewer, requires
from devops_automation.webui.deps import StoreProvider, StoreUnavailable

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
SUMMARY_TTL_S = 60.0
#: How old a cached summary may be and still be answered while a fresh one is computed.
SUMMARY_STALE_S = 15 * 60.0
SUMMARY_CACHE_SIZE = 64
DEFAULT_CI_DAYS = 7
#: HTML of an archived report is our own rendering, but served from the API's origin: no scripts, no
#: requests anywhere but here (its charts), no forms, framing only by Airflow's own pages.
REPORT_CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'"
)
#: The CI providers of the store.
Provider = Literal["github", "gitlab"]
#: ``ci_run_actions.outcome`` (:data:`~.queries.RUN_ACTION_OUTCOMES`)
ActionOutcome = Literal[
    "success", "failure", "timed_out", "cancelled", "skipped", "other", "refused", "dry_run", "error"
]


# -- plumbing ----------------------------------------------------------------------------------------
class SummaryCache:
    """``get(key, compute)``: a value computed at most once per ``ttl_s`` per key (concurrent callers of the
    same key wait for the one computation). An answer older than ``ttl_s`` but younger than ``stale_s`` is
    still given at once while a background thread computes the new one, so after the first request only a
    refresh pays the seconds a summary over a million runs takes."""

    def __init__(
        self,
        ttl_s: float = SUMMARY_TTL_S,
        size: int = SUMMARY_CACHE_SIZE,
        clock: Callable[[], float] = time.monotonic,
        stale_s: float = SUMMARY_STALE_S,
    ):
        self.ttl_s, self.size, self.clock, self.stale_s = ttl_s, size, clock, stale_s
        self._values: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()  # key -> (computed at, value)
        self._locks: dict[Hashable, threading.Lock] = {}
        self._refreshing: set[Hashable] = set()
        self._lock = threading.Lock()
        self.computed = 0

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        with self._lock:
            hit = self._values.get(key)
            if hit is not None:
                age = self.clock() - hit[0]
                if age < self.ttl_s or (age < self.stale_s and self._refresh_later(key, compute)):
                    self._values.move_to_end(key)
                    return hit[1]
            key_lock = self._locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                hit = self._values.get(key)
                if hit is not None and self.clock() - hit[0] < self.ttl_s:
                    return hit[1]
            return self._compute(key, compute)

    def _compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        value = compute()
        with self._lock:
            self.computed += 1
            self._values[key] = (self.clock(), value)
            self._values.move_to_end(key)
            while len(self._values) > self.size:
                old, _ = self._values.popitem(last=False)
                self._locks.pop(old, None)
        return value

    def _refresh_later(self, key: Hashable, compute: Callable[[], Any]) -> bool:
        """(Under ``_lock``.) Start one background recomputation of ``key``; True: serve the stale value."""
        if key not in self._refreshing:
            self._refreshing.add(key)
            threading.Thread(
                target=self._refresh, args=(key, compute), name="devops-webui-summary", daemon=True
            ).start()
        return True

    def _refresh(self, key: Hashable, compute: Callable[[], Any]) -> None:
        try:
            with self._locks.setdefault(key, threading.Lock()):
                self._compute(key, compute)
        except Exception:  # the next request after the stale period computes it (and shows the error)
            log.warning("Refreshing a CI summary failed", exc_info=True)
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


def _env_float(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, "") or default)
    except ValueError:
        return default
    return value if value > 0 else default


def get_store(request: Request) -> ResultsStore:
    """The results store of the app (a dependency: 503 when it cannot be opened)."""
    try:
        return request.app.state.store_provider()
    except StoreUnavailable as exc:
        raise HTTPException(503, str(exc)) from None


StoreDep = Annotated[ResultsStore, Depends(get_store)]
FailuresViewer = Annotated[Viewer, Depends(requires("failures"))]
CiViewer = Annotated[Viewer, Depends(requires("ci"))]
MetricsViewer = Annotated[Viewer, Depends(requires("metrics"))]
ActionsViewer = Annotated[Viewer, Depends(requires("actions"))]
AnyViewer = Annotated[Viewer, Depends(get_viewer)]

Limit = Annotated[int, Query(ge=1, description=f"items per page; at most {queries.MAX_LIMIT} are returned")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]
Since = Annotated[dt.datetime | None, Query(description="ISO 8601 date or time (UTC when no offset is given)")]
Until = Annotated[dt.datetime | None, Query(description="ISO 8601 date or time, exclusive")]
Category = Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_]{0,31}$", description="failure category")]
Fingerprint = Annotated[str | None, Query(pattern=r"^[0-9a-f]{8,64}$")]
Repos = Annotated[list[str] | None, Query(description="repeat for several: repo=a/x&repo=b/y")]
Texts = Annotated[list[str] | None, Query(description="repeat for several")]


def _found(found: Any, missing: str) -> Any:
    """``found``, or a 404 saying ``missing`` (e.g. "no run 7") when it is None."""
    if found is None:
        raise HTTPException(404, missing)
    return found


def _page(page: queries.Page) -> dict[str, Any]:
    return {"items": page.items, "next_cursor": page.next_cursor, "limit": page.limit}


def _ci_window(app_state: Any, start: dt.datetime | None, end: dt.datetime | None) -> tuple[Any, Any]:
    if start is None and end is None:
        now: dt.datetime = app_state.now()
        tomorrow = now.astimezone(dt.UTC).date() + dt.timedelta(days=1)
        end = dt.datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=dt.UTC)
        return end - dt.timedelta(days=DEFAULT_CI_DAYS), end
    if start is None:
        raise queries.InvalidFilter("start", "is required with end")
    if end is None:
        raise queries.InvalidFilter("end", "is required with start")
    return start, end


def _key(*parts: Any) -> tuple[Any, ...]:
    return tuple(tuple(p) if isinstance(p, list) else p for p in parts)


@functools.cache
def _adapter(model: Any) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def cached_json(request: Request, key: Hashable, model: Any, compute: Callable[[], Any]) -> Response:
    """``compute()``'s answer as the route's response ``model`` gives it, computed and encoded at most once
    per :data:`SUMMARY_TTL_S` per key (:class:`SummaryCache`): a cached summary by repository is megabytes
    of JSON, which FastAPI would otherwise validate and encode again for every request."""
    adapter = _adapter(model)

    def encode() -> bytes:
        return adapter.dump_json(adapter.validate_python(compute()))

    return Response(request.app.state.summary_cache.get(key, encode), media_type="application/json")


# -- routes ------------------------------------------------------------------------------------------
def api_router() -> APIRouter:
    """Every ``/api/v1`` route except the event stream."""
    router = APIRouter(prefix=API_PREFIX)

    @router.get("/access", response_model=models.Access, tags=["access"])
    def access(viewer: AnyViewer) -> dict[str, Any]:
        """Who the token belongs to and which data sets (DAGs) they may read."""
        dags = sorted({d for ds in queries.DATASET_DAGS.values() for d in ds})
        allowed = {d: viewer.may_read(d) for d in dags}
        return {
            "user": viewer.name,
            "dags": allowed,
            "datasets": {name: any(allowed[d] for d in ds) for name, ds in queries.DATASET_DAGS.items()},
        }

    # -- failures ---------------------------------------------------------------------------------
    @router.get("/failures/jobs", response_model=models.Page[models.FailureJob], tags=["failures"])
    def failure_jobs(
        viewer: FailuresViewer,
        store: StoreDep,
        project: str | None = None,
        category: Category = None,
        since: Since = None,
        until: Until = None,
        fingerprint: Fingerprint = None,
        limit: Limit = queries.DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        """Analysed failed jobs (ci_failure_triage), newest first. ``project``: GitLab path or id;
        ``since``/``until``: analysis time."""
        return _page(
            queries.failure_jobs(
                store,
                project=project,
                category=category,
                since=since,
                until=until,
                fingerprint=fingerprint,
                limit=limit,
                cursor=cursor,
            )
        )

    @router.get("/failures/jobs/{analysis_id}", response_model=models.FailureAnalysis, tags=["failures"])
    def failure_analysis(viewer: FailuresViewer, store: StoreDep, analysis_id: Annotated[int, Path(ge=1)]) -> Any:
        """One analysis: root cause, fix steps, evidence and excerpt lines (redacted), its pipeline and the
        Airflow run that made it."""
        return _found(queries.failure_analysis(store, analysis_id), f"no analysis {analysis_id}")

    @router.get("/failures/pipelines", response_model=models.Page[models.FailurePipeline], tags=["failures"])
    def failure_pipelines(
        viewer: FailuresViewer,
        store: StoreDep,
        project: str | None = None,
        category: Category = None,
        since: Since = None,
        until: Until = None,
        fingerprint: Fingerprint = None,
        state: Literal["new", "analysed", "notified", "gone", "failed"] | None = None,
        dag_run_id: Annotated[str | None, Query(max_length=250)] = None,
        limit: Limit = queries.DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        """Failed pipelines, newest first, with their analysed jobs' count and categories. ``dag_run_id``:
        those one ci_failure_triage run analysed."""
        return _page(
            queries.failure_pipelines(
                store,
                project=project,
                category=category,
                since=since,
                until=until,
                fingerprint=fingerprint,
                state=state,
                dag_run_id=dag_run_id,
                limit=limit,
                cursor=cursor,
            )
        )

    @router.get("/failures/pipelines/{event_id}", response_model=models.FailurePipelineDetail, tags=["failures"])
    def failure_pipeline(viewer: FailuresViewer, store: StoreDep, event_id: Annotated[int, Path(ge=1)]) -> Any:
        return _found(queries.failure_pipeline(store, event_id), f"no failed pipeline {event_id}")

    @router.get("/failures/fingerprints", response_model=models.Page[models.Fingerprint], tags=["failures"])
    def fingerprints(
        viewer: FailuresViewer,
        store: StoreDep,
        project: str | None = None,
        since: Since = None,
        min_occurrences: Annotated[int, Query(ge=1)] = 2,
        limit: Limit = queries.DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        """Recurring failures (the same first error of the same job and project), latest seen first."""
        return _page(
            queries.recurring_fingerprints(
                store, project=project, since=since, min_occurrences=min_occurrences, limit=limit, cursor=cursor
            )
        )

    # -- CI ---------------------------------------------------------------------------------------
    @router.get("/ci/summary", response_model=models.CiSummary, tags=["ci"])
    def ci_summary(
        request: Request,
        viewer: CiViewer,
        store: StoreDep,
        start: Since = None,
        end: Until = None,
        provider: Provider | None = None,
        repo: Repos = None,
        branch: Texts = None,
        workflow: Texts = None,
        actor: Texts = None,
        group_by: Annotated[
            list[Literal["provider", "repo", "workflow", "branch"]] | None, Query(description="repeat for several")
        ] = None,
        with_previous: bool = True,
    ) -> Any:
        """The CI figures of ``[start, end)`` and of the window before it (window_summary, as in the weekly
        report): runs, success rates, durations, queue times, MTTR, red streaks, flaky jobs, failures by
        branch/workflow/actor/job/category, DORA. Default window: the last 7 days."""
        start_t, end_t = _ci_window(request.app.state, start, end)
        key = _key(
            "summary", str(store.url), start_t, end_t, provider, repo, branch, workflow, actor, group_by, with_previous
        )
        return cached_json(
            request,
            key,
            models.CiSummary,
            lambda: queries.ci_summary(
                store,
                start=start_t,
                end=end_t,
                provider=provider,
                repos=repo,
                branches=branch,
                workflows=workflow,
                actors=actor,
                group_by=group_by,
                with_previous=with_previous,
            ),
        )

    @router.get("/ci/flaky-jobs", response_model=models.FlakyJobs, tags=["ci"])
    def flaky_jobs(
        request: Request,
        viewer: CiViewer,
        store: StoreDep,
        start: Since = None,
        end: Until = None,
        provider: Provider | None = None,
        repo: Repos = None,
        branch: Texts = None,
        workflow: Texts = None,
    ) -> Any:
        """Jobs that failed and passed on the same commit in the window, most flaky first (default: 7 days)."""
        start_t, end_t = _ci_window(request.app.state, start, end)
        key = _key("flaky", str(store.url), start_t, end_t, provider, repo, branch, workflow)
        return cached_json(
            request,
            key,
            models.FlakyJobs,
            lambda: queries.ci_flaky_jobs(
                store, start=start_t, end=end_t, provider=provider, repos=repo, branches=branch, workflows=workflow
            ),
        )

    @router.get("/ci/red-branches", response_model=models.RedBranches, tags=["ci"])
    def red_branches(
        request: Request,
        viewer: CiViewer,
        store: StoreDep,
        provider: Provider | None = None,
        repo: Repos = None,
        branch: Texts = None,
        workflow: Texts = None,
        until: Annotated[dt.date | None, Query(description="as of the end of this day (default: the latest)")] = None,
        days: Annotated[int, Query(ge=1, le=366)] = 28,
    ) -> Any:
        """Branches whose workflow's last verdict was a failure (open red streaks), oldest first, as of each
        repository's latest computed day (``ci_daily``, written once a day: cached a minute)."""
        key = _key("red", str(store.url), provider, repo, branch, workflow, until, days)
        return cached_json(
            request,
            key,
            models.RedBranches,
            lambda: queries.ci_red_branches(
                store, provider=provider, repos=repo, branches=branch, workflows=workflow, until=until, days=days
            ),
        )

    @router.get("/ci/repos", response_model=list[models.Repo], tags=["ci"])
    def repos(
        request: Request, viewer: CiViewer, store: StoreDep, since: Annotated[dt.date | None, Query()] = None
    ) -> Any:
        """Repositories with CI figures, with their first and last computed day and runs (cached a minute)."""
        key = _key("repos", str(store.url), since)
        return cached_json(request, key, list[models.Repo], lambda: queries.ci_repos(store, since=since))

    @router.get("/ci/runs", response_model=models.Page[models.CiRun], tags=["ci"])
    def runs(
        viewer: CiViewer,
        store: StoreDep,
        provider: Provider,
        repo: Annotated[str, Query(min_length=1, max_length=512)],
        branch: str | None = None,
        workflow: str | None = None,
        status: Literal["success", "failure", "timed_out", "cancelled", "skipped", "other", "running"] | None = None,
        since: Since = None,
        until: Until = None,
        limit: Limit = queries.DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        """Every attempt of a repository's runs, latest finish first (``status=running``: unfinished ones)."""
        return _page(
            queries.ci_runs(
                store,
                provider=provider,
                repo=repo,
                branch=branch,
                workflow=workflow,
                status=status,
                since=since,
                until=until,
                limit=limit,
                cursor=cursor,
            )
        )

    @router.get("/ci/runs/{run_row_id}", response_model=models.CiRunDetail, tags=["ci"])
    def run(viewer: CiViewer, store: StoreDep, run_row_id: Annotated[int, Path(ge=1)]) -> Any:
        """The run of one attempt (an ``id`` from ``/ci/runs``): all its attempts, each with its jobs."""
        return _found(queries.ci_run(store, run_row_id), f"no run {run_row_id}")

    # -- metrics and health -----------------------------------------------------------------------
    @router.get("/health", response_model=models.HealthLatest, tags=["metrics"])
    def health(
        request: Request,
        viewer: MetricsViewer,
        store: StoreDep,
        day: Annotated[dt.date | None, Query(description="default: the latest scored day")] = None,
        compare_days: Annotated[int, Query(ge=1, le=366)] = 7,
        project: str | None = None,
    ) -> Any:
        """Each project's health score (0–100) and its inputs, beside the score ``compare_days`` earlier
        (daily_project_metrics scores once a day: cached a minute)."""
        key = _key("health", str(store.url), day, compare_days, project)
        return cached_json(
            request,
            key,
            models.HealthLatest,
            lambda: queries.health_latest(store, day=day, compare_days=compare_days, project=project),
        )

    @router.get("/health/history", response_model=list[models.HealthPoint], tags=["metrics"])
    def health_history(
        viewer: MetricsViewer,
        store: StoreDep,
        project: Annotated[str, Query(min_length=1, max_length=512)],
        since: Annotated[dt.date | None, Query()] = None,
        until: Annotated[dt.date | None, Query()] = None,
        limit: Annotated[int, Query(ge=1)] = 366,
    ) -> Any:
        """One project's health scores over time, oldest first."""
        return queries.health_history(store, project=project, since=since, until=until, limit=limit)

    @router.get("/metrics", response_model=models.Page[models.Metric], tags=["metrics"])
    def metrics(
        viewer: MetricsViewer,
        store: StoreDep,
        project: Annotated[str, Query(min_length=1, max_length=512)],
        source: Literal["github", "prometheus", "sonarqube", "ci"] | None = None,
        metric: Texts = None,
        since: Annotated[dt.date | None, Query()] = None,
        until: Annotated[dt.date | None, Query()] = None,
        limit: Limit = queries.DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        """One project's daily metrics, latest day first."""
        return _page(
            queries.project_metrics(
                store,
                project=project,
                source=source,
                metrics=metric,
                since=since,
                until=until,
                limit=limit,
                cursor=cursor,
            )
        )

    # -- alerts -----------------------------------------------------------------------------------
    def readable_sources(viewer: Viewer, store: ResultsStore, source: str | None) -> set[str]:
        if source is not None:
            if not viewer.may_read(queries.alert_dag(source)):
                raise forbidden([source])
            return {source}
        candidates = {*queries.DATASET_DAGS["alerts"], *queries.alert_sources(store)}
        return viewer.require_any(sorted(candidates))

    @router.get("/alerts", response_model=models.Page[models.Alert], tags=["alerts"])
    def alerts(
        viewer: AnyViewer,
        store: StoreDep,
        state: Literal["firing", "resolved"] | None = None,
        source: Annotated[str | None, Query(max_length=64, description="the DAG that raised them")] = None,
        severity: Literal["critical", "warning"] | None = None,
        rule_id: Annotated[str | None, Query(max_length=128)] = None,
        since: Since = None,
        until: Until = None,
        limit: Limit = queries.DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        """Alert episodes of the DAGs the user may read, newest first; ``since``/``until``: active in that
        range."""
        sources = readable_sources(viewer, store, source)
        return _page(
            queries.alerts(
                store,
                sources=sources,
                state=state,
                severity=severity,
                rule_id=rule_id,
                since=since,
                until=until,
                limit=limit,
                cursor=cursor,
            )
        )

    @router.get("/alerts/{alert_id}", response_model=models.AlertDetail, tags=["alerts"])
    def alert(viewer: AnyViewer, store: StoreDep, alert_id: Annotated[int, Path(ge=1)]) -> Any:
        """One alert episode and the messages sent for its start and resolve."""
        found = queries.alert(store, alert_id)
        if found is None:
            viewer.require_any(queries.DATASET_DAGS["alerts"])  # no existence hints to the others
            raise HTTPException(404, f"no alert {alert_id}")
        if not viewer.may_read(queries.alert_dag(found["source"])):
            raise forbidden([found["source"]])
        return found

    # -- ci_run_action's audit trail ----------------------------------------------------------------
    @router.get("/actions", response_model=models.Page[models.RunAction], tags=["actions"])
    def run_actions(
        viewer: ActionsViewer,
        store: StoreDep,
        provider: Provider | None = None,
        repo: Annotated[str | None, Query(max_length=512, description="owner/name or the GitLab project")] = None,
        action: Literal["rerun", "rerun_failed", "cancel", "redeploy"] | None = None,
        outcome: ActionOutcome | None = None,
        since: Since = None,
        limit: Limit = queries.DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        """Re-runs, cancels and redeploys asked for through ci_run_action, newest request first: who
        triggered them, what was asked, the state and the outcome. ``since``: requested at or after it."""
        return _page(
            queries.run_actions(
                store,
                provider=provider,
                repo=repo,
                action=action,
                outcome=outcome,
                since=since,
                limit=limit,
                cursor=cursor,
            )
        )

    @router.get("/actions/{action_id}", response_model=models.RunActionDetail, tags=["actions"])
    def run_action(viewer: ActionsViewer, store: StoreDep, action_id: Annotated[int, Path(ge=1)]) -> Any:
        """One request: also the calls planned, every write sent with GitHub's/GitLab's answer (redacted) and
        the attempt or jobs it started."""
        return _found(queries.run_action(store, action_id), f"no action {action_id}")

    # -- reports ----------------------------------------------------------------------------------
    def readable_report(viewer: Viewer, store: ResultsStore, report_id: int, content: bool = False) -> dict[str, Any]:
        found = queries.report(store, report_id, content=content)
        if found is None:
            viewer.require_any(queries.DATASET_DAGS["reports"])
            raise HTTPException(404, f"no report {report_id}")
        dag = queries.report_dag(found["kind"])
        if not viewer.may_read(dag):
            raise forbidden([dag])
        return found

    @router.get("/reports", response_model=models.Page[models.Report], tags=["reports"])
    def reports(
        viewer: AnyViewer,
        store: StoreDep,
        kind: Annotated[str | None, Query(max_length=32, description="weekly, monthly, weekly:<team>, ...")] = None,
        limit: Limit = queries.DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        """Archived reports of weekly_report / monthly_report (those the user may read), latest first."""
        if kind is not None:
            dags = viewer.require_any([queries.report_dag(kind)])
        else:
            dags = viewer.require_any(queries.DATASET_DAGS["reports"])
        return _page(queries.reports(store, dags=dags, kind=kind, limit=limit, cursor=cursor))

    @router.get("/reports/{report_id}", response_model=models.ReportDetail, tags=["reports"])
    def report(viewer: AnyViewer, store: StoreDep, report_id: Annotated[int, Path(ge=1)]) -> Any:
        """One report with its summary (headline figures, movers)."""
        found = readable_report(viewer, store, report_id)
        summary = found.get("summary") or {}
        return {**found, "title": summary.get("title"), "has_data": summary.get("has_data")}

    def archived(viewer: Viewer, store: ResultsStore, report_id: int, name: str) -> Response:
        found = readable_report(viewer, store, report_id, content=name in ("report.html", "report.md"))
        data = None
        if found.get("archive_path"):
            try:
                data = archive.read_file(found["archive_path"], name)
            except archive.ArchiveTooLarge as exc:
                raise HTTPException(413, str(exc)) from None
            except OSError as exc:
                raise HTTPException(503, f"the report archive cannot be read: {type(exc).__name__}") from None
        source = "archive"
        if data is None and name == "report.html" and found.get("html"):
            data, source = archive.html_from_row(found["html"]).encode(), "database"
        elif data is None and name == "report.md" and found.get("markdown"):
            data, source = found["markdown"].encode(), "database"
        if data is None:
            raise HTTPException(404, f"report {report_id} has no archived file {name!r}")
        headers = {
            "X-Content-Type-Options": "nosniff",
            "X-DevOps-Source": source,
            "Cache-Control": "private, max-age=60",
        }
        if name.endswith((".html", ".svg")):
            headers["Content-Security-Policy"] = REPORT_CSP
        return Response(data, media_type=archive.media_type(name), headers=headers)

    @router.get("/reports/{report_id}/html", response_class=HTMLResponse, tags=["reports"])
    def report_html(viewer: AnyViewer, store: StoreDep, report_id: Annotated[int, Path(ge=1)]) -> Response:
        """The archived HTML report (its charts load from ``./<chart>.png`` beside it); the copy stored in the
        row when the archive cannot be found."""
        return archived(viewer, store, report_id, "report.html")

    @router.get(
        "/reports/{report_id}/markdown",
        response_class=Response,
        responses={200: {"content": {"text/markdown": {}}}},
        tags=["reports"],
    )
    def report_markdown(viewer: AnyViewer, store: StoreDep, report_id: Annotated[int, Path(ge=1)]) -> Response:
        """The archived Markdown report."""
        return archived(viewer, store, report_id, "report.md")

    @router.get("/reports/{report_id}/{name}", response_class=Response, tags=["reports"])
    def report_file(
        viewer: AnyViewer,
        store: StoreDep,
        report_id: Annotated[int, Path(ge=1)],
        name: Annotated[str, Path(max_length=255)],
    ) -> Response:
        """One file of the report's archive folder: ``report.html``, ``report.md``, ``report.txt``,
        ``figures.json`` or a chart PNG."""
        queries.archive_name(name)
        return archived(viewer, store, report_id, name)

    return router


def events_router() -> APIRouter:
    router = APIRouter(prefix=API_PREFIX)

    @router.get(
        "/events",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
        tags=["events"],
    )
    async def event_stream(
        request: Request,
        viewer: AnyViewer,
        last_event_id: Annotated[
            str | None, Query(description="resume after this id (what EventSource sends as Last-Event-ID)")
        ] = None,
        last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    ) -> StreamingResponse:
        """New failures analysed (``event: failure``) and alerts fired (``event: alert``) of the DAGs the
        user may read, as Server-Sent Events, seconds after they are stored."""
        raw = last_event_id_header if last_event_id_header is not None else last_event_id
        field = "Last-Event-ID" if last_event_id_header is not None else "last_event_id"
        try:
            resume = events.parse_id(raw)
        except ValueError as exc:
            raise queries.InvalidFilter(field, str(exc)) from None
        hub: events.EventHub = request.app.state.event_hub

        def allowed() -> set[str]:
            candidates = {queries.TRIAGE_DAG, *queries.DATASET_DAGS["alerts"]}
            try:
                candidates |= set(queries.alert_sources(hub.store()))
            except StoreUnavailable as exc:
                raise HTTPException(503, str(exc)) from None
            return viewer.require_any(sorted(candidates))

        dags = await run_in_threadpool(allowed)
        settings = request.app.state.event_settings
        body = events.stream(
            hub,
            viewer,
            dags,
            resume=resume,
            heartbeat_s=settings["heartbeat_s"],
            max_age_s=settings["max_age_s"],
        )
        return StreamingResponse(
            body,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return router


# -- documentation -----------------------------------------------------------------------------------
DOCS_CSS = (
    "body{font:14px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "code{background:#f3f3f3;padding:0 .2em}table{border-collapse:collapse;margin:.3rem 0 1rem}"
    "td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}h3{margin:1.4rem 0 .2rem}"
)
DOCS_AUTH = (
    "Authenticate with <code>Authorization: Bearer &lt;token&gt;</code> (token: <code>POST /auth/token</code>) "
    "or the Airflow UI's login cookie."
)


def docs_html(spec: dict[str, Any], root: str) -> str:
    """A readable page of the OpenAPI document (routes, parameters, descriptions): no script, no CDN."""
    e = html.escape
    spec_url = e(f"{root}/openapi.json")
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(spec['info']['title'])}</title><style>{DOCS_CSS}</style></head><body>",
        f"<h1>{e(spec['info']['title'])} <small>v{e(spec['info']['version'])}</small></h1>",
        f"<p>{e(spec['info'].get('description', ''))}</p>",
        f"<p>Machine-readable: <a href='{spec_url}'><code>{spec_url}</code></a>. {DOCS_AUTH}</p>",
    ]
    for path, operations in spec.get("paths", {}).items():
        for method, op in operations.items():
            parts.append(f"<h3><code>{e(method.upper())} {e(root + path)}</code></h3>")
            if op.get("summary"):
                parts.append(f"<p><b>{e(op['summary'])}</b></p>")
            if op.get("description"):
                parts.append(f"<p>{e(op['description'])}</p>")
            params = op.get("parameters") or []
            if params:
                parts.append("<table><tr><th>parameter</th><th>in</th><th>required</th><th>about</th></tr>")
                for p in params:
                    schema = p.get("schema") or {}
                    kinds = schema.get("enum") or [s.get("type") for s in schema.get("anyOf", []) if s.get("type")]
                    about = p.get("description") or schema.get("description") or ""
                    if kinds or schema.get("type"):
                        about = f"{about} ({', '.join(map(str, kinds)) or schema.get('type')})".strip()
                    parts.append(
                        f"<tr><td><code>{e(p['name'])}</code></td><td>{e(p['in'])}</td>"
                        f"<td>{'yes' if p.get('required') else ''}</td><td>{e(about)}</td></tr>"
                    )
                parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)


# -- the app -----------------------------------------------------------------------------------------
def create_app(
    *,
    store: ResultsStore | Callable[[], ResultsStore] | None = None,
    conn_id: str = DEFAULT_CONN_ID,
    routers: Sequence[APIRouter] = (),
    now: Callable[[], dt.datetime] | None = None,
    poll_s: float | None = None,
    heartbeat_s: float | None = None,
    max_stream_s: float | None = None,
) -> FastAPI:
    """The view's app. ``store``: a fixed store or a provider (default: the ``conn_id`` connection,
    :class:`~.deps.StoreProvider`); ``routers``: more routes on the same app (the pages); ``now``: the
    clock of the default CI window; the event settings default to ``DEVOPS_EVENTS_POLL_S`` (0.5),
    ``DEVOPS_EVENTS_HEARTBEAT_S`` (15) and ``DEVOPS_EVENTS_MAX_STREAM_S`` (900)."""
    app = FastAPI(
        title="devops-automation read API",
        version="1",
        description="Failures, CI analytics, health, alerts and reports from the devops-automation results "
        "store; read-only, behind Airflow's login (read access to each data set's DAG).",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=_lifespan,
    )
    if isinstance(store, ResultsStore):
        provider: Callable[[], ResultsStore] = StoreProvider(conn_id, store=store)
    else:
        provider = store or StoreProvider(conn_id)
    app.state.store_provider = provider
    app.state.summary_cache = SummaryCache()
    app.state.now = now or (lambda: dt.datetime.now(dt.UTC))
    app.state.event_hub = events.EventHub(provider, poll_s=poll_s or _env_float("DEVOPS_EVENTS_POLL_S", 0.5))
    app.state.event_settings = {
        "heartbeat_s": heartbeat_s or _env_float("DEVOPS_EVENTS_HEARTBEAT_S", 15.0),
        "max_age_s": max_stream_s or _env_float("DEVOPS_EVENTS_MAX_STREAM_S", 900.0),
    }

    @app.exception_handler(queries.InvalidFilter)
    async def invalid_filter(request: Request, exc: queries.InvalidFilter) -> JSONResponse:
        where = "path" if exc.field in request.path_params else "header" if "-" in exc.field else "query"
        return JSONResponse(
            {"detail": [{"loc": [where, exc.field], "msg": exc.message, "type": "value_error"}]}, status_code=422
        )

    @app.exception_handler(sqlalchemy.exc.OperationalError)
    async def database_down(request: Request, exc: sqlalchemy.exc.OperationalError) -> JSONResponse:
        return JSONResponse({"detail": "the results database cannot be reached"}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(err.get("loc", ())), "msg": str(err.get("msg", "")), "type": str(err.get("type", ""))}
            for err in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    app.include_router(api_router())
    app.include_router(events_router())
    for router in routers:
        app.include_router(router)

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return HTMLResponse(docs_html(app.openapi(), root))

    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Airflow's API server enters the lifespan of each mounted FastAPI app: the poller ends with it."""
    yield
    app.state.event_hub.stop()
