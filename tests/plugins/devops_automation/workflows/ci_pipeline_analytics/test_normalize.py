"""``normalize``: the status vocabulary (every row of definitions §2, both providers), timestamps, and the
``ci_runs`` / ``ci_jobs`` / ``ci_deployments`` rows built from hand-written API objects shaped like the
sandbox's (which follows the real APIs); the rows are upserted into the store on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import datetime as dt
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from devops_automation.store import ResultsStore, schema
from devops_automation.workflows.ci_pipeline_analytics import normalize as nz

REPO_ROOT = Path(__file__).resolve().parents[5]
LOGGER = nz.__name__
COLLECTED = dt.datetime(2026, 11, 21, 3, 0, tzinfo=dt.UTC)
REPO = "acme/api"
PROJECT = "acme/platform/billing"


def utc(hour: int, minute: int = 0, second: int = 0, micro: int = 0, day: int = 20) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, second, micro, tzinfo=dt.UTC)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


@pytest.fixture(autouse=True)
def _capture_warnings(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)


# ---- status mapping: every row of the §2 table -------------------------------------------------

GITHUB_TABLE = [
    # (status, conclusion, ours)
    ("completed", "success", "success"),
    ("completed", "failure", "failure"),
    ("completed", "startup_failure", "failure"),
    ("completed", "timed_out", "timed_out"),
    ("completed", "cancelled", "cancelled"),
    ("completed", "skipped", "skipped"),
    ("completed", "neutral", "skipped"),
    ("completed", "action_required", "skipped"),
    ("completed", "stale", "skipped"),
    ("queued", None, "running"),
    ("in_progress", None, "running"),
    ("waiting", None, "running"),
    ("pending", None, "running"),
    ("requested", None, "running"),
]


@pytest.mark.parametrize(("status", "conclusion", "ours"), GITHUB_TABLE)
def test_map_github_every_row_of_the_table(
    caplog: pytest.LogCaptureFixture, status: str, conclusion: str | None, ours: str
) -> None:
    assert nz.map_github(status, conclusion) == ours
    assert nz.github_status_raw(status, conclusion) == (conclusion or status)
    assert warnings_of(caplog) == []


def test_github_table_covers_every_known_value() -> None:
    assert {c for _, c, _ in GITHUB_TABLE if c} == set(nz.GITHUB_CONCLUSIONS)
    assert {s for s, c, _ in GITHUB_TABLE if c is None} == set(nz.GITHUB_RUNNING)


@pytest.mark.parametrize(
    ("status", "conclusion", "named"),
    [
        ("completed", "superseded", "conclusion 'superseded'"),  # a conclusion GitHub might add
        ("completed", None, "conclusion None"),  # completed without a conclusion
        ("exploding", None, "status 'exploding'"),
        (None, None, "status None"),
    ],
)
def test_map_github_unknown_is_other_and_warns(
    caplog: pytest.LogCaptureFixture, status: str | None, conclusion: str | None, named: str
) -> None:
    assert nz.map_github(status, conclusion, where="acme/api run 7") == "other"
    (message,) = warnings_of(caplog)
    assert named in message
    assert "acme/api run 7" in message
    assert "GitHub" in message


GITLAB_TABLE = [
    # (status, failure_reason, ours)
    ("success", None, "success"),
    ("failed", None, "failure"),
    ("failed", "script_failure", "failure"),
    ("failed", "stuck_or_timeout_failure", "failure"),  # stuck waiting for a runner, not a job timeout
    ("failed", "runner_system_failure", "failure"),
    ("failed", "job_execution_timeout", "timed_out"),
    ("failed", "job_execution_server_timeout", "timed_out"),
    ("failed", "server_timeout_running", "timed_out"),
    ("failed", "server_timeout_canceling", "timed_out"),
    ("canceled", None, "cancelled"),
    ("skipped", None, "skipped"),
    ("manual", None, "skipped"),
    ("created", None, "running"),
    ("waiting_for_resource", None, "running"),
    ("preparing", None, "running"),
    ("pending", None, "running"),
    ("running", None, "running"),
    ("scheduled", None, "running"),
    ("canceling", None, "running"),
    ("waiting_for_callback", None, "running"),
]


@pytest.mark.parametrize(("status", "reason", "ours"), GITLAB_TABLE)
def test_map_gitlab_every_row_of_the_table(
    caplog: pytest.LogCaptureFixture, status: str, reason: str | None, ours: str
) -> None:
    assert nz.map_gitlab(status, reason) == ours
    assert warnings_of(caplog) == []


def test_gitlab_table_covers_every_known_status() -> None:
    assert {s for s, _, _ in GITLAB_TABLE} == set(nz.GITLAB_STATUSES)


@pytest.mark.parametrize("status", ["cancelled", "passed", "", None])  # "cancelled" is GitHub's spelling
def test_map_gitlab_unknown_is_other_and_warns(caplog: pytest.LogCaptureFixture, status: str | None) -> None:
    assert nz.map_gitlab(status, where="acme/x pipeline 9") == "other"
    (message,) = warnings_of(caplog)
    assert f"status {status!r}" in message
    assert "acme/x pipeline 9" in message


@pytest.mark.parametrize(
    ("state", "ours"),
    [
        ("success", "success"),
        ("inactive", "success"),
        ("failure", "failure"),
        ("error", "failure"),
        ("in_progress", "running"),
        ("queued", "running"),
        ("pending", "running"),
        ("destroyed", "other"),
    ],
)
def test_map_github_deployment(caplog: pytest.LogCaptureFixture, state: str, ours: str) -> None:
    assert nz.map_github_deployment(state) == ours
    assert len(warnings_of(caplog)) == (ours == "other")


@pytest.mark.parametrize(
    ("status", "ours"),
    [
        ("success", "success"),
        ("failed", "failure"),
        ("canceled", "cancelled"),
        ("skipped", "skipped"),
        ("created", "running"),
        ("running", "running"),
        ("blocked", "running"),
        ("rolled_back", "other"),
    ],
)
def test_map_gitlab_deployment(caplog: pytest.LogCaptureFixture, status: str, ours: str) -> None:
    assert nz.map_gitlab_deployment(status) == ours
    assert len(warnings_of(caplog)) == (ours == "other")


# ---- timestamps ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-20T10:00:00Z", utc(10)),  # GitHub
        ("2026-11-20T10:00:00.123Z", utc(10, micro=123000)),  # GitLab (sandbox)
        ("2026-11-20T10:00:00.123+01:00", utc(9, micro=123000)),  # GitLab with the instance's offset
        ("2026-11-20T10:00:00.1234567Z", utc(10, micro=123456)),  # 7 fraction digits
        ("2026-11-20T01:30:00-05:30", utc(7)),
        ("2026-11-20 10:00:00 UTC", utc(10)),  # GitLab webhook form
        ("2026-11-20T10:00:00", utc(10)),  # no offset: UTC
        (dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))), utc(10)),
        (dt.datetime(2026, 11, 20, 10, 0), utc(10)),  # naive datetime: UTC
        (None, None),
        ("", None),
        ("   ", None),
        ("0001-01-01T00:00:00Z", None),  # Go's zero time
        ("0001-01-01T00:00:00+01:00", None),
        (dt.datetime(1, 1, 1, tzinfo=dt.UTC), None),
    ],
)
def test_parse_ts(caplog: pytest.LogCaptureFixture, value: Any, expected: dt.datetime | None) -> None:
    got = nz.parse_ts(value, "run 1: created_at")
    assert got == expected
    if got is not None:
        assert got.utcoffset() == dt.timedelta(0)
    assert warnings_of(caplog) == []


@pytest.mark.parametrize(
    "value", ["yesterday", "2026-13-45T99:00:00Z", "2026-11-20T10:00:00Zulu", "9999-12-31T23:59:59-01:00", 1732096800]
)
def test_parse_ts_malformed_is_none_and_names_the_field(caplog: pytest.LogCaptureFixture, value: Any) -> None:
    assert nz.parse_ts(value, "acme/api run 1: created_at") is None
    (message,) = warnings_of(caplog)
    assert "acme/api run 1: created_at" in message
    assert repr(value) in message


# ---- GitHub Actions: API objects as GET …/attempts/{n} and …/attempts/{n}/jobs return them -----------


def gh_user(login: str) -> dict[str, Any]:
    return {"login": login, "id": len(login), "type": "User", "html_url": f"https://github.com/{login}"}


def gh_run(**over: Any) -> dict[str, Any]:
    run = {
        "id": 7001,
        "name": "CI",
        "display_title": "Fix the parser",
        "path": ".github/workflows/ci.yml",
        "head_branch": "main",
        "head_sha": "a" * 40,
        "run_number": 42,
        "run_attempt": 1,
        "event": "push",
        "status": "completed",
        "conclusion": "failure",
        "workflow_id": 161335,
        "html_url": "https://github.com/acme/api/actions/runs/7001",
        "created_at": "2026-11-20T10:00:00Z",
        "run_started_at": "2026-11-20T10:00:00Z",
        "updated_at": "2026-11-20T10:12:30Z",
        "actor": gh_user("alice"),
        "triggering_actor": gh_user("alice"),
        "previous_attempt_url": None,
        "head_commit": {
            "id": "a" * 40,
            "message": "Fix the parser",
            "timestamp": "2026-11-20T09:59:00Z",
            "author": {"name": "Alice Doe", "email": "alice@acme.dev"},
        },
    }
    run.update(over)
    return run


def gh_job(
    job_id: int,
    name: str,
    created: str,
    started: str | None,
    completed: str | None,
    conclusion: str | None = "success",
    *,
    status: str = "completed",
    attempt: int = 1,
    steps: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "id": job_id,
        "run_id": 7001,
        "run_attempt": attempt,
        "head_sha": "a" * 40,
        "workflow_name": "CI",
        "name": name,
        "status": status,
        "conclusion": conclusion,
        "created_at": created,
        "started_at": started,
        "completed_at": completed,
        "html_url": f"https://github.com/acme/api/actions/runs/7001/job/{job_id}",
        "steps": steps or [],
        "labels": ["ubuntu-latest"],
        "runner_name": None if status == "queued" else f"GitHub Actions {job_id}",
    }


STEPS = [
    {
        "name": "Set up job",
        "status": "completed",
        "conclusion": "success",
        "number": 1,
        "started_at": "2026-11-20T10:00:50Z",
        "completed_at": "2026-11-20T10:01:00Z",
    },
    {
        "name": "Run tests",
        "status": "completed",
        "conclusion": "failure",
        "number": 2,
        "started_at": "2026-11-20T10:01:00Z",
        "completed_at": "2026-11-20T10:12:00Z",
    },
]


def attempt_one_jobs() -> list[dict[str, Any]]:
    return [
        gh_job(11, "lint", "2026-11-20T10:00:02Z", "2026-11-20T10:00:20Z", "2026-11-20T10:03:00Z"),
        gh_job(
            12, "test", "2026-11-20T10:00:02Z", "2026-11-20T10:00:50Z", "2026-11-20T10:12:00Z", "failure", steps=STEPS
        ),
        # skipped at once: left out of the run's span (else the queue would be 5 s, the duration 715 s)
        gh_job(13, "notify", "2026-11-20T10:00:02Z", "2026-11-20T10:00:05Z", "2026-11-20T10:00:05Z", "skipped"),
    ]


def test_github_attempt_row_exactly(caplog: pytest.LogCaptureFixture) -> None:
    run_row, job_rows = nz.github_run_rows(REPO, gh_run(), attempt_one_jobs(), collected_at=COLLECTED)
    assert run_row == {
        "provider": "github",
        "repo": REPO,
        "run_id": "7001",
        "attempt": 1,
        "name": "CI",
        "branch": "main",
        "sha": "a" * 40,
        "author": "Alice Doe",
        "event": "push",
        "status": "failure",
        "conclusion": "failure",
        "created_at": utc(10),
        "started_at": utc(10),
        "finished_at": utc(10, 12),  # latest completed_at of the jobs that ran
        "duration_s": 700.0,  # 10:12:00 - 10:00:20 (earliest start)
        "queue_s": 20.0,  # 10:00:20 - created 10:00:00
        "url": "https://github.com/acme/api/actions/runs/7001",
        "collected_at": COLLECTED,
        "status_raw": "failure",
        "run_number": 42,
        "workflow_id": "161335",
        "workflow": "CI",
        "actor": "alice",
        "parent_run_id": None,
        "updated_at": utc(10, 12, 30),
    }
    assert [(r["job_id"], r["status"], r["duration_s"], r["queue_s"]) for r in job_rows] == [
        ("11", "success", 160.0, 18.0),
        ("12", "failure", 670.0, 48.0),
        ("13", "skipped", None, None),
    ]
    assert warnings_of(caplog) == []


def test_github_job_row_exactly() -> None:
    _, job_rows = nz.github_run_rows(REPO, gh_run(), attempt_one_jobs(), collected_at=COLLECTED)
    assert job_rows[1] == {
        "provider": "github",
        "repo": REPO,
        "run_id": "7001",
        "attempt": 1,
        "job_id": "12",
        "name": "test",
        "stage": None,
        "status": "failure",
        "conclusion": "failure",
        "started_at": utc(10, 0, 50),
        "finished_at": utc(10, 12),
        "duration_s": 670.0,
        "queue_s": 48.0,
        "runner": "GitHub Actions 12",
        "failure_reason": None,
        "url": "https://github.com/acme/api/actions/runs/7001/job/12",
        "status_raw": "failure",
        "created_at": utc(10, 0, 2),
        "retried": False,
        "allow_failure": False,
        "steps": [
            {
                "name": "Set up job",
                "number": 1,
                "status": "completed",
                "conclusion": "success",
                "started_at": "2026-11-20T10:00:50Z",
                "completed_at": "2026-11-20T10:01:00Z",
            },
            {
                "name": "Run tests",
                "number": 2,
                "status": "completed",
                "conclusion": "failure",
                "started_at": "2026-11-20T10:01:00Z",
                "completed_at": "2026-11-20T10:12:00Z",
            },
        ],
    }


def rerun_attempt() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Attempt 2 (failed jobs re-run 4 h later by bob): same id, run_number and created_at."""
    run = gh_run(
        run_attempt=2,
        conclusion="success",
        run_started_at="2026-11-20T14:00:00Z",
        updated_at="2026-11-20T14:09:10Z",
        triggering_actor=gh_user("bob"),
        previous_attempt_url="https://api.github.com/repos/acme/api/actions/runs/7001/attempts/1",
    )
    jobs = [
        gh_job(21, "test", "2026-11-20T14:00:00Z", "2026-11-20T14:00:30Z", "2026-11-20T14:09:00Z", attempt=2),
        # a job the re-run did not repeat, listed with its own attempt: its row, not this attempt's figures
        gh_job(11, "lint", "2026-11-20T10:00:02Z", "2026-11-20T10:00:20Z", "2026-11-20T10:03:00Z", attempt=1),
    ]
    return run, jobs


