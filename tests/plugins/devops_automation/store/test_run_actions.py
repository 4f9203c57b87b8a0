"""The ci_run_action audit table (migration 0006) on SQLite and PostgreSQL: one row per Airflow run, calls
appended, the newest first for a read API, the re-run tags; an upgrade from 0005 keeps the data."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from devops_automation.store import ResultsStore, run_actions, schema

T0 = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)


def row(n: int, **values) -> dict:
    return {
        "dag_id": "ci_run_action",
        "airflow_run_id": f"manual__{n}",
        "triggered_by": "alice",
        "requested_at": T0 + dt.timedelta(minutes=n),
        "provider": "github",
        "repo": "acme/api",
        "run_id": "7000000001",
        "action": "rerun_failed",
        "state": "sending",
        "created_at": T0 + dt.timedelta(minutes=n),
        **values,
    }


def test_one_row_per_airflow_run_then_calls_and_outcome(results_store: ResultsStore) -> None:
    stored, inserted = run_actions.begin(results_store, row(1, plan={"path": "/x", "watch": {"kind": "attempt"}}))
    assert inserted and stored["state"] == "sending" and stored["requested_at"] == T0 + dt.timedelta(minutes=1)
    again, inserted = run_actions.begin(results_store, row(1, state="refused"))  # a retried try: the first stays
    assert not inserted and again["id"] == stored["id"] and again["state"] == "sending"
    answer = {"message": "x" * 5000}
    done = run_actions.add_call(
        results_store,
        "ci_run_action",
        "manual__1",
        {"method": "POST", "path": "/x", "status": 201, "answer": answer},
        state="sent",
        result_attempt=2,
        sent_at=T0,
    )
    assert (done["state"], done["result_attempt"], done["sent_at"]) == ("sent", 2, T0)
    assert [c["status"] for c in done["api_calls"]] == [201]
    assert done["api_calls"][0]["answer"].endswith(" …") and len(done["api_calls"][0]["answer"]) < 4100
    run_actions.add_call(results_store, "ci_run_action", "manual__1", {"method": "POST", "path": "/y", "status": 202})
    final = run_actions.update(results_store, "ci_run_action", "manual__1", state="done", outcome="success")
    assert [c["path"] for c in final["api_calls"]] == ["/x", "/y"]
    assert (final["state"], final["outcome"], final["plan"]["watch"]) == ("done", "success", {"kind": "attempt"})


def test_unknown_columns_and_missing_rows_are_errors(results_store: ResultsStore) -> None:
    with pytest.raises(KeyError, match="no column"):
        run_actions.begin(results_store, row(1, colour="red"))
    with pytest.raises(LookupError, match="manual__9"):
        run_actions.update(results_store, "ci_run_action", "manual__9", state="done")


def test_recent_is_newest_first_and_filters(results_store: ResultsStore) -> None:
    run_actions.begin(results_store, row(1))
    run_actions.begin(results_store, row(2, provider="gitlab", repo="payments/api", run_id="900"))
    run_actions.begin(results_store, row(3, run_id="7000000002"))
    assert [r["airflow_run_id"] for r in run_actions.recent(results_store)] == ["manual__3", "manual__2", "manual__1"]
    assert [r["airflow_run_id"] for r in run_actions.recent(results_store, provider="github", limit=1)] == ["manual__3"]
    assert [r["run_id"] for r in run_actions.recent(results_store, repo="acme/api", run_id=7000000001)] == [
        "7000000001"
    ]
    since = run_actions.recent(results_store, since=T0 + dt.timedelta(minutes=2), until=T0 + dt.timedelta(minutes=3))
    assert [r["airflow_run_id"] for r in since] == ["manual__2"]


def test_rerun_tags_only_from_writes_that_went_out(results_store: ResultsStore) -> None:
    run_actions.begin(results_store, row(1, state="done", result_attempt=3))
    run_actions.begin(results_store, row(2, state="dry_run", result_attempt=4))
    run_actions.begin(results_store, row(3, state="refused"))
    run_actions.begin(results_store, row(4, state="sent", action="cancel", run_id="5"))
    gitlab = row(5, state="failed", provider="gitlab", repo="p/q", run_id="9", retried_job_ids=["1"], new_job_ids=["2"])
    run_actions.begin(results_store, gitlab)
    tags = run_actions.rerun_tags(results_store)
    assert tags == {
        "attempts": {("github", "acme/api", "7000000001", 3)},
        "jobs": {("gitlab", "p/q", "9", "1"), ("gitlab", "p/q", "9", "2")},
    }
    assert run_actions.rerun_tags(results_store, runs=[("gitlab", "p/q", "9")])["attempts"] == set()


def test_upgrade_from_0005_adds_the_table_and_keeps_data(results_url: str) -> None:
    old = ResultsStore(results_url, auto_migrate=False)
    old.migrate("0005")
    assert "ci_run_actions" not in sa.inspect(old.engine).get_table_names()
    with old.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO notifications (dedup_key, channel, status, attempts, created_at) "
                "VALUES ('k1', 'slack', 'sent', 1, :t)"
            ),
            {"t": T0.replace(tzinfo=None) if old.dialect == "sqlite" else T0},
        )
    old.dispose()
    new = ResultsStore(results_url)
    _ = new.engine  # the first touch migrates
    assert new.current_revision() >= "0006"
    names = {i["name"] for i in sa.inspect(new.engine).get_indexes("ci_run_actions")}
    assert {"ix_ci_run_actions_run", "ix_ci_run_actions_requested_at"} <= names
    run_actions.begin(new, row(1))
    with new.engine.connect() as conn:
        assert conn.execute(sa.select(schema.notifications.c.dedup_key)).scalars().all() == ["k1"]
    assert run_actions.get(new, "ci_run_action", "manual__1")["state"] == "sending"
    new.dispose()
