"""GitHubHook's project-health methods against the sandbox GitHub (real HTTP): repository figures,
paged PRs that stop early, issues since, comments/reviews, commits, contributors, statistics (202),
releases, alerts with "no access", branch protection, rate limits, and the issue round trip."""

from __future__ import annotations

import datetime as dt
import json
import math
from urllib.parse import parse_qsl

import pytest

from devops_automation.hooks.api import ApiError
from devops_automation.hooks.github import GitHubHook, GitHubRateLimited, NoAccess, github_time, parse_time
from devops_automation.store.http_cache import MemoryHttpCache

UTC = dt.UTC
LEDGER = "acme-labs/ledger"


def make_hook(sandbox, **kwargs) -> GitHubHook:
    """A hook on the sandbox whose waits are recorded (``hook.waits``) and pass on the sandbox's clock."""
    hook = GitHubHook(**kwargs)
    hook.waits = []

    def sleep(seconds: float) -> None:
        hook.waits.append(seconds)
        sandbox.advance(seconds)

    hook.sleep = sleep
    return hook


@pytest.fixture
def hook(sandbox_conns, sandbox) -> GitHubHook:
    return make_hook(sandbox, cache=MemoryHttpCache())


def day0(sandbox) -> dt.datetime:
    text = sandbox.control("github", "GET", "/scenarios")[LEDGER]["day0"]
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def t(sandbox, k: float, h: float = 0) -> dt.datetime:
    """``k`` days before the sandbox's reset day, ``h`` o'clock (the ledger's designed times)."""
    return day0(sandbox) - dt.timedelta(days=k) + dt.timedelta(hours=h)


def query(rec: dict) -> dict[str, str]:
    return dict(parse_qsl(rec["query"], keep_blank_values=True))


def titled(items: list[dict], label: str) -> dict:
    return next(i for i in items if i["title"].startswith(f"{label}:"))


# -- repository, PRs, issues ------------------------------------------------------------------------
def test_repository_figures(hook, sandbox) -> None:
    repo = hook.repository(LEDGER)
    assert {k: repo[k] for k in ("stars", "forks", "watchers", "open_issues_and_prs", "archived")} == {
        "stars": 57,
        "forks": 9,
        "watchers": 4,  # subscribers_count, not the legacy watchers_count (= stars)
        "open_issues_and_prs": 10,  # 6 issues + 4 PRs
        "archived": False,
    }
    assert repo["default_branch"] == "main"
    assert repo["created_at"] == t(sandbox, 400)
    assert hook.repository("acme/legacy")["archived"] is True
    assert [r["path"] for r in sandbox.requests(system="github")] == ["/repos/acme-labs/ledger", "/repos/acme/legacy"]


def test_pulls_stop_paging_at_the_first_older_one(hook, sandbox) -> None:
    every = list(hook.pulls("acme/shop", per_page=10))
    pages = len(sandbox.requests(system="github", path="/pulls$"))
    assert len(every) > 60 and pages == math.ceil(len(every) / 10)
    updated = [parse_time(p["updated_at"]) for p in every]
    assert updated == sorted(updated, reverse=True)  # sort=updated, newest first
    cut = updated[14]
    sandbox.clear_requests()
    newer = list(hook.pulls("acme/shop", per_page=10, newer_than=cut))
    assert newer == [p for p in every if parse_time(p["updated_at"]) >= cut]
    recs = sandbox.requests(system="github", path="/pulls$")
    assert len(recs) == 2  # the 16th PR, on page 2, is older: no third page
    assert query(recs[0]) == {"state": "all", "sort": "updated", "direction": "desc", "per_page": "10"}
    with pytest.raises(ValueError, match="newer_than needs"):
        list(hook.pulls("acme/shop", sort="popularity", newer_than=cut))


