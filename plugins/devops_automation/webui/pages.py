"""The DevOps view's pages: server-rendered HTML beside the read API, in the same app and behind the same
login (the Airflow UI's ``_token`` cookie, which the browser sends with every request to this origin).

``create_view_app()`` is the plugin's app: :func:`devops_automation.webui.api.create_app` with these
routes added (all GET, none in the OpenAPI document):

==============================================  ==========================================================
``/ui/``                                        overview: red branches, today's failures (and new ones as
                                                they are stored, through the event stream), health movers,
                                                alerts firing (each part only for a user who may read it)
``/ui/failures``, ``/ui/failures/{id}``         analysed failures (filters, pages) and one analysis: root
                                                cause, fix steps, evidence lines, the excerpt, links to
                                                GitLab/GitHub and to the Airflow run and task instance
``/ui/ci``                                      CI analytics of a window: success rate, duration, queue
                                                time and MTTR per repository or workflow (charts and
                                                table), per day, flaky jobs, red branches, recent runs
``/ui/health``                                  health scores with their change, over time, and one
                                                project's history with its inputs
``/ui/reports``, ``/ui/reports/{id}``           the report archive and one archived report (its HTML)
``/ui/dag-runs/{dag_id}/{run_id}``              one ``ci_failure_triage`` run's analyses (Airflow's
                                                ``dag_run`` external view)
``/ui/charts/{name}.svg``                       the pages' charts (:mod:`.page_charts`)
``/static/{name}``                              stylesheet, script, icon (no login: no data in them)
==============================================  ==========================================================

**Access.** A page needs what the API route of its data needs (:func:`.auth.requires`): not logged in ->
a redirect to Airflow's login page (``next`` = the page), no read access to the data set's DAG -> a 403
page; the overview shows the parts the user may read (403 when none). Data that does not exist yet
(a fresh deployment, a DAG that has not run) is an empty state saying which DAG fills it.

**Caching.** What changes once a day (the CI summary of a window, red branches, repositories, the
latest health scores) is read at most once a minute per filter set, in the API's cache; failures and
alerts are read for every page.

**Errors** on page paths are pages (401 redirect, 403, 404, 422 naming the field, 503); on the API's
paths they stay JSON as before. Routes are plain ``def`` (FastAPI's thread pool: blocking database and
auth-manager calls). Charts are drawn once a minute at most per set of filters (drawing costs 0.1–0.4 s).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any
from urllib.parse import urlencode

import sqlalchemy.exc
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from devops_automation.store import ResultsStore
from devops_automation.webui import airflow_links, page_charts, queries
from devops_automation.webui.api import SummaryCache, create_app, get_store
from devops_automation.webui.auth import Viewer, forbidden, get_viewer, requires
from devops_automation.webui.templating import PAGE_HEADERS, STATIC_FILES, Templates, default_templates

log = logging.getLogger(__name__)

UI = "/ui"
CHART_TTL_S = 60.0
CHART_CACHE_SIZE = 256
#: The CI page's window lengths (days) and default.
CI_DAYS = (1, 7, 14, 28, 56, 91)
DEFAULT_CI_DAYS = 7
HEALTH_DAYS = (14, 28, 56, 91, 182)
DEFAULT_HEALTH_DAYS = 28
FAILURE_CHART_DAYS = 14
PAGE_SIZE = 50
#: ``[a-z][a-z0-9_]`` words (categories) and hex fingerprints, as the API takes them.
_CATEGORY = re.compile(r"[a-z][a-z0-9_]{0,31}")
_FINGERPRINT = re.compile(r"[0-9a-f]{8,64}")
_EXCERPT_LINE = re.compile(r"(\d+): ?(.*)")
#: nav entries: (key, label, route, data set it needs; None: the overview)
NAV: tuple[tuple[str, str, str, str | None], ...] = (
    ("overview", "Overview", "/", None),
    ("failures", "Failures", "/failures", "failures"),
    ("ci", "CI analytics", "/ci", "ci"),
    ("health", "Health", "/health", "metrics"),
    ("reports", "Reports", "/reports", "reports"),
)

StoreDep = Annotated[ResultsStore, Depends(get_store)]
AnyViewer = Annotated[Viewer, Depends(get_viewer)]
FailuresViewer = Annotated[Viewer, Depends(requires("failures"))]
CiViewer = Annotated[Viewer, Depends(requires("ci"))]
MetricsViewer = Annotated[Viewer, Depends(requires("metrics"))]


# -- plumbing ----------------------------------------------------------------------------------------
def root_of(request: Request) -> str:
    """The app's own prefix as the browser sees it (``/devops`` in Airflow; empty in a test client)."""
    return str(request.scope.get("root_path") or "").rstrip("/")


