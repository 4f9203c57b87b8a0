"""Test harness: a throwaway Airflow home, real PostgreSQL, Dovecot and SMTP servers, headless Chromium and the
sandbox.

Airflow reads its configuration at import time, so the environment is set here, before any test
module imports Airflow. Servers are session-scoped and started only when a test asks for them.
Under ``CI=true`` a missing server binary fails the run instead of skipping (``make test`` installs
the binaries first when it runs as root).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from include.sandbox.browser import Browser
    from include.sandbox.client import SandboxClient
    from include.sandbox.servers import SmtpServer

REPO = Path(__file__).resolve().parents[1]
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="devops-test-airflow-"))

for _key in [k for k in os.environ if k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_", "AIRFLOW__"))]:
    del os.environ[_key]  # a developer's own Airflow settings must not leak into the tests
os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME}/airflow.db",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(what: str, exc: Exception) -> None:
    """No server: fail under CI (nothing may be skipped there), skip on a developer machine."""
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true: {exc}", pytrace=False)
    pytest.skip(f"{what} unavailable: {exc}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


# ---- Airflow ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata database (SQLite in the throwaway home); needed by dag.test()."""
    from airflow.utils.db import initdb

    initdb()
    return AIRFLOW_HOME


# ---- Real servers -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:  # noqa: F821
    from include.sandbox.servers import MissingBinary, PostgresServer

    server = PostgresServer()
    try:
        server.start()
    except MissingBinary as exc:
        _unavailable("PostgreSQL", exc)
    try:
        yield server
    finally:
        server.stop()


_db_names = itertools.count(1)


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> str:  # noqa: F821
    """SQLAlchemy URL of a new, empty database on the throwaway PostgreSQL server."""
    return pg_server.create_database(f"t{os.getpid()}_{next(_db_names)}")


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[DovecotServer]:  # noqa: F821
    from include.sandbox.servers import DovecotServer, MissingBinary

    server = DovecotServer()
    try:
        server.start()
    except MissingBinary as exc:
        _unavailable("Dovecot IMAP", exc)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpServer]:
    """An SMTP sink (aiosmtpd) that keeps every message; a test that asks for it (or for ``smtp``) gets
    ``AIRFLOW_CONN_SMTP_DEFAULT`` pointing at it from ``sandbox_conns``."""
    from include.sandbox.servers import MissingBinary, SmtpServer

    server = SmtpServer()
    try:
        server.start()
    except MissingBinary as exc:
        _unavailable("SMTP server (aiosmtpd)", exc)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp(smtp_server: SmtpServer) -> SmtpServer:
    """The SMTP server with no message received yet (for this test)."""
    smtp_server.clear()
    return smtp_server


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Chromium (Debian ``chromium``) driven over the DevTools protocol: ``browser.check_html(...)``."""
    from include.sandbox.browser import Browser
    from include.sandbox.servers import MissingBinary

    server = Browser()
    try:
        server.start()
    except MissingBinary as exc:
        _unavailable("Chromium", exc)
    try:
        yield server
    finally:
        server.stop()


# ---- Results store on both dialects -------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def results_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test against SQLite and the real PostgreSQL (a fresh database each time)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/results.db"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def results_store(results_url: str) -> Iterator[ResultsStore]:  # noqa: F821
    from devops_automation.store import ResultsStore

    store = ResultsStore(results_url)
    yield store
    store.dispose()


# ---- Sandbox ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:  # noqa: F821
    from include.sandbox.client import SandboxServer

    with SandboxServer(log_path=AIRFLOW_HOME / "sandbox.log") as server:
        yield server


#: How long before UTC midnight a test that must not cross it waits for it instead (``clear_of_midnight``).
MIDNIGHT_MARGIN_S = 8 * 60


@pytest.fixture
def clear_of_midnight() -> None:
    """For a test that takes "today" from the clock when it starts and needs it to be today until it ends
    (the DAG under test compares the interval with the real time its task starts): started within
    ``MIDNIGHT_MARGIN_S`` before UTC midnight, it waits until just after midnight."""
    import time

    left = -time.time() % 86400  # seconds to the next UTC midnight
    if left < MIDNIGHT_MARGIN_S:
        time.sleep(left + 1)


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxClient:  # noqa: F821
    """The sandbox, reset to its seeded state (records and faults cleared) for this test."""
    from include.sandbox.client import SandboxClient

    client = SandboxClient(sandbox_server.base_url)
    client.reset()
    return client


# ---- DAG runs against the sandbox ---------------------------------------------------------------

TELEGRAM_TOKEN = "123456:ABC-sandbox"
TELEGRAM_CHAT = "-1001234567890"


def sandbox_connections(sandbox_url: str, results_db: Path, smtp: SmtpServer | None = None) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` values pointing every connection at the sandbox (fast retries for tests), and
    ``smtp_default`` at the SMTP server when one is given."""
    import json

    fast = {"timeout": 10, "max_retries": 3, "backoff_initial": 0.01, "backoff_max": 0.05}

    def http(path: str, password: str | None = None, **extra: object) -> str:
        return json.dumps(
            {"conn_type": "http", "host": f"{sandbox_url}/{path}", "password": password, "extra": {**fast, **extra}}
        )

    return {
        "AIRFLOW_CONN_DEVLAKE_DEFAULT": http("devlake"),
        "AIRFLOW_CONN_GITLAB_DEFAULT": http("gitlab", "glpat-sandbox-token"),
        "AIRFLOW_CONN_GITHUB_DEFAULT": http("github", "ghp_sandboxtoken000000000000000000000000"),
        "AIRFLOW_CONN_PROMETHEUS_DEFAULT": http("prometheus"),
        "AIRFLOW_CONN_SONARQUBE_DEFAULT": http("sonarqube", "squ_sandbox"),
        "AIRFLOW_CONN_LLM_DEFAULT": json.dumps(
            {
                "conn_type": "generic",
                "host": f"{sandbox_url}/openai/v1",
                "password": "sk-sandbox",
                "extra": {"model": "gpt-4o-mini", "timeout": 10, "max_retries": 1},
            }
        ),
        "AIRFLOW_CONN_SLACK_DEFAULT": json.dumps(
            {
                "conn_type": "slack",
                "password": "xoxb-sandbox-token",
                "extra": {"base_url": f"{sandbox_url}/slack/api/", "channel": "C0CIFAIL"},
            }
        ),
        "AIRFLOW_CONN_TELEGRAM_DEFAULT": json.dumps(
            {
                "conn_type": "telegram",
                "host": TELEGRAM_CHAT,
                "password": TELEGRAM_TOKEN,
                "extra": {"base_url": f"{sandbox_url}/telegram/bot"},
            }
        ),
        "AIRFLOW_CONN_DEVOPS_RESULTS_DB": json.dumps({"conn_type": "sqlite", "host": str(results_db)}),
        **({"AIRFLOW_CONN_SMTP_DEFAULT": smtp.airflow_conn()} if smtp else {}),
    }


