"""GitHub sandbox: auth, rate limits, ETags, pagination, repo metrics, search, Actions runs/jobs/logs/re-runs."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient

from include.sandbox.app import create_app
from include.sandbox.client import SandboxClient, SandboxServer

TOKEN = "ghp_sandboxtoken000000000000000000000000"
AUTH = {
    "Authorization": f"Bearer {TOKEN}",
    "Accept": "application/vnd.github+json",
    "X-GitHub-Api-Version": "2022-11-28",
}
API = "/github"
CONTROL = "/_sandbox/github"
LOG_LINE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z ")


@pytest.fixture()
def client() -> TestClient:
    return TestClient(create_app(systems=["github"]))


@pytest.fixture()
def scenarios(client: TestClient) -> dict[str, Any]:
    return client.get(f"{CONTROL}/scenarios").json()


def get(client: TestClient, path: str, **kw: Any) -> Any:
    r = client.get(f"{API}{path}", headers=kw.pop("headers", AUTH), **kw)
    assert r.status_code == 200, r.text
    return r


def now_of(client: TestClient) -> datetime:
    return datetime.fromtimestamp(client.get("/_sandbox/clock").json()["now"], UTC)


def parse_ts(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


# -- auth, headers, conditional requests ----------------------------------------------------------
@pytest.mark.parametrize("scheme", ["Bearer", "token"])
def test_bearer_and_token_schemes(client: TestClient, scheme: str) -> None:
    r = client.get(f"{API}/repos/acme/api", headers={"Authorization": f"{scheme} {TOKEN}"})
    assert r.status_code == 200
    assert r.json()["full_name"] == "acme/api"
    for h in (
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-used",
        "x-ratelimit-reset",
        "x-ratelimit-resource",
        "etag",
    ):
        assert h in r.headers
    assert r.headers["x-ratelimit-limit"] == "5000"


def test_bad_credentials(client: TestClient) -> None:
    r = client.get(f"{API}/repos/acme/api", headers={"Authorization": "Bearer ghp_wrong"})
    assert r.status_code == 401
    assert r.json()["message"] == "Bad credentials"
    assert "documentation_url" in r.json()


def test_anonymous_requests_use_the_60_per_hour_limit(client: TestClient) -> None:
    r = client.get(f"{API}/repos/acme/api")
    assert r.status_code == 200 and r.headers["x-ratelimit-limit"] == "60"


def test_etag_if_none_match_304_does_not_spend_rate_limit(client: TestClient) -> None:
    first = get(client, "/repos/acme/api")
    again = client.get(f"{API}/repos/acme/api", headers={**AUTH, "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["x-ratelimit-remaining"] == first.headers["x-ratelimit-remaining"]
    assert client.get(f"{CONTROL}/counts").json()["not_modified"] == 1


def test_repository_fields_and_api_version(client: TestClient) -> None:
    repo = get(client, "/repos/acme/api").json()
    assert repo["stargazers_count"] == 1250 and repo["forks_count"] == 210 and repo["subscribers_count"] == 48
    assert repo["open_issues_count"] > 0 and repo["default_branch"] == "main" and "has_downloads" in repo
    new = get(client, "/repos/acme/api", headers={**AUTH, "X-GitHub-Api-Version": "2026-03-10"}).json()
    assert "has_downloads" not in new
    assert (
        client.get(f"{API}/repos/acme/api", headers={**AUTH, "X-GitHub-Api-Version": "1999-01-01"}).status_code == 400
    )
    assert client.get(f"{API}/repos/acme/nope", headers=AUTH).json()["message"] == "Not Found"


def test_rate_limit_endpoint_and_exhaustion(client: TestClient) -> None:
    body = get(client, "/rate_limit").json()
    assert body["rate"] == body["resources"]["core"]
    assert "rate" not in get(client, "/rate_limit", headers={**AUTH, "X-GitHub-Api-Version": "2026-03-10"}).json()
    client.post(f"{CONTROL}/rate_limit", json={"remaining": 1, "reset_in": 120})
    assert get(client, "/repos/acme/api").headers["x-ratelimit-remaining"] == "0"
    r = client.get(f"{API}/repos/acme/api", headers=AUTH)
    assert r.status_code == 403 and r.headers["x-ratelimit-remaining"] == "0"
    assert "rate limit exceeded" in r.json()["message"]
    assert int(r.headers["x-ratelimit-reset"]) == pytest.approx(now_of(client).timestamp() + 120, abs=3)
    client.post(f"{CONTROL}/rate_limit", json={"status": 429})
    assert client.get(f"{API}/repos/acme/api", headers=AUTH).status_code == 429
    client.post("/_sandbox/clock/advance", json={"seconds": 121})
    assert client.get(f"{API}/repos/acme/api", headers=AUTH).status_code == 200


def test_secondary_rate_limit(client: TestClient) -> None:
    client.post(f"{CONTROL}/secondary_rate_limit", json={"times": 1, "retry_after": 30, "path": "/actions/"})
    assert get(client, "/repos/acme/api").status_code == 200  # other paths pass
    r = client.get(f"{API}/repos/acme/api/actions/runs", headers=AUTH)
    assert r.status_code == 403 and r.headers["retry-after"] == "30"
    assert r.json()["message"].startswith("You have exceeded a secondary rate limit")
    assert client.get(f"{API}/repos/acme/api/actions/runs", headers=AUTH).status_code == 200
    assert client.get(f"{CONTROL}/counts").json()["secondary_rate_limited"] == 1


def test_injected_fault_uses_github_error_shape(client: TestClient) -> None:
    client.post(
        "/_sandbox/faults",
        json={"system": "github", "path": "/repos/", "status": 502, "message": "Server Error", "times": 1},
    )
    r = client.get(f"{API}/repos/acme/api", headers=AUTH)
    assert r.status_code == 502 and r.json()["message"] == "Server Error" and "documentation_url" in r.json()


# -- repository metrics ---------------------------------------------------------------------------
def test_contributors_count_via_last_link(client: TestClient) -> None:
    r = get(client, "/repos/acme/api/contributors", params={"per_page": 1, "anon": 1})
    last = requests.utils.parse_header_links(r.headers["link"])
    pages = int(re.search(r"[?&]page=(\d+)", next(link for link in last if link["rel"] == "last")["url"]).group(1))
    everyone = get(client, "/repos/acme/api/contributors", params={"per_page": 100, "anon": 1}).json()
    assert pages == len(everyone)
    assert any(c.get("type") == "Anonymous" for c in everyone)
    linked = get(client, "/repos/acme/api/contributors", params={"per_page": 100}).json()
    assert all(c["type"] == "User" for c in linked) and len(linked) < len(everyone)
    counts = [c["contributions"] for c in everyone]
    assert counts == sorted(counts, reverse=True)
    assert client.get(f"{API}/repos/acme/empty/contributors", headers=AUTH).status_code == 204


def test_stats_202_then_200_and_204(client: TestClient) -> None:
    client.post(f"{CONTROL}/repos/acme/api/stats", json={"pending": 2})
    assert client.get(f"{API}/repos/acme/api/stats/commit_activity", headers=AUTH).status_code == 202
    assert client.get(f"{API}/repos/acme/api/stats/participation", headers=AUTH).status_code == 202
    weeks = get(client, "/repos/acme/api/stats/commit_activity").json()
    assert len(weeks) == 52 and all(w["total"] == sum(w["days"]) for w in weeks)
    assert datetime.fromtimestamp(weeks[-1]["week"], UTC).weekday() == 6  # Sunday
    part = get(client, "/repos/acme/api/stats/participation").json()
    assert len(part["all"]) == 52 and len(part["owner"]) == 52 and part["all"][-1] > 0
    contributors = get(client, "/repos/acme/api/stats/contributors").json()
    assert {"author", "total", "weeks"} <= set(contributors[0])
    assert get(client, "/repos/acme/api/stats/code_frequency").json()[0][2] <= 0
    assert client.get(f"{API}/repos/acme/empty/stats/commit_activity", headers=AUTH).status_code == 204


def test_merged_prs_search_with_window(client: TestClient) -> None:
    end = now_of(client)
    window = f"{(end - timedelta(days=30)).strftime('%Y-%m-%dT%H:%M:%SZ')}..{end.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    q = f"repo:acme/api is:pr is:merged merged:{window}"
    r = get(client, "/search/issues", params={"q": q, "per_page": 1, "advanced_search": "true"})
    assert r.headers["x-ratelimit-resource"] == "search" and r.headers["x-ratelimit-limit"] == "30"
    body = r.json()
    assert body["incomplete_results"] is False and body["total_count"] > 0
    pulls = get(client, "/repos/acme/api/pulls", params={"state": "closed", "per_page": 100}).json()
    lo = end - timedelta(days=30)
    expected = sum(1 for p in pulls if p["merged_at"] and lo <= parse_ts(p["merged_at"]) <= end)
    assert body["total_count"] == expected
    issues_only = get(client, "/search/issues", params={"q": "repo:acme/api is:issue is:open"}).json()
    assert all("pull_request" not in i for i in issues_only["items"])


def test_search_validation_errors(client: TestClient) -> None:
    r = client.get(f"{API}/search/issues", params={"q": "repo:acme/missing is:pr"}, headers=AUTH)
    assert r.status_code == 422 and r.json()["message"] == "Validation Failed"
    r = client.get(f"{API}/search/issues", params={"q": "x" * 300 + " is:pr"}, headers=AUTH)
    assert r.status_code == 422
    r = client.get(f"{API}/search/issues", params={"q": "a OR b OR c OR d OR e OR f OR g"}, headers=AUTH)
    assert r.status_code == 422


def test_issues_include_prs_and_releases(client: TestClient) -> None:
    items = get(client, "/repos/acme/api/issues", params={"state": "all", "per_page": 100}).json()
    assert any("pull_request" in i for i in items) and any("pull_request" not in i for i in items)
    releases = get(client, "/repos/acme/api/releases").json()
    assert any(r["draft"] and r["published_at"] is None for r in releases) and any(r["prerelease"] for r in releases)
    assert get(client, "/repos/acme/api/releases/latest").json()["tag_name"] == "v1.11.0"
    assert client.get(f"{API}/repos/acme/infra/releases/latest", headers=AUTH).status_code == 404


# -- Actions: runs --------------------------------------------------------------------------------
def test_runs_cover_30_days_with_filters_and_link_pagination(client: TestClient) -> None:
    now = now_of(client)
    body = get(client, "/repos/acme/web/actions/runs", params={"per_page": 100}).json()
    assert body["total_count"] == 300 and len(body["workflow_runs"]) == 100
    created = [parse_ts(r["created_at"]) for r in body["workflow_runs"]]
    assert created == sorted(created, reverse=True)
    seen: list[dict[str, Any]] = []
    r = get(client, "/repos/acme/web/actions/runs", params={"per_page": 100})
    while True:
        seen += r.json()["workflow_runs"]
        nxt = requests.utils.parse_header_links(r.headers["link"]) if "link" in r.headers else []
        url = next((link["url"] for link in nxt if link["rel"] == "next"), None)
        if url is None:
            break
        assert "per_page=100" in url
        r = get(client, url.split("/github", 1)[1])
    assert len({x["id"] for x in seen}) == 300
    assert min(parse_ts(x["created_at"]) for x in seen) >= now - timedelta(days=30, seconds=5)
    assert {x["conclusion"] for x in seen} >= {"success", "failure"}
    assert len({x["head_branch"] for x in seen}) >= 3 and len({x["actor"]["login"] for x in seen}) >= 3
    day = (now - timedelta(days=3)).strftime("%Y-%m-%d")
    one_day = get(client, "/repos/acme/web/actions/runs", params={"created": day, "per_page": 100}).json()
    assert 0 < one_day["total_count"] < 30
    assert all(x["created_at"].startswith(day) for x in one_day["workflow_runs"])
    main = get(
        client, "/repos/acme/web/actions/runs", params={"branch": "main", "event": "push", "status": "failure"}
    ).json()
    assert all(
        x["head_branch"] == "main" and x["event"] == "push" and x["conclusion"] == "failure"
        for x in main["workflow_runs"]
    )
    assert (
        client.get(f"{API}/repos/acme/web/actions/runs", params={"created": "yesterday"}, headers=AUTH).status_code
        == 422
    )


def test_filtered_runs_stop_at_1000_results(client: TestClient) -> None:
    start = (now_of(client) - timedelta(days=40)).strftime("%Y-%m-%d")
    body = get(
        client, "/repos/acme/api/actions/runs", params={"created": f">={start}", "per_page": 100, "page": 10}
    ).json()
    assert body["total_count"] > 1000 and len(body["workflow_runs"]) == 100
    r = get(client, "/repos/acme/api/actions/runs", params={"created": f">={start}", "per_page": 100, "page": 11})
    assert r.json()["workflow_runs"] == []
    unfiltered = get(client, "/repos/acme/api/actions/runs", params={"per_page": 100, "page": 11}).json()
    assert len(unfiltered["workflow_runs"]) == unfiltered["total_count"] - 1000
    assert (
        get(client, "/repos/acme/api/actions/runs", params={"per_page": 500}).json()["workflow_runs"].__len__() == 100
    )


def test_flaky_run_attempts_and_jobs(client: TestClient, scenarios: dict[str, Any]) -> None:
    run_id = scenarios["acme/api"]["flaky"][0]
    run = get(client, f"/repos/acme/api/actions/runs/{run_id}").json()
    assert run["run_attempt"] == 2 and run["conclusion"] == "success"
    assert run["previous_attempt_url"].endswith(f"/runs/{run_id}/attempts/1")
    first = get(client, f"/repos/acme/api/actions/runs/{run_id}/attempts/1").json()
    assert first["run_attempt"] == 1 and first["conclusion"] == "failure" and first["run_number"] == run["run_number"]
    assert parse_ts(run["run_started_at"]) > parse_ts(first["run_started_at"])
    latest = get(client, f"/repos/acme/api/actions/runs/{run_id}/jobs").json()
    everything = get(client, f"/repos/acme/api/actions/runs/{run_id}/jobs", params={"filter": "all"}).json()
    assert everything["total_count"] == latest["total_count"] + 1
    assert {j["conclusion"] for j in latest["jobs"]} == {"success"}
    assert sorted({j["run_attempt"] for j in everything["jobs"]}) == [1, 2]
    only2 = get(client, f"/repos/acme/api/actions/runs/{run_id}/attempts/2/jobs").json()
    assert only2["total_count"] == 1 and only2["jobs"][0]["run_attempt"] == 2
    assert client.get(f"{API}/repos/acme/api/actions/runs/{run_id}/attempts/3", headers=AUTH).status_code == 404
    for job in everything["jobs"]:
        queue = parse_ts(job["started_at"]) - parse_ts(job["created_at"])
        assert timedelta(0) < queue < timedelta(hours=1)
        assert parse_ts(job["completed_at"]) > parse_ts(job["started_at"])
        assert [s["number"] for s in job["steps"]] == [1, 2, 3, 4]


def test_live_runs_progress_with_the_clock(client: TestClient, scenarios: dict[str, Any]) -> None:
    queued = scenarios["acme/api"]["queued"][0]
    running = scenarios["acme/api"]["in_progress"][0]
    assert get(client, f"/repos/acme/api/actions/runs/{queued}").json()["status"] == "queued"
    run = get(client, f"/repos/acme/api/actions/runs/{running}").json()
    assert run["status"] == "in_progress" and run["conclusion"] is None
    job = get(client, f"/repos/acme/api/actions/runs/{running}/jobs").json()["jobs"][0]
    assert job["status"] == "in_progress" and job["completed_at"] is None
    client.post("/_sandbox/clock/advance", json={"seconds": 3600})
    assert get(client, f"/repos/acme/api/actions/runs/{queued}").json()["conclusion"] == "success"
    assert get(client, "/repos/acme/api/actions/runs", params={"status": "in_progress"}).json()["total_count"] == 0


def test_job_logs_redirect_and_expire(client: TestClient, scenarios: dict[str, Any]) -> None:
    run_id = scenarios["acme/api"]["failed"][0]
    jobs = get(client, f"/repos/acme/api/actions/runs/{run_id}/jobs").json()["jobs"]
    failed = next(j for j in jobs if j["conclusion"] == "failure")
    r = client.get(f"{API}/repos/acme/api/actions/jobs/{failed['id']}/logs", headers=AUTH, follow_redirects=False)
    assert r.status_code == 302
    location = r.headers["location"]
    text = client.get(location).text
    lines = text.splitlines()
    assert lines and all(LOG_LINE.match(line) for line in lines)
    assert any("##[error]" in line for line in lines) and any("##[group]" in line for line in lines)
    client.post("/_sandbox/clock/advance", json={"seconds": 61})
    assert client.get(location).status_code == 403


def test_run_logs_zip_layout(client: TestClient, scenarios: dict[str, Any]) -> None:
    run_id = scenarios["acme/api"]["flaky"][0]
    r = client.get(f"{API}/repos/acme/api/actions/runs/{run_id}/attempts/1/logs", headers=AUTH)  # follows the 302
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert any(re.fullmatch(r"\d+_[^/]+\.txt", n) for n in names)
    assert any(re.fullmatch(r"[^/]+/\d+_[^/]+\.txt", n) for n in names)


def test_rerun_failed_jobs_creates_a_new_attempt(client: TestClient, scenarios: dict[str, Any]) -> None:
    run_id = scenarios["acme/api"]["failed"][0]
    before = get(client, f"/repos/acme/api/actions/runs/{run_id}").json()
    r = client.post(f"{API}/repos/acme/api/actions/runs/{run_id}/rerun-failed-jobs", headers=AUTH)
    assert r.status_code == 201
    after = get(client, f"/repos/acme/api/actions/runs/{run_id}").json()
    assert after["run_attempt"] == before["run_attempt"] + 1 and after["status"] == "queued"
    assert after["run_number"] == before["run_number"]
    again = client.post(f"{API}/repos/acme/api/actions/runs/{run_id}/rerun", headers=AUTH)
    assert again.status_code == 403  # still running
    client.post("/_sandbox/clock/advance", json={"seconds": 600})
    done = get(client, f"/repos/acme/api/actions/runs/{run_id}").json()
    assert done["status"] == "completed" and done["conclusion"] == "success"
    ok = scenarios["acme/api"]["flaky"][0]
    assert client.post(f"{API}/repos/acme/api/actions/runs/{ok}/rerun-failed-jobs", headers=AUTH).status_code == 403
    assert client.post(f"{API}/repos/acme/api/actions/runs/{ok}/rerun", headers=AUTH).status_code == 201
    jobs = get(client, f"/repos/acme/api/actions/runs/{ok}/attempts/3/jobs").json()
    first = get(client, f"/repos/acme/api/actions/runs/{ok}/attempts/1/jobs").json()
    # a full re-run runs every job of the workflow again (which workflow the seeded flaky run has
    # depends on the day the sandbox starts: compare with its first attempt, which ran them all)
    assert jobs["total_count"] == first["total_count"] >= 1
    assert sorted(j["name"] for j in jobs["jobs"]) == sorted(j["name"] for j in first["jobs"])


def test_cancel_and_controls_add_runs(client: TestClient) -> None:
    made = client.post(
        f"{CONTROL}/repos/acme/infra/runs",
        json={
            "runs": [
                {"outcome": "flaky", "age_s": 7200, "branch": "release", "actor": "erin"},
                {"outcome": "success", "age_s": 10, "queue_s": 600, "duration_s": 60, "count": 2, "spacing_s": 5},
            ]
        },
    ).json()
    assert made["created"] == 3
    flaky, pending = made["run_ids"][0], made["run_ids"][1]
    assert get(client, f"/repos/acme/infra/actions/runs/{flaky}").json()["run_attempt"] == 2
    assert (
        get(client, "/repos/acme/infra/actions/runs", params={"branch": "release", "actor": "erin"}).json()[
            "total_count"
        ]
        == 1
    )
    assert client.post(f"{API}/repos/acme/infra/actions/runs/{pending}/cancel", headers=AUTH).status_code == 202
    assert get(client, f"/repos/acme/infra/actions/runs/{pending}").json()["conclusion"] == "cancelled"
    assert client.post(f"{API}/repos/acme/infra/actions/runs/{pending}/cancel", headers=AUTH).status_code == 409
    workflows = get(client, "/repos/acme/infra/actions/workflows").json()
    wf_runs = get(client, "/repos/acme/infra/actions/workflows/terraform.yml/runs").json()
    assert workflows["total_count"] == 1 and wf_runs["total_count"] == 93
    counts = client.get(f"{CONTROL}/counts").json()
    assert counts["cancels"] == 1 and counts["requests"] >= 7


# -- over a real port, with requests -------------------------------------------------------------
@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(systems=["github"]) as srv:
        yield srv


def test_real_server_pagination_and_log_redirect(server: SandboxServer) -> None:
    sb = SandboxClient(server.base_url)
    sb.reset()
    s = requests.Session()
    s.headers.update(AUTH)
    url: str | None = sb.url("github", "/repos/acme/infra/actions/runs?per_page=40")
    ids: list[int] = []
    while url:
        r = s.get(url, timeout=10)
        r.raise_for_status()
        ids += [x["id"] for x in r.json()["workflow_runs"]]
        url = r.links.get("next", {}).get("url")
    assert len(ids) == len(set(ids)) == 90
    failed = sb.control("github", "GET", "/scenarios")["acme/infra"]["failed"][0]
    job = s.get(sb.url("github", f"/repos/acme/infra/actions/runs/{failed}/jobs"), timeout=10).json()["jobs"][0]
    log = s.get(sb.url("github", f"/repos/acme/infra/actions/jobs/{job['id']}/logs"), timeout=10)
    assert log.status_code == 200 and log.history[0].status_code == 302
    assert LOG_LINE.match(log.text)
    assert [r["status"] for r in sb.requests(system="github", path="/logs$|/_blobs/")] == [302, 200]


# -- issue 11: organisations, deployments, compare, the 1,000-run cap, CI stories ----------------
def all_pages(client: TestClient, path: str, params: dict[str, Any] | None = None, field: str | None = None) -> list:
    """Every item of a list, following the Link header's next URLs."""
    out: list[Any] = []
    r = get(client, path, params=params)
    while True:
        body = r.json()
        out += body[field] if field else body
        url = r.links.get("next", {}).get("url")
        if url is None:
            return out
        r = get(client, url.split("/github", 1)[1])


