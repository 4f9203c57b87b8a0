"""ImapMailTrigger against the real test Dovecot: IDLE latency, polling fallback, recovery, no repeats."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from airflow.sdk.module_loading import import_string
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from devops_automation.hooks.imap import ImapMailboxHook
from devops_automation.triggers.imap import CLASSPATH, ImapMailTrigger

pytestmark = pytest.mark.imap


def mail(n: int) -> bytes:
    return (
        f"From: gitlab@gitlab.example.test\r\nSubject: Failed pipeline {n}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@x>\r\n\r\nfailed\r\n"
    ).encode()


def conn(port: int, user: str, password: str, **extra: object) -> str:
    return json.dumps(
        {
            "conn_type": "imap",
            "host": "127.0.0.1",
            "port": port,
            "login": user,
            "password": password,
            "extra": {"use_ssl": False, **extra},
        }
    )


@pytest.fixture
def hook(dovecot_server, monkeypatch) -> ImapMailboxHook:
    """imap_default on the shared Dovecot, watching a new empty folder of this test's own."""
    folder = f"trig-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(
        "AIRFLOW_CONN_IMAP_DEFAULT",
        conn(dovecot_server.port, dovecot_server.user, dovecot_server.password, folder=folder),
    )
    h = ImapMailboxHook()
    h.ensure_folder(folder)
    return h


class Watch:
    """Runs a trigger's generator; ``next()`` starts (or keeps) one pending ``__anext__``."""

    def __init__(self, trigger: ImapMailTrigger) -> None:
        self.trigger = trigger
        self.agen: AsyncIterator[TriggerEvent] = trigger.run()
        self.pending: asyncio.Task | None = None

    async def next(self, timeout: float) -> dict:
        if self.pending is None:
            self.pending = asyncio.ensure_future(self.agen.__anext__())
        done, _ = await asyncio.wait({self.pending}, timeout=timeout)
        if not done:
            raise TimeoutError(f"no event within {timeout}s")
        task, self.pending = self.pending, None
        return task.result().payload

    async def until(self, predicate, timeout: float = 5.0) -> None:
        if self.pending is None:
            self.pending = asyncio.ensure_future(self.agen.__anext__())
        deadline = time.monotonic() + timeout
        while not predicate():
            assert not self.pending.done(), (
                "unexpected event "
                f"{self.pending.result() if not self.pending.exception() else self.pending.exception()}"
            )
            assert time.monotonic() < deadline, "condition not reached"
            await asyncio.sleep(0.05)

    async def close(self) -> float:
        """Cancel and close; returns how long that took."""
        t0 = time.monotonic()
        if self.pending is not None and not self.pending.done():
            self.pending.cancel()
            await asyncio.gather(self.pending, return_exceptions=True)
        await self.agen.aclose()
        return time.monotonic() - t0


@pytest.fixture
async def watches():
    made: list[Watch] = []

    def make(trigger: ImapMailTrigger) -> Watch:
        made.append(Watch(trigger))
        return made[-1]

    yield make
    for w in made:
        await w.close()


def test_serialize_round_trip():
    trig = ImapMailTrigger(imap_conn_id="mail", folder="ci", poll_interval=5, idle_timeout=60, reconnect_max=10)
    classpath, kwargs = trig.serialize()
    assert classpath == CLASSPATH == "devops_automation.triggers.imap.ImapMailTrigger"
    assert kwargs == {
        "imap_conn_id": "mail",
        "folder": "ci",
        "poll_interval": 5.0,
        "idle_timeout": 60.0,
        "reconnect_max": 10.0,
    }
    rebuilt = import_string(classpath)(**kwargs)
    assert rebuilt == trig
    assert hash(rebuilt) == hash(trig)
    assert rebuilt.serialize() == trig.serialize()
    assert isinstance(trig, BaseEventTrigger)
    assert ImapMailTrigger().serialize()[1] == {
        "imap_conn_id": "imap_default",
        "folder": None,
        "poll_interval": 30.0,
        "idle_timeout": 240.0,
        "reconnect_max": 300.0,
    }
    json.dumps(kwargs)  # stored by the scheduler as JSON


async def test_fires_for_messages_already_there_then_not_again(hook, watches):
    for n in range(2):
        await asyncio.to_thread(hook.append, mail(n))
    uids = await asyncio.to_thread(hook.list_uids)
    w = watches(ImapMailTrigger())
    event = await w.next(5)
    assert {k: event[k] for k in ("source", "conn_id", "folder", "uids", "count")} == {
        "source": "imap",
        "conn_id": "imap_default",
        "folder": hook.folder,
        "uids": uids,
        "count": 2,
    }
    assert w.trigger.use_idle is True
    with pytest.raises(TimeoutError):  # still in the folder, already fired for
        await w.next(1.5)
    await asyncio.to_thread(hook.append, mail(3))  # only the new one fires (same pending __anext__)
    event = await w.next(3)
    assert event["count"] == 1
    assert event["uids"] == [u for u in await asyncio.to_thread(hook.list_uids) if u not in uids]


