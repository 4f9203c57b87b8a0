"""SonarQube sandbox: token auth, measures, history paging, quality gate, project search, controls."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient

from include.sandbox.app import create_app
from include.sandbox.client import SandboxClient, SandboxServer
from include.sandbox.systems.sonarqube import debt_rating, format_measure

TOKEN = "squ_sandbox"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
API = "/sonarqube/api"
CONTROL = "/_sandbox/sonarqube"


@pytest.fixture()
def client() -> TestClient:
    return TestClient(create_app(systems=["sonarqube"]))


def get(client: TestClient, path: str, **params: Any) -> dict[str, Any]:
    r = client.get(f"{API}{path}", params=params, headers=BEARER)
    assert r.status_code == 200, r.text
    return r.json()


def measures(client: TestClient, component: str, keys: str, **params: Any) -> dict[str, Any]:
    body = get(client, "/measures/component", component=component, metricKeys=keys, **params)
    return {m["metric"]: m.get("value", m.get("period", {}).get("value")) for m in body["component"]["measures"]}


# -- auth -----------------------------------------------------------------------------------------
def test_bearer_and_basic_with_empty_password(client: TestClient) -> None:
    params = {"component": "acme_api", "metricKeys": "ncloc"}
    assert client.get(f"{API}/measures/component", params=params, headers=BEARER).status_code == 200
    assert client.get(f"{API}/measures/component", params=params, auth=(TOKEN, "")).status_code == 200


@pytest.mark.parametrize(
    "kw", [{}, {"headers": {"Authorization": "Bearer nope"}}, {"auth": (TOKEN, "password")}, {"auth": ("nope", "")}]
)
def test_bad_auth_is_401_with_empty_body(client: TestClient, kw: dict[str, Any]) -> None:
    r = client.get(f"{API}/measures/component", params={"component": "acme_api", "metricKeys": "ncloc"}, **kw)
    assert r.status_code == 401 and r.content == b""


def test_system_status_and_validate_need_no_token(client: TestClient) -> None:
    assert client.get(f"{API}/system/status").json()["status"] == "UP"
    assert client.get(f"{API}/authentication/validate").json() == {"valid": False}
    assert client.get(f"{API}/authentication/validate", headers=BEARER).json() == {"valid": True}
    client.post(f"{CONTROL}/status", json={"status": "DB_MIGRATION_NEEDED"})
    assert client.get(f"{API}/system/status").json()["status"] == "DB_MIGRATION_NEEDED"


# -- measures -------------------------------------------------------------------------------------
def test_measures_are_strings_and_ratings_floats(client: TestClient) -> None:
    keys = (
        "coverage,bugs,vulnerabilities,code_smells,duplicated_lines_density,ncloc,security_hotspots,"
        "sqale_rating,reliability_rating,security_rating,alert_status"
    )
    values = measures(client, "acme_api", keys)
    assert set(values) == set(keys.split(","))
    assert all(isinstance(v, str) for v in values.values())
    assert values["coverage"] == "82.6" and values["bugs"] == "3" and values["ncloc"] == "48213"
    for rating in ("sqale_rating", "reliability_rating", "security_rating"):
        assert values[rating] in {"1.0", "2.0", "3.0", "4.0", "5.0"}
    assert "ABCDE"[int(float(values["reliability_rating"])) - 1] == "C"
    assert values["alert_status"] == "OK"


def test_missing_values_are_omitted_and_best_value_flags(client: TestClient) -> None:
    body = get(client, "/measures/component", component="acme_infra", metricKeys="coverage,bugs,alert_status")
    ms = {m["metric"]: m for m in body["component"]["measures"]}
    assert set(ms) == {"bugs"}  # no coverage, no gate -> no alert_status
    assert ms["bugs"] == {"metric": "bugs", "value": "0", "bestValue": True}


def test_new_code_metrics_use_period_and_additional_fields(client: TestClient) -> None:
    body = get(
        client,
        "/measures/component",
        component="acme_web",
        metricKeys="new_coverage,coverage",
        additionalFields="metrics,period",
    )
    new = next(m for m in body["component"]["measures"] if m["metric"] == "new_coverage")
    assert "value" not in new and new["period"]["value"] == "61.4" and new["period"]["bestValue"] is False
    assert {m["key"]: m["type"] for m in body["metrics"]} == {"new_coverage": "PERCENT", "coverage": "PERCENT"}
    assert body["period"]["mode"] == "PREVIOUS_VERSION"


def test_branch_and_pull_request(client: TestClient) -> None:
    assert measures(client, "acme_api", "coverage", branch="develop")["coverage"] == "80.1"
    assert measures(client, "acme_api", "new_coverage", pullRequest="42")["new_coverage"] == "86.1"
    r = client.get(
        f"{API}/measures/component",
        params={"component": "acme_api", "metricKeys": "coverage", "branch": "nope"},
        headers=BEARER,
    )
    assert r.status_code == 404
    r = client.get(
        f"{API}/measures/component",
        params={"component": "acme_api", "metricKeys": "coverage", "branch": "develop", "pullRequest": "42"},
        headers=BEARER,
    )
    assert r.status_code == 400


@pytest.mark.parametrize(
    ("params", "status", "fragment"),
    [
        ({"component": "acme_api", "metricKeys": "coverage,nope,bogus"}, 404, "metric keys are not found: nope, bogus"),
        ({"component": "missing", "metricKeys": "coverage"}, 404, "Component key 'missing' not found"),
        ({"component": "acme_api"}, 400, "'metricKeys' parameter is missing"),
    ],
)
def test_measure_errors(client: TestClient, params: dict[str, str], status: int, fragment: str) -> None:
    r = client.get(f"{API}/measures/component", params=params, headers=BEARER)
    assert r.status_code == status
    assert fragment in r.json()["errors"][0]["msg"]


# -- history --------------------------------------------------------------------------------------
def test_search_history_paging_and_order(client: TestClient) -> None:
    first = get(client, "/measures/search_history", component="acme_api", metrics="coverage,ncloc", ps=10)
    assert first["paging"] == {"pageIndex": 1, "pageSize": 10, "total": 30}
    assert [m["metric"] for m in first["measures"]] == ["coverage", "ncloc"]
    history = first["measures"][1]["history"]
    dates = [h["date"] for h in history]
    assert dates == sorted(dates) and len(history) == 10
    assert "value" not in first["measures"][0]["history"][0]  # early analyses had no coverage
    everything: list[dict[str, Any]] = []
    for p in (1, 2, 3):
        everything += get(client, "/measures/search_history", component="acme_api", metrics="coverage", ps=10, p=p)[
            "measures"
        ][0]["history"]
    assert everything[-1]["value"] == "82.6"
    assert datetime.strptime(everything[-1]["date"], "%Y-%m-%dT%H:%M:%S%z") > datetime.now(UTC) - timedelta(days=10)


def test_search_history_date_window_and_errors(client: TestClient) -> None:
    now = datetime.fromtimestamp(client.get("/_sandbox/clock").json()["now"], UTC)
    since = (now - timedelta(days=30)).strftime("%Y-%m-%d")
    recent = get(client, "/measures/search_history", component="acme_web", metrics="bugs", **{"from": since})
    assert 8 <= recent["paging"]["total"] <= 12
    r = client.get(
        f"{API}/measures/search_history", params={"component": "acme_web", "metricKeys": "bugs"}, headers=BEARER
    )
    assert r.status_code == 400 and "'metrics'" in r.json()["errors"][0]["msg"]
    r = client.get(
        f"{API}/measures/search_history", params={"component": "acme_web", "metrics": "bugs,nope"}, headers=BEARER
    )
    assert r.status_code == 404 and "nope" in r.json()["errors"][0]["msg"]
    r = client.get(
        f"{API}/measures/search_history",
        params={"component": "acme_web", "metrics": "bugs", "ps": 5000},
        headers=BEARER,
    )
    assert r.status_code == 400


# -- quality gate and projects --------------------------------------------------------------------
def test_quality_gate_status(client: TestClient) -> None:
    ok = get(client, "/qualitygates/project_status", projectKey="acme_api")["projectStatus"]
    assert ok["status"] == "OK" and ok["caycStatus"] == "compliant" and len(ok["conditions"]) == 6
    bad = get(client, "/qualitygates/project_status", projectKey="acme_web")["projectStatus"]
    assert bad["status"] == "ERROR"
    failing = {c["metricKey"] for c in bad["conditions"] if c["status"] == "ERROR"}
    assert "new_coverage" in failing
    cond = next(c for c in bad["conditions"] if c["metricKey"] == "new_coverage")
    assert cond == {
        "status": "ERROR",
        "metricKey": "new_coverage",
        "comparator": "LT",
        "errorThreshold": "80",
        "actualValue": "61.4",
    }
    assert get(client, "/qualitygates/project_status", projectKey="acme_infra")["projectStatus"]["status"] == "NONE"
    assert client.get(f"{API}/qualitygates/project_status", headers=BEARER).status_code == 400
    assert (
        client.get(f"{API}/qualitygates/project_status", params={"projectKey": "x"}, headers=BEARER).status_code == 404
    )
    analysis = get(client, "/project_analyses/search", project="acme_api", ps=1)["analyses"][0]["key"]
    assert get(client, "/qualitygates/project_status", analysisId=analysis)["projectStatus"]["status"] == "OK"


def test_projects_search_paging_and_permissions(client: TestClient) -> None:
    body = get(client, "/projects/search", ps=2)
    assert body["paging"] == {"pageIndex": 1, "pageSize": 2, "total": 3}
    assert [c["key"] for c in body["components"]] == ["acme_api", "acme_infra"]
    assert get(client, "/projects/search", ps=2, p=2)["components"][0]["key"] == "acme_web"
    assert all("lastAnalysisDate" in c for c in body["components"])
    assert [c["key"] for c in get(client, "/projects/search", q="web")["components"]] == ["acme_web"]
    assert client.get(f"{API}/projects/search", params={"organization": "other"}, headers=BEARER).status_code == 404
    client.put(f"{CONTROL}/tokens", json={"tokens": {"squ_reader": False}})
    reader = {"Authorization": "Bearer squ_reader"}
    r = client.get(f"{API}/projects/search", headers=reader)
    assert r.status_code == 403 and r.json() == {"errors": [{"msg": "Insufficient privileges"}]}
    assert (
        client.get(f"{API}/components/search", params={"qualifiers": "TRK"}, headers=reader).json()["paging"]["total"]
        == 3
    )


# -- controls -------------------------------------------------------------------------------------
def test_set_measure_moves_the_gate_and_derives_ratings(client: TestClient) -> None:
    r = client.post(
        f"{CONTROL}/projects/acme_api/measures",
        json={"measures": {"new_coverage": 55, "sqale_index": 900000}, "analysis": True},
    )
    assert r.status_code == 200 and r.json()["gate"] == "ERROR"
    values = measures(
        client,
        "acme_api",
        "new_coverage,alert_status,sqale_rating,sqale_debt_ratio,software_quality_maintainability_rating",
    )
    assert values["new_coverage"] == "55.0" and values["alert_status"] == "ERROR"
    assert (
        values["sqale_debt_ratio"] == "62.2"
        and values["sqale_rating"] == "5.0" == values["software_quality_maintainability_rating"]
    )
    history = get(client, "/measures/search_history", component="acme_api", metrics="sqale_index", ps=100)
    assert history["paging"]["total"] == 31 and history["measures"][0]["history"][-1]["value"] == "900000"
    client.post(f"{CONTROL}/projects/acme_api/measures", json={"measures": {"coverage": None}})
    assert "coverage" not in measures(client, "acme_api", "coverage")


def test_add_project_and_gate_control(client: TestClient) -> None:
    client.post(
        f"{CONTROL}/projects", json={"key": "acme_new", "name": "acme/new", "measures": {"ncloc": 10, "bugs": 0}}
    )
    assert measures(client, "acme_new", "ncloc,bugs") == {"ncloc": "10", "bugs": "0"}
    client.post(f"{CONTROL}/projects/acme_api/gate", json={"conditions": [["bugs", "GT", "0"]]})
    status = get(client, "/qualitygates/project_status", projectKey="acme_api")["projectStatus"]
    assert status["status"] == "ERROR" and status["caycStatus"] == "non-compliant"
    assert client.get(f"{CONTROL}/counts").json()["project_status"] == 1


def test_injected_fault_uses_sonar_error_shape(client: TestClient) -> None:
    client.post(
        "/_sandbox/faults",
        json={
            "system": "sonarqube",
            "path": "/measures/",
            "status": 503,
            "message": "Service Unavailable",
            "retry_after": 5,
        },
    )
    r = client.get(f"{API}/measures/component", params={"component": "acme_api", "metricKeys": "ncloc"}, headers=BEARER)
    assert (
        r.status_code == 503
        and r.json() == {"errors": [{"msg": "Service Unavailable"}]}
        and r.headers["retry-after"] == "5"
    )


def test_units() -> None:
    assert [debt_rating(x) for x in (0.0, 5.0, 5.1, 10.0, 20.0, 50.0, 50.1)] == [1.0, 1.0, 2.0, 2.0, 3.0, 4.0, 5.0]
    assert (
        format_measure("coverage", 80) == "80.0"
        and format_measure("ncloc", 12.0) == "12"
        and format_measure("sqale_rating", 2) == "2.0"
    )


# -- over a real port -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(systems=["sonarqube"]) as srv:
        yield srv


def test_real_server_with_requests_basic_auth(server: SandboxServer) -> None:
    sb = SandboxClient(server.base_url)
    sb.reset()
    s = requests.Session()
    s.auth = (TOKEN, "")
    r = s.get(sb.url("sonarqube", "/api/qualitygates/project_status"), params={"projectKey": "acme_web"}, timeout=10)
    assert r.status_code == 200 and r.json()["projectStatus"]["status"] == "ERROR"
    sb.control(
        "sonarqube",
        "POST",
        "/projects/acme_web/measures",
        json={
            "measures": {
                "new_coverage": 90,
                "new_reliability_rating": 1,
                "new_security_rating": 1,
                "new_duplicated_lines_density": 0,
                "new_security_hotspots_reviewed": 100,
            }
        },
    )
    assert (
        s.get(
            sb.url("sonarqube", "/api/qualitygates/project_status"), params={"projectKey": "acme_web"}, timeout=10
        ).json()["projectStatus"]["status"]
        == "OK"
    )
    assert sb.requests(system="sonarqube")[0]["headers"]["authorization"].startswith("Basic ")
