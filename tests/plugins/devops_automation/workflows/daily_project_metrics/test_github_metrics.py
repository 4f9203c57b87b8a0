"""github_figures: the sandbox's designed repository ``acme-labs/ledger`` for a past day and the latest
day, with expectations worked out by hand from its seed (``seed_ledger``); "no access", failures of one
family, rate limits; and the pure helpers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from devops_automation.hooks.github import GitHubHook, GitHubRateLimited
from devops_automation.store.http_cache import MemoryHttpCache
from devops_automation.workflows.daily_project_metrics import github_metrics as gm
from devops_automation.workflows.daily_project_metrics.metric_rows import NO_DATA, WHOLE_SOURCE

UTC = dt.UTC
LEDGER = "acme-labs/ledger"
H = 3600.0


def day0(sandbox) -> dt.datetime:
    text = sandbox.control("github", "GET", "/scenarios")[LEDGER]["day0"]
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def interval(sandbox, k: int) -> tuple[dt.datetime, dt.datetime]:
    """The UTC day ``k`` days before the sandbox's reset day."""
    start = day0(sandbox) - dt.timedelta(days=k)
    return start, start + dt.timedelta(days=1)


@pytest.fixture
def hook(sandbox_conns, sandbox) -> GitHubHook:
    h = GitHubHook(cache=MemoryHttpCache())
    h.waits = []

    def sleep(seconds: float) -> None:
        h.waits.append(seconds)
        sandbox.advance(seconds)

    h.sleep = sleep
    return h


def values(result) -> dict[str, float | None]:
    return {r["metric"]: r["value"] for r in result.rows}


def raws(result) -> dict[str, str]:
    return {r["metric"]: r["value_raw"] for r in result.rows}


