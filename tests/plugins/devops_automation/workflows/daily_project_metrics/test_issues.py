"""IssueDesk (plain Python, a tracker in memory): what one evaluation opens, comments on and closes; old
evaluations, warnings and a failing tracker; and what the GitHub/GitLab tracker sends is redacted."""

from __future__ import annotations

import dataclasses
import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest

from devops_automation.store.alert_events import AlertEvent
from devops_automation.workflows.daily_project_metrics import issue_text as it
from devops_automation.workflows.daily_project_metrics.alerts import SOURCE
from devops_automation.workflows.daily_project_metrics.issues import IssueDesk, _Tracker

DAY = dt.date(2026, 12, 3)
END = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)
RULE = "threshold:sonarqube.coverage"
PROJECTS = {
    "web": SimpleNamespace(name="web", github="acme/web", gitlab=None),
    "pay": SimpleNamespace(name="pay", github=None, gitlab="payments/checkout-api"),
    "nowhere": SimpleNamespace(name="nowhere", github=None, gitlab=None),
}


class Tracker:
    """Issues of one project in memory, behind the calls IssueDesk makes; ``calls`` records them."""

    def __init__(self, project: Any, book: dict[str, list[dict[str, Any]]], fail: set[str]) -> None:
        self.name, self.issues, self.fail = project.name, book.setdefault(project.name, []), fail
        self.calls: list[str] = []

    def find(self, label: str, marker: str) -> dict[str, Any] | None:
        self.calls.append("find")
        if self.name in self.fail:
            raise RuntimeError("GitLab said 503")
        return next((i for i in self.issues if i["open"] and label in i["labels"] and marker in i["body"]), None)

    def bodies(self, issue: dict[str, Any]) -> list[str]:
        return [issue["body"], *issue["comments"]]

    def create(self, text: it.IssueText) -> dict[str, Any]:
        issue = {"title": text.title, "body": text.body, "labels": text.labels, "comments": [], "open": True}
        self.issues.append(issue)
        return {"web_url": f"{self.name}#{len(self.issues)}"}

    def comment(self, issue: dict[str, Any], body: str) -> None:
        issue["comments"].append(body)

    def close(self, issue: dict[str, Any], body: str) -> None:
        issue["comments"].append(body)
        issue["open"] = False


def event(project: str, severity: str, value: float, *, state: str = "firing", at: dt.datetime = END) -> AlertEvent:
    return AlertEvent(
        RULE,
        project,
        severity,
        state,
        END - dt.timedelta(days=2),
        at,
        at if state == "resolved" else None,
        value,
        50.0 if severity == "critical" else 70.0,
        {
            "metric": "sonarqube.coverage",
            "op": "<",
            "unit": "%",
            "resolved_value": value if state == "resolved" else None,
        },
        source=SOURCE,
    )


@pytest.fixture
def desk() -> tuple[IssueDesk, dict[str, list[dict[str, Any]]], dict[str, Tracker], set[str]]:
    book: dict[str, list[dict[str, Any]]] = {}
    trackers: dict[str, Tracker] = {}
    fail: set[str] = set()

    def make(project: Any) -> Tracker:
        trackers[project.name] = Tracker(project, book, fail)
        return trackers[project.name]

    return IssueDesk(label="health-alert", run_url="http://ui/run", day=DAY, tracker=make), book, trackers, fail


def apply(desk: IssueDesk, *, started=(), still=(), resolved=(), was_critical=(), figures=None) -> dict[str, int]:
    counts = desk.apply(
        PROJECTS, started, still, resolved, at=END, was_critical=was_critical, figures=figures, units={"web": {}}
    )
    return dict(counts)


def test_a_critical_start_opens_one_issue_with_the_figures_of_its_source(desk) -> None:
    d, book, _, _ = desk
    figures = {"web": {"sonarqube.coverage": 41.5, "sonarqube.reliability_rating": 4.0, "github.stars": 9.0}}
    assert apply(d, started=[event("web", "critical", 41.5)], figures=figures) == {
        "opened": 1,
        "commented": 0,
        "closed": 0,
    }
    (issue,) = book["web"]
    assert issue["title"] == "web: sonarqube.coverage is critical (< 50 %)"
    assert issue["labels"] == ("health-alert",)
    lines = issue["body"].splitlines()
    assert lines[0] == "**sonarqube.coverage** of **web** is **critical** on 2026-12-03: 41.5 % (threshold: < 50 %)."
    # the figures of the breached figure's source, in the catalogue's units (a rating as its letter)
    assert "| `sonarqube.reliability_rating` | 4 (D) |" in lines and "| `sonarqube.coverage` | 41.5 % |" in lines
    assert not [line for line in lines if "github.stars" in line]
    assert "Run: http://ui/run" in lines and it.marker(RULE, "web") in lines


