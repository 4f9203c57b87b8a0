"""The run note of ``daily_project_metrics``: each project's health score, the alerts, the issues, what failed."""

from __future__ import annotations

from devops_automation.workflows.daily_project_metrics.operators import _note


def test_note_gives_each_projects_score_and_grade_alerts_issues_and_failures() -> None:
    scores = {
        "web": {"score": 72.4, "grade": "B"},
        "api": {"score": 91.6, "grade": "A"},
        "billing": {"score": None},
    }
    alerts = {"started": 1, "still_firing": 2, "resolved": 0, "issues": {"opened": 1, "closed": 0}}
    note = _note(scores, alerts, ["github:web"])
    assert note == (
        "health: api 92 A, billing no data, web 72 B; alerts: started 1, still firing 2, resolved 0; "
        "issues: opened 1; FAILED: github:web"
    )


def test_note_without_projects_or_alerts() -> None:
    assert _note({}, {}, []) == "health: no projects"
    many = [f"prometheus:p{i}" for i in range(7)]
    assert _note({"p": {"score": 50.0}}, {}, many) == (
        "health: p 50; FAILED: prometheus:p0, prometheus:p1, prometheus:p2, prometheus:p3, prometheus:p4 …"
    )