# Hand computation (times are t(k, h): k days before the reset day, h o'clock; "day 2" = [t(2), t(1))).
# Commits in the 90 days before the end of day 2 (days 2..91): alice k%4 -> 4..88 = 22, bob k%3 -> 3..90
# = 30, carol k%10 -> 10..90 = 9, dave t(2,9.5) t(2,14) t(5,14) = 3, contractor t(4,13) = 1, dependabot
# k%7 -> 7..91 = 13 (a bot: counted as a commit, not as a contributor), merges k%15 (left out):
# commits_90d 78; contributors alice, bob, carol, dave, contractor = 5; absence factor: 65 human
# commits, half 32.5, bob 30 < 32.5, bob + alice 52 >= 32.5 -> 2. Day 2 itself: dave twice = 2.
# PRs in day 2: opened P3, P4, P5, P8 = 4; merged P2 (24 h), P3 (4 h), P8 (1 h) = 3, median 4 h;
# closed without merge P4 = 1. Open at the end (t(1)): P5, P6 (merged in day 1), P9 = 3.
# Issues in day 2: opened I13, I14; closed I13. Open at the end: I12, I14, I15, I16 (closed day 1), I19 = 5.
# First responses in day 2 (not the author, not a bot): P2 alice 23 h, P3 bob 0.5 h, P8 bob 0.75 h (after
# github-actions[bot]), I12 alice 24 h, I13 bob 6 h (after a bot and the author) -> p50 6 h, p90 at
# 0.9 x 4 = 3.6: 23 h + 0.6 x 1 h = 23.6 h = 84,960 s.
# Issue activity in 90 days: I11 I12 I13 I14 I15 I16 I19 = 7. PRs opened in 90 days: P1-P6, P8, P9 = 8,
# closed: P1 P2 P3 P4 P8 = 5 -> 0.625. Releases: v1.1.0 drafted t(3,13), published t(2,15) -> 1;
# age at t(1): 9 h = 0.375 d. Alerts open at t(1): Dependabot high 2 (t20, t3), medium 1 (dismissed
# t(1,8)); code scanning critical 1 (fixed t(1,11)), high 1 (+1 without a security level); secrets:
# #1 and #3 (resolved t(1,9)) = 2. The repository was created t(400): 399 days.
DAY_2 = {
    "repo_age_days": 399.0,
    "open_issues": 5.0,
    "open_prs": 3.0,
    "issues_opened": 2.0,
    "issues_closed": 1.0,
    "prs_opened": 4.0,
    "prs_merged": 3.0,
    "prs_closed": 1.0,
    "time_to_merge_p50_s": 4 * H,
    "issue_activity_90d": 7.0,
    "closure_ratio_90d": 0.625,
    "time_to_first_response_p50_s": 6 * H,
    "time_to_first_response_p90_s": 23.6 * H,
    "first_responses": 5.0,
    "commits": 2.0,
    "commits_90d": 78.0,
    "active_contributors_90d": 5.0,
    "contributor_absence_factor": 2.0,
    "releases": 1.0,
    "last_release_age_days": 0.375,
    "dependabot_alerts.critical": 0.0,
    "dependabot_alerts.high": 2.0,
    "dependabot_alerts.medium": 1.0,
    "dependabot_alerts.low": 0.0,
    "code_scanning_alerts.critical": 1.0,
    "code_scanning_alerts.high": 1.0,
    "code_scanning_alerts.medium": 0.0,
    "code_scanning_alerts.low": 0.0,
    "secret_scanning_alerts": 2.0,
}
# Day 1 ([t(1), t(0)), the latest interval): point-in-time figures now (57 stars, 9 forks, 4 watchers,
# not archived, main protected). Commits in days 1..90: alice 22, bob 30, carol 9, dave 3, erin 1
# (t(1,15), the day's only commit), contractor 1, dependabot 12 -> 78; 6 contributors; 66 human
# commits, half 33 -> bob + alice -> 2. PRs: opened P7, P10; merged P6 (t(5,10) -> t(1,10): 96 h);
# none closed unmerged; open at t(0): P5, P7, P9, P10 = 4. Issues: opened I17, I20, closed I16; open
# I12, I14, I15, I17, I19, I20 = 6. First responses: P5 alice 21 h, I15 carol 72 h -> p50 46.5 h,
# p90 21 + 0.9 x 51 = 66.9 h. Activity: the 7 above + I17 + I20 - none dropped = 9; PRs opened in
# days 1..90 10, closed P1 P2 P3 P4 P6 P8 = 6 -> 0.6. No release in the day; v1.1.0 is 33 h old.
# Alerts at t(0): Dependabot high 2, low 1 (t(1,9)); code scanning high 1; secrets #1 only.
DAY_1 = {
    **DAY_2,
    "stars": 57.0,
    "forks": 9.0,
    "watchers": 4.0,
    "archived": 0.0,
    "branch_protection": 1.0,
    "repo_age_days": 400.0,
    "open_issues": 6.0,
    "open_prs": 4.0,
    "issues_opened": 2.0,
    "issues_closed": 1.0,
    "prs_opened": 2.0,
    "prs_merged": 1.0,
    "prs_closed": 0.0,
    "time_to_merge_p50_s": 96 * H,
    "issue_activity_90d": 9.0,
    "closure_ratio_90d": 0.6,
    "time_to_first_response_p50_s": 46.5 * H,
    "time_to_first_response_p90_s": 66.9 * H,
    "first_responses": 2.0,
    "commits": 1.0,
    "commits_90d": 78.0,
    "active_contributors_90d": 6.0,
    "contributor_absence_factor": 2.0,
    "releases": 0.0,
    "last_release_age_days": 1.375,
    "dependabot_alerts.medium": 0.0,
    "dependabot_alerts.low": 1.0,
    "code_scanning_alerts.critical": 0.0,
    "secret_scanning_alerts": 1.0,
}


