"""Rows of the ``project_metrics`` table and what collecting one source for one project returns.

Plain Python (no Airflow). A row has exactly the table's columns except ``id`` and ``collected_at``
(the writer adds the time): ``day, source, project, metric, value_raw, value, unit``. ``value_raw``
is what the source sent (a string, at most 255 characters), ``value`` its number when there is a
finite one (None for NaN/±Inf, text, or no data). "No data" is a row with ``value_raw = "no data"``
and ``value = None``, never 0.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

NO_DATA = "no data"
#: ``errors`` key of a failure of the whole source for the project (unreachable, token refused, unknown project)
WHOLE_SOURCE = "*"
VALUE_RAW_MAX = 255  # project_metrics.value_raw is String(255)
ROW_KEYS = ("day", "source", "project", "metric", "value_raw", "value", "unit")


def to_float(raw: Any) -> float | None:
    """A source's value as a finite float; None for NaN, ±Inf, None, booleans and text."""
    if raw is None or isinstance(raw, bool):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def day_of(start: dt.datetime, end: dt.datetime) -> dt.date:
    """The day ``[start, end)`` stands for: ``start``'s UTC date. Both must be aware, ``start < end``."""
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    if not start < end:
        raise ValueError(f"the interval is empty: start {start.isoformat()} is not before end {end.isoformat()}")
    return start.astimezone(dt.UTC).date()


def metric_row(
    day: dt.date,
    source: str,
    project: str,
    metric: str,
    value_raw: Any,
    value: float | None,
    unit: str | None,
) -> dict[str, Any]:
    """One ``project_metrics`` row (``value_raw`` None means no data)."""
    raw = NO_DATA if value_raw is None else str(value_raw)
    return {
        "day": day,
        "source": source,
        "project": project,
        "metric": metric,
        "value_raw": raw[:VALUE_RAW_MAX],
        "value": None if value_raw is None else value,
        "unit": unit,
    }


@dataclass
class MetricsResult:
    """What collecting one source for one project and day gave.

    ``rows``: one per figure computed (no-data rows included); a figure that failed has no row (so a
    re-run after a transient error does not overwrite a stored value) and an entry in ``errors``
    (metric name -> message; :data:`WHOLE_SOURCE` when the source itself failed for this project, the
    figures then listed in ``not_collected``). ``details``: extra facts for messages and scores
    (quality-gate conditions, rating letters); ``warnings``: what the source warned about."""

    source: str
    project: str
    day: dt.date
    rows: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    not_collected: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def source_failed(self) -> bool:
        return WHOLE_SOURCE in self.errors

    def values(self) -> dict[str, float | None]:
        """``{metric: value}`` of the rows (None = no data)."""
        return {r["metric"]: r["value"] for r in self.rows}

    def problems(self) -> list[str]:
        """One line per error, naming project, source and metric (for the run note and the log)."""
        out = []
        for metric, message in self.errors.items():
            what = self.source if metric == WHOLE_SOURCE else f"{self.source} {metric!r}"
            out.append(f"{self.project}: {what}: {message}")
        if self.not_collected:
            out.append(f"{self.project}: {self.source}: not collected: {', '.join(self.not_collected)}")
        return out

    def as_dict(self) -> dict[str, Any]:
        """JSON-able (days as ISO strings), e.g. for XCom."""
        return {
            "source": self.source,
            "project": self.project,
            "day": self.day.isoformat(),
            "rows": [{**r, "day": r["day"].isoformat()} for r in self.rows],
            "errors": dict(self.errors),
            "not_collected": list(self.not_collected),
            "warnings": list(self.warnings),
            "details": dict(self.details),
        }
