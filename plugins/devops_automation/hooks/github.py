"""GitHub REST API hook (connection ``github_default``) for the ``ci_pipeline_analytics`` DAG.

Connection: type ``github`` (``http`` works too); host = the API base URL: empty for
``https://api.github.com``; ``https://HOST/api/v3`` for GitHub Enterprise Server (a bare
``https://HOST`` gets ``/api/v3``; ``https://api.SUBDOMAIN.ghe.com`` is used as it is); password = a
token: a classic PAT (``repo`` for private repositories), a fine-grained PAT or an installation token
with read access to Actions, Deployments, Contents and Metadata. Extras: ``max_rate_limit_wait``
(seconds, default 60, see below) plus :class:`ApiHook`'s ``timeout``, ``max_retries``,
``backoff_initial``, ``backoff_max``, ``max_retry_wait``, ``headers``.

GitHub facts this hook encodes (``/work/shared/api/github.md`` §1.6-1.8, ``github-actions.md``):

* every request sends ``Authorization: Bearer <token>``, ``Accept: application/vnd.github+json``
  and ``X-GitHub-Api-Version: 2022-11-28``;
* lists are paged by following the ``Link`` header's ``rel="next"`` URL (never built by hand; the
  token only goes to the API's own host), ``per_page=100``;
* the runs list answers at most 1,000 results when filtered (``created=`` included):
  :meth:`GitHubHook.runs_in_window` splits the time window until every slice is under the cap;
* rate limits, in the documented order: ``retry-after`` present -> wait that long (a secondary
  limit; honoured up to ``max_retry_wait`` as :class:`ApiHook` does); else ``x-ratelimit-remaining: 0``
  on a 403/429 -> the primary limit: wait until ``x-ratelimit-reset`` when that is at most
  ``max_rate_limit_wait`` away; else a 429, or a 403 whose message names a rate limit -> wait 60 s,
  then 120 s, 240 s, ... A wait longer than its limit is not slept: :class:`GitHubRateLimited` is
  raised with ``reset_at`` so that the caller can defer until then. A 403 that is not about rate
  limits (the token lacks a permission) fails at once;
* conditional requests: :meth:`GitHubHook.get_json_cached` and the list methods send
  ``If-None-Match`` with the ETag stored in the hook's :class:`~devops_automation.store.http_cache.HttpCache`
  and reuse the stored body on ``304`` (which costs no rate limit when authenticated).

Project health (``daily_project_metrics``): repository figures, PRs/issues/comments/reviews,
commits in a window, contributors, commit activity (``202`` waited for, then "pending"), releases,
Dependabot / code-scanning / secret-scanning alerts and default-branch protection. A 403/404 on an
alert list is not a failure: those methods return :class:`NoAccess` (the token may not read it, or the
feature is off); protection falls back from ``/branches/{b}/protection`` (needs the Administration
permission; 404 "Branch not protected" is "off") to ``/branches/{b}`` (``protected``, readable with
Contents: read). Issue writes (open, comment, close) for the issues the DAG opens: they are found
again by listing the label's issues and matching a marker in the body (not through the search API,
whose index lags behind writes: a just-opened issue could be missed and opened twice).

Acting on runs (``ci_run_action``): re-run a run (``/rerun``, 201), its failed jobs
(``/rerun-failed-jobs``) or one job (``/jobs/{id}/rerun``), cancel (``/cancel``, 202; 409 once completed)
and force-cancel (``/force-cancel``, for a run that ignored the cancel), create a deployment. A 403 on
one of these writes is :class:`GitHubPermissionError` naming the permission (``actions:write``,
``deployments:write``); GitHub itself names none (``Resource not accessible by personal access token``).
:meth:`GitHubHook.async_client` gives the triggerer an ``httpx`` client with the same URL and token.

Counters the benchmark reads: ``request_count`` (HTTP requests sent, retries included),
``not_modified_count`` (304 answers), ``rate_limit_cost`` (rate-limit points spent as observed from
``x-ratelimit-used`` between answers), ``rate_limited_count``, ``rate_limit_wait_seconds``,
``window_splits``; :meth:`GitHubHook.counters` returns them together.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import itertools
import math
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import requests
from tenacity import RetryCallState

from devops_automation.hooks.api import ApiError, ApiHook, NotJsonError, parse_retry_after
from devops_automation.store.http_cache import HttpCache, cache_key

if TYPE_CHECKING:
    from airflow.sdk import Connection

DEFAULT_API_URL = "https://api.github.com"
ENTERPRISE_SUFFIX = "/api/v3"
MEDIA_TYPE = "application/vnd.github+json"
API_VERSION = "2022-11-28"
MAX_PER_PAGE = 100
#: results a filtered runs list can reach (``created``, ``branch``, ``status``, ... filters)
SEARCH_CAP = 1000
DEFAULT_MAX_RATE_LIMIT_WAIT = 60.0
#: the docs' wait for a rate-limit answer that names no time: at least a minute, then doubling
SECONDARY_MIN_WAIT = 60.0
#: added to a primary limit's reset time (whole seconds, and clocks differ a little)
RESET_MARGIN = 1.0
REPO_RE = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
#: a 403 without rate-limit headers is a rate limit when its message says so (older text: "abuse")
LIMIT_WORDS = ("rate limit", "abuse detection")
#: a workflow run's (and attempt's) ``status`` once it has ended; ``conclusion`` is then set
RUN_COMPLETED = "completed"
#: conclusions of a run that has a failed (or cancelled) job: ``rerun-failed-jobs`` has something to do
RUN_FAILED_CONCLUSIONS = frozenset({"failure", "timed_out", "cancelled", "startup_failure"})
#: GitHub re-runs a run up to 30 days after it was created, at most 50 times (github-actions.md)
RERUN_MAX_AGE = dt.timedelta(days=30)
RERUN_MAX_ATTEMPTS = 50
#: deployment status states after which nothing more happens to a deployment
DEPLOYMENT_FINAL_STATES = frozenset({"success", "failure", "error", "inactive"})
#: the permission a 403 on a write lacks, as GitHub names it for fine-grained tokens and GitHub Apps
ACTIONS_WRITE = "actions:write (fine-grained token or GitHub App: Actions = Read and write; classic token: repo scope)"
DEPLOYMENTS_WRITE = (
    "deployments:write (fine-grained token or GitHub App: Deployments = Read and write; classic token: repo scope)"
)

Params = Mapping[str, Any] | Iterable[tuple[str, Any]] | None


class GitHubRateLimited(ApiError):
    """GitHub's rate limit refuses requests until ``reset_at`` (aware UTC), longer than this hook
    waits (or its retries ran out): defer the work until then.

    ``kind`` is ``primary`` (the hourly budget: ``x-ratelimit-remaining: 0``) or ``secondary``;
    ``source`` says where the wait came from: ``retry-after``, ``reset`` or ``backoff`` (no header);
    ``retry_after`` is the wait in seconds that was asked for."""

    def __init__(
        self,
        method: str,
        path: str,
        status: int,
        message: str,
        *,
        reset_at: dt.datetime,
        wait: float,
        kind: str,
        source: str,
        resource: str | None = None,
        body: Any = None,
    ) -> None:
        where = f" ({resource})" if resource else ""
        text = f"{kind} rate limit{where} until {reset_at:%Y-%m-%d %H:%M:%S} UTC ({wait:.0f} s): {message}"
        super().__init__("GitHub", method, path, status, text, retry_after=wait, body=body)
        self.reset_at = reset_at
        self.kind = kind
        self.source = source
        self.resource = resource


class NoAccess:
    """A GitHub area this token may not read, or that is off for the repository (a 403 or 404 on an
    alert list, or on both protection endpoints): record it as "no access", not as a failure.

    ``what`` names the area (``dependabot_alerts``, ...), ``status`` and ``message`` are GitHub's
    answer. Falsy, so ``if alerts:`` reads naturally; ``no_access`` is always True (a pure caller can
    test ``getattr(result, "no_access", False)`` without importing this module)."""

    no_access = True

    def __init__(self, what: str, status: int | None, message: str) -> None:
        self.what = what
        self.status = status
        self.message = message

    def __bool__(self) -> bool:
        return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NoAccess) and (self.what, self.status, self.message) == (
            other.what,
            other.status,
            other.message,
        )

    def __hash__(self) -> int:
        return hash((self.what, self.status, self.message))

    def __repr__(self) -> str:
        return f"NoAccess({self.what!r}, {self.status!r}, {self.message!r})"


class GitHubPermissionError(ApiError):
    """GitHub refused a write with 403 (not a rate limit): the token lacks ``permission``."""

    def __init__(self, error: ApiError, permission: str) -> None:
        super().__init__(
            error.system,
            error.method,
            error.path,
            error.status,
            f"the token lacks {permission}; GitHub said {_said(error)!r}",
            body=error.body,
        )
        self.permission = permission


def github_time(value: dt.datetime, name: str = "time") -> str:
    """An aware datetime as GitHub's ISO 8601 parameter (UTC, whole seconds, ``Z``)."""
    if not isinstance(value, dt.datetime):
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    _aware(name, value)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _said(exc: ApiError) -> str:
    """GitHub's own message of an error (without this hook's hints)."""
    body = exc.body
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return exc.message


