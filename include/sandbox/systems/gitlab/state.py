"""State of the GitLab sandbox: projects, pipelines, jobs, job logs (traces) and their seed.

The model is deliberately small but keeps GitLab's semantics where clients depend on them:

* pipeline and job ids are global and grow with creation time; ``iid`` counts per project (the CI
  history of ``history.py`` is seeded after the triage scenarios: its ids are higher, its pipelines older);
* a pipeline's status, timing and ``detailed_status`` are derived from its *latest* jobs (retried
  attempts stay listed with ``retried=True`` but no longer count);
* a failed job with ``allow_failure`` leaves its pipeline ``success`` ("passed with warnings");
* a pipeline's ``duration`` is the union of its latest builds' running periods (a retry two days
  later adds its run time, not the wait); a job's ``queued_duration`` runs from the moment its
  stage's turn came (``queued_at``), not from the pipeline's creation;
* a job with an ``environment`` (a deploy job) has a deployment created with it, whose status
  follows the job's (a skipped deploy job leaves a ``skipped`` deployment; a retry deploys again);
* traces are bytes, a file, or generated lazily to an exact size, always read as an iterator of
  chunks so a 60 MB log is never held in memory;
* a project can carry a *synthetic* block of old pipelines (only counted and materialised one page
  at a time) so the ">10,000 records" paging rule can be exercised cheaply.

Everything here is plain Python; ``api.py`` turns it into HTTP.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import random
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from include.sandbox.systems._seed import GITLAB_USER_ID, GITLAB_USERNAME, gitlab_layout, slugify
from include.sandbox.systems.gitlab.issues import IssueBook

DEFAULT_TOKEN = "glpat-sandbox-token"
GITLAB_VERSION = "18.4.1"
RUNNER_VERSION = "18.4.0"

#: Ids of real pipelines/jobs start high (GitLab.com-like); synthetic pipelines live below them.
FIRST_PIPELINE_ID = 1_500_000_001
FIRST_SYNTHETIC_PIPELINE_ID = 100_000_001
FIRST_JOB_ID = 9_000_000_001
FIRST_ENVIRONMENT_ID = 15_000_001
FIRST_DEPLOYMENT_ID = 700_000_001
SYNTHETIC_SPACING_S = 600  # one synthetic pipeline every 10 minutes, going back in time

ACTIVE_STATUSES = frozenset(
    {
        "created",
        "waiting_for_resource",
        "preparing",
        "waiting_for_callback",
        "pending",
        "running",
        "canceling",
        "scheduled",
    }
)
COMPLETED_STATUSES = frozenset({"success", "failed", "canceled", "skipped"})
JOB_STATUSES = frozenset({*ACTIVE_STATUSES, *COMPLETED_STATUSES, "manual"})
#: Values of the ``failure_reason`` enum (gitlab.md §1.3) accepted by the controls.
FAILURE_REASONS = frozenset(
    [
        "unknown_failure",
        "script_failure",
        "api_failure",
        "stuck_or_timeout_failure",
        "job_execution_timeout",
        "runner_system_failure",
        "runner_unsupported",
        "no_matching_runner",
        "runner_configuration_error",
        "runner_external_dependency_failure",
        "runner_interrupted",
        "missing_dependency_failure",
        "stale_schedule",
        "archived_failure",
        "unmet_prerequisites",
        "scheduler_failure",
        "data_integrity_failure",
        "forward_deployment_failure",
        "environment_creation_failure",
        "deployment_rejected",
        "failed_outdated_deployment_job",
        "protected_environment_failure",
        "user_blocked",
        "project_deleted",
        "ci_quota_exceeded",
        "pipeline_loop_detected",
        "trace_size_exceeded",
        "builds_disabled",
        "ip_restriction_failure",
        "job_execution_server_timeout",
        "stuck_pending_with_matching_runners",
        "stuck_pending_no_matching_runners",
        "no_updates_running",
        "no_updates_canceling",
        "server_timeout_running",
        "server_timeout_canceling",
        "insufficient_bridge_permissions",
        "downstream_bridge_project_not_found",
        "invalid_bridge_trigger",
        "upstream_bridge_project_not_found",
        "insufficient_upstream_permissions",
        "bridge_pipeline_is_child_pipeline",
        "downstream_pipeline_creation_failed",
        "reached_max_descendant_pipelines_depth",
        "reached_max_pipeline_hierarchy_size",
        "reached_downstream_pipeline_trigger_rate_limit",
        "downstream_project_trigger_resolved_to_empty",
        "secrets_provider_not_found",
        "duo_workflow_not_allowed",
        "job_router_failure",
        "job_token_expired",
        "id_token_burned_project_path",
    ]
)


def iso(ts: float | None) -> str | None:
    """REST timestamp: ISO-8601 UTC with milliseconds and ``Z`` (``2024-05-01T12:00:00.000Z``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def hook_time(ts: float | None) -> str | None:
    """Webhook timestamp: ``2016-08-12 15:23:28 UTC`` (not ISO-8601)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- traces ---------------------------------------------------------------------------------------
CHUNK_SIZE = 64 * 1024


class Trace(Protocol):
    """A job log, read as chunks (never as one string)."""

    def available(self) -> bool: ...

    def chunks(self) -> Iterator[bytes]: ...


@dataclass(frozen=True)
class TextTrace:
    """A log held as bytes (seeded logs and the ones posted as text)."""

    data: bytes

    def available(self) -> bool:
        return True

    def chunks(self) -> Iterator[bytes]:
        for start in range(0, len(self.data), CHUNK_SIZE):
            yield self.data[start : start + CHUNK_SIZE]


@dataclass(frozen=True)
class FileTrace:
    """A log read from a file on every request (``{"trace_from_file": path}``)."""

    path: Path

    def available(self) -> bool:
        return self.path.is_file()

    def chunks(self) -> Iterator[bytes]:
        with self.path.open("rb") as fh:
            while chunk := fh.read(CHUNK_SIZE):
                yield chunk


@dataclass(frozen=True)
class GeneratedTrace:
    """A log of exactly ``size`` bytes produced chunk by chunk on every read.

    Text logs are ``head`` + repeated runner-like filler lines + ``tail`` (so they still start and end
    like a real job log); binary logs are a repeated block of pseudo-random bytes with NULs and
    invalid UTF-8.
    """

    size: int
    binary: bool = False
    head: bytes = b""
    tail: bytes = b""

    def available(self) -> bool:
        return True

    def chunks(self) -> Iterator[bytes]:
        if self.binary:
            yield from _repeat(_BINARY_BLOCK, self.size)
            return
        if len(self.head) + len(self.tail) >= self.size:
            yield (self.head + self.tail)[: self.size]
            return
        yield self.head
        yield from _repeat(_FILLER_BLOCK, self.size - len(self.head) - len(self.tail))
        yield self.tail


def _repeat(block: bytes, size: int) -> Iterator[bytes]:
    """``size`` bytes of ``block`` repeated, in chunks of at most ``len(block)``."""
    full, rest = divmod(size, len(block))
    for _ in range(full):
        yield block
    if rest:
        yield block[:rest]


def _filler_block() -> bytes:
    lines: list[str] = []
    size = 0
    n = 0
    while size < CHUNK_SIZE - 200:
        n += 1
        line = f"\x1b[0;m[{n:05d}] compiling module pkg/module_{n % 97:02d}/file_{n:05d}.go ... \x1b[32mok\x1b[0;m\n"
        lines.append(line)
        size += len(line)
    return "".join(lines).encode()


_FILLER_BLOCK = _filler_block()
_BINARY_BLOCK = random.Random("gitlab-binary-trace").randbytes(CHUNK_SIZE - 1) + b"\x00"


# -- model ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class User:
    id: int
    username: str
    name: str
    email: str


@dataclass(frozen=True)
class Namespace:
    """A group (possibly nested) or a user's personal namespace."""

    id: int
    name: str
    path: str
    full_path: str
    kind: str  # "group" | "user"
    parent_id: int | None
    full_name: str  # "Acme / Platform / Backend"


@dataclass(frozen=True)
class SyntheticBlock:
    """``count`` old scheduled pipelines of one project that exist only as arithmetic.

    Index 0 is the newest (largest id, ``newest_at``); each older one is ``SYNTHETIC_SPACING_S``
    earlier. They have no jobs and report ``success``.
    """

    first_id: int
    count: int
    newest_at: float
    sha: str

    def pipeline_id(self, k: int) -> int:
        return self.first_id + self.count - 1 - k

    def created_at(self, k: int) -> float:
        return self.newest_at - k * SYNTHETIC_SPACING_S

    def index_of(self, pipeline_id: int) -> int | None:
        k = self.first_id + self.count - 1 - pipeline_id
        return k if 0 <= k < self.count else None

    def indexes_between(self, after: float | None, before: float | None) -> range:
        """Indexes whose time is inside [after, before] (both ends included, as GitLab's
        ``updated_after``/``updated_before``), newest first."""
        ks = range(self.count)
        lo = 0 if before is None else bisect.bisect_left(ks, -before, key=lambda k: -self.created_at(k))
        hi = self.count if after is None else bisect.bisect_right(ks, -after, key=lambda k: -self.created_at(k))
        return range(lo, max(lo, hi))


@dataclass
class Project:
    id: int
    name: str
    path: str
    namespace: Namespace
    created_at: float
    default_branch: str = "main"
    description: str = ""
    synthetic: SyntheticBlock | None = None
    archived: bool = False

    @property
    def path_with_namespace(self) -> str:
        return f"{self.namespace.full_path}/{self.path}"

    @property
    def name_with_namespace(self) -> str:
        return f"{self.namespace.full_name} / {self.name}"


@dataclass(frozen=True)
class Commit:
    sha: str
    message: str
    author: User
    created_at: float

    @property
    def title(self) -> str:
        return self.message.split("\n", 1)[0]

    @property
    def short_id(self) -> str:
        return self.sha[:8]


@dataclass(frozen=True)
class TestCase:
    name: str
    classname: str
    status: str  # success | failed | skipped | error
    execution_time: float
    file: str | None = None
    system_output: str | None = None
    stack_trace: str | None = None


@dataclass(eq=False)
class Job:
    """A build job, or a trigger job (``bridge``) that starts a downstream pipeline."""

    id: int
    pipeline: Pipeline = field(repr=False)
    name: str
    stage: str
    status: str
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    failure_reason: str | None = None
    allow_failure: bool = False
    bridge: bool = False
    retried: bool = False
    retries_count: int = 0  # 0 = first attempt, 1 = first retry (webhook ``retries_count``)
    trace: Trace | None = field(default=None, repr=False)
    tests: list[TestCase] = field(default_factory=list, repr=False)
    coverage: float | None = None
    downstream_pipeline_id: int | None = None
    #: when the job became ``pending`` (its stage's turn); all jobs are *created* with their pipeline
    queued_at: float | None = None
    #: ``environment:`` of a deploy job: its deployment is created with the job (``state.deployments``)
    environment: str | None = None

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round(self.finished_at - self.started_at, 3)

    @property
    def queued_duration(self) -> float | None:
        """Time spent pending (``started_at - queued_at``, GitLab's ``CommitStatus#queued_duration``)."""
        if self.started_at is None:
            return None
        queued = self.queued_at if self.queued_at is not None else self.created_at
        return round(self.started_at - queued, 3)

    @property
    def effective_status(self) -> str:
        """Status as the pipeline sees it: an allowed failure counts as success."""
        return "success" if self.status == "failed" and self.allow_failure else self.status


@dataclass(frozen=True)
class Runner:
    id: int
    description: str
    tags: tuple[str, ...] = ("docker", "linux")


def runner_number(project_id: int) -> int:
    """Which of the three shared runners runs a project's jobs (their logs name it too)."""
    return project_id % 3 + 1


def runner_of(job: Job) -> Runner | None:
    """The shared runner that picked ``job`` up."""
    if job.bridge or job.started_at is None:
        return None
    n = runner_number(job.pipeline.project.id)
    return Runner(12270 + n, f"sandbox-runner-{n}")


@dataclass(frozen=True)
class Links:
    """Web URLs of the sandbox instance; ``base`` is e.g. ``http://127.0.0.1:8900/gitlab``."""

    base: str

    def project(self, project: Project) -> str:
        return f"{self.base}/{project.path_with_namespace}"

    def pipeline(self, pipeline: Pipeline) -> str:
        return f"{self.project(pipeline.project)}/-/pipelines/{pipeline.id}"

    def job(self, job: Job) -> str:
        return f"{self.project(job.pipeline.project)}/-/jobs/{job.id}"

    def commit(self, project: Project, sha: str) -> str:
        return f"{self.project(project)}/-/commit/{sha}"

    def commits(self, project: Project, ref: str) -> str:
        return f"{self.project(project)}/-/commits/{ref}"

    def user(self, user: User) -> str:
        return f"{self.base}/{user.username}"

    def avatar(self, user: User) -> str:
        return f"{self.base}/uploads/-/system/user/avatar/{user.id}/avatar.png"


#: REST ``detailed_status`` text and label per pipeline status.
_DETAILED = {
    "success": ("Passed", "passed"),
    "failed": ("Failed", "failed"),
    "running": ("Running", "running"),
    "pending": ("Pending", "pending"),
    "canceled": ("Canceled", "canceled"),
    "canceling": ("Canceling", "canceling"),
    "skipped": ("Skipped", "skipped"),
    "created": ("Created", "created"),
    "manual": ("Blocked", "waiting for manual action"),
    "scheduled": ("Scheduled", "scheduled"),
    "preparing": ("Preparing", "preparing"),
    "waiting_for_resource": ("Waiting", "waiting for resource"),
    "waiting_for_callback": ("Waiting", "waiting for callback"),
}


def composite_status(statuses: set[str]) -> str:
    """GitLab's ``Ci::Status::Composite`` reduced to the cases the sandbox produces."""

    def only(*names: str) -> bool:
        return statuses <= set(names)

    if only("skipped"):
        return "skipped"
    if only("success", "skipped"):
        return "success"
    if only("created"):
        return "created"
    if only("canceled", "success", "skipped"):
        return "canceled"
    if only("pending", "created", "skipped"):
        return "pending"
    if statuses & {"running", "pending", "preparing", "canceling"}:
        return "running"
    for status in ("waiting_for_resource", "waiting_for_callback", "manual", "scheduled"):
        if status in statuses:
            return status
    return "running" if "created" in statuses else "failed"


@dataclass(eq=False)
class Pipeline:
    id: int
    iid: int
    project: Project = field(repr=False)
    ref: str
    commit: Commit
    before_sha: str
    source: str  # push | schedule | web | api | merge_request_event | parent_pipeline | ...
    user: User
    created_at: float
    tag: bool = False
    name: str | None = None
    jobs: list[Job] = field(default_factory=list, repr=False)  # every attempt, in creation order
    variables: list[dict[str, str]] = field(default_factory=list)
    empty_status: str = "created"  # reported while the pipeline has no jobs

    def latest_jobs(self, bridges: bool | None = False) -> list[Job]:
        """Latest attempts; ``bridges``: False = builds only, True = bridges only, None = both."""
        return [j for j in self.jobs if not j.retried and (bridges is None or j.bridge == bridges)]

    @property
    def status(self) -> str:
        latest = self.latest_jobs(bridges=None)
        return composite_status({j.effective_status for j in latest}) if latest else self.empty_status

    @property
    def has_warnings(self) -> bool:
        return any(j.status == "failed" and j.allow_failure for j in self.latest_jobs(bridges=None))

    @property
    def detailed_label(self) -> str:
        if self.status == "success" and self.has_warnings:
            return "passed with warnings"
        return _DETAILED.get(self.status, (self.status, self.status))[1]

    def detailed_status(self) -> dict[str, object]:
        """The REST ``detailed_status`` object."""
        status = self.status
        warn = status == "success" and self.has_warnings
        text, label = ("Warning", "passed with warnings") if warn else _DETAILED.get(status, (status, status))
        group = "success-with-warnings" if warn else status.replace("_", "-")
        icon = "status_warning" if warn else f"status_{status}"
        return {
            "icon": icon,
            "text": text,
            "label": label,
            "group": group,
            "tooltip": label,
            "has_details": True,
            "details_path": f"/{self.project.path_with_namespace}/-/pipelines/{self.id}",
            "illustration": None,
            "favicon": f"/assets/ci_favicons/favicon_{icon}.png",
        }

    @property
    def stages(self) -> list[str]:
        return list(dict.fromkeys(j.stage for j in self.jobs))

    @property
    def started_at(self) -> float | None:
        starts = [j.started_at for j in self.latest_jobs(None) if j.started_at is not None]
        return min(starts) if starts else None

    @property
    def finished_at(self) -> float | None:
        if self.status not in COMPLETED_STATUSES:
            return None
        ends = [j.finished_at for j in self.latest_jobs(None) if j.finished_at is not None]
        return max(ends) if ends else None

    @property
    def duration(self) -> int | None:
        """Running time of a finished pipeline: the union of its latest builds' running periods
        (queue time, gaps and retried attempts excluded; ``Gitlab::Ci::Pipeline::Duration``)."""
        if self.started_at is None or self.finished_at is None:
            return None
        periods = sorted(
            (j.started_at, j.finished_at)
            for j in self.latest_jobs()
            if j.status in ("success", "failed", "running", "canceled")
            and j.started_at is not None
            and j.finished_at is not None
        )
        total, end = 0.0, float("-inf")
        for start, finish in periods:
            if start > end:
                total += finish - start
            elif finish > end:
                total += finish - end
            end = max(end, finish)
        return int(total)

    @property
    def queued_duration(self) -> int | None:
        """``started_at - created_at`` in whole seconds; GitLab sends null for 0."""
        if self.started_at is None:
            return None
        return int(self.started_at - self.created_at) or None

    @property
    def updated_at(self) -> float:
        times = [self.created_at]
        for j in self.jobs:
            times += [t for t in (j.created_at, j.started_at, j.finished_at) if t is not None]
        return max(times)


#: ``Deployment.statuses`` (GitLab's deployment status enum).
DEPLOYMENT_STATUSES = ("created", "running", "success", "failed", "canceled", "skipped", "blocked")
#: Deployment statuses that set ``finished_at`` (``Deployment::FINISHED_STATUSES``).
DEPLOYMENT_FINISHED = frozenset({"success", "failed", "canceled"})


@dataclass(frozen=True)
class Environment:
    """A project's environment (``production``, ``staging`` ...), created on its first deploy job."""

    id: int
    project_id: int
    name: str
    created_at: float
    external_url: str | None = None

    @property
    def slug(self) -> str:
        """GitLab's environment slug: lower-case letters, digits and ``-``, at most 24 characters."""
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower())[:24].strip("-") or "env"


