"""A project's SonarQube figures for one day ``[start, end)`` (plain Python, no Airflow).

Figures (metric name -> SonarQube key, unit; :data:`FIGURES`): ``coverage``, ``new_coverage`` (%),
``bugs``, ``vulnerabilities``, ``new_vulnerabilities``, ``code_smells`` (counts),
``duplicated_lines_density`` (%), ``reliability_rating``, ``security_rating``,
``maintainability_rating`` (``sqale_rating``) (1.0-5.0 = A-E), ``security_hotspots_reviewed`` (%),
``ncloc`` (lines), ``technical_debt`` (``sqale_index``, minutes) and ``quality_gate`` (``OK`` = 1,
``WARN`` = 0.5, ``ERROR`` = 0; ``NONE``, no gate: the row has ``value_raw`` "NONE" and no value).
New-code figures are the period values SonarQube shows for its new-code period.

* The latest interval (``latest=True``; :func:`is_latest_interval` tells it from the run's ``now``):
  the current measures (``api/measures/component``) and the gate (``api/qualitygates/project_status``).
* A past day (a backfill, or a re-run days later): ``api/measures/search_history`` from
  ``end - history_days`` to ``end``; each figure is the value of the last analysis before
  ``end`` (what SonarQube showed at the end of that day; an analysis without the measure is "no
  data"), the gate from the ``alert_status`` history. So a backfill gives that day's values.

``value_raw`` is the string SonarQube sent ("82.6", "3.0", "ERROR"); ``value`` its number. A rating
whose classic key is absent (SonarQube 10.8+ in MQR mode) falls back to its ``software_quality_*``
twin. Letters A-E are for display (:func:`rating_letter`; ``details["letters"]``), not stored.
A measure SonarQube does not have is a "no data" row. A failed call (token refused, unknown project,
unreachable) fails the whole source for the project: ``errors["*"]``, no rows; a failed gate call
after good measures fails only ``quality_gate``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from devops_automation.workflows.daily_project_metrics.metric_rows import (
    WHOLE_SOURCE,
    MetricsResult,
    day_of,
    metric_row,
    to_float,
)

log = logging.getLogger(__name__)

SOURCE = "sonarqube"
GATE_METRIC = "quality_gate"
GATE_KEY = "alert_status"
#: metric name -> (SonarQube metric keys, first found wins; unit)
FIGURES: dict[str, tuple[tuple[str, ...], str]] = {
    "coverage": (("coverage",), "%"),
    "new_coverage": (("new_coverage",), "%"),
    "bugs": (("bugs",), "count"),
    "vulnerabilities": (("vulnerabilities",), "count"),
    "new_vulnerabilities": (("new_vulnerabilities",), "count"),
    "code_smells": (("code_smells",), "count"),
    "duplicated_lines_density": (("duplicated_lines_density",), "%"),
    "reliability_rating": (("reliability_rating", "software_quality_reliability_rating"), "rating"),
    "security_rating": (("security_rating", "software_quality_security_rating"), "rating"),
    "maintainability_rating": (("sqale_rating", "software_quality_maintainability_rating"), "rating"),
    "security_hotspots_reviewed": (("security_hotspots_reviewed",), "%"),
    "ncloc": (("ncloc",), "lines"),
    "technical_debt": (("sqale_index",), "min"),
}
GATE_UNIT = "status"
GATE_VALUES = {"OK": 1.0, "WARN": 0.5, "ERROR": 0.0}  # NONE (no gate): no value
RATING_LETTERS = "ABCDE"
DEFAULT_HISTORY_DAYS = 365


class SonarQubeReader(Protocol):
    """What this module needs of ``SonarQubeHook``."""

    def measures(self, project_key: str, metric_keys: Sequence[str]) -> Mapping[str, str]: ...

    def measures_history(
        self, project_key: str, metric_keys: Sequence[str], from_: dt.datetime, to: dt.datetime
    ) -> Mapping[str, Sequence[tuple[dt.datetime, str | None]]]: ...

    def quality_gate(self, project_key: str) -> Mapping[str, Any]: ...


def sonar_keys() -> list[str]:
    """Every SonarQube metric key the figures read (without ``alert_status``)."""
    return [key for keys, _ in FIGURES.values() for key in keys]


def rating_letter(value: Any) -> str | None:
    """A SonarQube rating ("1.0".."5.0", or the number) as its letter A..E; None when it is none."""
    number = to_float(value)
    if number is None:
        return None
    index = round(number)
    return RATING_LETTERS[index - 1] if 1 <= index <= len(RATING_LETTERS) else None


def gate_value(status: str | None) -> float | None:
    """``OK`` 1.0, ``WARN`` 0.5, ``ERROR`` 0.0; None for ``NONE`` (no gate), absent or unknown."""
    return GATE_VALUES.get(str(status).upper()) if status is not None else None


def is_latest_interval(start: dt.datetime, end: dt.datetime, now: dt.datetime) -> bool:
    """Whether ``[start, end)`` is the latest complete interval at ``now`` (or not over yet): the
    current measures then are that day's. Any earlier interval is a past day (history)."""
    return now < end + (end - start)


