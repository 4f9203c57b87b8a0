"""The names of the figures of ``daily_project_metrics``: one vocabulary for collectors, scores and alerts.

Pure Python (no Airflow, no database).

A figure is stored in ``project_metrics`` as ``(day, source, project, metric, value_raw, value, unit)``;
the health score and the alert thresholds read it as ``"<source>.<metric>"`` (:func:`key`), e.g.
``github.stars`` or ``prometheus.availability``. :data:`CATALOGUE` lists every name with its unit and
direction (``higher_is_better``, ``lower_is_better`` or ``None`` when neither is better). Prometheus
figures are the project's own query names (``prometheus.<name>``, unit and direction from
``projects.yaml``); the three conventional ones are listed here.

Values: numbers (``value``). Flags are 1/0; the SonarQube quality gate is 1 (OK), 0.5 (WARN, old
servers) or 0 (ERROR) with the status text in ``value_raw`` (a project without a gate, ``NONE``, has no
row). A figure that could not be read (no access, empty vector, NaN) has no row, or a row whose
``value`` is NULL: both are "no data", never 0.

Windows: "in the day" = the data interval; ``*_90d`` = the 90 days ending at the interval's end. The CI
figures come from ``ci_pipeline_analytics``'s tables over the window the DAG chooses (documented there).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

HIGHER = "higher_is_better"
LOWER = "lower_is_better"
SEVERITIES = ("critical", "high", "medium", "low")
SOURCES = ("github", "gitlab", "prometheus", "sonarqube", "ci", "health")


@dataclass(frozen=True)
class Metric:
    key: str  # "<source>.<metric>"
    unit: str
    direction: str | None
    description: str

    @property
    def source(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def metric(self) -> str:
        """The ``project_metrics.metric`` column: the key without its source."""
        return self.key.split(".", 1)[1]


def key(source: str, metric: str) -> str:
    """``"<source>.<metric>"``: how a stored figure is named in the score's and the thresholds' input."""
    return f"{source}.{metric}"


def prometheus_key(query_name: str) -> str:
    return key("prometheus", query_name)


# ---- GitHub --------------------------------------------------------------------------------------
GITHUB_STARS = "github.stars"
GITHUB_FORKS = "github.forks"
GITHUB_WATCHERS = "github.watchers"
GITHUB_OPEN_ISSUES = "github.open_issues"
GITHUB_OPEN_PRS = "github.open_prs"
GITHUB_ISSUES_OPENED = "github.issues_opened"
GITHUB_ISSUES_CLOSED = "github.issues_closed"
GITHUB_PRS_OPENED = "github.prs_opened"
GITHUB_PRS_MERGED = "github.prs_merged"
GITHUB_PRS_CLOSED = "github.prs_closed"
GITHUB_TIME_TO_MERGE_P50 = "github.time_to_merge_p50_s"
GITHUB_TTFR_P50 = "github.time_to_first_response_p50_s"
GITHUB_TTFR_P90 = "github.time_to_first_response_p90_s"
GITHUB_FIRST_RESPONSES = "github.first_responses"
GITHUB_COMMITS = "github.commits"
GITHUB_COMMITS_90D = "github.commits_90d"
GITHUB_ISSUE_ACTIVITY_90D = "github.issue_activity_90d"
GITHUB_ACTIVE_CONTRIBUTORS_90D = "github.active_contributors_90d"
GITHUB_CONTRIBUTOR_ABSENCE = "github.contributor_absence_factor"
GITHUB_CLOSURE_RATIO_90D = "github.closure_ratio_90d"
GITHUB_RELEASES = "github.releases"
GITHUB_LAST_RELEASE_AGE_DAYS = "github.last_release_age_days"
GITHUB_BRANCH_PROTECTION = "github.branch_protection"
GITHUB_ARCHIVED = "github.archived"
GITHUB_REPO_AGE_DAYS = "github.repo_age_days"
GITHUB_SECRET_SCANNING_ALERTS = "github.secret_scanning_alerts"


def dependabot_alerts(severity: str) -> str:
    return f"github.dependabot_alerts.{severity}"


def code_scanning_alerts(severity: str) -> str:
    return f"github.code_scanning_alerts.{severity}"


# ---- Prometheus (the conventional query names) ---------------------------------------------------
PROMETHEUS_AVAILABILITY = "prometheus.availability"
PROMETHEUS_ERROR_RATE = "prometheus.error_rate"
PROMETHEUS_P95_LATENCY = "prometheus.p95_latency"

# ---- SonarQube (metric = the SonarQube metric key, except the three named below) ----------------
SONAR_QUALITY_GATE = "sonarqube.quality_gate"
SONAR_COVERAGE = "sonarqube.coverage"
SONAR_NEW_COVERAGE = "sonarqube.new_coverage"
SONAR_BUGS = "sonarqube.bugs"
SONAR_VULNERABILITIES = "sonarqube.vulnerabilities"
SONAR_NEW_VULNERABILITIES = "sonarqube.new_vulnerabilities"
SONAR_CODE_SMELLS = "sonarqube.code_smells"
SONAR_DUPLICATED_LINES_DENSITY = "sonarqube.duplicated_lines_density"
SONAR_RELIABILITY_RATING = "sonarqube.reliability_rating"
SONAR_SECURITY_RATING = "sonarqube.security_rating"
SONAR_MAINTAINABILITY_RATING = "sonarqube.maintainability_rating"
SONAR_HOTSPOTS_REVIEWED = "sonarqube.security_hotspots_reviewed"
SONAR_NCLOC = "sonarqube.ncloc"
SONAR_TECHNICAL_DEBT = "sonarqube.technical_debt"
#: ``value`` of the quality gate per status (``value_raw`` keeps the text); NONE has no value.
QUALITY_GATE_VALUES = {"OK": 1.0, "WARN": 0.5, "ERROR": 0.0}

# ---- CI (from ci_pipeline_analytics's tables) -----------------------------------------------------
CI_SUCCESS_RATE = "ci.success_rate"
CI_FIRST_ATTEMPT_SUCCESS_RATE = "ci.first_attempt_success_rate"
CI_RUNS = "ci.runs"
CI_MTTR = "ci.mttr_s"
CI_FLAKY_JOBS = "ci.flaky_jobs"
CI_DEPLOYMENTS_PER_DAY = "ci.deployments_per_day"
CI_LEAD_TIME_P50 = "ci.lead_time_p50_s"
CI_CHANGE_FAILURE_RATE = "ci.change_failure_rate"
CI_RECOVERY_TIME_P50 = "ci.recovery_time_p50_s"

# ---- the score itself (for its alert threshold) ---------------------------------------------------
HEALTH_SCORE = "health.score"

_S = "s"
_N = "count"
_CATALOGUE: list[tuple[str, str, str | None, str]] = [
    (GITHUB_STARS, _N, HIGHER, "stargazers"),
    (GITHUB_FORKS, _N, HIGHER, "forks"),
    (GITHUB_WATCHERS, _N, HIGHER, "watchers (subscribers)"),
    (GITHUB_OPEN_ISSUES, _N, None, "open issues (pull requests not counted)"),
    (GITHUB_OPEN_PRS, _N, None, "open pull requests"),
    (GITHUB_ISSUES_OPENED, _N, None, "issues (not pull requests) opened in the day"),
    (GITHUB_ISSUES_CLOSED, _N, None, "issues (not pull requests) closed in the day"),
    (GITHUB_PRS_OPENED, _N, None, "pull requests opened in the day"),
    (GITHUB_PRS_MERGED, _N, HIGHER, "pull requests merged in the day"),
    (GITHUB_PRS_CLOSED, _N, None, "pull requests closed without merge in the day"),
    (GITHUB_TIME_TO_MERGE_P50, _S, LOWER, "median creation -> merge of the pull requests merged in the day"),
    (GITHUB_TTFR_P50, _S, LOWER, "median time to first response (a human who is not the author; CHAOSS)"),
    (GITHUB_TTFR_P90, _S, LOWER, "p90 time to first response"),
    (GITHUB_FIRST_RESPONSES, _N, None, "issues and pull requests whose first response came in the day"),
    (GITHUB_COMMITS, _N, HIGHER, "commits to the default branch in the day"),
    (GITHUB_COMMITS_90D, _N, HIGHER, "commits to the default branch in 90 days (Scorecard Maintained)"),
    (GITHUB_ISSUE_ACTIVITY_90D, _N, HIGHER, "issues created or closed in 90 days (Scorecard Maintained)"),
    (GITHUB_ACTIVE_CONTRIBUTORS_90D, _N, HIGHER, "distinct commit authors in 90 days (bots left out)"),
    (GITHUB_CONTRIBUTOR_ABSENCE, _N, HIGHER, "fewest authors making >= 50% of the commits in 90 days (CHAOSS)"),
    (GITHUB_CLOSURE_RATIO_90D, "ratio", HIGHER, "pull requests closed / opened in 90 days (CHAOSS)"),
    (GITHUB_RELEASES, _N, None, "releases published in the day"),
    (GITHUB_LAST_RELEASE_AGE_DAYS, "d", None, "days since the newest release"),
    (GITHUB_BRANCH_PROTECTION, "flag", HIGHER, "1 when the default branch is protected, else 0"),
    (GITHUB_ARCHIVED, "flag", None, "1 when the repository is archived, else 0"),
    (GITHUB_REPO_AGE_DAYS, "d", None, "days since the repository was created"),
    *[(dependabot_alerts(s), _N, LOWER, f"open Dependabot alerts of severity {s}") for s in SEVERITIES],
    *[(code_scanning_alerts(s), _N, LOWER, f"open code-scanning alerts of security severity {s}") for s in SEVERITIES],
    (GITHUB_SECRET_SCANNING_ALERTS, _N, LOWER, "open secret-scanning alerts"),
    (PROMETHEUS_AVAILABILITY, "%", HIGHER, "conventional query: availability, 0-100"),
    (PROMETHEUS_ERROR_RATE, "%", LOWER, "conventional query: share of failed requests, 0-100"),
    (PROMETHEUS_P95_LATENCY, _S, LOWER, "conventional query: p95 request latency"),
    (
        SONAR_QUALITY_GATE,
        "status",
        HIGHER,
        "quality gate (alert_status): 1 OK, 0.5 WARN, 0 ERROR; value_raw the status",
    ),
    (SONAR_COVERAGE, "%", HIGHER, "line and branch coverage"),
    (SONAR_NEW_COVERAGE, "%", HIGHER, "coverage on new code"),
    (SONAR_BUGS, _N, LOWER, "bugs"),
    (SONAR_VULNERABILITIES, _N, LOWER, "vulnerabilities"),
    (SONAR_NEW_VULNERABILITIES, _N, LOWER, "vulnerabilities on new code"),
    (SONAR_CODE_SMELLS, _N, LOWER, "code smells"),
    (SONAR_DUPLICATED_LINES_DENSITY, "%", LOWER, "duplicated lines"),
    (SONAR_RELIABILITY_RATING, "rating", LOWER, "reliability rating, 1 (A) .. 5 (E)"),
    (SONAR_SECURITY_RATING, "rating", LOWER, "security rating, 1 (A) .. 5 (E)"),
    (SONAR_MAINTAINABILITY_RATING, "rating", LOWER, "maintainability rating (sqale_rating), 1 (A) .. 5 (E)"),
    (SONAR_HOTSPOTS_REVIEWED, "%", HIGHER, "security hotspots reviewed"),
    (SONAR_NCLOC, "lines", None, "lines of code"),
    (SONAR_TECHNICAL_DEBT, "min", LOWER, "technical debt (sqale_index), minutes"),
    (CI_SUCCESS_RATE, "ratio", HIGHER, "CI success rate, 0-1 (definitions §3)"),
    (CI_FIRST_ATTEMPT_SUCCESS_RATE, "ratio", HIGHER, "CI first-attempt success rate, 0-1"),
    (CI_RUNS, _N, None, "CI runs counted in the success rate"),
    (CI_MTTR, _S, LOWER, "CI MTTR red -> green (definitions §3)"),
    (CI_FLAKY_JOBS, _N, LOWER, "flaky jobs (definitions §3)"),
    (CI_DEPLOYMENTS_PER_DAY, "1/d", HIGHER, "DORA deployment frequency (definitions §4)"),
    (CI_LEAD_TIME_P50, _S, LOWER, "DORA change lead time, median"),
    (CI_CHANGE_FAILURE_RATE, "ratio", LOWER, "DORA change failure rate, 0-1"),
    (CI_RECOVERY_TIME_P50, _S, LOWER, "DORA failed deployment recovery time, median"),
    (HEALTH_SCORE, "score", HIGHER, "the health score, 0-100"),
]

#: Every named figure: key -> :class:`Metric`.
CATALOGUE: dict[str, Metric] = {k: Metric(k, unit, direction, text) for k, unit, direction, text in _CATALOGUE}


def direction_of(metric: str) -> str | None:
    """The catalogue's direction of a figure (None: unknown or neither)."""
    m = CATALOGUE.get(metric)
    return m.direction if m else None


def number(value: Any) -> float | None:
    """A figure's value as a finite float, else None ("no data").

    Numbers and numeric strings (SonarQube and Prometheus send strings) convert; ``True``/``False`` are
    1/0; a quality-gate status (``OK``, ``WARN``, ``ERROR``) is its :data:`QUALITY_GATE_VALUES` value;
    None, NaN, infinities and any other text are None.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, str):
        text = value.strip()
        if text.upper() in QUALITY_GATE_VALUES:
            return QUALITY_GATE_VALUES[text.upper()]
        try:
            v = float(text)
        except ValueError:
            return None
        return v if math.isfinite(v) else None
    return None


def values_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, float | None]:
    """``{"<source>.<metric>": value}`` from ``project_metrics`` rows of one project and day.

    ``value`` is used; NULL stays None ("no data"). Two rows with the same key raise ``ValueError`` (pass
    one project's rows of one day).
    """
    out: dict[str, float | None] = {}
    for row in rows:
        k = key(row["source"], row["metric"])
        if k in out:
            raise ValueError(f"two rows for {k!r}: pass the rows of one project and one day")
        out[k] = number(row.get("value"))
    return out
