"""The health score: hand-computed expectations, no data, every sub-score boundary, and health.yaml."""

from __future__ import annotations

import ast
import json
import math
import textwrap
from pathlib import Path
from typing import Any

import pytest

from devops_automation.workflows.daily_project_metrics import health as h
from devops_automation.workflows.daily_project_metrics import metrics as m
from devops_automation.workflows.daily_project_metrics.health import HealthConfigError, compute_health
from devops_automation.workflows.daily_project_metrics.projects import HIGHER, LOWER, Slo

REPO = Path(__file__).resolve().parents[5]
SHIPPED = REPO / "include" / "config" / "health.yaml"
PACKAGE = REPO / "plugins" / "devops_automation" / "workflows" / "daily_project_metrics"

AVAILABILITY_SLO = Slo("availability", ">=", 99.9, HIGHER, "%")
P95_SLO = Slo("p95_latency", "<=", 0.25, LOWER, "s")

#: A project with every figure the score reads (the worked example of the README draft).
FULL: dict[str, Any] = {
    m.CI_SUCCESS_RATE: 0.93,  # >= 0.90 -> 8
    m.CI_MTTR: 5400,  # 1.5 h: < 1 d -> 7.5
    m.CI_DEPLOYMENTS_PER_DAY: 0.5,  # >= 1/7 -> 7.5
    m.CI_LEAD_TIME_P50: 172800,  # 2 d: < 7 d -> 7.5
    m.CI_CHANGE_FAILURE_RATE: 0.12,  # <= 0.15 -> 5
    m.CI_RECOVERY_TIME_P50: 1800,  # < 1 h -> 10
    m.SONAR_QUALITY_GATE: "OK",  # 1 -> 10
    m.SONAR_RELIABILITY_RATING: 2.0,  # B: 10 x (2 - 5) / (1 - 5) = 7.5
    m.SONAR_MAINTAINABILITY_RATING: 1.0,  # A: 10
    m.SONAR_COVERAGE: 65.0,  # 10 x (65 - 30) / (80 - 30) = 7
    m.dependabot_alerts("high"): 1,
    m.dependabot_alerts("medium"): 2,
    m.code_scanning_alerts("low"): 2,
    m.GITHUB_SECRET_SCANNING_ALERTS: 0,  # weighted 2 x 1 + 1 x 2 + 0.5 x 2 + 5 x 0 = 5 -> 10 - 5 = 5
    m.SONAR_SECURITY_RATING: 3.0,  # C: 5
    m.GITHUB_BRANCH_PROTECTION: 1,  # 10
    m.GITHUB_COMMITS_90D: 8,
    m.GITHUB_ISSUE_ACTIVITY_90D: 5,  # 8 + 5 = 13 -> 10
    m.GITHUB_ARCHIVED: 0,
    m.GITHUB_REPO_AGE_DAYS: 400,
    m.GITHUB_CONTRIBUTOR_ABSENCE: 2,  # >= 2 -> 5
    m.GITHUB_TTFR_P50: 36000,  # 10 h: <= 1 d -> 10
    m.PROMETHEUS_AVAILABILITY: 99.45,  # SLO >= 99.9 missed: zero point 100 - 10 x 0.1 = 99.0; (99.45-99)/0.9 -> 5
    m.PROMETHEUS_P95_LATENCY: 0.2,  # SLO <= 0.25 met -> 10
    m.PROMETHEUS_ERROR_RATE: 0.5,  # default SLO <= 1 met -> 10
    m.GITHUB_STARS: 310,  # read by no sub-score
}


def by_id(score: h.HealthScore) -> dict[str, h.Component]:
    return {f"{c.dimension}.{c.name}": c for c in score.components}


def score_of(metric: str, value: Any) -> float | None:
    """The sub-score that reads ``metric`` when it is the only figure given."""
    result = compute_health({metric: value})
    (rated,) = [c for c in result.components if c.score is not None] or [None]
    return None if rated is None else rated.score


# ---- hand-computed scores ---------------------------------------------------------------------------


def test_every_figure_given_hand_computed() -> None:
    result = compute_health(FULL, slos=[AVAILABILITY_SLO, P95_SLO])
    subs = {k: c.score for k, c in by_id(result).items()}
    assert subs == pytest.approx(
        {
            "delivery.ci_success_rate": 8,
            "delivery.ci_mttr": 7.5,
            "delivery.deployment_frequency": 7.5,
            "delivery.lead_time": 7.5,
            "delivery.change_failure_rate": 5,
            "delivery.recovery_time": 10,
            "quality.quality_gate": 10,
            "quality.reliability_rating": 7.5,
            "quality.maintainability_rating": 10,
            "quality.coverage": 7,
            "security.open_alerts": 5,
            "security.security_rating": 5,
            "security.branch_protection": 10,
            "activity.maintained": 10,
            "activity.contributor_absence": 5,
            "activity.time_to_first_response": 10,
            "reliability.slos": 25 / 3,  # (5 + 10 + 10) / 3
        }
    )
    # weights: delivery 7.5 + 5 + 2.5 + 2.5 + 5 + 2.5 = 25; quality 7.5 + 5 + 2.5 + 5 = 20;
    # security 7.5 + 5 + 7.5 = 20; activity 7.5 + 5 + 2.5 = 15; reliability 7.5; total 87.5
    # weight x score: delivery 7.5x8 + 5x7.5 + 2.5x7.5 + 2.5x7.5 + 5x5 + 2.5x10 = 60 + 37.5 + 18.75 + 18.75 + 25 + 25
    # = 185; quality 75 + 37.5 + 25 + 35 = 172.5; security 37.5 + 25 + 75 = 137.5; activity 75 + 25 + 25 = 125;
    # reliability 7.5 x 25/3 = 62.5; sum 682.5
    # score = 100 x 682.5 / (10 x 87.5) = 78.0
    assert result.score == 78.0
    assert result.weight_with_data == result.weight_total == 87.5
    assert result.dimensions() == {
        "delivery": 74.0,  # 185 / 250
        "quality": 86.25,  # 172.5 / 200
        "security": 68.75,  # 137.5 / 200
        "activity": pytest.approx(83.33),  # 125 / 150
        "reliability": pytest.approx(83.33),  # 62.5 / 75
    }
    assert result.grade is None  # the anchors define no grades
    assert result.formula_version == h.FORMULA_VERSION == "1"
    assert result.config_digest == h.DEFAULT_CONFIG.digest()


