"""``CIRunActionTrigger``: wait in the triggerer until a re-run, cancel or redeploy sent to GitHub or GitLab
took effect, holding no worker slot. One event, then it ends:

* ``{"status": "done", "observed": {...}}``: what was waited for has ended (the new attempt completed,
  the run stopped, the deployment reached a final status, the retried jobs and their pipeline finished);
  ``observed`` holds the final state as the API answered it (see :func:`assess`);
* ``{"status": "not_cancelled", "observed": {...}}``: a GitHub run still not completed ``grace_until``
  (epoch seconds) after the cancel: the operator force-cancels it;
* ``{"status": "timeout", "observed": {...}}`` at ``deadline`` (epoch seconds);
* ``{"status": "error", "message": ..., "http_status": n}``: GitHub/GitLab refused to show it (401, 403,
  404: not found, or the token lost access) or stayed unreachable (connection errors, 5xx) for
  ``unreachable_timeout_s``.

What is watched (``watch["kind"]``), with one request per poll (GitLab pipelines: two, plus pages):

==============  =====================================================================================
``attempt``     GitHub ``GET /actions/runs/{run_id}/attempts/{attempt}`` until ``status`` is completed
``cancel``      GitHub ``GET /actions/runs/{run_id}`` / GitLab ``GET /pipelines/{pipeline_id}`` until completed
``deployment``  GitHub ``GET /deployments/{deployment_id}/statuses`` until the newest is final
``pipeline``    GitLab ``GET /pipelines/{pipeline_id}`` and its jobs (``include_retried``): every job newer
                than ``after_job_id`` completed and the pipeline completed
``job``         GitLab ``GET /jobs/{job_id}`` until completed
==============  =====================================================================================

Rate limits (GitHub 403/429 with ``x-ratelimit-remaining: 0`` or ``Retry-After``; GitLab 429) are waited
out (up to the deadline), not counted as unreachable. URLs and tokens come from the GitHub and GitLab
hooks (``async_client``: the connection is read with the async API).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

from airflow.triggers.base import BaseTrigger, TriggerEvent

CLASSPATH = "devops_automation.triggers.ci_run.CIRunActionTrigger"
KINDS = {"github": ("attempt", "cancel", "deployment"), "gitlab": ("pipeline", "job", "cancel")}
#: GitLab statuses of a finished pipeline or job (gitlab.md "Statuses")
GITLAB_COMPLETED = frozenset({"success", "failed", "canceled", "skipped"})
#: GitHub deployment status states after which nothing more happens
GITHUB_DEPLOYMENT_FINAL = frozenset({"success", "failure", "error", "inactive"})


class WatchError(Exception):
    """GitHub/GitLab answered something that waiting longer will not change (401, 403, 404, 4xx)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _pick(data: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {n: data.get(n) for n in names}


def assess(
    provider: str, kind: str, answers: Mapping[str, Any], watch: Mapping[str, Any]
) -> tuple[bool, dict[str, Any]]:
    """``(ended, observed)`` for one poll's answers: ``answers["main"]`` is the run, attempt, statuses
    list, pipeline or job; ``answers["jobs"]`` the pipeline's jobs (GitLab ``pipeline``)."""
    main = answers.get("main")
    if provider == "github" and kind in ("attempt", "cancel"):
        data = main or {}
        observed = _pick(data, "status", "conclusion", "run_attempt", "html_url", "updated_at", "run_started_at")
        return data.get("status") == "completed", observed
    if kind == "deployment":
        statuses = sorted(main or [], key=lambda s: (str(s.get("created_at") or ""), int(s.get("id") or 0)))
        newest = statuses[-1] if statuses else {}
        observed = {
            "state": newest.get("state"),
            "at": newest.get("created_at"),
            "log_url": newest.get("log_url") or newest.get("target_url") or None,
            "states": [s.get("state") for s in statuses],
        }
        return newest.get("state") in GITHUB_DEPLOYMENT_FINAL, observed
    if kind == "job":
        data = main or {}
        observed = _pick(data, "id", "name", "status", "finished_at", "web_url", "failure_reason")
        return data.get("status") in GITLAB_COMPLETED, observed
    if kind in ("pipeline", "cancel"):
        data = main or {}
        observed = _pick(data, "id", "status", "finished_at", "updated_at", "web_url")
        if kind == "cancel":
            return data.get("status") in GITLAB_COMPLETED, observed
        after = int(watch.get("after_job_id") or 0)
        jobs = list(answers.get("jobs") or [])
        new = sorted((j for j in jobs if int(j.get("id") or 0) > after), key=lambda j: int(j["id"]))
        names = {j.get("name") for j in new}
        observed["new_jobs"] = [_pick(j, "id", "name", "status") for j in new]
        replaced: dict[Any, int] = {}  # per name, the newest attempt from before the retry: the one it replaced
        for j in jobs:
            if int(j.get("id") or 0) <= after and j.get("name") in names:
                replaced[j.get("name")] = max(replaced.get(j.get("name"), 0), int(j["id"]))
        observed["retried_jobs"] = sorted(replaced.values())
        ended = bool(new) and all(j.get("status") in GITLAB_COMPLETED for j in new)
        return ended and data.get("status") in GITLAB_COMPLETED, observed
    raise ValueError(f"unknown watch kind {kind!r}")


class CIRunActionTrigger(BaseTrigger):
    def __init__(
        self,
        *,
        provider: str,
        repo: str,
        watch: dict[str, Any],
        deadline: float,
        conn_id: str | None = None,
        poll_interval: float = 30.0,
        grace_until: float | None = None,
        unreachable_timeout_s: float = 600.0,
        request_timeout_s: float = 30.0,
    ) -> None:
        super().__init__()
        if provider not in KINDS:
            raise ValueError(f"provider must be github or gitlab, got {provider!r}")
        if watch.get("kind") not in KINDS[provider]:
            raise ValueError(f"{provider} cannot watch {watch.get('kind')!r}: one of {', '.join(KINDS[provider])}")
        self.provider = provider
        self.repo = str(repo)
        self.watch = dict(watch)
        self.deadline = float(deadline)
        self.conn_id = conn_id or f"{provider}_default"
        self.poll_interval = float(poll_interval)
        self.grace_until = float(grace_until) if grace_until is not None else None
        self.unreachable_timeout_s = float(unreachable_timeout_s)
        self.request_timeout_s = float(request_timeout_s)
        self.requests_made = 0

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            CLASSPATH,
            {
                "provider": self.provider,
                "repo": self.repo,
                "watch": self.watch,
                "deadline": self.deadline,
                "conn_id": self.conn_id,
                "poll_interval": self.poll_interval,
                "grace_until": self.grace_until,
                "unreachable_timeout_s": self.unreachable_timeout_s,
                "request_timeout_s": self.request_timeout_s,
            },
        )

    # -- plumbing (tests replace _sleep and _clock) ------------------------------------------------
    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def _clock(self) -> float:
        return time.time()

    async def _client(self) -> Any:
        if self.provider == "github":
            from devops_automation.hooks.github import GitHubHook

            return await GitHubHook(self.conn_id).async_client(timeout=self.request_timeout_s)
        from devops_automation.hooks.gitlab import GitLabHook

        return await GitLabHook(self.conn_id).async_client(timeout=self.request_timeout_s)

    def _rate_wait(self, response: Any) -> float | None:
        """Seconds to wait for a rate limit, or None when the answer is not about one."""
        from devops_automation.hooks.api import parse_retry_after

        headers = response.headers
        retry_after = parse_retry_after(headers.get("retry-after"))
        if response.status_code not in (403, 429):
            return None
        if retry_after is not None:
            return retry_after
        if headers.get("x-ratelimit-remaining") == "0" and headers.get("x-ratelimit-reset"):
            try:
                return max(1.0, float(headers["x-ratelimit-reset"]) - self._clock() + 1)
            except ValueError:
                return 60.0
        return 60.0 if response.status_code == 429 else None

    async def _get(self, client: Any, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """One GET's JSON; raises :class:`WatchError` (final), ``_RateLimited`` or ``_Unreachable``."""
        import httpx

        self.requests_made += 1
        try:
            response = await client.get(path, params=dict(params or {}))
        except httpx.HTTPError as exc:
            raise _Unreachable(f"{type(exc).__name__}: {exc}") from None
        if response.status_code < 400:
            return response
        wait = self._rate_wait(response)
        if wait is not None:
            raise _RateLimited(wait)
        if response.status_code >= 500:
            raise _Unreachable(f"HTTP {response.status_code}")
        try:
            body = response.json()
            said = (body.get("message") or body.get("error")) if isinstance(body, dict) else str(body)
        except ValueError:
            said = response.text[:300]
        raise WatchError(response.status_code, f"GET {path} -> {response.status_code}: {said}")

    async def poll(self, client: Any) -> dict[str, Any]:
        """One look: the answers :func:`assess` reads."""
        kind, w = self.watch["kind"], self.watch
        if self.provider == "github":
            base = f"/repos/{self.repo}"
            if kind == "attempt":
                path = f"{base}/actions/runs/{int(w['run_id'])}/attempts/{int(w['attempt'])}"
            elif kind == "cancel":
                path = f"{base}/actions/runs/{int(w['run_id'])}"
            else:
                path = f"{base}/deployments/{int(w['deployment_id'])}/statuses"
                return {"main": (await self._get(client, path, {"per_page": 100})).json()}
            return {"main": (await self._get(client, path)).json()}
        project = self.repo if self.repo.isdigit() else quote(self.repo, safe="")
        base = f"/projects/{project}"
        if kind == "job":
            return {"main": (await self._get(client, f"{base}/jobs/{int(w['job_id'])}")).json()}
        pipeline = (await self._get(client, f"{base}/pipelines/{int(w['pipeline_id'])}")).json()
        if kind == "cancel":
            return {"main": pipeline}
        jobs: list[dict[str, Any]] = []
        page = 1
        while True:
            params = {"include_retried": "true", "per_page": 100, "page": page}
            response = await self._get(client, f"{base}/pipelines/{int(w['pipeline_id'])}/jobs", params)
            jobs += response.json() or []
            following = (response.headers.get("x-next-page") or "").strip()
            if not following.isdigit() or int(following) <= page:
                break
            page = int(following)
        return {"main": pipeline, "jobs": jobs}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # the client is closed before the event is yielded: whoever reads the first event (the triggerer,
        # or dag.test() with asyncio.run) may never resume this generator
        yield TriggerEvent(await self.wait())

    async def wait(self) -> dict[str, Any]:
        """Poll until something worth an event happened; returns the event's payload."""
        down_since: float | None = None
        observed: dict[str, Any] = {}
        async with await self._client() as client:
            while True:
                pause = self.poll_interval
                try:
                    answers = await self.poll(client)
                    down_since = None
                    ended, observed = assess(self.provider, self.watch["kind"], answers, self.watch)
                    if ended:
                        return {"status": "done", "observed": observed, "requests": self.requests_made}
                except WatchError as exc:
                    return {"status": "error", "message": str(exc), "http_status": exc.status, "observed": observed}
                except _RateLimited as exc:
                    self.log.warning("rate limited: waiting %.0f s", exc.wait)
                    pause = exc.wait
                except _Unreachable as exc:
                    now = self._clock()
                    down_since = down_since if down_since is not None else now
                    if now - down_since >= self.unreachable_timeout_s:
                        message = f"{self.provider} unreachable for {self.unreachable_timeout_s:.0f} s: {exc}"
                        return {"status": "error", "message": message, "http_status": None, "observed": observed}
                    self.log.warning("polling %s failed (%s); trying again", self.provider, exc)
                now = self._clock()
                if self.grace_until is not None and now >= self.grace_until:
                    return {"status": "not_cancelled", "observed": observed, "requests": self.requests_made}
                if now >= self.deadline:
                    return {"status": "timeout", "observed": observed, "requests": self.requests_made}
                until = min(self.deadline, self.grace_until or self.deadline)
                await self._sleep(max(0.0, min(pause, until - now)))


class _RateLimited(Exception):
    def __init__(self, wait: float) -> None:
        super().__init__(f"rate limited for {wait:.0f} s")
        self.wait = wait


class _Unreachable(Exception):
    pass
