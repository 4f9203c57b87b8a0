"""GitLabHook against the sandbox GitLab: scenarios, paging, job logs, auth, retries, URLs."""

from __future__ import annotations

import json
import tracemalloc
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qsl

import pytest
import requests

from devops_automation.hooks.api import ApiError
from devops_automation.hooks.gitlab import (
    GitLabAccessError,
    GitLabHook,
    Trace,
    gitlab_time,
    parse_time,
    project_ref,
    tail_start,
)

TOKEN = "glpat-sandbox-token"


def scenario(sandbox, name: str) -> dict:
    return sandbox.control("gitlab", "GET", "/scenarios")[name]


def add_pipeline(sandbox, project_id: int, jobs: list[dict], **body) -> dict:
    return sandbox.control("gitlab", "POST", f"/projects/{project_id}/pipelines", json={"jobs": jobs, **body})


def set_conn(monkeypatch, host: str, password: str | None = TOKEN, **extra) -> None:
    conn = {
        "conn_type": "http",
        "host": host,
        "password": password,
        "extra": {"timeout": 10, "max_retries": 2, "backoff_initial": 0.01, **extra},
    }
    monkeypatch.setenv("AIRFLOW_CONN_GITLAB_DEFAULT", json.dumps(conn))


def query(rec: dict) -> list[tuple[str, str]]:
    return parse_qsl(rec["query"], keep_blank_values=True)


@pytest.fixture
def hook(sandbox_conns) -> GitLabHook:
    """The default hook on the sandbox; retry waits are recorded instead of slept."""
    h = GitLabHook()
    h.waits = []
    h.sleep = h.waits.append
    return h


# -- pipelines and failed jobs ---------------------------------------------------------------------
def test_pytest_scenario_pipeline_and_failed_jobs_by_project_path(hook, sandbox) -> None:
    sc = scenario(sandbox, "pytest")
    pipeline = hook.pipeline(sc["project_path"], sc["pipeline_id"])
    assert pipeline["id"] == sc["pipeline_id"]
    assert pipeline["status"] == "failed"
    assert pipeline["ref"] == sc["ref"]
    jobs = hook.failed_jobs(sc["project_path"], sc["pipeline_id"])
    assert [j["id"] for j in jobs] == sc["failed_job_ids"]
    assert jobs[0]["name"] == "unit-tests"
    assert jobs[0]["failure_reason"] == "script_failure"
    assert jobs[0]["bridge"] is False
    encoded = sc["project_path"].replace("/", "%2F")
    recs = sandbox.requests(system="gitlab", path="/jobs$")
    assert [r["path"] for r in recs] == [f"/api/v4/projects/{encoded}/pipelines/{sc['pipeline_id']}/jobs"]
    assert ("scope[]", "failed") in query(recs[0])
    assert ("per_page", "100") in query(recs[0])
    assert recs[0]["headers"]["private-token"] == TOKEN
    assert "authorization" not in recs[0]["headers"]
    bridges = sandbox.requests(system="gitlab", path="/bridges$")
    assert len(bridges) == 1
    assert ("scope[]", "failed") in query(bridges[0])


def test_allowed_failure_is_listed_with_its_flag(hook, sandbox) -> None:
    sc = scenario(sandbox, "allowed")
    jobs = hook.failed_jobs(sc["project_id"], sc["pipeline_id"])
    assert [(j["id"], j["name"], j["allow_failure"]) for j in jobs] == [(sc["failed_job_ids"][0], "lint", True)]
    assert hook.pipeline(sc["project_id"], sc["pipeline_id"])["status"] == "success"


def test_failed_bridge_is_marked_and_can_be_left_out(hook, sandbox) -> None:
    sc = scenario(sandbox, "bridge")
    jobs = hook.failed_jobs(sc["project_id"], sc["pipeline_id"])
    assert [(j["id"], j["name"], j["bridge"]) for j in jobs] == [(sc["failed_job_ids"][0], "trigger-docs", True)]
    assert jobs[0]["failure_reason"] == "downstream_pipeline_creation_failed"
    sandbox.clear_requests()
    assert hook.failed_jobs(sc["project_id"], sc["pipeline_id"], include_bridges=False) == []
    assert sandbox.requests(system="gitlab", path="/bridges") == []


