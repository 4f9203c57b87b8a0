"""``DevLakePipelinesSensor``: a deferrable sensor that watches DevLake pipelines and alerts on failures.

It defers to :class:`~devops_automation.triggers.devlake.DevLakePipelinesTrigger` (no worker slot
while waiting). Each time the trigger reports a new failure (or a pipeline running too long), the
sensor wakes up briefly, sends one alert per pipeline (Telegram, and Slack when its connection
exists; each at most once thanks to a dedup key in the results store, so retries and cleared runs
do not alert twice) and defers again with that pipeline marked as reported. When every watched
pipeline is final it returns their final state. DevLake unreachable for ``unreachable_timeout_s``:
one alert, then the task fails. ``max_wait_s`` (templated; seconds, over all deferrals) bounds the
whole wait, and ``soft_fail`` turns giving up into a skip, as for any sensor.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


def pipeline_ids(pipelines: Any) -> list[int]:
    """Ids from a list of ints, of pipeline dicts (``id``), or a mapping id -> pipeline."""
    if not pipelines:
        return []
    if isinstance(pipelines, dict):
        return sorted(int(k) for k in pipelines)
    return sorted({int(p["id"]) if isinstance(p, dict) else int(p) for p in pipelines})


class DevLakePipelinesSensor(BaseSensorOperator):
    template_fields: Sequence[str] = (
        "pipelines",
        "poll_interval",
        "stale_after_s",
        "max_wait_s",
        "telegram_conn_id",
        "slack_conn_id",
    )

    def __init__(
        self,
        *,
        pipelines: Any,
        devlake_conn_id: str = "devlake_default",
        poll_interval: float = 60.0,
        page_size: int = 100,
        stale_after_s: float | None = None,
        unreachable_timeout_s: float = 900.0,
        telegram_conn_id: str | None = "telegram_default",
        slack_conn_id: str | None = "slack_default",
        alert: bool = True,
        max_wait_s: float | str = 6 * 3600,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_wait_s = max_wait_s
        self.pipelines = pipelines
        self.devlake_conn_id = devlake_conn_id
        self.poll_interval = poll_interval
        self.page_size = page_size
        self.stale_after_s = stale_after_s
        self.unreachable_timeout_s = unreachable_timeout_s
        self.telegram_conn_id = telegram_conn_id
        self.slack_conn_id = slack_conn_id
        self.alert = alert

    def execute(self, context: Context) -> dict[str, Any]:
        ids = pipeline_ids(self.pipelines)
        if not ids:
            self.log.info("nothing is running or pending: nothing to watch")
            return {}
        self.log.info("watching %d DevLake pipelines", len(ids))
        self._defer(ids, [], [], time.time() + float(self.max_wait_s))
        raise AssertionError("defer() raises")  # pragma: no cover

    def _defer(self, ids: list[int], known_failures: list[int], known_stale: list[int], deadline: float) -> None:
        from devops_automation.triggers.devlake import DevLakePipelinesTrigger

        remaining = max(1.0, deadline - time.time())
        trigger = DevLakePipelinesTrigger(
            pipeline_ids=ids,
            devlake_conn_id=self.devlake_conn_id,
            poll_interval=float(self.poll_interval),
            page_size=self.page_size,
            known_failures=known_failures,
            known_stale=known_stale,
            stale_after_s=float(self.stale_after_s) if self.stale_after_s else None,
            unreachable_timeout_s=self.unreachable_timeout_s,
            deadline=deadline,
        )
        self.defer(trigger=trigger, method_name="execute_complete", timeout=dt.timedelta(seconds=remaining))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        state = event.get("state") or {}
        ids, deadline = (
            state.get("pipeline_ids") or [],
            float(state.get("deadline") or time.time() + float(self.max_wait_s)),
        )
        known_failures, known_stale = list(state.get("known_failures") or []), list(state.get("known_stale") or [])
        status = event.get("status")
        pipelines = event.get("pipelines") or {}
        if status == "error":
            self._send(context, "unreachable", None, event.get("message", ""))
            raise RuntimeError(event.get("message", "DevLake unreachable"))
        if status == "failure":
            for pid in event["new_failures"]:
                self._send(context, "failure", pipelines[str(pid)])
            self._defer(ids, sorted({*known_failures, *event["new_failures"]}), known_stale, deadline)
        if status == "stale":
            for pid in event["new_stale"]:
                self._send(context, "stale", pipelines[str(pid)])
            self._defer(ids, known_failures, sorted({*known_stale, *event["new_stale"]}), deadline)
        if status != "done":
            raise ValueError(f"unexpected trigger event {event!r}")
        self.log.info(
            "all %d pipelines are final (%d polls' requests in the last deferral)", len(ids), event.get("requests", 0)
        )
        return pipelines

    # -- alerts ----------------------------------------------------------------------------------
    def _send(self, context: Context, kind: str, pipeline: dict[str, Any] | None, detail: str = "") -> None:
        if not self.alert:
            return
        from devops_automation.notifiers import alert
        from devops_automation.sensors import devlake_alerts as msgs

        hook = self._hook()
        ui = hook.ui_url()
        if kind == "unreachable":
            text, key = (
                msgs.unreachable_message(context["run_id"], detail),
                f"devlake:unreachable:{context['dag'].dag_id}:{context['run_id']}",
            )
        else:
            assert pipeline is not None
            project = self._project(hook, pipeline)
            if kind == "failure":
                tasks = [t for t in hook.pipeline_tasks(int(pipeline["id"])) if t.get("status") == "TASK_FAILED"]
                text = msgs.failure_message(pipeline, project, tasks, ui)
                key = f"devlake:pipeline:{pipeline['id']}:{pipeline.get('status')}:{pipeline.get('finished_at')}"
            else:
                text = msgs.stale_message(pipeline, project, float(self.stale_after_s or 0) / 60, ui)
                key = f"devlake:pipeline:{pipeline['id']}:stale"
        alert(text, key, telegram_conn_id=self.telegram_conn_id, slack_conn_id=self.slack_conn_id, logger=self.log)

    def _hook(self) -> Any:
        from devops_automation.hooks.devlake import DevLakeHook

        return DevLakeHook(self.devlake_conn_id)

    @staticmethod
    def _project(hook: Any, pipeline: dict[str, Any]) -> str | None:
        if not pipeline.get("blueprint_id"):
            return None
        try:
            return hook.blueprint(int(pipeline["blueprint_id"])).get("projectName") or None
        except Exception:  # noqa: BLE001 - the alert goes out without the project name
            return None
