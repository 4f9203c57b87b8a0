"""GitLab REST API v4 hook (connection ``gitlab_default``) for the ``ci_failure_triage`` DAG.

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
* 429 comes with ``Retry-After`` (or without it on gitlab.com): :class:`ApiHook` honours it.
"""

from __future__ import annotations

import collections
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
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
        auth_type = str(self.extras.get("auth_type") or "private_token").strip().lower()
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
        self, project: ProjectRef, pipeline_id: int | str, scope: Iterable[str] = (), *, bridges: bool = False
    ) -> list[dict[str, Any]]:
        """Jobs (or bridges) of a pipeline, latest attempts, optionally only the given statuses."""
        kind = "bridges" if bridges else "jobs"
        params = [("scope[]", s) for s in scope]
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
