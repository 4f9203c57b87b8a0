"""Airflow plugin: serve the GitLab webhook receiver of ``ci_failure_triage`` in the API server.

GitLab posts to ``<api-server>/devops-automation/webhooks/gitlab``; the app itself is
:mod:`devops_automation.workflows.ci_failure_triage.webhook_app` (it checks ``X-Gitlab-Token`` itself,
because plugin apps are not behind Airflow's auth). This module sits at the top level of ``plugins/`` because
``plugins/.airflowignore`` keeps the plugin loader out of ``plugins/devops_automation/``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from devops_automation.workflows.ci_failure_triage.webhook_app import create_app

URL_PREFIX = "/devops-automation/webhooks"


class DevOpsAutomationWebhooks(AirflowPlugin):
    name = "devops_automation_webhooks"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "devops-automation GitLab webhooks"}
    ]