def test_a_past_day_from_timestamps_without_point_in_time_figures(hook, sandbox) -> None:
    start, end = interval(sandbox, 2)
    result = gm.github_figures(hook, "ledger", LEDGER, start, end, latest=False)
    assert result.errors == {} and result.warnings == []
    got = values(result)
    assert got.keys() == DAY_2.keys()
    for metric, expected in DAY_2.items():
        assert got[metric] == pytest.approx(expected), metric
    assert {(r["day"], r["source"], r["project"]) for r in result.rows} == {(start.date(), "github", "ledger")}
    assert raws(result)["closure_ratio_90d"] == "0.625" and raws(result)["time_to_merge_p50_s"] == "14400"
    units = {r["metric"]: r["unit"] for r in result.rows}
    assert (units["time_to_merge_p50_s"], units["closure_ratio_90d"], units["repo_age_days"]) == ("s", "ratio", "d")
    assert result.details["github"]["point_in_time_not_recorded"] == list(gm.POINT_IN_TIME)
    assert result.details["github"]["code_scanning_open_without_severity"] == 1
    paths = [r["path"] for r in sandbox.requests(system="github")]
    assert not any(p.endswith("/protection") or "/branches/" in p for p in paths)  # now-only: not asked
    (commits,) = sandbox.requests(system="github", path="/commits$")
    assert "since=" in commits["query"] and "until=" in commits["query"]


def test_the_latest_day_with_point_in_time_figures(hook, sandbox) -> None:
    start, end = interval(sandbox, 1)
    result = gm.github_figures(hook, "ledger", LEDGER, start, end, latest=True)
    assert result.errors == {} and result.warnings == []
    got = values(result)
    assert got.keys() == DAY_1.keys()
    for metric, expected in DAY_1.items():
        assert got[metric] == pytest.approx(expected), metric
    assert (raws(result)["archived"], raws(result)["branch_protection"]) == ("false", "true")
    assert result.details["github"]["protection_source"] == "protection"


def test_running_the_same_day_again_gives_the_same_rows_from_304s_but_the_windowed_lists(hook, sandbox) -> None:
    start, end = interval(sandbox, 1)
    first = gm.github_figures(hook, "ledger", LEDGER, start, end, latest=True)
    sandbox.clear_requests()
    again = gm.github_figures(hook, "ledger", LEDGER, start, end, latest=True)
    assert again.rows == first.rows
    got = sandbox.requests(system="github")
    windowed = [r for r in got if r["path"].endswith(("/issues", "/commits"))]  # URLs that hold the window
    assert [r["path"] for r in windowed] == [f"/repos/{LEDGER}/issues", f"/repos/{LEDGER}/commits"]
    assert {r["status"] for r in windowed} == {200}  # not cached: asked afresh
    assert not any("if-none-match" in {k.lower() for k in r["headers"]} for r in windowed)
    others = [r["status"] for r in got if r not in windowed]
    assert others and set(others) == {304}  # every other GET was conditional and unchanged


def test_no_access_is_recorded_on_the_latest_day_and_left_out_of_a_past_day(hook, sandbox) -> None:
    start, end = interval(sandbox, 1)
    latest = gm.github_figures(hook, "web", "acme/web", start, end, latest=True)
    refused = [r for r in latest.rows if r["value_raw"] == gm.NO_ACCESS]
    assert sorted(r["metric"] for r in refused) == sorted(
        [*gm.DEPENDABOT_FIGURES, *gm.CODE_SCANNING_FIGURES, *gm.SECRET_SCANNING_FIGURES]
    )
    assert all(r["value"] is None for r in refused)
    assert latest.errors == {}
    assert len(latest.warnings) == 3 and all("no access (403 Resource not accessible" in w for w in latest.warnings)
    assert values(latest)["branch_protection"] == 0.0  # 404 "Branch not protected"
    past = gm.github_figures(hook, "web", "acme/web", *interval(sandbox, 3), latest=False)
    assert not [r for r in past.rows if "alerts" in r["metric"]]
    assert len(past.warnings) == 3 and all("past day: not recorded" in w for w in past.warnings)
    api = gm.github_figures(hook, "api", "acme/api", start, end, latest=True)
    assert raws(api)["code_scanning_alerts.high"] == gm.NO_ACCESS  # 404 "no analysis found"
    assert values(api)["dependabot_alerts.high"] == 1.0
    assert values(api)["branch_protection"] == 1.0  # the branch says so: the token may not read the rules
    assert api.details["github"]["protection_source"] == "branch"


