"""Threshold alerts of ``daily_project_metrics`` (plain Python, no Airflow).

Each threshold of ``health.yaml`` evaluated on a project's figures of the day (:func:`.thresholds.
evaluate_thresholds`) becomes a condition on the alert ``threshold:<metric>`` for that project: firing
when the level is critical or warning (the severity is the level), ok otherwise. The shared alert
history (``store.alert_events``, source ``daily_project_metrics``) turns conditions into episodes: an
alert starts once and resolves once. A figure without data this day gives no condition: its open alert
stays open (no news is not good news); an alert whose threshold left the file resolves.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import math
from collections.abc import Iterable, Mapping
from typing import Any

from devops_automation.workflows.daily_project_metrics import metrics as m
from devops_automation.workflows.daily_project_metrics.thresholds import Breach

SOURCE = "daily_project_metrics"
RULE_PREFIX = "threshold:"
DEDUP_PREFIX = "metrics-alert"
SEVERITY_EMOJI = {"critical": "\U0001f534", "warning": "\U0001f7e0"}
RESOLVED_EMOJI = "\u2705"


def rule_id(metric: str) -> str:
    return f"{RULE_PREFIX}{metric}"


def metric_of(rule: str) -> str:
    return rule[len(RULE_PREFIX) :] if rule.startswith(RULE_PREFIX) else rule


@dataclasses.dataclass(frozen=True)
class MetricCondition:
    """One threshold on one project's figure of the day (what ``alert_events.transitions`` reads)."""

    rule_id: str
    scope_key: str  # the project's name
    state: str  # firing | ok
    severity: str  # critical | warning (ok: the mildest level the threshold has)
    value: float | None
    threshold: float | None
    details: Mapping[str, Any]


def conditions(
    project: str, breaches: Iterable[Breach], day: dt.date, units: Mapping[str, str | None] | None = None
) -> list[MetricCondition]:
    """The conditions of one project's evaluated thresholds. ``units``: the units of figures the
    catalogue does not know (the project's own Prometheus queries), by ``"<source>.<metric>"``."""
    out = []
    for b in breaches:
        firing = b.level in ("critical", "warning")
        metric = m.CATALOGUE.get(b.metric)
        unit = metric.unit if metric else (units or {}).get(b.metric)
        out.append(
            MetricCondition(
                rule_id=rule_id(b.metric),
                scope_key=project,
                state="firing" if firing else "ok",
                severity=b.level if firing else "warning",
                value=b.value,
                threshold=b.threshold,
                details={
                    "kind": "threshold",
                    "project": project,
                    "metric": b.metric,
                    "level": b.level,
                    "op": b.op,
                    "direction": b.direction,
                    "unit": unit,
                    "day": day.isoformat(),
                },
            )
        )
    return out


def shown(value: Any, unit: Any) -> str:
    """A figure as a person reads it: ratios as percentages, SonarQube ratings as letters, the quality
    gate as its status; no unit for counts and scores (the messages and the issues use it)."""
    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return "no data"
    if unit == "ratio":
        return f"{100 * value:.1f}%"
    if unit == "rating" and 1 <= value <= 5:
        return f"{value:g} ({'ABCDE'[round(value) - 1]})"
    if unit == "status":
        return {1.0: "OK", 0.5: "WARN", 0.0: "ERROR"}.get(float(value), f"{value:g}")
    text = f"{value:,.3f}".rstrip("0").rstrip(".") if not float(value).is_integer() else f"{int(value):,}"
    return f"{text} {unit}" if unit and unit not in ("count", "score") else text


def message(event: Any, kind: str, markup: str = "text") -> str:
    """The start or resolve message of an alert episode (``markup``: text, mrkdwn for Slack, html for
    Telegram). For both Slack and Telegram, ``&``, ``<`` and ``>`` are escaped everywhere but in the bold
    markup: Telegram refuses a raw ``<`` ("can't parse entities"), which every higher-is-better threshold
    (``< 99``) would send, and Slack reads ``<...>`` as a link or mention."""
    d = dict(event.details or {})
    project, metric = str(event.scope_key), str(d.get("metric") or metric_of(event.rule_id))
    esc = (lambda s: html.escape(s, quote=False)) if markup in ("html", "mrkdwn") else str
    bold = {"html": ("<b>", "</b>"), "mrkdwn": ("*", "*")}.get(markup, ("", ""))
    unit = d.get("unit")
    at = event.started_at if kind == "start" else (event.resolved_at or event.last_evaluated_at)
    day = (at - dt.timedelta(seconds=1)).date().isoformat()  # the interval ends at the day's midnight
    if kind == "start":
        lead = f"{SEVERITY_EMOJI.get(event.severity, '')} "
        limit = f"{d.get('op', '')} {shown(event.threshold, unit)}".strip()
        rest = f": {metric} is {event.severity}: {shown(event.value, unit)} (threshold {limit}) on {day}"
    else:
        lead = f"{RESOLVED_EMOJI} "
        rest = f": {metric} recovered: {shown(d.get('resolved_value', event.value), unit)} on {day}"
    return f"{esc(lead)}{bold[0]}{esc(project)}{bold[1]}{esc(rest)}"
