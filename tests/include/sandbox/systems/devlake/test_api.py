"""The DevLake sandbox against ``../shared/api/devlake.md``: shapes, quirks and pipeline lifecycle."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from include.sandbox.app import create_app
from include.sandbox.systems.devlake.state import DUPLICATE_NAME

API = "/devlake"
CTL = "/_sandbox/devlake"


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app(systems=["devlake"]))


def advance(client: TestClient, seconds: float) -> None:
    client.post("/_sandbox/clock/advance", json={"seconds": seconds}).raise_for_status()


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def error(response: Any, status: int) -> str:
    """The message of a DevLake error envelope answered with ``status``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["code"] == 0 and "causes" in body and "data" in body
    return body["message"]


def walk_remote(client: TestClient, plugin: str, connection_id: int) -> tuple[list[dict[str, Any]], int]:
    """All scope entries (breadth-first over groups, all pages) and the number of calls made."""
    queue: list[str | None] = [None]
    scopes, calls = [], 0
    while queue:
        group, token = queue.pop(0), ""
        while True:
            params = {k: v for k, v in {"groupId": group, "pageToken": token}.items() if v}
            page = ok(client.get(f"{API}/plugins/{plugin}/connections/{connection_id}/remote-scopes", params=params))
            calls += 1
            queue += [c["id"] for c in page["children"] if c["type"] == "group"]
            scopes += [c for c in page["children"] if c["type"] == "scope"]
            token = page["nextPageToken"]
            if not token:
                break
    return scopes, calls


def put_github_scopes(client: TestClient, count: int = 2, config_id: int = 0) -> list[str]:
    """Store the first ``count`` repos of github connection 1; their scope ids."""
    repos, _ = walk_remote(client, "github", 1)
    data = [r["data"] | ({"scopeConfigId": config_id} if config_id else {}) for r in repos[:count]]
    saved = ok(client.put(f"{API}/plugins/github/connections/1/scopes", json={"data": data}))
    return [str(s["githubId"]) for s in saved]


def make_project(client: TestClient, name: str = "payments", repos: int = 2, **blueprint: Any) -> dict[str, Any]:
    """A project whose blueprint holds ``repos`` github repos, manual; the patched blueprint."""
    ok(
        client.post(
            f"{API}/projects",
            json={"name": name, "metrics": [{"pluginName": "dora", "pluginOption": {}, "enable": True}]},
        ),
        201,
    )
    bp_id = ok(client.get(f"{API}/projects/{quote(name, safe='')}"))["blueprint"]["id"]
    connections = [
        {
            "pluginName": "github",
            "connectionId": 1,
            "scopes": [{"scopeId": s} for s in put_github_scopes(client, repos)],
        }
    ]
    body = {"connections": connections, "isManual": True, "enable": True} | blueprint
    return ok(client.patch(f"{API}/blueprints/{bp_id}", json=body))


def trigger(client: TestClient, blueprint_id: int, status: int = 200, **body: Any) -> dict[str, Any]:
    return ok(client.post(f"{API}/blueprints/{blueprint_id}/trigger", json=body), status)


def pipeline(client: TestClient, pipeline_id: int) -> dict[str, Any]:
    return ok(client.get(f"{API}/pipelines/{pipeline_id}"))


# ---- meta, plugins, unknown routes ----------------------------------------------------------------


def test_meta_routes(client: TestClient) -> None:
    ping = client.get(f"{API}/ping")
    assert ping.status_code == 200 and ping.content == b""
    assert ok(client.get(f"{API}/ready"))["success"] is True
    assert ok(client.get(f"{API}/health"))["success"] is True
    assert ok(client.get(f"{API}/version"))["version"].startswith("v1.0")


def test_plugins_list_metrics(client: TestClient) -> None:
    plugins = {p["plugin"]: p["metric"] for p in ok(client.get(f"{API}/plugins"))}
    assert {"github", "gitlab", "jira", "bitbucket", "azuredevops_go", "webhook", "gitextractor", "refdiff"} <= set(
        plugins
    )
    assert {name for name, metric in plugins.items() if metric["isProjectMetric"]} == {"dora", "linker", "issue_trace"}


