"""daily_project_metrics end to end with dag.test() against the sandbox (GitHub, GitLab, Prometheus,
SonarQube, Slack, Telegram) and a real results store: figures stored, scores computed, a re-run changes
nothing and sends nothing, a past day is read from the historical APIs, threshold alerts open and close
one issue (GitHub or GitLab), a backfill opens none, and what fails is named while the rest is stored.

``run_dag(DAG_ID, logical_date=X)`` runs the data interval that ends at ``X``: ``X`` = the sandbox's
midnight today is the latest complete day (yesterday).
"""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import sqlalchemy as sa

pytestmark = pytest.mark.slow

DAG_ID = "daily_project_metrics"
TABLES = ("project_metrics", "health_scores", "alert_events", "notifications")
DAY = dt.timedelta(days=1)
GITHUB_TOKEN = "ghp_sandboxtoken000000000000000000000000"
SONAR_TOKEN = "squ_sandbox"
SHIPPED_PROJECTS = {"api", "web", "shop", "checkout"}


@pytest.fixture(autouse=True)
def no_default_ci_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """ci_pipeline_analytics collects only what a test names (the shipped Variable may be in the shared DB)."""
    monkeypatch.setenv("AIRFLOW_VAR_CI_PIPELINE_ANALYTICS_SOURCES", "{}")


# ---- helpers ---------------------------------------------------------------------------------------


def midnight_days_ago(sandbox: Any, days: int) -> dt.datetime:
    now = dt.datetime.fromtimestamp(sandbox.advance(0), dt.UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=days)


def results_store(conns: dict[str, str] | str) -> Any:
    """The SQLite results store of ``conns`` (the fixture's connections) or of a file path."""
    from devops_automation.store import ResultsStore, sqlite_url

    path = conns if isinstance(conns, str) else json.loads(conns["AIRFLOW_CONN_DEVOPS_RESULTS_DB"])["host"]
    return ResultsStore(sqlite_url(path))


def use_sqlite_results(monkeypatch: pytest.MonkeyPatch, path: Path) -> Any:
    """Point the DAG's results connection at another (fresh) SQLite file; returns its store."""
    monkeypatch.setenv("AIRFLOW_CONN_DEVOPS_RESULTS_DB", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return results_store(str(path))


def snapshot(store: Any) -> dict[str, list[tuple]]:
    from devops_automation.store import schema

    out = {}
    with store.begin() as conn:
        for name in TABLES:
            t = schema.metadata.tables[name]
            cols = [c for c in t.c if c.name != "id"]
            out[name] = sorted((tuple(repr(v) for v in r) for r in conn.execute(sa.select(*cols))), key=str)
    return out


def rows(store: Any, table: str, **where: Any) -> list[dict[str, Any]]:
    from devops_automation.store import schema

    t = schema.metadata.tables[table]
    q = sa.select(t)
    for k, v in where.items():
        q = q.where(t.c[k] == v)
    with store.begin() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def figures(store: Any, **where: Any) -> dict[tuple[str, str, str], dict[str, Any]]:
    """``project_metrics`` rows by (project, source, metric)."""
    return {(r["project"], r["source"], r["metric"]): r for r in rows(store, "project_metrics", **where)}


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


def slack(sandbox: Any, channel: str = "#alerts") -> list[dict[str, Any]]:
    return sandbox.control("slack", "GET", "/messages", params={"channel": channel})


def query_of(request: dict[str, Any]) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(request["query"], keep_blank_values=True).items()}


def api(sandbox: Any, system: str, path: str, **params: Any) -> Any:
    """Read the sandbox's API directly, as the DAG's hooks would (the answer to compare stored figures with)."""
    auth = {"github": f"Bearer {GITHUB_TOKEN}", "sonarqube": f"Bearer {SONAR_TOKEN}"}.get(system)
    r = requests.get(
        sandbox.url(system, path), params=params, headers={"Authorization": auth} if auth else {}, timeout=10
    )
    r.raise_for_status()
    return r.json()


def prometheus_value(sandbox: Any, promql: str, at: dt.datetime) -> float:
    body = api(sandbox, "prometheus", "/api/v1/query", query=promql, time=at.isoformat())
    (sample,) = body["data"]["result"]
    return float(sample["value"][1])


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def failed(states: dict[str, str], task: str) -> list[str]:
    return sorted(k for k, v in states.items() if k.startswith(f"{task}[") and v == "failed")


def labels_by_map_index(dag_run: Any, task_id: str) -> dict[int, str]:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.scalars(
            sa.select(TaskInstance).where(TaskInstance.run_id == dag_run.run_id, TaskInstance.task_id == task_id)
        ).all()
        return {ti.map_index: ti.rendered_map_index for ti in tis}


def failed_projects(dag_run: Any, states: dict[str, str], task: str) -> set[str]:
    labels = labels_by_map_index(dag_run, task)
    return {labels[int(k.split("[")[1].rstrip("]"))] for k in failed(states, task)}


# ---- 1. the latest day: every source, scores, alerts once, a re-run changes nothing ------------------


