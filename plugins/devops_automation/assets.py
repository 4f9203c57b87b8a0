"""Assets shared between DAGs (a producer's outlet schedules its consumers)."""

from __future__ import annotations

from airflow.sdk import Asset

#: Updated by devlake_project_setup when every project is in place; schedules devlake_blueprint_monitor.
DEVLAKE_PROJECTS = Asset(name="devlake_projects", uri="devlake://projects")

#: Updated by ci_pipeline_analytics when a day's runs and figures are stored (daily_project_metrics,
#: weekly_report).
CI_RUNS = Asset(name="ci_runs", uri="devops://ci-runs")

#: Updated by daily_project_metrics when a day's figures and health scores are stored (weekly_report).
PROJECT_METRICS = Asset(name="project_metrics", uri="devops://project-metrics")


def gitlab_failure_mail(imap_conn_id: str = "imap_default") -> Asset:
    """GitLab pipeline-failure e-mails arriving in the ``imap_conn_id`` mailbox.

    Its :class:`~airflow.sdk.AssetWatcher` runs :class:`~devops_automation.triggers.imap.ImapMailTrigger`
    in the triggerer (IMAP IDLE, or polling when the server lacks it): every new message becomes
    an asset event within seconds, which schedules ``ci_failure_triage``.
    """
    from airflow.sdk import AssetWatcher

    from devops_automation.triggers.imap import ImapMailTrigger

    return Asset(
        name="gitlab_failure_mail",
        uri="imap://gitlab-failure-mail",
        watchers=[AssetWatcher(name="gitlab_failure_mailbox", trigger=ImapMailTrigger(imap_conn_id=imap_conn_id))],
    )