def test_open_pull_count_and_issues_since(hook, sandbox) -> None:
    assert hook.open_pull_count(LEDGER) == 4
    since = t(sandbox, 91)
    items = hook.issues(LEDGER, since=since)
    assert len(items) == 19  # I18 was last updated 95 days before the reset day
    assert sum("pull_request" in i for i in items) == 10
    (rec,) = sandbox.requests(system="github", path="/issues$")
    assert query(rec) == {
        "state": "all",
        "sort": "updated",
        "direction": "desc",
        "per_page": "100",
        "since": github_time(since),
    }
    assert github_time(since).endswith("T00:00:00Z")
    with pytest.raises(ValueError, match="timezone-aware"):
        hook.issues(LEDGER, since=dt.datetime(2026, 1, 1))


def test_comments_and_reviews(hook, sandbox) -> None:
    items = hook.issues(LEDGER)
    i13, p3 = titled(items, "I13"), titled(items, "P3")
    comments = hook.issue_comments(LEDGER, i13["number"])
    assert [(c["user"]["login"], parse_time(c["created_at"])) for c in comments] == [
        ("github-actions[bot]", t(sandbox, 2, 10.5)),
        ("yuri", t(sandbox, 2, 11)),
        ("bob", t(sandbox, 2, 16)),
    ]
    reviews = hook.pull_reviews(LEDGER, p3["number"])
    assert [(r["state"], parse_time(r["submitted_at"])) for r in reviews] == [
        ("COMMENTED", t(sandbox, 2, 8.5)),
        ("APPROVED", t(sandbox, 2, 11)),
    ]
    with pytest.raises(ApiError) as err:
        hook.pull_reviews(LEDGER, i13["number"])
    assert err.value.status == 404


# -- commits, contributors, statistics, releases ----------------------------------------------------
def test_commits_in_a_window(hook, sandbox) -> None:
    day = hook.commits(LEDGER, t(sandbox, 2), t(sandbox, 1))
    assert [parse_time(c["commit"]["committer"]["date"]) for c in day] == [t(sandbox, 2, 14), t(sandbox, 2, 9.5)]
    (rec,) = sandbox.requests(system="github", path="/commits$")
    assert query(rec) == {"since": github_time(t(sandbox, 2)), "until": github_time(t(sandbox, 1)), "per_page": "100"}
    sandbox.clear_requests()
    every = hook.commits(LEDGER, t(sandbox, 121), t(sandbox, 0))
    assert len(every) == 113 and len({c["sha"] for c in every}) == 113
    assert len(sandbox.requests(system="github", path="/commits$")) == 2  # followed the Link to page 2
    assert hook.commits("acme/empty", t(sandbox, 30), t(sandbox, 0)) == []  # 409 "Git Repository is empty."


def test_contributors_and_commit_activity_waits_for_the_statistics(hook, sandbox) -> None:
    people = hook.contributors(LEDGER)
    assert [(p.get("login") or p.get("email"), p["contributions"]) for p in people] == [
        ("bob", 48),  # 40 commits and 8 merge commits
        ("alice", 30),
        ("dependabot[bot]", 17),
        ("carol", 12),
        ("dave", 3),
        ("erin", 2),
        ("contractor@example.com", 1),
    ]
    sandbox.control("github", "POST", f"/repos/{LEDGER}/stats", json={"pending": 2})
    weeks = hook.commit_activity(LEDGER)
    assert hook.waits == [2.0, 4.0]
    assert len(weeks) == 52 and sum(w["total"] for w in weeks) > 0
    sandbox.control("github", "POST", f"/repos/{LEDGER}/stats", json={"pending": 10})
    hook.waits.clear()
    assert hook.commit_activity(LEDGER) is None  # still computing: pending, not a failure
    assert hook.waits == [2.0, 4.0, 8.0, 16.0, 32.0]
    assert hook.commit_activity("acme/empty") == []  # 204


def test_releases(hook) -> None:
    releases = hook.releases(LEDGER)
    assert [(r["tag_name"], r["draft"], r["prerelease"]) for r in releases] == [
        ("v1.2.0", True, False),
        ("v1.1.0", False, False),
        ("v1.1.0-rc1", False, True),
        ("v1.0.0", False, False),
        ("v0.9.0", False, False),
    ]