def test_github_rerun_attempt_measures_from_its_own_start() -> None:
    run, jobs = rerun_attempt()
    run_row, job_rows = nz.github_run_rows(REPO, run, jobs, collected_at=COLLECTED)
    assert (run_row["run_id"], run_row["attempt"], run_row["run_number"]) == ("7001", 2, 42)
    assert (run_row["status"], run_row["status_raw"]) == ("success", "success")
    assert run_row["created_at"] == utc(10)  # the run's creation, as sent
    assert run_row["started_at"] == utc(14)  # run_started_at of this attempt
    assert run_row["finished_at"] == utc(14, 9)
    assert run_row["duration_s"] == 510.0  # 14:09:00 - 14:00:30: the carried-over job does not count
    assert run_row["queue_s"] == 30.0  # from the attempt's run_started_at, not the run's created_at
    assert run_row["actor"] == "bob"  # triggering_actor of the re-run
    assert run_row["author"] == "Alice Doe"
    assert [(r["job_id"], r["attempt"]) for r in job_rows] == [("21", 2), ("11", 1)]
    assert job_rows[0]["queue_s"] == 30.0


def test_github_actor_falls_back_to_actor_and_workflow_to_path() -> None:
    run_row, _ = nz.github_run_rows(
        REPO, gh_run(triggering_actor=None, name="", head_commit=None), [], collected_at=COLLECTED
    )
    assert run_row["actor"] == "alice"
    assert run_row["workflow"] == ".github/workflows/ci.yml"
    assert run_row["name"] is None
    assert run_row["author"] is None


