"""GitLab REST API v4 stand-in (gitlab.md §1.3-1.4) and its test controls.

Real routes live under ``/gitlab/api/v4/projects/:id/...`` where ``:id`` is the numeric id or the
URL-encoded full path (``acme%2Fplatform%2Ffast-billing``). Routing is done on the *raw* path, so an
encoded ``%2F`` stays inside its segment exactly as on GitLab (an unencoded path does not match).

Authentication: ``PRIVATE-TOKEN: <token>`` or ``Authorization: Bearer <token>``; the valid tokens are
``glpat-sandbox-token`` unless changed through the control API. Errors use GitLab's bodies:
``{"message": "404 Not found"}``, ``{"message": "401 Unauthorized"}``, ``{"error": "... is invalid"}``.

Seeded data: ``state._Seeder`` (triage scenarios) and ``history.py`` (weeks of CI history in the group
``payments``). Webhook and e-mail builders: ``messages.py``.

Routes: projects (``GET /projects/:id``), a group's projects (``GET /groups/:id/projects`` with
``include_subgroups``, ``archived``, ``order_by``, ``sort``, ``search``, ``simple``), pipelines (list with
GitLab's filters, ``updated_after``/``updated_before`` inclusive at both ends as ``UpdatedAtFilterable``;
one; retry; cancel), a pipeline's jobs (``include_retried``) and bridges (``downstream_pipeline``), test
report and summary, jobs (one, log, retry) and deployments (``GET /projects/:id/deployments`` with the
validation of GitLab's ``DeploymentsFinder``: an ``updated_*`` filter needs ``order_by=updated_at``),
environments (``GET /projects/:id/environments``, ``name``/``search``). Jobs made by retries stay
``pending`` unless ``POST /_sandbox/gitlab/runner`` sets a simulated runner that runs them on the clock.
Issues (``issues.py``): list (``state``, ``labels``, ``search`` + ``in``, ``iids[]``, ``order_by``, ``sort``),
one, create (``title`` required: 400 ``{"error": "title is missing"}``; the model's checks: 400
``{"message": {"title": ["can't be blank"]}}``, title at most 255 characters, description 1 MiB), update
(``state_event`` close|reopen with a system note, labels), notes (list, create; a blank body: 400 "Note
{:note=>[\"can't be blank\"]}"); written as the token's user ``sandbox-bot``.
Deliberate difference: a pipeline's jobs are listed oldest first (GitLab: newest first).
``POST /_sandbox/gitlab/emails/deliver`` builds a pipeline e-mail and APPENDs it into a real IMAP folder.
"""

from __future__ import annotations

import contextlib
import imaplib
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.utils import format_datetime
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import unquote, urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import AfterValidator, BaseModel, Field
from starlette.routing import Match
from starlette.types import Scope

from include.sandbox.systems._seed import GITLAB_USERNAME
from include.sandbox.systems.gitlab.issues import (
    SEARCH_IN,
    STATE_EVENTS,
    Issue,
    Note,
    issue_errors,
    labels_match,
    note_errors,
    search_words,
    seed_issues,
)
from include.sandbox.systems.gitlab.messages import (
    DEFAULT_EMAIL_HOST,
    hook_headers,
    job_hook,
    pipeline_email,
    pipeline_hook,
    repo_urls,
)
from include.sandbox.systems.gitlab.state import (
    COMPLETED_STATUSES,
    DEPLOYMENT_FINISHED,
    DEPLOYMENT_STATUSES,
    FAILURE_REASONS,
    JOB_STATUSES,
    Commit,
    Deployment,
    Environment,
    FileTrace,
    GeneratedTrace,
    GitLabState,
    Job,
    JobSpec,
    Links,
    Namespace,
    Pipeline,
    Project,
    SyntheticPipelines,
    TestCase,
    TextTrace,
    Trace,
    User,
    generated_text_trace,
    iso,
    runner_of,
    seeded_state,
)

NAME = "gitlab"
PREFIX = "/gitlab"
MAX_PER_PAGE = 100
#: Above this many records GitLab omits ``x-total``, ``x-total-pages`` and ``rel="last"``.
COUNT_LIMIT = 10_000
RATE_LIMIT = 600

T = TypeVar("T")

#: GitLab's own spellings where they differ from the HTTP reason phrase.
_REASONS = {400: "Bad request", 404: "Not found"}


def make_state(seed: int, sandbox: Any) -> GitLabState:
    state = seeded_state(seed, lambda: sandbox.clock.now())
    seed_issues(state)
    return state


def _message(status: int) -> str:
    reason = _REASONS.get(status)
    if reason is None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Error"
    return f"{status} {reason}"


def error_response(status: int, message: str, retry_after: float | None) -> Response:
    """GitLab's error body ``{"message": "<status> <reason>"}``; a 429 adds ``Retry-After`` and the
    ``RateLimit-*`` headers. (GitLab bodies carry no free text here, so ``message`` is not used.)"""
    headers: dict[str, str] = {}
    if status == 429:
        wait = retry_after if retry_after is not None else 60
        reset = time.time() + wait
        headers = {
            "Retry-After": str(int(wait)) if float(wait).is_integer() else str(wait),
            "RateLimit-Limit": str(RATE_LIMIT),
            "RateLimit-Observed": str(RATE_LIMIT + 1),
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(int(reset)),
            "RateLimit-ResetTime": format_datetime(datetime.fromtimestamp(reset, UTC), usegmt=True),
        }
    return JSONResponse({"message": _message(status)}, status_code=status, headers=headers)


class GitLabError(Exception):
    """Raised by handlers and dependencies; answered with GitLab's error body."""

    def __init__(self, status: int, message: str | None = None, key: str = "message") -> None:
        super().__init__(message)
        self.status, self.body = status, {key: message or _message(status)}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status)


def _invalid(param: str, how: str = "is invalid") -> GitLabError:
    """Grape's parameter error: 400 ``{"error": "<param> is invalid"}``."""
    return GitLabError(400, f"{param} {how}", key="error")