# -- security ----------------------------------------------------------------------------------------
def test_alerts_of_every_kind(hook) -> None:
    dependabot = hook.dependabot_alerts(LEDGER)
    assert sorted(a["security_advisory"]["severity"] for a in dependabot) == [
        "critical",
        "critical",
        "high",
        "high",
        "low",
        "medium",
    ]
    assert len(hook.dependabot_alerts(LEDGER, state="open")) == 3
    assert len(hook.code_scanning_alerts(LEDGER)) == 4
    assert len(hook.secret_scanning_alerts(LEDGER)) == 3


@pytest.mark.parametrize(
    ("repo", "method", "status", "message"),
    [
        ("acme/web", "dependabot_alerts", 403, "Resource not accessible by personal access token"),
        ("acme/web", "code_scanning_alerts", 403, "Resource not accessible by personal access token"),
        ("acme/web", "secret_scanning_alerts", 403, "Resource not accessible by personal access token"),
        ("acme/infra", "dependabot_alerts", 403, "Dependabot alerts are disabled for this repository."),
        ("acme/api", "code_scanning_alerts", 404, "no analysis found"),
        ("acme/api", "secret_scanning_alerts", 404, "Secret scanning is disabled on this repository."),
    ],
)
def test_an_alert_list_the_token_may_not_read_is_no_access(hook, sandbox, repo, method, status, message) -> None:
    answer = getattr(hook, method)(repo)
    assert answer == NoAccess(method, status, message)
    assert answer.no_access is True and not answer
    assert len(sandbox.requests(system="github")) == 1  # not retried
    assert hook.waits == []


def test_branch_protection(hook, sandbox) -> None:
    shop = hook.branch_protection("acme/shop", "main")
    assert (shop["protected"], shop["source"]) == (True, "protection")
    assert shop["settings"]["required_pull_request_reviews"]["required_approving_review_count"] == 2
    web = hook.branch_protection("acme/web", "main")  # 404 "Branch not protected"
    assert (web["protected"], web["source"], web["settings"]) == (False, "protection", None)
    sandbox.clear_requests()
    api = hook.branch_protection("acme/api", "main")  # 403 without Administration: read -> the branch says
    assert (api["protected"], api["source"]) == (True, "branch")
    assert [(r["path"], r["status"]) for r in sandbox.requests(system="github")] == [
        ("/repos/acme/api/branches/main/protection", 403),
        ("/repos/acme/api/branches/main", 200),
    ]
    empty = hook.branch_protection("acme/empty", "main")  # an empty repository has no branch yet
    assert (empty["protected"], empty["branch_found"]) == (False, False)
    sandbox.fault(
        system="github", path="/branches/main$", status=403, body={"message": "Resource not accessible by integration"}
    )
    assert hook.branch_protection("acme/api", "main") == NoAccess(
        "branch_protection", 403, "Resource not accessible by integration"
    )


# -- rate limits -------------------------------------------------------------------------------------
def test_a_secondary_rate_limit_on_an_alert_list_is_waited_not_no_access(hook, sandbox) -> None:
    sandbox.control(
        "github", "POST", "/secondary_rate_limit", json={"times": 1, "retry_after": 5, "path": "/dependabot/"}
    )
    alerts = hook.dependabot_alerts(LEDGER)
    assert isinstance(alerts, list) and len(alerts) == 6
    assert hook.waits == [5]
    assert [r["status"] for r in sandbox.requests(system="github")] == [403, 200]


