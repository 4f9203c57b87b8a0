"""``DevLakePipelinesSensor`` directly: what it defers with, and what it does with each trigger event.

The alert path is replaced by a recorder (``devops_automation.notifiers.alert``) and DevLake by a fake
hook for the table tests; one test at the end sends a real alert through the sandbox.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from devops_automation.sensors.devlake import DevLakePipelinesSensor, pipeline_ids
from devops_automation.triggers.devlake import DevLakePipelinesTrigger

UI = "https://lake.example.test"
RUN_ID = "scheduled__2026-11-23T06:00:00+00:00"


# -- pipeline_ids ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "given, expected",
    [
        pytest.param(None, [], id="none"),
        pytest.param([], [], id="empty-list"),
        pytest.param({}, [], id="empty-dict"),
        pytest.param("", [], id="empty-string"),
        pytest.param([3, 1, 2], [1, 2, 3], id="ints-sorted"),
        pytest.param([3, 3, 1], [1, 3], id="ints-deduplicated"),
        pytest.param(["7", 5], [5, 7], id="numeric-strings"),
        pytest.param([{"id": 9, "status": "TASK_RUNNING"}, {"id": "4"}], [4, 9], id="pipeline-dicts"),
        pytest.param([{"id": 2}, 1, {"id": 2}], [1, 2], id="dicts-and-ints"),
        pytest.param({"12": {"status": "x"}, 3: {}}, [3, 12], id="mapping-id-to-pipeline"),
    ],
)
def test_pipeline_ids(given: Any, expected: list[int]) -> None:
    assert pipeline_ids(given) == expected


@pytest.mark.parametrize(
    "given, error",
    [
        pytest.param([{"name": "no id"}], KeyError, id="dict-without-id"),
        pytest.param(["abc"], ValueError, id="not-a-number"),
        pytest.param([None], TypeError, id="none-item"),
    ],
)
def test_pipeline_ids_refuses_what_is_not_an_id(given: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        pipeline_ids(given)


# -- fakes ----------------------------------------------------------------------------------------
class FakeDevLake:
    """The three DevLakeHook calls the sensor's alerts make."""

    def __init__(self, projects: dict[int, str] | None = None) -> None:
        self.projects = {7: "acme"} if projects is None else projects
        self.calls: list[tuple[str, Any]] = []

    def ui_url(self) -> str:
        return UI

    def pipeline_tasks(self, pipeline_id: int) -> list[dict[str, Any]]:
        self.calls.append(("pipeline_tasks", pipeline_id))
        return [
            {"status": "TASK_COMPLETED", "plugin": "gitlab", "failedSubTask": "", "message": ""},
            {
                "status": "TASK_FAILED",
                "plugin": "github",
                "failedSubTask": "collectApiIssues",
                "message": "401 Bad credentials",
            },
        ]

    def blueprint(self, blueprint_id: int) -> dict[str, Any]:
        self.calls.append(("blueprint", blueprint_id))
        if blueprint_id not in self.projects:
            raise RuntimeError("404 blueprint not found")
        return {"id": blueprint_id, "projectName": self.projects[blueprint_id]}


