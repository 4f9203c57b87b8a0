"""Alert thresholds: the defaults of the anchors, evaluate_thresholds at every edge, and the file's errors."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest

from devops_automation.workflows.daily_project_metrics import health as h
from devops_automation.workflows.daily_project_metrics import metrics as m
from devops_automation.workflows.daily_project_metrics.health import HealthConfigError
from devops_automation.workflows.daily_project_metrics.projects import HIGHER, LOWER, Slo
from devops_automation.workflows.daily_project_metrics.thresholds import (
    DEFAULT_THRESHOLDS,
    Breach,
    Limit,
    Threshold,
    evaluate_thresholds,
)

P95_SLO = Slo("p95_latency", "<=", 0.25, LOWER, "s")


def level(metric: str, value: Any, slos: tuple[Slo, ...] = ()) -> tuple[str, float, str] | None:
    breaches = evaluate_thresholds({metric: value}, h.DEFAULT_CONFIG, slos=slos)
    if not breaches:
        return None
    (b,) = breaches
    return b.level, b.threshold, b.op


def parse(text: str) -> h.HealthConfig:
    return h.parse_health_config(textwrap.dedent(text).lstrip("\n"))


def problems(text: str) -> list[str]:
    with pytest.raises(HealthConfigError) as info:
        parse(text)
    return [str(p) for p in info.value.problems]


def test_the_defaults_are_the_anchors_table() -> None:
    table = {t.metric: (t.direction, t.critical, t.warning, t.relative_to) for t in DEFAULT_THRESHOLDS}
    assert table == {
        "prometheus.availability": (HIGHER, Limit("<", 99.0), Limit("<", 99.9), None),
        "prometheus.error_rate": (LOWER, Limit(">", 5), Limit(">", 1), None),
        "prometheus.p95_latency": (LOWER, Limit(">", 2), Limit(">", 1), "slo"),
        "sonarqube.coverage": (HIGHER, Limit("<", 50), Limit("<", 70), None),
        "sonarqube.reliability_rating": (LOWER, Limit(">=", 4), Limit(">=", 3), None),
        "sonarqube.security_rating": (LOWER, Limit(">=", 4), Limit(">=", 3), None),
        "sonarqube.quality_gate": (HIGHER, Limit("<=", 0), None, None),
        "sonarqube.new_vulnerabilities": (LOWER, Limit(">", 0), None, None),
        "github.closure_ratio_90d": (HIGHER, Limit("<", 0.5), Limit("<", 0.8), None),
        "github.contributor_absence_factor": (HIGHER, Limit("<=", 1), Limit("<=", 2), None),
        "health.score": (HIGHER, Limit("<", 40), Limit("<", 60), None),
        "github.commits_90d": (HIGHER, Limit("<=", 0), Limit("<", 13), None),
    }


@pytest.mark.parametrize(
    "metric, value, expected",
    [
        # uptime: < 99.0 critical, < 99.9 warning (strict: the edge itself is the better level)
        (m.PROMETHEUS_AVAILABILITY, 100, ("ok", 99.9, "<")),
        (m.PROMETHEUS_AVAILABILITY, 99.9, ("ok", 99.9, "<")),
        (m.PROMETHEUS_AVAILABILITY, 99.89, ("warning", 99.9, "<")),
        (m.PROMETHEUS_AVAILABILITY, 99.0, ("warning", 99.9, "<")),
        (m.PROMETHEUS_AVAILABILITY, 98.99, ("critical", 99.0, "<")),
        (m.PROMETHEUS_AVAILABILITY, "98.5", ("critical", 99.0, "<")),  # Prometheus sends strings
        # error rate %: > 5 critical, > 1 warning
        (m.PROMETHEUS_ERROR_RATE, 1, ("ok", 1, ">")),
        (m.PROMETHEUS_ERROR_RATE, 1.01, ("warning", 1, ">")),
        (m.PROMETHEUS_ERROR_RATE, 5, ("warning", 1, ">")),
        (m.PROMETHEUS_ERROR_RATE, 5.01, ("critical", 5, ">")),
        # coverage: < 50 critical, < 70 warning
        (m.SONAR_COVERAGE, 70, ("ok", 70, "<")),
        (m.SONAR_COVERAGE, 69.9, ("warning", 70, "<")),
        (m.SONAR_COVERAGE, 50, ("warning", 70, "<")),
        (m.SONAR_COVERAGE, 49.9, ("critical", 50, "<")),
        # ratings: >= D (4) critical, >= C (3) warning (inclusive)
        (m.SONAR_RELIABILITY_RATING, 2, ("ok", 3, ">=")),
        (m.SONAR_RELIABILITY_RATING, 3, ("warning", 3, ">=")),
        (m.SONAR_RELIABILITY_RATING, 4, ("critical", 4, ">=")),
        (m.SONAR_SECURITY_RATING, 5, ("critical", 4, ">=")),
        # quality gate: ERROR critical
        (m.SONAR_QUALITY_GATE, "ERROR", ("critical", 0, "<=")),
        (m.SONAR_QUALITY_GATE, 0.5, ("ok", 0, "<=")),
        (m.SONAR_QUALITY_GATE, "OK", ("ok", 0, "<=")),
        # new vulnerabilities: > 0 critical
        (m.SONAR_NEW_VULNERABILITIES, 0, ("ok", 0, ">")),
        (m.SONAR_NEW_VULNERABILITIES, 1, ("critical", 0, ">")),
        # closure ratio: < 0.5 critical, < 0.8 warning
        (m.GITHUB_CLOSURE_RATIO_90D, 0.8, ("ok", 0.8, "<")),
        (m.GITHUB_CLOSURE_RATIO_90D, 0.5, ("warning", 0.8, "<")),
        (m.GITHUB_CLOSURE_RATIO_90D, 0.49, ("critical", 0.5, "<")),
        # contributor absence factor: 1 critical, 2 warning
        (m.GITHUB_CONTRIBUTOR_ABSENCE, 3, ("ok", 2, "<=")),
        (m.GITHUB_CONTRIBUTOR_ABSENCE, 2, ("warning", 2, "<=")),
        (m.GITHUB_CONTRIBUTOR_ABSENCE, 1, ("critical", 1, "<=")),
        (m.GITHUB_CONTRIBUTOR_ABSENCE, 0, ("critical", 1, "<=")),
        # the score: < 40 critical, < 60 warning
        (m.HEALTH_SCORE, 60, ("ok", 60, "<")),
        (m.HEALTH_SCORE, 59.99, ("warning", 60, "<")),
        (m.HEALTH_SCORE, 39.99, ("critical", 40, "<")),
        # commits in 90 days: 0 critical, < 13 warning
        (m.GITHUB_COMMITS_90D, 13, ("ok", 13, "<")),
        (m.GITHUB_COMMITS_90D, 12, ("warning", 13, "<")),
        (m.GITHUB_COMMITS_90D, 1, ("warning", 13, "<")),
        (m.GITHUB_COMMITS_90D, 0, ("critical", 0, "<=")),
        # no data gives nothing (an open alert is kept as it is)
        (m.PROMETHEUS_AVAILABILITY, None, None),
        (m.PROMETHEUS_AVAILABILITY, float("nan"), None),
        (m.PROMETHEUS_AVAILABILITY, "no data", None),
        (m.SONAR_QUALITY_GATE, "NONE", None),
        # a metric without a threshold gives nothing
        (m.GITHUB_STARS, 0, None),
    ],
)
def test_default_levels_at_every_edge(metric: str, value: Any, expected: tuple[str, float, str] | None) -> None:
    assert level(metric, value) == expected


def test_p95_latency_is_relative_to_the_projects_slo() -> None:
    # SLO 0.25 s: warning above 1 x 0.25, critical above 2 x 0.25 = 0.5
    assert level(m.PROMETHEUS_P95_LATENCY, 0.25, (P95_SLO,)) == ("ok", 0.25, ">")
    assert level(m.PROMETHEUS_P95_LATENCY, 0.3, (P95_SLO,)) == ("warning", 0.25, ">")
    assert level(m.PROMETHEUS_P95_LATENCY, 0.5, (P95_SLO,)) == ("warning", 0.25, ">")
    assert level(m.PROMETHEUS_P95_LATENCY, 0.51, (P95_SLO,)) == ("critical", 0.5, ">")
    assert level(m.PROMETHEUS_P95_LATENCY, 9.0) is None  # no SLO: nothing to compare with


def test_evaluate_keeps_the_thresholds_order_and_skips_disabled_ones() -> None:
    config = parse(
        """
        thresholds:
          prometheus.queue_depth:
            direction: lower_is_better
            warning: 100
          sonarqube.coverage:
            critical: 50
            enabled: false
          prometheus.availability:
            critical: "< 0"
            warning: "<= 99.5"
        """
    )
    values = {m.PROMETHEUS_AVAILABILITY: 99.5, m.SONAR_COVERAGE: 10, "prometheus.queue_depth": 150}
    breaches = evaluate_thresholds(values, config)
    assert breaches == [
        Breach("prometheus.queue_depth", "warning", 150.0, 100.0, ">", LOWER),
        Breach("prometheus.availability", "warning", 99.5, 99.5, "<=", HIGHER),
    ]
    # an iterable of thresholds works too; the dicts are JSON-serialisable
    again = evaluate_thresholds(values, config.thresholds)
    assert again == breaches
    assert json.loads(json.dumps([b.as_dict() for b in again]))[0] == {
        "metric": "prometheus.queue_depth",
        "level": "warning",
        "value": 150.0,
        "threshold": 100.0,
        "op": ">",
        "direction": LOWER,
    }


def test_the_section_replaces_the_defaults_and_null_means_none() -> None:
    only = parse("thresholds:\n  sonarqube.coverage: {critical: 40}\n")
    assert [t.metric for t in only.thresholds] == ["sonarqube.coverage"]
    assert only.thresholds[0] == Threshold("sonarqube.coverage", HIGHER, Limit("<", 40.0), None)
    assert only.thresholds[0].line == 2
    assert parse("thresholds:\n").thresholds == ()
    assert parse("grades:\n  - {min: 0, grade: A}\n").thresholds == DEFAULT_THRESHOLDS


@pytest.mark.parametrize(
    "entry, expected",
    [
        (
            "  queue_depth: {critical: 1}",
            (
                'health.yaml line 2, thresholds.queue_depth: must be "<source>.<metric>" with a source among github, '
                'gitlab, prometheus, sonarqube, ci, health, got "queue_depth"'
            ),
        ),
        (
            "  prometheus.queue_depth: {critical: 1}",
            "health.yaml line 2, thresholds.prometheus.queue_depth.direction: required for prometheus.queue_depth",
        ),
        (
            "  sonarqube.coverage: {direction: lower_is_better, critical: 50}",
            (
                "health.yaml line 2, thresholds.sonarqube.coverage.direction: sonarqube.coverage is higher_is_better, "
                'got "lower_is_better"'
            ),
        ),
        (
            "  sonarqube.coverage: {critical: '> 50'}",
            (
                "health.yaml line 2, thresholds.sonarqube.coverage.critical: the metric is higher_is_better, so the "
                'operator must be < or <=, got "> 50"'
            ),
        ),
        (
            "  sonarqube.coverage: {critical: fifty}",
            (
                "health.yaml line 2, thresholds.sonarqube.coverage.critical: must be a number, or an operator and a "
                'number such as "< 5", got "fifty"'
            ),
        ),
        (
            "  sonarqube.coverage: {critical: 70, warning: 50}",
            (
                "health.yaml line 2, thresholds.sonarqube.coverage.critical: must be at least as bad as warning (< 50) "
                "for a higher_is_better metric, got < 70"
            ),
        ),
        (
            "  sonarqube.coverage: {critical: '<= 50', warning: 50}",
            "health.yaml line 2, thresholds.sonarqube.coverage.critical: must be at least as bad as warning (< 50)",
        ),
        (
            "  prometheus.error_rate: {critical: 1, warning: 5}",
            (
                "health.yaml line 2, thresholds.prometheus.error_rate.critical: must be at least as bad as warning "
                "(> 5) for a lower_is_better metric, got > 1"
            ),
        ),
        (
            "  sonarqube.coverage: {enabled: false}",
            "health.yaml line 2, thresholds.sonarqube.coverage: give critical and/or warning",
        ),
        (
            "  sonarqube.coverage: {critical: 50, relative_to: slo}",
            "health.yaml line 2, thresholds.sonarqube.coverage.relative_to: only Prometheus figures have SLOs",
        ),
        (
            "  prometheus.p95_latency: {critical: 0, relative_to: slo}",
            (
                "health.yaml line 2, thresholds.prometheus.p95_latency.critical: relative to the SLO: a multiple of "
                "its target, above 0, got 0"
            ),
        ),
        (
            "  prometheus.p95_latency: {critical: 2, relative_to: target}",
            'health.yaml line 2, thresholds.prometheus.p95_latency.relative_to: must be one of slo, got "target"',
        ),
        (
            "  sonarqube.coverage: {critcal: 50}",
            (
                "health.yaml line 2, thresholds.sonarqube.coverage.critcal: unknown field (did you mean critical?); a "
                "threshold takes direction, critical, warning"
            ),
        ),
        (
            "  sonarqube.coverage: 50",
            "health.yaml line 2, thresholds.sonarqube.coverage: must be a mapping (critical, warning, direction",
        ),
        (
            "  sonarqube.coverage: {critical: 50, enabled: maybe}",
            'health.yaml line 2, thresholds.sonarqube.coverage.enabled: must be true or false, got "maybe"',
        ),
    ],
)
def test_bad_thresholds_name_file_line_and_field(entry: str, expected: str) -> None:
    found = problems(f"thresholds:\n{entry}\n")
    assert any(p.startswith(expected) for p in found), found


def test_every_bad_threshold_is_reported_at_once() -> None:
    found = problems(
        """
        thresholds:
          sonarqube.coverage:
            critical: high
          prometheus.availability:
            warning: 99.9
          prometheus.latency_ms:
            warning: 300
        """
    )
    assert [p.split(":")[0] for p in found] == [
        "health.yaml line 3, thresholds.sonarqube.coverage.critical",
        "health.yaml line 7, thresholds.prometheus.latency_ms.direction",
    ]
