"""prometheus_figures on recorded Prometheus payloads (parsed by the real PrometheusHook, no HTTP)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest

from devops_automation.hooks.api import ApiError
from devops_automation.hooks.prometheus import PrometheusHook, PrometheusUnavailable
from devops_automation.workflows.daily_project_metrics.metric_rows import NO_DATA, WHOLE_SOURCE, day_of
from devops_automation.workflows.daily_project_metrics.prometheus_metrics import (
    aggregate,
    duration_seconds,
    prometheus_figures,
    query_spec,
    range_end,
)
from tests.conftest import REPO

START = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
END = START + dt.timedelta(days=1)
DAY = dt.date(2026, 11, 22)
T_END = END.timestamp()


def vector(*samples: tuple[dict[str, str], str], warnings: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": m, "value": [T_END, v]} for m, v in samples]},
    }
    if warnings:
        body["warnings"] = warnings
    return body


def matrix(*values: str, step: float = 6 * 3600) -> dict[str, Any]:
    points = [[START.timestamp() + i * step, v] for i, v in enumerate(values)]
    return {"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}, "values": points}]}}


def bad_data(query: str) -> ApiError:
    body = {"status": "error", "errorType": "bad_data", "error": 'invalid parameter "query": 1:15: parse error'}
    return ApiError("Prometheus", "GET", "/api/v1/query", 400, "bad_data: parse error", body=body)


class RecordedPrometheus(PrometheusHook):
    """A PrometheusHook whose HTTP answers are recorded payloads (keyed by the PromQL); records the calls."""

    def __init__(self, answers: dict[str, Any]) -> None:
        super().__init__("prometheus_recorded")
        self.answers = answers
        self.calls: list[tuple[str, dict[str, str]]] = []

    def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        params = dict(kwargs["params"])
        self.calls.append((path, params))
        answer = self.answers[params["query"]]
        if isinstance(answer, BaseException):
            raise answer
        return answer


# -- instant queries -------------------------------------------------------------------------------
def test_instant_queries_at_the_interval_end() -> None:
    hook = RecordedPrometheus(
        {
            "avail": vector(({"job": "api"}, "99.65277777777779")),
            "err": vector(({}, "0.0123")),
            "scalar": {"status": "success", "data": {"resultType": "scalar", "result": [T_END, "42"]}},
        }
    )
    queries = [
        {"name": "availability", "query": "avail", "unit": "%", "direction": "higher_is_better"},
        {"name": "error_rate", "query": "err", "unit": "%"},
        {"name": "answer", "query": "scalar"},
    ]
    result = prometheus_figures(hook, "api", queries, START, END)
    assert result.ok and result.errors == {}
    assert result.rows == [
        {
            "day": DAY,
            "source": "prometheus",
            "project": "api",
            "metric": "availability",
            "value_raw": "99.65277777777779",
            "value": 99.65277777777779,
            "unit": "%",
        },
        {
            "day": DAY,
            "source": "prometheus",
            "project": "api",
            "metric": "error_rate",
            "value_raw": "0.0123",
            "value": 0.0123,
            "unit": "%",
        },
        {
            "day": DAY,
            "source": "prometheus",
            "project": "api",
            "metric": "answer",
            "value_raw": "42",
            "value": 42.0,
            "unit": None,
        },
    ]
    assert [(path, p["time"]) for path, p in hook.calls] == [("/query", "2026-11-23T00:00:00Z")] * 3


def test_empty_vector_is_no_data_and_nan_inf_have_no_value() -> None:
    hook = RecordedPrometheus({"empty": vector(), "nan": vector(({}, "NaN")), "inf": vector(({"le": "+Inf"}, "+Inf"))})
    queries = [{"name": n, "query": n, "unit": "s"} for n in ("empty", "nan", "inf")]
    result = prometheus_figures(hook, "web", queries, START, END)
    assert result.errors == {}
    assert [(r["metric"], r["value_raw"], r["value"]) for r in result.rows] == [
        ("empty", NO_DATA, None),
        ("nan", "NaN", None),
        ("inf", "+Inf", None),
    ]
    assert result.values() == {"empty": None, "nan": None, "inf": None}


def test_warnings_are_reported_per_query() -> None:
    hook = RecordedPrometheus({"q": vector(({}, "1"), warnings=["results truncated due to limit"])})
    result = prometheus_figures(hook, "api", [{"name": "x", "query": "q"}], START, END)
    assert result.warnings == ["x: results truncated due to limit"]
    assert result.values() == {"x": 1.0}


# -- range queries ---------------------------------------------------------------------------------
def test_range_queries_over_the_day_with_each_aggregation() -> None:
    points = ("0.2", "NaN", "0.5", "0.3")  # 00:00, 06:00, 12:00, 18:00
    hook = RecordedPrometheus({f"p95_{agg}": matrix(*points) for agg in ("avg", "min", "max", "last")})
    queries = [
        {"name": f"p95_{agg}", "query": f"p95_{agg}", "unit": "s", "kind": "range", "step": "6h", "aggregation": agg}
        for agg in ("avg", "min", "max", "last")
    ]
    result = prometheus_figures(hook, "api", queries, START, END)
    assert result.errors == {}
    assert [(r["metric"], r["value_raw"], r["value"]) for r in result.rows] == [
        ("p95_avg", "0.3333333333333333", pytest.approx(1 / 3)),  # NaN left out: (0.2 + 0.5 + 0.3) / 3
        ("p95_min", "0.2", 0.2),
        ("p95_max", "0.5", 0.5),
        ("p95_last", "0.3", 0.3),
    ]
    # the last evaluation is the step before the end: the point at 00:00 the next day is the next day's
    for path, p in hook.calls:
        assert (path, p["start"], p["end"], p["step"]) == (
            "/query_range",
            "2026-11-22T00:00:00Z",
            "2026-11-22T18:00:00Z",
            "21600",
        )
    assert result.details["queries"]["p95_max"] == {
        "kind": "range",
        "start": "2026-11-22T00:00:00+00:00",
        "end": "2026-11-22T18:00:00+00:00",
        "step": 21600.0,
        "aggregation": "max",
        "points": 4,
    }


def test_range_defaults_avg_every_5m_and_no_data_cases() -> None:
    empty = {"status": "success", "data": {"resultType": "matrix", "result": []}}
    hook = RecordedPrometheus({"r": matrix("1", "3", step=300), "none": empty, "nan": matrix("NaN", "+Inf")})
    queries = [
        {"name": "r", "query": "r", "kind": "range"},
        {"name": "none", "query": "none", "kind": "range", "aggregation": "max"},
        {"name": "nan", "query": "nan", "kind": "range", "step": 21600},
    ]
    result = prometheus_figures(hook, "api", queries, START, END)
    assert [(r["metric"], r["value_raw"], r["value"]) for r in result.rows] == [
        ("r", "2.0", 2.0),
        ("none", NO_DATA, None),
        ("nan", "+Inf", None),  # only non-finite points: the last one's string, no value
    ]
    assert hook.calls[0][1]["step"] == "300" and hook.calls[0][1]["end"] == "2026-11-22T23:55:00Z"


# -- errors ----------------------------------------------------------------------------------------
def test_a_bad_query_is_recorded_and_the_others_still_computed() -> None:
    two_series = vector(({"instance": "a"}, "1"), ({"instance": "b"}, "0"))
    hook = RecordedPrometheus({"sum(rate(x[5m]": bad_data("sum(rate(x[5m]"), "up": two_series, "ok": vector(({}, "7"))})
    queries = [
        {"name": "broken", "query": "sum(rate(x[5m]"},
        {"name": "per_instance", "query": "up"},
        {"name": "fine", "query": "ok"},
    ]
    result = prometheus_figures(hook, "api", queries, START, END)
    assert result.values() == {"fine": 7.0}  # failed figures have no row (a stored value is not overwritten)
    assert set(result.errors) == {"broken", "per_instance"}
    assert (
        "query 'sum(rate(x[5m]' failed: bad_data: invalid parameter \"query\": 1:15: parse error"
        in (result.errors["broken"])
    )
    assert "returned 2 series" in result.errors["per_instance"] and "aggregate them" in result.errors["per_instance"]
    assert not result.source_failed and not result.ok
    assert result.problems()[0].startswith("api: prometheus 'broken': Prometheus GET /api/v1/query -> 400: ")


def test_prometheus_down_stops_the_remaining_queries() -> None:
    down = PrometheusUnavailable(
        "Prometheus", "GET", "/api/v1/query", None, "cannot reach Prometheus at http://prom:9090 (ConnectionError)"
    )
    hook = RecordedPrometheus({"a": vector(({}, "1")), "b": down, "c": vector(({}, "3"))})
    queries = [{"name": n, "query": n} for n in ("a", "b", "c")]
    result = prometheus_figures(hook, "api", queries, START, END)
    assert result.values() == {"a": 1.0}
    assert result.source_failed
    assert result.errors == {
        WHOLE_SOURCE: "failed on 'b', the remaining queries were not sent: Prometheus GET /api/v1/query -> "
        "no response: cannot reach Prometheus at http://prom:9090 (ConnectionError)"
    }
    assert result.not_collected == ["b", "c"]
    assert [p["query"] for _, p in hook.calls] == ["a", "b"]  # c was not sent
    assert result.problems()[-1] == "api: prometheus: not collected: b, c"


def test_401_fails_the_source_too() -> None:
    refused = ApiError("Prometheus", "GET", "/api/v1/query", 401, "401 Unauthorized", body="Unauthorized\n")
    result = prometheus_figures(RecordedPrometheus({"a": refused}), "api", [{"name": "a", "query": "a"}], START, END)
    assert result.source_failed and "-> 401" in result.errors[WHOLE_SOURCE]
    assert result.rows == [] and result.not_collected == ["a"]


def test_a_malformed_answer_is_the_querys_error_and_a_bug_is_raised() -> None:
    malformed = {"status": "success", "data": {"resultType": "vector", "result": [{"value": 3}]}}
    result = prometheus_figures(RecordedPrometheus({"a": malformed}), "api", [{"name": "a", "query": "a"}], START, END)
    assert result.errors == {
        "a": "Prometheus GET /api/v1/query -> 200: query 'a' failed: unexpected sample 3 in the answer"
    }
    with pytest.raises(TypeError, match="a bug"):
        prometheus_figures(
            RecordedPrometheus({"a": TypeError("a bug")}), "api", [{"name": "a", "query": "a"}], START, END
        )


# -- configuration ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PromQuery:  # the shape of projects.py's PromQuery
    name: str
    query: str
    unit: str
    direction: str
    kind: str = "instant"
    aggregation: str | None = None
    step_s: float | None = None


def test_query_objects_and_mappings_are_both_read() -> None:
    hook = RecordedPrometheus({"r": matrix("1", "2", "3", "4")})
    spec = PromQuery("p95_latency", "r", "s", "lower_is_better", kind="range", aggregation="max", step_s=21600.0)
    result = prometheus_figures(hook, "api", [spec], START, END)
    assert result.rows[0]["value_raw"] == "4" and result.rows[0]["unit"] == "s"
    assert hook.calls[0][1]["step"] == "21600"
    assert query_spec(PromQuery("a", "up", "%", "higher_is_better")).kind == "instant"
    assert query_spec(PromQuery("a", "up", "%", "higher_is_better")).aggregation == "avg"


def test_bad_query_configuration_is_named_and_the_others_run() -> None:
    hook = RecordedPrometheus({"ok": vector(({}, "1")), "dup": vector(({}, "2"))})
    queries = [
        {"name": "no_query"},
        {"query": "up"},
        {"name": "wrong_kind", "query": "up", "kind": "histogram"},
        {"name": "wrong_agg", "query": "up", "kind": "range", "aggregation": "median"},
        {"name": "wrong_step", "query": "up", "kind": "range", "step": "fortnight"},
        {"name": "fine", "query": "ok"},
        {"name": "twice", "query": "dup"},
        {"name": "twice", "query": "dup"},
    ]
    result = prometheus_figures(hook, "api", queries, START, END)
    assert result.values() == {"fine": 1.0}
    assert result.errors == {
        "no_query": "project 'api' prometheus query #1 (no_query): field 'query' must be a non-empty PromQL string, "
        "got None",
        "#2": "project 'api' prometheus query #2: field 'name' must be a non-empty string, got None",
        "wrong_kind": "project 'api' prometheus query #3 (wrong_kind): field 'kind' must be one of "
        "('instant', 'range'), got 'histogram'",
        "wrong_agg": "project 'api' prometheus query #4 (wrong_agg): field 'aggregation' must be one of "
        "('avg', 'min', 'max', 'last'), got 'median'",
        "wrong_step": "project 'api' prometheus query #5 (wrong_step): field 'step': 'fortnight' is not a duration "
        "(e.g. 30s, 5m, 1h)",
        "twice": "project 'api' prometheus query #8: metric name 'twice' is used twice in this project",
    }
    assert [p["query"] for _, p in hook.calls] == ["ok"]


def test_a_step_too_small_for_the_interval_is_the_querys_error() -> None:
    hook = RecordedPrometheus({})
    result = prometheus_figures(hook, "api", [{"name": "x", "query": "up", "kind": "range", "step": 1}], START, END)
    assert "more than Prometheus's 11,000 points" in result.errors["x"] and hook.calls == []


# -- units -----------------------------------------------------------------------------------------
def test_units() -> None:
    assert range_end(START, END, 300) == END - dt.timedelta(minutes=5)
    assert range_end(START, END, 7000) == START + dt.timedelta(seconds=84000)
    assert range_end(START, END, 2 * 86400) == START
    assert aggregate([], "avg") == (None, None)
    assert aggregate(["1", "x", "3"], "avg") == ("2.0", 2.0)
    assert aggregate(["NaN"], "last") == ("NaN", None)
    assert [duration_seconds(v) for v in ("90s", "1h30m", 15, dt.timedelta(minutes=1))] == [90, 5400, 15, 60]
    with pytest.raises(ValueError, match="timezone-aware"):
        day_of(dt.datetime(2026, 11, 22), END)
    with pytest.raises(ValueError, match="the interval is empty"):
        day_of(END, START)
    assert day_of(dt.datetime(2026, 11, 22, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))), END) == dt.date(2026, 11, 21)


def test_result_as_dict_is_json() -> None:
    result = prometheus_figures(
        RecordedPrometheus({"a": vector(({}, "1"))}), "api", [{"name": "a", "query": "a"}], START, END
    )
    data = json.loads(json.dumps(result.as_dict()))
    assert data["day"] == "2026-11-22" and data["rows"][0]["day"] == "2026-11-22"
    assert data["rows"][0]["value"] == 1.0


def test_the_pure_modules_import_no_airflow() -> None:
    code = (
        "import sys\n"
        "import devops_automation.workflows.daily_project_metrics.prometheus_metrics\n"
        "import devops_automation.workflows.daily_project_metrics.sonarqube_metrics\n"
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO / "plugins"), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
