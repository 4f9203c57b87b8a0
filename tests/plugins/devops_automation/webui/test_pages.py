"""The view's pages in-process (a stand-in login; the real one is test_browser.py and test_server.py): what each
page shows of the seed on SQLite and PostgreSQL, filters, the 403 / 404 / 422 / 503 pages, empty states on an
empty store, escaping, the charts and the static files."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from devops_automation.store import ResultsStore, schema
from devops_automation.webui import page_charts, pages, templating
from devops_automation.webui.deps import StoreUnavailable
from tests.plugins.devops_automation.webui.conftest import ALL_DAGS, FakeUser
from tests.plugins.devops_automation.webui.seed import T0

TRIAGE, CI, METRICS, WEEKLY, MONTHLY = (
    "ci_failure_triage",
    "ci_pipeline_analytics",
    "daily_project_metrics",
    "weekly_report",
    "monthly_report",
)


def map_index(run_id: str, job_name: str | None, job_id: str) -> int | None:
    """Stands in for Airflow's metadata database: the seed's first job was map index 4 of its run."""
    return 4 if (run_id, job_name, job_id) == ("manual__run1", "pytest", "9001") else None


def view_client(store, allowed=ALL_DAGS, **kwargs):
    from fastapi.testclient import TestClient

    from devops_automation.webui.auth import Viewer, get_viewer

    kwargs.setdefault("now", lambda: T0)
    kwargs.setdefault("map_index_lookup", map_index)
    app = pages.create_view_app(store=store, **kwargs)
    app.dependency_overrides[get_viewer] = lambda: Viewer(FakeUser("tester"), lambda dag: dag in allowed)
    return TestClient(app)


@pytest.fixture(scope="module")
def client(seeded):
    store, _ = seeded
    return view_client(store)


def ids(html: str, attr: str = "data-failure-id") -> list[int]:
    return [int(x) for x in re.findall(rf'{attr}="(\d+)"', html)]


def page(client, path: str, status: int = 200) -> str:
    r = client.get(path)
    assert r.status_code == status, (path, r.status_code, r.text[:2000])
    assert r.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'self'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    return r.text


# -- what each page shows ----------------------------------------------------------------------------------
def test_overview(client) -> None:
    html = page(client, "/ui/")
    today = html[html.index('id="failures-today"') : html.index('id="red-branches"')]
    assert ids(today) == [3, 2, 1]  # analysed on 2026-11-20, the test's today
    assert "data-live-count>3<" in today
    assert "group/web · pytest" in today and "flaky network test" in today
    red = html[html.index('id="red-branches"') : html.index('id="health-movers"')]
    assert "acme/api · CI · feature" in red and "group/web · CI · main" in red
    movers = html[html.index('id="health-movers"') : html.index('id="alerts-firing"')]
    assert re.search(r"web</a></td><td class=\"num\">80\.0</td><td class=\"num\"><span class=\"up\">\+10\.0", movers)
    assert "\u22125.0" in movers  # api, with a real minus
    alerts = html[html.index('id="alerts-firing"') :]
    assert "main-success-rate" in alerts and "threshold:coverage" not in alerts  # firing ones only
    assert 'data-events="/api/v1/events"' in html


def test_failures_list_and_filters(client) -> None:
    assert ids(page(client, "/ui/failures")) == [3, 2, 1]
    assert ids(page(client, "/ui/failures?category=dependency")) == [2]
    assert ids(page(client, "/ui/failures?fingerprint=aaaa1111")) == [1]
    assert ids(page(client, "/ui/failures?project=group/web&category=&since=")) == [3]  # empty fields: no filter
    html = page(client, "/ui/failures?since=2026-11-21")
    assert ids(html) == [] and "Nothing matches" in html
    html = page(client, "/ui/failures")
    assert "E assert 1 == 2" in html  # recurring: aaaa1111 (3 times) and dddd4444
    assert "out of memory" in html and "ConnectionResetError" not in html  # seen once: not recurring
    assert 'src="/ui/charts/failures.svg?days=14&amp;end=2026-11-20"' in html


def test_one_failure_with_its_evidence_and_links(client) -> None:
    html = page(client, "/ui/failures/1")
    assert '<p class="root-cause" data-field="root_cause">test_total asserts 1 == 2</p>' in html
    assert re.findall(r"<li>([^<]+)</li>", html[html.index('data-field="fix_steps"') :])[:2] == [
        "Fix test_total",
        "Run pytest -k total",
    ]
    assert '<td class="ln">11</td><td><code>E   assert 1 == 2</code>' in html
    assert "TOKEN=[REDACTED]" in html  # the excerpt as stored (redacted by the DAG)
    assert 'href="https://gitlab.example.test/acme/api/-/jobs/9001" data-out="external" target="_blank"' in html
    assert 'href="https://gitlab.example.test/acme/api/-/pipelines/5001"' in html
    assert 'href="/dags/ci_failure_triage/runs/manual__run1/tasks/analyse/mapped/4" data-out="airflow"' in html
    assert 'href="/dags/ci_failure_triage/runs/manual__run1" data-out="airflow"' in html
    assert ">deps</a>" in html  # the other job of its pipeline
    other = page(client, "/ui/failures/3")
    assert 'href="/dags/ci_failure_triage/runs/asset_triggered__run2/tasks/analyse/mapped" data-out="airflow"' in other
    assert "No evidence lines" in other and "No excerpt was stored" in other
    assert "404" in page(client, "/ui/failures/99", status=404)


def test_excerpt_rows_carry_the_log_line_numbers() -> None:
    rows = pages.excerpt_rows(
        {
            "excerpt_text_lines": ["… (9 lines)", "10: tests/test_total.py F", "11: E   assert 1 == 2", "… (40 lines)"],
            "evidence_lines": [{"line": 11, "text": "E   assert 1 == 2"}],
        }
    )
    assert [(r["line"], r["evidence"], r["gap"]) for r in rows] == [
        (None, False, True),
        (10, False, False),
        (11, True, False),
        (None, False, True),
    ]
    assert rows[2]["text"] == "E   assert 1 == 2"


def test_ci_analytics(client) -> None:
    html = page(client, "/ui/ci?end=2026-11-19")
    assert "2026-11-13 – 2026-11-19" in html
    assert re.search(r'data-figure="runs"><th>Runs</th><td class="num">5</td><td class="num muted">1</td>', html)
    assert re.search(r'data-figure="success_rate"><th>Success rate</th><td class="num">40\.0 %</td>', html)
    assert re.search(r'data-figure="mttr_s"><th>MTTR</th><td class="num">25\.0 h</td>', html)
    groups = html[html.index("data-groups") :]
    assert groups.index(">acme/api</a>") < groups.index(">group/web</a>")  # most runs first
    assert 'acme/api · CI · test</td><td class="num">1 / 4</td><td class="num">25.0 %' in html  # flaky
    charts = re.findall(r'data-chart="([^"]+)" src="([^"]+)"', html)
    assert [name for name, _ in charts] == [
        "ci-trend-success_rate",
        "ci-success_rate",
        "ci-duration_p90_s",
        "ci-queue_run_p90_s",
        "ci-mttr_s",
        "ci-trend-duration_p90_s",
    ]
    assert all("days=7&amp;end=2026-11-19" in src for _, src in charts)
    repo = page(client, "/ui/ci?end=2026-11-19&repo=acme/api")
    assert "Latest runs of acme/api" in repo
    assert re.findall(r'<span class="status status-(\w+)">', repo)[:3] == ["failure", "success", "failure"]
    empty = page(client, "/ui/ci?end=2026-10-20")
    assert "No CI runs in this window" in empty
    assert 'href="/ui/ci?days=7&amp;end=2026-11-18" data-latest' in empty  # the latest day with runs
    assert "422" in page(client, "/ui/ci?days=5", status=422)


def test_health(client) -> None:
    html = page(client, "/ui/health")
    assert "2026-11-19, change against 2026-11-12" in html
    assert re.search(r'project=api&amp;days=28&amp;compare_days=7">api</a>.*?class="down">\u22125\.0', html, re.S)
    project = page(client, "/ui/health?project=web")
    assert "web: 80.0" in project
    history = project[project.index("data-history") :]
    assert re.findall(r"<td>(2026-\d\d-\d\d)</td>", history) == ["2026-11-19", "2026-11-12"]  # newest first
    assert "<dt>ci</dt><dd>75</dd>" in project  # the latest score's inputs
    assert "health-project.svg?project=web&amp;days=28" in project
    assert "404" in page(client, "/ui/health?project=nope", status=404)


def test_reports(client) -> None:
    html = page(client, "/ui/reports")
    assert ids(html, "data-report-id") == [1, 3, 2]
    one = page(client, "/ui/reports/1")
    assert "Weekly engineering report 2026-W46" in one
    assert 'src="/api/v1/reports/1/html"' in one  # the archived HTML, from the read API
    assert "404" in page(client, "/ui/reports/99", status=404)


def test_dag_run_view(client) -> None:
    html = page(client, "/ui/dag-runs/ci_failure_triage/manual__run1")
    assert ids(html, "data-pipeline-id") == [1]
    assert ids(html) == [1, 2]
    assert "Nothing analysed in this run" in page(client, "/ui/dag-runs/ci_failure_triage/manual__other")
    assert "Not a ci_failure_triage run" in page(client, "/ui/dag-runs/weekly_report/scheduled__x")
    # what Airflow puts in {RUN_ID}: encodeURIComponent of the run id
    encoded = page(client, "/ui/dag-runs/ci_failure_triage/manual__2026-11-20T10%3A00%3A00%2B00%3A00")
    assert "manual__2026-11-20T10:00:00+00:00" in encoded


# -- charts ------------------------------------------------------------------------------------------------
CHARTS = [
    "/ui/charts/failures.svg?days=14&end=2026-11-20",
    "/ui/charts/ci-success_rate.svg?end=2026-11-19",
    "/ui/charts/ci-trend-duration_p90_s.svg?end=2026-11-19&repo=acme/api",
    "/ui/charts/ci-mttr_s.svg?end=2026-11-19&by=workflow",
    "/ui/charts/health.svg?days=28",
    "/ui/charts/health-project.svg?project=web",
]


def test_charts_are_svg_drawn_once_a_minute(sqlite_seeded) -> None:
    store, _ = sqlite_seeded
    client = view_client(store)
    cache = client.app.state.chart_cache
    for n, path in enumerate(CHARTS, start=1):
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:500])
        assert r.headers["content-type"] == "image/svg+xml"
        assert r.content.startswith(b"<?xml") and b"<svg" in r.content
        assert cache.computed == n
        again = client.get(path)
        assert again.content == r.content and again.headers["etag"] == r.headers["etag"]
        assert cache.computed == n  # from the cache
    assert client.get("/ui/charts/ci-nothing.svg").status_code == 404
    assert client.get("/ui/charts/health-project.svg").status_code == 422


def test_chart_helpers() -> None:
    days = page_charts.days_between(dt.date(2026, 11, 1), dt.date(2026, 11, 28))
    labels = page_charts.day_labels(days)
    assert len(labels) == 28 and labels[-1] == "11-28" and labels[-4] == "11-25" and labels[-2] == ""
    assert sum(1 for x in labels if x) <= page_charts.MAX_DAY_LABELS
    assert page_charts.seconds_unit([30.0, 90.0]) == ("s", 1.0)
    assert page_charts.seconds_unit([30.0, 9000.0]) == ("h", 3600.0)
    assert page_charts.group_label({"provider": "github", "repo": "a/b", "workflow": "CI"}) == "a/b · CI"
    assert page_charts.group_label({"provider": "github", "repo": "a/b", "workflow": "CI"}, repo_selected=True) == "CI"
    assert page_charts.dimensions({"dimensions": {"delivery": 80, "quality": None}}) == {
        "delivery": 80.0,
        "quality": None,
    }
    assert page_charts.dimensions({"ci": 75, "flag": True}) == {"ci": 75.0}


# -- access, errors, empty states ----------------------------------------------------------------------------
def test_pages_of_data_sets_the_user_may_not_read_are_403(sqlite_seeded) -> None:
    store, _ = sqlite_seeded
    partial = view_client(store, allowed=frozenset({CI, WEEKLY}))
    html = page(partial, "/ui/")
    assert html.count("No access") == 2  # failures and health
    assert 'data-nav="failures" class=" no-access"' in html
    assert "acme/api · CI · feature" in html  # red branches: readable
    for path, dag in [
        ("/ui/failures", TRIAGE),
        ("/ui/failures/1", TRIAGE),
        ("/ui/dag-runs/ci_failure_triage/manual__run1", TRIAGE),
        ("/ui/health", METRICS),
        ("/ui/charts/failures.svg", TRIAGE),
        ("/ui/reports/2", MONTHLY),
    ]:
        body = page(partial, path, status=403)
        assert f"no read access to DAG &#39;{dag}&#39;" in body, path
    assert ids(page(partial, "/ui/reports"), "data-report-id") == [1, 3]  # weekly ones only
    page(partial, "/ui/ci?end=2026-11-19")
    nobody = view_client(store, allowed=frozenset())
    assert "403" in page(nobody, "/ui/", status=403)
    assert page(nobody, "/ui/reports", status=403)


def test_error_pages_and_json_answers_stay_apart(sqlite_seeded) -> None:
    store, _ = sqlite_seeded
    client = view_client(store)
    html = page(client, "/ui/failures?since=yesterday", status=422)
    assert "since: expected a date YYYY-MM-DD, got &#39;yesterday&#39;" in html
    assert "category" in page(client, "/ui/failures?category=DROP%20TABLE", status=422)
    assert "404" in page(client, "/ui/no-such-page", status=404)
    r = client.get("/api/v1/failures/jobs?since=yesterday")  # the API's answers are still JSON
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "since"]
    r = client.get("/api/v1/failures/jobs/99")
    assert r.status_code == 404 and r.json() == {"detail": "no analysis 99"}

    def down() -> ResultsStore:
        raise StoreUnavailable("the results database (connection 'devops_results_db') cannot be used: KeyError")

    broken = view_client(down)
    assert "cannot be used" in page(broken, "/ui/failures", status=503)
    assert broken.get("/api/v1/failures/jobs").json()["detail"].startswith("the results database")
    assert client.get("/", follow_redirects=False).headers["location"] == "/ui/"


def test_an_empty_store_shows_empty_states(tmp_path: Path) -> None:
    store = ResultsStore(f"sqlite:///{tmp_path}/empty.db")
    try:
        client = view_client(store)
        overview = page(client, "/ui/")
        for text in ("No failures analysed today", "No CI data yet", "No health scores yet", "Nothing firing"):
            assert text in overview
        assert "No failures analysed yet" in page(client, "/ui/failures")
        assert "No CI data yet" in page(client, "/ui/ci")
        assert "No health scores yet" in page(client, "/ui/health")
        assert "No reports yet" in page(client, "/ui/reports")
        assert "Nothing analysed in this run" in page(client, "/ui/dag-runs/ci_failure_triage/x")
        for path in [*CHARTS[:2], "/ui/charts/health.svg"]:
            assert client.get(path).headers["content-type"] == "image/svg+xml"  # a "No data" image
    finally:
        store.dispose()


def test_stored_text_is_escaped(tmp_path: Path) -> None:
    store = ResultsStore(f"sqlite:///{tmp_path}/xss.db")
    try:
        with store.begin() as conn:
            event = conn.execute(
                sa.insert(schema.failure_events)
                .values(
                    provider="gitlab",
                    project_id="1",
                    project_path='g/"><script>alert(1)</script>',
                    pipeline_id="1",
                    source="webhook",
                    received_at=T0,
                    pipeline_url="javascript:alert(1)",
                )
                .returning(schema.failure_events.c.id)
            ).scalar_one()
            conn.execute(
                sa.insert(schema.failure_analyses).values(
                    event_id=event,
                    job_id="1",
                    job_name="<img src=x onerror=alert(1)>",
                    category="unknown",
                    root_cause="<script>alert(2)</script>",
                    analyser="heuristic",
                    created_at=T0,
                )
            )
        client = view_client(store)
        for path in ("/ui/", "/ui/failures", "/ui/failures/1"):
            html = page(client, path)
            assert "<script>alert" not in html and "<img src=x" not in html, path
            assert "&lt;script&gt;alert(" in html, path
        assert "scripts" not in page(client, "/ui/failures/1")  # CSP: script-src 'self', no inline script runs
    finally:
        store.dispose()


def test_static_files_and_no_resource_from_elsewhere(client) -> None:
    r = client.get("/static/devops.css")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")
    etag = r.headers["etag"]
    assert client.get("/static/devops.css", headers={"If-None-Match": etag}).status_code == 304
    assert client.get("/static/devops.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/icon.svg").headers["content-type"] == "image/svg+xml"
    assert client.get("/static/base.html").status_code == 404  # only the listed assets
    assert client.get("/static/..%2Fbase.html").status_code == 404
    html = page(client, "/ui/failures/1")
    assert f'href="/static/devops.css?v={etag.strip(chr(34))}"' in html
    # the only http(s) URLs of a page are links out (GitLab), never a script, style or image
    for tag in re.findall(r"<[^>]+(?:src|href)=\"https?://[^>]*>", html):
        assert tag.startswith("<a ") and "data-out=" in tag, tag


def test_formatting_filters() -> None:
    assert templating.fmt_duration(45) == "45 s"
    assert templating.fmt_duration(750) == "12.5 min"
    assert templating.fmt_duration(3 * 3600) == "3.0 h"
    assert templating.fmt_duration(3 * 86400) == "3.0 d"
    assert templating.fmt_pct(0.4) == "40.0 %"
    assert templating.fmt_pct(None) == templating.fmt_duration(float("nan")) == "–"
    assert templating.fmt_signed(-5.0) == "\u22125.0" and templating.fmt_signed(0.0) == "±0.0"
    assert templating.fmt_number(1234567) == "1\u202f234\u202f567"
    assert templating.fmt_time(dt.datetime(2026, 11, 20, 11, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))) == (
        "2026-11-20 09:01 UTC"
    )
    assert templating.fmt_time("2026-11-20T10:00:00Z") == "2026-11-20 10:00 UTC"
