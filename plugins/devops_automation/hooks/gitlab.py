"""GitLab REST API v4 hook (connection ``gitlab_default``) for ``ci_failure_triage`` and ``ci_pipeline_analytics``.

Connection: type ``gitlab`` (``http`` works too); host = the GitLab instance, gitlab.com or
self-managed, with or without a path prefix (``https://gitlab.example.com``,
``https://example.com/gitlab``) or already ending in ``/api/v4``; password = a
personal/project/group access token (``read_api``; ``api`` to retry jobs).
Extras: ``auth_type`` = ``private_token`` (default, header ``PRIVATE-TOKEN``) or ``oauth``
(``Authorization: Bearer``, for OAuth2 tokens); plus :class:`ApiHook`'s ``timeout``, ``max_retries``,
``backoff_initial``, ``backoff_max``, ``max_retry_wait``, ``headers``.

GitLab facts this hook encodes (``/work/shared/api/gitlab.md`` §1.3):

* ``:id`` is a numeric id or the URL-encoded full path (``group%2Fproject``: a raw ``/`` misroutes);
* offset paging stops when ``x-next-page`` is empty; above 10,000 records GitLab omits ``x-total``
  and ``x-total-pages``, so they are never used; ``per_page`` is capped at 100;
* failed trigger jobs (bridges) are not in ``/jobs`` but in ``/bridges``;
* job logs can be hundreds of MB: they are streamed and only the tail is kept (the error is at
  the end); a deleted job or an erased log answers 404, which reads as "no log" here;
* 429 comes with ``Retry-After`` (or without it on gitlab.com): :class:`ApiHook` honours it;
* ``updated_after``/``updated_before`` (pipelines, deployments) are *inclusive* at both ends
  (``UpdatedAtFilterable``: ``>=``/``<=``); :meth:`GitLabHook.pipelines_updated` and
  :meth:`GitLabHook.deployments` keep ``[after, before)`` so consecutive windows never share an item;
* deployments filtered by ``updated_*`` must be ordered by ``updated_at`` (else 400
  "`updated_at` filter requires `updated_at` sort", ``DeploymentsFinder``);
* the jobs API has no ``retried`` field: with ``include_retried=true`` every attempt is listed and
  all but the newest (highest id) of a name in a pipeline are retried ones; GitLab lists jobs
  newest first;
* a project (or group) that does not exist *or that the token may not see* answers 404
  ``{"message": "404 Project Not Found"}``; missing permission answers 403. The analytics methods
  raise :class:`GitLabAccessError` for both, naming the project;
* writes (``ci_run_action``): ``POST /pipelines/:id/retry`` retries the failed and canceled jobs of the
  same pipeline (201), ``/cancel`` cancels it (200), ``POST /jobs/:id/retry`` starts a new attempt of a
  job (201; a deploy job's retry deploys its pipeline's SHA again, GitLab's own rollback). GitLab's
  403 names no permission: :class:`GitLabPermissionError` says what is needed;
* issues are addressed by their per-project ``iid``; ``state`` is ``opened``/``closed`` and changes
  through ``PUT ... state_event=close|reopen`` (GitLab adds a system note); comments are *notes*;
  ``labels`` is a comma-separated list (missing project labels are created). The issue methods here
  serve the issues ``daily_project_metrics`` opens: found again by label (on the server) plus a
  marker in the description (matched exactly here).
"""

from __future__ import annotations

import collections
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import requests

from devops_automation.hooks.api import ApiError, ApiHook, NotJsonError

if TYPE_CHECKING:
    from airflow.sdk import Connection

API_SUFFIX = "/api/v4"
MAX_PER_PAGE = 100
DEFAULT_TRACE_BYTES = 20_000_000
TRACE_CHUNK = 64 * 1024
AUTH_TYPES = ("private_token", "oauth")
#: pipeline and job statuses GitLab calls completed (gitlab.md "Statuses")
COMPLETED_STATUSES = frozenset({"success", "failed", "canceled", "skipped"})
#: what a 403 on a pipeline or job write lacks (GitLab's answer names nothing: ``403 Forbidden``)
WRITE_PERMISSION = (
    "the api scope and at least the Developer role on the project (Maintainer where the branch or the "
    "environment is protected)"
)

