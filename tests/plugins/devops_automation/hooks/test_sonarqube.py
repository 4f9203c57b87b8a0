"""SonarQubeHook against the sandbox SonarQube (real HTTP): measures, history, gate, auth and errors."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import parse_qsl

import pytest

from devops_automation.hooks.api import ApiError
from devops_automation.hooks.sonarqube import (
    SonarQubeAuthError,
    SonarQubeHook,
    SonarQubeProjectNotFound,
    parse_sonar_time,
    sonar_time,
    unknown_metrics,
)

TOKEN = "squ_sandbox"


def set_conn(monkeypatch, host: str, password: str | None = TOKEN, conn_id: str = "sonarqube_default", **extra) -> None:
    conn = {
        "conn_type": "sonarqube",
        "host": host,
        "password": password,
        "extra": {"timeout": 10, "max_retries": 2, "backoff_initial": 0.01, **extra},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def make_hook(conn_id: str = "sonarqube_default") -> SonarQubeHook:
    hook = SonarQubeHook(conn_id)
    hook.waits = []
    hook.sleep = hook.waits.append
    return hook


@pytest.fixture
def hook(sandbox, monkeypatch) -> SonarQubeHook:
    set_conn(monkeypatch, sandbox.url("sonarqube"))
    return make_hook()


def params(rec: dict) -> dict[str, str]:
    return dict(parse_qsl(rec["query"], keep_blank_values=True))


def sonar_requests(sandbox, path: str) -> list[dict]:
    return sandbox.requests(system="sonarqube", path=path)


def clock(sandbox) -> dt.datetime:
    return dt.datetime.fromtimestamp(sandbox._call("GET", "/clock")["now"], dt.UTC)


# -- measures --------------------------------------------------------------------------------------
def test_measures_are_the_strings_sonarqube_sent(hook, sandbox) -> None:
    got = hook.measures("acme_api", ["coverage", "bugs", "reliability_rating", "sqale_index", "new_coverage"])
    assert got == {
        "coverage": "82.6",
        "bugs": "3",
        "reliability_rating": "3.0",
        "sqale_index": "2310",
        "new_coverage": "86.1",  # a new-code metric: its period value
    }
    (rec,) = sonar_requests(sandbox, "/api/measures/component")
    assert params(rec) == {
        "component": "acme_api",
        "metricKeys": "coverage,bugs,reliability_rating,sqale_index,new_coverage",
    }
    assert rec["headers"]["authorization"] == f"Bearer {TOKEN}"


def test_a_measure_without_value_is_absent(hook) -> None:
    got = hook.measures("acme_infra", ["coverage", "bugs", "alert_status"])
    assert got == {"bugs": "0"}  # no coverage report; no gate, so no alert_status


def test_unknown_metric_keys_are_dropped_and_asked_again(hook, sandbox) -> None:
    got = hook.measures("acme_web", ["coverage", "no_such_metric", "bugs"])
    assert got == {"coverage": "64.1", "bugs": "17"}
    asked = [params(r)["metricKeys"] for r in sonar_requests(sandbox, "/api/measures/component")]
    assert asked == ["coverage,no_such_metric,bugs", "coverage,bugs"]
    assert hook.measures("acme_api", ["no_such_metric", "ncloc"]) == {"ncloc": "48213"}  # not asked again
    assert params(sonar_requests(sandbox, "/api/measures/component")[-1])["metricKeys"] == "ncloc"
    assert hook.unknown_metric_keys == {"no_such_metric"}
    with pytest.raises(ApiError, match="metric keys are not found: nope") as exc:
        hook.measures("acme_web", ["nope"])
    assert not isinstance(exc.value, SonarQubeProjectNotFound)


def test_basic_auth_for_old_servers(sandbox, monkeypatch) -> None:
    set_conn(monkeypatch, sandbox.url("sonarqube"), auth_type="basic")
    assert make_hook().measures("acme_api", ["ncloc"]) == {"ncloc": "48213"}
    (rec,) = sonar_requests(sandbox, "/api/measures/component")
    assert rec["headers"]["authorization"] == "Basic c3F1X3NhbmRib3g6"  # "squ_sandbox:" (empty password)
    set_conn(monkeypatch, sandbox.url("sonarqube"), auth_type="token")
    with pytest.raises(ValueError, match="'auth_type' must be one of"):
        make_hook().measures("acme_api", ["ncloc"])


# -- errors ----------------------------------------------------------------------------------------
def test_401_says_the_token_was_rejected_and_does_not_show_it(sandbox, monkeypatch) -> None:
    set_conn(monkeypatch, sandbox.url("sonarqube"), password="squ_wrong_secret")
    hook = make_hook()
    for call in (
        lambda: hook.measures("acme_api", ["coverage"]),
        lambda: hook.measures_history("acme_api", ["coverage"]),
        lambda: hook.quality_gate("acme_api"),
    ):
        with pytest.raises(SonarQubeAuthError) as exc:
            call()
        assert exc.value.status == 401
        assert "SonarQube rejected the token of connection 'sonarqube_default'" in str(exc.value)
        assert "squ_wrong_secret" not in str(exc.value)
    assert hook.waits == []  # not retried
    assert len(sandbox.requests(system="sonarqube")) == 3


def test_unknown_project_names_the_key(hook, sandbox) -> None:
    for call in (
        lambda: hook.measures("acme_nope", ["coverage"]),
        lambda: hook.measures_history("acme_nope", ["coverage"]),
        lambda: hook.quality_gate("acme_nope"),
    ):
        with pytest.raises(SonarQubeProjectNotFound) as exc:
            call()
        assert exc.value.status == 404
        assert exc.value.project_key == "acme_nope"
        assert "SonarQube project 'acme_nope' not found (or the token may not browse it)" in str(exc.value)
    assert len(sandbox.requests(system="sonarqube")) == 3  # a 404 is not retried, not asked again


def test_a_project_key_that_looks_like_a_metric_is_still_a_missing_project(hook) -> None:
    with pytest.raises(SonarQubeProjectNotFound, match="'coverage_metrics'"):
        hook.measures("coverage_metrics", ["coverage"])


def test_server_errors_are_retried_with_sonarqubes_message(hook, sandbox) -> None:
    sandbox.fault(system="sonarqube", path="/api/measures/component", status=500, message="DB down", times=1)
    assert hook.measures("acme_api", ["bugs"]) == {"bugs": "3"}
    sandbox.fault(system="sonarqube", path="/api/qualitygates", status=500, message="DB down")
    with pytest.raises(ApiError, match=r"-> 500: DB down"):
        hook.quality_gate("acme_api")
    assert len(hook.waits) == 3


# -- history ---------------------------------------------------------------------------------------
def test_history_is_chronological_over_every_page(hook, sandbox) -> None:
    history = hook.measures_history("acme_api", ["coverage", "bugs"], page_size=10)
    assert set(history) == {"coverage", "bugs"}
    assert len(history["bugs"]) == 30  # the seeded analyses
    dates = [d for d, _ in history["bugs"]]
    assert dates == sorted(dates) and all(d.tzinfo is not None for d in dates)
    assert [v for _, v in history["coverage"][:3]] == [None, None, None]  # early analyses had no coverage
    assert history["bugs"][-1][1] == "3" and history["coverage"][-1][1] == "82.6"  # the latest is the current
    pages = [params(r) for r in sonar_requests(sandbox, "/api/measures/search_history")]
    assert [(p["p"], p["ps"], p["metrics"]) for p in pages] == [
        ("1", "10", "coverage,bugs"),
        ("2", "10", "coverage,bugs"),
        ("3", "10", "coverage,bugs"),
    ]


def test_history_window_sends_from_and_to(hook, sandbox) -> None:
    full = hook.measures_history("acme_web", ["ncloc"])["ncloc"]
    lo, hi = full[10][0], full[20][0] + dt.timedelta(seconds=1)  # dates are shown in whole seconds
    sandbox.clear_requests()
    window = hook.measures_history("acme_web", ["ncloc"], lo, hi)["ncloc"]
    assert window == full[10:21]
    (rec,) = sonar_requests(sandbox, "/api/measures/search_history")
    assert params(rec)["from"] == lo.strftime("%Y-%m-%dT%H:%M:%S+0000")
    assert params(rec)["to"] == hi.strftime("%Y-%m-%dT%H:%M:%S+0000")
    by_date = hook.measures_history("acme_web", ["ncloc"], lo.date(), lo.date())["ncloc"]
    assert [d.date() for d, _ in by_date] == [lo.date()]  # a date means that whole day
    assert params(sonar_requests(sandbox, "/api/measures/search_history")[-1])["to"] == lo.date().isoformat()


def test_history_of_a_metric_unknown_to_the_server_is_absent(hook, sandbox) -> None:
    history = hook.measures_history("acme_api", ["bugs", "no_such_metric"])
    assert set(history) == {"bugs"}
    asked = [params(r)["metrics"] for r in sonar_requests(sandbox, "/api/measures/search_history")]
    assert asked == ["bugs,no_such_metric", "bugs"]


def test_history_gives_a_past_analysis_values(hook, sandbox) -> None:
    sandbox.control("sonarqube", "POST", "/projects", json={"key": "acme_hist", "measures": {"ncloc": 1000}})
    sandbox.control(
        "sonarqube", "POST", "/projects/acme_hist/measures", json={"measures": {"coverage": 71.5}, "analysis": True}
    )
    first = clock(sandbox)
    sandbox.advance(2 * 86400)
    sandbox.control(
        "sonarqube", "POST", "/projects/acme_hist/measures", json={"measures": {"coverage": 80}, "analysis": True}
    )
    history = hook.measures_history("acme_hist", ["coverage", "alert_status"])
    assert [v for _, v in history["coverage"]] == ["71.5", "80.0"]
    assert history["coverage"][0][0] == pytest.approx(first, abs=dt.timedelta(seconds=5))
    assert [v for _, v in history["alert_status"]] == ["OK", "OK"]


# -- quality gate and connection test --------------------------------------------------------------
def test_quality_gate(hook, sandbox) -> None:
    web = hook.quality_gate("acme_web")
    assert web["status"] == "ERROR"
    assert {c["metricKey"] for c in web["conditions"] if c["status"] == "ERROR"} >= {"new_coverage"}
    assert hook.quality_gate("acme_api")["status"] == "OK"
    assert hook.quality_gate("acme_infra")["status"] == "NONE"
    assert [params(r) for r in sonar_requests(sandbox, "/api/qualitygates/project_status")] == [
        {"projectKey": "acme_web"},
        {"projectKey": "acme_api"},
        {"projectKey": "acme_infra"},
    ]


def test_test_connection(hook, sandbox, monkeypatch) -> None:
    assert hook.test_connection() == (True, "SonarQube answered and accepts the token")
    set_conn(monkeypatch, sandbox.url("sonarqube"), password="nope")
    ok, message = make_hook().test_connection()
    assert not ok and "rejected the token" in message


def test_units() -> None:
    assert parse_sonar_time("2026-01-01T12:00:00+0000") == dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    assert parse_sonar_time("2026-01-01T13:00:00+0100") == dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    assert parse_sonar_time("garbage") is None and parse_sonar_time(None) is None
    assert sonar_time(dt.date(2026, 1, 2), "to") == "2026-01-02"
    assert sonar_time(dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "to") == "2026-01-02T03:04:05+0000"
    with pytest.raises(ValueError, match="timezone-aware"):
        sonar_time(dt.datetime(2026, 1, 2), "to")
    message = "The following metric keys are not found: new_bugs, sqale_rating"
    assert unknown_metrics(message, ["bugs", "new_bugs", "sqale_rating", "coverage"]) == ["new_bugs", "sqale_rating"]
