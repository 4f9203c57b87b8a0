"""The GitLab webhook receiver app: auth, limits, answers, and one run against the real metadata DB."""

from __future__ import annotations

import json
import logging
import statistics
import time

import pytest
from fastapi.testclient import TestClient

from devops_automation.workflows.ci_failure_triage.webhook import HookEvent
from devops_automation.workflows.ci_failure_triage.webhook_app import AlreadyTriggered, TriageUnavailable, create_app

TOKEN = "s3cret-webhook-token"


class FakeStarter:
    """Records every event; answers like the real starter (run id, duplicate on the second call)."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[HookEvent] = []
        self.fail = fail

    def __call__(self, ev: HookEvent) -> str:
        self.calls.append(ev)
        if self.fail is not None:
            raise self.fail
        run_id = f"gitlab_webhook__{ev.project_id}__{ev.pipeline_id}"
        if sum(1 for c in self.calls if (c.project_id, c.pipeline_id) == (ev.project_id, ev.pipeline_id)) > 1:
            raise AlreadyTriggered(run_id)
        return run_id


@pytest.fixture
def starter() -> FakeStarter:
    return FakeStarter()


@pytest.fixture
def client(starter: FakeStarter) -> TestClient:
    return TestClient(create_app(token_provider=lambda: TOKEN, starter=starter, max_body_bytes=64 * 1024))


@pytest.fixture
def scenarios(sandbox) -> dict:
    return sandbox.control("gitlab", "GET", "/scenarios")


def delivery(sandbox, kind: str, ident: int, token: str | None = TOKEN) -> dict:
    key = "pipeline_id" if kind == "pipeline" else "job_id"
    return sandbox.control("gitlab", "POST", f"/hooks/{kind}", json={key: ident, "token": token})


def post(client: TestClient, d: dict, **kw):
    return client.post("/gitlab", content=json.dumps(d["body"]).encode(), headers=d["headers"], **kw)


# -- the happy path and the answers GitLab gets ----------------------------------------------------
def test_failed_pipeline_is_queued_once(client, starter, sandbox, scenarios):
    sc = scenarios["pytest"]
    d = delivery(sandbox, "pipeline", sc["pipeline_id"])
    r = post(client, d)
    assert r.status_code == 202, r.text
    run_id = f"gitlab_webhook__{sc['project_id']}__{sc['pipeline_id']}"
    assert r.json() == {"status": "queued", "dag_run_id": run_id}
    [ev] = starter.calls
    assert ev.pipeline_id == str(sc["pipeline_id"])
    assert ev.idempotency_key == d["headers"]["Idempotency-Key"]
    assert sorted(int(j["id"]) for j in ev.to_event()["failed_jobs"]) == sorted(sc["failed_job_ids"])
    # GitLab redelivers (same pipeline): acknowledged, not started twice
    r = post(client, delivery(sandbox, "pipeline", sc["pipeline_id"]))
    assert r.status_code == 200
    assert r.json() == {"status": "duplicate", "dag_run_id": run_id}


@pytest.mark.parametrize(
    ("key", "kind", "reason"),
    [
        ("running", "pipeline", "'running'"),
        ("pytest-good", "pipeline", "'success'"),
        ("compile", "job", "acknowledged"),
    ],
)
def test_ignored_events_do_not_start(client, starter, sandbox, scenarios, key, kind, reason):
    if key == "pytest-good":
        ident = scenarios["pytest"]["good_pipeline_id"]
    else:
        ident = scenarios[key]["pipeline_id"] if kind == "pipeline" else scenarios[key]["failed_job_ids"][0]
    r = post(client, delivery(sandbox, kind, ident))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ignored"
    assert reason in r.json()["reason"]
    assert starter.calls == []


def test_other_event_types_are_acknowledged(client, starter):
    r = client.post(
        "/gitlab", json={"object_kind": "push"}, headers={"X-Gitlab-Token": TOKEN, "X-Gitlab-Event": "Push Hook"}
    )
    assert r.status_code == 200
    assert r.json()["status"] == "ignored"
    assert "Push Hook" in r.json()["reason"]
    assert starter.calls == []


def test_malformed_and_wrong_shape(client, starter):
    headers = {"X-Gitlab-Token": TOKEN, "X-Gitlab-Event": "Pipeline Hook", "Content-Type": "application/json"}
    r = client.post("/gitlab", content=b"{not json", headers=headers)
    assert r.status_code == 400
    assert "JSON" in r.json()["detail"]
    r = client.post(
        "/gitlab",
        json={"object_kind": "pipeline", "object_attributes": {"status": "failed"}, "project": {"id": 1}},
        headers=headers,
    )
    assert r.status_code == 422
    assert "object_attributes.id" in r.json()["detail"]
    assert starter.calls == []


def test_health(client):
    assert client.get("/health").json() == {"status": "ok"}


# -- auth ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("token", [None, "", "guessed-9f2c", TOKEN + "x", TOKEN[:-1]])
def test_wrong_or_missing_token_is_401(client, starter, sandbox, scenarios, caplog, token):
    caplog.set_level(logging.DEBUG)
    r = post(client, delivery(sandbox, "pipeline", scenarios["pytest"]["pipeline_id"], token=token))
    assert r.status_code == 401
    assert TOKEN not in r.text
    assert "expected" not in r.text.lower()
    assert starter.calls == []
    assert TOKEN not in caplog.text
    assert not token or token not in caplog.text


def test_no_secret_configured_fails_closed(starter, sandbox, scenarios, monkeypatch):
    monkeypatch.delenv("DEVOPS_GITLAB_WEBHOOK_TOKEN", raising=False)
    for provider in (lambda: None, lambda: ""):
        app = TestClient(create_app(token_provider=provider, starter=starter))
        for token in (None, "", "anything"):
            r = post(app, delivery(sandbox, "pipeline", scenarios["pytest"]["pipeline_id"], token=token))
            assert r.status_code == 503
            assert r.json()["detail"] == "webhook secret not configured"
    assert starter.calls == []


def test_default_secret_source_env_then_connection(starter, sandbox, scenarios, monkeypatch, airflow_db):
    """No provider given: env var first, else the gitlab_webhook connection's password (cached)."""
    from airflow.models import Connection
    from airflow.utils.session import create_session

    with create_session() as session:  # e.g. applied by the settings-loader tests into the shared metadata DB
        session.query(Connection).filter(Connection.conn_id == "gitlab_webhook").delete()
    monkeypatch.delenv("DEVOPS_GITLAB_WEBHOOK_TOKEN", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_GITLAB_WEBHOOK", raising=False)
    app = TestClient(create_app(starter=starter))
    d = delivery(sandbox, "pipeline", scenarios["pytest"]["pipeline_id"], token="from-env")
    assert post(app, d).status_code == 503
    monkeypatch.setenv("DEVOPS_GITLAB_WEBHOOK_TOKEN", "from-env")
    assert post(app, d).status_code == 202
    monkeypatch.delenv("DEVOPS_GITLAB_WEBHOOK_TOKEN")
    monkeypatch.setenv("AIRFLOW_CONN_GITLAB_WEBHOOK", json.dumps({"conn_type": "generic", "password": "from-conn"}))
    app = TestClient(create_app(starter=starter))  # a fresh cache
    d2 = delivery(sandbox, "pipeline", scenarios["compile"]["pipeline_id"], token="from-conn")
    assert post(app, d).status_code == 401
    assert post(app, d2).status_code == 202
    assert [c.pipeline_id for c in starter.calls] == [
        str(scenarios["pytest"]["pipeline_id"]),
        str(scenarios["compile"]["pipeline_id"]),
    ]


# -- body limit ------------------------------------------------------------------------------------
def test_oversized_body_with_content_length_is_413(client, starter):
    big = json.dumps({"object_kind": "pipeline", "pad": "x" * 70_000}).encode()
    r = client.post("/gitlab", content=big, headers={"X-Gitlab-Token": TOKEN, "X-Gitlab-Event": "Pipeline Hook"})
    assert r.status_code == 413
    assert starter.calls == []


def test_oversized_chunked_body_is_413(client, starter):
    sent = []

    def chunks():
        for _ in range(200):  # 200 x 1 KiB, no Content-Length
            sent.append(1)
            yield b"x" * 1024

    r = client.post("/gitlab", content=chunks(), headers={"X-Gitlab-Token": TOKEN, "X-Gitlab-Event": "Pipeline Hook"})
    assert r.status_code == 413
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in r.request.headers
    assert starter.calls == []


def test_understated_content_length_is_still_capped(starter):
    app = create_app(token_provider=lambda: TOKEN, starter=starter, max_body_bytes=1000)
    got = {}

    async def run():
        body = [b"{" + b" " * 3000 + b"}"]
        messages = [{"type": "http.request", "body": body[0], "more_body": False}]

        async def receive():
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(msg):
            if msg["type"] == "http.response.start":
                got["status"] = msg["status"]

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/gitlab",
            "raw_path": b"/gitlab",
            "query_string": b"",
            "headers": [(b"content-length", b"10"), (b"x-gitlab-token", TOKEN.encode())],
            "http_version": "1.1",
            "scheme": "http",
            "server": ("test", 80),
            "client": ("127.0.0.1", 1),
            "root_path": "",
        }
        await app(scope, receive, send)

    import asyncio

    asyncio.run(run())
    assert got["status"] == 413
    assert starter.calls == []


