"""``DevLakePipelinesTrigger``: watch many DevLake pipelines from the triggerer, cheaply.

One poll walks DevLake's pipeline list (``GET /pipelines``, newest first, ``pageSize`` pages) down
to the oldest watched id, so the requests per poll grow with pages of results, not with the number
of blueprints or pipelines watched. The trigger yields one event and ends:

* ``{"status": "done", "pipelines": {...}}`` when every watched pipeline is final (or deleted);
* ``{"status": "failure", "new_failures": [...], ...}`` as soon as a watched pipeline fails that the
  task has not reported yet (so the alert does not wait for the slowest pipeline);
* ``{"status": "stale", "new_stale": [...], ...}`` when one runs longer than ``stale_after_s``;
* ``{"status": "error", "message": ...}`` when DevLake stayed unreachable for ``unreachable_timeout_s``.

It holds no worker slot: it runs in the triggerer, and ``poll_interval`` sleeps are ``asyncio.sleep``.
URL and auth come from :class:`~devops_automation.hooks.devlake.DevLakeHook` (connection ``devlake_default``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from devops_automation.triggers.devlake_watch import assess

CLASSPATH = "devops_automation.triggers.devlake.DevLakePipelinesTrigger"


class DevLakePipelinesTrigger(BaseTrigger):
    def __init__(
        self,
        *,
        pipeline_ids: list[int],
        devlake_conn_id: str = "devlake_default",
        poll_interval: float = 60.0,
        page_size: int = 100,
        known_failures: list[int] | None = None,
        known_stale: list[int] | None = None,
        stale_after_s: float | None = None,
        unreachable_timeout_s: float = 900.0,
        request_timeout_s: float = 30.0,
        deadline: float | None = None,
    ) -> None:
        super().__init__()
        self.pipeline_ids = sorted({int(i) for i in pipeline_ids})
        self.devlake_conn_id = devlake_conn_id
        self.poll_interval = float(poll_interval)
        self.page_size = int(page_size)
        self.known_failures = sorted({int(i) for i in known_failures or []})
        self.known_stale = sorted({int(i) for i in known_stale or []})
        self.stale_after_s = stale_after_s
        self.unreachable_timeout_s = float(unreachable_timeout_s)
        self.request_timeout_s = float(request_timeout_s)
        self.deadline = deadline
        self.requests_made = 0

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            CLASSPATH,
            {
                "pipeline_ids": self.pipeline_ids,
                "devlake_conn_id": self.devlake_conn_id,
                "poll_interval": self.poll_interval,
                "page_size": self.page_size,
                "known_failures": self.known_failures,
                "known_stale": self.known_stale,
                "stale_after_s": self.stale_after_s,
                "unreachable_timeout_s": self.unreachable_timeout_s,
                "request_timeout_s": self.request_timeout_s,
                "deadline": self.deadline,
            },
        )

    async def _client(self) -> Any:
        """DevLake's URL and auth come from :class:`~devops_automation.hooks.devlake.DevLakeHook`."""
        from devops_automation.hooks.devlake import DevLakeHook

        return await DevLakeHook(self.devlake_conn_id).async_client(timeout=self.request_timeout_s)

    async def _sleep(self, seconds: float) -> None:
        """Wait between polls (benchmarks replace it to move a simulated clock instead)."""
        await asyncio.sleep(seconds)

    async def list_pipelines(self, client: Any) -> list[dict[str, Any]]:
        """Every pipeline from the newest down to the oldest watched id (one or more pages)."""
        oldest = min(self.pipeline_ids)
        seen: list[dict[str, Any]] = []
        page = 1
        while True:
            self.requests_made += 1
            response = await client.get("/pipelines", params={"page": page, "pageSize": self.page_size})
            if response.status_code >= 400:
                raise RuntimeError(f"DevLake GET /pipelines -> {response.status_code}: {response.text[:300]}")
            items = (response.json() or {}).get("pipelines") or []
            seen += items
            if len(items) < self.page_size or min(int(p["id"]) for p in items) <= oldest:
                return seen
            page += 1

    @property
    def state(self) -> dict[str, Any]:
        """What the watching task needs to go on after this event (echoed in every event, because
        the deferring task's own kwargs do not survive every execution path)."""
        return {
            "pipeline_ids": self.pipeline_ids,
            "known_failures": self.known_failures,
            "known_stale": self.known_stale,
            "deadline": self.deadline,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # the HTTP client is closed before the event is yielded: whoever consumes the first event
        # (the triggerer, or dag.test() with asyncio.run) may never resume this generator
        yield TriggerEvent({**await self.watch(), "state": self.state})

    async def watch(self) -> dict[str, Any]:
        """Poll until something worth an event happened; returns the event's payload."""
        if not self.pipeline_ids:
            return {"status": "done", "pipelines": {}}
        down_since: float | None = None
        async with await self._client() as client:
            while True:
                try:
                    seen = await self.list_pipelines(client)
                except Exception as exc:  # noqa: BLE001 - DevLake down or answering errors: keep waiting, up to a limit
                    down_since = down_since or time.monotonic()
                    if time.monotonic() - down_since >= self.unreachable_timeout_s:
                        return {
                            "status": "error",
                            "message": f"DevLake unreachable for {self.unreachable_timeout_s:.0f}s: {exc}",
                        }
                    self.log.warning("polling DevLake failed (%s); retrying in %.0fs", exc, self.poll_interval)
                    await self._sleep(self.poll_interval)
                    continue
                down_since = None
                result = assess(
                    self.pipeline_ids,
                    seen,
                    now=dt.datetime.now(dt.UTC),
                    known_failures=self.known_failures,
                    known_stale=self.known_stale,
                    stale_after_s=self.stale_after_s,
                )
                if result.unknown_status:
                    self.log.warning(
                        "pipelines %s have a status this watcher does not know; treated as still running",
                        result.unknown_status,
                    )
                payload = {
                    "pipelines": {str(k): v for k, v in result.pipelines.items()},
                    "requests": self.requests_made,
                }
                if result.new_failures:
                    return {"status": "failure", "new_failures": result.new_failures, **payload}
                if result.all_terminal:
                    return {"status": "done", **payload}
                if result.new_stale:
                    return {"status": "stale", "new_stale": result.new_stale, **payload}
                await self._sleep(self.poll_interval)
