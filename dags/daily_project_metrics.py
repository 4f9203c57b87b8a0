"""
### Daily project metrics

Each project of `include/config/projects.yaml` gets, per day, its figures from GitHub, Prometheus,
SonarQube and the CI tables of `ci_pipeline_analytics` (one row per day × source × project × metric
in `project_metrics`), a health score 0–100 with its inputs (`health_scores`, weights and thresholds
in `include/config/health.yaml`), threshold alerts that fire once and resolve once, and, opt-in, an
issue per critical breach.

**Schedule**: daily, one UTC day per run (a real data interval). Prometheus is asked at the
interval's end, SonarQube's measure history and GitHub's timestamps give what the day was, so
`airflow dags backfill -s 2026-11-01 -e 2026-11-30 daily_project_metrics` rebuilds past days; a
backfill records figures, scores and alert history but sends nothing and opens no issue.

1. **plan**, **plan_github / plan_prometheus / plan_sonarqube**: check both files (a mistake fails
   here naming file, line and field) and list the projects of each source; a source whose connection
   is not defined is skipped.
2. **collect_github / collect_prometheus / collect_sonarqube** (mapped per project, pools
   `github_api`, `prometheus_api`, `sonarqube_api`; extra link to the project on the source) and
   **ci** (the CI figures over `ci_window_days`). One project failing does not stop the others.
3. **health**: the score of each project from every figure of the day.
4. **alerts**: `health.yaml`'s thresholds; messages to its `alerts` routes; issues when `open_issues`.
5. **summary**: the run note (each project's score, the alerts); fails naming what failed.

Reads the asset `devops://ci-runs`; updates `devops://project-metrics` (for `weekly_report`).
"""

from __future__ import annotations

from airflow.sdk import DAG, CronDataIntervalTimetable, Param

from devops_automation.assets import CI_RUNS, PROJECT_METRICS
from devops_automation.dag_defaults import START_DATE, default_args
from devops_automation.workflows.daily_project_metrics.operators import (
    MetricsAlertsOperator,
    MetricsCIOperator,
    MetricsCollectOperator,
    MetricsHealthOperator,
    MetricsPlanOperator,
    MetricsSummaryOperator,
)

with DAG(
    dag_id="daily_project_metrics",
    description="GitHub, Prometheus, SonarQube and CI figures per project per day; health scores; threshold alerts",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=4,
    render_template_as_native_obj=True,
    tags=["github", "prometheus", "sonarqube", "health", "devops-automation"],
    default_args=default_args(retry_minutes=2),
    params={
        "projects_file": Param(
            "include/config/projects.yaml",
            type="string",
            title="Projects file",
            description="Relative to the project root (the parent of the dags folder), or absolute.",
        ),
        "health_file": Param(
            "include/config/health.yaml",
            type="string",
            title="Health file",
            description="Sub-score weights, alert thresholds and routes. Relative to the project root, or absolute.",
        ),
        "projects": Param(
            [],
            type="array",
            title="Projects",
            description="Only these projects of the file (names); empty = every project.",
        ),
        "ci_window_days": Param(
            7,
            type="integer",
            minimum=1,
            maximum=90,
            title="CI window (days)",
            description="CI figures (success rate, MTTR, flaky jobs, DORA) over this many days to the interval's end.",
        ),
        "open_issues": Param(
            False,
            type="boolean",
            title="Open issues",
            description="A critical breach opens one issue per project and threshold; closed on recovery.",
        ),
        "page": Param(
            True, type="boolean", title="Send alerts", description="Send alert messages (a backfill never does)."
        ),
    },
) as dag:
    files = {"projects_file": "{{ params.projects_file }}", "health_file": "{{ params.health_file }}"}
    plan = MetricsPlanOperator(task_id="plan", only="{{ params.projects }}", **files)
    plans, collected = [], []
    for source, pool in (("github", "github_api"), ("prometheus", "prometheus_api"), ("sonarqube", "sonarqube_api")):
        planned = MetricsPlanOperator(task_id=f"plan_{source}", source=source, only="{{ params.projects }}", **files)
        plans.append(planned.output)
        collected.append(
            MetricsCollectOperator.partial(
                task_id=f"collect_{source}",
                source=source,
                projects_file="{{ params.projects_file }}",
                pool=pool,
                map_index_template="{{ task.project }}",
            ).expand(project=planned.output)
        )
    ci = MetricsCIOperator(
        task_id="ci",
        projects=plan.output,
        projects_file="{{ params.projects_file }}",
        window_days="{{ params.ci_window_days }}",
        inlets=[CI_RUNS],
    )
    health = MetricsHealthOperator(
        task_id="health",
        projects=plan.output,
        projects_file="{{ params.projects_file }}",
        health_file="{{ params.health_file }}",
        trigger_rule="all_done",  # a failed source lowers no score: its figures are "no data"
    )
    alerts = MetricsAlertsOperator(
        task_id="alerts",
        projects=plan.output,
        projects_file="{{ params.projects_file }}",
        health_file="{{ params.health_file }}",
        page="{{ params.page }}",
        open_issues="{{ params.open_issues }}",
        trigger_rule="all_done",
    )
    summary = MetricsSummaryOperator(
        task_id="summary",
        projects=plans,
        collected=[c.output for c in collected],
        ci=ci.output,
        health=health.output,
        alerts=alerts.output,
        trigger_rule="all_done",
        outlets=[PROJECT_METRICS],
    )
    [*collected, ci] >> health >> alerts
