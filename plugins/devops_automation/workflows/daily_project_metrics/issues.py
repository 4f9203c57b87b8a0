"""Issues for critical threshold breaches (Param ``open_issues``): one open issue per project and
threshold, on the project's GitHub repository (else its GitLab project).

* breached (critical, started or still firing): the open issue labelled ``label`` whose body holds the
  marker of (threshold, project) is looked up on the tracker itself, so a lost database never opens a
  second one; none: one is opened with the figures and a link to the run; one: a comment only when the
  value moved materially since the last one reported (:func:`.issue_text.changed_materially`);
* recovered (the alert resolved): the open issue is closed with a comment.

Each step reads the tracker first, so a re-run of the same day changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from devops_automation.workflows.daily_project_metrics import issue_text as it
from devops_automation.workflows.daily_project_metrics.alerts import metric_of

log = logging.getLogger(__name__)


class _Tracker:
    """GitHub or GitLab issues of one project, behind the same four calls."""

    def __init__(self, project: Any) -> None:
        if getattr(project, "github", None):
            from devops_automation.hooks.github import GitHubHook

            self.kind, self.where, self.hook = "github", str(project.github), GitHubHook("github_default")
        else:
            from devops_automation.hooks.gitlab import GitLabHook

            self.kind, self.where, self.hook = "gitlab", project.gitlab, GitLabHook("gitlab_default")

    def find(self, label: str, marker: str) -> dict[str, Any] | None:
        found = self.hook.find_issues(self.where, label, marker)
        return found[0] if found else None

    def number(self, issue: dict[str, Any]) -> int:
        return int(issue["number"] if self.kind == "github" else issue["iid"])

    def bodies(self, issue: dict[str, Any]) -> list[str]:
        if self.kind == "github":
            comments = self.hook.issue_comments(self.where, self.number(issue))
            return [str(issue.get("body") or ""), *(str(c.get("body") or "") for c in comments)]
        notes = self.hook.issue_notes(self.where, self.number(issue))
        return [str(issue.get("description") or ""), *(str(n.get("body") or "") for n in notes)]

    def create(self, text: it.IssueText) -> dict[str, Any]:
        return self.hook.create_issue(self.where, text.title, text.body, text.labels)

    def comment(self, issue: dict[str, Any], body: str) -> None:
        if self.kind == "github":
            self.hook.comment_issue(self.where, self.number(issue), body)
        else:
            self.hook.add_issue_note(self.where, self.number(issue), body)

    def close(self, issue: dict[str, Any], body: str) -> None:
        self.hook.close_issue(self.where, self.number(issue), body)


class IssueDesk:
    """Opens, comments on and closes the issues of one run; ``counts`` says what it did."""

    def __init__(self, *, label: str, run_url: str | None, day: dt.date, log: Any = log) -> None:
        self.label = label
        self.run_url = run_url
        self.day = day
        self.log = log
        self.counts = {"opened": 0, "commented": 0, "closed": 0}
        self._trackers: dict[str, _Tracker] = {}

    def _tracker(self, project: Any) -> _Tracker | None:
        if not (getattr(project, "github", None) or getattr(project, "gitlab", None) not in (None, "")):
            self.log.info("%s: no GitHub repository or GitLab project to open an issue on", project.name)
            return None
        if project.name not in self._trackers:
            self._trackers[project.name] = _Tracker(project)
        return self._trackers[project.name]

    def breached(self, project: Any, event: Any, figures: dict[str, Any] | None = None) -> None:
        tracker = self._tracker(project)
        if tracker is None:
            return
        details = dict(event.details or {})
        metric = str(details.get("metric") or metric_of(event.rule_id))
        unit = details.get("unit")
        marker = it.marker(event.rule_id, project.name)
        issue = tracker.find(self.label, marker)
        if issue is None:
            limit = f"{details.get('op', '')} {event.threshold:g}".strip() if event.threshold is not None else ""
            text = it.issue_text(
                rule_id=event.rule_id,
                project=project.name,
                metric=metric,
                value=event.value,
                unit=unit,
                level=event.severity,
                threshold=limit,
                day=self.day,
                run_url=self.run_url,
                figures=figures,
                label=self.label,
            )
            created = tracker.create(text)
            self.counts["opened"] += 1
            self.log.info(
                "%s: opened issue %s for %s", project.name, created.get("html_url") or created.get("web_url"), metric
            )
            return
        reported = it.last_reported(*tracker.bodies(issue))
        previous, previous_level = reported if reported else (None, None)
        if not it.changed_materially(
            previous, event.value, previous_level=previous_level, current_level=event.severity
        ):
            return
        body = it.update_comment(
            metric=metric,
            value=event.value,
            unit=unit,
            level=event.severity,
            day=self.day,
            previous=previous,
            run_url=self.run_url,
        )
        tracker.comment(issue, body)
        self.counts["commented"] += 1

    def recovered(self, project: Any, event: Any) -> None:
        tracker = self._tracker(project)
        if tracker is None:
            return
        issue = tracker.find(self.label, it.marker(event.rule_id, project.name))
        if issue is None:
            return
        details = dict(event.details or {})
        body = it.recovery_comment(
            metric=str(details.get("metric") or metric_of(event.rule_id)),
            value=details.get("resolved_value"),
            unit=details.get("unit"),
            day=self.day,
            run_url=self.run_url,
        )
        tracker.close(issue, body)
        self.counts["closed"] += 1
