"""The sandbox framework: one FastAPI process that stands in for every external API.

Each external system is a module (or package) in ``include/sandbox/systems/`` (see ``systems/__init__.py``)
mounted under its own path prefix (``/devlake``, ``/gitlab``, ``/openai`` ...). The framework adds,
for every system alike:

* a **record** of every request received (method, path, query, headers, body, status), which tests
  read through ``GET /_sandbox/requests`` to assert on what really reached the "remote" API;
* **fault injection** per route: a rule matches on system, method and a path regex and answers with
  a status (429 with ``Retry-After``, 500, ...) in the system's own error format, or only delays the
  response (slow responses); rules can skip the first N matches and expire after M uses;
* **latency** per system (or for all), to make benchmarks realistic;
* a **virtual clock** (real time plus manual advances) that systems with time-driven state
  (DevLake pipelines) read, so tests can move time forward instead of sleeping;
* deterministic **seeded data**: ``POST /_sandbox/reset`` rebuilds every system's state from a seed.

Nothing here imports Airflow; the sandbox runs as ``python -m include.sandbox`` from the project root.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

#: Header values that are never echoed back by ``GET /_sandbox/requests`` in full.
MAX_RECORDED_BODY = 256 * 1024


class SystemModule(Protocol):
    """What a module in ``include/sandbox/systems/`` provides (checked at start-up)."""

    NAME: str  # "devlake"
    PREFIX: str  # "/devlake"; the real API's paths follow below it

    def make_state(self, seed: int, sandbox: Sandbox) -> Any: ...  # fresh, deterministic state

    router: Any  # fastapi.APIRouter with the real API's routes, mounted at PREFIX
    control: Any  # fastapi.APIRouter with test controls, mounted at /_sandbox/<NAME>

    def error_response(self, status: int, message: str, retry_after: float | None) -> Response: ...


class FaultRule(BaseModel):
    """One injected fault. Matching requests get ``status`` (or only ``delay_ms`` when status is None)."""

    system: str | None = Field(None, description="system name; None matches every system")
    method: str | None = Field(None, description="HTTP method; None matches all")
    path: str = Field(".*", description="regex searched in the path below the system prefix")
    status: int | None = Field(500, description="status to answer; None = pass through after delay")
    message: str = Field("injected fault", description="error text, put into the system's error body")
    body: Any = Field(None, description="raw body to answer instead of the system's error format")
    content_type: str | None = Field(None, description="content type for a raw body (e.g. text/html)")
    retry_after: float | None = Field(None, description="seconds for Retry-After (and body fields)")
    delay_ms: int = Field(0, description="delay before answering (or before passing through)")
    skip: int = Field(0, description="let the first N matching requests through untouched")
    times: int | None = Field(None, description="apply to this many requests, then expire; None = always")
    id: int = 0
    matched: int = 0
    applied: int = 0


@dataclass
class RecordedRequest:
    id: int
    ts: float  # wall clock
    system: str
    method: str
    path: str  # path below the system prefix, as sent (still percent-encoded)
    query: str
    headers: dict[str, str]
    body: str
    status: int = 0
    fault: int | None = None  # id of the fault rule that answered, if any

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts": self.ts,
            "system": self.system,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": self.body,
            "status": self.status,
            "fault": self.fault,
        }


class VirtualClock:
    """Real monotonic time since start, plus manual advances, plus a base epoch."""

    def __init__(self, base_epoch: float | None = None) -> None:
        self.base = base_epoch if base_epoch is not None else time.time()
        self._t0 = time.monotonic()
        self.offset = 0.0
        self.speed = 1.0

    def now(self) -> float:
        return self.base + (time.monotonic() - self._t0) * self.speed + self.offset

    def advance(self, seconds: float) -> float:
        self.offset += seconds
        return self.now()


@dataclass
class Sandbox:
    """Shared state of one sandbox server: system states, request record, faults, latency, clock."""

    modules: dict[str, Any]
    seed: int = 0
    states: dict[str, Any] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    faults: list[FaultRule] = field(default_factory=list)
    latency_ms: dict[str, int] = field(default_factory=dict)  # system (or "*") -> ms
    clock: VirtualClock = field(default_factory=VirtualClock)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._fault_ids = itertools.count(1)
        self.reset(self.seed)

    # -- state ---------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        with self.lock:
            if seed is not None:
                self.seed = seed
            self.requests.clear()
            self.faults.clear()
            self.latency_ms.clear()
            self.clock = VirtualClock()
            self.states = {name: mod.make_state(self.seed, self) for name, mod in self.modules.items()}

    def state(self, system: str) -> Any:
        return self.states[system]

    # -- faults --------------------------------------------------------------------------------
    def add_fault(self, rule: FaultRule) -> FaultRule:
        with self.lock:
            rule.id = next(self._fault_ids)
            re.compile(rule.path)  # fail early on a bad regex
            self.faults.append(rule)
            return rule

    def match_fault(self, system: str, method: str, path: str) -> FaultRule | None:
        with self.lock:
            for rule in self.faults:
                if rule.system not in (None, system):
                    continue
                if rule.method not in (None, method.upper()):
                    continue
                if not re.search(rule.path, path):
                    continue
                if rule.times is not None and rule.applied >= rule.times:
                    continue
                rule.matched += 1
                if rule.matched <= rule.skip:
                    continue
                rule.applied += 1
                return rule
            return None

    # -- record --------------------------------------------------------------------------------
    def record(
        self, system: str, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> RecordedRequest:
        text = body[:MAX_RECORDED_BODY].decode("utf-8", errors="replace")
        rec = RecordedRequest(next(self._ids), time.time(), system, method, path, query, headers, text)
        with self.lock:
            self.requests.append(rec)
        return rec

    def find(
        self, system: str | None = None, method: str | None = None, path: str | None = None
    ) -> list[RecordedRequest]:
        with self.lock:
            out = list(self.requests)
        return [
            r
            for r in out
            if (system is None or r.system == system)
            and (method is None or r.method == method.upper())
            and (path is None or re.search(path, r.path))
        ]


def split_system(path: str, prefixes: dict[str, str]) -> tuple[str | None, str]:
    """Return (system name, path below its prefix) for a raw request path."""
    for name, prefix in prefixes.items():
        if path == prefix or path.startswith(prefix + "/"):
            return name, path[len(prefix) :] or "/"
    return None, path


class SandboxMiddleware:
    """ASGI middleware: record, add latency, apply faults, then call the system's route.

    Plain ASGI rather than Starlette's ``BaseHTTPMiddleware`` (``app.middleware("http")``), which
    passes every response through an in-memory stream and a task group: about a millisecond of CPU
    per request, which the benchmarks' many concurrent requests paid on the cores the code under test
    shares."""

    def __init__(self, app: Any, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox
        self.prefixes = {name: mod.PREFIX for name, mod in sandbox.modules.items()}

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path", b"").decode("latin-1") or scope["path"]
        system, sub = split_system(raw_path.split("?", 1)[0], self.prefixes)
        if system is None:
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:  # the whole body, recorded, then handed to the route as one message
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:  # the first value of a repeated header, as Starlette's Headers
            headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        sandbox = self.sandbox
        rec = sandbox.record(
            system, scope["method"], sub, scope.get("query_string", b"").decode("latin-1"), headers, body
        )
        latency = sandbox.latency_ms.get(system, sandbox.latency_ms.get("*", 0))
        rule = sandbox.match_fault(system, scope["method"], sub)
        delay = latency + (rule.delay_ms if rule else 0)
        if delay:
            await asyncio.sleep(delay / 1000)
        if rule is not None and rule.status is not None:
            rec.fault = rule.id
            response = fault_response(sandbox.modules[system], rule)
            rec.status = response.status_code
            await response(scope, receive, send)
            return
        delivered = False

        async def replay() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                return await receive()  # a disconnect, when it comes
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                rec.status = message["status"]
            await send(message)

        await self.app(scope, replay, sending)


def fault_response(module: Any, rule: FaultRule) -> Response:
    status = int(rule.status or 500)
    if rule.body is not None:
        if isinstance(rule.body, str):
            response: Response = Response(rule.body, status_code=status, media_type=rule.content_type or "text/plain")
        else:
            response = JSONResponse(rule.body, status_code=status)
    else:
        response = module.error_response(status, rule.message, rule.retry_after)
    if rule.retry_after is not None and "retry-after" not in response.headers:
        response.headers["Retry-After"] = str(
            int(rule.retry_after) if float(rule.retry_after).is_integer() else rule.retry_after
        )
    return response


def get_sandbox(request: Request) -> Sandbox:
    return request.app.state.sandbox


def json_error(
    status: int, body: Any, retry_after: float | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A JSON error response with an optional Retry-After header (helper for system modules)."""
    h = dict(headers or {})
    if retry_after is not None:
        h["Retry-After"] = str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
    return JSONResponse(body, status_code=status, headers=h)
