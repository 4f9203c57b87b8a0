"""The results store against SQLite and the real PostgreSQL: migrations, upserts, dedup, concurrency."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from devops_automation.store import (
    VERSION_TABLE,
    ResultsStore,
    SchemaVersionError,
    StoreConfigError,
    schema,
    url_from_connection,
)

T0 = dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)
METRIC_KEYS = ["day", "source", "project", "metric"]
#: the newest migration file's revision (0001_initial.py -> "0001")
HEAD = max(
    p.name[:4]
    for p in (Path(__file__).resolve().parents[4] / "plugins/devops_automation/store/migrations/versions").glob("0*.py")
)


def metric(value: float, day: dt.date = dt.date(2026, 11, 16), project: str = "acme/api") -> dict:
    return {
        "day": day,
        "source": "github",
        "project": project,
        "metric": "open_prs",
        "value_raw": str(value),
        "value": value,
        "collected_at": T0,
    }


def rows(store: ResultsStore, table: sa.Table) -> list[dict]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(table).order_by(*table.primary_key.columns))]


# ---- migrations ---------------------------------------------------------------------------------


def test_migrates_empty_database_to_head(results_store: ResultsStore) -> None:
    _ = results_store.engine  # first touch migrates
    assert results_store.current_revision() == results_store.head_revision() == HEAD
    tables = set(sa.inspect(results_store.engine).get_table_names())
    assert set(schema.metadata.tables) <= tables
    assert VERSION_TABLE in tables


def test_schema_module_matches_migrations(results_store: ResultsStore) -> None:
    """schema.py and the migrations describe the same tables (a change without a migration fails)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with results_store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE, "compare_type": True})
        diff = [
            d
            for d in compare_metadata(ctx, schema.metadata)
            if not (d[0] == "remove_table" and d[1].name == VERSION_TABLE)
        ]
    assert diff == []


def test_upgrade_from_previous_version_keeps_data(results_url: str) -> None:
    old = ResultsStore(results_url, auto_migrate=False)
    old.migrate("0001")
    assert old.current_revision() == "0001"
    event = {
        "provider": "gitlab",
        "project_id": "42",
        "pipeline_id": "1001",
        "source": "email",
        "state": "analysed",
        "received_at": T0,
    }
    with old.engine.begin() as conn:
        event_id = conn.execute(
            sa.insert(schema.failure_events).values(**event).returning(schema.failure_events.c.id)
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO failure_analyses (event_id, job_id, category, analyser, fingerprint, created_at) "
                "VALUES (:e, '7', 'test_failure', 'heuristic', 'fp1', :t)"
            ),
            {"e": event_id, "t": T0.replace(tzinfo=None) if old.dialect == "sqlite" else T0},
        )
    assert "failure_fingerprints" not in sa.inspect(old.engine).get_table_names()
    old.dispose()

    new = ResultsStore(results_url)  # auto-migrates to head
    analyses = rows(new, schema.failure_analyses)
    assert new.current_revision() == HEAD
    assert [(a["job_id"], a["fingerprint"], a["retried_job_id"]) for a in analyses] == [("7", "fp1", None)]
    assert rows(new, schema.failure_events)[0]["received_at"] == T0
    assert "ix_failure_analyses_fingerprint" in {
        i["name"] for i in sa.inspect(new.engine).get_indexes("failure_analyses")
    }
    new.dispose()


def test_database_newer_than_code_is_a_clear_error(results_store: ResultsStore) -> None:
    _ = results_store.engine
    with results_store.engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    fresh = ResultsStore(results_store.url, auto_migrate=False)
    with pytest.raises(SchemaVersionError, match="does not know"):
        fresh.migrate()
    fresh.dispose()


def test_migrate_twice_changes_nothing(results_store: ResultsStore) -> None:
    results_store.migrate()
    results_store.upsert(schema.project_metrics, [metric(1)], keys=METRIC_KEYS)
    results_store.migrate()
    assert len(rows(results_store, schema.project_metrics)) == 1


# ---- writes -------------------------------------------------------------------------------------


def test_upsert_inserts_then_updates_on_the_natural_key(results_store: ResultsStore) -> None:
    results_store.upsert(schema.project_metrics, [metric(3), metric(1, project="acme/web")], keys=METRIC_KEYS)
    results_store.upsert(schema.project_metrics, [metric(5)], keys=METRIC_KEYS)
    got = {(r["project"], r["value"]) for r in rows(results_store, schema.project_metrics)}
    assert got == {("acme/api", 5.0), ("acme/web", 1.0)}


def test_upsert_with_only_keys_ignores_duplicates(results_store: ResultsStore) -> None:
    row = {"provider": "github", "repo": "acme/api", "run_id": "77", "attempt": 1, "collected_at": T0}
    assert (
        results_store.upsert(schema.ci_runs, [row, row], keys=["provider", "repo", "run_id", "attempt"], update=[]) == 2
    )
    assert len(rows(results_store, schema.ci_runs)) == 1


def test_insert_missing_reports_only_new_rows(results_store: ResultsStore) -> None:
    keys = ["provider", "project_id", "pipeline_id"]
    base = {"provider": "gitlab", "project_id": "42", "source": "webhook", "received_at": T0}
    assert results_store.insert_missing(schema.failure_events, [{**base, "pipeline_id": "1"}], keys=keys) == [
        ("gitlab", "42", "1")
    ]
    again = results_store.insert_missing(
        schema.failure_events,
        [{**base, "pipeline_id": "1", "source": "email"}, {**base, "pipeline_id": "2"}],
        keys=keys,
    )
    assert again == [("gitlab", "42", "2")]
    assert [r["source"] for r in rows(results_store, schema.failure_events)] == ["webhook", "webhook"]