def test_partly_missing_counts_only_the_sub_scores_with_data() -> None:
    result = compute_health(
        {
            m.CI_SUCCESS_RATE: 0.75,  # >= 0.70 -> 4, weight 7.5
            m.SONAR_COVERAGE: 55,  # 10 x (55 - 30) / 50 = 5, weight 5
            m.GITHUB_BRANCH_PROTECTION: 0,  # 0 is data: 0, weight 7.5
            m.SONAR_BUGS: 3,  # read by no sub-score
        }
    )
    # 100 x (7.5 x 4 + 5 x 5 + 7.5 x 0) / (10 x (7.5 + 5 + 7.5)) = 100 x 55 / 200 = 27.5
    assert result.score == 27.5
    assert result.weight_with_data == 20.0
    assert result.weight_total == 87.5
    rated = [f"{c.dimension}.{c.name}" for c in result.components if c.has_data]
    assert rated == ["delivery.ci_success_rate", "quality.coverage", "security.branch_protection"]
    assert result.dimensions() == {
        "delivery": 40.0,  # 4 / 10
        "quality": 50.0,
        "security": 0.0,
        "activity": None,
        "reliability": None,
    }
    no_data = by_id(result)["delivery.ci_mttr"]
    assert (no_data.score, no_data.detail, dict(no_data.inputs)) == (None, "no data", {m.CI_MTTR: None})
    assert no_data.as_dict()["status"] == "no data"


def test_missing_data_lowers_nothing() -> None:
    base = {m.CI_SUCCESS_RATE: 0.93, m.SONAR_COVERAGE: 80}
    # 100 x (7.5 x 8 + 5 x 10) / (10 x 12.5) = 100 x 110 / 125 = 88
    assert compute_health(base).score == 88.0
    unreadable = {
        m.CI_MTTR: None,
        m.SONAR_RELIABILITY_RATING: float("nan"),
        m.PROMETHEUS_AVAILABILITY: "NaN",  # as Prometheus sends it
        m.GITHUB_CONTRIBUTOR_ABSENCE: float("inf"),
        m.SONAR_QUALITY_GATE: "NONE",  # a project without a gate
        m.GITHUB_COMMITS_90D: "n/a",
    }
    result = compute_health({**base, **unreadable})
    assert result.score == 88.0
    assert by_id(result)["reliability.slos"].score is None  # the default availability SLO has no value
    assert by_id(result)["reliability.slos"].slos[0]["status"] == "no data"


def test_all_missing_gives_no_score() -> None:
    for values in ({}, {m.GITHUB_STARS: 12}, dict.fromkeys(FULL)):
        result = compute_health(values)
        assert result.score is None and result.grade is None
        assert all(c.score is None for c in result.components)
        assert len(result.components) == len(h.SPECS) == 17
        assert result.weight_with_data == 0 and result.weight_total == 87.5
        assert result.summary() == "no data (0 of 17 sub-scores)"
        assert result.as_json()["score"] is None
        assert set(result.dimensions().values()) == {None}


def test_the_components_json_is_what_health_scores_stores() -> None:
    result = compute_health(FULL, slos=[AVAILABILITY_SLO, P95_SLO])
    stored = json.loads(json.dumps(result.as_json(), allow_nan=False))
    assert stored["formula_version"] == "1"
    assert stored["config_digest"] == h.DEFAULT_CONFIG.digest() and len(stored["config_digest"]) == 12
    assert stored["score"] == 78.0 and stored["grade"] is None
    assert [c["name"] for c in stored["components"]][:3] == ["ci_success_rate", "ci_mttr", "deployment_frequency"]
    first = stored["components"][0]
    assert first == {
        "dimension": "delivery",
        "name": "ci_success_rate",
        "weight": 7.5,
        "inputs": {"ci.success_rate": 0.93},
        "score": 8.0,
        "status": "ok",
        "detail": "0.93 >= 0.9 -> 8",
    }
    slos = stored["components"][-1]
    assert slos["inputs"] == {
        "prometheus.availability": 99.45,
        "prometheus.p95_latency": 0.2,
        "prometheus.error_rate": 0.5,
    }
    assert slos["slos"] == [
        {
            "slo": "availability >= 99.9",
            "value": 99.45,
            "default": False,
            "met": False,
            "score": 5.0,
            "zero_at": pytest.approx(99.0),
            "status": "ok",
        },
        {"slo": "p95_latency <= 0.25", "value": 0.2, "default": False, "met": True, "score": 10.0, "zero_at": 0.5,
         "status": "ok"},
        {"slo": "error_rate <= 1", "value": 0.5, "default": True, "met": True, "score": 10.0, "zero_at": 2.0,
         "status": "ok"},
    ]  # fmt: skip
    assert slos["detail"] == "mean of 3 SLO scores -> 8.333"
    assert result.summary() == (
        "78/100, 17 of 17 sub-scores; delivery 74, quality 86.25, security 68.75, activity 83.33, reliability 83.33"
    )