def test_later_days_comment_only_on_a_material_move_and_a_recovery_closes(desk) -> None:
    d, book, _, _ = desk
    apply(d, started=[event("web", "critical", 40.0)])
    assert apply(d, still=[event("web", "critical", 38.0)])["commented"] == 0  # 5 %: not news
    assert apply(d, still=[event("web", "critical", 30.0)])["commented"] == 1  # 25 %
    assert book["web"][0]["comments"][-1].startswith("2026-12-03: **sonarqube.coverage** is still **critical**: 30 %")
    assert apply(d, resolved=[event("web", "warning", 81.0, state="resolved")])["closed"] == 1
    (issue,) = book["web"]
    assert not issue["open"] and issue["comments"][-1].startswith("2026-12-03: **sonarqube.coverage** recovered: 81 %")


def test_what_a_later_interval_evaluated_since_is_left_alone(desk) -> None:
    """A cleared run of an old day: record() hands back the rows as stored, which a later day has
    resolved or evaluated again; acting on them would reopen a recovered alert's issue (with the later
    value) or comment with an old one."""
    d, book, trackers, _ = desk
    later = END + dt.timedelta(days=1)
    resolved_since = event("web", "critical", 20.0, state="resolved", at=later)
    evaluated_since = event("pay", "critical", 20.0, at=later)
    assert apply(d, started=[resolved_since], still=[evaluated_since]) == {"opened": 0, "commented": 0, "closed": 0}
    assert apply(d, resolved=[resolved_since])["closed"] == 0
    assert book == {} and trackers == {}  # not even looked up


def test_a_warning_opens_nothing_and_a_fall_from_critical_comments_on_the_open_issue(desk) -> None:
    d, book, trackers, _ = desk
    apply(d, still=[event("web", "warning", 60.0)])
    assert trackers == {}  # a warning that was no critical: no look-up
    apply(d, still=[event("pay", "warning", 60.0)], was_critical={(RULE, "pay")})
    assert book["pay"] == []  # no open issue to tell: none opened for a warning
    apply(d, started=[event("web", "critical", 40.0)])
    counts = apply(d, still=[event("web", "warning", 60.0)], was_critical={(RULE, "web")})
    assert counts["commented"] == 1
    comment = book["web"][0]["comments"][-1]
    assert comment.startswith("2026-12-03: **sonarqube.coverage** is now **warning** (was critical): 60 % (was 40 %).")
    # the same day again: the issue already says warning
    assert apply(d, still=[event("web", "warning", 60.0)], was_critical={(RULE, "web")})["commented"] == 1


def test_a_failing_tracker_is_named_and_the_other_projects_go_on(desk) -> None:
    d, book, _, fail = desk
    fail.add("pay")
    counts = apply(d, started=[event("pay", "critical", 40.0), event("web", "critical", 40.0)])
    assert counts["opened"] == 1 and len(book["web"]) == 1
    assert d.failed == ["pay: sonarqube.coverage: RuntimeError: GitLab said 503"]
    apply(d, started=[event("nowhere", "critical", 40.0)])  # no tracker to open it on: logged, not a failure
    assert len(d.failed) == 1


class Hook:
    """The GitLab hook's issue calls, recorded."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[Any, ...]]] = []

    def find_issues(self, *args: Any) -> list[dict[str, Any]]:
        self.sent.append(("find_issues", args))
        return []

    def create_issue(self, *args: Any) -> dict[str, Any]:
        self.sent.append(("create_issue", args))
        return {"iid": 1, "web_url": "u"}

    def add_issue_note(self, *args: Any) -> None:
        self.sent.append(("add_issue_note", args))

    def close_issue(self, *args: Any) -> None:
        self.sent.append(("close_issue", args))


def test_what_the_tracker_sends_is_redacted_and_found_by_the_redacted_marker() -> None:
    token = "glpat-Zr8kT2mQ9vX4bN7cW1yL"
    tracker = _Tracker.__new__(_Tracker)
    tracker.kind, tracker.where, tracker.hook = "gitlab", "payments/checkout-api", Hook()
    desk = IssueDesk(
        label="health-alert", run_url=f"https://ci:{token}@airflow/run", day=DAY, tracker=lambda p: tracker
    )
    project = SimpleNamespace(name=token, github=None, gitlab="payments/checkout-api")
    ev = dataclasses.replace(event(token, "critical", 40.0), scope_key=token)
    desk.apply({token: project}, [ev], [], [], at=END)
    issue = {"iid": 1, "description": ""}
    tracker.comment(issue, f"token {token}")
    tracker.close(issue, f"closing {token}")
    assert token not in repr(tracker.hook.sent)
    (find, created, noted, closed) = tracker.hook.sent
    marker = "<!-- devops-automation:rule=threshold:sonarqube.coverage project=[REDACTED:gitlab_token] -->"
    assert find == ("find_issues", ("payments/checkout-api", "health-alert", marker))
    _, (_, title, body, labels) = created
    assert title.startswith("[REDACTED:gitlab_token]: sonarqube.coverage") and labels == ["health-alert"]
    assert marker in body.splitlines()  # what the next run looks for
    assert noted == ("add_issue_note", ("payments/checkout-api", 1, "token [REDACTED:gitlab_token]"))
    assert closed == ("close_issue", ("payments/checkout-api", 1, "closing [REDACTED:gitlab_token]"))
