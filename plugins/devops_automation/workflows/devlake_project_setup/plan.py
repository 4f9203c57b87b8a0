"""What ``devlake_project_setup`` should change in DevLake: pure decisions, no I/O, no Airflow.

Given what DevLake holds (scopes, projects, blueprints, webhook connections) and what the connected
tools hold (remote scopes), these functions decide the new scopes to store, each repository's project
name, and the minimal blueprint PATCH. Keeping them pure makes "a second run makes no write calls"
a property of the planner that unit tests can check directly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_PROJECT_NAME = 100  # DevLake rejects longer project names (400)
DEFAULT_TEMPLATE = "{full_name}"
TEMPLATE_FIELDS = ("plugin", "connection", "connection_id", "full_name", "name", "scope_id")
WEEKDAYS = {"monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6}


#: Plugins whose scopes DevLake can collect and that we turn into projects.
DATA_SOURCE_PLUGINS = ("github", "gitlab", "bitbucket", "jira", "azuredevops_go")


@dataclass(frozen=True)
class Repo:
    """One repository (or board) chosen to become a DevLake project."""

    plugin: str
    connection_id: int
    connection_name: str
    scope_id: str
    full_name: str
    name: str

    @property
    def key(self) -> str:
        """Stable identity across runs: plugin, connection and the tool's own scope id."""
        return f"{self.plugin}:{self.connection_id}:{self.scope_id}"

    def as_dict(self) -> dict[str, Any]:
        return {
            f: getattr(self, f) for f in ("plugin", "connection_id", "connection_name", "scope_id", "full_name", "name")
        }


@dataclass
class ProjectPlan:
    """What one repository's project needs (computed against DevLake's current state)."""

    repo: Repo
    project: str
    create_project: bool = False
    metrics: list[dict[str, Any]] | None = None  # set when the project's metrics must be PATCHed
    create_webhook: str | None = None  # name of the webhook connection to create
    blueprint_patch: dict[str, Any] = field(default_factory=dict)

    @property
    def changes(self) -> bool:
        return (
            self.create_project or self.metrics is not None or bool(self.create_webhook) or bool(self.blueprint_patch)
        )


# ---- filtering and naming -----------------------------------------------------------------------


def compile_patterns(patterns: Iterable[str] | str | None, what: str) -> list[re.Pattern[str]]:
    """Compile user regexes, naming the one that is wrong."""
    if isinstance(patterns, str):
        patterns = [patterns] if patterns else []
    compiled = []
    for p in patterns or []:
        try:
            compiled.append(re.compile(p))
        except re.error as exc:
            raise ValueError(f"{what}: {p!r} is not a valid regular expression ({exc})") from None
    return compiled


def selected(full_name: str, include: list[re.Pattern[str]], exclude: list[re.Pattern[str]]) -> bool:
    """Included (no include patterns = all) and not excluded; patterns are searched in the full name."""
    if include and not any(p.search(full_name) for p in include):
        return False
    return not any(p.search(full_name) for p in exclude)


def sanitise_name(raw: str, max_len: int = MAX_PROJECT_NAME) -> str:
    """A DevLake-friendly project name: NFC, no control characters, ``/`` and whitespace runs made
    single ``-``/`` ``, and at most ``max_len`` characters (over-long names keep a hash suffix so that
    two long names sharing a prefix stay distinct)."""
    text = re.sub(r"\s+", " ", unicodedata.normalize("NFC", raw))
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    text = re.sub(r"[\\/]+", "-", text).strip(" -.")
    if not text:
        text = "project"
    if len(text) > max_len:
        digest = hashlib.sha1(raw.encode()).hexdigest()[:8]
        text = text[: max_len - 9].rstrip(" -.") + "-" + digest
    return text


def render_name(template: str, repo: Repo) -> str:
    values = {
        "plugin": repo.plugin,
        "connection": repo.connection_name,
        "connection_id": repo.connection_id,
        "full_name": repo.full_name,
        "name": repo.name,
        "scope_id": repo.scope_id,
    }
    try:
        return sanitise_name(template.format(**values))
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"project name template {template!r} is invalid ({exc}); fields: {', '.join(TEMPLATE_FIELDS)}"
        ) from None