def test_limit_from_env(starter, monkeypatch):
    monkeypatch.setenv("DEVOPS_WEBHOOK_MAX_BYTES", "100")
    app = TestClient(create_app(token_provider=lambda: TOKEN, starter=starter))
    r = app.post("/gitlab", content=b"{" + b" " * 200 + b"}", headers={"X-Gitlab-Token": TOKEN})
    assert r.status_code == 413


# -- starter failures ------------------------------------------------------------------------------
def test_missing_dag_is_503_so_gitlab_retries(sandbox, scenarios):
    starter = FakeStarter(fail=TriageUnavailable("DAG 'ci_failure_triage' is not in the Airflow database yet"))
    app = TestClient(create_app(token_provider=lambda: TOKEN, starter=starter))
    r = post(app, delivery(sandbox, "pipeline", scenarios["pytest"]["pipeline_id"]))
    assert r.status_code == 503
    assert "ci_failure_triage" in r.json()["detail"]
    assert len(starter.calls) == 1


def test_unexpected_starter_error_is_503(sandbox, scenarios):
    starter = FakeStarter(fail=RuntimeError("database is locked"))
    app = TestClient(create_app(token_provider=lambda: TOKEN, starter=starter), raise_server_exceptions=False)
    r = post(app, delivery(sandbox, "pipeline", scenarios["pytest"]["pipeline_id"]))
    assert r.status_code == 503
    assert "locked" not in r.text


