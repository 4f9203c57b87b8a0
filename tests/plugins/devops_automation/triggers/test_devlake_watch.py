"""``assess``: what the DevLake watcher concludes from one look at the pipeline list (pure; table tests)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from devops_automation.hooks.devlake import (
    FAILED_STATUSES,
    KNOWN_STATUSES,
    PENDING_STATUSES,
    RUNNING,
    TERMINAL_STATUSES,
    WAITING_STATUSES,
)
from devops_automation.triggers.devlake_watch import DELETED, Assessment, assess, compact

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
HOUR = 3600.0


def iso(seconds_ago: float) -> str:
    return (NOW - dt.timedelta(seconds=seconds_ago)).isoformat().replace("+00:00", "Z")


def pipeline(pid: int, status: str, *, began_ago: float | None = None, **fields: Any) -> dict[str, Any]:
    """A pipeline as DevLake lists it (camelCase fields)."""
    return {
        "id": pid,
        "status": status,
        "blueprintId": 7,
        "name": f"p{pid}",
        "beganAt": iso(began_ago) if began_ago is not None else None,
        **fields,
    }


def test_the_status_sets_are_what_the_table_below_covers() -> None:
    """The cases below name every status DevLake has; a new one added to hooks/devlake.py fails here first."""
    assert {"TASK_CREATED", "TASK_RERUN", "TASK_RESUME"} == WAITING_STATUSES
    assert RUNNING == "TASK_RUNNING"
    assert {"TASK_COMPLETED", "TASK_FAILED", "TASK_CANCELLED", "TASK_PARTIAL"} == TERMINAL_STATUSES
    assert {"TASK_FAILED", "TASK_PARTIAL"} == FAILED_STATUSES
    assert KNOWN_STATUSES == TERMINAL_STATUSES | PENDING_STATUSES


# status, is a new failure, is unknown, counts as final (for all_terminal)
STATUS_TABLE = [
    pytest.param("TASK_CREATED", False, False, False, id="waiting-created"),
    pytest.param("TASK_RERUN", False, False, False, id="waiting-rerun"),
    pytest.param("TASK_RESUME", False, False, False, id="waiting-resume"),
    pytest.param("TASK_RUNNING", False, False, False, id="running"),
    pytest.param("TASK_COMPLETED", False, False, True, id="terminal-completed"),
    pytest.param("TASK_CANCELLED", False, False, True, id="terminal-cancelled"),
    pytest.param("TASK_FAILED", True, False, True, id="failed"),
    pytest.param("TASK_PARTIAL", True, False, True, id="partial"),
    pytest.param("TASK_SOMETHING_NEW", False, True, False, id="unknown"),
    pytest.param("", False, True, False, id="empty-status-is-unknown"),
]


@pytest.mark.parametrize("status, failure, unknown, final", STATUS_TABLE)
def test_one_pipeline_of_each_status(status: str, failure: bool, unknown: bool, final: bool) -> None:
    got = assess([5], [pipeline(5, status, began_ago=60)], now=NOW, stale_after_s=HOUR)
    assert list(got.pipelines) == [5]
    assert got.pipelines[5]["status"] == status
    assert got.new_failures == ([5] if failure else [])
    assert got.unknown_status == ([5] if unknown else [])
    assert got.all_terminal is final
    assert got.new_stale == []  # began a minute ago: nothing is stale


def test_a_watched_id_missing_from_the_listing_is_deleted_and_final() -> None:
    got = assess([3, 4], [pipeline(4, "TASK_COMPLETED"), pipeline(2, "TASK_FAILED")], now=NOW)
    assert got.pipelines[3] == {
        "id": 3,
        "status": DELETED,
        "blueprint_id": 0,
        "name": "",
        "message": "pipeline no longer exists in DevLake",
    }
    assert got.pipelines[4]["status"] == "TASK_COMPLETED"
    assert got.all_terminal is True
    assert got.new_failures == []  # pipeline 2 failed, but nobody watches it
    assert got.unknown_status == []
    assert sorted(got.pipelines) == [3, 4]


def test_unwatched_pipelines_in_the_listing_are_ignored() -> None:
    seen = [pipeline(i, "TASK_FAILED") for i in range(1, 10)] + [pipeline(10, "TASK_RUNNING", began_ago=10 * HOUR)]
    got = assess([4], seen, now=NOW, stale_after_s=HOUR)
    assert list(got.pipelines) == [4]
    assert got.new_failures == [4]
    assert got.new_stale == []


@pytest.mark.parametrize(
    "status, known_failures, expected",
    [
        pytest.param("TASK_FAILED", [], [1], id="failed-new"),
        pytest.param("TASK_FAILED", [1], [], id="failed-known"),
        pytest.param("TASK_PARTIAL", [], [1], id="partial-new"),
        pytest.param("TASK_PARTIAL", [1], [], id="partial-known"),
        pytest.param("TASK_FAILED", [2], [1], id="other-id-known"),
        pytest.param("TASK_FAILED", ["1"], [], id="known-as-string"),  # ids come back from JSON event state
    ],
)
def test_known_failures_are_not_reported_again(status: str, known_failures: list, expected: list[int]) -> None:
    got = assess([1], [pipeline(1, status)], now=NOW, known_failures=known_failures)
    assert got.new_failures == expected
    assert got.pipelines[1]["status"] == status  # still listed with its status either way
    assert got.all_terminal is True


# status, began (seconds ago, None = not started), stale_after_s, known_stale -> stale?
STALE_TABLE = [
    pytest.param(RUNNING, 2 * HOUR, HOUR, [], True, id="running-past-threshold"),
    pytest.param(RUNNING, HOUR - 1, HOUR, [], False, id="running-under-threshold"),
    pytest.param(RUNNING, HOUR, HOUR, [], False, id="running-exactly-at-threshold"),  # strictly longer than
    pytest.param(RUNNING, HOUR + 1, HOUR, [], True, id="running-just-past-threshold"),
    pytest.param(RUNNING, 2 * HOUR, HOUR, [1], False, id="running-known-stale"),
    pytest.param(RUNNING, 2 * HOUR, None, [], False, id="no-threshold"),
    pytest.param(RUNNING, 2 * HOUR, 0, [], False, id="zero-threshold-is-off"),
    pytest.param(RUNNING, None, HOUR, [], False, id="running-without-began-at"),
    pytest.param("TASK_CREATED", 2 * HOUR, HOUR, [], False, id="waiting-created-never"),
    pytest.param("TASK_RERUN", 2 * HOUR, HOUR, [], False, id="waiting-rerun-never"),
    pytest.param("TASK_RESUME", 2 * HOUR, HOUR, [], False, id="waiting-resume-never"),
    pytest.param("TASK_COMPLETED", 2 * HOUR, HOUR, [], False, id="terminal-never"),
    pytest.param("TASK_FAILED", 2 * HOUR, HOUR, [], False, id="failed-never"),
    pytest.param("TASK_SOMETHING_NEW", 2 * HOUR, HOUR, [], False, id="unknown-never"),
]


@pytest.mark.parametrize("status, began_ago, stale_after_s, known_stale, stale", STALE_TABLE)
def test_stale_only_for_running_past_the_threshold(
    status: str, began_ago: float | None, stale_after_s: float | None, known_stale: list[int], stale: bool
) -> None:
    got = assess(
        [1], [pipeline(1, status, began_ago=began_ago)], now=NOW, stale_after_s=stale_after_s, known_stale=known_stale
    )
    assert got.new_stale == ([1] if stale else [])


@pytest.mark.parametrize(
    "began_at", ["0001-01-01T00:00:00Z", "", "not a time"], ids=["go-zero-time", "empty", "garbage"]
)
def test_a_running_pipeline_without_a_usable_start_is_never_stale(began_at: str) -> None:
    got = assess([1], [{**pipeline(1, RUNNING), "beganAt": began_at}], now=NOW, stale_after_s=1)
    assert got.new_stale == []
    assert got.pipelines[1]["began_at"] == began_at


def test_began_at_with_an_offset_is_compared_in_utc() -> None:
    two_hours_ago_in_paris = (NOW - dt.timedelta(hours=2)).astimezone(dt.timezone(dt.timedelta(hours=1))).isoformat()
    got = assess([1], [{**pipeline(1, RUNNING), "beganAt": two_hours_ago_in_paris}], now=NOW, stale_after_s=HOUR + 1800)
    assert got.new_stale == [1]


# statuses of the watched pipelines (None = deleted) -> all_terminal
ALL_TERMINAL_TABLE = [
    pytest.param({}, True, id="nothing-watched"),
    pytest.param({1: "TASK_COMPLETED", 2: "TASK_FAILED", 3: "TASK_CANCELLED", 4: "TASK_PARTIAL"}, True, id="all-final"),
    pytest.param({1: "TASK_COMPLETED", 2: None}, True, id="final-and-deleted"),
    pytest.param({1: None}, True, id="only-deleted"),
    pytest.param({1: "TASK_COMPLETED", 2: "TASK_RUNNING"}, False, id="one-running"),
    pytest.param({1: "TASK_COMPLETED", 2: "TASK_CREATED"}, False, id="one-waiting"),
    pytest.param({1: "TASK_COMPLETED", 2: "TASK_SOMETHING_NEW"}, False, id="one-unknown"),
]


@pytest.mark.parametrize("statuses, expected", ALL_TERMINAL_TABLE)
def test_all_terminal(statuses: dict[int, str | None], expected: bool) -> None:
    seen = [pipeline(pid, status) for pid, status in statuses.items() if status is not None]
    got = assess(statuses, seen, now=NOW)
    assert sorted(got.pipelines) == sorted(statuses)
    assert got.all_terminal is expected


def test_a_mixed_listing_sorts_every_pipeline_once() -> None:
    seen = [
        pipeline(10, "TASK_COMPLETED"),
        pipeline(11, "TASK_FAILED"),
        pipeline(12, "TASK_PARTIAL"),
        pipeline(13, RUNNING, began_ago=3 * HOUR),
        pipeline(14, RUNNING, began_ago=3 * HOUR),
        pipeline(15, "TASK_CREATED", began_ago=3 * HOUR),
        pipeline(16, "TASK_WEIRD"),
    ]
    got = assess(
        [17, 16, 15, 14, 13, 12, 11, 10], seen, now=NOW, known_failures=[12], known_stale=[14], stale_after_s=HOUR
    )
    assert list(got.pipelines) == [10, 11, 12, 13, 14, 15, 16, 17]  # in id order
    assert got.new_failures == [11]
    assert got.new_stale == [13]
    assert got.unknown_status == [16]
    assert got.pipelines[17]["status"] == DELETED
    assert got.all_terminal is False


def test_ids_may_come_as_strings_from_json() -> None:
    got = assess(["3"], [{**pipeline(3, "TASK_FAILED"), "id": "3"}], now=NOW)
    assert list(got.pipelines) == [3]
    assert got.new_failures == [3]
    assert got.pipelines[3]["id"] == 3


def test_assess_returns_an_assessment_with_empty_lists_by_default() -> None:
    got = assess([], [pipeline(1, "TASK_FAILED")], now=NOW)
    assert got == Assessment(pipelines={}, new_failures=[], new_stale=[], unknown_status=[])


# -- compact --------------------------------------------------------------------------------------
def test_compact_keeps_the_json_safe_fields() -> None:
    raw = {
        "id": "42",
        "blueprintId": "7",
        "name": "nightly",
        "status": "TASK_FAILED",
        "beganAt": "2026-11-23T10:00:00Z",
        "finishedAt": "2026-11-23T10:05:00Z",
        "finishedTasks": 3,
        "totalTasks": 5,
        "spentSeconds": 300,
        "message": "boom",
        "plan": [[{"plugin": "github"}]],
        "stage": 2,  # not kept
    }
    assert compact(raw) == {
        "id": 42,
        "blueprint_id": 7,
        "name": "nightly",
        "status": "TASK_FAILED",
        "began_at": "2026-11-23T10:00:00Z",
        "finished_at": "2026-11-23T10:05:00Z",
        "finished_tasks": 3,
        "total_tasks": 5,
        "spent_seconds": 300,
        "message": "boom",
    }


def test_compact_fills_missing_fields_and_caps_the_message() -> None:
    got = compact({"id": 1, "blueprintId": None, "name": None, "status": None, "message": "x" * 5000})
    assert got == {
        "id": 1,
        "blueprint_id": 0,
        "name": "",
        "status": "",
        "began_at": None,
        "finished_at": None,
        "finished_tasks": None,
        "total_tasks": None,
        "spent_seconds": None,
        "message": "x" * 2000,
    }


def test_assess_stores_compact_pipelines() -> None:
    raw = pipeline(8, "TASK_COMPLETED", began_ago=60, spentSeconds=12, message="ok")
    got = assess([8], [raw], now=NOW)
    assert got.pipelines[8] == compact(raw)


def test_a_began_at_without_offset_is_utc_not_a_crash() -> None:
    began = (NOW - dt.timedelta(hours=2)).replace(tzinfo=None).isoformat()
    result = assess([1], [{"id": 1, "status": "TASK_RUNNING", "beganAt": began}], now=NOW, stale_after_s=3600)
    assert result.new_stale == [1]
