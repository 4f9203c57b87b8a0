"""issue_text: the hidden markers, the texts of an opened / updated / recovered issue, and when a
change is material."""

from __future__ import annotations

import datetime as dt

import pytest

from devops_automation.workflows.daily_project_metrics import issue_text as it

DAY = dt.date(2026, 3, 2)


def test_marker_round_trip_and_encoding() -> None:
    m = it.marker("github.commits_90d", "shop")
    assert m == "<!-- devops-automation:rule=github.commits_90d project=shop -->"
    odd = it.marker("rule one", "a-->b=c d")
    assert odd == "<!-- devops-automation:rule=rule%20one project=a--%3Eb%3Dc%20d -->"
    assert odd.count("-->") == 1  # the project cannot end the comment early
    assert it.parse_marker(f"text\n{odd}\nmore") == ("rule one", "a-->b=c d")
    assert it.parse_marker("no marker") is None and it.parse_marker(None) is None
    assert it.has_marker(f"x {m}", "github.commits_90d", "shop")
    assert not it.has_marker(it.marker("github.commits_90d", "shop-2"), "github.commits_90d", "shop")
    with pytest.raises(ValueError, match="project"):
        it.marker("r", "  ")


def test_issue_text() -> None:
    text = it.issue_text(
        rule_id="sonarqube.coverage",
        project="checkout",
        metric="sonarqube.coverage",
        value=41.25,
        unit="%",
        level="critical",
        threshold="< 50",
        day=DAY,
        run_url="http://airflow/dags/daily_project_metrics/runs/r1",
        figures={"sonarqube.coverage": 41.25, "sonarqube.bugs": 3, "github.stars": None},
    )
    assert text.title == "checkout: sonarqube.coverage is critical (< 50)"
    assert text.labels == (it.DEFAULT_LABEL,)
    lines = text.body.splitlines()
    assert (
        lines[0] == "**sonarqube.coverage** of **checkout** is **critical** on 2026-03-02: 41.25 % (threshold: < 50)."
    )
    assert "| `sonarqube.bugs` | 3 |" in lines and "| `github.stars` | no data |" in lines
    gate = it.issue_text(
        rule_id="threshold:sonarqube.quality_gate", project="web", metric="sonarqube.quality_gate", value=0.0,
        unit="status", level="critical", threshold="<= ERROR", day=DAY,
        figures={"sonarqube.quality_gate": 0.0, "sonarqube.reliability_rating": 4.0, "sonarqube.raw": "x|y"},
        units={"sonarqube.quality_gate": "status", "sonarqube.reliability_rating": "rating"},
    )  # fmt: skip
    assert gate.body.splitlines()[0] == (
        "**sonarqube.quality_gate** of **web** is **critical** on 2026-03-02: ERROR (threshold: <= ERROR)."
    )
    assert {"| `sonarqube.quality_gate` | ERROR |", "| `sonarqube.reliability_rating` | 4 (D) |"} <= set(
        gate.body.splitlines()
    )
    assert "| `sonarqube.raw` | x/y |" in gate.body.splitlines()  # a "|" cannot break the table
    assert "Run: http://airflow/dags/daily_project_metrics/runs/r1" in lines
    assert lines[-2] == it.marker("sonarqube.coverage", "checkout")
    assert it.last_reported(text.body) == (41.25, "critical")
    long = it.issue_text(
        rule_id="r", project="p" * 300, metric="m", value=None, unit=None, level="warning", threshold="t", day=DAY
    )
    assert len(long.title) == it.TITLE_MAX and long.title.endswith("…")
    assert "Run: (no link)" in long.body and ": no data (threshold: t)" in long.body
    assert it.last_reported(long.body) == (None, "warning")


def test_update_and_recovery_comments_carry_what_they_reported() -> None:
    update = it.update_comment(
        metric="github.commits_90d", value=3, unit="count", level="critical", day=DAY, previous=12, run_url="u"
    )
    # figures as the alert messages show them: no unit for a count
    assert update.startswith("2026-03-02: **github.commits_90d** is still **critical**: 3 (was 12).")
    recovered = it.recovery_comment(metric="github.commits_90d", value=20, unit="count", day=DAY)
    assert recovered.startswith("2026-03-02: **github.commits_90d** recovered: 20. Closing.")
    down = it.update_comment(
        metric="github.closure_ratio_90d", value=0.62, unit="ratio", level="warning", day=DAY, previous=0.41,
        previous_level="critical",
    )  # fmt: skip
    assert down.startswith(
        "2026-03-02: **github.closure_ratio_90d** is now **warning** (was critical): 62.0% (was 41.0%)."
    )
    assert it.last_reported(down) == (0.62, "warning")
    body = it.issue_text(
        rule_id="r", project="p", metric="m", value=12, unit=None, level="critical", threshold="t", day=DAY
    ).body
    assert it.last_reported(body, update) == (3.0, "critical")
    assert it.last_reported(body, update, recovered) == (20.0, "ok")
    assert it.last_reported("nothing here", None) is None
    with pytest.raises(ValueError, match="level"):
        it.reported_marker(1.0, "bad")


@pytest.mark.parametrize(
    ("previous", "current", "kw", "material"),
    [
        (None, 5.0, {}, True),  # the first report
        (100.0, 109.0, {}, False),  # 9 %
        (100.0, 110.0, {}, True),  # 10 %
        (100.0, 85.0, {}, True),
        (-10.0, -11.0, {}, True),  # relative to |previous|
        (0.0, 0.0, {}, False),
        (0.0, 1.0, {}, True),  # from 0 any move counts
        (0.0, 1.0, {"absolute": 2.0}, False),
        (1000.0, 1150.0, {"absolute": 200.0}, False),  # 15 % but under the absolute floor
        (100.0, 101.0, {"previous_level": "warning", "current_level": "critical"}, True),
        (100.0, 101.0, {"previous_level": "critical", "current_level": "critical"}, False),
        (100.0, None, {}, False),  # no data is not news
        (100.0, float("nan"), {}, False),
        (100.0, None, {"previous_level": "critical", "current_level": "ok"}, True),
        (100.0, 104.0, {"relative": 0.03}, True),
    ],
)
def test_changed_materially(previous, current, kw, material) -> None:
    assert it.changed_materially(previous, current, **kw) is material
