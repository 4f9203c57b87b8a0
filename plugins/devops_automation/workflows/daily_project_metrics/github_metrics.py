"""A repository's GitHub figures for one day ``[start, end)`` (plain Python, no Airflow).

``github_figures(hook, project, repo, start, end, latest=...)`` returns a
:class:`~.metric_rows.MetricsResult` whose rows use the names of :mod:`.metrics` (source ``github``,
metric = the key without ``github.``). "In the day" is ``[start, end)``; "90 days" is
``[end - 90 d, end)``. Every figure below is computed from timestamps, so re-running or backfilling a
past day gives what that day was, except the five **point-in-time** figures the API only gives "now":

===================================  =====  ==================================================================
metric                               unit   definition
===================================  =====  ==================================================================
stars, forks, watchers               count  now (``watchers`` = ``subscribers_count``); **latest interval only**
archived                             flag   1/0, now; **latest interval only**
branch_protection                    flag   default branch protected 1/0, now; "no access" when unreadable;
                                            **latest interval only**
repo_age_days                        d      ``end - created_at``
open_issues, open_prs                count  open at ``end``: open now (``open_issues_count`` minus the open PRs;
                                            the open PRs) minus those created since ``end``, plus those closed
                                            since ``end`` that were created before it (a reopened item is
                                            counted as open: GitHub keeps no reopen history in these lists)
issues_opened, issues_closed         count  issues (not PRs) created / closed in the day
prs_opened                           count  PRs created in the day (bots' too)
prs_merged                           count  PRs merged in the day
prs_closed                           count  PRs closed **without merge** in the day (as the catalogue says)
time_to_merge_p50_s                  s      median creation -> merge of the PRs merged in the day
time_to_first_response_p50_s / _p90  s      over the issues and PRs whose **first response came in the day**:
                                            the first comment or submitted review by someone who is not the
                                            author and not a bot (``type: Bot`` or a ``[bot]`` login); the
                                            time is creation -> that response (CHAOSS). Items never answered
                                            are not in it (nothing to measure yet)
first_responses                      count  how many items that median is over
commits                              count  default-branch commits in the day (committer date), merge
                                            commits left out (as GitHub's statistics do), bots' counted
commits_90d                          count  the same over 90 days (Scorecard "Maintained")
issue_activity_90d                   count  issues (not PRs) created or closed in the 90 days (Maintained)
active_contributors_90d              count  distinct authors of those commits, bots left out (a login, or
                                            the e-mail of a commit not linked to a user)
contributor_absence_factor           count  fewest of those authors making >= 50 % of their commits (CHAOSS);
                                            0 when there were none
closure_ratio_90d                    ratio  PRs closed (merged or not) / PRs opened in the 90 days (CHAOSS);
                                            no data when none was opened
releases                             count  releases published in the day (drafts and pre-releases left out)
last_release_age_days                d      ``end`` - the newest such release published before ``end``
dependabot_alerts.<severity>         count  Dependabot alerts open at ``end`` per advisory severity
code_scanning_alerts.<severity>      count  code-scanning alerts open at ``end`` per *security* severity
                                            (alerts without one, quality rules, are only in ``details``)
secret_scanning_alerts               count  secret-scanning alerts open at ``end`` (they have no severity)
===================================  =====  ==================================================================

Severities: critical, high, medium, low. An alert is open at ``end`` when it was created before it
and not fixed/dismissed/resolved before it (its ``fixed_at``/``dismissed_at``/``auto_dismissed_at``/
``resolved_at``).

**No access** (403/404 on an alert list, or neither protection endpoint readable): on the latest
interval the kind's rows say ``value_raw = "no access"`` with no value (never 0; the health score
treats them as "no data"), and a warning names it. On a past day they are left out, like the
point-in-time figures, so that backfilling never overwrites what that day's own run stored.

A failed call (after the hook's retries) fails only its family of figures (``errors`` names it,
``not_collected`` lists the figures); a failed repository call fails the whole source (``errors["*"]``).
A rate limit the hook would not wait for (an error with ``reset_at``) is raised: the task defers.

Calls per repository and day: the repository, the open PRs (pages of 100), the issues and PRs updated
in the 90 days (pages), per issue/PR updated in the day its comments (when it has any) and, for a PR,
its reviews (unless a comment already answered it before the day); the commits of the 90 days
(pages), the releases, the three alert lists, and on the latest interval the protection (one or two
calls). Constant URLs (the repository, open PRs, releases, alerts, comments, reviews, protection) are
conditional requests through the ETag cache: unchanged answers are 304s, free of rate limit. The two
lists whose URL holds the window (issues ``since``, commits ``since``/``until``) are not cached: their
URL changes every day, so an entry would serve only a re-run of the same day, at some 300 KB of stored
pages per repository and day.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from devops_automation.workflows.daily_project_metrics.metric_rows import (
    WHOLE_SOURCE,
    MetricsResult,
    day_of,
    metric_row,
)

log = logging.getLogger(__name__)

SOURCE = "github"
LOOKBACK_DAYS = 90
NO_ACCESS = "no access"
NO_RELEASES = "no releases"
SEVERITIES = ("critical", "high", "medium", "low")
#: figures the API only gives "now": recorded for the latest interval only
POINT_IN_TIME = ("stars", "forks", "watchers", "archived", "branch_protection")
DAY = 86400.0

#: metric names per family (a family fails as a whole)
ISSUE_FIGURES = (
    "open_issues",
    "open_prs",
    "issues_opened",
    "issues_closed",
    "prs_opened",
    "prs_merged",
    "prs_closed",
    "time_to_merge_p50_s",
    "issue_activity_90d",
    "closure_ratio_90d",
)
RESPONSE_FIGURES = ("time_to_first_response_p50_s", "time_to_first_response_p90_s", "first_responses")
COMMIT_FIGURES = ("commits", "commits_90d", "active_contributors_90d", "contributor_absence_factor")
RELEASE_FIGURES = ("releases", "last_release_age_days")
DEPENDABOT_FIGURES = tuple(f"dependabot_alerts.{s}" for s in SEVERITIES)
CODE_SCANNING_FIGURES = tuple(f"code_scanning_alerts.{s}" for s in SEVERITIES)
SECRET_SCANNING_FIGURES = ("secret_scanning_alerts",)
#: every figure this module writes
ALL_FIGURES = (
    *POINT_IN_TIME,
    "repo_age_days",
    *ISSUE_FIGURES,
    *RESPONSE_FIGURES,
    *COMMIT_FIGURES,
    *RELEASE_FIGURES,
    *DEPENDABOT_FIGURES,
    *CODE_SCANNING_FIGURES,
    *SECRET_SCANNING_FIGURES,
)
#: when an alert of each kind stopped being open
_ALERT_CLOSED_AT = {
    "dependabot": ("fixed_at", "dismissed_at", "auto_dismissed_at"),
    "code_scanning": ("fixed_at", "dismissed_at"),
    "secret_scanning": ("resolved_at",),
}


class GitHubReader(Protocol):
    """What this module needs of ``GitHubHook`` (alert and protection methods may return a value with
    ``no_access = True`` instead: the hook's ``NoAccess``)."""

    def repository(self, repo: str) -> Mapping[str, Any]: ...

    def open_pull_count(self, repo: str) -> int: ...

    def issues(
        self, repo: str, *, since: dt.datetime | None = ..., state: str = ..., cached: bool = ...
    ) -> list[dict[str, Any]]: ...

    def issue_comments(self, repo: str, number: int) -> list[dict[str, Any]]: ...

    def pull_reviews(self, repo: str, number: int) -> list[dict[str, Any]]: ...

    def commits(
        self, repo: str, since: dt.datetime, until: dt.datetime, *, cached: bool = ...
    ) -> list[dict[str, Any]]: ...

    def releases(self, repo: str) -> list[dict[str, Any]]: ...

    def dependabot_alerts(self, repo: str) -> Any: ...

    def code_scanning_alerts(self, repo: str) -> Any: ...

    def secret_scanning_alerts(self, repo: str) -> Any: ...

    def branch_protection(self, repo: str, branch: str) -> Any: ...


# ---- pure helpers ----------------------------------------------------------------------------------
def parse_time(value: Any) -> dt.datetime | None:
    """A GitHub timestamp (``2026-01-01T12:00:00Z``) as an aware UTC datetime; None if absent or unreadable."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def is_no_access(value: Any) -> bool:
    """Whether a hook answer is its "no access" marker (``NoAccess``), tested without importing the hook."""
    return getattr(value, "no_access", False) is True


def is_bot(user: Any) -> bool:
    """A GitHub App or bot account: ``type: Bot``, or a login ending in ``[bot]``."""
    if not isinstance(user, Mapping):
        return False
    return str(user.get("type") or "") == "Bot" or str(user.get("login") or "").lower().endswith("[bot]")


def login_of(user: Any) -> str | None:
    return str(user["login"]).lower() if isinstance(user, Mapping) and user.get("login") else None


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) with linear interpolation (PostgreSQL's ``percentile_cont``); None if empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    if not 0 <= q <= 1:
        raise ValueError(f"q must be in [0, 1], got {q}")
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def absence_factor(contributions: Iterable[int]) -> int:
    """CHAOSS Contributor Absence Factor: the fewest contributors who together make at least half of
    the contributions (largest first). ``[1000, 433, 343, 332, 202, 90, 42, 33]`` -> 2; none -> 0."""
    counts = sorted((int(c) for c in contributions if c > 0), reverse=True)
    half = sum(counts) / 2
    running = 0
    for n, count in enumerate(counts, start=1):
        running += count
        if running >= half:
            return n
    return 0


def first_response(
    author: str | None, comments: Iterable[Mapping[str, Any]], reviews: Iterable[Mapping[str, Any]] = ()
) -> dt.datetime | None:
    """When someone other than ``author`` (a login) and not a bot first answered: the earliest comment
    (``created_at``) or submitted review (``submitted_at``; pending reviews have none)."""
    times = []
    for item, field in [*((c, "created_at") for c in comments), *((r, "submitted_at") for r in reviews)]:
        user = item.get("user")
        if is_bot(user) or (author is not None and login_of(user) == author) or login_of(user) is None:
            continue
        when = parse_time(item.get(field))
        if when is not None:
            times.append(when)
    return min(times, default=None)


def alert_closed_at(alert: Mapping[str, Any], kind: str) -> dt.datetime | None:
    """When an alert stopped being open (the first of its close timestamps), None while open."""
    stamps = [parse_time(alert.get(name)) for name in _ALERT_CLOSED_AT[kind]]
    found = [s for s in stamps if s is not None]
    if found:
        return min(found)
    if str(alert.get("state") or "open") != "open":  # closed without a timestamp (e.g. "closed" code scanning)
        return parse_time(alert.get("updated_at")) or dt.datetime.min.replace(tzinfo=dt.UTC)
    return None


def alert_open_at(alert: Mapping[str, Any], kind: str, when: dt.datetime) -> bool:
    created = parse_time(alert.get("created_at"))
    if created is None or created >= when:
        return False
    closed = alert_closed_at(alert, kind)
    return closed is None or closed >= when


def alert_severity(alert: Mapping[str, Any], kind: str) -> str | None:
    """critical/high/medium/low: a Dependabot alert's advisory severity ("moderate" is medium), a
    code-scanning alert's ``rule.security_severity_level``; None otherwise."""
    if kind == "dependabot":
        advisory = alert.get("security_advisory") or {}
        vulnerability = alert.get("security_vulnerability") or {}
        value = advisory.get("severity") or vulnerability.get("severity")
    elif kind == "code_scanning":
        value = (alert.get("rule") or {}).get("security_severity_level")
    else:
        return None
    text = str(value or "").lower()
    text = "medium" if text == "moderate" else text
    return text if text in SEVERITIES else None


def raw_text(value: float | int | bool) -> str:
    """``value_raw`` of a computed figure: ``true``/``false``, whole numbers without ``.0``, else up to 3 decimals."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(round(float(value), 3))


def _is_source_error(exc: BaseException) -> bool:
    """GitHub (or the way to it) failed: an API error (``status`` and ``system``) or a network error."""
    return isinstance(exc, OSError) or (hasattr(exc, "status") and hasattr(exc, "system"))


def _is_rate_limit(exc: BaseException) -> bool:
    return getattr(exc, "reset_at", None) is not None


# ---- collection ------------------------------------------------------------------------------------
class _Figures:
    def __init__(
        self,
        hook: GitHubReader,
        project: str,
        repo: str,
        start: dt.datetime,
        end: dt.datetime,
        latest: bool,
        lookback_days: int,
    ) -> None:
        day = day_of(start, end)  # checks that both are aware and start < end
        self.hook, self.project, self.repo = hook, project, repo
        self.start, self.end, self.latest = start, end, latest
        self.since = min(start, end - dt.timedelta(days=lookback_days))
        self.result = MetricsResult(SOURCE, project, day)
        self.details: dict[str, Any] = {"repo": repo, "latest": latest, "window_90d_from": self.since.isoformat()}
        self.result.details["github"] = self.details

    # -- rows --------------------------------------------------------------------------------------
    def add(self, metric: str, value: float | int | bool | None, unit: str, empty: str | None = None) -> None:
        """A row: ``value`` None is "no data" (or the ``empty`` text)."""
        if value is None:
            self.result.rows.append(metric_row(self.result.day, SOURCE, self.project, metric, empty, None, unit))
            return
        number = float(value)
        self.result.rows.append(
            metric_row(self.result.day, SOURCE, self.project, metric, raw_text(value), number, unit)
        )

    def no_access(self, metrics: Sequence[str], unit: str, answer: Any) -> None:
        what = getattr(answer, "what", metrics[0])
        said = f"{getattr(answer, 'status', '?')} {getattr(answer, 'message', '')}".strip()
        if self.latest:
            for metric in metrics:
                self.result.rows.append(
                    metric_row(self.result.day, SOURCE, self.project, metric, NO_ACCESS, None, unit)
                )
            self.result.warnings.append(f"{self.repo}: {what}: no access ({said})")
        else:
            self.result.warnings.append(f"{self.repo}: {what}: no access ({said}); past day: not recorded")
        self.details.setdefault("no_access", {})[what] = said

    def family(self, name: str, metrics: Sequence[str], work: Callable[[], None]) -> None:
        """Run one family of figures; a GitHub failure is recorded for it and the others go on."""
        before = len(self.result.rows)
        try:
            work()
        except Exception as exc:
            if _is_rate_limit(exc) or not _is_source_error(exc):
                raise
            del self.result.rows[before:]
            self.result.errors[name] = f"{self.repo}: {exc}"
            self.result.not_collected += [m for m in metrics if m not in self.result.not_collected]
            log.warning("%s: github %s failed: %s", self.project, name, exc)

    # -- families ----------------------------------------------------------------------------------
    def run(self) -> MetricsResult:
        try:
            repo = self.hook.repository(self.repo)
        except Exception as exc:
            if _is_rate_limit(exc) or not _is_source_error(exc):
                raise
            self.result.errors[WHOLE_SOURCE] = f"GitHub repository {self.repo!r}: {exc}"
            self.result.not_collected = list(ALL_FIGURES)
            log.warning("%s: github failed: %s", self.project, exc)
            return self.result
        self.details["default_branch"] = repo.get("default_branch")
        if self.latest:
            self.add("stars", repo.get("stars"), "count")
            self.add("forks", repo.get("forks"), "count")
            self.add("watchers", repo.get("watchers"), "count")
            self.add("archived", bool(repo.get("archived")), "flag")
        else:
            self.details["point_in_time_not_recorded"] = list(POINT_IN_TIME)
        created = parse_time(repo.get("created_at"))
        self.add("repo_age_days", None if created is None else (self.end - created).total_seconds() / DAY, "d")
        self.family("issues", ISSUE_FIGURES, lambda: self.issues_and_prs(repo))
        self.family("commits", COMMIT_FIGURES, self.commits)
        self.family("releases", RELEASE_FIGURES, self.releases)
        self.family("dependabot_alerts", DEPENDABOT_FIGURES, lambda: self.alerts("dependabot"))
        self.family("code_scanning_alerts", CODE_SCANNING_FIGURES, lambda: self.alerts("code_scanning"))
        self.family("secret_scanning_alerts", SECRET_SCANNING_FIGURES, lambda: self.alerts("secret_scanning"))
        if self.latest:
            self.family("branch_protection", ("branch_protection",), lambda: self.protection(repo))
        return self.result

    def issues_and_prs(self, repo: Mapping[str, Any]) -> None:
        start, end = self.start, self.end
        items = self.hook.issues(self.repo, since=self.since, state="all", cached=False)
        open_prs_now = int(self.hook.open_pull_count(self.repo))
        open_now = {"pr": open_prs_now, "issue": int(repo.get("open_issues_and_prs") or 0) - open_prs_now}
        opened: Counter[str] = Counter()
        closed_in_day: Counter[str] = Counter()
        merged_waits: list[float] = []
        merged = closed_unmerged = 0
        activity = prs_opened_90 = prs_closed_90 = 0
        candidates = []
        for item in items:
            kind = "pr" if isinstance(item.get("pull_request"), Mapping) else "issue"
            created = parse_time(item.get("created_at"))
            closed = parse_time(item.get("closed_at"))
            merged_at = parse_time((item.get("pull_request") or {}).get("merged_at")) if kind == "pr" else None
            if created is None:
                self.result.warnings.append(f"{self.repo}#{item.get('number')}: unreadable created_at; left out")
                continue
            if created >= end and closed is None:
                open_now[kind] -= 1  # opened since the end: it was not open then
            if created < end and closed is not None and closed >= end:
                open_now[kind] += 1  # closed since the end: it was open then
            if start <= created < end:
                opened[kind] += 1
            if closed is not None and start <= closed < end:
                closed_in_day[kind] += 1
                if kind == "pr" and merged_at is None:
                    closed_unmerged += 1
            if kind == "pr" and merged_at is not None and start <= merged_at < end:
                merged += 1
                merged_waits.append((merged_at - created).total_seconds())
            in_90 = [self.since <= t < end for t in (created, closed) if t is not None]
            if kind == "issue" and any(in_90):
                activity += 1
            if kind == "pr":
                prs_opened_90 += self.since <= created < end
                prs_closed_90 += closed is not None and self.since <= closed < end
            updated = parse_time(item.get("updated_at"))
            if created < end and (updated is None or updated >= start):
                candidates.append((item, kind, created))
        for kind, count in open_now.items():
            if count < 0:
                self.result.warnings.append(f"{self.repo}: open {kind}s at the end came out {count}; recorded 0")
        self.add("open_issues", max(0, open_now["issue"]), "count")
        self.add("open_prs", max(0, open_now["pr"]), "count")
        self.add("issues_opened", opened["issue"], "count")
        self.add("issues_closed", closed_in_day["issue"], "count")
        self.add("prs_opened", opened["pr"], "count")
        self.add("prs_merged", merged, "count")
        self.add("prs_closed", closed_unmerged, "count")
        self.add("time_to_merge_p50_s", percentile(merged_waits, 0.5), "s")
        self.add("issue_activity_90d", activity, "count")
        self.add("closure_ratio_90d", prs_closed_90 / prs_opened_90 if prs_opened_90 else None, "ratio")
        self.family("first_response", RESPONSE_FIGURES, lambda: self.first_responses(candidates))

    def first_responses(self, candidates: Sequence[tuple[Mapping[str, Any], str, dt.datetime]]) -> None:
        waits: list[float] = []
        asked = 0
        for item, kind, created in candidates:
            number = int(item["number"])
            author = login_of(item.get("user"))
            comments = self.hook.issue_comments(self.repo, number) if int(item.get("comments") or 0) > 0 else []
            first = first_response(author, comments)
            if kind == "pr" and (first is None or first >= self.start):
                # a PR's reviews count too, unless a comment already answered it before the day: then its
                # first response is before the day whatever the reviews say (one request fewer)
                first = first_response(author, comments, self.hook.pull_reviews(self.repo, number))
            asked += 1
            if first is not None and self.start <= first < self.end:
                waits.append(max(0.0, (first - created).total_seconds()))
        self.details["first_response_items_checked"] = asked
        self.add("time_to_first_response_p50_s", percentile(waits, 0.5), "s")
        self.add("time_to_first_response_p90_s", percentile(waits, 0.9), "s")
        self.add("first_responses", len(waits), "count")

    def commits(self) -> None:
        per_author: Counter[str] = Counter()
        in_day = in_90 = 0
        for commit in self.hook.commits(self.repo, self.since, self.end, cached=False):
            body = commit.get("commit") or {}
            when = parse_time((body.get("committer") or {}).get("date"))
            if when is None or not self.since <= when < self.end:
                continue
            if len(commit.get("parents") or []) > 1:
                continue  # a merge commit
            in_90 += 1
            in_day += self.start <= when < self.end
            author = commit.get("author")
            git_author = body.get("author") or {}
            if isinstance(author, Mapping) and author.get("login"):
                if is_bot(author):
                    continue
                identity = f"login:{str(author['login']).lower()}"
            else:
                email = str(git_author.get("email") or git_author.get("name") or "").lower()
                if not email or "[bot]" in email:
                    continue
                identity = f"email:{email}"
            per_author[identity] += 1
        self.add("commits", in_day, "count")
        self.add("commits_90d", in_90, "count")
        self.add("active_contributors_90d", len(per_author), "count")
        self.add("contributor_absence_factor", absence_factor(per_author.values()), "count")

    def releases(self) -> None:
        published = []
        for release in self.hook.releases(self.repo):
            when = parse_time(release.get("published_at"))
            if release.get("draft") or release.get("prerelease") or when is None:
                continue
            published.append(when)
        self.add("releases", sum(1 for p in published if self.start <= p < self.end), "count")
        before = [p for p in published if p < self.end]
        age = (self.end - max(before)).total_seconds() / DAY if before else None
        self.add("last_release_age_days", age, "d", empty=NO_RELEASES)

    def alerts(self, kind: str) -> None:
        fetch = {
            "dependabot": (self.hook.dependabot_alerts, DEPENDABOT_FIGURES),
            "code_scanning": (self.hook.code_scanning_alerts, CODE_SCANNING_FIGURES),
            "secret_scanning": (self.hook.secret_scanning_alerts, SECRET_SCANNING_FIGURES),
        }
        method, metrics = fetch[kind]
        answer = method(self.repo)
        if is_no_access(answer):
            self.no_access(metrics, "count", answer)
            return
        open_alerts = [a for a in answer if alert_open_at(a, kind, self.end)]
        if kind == "secret_scanning":
            self.add("secret_scanning_alerts", len(open_alerts), "count")
            return
        counts = Counter(alert_severity(a, kind) for a in open_alerts)
        for severity, metric in zip(SEVERITIES, metrics, strict=True):
            self.add(metric, counts.get(severity, 0), "count")
        if counts.get(None):
            self.details[f"{kind}_open_without_severity"] = counts[None]

    def protection(self, repo: Mapping[str, Any]) -> None:
        branch = str(repo.get("default_branch") or "main")
        answer = self.hook.branch_protection(self.repo, branch)
        if is_no_access(answer):
            self.no_access(("branch_protection",), "flag", answer)
            return
        self.details["protection_source"] = answer.get("source")
        self.add("branch_protection", bool(answer.get("protected")), "flag")


def github_figures(
    hook: GitHubReader,
    project: str,
    repo: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    latest: bool,
    lookback_days: int = LOOKBACK_DAYS,
) -> MetricsResult:
    """The GitHub rows of ``project`` (repository ``owner/name``) for the day ``[start, end)``; see the
    module docstring. ``latest``: this is the latest interval, so the point-in-time figures (stars,
    forks, watchers, archived, branch protection) and "no access" rows are recorded; on a past day
    they are left out. ``lookback_days``: the "90 days" window (at least 1)."""
    if lookback_days < 1:
        raise ValueError(f"lookback_days must be at least 1, got {lookback_days}")
    if not isinstance(repo, str) or repo.count("/") != 1:
        raise ValueError(f"project {project!r}: a GitHub repository is 'owner/name', got {repo!r}")
    return _Figures(hook, project, repo, start, end, latest, lookback_days).run()
