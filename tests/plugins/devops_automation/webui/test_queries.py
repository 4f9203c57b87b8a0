"""The view's read functions on SQLite and the real PostgreSQL, over the seed rows (seed.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from devops_automation.ci_analytics import analytics
from devops_automation.webui import queries as q
from tests.plugins.devops_automation.webui.seed import WINDOW, at

REPO = Path(__file__).resolve().parents[4]
BOTH = {"ci_pipeline_analytics", "daily_project_metrics"}


def _ids(page: q.Page) -> list:
    return [item["id"] for item in page.items]


# -- failures ------------------------------------------------------------------------------------------
def test_failure_jobs_filters_and_pages(seeded) -> None:
    store, ids = seeded
    a1, a2, a3 = ids["analyses"]
    page = q.failure_jobs(store)
    assert _ids(page) == [a3, a2, a1]
    assert page.next_cursor is None
    first = page.items[2]
    assert (first["project_path"], first["pipeline_id"], first["job_name"], first["category"]) == (
        "acme/api",
        "5001",
        "pytest",
        "test_failure",
    )
    assert first["created_at"] == at(20, 10, 1)
    assert _ids(q.failure_jobs(store, project="acme/api")) == [a2, a1]
    assert _ids(q.failure_jobs(store, project="102")) == [a3]  # the numeric GitLab id works too
    assert _ids(q.failure_jobs(store, category="test_failure")) == [a3, a1]
    assert _ids(q.failure_jobs(store, fingerprint="aaaa1111")) == [a1]
    assert _ids(q.failure_jobs(store, since=at(20, 10, 2))) == [a3, a2]
    assert _ids(q.failure_jobs(store, until=at(20, 10, 2))) == [a1]
    assert _ids(q.failure_jobs(store, since=dt.date(2026, 11, 21))) == []
    # keyset pages of one
    one = q.failure_jobs(store, limit=1)
    two = q.failure_jobs(store, limit=1, cursor=one.next_cursor)
    three = q.failure_jobs(store, limit=1, cursor=two.next_cursor)
    assert (_ids(one), _ids(two), _ids(three)) == ([a3], [a2], [a1])
    assert three.next_cursor is None


def test_failure_analysis_has_its_excerpt_lines_and_run(seeded) -> None:
    store, ids = seeded
    got = q.failure_analysis(store, ids["analyses"][0])
    assert got["excerpt_text_lines"] == ["tests/test_total.py F", "E   assert 1 == 2", "TOKEN=[REDACTED]"]
    assert got["excerpt_lines"] == ["10-12"]
    assert got["evidence_lines"] == [{"line": 11, "text": "E   assert 1 == 2"}]
    assert got["fix_steps"] == ["Fix test_total", "Run pytest -k total"]
    assert (got["dag_run_id"], got["pipeline_at"], got["state"]) == ("manual__run1", "2026-11-20T09:55:00Z", "notified")
    assert got["pipeline_url"] == "https://gitlab.example.test/acme/api/-/pipelines/5001"
    assert q.failure_analysis(store, 999_999) is None


def test_failure_pipelines(seeded) -> None:
    store, ids = seeded
    e1, e2 = ids["events"]
    page = q.failure_pipelines(store)
    assert _ids(page) == [e2, e1]
    assert [(p["analysed_jobs"], p["categories"]) for p in page.items] == [
        (1, ["test_failure"]),
        (2, ["dependency", "test_failure"]),
    ]
    assert _ids(q.failure_pipelines(store, category="dependency")) == [e1]
    assert _ids(q.failure_pipelines(store, fingerprint="cccc3333")) == [e2]
    assert _ids(q.failure_pipelines(store, dag_run_id="asset_triggered__run2")) == [e2]
    assert _ids(q.failure_pipelines(store, state="notified")) == [e1]
    assert _ids(q.failure_pipelines(store, since=at(20, 10, 30))) == [e2]
    detail = q.failure_pipeline(store, e1)
    assert [j["job_id"] for j in detail["jobs"]] == ["9001", "9002"]
    assert detail["dag_run_id"] == "manual__run1"
    assert q.failure_pipeline(store, 999_999) is None


def test_recurring_fingerprints(seeded) -> None:
    store, _ = seeded
    page = q.recurring_fingerprints(store)
    assert [(f["fingerprint"], f["occurrences"]) for f in page.items] == [("aaaa1111", 3), ("dddd4444", 5)]
    assert [f["fingerprint"] for f in q.recurring_fingerprints(store, min_occurrences=1).items] == [
        "cccc3333",
        "aaaa1111",
        "dddd4444",
    ]
    assert [f["fingerprint"] for f in q.recurring_fingerprints(store, project="group/web").items] == ["dddd4444"]
    assert [f["fingerprint"] for f in q.recurring_fingerprints(store, since=at(19, 12)).items] == ["aaaa1111"]
    first = q.recurring_fingerprints(store, limit=1)
    assert [f["fingerprint"] for f in q.recurring_fingerprints(store, limit=1, cursor=first.next_cursor).items] == [
        "dddd4444"
    ]


# -- CI ----------------------------------------------------------------------------------------------
def test_ci_summary_is_window_summary(seeded) -> None:
    store, _ = seeded
    got = q.ci_summary(store, start=WINDOW[0], end=WINDOW[1], group_by="repo")
    assert got == analytics.window_summary(store, start=WINDOW[0], end=WINDOW[1], group_by="repo")
    now = got["total"]["current"]
    assert now["runs"] == 5
    assert now["runs_by_status"]["success"] == 2
    assert now["runs_by_status"]["failure"] == 3
    assert now["success_rate"] == pytest.approx(0.4)
    assert got["total"]["previous"]["runs"] == 1  # run 6, the week before
    assert [g["key"] for g in got["groups"]] == [
        {"provider": "github", "repo": "acme/api"},
        {"provider": "gitlab", "repo": "group/web"},
    ]
    only = q.ci_summary(store, start=WINDOW[0], end=WINDOW[1], repos=["group/web"], with_previous=False)
    assert only["total"]["current"]["runs"] == 1
    assert only["previous_window"] is None
    branch = q.ci_summary(store, start=WINDOW[0], end=WINDOW[1], branches="feature", provider="github")
    assert branch["total"]["current"]["runs_by_status"]["failure"] == 1


def test_ci_flaky_jobs(seeded) -> None:
    store, _ = seeded
    got = q.ci_flaky_jobs(store, start=WINDOW[0], end=WINDOW[1])
    assert got["jobs"] == [
        {
            "provider": "github",
            "repo": "acme/api",
            "workflow": "CI",
            "job": "test",
            "flaky_shas": 1,
            "shas": 4,
            "rate": 0.25,
            "flaky_on": ["sha3"],
        }
    ]
    assert got["flaky_rate"] == pytest.approx(0.2)
    assert q.ci_flaky_jobs(store, start=WINDOW[0], end=WINDOW[1], repos="group/web")["jobs"] == []


def test_red_branches_from_the_stored_daily_figures(seeded) -> None:
    store, _ = seeded
    got = q.ci_red_branches(store)
    assert got["as_of"] == dt.datetime(2026, 11, 19, tzinfo=dt.UTC)  # the end of the latest computed day
    assert [(b["provider"], b["repo"], b["branch"], b["started_at"], b["failed_runs"]) for b in got["branches"]] == [
        ("github", "acme/api", "feature", "2026-11-17T10:00:00+00:00", 1),
        ("gitlab", "group/web", "main", "2026-11-18T10:00:00+00:00", 1),
    ]
    assert got["branches"][0]["as_of"] == dt.datetime(2026, 11, 18, tzinfo=dt.UTC)
    assert got["branches"][0]["last_run_url"] == "https://ci.example.test/acme/api/runs/4/1"
    # the same streaks window_summary finds open at the end of the week
    summary = q.ci_summary(store, start=WINDOW[0], end=WINDOW[1])
    assert [(s["repo"], s["branch"]) for s in summary["total"]["current"]["open_streaks"]] == [
        (b["repo"], b["branch"]) for b in got["branches"]
    ]
    assert [b["repo"] for b in q.ci_red_branches(store, provider="gitlab")["branches"]] == ["group/web"]
    assert [b["branch"] for q_b in [q.ci_red_branches(store, branches="main")] for b in q_b["branches"]] == ["main"]
    # as of 2026-11-16: main had been fixed, feature not red yet
    assert q.ci_red_branches(store, until=dt.date(2026, 11, 16))["branches"] == []
    assert q.ci_red_branches(store, days=1)["branches"][0]["repo"] == "group/web"  # acme/api ran last on 11-17


def test_ci_repos_and_runs(seeded) -> None:
    store, ids = seeded
    assert q.ci_repos(store) == [
        {
            "provider": "github",
            "repo": "acme/api",
            "last_day": dt.date(2026, 11, 17),
            "first_day": dt.date(2026, 11, 10),
            "runs": 5,
        },
        {
            "provider": "gitlab",
            "repo": "group/web",
            "last_day": dt.date(2026, 11, 18),
            "first_day": dt.date(2026, 11, 18),
            "runs": 1,
        },
    ]
    runs = ids["runs"]
    page = q.ci_runs(store, provider="github", repo="acme/api")
    assert _ids(page) == [runs["4", 1], runs["3", 2], runs["3", 1], runs["2", 1], runs["1", 1], runs["6", 1]]
    assert page.items[0]["finished_at"] == at(17)
    # keyset pages of two give the same sequence
    seen, cursor = [], None
    while True:
        part = q.ci_runs(store, provider="github", repo="acme/api", limit=2, cursor=cursor)
        seen += _ids(part)
        cursor = part.next_cursor
        if cursor is None:
            break
    assert seen == _ids(page)
    assert _ids(q.ci_runs(store, provider="github", repo="acme/api", status="running")) == [runs["5", 1]]
    assert _ids(q.ci_runs(store, provider="github", repo="acme/api", status="failure", branch="main")) == [
        runs["3", 1],
        runs["2", 1],
    ]
    assert _ids(q.ci_runs(store, provider="github", repo="acme/api", since=at(16), until=at(17))) == [
        runs["3", 2],
        runs["3", 1],
    ]
    assert _ids(q.ci_runs(store, provider="gitlab", repo="acme/api")) == []
    detail = q.ci_run(store, runs["3", 2])
    assert (detail["repo"], detail["run_id"]) == ("acme/api", "3")
    assert [(a["attempt"], a["status"], [j["status"] for j in a["jobs"]]) for a in detail["attempts"]] == [
        (1, "failure", ["failure"]),
        (2, "success", ["success"]),
    ]
    assert q.ci_run(store, 999_999) is None


# -- metrics and health --------------------------------------------------------------------------------
def test_health_latest_and_history(seeded) -> None:
    store, _ = seeded
    got = q.health_latest(store)
    assert (got["day"], got["previous_day"]) == (dt.date(2026, 11, 19), dt.date(2026, 11, 12))
    assert [(p["project"], p["day"], p["score"], p["previous_score"], p["change"]) for p in got["projects"]] == [
        ("api", dt.date(2026, 11, 18), 60.0, 65.0, -5.0),
        ("web", dt.date(2026, 11, 19), 80.0, 70.0, 10.0),
    ]  # "old" (last scored 2026-10-01) is not a current project
    assert got["projects"][1]["components"] == {"ci": 75}
    assert [p["project"] for p in q.health_latest(store, project="web")["projects"]] == ["web"]
    earlier = q.health_latest(store, day=dt.date(2026, 11, 12), compare_days=30)
    assert [(p["project"], p["score"], p["previous_score"]) for p in earlier["projects"]] == [
        ("api", 65.0, None),
        ("web", 70.0, None),
    ]
    assert [(h["day"], h["score"], h["grade"]) for h in q.health_history(store, project="web")] == [
        (dt.date(2026, 11, 12), 70.0, "C"),
        (dt.date(2026, 11, 19), 80.0, "B"),
    ]
    assert [h["score"] for h in q.health_history(store, project="web", since=dt.date(2026, 11, 13))] == [80.0]
    assert [h["score"] for h in q.health_history(store, project="web", limit=1)] == [80.0]  # the latest
    assert q.health_history(store, project="nope") == []


def test_project_metrics(seeded) -> None:
    store, _ = seeded
    page = q.project_metrics(store, project="api")
    assert [(m["day"], m["metric"], m["value"]) for m in page.items] == [
        (dt.date(2026, 11, 19), "prs_merged", 15.0),
        (dt.date(2026, 11, 18), "prs_merged", 13.0),
    ]
    web = q.project_metrics(store, project="web", source="sonarqube")
    assert [(m["day"], m["value"], m["unit"]) for m in web.items] == [
        (dt.date(2026, 11, 19), 81.5, "percent"),
        (dt.date(2026, 11, 18), 81.5, "percent"),
    ]
    assert len(q.project_metrics(store, project="web", since=dt.date(2026, 11, 19)).items) == 2
    first = q.project_metrics(store, project="web", limit=3)
    rest = q.project_metrics(store, project="web", limit=3, cursor=first.next_cursor)
    assert len(first.items) == 3
    assert len(rest.items) == 1
    assert rest.next_cursor is None
    assert {(m["day"], m["metric"]) for m in first.items + rest.items} == {
        (dt.date(2026, 11, d), m) for d in (18, 19) for m in ("prs_merged", "coverage")
    }


# -- alerts and reports -------------------------------------------------------------------------------
def test_alerts_and_their_messages(seeded) -> None:
    store, ids = seeded
    a1, a2, a3 = ids["alerts"]
    assert q.alert_sources(store) == ["ci_pipeline_analytics", "daily_project_metrics"]
    assert _ids(q.alerts(store, sources=BOTH)) == [a3, a2, a1]
    assert _ids(q.alerts(store, sources={"ci_pipeline_analytics"})) == [a3, a1]
    assert _ids(q.alerts(store, sources=set())) == []
    assert _ids(q.alerts(store, sources=BOTH, state="firing")) == [a1]
    assert _ids(q.alerts(store, sources=BOTH, severity="warning")) == [a3, a2]
    assert _ids(q.alerts(store, sources=BOTH, rule_id="queue-time")) == [a3]
    # active in [11-18, 11-20): the coverage alert (resolved 11-19) and the firing one
    assert _ids(q.alerts(store, sources=BOTH, since=at(18, 0), until=at(20, 0))) == [a2, a1]
    got = q.alert(store, a1)
    assert [(n["kind"], n["channel"], n["status"], n["error"]) for n in got["notifications"]] == [
        ("start", "slack", "sent", None),
        ("start", "telegram", "failed", "chat not found"),
    ]
    assert q.alert(store, a2)["notifications"] == []
    assert q.alert(store, 999_999) is None


def test_reports(seeded) -> None:
    store, ids = seeded
    weekly, monthly, team = ids["reports"]
    page = q.reports(store)
    assert [(r["id"], r["kind"], r["title"], r["has_data"]) for r in page.items] == [
        (weekly, "weekly", "Weekly engineering report 2026-W46", True),
        (team, "weekly:platform", "Platform week 45", True),
        (monthly, "monthly", "Monthly engineering report 2026-10", False),
    ]
    assert _ids(q.reports(store, dags={"weekly_report"})) == [weekly, team]
    assert _ids(q.reports(store, dags={"monthly_report"})) == [monthly]
    assert _ids(q.reports(store, dags=set())) == []
    assert _ids(q.reports(store, kind="weekly:platform")) == [team]
    first = q.reports(store, limit=2)
    assert _ids(q.reports(store, limit=2, cursor=first.next_cursor)) == [monthly]
    row = q.report(store, weekly)
    assert "html" not in row
    assert row["archive_path"].startswith("file://")
    assert q.report(store, monthly, content=True)["markdown"] == "# October\n"
    assert (q.report_dag("weekly:platform"), q.report_dag("monthly")) == ("weekly_report", "monthly_report")


# -- events ------------------------------------------------------------------------------------------
def test_new_events_after_a_position(seeded) -> None:
    store, ids = seeded
    assert q.latest_event_ids(store) == {"failure": ids["analyses"][-1], "alert": ids["alerts"][-1]}
    got = q.new_events(store, after={"failure": ids["analyses"][1], "alert": ids["alerts"][1]})
    assert [(e["kind"], e["id"], e["dag_id"]) for e in got] == [
        ("failure", ids["analyses"][2], "ci_failure_triage"),
        ("alert", ids["alerts"][2], "ci_pipeline_analytics"),
    ]
    assert got[0]["data"]["project_path"] == "group/web"
    late = q.new_events(store, after={"failure": 99, "alert": 99}, also={"alert": {ids["alerts"][1]}})
    assert [(e["kind"], e["id"], e["dag_id"]) for e in late] == [("alert", ids["alerts"][1], "daily_project_metrics")]


# -- bad filters name their field ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: q.failure_jobs(s, limit=0), "limit"),
        (lambda s: q.failure_jobs(s, since=at(20), until=at(19)), "until"),
        (lambda s: q.failure_jobs(s, cursor="%%%"), "cursor"),
        (lambda s: q.failure_jobs(s, cursor=q.encode_cursor(["x", 1])), "cursor"),
        (lambda s: q.recurring_fingerprints(s, min_occurrences=0), "min_occurrences"),
        (lambda s: q.ci_summary(s, start=WINDOW[1], end=WINDOW[0]), "end"),
        (lambda s: q.ci_summary(s, start=dt.date(2026, 1, 1), end=WINDOW[1]), "start"),
        (lambda s: q.ci_summary(s, start=WINDOW[0], end=WINDOW[1], group_by="team"), "group_by"),
        (lambda s: q.ci_summary(s, start=WINDOW[0], end=WINDOW[1], provider="bitbucket"), "provider"),
        (lambda s: q.ci_runs(s, provider="github", repo=""), "repo"),
        (lambda s: q.ci_red_branches(s, days=0), "days"),
        (lambda s: q.health_latest(s, compare_days=0), "compare_days"),
        (lambda s: q.health_history(s, project="web", since=dt.date(2026, 2, 2), until=dt.date(2026, 1, 1)), "until"),
        (lambda s: q.alerts(s, sources=BOTH, state="burning"), "state"),
        (lambda s: q.archive_name("../secrets"), "name"),
    ],
)
def test_bad_filters_name_their_field(seeded, call, field) -> None:
    store, _ = seeded
    with pytest.raises(q.InvalidFilter) as err:
        call(store)
    assert err.value.field == field


def test_limits_are_capped(seeded) -> None:
    store, _ = seeded
    assert q.failure_jobs(store, limit=10_000).limit == q.MAX_LIMIT
    assert q.check_limit(None) == q.DEFAULT_LIMIT


# -- ci_run_action's audit trail ------------------------------------------------------------------------
def test_run_actions_filters_and_pages(seeded) -> None:
    store, ids = seeded
    a1, a2, a3 = ids["actions"]
    page = q.run_actions(store)
    assert _ids(page) == [a3, a2, a1]  # newest request first
    assert page.next_cursor is None
    first = page.items[2]
    assert (first["triggered_by"], first["action"], first["result_attempt"], first["outcome"]) == (
        "alice",
        "rerun_failed",
        2,
        "success",
    )
    assert first["requested_at"] == at(19, 9)
    assert "api_calls" not in first  # the list leaves out the calls; the detail has them
    assert _ids(q.run_actions(store, provider="gitlab")) == [a3, a2]
    assert _ids(q.run_actions(store, repo="acme/api")) == [a1]
    assert _ids(q.run_actions(store, action="cancel")) == [a2]
    assert _ids(q.run_actions(store, outcome="success")) == [a3, a1]
    assert _ids(q.run_actions(store, since=at(19, 10))) == [a3, a2]
    assert _ids(q.run_actions(store, since=dt.date(2026, 11, 21))) == []
    one = q.run_actions(store, limit=1)
    two = q.run_actions(store, limit=1, cursor=one.next_cursor)
    three = q.run_actions(store, limit=1, cursor=two.next_cursor)
    assert (_ids(one), _ids(two), _ids(three)) == ([a3], [a2], [a1])
    assert three.next_cursor is None
    with pytest.raises(q.InvalidFilter) as err:
        q.run_actions(store, cursor=q.encode_cursor([a1]))  # another list's cursor
    assert err.value.field == "cursor"


def test_run_action_detail(seeded) -> None:
    store, ids = seeded
    a1, _, a3 = ids["actions"]
    got = q.run_action(store, a1)
    assert got["api_calls"] == [{"method": "POST", "status": 201, "answer": {"token": "[REDACTED:github_pat]"}}]
    assert got["plan"]["path"] == "/repos/acme/api/actions/runs/90/rerun-failed-jobs"
    assert (got["attempt_before"], got["result_attempt"], got["new_job_ids"]) == (1, 2, [])
    assert got["finished_at"] == at(19, 9, 20)
    redeploy = q.run_action(store, a3)
    assert (redeploy["environment"], redeploy["deployment_id"], redeploy["new_job_ids"]) == (
        "production",
        "55",
        ["921"],
    )
    assert q.run_action(store, 999_999) is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"action": "rollback"}, "action"), ({"outcome": "green"}, "outcome"), ({"provider": "svn"}, "provider")],
)
def test_run_actions_bad_filters(seeded, kwargs, field) -> None:
    store, _ = seeded
    with pytest.raises(q.InvalidFilter) as err:
        q.run_actions(store, **kwargs)
    assert err.value.field == field


def test_run_action_values_are_the_dags_own() -> None:
    import typing

    from devops_automation.webui import api
    from devops_automation.workflows.ci_run_action import plan

    assert q.RUN_ACTIONS == plan.ACTIONS
    assert q.RUN_ACTION_OUTCOMES == plan.OUTCOMES == typing.get_args(api.ActionOutcome)
    assert q.DATASET_DAGS["actions"] == ("ci_run_action",)


# -- the rules ---------------------------------------------------------------------------------------
def test_queries_import_no_airflow_and_no_workflow() -> None:
    from include.scripts import import_edges

    plugins = REPO / "plugins"
    for path in sorted((plugins / "devops_automation" / "webui").glob("*.py")):
        module = import_edges.module_name(path, plugins)
        targets = [t for t, _ in import_edges.imports_of(path, module)]
        assert not [t for t in targets if t.startswith("devops_automation.workflows")], path
        if path.name == "queries.py":
            assert not [t for t in targets if t == "airflow" or t.startswith("airflow.")]
            assert "devops_automation.ci_analytics.analytics" in targets


def test_alert_key_prefixes_are_the_dags_own() -> None:
    from devops_automation.workflows.ci_pipeline_analytics.alert_store import DEDUP_PREFIX as CI_PREFIX
    from devops_automation.workflows.daily_project_metrics.alerts import DEDUP_PREFIX as METRICS_PREFIX

    assert dict(q.ALERT_DEDUP_PREFIXES) == {
        "ci_pipeline_analytics": CI_PREFIX,
        "daily_project_metrics": METRICS_PREFIX,
    }


# -- what the pages read besides the API ------------------------------------------------------------------
def test_pipeline_jobs_and_failures_by_day(seeded) -> None:
    store, ids = seeded
    e1, e2 = ids["events"]
    a1, a2, a3 = ids["analyses"]
    jobs = q.pipeline_jobs(store, [e1, e2, 999])
    assert {k: [j["id"] for j in v] for k, v in jobs.items()} == {e1: [a1, a2], e2: [a3]}
    assert q.pipeline_jobs(store, []) == {}
    rows = q.failures_by_day(store, since=dt.date(2026, 11, 19), until=dt.date(2026, 11, 21))
    assert rows == [
        {"day": dt.date(2026, 11, 20), "category": "dependency", "failures": 1},
        {"day": dt.date(2026, 11, 20), "category": "test_failure", "failures": 2},
    ]
    assert q.failures_by_day(store, since=dt.date(2026, 11, 21), until=dt.date(2026, 11, 22)) == []
    with pytest.raises(q.InvalidFilter, match="until"):
        q.failures_by_day(store, since=dt.date(2026, 11, 21), until=dt.date(2026, 11, 20))


def test_ci_daily_series(seeded) -> None:
    store, _ = seeded
    rows = q.ci_daily_series(store, since=dt.date(2026, 11, 14), until=dt.date(2026, 11, 18))
    assert [(r["day"].isoformat(), r["repo"], r["runs"]) for r in rows] == [
        ("2026-11-14", "acme/api", 1),
        ("2026-11-15", "acme/api", 1),
        ("2026-11-16", "acme/api", 1),
        ("2026-11-17", "acme/api", 1),
        ("2026-11-18", "group/web", 1),
    ]
    assert [r["success_rate"] for r in rows] == [1.0, 0.0, 1.0, 0.0, 0.0]
    assert rows[0]["duration_p90_s"] == 100.0
    workflows = q.ci_daily_series(store, since=dt.date(2026, 11, 17), until=dt.date(2026, 11, 17), level="workflow")
    assert [(r["workflow"], r["branch"]) for r in workflows] == [("CI", "feature")]
    only = q.ci_daily_series(store, since=dt.date(2026, 11, 1), until=dt.date(2026, 11, 30), provider="gitlab")
    assert {r["repo"] for r in only} == {"group/web"}
    with pytest.raises(q.InvalidFilter, match="level"):
        q.ci_daily_series(store, since=dt.date(2026, 11, 1), until=dt.date(2026, 11, 2), level="branch")


def test_health_series(seeded) -> None:
    store, _ = seeded
    rows = q.health_series(store, projects=["web", "api", "nope"], since=dt.date(2026, 11, 13))
    assert [(r["project"], r["day"].isoformat(), r["score"]) for r in rows] == [
        ("api", "2026-11-18", 60.0),
        ("web", "2026-11-19", 80.0),
    ]
    assert rows[1]["components"] == {"ci": 75}
    assert q.health_series(store, projects=[]) == []


def test_failure_categories_are_the_engines() -> None:
    from devops_automation.ci_logs.signals import CATEGORIES

    assert q.FAILURE_CATEGORIES == CATEGORIES
