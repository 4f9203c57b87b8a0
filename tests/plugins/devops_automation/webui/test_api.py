"""The read API's app in-process (a stand-in login; the real one is test_server.py): answers, 422s that
name the field, pages, 404s, report files, the summary cache, the docs."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from devops_automation.webui import api, queries
from devops_automation.webui.deps import StoreUnavailable
from tests.plugins.devops_automation.webui.conftest import ALL_DAGS, client_for

P = "/api/v1"


@pytest.fixture(scope="module")
def client(sqlite_seeded):
    store, _ = sqlite_seeded
    return client_for(store)


def _fields(response) -> list[str]:
    return [err["loc"][-1] for err in response.json()["detail"]]


@pytest.mark.parametrize(
    ("path", "field", "where"),
    [
        ("/failures/jobs?limit=-1", "limit", "query"),
        ("/failures/jobs?limit=ten", "limit", "query"),
        ("/failures/jobs?since=2026-13-45", "since", "query"),
        ("/failures/jobs?since=2026-11-20&until=2026-11-19", "until", "query"),
        ("/failures/jobs?category=Not%20A%20Category", "category", "query"),
        ("/failures/jobs?fingerprint=xyz", "fingerprint", "query"),
        ("/failures/jobs?cursor=garbage!", "cursor", "query"),
        ("/failures/jobs/abc", "analysis_id", "path"),
        ("/failures/pipelines?state=lost", "state", "query"),
        ("/ci/summary?start=2026-11-01", "end", "query"),
        ("/ci/summary?start=2026-11-20&end=2026-11-01", "end", "query"),
        ("/ci/summary?group_by=team", "group_by", "query"),
        ("/ci/summary?provider=svn", "provider", "query"),
        ("/ci/runs?provider=github", "repo", "query"),
        ("/ci/runs?provider=github&repo=a/b&status=green", "status", "query"),
        ("/ci/red-branches?days=0", "days", "query"),
        ("/health?compare_days=0", "compare_days", "query"),
        ("/health/history", "project", "query"),
        ("/metrics?project=web&source=jenkins", "source", "query"),
        ("/alerts?severity=info", "severity", "query"),
        ("/actions?action=rollback", "action", "query"),
        ("/actions?outcome=green", "outcome", "query"),
        ("/actions?provider=svn", "provider", "query"),
        ("/actions?since=last-week", "since", "query"),
        ("/actions?cursor=garbage!", "cursor", "query"),
        ("/actions/0", "action_id", "path"),
        ("/reports/1/chart..png", "name", "path"),
        ("/reports/1/.hidden", "name", "path"),
    ],
)
def test_bad_filters_are_422_naming_the_field(client, path: str, field: str, where: str) -> None:
    r = client.get(P + path)
    assert r.status_code == 422, r.text
    locs = [err["loc"] for err in r.json()["detail"]]
    assert [where, field] in [loc[:2] for loc in locs], locs


def test_pages_and_limits(client, sqlite_seeded) -> None:
    _, ids = sqlite_seeded
    r = client.get(f"{P}/failures/jobs", params={"limit": 2})
    assert r.status_code == 200
    body = r.json()
    assert [i["id"] for i in body["items"]] == ids["analyses"][:0:-1]
    assert body["limit"] == 2
    r = client.get(f"{P}/failures/jobs", params={"limit": 2, "cursor": body["next_cursor"]})
    assert [i["id"] for i in r.json()["items"]] == [ids["analyses"][0]]
    assert r.json()["next_cursor"] is None
    assert client.get(f"{P}/failures/jobs", params={"limit": 9999}).json()["limit"] == queries.MAX_LIMIT
    r = client.get(f"{P}/ci/runs", params={"provider": "github", "repo": "acme/api", "status": "running"})
    assert [i["run_id"] for i in r.json()["items"]] == ["5"]
    assert r.json()["items"][0]["finished_at"] is None


def test_json_shapes(client, sqlite_seeded) -> None:
    _, ids = sqlite_seeded
    got = client.get(f"{P}/failures/jobs/{ids['analyses'][0]}").json()
    assert got["created_at"] == "2026-11-20T10:01:00Z"
    assert got["excerpt_text_lines"][-1] == "TOKEN=[REDACTED]"
    got = client.get(f"{P}/ci/red-branches", params={"repo": "acme/api"}).json()
    assert got["as_of"] == "2026-11-19T00:00:00Z"
    assert [(b["repo"], b["branch"], b["age_s"]) for b in got["branches"]] == [("acme/api", "feature", 50400.0)]
    got = client.get(f"{P}/health").json()
    assert got["projects"][1] == {
        "project": "web",
        "day": "2026-11-19",
        "score": 80.0,
        "grade": "B",
        "components": {"ci": 75},
        "previous_day": "2026-11-12",
        "previous_score": 70.0,
        "change": 10.0,
    }
    got = client.get(f"{P}/metrics", params={"project": "web", "metric": ["coverage"], "since": "2026-11-19"}).json()
    assert [(m["day"], m["metric"], m["value"]) for m in got["items"]] == [("2026-11-19", "coverage", 81.5)]
    got = client.get(
        f"{P}/ci/summary", params={"start": "2026-11-13T00:00:00Z", "end": "2026-11-20", "group_by": ["repo", "branch"]}
    ).json()
    assert got["group_by"] == ["provider", "repo", "branch"]
    assert got["window"] == {"start": "2026-11-13T00:00:00+00:00", "end": "2026-11-20T00:00:00+00:00"}
    assert [(g["key"]["repo"], g["key"]["branch"], g["current"]["runs"]) for g in got["groups"]] == [
        ("acme/api", "feature", 1),
        ("acme/api", "main", 3),
        ("group/web", "main", 1),
    ]


def test_unknown_ids_are_404(client) -> None:
    for path in (
        "/failures/jobs/9999",
        "/failures/pipelines/9999",
        "/ci/runs/9999",
        "/alerts/9999",
        "/reports/9999",
        "/actions/9999",
    ):
        r = client.get(P + path)
        assert r.status_code == 404, path
        assert "9999" in r.json()["detail"]
    assert client.get(f"{P}/reports/1/..%2F..%2Fresults.db").status_code == 404  # not one path segment
    r = client.get(f"{P}/reports/1/missing.png")
    assert r.status_code == 404
    assert "missing.png" in r.json()["detail"]


def test_report_files(client, sqlite_seeded) -> None:
    _, ids = sqlite_seeded
    weekly, monthly, team = ids["reports"]
    r = client.get(f"{P}/reports/{weekly}/html")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["x-devops-source"] == "archive"
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert '<img src="runs.png">' in r.text  # relative: /reports/<id>/runs.png is the route below
    png = client.get(f"{P}/reports/{weekly}/runs.png")
    assert (png.status_code, png.headers["content-type"], png.content[:4]) == (200, "image/png", b"\x89PNG")
    md = client.get(f"{P}/reports/{weekly}/report.md")
    assert md.text == "# Week 46\n\nRuns: 4\n"
    assert md.headers["content-type"] == "text/markdown; charset=utf-8"
    # no archive: the copy in the row, its e-mail image references pointed at the files beside it
    r = client.get(f"{P}/reports/{monthly}/html")
    assert (r.status_code, r.headers["x-devops-source"]) == (200, "database")
    assert r.text == '<h1>October</h1><img src="runs.png">'
    assert client.get(f"{P}/reports/{team}/markdown").text == "# Platform\n"
    assert client.get(f"{P}/reports/{team}/runs.png").status_code == 404
    got = client.get(f"{P}/reports/{weekly}").json()
    assert (got["title"], got["has_data"], got["summary"]["headlines"]) == (
        "Weekly engineering report 2026-W46",
        True,
        [],
    )


def test_forbidden_without_the_dag(sqlite_seeded) -> None:
    store, ids = sqlite_seeded
    only_ci = client_for(store, frozenset({"ci_pipeline_analytics"}))
    r = only_ci.get(f"{P}/failures/jobs")
    assert r.status_code == 403
    assert r.json() == {"detail": "Forbidden: no read access to DAG 'ci_failure_triage'"}
    assert only_ci.get(f"{P}/ci/repos").status_code == 200
    assert [a["id"] for a in only_ci.get(f"{P}/alerts").json()["items"]] == [ids["alerts"][2], ids["alerts"][0]]
    assert only_ci.get(f"{P}/alerts/{ids['alerts'][1]}").status_code == 403
    assert only_ci.get(f"{P}/reports").status_code == 403
    assert only_ci.get(f"{P}/reports/9999").status_code == 403  # no hint whether it exists
    access = only_ci.get(f"{P}/access").json()
    assert access["user"] == "tester"
    assert access["datasets"] == {
        "failures": False,
        "ci": True,
        "metrics": False,
        "alerts": True,
        "reports": False,
        "actions": False,
    }
    assert only_ci.get(f"{P}/actions").json() == {"detail": "Forbidden: no read access to DAG 'ci_run_action'"}


def test_the_audit_trail(client, sqlite_seeded) -> None:
    _, ids = sqlite_seeded
    a1, a2, a3 = ids["actions"]
    body = client.get(f"{P}/actions", params={"limit": 2}).json()
    assert [i["id"] for i in body["items"]] == [a3, a2]
    assert body["items"][1]["outcome_detail"] == "pipeline 91 has already finished (success): nothing to cancel"
    assert body["items"][0]["requested_at"] == "2026-11-20T08:00:00Z"
    rest = client.get(f"{P}/actions", params={"limit": 2, "cursor": body["next_cursor"]}).json()
    assert ([i["id"] for i in rest["items"]], rest["next_cursor"]) == ([a1], None)
    got = client.get(f"{P}/actions", params={"provider": "github", "action": "rerun_failed", "outcome": "success"})
    assert [i["id"] for i in got.json()["items"]] == [a1]
    assert (
        client.get(f"{P}/actions", params={"repo": "group/web", "since": "2026-11-20"}).json()["items"][0]["id"] == a3
    )
    detail = client.get(f"{P}/actions/{a1}").json()
    assert (detail["triggered_by"], detail["airflow_run_id"], detail["result_attempt"]) == ("alice", "manual__a1", 2)
    assert detail["api_calls"][0]["answer"] == {"token": "[REDACTED:github_pat]"}


def test_the_summary_is_computed_once_per_minute(sqlite_seeded, monkeypatch) -> None:
    store, _ = sqlite_seeded
    now = dt.datetime(2026, 11, 19, 23, 20, tzinfo=dt.UTC)
    client = client_for(store, ALL_DAGS, now=lambda: now)
    calls = []
    real = queries.ci_summary

    def counted(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(queries, "ci_summary", counted)
    threads = [threading.Thread(target=client.get, args=(f"{P}/ci/summary",)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = client.get(f"{P}/ci/summary").json()
    assert len(calls) == 1  # five requests, one computation
    # no window given: the 7 UTC days up to the next midnight
    assert got["window"] == {"start": "2026-11-13T00:00:00+00:00", "end": "2026-11-20T00:00:00+00:00"}
    assert (calls[0]["start"], calls[0]["end"]) == (
        dt.datetime(2026, 11, 13, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 20, tzinfo=dt.UTC),
    )
    assert got["total"]["current"]["runs"] == 5
    client.get(f"{P}/ci/summary", params={"repo": "group/web"})
    assert len(calls) == 2  # another filter, another computation


def test_summary_cache_expires_and_refreshes_in_the_background() -> None:
    clock = [0.0]
    cache = api.SummaryCache(ttl_s=60, size=2, clock=lambda: clock[0], stale_s=600)
    assert cache.get("a", lambda: 1) == 1
    assert cache.get("a", lambda: 2) == 1
    clock[0] = 61  # stale: the old answer at once, the new one computed meanwhile
    started, release = threading.Event(), threading.Event()

    def slow() -> int:
        started.set()
        release.wait(5)
        return 3

    assert cache.get("a", slow) == 1
    assert started.wait(5)
    assert cache.get("a", lambda: 99) == 1  # one refresh at a time
    release.set()
    deadline = time.monotonic() + 5
    while cache.computed < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.get("a", lambda: 4) == 3
    clock[0] = 61 + 601  # too old to be shown: computed before answering
    assert cache.get("a", lambda: 5) == 5
    cache.get("b", lambda: 6)
    cache.get("c", lambda: 7)  # "a" is the oldest of three: dropped
    assert cache.get("a", lambda: 8) == 8
    assert cache.computed == 6


def test_an_unreachable_results_database_is_503() -> None:
    from fastapi.testclient import TestClient

    from devops_automation.webui.auth import Viewer, get_viewer
    from tests.plugins.devops_automation.webui.conftest import FakeUser

    def broken():
        raise StoreUnavailable("the results database (connection 'devops_results_db') cannot be used: StoreConfigError")

    app = api.create_app(store=broken)
    app.dependency_overrides[get_viewer] = lambda: Viewer(FakeUser("t"), lambda dag: True)
    r = TestClient(app).get(f"{P}/failures/jobs")
    assert r.status_code == 503
    assert "StoreConfigError" in r.json()["detail"]


def test_openapi_and_docs(client) -> None:
    spec = client.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert {
        f"{P}/failures/jobs",
        f"{P}/failures/jobs/{{analysis_id}}",
        f"{P}/failures/pipelines",
        f"{P}/failures/fingerprints",
        f"{P}/ci/summary",
        f"{P}/ci/flaky-jobs",
        f"{P}/ci/red-branches",
        f"{P}/ci/runs",
        f"{P}/health",
        f"{P}/metrics",
        f"{P}/alerts",
        f"{P}/reports/{{report_id}}/html",
        f"{P}/actions",
        f"{P}/actions/{{action_id}}",
        f"{P}/events",
    } <= paths
    assert {m for ops in spec["paths"].values() for m in ops} == {"get"}
    assert spec["components"]["securitySchemes"]["AirflowJWT"]["scheme"] == "bearer"
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/api/v1/ci/runs" in page.text
    assert "<script" not in page.text
    assert "://" not in page.text  # nothing loaded from elsewhere