@pytest.fixture
def alerts(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every alert() the sensor makes, instead of sending it."""
    sent: list[dict[str, Any]] = []

    def record(text: str, key: str, **kwargs: Any) -> None:
        sent.append({"text": text, "key": key, **{k: v for k, v in kwargs.items() if k != "logger"}})

    monkeypatch.setattr("devops_automation.notifiers.alert", record)
    return sent


@pytest.fixture
def devlake(monkeypatch: pytest.MonkeyPatch) -> FakeDevLake:
    fake = FakeDevLake()
    monkeypatch.setattr(DevLakePipelinesSensor, "_hook", lambda self: fake)
    return fake


class FakeDag:
    dag_id = "devlake_blueprint_monitor"


CONTEXT = {"run_id": RUN_ID, "dag": FakeDag()}


def sensor(**kw: Any) -> DevLakePipelinesSensor:
    return DevLakePipelinesSensor(
        task_id="watch", **{"pipelines": [1, 2, 3], "poll_interval": 5, "stale_after_s": 1800, **kw}
    )


def pipe(pid: int, status: str, **fields: Any) -> dict[str, Any]:
    """A pipeline as the trigger's events carry it (compact form)."""
    return {
        "id": pid,
        "blueprint_id": 7,
        "name": f"p{pid}",
        "status": status,
        "began_at": "2026-11-23T06:00:00Z",
        "finished_at": "2026-11-23T06:10:00Z" if status != "TASK_RUNNING" else None,
        "spent_seconds": 600,
        "message": "",
        **fields,
    }


def deferred(call: Any) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as info:
        call()
    return info.value


# -- execute ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("pipelines", [None, [], {}], ids=["none", "empty-list", "empty-dict"])
def test_nothing_to_watch_returns_at_once(pipelines: Any, alerts) -> None:
    assert sensor(pipelines=pipelines).execute(CONTEXT) == {}
    assert alerts == []


def test_execute_defers_to_the_trigger_with_the_ids_and_a_deadline() -> None:
    before = time.time()
    exc = deferred(
        lambda: sensor(
            pipelines=[{"id": 3}, {"id": 1}, 2], max_wait_s="600", page_size=50, unreachable_timeout_s=90
        ).execute(CONTEXT)
    )
    after = time.time()
    trig = exc.trigger
    assert type(trig) is DevLakePipelinesTrigger
    assert exc.method_name == "execute_complete"
    assert trig.pipeline_ids == [1, 2, 3]
    assert (trig.known_failures, trig.known_stale) == ([], [])
    assert before + 600 <= trig.deadline <= after + 600
    assert (trig.poll_interval, trig.page_size, trig.stale_after_s, trig.unreachable_timeout_s) == (
        5.0,
        50,
        1800.0,
        90.0,
    )
    assert trig.devlake_conn_id == "devlake_default"
    assert dt.timedelta(seconds=599) <= exc.timeout <= dt.timedelta(seconds=600)


def test_without_a_stale_threshold_the_trigger_has_none() -> None:
    exc = deferred(lambda: sensor(stale_after_s=None).execute(CONTEXT))
    assert exc.trigger.stale_after_s is None


# -- execute_complete ---------------------------------------------------------------------------------
def state(**kw: Any) -> dict[str, Any]:
    return {"pipeline_ids": [1, 2, 3], "known_failures": [], "known_stale": [], "deadline": time.time() + 3600, **kw}


# event status, new ids, the state's known lists -> alert keys, known lists of the re-deferral (None: no re-deferral)
EVENT_TABLE = [
    pytest.param(
        {
            "status": "failure",
            "new_failures": [2],
            "pipelines": {"1": pipe(1, "TASK_RUNNING"), "2": pipe(2, "TASK_FAILED"), "3": pipe(3, "TASK_COMPLETED")},
        },
        {},
        ["devlake:pipeline:2:TASK_FAILED:2026-11-23T06:10:00Z"],
        {"known_failures": [2], "known_stale": []},
        id="one-failure",
    ),
    pytest.param(
        {
            "status": "failure",
            "new_failures": [3, 1],
            "pipelines": {"1": pipe(1, "TASK_PARTIAL"), "2": pipe(2, "TASK_RUNNING"), "3": pipe(3, "TASK_FAILED")},
        },
        {"known_failures": [5], "known_stale": [2]},
        ["devlake:pipeline:3:TASK_FAILED:2026-11-23T06:10:00Z", "devlake:pipeline:1:TASK_PARTIAL:2026-11-23T06:10:00Z"],
        {"known_failures": [1, 3, 5], "known_stale": [2]},
        id="two-failures-added-to-known",
    ),
    pytest.param(
        {
            "status": "stale",
            "new_stale": [1],
            "pipelines": {"1": pipe(1, "TASK_RUNNING"), "2": pipe(2, "TASK_RUNNING"), "3": pipe(3, "TASK_CREATED")},
        },
        {"known_failures": [9]},
        ["devlake:pipeline:1:stale"],
        {"known_failures": [9], "known_stale": [1]},
        id="one-stale",
    ),
    pytest.param(
        {
            "status": "stale",
            "new_stale": [3],
            "pipelines": {"1": pipe(1, "TASK_RUNNING"), "3": pipe(3, "TASK_RUNNING")},
        },
        {"known_stale": [1]},
        ["devlake:pipeline:3:stale"],
        {"known_failures": [], "known_stale": [1, 3]},
        id="stale-added-to-known",
    ),
]


@pytest.mark.parametrize("event, known, keys, redeferred", EVENT_TABLE)
def test_failure_and_stale_events_alert_once_each_and_defer_again(
    alerts, devlake, event: dict, known: dict, keys: list[str], redeferred: dict
) -> None:
    st = state(**known)
    exc = deferred(lambda: sensor().execute_complete(CONTEXT, {**event, "state": st}))
    assert [a["key"] for a in alerts] == keys
    for a in alerts:
        assert (a["telegram_conn_id"], a["slack_conn_id"]) == ("telegram_default", "slack_default")
        assert "acme" in a["text"]  # the project, looked up from the blueprint
        assert f'href="{UI}/projects/acme"' in a["text"]
    trig = exc.trigger
    assert exc.method_name == "execute_complete"
    assert trig.pipeline_ids == st["pipeline_ids"]
    assert trig.deadline == st["deadline"]
    assert {"known_failures": trig.known_failures, "known_stale": trig.known_stale} == redeferred
    assert dt.timedelta(seconds=3590) <= exc.timeout <= dt.timedelta(seconds=3600)


def test_a_failure_alert_names_the_failed_task(alerts, devlake) -> None:
    event = {"status": "failure", "new_failures": [2], "pipelines": {"2": pipe(2, "TASK_FAILED")}, "state": state()}
    deferred(lambda: sensor().execute_complete(CONTEXT, event))
    (a,) = alerts
    assert "DevLake pipeline failed" in a["text"]
    assert "pipeline #2" in a["text"]
    assert "github/collectApiIssues" in a["text"]
    assert "401 Bad credentials" in a["text"]
    assert ("pipeline_tasks", 2) in devlake.calls
    assert ("blueprint", 7) in devlake.calls


def test_a_stale_alert_says_how_long(alerts, devlake) -> None:
    event = {"status": "stale", "new_stale": [1], "pipelines": {"1": pipe(1, "TASK_RUNNING")}, "state": state()}
    deferred(lambda: sensor(stale_after_s=5400).execute_complete(CONTEXT, event))
    (a,) = alerts
    assert "still running" in a["text"]
    assert "more than 90 minutes" in a["text"]
    assert "2026-11-23T06:00:00Z" in a["text"]
    assert ("pipeline_tasks", 1) not in devlake.calls  # tasks are only read for failures


@pytest.mark.parametrize(
    "blueprint_id, projects, project_in_text",
    [
        pytest.param(7, {7: "acme"}, "acme", id="found"),
        pytest.param(7, {}, "p2", id="blueprint-lookup-fails-name-used"),
        pytest.param(0, {7: "acme"}, "p2", id="no-blueprint-name-used"),
    ],
)
def test_the_alert_goes_out_without_the_project_when_it_cannot_be_found(
    alerts, monkeypatch, blueprint_id: int, projects: dict, project_in_text: str
) -> None:
    fake = FakeDevLake(projects)
    monkeypatch.setattr(DevLakePipelinesSensor, "_hook", lambda self: fake)
    event = {
        "status": "failure",
        "new_failures": [2],
        "pipelines": {"2": pipe(2, "TASK_FAILED", blueprint_id=blueprint_id)},
        "state": state(),
    }
    deferred(lambda: sensor().execute_complete(CONTEXT, event))
    (a,) = alerts
    assert f"<b>{project_in_text}</b>" in a["text"]


def test_done_returns_the_pipelines_without_alerting(alerts, devlake) -> None:
    pipelines = {"1": pipe(1, "TASK_COMPLETED"), "2": pipe(2, "TASK_FAILED"), "3": {"id": 3, "status": "DELETED"}}
    got = sensor().execute_complete(
        CONTEXT, {"status": "done", "pipelines": pipelines, "requests": 4, "state": state(known_failures=[2])}
    )
    assert got == pipelines
    assert alerts == []
    assert devlake.calls == []


def test_done_without_pipelines_returns_an_empty_mapping(alerts) -> None:
    assert sensor().execute_complete(CONTEXT, {"status": "done", "state": state()}) == {}
    assert alerts == []


def test_error_alerts_once_then_fails(alerts, devlake) -> None:
    event = {"status": "error", "message": "DevLake unreachable for 900s: connection refused", "state": state()}
    with pytest.raises(RuntimeError, match="DevLake unreachable for 900s: connection refused"):
        sensor().execute_complete(CONTEXT, event)
    (a,) = alerts
    assert a["key"] == f"devlake:unreachable:devlake_blueprint_monitor:{RUN_ID}"
    assert "DevLake unreachable" in a["text"]
    assert "connection refused" in a["text"]
    assert RUN_ID in a["text"]


@pytest.mark.parametrize(
    "event",
    [
        pytest.param({"status": "surprise", "state": {}}, id="unknown-status"),
        pytest.param({"state": {}}, id="no-status"),
        pytest.param({}, id="empty-event"),
    ],
)
def test_an_unexpected_event_is_a_value_error(alerts, event: dict) -> None:
    with pytest.raises(ValueError, match="unexpected trigger event"):
        sensor().execute_complete(CONTEXT, event)
    assert alerts == []


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(
            {"status": "failure", "new_failures": [2], "pipelines": {"2": pipe(2, "TASK_FAILED")}}, id="failure"
        ),
        pytest.param({"status": "stale", "new_stale": [2], "pipelines": {"2": pipe(2, "TASK_RUNNING")}}, id="stale"),
    ],
)
def test_alert_false_sends_nothing_but_still_tracks_what_was_seen(alerts, devlake, event: dict) -> None:
    exc = deferred(lambda: sensor(alert=False).execute_complete(CONTEXT, {**event, "state": state()}))
    assert alerts == []
    assert devlake.calls == []
    assert [*exc.trigger.known_failures, *exc.trigger.known_stale] == [2]