@pytest.mark.parametrize(
    "path",
    [
        "/plugins/dora/connections",
        "/plugins/refdiff/connections/1",
        "/nothing/here",
        "/plugins/webhook/connections/1/scopes",
    ],
)
def test_unknown_routes_are_gin_404(client: TestClient, path: str) -> None:
    response = client.get(API + path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/plain") and response.text == "404 page not found"


def test_error_response_is_the_envelope_with_retry_after(client: TestClient) -> None:
    client.post(
        "/_sandbox/faults",
        json={"system": "devlake", "path": "^/projects$", "status": 429, "message": "slow down", "retry_after": 3},
    )
    response = client.get(f"{API}/projects")
    assert error(response, 429) == "slow down" and response.headers["retry-after"] == "3"


# ---- connections ----------------------------------------------------------------------------------


def test_seeded_connections_are_a_fresh_devlake(client: TestClient) -> None:
    counts = ok(client.get(f"{CTL}/counts"))
    assert counts["connections"] == {"github": 2, "gitlab": 1, "bitbucket": 1, "jira": 1, "azuredevops_go": 0}
    assert counts["projects"] == counts["blueprints"] == counts["scopes"] == counts["pipelinesTotal"] == 0
    github = ok(client.get(f"{API}/plugins/github/connections", params={"page": 2}))  # query ignored: a bare array
    assert [c["name"] for c in github] == ["github-acme", "github-oss"]
    assert all(c["token"] == "********" for c in github)


def test_connection_crud_and_duplicate_name_quirk(client: TestClient) -> None:
    body = {"name": "gl-extra", "endpoint": "https://gitlab.example.test/api/v4/", "token": "secret-token"}
    created = ok(client.post(f"{API}/plugins/gitlab/connections", json=body), 201)
    assert created["id"] == 2 and created["token"] == "********" and "secret-token" not in json.dumps(created)
    assert error(client.post(f"{API}/plugins/gitlab/connections", json=body), 500) == DUPLICATE_NAME
    assert error(client.post(f"{API}/plugins/gitlab/connections", json=body | {"name": "x" * 101}), 400)
    assert error(client.post(f"{API}/plugins/gitlab/connections", json=[body]), 400)  # plugin bodies must be objects
    patched = ok(client.patch(f"{API}/plugins/gitlab/connections/2", json={"rateLimitPerHour": 100}))
    assert patched["rateLimitPerHour"] == 100 and patched["name"] == "gl-extra"
    assert (
        error(client.patch(f"{API}/plugins/gitlab/connections/2", json={"name": "gitlab-main"}), 500) == DUPLICATE_NAME
    )
    assert ok(client.delete(f"{API}/plugins/gitlab/connections/2"))["id"] == 2
    error(client.get(f"{API}/plugins/gitlab/connections/2"), 404)
    assert (
        ok(client.post(f"{API}/plugins/github/connections", json={"name": "gh-new", "token": "t"}), 201)[
            "enableGraphql"
        ]
        is True
    )


def test_connection_delete_refused_while_scopes_or_blueprints_use_it(client: TestClient) -> None:
    bp = make_project(client)
    response = client.delete(f"{API}/plugins/github/connections/1")
    error(response, 409)
    assert response.json()["data"] == {"blueprints": ["payments-Blueprint"], "projects": ["payments"]}
    ok(client.patch(f"{API}/blueprints/{bp['id']}", json={"connections": []}))
    assert "data scope" in error(client.delete(f"{API}/plugins/github/connections/1"), 409)


def test_webhook_connections(client: TestClient) -> None:
    created = ok(client.post(f"{API}/plugins/webhook/connections", json={"name": "deploys"}))  # 200, not 201
    key = created["apiKey"]
    assert re.fullmatch(r"[0-9a-f]{64}", key["apiKey"]) and key["name"] == f"webhook-{created['id']}"
    assert key["allowedPath"] == f"/plugins/webhook/connections/{created['id']}/.*" and key["type"] == "plugin:webhook"
    assert created["postPipelineDeployTaskEndpoint"] == f"/rest/plugins/webhook/connections/{created['id']}/deployments"
    listed = ok(client.get(f"{API}/plugins/webhook/connections"))
    assert [w["name"] for w in listed] == ["deploys"] and "apiKey" not in listed[0]["apiKey"]
    assert "apiKey" not in ok(client.get(f"{API}/plugins/webhook/connections/{created['id']}"))["apiKey"]
    assert ok(client.get(f"{API}/plugins/webhook/connections/by-name/deploys"))["id"] == created["id"]
    assert (
        error(client.post(f"{API}/plugins/webhook/connections", json={"name": "deploys"}), 400)
        == "A webhook with name deploys already exists."
    )
    assert (
        ok(client.patch(f"{API}/plugins/webhook/connections/by-name/deploys", json={"name": "prod"}))["name"] == "prod"
    )
    ok(client.delete(f"{API}/plugins/webhook/connections/by-name/prod"))
    assert ok(client.get(f"{CTL}/counts"))["webhookConnections"] == 0
    assert ok(client.get(f"{CTL}/counts"))["apiKeys"] == 0


# ---- remote scopes --------------------------------------------------------------------------------


def test_github_remote_scopes_page_with_tokens(client: TestClient) -> None:
    ok(client.post(f"{CTL}/settings", json={"remotePageSize": 4}))
    top = ok(client.get(f"{API}/plugins/github/connections/1/remote-scopes"))
    assert [g["id"] for g in top["children"]] == ["sandbox-bot", "acme", "acme-labs"] and top["nextPageToken"] == ""
    first = ok(client.get(f"{API}/plugins/github/connections/1/remote-scopes", params={"groupId": "acme"}))
    token = first["nextPageToken"]
    assert len(first["children"]) == 4 and {"+", "/", "="} <= set(token)
    assert json.loads(base64.b64decode(token))["page"] == 2
    scope = first["children"][0]
    assert scope["type"] == "scope" and scope["parentId"] == "acme" and scope["data"]["githubId"] == int(scope["id"])
    assert scope["data"]["connectionId"] == 0 and scope["fullName"] == f"acme/{scope['name']}"
    scopes, calls = walk_remote(client, "github", 1)
    assert len(scopes) == 18 and len({s["id"] for s in scopes}) == 18 and calls > 4


def test_page_token_errors(client: TestClient) -> None:
    ok(client.post(f"{CTL}/settings", json={"remotePageSize": 2}))
    url = f"{API}/plugins/github/connections/1/remote-scopes"
    token = ok(client.get(url, params={"groupId": "acme"}))["nextPageToken"]
    assert ok(client.get(f"{url}?groupId=acme&pageToken={quote(token, safe='')}"))["children"]
    error(client.get(f"{url}?groupId=acme&pageToken={token}"), 400)  # "+" unencoded arrives as a space
    error(client.get(url, params={"pageToken": "not base64!"}), 400)
    error(client.get(url, params={"pageToken": base64.b64encode(b"not json").decode()}), 500)


def test_gitlab_remote_tree_nests_subgroups_before_projects(client: TestClient) -> None:
    url = f"{API}/plugins/gitlab/connections/1/remote-scopes"
    top = ok(client.get(url))["children"]
    assert top[0]["id"] == "user:4242" and all(c["type"] == "group" for c in top)
    platform = ok(client.get(url, params={"groupId": "101"}))["children"]
    assert [c["type"] for c in platform] == ["group", "group", "scope", "scope"]  # one page mixes both
    scopes, _ = walk_remote(client, "gitlab", 1)
    paths = {s["data"]["pathWithNamespace"] for s in scopes}
    assert (
        len(scopes) == 21 and "acme/platform/backend/services/gateway-zh" in paths and "sandbox-bot/dotfiles" in paths
    )
    assert any(len(s["name"]) > 100 for s in scopes) and any(s["name"] == "服务网关" for s in scopes)
    ok(client.post(f"{CTL}/settings", json={"remotePageSize": 1}))
    first = ok(client.get(url, params={"groupId": "101"}))
    assert [c["type"] for c in first["children"]] == ["group"]
    assert json.loads(base64.b64decode(first["nextPageToken"]))["step"] == "group"
    assert len(walk_remote(client, "gitlab", 1)[0]) == 21


def test_jira_bitbucket_and_azure_listing_rules(client: TestClient) -> None:
    ok(client.post(f"{CTL}/settings", json={"remotePageSize": 3}))
    boards, calls = walk_remote(client, "jira", 1)
    assert len(boards) == 8 and calls == 3 and all(b["parentId"] is None for b in boards)
    assert "Équipe Données" in {b["name"] for b in boards}
    workspaces = ok(client.get(f"{API}/plugins/bitbucket/connections/1/remote-scopes"))
    assert [w["id"] for w in workspaces["children"]] == ["acme-ws", "ops-ws"]
    for i in range(120):
        ok(client.post(f"{CTL}/connections/bitbucket/1/remote-repos", json={"name": f"extra {i}", "group": "ops-ws"}))
    repos = ok(client.get(f"{API}/plugins/bitbucket/connections/1/remote-scopes", params={"groupId": "ops-ws"}))
    assert len(repos["children"]) == 100 and repos["nextPageToken"] == ""  # capped, no token
    assert repos["children"][0]["data"]["bitbucketId"] == "ops-ws/runbooks"
    ado = ok(
        client.post(
            f"{API}/plugins/azuredevops_go/connections", json={"name": "ado", "organization": "org", "token": "t"}
        ),
        201,
    )
    ok(
        client.post(
            f"{CTL}/connections/azuredevops_go/{ado['id']}/remote-repos",
            json={"name": "api", "group": "sandbox-org/Shop"},
        )
    )
    projects = ok(client.get(f"{API}/plugins/azuredevops_go/connections/{ado['id']}/remote-scopes"))["children"]
    assert [p["id"] for p in projects] == ["sandbox-org/Shop"]
    repo = ok(
        client.get(
            f"{API}/plugins/azuredevops_go/connections/{ado['id']}/remote-scopes",
            params={"groupId": "sandbox-org/Shop"},
        )
    )
    assert repo["children"][0]["data"]["type"] == "TfsGit" and repo["children"][0]["data"]["ProjectId"] == "Shop"


def test_remote_failure_control_and_unknown_connection(client: TestClient) -> None:
    ok(client.post(f"{CTL}/connections/github/2/remote-failure", json={"status": 502, "message": "GitHub is down"}))
    assert error(client.get(f"{API}/plugins/github/connections/2/remote-scopes"), 502) == "GitHub is down"
    error(client.get(f"{API}/plugins/github/connections/2/search-remote-scopes", params={"search": "x"}), 502)
    ok(client.post(f"{CTL}/connections/github/2/remote-failure", json={"status": None}))
    ok(client.get(f"{API}/plugins/github/connections/2/remote-scopes"))
    error(client.get(f"{API}/plugins/github/connections/9/remote-scopes"), 404)


def test_search_remote_scopes(client: TestClient) -> None:
    url = f"{API}/plugins/github/connections/1/search-remote-scopes"
    error(client.get(url), 400)
    found = ok(client.get(url, params={"search": "org:acme", "pageSize": 5}))
    assert found["page"] == 1 and found["pageSize"] == 5 and "count" not in found and "nextPageToken" not in found
    assert len(found["children"]) == 5 and all(
        c["parentId"] is None and c["type"] == "scope" for c in found["children"]
    )
    rest = ok(client.get(url, params={"search": "org:acme", "pageSize": 5, "page": 2}))["children"]
    assert len(rest) == 4  # 9 acme repos: 5 + 4, then fewer than pageSize ends the walk
    assert ok(client.get(f"{API}/plugins/bitbucket/connections/1/search-remote-scopes", params={"search": "ops-ws/"}))[
        "children"
    ]


# ---- scopes and scope configs ---------------------------------------------------------------------


def test_put_scopes_upserts_and_lists_with_paging(client: TestClient) -> None:
    config = ok(
        client.post(
            f"{API}/plugins/github/connections/1/scope-configs", json={"name": "dora", "deploymentPattern": "(deploy)"}
        ),
        201,
    )
    ids = put_github_scopes(client, 10, config_id=config["id"])
    url = f"{API}/plugins/github/connections/1/scopes"
    page = ok(client.get(url, params={"page": 2, "pageSize": 4}))
    assert page["count"] == 10 and len(page["scopes"]) == 4
    item = page["scopes"][0]
    assert item["scope"]["scopeConfigId"] == config["id"] and item["scopeConfig"]["deploymentPattern"] == "(deploy)"
    assert item["scope"]["connectionId"] == 1 and "blueprints" not in item
    error(client.get(url, params={"pageSize": 1001}), 400)
    assert (
        ok(client.get(url, params={"searchTerm": "ACME/"}))["count"] == 5
    )  # LIKE on fullName: 5 sandbox-bot, 5 acme repos
    # a re-PUT overwrites every column: without scopeConfigId the key disappears
    data = [ok(client.get(f"{url}/{ids[0]}"))["scope"] | {"scopeConfigId": None, "description": "changed"}]
    ok(client.put(url, json={"data": data}))
    again = ok(client.get(f"{url}/{ids[0]}"))
    assert (
        "scopeConfigId" not in again["scope"]
        and "scopeConfig" not in again
        and again["scope"]["description"] == "changed"
    )
    assert ok(client.get(url))["count"] == 10


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"data": {"githubId": 1}}, "invalid data"),
        ({"data": [1]}, "invalid data row"),
        ({"data": [{"name": "no id"}]}, "failed to save item 0"),
    ],
)
def test_put_scopes_validation(client: TestClient, body: dict[str, Any], message: str) -> None:
    assert message in error(client.put(f"{API}/plugins/github/connections/1/scopes", json=body), 400)


