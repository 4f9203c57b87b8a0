"""PrometheusHook against the sandbox Prometheus (real HTTP): time=, ranges, errors, no data, NaN, auth."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import parse_qsl

import pytest

from devops_automation.hooks.api import ApiError
from devops_automation.hooks.prometheus import (
    PrometheusHook,
    PrometheusQueryError,
    PrometheusUnavailable,
    finite,
    prom_time,
    step_seconds,
)

END = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
START = END - dt.timedelta(days=1)
AVAILABILITY = '100 * avg by (job) (avg_over_time(up{job="api"}[1d]))'


def set_conn(monkeypatch, host: str, conn_id: str = "prometheus_default", **fields) -> None:
    extra = {"timeout": 10, "max_retries": 2, "backoff_initial": 0.01, **fields.pop("extra", {})}
    conn = {"conn_type": "prometheus", "host": host, "extra": extra, **fields}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def make_hook(conn_id: str = "prometheus_default") -> PrometheusHook:
    hook = PrometheusHook(conn_id)
    hook.waits = []
    hook.sleep = hook.waits.append  # retries are recorded, not slept
    return hook


@pytest.fixture
def hook(sandbox, monkeypatch) -> PrometheusHook:
    set_conn(monkeypatch, sandbox.url("prometheus"))
    return make_hook()


def params(rec: dict) -> dict[str, str]:
    return dict(parse_qsl(rec["query"], keep_blank_values=True))


def queries(sandbox, path: str = "/api/v1/query$") -> list[dict]:
    return sandbox.requests(system="prometheus", path=path)


# -- instant and range queries ---------------------------------------------------------------------
def test_query_is_evaluated_at_the_time_given(hook, sandbox) -> None:
    result = hook.query(AVAILABILITY, END)
    sample = result.single()
    assert result.result_type == "vector"
    assert dict(sample.labels) == {"job": "api"}
    assert sample.time == END.timestamp()
    # api-1 is down 10 minutes a day: (1 - 300 / 86400) of the two instances' scrapes
    assert sample.value == pytest.approx(100 * (1 - 300 / 86400))
    assert sample.value_raw == str(sample.value_raw) and float(sample.value_raw) == sample.value
    (rec,) = queries(sandbox)
    assert rec["method"] == "GET"
    assert params(rec) == {"query": AVAILABILITY, "time": "2026-11-23T00:00:00Z"}


def test_a_backfilled_day_sees_that_days_outage(hook, sandbox) -> None:
    sandbox.control(
        "prometheus",
        "POST",
        "/outages",
        json={"job": "worker", "start": "2026-11-10T06:00:00Z", "end": "2026-11-10T12:00:00Z"},
    )
    query = '100 * avg by (job) (avg_over_time(up{job="worker"}[1d]))'
    that_day = hook.query(query, dt.datetime(2026, 11, 11, tzinfo=dt.UTC)).single()
    other_day = hook.query(query, END).single()
    assert that_day.value == pytest.approx(75.0)  # 6 of 24 hours down
    assert other_day.value == pytest.approx(100.0)
    assert [params(r)["time"] for r in queries(sandbox)] == ["2026-11-11T00:00:00Z", "2026-11-23T00:00:00Z"]


def test_scalar_result(hook) -> None:
    result = hook.query("1 + 2", END)
    assert result.result_type == "scalar"
    assert (result.single().value_raw, result.single().value, dict(result.single().labels)) == ("3", 3.0, {})


def test_query_range_sends_start_end_and_step(hook, sandbox) -> None:
    last = END - dt.timedelta(hours=1)
    result = hook.query_range('sum(up{job="api"})', START, last, "1h")
    series = result.single()
    assert len(series.points) == 24
    assert series.points[0].time == START.timestamp() and series.points[-1].time == last.timestamp()
    assert {p.value_raw for p in series.points} >= {"2"}
    assert "1" in {p.value_raw for p in series.points}  # 03:00, api-1 down
    (rec,) = queries(sandbox, "/query_range$")
    assert params(rec) == {
        "query": 'sum(up{job="api"})',
        "start": "2026-11-22T00:00:00Z",
        "end": "2026-11-22T23:00:00Z",
        "step": "3600",
    }


def test_query_range_over_the_point_limit_is_refused_before_sending(hook, sandbox) -> None:
    with pytest.raises(ValueError, match="over Prometheus's limit of 11,000"):
        hook.query_range("up", START - dt.timedelta(days=30), END, 60)
    with pytest.raises(ValueError, match="is before start"):
        hook.query_range("up", END, START, 60)
    with pytest.raises(ValueError, match="timezone-aware"):
        hook.query("up", dt.datetime(2026, 11, 23))
    assert queries(sandbox, "/query") == []


# -- no data, NaN, several series ------------------------------------------------------------------
def test_empty_vector_is_no_data_not_an_error(hook) -> None:
    result = hook.query('sum(rate(http_requests_total{job="nope"}[5m]))', END)
    assert result.no_data
    assert result.single() is None
    ranged = hook.query_range("no_such_metric", START, END - dt.timedelta(hours=1), "1h")
    assert ranged.no_data and ranged.single() is None


def test_nan_and_inf_keep_the_raw_string_and_have_no_value(hook) -> None:
    nan = hook.query("0 / 0", END).single()
    inf = hook.query('sum(up{job="api"}) / 0', END).single()
    vector_nan = hook.query('(sum(up{job="api"}) - sum(up{job="api"})) / 0', END).single()
    assert (nan.value_raw, nan.value) == ("NaN", None)
    assert (inf.value_raw, inf.value) == ("+Inf", None)
    assert (vector_nan.value_raw, vector_nan.value) == ("NaN", None)
    assert finite("-Inf") is None and finite("1e3") == 1000.0 and finite("x") is None


def test_several_series_for_one_figure_is_the_querys_fault(hook) -> None:
    result = hook.query('up{job="api"}', END)
    assert len(result.samples) == 2
    with pytest.raises(PrometheusQueryError, match=r"returned 2 series .*api-0:8080.*aggregate them") as exc:
        result.single()
    assert exc.value.query == 'up{job="api"}'
    with pytest.raises(PrometheusQueryError, match="range vector"):
        hook.query('up{job="api"}[5m]', END)


# -- errors ----------------------------------------------------------------------------------------
def test_bad_promql_is_a_400_naming_the_query_and_not_retried(hook, sandbox) -> None:
    with pytest.raises(PrometheusQueryError) as exc:
        hook.query("sum(rate(x[5m]", END)
    err = exc.value
    assert (err.status, err.error_type, err.query) == (400, "bad_data", "sum(rate(x[5m]")
    assert "query 'sum(rate(x[5m]' failed: bad_data: " in str(err)
    assert "parse error" in str(err)
    assert err.per_query is True
    assert len(queries(sandbox)) == 1
    assert hook.waits == []


def test_422_execution_error_names_the_query(hook, sandbox) -> None:
    sandbox.fault(system="prometheus", path="/query$", status=422, message="found duplicate series for the match group")
    with pytest.raises(PrometheusQueryError) as exc:
        hook.query("a / on() b", END)
    assert (exc.value.status, exc.value.error_type) == (422, "execution")
    assert "query 'a / on() b' failed: execution: found duplicate series" in str(exc.value)
    assert len(queries(sandbox)) == 1


def test_query_timeout_503_is_the_querys_fault_and_not_retried(hook, sandbox) -> None:
    sandbox.fault(
        system="prometheus", path="/query_range$", status=503, message="query timed out in expression evaluation"
    )
    with pytest.raises(PrometheusQueryError, match="failed: timeout: query timed out") as exc:
        hook.query_range("up", START, END, "5m")
    assert exc.value.status == 503
    assert len(queries(sandbox, "/query_range$")) == 1


def test_a_proxys_502_is_retried_then_an_api_error(hook, sandbox) -> None:
    sandbox.fault(
        system="prometheus", path="/query$", status=502, body="<html>Bad Gateway</html>", content_type="text/html"
    )
    with pytest.raises(ApiError) as exc:
        hook.query("up", END)
    assert not isinstance(exc.value, PrometheusQueryError)
    assert exc.value.status == 502 and "Bad Gateway" in str(exc.value)
    assert len(queries(sandbox)) == 3  # max_retries 2
    assert len(hook.waits) == 2


def test_transient_503_without_an_error_type_is_retried(hook, sandbox) -> None:
    sandbox.fault(system="prometheus", path="/query$", status=503, body="Service Unavailable", times=1)
    assert hook.query("1", END).single().value == 1.0
    assert [r["status"] for r in queries(sandbox)] == [503, 200]


def test_prometheus_down_is_a_clear_error(sandbox, monkeypatch) -> None:
    from include.sandbox.client import free_port

    port = free_port()
    set_conn(monkeypatch, f"http://127.0.0.1:{port}/prometheus", extra={"max_retries": 1})
    hook = make_hook()
    with pytest.raises(PrometheusUnavailable) as exc:
        hook.query("up", END)
    message = str(exc.value)
    assert f"cannot reach Prometheus at http://127.0.0.1:{port}/prometheus (ConnectionError)" in message
    assert "'prometheus_default' host right?" in message
    assert exc.value.status is None and exc.value.per_query is False
    assert len(hook.waits) == 1  # retried once, as configured


def test_warnings_are_logged_and_kept(hook, sandbox, capsys) -> None:
    body = {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [END.timestamp(), "0.5"]}]},
        "warnings": ["PromQL info: metric might not be a counter"],
    }
    sandbox.fault(system="prometheus", path="/query$", status=200, body=body)
    capsys.readouterr()
    result = hook.query("rate(x[5m])", END)
    assert result.warnings == ("PromQL info: metric might not be a counter",)
    assert result.single().value == 0.5
    logged = capsys.readouterr().out
    assert "Prometheus warning for query 'rate(x[5m])': PromQL info: metric might not be a counter" in logged


def test_non_json_success_is_a_clear_error(hook, sandbox) -> None:
    sandbox.fault(system="prometheus", path="/query$", status=200, body="<html>login</html>", content_type="text/html")
    with pytest.raises(ApiError, match="expected JSON but got 'text/html"):
        hook.query("up", END)


# -- authentication and URLs -----------------------------------------------------------------------
def test_no_auth_by_default_and_401_when_the_server_wants_one(hook, sandbox) -> None:
    assert hook.query("1", END).single().value == 1.0
    assert "authorization" not in queries(sandbox)[0]["headers"]
    sandbox.control("prometheus", "POST", "/auth", json={"bearer": "prom-token"})
    with pytest.raises(ApiError) as exc:
        make_hook().query("1", END)
    assert exc.value.status == 401
    assert not isinstance(exc.value, PrometheusQueryError)
    assert "Unauthorized" in str(exc.value)


def test_basic_auth_from_login_and_password(sandbox, monkeypatch) -> None:
    sandbox.control("prometheus", "POST", "/auth", json={"basic": ["prom", "s3cret"]})
    set_conn(monkeypatch, sandbox.url("prometheus"), login="prom", password="s3cret")
    assert make_hook().query("1", END).single().value == 1.0
    assert queries(sandbox)[-1]["headers"]["authorization"] == "Basic cHJvbTpzM2NyZXQ="
    set_conn(monkeypatch, sandbox.url("prometheus"), login="prom", password="wrong")
    with pytest.raises(ApiError, match="-> 401"):
        make_hook().query("1", END)


def test_bearer_from_the_password_or_the_extra(sandbox, monkeypatch) -> None:
    sandbox.control("prometheus", "POST", "/auth", json={"bearer": "prom-token"})
    set_conn(monkeypatch, sandbox.url("prometheus"), password="prom-token")
    assert make_hook().query("1", END).single().value == 1.0
    set_conn(monkeypatch, sandbox.url("prometheus"), conn_id="prom_extra", extra={"bearer_token": "prom-token"})
    assert make_hook("prom_extra").query("1", END).single().value == 1.0
    assert [r["headers"]["authorization"] for r in queries(sandbox)] == ["Bearer prom-token"] * 2
    set_conn(monkeypatch, sandbox.url("prometheus"), conn_id="prom_bad", extra={"auth_type": "kerberos"})
    with pytest.raises(ValueError, match="'auth_type' must be one of"):
        make_hook("prom_bad").query("1", END)


def test_host_may_end_with_api_v1(sandbox, monkeypatch) -> None:
    set_conn(monkeypatch, sandbox.url("prometheus", "/api/v1/"))
    hook = make_hook()
    assert hook.query("1", END).single().value == 1.0
    assert [r["path"] for r in queries(sandbox, "/query")] == ["/api/v1/query"]
    assert hook.where == sandbox.url("prometheus")


def test_test_connection(hook, sandbox, monkeypatch) -> None:
    ok, message = hook.test_connection()
    assert ok, message
    assert "version 3.5.0" in message
    assert "time" not in params(queries(sandbox)[-1])  # the server's own now
    sandbox.control("prometheus", "POST", "/auth", json={"bearer": "other"})
    ok, message = make_hook().test_connection()
    assert not ok and "401" in message


def test_units() -> None:
    assert prom_time(dt.datetime(2026, 11, 23, 1, 2, 3, tzinfo=dt.timezone(dt.timedelta(hours=1)))) == (
        "2026-11-23T00:02:03Z"
    )
    assert [step_seconds(s) for s in ("5m", "1h30m", 15, "2.5", dt.timedelta(minutes=2))] == [300, 5400, 15, 2.5, 120]
    for bad in ("", "5x", 0, -1, "soon"):
        with pytest.raises(ValueError):
            step_seconds(bad)
    assert (finite("NaN"), finite("+Inf"), finite("0.25")) == (None, None, 0.25)
