"""The DevOps view in a real browser: headless Chromium against a real ``airflow api-server`` with the plugin
and demo-like data (:mod:`.demo_seed`), logged in through Airflow's own login page.

From Airflow's navigation (the "DevOps" entry) to each page, to one failure and out to its Airflow task
instance; a failure stored while the overview is open appears on it through the event stream; the
``dag_run`` tab of a ci_failure_triage run; a user without read access gets the 403 page; a page opened
before logging in comes back after the login. Every resource the pages load comes from the API server
itself (no CDN). Screenshots go to a temp folder (printed); with ``DEVOPS_DOCS_SCREENSHOTS=1`` the README's
pictures in ``docs/`` are taken again too.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from devops_automation.store import schema
from devops_automation.webui import queries
from tests.conftest import REPO
from tests.plugins.devops_automation.webui.cdp import FRAME, Tab
from tests.plugins.devops_automation.webui.conftest import ApiServer, api_server
from tests.plugins.devops_automation.webui.demo_seed import TRIAGE_RUN, demo_seed

pytestmark = pytest.mark.slow

DOCS = REPO / "docs"
#: the README's pictures: (file, what) taken when DEVOPS_DOCS_SCREENSHOTS=1
DOCS_SHOTS = os.environ.get("DEVOPS_DOCS_SCREENSHOTS", "") == "1"


@pytest.fixture(scope="module")
def server(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with api_server(tmp_path_factory.mktemp("webui-demo"), demo_seed, name="webui-demo-api-server") as srv:
        yield srv


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("webui-screenshots")
    print(f"screenshots: {folder}")
    return folder


def shoot(tab: Tab, shots: Path, name: str, *, docs: bool = False, height: int | None = None) -> None:
    """A screenshot of the tab (``height``: of a taller window, for a long page in Airflow's frame)."""
    if height:
        tab.resize(1400, height)
        tab.wait(f"{FRAME}.readyState === 'complete'")
        time.sleep(0.3)  # the frame's layout at the new size
    try:
        tab.screenshot(shots / f"{name}.png")
        if docs and DOCS_SHOTS:
            tab.screenshot(DOCS / f"webui_{name}.png")
    finally:
        if height:
            tab.resize(1400, 900)


def log_in(tab: Tab, server: ApiServer, user: str, start: str = "/") -> None:
    """Through Airflow's own login page (the simple auth manager's form)."""
    tab.goto(server.url + start)
    tab.wait(
        "location.pathname.endsWith('/auth/login') && document.querySelector('input[name=password]')", what="login form"
    )
    tab.type("input[name=username]", user)
    tab.type("input[name=password]", server.passwords[user])
    tab.js("Array.from(document.querySelectorAll('button')).find(b => b.textContent.includes('Sign in')).click()")
    tab.wait("!location.pathname.includes('/auth/login')", what="back from the login page")


def frame_ready(tab: Tab, marker: str, timeout: float = 90.0) -> None:
    """The DevOps frame shows a page whose text contains ``marker`` and whose images all loaded."""
    tab.wait(
        f"{FRAME} && {FRAME}.readyState === 'complete' && {FRAME}.body.innerText.includes({json.dumps(marker)})"
        f" && Array.from({FRAME}.images).every(i => i.complete && i.naturalWidth > 0)",
        timeout=timeout,
        what=f"the DevOps frame showing {marker!r} with its images",
    )


def assert_same_origin(tab: Tab, server: ApiServer, root: str = "window") -> None:
    urls = tab.resources(root)
    assert urls, urls
    foreign = [u for u in urls if not u.startswith(server.url + "/") and not u.startswith("data:")]
    assert not foreign, foreign


@pytest.fixture(scope="module")
def admin(server: ApiServer, browser) -> Iterator[Tab]:
    tab = Tab(browser)
    try:
        log_in(tab, server, "admin")
        yield tab
    finally:
        tab.close()


FRAME_WINDOW = "document.querySelector('iframe[title]').contentWindow"


def test_the_devops_entry_of_airflows_navigation_opens_the_overview(server: ApiServer, admin: Tab, shots: Path) -> None:
    tab = admin
    tab.goto(server.url + "/")
    tab.wait("document.querySelector('a[aria-label=\"DevOps\"]')", what="the DevOps entry in Airflow's navigation")
    # the plugin's own icon, served by the plugin
    tab.wait("document.querySelector('a[aria-label=\"DevOps\"] img').naturalWidth > 0", what="the DevOps icon")
    tab.click('a[aria-label="DevOps"]')
    tab.wait("location.pathname === '/plugin/devops'", what="Airflow's plugin page")
    frame_ready(tab, "Failures today")
    text = tab.text(FRAME)
    store = server.store
    today = queries.failure_jobs(
        store, since=dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    )
    assert len(today.items) == 3
    for job in today.items:
        assert f"{job['project_path']} · {job['job_name']}" in text
    red = queries.ci_red_branches(store)["branches"]
    assert red and f"{red[0]['repo']} · {red[0]['workflow']} · {red[0]['branch']}" in text
    assert "main-success-rate" in text and "threshold:sonarqube.coverage" in text  # the alerts firing
    assert "Health movers" in text and "payments" in text
    assert tab.wait(f"{FRAME}.querySelector('[data-live-status]').textContent === 'live'", what="the stream connected")
    assert_same_origin(tab, server, FRAME_WINDOW)
    shoot(tab, shots, "overview", docs=True)


def test_each_page_from_the_views_navigation(server: ApiServer, admin: Tab, shots: Path) -> None:
    tab = admin
    tab.goto(server.url + "/plugin/devops")
    frame_ready(tab, "Failures today")
    store = server.store

    tab.click("a[data-nav=failures]", FRAME)
    frame_ready(tab, "Analysed jobs")
    assert tab.url.endswith("/plugin/devops/devops/ui/failures")  # Airflow mirrors the frame's path
    rows = tab.js(f"{FRAME}.querySelectorAll('[data-list=failures] tbody tr').length")
    assert rows == len(queries.failure_jobs(store, limit=50).items) == 29
    assert "Recurring" in tab.text(FRAME)
    shoot(tab, shots, "failures")

    tab.click("a[data-nav=ci]", FRAME)
    frame_ready(tab, "This window against the one before")
    figures = tab.js(f"{FRAME}.querySelector('[data-figure=runs] td').textContent")
    end = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    start = end - dt.timedelta(days=7)
    summary = queries.ci_summary(store, start=start, end=end)
    assert figures.replace("\u202f", "") == str(summary["total"]["current"]["runs"])
    charts = tab.js(
        f"Array.from({FRAME}.querySelectorAll('img[data-chart]')).map(i => [i.dataset.chart, i.naturalWidth])"
    )
    assert [c[0] for c in charts] == [
        "ci-trend-success_rate",
        "ci-success_rate",
        "ci-duration_p90_s",
        "ci-queue_run_p90_s",
        "ci-mttr_s",
        "ci-trend-duration_p90_s",
    ]
    assert all(width > 0 for _, width in charts), charts
    assert "acme/web · CI · test" in tab.text(FRAME)  # the demo's flaky job
    assert_same_origin(tab, server, FRAME_WINDOW)
    shoot(tab, shots, "ci", docs=True, height=1880)

    tab.click("a[data-nav=health]", FRAME)
    frame_ready(tab, "Projects")
    latest = queries.health_latest(store)
    for project in latest["projects"]:
        assert project["project"] in tab.text(FRAME)
    tab.click("[data-projects] a[href*='project=payments']", FRAME)
    frame_ready(tab, "Inputs of the latest score")
    assert "ci.success_rate" in tab.text(FRAME)
    shoot(tab, shots, "health", docs=True, height=1250)

    tab.click("a[data-nav=reports]", FRAME)
    frame_ready(tab, "Weekly engineering report")
    tab.click("[data-list=reports] tbody tr a", FRAME)
    frame_ready(tab, "Headlines")
    inner = f"{FRAME}.querySelector('iframe[data-report-frame]').contentDocument"
    tab.wait(
        f"{inner} && {inner}.body && {inner}.body.innerText.includes('CI runs and success rate')", what="the report"
    )
    assert tab.js(f"{inner}.images[0].naturalWidth") > 0  # its chart, from the archive
    shoot(tab, shots, "report")


def test_a_failure_in_detail_and_its_links_out(server: ApiServer, admin: Tab, shots: Path) -> None:
    tab = admin
    tab.goto(server.url + "/plugin/devops/devops/ui/failures")
    frame_ready(tab, "Analysed jobs")
    first = queries.failure_jobs(server.store, limit=1).items[0]
    tab.click(f"[data-list=failures] tr[data-failure-id='{first['id']}'] a", FRAME)
    frame_ready(tab, "Log excerpt")
    analysis = queries.failure_analysis(server.store, first["id"])
    assert tab.js(f"{FRAME}.querySelector('[data-field=root_cause]').textContent") == analysis["root_cause"]
    steps = tab.js(f"Array.from({FRAME}.querySelectorAll('[data-field=fix_steps] li')).map(li => li.textContent)")
    assert steps == analysis["fix_steps"]
    evidence = tab.js(f"{FRAME}.querySelector('[data-field=evidence]').innerText")
    for line in analysis["evidence_lines"]:
        assert str(line["line"]) in evidence and line["text"] in evidence
    assert tab.js(f"{FRAME}.querySelectorAll('table.excerpt tr.evidence').length") == len(analysis["evidence_lines"])
    links = tab.js(f"Array.from({FRAME}.querySelectorAll('[data-field=links] a')).map(a => [a.textContent, a.href])")
    hrefs = dict(links)
    assert hrefs[f"GitLab job {analysis['job_id']}"] == analysis["job_url"]
    assert hrefs[f"GitLab pipeline {analysis['pipeline_id']}"] == analysis["pipeline_url"]
    run = urllib.parse.quote(analysis["dag_run_id"], safe="")
    task = f"{server.url}/dags/ci_failure_triage/runs/{run}/tasks/analyse/mapped"
    assert hrefs["Airflow task instance (analyse)"] == task
    shoot(tab, shots, "failure", docs=True)

    # out of Airflow's sandboxed frame: the Airflow page itself follows the link
    tab.click("[data-field=links] a[data-out=airflow]", FRAME)
    tab.wait(f"location.href === {json.dumps(task)}", what="Airflow's task instance page")


def test_a_failure_stored_while_the_overview_is_open_appears_on_it(server: ApiServer, admin: Tab, shots: Path) -> None:
    tab = admin
    tab.goto(server.url + "/plugin/devops")
    frame_ready(tab, "Failures today")
    tab.wait(f"{FRAME}.querySelector('[data-live-status]').textContent === 'live'", what="the stream connected")
    before = int(tab.js(f"{FRAME}.querySelector('[data-live-count]').textContent"))
    now = dt.datetime.now(dt.UTC)
    with server.store.begin() as conn:
        event = conn.execute(
            sa.insert(schema.failure_events)
            .values(
                provider="gitlab",
                project_id="104",
                project_path="platform/deploy-tools",
                pipeline_id="99999",
                ref="main",
                status="failed",
                source="webhook",
                state="analysed",
                payload={"claimed_by": "webhook__live"},
                received_at=now,
            )
            .returning(schema.failure_events.c.id)
        ).scalar_one()
        new_id = conn.execute(
            sa.insert(schema.failure_analyses)
            .values(
                event_id=event,
                job_id="7777777",
                job_name="integration-tests",
                category="timeout",
                root_cause="The integration tests hit the job timeout of 60 minutes while waiting for the database.",
                analyser="llm",
                created_at=now,
            )
            .returning(schema.failure_analyses.c.id)
        ).scalar_one()
    stored = time.monotonic()
    item = f"{FRAME}.querySelector('[data-live=failures] [data-live-id=\"{new_id}\"]')"
    tab.wait(item, timeout=10, what="the new failure on the overview")
    lag = time.monotonic() - stored
    print(f"failure {new_id} on the overview {lag:.2f} s after it was stored")
    assert lag < 5.0  # the stream's 0.2 s poll + the browser (the benchmark measures the stream itself)
    text = tab.js(f"{item}.innerText")
    assert "platform/deploy-tools · integration-tests" in text and "timeout" in text
    assert tab.js(f"{item}.querySelector('a').getAttribute('href')").endswith(f"/devops/ui/failures/{new_id}")
    assert int(tab.js(f"{FRAME}.querySelector('[data-live-count]').textContent")) == before + 1
    shoot(tab, shots, "overview_live")


def _create_triage_run(server: ApiServer, run_id: str) -> None:
    """The demo's ci_failure_triage run in Airflow's metadata database (the DAG serialised, the run
    created through the REST API), so its page and tabs exist."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=str(REPO / "dags" / "ci_failure_triage.py"))
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, "dags-folder", None)
    body = json.dumps({"dag_run_id": run_id, "logical_date": None}).encode()
    req = urllib.request.Request(
        f"{server.url}/api/v2/dags/ci_failure_triage/dagRuns",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {server.token('admin')}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 200
    except urllib.error.HTTPError as exc:
        assert exc.code == 409, exc.read()  # made by an earlier run of this test


def test_the_dag_run_tab_of_a_triage_run(server: ApiServer, admin: Tab, shots: Path) -> None:
    _create_triage_run(server, TRIAGE_RUN)
    tab = admin
    tab.goto(f"{server.url}/dags/ci_failure_triage/runs/{TRIAGE_RUN}")
    tab.wait(
        "Array.from(document.querySelectorAll('button, a')).some(e => e.textContent.trim() === 'Failure analyses')"
    )
    tab.js(
        "Array.from(document.querySelectorAll('button, a')).find(e => e.textContent.trim() === 'Failure analyses')"
        ".click()"
    )
    tab.wait("location.pathname.endsWith('/plugin/devops-failure-analyses')", what="the run's DevOps tab")
    frame_ready(tab, "Failure analyses")
    src = tab.js("document.querySelector('iframe[title]').getAttribute('src')")
    assert src == f"/devops/ui/dag-runs/ci_failure_triage/{TRIAGE_RUN}"  # {DAG_ID}/{RUN_ID} filled in by Airflow
    pipelines = queries.failure_pipelines(server.store, dag_run_id=TRIAGE_RUN).items
    assert len(pipelines) == 1
    shown = tab.js(f"Array.from({FRAME}.querySelectorAll('[data-pipeline-id]')).map(e => +e.dataset.pipelineId)")
    assert shown == [pipelines[0]["id"]]
    jobs = queries.pipeline_jobs(server.store, [pipelines[0]["id"]])[pipelines[0]["id"]]
    assert tab.js(f"Array.from({FRAME}.querySelectorAll('[data-failure-id]')).map(e => +e.dataset.failureId)") == [
        j["id"] for j in jobs
    ]
    shoot(tab, shots, "dag_run", docs=True)


def test_a_user_without_read_access_gets_the_403_page(server: ApiServer, browser, shots: Path) -> None:
    """``partial`` may read ci_pipeline_analytics and weekly_report, not ci_failure_triage nor
    daily_project_metrics."""
    tab = Tab(browser)
    try:
        log_in(tab, server, "partial")
        tab.goto(server.url + "/plugin/devops")
        frame_ready(tab, "Red branches")
        text = tab.text(FRAME)
        assert "No access" in text and "ci_failure_triage" in text  # the failures part
        assert tab.js(f"{FRAME}.querySelector('a[data-nav=failures]').classList.contains('no-access')")
        assert tab.js(f"{FRAME}.querySelector('[data-live=failures]') === null")  # no live failures list
        assert tab.js(f"{FRAME}.querySelector('[data-live=alerts]') !== null")  # alerts of ci_pipeline_analytics
        tab.click("a[data-nav=failures]", FRAME)
        frame_ready(tab, "403")
        assert "no read access to DAG 'ci_failure_triage'" in tab.text(FRAME)
        assert tab.js(f"{FRAME}.querySelector('[data-status]').dataset.status") == "403"
        shoot(tab, shots, "forbidden")
        tab.click("a[data-nav=ci]", FRAME)
        frame_ready(tab, "This window against the one before")
    finally:
        tab.close()


def test_a_page_opened_before_logging_in_comes_back_after_the_login(server: ApiServer, browser) -> None:
    tab = Tab(browser)
    try:
        tab.goto(server.url + "/devops/ui/ci?days=14")
        tab.wait("location.pathname.endsWith('/auth/login')", what="Airflow's login page")
        assert "next=" in tab.url and "devops%2Fui%2Fci" in tab.url
        tab.type("input[name=username]", "viewer")
        tab.type("input[name=password]", server.passwords["viewer"])
        tab.js("Array.from(document.querySelectorAll('button')).find(b => b.textContent.includes('Sign in')).click()")
        tab.wait("location.pathname === '/devops/ui/ci'", what="the page asked for")
        tab.wait("document.body.innerText.includes('This window against the one before')")
        assert "days=14" in tab.url
    finally:
        tab.close()
