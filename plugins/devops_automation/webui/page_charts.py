"""The pages' charts: what the read queries return, drawn by the package's shared charts
(:mod:`devops_automation.charts`: the weekly report's palette, fonts, sizes and chart kinds) as SVG.

Each function takes query results and returns the chart's bytes; the pages ask for them as images
(``/ui/charts/<name>.svg``), and :mod:`.pages` keeps the drawn bytes for a minute (drawing takes 0.1–0.4 s).
Plain Python (no Airflow).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from devops_automation import charts

FMT = "svg"
#: CI figures drawn per group (bars: previous and this window) and per day (lines):
#: figure -> (axis label, unit kind, chart title)
CI_METRICS: Mapping[str, tuple[str, str, str]] = {
    "success_rate": ("Success rate", "ratio", "Success rate"),
    "duration_p90_s": ("p90 duration", "seconds", "Run duration (p90)"),
    "queue_run_p90_s": ("p90 queue time", "seconds", "Queue time (p90)"),
    "mttr_s": ("MTTR", "seconds", "Mean time to recovery"),
}
PREVIOUS, CURRENT = "Previous period", "This period"


def seconds_unit(values: Sequence[float | None]) -> tuple[str, float]:
    """The unit seconds read best in (as the weekly report picks it): ``(unit, divisor)``."""
    known = [v for v in values if v is not None]
    if known and max(known) >= 2 * 86400:
        return "d", 86400.0
    if known and max(known) >= 7200:
        return "h", 3600.0
    if known and max(known) >= 120:
        return "min", 60.0
    return "s", 1.0


def _scaled(values: Sequence[float | None], kind: str) -> tuple[list[float | None], str]:
    if kind == "ratio":
        return [None if v is None else v * 100 for v in values], "%"
    unit, factor = seconds_unit(values)
    return [None if v is None else v / factor for v in values], unit


def group_label(key: Mapping[str, Any], repo_selected: bool = False) -> str:
    """A ``window_summary`` group's name: its repository (and workflow; only the workflow when one
    repository is shown)."""
    parts = []
    if key.get("repo") and not (repo_selected and key.get("workflow")):
        parts.append(str(key["repo"]))
    if key.get("workflow"):
        parts.append(str(key["workflow"]))
    if key.get("branch"):
        parts.append(str(key["branch"]))
    return " · ".join(parts) or str(key.get("provider") or "all")


def top_groups(summary: Mapping[str, Any], limit: int = charts.MAX_BAR_CATEGORIES) -> list[Mapping[str, Any]]:
    """The groups with the most runs in the window (then name), at most ``limit``."""
    groups = [g for g in summary.get("groups") or [] if (g.get("current") or {}).get("runs")]
    groups.sort(key=lambda g: (-int(g["current"]["runs"]), group_label(g["key"])))
    return groups[:limit]


def ci_groups_chart(summary: Mapping[str, Any], metric: str, *, repo_selected: bool = False) -> bytes:
    """Bars per repository (or workflow): ``metric`` in the previous window and this one."""
    label, kind, title = CI_METRICS[metric]
    groups = top_groups(summary)
    current = [(g.get("current") or {}).get(metric) for g in groups]
    previous = [(g.get("previous") or {}).get(metric) for g in groups]
    both, unit = _scaled([*current, *previous], kind)
    by_workflow = repo_selected or any(g["key"].get("workflow") for g in groups)
    return charts.bar_chart(
        f"{title} by {'workflow' if by_workflow else 'repository'}",
        [group_label(g["key"], repo_selected) for g in groups],
        {PREVIOUS: both[len(groups) :], CURRENT: both[: len(groups)]},
        y_label=label,
        unit=unit,
        x_label="Workflow" if by_workflow else "Repository",
        fmt=FMT,
    )


#: At most this many day labels under a chart (the others are left blank, the last day always labelled).
MAX_DAY_LABELS = 10


def day_labels(days: Sequence[dt.date]) -> list[str]:
    """``MM-DD`` of each day; with more than :data:`MAX_DAY_LABELS` days every n-th, counted from the last."""
    step = max(1, -(-len(days) // MAX_DAY_LABELS))
    last = len(days) - 1
    return [d.strftime("%m-%d") if (last - i) % step == 0 else "" for i, d in enumerate(days)]


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def ci_trend_chart(rows: Sequence[Mapping[str, Any]], metric: str, days: Sequence[dt.date]) -> bytes:
    """A line per repository (or workflow · branch) of a daily figure of ``ci_daily``: the 8 with the most
    runs over the days."""
    label, kind, title = CI_METRICS[metric]
    runs: dict[str, int] = defaultdict(int)
    values: dict[str, dict[dt.date, float | None]] = defaultdict(dict)
    for row in rows:
        name = row["repo"] if row["workflow"] == "*" else f"{row['workflow']} · {row['branch']}"
        runs[name] += int(row["runs"] or 0)
        values[name][row["day"]] = row.get(metric)
    names = sorted(runs, key=lambda n: (-runs[n], n))[: charts.MAX_SERIES]
    raw = {n: [values[n].get(d) for d in days] for n in names}
    flat, unit = _scaled([v for series in raw.values() for v in series], kind)
    width = len(days)
    series = {n: flat[i * width : (i + 1) * width] for i, n in enumerate(names)}
    return charts.line_chart(
        f"{title} per day", day_labels(days), series, y_label=label, unit=unit, x_label="Day", fmt=FMT
    )


def failures_chart(rows: Sequence[Mapping[str, Any]], days: Sequence[dt.date]) -> bytes:
    """Analysed failures per day, stacked by category (the 7 most frequent, then "other")."""
    totals: dict[str, int] = defaultdict(int)
    per: dict[str, dict[dt.date, int]] = defaultdict(dict)
    for row in rows:
        totals[row["category"]] += row["failures"]
        per[row["category"]][row["day"]] = row["failures"]
    ordered = sorted(totals, key=lambda c: (-totals[c], c))
    shown, rest = ordered[:7], ordered[7:]
    series: dict[str, list[float | None]] = {c: [float(per[c].get(d, 0)) for d in days] for c in shown}
    if rest:
        series["other"] = [float(sum(per[c].get(d, 0) for c in rest)) for d in days]
    return charts.stacked_bar(
        "Analysed failures per day",
        day_labels(days),
        series,
        y_label="Failed jobs",
        unit="count",
        x_label="Day",
        fmt=FMT,
    )


def health_chart(rows: Sequence[Mapping[str, Any]], days: Sequence[dt.date], projects: Sequence[str]) -> bytes:
    """A line per project (at most 8, in the order given) of its health score per day."""
    scores: dict[str, dict[dt.date, float]] = defaultdict(dict)
    for row in rows:
        scores[row["project"]][row["day"]] = row["score"]
    names = list(projects)[: charts.MAX_SERIES]
    series = {n: [scores[n].get(d) for d in days] for n in names}
    return charts.line_chart(
        "Health score", day_labels(days), series, y_label="Score", unit="0–100", x_label="Day", fmt=FMT
    )


def dimensions(components: Any) -> dict[str, float | None]:
    """The dimension scores stored with a health score (``components["dimensions"]``), else its flat
    numeric inputs (older or hand-written rows)."""
    if isinstance(components, Mapping):
        dims = components.get("dimensions")
        if isinstance(dims, Mapping):
            return {str(k): (float(v) if isinstance(v, int | float) else None) for k, v in dims.items()}
        return {
            str(k): float(v)
            for k, v in components.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and k not in ("score", "weight_total")
        }
    return {}


def project_chart(history: Sequence[Mapping[str, Any]], project: str) -> bytes:
    """One project's score and its dimensions' scores per day."""
    days = [row["day"] for row in history]
    series: dict[str, list[float | None]] = {"Score": [row["score"] for row in history]}
    dims: dict[str, list[float | None]] = defaultdict(lambda: [None] * len(history))
    for i, row in enumerate(history):
        for name, value in dimensions(row.get("components")).items():
            dims[name][i] = value
    for name in sorted(dims)[: charts.MAX_SERIES - 1]:
        series[name] = dims[name]
    return charts.line_chart(
        f"Health of {project}", day_labels(days), series, y_label="Score", unit="0–100", x_label="Day", fmt=FMT
    )


__all__ = [
    "CI_METRICS",
    "ci_groups_chart",
    "ci_trend_chart",
    "day_labels",
    "days_between",
    "dimensions",
    "failures_chart",
    "group_label",
    "health_chart",
    "project_chart",
    "seconds_unit",
    "top_groups",
]
