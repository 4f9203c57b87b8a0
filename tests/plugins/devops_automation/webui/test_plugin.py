"""The plugin module: its app, its prefix (not reserved, beside the webhook plugin's), GET routes only.
That Airflow's API server mounts both plugins is shown by test_server.py against a real one."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from fastapi.routing import APIRoute

from tests.conftest import REPO


def plugin_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "plugins")])}


def test_plugin_serves_the_view_at_devops() -> None:
    import devops_automation_webhooks as webhooks
    import devops_automation_webui as plugin_module
    from airflow.api_fastapi.app import RESERVED_URL_PREFIXES
    from airflow.plugins_manager import AirflowPlugin

    plugin = plugin_module.DevOpsAutomationWebUI
    assert issubclass(plugin, AirflowPlugin)
    assert plugin.name == "devops_automation_webui"
    [entry] = plugin.fastapi_apps
    assert entry["url_prefix"] == "/devops"
    assert not any(entry["url_prefix"].startswith(p) for p in RESERVED_URL_PREFIXES)
    # a mount matches whole segments: /devops does not take /devops-automation/webhooks/... and vice versa
    other = webhooks.DevOpsAutomationWebhooks.fastapi_apps[0]["url_prefix"]
    assert not other.startswith(entry["url_prefix"] + "/")
    assert not entry["url_prefix"].startswith(other + "/")
    app = entry["app"]
    routes = [r for r in app.routes if isinstance(r, APIRoute)]
    assert len(routes) >= 23
    assert {m for r in routes for m in r.methods} == {"GET"}  # no route writes
    assert {r.path for r in routes if r.include_in_schema} >= {"/api/v1/events", "/api/v1/failures/jobs"}


def test_external_views_put_the_view_in_airflows_ui() -> None:
    """As Airflow 3.3's UI reads them (``ExternalViewResponse``; its plugin page frames ``href`` when the entry
    has a ``url_route``; ``{DAG_ID}``/``{RUN_ID}`` are filled in for ``dag_run`` entries)."""
    import devops_automation_webui as plugin_module
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse

    nav, run = plugin_module.DevOpsAutomationWebUI.external_views
    assert ExternalViewResponse(**nav).model_dump(include={"name", "href", "destination", "url_route"}) == {
        "name": "DevOps",
        "href": "/devops/ui/",
        "destination": "nav",
        "url_route": "devops",
    }
    assert nav["nav_top_level"] is True and nav["icon"] == "/devops/static/icon.svg"
    assert ExternalViewResponse(**run).destination == "dag_run"
    assert run["href"] == "/devops/ui/dag-runs/{DAG_ID}/{RUN_ID}"
    app = plugin_module.DevOpsAutomationWebUI.fastapi_apps[0]["app"]
    paths = {r.path for r in app.routes if isinstance(r, APIRoute)}
    assert {"/ui/", "/ui/failures/{analysis_id}", "/ui/dag-runs/{dag_id}/{run_id:path}", "/static/{name}"} <= paths
    # the hrefs are routes of the app (behind the /devops mount)
    assert any(
        re.fullmatch(r.path_regex, "/ui/dag-runs/ci_failure_triage/manual__1")
        for r in app.routes
        if isinstance(r, APIRoute)
    )


def test_the_plugin_does_not_import_matplotlib() -> None:
    """Every Airflow component loads plugins: matplotlib waits for the first chart."""
    code = "import sys; import devops_automation_webui; print([m for m in sys.modules if m.startswith('matplotlib')])"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, env=plugin_env()
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
