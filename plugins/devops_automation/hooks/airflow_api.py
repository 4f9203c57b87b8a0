"""Airflow's own public REST API (connection ``airflow_api``), for what a task cannot do otherwise.

Tasks in Airflow 3 have no database access and the Task SDK cannot set a DAG run's note, so the
DAGs that end with a summary write it as the run's note through ``PATCH /api/v2/dags/{dag_id}/
dagRuns/{run_id}``. Connection: type ``http``; host = the API server's base URL
(``http://airflow-apiserver:8080``); login/password = a user allowed to edit DAG runs (a token is
fetched from ``POST /auth/token``, which the simple and FAB auth managers both serve). Without the
connection the note is skipped with a log line: the summary is in the task log anyway.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from devops_automation.hooks.api import ApiHook

if TYPE_CHECKING:
    from airflow.sdk import Connection, Context

log = logging.getLogger(__name__)
NOTE_LIMIT = 1000  # the API's max_length for notes


class AirflowApiHook(ApiHook):
    conn_name_attr = "airflow_api_conn_id"
    default_conn_name = "airflow_api"
    conn_type = "http"
    hook_name = "Airflow REST API"
    system = "Airflow API"
    test_path = "/api/v2/version"
    default_max_retries = 2

    def __init__(self, airflow_api_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(airflow_api_conn_id, **kwargs)
        self.airflow_api_conn_id = airflow_api_conn_id

    def auth_headers(self, conn: Connection) -> dict[str, str]:
        if not conn.login:
            return {}
        import requests

        response = requests.post(
            f"{self.base_url.rstrip('/')}/auth/token",
            json={"username": conn.login, "password": conn.password or ""},
            timeout=self.timeout,
        )
        if response.status_code >= 400:
            raise PermissionError(f"Airflow API login as {conn.login!r} failed: HTTP {response.status_code}")
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def set_dag_run_note(self, dag_id: str, run_id: str, note: str) -> None:
        if len(note) > NOTE_LIMIT:
            note = note[: NOTE_LIMIT - 2] + " …"
        self.request_json(
            "PATCH", f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}", json={"note": note}
        )


def set_run_note(context: Context, note: str, conn_id: str = AirflowApiHook.default_conn_name) -> bool:
    """Write ``note`` as the current DAG run's note; False (logged) when it could not be done."""
    from devops_automation.hooks import connection_exists

    if not connection_exists(conn_id):
        log.info("No connection %r: the summary stays in the task log, not in the run's note", conn_id)
        return False
    try:
        AirflowApiHook(conn_id).set_dag_run_note(context["dag"].dag_id, context["run_id"], note)
    except Exception as exc:  # noqa: BLE001 - a missing note must not fail the run
        log.warning("Could not set the run's note through %r: %s", conn_id, exc)
        return False
    return True