def assign_project_names(
    repos: Iterable[Repo], template: str = DEFAULT_TEMPLATE, owners: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Project name per repo key, unique, and stable across runs.

    ``owners`` maps existing project names to the repo key already linked to them (read from the
    blueprints); that repo keeps its name. Other repos whose template name collides get
    ``-<plugin>-<connection id>`` appended, then a short hash of their key if that still collides.
    Repos are considered in key order, so the outcome never depends on listing order.
    """
    owners = dict(owners or {})
    taken: dict[str, str] = {}  # lower-cased name -> repo key
    for name, key in owners.items():
        taken[name.lower()] = key
    result: dict[str, str] = {}
    pending = sorted(repos, key=lambda r: r.key)
    owned = {key: name for name, key in owners.items()}
    for repo in pending:
        if repo.key in owned:
            result[repo.key] = owned[repo.key]
    for repo in pending:
        if repo.key in result:
            continue
        base = render_name(template, repo)
        candidates = [
            base,
            sanitise_name(f"{base}-{repo.plugin}-{repo.connection_id}"),
            sanitise_name(f"{base}-{hashlib.sha1(repo.key.encode()).hexdigest()[:8]}"),
        ]
        for name in candidates:
            if taken.get(name.lower()) in (None, repo.key):
                taken[name.lower()] = repo.key
                result[repo.key] = name
                break
        else:  # pragma: no cover - a sha1 prefix collision on top of two name collisions
            raise ValueError(f"cannot find a unique project name for {repo.full_name}")
    return result


# ---- time --------------------------------------------------------------------------------------


def previous_weekday_midnight(anchor: dt.datetime, tz: str = "UTC", weekday: str | int = "saturday") -> dt.datetime:
    """The latest ``weekday`` 00:00 (in ``tz``) strictly before ``anchor``, as an aware datetime.

    For a run whose logical date is Monday 2026-11-23 that is Saturday 2026-11-21 00:00; for a run at
    exactly Saturday 00:00 it is the Saturday a week earlier.
    """
    if anchor.tzinfo is None:
        raise ValueError("the anchor must be timezone-aware (use the run's logical date)")
    day = WEEKDAYS.get(str(weekday).lower(), weekday) if not isinstance(weekday, int) else weekday
    if not isinstance(day, int) or not 0 <= day <= 6:
        raise ValueError(f"weekday must be one of {', '.join(WEEKDAYS)} (or 0-6), got {weekday!r}")
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):  # unknown, malformed, not a str, a directory
        raise ValueError(f"unknown time zone {tz!r} (use an IANA name such as 'UTC' or 'Europe/Berlin')") from None
    local = anchor.astimezone(zone)
    candidate = dt.datetime.combine(local.date(), dt.time(), tzinfo=zone) - dt.timedelta(
        days=(local.weekday() - day) % 7
    )
    if candidate >= local:
        candidate -= dt.timedelta(days=7)
    return candidate


def rfc3339(value: dt.datetime) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


def same_instant(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return a == b
    try:
        return dt.datetime.fromisoformat(a.replace("Z", "+00:00")) == dt.datetime.fromisoformat(
            b.replace("Z", "+00:00")
        )
    except ValueError:
        return a == b


# ---- projects and blueprints ---------------------------------------------------------------------


def dora_metrics(existing: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """The metrics list with DORA enabled, or None when it already is (PATCH replaces the list)."""
    metrics = [dict(m) for m in existing or []]
    for m in metrics:
        if m.get("pluginName") == "dora":
            if m.get("enable"):
                return None
            m["enable"] = True
            return metrics
    return [*metrics, {"pluginName": "dora", "pluginOption": {}, "enable": True}]


def _norm_connections(connections: list[dict[str, Any]]) -> list[tuple[str, int, tuple[str, ...]]]:
    return sorted(
        (
            c.get("pluginName", ""),
            int(c.get("connectionId") or 0),
            tuple(sorted(str(s.get("scopeId")) for s in c.get("scopes") or [])),
        )
        for c in connections
    )


def merged_connections(current: list[dict[str, Any]], repo: Repo, webhook_id: int | None) -> list[dict[str, Any]]:
    """The blueprint's connections with exactly ``repo``'s scope on its connection and the webhook
    linked; every other entry (added by hand in DevLake) is kept as it is."""
    out: list[dict[str, Any]] = []
    placed = False
    for c in current:
        if c.get("pluginName") == repo.plugin and int(c.get("connectionId") or 0) == repo.connection_id:
            if not placed:
                out.append(
                    {
                        "pluginName": repo.plugin,
                        "connectionId": repo.connection_id,
                        "scopes": [{"scopeId": repo.scope_id}],
                    }
                )
                placed = True
            continue
        out.append(
            {
                "pluginName": c.get("pluginName"),
                "connectionId": c.get("connectionId"),
                "scopes": [{"scopeId": str(s.get("scopeId"))} for s in c.get("scopes") or []],
            }
        )
    if not placed:
        out.insert(
            0, {"pluginName": repo.plugin, "connectionId": repo.connection_id, "scopes": [{"scopeId": repo.scope_id}]}
        )
    if webhook_id is not None and not any(
        c.get("pluginName") == "webhook" and int(c.get("connectionId") or 0) == webhook_id for c in out
    ):
        out.append({"pluginName": "webhook", "connectionId": webhook_id, "scopes": []})
    return out


def blueprint_patch(
    blueprint: Mapping[str, Any], repo: Repo, webhook_id: int | None, time_after: dt.datetime, is_manual: bool
) -> dict[str, Any]:
    """The smallest PATCH that brings the blueprint where it should be ({} when it already is)."""
    patch: dict[str, Any] = {}
    current = list(blueprint.get("connections") or [])
    wanted = merged_connections(current, repo, webhook_id)
    if _norm_connections(current) != _norm_connections(wanted):
        patch["connections"] = wanted
    if not same_instant(blueprint.get("timeAfter"), rfc3339(time_after)):
        patch["timeAfter"] = rfc3339(time_after)
    if bool(blueprint.get("isManual")) != is_manual:
        patch["isManual"] = is_manual
    if not blueprint.get("enable", False):
        patch["enable"] = True
    return patch


def webhook_name(project: str) -> str:
    """The webhook connection's name for a project (DevLake webhook names are unique)."""
    return sanitise_name(f"{project}-webhook")


def variable_name(project: str) -> str:
    """The Airflow Variable that keeps a project's webhook API key ("secret" in the name: masked)."""
    slug = (
        re.sub(r"[^A-Za-z0-9]+", "_", unicodedata.normalize("NFKD", project).encode("ascii", "ignore").decode())
        .strip("_")
        .lower()
    )
    digest = hashlib.sha1(project.encode()).hexdigest()[:6]
    return f"devlake_webhook_secret_{slug[:60]}_{digest}"
