"""The view in a real ``airflow api-server``: Airflow's login and auth manager on every route (401 / 403 /
200), the UI's cookie, both plugins mounted, and the event stream (a stored row reaches a connected
client within 2 s; only the DAGs the user may read; ``Last-Event-ID`` resume)."""

from __future__ import annotations

import datetime as dt
import http.client
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from devops_automation.store import schema
from tests.plugins.devops_automation.webui.conftest import ApiServer, read_events

pytestmark = pytest.mark.slow

P = "/devops/api/v1"
TRIAGE, CI, METRICS, WEEKLY, MONTHLY, ACTION = (
    "ci_failure_triage",
    "ci_pipeline_analytics",
    "daily_project_metrics",
    "weekly_report",
    "monthly_report",
    "ci_run_action",
)
#: what the rows the SSE tests add do not reach: the route checks below see only the seed
BEFORE = "until=2026-11-21T00:00:00Z"


def _ids(body: dict) -> list[int]:
    return [item["id"] for item in body["items"]]


#: (path, the DAGs whose data it is, a check of the viewer's 200 answer)
ROUTES: list[tuple[str, tuple[str, ...], Callable[[Any], bool]]] = [
    (f"/failures/jobs?{BEFORE}", (TRIAGE,), lambda b: _ids(b) == [3, 2, 1]),
    ("/failures/jobs/1", (TRIAGE,), lambda b: b["excerpt_text_lines"][1] == "E   assert 1 == 2"),
    (f"/failures/pipelines?{BEFORE}", (TRIAGE,), lambda b: _ids(b) == [2, 1]),
    ("/failures/pipelines/1", (TRIAGE,), lambda b: (b["analysed_jobs"], b["dag_run_id"]) == (2, "manual__run1")),
    ("/failures/fingerprints", (TRIAGE,), lambda b: [i["fingerprint"] for i in b["items"]] == ["aaaa1111", "dddd4444"]),
    ("/ci/summary?start=2026-11-13&end=2026-11-20", (CI,), lambda b: b["total"]["current"]["runs"] == 5),
    ("/ci/flaky-jobs?start=2026-11-13&end=2026-11-20", (CI,), lambda b: b["jobs"][0]["flaky_on"] == ["sha3"]),
    ("/ci/red-branches", (CI,), lambda b: [x["branch"] for x in b["branches"]] == ["feature", "main"]),
    ("/ci/repos", (CI,), lambda b: [r["repo"] for r in b] == ["acme/api", "group/web"]),
    (
        "/ci/runs?provider=github&repo=acme/api",
        (CI,),
        lambda b: [i["run_id"] for i in b["items"]][:3] == ["4", "3", "3"],
    ),
    ("/ci/runs/4", (CI,), lambda b: [a["attempt"] for a in b["attempts"]] == [1, 2]),
    ("/health", (METRICS,), lambda b: {p["project"]: p["change"] for p in b["projects"]} == {"api": -5.0, "web": 10.0}),
    ("/health/history?project=web", (METRICS,), lambda b: [p["score"] for p in b] == [70.0, 80.0]),
    ("/metrics?project=web&source=sonarqube", (METRICS,), lambda b: [i["value"] for i in b["items"]] == [81.5, 81.5]),
    (f"/alerts?{BEFORE}", (CI, METRICS), lambda b: _ids(b) == [3, 2, 1]),
    ("/alerts/1", (CI,), lambda b: [n["status"] for n in b["notifications"]] == ["sent", "failed"]),
    ("/reports", (WEEKLY, MONTHLY), lambda b: _ids(b) == [1, 3, 2]),
    ("/reports/1", (WEEKLY,), lambda b: b["title"] == "Weekly engineering report 2026-W46"),
    ("/reports/1/html", (WEEKLY,), lambda b: b"<h1>Week 46</h1>" in b),
    ("/reports/1/markdown", (WEEKLY,), lambda b: b == b"# Week 46\n\nRuns: 4\n"),
    ("/reports/1/runs.png", (WEEKLY,), lambda b: b.startswith(b"\x89PNG")),
    ("/reports/2/markdown", (MONTHLY,), lambda b: b == b"# October\n"),
    (
        "/actions",
        (ACTION,),
        lambda b: [i["airflow_run_id"] for i in b["items"]] == ["manual__a3", "manual__a2", "manual__a1"],
    ),
    (
        "/actions/1",
        (ACTION,),
        lambda b: (b["triggered_by"], b["action"], b["outcome"]) == ("alice", "rerun_failed", "success"),
    ),
]


