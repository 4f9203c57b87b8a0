"""ci_pipeline_analytics end to end with dag.test() against the sandbox GitHub and GitLab.

The sandbox seeds weeks of history relative to its clock (acme/shop on GitHub; the payments group on
GitLab), so the tests pick data intervals a few days before the sandbox's today.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.slow

DAG_ID = "ci_pipeline_analytics"


@pytest.fixture(autouse=True)
def no_default_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the sources each test names: the Variable the shipped settings define (and another test may
    have applied to the shared metadata DB) is overridden by an empty one from the environment."""
    monkeypatch.setenv("AIRFLOW_VAR_CI_PIPELINE_ANALYTICS_SOURCES", "{}")


TABLES = ("ci_runs", "ci_jobs", "ci_deployments", "ci_daily", "alert_events")


def midnight_days_ago(sandbox: Any, days: int) -> dt.datetime:
    now = dt.datetime.fromtimestamp(sandbox.advance(0), dt.UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=days)


def results_store(conns: dict[str, str]) -> Any:
    import json

    from devops_automation.store import ResultsStore, sqlite_url

    return ResultsStore(sqlite_url(json.loads(conns["AIRFLOW_CONN_DEVOPS_RESULTS_DB"])["host"]))


def snapshot(store: Any, *, without: tuple[str, ...] = ()) -> dict[str, list[tuple]]:
    """Every row of the analytics tables, without surrogate ids (and the ``without`` columns), sorted."""
    from devops_automation.store import schema

    out = {}
    with store.begin() as conn:
        for name in TABLES:
            t = schema.metadata.tables[name]
            cols = [c for c in t.c if c.name != "id" and c.name not in without]
            out[name] = sorted((tuple(repr(v) for v in r) for r in conn.execute(sa.select(*cols))), key=str)
    return out


def run_ids(store: Any, provider: str, repo: str) -> set[str]:
    from devops_automation.store import schema

    t = schema.ci_runs
    with store.begin() as conn:
        return {r.run_id for r in conn.execute(sa.select(t.c.run_id).where(t.c.provider == provider, t.c.repo == repo))}


def redeploys(store: Any, repo: str, deployment_ids: list[int]) -> dict[str, str]:
    """``deployment_id -> redeploy_of`` of the marked ones among ``deployment_ids`` (the sandbox's seeded
    ones: ci_run_action's tests may add redeploys of their own)."""
    from devops_automation.store import schema

    t = schema.ci_deployments
    q = sa.select(t.c.deployment_id, t.c.redeploy_of).where(
        t.c.provider == "github", t.c.repo == repo, t.c.redeploy_of.is_not(None)
    )
    wanted = {str(i) for i in deployment_ids}
    with store.begin() as conn:
        return {r.deployment_id: r.redeploy_of for r in conn.execute(q) if r.deployment_id in wanted}


def github_truth(sandbox: Any, repo: str, start: dt.datetime, end: dt.datetime) -> set[str]:
    owner, name = repo.split("/")
    got = sandbox.control(
        "github",
        "GET",
        f"/repos/{owner}/{name}/run_ids",
        params={"created_from": start.isoformat(), "created_to": end.isoformat()},
    )
    ids = got["run_ids"] if isinstance(got, dict) else got
    return {str(i) for i in ids}


def test_first_run_stores_every_attempt_and_a_rerun_changes_nothing(sandbox, run_dag, sandbox_conns) -> None:
    day = midnight_days_ago(sandbox, 3)
    conf = {"github_repos": ["acme/shop"], "gitlab_projects": ["payments/checkout-api"], "lookback_days": 2}
    dag_run, states = run_dag(DAG_ID, logical_date=day, conf=conf)
    assert str(dag_run.state) == "success", states
    start, end = dag_run.data_interval_start, dag_run.data_interval_end
    assert end - start == dt.timedelta(days=1)
    store = results_store(sandbox_conns)
    expected = github_truth(sandbox, "acme/shop", start - dt.timedelta(days=2), end)
    assert expected, "the sandbox has runs in the window"
    assert run_ids(store, "github", "acme/shop") == expected
    assert run_ids(store, "gitlab", "payments/checkout-api"), "GitLab pipelines were stored"
    first = snapshot(store)
    assert first["ci_daily"], "daily figures were computed"
    assert first["ci_jobs"]
    # the sandbox's production rollback (a redeploy of the SHA deployed before the previous one) is marked
    production = sandbox.control("github", "GET", "/scenarios")["acme/shop"]["deployments"]["production"]
    (rollback,) = production["rollbacks"]
    ok = production["successful"]
    assert redeploys(store, "acme/shop", production["deployments"]) == {str(rollback): str(ok[ok.index(rollback) - 2])}
    sandbox.clear_requests()
    dag_run, states = run_dag(DAG_ID, logical_date=day, conf=conf)
    assert str(dag_run.state) == "success", states
    assert snapshot(store) == first  # a re-run of the interval changes no row


def test_a_missing_repository_fails_the_run_naming_it_and_the_others_are_stored(
    sandbox, run_dag, sandbox_conns
) -> None:
    day = midnight_days_ago(sandbox, 3)
    conf = {"github_repos": ["acme/shop", "acme/no-such-repo"], "lookback_days": 0}
    dag_run, states = run_dag(DAG_ID, logical_date=day, conf=conf, retries=0)
    assert str(dag_run.state) == "failed"
    assert states["summary"] == "failed"
    failed = [k for k, v in states.items() if k.startswith("collect_github[") and v == "failed"]
    assert len(failed) == 1, states
    store = results_store(sandbox_conns)
    assert run_ids(store, "github", "acme/shop") == github_truth(
        sandbox, "acme/shop", dag_run.data_interval_start, dag_run.data_interval_end
    )


def test_no_sources_configured_is_green_and_stores_nothing(sandbox, run_dag, sandbox_conns) -> None:
    dag_run, states = run_dag(DAG_ID, logical_date=midnight_days_ago(sandbox, 2))
    assert str(dag_run.state) == "success", states
    assert snapshot(results_store(sandbox_conns))["ci_runs"] == []


