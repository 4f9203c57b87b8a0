"""GitHubHook against the sandbox GitHub: paging, ETags, rate limits, the 1,000-run cap, attempts,
deployments, compare, errors."""

from __future__ import annotations

import datetime as dt
import json
import math
from urllib.parse import parse_qsl

import pytest
import requests

from devops_automation.hooks.api import ApiError
from devops_automation.hooks.github import (
    API_VERSION,
    MEDIA_TYPE,
    GitHubHook,
    GitHubRateLimited,
    created_between,
    parse_time,
    repo_path,
)
from devops_automation.store.http_cache import MemoryHttpCache, StoreHttpCache

TOKEN = "ghp_sandboxtoken000000000000000000000000"
UTC = dt.UTC


def scenarios(sandbox) -> dict:
    return sandbox.control("github", "GET", "/scenarios")


def truth(sandbox, repo: str, start: dt.datetime, end: dt.datetime) -> list[int]:
    """The sandbox's own answer: ids of the runs created in [start, end)."""
    params = {"created_from": start.isoformat(), "created_to": end.isoformat()}
    return sandbox.control("github", "GET", f"/repos/{repo}/run_ids", params=params)["run_ids"]


def query(rec: dict) -> dict[str, str]:
    return dict(parse_qsl(rec["query"], keep_blank_values=True))


def sandbox_now(sandbox) -> dt.datetime:
    now = requests.get(f"{sandbox.base_url}/_sandbox/clock", timeout=10).json()["now"]
    return dt.datetime.fromtimestamp(now, UTC)


def set_conn(monkeypatch, host: str | None, password: str | None = TOKEN, **extra) -> None:
    conn = {"conn_type": "http", "host": host, "password": password, "extra": {"max_retries": 3, **extra}}
    monkeypatch.setenv("AIRFLOW_CONN_GITHUB_DEFAULT", json.dumps(conn))


def make_hook(sandbox=None, *, advance: bool = True, **kwargs) -> GitHubHook:
    """A hook on the sandbox whose waits are recorded (``hook.waits``) and, when ``advance``, pass on
    the sandbox's clock instead of the wall clock."""
    hook = GitHubHook(**kwargs)
    hook.waits = []

    def sleep(seconds: float) -> None:
        hook.waits.append(seconds)
        if advance and sandbox is not None:
            sandbox.advance(seconds)

    hook.sleep = sleep
    return hook


@pytest.fixture
def hook(sandbox_conns, sandbox) -> GitHubHook:
    return make_hook(sandbox, cache=MemoryHttpCache())


# -- headers, paging ---------------------------------------------------------------------------------
def test_list_runs_follows_link_pages_with_github_headers(hook, sandbox) -> None:
    since = (sandbox_now(sandbox) - dt.timedelta(days=31)).strftime("%Y-%m-%d")
    runs = list(hook.list_runs("acme/web", f">={since}"))
    expected = truth(sandbox, "acme/web", dt.datetime(2000, 1, 1, tzinfo=UTC), dt.datetime(2100, 1, 1, tzinfo=UTC))
    assert len(expected) == 300
    assert sorted(r["id"] for r in runs) == expected
    created = [parse_time(r["created_at"]) for r in runs]
    assert created == sorted(created, reverse=True)  # as the API sends them
    recs = sandbox.requests(system="github", path="/actions/runs$")
    assert [query(r).get("page", "1") for r in recs] == ["1", "2", "3"]
    assert all(query(r)["per_page"] == "100" and query(r)["created"] == f">={since}" for r in recs)
    headers = recs[0]["headers"]
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["accept"] == MEDIA_TYPE
    assert headers["x-github-api-version"] == API_VERSION
    assert hook.request_count == 3


def test_repo_names_are_checked_and_an_unknown_repo_is_a_clear_404(hook, sandbox) -> None:
    with pytest.raises(ValueError, match="owner/name"):
        repo_path("just-a-name")
    with pytest.raises(ApiError) as err:
        hook.run_attempt("acme/nope", 1, 1)
    assert err.value.status == 404
    assert "Not Found (no such repository or resource, or the token cannot see it)" in str(err.value)
    assert "/repos/acme/nope/actions/runs/1/attempts/1" in str(err.value)
    assert not isinstance(err.value, GitHubRateLimited)
    assert len(sandbox.requests(system="github", path="/repos/acme/nope")) == 1  # not retried
    assert hook.waits == []