def repo_path(repo: str) -> str:
    """``/repos/{owner}/{name}`` for ``"owner/name"``."""
    text = str(repo or "").strip().strip("/")
    if not REPO_RE.fullmatch(text):
        raise ValueError(f"a GitHub repository is 'owner/name', got {repo!r}")
    return f"/repos/{text}"


def created_between(lo: int, hi: int) -> str:
    """The ``created`` filter for whole seconds ``lo`` to ``hi``, both included (GitHub's range syntax)."""

    def stamp(t: int) -> str:
        return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return f"{stamp(lo)}..{stamp(hi)}"


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO timestamp as GitHub writes it (``2026-01-01T12:00:00Z``) -> aware UTC; None if unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


@functools.lru_cache(maxsize=64)  # asked twice per request
def api_url_of(base_url: str) -> str:
    """The API base URL of a connection's base URL: as given, ``/api/v3`` added to a bare Enterprise
    Server host, ``https://api.github.com`` for ``github.com``."""
    base = base_url.rstrip("/")
    parts = urlsplit(base)
    host = (parts.hostname or "").lower()
    if parts.path in ("", "/") and host == "github.com":
        return DEFAULT_API_URL
    if parts.path in ("", "/") and host and host != "api.github.com" and not host.startswith("api."):
        return base + ENTERPRISE_SUFFIX
    return base


def _aware(name: str, value: dt.datetime) -> None:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")


def _int(value: str | None) -> int | None:
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None