ProjectRef = int | str
Params = Mapping[str, Any] | Iterable[tuple[str, Any]] | None


@dataclass
class Trace:
    """A job log: ``data`` is the whole log, or its tail when ``truncated``."""

    data: bytes
    total_bytes: int
    truncated: bool


@dataclass
class TraceFile:
    """A job log written to ``path`` (``size`` bytes kept of ``total_bytes``)."""

    path: Path
    size: int
    total_bytes: int
    truncated: bool


class GitLabAccessError(ApiError):
    """GitLab refused a project or group: 404 (it does not exist, or the token may not see it) or
    403 (the token lacks permission). ``target`` names it, e.g. ``project 'acme/api'``."""

    def __init__(self, target: str, cause: ApiError) -> None:
        hint = (
            "not found, or not visible to this token (GitLab answers 404 for what a token may not see)"
            if cause.status == 404
            else "forbidden: the token lacks permission (scope read_api, at least the Reporter role; "
            "CI/CD may be disabled for it)"
        )
        super().__init__(
            cause.system,
            cause.method,
            cause.path,
            cause.status,
            f"{target}: {hint}; GitLab said {cause.message!r}",
            retry_after=cause.retry_after,
            body=cause.body,
        )
        self.target = target


class GitLabPermissionError(ApiError):
    """GitLab refused a write with 403: the token lacks :data:`WRITE_PERMISSION` (or the object may not
    be changed, e.g. a job that is not retryable: GitLab's message says which)."""

    def __init__(self, cause: ApiError, what: str) -> None:
        super().__init__(
            cause.system,
            cause.method,
            cause.path,
            cause.status,
            f"{what}: forbidden; the token needs {WRITE_PERMISSION}; GitLab said {cause.message!r}",
            body=cause.body,
        )


def gitlab_time(value: datetime, name: str = "time") -> str:
    """An aware datetime as GitLab's ISO 8601 parameter (UTC, ``Z``); naive ones are refused."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: object) -> datetime | None:
    """A GitLab REST timestamp (``2026-11-20T10:00:00.123Z`` or ``...+01:00``) as an aware datetime;
    None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _within(item: Mapping[str, Any], after: datetime | None, before: datetime | None) -> bool:
    """``after <= updated_at < before``; an item without a readable ``updated_at`` is kept."""
    updated = parse_time(item.get("updated_at"))
    if updated is None:
        return True
    return (after is None or updated >= after) and (before is None or updated < before)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def project_ref(project: ProjectRef) -> str:
    """The ``:id`` path segment: a numeric id as is, a full path URL-encoded (``/`` -> ``%2F``)."""
    if isinstance(project, bool) or project is None or project == "":
        raise ValueError(f"a GitLab project id or path is required, got {project!r}")
    text = str(project).strip().strip("/")
    return text if text.isdigit() else quote(text, safe="")


def tail_start(data: bytes, max_bytes: int) -> int:
    """Where the kept tail of ``data`` starts: at most ``max_bytes`` before the end, moved forward
    to the next line start unless the cut already is one (or no later line break exists)."""
    start = max(0, len(data) - max_bytes)
    if start == 0 or data[start - 1 : start] == b"\n":
        return start
    newline = data.find(b"\n", start)
    return newline + 1 if 0 <= newline < len(data) - 1 else start