def test_github_attempt_without_jobs_uses_updated_minus_run_started() -> None:
    run = gh_run(conclusion="success", run_started_at="2026-11-20T10:00:05Z", updated_at="2026-11-20T10:00:50Z")
    run_row, job_rows = nz.github_run_rows(REPO, run, [], collected_at=COLLECTED)
    assert job_rows == []
    assert run_row["duration_s"] == 45.0
    assert run_row["finished_at"] == utc(10, 0, 50)
    assert run_row["queue_s"] is None


def test_github_attempt_whose_jobs_were_all_skipped() -> None:
    jobs = [gh_job(31, "deploy", "2026-11-20T10:00:02Z", "2026-11-20T10:00:04Z", "2026-11-20T10:00:06Z", "skipped")]
    run_row, _ = nz.github_run_rows(REPO, gh_run(conclusion="skipped"), jobs, collected_at=COLLECTED)
    assert (run_row["status"], run_row["duration_s"], run_row["finished_at"]) == ("skipped", 2.0, utc(10, 0, 6))
    assert run_row["queue_s"] == 4.0


def test_github_running_attempt_has_no_end() -> None:
    run = gh_run(status="in_progress", conclusion=None, updated_at="2026-11-20T10:05:00Z")
    jobs = [
        gh_job(41, "lint", "2026-11-20T10:00:02Z", "2026-11-20T10:00:20Z", None, None, status="in_progress"),
        # queued: the API fills started_at with the creation time; it has not started
        gh_job(42, "test", "2026-11-20T10:00:02Z", "2026-11-20T10:00:02Z", None, None, status="queued"),
    ]
    run_row, job_rows = nz.github_run_rows(REPO, run, jobs, collected_at=COLLECTED)
    assert (run_row["status"], run_row["status_raw"], run_row["conclusion"]) == ("running", "in_progress", None)
    assert (run_row["finished_at"], run_row["duration_s"]) == (None, None)
    assert run_row["queue_s"] == 20.0  # the job that started
    queued = job_rows[1]
    assert (queued["status"], queued["status_raw"], queued["started_at"]) == ("running", "queued", None)
    assert (queued["queue_s"], queued["duration_s"], queued["runner"]) == (None, None, None)
    assert job_rows[0]["queue_s"] == 18.0
    assert job_rows[0]["duration_s"] is None