# ---- each sub-score's boundaries --------------------------------------------------------------------

H_ = 3600
D_ = 86400
W_ = 7 * D_


@pytest.mark.parametrize(
    "metric, value, expected",
    [
        # ci_success_rate: >= 0.95 10, >= 0.90 8, >= 0.80 6, >= 0.70 4, >= 0.50 2, else 0
        (m.CI_SUCCESS_RATE, 1.0, 10),
        (m.CI_SUCCESS_RATE, 0.95, 10),
        (m.CI_SUCCESS_RATE, 0.9499, 8),
        (m.CI_SUCCESS_RATE, 0.90, 8),
        (m.CI_SUCCESS_RATE, 0.8999, 6),
        (m.CI_SUCCESS_RATE, 0.80, 6),
        (m.CI_SUCCESS_RATE, 0.7999, 4),
        (m.CI_SUCCESS_RATE, 0.70, 4),
        (m.CI_SUCCESS_RATE, 0.6999, 2),
        (m.CI_SUCCESS_RATE, 0.50, 2),
        (m.CI_SUCCESS_RATE, 0.4999, 0),
        (m.CI_SUCCESS_RATE, 0.0, 0),
        # ci_mttr: < 1 h 10, < 1 d 7.5, < 1 w 5, else 2.5 (an edge belongs to the slower band)
        (m.CI_MTTR, 0, 10),
        (m.CI_MTTR, H_ - 1, 10),
        (m.CI_MTTR, H_, 7.5),
        (m.CI_MTTR, D_ - 1, 7.5),
        (m.CI_MTTR, D_, 5),
        (m.CI_MTTR, W_ - 1, 5),
        (m.CI_MTTR, W_, 2.5),
        (m.CI_MTTR, 90 * D_, 2.5),
        # deployment_frequency: >= 1/day 10, >= 1/7 7.5, >= 1/30 5, else 2.5
        (m.CI_DEPLOYMENTS_PER_DAY, 3.0, 10),
        (m.CI_DEPLOYMENTS_PER_DAY, 1.0, 10),
        (m.CI_DEPLOYMENTS_PER_DAY, 0.99, 7.5),
        (m.CI_DEPLOYMENTS_PER_DAY, 1 / 7, 7.5),
        (m.CI_DEPLOYMENTS_PER_DAY, 0.1428, 5),
        (m.CI_DEPLOYMENTS_PER_DAY, 1 / 30, 5),
        (m.CI_DEPLOYMENTS_PER_DAY, 0.0333, 2.5),
        (m.CI_DEPLOYMENTS_PER_DAY, 0.0, 2.5),
        # lead_time: < 1 d 10, < 7 d 7.5, < 30 d 5, else 2.5
        (m.CI_LEAD_TIME_P50, D_ - 1, 10),
        (m.CI_LEAD_TIME_P50, D_, 7.5),
        (m.CI_LEAD_TIME_P50, W_ - 1, 7.5),
        (m.CI_LEAD_TIME_P50, W_, 5),
        (m.CI_LEAD_TIME_P50, 30 * D_ - 1, 5),
        (m.CI_LEAD_TIME_P50, 30 * D_, 2.5),
        # change_failure_rate: <= 5 % 10, <= 10 % 7.5, <= 15 % 5, <= 30 % 2.5, else 0
        (m.CI_CHANGE_FAILURE_RATE, 0.0, 10),
        (m.CI_CHANGE_FAILURE_RATE, 0.05, 10),
        (m.CI_CHANGE_FAILURE_RATE, 0.0501, 7.5),
        (m.CI_CHANGE_FAILURE_RATE, 0.10, 7.5),
        (m.CI_CHANGE_FAILURE_RATE, 0.1001, 5),
        (m.CI_CHANGE_FAILURE_RATE, 0.15, 5),
        (m.CI_CHANGE_FAILURE_RATE, 0.1501, 2.5),
        (m.CI_CHANGE_FAILURE_RATE, 0.30, 2.5),
        (m.CI_CHANGE_FAILURE_RATE, 0.3001, 0),
        (m.CI_CHANGE_FAILURE_RATE, 1.0, 0),
        # recovery_time: as ci_mttr
        (m.CI_RECOVERY_TIME_P50, H_ - 1, 10),
        (m.CI_RECOVERY_TIME_P50, H_, 7.5),
        (m.CI_RECOVERY_TIME_P50, D_, 5),
        (m.CI_RECOVERY_TIME_P50, W_, 2.5),
        # quality_gate: OK 10, WARN 5, ERROR 0 (numbers or the status text)
        (m.SONAR_QUALITY_GATE, 1, 10),
        (m.SONAR_QUALITY_GATE, "OK", 10),
        (m.SONAR_QUALITY_GATE, 0.5, 5),
        (m.SONAR_QUALITY_GATE, "WARN", 5),
        (m.SONAR_QUALITY_GATE, 0.49, 0),
        (m.SONAR_QUALITY_GATE, "ERROR", 0),
        (m.SONAR_QUALITY_GATE, "NONE", None),
        # ratings: 10 x (rating - 5) / (1 - 5)
        (m.SONAR_RELIABILITY_RATING, 1, 10),
        (m.SONAR_RELIABILITY_RATING, 2, 7.5),
        (m.SONAR_RELIABILITY_RATING, "3.0", 5),  # SonarQube sends strings
        (m.SONAR_RELIABILITY_RATING, 4, 2.5),
        (m.SONAR_RELIABILITY_RATING, 5, 0),
        (m.SONAR_RELIABILITY_RATING, 1.5, 8.75),
        (m.SONAR_MAINTAINABILITY_RATING, 4, 2.5),
        (m.SONAR_SECURITY_RATING, 2, 7.5),
        # coverage: 10 x (coverage - 30) / 50, clamped
        (m.SONAR_COVERAGE, 0, 0),
        (m.SONAR_COVERAGE, 30, 0),
        (m.SONAR_COVERAGE, 31, 0.2),
        (m.SONAR_COVERAGE, 55, 5),
        (m.SONAR_COVERAGE, 80, 10),
        (m.SONAR_COVERAGE, 100, 10),
        # branch protection: on 10, off 0
        (m.GITHUB_BRANCH_PROTECTION, 1, 10),
        (m.GITHUB_BRANCH_PROTECTION, True, 10),
        (m.GITHUB_BRANCH_PROTECTION, 0, 0),
        (m.GITHUB_BRANCH_PROTECTION, False, 0),
        # contributor absence factor: >= 3 10, >= 2 5, else 0
        (m.GITHUB_CONTRIBUTOR_ABSENCE, 5, 10),
        (m.GITHUB_CONTRIBUTOR_ABSENCE, 3, 10),
        (m.GITHUB_CONTRIBUTOR_ABSENCE, 2, 5),
        (m.GITHUB_CONTRIBUTOR_ABSENCE, 1, 0),
        (m.GITHUB_CONTRIBUTOR_ABSENCE, 0, 0),
        # time to first response: <= 1 d 10, <= 2 d 7.5, <= 7 d 5, <= 30 d 2.5, else 0 (an edge: the better band)
        (m.GITHUB_TTFR_P50, D_, 10),
        (m.GITHUB_TTFR_P50, D_ + 1, 7.5),
        (m.GITHUB_TTFR_P50, 2 * D_, 7.5),
        (m.GITHUB_TTFR_P50, 2 * D_ + 1, 5),
        (m.GITHUB_TTFR_P50, W_, 5),
        (m.GITHUB_TTFR_P50, W_ + 1, 2.5),
        (m.GITHUB_TTFR_P50, 30 * D_, 2.5),
        (m.GITHUB_TTFR_P50, 30 * D_ + 1, 0),
        # maintained: 10 x activity / 13, at most 10
        (m.GITHUB_COMMITS_90D, 0, 0),
        (m.GITHUB_COMMITS_90D, 6.5, 5),
        (m.GITHUB_COMMITS_90D, 13, 10),
        (m.GITHUB_COMMITS_90D, 200, 10),
        (m.GITHUB_ISSUE_ACTIVITY_90D, 1, pytest.approx(10 / 13)),
        # open alerts: 10 - weighted, at least 0
        (m.dependabot_alerts("critical"), 0, 10),
        (m.dependabot_alerts("critical"), 1, 5),
        (m.dependabot_alerts("critical"), 2, 0),
        (m.dependabot_alerts("critical"), 3, 0),
        (m.code_scanning_alerts("high"), 4, 2),
        (m.dependabot_alerts("medium"), 10, 0),
        (m.code_scanning_alerts("low"), 3, 8.5),
        (m.GITHUB_SECRET_SCANNING_ALERTS, 1, 5),  # counted as a critical
    ],
)
def test_sub_score_boundaries(metric: str, value: Any, expected: float | None) -> None:
    assert score_of(metric, value) == expected


