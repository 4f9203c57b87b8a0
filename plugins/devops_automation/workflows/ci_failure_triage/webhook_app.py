"""The GitLab webhook receiver of ``ci_failure_triage``: a FastAPI app served by the Airflow API server.

Mounted by the ``devops_automation_webhooks`` plugin at ``/devops-automation/webhooks``, so GitLab
posts to ``<api-server>/devops-automation/webhooks/gitlab``. Plugin apps are **not** protected by
Airflow's auth, so this app checks GitLab's ``X-Gitlab-Token`` itself. Per request, in this order:

1. the body is larger than the limit -> 413 (``Content-Length`` first, then a capped streaming
   read, so a chunked body without a length cannot exceed it either);
2. no secret configured -> 503 (fail closed); ``X-Gitlab-Token`` wrong or missing -> 401;
3. not JSON -> 400, wrong shape -> 422 (another event type, e.g. ``Push Hook``: 200 ignored);
4. not a finished failed pipeline (:func:`~devops_automation.workflows.ci_failure_triage.webhook.starts_triage`)
   -> 200 ``{"status": "ignored", "reason": ...}``;
5. start a ``ci_failure_triage`` run with ``conf={"events": [event]}`` -> 202 ``queued``; a run for
   the same project + pipeline exists already (a redelivery) -> 200 ``duplicate``; the DAG is
   not in the database yet -> 503 so that GitLab retries. A *paused* DAG is not an error: the
   queued run starts once the DAG is unpaused.

GitLab waits 10 s at most and disables a hook after 4 failed deliveries in a row, so the receiver
only inserts the queued run (milliseconds) and the DAG does the work.

Secret: env ``DEVOPS_GITLAB_WEBHOOK_TOKEN``, else the password of the Airflow connection
``gitlab_webhook`` (looked up at most once a minute). Body limit: env ``DEVOPS_WEBHOOK_MAX_BYTES``
(default 2 MiB). Airflow is imported only inside the functions that need it, so importing this
module is cheap. The token is never logged.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from devops_automation.workflows.ci_failure_triage.webhook import (
    HookEvent,
    HookRejected,
    UnsupportedHook,
    parse_gitlab_hook,
    starts_triage,
    token_matches,
)

log = logging.getLogger(__name__)

DAG_ID = "ci_failure_triage"
TOKEN_ENV = "DEVOPS_GITLAB_WEBHOOK_TOKEN"
MAX_BYTES_ENV = "DEVOPS_WEBHOOK_MAX_BYTES"
CONN_ID = "gitlab_webhook"
DEFAULT_MAX_BYTES = 2 * 1024 * 1024
SECRET_TTL = 60.0  #: seconds a connection lookup (found or not) is reused

TokenProvider = Callable[[], Any]  # returns str | None, or an awaitable of it
Starter = Callable[[HookEvent], Any]  # returns the dag_run_id (str), or an awaitable of it


class AlreadyTriggered(Exception):
    """The starter found a run for this project + pipeline already (GitLab redelivered)."""

    def __init__(self, run_id: str | None = None) -> None:
        super().__init__(f"a run {run_id or ''} exists already".replace("  ", " "))
        self.run_id = run_id


class TriageUnavailable(Exception):
    """The run cannot be created now (e.g. the DAG is not parsed yet); answered with 503."""


class _BodyTooLarge(Exception):
    pass


class _SecretUnavailable(Exception):
    """Reading the connection failed; carries only the error's type name, never its message (values)."""