def test_github_unknown_conclusion_is_other_with_raw_kept(caplog: pytest.LogCaptureFixture) -> None:
    jobs = attempt_one_jobs()
    jobs[0]["conclusion"] = "superseded"
    run_row, job_rows = nz.github_run_rows(REPO, gh_run(conclusion="superseded"), jobs, collected_at=COLLECTED)
    assert (run_row["status"], run_row["status_raw"], run_row["conclusion"]) == ("other", "superseded", "superseded")
    assert (job_rows[0]["status"], job_rows[0]["status_raw"]) == ("other", "superseded")
    assert run_row["finished_at"] == utc(10, 12)  # still completed: timing as usual
    messages = warnings_of(caplog)
    assert len(messages) == 2
    assert all("'superseded'" in m for m in messages)
    assert sum("(acme/api run 7001 attempt 1)" in m for m in messages) == 1
    assert sum("(acme/api run 7001 job 11)" in m for m in messages) == 1


def test_github_malformed_and_zero_timestamps_do_not_crash(caplog: pytest.LogCaptureFixture) -> None:
    jobs = attempt_one_jobs()
    jobs[1]["started_at"] = "not-a-time"
    jobs[1]["created_at"] = "0001-01-01T00:00:00Z"
    jobs[0]["completed_at"] = "2026-11-20T25:00:00Z"
    run_row, job_rows = nz.github_run_rows(REPO, gh_run(updated_at="garbage"), jobs, collected_at=COLLECTED)
    assert (job_rows[1]["started_at"], job_rows[1]["created_at"], job_rows[1]["queue_s"]) == (None, None, None)
    assert job_rows[0]["finished_at"] is None
    assert run_row["updated_at"] is None
    # the run's span uses what is left: lint started 10:00:20, test completed 10:12:00
    assert (run_row["duration_s"], run_row["finished_at"]) == (700.0, utc(10, 12))
    messages = warnings_of(caplog)
    assert len(messages) == 3  # the zero time is not malformed
    assert any("acme/api run 7001 job 12: started_at" in m and "'not-a-time'" in m for m in messages)
    assert any("acme/api run 7001 job 11: completed_at" in m for m in messages)
    assert any("acme/api run 7001 attempt 1: updated_at" in m for m in messages)


def test_github_clock_skew_gives_zero_not_negative() -> None:
    jobs = [gh_job(51, "lint", "2026-11-20T10:00:09Z", "2026-11-20T10:00:08Z", "2026-11-20T10:01:00Z")]
    _, job_rows = nz.github_run_rows(REPO, gh_run(conclusion="success"), jobs, collected_at=COLLECTED)
    assert job_rows[0]["queue_s"] == 0.0


# ---- GitLab: single pipeline, jobs with include_retried=true, bridges --------------------------------


def gl_job(
    job_id: int,
    name: str,
    status: str,
    *,
    stage: str = "test",
    reason: str | None = None,
    created: str = "2026-11-20T11:00:00.000+01:00",
    started: str | None = "2026-11-20T11:00:10.500+01:00",
    finished: str | None = "2026-11-20T11:02:10.500+01:00",
    duration: float | None = 120.0,
    queued: float | None = 10.5,
    allow_failure: bool = False,
    runner: str | None = "shared-runner-1",
) -> dict[str, Any]:
    job: dict[str, Any] = {
        "id": job_id,
        "status": status,
        "stage": stage,
        "name": name,
        "ref": "main",
        "tag": False,
        "coverage": None,
        "allow_failure": allow_failure,
        "created_at": created,
        "started_at": started,
        "finished_at": finished,
        "erased_at": None,
        "duration": duration,
        "queued_duration": queued,
        "user": {"id": 1, "username": "ana.lima", "name": "Ana Lima"},
        "commit": {"id": "b" * 40, "author_name": "Ana Lima", "author_email": "ana@acme.dev"},
        "pipeline": {"id": 900, "iid": 12, "project_id": 7, "status": "failed", "source": "push"},
        "web_url": f"https://gitlab.acme.dev/acme/platform/billing/-/jobs/{job_id}",
        "runner": None if runner is None else {"id": 3, "description": runner, "is_shared": True},
    }
    if status == "failed":
        job["failure_reason"] = reason
    return job


def gl_pipeline(**over: Any) -> dict[str, Any]:
    pipeline = {
        "id": 900,
        "iid": 12,
        "project_id": 7,
        "sha": "b" * 40,
        "ref": "main",
        "status": "failed",
        "source": "push",
        "name": None,
        "created_at": "2026-11-20T11:00:00.000+01:00",
        "updated_at": "2026-11-20T11:09:40.000+01:00",
        "web_url": "https://gitlab.acme.dev/acme/platform/billing/-/pipelines/900",
        "before_sha": "c" * 40,
        "tag": False,
        "user": {"id": 1, "username": "ana.lima", "name": "Ana Lima"},
        "started_at": "2026-11-20T11:00:07.000+01:00",
        "finished_at": "2026-11-20T11:09:40.000+01:00",
        "committed_at": "2026-11-20T10:58:00.000+01:00",
        "duration": 574,
        "queued_duration": 7,
        "coverage": None,
        "detailed_status": {"group": "failed"},
    }
    pipeline.update(over)
    return pipeline