def test_maintained_follows_scorecard() -> None:
    def maintained(**values: Any) -> h.Component:
        keys = {
            "commits": m.GITHUB_COMMITS_90D,
            "issues": m.GITHUB_ISSUE_ACTIVITY_90D,
            "archived": m.GITHUB_ARCHIVED,
            "age": m.GITHUB_REPO_AGE_DAYS,
        }
        return by_id(compute_health({keys[k]: v for k, v in values.items()}))["activity.maintained"]

    both = maintained(commits=4, issues=2.5)  # 10 x 6.5 / 13 = 5
    assert both.score == 5.0
    assert both.detail == "4 commits + 2.5 issues with activity = 6.5 in 90 days; 10 x (6.5 - 0) / (13 - 0) -> 5"
    only_commits = maintained(commits=4)  # 10 x 4 / 13
    assert only_commits.score == pytest.approx(40 / 13)
    assert only_commits.detail.startswith("4 commits + no data (issues with activity) = 4 in 90 days")
    archived = maintained(commits=50, issues=30, archived=1)
    assert (archived.score, archived.detail) == (0.0, "archived: the lowest score (Scorecard Maintained)")
    assert maintained(archived=True).score == 0.0  # archived alone is enough
    young = maintained(commits=50, age=30)
    assert (young.score, young.detail) == (None, "no data: created 30 days ago, under 90")
    assert maintained(commits=13, age=90).score == 10.0  # 90 days old is assessed
    assert maintained(archived=0, age=400).score is None  # nothing to count


