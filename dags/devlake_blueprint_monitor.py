"""
### DevLake blueprint monitor

Runs the DevLake blueprints that should run, watches every running or pending pipeline at almost no
cost, speaks only when something failed, and ends by itself when nothing is left running.

1. **start_pipelines**: triggers the blueprints (all, or projects matching a pattern, or none —
   only watch); a blueprint that already has a pending pipeline has it adopted, not re-triggered.
2. **watch** (deferrable, in the triggerer: no worker slot while waiting): one paged look at
   DevLake's pipeline list per poll, however many blueprints. Each failed or partial pipeline is
   alerted at once (Telegram `telegram_default`; Slack `slack_default` too when it exists) — one
   message per pipeline with project, blueprint, failed task, error, duration and a link — never
   twice for the same failure. A pipeline running longer than the stale threshold is reported once.
   DevLake unreachable longer than the limit: one alert, then the task fails.
3. **collect_failures**: the failed pipelines with their failed tasks (plugin, subtask, error).
4. **rerun_failed** (Param): one automatic rerun of each failed pipeline, **watch_reruns** watches
   them; a rerun that completes gets a "recovered" message.
5. **summary**: succeeded / failed / partial / cancelled per project in the log and the run's note;
   the run fails when a pipeline ended failed.

Scheduled daily at 06:00 UTC and whenever `devlake_project_setup` updates `devlake://projects`.
"""

from __future__ import annotations

from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable, Param

from devops_automation.assets import DEVLAKE_PROJECTS
from devops_automation.dag_defaults import START_DATE, default_args
from devops_automation.sensors.devlake import DevLakePipelinesSensor
from devops_automation.workflows.devlake_blueprint_monitor.operators import (
    DevLakeCollectFailuresOperator,
    DevLakeMonitorSummaryOperator,
    DevLakeRerunFailedOperator,
    DevLakeStartPipelinesOperator,
)

with DAG(
    dag_id="devlake_blueprint_monitor",
    description="Run DevLake blueprints, watch their pipelines, alert on failures only",
    doc_md=__doc__,
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 6 * * *", timezone="UTC"), assets=[DEVLAKE_PROJECTS]
    ),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    tags=["devlake", "devops-automation"],
    default_args=default_args(retry_minutes=2),
    params={
        "trigger": Param(
            "all",
            enum=["all", "pattern", "none"],
            description=(
                "Which blueprints to start: all, projects matching the pattern, or none (only watch what runs)."
            ),
        ),
        "project_pattern": Param(
            "", type="string", description="Regex on the project name, used when trigger = pattern."
        ),
        "skip_collectors": Param(
            False, type="boolean", description="Re-transform existing data only (DevLake skipCollectors)."
        ),
        "full_sync": Param(
            False,
            type="boolean",
            description="Collect everything again, ignoring incremental state (DevLake fullSync).",
        ),
        "rerun_failed": Param(
            True, type="boolean", description="Rerun each failed pipeline once automatically and watch it again."
        ),
        "stale_after_minutes": Param(
            180,
            type="integer",
            minimum=1,
            description="Report a pipeline still running after this many minutes (once).",
        ),
        "poll_interval_seconds": Param(
            60, type="integer", minimum=1, description="How often the watcher looks at DevLake's pipeline list."
        ),
        "timeout_hours": Param(
            12, type="number", minimum=0.1, description="Give up watching after this long (the task fails)."
        ),
    },
) as dag:
    started = DevLakeStartPipelinesOperator(
        task_id="start_pipelines",
        mode="{{ params.trigger }}",
        project_pattern="{{ params.project_pattern }}",
        skip_collectors="{{ params.skip_collectors }}",
        full_sync="{{ params.full_sync }}",
        pool="devlake_api",
    )
    watch_args = {
        "poll_interval": "{{ params.poll_interval_seconds }}",
        "stale_after_s": "{{ params.stale_after_minutes * 60 }}",
        "max_wait_s": "{{ params.timeout_hours * 3600 }}",
    }
    watched = DevLakePipelinesSensor(task_id="watch", pipelines=started.output, **watch_args)
    failures = DevLakeCollectFailuresOperator(task_id="collect_failures", pipelines=watched.output)
    reruns = DevLakeRerunFailedOperator(
        task_id="rerun_failed", failed=failures.output, enabled="{{ params.rerun_failed }}"
    )
    rewatched = DevLakePipelinesSensor(task_id="watch_reruns", pipelines=reruns.output, **watch_args)
    summary = DevLakeMonitorSummaryOperator(task_id="summary", first=watched.output, reruns=rewatched.output)