def gl_bridge(job_id: int, name: str, downstream: dict[str, Any] | None, status: str = "success") -> dict[str, Any]:
    bridge = gl_job(job_id, name, status, stage="deploy", runner=None)
    del bridge["runner"]
    bridge["downstream_pipeline"] = downstream
    return bridge


def gl_jobs() -> list[dict[str, Any]]:
    return [
        gl_job(101, "build", "success", stage="build"),
        gl_job(102, "unit-tests", "failed", reason="script_failure"),  # retried by 120
        gl_job(103, "lint", "failed", reason="script_failure", allow_failure=True),
        gl_job(104, "e2e", "failed", reason="job_execution_timeout", duration=3600.0),
        gl_job(105, "deploy", "manual", stage="deploy", started=None, finished=None, duration=None, queued=None),
        gl_job(120, "unit-tests", "success", created="2026-11-20T11:05:00.000+01:00"),  # the retry
    ]


def gl_bridges() -> list[dict[str, Any]]:
    return [
        gl_bridge(106, "trigger-docs", {"id": 901, "project_id": 7, "status": "success", "source": "parent_pipeline"}),
        gl_bridge(107, "trigger-infra", {"id": 5001, "project_id": 8, "status": "success", "source": "pipeline"}),
        gl_bridge(108, "trigger-broken", None, status="failed"),
    ]


def test_gitlab_pipeline_row_exactly(caplog: pytest.LogCaptureFixture) -> None:
    run_row, _ = nz.gitlab_run_rows(PROJECT, gl_pipeline(), gl_jobs(), gl_bridges(), collected_at=COLLECTED)
    assert run_row == {
        "provider": "gitlab",
        "repo": PROJECT,
        "run_id": "900",
        "attempt": 1,
        "name": None,
        "branch": "main",
        "sha": "b" * 40,
        "author": "Ana Lima",
        "event": "push",
        "status": "failure",
        "conclusion": None,
        "created_at": utc(10),  # 11:00+01:00
        "started_at": utc(10, 0, 7),
        "finished_at": utc(10, 9, 40),
        "duration_s": 574.0,  # GitLab's duration as sent (excludes queue)
        "queue_s": 7.0,
        "url": "https://gitlab.acme.dev/acme/platform/billing/-/pipelines/900",
        "collected_at": COLLECTED,
        "status_raw": "failed",
        "run_number": 12,
        "workflow_id": None,
        "workflow": "push",  # no pipeline name: its source
        "actor": "ana.lima",
        "parent_run_id": None,
        "updated_at": utc(10, 9, 40),
    }
    assert warnings_of(caplog) == []


def test_gitlab_job_rows() -> None:
    _, job_rows = nz.gitlab_run_rows(PROJECT, gl_pipeline(), gl_jobs(), gl_bridges(), collected_at=COLLECTED)
    got = {
        r["job_id"]: (r["name"], r["status"], r["status_raw"], r["failure_reason"], r["retried"], r["allow_failure"])
        for r in job_rows
    }
    assert got == {
        "101": ("build", "success", "success", None, False, False),
        "102": ("unit-tests", "failure", "failed", "script_failure", True, False),
        "103": ("lint", "failure", "failed", "script_failure", False, True),
        "104": ("e2e", "timed_out", "failed", "job_execution_timeout", False, False),
        "105": ("deploy", "skipped", "manual", None, False, False),
        "120": ("unit-tests", "success", "success", None, False, False),
        "106": ("trigger-docs", "success", "success", None, False, False),
        "107": ("trigger-infra", "success", "success", None, False, False),
        "108": ("trigger-broken", "failure", "failed", None, False, False),
    }
    build = job_rows[0]
    assert build == {
        "provider": "gitlab",
        "repo": PROJECT,
        "run_id": "900",
        "attempt": 1,
        "job_id": "101",
        "name": "build",
        "stage": "build",
        "status": "success",
        "conclusion": None,
        "started_at": utc(10, 0, 10, 500000),
        "finished_at": utc(10, 2, 10, 500000),
        "duration_s": 120.0,
        "queue_s": 10.5,  # queued_duration as sent
        "runner": "shared-runner-1",
        "failure_reason": None,
        "url": "https://gitlab.acme.dev/acme/platform/billing/-/jobs/101",
        "status_raw": "success",
        "created_at": utc(10),
        "retried": False,
        "allow_failure": False,
        "steps": None,
    }
    by_id = {r["job_id"]: r for r in job_rows}
    assert (by_id["105"]["started_at"], by_id["105"]["duration_s"], by_id["105"]["queue_s"]) == (None, None, None)
    assert by_id["106"]["runner"] is None  # bridges run no runner
    assert by_id["106"]["stage"] == "deploy"


def test_gitlab_retried_field_wins_when_the_api_sends_it() -> None:
    jobs = gl_jobs()
    jobs[1]["retried"] = False  # sent explicitly: believed even though a newer "unit-tests" exists
    jobs[0]["retried"] = True
    _, job_rows = nz.gitlab_run_rows(PROJECT, gl_pipeline(), jobs, [], collected_at=COLLECTED)
    by_id = {r["job_id"]: r["retried"] for r in job_rows}
    assert by_id == {"101": True, "102": False, "103": False, "104": False, "105": False, "120": False}


def test_gitlab_retried_by_id_not_list_order() -> None:
    jobs = list(reversed(gl_jobs()))  # the newest first
    jobs.append(gl_job(99, "unit-tests", "failed", reason="script_failure"))  # an even older try
    _, job_rows = nz.gitlab_run_rows(PROJECT, gl_pipeline(), jobs, [], collected_at=COLLECTED)
    assert sorted(r["job_id"] for r in job_rows if r["retried"]) == ["102", "99"]


