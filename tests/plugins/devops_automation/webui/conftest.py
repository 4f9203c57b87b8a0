"""Fixtures of the view's tests: seeded results stores (SQLite and PostgreSQL), an app with a stand-in
login, and a real ``airflow api-server`` with a test auth manager (users allowed some DAGs, not others)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devops_automation.store import ResultsStore
from tests.conftest import AIRFLOW_HOME, REPO
from tests.plugins.devops_automation.webui.seed import seed

ALL_DAGS = frozenset(
    {
        "ci_failure_triage",
        "ci_pipeline_analytics",
        "daily_project_metrics",
        "weekly_report",
        "monthly_report",
        "ci_run_action",
    }
)
#: the test auth manager's users: name -> role (auth_manager.DENIED says what each may not read)
USERS = {"admin": "admin", "viewer": "viewer", "outsider": "viewer", "partial": "viewer"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """``(store, ids)``: the seed rows on SQLite and on the real PostgreSQL (read-only tests share it)."""
    folder = tmp_path_factory.mktemp(f"webui-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{folder}/results.db"
    else:
        server = request.getfixturevalue("pg_server")
        url = server.create_database(f"webui_{os.getpid()}_{request.module.__name__.rsplit('.', 1)[-1]}")
    store = ResultsStore(url)
    info = seed(store, folder / "reports")
    yield store, info["ids"]
    store.dispose()


@pytest.fixture(scope="module")
def sqlite_seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    folder = tmp_path_factory.mktemp("webui-api")
    store = ResultsStore(f"sqlite:///{folder}/results.db")
    info = seed(store, folder / "reports")
    yield store, info["ids"]
    store.dispose()


class FakeUser:
    def __init__(self, name: str) -> None:
        self.username = name

    def get_name(self) -> str:
        return self.username


def client_for(store: ResultsStore, allowed: frozenset[str] = ALL_DAGS, **app_kwargs: Any):
    """A TestClient of the view's app on ``store``, logged in as a user who may read ``allowed``."""
    from fastapi.testclient import TestClient

    from devops_automation.webui.api import create_app
    from devops_automation.webui.auth import Viewer, get_viewer

    app = create_app(store=store, **app_kwargs)
    app.dependency_overrides[get_viewer] = lambda: Viewer(FakeUser("tester"), lambda dag: dag in allowed)
    return TestClient(app)


# ---- a real airflow api-server -----------------------------------------------------------------------


def _http(method: str, url: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class ApiServer:
    def __init__(self, url: str, results_db: Path, store: ResultsStore, ids: dict, passwords: dict[str, str]) -> None:
        self.url = url
        self.results_db = results_db
        self.store = store
        self.ids = ids
        self.passwords = passwords
        self._tokens: dict[str, str] = {}

    def token(self, user: str) -> str:
        if user not in self._tokens:
            status, body = _http("POST", f"{self.url}/auth/token", {"username": user, "password": self.passwords[user]})
            assert status == 201, body
            self._tokens[user] = json.loads(body)["access_token"]
        return self._tokens[user]

    def get(self, path: str, user: str | None = None, headers: dict | None = None) -> tuple[int, Any]:
        hdrs = dict(headers or {})
        if user is not None:
            hdrs["Authorization"] = f"Bearer {self.token(user)}"
        status, body = _http("GET", f"{self.url}{path}", headers=hdrs)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body


@contextlib.contextmanager
def api_server(
    folder: Path, fill: Callable[[ResultsStore, Path], dict], name: str = "webui-api-server"
) -> Iterator[ApiServer]:
    """``airflow api-server`` with both plugins, the test auth manager and a SQLite results database
    (connection ``devops_results_db``) filled by ``fill(store, archive_dir)``; events polled every 0.2 s,
    heartbeats every second. Stopped (its whole session) on exit."""
    from include.sandbox.client import free_port

    results_db = folder / "results.db"
    store = ResultsStore(f"sqlite:///{results_db}")
    ids = fill(store, folder / "reports")["ids"]
    passwords = {name: f"{name}-pw-7f3" for name in USERS}
    passwords_file = folder / "passwords.json"
    passwords_file.write_text(json.dumps(passwords))
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "plugins"), env.get("PYTHONPATH", "")]).rstrip(
                os.pathsep
            ),
            "AIRFLOW__CORE__AUTH_MANAGER": "tests.plugins.devops_automation.webui.auth_manager.DenyingAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in USERS.items()),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW_CONN_DEVOPS_RESULTS_DB": json.dumps({"conn_type": "sqlite", "host": str(results_db)}),
            "DEVOPS_GITLAB_WEBHOOK_TOKEN": "webui-test-webhook-token",
            "DEVOPS_EVENTS_POLL_S": "0.2",
            "DEVOPS_EVENTS_HEARTBEAT_S": "1",
        }
    )
    log_path = AIRFLOW_HOME / f"{name}.log"
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "airflow"), "api-server", "--port", str(port), "--host", "127.0.0.1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"airflow api-server exited: see {log_path}")
                try:
                    with urllib.request.urlopen(f"{url}/api/v2/version", timeout=2):
                        break
                except (OSError, http.client.HTTPException):
                    if time.monotonic() > deadline:
                        pytest.fail(f"airflow api-server did not start within 120 s: see {log_path}")
                    time.sleep(0.3)
            yield ApiServer(url, results_db, store, ids, passwords)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
            store.dispose()


@pytest.fixture(scope="session")
def webui_api_server(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """The API server on the test seed (:mod:`.seed`)."""
    with api_server(tmp_path_factory.mktemp("webui-server"), seed) as server:
        yield server


def read_events(response: http.client.HTTPResponse, until: Callable[[list[dict]], bool], timeout: float) -> list[dict]:
    """Server-Sent Events (and ``: comment`` lines) read from ``response`` until ``until(events)`` holds or
    ``timeout`` seconds passed; each with ``at``, the monotonic time it was read. The server's heartbeat
    (every second here) keeps ``readline`` from blocking longer than that."""
    events: list[dict] = []
    current: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until(events):
        line = response.fp.readline()
        if not line:
            break
        text = line.decode().rstrip("\r\n")
        if not text:
            if current:
                current["at"] = time.monotonic()
                events.append(current)
                current = {}
        elif text.startswith(":"):
            events.append({"comment": text[1:].strip(), "at": time.monotonic()})
        else:
            field, _, value = text.partition(":")
            value = value[1:] if value.startswith(" ") else value
            current[field] = json.loads(value) if field == "data" else value
    return events
