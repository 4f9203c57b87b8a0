"""Parsing GitLab webhook deliveries, with bodies built by the sandbox exactly as GitLab sends them."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

from devops_automation.workflows.ci_failure_triage.webhook import (
    HookEvent,
    HookRejected,
    UnsupportedHook,
    parse_gitlab_hook,
    parse_hook_time,
    starts_triage,
    token_matches,
)


@pytest.fixture
def scenarios(sandbox) -> dict:
    return sandbox.control("gitlab", "GET", "/scenarios")


def pipeline_delivery(sandbox, pipeline_id: int, **extra) -> dict:
    return sandbox.control(
        "gitlab", "POST", "/hooks/pipeline", json={"pipeline_id": pipeline_id, "token": "t", **extra}
    )


def job_delivery(sandbox, job_id: int) -> dict:
    return sandbox.control("gitlab", "POST", "/hooks/job", json={"job_id": job_id, "token": "t"})


def parse(delivery: dict) -> HookEvent:
    h = delivery["headers"]
    return parse_gitlab_hook(
        h["X-Gitlab-Event"],
        delivery["body"],
        idempotency_key=h.get("Idempotency-Key"),
        event_uuid=h.get("X-Gitlab-Event-UUID"),
    )


# -- pipeline hooks --------------------------------------------------------------------------------
def test_failed_pipeline_starts_triage(sandbox, scenarios):
    sc = scenarios["pytest"]
    delivery = pipeline_delivery(sandbox, sc["pipeline_id"], idempotency_key="idem-1")
    ev = parse(delivery)
    assert ev.kind == "pipeline"
    assert (ev.project_id, ev.project_path, ev.pipeline_id) == (
        str(sc["project_id"]),
        sc["project_path"],
        str(sc["pipeline_id"]),
    )
    assert ev.ref == sc["ref"]
    assert ev.status == "failed"
    assert ev.finished
    assert ev.sha == delivery["body"]["object_attributes"]["sha"]
    assert len(ev.sha) == 40
    assert ev.pipeline_url == delivery["body"]["object_attributes"]["url"]
    assert ev.idempotency_key == "idem-1"
    assert ev.event_uuid == delivery["headers"]["X-Gitlab-Event-UUID"]
    # builds are the latest jobs only: the failed ones are exactly the scenario's failed jobs
    assert sorted(int(j["id"]) for j in ev.failed_jobs) == sorted(sc["failed_job_ids"])
    job = ev.failed_jobs[0]
    assert job["status"] == "failed"
    assert job["name"] == "unit-tests"
    assert job["failure_reason"]
    assert job["url"].endswith(f"/-/jobs/{job['id']}")
    # finished_at "YYYY-MM-DD HH:MM:SS UTC" -> ISO UTC
    raw = delivery["body"]["object_attributes"]["finished_at"]
    assert raw.endswith(" UTC")
    assert ev.finished_at == datetime.strptime(raw, "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=UTC).isoformat()
    go, reason = starts_triage(ev)
    assert go
    assert "failed" in reason

    event = ev.to_event()
    assert json.loads(json.dumps(event)) == event
    assert set(event) == {
        "source",
        "project_id",
        "project_path",
        "pipeline_id",
        "ref",
        "sha",
        "status",
        "pipeline_url",
        "failed_jobs",
        "idempotency_key",
    }
    assert event["source"] == "webhook"
    assert event["failed_jobs"][0]["id"] == job["id"]


def test_running_pipeline_is_ignored(sandbox, scenarios):
    ev = parse(pipeline_delivery(sandbox, scenarios["running"]["pipeline_id"]))
    assert ev.status == "running"
    assert not ev.finished
    assert ev.failed_jobs == ()
    go, reason = starts_triage(ev)
    assert not go
    assert "'running'" in reason


def test_successful_pipeline_is_ignored(sandbox, scenarios):
    ev = parse(pipeline_delivery(sandbox, scenarios["pytest"]["good_pipeline_id"]))
    assert ev.status == "success"
    assert ev.finished
    go, reason = starts_triage(ev)
    assert not go
    assert "'success'" in reason


def test_failed_but_unfinished_pipeline_waits(sandbox, scenarios):
    body = pipeline_delivery(sandbox, scenarios["pytest"]["pipeline_id"])["body"]
    body["object_attributes"]["finished_at"] = None
    ev = parse_gitlab_hook("Pipeline Hook", body)
    assert ev.status == "failed"
    assert not ev.finished
    go, reason = starts_triage(ev)
    assert not go
    assert "finished_at" in reason


# -- job hooks -------------------------------------------------------------------------------------
def test_failed_job_hook_is_acknowledged_not_started(sandbox, scenarios):
    sc = scenarios["compile"]
    delivery = job_delivery(sandbox, sc["failed_job_ids"][0])
    assert delivery["headers"]["X-Gitlab-Event"] == "Job Hook"
    assert delivery["body"]["object_kind"] == "build"
    ev = parse(delivery)
    assert ev.kind == "job"
    assert ev.status == "failed"
    assert ev.finished
    assert (ev.project_id, ev.project_path, ev.pipeline_id) == (
        str(sc["project_id"]),
        sc["project_path"],
        str(sc["pipeline_id"]),
    )
    assert [j["id"] for j in ev.failed_jobs] == [str(sc["failed_job_ids"][0])]
    assert ev.pipeline_url.endswith(f"/{sc['project_path']}/-/pipelines/{sc['pipeline_id']}")
    go, reason = starts_triage(ev)
    assert not go
    assert "acknowledged" in reason
    assert "pipeline hook" in reason


# -- malformed and wrong-shape bodies --------------------------------------------------------------
@pytest.mark.parametrize("raw", [b"{not json", b"", "[1, 2", b"\xff\xfe"])
def test_malformed_json_is_400(raw):
    with pytest.raises(HookRejected) as exc:
        parse_gitlab_hook("Pipeline Hook", raw)
    assert exc.value.status_code == 400


def test_raw_bytes_are_decoded(sandbox, scenarios):
    body = pipeline_delivery(sandbox, scenarios["pytest"]["pipeline_id"])["body"]
    assert parse_gitlab_hook("Pipeline Hook", json.dumps(body).encode()).pipeline_id == str(
        scenarios["pytest"]["pipeline_id"]
    )


def _drop(body: dict, *path: str) -> dict:
    body = copy.deepcopy(body)
    node = body
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return body


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        (("object_attributes",), "object_attributes"),
        (("object_attributes", "id"), "object_attributes.id"),
        (("object_attributes", "status"), "object_attributes.status"),
        (("project",), "project"),
        (("project", "id"), "project.id"),
    ],
)
def test_missing_pipeline_fields_are_422(sandbox, scenarios, path, needle):
    body = pipeline_delivery(sandbox, scenarios["pytest"]["pipeline_id"])["body"]
    with pytest.raises(HookRejected) as exc:
        parse_gitlab_hook("Pipeline Hook", _drop(body, *path))
    assert exc.value.status_code == 422
    assert needle in str(exc.value)


@pytest.mark.parametrize(
    ("key", "needle"), [("pipeline_id", "pipeline_id"), ("build_status", "build_status"), ("build_id", "build_id")]
)
def test_missing_job_fields_are_422(sandbox, scenarios, key, needle):
    body = job_delivery(sandbox, scenarios["pytest"]["failed_job_ids"][0])["body"]
    with pytest.raises(HookRejected) as exc:
        parse_gitlab_hook("Job Hook", _drop(body, key))
    assert exc.value.status_code == 422
    assert needle in str(exc.value)


@pytest.mark.parametrize(
    "body",
    [
        [1, 2],
        '"text"',
        {"object_kind": "pipeline", "object_attributes": [], "project": {"id": 1}},
        {"object_kind": "pipeline", "object_attributes": {"id": "1; drop", "status": "failed"}, "project": {"id": 1}},
        {"object_kind": "pipeline", "object_attributes": {"id": True, "status": "failed"}, "project": {"id": 1}},
        {"object_kind": "pipeline", "object_attributes": {"id": 5, "status": "failed", "ref": 7}, "project": {"id": 1}},
        {
            "object_kind": "pipeline",
            "object_attributes": {"id": 5, "status": "failed"},
            "project": {"id": 1},
            "builds": {},
        },
        {},
    ],
)
def test_wrong_shapes_are_422(body):
    with pytest.raises(HookRejected) as exc:
        parse_gitlab_hook(None, body)
    assert exc.value.status_code == 422
    assert not isinstance(exc.value, UnsupportedHook)


def test_event_header_must_match_object_kind(sandbox, scenarios):
    body = job_delivery(sandbox, scenarios["pytest"]["failed_job_ids"][0])["body"]
    with pytest.raises(HookRejected, match="does not match object_kind"):
        parse_gitlab_hook("Pipeline Hook", body)


def test_other_event_types_are_unsupported_not_errors():
    with pytest.raises(UnsupportedHook):
        parse_gitlab_hook("Push Hook", {"object_kind": "push"})
    with pytest.raises(UnsupportedHook):
        parse_gitlab_hook(None, {"object_kind": "merge_request"})


def test_without_event_header_object_kind_decides(sandbox, scenarios):
    body = pipeline_delivery(sandbox, scenarios["pytest"]["pipeline_id"])["body"]
    assert parse_gitlab_hook(None, body).kind == "pipeline"


# -- timestamps ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "2016-08-12 15:23:28 UTC",
        "2016-08-12T15:23:28Z",
        "2016-08-12T15:23:28+00:00",
        "2016-08-12T17:23:28.000+02:00",
        "2016-08-12 17:23:28 +0200",
        "2016-08-12T15:23:28",
    ],
)
def test_both_timestamp_formats(text):
    assert parse_hook_time(text) == datetime(2016, 8, 12, 15, 23, 28, tzinfo=UTC)


def test_iso_finished_at_in_a_pipeline_hook(sandbox, scenarios):
    body = pipeline_delivery(sandbox, scenarios["pytest"]["pipeline_id"])["body"]
    body["object_attributes"]["finished_at"] = "2026-11-23T05:10:00.123Z"
    ev = parse_gitlab_hook("Pipeline Hook", body)
    assert ev.finished
    assert ev.finished_at == "2026-11-23T05:10:00.123000+00:00"
    assert starts_triage(ev)[0]


@pytest.mark.parametrize("bad", ["yesterday", "2016-13-45 99:99:99 UTC", 1470000000])
def test_unreadable_timestamp_is_422(bad):
    with pytest.raises(HookRejected) as exc:
        parse_hook_time(bad, "finished_at")
    assert exc.value.status_code == 422
    assert "finished_at" in str(exc.value)


# -- token -----------------------------------------------------------------------------------------
def test_token_matches():
    assert token_matches("s3cret", "s3cret")
    assert token_matches("pässwörd", "pässwörd")
    assert not token_matches("s3cre", "s3cret")
    assert not token_matches("S3cret", "s3cret")
    assert not token_matches(None, "s3cret")
    assert not token_matches("", "s3cret")
    assert not token_matches("", "")  # an empty secret never opens the door