def test_scope_decoding_is_case_insensitive_and_patch_keeps_missing_keys(client: TestClient) -> None:
    url = f"{API}/plugins/github/connections/2/scopes"
    saved = ok(
        client.put(
            url,
            json={"data": [{"GithubId": "42", "name": "r", "fullName": "o/r", "htmlurl": "https://x/o/r", "junk": 1}]},
        )
    )
    assert saved[0]["githubId"] == 42 and saved[0]["HTMLUrl"] == "https://x/o/r" and "junk" not in saved[0]
    patched = ok(client.patch(f"{url}/42", json={"scopeConfigId": 7}))
    assert patched["scopeConfigId"] == 7 and patched["fullName"] == "o/r"
    assert "scopeConfigId" not in ok(client.patch(f"{url}/42", json={"scopeConfigId": None}))


def test_bitbucket_scope_ids_contain_a_slash(client: TestClient) -> None:
    repos, _ = walk_remote(client, "bitbucket", 1)
    ok(client.put(f"{API}/plugins/bitbucket/connections/1/scopes", json={"data": [repos[0]["data"]]}))
    url = f"{API}/plugins/bitbucket/connections/1/scopes/acme-ws/donnees-pipeline"
    assert ok(client.get(url))["scope"]["name"] == "Données Pipeline"
    assert ok(client.get(f"{API}/plugins/bitbucket/connections/1/scopes/{quote('acme-ws/donnees-pipeline', safe='')}"))[
        "scope"
    ]
    assert ok(client.delete(url, params={"delete_data_only": "true"}))["bitbucketId"] == "acme-ws/donnees-pipeline"
    ok(client.get(url))
    ok(client.delete(url))
    error(client.get(url), 404)