def test_gitlab_child_pipeline_links() -> None:
    assert nz.child_pipeline_ids(gl_bridges()) == ["901"]  # same project only; a null downstream gives nothing
    assert nz.child_pipeline_ids([]) == []
    twice = gl_bridges()[:1] * 2  # the same child listed twice (pages overlapping)
    assert nz.child_pipeline_ids(twice) == ["901"]
    no_projects = gl_bridge(109, "trigger-x", {"id": 902})
    del no_projects["pipeline"]
    assert nz.child_pipeline_ids([no_projects]) == ["902"]
    child = gl_pipeline(id=901, iid=13, source="parent_pipeline", name="docs", status="success")
    run_row, _ = nz.gitlab_run_rows(PROJECT, child, [], [], parent_run_id=900, collected_at=COLLECTED)
    assert (run_row["run_id"], run_row["parent_run_id"]) == ("901", "900")
    assert (run_row["workflow"], run_row["name"], run_row["event"]) == ("docs", "docs", "parent_pipeline")
    assert run_row["author"] is None  # no jobs to read the commit author from


@pytest.mark.parametrize(
    ("status", "finished_at", "expected_finished", "ours"),
    [
        ("canceled", None, utc(10, 9, 40), "cancelled"),  # completed without finished_at: updated_at
        ("skipped", None, utc(10, 9, 40), "skipped"),
        ("running", None, None, "running"),
        ("manual", None, None, "skipped"),  # blocked on a manual job: not completed, no end
        ("success", "2026-11-20T11:09:00.000+01:00", utc(10, 9), "success"),
    ],
)
def test_gitlab_pipeline_end(status: str, finished_at: str | None, expected_finished: Any, ours: str) -> None:
    pipeline = gl_pipeline(status=status, finished_at=finished_at, duration=None)
    run_row, _ = nz.gitlab_run_rows(PROJECT, pipeline, [], [], collected_at=COLLECTED)
    assert (run_row["status"], run_row["finished_at"], run_row["duration_s"]) == (ours, expected_finished, None)


def test_gitlab_unknown_status_and_bad_values_are_kept_and_reported(caplog: pytest.LogCaptureFixture) -> None:
    jobs = [gl_job(201, "build", "exploded", duration="fast", queued=-3, started="2026-11-20T99:00:00Z")]
    pipeline = gl_pipeline(status="exploded", created_at="0001-01-01T00:00:00Z", name="nightly")
    run_row, job_rows = nz.gitlab_run_rows(PROJECT, pipeline, jobs, [], collected_at=COLLECTED)
    assert (run_row["status"], run_row["status_raw"], run_row["workflow"]) == ("other", "exploded", "nightly")
    assert run_row["created_at"] is None
    assert run_row["finished_at"] == utc(10, 9, 40)  # sent: kept even though the status is unknown
    job = job_rows[0]
    assert (job["status"], job["status_raw"]) == ("other", "exploded")
    assert (job["duration_s"], job["queue_s"], job["started_at"]) == (None, None, None)
    messages = warnings_of(caplog)
    assert len(messages) == 5
    assert any("status 'exploded' (acme/platform/billing pipeline 900)" in m for m in messages)
    assert any("status 'exploded' (acme/platform/billing pipeline 900 job 201)" in m for m in messages)
    assert any("job 201: duration" in m and "'fast'" in m for m in messages)
    assert any("job 201: queued_duration" in m for m in messages)
    assert any("job 201: started_at" in m for m in messages)


# ---- deployments --------------------------------------------------------------------------------


def gh_deployment(**over: Any) -> dict[str, Any]:
    deployment = {
        "id": 3001,
        "url": "https://api.github.com/repos/acme/api/deployments/3001",
        "sha": "a" * 40,
        "ref": "main",
        "task": "deploy",
        "environment": "production",
        "original_environment": "production",
        "created_at": "2026-11-20T12:00:00Z",
        "updated_at": "2026-11-20T12:05:00Z",
        "creator": gh_user("alice"),
        "transient_environment": False,
        "production_environment": True,
    }
    deployment.update(over)
    return deployment


def gh_status(status_id: int, state: str, at: str) -> dict[str, Any]:
    return {
        "id": status_id,
        "state": state,
        "created_at": at,
        "updated_at": at,
        "environment": "production",
        "log_url": f"https://github.com/acme/api/actions/runs/7001?status={status_id}",
        "target_url": "",
        "description": "",
    }


DEPLOYED = [  # newest first, as the API lists them
    gh_status(3, "success", "2026-11-20T12:05:00Z"),
    gh_status(2, "in_progress", "2026-11-20T12:01:00Z"),
    gh_status(1, "queued", "2026-11-20T12:00:01Z"),
]


@pytest.mark.parametrize(
    ("statuses", "status", "raw", "finished", "url_status"),
    [
        (DEPLOYED, "success", "success", utc(12, 5), 3),
        (list(reversed(DEPLOYED)), "success", "success", utc(12, 5), 3),  # order as sent does not matter
        ([gh_status(4, "failure", "2026-11-20T12:06:00Z"), *DEPLOYED[1:]], "failure", "failure", utc(12, 6), 4),
        ([gh_status(4, "error", "2026-11-20T12:06:00Z"), *DEPLOYED[1:]], "failure", "error", utc(12, 6), 4),
        # superseded by a later deployment: it had succeeded, at the time of its success
        ([gh_status(9, "inactive", "2026-11-22T08:00:00Z"), *DEPLOYED], "success", "inactive", utc(12, 5), 3),
        (DEPLOYED[1:], "running", "in_progress", None, 2),
        (DEPLOYED[2:], "running", "queued", None, 1),
        ([], "running", None, None, None),
        # same second: the higher id is the newer status
        (
            [gh_status(5, "success", "2026-11-20T12:05:00Z"), gh_status(6, "failure", "2026-11-20T12:05:00Z")],
            "failure",
            "failure",
            utc(12, 5),
            6,
        ),
    ],
)
def test_github_deployment_row(
    caplog: pytest.LogCaptureFixture,
    statuses: list[dict[str, Any]],
    status: str,
    raw: str | None,
    finished: dt.datetime | None,
    url_status: int | None,
) -> None:
    row = nz.github_deployment_row(REPO, gh_deployment(), statuses, collected_at=COLLECTED)
    url = (
        f"https://github.com/acme/api/actions/runs/7001?status={url_status}"
        if url_status
        else "https://api.github.com/repos/acme/api/deployments/3001"
    )
    assert row == {
        "provider": "github",
        "repo": REPO,
        "deployment_id": "3001",
        "environment": "production",
        "sha": "a" * 40,
        "ref": "main",
        "status": status,
        "status_raw": raw,
        "created_at": utc(12),
        "finished_at": finished,
        "url": url,
        "collected_at": COLLECTED,
        "commits": None,
        "redeploy_of": None,
    }
    assert warnings_of(caplog) == []


