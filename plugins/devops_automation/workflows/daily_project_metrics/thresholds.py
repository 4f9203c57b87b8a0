"""Alert thresholds of ``daily_project_metrics``: the ``thresholds`` section of ``health.yaml`` and
:func:`evaluate_thresholds`.

Pure Python (no Airflow, no database). The file is loaded by :func:`.health.load_health_config`; this
module holds the section's parser, its defaults and the evaluation.

The section
-----------

.. code-block:: yaml

    thresholds:                        # metric ("<source>.<metric>") -> its limits
      prometheus.availability:
        direction: higher_is_better    # required for a metric the catalogue does not know
        critical: 99.0                 # a number: strictly worse than it (< here, > for lower_is_better)
        warning: 99.9
      sonarqube.reliability_rating:
        critical: ">= 4"               # or an operator and a number (quoted)
        warning: ">= 3"
      prometheus.p95_latency:
        relative_to: slo               # the limits are multiples of the project's SLO target
        critical: 2
        warning: 1
      github.stars:
        enabled: false                 # kept, never evaluated

At least one of ``critical`` / ``warning``; a value that breaches ``critical`` must also breach
``warning``. Operators: ``<`` or ``<=`` for ``higher_is_better``, ``>`` or ``>=`` for ``lower_is_better``.
When the file has a ``thresholds`` section it is the complete list (a metric left out has no alert);
without the section the defaults below (``health-score-anchors.md`` §4.4) apply.

Evaluation
----------
:func:`evaluate_thresholds` gives one :class:`Breach` per enabled threshold whose metric has a value:
level ``critical``, ``warning`` or ``ok``. A metric without a value ("no data") gives nothing, so the
caller keeps an open alert as it is (no news is not good news); a threshold relative to an SLO gives
nothing for a project without that SLO.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

from devops_automation.workflows.daily_project_metrics import metrics as m
from devops_automation.workflows.daily_project_metrics.projects import DIRECTIONS, HIGHER, LOWER, Slo
from devops_automation.yaml_config import MISSING, Bad, NodeParser, as_number, boolean, got, one_of, text

LEVELS = ("critical", "warning", "ok")
#: Operators that mean "worse than" per direction (the first is used for a bare number).
OPERATORS: dict[str, tuple[str, str]] = {HIGHER: ("<", "<="), LOWER: (">", ">=")}
RELATIVE_TO = ("slo",)
_LIMIT = re.compile(r"\s*(<=|>=|<|>)\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*")
_FIELDS = ("direction", "critical", "warning", "relative_to", "enabled", "description")
_OPS = {
    "<": lambda v, t: v < t,
    "<=": lambda v, t: v <= t,
    ">": lambda v, t: v > t,
    ">=": lambda v, t: v >= t,
}


@dataclass(frozen=True)
class Limit:
    """``value <op> threshold`` is a breach."""

    op: str
    value: float

    def breached(self, value: float, scale: float = 1.0) -> bool:
        return _OPS[self.op](value, self.value * scale)

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


@dataclass(frozen=True)
class Threshold:
    metric: str
    direction: str
    critical: Limit | None = None
    warning: Limit | None = None
    relative_to: str | None = None  # "slo": the limits are multiples of the project's SLO target
    enabled: bool = True
    description: str = ""
    line: int = field(default=0, compare=False)  # where it is set in its file (0: a default)


@dataclass(frozen=True)
class Breach:
    """A threshold evaluated on one value.

    ``threshold`` and ``op`` are those of the level reached (for ``ok``: of the mildest level, the one
    the value is now on the good side of); relative thresholds give the absolute value.
    """

    metric: str
    level: str  # critical | warning | ok
    value: float
    threshold: float
    op: str
    direction: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _t(metric: str, critical: str | None, warning: str | None, relative_to: str | None = None) -> Threshold:
    direction = m.direction_of(metric)
    assert direction is not None, metric
    return Threshold(
        metric,
        direction,
        _limit_text(critical) if critical else None,
        _limit_text(warning) if warning else None,
        relative_to,
    )


def _limit_text(value: str) -> Limit:
    op, _, number = value.partition(" ")
    return Limit(op, float(number))


#: The defaults, from ``health-score-anchors.md`` §4.4 (ours, not from a standard).
DEFAULT_THRESHOLDS: tuple[Threshold, ...] = (
    _t(m.PROMETHEUS_AVAILABILITY, "< 99.0", "< 99.9"),  # uptime 24h
    _t(m.PROMETHEUS_ERROR_RATE, "> 5", "> 1"),  # error rate, %
    _t(m.PROMETHEUS_P95_LATENCY, "> 2", "> 1", relative_to="slo"),  # > 2x SLO, > SLO
    _t(m.SONAR_COVERAGE, "< 50", "< 70"),
    _t(m.SONAR_RELIABILITY_RATING, ">= 4", ">= 3"),  # >= D, >= C
    _t(m.SONAR_SECURITY_RATING, ">= 4", ">= 3"),
    _t(m.SONAR_QUALITY_GATE, "<= 0", None),  # ERROR
    _t(m.SONAR_NEW_VULNERABILITIES, "> 0", None),
    _t(m.GITHUB_CLOSURE_RATIO_90D, "< 0.5", "< 0.8"),
    _t(m.GITHUB_CONTRIBUTOR_ABSENCE, "<= 1", "<= 2"),
    _t(m.HEALTH_SCORE, "< 40", "< 60"),  # Scorecard aggregate < 4 / < 6 on 0-10
    _t(m.GITHUB_COMMITS_90D, "<= 0", "< 13"),  # Scorecard Maintained: none / about 1 a week
)


# ---- evaluation ----------------------------------------------------------------------------------


def evaluate_thresholds(
    values: Mapping[str, Any],
    config: Any,
    *,
    slos: Iterable[Slo] = (),
) -> list[Breach]:
    """One :class:`Breach` per enabled threshold whose metric has a value, in the thresholds' order.

    ``values``: ``{"<source>.<metric>": value}`` (:func:`.metrics.values_from_rows`; None/NaN = no data).
    ``config``: a :class:`.health.HealthConfig` (its ``thresholds``) or an iterable of :class:`Threshold`.
    ``slos``: the project's SLOs, for thresholds ``relative_to: slo`` (the target of the SLO on the same
    metric; a project without one gets nothing for that threshold).
    """
    thresholds: Iterable[Threshold] = getattr(config, "thresholds", config)
    targets = {s.metric: s.target for s in slos}
    out: list[Breach] = []
    for t in thresholds:
        if not t.enabled or t.metric not in values:
            continue
        value = m.number(values[t.metric])
        if value is None:
            continue
        scale = 1.0
        if t.relative_to == "slo":
            if t.metric not in targets:
                continue
            scale = targets[t.metric]
        level, limit = "ok", t.warning or t.critical
        if t.critical is not None and t.critical.breached(value, scale):
            level, limit = "critical", t.critical
        elif t.warning is not None and t.warning.breached(value, scale):
            level, limit = "warning", t.warning
        assert limit is not None
        out.append(Breach(t.metric, level, value, limit.value * scale, limit.op, t.direction))
    return out


# ---- parsing (called by health.load_health_config) -----------------------------------------------


def _limit(direction: str, relative: bool) -> Any:
    ops = OPERATORS[direction]

    def conv(value: Any) -> Limit:
        v = as_number(value)
        if v is not None:
            op = ops[0]
        else:
            found = _LIMIT.fullmatch(value) if isinstance(value, str) else None
            if found is None:
                raise Bad(f'must be a number, or an operator and a number such as "{ops[0]} 5", got {got(value)}')
            op, v = found.group(1), float(found.group(2))
            if op not in ops:
                raise Bad(f"the metric is {direction}, so the operator must be {' or '.join(ops)}, got {got(value)}")
        if relative and v <= 0:
            raise Bad(f"relative to the SLO: a multiple of its target, above 0, got {got(value)}")
        return Limit(op, v)

    return conv


def _metric_name(value: str) -> str | None:
    """Why a metric key is wrong, else None."""
    source, dot, rest = value.partition(".")
    if not dot or not rest or source not in m.SOURCES:
        return f'must be "<source>.<metric>" with a source among {", ".join(m.SOURCES)}, got {got(value)}'
    if len(rest) > 128 or any(c.isspace() for c in value):
        return f"must be a metric name without spaces (at most 128 characters after the source), got {got(value)}"
    return None


def _worse_or_equal(direction: str, critical: Limit, warning: Limit) -> bool:
    """Every value breaching ``critical`` also breaches ``warning``."""
    if critical.value == warning.value:
        # same number: critical must not include the number when warning excludes it
        return not (critical.op in ("<=", ">=") and warning.op in ("<", ">"))
    return critical.value < warning.value if direction == HIGHER else critical.value > warning.value


def parse_thresholds(p: NodeParser, node: yaml.Node, where: str = "thresholds") -> Any:
    """The thresholds of a ``thresholds`` mapping node (a tuple), or MISSING after reporting problems."""
    pairs = p.mapping(node, where, "metric -> critical, warning, direction")
    if pairs is None:
        return MISSING
    out: list[Threshold] = []
    ok = True
    for metric, (key_node, value_node) in pairs.items():
        path = f"{where}.{metric}"
        why = _metric_name(metric)
        if why:
            p.problem(key_node, path, why)
            ok = False
            continue
        t = _threshold(p, metric, value_node, path)
        if t is None:
            ok = False
        else:
            out.append(t)
    return tuple(out) if ok else MISSING


def _threshold(p: NodeParser, metric: str, node: yaml.Node, where: str) -> Threshold | None:
    before = len(p.problems)
    pairs = p.mapping(node, where, "critical, warning, direction, relative_to, enabled")
    if pairs is None:
        return None
    for name, (key_node, _) in pairs.items():
        if name not in _FIELDS:
            p.unknown(key_node, where, _FIELDS, f"; a threshold takes {', '.join(_FIELDS)}")
    known = m.direction_of(metric)
    direction = known
    if "direction" in pairs:
        given = p.convert(pairs["direction"][1], f"{where}.direction", one_of(DIRECTIONS))
        if given is not MISSING:
            if known is not None and given != known:
                p.problem(pairs["direction"][1], f"{where}.direction", f"{metric} is {known}, got {got(given)}")
            direction = given
        else:
            direction = None
    elif known is None:
        p.problem(node, f"{where}.direction", f"required for {metric} ({' or '.join(DIRECTIONS)})")
    relative = None
    if "relative_to" in pairs:
        relative = p.convert(pairs["relative_to"][1], f"{where}.relative_to", one_of(RELATIVE_TO))
        relative = None if relative is MISSING else relative
        if relative == "slo" and not metric.startswith("prometheus."):
            p.problem(pairs["relative_to"][1], f"{where}.relative_to", "only Prometheus figures have SLOs")
    limits: dict[str, Limit] = {}
    if direction is not None:
        for level in ("critical", "warning"):
            if level in pairs:
                got_limit = p.convert(pairs[level][1], f"{where}.{level}", _limit(direction, relative is not None))
                if got_limit is not MISSING:
                    limits[level] = got_limit
    if "critical" not in pairs and "warning" not in pairs:
        p.problem(node, where, "give critical and/or warning")
    if (
        len(limits) == 2
        and direction is not None
        and not _worse_or_equal(direction, limits["critical"], limits["warning"])
    ):
        p.problem(
            pairs["critical"][1],
            f"{where}.critical",
            f"must be at least as bad as warning ({limits['warning']}) for a {direction} metric, "
            f"got {limits['critical']}",
        )
    enabled = True
    if "enabled" in pairs:
        value = p.convert(pairs["enabled"][1], f"{where}.enabled", boolean)
        enabled = True if value is MISSING else value
    description = ""
    if "description" in pairs:
        value = p.convert(pairs["description"][1], f"{where}.description", text)
        description = "" if value is MISSING else value
    if len(p.problems) > before or direction is None:
        return None
    return Threshold(
        metric,
        direction,
        limits.get("critical"),
        limits.get("warning"),
        relative,
        enabled,
        description,
        node.start_mark.line + 1,
    )