@pytest.mark.usefixtures("clear_of_midnight")
def test_latest_day_stores_every_source_scores_alerts_once_and_a_rerun_changes_nothing(
    sandbox, run_dag, sandbox_conns, capfd
) -> None:
    from devops_automation.workflows.daily_project_metrics.health import FORMULA_VERSION

    today = midnight_days_ago(sandbox, 0)
    # CI figures come from ci_pipeline_analytics' tables: collect acme/shop's week first
    ci_run, ci_states = run_dag(
        "ci_pipeline_analytics",
        logical_date=today,
        conf={"github_repos": ["acme/shop"], "lookback_days": 6, "page": False},
    )
    assert str(ci_run.state) == "success", ci_states
    from devops_automation.store.http_cache import StoreHttpCache

    cache = StoreHttpCache(results_store(sandbox_conns))  # the summary purges what is 92 days old
    cache.put("1" * 64, "https://old.example/x", '"o"', {}, today - DAY - 93 * DAY)
    cache.put("2" * 64, "https://kept.example/x", '"k"', {}, today - DAY - 91 * DAY)
    capfd.readouterr()
    dag_run, states = run_dag(DAG_ID, logical_date=today)
    out = capfd.readouterr().out
    assert str(dag_run.state) == "success", states
    assert (dag_run.data_interval_start, dag_run.data_interval_end) == (today - DAY, today)
    day = (today - DAY).date()
    store = results_store(sandbox_conns)
    cached = {r["url"] for r in rows(store, "http_cache")}
    assert "https://kept.example/x" in cached and "https://old.example/x" not in cached
    assert any(u.endswith("/repos/acme/api") for u in cached)  # constant URLs are cached
    assert not [u for u in cached if "/commits?" in u or "/issues?" in u]  # the window's lists are not
    got = figures(store)
    assert {r["day"] for r in got.values()} == {day}
    by_source = {(p, s) for p, s, _ in got}
    assert by_source == {
        ("api", "github"),
        ("api", "prometheus"),
        ("api", "sonarqube"),
        ("api", "health"),
        ("web", "github"),
        ("web", "prometheus"),
        ("web", "sonarqube"),
        ("web", "health"),
        ("shop", "github"),
        ("shop", "ci"),
        ("shop", "health"),
        ("checkout", "prometheus"),
        ("checkout", "health"),
    }, sorted(by_source)
    # exact values, read from the sandbox's own APIs
    repo = api(sandbox, "github", "/repos/acme/api")
    assert got[("api", "github", "stars")]["value"] == repo["stargazers_count"]
    assert got[("api", "github", "forks")]["value"] == repo["forks_count"]
    assert got[("api", "github", "watchers")]["value"] == repo["subscribers_count"]
    assert got[("api", "github", "archived")]["value"] == 0
    sonar = api(sandbox, "sonarqube", "/api/measures/component", component="acme_api", metricKeys="coverage,ncloc")
    measures = {m["metric"]: m["value"] for m in sonar["component"]["measures"]}
    assert got[("api", "sonarqube", "coverage")]["value_raw"] == measures["coverage"]
    assert got[("api", "sonarqube", "ncloc")]["value"] == float(measures["ncloc"])
    gate = api(sandbox, "sonarqube", "/api/qualitygates/project_status", projectKey="acme_web")
    assert (gate["projectStatus"]["status"], got[("web", "sonarqube", "quality_gate")]["value"]) == ("ERROR", 0.0)
    availability = prometheus_value(sandbox, '100 * avg(avg_over_time(up{job="api"}[1d]))', today)
    assert got[("api", "prometheus", "availability")]["value"] == pytest.approx(availability)
    assert got[("api", "prometheus", "availability")]["unit"] == "%"
    # acme/web's token may not read any alert list: "no access", no value (never 0)
    assert got[("web", "github", "dependabot_alerts.high")]["value_raw"] == "no access"
    assert got[("web", "github", "dependabot_alerts.high")]["value"] is None
    # CI figures of acme/shop from the ci_pipeline_analytics tables over the 7 days to the interval's end
    ci_runs = [
        r
        for r in rows(results_store(sandbox_conns), "ci_runs", provider="github", repo="acme/shop")
        if r["finished_at"] is not None and today - 7 * DAY <= r["finished_at"] < today
    ]
    assert ci_runs, "ci_pipeline_analytics stored acme/shop's week"
    assert got[("shop", "ci", "runs")]["value"] > 0
    assert 0 <= got[("shop", "ci", "success_rate")]["value"] <= 1
    # health scores, with their inputs and the formula version
    scores = {r["project"]: r for r in rows(store, "health_scores")}
    assert set(scores) == SHIPPED_PROJECTS
    for name, r in scores.items():
        assert r["day"] == day
        assert r["components"]["formula_version"] == FORMULA_VERSION
        assert r["components"]["score"] == pytest.approx(r["score"])
        assert 0 <= r["score"] <= 100
        assert got[(name, "health", "score")]["value"] == pytest.approx(r["score"])
    api_inputs = {c["name"]: c for c in scores["api"]["components"]["components"]}
    assert api_inputs["coverage"]["inputs"] == {"sonarqube.coverage": float(measures["coverage"])}
    shop_inputs = {c["name"]: c for c in scores["shop"]["components"]["components"]}
    assert shop_inputs["ci_success_rate"]["inputs"] == {"ci.success_rate": got[("shop", "ci", "success_rate")]["value"]}
    assert shop_inputs["coverage"]["status"] == "no data"  # acme/shop has no SonarQube project
    # alerts: one Slack message per started alert, to health.yaml's route (#alerts)
    events = rows(store, "alert_events", source=DAG_ID)
    assert events and all(e["state"] == "firing" for e in events)
    assert ("web", "threshold:sonarqube.quality_gate", "critical") in {
        (e["scope_key"], e["rule_id"], e["severity"]) for e in events
    }
    messages = slack(sandbox)
    assert len(messages) == len(events), (messages, events)
    assert sorted((m["text"].split("*")[1], m["text"].split(": ")[1].split(" is ")[0]) for m in messages) == sorted(
        (e["scope_key"], e["rule_id"].removeprefix("threshold:")) for e in events
    )
    (alerts,) = xcoms(dag_run, "alerts").values()
    assert (alerts["started"], alerts["sent"], alerts["resolved"]) == (len(events), len(events), 0)
    assert {n["status"] for n in rows(store, "notifications")} == {"sent"}
    # the run note (logged by summary, and its XCom) gives every project's score
    note = "health: " + ", ".join(f"{name} {scores[name]['score']:.0f}" for name in sorted(scores))
    assert note in out
    (summary,) = xcoms(dag_run, "summary").values()
    assert summary["note"].startswith(note), summary
    # the same interval again: no row changes, no message
    first = snapshot(store)
    sandbox.clear_requests()
    dag_run, states = run_dag(DAG_ID, logical_date=today)
    assert str(dag_run.state) == "success", states
    assert snapshot(store) == first
    assert slack(sandbox) == messages
    assert sandbox.requests(system="slack") == []
    (again,) = xcoms(dag_run, "alerts").values()
    assert (again["started"], again["still_firing"], again["resolved"]) == (0, len(events), 0)
    assert (again["sent"], again["changed_rows"], again["firing"]) == (0, 0, alerts["firing"])


# ---- 2. a past day: historical APIs, no point-in-time figures, page off records only ----------------