def value_at(points: Sequence[tuple[dt.datetime, str | None]], end: dt.datetime) -> tuple[bool, str | None]:
    """``(found, value)`` of the last analysis strictly before ``end``; found is False when there is none."""
    before = [p for p in points if p[0] < end]
    if not before:
        return False, None
    return True, max(before, key=lambda p: p[0])[1]


def _pick(values: Mapping[str, str | None], keys: Sequence[str]) -> str | None:
    for key in keys:
        if values.get(key) is not None:
            return values[key]
    return None


def _describe(exc: BaseException) -> str:
    return str(exc) or exc.__class__.__name__


def is_source_error(exc: BaseException) -> bool:
    """SonarQube (or the way to it) failed: an API error (``status`` and ``system``) or a network error."""
    return isinstance(exc, OSError) or (hasattr(exc, "status") and hasattr(exc, "system"))


def sonarqube_figures(
    hook: SonarQubeReader,
    project: str,
    project_key: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    latest: bool,
    history_days: int = DEFAULT_HISTORY_DAYS,
) -> MetricsResult:
    """The project's SonarQube rows for the day ``[start, end)`` (see the module docstring)."""
    day = day_of(start, end)
    result = MetricsResult(SOURCE, project, day)
    if not isinstance(project_key, str) or not project_key.strip():
        result.errors[WHOLE_SOURCE] = f"project {project!r}: no SonarQube project key"
        return result
    names = [*FIGURES, GATE_METRIC]
    gate: str | None = None
    values: dict[str, str | None] = {}
    try:
        if latest:
            result.details["mode"] = "current"
            values = dict(hook.measures(project_key, sonar_keys()))
        else:
            result.details["mode"] = "history"
            frm = end - dt.timedelta(days=history_days)
            to = end  # inclusive (in whole seconds); an analysis at `end` itself is left out below
            result.details["history"] = {"from": frm.isoformat(), "to": to.isoformat()}
            history = hook.measures_history(project_key, [*sonar_keys(), GATE_KEY], frm, to)
            analysed = False
            for key, points in history.items():
                found, value = value_at(points, end)
                analysed = analysed or found
                values[key] = value
            if not analysed:
                result.warnings.append(
                    f"no SonarQube analysis of {project_key!r} in the {history_days} days before {end}"
                )
            gate = values.get(GATE_KEY)
    except Exception as exc:
        if not is_source_error(exc):
            raise
        result.errors[WHOLE_SOURCE] = f"SonarQube project {project_key!r}: {_describe(exc)}"
        result.not_collected = names
        log.warning("%s: sonarqube failed: %s", project, exc)
        return result
    letters: dict[str, str | None] = {}
    for name, (keys, unit) in FIGURES.items():
        raw = _pick(values, keys)
        result.rows.append(metric_row(day, SOURCE, project, name, raw, to_float(raw), unit))
        if unit == "rating":
            letters[name] = rating_letter(raw)
    result.details["letters"] = letters
    if latest:
        try:
            status = hook.quality_gate(project_key)
        except Exception as exc:
            if not is_source_error(exc):
                raise
            result.errors[GATE_METRIC] = f"SonarQube project {project_key!r}: {_describe(exc)}"
            result.not_collected = [GATE_METRIC]
            return result
        gate = status.get("status")
        result.details["quality_gate"] = {
            "status": gate,
            "conditions": [dict(c) for c in status.get("conditions") or [] if isinstance(c, Mapping)],
        }
    result.rows.append(metric_row(day, SOURCE, project, GATE_METRIC, gate, gate_value(gate), GATE_UNIT))
    return result