@dataclass(eq=False)
class Deployment:
    """A deployment of a deploy job (its ``deployable``); its status follows the job's, as GitLab's
    ``Deployment#sync_status_with`` does (``manual`` -> ``blocked``; pending-like -> ``created``)."""

    id: int
    iid: int
    project: Project = field(repr=False)
    environment: Environment
    job: Job = field(repr=False)
    created_at: float

    @property
    def ref(self) -> str:
        return self.job.pipeline.ref

    @property
    def sha(self) -> str:
        return self.job.pipeline.commit.sha

    @property
    def user(self) -> User:
        return self.job.pipeline.user

    @property
    def status(self) -> str:
        status = self.job.status
        if status == "manual":
            return "blocked"
        if status == "canceling":
            return "running"
        return status if status in DEPLOYMENT_STATUSES else "created"

    @property
    def finished_at(self) -> float | None:
        return self.job.finished_at if self.status in DEPLOYMENT_FINISHED else None

    @property
    def updated_at(self) -> float:
        """The last status change: the job's start or finish; for a skipped job, when its pipeline
        stopped (the stage before it failed)."""
        if self.status == "skipped":
            return max(self.created_at, self.job.pipeline.finished_at or self.created_at)
        return max(t for t in (self.created_at, self.job.started_at, self.job.finished_at) if t is not None)


