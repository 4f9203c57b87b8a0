"""Airflow plugin: the DevOps view's read API (and event stream) in the API server, at ``/devops``.

The app is :func:`devops_automation.webui.api.create_app`: ``/devops/api/v1/...`` (JSON and the
Server-Sent Events stream, every route behind Airflow's own login), ``/devops/docs`` and
``/devops/openapi.json``. It reads the results database of the ``devops_results_db`` connection.

The prefix is not one Airflow reserves (``/api/v2``, ``/ui``, ``/execution``, ``/auth``, ``/pluginsv2``)
and not a prefix of the webhook plugin's ``/devops-automation/webhooks`` (a mount matches whole path
segments, so both are reached whatever order the plugins load in). Like the webhook plugin, this module
sits at the top of ``plugins/`` because ``plugins/.airflowignore`` keeps the loader out of
``plugins/devops_automation/``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from devops_automation.webui.api import create_app

URL_PREFIX = "/devops"


class DevOpsAutomationWebUI(AirflowPlugin):
    name = "devops_automation_webui"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "devops-automation DevOps view"}
    ]