def test_open_alerts_add_every_kind_and_missing_kinds_add_nothing() -> None:
    values = {
        m.dependabot_alerts("critical"): 1,
        m.code_scanning_alerts("critical"): 0,
        m.code_scanning_alerts("high"): 1,
        m.GITHUB_SECRET_SCANNING_ALERTS: None,  # 403: no access
    }
    comp = by_id(compute_health(values))["security.open_alerts"]
    # weighted = 5 x (1 + 0) + 2 x 1 = 7 -> 10 - 7 = 3
    assert comp.score == pytest.approx(3.0)
    assert comp.detail == (
        "weighted 5 x 1 critical + 2 x 1 high + 1 x 0 medium + 0.5 x 0 low = 7; 10 x (7 - 10) / (0 - 10) -> 3 "
        "(6 of 9 alert figures: no data)"
    )
    assert comp.inputs[m.GITHUB_SECRET_SCANNING_ALERTS] is None
    assert len(comp.inputs) == 9


# ---- SLOs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "slo, value, expected, zero",
    [
        # higher-is-better %: zero point 100 - 10 x (100 - 99.9) = 99.0
        (AVAILABILITY_SLO, 99.95, 10, 99.0),
        (AVAILABILITY_SLO, 99.9, 10, 99.0),
        (AVAILABILITY_SLO, 99.45, 5, 99.0),  # 10 x (99.45 - 99.0) / 0.9
        (AVAILABILITY_SLO, 99.0, 0, 99.0),
        (AVAILABILITY_SLO, 90.0, 0, 99.0),
        # lower-is-better: zero point 2 x 0.25 = 0.5
        (P95_SLO, 0.25, 10, 0.5),
        (P95_SLO, 0.3, 8, 0.5),  # 10 x (0.5 - 0.3) / (0.5 - 0.25)
        (P95_SLO, 0.5, 0, 0.5),
        (P95_SLO, 3.0, 0, 0.5),
        # other higher-is-better units: zero point 0.5 x 100 = 50
        (Slo("rps", ">=", 100, HIGHER, "req/s"), 75, 5, 50),
        # a strict operator missed exactly at the target: the distance is 0, so 10
        (Slo("availability", ">", 99.9, HIGHER, "%"), 99.9, 10, 99.0),
        # degenerate targets: a 100 % target or a 0 target has no room: missed is 0
        (Slo("availability", ">=", 100, HIGHER, "%"), 99.99, 0, 100.0),
        (Slo("error_rate", "<=", 0, LOWER, "%"), 0.01, 0, 0.0),
    ],
)
def test_slo_scores(slo: Slo, value: float, expected: float, zero: float) -> None:
    got, zero_at = h.slo_score(slo, value)
    assert got == pytest.approx(expected)
    assert zero_at == pytest.approx(zero)


def test_default_slos_apply_only_to_figures_present_without_an_slo() -> None:
    values = {m.PROMETHEUS_AVAILABILITY: 99.95, m.PROMETHEUS_P95_LATENCY: 0.3}
    # availability: default >= 99.9, met -> 10; p95 has no default; error_rate absent: no default SLO
    comp = by_id(compute_health(values))["reliability.slos"]
    assert comp.score == 10.0
    assert [s["slo"] for s in comp.slos] == ["availability >= 99.9"]
    assert comp.slos[0]["default"] is True
    # the project's own SLO replaces the default: >= 99.99 missed by 99.95, zero point 100 - 10 x 0.01 = 99.9
    own = Slo("availability", ">=", 99.99, HIGHER, "%")
    comp = by_id(compute_health(values, slos=[own, P95_SLO]))["reliability.slos"]
    # availability: 10 x (99.95 - 99.9) / (99.99 - 99.9) = 5.556; p95: 10 x (0.5 - 0.3) / 0.25 = 8; mean 6.778
    assert comp.score == pytest.approx((50 / 9 + 8) / 2)
    assert [s["default"] for s in comp.slos] == [False, False]
    # no SLO at all: no data
    assert by_id(compute_health({m.PROMETHEUS_P95_LATENCY: 0.3}))["reliability.slos"].detail == "no data: no SLOs"


# ---- configuration ----------------------------------------------------------------------------------


def parse(text: str) -> h.HealthConfig:
    return h.parse_health_config(textwrap.dedent(text).lstrip("\n"))


def problems(text: str) -> list[str]:
    with pytest.raises(HealthConfigError) as info:
        parse(text)
    return [str(p) for p in info.value.problems]


def test_the_shipped_file_is_the_defaults() -> None:
    config = h.load_health_config(SHIPPED)
    assert config == h.DEFAULT_CONFIG
    assert config.digest() == h.DEFAULT_CONFIG.digest()
    assert config.source == "health.yaml"
    assert [(s.id, s.weight) for s in config.subscores][:2] == [
        ("delivery.ci_success_rate", 7.5),
        ("delivery.ci_mttr", 5.0),
    ]
    # every threshold comes from the file, with its line
    assert all(t.line > 0 for t in config.thresholds)
    assert compute_health(FULL, config, slos=[AVAILABILITY_SLO, P95_SLO]).score == 78.0


def test_the_shipped_file_documents_the_format() -> None:
    header = SHIPPED.read_text().split("\nsubscores:")[0]
    for word in ("weight:", "bands:", "else:", "linear:", "zero_at:", "default_targets:", "grades:", "thresholds:",
                 "relative_to: slo", "critical, warning:", "health.yaml line"):  # fmt: skip
        assert word in header, word


