"""Threshold breaches -> alert conditions and the messages people read (plain Python)."""

from __future__ import annotations

import datetime as dt

from devops_automation.store.alert_events import AlertEvent
from devops_automation.workflows.daily_project_metrics import alerts
from devops_automation.workflows.daily_project_metrics.thresholds import Breach

DAY = dt.date(2026, 12, 3)
END = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)


def test_breaches_become_firing_or_ok_conditions_with_the_catalogue_or_query_unit() -> None:
    got = alerts.conditions(
        "api",
        [
            Breach("prometheus.availability", "warning", 99.65, 99.9, "<", "higher_is_better"),
            Breach("sonarqube.coverage", "ok", 81.0, 70.0, "<", "higher_is_better"),
            Breach("prometheus.queue_depth", "critical", 300.0, 100.0, ">", "lower_is_better"),
        ],
        DAY,
        {"prometheus.queue_depth": "jobs"},
    )
    assert [(c.rule_id, c.scope_key, c.state, c.severity) for c in got] == [
        ("threshold:prometheus.availability", "api", "firing", "warning"),
        ("threshold:sonarqube.coverage", "api", "ok", "warning"),
        ("threshold:prometheus.queue_depth", "api", "firing", "critical"),
    ]
    assert [c.details["unit"] for c in got] == ["%", "%", "jobs"]
    assert got[2].details == {
        "kind": "threshold",
        "project": "api",
        "metric": "prometheus.queue_depth",
        "level": "critical",
        "op": ">",
        "direction": "lower_is_better",
        "unit": "jobs",
        "day": "2026-12-03",
    }


def event(metric: str, severity: str, value: float, threshold: float, op: str, unit: str | None, **extra) -> AlertEvent:
    return AlertEvent(
        f"threshold:{metric}",
        "web <b>",
        severity,
        "firing",
        END,
        END,
        value=value,
        threshold=threshold,
        details={"metric": metric, "op": op, "unit": unit, **extra},
        source=alerts.SOURCE,
    )


def test_messages_show_ratios_ratings_gate_status_and_escape_markup_for_slack_and_telegram() -> None:
    ratio = event("github.closure_ratio_90d", "warning", 0.635, 0.8, "<", "ratio")
    # Slack and Telegram: &, < and > escaped (a raw "<" is refused by Telegram, read as a link by Slack)
    assert alerts.message(ratio, "start", "mrkdwn") == (
        "\U0001f7e0 *web &lt;b&gt;*: github.closure_ratio_90d is warning: 63.5% (threshold &lt; 80.0%) on 2026-12-03"
    )
    assert alerts.message(ratio, "start", "html") == (
        "\U0001f7e0 <b>web &lt;b&gt;</b>: github.closure_ratio_90d is warning: 63.5% (threshold &lt; 80.0%) "
        "on 2026-12-03"
    )
    assert alerts.message(ratio, "start", "text") == (
        "\U0001f7e0 web <b>: github.closure_ratio_90d is warning: 63.5% (threshold < 80.0%) on 2026-12-03"
    )
    rating = event("sonarqube.reliability_rating", "critical", 4.0, 4.0, ">=", "rating")
    assert alerts.message(rating, "start", "html") == (
        "\U0001f534 <b>web &lt;b&gt;</b>: sonarqube.reliability_rating is critical: 4 (D) (threshold &gt;= 4 (D)) "
        "on 2026-12-03"
    )
    gate = event("sonarqube.quality_gate", "critical", 0.0, 0.0, "<=", "status")
    assert "is critical: ERROR (threshold <= ERROR)" in alerts.message(gate, "start", "text")
    resolved = AlertEvent(
        "threshold:health.score", "shop", "warning", "resolved", END - dt.timedelta(days=3), END,
        resolved_at=END, value=51.4, threshold=60.0,
        details={"metric": "health.score", "unit": "score", "resolved_value": 72.5}, source=alerts.SOURCE,
    )  # fmt: skip
    assert alerts.message(resolved, "resolve", "text") == "\u2705 shop: health.score recovered: 72.5 on 2026-12-03"