def test_github_deployment_only_inactive_left(caplog: pytest.LogCaptureFixture) -> None:
    statuses = [gh_status(9, "inactive", "2026-11-22T08:00:00Z")]
    row = nz.github_deployment_row(REPO, gh_deployment(), statuses, collected_at=COLLECTED)
    assert (row["status"], row["status_raw"], row["finished_at"]) == ("success", "inactive", utc(12))
    (message,) = warnings_of(caplog)
    assert "acme/api deployment 3001" in message
    assert "inactive" in message


def test_github_deployment_unknown_state(caplog: pytest.LogCaptureFixture) -> None:
    statuses = [gh_status(7, "destroyed", "2026-11-20T12:07:00Z"), *DEPLOYED]
    row = nz.github_deployment_row(REPO, gh_deployment(), statuses, collected_at=COLLECTED)
    assert (row["status"], row["status_raw"], row["finished_at"]) == ("other", "destroyed", utc(12, 7))
    (message,) = warnings_of(caplog)
    assert "'destroyed'" in message
    assert "acme/api deployment 3001" in message


def gl_deployment(status: str, **over: Any) -> dict[str, Any]:
    deployment = {
        "id": 41,
        "iid": 2,
        "ref": "main",
        "sha": "b" * 40,
        "created_at": "2026-11-20T13:00:00.000+01:00",
        "updated_at": "2026-11-20T13:10:00.000+01:00",
        "status": status,
        "user": {"id": 1, "username": "ana.lima"},
        "environment": {"id": 9, "name": "production", "external_url": "https://billing.acme.dev"},
        "deployable": {
            "id": 130,
            "name": "deploy-prod",
            "status": status,
            "finished_at": "2026-11-20T13:04:30.000+01:00",
            "web_url": "https://gitlab.acme.dev/acme/platform/billing/-/jobs/130",
        },
    }
    deployment.update(over)
    return deployment


@pytest.mark.parametrize(
    ("deployment", "status", "finished"),
    [
        (gl_deployment("success"), "success", utc(12, 4, 30)),  # the deploy job's finish
        (gl_deployment("failed"), "failure", utc(12, 4, 30)),
        (gl_deployment("canceled"), "cancelled", utc(12, 4, 30)),
        (gl_deployment("success", deployable=None), "success", utc(12, 10)),  # no job: updated_at
        (gl_deployment("success", finished_at="2026-11-20T12:04:00Z"), "success", utc(12, 4)),  # sent: used
        (gl_deployment("running"), "running", None),
        (gl_deployment("blocked"), "running", None),
        (gl_deployment("created"), "running", None),
    ],
)
def test_gitlab_deployment_row(deployment: dict[str, Any], status: str, finished: dt.datetime | None) -> None:
    row = nz.gitlab_deployment_row(PROJECT, deployment, collected_at=COLLECTED)
    has_job = deployment["deployable"] is not None
    assert row == {
        "provider": "gitlab",
        "repo": PROJECT,
        "deployment_id": "41",
        "environment": "production",
        "sha": "b" * 40,
        "ref": "main",
        "status": status,
        "status_raw": deployment["status"],
        "created_at": utc(12),
        "finished_at": finished,
        "url": "https://gitlab.acme.dev/acme/platform/billing/-/jobs/130" if has_job else None,
        "collected_at": COLLECTED,
        "commits": None,
        "redeploy_of": None,
    }


# ---- redeploys of old SHAs ----------------------------------------------------------------------


def dep(deployment_id: int, sha: str, status: str = "success", hour: int | None = None, env: str = "production"):
    """A ci_deployments row as far as mark_redeploys reads it (created at ``hour``, default: its id)."""
    return {
        "deployment_id": str(deployment_id),
        "environment": env,
        "sha": sha,
        "status": status,
        "created_at": utc(deployment_id if hour is None else hour),
    }


def marks(rows: list[dict[str, Any]]) -> dict[str, str | None]:
    return {r["deployment_id"]: r["redeploy_of"] for r in rows}


def test_a_redeploy_of_an_old_sha_names_its_earlier_deployment() -> None:
    rows = [
        dep(1, "a"),
        dep(2, "b"),
        dep(3, "b"),  # the SHA that is there, again: no rollback
        dep(4, "a"),  # back to a: the rollback of 1
        dep(5, "a", "failure"),  # a is there already
        dep(6, "c", "failure"),  # failed: a is still there
        dep(7, "b", "running"),  # an attempt to go back to b (3, the latest deployment of b)
        dep(8, "c"),  # c never succeeded before
        dep(9, "b"),
        dep(10, "a", env="staging"),  # another environment: its own history
    ]
    changed = nz.mark_redeploys(list(reversed(rows)))  # the order given does not matter
    assert changed == {}
    assert marks(rows) == {
        "1": None,
        "2": None,
        "3": None,
        "4": "1",
        "5": None,
        "6": None,
        "7": "3",
        "8": None,
        "9": "3",
        "10": None,
    }


