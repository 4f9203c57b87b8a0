"""State and rules of the DevLake sandbox (``../shared/api/devlake.md``), free of HTTP.

Route functions in ``api.py`` call :class:`DevLakeState` and turn a raised :class:`DevLakeError`
into DevLake's error envelope. The state holds what a fresh DevLake holds: connections (seeded, with
remote trees from ``remote.py``), scope configs, scopes, projects, blueprints, pipelines and
tasks, webhook connections and API keys, plus the sandbox's settings and pipeline scripts.

Pipelines are simulated lazily: every request first calls :meth:`DevLakeState.advance`, which
replays what happened between the previous request and the virtual clock's ``now`` (queued
pipelines start when a ``PIPELINE_MAX_PARALLEL`` slot frees, running ones finish one task every few
seconds). Nothing runs in the background, so a test moves pipelines by advancing the clock.
"""

from __future__ import annotations

import calendar
import copy
import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from include.sandbox.systems.devlake import remote

# ---- plugins --------------------------------------------------------------------------------------

#: Data-source plugins with connection, scope, scope-config and remote-scope APIs in the sandbox.
DATA_SOURCES = ("github", "gitlab", "bitbucket", "jira", "azuredevops_go")
#: Helper plugins listed by ``GET /plugins`` (no connection API: their routes answer 404).
HELPER_PLUGINS = (
    "gitextractor",
    "github_graphql",
    "refdiff",
    "org",
    "dora",
    "linker",
    "issue_trace",
    "customize",
    "dbt",
    "starrocks",
)
#: Plugins with ``isProjectMetric: true``; a project's enabled ones become the plan's last stage.
PROJECT_METRICS = ("dora", "issue_trace", "linker")
#: Plugins with a git repository per scope: their scopes add a gitextractor task.
GIT_PLUGINS = frozenset({"github", "gitlab", "bitbucket", "azuredevops_go"})

#: Connection columns of each plugin with their defaults (the name comes first, timestamps last).
CONNECTION_DEFAULTS: dict[str, dict[str, Any]] = {
    "github": {
        "endpoint": "https://api.github.com/",
        "proxy": "",
        "rateLimitPerHour": 0,
        "authMethod": "AccessToken",
        "token": "",
        "appId": "",
        "secretKey": "",
        "installationId": 0,
        "enableGraphql": True,
        "refreshToken": "",
        "tokenExpiresAt": None,
    },
    "gitlab": {"endpoint": "https://gitlab.com/api/v4/", "proxy": "", "rateLimitPerHour": 0, "token": ""},
    "bitbucket": {
        "endpoint": "https://api.bitbucket.org/2.0/",
        "proxy": "",
        "rateLimitPerHour": 0,
        "authMethod": "BasicAuth",
        "username": "",
        "password": "",
        "usesApiToken": False,
    },
    "jira": {
        "endpoint": "",
        "proxy": "",
        "rateLimitPerHour": 0,
        "authMethod": "BasicAuth",
        "username": "",
        "password": "",
        "token": "",
    },
    "azuredevops_go": {"organization": "", "token": "", "proxy": "", "rateLimitPerHour": 0},
}
#: Connection columns never shown in clear by GET.
SECRET_FIELDS = ("token", "password", "secretKey", "refreshToken")
SECRET_MASK = "********"

# ---- statuses and messages ------------------------------------------------------------------------

CREATED, RERUN, RESUME, RUNNING = "TASK_CREATED", "TASK_RERUN", "TASK_RESUME", "TASK_RUNNING"
COMPLETED, FAILED, CANCELLED, PARTIAL = "TASK_COMPLETED", "TASK_FAILED", "TASK_CANCELLED", "TASK_PARTIAL"
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED, PARTIAL})
#: Waiting for a ``PIPELINE_MAX_PARALLEL`` slot.
QUEUED = frozenset({CREATED, RERUN})
#: A pipeline in one of these makes ``trigger`` answer 400.
BLOCKS_TRIGGER = frozenset({CREATED, RERUN, RUNNING})

VERSION = "v1.0.3@adaa008"
DUPLICATE_NAME = "The name of the current scope config is duplicated. Please modify it before saving."
MIGRATION_PENDING = (
    "New migration scripts detected. Database migration is required to launch DevLake.\n"
    "WARNING: Performing migration may wipe collected data for consistency and re-collecting data may be required.\n"
    "To proceed, please send a request to <config-ui-endpoint>/api/proceed-db-migration "
    "(or <devlake-endpoint>/proceed-db-migration)."
)
#: Seconds a cancelled running pipeline takes to reach TASK_CANCELLED (its tasks are cancelled at once).
CANCEL_SECONDS = 1.0
#: Seconds before a queued pipeline can take a free slot (DevLake's queue loop polls the database).
PICKUP_SECONDS = 1.0


class DevLakeError(Exception):
    """An API error: ``status`` and ``message`` of the envelope, optional ``data``; ``empty`` answers
    the status with an empty body (the list endpoints' ``AbortWithError``)."""

    def __init__(self, status: int, message: str, data: Any = None, empty: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.data = data
        self.empty = empty


class NoRoute(DevLakeError):
    """No such route (e.g. a plugin without a connection API): gin's text/plain 404."""

    def __init__(self) -> None:
        super().__init__(404, "404 page not found")


# ---- time, cron, paging ---------------------------------------------------------------------------

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", re.IGNORECASE)
_LENIENT_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:\d{2})?$", re.IGNORECASE)
_ZERO_TIME = "0001-01-01T00:00:00Z"


def fmt_time(ts: float | None) -> str | None:
    """Go's RFC3339Nano in UTC: ``2025-11-05T00:00:00Z``, sub-second digits only when present."""
    if ts is None:
        return None
    dt = datetime.fromtimestamp(ts, UTC)
    frac = f".{dt.microsecond:06d}".rstrip("0") if dt.microsecond else ""
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"


def parse_time(value: Any, strict: bool) -> float | None:
    """A ``timeAfter`` value: strict RFC3339 (Go's ``time.Time`` JSON), or when not ``strict`` also
    ``YYYY-MM-DD`` and ``YYYY-MM-DD HH:MM:SS`` (UTC). Empty, null and the zero time give None."""
    if value is None or value == "" or value == _ZERO_TIME:
        return None
    pattern = _RFC3339 if strict else _LENIENT_TIME
    if not isinstance(value, str) or not pattern.match(value):
        raise DevLakeError(400, f"invalid timeAfter {value!r}: want RFC3339 such as 2025-01-01T00:00:00Z")
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.upper().replace(" ", "T"))
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def six_months_before(now: float) -> float:
    """Midnight (UTC) of the day six calendar months before ``now``: the auto blueprint's timeAfter."""
    dt = datetime.fromtimestamp(now, UTC)
    year, month = (dt.year, dt.month - 6) if dt.month > 6 else (dt.year - 1, dt.month + 6)
    day = min(dt.day, calendar.monthrange(year, month)[1])
    return datetime(year, month, day, tzinfo=UTC).timestamp()