def test_scope_delete_refused_while_a_blueprint_uses_it(client: TestClient) -> None:
    bp = make_project(client, repos=1)
    scope_id = bp["connections"][0]["scopes"][0]["scopeId"]
    url = f"{API}/plugins/github/connections/1/scopes/{scope_id}"
    response = client.delete(url)
    error(response, 409)
    assert response.json()["data"]["projects"] == ["payments"]
    listed = ok(client.get(url, params={"blueprints": "true"}))["blueprints"]
    assert [b["id"] for b in listed] == [bp["id"]] and listed[0]["plan"] is None


def test_scope_configs(client: TestClient) -> None:
    url = f"{API}/plugins/github/connections/1/scope-configs"
    first = ok(client.post(url, json={"name": "a", "entities": ["CICD"], "envNamePattern": "(?i)prod"}), 201)
    second = ok(client.post(url, json={"name": "b"}), 201)
    assert first["connectionId"] == 1 and first["envNamePattern"] == "(?i)prod" and "transformation" not in first
    assert [c["id"] for c in ok(client.get(url))] == [second["id"], first["id"]]  # newest first
    other = f"{API}/plugins/github/connections/2/scope-configs"
    assert error(client.post(other, json={"name": "a"}), 500) == DUPLICATE_NAME  # unique across the plugin's table
    error(client.post(other, json={"entities": []}), 400)
    assert ok(client.get(f"{other}/{first['id']}"))["name"] == "a"  # looked up by id only
    assert ok(client.patch(f"{url}/{first['id']}", json={"deploymentPattern": "deploy"}))["entities"] == ["CICD"]
    put_github_scopes(client, 1, config_id=first["id"])
    response = client.delete(f"{url}/{first['id']}")
    assert "delete all data scope" in error(response, 409) and len(response.json()["data"]) == 1
    ok(client.delete(f"{url}/{second['id']}"))
    error(client.get(f"{url}/{second['id']}"), 404)


# ---- projects -------------------------------------------------------------------------------------


def test_create_project_makes_the_auto_blueprint(client: TestClient) -> None:
    project = ok(client.post(f"{API}/projects", json={"name": "shop", "description": "d"}), 201)
    assert project["metrics"] is None and "lastPipeline" not in project
    bp = project["blueprint"]
    assert bp["name"] == "shop-Blueprint" and bp["projectName"] == "shop" and bp["mode"] == "NORMAL"
    assert bp["enable"] is True and bp["isManual"] is False and bp["cronConfig"] == "0 0 * * *"
    assert bp["connections"] == [] and bp["skipOnFail"] is False and bp["plan"] == []
    now = datetime.fromtimestamp(ok(client.get("/_sandbox/clock"))["now"], UTC)
    after = datetime.fromisoformat(bp["timeAfter"].replace("Z", "+00:00"))
    assert after.time().isoformat() == "00:00:00" and (now.year * 12 + now.month) - (after.year * 12 + after.month) == 6
    assert (
        error(client.post(f"{API}/projects", json={"name": "shop"}), 400) == "A project with name [shop] already exists"
    )
    error(client.post(f"{API}/projects", json={"name": "p" * 101}), 400)
    error(client.post(f"{API}/projects", content=json.dumps({"name": "form"})), 400)  # no JSON content type: empty
    assert ok(client.get(f"{API}/projects/shop/check")) == {"exist": True}
    assert ok(client.get(f"{API}/projects/nope/check")) == {"exist": False}
    error(client.get(f"{API}/projects/nope"), 404)


def test_blueprint_in_project_body_is_inserted_as_is(client: TestClient) -> None:
    """#7650: the supplied blueprint loses its connections and gets no plan."""
    bp = {
        "name": "mine",
        "projectName": "p7650",
        "mode": "NORMAL",
        "enable": True,
        "cronConfig": "0 0 * * *",
        "connections": [{"pluginName": "github", "connectionId": 1, "scopes": [{"scopeId": "700001"}]}],
    }
    project = ok(client.post(f"{API}/projects", json={"name": "p7650", "blueprint": bp}), 201)
    assert project["blueprint"]["name"] == "mine" and project["blueprint"]["connections"] == []
    orphan = ok(client.post(f"{API}/projects", json={"name": "orphan", "blueprint": bp | {"projectName": ""}}), 201)
    assert orphan["blueprint"] is None and ok(client.get(f"{CTL}/counts"))["blueprints"] == 2


def test_project_names_with_slashes_and_unicode_route_on_the_raw_path(client: TestClient) -> None:
    for name in ("team/a b", "Données 服务"):
        ok(client.post(f"{API}/projects", json={"name": name}), 201)
        encoded = quote(name, safe="")
        assert ok(client.get(f"{API}/projects/{encoded}"))["name"] == name
        assert ok(client.get(f"{API}/projects/{encoded}/check")) == {"exist": True}
    assert client.get(f"{API}/projects/team/a b").status_code == 404
    assert ok(client.get(f"{CTL}/project", params={"name": "team/a b"}))["project"]["name"] == "team/a b"


def test_list_projects_keyword_paging_and_last_pipeline(client: TestClient) -> None:
    for name in ("alpha", "beta", "Alphabet"):
        ok(client.post(f"{API}/projects", json={"name": name}), 201)
    listed = ok(client.get(f"{API}/projects", params={"keyword": "ALPHA"}))
    assert listed["count"] == 2 and [p["name"] for p in listed["projects"]] == ["Alphabet", "alpha"]  # newest first
    assert len(ok(client.get(f"{API}/projects", params={"pageSize": 2, "page": 2}))["projects"]) == 1
    bp = make_project(client, "delta")
    run = trigger(client, bp["id"])
    first = ok(client.get(f"{API}/projects"))["projects"][0]
    assert first["name"] == "delta" and first["lastPipeline"]["id"] == run["id"]
    assert "lastPipeline" not in ok(client.get(f"{API}/projects"))["projects"][1]
    bad = client.get(f"{API}/projects", params={"page": "x"})
    assert bad.status_code == 400 and bad.content == b""  # list errors have an empty body


def test_patch_project_answers_201_and_renames(client: TestClient) -> None:
    ok(client.post(f"{API}/projects", json={"name": "old", "description": "keep?"}), 201)
    renamed = ok(
        client.patch(f"{API}/projects/old", json={"name": "new", "metrics": [{"pluginName": "dora", "enable": True}]}),
        201,
    )
    assert renamed["name"] == "new" and renamed["description"] == "" and renamed["blueprint"]["projectName"] == "new"
    assert renamed["metrics"] == [{"pluginName": "dora", "pluginOption": None, "enable": True}]
    error(client.get(f"{API}/projects/old"), 404)


