"""The sandbox framework (``include/sandbox/core.py``, ``app.py``) exercised through the DevLake system."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from include.sandbox.app import create_app
from include.sandbox.core import split_system


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app(systems=["devlake"]))


def test_health_lists_the_loaded_systems(client: TestClient) -> None:
    assert client.get("/_sandbox/health").json() == {"status": "ok", "systems": {"devlake": "/devlake"}, "seed": 0}


def test_split_system() -> None:
    prefixes = {"devlake": "/devlake", "gitlab": "/gitlab"}
    assert split_system("/devlake/projects", prefixes) == ("devlake", "/projects")
    assert split_system("/devlake", prefixes) == ("devlake", "/")
    assert split_system("/devlakeX/projects", prefixes) == (None, "/devlakeX/projects")


def test_requests_are_recorded_as_sent(client: TestClient) -> None:
    client.post("/devlake/projects", json={"name": "a/b"})
    client.get("/devlake/projects/a%2Fb", params={"x": "1"})
    records = client.get("/_sandbox/requests", params={"system": "devlake"}).json()
    assert [(r["method"], r["path"], r["status"]) for r in records] == [
        ("POST", "/projects", 201),
        ("GET", "/projects/a%2Fb", 200),
    ]
    assert records[0]["body"] == '{"name":"a/b"}' and records[1]["query"] == "x=1" and records[0]["fault"] is None
    assert [r["id"] for r in client.get("/_sandbox/requests", params={"method": "get"}).json()] == [records[1]["id"]]
    assert client.get("/_sandbox/requests", params={"since": records[0]["id"]}).json()[0]["id"] == records[1]["id"]
    assert client.get("/_sandbox/requests", params={"path": "^/projects$"}).json()[0]["method"] == "POST"
    assert client.delete("/_sandbox/requests").json() == {"cleared": 2}
    assert client.get("/_sandbox/requests").json() == []


def test_fault_rules_skip_then_apply_a_number_of_times(client: TestClient) -> None:
    rule = client.post(
        "/_sandbox/faults",
        json={"system": "devlake", "method": "GET", "path": "^/version$", "status": 503, "skip": 1, "times": 2},
    ).json()
    statuses = [client.get("/devlake/version").status_code for _ in range(4)]
    assert statuses == [200, 503, 503, 200]
    assert client.post("/devlake/version").status_code == 404  # another method: not matched (no such route)
    faults = client.get("/_sandbox/faults").json()
    assert faults[0]["id"] == rule["id"] and faults[0]["applied"] == 2 and faults[0]["matched"] == 3
    faulted = [r for r in client.get("/_sandbox/requests").json() if r["fault"] == rule["id"]]
    assert len(faulted) == 2 and all(r["status"] == 503 for r in faulted)
    assert client.delete("/_sandbox/faults").json() == {"cleared": 1}


def test_fault_bodies(client: TestClient) -> None:
    client.post("/_sandbox/faults", json={"path": "^/projects$", "status": 500, "message": "db lock"})
    body = client.get("/devlake/projects").json()
    assert body == {"code": 0, "success": False, "message": "db lock", "causes": None, "data": None}
    client.delete("/_sandbox/faults")
    client.post(
        "/_sandbox/faults",
        json={"path": "^/projects$", "status": 502, "body": "<html>bad gateway</html>", "content_type": "text/html"},
    )
    response = client.get("/devlake/projects")
    assert (
        response.status_code == 502
        and response.headers["content-type"].startswith("text/html")
        and "bad gateway" in response.text
    )


def test_delay_only_rules_and_latency(client: TestClient) -> None:
    client.post("/_sandbox/faults", json={"path": "^/ping$", "status": None, "delay_ms": 200, "times": 1})
    started = time.monotonic()
    assert client.get("/devlake/ping").status_code == 200
    assert time.monotonic() - started >= 0.2
    client.post("/_sandbox/latency", json={"system": "devlake", "ms": 150})
    started = time.monotonic()
    client.get("/devlake/ping")
    assert time.monotonic() - started >= 0.15


@pytest.mark.parametrize(
    ("rule", "detail"), [({"system": "nosuch"}, "unknown system"), ({"path": "("}, "bad fault rule")]
)
def test_bad_fault_rules_are_refused(client: TestClient, rule: dict[str, object], detail: str) -> None:
    response = client.post("/_sandbox/faults", json=rule)
    assert response.status_code == 400 and detail in response.json()["detail"]


def test_reset_rebuilds_state_and_clears_everything(client: TestClient) -> None:
    client.post("/devlake/projects", json={"name": "p"})
    client.post("/_sandbox/faults", json={"path": "^/nothing$"})
    client.post("/_sandbox/latency", json={"ms": 5})
    client.post("/_sandbox/clock/advance", json={"seconds": 86400})
    assert client.post("/_sandbox/reset", json={"seed": 3}).json() == {"status": "reset", "seed": 3}
    assert client.get("/_sandbox/faults").json() == []
    assert client.get("/_sandbox/requests").json() == []
    assert client.get("/devlake/projects").json()["count"] == 0
    assert abs(client.get("/_sandbox/clock").json()["now"] - time.time()) < 60  # the clock starts over
    assert client.get("/_sandbox/health").json()["seed"] == 3


def test_clock_advance_moves_virtual_time(client: TestClient) -> None:
    before = client.get("/_sandbox/clock").json()["now"]
    after = client.post("/_sandbox/clock/advance", json={"seconds": 3600}).json()["now"]
    assert 3600 <= after - before < 3610
    assert client.get("/_sandbox/clock").json()["now"] >= after