def test_an_empty_repository_has_zeros_and_no_data_not_errors(hook, sandbox) -> None:
    result = gm.github_figures(hook, "empty", "acme/empty", *interval(sandbox, 1), latest=True)
    assert result.errors == {}
    got, raw = values(result), raws(result)
    assert (got["commits_90d"], got["active_contributors_90d"], got["contributor_absence_factor"]) == (0, 0, 0)
    assert (raw["time_to_merge_p50_s"], raw["closure_ratio_90d"]) == (NO_DATA, NO_DATA)
    assert (raw["last_release_age_days"], got["last_release_age_days"]) == (gm.NO_RELEASES, None)
    assert got["branch_protection"] == 0.0  # no branch yet


def test_a_failing_family_leaves_the_others(hook, sandbox) -> None:
    sandbox.fault(system="github", path="/commits$", status=500, message="Server Error")
    sandbox.fault(system="github", path="/reviews$", status=502, message="Bad Gateway")
    result = gm.github_figures(hook, "ledger", LEDGER, *interval(sandbox, 2), latest=False)
    assert set(result.errors) == {"commits", "first_response"}
    assert "500" in result.errors["commits"] and "acme-labs/ledger" in result.errors["commits"]
    assert result.not_collected == [*gm.RESPONSE_FIGURES, *gm.COMMIT_FIGURES]  # in the order they ran
    got = values(result)
    assert not set(got) & {*gm.COMMIT_FIGURES, *gm.RESPONSE_FIGURES}
    assert got["open_issues"] == 5.0 and got["prs_merged"] == 3.0 and got["releases"] == 1.0
    assert any(line.startswith("ledger: github 'commits': ") for line in result.problems())


def test_a_missing_repository_fails_the_whole_source(hook, sandbox) -> None:
    result = gm.github_figures(hook, "gone", "acme/no-such-repo", *interval(sandbox, 1), latest=True)
    assert result.rows == []
    assert "404" in result.errors[WHOLE_SOURCE] and "acme/no-such-repo" in result.errors[WHOLE_SOURCE]
    assert result.not_collected == list(gm.ALL_FIGURES)
    assert result.source_failed


def test_a_long_rate_limit_is_raised_for_the_task_to_defer(hook, sandbox) -> None:
    sandbox.control("github", "POST", "/rate_limit", json={"remaining": 0, "reset_in": 3600})
    with pytest.raises(GitHubRateLimited):
        gm.github_figures(hook, "ledger", LEDGER, *interval(sandbox, 1), latest=True)


def test_a_secondary_rate_limit_in_the_middle_is_waited(hook, sandbox) -> None:
    sandbox.control("github", "POST", "/secondary_rate_limit", json={"times": 1, "retry_after": 4, "path": "/issues$"})
    start, end = interval(sandbox, 2)
    result = gm.github_figures(hook, "ledger", LEDGER, start, end, latest=False)
    assert hook.waits == [4]
    assert values(result)["open_issues"] == DAY_2["open_issues"] and result.errors == {}


def test_arguments_are_checked(hook, sandbox) -> None:
    start, end = interval(sandbox, 1)
    with pytest.raises(ValueError, match="'owner/name'"):
        gm.github_figures(hook, "p", "ledger", start, end, latest=True)
    with pytest.raises(ValueError, match="lookback_days"):
        gm.github_figures(hook, "p", LEDGER, start, end, latest=True, lookback_days=0)
    with pytest.raises(ValueError, match="timezone-aware"):
        gm.github_figures(hook, "p", LEDGER, start.replace(tzinfo=None), end, latest=True)
    assert sandbox.requests(system="github") == []


# -- a stub hook: edge cases the sandbox does not have -------------------------------------------------
class Stub:
    def __init__(self, **answers: Any) -> None:
        self.answers = answers

    def __getattr__(self, name: str) -> Any:
        answer = self.answers.get(name, [])
        return lambda *a, **kw: answer


