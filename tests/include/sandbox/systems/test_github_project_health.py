"""GitHub sandbox, issue 12 additions: comments, reviews, commits, alerts, protection, issue writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi.testclient import TestClient

from include.sandbox.app import create_app

TOKEN = "ghp_sandboxtoken000000000000000000000000"
AUTH = {"Authorization": f"Bearer {TOKEN}", "X-GitHub-Api-Version": "2022-11-28"}
API = "/github"
CONTROL = "/_sandbox/github"
LEDGER = "/repos/acme-labs/ledger"


@pytest.fixture()
def client() -> TestClient:
    return TestClient(create_app(systems=["github"]))


def get(client: TestClient, path: str, **kw: Any) -> Any:
    r = client.get(f"{API}{path}", headers=AUTH, **kw)
    assert r.status_code == 200, r.text
    return r.json()


def day0(client: TestClient) -> datetime:
    text = client.get(f"{CONTROL}/scenarios").json()["acme-labs/ledger"]["day0"]
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def t(client: TestClient, k: float, h: float = 0) -> datetime:
    return day0(client) - timedelta(days=k) + timedelta(hours=h)


def stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def by_title(client: TestClient) -> dict[str, dict[str, Any]]:
    items = get(client, f"{LEDGER}/issues", params={"state": "all", "per_page": 100})
    return {i["title"].split(":")[0]: i for i in items}


# -- the designed repository -------------------------------------------------------------------------
def test_ledger_issues_comments_and_reviews(client: TestClient) -> None:
    items = by_title(client)
    assert len(items) == 20
    assert sum("pull_request" in i for i in items.values()) == 10
    numbers = [i["number"] for i in sorted(items.values(), key=lambda i: i["created_at"])]
    assert numbers == list(range(1, 21))  # numbered in creation order
    i13 = items["I13"]
    assert (i13["comments"], i13["state"], i13["state_reason"], i13["labels"]) == (
        3,
        "closed",
        "completed",
        [{"name": "bug"}],
    )
    comments = get(client, f"{LEDGER}/issues/{i13['number']}/comments")
    assert [(c["user"]["login"], c["user"]["type"]) for c in comments] == [
        ("github-actions[bot]", "Bot"),
        ("yuri", "User"),
        ("bob", "User"),
    ]
    assert comments[2]["created_at"] == stamp(t(client, 2, 16))
    assert i13["updated_at"] == stamp(t(client, 2, 18))  # closed after the last comment
    p8 = items["P8"]
    assert p8["pull_request"]["merged_at"] == stamp(t(client, 2, 7))
    reviews = get(client, f"{LEDGER}/pulls/{p8['number']}/reviews")
    assert [(r["user"]["login"], r["state"], r["submitted_at"]) for r in reviews] == [
        ("github-actions[bot]", "COMMENTED", stamp(t(client, 2, 6.1))),
        ("bob", "APPROVED", stamp(t(client, 2, 6.75))),
    ]
    since = get(client, f"{LEDGER}/issues/{i13['number']}/comments", params={"since": stamp(t(client, 2, 11))})
    assert [c["user"]["login"] for c in since] == ["yuri", "bob"]
    r = client.get(f"{API}{LEDGER}/pulls/{i13['number']}/reviews", headers=AUTH)
    assert r.status_code == 404  # an issue is not a pull request


def test_issues_since_and_labels_filters(client: TestClient) -> None:
    since = stamp(t(client, 91))
    items = get(client, f"{LEDGER}/issues", params={"state": "all", "since": since, "per_page": 100})
    assert "I18" not in {i["title"].split(":")[0] for i in items}  # last updated 95 days before
    assert len(items) == 19
    bugs = get(client, f"{LEDGER}/issues", params={"state": "all", "labels": "BUG"})
    assert sorted(i["title"].split(":")[0] for i in bugs) == ["I13", "I19"]
    assert get(client, f"{LEDGER}/issues", params={"labels": "bug,dependencies"}) == []


def test_commits_window_is_inclusive_on_the_committer_date(client: TestClient) -> None:
    day = get(client, f"{LEDGER}/commits", params={"since": stamp(t(client, 2)), "until": stamp(t(client, 1))})
    assert [c["commit"]["author"]["name"] for c in day] == ["dave", "dave"]  # newest first, t(2, 14), t(2, 9.5)
    assert day[0]["commit"]["committer"]["date"] == stamp(t(client, 2, 14))
    exact = get(
        client, f"{LEDGER}/commits", params={"since": stamp(t(client, 2, 14)), "until": stamp(t(client, 2, 14))}
    )
    assert len(exact) == 1
    first = client.get(f"{API}{LEDGER}/commits", headers=AUTH, params={"per_page": 100})
    assert first.headers["link"].count('rel="next"') == 1
    second = client.get(first.links["next"]["url"], headers=AUTH).json()
    total = len(first.json()) + len(second)
    assert total == 30 + 40 + 12 + 17 + 8 + 3 + 2 + 1  # alice, bob, carol, dependabot, merges, dave, erin, contractor
    merges = [c for c in first.json() if len(c["parents"]) == 2]
    assert merges and all(c["commit"]["committer"]["name"] == "GitHub" for c in merges)
    empty = client.get(f"{API}/repos/acme/empty/commits", headers=AUTH)
    assert (empty.status_code, empty.json()["message"]) == (409, "Git Repository is empty.")
    bad = client.get(f"{API}{LEDGER}/commits", headers=AUTH, params={"since": "yesterday"})
    assert bad.status_code == 422


# -- alerts ------------------------------------------------------------------------------------------
def test_dependabot_alerts_states_severities_and_cursor_paging(client: TestClient) -> None:
    every = get(client, f"{LEDGER}/dependabot/alerts")
    assert sorted((a["security_advisory"]["severity"], a["state"]) for a in every) == [
        ("critical", "auto_dismissed"),
        ("critical", "fixed"),
        ("high", "open"),
        ("high", "open"),
        ("low", "open"),
        ("medium", "dismissed"),
    ]
    fixed = next(a for a in every if a["state"] == "fixed")
    assert fixed["fixed_at"] == stamp(t(client, 30, 8))
    opened = get(client, f"{LEDGER}/dependabot/alerts", params={"state": "open", "severity": "high,low"})
    assert len(opened) == 3
    r = client.get(f"{API}{LEDGER}/dependabot/alerts", headers=AUTH, params={"per_page": 4})
    following = dict(parse_qsl(urlsplit(r.links["next"]["url"]).query))
    assert len(r.json()) == 4 and set(following) == {"per_page", "after"}
    rest = client.get(r.links["next"]["url"], headers=AUTH)
    assert len(rest.json()) == 2 and "link" not in rest.headers
    assert {a["number"] for a in r.json() + rest.json()} == set(range(1, 7))
    assert client.get(f"{API}{LEDGER}/dependabot/alerts", headers=AUTH, params={"state": "gone"}).status_code == 422


def test_code_and_secret_scanning_alerts(client: TestClient) -> None:
    code = get(client, f"{LEDGER}/code-scanning/alerts")
    assert sorted((a["rule"]["security_severity_level"] or "-", a["state"]) for a in code) == [
        ("-", "open"),
        ("critical", "fixed"),
        ("high", "open"),
        ("medium", "dismissed"),
    ]
    assert len(get(client, f"{LEDGER}/code-scanning/alerts", params={"state": "closed"})) == 2
    assert len(get(client, f"{LEDGER}/code-scanning/alerts", params={"severity": "warning"})) == 2
    secrets = get(client, f"{LEDGER}/secret-scanning/alerts")
    assert sorted(a["state"] for a in secrets) == ["open", "resolved", "resolved"]
    resolved = [a for a in secrets if a["state"] == "resolved"]
    assert {a["resolution"] for a in resolved} == {"revoked"} and all(a["resolved_at"] for a in resolved)
    assert len(get(client, f"{LEDGER}/secret-scanning/alerts", params={"state": "open"})) == 1


@pytest.mark.parametrize(
    ("repo", "path", "status", "message"),
    [
        ("acme/web", "dependabot/alerts", 403, "Resource not accessible by personal access token"),
        ("acme/web", "secret-scanning/alerts", 403, "Resource not accessible by personal access token"),
        ("acme/api", "code-scanning/alerts", 404, "no analysis found"),
        ("acme/api", "secret-scanning/alerts", 404, "Secret scanning is disabled on this repository."),
        ("acme/infra", "dependabot/alerts", 403, "Dependabot alerts are disabled for this repository."),
    ],
)
def test_refused_alert_lists(client: TestClient, repo: str, path: str, status: int, message: str) -> None:
    r = client.get(f"{API}/repos/{repo}/{path}", headers=AUTH)
    assert (r.status_code, r.json()["message"]) == (status, message)
    assert "x-ratelimit-remaining" in r.headers


def test_alert_and_security_controls(client: TestClient) -> None:
    client.post(f"{CONTROL}/repos/acme/web/security", json={"area": "dependabot", "status": None})
    assert get(client, "/repos/acme/web/dependabot/alerts") == []
    made = client.post(
        f"{CONTROL}/repos/acme/web/alerts",
        json={"alerts": [{"kind": "dependabot", "name": "lodash", "severity": "critical", "age_s": 60}]},
    ).json()
    assert made == {"created": [{"kind": "dependabot", "number": 1}]}
    assert [a["security_advisory"]["severity"] for a in get(client, "/repos/acme/web/dependabot/alerts")] == [
        "critical"
    ]
    client.post(f"{CONTROL}/repos/acme/shop/security", json={"area": "code_scanning", "status": 404, "message": "x"})
    assert client.get(f"{API}/repos/acme/shop/code-scanning/alerts", headers=AUTH).status_code == 404
    assert client.post(f"{CONTROL}/repos/acme/shop/security", json={"area": "nope"}).status_code == 400


# -- protection --------------------------------------------------------------------------------------
def test_branch_protection_answers(client: TestClient) -> None:
    shop = get(client, "/repos/acme/shop/branches/main/protection")
    assert shop["required_pull_request_reviews"]["required_approving_review_count"] == 2
    assert shop["enforce_admins"]["enabled"] is True
    web = client.get(f"{API}/repos/acme/web/branches/main/protection", headers=AUTH)
    assert (web.status_code, web.json()["message"]) == (404, "Branch not protected")
    api = client.get(f"{API}/repos/acme/api/branches/main/protection", headers=AUTH)
    assert (api.status_code, api.json()["message"]) == (403, "Resource not accessible by personal access token")
    assert get(client, "/repos/acme/api/branches/main")["protected"] is True
    assert get(client, "/repos/acme/web/branches/main")["protected"] is False
    missing = client.get(f"{API}/repos/acme/shop/branches/nope/protection", headers=AUTH)
    assert (missing.status_code, missing.json()["message"]) == (404, "Branch not found")
    client.post(f"{CONTROL}/repos/acme/web/protection", json={"protected": True})
    assert get(client, "/repos/acme/web/branches/main/protection")["url"].endswith("/branches/main/protection")
    client.post(f"{CONTROL}/repos/acme/shop/protection", json={"protected": False})
    assert client.get(f"{API}/repos/acme/shop/branches/main/protection", headers=AUTH).status_code == 404


# -- writing issues ----------------------------------------------------------------------------------
def test_create_comment_close_and_reopen_an_issue(client: TestClient) -> None:
    before = get(client, "/repos/acme/shop")["open_issues_count"]
    r = client.post(
        f"{API}/repos/acme/shop/issues",
        headers=AUTH,
        json={"title": "Health: commits", "body": "text <!-- m -->", "labels": ["devops-automation", "critical"]},
    )
    assert r.status_code == 201, r.text
    issue = r.json()
    assert issue["user"]["login"] == "devops-automation[bot]" and issue["user"]["type"] == "Bot"
    assert [x["name"] for x in issue["labels"]] == ["devops-automation", "critical"]
    assert issue["body"] == "text <!-- m -->" and issue["state"] == "open"
    assert get(client, "/repos/acme/shop")["open_issues_count"] == before + 1
    n = issue["number"]
    c = client.post(f"{API}/repos/acme/shop/issues/{n}/comments", headers=AUTH, json={"body": "still bad"})
    assert c.status_code == 201 and c.json()["user"]["login"] == "devops-automation[bot]"
    closed = client.patch(f"{API}/repos/acme/shop/issues/{n}", headers=AUTH, json={"state": "closed"}).json()
    assert (closed["state"], closed["state_reason"], closed["comments"]) == ("closed", "completed", 1)
    again = client.patch(f"{API}/repos/acme/shop/issues/{n}", headers=AUTH, json={"state": "open"}).json()
    assert (again["state"], again["state_reason"], again["closed_at"]) == ("open", "reopened", None)
    found = get(client, "/repos/acme/shop/issues", params={"labels": "devops-automation"})
    assert [i["number"] for i in found] == [n]


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status", "message"),
    [
        ("post", "/repos/acme/shop/issues", {}, {"title": "x"}, 401, "Requires authentication"),
        ("post", "/repos/acme/legacy/issues", AUTH, {"title": "x"}, 403, "Repository was archived so is read-only."),
        ("post", "/repos/acme/shop/issues", AUTH, {"body": "x"}, 422, 'Invalid request.\n\n"title" wasn\'t supplied.'),
        ("post", "/repos/acme/shop/issues/99999/comments", AUTH, {"body": "x"}, 404, "Not Found"),
        ("patch", "/repos/acme/shop/issues/1", AUTH, {"state": "done"}, 422, "Validation Failed"),
    ],
)
def test_issue_write_errors(
    client: TestClient, method: str, path: str, headers: dict, body: dict, status: int, message: str
) -> None:
    r = getattr(client, method)(f"{API}{path}", headers=headers, json=body)
    assert (r.status_code, r.json()["message"]) == (status, message)