# -- speed -----------------------------------------------------------------------------------------
def test_answers_within_100_ms(client, starter, sandbox, scenarios):
    d = delivery(sandbox, "pipeline", scenarios["pytest"]["pipeline_id"])
    body, headers = json.dumps(d["body"]).encode(), d["headers"]
    post(client, d)  # warm up
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        r = client.post("/gitlab", content=body, headers=headers)
        times.append(time.perf_counter() - t0)
        assert r.status_code in (200, 202)
    assert statistics.median(times) < 0.1, times
    assert len(starter.calls) == 21


# -- against the real Airflow metadata DB ----------------------------------------------------------
def _sync_minimal_triage_dag() -> None:
    """A stand-in ``ci_failure_triage`` (same ``events`` param) serialised into the metadata DB.

    Uses the real DAG file's id so the default starter is exercised unchanged; a later dag.test()
    of dags/ci_failure_triage.py re-syncs the real one over it.
    """
    import datetime as dt

    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG, Param

    with DAG(
        "ci_failure_triage",
        schedule=None,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        params={"events": Param([], type="array")},
    ) as dag:
        EmptyOperator(task_id="collect")
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder="/nonexistent", collect_dags=False)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)


@pytest.mark.slow
def test_default_starter_queues_a_real_dag_run(airflow_db, sandbox, scenarios, monkeypatch):
    from airflow.models import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType
    from sqlalchemy import delete, select

    from devops_automation.workflows.ci_failure_triage.webhook_app import trigger_triage_run

    monkeypatch.setenv("DEVOPS_GITLAB_WEBHOOK_TOKEN", TOKEN)
    keys = ("pytest", "compile", "system", "dbt", "bridge")
    run_ids = [f"gitlab_webhook__{scenarios[k]['project_id']}__{scenarios[k]['pipeline_id']}" for k in keys]
    with create_session() as session:
        session.execute(delete(DagRun).where(DagRun.dag_id == "ci_failure_triage", DagRun.run_id.in_(run_ids)))
    d = delivery(sandbox, "pipeline", scenarios["pytest"]["pipeline_id"])

    # a DAG that is not parsed (yet): 503, so that GitLab retries later
    missing = TestClient(create_app(starter=lambda ev: trigger_triage_run(ev, dag_id="ci_failure_triage_not_parsed")))
    r = post(missing, d)
    assert r.status_code == 503
    assert "ci_failure_triage_not_parsed" in r.json()["detail"]
    assert "not in the Airflow database" in r.json()["detail"]

    app = TestClient(create_app())  # the real secret source and the real starter

    _sync_minimal_triage_dag()
    try:
        times = []
        for key, run_id in zip(keys, run_ids, strict=True):
            dk = d if key == "pytest" else delivery(sandbox, "pipeline", scenarios[key]["pipeline_id"])
            t0 = time.perf_counter()
            r = post(app, dk)
            times.append(time.perf_counter() - t0)
            assert r.status_code == 202, r.text
            assert r.json() == {"status": "queued", "dag_run_id": run_id}
        print("webhook -> queued run, seconds:", [round(t, 4) for t in times])
        assert statistics.median(times) < 0.1, times

        r = post(app, delivery(sandbox, "pipeline", scenarios["pytest"]["pipeline_id"]))  # a redelivery
        assert r.status_code == 200
        assert r.json() == {"status": "duplicate", "dag_run_id": run_ids[0]}

        with create_session() as session:
            runs = {
                dr.run_id: dr
                for dr in session.scalars(
                    select(DagRun).where(DagRun.dag_id == "ci_failure_triage", DagRun.run_id.in_(run_ids))
                )
            }
            assert set(runs) == set(run_ids)
            dr = runs[run_ids[0]]
            assert str(dr.state) == "queued"
            assert str(dr.run_type) == "manual"
            assert dr.triggered_by == DagRunTriggeredByType.REST_API
            assert dr.logical_date is None
            [event] = dr.conf["events"]
            assert event["source"] == "webhook"
            assert event["pipeline_id"] == str(scenarios["pytest"]["pipeline_id"])
            assert event["idempotency_key"] == d["headers"]["Idempotency-Key"]
            assert sorted(int(j["id"]) for j in event["failed_jobs"]) == sorted(scenarios["pytest"]["failed_job_ids"])
    finally:
        with create_session() as session:
            session.execute(delete(DagRun).where(DagRun.dag_id == "ci_failure_triage", DagRun.run_id.in_(run_ids)))


