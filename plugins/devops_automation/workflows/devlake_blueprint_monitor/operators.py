"""Operators of ``devlake_blueprint_monitor``: start pipelines → (sensor) → collect failures →
rerun failed → (sensor) → summary.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from devops_automation.operators.devlake import DevLakeBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class DevLakeStartPipelinesOperator(DevLakeBaseOperator):
    """Trigger the blueprints that should run and return every pipeline to watch.

    ``mode``: ``none`` (only watch what is already running or pending), ``all`` (every enabled
    project blueprint) or ``pattern`` (projects whose name matches ``project_pattern``). A blueprint
    with a pending pipeline is not triggered again (DevLake would answer 400): that pipeline is
    adopted. A retried or cleared run adopts the pipelines it started before (created after the
    run began) instead of starting more.
    """

    template_fields: Sequence[str] = ("mode", "project_pattern", "skip_collectors", "full_sync")

    def __init__(
        self,
        *,
        mode: str = "all",
        project_pattern: str = "",
        skip_collectors: bool = False,
        full_sync: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.mode = mode
        self.project_pattern = project_pattern
        self.skip_collectors = skip_collectors
        self.full_sync = full_sync

    def execute(self, context: Context) -> list[int]:
        from devops_automation.hooks.devlake import parse_iso

        hook = self.hook
        if self.mode not in ("none", "all", "pattern"):
            raise ValueError(f"mode must be none, all or pattern, got {self.mode!r}")
        try:
            pattern = re.compile(self.project_pattern or ".*")
        except re.error as exc:
            raise ValueError(
                f"project_pattern {self.project_pattern!r} is not a valid regular expression ({exc})"
            ) from None
        watch = {int(p["id"]) for p in hook.pipelines(pending=True)}
        if self.mode != "none":
            started_after = context["dag_run"].start_date or context["dag_run"].run_after
            for project in hook.projects():
                bp = project.get("blueprint") or {}
                if (
                    not bp.get("id")
                    or not bp.get("enable")
                    or (self.mode == "pattern" and not pattern.search(project["name"]))
                ):
                    continue
                mine = [
                    p
                    for p in hook.pipelines(blueprint_id=int(bp["id"]))
                    if (parse_iso(p.get("createdAt")) or started_after) >= started_after
                ]
                if mine:  # this run (an earlier try) started it already
                    watch.add(int(mine[0]["id"]))
                    continue
                try:
                    pipeline = hook.trigger_blueprint(
                        int(bp["id"]), skip_collectors=bool(self.skip_collectors), full_sync=bool(self.full_sync)
                    )
                except Exception as exc:  # noqa: BLE001 - e.g. "no task to run": one blueprint must not stop the rest
                    self.log.warning("blueprint %s of %s not started: %s", bp["id"], project["name"], exc)
                    continue
                watch.add(int(pipeline["id"]))
        self.log.info("%d pipelines to watch", len(watch))
        return sorted(watch)


class DevLakeCollectFailuresOperator(DevLakeBaseOperator):
    """Failed and partial pipelines with their failed tasks (plugin, subtask, error message)."""

    template_fields: Sequence[str] = ("pipelines",)

    def __init__(self, *, pipelines: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pipelines = pipelines

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from devops_automation.hooks.devlake import FAILED_STATUSES

        failed = []
        for p in (self.pipelines or {}).values():
            if p.get("status") in FAILED_STATUSES:
                tasks = [
                    {
                        "plugin": t.get("plugin"),
                        "subtask": t.get("failedSubTask"),
                        "message": (t.get("message") or "")[:1000],
                    }
                    for t in self.hook.pipeline_tasks(int(p["id"]))
                    if t.get("status") == "TASK_FAILED"
                ]
                failed.append({**p, "failed_tasks": tasks})
        self.log.info("%d failed or partial pipelines", len(failed))
        return failed


class DevLakeRerunFailedOperator(DevLakeBaseOperator):
    """Rerun each failed pipeline once (DevLake reruns its failed tasks); returns the ids to watch."""

    template_fields: Sequence[str] = ("failed", "enabled")

    def __init__(self, *, failed: Any, enabled: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.failed = failed
        self.enabled = enabled

    def execute(self, context: Context) -> list[int]:
        from devops_automation.hooks.devlake import FAILED_STATUSES

        if not self.enabled or not self.failed:
            return []
        ids = []
        for p in self.failed:
            current = self.hook.pipeline(int(p["id"]))
            if current.get("status") in FAILED_STATUSES:
                self.hook.rerun_pipeline(int(p["id"]))
            ids.append(int(p["id"]))  # already rerun by an earlier try: watch it all the same
        return ids


class DevLakeMonitorSummaryOperator(DevLakeBaseOperator):
    """Succeeded / failed / partial / cancelled per project in the log and the run's note; a
    "recovered" message for each pipeline whose automatic rerun completed; fails the run when a
    pipeline ended failed, so the run's colour tells."""

    template_fields: Sequence[str] = ("first", "reruns", "telegram_conn_id", "slack_conn_id")

    def __init__(
        self,
        *,
        first: Any,
        reruns: Any = None,
        telegram_conn_id: str | None = "telegram_default",
        slack_conn_id: str | None = "slack_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.first = first
        self.reruns = reruns
        self.telegram_conn_id = telegram_conn_id
        self.slack_conn_id = slack_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from devops_automation.hooks.airflow_api import set_run_note
        from devops_automation.hooks.devlake import FAILED_STATUSES
        from devops_automation.notifiers import alert
        from devops_automation.sensors import devlake_alerts as msgs

        final = {str(k): dict(v) for k, v in (self.first or {}).items()}
        recovered = []
        for k, v in (self.reruns or {}).items():
            if final.get(str(k), {}).get("status") in FAILED_STATUSES and v.get("status") == "TASK_COMPLETED":
                recovered.append(v)
            final[str(k)] = dict(v)
        hook = self.hook
        projects: dict[int, str] = {}
        for p in final.values():
            bp = int(p.get("blueprint_id") or 0)
            if bp and bp not in projects:
                try:
                    projects[bp] = hook.blueprint(bp).get("projectName") or f"blueprint {bp}"
                except Exception:  # noqa: BLE001
                    projects[bp] = f"blueprint {bp}"
        ui = hook.ui_url()
        for p in recovered:
            alert(
                msgs.recovered_message(p, projects.get(int(p.get("blueprint_id") or 0)), ui),
                f"devlake:pipeline:{p['id']}:recovered",
                telegram_conn_id=self.telegram_conn_id,
                slack_conn_id=self.slack_conn_id,
                logger=self.log,
            )
        words = {
            "TASK_COMPLETED": "succeeded",
            "TASK_FAILED": "failed",
            "TASK_PARTIAL": "partial",
            "TASK_CANCELLED": "cancelled",
            "DELETED": "deleted",
        }
        per: dict[str, Counter[str]] = {}
        for p in final.values():
            name = projects.get(int(p.get("blueprint_id") or 0), p.get("name") or f"pipeline {p['id']}")
            per.setdefault(name, Counter())[words.get(p.get("status", ""), p.get("status", "?"))] += 1
        totals: Counter[str] = Counter()
        for c in per.values():
            totals.update(c)
        for name, c in sorted(per.items()):
            self.log.info("%-50s %s", name, ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
        note = (
            f"{len(final)} pipelines: "
            + ", ".join(f"{k} {v}" for k, v in sorted(totals.items()))
            + (f"; {len(recovered)} recovered by a rerun" if recovered else "")
        )
        self.log.info(note)
        set_run_note(context, note if final else "nothing was running or pending")
        failed = [name for name, c in per.items() if c.get("failed") or c.get("partial")]
        if failed:
            raise RuntimeError(
                f"{len(failed)} project(s) ended with failed pipelines: {', '.join(sorted(failed)[:10])}"
            )
        return {"projects": {k: dict(v) for k, v in per.items()}, "recovered": [p["id"] for p in recovered]}