def test_a_backfill_of_three_days_gives_the_rows_three_daily_runs_gave(
    sandbox, run_dag, sandbox_conns, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    days = [midnight_days_ago(sandbox, n) for n in (6, 5, 4)]
    conf = {"github_repos": ["acme/shop"], "lookback_days": 1}
    for day in days:
        dag_run, states = run_dag(DAG_ID, logical_date=day, conf=conf)
        assert str(dag_run.state) == "success", states
    daily = snapshot(results_store(sandbox_conns))
    assert len({r[0] for r in daily["ci_daily"]}) >= 3
    # later, into a fresh results DB (the sandbox clock has moved on, as for a real backfill)
    sandbox.advance(6 * 3600)
    other = {
        **sandbox_conns,
        "AIRFLOW_CONN_DEVOPS_RESULTS_DB": json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "b.db")}),
    }
    monkeypatch.setenv("AIRFLOW_CONN_DEVOPS_RESULTS_DB", other["AIRFLOW_CONN_DEVOPS_RESULTS_DB"])
    for day in days:
        dag_run, states = run_dag(DAG_ID, logical_date=day, conf=conf)
        assert str(dag_run.state) == "success", states
    assert snapshot(results_store(other)) == daily


RULES = """
rules:
  - id: main-red
    kind: red_longer_than
    severity: critical
    hours: 1
    branch_pattern: main
    scope: {repos: acme/shop}
    channels: {slack: C0CIFAIL, telegram: "-1001234567890"}
"""