# -- the plugin ------------------------------------------------------------------------------------
def test_plugin_module_exposes_the_app():
    import devops_automation_webhooks as plugin_module
    from airflow.plugins_manager import AirflowPlugin

    plugin = plugin_module.DevOpsAutomationWebhooks
    assert issubclass(plugin, AirflowPlugin)
    assert plugin.name == "devops_automation_webhooks"
    [entry] = plugin.fastapi_apps
    assert entry["url_prefix"] == "/devops-automation/webhooks"
    assert entry["name"] == "devops-automation GitLab webhooks"
    paths = {(r.path, tuple(sorted(r.methods))) for r in entry["app"].routes if hasattr(r, "methods")}
    assert ("/gitlab", ("POST",)) in paths
    assert ("/health", ("GET",)) in paths


@pytest.mark.slow
def test_airflow_api_server_mounts_the_plugin(monkeypatch):
    """Airflow's own plugin loader finds the top-level module; the route needs no Airflow login."""
    from airflow import plugins_manager
    from airflow.api_fastapi.app import create_app as create_airflow_app

    monkeypatch.setenv("DEVOPS_GITLAB_WEBHOOK_TOKEN", TOKEN)
    assert not {k: v for k, v in plugins_manager.get_import_errors().items() if "devops_automation" in k}
    assert any(p.name == "devops_automation_webhooks" for p in plugins_manager._get_plugins()[0])
    api = TestClient(create_airflow_app())
    assert api.get("/devops-automation/webhooks/health").json() == {"status": "ok"}
    r = api.post(
        "/devops-automation/webhooks/gitlab", json={"object_kind": "pipeline"}, headers={"X-Gitlab-Token": "nope"}
    )
    assert r.status_code == 401
    assert r.json() == {"status": "rejected", "detail": "invalid or missing X-Gitlab-Token"}
    r = api.post(
        "/devops-automation/webhooks/gitlab",
        json={"object_kind": "push"},
        headers={"X-Gitlab-Token": TOKEN, "X-Gitlab-Event": "Push Hook"},
    )
    assert r.status_code == 200
    assert r.json()["status"] == "ignored"
