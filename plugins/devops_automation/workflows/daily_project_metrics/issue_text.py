"""Texts of the GitHub/GitLab issues ``daily_project_metrics`` opens for a critical breach (plain Python).

One issue per project and rule. It is found again by its **label** and a hidden **marker** in its
body, so a lost results database never leads to a second open issue::

    <!-- devops-automation:rule=<rule id> project=<project> -->

(rule id and project percent-encoded, so that spaces, ``-->`` or ``=`` in them cannot break the
marker or make one marker a prefix of another: the marker ends with `` -->``). Each comment the DAG
writes carries the value it reported, so "comment only when the value changed materially" compares
with what the issue last said, also after a lost database::

    <!-- devops-automation:reported value=<number> level=<critical|warning|ok> -->

:func:`changed_materially` decides whether a new comment is worth writing: the first report, a
level change (critical <-> warning, or a recovery), or a value that moved by at least ``relative``
(10 %) of the last reported one (and at least ``absolute``). Figures are shown as the alert messages
show them (:func:`.alerts.shown`: ratios as percentages, ratings as letters, the quality gate as its
status, no unit for counts and scores).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from devops_automation.workflows.daily_project_metrics.alerts import shown

MARKER_PREFIX = "devops-automation"
DEFAULT_LABEL = "devops-automation"
DEFAULT_RELATIVE = 0.10
LEVELS = ("critical", "warning", "ok")
TITLE_MAX = 250  # GitHub allows 256 characters, GitLab 255
_SAFE = "/:@._~"
FOOTER = (
    "_Opened by devops-automation (`daily_project_metrics`). It comments when the value changes materially "
    "and closes this issue when the figure recovers. Keep the label and the hidden marker below: they are "
    "how it finds this issue again._"
)
_MARKER = re.compile(r"<!-- devops-automation:rule=(?P<rule>\S+) project=(?P<project>\S+) -->")
_REPORTED = re.compile(r"<!-- devops-automation:reported value=(?P<value>\S+) level=(?P<level>[a-z]+) -->")


def _encode(value: str, what: str) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError(f"the issue marker needs a non-empty {what}")
    return quote(text, safe=_SAFE)


def marker(rule_id: str, project: str) -> str:
    """The hidden marker of the issue of ``rule_id`` for ``project``."""
    return f"<!-- {MARKER_PREFIX}:rule={_encode(rule_id, 'rule id')} project={_encode(project, 'project')} -->"


def parse_marker(body: str | None) -> tuple[str, str] | None:
    """``(rule id, project)`` of the first marker in ``body``; None when there is none."""
    found = _MARKER.search(body or "")
    return (unquote(found["rule"]), unquote(found["project"])) if found else None


def has_marker(body: str | None, rule_id: str, project: str) -> bool:
    return marker(rule_id, project) in (body or "")


def reported_marker(value: float | None, level: str) -> str:
    """The hidden record of what a comment (or the issue body) reported."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    number = "none" if value is None or not math.isfinite(value) else repr(float(value))
    return f"<!-- {MARKER_PREFIX}:reported value={number} level={level} -->"


def last_reported(*bodies: str | None) -> tuple[float | None, str] | None:
    """``(value, level)`` of the last reported marker in ``bodies`` (the issue body, then its comments
    oldest first); None when none has one."""
    found: tuple[float | None, str] | None = None
    for body in bodies:
        for match in _REPORTED.finditer(body or ""):
            raw = match["value"]
            try:
                value = None if raw == "none" else float(raw)
            except ValueError:
                value = None
            found = (value, match["level"])
    return found


def changed_materially(
    previous: float | None,
    current: float | None,
    *,
    previous_level: str | None = None,
    current_level: str | None = None,
    relative: float = DEFAULT_RELATIVE,
    absolute: float = 0.0,
) -> bool:
    """Whether ``current`` is worth a new comment after ``previous`` was reported.

    True for the first report (``previous`` None while ``current`` is not), a level change, and a move
    of at least ``relative`` x |previous| that is also at least ``absolute`` (from 0, any move of at
    least ``absolute`` counts; with ``absolute`` 0, any move at all). No value now ("no data") is not
    news: False unless the level changed."""
    if previous_level is not None and current_level is not None and previous_level != current_level:
        return True
    if current is None or not math.isfinite(current):
        return False
    if previous is None or not math.isfinite(previous):
        return True
    change = abs(current - previous)
    if change == 0 or change < absolute:
        return False
    return previous == 0 or change >= relative * abs(previous)


@dataclass(frozen=True)
class IssueText:
    title: str
    body: str
    labels: tuple[str, ...] = field(default_factory=tuple)


def _figures_table(figures: Mapping[str, Any] | None, units: Mapping[str, str | None] | None = None) -> list[str]:
    if not figures:
        return []
    lines = ["", "| figure | value |", "|---|---|"]
    for name, value in figures.items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        text = shown(value, (units or {}).get(name)) if number or value is None else str(value)
        lines.append(f"| `{name}` | {text.replace('|', '/')} |")
    return lines


def issue_text(
    *,
    rule_id: str,
    project: str,
    metric: str,
    value: float | None,
    unit: str | None,
    level: str,
    threshold: str,
    day: dt.date,
    run_url: str | None = None,
    figures: Mapping[str, Any] | None = None,
    label: str = DEFAULT_LABEL,
    units: Mapping[str, str | None] | None = None,
) -> IssueText:
    """The new issue for a breach: title (without the value, which changes), body (the breach, the
    project's figures, a link to the run, the markers) and labels (``label``). ``units``: the unit of
    each figure of ``figures`` (by name), for showing them as the messages do."""
    title = f"{project}: {metric} is {level} ({threshold})"
    if len(title) > TITLE_MAX:
        title = title[: TITLE_MAX - 1] + "…"
    figure = shown(value, unit)
    lines = [
        f"**{metric}** of **{project}** is **{level}** on {day.isoformat()}: {figure} (threshold: {threshold}).",
        *_figures_table(figures, units),
        "",
        f"Run: {run_url}" if run_url else "Run: (no link)",
        "",
        FOOTER,
        "",
        marker(rule_id, project),
        reported_marker(value, level),
    ]
    return IssueText(title, "\n".join(lines), (label,))


def update_comment(
    *,
    metric: str,
    value: float | None,
    unit: str | None,
    level: str,
    day: dt.date,
    previous: float | None = None,
    run_url: str | None = None,
    previous_level: str | None = None,
) -> str:
    """A comment for a breach that goes on with a materially different value, or at another level
    (``previous_level``: what the issue last reported)."""
    was = f" (was {shown(previous, unit)})" if previous is not None else ""
    if previous_level and previous_level != level:
        state = f"is now **{level}** (was {previous_level})"
    else:
        state = f"is still **{level}**"
    lines = [f"{day.isoformat()}: **{metric}** {state}: {shown(value, unit)}{was}."]
    if run_url:
        lines.append(f"Run: {run_url}")
    lines.append(reported_marker(value, level))
    return "\n\n".join(lines)


def recovery_comment(
    *, metric: str, value: float | None, unit: str | None, day: dt.date, run_url: str | None = None
) -> str:
    """The comment the issue is closed with when the figure recovered."""
    lines = [f"{day.isoformat()}: **{metric}** recovered: {shown(value, unit)}. Closing."]
    if run_url:
        lines.append(f"Run: {run_url}")
    lines.append(reported_marker(value, "ok"))
    return "\n\n".join(lines)
