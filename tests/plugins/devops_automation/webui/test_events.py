"""The event hub and stream in-process: one poller for every stream, each row sent once (late PostgreSQL
commits too), replay after ``Last-Event-ID``, only the DAGs a user may read, heartbeats, overflow."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
import sqlalchemy as sa

from devops_automation.store import ResultsStore, schema
from devops_automation.webui import events
from devops_automation.webui.auth import Viewer
from tests.plugins.devops_automation.webui.conftest import FakeUser

T = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


def _event_row(conn: sa.Connection) -> int:
    return conn.execute(
        sa.insert(schema.failure_events)
        .values(provider="gitlab", project_id="1", project_path="g/p", pipeline_id="77", source="manual", received_at=T)
        .returning(schema.failure_events.c.id)
    ).scalar_one()


def add_failure(store: ResultsStore, job_id: str, conn: sa.Connection | None = None) -> int:
    def insert(c: sa.Connection) -> int:
        event_id = c.execute(sa.select(sa.func.min(schema.failure_events.c.id))).scalar() or _event_row(c)
        return c.execute(
            sa.insert(schema.failure_analyses)
            .values(event_id=event_id, job_id=job_id, category="test_failure", analyser="heuristic", created_at=T)
            .returning(schema.failure_analyses.c.id)
        ).scalar_one()

    if conn is not None:
        return insert(conn)
    with store.begin() as c:
        return insert(c)


def add_alert(store: ResultsStore, source: str, rule: str) -> int:
    with store.begin() as conn:
        return conn.execute(
            sa.insert(schema.alert_events)
            .values(
                source=source,
                rule_id=rule,
                scope_key="s",
                severity="warning",
                state="firing",
                started_at=T,
                last_evaluated_at=T,
            )
            .returning(schema.alert_events.c.id)
        ).scalar_one()


def viewer(*dags: str) -> Viewer:
    return Viewer(FakeUser("u"), lambda dag: dag in dags)


@pytest.fixture
def hub(results_store: ResultsStore):
    h = events.EventHub(lambda: results_store, poll_s=3600)  # the tests poll by hand
    yield h
    h.stop()


def test_ids_round_trip() -> None:
    assert events.parse_id("12-3") == {"failure": 12, "alert": 3}
    assert events.format_id({"failure": 12, "alert": 3}) == "12-3"
    assert events.parse_id(None) is None
    assert events.parse_id(" ") is None
    for bad in ("12", "a-b", "1-2-3", "-1-2"):
        with pytest.raises(ValueError, match="failure id"):
            events.parse_id(bad)


def test_each_new_row_is_polled_once(results_store: ResultsStore, hub: events.EventHub) -> None:
    before = add_failure(results_store, "old")
    loop = asyncio.new_event_loop()
    try:
        sub = hub.subscribe(loop)
        assert sub.start == {"failure": before, "alert": 0}  # live: from what is stored now
        f1 = add_failure(results_store, "j1")
        a1 = add_alert(results_store, "ci_pipeline_analytics", "r1")
        got = hub.poll_once()
        assert [(e.kind, e.id, e.dag_id, e.sse_id) for e in got] == [
            ("failure", f1, "ci_failure_triage", f"{f1}-0"),
            ("alert", a1, "ci_pipeline_analytics", f"{f1}-{a1}"),
        ]
        assert got[0].data["job_id"] == "j1"
        assert got[0].data["project_path"] == "g/p"
        assert hub.poll_once() == []
        loop.run_until_complete(asyncio.sleep(0))  # the hand-over runs on the stream's loop
        assert sub.queue.get_nowait() == got
    finally:
        hub.unsubscribe(sub)
        loop.close()


@pytest.mark.postgres
def test_a_late_commit_is_still_sent(pg_url: str) -> None:
    """Two writers: the one with the lower id commits last. The poller saw the higher id first and asks
    for the skipped one again, so it goes out when it commits."""
    store = ResultsStore(pg_url)
    hub = events.EventHub(lambda: store, poll_s=3600)
    loop = asyncio.new_event_loop()
    try:
        add_failure(store, "first")
        hub.subscribe(loop)
        slow = store.engine.connect()
        slow_tx = slow.begin()
        early = add_failure(store, "slow", conn=slow)  # takes its id now, commits later
        late = add_failure(store, "fast")
        assert late > early
        assert [e.id for e in hub.poll_once()] == [late]
        slow_tx.commit()
        slow.close()
        got = hub.poll_once()
        assert [(e.id, e.data["job_id"]) for e in got] == [(early, "slow")]
        assert got[0].sse_id == f"{late}-0"  # the position does not go back
        assert hub.poll_once() == []
    finally:
        hub.stop()
        loop.close()
        store.dispose()


def test_replay_after_a_position(results_store: ResultsStore, hub: events.EventHub, monkeypatch) -> None:
    start = add_failure(results_store, "seen")
    missed = [add_failure(results_store, f"m{i}") for i in range(3)]
    alert = add_alert(results_store, "daily_project_metrics", "x")
    got, truncated = hub.replay({"failure": start, "alert": 0}, {"failure": missed[1], "alert": alert})
    assert not truncated
    assert [(e.kind, e.id) for e in got] == [("failure", missed[0]), ("failure", missed[1]), ("alert", alert)]
    assert got[-1].sse_id == f"{missed[1]}-{alert}"
    assert hub.replay({"failure": missed[2], "alert": alert}, {"failure": missed[2], "alert": alert}) == ([], False)
    monkeypatch.setattr(events, "REPLAY_MAX", 2)
    assert hub.replay({"failure": 0, "alert": 0}, {"failure": missed[2], "alert": alert}) == ([], True)


def test_a_subscription_too_far_behind_is_ended() -> None:
    loop = asyncio.new_event_loop()
    try:
        sub = events.Subscription(loop, {"failure": 0, "alert": 0}, queue_max=2)
        for _ in range(4):
            sub.deliver([])
        assert sub.overflowed
        assert sub.queue.qsize() == 3  # two batches, then the end marker
    finally:
        loop.close()


async def _chunks(gen, until, timeout: float) -> list[bytes]:
    out: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until(out):
        try:
            out.append(await asyncio.wait_for(gen.__anext__(), timeout=max(0.01, deadline - time.monotonic())))
        except (StopAsyncIteration, TimeoutError):
            break
    return out


def test_streams_share_one_poller_and_see_only_their_dags(results_store: ResultsStore) -> None:
    hub = events.EventHub(lambda: results_store, poll_s=0.05)
    add_failure(results_store, "before")

    async def main() -> None:
        everyone = [
            events.stream(
                hub, viewer("ci_failure_triage", "ci_pipeline_analytics"), {"ci_failure_triage"}, heartbeat_s=5
            )
            for _ in range(20)
        ]
        alerts_only = events.stream(hub, viewer("ci_pipeline_analytics"), {"ci_pipeline_analytics"}, heartbeat_s=5)
        streams = [*everyone, alerts_only]
        for gen in streams:
            opened = await _chunks(gen, lambda out: any(b"event: ready" in c for c in out), 5)
            assert opened[0] == b"retry: 2000\n\n"
        assert hub.subscribers == 21
        polls_before, started = hub.polls, time.monotonic()
        f = await asyncio.to_thread(add_failure, results_store, "live")
        a = await asyncio.to_thread(add_alert, results_store, "ci_pipeline_analytics", "rate")
        got = [await _chunks(gen, lambda out: any(f"id: {f}-{a}".encode() in c for c in out), 3) for gen in streams]
        took = time.monotonic() - started
        for chunks in got[:-1]:
            assert [c.split(b"\n")[1] for c in chunks] == [b"event: failure", b"event: alert"]
            assert b'"job_id":"live"' in chunks[0]
        # an alert of a DAG the stream was not given is checked with the auth manager: this one may read it
        assert [c.split(b"\n")[:2] for c in got[-1]] == [[f"id: {f}-{a}".encode(), b"event: alert"]]
        # one poller for 21 streams: polls grow with time, not with streams
        assert hub.polls - polls_before <= took / hub.poll_s + 3
        for gen in streams:
            await gen.aclose()
        assert hub.subscribers == 0

    try:
        asyncio.run(main())
    finally:
        hub.stop()


@pytest.fixture
def sqlite_store(tmp_path):
    store = ResultsStore(f"sqlite:///{tmp_path}/results.db")
    yield store
    store.dispose()


def test_heartbeat_and_the_end_of_a_stream(sqlite_store: ResultsStore) -> None:
    hub = events.EventHub(lambda: sqlite_store, poll_s=0.05)

    async def main() -> list[bytes]:
        gen = events.stream(hub, viewer("ci_failure_triage"), {"ci_failure_triage"}, heartbeat_s=0.15, max_age_s=0.6)
        return await _chunks(gen, lambda out: False, 5)

    try:
        started = time.monotonic()
        chunks = asyncio.run(main())
        took = time.monotonic() - started
    finally:
        hub.stop()
    assert chunks[0] == b"retry: 2000\n\n"
    assert chunks[1].startswith(b"id: 0-0\nevent: ready\n")
    assert chunks.count(b": ping\n\n") >= 3
    assert 0.5 < took < 3  # ended by the server after max_age_s: the client reconnects and logs in again
    assert hub.subscribers == 0


def test_the_poller_stops_when_idle(sqlite_store: ResultsStore) -> None:
    hub = events.EventHub(lambda: sqlite_store, poll_s=0.02, idle_stop_s=0.1)
    loop = asyncio.new_event_loop()
    try:
        sub = hub.subscribe(loop)
        assert hub.running
        hub.unsubscribe(sub)
        deadline = time.monotonic() + 5
        while hub.running and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not hub.running
        again = hub.subscribe(loop)  # a new stream starts it again
        assert hub.running
        hub.unsubscribe(again)
    finally:
        hub.stop()
        loop.close()