def test_bad_credentials_name_the_connection(sandbox_conns, sandbox, monkeypatch) -> None:
    set_conn(monkeypatch, f"{sandbox.base_url}/github", "ghp_wrong")
    hook = make_hook(sandbox)
    with pytest.raises(ApiError, match=r"Bad credentials .*'github_default'") as err:
        hook.deployments("acme/api")
    assert err.value.status == 401
    assert len(sandbox.requests(system="github")) == 1


def test_no_token_is_anonymous(sandbox_conns, sandbox, monkeypatch) -> None:
    set_conn(monkeypatch, f"{sandbox.base_url}/github", None)
    hook = make_hook(sandbox)
    hook.deployments("acme/api")
    assert "authorization" not in sandbox.requests(system="github")[0]["headers"]
    assert hook.rate_limit["limit"] == 60


# -- conditional requests ----------------------------------------------------------------------------
def test_second_fetch_is_a_304_that_spends_no_rate_limit(hook, sandbox) -> None:
    run_id = scenarios(sandbox)["acme/api"]["flaky"][0]
    first = hook.run_attempt("acme/api", run_id, 1)
    remaining = hook.rate_limit["remaining"]
    jobs = hook.attempt_jobs("acme/api", run_id, 1)
    assert hook.rate_limit["remaining"] == remaining - 1
    assert (hook.rate_limit_cost, hook.not_modified_count) == (2, 0)
    again = hook.run_attempt("acme/api", run_id, 1)
    jobs_again = hook.attempt_jobs("acme/api", run_id, 1)
    assert again == first
    assert jobs_again == jobs
    assert first["run_attempt"] == 1
    assert first["conclusion"] == "failure"
    assert hook.rate_limit["remaining"] == remaining - 1  # the sandbox charged nothing for the 304s
    assert (hook.rate_limit_cost, hook.not_modified_count) == (2, 2)
    recs = sandbox.requests(system="github", path=f"/runs/{run_id}/attempts/1")
    assert [r["status"] for r in recs] == [200, 200, 304, 304]
    assert "if-none-match" not in recs[0]["headers"]
    assert recs[2]["headers"]["if-none-match"].startswith('W/"')
    assert sandbox.control("github", "GET", "/counts")["not_modified"] == 2


