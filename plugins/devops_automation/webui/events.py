"""New failures and alerts as Server-Sent Events: one poller per process, fanned out to every stream.

**One poller.** :class:`EventHub` runs one daemon thread per process (per app) while at least one stream
is connected: every :attr:`EventHub.poll_s` seconds (0.5 s by default, ``DEVOPS_EVENTS_POLL_S``) it asks
the results store for rows with a higher id than the last it saw (:func:`.queries.new_events`: a
primary-key range on ``failure_analyses`` and ``alert_events``), whatever the number of clients, and hands
the new ones to every stream's queue (``loop.call_soon_threadsafe``). So an event reaches the clients
within about one poll interval of being stored, and a hundred open pages cost the database what one
costs. The thread ends after :attr:`EventHub.idle_stop_s` seconds without a stream.

**Late commits.** On PostgreSQL a transaction can commit after one that took a higher id: ids the poller
skipped over are asked for again for :attr:`EventHub.gap_ttl_s` seconds, so such a row still goes out.

**A stream** (``GET .../events``, :func:`stream`): ``retry: 2000``, a ``ready`` event whose ``id`` is the
current position, then each event the user may see (``failure``: ci_failure_triage's analysis of a job;
``alert``: an alert that started, of the DAG in its ``source``), each with ``id: <failure id>-<alert id>``,
the position after it. A comment line (``: ping``) every ``DEVOPS_EVENTS_HEARTBEAT_S`` seconds (15) keeps
proxies from closing an idle stream. The server ends a stream after ``DEVOPS_EVENTS_MAX_STREAM_S`` seconds
(900) or when the client falls more than :attr:`EventHub.queue_max` batches behind; ``EventSource``
reconnects by itself and sends ``Last-Event-ID`` (or pass ``?last_event_id=``): the stream then first
replays what was stored after that position (at most :data:`REPLAY_MAX` rows; more -> a ``truncated``
event: reload the lists) and authenticates again, so an expired token ends the stream at the next
reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool

from devops_automation.store import ResultsStore
from devops_automation.webui import queries
from devops_automation.webui.auth import Viewer

log = logging.getLogger(__name__)

REPLAY_MAX = 500
RETRY_MS = 2000
_ID = re.compile(r"(\d{1,18})-(\d{1,18})")
_OVERFLOW = object()


@dataclasses.dataclass(frozen=True)
class Event:
    kind: str  # failure | alert
    id: int
    dag_id: str
    data: Mapping[str, Any]
    cursor: tuple[int, int]  # (failure id, alert id): the position after this event

    @property
    def sse_id(self) -> str:
        return format_id(self.cursor)


def format_id(cursor: tuple[int, int] | Mapping[str, int]) -> str:
    if isinstance(cursor, Mapping):
        cursor = (cursor["failure"], cursor["alert"])
    return f"{cursor[0]}-{cursor[1]}"


def parse_id(text: str | None) -> dict[str, int] | None:
    """A stream position from ``Last-Event-ID`` (``<failure id>-<alert id>``); ``ValueError`` when malformed."""
    if text is None or not text.strip():
        return None
    m = _ID.fullmatch(text.strip())
    if m is None:
        raise ValueError("expected '<failure id>-<alert id>' as sent in the stream's id lines")
    return {"failure": int(m.group(1)), "alert": int(m.group(2))}


def _json(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def sse(event: str | None, data: Any, event_id: str | None = None) -> bytes:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, default=_json, separators=(",", ":"), sort_keys=True))
    return ("\n".join(lines) + "\n\n").encode()


class Subscription:
    """One stream's queue, living on the stream's event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, start: Mapping[str, int], queue_max: int) -> None:
        self.loop = loop
        self.start = dict(start)
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.queue_max = queue_max
        self.overflowed = False

    def deliver(self, events: list[Event]) -> None:
        """On the stream's loop: queue a batch, or end the stream when it is too far behind."""
        if self.overflowed:
            return
        if self.queue.qsize() >= self.queue_max:
            self.overflowed = True
            self.queue.put_nowait(_OVERFLOW)
            return
        self.queue.put_nowait(events)