@dataclass(frozen=True)
class JobSpec:
    """A job to create: ``duration``/``queued`` lay it out in time inside its stage."""

    name: str
    stage: str
    status: str = "success"
    failure_reason: str | None = None
    allow_failure: bool = False
    bridge: bool = False
    trace: Trace | None = None
    tests: tuple[TestCase, ...] = ()
    coverage: float | None = None
    duration: float = 60.0
    queued: float = 4.0
    environment: str | None = None


class SyntheticPipelines(Sequence[Pipeline]):
    """Synthetic pipelines of a project for a range of indexes, materialised only when read."""

    def __init__(self, state: GitLabState, project: Project, indexes: range) -> None:
        self.state, self.project, self.indexes = state, project, indexes

    def __len__(self) -> int:
        return len(self.indexes)

    def __getitem__(self, i):  # type: ignore[no-untyped-def]  # Sequence's int/slice overloads
        if isinstance(i, slice):
            return [self.state.synthetic_pipeline(self.project, k) for k in self.indexes[i]]
        return self.state.synthetic_pipeline(self.project, self.indexes[i])


class GitLabState:
    """All GitLab sandbox data of one sandbox run (guard mutations with ``lock``)."""

    def __init__(self, seed: int, now: Callable[[], float]) -> None:
        self.seed = seed
        self.now = now
        self.lock = threading.RLock()
        self.tokens: set[str] = {DEFAULT_TOKEN}
        self.users: dict[str, User] = {}
        self.namespaces: dict[str, Namespace] = {}  # lower-case full path -> namespace
        self.projects: dict[int, Project] = {}
        self.pipelines: dict[int, Pipeline] = {}
        self.project_pipelines: dict[int, list[Pipeline]] = {}
        self.jobs: dict[int, Job] = {}
        self.environments: dict[int, dict[str, Environment]] = {}  # project id -> name -> environment
        self.deployments: dict[int, list[Deployment]] = {}  # project id -> deployments, oldest first
        #: seeded scenario name -> ids of its pipelines and failed jobs (``GET /_sandbox/gitlab/scenarios``)
        self.scenarios: dict[str, dict[str, object]] = {}
        #: facts of the seeded CI history (``history.py``; ``GET /_sandbox/gitlab/history``)
        self.history: dict[str, object] = {}
        #: issues and their notes per project (``issues.py``; issue 12)
        self.issues = IssueBook()
        self._pipeline_ids = itertools.count(FIRST_PIPELINE_ID)
        self._synthetic_ids = FIRST_SYNTHETIC_PIPELINE_ID
        self._job_ids = itertools.count(FIRST_JOB_ID)
        self._group_ids = itertools.count(900)
        self._commits = itertools.count(1)
        self._environment_ids = itertools.count(FIRST_ENVIRONMENT_ID)
        self._deployment_ids = itertools.count(FIRST_DEPLOYMENT_ID)
        #: a simulated runner for jobs the API creates (retries): ``{"queue_s", "duration_s", "status"}``, or
        #: None (the default: they stay ``pending``, as with no runner); set by ``POST /_sandbox/gitlab/runner``
        self.runner: dict[str, float | str] | None = None
        self._planned: dict[int, tuple[float, float, str]] = {}  # job id -> (start, finish, final status)

    # -- lookups ------------------------------------------------------------------------------
    def project(self, ref: str) -> Project | None:
        """By numeric id or by full path (case-insensitive, as GitLab routes)."""
        if ref.isdigit():
            return self.projects.get(int(ref))
        ref = ref.lower()
        return next((p for p in self.projects.values() if p.path_with_namespace.lower() == ref), None)

    def pipeline(self, project: Project, pipeline_id: int) -> Pipeline | None:
        found = self.pipelines.get(pipeline_id)
        if found is not None:
            return found if found.project is project else None
        k = project.synthetic.index_of(pipeline_id) if project.synthetic else None
        return None if k is None else self.synthetic_pipeline(project, k)

    def job(self, project: Project, job_id: int, bridge: bool = False) -> Job | None:
        found = self.jobs.get(job_id)
        return found if found is not None and found.pipeline.project is project and found.bridge == bridge else None

    def synthetic_pipeline(self, project: Project, k: int) -> Pipeline:
        block = project.synthetic
        assert block is not None
        at = block.created_at(k)
        bot = self.users[GITLAB_USERNAME]
        commit = Commit(block.sha, "Nightly dependency refresh\n", bot, block.newest_at)
        return Pipeline(
            id=block.pipeline_id(k),
            iid=block.count - k,
            project=project,
            ref=project.default_branch,
            commit=commit,
            before_sha=block.sha,
            source="schedule",
            user=bot,
            created_at=at,
            name="Nightly",
            empty_status="success",
        )

    # -- creation -----------------------------------------------------------------------------
    def add_namespace(self, full_path: str) -> Namespace:
        """The group at ``full_path``, created with any missing parents."""
        known = self.namespaces.get(full_path.lower())
        if known is not None:
            return known
        parent_path, _, path = full_path.rpartition("/")
        parent = self.add_namespace(parent_path) if parent_path else None
        ns = Namespace(
            id=next(self._group_ids),
            name=path,
            path=path,
            full_path=full_path,
            kind="group",
            parent_id=parent.id if parent else None,
            full_name=f"{parent.full_name} / {path}" if parent else path,
        )
        self.namespaces[full_path.lower()] = ns
        return ns

    def add_project(
        self,
        name: str,
        namespace_path: str,
        path: str | None = None,
        project_id: int | None = None,
        default_branch: str = "main",
        description: str = "",
    ) -> Project:
        """Add a project; raises ``ValueError`` when its id or path is taken."""
        pid = project_id if project_id is not None else max(self.projects, default=1000) + 1
        project = Project(
            pid,
            name,
            path or slugify(name),
            self.add_namespace(namespace_path),
            self.now() - 400 * 86400,
            default_branch,
            description,
        )
        if pid in self.projects or self.project(project.path_with_namespace) is not None:
            raise ValueError(f"project {pid} / {project.path_with_namespace!r} already exists")
        self.projects[pid] = project
        self.project_pipelines[pid] = []
        return project

    def new_commit(self, project: Project, message: str, author: User, at: float) -> Commit:
        n = next(self._commits)
        sha = hashlib.sha1(f"gitlab-{self.seed}-{project.id}-{n}".encode()).hexdigest()
        return Commit(sha, message if message.endswith("\n") else message + "\n", author, at)

    def add_pipeline(
        self,
        project: Project,
        ref: str,
        jobs: Sequence[JobSpec],
        *,
        commit: Commit,
        user: User,
        source: str = "push",
        created_at: float | None = None,
        tag: bool = False,
        name: str | None = None,
        empty_status: str = "created",
    ) -> Pipeline:
        """Create a pipeline whose jobs run stage after stage from ``created_at``.

        Without ``created_at`` the pipeline is placed so that its last job ends about now.
        """
        stage_spans: dict[str, float] = {}
        for spec in jobs:
            stage_spans[spec.stage] = max(stage_spans.get(spec.stage, 0.0), spec.queued + spec.duration)
        if created_at is None:
            created_at = self.now() - sum(stage_spans.values()) - 1
        same_ref = [p for p in self.project_pipelines[project.id] if p.ref == ref]
        pipeline = Pipeline(
            id=next(self._pipeline_ids),
            iid=len(self.project_pipelines[project.id]) + 1,
            project=project,
            ref=ref,
            commit=commit,
            before_sha=same_ref[-1].commit.sha if same_ref else "0" * 40,
            source=source,
            user=user,
            created_at=created_at,
            tag=tag,
            name=name,
            empty_status=empty_status,
        )
        stage_start = created_at
        for stage, span in stage_spans.items():
            for spec in (s for s in jobs if s.stage == stage):
                self._add_job(pipeline, spec, created_at, stage_start)
            stage_start += span
        self.pipelines[pipeline.id] = pipeline
        self.project_pipelines[project.id].append(pipeline)
        return pipeline

    def _add_job(
        self, pipeline: Pipeline, spec: JobSpec, created_at: float, stage_start: float, retries_count: int = 0
    ) -> Job:
        started = (
            stage_start + spec.queued
            if spec.status not in ("created", "pending", "manual", "skipped", "scheduled")
            else None
        )
        finished = started + spec.duration if started is not None and spec.status in COMPLETED_STATUSES else None
        queued = stage_start if started is not None or spec.status == "pending" else None
        job = Job(
            id=next(self._job_ids),
            pipeline=pipeline,
            name=spec.name,
            stage=spec.stage,
            status=spec.status,
            created_at=created_at,
            started_at=started,
            finished_at=finished,
            failure_reason=(spec.failure_reason or "unknown_failure") if spec.status == "failed" else None,
            allow_failure=spec.allow_failure,
            bridge=spec.bridge,
            retries_count=retries_count,
            trace=spec.trace,
            tests=list(spec.tests),
            coverage=spec.coverage,
            queued_at=queued,
            environment=spec.environment,
        )
        pipeline.jobs.append(job)
        self.jobs[job.id] = job
        if job.environment:
            self._add_deployment(job)
        return job

    def environment(self, project: Project, name: str, at: float, external_url: str | None = None) -> Environment:
        """The project's environment ``name``, created (at ``at``) when it does not exist yet."""
        known = self.environments.setdefault(project.id, {})
        if name not in known:
            known[name] = Environment(next(self._environment_ids), project.id, name, at, external_url)
        return known[name]

    def _add_deployment(self, job: Job) -> Deployment:
        assert job.environment
        project = job.pipeline.project
        deployments = self.deployments.setdefault(project.id, [])
        environment = self.environment(project, job.environment, job.created_at)
        deployment = Deployment(
            next(self._deployment_ids), len(deployments) + 1, project, environment, job, job.created_at
        )
        deployments.append(deployment)
        return deployment

    def set_synthetic(self, project: Project, count: int) -> SyntheticBlock | None:
        """Give ``project`` ``count`` synthetic pipelines, older than every real one (0 removes them)."""
        if count <= 0:
            project.synthetic = None
            return None
        if self._synthetic_ids + count > FIRST_PIPELINE_ID:
            raise ValueError(f"at most {FIRST_PIPELINE_ID - self._synthetic_ids} more synthetic pipelines fit")
        real = self.project_pipelines[project.id]
        newest = min((p.created_at for p in real), default=self.now()) - SYNTHETIC_SPACING_S
        sha = hashlib.sha1(f"gitlab-{self.seed}-{project.id}-synthetic".encode()).hexdigest()
        project.synthetic = SyntheticBlock(self._synthetic_ids, count, newest, sha)
        self._synthetic_ids += count
        return project.synthetic

    # -- changes ------------------------------------------------------------------------------
    def delete_job(self, job: Job) -> None:
        job.pipeline.jobs.remove(job)
        del self.jobs[job.id]

    def retry_job(self, job: Job) -> Job:
        """Mark ``job`` retried and add a new pending attempt (new id, same name and stage)."""
        now = self.now()
        job.retried = True
        spec = JobSpec(
            job.name,
            job.stage,
            status="pending",
            allow_failure=job.allow_failure,
            bridge=job.bridge,
            environment=job.environment,
        )
        new = self._add_job(job.pipeline, spec, now, now, retries_count=job.retries_count + 1)
        if self.runner is not None:
            self._plan(new, now)
        return new

    def add_attempt(
        self,
        job: Job,
        *,
        created_at: float,
        status: str,
        started_at: float | None = None,
        finished_at: float | None = None,
        failure_reason: str | None = None,
        trace: Trace | None = None,
    ) -> Job:
        """A finished (or running) retry of ``job`` with the given times: ``job`` becomes ``retried``,
        the new attempt gets a new id (and, for a deploy job, a new deployment). Used to seed history."""
        job.retried = True
        attempt = Job(
            id=next(self._job_ids),
            pipeline=job.pipeline,
            name=job.name,
            stage=job.stage,
            status=status,
            created_at=created_at,
            started_at=started_at,
            finished_at=finished_at,
            failure_reason=(failure_reason or "unknown_failure") if status == "failed" else None,
            allow_failure=job.allow_failure,
            bridge=job.bridge,
            retries_count=job.retries_count + 1,
            trace=trace,
            tests=list(job.tests),
            coverage=job.coverage,
            queued_at=created_at,
            environment=job.environment,
        )
        job.pipeline.jobs.append(attempt)
        self.jobs[attempt.id] = attempt
        if attempt.environment:
            self._add_deployment(attempt)
        return attempt

    def retry_pipeline(self, pipeline: Pipeline) -> list[Job]:
        """Retry the failed and canceled latest jobs and re-create the skipped ones; the new jobs. With
        a :attr:`runner`, they run stage after stage from now."""
        retryable = [j for j in pipeline.latest_jobs(None) if j.status in ("failed", "canceled")]
        if not retryable:
            return []
        recreated = []
        for job in pipeline.latest_jobs(None):
            if job.status == "skipped":
                job.status = "created"
                recreated.append(job)
        new = [self.retry_job(j) for j in retryable]
        if self.runner is not None:
            cursor = self.now()
            for stage in pipeline.stages:
                jobs = [j for j in [*new, *recreated] if j.stage == stage]
                if jobs:
                    cursor = max(self._plan(j, cursor) for j in jobs)
        return new

    # -- the simulated runner ---------------------------------------------------------------------
    def _plan(self, job: Job, after: float) -> float:
        """Let the runner take ``job`` ``queue_s`` after ``after`` and end it ``duration_s`` later with its
        ``status``; returns the finish time."""
        runner = self.runner or {}
        start = after + float(runner.get("queue_s", 5))
        finish = start + float(runner.get("duration_s", 60))
        self._planned[job.id] = (start, finish, str(runner.get("status", "success")))
        return finish

    def progress(self) -> None:
        """Move the jobs the runner holds along the clock (pending -> running -> their final status);
        called before every project request. A job canceled or changed meanwhile is let go."""
        if not self._planned:
            return
        with self.lock:
            now = self.now()
            for job_id, (start, finish, status) in list(self._planned.items()):
                job = self.jobs.get(job_id)
                if job is None or job.status not in ("created", "pending", "running"):
                    self._planned.pop(job_id, None)
                    continue
                if now >= start and job.status != "running":
                    job.status, job.started_at = "running", start
                    job.queued_at = job.queued_at if job.queued_at is not None else job.created_at
                if now >= finish:
                    job.status, job.finished_at = status, finish
                    job.failure_reason = "script_failure" if status == "failed" else None
                    self._planned.pop(job_id, None)

    def cancel_pipeline(self, pipeline: Pipeline) -> None:
        now = self.now()
        for job in pipeline.latest_jobs(None):
            if job.status in ACTIVE_STATUSES or job.status == "manual":
                job.status = "canceled"
                job.finished_at = now

    def finish_job(self, job: Job, status: str, failure_reason: str | None, trace: Trace | None) -> None:
        """Move a job to ``status`` now (starting it if it never started) and set its log."""
        now = self.now()
        if status not in ("created", "manual", "scheduled") and job.queued_at is None:
            job.queued_at = now
        if status not in ("created", "pending", "manual", "scheduled") and job.started_at is None:
            job.started_at = now
        job.status = status
        job.finished_at = now if status in COMPLETED_STATUSES else None
        job.failure_reason = (failure_reason or "unknown_failure") if status == "failed" else None
        if trace is not None:
            job.trace = trace