def test_test_report_summary_and_missing_pipeline(hook, sandbox) -> None:
    sc = scenario(sandbox, "pytest")
    summary = hook.test_report_summary(sc["project_id"], sc["pipeline_id"])
    assert summary["total"]["failed"] == 1
    assert summary["total"]["count"] == 12
    assert hook.test_report_summary(sc["project_id"], 999_999_999) is None
    with pytest.raises(ApiError) as exc:
        hook.pipeline(sc["project_id"], 999_999_999)
    assert exc.value.status == 404
    assert "404 Not found" in str(exc.value)


def test_project_by_id_and_path(hook, sandbox) -> None:
    sc = scenario(sandbox, "compile")
    by_id, by_path = hook.project(sc["project_id"]), hook.project(sc["project_path"])
    assert by_id["id"] == by_path["id"] == sc["project_id"]
    assert by_path["path_with_namespace"] == sc["project_path"]
    assert hook.project(str(sc["project_id"]))["id"] == sc["project_id"]
    assert project_ref("a/b c/d") == "a%2Fb%20c%2Fd"
    assert project_ref(42) == "42"
    assert project_ref("/g/p/") == "g%2Fp"
    with pytest.raises(ValueError):
        project_ref("")


# -- paging ----------------------------------------------------------------------------------------
def test_150_failed_jobs_take_two_pages(hook, sandbox) -> None:
    sc = scenario(sandbox, "compile")
    made = add_pipeline(sandbox, sc["project_id"], [{"name": f"shard-{i}", "status": "failed"} for i in range(150)])
    sandbox.clear_requests()
    jobs = hook.failed_jobs(sc["project_id"], made["id"], include_bridges=False)
    assert len(jobs) == 150
    assert len({j["id"] for j in jobs}) == 150
    assert {j["name"] for j in jobs} == {f"shard-{i}" for i in range(150)}
    pages = [dict(query(r))["page"] for r in sandbox.requests(system="gitlab", path="/jobs$")]
    assert pages == ["1", "2"]