def route_path(request: Request) -> str:
    path = str(request.scope.get("path") or "")
    root = str(request.scope.get("root_path") or "")
    return path[len(root) :] if root and path.startswith(root) else path


def is_page(request: Request) -> bool:
    path = route_path(request)
    return path == UI or path.startswith(UI + "/")


def access_of(viewer: Viewer) -> dict[str, bool]:
    """Data set -> whether the viewer may read it (alerts and reports: one of their DAGs)."""
    return {name: bool(viewer.readable(dags)) for name, dags in queries.DATASET_DAGS.items()}


def _templates(request: Request) -> Templates:
    return request.app.state.templates


def base_context(request: Request, active: str, viewer: Viewer | None = None) -> dict[str, Any]:
    root = root_of(request)
    templates = _templates(request)
    access = access_of(viewer) if viewer is not None else {}
    return {
        "root": root,
        "ui": root + UI,
        "api": root + "/api/v1",
        "active": active,
        "user": viewer.name if viewer is not None else None,
        "access": access,
        "nav": [
            {
                "key": key,
                "label": label,
                "url": f"{root}{UI}{path}",
                "allowed": dataset is None or access.get(dataset, viewer is None),
            }
            for key, label, path, dataset in NAV
        ],
        "css": templates.asset_url(root, "devops.css"),
        "js": templates.asset_url(root, "devops.js"),
        "icon": templates.asset_url(root, "icon.svg"),
        "airflow": airflow_links.airflow_root(),
        "events": None,
    }


def render(request: Request, template: str, context: Mapping[str, Any], status: int = 200) -> HTMLResponse:
    html = _templates(request).render(template, context)
    return HTMLResponse(html, status_code=status, headers=dict(PAGE_HEADERS))


def page(request: Request, template: str, active: str, viewer: Viewer, **values: Any) -> HTMLResponse:
    return render(request, template, {**base_context(request, active, viewer), **values})


def url_with(base: str, **params: Any) -> str:
    """``base`` with the non-empty ``params`` as its query (lists repeat the name)."""
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            if item not in (None, "", False):
                pairs.append((name, str(item)))
    return f"{base}?{urlencode(pairs)}" if pairs else base