def test_a_past_day_reads_the_history_apis_and_with_paging_off_records_alerts_without_sending(
    sandbox, run_dag, sandbox_conns
) -> None:
    end = midnight_days_ago(sandbox, 9)  # the interval [10 days ago, 9 days ago)
    dag_run, states = run_dag(DAG_ID, logical_date=end, conf={"page": False})
    assert str(dag_run.state) == "success", states
    assert dag_run.data_interval_end == end
    # SonarQube: the measure history up to the interval's end, never the current measures
    history = sandbox.requests(system="sonarqube", path="/api/measures/search_history")
    assert {query_of(r)["component"] for r in history} == {"acme_api", "acme_web"}
    for r in history:
        q = query_of(r)
        assert dt.datetime.fromisoformat(q["to"]) == end, q
        assert dt.datetime.fromisoformat(q["from"]) < end - DAY, q
    assert sandbox.requests(system="sonarqube", path="/api/measures/component") == []
    assert sandbox.requests(system="sonarqube", path="/api/qualitygates/project_status") == []
    # Prometheus: every instant query evaluated at the interval's end; the range query over the interval
    instant = sandbox.requests(system="prometheus", path="/api/v1/query$")
    assert len(instant) == 8  # api 4, web 2, checkout 2
    assert {dt.datetime.fromisoformat(query_of(r)["time"]) for r in instant} == {end}
    (ranged,) = sandbox.requests(system="prometheus", path="/api/v1/query_range")
    q = query_of(ranged)
    assert dt.datetime.fromisoformat(q["start"]) == end - DAY
    assert end - dt.timedelta(minutes=5) <= dt.datetime.fromisoformat(q["end"]) < end
    store = results_store(sandbox_conns)
    got = figures(store)
    assert {r["day"] for r in got.values()} == {(end - DAY).date()}
    # the stored Prometheus figure is what the query gives at the interval's end
    assert got[("api", "prometheus", "availability")]["value"] == pytest.approx(
        prometheus_value(sandbox, '100 * avg(avg_over_time(up{job="api"}[1d]))', end)
    )
    # GitHub's point-in-time figures (and "no access" rows) are not recorded for a past day
    github = {m for p, s, m in got if s == "github" and p == "api"}
    assert "commits_90d" in github and "open_issues" in github
    assert not github & {"stars", "forks", "watchers", "archived", "branch_protection"}
    assert not [r for r in got.values() if r["value_raw"] == "no access"]
    # SonarQube figures of that day exist (from the history)
    assert got[("api", "sonarqube", "coverage")]["value"] is not None
    # alerts recorded, none sent
    events = rows(store, "alert_events")
    assert events, "the shipped thresholds fire on the sandbox's figures"
    assert all(e["started_at"] == end for e in events)
    assert slack(sandbox) == []
    assert sandbox.requests(system="slack") == []
    assert rows(store, "notifications") == []


# ---- 3. threshold crossing -> one alert + one issue; still breached -> nothing; recovered -> closed -----

PROBE_PROJECTS = """
projects:
  - name: probe
    github: acme/infra
    prometheus:
      - name: probe_errors
        query: max(probe_errors{job="probe"})
        unit: count
        direction: lower_is_better
"""

PROBE_HEALTH = """
thresholds:
  prometheus.probe_errors:
    direction: lower_is_better
    critical: 5
alerts:
  slack: "#alerts"
  issue_label: health-alert
"""
MARKER = "<!-- devops-automation:rule=threshold:prometheus.probe_errors project=probe -->"


def issue_requests(sandbox: Any, method: str, path: str = r"/repos/acme/infra/issues$") -> list[dict[str, Any]]:
    return sandbox.requests(system="github", method=method, path=path)