def test_unreadable_times_and_odd_alerts() -> None:
    end = dt.datetime(2026, 3, 2, tzinfo=UTC)
    start = end - dt.timedelta(days=1)
    stub = Stub(
        repository={
            "stars": 1,
            "open_issues_and_prs": 1,
            "default_branch": "main",
            "created_at": "2025-03-02T00:00:00Z",
        },
        open_pull_count=0,
        issues=[
            {"number": 1, "created_at": "garbage", "user": {"login": "a"}},
            {"number": 2, "created_at": "2026-03-01T10:00:00Z", "updated_at": "2026-03-01T10:00:00Z", "comments": 0},
        ],
        code_scanning_alerts=[
            {"created_at": "2026-02-01T00:00:00Z", "state": "closed", "rule": {"security_severity_level": "high"}},
            {"created_at": "2026-02-01T00:00:00Z", "state": "open", "rule": {"security_severity_level": "high"}},
        ],
        dependabot_alerts=[{"created_at": "2026-02-01T00:00:00Z", "security_advisory": {"severity": "moderate"}}],
        branch_protection={"protected": False, "source": "protection"},
    )
    result = gm.github_figures(stub, "p", "o/r", start, end, latest=True)
    got = values(result)
    assert got["issues_opened"] == 1.0 and got["open_issues"] == 1.0
    assert result.warnings == ["o/r#1: unreadable created_at; left out"]
    assert got["code_scanning_alerts.high"] == 1.0  # the "closed" one without a timestamp is not open
    assert got["dependabot_alerts.medium"] == 1.0  # "moderate" is medium
    assert got["repo_age_days"] == 365.0


# -- pure helpers --------------------------------------------------------------------------------------
def test_percentile_matches_percentile_cont() -> None:
    assert gm.percentile([], 0.5) is None
    assert gm.percentile([7.0], 0.9) == 7.0
    assert gm.percentile([1, 2, 3, 4], 0.5) == 2.5
    assert gm.percentile([10, 0, 20, 30, 40], 0.9) == pytest.approx(36.0)
    with pytest.raises(ValueError):
        gm.percentile([1], 1.5)


@pytest.mark.parametrize(
    ("counts", "factor"),
    [
        ([1000, 433, 343, 332, 202, 90, 42, 33], 2),  # the CHAOSS example: half is 1,237.5
        ([2, 2], 1),  # exactly half counts
        ([3, 3, 3, 3], 2),
        ([1, 1, 1, 1, 1], 3),
        ([], 0),
        ([0, 0], 0),
    ],
)
def test_absence_factor(counts: list[int], factor: int) -> None:
    assert gm.absence_factor(counts) == factor


def test_first_response_ignores_the_author_bots_and_pending_reviews() -> None:
    comments = [
        {"user": {"login": "Author"}, "created_at": "2026-01-01T01:00:00Z"},
        {"user": {"login": "helper", "type": "Bot"}, "created_at": "2026-01-01T02:00:00Z"},
        {"user": {"login": "renovate[bot]", "type": "User"}, "created_at": "2026-01-01T02:30:00Z"},
        {"user": None, "created_at": "2026-01-01T02:45:00Z"},  # a deleted account
        {"user": {"login": "carol"}, "created_at": "2026-01-01T05:00:00Z"},
    ]
    reviews = [
        {"user": {"login": "dave"}, "state": "PENDING"},
        {"user": {"login": "erin"}, "submitted_at": "2026-01-01T04:00:00Z"},
    ]
    assert gm.first_response("author", comments, reviews) == dt.datetime(2026, 1, 1, 4, tzinfo=UTC)
    assert gm.first_response("author", comments) == dt.datetime(2026, 1, 1, 5, tzinfo=UTC)
    assert gm.first_response("author", comments[:4]) is None