@pytest.mark.parametrize(("path", "dags", "check"), ROUTES, ids=[r[0].split("?")[0] for r in ROUTES])
def test_each_route_401_403_200(webui_api_server: ApiServer, path: str, dags: tuple[str, ...], check) -> None:
    server = webui_api_server
    status, body = server.get(P + path)
    assert status == 401, body
    assert body == {"detail": "Not authenticated"}
    status, body = server.get(P + path, headers={"Authorization": "Bearer not-a-jwt"})
    assert status == 401, body
    status, body = server.get(P + path, user="outsider")  # may read none of the view's DAGs
    assert status == 403, body
    assert "Forbidden: no read access to DAG" in body["detail"]
    assert dags[0] in body["detail"]
    status, body = server.get(P + path, user="viewer")
    assert status == 200, body
    assert check(body), body


def test_401_asks_for_a_bearer_token(webui_api_server: ApiServer) -> None:
    req = urllib.request.Request(f"{webui_api_server.url}{P}/failures/jobs")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 401
    assert err.value.headers["WWW-Authenticate"] == "Bearer"


def test_the_ui_cookie_is_a_login_too(webui_api_server: ApiServer) -> None:
    """The Airflow UI holds its JWT in the ``_token`` cookie; the browser sends it to the plugin too."""
    token = webui_api_server.token("viewer")
    status, body = webui_api_server.get(f"{P}/access", headers={"Cookie": f"_token={token}"})
    assert status == 200, body
    assert body["user"] == "viewer"
    assert set(body["datasets"].values()) == {True}
    status, _ = webui_api_server.get(f"{P}/access", headers={"Cookie": "_token=forged.jwt.value"})
    assert status == 401


def test_access_lists_what_each_user_may_read(webui_api_server: ApiServer) -> None:
    status, body = webui_api_server.get(f"{P}/access")
    assert status == 401
    status, body = webui_api_server.get(f"{P}/access", user="outsider")
    assert status == 200
    assert body["datasets"] == dict.fromkeys(("failures", "ci", "metrics", "alerts", "reports", "actions"), False)
    status, body = webui_api_server.get(f"{P}/access", user="partial")
    assert body == {
        "user": "partial",
        "datasets": {
            "failures": False,
            "ci": True,
            "metrics": False,
            "alerts": True,
            "reports": True,
            "actions": False,
        },
        "dags": {CI: True, TRIAGE: False, METRICS: False, MONTHLY: False, WEEKLY: True, ACTION: False},
    }


def test_rows_of_dags_the_user_may_not_read_are_left_out(webui_api_server: ApiServer) -> None:
    """``partial`` may read ci_pipeline_analytics and weekly_report, not daily_project_metrics or
    monthly_report: their alerts and reports are not listed, and asking for one is a 403."""
    server = webui_api_server
    status, body = server.get(f"{P}/alerts?{BEFORE}", user="partial")
    assert status == 200
    assert [(i["id"], i["source"]) for i in body["items"]] == [(3, CI), (1, CI)]
    assert server.get(f"{P}/alerts/2", user="partial")[0] == 403
    assert server.get(f"{P}/alerts?source={METRICS}", user="partial")[0] == 403
    status, body = server.get(f"{P}/reports", user="partial")
    assert _ids(body) == [1, 3]
    assert server.get(f"{P}/reports/2", user="partial")[0] == 403
    assert server.get(f"{P}/reports/2/html", user="partial")[0] == 403
    assert server.get(f"{P}/reports?kind=monthly", user="partial")[0] == 403
    assert server.get(f"{P}/failures/jobs", user="partial")[0] == 403
    assert server.get(f"{P}/ci/repos", user="partial")[0] == 200


