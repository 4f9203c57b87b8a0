"""Airflow plugin: the DevOps view in the API server, at ``/devops``: pages, read API and event stream.

The app is :func:`devops_automation.webui.pages.create_view_app`: the pages under ``/devops/ui/`` (HTML,
their charts, and ``/devops/static/`` for the stylesheet, script and icon: nothing from a CDN),
``/devops/api/v1/...`` (JSON and the Server-Sent Events stream, every route behind Airflow's own login),
``/devops/docs`` and ``/devops/openapi.json``. It reads the results database of the ``devops_results_db``
connection.

**In Airflow's UI** (``external_views``, Airflow 3.3: ``airflow/ui``'s plugin page renders an entry with a
``url_route`` as an iframe of its ``href``, same origin, so the UI's login cookie goes with it):

* ``DevOps``: a top-level entry of the navigation (``destination: nav``, ``nav_top_level``) opening the
  overview at ``/plugin/devops``; the pages' own links move within the frame (the UI mirrors the frame's
  path in its address, so a page can be bookmarked);
* ``Failure analyses``: a tab of every DAG run page (``destination: dag_run``; the UI fills in
  ``{DAG_ID}`` and ``{RUN_ID}``, URL-encoded), showing the pipelines and jobs a ``ci_failure_triage`` run
  analysed (other DAGs' runs show a note: Airflow cannot limit a tab to one DAG).

The prefix is not one Airflow reserves (``/api/v2``, ``/ui``, ``/execution``, ``/auth``, ``/pluginsv2``)
and not a prefix of the webhook plugin's ``/devops-automation/webhooks`` (a mount matches whole path
segments, so both are reached whatever order the plugins load in). Hrefs start with the path of
``[api] base_url`` (``/`` by default), where the API server mounts plugin apps. Like the webhook plugin,
this module sits at the top of ``plugins/`` because ``plugins/.airflowignore`` keeps the loader out of
``plugins/devops_automation/``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from devops_automation.webui.airflow_links import airflow_root
from devops_automation.webui.pages import create_view_app

URL_PREFIX = "/devops"
_BASE = airflow_root() + URL_PREFIX.lstrip("/")


class DevOpsAutomationWebUI(AirflowPlugin):
    name = "devops_automation_webui"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": create_view_app(), "url_prefix": URL_PREFIX, "name": "devops-automation DevOps view"}
    ]
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "DevOps",
            "href": f"{_BASE}/ui/",
            "destination": "nav",
            "url_route": "devops",
            "nav_top_level": True,
            "icon": f"{_BASE}/static/icon.svg",
        },
        {
            "name": "Failure analyses",
            "href": f"{_BASE}/ui/dag-runs/{{DAG_ID}}/{{RUN_ID}}",
            "destination": "dag_run",
            "url_route": "devops-failure-analyses",
            "icon": f"{_BASE}/static/icon.svg",
        },
    ]