_CRON_DESCRIPTORS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_GO_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
#: (low, high, names) per cron field: minute, hour, day of month, month, day of week.
_CRON_FIELDS: tuple[tuple[int, int, tuple[str, ...]], ...] = (
    (0, 59, ()),
    (0, 23, ()),
    (1, 31, ()),
    (1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    (0, 6, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)


def valid_cron(expr: str) -> bool:
    """Whether robfig/cron's standard parser accepts ``expr`` (5 fields, or a descriptor)."""
    spec = expr.strip()
    if spec.startswith(("TZ=", "CRON_TZ=")):
        spec = spec.split(None, 1)[1] if " " in spec else ""
    if spec in _CRON_DESCRIPTORS:
        return True
    if spec.startswith("@every "):
        return bool(_GO_DURATION.match(spec[7:].strip()))
    fields = spec.split()
    return len(fields) == 5 and all(_valid_cron_field(f, *rule) for f, rule in zip(fields, _CRON_FIELDS, strict=True))


def _valid_cron_field(text: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    def value(v: str) -> int | None:
        if v.isdigit():
            return int(v)
        return low + names.index(v.lower()) if v.lower() in names else None

    for part in text.split(","):
        rng, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            return False
        if rng in ("*", "?"):
            continue
        start, _, end = rng.partition("-")
        first, last = value(start), value(end) if end else value(start)
        if first is None or last is None or not low <= first <= last <= high:
            return False
    return True


def page_args(
    query: Mapping[str, str], default_size: int, max_size: int | None = None, empty: bool = False
) -> tuple[int, int]:
    """``page`` and ``pageSize`` (camelCase) of a list request; values below 1 fall back to defaults."""
    try:
        page, size = int(query.get("page") or 1), int(query.get("pageSize") or default_size)
    except ValueError:
        raise DevLakeError(400, "page and pageSize must be integers", empty=empty) from None
    if max_size is not None and size > max_size:
        raise DevLakeError(400, f"pageSize must not exceed {max_size}", empty=empty)
    return max(page, 1), size if size >= 1 else default_size


def paginate(items: list[Any], page: int, size: int) -> list[Any]:
    return items[(page - 1) * size : page * size]


def int_id(value: str, what: str) -> int:
    """A numeric path id; DevLake answers 400 for a non-numeric one."""
    if not value.isdigit():
        raise DevLakeError(400, f"invalid {what}: {value!r}")
    return int(value)


def bool_param(query: Mapping[str, str], key: str, empty: bool = False) -> bool | None:
    """A boolean query parameter as gin binds it (``1/true/0/false``); None when absent."""
    value = query.get(key)
    if value is None or value == "":
        return None
    if value.lower() in ("1", "t", "true"):
        return True
    if value.lower() in ("0", "f", "false"):
        return False
    raise DevLakeError(400, f"invalid {key}: {value!r}", empty=empty)


def _typed(body: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    """``body[key]`` when of ``kind`` (null gives the default), else the JSON binding's 400."""
    value = body.get(key, default)
    if value is None:
        return copy.deepcopy(default)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, (int, float))):
        raise DevLakeError(400, f"json: cannot unmarshal {type(value).__name__} into field {key}")
    return value


# ---- entities -------------------------------------------------------------------------------------


def _raw_data_fields() -> dict[str, Any]:
    return {"_raw_data_params": "", "_raw_data_table": "", "_raw_data_id": 0, "_raw_data_remark": ""}


def _mask(value: Any) -> Any:
    return SECRET_MASK if isinstance(value, str) and value else value


@dataclass
class Connection:
    """A data-source connection; ``fields`` holds ``name`` and the plugin's columns."""

    plugin: str
    id: int
    fields: dict[str, Any]
    created_at: float
    updated_at: float
    tree: remote.RemoteTree

    @property
    def name(self) -> str:
        return str(self.fields["name"])

    def as_json(self) -> dict[str, Any]:
        shown = {k: _mask(v) if k in SECRET_FIELDS else copy.deepcopy(v) for k, v in self.fields.items()}
        return {"id": self.id, **shown, "createdAt": fmt_time(self.created_at), "updatedAt": fmt_time(self.updated_at)}


@dataclass
class ApiKey:
    """An API key; only its digest is kept (the plaintext is answered once, when made)."""

    id: int
    name: str
    type: str
    allowed_path: str
    expired_at: float | None
    extra: str
    digest: str
    created_at: float
    updated_at: float

    def as_json(self, plaintext: str | None = None) -> dict[str, Any]:
        out = {
            "id": self.id,
            "createdAt": fmt_time(self.created_at),
            "updatedAt": fmt_time(self.updated_at),
            "creator": "",
            "creatorEmail": "",
            "updater": "",
            "updaterEmail": "",
            "name": self.name,
            "expiredAt": fmt_time(self.expired_at),
            "allowedPath": self.allowed_path,
            "type": self.type,
            "extra": self.extra,
        }
        return out | ({"apiKey": plaintext} if plaintext is not None else {})


@dataclass
class WebhookConnection:
    id: int
    name: str
    api_key: ApiKey
    created_at: float
    updated_at: float

    def as_json(self, plaintext_key: str | None = None) -> dict[str, Any]:
        base = f"/rest/plugins/webhook/connections/{self.id}"
        return {
            "id": self.id,
            "name": self.name,
            "createdAt": fmt_time(self.created_at),
            "updatedAt": fmt_time(self.updated_at),
            "postIssuesEndpoint": f"{base}/issues",
            "closeIssuesEndpoint": f"{base}/issue/:issueKey/close",
            "postPullRequestsEndpoint": f"{base}/pull_requests",
            "postPipelineDeployTaskEndpoint": f"{base}/deployments",
            "postPipelineTaskEndpoint": f"{base}/cicd_tasks",
            "closePipelineEndpoint": f"{base}/cicd_pipeline/:pipelineName/finish",
            "apiKey": self.api_key.as_json(plaintext_key),
        }


@dataclass
class ScopeConfig:
    """A scope config (transformation rules); ``fields`` holds the plugin's flat transformation keys."""

    plugin: str
    id: int
    connection_id: int
    name: str
    entities: list[str]
    fields: dict[str, Any]
    created_at: float
    updated_at: float

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "connectionId": self.connection_id,
            "name": self.name,
            "entities": list(self.entities),
            **copy.deepcopy(self.fields),
            "createdAt": fmt_time(self.created_at),
            "updatedAt": fmt_time(self.updated_at),
        }


@dataclass
class Scope:
    """A data scope stored on a connection; ``data`` holds the plugin's columns (``remote.py``)."""

    plugin: str
    connection_id: int
    data: dict[str, Any]
    scope_config_id: int
    created_at: float
    updated_at: float

    @property
    def id(self) -> str:
        return remote.scope_id_of(self.plugin, self.data)

    @property
    def name(self) -> str:
        return str(self.data.get("fullName") or self.data.get("pathWithNamespace") or self.data.get("name") or self.id)

    def as_json(self) -> dict[str, Any]:
        config = {"scopeConfigId": self.scope_config_id} if self.scope_config_id else {}
        return {
            **copy.deepcopy(self.data),
            "connectionId": self.connection_id,
            **config,
            "createdAt": fmt_time(self.created_at),
            "updatedAt": fmt_time(self.updated_at),
            **_raw_data_fields(),
        }


@dataclass
class Project:
    name: str
    description: str
    metrics: list[dict[str, Any]]
    created_at: float
    updated_at: float
    seq: int  # creation order: lists are newest first

    def enabled_metrics(self) -> list[str]:
        return [m["pluginName"] for m in self.metrics if m.get("enable") and m.get("pluginName") in PROJECT_METRICS]


@dataclass
class Blueprint:
    id: int
    name: str
    project_name: str
    mode: str
    plan: Any
    enable: bool
    cron_config: str
    is_manual: bool
    before_plan: Any
    after_plan: Any
    labels: list[str]
    connections: list[dict[str, Any]]
    priority: int
    skip_on_fail: bool
    time_after: float | None
    skip_collectors: bool
    full_sync: bool
    created_at: float
    updated_at: float

    def as_json(self, with_plan: bool = True) -> dict[str, Any]:
        return {
            "id": self.id,
            "createdAt": fmt_time(self.created_at),
            "updatedAt": fmt_time(self.updated_at),
            "name": self.name,
            "projectName": self.project_name,
            "mode": self.mode,
            "plan": copy.deepcopy(self.plan) if with_plan else None,
            "enable": self.enable,
            "cronConfig": self.cron_config,
            "isManual": self.is_manual,
            "beforePlan": copy.deepcopy(self.before_plan),
            "afterPlan": copy.deepcopy(self.after_plan),
            "labels": list(self.labels),
            "connections": copy.deepcopy(self.connections),
            "priority": self.priority,
            "skipOnFail": self.skip_on_fail,
            "timeAfter": fmt_time(self.time_after),
            "skipCollectors": self.skip_collectors,
            "fullSync": self.full_sync,
        }

    def scope_refs(self) -> set[tuple[str, int, str]]:
        """(plugin, connection id, scope id) of every scope the blueprint references."""
        return {(c["pluginName"], c["connectionId"], s["scopeId"]) for c in self.connections for s in c["scopes"]}


#: Subtasks a plan task runs when its ``subtasks`` is null (shown in progress and ``/subtasks``).
PLUGIN_SUBTASKS: dict[str, list[str]] = {
    "org": ["setProjectMapping"],
    "github": [
        "collectApiRepo",
        "extractApiRepo",
        "collectApiPullRequests",
        "extractApiPullRequests",
        "convertRepo",
        "convertPullRequests",
    ],
    "gitlab": [
        "collectApiProject",
        "extractApiProject",
        "collectApiMergeRequests",
        "extractApiMergeRequests",
        "convertProject",
        "convertMergeRequests",
    ],
    "bitbucket": [
        "collectApiRepo",
        "extractApiRepo",
        "collectApiPullRequests",
        "extractApiPullRequests",
        "convertRepo",
    ],
    "jira": ["collectBoard", "extractBoard", "collectIssues", "extractIssues", "convertIssues"],
    "azuredevops_go": [
        "collectApiRepo",
        "extractApiRepo",
        "collectApiPullRequests",
        "extractApiPullRequests",
        "convertRepo",
    ],
    "gitextractor": ["Clone Git Repo"],
    "refdiff": ["calculateCommitsDiff", "calculateDeploymentCommitsDiff"],
    "dora": ["generateDeployments", "calculateChangeLeadTime", "ConnectIncidentToDeployment"],
    "issue_trace": ["ConvertIssueStatusHistory", "ConvertIssueAssigneeHistory"],
    "linker": ["LinkPrToIssue"],
}
_DEFAULT_SUBTASKS = ["collectData", "extractData", "convertData"]


@dataclass
class Task:
    """One attempt at one plan cell. A rerun adds a new attempt for the same (row, col)."""

    id: int
    pipeline_id: int
    row: int  # 1-based stage
    col: int  # 1-based place in the stage
    number: int  # 1-based place in the whole plan: what a script's ``failAtTask`` counts
    attempt: int
    plugin: str
    subtasks: list[str] | None
    options: dict[str, Any]
    created_at: float
    updated_at: float
    status: str = CREATED
    began_at: float | None = None
    finished_at: float | None = None
    ends_at: float = math.inf  # simulation: when the running attempt ends
    fails: bool = False  # simulation: whether it ends in TASK_FAILED
    message: str = ""
    error_name: str = ""
    failed_subtask: str = ""

    def subtask_names(self) -> list[str]:
        """The task's subtasks; an empty list means all of the plugin's, as in DevLake."""
        return self.subtasks or PLUGIN_SUBTASKS.get(self.plugin, _DEFAULT_SUBTASKS)

    def finished_subtasks(self, now: float) -> int:
        total = len(self.subtask_names())
        if self.status == COMPLETED:
            return total
        if self.status != RUNNING or self.began_at is None or math.isinf(self.ends_at):
            return 0
        return min(total - 1, int(total * (now - self.began_at) / max(self.ends_at - self.began_at, 1e-9)))

    def as_json(self, now: float) -> dict[str, Any]:
        total, done = len(self.subtask_names()), self.finished_subtasks(now)
        detail = None
        if self.status == RUNNING:
            name = self.subtask_names()[done] if done < total else ""
            detail = {
                "totalSubTasks": total,
                "finishedSubTasks": done,
                "totalRecords": 0,
                "finishedRecords": 0,
                "subTaskName": name,
                "subTaskNumber": done + 1,
                "collectSubtaskNumber": sum("collect" in s.lower() for s in self.subtask_names()),
                "otherSubtaskNumber": sum("collect" not in s.lower() for s in self.subtask_names()),
            }
        return {
            "id": self.id,
            "createdAt": fmt_time(self.created_at),
            "updatedAt": fmt_time(self.updated_at),
            "plugin": self.plugin,
            "subtasks": copy.deepcopy(self.subtasks),
            "options": copy.deepcopy(self.options),
            "status": self.status,
            "message": self.message,
            "errorName": self.error_name,
            "failedSubTask": self.failed_subtask,
            "progress": done / total if total else 0.0,
            "progressDetail": detail,
            "pipelineId": self.pipeline_id,
            "pipelineRow": self.row,
            "pipelineCol": self.col,
            "beganAt": fmt_time(self.began_at),
            "finishedAt": fmt_time(self.finished_at),
            "spentSeconds": _spent(self.began_at, self.finished_at),
        }

    def subtask_json(self, now: float) -> dict[str, Any]:
        """The task with its ``subtaskDetails`` (the subtasks that have started), for ``/subtasks``."""
        names, done = self.subtask_names(), self.finished_subtasks(now)
        started = names[: done + 1] if self.status in (RUNNING, FAILED) else names[:done]
        details = [
            {
                "name": n,
                "number": i + 1,
                "isCollector": "collect" in n.lower(),
                "isFailed": self.status == FAILED and i == len(started) - 1,
                "beganAt": fmt_time(self.began_at),
                "finishedRecords": 0,
                "message": "",
            }
            for i, n in enumerate(started)
        ]
        keys = (
            "id",
            "pipelineId",
            "plugin",
            "options",
            "status",
            "failedSubTask",
            "message",
            "errorName",
            "spentSeconds",
            "beganAt",
            "finishedAt",
        )
        task = self.as_json(now)
        return {k: task[k] for k in keys} | {"subtaskDetails": details}


def _spent(began: float | None, finished: float | None) -> int:
    return int(finished - began) if began is not None and finished is not None else 0


@dataclass
class Pipeline:
    id: int
    name: str
    blueprint_id: int
    plan: list[list[dict[str, Any]]]
    labels: list[str]
    priority: int
    skip_on_fail: bool
    time_after: float | None
    skip_collectors: bool
    full_sync: bool
    created_at: float
    updated_at: float
    tasks: list[Task] = field(default_factory=list)  # every attempt, oldest first
    status: str = CREATED
    message: str = ""
    error_name: str = ""
    began_at: float | None = None
    finished_at: float | None = None
    stage: int = 0
    finished_tasks: int = 0
    ready_at: float = 0.0  # when the queue may start it (PICKUP_SECONDS after it was queued)
    cancel_at: float | None = None  # a cancelled running pipeline ends then

    @property
    def total_tasks(self) -> int:
        return sum(len(stage) for stage in self.plan)

    def latest_tasks(self) -> list[Task]:
        """The latest attempt of every plan cell, in plan order."""
        latest = {(t.row, t.col): t for t in self.tasks}
        return [latest[k] for k in sorted(latest)]

    def running_task(self) -> Task | None:
        return next((t for t in self.tasks if t.status == RUNNING), None)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "createdAt": fmt_time(self.created_at),
            "updatedAt": fmt_time(self.updated_at),
            "name": self.name,
            "blueprintId": self.blueprint_id,
            "plan": copy.deepcopy(self.plan),
            "totalTasks": self.total_tasks,
            "finishedTasks": self.finished_tasks,
            "beganAt": fmt_time(self.began_at),
            "finishedAt": fmt_time(self.finished_at),
            "status": self.status,
            "message": self.message,
            "errorName": self.error_name,
            "spentSeconds": _spent(self.began_at, self.finished_at),
            "stage": self.stage,
            "labels": list(self.labels),
            "priority": self.priority,
            "skipOnFail": self.skip_on_fail,
            "timeAfter": fmt_time(self.time_after),
            "skipCollectors": self.skip_collectors,
            "fullSync": self.full_sync,
        }