class GitLabRoute(APIRoute):
    """Routes on the raw path (``%2F`` stays inside the ``:id`` segment) and answers
    ``GitLabError`` and parameter errors in GitLab's format."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        raw = scope.get("raw_path")
        if raw:
            segments = raw.decode("utf-8", "replace").split("?", 1)[0].split("/")
            # decode each segment but keep "/" and "%" inside it encoded: one segment stays one
            scope = {**scope, "path": "/".join(unquote(s).replace("%", "%25").replace("/", "%2F") for s in segments)}
        return super().matches(scope)

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except GitLabError as exc:
                return exc.response()
            except RequestValidationError as exc:
                loc = next((str(e["loc"][-1]) for e in exc.errors() if e.get("loc")), "parameter")
                return _invalid(loc).response()

        return handle


router = APIRouter(route_class=GitLabRoute)
control = APIRouter()


# -- request context ------------------------------------------------------------------------------
def gitlab_state(request: Request) -> GitLabState:
    return request.app.state.sandbox.state(NAME)


def links_for(request: Request) -> Links:
    """URLs of this sandbox as the client reached it (``http://127.0.0.1:PORT/gitlab``)."""
    return Links(str(request.base_url).rstrip("/") + PREFIX)


def authenticated(request: Request) -> GitLabState:
    state = gitlab_state(request)
    token = request.headers.get("private-token")
    if token is None:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        token = credentials.strip() if scheme.lower() == "bearer" else None
    if token is None or token not in state.tokens:
        raise GitLabError(401)
    return state


@dataclass(frozen=True)
class Ctx:
    """What a project route works with."""

    state: GitLabState
    project: Project
    links: Links


AuthenticatedState = Annotated[GitLabState, Depends(authenticated)]


def project_ctx(request: Request, project_id: str, state: AuthenticatedState) -> Ctx:
    project = state.project(unquote(project_id))
    if project is None:
        raise GitLabError(404, "404 Project Not Found")
    state.progress()  # the simulated runner (POST /_sandbox/gitlab/runner) moves retried jobs along the clock
    return Ctx(state, project, links_for(request))


#: A project route's context, resolved from its ``project_id`` path parameter (authenticated first).
ProjectCtx = Annotated[Ctx, Depends(project_ctx)]


def _pipeline(c: Ctx, pipeline_id: int) -> Pipeline:
    found = c.state.pipeline(c.project, pipeline_id)
    if found is None:
        raise GitLabError(404)
    return found


def _job(c: Ctx, job_id: int) -> Job:
    found = c.state.job(c.project, job_id)
    if found is None:
        raise GitLabError(404)
    return found


# -- paging ---------------------------------------------------------------------------------------
class Chain(Sequence[T]):
    """Several sequences read as one, sliced without copying the parts."""

    def __init__(self, *parts: Sequence[T]) -> None:
        self.parts = [p for p in parts if len(p)]

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def __getitem__(self, index):  # type: ignore[no-untyped-def]  # Sequence's int/slice overloads
        if not isinstance(index, slice):
            position = index + len(self) if index < 0 else index
            found = self[position : position + 1] if position >= 0 else []
            if not found:
                raise IndexError(index)
            return found[0]
        start, stop, _ = index.indices(len(self))
        out: list[T] = []
        for part in self.parts:
            n = len(part)
            if stop > 0 and start < n:
                out.extend(part[max(start, 0) : min(stop, n)])
            start, stop = start - n, stop - n
        return out


def _int_param(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise _invalid(name) from None


def paginate(request: Request, items: Sequence[T]) -> tuple[list[T], dict[str, str]]:
    """One page of ``items`` and GitLab's offset-paging headers (§1.3 Pagination)."""
    page = max(1, _int_param(request, "page", 1))
    per_page = min(max(1, _int_param(request, "per_page", 20)), MAX_PER_PAGE)
    total = len(items)
    start = (page - 1) * per_page
    chunk = list(items[start : start + per_page])
    pages = max(1, math.ceil(total / per_page))
    counted = total <= COUNT_LIMIT
    next_page = page + 1 if start + per_page < total else None
    prev_page = page - 1 if page > 1 else None

    keep = [(k, v) for k, v in request.query_params.multi_items() if k not in ("page", "per_page")]
    raw_path = request.scope.get("raw_path", b"").decode("utf-8", "replace") or request.url.path  # keeps %2F

    def href(n: int) -> str:
        return str(
            request.url.replace(path=raw_path, query=urlencode([*keep, ("page", str(n)), ("per_page", str(per_page))]))
        )

    links = []
    if prev_page:
        links.append(f'<{href(prev_page)}>; rel="prev"')
    if next_page:
        links.append(f'<{href(next_page)}>; rel="next"')
    links.append(f'<{href(1)}>; rel="first"')
    if counted:
        links.append(f'<{href(pages)}>; rel="last"')
    headers = {
        "x-page": str(page),
        "x-per-page": str(per_page),
        "x-next-page": str(next_page or ""),
        "x-prev-page": str(prev_page or ""),
        "link": ", ".join(links),
    }
    if counted:
        headers |= {"x-total": str(total), "x-total-pages": str(pages)}
    return chunk, headers


# -- entities -------------------------------------------------------------------------------------
def user_json(user: User, links: Links) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "name": user.name,
        "state": "active",
        "locked": False,
        "avatar_url": links.avatar(user),
        "web_url": links.user(user),
    }


def project_json(project: Project, links: Links, pipelines: Sequence[Pipeline]) -> dict[str, Any]:
    ns = project.namespace
    ssh, http = repo_urls(project, links)
    return {
        "id": project.id,
        "description": project.description,
        "name": project.name,
        "name_with_namespace": project.name_with_namespace,
        "path": project.path,
        "path_with_namespace": project.path_with_namespace,
        "created_at": iso(project.created_at),
        "default_branch": project.default_branch,
        "tag_list": [],
        "topics": [],
        "ssh_url_to_repo": ssh,
        "http_url_to_repo": http,
        "web_url": links.project(project),
        "readme_url": None,
        "avatar_url": None,
        "forks_count": 0,
        "star_count": 0,
        "last_activity_at": iso(max((p.updated_at for p in pipelines), default=project.created_at)),
        "namespace": {
            "id": ns.id,
            "name": ns.name,
            "path": ns.path,
            "kind": ns.kind,
            "full_path": ns.full_path,
            "parent_id": ns.parent_id,
            "avatar_url": None,
            "web_url": f"{links.base}/{'groups/' if ns.kind == 'group' else ''}{ns.full_path}",
        },
        "visibility": "private",
        "archived": project.archived,
        "jobs_enabled": True,
        "ci_config_path": "",
    }


def commit_json(commit: Commit, project: Project, links: Links) -> dict[str, Any]:
    author = commit.author
    return {
        "id": commit.sha,
        "short_id": commit.short_id,
        "created_at": iso(commit.created_at),
        "parent_ids": [],
        "title": commit.title,
        "message": commit.message,
        "author_name": author.name,
        "author_email": author.email,
        "authored_date": iso(commit.created_at),
        "committer_name": author.name,
        "committer_email": author.email,
        "committed_date": iso(commit.created_at),
        "trailers": {},
        "extended_trailers": {},
        "web_url": links.commit(project, commit.sha),
    }


def pipeline_basic(pipeline: Pipeline, links: Links) -> dict[str, Any]:
    """``PipelineBasic`` (list items)."""
    return {
        "id": pipeline.id,
        "iid": pipeline.iid,
        "project_id": pipeline.project.id,
        "sha": pipeline.commit.sha,
        "ref": pipeline.ref,
        "status": pipeline.status,
        "source": pipeline.source,
        "created_at": iso(pipeline.created_at),
        "updated_at": iso(pipeline.updated_at),
        "web_url": links.pipeline(pipeline),
        "name": pipeline.name,
    }


def pipeline_json(pipeline: Pipeline, links: Links) -> dict[str, Any]:
    """``Pipeline`` (one pipeline): the basic fields plus timing, user and ``detailed_status``."""
    coverages = [j.coverage for j in pipeline.latest_jobs() if j.coverage is not None]
    return {
        **pipeline_basic(pipeline, links),
        "before_sha": pipeline.before_sha,
        "tag": pipeline.tag,
        "yaml_errors": None,
        "user": user_json(pipeline.user, links),
        "started_at": iso(pipeline.started_at),
        "finished_at": iso(pipeline.finished_at),
        "committed_at": iso(pipeline.commit.created_at),
        "duration": pipeline.duration,
        "queued_duration": pipeline.queued_duration,
        "coverage": f"{sum(coverages) / len(coverages):.2f}" if coverages else None,
        "detailed_status": pipeline.detailed_status(),
        "archived": False,
    }


def _job_basic(job: Job, links: Links) -> dict[str, Any]:
    """``JobBasic``; ``failure_reason`` only on failed jobs."""
    pipeline = job.pipeline
    data: dict[str, Any] = {
        "id": job.id,
        "status": job.status,
        "stage": job.stage,
        "name": job.name,
        "ref": pipeline.ref,
        "tag": pipeline.tag,
        "coverage": job.coverage,
        "allow_failure": job.allow_failure,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "erased_at": None,
        "duration": job.duration,
        "queued_duration": job.queued_duration,
        "user": user_json(pipeline.user, links),
        "commit": commit_json(pipeline.commit, pipeline.project, links),
        "pipeline": {k: v for k, v in pipeline_basic(pipeline, links).items() if k != "name"},
        "web_url": links.job(job),
        "project": {"ci_job_token_scope_enabled": False},
    }
    if job.status == "failed":
        data["failure_reason"] = job.failure_reason
    return data


def job_json(job: Job, links: Links) -> dict[str, Any]:
    """``Job``: ``JobBasic`` plus artifacts, runner and tags."""
    runner = runner_of(job)
    artifacts = (
        [{"file_type": "junit", "size": 96 * len(job.tests), "filename": "junit.xml.gz", "file_format": "gzip"}]
        if job.tests
        else []
    )
    return {
        **_job_basic(job, links),
        "artifacts_file": {"filename": "artifacts.zip", "size": 2048} if job.tests else None,
        "artifacts": artifacts,
        "artifacts_expire_at": None,
        "archived": False,
        "tag_list": list(runner.tags) if runner else [],
        "runner": None
        if runner is None
        else {
            "id": runner.id,
            "description": runner.description,
            "ip_address": None,
            "active": True,
            "paused": False,
            "is_shared": True,
            "runner_type": "instance_type",
            "name": "gitlab-runner",
            "online": True,
            "status": "online",
        },
        "runner_manager": None,
    }


def bridge_json(job: Job, state: GitLabState, links: Links) -> dict[str, Any]:
    """``Bridge``: ``JobBasic`` plus the downstream pipeline it started (or null)."""
    downstream = state.pipelines.get(job.downstream_pipeline_id) if job.downstream_pipeline_id else None
    return {**_job_basic(job, links), "downstream_pipeline": pipeline_basic(downstream, links) if downstream else None}


def environment_json(environment: Environment, state: GitLabState) -> dict[str, Any]:
    """``EnvironmentBasic``; ``updated_at`` moves with the environment's last deployment."""
    deployed = [d.updated_at for d in state.deployments.get(environment.project_id, []) if d.environment is environment]
    return {
        "id": environment.id,
        "name": environment.name,
        "slug": environment.slug,
        "external_url": environment.external_url,
        "created_at": iso(environment.created_at),
        "updated_at": iso(max([environment.created_at, *deployed])),
    }


def deployment_json(deployment: Deployment, state: GitLabState, links: Links) -> dict[str, Any]:
    """``Deployment``: the deployable is the deploy job (``Job`` entity, with its pipeline)."""
    return {
        "id": deployment.id,
        "iid": deployment.iid,
        "ref": deployment.ref,
        "sha": deployment.sha,
        "created_at": iso(deployment.created_at),
        "updated_at": iso(deployment.updated_at),
        "user": user_json(deployment.user, links),
        "environment": environment_json(deployment.environment, state),
        "deployable": job_json(deployment.job, links),
        "status": deployment.status,
    }


def _counts(cases: Sequence[Any]) -> dict[str, int]:
    return {f"{s}_count": sum(1 for c in cases if c.status == s) for s in ("success", "failed", "skipped", "error")}


def report_suites(pipeline: Pipeline) -> list[tuple[Job, dict[str, Any]]]:
    """One suite per latest job with test results (named after the job), with its counts."""
    suites = []
    for job in pipeline.latest_jobs():
        if job.tests:
            total_time = round(sum(c.execution_time for c in job.tests), 3)
            suites.append(
                (
                    job,
                    {
                        "name": job.name,
                        "total_time": total_time,
                        "total_count": len(job.tests),
                        **_counts(job.tests),
                        "suite_error": None,
                    },
                )
            )
    return suites


def report_json(pipeline: Pipeline) -> dict[str, Any]:
    suites = report_suites(pipeline)
    report: dict[str, Any] = {
        "total_time": round(sum(s["total_time"] for _, s in suites), 3),
        "total_count": sum(s["total_count"] for _, s in suites),
    }
    for key in ("success_count", "failed_count", "skipped_count", "error_count"):
        report[key] = sum(s[key] for _, s in suites)
    report["test_suites"] = [
        {
            **suite,
            "test_cases": [
                {
                    "status": c.status,
                    "name": c.name,
                    "classname": c.classname,
                    "file": c.file,
                    "execution_time": c.execution_time,
                    "system_output": c.system_output,
                    "stack_trace": c.stack_trace,
                    "recent_failures": None,
                }
                for c in job.tests
            ],
        }
        for job, suite in suites
    ]
    return report


def report_summary_json(pipeline: Pipeline) -> dict[str, Any]:
    suites = report_suites(pipeline)
    total = {
        "time": round(sum(s["total_time"] for _, s in suites), 3),
        "count": sum(s["total_count"] for _, s in suites),
    }
    for status in ("success", "failed", "skipped", "error"):
        total[status] = sum(s[f"{status}_count"] for _, s in suites)
    return {"total": {**total, "suite_error": None}, "test_suites": [{**s, "build_ids": [job.id]} for job, s in suites]}


# -- pipeline listing -----------------------------------------------------------------------------
PIPELINE_SCOPES = frozenset({"running", "pending", "finished", "branches", "tags"})
ORDER_KEYS: dict[str, Callable[[Pipeline], Any]] = {
    "id": lambda p: p.id,
    "status": lambda p: p.status,
    "ref": lambda p: p.ref,
    "updated_at": lambda p: p.updated_at,
    "user_id": lambda p: p.user.id,
}


def _bool_param(request: Request, name: str) -> bool | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    if value.lower() in ("true", "1", "yes", "t"):
        return True
    if value.lower() in ("false", "0", "no", "f", ""):
        return False
    raise _invalid(name)


def _time_param(request: Request, name: str) -> float | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _invalid(name) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _choice_param(
    request: Request, name: str, allowed: Sequence[str] | frozenset[str], default: str | None = None
) -> str | None:
    value = request.query_params.get(name, default)
    if value is not None and value not in allowed:
        raise _invalid(name, "does not have a valid value")
    return value


@dataclass(frozen=True)
class PipelineQuery:
    """The filters and ordering of ``GET /projects/:id/pipelines``."""

    scope: str | None = None
    status: str | None = None
    ref: str | None = None
    sha: str | None = None
    username: str | None = None
    source: str | None = None
    name: str | None = None
    yaml_errors: bool | None = None
    updated_after: float | None = None
    updated_before: float | None = None
    order_by: str = "id"
    sort: str = "desc"

    @classmethod
    def from_request(cls, request: Request) -> PipelineQuery:
        q = request.query_params
        return cls(
            scope=_choice_param(request, "scope", PIPELINE_SCOPES),
            status=_choice_param(request, "status", JOB_STATUSES),
            ref=q.get("ref"),
            sha=q.get("sha"),
            username=q.get("username"),
            source=q.get("source"),
            name=q.get("name"),
            yaml_errors=_bool_param(request, "yaml_errors"),
            updated_after=_time_param(request, "updated_after"),
            updated_before=_time_param(request, "updated_before"),
            order_by=_choice_param(request, "order_by", tuple(ORDER_KEYS), "id") or "id",
            sort=_choice_param(request, "sort", ("asc", "desc"), "desc") or "desc",
        )

    def keeps(self, p: Pipeline) -> bool:
        """Every filter except the ``updated_*`` time window."""
        scope_ok = {
            None: True,
            "running": p.status == "running",
            "pending": p.status == "pending",
            "finished": p.status in COMPLETED_STATUSES,
            "branches": not p.tag,
            "tags": p.tag,
        }[self.scope]
        wanted = (
            (self.status, p.status),
            (self.ref, p.ref),
            (self.sha, p.commit.sha),
            (self.username, p.user.username),
            (self.source, p.source),
            (self.name, p.name),
        )
        return scope_ok and not self.yaml_errors and all(want is None or want == have for want, have in wanted)

    def in_window(self, p: Pipeline) -> bool:
        """``updated_after <= updated_at <= updated_before`` (GitLab's ``UpdatedAtFilterable``: both
        bounds are inclusive)."""
        return (self.updated_after is None or p.updated_at >= self.updated_after) and (
            self.updated_before is None or p.updated_at <= self.updated_before
        )


def pipeline_listing(state: GitLabState, project: Project, q: PipelineQuery) -> Sequence[Pipeline]:
    """The filtered, ordered pipelines of ``project``; a synthetic block is sliced lazily.

    Ties and the synthetic block follow (key, id) order; synthetic ids are below every real id.
    """
    real = [p for p in state.project_pipelines[project.id] if q.keeps(p) and q.in_window(p)]
    block = range(0)
    newest: Pipeline | None = None  # newest synthetic pipeline in the window, if the block matches
    if project.synthetic is not None:
        ks = project.synthetic.indexes_between(q.updated_after, q.updated_before)
        candidate = state.synthetic_pipeline(project, ks.start) if ks else None
        if candidate is not None and q.keeps(candidate):
            block, newest = ks, candidate
    if q.scope in ("branches", "tags"):  # only the latest pipeline of each branch or tag
        latest: dict[str, Pipeline] = {}
        for p in [*real, *([newest] if newest else [])]:
            if p.ref not in latest or p.id > latest[p.ref].id:
                latest[p.ref] = p
        real, block, newest = list(latest.values()), range(0), None
    key = ORDER_KEYS[q.order_by]
    real.sort(key=lambda p: (key(p), p.id))
    if newest is None:
        return real if q.sort == "asc" else real[::-1]
    split = sum(1 for p in real if (key(p), p.id) < (key(newest), newest.id))
    before, after = real[:split], real[split:]
    if q.sort == "asc":
        return Chain(before, SyntheticPipelines(state, project, block[::-1]), after)
    return Chain(after[::-1], SyntheticPipelines(state, project, block), before[::-1])


# -- REST routes ----------------------------------------------------------------------------------
PROJECT = "/api/v4/projects/{project_id}"


@router.get(PROJECT)
def get_project(c: ProjectCtx) -> JSONResponse:
    with c.state.lock:
        return JSONResponse(project_json(c.project, c.links, c.state.project_pipelines[c.project.id]))


@router.get(PROJECT + "/pipelines")
def list_pipelines(request: Request, c: ProjectCtx) -> JSONResponse:
    query = PipelineQuery.from_request(request)
    with c.state.lock:
        page, headers = paginate(request, pipeline_listing(c.state, c.project, query))
        return JSONResponse([pipeline_basic(p, c.links) for p in page], headers=headers)


@router.get(PROJECT + "/pipelines/{pipeline_id}")
def get_pipeline(pipeline_id: int, c: ProjectCtx) -> JSONResponse:
    with c.state.lock:
        return JSONResponse(pipeline_json(_pipeline(c, pipeline_id), c.links))


def _job_scope(request: Request) -> set[str]:
    """``scope`` / ``scope[]``: one job status or several."""
    scope = set(request.query_params.getlist("scope[]") + request.query_params.getlist("scope"))
    if not scope <= JOB_STATUSES:
        raise _invalid("scope", "does not have a valid value")
    return scope


def _pipeline_jobs(request: Request, c: Ctx, pipeline_id: int, bridges: bool) -> tuple[list[Job], dict[str, str]]:
    scope = _job_scope(request)
    include_retried = bool(_bool_param(request, "include_retried"))
    pipeline = _pipeline(c, pipeline_id)
    jobs = [
        j
        for j in pipeline.jobs
        if j.bridge == bridges and (include_retried or not j.retried) and (not scope or j.status in scope)
    ]
    return paginate(request, sorted(jobs, key=lambda j: j.id))


@router.get(PROJECT + "/pipelines/{pipeline_id}/jobs")
def list_pipeline_jobs(request: Request, pipeline_id: int, c: ProjectCtx) -> JSONResponse:
    with c.state.lock:
        jobs, headers = _pipeline_jobs(request, c, pipeline_id, bridges=False)
        return JSONResponse([job_json(j, c.links) for j in jobs], headers=headers)


@router.get(PROJECT + "/pipelines/{pipeline_id}/bridges")
def list_pipeline_bridges(request: Request, pipeline_id: int, c: ProjectCtx) -> JSONResponse:
    with c.state.lock:
        jobs, headers = _pipeline_jobs(request, c, pipeline_id, bridges=True)
        return JSONResponse([bridge_json(j, c.state, c.links) for j in jobs], headers=headers)


@router.get(PROJECT + "/pipelines/{pipeline_id}/test_report")
def get_test_report(pipeline_id: int, c: ProjectCtx) -> JSONResponse:
    with c.state.lock:
        return JSONResponse(report_json(_pipeline(c, pipeline_id)))


@router.get(PROJECT + "/pipelines/{pipeline_id}/test_report_summary")
def get_test_report_summary(pipeline_id: int, c: ProjectCtx) -> JSONResponse:
    with c.state.lock:
        return JSONResponse(report_summary_json(_pipeline(c, pipeline_id)))


@router.post(PROJECT + "/pipelines/{pipeline_id}/retry")
def retry_pipeline(pipeline_id: int, c: ProjectCtx) -> JSONResponse:
    """Retries the failed and canceled jobs (201); 403 when there is nothing to retry."""
    with c.state.lock:
        pipeline = _pipeline(c, pipeline_id)
        if not c.state.retry_pipeline(pipeline):
            raise GitLabError(403)
        return JSONResponse(pipeline_json(pipeline, c.links), status_code=201)


@router.post(PROJECT + "/pipelines/{pipeline_id}/cancel")
def cancel_pipeline(pipeline_id: int, c: ProjectCtx) -> JSONResponse:
    with c.state.lock:
        pipeline = _pipeline(c, pipeline_id)
        c.state.cancel_pipeline(pipeline)
        return JSONResponse(pipeline_json(pipeline, c.links))


@router.get(PROJECT + "/jobs/{job_id}")
def get_job(job_id: int, c: ProjectCtx) -> JSONResponse:
    with c.state.lock:
        return JSONResponse(job_json(_job(c, job_id), c.links))


@router.get(PROJECT + "/jobs/{job_id}/trace")
def get_job_trace(job_id: int, c: ProjectCtx) -> Response:
    """The raw log, streamed chunk by chunk (a generated trace is never built in memory)."""
    with c.state.lock:
        trace = _job(c, job_id).trace
    if trace is None or not trace.available():
        raise GitLabError(404)
    return StreamingResponse(trace.chunks(), media_type="text/plain; charset=utf-8")


@router.post(PROJECT + "/jobs/{job_id}/retry")
def retry_job(job_id: int, c: ProjectCtx) -> JSONResponse:
    """A new pending attempt with a new id (201); the old job becomes ``retried``."""
    with c.state.lock:
        job = _job(c, job_id)
        if job.retried or job.status not in COMPLETED_STATUSES - {"skipped"}:
            raise GitLabError(403, "403 Forbidden - Job is not retryable")
        return JSONResponse(job_json(c.state.retry_job(job), c.links), status_code=201)


# -- groups ---------------------------------------------------------------------------------------
GROUP_PROJECT_ORDER: dict[str, Callable[[Project, GitLabState], Any]] = {
    "id": lambda p, s: p.id,
    "name": lambda p, s: p.name.lower(),
    "path": lambda p, s: p.path.lower(),
    "created_at": lambda p, s: p.created_at,
    "updated_at": lambda p, s: _last_activity(p, s),
    "last_activity_at": lambda p, s: _last_activity(p, s),
    "similarity": lambda p, s: p.id,
    "star_count": lambda p, s: 0,
}
#: ``BasicProjectDetails`` (``simple=true``) lacks these of the full ``Project`` entity.
_NOT_SIMPLE = ("description", "visibility", "archived", "jobs_enabled", "ci_config_path")


def _last_activity(project: Project, state: GitLabState) -> float:
    return max((p.updated_at for p in state.project_pipelines[project.id]), default=project.created_at)


def _group(state: GitLabState, group_id: str) -> Namespace:
    """A group by numeric id or full path (case-insensitive); a user's namespace is no group."""
    ref = unquote(group_id)
    groups = [n for n in state.namespaces.values() if n.kind == "group"]
    found = (
        next((g for g in groups if g.id == int(ref)), None)
        if ref.isdigit()
        else next((g for g in groups if g.full_path.lower() == ref.lower()), None)
    )
    if found is None:
        raise GitLabError(404, "404 Group Not Found")
    return found


def _in_group(namespace: Namespace, group: Namespace, parents: dict[int, Namespace], subgroups: bool) -> bool:
    if namespace.id == group.id:
        return True
    while subgroups and namespace.parent_id is not None:
        namespace = parents[namespace.parent_id]
        if namespace.id == group.id:
            return True
    return False


@router.get("/api/v4/groups/{group_id}/projects")
def list_group_projects(request: Request, group_id: str, state: AuthenticatedState) -> JSONResponse:
    """The group's projects; ``include_subgroups=true`` adds every descendant group's projects."""
    order_by = _choice_param(request, "order_by", tuple(GROUP_PROJECT_ORDER), "created_at") or "created_at"
    sort = _choice_param(request, "sort", ("asc", "desc"), "desc") or "desc"
    subgroups = bool(_bool_param(request, "include_subgroups"))
    archived = _bool_param(request, "archived")
    simple = bool(_bool_param(request, "simple"))
    _bool_param(request, "with_shared")  # validated; the sandbox shares no project with a group
    visibility = _choice_param(request, "visibility", ("public", "internal", "private"))
    search = (request.query_params.get("search") or "").lower()
    links = links_for(request)
    with state.lock:
        group = _group(state, group_id)
        parents = {n.id: n for n in state.namespaces.values() if n.kind == "group"}
        projects = [
            p
            for p in state.projects.values()
            if p.namespace.kind == "group"
            and _in_group(p.namespace, group, parents, subgroups)
            and (archived is None or p.archived == archived)
            and visibility in (None, "private")
            and (not search or search in p.name.lower() or search in p.path.lower())
        ]
        key = GROUP_PROJECT_ORDER[order_by]
        projects.sort(key=lambda p: (key(p, state), p.id), reverse=sort == "desc")
        page, headers = paginate(request, projects)
        items = [project_json(p, links, state.project_pipelines[p.id]) for p in page]
        if simple:
            items = [{k: v for k, v in item.items() if k not in _NOT_SIMPLE} for item in items]
        return JSONResponse(items, headers=headers)


# -- deployments ----------------------------------------------------------------------------------
DEPLOYMENT_ORDER: dict[str, Callable[[Deployment], Any]] = {
    "id": lambda d: (d.id,),
    "iid": lambda d: (d.id,),  # GitLab sorts by id for iid and created_at: the same order
    "created_at": lambda d: (d.id,),
    "updated_at": lambda d: (d.updated_at, d.id),
    "finished_at": lambda d: (d.finished_at or 0.0, d.id),
}


def _bad_request(reason: str) -> GitLabError:
    """GitLab's ``bad_request!``: 400 ``{"message": "400 Bad request - <reason>"}``."""
    return GitLabError(400, f"400 Bad request - {reason}")


@router.get(PROJECT + "/deployments")
def list_deployments(request: Request, c: ProjectCtx) -> JSONResponse:
    """A project's deployments, filtered and ordered as GitLab's ``DeploymentsFinder`` does (oldest
    first by default); its "inefficient query" rules answer 400."""
    order_by = _choice_param(request, "order_by", tuple(DEPLOYMENT_ORDER), "id") or "id"
    sort = _choice_param(request, "sort", ("asc", "desc"), "asc") or "asc"
    status = _choice_param(request, "status", DEPLOYMENT_STATUSES)
    environment = request.query_params.get("environment")
    updated_after, updated_before = _time_param(request, "updated_after"), _time_param(request, "updated_before")
    finished_after, finished_before = _time_param(request, "finished_after"), _time_param(request, "finished_before")
    by_updated = updated_after is not None or updated_before is not None
    by_finished = finished_after is not None or finished_before is not None
    if by_updated and by_finished:
        raise _bad_request("Both `updated_at` filter and `finished_at` filter can not be specified")
    if by_updated and order_by != "updated_at":
        raise _bad_request("`updated_at` filter requires `updated_at` sort")
    if by_finished and order_by != "finished_at":
        raise _bad_request("`finished_at` filter requires `finished_at` sort.")
    if order_by == "finished_at" and not (by_finished or status in DEPLOYMENT_FINISHED):
        raise _bad_request(
            "`finished_at` sort requires `finished_at` filter or a filter with at least one of the finished statuses."
        )
    if by_finished and status != "success":
        raise _bad_request("`finished_at` filter must be combined with `success` status filter.")
    with c.state.lock:
        found = []
        for d in c.state.deployments.get(c.project.id, []):
            updated, finished = d.updated_at, d.finished_at
            if (
                (environment is not None and d.environment.name != environment)
                or (status is not None and d.status != status)
                or (updated_after is not None and updated < updated_after)
                or (updated_before is not None and updated > updated_before)
                or (finished_after is not None and (finished is None or finished < finished_after))
                or (finished_before is not None and (finished is None or finished >= finished_before))
            ):
                continue
            found.append(d)
        if updated_after is not None and updated_before is not None and updated_before < updated_after:
            found = []
        found.sort(key=DEPLOYMENT_ORDER[order_by], reverse=sort == "desc")
        page, headers = paginate(request, found)
        return JSONResponse([deployment_json(d, c.state, c.links) for d in page], headers=headers)


@router.get(PROJECT + "/deployments/{deployment_id}")
def get_deployment(deployment_id: int, c: ProjectCtx) -> JSONResponse:
    with c.state.lock:
        found = next((d for d in c.state.deployments.get(c.project.id, []) if d.id == deployment_id), None)
        if found is None:
            raise GitLabError(404)
        return JSONResponse(deployment_json(found, c.state, c.links))


@router.get(PROJECT + "/environments")
def list_environments(request: Request, c: ProjectCtx) -> JSONResponse:
    """The project's environments by id (``EnvironmentBasic`` plus ``state``); ``name`` (exact) or
    ``search`` (part of the name) filter; both at once is GitLab's 400."""
    name, search = request.query_params.get("name"), request.query_params.get("search")
    if name and search:
        raise _bad_request("cannot use both name and search parameters")
    with c.state.lock:
        found = [
            e
            for e in sorted(c.state.environments.get(c.project.id, {}).values(), key=lambda e: e.id)
            if (not name or e.name == name) and (not search or search.lower() in e.name.lower())
        ]
        page, headers = paginate(request, found)
        return JSONResponse([{**environment_json(e, c.state), "state": "available"} for e in page], headers=headers)


# -- issues and notes (issue 12) -----------------------------------------------------------------
def issue_json(issue: Issue, c: Ctx) -> dict[str, Any]:
    web = f"{c.links.project(c.project)}/-/issues/{issue.iid}"
    api = f"{c.links.base}/api/v4/projects/{c.project.id}/issues/{issue.iid}"
    return {
        "id": issue.id,
        "iid": issue.iid,
        "project_id": c.project.id,
        "title": issue.title,
        "description": issue.description,
        "state": issue.state,
        "created_at": iso(issue.created_at),
        "updated_at": iso(issue.updated_at),
        "closed_at": iso(issue.closed_at),
        "closed_by": user_json(issue.closed_by, c.links) if issue.closed_by else None,
        "labels": list(issue.labels),
        "milestone": None,
        "assignees": [],
        "assignee": None,
        "author": user_json(issue.author, c.links),
        "type": "ISSUE",
        "issue_type": "issue",
        "user_notes_count": sum(1 for n in issue.notes if not n.system),
        "merge_requests_count": 0,
        "upvotes": 0,
        "downvotes": 0,
        "due_date": None,
        "confidential": False,
        "discussion_locked": None,
        "severity": "UNKNOWN",
        "web_url": web,
        "references": {
            "short": f"#{issue.iid}",
            "relative": f"#{issue.iid}",
            "full": f"{c.project.path_with_namespace}#{issue.iid}",
        },
        "time_stats": {"time_estimate": 0, "total_time_spent": 0},
        "task_completion_status": {"count": 0, "completed_count": 0},
        "_links": {"self": api, "notes": f"{api}/notes", "project": f"{c.links.base}/api/v4/projects/{c.project.id}"},
    }


def note_json(note: Note, issue: Issue, c: Ctx) -> dict[str, Any]:
    return {
        "id": note.id,
        "type": None,
        "body": note.body,
        "attachment": None,
        "author": user_json(note.author, c.links),
        "created_at": iso(note.created_at),
        "updated_at": iso(note.updated_at),
        "system": note.system,
        "noteable_id": issue.id,
        "noteable_type": "Issue",
        "noteable_iid": issue.iid,
        "project_id": c.project.id,
        "resolvable": False,
        "confidential": False,
        "internal": False,
        "commands_changes": {},
    }


async def _params(request: Request) -> dict[str, Any]:
    """Parameters from the query string, a JSON object body or a form (GitLab takes all three)."""
    values: dict[str, Any] = dict(request.query_params)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise GitLabError(400, "400 Bad request - invalid JSON") from None
        if isinstance(body, dict):
            values.update(body)
    elif kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        values.update({k: v for k, v in (await request.form()).items() if isinstance(v, str)})
    return values


def _label_list(value: Any, name: str = "labels") -> list[str]:
    """Labels as GitLab takes them: a comma-separated string or an array of names."""
    if value is None:
        return []
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = value
    else:
        raise _invalid(name)
    return list(dict.fromkeys(v.strip() for v in items if v.strip()))


def _validation_error(errors: dict[str, list[str]]) -> GitLabError:
    """``render_validation_error!``: 400 with the model's errors by attribute under ``message``."""
    error = GitLabError(400)
    error.body = {"message": errors}
    return error


def _issue(c: Ctx, issue_iid: int) -> Issue:
    found = c.state.issues.get(c.project.id, issue_iid)
    if found is None:
        raise GitLabError(404)
    return found


def _token_user(state: GitLabState) -> User:
    return state.users[GITLAB_USERNAME]


@router.get(PROJECT + "/issues")
def list_issues(request: Request, c: ProjectCtx) -> JSONResponse:
    """``state`` opened|closed|all (default all), ``labels`` (every one, exactly; ``None``/``Any``), ``search``
    with ``in`` (title, description or both), ``iids[]``, ``order_by`` created_at|updated_at, ``sort``."""
    state = _choice_param(request, "state", ("opened", "closed", "all"), "all") or "all"
    order_by = _choice_param(request, "order_by", ("created_at", "updated_at"), "created_at") or "created_at"
    sort = _choice_param(request, "sort", ("asc", "desc"), "desc") or "desc"
    labels = _label_list(request.query_params.get("labels"))
    where = tuple(w.strip() for w in (request.query_params.get("in") or "title,description").split(","))
    if not where or any(w not in SEARCH_IN for w in where):
        raise _invalid("in", "does not have a valid value")
    words = search_words(request.query_params.get("search") or "")
    iids = {int(v) for v in request.query_params.getlist("iids[]") if v.isdigit()}
    with c.state.lock:
        found = []
        for issue in c.state.issues.of(c.project.id):
            if state != "all" and issue.state != state:
                continue
            if not labels_match(issue, labels):
                continue
            if words and not issue.matches(words, where):
                continue
            if iids and issue.iid not in iids:
                continue
            found.append(issue)
        found.sort(key=lambda i: (getattr(i, order_by), i.id), reverse=sort == "desc")
        page, headers = paginate(request, found)
        return JSONResponse([issue_json(i, c) for i in page], headers=headers)


@router.get(PROJECT + "/issues/{issue_iid}")
def get_issue(issue_iid: int, c: ProjectCtx) -> JSONResponse:
    with c.state.lock:
        return JSONResponse(issue_json(_issue(c, issue_iid), c))


@router.post(PROJECT + "/issues")
async def create_issue(request: Request, c: ProjectCtx) -> JSONResponse:
    """``title`` (required), ``description``, ``labels`` -> 201 with the issue, authored by the token's user.
    No ``title`` at all: Grape's 400 ``{"error": "title is missing"}``; a blank or too long title, a too
    long description: the model's 400 ``{"message": {"title": ["can't be blank"]}}``."""
    params = await _params(request)
    title = params.get("title")
    if not isinstance(title, str):
        raise GitLabError(400, "title is missing", key="error")
    description = str(params.get("description") or "")
    if errors := issue_errors(title, description):
        raise _validation_error(errors)
    labels = _label_list(params.get("labels"))
    with c.state.lock:
        issue = c.state.issues.add(
            c.project.id, title.strip(), description, _token_user(c.state), c.state.now(), labels
        )
        return JSONResponse(issue_json(issue, c), status_code=201)


@router.put(PROJECT + "/issues/{issue_iid}")
async def update_issue(request: Request, issue_iid: int, c: ProjectCtx) -> JSONResponse:
    """``state_event`` close|reopen (a system note records it), ``title``, ``description``, ``labels``,
    ``add_labels``, ``remove_labels``."""
    params = await _params(request)
    event = params.get("state_event")
    if event is not None and event not in STATE_EVENTS:
        raise _invalid("state_event", "does not have a valid value")
    with c.state.lock:
        issue = _issue(c, issue_iid)
        now, user = c.state.now(), _token_user(c.state)
        if event == "close":
            c.state.issues.close(issue, user, now)
        elif event == "reopen":
            c.state.issues.reopen(issue, user, now)
        if isinstance(params.get("title"), str) and params["title"].strip():
            issue.title = params["title"]
        if "description" in params:
            issue.description = str(params.get("description") or "")
        if "labels" in params:
            issue.labels = _label_list(params.get("labels"))
        for name in _label_list(params.get("add_labels"), "add_labels"):
            if name not in issue.labels:
                issue.labels.append(name)
        removed = set(_label_list(params.get("remove_labels"), "remove_labels"))
        issue.labels = [n for n in issue.labels if n not in removed]
        issue.updated_at = now
        return JSONResponse(issue_json(issue, c))


@router.get(PROJECT + "/issues/{issue_iid}/notes")
def list_issue_notes(request: Request, issue_iid: int, c: ProjectCtx) -> JSONResponse:
    """System notes included; ``sort`` asc|desc (default desc), ``order_by`` created_at|updated_at."""
    sort = _choice_param(request, "sort", ("asc", "desc"), "desc") or "desc"
    _choice_param(request, "order_by", ("created_at", "updated_at"), "created_at")
    with c.state.lock:
        issue = _issue(c, issue_iid)
        notes = sorted(issue.notes, key=lambda n: (n.created_at, n.id), reverse=sort == "desc")
        page, headers = paginate(request, notes)
        return JSONResponse([note_json(n, issue, c) for n in page], headers=headers)


@router.post(PROJECT + "/issues/{issue_iid}/notes")
async def create_issue_note(request: Request, issue_iid: int, c: ProjectCtx) -> JSONResponse:
    """``body`` (required: else Grape's 400 ``{"error": "body is missing"}``); a blank or too long body is
    the model's error as the Notes API words it: 400 ``{"message": "400 Bad request - Note {:note=>[...]}"}``."""
    params = await _params(request)
    body = params.get("body")
    if not isinstance(body, str):
        raise GitLabError(400, "body is missing", key="error")
    if errors := note_errors(body):
        raise GitLabError(400, "400 Bad request - Note {:note=>[" + ", ".join(f'"{e}"' for e in errors) + "]}")
    with c.state.lock:
        issue = _issue(c, issue_iid)
        note = c.state.issues.note(issue, body, _token_user(c.state), c.state.now())
        return JSONResponse(note_json(note, issue, c), status_code=201)


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
def route_not_found(rest: str) -> JSONResponse:
    """Grape's answer for a path no route matches (e.g. an ``:id`` path with unencoded slashes)."""
    return JSONResponse({"error": "404 Not Found"}, status_code=404)


# -- controls (/_sandbox/gitlab) ------------------------------------------------------------------
def _check_status(value: str) -> str:
    if value not in JOB_STATUSES:
        raise ValueError(f"unknown status {value!r}")
    return value


def _check_reason(value: str | None) -> str | None:
    if value is not None and value not in FAILURE_REASONS:
        raise ValueError(f"unknown failure_reason {value!r}")
    return value


JobStatus = Annotated[str, AfterValidator(_check_status)]
FailureReason = Annotated[str | None, AfterValidator(_check_reason)]


class ProjectBody(BaseModel):
    name: str
    namespace_path: str = Field(description="group full path (created with its parents when missing) or a username")
    path: str | None = Field(None, description="URL slug; default: slug of the name")
    id: int | None = Field(None, description="default: next free id")
    default_branch: str = "main"
    description: str = ""
    archived: bool = False


class GeneratedTraceBody(BaseModel):
    generate_bytes: int = Field(ge=0, description="exact size; generated chunk by chunk on every read")
    binary: bool = Field(False, description="random bytes with NULs instead of a runner-like text log")


class FileTraceBody(BaseModel):
    trace_from_file: str = Field(description="path of a file on the sandbox host, read on every request")


#: A job log in a control body: the text itself, a generated log or a file.
TraceBody = str | GeneratedTraceBody | FileTraceBody | None


class TestCaseBody(BaseModel):
    name: str
    classname: str = "tests"
    status: Literal["success", "failed", "skipped", "error"] = "success"
    execution_time: float = 0.1
    file: str | None = None
    system_output: str | None = None
    stack_trace: str | None = None


class JobBody(BaseModel):
    name: str
    stage: str = "test"
    status: JobStatus = "success"
    failure_reason: FailureReason = Field(None, description="used when status is failed; default unknown_failure")
    allow_failure: bool = False
    bridge: bool = Field(False, description="a trigger job (listed under /bridges, not /jobs)")
    trace: TraceBody = Field(None, description="log text, or a generated / file trace")
    tests: list[TestCaseBody] = Field(default_factory=list, description="this job's test suite in the test report")
    coverage: float | None = None
    duration: float = 60.0
    queued: float = 4.0
    environment: str | None = Field(None, description="a deploy job: creates a deployment to this environment")


class PipelineBody(BaseModel):
    ref: str | None = Field(None, description="default: the project's default branch")
    message: str = "Sandbox commit"
    author: str = Field(GITLAB_USERNAME, description="username of a seeded user (commit author and pipeline user)")
    source: str = "push"
    created_at: float | None = Field(None, description="epoch seconds; default: placed so the jobs end now")
    tag: bool = False
    name: str | None = None
    status: str = Field("created", description="status reported while the pipeline has no jobs")
    jobs: list[JobBody] = Field(default_factory=list, description="created stage by stage, in this order")


class JobStatusBody(BaseModel):
    status: JobStatus
    failure_reason: FailureReason = None
    trace: TraceBody = Field(None, description="replaces the log when given")


class TokensBody(BaseModel):
    tokens: list[str]


class SyntheticBody(BaseModel):
    count: int = Field(ge=0, description="synthetic old pipelines (0 removes them)")


class HookBody(BaseModel):
    token: str | None = Field(None, description="X-Gitlab-Token (the webhook secret); omitted when null")
    webhook_uuid: str | None = Field(None, description="default: a UUID fixed per sandbox instance")
    event_uuid: str | None = Field(None, description="give the earlier value to build a resend")
    idempotency_key: str | None = Field(None, description="give the earlier value to build a resend")


class PipelineHookBody(HookBody):
    pipeline_id: int


class JobHookBody(HookBody):
    job_id: int


class EmailBody(BaseModel):
    pipeline_id: int
    status: Literal["failed", "success", "fixed"] | None = Field(
        None, description="default: failed for a failed pipeline, else success"
    )
    to: str | None = Field(None, description="default: the pipeline user's address")
    host: str = Field(
        DEFAULT_EMAIL_HOST, description="mail host: From gitlab@HOST, Reply-To noreply@HOST, List-Id suffix"
    )


def _control_project(state: GitLabState, project_id: str) -> Project:
    project = state.project(unquote(project_id))
    if project is None:
        raise HTTPException(404, f"no project {project_id!r}")
    return project


def _trace(
    body: TraceBody, job: JobBody | JobStatusBody, project: Project, commit: Commit, ref: str, start: float
) -> Trace | None:
    """The state's trace for a control body: text, a file, or a lazily generated log."""
    if body is None:
        return None
    if isinstance(body, str):
        return TextTrace(body.encode())
    if isinstance(body, FileTraceBody):
        path = Path(body.trace_from_file)
        if not path.is_file():
            raise HTTPException(400, f"trace_from_file: no file {path}")
        return FileTrace(path)
    if body.binary:
        return GeneratedTrace(body.generate_bytes, binary=True)
    return generated_text_trace(
        body.generate_bytes, failed=job.status == "failed", project=project, sha=commit.sha, ref=ref, start=start
    )


@control.post("/projects")
def add_project(request: Request, body: ProjectBody) -> dict[str, Any]:
    """Add a project (REST ``GET /projects/:id`` shape back); 409 when the id or path is taken."""
    state = gitlab_state(request)
    with state.lock:
        try:
            project = state.add_project(
                body.name, body.namespace_path, body.path, body.id, body.default_branch, body.description
            )
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from exc
        project.archived = body.archived
        return project_json(project, links_for(request), [])


@control.post("/projects/{project_id:path}/pipelines")
def add_pipeline(request: Request, project_id: str, body: PipelineBody) -> dict[str, Any]:
    """Add a pipeline with jobs; answers the REST pipeline plus ``jobs`` (builds and bridges)."""
    state, links = gitlab_state(request), links_for(request)
    with state.lock:
        project = _control_project(state, project_id)
        user = state.users.get(body.author)
        if user is None:
            raise HTTPException(400, f"unknown author {body.author!r}; known: {sorted(state.users)}")
        ref = body.ref or project.default_branch
        start = body.created_at if body.created_at is not None else state.now()
        commit = state.new_commit(project, body.message, user, start - 60)
        specs = [
            JobSpec(
                name=j.name,
                stage=j.stage,
                status=j.status,
                failure_reason=j.failure_reason,
                allow_failure=j.allow_failure,
                bridge=j.bridge,
                trace=_trace(j.trace, j, project, commit, ref, start),
                tests=tuple(TestCase(**t.model_dump()) for t in j.tests),
                coverage=j.coverage,
                duration=j.duration,
                queued=j.queued,
                environment=j.environment,
            )
            for j in body.jobs
        ]
        pipeline = state.add_pipeline(
            project,
            ref,
            specs,
            commit=commit,
            user=user,
            source=body.source,
            created_at=body.created_at,
            tag=body.tag,
            name=body.name,
            empty_status=body.status,
        )
        jobs = [bridge_json(j, state, links) if j.bridge else job_json(j, links) for j in pipeline.jobs]
        return {**pipeline_json(pipeline, links), "jobs": jobs}


def _control_job(state: GitLabState, job_id: int) -> Job:
    job = state.jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return job


@control.post("/jobs/{job_id}/status")
def set_job_status(request: Request, job_id: int, body: JobStatusBody) -> dict[str, Any]:
    """Move a job to a status now (e.g. finish a retried job); optionally replace its log."""
    state, links = gitlab_state(request), links_for(request)
    with state.lock:
        job = _control_job(state, job_id)
        pipeline = job.pipeline
        trace = _trace(body.trace, body, pipeline.project, pipeline.commit, pipeline.ref, state.now())
        state.finish_job(job, body.status, body.failure_reason, trace)
        return bridge_json(job, state, links) if job.bridge else job_json(job, links)


@control.delete("/jobs/{job_id}")
def delete_job(request: Request, job_id: int) -> dict[str, int]:
    """Remove a job: its REST routes (job, trace, retry) answer 404 from now on."""
    state = gitlab_state(request)
    with state.lock:
        state.delete_job(_control_job(state, job_id))
    return {"deleted": job_id}


class RunnerBody(BaseModel):
    queue_s: float = 5  # from the retry (or the end of the stage before) until the job starts
    duration_s: float = 60  # how long each job runs
    status: Literal["success", "failed"] = "success"  # how the jobs end


@control.post("/runner")
def set_runner(request: Request, body: RunnerBody) -> dict[str, Any]:
    """A simulated runner for the jobs the API creates from now on (``POST /jobs/:id/retry``, ``POST
    /pipelines/:id/retry``): each starts ``queue_s`` after it is created (pipeline retries: stage after
    stage) and ends ``duration_s`` later with ``status``, on the sandbox clock. Without it they stay ``pending``."""
    state = gitlab_state(request)
    with state.lock:
        state.runner = body.model_dump()
        return dict(state.runner)


@control.delete("/runner")
def clear_runner(request: Request) -> dict[str, Any]:
    state = gitlab_state(request)
    with state.lock:
        state.runner = None
    return {}


@control.put("/tokens")
def set_tokens(request: Request, body: TokensBody) -> dict[str, list[str]]:
    """Replace the set of valid API tokens (default ``glpat-sandbox-token``)."""
    state = gitlab_state(request)
    with state.lock:
        state.tokens = set(body.tokens)
        return {"tokens": sorted(state.tokens)}


@control.post("/projects/{project_id:path}/synthetic-pipelines")
def set_synthetic_pipelines(request: Request, project_id: str, body: SyntheticBody) -> dict[str, Any]:
    """Give a project ``count`` extra old pipelines that cost nothing until listed (for the
    >10,000-records paging rule); they are scheduled ``success`` runs without jobs."""
    state = gitlab_state(request)
    with state.lock:
        project = _control_project(state, project_id)
        try:
            block = state.set_synthetic(project, body.count)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
        real = len(state.project_pipelines[project.id])
        ids = (
            {"first_id": block.first_id, "last_id": block.pipeline_id(0)}
            if block
            else {"first_id": None, "last_id": None}
        )
        return {"project_id": project.id, "count": body.count, "total": real + body.count, **ids}


@control.get("/scenarios")
def scenarios(request: Request) -> dict[str, Any]:
    """The seeded scenarios (see ``state._Seeder``) with their pipeline and failed-job ids."""
    return gitlab_state(request).scenarios


@control.get("/history")
def history(request: Request) -> dict[str, Any]:
    """The seeded CI history (see ``history.py``): its group, projects, days and the ids and times of
    its scenarios (flaky retries, red streaks, child pipelines, timeout, deployments, rollback)."""
    return gitlab_state(request).history


def _webhook_uuid(instance: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{instance}/hooks/1"))


@control.post("/hooks/pipeline")
def build_pipeline_hook(request: Request, body: PipelineHookBody) -> dict[str, Any]:
    """The ``Pipeline Hook`` delivery GitLab would send now: ``{"headers": {...}, "body": {...}}``."""
    state, links = gitlab_state(request), links_for(request)
    with state.lock:
        pipeline = state.pipelines.get(body.pipeline_id)
        if pipeline is None:
            raise HTTPException(404, f"no pipeline {body.pipeline_id}")
        payload = pipeline_hook(pipeline, links)
    headers = hook_headers(
        "Pipeline Hook",
        body.token,
        links.base,
        body.webhook_uuid or _webhook_uuid(links.base),
        body.event_uuid,
        body.idempotency_key,
    )
    return {"headers": headers, "body": payload}


@control.post("/hooks/job")
def build_job_hook(request: Request, body: JobHookBody) -> dict[str, Any]:
    """The ``Job Hook`` delivery GitLab would send now: ``{"headers": {...}, "body": {...}}``."""
    state, links = gitlab_state(request), links_for(request)
    with state.lock:
        job = _control_job(state, body.job_id)
        payload = job_hook(job, links)
    headers = hook_headers(
        "Job Hook",
        body.token,
        links.base,
        body.webhook_uuid or _webhook_uuid(links.base),
        body.event_uuid,
        body.idempotency_key,
    )
    return {"headers": headers, "body": payload}


@control.post("/emails/pipeline")
def build_pipeline_email(request: Request, body: EmailBody) -> dict[str, str]:
    """The pipeline notification e-mail as RFC 5322 text: ``{"eml": "..."}``."""
    state, links = gitlab_state(request), links_for(request)
    with state.lock:
        pipeline = state.pipelines.get(body.pipeline_id)
        if pipeline is None:
            raise HTTPException(404, f"no pipeline {body.pipeline_id}")
        kind = body.status or ("failed" if pipeline.status == "failed" else "success")
        raw = pipeline_email(pipeline, kind, links, host=body.host, to=body.to or pipeline.user.email, now=state.now())
    return {"eml": raw.decode("ascii")}


class ImapTarget(BaseModel):
    host: str
    port: int = Field(ge=1, le=65535)
    user: str
    password: str
    folder: str = Field("INBOX", description="created when missing; ASCII names only")
    ssl: bool = False


class DeliverBody(EmailBody):
    imap: ImapTarget


def _imap_quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _imap_append(target: ImapTarget, raw: bytes, when: float) -> None:
    """APPEND ``raw`` to ``target.folder`` (CREATE first when it does not exist)."""
    cls = imaplib.IMAP4_SSL if target.ssl else imaplib.IMAP4
    conn = cls(target.host, target.port, timeout=15)
    try:
        conn.login(target.user, target.password)
        folder = _imap_quote(target.folder)
        typ, found = conn.list('""', folder)
        if typ != "OK" or not [f for f in found if f]:
            typ, data = conn.create(folder)
            if typ != "OK":
                raise imaplib.IMAP4.error(f"CREATE {target.folder!r}: {data!r}")
        typ, data = conn.append(folder, None, imaplib.Time2Internaldate(when), raw)
        if typ != "OK":
            raise imaplib.IMAP4.error(f"APPEND to {target.folder!r}: {data!r}")
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            conn.logout()


@control.post("/emails/deliver")
def deliver_pipeline_email(request: Request, body: DeliverBody) -> dict[str, Any]:
    """Build the e-mail exactly like ``/emails/pipeline`` and APPEND it into ``imap.folder`` of that
    mailbox: ``{"message_id": <Message-ID without <>>, "folder": ..., "bytes": n}``; 502 when IMAP fails."""
    if not body.imap.folder or not body.imap.folder.isascii():
        raise HTTPException(400, f"imap.folder must be a non-empty ASCII name, got {body.imap.folder!r}")
    raw = build_pipeline_email(request, body)["eml"].encode("ascii")
    message_id = " ".join(str(BytesHeaderParser().parsebytes(raw)["Message-ID"]).split()).strip("<>")
    try:
        _imap_append(body.imap, raw, gitlab_state(request).now())
    except (imaplib.IMAP4.error, OSError) as exc:  # the password is never part of these messages
        raise HTTPException(
            502, f"IMAP delivery to {body.imap.host}:{body.imap.port} as {body.imap.user!r} failed: {exc}"
        ) from exc
    return {"message_id": message_id, "folder": body.imap.folder, "bytes": len(raw)}
