"""``send_once`` directly: the one "send at most once per dedup key" mechanism of every channel,
against a results store on SQLite and on the real PostgreSQL (named by an Airflow connection)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from devops_automation.notifiers import send_once
from devops_automation.store import ResultsStore, schema

CONN_ID = "send_once_results"


@pytest.fixture
def store(results_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ResultsStore]:
    """The connection ``send_once_results`` names a fresh database (SQLite file or PostgreSQL)."""
    url = sa.make_url(results_url)
    if url.get_backend_name() == "sqlite":
        conn = {"conn_type": "sqlite", "host": url.database}
    else:
        conn = {
            "conn_type": "postgres",
            "host": url.host,
            "port": url.port,
            "login": url.username,
            "password": url.password or "",
            "schema": url.database,
        }
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    s = ResultsStore(results_url)
    yield s
    s.dispose()


def notifications(store: ResultsStore) -> list[dict[str, Any]]:
    t = schema.notifications
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(t).order_by(t.c.id))]


class Sender:
    """A send() that returns the next result, or raises the next exception, and counts its calls."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def once(key: str | None, send: Sender, **kw: Any) -> Any:
    return send_once("slack", "C0CIFAIL", key, send, results_conn_id=CONN_ID, **kw)


def test_without_a_key_it_simply_sends_every_time(store: ResultsStore) -> None:
    send = Sender("ts-1", "ts-2")
    assert once(None, send) == "ts-1"
    assert once(None, send) == "ts-2"
    assert send.calls == 2
    assert notifications(store) == []


def test_without_a_key_the_store_is_not_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BROKEN_RESULTS", json.dumps({"conn_type": "http", "host": "nowhere.test"}))
    assert send_once("telegram", None, None, Sender([1]), results_conn_id="broken_results") == [1]


def test_claim_send_mark_sent(store: ResultsStore) -> None:
    send = Sender("1700000000.000100")
    assert once("k-1", send) == "1700000000.000100"
    (row,) = notifications(store)
    assert (row["dedup_key"], row["channel"], row["target"]) == ("k-1", "slack", "C0CIFAIL")
    assert (row["status"], row["attempts"], row["message_ref"], row["error"]) == ("sent", 1, "1700000000.000100", None)
    assert row["sent_at"] is not None


def test_a_sent_key_is_never_sent_again(store: ResultsStore) -> None:
    send = Sender("ts-1", "ts-2")
    assert once("k-1", send) == "ts-1"
    assert once("k-1", send) is None
    assert once("k-1", send) is None
    assert send.calls == 1
    (row,) = notifications(store)
    assert (row["status"], row["attempts"], row["message_ref"]) == ("sent", 1, "ts-1")


def test_different_keys_are_independent(store: ResultsStore) -> None:
    send = Sender("a", "b")
    assert once("k-a", send) == "a"
    assert once("k-b", send) == "b"
    assert [(n["dedup_key"], n["status"], n["message_ref"]) for n in notifications(store)] == [
        ("k-a", "sent", "a"),
        ("k-b", "sent", "b"),
    ]


def test_a_failed_send_is_recorded_raised_and_sent_by_a_later_call(store: ResultsStore) -> None:
    send = Sender(ConnectionError("Slack is down"), TimeoutError("still down"), "ts-3")
    with pytest.raises(ConnectionError, match="Slack is down"):
        once("k-1", send)
    (row,) = notifications(store)
    assert (row["status"], row["attempts"], row["error"], row["message_ref"]) == (
        "failed",
        1,
        "ConnectionError: Slack is down",
        None,
    )
    assert [n["dedup_key"] for n in store.pending_notifications("slack")] == ["k-1"]
    with pytest.raises(TimeoutError):
        once("k-1", send)
    (row,) = notifications(store)
    assert (row["status"], row["attempts"], row["error"]) == ("failed", 2, "TimeoutError: still down")
    assert once("k-1", send) == "ts-3"
    (row,) = notifications(store)
    assert (row["status"], row["attempts"], row["error"], row["message_ref"]) == ("sent", 3, None, "ts-3")
    assert store.pending_notifications() == []
    assert send.calls == 3


def test_a_long_error_is_capped(store: ResultsStore) -> None:
    with pytest.raises(ValueError):
        once("k-1", Sender(ValueError("x" * 10_000)))
    (row,) = notifications(store)
    assert len(row["error"]) == 4000
    assert row["error"].startswith("ValueError: xxx")


@pytest.mark.parametrize(
    "result, message_ref, stored",
    [
        pytest.param("1.000100", None, "1.000100", id="default-str"),
        pytest.param(42, None, "42", id="default-str-of-int"),
        pytest.param(None, None, None, id="default-none"),
        pytest.param([11, 12], lambda ids: ",".join(map(str, ids)), "11,12", id="custom-telegram-ids"),
        pytest.param({"ts": "9.1"}, lambda r: r["ts"], "9.1", id="custom-field"),
        pytest.param("ignored", lambda r: None, None, id="custom-none"),
    ],
)
def test_message_ref_is_stored(store: ResultsStore, result: Any, message_ref: Any, stored: str | None) -> None:
    kw = {"message_ref": message_ref} if message_ref else {}
    assert once("k-1", Sender(result), **kw) == result
    (row,) = notifications(store)
    assert row["status"] == "sent"
    assert row["message_ref"] == stored


def test_a_pending_claim_from_a_crashed_send_is_sent_again(store: ResultsStore) -> None:
    """A process that died between claim and send leaves 'pending': the key is still owed."""
    assert store.claim_notification("k-1", "slack", "C0CIFAIL")
    send = Sender("ts-1")
    assert once("k-1", send) == "ts-1"
    (row,) = notifications(store)
    assert (row["status"], row["attempts"]) == ("sent", 2)


def test_deliver_names_the_messages_it_could_not_send_after_trying_them_all() -> None:
    from devops_automation.notifiers import Outgoing, deliver

    with pytest.raises(RuntimeError, match=r"2 message\(s\) not sent \(a later run sends them\): k1, k2"):
        deliver([Outgoing("pager", "x", "k1", "a"), Outgoing("fax", "y", "k2", "b")])
