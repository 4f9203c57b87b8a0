"""Hooks: one per external system, each wrapping an Airflow connection (config in ``__init__``,
connection looked up lazily on first use)."""

from __future__ import annotations


def connection_exists(conn_id: str) -> bool:
    """Whether an Airflow connection is defined (optional integrations are skipped when not)."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException, AirflowRuntimeError

    try:
        BaseHook.get_connection(conn_id)
    except (AirflowNotFoundException, AirflowRuntimeError):
        return False
    return True
