"""Operators of ``ci_pipeline_analytics``: plan sources → collect (mapped per repository, per provider) →
figures → alerts → summary.

Every step works on the run's data interval (never the wall clock), so ``airflow dags backfill``
rebuilds past days exactly; every write is an upsert on natural keys that rewrites only changed rows.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from devops_automation import as_bool
from devops_automation.operators.runtime import (
    XComUrlLink,
    data_interval,
    is_backfill,
    mapped_results,
    project_file,
    task_started,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

DAG_ID = "ci_pipeline_analytics"
GITHUB_CONN_ID = "github_default"
GITLAB_CONN_ID = "gitlab_default"
RESULTS_CONN_ID = "devops_results_db"
SOURCES_VARIABLE = "ci_pipeline_analytics_sources"
#: the Params naming each provider's sources (error messages name them)
PARAMS = {"github": "github_repos", "gitlab": "gitlab_projects"}
_SEGMENT = r"(?!\.{1,2}(?:/|$))[A-Za-z0-9_.-]+"  # a name as GitHub and GitLab allow it, not "." or ".."
GITHUB_REPO_RE = re.compile(rf"{_SEGMENT}/{_SEGMENT}")
GITLAB_PATH_RE = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})+")  # group[/subgroup...]/project
#: the XCom key under which a collect task keeps the URL of its repository's (project's) runs page
SOURCE_URL_KEY = "source_url"


def _names(value: Any, what: str, provider: str | None = None) -> list[str]:
    """The names of a Param or the Variable; with ``provider``, each must be a GitHub ``owner/name``
    or a GitLab project id or ``group/project`` path (the error names ``what`` and the bad item)."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = value.replace(",", "\n").splitlines()
    if not isinstance(value, list | tuple):
        raise ValueError(f"{what} must be a list of names, got {type(value).__name__}")
    names = []
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, str | int) or not str(item).strip():
            raise ValueError(f"{what}[{i}] must be a non-empty repository name, got {item!r}")
        text = str(item).strip()
        if provider == "github" and not GITHUB_REPO_RE.fullmatch(text):
            raise ValueError(f"{what}[{i}] must be a GitHub repository 'owner/name', got {item!r}")
        if provider == "gitlab" and not (text.isdigit() or GITLAB_PATH_RE.fullmatch(text)):
            raise ValueError(f"{what}[{i}] must be a GitLab project id or path 'group/project', got {item!r}")
        names.append(text)
    return names


def _unique(names: list[str], provider: str) -> list[str]:
    """Sorted, each once; GitHub names are case-insensitive (the first spelling is kept: put the org's
    canonical names first)."""
    kept: dict[str, str] = {}
    for name in names:
        kept.setdefault(name.lower() if provider == "github" else name, name)
    return sorted(kept.values())


