"""A test auth manager for the real ``airflow api-server`` of the view's tests: Airflow's
SimpleAuthManager, except that some users may not read some DAGs (a genuine 403 from the auth manager)."""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

#: user -> DAGs they may not read (the simple auth manager lets every viewer read every DAG)
DENIED: dict[str, frozenset[str]] = {
    "outsider": frozenset(
        {
            "ci_failure_triage",
            "ci_pipeline_analytics",
            "daily_project_metrics",
            "weekly_report",
            "monthly_report",
            "ci_run_action",
        }
    ),
    "partial": frozenset({"ci_failure_triage", "daily_project_metrics", "monthly_report", "ci_run_action"}),
}


class DenyingAuthManager(SimpleAuthManager):
    def is_authorized_dag(self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None) -> bool:
        if details is not None and details.id in DENIED.get(user.username, frozenset()):
            return False
        return super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)
