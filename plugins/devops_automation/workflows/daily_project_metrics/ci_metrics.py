"""CI figures of ``daily_project_metrics`` from ``ci_pipeline_analytics``' tables (plain Python).

A project's CI is its GitHub repository (else its GitLab project); its figures are those of
:func:`devops_automation.ci_analytics.analytics.window_summary` grouped by repository over the window
the DAG chooses (``ci_window_days``, 7 by default) ending at the interval's end. A repository without a
completed run in the window gives no CI row at all ("no data"), DORA figures only where deployments
were counted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from devops_automation.workflows.daily_project_metrics.metric_rows import metric_row

SOURCE = "ci"
#: (metric, figure key in ``Figures.to_dict()``, unit)
RUN_FIGURES = (
    ("success_rate", "success_rate", "ratio"),
    ("first_attempt_success_rate", "first_attempt_success_rate", "ratio"),
    ("runs", "runs", "count"),
    ("mttr_s", "mttr_s", "s"),
)
DORA_FIGURES = (
    ("deployments_per_day", "deployments_per_day", "1/d"),
    ("lead_time_p50_s", "lead_time_p50_s", "s"),
    ("change_failure_rate", "change_failure_rate", "ratio"),
    ("recovery_time_p50_s", "recovery_time_p50_s", "s"),
)


def ci_sources(projects: Iterable[Any]) -> dict[str, tuple[str, str]]:
    """``{project name: (provider, repo)}`` for the projects with a GitHub repository or GitLab project."""
    out = {}
    for p in projects:
        if getattr(p, "github", None):
            out[p.name] = ("github", str(p.github))
        elif getattr(p, "gitlab", None) not in (None, ""):
            out[p.name] = ("gitlab", str(p.gitlab))
    return out


def _raw(value: Any) -> str | None:
    if value is None:
        return None
    return f"{value:g}" if isinstance(value, float) else str(value)


def ci_rows(summary: Mapping[str, Any], sources: Mapping[str, tuple[str, str]], day: dt.date) -> list[dict[str, Any]]:
    """``project_metrics`` rows (source ``ci``) of a :func:`window_summary` grouped by repository."""
    groups = {(g["key"]["provider"], g["key"]["repo"]): g["current"] for g in summary.get("groups") or []}
    rows = []
    for project, key in sorted(sources.items()):
        figures = groups.get(key)
        if not figures or not figures.get("runs"):
            continue
        for metric, name, unit in RUN_FIGURES:
            value = figures.get(name)
            rows.append(metric_row(day, SOURCE, project, metric, _raw(value), value, unit))
        flaky = figures.get("flaky_jobs") or []
        rows.append(metric_row(day, SOURCE, project, "flaky_jobs", str(len(flaky)), float(len(flaky)), "count"))
        dora = figures.get("dora")
        if dora and (dora.get("deployments") or dora.get("failed_deployments")):
            for metric, name, unit in DORA_FIGURES:
                value = dora.get(name)
                rows.append(metric_row(day, SOURCE, project, metric, _raw(value), value, unit))
    return rows