def test_alert_open_at_end() -> None:
    end = dt.datetime(2026, 1, 10, tzinfo=UTC)
    fixed_after = {"created_at": "2026-01-01T00:00:00Z", "state": "fixed", "fixed_at": "2026-01-10T00:00:00Z"}
    fixed_before = {**fixed_after, "fixed_at": "2026-01-09T23:59:59Z"}
    later = {"created_at": "2026-01-10T00:00:00Z", "state": "open"}
    resolved = {"created_at": "2026-01-01T00:00:00Z", "state": "resolved", "resolved_at": "2026-01-11T00:00:00Z"}
    assert gm.alert_open_at(fixed_after, "dependabot", end) is True
    assert gm.alert_open_at(fixed_before, "dependabot", end) is False
    assert gm.alert_open_at(later, "dependabot", end) is False
    assert gm.alert_open_at(resolved, "secret_scanning", end) is True
    assert gm.alert_severity({"rule": {"severity": "error"}}, "code_scanning") is None
    assert gm.alert_severity({"security_vulnerability": {"severity": "HIGH"}}, "dependabot") == "high"


def test_raw_text_and_no_access_marker() -> None:
    assert [gm.raw_text(v) for v in (True, False, 3, 4.0, 0.625, 1 / 3)] == [
        "true",
        "false",
        "3",
        "4",
        "0.625",
        "0.333",
    ]

    class Refused:
        no_access = True

    assert gm.is_no_access(Refused()) and not gm.is_no_access([]) and not gm.is_no_access(None)


class _Reader:
    """Just enough of GitHubHook for first responses: three PRs updated in the day 2026-03-10."""

    def __init__(self) -> None:
        self.reviews_asked: list[int] = []

    @staticmethod
    def _at(day: int, hour: int) -> str:
        return f"2026-03-{day:02d}T{hour:02d}:00:00Z"

    def repository(self, repo: str) -> dict[str, Any]:
        return {"default_branch": "main", "open_issues_and_prs": 3, "created_at": self._at(1, 0)}

    def open_pull_count(self, repo: str) -> int:
        return 3

    def issues(self, repo: str, **kw: Any) -> list[dict[str, Any]]:
        def pr(number: int, created: str) -> dict[str, Any]:
            return {
                "number": number,
                "user": {"login": "author"},
                "created_at": created,
                "updated_at": self._at(10, 12),
                "comments": 1,
                "pull_request": {"merged_at": None},
            }

        return [pr(1, self._at(8, 9)), pr(2, self._at(9, 9)), pr(3, self._at(10, 1))]

    def issue_comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        when = {1: self._at(9, 10), 2: self._at(10, 8), 3: self._at(10, 9)}[number]  # PR 1: before the day
        return [{"user": {"login": "reviewer"}, "created_at": when}]

    def pull_reviews(self, repo: str, number: int) -> list[dict[str, Any]]:
        self.reviews_asked.append(number)
        when = {1: self._at(10, 2), 2: self._at(10, 7), 3: self._at(10, 11)}[number]
        return [{"user": {"login": "reviewer"}, "submitted_at": when, "state": "APPROVED"}]

    def commits(self, repo: str, since: dt.datetime, until: dt.datetime, **kw: Any) -> list[dict[str, Any]]:
        return []

    def releases(self, repo: str) -> list[dict[str, Any]]:
        return []

    def dependabot_alerts(self, repo: str) -> list[dict[str, Any]]:
        return []

    code_scanning_alerts = secret_scanning_alerts = dependabot_alerts


def test_reviews_are_not_asked_for_when_a_comment_answered_before_the_day() -> None:
    reader = _Reader()
    start = dt.datetime(2026, 3, 10, tzinfo=UTC)
    result = gm.github_figures(reader, "p", "o/r", start, start + dt.timedelta(days=1), latest=False)
    assert reader.reviews_asked == [2, 3]  # PR 1 was answered on the 9th: its reviews cannot change that
    got = values(result)
    # PR 2: the review (7 h) came before the comment (8 h): 22 h after creation; PR 3: the comment, 8 h
    assert got["first_responses"] == 2.0
    assert got["time_to_first_response_p50_s"] == pytest.approx(15 * H)
