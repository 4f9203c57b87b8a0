"""A project's Prometheus figures for one day ``[start, end)`` (plain Python, no Airflow).

Each configured query gives one ``project_metrics`` row (source ``prometheus``, metric = its name):

* ``kind: instant`` (the default): ``/api/v1/query`` evaluated **at ``end``** (``time=end``), so a
  re-run or a backfill of a past day gives what that day was. ``value_raw`` is the sample as
  Prometheus sent it (``"0.0123"``, ``"NaN"``, ``"+Inf"``), ``value`` its float when finite, else None;
* ``kind: range``: ``/api/v1/query_range`` from ``start`` to the last step before ``end`` (every
  ``step``, default 5m), reduced by ``aggregation``: ``avg`` (default), ``min``, ``max`` over the
  finite points, or ``last`` (the last point, whatever it is). ``min``/``max``/``last`` keep the
  point's string; ``avg`` writes the mean (``str(float)``). Only NaN/±Inf points: the last one's
  string with ``value`` None;
* an empty result is "no data" (``value_raw = "no data"``, ``value`` None), never an error or 0;
* a query that returns several series is an error for that query (aggregate it in PromQL).

A query error (bad PromQL: 400 ``bad_data``; 422 ``execution``; a query timeout; a bad
configuration) is recorded for that query and the others are still computed. When Prometheus
itself fails (unreachable, token refused, a proxy's 5xx after the retries) the remaining queries are
not sent: ``errors["*"]`` says why and ``not_collected`` lists them.

Queries are mappings (or objects with these attributes): ``name``, ``query``, ``unit``,
``direction`` (not used here), ``kind`` (``instant``/``range``), ``step`` (or ``step_s``, seconds:
the ``PromQuery`` of ``projects.py``), ``aggregation``.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from devops_automation.workflows.daily_project_metrics.metric_rows import (
    WHOLE_SOURCE,
    MetricsResult,
    day_of,
    metric_row,
    to_float,
)

log = logging.getLogger(__name__)

SOURCE = "prometheus"
KINDS = ("instant", "range")
AGGREGATIONS = ("avg", "min", "max", "last")
DEFAULT_STEP = "5m"
DEFAULT_AGGREGATION = "avg"
MAX_POINTS = 11_000  # Prometheus's limit per series in a range query
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


class PrometheusQuerier(Protocol):
    """What this module needs of ``PrometheusHook`` (results with ``single()`` and ``warnings``)."""

    def query(self, promql: str, time: dt.datetime) -> Any: ...

    def query_range(self, promql: str, start: dt.datetime, end: dt.datetime, step: float) -> Any: ...


@dataclass(frozen=True)
class QuerySpec:
    """One configured query, checked."""

    name: str
    query: str
    unit: str | None = None
    kind: str = "instant"
    step: float = 300.0  # seconds (range queries)
    aggregation: str = DEFAULT_AGGREGATION  # range queries


def duration_seconds(value: Any) -> float:
    """A step as seconds: a timedelta, a number, or a PromQL duration (``30s``, ``5m``, ``1h30m``)."""
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            pos, seconds = 0, 0.0
            for m in _DURATION.finditer(text):
                if m.start() != pos:
                    break
                seconds += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
                pos = m.end()
            if pos != len(text):
                raise ValueError(f"{value!r} is not a duration (e.g. 30s, 5m, 1h)") from None
    else:
        raise ValueError(f"{value!r} is not a duration (e.g. 30s, 5m, 1h)")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{value!r} must be a positive duration")
    return seconds


def _field(item: Any, key: str, default: Any = None) -> Any:
    value = item.get(key, default) if isinstance(item, Mapping) else getattr(item, key, default)
    return default if value is None else value


def query_spec(item: Any, where: str = "query") -> QuerySpec:
    """A :class:`QuerySpec` from a mapping or an object; ``ValueError`` naming ``where`` and the field."""
    name, promql = _field(item, "name"), _field(item, "query")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{where}: field 'name' must be a non-empty string, got {name!r}")
    if not isinstance(promql, str) or not promql.strip():
        raise ValueError(f"{where} ({name}): field 'query' must be a non-empty PromQL string, got {promql!r}")
    unit = _field(item, "unit")
    if unit is not None and not isinstance(unit, str):
        raise ValueError(f"{where} ({name}): field 'unit' must be a string, got {unit!r}")
    kind = str(_field(item, "kind", "instant")).strip().lower()
    if kind not in KINDS:
        raise ValueError(f"{where} ({name}): field 'kind' must be one of {KINDS}, got {kind!r}")
    aggregation = str(_field(item, "aggregation", DEFAULT_AGGREGATION)).strip().lower()
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"{where} ({name}): field 'aggregation' must be one of {AGGREGATIONS}, got {aggregation!r}")
    try:
        step = duration_seconds(_field(item, "step", _field(item, "step_s", DEFAULT_STEP)))
    except ValueError as exc:
        raise ValueError(f"{where} ({name}): field 'step': {exc}") from None
    return QuerySpec(name.strip(), promql.strip(), unit, kind, step, aggregation)


def range_end(start: dt.datetime, end: dt.datetime, step: float) -> dt.datetime:
    """The last evaluation time ``start + k * step`` strictly before ``end`` (``query_range``'s end
    is inclusive: the point at ``end`` belongs to the next day)."""
    span = (end - start).total_seconds()
    steps = math.ceil(span / step) - 1
    return start + dt.timedelta(seconds=max(0, steps) * step)


def aggregate(raws: Sequence[str], aggregation: str) -> tuple[str | None, float | None]:
    """``(value_raw, value)`` of a range's point strings; ``(None, None)`` when there is no point."""
    if not raws:
        return None, None
    if aggregation == "last":
        return raws[-1], to_float(raws[-1])
    finite = [(raw, v) for raw in raws if (v := to_float(raw)) is not None]
    if not finite:
        return raws[-1], None
    if aggregation == "min":
        raw, value = min(finite, key=lambda p: p[1])
        return raw, value
    if aggregation == "max":
        raw, value = max(finite, key=lambda p: p[1])
        return raw, value
    if aggregation == "avg":
        mean = math.fsum(v for _, v in finite) / len(finite)
        return str(mean), mean
    raise ValueError(f"unknown aggregation {aggregation!r} (one of {AGGREGATIONS})")