def test_422_names_the_field_and_limits_are_capped(webui_api_server: ApiServer) -> None:
    server = webui_api_server
    for query, field in [
        ("/failures/jobs?since=yesterday", "since"),
        ("/failures/jobs?limit=0", "limit"),
        ("/failures/jobs?category=DROP%20TABLE", "category"),
        ("/failures/jobs?cursor=bm90LWEtY3Vyc29y", "cursor"),
        ("/ci/runs?repo=acme/api", "provider"),
        ("/ci/runs?provider=bitbucket&repo=acme/api", "provider"),
        ("/ci/summary?start=2026-11-20&end=2026-11-13", "end"),
        ("/ci/summary?start=2026-01-01&end=2026-11-13", "start"),
        ("/alerts?state=burning", "state"),
        ("/actions?outcome=green", "outcome"),
    ]:
        status, body = server.get(P + query, user="admin")
        assert status == 422, (query, body)
        assert field in [err["loc"][-1] for err in body["detail"]], (query, body)
    status, body = server.get(f"{P}/ci/runs?provider=github&repo=acme/api&limit=100000", user="admin")
    assert status == 200
    assert body["limit"] == 500


def test_both_plugins_mount_and_the_docs_need_no_login(webui_api_server: ApiServer) -> None:
    server = webui_api_server
    status, body = server.get("/devops-automation/webhooks/health")
    assert (status, body) == (200, {"status": "ok"})
    status, spec = server.get("/devops/openapi.json")
    assert status == 200
    assert spec["servers"] == [{"url": "/devops"}]  # paths are relative to the mount
    assert "/api/v1/failures/jobs" in spec["paths"]
    methods = {m for ops in spec["paths"].values() for m in ops}
    assert methods == {"get"}  # no route writes
    status, page = server.get("/devops/docs")
    assert status == 200
    assert b"/devops/api/v1/ci/red-branches" in page
    assert b"<script" not in page


# ---- the event stream ----------------------------------------------------------------------------------


