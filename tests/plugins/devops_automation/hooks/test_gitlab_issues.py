"""GitLabHook's issue methods against the sandbox GitLab (real HTTP): find by label + marker, open,
comment (notes), close with ``state_event``; errors name the project; a refused POST is retried once."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest

from devops_automation.hooks.gitlab import GitLabAccessError, GitLabHook

PROJECT = "payments/checkout-api"
LABEL = "devops-automation"
MARKER = "<!-- devops-automation:rule=sonarqube.coverage project=checkout -->"


@pytest.fixture
def hook(sandbox_conns) -> GitLabHook:
    h = GitLabHook()
    h.waits = []
    h.sleep = h.waits.append
    return h


def test_issue_round_trip(hook, sandbox) -> None:
    assert hook.find_issues(PROJECT, LABEL, MARKER) == []
    created = hook.create_issue(PROJECT, "checkout: coverage is critical", f"below 50 %\n\n{MARKER}", [LABEL, "x"])
    iid = created["iid"]
    assert (created["state"], created["labels"]) == ("opened", [LABEL, "x"])
    hook.create_issue(PROJECT, "another rule", "<!-- devops-automation:rule=other project=checkout -->", [LABEL])
    hook.create_issue(PROJECT, "no label", MARKER)
    assert [i["iid"] for i in hook.find_issues(PROJECT, LABEL, MARKER)] == [iid]
    note = hook.add_issue_note(PROJECT, iid, "still below: 41 %")
    assert note["body"] == "still below: 41 %"
    closed = hook.close_issue(PROJECT, iid, "recovered: 72 %")
    assert (closed["state"], closed["user_notes_count"]) == ("closed", 2)
    assert hook.find_issues(PROJECT, LABEL, MARKER) == []
    assert [i["iid"] for i in hook.find_issues(PROJECT, LABEL, MARKER, state=None)] == [iid]
    assert [n["body"] for n in hook.issue_notes(PROJECT, iid)] == ["still below: 41 %", "recovered: 72 %"]
    assert [n["body"] for n in hook.issue_notes(PROJECT, iid, system=True)][-1] == "closed"
    assert hook.issue(PROJECT, iid)["closed_by"]["username"] == "sandbox-bot"
    writes = [r for r in sandbox.requests(system="gitlab") if r["method"] != "GET"]
    base = "/api/v4/projects/payments%2Fcheckout-api/issues"
    assert [(r["method"], r["path"], r["status"]) for r in writes] == [
        ("POST", base, 201),
        ("POST", base, 201),
        ("POST", base, 201),
        ("POST", f"{base}/{iid}/notes", 201),
        ("POST", f"{base}/{iid}/notes", 201),  # the closing comment, then the close
        ("PUT", f"{base}/{iid}", 200),
    ]
    assert json.loads(writes[0]["body"]) == {
        "title": "checkout: coverage is critical",
        "description": f"below 50 %\n\n{MARKER}",
        "labels": f"{LABEL},x",
    }
    assert json.loads(writes[-1]["body"]) == {"state_event": "close"}
    listing = sandbox.requests(system="gitlab", method="GET", path=f"{base}$")[0]
    assert dict(parse_qsl(listing["query"])) == {
        "labels": LABEL,
        "state": "opened",
        "order_by": "created_at",
        "sort": "asc",
        "per_page": "100",
        "page": "1",
    }


def test_issues_filters_reach_gitlab(hook, sandbox) -> None:
    found = hook.issues(PROJECT, labels=["bug"], search="refund", search_in="title", state=None)
    assert [i["title"] for i in found] == ["Refund rounding off by a cent"]
    query = dict(parse_qsl(sandbox.requests(system="gitlab", path="/issues$")[0]["query"]))
    assert (query["labels"], query["search"], query["in"], query["state"]) == ("bug", "refund", "title", "all")


def test_an_unknown_project_names_it(hook) -> None:
    with pytest.raises(GitLabAccessError, match="project 'payments/nope'") as err:
        hook.create_issue("payments/nope", "x", "y")
    assert err.value.status == 404
    with pytest.raises(GitLabAccessError):
        hook.find_issues("payments/nope", LABEL, MARKER)
    with pytest.raises(ValueError, match="label and a marker"):
        hook.find_issues(PROJECT, "", MARKER)


def test_a_refused_note_is_sent_again_once(hook, sandbox) -> None:
    sandbox.fault(system="gitlab", method="POST", path="/notes$", status=429, retry_after=1, times=1)
    hook.add_issue_note(PROJECT, 1, "once")
    assert hook.waits == [1.0]
    posts = sandbox.requests(system="gitlab", method="POST")
    assert [r["status"] for r in posts] == [429, 201]
    assert [n["body"] for n in hook.issue_notes(PROJECT, 1)] == ["I can reproduce it on main.", "once"]