def test_delete_project_refused_with_unfinished_pipelines(client: TestClient) -> None:
    bp = make_project(client)
    trigger(client, bp["id"])
    assert "unfinished pipelines" in error(client.delete(f"{API}/projects/payments"), 500)
    advance(client, 3600)
    assert ok(client.delete(f"{API}/projects/payments"))["success"] is True
    counts = ok(client.get(f"{CTL}/counts"))
    assert counts["projects"] == counts["blueprints"] == 0 and counts["scopes"] == 2 and counts["pipelinesTotal"] == 1


# ---- blueprints -----------------------------------------------------------------------------------


def test_patch_blueprint_replaces_connections_and_regenerates_the_plan(client: TestClient) -> None:
    bp = make_project(client, repos=3)
    assert [len(c["scopes"]) for c in bp["connections"]] == [3]
    plugins = [[task["plugin"] for task in stage] for stage in bp["plan"]]
    assert plugins == [["org"], ["github"] * 3, ["gitextractor"] * 3, ["dora"]]
    one = bp["connections"][0] | {"scopes": bp["connections"][0]["scopes"][:1]}
    patched = ok(client.patch(f"{API}/blueprints/{bp['id']}", json={"connections": [one]}))
    assert patched["connections"] == [one] and len(patched["plan"][1]) == 1
    hook = ok(client.post(f"{API}/plugins/webhook/connections", json={"name": "hook"}))
    patched = ok(
        client.patch(
            f"{API}/blueprints/{bp['id']}",
            json={"connections": [{"pluginName": "webhook", "connectionId": hook["id"]}]},
        )
    )
    assert patched["connections"] == [{"pluginName": "webhook", "connectionId": hook["id"], "scopes": []}]
    assert [[t["plugin"] for t in stage] for stage in patched["plan"]] == [["org"], ["dora"]]


@pytest.mark.parametrize(
    ("patch", "status", "message"),
    [
        ({"mode": "ADVANCED"}, 500, "mode is not updatable"),
        (
            {"connections": [{"pluginName": "github", "connectionId": 1, "scopes": []}]},
            400,
            "connections[0].scopes is empty",
        ),
        ({"connections": [{"pluginName": "github", "connectionId": 1, "scopes": [{"scopeId": "999"}]}]}, 400, "999"),
        (
            {"connections": [{"pluginName": "github", "connectionId": 1, "scopes": [{"scopeId": 700001}]}]},
            400,
            "string",
        ),
        (
            {"connections": [{"pluginName": "github", "connectionId": 7, "scopes": [{"scopeId": "1"}]}]},
            400,
            "connection 7",
        ),
        ({"cronConfig": "every day", "isManual": False}, 400, "invalid cronConfig"),
        ({"projectName": "nowhere"}, 400, "invalid projectName"),
        ({"timeAfter": "yesterday"}, 400, "timeAfter"),
    ],
)
def test_blueprint_patch_validation(client: TestClient, patch: dict[str, Any], status: int, message: str) -> None:
    bp = make_project(client)
    assert message in error(client.patch(f"{API}/blueprints/{bp['id']}", json=patch), status)
    assert ok(client.get(f"{API}/blueprints/{bp['id']}")) == bp  # nothing changed


def test_blueprint_patch_details(client: TestClient) -> None:
    bp = make_project(client)
    patched = ok(
        client.patch(
            f"{API}/blueprints/{bp['id']}",
            json={"timeAfter": "2025-01-02", "skipCollectors": True, "fullSync": True, "unknown": 1},
        )
    )
    assert (
        patched["timeAfter"] == "2025-01-02T00:00:00Z"
        and patched["skipCollectors"] is False
        and patched["fullSync"] is False
    )
    assert (
        ok(client.patch(f"{API}/blueprints/{bp['id']}", json={"cronConfig": "MANUAL", "isManual": False}))["isManual"]
        is True
    )
    assert ok(client.patch(f"{API}/blueprints/{bp['id']}", json={"timeAfter": None}))["timeAfter"] is None
    ok(client.post(f"{API}/projects", json={"name": "other"}), 201)
    assert "one blueprint" in error(client.patch(f"{API}/blueprints/{bp['id']}", json={"projectName": "other"}), 400)


def test_create_list_and_delete_blueprints(client: TestClient) -> None:
    base = {
        "name": "adhoc",
        "mode": "ADVANCED",
        "enable": True,
        "isManual": True,
        "plan": [[{"plugin": "dora", "options": {}}]],
    }
    created = ok(
        client.post(f"{API}/blueprints", json=base | {"timeAfter": "2025-01-01T00:00:00+02:00", "labels": ["nightly"]}),
        201,
    )
    assert created["timeAfter"] == "2024-12-31T22:00:00Z" and created["plan"] == base["plan"]
    error(client.post(f"{API}/blueprints", json=base | {"timeAfter": "2025-01-01"}), 400)  # POST: strict RFC3339
    error(client.post(f"{API}/blueprints", json=base | {"plan": []}), 400)
    error(client.post(f"{API}/blueprints", json=base | {"mode": ""}), 400)
    ok(
        client.post(
            f"{API}/blueprints",
            json=base | {"name": "daily", "isManual": False, "cronConfig": "0 0 * * *", "enable": False},
        ),
        201,
    )
    ok(
        client.post(f"{API}/blueprints", json=base | {"name": "custom", "isManual": False, "cronConfig": "@every 6h"}),
        201,
    )
    names = lambda **q: [b["name"] for b in ok(client.get(f"{API}/blueprints", params=q))["blueprints"]]  # noqa: E731
    assert names() == ["custom", "daily", "adhoc"]
    assert names(type="DAILY") == ["daily"] and names(type="CUSTOM") == ["custom"] and names(type="MANUAL") == ["adhoc"]
    assert (
        names(enable="false") == ["daily"]
        and names(label="nightly") == ["adhoc"]
        and names(isManual="true", type="DAILY") == ["adhoc"]
    )
    assert names(pageSize=1, page=2) == ["daily"]
    bad = client.get(f"{API}/blueprints", params={"type": "YEARLY"})
    assert bad.status_code == 400 and bad.content == b""
    assert ok(client.delete(f"{API}/blueprints/{created['id']}"))["success"] is True
    assert error(client.get(f"{API}/blueprints/{created['id']}"), 404) == "blueprint not found"
    error(client.get(f"{API}/blueprints/abc"), 400)


# ---- trigger and pipeline lifecycle ---------------------------------------------------------------


