"""The health score of ``daily_project_metrics`` and its configuration file ``include/config/health.yaml``.

Pure Python (PyYAML only; no Airflow, no database). Definitions: ``ci-analytics-definitions.md`` §5,
anchors: ``health-score-anchors.md`` (OpenSSF Scorecard, CHAOSS, DORA).

The formula (:data:`FORMULA_VERSION` 1)
--------------------------------------
1. Each **sub-score** rates one thing 0-10 (10 best) from the day's figures (:mod:`.metrics` names):
   a *bands* scale (the first band the value falls in gives its score, else ``else``) or a *linear*
   one (``10 x (value - zero) / (full - zero)``, clamped to 0..10). A sub-score whose figures are all
   missing is **"no data"**: it is shown, and left out of the sum *and* of the weights, never 0.
2. Each sub-score has a weight, Scorecard's risk levels: critical 10, high 7.5, medium 5, low 2.5
   (or any number; 0 switches it off).
3. ``score = 100 x sum(weight x sub-score) / (10 x sum(weight))`` over the sub-scores **with data**,
   i.e. the weighted average on 0-10 shown on 0-100. No sub-score with data: the score is None.
4. Optional letter grades (``grades`` in the file; the anchors define none, so none ship).

Sub-scores (dimension.name: figures; default scale; default weight):

* ``delivery.ci_success_rate``: ``ci.success_rate`` (0-1); >= 0.95 10, >= 0.90 8, >= 0.80 6,
  >= 0.70 4, >= 0.50 2, else 0; high.
* ``delivery.ci_mttr``: ``ci.mttr_s``; the DORA recovery bands: < 1 h 10, < 1 d 7.5, < 1 w 5, else 2.5;
  medium.
* ``delivery.deployment_frequency``: ``ci.deployments_per_day``; 2023 DORA bands as
  ``ci_pipeline_analytics`` reads them: >= 1 10 (elite), >= 1/7 7.5, >= 1/30 5, else 2.5; low.
* ``delivery.lead_time``: ``ci.lead_time_p50_s``; < 1 d 10, < 7 d 7.5, < 30 d 5, else 2.5; low.
* ``delivery.change_failure_rate``: ``ci.change_failure_rate`` (0-1); <= 5 % 10, <= 10 % 7.5,
  <= 15 % 5, <= 30 % 2.5, else 0 (anchors: "> 30 % bad"); medium.
* ``delivery.recovery_time``: ``ci.recovery_time_p50_s``; < 1 h 10, < 1 d 7.5, < 1 w 5, else 2.5; low.
* ``quality.quality_gate``: ``sonarqube.quality_gate`` (1 OK, 0.5 WARN, 0 ERROR); OK 10, WARN 5,
  ERROR 0; high.
* ``quality.reliability_rating`` / ``quality.maintainability_rating``: ``sonarqube.reliability_rating`` /
  ``sonarqube.maintainability_rating`` (1 = A .. 5 = E); linear zero 5 full 1 (A 10, B 7.5, C 5, D 2.5, E 0);
  medium / low.
* ``quality.coverage``: ``sonarqube.coverage`` (%); linear zero 30 full 80 (the Sonar way gate wants
  80 %); medium.
* ``security.open_alerts``: open Dependabot and code-scanning alerts per severity and secret-scanning
  alerts; ``weighted = 5 x critical + 2 x high + 1 x medium + 0.5 x low`` (a secret counts as a
  critical); linear zero 10 full 0 (``10 - weighted``, at least 0); high (Scorecard Vulnerabilities).
  A kind the token may not read has no figures: it adds nothing.
* ``security.security_rating``: ``sonarqube.security_rating``; linear zero 5 full 1; medium.
* ``security.branch_protection``: ``github.branch_protection`` (1/0); 10 or 0; high.
* ``activity.maintained``: Scorecard "Maintained": ``github.commits_90d + github.issue_activity_90d``
  against one a week; linear zero 0 full 13; an archived repository (``github.archived`` = 1) scores 0;
  one created less than 90 days ago (``github.repo_age_days``) is not assessed (no data); high.
* ``activity.contributor_absence``: ``github.contributor_absence_factor`` (CHAOSS, 90 days);
  >= 3 10, >= 2 5, else 0 (anchors: 1 critical, 2 warning); medium.
* ``activity.time_to_first_response``: ``github.time_to_first_response_p50_s``; <= 1 d 10, <= 2 d 7.5,
  <= 7 d 5, <= 30 d 2.5, else 0; low.
* ``reliability.slos``: the mean of the project's SLO scores (``projects.yaml`` ``slos``, plus default
  targets for ``availability`` >= 99.9 and ``error_rate`` <= 1 when the project has such a figure and
  no SLO of its own on it). A met SLO scores 10; a missed one falls linearly to 0 at its **zero point**:
  ``2 x target`` for lower-is-better, ``100 - 10 x (100 - target)`` for a higher-is-better ``%`` (ten
  error budgets: 99.9 -> 99.0), ``0.5 x target`` for other higher-is-better units; high.

The file
--------
``health.yaml`` has three optional sections; see the shipped file's header for the full format.

* ``subscores``: ``<dimension>: <name>: {weight, bands + else | linear, ...}``; what is left out keeps the
  default above (the set of sub-scores and their figures are the formula, fixed in code).
* ``grades``: ``[{min: 90, grade: A}, ..., {min: 0, grade: F}]``.
* ``thresholds``: alert thresholds (:mod:`.thresholds`).

Every problem is raised together as one :class:`HealthConfigError`, each naming file, line and field.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devops_automation.workflows.daily_project_metrics import metrics as m
from devops_automation.workflows.daily_project_metrics.projects import CONVENTIONAL, HIGHER, LOWER, Slo, parse_target
from devops_automation.workflows.daily_project_metrics.thresholds import DEFAULT_THRESHOLDS, Threshold, parse_thresholds
from devops_automation.yaml_config import (
    MISSING,
    Bad,
    ConfigError,
    NodeParser,
    as_number,
    got,
    is_null,
    non_negative,
    one_of,
    parse_document,
    read_config_text,
    shape,
    text,
)

#: Stored with every score (in ``health_scores.components``); bump it when the formula changes.
FORMULA_VERSION = "1"
#: OpenSSF Scorecard risk weights.
RISK_WEIGHTS: dict[str, float] = {"critical": 10.0, "high": 7.5, "medium": 5.0, "low": 2.5}
DIMENSIONS = ("delivery", "quality", "security", "activity", "reliability")
NO_DATA = "no data"

HOUR = 3600.0
DAY = 86400.0
WEEK = 7 * DAY


class HealthConfigError(ConfigError):
    """The health file is not valid; ``problems`` lists every problem (each names file, line, field)."""

    what = "the health file"


# ---- scales --------------------------------------------------------------------------------------

_BAND_OPS = {"min": ">=", "above": ">", "max": "<=", "below": "<"}
_BAND_KEYS = {HIGHER: ("min", "above"), LOWER: ("max", "below")}


@dataclass(frozen=True)
class Band:
    """``value <op> bound`` gives ``score``; ``key``: ``min`` (>=), ``above`` (>), ``max`` (<=), ``below`` (<)."""

    key: str
    bound: float
    score: float

    def matches(self, value: float) -> bool:
        if self.key == "min":
            return value >= self.bound
        if self.key == "above":
            return value > self.bound
        if self.key == "max":
            return value <= self.bound
        return value < self.bound

    def __str__(self) -> str:
        return f"{_BAND_OPS[self.key]} {self.bound:g}"


@dataclass(frozen=True)
class Bands:
    """The first band the value falls in gives the score; none: ``otherwise``."""

    bands: tuple[Band, ...]
    otherwise: float = 0.0

    def rate(self, value: float) -> tuple[float, str]:
        for band in self.bands:
            if band.matches(value):
                return band.score, f"{value:g} {band} -> {band.score:g}"
        return self.otherwise, f"{value:g} in none of the bands -> {self.otherwise:g}"


@dataclass(frozen=True)
class Linear:
    """``10 x (value - zero) / (full - zero)``, clamped to 0..10."""

    zero: float
    full: float

    def rate(self, value: float) -> tuple[float, str]:
        score = 10.0 * min(max((value - self.zero) / (self.full - self.zero), 0.0), 1.0)
        return score, f"10 x ({value:g} - {self.zero:g}) / ({self.full:g} - {self.zero:g}) -> {_num(score)}"


Scale = Bands | Linear


def _bands(*pairs: tuple[str, float, float], otherwise: float = 0.0) -> Bands:
    return Bands(tuple(Band(k, float(b), float(s)) for k, b, s in pairs), float(otherwise))


def _num(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


# ---- the sub-scores (the formula) ----------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """What a sub-score reads and how (fixed in code); the weight and scale are configurable defaults."""

    dimension: str
    name: str
    kind: str  # single | open_alerts | maintained | slos
    direction: str  # of the value the scale rates
    inputs: tuple[str, ...]
    weight: float
    scale: Scale | None
    description: str

    @property
    def id(self) -> str:
        return f"{self.dimension}.{self.name}"


_SEV_INPUTS = tuple(
    [m.dependabot_alerts(s) for s in m.SEVERITIES]
    + [m.code_scanning_alerts(s) for s in m.SEVERITIES]
    + [m.GITHUB_SECRET_SCANNING_ALERTS]
)
_RATING = Linear(zero=5.0, full=1.0)
_RECOVERY = _bands(("below", HOUR, 10), ("below", DAY, 7.5), ("below", WEEK, 5), otherwise=2.5)
_H, _MED, _L = RISK_WEIGHTS["high"], RISK_WEIGHTS["medium"], RISK_WEIGHTS["low"]

SPECS: tuple[Spec, ...] = (
    Spec(
        "delivery",
        "ci_success_rate",
        "single",
        HIGHER,
        (m.CI_SUCCESS_RATE,),
        _H,
        _bands(("min", 0.95, 10), ("min", 0.90, 8), ("min", 0.80, 6), ("min", 0.70, 4), ("min", 0.50, 2)),
        "CI success rate (definitions §3)",
    ),
    Spec("delivery", "ci_mttr", "single", LOWER, (m.CI_MTTR,), _MED, _RECOVERY, "CI red -> green, DORA recovery bands"),
    Spec(
        "delivery",
        "deployment_frequency",
        "single",
        HIGHER,
        (m.CI_DEPLOYMENTS_PER_DAY,),
        _L,
        _bands(("min", 1.0, 10), ("min", 1 / 7, 7.5), ("min", 1 / 30, 5), otherwise=2.5),
        "DORA deployment frequency, 2023 bands",
    ),
    Spec(
        "delivery",
        "lead_time",
        "single",
        LOWER,
        (m.CI_LEAD_TIME_P50,),
        _L,
        _bands(("below", DAY, 10), ("below", WEEK, 7.5), ("below", 30 * DAY, 5), otherwise=2.5),
        "DORA change lead time, 2023 bands",
    ),
    Spec(
        "delivery",
        "change_failure_rate",
        "single",
        LOWER,
        (m.CI_CHANGE_FAILURE_RATE,),
        _MED,
        _bands(("max", 0.05, 10), ("max", 0.10, 7.5), ("max", 0.15, 5), ("max", 0.30, 2.5)),
        "DORA change failure rate; > 30 % bad",
    ),
    Spec(
        "delivery",
        "recovery_time",
        "single",
        LOWER,
        (m.CI_RECOVERY_TIME_P50,),
        _L,
        _RECOVERY,
        "DORA failed deployment recovery time, 2023 bands",
    ),
    Spec(
        "quality",
        "quality_gate",
        "single",
        HIGHER,
        (m.SONAR_QUALITY_GATE,),
        _H,
        _bands(("min", 1.0, 10), ("min", 0.5, 5)),
        "SonarQube quality gate: OK 10, WARN 5, ERROR 0",
    ),
    Spec(
        "quality",
        "reliability_rating",
        "single",
        LOWER,
        (m.SONAR_RELIABILITY_RATING,),
        _MED,
        _RATING,
        "A 10, B 7.5, C 5, D 2.5, E 0",
    ),
    Spec(
        "quality",
        "maintainability_rating",
        "single",
        LOWER,
        (m.SONAR_MAINTAINABILITY_RATING,),
        _L,
        _RATING,
        "A 10, B 7.5, C 5, D 2.5, E 0",
    ),
    Spec(
        "quality",
        "coverage",
        "single",
        HIGHER,
        (m.SONAR_COVERAGE,),
        _MED,
        Linear(zero=30.0, full=80.0),
        "coverage %, 30 -> 0, 80 -> 10",
    ),
    Spec(
        "security",
        "open_alerts",
        "open_alerts",
        LOWER,
        _SEV_INPUTS,
        _H,
        Linear(zero=10.0, full=0.0),
        "open security alerts weighted by severity",
    ),
    Spec(
        "security",
        "security_rating",
        "single",
        LOWER,
        (m.SONAR_SECURITY_RATING,),
        _MED,
        _RATING,
        "A 10, B 7.5, C 5, D 2.5, E 0",
    ),
    Spec(
        "security",
        "branch_protection",
        "single",
        HIGHER,
        (m.GITHUB_BRANCH_PROTECTION,),
        _H,
        _bands(("min", 1.0, 10)),
        "default branch protected",
    ),
    Spec(
        "activity",
        "maintained",
        "maintained",
        HIGHER,
        (m.GITHUB_COMMITS_90D, m.GITHUB_ISSUE_ACTIVITY_90D, m.GITHUB_ARCHIVED, m.GITHUB_REPO_AGE_DAYS),
        _H,
        Linear(zero=0.0, full=13.0),
        "Scorecard Maintained: commits + issue activity in 90 days vs about 1 a week",
    ),
    Spec(
        "activity",
        "contributor_absence",
        "single",
        HIGHER,
        (m.GITHUB_CONTRIBUTOR_ABSENCE,),
        _MED,
        _bands(("min", 3.0, 10), ("min", 2.0, 5)),
        "CHAOSS contributor absence factor, 90 days",
    ),
    Spec(
        "activity",
        "time_to_first_response",
        "single",
        LOWER,
        (m.GITHUB_TTFR_P50,),
        _L,
        _bands(("max", DAY, 10), ("max", 2 * DAY, 7.5), ("max", WEEK, 5), ("max", 30 * DAY, 2.5)),
        "CHAOSS time to first response, median",
    ),
    Spec("reliability", "slos", "slos", HIGHER, (), _H, None, "SLOs from Prometheus, mean of their scores"),
)
SPEC_BY_ID: dict[str, Spec] = {s.id: s for s in SPECS}


# ---- the configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SubScore:
    """A sub-score's configured weight and scale (None for ``reliability.slos``)."""

    dimension: str
    name: str
    weight: float
    scale: Scale | None

    @property
    def id(self) -> str:
        return f"{self.dimension}.{self.name}"