def test_an_alert_starts_once_and_a_rerun_or_backfill_sends_nothing(sandbox, run_dag, sandbox_conns, tmp_path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    conf = {"github_repos": ["acme/shop"], "lookback_days": 2, "alert_rules": str(rules)}
    day = midnight_days_ago(sandbox, -1)  # the interval is today: acme/shop's main is red since this morning
    sandbox.clear_requests()
    dag_run, states = run_dag(DAG_ID, logical_date=day, conf=conf)
    assert str(dag_run.state) == "success", states
    slack = sandbox.control("slack", "GET", "/messages", params={"channel": "C0CIFAIL"})
    telegram = sandbox.control("telegram", "GET", "/messages", params={"chat_id": "-1001234567890"})
    assert len(slack) == 1, slack
    assert len(telegram) == 1, telegram
    assert "main-red" in slack[0]["text"]
    assert "acme/shop" in telegram[0]["text"]
    store = results_store(sandbox_conns)
    history = snapshot(store)["alert_events"]
    assert len(history) == 1
    # the same interval again: still firing, nothing sent, the history unchanged
    run_dag(DAG_ID, logical_date=day, conf=conf)
    assert len(sandbox.control("slack", "GET", "/messages", params={"channel": "C0CIFAIL"})) == 1
    assert snapshot(store)["alert_events"] == history


def test_with_paging_off_as_in_a_backfill_the_alert_is_recorded_and_nothing_is_sent(
    sandbox, run_dag, sandbox_conns, tmp_path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    conf = {"github_repos": ["acme/shop"], "lookback_days": 2, "alert_rules": str(rules), "page": False}
    dag_run, states = run_dag(DAG_ID, logical_date=midnight_days_ago(sandbox, -1), conf=conf)
    assert str(dag_run.state) == "success", states
    history = snapshot(results_store(sandbox_conns))["alert_events"]
    assert len(history) == 1
    assert "'firing'" in history[0]
    assert sandbox.control("slack", "GET", "/messages", params={"channel": "C0CIFAIL"}) == []
    assert sandbox.control("telegram", "GET", "/messages", params={"chat_id": "-1001234567890"}) == []


EMAIL_RULES = """
rules:
  - id: main-red
    kind: red_longer_than
    severity: critical
    hours: 1
    branch_pattern: main
    scope: {repos: acme/shop}
    channels: {email: [ci-oncall@example.test, lead@example.test]}
"""


def test_an_alert_is_e_mailed_once_and_a_rerun_sends_none(sandbox, run_dag, sandbox_conns, smtp, tmp_path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(EMAIL_RULES)
    conf = {"github_repos": ["acme/shop"], "lookback_days": 2, "alert_rules": str(rules)}
    day = midnight_days_ago(sandbox, -1)  # the interval is today: acme/shop's main is red since this morning
    dag_run, states = run_dag(DAG_ID, logical_date=day, conf=conf)
    assert str(dag_run.state) == "success", states
    (mail,) = smtp.messages()
    subject = mail["Subject"]
    assert subject.startswith("\U0001f534 CRITICAL main-red · github acme/shop › CI › main: red for "), subject
    assert "longer than 1 h (red since " in subject
    assert (mail["To"], mail["X-RcptTo"]) == ("ci-oncall@example.test, lead@example.test",) * 2
    assert html.escape(subject) in mail.get_body().get_content()  # the plain-text alert line is the body too
    (row,) = rows(results_store(sandbox_conns), "notifications", channel="email")
    assert (row["status"], row["target"], row["message_ref"]) == (
        "sent",
        "ci-oncall@example.test, lead@example.test",
        mail["Message-ID"],
    )
    (result,) = xcoms(dag_run, "alerts").values()
    assert result["sent"] == 1
    # the same interval again: still firing, no second e-mail
    dag_run, states = run_dag(DAG_ID, logical_date=day, conf=conf)
    assert str(dag_run.state) == "success", states
    assert len(smtp.messages()) == 1
    (again,) = xcoms(dag_run, "alerts").values()
    assert again["sent"] == 0


# ---- the e2e list: late re-runs, access and rate limits, the 1,000 cap, odd data, GitLab groups ----

GITHUB_TOKEN = "ghp_sandboxtoken000000000000000000000000"
GITLAB_TOKEN = "glpat-sandbox-token"
DAY = dt.timedelta(days=1)
#: GitHub conclusion -> our status (definitions §2), written out here rather than imported from the code under test
GITHUB_CONCLUSIONS = {"success": "success", "failure": "failure", "timed_out": "timed_out", "cancelled": "cancelled"}


def github_api(sandbox: Any, method: str, path: str, **kw: Any) -> Any:
    """Call the sandbox's GitHub API as a client would (the connection's token); the JSON answer."""
    import requests

    headers = {"Authorization": f"Bearer {GITHUB_TOKEN}", "Accept": "application/vnd.github+json"}
    r = requests.request(method, sandbox.url("github", path), headers=headers, timeout=10, **kw)
    assert r.status_code < 400, f"{method} {path} -> {r.status_code}: {r.text[:300]}"
    return r.json() if r.content else None


def gitlab_api(sandbox: Any, method: str, path: str, **kw: Any) -> Any:
    """Call the sandbox's GitLab API (``/api/v4``) as a client would; the JSON answer."""
    import requests

    r = requests.request(
        method, sandbox.url("gitlab", f"/api/v4{path}"), headers={"PRIVATE-TOKEN": GITLAB_TOKEN}, timeout=10, **kw
    )
    assert r.status_code < 400, f"{method} {path} -> {r.status_code}: {r.text[:300]}"
    return r.json() if r.content else None


def github_list(sandbox: Any, repo: str, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """Every run of ``repo`` created in [start, end) as the runs list answers it (all pages)."""
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    created = f"{start.strftime(stamp)}..{(end - dt.timedelta(seconds=1)).strftime(stamp)}"
    runs, page = [], 1
    while True:
        body = github_api(
            sandbox, "GET", f"/repos/{repo}/actions/runs", params={"created": created, "per_page": 100, "page": page}
        )
        runs += body["workflow_runs"]
        if len(runs) >= body["total_count"] or not body["workflow_runs"]:
            return runs
        page += 1


def rows(store: Any, table: str, **where: Any) -> list[dict[str, Any]]:
    from devops_automation.store import schema

    t = schema.metadata.tables[table]
    query = sa.select(t).where(*(t.c[k] == v for k, v in where.items()))
    with store.begin() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def daily(store: Any, day: dt.date, repo: str, workflow: str = "*", branch: str = "*") -> dict[str, Any] | None:
    """The ``figures`` of one ``ci_daily`` row (None when there is no such row)."""
    found = rows(store, "ci_daily", day=day, repo=repo, workflow=workflow, branch=branch)
    assert len(found) <= 1, found
    return found[0]["figures"] if found else None


def xcoms(dag_run: Any, task_id: str) -> dict[int, Any]:
    """The task's return values by map index (-1 when not mapped)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        found = session.scalars(
            sa.select(XComModel).where(
                XComModel.dag_id == DAG_ID,
                XComModel.run_id == dag_run.run_id,
                XComModel.task_id == task_id,
                XComModel.key == "return_value",
            )
        ).all()
        return {x.map_index: XComModel.deserialize_value(x) for x in found}


def add_probe_run(sandbox: Any, repo: str, created_at: dt.datetime, branch: str, outcome: str = "failure") -> int:
    """A run of ``repo``'s CI on a branch of its own (so its ci_daily rows hold this run alone)."""
    made = sandbox.control(
        "github",
        "POST",
        f"/repos/{repo}/runs",
        json={
            "runs": [
                {
                    "workflow": "CI",
                    "branch": branch,
                    "created_at": created_at.isoformat(),
                    "outcome": outcome,
                    "queue_s": 20,
                    "duration_s": 240,
                }
            ]
        },
    )
    return made["run_ids"][0]


RERUN_REPO = "acme/web"  # no deployments: only the runs decide which days' figures are recomputed


def rerun_two_days_later(sandbox: Any, run_dag: Any, store: Any) -> dict[str, Any]:
    """Day D = two days before the sandbox's today: a failed run of D is collected with D; today a
    client re-runs it (green), the clock moves on until the attempt is done, then the DAG runs for
    today with lookback_days=2 (page off: the default alert rules are not what is tested here)."""
    today = midnight_days_ago(sandbox, 0)
    d = today - 2 * DAY
    run_id = add_probe_run(sandbox, RERUN_REPO, d + dt.timedelta(hours=10), "rerun-probe")
    conf = {"github_repos": [RERUN_REPO], "lookback_days": 0, "page": False}
    dag_run, states = run_dag(DAG_ID, logical_date=d + DAY, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    assert dag_run.data_interval_start == d
    before = {
        "probe": daily(store, d.date(), RERUN_REPO, "CI", "rerun-probe"),
        "all": daily(store, d.date(), RERUN_REPO),
    }
    github_api(sandbox, "POST", f"/repos/{RERUN_REPO}/actions/runs/{run_id}/rerun")
    sandbox.advance(900)  # re-run jobs queue up to 30 s and run up to 300 s
    conf = {**conf, "lookback_days": 2}
    dag_run, states = run_dag(DAG_ID, logical_date=today + DAY, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    assert dag_run.data_interval_start == today
    return {"day": d.date(), "run_id": str(run_id), "before": before}


@pytest.mark.usefixtures("clear_of_midnight")
def test_a_rerun_two_days_later_is_stored_as_attempt_2_and_counted_where_it_finished(
    sandbox, run_dag, sandbox_conns
) -> None:
    store = results_store(sandbox_conns)
    got = rerun_two_days_later(sandbox, run_dag, store)
    # before the re-run, D held the run: one failed run, first attempt failed as well
    probe = got["before"]["probe"]
    assert probe is not None
    assert (probe["runs"], probe["success_rate"], probe["first_attempt_success_rate"]) == (1, 0.0, 0.0)
    attempts = {
        r["attempt"]: r for r in rows(store, "ci_runs", provider="github", repo=RERUN_REPO, run_id=got["run_id"])
    }
    assert sorted(attempts) == [1, 2]
    assert (attempts[1]["status"], attempts[2]["status"]) == ("failure", "success")
    assert attempts[2]["finished_at"] > attempts[1]["finished_at"] + dt.timedelta(days=1)
    assert attempts[2]["actor"] == "sandbox-bot"  # who re-ran it (triggering_actor)
    jobs = rows(store, "ci_jobs", provider="github", repo=RERUN_REPO, run_id=got["run_id"], attempt=2)
    assert jobs and {j["status"] for j in jobs} == {"success"}
    # the run belongs to the day its final attempt finished (definitions §3): failed first, green at last
    finished = attempts[2]["finished_at"].astimezone(dt.UTC).date()
    figures = daily(store, finished, RERUN_REPO, "CI", "rerun-probe")
    assert figures is not None, f"no ci_daily row for the re-run's day {finished}"
    assert figures["runs"] == 1
    assert (figures["success_rate"], figures["first_attempt_success_rate"]) == (1.0, 0.0)
    assert (figures["attempts"], figures["failed_attempts"], figures["rerun_attempts"]) == (2, 1, 1)


@pytest.mark.usefixtures("clear_of_midnight")
def test_a_rerun_two_days_later_recomputes_the_original_days_figures(sandbox, run_dag, sandbox_conns) -> None:
    from devops_automation.ci_analytics import analytics

    store = results_store(sandbox_conns)
    got = rerun_two_days_later(sandbox, run_dag, store)
    d, before = got["day"], got["before"]
    # the run left D (its final attempt finished today): D's rows are what a first computation gives
    assert daily(store, d, RERUN_REPO, "CI", "rerun-probe") is None
    after = daily(store, d, RERUN_REPO)
    assert after is not None
    assert after["runs"] == before["all"]["runs"] - 1
    assert after["runs_by_status"]["failure"] == before["all"]["runs_by_status"]["failure"] - 1
    fresh = analytics.daily_rows(store, d, computed_at=dt.datetime.now(dt.UTC))
    stored = rows(store, "ci_daily", day=d)
    key = ("provider", "repo", "workflow", "branch", "runs", "figures")
    assert sorted((tuple(r[k] for k in key) for r in stored), key=str) == sorted(
        (tuple(r[k] for k in key) for r in fresh), key=str
    )


def test_a_gitlab_job_retried_two_days_later_recomputes_the_original_days_figures(
    sandbox, run_dag, sandbox_conns
) -> None:
    from devops_automation.ci_analytics import analytics

    project, project_id = "payments/checkout-api", 2001
    store = results_store(sandbox_conns)
    today = midnight_days_ago(sandbox, 0)
    d = today - 2 * DAY
    # DORA counted on an environment checkout-api does not deploy to: only its pipelines decide which days'
    # figures are recomputed (its production deployments would recompute D by chance)
    conf = {"gitlab_projects": [project], "lookback_days": 0, "page": False, "environments": "^production-eu$"}
    dag_run, states = run_dag(DAG_ID, logical_date=d + DAY, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    failed = [
        r
        for r in rows(store, "ci_runs", provider="gitlab", repo=project, status="failure")
        if r["finished_at"].astimezone(dt.UTC).date() == d.date() and r["parent_run_id"] is None
    ]
    assert failed, "history day 2 has a failed checkout pipeline"
    pipeline = failed[0]["run_id"]
    before = daily(store, d.date(), project)
    assert before is not None and before["runs_by_status"]["failure"] >= 1
    # today a developer retries the failed jobs of that pipeline and they pass
    jobs = gitlab_api(sandbox, "GET", f"/projects/{project_id}/pipelines/{pipeline}/jobs")
    for job in [j for j in jobs if j["status"] == "failed"]:
        retry = gitlab_api(sandbox, "POST", f"/projects/{project_id}/jobs/{job['id']}/retry")
        sandbox.control("gitlab", "POST", f"/jobs/{retry['id']}/status", json={"status": "success"})
    sandbox.advance(60)
    dag_run, states = run_dag(DAG_ID, logical_date=today + DAY, conf={**conf, "lookback_days": 2}, retries=0)
    assert str(dag_run.state) == "success", states
    (row,) = rows(store, "ci_runs", provider="gitlab", repo=project, run_id=pipeline)
    assert row["status"] == "success" and row["finished_at"].astimezone(dt.UTC).date() >= today.date()
    after = daily(store, d.date(), project)
    assert after is not None
    assert after["runs"] == before["runs"] - 1
    assert after["runs_by_status"]["failure"] == before["runs_by_status"]["failure"] - 1
    fresh = analytics.daily_rows(
        store, d.date(), computed_at=dt.datetime.now(dt.UTC), environments=conf["environments"]
    )
    key = ("provider", "repo", "workflow", "branch", "runs", "figures")
    assert sorted((tuple(r[k] for k in key) for r in rows(store, "ci_daily", day=d.date())), key=str) == sorted(
        (tuple(r[k] for k in key) for r in fresh), key=str
    )


def test_a_repository_forbidden_mid_run_fails_the_run_naming_it_and_the_other_is_stored(
    sandbox, run_dag, sandbox_conns, capfd
) -> None:
    # the list works, the attempts' jobs answer 403 (a token without the Actions permission on acme/web)
    sandbox.control("github", "POST", "/repos/acme/web/forbidden", json={"path": r"/actions/runs/\d+/attempts/"})
    day = midnight_days_ago(sandbox, 3)
    conf = {"github_repos": ["acme/web", "acme/shop"], "lookback_days": 0}
    dag_run, states = run_dag(DAG_ID, logical_date=day, conf=conf, retries=0)
    assert str(dag_run.state) == "failed"
    assert states["collect_github[0]"] == "success", states  # acme/shop (sources are sorted)
    assert states["collect_github[1]"] == "failed", states  # acme/web
    assert (states["figures"], states["alerts"], states["summary"]) == ("success", "success", "failed")
    start, end = dag_run.data_interval_start, dag_run.data_interval_end
    store = results_store(sandbox_conns)
    assert run_ids(store, "github", "acme/shop") == github_truth(sandbox, "acme/shop", start, end)
    assert rows(store, "ci_daily", day=start.date(), repo="acme/shop", workflow="*", branch="*")
    listed = sandbox.requests(system="github", method="GET", path=r"^/repos/acme/web/actions/runs$")
    refused = sandbox.requests(system="github", path=r"^/repos/acme/web/actions/runs/\d+/attempts/")
    assert [r["status"] for r in listed] == [200], "the list answered: the 403 came mid-run"
    assert refused and {r["status"] for r in refused} == {403}
    assert len(refused) == 1, "a 403 about access is not retried"
    assert "collection failed for 1 of 2 sources: github:acme/web" in capfd.readouterr().out


@pytest.mark.parametrize(
    "environments",
    [
        pytest.param(None, id="dora-on"),
        pytest.param("", id="dora-off"),
    ],
)
def test_a_repository_gone_404_mid_run_fails_the_run_naming_it_and_the_other_is_stored(
    sandbox, run_dag, sandbox_conns, capfd, environments
) -> None:
    # acme/web is listed, then disappears (deleted, renamed, or the token lost sight of a private repo:
    # GitHub answers 404 for all of these): every request below its runs answers 404
    sandbox.fault(system="github", path=r"^/repos/acme/web(/|$)", status=404, message="Not Found", skip=1)
    day = midnight_days_ago(sandbox, 3)
    conf = {"github_repos": ["acme/web", "acme/shop"], "lookback_days": 0}
    if environments is not None:
        conf["environments"] = environments  # "": no deployments collected (DORA off)
    dag_run, states = run_dag(DAG_ID, logical_date=day, conf=conf, retries=0)
    start, end = dag_run.data_interval_start, dag_run.data_interval_end
    listed = sandbox.requests(system="github", path=r"^/repos/acme/web(/|$)")
    assert listed[0]["status"] == 200 and "/actions/runs" in listed[0]["path"], "the list answered first"
    assert len(listed) > 1 and {r["status"] for r in listed[1:]} == {404}
    store = results_store(sandbox_conns)
    assert run_ids(store, "github", "acme/shop") == github_truth(sandbox, "acme/shop", start, end)
    assert states["collect_github[0]"] == "success", states  # acme/shop
    assert states["collect_github[1]"] == "failed", states  # acme/web
    assert str(dag_run.state) == "failed"
    assert "collection failed for 1 of 2 sources: github:acme/web" in capfd.readouterr().out


def inline_triggers(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record every trigger dag.test() runs in line (a deferred task) before running it."""
    from airflow.sdk.definitions import dag as dag_module

    seen: list[Any] = []
    original = dag_module._run_inline_trigger

    def record(trigger: Any, ti: Any) -> Any:
        seen.append(trigger)
        return original(trigger, ti)

    monkeypatch.setattr(dag_module, "_run_inline_trigger", record)
    return seen


def test_a_short_primary_rate_limit_is_waited_and_the_collection_completes(
    sandbox, run_dag, sandbox_conns, monkeypatch
) -> None:
    triggers = inline_triggers(monkeypatch)
    limit = sandbox.control("github", "POST", "/rate_limit", json={"remaining": 0, "reset_in": 3})
    day = midnight_days_ago(sandbox, 3)
    dag_run, states = run_dag(
        DAG_ID, logical_date=day, conf={"github_repos": ["acme/shop"], "lookback_days": 0}, retries=0
    )
    assert str(dag_run.state) == "success", states
    store = results_store(sandbox_conns)
    truth = github_truth(sandbox, "acme/shop", dag_run.data_interval_start, dag_run.data_interval_end)
    assert truth and run_ids(store, "github", "acme/shop") == truth
    assert triggers == [], "a wait under max_rate_limit_wait is slept, not deferred"
    answered = sandbox.requests(system="github")
    limited = [r for r in answered if r["status"] == 403]
    assert len(limited) == 1, [(r["path"], r["status"]) for r in answered[:5]]
    after = answered[answered.index(limited[0]) + 1 :]
    assert after and min(r["ts"] for r in after) >= limit["reset"], "the retry waited for x-ratelimit-reset"
    assert after[0]["path"] == limited[0]["path"] and after[0]["status"] == 200


def test_a_long_primary_rate_limit_defers_the_task_until_the_reset(
    sandbox, run_dag, sandbox_conns, monkeypatch
) -> None:
    import json

    conn = json.loads(sandbox_conns["AIRFLOW_CONN_GITHUB_DEFAULT"])
    conn["extra"]["max_rate_limit_wait"] = 1  # a 4 s wait counts as long: the task defers instead of sleeping
    monkeypatch.setenv("AIRFLOW_CONN_GITHUB_DEFAULT", json.dumps(conn))
    triggers = inline_triggers(monkeypatch)
    limit = sandbox.control("github", "POST", "/rate_limit", json={"remaining": 0, "reset_in": 4, "status": 429})
    day = midnight_days_ago(sandbox, 3)
    dag_run, states = run_dag(
        DAG_ID, logical_date=day, conf={"github_repos": ["acme/shop"], "lookback_days": 0}, retries=0
    )
    assert str(dag_run.state) == "success", states
    assert states["collect_github[0]"] == "success"
    assert [type(t).__name__ for t in triggers] == ["DateTimeTrigger"]
    assert triggers[0].moment == dt.datetime.fromtimestamp(limit["reset"] + 1, dt.UTC)
    store = results_store(sandbox_conns)
    truth = github_truth(sandbox, "acme/shop", dag_run.data_interval_start, dag_run.data_interval_end)
    assert truth and run_ids(store, "github", "acme/shop") == truth
    answered = sandbox.requests(system="github")
    limited = [r for r in answered if r["status"] == 429]
    assert len(limited) == 1, "the long wait is not retried in the task: it defers"
    after = answered[answered.index(limited[0]) + 1 :]
    assert after and min(r["ts"] for r in after) >= limit["reset"] + 1


def test_a_day_over_the_1000_run_cap_is_bisected_and_every_run_stored(sandbox, run_dag, sandbox_conns) -> None:
    busy = sandbox.control("github", "GET", "/scenarios")["acme/monorepo"]["busy_day"]
    day = midnight_days_ago(sandbox, 2)  # the interval [today - 3 days, today - 2 days): BUSY_DAY_AGO = 3
    dag_run, states = run_dag(
        DAG_ID, logical_date=day, conf={"github_repos": ["acme/monorepo"], "lookback_days": 0}, retries=0
    )
    assert str(dag_run.state) == "success", states
    start, end = dag_run.data_interval_start, dag_run.data_interval_end
    assert start.date().isoformat() == busy
    truth = github_truth(sandbox, "acme/monorepo", start, end)
    assert len(truth) == 1250
    store = results_store(sandbox_conns)
    assert run_ids(store, "github", "acme/monorepo") == truth
    from urllib.parse import parse_qs

    listed = sandbox.requests(system="github", method="GET", path=r"^/repos/acme/monorepo/actions/runs$")
    slices = {parse_qs(r["query"])["created"][0] for r in listed if "created" in parse_qs(r["query"])}
    assert len(slices) >= 3, f"the day is listed whole (over the cap), then in slices under it: {sorted(slices)}"


def test_jobs_deleted_between_list_and_fetch_leave_the_run_stored_without_jobs(sandbox, run_dag, sandbox_conns) -> None:
    day = midnight_days_ago(sandbox, 3)
    start = day - DAY
    listed = [r for r in github_list(sandbox, "acme/shop", start, day) if r["run_attempt"] == 1]
    assert len(listed) >= 2
    gone = listed[0]
    sandbox.fault(
        system="github", method="GET", path=rf"/actions/runs/{gone['id']}/attempts/1/jobs$", status=404, times=1
    )
    dag_run, states = run_dag(
        DAG_ID, logical_date=day, conf={"github_repos": ["acme/shop"], "lookback_days": 0}, retries=0
    )
    assert str(dag_run.state) == "success", states
    store = results_store(sandbox_conns)
    assert run_ids(store, "github", "acme/shop") == github_truth(sandbox, "acme/shop", start, day)
    (run,) = rows(store, "ci_runs", provider="github", repo="acme/shop", run_id=str(gone["id"]))
    assert (run["attempt"], run["conclusion"]) == (1, gone["conclusion"])
    assert rows(store, "ci_jobs", provider="github", repo="acme/shop", run_id=str(gone["id"])) == []
    for other in listed[1:]:
        assert rows(store, "ci_jobs", provider="github", repo="acme/shop", run_id=str(other["id"])), other["id"]
    (result,) = xcoms(dag_run, "collect_github").values()
    assert f"jobs of run {gone['id']} attempt 1 are gone (404): stored without jobs" in result["warnings"]


def test_unknown_conclusions_are_kept_raw_and_stored_as_other(
    sandbox, run_dag, sandbox_conns, caplog: pytest.LogCaptureFixture
) -> None:
    day = midnight_days_ago(sandbox, 3)
    start = day - DAY
    single = [r for r in github_list(sandbox, "acme/shop", start, day) if r["run_attempt"] == 1]
    assert len(single) >= 2 and {r["status"] for r in single} == {"completed"}
    # jobs: the sandbox's re-run control gives a re-run's jobs a conclusion GitHub may add one day
    sandbox.control("github", "POST", "/rerun_conclusion", json={"conclusion": "mystery"})
    rerun = single[1]
    github_api(sandbox, "POST", f"/repos/acme/shop/actions/runs/{rerun['id']}/rerun")
    sandbox.advance(900)
    # a run: no control sets a run's conclusion, so the list answers once with one run's conclusion changed
    listed = github_list(sandbox, "acme/shop", start, day)
    body = {"total_count": len(listed), "workflow_runs": listed}
    (mystery,) = [r for r in listed if r["id"] == single[0]["id"]]
    mystery["conclusion"] = "mystery"
    sandbox.fault(
        system="github", method="GET", path=r"^/repos/acme/shop/actions/runs$", status=200, body=body, times=1
    )
    caplog.set_level("WARNING")
    dag_run, states = run_dag(
        DAG_ID, logical_date=day, conf={"github_repos": ["acme/shop"], "lookback_days": 0}, retries=0
    )
    assert str(dag_run.state) == "success", states
    store = results_store(sandbox_conns)
    (run,) = rows(store, "ci_runs", provider="github", repo="acme/shop", run_id=str(mystery["id"]))
    assert (run["status"], run["status_raw"], run["conclusion"]) == ("other", "mystery", "mystery")
    jobs = rows(store, "ci_jobs", provider="github", repo="acme/shop", run_id=str(rerun["id"]), attempt=2)
    assert jobs and {(j["status"], j["status_raw"], j["conclusion"]) for j in jobs} == {("other", "mystery", "mystery")}
    first = rows(store, "ci_jobs", provider="github", repo="acme/shop", run_id=str(rerun["id"]), attempt=1)
    assert first and "other" not in {j["status"] for j in first}
    figures = daily(store, start.date(), "acme/shop")
    assert figures is not None and figures["runs_by_status"]["other"] == 1
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "unknown GitHub conclusion 'mystery'" in warned


def test_malformed_timestamps_are_stored_empty_and_do_not_crash(
    sandbox, run_dag, sandbox_conns, caplog: pytest.LogCaptureFixture
) -> None:
    day = midnight_days_ago(sandbox, 3)
    start = day - DAY
    listed = [r for r in github_list(sandbox, "acme/shop", start, day) if r["status"] == "completed"]
    single = [r for r in listed if r["run_attempt"] == 1]
    assert len(single) >= 3
    bad_times, bad_created, bad_jobs = single[:3]
    bad_times["updated_at"] = "not a timestamp"
    bad_times["run_started_at"] = "2026-02-30T25:61:00Z"
    bad_created["created_at"] = "yesterday"
    body = {"total_count": len(listed), "workflow_runs": listed}
    sandbox.fault(
        system="github", method="GET", path=r"^/repos/acme/shop/actions/runs$", status=200, body=body, times=1
    )
    jobs = github_api(sandbox, "GET", f"/repos/acme/shop/actions/runs/{bad_jobs['id']}/attempts/1/jobs")
    assert jobs["jobs"]
    broken = jobs["jobs"][0]
    broken["started_at"], broken["completed_at"] = "soon", 12345
    broken["steps"][0]["started_at"] = "0000-00-00T00:00:00Z"
    sandbox.fault(
        system="github",
        method="GET",
        path=rf"/actions/runs/{bad_jobs['id']}/attempts/1/jobs$",
        status=200,
        body=jobs,
        times=1,
    )
    caplog.set_level("WARNING")
    dag_run, states = run_dag(
        DAG_ID, logical_date=day, conf={"github_repos": ["acme/shop"], "lookback_days": 0}, retries=0
    )
    assert str(dag_run.state) == "success", states
    store = results_store(sandbox_conns)
    assert run_ids(store, "github", "acme/shop") == {str(r["id"]) for r in listed}
    (run,) = rows(store, "ci_runs", provider="github", repo="acme/shop", run_id=str(bad_times["id"]))
    assert (run["updated_at"], run["started_at"]) == (None, None)
    assert run["finished_at"] is not None  # the jobs still give its end
    assert (run["status"], run["status_raw"]) == (GITHUB_CONCLUSIONS[bad_times["conclusion"]], bad_times["conclusion"])
    (run,) = rows(store, "ci_runs", provider="github", repo="acme/shop", run_id=str(bad_created["id"]))
    assert (run["created_at"], run["queue_s"]) == (None, None)
    assert run["started_at"] is not None and run["finished_at"] is not None
    (job,) = rows(store, "ci_jobs", provider="github", repo="acme/shop", job_id=str(broken["id"]))
    assert (job["started_at"], job["finished_at"], job["duration_s"], job["queue_s"]) == (None, None, None, None)
    assert (job["status"], job["status_raw"]) == (GITHUB_CONCLUSIONS[broken["conclusion"]], broken["conclusion"])
    assert job["steps"][0]["started_at"] is None and job["steps"][0]["name"] == broken["steps"][0]["name"]
    assert job["steps"][1]["started_at"] == broken["steps"][1]["started_at"]
    assert daily(store, start.date(), "acme/shop") is not None
    warned = "\n".join(r.getMessage() for r in caplog.records)
    where = f"acme/shop run {bad_times['id']} attempt 1"
    assert f"malformed timestamp in {where}: updated_at: 'not a timestamp'" in warned
    assert f"malformed timestamp in {where}: run_started_at: '2026-02-30T25:61:00Z'" in warned
    assert f"malformed timestamp in acme/shop run {bad_created['id']} attempt 1: created_at: 'yesterday'" in warned
    where = f"acme/shop run {bad_jobs['id']} job {broken['id']}"
    assert f"malformed timestamp in {where}: started_at: 'soon'" in warned
    assert f"malformed timestamp in {where}: completed_at: 12345" in warned


def test_a_gitlab_group_collects_its_projects_with_child_pipelines_and_retried_jobs(
    sandbox, run_dag, sandbox_conns
) -> None:
    history = sandbox.control("gitlab", "GET", "/history")
    projects = history["projects"]
    active = sorted(p["path"] for p in projects.values() if not p["archived"])
    assert len(projects) == 4 and len(active) == 3
    day = midnight_days_ago(sandbox, 2)  # the interval is history day 3 (flaky retry, child pipelines)
    dag_run, states = run_dag(
        DAG_ID, logical_date=day, conf={"gitlab_group": "payments", "lookback_days": 0}, retries=0
    )
    assert str(dag_run.state) == "success", states
    assert xcoms(dag_run, "plan_gitlab") == {-1: active}
    assert sorted(k for k, v in states.items() if k.startswith("collect_gitlab[") and v == "success") == [
        f"collect_gitlab[{i}]" for i in range(3)
    ]
    legacy = projects["legacy"]
    touched = sandbox.requests(
        system="gitlab", path=rf"/projects/({legacy['id']}|{legacy['path'].replace('/', '%2F')})"
    )
    assert touched == [], "the archived project is not collected"
    store = results_store(sandbox_conns)
    k = str((midnight_days_ago(sandbox, 0) - dag_run.data_interval_start).days)
    for key, project in projects.items():
        if project["archived"]:
            continue
        assert len(run_ids(store, "gitlab", project["path"])) == history["updated_per_day"][key][k], key
    ledger = projects["ledger"]["path"]
    stored = {r["run_id"]: r for r in rows(store, "ci_runs", provider="gitlab", repo=ledger)}
    children = {str(c["child_pipeline_id"]): str(c["parent_pipeline_id"]) for c in history["children"]}
    linked = {run_id: r["parent_run_id"] for run_id, r in stored.items() if r["parent_run_id"]}
    assert linked, "the day has child pipelines"
    assert linked == {c: p for c, p in children.items() if c in stored}
    assert all(p in stored for p in linked.values())
    flaky = [f for f in history["flaky"] if str(f["pipeline_id"]) in run_ids(store, "gitlab", "payments/checkout-api")]
    assert len(flaky) == 1
    (failed,) = rows(store, "ci_jobs", provider="gitlab", job_id=str(flaky[0]["failed_job_id"]))
    (retry,) = rows(store, "ci_jobs", provider="gitlab", job_id=str(flaky[0]["retry_job_id"]))
    assert (failed["run_id"], retry["run_id"]) == (str(flaky[0]["pipeline_id"]),) * 2
    assert (failed["name"], failed["status"], failed["retried"]) == (flaky[0]["job"], "failure", True)
    assert failed["failure_reason"] == "script_failure"
    assert (retry["name"], retry["status"], retry["retried"]) == (flaky[0]["job"], "success", False)
    (pipeline,) = rows(store, "ci_runs", provider="gitlab", run_id=str(flaky[0]["pipeline_id"]))
    assert pipeline["status"] == "success"


def test_an_alert_message_that_failed_to_send_is_sent_by_the_next_run(
    sandbox, run_dag, sandbox_conns, tmp_path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    conf = {"github_repos": ["acme/shop"], "lookback_days": 2, "alert_rules": str(rules)}
    day = midnight_days_ago(sandbox, -1)  # today: acme/shop's main is red since this morning
    sandbox.fault(system="slack", path=r"chat\.postMessage", status=500, message="internal_error")
    _, states = run_dag(DAG_ID, logical_date=day, conf=conf, retries=0)
    assert states["alerts"] == "failed", states  # Slack refused; Telegram got its message
    assert len(sandbox.control("telegram", "GET", "/messages", params={"chat_id": "-1001234567890"})) == 1
    assert sandbox.control("slack", "GET", "/messages", params={"channel": "C0CIFAIL"}) == []
    sandbox.clear_faults()
    _, states = run_dag(DAG_ID, logical_date=day, conf=conf, retries=0)
    assert states["alerts"] == "success", states
    slack = sandbox.control("slack", "GET", "/messages", params={"channel": "C0CIFAIL"})
    assert len(slack) == 1 and "main-red" in slack[0]["text"], slack
    assert len(sandbox.control("telegram", "GET", "/messages", params={"chat_id": "-1001234567890"})) == 1


def test_alert_messages_that_could_not_be_sent_fail_the_run(sandbox, run_dag, sandbox_conns, tmp_path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    conf = {"github_repos": ["acme/shop"], "lookback_days": 2, "alert_rules": str(rules)}
    sandbox.fault(system="slack", path=r"chat\.postMessage", status=500, message="internal_error")
    dag_run, states = run_dag(DAG_ID, logical_date=midnight_days_ago(sandbox, -1), conf=conf, retries=0)
    assert states["alerts"] == "failed", states
    assert len(snapshot(results_store(sandbox_conns))["alert_events"]) == 1  # recorded all the same
    assert str(dag_run.state) == "failed", states


# ---- run note, extra links, Params, http_cache housekeeping ----


def test_a_rerun_notes_the_alert_as_still_firing_not_started_again(
    sandbox, run_dag, sandbox_conns, tmp_path, capfd
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    conf = {"github_repos": ["acme/shop"], "lookback_days": 2, "alert_rules": str(rules)}
    day = midnight_days_ago(sandbox, -1)  # today: acme/shop's main is red since this morning
    capfd.readouterr()
    dag_run, states = run_dag(DAG_ID, logical_date=day, conf=conf)
    assert str(dag_run.state) == "success", states
    assert "alerts: started 1, still firing 0, resolved 0" in capfd.readouterr().out
    (first,) = xcoms(dag_run, "alerts").values()
    assert (first["started"], first["still_firing"], first["resolved"]) == (1, 0, 0)
    # the same interval again: the start was recorded by the first run; the alert is still firing
    dag_run, states = run_dag(DAG_ID, logical_date=day, conf=conf)
    assert str(dag_run.state) == "success", states
    out = capfd.readouterr().out
    assert "alerts: started 0, still firing 1, resolved 0" in out
    assert "alerts: started 1" not in out
    (again,) = xcoms(dag_run, "alerts").values()
    assert (again["started"], again["still_firing"], again["resolved"], again["sent"]) == (0, 1, 0, 0)
    assert again["transitions"] == {"started": 1, "still_firing": 0, "resolved": 0}
    assert len(sandbox.control("slack", "GET", "/messages", params={"channel": "C0CIFAIL"})) == 1


def xcom_value(dag_run: Any, task_id: str, key: str) -> dict[int, Any]:
    """The task's XCom ``key`` by map index."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        found = session.scalars(
            sa.select(XComModel).where(
                XComModel.dag_id == DAG_ID,
                XComModel.run_id == dag_run.run_id,
                XComModel.task_id == task_id,
                XComModel.key == key,
            )
        ).all()
        return {x.map_index: XComModel.deserialize_value(x) for x in found}


def test_collect_tasks_link_to_the_actions_and_pipelines_pages_and_a_duplicate_repo_is_collected_once(
    sandbox, run_dag, sandbox_conns
) -> None:
    from devops_automation.workflows.ci_pipeline_analytics.operators import CICollectOperator

    (link,) = CICollectOperator.operator_extra_links
    day = midnight_days_ago(sandbox, 3)
    conf = {
        "github_repos": ["acme/shop", "acme/shop", " ACME/Shop "],
        "gitlab_projects": ["payments/checkout-api", 2003],
        "lookback_days": 0,
        "page": False,
    }
    dag_run, states = run_dag(DAG_ID, logical_date=day, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    assert xcoms(dag_run, "plan_github") == {-1: ["acme/shop"]}
    assert xcoms(dag_run, "plan_gitlab") == {-1: ["2003", "payments/checkout-api"]}
    assert sorted(k for k in states if k.startswith("collect_")) == [
        "collect_github[0]",
        "collect_gitlab[0]",
        "collect_gitlab[1]",
    ]
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        labels = {
            (ti.task_id, ti.map_index): ti.rendered_map_index
            for ti in session.scalars(sa.select(TaskInstance).where(TaskInstance.run_id == dag_run.run_id))
            if ti.map_index >= 0
        }
    assert labels == {
        ("collect_github", 0): "acme/shop",
        ("collect_gitlab", 0): "2003",
        ("collect_gitlab", 1): "payments/checkout-api",
    }
    store = results_store(sandbox_conns)
    assert {r["repo"] for r in rows(store, "ci_runs", provider="github")} == {"acme/shop"}
    assert {r["repo"] for r in rows(store, "ci_runs", provider="gitlab")} == {"2003", "payments/checkout-api"}
    assert run_ids(store, "github", "acme/shop") == github_truth(
        sandbox, "acme/shop", dag_run.data_interval_start, dag_run.data_interval_end
    )
    # the link the UI shows: what the task runner stored for the mapped task instance (_link_<name>)
    assert xcom_value(dag_run, "collect_github", link.xcom_key) == {0: sandbox.url("github", "/acme/shop/actions")}
    assert xcom_value(dag_run, "collect_gitlab", link.xcom_key) == {
        0: sandbox.url("gitlab", "/payments/mobile/ios-app/-/pipelines"),  # project 2003, by its web_url
        1: sandbox.url("gitlab", "/payments/checkout-api/-/pipelines"),
    }


@pytest.mark.parametrize(
    "github_item, gitlab_item, github_error, gitlab_error",
    [
        pytest.param(
            "not-a-repo",
            "not a project",
            "github_repos[1] must be a GitHub repository 'owner/name', got 'not-a-repo'",
            "gitlab_projects[1] must be a GitLab project id or path 'group/project', got 'not a project'",
            id="no-slash",
        ),
        pytest.param(
            "",
            -7,
            "github_repos[1] must be a non-empty repository name, got ''",
            "gitlab_projects[1] must be a GitLab project id or path 'group/project', got -7",
            id="empty-and-negative-id",
        ),
        pytest.param(
            "a/b/c",
            "checkout-api",
            "github_repos[1] must be a GitHub repository 'owner/name', got 'a/b/c'",
            "gitlab_projects[1] must be a GitLab project id or path 'group/project', got 'checkout-api'",
            id="too-many-and-no-group",
        ),
    ],
)
def test_a_bad_source_param_fails_the_plan_naming_it_and_nothing_is_collected(
    sandbox, run_dag, sandbox_conns, capfd, github_item, gitlab_item, github_error, gitlab_error
) -> None:
    conf = {
        "github_repos": ["acme/shop", github_item],
        "gitlab_projects": ["payments/checkout-api", gitlab_item],
        "lookback_days": 0,
        "page": False,
    }
    capfd.readouterr()
    sandbox.clear_requests()
    dag_run, states = run_dag(DAG_ID, logical_date=midnight_days_ago(sandbox, 3), conf=conf, retries=0)
    out = capfd.readouterr().out
    assert str(dag_run.state) == "failed", states
    assert (states["plan_github"], states["plan_gitlab"]) == ("failed", "failed"), states
    assert github_error in out
    assert gitlab_error in out
    assert not [k for k, v in states.items() if k.startswith("collect_") and v == "success"], states
    assert states["summary"] == "failed"
    assert "task(s) plan_github, plan_gitlab failed" in out
    assert snapshot(results_store(sandbox_conns))["ci_runs"] == []
    assert sandbox.requests(system="github") == sandbox.requests(system="gitlab") == []


def test_http_cache_entries_older_than_the_lookback_are_purged_once_a_run(sandbox, run_dag, sandbox_conns) -> None:
    from devops_automation.store import schema

    day = midnight_days_ago(sandbox, 2)  # the interval [day - 1 day, day)
    start = day - DAY
    store = results_store(sandbox_conns)
    entries = {"old": start - dt.timedelta(days=9, seconds=1), "kept": start - dt.timedelta(days=8, hours=23)}
    store.upsert(
        schema.http_cache,
        [
            {"key": name, "url": f"https://api.github.com/{name}", "etag": '"e"', "body": {}, "fetched_at": at}
            for name, at in entries.items()
        ],
        keys=["key"],
    )
    dag_run, states = run_dag(DAG_ID, logical_date=day, conf={"lookback_days": 7})  # no sources
    assert str(dag_run.state) == "success", states
    assert dag_run.data_interval_start == start
    (figures,) = xcoms(dag_run, "figures").values()
    assert figures["http_cache_purged"] == 1
    assert [r["key"] for r in rows(store, "http_cache")] == ["kept"]