def _open_stream(server: ApiServer, user: str | None, last_event_id: str | None = None) -> tuple[Any, Any]:
    parsed = urllib.parse.urlsplit(server.url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    headers = {"Accept": "text/event-stream"}
    if user:
        headers["Authorization"] = f"Bearer {server.token(user)}"
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    conn.request("GET", f"{P}/events", headers=headers)
    return conn, conn.getresponse()


def _add_failure(server: ApiServer, job_id: str) -> int:
    t = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    with server.store.begin() as conn:
        return conn.execute(
            sa.insert(schema.failure_analyses)
            .values(
                event_id=server.ids["events"][0],
                job_id=job_id,
                job_name="e2e",
                category="timeout",
                root_cause="the job timed out",
                analyser="heuristic",
                created_at=t,
            )
            .returning(schema.failure_analyses.c.id)
        ).scalar_one()


def _add_alert(server: ApiServer, source: str, rule: str) -> int:
    t = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    with server.store.begin() as conn:
        return conn.execute(
            sa.insert(schema.alert_events)
            .values(
                source=source,
                rule_id=rule,
                scope_key="github:acme/api",
                severity="critical",
                state="firing",
                started_at=t,
                last_evaluated_at=t,
                details={},
            )
            .returning(schema.alert_events.c.id)
        ).scalar_one()


def _named(kind: str, row_id: int | None = None) -> Callable[[list[dict]], bool]:
    return lambda evs: any(e.get("event") == kind and (row_id is None or e["data"]["id"] == row_id) for e in evs)


def test_events_401_403(webui_api_server: ApiServer) -> None:
    for user, code in ((None, 401), ("outsider", 403)):
        conn, resp = _open_stream(webui_api_server, user)
        try:
            assert resp.status == code
        finally:
            conn.close()
    conn, resp = _open_stream(webui_api_server, "viewer", last_event_id="not-an-id")
    try:
        assert resp.status == 422
        assert b"Last-Event-ID" in resp.read()
    finally:
        conn.close()


def test_a_stored_failure_reaches_the_stream_within_2_s(webui_api_server: ApiServer) -> None:
    server = webui_api_server
    conn, resp = _open_stream(server, "viewer")
    try:
        assert resp.status == 200
        assert resp.getheader("Content-Type").startswith("text/event-stream")
        events = read_events(resp, _named("ready"), timeout=10)
        ready = events[-1]
        assert ready["data"]["user"] == "viewer"
        new_id = _add_failure(server, "e2e-1")
        stored = time.monotonic()
        events = read_events(resp, _named("failure", new_id), timeout=5)
        [got] = [e for e in events if e.get("event") == "failure"]
        lag = got["at"] - stored
        print(f"failure event {new_id}: {lag:.3f} s after it was stored")
        assert lag < 2.0
        assert got["data"]["job_id"] == "e2e-1"
        assert got["data"]["project_path"] == "acme/api"
        assert got["id"] == f"{new_id}-{ready['id'].split('-')[1]}"
        # heartbeats keep the stream open while nothing happens
        pings = read_events(resp, lambda evs: any("comment" in e for e in evs), timeout=3)
        assert any(e.get("comment") == "ping" for e in pings)
    finally:
        conn.close()

    # resume: what was stored while away is sent (replayed, or live when the poller had not seen it yet), once
    missed = _add_failure(server, "e2e-2")
    conn, resp = _open_stream(server, "viewer", last_event_id=got["id"])
    try:
        events = read_events(resp, _named("failure", missed), timeout=5)
        events += read_events(resp, lambda evs: any("comment" in e for e in evs), timeout=3)
        kinds = [(e["event"], e["data"].get("id")) for e in events if e.get("event")]
        assert sorted(kinds, key=str) == [("failure", missed), ("ready", None)]
    finally:
        conn.close()


def test_a_stream_sends_only_what_the_user_may_read(webui_api_server: ApiServer) -> None:
    """``partial`` may not read ci_failure_triage or daily_project_metrics: of a failure and two alerts it
    gets the ci_pipeline_analytics alert only; ``viewer`` gets all three."""
    server = webui_api_server
    streams = {user: _open_stream(server, user) for user in ("partial", "viewer")}
    try:
        for _, resp in streams.values():
            read_events(resp, _named("ready"), timeout=10)
        failure = _add_failure(server, "e2e-3")
        metrics_alert = _add_alert(server, METRICS, "threshold:e2e")
        ci_alert = _add_alert(server, CI, "e2e-rate")
        got = {user: read_events(resp, _named("alert", ci_alert), timeout=5) for user, (_, resp) in streams.items()}
        seen = {user: [(e["event"], e["data"]["id"]) for e in evs if e.get("event")] for user, evs in got.items()}
        assert seen["partial"] == [("alert", ci_alert)]
        assert sorted(seen["viewer"]) == sorted([("failure", failure), ("alert", metrics_alert), ("alert", ci_alert)])
    finally:
        for conn, _ in streams.values():
            conn.close()


# ---- the pages ----------------------------------------------------------------------------------------------


def _raw(server: ApiServer, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """GET without following redirects."""
    parsed = urllib.parse.urlsplit(server.url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_pages_behind_airflows_login(webui_api_server: ApiServer) -> None:
    server = webui_api_server
    status, headers, _ = _raw(server, "/devops/ui/failures?category=test_failure")
    assert status == 303  # not logged in: Airflow's login page, coming back here
    login = urllib.parse.urlsplit(headers["location"])
    assert login.path == "/auth/login"
    assert urllib.parse.parse_qs(login.query)["next"] == [f"{server.url}/devops/ui/failures?category=test_failure"]

    status, headers, body = _raw(server, "/devops/ui/failures", {"Authorization": f"Bearer {server.token('outsider')}"})
    assert status == 403 and headers["content-type"].startswith("text/html")
    assert b"no read access to DAG &#39;ci_failure_triage&#39;" in body

    cookie = {"Cookie": f"_token={server.token('viewer')}"}  # what the Airflow UI's frame sends
    status, headers, body = _raw(server, "/devops/ui/failures/1", cookie)
    assert status == 200, body[:500]
    assert b"test_total asserts 1 == 2" in body
    assert "frame-ancestors 'self'" in headers["content-security-policy"]
    status, headers, body = _raw(server, "/devops/ui/charts/ci-success_rate.svg?end=2026-11-19", cookie)
    assert status == 200 and headers["content-type"] == "image/svg+xml" and body.startswith(b"<?xml")
    status, headers, _ = _raw(server, "/devops/static/icon.svg")  # assets need no login (the nav icon)
    assert status == 200 and headers["content-type"] == "image/svg+xml"


def test_airflow_lists_the_external_views(webui_api_server: ApiServer) -> None:
    status, body = webui_api_server.get("/api/v2/plugins", user="admin")
    assert status == 200, body
    [plugin] = [p for p in body["plugins"] if p["name"] == "devops_automation_webui"]
    views = {v["url_route"]: v for v in plugin["external_views"]}
    assert views["devops"]["href"] == "/devops/ui/" and views["devops"]["destination"] == "nav"
    assert views["devops-failure-analyses"]["destination"] == "dag_run"
    assert views["devops-failure-analyses"]["href"] == "/devops/ui/dag-runs/{DAG_ID}/{RUN_ID}"
