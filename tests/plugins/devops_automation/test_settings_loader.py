"""airflow_settings.yaml: the shipped file, validation with line and field, idempotent apply."""

from __future__ import annotations

import textwrap

import pytest

from devops_automation.settings_loader import SettingsError, apply_settings, load_settings, main, parse_settings
from tests.conftest import REPO

REQUIRED_CONNECTIONS = {
    "devlake_default",
    "gitlab_default",
    "github_default",
    "imap_default",
    "llm_default",
    "slack_default",
    "telegram_default",
    "smtp_default",
    "prometheus_default",
    "sonarqube_default",
    "devops_results_db",
    "airflow_api",
    "gitlab_webhook",
}


def test_shipped_file_lists_every_connection_and_a_pool_per_api() -> None:
    settings = load_settings(REPO / "airflow_settings.yaml", env={})
    assert {c.conn_id for c in settings.connections} == REQUIRED_CONNECTIONS
    assert {p.name for p in settings.pools} >= {
        "devlake_api",
        "gitlab_api",
        "github_api",
        "llm_api",
        "slack_api",
        "telegram_api",
    }
    by_id = {c.conn_id: c for c in settings.connections}
    assert by_id["gitlab_default"].host == "http://127.0.0.1:8900/gitlab"  # sandbox default
    assert by_id["imap_default"].port == 8143
    assert by_id["imap_default"].extra["use_ssl"] is False
    assert by_id["telegram_default"].host == "-1001234567890"


def test_environment_references_are_expanded() -> None:
    settings = load_settings(
        REPO / "airflow_settings.yaml",
        env={"SANDBOX_URL": "http://sb:9", "IMAP_PORT": "993", "GITLAB_TOKEN": "glpat-real"},
    )
    by_id = {c.conn_id: c for c in settings.connections}
    assert by_id["gitlab_default"].host == "http://sb:9/gitlab"
    assert by_id["gitlab_default"].password == "glpat-real"
    assert by_id["imap_default"].port == 993
    assert by_id["slack_default"].extra["base_url"] == "http://sb:9/slack/api/"


BAD = {
    "unknown field": (
        """
        airflow:
          connections:
            - conn_id: a
              conn_type: http
              conn_hots: example.test
        """,
        6,
        "airflow.connections[0].conn_hots",
        "unknown field",
    ),
    "port not an integer": (
        """
        airflow:
          connections:
            - conn_id: a
              conn_type: http
              conn_port: https
        """,
        6,
        "airflow.connections[0].conn_port",
        "expected an integer, got 'https'",
    ),
    "missing conn_type": (
        """
        airflow:
          connections:
            - conn_id: ok
              conn_type: http
            - conn_id: b
              conn_host: example.test
        """,
        6,
        "airflow.connections[1].conn_type",
        "missing",
    ),
    "duplicate id": (
        """
        airflow:
          connections:
            - conn_id: a
              conn_type: http
            - conn_id: a
              conn_type: http
        """,
        6,
        "airflow.connections[1].conn_id",
        "duplicate 'a' (first at line 4)",
    ),
    "extra is bad JSON": (
        """
        airflow:
          connections:
            - conn_id: a
              conn_type: http
              conn_extra: '{"timeout": 30,}'
        """,
        6,
        "airflow.connections[0].conn_extra",
        "not valid JSON",
    ),
    "uri and fields": (
        """
        airflow:
          connections:
            - conn_id: a
              conn_uri: http://x
              conn_host: y
        """,
        4,
        "airflow.connections[0].conn_uri",
        "either conn_uri or the separate fields",
    ),
    "pool without slots": (
        """
        airflow:
          pools:
            - pool_name: p
              pool_description: d
        """,
        4,
        "airflow.pools[0].pool_slot",
        "required",
    ),
    "variable value a list": (
        """
        airflow:
          variables:
            - variable_name: v
              variable_value: [1, 2]
        """,
        5,
        "airflow.variables[0].variable_value",
        "expected a string",
    ),
    "unknown section": (
        """
        airflow:
          conections: []
        """,
        3,
        "airflow.conections",
        "unknown section",
    ),
    "section not a list": (
        """
        airflow:
          pools:
            pool_name: p
        """,
        4,
        "airflow.pools",
        "expected a list",
    ),
    "unset environment variable": (
        """
        airflow:
          variables:
            - variable_name: v
              variable_value: ${NOT_SET_ANYWHERE}
        """,
        5,
        "airflow.variables[0].variable_value",
        "NOT_SET_ANYWHERE is not set",
    ),
    "broken yaml": (
        """
        airflow:
          pools:
            - pool_name: [unclosed
        """,
        5,
        "(yaml)",
        "",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_file_names_line_and_field(case: str) -> None:
    text, line, where, problem = BAD[case]
    with pytest.raises(SettingsError) as exc:
        parse_settings("\n" + textwrap.dedent(text).lstrip("\n"), env={})
    err = exc.value
    assert (err.line, err.where) == (line, where), str(err)
    assert problem in err.problem
    assert str(err).startswith(f"airflow_settings.yaml:{line}: {where}: ")


def test_cli_check_reports_error_and_exit_code(tmp_path, capsys) -> None:
    bad = tmp_path / "airflow_settings.yaml"
    bad.write_text("airflow:\n  pools:\n    - pool_name: p\n      pool_slot: many\n")
    assert main([str(bad), "--check"]) == 2
    assert (
        "airflow_settings.yaml:4: airflow.pools[0].pool_slot: expected an integer, got 'many'"
        in capsys.readouterr().err
    )


@pytest.mark.slow
def test_apply_is_idempotent(airflow_db) -> None:
    from airflow.models import Connection, Pool, Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    settings = load_settings(REPO / "airflow_settings.yaml", env={})
    first = apply_settings(settings)
    assert first["connections"]["created"] + first["connections"]["updated"] + first["connections"]["unchanged"] == len(
        REQUIRED_CONNECTIONS
    )

    def snapshot() -> tuple:
        with create_session() as s:
            conns = sorted(
                (c.conn_id, c.conn_type, c.host, c.port, c.login, c.password, c.extra)
                for c in s.scalars(select(Connection))
            )
            pools = sorted((p.pool, p.slots, p.description) for p in s.scalars(select(Pool)))
            var_rows = sorted((v.key, v.val) for v in s.scalars(select(Variable)))
        return conns, pools, var_rows

    before = snapshot()
    second = apply_settings(settings)
    assert second == {
        "connections": {"unchanged": len(REQUIRED_CONNECTIONS)},
        "pools": {"unchanged": len(settings.pools)},
        "variables": {"unchanged": len(settings.variables)},
    }
    assert snapshot() == before
    assert ("gitlab_default", "gitlab", "http://127.0.0.1:8900/gitlab") in [c[:3] for c in before[0]]

    changed = load_settings(REPO / "airflow_settings.yaml", env={"GITLAB_TOKEN": "glpat-rotated"})
    third = apply_settings(changed)
    assert third["connections"]["updated"] == 1
    with create_session() as s:
        assert s.scalar(select(Connection).where(Connection.conn_id == "gitlab_default")).password == "glpat-rotated"
