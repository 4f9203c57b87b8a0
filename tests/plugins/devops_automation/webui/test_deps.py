"""The results store of the ``devops_results_db`` connection in the API server (StoreProvider)."""

from __future__ import annotations

import json

import pytest

from devops_automation.webui.deps import StoreProvider, StoreUnavailable

ENV = "AIRFLOW_CONN_DEVOPS_RESULTS_DB"


def test_the_connection_is_resolved_once_and_looked_at_again_later(tmp_path, monkeypatch) -> None:
    clock = [0.0]
    monkeypatch.setenv(ENV, json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "a.db")}))
    provider = StoreProvider(recheck_s=300, clock=lambda: clock[0])
    first = provider()
    assert first.url.database == str(tmp_path / "a.db")
    monkeypatch.setenv(ENV, json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "b.db")}))
    assert provider() is first  # within the recheck interval: the same engine
    clock[0] = 301
    second = provider()
    assert second is not first
    assert second.url.database == str(tmp_path / "b.db")
    clock[0] = 700
    assert provider() is second  # unchanged connection: the same engine
    # the lookup fails later on: keep serving what we have
    monkeypatch.setenv(ENV, json.dumps({"conn_type": "mysql", "host": "db", "password": "hunter2"}))
    clock[0] = 1100
    assert provider() is second
    provider.dispose()


def test_an_unusable_connection_is_unavailable_without_its_secrets(monkeypatch) -> None:
    monkeypatch.setenv(ENV, json.dumps({"conn_type": "mysql", "host": "db", "password": "hunter2"}))
    with pytest.raises(StoreUnavailable) as err:
        StoreProvider()()
    assert "devops_results_db" in str(err.value)
    assert "StoreConfigError" in str(err.value)
    assert "hunter2" not in str(err.value)


def test_no_connection_is_the_embedded_sqlite_file(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    provider = StoreProvider()
    assert provider().url.database == str(tmp_path / "devops_results.db")
    provider.dispose()