def is_query_error(exc: BaseException) -> bool:
    """The query's own fault (bad PromQL, not executable, timed out, bad configuration): others may work."""
    return getattr(exc, "per_query", None) is True or isinstance(exc, ValueError)


def is_source_error(exc: BaseException) -> bool:
    """Prometheus itself failed: an API error (it has ``status`` and ``system``) or a network error."""
    return isinstance(exc, OSError) or (hasattr(exc, "status") and hasattr(exc, "system"))


def _figure(
    hook: PrometheusQuerier, spec: QuerySpec, start: dt.datetime, end: dt.datetime
) -> tuple[str | None, float | None, tuple[str, ...], dict[str, Any]]:
    """``(value_raw, value, warnings, how)`` of one query."""
    if spec.kind == "instant":
        result = hook.query(spec.query, end)
        sample = result.single()
        how: dict[str, Any] = {"kind": "instant", "time": end.isoformat()}
        if sample is None:
            return None, None, tuple(result.warnings), how
        return sample.value_raw, to_float(sample.value_raw), tuple(result.warnings), how
    last = range_end(start, end, spec.step)
    if (last - start).total_seconds() / spec.step > MAX_POINTS:
        raise ValueError(
            f"range query {spec.query!r}: step {spec.step:g}s over {start.isoformat()}..{end.isoformat()} gives "
            f"more than Prometheus's {MAX_POINTS:,} points per series: use a larger step"
        )
    result = hook.query_range(spec.query, start, last, spec.step)
    series = result.single()
    raws = [p.value_raw for p in series.points] if series is not None else []
    raw, value = aggregate(raws, spec.aggregation)
    how = {
        "kind": "range",
        "start": start.isoformat(),
        "end": last.isoformat(),
        "step": spec.step,
        "aggregation": spec.aggregation,
        "points": len(raws),
    }
    return raw, value, tuple(result.warnings), how


def prometheus_figures(
    hook: PrometheusQuerier, project: str, queries: Iterable[Any], start: dt.datetime, end: dt.datetime
) -> MetricsResult:
    """The project's Prometheus rows for the day ``[start, end)`` (see the module docstring)."""
    day = day_of(start, end)
    result = MetricsResult(SOURCE, project, day)
    evaluated: dict[str, Any] = {}
    result.details["queries"] = evaluated
    specs: list[QuerySpec] = []
    for i, item in enumerate(queries):
        where = f"project {project!r} prometheus query #{i + 1}"
        try:
            spec = query_spec(item, where)
        except ValueError as exc:
            name = _field(item, "name")
            result.errors[name if isinstance(name, str) and name.strip() else f"#{i + 1}"] = str(exc)
            continue
        if spec.name in result.errors or any(s.name == spec.name for s in specs):
            result.errors[spec.name] = f"{where}: metric name {spec.name!r} is used twice in this project"
            specs = [s for s in specs if s.name != spec.name]
            continue
        specs.append(spec)
    for n, spec in enumerate(specs):
        try:
            raw, value, warnings, how = _figure(hook, spec, start, end)
        except Exception as exc:
            if is_query_error(exc):
                result.errors[spec.name] = str(exc)
                log.warning("%s: prometheus %r: %s", project, spec.name, exc)
                continue
            if is_source_error(exc):
                result.errors[WHOLE_SOURCE] = f"failed on {spec.name!r}, the remaining queries were not sent: {exc}"
                result.not_collected = [s.name for s in specs[n:]]
                log.warning("%s: prometheus failed: %s", project, exc)
                break
            raise
        result.warnings += [f"{spec.name}: {w}" for w in warnings]
        evaluated[spec.name] = how
        result.rows.append(metric_row(day, SOURCE, project, spec.name, raw, value, spec.unit))
    return result