# -- configuration --------------------------------------------------------------------------------
def configured_max_bytes() -> int:
    """``DEVOPS_WEBHOOK_MAX_BYTES`` or 2 MiB (a bad value is logged and the default used)."""
    raw = os.environ.get(MAX_BYTES_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_BYTES
    try:
        value = int(raw)
        if value <= 0:
            raise ValueError
    except ValueError:
        log.warning(
            "%s must be a positive whole number of bytes, got %r; using %d", MAX_BYTES_ENV, raw[:20], DEFAULT_MAX_BYTES
        )
        return DEFAULT_MAX_BYTES
    return value


class SecretSource:
    """The webhook secret: the env var (read every time), else the connection's password (cached)."""

    def __init__(self, conn_id: str = CONN_ID, ttl: float = SECRET_TTL) -> None:
        self.conn_id, self.ttl = conn_id, ttl
        self._lock = threading.Lock()
        self._value: str | None = None
        self._expires = 0.0

    def __call__(self) -> str | None:
        env = os.environ.get(TOKEN_ENV)
        if env:
            return env
        with self._lock:
            now = time.monotonic()
            if now >= self._expires:
                try:
                    self._value = self._from_connection()
                except _SecretUnavailable as exc:  # fail closed
                    log.warning("Reading connection %r failed (%s); the webhook stays closed", self.conn_id, exc)
                    self._value = None
                self._expires = now + self.ttl
            return self._value

    def _from_connection(self) -> str | None:
        try:
            from airflow.exceptions import AirflowNotFoundException
            from airflow.models.connection import Connection
        except Exception:  # pragma: no cover - Airflow is always there in the API server
            log.exception("Cannot import Airflow to read connection %r", self.conn_id)
            return None
        try:
            conn = Connection.get_connection_from_secrets(self.conn_id)
        except AirflowNotFoundException:
            return None
        except Exception as exc:  # DB down, secrets backend error: only the type name goes on, never values
            raise _SecretUnavailable(type(exc).__name__) from exc
        return conn.password or None


# -- the default starter: a queued DAG run in the metadata DB -------------------------------------
def run_id_for(ev: HookEvent) -> str:
    return f"gitlab_webhook__{ev.project_id}__{ev.pipeline_id}"


def trigger_triage_run(ev: HookEvent, dag_id: str = DAG_ID) -> str:
    """Create the queued ``ci_failure_triage`` run for ``ev`` (sync; call it in a threadpool)."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagNotFound, DagRunAlreadyExists
    from airflow.models import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType
    from sqlalchemy.exc import IntegrityError

    run_id = run_id_for(ev)
    try:
        with create_session() as session:
            dag_run = trigger_dag(
                dag_id,
                run_id=run_id,
                conf={"events": [ev.to_event()]},
                triggered_by=DagRunTriggeredByType.REST_API,
                session=session,
            )
            return dag_run.run_id if dag_run is not None else run_id
    except DagRunAlreadyExists as exc:
        raise AlreadyTriggered(run_id) from exc
    except DagNotFound as exc:
        raise TriageUnavailable(f"DAG {dag_id!r} is not in the Airflow database yet (not parsed, or removed)") from exc
    except IntegrityError as exc:  # two deliveries raced past the duplicate check
        if DagRun.find_duplicate(dag_id=dag_id, run_id=run_id) is not None:
            raise AlreadyTriggered(run_id) from exc
        raise


# -- the app --------------------------------------------------------------------------------------
async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise _BodyTooLarge
        except ValueError:
            pass  # a bad Content-Length: the capped read below still holds
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    *, token_provider: TokenProvider | None = None, starter: Starter | None = None, max_body_bytes: int | None = None
) -> FastAPI:
    """The receiver app; the defaults read the real secret and create real DAG runs."""
    provider: TokenProvider = token_provider or SecretSource()
    start: Starter = starter or trigger_triage_run
    fixed_limit = max_body_bytes
    app = FastAPI(title="devops-automation GitLab webhooks", docs_url=None, redoc_url=None, openapi_url=None)

    def reply(code: int, /, **body: Any) -> JSONResponse:
        return JSONResponse(body, status_code=code)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/gitlab")
    async def gitlab(request: Request) -> JSONResponse:
        limit = fixed_limit if fixed_limit is not None else configured_max_bytes()
        try:
            raw = await _read_capped(request, limit)
        except _BodyTooLarge:
            return reply(413, status="rejected", detail=f"body larger than {limit} bytes")

        secret = await _maybe_await(await run_in_threadpool(provider))
        if not secret:
            log.error(
                "GitLab webhook refused: webhook secret not configured (set %s or connection %r)", TOKEN_ENV, CONN_ID
            )
            return reply(503, status="unavailable", detail="webhook secret not configured")
        if not token_matches(request.headers.get("x-gitlab-token"), secret):
            log.warning(
                "GitLab webhook refused: missing or wrong X-Gitlab-Token (from %s)",
                request.client.host if request.client else "?",
            )
            return reply(401, status="rejected", detail="invalid or missing X-Gitlab-Token")

        try:
            ev = parse_gitlab_hook(
                request.headers.get("x-gitlab-event"),
                raw,
                idempotency_key=request.headers.get("idempotency-key"),
                event_uuid=request.headers.get("x-gitlab-event-uuid"),
            )
        except UnsupportedHook as exc:
            return reply(200, status="ignored", reason=str(exc))
        except HookRejected as exc:
            log.warning("GitLab webhook rejected (%d): %s", exc.status_code, exc)
            return reply(exc.status_code, status="rejected", detail=str(exc))

        go, reason = starts_triage(ev)
        if not go:
            log.info("GitLab %s hook ignored: %s", ev.kind, reason)
            return reply(200, status="ignored", reason=reason)

        try:
            run_id = await _maybe_await(await run_in_threadpool(start, ev))
        except AlreadyTriggered as exc:
            log.info("GitLab pipeline %s of project %s: run exists already (redelivery)", ev.pipeline_id, ev.project_id)
            return reply(200, status="duplicate", dag_run_id=exc.run_id or run_id_for(ev))
        except TriageUnavailable as exc:
            log.error("GitLab pipeline %s of project %s not queued: %s", ev.pipeline_id, ev.project_id, exc)
            return reply(503, status="unavailable", detail=str(exc))
        except Exception:
            log.exception("GitLab pipeline %s of project %s: starting %s failed", ev.pipeline_id, ev.project_id, DAG_ID)
            return reply(503, status="unavailable", detail=f"could not start {DAG_ID}; GitLab will retry")
        log.info(
            "GitLab pipeline %s of project %s failed: queued %s run %s", ev.pipeline_id, ev.project_id, DAG_ID, run_id
        )
        return reply(202, status="queued", dag_run_id=str(run_id))

    return app