class CIPlanSourcesOperator(BaseOperator):
    """Which repositories (``provider="github"``) or projects (``"gitlab"``) to collect: ``names`` and
    every repository of ``group`` (a GitHub org; a GitLab group, subgroups included); when both are
    empty, the Variable ``ci_pipeline_analytics_sources``
    (``{"github": [...], "github_org": "...", "gitlab": [...], "gitlab_group": "..."}``). A provider
    whose connection is not defined is skipped with a log line. Returns the sorted list of names."""

    template_fields: Sequence[str] = ("names", "group")

    def __init__(
        self, *, provider: str, names: Any = (), group: str = "", conn_id: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if provider not in ("github", "gitlab"):
            raise ValueError(f"provider must be github or gitlab, got {provider!r}")
        self.provider = provider
        self.names = names
        self.group = group
        self.conn_id = conn_id or (GITHUB_CONN_ID if provider == "github" else GITLAB_CONN_ID)

    def execute(self, context: Context) -> list[str]:
        from airflow.sdk import Variable

        from devops_automation.hooks import connection_exists

        names = _names(self.names, PARAMS[self.provider], self.provider)
        group = str(self.group or "").strip()
        if not (names or group):
            fallback = Variable.get(SOURCES_VARIABLE, default=None, deserialize_json=True) or {}
            if not isinstance(fallback, dict):
                raise ValueError(f"Variable {SOURCES_VARIABLE} must be a JSON object, got {type(fallback).__name__}")
            group_key = "github_org" if self.provider == "github" else "gitlab_group"
            names = _names(fallback.get(self.provider), f"Variable {SOURCES_VARIABLE}.{self.provider}", self.provider)
            group = str(fallback.get(group_key) or "").strip()
        if not (names or group):
            self.log.info("no %s sources configured: that half is skipped", self.provider)
            return []
        if not connection_exists(self.conn_id):
            self.log.info("connection %s is not defined: the %s half is skipped", self.conn_id, self.provider)
            return []
        if group and self.provider == "github":
            from devops_automation.hooks.github import GitHubHook

            found = GitHubHook(self.conn_id).org_repos(group)
            names = [r["full_name"] for r in found if not r.get("archived")] + names  # canonical spelling first
        elif group:
            from devops_automation.hooks.gitlab import GitLabHook

            found = GitLabHook(self.conn_id).group_projects(group, include_subgroups=True)
            names += [p["path_with_namespace"] for p in found if not p.get("archived")]
        out = _unique(names, self.provider)
        if len(out) < len(names):
            self.log.info("%d duplicate %s sources collected once", len(names) - len(out), self.provider)
        self.log.info("%d %s sources", len(out), self.provider)
        return out


class CISourceLink(XComUrlLink):
    """Extra link from a collect task to what it collected: the repository's Actions page on GitHub
    (``https://github.com/{owner}/{repo}/actions``, the Enterprise host for GitHub Enterprise), the
    project's pipelines page on GitLab (``{web url}/{path}/-/pipelines``). The task pushes the URL to
    XCom (``source_url``) before collecting, so a failed collection has its link too."""

    name = "CI runs"
    key = SOURCE_URL_KEY


class CICollectOperator(BaseOperator):
    """Collect one repository (GitHub) or project (GitLab) for the run's data interval (mapped over
    ``source``). GitHub's primary rate limit: a short wait is slept by the hook; a long one defers this
    task until the reset (no worker slot held), then it collects again from the start (idempotent).
    Extra link :class:`CISourceLink`: the repository's Actions page or the project's pipelines page."""

    template_fields: Sequence[str] = ("source", "lookback_days", "environments")
    operator_extra_links = (CISourceLink(),)

    def __init__(
        self,
        *,
        provider: str,
        source: str,
        lookback_days: int | str = 7,
        environments: str = r"(?i)^(prod|production)$",
        conn_id: str | None = None,
        results_conn_id: str = RESULTS_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if provider not in ("github", "gitlab"):
            raise ValueError(f"provider must be github or gitlab, got {provider!r}")
        self.provider = provider
        self.source = source
        self.lookback_days = lookback_days
        self.environments = environments
        self.conn_id = conn_id or (GITHUB_CONN_ID if provider == "github" else GITLAB_CONN_ID)
        self.results_conn_id = results_conn_id

    def execute(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        from devops_automation.store import ResultsStore
        from devops_automation.workflows.ci_pipeline_analytics import collect

        # a GitLab project id arrives as an int (the DAG renders templates as native objects): the store,
        # the run's summary and the link all key the source by its name as planned, a string
        self.source = str(self.source).strip()
        start, end = data_interval(context, DAG_ID)
        store = ResultsStore.from_connection(self.results_conn_id)
        lookback = int(self.lookback_days)
        if lookback < 0:
            raise ValueError(f"lookback_days must be 0 or more, got {lookback}")
        kwargs = {
            "start": start,
            "end": end,
            "lookback_days": lookback,
            "collected_at": end,
            "environments": self.environments or None,
        }
        if self.provider == "github":
            from devops_automation.hooks.github import GitHubHook, GitHubRateLimited
            from devops_automation.store.http_cache import StoreHttpCache

            hook = GitHubHook(self.conn_id, cache=StoreHttpCache(store))
            self._push_link(context, lambda: collect.github_actions_url(hook.api_url, self.source))
            try:
                result = collect.collect_github(hook, store, self.source, **kwargs)
            except GitHubRateLimited as exc:
                self._defer_until(exc.reset_at, str(exc))
            self.log.info("GitHub requests: %s", hook.counters())
        else:
            from devops_automation.hooks.gitlab import GitLabHook

            gitlab = GitLabHook(self.conn_id)
            self._push_link(context, lambda: collect.gitlab_pipelines_url(gitlab, self.source))
            result = collect.collect_gitlab(gitlab, store, self.source, **kwargs)
        for warning in result.warnings:
            self.log.warning("%s: %s", self.source, warning)
        self.log.info(
            "%s %s: %d runs listed, %d attempts stored, %d already complete, %d jobs, %d deployments",
            self.provider, self.source, result.runs_listed, result.attempts_stored, result.attempts_skipped,
            result.jobs_stored, result.deployments_stored,
        )  # fmt: skip
        return result.as_dict()

    def _push_link(self, context: Context, url: Any) -> None:
        """XCom ``source_url`` for :class:`CISourceLink`; a link that cannot be made never fails the task."""
        try:
            context["ti"].xcom_push(key=SOURCE_URL_KEY, value=url())
        except Exception as exc:
            self.log.warning("no link to %s %s: %s", self.provider, self.source, exc, exc_info=True)

    def _defer_until(self, reset_at: dt.datetime, why: str) -> None:
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        self.log.warning("GitHub rate limit: deferring until %s (%s)", reset_at.isoformat(), why)
        self.defer(trigger=DateTimeTrigger(moment=reset_at + dt.timedelta(seconds=1)), method_name="execute")


class CIFiguresOperator(BaseOperator):
    """Recompute the stored daily figures (``ci_daily``) for the interval's days and every day whose
    runs changed, and return the interval's headline figures (for the run note). Also purges the
    ``http_cache`` entries fetched before the interval's start minus ``lookback_days`` + 2 days (once per
    run, after the collection): no collection of this interval asks for them again."""

    template_fields: Sequence[str] = ("collected", "environments", "lookback_days")

    def __init__(
        self,
        *,
        collected: Any,
        environments: str = r"(?i)^(prod|production)$",
        lookback_days: int | str = 7,
        results_conn_id: str = RESULTS_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.collected = collected
        self.environments = environments
        self.lookback_days = lookback_days
        self.results_conn_id = results_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from devops_automation.ci_analytics import analytics
        from devops_automation.store import ResultsStore

        start, end = data_interval(context, DAG_ID)
        store = ResultsStore.from_connection(self.results_conn_id)
        days = {start.date() + dt.timedelta(days=i) for i in range(max(1, (end.date() - start.date()).days))}
        for result in mapped_results(self.collected):
            days.update(dt.date.fromisoformat(d) for d in result.get("days") or [])
        written = analytics.store_daily(store, days, end, environments=self.environments or None)
        summary = analytics.window_summary(store, start=start, end=end, environments=self.environments or None)
        self.log.info("ci_daily: %d rows for %d days", written, len(days))
        purged = self._purge_http_cache(store, start)
        return {
            "daily_rows": written,
            "days": sorted(d.isoformat() for d in days),
            "total": summary["total"],
            "http_cache_purged": purged,
        }

    def _purge_http_cache(self, store: Any, start: dt.datetime) -> int:
        from devops_automation.store.http_cache import StoreHttpCache

        lookback = int(self.lookback_days)
        if lookback < 0:
            raise ValueError(f"lookback_days must be 0 or more, got {lookback}")
        older_than = start - dt.timedelta(days=lookback + 2)
        purged = StoreHttpCache(store).purge(older_than)
        self.log.info("http_cache: %d entries fetched before %s purged", purged, older_than.isoformat())
        return purged


def _wanted(sources: Any) -> list[tuple[str, str]]:
    """(provider, name) pairs from the planning tasks' outputs ``[github names, gitlab names]``."""
    github, gitlab = [*list(sources or []), None, None][:2]
    return [("github", n) for n in github or []] + [("gitlab", n) for n in gitlab or []]


class CIAlertsOperator(BaseOperator):
    """Evaluate the alert rules on the interval; record every start/resolve in ``alert_events`` and
    send each once per channel. A backfill (or ``page`` off) records the history and sends nothing."""

    template_fields: Sequence[str] = ("rules_path", "page", "collected", "sources")

    def __init__(
        self,
        *,
        rules_path: str,
        collected: Any,
        sources: Any,
        page: bool | str = True,
        results_conn_id: str = RESULTS_CONN_ID,
        slack_conn_id: str = "slack_default",
        telegram_conn_id: str = "telegram_default",
        smtp_conn_id: str = "smtp_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.rules_path = rules_path
        self.collected = collected
        self.sources = sources
        self.page = page
        self.results_conn_id = results_conn_id
        self.slack_conn_id = slack_conn_id
        self.telegram_conn_id = telegram_conn_id
        self.smtp_conn_id = smtp_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from devops_automation.store import ResultsStore
        from devops_automation.workflows.ci_pipeline_analytics import alert_rules, alert_store, observe

        start, end = data_interval(context, DAG_ID)
        rules = alert_rules.load_rules(project_file(self.rules_path))
        store = ResultsStore.from_connection(self.results_conn_id)
        collected = {(r["provider"], r["repo"]) for r in mapped_results(self.collected)}
        wanted = set(_wanted(self.sources))
        held = sorted(repo for _provider, repo in wanted - collected)
        observations = observe.observations(store, rules, end=end)
        conditions = alert_rules.evaluate(rules, observations, interval_end=end)
        opened = alert_store.open_alerts(store, as_of=end)
        moves = alert_rules.transitions(conditions, opened, at=end, held_repos=held)
        recorded = alert_store.record(store, moves.started, moves.resolved, moves.still_firing, evaluated_at=end)
        backfill = is_backfill(context)
        page = as_bool(self.page, True) and not backfill
        start_time = task_started(context, end)
        messages = alert_store.plan_notifications(rules, moves.started, moves.resolved, now=start_time, page=page)
        sent = self._send(messages)
        # what this run recorded: a re-run of the interval finds its starts and resolves already recorded
        # (by the first run) and counts the alerts those started as still firing
        counts = {
            "started": recorded.new_started,
            "still_firing": len(moves.still_firing) + len(moves.started) - recorded.new_started,
            "resolved": recorded.new_resolved,
        }
        self.log.info(
            "alerts: %d started, %d still firing, %d resolved (the evaluation: %d started, %d still firing, "
            "%d resolved); %d messages sent%s",
            counts["started"], counts["still_firing"], counts["resolved"],
            len(moves.started), len(moves.still_firing), len(moves.resolved), sent,
            "" if page else " (backfill or page off: recorded only)",
        )  # fmt: skip
        return {
            **counts,
            "transitions": {
                "started": len(moves.started),
                "still_firing": len(moves.still_firing),
                "resolved": len(moves.resolved),
            },
            "changed_rows": recorded.changed,
            "sent": sent,
            "window": [start.isoformat(), end.isoformat()],
        }

    def _send(self, messages: list[Any]) -> int:
        from devops_automation.notifiers import Outgoing, deliver

        return deliver(
            [Outgoing(m.channel, m.target, m.dedup_key, m.text, m.subject, tuple(m.recipients)) for m in messages],
            slack_conn_id=self.slack_conn_id,
            telegram_conn_id=self.telegram_conn_id,
            smtp_conn_id=self.smtp_conn_id,
            logger=self.log,
        )


class CISummaryOperator(BaseOperator):
    """The run's last step: a one-line run note with the headline figures; fails naming every source
    whose collection failed (the others are stored)."""

    template_fields: Sequence[str] = ("sources", "collected", "figures", "alerts")

    def __init__(self, *, sources: Any, collected: Any, figures: Any, alerts: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sources = sources
        self.collected = collected
        self.figures = figures
        self.alerts = alerts

    def execute(self, context: Context) -> dict[str, Any]:
        from devops_automation.hooks.airflow_api import set_run_note

        results = mapped_results(self.collected)
        done = {(r["provider"], r["repo"]) for r in results}
        wanted = sorted(_wanted(self.sources))
        failed = [f"{p}:{s}" for p, s in wanted if (p, s) not in done]
        plans = [*list(self.sources or []), None, None][:2]  # None: the plan task failed (say, a bad Param)
        steps = [f"plan_{p}" for p, out in zip(("github", "gitlab"), plans, strict=True) if out is None]
        steps += [name for name, out in (("figures", self.figures), ("alerts", self.alerts)) if out is None]
        total = ((self.figures or {}).get("total") or {}).get("current") or {}
        attempts = sum(r.get("attempts_stored", 0) for r in results)
        note = _note(len(wanted), attempts, total, self.alerts or {}, failed)
        self.log.info(note)
        set_run_note(context, note)
        problems = []
        if failed:
            problems.append(f"collection failed for {len(failed)} of {len(wanted)} sources: {', '.join(failed)}")
        if steps:
            problems.append(f"task(s) {', '.join(steps)} failed (see their logs)")
        if problems:
            raise RuntimeError("; ".join(problems))
        return {"sources": len(wanted), "attempts_stored": attempts, "failed": failed}


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100 * float(value):.0f}%"


def _note(sources: int, attempts: int, total: dict[str, Any], alerts: dict[str, Any], failed: list[str]) -> str:
    runs = total.get("runs", 0)
    parts = [
        f"{sources} sources, {attempts} attempts stored",
        (
            f"{runs} runs: success {_pct(total.get('success_rate'))}, "
            f"first attempt {_pct(total.get('first_attempt_success_rate'))}"
        ),
    ]
    duration, queue = total.get("duration_p50_s"), total.get("queue_run_p50_s")
    if duration is not None:
        parts.append(
            f"duration p50 {float(duration) / 60:.1f} min"
            + (f", queue p50 {float(queue):.0f} s" if queue is not None else "")
        )
    if total.get("mttr_s") is not None:
        parts.append(f"MTTR {float(total['mttr_s']) / 3600:.1f} h")
    if alerts:
        parts.append(
            f"alerts: started {alerts.get('started', 0)}, still firing {alerts.get('still_firing', 0)}, "
            f"resolved {alerts.get('resolved', 0)}"
        )
    if failed:
        parts.append(f"FAILED: {', '.join(failed[:5])}" + (" …" if len(failed) > 5 else ""))
    return "; ".join(parts)