class GitLabHook(ApiHook):
    """Typed access to the GitLab REST API v4. See the module docstring for the connection."""

    conn_name_attr = "gitlab_conn_id"
    default_conn_name = "gitlab_default"
    conn_type = "gitlab"  # registered in devops_automation.provider (the UI form); any type works at run time
    hook_name = "GitLab"
    system = "GitLab"
    test_path = "/user"

    def __init__(self, gitlab_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(gitlab_conn_id, **kwargs)
        self.gitlab_conn_id = gitlab_conn_id

    # -- plumbing --------------------------------------------------------------------------------
    def auth_headers(self, conn: Connection) -> dict[str, str]:
        auth_type = str((conn.extra_dejson or {}).get("auth_type") or "private_token").strip().lower()
        if auth_type not in AUTH_TYPES:
            raise ValueError(
                f"connection {self.gitlab_conn_id!r}: extra 'auth_type' must be one of {AUTH_TYPES}, got {auth_type!r}"
            )
        token = conn.password
        if not token:
            self.log.warning(
                "Connection %r has no token (password): only public projects are readable", self.gitlab_conn_id
            )
            return {}
        return {"Authorization": f"Bearer {token}"} if auth_type == "oauth" else {"PRIVATE-TOKEN": token}

    @property
    def api_url(self) -> str:
        """``<host>/api/v4`` (not doubled when the host already ends with it)."""
        self.session  # noqa: B018 - resolves base_url
        base = self.base_url.rstrip("/")
        return base if base.endswith(API_SUFFIX) else base + API_SUFFIX

    @property
    def web_url(self) -> str:
        """The instance's web base URL (the host without ``/api/v4``), e.g. for links."""
        return self.api_url[: -len(API_SUFFIX)]

    def url(self, path: str) -> str:
        return self.api_url + "/" + path.lstrip("/")

    def error_message(self, response: requests.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            message = body.get("message") or body.get("error") or body.get("error_description")
            if isinstance(message, dict):  # validation errors: {"message": {"field": ["is invalid"]}}
                return "; ".join(
                    f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in message.items()
                )
            if message:
                extra = (
                    body.get("error_description")
                    if body.get("error") and body.get("error_description") != message
                    else None
                )
                return f"{message} ({extra})" if extra else str(message)
        if not response.content:
            return f"{response.status_code} {response.reason} (empty body)"
        return super().error_message(response)

    def _get(self, path: str, params: Params = None) -> Any:
        return self.request_json("GET", path, params=params)

    def _get_or_none(self, path: str, params: Params = None) -> Any:
        try:
            return self._get(path, params)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def paged(
        self, path: str, params: Params = None, per_page: int = MAX_PER_PAGE, max_pages: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every item of an offset-paged list, following ``x-next-page`` until it is empty.

        ``params`` may be a mapping or ``(key, value)`` pairs (repeat a key for ``scope[]``).
        ``max_pages`` bounds the number of requests.
        """
        base = list(params.items() if isinstance(params, Mapping) else (params or []))
        base = [(k, v) for k, v in base if k not in ("page", "per_page") and v is not None]
        size = max(1, min(int(per_page), MAX_PER_PAGE))
        page, fetched = 1, 0
        while True:
            response = self.request("GET", path, params=[*base, ("per_page", size), ("page", page)])
            try:
                items = response.json() if response.content else []
            except ValueError:
                ctype = response.headers.get("Content-Type", "?")
                raise NotJsonError(
                    self.system,
                    "GET",
                    path,
                    response.status_code,
                    f"expected a JSON list but got {ctype!r} (is the host the GitLab URL?)",
                ) from None
            if not isinstance(items, list):
                raise ApiError(
                    self.system, "GET", path, response.status_code, f"expected a JSON list, got {type(items).__name__}"
                )
            yield from items
            fetched += 1
            next_page = (response.headers.get("x-next-page") or "").strip()
            if not next_page or (max_pages is not None and fetched >= max_pages):
                return
            try:
                following = int(next_page)
            except ValueError:
                return
            if following <= page:  # a broken header must not loop forever
                return
            page = following

    # -- projects and pipelines ------------------------------------------------------------------
    def project(self, project: ProjectRef) -> dict[str, Any]:
        return self._get(f"/projects/{project_ref(project)}")

    def pipeline(self, project: ProjectRef, pipeline_id: int | str) -> dict[str, Any]:
        return self._get(f"/projects/{project_ref(project)}/pipelines/{int(pipeline_id)}")

    def pipelines(
        self, project: ProjectRef, *, max_pages: int | None = None, **filters: Any
    ) -> Iterator[dict[str, Any]]:
        """Pipelines of a project (``ref``, ``status``, ``order_by``, ``sort``, ... as filters)."""
        yield from self.paged(f"/projects/{project_ref(project)}/pipelines", filters, max_pages=max_pages)

    def pipeline_jobs(
        self,
        project: ProjectRef,
        pipeline_id: int | str,
        scope: Iterable[str] = (),
        *,
        bridges: bool = False,
        include_retried: bool = False,
    ) -> list[dict[str, Any]]:
        """Jobs (or bridges) of a pipeline, optionally only the given statuses; the latest attempts,
        or with ``include_retried`` every attempt (all pages either way). A retried attempt is a
        job of the same name with a lower id than the newest (the API has no ``retried`` field)."""
        kind = "bridges" if bridges else "jobs"
        params = [("scope[]", s) for s in scope]
        if include_retried:
            params.append(("include_retried", "true"))
        return list(self.paged(f"/projects/{project_ref(project)}/pipelines/{int(pipeline_id)}/{kind}", params))

    def failed_jobs(
        self, project: ProjectRef, pipeline_id: int | str, include_bridges: bool = True
    ) -> list[dict[str, Any]]:
        """Failed jobs of a pipeline (``allow_failure`` ones included: check the flag), then failed
        trigger jobs marked ``"bridge": True`` (builds get ``"bridge": False``)."""
        jobs = [{**j, "bridge": False} for j in self.pipeline_jobs(project, pipeline_id, ["failed"])]
        if include_bridges:
            jobs += [{**b, "bridge": True} for b in self.pipeline_jobs(project, pipeline_id, ["failed"], bridges=True)]
        return jobs

    def _listing(
        self,
        kind: str,
        ref: ProjectRef,
        path: str,
        params: dict[str, Any],
        per_page: int,
        after: datetime | None = None,
        before: datetime | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every page of ``path``, items updated in ``[after, before)``; access errors name ``ref``."""
        with self._access(kind, ref):
            for item in self.paged(path, params, per_page=per_page):
                if _within(item, after, before):
                    yield item

    @contextmanager
    def _access(self, kind: str, ref: ProjectRef) -> Iterator[None]:
        """Turn GitLab's 403, and its 404 for a missing or hidden project/group, into
        :class:`GitLabAccessError` naming ``ref``; other errors pass unchanged."""
        try:
            yield
        except GitLabAccessError:
            raise
        except ApiError as exc:
            hidden = exc.status == 404 and f"{kind} not found" in exc.message.lower()
            if exc.status == 403 or hidden:
                raise GitLabAccessError(f"{kind} {str(ref)!r}", exc) from exc
            raise

    # -- CI analytics ----------------------------------------------------------------------------
    def pipelines_updated(
        self,
        project: ProjectRef,
        updated_after: datetime,
        updated_before: datetime,
        *,
        per_page: int = MAX_PER_PAGE,
        **filters: Any,
    ) -> Iterator[dict[str, Any]]:
        """Every pipeline of ``project`` whose ``updated_at`` lies in ``[updated_after, updated_before)``,
        oldest update first, all pages (``order_by=updated_at&sort=asc``).

        GitLab's bounds are inclusive at both ends; the pipeline updated exactly at ``updated_before``
        is left to the next window, so consecutive windows partition the pipelines. A pipeline moves
        to a later window whenever it changes (a job retried days later updates it). Child pipelines
        are listed too (``source: parent_pipeline``). Items are ``PipelineBasic`` (no durations,
        user or timing: :meth:`pipeline` has them). ``filters``: ``ref``, ``status``, ``source`` ...
        Raises :class:`GitLabAccessError` for a missing, hidden or forbidden project.
        """
        params = {
            **filters,
            "updated_after": gitlab_time(updated_after, "updated_after"),
            "updated_before": gitlab_time(updated_before, "updated_before"),
            "order_by": "updated_at",
            "sort": "asc",
        }
        if updated_before <= updated_after:
            raise ValueError(f"updated_before ({updated_before}) must be later than updated_after ({updated_after})")
        path = f"/projects/{project_ref(project)}/pipelines"
        return self._listing("project", project, path, params, per_page, updated_after, updated_before)

    def pipeline_bridges(self, project: ProjectRef, pipeline_id: int | str) -> list[dict[str, Any]]:
        """The trigger jobs of a pipeline (latest attempts, all pages). ``downstream_pipeline`` is the
        pipeline a bridge started (``{id, project_id, status, source, ...}``; ``source`` is
        ``parent_pipeline`` for a child pipeline, ``pipeline`` for another project's) or null.
        Raises :class:`GitLabAccessError` for a missing, hidden or forbidden project."""
        with self._access("project", project):
            return self.pipeline_jobs(project, pipeline_id, bridges=True)

    def pipeline_attempts(self, project: ProjectRef, pipeline_id: int | str) -> list[dict[str, Any]]:
        """Every attempt of every job of a pipeline (``include_retried=true``, all pages); the same as
        ``pipeline_jobs(project, pipeline_id, include_retried=True)`` but raising
        :class:`GitLabAccessError` for a missing, hidden or forbidden project."""
        with self._access("project", project):
            return self.pipeline_jobs(project, pipeline_id, include_retried=True)

    def group_projects(
        self,
        group: ProjectRef,
        include_subgroups: bool = True,
        archived: bool | None = False,
        *,
        per_page: int = MAX_PER_PAGE,
        **filters: Any,
    ) -> Iterator[dict[str, Any]]:
        """The projects of a group (numeric id or full path), with every subgroup's when
        ``include_subgroups``; ``archived=False`` leaves archived projects out, ``True`` keeps only
        them, ``None`` lists both. Projects shared with the group from elsewhere are left out
        (``with_shared=false``). Ordered by id, all pages. Raises :class:`GitLabAccessError` for a
        missing, hidden or forbidden group."""
        params: dict[str, Any] = {
            **filters,
            "include_subgroups": _flag(include_subgroups),
            "with_shared": "false",
            "order_by": "id",
            "sort": "asc",
        }
        if archived is not None:
            params["archived"] = _flag(archived)
        return self._listing("group", group, f"/groups/{project_ref(group)}/projects", params, per_page)

    def deployments(
        self,
        project: ProjectRef,
        environment: str | None = None,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
        status: str | None = None,
        *,
        per_page: int = MAX_PER_PAGE,
    ) -> Iterator[dict[str, Any]]:
        """A project's deployments, all pages: of one ``environment`` (name) and ``status`` when given;
        with ``updated_after``/``updated_before``, those updated in ``[after, before)`` ordered by
        ``updated_at`` (GitLab requires that order for these filters), else every one by id. Each
        has ``sha``, ``ref``, ``status`` (created, running, success, failed, canceled, skipped,
        blocked), ``environment{name}``, ``deployable`` (the deploy job, with its ``pipeline`` and
        ``finished_at``). Raises :class:`GitLabAccessError` for a missing, hidden or forbidden
        project."""
        params: dict[str, Any] = {"environment": environment, "status": status, "sort": "asc", "order_by": "id"}
        if updated_after is not None or updated_before is not None:
            params["order_by"] = "updated_at"
            if updated_after is not None:
                params["updated_after"] = gitlab_time(updated_after, "updated_after")
            if updated_before is not None:
                params["updated_before"] = gitlab_time(updated_before, "updated_before")
        path = f"/projects/{project_ref(project)}/deployments"
        return self._listing("project", project, path, params, per_page, updated_after, updated_before)

    def compare(self, project: ProjectRef, base: str, head: str) -> dict[str, Any]:
        """``GET /projects/:id/repository/compare?from=base&to=head``: ``commits`` (oldest first, with
        ``authored_date``) that ``head`` adds to ``base``."""
        return (
            self.request_json(
                "GET", f"/projects/{project_ref(project)}/repository/compare", params={"from": base, "to": head}
            )
            or {}
        )

    def test_report_summary(self, project: ProjectRef, pipeline_id: int | str) -> dict[str, Any] | None:
        """``{total: {...}, test_suites: [...]}``; None when GitLab has none (404)."""
        return self._get_or_none(f"/projects/{project_ref(project)}/pipelines/{int(pipeline_id)}/test_report_summary")

    # -- jobs ------------------------------------------------------------------------------------
    def job(self, project: ProjectRef, job_id: int | str) -> dict[str, Any] | None:
        """One job; None when it does not exist (deleted, or a bridge id)."""
        return self._get_or_none(f"/projects/{project_ref(project)}/jobs/{int(job_id)}")

    def retry_job(self, project: ProjectRef, job_id: int | str) -> dict[str, Any]:
        """Retry a finished job: the new attempt (new id). Retried only when GitLab refused (429/503)."""
        return self.request_json("POST", f"/projects/{project_ref(project)}/jobs/{int(job_id)}/retry")

    def last_successful_job(
        self,
        project: ProjectRef,
        ref: str | None,
        job_name: str | None,
        before_pipeline_id: int | str | None = None,
        max_pipelines: int = 20,
    ) -> dict[str, Any] | None:
        """The job named ``job_name`` that succeeded in the newest successful pipeline on ``ref``
        older than ``before_pipeline_id``; looks at ``max_pipelines`` such pipelines at most."""
        if not ref or not job_name or max_pipelines <= 0:
            return None
        before = int(before_pipeline_id) if before_pipeline_id not in (None, "") else None
        pid = project_ref(project)
        params = {"ref": ref, "status": "success", "order_by": "id", "sort": "desc"}
        checked = 0
        for pipeline in self.paged(f"/projects/{pid}/pipelines", params, per_page=min(MAX_PER_PAGE, max_pipelines + 5)):
            if before is not None and int(pipeline["id"]) >= before:
                continue
            matches = [j for j in self.pipeline_jobs(pid, pipeline["id"], ["success"]) if j.get("name") == job_name]
            if matches:
                return max(matches, key=lambda j: int(j["id"]))
            checked += 1
            if checked >= max_pipelines:
                return None
        return None

    # -- acting on pipelines and jobs (ci_run_action) ---------------------------------------------
    def _write(self, path: str, what: str) -> tuple[int, Any, str | None]:
        """One POST: ``(status, JSON body, the server's Date header)``. 403 is :class:`GitLabPermissionError`,
        404 :class:`GitLabAccessError` naming ``what``; retried only when GitLab refused before acting."""
        try:
            response = self.request("POST", path)
        except ApiError as exc:
            if exc.status == 403:
                raise GitLabPermissionError(exc, what) from exc
            if exc.status == 404:
                raise GitLabAccessError(what, exc) from exc
            raise
        body = None
        if response.content:
            try:
                body = response.json()
            except ValueError:
                body = response.text[:2000]
        return response.status_code, body, response.headers.get("Date")

    def retry_pipeline(self, project: ProjectRef, pipeline_id: int | str) -> tuple[int, Any, str | None]:
        """``POST /pipelines/:id/retry``: retries the pipeline's failed and canceled jobs in the same
        pipeline (201, the pipeline). The only pipeline-level re-run GitLab has."""
        pid = int(pipeline_id)
        return self._write(f"/projects/{project_ref(project)}/pipelines/{pid}/retry", f"pipeline {pid} of {project!r}")

    def cancel_pipeline(self, project: ProjectRef, pipeline_id: int | str) -> tuple[int, Any, str | None]:
        """``POST /pipelines/:id/cancel``: cancels its running and pending jobs (200, the pipeline)."""
        pid = int(pipeline_id)
        return self._write(f"/projects/{project_ref(project)}/pipelines/{pid}/cancel", f"pipeline {pid} of {project!r}")

    def retry_job_write(self, project: ProjectRef, job_id: int | str) -> tuple[int, Any, str | None]:
        """``POST /jobs/:id/retry`` as :meth:`retry_job`, answering ``(status, the new job, Date)`` with the
        errors of :meth:`_write` (a deploy job retried deploys its pipeline's SHA again: GitLab's rollback)."""
        jid = int(job_id)
        return self._write(f"/projects/{project_ref(project)}/jobs/{jid}/retry", f"job {jid} of {project!r}")

    def environments(self, project: ProjectRef, name: str | None = None) -> list[dict[str, Any]]:
        """The project's environments (``name``: only that one), all pages. Raises
        :class:`GitLabAccessError` for a missing, hidden or forbidden project."""
        params = {"name": name} if name else {}
        with self._access("project", project):
            return list(self.paged(f"/projects/{project_ref(project)}/environments", params))

    def latest_deployments(
        self, project: ProjectRef, environment: str, *, status: str | None = "success", limit: int = MAX_PER_PAGE
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` deployments to ``environment`` (of ``status``), newest first (one page
        of ``order_by=id&sort=desc``). Raises :class:`GitLabAccessError` as :meth:`deployments` does."""
        params = {"environment": environment, "status": status, "order_by": "id", "sort": "desc"}
        size = max(1, min(int(limit), MAX_PER_PAGE))
        with self._access("project", project):
            path = f"/projects/{project_ref(project)}/deployments"
            return list(self.paged(path, params, per_page=size, max_pages=1))[:limit]

    async def async_client(self, *, timeout: float) -> Any:
        """An ``httpx.AsyncClient`` on ``<host>/api/v4`` with this connection's token, for the triggerer
        (the connection is read with the async API: the event loop never blocks)."""
        import httpx
        from airflow.sdk import BaseHook

        conn = await BaseHook.aget_connection(self.gitlab_conn_id)
        self._set_base_url(conn)
        base = self.base_url.rstrip("/")
        headers = {"Accept": "application/json", "User-Agent": "devops-automation", **self.auth_headers(conn)}
        api = base if base.endswith(API_SUFFIX) else base + API_SUFFIX
        return httpx.AsyncClient(base_url=api, headers=headers, timeout=timeout)

    # -- job logs --------------------------------------------------------------------------------
    def _trace_chunks(self, project: ProjectRef, job_id: int | str) -> Iterator[bytes] | None:
        """The log's bytes, streamed; None when there is none (404)."""
        path = f"/projects/{project_ref(project)}/jobs/{int(job_id)}/trace"
        response = self.request("GET", path, stream=True, ok=(404,), headers={"Accept": "text/plain, */*"})
        if response.status_code == 404:
            response.close()
            return None

        def chunks() -> Iterator[bytes]:
            try:
                for chunk in response.iter_content(chunk_size=TRACE_CHUNK):
                    if chunk:
                        yield chunk
            except requests.RequestException as exc:
                raise ApiError(
                    self.system, "GET", path, response.status_code, f"log download broke off: {exc.__class__.__name__}"
                ) from None
            finally:
                response.close()

        return chunks()

    def trace(self, project: ProjectRef, job_id: int | str, max_bytes: int = DEFAULT_TRACE_BYTES) -> Trace | None:
        """A job's raw log (bytes: ANSI codes, section markers, maybe not UTF-8); None when the job or
        its log is gone. A log over ``max_bytes`` keeps its tail, from the first whole line after
        the cut, with ``truncated=True``. Memory stays around ``max_bytes`` + one chunk."""
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        chunks = self._trace_chunks(project, job_id)
        if chunks is None:
            return None
        kept: collections.deque[bytes] = collections.deque()
        held = total = 0
        for chunk in chunks:
            kept.append(chunk)
            held += len(chunk)
            total += len(chunk)
            while kept and held - len(kept[0]) > max_bytes:  # the rest still covers max_bytes + 1
                held -= len(kept.popleft())
        data = b"".join(kept)
        kept.clear()
        if total <= max_bytes:
            return Trace(data, total, False)
        return Trace(data[tail_start(data, max_bytes) :], total, True)  # one copy: memory ~2 x max_bytes

    def trace_to_file(
        self, project: ProjectRef, job_id: int | str, path: str | os.PathLike[str], max_bytes: int | None = None
    ) -> TraceFile | None:
        """Stream a job's log to ``path`` (memory: one chunk); with ``max_bytes``, keep only the tail
        as :meth:`trace` does. None (and no file) when the job or its log is gone."""
        if max_bytes is not None and max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        chunks = self._trace_chunks(project, job_id)
        if chunks is None:
            return None
        target = Path(path)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        tmp = Path(tmp_name)
        try:
            total = 0
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    total += len(chunk)
            if max_bytes is None or total <= max_bytes:
                tmp.replace(target)
                return TraceFile(target, total, total, False)
            with tmp.open("rb") as src, target.open("wb") as out:
                src.seek(total - max_bytes - 1)  # the byte before the cut tells whether a line starts there
                head = src.read(1 + min(max_bytes, TRACE_CHUNK))
                out.write(head[tail_start(head, len(head) - 1) :])
                while block := src.read(TRACE_CHUNK):
                    out.write(block)
            return TraceFile(target, target.stat().st_size, total, True)
        finally:
            tmp.unlink(missing_ok=True)

    # -- issues ----------------------------------------------------------------------------------
    def issues(
        self,
        project: ProjectRef,
        *,
        labels: Iterable[str] = (),
        search: str | None = None,
        search_in: str = "description",
        state: str | None = "opened",
        order_by: str = "created_at",
        sort: str = "asc",
    ) -> list[dict[str, Any]]:
        """A project's issues (all pages): with every one of ``labels``, matching ``search`` in
        ``search_in`` (``title``, ``description`` or ``title,description``), of ``state`` (``opened``,
        ``closed``; None: both). Raises :class:`GitLabAccessError` for a missing, hidden or forbidden project."""
        params: dict[str, Any] = {
            "labels": ",".join(labels) or None,
            "search": search or None,
            "in": search_in if search else None,
            "state": state or "all",
            "order_by": order_by,
            "sort": sort,
        }
        path = f"/projects/{project_ref(project)}/issues"
        with self._access("project", project):
            return list(self.paged(path, params))

    def find_issues(
        self, project: ProjectRef, label: str, marker: str, *, state: str | None = "opened"
    ) -> list[dict[str, Any]]:
        """Issues labelled ``label`` whose description contains ``marker`` exactly, oldest first. Only
        the label filters on the server: GitLab's ``search`` may run as a full-text search whose
        tokenising of a marker is not something to bet a duplicate issue on."""
        if not label or not marker:
            raise ValueError("find_issues needs a label and a marker")
        found = self.issues(project, labels=[label], state=state)
        return [i for i in found if marker in str(i.get("description") or "")]

    def issue(self, project: ProjectRef, issue_iid: int) -> dict[str, Any]:
        with self._access("project", project):
            return self._get(f"/projects/{project_ref(project)}/issues/{int(issue_iid)}")

    def create_issue(
        self, project: ProjectRef, title: str, description: str, labels: Iterable[str] = ()
    ) -> dict[str, Any]:
        """Open an issue (201): ``{iid, web_url, ...}``."""
        payload = {"title": title, "description": description, "labels": ",".join(labels)}
        with self._access("project", project):
            return self.request_json("POST", f"/projects/{project_ref(project)}/issues", json=payload)

    def issue_notes(self, project: ProjectRef, issue_iid: int, *, system: bool = False) -> list[dict[str, Any]]:
        """An issue's notes (comments), oldest first; GitLab's system notes ("closed", ...) only with ``system``."""
        path = f"/projects/{project_ref(project)}/issues/{int(issue_iid)}/notes"
        with self._access("project", project):
            notes = list(self.paged(path, {"sort": "asc", "order_by": "created_at"}))
        return notes if system else [n for n in notes if not n.get("system")]

    def add_issue_note(self, project: ProjectRef, issue_iid: int, body: str) -> dict[str, Any]:
        """Comment on an issue (201)."""
        path = f"/projects/{project_ref(project)}/issues/{int(issue_iid)}/notes"
        with self._access("project", project):
            return self.request_json("POST", path, json={"body": body})

    def close_issue(self, project: ProjectRef, issue_iid: int, comment: str | None = None) -> dict[str, Any]:
        """Comment (when given), then close the issue (``state_event=close``)."""
        if comment:
            self.add_issue_note(project, issue_iid, comment)
        path = f"/projects/{project_ref(project)}/issues/{int(issue_iid)}"
        with self._access("project", project):
            return self.request_json("PUT", path, json={"state_event": "close"})

    # -- connection test -------------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """``GET /user`` (who the token belongs to); ``/version`` when ``/user`` is not routed."""
        try:
            try:
                user = self._get("/user") or {}
                return True, f"GitLab {self.web_url} answered: token of {user.get('username', '?')}"
            except ApiError as exc:
                if exc.status != 404:
                    raise
            version = self._get("/version") or {}
            return True, f"GitLab {self.web_url} answered: version {version.get('version', '?')}"
        except Exception as exc:  # noqa: BLE001 - the UI shows the message
            return False, str(exc)
