"""GitLab sandbox, issue 12 additions: issues (list with labels/search/state, create, update with
``state_event``) and their notes."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from include.sandbox.app import create_app

AUTH = {"PRIVATE-TOKEN": "glpat-sandbox-token"}
PROJECT = "/gitlab/api/v4/projects/payments%2Fcheckout-api"


@pytest.fixture()
def client() -> TestClient:
    return TestClient(create_app(systems=["gitlab"]))


def issues(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    r = client.get(f"{PROJECT}/issues", headers=AUTH, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_seeded_issues_and_filters(client: TestClient) -> None:
    every = issues(client)
    assert [(i["iid"], i["state"], i["labels"], i["user_notes_count"]) for i in every] == [
        (1, "opened", ["bug"], 1),
        (2, "closed", ["docs"], 0),
    ]
    assert every[1]["closed_by"]["username"] == "ana.lima"
    assert [i["iid"] for i in issues(client, state="opened")] == [1]
    assert [i["iid"] for i in issues(client, state="closed")] == [2]
    assert [i["iid"] for i in issues(client, labels="docs")] == [2]
    assert [i["iid"] for i in issues(client, labels="None")] == []
    assert [i["iid"] for i in issues(client, labels="Any", sort="asc")] == [2, 1]  # created 20 and 5 days ago
    # label names match exactly (GitLab compares the stored titles); the wildcards in any letter case
    assert issues(client, labels="Bug") == [] and issues(client, labels="bug,docs") == []
    assert [i["iid"] for i in issues(client, labels="any")] == [1, 2]
    assert issues(client, labels="none") == issues(client, labels="None,bug") == []
    assert [i["iid"] for i in issues(client, search="refund cent")] == [1]  # every word, in any order
    assert [i["iid"] for i in issues(client, search="refund", **{"in": "description"})] == [1]
    assert issues(client, search="ledger", **{"in": "description"}) == []
    assert [i["iid"] for i in issues(client, search="ledger", **{"in": "title"})] == [2]
    assert client.get(f"{PROJECT}/issues", headers=AUTH, params={"state": "all"}).status_code == 200
    one = client.get(f"{PROJECT}/issues/1", headers=AUTH).json()
    assert one["references"]["full"] == "payments/checkout-api#1" and one["web_url"].endswith("/-/issues/1")


def test_create_note_close_and_reopen(client: TestClient) -> None:
    r = client.post(
        f"{PROJECT}/issues",
        headers=AUTH,
        json={"title": "Coverage dropped", "description": "below 50 <!-- marker -->", "labels": "devops-automation,x"},
    )
    assert r.status_code == 201, r.text
    issue = r.json()
    assert (issue["iid"], issue["state"], issue["labels"]) == (3, "opened", ["devops-automation", "x"])
    longest = client.post(f"{PROJECT}/issues", headers=AUTH, json={"title": f"  {'t' * 255}  "}).json()
    assert longest["title"] == "t" * 255  # stripped, then at most 255 characters
    assert issue["author"]["username"] == "sandbox-bot"
    note = client.post(f"{PROJECT}/issues/3/notes", headers=AUTH, data={"body": "still below"})  # a form works too
    assert note.status_code == 201 and note.json()["body"] == "still below" and note.json()["noteable_iid"] == 3
    closed = client.put(f"{PROJECT}/issues/3", headers=AUTH, json={"state_event": "close"}).json()
    assert (closed["state"], closed["closed_by"]["username"], closed["user_notes_count"]) == (
        "closed",
        "sandbox-bot",
        1,
    )
    notes = client.get(f"{PROJECT}/issues/3/notes", headers=AUTH, params={"sort": "asc"}).json()
    assert [(n["body"], n["system"]) for n in notes] == [("still below", False), ("closed", True)]
    assert [n["body"] for n in client.get(f"{PROJECT}/issues/3/notes", headers=AUTH).json()] == [
        "closed",
        "still below",
    ]  # newest first by default
    reopened = client.put(
        f"{PROJECT}/issues/3", headers=AUTH, json={"state_event": "reopen", "add_labels": "y", "remove_labels": "x"}
    ).json()
    assert (reopened["state"], reopened["closed_at"], reopened["labels"]) == (
        "opened",
        None,
        ["devops-automation", "y"],
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "answer"),
    [
        ("post", "/issues", {"description": "no title"}, 400, {"error": "title is missing"}),
        ("post", "/issues", {"title": "  "}, 400, {"message": {"title": ["can't be blank"]}}),
        (
            "post",
            "/issues",
            {"title": "t" * 256},
            400,
            {"message": {"title": ["is too long (maximum is 255 characters)"]}},
        ),
        (
            "post",
            "/issues",
            {"title": "big", "description": "é" * 524_289},  # 1 MiB + 2 bytes in UTF-8
            400,
            {"message": {"description": ["is too long (maximum is 1048576 characters)"]}},
        ),
        ("post", "/issues/1/notes", {}, 400, {"error": "body is missing"}),
        (
            "post",
            "/issues/1/notes",
            {"body": " "},
            400,
            {"message": '400 Bad request - Note {:note=>["can\'t be blank"]}'},
        ),
        (
            "post",
            "/issues/1/notes",
            {"body": "x" * 1_000_001},
            400,
            {"message": '400 Bad request - Note {:note=>["is too long (maximum is 1000000 characters)"]}'},
        ),
        ("put", "/issues/1", {"state_event": "archive"}, 400, {"error": "state_event does not have a valid value"}),
        ("get", "/issues/99", None, 404, {"message": "404 Not found"}),
    ],
)
def test_errors_in_gitlab_format(
    client: TestClient, method: str, path: str, body: Any, status: int, answer: Any
) -> None:
    kw = {"json": body} if body is not None else {}
    r = getattr(client, method)(f"{PROJECT}{path}", headers=AUTH, **kw)
    assert (r.status_code, r.json()) == (status, answer)


def test_unknown_project_and_bad_token(client: TestClient) -> None:
    r = client.get("/gitlab/api/v4/projects/nope%2Fmissing/issues", headers=AUTH)
    assert (r.status_code, r.json()) == (404, {"message": "404 Project Not Found"})
    r = client.post(f"{PROJECT}/issues", headers={"PRIVATE-TOKEN": "wrong"}, json={"title": "x"})
    assert r.status_code == 401
    assert len(issues(client)) == 2  # nothing was created


def test_refused_writes_create_nothing(client: TestClient) -> None:
    for body in ({"title": " "}, {"title": "t" * 256}, {"description": "no title"}):
        assert client.post(f"{PROJECT}/issues", headers=AUTH, json=body).status_code == 400
    assert client.post(f"{PROJECT}/issues/1/notes", headers=AUTH, json={"body": "\n"}).status_code == 400
    assert [(i["iid"], i["user_notes_count"]) for i in issues(client)] == [(1, 1), (2, 0)]