def test_a_redeferral_past_the_deadline_waits_at_least_a_second(alerts, devlake) -> None:
    event = {
        "status": "stale",
        "new_stale": [1],
        "pipelines": {"1": pipe(1, "TASK_RUNNING")},
        "state": state(deadline=time.time() - 60),
    }
    exc = deferred(lambda: sensor().execute_complete(CONTEXT, event))
    assert exc.timeout == dt.timedelta(seconds=1)


def test_an_event_without_a_deadline_gets_max_wait_from_now(alerts, devlake) -> None:
    st = state()
    del st["deadline"]
    before = time.time()
    exc = deferred(
        lambda: sensor(max_wait_s=120).execute_complete(
            CONTEXT, {"status": "stale", "new_stale": [1], "pipelines": {"1": pipe(1, "TASK_RUNNING")}, "state": st}
        )
    )
    assert before + 120 <= exc.trigger.deadline <= time.time() + 120


def test_the_connection_ids_reach_the_alert(alerts, devlake) -> None:
    event = {"status": "error", "message": "down", "state": state()}
    with pytest.raises(RuntimeError):
        sensor(telegram_conn_id="tg_ops", slack_conn_id=None).execute_complete(CONTEXT, event)
    (a,) = alerts
    assert (a["telegram_conn_id"], a["slack_conn_id"]) == ("tg_ops", None)