@dataclass
class PipelineScript:
    """How the sandbox plays a pipeline (set per pipeline, per blueprint or as the default)."""

    fail_at_task: int | None = None  # this task (1-based, in plan order) fails
    message: str = "sandbox: scripted task failure"
    partial: bool = False  # after the failure, run the other tasks and end TASK_PARTIAL
    task_seconds: float | None = None  # None: the settings' taskSeconds
    forever: bool = False  # the first task never ends
    succeed_on_rerun: bool = False  # a rerun attempt of the failing task completes


@dataclass
class Settings:
    """Sandbox knobs, changed through ``POST /_sandbox/devlake/settings``."""

    max_parallel: int = 1  # PIPELINE_MAX_PARALLEL
    task_seconds: float = 5.0
    remote_page_size: int | None = None  # None: each plugin's own (github/gitlab 100, jira 50)
    migration_pending: bool = False  # every non-public route answers 428
    html_mode: bool = False  # every route answers 200 with a proxy's HTML login page

    def as_json(self) -> dict[str, Any]:
        return {
            "maxParallel": self.max_parallel,
            "taskSeconds": self.task_seconds,
            "remotePageSize": self.remote_page_size,
            "migrationPending": self.migration_pending,
            "htmlMode": self.html_mode,
        }


class PipelineRunner:
    """Every pipeline and its simulation against the virtual clock.

    :meth:`advance` replays events in time order up to ``now``: a queued pipeline takes a free
    ``max_parallel`` slot, at the earliest ``PICKUP_SECONDS`` after it was queued (highest priority
    first, then lowest id); a running one ends its current task and starts the next, or finishes.
    Only queued and running pipelines are looked at, so many finished pipelines cost nothing.
    """

    def __init__(self, settings: Settings, now: float) -> None:
        self.settings = settings
        self.pipelines: dict[int, Pipeline] = {}
        self.queued: dict[int, Pipeline] = {}
        self.running: dict[int, Pipeline] = {}
        self.scripts: dict[tuple[str, int], PipelineScript] = {}  # ("pipeline"|"blueprint"|"default", id)
        self.cursor = now  # simulated up to here
        self._next_pipeline_id = 1
        self._next_task_id = 1

    # -- creation and lookup -------------------------------------------------------------------
    def create(
        self,
        now: float,
        name: str,
        blueprint_id: int,
        plan: list[list[dict[str, Any]]],
        labels: list[str],
        priority: int,
        skip_on_fail: bool,
        time_after: float | None,
        skip_collectors: bool = False,
        full_sync: bool = False,
    ) -> Pipeline:
        pipeline = Pipeline(
            self._next_pipeline_id,
            name,
            blueprint_id,
            copy.deepcopy(plan),
            list(labels),
            priority,
            skip_on_fail,
            time_after,
            skip_collectors,
            full_sync,
            now,
            now,
        )
        self._next_pipeline_id += 1
        cells = [(row, col, cell) for row, stage in enumerate(plan, 1) for col, cell in enumerate(stage, 1)]
        for number, (row, col, cell) in enumerate(cells, 1):
            self._add_task(pipeline, row, col, number, 1, cell, now)
        self.pipelines[pipeline.id] = pipeline
        self._enqueue(pipeline, now)
        return pipeline

    def _add_task(
        self, pipeline: Pipeline, row: int, col: int, number: int, attempt: int, cell: dict[str, Any], now: float
    ) -> Task:
        task = Task(
            self._next_task_id,
            pipeline.id,
            row,
            col,
            number,
            attempt,
            str(cell.get("plugin", "")),
            copy.deepcopy(cell.get("subtasks")),
            copy.deepcopy(cell.get("options") or {}),
            now,
            now,
        )
        self._next_task_id += 1
        pipeline.tasks.append(task)
        return task

    def _enqueue(self, pipeline: Pipeline, now: float) -> None:
        pipeline.ready_at = now + PICKUP_SECONDS
        self.queued[pipeline.id] = pipeline

    def script_for(self, pipeline: Pipeline) -> PipelineScript:
        keys = [("pipeline", pipeline.id), ("blueprint", pipeline.blueprint_id), ("default", 0)]
        return next((self.scripts[k] for k in keys if k in self.scripts), PipelineScript())

    # -- simulation ----------------------------------------------------------------------------
    def advance(self, now: float) -> None:
        while True:
            start_at = self._next_start_at()
            stepping = min(self.running.values(), key=self._event_at, default=None)
            event_at = self._event_at(stepping) if stepping else math.inf
            at = min(start_at, event_at)
            if at > now:
                break
            self.cursor = max(self.cursor, at)
            if start_at <= event_at:
                self._start(
                    min(
                        (p for p in self.queued.values() if p.ready_at <= self.cursor),
                        key=lambda p: (-p.priority, p.id),
                    )
                )
            elif stepping is not None:
                self._step(stepping)
        self.cursor = max(self.cursor, now)

    def _next_start_at(self) -> float:
        if len(self.running) >= self.settings.max_parallel or not self.queued:
            return math.inf
        return max(self.cursor, min(p.ready_at for p in self.queued.values()))

    @staticmethod
    def _event_at(pipeline: Pipeline) -> float:
        if pipeline.cancel_at is not None:
            return pipeline.cancel_at
        task = pipeline.running_task()
        return task.ends_at if task else math.inf

    def _start(self, pipeline: Pipeline) -> None:
        del self.queued[pipeline.id]
        self.running[pipeline.id] = pipeline
        pipeline.status, pipeline.message, pipeline.error_name = RUNNING, "", ""
        pipeline.began_at, pipeline.finished_at, pipeline.updated_at = self.cursor, None, self.cursor
        self._start_task(pipeline, next(t for t in pipeline.latest_tasks() if t.status == CREATED))

    def _start_task(self, pipeline: Pipeline, task: Task) -> None:
        script = self.script_for(pipeline)
        seconds = script.task_seconds if script.task_seconds is not None else self.settings.task_seconds
        task.status, task.began_at, task.updated_at = RUNNING, self.cursor, self.cursor
        task.ends_at = math.inf if script.forever else self.cursor + seconds
        task.fails = script.fail_at_task == task.number and not (task.attempt > 1 and script.succeed_on_rerun)
        pipeline.stage, pipeline.updated_at = task.row, self.cursor

    def _step(self, pipeline: Pipeline) -> None:
        """The pipeline's next event: its cancellation completes, or its running task ends."""
        if pipeline.cancel_at is not None:
            self._finish(pipeline, CANCELLED)
            return
        task = pipeline.running_task()
        assert task is not None
        script = self.script_for(pipeline)
        task.finished_at = task.updated_at = self.cursor
        pipeline.finished_tasks += 1
        if task.fails:
            task.status, task.failed_subtask, task.message = FAILED, task.subtask_names()[0], script.message
            task.error_name = f"{script.message}\n\tWraps: subtask {task.failed_subtask} ended unexpectedly"
            if not (pipeline.skip_on_fail or script.partial):
                self._finish(pipeline, FAILED)
                return
        else:
            task.status = COMPLETED
        following = next((t for t in pipeline.latest_tasks() if t.status == CREATED), None)
        if following is not None:
            self._start_task(pipeline, following)
            return
        latest = {t.status for t in pipeline.latest_tasks()}
        self._finish(pipeline, (PARTIAL if COMPLETED in latest else FAILED) if FAILED in latest else COMPLETED)

    def _finish(self, pipeline: Pipeline, status: str) -> None:
        self.running.pop(pipeline.id, None)
        pipeline.status, pipeline.cancel_at = status, None
        pipeline.finished_at = pipeline.updated_at = self.cursor
        failed = next((t for t in pipeline.latest_tasks() if t.status == FAILED), None)
        if status in (FAILED, PARTIAL) and failed is not None:
            pipeline.message, pipeline.error_name = failed.message, failed.error_name

    # -- operations ----------------------------------------------------------------------------
    def cancel(self, pipeline: Pipeline, now: float) -> None:
        """Queued (or status forced): cancelled at once. Running: tasks cancelled now, the pipeline
        reaches TASK_CANCELLED ``CANCEL_SECONDS`` later. Finished: nothing happens."""
        if pipeline.status in TERMINAL:
            return
        for task in pipeline.tasks:
            if task.status in (CREATED, RUNNING):
                task.finished_at = now if task.status == RUNNING else None
                task.status, task.updated_at = CANCELLED, now
        pipeline.updated_at = now
        if pipeline.id in self.running:
            pipeline.cancel_at = now + CANCEL_SECONDS
            return
        self.queued.pop(pipeline.id, None)
        pipeline.status, pipeline.finished_at = CANCELLED, now

    def rerun(self, pipeline: Pipeline, now: float) -> list[Task]:
        """New attempts of every cell whose latest attempt did not complete; the pipeline re-queues."""
        if pipeline.status == RUNNING:
            raise DevLakeError(400, "pipeline is running")
        if pipeline.status in QUEUED:
            raise DevLakeError(400, "pipeline is waiting to run")
        todo = [t for t in pipeline.latest_tasks() if t.status != COMPLETED]
        if not todo:
            raise DevLakeError(400, "no tasks to be re-ran")
        added = [
            self._add_task(
                pipeline,
                t.row,
                t.col,
                t.number,
                t.attempt + 1,
                {"plugin": t.plugin, "subtasks": t.subtasks, "options": t.options},
                now,
            )
            for t in todo
        ]
        pipeline.status, pipeline.updated_at = RERUN, now
        self._enqueue(pipeline, now)
        return added

    def force_status(self, pipeline: Pipeline, status: str, now: float) -> None:
        """Set any status (TASK_RESUME, an unknown value ...); the simulation then leaves it alone."""
        self.queued.pop(pipeline.id, None)
        self.running.pop(pipeline.id, None)
        pipeline.status, pipeline.cancel_at, pipeline.updated_at = status, None, now

    def delete(self, pipeline: Pipeline) -> None:
        for table in (self.pipelines, self.queued, self.running):
            table.pop(pipeline.id, None)