def test_trigger_rules(client: TestClient) -> None:
    ok(client.post(f"{API}/projects", json={"name": "empty"}), 201)
    empty_bp = ok(client.get(f"{API}/projects/empty"))["blueprint"]["id"]
    assert error(client.post(f"{API}/blueprints/{empty_bp}/trigger"), 400) == "no task to run"
    bp = make_project(client, enable=False)
    assert error(client.post(f"{API}/blueprints/{bp['id']}/trigger"), 400) == "blueprint is not enabled"
    ok(client.patch(f"{API}/blueprints/{bp['id']}", json={"enable": True}))
    run = trigger(client, bp["id"])
    assert run["status"] == "TASK_CREATED" and run["blueprintId"] == bp["id"] and run["name"] == "payments-Blueprint"
    assert (
        error(client.post(f"{API}/blueprints/{bp['id']}/trigger"), 400)
        == "there are pending pipelines of current blueprint already"
    )
    assert (
        ok(client.get(f"{API}/blueprints/{bp['id']}/pipelines", params={"pending": 1}))["pipelines"][0]["id"]
        == run["id"]
    )
    error(client.post(f"{API}/blueprints/999/trigger"), 404)


def test_trigger_fails_with_500_when_a_referenced_webhook_is_gone(client: TestClient) -> None:
    bp = make_project(client)
    hook = ok(client.post(f"{API}/plugins/webhook/connections", json={"name": "hook"}))
    ok(
        client.patch(
            f"{API}/blueprints/{bp['id']}",
            json={"connections": bp["connections"] + [{"pluginName": "webhook", "connectionId": hook["id"]}]},
        )
    )
    ok(client.delete(f"{API}/plugins/webhook/connections/{hook['id']}"))  # no reference check for webhooks
    assert "cannot find webhook connection" in error(client.post(f"{API}/blueprints/{bp['id']}/trigger"), 500)


def test_pipeline_runs_through_its_tasks_with_the_clock(client: TestClient) -> None:
    bp = make_project(client, repos=2)  # org, 2 github, 2 gitextractor, dora: 6 tasks of 5 s
    run = trigger(client, bp["id"])
    assert run["totalTasks"] == 6 and run["finishedTasks"] == 0 and run["beganAt"] is None
    assert pipeline(client, run["id"])["status"] == "TASK_CREATED"
    advance(client, 1)  # the queue picks it up
    running = pipeline(client, run["id"])
    assert running["status"] == "TASK_RUNNING" and running["stage"] == 1 and running["beganAt"] is not None
    advance(client, 12)
    middle = pipeline(client, run["id"])
    assert middle["finishedTasks"] == 2 and middle["stage"] == 2
    tasks = ok(client.get(f"{API}/pipelines/{run['id']}/tasks"))
    statuses = [t["status"] for t in tasks["tasks"]]
    assert tasks["count"] == 6 and statuses[:3] == ["TASK_COMPLETED", "TASK_COMPLETED", "TASK_RUNNING"]
    assert tasks["tasks"][2]["progressDetail"]["totalSubTasks"] == 6 and tasks["tasks"][0]["progressDetail"] is None
    advance(client, 30)
    done = pipeline(client, run["id"])
    assert done["status"] == "TASK_COMPLETED" and done["finishedTasks"] == 6 and done["spentSeconds"] == 30
    subtasks = ok(client.get(f"{API}/pipelines/{run['id']}/subtasks"))
    assert subtasks["completionRate"] == 1.0 and subtasks["status"] == "TASK_COMPLETED" and subtasks["count"] == 6
    assert subtasks["subtasks"][0]["subtaskDetails"][0]["name"] == "setProjectMapping"


def test_max_parallel_queues_by_priority_then_id(client: TestClient) -> None:
    runs = [
        trigger(client, make_project(client, f"p{i}", repos=1, priority=1 if i == 2 else 0)["id"])["id"]
        for i in range(3)
    ]
    advance(client, 1)
    assert [pipeline(client, r)["status"] for r in runs] == ["TASK_RUNNING", "TASK_CREATED", "TASK_CREATED"]
    advance(client, 20)  # 4 tasks of 5 s: the first ends, the high-priority third starts
    assert [pipeline(client, r)["status"] for r in runs] == ["TASK_COMPLETED", "TASK_CREATED", "TASK_RUNNING"]
    assert pipeline(client, runs[2])["beganAt"] == pipeline(client, runs[0])["finishedAt"]
    ok(client.post(f"{CTL}/settings", json={"maxParallel": 2}))
    advance(client, 1)
    assert pipeline(client, runs[1])["status"] == "TASK_RUNNING"
    advance(client, 100)
    assert ok(client.get(f"{CTL}/counts"))["pipelines"] == {"TASK_COMPLETED": 3}


def test_scripted_failure_then_rerun_succeeds(client: TestClient) -> None:
    bp = make_project(client, repos=1)  # org, github, gitextractor, dora
    ok(
        client.post(
            f"{CTL}/scripts",
            json={
                "blueprintId": bp["id"],
                "failAtTask": 2,
                "message": "rate limited",
                "succeedOnRerun": True,
                "taskSeconds": 2,
            },
        )
    )
    run = trigger(client, bp["id"])
    assert error(client.post(f"{API}/pipelines/{run['id']}/rerun"), 400) == "pipeline is waiting to run"
    advance(client, 1)
    assert error(client.post(f"{API}/pipelines/{run['id']}/rerun"), 400) == "pipeline is running"
    advance(client, 10)
    failed = pipeline(client, run["id"])
    assert (
        failed["status"] == "TASK_FAILED"
        and failed["message"] == "rate limited"
        and "rate limited" in failed["errorName"]
    )
    assert failed["finishedTasks"] == 2  # the failed task counts
    tasks = ok(client.get(f"{API}/pipelines/{run['id']}/tasks"))["tasks"]
    assert [t["status"] for t in tasks] == ["TASK_COMPLETED", "TASK_FAILED", "TASK_CREATED", "TASK_CREATED"]
    assert tasks[1]["failedSubTask"] == "collectApiRepo"
    rerun = ok(client.post(f"{API}/pipelines/{run['id']}/rerun"))
    assert [t["plugin"] for t in rerun] == ["github", "gitextractor", "dora"] and all(
        t["status"] == "TASK_CREATED" for t in rerun
    )
    assert pipeline(client, run["id"])["status"] == "TASK_RERUN"
    advance(client, 10)
    done = pipeline(client, run["id"])
    assert done["status"] == "TASK_COMPLETED" and done["finishedTasks"] == 5 and done["message"] == ""
    assert error(client.post(f"{API}/pipelines/{run['id']}/rerun"), 400) == "no tasks to be re-ran"
    error(client.post(f"{API}/pipelines/999/rerun"), 404)