def test_date_time_filters_cover_whole_seconds(client: TestClient) -> None:
    at = int(now_of(client).timestamp()) - 7200
    made = client.post(f"{CONTROL}/repos/acme/empty/runs", json={"runs": [{"created_at": at + 0.7}]}).json()
    run_id = made["run_ids"][0]
    stamp = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    before = datetime.fromtimestamp(at - 1, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    shown = get(client, f"/repos/acme/empty/actions/runs/{run_id}").json()["created_at"]
    assert shown == stamp  # GitHub's times are whole seconds

    def ids(created: str) -> list[int]:
        return [
            r["id"]
            for r in get(client, "/repos/acme/empty/actions/runs", params={"created": created}).json()["workflow_runs"]
        ]

    assert ids(f"{stamp}..{stamp}") == [run_id]
    assert ids(f"{before}..{stamp}") == [run_id]
    assert ids(f"*..{before}") == []
    assert ids(f"<{stamp}") == []
    assert ids(f"<={stamp}") == [run_id]
    assert ids(f">{stamp}") == []
    assert ids(f">={stamp}") == [run_id]


def test_org_repos_sorting_paging_archived_and_404(client: TestClient) -> None:
    default = [r["full_name"] for r in get(client, "/orgs/acme/repos").json()]
    assert default == [  # newest first by creation
        "acme/legacy",
        "acme/monorepo",
        "acme/shop",
        "acme/empty",
        "acme/infra",
        "acme/web",
        "acme/api",
    ]
    by_name = all_pages(client, "/orgs/acme/repos", {"sort": "full_name", "per_page": 2})
    assert [r["name"] for r in by_name] == ["api", "empty", "infra", "legacy", "monorepo", "shop", "web"]
    assert [r["name"] for r in by_name if r["archived"]] == ["legacy"]
    assert "subscribers_count" not in by_name[0]  # list items are the short form
    assert get(client, "/orgs/acme/repos", params={"type": "private"}).json() == []
    assert client.get(f"{API}/orgs/acme/repos", params={"type": "owner"}, headers=AUTH).status_code == 422
    assert client.get(f"{API}/orgs/alice/repos", headers=AUTH).status_code == 404  # a user, not an organisation
    assert client.get(f"{API}/orgs/nobody/repos", headers=AUTH).json()["message"] == "Not Found"


def test_deployments_newest_first_with_filters_and_statuses(client: TestClient, scenarios: dict[str, Any]) -> None:
    notes = scenarios["acme/shop"]["deployments"]
    prod = all_pages(client, "/repos/acme/shop/deployments", {"environment": "production", "per_page": 7})
    assert [d["id"] for d in prod] == sorted(notes["production"]["deployments"], reverse=True)
    created = [parse_ts(d["created_at"]) for d in prod]
    assert created == sorted(created, reverse=True)
    assert {(d["environment"], d["production_environment"], d["task"]) for d in prod} == {
        ("production", True, "deploy")
    }
    one = prod[3]
    assert [d["id"] for d in get(client, "/repos/acme/shop/deployments", params={"sha": one["sha"]}).json()] == [
        d["id"] for d in prod if d["sha"] == one["sha"]
    ] + [
        d["id"]
        for d in get(
            client, "/repos/acme/shop/deployments", params={"environment": "staging", "sha": one["sha"]}
        ).json()
    ]
    assert get(client, f"/repos/acme/shop/deployments/{one['id']}").json() == one
    assert client.get(f"{API}/repos/acme/shop/deployments/1", headers=AUTH).status_code == 404
    failed = notes["production"]["failed"][0]
    states = get(client, f"/repos/acme/shop/deployments/{failed}/statuses").json()
    assert [s["state"] for s in states] == ["failure", "in_progress", "queued"]
    assert states[0]["log_url"].startswith("https://github.com/acme/shop/actions/runs/")
    run_id = int(states[0]["log_url"].rsplit("/", 1)[1])
    deploy_run = get(client, f"/repos/acme/shop/actions/runs/{run_id}").json()
    failed_dep = get(client, f"/repos/acme/shop/deployments/{failed}").json()
    assert (deploy_run["name"], deploy_run["conclusion"], deploy_run["head_sha"]) == (
        "Deploy",
        "failure",
        failed_dep["sha"],
    )
    latest = {d["id"]: get(client, f"/repos/acme/shop/deployments/{d['id']}/statuses").json()[0]["state"] for d in prod}
    assert sorted(i for i, s in latest.items() if s == "failure") == [failed]
    assert {s for i, s in latest.items() if i != failed} == {"success"}  # production keeps its successes


def test_rollback_and_recovery_in_the_seeded_deployments(client: TestClient, scenarios: dict[str, Any]) -> None:
    for repo in ("acme/shop", "acme/api"):
        notes = scenarios[repo]["deployments"]["production"]
        deps = {d["id"]: d for d in all_pages(client, f"/repos/{repo}/deployments", {"per_page": 100})}
        ok = [deps[i] for i in notes["successful"]]
        (rollback,) = notes["rollbacks"]
        k = [d["id"] for d in ok].index(rollback)
        assert deps[rollback]["sha"] == ok[k - 2]["sha"] != ok[k - 1]["sha"]
        assert deps[rollback]["description"].startswith("Rollback to ")
        (failed,), (recovery,) = notes["failed"], notes["recovery"]
        hours = (parse_ts(deps[recovery]["created_at"]) - parse_ts(deps[failed]["created_at"])).total_seconds() / 3600
        assert 3 <= hours <= 9
        assert recovery in notes["successful"]
        assert failed not in notes["successful"]


def test_staging_keeps_only_its_newest_success_active(client: TestClient, scenarios: dict[str, Any]) -> None:
    ids = scenarios["acme/shop"]["deployments"]["staging"]["deployments"]
    assert len(ids) >= 10
    latest = [get(client, f"/repos/acme/shop/deployments/{i}/statuses").json()[0]["state"] for i in ids]
    assert latest == ["inactive"] * (len(ids) - 1) + ["success"]  # GitHub's auto_inactive
    first = get(client, f"/repos/acme/shop/deployments/{ids[0]}").json()
    assert first["production_environment"] is False


def test_deployment_statuses_appear_as_the_clock_advances(client: TestClient) -> None:
    made = client.post(
        f"{CONTROL}/repos/acme/web/deployments",
        json={
            "deployments": [
                {"environment": "production", "states": ["queued", "in_progress", "success"], "step_s": 600}
            ]
        },
    ).json()
    dep = made["deployments"][0]
    assert len(dep["sha"]) == 40
    path = f"/repos/acme/web/deployments/{dep['id']}/statuses"
    first = get(client, path)
    assert [s["state"] for s in first.json()] == ["queued"]
    assert client.get(f"{API}{path}", headers={**AUTH, "If-None-Match": first.headers["etag"]}).status_code == 304
    client.post("/_sandbox/clock/advance", json={"seconds": 601})
    assert [s["state"] for s in get(client, path).json()] == ["in_progress", "queued"]
    client.post("/_sandbox/clock/advance", json={"seconds": 600})
    assert [s["state"] for s in get(client, path).json()] == ["success", "in_progress", "queued"]
    assert client.get(f"{API}{path}", headers={**AUTH, "If-None-Match": first.headers["etag"]}).status_code == 200
    bad = client.post(f"{CONTROL}/repos/acme/web/deployments", json={"deployments": [{"states": ["done"]}]})
    assert bad.status_code == 400


def test_compare_unpaged_paged_and_statuses(client: TestClient, scenarios: dict[str, Any]) -> None:
    commits = scenarios["acme/api"]["commits"]
    assert commits["count"] > 1000
    whole = get(client, f"/repos/acme/api/compare/{commits['first']}...main").json()
    assert (whole["status"], whole["ahead_by"], whole["total_commits"]) == (
        "ahead",
        commits["count"] - 1,
        commits["count"] - 1,
    )
    assert len(whole["commits"]) == 250  # without paging parameters: the newest 250
    assert whole["commits"][-1]["sha"] == commits["head"]
    assert whole["base_commit"]["sha"] == commits["first"] == whole["merge_base_commit"]["sha"]
    deps = get(client, "/repos/acme/api/deployments", params={"per_page": 100}).json()
    base, head = deps[-1]["sha"], deps[0]["sha"]
    pages = []
    r = get(client, f"/repos/acme/api/compare/{base}...{head}", params={"per_page": 40})
    while True:
        pages.append(r.json())
        url = r.links.get("next", {}).get("url")
        if url is None:
            break
        assert "per_page=40" in url
        r = get(client, url.split("/github", 1)[1])
    listed = [c for p in pages for c in p["commits"]]
    assert len(listed) == pages[0]["total_commits"] > 40
    assert len(pages) == -(-len(listed) // 40)
    assert listed[-1]["sha"] == head
    assert listed[0]["parents"][0]["sha"] == base  # the first commit after base comes first
    dates = [parse_ts(c["commit"]["committer"]["date"]) for c in listed]
    assert dates == sorted(dates)
    assert all(parse_ts(c["commit"]["author"]["date"]) <= parse_ts(c["commit"]["committer"]["date"]) for c in listed)
    assert "files" in pages[0]
    assert all("files" not in p for p in pages[1:])
    assert sum(f["additions"] for f in pages[0]["files"]) > 0
    short = get(client, f"/repos/acme/api/compare/{base[:7]}...{head[:10]}", params={"page": 1}).json()
    assert short["total_commits"] == len(listed)
    assert len(short["commits"]) == 30  # the default page size once paging is asked for
    back = get(client, f"/repos/acme/api/compare/{head}...{base}").json()
    assert (back["status"], back["ahead_by"], back["behind_by"], back["commits"]) == ("behind", 0, len(listed), [])
    same = get(client, f"/repos/acme/api/compare/{head}...{head}").json()
    assert (same["status"], same["total_commits"], same["commits"]) == ("identical", 0, [])
    for bad in (f"{base}..{head}", f"{'0' * 40}...{head}", f"{base}...nope"):
        assert client.get(f"{API}/repos/acme/api/compare/{bad}", headers=AUTH).status_code == 404


def test_monorepo_busy_day_is_over_the_cap(client: TestClient, scenarios: dict[str, Any]) -> None:
    day = scenarios["acme/monorepo"]["busy_day"]
    body = get(client, "/repos/acme/monorepo/actions/runs", params={"created": day, "per_page": 100}).json()
    assert body["total_count"] == scenarios["acme/monorepo"]["busy_day_runs"] == 1250
    beyond = get(client, "/repos/acme/monorepo/actions/runs", params={"created": day, "per_page": 100, "page": 11})
    assert beyond.json()["workflow_runs"] == []
    halves = [f"{day}T00:00:00Z..{day}T11:59:59Z", f"{day}T12:00:00Z..{day}T23:59:59Z"]
    counts = [
        get(client, "/repos/acme/monorepo/actions/runs", params={"created": h}).json()["total_count"] for h in halves
    ]
    assert sum(counts) == 1250
    assert max(counts) < 1000
    truth = client.get(
        f"{CONTROL}/repos/acme/monorepo/run_ids",
        params={"created_from": f"{day}T00:00:00Z", "created_to": f"{day}T12:00:00Z"},
    ).json()
    assert truth["count"] == counts[0] == len(truth["run_ids"])


def main_ci_runs(client: TestClient) -> list[dict[str, Any]]:
    runs = all_pages(
        client, "/repos/acme/shop/actions/workflows/ci.yml/runs", {"branch": "main", "per_page": 100}, "workflow_runs"
    )
    return sorted(runs, key=lambda r: (parse_ts(r["created_at"]), r["id"]))


def test_shop_red_streaks(client: TestClient, scenarios: dict[str, Any]) -> None:
    notes = scenarios["acme/shop"]
    runs = main_ci_runs(client)
    order = [r["id"] for r in runs]
    closed = notes["red_streak_closed"]
    k = order.index(closed["run_ids"][0])
    assert order[k : k + 7] == [*closed["run_ids"], closed["fixed_by"]]  # consecutive on main
    assert [r["conclusion"] for r in runs[k - 1 : k + 7]] == ["success"] + ["failure"] * 6 + ["success"]
    open_ids = notes["red_streak_open"]["run_ids"]
    assert order[-4:] == open_ids  # nothing green after them
    assert [r["conclusion"] for r in runs[-5:]] == ["success"] + ["failure"] * 4
    assert all(r["status"] == "completed" for r in runs)


def test_shop_reruns_days_later_and_flaky_on_the_same_sha(client: TestClient, scenarios: dict[str, Any]) -> None:
    notes = scenarios["acme/shop"]
    attempts = []
    for run_id in notes["late_reruns"]:
        run = get(client, f"/repos/acme/shop/actions/runs/{run_id}").json()
        second = get(client, f"/repos/acme/shop/actions/runs/{run_id}/attempts/2").json()
        late = parse_ts(second["run_started_at"]) - parse_ts(run["created_at"])
        assert timedelta(days=2) <= late <= timedelta(days=3)
        assert run["conclusion"] == "success"
        attempts.append(run["run_attempt"])
    assert sorted(attempts) == [2, 2, 2, 3]
    assert len(notes["same_sha_flaky"]) == 3
    for pair in notes["same_sha_flaky"]:
        runs = [get(client, f"/repos/acme/shop/actions/runs/{i}").json() for i in pair["run_ids"]]
        assert {r["head_sha"] for r in runs} == {pair["sha"]}
        assert {r["event"] for r in runs} == {"push", "pull_request"}
        outcomes = set()
        for run in runs:
            jobs = get(client, f"/repos/acme/shop/actions/runs/{run['id']}/jobs").json()["jobs"]
            outcomes.add(next(j["conclusion"] for j in jobs if j["name"] == pair["job"]))
        assert outcomes == {"success", "failure"}


def test_forbidden_control_answers_403_with_rate_headers(client: TestClient) -> None:
    client.post(
        f"{CONTROL}/repos/acme/api/forbidden",
        json={"path": "/actions/", "message": "Resource not accessible by integration"},
    )
    r = client.get(f"{API}/repos/acme/api/actions/runs", headers=AUTH)
    assert r.status_code == 403
    assert r.json()["message"] == "Resource not accessible by integration"
    assert int(r.headers["x-ratelimit-remaining"]) > 0
    assert "retry-after" not in r.headers
    assert get(client, "/repos/acme/api").json()["name"] == "api"
    client.delete(f"{CONTROL}/repos/acme/api/forbidden")
    assert get(client, "/repos/acme/api/actions/runs").json()["total_count"] > 0


def test_add_repos_control(client: TestClient) -> None:
    made = client.post(
        f"{CONTROL}/repos", json={"owner": "bigco", "count": 3, "runs_per_day": 10, "days": 2, "rerun_share": 0.5}
    ).json()
    assert made == {"created": ["bigco/svc-001", "bigco/svc-002", "bigco/svc-003"], "runs": 60}
    runs = all_pages(client, "/repos/bigco/svc-002/actions/runs", {"per_page": 100}, "workflow_runs")
    assert len(runs) == 20
    assert 2 <= sum(r["run_attempt"] == 2 for r in runs) <= 18
    assert [r["name"] for r in get(client, "/orgs/bigco/repos").json()] == ["svc-003", "svc-002", "svc-001"]
    assert client.post(f"{CONTROL}/repos", json={"owner": "bigco", "names": ["svc-001"]}).status_code == 409