def test_looking_again_after_a_rerun_fetches_only_what_changed(hook, sandbox) -> None:
    sc = scenarios(sandbox)["acme/web"]
    run_id = sc["failed"][-1]
    run = requests.get(
        f"{sandbox.base_url}/github/repos/acme/web/actions/runs/{run_id}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    ).json()
    day = run["created_at"][:10]
    before = list(hook.list_runs("acme/web", day, per_page=2))
    pages = math.ceil(len(before) / 2)
    assert pages >= 2
    assert list(hook.list_runs("acme/web", day, per_page=2)) == before
    assert hook.not_modified_count == pages
    rerun = requests.post(
        f"{sandbox.base_url}/github/repos/acme/web/actions/runs/{run_id}/rerun-failed-jobs",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert rerun.status_code == 201
    sandbox.clear_requests()
    after = list(hook.list_runs("acme/web", day, per_page=2))
    statuses = [r["status"] for r in sandbox.requests(system="github", path="/actions/runs$")]
    assert statuses.count(200) == 1  # only the page holding the re-run run changed
    assert statuses.count(304) == pages - 1
    changed = next(r for r in after if r["id"] == run_id)
    assert changed["run_attempt"] == run["run_attempt"] + 1
    assert [r["id"] for r in after] == [r["id"] for r in before]


def test_the_store_cache_serves_a_later_hook(sandbox_conns, sandbox, results_store) -> None:
    first = make_hook(sandbox, cache=StoreHttpCache(results_store))
    runs = first.deployments("acme/shop", "production")
    assert first.not_modified_count == 0
    later = make_hook(sandbox, cache=StoreHttpCache(results_store))
    assert later.deployments("acme/shop", "production") == runs
    assert later.not_modified_count == 1
    assert later.rate_limit_cost == 0


def test_a_304_for_an_entry_without_a_body_fetches_again(sandbox_conns, sandbox) -> None:
    cache = MemoryHttpCache()
    hook = make_hook(sandbox, cache=cache)
    repo = hook.get_json_cached("/repos/acme/api")
    (key,) = cache.entries
    cache.entries[key]["body"] = {"written": "by someone else"}  # right ETag, not this hook's envelope
    assert hook.get_json_cached("/repos/acme/api") == repo
    assert [r["status"] for r in sandbox.requests(system="github")] == [200, 304, 200]
    assert cache.entries[key]["body"]["body"] == repo
    assert hook.get_json_cached("/repos/acme/api") == repo
    assert sandbox.requests(system="github")[-1]["status"] == 304


def test_get_json_cached_without_a_cache_sends_no_condition(sandbox_conns, sandbox) -> None:
    hook = make_hook(sandbox)
    assert hook.get_json_cached("/repos/acme/api")["full_name"] == "acme/api"
    assert hook.get_json_cached("/repos/acme/api")["full_name"] == "acme/api"
    recs = sandbox.requests(system="github", path="/repos/acme/api$")
    assert [r["status"] for r in recs] == [200, 200]
    assert all("if-none-match" not in r["headers"] for r in recs)


# -- rate limits -------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [403, 429])
def test_primary_limit_with_a_short_reset_is_waited(hook, sandbox, status) -> None:
    answer = sandbox.control("github", "POST", "/rate_limit", json={"remaining": 0, "reset_in": 20, "status": status})
    run_id = scenarios(sandbox)["acme/api"]["flaky"][0]
    got = hook.run_attempt("acme/api", run_id, 2)
    assert got["run_attempt"] == 2
    assert len(hook.waits) == 1
    assert 19 <= hook.waits[0] <= 22  # until x-ratelimit-reset, plus a second
    assert hook.rate_limit_wait_seconds == hook.waits[0]
    assert hook.rate_limited_count == 1
    assert [r["status"] for r in sandbox.requests(system="github")] == [status, 200]
    assert hook.rate_limit["reset"] > answer["reset"]  # a new window


def test_a_reset_just_at_the_max_wait_is_still_waited(hook, sandbox) -> None:
    sandbox.control("github", "POST", "/rate_limit", json={"remaining": 0, "reset_in": 59.9})
    assert hook.deployments("acme/api")
    assert 59 <= hook.waits[0] <= 61.5  # the 1 s margin does not push it over max_rate_limit_wait


def test_primary_limit_with_a_long_reset_raises_with_the_reset_time(hook, sandbox) -> None:
    answer = sandbox.control("github", "POST", "/rate_limit", json={"remaining": 0, "reset_in": 3600})
    with pytest.raises(GitHubRateLimited) as err:
        hook.deployments("acme/api")
    exc = err.value
    assert exc.reset_at == dt.datetime.fromtimestamp(answer["reset"], UTC)
    assert (exc.kind, exc.source, exc.status, exc.resource) == ("primary", "reset", 403, "core")
    assert "API rate limit exceeded" in str(exc)
    assert hook.waits == []
    assert len(sandbox.requests(system="github")) == 1


def test_max_rate_limit_wait_is_configurable(sandbox_conns, sandbox, monkeypatch) -> None:
    sandbox.control("github", "POST", "/rate_limit", json={"remaining": 0, "reset_in": 30})
    short = make_hook(sandbox, max_rate_limit_wait=10)
    with pytest.raises(GitHubRateLimited):
        short.deployments("acme/api")
    set_conn(monkeypatch, f"{sandbox.base_url}/github", max_rate_limit_wait=10)
    assert make_hook(sandbox).max_rate_limit_wait == 10
    patient = make_hook(sandbox, max_rate_limit_wait=45)
    assert patient.deployments("acme/api")
    assert 29 <= patient.waits[0] <= 32


def test_secondary_limit_honours_retry_after(hook, sandbox) -> None:
    sandbox.control("github", "POST", "/secondary_rate_limit", json={"times": 1, "retry_after": 7, "path": "/actions/"})
    jobs = hook.attempt_jobs("acme/api", scenarios(sandbox)["acme/api"]["flaky"][0], 2)
    assert len(jobs) == 1
    assert hook.waits == [7]
    assert [r["status"] for r in sandbox.requests(system="github")] == [403, 200]


def test_secondary_limit_longer_than_max_retry_wait_raises(hook, sandbox) -> None:
    sandbox.control("github", "POST", "/secondary_rate_limit", json={"times": 1, "retry_after": 600})
    start = sandbox_now(sandbox)
    with pytest.raises(GitHubRateLimited, match="secondary rate limit") as err:
        hook.org_repos("acme")
    assert (err.value.kind, err.value.source, err.value.retry_after) == ("secondary", "retry-after", 600)
    assert abs((err.value.reset_at - start).total_seconds() - 600) < 5
    assert hook.waits == []


def test_a_rate_limit_without_headers_waits_a_minute_then_backs_off(hook, sandbox) -> None:
    body = {"message": "You have exceeded a secondary rate limit.", "documentation_url": "https://docs.github.com"}
    sandbox.fault(system="github", path="/deployments", status=403, body=body, times=2)
    hook = make_hook(sandbox, cache=MemoryHttpCache(), max_rate_limit_wait=300)
    assert hook.deployments("acme/shop")
    assert hook.waits == [60, 120]
    assert [r["status"] for r in sandbox.requests(system="github")] == [403, 403, 200]


def test_backoff_beyond_the_max_wait_raises_for_deferral(hook, sandbox) -> None:
    sandbox.fault(system="github", path="/deployments", status=429, body={"message": "slow down"}, times=5)
    with pytest.raises(GitHubRateLimited) as err:
        hook.deployments("acme/shop")
    assert hook.waits == [60]  # the second wait (120 s) is over max_rate_limit_wait (60 s)
    assert (err.value.source, err.value.retry_after, err.value.status) == ("backoff", 120, 429)
    assert len(sandbox.requests(system="github")) == 2


def test_a_403_about_access_fails_at_once(hook, sandbox) -> None:
    sandbox.control("github", "POST", "/repos/acme/api/forbidden", json={"path": "/actions/"})
    assert hook.get_json_cached("/repos/acme/api")["name"] == "api"  # the rest of the repo is readable
    with pytest.raises(ApiError) as err:
        hook.run_attempt("acme/api", scenarios(sandbox)["acme/api"]["flaky"][0], 1)
    assert not isinstance(err.value, GitHubRateLimited)
    assert err.value.status == 403
    assert "Resource not accessible by personal access token" in str(err.value)
    assert "lacks access" in str(err.value)
    assert len(sandbox.requests(system="github", path="/actions/")) == 1
    assert hook.waits == []


def test_a_bare_403_is_not_retried(hook, sandbox) -> None:
    sandbox.fault(system="github", path="/orgs/", status=403, body={"message": "Must have admin rights"})
    with pytest.raises(ApiError, match="Must have admin rights") as err:
        hook.org_repos("acme")
    assert not isinstance(err.value, GitHubRateLimited)
    assert len(sandbox.requests(system="github")) == 1


def test_server_errors_are_retried_with_backoff(hook, sandbox) -> None:
    sandbox.fault(system="github", path="/deployments", status=502, message="Server Error", times=2)
    assert hook.deployments("acme/shop")
    assert len(hook.waits) == 2
    assert all(w < 5 for w in hook.waits)


# -- the 1,000-run cap -------------------------------------------------------------------------------
def busy_day(sandbox) -> dt.datetime:
    return dt.datetime.fromisoformat(scenarios(sandbox)["acme/monorepo"]["busy_day"]).replace(tzinfo=UTC)


def test_runs_in_window_splits_past_the_cap_and_returns_exactly_the_sandboxs_runs(hook, sandbox) -> None:
    start = busy_day(sandbox)
    end = start + dt.timedelta(days=1)
    expected = truth(sandbox, "acme/monorepo", start, end)
    assert len(expected) == 1250
    runs = hook.runs_in_window("acme/monorepo", start, end)
    assert [r["id"] for r in runs] == expected  # ids grow with creation time: oldest first, each once
    assert all(start <= parse_time(r["created_at"]) < end for r in runs)
    assert hook.window_splits == 1
    recs = sandbox.requests(system="github", path="/actions/runs$")
    windows = {query(r)["created"] for r in recs}
    assert created_between(int(start.timestamp()), int(end.timestamp()) - 1) in windows
    assert len(windows) == 3  # the whole day (capped), then its two halves
    assert all(int(query(r).get("page", "1")) <= 10 for r in recs)


def test_runs_in_window_over_several_days_and_odd_bounds(hook, sandbox) -> None:
    day = busy_day(sandbox)
    start = day - dt.timedelta(hours=30, seconds=17)
    end = day + dt.timedelta(days=1, hours=7, minutes=3)
    runs = hook.runs_in_window("acme/monorepo", start, end)
    assert [r["id"] for r in runs] == truth(sandbox, "acme/monorepo", start, end)
    quiet = hook.runs_in_window("acme/monorepo", day - dt.timedelta(days=2), day - dt.timedelta(days=1))
    assert len(quiet) == 20


def test_runs_in_window_on_an_empty_window(hook, sandbox) -> None:
    now = sandbox_now(sandbox)
    assert hook.runs_in_window("acme/empty", now - dt.timedelta(days=3), now) == []
    assert hook.runs_in_window("acme/api", now, now) == []
    with pytest.raises(ValueError, match="timezone-aware"):
        hook.runs_in_window("acme/api", dt.datetime(2026, 1, 1), now)


# -- attempts and jobs -------------------------------------------------------------------------------
def test_every_attempt_of_a_run_re_run_days_later(hook, sandbox) -> None:
    shop = scenarios(sandbox)["acme/shop"]
    three = [
        rid
        for rid in shop["late_reruns"]
        if hook.get_json_cached(f"/repos/acme/shop/actions/runs/{rid}")["run_attempt"] == 3
    ]
    assert len(three) == 1
    run_id = three[0]
    attempts = [hook.run_attempt("acme/shop", run_id, n) for n in (1, 2, 3)]
    assert [a["conclusion"] for a in attempts] == ["failure", "failure", "success"]
    assert [a["run_attempt"] for a in attempts] == [1, 2, 3]
    assert len({a["run_number"] for a in attempts}) == 1
    created = parse_time(attempts[0]["created_at"])
    started = [parse_time(a["run_started_at"]) for a in attempts]
    assert started == sorted(started)
    assert dt.timedelta(days=2) <= started[1] - created <= dt.timedelta(days=3)
    jobs = [hook.attempt_jobs("acme/shop", run_id, n) for n in (1, 2, 3)]
    assert [j["name"] for j in jobs[0]] == ["lint", "unit", "integration", "build"]
    assert [j["name"] for j in jobs[2]] == ["integration", "build"]
    assert {j["run_attempt"] for j in jobs[1]} == {2}
    failed = next(j for j in jobs[0] if j["conclusion"] == "failure")
    assert failed["name"] == "integration"
    for job in jobs[2]:
        assert [s["number"] for s in job["steps"]] == [1, 2, 3, 4]
        assert job["runner_name"].startswith("GitHub Actions")
        assert parse_time(job["started_at"]) >= parse_time(job["created_at"])


def test_attempt_jobs_ask_for_100_a_page(hook, sandbox) -> None:
    run_id = scenarios(sandbox)["acme/api"]["failed"][0]
    jobs = hook.attempt_jobs("acme/api", run_id, 1)
    assert len(jobs) == len({j["id"] for j in jobs})
    recs = sandbox.requests(system="github", path="/jobs$")
    assert [query(r)["per_page"] for r in recs] == ["100"]


# -- repositories, deployments, compare --------------------------------------------------------------
def test_org_repos_pages_and_leaves_archived_ones_out(hook, sandbox) -> None:
    names = [r["full_name"] for r in hook.org_repos("acme")]
    assert names == ["acme/api", "acme/empty", "acme/infra", "acme/monorepo", "acme/shop", "acme/web"]
    sandbox.control("github", "POST", "/repos", json={"count": 120, "prefix": "svc-"})
    sandbox.clear_requests()
    many = hook.org_repos("acme")
    assert len(many) == 126
    assert len({r["id"] for r in many}) == 126
    assert len(sandbox.requests(system="github", path="/orgs/acme/repos")) == 2
    with pytest.raises(ApiError) as err:
        hook.org_repos("no-such-org")
    assert err.value.status == 404


def test_deployments_statuses_failure_and_rollback(hook, sandbox) -> None:
    notes = scenarios(sandbox)["acme/shop"]["deployments"]["production"]
    deps = hook.deployments("acme/shop", "production")
    assert [d["id"] for d in deps] == sorted(notes["deployments"], reverse=True)  # newest first
    assert {d["environment"] for d in deps} == {"production"}
    assert all(d["production_environment"] for d in deps)
    every = hook.deployments("acme/shop")
    assert {d["environment"] for d in every} == {"production", "staging"}
    by_id = {d["id"]: d for d in deps}
    failed = hook.deployment_statuses("acme/shop", notes["failed"][0])
    assert [s["state"] for s in failed] == ["failure", "in_progress", "queued"]
    ok = [d for d in reversed(deps) if d["id"] in notes["successful"]]
    rollback = by_id[notes["rollbacks"][0]]
    k = [d["id"] for d in ok].index(rollback["id"])
    assert rollback["sha"] == ok[k - 2]["sha"]
    assert rollback["sha"] != ok[k - 1]["sha"]
    assert hook.deployment_statuses("acme/shop", rollback["id"])[0]["state"] == "success"


def test_compare_pages_commits_with_author_dates(hook, sandbox) -> None:
    deps = hook.deployments("acme/api", "production")
    oldest, newest = deps[-1], deps[0]
    result = hook.compare("acme/api", oldest["sha"], newest["sha"])
    assert result["status"] == "ahead"
    assert result["total_commits"] > 100
    assert len(result["commits"]) == result["ahead_by"] == result["total_commits"]
    assert result["commits"][-1]["sha"] == newest["sha"]
    assert len({c["sha"] for c in result["commits"]}) == len(result["commits"])
    dates = [parse_time(c["commit"]["committer"]["date"]) for c in result["commits"]]
    assert dates == sorted(dates)
    assert all(
        parse_time(c["commit"]["author"]["date"]) <= parse_time(c["commit"]["committer"]["date"])
        for c in result["commits"]
    )
    recs = sandbox.requests(system="github", path="/compare/")
    assert len(recs) == math.ceil(result["total_commits"] / 100)
    assert all(query(r)["per_page"] == "100" for r in recs)
    back = hook.compare("acme/api", newest["sha"], oldest["sha"])
    assert (back["status"], back["behind_by"], back["commits"]) == ("behind", result["total_commits"], [])
    with pytest.raises(ApiError) as err:
        hook.compare("acme/api", "0" * 40, newest["sha"])
    assert err.value.status == 404


# -- connection --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "api_url"),
    [
        (None, "https://api.github.com"),
        ("https://github.com", "https://api.github.com"),
        ("https://ghe.example.com", "https://ghe.example.com/api/v3"),
        ("https://ghe.example.com/api/v3/", "https://ghe.example.com/api/v3"),
        ("https://api.acme.ghe.com", "https://api.acme.ghe.com"),
        ("http://127.0.0.1:8900/github", "http://127.0.0.1:8900/github"),
    ],
)
def test_api_url_from_the_connection(monkeypatch, host, api_url) -> None:
    set_conn(monkeypatch, host)
    hook = GitHubHook()
    assert hook.api_url == api_url
    assert hook.url("/rate_limit") == f"{api_url}/rate_limit"
    assert hook.url(f"{api_url}/repos/a/b?page=2") == f"{api_url}/repos/a/b?page=2"
    with pytest.raises(ApiError, match="refusing to follow a link"):
        hook.url("https://evil.example.com/repos/a/b?page=2")


def test_test_connection(sandbox_conns, sandbox, monkeypatch) -> None:
    ok, message = make_hook(sandbox).test_connection()
    assert ok
    assert "5000 of 5000 core requests left" in message
    set_conn(monkeypatch, f"{sandbox.base_url}/github", "ghp_wrong")
    ok, message = make_hook(sandbox).test_connection()
    assert not ok
    assert "Bad credentials" in message
