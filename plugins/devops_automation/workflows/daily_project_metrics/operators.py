"""Operators of ``daily_project_metrics``: plan → collect (mapped per project, one task per source and
pool) and CI figures → health → alerts (+ issues) → summary.

Every step works on the run's data interval: Prometheus is asked at the interval's end, SonarQube's
history and GitHub's timestamps give what that day was, so ``airflow dags backfill`` rebuilds past days.
Every write is an upsert on natural keys that rewrites only changed rows; a backfill records alerts
without sending anything or touching issues.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from devops_automation import as_bool
from devops_automation.operators.runtime import (
    XComUrlLink,
    data_interval,
    is_backfill,
    mapped_results,
    param_names,
    project_file,
    task_started,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from devops_automation.workflows.daily_project_metrics.projects import Project

DAG_ID = "daily_project_metrics"
RESULTS_CONN_ID = "devops_results_db"
CONN_IDS = {
    "github": "github_default",
    "gitlab": "gitlab_default",
    "prometheus": "prometheus_default",
    "sonarqube": "sonarqube_default",
}
COLLECTED = ("github", "prometheus", "sonarqube")
LINK_KEY = "source_url"


def _projects(path: str, only: Any = None) -> list[Project]:
    """The projects of the file (every one, or the names in ``only``: an unknown name is an error)."""
    from devops_automation.workflows.daily_project_metrics.projects import load_projects

    projects = load_projects(project_file(path))
    names = param_names(only, "projects", "project name")
    if not names:
        return projects
    by_name = {p.name.lower(): p for p in projects}
    unknown = [n for n in names if n.lower() not in by_name]
    if unknown:
        raise ValueError(
            f"projects {', '.join(map(repr, unknown))} not in {path} (it has {', '.join(p.name for p in projects)})"
        )
    return [by_name[n] for n in dict.fromkeys(n.lower() for n in names)]  # each once, any case


def _project(path: str, name: str) -> Project:
    (project,) = _projects(path, [name])
    return project


class MetricsPlanOperator(BaseOperator):
    """Read and check ``projects.yaml`` and ``health.yaml`` (a mistake fails here, naming file, line and
    field). Returns the names of the projects ``source`` collects (``github``, ``prometheus``,
    ``sonarqube``: what its collect task maps over; none when the source's connection is not defined,
    with a log line), or, without ``source``, of every project of the run."""

    template_fields: Sequence[str] = ("projects_file", "health_file", "only")

    def __init__(
        self, *, projects_file: str, health_file: str, only: Any = (), source: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if source is not None and source not in COLLECTED:
            raise ValueError(f"source must be one of {', '.join(COLLECTED)} or None, got {source!r}")
        self.projects_file = projects_file
        self.health_file = health_file
        self.only = only
        self.source = source

    def execute(self, context: Context) -> list[str]:
        from devops_automation.hooks import connection_exists
        from devops_automation.workflows.daily_project_metrics.health import load_health_config

        projects = _projects(self.projects_file, self.only)
        load_health_config(project_file(self.health_file))  # a bad file fails the run before any call
        if self.source is None:
            self.log.info("%d projects: %s", len(projects), ", ".join(p.name for p in projects))
            return [p.name for p in projects]
        wanted = [p.name for p in projects if getattr(p, self.source)]
        if wanted and not connection_exists(CONN_IDS[self.source]):
            self.log.info("connection %s is not defined: %s is skipped", CONN_IDS[self.source], self.source)
            return []
        self.log.info("%s: %d projects", self.source, len(wanted))
        return wanted


class MetricsSourceLink(XComUrlLink):
    """The project on the source: the GitHub repository, the SonarQube dashboard, the Prometheus graph
    of its first query."""

    name = "Source"
    key = LINK_KEY


class MetricsCollectOperator(BaseOperator):
    """One source's figures of one project for the run's day (mapped over ``project``), upserted into
    ``project_metrics``. A figure that failed is not written (the stored value stays) and fails the
    task after the others are stored, naming it; a source that cannot be reached fails the task too.
    The other projects go on (their own task instances)."""

    template_fields: Sequence[str] = ("project", "projects_file")
    operator_extra_links = (MetricsSourceLink(),)

    def __init__(
        self,
        *,
        source: str,
        project: str,
        projects_file: str,
        conn_id: str | None = None,
        results_conn_id: str = RESULTS_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if source not in COLLECTED:
            raise ValueError(f"source must be one of {', '.join(COLLECTED)}, got {source!r}")
        self.source = source
        self.project = project
        self.projects_file = projects_file
        self.conn_id = conn_id or CONN_IDS[source]
        self.results_conn_id = results_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from devops_automation.store import ResultsStore
        from devops_automation.workflows.daily_project_metrics.sonarqube_metrics import is_latest_interval
        from devops_automation.workflows.daily_project_metrics.store import write_metrics

        start, end = data_interval(context, DAG_ID)
        project = _project(self.projects_file, str(self.project))
        store = ResultsStore.from_connection(self.results_conn_id)
        latest = is_latest_interval(start, end, task_started(context, end))
        result = self._collect(context, project, store, start, end, latest)
        written = write_metrics(store, result.rows, end)
        for warning in result.warnings:
            self.log.warning("%s %s: %s", self.source, project.name, warning)
        self.log.info(
            "%s %s %s: %d figures, %d rows new or changed%s",
            self.source, project.name, result.day, len(result.rows), written, "" if latest else " (a past day)",
        )  # fmt: skip
        out = {
            "source": self.source,
            "project": project.name,
            "day": result.day.isoformat(),
            "figures": len(result.rows),
            "written": written,
            "problems": result.problems(),
        }
        if not result.ok:
            raise RuntimeError("; ".join(result.problems()))  # each names the project and the source
        return out

    def _collect(
        self, context: Context, project: Project, store: Any, start: dt.datetime, end: dt.datetime, latest: bool
    ):
        if self.source == "github":
            from devops_automation.hooks.github import GitHubHook
            from devops_automation.store.http_cache import StoreHttpCache
            from devops_automation.workflows.daily_project_metrics.github_metrics import github_figures

            cache = StoreHttpCache(store)
            hook = GitHubHook(self.conn_id, cache=cache)
            self._link(context, lambda: _github_web(hook, str(project.github)))
            with cache.batch():  # the ETag cache: one connection for reads, writes together at the end
                return github_figures(hook, project.name, str(project.github), start, end, latest=latest)
        if self.source == "prometheus":
            from devops_automation.hooks.prometheus import PrometheusHook
            from devops_automation.workflows.daily_project_metrics.prometheus_metrics import prometheus_figures

            hook = PrometheusHook(prometheus_conn_id=self.conn_id)
            self._link(context, lambda: _prometheus_graph(hook, project))
            return prometheus_figures(hook, project.name, project.prometheus, start, end)
        from devops_automation.hooks.sonarqube import SonarQubeHook
        from devops_automation.workflows.daily_project_metrics.sonarqube_metrics import sonarqube_figures

        hook = SonarQubeHook(sonarqube_conn_id=self.conn_id)
        self._link(context, lambda: _sonarqube_dashboard(hook, str(project.sonarqube)))
        return sonarqube_figures(hook, project.name, str(project.sonarqube), start, end, latest=latest)

    def _link(self, context: Context, url: Any) -> None:
        """XCom for :class:`MetricsSourceLink`; a link that cannot be made never fails the task."""
        try:
            context["ti"].xcom_push(key=LINK_KEY, value=url())
        except Exception:  # a link is a convenience
            self.log.warning("no link for %s %s", self.source, self.project, exc_info=True)


def _base_url(hook: Any) -> str:
    return str(hook.url("")).rstrip("/")


def _github_web(hook: Any, repo: str) -> str:
    base = _base_url(hook)
    if base in ("https://api.github.com", ""):
        return f"https://github.com/{repo}"
    return f"{base.removesuffix('/api/v3')}/{repo}"


def _prometheus_graph(hook: Any, project: Project) -> str:
    from urllib.parse import urlencode

    first = project.prometheus[0].query if project.prometheus else "up"
    return f"{_base_url(hook).removesuffix('/api/v1')}/graph?" + urlencode({"g0.expr": first, "g0.tab": "0"})


def _sonarqube_dashboard(hook: Any, key: str) -> str:
    from urllib.parse import quote

    return f"{_base_url(hook).removesuffix('/api')}/dashboard?id={quote(key)}"


class MetricsCIOperator(BaseOperator):
    """The CI figures of each project with a GitHub repository or GitLab project, from
    ``ci_pipeline_analytics``' tables (``ci_analytics.window_summary`` over the ``window_days`` days
    ending at the interval's end): success rate, first-attempt success rate, runs, MTTR, flaky jobs and
    DORA. A project without runs or deployments there gets no CI rows ("no data")."""

    template_fields: Sequence[str] = ("projects", "projects_file", "window_days")

    def __init__(
        self,
        *,
        projects: Any,
        projects_file: str,
        window_days: int | str = 7,
        results_conn_id: str = RESULTS_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.projects = projects
        self.projects_file = projects_file
        self.window_days = window_days
        self.results_conn_id = results_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from devops_automation.ci_analytics.analytics import window_summary
        from devops_automation.store import ResultsStore
        from devops_automation.workflows.daily_project_metrics.ci_metrics import ci_rows, ci_sources
        from devops_automation.workflows.daily_project_metrics.store import write_metrics

        start, end = data_interval(context, DAG_ID)
        days = int(self.window_days)
        if not 1 <= days <= 90:
            raise ValueError(f"ci_window_days must be 1 to 90, got {days}")
        projects = _projects(self.projects_file, list(self.projects or []))
        sources = ci_sources(projects)
        if not sources:
            self.log.info("no project names a GitHub repository or GitLab project: no CI figures")
            return {"projects": 0, "written": 0}
        store = ResultsStore.from_connection(self.results_conn_id)
        summary = window_summary(
            store,
            start=end - dt.timedelta(days=days),
            end=end,
            repos=sorted({repo for _, repo in sources.values()}),
            group_by="repo",
            with_previous=False,
        )
        rows = ci_rows(summary, sources, start.date())
        written = write_metrics(store, rows, end)
        self.log.info(
            "CI figures of %d projects over %d days: %d rows, %d new or changed", len(sources), days, len(rows), written
        )
        return {"projects": len(sources), "rows": len(rows), "written": written}


class MetricsHealthOperator(BaseOperator):
    """Each project's health score of the day from every figure stored for it (``health.yaml``'s
    weights), upserted into ``health_scores`` and as the figure ``health.score``; a project without any
    input gets no score ("no data")."""

    template_fields: Sequence[str] = ("projects", "projects_file", "health_file")

    def __init__(
        self,
        *,
        projects: Any,
        projects_file: str,
        health_file: str,
        results_conn_id: str = RESULTS_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.projects = projects
        self.projects_file = projects_file
        self.health_file = health_file
        self.results_conn_id = results_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from devops_automation.store import ResultsStore
        from devops_automation.workflows.daily_project_metrics import metrics as m
        from devops_automation.workflows.daily_project_metrics.health import compute_health, load_health_config
        from devops_automation.workflows.daily_project_metrics.metric_rows import metric_row
        from devops_automation.workflows.daily_project_metrics.store import day_rows, write_health, write_metrics

        start, end = data_interval(context, DAG_ID)
        day = start.date()
        projects = _projects(self.projects_file, list(self.projects or []))
        config = load_health_config(project_file(self.health_file))
        store = ResultsStore.from_connection(self.results_conn_id)
        rows = day_rows(store, day, [p.name for p in projects])
        scores: dict[str, Any] = {}
        health_rows, score_rows = [], []
        for project in projects:
            values = m.values_from_rows(r for r in rows if r["project"] == project.name and r["source"] != "health")
            health = compute_health(values, config, slos=project.slos)
            scores[project.name] = {"score": health.score, "grade": health.grade, "summary": health.summary()}
            if health.score is None:
                continue
            health_rows.append(
                {
                    "day": day,
                    "project": project.name,
                    "score": health.score,
                    "grade": health.grade,
                    "components": health.as_json(),
                }
            )
            score_rows.append(
                metric_row(day, "health", project.name, "score", f"{health.score:g}", health.score, "score")
            )
        written = write_health(store, health_rows, end) + write_metrics(store, score_rows, end)
        for name, s in scores.items():
            self.log.info("%s: %s", name, s["summary"])
        return {"day": day.isoformat(), "scores": scores, "written": written}


class MetricsAlertsOperator(BaseOperator):
    """``health.yaml``'s thresholds on each project's figures of the day: an alert starts once and
    resolves once (history in ``alert_events``, messages deduplicated in ``notifications``), to the
    file's ``alerts`` routes. With ``open_issues``, a critical breach opens one issue per project and
    threshold on its GitHub repository (else its GitLab project), comments when the value moves
    materially and closes it when the figure recovers; the issue is found again by its label and a
    marker, so a lost database opens no second one. A backfill (or ``page`` off) records only."""

    template_fields: Sequence[str] = ("projects", "projects_file", "health_file", "page", "open_issues")

    def __init__(
        self,
        *,
        projects: Any,
        projects_file: str,
        health_file: str,
        page: bool | str = True,
        open_issues: bool | str = False,
        results_conn_id: str = RESULTS_CONN_ID,
        slack_conn_id: str = "slack_default",
        telegram_conn_id: str = "telegram_default",
        smtp_conn_id: str = "smtp_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.projects = projects
        self.projects_file = projects_file
        self.health_file = health_file
        self.page = page
        self.open_issues = open_issues
        self.results_conn_id = results_conn_id
        self.slack_conn_id = slack_conn_id
        self.telegram_conn_id = telegram_conn_id
        self.smtp_conn_id = smtp_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from devops_automation.store import ResultsStore
        from devops_automation.store import alert_events as ae
        from devops_automation.workflows.daily_project_metrics import alerts
        from devops_automation.workflows.daily_project_metrics import metrics as m
        from devops_automation.workflows.daily_project_metrics.health import load_health_config
        from devops_automation.workflows.daily_project_metrics.store import day_rows
        from devops_automation.workflows.daily_project_metrics.thresholds import evaluate_thresholds

        start, end = data_interval(context, DAG_ID)
        day = start.date()
        projects = _projects(self.projects_file, list(self.projects or []))
        config = load_health_config(project_file(self.health_file))
        store = ResultsStore.from_connection(self.results_conn_id)
        rows = day_rows(store, day, [p.name for p in projects])
        conditions = []
        values_of: dict[str, dict[str, Any]] = {}
        for project in projects:
            values = values_of[project.name] = m.values_from_rows(r for r in rows if r["project"] == project.name)
            units = {q.metric: q.unit for q in project.prometheus}
            breaches = evaluate_thresholds(values, config, slos=project.slos)
            conditions += alerts.conditions(project.name, breaches, day, units)
        configured = {alerts.rule_id(t.metric) for t in config.thresholds if t.enabled}
        names = {p.name for p in projects}
        before = [ev for ev in ae.open_alerts(store, as_of=end, source=alerts.SOURCE) if ev.scope_key in names]
        # no figure this day (or a project outside this run): the alert stays as it is
        moves = ae.transitions(
            conditions, before, at=end, source=alerts.SOURCE, held=lambda ev: ev.rule_id in configured
        )
        recorded = ae.record(store, moves.started, moves.resolved, moves.still_firing, evaluated_at=end)
        backfill = is_backfill(context)
        page = as_bool(self.page, True) and not backfill
        now = task_started(context, end)
        # a re-run of the interval records its starts again (no new row): they are still firing, not new
        still_firing = len(recorded.still_firing) + len(recorded.started) - recorded.new_started
        sent = self._send(ae, alerts, config.routes, recorded, page=page, now=now)
        issues: dict[str, int] = {}
        if as_bool(self.open_issues, False) and not backfill:
            issues = self._issues(context, projects, recorded, before, config, start, end, values_of)
        self.log.info(
            "thresholds: %d started, %d still firing, %d resolved; %d messages sent%s",
            recorded.new_started, still_firing, recorded.new_resolved, sent,
            "" if page else " (backfill or page off: recorded only)",
        )  # fmt: skip
        return {
            "started": recorded.new_started,
            "still_firing": still_firing,
            "resolved": recorded.new_resolved,
            "changed_rows": recorded.changed,
            "sent": sent,
            "issues": issues,
            "firing": sorted(
                f"{ev.scope_key}: {alerts.metric_of(ev.rule_id)} {ev.severity}"
                for ev in [*recorded.started, *recorded.still_firing]
            ),
        }

    def _send(self, ae: Any, alerts: Any, routes: Any, recorded: Any, *, page: bool, now: dt.datetime) -> int:
        from devops_automation.notifiers import Outgoing, deliver
        from devops_automation.notifiers.email import addresses

        if not page:
            return 0
        markup = {"slack": "mrkdwn", "telegram": "html", "email": "text"}
        messages = []
        for kind, events in (("start", recorded.started), ("resolve", recorded.resolved)):
            for ev in events:
                when = ev.started_at if kind == "start" else ev.resolved_at
                if when is None or now - when > ae.MESSAGE_MAX_AGE:
                    continue  # a catch-up run of an old interval pages nobody
                for channel, target in routes.targets():
                    messages.append(
                        Outgoing(
                            channel,
                            target,
                            ae.dedup_key(ev, kind, channel, prefix=alerts.DEDUP_PREFIX),
                            alerts.message(ev, kind, markup[channel]),
                            recipients=tuple(addresses(target)) if channel == "email" else (),
                        )
                    )
        return deliver(
            messages,
            slack_conn_id=self.slack_conn_id,
            telegram_conn_id=self.telegram_conn_id,
            smtp_conn_id=self.smtp_conn_id,
            logger=self.log,
        )

    def _issues(
        self,
        context: Context,
        projects: list[Project],
        recorded: Any,
        before: list[Any],
        config: Any,
        start: dt.datetime,
        end: dt.datetime,
        values_of: dict[str, dict[str, Any]],
    ) -> dict[str, int]:
        from devops_automation.workflows.daily_project_metrics.issues import IssueDesk

        desk = IssueDesk(label=config.routes.issue_label, run_url=_run_url(context), day=start.date(), log=self.log)
        counts = desk.apply(
            {p.name: p for p in projects},
            recorded.started,
            recorded.still_firing,
            recorded.resolved,
            at=end,
            was_critical={(ev.rule_id, ev.scope_key) for ev in before if ev.severity == "critical"},
            figures=values_of,
            units={p.name: {q.metric: q.unit for q in p.prometheus} for p in projects},
        )
        if desk.failed:
            raise RuntimeError(
                f"issues: {len(desk.failed)} could not be handled (a retry does the rest): {'; '.join(desk.failed)}"
            )
        return counts


def _run_url(context: Context) -> str | None:
    """The run's grid page in the Airflow UI (``[api] base_url``), for issue bodies."""
    from urllib.parse import quote

    from airflow.configuration import conf

    base = conf.get("api", "base_url", fallback="") or ""
    run_id = context.get("run_id")
    return f"{base.rstrip('/')}/dags/{DAG_ID}/runs/{quote(str(run_id), safe='')}" if base and run_id else None