def test_weights_scales_and_grades_change_the_score() -> None:
    config = parse(
        """
        subscores:
          delivery:
            ci_success_rate:
              weight: critical
              linear: {zero: 0.5, full: 1.0}
          quality:
            coverage:
              weight: 0              # off
          security:
            branch_protection:
              weight: 2
        grades:
          - {min: 80, grade: A}
          - {min: 50, grade: B}
          - {min: 0, grade: F}
        """
    )
    values = {m.CI_SUCCESS_RATE: 0.9, m.SONAR_COVERAGE: 30, m.GITHUB_BRANCH_PROTECTION: 1}
    result = compute_health(values, config)
    # success: 10 x (0.9 - 0.5) / 0.5 = 8, weight 10; coverage off; branch protection 10, weight 2
    # 100 x (10 x 8 + 2 x 10) / (10 x 12) = 100 x 100 / 120 = 83.33
    assert result.score == pytest.approx(83.33)
    assert result.grade == "A"
    assert "quality.coverage" not in by_id(result)
    assert compute_health({m.CI_SUCCESS_RATE: 0.8}, config).grade == "B"  # 10 x 0.3 / 0.5 = 6 -> 60
    assert compute_health({m.CI_SUCCESS_RATE: 0.6}, config).grade == "F"  # 20
    assert config.digest() != h.DEFAULT_CONFIG.digest()
    # what the file leaves out keeps its default
    assert config.subscore("delivery.ci_mttr") == h.DEFAULT_CONFIG.subscore("delivery.ci_mttr")
    assert config.thresholds == h.DEFAULT_CONFIG.thresholds