@dataclass(frozen=True)
class AlertPenalties:
    """``security.open_alerts``: weight of one open alert per severity; a secret counts as ``secret_as``."""

    critical: float = 5.0
    high: float = 2.0
    medium: float = 1.0
    low: float = 0.5
    secret_as: str = "critical"

    def of(self, severity: str) -> float:
        return float(getattr(self, severity))


@dataclass(frozen=True)
class SloScoring:
    """``reliability.slos``: where a missed SLO's score reaches 0, and the default targets."""

    lower_is_better: float = 2.0  # zero point = factor x target
    percent_budget: float = 10.0  # higher-is-better "%": zero point = 100 - factor x (100 - target)
    higher_is_better: float = 0.5  # other higher-is-better units: zero point = factor x target
    default_targets: tuple[tuple[str, str, float], ...] = (("availability", ">=", 99.9), ("error_rate", "<=", 1.0))

    def zero_point(self, slo: Slo) -> float:
        if slo.direction == LOWER:
            return self.lower_is_better * slo.target
        if slo.unit == "%":
            return 100.0 - self.percent_budget * (100.0 - slo.target)
        return self.higher_is_better * slo.target


@dataclass(frozen=True)
class Grade:
    min: float
    grade: str


DEFAULT_SUBSCORES: tuple[SubScore, ...] = tuple(SubScore(s.dimension, s.name, s.weight, s.scale) for s in SPECS)