def test_a_long_secondary_rate_limit_is_raised_for_deferral(hook, sandbox) -> None:
    sandbox.control("github", "POST", "/secondary_rate_limit", json={"times": 1, "retry_after": 900})
    with pytest.raises(GitHubRateLimited) as err:
        hook.secret_scanning_alerts(LEDGER)
    assert (err.value.kind, err.value.source, err.value.retry_after) == ("secondary", "retry-after", 900)
    sandbox.control("github", "POST", "/secondary_rate_limit", json={"times": 1, "retry_after": 900})
    with pytest.raises(GitHubRateLimited):  # not taken for "no access to the protection"
        hook.branch_protection("acme/shop", "main")
    assert hook.waits == []


# -- issues this package opens -----------------------------------------------------------------------
MARKER = "<!-- devops-automation:rule=github.commits_90d project=shop -->"


def test_issue_round_trip(hook, sandbox) -> None:
    assert hook.find_issues("acme/shop", "devops-automation", MARKER) == []
    created = hook.create_issue("acme/shop", "shop: commits_90d is critical", f"body\n{MARKER}", ["devops-automation"])
    number = created["number"]
    hook.create_issue(
        "acme/shop", "other rule", "<!-- devops-automation:rule=x project=shop -->", ["devops-automation"]
    )
    hook.create_issue("acme/shop", "same marker, no label", MARKER, [])
    found = hook.find_issues("acme/shop", "devops-automation", MARKER)
    assert [i["number"] for i in found] == [number]
    comment = hook.comment_issue("acme/shop", number, "still critical")
    assert comment["body"] == "still critical"
    closed = hook.close_issue("acme/shop", number, "recovered")
    assert (closed["state"], closed["state_reason"], closed["comments"]) == ("closed", "completed", 2)
    assert hook.find_issues("acme/shop", "devops-automation", MARKER) == []
    assert [i["number"] for i in hook.find_issues("acme/shop", "devops-automation", MARKER, state="all")] == [number]
    assert [c["body"] for c in hook.issue_comments("acme/shop", number)] == ["still critical", "recovered"]
    writes = [r for r in sandbox.requests(system="github") if r["method"] != "GET"]
    assert [(r["method"], r["path"], r["status"]) for r in writes] == [
        ("POST", "/repos/acme/shop/issues", 201),
        ("POST", "/repos/acme/shop/issues", 201),
        ("POST", "/repos/acme/shop/issues", 201),
        ("POST", f"/repos/acme/shop/issues/{number}/comments", 201),
        ("POST", f"/repos/acme/shop/issues/{number}/comments", 201),  # the closing comment, before closing
        ("PATCH", f"/repos/acme/shop/issues/{number}", 200),
    ]
    assert json.loads(writes[0]["body"]) == {
        "title": "shop: commits_90d is critical",
        "body": f"body\n{MARKER}",
        "labels": ["devops-automation"],
    }
    assert json.loads(writes[-1]["body"]) == {"state": "closed", "state_reason": "completed"}
    lists = sandbox.requests(system="github", method="GET", path="/repos/acme/shop/issues$")
    assert query(lists[0])["labels"] == "devops-automation"


def test_a_secondary_rate_limit_on_creating_an_issue_is_waited_and_creates_one(hook, sandbox) -> None:
    sandbox.control("github", "POST", "/secondary_rate_limit", json={"times": 1, "retry_after": 3, "path": "/issues$"})
    created = hook.create_issue("acme/shop", "once", MARKER, ["devops-automation"])
    assert hook.waits == [3]
    posts = sandbox.requests(system="github", method="POST")
    assert [r["status"] for r in posts] == [403, 201]
    found = hook.find_issues("acme/shop", "devops-automation", MARKER)
    assert [i["number"] for i in found] == [created["number"]]


def test_issue_write_errors_are_not_retried(hook, sandbox) -> None:
    with pytest.raises(ApiError, match="Repository was archived so is read-only") as err:
        hook.create_issue("acme/legacy", "x", "y")
    assert err.value.status == 403 and not isinstance(err.value, GitHubRateLimited)
    with pytest.raises(ApiError) as err:
        hook.comment_issue("acme/shop", 99999, "x")
    assert err.value.status == 404
    assert len(sandbox.requests(system="github")) == 2