def test_paging_over_10000_records_ignores_the_missing_totals(hook, sandbox) -> None:
    sc = scenario(sandbox, "dbt")
    total = sandbox.control(
        "gitlab", "POST", f"/projects/{sc['project_id']}/synthetic-pipelines", json={"count": 10_050}
    )["total"]
    first = hook.request("GET", f"/projects/{sc['project_id']}/pipelines", params={"per_page": 100})
    assert "x-total" not in first.headers
    assert first.headers["x-next-page"] == "2"
    sandbox.clear_requests()
    assert len(list(hook.paged(f"/projects/{sc['project_id']}/pipelines", max_pages=3))) == 300
    assert len(sandbox.requests(system="gitlab")) == 3
    sandbox.clear_requests()
    ids = [p["id"] for p in hook.pipelines(sc["project_id"])]
    assert len(ids) == len(set(ids)) == total
    assert len(sandbox.requests(system="gitlab")) == -(-total // 100)


# -- job logs --------------------------------------------------------------------------------------
def test_trace_of_a_scenario_job_is_the_raw_log(hook, sandbox) -> None:
    sc = scenario(sandbox, "pytest")
    job_id = sc["failed_job_ids"][0]
    raw = requests.get(
        f"{sandbox.url('gitlab')}/api/v4/projects/{sc['project_id']}/jobs/{job_id}/trace",
        headers={"PRIVATE-TOKEN": TOKEN},
        timeout=10,
    )
    trace = hook.trace(sc["project_id"], job_id)
    assert raw.status_code == 200
    assert len(raw.content) > 500
    assert trace == Trace(raw.content, len(raw.content), False)


def test_posted_text_log_comes_back_byte_for_byte(hook, sandbox, tmp_path) -> None:
    sc = scenario(sandbox, "compile")
    text = (
        "\x1b[0Ksection_start:1700000000:step_script\r\x1b[0KRunning\n\x1b[31mFAIL\x1b[0m "
        "héllo ✓\nERROR: Job failed: exit code 1\n"
    )
    job = add_pipeline(sandbox, sc["project_id"], [{"name": "t", "status": "failed", "trace": text}])["jobs"][0]
    assert hook.trace(sc["project_id"], job["id"]) == Trace(text.encode(), len(text.encode()), False)
    written = hook.trace_to_file(sc["project_id"], job["id"], tmp_path / "log.txt")
    assert written.path.read_bytes() == text.encode()
    assert not written.truncated


def test_tail_cut_lands_on_a_line_boundary(hook, sandbox, tmp_path) -> None:
    sc = scenario(sandbox, "compile")
    job = add_pipeline(sandbox, sc["project_id"], [{"name": "t", "trace": "a\nbb\nccc\n"}])["jobs"][0]
    assert hook.trace(sc["project_id"], job["id"], max_bytes=4) == Trace(b"ccc\n", 9, True)  # cut right after a newline
    assert hook.trace(sc["project_id"], job["id"], max_bytes=6) == Trace(
        b"ccc\n", 9, True
    )  # "b\nccc\n": partial line dropped
    assert hook.trace(sc["project_id"], job["id"], max_bytes=7) == Trace(b"bb\nccc\n", 9, True)
    assert hook.trace(sc["project_id"], job["id"], max_bytes=9) == Trace(b"a\nbb\nccc\n", 9, False)
    out = hook.trace_to_file(sc["project_id"], job["id"], tmp_path / "tail.txt", max_bytes=6)
    assert out.path.read_bytes() == b"ccc\n"
    assert (out.size, out.total_bytes, out.truncated) == (4, 9, True)
    assert tail_start(b"xyz", 2) == 1  # no line break: keep the partial line rather than nothing


def test_60_mb_log_keeps_its_tail_in_bounded_memory(hook, sandbox, tmp_path) -> None:
    sc = scenario(sandbox, "compile")
    size, limit = 60_000_000, 5_000_000
    job = add_pipeline(
        sandbox, sc["project_id"], [{"name": "huge", "status": "failed", "trace": {"generate_bytes": size}}]
    )["jobs"][0]
    full = hook.trace_to_file(sc["project_id"], job["id"], tmp_path / "full.log")
    assert full.size == full.total_bytes == size
    assert not full.truncated
    tracemalloc.start()
    try:
        trace = hook.trace(sc["project_id"], job["id"], max_bytes=limit)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert trace.truncated
    assert trace.total_bytes == size
    assert limit - 10_000 < len(trace.data) <= limit
    assert peak < 3 * limit, f"peak {peak} bytes"
    with full.path.open("rb") as fh:
        fh.seek(size - len(trace.data) - 1)
        before, tail = fh.read(1), fh.read()
    assert tail == trace.data
    assert before == b"\n"  # the exact tail, starting on a whole line
    last_line = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    assert b"Job failed" in last_line
    assert trace.data.rstrip(b"\n").endswith(last_line)
    cut = hook.trace_to_file(sc["project_id"], job["id"], tmp_path / "tail.log", max_bytes=limit)
    assert cut.truncated
    assert cut.path.read_bytes() == trace.data


def test_binary_log_is_returned_as_bytes(hook, sandbox) -> None:
    sc = scenario(sandbox, "compile")
    job = add_pipeline(
        sandbox,
        sc["project_id"],
        [{"name": "bin", "status": "failed", "trace": {"generate_bytes": 300_000, "binary": True}}],
    )["jobs"][0]
    trace = hook.trace(sc["project_id"], job["id"])
    assert isinstance(trace.data, bytes)
    assert len(trace.data) == trace.total_bytes == 300_000
    assert not trace.truncated
    assert b"\x00" in trace.data
    with pytest.raises(UnicodeDecodeError):
        trace.data.decode("utf-8")


def test_deleted_job_has_no_job_and_no_log(hook, sandbox, tmp_path) -> None:
    sc = scenario(sandbox, "system")
    job_id = sc["failed_job_ids"][0]
    assert hook.job(sc["project_id"], job_id)["id"] == job_id
    sandbox.control("gitlab", "DELETE", f"/jobs/{job_id}")
    sandbox.clear_requests()
    assert hook.job(sc["project_id"], job_id) is None
    assert hook.trace(sc["project_id"], job_id) is None
    assert hook.trace_to_file(sc["project_id"], job_id, tmp_path / "gone.log") is None
    assert list(tmp_path.iterdir()) == []
    assert [r["status"] for r in sandbox.requests(system="gitlab")] == [404, 404, 404]  # 404 is not retried


# -- last successful job, retry --------------------------------------------------------------------
def test_last_successful_job_is_found_in_the_good_pipeline(hook, sandbox) -> None:
    sc = scenario(sandbox, "pytest")
    good = hook.last_successful_job(sc["project_id"], sc["ref"], "unit-tests", before_pipeline_id=sc["pipeline_id"])
    assert good["name"] == "unit-tests"
    assert good["status"] == "success"
    assert good["pipeline"]["id"] == sc["good_pipeline_id"]
    listing = sandbox.requests(system="gitlab", path="/pipelines$")
    assert {("ref", sc["ref"]), ("status", "success"), ("order_by", "id"), ("sort", "desc")} <= set(query(listing[0]))
    assert (
        hook.last_successful_job(sc["project_id"], sc["ref"], "no-such-job", before_pipeline_id=sc["pipeline_id"])
        is None
    )
    assert hook.last_successful_job(sc["project_id"], None, "unit-tests") is None


def test_last_successful_job_skips_newer_and_jobless_pipelines(hook, sandbox) -> None:
    sc = scenario(sandbox, "compile")
    older = add_pipeline(sandbox, sc["project_id"], [{"name": "build"}], ref=sc["ref"])
    newer = add_pipeline(sandbox, sc["project_id"], [{"name": "build"}], ref=sc["ref"])
    assert hook.last_successful_job(sc["project_id"], sc["ref"], "build")["pipeline"]["id"] == newer["id"]
    assert (
        hook.last_successful_job(sc["project_id"], sc["ref"], "build", before_pipeline_id=newer["id"])["id"]
        == older["jobs"][0]["id"]
    )
    for _ in range(3):  # newer successful pipelines without the job: looked at, then given up on
        add_pipeline(sandbox, sc["project_id"], [{"name": "other"}], ref=sc["ref"])
    sandbox.clear_requests()
    assert hook.last_successful_job(sc["project_id"], sc["ref"], "build", max_pipelines=3) is None
    assert len(sandbox.requests(system="gitlab", path="/jobs$")) == 3


def test_retry_job_posts_once(hook, sandbox) -> None:
    sc = scenario(sandbox, "system")
    job_id = sc["failed_job_ids"][0]
    new = hook.retry_job(sc["project_id"], job_id)
    assert new["id"] != job_id
    assert new["name"] == "integration-tests"
    assert new["status"] == "pending"
    assert len(sandbox.requests(system="gitlab", method="POST", path="/retry$")) == 1
    sandbox.fault(system="gitlab", method="POST", path="/retry$", status=500, times=1)
    with pytest.raises(ApiError) as exc:
        hook.retry_job(sc["project_id"], new["id"])
    assert exc.value.status == 500
    assert len(sandbox.requests(system="gitlab", method="POST", path="/retry$")) == 2


# -- rate limits, auth, URLs -----------------------------------------------------------------------
def test_429_with_retry_after_then_success(hook, sandbox) -> None:
    sc = scenario(sandbox, "pytest")
    sandbox.fault(system="gitlab", path=r"/pipelines/\d+$", status=429, retry_after=1, times=1)
    assert hook.pipeline(sc["project_id"], sc["pipeline_id"])["id"] == sc["pipeline_id"]
    assert hook.waits == [1.0]
    assert [r["status"] for r in sandbox.requests(system="gitlab", path=r"/pipelines/\d+$")] == [429, 200]


def test_wrong_token_gives_gitlabs_message_without_the_token(sandbox, monkeypatch) -> None:
    secret = "glpat-wrong-secret-0123456789"
    set_conn(monkeypatch, sandbox.url("gitlab"), password=secret)
    hook = GitLabHook()
    with pytest.raises(ApiError) as exc:
        hook.project(1001)
    assert exc.value.status == 401
    assert "401 Unauthorized" in str(exc.value)
    assert secret not in str(exc.value)
    assert secret not in repr(exc.value.args)
    assert secret not in json.dumps(exc.value.body)
    assert len(sandbox.requests(system="gitlab")) == 1  # 401 is not retried
    sandbox.fault(system="gitlab", path="^/api/v4/user$", status=401, times=1)  # the sandbox routes no /user
    ok, message = hook.test_connection()
    assert not ok
    assert "401 Unauthorized" in message
    assert secret not in message
    assert sandbox.requests(system="gitlab", path="/version") == []  # no fallback after a 401


def test_oauth_sends_a_bearer_token(sandbox, monkeypatch) -> None:
    set_conn(monkeypatch, sandbox.url("gitlab"), auth_type="oauth")
    sc = scenario(sandbox, "pytest")
    assert GitLabHook().project(sc["project_id"])["id"] == sc["project_id"]
    headers = sandbox.requests(system="gitlab")[-1]["headers"]
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert "private-token" not in headers
    assert "auth_type" not in headers


def test_bad_auth_type_is_named(sandbox, monkeypatch) -> None:
    set_conn(monkeypatch, sandbox.url("gitlab"), auth_type="basic")
    with pytest.raises(ValueError, match="auth_type"):
        GitLabHook().project(1001)


@pytest.mark.parametrize("suffix", ["/api/v4", "/api/v4/", "/"])
def test_api_v4_is_not_doubled(sandbox, monkeypatch, suffix) -> None:
    set_conn(monkeypatch, sandbox.url("gitlab") + suffix)
    sc = scenario(sandbox, "dbt")
    hook = GitLabHook()
    assert hook.project(sc["project_id"])["id"] == sc["project_id"]
    assert sandbox.requests(system="gitlab")[-1]["path"] == f"/api/v4/projects/{sc['project_id']}"
    assert hook.web_url == sandbox.url("gitlab")
    assert hook.api_url == sandbox.url("gitlab") + "/api/v4"


def test_connection_test_asks_for_the_user(sandbox, sandbox_conns) -> None:
    sandbox.fault(system="gitlab", path="^/api/v4/user$", status=200, body={"id": 7, "username": "triage-bot"}, times=1)
    ok, message = GitLabHook().test_connection()
    assert ok
    assert "triage-bot" in message
    rec = sandbox.requests(system="gitlab", path="^/api/v4/user$")[0]
    assert rec["headers"]["private-token"] == TOKEN
    ok, message = GitLabHook().test_connection()  # the sandbox routes neither /user nor /version
    assert not ok
    assert "404" in message


# -- CI analytics: the seeded history (include/sandbox/systems/gitlab/history.py) -------------------
def history(sandbox) -> dict:
    return sandbox.control("gitlab", "GET", "/history")


def day_window(facts: dict, day: int) -> tuple[datetime, datetime]:
    """[start, end) of history day ``day`` (1 = yesterday)."""
    midnight = datetime.fromtimestamp(facts["day0_epoch"], UTC)
    return midnight - timedelta(days=day), midnight - timedelta(days=day - 1)


def test_pipelines_updated_pages_through_weeks_oldest_update_first(hook, sandbox) -> None:
    facts = history(sandbox)
    ledger = facts["projects"]["ledger"]
    start, _ = day_window(facts, facts["days"])
    _, end = day_window(facts, 1)
    sandbox.clear_requests()
    pipelines = list(hook.pipelines_updated(ledger["path"], start, end))
    assert len(pipelines) == len({p["id"] for p in pipelines}) == facts["pipeline_counts"]["ledger"] > 300
    updated = [parse_time(p["updated_at"]) for p in pipelines]
    assert updated == sorted(updated) and start <= updated[0] and updated[-1] < end
    recs = sandbox.requests(system="gitlab", path="/pipelines$")
    assert [dict(query(r))["page"] for r in recs] == ["1", "2", "3", "4"]
    sent = dict(query(recs[0]))
    assert (sent["order_by"], sent["sort"], sent["per_page"]) == ("updated_at", "asc", "100")
    assert (sent["updated_after"], sent["updated_before"]) == (gitlab_time(start), gitlab_time(end))
    assert sent["updated_after"].endswith("Z") and recs[0]["path"].endswith("/payments%2Fledger-service/pipelines")
    # child pipelines come with their parents; filters go through
    children = {c["child_pipeline_id"] for c in facts["children"]}
    assert children <= {p["id"] for p in pipelines}
    only = list(hook.pipelines_updated(ledger["id"], start, end, source="parent_pipeline", per_page=50))
    assert {p["id"] for p in only} == children


def test_daily_windows_partition_the_pipelines(hook, sandbox) -> None:
    facts = history(sandbox)
    checkout = facts["projects"]["checkout"]
    seen: list[int] = []
    for day in range(facts["days"], 0, -1):
        start, end = day_window(facts, day)
        got = [p["id"] for p in hook.pipelines_updated(checkout["id"], start, end)]
        assert len(got) == facts["updated_per_day"]["checkout"].get(str(day), 0), day
        seen += got
    assert len(seen) == len(set(seen)) == facts["pipeline_counts"]["checkout"]
    late = facts["late_retry"]
    day7, day9 = day_window(facts, 7), day_window(facts, 9)
    assert late["pipeline_id"] in [p["id"] for p in hook.pipelines_updated(checkout["id"], *day7)]
    assert late["pipeline_id"] not in [p["id"] for p in hook.pipelines_updated(checkout["id"], *day9)]


def test_a_pipeline_on_the_boundary_belongs_to_the_later_window(hook, sandbox) -> None:
    created = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    made = add_pipeline(
        sandbox,
        2001,
        [{"name": "build", "stage": "build", "queued": 10, "duration": 50}],
        created_at=created.timestamp(),
        ref="feature/boundary",
    )
    updated = created + timedelta(minutes=1)
    assert parse_time(made["updated_at"]) == updated
    hour = timedelta(hours=1)
    before = [p["id"] for p in hook.pipelines_updated(2001, updated - hour, updated, ref="feature/boundary")]
    after = [p["id"] for p in hook.pipelines_updated(2001, updated, updated + hour, ref="feature/boundary")]
    assert (before, after) == ([], [made["id"]])
    raw = hook.request(
        "GET",
        "/projects/2001/pipelines",
        params={
            "ref": "feature/boundary",
            "updated_after": gitlab_time(updated - hour),
            "updated_before": gitlab_time(updated),
        },
    ).json()
    assert [p["id"] for p in raw] == [made["id"]]  # GitLab itself includes both ends


def test_pipelines_updated_refuses_naive_and_empty_windows_at_once(hook, sandbox) -> None:
    aware = datetime(2026, 11, 20, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        hook.pipelines_updated(2001, datetime(2026, 11, 20), aware)
    with pytest.raises(ValueError, match="later than"):
        hook.pipelines_updated(2001, aware, aware)
    with pytest.raises(ValueError, match="timezone-aware"):
        hook.deployments(2001, updated_before=datetime(2026, 11, 20))
    assert sandbox.requests(system="gitlab") == []
    assert gitlab_time(datetime(2026, 11, 20, 1, tzinfo=timezone(timedelta(hours=1)))) == "2026-11-20T00:00:00Z"
    assert parse_time("2026-11-20T11:09:40.000+01:00") == datetime(2026, 11, 20, 10, 9, 40, tzinfo=UTC)
    assert parse_time("garbage") is None and parse_time(None) is None


def test_include_retried_returns_every_attempt(hook, sandbox) -> None:
    facts = history(sandbox)
    flaky = facts["flaky"][0]
    latest = hook.pipeline_jobs(flaky["project_id"], flaky["pipeline_id"])
    assert [j["id"] for j in latest if j["name"] == flaky["job"]] == [flaky["retry_job_id"]]
    sandbox.clear_requests()
    attempts = hook.pipeline_jobs(flaky["project_id"], flaky["pipeline_id"], include_retried=True)
    assert ("include_retried", "true") in query(sandbox.requests(system="gitlab", path="/jobs$")[0])
    same = [(j["id"], j["status"]) for j in attempts if j["name"] == flaky["job"]]
    assert same == [(flaky["failed_job_id"], "failed"), (flaky["retry_job_id"], "success")]
    assert len(attempts) == len(latest) + 1
    assert {j["commit"]["id"] for j in attempts} == {flaky["sha"]}
    assert hook.pipeline_attempts(flaky["project_id"], flaky["pipeline_id"]) == attempts
    assert hook.pipeline(flaky["project_id"], flaky["pipeline_id"])["status"] == "success"
    summary = hook.test_report_summary(flaky["project_id"], flaky["pipeline_id"])
    assert (summary["total"]["count"], summary["total"]["failed"]) == (12, 0)


def test_bridges_name_their_child_pipelines(hook, sandbox) -> None:
    facts = history(sandbox)
    for fact in facts["children"][:3]:
        bridges = hook.pipeline_bridges(fact["project_id"], fact["parent_pipeline_id"])
        assert [(b["id"], b["downstream_pipeline"]["id"]) for b in bridges] == [
            (fact["bridge_id"], fact["child_pipeline_id"])
        ]
        assert bridges[0]["downstream_pipeline"]["project_id"] == fact["project_id"]
        child = hook.pipeline(fact["project_id"], fact["child_pipeline_id"])
        assert child["source"] == "parent_pipeline" and child["sha"] == bridges[0]["commit"]["id"]
    failure = facts["child_failure"]
    bridge = hook.pipeline_bridges(failure["project_id"], failure["parent_pipeline_id"])[0]
    assert (bridge["status"], bridge["downstream_pipeline"]["status"]) == ("failed", "failed")
    assert hook.pipeline_bridges(2001, facts["flaky"][0]["pipeline_id"]) == []


def test_group_projects_include_the_subgroups_but_not_archived_ones(hook, sandbox) -> None:
    facts = history(sandbox)
    ids = {key: p["id"] for key, p in facts["projects"].items()}
    sandbox.clear_requests()
    assert [p["id"] for p in hook.group_projects("payments")] == [ids["checkout"], ids["ledger"], ids["ios"]]
    sent = dict(query(sandbox.requests(system="gitlab", path="/projects$")[0]))
    assert {k: sent[k] for k in ("include_subgroups", "archived", "with_shared", "order_by", "sort")} == {
        "include_subgroups": "true",
        "archived": "false",
        "with_shared": "false",
        "order_by": "id",
        "sort": "asc",
    }
    assert [p["id"] for p in hook.group_projects("payments", include_subgroups=False)] == [
        ids["checkout"],
        ids["ledger"],
    ]
    assert [p["id"] for p in hook.group_projects(201, archived=None)] == [ids["ios"], ids["legacy"]]
    assert [p["path_with_namespace"] for p in hook.group_projects("payments/mobile", archived=True)] == [
        "payments/mobile/legacy-sdk"
    ]
    sandbox.clear_requests()
    assert len(list(hook.group_projects("payments", archived=None, per_page=1))) == 4
    assert len(sandbox.requests(system="gitlab")) == 4


def test_deployments_per_environment_and_window(hook, sandbox) -> None:
    facts = history(sandbox)
    deployments = facts["deployments"]
    pid = deployments["project_id"]
    for env, counts in deployments["counts"].items():
        mine = list(hook.deployments(pid, environment=env))
        assert len(mine) == sum(counts.values()) and {d["environment"]["name"] for d in mine} == {env}
    production = list(hook.deployments(pid, environment="production", status="success"))
    assert len(production) == deployments["counts"]["production"]["success"]
    assert facts["rollback"]["deployment_id"] in [d["id"] for d in production]
    start, end = day_window(facts, 16)
    sandbox.clear_requests()
    day16 = list(hook.deployments(pid, environment="production", updated_after=start, updated_before=end))
    assert [d["id"] for d in day16] == [deployments["failed_production"]["deployment_id"]]
    assert day16[0]["status"] == "failed" and day16[0]["deployable"]["name"] == "deploy-production"
    sent = dict(query(sandbox.requests(system="gitlab", path="/deployments$")[0]))
    assert (sent["order_by"], sent["sort"], sent["environment"]) == ("updated_at", "asc", "production")
    everything = list(hook.deployments(pid))
    assert [d["id"] for d in everything] == sorted(d["id"] for d in everything)
    week = list(hook.deployments(pid, updated_after=start))
    assert week and all(parse_time(d["updated_at"]) >= start for d in week)
    assert list(hook.deployments(facts["projects"]["ledger"]["id"])) == []


def test_a_missing_or_forbidden_project_or_group_raises_a_named_access_error(hook, sandbox) -> None:
    window = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC))
    with pytest.raises(GitLabAccessError) as missing:
        list(hook.pipelines_updated("payments/nope", *window))
    assert missing.value.status == 404 and missing.value.target == "project 'payments/nope'"
    assert "not visible to this token" in str(missing.value) and "404 Project Not Found" in str(missing.value)
    assert isinstance(missing.value, ApiError)
    with pytest.raises(GitLabAccessError, match="group 'nope'"):
        list(hook.group_projects("nope"))
    sandbox.fault(system="gitlab", path=r"^/api/v4/projects/2002/", status=403)
    with pytest.raises(GitLabAccessError) as forbidden:
        list(hook.deployments(2002))
    assert forbidden.value.status == 403 and "forbidden" in str(forbidden.value)
    for call in (
        lambda: hook.pipeline_attempts(2002, 1),
        lambda: hook.pipeline_bridges(2002, 1),
        lambda: list(hook.pipelines_updated(2002, *window)),
    ):
        with pytest.raises(GitLabAccessError, match="project '2002'"):
            call()
    assert hook.waits == []  # 403/404 are not retried
    # a missing pipeline of a readable project is no access problem
    with pytest.raises(ApiError) as gone:
        hook.pipeline_attempts(2001, 1)
    assert gone.value.status == 404 and not isinstance(gone.value, GitLabAccessError)
