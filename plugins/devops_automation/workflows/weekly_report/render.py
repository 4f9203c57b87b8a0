"""The report of one period as Markdown, e-mail-safe HTML, plain text, chart PNGs and a short summary.

Pure: Jinja2 templates and :mod:`.charts`, no Airflow. :func:`render_report` takes the dict of
:func:`.figures.report_figures` and returns a :class:`Rendered`. Python prepares every string (numbers
formatted per unit, changes with arrow, sign and tone), so the templates only lay the report out.

**Layout.** The sections of ``figures["sections_order"]`` in that order; a section whose figures are
``{"no_data": why}`` is left out and listed at the end with its reason. Each headline figure (a dict with
a ``series``) shows its value, its change against the previous period (▲/▼ and the sign; *better* or
*worse* by its ``direction``, neutral without one) and an 8-period sparkline. A headline whose every
value is ``None`` is not shown (nothing was ever measured). A few larger charts where data allows:
success-rate and duration trends (line), slowest workflows (bars, previous vs. this period) and
failures by category (stacked bars, previous and this period).

**Formats.** HTML: one 700 px table, every style inline, no ``<style>``/``<script>``/external resource;
images are ``cid:<name>`` with ``name`` a key of :attr:`Rendered.charts` (sparklines 120 × 28 px, charts
680 × 300 px). Markdown and text: bullet lists (readable in Slack, Telegram and Git), Unicode
sparklines (``▁▂▃▄▅▆▇█``, ``·`` for a period without a value); names in code spans in Markdown.

**Templates.** ``report.md.j2``, ``report.html.j2`` and ``report.txt.j2`` (the text/plain part of the
e-mail) in ``templates_dir`` (``include/templates/weekly_report/``), loaded with a ``FileSystemLoader``,
``StrictUndefined`` and autoescape for the HTML. Sections keep their number of the shared list (§6), so
"7. Pull requests and issues" stays 7 when DORA has no data.

**Summary.** :attr:`Rendered.summary` (JSON-able, for a Slack/Telegram message): ``title``, ``period``,
``has_data``, ``headlines`` (the key figure(s) of each section with data, :data:`SUMMARY_HEADLINES`),
``movers`` (the :data:`MOVERS` figures with a direction that changed most relative to their previous
value; from 0 counts as 100 %), ``project_movers`` (health-score movers), ``sections`` and ``omitted``
(``{"section", "title", "why"}``). Each figure carries its raw numbers, ``tone`` (good/bad/neutral),
its formatted ``value_text`` / ``change_text`` and a one-line ``text``.

**Deterministic.** No clock, no locale (month names are fixed), sorted iteration: the same figures
give the same bytes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from devops_automation.workflows.weekly_report import charts

__all__ = ["Rendered", "format_change", "format_value", "markdown_escape", "render_report", "text_sparkline"]

HIGHER = "higher_is_better"
LOWER = "lower_is_better"
SPARK_W, SPARK_H = 120, 28
CHART_W, CHART_H = 680, 300
#: Max width of anything in the HTML (the outer table).
MAX_WIDTH = 700
#: How many figures the summary lists as the biggest movers.
MOVERS = 5
_EPS = 1e-9
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_BLOCKS = "▁▂▃▄▅▆▇█"

SECTION_TITLES = {
    "ci_runs": "CI runs and success rate",
    "durations": "Durations and queue times",
    "recovery": "Recovery: MTTR and red branches",
    "flaky_jobs": "Flaky jobs and re-runs",
    "failure_triage": "Failure categories and recurring failures",
    "dora": "DORA four keys",
    "pull_requests_issues": "Pull requests and issues",
    "health": "Health scores, quality and SLOs",
    "alerts": "Alerts",
}
#: Headline labels; a headline not named here is shown after these, by key, with its key as label.
LABELS = {
    "runs": "Runs",
    "failed_runs": "Failed runs",
    "success_rate": "Success rate",
    "first_attempt_success_rate": "First-attempt success rate",
    "duration_p50_s": "Run duration p50",
    "duration_p90_s": "Run duration p90",
    "queue_run_p50_s": "Run queue time p50",
    "queue_run_p90_s": "Run queue time p90",
    "queue_job_p50_s": "Job queue time p50",
    "queue_job_p90_s": "Job queue time p90",
    "mttr_default_branches_s": "MTTR on default branches",
    "red_branches": "Branches red at the end",
    "flaky_jobs": "Flaky jobs",
    "flaky_rate": "Flaky rate",
    "rerun_minutes": "Time spent on re-runs",
    "rerun_attempts": "Re-run attempts",
    "analysed_failures": "Analysed failures",
    "deployments": "Deployments",
    "deployments_per_day": "Deployment frequency",
    "lead_time_p50_s": "Lead time for changes p50",
    "change_failure_rate": "Change failure rate",
    "recovery_time_p50_s": "Failed deployment recovery p50",
    "prs_merged": "PRs merged",
    "prs_opened": "PRs opened",
    "issues_opened": "Issues opened",
    "issues_closed": "Issues closed",
    "time_to_merge_p50_s": "Time to merge p50",
    "time_to_first_response_p50_s": "Time to first response p50",
    "mean_score": "Mean health score",
    "quality_gates_failing": "SonarQube quality gates failing",
    "availability": "Availability",
    "error_rate": "Error rate",
    "p95_latency": "p95 latency",
    "alerts_fired": "Alerts fired",
}
#: The figure of each section the summary shows as its headline (dotted path inside the section).
SUMMARY_HEADLINES = (
    ("ci_runs", "runs"),
    ("ci_runs", "success_rate"),
    ("durations", "duration_p50_s"),
    ("recovery", "mttr_default_branches_s"),
    ("flaky_jobs", "flaky_rate"),
    ("failure_triage", "analysed_failures"),
    ("dora", "deployments"),
    ("pull_requests_issues", "prs_merged"),
    ("health", "scores.mean_score"),
    ("alerts", "alerts_fired"),
)
_HEALTH_PARTS = (("scores", "Health scores"), ("sonarqube", "SonarQube"), ("prometheus", "Prometheus SLOs"))


@dataclasses.dataclass(frozen=True)
class Rendered:
    """A rendered report: ``charts`` maps each image name (``cid:`` in the HTML, file name in an archive)
    to its PNG; ``summary`` is JSON-able (headline figures and biggest movers, for chat messages)."""

    markdown: str
    html: str
    text: str
    charts: dict[str, bytes]
    summary: dict[str, Any]


# -- numbers ------------------------------------------------------------------------------------------
def _number(value: float, decimals: int = 1) -> str:
    """``1,234`` for whole numbers, else up to ``decimals`` decimals without trailing zeros."""
    if abs(value - round(value)) < _EPS:
        return f"{round(value):,}"
    text = f"{value:,.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _duration(seconds: float) -> str:
    """``42 s``, ``4 min 12 s``, ``3 h 5 min``, ``2 d 4 h`` (two units at most, rounded to the smaller)."""
    if seconds < 10 and abs(seconds - round(seconds)) >= 0.05:
        return f"{seconds:.1f} s"
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    if total < 3600:
        minutes, secs = divmod(total, 60)
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    total_min = round(seconds / 60)
    if total_min < 24 * 60:
        hours, minutes = divmod(total_min, 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    total_h = round(seconds / 3600)
    days, hours = divmod(total_h, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def format_value(value: float | None, unit: str | None) -> str:
    """A value as the report shows it: ``s`` → ``4 min 12 s``, ``min`` → the same from minutes, ``ratio`` →
    ``91.3%``, ``count`` → ``1,234``, ``score`` → ``72.5``, ``1/d`` → ``0.43/day``; other units follow the
    number. ``None`` → ``–``."""
    if value is None:
        return "–"
    if unit == "s":
        return _duration(value)
    if unit == "min":
        return _duration(value * 60)
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    if unit == "count":
        return _number(value)
    if unit == "score":
        return f"{value:.1f}"
    if unit == "1/d":
        return f"{_number(value, 2)}/day"
    text = _number(value, 2)
    return f"{text} {unit}" if unit else text


def _tone(change: float | None, direction: str | None) -> str:
    if change is None or abs(change) < _EPS or direction not in (HIGHER, LOWER):
        return "neutral"
    return "good" if (change > 0) == (direction == HIGHER) else "bad"


def format_change(change: float | None, unit: str | None) -> str:
    """``▲ +1``, ``▼ −2 min 5 s``, ``▲ +16.7 pp`` (ratios change in percentage points), ``= 0``, or ``–``."""
    if change is None:
        return "–"
    if abs(change) < _EPS:
        return "= 0"
    arrow, sign = ("▲", "+") if change > 0 else ("▼", "−")
    size = abs(change)
    text = f"{size * 100:.1f} pp" if unit == "ratio" else format_value(size, unit)
    return f"{arrow} {sign}{text}"


def text_sparkline(series: Sequence[float | None]) -> str:
    """The series as Unicode blocks (lowest ▁, highest █; ``·`` for ``None``; all equal: ▄)."""
    known = [v for v in series if v is not None]
    if not known:
        return "·" * len(series)
    low, high = min(known), max(known)
    out = []
    for v in series:
        if v is None:
            out.append("·")
        elif high - low < _EPS:
            out.append(_BLOCKS[3])
        else:
            out.append(_BLOCKS[min(7, int((v - low) / (high - low) * 7 + 0.5))])
    return "".join(out)


# -- period labels ------------------------------------------------------------------------------------
def _date(iso: str) -> tuple[int, int, int]:
    return int(iso[0:4]), int(iso[5:7]), int(iso[8:10])


def _day_label(iso: str) -> str:
    _, month, day = _date(iso)
    return f"{day} {_MONTHS[month - 1]}"


def _period_labels(figures: Mapping[str, Any]) -> list[str]:
    month = figures["period"]["kind"] == "month"
    labels = []
    for p in figures["periods"]:
        year, m, _ = _date(p["start"])
        labels.append(f"{_MONTHS[m - 1]} {year}" if month else _day_label(p["start"]))
    return labels


def _range_text(period: Mapping[str, Any]) -> str:
    """``16 Nov 2026 – 23 Nov 2026`` (UTC dates of the bounds; the end is exclusive)."""
    (y1, m1, d1), (y2, m2, d2) = _date(period["start"]), _date(period["end"])
    return f"{d1} {_MONTHS[m1 - 1]} {y1} – {d2} {_MONTHS[m2 - 1]} {y2} (end exclusive, UTC)"


# -- view model ---------------------------------------------------------------------------------------
def _is_headline(value: Any) -> bool:
    return isinstance(value, Mapping) and "series" in value and "unit" in value


def _code(value: Any) -> str:
    return "–" if value is None else str(value)


def _cut(text: str | None, limit: int = 80) -> str:
    if not text:
        return "–"
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class _Builder:
    def __init__(self, figures: Mapping[str, Any]) -> None:
        self.figures = figures
        self.labels = _period_labels(figures)
        self.charts: dict[str, bytes] = {}
        self.headlines: list[dict[str, Any]] = []

    def image(self, name: str, png: bytes, width: int, height: int, alt: str) -> dict[str, Any]:
        if name in self.charts:
            raise ValueError(f"chart name {name!r} used twice")
        if width > MAX_WIDTH:
            raise ValueError(f"chart {name!r} is {width} px wide, more than {MAX_WIDTH}")
        self.charts[name] = png
        return {"name": name, "width": width, "height": height, "alt": alt}

    def headline(self, section: str, path: str, figure: Mapping[str, Any]) -> dict[str, Any] | None:
        series = list(figure["series"])
        if all(v is None for v in series):
            return None
        key = path.rsplit(".", 1)[-1]
        label = LABELS.get(key, key)
        unit, direction = figure.get("unit"), figure.get("direction")
        change = figure.get("change")
        tone = _tone(change, direction)
        value_text = format_value(figure.get("value"), unit)
        change_text = format_change(change, unit)
        spark_name = f"spark-{section}-{path.replace('.', '-')}.png"
        spark = self.image(
            spark_name,
            charts.sparkline(series, width_px=SPARK_W, height_px=SPARK_H),
            SPARK_W,
            SPARK_H,
            f"{label}, last {len(series)} periods: {', '.join(format_value(v, unit) for v in series)}",
        )
        item = {
            "section": section,
            "figure": path,
            "label": label,
            "unit": unit,
            "direction": direction,
            "value": figure.get("value"),
            "previous": figure.get("previous"),
            "change": change,
            "tone": tone,
            "value_text": value_text,
            "previous_text": format_value(figure.get("previous"), unit),
            "change_text": change_text,
            "verdict": {"good": "better", "bad": "worse"}.get(tone, ""),
            "text_spark": text_sparkline(series),
            "spark": spark,
        }
        self.headlines.append(item)
        return item

    def headlines_of(self, section: str, data: Mapping[str, Any], prefix: str = "") -> list[dict[str, Any]]:
        keys = [k for k in data if _is_headline(data[k])]
        order = {k: i for i, k in enumerate(LABELS)}
        keys.sort(key=lambda k: (order.get(k, len(order)), k))
        out = []
        for key in keys:
            item = self.headline(section, f"{prefix}{key}", data[key])
            if item is not None:
                out.append(item)
        return out

    def chart(self, name: str, png: bytes, alt: str) -> dict[str, Any]:
        return self.image(name, png, CHART_W, CHART_H, alt)


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = ()) -> dict:
    """A detail table: ``numeric`` are the indexes of right-aligned columns; the first column is a name."""
    return {
        "title": title,
        "columns": list(columns),
        "rows": [list(r) for r in rows],
        "align": ["right" if i in numeric else "left" for i in range(len(columns))],
    }


def _where(item: Mapping[str, Any], *keys: str) -> str:
    return " · ".join(str(item[k]) for k in keys if item.get(k) not in (None, ""))


def _seconds_unit(values: Sequence[float | None]) -> tuple[str, float]:
    known = [v for v in values if v is not None]
    if known and max(known) >= 7200:
        return "h", 3600.0
    if known and max(known) >= 120:
        return "min", 60.0
    return "s", 1.0


def _scaled(values: Sequence[float | None], factor: float) -> list[float | None]:
    return [None if v is None else v / factor for v in values]


def _ci_runs(b: _Builder, data: Mapping[str, Any]) -> dict[str, Any]:
    tables, figs = [], []
    statuses = data.get("runs_by_status") or {}
    counts = [f"{name} {_number(n)}" for name, n in sorted(statuses.items()) if n]
    notes = [f"Runs by status: {', '.join(counts)}"] if counts else []
    if data.get("failures_by_workflow"):
        rows = [(_where(i, "repo", "workflow"), _number(i["failures"])) for i in data["failures_by_workflow"]]
        tables.append(_table("Failures by workflow", ("Repository · workflow", "Failures"), rows, (1,)))
    if data.get("failures_by_branch"):
        rows = [(_where(i, "repo", "branch"), _number(i["failures"])) for i in data["failures_by_branch"]]
        tables.append(_table("Failures by branch", ("Repository · branch", "Failures"), rows, (1,)))
    if data.get("failures_by_actor"):
        rows = [(_code(i["actor"]), _number(i["failures"])) for i in data["failures_by_actor"]]
        tables.append(_table("Failures by actor", ("Actor", "Failures"), rows, (1,)))
    series = {}
    for key, name in (("success_rate", "Success rate"), ("first_attempt_success_rate", "First-attempt success")):
        if _is_headline(data.get(key)):
            series[name] = _scaled(data[key]["series"], 0.01)
    if any(v is not None for values in series.values() for v in values):
        png = charts.line_chart("CI success rate", b.labels, series, y_label="Success rate", unit="%")
        figs.append(b.chart("chart-ci_runs-success_rate.png", png, "Line chart: CI success rate per period"))
    return {"tables": tables, "charts": figs, "notes": notes}


def _durations(b: _Builder, data: Mapping[str, Any]) -> dict[str, Any]:
    tables, figs = [], []
    workflows = data.get("slowest_workflows") or []
    if workflows:
        rows = [
            (
                _where(w, "repo", "workflow"),
                _number(w["runs"]),
                format_value(w["duration_p50_s"], "s"),
                format_value(w["duration_p90_s"], "s"),
                format_value(w["previous_p50_s"], "s"),
            )
            for w in workflows
        ]
        columns = ("Repository · workflow", "Runs", "p50", "p90", "Previous p50")
        tables.append(_table("Slowest workflows", columns, rows, (1, 2, 3, 4)))
    jobs = data.get("slowest_jobs") or []
    if jobs:
        rows = [
            (
                _where(j, "repo", "workflow", "job"),
                _number(j["executions"]),
                format_value(j["duration_p50_s"], "s"),
                format_value(j["duration_p90_s"], "s"),
                format_value(j["previous_p50_s"], "s"),
            )
            for j in jobs
        ]
        columns = ("Repository · workflow · job", "Runs", "p50", "p90", "Previous p50")
        tables.append(_table("Slowest jobs", columns, rows, (1, 2, 3, 4)))
    trend = {
        name: data[key]["series"]
        for key, name in (("duration_p50_s", "Duration p50"), ("duration_p90_s", "Duration p90"))
        if _is_headline(data.get(key))
    }
    if any(v is not None for values in trend.values() for v in values):
        unit, factor = _seconds_unit([v for values in trend.values() for v in values])
        scaled = {k: _scaled(v, factor) for k, v in trend.items()}
        png = charts.line_chart("CI run duration", b.labels, scaled, y_label="Duration", unit=unit)
        figs.append(b.chart("chart-durations-trend.png", png, "Line chart: CI run duration p50 and p90 per period"))
    if workflows:
        top = workflows[:10]
        unit, factor = _seconds_unit([w[k] for w in top for k in ("duration_p50_s", "previous_p50_s")])
        png = charts.bar_chart(
            "Slowest workflows (p50 duration)",
            [str(w["workflow"]) for w in top],
            {
                "Previous period": _scaled([w["previous_p50_s"] for w in top], factor),
                "This period": _scaled([w["duration_p50_s"] for w in top], factor),
            },
            y_label="p50 duration",
            unit=unit,
        )
        figs.append(b.chart("chart-durations-slowest_workflows.png", png, "Bar chart: slowest workflows by p50"))
    return {"tables": tables, "charts": figs, "notes": []}


def _recovery(b: _Builder, data: Mapping[str, Any]) -> dict[str, Any]:
    tables = []
    notes = []
    if data.get("default_branches"):
        notes.append(f"MTTR counts red streaks on the default branches ({', '.join(data['default_branches'])}).")
    red = data.get("red_now") or []
    if red:
        rows = [
            (_where(r, "repo", "workflow", "branch"), format_value(r.get("age_s"), "s"), _number(r["failed_runs"]))
            for r in red
        ]
        tables.append(
            _table(
                "Red at the period's end", ("Repository · workflow · branch", "Red for", "Failed runs"), rows, (1, 2)
            )
        )
    ended = data.get("streaks_ended_default_branches") or []
    if ended:
        rows = [
            (_where(r, "repo", "workflow", "branch"), format_value(r.get("length_s"), "s"), _number(r["failed_runs"]))
            for r in ended
        ]
        tables.append(
            _table("Red streaks fixed", ("Repository · workflow · branch", "Red for", "Failed runs"), rows, (1, 2))
        )
    return {"tables": tables, "charts": [], "notes": notes}


def _flaky(b: _Builder, data: Mapping[str, Any]) -> dict[str, Any]:
    jobs = data.get("jobs") or []
    tables = []
    if jobs:
        rows = [
            (
                _where(j, "repo", "workflow", "job"),
                f"{_number(j['flaky_shas'])} / {_number(j['shas'])}",
                format_value(j["rate"], "ratio"),
            )
            for j in jobs
        ]
        tables.append(_table("Flaky jobs", ("Repository · workflow · job", "Flaky commits", "Rate"), rows, (1, 2)))
    return {"tables": tables, "charts": [], "notes": []}


def _triage(b: _Builder, data: Mapping[str, Any]) -> dict[str, Any]:
    tables, figs = [], []
    categories = data.get("top_categories") or []
    if categories:
        rows = [(_code(c["category"]), _number(c["failures"]), _number(c["previous"])) for c in categories]
        tables.append(_table("Top failure categories", ("Category", "Failures", "Previous"), rows, (1, 2)))
        shown = categories[:7]
        rest = categories[7:]
        series = {str(c["category"]): [float(c["previous"]), float(c["failures"])] for c in shown}
        if rest:
            series["other"] = [float(sum(c["previous"] for c in rest)), float(sum(c["failures"] for c in rest))]
        png = charts.stacked_bar(
            "Failures by category",
            ["Previous period", "This period"],
            series,
            y_label="Analysed failures",
            unit="count",
        )
        figs.append(b.chart("chart-failure_triage-categories.png", png, "Stacked bar chart: failures by category"))
    recurring = data.get("recurring_fingerprints") or []
    if recurring:
        rows = [
            (
                _code(f["fingerprint"])[:12],
                _where(f, "project_path", "job_name") or "–",
                _cut(f.get("first_error")),
                _number(f["occurrences_in_period"]),
                _number(f["occurrences_until_end"]),
            )
            for f in recurring
        ]
        columns = ("Fingerprint", "Project · job", "First error", "In period", "Until end")
        tables.append(_table("Recurring failures", columns, rows, (3, 4)))
    return {"tables": tables, "charts": figs, "notes": []}


def _dora(b: _Builder, data: Mapping[str, Any]) -> dict[str, Any]:
    notes = []
    bands = data.get("bands") or {}
    if bands:
        named = [f"{k.replace('_', ' ')}: {v or '–'}" for k, v in sorted(bands.items())]
        notes.append(f"DORA 2023 bands: {'; '.join(named)}")
    if data.get("environments"):
        notes.append(f"Environments: {', '.join(str(e) for e in data['environments'])}")
    if data.get("rollbacks") is not None:
        rollbacks = data["rollbacks"]
        notes.append(f"Rollbacks: {_number(len(rollbacks) if isinstance(rollbacks, list) else rollbacks)}")
    return {"tables": [], "charts": [], "notes": notes}


def _prs(b: _Builder, data: Mapping[str, Any]) -> dict[str, Any]:
    projects = data.get("projects") or []
    tables = []
    if projects:
        names = ("prs_merged", "prs_opened", "issues_opened", "issues_closed")

        def cell(p: Mapping[str, Any], name: str) -> str:
            got = p.get(name)
            if not got:
                return "–"
            return f"{format_value(got['value'], 'count')} ({format_value(got['previous'], 'count')})"

        rows = [(_code(p["project"]), *(cell(p, n) for n in names)) for p in projects]
        columns = ("Project", "PRs merged", "PRs opened", "Issues opened", "Issues closed")
        tables.append(_table("Per project (previous period in brackets)", columns, rows, (1, 2, 3, 4)))
    return {"tables": tables, "charts": [], "notes": []}


def _alerts(b: _Builder, data: Mapping[str, Any]) -> dict[str, Any]:
    alerts = data.get("alerts") or []
    notes = []
    if data.get("firing_at_end") is not None:
        notes.append(f"Firing at the period's end: {_number(data['firing_at_end'])}")
    tables = []
    if alerts:
        rows = [
            (
                _where(a, "source", "rule_id"),
                _code(a["scope_key"]),
                _code(a.get("severity")),
                f"{_day_label(a['started_at'])}{' (new)' if a.get('new') else ''}",
                a["state"],
            )
            for a in alerts
        ]
        columns = ("Source · rule", "Scope", "Severity", "Started", "State")
        tables.append(_table("Alerts active in the period", columns, rows))
    return {"tables": tables, "charts": [], "notes": notes}


def _health(b: _Builder, data: Mapping[str, Any]) -> dict[str, Any]:
    """Health has three parts, each with figures or its own ``no_data``; parts without data get a note."""
    tables: list[dict[str, Any]] = []
    notes: list[str] = []
    headlines: list[dict[str, Any]] = []
    for part, title in _HEALTH_PARTS:
        got = data.get(part)
        if not isinstance(got, Mapping):
            continue
        if "no_data" in got:
            notes.append(f"{title}: {got['no_data']}.")
            continue
        headlines.extend(b.headlines_of("health", got, f"{part}."))
    scores = data.get("scores") or {}
    if scores.get("movers"):
        rows = [
            (
                _code(m["project"]),
                f"{format_value(m['score'], 'score')} ({m.get('grade') or '–'})",
                f"{format_value(m['previous'], 'score')} ({m.get('previous_grade') or '–'})",
                format_change(m["change"], "score"),
            )
            for m in scores["movers"]
        ]
        tables.append(_table("Health score movers", ("Project", "Score", "Previous", "Change"), rows, (1, 2, 3)))
    sonar = data.get("sonarqube") or {}
    if sonar.get("projects"):
        metrics = ("reliability_rating", "security_rating", "maintainability_rating", "coverage", "technical_debt")

        def gate(p: Mapping[str, Any]) -> str:
            g = p.get("quality_gate") or {}
            return str(g.get("status") or format_value(g.get("value"), ""))

        def value(p: Mapping[str, Any], m: str) -> str:
            return format_value((p.get(m) or {}).get("value"), "")

        rows = [(_code(p["project"]), gate(p), *(value(p, m) for m in metrics)) for p in sonar["projects"]]
        columns = ("Project", "Gate", "Reliability", "Security", "Maint.", "Coverage", "Debt")
        tables.append(_table("SonarQube (latest in the period)", columns, rows, (2, 3, 4, 5, 6)))
    prometheus = data.get("prometheus") or {}
    if prometheus.get("projects"):
        rows = [
            (
                _code(p["project"]),
                _code(p["metric"]),
                format_value(p["value"], p.get("unit") or ""),
                format_value(p["previous"], p.get("unit") or ""),
            )
            for p in prometheus["projects"]
        ]
        tables.append(
            _table("Prometheus (mean of the period)", ("Project", "Metric", "Value", "Previous"), rows, (2, 3))
        )
    return {"tables": tables, "charts": [], "notes": notes, "headlines": headlines}


_DETAILS = {
    "ci_runs": _ci_runs,
    "durations": _durations,
    "recovery": _recovery,
    "flaky_jobs": _flaky,
    "failure_triage": _triage,
    "dora": _dora,
    "pull_requests_issues": _prs,
    "health": _health,
    "alerts": _alerts,
}


def _section(b: _Builder, name: str, number: int, data: Mapping[str, Any]) -> dict[str, Any]:
    detail = _DETAILS.get(name)
    if name == "health":
        parts = _health(b, data)
        headlines = parts.pop("headlines")
    else:
        headlines = b.headlines_of(name, data)
        parts = detail(b, data) if detail else {"tables": [], "charts": [], "notes": []}
    title = SECTION_TITLES.get(name, name.replace("_", " ").capitalize())
    return {"key": name, "number": number, "title": title, "headlines": headlines, **parts}


def _get(data: Mapping[str, Any], path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, Mapping) or part not in data:
            return None
        data = data[part]
    return data


def _mover_score(item: Mapping[str, Any]) -> float:
    change, previous = item["change"], item["previous"]
    if previous is None or abs(previous) < _EPS:
        return 1.0
    return abs(change) / abs(previous)


def _summary_line(item: Mapping[str, Any]) -> str:
    verdict = f", {item['verdict']}" if item["verdict"] else ""
    return f"{item['label']}: {item['value_text']} ({item['change_text']}{verdict})"


def _summary(
    figures: Mapping[str, Any], title: str, sections: list[dict], omitted: list[dict], headlines: list[dict]
) -> dict[str, Any]:
    by_path = {(h["section"], h["figure"]): h for h in headlines}
    keys = ("section", "figure", "label", "unit", "direction", "value", "previous", "change", "tone")

    def public(h: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **{k: h[k] for k in keys},
            "value_text": h["value_text"],
            "change_text": h["change_text"],
            "text": _summary_line(h),
        }

    main = [public(by_path[k]) for k in SUMMARY_HEADLINES if k in by_path]
    moved = [h for h in headlines if h["tone"] != "neutral"]
    moved.sort(key=lambda h: (-_mover_score(h), h["section"], h["figure"]))
    project_movers = [
        {"project": m["project"], "score": m["score"], "previous": m["previous"], "change": m["change"]}
        for m in (_get(figures["sections"], "health.scores.movers") or [])[:MOVERS]
    ]
    return {
        "title": title,
        "period": dict(figures["period"]),
        "has_data": bool(sections),
        "headlines": main,
        "movers": [public(h) for h in moved[:MOVERS]],
        "project_movers": project_movers,
        "sections": [s["key"] for s in sections],
        "omitted": [{"section": o["key"], "title": o["title"], "why": o["why"]} for o in omitted],
    }


def _title(figures: Mapping[str, Any]) -> str:
    period = figures["period"]
    kind = "Monthly" if period["kind"] == "month" else "Weekly"
    return f"{kind} engineering report {period['label']}"


def _scope_text(scope: Mapping[str, Any] | None) -> str:
    if not scope or (scope.get("repos") is None and scope.get("projects") is None):
        return "All repositories and projects"
    parts = []
    if scope.get("repos") is not None:
        parts.append(f"repositories: {', '.join(scope['repos']) or 'none'}")
    if scope.get("projects") is not None:
        parts.append(f"projects: {', '.join(scope['projects']) or 'none'}")
    return "Scope: " + "; ".join(parts)


#: Characters that are markup inside a line (cells never start a line, so ``#``, ``+``, ``-`` are safe).
_MD_SPECIAL = frozenset("\\`*_[]<>|~")


def markdown_escape(value: Any) -> str:
    """``value`` as Markdown text: a backslash before each character Markdown could read as markup."""
    return "".join(f"\\{c}" if c in _MD_SPECIAL else c for c in str(value))


def _code_span(value: Any) -> str:
    """``value`` in a Markdown code span (backticks inside become ``'``)."""
    return "`" + str(value).replace("`", "'") + "`"


def _environment(templates_dir: str | Path, *, html: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        autoescape=html,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["md"] = markdown_escape
    env.filters["code"] = _code_span
    return env


def render_report(
    figures: Mapping[str, Any], *, templates_dir: str | Path, title: str | None = None, max_rows: int = 10
) -> Rendered:
    """Render the figures of :func:`.figures.report_figures` with the templates ``report.md.j2``,
    ``report.html.j2`` and ``report.txt.j2`` of ``templates_dir`` (see the module docstring).

    ``max_rows`` limits each detail table (the figures hold up to their ``top``, 10 by default); the rows
    left out are counted in a last line ("… and 3 more"). Fewer rows keep a big report's HTML small (every
    style is inline: ~120 KB for 10 rows in every table; Gmail clips messages above ~100 KB).

    Raises ``ValueError`` when ``figures`` lacks a key the report needs or ``max_rows`` < 1, and
    :class:`jinja2.TemplateNotFound` / :class:`jinja2.UndefinedError` for a missing or wrong template."""
    for key in ("period", "periods", "sections_order", "sections"):
        if key not in figures:
            raise ValueError(f"figures: missing key {key!r} (expected the dict of report_figures)")
    for name in figures["sections_order"]:
        if not isinstance(figures["sections"].get(name), Mapping):
            raise ValueError(f"figures: section {name!r} of sections_order is missing from sections")
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise ValueError(f"max_rows must be a whole number of at least 1, got {max_rows!r}")
    title = title or _title(figures)
    b = _Builder(figures)
    sections: list[dict[str, Any]] = []
    omitted: list[dict[str, Any]] = []
    for number, name in enumerate(figures["sections_order"], start=1):
        data = figures["sections"][name]
        section_title = SECTION_TITLES.get(name, name.replace("_", " ").capitalize())
        if "no_data" in data:
            omitted.append({"key": name, "number": number, "title": section_title, "why": str(data["no_data"])})
        else:
            section = _section(b, name, number, data)
            for table in section["tables"]:
                table["more"] = max(0, len(table["rows"]) - max_rows)
                table["rows"] = table["rows"][:max_rows]
            sections.append(section)
    context = {
        "title": title,
        "period_label": figures["period"]["label"],
        "period_range": _range_text(figures["period"]),
        "previous_range": _range_text(figures["previous_period"]) if figures.get("previous_period") else "",
        "scope": _scope_text(figures.get("scope")),
        "periods_count": len(figures["periods"]),
        "sections": sections,
        "omitted": omitted,
        "max_width": MAX_WIDTH,
    }
    md = _environment(templates_dir, html=False)
    html_env = _environment(templates_dir, html=True)
    return Rendered(
        markdown=_tidy(md.get_template("report.md.j2").render(context)),
        html=_tidy(html_env.get_template("report.html.j2").render(context)),
        text=_tidy(md.get_template("report.txt.j2").render(context)),
        charts=dict(sorted(b.charts.items())),
        summary=_summary(figures, title, sections, omitted, b.headlines),
    )


def _tidy(text: str) -> str:
    """No trailing spaces, at most one blank line in a row, one final newline."""
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n"
