"""sonarqube_figures on recorded SonarQube payloads (parsed by the real SonarQubeHook, no HTTP)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from devops_automation.hooks.api import ApiError
from devops_automation.hooks.sonarqube import SonarQubeHook
from devops_automation.workflows.daily_project_metrics.metric_rows import NO_DATA, WHOLE_SOURCE
from devops_automation.workflows.daily_project_metrics.sonarqube_metrics import (
    FIGURES,
    gate_value,
    is_latest_interval,
    rating_letter,
    sonar_keys,
    sonarqube_figures,
    value_at,
)

START = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
END = START + dt.timedelta(days=1)
DAY = dt.date(2026, 11, 22)
NAMES = [*FIGURES, "quality_gate"]

#: api/measures/component?component=acme_web (SonarQube 10.7: classic and software_quality_* ratings)
MEASURES = {
    "component": {
        "key": "acme_web",
        "name": "acme/web",
        "qualifier": "TRK",
        "measures": [
            {"metric": "coverage", "value": "64.1", "bestValue": False},
            {"metric": "new_coverage", "period": {"index": 1, "value": "61.4", "bestValue": False}},
            {"metric": "new_vulnerabilities", "period": {"index": 1, "value": "1", "bestValue": False}},
            {"metric": "bugs", "value": "17", "bestValue": False},
            {"metric": "vulnerabilities", "value": "2", "bestValue": False},
            {"metric": "code_smells", "value": "611", "bestValue": False},
            {"metric": "duplicated_lines_density", "value": "8.9", "bestValue": False},
            {"metric": "reliability_rating", "value": "4.0", "bestValue": False},
            {"metric": "software_quality_reliability_rating", "value": "4.0", "bestValue": False},
            {"metric": "security_rating", "value": "3.0", "bestValue": False},
            {"metric": "software_quality_security_rating", "value": "3.0", "bestValue": False},
            {"metric": "sqale_rating", "value": "2.0", "bestValue": False},
            {"metric": "software_quality_maintainability_rating", "value": "2.0", "bestValue": False},
            {"metric": "security_hotspots_reviewed", "value": "11.1", "bestValue": False},
            {"metric": "ncloc", "value": "23950"},
            {"metric": "sqale_index", "value": "41300", "bestValue": False},
        ],
    }
}
#: api/qualitygates/project_status?projectKey=acme_web
GATE = {
    "projectStatus": {
        "status": "ERROR",
        "ignoredConditions": False,
        "caycStatus": "compliant",
        "conditions": [
            {
                "status": "ERROR",
                "metricKey": "new_coverage",
                "comparator": "LT",
                "errorThreshold": "80",
                "actualValue": "61.4",
            },
            {
                "status": "OK",
                "metricKey": "new_security_rating",
                "comparator": "GT",
                "errorThreshold": "1",
                "actualValue": "1.0",
            },
        ],
    }
}
#: three analyses: before the day, during it, after it
DATES = ("2026-11-17T09:12:44+0000", "2026-11-22T10:03:10+0000", "2026-11-23T08:00:00+0000")
HISTORY_VALUES = {
    "coverage": ("60.0", None, "70.0"),  # the day's analysis had no coverage report
    "bugs": ("20", "18", "15"),
    "vulnerabilities": ("3", "2", "2"),
    "new_vulnerabilities": ("1", "0", "0"),
    "code_smells": ("640", "630", "611"),
    "duplicated_lines_density": ("9.5", "9.1", "8.9"),
    "reliability_rating": ("5.0", "4.0", "3.0"),
    "security_rating": ("3.0", "3.0", "3.0"),
    "sqale_rating": ("2.0", "2.0", "2.0"),
    "security_hotspots_reviewed": ("0.0", "11.1", "11.1"),
    "ncloc": ("23100", "23800", "23950"),
    "sqale_index": ("42000", "41800", "41300"),
    "alert_status": ("OK", "ERROR", "OK"),
}


def history_page(metrics: str, page: int, size: int = 1000, dates: tuple[str, ...] = DATES) -> dict[str, Any]:
    """search_history as SonarQube answers it: every asked metric, one entry per analysis."""
    chunk = list(range(len(dates)))[(page - 1) * size : page * size]
    measures = []
    for key in metrics.split(","):
        values = HISTORY_VALUES.get(key, (None,) * len(dates))
        history = []
        for i in chunk:
            entry = {"date": dates[i]}
            if values[i] is not None:
                entry["value"] = values[i]
            history.append(entry)
        measures.append({"metric": key, "history": history})
    return {"paging": {"pageIndex": page, "pageSize": size, "total": len(dates)}, "measures": measures}


class RecordedSonar(SonarQubeHook):
    """A SonarQubeHook whose HTTP answers are recorded payloads (by path); records the calls."""

    def __init__(self, answers: dict[str, Any]) -> None:
        super().__init__("sonarqube_recorded")
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        params = dict(kwargs["params"])
        self.calls.append((path, params))
        answer = self.answers[path]
        if callable(answer):
            answer = answer(params)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def rows_by_metric(result) -> dict[str, tuple[str, float | None, str]]:
    return {r["metric"]: (r["value_raw"], r["value"], r["unit"]) for r in result.rows}


# -- the latest interval: current measures and the gate --------------------------------------------
def test_latest_interval_reads_the_current_measures_and_the_gate() -> None:
    hook = RecordedSonar({"/api/measures/component": MEASURES, "/api/qualitygates/project_status": GATE})
    result = sonarqube_figures(hook, "web", "acme_web", START, END, latest=True)
    assert result.ok
    assert rows_by_metric(result) == {
        "coverage": ("64.1", 64.1, "%"),
        "new_coverage": ("61.4", 61.4, "%"),
        "bugs": ("17", 17.0, "count"),
        "vulnerabilities": ("2", 2.0, "count"),
        "new_vulnerabilities": ("1", 1.0, "count"),
        "code_smells": ("611", 611.0, "count"),
        "duplicated_lines_density": ("8.9", 8.9, "%"),
        "reliability_rating": ("4.0", 4.0, "rating"),
        "security_rating": ("3.0", 3.0, "rating"),
        "maintainability_rating": ("2.0", 2.0, "rating"),
        "security_hotspots_reviewed": ("11.1", 11.1, "%"),
        "ncloc": ("23950", 23950.0, "lines"),
        "technical_debt": ("41300", 41300.0, "min"),
        "quality_gate": ("ERROR", 0.0, "status"),
    }
    assert {(r["day"], r["source"], r["project"]) for r in result.rows} == {(DAY, "sonarqube", "web")}
    assert result.details["letters"] == {
        "reliability_rating": "D",
        "security_rating": "C",
        "maintainability_rating": "B",
    }
    assert result.details["quality_gate"]["status"] == "ERROR"
    assert result.details["quality_gate"]["conditions"][0]["metricKey"] == "new_coverage"
    assert [path for path, _ in hook.calls] == ["/api/measures/component", "/api/qualitygates/project_status"]
    assert hook.calls[0][1] == {"component": "acme_web", "metricKeys": ",".join(sonar_keys())}
    assert hook.calls[1][1] == {"projectKey": "acme_web"}


def test_missing_measures_are_no_data_and_mqr_ratings_fill_in() -> None:
    mqr_only = {
        "component": {
            "key": "acme_infra",
            "measures": [
                {"metric": "bugs", "value": "0", "bestValue": True},
                {"metric": "software_quality_reliability_rating", "value": "1.0", "bestValue": True},
                {"metric": "software_quality_maintainability_rating", "value": "5.0", "bestValue": False},
            ],
        }
    }
    no_gate = {"projectStatus": {"status": "NONE", "ignoredConditions": False, "conditions": []}}
    hook = RecordedSonar({"/api/measures/component": mqr_only, "/api/qualitygates/project_status": no_gate})
    got = rows_by_metric(sonarqube_figures(hook, "infra", "acme_infra", START, END, latest=True))
    assert got["coverage"] == (NO_DATA, None, "%")
    assert got["bugs"] == ("0", 0.0, "count")
    assert got["reliability_rating"] == ("1.0", 1.0, "rating")  # software_quality_reliability_rating
    assert got["maintainability_rating"] == ("5.0", 5.0, "rating")
    assert got["security_rating"] == (NO_DATA, None, "rating")
    assert got["quality_gate"] == ("NONE", None, "status")  # no gate: no value, not a failure
    assert len(got) == len(NAMES)


def test_a_server_without_software_quality_metrics_is_asked_again() -> None:
    unknown = ApiError(
        "SonarQube",
        "GET",
        "/api/measures/component",
        404,
        "The following metric keys are not found: software_quality_reliability_rating, "
        "software_quality_security_rating, software_quality_maintainability_rating",
    )

    def component(params: dict[str, Any]) -> Any:
        return unknown if "software_quality" in params["metricKeys"] else MEASURES

    hook = RecordedSonar({"/api/measures/component": component, "/api/qualitygates/project_status": GATE})
    result = sonarqube_figures(hook, "web", "acme_web", START, END, latest=True)
    assert result.ok and rows_by_metric(result)["reliability_rating"] == ("4.0", 4.0, "rating")
    assert [p["metricKeys"].count("software_quality") for _, p in hook.calls[:2]] == [3, 0]


# -- a past day: the history -----------------------------------------------------------------------
def test_a_past_day_takes_the_last_analysis_before_its_end() -> None:
    hook = RecordedSonar({"/api/measures/search_history": lambda p: history_page(p["metrics"], int(p["p"]))})
    result = sonarqube_figures(hook, "web", "acme_web", START, END, latest=False)
    assert result.ok
    assert rows_by_metric(result) == {
        "coverage": (NO_DATA, None, "%"),  # that analysis had no coverage: what SonarQube showed that day
        "new_coverage": (NO_DATA, None, "%"),  # not in this server's history
        "bugs": ("18", 18.0, "count"),
        "vulnerabilities": ("2", 2.0, "count"),
        "new_vulnerabilities": ("0", 0.0, "count"),
        "code_smells": ("630", 630.0, "count"),
        "duplicated_lines_density": ("9.1", 9.1, "%"),
        "reliability_rating": ("4.0", 4.0, "rating"),
        "security_rating": ("3.0", 3.0, "rating"),
        "maintainability_rating": ("2.0", 2.0, "rating"),
        "security_hotspots_reviewed": ("11.1", 11.1, "%"),
        "ncloc": ("23800", 23800.0, "lines"),
        "technical_debt": ("41800", 41800.0, "min"),
        "quality_gate": ("ERROR", 0.0, "status"),
    }
    ((path, params),) = hook.calls  # one call: no current measures, no gate call
    assert path == "/api/measures/search_history"
    assert params["component"] == "acme_web"
    assert params["from"] == "2025-11-23T00:00:00+0000" and params["to"] == "2026-11-23T00:00:00+0000"
    assert params["metrics"] == ",".join([*sonar_keys(), "alert_status"])
    assert result.details["mode"] == "history" and result.details["letters"]["reliability_rating"] == "D"


def test_the_day_before_sees_the_older_analysis_and_paging_is_followed() -> None:
    hook = RecordedSonar({"/api/measures/search_history": lambda p: history_page(p["metrics"], int(p["p"]), size=2)})
    day_before = sonarqube_figures(
        hook, "web", "acme_web", START - dt.timedelta(days=1), START, latest=False, history_days=30
    )
    got = rows_by_metric(day_before)
    assert (got["coverage"], got["bugs"], got["quality_gate"]) == (
        ("60.0", 60.0, "%"),
        ("20", 20.0, "count"),
        ("OK", 1.0, "status"),
    )
    assert [p["p"] for _, p in hook.calls] == [1, 2]  # 3 analyses, pages of 2
    assert hook.calls[0][1]["from"] == "2026-10-23T00:00:00+0000"


def test_no_analysis_before_the_day_is_no_data_for_everything() -> None:
    hook = RecordedSonar({"/api/measures/search_history": lambda p: history_page(p["metrics"], 1)})
    result = sonarqube_figures(
        hook,
        "web",
        "acme_web",
        dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 2, tzinfo=dt.UTC),
        latest=False,
    )
    assert result.ok
    assert {r["metric"]: (r["value_raw"], r["value"]) for r in result.rows} == dict.fromkeys(NAMES, (NO_DATA, None))
    assert result.warnings == ["no SonarQube analysis of 'acme_web' in the 365 days before 2026-11-02 00:00:00+00:00"]


# -- errors ----------------------------------------------------------------------------------------
def test_token_refused_fails_the_source_for_the_project() -> None:
    refused = ApiError("SonarQube", "GET", "/api/measures/component", 401, "401 Unauthorized (empty body)")
    hook = RecordedSonar({"/api/measures/component": refused})
    result = sonarqube_figures(hook, "web", "acme_web", START, END, latest=True)
    assert result.rows == [] and result.source_failed
    assert result.errors[WHOLE_SOURCE].startswith(
        "SonarQube project 'acme_web': SonarQube GET /api/measures/component -> 401: SonarQube rejected the token"
    )
    assert result.not_collected == NAMES
    assert [path for path, _ in hook.calls] == ["/api/measures/component"]  # the gate is not asked


def test_unknown_project_is_named() -> None:
    missing = ApiError("SonarQube", "GET", "/api/measures/search_history", 404, "Component key 'acme_old' not found")
    hook = RecordedSonar({"/api/measures/search_history": missing})
    result = sonarqube_figures(hook, "old", "acme_old", START, END, latest=False)
    assert result.errors == {
        WHOLE_SOURCE: "SonarQube project 'acme_old': SonarQube GET /api/measures/search_history -> 404: SonarQube "
        "project 'acme_old' not found (or the token may not browse it); SonarQube said \"Component key 'acme_old' "
        'not found"'
    }
    assert result.problems()[0].startswith("old: sonarqube: SonarQube project 'acme_old'")


def test_a_failed_gate_call_fails_only_the_gate() -> None:
    down = ApiError("SonarQube", "GET", "/api/qualitygates/project_status", 503, "Service Unavailable")
    hook = RecordedSonar({"/api/measures/component": MEASURES, "/api/qualitygates/project_status": down})
    result = sonarqube_figures(hook, "web", "acme_web", START, END, latest=True)
    assert set(result.errors) == {"quality_gate"} and "-> 503" in result.errors["quality_gate"]
    assert "quality_gate" not in result.values() and result.values()["coverage"] == 64.1
    assert result.not_collected == ["quality_gate"]


def test_no_project_key_and_bugs() -> None:
    result = sonarqube_figures(RecordedSonar({}), "web", "", START, END, latest=True)
    assert result.errors == {WHOLE_SOURCE: "project 'web': no SonarQube project key"}
    with pytest.raises(KeyError):  # a programming error is raised, not recorded
        sonarqube_figures(RecordedSonar({}), "web", "acme_web", START, END, latest=True)


# -- units -----------------------------------------------------------------------------------------
def test_units() -> None:
    assert [rating_letter(v) for v in ("1.0", "2.0", "3.0", "4.0", "5.0", 1, "0.0", "6.0", None, "x")] == [
        "A",
        "B",
        "C",
        "D",
        "E",
        "A",
        None,
        None,
        None,
        None,
    ]
    assert [gate_value(s) for s in ("OK", "WARN", "ERROR", "NONE", None)] == [1.0, 0.5, 0.0, None, None]
    now = END + dt.timedelta(minutes=5)  # the daily run just after its interval
    assert is_latest_interval(START, END, now)
    assert is_latest_interval(START, END, START + dt.timedelta(hours=1))  # not over yet
    assert not is_latest_interval(START, END, END + dt.timedelta(days=1))  # the next interval is complete
    assert not is_latest_interval(START - dt.timedelta(days=7), END - dt.timedelta(days=7), now)  # backfill
    points = [(dt.datetime(2026, 11, 22, 10, tzinfo=dt.UTC), "1"), (END, "2")]
    assert value_at(points, END) == (True, "1")  # an analysis at the end itself is the next day's
    assert value_at(points, START) == (False, None)
