"""prometheus_figures and sonarqube_figures with the real hooks against the sandbox: a past day gives
that day's values, and the requests that reached the sandbox carry the interval's time= / from / to."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import parse_qsl

import pytest

from devops_automation.hooks.prometheus import PrometheusHook
from devops_automation.hooks.sonarqube import SonarQubeHook
from devops_automation.workflows.daily_project_metrics.metric_rows import WHOLE_SOURCE
from devops_automation.workflows.daily_project_metrics.prometheus_metrics import prometheus_figures
from devops_automation.workflows.daily_project_metrics.sonarqube_metrics import (
    is_latest_interval,
    sonarqube_figures,
)

FAST = {"timeout": 10, "max_retries": 1, "backoff_initial": 0.01, "backoff_max": 0.02}


@pytest.fixture
def conns(sandbox, monkeypatch) -> None:
    for name, password in (("prometheus", None), ("sonarqube", "squ_sandbox")):
        conn = {"conn_type": name, "host": sandbox.url(name), "password": password, "extra": FAST}
        monkeypatch.setenv(f"AIRFLOW_CONN_{name.upper()}_DEFAULT", json.dumps(conn))


def params(rec: dict) -> dict[str, str]:
    return dict(parse_qsl(rec["query"], keep_blank_values=True))


def sandbox_now(sandbox) -> dt.datetime:
    return dt.datetime.fromtimestamp(sandbox._call("GET", "/clock")["now"], dt.UTC)


def test_prometheus_backfill_of_a_past_day(conns, sandbox) -> None:
    sandbox.control(
        "prometheus",
        "POST",
        "/outages",
        json={"job": "worker", "start": "2026-11-10T06:00:00Z", "end": "2026-11-10T12:00:00Z"},
    )
    queries = [
        {"name": "availability", "query": '100 * avg(avg_over_time(up{job="worker"}[1d]))', "unit": "%"},
        {
            "name": "min_up",
            "query": 'min(up{job="worker"})',
            "unit": "bool",
            "kind": "range",
            "step": "1h",
            "aggregation": "min",
        },
        {"name": "broken", "query": "sum(rate(x[5m]"},
        {"name": "quiet", "query": 'sum(rate(http_requests_total{job="nope"}[1d]))', "unit": "req/s"},
    ]
    start = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)
    result = prometheus_figures(PrometheusHook(), "worker", queries, start, start + dt.timedelta(days=1))
    assert result.values() == {"availability": pytest.approx(75.0), "min_up": 0.0, "quiet": None}
    assert [r["value_raw"] for r in result.rows if r["metric"] in ("min_up", "quiet")] == ["0", "no data"]
    assert "query 'sum(rate(x[5m]' failed: bad_data" in result.errors["broken"] and WHOLE_SOURCE not in result.errors
    instant = [params(r) for r in sandbox.requests(system="prometheus", path="/api/v1/query$")]
    assert [p["time"] for p in instant] == ["2026-11-11T00:00:00Z"] * 3
    (ranged,) = [params(r) for r in sandbox.requests(system="prometheus", path="/query_range$")]
    assert (ranged["start"], ranged["end"], ranged["step"]) == ("2026-11-10T00:00:00Z", "2026-11-10T23:00:00Z", "3600")


def test_prometheus_down_fails_the_source_once(conns, sandbox, monkeypatch) -> None:
    from include.sandbox.client import free_port

    conn = {"conn_type": "prometheus", "host": f"http://127.0.0.1:{free_port()}", "extra": {**FAST, "max_retries": 0}}
    monkeypatch.setenv("AIRFLOW_CONN_PROMETHEUS_DEFAULT", json.dumps(conn))
    queries = [{"name": "a", "query": "up"}, {"name": "b", "query": "up"}]
    start = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)
    result = prometheus_figures(PrometheusHook(), "api", queries, start, start + dt.timedelta(days=1))
    assert result.rows == [] and result.not_collected == ["a", "b"]
    assert "cannot reach Prometheus at http://127.0.0.1:" in result.errors[WHOLE_SOURCE]


def test_sonarqube_backfill_gives_that_days_values(conns, sandbox) -> None:
    sandbox.control("sonarqube", "POST", "/projects", json={"key": "acme_hist", "measures": {"ncloc": 1000}})
    first = {"coverage": 71.5, "bugs": 4, "reliability_rating": 3.0, "sqale_index": 300}
    sandbox.control("sonarqube", "POST", "/projects/acme_hist/measures", json={"measures": first, "analysis": True})
    analysed = sandbox_now(sandbox)
    sandbox.advance(2 * 86400)
    later = {"coverage": 80, "bugs": 1, "reliability_rating": 1.0}
    sandbox.control("sonarqube", "POST", "/projects/acme_hist/measures", json={"measures": later, "analysis": True})
    now = sandbox_now(sandbox)
    hook = SonarQubeHook()

    start, end = analysed - dt.timedelta(hours=12), analysed + dt.timedelta(hours=12)
    assert not is_latest_interval(start, end, now)
    past = sonarqube_figures(hook, "hist", "acme_hist", start, end, latest=False)
    assert past.ok, past.errors
    values = {r["metric"]: r["value_raw"] for r in past.rows}
    assert (values["coverage"], values["bugs"], values["reliability_rating"], values["ncloc"]) == (
        "71.5",
        "4",
        "3.0",
        "1000",
    )
    assert values["technical_debt"] == "300" and values["maintainability_rating"] == "1.0"  # 1 % debt ratio: A
    assert values["quality_gate"] == "OK"
    (rec,) = sandbox.requests(system="sonarqube", path="/api/measures/search_history")
    sent = params(rec)
    assert sent["from"] == (end - dt.timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%S+0000")
    assert sent["to"] == end.strftime("%Y-%m-%dT%H:%M:%S+0000")
    assert sandbox.requests(system="sonarqube", path="/api/measures/component") == []

    sandbox.clear_requests()
    start, end = now - dt.timedelta(hours=1), now + dt.timedelta(hours=23)
    current = sonarqube_figures(hook, "hist", "acme_hist", start, end, latest=is_latest_interval(start, end, now))
    values = {r["metric"]: r["value_raw"] for r in current.rows}
    assert (values["coverage"], values["bugs"], values["reliability_rating"]) == ("80.0", "1", "1.0")
    assert current.details["mode"] == "current"
    assert [r["path"] for r in sandbox.requests(system="sonarqube")] == [
        "/api/measures/component",
        "/api/qualitygates/project_status",
    ]


def test_sonarqube_401_and_unknown_project(conns, sandbox, monkeypatch) -> None:
    start = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
    missing = sonarqube_figures(SonarQubeHook(), "gone", "acme_gone", start, end, latest=True)
    assert "SonarQube project 'acme_gone' not found" in missing.errors[WHOLE_SOURCE] and missing.rows == []
    conn = {"conn_type": "sonarqube", "host": sandbox.url("sonarqube"), "password": "squ_revoked", "extra": FAST}
    monkeypatch.setenv("AIRFLOW_CONN_SONARQUBE_DEFAULT", json.dumps(conn))
    refused = sonarqube_figures(SonarQubeHook(), "api", "acme_api", start, end, latest=False)
    assert "SonarQube rejected the token" in refused.errors[WHOLE_SOURCE]
    assert "squ_revoked" not in refused.errors[WHOLE_SOURCE]
