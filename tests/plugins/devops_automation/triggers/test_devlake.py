"""DevLakePipelinesTrigger against the sandbox DevLake (pipelines progress on its clock)."""

from __future__ import annotations

import asyncio
import json

import pytest
from airflow.sdk.module_loading import import_string

from devops_automation.triggers.devlake import CLASSPATH, DevLakePipelinesTrigger

PLAN = [[{"plugin": "github", "subtasks": [], "options": {}}], [{"plugin": "dora", "subtasks": [], "options": {}}]]


@pytest.fixture
def devlake(sandbox, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_DEVLAKE_DEFAULT", json.dumps({"conn_type": "http", "host": f"{sandbox.base_url}/devlake"})
    )
    sandbox.control("devlake", "POST", "/settings", json={"taskSeconds": 0.2, "maxParallel": 50})
    return sandbox


def new_pipelines(sandbox, n: int, **script) -> list[int]:
    from devops_automation.hooks.devlake import DevLakeHook

    hook = DevLakeHook()
    ids = [int(hook.request_json("POST", "/pipelines", json={"name": f"p{i}", "plan": PLAN})["id"]) for i in range(n)]
    if script:
        for pid in ids:
            sandbox.control("devlake", "POST", "/scripts", json={"pipelineId": pid, **script})
    return ids


def trigger(ids, **kw) -> DevLakePipelinesTrigger:
    return DevLakePipelinesTrigger(pipeline_ids=ids, poll_interval=kw.pop("poll_interval", 0.1), **kw)


async def first_event(trig: DevLakePipelinesTrigger, timeout: float = 20):
    return await asyncio.wait_for(trig.run().__anext__(), timeout)


def test_serialisation_round_trip() -> None:
    trig = DevLakePipelinesTrigger(pipeline_ids=[3, 1, 2, 2], poll_interval=30, known_failures=[2], stale_after_s=3600)
    classpath, kwargs = trig.serialize()
    assert classpath == CLASSPATH == "devops_automation.triggers.devlake.DevLakePipelinesTrigger"
    assert kwargs["pipeline_ids"] == [1, 2, 3]
    assert kwargs["known_failures"] == [2]
    rebuilt = import_string(classpath)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    json.dumps(kwargs)  # JSON-safe


async def test_all_succeed_gives_one_done_event(devlake) -> None:
    ids = new_pipelines(devlake, 3)
    event = await first_event(trigger(ids))
    assert event.payload["status"] == "done"
    assert {p["status"] for p in event.payload["pipelines"].values()} == {"TASK_COMPLETED"}


async def test_a_failure_is_reported_before_the_others_finish(devlake) -> None:
    slow = new_pipelines(devlake, 2, taskSeconds=30)
    failing = new_pipelines(devlake, 1, failAtTask=1, message="github: 401 Bad credentials")
    event = await first_event(trigger(slow + failing))
    assert event.payload["status"] == "failure"
    assert event.payload["new_failures"] == failing
    statuses = {int(k): v["status"] for k, v in event.payload["pipelines"].items()}
    assert statuses[failing[0]] == "TASK_FAILED"
    assert all(statuses[s] in ("TASK_RUNNING", "TASK_CREATED") for s in slow)
    assert "401" in event.payload["pipelines"][str(failing[0])]["message"]
    # once reported, the same failure does not end the watch again
    event = await first_event(trigger(failing, known_failures=failing))
    assert event.payload["status"] == "done"


async def test_deleted_and_unknown_statuses(devlake) -> None:
    ids = new_pipelines(devlake, 2, forever=True)
    devlake.control("devlake", "DELETE", f"/pipelines/{ids[0]}")
    devlake.control("devlake", "POST", f"/pipelines/{ids[1]}/status", json={"status": "TASK_SOMETHING_NEW"})
    with pytest.raises(asyncio.TimeoutError):  # unknown is not final: keep watching
        await first_event(trigger(ids), timeout=1)
    devlake.control("devlake", "POST", f"/pipelines/{ids[1]}/status", json={"status": "TASK_CANCELLED"})
    event = await first_event(trigger(ids))
    assert event.payload["status"] == "done"
    assert event.payload["pipelines"][str(ids[0])]["status"] == "DELETED"


async def test_server_errors_while_polling_are_waited_out(devlake) -> None:
    ids = new_pipelines(devlake, 1)
    devlake.fault(system="devlake", method="GET", path="^/pipelines$", status=500, times=3)
    event = await first_event(trigger(ids))
    assert event.payload["status"] == "done"


async def test_devlake_unreachable_for_too_long_is_an_error_event(monkeypatch) -> None:
    from include.sandbox.client import free_port

    monkeypatch.setenv(
        "AIRFLOW_CONN_DEVLAKE_DEFAULT", json.dumps({"conn_type": "http", "host": f"http://127.0.0.1:{free_port()}"})
    )
    event = await first_event(trigger([1], unreachable_timeout_s=0.3))
    assert event.payload["status"] == "error"
    assert "unreachable" in event.payload["message"]


async def test_a_pipeline_running_too_long_is_stale_once(devlake) -> None:
    ids = new_pipelines(devlake, 1, forever=True)
    event = await first_event(trigger(ids, stale_after_s=0.5))
    assert event.payload["status"] == "stale"
    assert event.payload["new_stale"] == ids
    with pytest.raises(asyncio.TimeoutError):
        await first_event(trigger(ids, stale_after_s=0.5, known_stale=ids), timeout=1)


async def test_requests_per_poll_grow_with_pages_not_with_pipelines(devlake) -> None:
    ids = new_pipelines(devlake, 250)
    trig = trigger(ids, page_size=100)
    client = await trig._client()
    async with client:
        await trig.list_pipelines(client)
    assert trig.requests_made == 3
    trig = trigger(ids[-5:], page_size=100)  # the 5 newest: one page covers them
    client = await trig._client()
    async with client:
        await trig.list_pipelines(client)
    assert trig.requests_made == 1


async def test_a_poll_that_times_out_is_waited_out(devlake) -> None:
    ids = new_pipelines(devlake, 1)
    devlake.fault(system="devlake", method="GET", path="^/pipelines$", status=None, delay_ms=1500, times=2)
    event = await first_event(trigger(ids, request_timeout_s=0.5))
    assert event.payload["status"] == "done"