def test_redeploys_read_the_stored_history_and_fix_stored_rows() -> None:
    """GitLab lists only recently updated deployments: the history comes from the store too; a stored row
    whose mark the new rows change (or that was stored before the column existed) is returned."""
    stored = [
        {**dep(1, "a"), "redeploy_of": None},
        {**dep(2, "b", "running"), "redeploy_of": None},
        {**dep(3, "a"), "redeploy_of": None},  # stored before 2 succeeded: no mark yet
        {**dep(4, "b"), "redeploy_of": "99"},  # a stale mark
    ]
    rows = [dep(2, "b"), dep(5, "a")]  # 2 has succeeded since; 5 is new
    changed = nz.mark_redeploys(rows, stored)
    assert marks(rows) == {"2": None, "5": "3"}
    assert changed == {"3": "1", "4": "2"}
    assert stored[1]["status"] == "running"  # the stored rows are read, not changed
    # with the stored rows fixed, the same collection changes nothing
    fixed = [{**r, "redeploy_of": changed.get(r["deployment_id"], r["redeploy_of"])} for r in stored]
    again = [dep(2, "b"), dep(5, "a")]
    assert nz.mark_redeploys(again, fixed) == {}
    assert marks(again) == marks(rows)


def test_redeploys_order_by_creation_then_id_and_skip_unknown_shas() -> None:
    rows = [dep(12, "a", hour=1), dep(11, "b", hour=1), dep(13, "a", hour=2), dep(14, None, hour=3)]
    nz.mark_redeploys(rows)
    assert marks(rows) == {"11": None, "12": None, "13": None, "14": None}  # 11 then 12: a is there at 13
    rows = [dep(2, "a", hour=1), dep(10, "b", hour=1), dep(3, "a", hour=2)]  # ids compared as numbers
    nz.mark_redeploys(rows)
    assert marks(rows) == {"2": None, "10": None, "3": "2"}


# ---- rows fit the tables ------------------------------------------------------------------------


def every_row() -> dict[str, list[dict[str, Any]]]:
    gh1, gh1_jobs = nz.github_run_rows(REPO, gh_run(), attempt_one_jobs(), collected_at=COLLECTED)
    gh2, gh2_jobs = nz.github_run_rows(REPO, *rerun_attempt(), collected_at=COLLECTED)
    gl, gl_job_rows = nz.gitlab_run_rows(PROJECT, gl_pipeline(), gl_jobs(), gl_bridges(), collected_at=COLLECTED)
    child, _ = nz.gitlab_run_rows(
        PROJECT, gl_pipeline(id=901, name="docs"), [], [], parent_run_id="900", collected_at=COLLECTED
    )
    # the re-run attempt lists lint (attempt 1) again: one row per natural key, as the collector would dedupe
    jobs = {(r["provider"], r["run_id"], r["attempt"], r["job_id"]): r for r in gh1_jobs + gh2_jobs + gl_job_rows}
    return {
        "ci_runs": [gh1, gh2, gl, child],
        "ci_jobs": list(jobs.values()),
        "ci_deployments": [
            nz.github_deployment_row(REPO, gh_deployment(), DEPLOYED, collected_at=COLLECTED),
            nz.gitlab_deployment_row(PROJECT, gl_deployment("success"), collected_at=COLLECTED),
        ],
    }


def test_rows_write_exactly_the_tables_columns() -> None:
    for name, rows in every_row().items():
        table = schema.metadata.tables[name]
        columns = set(table.c.keys()) - {"id"}
        for row in rows:
            assert set(row) <= columns, (name, set(row) - columns)
            assert set(row) == columns, (name, columns - set(row))  # every column filled, the same keys in every row


def test_natural_keys_are_the_tables_unique_constraints() -> None:
    for table, keys in [
        (schema.ci_runs, nz.RUN_KEYS),
        (schema.ci_jobs, nz.JOB_KEYS),
        (schema.ci_deployments, nz.DEPLOYMENT_KEYS),
    ]:
        uniques = [tuple(c.name for c in u.columns) for u in table.constraints if isinstance(u, sa.UniqueConstraint)]
        assert keys in uniques


def test_strings_are_cut_to_the_column_length(caplog: pytest.LogCaptureFixture) -> None:
    run_row, _ = nz.github_run_rows(REPO, gh_run(head_branch="b" * 600), [], collected_at=COLLECTED)
    assert run_row["branch"] == "b" * 512
    (message,) = warnings_of(caplog)
    assert "ci_runs.branch: 600 characters cut to 512" in message


def test_collected_at_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        nz.github_run_rows(REPO, gh_run(), [], collected_at=dt.datetime(2026, 11, 21, 3, 0))


def test_inputs_are_not_modified() -> None:
    run, jobs = gh_run(), attempt_one_jobs()
    pipeline, gjobs, bridges = gl_pipeline(), gl_jobs(), gl_bridges()
    before = copy.deepcopy((run, jobs, pipeline, gjobs, bridges))
    nz.github_run_rows(REPO, run, jobs, collected_at=COLLECTED)
    nz.gitlab_run_rows(PROJECT, pipeline, gjobs, bridges, collected_at=COLLECTED)
    assert (run, jobs, pipeline, gjobs, bridges) == before


def read_back(store: ResultsStore, table: sa.Table) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [
            {k: v for k, v in r._mapping.items() if k != "id"}
            for r in conn.execute(sa.select(table).order_by(table.c.id))
        ]


def test_rows_upsert_into_the_store_idempotently(results_store: ResultsStore) -> None:
    keys = {"ci_runs": nz.RUN_KEYS, "ci_jobs": nz.JOB_KEYS, "ci_deployments": nz.DEPLOYMENT_KEYS}
    rows = every_row()
    for name, table_rows in rows.items():
        table = schema.metadata.tables[name]
        assert results_store.upsert(table, table_rows, keys=list(keys[name])) == len(table_rows)
        first = read_back(results_store, table)
        assert first == table_rows  # every value as built: aware UTC times, floats, JSON steps, booleans
        results_store.upsert(table, every_row()[name], keys=list(keys[name]))  # the same interval again
        assert read_back(results_store, table) == first


def test_module_imports_no_airflow() -> None:
    code = (
        "import sys\n"
        "import devops_automation.workflows.ci_pipeline_analytics.normalize\n"
        "bad = sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "plugins")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "[]"
