"""GitLab sandbox: REST API v4 (auth, ids, paging, jobs, traces, retry), controls, webhooks, e-mail."""

from __future__ import annotations

import email
import re
import tracemalloc
from datetime import datetime, timedelta
from email import policy
from typing import Any

import pytest
from fastapi.testclient import TestClient

from include.sandbox.app import create_app
from include.sandbox.systems._seed import gitlab_layout
from include.sandbox.systems.gitlab import state as gitlab_state

TOKEN = "glpat-sandbox-token"
AUTH = {"PRIVATE-TOKEN": TOKEN}
API = "/gitlab/api/v4"
CONTROL = "/_sandbox/gitlab"


@pytest.fixture()
def client() -> TestClient:
    return TestClient(create_app(systems=["gitlab"]))


@pytest.fixture()
def scenarios(client: TestClient) -> dict[str, dict[str, Any]]:
    return client.get(f"{CONTROL}/scenarios").json()


def add_pipeline(client: TestClient, project: int | str, jobs: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    r = client.post(f"{CONTROL}/projects/{project}/pipelines", json={"jobs": jobs, **fields})
    assert r.status_code == 200, r.text
    return r.json()


# -- auth and ids ---------------------------------------------------------------------------------
def test_private_token_and_bearer_are_accepted(client: TestClient) -> None:
    assert client.get(f"{API}/projects/1001", headers=AUTH).status_code == 200
    assert client.get(f"{API}/projects/1001", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


@pytest.mark.parametrize(
    "headers", [{}, {"PRIVATE-TOKEN": "wrong"}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}]
)
def test_missing_or_wrong_token_is_401(client: TestClient, headers: dict[str, str]) -> None:
    r = client.get(f"{API}/projects/1001/pipelines", headers=headers)
    assert r.status_code == 401
    assert r.json() == {"message": "401 Unauthorized"}


def test_tokens_are_configurable(client: TestClient) -> None:
    assert client.put(f"{CONTROL}/tokens", json={"tokens": ["glpat-other"]}).json() == {"tokens": ["glpat-other"]}
    assert client.get(f"{API}/projects/1001", headers=AUTH).status_code == 401
    assert client.get(f"{API}/projects/1001", headers={"PRIVATE-TOKEN": "glpat-other"}).status_code == 200


def test_project_by_url_encoded_path_with_nested_groups(client: TestClient) -> None:
    by_id = client.get(f"{API}/projects/1001", headers=AUTH).json()
    path = by_id["path_with_namespace"]
    assert path.count("/") == 4  # acme/platform/backend/services/<project>
    by_path = client.get(f"{API}/projects/{path.replace('/', '%2F')}", headers=AUTH).json()
    assert by_path == by_id
    assert by_id["namespace"]["full_path"] == path.rsplit("/", 1)[0]
    assert by_id["name_with_namespace"].startswith("Acme / Platform / Backend / Services / ")
    encoded = client.get(f"{API}/projects/{path.replace('/', '%2F')}/pipelines", headers=AUTH, params={"per_page": 1})
    assert encoded.status_code == 200 and encoded.json()
    next_url = re.search(r'<([^>]+)>; rel="next"', encoded.headers["link"]).group(1)
    assert path.replace("/", "%2F") in next_url  # Link keeps the id encoded, so it can be followed
    assert client.get(next_url, headers=AUTH).headers["x-page"] == "2"
    # unencoded slashes are not an id: GitLab answers 404
    assert client.get(f"{API}/projects/{path}/pipelines", headers=AUTH).status_code == 404
    assert client.get(f"{API}/projects/acme%2Fnope", headers=AUTH).json() == {"message": "404 Project Not Found"}


def test_seed_uses_the_shared_layout(client: TestClient) -> None:
    from include.sandbox.systems._seed import gitlab_layout

    _, projects = gitlab_layout(0)
    for seed in (projects[0], projects[-1], next(p for p in projects if p.name == "服务网关")):
        got = client.get(f"{API}/projects/{seed.id}", headers=AUTH).json()
        assert (got["name"], got["path_with_namespace"]) == (seed.name, seed.path_with_namespace)


# -- pipelines and paging -------------------------------------------------------------------------
def test_pipeline_list_headers_and_links(client: TestClient) -> None:
    r = client.get(f"{API}/projects/1001/pipelines", headers=AUTH, params={"per_page": 2, "page": 2, "ref": "main"})
    total = int(r.headers["x-total"])
    assert total >= 4
    assert (r.headers["x-page"], r.headers["x-per-page"], r.headers["x-prev-page"], r.headers["x-next-page"]) == (
        "2",
        "2",
        "1",
        "3",
    )
    assert r.headers["x-total-pages"] == str(-(-total // 2))
    rels = {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', r.headers["link"])}
    assert set(rels) == {"prev", "next", "first", "last"}
    assert (
        rels["next"].startswith("http://testserver/gitlab/api/v4/projects/1001/pipelines?")
        and "ref=main" in rels["next"]
    )
    assert "page=3" in rels["next"] and f"page={-(-total // 2)}" in rels["last"]
    ids = [p["id"] for p in r.json()]
    assert ids == sorted(ids, reverse=True)
    item = r.json()[0]
    assert set(item) >= {
        "id",
        "iid",
        "project_id",
        "sha",
        "ref",
        "status",
        "source",
        "created_at",
        "updated_at",
        "web_url",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", item["created_at"])


def test_last_page_has_empty_next_and_per_page_is_capped(client: TestClient) -> None:
    r = client.get(f"{API}/projects/1001/pipelines", headers=AUTH, params={"per_page": 500})
    assert r.headers["x-per-page"] == "100"
    assert r.headers["x-next-page"] == "" and r.headers["x-prev-page"] == ""
    assert 'rel="next"' not in r.headers["link"]


def test_more_than_10000_records_omit_totals_and_last(client: TestClient) -> None:
    made = client.post(f"{CONTROL}/projects/1001/synthetic-pipelines", json={"count": 20_000}).json()
    assert made["total"] > 10_000
    r = client.get(f"{API}/projects/1001/pipelines", headers=AUTH, params={"per_page": 100, "page": 2})
    assert r.status_code == 200 and len(r.json()) == 100
    assert "x-total" not in r.headers and "x-total-pages" not in r.headers
    assert 'rel="last"' not in r.headers["link"] and 'rel="next"' in r.headers["link"]
    # walking by x-next-page reaches the end; the oldest pipeline is the first synthetic one
    last_page = -(-made["total"] // 100)
    tail = client.get(f"{API}/projects/1001/pipelines", headers=AUTH, params={"per_page": 100, "page": last_page})
    assert tail.headers["x-next-page"] == "" and tail.json()[-1]["id"] == made["first_id"]
    one = client.get(f"{API}/projects/1001/pipelines/{made['last_id']}", headers=AUTH).json()
    assert one["status"] == "success" and one["source"] == "schedule"
    # a filter that brings the count back under the limit restores the totals
    recent = client.get(f"{API}/projects/1001/pipelines", headers=AUTH, params={"source": "push"})
    assert int(recent.headers["x-total"]) == made["total"] - 20_000


def test_pipeline_filters_and_ordering(client: TestClient, scenarios: dict[str, Any]) -> None:
    s = scenarios["compile"]
    r = client.get(f"{API}/projects/{s['project_id']}/pipelines", headers=AUTH, params={"ref": s["ref"]})
    assert [p["id"] for p in r.json()] == [s["pipeline_id"], s["good_pipeline_id"]]
    failed = client.get(f"{API}/projects/{s['project_id']}/pipelines", headers=AUTH, params={"status": "failed"}).json()
    assert [p["id"] for p in failed] == [s["pipeline_id"]]
    asc = client.get(
        f"{API}/projects/{s['project_id']}/pipelines", headers=AUTH, params={"sort": "asc", "order_by": "updated_at"}
    ).json()
    assert [p["updated_at"] for p in asc] == sorted(p["updated_at"] for p in asc)
    newest = client.get(f"{API}/projects/{s['project_id']}/pipelines/{s['pipeline_id']}", headers=AUTH).json()
    watermark = datetime.fromisoformat(asc[-2]["updated_at"]) + timedelta(seconds=1)
    after = client.get(
        f"{API}/projects/{s['project_id']}/pipelines", headers=AUTH, params={"updated_after": watermark.isoformat()}
    ).json()
    assert [p["id"] for p in after] == [newest["id"]]
    branches = client.get(
        f"{API}/projects/{s['project_id']}/pipelines", headers=AUTH, params={"scope": "branches"}
    ).json()
    assert sorted(p["ref"] for p in branches) == sorted({"main", s["ref"]})
    bad = client.get(f"{API}/projects/{s['project_id']}/pipelines", headers=AUTH, params={"scope": "nope"})
    assert bad.status_code == 400 and bad.json() == {"error": "scope does not have a valid value"}
    assert (
        client.get(
            f"{API}/projects/{s['project_id']}/pipelines", headers=AUTH, params={"updated_after": "yesterday"}
        ).status_code
        == 400
    )


def test_pipeline_detail(client: TestClient, scenarios: dict[str, Any]) -> None:
    s = scenarios["allowed"]
    p = client.get(f"{API}/projects/{s['project_id']}/pipelines/{s['pipeline_id']}", headers=AUTH).json()
    assert p["status"] == "success" and p["detailed_status"]["label"] == "passed with warnings"
    assert {
        "before_sha",
        "tag",
        "yaml_errors",
        "user",
        "started_at",
        "finished_at",
        "committed_at",
        "duration",
        "queued_duration",
        "coverage",
    } <= set(p)
    assert p["web_url"] == f"http://testserver/gitlab/{s['project_path']}/-/pipelines/{s['pipeline_id']}"
    assert client.get(f"{API}/projects/{s['project_id']}/pipelines/1", headers=AUTH).json() == {
        "message": "404 Not found"
    }
    other = scenarios["pytest"]["pipeline_id"]  # exists, but in another project
    assert client.get(f"{API}/projects/{s['project_id']}/pipelines/{other}", headers=AUTH).status_code == 404


# -- jobs -----------------------------------------------------------------------------------------
def test_pipeline_jobs_scope_and_retried(client: TestClient, scenarios: dict[str, Any]) -> None:
    s = scenarios["pytest"]
    url = f"{API}/projects/{s['project_id']}/pipelines/{s['pipeline_id']}/jobs"
    latest = client.get(url, headers=AUTH).json()
    # ordered by id: the retried unit-tests attempt is the newest job
    assert [j["name"] for j in latest] == ["build", "lint", "deploy-staging", "unit-tests"]
    failed = client.get(url, headers=AUTH, params={"scope[]": ["failed"]}).json()
    assert [j["id"] for j in failed] == s["failed_job_ids"]
    assert failed[0]["failure_reason"] == "script_failure" and failed[0]["allow_failure"] is False
    assert failed[0]["web_url"] == f"http://testserver/gitlab/{s['project_path']}/-/jobs/{failed[0]['id']}"
    basic = {
        "id",
        "status",
        "stage",
        "name",
        "ref",
        "tag",
        "coverage",
        "created_at",
        "started_at",
        "finished_at",
        "erased_at",
    }
    assert basic | {"duration", "queued_duration", "user", "commit", "pipeline"} <= set(failed[0])
    assert all("failure_reason" not in j for j in latest if j["status"] != "failed")
    several = client.get(url, headers=AUTH, params={"scope[]": ["failed", "skipped"]}).json()
    assert {j["status"] for j in several} == {"failed", "skipped"}
    assert client.get(url, headers=AUTH, params={"scope": "success"}).json() == [
        j for j in latest if j["status"] == "success"
    ]
    attempts = client.get(url, headers=AUTH, params={"scope[]": "failed", "include_retried": "true"}).json()
    assert [j["name"] for j in attempts] == ["unit-tests", "unit-tests"] and attempts[0]["id"] < attempts[1]["id"]
    assert client.get(url, headers=AUTH, params={"scope[]": "nope"}).status_code == 400
    paged = client.get(url, headers=AUTH, params={"per_page": 1, "page": 2})
    assert paged.headers["x-total"] == "4" and [j["name"] for j in paged.json()] == ["lint"]


def test_seeded_failure_kinds(client: TestClient, scenarios: dict[str, Any]) -> None:
    def failed_job(key: str) -> dict[str, Any]:
        s = scenarios[key]
        return client.get(f"{API}/projects/{s['project_id']}/jobs/{s['failed_job_ids'][0]}", headers=AUTH).json()

    assert failed_job("system")["failure_reason"] == "runner_system_failure"
    allowed = failed_job("allowed")
    assert allowed["allow_failure"] is True and allowed["status"] == "failed"
    assert failed_job("compile")["failure_reason"] == "script_failure"
    bridge = scenarios["bridge"]
    bridges = client.get(
        f"{API}/projects/{bridge['project_id']}/pipelines/{bridge['pipeline_id']}/bridges", headers=AUTH
    ).json()
    assert [(b["name"], b["failure_reason"], b["downstream_pipeline"]) for b in bridges] == [
        ("trigger-docs", "downstream_pipeline_creation_failed", None)
    ]
    good = client.get(
        f"{API}/projects/{bridge['project_id']}/pipelines/{bridge['good_pipeline_id']}/bridges", headers=AUTH
    ).json()
    assert good[0]["status"] == "success" and good[0]["downstream_pipeline"]["id"] > bridge["good_pipeline_id"]
    running = scenarios["running"]
    assert (
        client.get(f"{API}/projects/{running['project_id']}/pipelines/{running['pipeline_id']}", headers=AUTH).json()[
            "status"
        ]
        == "running"
    )


def trace(client: TestClient, project: int, job_id: int) -> str:
    r = client.get(f"{API}/projects/{project}/jobs/{job_id}/trace", headers=AUTH)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return r.text


def test_failed_trace_and_its_passing_counterpart(client: TestClient, scenarios: dict[str, Any]) -> None:
    for key in ("pytest", "compile", "dbt"):
        s = scenarios[key]
        bad = trace(client, s["project_id"], s["failed_job_ids"][0])
        assert re.search(r"\x1b\[0Ksection_start:\d+:step_script\r\x1b\[0K", bad)
        assert re.search(r"\x1b\[0Ksection_end:\d+:after_script\r\x1b\[0K", bad)
        assert "ERROR: Job failed: exit code 1" in bad.rstrip().splitlines()[-1]
        name = client.get(f"{API}/projects/{s['project_id']}/jobs/{s['failed_job_ids'][0]}", headers=AUTH).json()[
            "name"
        ]
        jobs = client.get(
            f"{API}/projects/{s['project_id']}/pipelines/{s['good_pipeline_id']}/jobs", headers=AUTH
        ).json()
        good_job = next(j for j in jobs if j["name"] == name)
        assert good_job["status"] == "success"
        assert "Job succeeded" in trace(client, s["project_id"], good_job["id"])
    pytest_log = trace(client, scenarios["pytest"]["project_id"], scenarios["pytest"]["failed_job_ids"][0])
    assert "AssertionError" in pytest_log and "\x1b[31m" in pytest_log
    assert "undefined: backoffPolicy" in trace(
        client, scenarios["compile"]["project_id"], scenarios["compile"]["failed_job_ids"][0]
    )
    stamped = trace(client, scenarios["dbt"]["project_id"], scenarios["dbt"]["failed_job_ids"][0])
    assert all(
        re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z [0-9a-f]{2}[EO][+ ]", line)
        for line in stamped.rstrip("\n").split("\n")
    )
    system = trace(client, scenarios["system"]["project_id"], scenarios["system"]["failed_job_ids"][0])
    assert "step_script" not in system and "ERROR: Job failed (system failure)" in system


def test_big_generated_trace_is_streamed_not_built(client: TestClient) -> None:
    size = 60 * 1024 * 1024
    made = add_pipeline(
        client,
        1001,
        [{"name": "huge", "status": "failed", "failure_reason": "script_failure", "trace": {"generate_bytes": size}}],
    )
    job_id = made["jobs"][0]["id"]
    tracemalloc.start()
    try:
        received, chunks, tail = 0, 0, b""
        with client.stream("GET", f"{API}/projects/1001/jobs/{job_id}/trace", headers=AUTH) as r:
            assert r.status_code == 200 and "content-length" not in r.headers  # streamed, not a body
            for chunk in r.iter_raw():
                received, chunks, tail = received + len(chunk), chunks + 1, (tail + chunk)[-100:]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == size and chunks > 100
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes: the trace was materialised"
    assert tail.rstrip().endswith(b"ERROR: Job failed: exit code 1\x1b[0;m")


def test_binary_and_file_traces(client: TestClient, tmp_path: Any) -> None:
    log = tmp_path / "job.log"
    log.write_bytes(b"from a file\n\xff\xfe\n")
    made = add_pipeline(
        client,
        1001,
        [
            {"name": "bin", "status": "failed", "trace": {"generate_bytes": 100_000, "binary": True}},
            {"name": "file", "status": "failed", "trace": {"trace_from_file": str(log)}},
            {"name": "none", "status": "failed"},
        ],
    )
    ids = {j["name"]: j["id"] for j in made["jobs"]}
    binary = client.get(f"{API}/projects/1001/jobs/{ids['bin']}/trace", headers=AUTH).content
    assert len(binary) == 100_000 and b"\x00" in binary
    assert client.get(f"{API}/projects/1001/jobs/{ids['file']}/trace", headers=AUTH).content == log.read_bytes()
    log.unlink()
    assert client.get(f"{API}/projects/1001/jobs/{ids['file']}/trace", headers=AUTH).json() == {
        "message": "404 Not found"
    }
    assert client.get(f"{API}/projects/1001/jobs/{ids['none']}/trace", headers=AUTH).json() == {
        "message": "404 Not found"
    }
    bad = client.post(
        f"{CONTROL}/projects/1001/pipelines", json={"jobs": [{"name": "x", "trace": {"trace_from_file": str(log)}}]}
    )
    assert bad.status_code == 400


def test_deleted_job_answers_404(client: TestClient, scenarios: dict[str, Any]) -> None:
    s = scenarios["compile"]
    job_id = s["failed_job_ids"][0]
    assert client.delete(f"{CONTROL}/jobs/{job_id}").json() == {"deleted": job_id}
    for method, path in (("GET", ""), ("GET", "/trace"), ("POST", "/retry")):
        r = client.request(method, f"{API}/projects/{s['project_id']}/jobs/{job_id}{path}", headers=AUTH)
        assert r.status_code == 404 and r.json() == {"message": "404 Not found"}
    jobs = client.get(f"{API}/projects/{s['project_id']}/pipelines/{s['pipeline_id']}/jobs", headers=AUTH).json()
    assert job_id not in [j["id"] for j in jobs]


# -- retry, cancel, test reports ------------------------------------------------------------------
def test_job_retry_creates_a_new_job(client: TestClient, scenarios: dict[str, Any]) -> None:
    s = scenarios["compile"]
    old_id = s["failed_job_ids"][0]
    r = client.post(f"{API}/projects/{s['project_id']}/jobs/{old_id}/retry", headers=AUTH)
    assert r.status_code == 201
    new = r.json()
    assert new["id"] > old_id and new["name"] == "build" and new["status"] == "pending" and "failure_reason" not in new
    jobs_url = f"{API}/projects/{s['project_id']}/pipelines/{s['pipeline_id']}/jobs"
    assert new["id"] in [j["id"] for j in client.get(jobs_url, headers=AUTH).json()]
    assert old_id not in [j["id"] for j in client.get(jobs_url, headers=AUTH).json()]
    assert old_id in [j["id"] for j in client.get(jobs_url, headers=AUTH, params={"include_retried": "true"}).json()]
    again = client.post(f"{API}/projects/{s['project_id']}/jobs/{old_id}/retry", headers=AUTH)
    assert again.status_code == 403 and again.json() == {"message": "403 Forbidden - Job is not retryable"}
    assert (
        client.get(f"{API}/projects/{s['project_id']}/pipelines/{s['pipeline_id']}", headers=AUTH).json()["status"]
        == "pending"
    )
    done = client.post(f"{CONTROL}/jobs/{new['id']}/status", json={"status": "success", "trace": "ok\n"}).json()
    assert done["status"] == "success" and done["finished_at"] is not None
    hook = client.post(f"{CONTROL}/hooks/job", json={"job_id": new["id"]}).json()["body"]
    assert hook["retries_count"] == 1


def test_pipeline_retry_and_cancel(client: TestClient, scenarios: dict[str, Any]) -> None:
    s = scenarios["system"]
    url = f"{API}/projects/{s['project_id']}/pipelines/{s['pipeline_id']}"
    retried = client.post(f"{url}/retry", headers=AUTH)
    assert retried.status_code == 201 and retried.json()["status"] == "running"
    statuses = {j["name"]: j["status"] for j in client.get(f"{url}/jobs", headers=AUTH).json()}
    assert statuses["integration-tests"] == "pending" and statuses["deploy-staging"] == "created"
    canceled = client.post(f"{url}/cancel", headers=AUTH)
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    good = scenarios["system"]["good_pipeline_id"]
    assert client.post(f"{API}/projects/{s['project_id']}/pipelines/{good}/retry", headers=AUTH).status_code == 403


def test_test_report_and_summary(client: TestClient, scenarios: dict[str, Any]) -> None:
    s = scenarios["pytest"]
    url = f"{API}/projects/{s['project_id']}/pipelines/{s['pipeline_id']}"
    report = client.get(f"{url}/test_report", headers=AUTH).json()
    assert (report["total_count"], report["success_count"], report["failed_count"]) == (12, 11, 1)
    suite = report["test_suites"][0]
    failing = [c for c in suite["test_cases"] if c["status"] == "failed"]
    assert suite["name"] == "unit-tests" and len(failing) == 1 and "AssertionError" in failing[0]["stack_trace"]
    summary = client.get(f"{url}/test_report_summary", headers=AUTH).json()
    assert summary["total"]["failed"] == 1 and summary["test_suites"][0]["build_ids"] == s["failed_job_ids"]
    empty = client.get(
        f"{API}/projects/{s['project_id']}/pipelines/{scenarios['pytest']['good_pipeline_id']}/test_report",
        headers=AUTH,
    ).json()
    assert empty["failed_count"] == 0


def test_injected_429_uses_gitlab_error_format(client: TestClient) -> None:
    client.post(
        "/_sandbox/faults",
        json={"system": "gitlab", "path": r"/jobs/\d+/trace", "status": 429, "retry_after": 3, "times": 1},
    )
    r = client.get(f"{API}/projects/1001/jobs/1/trace", headers=AUTH)
    assert r.status_code == 429 and r.json() == {"message": "429 Too Many Requests"}
    assert r.headers["retry-after"] == "3" and r.headers["ratelimit-remaining"] == "0"
    assert {"ratelimit-limit", "ratelimit-observed", "ratelimit-reset", "ratelimit-resettime"} <= set(r.headers)
    client.post("/_sandbox/faults", json={"system": "gitlab", "status": 500, "times": 1})
    assert client.get(f"{API}/projects/1001", headers=AUTH).json() == {"message": "500 Internal Server Error"}


# -- controls -------------------------------------------------------------------------------------
def test_add_project_and_pipeline_controls(client: TestClient) -> None:
    project = client.post(
        f"{CONTROL}/projects", json={"name": "Nouveau Projet", "namespace_path": "acme/new-team"}
    ).json()
    assert project["path_with_namespace"] == "acme/new-team/nouveau-projet" and project["namespace"]["parent_id"] == 100
    assert (
        client.post(
            f"{CONTROL}/projects", json={"name": "Nouveau Projet", "namespace_path": "acme/new-team"}
        ).status_code
        == 409
    )
    made = add_pipeline(
        client,
        "acme%2Fnew-team%2Fnouveau-projet",
        [
            {"name": "build", "stage": "build"},
            {
                "name": "flaky",
                "stage": "test",
                "status": "failed",
                "failure_reason": "script_failure",
                "allow_failure": True,
                "trace": "boom\n",
            },
            {"name": "docs", "stage": "test", "bridge": True},
        ],
        ref="feature/x",
        author="ana.lima",
    )
    assert made["status"] == "success" and made["detailed_status"]["label"] == "passed with warnings"
    assert made["ref"] == "feature/x" and made["user"]["username"] == "ana.lima"
    assert [j["name"] for j in made["jobs"]] == ["build", "flaky", "docs"] and "downstream_pipeline" in made["jobs"][2]
    listed = client.get(f"{API}/projects/{project['id']}/pipelines", headers=AUTH).json()
    assert [p["id"] for p in listed] == [made["id"]]
    assert (
        client.get(f"{API}/projects/{project['id']}/jobs/{made['jobs'][1]['id']}/trace", headers=AUTH).text == "boom\n"
    )
    bad = client.post(
        f"{CONTROL}/projects/{project['id']}/pipelines",
        json={"jobs": [{"name": "x", "status": "failed", "failure_reason": "nope"}]},
    )
    assert bad.status_code == 422


# -- webhooks and e-mail --------------------------------------------------------------------------
HOOK_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"


def test_pipeline_hook_payload_and_headers(client: TestClient, scenarios: dict[str, Any]) -> None:
    s = scenarios["pytest"]
    made = client.post(
        f"{CONTROL}/hooks/pipeline", json={"pipeline_id": s["pipeline_id"], "token": "hook-secret"}
    ).json()
    headers, body = made["headers"], made["body"]
    assert headers["X-Gitlab-Event"] == "Pipeline Hook" and headers["X-Gitlab-Token"] == "hook-secret"
    assert headers["X-Gitlab-Instance"] == "http://testserver/gitlab" and headers["Content-Type"] == "application/json"
    assert {"X-Gitlab-Webhook-UUID", "X-Gitlab-Event-UUID", "Idempotency-Key", "User-Agent"} <= set(headers)
    assert set(body) == {"object_kind", "object_attributes", "merge_request", "user", "project", "commit", "builds"}
    attrs = body["object_attributes"]
    assert body["object_kind"] == "pipeline" and attrs["id"] == s["pipeline_id"] and attrs["status"] == "failed"
    assert re.fullmatch(HOOK_TIME, attrs["created_at"]) and re.fullmatch(HOOK_TIME, attrs["finished_at"])
    assert attrs["stages"] == ["build", "test", "deploy"] and attrs["detailed_status"] == "failed"
    assert body["project"]["path_with_namespace"] == s["project_path"]
    builds = body["builds"]
    assert [b["name"] for b in builds].count("unit-tests") == 1  # latest attempts only
    failed = next(b for b in builds if b["status"] == "failed")
    assert failed["id"] == s["failed_job_ids"][0] and failed["failure_reason"] == "script_failure"
    assert all(b["failure_reason"] is None for b in builds if b["status"] != "failed")
    assert {"runner", "artifacts_file", "environment", "when", "manual", "allow_failure", "queued_duration"} <= set(
        failed
    )
    again = client.post(f"{CONTROL}/hooks/pipeline", json={"pipeline_id": s["pipeline_id"]}).json()["headers"]
    assert "X-Gitlab-Token" not in again
    assert (
        again["X-Gitlab-Webhook-UUID"] == headers["X-Gitlab-Webhook-UUID"]
        and again["Idempotency-Key"] != headers["Idempotency-Key"]
    )
    resend = {
        "pipeline_id": s["pipeline_id"],
        "event_uuid": headers["X-Gitlab-Event-UUID"],
        "idempotency_key": headers["Idempotency-Key"],
    }
    assert (
        client.post(f"{CONTROL}/hooks/pipeline", json=resend).json()["headers"]["Idempotency-Key"]
        == headers["Idempotency-Key"]
    )


def test_job_hook_payload(client: TestClient, scenarios: dict[str, Any]) -> None:
    s = scenarios["pytest"]
    made = client.post(f"{CONTROL}/hooks/job", json={"job_id": s["failed_job_ids"][0], "token": "t"}).json()
    body = made["body"]
    assert made["headers"]["X-Gitlab-Event"] == "Job Hook"
    assert body["object_kind"] == "build" and body["build_id"] == s["failed_job_ids"][0]
    assert (
        body["build_status"] == "failed"
        and body["build_failure_reason"] == "script_failure"
        and body["build_allow_failure"] is False
    )
    assert body["retries_count"] == 1  # the seeded unit-tests job was retried once
    assert body["commit"]["id"] == s["pipeline_id"] == body["pipeline_id"]  # commit.id is the pipeline id
    assert body["sha"] == body["commit"]["sha"] and re.fullmatch(HOOK_TIME, body["build_finished_at"])
    assert body["project_name"].startswith("Acme / Platform / ") and body["project_id"] == s["project_id"]
    assert {"repository", "runner", "user", "project", "environment", "tag", "before_sha"} <= set(body)


def parse_email(client: TestClient, **fields: Any) -> email.message.EmailMessage:
    r = client.post(f"{CONTROL}/emails/pipeline", json=fields)
    assert r.status_code == 200, r.text
    msg = email.message_from_bytes(r.json()["eml"].encode(), policy=policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


def test_failed_pipeline_email(client: TestClient, scenarios: dict[str, Any]) -> None:
    s = scenarios["dbt"]  # the project named "Données Analytics"
    msg = parse_email(client, pipeline_id=s["pipeline_id"], to="oncall@example.test")
    sha = client.get(f"{API}/projects/{s['project_id']}/pipelines/{s['pipeline_id']}", headers=AUTH).json()["sha"]
    assert msg["Subject"] == f"Données Analytics | Failed pipeline for main | {sha[:8]}"
    assert msg["From"] == "GitLab <gitlab@gitlab.example.test>" and msg["To"] == "oncall@example.test"
    assert msg["Message-ID"].endswith("@gitlab.example.test>") and msg["Date"]
    assert msg["X-GitLab-Project"] == "Données Analytics" and msg["X-GitLab-Project-Id"] == str(s["project_id"])
    assert msg["X-GitLab-Project-Path"] == s["project_path"]
    assert (
        msg["List-Id"]
        == f"{s['project_path']} <{s['project_id']}.donnees-analytics.data-team.acme.gitlab.example.test>"
    )
    assert (msg["X-GitLab-Pipeline-Id"], msg["X-GitLab-Pipeline-Ref"], msg["X-GitLab-Pipeline-Status"]) == (
        str(s["pipeline_id"]),
        "main",
        "failed",
    )
    assert msg["X-GitLab-NotificationReason"] is None
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content()
    lines = text.splitlines()
    assert lines[0] == f"Pipeline #{s['pipeline_id']} has failed!"
    order = ["Project: ", "Branch: ", "Commit: ", "Commit Message: ", "Commit Author: "]
    order += [f"Pipeline #{s['pipeline_id']} ( ", "had 1 failed job.", "Job #", "Stage: ", "Name: "]
    positions = [next(i for i, line in enumerate(lines) if line.startswith(prefix)) for prefix in order]
    assert positions == sorted(positions)
    job_id = s["failed_job_ids"][0]
    assert f"Job #{job_id} ( http://testserver/gitlab/{s['project_path']}/-/jobs/{job_id} )" in lines
    assert "Name: dbt-build" in lines and "Stage: test" in lines
    assert f"/-/jobs/{job_id}" in msg.get_body(("html",)).get_content()


def test_success_and_fixed_email_with_custom_host(client: TestClient, scenarios: dict[str, Any]) -> None:
    s = scenarios["pytest"]
    name = client.get(f"{API}/projects/{s['project_id']}", headers=AUTH).json()["name"]
    fixed = parse_email(client, pipeline_id=s["good_pipeline_id"], status="fixed", host="git.corp.test")
    assert fixed["Subject"].startswith(f"{name} | Fixed pipeline for main | ")
    assert fixed.get_body(("plain",)).get_content().startswith("Your pipeline has been fixed!")
    assert fixed["From"] == "GitLab <gitlab@git.corp.test>" and fixed["Reply-To"] == "GitLab <noreply@git.corp.test>"
    assert fixed["X-GitLab-Pipeline-Status"] == "success" and fixed["List-Id"].endswith(".git.corp.test>")
    success = parse_email(client, pipeline_id=s["good_pipeline_id"])
    assert " | Successful pipeline for main | " in success["Subject"]
    assert "successfully completed 4 jobs in 3 stages." in success.get_body(("plain",)).get_content()
    subject = re.compile(
        r"^(?:(?P<proj>.+?) \| )?(?P<st>Failed|Successful|Fixed) pipeline for (?P<ref>.+?) \| (?P<sha>[0-9a-f]{7,40})"
    )
    assert subject.match(success["Subject"]).group("st") == "Successful"  # the tolerant regex of gitlab.md §1.1


def test_state_timestamps_helpers() -> None:
    assert gitlab_state.iso(0) == "1970-01-01T00:00:00.000Z"
    assert gitlab_state.hook_time(0) == "1970-01-01 00:00:00 UTC"


# -- CI history (history.py): groups, windows, attempts, child pipelines, deployments ---------------
DAY = 86_400


@pytest.fixture()
def history(client: TestClient) -> dict[str, Any]:
    return client.get(f"{CONTROL}/history").json()


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def stamp(epoch: float) -> str:
    return gitlab_state.iso(epoch)


def listing(client: TestClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of a list route (100 per page)."""
    out, page = [], 1
    while True:
        r = client.get(f"{API}{path}", headers=AUTH, params={**params, "per_page": 100, "page": page})
        assert r.status_code == 200, r.text
        out += r.json()
        if not r.headers["x-next-page"]:
            return out
        page = int(r.headers["x-next-page"])


def test_group_projects_with_and_without_subgroups(client: TestClient, history: dict[str, Any]) -> None:
    ids = {key: p["id"] for key, p in history["projects"].items()}
    url = f"{API}/groups/payments/projects"
    direct = client.get(url, headers=AUTH, params={"order_by": "id", "sort": "asc"}).json()
    assert [p["id"] for p in direct] == [ids["checkout"], ids["ledger"]]
    nested = client.get(url, headers=AUTH, params={"include_subgroups": "true", "order_by": "id", "sort": "asc"})
    assert [p["id"] for p in nested.json()] == [ids["checkout"], ids["ledger"], ids["ios"], ids["legacy"]]
    assert nested.headers["x-total"] == "4"
    ios = next(p for p in nested.json() if p["id"] == ids["ios"])
    assert ios["path_with_namespace"] == "payments/mobile/ios-app" and ios["namespace"]["parent_id"] == 200
    active = client.get(url, headers=AUTH, params={"include_subgroups": "true", "archived": "false"}).json()
    assert sorted(p["id"] for p in active) == [ids["checkout"], ids["ledger"], ids["ios"]]
    archived = client.get(url, headers=AUTH, params={"include_subgroups": "true", "archived": "true"}).json()
    assert [(p["id"], p["archived"]) for p in archived] == [(ids["legacy"], True)]
    # default order: created_at desc (legacy-sdk was created last)
    assert [p["id"] for p in client.get(url, headers=AUTH, params={"include_subgroups": 1}).json()] == [
        ids["legacy"],
        ids["ios"],
        ids["ledger"],
        ids["checkout"],
    ]
    by_id = client.get(f"{API}/groups/201/projects", headers=AUTH).json()
    assert [p["id"] for p in by_id] == [ids["legacy"], ids["ios"]]
    assert [p["id"] for p in client.get(f"{API}/groups/payments%2Fmobile/projects", headers=AUTH).json()] == [
        p["id"] for p in by_id
    ]
    simple = client.get(url, headers=AUTH, params={"simple": "true", "search": "LEDGER"}).json()
    assert [p["path"] for p in simple] == ["ledger-service"] and "visibility" not in simple[0]
    paged = client.get(url, headers=AUTH, params={"include_subgroups": "true", "per_page": 1, "page": 2})
    assert len(paged.json()) == 1 and paged.headers["x-next-page"] == "3"
    acme = listing(client, "/groups/acme/projects", include_subgroups="true")
    _, seeds = gitlab_layout(0)
    assert sorted(p["id"] for p in acme) == sorted(sp.id for sp in seeds if f"{sp.namespace_path}/".startswith("acme/"))
    for bad in ("nope", "999", "sandbox-bot"):  # a user's namespace is no group
        r = client.get(f"{API}/groups/{bad}/projects", headers=AUTH)
        assert (r.status_code, r.json()) == (404, {"message": "404 Group Not Found"})
    assert client.get(url, headers=AUTH, params={"order_by": "stars"}).json() == {
        "error": "order_by does not have a valid value"
    }
    assert client.get(url, headers={}).status_code == 401


def test_history_lies_in_whole_days_and_does_not_depend_on_the_time_of_day() -> None:
    midnight = 1_796_342_400.0  # 2026-12-04T00:00:00Z

    def seeded(hour: float) -> gitlab_state.GitLabState:
        return gitlab_state.seeded_state(7, lambda: midnight + hour * 3600)

    early, late = seeded(0.5), seeded(23.5)
    assert early.history["day0_epoch"] == late.history["day0_epoch"] == midnight

    def shape(state: gitlab_state.GitLabState) -> list[tuple[Any, ...]]:
        return [
            (p.id, p.project.id, p.ref, p.commit.sha, p.status, p.created_at, p.updated_at, p.duration, len(p.jobs))
            for p in state.pipelines.values()
            if p.project.id >= 2000
        ]

    assert shape(early) == shape(late) and len(shape(early)) == sum(early.history["pipeline_counts"].values())
    moved = {early.history["late_retry"]["pipeline_id"], early.history["rollback"]["pipeline_id"]}
    for p in early.pipelines.values():
        if p.project.id < 2000 or p.project.archived:
            continue
        day = int((midnight - p.created_at) // DAY) + 1
        assert 1 <= day <= 35, (p.id, day)
        assert p.finished_at is not None and p.finished_at < midnight
        if p.id not in moved:  # created and updated on the same day (retries days later move these two)
            assert int((midnight - p.updated_at) // DAY) + 1 == day, p.id
    # the ids of the triage scenarios are the ones the triage seed alone gives
    assert all(p.id < 1_500_000_100 for p in early.pipelines.values() if p.project.id < 2000)
    assert min(p.id for p in early.pipelines.values() if p.project.id >= 2000) > max(
        p.id for p in early.pipelines.values() if p.project.id < 2000
    )
    other = gitlab_state.seeded_state(8, lambda: midnight + 3600)
    assert shape(other) != shape(early)  # the seed decides the history


def test_updated_window_is_inclusive_at_both_ends(client: TestClient) -> None:
    start = 1_790_000_000
    made = add_pipeline(
        client,
        2002,
        [{"name": "build", "stage": "build", "queued": 5, "duration": 95}],
        created_at=start,
        ref="feature/window",
    )
    updated = start + 100
    assert made["updated_at"] == stamp(updated)
    url = f"{API}/projects/2002/pipelines"

    def ids(**params: Any) -> list[int]:
        return [p["id"] for p in client.get(url, headers=AUTH, params={"ref": "feature/window", **params}).json()]

    assert ids(updated_after=stamp(updated)) == [made["id"]]
    assert ids(updated_before=stamp(updated)) == [made["id"]]
    assert ids(updated_after=stamp(updated), updated_before=stamp(updated)) == [made["id"]]
    assert ids(updated_after=stamp(updated + 0.001)) == []
    assert ids(updated_before=stamp(updated - 0.001)) == []
    assert ids(updated_after="2026-09-01T12:00:00+02:00", updated_before=stamp(updated)) == [made["id"]]


def test_late_retry_moves_the_pipeline_to_the_retry_day(client: TestClient, history: dict[str, Any]) -> None:
    fact, midnight = history["late_retry"], history["day0_epoch"]

    def window(day: int) -> list[int]:
        after, before = midnight - day * DAY, midnight - (day - 1) * DAY - 0.001
        return [
            p["id"]
            for p in listing(
                client,
                f"/projects/{fact['project_id']}/pipelines",
                updated_after=stamp(after),
                updated_before=stamp(before),
                order_by="updated_at",
                sort="asc",
            )
        ]

    assert fact["pipeline_id"] in window(7) and fact["pipeline_id"] not in window(9)
    pipeline = client.get(f"{API}/projects/{fact['project_id']}/pipelines/{fact['pipeline_id']}", headers=AUTH).json()
    assert pipeline["status"] == "success" and pipeline["ref"] == "feature/3ds2"
    summary = client.get(
        f"{API}/projects/{fact['project_id']}/pipelines/{fact['pipeline_id']}/test_report_summary", headers=AUTH
    ).json()
    assert (summary["total"]["count"], summary["total"]["failed"]) == (12, 0)  # the green attempt's report
    assert int((midnight - ts(pipeline["created_at"])) // DAY) + 1 == 9
    assert int((midnight - ts(pipeline["updated_at"])) // DAY) + 1 == 7
    # GitLab's duration is running time only: two days of waiting for the retry are not in it
    assert pipeline["duration"] < 1800 < ts(pipeline["finished_at"]) - ts(pipeline["started_at"])
    counts = history["updated_per_day"]["checkout"]
    assert sum(counts.values()) == history["pipeline_counts"]["checkout"]
    assert all(
        len(window(day)) == counts.get(str(day), 0) for day in (7, 9, 12)
    )  # the control's per-day counts match the API's windows


def test_flaky_job_attempts_on_the_same_sha(client: TestClient, history: dict[str, Any]) -> None:
    assert len(history["flaky"]) == 7
    for fact in history["flaky"]:
        url = f"{API}/projects/{fact['project_id']}/pipelines/{fact['pipeline_id']}"
        pipeline = client.get(url, headers=AUTH).json()
        assert pipeline["status"] == "success" and pipeline["sha"] == fact["sha"]
        latest = [j for j in client.get(f"{url}/jobs", headers=AUTH).json() if j["name"] == fact["job"]]
        assert [(j["id"], j["status"]) for j in latest] == [(fact["retry_job_id"], "success")]
        attempts = [
            j
            for j in client.get(f"{url}/jobs", headers=AUTH, params={"include_retried": "true"}).json()
            if j["name"] == fact["job"]
        ]
        assert [(j["id"], j["status"]) for j in attempts] == [
            (fact["failed_job_id"], "failed"),
            (fact["retry_job_id"], "success"),
        ]
        assert attempts[0]["failure_reason"] == "script_failure" and "failure_reason" not in attempts[1]
        assert {j["commit"]["id"] for j in attempts} == {fact["sha"]}
        assert ts(attempts[1]["created_at"]) >= ts(attempts[0]["finished_at"])
    rerun = history["rerun_pipeline"]
    failed, green = (
        client.get(f"{API}/projects/{rerun['project_id']}/pipelines/{rerun[k]}", headers=AUTH).json()
        for k in ("failed_pipeline_id", "green_pipeline_id")
    )
    assert (failed["status"], green["status"], green["source"]) == ("failed", "success", "web")
    assert failed["sha"] == green["sha"] == rerun["sha"]


def test_red_streaks_on_main(client: TestClient, history: dict[str, Any]) -> None:
    for key in ("red_streak", "overnight_streak"):
        fact = history[key]
        pipelines = [
            p
            for p in listing(client, f"/projects/{fact['project_id']}/pipelines", ref="main", sort="asc")
            if p["source"] == "push"
        ]
        ids = [p["id"] for p in pipelines]
        first, green = ids.index(fact["failed_pipeline_ids"][0]), ids.index(fact["green_pipeline_id"])
        assert ids[first:green] == fact["failed_pipeline_ids"]
        assert [p["status"] for p in pipelines[first - 1 : green + 1]] == [
            "success",
            *["failed"] * len(fact["failed_pipeline_ids"]),
            "success",
        ]
        hours = (ts(fact["ended_at"]) - ts(fact["started_at"])) / 3600
        assert 6 < hours < 13
    overnight = history["overnight_streak"]
    assert ts(overnight["started_at"]) < history["day0_epoch"] - 12 * DAY < ts(overnight["ended_at"])


def test_timeout_queue_and_durations(client: TestClient, history: dict[str, Any]) -> None:
    fact = history["timeout"]
    job = client.get(f"{API}/projects/{fact['project_id']}/jobs/{fact['job_id']}", headers=AUTH).json()
    assert (job["status"], job["failure_reason"], job["duration"]) == ("failed", "job_execution_timeout", 3600.0)
    log = client.get(f"{API}/projects/{fact['project_id']}/jobs/{fact['job_id']}/trace", headers=AUTH).text
    assert (
        log.rstrip().splitlines()[-1].endswith("ERROR: Job failed: execution took longer than 1h0m0s seconds\x1b[0;m")
    )
    url = f"{API}/projects/{fact['project_id']}/pipelines/{fact['pipeline_id']}"
    pipeline = client.get(url, headers=AUTH).json()
    jobs = client.get(f"{url}/jobs", headers=AUTH).json()
    assert pipeline["status"] == "failed"
    # duration: the union of the builds' running periods; queue: first start - creation
    periods = sorted((ts(j["started_at"]), ts(j["finished_at"])) for j in jobs if j["started_at"])
    total, end = 0.0, 0.0
    for start, finish in periods:
        total += max(0.0, finish - max(start, end))
        end = max(end, finish)
    assert pipeline["duration"] == int(total)
    assert pipeline["queued_duration"] == int(ts(pipeline["started_at"]) - ts(pipeline["created_at"]))
    # a job's queue time starts when its stage's turn came, not when the pipeline was created
    build = next(j for j in jobs if j["name"] == "build")
    lint = next(j for j in jobs if j["name"] == "lint")
    assert lint["queued_duration"] == pytest.approx(ts(lint["started_at"]) - ts(build["finished_at"]), abs=0.002)
    assert ts(lint["started_at"]) - ts(lint["created_at"]) > lint["queued_duration"] + build["duration"] - 1
    storm_day = history["queue_storm"]["day"]
    midnight = history["day0_epoch"]
    storm = listing(
        client,
        f"/projects/{history['queue_storm']['project_id']}/pipelines",
        updated_after=stamp(midnight - storm_day * DAY),
        updated_before=stamp(midnight - (storm_day - 1) * DAY - 0.001),
    )
    first = client.get(f"{API}/projects/2001/pipelines/{storm[0]['id']}/jobs", headers=AUTH).json()
    assert storm and all(j["queued_duration"] >= 300 for j in first if j["started_at"])


def test_bridges_link_child_pipelines(client: TestClient, history: dict[str, Any]) -> None:
    children = history["children"]
    assert len(children) > 100
    for fact in children[:5]:
        bridges = client.get(
            f"{API}/projects/{fact['project_id']}/pipelines/{fact['parent_pipeline_id']}/bridges", headers=AUTH
        ).json()
        assert [(b["id"], b["name"]) for b in bridges] == [(fact["bridge_id"], "trigger-integration")]
        downstream = bridges[0]["downstream_pipeline"]
        assert (downstream["id"], downstream["project_id"], downstream["source"]) == (
            fact["child_pipeline_id"],
            fact["project_id"],
            "parent_pipeline",
        )
        child = client.get(
            f"{API}/projects/{fact['project_id']}/pipelines/{fact['child_pipeline_id']}", headers=AUTH
        ).json()
        assert bridges[0]["status"] == child["status"] == "success"
        assert ts(bridges[0]["finished_at"]) >= ts(child["finished_at"]) and child["id"] > fact["parent_pipeline_id"]
        assert [j["name"] for j in client.get(f"{API}/projects/2002/pipelines/{child['id']}/jobs", headers=AUTH).json()]
    failure = history["child_failure"]
    parent = client.get(f"{API}/projects/2002/pipelines/{failure['parent_pipeline_id']}", headers=AUTH).json()
    bridge = client.get(f"{API}/projects/2002/pipelines/{failure['parent_pipeline_id']}/bridges", headers=AUTH).json()[
        0
    ]
    assert parent["status"] == bridge["status"] == bridge["downstream_pipeline"]["status"] == "failed"
    assert bridge["failure_reason"] == "unknown_failure"
    listed = listing(client, "/projects/2002/pipelines", source="parent_pipeline")
    assert len(listed) == len(children) and {p["id"] for p in listed} == {c["child_pipeline_id"] for c in children}


def test_deployments_per_environment_with_failure_and_rollback(client: TestClient, history: dict[str, Any]) -> None:
    facts = history["deployments"]
    pid = facts["project_id"]
    everything = listing(client, f"/projects/{pid}/deployments")
    assert [d["id"] for d in everything] == sorted(d["id"] for d in everything)  # default: id asc
    assert [d["iid"] for d in everything] == list(range(1, len(everything) + 1))
    for env, counts in facts["counts"].items():
        mine = listing(client, f"/projects/{pid}/deployments", environment=env)
        assert len(mine) == sum(counts.values()) and {d["environment"]["name"] for d in mine} == {env}
        for status, n in counts.items():
            assert len(listing(client, f"/projects/{pid}/deployments", environment=env, status=status)) == n
    assert facts["counts"]["staging"]["skipped"] >= 3  # red main pipelines skip their deploy job
    prod = listing(client, f"/projects/{pid}/deployments", environment="production")
    failed = next(d for d in prod if d["id"] == facts["failed_production"]["deployment_id"])
    assert failed["status"] == "failed" and failed["deployable"]["failure_reason"] == "script_failure"
    after = [d for d in prod if d["id"] > failed["id"]]
    assert after[0]["id"] == facts["recovery"]["deployment_id"] and after[0]["status"] == "success"
    rollback = history["rollback"]
    index = next(i for i, d in enumerate(prod) if d["id"] == rollback["deployment_id"])
    earlier = [d["sha"] for d in prod[: index - 1] if d["status"] == "success"]
    assert prod[index]["sha"] == rollback["sha"] in earlier and prod[index - 1]["sha"] != rollback["sha"]
    assert prod[index]["deployable"]["id"] == rollback["job_id"]
    assert prod[index]["deployable"]["pipeline"]["id"] == rollback["pipeline_id"]
    attempts = client.get(
        f"{API}/projects/{pid}/pipelines/{rollback['pipeline_id']}/jobs",
        headers=AUTH,
        params={"include_retried": "true"},
    ).json()
    assert [j["status"] for j in attempts if j["name"] == "deploy-production"] == ["success", "success"]
    one = client.get(f"{API}/projects/{pid}/deployments/{rollback['deployment_id']}", headers=AUTH).json()
    assert one == prod[index]
    assert client.get(f"{API}/projects/{pid}/deployments/1", headers=AUTH).status_code == 404
    assert listing(client, "/projects/2002/deployments") == []
    assert client.get(f"{API}/projects/99999/deployments", headers=AUTH).json() == {"message": "404 Project Not Found"}


def test_deployment_filters_follow_the_deployments_finder(client: TestClient, history: dict[str, Any]) -> None:
    pid, midnight = history["deployments"]["project_id"], history["day0_epoch"]
    url = f"{API}/projects/{pid}/deployments"
    window = {"updated_after": stamp(midnight - 10 * DAY), "updated_before": stamp(midnight - 5 * DAY)}

    def bad(params: dict[str, Any]) -> str:
        r = client.get(url, headers=AUTH, params=params)
        assert r.status_code == 400, r.text
        return r.json().get("message") or r.json()["error"]

    assert bad(window) == "400 Bad request - `updated_at` filter requires `updated_at` sort"
    assert bad({**window, "order_by": "id"}) == "400 Bad request - `updated_at` filter requires `updated_at` sort"
    finished = {"finished_after": window["updated_after"]}
    assert bad({**window, **finished, "order_by": "updated_at"}).endswith("can not be specified")
    assert bad({**finished, "order_by": "finished_at"}).endswith("must be combined with `success` status filter.")
    assert bad({"order_by": "finished_at"}).startswith("400 Bad request - `finished_at` sort requires")
    assert bad({"order_by": "ref"}) == "order_by does not have a valid value"
    assert bad({"status": "done"}) == "status does not have a valid value"
    assert bad({"updated_after": "last week", "order_by": "updated_at"}) == "updated_after is invalid"
    inside = listing(client, f"/projects/{pid}/deployments", order_by="updated_at", **window)
    assert inside and all(window["updated_after"] <= d["updated_at"] <= window["updated_before"] for d in inside)
    assert [d["updated_at"] for d in inside] == sorted(d["updated_at"] for d in inside)
    every = listing(client, f"/projects/{pid}/deployments")
    assert len(inside) == sum(window["updated_after"] <= d["updated_at"] <= window["updated_before"] for d in every)
    exact = inside[0]["updated_at"]
    assert inside[0]["id"] in [
        d["id"] for d in listing(client, f"/projects/{pid}/deployments", order_by="updated_at", updated_before=exact)
    ]
    desc = listing(client, f"/projects/{pid}/deployments", order_by="updated_at", sort="desc", **window)
    assert [d["id"] for d in desc] == [d["id"] for d in inside][::-1]
    done = listing(client, f"/projects/{pid}/deployments", order_by="finished_at", status="success", **finished)
    assert done and all(d["status"] == "success" for d in done)
    reversed_window = {"updated_after": window["updated_before"], "updated_before": window["updated_after"]}
    assert listing(client, f"/projects/{pid}/deployments", order_by="updated_at", **reversed_window) == []


def test_deploy_job_added_by_control_creates_a_deployment(client: TestClient) -> None:
    made = add_pipeline(
        client,
        1001,
        [
            {"name": "build", "stage": "build"},
            {"name": "deploy", "stage": "deploy", "environment": "review/feature-x", "status": "manual"},
        ],
    )
    deployments = client.get(f"{API}/projects/1001/deployments", headers=AUTH).json()
    assert [(d["status"], d["environment"]["name"], d["environment"]["slug"]) for d in deployments] == [
        ("blocked", "review/feature-x", "review-feature-x")
    ]
    assert deployments[0]["deployable"]["id"] == made["jobs"][1]["id"] and deployments[0]["sha"] == made["sha"]
    client.post(f"{CONTROL}/jobs/{made['jobs'][1]['id']}/status", json={"status": "success"})
    assert client.get(f"{API}/projects/1001/deployments", headers=AUTH).json()[0]["status"] == "success"
    retried = client.post(f"{API}/projects/1001/jobs/{made['jobs'][1]['id']}/retry", headers=AUTH).json()
    after = client.get(f"{API}/projects/1001/deployments", headers=AUTH).json()
    assert [(d["iid"], d["status"], d["deployable"]["id"]) for d in after] == [
        (1, "success", made["jobs"][1]["id"]),
        (2, "created", retried["id"]),
    ]
    archived = client.post(f"{CONTROL}/projects", json={"name": "Old", "namespace_path": "payments", "archived": True})
    assert archived.json()["archived"] is True


def test_synthetic_block_window_includes_both_ends() -> None:
    block = gitlab_state.SyntheticBlock(first_id=100, count=5, newest_at=10_000.0, sha="0" * 40)
    at = [block.created_at(k) for k in range(5)]  # 10000, 9400, 8800, 8200, 7600 (index 0 is the newest)
    assert list(block.indexes_between(at[3], at[1])) == [1, 2, 3]
    assert list(block.indexes_between(at[3] + 0.001, at[1] - 0.001)) == [2]
    assert list(block.indexes_between(None, at[4])) == [4] and list(block.indexes_between(at[0], None)) == [0]
    assert list(block.indexes_between(at[1], at[3])) == []