def test_partial_and_skip_on_fail(client: TestClient) -> None:
    bp = make_project(client, repos=1)
    ok(client.post(f"{CTL}/scripts", json={"blueprintId": bp["id"], "failAtTask": 3, "partial": True}))
    run = trigger(client, bp["id"])
    advance(client, 60)
    partial = pipeline(client, run["id"])
    assert (
        partial["status"] == "TASK_PARTIAL"
        and partial["finishedTasks"] == 4
        and partial["finishedTasks"] == partial["totalTasks"]
    )
    ok(client.post(f"{CTL}/scripts", json={"blueprintId": bp["id"], "failAtTask": 1}))
    ok(client.patch(f"{API}/blueprints/{bp['id']}", json={"skipOnFail": True}))
    second = trigger(client, bp["id"])
    assert second["skipOnFail"] is True
    advance(client, 60)
    assert pipeline(client, second["id"])["status"] == "TASK_PARTIAL"


def test_cancel_rules(client: TestClient) -> None:
    blueprints = [make_project(client, name, repos=1)["id"] for name in ("a", "b")]
    ok(client.post(f"{CTL}/scripts", json={"blueprintId": blueprints[0], "forever": True}))
    first, second = (trigger(client, bp) for bp in blueprints)
    advance(client, 1000)
    assert pipeline(client, first["id"])["status"] == "TASK_RUNNING"  # stays running forever
    assert pipeline(client, second["id"])["status"] == "TASK_CREATED"  # waits for the slot
    assert error(client.post(f"{API}/pipelines/{second['id']}/rerun"), 400) == "pipeline is waiting to run"
    assert ok(client.delete(f"{API}/pipelines/{second['id']}"))["success"] is True
    assert pipeline(client, second["id"])["status"] == "TASK_CANCELLED"  # queued: at once
    ok(client.delete(f"{API}/pipelines/{first['id']}"))
    cancelling = pipeline(client, first["id"])
    assert cancelling["status"] == "TASK_RUNNING"  # running: cancelled a moment later
    assert {t["status"] for t in ok(client.get(f"{API}/pipelines/{first['id']}/tasks"))["tasks"]} == {"TASK_CANCELLED"}
    advance(client, 2)
    assert pipeline(client, first["id"])["status"] == "TASK_CANCELLED"
    ok(client.delete(f"{API}/pipelines/{first['id']}"))  # finished: a no-op
    assert error(client.delete(f"{API}/pipelines/999"), 400) == "pipeline not found"
    assert error(client.get(f"{API}/pipelines/999"), 404) == "pipeline not found"
    error(client.get(f"{API}/pipelines/abc"), 400)


def test_ad_hoc_pipelines_and_list_filters(client: TestClient) -> None:
    plan = [[{"plugin": "dora", "subtasks": None, "options": {"projectName": "x"}}]]
    adhoc = ok(client.post(f"{API}/pipelines", json={"name": "adhoc", "plan": plan, "labels": ["l1"]}), 201)
    assert adhoc["blueprintId"] == 0 and adhoc["totalTasks"] == 1
    assert error(client.post(f"{API}/pipelines", json={"name": "empty", "plan": []}), 400) == "no task to run"
    bp = make_project(client, repos=1)
    run = trigger(client, bp["id"])
    for _ in range(60):
        ok(client.post(f"{API}/pipelines", json={"name": "bulk", "plan": plan}), 201)
    listed = lambda **q: ok(client.get(f"{API}/pipelines", params=q))  # noqa: E731
    assert listed()["count"] == 62 and len(listed()["pipelines"]) == 50 and listed()["pipelines"][0]["id"] == 62
    assert len(listed(pagesize=10)["pipelines"]) == 50  # lower-case pagesize is ignored
    assert len(listed(pageSize=10, page=7)["pipelines"]) == 2
    assert [p["id"] for p in listed(blueprint_id=bp["id"])["pipelines"]] == [run["id"]]
    assert listed(label="l1")["pipelines"][0]["id"] == adhoc["id"]
    advance(client, 10)
    assert listed(status="TASK_COMPLETED")["count"] == 1 and listed(pending=1)["count"] == 61


def test_forced_statuses_and_deleted_pipelines(client: TestClient) -> None:
    bp = make_project(client, repos=1)
    run = trigger(client, bp["id"])
    ok(client.post(f"{CTL}/pipelines/{run['id']}/status", json={"status": "TASK_RESUME"}))
    advance(client, 100)
    assert pipeline(client, run["id"])["status"] == "TASK_RESUME"  # left alone by the simulation
    assert trigger(client, bp["id"])["status"] == "TASK_CREATED"  # TASK_RESUME does not block a trigger
    advance(client, 100)
    assert "unfinished" in error(client.delete(f"{API}/projects/payments"), 500)  # but blocks deletion
    ok(client.post(f"{CTL}/pipelines/{run['id']}/status", json={"status": "TASK_WEIRD"}))
    assert pipeline(client, run["id"])["status"] == "TASK_WEIRD"
    ok(client.delete(f"{CTL}/pipelines/{run['id']}"))
    error(client.get(f"{API}/pipelines/{run['id']}"), 404)
    state = ok(client.get(f"{CTL}/blueprints/{bp['id']}"))
    assert state["project"]["name"] == "payments" and len(state["pipelines"]) == 1 and len(state["scopes"]) == 1
    assert len(state["pipelines"][0]["tasks"]) == 4


def test_skip_collectors_strips_collect_subtasks(client: TestClient) -> None:
    bp = make_project(client, repos=1)
    run = trigger(client, bp["id"], skipCollectors=True, fullSync=True)
    assert run["skipCollectors"] is True and run["fullSync"] is True
    plugins = [t["plugin"] for stage in run["plan"] for t in stage]
    assert "gitextractor" not in plugins and run["totalTasks"] == 3
    github = next(t for stage in run["plan"] for t in stage if t["plugin"] == "github")
    assert github["subtasks"] and not any("collect" in s.lower() for s in github["subtasks"])


# ---- modes, /rest and API keys --------------------------------------------------------------------


def test_migration_pending_mode(client: TestClient) -> None:
    ok(client.post(f"{CTL}/settings", json={"migrationPending": True}))
    for path in ("/projects", "/plugins/github/connections", "/nothing"):
        assert error(client.get(API + path), 428).startswith("New migration scripts detected")
    for path in ("/ping", "/ready", "/health", "/version"):
        assert client.get(API + path).status_code == 200
    assert ok(client.get(f"{API}/proceed-db-migration"))["success"] is True
    ok(client.get(f"{API}/projects"))