# -- job logs -------------------------------------------------------------------------------------
ESC = "\x1b"
RESET = f"{ESC}[0;m"
GREEN = f"{ESC}[32;1m"
CYAN = f"{ESC}[36;1m"
RED = f"{ESC}[31;1m"
YELLOW = f"{ESC}[0;33m"
#: Where the filler of a generated text trace goes (see ``generated_text_trace``).
_FILLER_MARK = "\x00FILLER\x00"


class RunnerLog:
    """Writes a job log the way gitlab-runner does: ANSI colours and collapsible sections.

    As in real raw logs, a ``section_end`` marker has no newline of its own: it prefixes the next
    line (usually the next ``section_start``).
    """

    def __init__(self, start: float) -> None:
        self.t = int(start)
        self._lines: list[str] = []
        self._end_marker = ""

    def line(self, text: str = "") -> None:
        self._lines.append(f"{self._end_marker}{text}\n")
        self._end_marker = ""

    def command(self, command: str, output: str = "") -> None:
        self.line(f"{GREEN}$ {command}{RESET}")
        for text in output.splitlines():
            self.line(text)

    def start_section(self, name: str, header: str, collapsed: bool = False) -> None:
        options = "[collapsed=true]" if collapsed else ""
        self.line(f"{ESC}[0Ksection_start:{self.t}:{name}{options}\r{ESC}[0K{ESC}[0K{CYAN}{header}{RESET}{RESET}")

    def end_section(self, name: str, seconds: float = 1) -> None:
        self.t += max(1, int(seconds))
        self._end_marker = f"{ESC}[0Ksection_end:{self.t}:{name}\r{ESC}[0K"

    def text(self) -> str:
        return "".join(self._lines) + self._end_marker


