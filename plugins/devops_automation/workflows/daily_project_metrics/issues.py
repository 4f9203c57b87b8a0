"""Issues for critical threshold breaches (Param ``open_issues``): one open issue per project and
threshold, on the project's GitHub repository (else its GitLab project).

* breached (critical, started or still firing): the open issue labelled ``label`` whose body holds the
  marker of (threshold, project) is looked up on the tracker itself, so a lost database never opens a
  second one; none: one is opened with the figures and a link to the run; one: a comment only when the
  value moved materially since the last one reported (:func:`.issue_text.changed_materially`);
* down to warning (critical before this interval, warning now): the open issue, if any, gets a comment
  saying so (the level changed); no issue is opened for a warning;
* recovered (the alert resolved): the open issue is closed with a comment.

:meth:`IssueDesk.apply` acts only on what this evaluation decided: an episode that a later interval has
evaluated since (a cleared or re-run old day) is left alone, so an old day's run never reopens the issue
of an alert that has recovered, nor comments with an old value. Each step reads the tracker first, so
a re-run of the same day changes nothing. Titles, bodies, comments (and the marker and label they are
found by) are redacted (:func:`devops_automation.ci_logs.redact.redact_text`) before they leave the
process. A project whose tracker fails is named in :attr:`IssueDesk.failed`; the others go on.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from devops_automation.workflows.daily_project_metrics import issue_text as it
from devops_automation.workflows.daily_project_metrics import metrics as m
from devops_automation.workflows.daily_project_metrics.alerts import metric_of, shown

log = logging.getLogger(__name__)


def _redact(text: str) -> str:
    from devops_automation.ci_logs.redact import redact_text

    return redact_text(text)


class _Tracker:
    """GitHub or GitLab issues of one project, behind the same four calls; what it sends is redacted."""

    def __init__(self, project: Any) -> None:
        if getattr(project, "github", None):
            from devops_automation.hooks.github import GitHubHook

            self.kind, self.where, self.hook = "github", str(project.github), GitHubHook("github_default")
        else:
            from devops_automation.hooks.gitlab import GitLabHook

            self.kind, self.where, self.hook = "gitlab", project.gitlab, GitLabHook("gitlab_default")

    def find(self, label: str, marker: str) -> dict[str, Any] | None:
        found = self.hook.find_issues(self.where, _redact(label), _redact(marker))
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
        labels = [_redact(label) for label in text.labels]
        return self.hook.create_issue(self.where, _redact(text.title), _redact(text.body), labels)

    def comment(self, issue: dict[str, Any], body: str) -> None:
        if self.kind == "github":
            self.hook.comment_issue(self.where, self.number(issue), _redact(body))
        else:
            self.hook.add_issue_note(self.where, self.number(issue), _redact(body))

    def close(self, issue: dict[str, Any], body: str) -> None:
        self.hook.close_issue(self.where, self.number(issue), _redact(body))


def _has_tracker(project: Any) -> bool:
    return bool(getattr(project, "github", None)) or getattr(project, "gitlab", None) not in (None, "")


class IssueDesk:
    """Opens, comments on and closes the issues of one run; ``counts`` says what it did, ``failed``
    which project and figure could not be handled (the tracker's error)."""

    def __init__(
        self,
        *,
        label: str,
        run_url: str | None,
        day: dt.date,
        log: Any = log,
        tracker: Callable[[Any], Any] = _Tracker,
    ) -> None:
        self.label = label
        self.run_url = run_url
        self.day = day
        self.log = log
        self.counts = {"opened": 0, "commented": 0, "closed": 0}
        self.failed: list[str] = []
        self._make_tracker = tracker
        self._trackers: dict[str, Any] = {}

    def apply(
        self,
        projects: Mapping[str, Any],
        started: Iterable[Any],
        still_firing: Iterable[Any],
        resolved: Iterable[Any],
        *,
        at: dt.datetime,
        was_critical: Iterable[tuple[str, str]] = (),
        figures: Mapping[str, Mapping[str, Any]] | None = None,
        units: Mapping[str, Mapping[str, str | None]] | None = None,
    ) -> dict[str, int]:
        """Act on one evaluation at ``at`` (the interval's end): the episodes as :func:`.alert_events.record`
        stored them. ``was_critical``: the (rule id, project) of the alerts that were critical before this
        interval; ``figures`` / ``units``: each project's figures of the day and their units (by name), the
        issue shows those of the breached figure's source."""
        critical_before = set(was_critical)
        for ev in [*started, *still_firing]:
            project = projects.get(ev.scope_key)
            if project is None or ev.state != "firing" or ev.last_evaluated_at != at:
                continue  # resolved or evaluated again by a later interval since: not this run's to act on
            if ev.severity == "critical":
                source = metric_of(ev.rule_id).split(".")[0]
                values = (figures or {}).get(project.name, {})
                own = (units or {}).get(project.name, {})
                shown_figures = {k: v for k, v in sorted(values.items()) if k.split(".")[0] == source}
                shown_units = {k: m.CATALOGUE[k].unit if k in m.CATALOGUE else own.get(k) for k in shown_figures}
                self._guard(project, ev, self.breached, shown_figures, shown_units)
            elif (ev.rule_id, ev.scope_key) in critical_before:  # down to warning: say so on its issue
                self._guard(project, ev, self.breached, open_new=False)
        for ev in resolved:
            project = projects.get(ev.scope_key)
            if project is None or ev.state != "resolved" or ev.resolved_at != at:
                continue
            self._guard(project, ev, self.recovered)
        return self.counts

    def _guard(self, project: Any, event: Any, action: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        try:
            action(project, event, *args, **kwargs)
        except Exception as exc:  # one project's tracker failing never stops the others
            self.log.exception("%s: the issue for %s could not be handled", project.name, metric_of(event.rule_id))
            self.failed.append(f"{project.name}: {metric_of(event.rule_id)}: {type(exc).__name__}: {exc}")

    def _tracker(self, project: Any) -> Any | None:
        if not _has_tracker(project):
            self.log.info("%s: no GitHub repository or GitLab project to open an issue on", project.name)
            return None
        if project.name not in self._trackers:
            self._trackers[project.name] = self._make_tracker(project)
        return self._trackers[project.name]

    def breached(
        self,
        project: Any,
        event: Any,
        figures: Mapping[str, Any] | None = None,
        units: Mapping[str, str | None] | None = None,
        *,
        open_new: bool = True,
    ) -> None:
        """The alert fires: open the issue (``open_new``), or comment on the open one when the value moved
        materially or the level changed since it last reported."""
        tracker = self._tracker(project)
        if tracker is None:
            return
        details = dict(event.details or {})
        metric = str(details.get("metric") or metric_of(event.rule_id))
        unit = details.get("unit")
        issue = tracker.find(self.label, it.marker(event.rule_id, project.name))
        if issue is None:
            if not open_new:
                return
            op = str(details.get("op") or "")
            limit = f"{op} {shown(event.threshold, unit)}".strip() if event.threshold is not None else ""
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
                units={metric: unit, **(units or {})},
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
            previous_level=previous_level,
        )
        tracker.comment(issue, body)
        self.counts["commented"] += 1

    def recovered(self, project: Any, event: Any) -> None:
        """The alert resolved: close the open issue with a comment."""
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