@dataclass(frozen=True)
class AlertRoutes:
    """Where threshold alerts go (``alerts:`` of the health file): a Slack channel, a Telegram chat,
    e-mail addresses; and the label of the issues opened for critical breaches."""

    slack: str | None = "#alerts"
    telegram: str | None = None
    email: tuple[str, ...] = ()
    issue_label: str = "health-alert"

    def targets(self) -> list[tuple[str, str]]:
        """``(channel, target)`` pairs, e-mail as one comma-separated target."""
        out = []
        if self.slack:
            out.append(("slack", self.slack))
        if self.telegram:
            out.append(("telegram", self.telegram))
        if self.email:
            out.append(("email", ", ".join(self.email)))
        return out


@dataclass(frozen=True)
class HealthConfig:
    subscores: tuple[SubScore, ...] = DEFAULT_SUBSCORES
    penalties: AlertPenalties = AlertPenalties()
    maintained_min_age_days: float = 90.0
    slo_scoring: SloScoring = SloScoring()
    grades: tuple[Grade, ...] = ()
    thresholds: tuple[Threshold, ...] = DEFAULT_THRESHOLDS
    source: str = field(default="defaults", compare=False)
    routes: AlertRoutes = AlertRoutes()

    def subscore(self, id_: str) -> SubScore:
        return next(s for s in self.subscores if s.id == id_)

    def digest(self) -> str:
        """12 hex digits identifying what the score depends on (not the thresholds): stored with each score."""
        data = {
            "formula_version": FORMULA_VERSION,
            "subscores": [asdict(s) for s in self.subscores],
            "penalties": asdict(self.penalties),
            "maintained_min_age_days": self.maintained_min_age_days,
            "slo_scoring": asdict(self.slo_scoring),
            "grades": [asdict(g) for g in self.grades],
        }
        blob = json.dumps(_canonical(data), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


DEFAULT_CONFIG = HealthConfig()


def _canonical(value: Any) -> Any:
    """Numbers as floats (10 and 10.0 are the same setting), tuples as lists."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return str(value)


# ---- the result ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Component:
    """One sub-score: its inputs (None = no data), its score 0-10 (None = no data) and weight."""

    dimension: str
    name: str
    weight: float
    inputs: Mapping[str, float | None]
    score: float | None
    detail: str
    slos: tuple[Mapping[str, Any], ...] = ()

    @property
    def has_data(self) -> bool:
        return self.score is not None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "dimension": self.dimension,
            "name": self.name,
            "weight": self.weight,
            "inputs": dict(self.inputs),
            "score": None if self.score is None else round(self.score, 3),
            "status": "ok" if self.has_data else NO_DATA,
            "detail": self.detail,
        }
        if self.slos:
            out["slos"] = [dict(s) for s in self.slos]
        return out


@dataclass(frozen=True)
class HealthScore:
    """``score`` 0-100 (None: no sub-score had data), ``grade``, and every component."""

    score: float | None
    grade: str | None
    components: tuple[Component, ...]
    formula_version: str = FORMULA_VERSION
    config_digest: str = ""

    @property
    def weight_with_data(self) -> float:
        return sum(c.weight for c in self.components if c.has_data)

    @property
    def weight_total(self) -> float:
        return sum(c.weight for c in self.components)

    def dimensions(self) -> dict[str, float | None]:
        """Each dimension's own 0-100 score over its sub-scores with data (None: none has data)."""
        out: dict[str, float | None] = {}
        for dim in DIMENSIONS:
            out[dim] = _weighted([c for c in self.components if c.dimension == dim])
        return out

    def as_json(self) -> dict[str, Any]:
        """What goes into ``health_scores.components`` (JSON-serialisable)."""
        return {
            "formula_version": self.formula_version,
            "config_digest": self.config_digest,
            "score": self.score,
            "grade": self.grade,
            "weight_with_data": self.weight_with_data,
            "weight_total": self.weight_total,
            "dimensions": self.dimensions(),
            "components": [c.as_dict() for c in self.components],
        }

    def summary(self) -> str:
        """One line for a run note: ``72.5/100 (B), 9 of 17 sub-scores; delivery 80, quality no data, ...``."""
        with_data = sum(1 for c in self.components if c.has_data)
        if self.score is None:
            return f"no data (0 of {len(self.components)} sub-scores)"
        grade = f" ({self.grade})" if self.grade else ""
        dims = ", ".join(f"{d} {NO_DATA if v is None else _num(v)}" for d, v in self.dimensions().items())
        return f"{_num(self.score)}/100{grade}, {with_data} of {len(self.components)} sub-scores; {dims}"


def _weighted(components: Sequence[Component]) -> float | None:
    rated = [c for c in components if c.score is not None]
    weight = sum(c.weight for c in rated)
    if not rated or weight <= 0:
        return None
    return round(100.0 * sum(c.weight * (c.score or 0.0) for c in rated) / (10.0 * weight), 2)


# ---- computing -----------------------------------------------------------------------------------


def slo_score(slo: Slo, value: float, scoring: SloScoring | None = None) -> tuple[float, float]:
    """``(score 0-10, zero point)`` of one SLO: 10 when met, else linear from the target to the zero point."""
    scoring = scoring or SloScoring()
    zero = scoring.zero_point(slo)
    if slo.met(value):
        return 10.0, zero
    t = slo.target
    if slo.direction == LOWER:
        if zero <= t:
            return 0.0, zero
        fraction = (zero - value) / (zero - t)
    else:
        if zero >= t:
            return 0.0, zero
        fraction = (value - zero) / (t - zero)
    return 10.0 * min(max(fraction, 0.0), 1.0), zero


def default_slos(values: Mapping[str, Any], slos: Iterable[Slo], scoring: SloScoring | None = None) -> list[Slo]:
    """The project's SLOs plus a default one per conventional figure in ``values`` without an SLO of its own."""
    scoring = scoring or SloScoring()
    out = list(slos)
    have = {s.query for s in out}
    for name, op, target in scoring.default_targets:
        if name not in have and m.prometheus_key(name) in values:
            unit, direction = CONVENTIONAL[name]
            out.append(Slo(name, op, target, direction, unit, 0))
    return out


def compute_health(
    values: Mapping[str, Any],
    config: HealthConfig | None = None,
    *,
    slos: Iterable[Slo] = (),
) -> HealthScore:
    """The health score of one project and day.

    ``values``: ``{"<source>.<metric>": value}`` (:func:`.metrics.values_from_rows`; a key that is absent,
    None, NaN or not a number is "no data"). ``slos``: the project's SLOs (``Project.slos``).
    """
    config = config or DEFAULT_CONFIG
    slos = tuple(slos)
    components: list[Component] = []
    for sub in config.subscores:
        if sub.weight <= 0:
            continue
        spec = SPEC_BY_ID[sub.id]
        if spec.kind == "single":
            comp = _single(spec, sub, values)
        elif spec.kind == "open_alerts":
            comp = _open_alerts(spec, sub, values, config.penalties)
        elif spec.kind == "maintained":
            comp = _maintained(spec, sub, values, config.maintained_min_age_days)
        else:
            comp = _slos(spec, sub, values, slos, config.slo_scoring)
        components.append(comp)
    score = _weighted(components)
    grade = None
    if score is not None:
        grade = next((g.grade for g in config.grades if score >= g.min), None)
    return HealthScore(score, grade, tuple(components), FORMULA_VERSION, config.digest())


def _component(
    spec: Spec, sub: SubScore, inputs: Mapping[str, float | None], score: float | None, detail: str, **kw: Any
) -> Component:
    return Component(spec.dimension, spec.name, sub.weight, dict(inputs), score, detail, **kw)


def _single(spec: Spec, sub: SubScore, values: Mapping[str, Any]) -> Component:
    (metric,) = spec.inputs
    value = m.number(values.get(metric))
    if value is None or sub.scale is None:
        return _component(spec, sub, {metric: None}, None, NO_DATA)
    score, detail = sub.scale.rate(value)
    return _component(spec, sub, {metric: value}, score, detail)


def _open_alerts(spec: Spec, sub: SubScore, values: Mapping[str, Any], penalties: AlertPenalties) -> Component:
    inputs = {k: m.number(values.get(k)) for k in spec.inputs}
    if all(v is None for v in inputs.values()) or sub.scale is None:
        return _component(spec, sub, inputs, None, NO_DATA)
    per_severity = dict.fromkeys(m.SEVERITIES, 0.0)
    for k, v in inputs.items():
        if v is not None:
            severity = penalties.secret_as if k == m.GITHUB_SECRET_SCANNING_ALERTS else k.rsplit(".", 1)[1]
            per_severity[severity] += v
    weighted = sum(penalties.of(s) * n for s, n in per_severity.items())
    terms = " + ".join(f"{penalties.of(s):g} x {n:g} {s}" for s, n in per_severity.items())
    score, rated = sub.scale.rate(weighted)
    missing = [k for k, v in inputs.items() if v is None]
    tail = f" ({len(missing)} of {len(inputs)} alert figures: no data)" if missing else ""
    return _component(spec, sub, inputs, score, f"weighted {terms} = {weighted:g}; {rated}{tail}")


def _maintained(spec: Spec, sub: SubScore, values: Mapping[str, Any], min_age_days: float) -> Component:
    inputs = {k: m.number(values.get(k)) for k in spec.inputs}
    archived = inputs[m.GITHUB_ARCHIVED]
    age = inputs[m.GITHUB_REPO_AGE_DAYS]
    commits, issues = inputs[m.GITHUB_COMMITS_90D], inputs[m.GITHUB_ISSUE_ACTIVITY_90D]
    if archived is not None and archived >= 0.5:
        return _component(spec, sub, inputs, 0.0, "archived: the lowest score (Scorecard Maintained)")
    if age is not None and age < min_age_days:
        return _component(spec, sub, inputs, None, f"{NO_DATA}: created {age:g} days ago, under {min_age_days:g}")
    if (commits is None and issues is None) or sub.scale is None:
        return _component(spec, sub, inputs, None, NO_DATA)
    activity = (commits or 0.0) + (issues or 0.0)
    parts = " + ".join(
        f"{NO_DATA} ({label})" if v is None else f"{v:g} {label}"
        for v, label in ((commits, "commits"), (issues, "issues with activity"))
    )
    score, rated = sub.scale.rate(activity)
    return _component(spec, sub, inputs, score, f"{parts} = {activity:g} in 90 days; {rated}")


def _slos(spec: Spec, sub: SubScore, values: Mapping[str, Any], slos: Sequence[Slo], scoring: SloScoring) -> Component:
    rated: list[float] = []
    inputs: dict[str, float | None] = {}
    details: list[dict[str, Any]] = []
    explicit = {s.query for s in slos}
    for slo in default_slos(values, slos, scoring):
        value = m.number(values.get(slo.metric))
        inputs[slo.metric] = value
        entry: dict[str, Any] = {"slo": str(slo), "value": value, "default": slo.query not in explicit}
        if value is None:
            entry.update(met=None, score=None, status=NO_DATA)
        else:
            score, zero = slo_score(slo, value, scoring)
            rated.append(score)
            entry.update(met=slo.met(value), score=round(score, 3), zero_at=zero, status="ok")
        details.append(entry)
    if not rated:
        detail = NO_DATA if details else f"{NO_DATA}: no SLOs"
        return _component(spec, sub, inputs, None, detail, slos=tuple(details))
    score = sum(rated) / len(rated)
    detail = f"mean of {len(rated)} SLO score{'s' if len(rated) != 1 else ''} -> {_num(score)}"
    return _component(spec, sub, inputs, score, detail, slos=tuple(details))


# ---- parsing health.yaml -------------------------------------------------------------------------


def _weight(value: Any) -> float:
    if isinstance(value, str) and value in RISK_WEIGHTS:
        return RISK_WEIGHTS[value]
    v = as_number(value)
    if v is None or not 0 <= v <= 1000:
        raise Bad(f"must be critical, high, medium, low or a number from 0 (off) to 1000, got {got(value)}")
    return v


def _score(value: Any) -> float:
    v = as_number(value)
    if v is None or not 0 <= v <= 10:
        raise Bad(f"must be a number from 0 to 10, got {got(value)}")
    return v


def _factor(lo: float, hi: float | None) -> Any:
    def conv(value: Any) -> float:
        v = as_number(value)
        if v is None or v <= lo or (hi is not None and v >= hi):
            bounds = f"above {lo:g}" + (f" and below {hi:g}" if hi is not None else "")
            raise Bad(f"must be a number {bounds}, got {got(value)}")
        return v

    return conv


def _grade_text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 8 or any(c.isspace() for c in value):
        raise Bad(f"must be 1 to 8 characters without spaces (such as A or B+), got {got(value)}")
    return value


_COMMON_FIELDS = ("weight", "bands", "else", "linear", "description")
_EXTRA_FIELDS: dict[str, tuple[str, ...]] = {
    "open_alerts": ("penalties", "secret_scanning_as"),
    "maintained": ("min_age_days",),
    "slos": ("weight", "zero_at", "default_targets", "description"),
}


class _Parser:
    def __init__(self, p: NodeParser) -> None:
        self.p = p
        self.penalties = AlertPenalties()
        self.min_age = 90.0
        self.slo_scoring = SloScoring()

    def file(self, root: yaml.Node | None) -> HealthConfig:
        p = self.p
        if root is None:
            p.problem(1, None, "the file is empty: expected a mapping with subscores, grades and/or thresholds")
            return DEFAULT_CONFIG
        top = p.mapping(root, "", "with subscores, grades and/or thresholds")
        if top is None:
            return DEFAULT_CONFIG
        known = ("subscores", "grades", "thresholds", "alerts")
        for name, (key_node, _) in top.items():
            if name not in known:
                p.unknown(key_node, "", known, "; the top-level keys are subscores, grades, thresholds, alerts")
        subscores = DEFAULT_SUBSCORES
        if "subscores" in top and not is_null(top["subscores"][1]):
            subscores = self.subscores(top["subscores"][1])
        grades: tuple[Grade, ...] = ()
        if "grades" in top and not is_null(top["grades"][1]):
            grades = self.grades(top["grades"][1])
        thresholds = DEFAULT_THRESHOLDS
        if "thresholds" in top:
            node = top["thresholds"][1]
            got_thresholds = () if is_null(node) else parse_thresholds(p, node)
            thresholds = DEFAULT_THRESHOLDS if got_thresholds is MISSING else got_thresholds
        routes = AlertRoutes()
        if "alerts" in top and not is_null(top["alerts"][1]):
            routes = self.routes(top["alerts"][1])
        return HealthConfig(
            subscores,
            self.penalties,
            self.min_age,
            self.slo_scoring,
            grades,
            thresholds,
            source=p.source,
            routes=routes,
        )

    def routes(self, node: yaml.Node) -> AlertRoutes:
        p = self.p
        fields = ("slack", "telegram", "email", "issue_label")
        pairs = p.mapping(node, "alerts", "with slack, telegram, email and/or issue_label")
        if pairs is None:
            return AlertRoutes()
        for name, (key_node, _) in pairs.items():
            if name not in fields:
                p.unknown(key_node, "alerts", fields, "; alerts takes slack, telegram, email, issue_label")

        def one(name: str, default: Any) -> Any:
            if name not in pairs or is_null(pairs[name][1]):
                return None if name in pairs else default
            got_value = p.convert(pairs[name][1], f"alerts.{name}", text)
            return default if got_value is MISSING else got_value

        emails: tuple[str, ...] = ()
        if "email" in pairs and not is_null(pairs["email"][1]):
            node_ = pairs["email"][1]
            items = node_.value if isinstance(node_, yaml.SequenceNode) else [node_]
            found = []
            for i, item in enumerate(items):
                here = f"alerts.email[{i}]" if isinstance(node_, yaml.SequenceNode) else "alerts.email"
                address = p.convert(item, here, text)
                if address is MISSING:
                    continue
                if "@" not in address or any(c.isspace() for c in address):
                    p.problem(item, here, f"must be an e-mail address, got {got(address)}")
                    continue
                found.append(address)
            emails = tuple(found)
        label = one("issue_label", "health-alert")
        if label is None:
            p.problem(pairs["issue_label"][1], "alerts.issue_label", "must be a label name, got nothing")
            label = "health-alert"
        return AlertRoutes(one("slack", "#alerts"), one("telegram", None), emails, label)

    def subscores(self, node: yaml.Node) -> tuple[SubScore, ...]:
        p = self.p
        given: dict[str, SubScore] = {}
        dims = p.mapping(node, "subscores", f"dimension -> sub-score -> settings; dimensions: {', '.join(DIMENSIONS)}")
        for dim, (dim_key, dim_node) in (dims or {}).items():
            where = f"subscores.{dim}"
            if dim not in DIMENSIONS:
                p.unknown(dim_key, "subscores", DIMENSIONS, f"; the dimensions are {', '.join(DIMENSIONS)}")
                continue
            names = [s.name for s in SPECS if s.dimension == dim]
            for name, (name_key, sub_node) in (p.mapping(dim_node, where, "sub-score -> settings") or {}).items():
                if name not in names:
                    p.unknown(name_key, where, names, f"; {dim} has {', '.join(names)}")
                    continue
                sub = self.subscore(SPEC_BY_ID[f"{dim}.{name}"], sub_node, f"{where}.{name}")
                if sub is not None:
                    given[sub.id] = sub
        return tuple(given.get(d.id, d) for d in DEFAULT_SUBSCORES)

    def subscore(self, spec: Spec, node: yaml.Node, where: str) -> SubScore | None:
        p = self.p
        before = len(p.problems)
        pairs = p.mapping(node, where, "weight and a scale (bands or linear)")
        if pairs is None:
            return None
        allowed = _EXTRA_FIELDS["slos"] if spec.kind == "slos" else (*_COMMON_FIELDS, *_EXTRA_FIELDS.get(spec.kind, ()))
        for name, (key_node, _) in pairs.items():
            if name not in allowed:
                p.unknown(key_node, where, allowed, f"; {spec.id} takes {', '.join(allowed)}")
        weight = spec.weight
        if "weight" in pairs:
            weight = p.convert(pairs["weight"][1], f"{where}.weight", _weight)
        if "description" in pairs:
            p.convert(pairs["description"][1], f"{where}.description", text)
        scale = spec.scale
        if spec.kind != "slos":
            if "bands" in pairs and "linear" in pairs:
                p.problem(pairs["linear"][0], f"{where}.linear", "give bands or linear, not both")
            elif "bands" in pairs:
                scale = self.bands(pairs["bands"][1], pairs.get("else"), where, spec.direction)
            elif "linear" in pairs:
                scale = self.linear(pairs["linear"][1], f"{where}.linear", spec.direction)
            if "else" in pairs and "bands" not in pairs:
                p.problem(pairs["else"][0], f"{where}.else", "only with bands (the score below every band)")
        if spec.kind == "open_alerts":
            self.open_alerts(pairs, where)
        elif spec.kind == "maintained" and "min_age_days" in pairs:
            age = p.convert(pairs["min_age_days"][1], f"{where}.min_age_days", non_negative)
            if age is not MISSING:
                self.min_age = age
        elif spec.kind == "slos":
            self.slo_settings(pairs, where)
        if len(p.problems) > before or weight is MISSING or scale is MISSING:
            return None
        return SubScore(spec.dimension, spec.name, weight, scale)

    def bands(self, node: yaml.Node, otherwise: Any, where: str, direction: str) -> Any:
        p = self.p
        path = f"{where}.bands"
        keys = _BAND_KEYS[direction]
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            p.problem(
                node, path, f"must be a non-empty list of {{{keys[0]}: <bound>, score: <0-10>}}, got {shape(node)}"
            )
            return MISSING
        out: list[Band] = []
        ok = True
        for i, item in enumerate(node.value):
            here = f"{path}[{i}]"
            pairs = p.mapping(item, here, f"{' or '.join(keys)} and score")
            if pairs is None:
                ok = False
                continue
            bound_keys = [k for k in pairs if k in _BAND_OPS]
            for name, (key_node, _) in pairs.items():
                if name == "score" or name in keys:
                    continue
                if name in _BAND_OPS:
                    p.problem(
                        key_node,
                        f"{here}.{name}",
                        f"{name} is for a {_other(direction)} value; this one is {direction}: use {' or '.join(keys)}",
                    )
                else:
                    p.unknown(key_node, here, (*keys, "score"), f"; a band takes {' or '.join(keys)}, and score")
                ok = False
            if len(bound_keys) != 1:
                if not bound_keys:
                    p.problem(item, here, f"give one bound: {' or '.join(keys)}")
                elif all(k in keys for k in bound_keys):
                    p.problem(item, here, f"give one bound, not {' and '.join(bound_keys)}")
                ok = False
                continue
            if "score" not in pairs:
                p.problem(item, f"{here}.score", "required (the score 0-10 of a value in this band)")
                ok = False
                continue
            key = bound_keys[0]
            bound = p.convert(pairs[key][1], f"{here}.{key}", _finite)
            score = p.convert(pairs["score"][1], f"{here}.score", _score)
            if bound is MISSING or score is MISSING or key not in keys:
                ok = False
                continue
            if out:
                prev = out[-1]
                worse = bound < prev.bound if direction == HIGHER else bound > prev.bound
                if not worse:
                    side = "below" if direction == HIGHER else "above"
                    p.problem(
                        pairs[key][1],
                        f"{here}.{key}",
                        f"must be {side} the band before it ({prev.bound:g}): bands go from the best to the worst",
                    )
                    ok = False
                if score > prev.score:
                    p.problem(
                        pairs["score"][1],
                        f"{here}.score",
                        f"must not be above the score of the band before it ({prev.score:g})",
                    )
                    ok = False
            out.append(Band(key, bound, score))
        else_score = 0.0
        if otherwise is not None:
            got_else = p.convert(otherwise[1], f"{where}.else", _score)
            if got_else is MISSING:
                ok = False
            else:
                else_score = got_else
                if out and else_score > out[-1].score:
                    p.problem(
                        otherwise[1], f"{where}.else", f"must not be above the last band's score ({out[-1].score:g})"
                    )
                    ok = False
        return Bands(tuple(out), else_score) if ok else MISSING

    def linear(self, node: yaml.Node, where: str, direction: str) -> Any:
        p = self.p
        pairs = p.mapping(node, where, "zero and full: the values scoring 0 and 10")
        if pairs is None:
            return MISSING
        values: dict[str, float] = {}
        ok = True
        for name, (key_node, value_node) in pairs.items():
            if name not in ("zero", "full"):
                p.unknown(key_node, where, ("zero", "full"), "; linear takes zero and full")
                ok = False
                continue
            v = p.convert(value_node, f"{where}.{name}", _finite)
            if v is MISSING:
                ok = False
            else:
                values[name] = v
        for name in ("zero", "full"):
            if name not in pairs:
                p.problem(
                    node, f"{where}.{name}", f"required (the value that scores {'0' if name == 'zero' else '10'})"
                )
                ok = False
        if ok:
            zero, full = values["zero"], values["full"]
            if (full <= zero) if direction == HIGHER else (full >= zero):
                side = "above" if direction == HIGHER else "below"
                p.problem(
                    pairs["full"][1], f"{where}.full", f"must be {side} zero ({zero:g}): the value is {direction}"
                )
                ok = False
        return Linear(values["zero"], values["full"]) if ok else MISSING

    def open_alerts(self, pairs: Mapping[str, tuple[yaml.Node, yaml.Node]], where: str) -> None:
        p = self.p
        changes: dict[str, Any] = {}
        if "penalties" in pairs:
            path = f"{where}.penalties"
            for name, (key_node, value_node) in (
                p.mapping(pairs["penalties"][1], path, "severity -> weight of one alert") or {}
            ).items():
                if name not in m.SEVERITIES:
                    p.unknown(key_node, path, m.SEVERITIES, f"; the severities are {', '.join(m.SEVERITIES)}")
                    continue
                v = p.convert(value_node, f"{path}.{name}", non_negative)
                if v is not MISSING:
                    changes[name] = v
        if "secret_scanning_as" in pairs:
            v = p.convert(pairs["secret_scanning_as"][1], f"{where}.secret_scanning_as", one_of(m.SEVERITIES))
            if v is not MISSING:
                changes["secret_as"] = v
        self.penalties = AlertPenalties(**{**asdict(self.penalties), **changes})

    def slo_settings(self, pairs: Mapping[str, tuple[yaml.Node, yaml.Node]], where: str) -> None:
        p = self.p
        changes: dict[str, Any] = {}
        if "zero_at" in pairs:
            path = f"{where}.zero_at"
            convs = {
                "lower_is_better": _factor(1.0, None),
                "percent_budget": _factor(1.0, None),
                "higher_is_better": _factor(0.0, 1.0),
            }
            for name, (key_node, value_node) in (p.mapping(pairs["zero_at"][1], path, ", ".join(convs)) or {}).items():
                if name not in convs:
                    p.unknown(key_node, path, list(convs), f"; zero_at takes {', '.join(convs)}")
                    continue
                v = p.convert(value_node, f"{path}.{name}", convs[name])
                if v is not MISSING:
                    changes[name] = v
        if "default_targets" in pairs:
            path = f"{where}.default_targets"
            node = pairs["default_targets"][1]
            targets: list[tuple[str, str, float]] = []
            for name, (key_node, value_node) in (
                {}
                if is_null(node)
                else (p.mapping(node, path, 'query name -> target, such as availability: ">= 99.9"') or {})
            ).items():
                if name not in CONVENTIONAL:
                    p.unknown(key_node, path, list(CONVENTIONAL), f"; defaults exist for {', '.join(CONVENTIONAL)}")
                    continue
                value = p.value(value_node, f"{path}.{name}")
                if value is MISSING:
                    continue
                try:
                    op, target = parse_target(value, CONVENTIONAL[name][1])
                except Bad as exc:
                    p.problem(value_node, f"{path}.{name}", str(exc))
                    continue
                targets.append((name, op, target))
            changes["default_targets"] = tuple(targets)
        self.slo_scoring = SloScoring(**{**asdict(self.slo_scoring), **changes})

    def grades(self, node: yaml.Node) -> tuple[Grade, ...]:
        p = self.p
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            p.problem(
                node, "grades", f"must be a non-empty list of {{min: <0-100>, grade: <letter>}}, got {shape(node)}"
            )
            return ()
        out: list[Grade] = []
        for i, item in enumerate(node.value):
            here = f"grades[{i}]"
            pairs = p.mapping(item, here, "min and grade")
            if pairs is None:
                continue
            for name, (key_node, _) in pairs.items():
                if name not in ("min", "grade"):
                    p.unknown(key_node, here, ("min", "grade"), "; a grade takes min and grade")
            for name in ("min", "grade"):
                if name not in pairs:
                    p.problem(item, f"{here}.{name}", "required")
            if "min" not in pairs or "grade" not in pairs:
                continue
            low = p.convert(pairs["min"][1], f"{here}.min", _percent)
            grade = p.convert(pairs["grade"][1], f"{here}.grade", _grade_text)
            if low is MISSING or grade is MISSING:
                continue
            if out and low >= out[-1].min:
                p.problem(pairs["min"][1], f"{here}.min", f"must be below the grade before it ({out[-1].min:g})")
            elif any(g.grade == grade for g in out):
                p.problem(pairs["grade"][1], f"{here}.grade", f"duplicate grade {got(grade)}")
            out.append(Grade(low, grade))
        if out and out[-1].min != 0 and len(out) == len(node.value):
            p.problem(
                node.value[-1], f"grades[{len(out) - 1}].min", "the last grade must have min: 0 (every score gets one)"
            )
        return tuple(out)


def _other(direction: str) -> str:
    return LOWER if direction == HIGHER else HIGHER


def _finite(value: Any) -> float:
    v = as_number(value)
    if v is None:
        raise Bad(f"must be a number, got {got(value)}")
    return v


def _percent(value: Any) -> float:
    v = as_number(value)
    if v is None or not 0 <= v <= 100:
        raise Bad(f"must be a number from 0 to 100, got {got(value)}")
    return v


def parse_health_config(text_: str, source: str = "health.yaml") -> HealthConfig:
    """The configuration in a health file's text (sub-scores merged with the defaults).

    Raises :class:`HealthConfigError` listing every problem, each naming ``source``, the line and the field.
    """
    return parse_document(text_, source, HealthConfigError, lambda p, root: _Parser(p).file(root))


def load_health_config(path: str | Path) -> HealthConfig:
    """:func:`parse_health_config` of a file; errors name the file by its name (``health.yaml``)."""
    content, source = read_config_text(path, HealthConfigError)
    return parse_health_config(content, source)
