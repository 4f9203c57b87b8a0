"""include/scripts/demo.py (``make demo``) stops everything it started: on Ctrl-C and on ``make stop``.

The demo runs for real on free ports with its state in a temporary DEMO_DIR. As soon as ``airflow
standalone`` and its components run (mid-startup: Airflow is not healthy yet; for SIGINT also the
LocalExecutor workers), the demo is ended by SIGINT, or by ``demo.py --stop`` from another process; \
nothing it started may be left (found through
this test's process tree, this test being a subreaper so that Dovecot's daemon stays in it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from include.sandbox.client import free_port
from tests.conftest import REPO, _unavailable
from tests.include.scripts.process_tree import (
    Watch,
    alive,
    in_sessions,
    port_free,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.imap]

DEMO = REPO / "include" / "scripts" / "demo.py"
COMPONENTS = (
    "airflow standalone",
    "airflow scheduler",
    "airflow triggerer",
    "airflow dag-processor",
    "airflow api_server",
)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from include.sandbox.servers import DovecotServer, MissingBinary, SmtpServer

    if not DovecotServer().binary:  # the tests wait for the demo's Dovecot
        _unavailable("Dovecot IMAP", MissingBinary("dovecot", "dovecot-imapd"))
    try:
        SmtpServer.command()  # and for its SMTP sink
    except MissingBinary as exc:
        _unavailable("SMTP server (aiosmtpd)", exc)
    return tmp_path_factory.mktemp("demo")  # shared: the second test finds the metadata DB migrated


def demo_env(demo_dir: Path, report_history: bool = True) -> tuple[dict[str, str], list[int]]:
    """The demo's environment on free ports. ``report_history=False``: without the report backfills
    (``airflow dags reserialize`` and two ``airflow backfill create``, ~8 s before Airflow starts), for
    the tests of ``make stop``, which stop what the demo runs, not how its database was filled."""
    ports = [free_port(), free_port(), free_port(), free_port()]
    env = dict(
        os.environ,
        DEMO_REPORT_HISTORY="1" if report_history else "0",
        DEMO_DIR=str(demo_dir),
        DEMO_PORT=str(ports[0]),
        SANDBOX_PORT=str(ports[1]),
        IMAP_PORT=str(ports[2]),
        SMTP_PORT=str(ports[3]),
    )
    return env, ports


def start_demo(watch: Watch, env: dict[str, str], out: Path, *also: str) -> tuple[subprocess.Popen, dict]:
    """Start the demo; return once Airflow's components, the sandbox, Dovecot, aiosmtpd (and ``also``) all run."""
    with open(out, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(DEMO)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def up() -> bool:
        assert proc.poll() is None, out.read_text()
        cmds = [p.cmd for p in watch.started().values()]
        return all(
            any(c.endswith(part) or f"{part} " in c for c in cmds)
            for part in (*COMPONENTS, "-m include.sandbox", "dovecot -c", "-m aiosmtpd", *also)
        )

    wait_for("Airflow's components, the sandbox, Dovecot and aiosmtpd", up, 75)
    return proc, watch.started()


def assert_nothing_left(watch: Watch, started: dict, proc: subprocess.Popen, ports: list[int], demo_dir: Path) -> None:
    cmds = [p.cmd for p in started.values()]
    assert all(any(part in c for c in cmds) for part in (*COMPONENTS, "dovecot/", "-m aiosmtpd")), cmds  # not vacuous
    left = alive(started) + list(watch.started().values())
    assert not left, f"left behind: {[p.cmd for p in left]}"
    assert not in_sessions({p.sid for p in started.values()} | {proc.pid}), (
        "a session the demo started still has processes"
    )
    assert all(port_free(p) for p in ports), [(p, port_free(p)) for p in ports]
    assert not (demo_dir / "pids.json").exists()


def test_ctrl_c_mid_startup_stops_everything(demo_dir: Path, tmp_path: Path) -> None:
    env, ports = demo_env(demo_dir)
    out = tmp_path / "demo.out"
    with Watch() as watch:
        proc, started = start_demo(watch, env, out, "LocalExecutor: <idle>")  # the scheduler's workers too
        assert (demo_dir / "pids.json").exists()
        os.kill(proc.pid, signal.SIGINT)
        t0 = time.monotonic()
        code = proc.wait(60)
        took = time.monotonic() - t0
        assert_nothing_left(watch, started, proc, ports, demo_dir)
        text = out.read_text()
        assert code == 0, text
        assert (
            "demo: SIGINT: stopping every process it started" in text
            and "demo: stopped every process it started" in text
        )
    print(f"{len(started)} processes before SIGINT, all gone {took:.1f}s after it")


def test_make_stop_stops_the_running_demo(demo_dir: Path, tmp_path: Path) -> None:
    env, ports = demo_env(demo_dir, report_history=False)
    out = tmp_path / "demo.out"
    with Watch() as watch:
        proc, started = start_demo(watch, env, out)
        t0 = time.monotonic()
        stop = subprocess.run(
            [sys.executable, str(DEMO), "--stop"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        took = time.monotonic() - t0
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert "demo: stopped every process it started" in stop.stdout
        assert proc.wait(10) == 0, out.read_text()  # `make stop` waited for the demo to finish
        assert_nothing_left(watch, started, proc, ports, demo_dir)
    print(f"{len(started)} processes before `make stop`, all gone {took:.1f}s after it")


def test_make_stop_after_the_demo_was_killed(demo_dir: Path, tmp_path: Path) -> None:
    """SIGKILL cannot be handled: then ``make stop`` ends what the pid file names (sessions, Dovecot, aiosmtpd)."""
    env, ports = demo_env(demo_dir, report_history=False)
    out = tmp_path / "demo.out"
    with Watch() as watch:
        proc, started = start_demo(watch, env, out)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
        orphans = alive(started)
        assert any("airflow standalone" in p.cmd for p in orphans) and any("dovecot -c" in p.cmd for p in orphans)
        assert any("-m aiosmtpd" in p.cmd for p in orphans)
        stop = subprocess.run(
            [sys.executable, str(DEMO), "--stop"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert_nothing_left(watch, started, proc, ports, demo_dir)


def test_demo_tasks_wait_for_the_api_server_that_standalone_starts_after_its_scheduler() -> None:
    """The backfills' first tasks start before standalone's API server listens (healthy in ~20-30 s on 2
    cores): with Airflow's default 5 attempts a task's try failed with "Connection refused" after a few
    seconds. tenacity's random exponential wait is at least ``wait_min`` per retry."""
    from include.scripts import demo

    env = demo.demo_env()
    retries = int(env["AIRFLOW__WORKERS__EXECUTION_API_RETRIES"])
    wait_min = float(env["AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MIN"])
    wait_max = float(env["AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MAX"])
    assert (retries - 1) * wait_min >= 25  # the shortest the first call can keep trying
    assert wait_min <= wait_max <= 10  # once the server is up, a task is not left waiting long