@pytest.fixture
def sandbox_conns(
    sandbox: SandboxClient,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> dict[str, str]:
    """Every connection points at the (reset) sandbox; the results store is a fresh SQLite file; and
    ``smtp_default`` at the SMTP server when the test uses it (``smtp_server`` / ``smtp``)."""
    smtp = request.getfixturevalue("smtp_server") if "smtp_server" in request.fixturenames else None
    conns = sandbox_connections(sandbox.base_url, tmp_path / "results.db", smtp)
    for key, value in conns.items():
        monkeypatch.setenv(key, value)
    return conns


@pytest.fixture
def run_dag(airflow_db: Path, sandbox_conns: dict[str, str]):
    """``run_dag(dag_id, logical_date=..., conf=..., retries=...)``: dag.test() of a DAG from dags/.

    ``retries`` overrides every task's retries (with no delay), so retry paths run in seconds.
    Returns ``(dag_run, {task_id or task_id[map_index]: state})``.
    """
    import datetime as dt

    from airflow.dag_processing.dagbag import DagBag
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    def run(
        dag_id: str, *, logical_date: dt.datetime | None = None, conf: dict | None = None, retries: int | None = None
    ):
        bag = DagBag(str(REPO / "dags"))
        assert not bag.import_errors, bag.import_errors
        dag = bag.dags[dag_id]
        if retries is not None:
            for task in dag.tasks:
                task.retries = retries
                task.retry_delay = dt.timedelta(0)
        kwargs = {"run_conf": conf} if conf else {}
        dag_run = dag.test(logical_date=logical_date or dt.datetime(2026, 11, 23, 6, tzinfo=dt.UTC), **kwargs)
        with create_session() as session:
            tis = session.scalars(
                select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == dag_run.run_id)
            ).all()
            states = {
                (ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"): str(ti.state) for ti in tis
            }
        return dag_run, states

    return run


@pytest.fixture(scope="session")
def airflow_api_server(airflow_db: Path) -> Iterator[dict[str, str]]:
    """A real ``airflow api-server`` on the test home (simple auth, user admin); yields its URL and login."""
    import http.client
    import json
    import subprocess
    import sys
    import time
    import urllib.request

    from include.sandbox.client import free_port

    port = free_port()
    password = "api-test-pw"
    passwords = AIRFLOW_HOME / "api_passwords.json"
    passwords.write_text(json.dumps({"admin": password}))
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
        }
    )
    with open(AIRFLOW_HOME / "api-server.log", "wb") as log:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "airflow"), "api-server", "--port", str(port), "--host", "127.0.0.1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"airflow api-server exited: see {AIRFLOW_HOME / 'api-server.log'}")
            try:
                with urllib.request.urlopen(f"{url}/api/v2/version", timeout=2):
                    break
            except (OSError, http.client.HTTPException):
                time.sleep(0.5)
        else:
            proc.kill()
            pytest.fail("airflow api-server did not start within 120 s")
        try:
            yield {"url": url, "login": "admin", "password": password}
        finally:
            import signal

            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
