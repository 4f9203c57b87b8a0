"""The plugin module: its app, its prefix (not reserved, beside the webhook plugin's), GET routes only.
That Airflow's API server mounts both plugins is shown by test_server.py against a real one."""

from __future__ import annotations

from fastapi.routing import APIRoute


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