class GitHubHook(ApiHook):
    """Typed access to the GitHub REST API (Actions runs, attempts and jobs, organisation
    repositories, deployments, compare). See the module docstring for the connection."""

    conn_name_attr = "github_conn_id"
    default_conn_name = "github_default"
    conn_type = "github"
    hook_name = "GitHub"
    system = "GitHub"
    default_host = DEFAULT_API_URL  # HttpHook's base URL when the connection has no host
    test_path = "/rate_limit"
    #: the time rate-limit waits are computed against (tests replace it)
    clock = staticmethod(time.time)

    def __init__(
        self,
        github_conn_id: str = default_conn_name,
        *,
        cache: HttpCache | None = None,
        max_rate_limit_wait: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(github_conn_id, **kwargs)
        self.github_conn_id = github_conn_id
        self.cache = cache
        self._max_rate_limit_wait = max_rate_limit_wait
        self.not_modified_count = 0
        self.rate_limit_cost = 0
        self.rate_limited_count = 0
        self.rate_limit_wait_seconds = 0.0
        self.window_splits = 0
        #: the last rate-limit headers seen: resource, limit, remaining, used, reset
        self.rate_limit: dict[str, Any] = {}
        self._rate_seen: dict[str, tuple[int, int]] = {}  # resource -> (reset, used) last seen
        self._backoff_streak = 0

    # -- configuration ---------------------------------------------------------------------------
    @property
    def max_rate_limit_wait(self) -> float:
        if self._max_rate_limit_wait is not None:
            return float(self._max_rate_limit_wait)
        return self._extra_float("max_rate_limit_wait", DEFAULT_MAX_RATE_LIMIT_WAIT)

    def auth_headers(self, conn: Connection) -> dict[str, str]:
        if not conn.password:
            self.log.warning(
                "Connection %r has no token (password): anonymous requests, 60 an hour, public repositories only",
                self.github_conn_id,
            )
            return {}
        return {"Authorization": f"Bearer {conn.password}"}

    @cached_property
    def session(self) -> requests.Session:
        session = super().session
        custom = {str(k).lower() for k in (self.extras.get("headers") or {})}
        if "accept" not in custom:
            session.headers["Accept"] = MEDIA_TYPE
        if "x-github-api-version" not in custom:
            session.headers["X-GitHub-Api-Version"] = API_VERSION
        session.hooks["response"].append(self._observe)
        return session

    @property
    def api_url(self) -> str:
        """The API base URL: the host as given, ``/api/v3`` added to a bare Enterprise Server host."""
        _ = self.session  # resolves base_url
        return api_url_of(self.base_url)

    def url(self, path: str) -> str:
        """An API path below :attr:`api_url`, or an absolute URL from a ``Link`` header (only on the
        API's own host: the token is never sent elsewhere)."""
        base = self.api_url
        if path.startswith(("http://", "https://")):
            if urlsplit(path).netloc.lower() != urlsplit(base).netloc.lower():
                raise ApiError(self.system, "GET", path, None, f"refusing to follow a link away from {base}")
            return path
        return base + "/" + path.lstrip("/")

    # -- errors and rate limits ------------------------------------------------------------------
    def error_message(self, response: requests.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not body.get("message"):
            return super().error_message(response) if response.content else f"{response.status_code} (empty body)"
        message = str(body["message"])
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            details = [
                str(e.get("message") or f"{e.get('field', '?')} {e.get('code', 'invalid')}")
                if isinstance(e, dict)
                else str(e)
                for e in errors
            ]
            message = f"{message}: {'; '.join(details)}"
        hint = {
            401: f"check the token (password) of connection {self.github_conn_id!r}",
            404: "no such repository or resource, or the token cannot see it",
        }.get(response.status_code)
        return f"{message} ({hint})" if hint else message

    def _error(self, method: str, path: str, response: requests.Response) -> ApiError:
        error = super()._error(method, path, response)
        if response.status_code in (403, 429):
            return self._rate_limited(method, path, response, error) or self._forbidden(error)
        return error

    def _forbidden(self, error: ApiError) -> ApiError:
        if error.status != 403:
            return error
        return ApiError(
            error.system,
            error.method,
            error.path,
            error.status,
            f"{error.message} (the token lacks access to this resource; not a rate limit)",
            body=error.body,
        )

    def _rate_limited(
        self, method: str, path: str, response: requests.Response, error: ApiError
    ) -> GitHubRateLimited | None:
        """The rate-limit error of a 403/429, or None for a 403 that is about access."""
        headers = response.headers
        now = self.clock()
        retry_after = parse_retry_after(headers.get("Retry-After"))
        remaining = _int(headers.get("x-ratelimit-remaining"))
        reset = _int(headers.get("x-ratelimit-reset"))
        resource = headers.get("x-ratelimit-resource")
        if retry_after is not None:
            wait, kind, source, reset_at = retry_after, "secondary", "retry-after", now + retry_after
        elif remaining == 0 and reset is not None:
            wait, kind, source, reset_at = max(0.0, reset - now) + RESET_MARGIN, "primary", "reset", float(reset)
        elif remaining == 0 or response.status_code == 429 or any(w in error.message.lower() for w in LIMIT_WORDS):
            wait = SECONDARY_MIN_WAIT * 2**self._backoff_streak
            self._backoff_streak += 1
            kind = "primary" if remaining == 0 else "secondary"
            source, reset_at = "backoff", now + wait
        else:
            return None
        self.rate_limited_count += 1
        return GitHubRateLimited(
            method,
            path,
            response.status_code,
            error.message,
            reset_at=dt.datetime.fromtimestamp(reset_at, dt.UTC),
            wait=wait,
            kind=kind,
            source=source,
            resource=resource,
            body=error.body,
        )

    def is_retryable(self, exc: BaseException, method: str) -> bool:
        if isinstance(exc, GitHubRateLimited):  # refused before anything happened: any method may retry
            if exc.retry_after is None:
                return False
            if exc.source == "retry-after":
                return exc.retry_after <= self._extra_float("max_retry_wait", self.default_max_retry_wait)
            needed = exc.retry_after - (RESET_MARGIN if exc.source == "reset" else 0.0)
            return needed <= self.max_rate_limit_wait
        return super().is_retryable(exc, method)

    def _wait(self, state: RetryCallState) -> float:
        wait = super()._wait(state)
        if state.outcome is not None and isinstance(state.outcome.exception(), GitHubRateLimited):
            self.rate_limit_wait_seconds += wait
        return wait

    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Response hook: 304s, and the rate-limit points spent (``x-ratelimit-used`` deltas)."""
        status = response.status_code
        if status == 304:
            self.not_modified_count += 1
        if status < 400:
            self._backoff_streak = 0
        headers = response.headers
        limit, remaining = _int(headers.get("x-ratelimit-limit")), _int(headers.get("x-ratelimit-remaining"))
        used, reset = _int(headers.get("x-ratelimit-used")), _int(headers.get("x-ratelimit-reset"))
        if used is None and limit is not None and remaining is not None:
            used = limit - remaining
        if used is None or reset is None:
            return
        resource = headers.get("x-ratelimit-resource") or "core"
        seen = self._rate_seen.get(resource)
        if seen is None:  # the first answer: what it cost is not in the headers alone
            free = status == 304 or (remaining == 0 and status in (403, 429))
            spent = 0 if free or urlsplit(response.url).path.endswith("/rate_limit") else 1
        elif seen[0] == reset:
            spent = max(0, used - seen[1])
        else:  # a new window began after the previous answer: everything it counted came since
            spent = used
        self.rate_limit_cost += spent
        self._rate_seen[resource] = (reset, used)
        self.rate_limit = {"resource": resource, "limit": limit, "remaining": remaining, "used": used, "reset": reset}

    def counters(self) -> dict[str, Any]:
        """What this hook did so far (for logs and benchmarks)."""
        return {
            "requests": self.request_count,
            "not_modified": self.not_modified_count,
            "rate_limit_cost": self.rate_limit_cost,
            "rate_limited": self.rate_limited_count,
            "rate_limit_wait_seconds": self.rate_limit_wait_seconds,
            "window_splits": self.window_splits,
            "rate_limit": dict(self.rate_limit),
        }

    # -- GET with ETags, and paging --------------------------------------------------------------
    def _json(self, response: requests.Response, path: str) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            ctype = response.headers.get("Content-Type", "?")
            snippet = " ".join(response.text[:200].split())
            raise NotJsonError(
                self.system,
                "GET",
                path,
                response.status_code,
                f"expected JSON but got {ctype!r}: {snippet!r} (is the connection's host the API base URL?)",
            ) from None

    def _fetched_at(self, response: requests.Response) -> dt.datetime:
        """When the server answered (its ``Date`` header), else now by :attr:`clock`."""
        try:
            when = email.utils.parsedate_to_datetime(response.headers.get("Date", ""))
        except (TypeError, ValueError):
            when = None
        if when is None or when.tzinfo is None:
            return dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        return when.astimezone(dt.UTC)

    def fetch(self, path: str, params: Params = None, *, cached: bool = True) -> tuple[Any, str | None]:
        """One GET: ``(JSON body, next page URL or None)``. With a cache (and ``cached``), sends
        ``If-None-Match`` with the stored ETag; a 304 returns the stored body (and stored next link
        when the 304 carries no ``Link``). ``path`` may be a ``Link`` URL."""
        cache = self.cache if cached else None
        key = None
        entry = None
        headers: dict[str, str] = {}
        if cache is not None:
            key = cache_key("GET", self.url(path), params, system="github")
            entry = cache.get(key)
            if entry is not None and entry[0]:
                headers["If-None-Match"] = entry[0]
        response = self.request("GET", path, params=params, headers=headers)
        following = response.links.get("next", {}).get("url")
        if response.status_code == 304:
            stored = entry[1] if entry is not None else None
            if isinstance(stored, dict) and "body" in stored:
                return stored["body"], following or stored.get("next")
            # an entry this hook did not write: ask again without the condition, and replace it
            self.log.warning("GET %s: 304 for a cache entry without a body; fetching it again", path)
            response = self.request("GET", path, params=params)
            following = response.links.get("next", {}).get("url")
        body = self._json(response, path)
        etag = response.headers.get("ETag")
        if cache is not None and key is not None and etag:
            cache.put(key, response.url, etag, {"body": body, "next": following}, self._fetched_at(response))
        return body, following

    def get_json_cached(self, path: str, params: Params = None) -> Any:
        """A GET's JSON body, conditional on the cached ETag (a 304 returns the cached body)."""
        return self.fetch(path, params)[0]

    def pages(self, path: str, params: Params = None, *, cached: bool = True) -> Iterator[Any]:
        """Every page body of a list, following ``Link: rel="next"`` (per_page kept in the links)."""
        url: str | None = path
        query: Params = params
        seen: set[str] = set()
        while url is not None:
            body, following = self.fetch(url, query, cached=cached)
            yield body
            if following is None or following in seen:
                return
            seen.add(following)
            url, query = following, None

    def _items(self, path: str, params: Params, field: str | None) -> Iterator[dict[str, Any]]:
        """The items of every page: ``body[field]`` (a dict per page) or the page itself (a list)."""
        for body in self.pages(path, params):
            items = body.get(field) if field is not None and isinstance(body, dict) else body
            if not isinstance(items, list):
                raise ApiError(
                    self.system,
                    "GET",
                    path,
                    200,
                    f"expected a list{f' in {field!r}' if field else ''}, got {type(items).__name__}",
                )
            yield from items

    # -- Actions runs ----------------------------------------------------------------------------
    def list_runs(self, repo: str, created: str, *, per_page: int = MAX_PER_PAGE) -> Iterator[dict[str, Any]]:
        """Every workflow run of ``repo`` whose creation time matches ``created`` (GitHub's date
        syntax: ``2026-01-01``, ``A..B``, ``>=A``, ...), newest first, as the API sends them. GitHub
        lists at most 1,000 of them: a warning says when there are more (use :meth:`runs_in_window`)."""
        path = f"{repo_path(repo)}/actions/runs"
        params = {"created": created, "per_page": max(1, min(int(per_page), MAX_PER_PAGE))}
        first = True
        for body in self.pages(path, params):
            if not isinstance(body, dict) or not isinstance(body.get("workflow_runs"), list):
                raise ApiError(self.system, "GET", path, 200, "expected {total_count, workflow_runs}")
            if first and int(body.get("total_count") or 0) > SEARCH_CAP:
                self.log.warning(
                    "%s: %s runs created %s, but GitHub lists only %d of them; use runs_in_window",
                    repo,
                    body.get("total_count"),
                    created,
                    SEARCH_CAP,
                )
            first = False
            yield from body["workflow_runs"]

    def runs_in_window(self, repo: str, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
        """Every run of ``repo`` created in ``[start, end)`` (aware datetimes), oldest first (by
        ``created_at``, then id), each once. A slice whose ``total_count`` reaches GitHub's 1,000
        cap is split into ``max(2, ceil(1.25 x total / 1,000))`` equal slices (a bisection for up to
        1,600 runs), again and again, until every slice can be listed whole."""
        _aware("start", start)
        _aware("end", end)
        lo = math.ceil(start.timestamp())
        hi = math.ceil(end.timestamp()) - 1  # GitHub's times are whole seconds; the range is inclusive
        found: dict[int, dict[str, Any]] = {}
        self._collect_window(repo, lo, hi, found)
        kept = []
        for run in found.values():
            created = parse_time(run.get("created_at"))
            if created is None:
                self.log.warning(
                    "%s: run %s has an unreadable created_at %r; kept", repo, run.get("id"), run.get("created_at")
                )
            elif not start <= created < end:
                continue
            kept.append((created or start, run.get("id") or 0, run))
        kept.sort(key=lambda item: (item[0], item[1]))
        return [run for _, _, run in kept]

    def _collect_window(self, repo: str, lo: int, hi: int, found: dict[int, dict[str, Any]]) -> None:
        if hi < lo:
            return
        path = f"{repo_path(repo)}/actions/runs"
        pages = self.pages(path, {"created": created_between(lo, hi), "per_page": MAX_PER_PAGE})
        first = next(pages)
        if not isinstance(first, dict) or not isinstance(first.get("workflow_runs"), list):
            raise ApiError(self.system, "GET", path, 200, "expected {total_count, workflow_runs}")
        total = int(first.get("total_count") or 0)
        if total >= SEARCH_CAP:
            pages.close()
            if hi == lo:
                raise ApiError(
                    self.system,
                    "GET",
                    path,
                    200,
                    f"{total} runs were created within one second ({created_between(lo, hi)}): "
                    f"more than the {SEARCH_CAP} GitHub lists",
                )
            self.window_splits += 1
            span = hi - lo + 1
            parts = min(span, max(2, math.ceil(total * 1.25 / SEARCH_CAP)))
            bounds = [lo + span * k // parts for k in range(parts + 1)]
            for a, b in itertools.pairwise(bounds):
                self._collect_window(repo, a, b - 1, found)
            return
        for body in [first, *pages]:
            for run in body.get("workflow_runs") or []:
                found.setdefault(run["id"], run)

    def run_attempt(self, repo: str, run_id: int | str, attempt: int, *, cached: bool = True) -> dict[str, Any]:
        """One attempt of a run (``GET /runs/{id}/attempts/{n}``), conditional on its ETag; ``cached=False``
        neither asks with nor stores an ETag (a completed attempt that will not be asked for again)."""
        return self.fetch(f"{repo_path(repo)}/actions/runs/{int(run_id)}/attempts/{int(attempt)}", cached=cached)[0]

    def attempt_jobs(self, repo: str, run_id: int | str, attempt: int, *, cached: bool = True) -> list[dict[str, Any]]:
        """The jobs of one attempt, with steps, runner and times (every page, conditional unless not ``cached``)."""
        path = f"{repo_path(repo)}/actions/runs/{int(run_id)}/attempts/{int(attempt)}/jobs"
        jobs: list[dict[str, Any]] = []
        for body in self.pages(path, {"per_page": MAX_PER_PAGE}, cached=cached):
            items = body.get("jobs") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise ApiError(self.system, "GET", path, 200, f"expected a list in 'jobs', got {type(items).__name__}")
            jobs += items
        return jobs

    # -- repositories, deployments, commits ------------------------------------------------------
    def org_repos(self, org: str) -> list[dict[str, Any]]:
        """The organisation's repositories that are not archived (every page, by name)."""
        params = {"type": "all", "sort": "full_name", "direction": "asc", "per_page": MAX_PER_PAGE}
        path = f"/orgs/{quote(str(org).strip(), safe='')}/repos"
        return [r for r in self._items(path, params, None) if not r.get("archived")]

    def deployments(self, repo: str, environment: str | None = None) -> list[dict[str, Any]]:
        """Deployments of ``repo`` (of one environment, exact name), newest first."""
        params = {"environment": environment, "per_page": MAX_PER_PAGE}
        return list(self._items(f"{repo_path(repo)}/deployments", params, None))

    def deployment_statuses(self, repo: str, deployment_id: int | str) -> list[dict[str, Any]]:
        """Statuses of one deployment, newest first (the first is its current state)."""
        path = f"{repo_path(repo)}/deployments/{int(deployment_id)}/statuses"
        return list(self._items(path, {"per_page": MAX_PER_PAGE}, None))

    def compare(self, repo: str, base: str, head: str) -> dict[str, Any]:
        """``GET /compare/{base}...{head}``: the comparison (``status``, ``ahead_by``, ``behind_by``,
        ``total_commits``, ``merge_base_commit``, ``files`` of page 1) with ``commits`` holding every
        commit of every page, oldest first; each has ``commit.author.date``. Paged with ``per_page``
        (without it GitHub returns only the newest 250); when an answer has no ``Link`` while commits
        are missing, the next ``page`` is asked for."""
        path = f"{repo_path(repo)}/compare/{quote(base, safe='/:')}...{quote(head, safe='/:')}"
        result: dict[str, Any] | None = None
        commits: list[dict[str, Any]] = []
        url: str | None = path
        query: Params = {"per_page": MAX_PER_PAGE, "page": 1}
        page = 1
        while url is not None:
            body, following = self.fetch(url, query)
            if not isinstance(body, dict) or not isinstance(body.get("commits"), list):
                raise ApiError(self.system, "GET", path, 200, "expected a comparison with 'commits'")
            if result is None:
                result = dict(body)
            commits += body["commits"]
            total = result.get("total_commits")
            if following is not None:
                url, query = following, None
            elif isinstance(total, int) and len(commits) < total and len(body["commits"]) == MAX_PER_PAGE:
                page += 1
                url, query = path, {"per_page": MAX_PER_PAGE, "page": page}
            else:
                url = None
            if page > SEARCH_CAP:  # a broken answer must not loop forever
                break
        assert result is not None
        result["commits"] = commits
        return result

    # -- project health: repository, issues and pull requests ------------------------------------
    def _list(self, path: str, params: Params = None, *, cached: bool = True) -> Iterator[dict[str, Any]]:
        """The items of a list answered as a JSON array, page by page (lazily); an empty answer
        (204) is an empty list."""
        for body in self.pages(path, params, cached=cached):
            if body is None:
                return
            if not isinstance(body, list):
                raise ApiError(self.system, "GET", path, 200, f"expected a list, got {type(body).__name__}")
            yield from body

    def repository(self, repo: str) -> dict[str, Any]:
        """``GET /repos/{o}/{r}`` reduced to the health figures: ``stars`` (stargazers_count),
        ``forks``, ``watchers`` (subscribers_count: the real watchers, not the legacy alias of stars;
        None when absent), ``open_issues_and_prs`` (open_issues_count counts both), ``archived``,
        ``default_branch``, ``pushed_at``/``created_at`` (aware datetimes), ``full_name``."""
        body = self.get_json_cached(repo_path(repo))
        if not isinstance(body, dict):
            raise ApiError(self.system, "GET", repo_path(repo), 200, "expected a repository object")
        watchers = body.get("subscribers_count")
        return {
            "full_name": body.get("full_name") or repo,
            "stars": int(body.get("stargazers_count") or 0),
            "forks": int(body.get("forks_count") or 0),
            "watchers": int(watchers) if isinstance(watchers, int) else None,
            "open_issues_and_prs": int(body.get("open_issues_count") or 0),
            "archived": bool(body.get("archived")),
            "default_branch": str(body.get("default_branch") or "main"),
            "pushed_at": parse_time(body.get("pushed_at")),
            "created_at": parse_time(body.get("created_at")),
        }

    def pulls(
        self,
        repo: str,
        *,
        state: str = "all",
        sort: str = "updated",
        direction: str = "desc",
        newer_than: dt.datetime | None = None,
        base: str | None = None,
        per_page: int = MAX_PER_PAGE,
    ) -> Iterator[dict[str, Any]]:
        """Pull requests as GitHub lists them (``state`` open|closed|all, ``sort`` created|updated|
        popularity|long-running). With ``newer_than`` (sort created or updated, newest first) paging
        stops at the first PR whose ``created_at``/``updated_at`` is older: no further page is asked for."""
        if newer_than is not None:
            _aware("newer_than", newer_than)
            if sort not in ("created", "updated") or direction != "desc":
                raise ValueError("newer_than needs sort='created' or 'updated' and direction='desc'")
        params = {
            "state": state,
            "sort": sort,
            "direction": direction,
            "base": base,
            "per_page": max(1, min(int(per_page), MAX_PER_PAGE)),
        }
        field = f"{sort}_at"
        items = self._list(f"{repo_path(repo)}/pulls", params)
        for item in items:
            when = parse_time(item.get(field)) if newer_than is not None else None
            if when is not None and newer_than is not None and when < newer_than:
                items.close()
                return
            yield item

    def open_pull_count(self, repo: str) -> int:
        """How many pull requests are open now (every page of ``state=open``, conditional)."""
        return sum(1 for _ in self._list(f"{repo_path(repo)}/pulls", {"state": "open", "per_page": MAX_PER_PAGE}))

    def issues(
        self,
        repo: str,
        *,
        since: dt.datetime | None = None,
        state: str = "all",
        labels: Iterable[str] = (),
        sort: str = "updated",
        direction: str = "desc",
        cached: bool = True,
    ) -> list[dict[str, Any]]:
        """Issues **and pull requests** (PRs carry a ``pull_request`` key with ``merged_at``), every
        page. ``since``: only those updated at or after it (GitHub's filter is on ``updated_at``);
        ``labels``: only those with every one of these labels."""
        params: dict[str, Any] = {
            "state": state,
            "sort": sort,
            "direction": direction,
            "per_page": MAX_PER_PAGE,
            "since": github_time(since, "since") if since is not None else None,
            "labels": ",".join(labels) or None,
        }
        return list(self._list(f"{repo_path(repo)}/issues", params, cached=cached))

    def issue(self, repo: str, number: int) -> dict[str, Any]:
        """One issue (or PR, as an issue) by number."""
        return self.get_json_cached(f"{repo_path(repo)}/issues/{int(number)}")

    def issue_comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        """The conversation comments of an issue or PR, oldest first (every page, conditional)."""
        return list(self._list(f"{repo_path(repo)}/issues/{int(number)}/comments", {"per_page": MAX_PER_PAGE}))

    def pull_reviews(self, repo: str, number: int) -> list[dict[str, Any]]:
        """The reviews of a PR in order (``state``, ``user``, ``submitted_at``: absent while pending)."""
        return list(self._list(f"{repo_path(repo)}/pulls/{int(number)}/reviews", {"per_page": MAX_PER_PAGE}))

    # -- project health: commits, contributors, releases -------------------------------------------
    def commits(
        self,
        repo: str,
        since: dt.datetime,
        until: dt.datetime,
        *,
        branch: str | None = None,
        cached: bool = True,
    ) -> list[dict[str, Any]]:
        """Commits of ``branch`` (default: the default branch) committed between ``since`` and
        ``until`` (GitHub's bounds, on the committer date, whole seconds; filter exactly on
        ``commit.committer.date`` yourself), newest first, every page. An empty repository (409) has none."""
        params = {
            "since": github_time(since, "since"),
            "until": github_time(until, "until"),
            "sha": branch,
            "per_page": MAX_PER_PAGE,
        }
        try:
            return list(self._list(f"{repo_path(repo)}/commits", params, cached=cached))
        except GitHubRateLimited:
            raise
        except ApiError as exc:
            if exc.status == 409:  # "Git Repository is empty."
                return []
            raise

    def contributors(self, repo: str, *, anon: bool = True) -> list[dict[str, Any]]:
        """Contributors by commit count, descending (``anon``: unlinked e-mails too, ``type: Anonymous``);
        GitHub links only the first 500 e-mails to users, so big repositories' counts are lower bounds.
        An empty repository (204) has none."""
        params = {"anon": "1" if anon else None, "per_page": MAX_PER_PAGE}
        return list(self._list(f"{repo_path(repo)}/contributors", params))

    def commit_activity(self, repo: str, *, tries: int = 6) -> list[dict[str, Any]] | None:
        """``GET /stats/commit_activity``: the last 52 weeks ``{week, total, days}`` (merge commits
        excluded). GitHub answers 202 while it computes the statistics: the same request is repeated
        after 2, 4, 8, 16, 32 s (``tries`` requests in all); None when it is still pending (ask again
        tomorrow; not a failure). A 204 (empty repository) is an empty list."""
        path = f"{repo_path(repo)}/stats/commit_activity"
        for attempt in range(max(1, tries)):
            response = self.request("GET", path)
            if response.status_code == 200:
                body = self._json(response, path)
                return body if isinstance(body, list) else []
            if response.status_code == 204:
                return []
            if attempt < tries - 1:
                self.sleep(2.0 * 2**attempt)
        self.log.info("%s: commit statistics still being computed (202); pending", repo)
        return None

    def releases(self, repo: str) -> list[dict[str, Any]]:
        """Every release, newest first (drafts only with push access: ``draft``/``published_at`` tell
        them apart; ``prerelease`` is a flag)."""
        return list(self._list(f"{repo_path(repo)}/releases", {"per_page": MAX_PER_PAGE}))

    # -- project health: security ------------------------------------------------------------------
    def _alerts(self, repo: str, what: str, path: str, params: Params = None) -> list[dict[str, Any]] | NoAccess:
        try:
            return list(self._list(f"{repo_path(repo)}/{path}", {"per_page": MAX_PER_PAGE, **dict(params or {})}))
        except GitHubRateLimited:
            raise
        except ApiError as exc:
            if exc.status in (403, 404):
                self.log.info("%s: %s not readable (%s %s)", repo, what, exc.status, _said(exc))
                return NoAccess(what, exc.status, _said(exc))
            raise

    def dependabot_alerts(self, repo: str, *, state: str | None = None) -> list[dict[str, Any]] | NoAccess:
        """Dependabot alerts (every state unless ``state``, e.g. ``open``; cursor paging through ``Link``).
        Severity: ``security_advisory.severity`` (low, medium, high, critical). :class:`NoAccess` on
        403 (no permission, or Dependabot alerts disabled) and 404."""
        return self._alerts(repo, "dependabot_alerts", "dependabot/alerts", {"state": state})

    def code_scanning_alerts(self, repo: str, *, state: str | None = None) -> list[dict[str, Any]] | NoAccess:
        """Code-scanning alerts (every state unless ``state``). Severity: ``rule.security_severity_level``
        for security queries (low..critical), else only ``rule.severity`` (note, warning, error).
        :class:`NoAccess` on 403 (no permission, Advanced Security off) and 404 ("no analysis found")."""
        return self._alerts(repo, "code_scanning_alerts", "code-scanning/alerts", {"state": state})

    def secret_scanning_alerts(self, repo: str, *, state: str | None = None) -> list[dict[str, Any]] | NoAccess:
        """Secret-scanning alerts (every state unless ``state``: open|resolved; they carry no severity).
        :class:`NoAccess` on 403 and 404 (secret scanning disabled, or not visible to the token)."""
        return self._alerts(repo, "secret_scanning_alerts", "secret-scanning/alerts", {"state": state})

    def branch_protection(self, repo: str, branch: str) -> dict[str, Any] | NoAccess:
        """Whether ``branch`` is protected: ``{"protected": bool, "source": ..., "settings": ...}``.

        ``GET /branches/{b}/protection`` first (``source: "protection"``, ``settings`` its body); 404
        "Branch not protected" means off. It needs the Administration permission: on any other 403/404
        ``GET /branches/{b}`` answers instead (``source: "branch"``, its ``protected`` flag and
        ``protection`` summary). :class:`NoAccess` when neither may be read. A branch that does not exist
        (404 "Branch not found": an empty repository has no branch yet) is not protected:
        ``{"protected": False, ..., "branch_found": False}``."""
        name = quote(branch, safe="/")
        try:
            body = self.get_json_cached(f"{repo_path(repo)}/branches/{name}/protection")
            return {"protected": True, "source": "protection", "settings": body}
        except GitHubRateLimited:
            raise
        except ApiError as exc:
            said = _said(exc).strip().lower()
            if exc.status == 404 and said in ("branch not protected", "branch not found"):
                found = said == "branch not protected"
                return {"protected": False, "source": "protection", "settings": None, "branch_found": found}
            if exc.status not in (403, 404):
                raise
            self.log.info("%s: branch protection not readable (%s %s); asking the branch", repo, exc.status, _said(exc))
        try:
            found = self.get_json_cached(f"{repo_path(repo)}/branches/{name}")
        except GitHubRateLimited:
            raise
        except ApiError as exc:
            if exc.status == 404 and _said(exc).strip().lower() == "branch not found":
                return {"protected": False, "source": "branch", "settings": None, "branch_found": False}
            if exc.status == 403:
                return NoAccess("branch_protection", exc.status, _said(exc))
            raise
        if not isinstance(found, dict):
            raise ApiError(self.system, "GET", f"{repo_path(repo)}/branches/{name}", 200, "expected a branch object")
        return {"protected": bool(found.get("protected")), "source": "branch", "settings": found.get("protection")}

    # -- issues this package opens -----------------------------------------------------------------
    def find_issues(self, repo: str, label: str, marker: str, *, state: str = "open") -> list[dict[str, Any]]:
        """Issues (not PRs) labelled ``label`` whose body contains ``marker``, oldest first. Listed
        through ``/issues?labels=`` (consistent at once), not the search API (its index lags)."""
        if not label or not marker:
            raise ValueError("find_issues needs a label and a marker")
        found = self.issues(repo, state=state, labels=[label], sort="created", direction="asc")
        return [i for i in found if "pull_request" not in i and marker in str(i.get("body") or "")]

    def create_issue(self, repo: str, title: str, body: str, labels: Iterable[str] = ()) -> dict[str, Any]:
        """Open an issue (201): ``{number, html_url, ...}``. Labels that do not exist are created by
        GitHub when the token may push (otherwise they are dropped)."""
        payload = {"title": title, "body": body, "labels": list(labels)}
        return self.request_json("POST", f"{repo_path(repo)}/issues", json=payload)

    def comment_issue(self, repo: str, number: int, body: str) -> dict[str, Any]:
        """Add a comment to an issue (201): ``{id, html_url, ...}``."""
        return self.request_json("POST", f"{repo_path(repo)}/issues/{int(number)}/comments", json={"body": body})

    def close_issue(
        self, repo: str, number: int, comment: str | None = None, *, reason: str = "completed"
    ) -> dict[str, Any]:
        """Comment (when given), then close the issue with ``state_reason`` (completed | not_planned)."""
        if comment:
            self.comment_issue(repo, number, comment)
        payload = {"state": "closed", "state_reason": reason}
        return self.request_json("PATCH", f"{repo_path(repo)}/issues/{int(number)}", json=payload)

    # -- acting on runs and deployments (ci_run_action) ------------------------------------------
    def workflow_run(self, repo: str, run_id: int | str) -> dict[str, Any]:
        """``GET /actions/runs/{id}``: the run as of its latest attempt (``run_attempt``, ``status``,
        ``conclusion``, ``html_url``, ...), never from the cache (it is about to change)."""
        body = self.fetch(f"{repo_path(repo)}/actions/runs/{int(run_id)}", cached=False)[0]
        if not isinstance(body, dict):
            raise ApiError(self.system, "GET", f"{repo_path(repo)}/actions/runs/{int(run_id)}", 200, "expected a run")
        return body

    def _write(self, method: str, path: str, permission: str, payload: Any = None) -> tuple[int, Any, str | None]:
        """One write: ``(status, JSON body or None, the server's Date header)``. A 403 that is not a rate
        limit is :class:`GitHubPermissionError` naming ``permission``; POSTs are retried only when GitHub
        refused them before acting (429, 503, a rate limit), as :class:`ApiHook` does."""
        try:
            response = self.request(method, path, json=payload)
        except GitHubRateLimited:
            raise
        except ApiError as exc:
            if exc.status == 403:
                raise GitHubPermissionError(exc, permission) from exc
            raise
        body = None
        if response.content:
            try:
                body = response.json()
            except ValueError:
                body = response.text[:2000]
        return response.status_code, body, response.headers.get("Date")

    def rerun_run(
        self, repo: str, run_id: int | str, *, failed_only: bool = False, debug_logging: bool = False
    ) -> tuple[int, Any, str | None]:
        """``POST /actions/runs/{id}/rerun`` (every job) or ``/rerun-failed-jobs`` (failed jobs and their
        dependents): a new attempt of the same run (201). Needs :data:`ACTIONS_WRITE`."""
        what = "rerun-failed-jobs" if failed_only else "rerun"
        payload = {"enable_debug_logging": True} if debug_logging else None
        return self._write("POST", f"{repo_path(repo)}/actions/runs/{int(run_id)}/{what}", ACTIONS_WRITE, payload)

    def rerun_job(self, repo: str, job_id: int | str) -> tuple[int, Any, str | None]:
        """``POST /actions/jobs/{job_id}/rerun``: the job and its dependents in a new attempt (201)."""
        return self._write("POST", f"{repo_path(repo)}/actions/jobs/{int(job_id)}/rerun", ACTIONS_WRITE)

    def cancel_run(self, repo: str, run_id: int | str, *, force: bool = False) -> tuple[int, Any, str | None]:
        """``POST /actions/runs/{id}/cancel`` (202), or ``/force-cancel`` (202; bypasses ``always()``: only
        for a run that did not respond to the cancel). A completed run answers 409."""
        what = "force-cancel" if force else "cancel"
        return self._write("POST", f"{repo_path(repo)}/actions/runs/{int(run_id)}/{what}", ACTIONS_WRITE)

    def create_deployment(
        self,
        repo: str,
        ref: str,
        environment: str,
        *,
        description: str = "",
        payload: Mapping[str, Any] | None = None,
        task: str = "deploy",
    ) -> tuple[int, Any, str | None]:
        """``POST /deployments`` of ``ref`` (a SHA) to ``environment``: 201 with the deployment. No
        auto-merge and no required status checks (a redeploy of an old SHA must not merge or wait for
        checks); whatever executes deployments (a workflow on ``deployment`` events, a CD system) picks it
        up and posts its statuses. Needs :data:`DEPLOYMENTS_WRITE`."""
        body = {
            "ref": ref,
            "environment": environment,
            "task": task,
            "auto_merge": False,
            "required_contexts": [],
            "description": description,
            "payload": dict(payload or {}),
            "production_environment": None,
        }
        body = {k: v for k, v in body.items() if v is not None}
        return self._write("POST", f"{repo_path(repo)}/deployments", DEPLOYMENTS_WRITE, body)

    def environments(self, repo: str) -> list[dict[str, Any]]:
        """The repository's environments (``GET /environments``: ``{total_count, environments}``, every
        page; a repository without any has ``total_count`` 0)."""
        found: list[dict[str, Any]] = []
        for body in self.pages(f"{repo_path(repo)}/environments", {"per_page": MAX_PER_PAGE}, cached=False):
            items = body.get("environments") if isinstance(body, dict) else None
            found += items if isinstance(items, list) else []
        return found

    def deployment(self, repo: str, deployment_id: int | str) -> dict[str, Any]:
        """One deployment (uncached)."""
        return self.fetch(f"{repo_path(repo)}/deployments/{int(deployment_id)}", cached=False)[0]

    def deployments_with_statuses(
        self, repo: str, environment: str, *, limit: int = MAX_PER_PAGE
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` deployments to ``environment`` (newest first), each with its
        ``statuses`` (newest first) attached: one request for the list, one per deployment."""
        params = {"environment": environment, "per_page": max(1, min(int(limit), MAX_PER_PAGE))}
        listed = self.fetch(f"{repo_path(repo)}/deployments", params, cached=False)[0] or []
        out = []
        for deployment in listed[:limit]:
            path = f"{repo_path(repo)}/deployments/{int(deployment['id'])}/statuses"
            statuses = self.fetch(path, {"per_page": MAX_PER_PAGE}, cached=False)[0] or []
            out.append({**deployment, "statuses": statuses})
        return out

    async def async_client(self, *, timeout: float) -> Any:
        """An ``httpx.AsyncClient`` for the triggerer on the API base URL with this connection's token
        and GitHub's headers; the connection is read with the async API (the event loop never blocks)."""
        import httpx
        from airflow.sdk import BaseHook

        conn = await BaseHook.aget_connection(self.github_conn_id)
        self._set_base_url(conn)
        headers = {
            "Accept": MEDIA_TYPE,
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "devops-automation",
            **self.auth_headers(conn),
        }
        return httpx.AsyncClient(base_url=api_url_of(self.base_url), headers=headers, timeout=timeout)

    # -- connection test -------------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """``GET /rate_limit`` (free): the token's core budget."""
        try:
            body = self.fetch("/rate_limit", cached=False)[0] or {}
            core = (body.get("resources") or {}).get("core") or body.get("rate") or {}
            return True, (
                f"GitHub {self.api_url} answered: {core.get('remaining', '?')} of {core.get('limit', '?')} "
                "core requests left this hour"
            )
        except (ApiError, requests.RequestException, ValueError) as exc:  # the UI shows the message
            return False, str(exc)
