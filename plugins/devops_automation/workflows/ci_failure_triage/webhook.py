"""Parse GitLab webhook deliveries (``Pipeline Hook`` / ``Job Hook``) for ``ci_failure_triage``.

GitLab can tell us about a failed pipeline by webhook as well as by e-mail (gitlab.md §1.2). This
module turns one delivery (the ``X-Gitlab-Event`` header plus the JSON body) into a
:class:`HookEvent`, or raises :class:`HookRejected` with the HTTP status the receiver should
answer (400: not JSON, 422: JSON of the wrong shape). :func:`starts_triage` then decides whether
the event starts a triage run, and :func:`token_matches` checks the ``X-Gitlab-Token`` secret
(GitLab sends it verbatim, not as an HMAC) in constant time.

Pure Python, no Airflow imports: the FastAPI receiver (``webhook_app``) and the tests use it
without loading Airflow.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_JOBS = 500  #: failed jobs kept at most per event
MAX_TEXT = 1024  #: characters kept of a ref / URL / path (a ref is at most 255 bytes in git practice)
_ID = re.compile(r"^[0-9]{1,19}$")
_EVENTS = {"Pipeline Hook": "pipeline", "Job Hook": "job"}
_OBJECT_KINDS = {"pipeline": "pipeline", "build": "job"}


class HookRejected(ValueError):
    """A delivery that cannot be used; ``status_code`` is 400 (malformed) or 422 (wrong shape)."""

    def __init__(self, message: str, status_code: int = 422) -> None:
        super().__init__(message)
        self.status_code = status_code


class UnsupportedHook(HookRejected):
    """A well-formed delivery of another event type (``Push Hook``, ``Note Hook``, ...).

    The receiver acknowledges these with 200 instead of an error: GitLab counts every 4xx as a
    failed delivery and disables the hook after 4 of them in a row.
    """


@dataclass(frozen=True)
class HookEvent:
    kind: str  # "pipeline" | "job"
    project_id: str
    project_path: str | None
    pipeline_id: str
    ref: str | None
    sha: str | None
    status: str
    pipeline_url: str | None
    finished: bool
    failed_jobs: tuple[dict, ...]
    idempotency_key: str | None
    event_uuid: str | None
    finished_at: str | None = None  #: ISO-8601 UTC, when the pipeline (or the job) finished

    def to_event(self) -> dict[str, Any]:
        """The failure event as ``ci_failure_triage`` takes it in ``conf["events"]`` (JSON-safe)."""
        return {
            "source": "webhook",
            "project_id": self.project_id,
            "project_path": self.project_path,
            "pipeline_id": self.pipeline_id,
            "ref": self.ref,
            "sha": self.sha,
            "status": self.status,
            "pipeline_url": self.pipeline_url,
            "failed_jobs": [dict(j) for j in self.failed_jobs],
            "idempotency_key": self.idempotency_key,
        }


# -- helpers --------------------------------------------------------------------------------------
def parse_hook_time(value: Any, field: str = "timestamp") -> datetime | None:
    """``"2016-08-12 15:23:28 UTC"`` (what webhooks send) or ISO-8601 -> aware UTC datetime.

    ``None`` / ``""`` -> ``None``; anything else unreadable raises :class:`HookRejected` (422).
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise HookRejected(f"{field} must be a timestamp string, got {type(value).__name__}")
    text = value.strip()
    parsed: datetime | None = None
    if text.endswith(" UTC"):
        try:
            parsed = datetime.strptime(text[:-4].strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            parsed = None
    if parsed is None:
        for fmt in ("%Y-%m-%d %H:%M:%S %z",):  # e.g. "2016-08-12 15:23:28 +0200"
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                pass
    if parsed is None:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        except ValueError:
            raise HookRejected(f"{field} is not a timestamp GitLab sends: {text[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _id(value: Any, field: str) -> str:
    """A GitLab numeric id (int or digit string) as a string; else 422."""
    if isinstance(value, bool) or value is None:
        raise HookRejected(f"{field} is missing" if value is None else f"{field} must be a numeric id")
    text = str(value).strip() if isinstance(value, (int, str)) else ""
    if not _ID.match(text) or int(text) <= 0:
        raise HookRejected(f"{field} must be a positive numeric id, got {str(value)[:40]!r}")
    return str(int(text))


def _text(value: Any, field: str, *, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise HookRejected(f"{field} is missing")
        return None
    if not isinstance(value, str):
        raise HookRejected(f"{field} must be a string, got {type(value).__name__}")
    return value[:MAX_TEXT]


def _mapping(value: Any, field: str, *, required: bool = True) -> Mapping[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping):
        raise HookRejected(
            f"{field} must be an object" + (" (missing)" if value is None else f", got {type(value).__name__}")
        )
    return value


def _job_url(project_url: str | None, job_id: str) -> str | None:
    return f"{project_url.rstrip('/')}/-/jobs/{job_id}" if project_url else None


def _decode(body: Any) -> Mapping[str, Any]:
    if isinstance(body, (bytes, bytearray, memoryview)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            raise HookRejected("the body is not UTF-8 JSON", 400) from None
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError as exc:
            raise HookRejected(f"the body is not valid JSON ({exc.msg} at position {exc.pos})", 400) from None
    if not isinstance(body, Mapping):
        raise HookRejected(f"the body must be a JSON object, got {type(body).__name__}")
    return body


def _kind(event_header: str | None, body: Mapping[str, Any]) -> str:
    object_kind = body.get("object_kind")
    header = (event_header or "").strip()
    if header:
        if header not in _EVENTS:
            raise UnsupportedHook(f"X-Gitlab-Event {header[:60]!r} is not used (only Pipeline Hook and Job Hook)")
        kind = _EVENTS[header]
        if object_kind is not None and _OBJECT_KINDS.get(object_kind) != kind:
            raise HookRejected(f"X-Gitlab-Event {header!r} does not match object_kind {str(object_kind)[:40]!r}")
        return kind
    if object_kind in _OBJECT_KINDS:
        return _OBJECT_KINDS[object_kind]
    if isinstance(object_kind, str) and object_kind:
        raise UnsupportedHook(f"object_kind {object_kind[:40]!r} is not used (only pipeline and build)")
    raise HookRejected("neither an X-Gitlab-Event header nor an object_kind says what this delivery is")


# -- the two payloads -----------------------------------------------------------------------------
def _pipeline(body: Mapping[str, Any], idempotency_key: str | None, event_uuid: str | None) -> HookEvent:
    attrs = _mapping(body.get("object_attributes"), "object_attributes")
    project = _mapping(body.get("project"), "project")
    pipeline_id = _id(attrs.get("id"), "object_attributes.id")
    project_url = _text(project.get("web_url"), "project.web_url")
    finished_at = parse_hook_time(attrs.get("finished_at"), "object_attributes.finished_at")
    builds = body.get("builds")
    builds = [] if builds is None else builds
    if not isinstance(builds, list):
        raise HookRejected(f"builds must be a list, got {type(builds).__name__}")
    failed: list[dict[str, Any]] = []
    for i, build in enumerate(builds):
        build = _mapping(build, f"builds[{i}]")
        if build.get("status") != "failed":
            continue
        job_id = _id(build.get("id"), f"builds[{i}].id")
        failed.append(
            {
                "id": job_id,
                "name": _text(build.get("name"), f"builds[{i}].name"),
                "stage": _text(build.get("stage"), f"builds[{i}].stage"),
                "status": "failed",
                "failure_reason": _text(build.get("failure_reason"), f"builds[{i}].failure_reason"),
                "allow_failure": bool(build.get("allow_failure")),
                "url": _job_url(project_url, job_id),
            }
        )
    failed.sort(key=lambda j: int(j["id"]))
    url = _text(attrs.get("url"), "object_attributes.url") or (
        f"{project_url.rstrip('/')}/-/pipelines/{pipeline_id}" if project_url else None
    )
    return HookEvent(
        kind="pipeline",
        project_id=_id(project.get("id"), "project.id"),
        project_path=_text(project.get("path_with_namespace"), "project.path_with_namespace"),
        pipeline_id=pipeline_id,
        ref=_text(attrs.get("ref"), "object_attributes.ref"),
        sha=_text(attrs.get("sha"), "object_attributes.sha"),
        status=_text(attrs.get("status"), "object_attributes.status", required=True) or "",
        pipeline_url=url,
        finished=finished_at is not None,
        failed_jobs=tuple(failed[:MAX_JOBS]),
        idempotency_key=idempotency_key,
        event_uuid=event_uuid,
        finished_at=finished_at.isoformat() if finished_at else None,
    )


def _job(body: Mapping[str, Any], idempotency_key: str | None, event_uuid: str | None) -> HookEvent:
    project = _mapping(body.get("project"), "project", required=False)
    project_id = _id(body.get("project_id", project.get("id")), "project_id")
    pipeline_id = _id(body.get("pipeline_id"), "pipeline_id")
    job_id = _id(body.get("build_id"), "build_id")
    status = _text(body.get("build_status"), "build_status", required=True) or ""
    finished_at = parse_hook_time(body.get("build_finished_at"), "build_finished_at")
    project_url = _text(project.get("web_url"), "project.web_url")
    failed: tuple[dict, ...] = ()
    if status == "failed":
        failed = (
            {
                "id": job_id,
                "name": _text(body.get("build_name"), "build_name"),
                "stage": _text(body.get("build_stage"), "build_stage"),
                "status": "failed",
                "failure_reason": _text(body.get("build_failure_reason"), "build_failure_reason"),
                "allow_failure": bool(body.get("build_allow_failure")),
                "url": _job_url(project_url, job_id),
            },
        )
    return HookEvent(
        kind="job",
        project_id=project_id,
        project_path=_text(project.get("path_with_namespace"), "project.path_with_namespace"),
        pipeline_id=pipeline_id,
        ref=_text(body.get("ref"), "ref"),
        sha=_text(body.get("sha"), "sha"),
        status=status,
        pipeline_url=f"{project_url.rstrip('/')}/-/pipelines/{pipeline_id}" if project_url else None,
        finished=finished_at is not None,
        failed_jobs=failed,
        idempotency_key=idempotency_key,
        event_uuid=event_uuid,
        finished_at=finished_at.isoformat() if finished_at else None,
    )


# -- public API -----------------------------------------------------------------------------------
def parse_gitlab_hook(
    event_header: str | None,
    body: Mapping[str, Any] | bytes | str,
    *,
    idempotency_key: str | None = None,
    event_uuid: str | None = None,
) -> HookEvent:
    """One delivery -> :class:`HookEvent`.

    ``event_header`` is ``X-Gitlab-Event`` (when absent the body's ``object_kind`` decides);
    ``body`` is the decoded JSON object, or the raw bytes / text (then a JSON syntax error is a
    400). ``idempotency_key`` / ``event_uuid`` are the ``Idempotency-Key`` and
    ``X-Gitlab-Event-UUID`` headers, kept for tracing. Raises :class:`HookRejected` (422 for a
    wrong shape, 400 for broken JSON) or :class:`UnsupportedHook` for other event types.
    """
    data = _decode(body)
    kind = _kind(event_header, data)
    key = (idempotency_key or "").strip()[:200] or None
    uuid = (event_uuid or "").strip()[:200] or None
    return _pipeline(data, key, uuid) if kind == "pipeline" else _job(data, key, uuid)


def starts_triage(ev: HookEvent) -> tuple[bool, str]:
    """Whether this event starts a ``ci_failure_triage`` run, and why (or why not).

    Only a *Pipeline Hook* with status ``failed`` and ``finished_at`` set does. GitLab fires the
    pipeline hook on every status change, so ``running``/``success``/... deliveries are ignored.
    A *Job Hook* for a failed job is acknowledged but never starts work: when a job fails, the
    rest of its pipeline may still be running (later stages, retries, ``allow_failure`` jobs), so
    the failure picture is incomplete and the same pipeline would be triaged again later. The
    pipeline's own ``failed`` event, sent once it has finished, carries every failed job.
    """
    where = f"pipeline {ev.pipeline_id} of project {ev.project_id}"
    if ev.kind == "job":
        if ev.status == "failed":
            return False, (
                f"job hook for a failed job of {where}: acknowledged; triage starts from the "
                "pipeline hook once the whole pipeline has finished"
            )
        return False, f"job hook (status {ev.status!r}) of {where}: only pipeline hooks start triage"
    if ev.status != "failed":
        return False, f"{where} has status {ev.status!r}; only failed pipelines are triaged"
    if not ev.finished:
        return False, f"{where} is failed but has no finished_at yet; waiting for the final pipeline hook"
    return True, f"{where} failed"


def token_matches(given: str | None, expected: str) -> bool:
    """``X-Gitlab-Token`` against the configured secret, in constant time (bytes compare).

    An empty configured secret never matches (fail closed).
    """
    if given is None or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape"))
