"""collect.collect_github against the sandbox GitHub with the results store's ``http_cache``: what is
cached (the list pages and the attempts still in progress, never a completed attempt), what looking
again costs (304s for the list pages, no attempt asked for again), and the links to what was collected."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import sqlalchemy as sa

from devops_automation.hooks.github import GitHubHook
from devops_automation.store import ResultsStore, schema
from devops_automation.store.http_cache import MemoryHttpCache, StoreHttpCache
from devops_automation.workflows.ci_pipeline_analytics import collect

UTC = dt.UTC
DAY = dt.timedelta(days=1)
TOKEN = "ghp_sandboxtoken000000000000000000000000"

KINDS = (
    ("attempt jobs", re.compile(r"/actions/runs/\d+/attempts/\d+/jobs$")),
    ("attempt", re.compile(r"/actions/runs/\d+/attempts/\d+$")),
    ("runs list", re.compile(r"/actions/runs$")),
    ("deployment statuses", re.compile(r"/deployments/\d+/statuses$")),
    ("deployments", re.compile(r"/deployments$")),
    ("compare", re.compile(r"/compare/")),
)
LIST_KINDS = {"runs list", "deployments", "deployment statuses", "compare"}


def kind(url_or_path: str) -> str:
    path = urlsplit(url_or_path).path
    return next((name for name, pattern in KINDS if pattern.search(path)), f"other: {path}")


def cache_urls(store: ResultsStore) -> list[str]:
    t = schema.http_cache
    with store.engine.connect() as conn:
        return [r.url for r in conn.execute(sa.select(t.c.url))]


def sandbox_now(sandbox: Any) -> dt.datetime:
    return dt.datetime.fromtimestamp(sandbox.advance(0), UTC)


def attempt_of(path: str) -> tuple[str, int]:
    found = re.search(r"/actions/runs/(\d+)/attempts/(\d+)", path)
    assert found, path
    return found.group(1), int(found.group(2))


def collect_github(store: ResultsStore, repo: str, start: dt.datetime, end: dt.datetime, **kw: Any) -> Any:
    hook = GitHubHook(cache=StoreHttpCache(store))
    return collect.collect_github(
        hook, store, repo, start=start, end=end, lookback_days=kw.pop("lookback_days", 0), collected_at=end, **kw
    )


def test_a_finished_day_leaves_only_list_pages_in_http_cache_and_looking_again_is_all_304(
    sandbox, sandbox_conns, results_store: ResultsStore
) -> None:
    store = results_store
    end = sandbox_now(sandbox).replace(hour=0, minute=0, second=0, microsecond=0) - 2 * DAY
    start = end - DAY
    sandbox.clear_requests()
    first = collect_github(store, "acme/shop", start, end, lookback_days=1)
    assert first.attempts_stored > first.runs_listed > 0, "the window has re-run attempts"
    asked = sandbox.requests(system="github", method="GET")
    attempts = [r for r in asked if kind(r["path"]) in ("attempt", "attempt jobs")]
    assert Counter(kind(r["path"]) for r in attempts) == {
        "attempt": first.attempts_stored - first.runs_listed,  # the latest attempt comes with the list
        "attempt jobs": first.attempts_stored,
    }
    assert all(r["status"] == 200 and "if-none-match" not in r["headers"] for r in attempts)
    kinds = Counter(kind(url) for url in cache_urls(store))
    assert set(kinds) <= LIST_KINDS, kinds
    assert kinds["runs list"] >= 1
    assert kinds["deployments"] == 1 and kinds["deployment statuses"] > 0  # acme/shop deploys to production
    cached = sum(kinds.values())

    # the same interval again: every list page answers 304 and no attempt is asked for
    sandbox.clear_requests()
    again = collect_github(store, "acme/shop", start, end, lookback_days=1)
    assert (again.attempts_stored, again.attempts_skipped) == (0, first.attempts_stored)
    asked = sandbox.requests(system="github", method="GET")
    assert asked
    assert [r["path"] for r in asked if kind(r["path"]) not in LIST_KINDS] == []
    listed = [r for r in asked if kind(r["path"]) == "runs list"]
    assert len(listed) == kinds["runs list"]
    assert {r["status"] for r in asked} == {304}
    assert sum(Counter(kind(url) for url in cache_urls(store)).values()) == cached


def test_an_attempt_still_in_progress_is_cached_and_asked_for_again_with_its_etag(
    sandbox, sandbox_conns, results_store: ResultsStore
) -> None:
    store = results_store
    now = sandbox_now(sandbox)
    # a run that finished an hour ago, re-run now: attempt 1 is over, attempt 2 is queued
    made = sandbox.control(
        "github",
        "POST",
        "/repos/acme/api/runs",
        json={"runs": [{"workflow": "CI", "created_at": (now - dt.timedelta(hours=2)).isoformat()}]},
    )
    rerun_id = made["run_ids"][0]
    r = requests.post(
        sandbox.url("github", f"/repos/acme/api/actions/runs/{rerun_id}/rerun"),
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert r.status_code < 300, r.text
    start, end = now - dt.timedelta(hours=6), now + dt.timedelta(hours=1)
    first = collect_github(store, "acme/api", start, end, environments=None)
    hook = GitHubHook()
    listed = hook.runs_in_window("acme/api", start, end)
    running = {(str(r["id"]), int(r["run_attempt"])) for r in listed if r["status"] != "completed"}
    assert (str(rerun_id), 2) in running
    assert len(running) >= 3, "the sandbox's two live runs and the re-run"
    assert first.attempts_stored == len(listed) + 1  # the re-run's attempt 1 as well
    urls = cache_urls(store)
    kinds = Counter(kind(url) for url in urls)
    assert set(kinds) == {"runs list", "attempt jobs"}, kinds
    assert {attempt_of(urlsplit(u).path) for u in urls if kind(u) == "attempt jobs"} == running

    # looking again (still running): the attempts in progress are asked for with their ETag
    sandbox.clear_requests()
    again = collect_github(store, "acme/api", start, end, environments=None)
    assert again.attempts_stored == len(running)
    jobs = sandbox.requests(system="github", method="GET", path=r"/attempts/\d+/jobs$")
    assert {attempt_of(r["path"]) for r in jobs} == running
    assert all("if-none-match" in r["headers"] for r in jobs)


def test_a_completed_attempt_is_fetched_without_the_cache_when_asked_so(sandbox, sandbox_conns) -> None:
    run_id = sandbox.control("github", "GET", "/scenarios")["acme/api"]["flaky"][0]
    cache = MemoryHttpCache()
    hook = GitHubHook(cache=cache)
    body = hook.run_attempt("acme/api", run_id, 1, cached=False)
    jobs = hook.attempt_jobs("acme/api", run_id, 1, cached=False)
    assert (body["id"], body["run_attempt"], body["conclusion"]) == (run_id, 1, "failure")
    assert jobs and {j["run_attempt"] for j in jobs} == {1}
    assert (len(cache), cache.gets, cache.puts) == (0, 0, 0)
    # the default still caches: the next ask is a 304 answered from the cache
    assert hook.attempt_jobs("acme/api", run_id, 1) == jobs
    assert hook.attempt_jobs("acme/api", run_id, 1) == jobs
    assert (len(cache), hook.not_modified_count) == (1, 1)


@pytest.mark.parametrize(
    "api_url, expected",
    [
        ("https://api.github.com", "https://github.com"),
        ("https://api.github.com/", "https://github.com"),
        ("https://github.example.com/api/v3", "https://github.example.com"),
        ("https://github.example.com/api/v3/", "https://github.example.com"),
        ("https://api.acme.ghe.com", "https://acme.ghe.com"),
        ("http://127.0.0.1:8081/github", "http://127.0.0.1:8081/github"),
    ],
)
def test_github_web_url(api_url: str, expected: str) -> None:
    assert collect.github_web_url(api_url) == expected
    assert collect.github_actions_url(api_url, "acme/shop") == f"{expected}/acme/shop/actions"


class FakeGitLab:
    web_url = "https://gitlab.example.com"

    def __init__(self, projects: dict[str, Any]) -> None:
        self.projects = projects

    def project(self, ref: str) -> Any:
        if ref not in self.projects:
            raise LookupError(f"404 project {ref}")
        return self.projects[ref]


@pytest.mark.parametrize(
    "project, expected",
    [
        ("payments/checkout-api", "https://gitlab.example.com/payments/checkout-api/-/pipelines"),
        ("payments/mobile/ios-app", "https://gitlab.example.com/payments/mobile/ios-app/-/pipelines"),
        (2003, "https://gitlab.example.com/payments/mobile/ios-app/-/pipelines"),
        ("42", "https://gitlab.example.com/projects/42"),  # unknown id: GitLab's redirect to the project
    ],
)
def test_gitlab_pipelines_url(project: Any, expected: str) -> None:
    hook = FakeGitLab({"2003": {"web_url": "https://gitlab.example.com/payments/mobile/ios-app"}})
    assert collect.gitlab_pipelines_url(hook, project) == expected


def deployment(deployment_id: int, sha: str, status: str = "success", hour: int | None = None) -> dict[str, Any]:
    """A ci_deployments row as the normaliser gives it (GitLab, production)."""
    at = dt.datetime(2026, 11, 20, deployment_id if hour is None else hour, tzinfo=UTC)
    return {
        "provider": "gitlab",
        "repo": "payments/checkout-api",
        "deployment_id": str(deployment_id),
        "environment": "production",
        "sha": sha,
        "ref": "main",
        "status": status,
        "status_raw": status,
        "created_at": at,
        "finished_at": at,
        "url": None,
        "collected_at": at,
        "commits": None,
        "redeploy_of": None,
    }


def stored_marks(store: ResultsStore) -> dict[str, tuple[str | None, Any]]:
    t = schema.ci_deployments
    with store.engine.connect() as conn:
        return {r.deployment_id: (r.redeploy_of, r.collected_at) for r in conn.execute(sa.select(t))}


def test_deployments_are_stored_marked_as_redeploys_and_collecting_again_writes_nothing(
    results_store: ResultsStore,
) -> None:
    """On SQLite and PostgreSQL: a redeploy of an old SHA names the earlier deployment, also when that one
    was stored by an earlier collection (GitLab lists only recently updated deployments); a stored row whose
    mark changes is updated; the same rows again change nothing (not even ``collected_at``)."""
    store = results_store
    days: set[str] = set()
    collect._write_deployments(store, [deployment(1, "a"), deployment(2, "b", "running")], days)
    assert {k: v[0] for k, v in stored_marks(store).items()} == {"1": None, "2": None}
    assert days == {"2026-11-20"}
    # later: 2 succeeded, 3 goes back to a (the rollback of 1)
    later = [deployment(2, "b"), deployment(3, "a")]
    collect._write_deployments(store, later, days)
    assert {k: v[0] for k, v in stored_marks(store).items()} == {"1": None, "2": None, "3": "1"}
    # a deployment collected late, between 1 and 2 (another SHA): 2 is not a redeploy, 3 still is
    collect._write_deployments(store, [deployment(4, "c", hour=1)], days)  # 1 then 4 (ids as numbers)
    marks = stored_marks(store)
    assert {k: v[0] for k, v in marks.items()} == {"1": None, "2": None, "3": "1", "4": None}
    # the same collection again: nothing written
    collect._write_deployments(store, [{**r, "collected_at": r["collected_at"] + DAY} for r in later], days)
    assert stored_marks(store) == marks
    # a stored mark that went stale (e.g. written before the column existed) is fixed by the next collection
    t = schema.ci_deployments
    with store.begin() as conn:
        conn.execute(sa.update(t).where(t.c.deployment_id == "3").values(redeploy_of=None))
    collect._write_deployments(store, [deployment(5, "d", hour=6)], days)
    assert {k: v[0] for k, v in stored_marks(store).items()} == {"1": None, "2": None, "3": "1", "4": None, "5": None}