# -- query values (HTML forms send empty fields: "" is "not given") ---------------------------------------
def opt_text(
    value: str | None, field: str, *, max_len: int = 512, pattern: re.Pattern[str] | None = None
) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if len(value) > max_len:
        raise queries.InvalidFilter(field, f"at most {max_len} characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise queries.InvalidFilter(field, f"must match {pattern.pattern}, got {value!r}")
    return value


def opt_date(value: str | None, field: str) -> dt.date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        raise queries.InvalidFilter(field, f"expected a date YYYY-MM-DD, got {value!r}") from None


def opt_choice(value: str | None, field: str, choices: Sequence[Any], default: Any) -> Any:
    value = (value or "").strip()
    if not value:
        return default
    for choice in choices:
        if str(choice) == value:
            return choice
    raise queries.InvalidFilter(field, f"must be one of {', '.join(map(str, choices))}, got {value!r}")


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def today(request: Request) -> dt.date:
    now: dt.datetime = request.app.state.now()
    return now.astimezone(dt.UTC).date()


def cached(request: Request, cache_name: str, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
    cache: SummaryCache = getattr(request.app.state, cache_name)
    return cache.get(key, compute)


def chart_response(request: Request, key: tuple[Any, ...], draw: Callable[[], bytes]) -> Response:
    data = cached(request, "chart_cache", key, draw)
    headers = {**PAGE_HEADERS, "Cache-Control": "private, max-age=60"}
    headers["ETag"] = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
    return Response(data, media_type="image/svg+xml", headers=headers)


# -- page data ---------------------------------------------------------------------------------------
def excerpt_rows(analysis: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The excerpt as rows ``{line, text, evidence, gap}``: its ``N: text`` lines with their log line
    number (evidence lines marked), ``… (n lines)`` gaps as they are."""
    evidence = {e.get("line") for e in analysis.get("evidence_lines") or [] if isinstance(e, Mapping)}
    rows = []
    for text in analysis.get("excerpt_text_lines") or []:
        m = _EXCERPT_LINE.fullmatch(text)
        if m:
            number = int(m.group(1))
            rows.append({"line": number, "text": m.group(2), "evidence": number in evidence, "gap": False})
        else:
            rows.append({"line": None, "text": text, "evidence": False, "gap": text.startswith("…")})
    return rows


def provider_name(provider: str | None) -> str:
    return {"gitlab": "GitLab", "github": "GitHub"}.get(provider or "", provider or "CI")


def movers(projects: Sequence[Mapping[str, Any]], count: int = 5) -> dict[str, list[Mapping[str, Any]]]:
    changed = [p for p in projects if p.get("change") not in (None, 0)]
    up = sorted((p for p in changed if p["change"] > 0), key=lambda p: (-p["change"], p["project"]))[:count]
    down = sorted((p for p in changed if p["change"] < 0), key=lambda p: (p["change"], p["project"]))[:count]
    return {"up": up, "down": down}


def readable_alert_sources(viewer: Viewer, store: ResultsStore) -> set[str]:
    return viewer.readable(sorted({*queries.DATASET_DAGS["alerts"], *queries.alert_sources(store)}))


class CiFilters:
    """The CI page's filters, read from the query (shared by the page and its charts)."""

    def __init__(self, request: Request) -> None:
        q = request.query_params
        self.days: int = opt_choice(q.get("days"), "days", CI_DAYS, DEFAULT_CI_DAYS)
        self.end_day: dt.date = opt_date(q.get("end"), "end") or today(request)
        self.provider: str | None = opt_choice(q.get("provider"), "provider", queries.PROVIDERS, None)
        self.repo: str | None = opt_text(q.get("repo"), "repo")
        self.by: str = opt_choice(q.get("by"), "by", ("repo", "workflow"), "repo")
        self.start = midnight(self.end_day) - dt.timedelta(days=self.days - 1)
        self.end = midnight(self.end_day) + dt.timedelta(days=1)

    @property
    def first_day(self) -> dt.date:
        return self.start.date()

    @property
    def group_by(self) -> list[str]:
        return ["repo", "workflow"] if (self.repo or self.by == "workflow") else ["repo"]

    def query(self, **changes: Any) -> dict[str, Any]:
        values = {
            "days": self.days,
            "end": self.end_day.isoformat(),
            "provider": self.provider,
            "repo": self.repo,
            "by": None if self.by == "repo" else self.by,
        }
        values.update(changes)
        return values

    def key(self) -> tuple[Any, ...]:
        return (self.start, self.end, self.provider, self.repo, tuple(self.group_by))


def ci_summary(request: Request, store: ResultsStore, f: CiFilters) -> dict[str, Any]:
    return cached(
        request,
        "summary_cache",
        ("page-summary", str(store.url), *f.key()),
        lambda: queries.ci_summary(
            store,
            start=f.start,
            end=f.end,
            provider=f.provider,
            repos=[f.repo] if f.repo else None,
            group_by=f.group_by,
        ),
    )


def ci_daily(request: Request, store: ResultsStore, f: CiFilters) -> list[dict[str, Any]]:
    return cached(
        request,
        "summary_cache",
        ("page-daily", str(store.url), *f.key()),
        lambda: queries.ci_daily_series(
            store,
            since=f.first_day,
            until=f.end_day,
            provider=f.provider,
            repos=[f.repo] if f.repo else None,
            level="workflow" if f.repo else "repo",
        ),
    )


def red_branches(
    request: Request, store: ResultsStore, provider: str | None = None, repo: str | None = None
) -> dict[str, Any]:
    """Red branches from ``ci_daily`` (written once a day): read at most once a minute."""
    return cached(
        request,
        "summary_cache",
        ("page-red", str(store.url), provider, repo),
        lambda: queries.ci_red_branches(store, provider=provider, repos=[repo] if repo else None),
    )


def health_latest(request: Request, store: ResultsStore, compare_days: int, *, inputs: bool = True) -> dict[str, Any]:
    """The latest health scores (written once a day): read at most once a minute."""
    return cached(
        request,
        "summary_cache",
        ("page-health", str(store.url), compare_days, inputs),
        lambda: queries.health_latest(store, compare_days=compare_days, components=inputs),
    )


class HealthFilters:
    def __init__(self, request: Request) -> None:
        q = request.query_params
        self.days: int = opt_choice(q.get("days"), "days", HEALTH_DAYS, DEFAULT_HEALTH_DAYS)
        self.compare_days: int = opt_choice(q.get("compare_days"), "compare_days", (1, 7, 14, 28), 7)
        self.project: str | None = opt_text(q.get("project"), "project")


def chart_projects(latest: Mapping[str, Any], limit: int = 8) -> list[str]:
    """The projects the health chart draws: the largest moves first, then the lowest scores."""
    projects = list(latest.get("projects") or [])
    projects.sort(key=lambda p: (-abs(p.get("change") or 0), p.get("score") or 0, p["project"]))
    return [p["project"] for p in projects[:limit]]


# -- the routes --------------------------------------------------------------------------------------
def pages_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def home(request: Request) -> RedirectResponse:
        return RedirectResponse(f"{root_of(request)}{UI}/", status_code=307)

    @router.get("/static/{name}")
    def static(request: Request, name: Annotated[str, Path(max_length=64)]) -> Response:
        found = _templates(request).static(name)
        if found is None:
            raise HTTPException(404, f"no static file {name!r}")
        data, digest = found
        headers = {"Cache-Control": "public, max-age=86400", "ETag": f'"{digest}"', "X-Content-Type-Options": "nosniff"}
        if request.headers.get("if-none-match") == f'"{digest}"':
            return Response(status_code=304, headers=headers)
        return Response(data, media_type=STATIC_FILES[name], headers=headers)

    # -- overview ---------------------------------------------------------------------------------------
    @router.get(UI + "/")
    def overview(request: Request, viewer: AnyViewer, store: StoreDep) -> HTMLResponse:
        access = access_of(viewer)
        if not any(access.values()):
            raise forbidden(sorted({d for dags in queries.DATASET_DAGS.values() for d in dags}))
        day = today(request)
        values: dict[str, Any] = {"today": day}
        if access["failures"]:
            todays = queries.failure_jobs(store, since=midnight(day), limit=20)
            values["failures_today"] = todays.items
            values["failures_more"] = todays.next_cursor is not None
            values["latest_failures"] = [] if todays.items else queries.failure_jobs(store, limit=5).items
        if access["ci"]:
            values["red"] = red_branches(request, store)
        if access["metrics"]:
            latest = health_latest(request, store, 7, inputs=False)
            values["health"] = latest
            values["movers"] = movers(latest["projects"])
        if access["alerts"]:
            sources = readable_alert_sources(viewer, store)
            values["alerts_firing"] = queries.alerts(store, sources=sources, state="firing", limit=20).items
        context = {**base_context(request, "overview", viewer), **values}
        if access["failures"] or access["alerts"]:
            context["events"] = f"{context['api']}/events"
        return render(request, "overview.html", context)

    # -- failures -------------------------------------------------------------------------------------
    @router.get(UI + "/failures")
    def failures(request: Request, viewer: FailuresViewer, store: StoreDep) -> HTMLResponse:
        q = request.query_params
        filters = {
            "project": opt_text(q.get("project"), "project"),
            "category": opt_text(q.get("category"), "category", max_len=32, pattern=_CATEGORY),
            "since": opt_date(q.get("since"), "since"),
            "fingerprint": opt_text(q.get("fingerprint"), "fingerprint", max_len=64, pattern=_FINGERPRINT),
        }
        listed = queries.failure_jobs(store, **filters, limit=PAGE_SIZE, cursor=q.get("cursor") or None)
        recurring = queries.recurring_fingerprints(store, project=filters["project"], limit=10).items
        ui = root_of(request) + UI
        shown = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in filters.items()}
        return page(
            request,
            "failures.html",
            "failures",
            viewer,
            filters=shown,
            categories=queries.FAILURE_CATEGORIES,
            items=listed.items,
            next_url=url_with(f"{ui}/failures", **shown, cursor=listed.next_cursor) if listed.next_cursor else None,
            first_url=url_with(f"{ui}/failures", **shown) if q.get("cursor") else None,
            recurring=recurring,
            chart=url_with(f"{ui}/charts/failures.svg", days=FAILURE_CHART_DAYS, end=today(request).isoformat()),
            chart_days=FAILURE_CHART_DAYS,
            filtered=any(shown.values()),
        )

    @router.get(UI + "/failures/{analysis_id}")
    def failure(
        request: Request, viewer: FailuresViewer, store: StoreDep, analysis_id: Annotated[int, Path(ge=1)]
    ) -> HTMLResponse:
        found = queries.failure_analysis(store, analysis_id)
        if found is None:
            raise HTTPException(404, f"There is no analysis {analysis_id}.")
        siblings = queries.pipeline_jobs(store, [found["event_id"]]).get(found["event_id"], [])
        run_id = found.get("dag_run_id")
        links = {
            "job": found.get("job_url"),
            "pipeline": found.get("pipeline_url"),
            "run": airflow_links.dag_run_url(airflow_links.TRIAGE_DAG, run_id) if run_id else None,
            "task": (
                airflow_links.triage_task_url(
                    run_id, found.get("job_name"), found["job_id"], request.app.state.map_index_lookup
                )
                if run_id
                else None
            ),
        }
        return page(
            request,
            "failure.html",
            "failures",
            viewer,
            f=found,
            excerpt=excerpt_rows(found),
            siblings=siblings,
            links=links,
            provider=provider_name(found.get("provider")),
        )

    @router.get(UI + "/dag-runs/{dag_id}/{run_id:path}")
    def dag_run(
        request: Request,
        viewer: FailuresViewer,
        store: StoreDep,
        dag_id: Annotated[str, Path(max_length=250)],
        run_id: Annotated[str, Path(max_length=250)],
    ) -> HTMLResponse:
        pipelines: list[dict[str, Any]] = []
        jobs: dict[int, list[dict[str, Any]]] = {}
        if dag_id == airflow_links.TRIAGE_DAG:
            pipelines = queries.failure_pipelines(store, dag_run_id=run_id, limit=queries.MAX_LIMIT).items
            jobs = queries.pipeline_jobs(store, [p["id"] for p in pipelines])
        return page(
            request,
            "dag_run.html",
            "failures",
            viewer,
            dag_id=dag_id,
            run_id=run_id,
            triage=dag_id == airflow_links.TRIAGE_DAG,
            pipelines=pipelines,
            jobs=jobs,
            run_url=airflow_links.dag_run_url(dag_id, run_id),
        )

    # -- CI analytics ---------------------------------------------------------------------------------
    @router.get(UI + "/ci")
    def ci(request: Request, viewer: CiViewer, store: StoreDep) -> HTMLResponse:
        f = CiFilters(request)
        summary = ci_summary(request, store, f)
        current = summary["total"]["current"]
        previous = summary["total"].get("previous") or {}
        repos = cached(request, "summary_cache", ("page-repos", str(store.url)), lambda: queries.ci_repos(store))
        red = red_branches(request, store, f.provider, f.repo)
        runs: list[dict[str, Any]] = []
        if f.repo:
            provider = f.provider or next((r["provider"] for r in repos if r["repo"] == f.repo), None)
            if provider:
                runs = queries.ci_runs(store, provider=provider, repo=f.repo, limit=15).items
        ui = root_of(request) + UI
        latest_day = max((r["last_day"] for r in repos), default=None)
        charts = {
            f"ci-{metric}": url_with(f"{ui}/charts/ci-{metric}.svg", **f.query()) for metric in page_charts.CI_METRICS
        }
        trends = {
            f"ci-trend-{metric}": url_with(f"{ui}/charts/ci-trend-{metric}.svg", **f.query())
            for metric in ("success_rate", "duration_p90_s")
        }
        return page(
            request,
            "ci.html",
            "ci",
            viewer,
            f=f,
            days_choices=CI_DAYS,
            providers=queries.PROVIDERS,
            summary=summary,
            current=current,
            previous=previous,
            groups=page_charts.top_groups(summary, limit=50),
            group_label=page_charts.group_label,
            repos=repos,
            red=red,
            runs=runs,
            charts=charts,
            trends=trends,
            has_runs=bool(current.get("runs")),
            latest_url=(
                url_with(f"{ui}/ci", **f.query(end=latest_day.isoformat()))
                if latest_day is not None and not (f.first_day <= latest_day <= f.end_day)
                else None
            ),
            latest_day=latest_day,
            url_for=lambda **changes: url_with(f"{ui}/ci", **f.query(**changes)),
        )

    # -- health ---------------------------------------------------------------------------------------
    @router.get(UI + "/health")
    def health(request: Request, viewer: MetricsViewer, store: StoreDep) -> HTMLResponse:
        h = HealthFilters(request)
        latest = health_latest(request, store, h.compare_days)
        ui = root_of(request) + UI
        project: dict[str, Any] | None = None
        if h.project:
            history = queries.health_history(store, project=h.project, limit=h.days)
            if not history:
                raise HTTPException(404, f"There are no health scores of project {h.project!r}.")
            rows = [{**row, "dims": page_charts.dimensions(row.get("components"))} for row in reversed(history)]
            project = {
                "name": h.project,
                "latest": history[-1],
                "rows": rows,
                "dim_names": list(dict.fromkeys(name for row in rows for name in row["dims"])),
                "chart": url_with(f"{ui}/charts/health-project.svg", project=h.project, days=h.days),
            }
        return page(
            request,
            "health.html",
            "health",
            viewer,
            h=h,
            days_choices=HEALTH_DAYS,
            latest=latest,
            movers=movers(latest["projects"]),
            dimensions=page_charts.dimensions,
            chart=url_with(f"{ui}/charts/health.svg", days=h.days, compare_days=h.compare_days),
            project=project,
            project_url=lambda name: url_with(f"{ui}/health", project=name, days=h.days, compare_days=h.compare_days),
        )

    # -- reports --------------------------------------------------------------------------------------
    @router.get(UI + "/reports")
    def reports(request: Request, viewer: AnyViewer, store: StoreDep) -> HTMLResponse:
        dags = viewer.require_any(queries.DATASET_DAGS["reports"])
        listed = queries.reports(store, dags=dags, limit=PAGE_SIZE, cursor=request.query_params.get("cursor") or None)
        ui = root_of(request) + UI
        return page(
            request,
            "reports.html",
            "reports",
            viewer,
            items=listed.items,
            next_url=url_with(f"{ui}/reports", cursor=listed.next_cursor) if listed.next_cursor else None,
            dags=sorted(dags),
        )

    @router.get(UI + "/reports/{report_id}")
    def report(
        request: Request, viewer: AnyViewer, store: StoreDep, report_id: Annotated[int, Path(ge=1)]
    ) -> HTMLResponse:
        found = queries.report(store, report_id)
        if found is None:
            viewer.require_any(queries.DATASET_DAGS["reports"])
            raise HTTPException(404, f"There is no report {report_id}.")
        dag = queries.report_dag(found["kind"])
        if not viewer.may_read(dag):
            raise forbidden([dag])
        summary = found.get("summary") or {}
        api = root_of(request) + f"/api/v1/reports/{report_id}"
        return page(
            request,
            "report.html",
            "reports",
            viewer,
            r=found,
            summary=summary,
            headlines=[h for h in summary.get("headlines") or [] if isinstance(h, Mapping)],
            html_url=f"{api}/html",
            markdown_url=f"{api}/markdown",
            figures_url=f"{api}/figures.json",
        )

    # -- charts ---------------------------------------------------------------------------------------
    @router.get(UI + "/charts/failures.svg")
    def failures_chart(request: Request, viewer: FailuresViewer, store: StoreDep) -> Response:
        q = request.query_params
        days = opt_choice(q.get("days"), "days", (7, 14, 28), FAILURE_CHART_DAYS)
        end = opt_date(q.get("end"), "end") or today(request)
        first = end - dt.timedelta(days=days - 1)

        def draw() -> bytes:
            rows = queries.failures_by_day(store, since=first, until=end + dt.timedelta(days=1))
            return page_charts.failures_chart(rows, page_charts.days_between(first, end))

        return chart_response(request, ("failures", str(store.url), first, end), draw)

    @router.get(UI + "/charts/ci-{metric}.svg")
    def ci_chart(request: Request, viewer: CiViewer, store: StoreDep, metric: str) -> Response:
        f = CiFilters(request)
        trend = metric.startswith("trend-")
        name = metric.removeprefix("trend-")
        if name not in page_charts.CI_METRICS:
            raise HTTPException(404, f"no chart ci-{metric}")

        def draw() -> bytes:
            if trend:
                rows = ci_daily(request, store, f)
                return page_charts.ci_trend_chart(rows, name, page_charts.days_between(f.first_day, f.end_day))
            return page_charts.ci_groups_chart(ci_summary(request, store, f), name, repo_selected=bool(f.repo))

        return chart_response(request, ("ci", metric, str(store.url), *f.key()), draw)

    @router.get(UI + "/charts/health.svg")
    def health_chart(request: Request, viewer: MetricsViewer, store: StoreDep) -> Response:
        h = HealthFilters(request)

        def draw() -> bytes:
            latest = health_latest(request, store, h.compare_days, inputs=False)
            if latest["day"] is None:
                return page_charts.health_chart([], [], [])
            last = latest["day"]
            first = last - dt.timedelta(days=h.days - 1)
            names = chart_projects(latest)
            rows = queries.health_series(store, projects=names, since=first, until=last)
            return page_charts.health_chart(rows, page_charts.days_between(first, last), names)

        return chart_response(request, ("health", str(store.url), h.days, h.compare_days), draw)

    @router.get(UI + "/charts/health-project.svg")
    def health_project_chart(request: Request, viewer: MetricsViewer, store: StoreDep) -> Response:
        h = HealthFilters(request)
        if not h.project:
            raise queries.InvalidFilter("project", "is required")
        project = h.project

        def draw() -> bytes:
            history = queries.health_history(store, project=project, limit=h.days)
            return page_charts.project_chart(history, project)

        return chart_response(request, ("health-project", str(store.url), project, h.days), draw)

    return router


# -- errors on pages ---------------------------------------------------------------------------------
ERROR_TITLES = {
    401: "Not logged in",
    403: "No access",
    404: "Not found",
    422: "Bad filter",
    503: "Results database unavailable",
}


def login_url(request: Request) -> str | None:
    """Airflow's login page, coming back to this page afterwards (``None`` without an auth manager)."""
    try:
        from airflow.api_fastapi.app import get_auth_manager

        return get_auth_manager().get_url_login(next_url=str(request.url))
    except Exception:  # no auth manager in this process (a test client)
        log.debug("No login page to send %s to", request.url.path, exc_info=True)
        return None


def error_page(request: Request, status: int, message: str) -> Response:
    if status == 401:
        target = login_url(request)
        if target:
            return RedirectResponse(target, status_code=303)
    context = {
        **base_context(request, "error"),
        "status": status,
        "title": ERROR_TITLES.get(status, "Error"),
        "message": message,
        "login": login_url(request) if status == 401 else None,
    }
    return render(request, "error.html", context, status=status)


def install_page_errors(app: FastAPI) -> None:
    """Errors on page paths as pages; the API's JSON answers are left as they are."""
    from fastapi.exception_handlers import http_exception_handler

    json_handlers = dict(app.exception_handlers)

    async def delegate(request: Request, exc: Exception) -> Response:
        for cls in type(exc).__mro__:
            handler = json_handlers.get(cls)
            if handler is not None:
                return await handler(request, exc)
        if isinstance(exc, StarletteHTTPException):
            return await http_exception_handler(request, exc)
        raise exc

    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        if not is_page(request):
            return await delegate(request, exc)
        return error_page(request, exc.status_code, str(exc.detail))

    async def on_filter(request: Request, exc: Exception) -> Response:
        if not is_page(request):
            return await delegate(request, exc)
        if isinstance(exc, queries.InvalidFilter):
            message = f"{exc.field}: {exc.message}"
        else:
            errors = exc.errors() if isinstance(exc, RequestValidationError) else []
            message = "; ".join(f"{err.get('loc', ['?'])[-1]}: {err.get('msg')}" for err in errors) or str(exc)
        return error_page(request, 422, message)

    async def on_database(request: Request, exc: Exception) -> Response:
        if not is_page(request):
            return await delegate(request, exc)
        return error_page(request, 503, "The results database cannot be reached.")

    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(queries.InvalidFilter, on_filter)
    app.add_exception_handler(RequestValidationError, on_filter)
    app.add_exception_handler(sqlalchemy.exc.OperationalError, on_database)


# -- the app -----------------------------------------------------------------------------------------
def create_view_app(
    *,
    templates: Templates | None = None,
    map_index_lookup: airflow_links.MapIndexLookup | None = airflow_links.triage_map_index,
    **kwargs: Any,
) -> FastAPI:
    """The plugin's app: the read API (:func:`~.api.create_app`, same ``kwargs``) and the pages.

    ``templates``: another templates folder; ``map_index_lookup``: how a failure finds its task instance
    (``None``: link to the mapped task's list)."""
    app = create_app(routers=[pages_router()], **kwargs)
    app.state.templates = templates or default_templates()
    app.state.chart_cache = SummaryCache(ttl_s=CHART_TTL_S, size=CHART_CACHE_SIZE)
    app.state.map_index_lookup = map_index_lookup
    install_page_errors(app)
    return app


__all__ = ["UI", "create_view_app", "excerpt_rows", "install_page_errors", "pages_router"]