class EventHub:
    """The one poller of a process and the streams it feeds."""

    def __init__(
        self,
        store: Callable[[], ResultsStore],
        *,
        poll_s: float = 0.5,
        idle_stop_s: float = 30.0,
        gap_ttl_s: float = 30.0,
        batch: int = queries.MAX_LIMIT,
        queue_max: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.poll_s = poll_s
        self.idle_stop_s = idle_stop_s
        self.gap_ttl_s = gap_ttl_s
        self.batch = batch
        self.queue_max = queue_max
        self.clock = clock
        self.polls = 0  #: polls made so far (the benchmark and tests read it)
        self._lock = threading.Lock()
        self._subs: set[Subscription] = set()
        self._cursor: dict[str, int] | None = None
        self._gaps: dict[str, dict[int, float]] = {kind: {} for kind in queries.EVENT_KINDS}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._errors = 0

    # -- streams ----------------------------------------------------------------------------------
    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def subscribe(self, loop: asyncio.AbstractEventLoop) -> Subscription:
        """A new stream's subscription, starting at the poller's position (blocking: call from a thread)."""
        with self._lock:
            if self._cursor is None:
                self._cursor = queries.latest_event_ids(self.store())
                for gaps in self._gaps.values():
                    gaps.clear()
            sub = Subscription(loop, self._cursor, self.queue_max)
            self._subs.add(sub)
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="devops-webui-events", daemon=True)
                self._thread.start()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    def replay(self, since: Mapping[str, int], until: Mapping[str, int]) -> tuple[list[Event], bool]:
        """The events stored after ``since`` up to ``until`` (a subscription's start), oldest first per kind;
        ``(events, truncated)``: none and True when there are more than :data:`REPLAY_MAX`."""
        wanted = {k: v for k, v in since.items() if v < until[k]}
        if not wanted:
            return [], False
        rows = queries.new_events(self.store(), after=since, limit=REPLAY_MAX + 1)
        rows = [r for r in rows if r["id"] <= until[r["kind"]]]
        if len(rows) > REPLAY_MAX or any(
            sum(1 for r in rows if r["kind"] == k) > REPLAY_MAX for k in queries.EVENT_KINDS
        ):
            return [], True
        cursor = dict(since)
        out = []
        for row in rows:
            cursor[row["kind"]] = max(cursor[row["kind"]], row["id"])
            out.append(Event(row["kind"], row["id"], row["dag_id"], row["data"], (cursor["failure"], cursor["alert"])))
        return out, False

    # -- the poller -------------------------------------------------------------------------------
    def poll_once(self) -> list[Event]:
        """One look at the store: the events stored since the last (and late commits below it)."""
        with self._lock:
            if self._cursor is None:
                return []
            after = dict(self._cursor)
            gaps = {kind: set(ids) for kind, ids in self._gaps.items() if ids}
        rows = queries.new_events(self.store(), after=after, also=gaps, limit=self.batch)
        self.polls += 1
        now = self.clock()
        events: list[Event] = []
        with self._lock:
            if self._cursor is None:
                return []
            cursor = self._cursor
            for row in rows:
                kind, row_id = row["kind"], row["id"]
                known = self._gaps[kind]
                if row_id <= cursor[kind]:
                    if known.pop(row_id, None) is None:
                        continue  # sent already
                else:
                    for missing in range(max(cursor[kind] + 1, row_id - 200), row_id):
                        known[missing] = now
                    cursor[kind] = row_id
                events.append(Event(kind, row_id, row["dag_id"], row["data"], (cursor["failure"], cursor["alert"])))
            for known in self._gaps.values():
                for row_id in [i for i, seen in known.items() if now - seen > self.gap_ttl_s]:
                    del known[row_id]
            subs = list(self._subs)
        if events:
            self._fan_out(subs, events)
        return events

    def _fan_out(self, subs: list[Subscription], events: list[Event]) -> None:
        for sub in subs:
            try:
                sub.loop.call_soon_threadsafe(sub.deliver, events)
            except RuntimeError:  # its loop is closed: the stream is gone
                self.unsubscribe(sub)

    def _run(self) -> None:
        idle_since: float | None = None
        wait = self.poll_s
        while not self._stop.wait(wait):
            with self._lock:
                if self._subs:
                    idle_since = None
                elif idle_since is None:
                    idle_since = self.clock()
                elif self.clock() - idle_since >= self.idle_stop_s:
                    self._thread = None
                    self._cursor = None  # the next stream starts from what is stored then
                    return
                active = bool(self._subs)
            wait = self.poll_s
            if active:
                try:
                    self.poll_once()
                    self._errors = 0
                except Exception:  # the database is down: keep trying, slower, and say so now and then
                    self._errors += 1
                    log.log(
                        logging.WARNING if self._errors in (1, 10) or self._errors % 100 == 0 else logging.DEBUG,
                        "Event poll failed (%d in a row)",
                        self._errors,
                        exc_info=True,
                    )
                    wait = min(5.0, self.poll_s * (1 + self._errors))

    def stop(self) -> None:
        """End the poller (the app's shutdown; tests)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
        with self._lock:
            self._thread = None
            self._cursor = None


async def stream(
    hub: EventHub,
    viewer: Viewer,
    allowed: Collection[str],
    *,
    resume: Mapping[str, int] | None = None,
    heartbeat_s: float = 15.0,
    max_age_s: float = 900.0,
) -> AsyncIterator[bytes]:
    """The bytes of one stream (see the module docstring): ``allowed`` are the DAGs whose events the
    viewer may see; an event of another DAG (an alert source seen for the first time) is checked with
    the auth manager once."""
    loop = asyncio.get_running_loop()
    may = set(allowed)
    refused: set[str] = set()
    sub = await run_in_threadpool(hub.subscribe, loop)

    async def visible(ev: Event) -> bool:
        if ev.dag_id in may:
            return True
        if ev.dag_id in refused:
            return False
        ok = await run_in_threadpool(viewer.may_read, ev.dag_id)
        (may if ok else refused).add(ev.dag_id)
        return ok

    try:
        yield f"retry: {RETRY_MS}\n\n".encode()
        sent: set[tuple[str, int]] = set()
        cursor = dict(sub.start)
        if resume is not None:
            replayed, truncated = await run_in_threadpool(hub.replay, resume, sub.start)
            if truncated:
                yield sse("truncated", {"reason": f"more than {REPLAY_MAX} events since that id: reload"})
            for ev in replayed:
                sent.add((ev.kind, ev.id))
                if await visible(ev):
                    yield sse(ev.kind, ev.data, ev.sse_id)
        yield sse("ready", {"kinds": list(queries.EVENT_KINDS), "user": viewer.name}, format_id(cursor))
        deadline = loop.time() + max_age_s
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return
            try:
                batch = await asyncio.wait_for(sub.queue.get(), timeout=min(heartbeat_s, left))
            except TimeoutError:
                if deadline - loop.time() > 0:
                    yield b": ping\n\n"
                continue
            if batch is _OVERFLOW:
                return
            for ev in batch:
                if (ev.kind, ev.id) in sent:
                    continue
                for kind, value in zip(("failure", "alert"), ev.cursor, strict=True):
                    cursor[kind] = max(cursor[kind], value)
                if await visible(ev):
                    yield sse(ev.kind, ev.data, format_id(cursor))
    finally:
        hub.unsubscribe(sub)
        with contextlib.suppress(Exception):
            sub.queue.put_nowait(_OVERFLOW)