# -- one real alert through the sandbox -----------------------------------------------------------------
def test_a_failure_alert_reaches_telegram_and_slack_once(sandbox, sandbox_conns) -> None:
    from devops_automation.hooks.devlake import DevLakeHook
    from tests.conftest import TELEGRAM_CHAT

    hook = DevLakeHook()
    plan = [[{"plugin": "github", "subtasks": [], "options": {}}]]
    pid = int(hook.request_json("POST", "/pipelines", json={"name": "nightly", "plan": plan})["id"])
    event = {
        "status": "failure",
        "new_failures": [pid],
        "pipelines": {str(pid): pipe(pid, "TASK_FAILED", blueprint_id=0, name="nightly")},
        "state": state(pipeline_ids=[pid]),
    }
    for _ in range(2):  # a retried task gets the same event again: no second message
        exc = deferred(lambda: sensor().execute_complete(CONTEXT, json.loads(json.dumps(event))))
        assert exc.trigger.known_failures == [pid]
    telegram = sandbox.control("telegram", "GET", "/messages", params={"chat_id": TELEGRAM_CHAT})
    slack = sandbox.control("slack", "GET", "/messages", params={"channel": "C0CIFAIL"})
    assert len(telegram) == 1
    assert len(slack) == 1
    assert f"pipeline #{pid}" in telegram[0]["text"]
    assert "nightly" in telegram[0]["text"]
    assert f"pipeline #{pid}" in slack[0]["text"]
