"""
### DevLake project setup

Turns every repository (or board) in the connected GitHub, GitLab, Bitbucket, Jira and Azure DevOps
accounts into an Apache DevLake project, with no manual list, and never creates anything twice.

1. **discover_connections**: every connection of the data-source plugins DevLake has loaded.
2. **sync_scopes** (one task per connection, pool `devlake_api`): new remote repositories become
   DevLake scopes (include/exclude patterns from the Params); a scope config with the DORA patterns
   is created when the connection has none and attached to scopes that have none.
3. **plan_projects**: a unique, stable project name per repository (template from the Params;
   collisions get `-<plugin>-<connection id>`), batched for the next step.
4. **ensure_projects** (one task per batch, pool `devlake_api`): project with DORA enabled, its
   blueprint holding exactly that repository's scope (connections added by hand are kept),
   `isManual`, a linked webhook connection (its API key in a masked Variable
   `devlake_webhook_secret_<project>`), and `timeAfter` = the Saturday 00:00 before the run's
   logical date in the chosen time zone.
5. **summary**: created / updated / unchanged / failed per connection in the log; a Telegram message
   (`telegram_default`) only when something failed, once per run; the blueprints triggered when asked;
   on success the asset `devlake://projects` is updated, which schedules `devlake_blueprint_monitor`.

A second run against an unchanged DevLake makes no write calls; a retried task completes what the
first try left undone. **Dry run** plans only and logs every change it would make.
Connection: `devlake_default` (host = DevLake URL, password = optional API key).
"""

from __future__ import annotations

from airflow.sdk import DAG, Param

from devops_automation.assets import DEVLAKE_PROJECTS
from devops_automation.dag_defaults import START_DATE, default_args
from devops_automation.workflows.devlake_project_setup.operators import (
    DevLakeDiscoverConnectionsOperator,
    DevLakeEnsureProjectsOperator,
    DevLakePlanProjectsOperator,
    DevLakeSetupSummaryOperator,
    DevLakeSyncScopesOperator,
)

with DAG(
    dag_id="devlake_project_setup",
    description="Create and update DevLake projects and blueprints for every repository",
    doc_md=__doc__,
    schedule="0 3 * * *",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    tags=["devlake", "devops-automation"],
    default_args=default_args(retry_minutes=1),
    params={
        "plugins": Param(
            ["github", "gitlab", "bitbucket", "jira", "azuredevops_go"],
            type="array",
            description=(
                "DevLake plugins whose connections are set up (github, gitlab, bitbucket, jira, azuredevops_go)."
            ),
        ),
        "include": Param(
            [],
            type="array",
            description="Regexes; when given, only repositories whose full name matches one are set up.",
        ),
        "exclude": Param(
            [], type="array", description="Regexes; repositories whose full name matches one are skipped."
        ),
        "dry_run": Param(
            False, type="boolean", description="Plan only: log every change that would be made, write nothing."
        ),
        "project_name_template": Param(
            "{full_name}",
            type="string",
            description="Project name template. Fields: {full_name} {name} {plugin} {connection} {connection_id} "
            "{scope_id}. '/' becomes '-', names are cut to 100 characters.",
        ),
        "time_after_weekday": Param(
            "saturday",
            enum=["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
            description="Each blueprint collects data from this weekday 00:00 before the run's logical date.",
        ),
        "timezone": Param(
            "UTC", type="string", description="IANA time zone of that midnight, e.g. UTC or Europe/Berlin."
        ),
        "is_manual": Param(
            True,
            type="boolean",
            description="Blueprints run only when triggered (Airflow schedules them, not DevLake's cron).",
        ),
        "trigger_blueprints": Param(
            False, type="boolean", description="Trigger every blueprint once the setup is done."
        ),
        "deployment_pattern": Param(
            "(?i)(deploy|release)",
            type="string",
            description="DORA: CI job/workflow names that are deployments (Go RE2).",
        ),
        "production_pattern": Param(
            "(?i)prod", type="string", description="DORA: which deployments are production (Go RE2)."
        ),
        "batch_size": Param(
            25, type="integer", minimum=1, maximum=500, description="Repositories per ensure_projects task."
        ),
    },
) as dag:
    connections = DevLakeDiscoverConnectionsOperator(task_id="discover_connections", plugins="{{ params.plugins }}")
    synced = DevLakeSyncScopesOperator.partial(
        task_id="sync_scopes",
        pool="devlake_api",
        include="{{ params.include }}",
        exclude="{{ params.exclude }}",
        dora_patterns={
            "deploymentPattern": "{{ params.deployment_pattern }}",
            "productionPattern": "{{ params.production_pattern }}",
        },
        dry_run="{{ params.dry_run }}",
        map_index_template="{{ task.connection['plugin'] }}#{{ task.connection['connection_id'] }}",
    ).expand(connection=connections.output)
    batches = DevLakePlanProjectsOperator(
        task_id="plan_projects",
        synced=synced.output,
        name_template="{{ params.project_name_template }}",
        batch_size="{{ params.batch_size }}",
        trigger_rule="all_done",
    )
    ensured = DevLakeEnsureProjectsOperator.partial(
        task_id="ensure_projects",
        pool="devlake_api",
        is_manual="{{ params.is_manual }}",
        time_after_weekday="{{ params.time_after_weekday }}",
        timezone="{{ params.timezone }}",
        dry_run="{{ params.dry_run }}",
    ).expand(batch=batches.output)
    summary = DevLakeSetupSummaryOperator(
        task_id="summary",
        connections=connections.output,
        synced=synced.output,
        batches=batches.output,
        reports=ensured.output["report"],
        trigger_blueprints="{{ params.trigger_blueprints }}",
        dry_run="{{ params.dry_run }}",
        trigger_rule="all_done",
        outlets=[DEVLAKE_PROJECTS],
    )
