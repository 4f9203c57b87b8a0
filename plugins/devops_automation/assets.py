"""Assets shared between DAGs (a producer's outlet schedules its consumers)."""

from __future__ import annotations

from airflow.sdk import Asset

#: Updated by devlake_project_setup when every project is in place; schedules devlake_blueprint_monitor.
DEVLAKE_PROJECTS = Asset(name="devlake_projects", uri="devlake://projects")