def _runner_banner(log: RunnerLog, runner: int) -> None:
    log.line(f"{ESC}[0KRunning with gitlab-runner {RUNNER_VERSION} (a1b2c3d4){RESET}")
    log.line(f"{ESC}[0K  on sandbox-runner-{runner} t3_Sb0xRnr, system ID: s_5a6db0c1d2e3{RESET}")


def _preamble(log: RunnerLog, image: str, project_path: str, sha: str, ref: str, runner: int) -> None:
    _runner_banner(log, runner)
    log.start_section("prepare_executor", 'Preparing the "docker" executor')
    log.line(f"{ESC}[0KUsing Docker executor with image {image} ...{RESET}")
    log.line(f"{ESC}[0KPulling docker image {image} ...{RESET}")
    log.line(f"{ESC}[0KUsing docker image sha256:{hashlib.sha256(image.encode()).hexdigest()} for {image}{RESET}")
    log.end_section("prepare_executor", 6)
    log.start_section("prepare_script", "Preparing environment")
    log.line(f"Running on runner-t3sb0xrnr-project-concurrent-0 via sandbox-runner-{runner}...")
    log.end_section("prepare_script", 1)
    log.start_section("get_sources", "Getting source from Git repository")
    log.line(f"{GREEN}Fetching changes with git depth set to 20...{RESET}")
    log.line(f"Initialized empty Git repository in /builds/{project_path}/.git/")
    log.line(f"{GREEN}Created fresh repository.{RESET}")
    log.line(f"{GREEN}Checking out {sha[:8]} as detached HEAD (ref is {ref})...{RESET}")
    log.line()
    log.line(f"{GREEN}Skipping Git submodules setup{RESET}")
    log.end_section("get_sources", 3)


def render_job_log(
    *,
    start: float,
    image: str,
    project_path: str,
    sha: str,
    ref: str,
    script: Sequence[tuple[str, str]],
    failed: bool,
    artifacts: str | None = None,
    finished: bool = True,
    runner: int = 1,
) -> str:
    """A complete runner log: preamble, ``step_script`` running ``script`` (command, output) pairs,
    ``after_script``, artifacts upload, cleanup and the final ``Job succeeded`` / ``ERROR`` line.
    With ``finished=False`` the log stops inside ``step_script`` (a running job)."""
    log = RunnerLog(start)
    _preamble(log, image, project_path, sha, ref, runner)
    log.start_section("step_script", 'Executing "step_script" stage of the job script')
    log.line(f"{ESC}[0KUsing docker image sha256:{hashlib.sha256(image.encode()).hexdigest()} for {image}{RESET}")
    for command, output in script:
        log.command(command, output)
    if not finished:
        return log.text()
    log.end_section("step_script", 40)
    log.start_section("after_script", "Running after_script")
    log.line(f"{GREEN}Running after script...{RESET}")
    log.command('echo "collecting diagnostics"', "collecting diagnostics")
    log.end_section("after_script", 1)
    if artifacts:
        outcome = "on_failure" if failed else "on_success"
        log.start_section(
            f"upload_artifacts_{outcome}", "Uploading artifacts for " + ("failed" if failed else "successful") + " job"
        )
        log.line(f"{GREEN}Uploading artifacts...{RESET}")
        log.line(f"{artifacts}: found 1 matching artifact files and directories{RESET}")
        log.line(
            f'{GREEN}Uploading artifacts as "junit" to coordinator... 201 Created{RESET}'
            "  correlation_id=01J0SANDBOX responseStatus=201 Created token=glcbt-64"
        )
        log.end_section(f"upload_artifacts_{outcome}", 2)
    log.start_section("cleanup_file_variables", "Cleaning up project directory and file based variables")
    log.end_section("cleanup_file_variables", 1)
    log.line()
    log.line(f"{RED}ERROR: Job failed: exit code 1{RESET}" if failed else f"{GREEN}Job succeeded{RESET}")
    return log.text()


def render_system_failure_log(*, start: float, image: str, runner: int) -> str:
    """A runner that could not pull the job image: no ``step_script`` at all."""
    log = RunnerLog(start)
    _runner_banner(log, runner)
    log.start_section("prepare_executor", 'Preparing the "docker" executor')
    log.line(f"{ESC}[0KUsing Docker executor with image {image} ...{RESET}")
    log.line(f"{ESC}[0KPulling docker image {image} ...{RESET}")
    for attempt in (1, 2, 3):
        log.line(
            f'{YELLOW}WARNING: Failed to pull image with policy "always": Error response from daemon: Get '
            f'"https://registry.example.test/v2/": dial tcp 10.20.0.12:443: connect: connection refused '
            f"(manager.go:251:{attempt * 15}s){RESET}"
        )
    log.end_section("prepare_executor", 62)
    log.line(
        f'{RED}ERROR: Job failed (system failure): failed to pull image "{image}" with specified policies '
        f'[always]: Error response from daemon: Get "https://registry.example.test/v2/": dial tcp '
        f"10.20.0.12:443: connect: connection refused (manager.go:251:45s){RESET}"
    )
    return log.text()


