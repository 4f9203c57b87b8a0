"""Prometheus sandbox: envelope, time handling, the PromQL subset, errors and controls."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient

from include.sandbox.app import create_app
from include.sandbox.client import SandboxClient, SandboxServer
from include.sandbox.systems.prometheus import bucket_quantile, format_value, parse, parse_duration

API = "/prometheus/api/v1"
CONTROL = "/_sandbox/prometheus"
DAY = 86400
#: A fixed instant: 2027-01-15T12:00:00Z (api-1's daily outage is 03:00-03:10 UTC).
NOON = 1_800_000_000 - 1_800_000_000 % DAY + 12 * 3600


@pytest.fixture()
def client() -> TestClient:
    return TestClient(create_app(systems=["prometheus"]))


def q(client: TestClient, query: str, t: float | str | None = NOON, **params: Any) -> dict[str, Any]:
    p = {"query": query, **params}
    if t is not None:
        p["time"] = t
    r = client.get(f"{API}/query", params=p)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success"
    return body["data"]


def values(data: dict[str, Any]) -> dict[str, float]:
    """{"label=value,...": float} for a vector result."""
    return {
        ",".join(f"{k}={v}" for k, v in sorted(x["metric"].items()) if k != "__name__"): float(x["value"][1])
        for x in data["result"]
    }


# -- envelope and time ----------------------------------------------------------------------------
def test_up_vector_envelope(client: TestClient) -> None:
    data = q(client, "up")
    assert data["resultType"] == "vector"
    assert len(data["result"]) == 6
    sample = data["result"][0]
    assert sample["metric"]["__name__"] == "up"
    ts, value = sample["value"]
    assert ts == NOON and isinstance(value, str) and value == "1"


def test_time_accepts_rfc3339_and_defaults_to_the_clock(client: TestClient) -> None:
    assert q(client, "time()", "2027-01-15T12:00:00Z")["result"] == [NOON, str(NOON)]
    now = client.get("/_sandbox/clock").json()["now"]
    ts, value = q(client, "time()", None)["result"]
    assert ts == pytest.approx(now, abs=5) and float(value) == pytest.approx(now, abs=5)


def test_outage_at_evaluation_time(client: TestClient) -> None:
    during = NOON - 9 * 3600 + 300  # 03:05 UTC
    assert values(q(client, 'up{job="api"}', during)) == {
        "env=prod,instance=api-0:8080,job=api": 1.0,
        "env=prod,instance=api-1:8080,job=api": 0.0,
    }
    assert q(client, 'http_requests_total{instance="api-1:8080"}', during)["result"] == []  # stale while down
    assert len(q(client, 'http_requests_total{instance="api-1:8080"}')["result"]) == 6


def test_unknown_metric_is_an_empty_vector(client: TestClient) -> None:
    assert q(client, "no_such_metric_total") == {"resultType": "vector", "result": []}
    assert q(client, "sum(rate(no_such_metric_total[5m]))")["result"] == []


def test_post_form(client: TestClient) -> None:
    r = client.post(f"{API}/query", data={"query": "count(up)", "time": str(NOON)})
    assert r.status_code == 200 and r.json()["data"]["result"][0]["value"] == [NOON, "6"]


# -- the PromQL shapes of prometheus.md ------------------------------------------------------------
def test_availability_over_a_day(client: TestClient) -> None:
    per_instance = values(q(client, '100 * avg_over_time(up{job="api"}[1d])'))
    assert per_instance["env=prod,instance=api-0:8080,job=api"] == 100
    assert per_instance["env=prod,instance=api-1:8080,job=api"] == pytest.approx(100 * (1 - 600 / DAY))
    per_job = values(q(client, "avg by (job) (avg_over_time(up[1d]))"))
    assert per_job["job=api"] == pytest.approx(1 - 300 / DAY)
    assert per_job["job=web"] == pytest.approx(1 - 4 * 120 / DAY / 2)
    assert per_job["job=worker"] == 1


def test_request_rate_and_error_ratio(client: TestClient) -> None:
    rate = float(q(client, 'sum(rate(http_requests_total{job="api"}[5m]))')["result"][0]["value"][1])
    assert 20 < rate < 130  # 2 instances x 40 req/s with a daily swing of +-50 %
    ratio = q(
        client,
        'sum(rate(http_requests_total{job="api",code=~"5.."}[5m])) / sum(rate(http_requests_total{job="api"}[5m]))',
    )
    assert ratio["result"][0]["metric"] == {}
    assert float(ratio["result"][0]["value"][1]) == pytest.approx(0.01, rel=1e-3)
    daily = values(q(client, "sum by (job) (increase(http_requests_total[1d]))"))
    assert daily["job=api"] == pytest.approx(2 * 40 * DAY, rel=0.02)  # minus api-1's 10 minutes down
    by_code = values(q(client, 'sum by (code) (rate(http_requests_total{job="web"}[1h]))'))
    assert set(by_code) == {"code=200", "code=404", "code=500"}


def test_histogram_quantiles(client: TestClient) -> None:
    p95 = q(client, 'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{job="api"}[5m])))')
    value = float(p95["result"][0]["value"][1])
    assert 0.1 < value < 0.5
    per_job = values(
        q(client, "histogram_quantile(0.5, sum by (le, job) (rate(http_request_duration_seconds_bucket[5m])))")
    )
    assert per_job["job=api"] < per_job["job=web"] < per_job["job=worker"]
    avg = values(
        q(
            client,
            (
                'sum(rate(http_request_duration_seconds_sum{job="api"}[5m])) / '
                'sum(rate(http_request_duration_seconds_count{job="api"}[5m]))'
            ),
        )
    )
    assert avg[""] == pytest.approx(0.08 * math.exp(0.18), rel=1e-6)


def test_operators_and_functions(client: TestClient) -> None:
    assert q(client, "1 + 2 * 3 ^ 2")["result"][1] == "19"
    assert q(client, "-2 ^ 2")["result"][1] == "-4"
    assert q(client, "0 / 0")["result"][1] == "NaN"
    assert q(client, "1 / 0")["result"][1] == "+Inf"
    assert values(q(client, "count by (job) (up) > 1")) == {"job=api": 2.0, "job=web": 2.0}
    assert values(q(client, "count by (job) (up) > bool 1"))["job=worker"] == 0
    assert len(q(client, 'up{job="api"} and on (instance) up{instance=~"api-0.*"}')["result"]) == 1
    assert len(q(client, 'up{job="api"} unless up{instance="api-0:8080"}')["result"]) == 1
    assert len(q(client, "topk(2, rate(http_requests_total[5m]))")["result"]) == 2
    assert q(client, "absent(nothing_here)")["result"][0]["value"][1] == "1"
    assert q(client, "scalar(count(up))")["resultType"] == "scalar"
    assert q(client, 'up{job="api"} offset 1d')["result"][0]["metric"]["job"] == "api"
    up_range = q(client, 'up{instance="api-0:8080"}[5m]')
    assert up_range["resultType"] == "matrix" and len(up_range["result"][0]["values"]) == 10
    r = client.get(f"{API}/query", params={"query": "up / on() group_left count(up)", "time": NOON})
    assert r.status_code == 200


def test_query_range(client: TestClient) -> None:
    r = client.get(
        f"{API}/query_range",
        params={
            "query": 'avg by (job) (avg_over_time(up{job="api"}[1d]))',
            "start": NOON - 7 * DAY,
            "end": NOON,
            "step": "1h",
        },
    )
    data = r.json()["data"]
    assert data["resultType"] == "matrix"
    points = data["result"][0]["values"]
    assert len(points) == 169 and points[0][0] == NOON - 7 * DAY and points[-1][0] == NOON
    assert all(float(v) == pytest.approx(1 - 300 / DAY) for _, v in points)
    scalar = client.get(
        f"{API}/query_range", params={"query": "1", "start": NOON, "end": NOON + 60, "step": 30}
    ).json()["data"]
    assert scalar["result"] == [{"metric": {}, "values": [[NOON, "1"], [NOON + 30, "1"], [NOON + 60, "1"]]}]


# -- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "params", "fragment"),
    [
        ("query", {"query": "sum(rate(x[5m]"}, "parse error"),
        ("query", {"query": "rate(up)"}, "expected type range vector"),
        ("query", {"query": ""}, "no expression found"),
        ("query", {"query": "up", "time": "yesterday"}, 'invalid parameter "time"'),
        (
            "query_range",
            {"query": "up", "start": NOON, "end": NOON - 1, "step": 60},
            "end timestamp must not be before start time",
        ),
        ("query_range", {"query": "up", "start": NOON, "end": NOON + 86400 * 30, "step": 60}, "11,000 points"),
        ("query_range", {"query": "up", "start": NOON, "end": NOON + 60, "step": 0}, "zero or negative"),
        ("query_range", {"query": "up[5m]", "start": NOON, "end": NOON + 60, "step": 30}, "range vector"),
    ],
)
def test_bad_data_errors(client: TestClient, path: str, params: dict[str, Any], fragment: str) -> None:
    r = client.get(f"{API}/{path}", params=params)
    assert r.status_code == 400
    body = r.json()
    assert body["status"] == "error" and body["errorType"] == "bad_data" and fragment in body["error"]


def test_limit_adds_a_warning(client: TestClient) -> None:
    body = client.get(f"{API}/query", params={"query": "up", "time": NOON, "limit": 2}).json()
    assert len(body["data"]["result"]) == 2 and body["warnings"] == ["results truncated due to limit"]


def test_injected_fault_uses_the_error_envelope(client: TestClient) -> None:
    client.post(
        "/_sandbox/faults", json={"system": "prometheus", "path": "/query", "status": 503, "message": "query timed out"}
    )
    r = client.get(f"{API}/query", params={"query": "up"})
    assert r.status_code == 503 and r.json() == {"status": "error", "errorType": "timeout", "error": "query timed out"}


# -- controls -------------------------------------------------------------------------------------
def test_outage_control_down_and_gap(client: TestClient) -> None:
    r = client.post(f"{CONTROL}/outages", json={"job": "worker", "start": NOON - 3600, "end": NOON - 1800})
    assert r.status_code == 200 and r.json()["targets"] == ["worker-0:8080"]
    assert values(q(client, 'avg_over_time(up{job="worker"}[2h])'))[
        "env=prod,instance=worker-0:8080,job=worker"
    ] == pytest.approx(0.75)
    client.post(
        f"{CONTROL}/outages",
        json={
            "job": "web",
            "instance": "web-1:8080",
            "start": "2027-01-15T10:00:00Z",
            "end": "2027-01-15T11:00:00Z",
            "mode": "gap",
        },
    )
    web1 = values(q(client, 'avg_over_time(up{instance="web-1:8080"}[2h])'))
    assert web1["env=prod,instance=web-1:8080,job=web"] == 1  # a removed target does not count as down
    assert (
        values(q(client, 'count_over_time(up{instance="web-1:8080"}[3h])'))["env=prod,instance=web-1:8080,job=web"]
        == 360 - 120
    )
    assert client.delete(f"{CONTROL}/outages", params={"builtin": "true"}).json()["cleared"] == 4
    assert values(q(client, 'avg by (job) (avg_over_time(up{job="api"}[1d]))'))["job=api"] == 1


def test_series_control_gauge_counter_and_values(client: TestClient) -> None:
    client.post(
        f"{CONTROL}/series",
        json={"metric": "up", "labels": {"job": "api", "instance": "api-0:8080", "env": "prod"}, "value": 0},
    )
    assert values(q(client, 'up{job="api"}'))["env=prod,instance=api-0:8080,job=api"] == 0
    client.post(
        f"{CONTROL}/series",
        json={"metric": "jobs_done_total", "labels": {"job": "batch", "instance": "b:1"}, "type": "counter", "rate": 2},
    )
    assert float(q(client, "sum(rate(jobs_done_total[5m]))")["result"][0]["value"][1]) == pytest.approx(2)
    client.post(
        f"{CONTROL}/series",
        json={"metric": "queue_depth", "labels": {"job": "batch"}, "values": [[NOON - 600, 5], [NOON - 300, 9]]},
    )
    assert q(client, "queue_depth")["result"][0]["value"][1] == "9"
    assert q(client, "max_over_time(queue_depth[1h])")["result"][0]["value"][1] == "9"
    assert q(client, "min_over_time(queue_depth[1h])")["result"][0]["value"][1] == "5"
    assert q(client, "queue_depth", NOON - 3600)["result"] == []  # before its first point
    reset = [[NOON - 600, 100], [NOON - 300, 160], [NOON - 150, 10]]
    client.post(f"{CONTROL}/series", json={"metric": "restarts_total", "type": "counter", "values": reset})
    assert float(q(client, "increase(restarts_total[15m])")["result"][0]["value"][1]) > 60  # the reset is handled
    assert client.delete(f"{CONTROL}/series", params={"metric": "queue_depth"}).json() == {"deleted": 1}
    assert {"__name__": "restarts_total"} in client.get(f"{CONTROL}/series", params={"metric": "restarts_total"}).json()


def test_auth_control(client: TestClient) -> None:
    client.post(f"{CONTROL}/auth", json={"basic": ["prom", "secret"]})
    assert client.get(f"{API}/query", params={"query": "up"}).status_code == 401
    assert client.get(f"{API}/query", params={"query": "up"}, auth=("prom", "secret")).status_code == 200
    client.post(f"{CONTROL}/auth", json={"bearer": "tok"})
    assert (
        client.get(f"{API}/query", params={"query": "up"}, headers={"Authorization": "Bearer tok"}).status_code == 200
    )
    client.post(f"{CONTROL}/auth", json={})
    assert client.get(f"{API}/query", params={"query": "up"}).status_code == 200


def test_metadata_endpoints(client: TestClient) -> None:
    assert "job" in client.get(f"{API}/labels").json()["data"]
    assert client.get(f"{API}/label/job/values").json()["data"] == ["api", "prometheus", "web", "worker"]
    found = client.get(f"{API}/series", params={"match[]": 'up{job="web"}'}).json()["data"]
    assert [s["instance"] for s in found] == ["web-0:8080", "web-1:8080"]
    assert client.get("/prometheus/-/healthy").status_code == 200
    assert client.get(f"{CONTROL}/counts").json()["series"] > 100


# -- units -----------------------------------------------------------------------------------------
def test_units() -> None:
    assert parse_duration("1h30m") == 5400 and parse_duration("500ms") == 0.5 and parse_duration("15") == 15
    assert [format_value(v) for v in (1.0, 0.5, 1e-7, math.nan, math.inf, -math.inf, 1e22)] == [
        "1",
        "0.5",
        "0.0000001",
        "NaN",
        "+Inf",
        "-Inf",
        "10000000000000000000000",
    ]
    buckets = [(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (math.inf, 100.0)]
    assert bucket_quantile(0.5, buckets) == pytest.approx(0.1)
    assert bucket_quantile(0.95, buckets) == pytest.approx(0.75)
    assert math.isnan(bucket_quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]))
    assert bucket_quantile(0.99, [(0.1, 1.0), (math.inf, 100.0)]) == 0.1  # falls in +Inf: the highest finite bound
    assert parse('sum by (le) (rate(x{a="b"}[5m] offset 1h))') is not None


# -- over a real port -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(systems=["prometheus"]) as srv:
        yield srv


def test_real_server_post_form_query_range(server: SandboxServer) -> None:
    sb = SandboxClient(server.base_url)
    sb.reset()
    r = requests.post(
        sb.url("prometheus", "/api/v1/query_range"),
        data={
            "query": 'sum(rate(http_requests_total{job="web"}[5m]))',
            "start": NOON - 7 * DAY,
            "end": NOON,
            "step": "5m",
        },
        timeout=30,
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    points = r.json()["data"]["result"][0]["values"]
    assert len(points) == 2017
    assert all(0 < float(v) < 60 for _, v in points)
    assert sb.requests(system="prometheus")[0]["method"] == "POST"
