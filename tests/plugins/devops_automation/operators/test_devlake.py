"""The DevLake operators link to DevLake's UI (config-ui), derived from the connection."""

from __future__ import annotations

import json

import pytest

from devops_automation.operators.devlake import DevLakeProjectLink
from devops_automation.workflows.devlake_project_setup.operators import DevLakeDiscoverConnectionsOperator


@pytest.mark.parametrize(
    "conn, expected",
    [
        ({"conn_type": "http", "host": "https://devlake.example.com/api"}, "https://devlake.example.com/projects"),
        (
            {"conn_type": "http", "host": "http://devlake:8080", "extra": {"ui_url": "https://lake.example.com"}},
            "https://lake.example.com/projects",
        ),
    ],
)
def test_projects_link(monkeypatch, conn, expected) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_DEVLAKE_DEFAULT", json.dumps(conn))
    op = DevLakeDiscoverConnectionsOperator(task_id="discover_connections")
    assert DevLakeProjectLink().get_link(op, ti_key=None) == expected
    assert [link.name for link in op.operator_extra_links] == ["DevLake projects"]