# ---- the state ------------------------------------------------------------------------------------


def _ci_lookup(item: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    """(present, value) of ``key`` matched case-insensitively, as mapstructure decodes."""
    for k, v in item.items():
        if k.lower() == key.lower():
            return True, v
    return False, None


def _name_field(body: Mapping[str, Any], max_len: int, what: str = "name") -> str:
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise DevLakeError(400, f"{what} is required")
    if len(name) > max_len:
        raise DevLakeError(400, f"{what} is too long: at most {max_len} characters")
    return name


class DevLakeState:
    """One sandbox DevLake: seeded connections with remote trees, and what clients create."""

    def __init__(self, seed: int, sandbox: Any) -> None:
        self.seed = seed
        self._sandbox = sandbox  # read for its clock, which a sandbox reset replaces
        self.settings = Settings()
        self.runner = PipelineRunner(self.settings, self.now())
        self.connections: dict[str, dict[int, Connection]] = {p: {} for p in DATA_SOURCES}
        self.scope_configs: dict[str, dict[int, ScopeConfig]] = {p: {} for p in DATA_SOURCES}
        self.scopes: dict[tuple[str, int], dict[str, Scope]] = {}
        self.projects: dict[str, Project] = {}
        self.blueprints: dict[int, Blueprint] = {}
        self.webhooks: dict[int, WebhookConnection] = {}
        self.api_keys: dict[int, ApiKey] = {}
        self._last_ids: dict[str, int] = {}
        self.bulk_generated = 0
        for seeded in remote.seeded_connections(seed):
            fields = {"name": seeded.name} | CONNECTION_DEFAULTS[seeded.plugin] | seeded.fields
            self._store_connection(seeded.plugin, fields, seeded.tree)

    def now(self) -> float:
        return float(self._sandbox.clock.now())

    def advance(self) -> None:
        """Bring the pipelines up to the clock's now (called at the start of every request)."""
        self.runner.advance(self.now())

    def _new_id(self, table: str) -> int:
        self._last_ids[table] = self._last_ids.get(table, 0) + 1
        return self._last_ids[table]

    # -- plugins -------------------------------------------------------------------------------
    @staticmethod
    def plugins() -> list[dict[str, Any]]:
        def metric(name: str) -> dict[str, Any]:
            return {"requiredDataEntities": None, "runAfter": None, "isProjectMetric": name in PROJECT_METRICS}

        return [{"plugin": name, "metric": metric(name)} for name in (*DATA_SOURCES, "webhook", *HELPER_PLUGINS)]

    @staticmethod
    def require_data_source(plugin: str) -> None:
        """Plugins outside :data:`DATA_SOURCES` have no such routes: gin's 404."""
        if plugin not in DATA_SOURCES:
            raise NoRoute()

    # -- connections ---------------------------------------------------------------------------
    def connection(self, plugin: str, connection_id: int) -> Connection:
        self.require_data_source(plugin)
        found = self.connections[plugin].get(connection_id)
        if found is None:
            raise DevLakeError(404, f"could not find {plugin} connection {connection_id} (404)")
        return found

    def list_connections(self, plugin: str) -> list[dict[str, Any]]:
        self.require_data_source(plugin)
        return [c.as_json() for c in self.connections[plugin].values()]

    def create_connection(self, plugin: str, body: Mapping[str, Any]) -> dict[str, Any]:
        self.require_data_source(plugin)
        fields = self._connection_fields(plugin, CONNECTION_DEFAULTS[plugin], body, None)
        return self._store_connection(plugin, fields, remote.RemoteTree(plugin)).as_json()

    def update_connection(self, plugin: str, connection_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        conn = self.connection(plugin, connection_id)
        conn.fields = self._connection_fields(plugin, conn.fields, body, conn.id)
        conn.updated_at = self.now()
        return conn.as_json()

    def delete_connection(self, plugin: str, connection_id: int) -> dict[str, Any]:
        conn = self.connection(plugin, connection_id)
        users = [
            bp
            for bp in self.blueprints.values()
            if any(c["pluginName"] == plugin and c["connectionId"] == conn.id for c in bp.connections)
        ]
        if users:
            raise DevLakeError(
                409,
                "This connection is used by blueprints or projects; remove it from them first.",
                self._references(users),
            )
        if self.scopes.get((plugin, conn.id)):
            raise DevLakeError(409, "Please delete all data scope(s) before you delete this Data Connection.")
        self._no_running_pipeline()
        del self.connections[plugin][conn.id]
        return conn.as_json()

    def _store_connection(self, plugin: str, fields: dict[str, Any], tree: remote.RemoteTree) -> Connection:
        now = self.now()
        conn = Connection(plugin, self._new_id(f"{plugin}_connections"), fields, now, now, tree)
        self.connections[plugin][conn.id] = conn
        return conn

    def _connection_fields(
        self, plugin: str, base: Mapping[str, Any], body: Mapping[str, Any], own_id: int | None
    ) -> dict[str, Any]:
        """Merge the known columns of ``body`` over ``base``; name required, unique, at most 100."""
        merged = dict(base) | {k: v for k, v in body.items() if k in CONNECTION_DEFAULTS[plugin] or k == "name"}
        name = _name_field(merged, 100)
        if plugin != "azuredevops_go" and not merged.get("endpoint"):
            raise DevLakeError(400, "endpoint is required")
        if any(c.name == name and c.id != own_id for c in self.connections[plugin].values()):
            raise DevLakeError(500, DUPLICATE_NAME)  # DevLake maps every duplicate key to this message
        return {"name": name} | {k: v for k, v in merged.items() if k != "name"}

    def _no_running_pipeline(self) -> None:
        if any(p.status == RUNNING for p in self.runner.pipelines.values()):
            raise DevLakeError(409, "at least one pipeline is running")

    def _references(self, blueprints: list[Blueprint]) -> dict[str, list[str]]:
        return {
            "blueprints": [bp.name for bp in blueprints],
            "projects": [bp.project_name for bp in blueprints if bp.project_name],
        }

    # -- remote scopes -------------------------------------------------------------------------
    def _remote_tree(self, plugin: str, connection_id: int) -> remote.RemoteTree:
        tree = self.connection(plugin, connection_id).tree
        if tree.failure is not None:
            raise DevLakeError(*tree.failure)
        return tree

    def remote_scopes(
        self, plugin: str, connection_id: int, group_id: str | None, page_token: str | None
    ) -> dict[str, Any]:
        tree = self._remote_tree(plugin, connection_id)
        try:
            children, next_token = remote.list_remote(tree, group_id, page_token or "", self.settings.remote_page_size)
        except remote.TokenError as exc:
            raise DevLakeError(exc.status, str(exc)) from exc
        return {"children": children, "nextPageToken": next_token}

    def search_remote_scopes(self, plugin: str, connection_id: int, query: Mapping[str, str]) -> dict[str, Any]:
        tree = self._remote_tree(plugin, connection_id)
        search = query.get("search")
        if not search:
            raise DevLakeError(400, "search is required")
        page, size = page_args(query, 50)
        return {"children": remote.search_remote(tree, search, page, size), "page": page, "pageSize": size}

    # -- scopes --------------------------------------------------------------------------------
    def put_scopes(self, plugin: str, connection_id: int, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Batch upsert by scope id; a re-PUT overwrites every column (scopeConfigId too)."""
        self.connection(plugin, connection_id)
        rows = body.get("data")
        if not isinstance(rows, list):
            raise DevLakeError(400, "invalid data")
        if not all(isinstance(row, dict) for row in rows):
            raise DevLakeError(400, "invalid data row")
        decoded = []
        for n, row in enumerate(rows):
            columns = remote.decode_scope(plugin, row)
            config_id = _ci_lookup(row, "scopeConfigId")[1] or 0
            if columns is None or isinstance(config_id, bool) or not isinstance(config_id, int):
                raise DevLakeError(400, f"failed to save item {n}")
            decoded.append((columns, config_id))
        table = self.scopes.setdefault((plugin, connection_id), {})
        now, saved = self.now(), []
        for columns, config_id in decoded:
            old = table.get(remote.scope_id_of(plugin, columns))
            scope = Scope(plugin, connection_id, columns, config_id, old.created_at if old else now, now)
            table[scope.id] = scope
            saved.append(scope.as_json())
        return saved

    def list_scopes(self, plugin: str, connection_id: int, query: Mapping[str, str]) -> dict[str, Any]:
        self.connection(plugin, connection_id)
        page, size = page_args(query, 100, max_size=1000)
        with_blueprints = bool(bool_param(query, "blueprints"))
        scopes = list(self.scopes.get((plugin, connection_id), {}).values())
        term, column = query.get("searchTerm"), remote.SEARCH_FIELD[plugin]
        if term and column:
            scopes = [s for s in scopes if term.lower() in str(s.data.get(column, "")).lower()]
        return {
            "count": len(scopes),
            "scopes": [self._scope_item(s, with_blueprints) for s in paginate(scopes, page, size)],
        }

    def scope(self, plugin: str, connection_id: int, scope_id: str) -> Scope:
        self.connection(plugin, connection_id)
        found = self.scopes.get((plugin, connection_id), {}).get(scope_id)
        if found is None:
            raise DevLakeError(404, f"could not find {plugin} scope {scope_id} (404)")
        return found

    def get_scope(self, plugin: str, connection_id: int, scope_id: str, query: Mapping[str, str]) -> dict[str, Any]:
        return self._scope_item(self.scope(plugin, connection_id, scope_id), bool(bool_param(query, "blueprints")))

    def patch_scope(self, plugin: str, connection_id: int, scope_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Decode ``body`` over the stored scope: missing keys kept, explicit null zeroes."""
        scope = self.scope(plugin, connection_id, scope_id)
        id_field = remote.SCOPE_ID_FIELD[plugin]
        columns = remote.decode_scope(
            plugin, {k: v for k, v in body.items() if k.lower() != id_field.lower()}, scope.data
        )
        present, config_id = _ci_lookup(body, "scopeConfigId")
        if columns is None or (
            config_id is not None and (isinstance(config_id, bool) or not isinstance(config_id, int))
        ):
            raise DevLakeError(400, "invalid scope")
        scope.data = columns
        if present:
            scope.scope_config_id = config_id or 0
        scope.updated_at = self.now()
        return scope.as_json()

    def delete_scope(self, plugin: str, connection_id: int, scope_id: str, data_only: bool) -> dict[str, Any]:
        scope = self.scope(plugin, connection_id, scope_id)
        users = self._blueprints_using(plugin, connection_id, scope.id)
        if users:
            raise DevLakeError(
                409,
                "This data scope is used by blueprints or projects; remove it from them first.",
                self._references(users),
            )
        self._no_running_pipeline()
        if not data_only:
            del self.scopes[(plugin, connection_id)][scope.id]
        return scope.as_json()

    def _blueprints_using(self, plugin: str, connection_id: int, scope_id: str) -> list[Blueprint]:
        return [bp for bp in self.blueprints.values() if (plugin, connection_id, scope_id) in bp.scope_refs()]

    def _scope_item(self, scope: Scope, with_blueprints: bool) -> dict[str, Any]:
        item: dict[str, Any] = {"scope": scope.as_json()}
        config = self.scope_configs[scope.plugin].get(scope.scope_config_id)
        if config is not None:
            item["scopeConfig"] = config.as_json()
        if with_blueprints:
            item["blueprints"] = [
                bp.as_json(with_plan=False)
                for bp in self._blueprints_using(scope.plugin, scope.connection_id, scope.id)
            ]
        return item

    # -- scope configs -------------------------------------------------------------------------
    def list_scope_configs(self, plugin: str, connection_id: int) -> list[dict[str, Any]]:
        self.connection(plugin, connection_id)
        configs = [c for c in self.scope_configs[plugin].values() if c.connection_id == connection_id]
        return [c.as_json() for c in sorted(configs, key=lambda c: -c.id)]

    def create_scope_config(self, plugin: str, connection_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        self.connection(plugin, connection_id)
        now = self.now()
        config = ScopeConfig(plugin, self._new_id(f"{plugin}_scope_configs"), connection_id, "", [], {}, now, now)
        self._apply_scope_config(config, body)
        self.scope_configs[plugin][config.id] = config
        return config.as_json()

    def scope_config(self, plugin: str, config_id: int) -> ScopeConfig:
        """By id only: the connection in the path is not checked (as in DevLake)."""
        self.require_data_source(plugin)
        found = self.scope_configs[plugin].get(config_id)
        if found is None:
            raise DevLakeError(404, f"could not find {plugin} scope config {config_id} (404)")
        return found

    def update_scope_config(self, plugin: str, config_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        config = self.scope_config(plugin, config_id)
        self._apply_scope_config(config, {"name": config.name, "entities": config.entities} | dict(body))
        config.updated_at = self.now()
        return config.as_json()

    def delete_scope_config(self, plugin: str, config_id: int) -> dict[str, Any]:
        config = self.scope_config(plugin, config_id)
        users = [
            s.as_json()
            for (p, _), table in self.scopes.items()
            if p == plugin
            for s in table.values()
            if s.scope_config_id == config.id
        ]
        if users:
            raise DevLakeError(409, "Please delete all data scope(s) before you delete this ScopeConfig.", users)
        del self.scope_configs[plugin][config.id]
        return config.as_json()

    def _apply_scope_config(self, config: ScopeConfig, body: Mapping[str, Any]) -> None:
        """Name required (at most 255, unique across the plugin's table), entities, flat fields."""
        name = _name_field(body, 255)
        if any(c.name == name and c.id != config.id for c in self.scope_configs[config.plugin].values()):
            raise DevLakeError(500, DUPLICATE_NAME)
        entities = _typed(body, "entities", list, [])
        config.name, config.entities = name, [str(e) for e in entities]
        reserved = {"id", "name", "entities", "connectionId", "createdAt", "updatedAt"}
        config.fields |= {k: copy.deepcopy(v) for k, v in body.items() if k not in reserved}

    # -- webhook connections -------------------------------------------------------------------
    def create_webhook(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A webhook connection and its API key, whose plaintext is in this answer only."""
        name = _name_field(body, 100)
        if any(w.name == name for w in self.webhooks.values()):
            raise DevLakeError(400, f"A webhook with name {name} already exists.")
        hook_id, now = self._new_id("webhook_connections"), self.now()
        key, plaintext = self._store_api_key(
            f"webhook-{hook_id}",
            "plugin:webhook",
            f"/plugins/webhook/connections/{hook_id}/.*",
            None,
            f"connectionId:{hook_id}",
        )
        hook = WebhookConnection(hook_id, name, key, now, now)
        self.webhooks[hook_id] = hook
        return hook.as_json(plaintext)

    def list_webhooks(self) -> list[dict[str, Any]]:
        return [w.as_json() for w in self.webhooks.values()]

    def webhook(self, ref: str, by_name: bool) -> WebhookConnection:
        found = (
            next((w for w in self.webhooks.values() if w.name == ref), None)
            if by_name
            else self.webhooks.get(int_id(ref, "connectionId"))
        )
        if found is None:
            raise DevLakeError(404, f"could not find webhook connection {ref} (404)")
        return found

    def update_webhook(self, ref: str, by_name: bool, body: Mapping[str, Any]) -> dict[str, Any]:
        hook = self.webhook(ref, by_name)
        name = _name_field({"name": hook.name} | dict(body), 100)
        if any(w.name == name and w.id != hook.id for w in self.webhooks.values()):
            raise DevLakeError(400, f"A webhook with name {name} already exists.")
        hook.name, hook.updated_at = name, self.now()
        return hook.as_json()

    def delete_webhook(self, ref: str, by_name: bool) -> dict[str, Any]:
        """Deletes the connection and its key; blueprints still naming it are not checked."""
        hook = self.webhook(ref, by_name)
        del self.webhooks[hook.id]
        self.api_keys.pop(hook.api_key.id, None)
        return hook.as_json()

    # -- API keys ------------------------------------------------------------------------------
    def _new_secret(self) -> tuple[str, str]:
        """(plaintext, digest) of a fresh key, deterministic from the seed."""
        plaintext = hashlib.sha256(
            f"devlake-sandbox-key-{self.seed}-{self._new_id('key_secrets')}".encode()
        ).hexdigest()
        return plaintext, hashlib.sha256(plaintext.encode()).hexdigest()

    def _store_api_key(
        self, name: str, key_type: str, allowed_path: str, expired_at: float | None, extra: str = ""
    ) -> tuple[ApiKey, str]:
        plaintext, digest = self._new_secret()
        now = self.now()
        key = ApiKey(self._new_id("api_keys"), name, key_type, allowed_path, expired_at, extra, digest, now, now)
        self.api_keys[key.id] = key
        return key, plaintext

    def create_api_key(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = _name_field(body, 255)
        if any(k.name == name for k in self.api_keys.values()):
            raise DevLakeError(400, f"api key name {name} already exists")
        key_type, allowed_path = body.get("type"), body.get("allowedPath")
        if not isinstance(key_type, str) or not key_type:
            raise DevLakeError(400, "type is required")
        if not isinstance(allowed_path, str) or not allowed_path:
            raise DevLakeError(400, "allowedPath is required")
        try:
            re.compile(allowed_path)
        except re.error as exc:
            raise DevLakeError(400, f"invalid allowedPath: {exc}") from exc
        key, plaintext = self._store_api_key(
            name, key_type, allowed_path, parse_time(body.get("expiredAt"), strict=True)
        )
        return key.as_json(plaintext)

    def list_api_keys(self, query: Mapping[str, str]) -> dict[str, Any]:
        page, size = page_args(query, 50, empty=True)
        keys = [k for k in self.api_keys.values() if k.type == "devlake"]
        return {"apikeys": [k.as_json() for k in paginate(keys, page, size)], "count": len(keys)}

    def api_key(self, key_id: int) -> ApiKey:
        found = self.api_keys.get(key_id)
        if found is None:
            raise DevLakeError(404, f"could not find api key {key_id} (404)")
        return found

    def regenerate_api_key(self, key_id: int) -> dict[str, Any]:
        key = self.api_key(key_id)
        plaintext, key.digest = self._new_secret()
        key.updated_at = self.now()
        return key.as_json(plaintext)

    def delete_api_key(self, key_id: int) -> None:
        del self.api_keys[self.api_key(key_id).id]

    def check_api_key(self, authorization: str | None, path: str) -> tuple[int, str] | None:
        """None when the Bearer key may call ``path`` (below ``/rest``), else (status, message)."""
        if not authorization:
            return 401, "token is missing"
        scheme, _, token = authorization.partition(" ")
        if scheme != "Bearer" or not token.strip():
            return 401, "token is not present or malformed"
        digest = hashlib.sha256(token.strip().encode()).hexdigest()
        key = next((k for k in self.api_keys.values() if k.digest == digest), None)
        if key is None:
            return 403, "api key is invalid"
        if key.expired_at is not None and key.expired_at < self.now():
            return 403, "api key has expired"
        if not re.search(key.allowed_path, path):
            return 403, "path doesn't match api key's scope"
        return None

    # -- projects ------------------------------------------------------------------------------
    def project(self, name: str) -> Project:
        found = self.projects.get(name)
        if found is None:
            raise DevLakeError(404, f"could not find project [{name}] in DB (404)")
        return found

    def project_blueprint(self, name: str) -> Blueprint | None:
        return next((bp for bp in self.blueprints.values() if bp.project_name == name), None)

    def project_json(self, project: Project, with_last_pipeline: bool = False) -> dict[str, Any]:
        blueprint = self.project_blueprint(project.name)
        out = {
            "name": project.name,
            "description": project.description,
            "createdAt": fmt_time(project.created_at),
            "updatedAt": fmt_time(project.updated_at),
            **_raw_data_fields(),
            "metrics": copy.deepcopy(project.metrics) or None,
            "blueprint": blueprint.as_json() if blueprint else None,
        }
        last = next(iter(self._pipelines_of(blueprint.id)), None) if blueprint and with_last_pipeline else None
        return out | ({"lastPipeline": last.as_json()} if last else {})

    def list_projects(self, query: Mapping[str, str]) -> dict[str, Any]:
        page, size = page_args(query, 50, empty=True)
        keyword = (query.get("keyword") or "").lower()
        found = sorted((p for p in self.projects.values() if keyword in p.name.lower()), key=lambda p: -p.seq)
        return {
            "projects": [self.project_json(p, with_last_pipeline=True) for p in paginate(found, page, size)],
            "count": len(found),
        }

    def create_project(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The project and its auto blueprint (§6). A ``blueprint`` in the body is inserted as-is
        instead, without its connections and without a plan (#7650)."""
        name = _name_field(body, 100, "project name")
        if name in self.projects:
            raise DevLakeError(400, f"A project with name [{name}] already exists")
        now = self.now()
        supplied = body.get("blueprint")
        if isinstance(supplied, dict):
            blueprint = replace(
                self._blueprint_from_body(supplied, self._blank_blueprint(now), strict_time=True), connections=[]
            )
        else:
            blueprint = replace(
                self._blank_blueprint(now),
                name=f"{name}-Blueprint",
                project_name=name,
                mode="NORMAL",
                plan=[],
                enable=True,
                cron_config="0 0 * * *",
                time_after=six_months_before(now),
            )
        project = Project(
            name,
            _typed(body, "description", str, ""),
            self._metrics(body.get("metrics")),
            now,
            now,
            self._new_id("projects"),
        )
        self.projects[name] = project
        self._store_blueprint(blueprint)
        return self.project_json(project)

    def update_project(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Rename (cascading to the blueprint), description (cleared when omitted), metrics
        (replaced when non-empty)."""
        project = self.project(name)
        new_name = _name_field({"name": project.name} | dict(body), 100, "project name")
        if new_name != project.name and new_name in self.projects:
            raise DevLakeError(400, f"A project with name [{new_name}] already exists")
        metrics = self._metrics(body.get("metrics"))
        blueprint = self.project_blueprint(project.name)
        del self.projects[project.name]
        project.name, project.description = new_name, _typed(body, "description", str, "")
        project.metrics = metrics or project.metrics
        project.updated_at = self.now()
        self.projects[new_name] = project
        if blueprint is not None:
            blueprint.project_name = new_name
        return self.project_json(project)

    def delete_project(self, name: str) -> None:
        """Deletes the project and its blueprint; connections, scopes and pipelines stay."""
        project = self.project(name)
        blueprint = self.project_blueprint(name)
        if blueprint is not None and any(p.status not in TERMINAL for p in self._pipelines_of(blueprint.id)):
            raise DevLakeError(500, "There are unfinished pipelines in the current project. It can not be deleted now.")
        del self.projects[project.name]
        if blueprint is not None:
            del self.blueprints[blueprint.id]

    @staticmethod
    def _metrics(raw: Any) -> list[dict[str, Any]]:
        if raw is None:
            return []
        if not isinstance(raw, list) or not all(
            isinstance(m, dict) and isinstance(m.get("pluginName"), str) for m in raw
        ):
            raise DevLakeError(400, "invalid metrics: want [{pluginName, pluginOption, enable}]")
        return [
            {
                "pluginName": m["pluginName"],
                "pluginOption": copy.deepcopy(m.get("pluginOption")),
                "enable": bool(m.get("enable")),
            }
            for m in raw
        ]

    # -- blueprints ----------------------------------------------------------------------------
    def blueprint(self, blueprint_id: int) -> Blueprint:
        found = self.blueprints.get(blueprint_id)
        if found is None:
            raise DevLakeError(404, "blueprint not found")
        return found

    def list_blueprints(self, query: Mapping[str, str]) -> dict[str, Any]:
        page, size = page_args(query, 50, empty=True)
        enable, is_manual = bool_param(query, "enable", empty=True), bool_param(query, "isManual", empty=True)
        label, kind = query.get("label"), (query.get("type") or "ALL").upper()
        schedules = {"DAILY": "0 0 * * *", "WEEKLY": "0 0 * * 1", "MONTHLY": "0 0 1 * *"}
        if is_manual is None and kind not in ("ALL", "MANUAL", "CUSTOM", *schedules):
            raise DevLakeError(400, f"invalid type {kind}", empty=True)

        def wanted(bp: Blueprint) -> bool:
            if (enable is not None and bp.enable != enable) or (label and label not in bp.labels):
                return False
            if is_manual is not None:
                return bp.is_manual == is_manual
            if kind == "MANUAL":
                return bp.is_manual
            if kind in schedules:
                return not bp.is_manual and bp.cron_config == schedules[kind]
            return kind == "ALL" or (not bp.is_manual and bp.cron_config not in schedules.values())

        found = [bp for bp in sorted(self.blueprints.values(), key=lambda b: -b.id) if wanted(bp)]
        return {"blueprints": [bp.as_json() for bp in paginate(found, page, size)], "count": len(found)}

    def create_blueprint(self, body: Mapping[str, Any]) -> dict[str, Any]:
        blueprint = self._blueprint_from_body(body, self._blank_blueprint(self.now()), strict_time=True)
        self._validate(blueprint)
        return self._store_blueprint(blueprint).as_json()

    def update_blueprint(self, blueprint_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        """Partial update; ``connections`` replaces the list; skipCollectors/fullSync are ignored (#8687)."""
        current = self.blueprint(blueprint_id)
        if "mode" in body and body["mode"] != current.mode:
            raise DevLakeError(500, "mode is not updatable")
        patch = {k: v for k, v in body.items() if k not in ("skipCollectors", "fullSync")}
        blueprint = self._blueprint_from_body(patch, current, strict_time=False)
        self._validate(blueprint)
        blueprint.updated_at = self.now()
        self.blueprints[blueprint_id] = blueprint
        return blueprint.as_json()

    def delete_blueprint(self, blueprint_id: int) -> None:
        blueprint = self.blueprint(blueprint_id)
        if any(p.status not in TERMINAL for p in self._pipelines_of(blueprint.id)):
            raise DevLakeError(
                500, "There are unfinished pipelines in the current blueprint. It can not be deleted now."
            )
        del self.blueprints[blueprint.id]

    def trigger(self, blueprint_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        """A pipeline in TASK_CREATED from the blueprint's (regenerated) plan."""
        blueprint = self.blueprint(blueprint_id)
        if not blueprint.enable:
            raise DevLakeError(400, "blueprint is not enabled")
        if any(p.status in BLOCKS_TRIGGER for p in self._pipelines_of(blueprint.id)):
            raise DevLakeError(400, "there are pending pipelines of current blueprint already")
        plan = _check_plan(blueprint.plan) if blueprint.mode == "ADVANCED" else self._make_plan(blueprint, 500)
        skip_collectors, full_sync = _typed(body, "skipCollectors", bool, False), _typed(body, "fullSync", bool, False)
        if skip_collectors:
            plan = _strip_collectors(plan)
        if not any(plan):
            raise DevLakeError(400, "no task to run")
        pipeline = self.runner.create(
            self.now(),
            blueprint.name,
            blueprint.id,
            plan,
            blueprint.labels,
            blueprint.priority,
            blueprint.skip_on_fail,
            blueprint.time_after,
            skip_collectors,
            full_sync,
        )
        return pipeline.as_json()

    def _store_blueprint(self, blueprint: Blueprint) -> Blueprint:
        blueprint.id = self._new_id("blueprints")
        self.blueprints[blueprint.id] = blueprint
        return blueprint

    @staticmethod
    def _blank_blueprint(now: float) -> Blueprint:
        return Blueprint(
            0, "", "", "", None, False, "", False, None, None, [], [], 0, False, None, False, False, now, now
        )

    def _blueprint_from_body(self, body: Mapping[str, Any], base: Blueprint, strict_time: bool) -> Blueprint:
        """A copy of ``base`` with the blueprint fields present in ``body`` (types checked)."""
        simple = {
            "name": ("name", str),
            "projectName": ("project_name", str),
            "mode": ("mode", str),
            "enable": ("enable", bool),
            "cronConfig": ("cron_config", str),
            "isManual": ("is_manual", bool),
            "labels": ("labels", list),
            "priority": ("priority", int),
            "skipOnFail": ("skip_on_fail", bool),
            "skipCollectors": ("skip_collectors", bool),
            "fullSync": ("full_sync", bool),
        }
        changes = {
            attr: _typed(body, key, kind, getattr(base, attr)) for key, (attr, kind) in simple.items() if key in body
        }
        changes |= {
            attr: copy.deepcopy(body[key])
            for key, attr in (("plan", "plan"), ("beforePlan", "before_plan"), ("afterPlan", "after_plan"))
            if key in body
        }
        if "connections" in body:
            changes["connections"] = _blueprint_connections(body["connections"])
        if "timeAfter" in body:
            changes["time_after"] = parse_time(body["timeAfter"], strict=strict_time)
        return replace(base, **changes)

    def _validate(self, blueprint: Blueprint) -> None:
        """Validation on create and patch (§7); sets isManual for cron "manual" and the NORMAL plan."""
        if not blueprint.name:
            raise DevLakeError(400, "name is required")
        if blueprint.mode not in ("NORMAL", "ADVANCED"):
            raise DevLakeError(400, "mode must be NORMAL or ADVANCED")
        if blueprint.project_name:
            if blueprint.project_name not in self.projects:
                raise DevLakeError(400, f"invalid projectName: [{blueprint.project_name}] does not exist")
            owner = self.project_blueprint(blueprint.project_name)
            if owner is not None and owner.id != blueprint.id:
                raise DevLakeError(
                    400, "Each project can only be used by one blueprint. Please select another project."
                )
        if blueprint.cron_config.lower() == "manual":
            blueprint.is_manual = True
        if not blueprint.is_manual and not valid_cron(blueprint.cron_config):
            raise DevLakeError(400, f"invalid cronConfig: {blueprint.cron_config!r}")
        if blueprint.mode == "ADVANCED":
            if not any(_check_plan(blueprint.plan)):
                raise DevLakeError(400, "invalid plan: an ADVANCED blueprint needs a plan")
        else:
            blueprint.plan = self._make_plan(blueprint, 400)

    def _make_plan(self, blueprint: Blueprint, status: int) -> list[list[dict[str, Any]]]:
        """The NORMAL plan: project mapping, data-source tasks, gitextractor tasks, project metrics.

        Errors (an empty scope list, an unknown connection or scope) answer ``status``: 400 when
        saving, 500 when triggering.
        """
        if not blueprint.connections:
            return []
        sources: list[dict[str, Any]] = []
        extractors: list[dict[str, Any]] = []
        for i, ref in enumerate(blueprint.connections):
            plugin, connection_id = ref["pluginName"], ref["connectionId"]
            if plugin == "webhook":
                if connection_id not in self.webhooks:
                    raise DevLakeError(status, f"cannot find webhook connection {connection_id}")
                continue
            if plugin not in DATA_SOURCES:
                raise DevLakeError(status, f"plugin {plugin} does not support blueprint v2")
            if connection_id not in self.connections[plugin]:
                raise DevLakeError(status, f"cannot find {plugin} connection {connection_id}")
            if not ref["scopes"]:
                raise DevLakeError(status, f"connections[{i}].scopes is empty")
            for scope_ref in ref["scopes"]:
                scope = self.scopes.get((plugin, connection_id), {}).get(scope_ref["scopeId"])
                if scope is None:
                    raise DevLakeError(
                        status, f"cannot find {plugin} scope {scope_ref['scopeId']} of connection {connection_id}"
                    )
                options = {
                    "connectionId": connection_id,
                    remote.SCOPE_ID_FIELD[plugin]: scope.data[remote.SCOPE_ID_FIELD[plugin]],
                    "name": scope.name,
                    "scopeConfigId": scope.scope_config_id,
                }
                sources.append({"plugin": plugin, "subtasks": None, "options": options})
                if plugin in GIT_PLUGINS:
                    url = (
                        scope.data.get("cloneUrl")
                        or scope.data.get("httpUrlToRepo")
                        or scope.data.get("remoteUrl")
                        or ""
                    )
                    extractors.append(
                        {
                            "plugin": "gitextractor",
                            "subtasks": None,
                            "options": {
                                "repoId": f"{plugin}:{connection_id}:{scope.id}",
                                "name": scope.name,
                                "url": url,
                                "proxy": "",
                            },
                        }
                    )
        project = self.projects.get(blueprint.project_name)
        plan: list[list[dict[str, Any]]] = []
        if project is not None:
            mappings = [
                {"table": "scopes", "rowId": f"{p}:{c}:{s}"} for p, c, s in sorted(blueprint.scope_refs(), key=str)
            ]
            plan.append(
                [
                    {
                        "plugin": "org",
                        "subtasks": ["setProjectMapping"],
                        "options": {"projectMappings": [{"projectName": project.name, "scopes": mappings}]},
                    }
                ]
            )
        plan += [stage for stage in (sources, extractors) if stage]
        if project is not None and project.enabled_metrics():
            plan.append(
                [
                    {"plugin": m, "subtasks": None, "options": {"projectName": project.name}}
                    for m in project.enabled_metrics()
                ]
            )
        return plan

    # -- pipelines -----------------------------------------------------------------------------
    def pipeline(self, pipeline_id: int, status: int = 404) -> Pipeline:
        found = self.runner.pipelines.get(pipeline_id)
        if found is None:
            raise DevLakeError(status, "pipeline not found")
        return found

    def _pipelines_of(self, blueprint_id: int) -> list[Pipeline]:
        """The blueprint's pipelines, newest first."""
        return [p for p in reversed(self.runner.pipelines.values()) if p.blueprint_id == blueprint_id]

    def list_pipelines(self, query: Mapping[str, str], blueprint_id: int | None = None) -> dict[str, Any]:
        """``status``, ``pending``, ``blueprint_id`` (snake_case), ``label``, ``page``/``pageSize``."""
        page, size = page_args(query, 50)
        if blueprint_id is None and query.get("blueprint_id"):
            blueprint_id = int_id(query["blueprint_id"], "blueprint_id")
        pending = query.get("pending")
        if pending and not pending.lstrip("-").isdigit():
            raise DevLakeError(400, f"invalid pending: {pending!r}")
        status, label = query.get("status"), query.get("label")
        found = [
            p
            for p in reversed(self.runner.pipelines.values())
            if (blueprint_id is None or p.blueprint_id == blueprint_id)
            and (not status or p.status == status)
            and (not pending or int(pending) <= 0 or p.status not in TERMINAL)
            and (not label or label in p.labels)
        ]
        return {"count": len(found), "pipelines": [p.as_json() for p in paginate(found, page, size)]}

    def create_pipeline(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """An ad-hoc pipeline (``POST /pipelines``)."""
        plan = _check_plan(body.get("plan"))
        if not any(plan):
            raise DevLakeError(400, "no task to run")
        pipeline = self.runner.create(
            self.now(),
            _typed(body, "name", str, ""),
            _typed(body, "blueprintId", int, 0),
            plan,
            _typed(body, "labels", list, []),
            _typed(body, "priority", int, 0),
            _typed(body, "skipOnFail", bool, False),
            parse_time(body.get("timeAfter"), strict=True),
        )
        return pipeline.as_json()

    def cancel_pipeline(self, pipeline_id: int) -> None:
        self.runner.cancel(self.pipeline(pipeline_id, status=400), self.now())

    def rerun_pipeline(self, pipeline_id: int) -> list[dict[str, Any]]:
        now = self.now()
        return [t.as_json(now) for t in self.runner.rerun(self.pipeline(pipeline_id), now)]

    def pipeline_tasks(self, pipeline_id: int) -> dict[str, Any]:
        now, latest = self.now(), self.pipeline(pipeline_id).latest_tasks()
        return {"tasks": [t.as_json(now) for t in latest], "count": len(latest)}

    def pipeline_subtasks(self, pipeline_id: int) -> dict[str, Any]:
        pipeline, now = self.pipeline(pipeline_id), self.now()
        latest = pipeline.latest_tasks()
        total = sum(len(t.subtask_names()) for t in latest)
        done = sum(t.finished_subtasks(now) for t in latest)
        return {
            "subtasks": [t.subtask_json(now) for t in latest],
            "completionRate": done / total if total else 0.0,
            "status": pipeline.status,
            "count": len(latest),
        }

    # -- sandbox controls ----------------------------------------------------------------------
    def configure(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change :class:`Settings` fields (snake_case names)."""
        for key, value in changes.items():
            setattr(self.settings, key, value)
        return self.settings.as_json()

    def set_script(
        self, script: PipelineScript, blueprint_id: int | None = None, pipeline_id: int | None = None
    ) -> None:
        """Script one pipeline, every pipeline of a blueprint, or (neither given) every pipeline."""
        key = (
            ("pipeline", pipeline_id)
            if pipeline_id
            else ("blueprint", blueprint_id)
            if blueprint_id
            else ("default", 0)
        )
        self.runner.scripts[key] = script

    def clear_scripts(self) -> None:
        self.runner.scripts.clear()

    def add_remote_repo(self, plugin: str, connection_id: int, name: str, group_id: str | None) -> dict[str, Any]:
        """A new repository (jira: board) in the connection's remote tree; an unknown group is created."""
        return self.connection(plugin, connection_id).tree.add_repo(name, group_id).as_json()

    def fail_remote(self, plugin: str, connection_id: int, status: int | None, message: str) -> None:
        """Make the connection's remote-scopes and search calls answer ``status`` (None: stop)."""
        self.connection(plugin, connection_id).tree.failure = (status, message) if status else None

    def grow_remote(self, count: int) -> dict[str, int]:
        """Spread ``count`` generated repositories over every data-source connection's remote tree."""
        connections = [c for plugin in DATA_SOURCES for c in self.connections[plugin].values()]
        remote.grow([c.tree for c in connections], count, self.seed, self.bulk_generated + 1)
        self.bulk_generated += count
        return {f"{c.plugin}/{c.id}": len(c.tree.scopes) for c in connections}

    def force_pipeline_status(self, pipeline_id: int, status: str) -> dict[str, Any]:
        pipeline = self.pipeline(pipeline_id)
        self.runner.force_status(pipeline, status, self.now())
        return pipeline.as_json()

    def delete_pipeline(self, pipeline_id: int) -> None:
        self.runner.delete(self.pipeline(pipeline_id))

    def counts(self) -> dict[str, Any]:
        statuses: dict[str, int] = {}
        for pipeline in self.runner.pipelines.values():
            statuses[pipeline.status] = statuses.get(pipeline.status, 0) + 1
        return {
            "connections": {p: len(self.connections[p]) for p in DATA_SOURCES},
            "webhookConnections": len(self.webhooks),
            "projects": len(self.projects),
            "blueprints": len(self.blueprints),
            "scopes": sum(len(t) for t in self.scopes.values()),
            "scopeConfigs": sum(len(t) for t in self.scope_configs.values()),
            "apiKeys": len(self.api_keys),
            "pipelines": statuses,
            "pipelinesTotal": len(self.runner.pipelines),
        }

    def project_state(self, name: str) -> dict[str, Any]:
        project = self.project(name)
        return self._full_state(project, self.project_blueprint(name))

    def blueprint_state(self, blueprint_id: int) -> dict[str, Any]:
        blueprint = self.blueprint(blueprint_id)
        return self._full_state(self.projects.get(blueprint.project_name), blueprint)

    def _full_state(self, project: Project | None, blueprint: Blueprint | None) -> dict[str, Any]:
        """Project, blueprint, the scopes it references and its pipelines with every task attempt."""
        now = self.now()
        refs = sorted(blueprint.scope_refs(), key=str) if blueprint else []
        scopes = [self.scopes[(p, c)][s].as_json() for p, c, s in refs if s in self.scopes.get((p, c), {})]
        pipelines = self._pipelines_of(blueprint.id) if blueprint else []
        return {
            "project": self.project_json(project, with_last_pipeline=True) if project else None,
            "blueprint": blueprint.as_json() if blueprint else None,
            "scopes": scopes,
            "pipelines": [p.as_json() | {"tasks": [t.as_json(now) for t in p.tasks]} for p in pipelines],
        }


# ---- plan helpers ---------------------------------------------------------------------------------


def _check_plan(raw: Any) -> list[list[dict[str, Any]]]:
    """A plan as DevLake binds it: stages of ``{"plugin", "subtasks", "options"}``."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(
        isinstance(stage, list) and all(isinstance(c, dict) and isinstance(c.get("plugin"), str) for c in stage)
        for stage in raw
    ):
        raise DevLakeError(400, "invalid plan: want [[{plugin, subtasks, options}]]")
    return copy.deepcopy(raw)


def _strip_collectors(plan: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """``skipCollectors``: drop gitextractor and every subtask whose name contains "collect"."""
    stages = []
    for stage in plan:
        kept = []
        for cell in stage:
            if cell["plugin"] == "gitextractor":
                continue
            names = cell.get("subtasks") or PLUGIN_SUBTASKS.get(cell["plugin"], _DEFAULT_SUBTASKS)
            kept.append(cell | {"subtasks": [n for n in names if "collect" not in n.lower()]})
        if kept:
            stages.append(kept)
    return stages


def _blueprint_connections(raw: Any) -> list[dict[str, Any]]:
    """``connections`` of a blueprint body; every ``scopeId`` must be a string (as in Go)."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
        raise DevLakeError(400, "invalid connections")
    out = []
    for i, ref in enumerate(raw):
        plugin, connection_id, scopes = ref.get("pluginName"), ref.get("connectionId"), ref.get("scopes") or []
        if not isinstance(plugin, str) or isinstance(connection_id, bool) or not isinstance(connection_id, int):
            raise DevLakeError(400, f"connections[{i}]: pluginName (string) and connectionId (number) are required")
        if not isinstance(scopes, list) or not all(
            isinstance(s, dict) and isinstance(s.get("scopeId"), str) for s in scopes
        ):
            raise DevLakeError(400, f"json: cannot unmarshal connections[{i}].scopes: scopeId must be a string")
        out.append(
            {"pluginName": plugin, "connectionId": connection_id, "scopes": [{"scopeId": s["scopeId"]} for s in scopes]}
        )
    return out
