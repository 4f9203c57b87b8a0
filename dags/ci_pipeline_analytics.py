"""
### CI pipeline analytics

Every GitHub Actions run and GitLab pipeline of the data interval, **every attempt**, into the results
database; the figures of `../shared/api/ci-analytics-definitions.md` per repository × workflow × branch
× day; alert rules that fire once when a condition starts and once when it resolves.

**Schedule**: daily, one UTC day per run (a real data interval), so
`airflow dags backfill -s 2026-09-01 -e 2026-11-30 ci_pipeline_analytics` rebuilds a quarter with the
same rows the daily runs wrote. A backfill records alerts in the history but never pages.

1. **plan_github** / **plan_gitlab**: GitHub repositories (Param, org, or the Variable `ci_pipeline_analytics_sources`)
   and GitLab projects (Param or a group, subgroups included). A missing connection skips that half.
2. **collect_github** / **collect_gitlab** (mapped per repository, pools `github_api` / `gitlab_api`):
   runs created (GitHub) or pipelines updated (GitLab) in the interval and `lookback_days` before it,
   each attempt with its jobs, retried jobs, child pipelines and deployments (with the commits they
   added). Conditional requests make looking back nearly free; a long GitHub rate-limit wait defers
   the task until the reset. One repository failing does not stop the others.
3. **figures**: `ci_daily` recomputed for every day whose runs changed; `http_cache` entries older than the
   interval's start minus `lookback_days` + 2 days purged.
4. **alerts**: `include/config/alert_rules.yaml` evaluated; each start and resolve sent once per channel.
5. **summary**: the run note (sources, runs, success rate, alerts); fails naming the sources that failed.

Updates the asset `devops://ci-runs` (for `daily_project_metrics` and `weekly_report`).
"""

from __future__ import annotations

from airflow.sdk import DAG, CronDataIntervalTimetable, Param

from devops_automation.assets import CI_RUNS
from devops_automation.dag_defaults import START_DATE, default_args
from devops_automation.workflows.ci_pipeline_analytics.operators import (
    CIAlertsOperator,
    CICollectOperator,
    CIFiguresOperator,
    CIPlanSourcesOperator,
    CISummaryOperator,
)

with DAG(
    dag_id="ci_pipeline_analytics",
    description="GitHub Actions and GitLab runs, every attempt, per day: success, duration, queue, MTTR, flaky, DORA",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=4,
    render_template_as_native_obj=True,
    tags=["github", "gitlab", "ci", "devops-automation"],
    default_args=default_args(retry_minutes=2),
    params={
        "github_repos": Param(
            [], type="array", title="GitHub repositories", description="owner/name of each repository (github_default)."
        ),
        "github_org": Param(
            "", type="string", title="GitHub organisation", description="Every repository of this org."
        ),
        "gitlab_projects": Param(
            [],
            type="array",
            title="GitLab projects",
            description="Project ids or paths (group/project) (gitlab_default).",
        ),
        "gitlab_group": Param(
            "", type="string", title="GitLab group", description="Every project of this group, subgroups included."
        ),
        "lookback_days": Param(
            7,
            type="integer",
            minimum=0,
            maximum=30,
            title="Look back (days)",
            description="Runs created this many days before the interval are looked at again for new attempts.",
        ),
        "environments": Param(
            r"(?i)^(prod|production)$",
            type="string",
            title="Deployment environments",
            description="Regex on the environment name: the deployments that count for DORA.",
        ),
        "alert_rules": Param(
            "include/config/alert_rules.yaml",
            type="string",
            title="Alert rules file",
            description="Relative to the project root (the parent of the dags folder), or absolute.",
        ),
        "page": Param(
            True, type="boolean", title="Send alerts", description="Send alert messages (a backfill never does)."
        ),
    },
) as dag:
    github_sources = CIPlanSourcesOperator(
        task_id="plan_github", provider="github", names="{{ params.github_repos }}", group="{{ params.github_org }}"
    )
    gitlab_sources = CIPlanSourcesOperator(
        task_id="plan_gitlab",
        provider="gitlab",
        names="{{ params.gitlab_projects }}",
        group="{{ params.gitlab_group }}",
    )
    sources = [github_sources.output, gitlab_sources.output]
    collect_args = {
        "lookback_days": "{{ params.lookback_days }}",
        "environments": "{{ params.environments }}",
        # the source's name as a quoted string: rendered natively, a bare GitLab id 2003 would be an int,
        # which Airflow cannot take as a map index label
        "map_index_template": "{{ task.source | string | tojson }}",
    }
    github = CICollectOperator.partial(
        task_id="collect_github",
        provider="github",
        pool="github_api",
        **collect_args,
    ).expand(source=github_sources.output)
    gitlab = CICollectOperator.partial(
        task_id="collect_gitlab",
        provider="gitlab",
        pool="gitlab_api",
        **collect_args,
    ).expand(source=gitlab_sources.output)
    figures = CIFiguresOperator(
        task_id="figures",
        collected=[github.output, gitlab.output],
        environments="{{ params.environments }}",
        lookback_days="{{ params.lookback_days }}",  # http_cache entries older than the lookback are purged
        trigger_rule="all_done",
    )
    alerts = CIAlertsOperator(
        task_id="alerts",
        rules_path="{{ params.alert_rules }}",
        collected=[github.output, gitlab.output],
        sources=sources,
        page="{{ params.page }}",
        trigger_rule="all_done",  # a failed repository holds its own alerts open; the others are evaluated
    )
    summary = CISummaryOperator(
        task_id="summary",
        sources=sources,
        collected=[github.output, gitlab.output],
        figures=figures.output,
        alerts=alerts.output,
        trigger_rule="all_done",
        outlets=[CI_RUNS],
    )
    figures >> alerts