def test_html_mode_answers_a_login_page_everywhere(client: TestClient) -> None:
    ok(client.post(f"{CTL}/settings", json={"htmlMode": True}))
    for method, path in (
        ("GET", "/projects"),
        ("POST", "/blueprints/1/trigger"),
        ("GET", "/version"),
        ("GET", "/nothing"),
    ):
        response = client.request(method, API + path)
        assert (
            response.status_code == 200
            and response.headers["content-type"].startswith("text/html")
            and "<form" in response.text
        )
    ok(client.post(f"{CTL}/settings", json={"htmlMode": False}))
    assert ok(client.get(f"{API}/projects"))["count"] == 0


def test_rest_prefix_needs_a_bearer_api_key(client: TestClient) -> None:
    def rest(path: str, key: str | None = None, method: str = "GET", **kw: Any) -> Any:
        headers = {"Authorization": key} if key is not None else {}
        return client.request(method, f"{API}/rest{path}", headers=headers, **kw)

    assert (
        rest("/projects").json() == {"success": False, "message": "token is missing"}
        and rest("/projects").status_code == 401
    )
    assert rest("/projects", "Token abc").json()["message"] == "token is not present or malformed"
    assert (
        rest("/projects", "Bearer nope").status_code == 403
        and rest("/projects", "Bearer nope").json()["message"] == "api key is invalid"
    )
    key = ok(client.post(f"{API}/api-keys", json={"name": "ci", "type": "devlake", "allowedPath": "/projects.*"}), 201)[
        "apiKey"
    ]
    bearer = f"Bearer {key}"
    assert ok(rest("/projects", bearer))["count"] == 0
    assert ok(rest("/projects", bearer, "POST", json={"name": "via/rest"}), 201)["name"] == "via/rest"
    assert ok(rest(f"/projects/{quote('via/rest', safe='')}", bearer))["name"] == "via/rest"
    assert rest("/projects/missing", bearer).status_code == 404
    assert rest("/blueprints", bearer).json()["message"] == "path doesn't match api key's scope"
    expired = ok(client.post(f"{CTL}/api-keys", json={"name": "old", "expiredAt": "2000-01-01T00:00:00Z"}))["apiKey"]
    assert rest("/projects", f"Bearer {expired}").json()["message"] == "api key has expired"
    listed = ok(client.get(f"{API}/api-keys"))
    assert listed["count"] == 2 and "apikeys" in listed and all("apiKey" not in k for k in listed["apikeys"])


def test_webhook_key_only_covers_its_connection(client: TestClient) -> None:
    hook = ok(client.post(f"{API}/plugins/webhook/connections", json={"name": "hook"}))
    bearer = f"Bearer {hook['apiKey']['apiKey']}"
    own = client.get(f"{API}/rest/plugins/webhook/connections/{hook['id']}/nothing", headers={"Authorization": bearer})
    assert own.status_code == 404 and own.text == "404 page not found"  # allowed, but no such route
    other = client.get(f"{API}/rest/projects", headers={"Authorization": bearer})
    assert other.status_code == 403
    assert client.get(f"{API}/api-keys").json()["count"] == 0  # webhook keys are not listed


def test_api_key_regenerate_and_delete(client: TestClient) -> None:
    created = ok(client.post(f"{CTL}/api-keys", json={"name": "k"}))
    again = ok(client.put(f"{API}/api-keys/{created['id']}"))
    assert again["apiKey"] != created["apiKey"]
    assert (
        client.get(f"{API}/rest/version", headers={"Authorization": f"Bearer {created['apiKey']}"}).status_code == 403
    )
    assert client.get(f"{API}/rest/version", headers={"Authorization": f"Bearer {again['apiKey']}"}).status_code == 200
    ok(client.delete(f"{API}/api-keys/{created['id']}"))
    error(client.delete(f"{API}/api-keys/{created['id']}"), 404)
    error(client.post(f"{API}/api-keys", json={"name": "x", "type": "devlake"}), 400)


# ---- seeding, bulk data and scale -----------------------------------------------------------------


def test_seed_is_deterministic_and_reset_restores_a_fresh_devlake(client: TestClient) -> None:
    before = walk_remote(client, "github", 1)[0]
    make_project(client)
    ok(client.post("/_sandbox/reset", json={}))
    assert ok(client.get(f"{CTL}/counts"))["projects"] == 0
    assert walk_remote(client, "github", 1)[0] == before
    other_seed = TestClient(create_app(seed=7, systems=["devlake"]))
    assert [s["name"] for s in walk_remote(other_seed, "github", 1)[0]] != [s["name"] for s in before]


def test_bulk_generation_spreads_repositories_over_the_connections(client: TestClient) -> None:
    grown = ok(client.post(f"{CTL}/remote-repos/bulk", json={"count": 1000}))
    assert sum(grown.values()) == 64 + 1000 and len(grown) == 5
    assert all(n >= 200 for n in grown.values())
    scopes, _ = walk_remote(client, "gitlab", 1)
    assert len(scopes) == grown["gitlab/1"] and len({s["id"] for s in scopes}) == len(scopes)
    ok(client.post(f"{CTL}/remote-repos/bulk", json={"count": 5}))  # more names, no clashes
    assert len({s["id"] for s in walk_remote(client, "github", 1)[0]}) == grown["github/1"] + 1


def test_many_blueprints_poll_cheaply(client: TestClient) -> None:
    """The monitoring benchmark's shape: hundreds of queued pipelines, polled every few seconds."""
    plan = [[{"plugin": "dora", "options": {}}], [{"plugin": "refdiff", "options": {}}]]
    ok(client.post(f"{CTL}/settings", json={"maxParallel": 4, "taskSeconds": 2}))
    bp_ids = [
        ok(
            client.post(
                f"{API}/blueprints",
                json={"name": f"b{i}", "mode": "ADVANCED", "enable": True, "isManual": True, "plan": plan},
            ),
            201,
        )["id"]
        for i in range(200)
    ]
    for bp_id in bp_ids:
        trigger(client, bp_id)
    for _ in range(60):
        advance(client, 5)
        listed = ok(client.get(f"{API}/pipelines", params={"pending": 1, "pageSize": 500}))
        if listed["count"] == 0:
            break
    assert ok(client.get(f"{CTL}/counts"))["pipelines"] == {"TASK_COMPLETED": 200}