def test_times_and_json_round_trip(results_store: ResultsStore) -> None:
    local = dt.datetime(2026, 11, 16, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    payload = {"jobs": [1, 2], "ok": True, "name": "ünïcode"}
    results_store.upsert(
        schema.health_scores,
        [
            {
                "day": dt.date(2026, 11, 16),
                "project": "acme/api",
                "score": 81.5,
                "grade": "B",
                "components": payload,
                "created_at": local,
            }
        ],
        keys=["day", "project"],
    )
    (row,) = rows(results_store, schema.health_scores)
    assert row["created_at"] == T0
    assert row["created_at"].tzinfo == dt.UTC
    assert row["components"] == payload


def test_naive_datetimes_are_refused(results_store: ResultsStore) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        results_store.upsert(
            schema.project_metrics, [{**metric(1), "collected_at": dt.datetime(2026, 1, 1)}], keys=METRIC_KEYS
        )


def test_notification_claim_lifecycle(results_store: ResultsStore) -> None:
    key = "ci_failure_triage:gitlab:42:1001:slack"
    assert results_store.claim_notification(key, "slack", "C0CIFAIL", now=T0)
    results_store.notification_failed(key, "HTTP 500 from Slack")
    assert [n["status"] for n in results_store.pending_notifications("slack")] == ["failed"]
    assert results_store.claim_notification(key, "slack", "C0CIFAIL", now=T0)  # failed → may retry
    results_store.notification_sent(key, message_ref="1700000000.000100", now=T0)
    assert not results_store.claim_notification(key, "slack", "C0CIFAIL", now=T0)  # sent → never again
    (n,) = rows(results_store, schema.notifications)
    assert (n["status"], n["attempts"], n["message_ref"], n["error"]) == ("sent", 2, "1700000000.000100", None)
    assert results_store.pending_notifications() == []


# ---- concurrency --------------------------------------------------------------------------------


def _migrate_in_process(url: str) -> str | None:
    store = ResultsStore(url)
    _ = store.engine
    rev = store.current_revision()
    store.dispose()
    return rev


def test_concurrent_first_touch_migrates_once(results_url: str) -> None:
    """Several processes touching a fresh database at once all succeed (the migration lock)."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        revisions = pool.map(_migrate_in_process, [results_url] * 4)
    assert revisions == [HEAD] * 4


@pytest.mark.postgres
def test_concurrent_writers_on_postgres(pg_url: str) -> None:
    store = ResultsStore(pg_url, pool_size=8, max_overflow=0)
    _ = store.engine
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            for i in range(40):
                # every worker writes the same 20 keys: conflicts on purpose
                store.upsert(
                    schema.project_metrics, [metric(worker * 1000 + i, project=f"p{i % 20}")], keys=METRIC_KEYS
                )
                store.claim_notification(f"k{i % 10}", "telegram")
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(rows(store, schema.project_metrics)) == 20
    assert len(rows(store, schema.notifications)) == 10
    store.dispose()


# ---- connection → database ----------------------------------------------------------------------


def test_url_from_postgres_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_DEVOPS_RESULTS_DB", "postgres://svc:s%40cret@db.internal:6432/results?sslmode=require"
    )
    url = url_from_connection()
    assert (url.get_backend_name(), url.username, url.password, url.host, url.port, url.database) == (
        "postgresql",
        "svc",
        "s@cret",
        "db.internal",
        6432,
        "results",
    )


def test_url_from_sqlite_connection_is_relative_to_airflow_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW_CONN_DEVOPS_RESULTS_DB", '{"conn_type": "sqlite", "host": "data/results.db"}')
    assert url_from_connection().database == str(tmp_path / "data" / "results.db")


def test_missing_connection_defaults_to_sqlite_in_airflow_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.delenv("AIRFLOW_CONN_DEVOPS_RESULTS_DB", raising=False)
    url = url_from_connection()
    assert (url.get_backend_name(), url.database) == ("sqlite", str(tmp_path / "devops_results.db"))


def test_wrong_connection_type_names_the_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_DEVOPS_RESULTS_DB", '{"conn_type": "http", "host": "example.test"}')
    with pytest.raises(StoreConfigError, match=r"'devops_results_db' has type 'http'.*'postgres'.*'sqlite'"):
        url_from_connection()


def test_upsert_only_changed_writes_nothing_for_the_same_data(results_store: ResultsStore) -> None:
    t = schema.ci_deployments
    row = {
        "provider": "github",
        "repo": "acme/api",
        "deployment_id": "1",
        "environment": "production",
        "sha": "a" * 40,
        "status": "success",
        "collected_at": T0,
        "commits": [{"sha": "a" * 40, "authored_at": "2026-11-20T10:00:00Z"}],
    }
    keys = ["provider", "repo", "deployment_id"]
    results_store.upsert(t, [row], keys=keys, only_changed=True, ignore=["collected_at"])
    later = T0 + dt.timedelta(days=1)
    results_store.upsert(t, [{**row, "collected_at": later}], keys=keys, only_changed=True, ignore=["collected_at"])
    with results_store.begin() as conn:
        stored = conn.execute(sa.select(t.c.collected_at, t.c.status)).one()
    assert stored.collected_at == T0  # same data: the row was not rewritten
    results_store.upsert(
        t, [{**row, "status": "failure", "collected_at": later}], keys=keys, only_changed=True, ignore=["collected_at"]
    )
    with results_store.begin() as conn:
        stored = conn.execute(sa.select(t.c.collected_at, t.c.status)).one()
    assert stored.status == "failure"
    assert stored.collected_at == later