async def test_idle_event_within_three_seconds_of_an_append(hook, watches):
    w = watches(ImapMailTrigger(poll_interval=60))  # polling could not make it in time: IDLE must
    await w.until(lambda: w.trigger.use_idle is True)
    await asyncio.sleep(0.3)  # into IDLE
    t0 = time.monotonic()
    await asyncio.to_thread(hook.append, mail(1))
    event = await w.next(5)
    latency = time.monotonic() - t0
    assert event["uids"] == await asyncio.to_thread(hook.list_uids)
    assert latency < 3.0, f"event {latency:.2f}s after the append"
    # cancelling an idling trigger is prompt and drops the session
    took = await w.close()
    assert took < 1.0
    assert w.trigger._mb is None


async def test_polling_fallback(hook, watches, monkeypatch):
    def no_idle(*args, **kwargs):
        raise AssertionError("IDLE must not be used")

    monkeypatch.setattr(ImapMailTrigger, "_supports_idle", lambda self, hook, mb: False)
    monkeypatch.setattr("devops_automation.hooks.imap.idle_start", no_idle)
    w = watches(ImapMailTrigger(poll_interval=0.5))
    await w.until(lambda: w.trigger.use_idle is False)
    t0 = time.monotonic()
    await asyncio.to_thread(hook.append, mail(1))
    event = await w.next(3)
    assert time.monotonic() - t0 < 0.5 + 1.0
    assert event["uids"] == await asyncio.to_thread(hook.list_uids)
    with pytest.raises(TimeoutError):
        await w.next(1.2)  # several polls, nothing new


async def test_recovers_when_the_server_comes_up(dovecot_server, monkeypatch, watches, capsys):
    from include.sandbox.servers import DovecotServer, free_port

    port = free_port()  # nothing listens here yet
    monkeypatch.setenv("AIRFLOW_CONN_IMAP_LATE", conn(port, "late@example.test", "late-secret-pw", folder="INBOX"))
    w = watches(ImapMailTrigger(imap_conn_id="imap_late", reconnect_max=0.4))
    await w.until(lambda: w.trigger._last_error is not None)
    await asyncio.sleep(1.0)  # several refused attempts
    assert f"127.0.0.1:{port}" in w.trigger._last_error
    assert "late-secret-pw" not in w.trigger._last_error
    logged = capsys.readouterr().out  # Airflow logs through structlog to stdout
    assert logged.count("cannot read mail") == 1  # once per distinct error, not once per attempt (there were several)
    assert "late-secret-pw" not in logged
    server = DovecotServer(port=port, user="late@example.test", password="late-secret-pw")
    await asyncio.to_thread(server.start)
    try:
        await asyncio.to_thread(ImapMailboxHook("imap_late").append, mail(1))
        event = await w.next(5)
        assert event["count"] == 1
        assert event["folder"] == "INBOX"
        assert event["conn_id"] == "imap_late"
        assert w.trigger._last_error is None
    finally:
        await w.close()
        threading.Thread(
            target=server.stop, daemon=False
        ).start()  # takes seconds: overlaps the other tests (joined at exit)


async def test_missing_connection_keeps_running(monkeypatch, watches):
    monkeypatch.delenv("AIRFLOW_CONN_IMAP_NOWHERE", raising=False)
    w = watches(ImapMailTrigger(imap_conn_id="imap_nowhere", reconnect_max=0.2))
    with pytest.raises(TimeoutError):
        await w.next(1.5)
    assert "imap_nowhere" in (w.trigger._last_error or "")
    assert not w.pending.done()  # still trying, did not raise


async def test_wrong_password_keeps_running_without_leaking_it(monkeypatch, watches):
    from include.sandbox.servers import DovecotServer

    server = DovecotServer()  # private: failed logins make Dovecot slow down later logins from this IP
    await asyncio.to_thread(server.start)
    try:
        monkeypatch.setenv("AIRFLOW_CONN_IMAP_BAD", conn(server.port, server.user, "not-the-pw-123"))
        w = watches(ImapMailTrigger(imap_conn_id="imap_bad", reconnect_max=0.2))
        with pytest.raises(TimeoutError):
            await w.next(2.5)
        assert "login" in w.trigger._last_error
        assert "not-the-pw-123" not in w.trigger._last_error
        await w.close()
    finally:
        threading.Thread(target=server.stop, daemon=False).start()  # joined at interpreter exit