def with_timestamps(text: str, start: float) -> str:
    """Prefix every line with the 32-byte ``FF_TIMESTAMPS`` marker (RFC 3339 µs, stream, E/O, ' ')."""
    lines = text.split("\n")  # not splitlines(): a "\r" inside a section marker is no line break
    out: list[str] = []
    for i, line in enumerate(lines):
        if i == len(lines) - 1 and not line:
            break
        ts = datetime.fromtimestamp(start + i * 0.137, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        out.append(f"{ts} 01{'E' if 'ERROR:' in line else 'O'} {line}")
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def generated_text_trace(
    size: int, *, failed: bool, project: Project, sha: str, ref: str, start: float
) -> GeneratedTrace:
    """A ``size``-byte text log: a real preamble, compiler-like filler, and a real ending."""
    script = [("make build-all", _FILLER_MARK)]
    if failed:
        panic = (
            "panic: runtime error: index out of range [3] with length 3\n\ngoroutine 1 [running]:\nmain.main()\n"
            "\t/builds/app/main.go:12 +0x1d\nexit status 2\nmake: *** [Makefile:14: test] Error 1"
        )
        script.append(("make test", panic))
    text = render_job_log(
        start=start,
        image="golang:1.23",
        project_path=project.path_with_namespace,
        sha=sha,
        ref=ref,
        script=script,
        failed=failed,
        runner=runner_number(project.id),
    )
    head, tail = text.split(_FILLER_MARK + "\n", 1)
    return GeneratedTrace(size, head=head.encode(), tail=tail.encode())


# -- seeded job scripts ---------------------------------------------------------------------------
IMAGES = {"python": "python:3.12-slim", "go": "golang:1.23", "dbt": "ghcr.io/dbt-labs/dbt-postgres:1.8.2"}
_PY_TESTS = (
    "test_charge_creates_entry",
    "test_refund_full_amount",
    "test_balance_after_partial_refund",
    "test_currency_mismatch_rejected",
    "test_idempotent_charge",
    "test_list_entries_paginates",
    "test_void_pending_charge",
    "test_negative_amount_rejected",
    "test_statement_totals",
    "test_export_csv_header",
    "test_concurrent_charges_serialised",
    "test_close_account_with_zero_balance",
)
_PY_FAILING_TEST = "test_balance_after_partial_refund"
_PY_ASSERT = "AssertionError: assert Decimal('59.99') == Decimal('60.00')"
_GO_PACKAGES = ("internal/api", "internal/retry", "internal/store")


def _module(project: Project) -> str:
    return project.path.replace("-", "_").replace(".", "_")


def python_script(job: str, project: Project, ok: bool) -> list[tuple[str, str]]:
    """Commands and output of a Python project's ``build``/``unit-tests``/``lint`` job."""
    if job == "build":
        return [("pip install --quiet -r requirements.txt", ""), ("python -m compileall -q src", "")]
    if job == "lint":
        return [("ruff check .", "All checks passed!")]
    dots = "".join(
        f"{ESC}[31mF{RESET}" if not ok and t == _PY_FAILING_TEST else f"{ESC}[32m.{RESET}" for t in _PY_TESTS
    )
    xml = f"- generated xml file: /builds/{project.path_with_namespace}/report.xml -"
    if ok:
        summary = f"{ESC}[32m{ESC}[1m12 passed{RESET}{ESC}[32m in 3.02s{RESET}"
        return [("pytest -q --junitxml=report.xml", f"{dots}{ESC}[32m{' ' * 58}[100%]{RESET}\n{xml}\n{summary}")]
    mod = _module(project)
    where = (
        f"{ESC}[1m{ESC}[31mE        +  where Decimal('59.99') = <bound method Ledger.balance of "
        f"<{mod}.ledger.Ledger object at 0x7f3a2c1d4e50>>('acct-1'){RESET}"
    )
    output = f"""{dots}{ESC}[31m{" " * 58}[100%]{RESET}
=================================== FAILURES ===================================
{ESC}[31m{ESC}[1m______________________ {_PY_FAILING_TEST} _______________________{RESET}

    def {_PY_FAILING_TEST}(ledger):
        ledger.charge("acct-1", Decimal("100.00"))
        ledger.refund("acct-1", Decimal("40.00"))
>       assert ledger.balance("acct-1") == Decimal("60.00")
{ESC}[1m{ESC}[31mE       {_PY_ASSERT}{RESET}
{where}

{ESC}[1m{ESC}[31mtests/test_ledger.py{RESET}:42: AssertionError
------------------------------ Captured log call -------------------------------
DEBUG    {mod}.config:config.py:31 loaded DATABASE_URL=postgres://ledger:Sup3r-s3cret-sandbox@db.internal:5432/ledger
WARNING  {mod}.ledger:ledger.py:88 rounding refund 40.00 with ROUND_DOWN
{xml}
=========================== short test summary info ============================
FAILED tests/test_ledger.py::{_PY_FAILING_TEST} - {_PY_ASSERT}
{ESC}[31m{ESC}[1m1 failed{RESET}, {ESC}[32m11 passed{RESET}{ESC}[31m in 3.21s{RESET}"""
    return [("pytest -q --junitxml=report.xml", output)]


def go_script(job: str, project: Project, ok: bool) -> list[tuple[str, str]]:
    """Commands and output of a Go project's ``build``/``unit-tests``/``lint`` job."""
    module = f"example.test/{project.path_with_namespace}"
    if job == "build":
        if ok:
            return [("go build ./...", ""), ("go vet ./...", "")]
        return [
            (
                "go build ./...",
                (
                    f"# {module}/internal/retry\n"
                    "internal/retry/budget.go:57:9: undefined: backoffPolicy\n"
                    "internal/retry/budget.go:88:21: cannot use b.limit (variable of type int64) as int value "
                    "in argument to time.Sleep"
                ),
            )
        ]
    if job == "lint":
        if ok:
            return [("golangci-lint run ./...", "0 issues.")]
        return [
            (
                "golangci-lint run ./...",
                (
                    "internal/api/handler.go:88:2: ineffectual assignment to err (ineffassign)\n"
                    "\terr = json.NewEncoder(w).Encode(resp)\n\t^\n"
                    "internal/store/cache.go:41:6: func `unusedHelper` is unused (unused)\n"
                    "func unusedHelper() {}\n     ^\n"
                    "2 issues:\n* ineffassign: 1\n* unused: 1"
                ),
            )
        ]
    lines = [f"{GREEN}✓{RESET}  {pkg} ({0.4 + i * 0.37:.3f}s)" for i, pkg in enumerate(_GO_PACKAGES)]
    return [("gotestsum --junitfile report.xml -- -race ./...", "\n".join(lines) + "\n\nDONE 14 tests in 3.512s")]


def deploy_script(project: Project, sha: str) -> list[tuple[str, str]]:
    return [
        (
            "./scripts/deploy.sh staging",
            (
                f"Deploying {sha[:8]} to staging ...\ndeployment.apps/{project.path} configured\n"
                "Waiting for rollout: 3 of 3 updated replicas are available...\nRollout complete."
            ),
        )
    ]


def dbt_script(ok: bool) -> list[tuple[str, str]]:
    """``dbt build`` with French model names (a unicode-heavy log)."""
    result = "PASS=24 WARN=0 ERROR=0 SKIP=0 TOTAL=24" if ok else "PASS=23 WARN=0 ERROR=1 SKIP=0 TOTAL=24"
    test_line = (
        f"12:01:09  18 of 24 {GREEN}PASS{RESET} not_null_fct_ventes_montant_ttc .................. "
        f"[{GREEN}PASS{RESET} in 0.21s]"
        if ok
        else f"12:01:09  18 of 24 {RED}FAIL 3{RESET} not_null_fct_ventes_montant_ttc ................ "
        f"[{RED}FAIL 3{RESET} in 0.21s]"
    )
    failure = (
        ""
        if ok
        else "\n12:01:10  Completed with 1 error and 0 warnings:\n12:01:10\n"
        f"12:01:10  {RED}Failure in test not_null_fct_ventes_montant_ttc (models/marts/ventes/schéma.yml){RESET}\n"
        "12:01:10    Got 3 results, configured to fail if != 0\n12:01:10\n"
        "12:01:10    compiled code at target/compiled/données_analytics/models/marts/ventes/schéma.yml/"
        "not_null_fct_ventes_montant_ttc.sql\n"
        "12:01:10    -- colonne « montant_ttc » : 3 lignes nulles (commandes annulées après clôture)\n12:01:10"
    )
    output = (
        "12:01:02  Running with dbt=1.8.2\n12:01:03  Registered adapter: postgres=1.8.1\n"
        "12:01:04  Found 24 models, 61 data tests, 5 sources, 0 exposures, 0 metrics\n"
        "12:01:05  Concurrency: 4 threads (target='ci')\n"
        f"{test_line}\n"
        "12:01:10  Finished running 24 data tests in 0 hours 0 minutes and 6.02 seconds (6.02s).\n"
        f"{failure}\n12:01:10  Done. {result}"
    )
    return [("dbt build --select marts --target ci", output)]


def python_tests(project: Project, ok: bool) -> tuple[TestCase, ...]:
    mod = _module(project)
    cases = []
    for i, name in enumerate(_PY_TESTS):
        failed = not ok and name == _PY_FAILING_TEST
        cases.append(
            TestCase(
                name=name,
                classname="tests.test_ledger",
                status="failed" if failed else "success",
                execution_time=round(0.05 + (i % 5) * 0.11, 3),
                file="tests/test_ledger.py",
                system_output=f"{mod}.ledger: rounding refund 40.00 with ROUND_DOWN" if failed else None,
                stack_trace=f'>       assert ledger.balance("acct-1") == Decimal("60.00")\nE       {_PY_ASSERT}'
                if failed
                else None,
            )
        )
    return tuple(cases)


def go_tests() -> tuple[TestCase, ...]:
    names = ("TestBudgetAllows", "TestBudgetRefills", "TestHandlerHealth", "TestHandlerNotFound", "TestStoreRoundTrip")
    return tuple(
        TestCase(n, f"example.test/{_GO_PACKAGES[i % 3]}", "success", round(0.01 + i * 0.03, 3))
        for i, n in enumerate(names)
    )


# -- seed -----------------------------------------------------------------------------------------
USERS = (
    User(GITLAB_USER_ID, GITLAB_USERNAME, "Sandbox Bot", "sandbox-bot@example.test"),
    User(4301, "ana.lima", "Ana Lima", "ana.lima@example.test"),
    User(4302, "jonas.weber", "Jonas Weber", "jonas.weber@example.test"),
    User(4303, "mei.chen", "陈美 Mei Chen", "mei.chen@example.test"),
    User(4304, "olivier.durand", "Olivier Durand-Lefèvre", "olivier.durand@example.test"),
)
COMMIT_MESSAGES = (
    "Fix rounding of partial refunds\n\nUse ROUND_HALF_EVEN so statements match the payment provider.",
    "Add retry budget to the outbound HTTP client",
    "Bump dependencies (weekly)",
    "Refactor cache invalidation in the store layer",
    "Document the deploy runbook",
    "Tune connection pool sizes for staging",
    "Add structured logging to request handlers",
    "Remove the deprecated v1 export endpoint",
)


@dataclass
class _Plan:
    """A pipeline to create; plans run oldest first so ids grow with time, as in GitLab."""

    project: Project
    ref: str
    at: float
    commit: Commit
    jobs: list[JobSpec]
    source: str = "push"
    key: str | None = None


class _Seeder:
    """Seeds the ``_seed.py`` layout with pipelines over the last days relative to the clock.

    Every project but ``dotfiles`` gets a few successful ``main`` pipelines. The newest pipelines of
    some projects are scenarios for the triage DAG, each preceded by a successful pipeline on the
    same ref running the same job names (so a failing log can be diffed against a passing one):

    * ``pytest``: a pytest failure on ``main`` (``script_failure``; the job was retried once and
      failed again; its log leaks a database URL with a password);
    * ``compile``: a Go compile error on ``feature/retry-budget``; later jobs ``skipped``;
    * ``allowed``: ``lint`` failed with ``allow_failure`` (pipeline "passed with warnings");
    * ``system``: ``integration-tests`` failed with ``runner_system_failure`` (image pull error);
    * ``dbt``: a dbt test failure in the unicode-named "Données Analytics", log with per-line
      ``FF_TIMESTAMPS`` prefixes;
    * ``bridge``: the ``trigger-docs`` bridge failed (``downstream_pipeline_creation_failed``);
    * ``running``: a pipeline still running (``unit-tests`` running, ``deploy-staging`` created).
    """

    def __init__(self, state: GitLabState) -> None:
        self.state = state
        self.rng = random.Random(f"gitlab-pipelines-{state.seed}")
        self.t0 = state.now()
        self.lang: dict[int, str] = {}
        self.plans: list[_Plan] = []
        self.made: dict[str, Pipeline] = {}

    def run(self) -> None:
        projects = self._layout()
        scenario = {
            "pytest": projects[0],
            "compile": projects[1],
            "running": projects[2],
            "allowed": projects[4],
            "system": projects[6],
            "bridge": projects[9],
            "dbt": next(p for p in projects if p.name == "Données Analytics"),
        }
        for p in projects:
            self.lang[p.id] = "go" if p.id % 2 else "python"
        self.lang.update({scenario["pytest"].id: "python", scenario["compile"].id: "go", scenario["allowed"].id: "go"})
        self.lang.update({scenario["system"].id: "python", scenario["bridge"].id: "python", scenario["dbt"].id: "dbt"})
        for p in projects:
            if p.path != "dotfiles":  # one project without any pipeline
                self._history(p)
        self._scenarios(scenario)
        for plan in sorted(self.plans, key=lambda pl: pl.at):
            pipeline = self.state.add_pipeline(
                plan.project,
                plan.ref,
                plan.jobs,
                commit=plan.commit,
                user=plan.commit.author,
                source=plan.source,
                created_at=plan.at,
            )
            if plan.key:
                self.made[plan.key] = pipeline
        self._fix_ups()

    def _layout(self) -> list[Project]:
        state = self.state
        for user in USERS:
            state.users[user.username] = user
        groups, seeds = gitlab_layout(state.seed)
        by_id = {g.id: g for g in groups}
        for g in groups:
            chain = [g]
            while chain[-1].parent_id is not None:
                chain.append(by_id[chain[-1].parent_id])
            full_name = " / ".join(x.name for x in reversed(chain))
            state.namespaces[g.full_path.lower()] = Namespace(
                g.id, g.name, g.path, g.full_path, "group", g.parent_id, full_name
            )
        bot = state.users[GITLAB_USERNAME]
        state.namespaces[GITLAB_USERNAME] = Namespace(
            GITLAB_USER_ID, bot.name, GITLAB_USERNAME, GITLAB_USERNAME, "user", None, bot.name
        )
        projects = []
        for sp in seeds:
            namespace = state.namespaces[sp.namespace_path.lower()]
            project = Project(
                sp.id,
                sp.name,
                sp.path,
                namespace,
                self.t0 - 400 * 86400,
                description=f"{sp.name} ({sp.path_with_namespace})",
            )
            state.projects[project.id] = project
            state.project_pipelines[project.id] = []
            projects.append(project)
        return projects

    # -- jobs -----------------------------------------------------------------------------------
    def _commit(self, project: Project, at: float, message: str | None = None, author: User | None = None) -> Commit:
        message = message or self.rng.choice(COMMIT_MESSAGES)
        author = author or self.rng.choice(USERS[1:])
        return self.state.new_commit(project, message, author, at - self.rng.randint(120, 1800))

    def _log(
        self,
        project: Project,
        commit: Commit,
        ref: str,
        at: float,
        script: list[tuple[str, str]],
        failed: bool,
        artifacts: str | None = None,
        finished: bool = True,
    ) -> TextTrace:
        """A rendered log; dbt logs carry ``FF_TIMESTAMPS`` line prefixes."""
        lang = self.lang[project.id]
        text = render_job_log(
            start=at,
            image=IMAGES[lang],
            project_path=project.path_with_namespace,
            sha=commit.sha,
            ref=ref,
            script=script,
            failed=failed,
            artifacts=artifacts,
            finished=finished,
            runner=runner_number(project.id),
        )
        return TextTrace((with_timestamps(text, at) if lang == "dbt" else text).encode())

    def _job(
        self, project: Project, name: str, commit: Commit, ref: str, at: float, ok: bool = True, **spec: object
    ) -> JobSpec:
        """A standard job of the project's language with a rendered log."""
        lang = self.lang[project.id]
        stage = {"build": "build", "deploy-staging": "deploy"}.get(name, "test")
        tests: tuple[TestCase, ...] = ()
        if name == "deploy-staging":
            script = deploy_script(project, commit.sha)
        elif name == "integration-tests":
            script = [("pytest -q tests/integration", f"{ESC}[32m......{RESET}{' ' * 60}[100%]\n6 passed in 41.30s")]
        elif lang == "dbt":
            script = dbt_script(ok)
        elif lang == "go":
            script = go_script(name, project, ok)
            tests = go_tests() if name == "unit-tests" else ()
        else:
            script = python_script(name, project, ok)
            tests = python_tests(project, ok) if name == "unit-tests" else ()
        artifacts = "report.xml" if tests else None
        durations = {"build": (40, 120), "unit-tests": (60, 240), "lint": (20, 60), "integration-tests": (120, 300)}
        lo, hi = durations.get(name, (30, 90))
        job = JobSpec(
            name,
            stage,
            status="success" if ok else "failed",
            failure_reason=None if ok else "script_failure",
            trace=self._log(project, commit, ref, at, script, not ok, artifacts=artifacts),
            tests=tests,
            coverage=84.2 if name == "unit-tests" and ok else None,
            duration=float(self.rng.randint(lo, hi)),
            queued=float(self.rng.randint(1, 15)),
        )
        return replace(job, **spec)  # type: ignore[arg-type]

    def _standard(
        self,
        project: Project,
        commit: Commit,
        ref: str,
        at: float,
        failing: str | None = None,
        extra: tuple[str, ...] = (),
        **failing_spec: object,
    ) -> list[JobSpec]:
        """The project's usual jobs plus ``extra`` test jobs; ``failing`` fails (later stages are
        then skipped unless the failure is allowed)."""
        lang = self.lang[project.id]
        names = ["dbt-build"] if lang == "dbt" else ["build", "unit-tests", "lint", *extra]
        if ref == project.default_branch:
            names.append("deploy-staging")
        jobs: list[JobSpec] = []
        blocked_after: str | None = None
        for name in names:
            stage = {"build": "build", "deploy-staging": "deploy"}.get(name, "test")
            if blocked_after is not None and stage != blocked_after:
                jobs.append(JobSpec(name, stage, status="skipped"))
                continue
            failed = name == failing
            jobs.append(self._job(project, name, commit, ref, at, ok=not failed, **(failing_spec if failed else {})))
            if failed and not failing_spec.get("allow_failure"):
                blocked_after = stage
        return jobs

    # -- pipelines ------------------------------------------------------------------------------
    def _plan(
        self,
        project: Project,
        ref: str,
        at: float,
        jobs: list[JobSpec],
        commit: Commit,
        key: str | None = None,
        source: str = "push",
    ) -> None:
        self.plans.append(_Plan(project, ref, at, commit, jobs, source, key))

    def _history(self, project: Project) -> None:
        """3-5 successful ``main`` pipelines, the newest about 6-14 hours ago."""
        at = self.t0 - 6 * 3600
        for _ in range(self.rng.randint(3, 5)):
            at -= self.rng.randint(2, 8) * 3600
            commit = self._commit(project, at)
            self._plan(
                project, project.default_branch, at, self._standard(project, commit, project.default_branch, at), commit
            )

    def _pair(
        self,
        key: str,
        project: Project,
        ref: str,
        good_at: float,
        bad_at: float,
        failing: str,
        extra: tuple[str, ...] = (),
        author: User | None = None,
        **spec: object,
    ) -> None:
        """A successful pipeline on ``ref`` and, later, the scenario pipeline where ``failing`` fails."""
        good = self._commit(project, good_at, author=author)
        self._plan(
            project, ref, good_at, self._standard(project, good, ref, good_at, extra=extra), good, key=f"{key}-good"
        )
        bad = self._commit(project, bad_at, author=author)
        self._plan(
            project, ref, bad_at, self._standard(project, bad, ref, bad_at, failing, extra, **spec), bad, key=key
        )

    def _scenarios(self, p: dict[str, Project]) -> None:
        t0, users = self.t0, self.state.users
        self._pair("pytest", p["pytest"], "main", t0 - 4 * 3600, t0 - 50 * 60, "unit-tests", author=users["ana.lima"])
        self._pair(
            "compile",
            p["compile"],
            "feature/retry-budget",
            t0 - 5 * 3600,
            t0 - 40 * 60,
            "build",
            author=users["jonas.weber"],
        )
        self._pair("allowed", p["allowed"], "main", t0 - 6 * 3600, t0 - 30 * 60, "lint", allow_failure=True)
        system = p["system"]
        image = "registry.example.test/acme/ci-images/integration:2024.06"
        system_log = render_system_failure_log(start=t0 - 45 * 60, image=image, runner=runner_number(system.id))
        self._pair(
            "system",
            system,
            "main",
            t0 - 7 * 3600,
            t0 - 45 * 60,
            "integration-tests",
            extra=("integration-tests",),
            failure_reason="runner_system_failure",
            trace=TextTrace(system_log.encode()),
            duration=62.0,
        )
        self._pair("dbt", p["dbt"], "main", t0 - 8 * 3600, t0 - 35 * 60, "dbt-build", author=users["olivier.durand"])
        self._bridge(p["bridge"])
        running = p["running"]
        commit = self._commit(running, t0 - 150, author=users["mei.chen"])
        partial = self._log(
            running,
            commit,
            "main",
            t0 - 80,
            [("pytest -q --junitxml=report.xml", f"{ESC}[32m.......{RESET}")],
            False,
            finished=False,
        )
        jobs = [
            self._job(running, "build", commit, "main", t0 - 150, duration=60.0, queued=4.0),
            JobSpec("unit-tests", "test", status="running", trace=partial, queued=4.0),
            JobSpec("lint", "test", status="pending"),
            JobSpec("deploy-staging", "deploy", status="created"),
        ]
        self._plan(running, "main", t0 - 150, jobs, commit, key="running")

    def _bridge(self, project: Project) -> None:
        """A success whose ``trigger-docs`` bridge started a child pipeline, then a failed bridge."""
        good_at, bad_at = self.t0 - 9 * 3600, self.t0 - 55 * 60
        docs = [
            (
                "mkdocs build --strict",
                (
                    "INFO    -  Cleaning site directory\nINFO    -  Building documentation to directory: /builds/site\n"
                    "INFO    -  Documentation built in 4.12 seconds"
                ),
            )
        ]
        for key, at, ok in (("bridge-good", good_at, True), ("bridge", bad_at, False)):
            commit = self._commit(project, at)
            jobs = self._standard(project, commit, "main", at)
            reason = None if ok else "downstream_pipeline_creation_failed"
            bridge = JobSpec("trigger-docs", "docs", "success" if ok else "failed", reason, bridge=True, duration=30.0)
            self._plan(project, "main", at, [*jobs, bridge], commit, key=key)
            if ok:
                child = [
                    JobSpec(
                        "build-docs",
                        "build",
                        trace=self._log(project, commit, "main", at + 900, docs, False),
                        duration=45.0,
                    )
                ]
                self._plan(project, "main", at + 900, child, commit, key="bridge-child", source="parent_pipeline")

    def _fix_ups(self) -> None:
        """What needs ids: the retried pytest attempt, the bridge's downstream pipeline and the
        scenario index."""
        failed = next(j for j in self.made["pytest"].latest_jobs() if j.name == "unit-tests")
        assert failed.finished_at is not None and failed.started_at is not None
        retry = self.state.retry_job(failed)
        retry.created_at = failed.finished_at + 60
        retry.started_at = retry.created_at + 5
        retry.finished_at = retry.started_at + (failed.finished_at - failed.started_at)
        retry.status, retry.failure_reason = "failed", "script_failure"
        retry.trace, retry.tests = failed.trace, failed.tests
        bridge = next(j for j in self.made["bridge-good"].jobs if j.bridge)
        bridge.downstream_pipeline_id = self.made["bridge-child"].id
        for key in ("pytest", "compile", "allowed", "system", "dbt", "bridge", "running"):
            pipeline, good = self.made[key], self.made.get(f"{key}-good")
            self.state.scenarios[key] = {
                "project_id": pipeline.project.id,
                "project_path": pipeline.project.path_with_namespace,
                "ref": pipeline.ref,
                "pipeline_id": pipeline.id,
                "good_pipeline_id": good.id if good else None,
                "failed_job_ids": [j.id for j in pipeline.latest_jobs(None) if j.status == "failed"],
            }


def seeded_state(seed: int, now: Callable[[], float]) -> GitLabState:
    """A fresh state with the seeded projects and pipelines (see ``_Seeder``), then the weeks of CI
    history of ``history.py`` (seeded second, so the triage scenarios keep their ids)."""
    from include.sandbox.systems.gitlab.history import seed_history  # history.py builds on this module

    state = GitLabState(seed, now)
    _Seeder(state).run()
    seed_history(state)
    return state