def test_a_critical_breach_opens_one_issue_and_its_recovery_closes_it(
    sandbox, run_dag, sandbox_conns, tmp_path, monkeypatch
) -> None:
    today = midnight_days_ago(sandbox, 0)
    # probe_errors: 12 (critical) through day N = yesterday, 1 from today noon (day N+1 recovers)
    sandbox.control(
        "prometheus",
        "POST",
        "/series",
        json={
            "metric": "probe_errors",
            "labels": {"job": "probe"},
            "values": [[(today - 3 * DAY).timestamp(), 12], [(today + dt.timedelta(hours=12)).timestamp(), 1]],
        },
    )
    conf = {
        "projects_file": write(tmp_path, "projects.yaml", PROBE_PROJECTS),
        "health_file": write(tmp_path, "health.yaml", PROBE_HEALTH),
        "open_issues": True,
    }
    store = results_store(sandbox_conns)
    dag_run, states = run_dag(DAG_ID, logical_date=today, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    assert figures(store)[("probe", "prometheus", "probe_errors")]["value"] == 12
    (event,) = rows(store, "alert_events")
    assert (event["rule_id"], event["scope_key"], event["severity"], event["state"]) == (
        "threshold:prometheus.probe_errors",
        "probe",
        "critical",
        "firing",
    )
    (started,) = slack(sandbox)
    assert "probe" in started["text"] and "prometheus.probe_errors is critical" in started["text"]
    (opened,) = issue_requests(sandbox, "POST")
    body = json.loads(opened["body"])
    assert MARKER in body["body"]
    assert body["labels"] == ["health-alert"]
    assert "12" in body["body"]
    assert "| `prometheus.probe_errors` | 12 |" in body["body"]  # the project's figures of that source
    (issue,) = api(sandbox, "github", "/repos/acme/infra/issues", labels="health-alert", state="all")
    assert issue["state"] == "open" and MARKER in issue["body"]
    number = issue["number"]
    comments_path = rf"/repos/acme/infra/issues/{number}/comments$"

    # day N again: still breached, same value -> no issue, no comment, no message
    sandbox.clear_requests()
    dag_run, states = run_dag(DAG_ID, logical_date=today, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    assert issue_requests(sandbox, "POST") == []
    assert issue_requests(sandbox, "POST", comments_path) == []
    assert issue_requests(sandbox, "PATCH", rf"/repos/acme/infra/issues/{number}$") == []
    assert len(slack(sandbox)) == 1

    # the results DB lost: the open issue is found by its label and marker; no second one, no comment
    # (paging off: the message history went with the database, which is not what this step is about)
    use_sqlite_results(monkeypatch, tmp_path / "lost.db")
    sandbox.clear_requests()
    dag_run, states = run_dag(DAG_ID, logical_date=today, conf={**conf, "page": False}, retries=0)
    assert str(dag_run.state) == "success", states
    assert len(rows(results_store(str(tmp_path / "lost.db")), "alert_events")) == 1
    assert issue_requests(sandbox, "GET"), "the tracker was asked"
    assert issue_requests(sandbox, "POST") == []
    assert issue_requests(sandbox, "POST", comments_path) == []
    monkeypatch.setenv("AIRFLOW_CONN_DEVOPS_RESULTS_DB", sandbox_conns["AIRFLOW_CONN_DEVOPS_RESULTS_DB"])

    # day N+1: recovered -> one resolve message, the issue commented on and closed
    sandbox.clear_requests()
    dag_run, states = run_dag(DAG_ID, logical_date=today + DAY, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    assert figures(store, day=today.date())[("probe", "prometheus", "probe_errors")]["value"] == 1
    (event,) = rows(store, "alert_events")
    assert (event["state"], event["resolved_at"]) == ("resolved", today + DAY)
    messages = slack(sandbox)
    assert len(messages) == 2 and "probe" in messages[1]["text"] and "recovered" in messages[1]["text"], messages
    (comment,) = issue_requests(sandbox, "POST", comments_path)
    assert json.loads(comment["body"])["body"]
    (closed,) = issue_requests(sandbox, "PATCH", rf"/repos/acme/infra/issues/{number}$")
    assert json.loads(closed["body"])["state"] == "closed"
    assert issue_requests(sandbox, "POST") == []
    issue = api(sandbox, "github", f"/repos/acme/infra/issues/{number}")
    assert (issue["state"], issue["state_reason"]) == ("closed", "completed")

    # day N+1 again: nothing more
    sandbox.clear_requests()
    dag_run, states = run_dag(DAG_ID, logical_date=today + DAY, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    assert len(slack(sandbox)) == 2
    assert sandbox.requests(system="github", method="POST") == []
    assert sandbox.requests(system="github", method="PATCH") == []


EMAIL_HEALTH = """
thresholds:
  prometheus.probe_errors:
    direction: lower_is_better
    critical: 5
alerts:
  slack: null
  email: [oncall@example.test, sre@example.test]
"""


def test_a_threshold_alert_and_its_recovery_are_e_mailed_once_each(
    sandbox, run_dag, sandbox_conns, smtp, tmp_path
) -> None:
    today = midnight_days_ago(sandbox, 0)
    # probe_errors: 12 (critical) through day N = yesterday, 1 from today noon (day N+1 recovers)
    sandbox.control(
        "prometheus",
        "POST",
        "/series",
        json={
            "metric": "probe_errors",
            "labels": {"job": "probe"},
            "values": [[(today - 3 * DAY).timestamp(), 12], [(today + dt.timedelta(hours=12)).timestamp(), 1]],
        },
    )
    conf = {
        "projects_file": write(tmp_path, "projects.yaml", PROBE_PROJECTS),
        "health_file": write(tmp_path, "health.yaml", EMAIL_HEALTH),
    }
    store = results_store(sandbox_conns)
    dag_run, states = run_dag(DAG_ID, logical_date=today, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    (started,) = smtp.messages()
    day_n = (today - DAY).date().isoformat()
    assert started["Subject"] == (
        f"\U0001f534 probe: prometheus.probe_errors is critical: 12 (threshold > 5) on {day_n}"
    ), started["Subject"]
    assert (started["To"], started["X-RcptTo"]) == ("oncall@example.test, sre@example.test",) * 2
    assert html.escape(started["Subject"]) in started.get_body().get_content()
    assert slack(sandbox) == []  # the file routes e-mail only
    (row,) = rows(store, "notifications", channel="email")
    assert (row["status"], row["target"], row["message_ref"]) == (
        "sent",
        "oncall@example.test, sre@example.test",
        started["Message-ID"],
    )

    # day N again: still breached -> no second e-mail
    dag_run, states = run_dag(DAG_ID, logical_date=today, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    assert len(smtp.messages()) == 1

    # day N+1: recovered -> one resolve e-mail; and that day again sends nothing more
    for _ in range(2):
        dag_run, states = run_dag(DAG_ID, logical_date=today + DAY, conf=conf, retries=0)
        assert str(dag_run.state) == "success", states
        first, resolved = smtp.messages()
        assert first["Message-ID"] == started["Message-ID"]
        assert (
            resolved["Subject"] == f"\u2705 probe: prometheus.probe_errors recovered: 1 on {today.date().isoformat()}"
        )
        assert resolved["X-RcptTo"] == "oncall@example.test, sre@example.test"
    assert [r["status"] for r in rows(store, "notifications", channel="email")] == ["sent", "sent"]


# ---- 4. a bad projects file fails the plan, naming file, line and field ---------------------------

BAD_PROJECTS = """projects:
  - name: api
    github: acme/api
  - name: broken
    sonarqube: acme_web
    github: acme
"""


def test_a_bad_projects_file_fails_the_plan_naming_file_line_and_field_and_nothing_is_collected(
    sandbox, run_dag, sandbox_conns, tmp_path, capfd
) -> None:
    conf = {"projects_file": write(tmp_path, "bad-projects.yaml", BAD_PROJECTS)}
    capfd.readouterr()
    sandbox.clear_requests()
    dag_run, states = run_dag(DAG_ID, logical_date=midnight_days_ago(sandbox, 0), conf=conf, retries=0)
    out = capfd.readouterr().out
    assert str(dag_run.state) == "failed", states
    for task in ("plan", "plan_github", "plan_prometheus", "plan_sonarqube"):
        assert states[task] == "failed", states
    assert 'bad-projects.yaml line 6, projects[1].github: must be "owner/name"' in out
    assert not [k for k, v in states.items() if k.startswith("collect_") and v == "success"], states
    assert states["summary"] == "failed"
    assert snapshot(results_store(sandbox_conns)) == {t: [] for t in TABLES}
    assert [r for r in sandbox.requests() if r["system"] != "slack"] == []
    assert slack(sandbox) == []


# ---- 5. Prometheus: a bad PromQL, then Prometheus down ------------------------------------------------

PROM_PROJECTS = """
projects:
  - name: api
    sonarqube: acme_api
    prometheus:
      - name: availability
        query: 100 * avg(avg_over_time(up{job="api"}[1d]))
      - name: broken
        query: sum(rate(http_requests_total{job="api"}))
        unit: req/s
        direction: higher_is_better
  - name: web
    sonarqube: acme_web
    prometheus:
      - name: availability
        query: 100 * avg(avg_over_time(up{job="web"}[1d]))
"""


def test_a_bad_promql_fails_its_project_naming_the_query_and_prometheus_down_fails_every_project(
    sandbox, run_dag, sandbox_conns, tmp_path, capfd, monkeypatch
) -> None:
    from include.sandbox.client import free_port

    conf = {"projects_file": write(tmp_path, "projects.yaml", PROM_PROJECTS), "page": False}
    store = results_store(sandbox_conns)
    end = midnight_days_ago(sandbox, 0)
    capfd.readouterr()
    dag_run, states = run_dag(DAG_ID, logical_date=end, conf=conf, retries=0)
    out = capfd.readouterr().out
    assert str(dag_run.state) == "failed", states
    assert failed_projects(dag_run, states, "collect_prometheus") == {"api"}, states
    assert failed(states, "collect_sonarqube") == []
    assert (states["health"], states["alerts"], states["summary"]) == ("success", "success", "failed")
    # the error names the query and carries Prometheus's own message (400 bad_data)
    (bad,) = [r for r in sandbox.requests(system="prometheus") if r["status"] == 400]
    assert query_of(bad)["query"] == 'sum(rate(http_requests_total{job="api"}))'
    assert (
        "api: prometheus 'broken': Prometheus GET /api/v1/query -> 400: "
        "query 'sum(rate(http_requests_total{job=\"api\"}))' failed: bad_data: expected type range vector" in out
    )
    assert "collection failed for 1 of 4: prometheus:api" in out
    got = figures(store, day=(end - DAY).date())
    assert ("api", "prometheus", "availability") in got  # the good query of the same project
    assert ("api", "prometheus", "broken") not in got
    assert {
        ("web", "prometheus", "availability"),
        ("api", "sonarqube", "coverage"),
        ("web", "sonarqube", "coverage"),
    } <= set(got)
    assert {r["project"] for r in rows(store, "health_scores")} == {"api", "web"}

    # Prometheus unreachable (a closed port): every Prometheus task fails naming it; SonarQube is stored
    fast = {"timeout": 2, "max_retries": 1, "backoff_initial": 0.01, "backoff_max": 0.05}
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROMETHEUS_DEFAULT",
        json.dumps({"conn_type": "http", "host": f"http://127.0.0.1:{free_port()}/prometheus", "extra": fast}),
    )
    end = end - DAY
    dag_run, states = run_dag(DAG_ID, logical_date=end, conf=conf, retries=0)
    out = capfd.readouterr().out
    assert str(dag_run.state) == "failed", states
    assert failed_projects(dag_run, states, "collect_prometheus") == {"api", "web"}, states
    assert failed(states, "collect_sonarqube") == []
    assert "collection failed for 2 of 4: prometheus:api, prometheus:web" in out
    for name in ("api", "web"):
        assert f"{name}: prometheus: failed on 'availability', the remaining queries were not sent" in out
    assert "cannot reach Prometheus at http://127.0.0.1:" in out
    got = figures(store, day=(end - DAY).date())
    assert {s for _, s, _ in got} == {"sonarqube", "health"}, sorted(got)


# ---- 6. SonarQube: an unknown project key, then a refused token --------------------------------------

SONAR_PROJECTS = """
projects:
  - name: api
    sonarqube: acme_api
    prometheus:
      - name: availability
        query: 100 * avg(avg_over_time(up{job="api"}[1d]))
  - name: ghost
    sonarqube: acme_ghost
    prometheus:
      - name: availability
        query: 100 * avg(avg_over_time(up{job="web"}[1d]))
"""


def test_an_unknown_sonarqube_project_and_a_refused_token_fail_collect_sonarqube_naming_them(
    sandbox, run_dag, sandbox_conns, tmp_path, capfd, monkeypatch
) -> None:
    conf = {"projects_file": write(tmp_path, "projects.yaml", SONAR_PROJECTS), "page": False}
    store = results_store(sandbox_conns)
    end = midnight_days_ago(sandbox, 0)
    capfd.readouterr()
    dag_run, states = run_dag(DAG_ID, logical_date=end, conf=conf, retries=0)
    out = capfd.readouterr().out
    assert str(dag_run.state) == "failed", states
    assert failed_projects(dag_run, states, "collect_sonarqube") == {"ghost"}, states
    assert failed(states, "collect_prometheus") == []
    assert "ghost: sonarqube: SonarQube project 'acme_ghost'" in out
    assert "SonarQube said \"Component key 'acme_ghost' not found\"" in out
    assert "collection failed for 1 of 4: sonarqube:ghost" in out
    got = figures(store, day=(end - DAY).date())
    assert not [k for k in got if k[0] == "ghost" and k[1] == "sonarqube"]
    assert {("api", "sonarqube", "coverage"), ("api", "prometheus", "availability")} <= set(got)
    assert ("ghost", "prometheus", "availability") in got

    # a wrong token: 401 for every project, named; the token is never logged
    wrong = "squ_wrong_token_4242"
    conn = json.loads(sandbox_conns["AIRFLOW_CONN_SONARQUBE_DEFAULT"])
    monkeypatch.setenv("AIRFLOW_CONN_SONARQUBE_DEFAULT", json.dumps({**conn, "password": wrong}))
    end = end - DAY
    sandbox.clear_requests()
    dag_run, states = run_dag(DAG_ID, logical_date=end, conf=conf, retries=0)
    out = capfd.readouterr().out
    assert str(dag_run.state) == "failed", states
    assert failed_projects(dag_run, states, "collect_sonarqube") == {"api", "ghost"}, states
    assert failed(states, "collect_prometheus") == []
    for key in ("acme_api", "acme_ghost"):
        assert (
            f"SonarQube project '{key}': SonarQube GET /api/measures/search_history -> 401: "
            "SonarQube rejected the token of connection 'sonarqube_default'" in out
        )
    assert "collection failed for 2 of 4: sonarqube:api, sonarqube:ghost" in out
    assert wrong not in out
    assert {r["status"] for r in sandbox.requests(system="sonarqube", path="^/api/measures")} == {401}
    got = figures(store, day=(end - DAY).date())
    assert {s for _, s, _ in got} == {"prometheus", "health"}, sorted(got)


# ---- 7. GitHub: 403 on Dependabot alerts is "no access"; a secondary rate limit is waited ------------

SHOP_ONLY = """
projects:
  - name: shop
    github: acme/shop
"""
SECONDARY = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID SANDBOX:FAULT."
)


@pytest.mark.usefixtures("clear_of_midnight")
def test_github_403_on_dependabot_alerts_is_no_access_and_a_secondary_rate_limit_is_retried(
    sandbox, run_dag, sandbox_conns, tmp_path
) -> None:
    sandbox.control("github", "POST", "/repos/acme/shop/security", json={"area": "dependabot", "status": 403})
    sandbox.fault(
        system="github", path=r"^/repos/acme/shop/releases$", status=403, message=SECONDARY, retry_after=1, times=1
    )
    conf = {"projects_file": write(tmp_path, "projects.yaml", SHOP_ONLY), "page": False}
    end = midnight_days_ago(sandbox, 0)
    dag_run, states = run_dag(DAG_ID, logical_date=end, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    assert states["collect_github[0]"] == "success"
    got = figures(results_store(sandbox_conns))
    for severity in ("critical", "high", "medium", "low"):
        row = got[("shop", "github", f"dependabot_alerts.{severity}")]
        assert (row["value_raw"], row["value"]) == ("no access", None)
    assert got[("shop", "github", "code_scanning_alerts.medium")]["value"] == 1  # the other alert kinds are read
    (dependabot,) = sandbox.requests(system="github", path=r"^/repos/acme/shop/dependabot/alerts$")
    assert dependabot["status"] == 403
    releases = sandbox.requests(system="github", path=r"^/repos/acme/shop/releases$")
    assert [r["status"] for r in releases] == [403, 200], releases
    assert releases[1]["ts"] - releases[0]["ts"] >= 0.9  # Retry-After: 1 was honoured
    assert got[("shop", "github", "releases")]["value"] is not None
    # page off (what a backfill does): the day's alerts are recorded, nothing is sent
    events = rows(results_store(sandbox_conns), "alert_events", source=DAG_ID)
    assert {(e["scope_key"], e["rule_id"]) for e in events} >= {("shop", "threshold:github.closure_ratio_90d")}
    assert slack(sandbox) == [] and sandbox.requests(system="slack") == []
    assert rows(results_store(sandbox_conns), "notifications") == []
    (health,) = rows(results_store(sandbox_conns), "health_scores")
    inputs = {c["name"]: c for c in health["components"]["components"]}
    assert inputs["open_alerts"]["inputs"]["github.dependabot_alerts.high"] is None  # no data, not 0


# ---- 8. the same figures on PostgreSQL ----------------------------------------------------------------


def comparable(store: Any) -> dict[str, list[tuple]]:
    """Every row of the DAG's tables, ids and wall-clock columns left out, datetimes as UTC timestamps."""
    from devops_automation.store import schema

    wall_clock = {"id", "created_at", "sent_at", "message_ref"}
    wall_clock_of = {"notifications"}

    def norm(v: Any) -> Any:
        if isinstance(v, dt.datetime):
            return v.timestamp()
        if isinstance(v, float):
            return round(v, 9)
        if isinstance(v, dict | list):
            return json.dumps(v, sort_keys=True)
        return v

    out = {}
    with store.begin() as conn:
        for name in TABLES:
            t = schema.metadata.tables[name]
            skip = wall_clock if name in wall_clock_of else {"id"}
            cols = [c for c in t.c if c.name not in skip]
            out[name] = sorted((tuple(norm(v) for v in r) for r in conn.execute(sa.select(*cols))), key=repr)
    return out


@pytest.mark.usefixtures("clear_of_midnight")
def test_the_same_interval_stores_the_same_rows_on_postgresql_as_on_sqlite(
    sandbox, run_dag, sandbox_conns, pg_url, monkeypatch
) -> None:
    from sqlalchemy.engine import make_url

    from devops_automation.store import ResultsStore

    end = midnight_days_ago(sandbox, 0)
    dag_run, states = run_dag(DAG_ID, logical_date=end)
    assert str(dag_run.state) == "success", states
    on_sqlite = comparable(results_store(sandbox_conns))
    assert len(on_sqlite["project_metrics"]) > 100 and len(on_sqlite["health_scores"]) == 4
    assert on_sqlite["notifications"], "alerts were sent"
    u = make_url(pg_url)
    pg_conn = {
        "conn_type": "postgres",
        "host": u.host,
        "port": u.port,
        "login": u.username,
        "password": u.password or "",
        "schema": u.database,
    }
    monkeypatch.setenv("AIRFLOW_CONN_DEVOPS_RESULTS_DB", json.dumps(pg_conn))
    dag_run, states = run_dag(DAG_ID, logical_date=end)
    assert str(dag_run.state) == "success", states
    pg = ResultsStore(pg_url)
    try:
        assert comparable(pg) == on_sqlite
        # and a re-run on PostgreSQL changes nothing either
        before = snapshot(pg)
        dag_run, states = run_dag(DAG_ID, logical_date=end)
        assert str(dag_run.state) == "success", states
        assert snapshot(pg) == before
    finally:
        pg.dispose()


@pytest.mark.usefixtures("clear_of_midnight")
def test_a_breach_that_moves_materially_is_commented_once_and_an_unmoved_one_not(
    sandbox, run_dag, sandbox_conns, tmp_path
) -> None:
    today = midnight_days_ago(sandbox, 0)
    # probe_errors: 12 on day N-1, 20 on day N (still critical, +67 %), 21 on day N+1 (+5 %: not news)
    sandbox.control(
        "prometheus",
        "POST",
        "/series",
        json={
            "metric": "probe_errors",
            "labels": {"job": "probe"},
            "values": [
                [(today - 3 * DAY).timestamp(), 12],
                [(today - DAY + dt.timedelta(hours=1)).timestamp(), 20],
                [(today + dt.timedelta(hours=1)).timestamp(), 21],
            ],
        },
    )
    conf = {
        "projects_file": write(tmp_path, "projects.yaml", PROBE_PROJECTS),
        "health_file": write(tmp_path, "health.yaml", PROBE_HEALTH),
        "open_issues": True,
    }
    # The episode starts at the end of day N-1 (midnight yesterday); its start message goes out only
    # while the episode is at most 36 h old when the alerts task starts: before noon UTC, not after.
    from devops_automation.store.alert_events import MESSAGE_MAX_AGE

    ages = [dt.datetime.now(dt.UTC) - today + DAY]
    dag_run, states = run_dag(DAG_ID, logical_date=today - DAY, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    ages.append(dt.datetime.now(dt.UTC) - today + DAY)
    started = slack(sandbox)
    if all(age <= MESSAGE_MAX_AGE for age in ages):
        assert len(started) == 1, started
    elif all(age > MESSAGE_MAX_AGE for age in ages):
        assert started == [], started  # a catch-up run of an old interval pages nobody
    assert len(issue_requests(sandbox, "POST")) == 1
    (issue,) = api(sandbox, "github", "/repos/acme/infra/issues", labels="health-alert", state="open")
    comments_path = rf"/repos/acme/infra/issues/{issue['number']}/comments$"
    sandbox.clear_requests()
    dag_run, states = run_dag(DAG_ID, logical_date=today, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    (comment,) = issue_requests(sandbox, "POST", comments_path)
    text = json.loads(comment["body"])["body"]
    assert "still **critical**: 20 (was 12)." in text  # a count shown without its unit, as in the messages
    assert issue_requests(sandbox, "POST") == []  # no second issue
    sandbox.clear_requests()
    dag_run, states = run_dag(DAG_ID, logical_date=today + DAY, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    assert issue_requests(sandbox, "POST", comments_path) == []  # 20 -> 21 is not a material move
    assert issue_requests(sandbox, "POST") == []
    assert slack(sandbox) == started  # the alert is still the same episode: no second start message


# ---- 9. a Telegram route: one message per crossing, escaped and redacted; a re-run none; one resolve ----

TELEGRAM_CHAT = "-1001234567890"  # the chat of the fixture's telegram_default (the sandbox knows it)
TOKEN_NAMED = "glpat-Zr8kT2mQ9vX4bN7cW1yL"  # a project named by mistake with a GitLab token
TELEGRAM_PROJECTS = f"""
projects:
  - name: probe
    prometheus:
      - name: availability
        query: max(probe_availability{{job="probe"}})
  - name: {TOKEN_NAMED}
    prometheus:
      - name: availability
        query: max(probe_availability{{job="probe"}})
"""
TELEGRAM_HEALTH = f"""
thresholds:
  prometheus.availability: {{critical: 99.0}}
alerts:
  slack: null
  telegram: "{TELEGRAM_CHAT}"
"""


def telegram(sandbox: Any) -> list[dict[str, Any]]:
    return sandbox.control("telegram", "GET", "/messages", params={"chat_id": TELEGRAM_CHAT})


def test_a_telegram_route_gets_one_message_per_crossing_escaped_and_redacted_and_one_per_recovery(
    sandbox, run_dag, sandbox_conns, tmp_path
) -> None:
    today = midnight_days_ago(sandbox, 0)
    # availability 97.5 % through day N (yesterday): critical (< 99); 99.95 % from today noon (day N+1 recovers)
    sandbox.control(
        "prometheus",
        "POST",
        "/series",
        json={
            "metric": "probe_availability",
            "labels": {"job": "probe"},
            "values": [[(today - 3 * DAY).timestamp(), 97.5], [(today + dt.timedelta(hours=12)).timestamp(), 99.95]],
        },
    )
    conf = {
        "projects_file": write(tmp_path, "projects.yaml", TELEGRAM_PROJECTS),
        "health_file": write(tmp_path, "health.yaml", TELEGRAM_HEALTH),
    }
    store = results_store(sandbox_conns)
    day_n, day_n1 = (today - DAY).date().isoformat(), today.date().isoformat()
    dag_run, states = run_dag(DAG_ID, logical_date=today, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    started = telegram(sandbox)
    # one message per alert, HTML: the name in bold, "<" escaped (a raw "<" is refused by Telegram), the
    # token in the other project's name redacted before it left the process
    crossed = f"prometheus.availability is critical: 97.5 % (threshold < 99 %) on {day_n}"
    assert sorted(m["text"] for m in started) == [
        f"\U0001f534 [REDACTED:gitlab_token]: {crossed}",
        f"\U0001f534 probe: {crossed}",
    ], started
    assert {m["parse_mode"] for m in started} == {"HTML"}
    probe = next(m for m in started if "probe" in m["text"])
    assert probe["raw_text"] == (
        f"\U0001f534 <b>probe</b>: prometheus.availability is critical: 97.5 % (threshold &lt; 99 %) on {day_n}"
    )
    sent = sandbox.requests(system="telegram", path="/sendMessage$")
    assert len(sent) == 2 and {r["status"] for r in sent} == {200}
    assert not [r for r in sandbox.requests() if TOKEN_NAMED in (r.get("body") or "") + (r.get("query") or "")]
    assert slack(sandbox) == []  # the file routes Telegram only
    assert (
        sorted((n["channel"], n["target"], n["status"]) for n in rows(store, "notifications"))
        == [("telegram", TELEGRAM_CHAT, "sent")] * 2
    )

    # day N again: still firing -> nothing is sent
    sandbox.clear_requests()
    dag_run, states = run_dag(DAG_ID, logical_date=today, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    assert telegram(sandbox) == started
    assert sandbox.requests(system="telegram") == []

    # day N+1: recovered -> one resolve message per alert; that day again sends nothing more
    for _ in range(2):
        dag_run, states = run_dag(DAG_ID, logical_date=today + DAY, conf=conf, retries=0)
        assert str(dag_run.state) == "success", states
        messages = telegram(sandbox)
        assert messages[:2] == started
        assert sorted(m["text"] for m in messages[2:]) == [
            f"\u2705 [REDACTED:gitlab_token]: prometheus.availability recovered: 99.95 % on {day_n1}",
            f"\u2705 probe: prometheus.availability recovered: 99.95 % on {day_n1}",
        ], messages
    assert [e["state"] for e in rows(store, "alert_events")] == ["resolved", "resolved"]
    assert len(rows(store, "notifications", channel="telegram")) == 4


# ---- 10. GitLab issues: one per project and rule, a note when it moves, closed on recovery -------------

GITLAB_PROJECTS = """
projects:
  - name: pay
    gitlab: payments/checkout-api
    prometheus:
      - name: probe_errors
        query: max(probe_errors{job="probe"})
        unit: count
        direction: lower_is_better
"""
GITLAB_HEALTH = """
thresholds:
  prometheus.probe_errors:
    direction: lower_is_better
    critical: 5
alerts:
  slack: null
  issue_label: health-alert
"""
GITLAB_MARKER = "<!-- devops-automation:rule=threshold:prometheus.probe_errors project=pay -->"
GITLAB_ISSUES = r"/api/v4/projects/payments%2Fcheckout-api/issues"
AIRFLOW_UI = "http://airflow.example.test"


def gitlab_writes(sandbox: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, JSON body) of every write that reached the sandbox GitLab, in order."""
    return [
        (r["method"], r["path"], json.loads(r["body"] or "{}"))
        for r in sandbox.requests(system="gitlab")
        if r["method"] != "GET"
    ]


def gitlab_issues(sandbox: Any, **params: Any) -> list[dict[str, Any]]:
    r = requests.get(
        sandbox.url("gitlab", GITLAB_ISSUES),
        params={"labels": "health-alert", **params},
        headers={"PRIVATE-TOKEN": "glpat-sandbox-token"},
        timeout=10,
    )
    r.raise_for_status()
    return r.json()


def run_link(dag_run: Any) -> str:
    from urllib.parse import quote

    return f"{AIRFLOW_UI}/dags/{DAG_ID}/runs/{quote(dag_run.run_id, safe='')}"


def as_backfill(monkeypatch: pytest.MonkeyPatch) -> None:
    """dag.test() makes manual runs: from now on its runs are backfill runs (run type ``backfill``, as
    ``airflow dags backfill`` makes them), which is what the tasks read to record without acting."""
    import airflow.models.dagrun as dagrun
    from airflow.utils.types import DagRunType

    original = dagrun.get_or_create_dagrun

    def backfill_run(**kw: Any) -> Any:
        dr = original(**kw)
        dr.run_type = DagRunType.BACKFILL_JOB
        kw["session"].commit()
        return dr

    monkeypatch.setattr(dagrun, "get_or_create_dagrun", backfill_run)


def test_gitlab_issue_opened_once_noted_when_it_moves_found_after_a_lost_database_and_closed_on_recovery(
    sandbox, run_dag, sandbox_conns, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", AIRFLOW_UI)
    today = midnight_days_ago(sandbox, 0)
    # probe_errors: 12 at the end of day N-1, 20 at the end of day N (+67 %), 1 at the end of day N+1
    sandbox.control(
        "prometheus",
        "POST",
        "/series",
        json={
            "metric": "probe_errors",
            "labels": {"job": "probe"},
            "values": [
                [(today - 4 * DAY).timestamp(), 12],
                [(today - DAY + dt.timedelta(hours=1)).timestamp(), 20],
                [(today + dt.timedelta(hours=1)).timestamp(), 1],
            ],
        },
    )
    conf = {
        "projects_file": write(tmp_path, "projects.yaml", GITLAB_PROJECTS),
        "health_file": write(tmp_path, "health.yaml", GITLAB_HEALTH),
        "open_issues": True,
    }
    seeded = gitlab_issues(sandbox, labels=None)
    sandbox.clear_requests()
    day_before = today - DAY  # the run of day N-1

    # day N-1: critical -> one GitLab issue (the project has no GitHub repository)
    dag_run, states = run_dag(DAG_ID, logical_date=day_before, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    ((method, path, opened),) = gitlab_writes(sandbox)
    assert (method, path) == ("POST", GITLAB_ISSUES)
    day = (day_before - DAY).date().isoformat()
    assert opened["title"] == "pay: prometheus.probe_errors is critical (> 5)"
    assert opened["labels"] == "health-alert"
    body = opened["description"]
    assert body.startswith(f"**prometheus.probe_errors** of **pay** is **critical** on {day}: 12 (threshold: > 5).")
    assert "| `prometheus.probe_errors` | 12 |" in body.splitlines()  # the project's figures of that source
    assert f"Run: {run_link(dag_run)}" in body.splitlines()
    assert body.endswith(f"{GITLAB_MARKER}\n<!-- devops-automation:reported value=12.0 level=critical -->")
    listed = sandbox.requests(system="gitlab", method="GET", path=f"{GITLAB_ISSUES}$")
    assert [query_of(r)["labels"] for r in listed] == ["health-alert"]  # looked up on the tracker first
    (issue,) = gitlab_issues(sandbox, state="opened")
    assert (issue["title"], issue["description"], issue["labels"]) == (opened["title"], body, ["health-alert"])
    iid = issue["iid"]
    notes_path = f"{GITLAB_ISSUES}/{iid}/notes"
    (alerts,) = xcoms(dag_run, "alerts").values()
    assert alerts["issues"] == {"opened": 1, "commented": 0, "closed": 0}

    # day N-1 again: still breached, the same value -> no issue, no note
    sandbox.clear_requests()
    dag_run, states = run_dag(DAG_ID, logical_date=day_before, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    assert gitlab_writes(sandbox) == []

    # day N: 12 -> 20 is material: one note, no second issue
    sandbox.clear_requests()
    dag_run, states = run_dag(DAG_ID, logical_date=today, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    ((method, path, note),) = gitlab_writes(sandbox)
    assert (method, path) == ("POST", notes_path)
    assert note["body"].startswith(f"{(today - DAY).date().isoformat()}: **prometheus.probe_errors** is still ")
    assert "**critical**: 20 (was 12)." in note["body"]
    assert f"Run: {run_link(dag_run)}" in note["body"]

    # the results DB lost: day N again finds the open issue by label and marker: no second one, and no
    # note (the issue itself says 20 was reported)
    use_sqlite_results(monkeypatch, tmp_path / "lost.db")
    sandbox.clear_requests()
    dag_run, states = run_dag(DAG_ID, logical_date=today, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    assert [e["state"] for e in rows(results_store(str(tmp_path / "lost.db")), "alert_events")] == ["firing"]
    assert sandbox.requests(system="gitlab", method="GET", path=f"{GITLAB_ISSUES}$"), "the tracker was asked"
    assert gitlab_writes(sandbox) == []
    assert [i["iid"] for i in gitlab_issues(sandbox, state="opened")] == [iid]
    monkeypatch.setenv("AIRFLOW_CONN_DEVOPS_RESULTS_DB", sandbox_conns["AIRFLOW_CONN_DEVOPS_RESULTS_DB"])

    # day N+1: recovered -> a closing note, then the issue closed (state_event=close)
    sandbox.clear_requests()
    dag_run, states = run_dag(DAG_ID, logical_date=today + DAY, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    (closing, close) = gitlab_writes(sandbox)
    assert closing[:2] == ("POST", notes_path)
    assert closing[2]["body"].startswith(
        f"{today.date().isoformat()}: **prometheus.probe_errors** recovered: 1. Closing."
    )
    assert close == ("PUT", f"{GITLAB_ISSUES}/{iid}", {"state_event": "close"})
    (issue,) = gitlab_issues(sandbox, state="all")
    assert (issue["iid"], issue["state"], issue["user_notes_count"]) == (iid, "closed", 2)
    (alerts,) = xcoms(dag_run, "alerts").values()
    assert alerts["issues"] == {"opened": 0, "commented": 0, "closed": 1}

    # day N+1 again, and day N-1 re-run after the recovery (a cleared old run): nothing on the tracker
    sandbox.clear_requests()
    for logical_date in (today + DAY, day_before):
        dag_run, states = run_dag(DAG_ID, logical_date=logical_date, conf=conf, retries=0)
        assert str(dag_run.state) == "success", states
        assert gitlab_writes(sandbox) == [], logical_date
    assert [i["state"] for i in gitlab_issues(sandbox, state="all")] == ["closed"]

    # a backfill of day N-1 into a fresh database: figures and the alert recorded, no issue opened
    use_sqlite_results(monkeypatch, tmp_path / "backfill.db")
    as_backfill(monkeypatch)
    sandbox.clear_requests()
    dag_run, states = run_dag(DAG_ID, logical_date=day_before, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    assert str(dag_run.run_type) == "backfill"
    refilled = results_store(str(tmp_path / "backfill.db"))
    assert figures(refilled)[("pay", "prometheus", "probe_errors")]["value"] == 12
    (alerts,) = xcoms(dag_run, "alerts").values()
    assert (alerts["started"], alerts["issues"]) == (1, {})
    assert gitlab_writes(sandbox) == [] and sandbox.requests(system="gitlab") == []
    assert len(gitlab_issues(sandbox, labels=None)) == len(seeded) + 1