#: ``http_cache`` entries fetched this many days before the interval are purged by the summary: a
#: collection asks for what changed within the 90-day window, and an entry that is still wanted is
#: simply fetched (200) and stored again
CACHE_KEEP_DAYS = 92


class MetricsSummaryOperator(BaseOperator):
    """The run's last step: a run note with each project's score and the alerts; fails naming every
    project and source that failed (the others are stored). First it purges the ``http_cache``
    entries fetched more than :data:`CACHE_KEEP_DAYS` days before the interval (the GitHub
    collection's per-issue comments and reviews would otherwise pile up; a purge that fails is
    logged, not raised)."""

    template_fields: Sequence[str] = ("projects", "collected", "ci", "health", "alerts")

    def __init__(
        self,
        *,
        projects: Any,
        collected: Any,
        ci: Any,
        health: Any,
        alerts: Any,
        results_conn_id: str = RESULTS_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.projects = projects
        self.collected = collected
        self.ci = ci
        self.health = health
        self.alerts = alerts
        self.results_conn_id = results_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from devops_automation.hooks.airflow_api import set_run_note

        purged = self._purge_http_cache(context)
        expected = _expected(self.projects)
        done = {(r["source"], r["project"]) for r in mapped_results(self.collected)}
        failed = sorted(f"{source}:{name}" for source, name in expected if (source, name) not in done)
        plan_failed = any(part is None for part in list(self.projects or [None]))
        steps = ["plan"] if plan_failed else []
        steps += [
            name for name, out in (("ci", self.ci), ("health", self.health), ("alerts", self.alerts)) if out is None
        ]
        scores = (self.health or {}).get("scores") or {}
        note = _note(scores, self.alerts or {}, failed)
        self.log.info(note)
        set_run_note(context, note)
        problems = []
        if failed:
            problems.append(f"collection failed for {len(failed)} of {len(expected)}: {', '.join(failed)}")
        if steps:
            problems.append(f"task(s) {', '.join(steps)} failed (see their logs)")
        if problems:
            raise RuntimeError("; ".join(problems))
        return {"projects": len(scores), "failed": failed, "note": note, "http_cache_purged": purged}

    def _purge_http_cache(self, context: Context) -> int | None:
        import sqlalchemy as sa

        from devops_automation.store import ResultsStore
        from devops_automation.store.http_cache import StoreHttpCache

        start, _ = data_interval(context, DAG_ID)
        older_than = start - dt.timedelta(days=CACHE_KEEP_DAYS)
        try:
            purged = StoreHttpCache(ResultsStore.from_connection(self.results_conn_id)).purge(older_than)
        except sa.exc.SQLAlchemyError as exc:
            self.log.warning("http_cache: not purged (%s: %s)", type(exc).__name__, exc)
            return None
        self.log.info("http_cache: %d entries fetched before %s purged", purged, older_than.isoformat())
        return purged


def _expected(plan: Any) -> list[tuple[str, str]]:
    """(source, project) pairs the plan asked for, from the plan tasks' XComs ``[github, prometheus, sonarqube]``."""
    parts = [*list(plan or []), None, None, None][:3]
    return [(source, name) for source, names in zip(COLLECTED, parts, strict=True) for name in names or []]


def _note(scores: dict[str, Any], alerts: dict[str, Any], failed: list[str]) -> str:
    shown = []
    for name in sorted(scores):
        s = scores[name]
        if s.get("score") is None:
            shown.append(f"{name} no data")
        else:
            grade = f" {s['grade']}" if s.get("grade") else ""
            shown.append(f"{name} {float(s['score']):.0f}{grade}")
    parts = [f"health: {', '.join(shown)}" if shown else "health: no projects"]
    if alerts:
        parts.append(
            f"alerts: started {alerts.get('started', 0)}, still firing {alerts.get('still_firing', 0)}, "
            f"resolved {alerts.get('resolved', 0)}"
        )
        issues = alerts.get("issues") or {}
        if any(issues.values()):
            parts.append("issues: " + ", ".join(f"{k} {v}" for k, v in sorted(issues.items()) if v))
    if failed:
        parts.append(f"FAILED: {', '.join(failed[:5])}" + (" …" if len(failed) > 5 else ""))
    return "; ".join(parts)
