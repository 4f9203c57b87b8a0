"""
### Monthly report

The month's engineering report (`ci-analytics-definitions.md` §6): CI runs and success rate, durations
and queue, MTTR and red branches, flaky jobs and re-run minutes, failure categories and recurring
fingerprints, DORA, PRs and issues, health scores and movers, alerts fired; each figure with its change
against the previous month and an 8-month sparkline. Markdown, e-mail-safe HTML and chart PNGs.

**Schedule**: the 1st 00:00 → the next 1st 00:00 (`DEVOPS_AUTOMATION_REPORT_TIMEZONE`, default UTC), one
month per run; `airflow dags backfill -s 2026-06-01 -e 2026-11-30 monthly_report` rebuilds past months
from the store (the same bytes when the data did not change) and sends nothing.

0. **wait_for_ci_pipeline_analytics / wait_for_daily_project_metrics**: a scheduled run waits, deferred
   (up to 6 h), until those DAGs' runs of the month's last day have finished; manual runs and backfills
   do not wait.
1. **build**: figures → Markdown/HTML/PNGs → the archive (`<archive>/<month>/`) and the `reports` row.
2. **deliver_slack / deliver_telegram / deliver_email**: each once per month (Param `resend`: again);
   a missing connection skips that channel; one failing does not stop the others.
3. **summary**: the run note; fails naming a channel that failed (the next run sends it).
"""

from __future__ import annotations

from airflow.sdk import DAG, CronDataIntervalTimetable

from devops_automation.assets import CI_RUNS, PROJECT_METRICS
from devops_automation.dag_defaults import REPORT_TIMEZONE, START_DATE, default_args
from devops_automation.workflows.weekly_report.operators import report_params, wire

with DAG(
    dag_id="monthly_report",
    description="The month's engineering report with charts, to Slack, Telegram, e-mail and an archive",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("0 0 1 * *", timezone=REPORT_TIMEZONE),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    tags=["report", "devops-automation"],
    default_args=default_args(retry_minutes=5),
    params=report_params(),
) as dag:
    wire("month", inlets=[CI_RUNS, PROJECT_METRICS])