def test_extra_settings_of_open_alerts_maintained_and_slos() -> None:
    config = parse(
        """
        subscores:
          security:
            open_alerts:
              penalties: {critical: 10, low: 0}
              secret_scanning_as: high
          activity:
            maintained:
              min_age_days: 0
          reliability:
            slos:
              zero_at: {percent_budget: 5}
              default_targets: {error_rate: "< 2"}
        """
    )
    assert config.penalties == h.AlertPenalties(critical=10, high=2, medium=1, low=0, secret_as="high")
    assert config.maintained_min_age_days == 0
    assert config.slo_scoring.percent_budget == 5 and config.slo_scoring.lower_is_better == 2
    assert config.slo_scoring.default_targets == (("error_rate", "<", 2.0),)
    values = {m.dependabot_alerts("critical"): 0.5, m.GITHUB_SECRET_SCANNING_ALERTS: 1, m.dependabot_alerts("low"): 9}
    # 10 x 0.5 + 2 x 1 (secret as high) + 0 x 9 = 7 -> 3
    assert by_id(compute_health(values, config))["security.open_alerts"].score == pytest.approx(3.0)
    # no default for availability any more; error_rate < 2 missed at 3: zero 4, 10 x (4 - 3) / (4 - 2) = 5
    slos = by_id(compute_health({m.PROMETHEUS_AVAILABILITY: 90, m.PROMETHEUS_ERROR_RATE: 3}, config))
    assert slos["reliability.slos"].score == 5.0
    assert (
        by_id(compute_health({m.GITHUB_COMMITS_90D: 13, m.GITHUB_REPO_AGE_DAYS: 1}, config))[
            "activity.maintained"
        ].score
        == 10.0
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "health.yaml line 1: the file is empty: expected a mapping with subscores, grades and/or thresholds"),
        ("subscore: {}\n", "health.yaml line 1, subscore: unknown field (did you mean subscores?)"),
        (
            "subscores:\n  deliver: {}\n",
            "health.yaml line 2, subscores.deliver: unknown field (did you mean delivery?); the dimensions are",
        ),
        (
            "subscores:\n  delivery:\n    ci_success: {weight: high}\n",
            (
                "health.yaml line 3, subscores.delivery.ci_success: unknown field (did you mean ci_success_rate?); "
                "delivery has ci_success_rate, ci_mttr"
            ),
        ),
        (
            "subscores:\n  delivery:\n    ci_mttr:\n      weight: huge\n",
            (
                "health.yaml line 4, subscores.delivery.ci_mttr.weight: must be critical, high, medium, low or a "
                'number from 0 (off) to 1000, got "huge"'
            ),
        ),
        (
            "subscores:\n  delivery:\n    ci_mttr:\n      weight: -1\n",
            "health.yaml line 4, subscores.delivery.ci_mttr.weight: must be critical, high, medium, low",
        ),
        (
            "subscores:\n  delivery:\n    ci_mttr:\n      wieght: 2\n",
            "health.yaml line 4, subscores.delivery.ci_mttr.wieght: unknown field (did you mean weight?)",
        ),
        (
            (
                "subscores:\n  delivery:\n    ci_success_rate:\n      bands:\n        - {min: 0.9, score: 10}\n"
                "        - {min: 0.95, score: 8}\n"
            ),
            (
                "health.yaml line 6, subscores.delivery.ci_success_rate.bands[1].min: must be below the band before it "
                "(0.9): bands go from the best to the worst"
            ),
        ),
        (
            (
                "subscores:\n  delivery:\n    ci_success_rate:\n      bands:\n        - {min: 0.9, score: 8}\n"
                "        - {min: 0.8, score: 9}\n"
            ),
            (
                "health.yaml line 6, subscores.delivery.ci_success_rate.bands[1].score: must not be above the score of "
                "the band before it (8)"
            ),
        ),
        (
            "subscores:\n  delivery:\n    ci_mttr:\n      bands:\n        - {min: 3600, score: 10}\n",
            (
                "health.yaml line 5, subscores.delivery.ci_mttr.bands[0].min: min is for a higher_is_better value; "
                "this one is lower_is_better: use max or below"
            ),
        ),
        (
            "subscores:\n  delivery:\n    ci_mttr:\n      bands:\n        - {below: 3600, score: 11}\n",
            "health.yaml line 5, subscores.delivery.ci_mttr.bands[0].score: must be a number from 0 to 10, got 11",
        ),
        (
            "subscores:\n  delivery:\n    ci_mttr:\n      bands:\n        - {score: 10}\n",
            "health.yaml line 5, subscores.delivery.ci_mttr.bands[0]: give one bound: max or below",
        ),
        (
            "subscores:\n  delivery:\n    ci_mttr:\n      bands:\n        - {below: 3600, max: 60, score: 10}\n",
            "health.yaml line 5, subscores.delivery.ci_mttr.bands[0]: give one bound, not below and max",
        ),
        (
            "subscores:\n  delivery:\n    ci_mttr:\n      bands:\n        - {below: 3600}\n",
            "health.yaml line 5, subscores.delivery.ci_mttr.bands[0].score: required (the score 0-10",
        ),
        (
            "subscores:\n  delivery:\n    ci_mttr:\n      bands: []\n",
            "health.yaml line 4, subscores.delivery.ci_mttr.bands: must be a non-empty list of {max: <bound>",
        ),
        (
            "subscores:\n  delivery:\n    ci_mttr:\n      bands:\n        - {below: 3600, score: 5}\n      else: 7\n",
            "health.yaml line 6, subscores.delivery.ci_mttr.else: must not be above the last band's score (5)",
        ),
        (
            "subscores:\n  delivery:\n    ci_mttr:\n      else: 1\n",
            "health.yaml line 4, subscores.delivery.ci_mttr.else: only with bands",
        ),
        (
            "subscores:\n  quality:\n    coverage:\n      linear: {zero: 80, full: 30}\n",
            (
                "health.yaml line 4, subscores.quality.coverage.linear.full: must be above zero (80): the value is "
                "higher_is_better"
            ),
        ),
        (
            "subscores:\n  quality:\n    coverage:\n      linear: {zero: 30}\n",
            "health.yaml line 4, subscores.quality.coverage.linear.full: required (the value that scores 10)",
        ),
        (
            "subscores:\n  quality:\n    coverage:\n      linear: {zero: 30, full: 80}\n      bands: []\n",
            "health.yaml line 4, subscores.quality.coverage.linear: give bands or linear, not both",
        ),
        (
            "subscores:\n  security:\n    open_alerts:\n      penalties: {severe: 3}\n",
            "health.yaml line 4, subscores.security.open_alerts.penalties.severe: unknown field",
        ),
        (
            "subscores:\n  security:\n    open_alerts:\n      secret_scanning_as: urgent\n",
            (
                "health.yaml line 4, subscores.security.open_alerts.secret_scanning_as: must be one of critical, high, "
                'medium, low, got "urgent"'
            ),
        ),
        (
            "subscores:\n  reliability:\n    slos:\n      bands: []\n",
            (
                "health.yaml line 4, subscores.reliability.slos.bands: unknown field; reliability.slos takes weight, "
                "zero_at, default_targets, description"
            ),
        ),
        (
            "subscores:\n  reliability:\n    slos:\n      zero_at: {lower_is_better: 1}\n",
            "health.yaml line 4, subscores.reliability.slos.zero_at.lower_is_better: must be a number above 1, got 1",
        ),
        (
            "subscores:\n  reliability:\n    slos:\n      zero_at: {higher_is_better: 1.5}\n",
            (
                "health.yaml line 4, subscores.reliability.slos.zero_at.higher_is_better: must be a number above 0 and "
                "below 1, got 1.5"
            ),
        ),
        (
            "subscores:\n  reliability:\n    slos:\n      default_targets: {latency: 1}\n",
            (
                "health.yaml line 4, subscores.reliability.slos.default_targets.latency: unknown field (did you mean "
                "p95_latency?); defaults exist for availability, error_rate, p95_latency"
            ),
        ),
        (
            "subscores:\n  reliability:\n    slos:\n      default_targets:\n        availability: '<= 99'\n",
            (
                "health.yaml line 5, subscores.reliability.slos.default_targets.availability: the query is "
                'higher_is_better, so the operator must be >= or >, got "<= 99"'
            ),
        ),
        (
            "grades:\n  - {min: 90, grade: A}\n  - {min: 95, grade: B}\n  - {min: 0, grade: C}\n",
            "health.yaml line 3, grades[1].min: must be below the grade before it (90)",
        ),
        (
            "grades:\n  - {min: 90, grade: A}\n  - {min: 50, grade: B}\n",
            "health.yaml line 3, grades[1].min: the last grade must have min: 0 (every score gets one)",
        ),
        (
            "grades:\n  - {min: 90, grade: A}\n  - {min: 0, grade: A}\n",
            'health.yaml line 3, grades[1].grade: duplicate grade "A"',
        ),
        (
            "grades:\n  - {min: 0, grade: 'A plus'}\n",
            "health.yaml line 2, grades[0].grade: must be 1 to 8 characters without spaces",
        ),
        (
            "grades:\n  - {min: 0, letter: A}\n",
            "health.yaml line 2, grades[0].letter: unknown field; a grade takes min and grade",
        ),
        (
            "subscores:\n  delivery:\n    ci_mttr: {weight: 1}\n    ci_mttr: {weight: 2}\n",
            "health.yaml line 4, subscores.delivery.ci_mttr: duplicate key (first at line 3)",
        ),
    ],
)
def test_bad_health_files_name_file_line_and_field(text: str, expected: str) -> None:
    found = problems(text)
    assert any(p.startswith(expected) for p in found), found


def test_a_bad_threshold_section_is_reported_with_the_rest() -> None:
    found = problems(
        """
        subscores:
          delivery:
            ci_mttr: {weight: heavy}
        thresholds:
          prometheus.queue_depth:
            critical: 100
        """
    )
    assert found == [
        (
            "health.yaml line 3, subscores.delivery.ci_mttr.weight: must be critical, high, medium, low or a number "
            'from 0 (off) to 1000, got "heavy"'
        ),
        (
            "health.yaml line 6, thresholds.prometheus.queue_depth.direction: required for prometheus.queue_depth "
            "(higher_is_better or lower_is_better)"
        ),
    ]


def test_load_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "team-health.yaml"
    path.write_text("subscores:\n  quality:\n    coverage: {weight: lots}\n")
    with pytest.raises(HealthConfigError, match=r"^team-health.yaml line 3, subscores.quality.coverage.weight: "):
        h.load_health_config(path)


# ---- the modules stay plain Python ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        *(PACKAGE / name for name in ("projects.py", "health.py", "thresholds.py", "metrics.py")),
        REPO / "plugins" / "devops_automation" / "yaml_config.py",
    ],
    ids=lambda p: p.name,
)
def test_no_airflow_and_no_other_workflow_is_imported(path: Path) -> None:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    assert names, path
    assert not [n for n in names if n == "airflow" or n.startswith("airflow.")]
    workflows = [n for n in names if n.startswith("devops_automation.workflows.")]
    assert all(n.startswith("devops_automation.workflows.daily_project_metrics") for n in workflows), workflows


def test_metric_catalogue_and_rows() -> None:
    assert m.CATALOGUE[m.SONAR_COVERAGE].unit == "%"
    assert (m.CATALOGUE[m.CI_MTTR].source, m.CATALOGUE[m.CI_MTTR].metric) == ("ci", "mttr_s")
    # every input of the score is in the catalogue, with the direction the sub-score rates it in
    for spec in h.SPECS:
        for metric in spec.inputs:
            assert metric in m.CATALOGUE, metric
    rows = [
        {"source": "sonarqube", "metric": "coverage", "value": 81.5},
        {"source": "prometheus", "metric": "availability", "value": None},
        {"source": "sonarqube", "metric": "quality_gate", "value": 0.0, "value_raw": "ERROR"},
    ]
    values = m.values_from_rows(rows)
    assert values == {"sonarqube.coverage": 81.5, "prometheus.availability": None, "sonarqube.quality_gate": 0.0}
    with pytest.raises(ValueError, match=r"two rows for 'sonarqube\.coverage'"):
        m.values_from_rows(rows + rows[:1])
    assert [m.number(v) for v in (True, "12", " 3.5 ", "ok", "NaN", "+Inf", math.nan, None, [1])] == [
        1.0, 12.0, 3.5, 1.0, None, None, None, None, None,
    ]  # fmt: skip


def test_the_collectors_write_the_names_the_score_and_the_thresholds_read() -> None:
    from devops_automation.workflows.daily_project_metrics import github_metrics, sonarqube_metrics
    from devops_automation.workflows.daily_project_metrics.thresholds import DEFAULT_THRESHOLDS

    written = (
        {m.key("github", f) for f in github_metrics.ALL_FIGURES}
        | {m.key("sonarqube", f) for f in sonarqube_metrics.FIGURES}
        | {m.key("sonarqube", sonarqube_metrics.GATE_METRIC)}
    )
    assert written - set(m.CATALOGUE) == set()
    read = {k for spec in h.SPECS for k in spec.inputs if m.CATALOGUE[k].source in ("github", "sonarqube")}
    assert read - written == set()
    alerted = {t.metric for t in DEFAULT_THRESHOLDS if m.CATALOGUE[t.metric].source in ("github", "sonarqube")}
    assert alerted - written <= {m.SONAR_NEW_VULNERABILITIES}  # not collected (yet): that threshold stays silent


# ---- alert routes (alerts: section) ----------------------------------------------------------------


def test_alert_routes_default_to_the_alerts_channel_and_parse_every_field() -> None:
    assert h.load_health_config(SHIPPED).routes == h.AlertRoutes("#alerts", None, (), "health-alert")
    cfg = h.parse_health_config(
        "alerts:\n  slack: '#ops'\n  telegram: '-100123'\n  email: [a@example.com, b@example.com]\n  issue_label: sre\n"
    )
    assert cfg.routes == h.AlertRoutes("#ops", "-100123", ("a@example.com", "b@example.com"), "sre")
    assert cfg.routes.targets() == [
        ("slack", "#ops"),
        ("telegram", "-100123"),
        ("email", "a@example.com, b@example.com"),
    ]
    assert h.parse_health_config("alerts:\n  slack: null\n").routes.targets() == []


def test_alert_routes_errors_name_line_and_field() -> None:
    with pytest.raises(HealthConfigError) as err:
        h.parse_health_config("alerts:\n  slack: '#ops'\n  email: [not-an-address]\n  pager: x\n")
    text = str(err.value)
    assert 'health.yaml line 3, alerts.email[0]: must be an e-mail address, got "not-an-address"' in text
    assert "health.yaml line 4, alerts.pager: unknown field" in text
