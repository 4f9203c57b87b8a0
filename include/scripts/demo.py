"""``make demo``: a local Airflow (standalone: SQLite + LocalExecutor) wired to the sandbox.

Steps: prepare ``.demo/airflow`` as AIRFLOW_HOME, migrate its metadata DB, apply
``airflow_settings.yaml``, start the sandbox (port 8900), a Dovecot IMAP server (port 8143, when
installed), an SMTP sink (aiosmtpd, port 8925, when installed: ``smtp_default`` points at it, every
message is kept in a Maildir) and ``airflow standalone`` (port 8080); wait until
``/api/v2/monitor/health`` reports every component healthy; print the UI URL and the admin password.
Ctrl-C, SIGTERM, SIGHUP or ``make stop`` ends every process it started, whenever it comes
(``include/sandbox/processes.py``): each runs in a session of its own and the whole session is
ended, because ``airflow standalone`` leaves its scheduler, triggerer, workers and task processes
(process groups of their own) running when only it is killed. ``make stop`` sends SIGTERM to the
running demo, then ends whatever ``.demo/pids.json`` still names (after a demo killed with SIGKILL).

Ports can be changed with DEMO_PORT, SANDBOX_PORT, IMAP_PORT and SMTP_PORT, the state directory
(``.demo``: Airflow home, logs, pid file) with DEMO_DIR.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("DEMO_DIR") or REPO / ".demo").resolve()
HOME = STATE / "airflow"
PIDS = STATE / "pids.json"
VENV_BIN = Path(sys.executable).parent
PORT = int(os.environ.get("DEMO_PORT", "8080"))
SANDBOX_PORT = int(os.environ.get("SANDBOX_PORT", "8900"))
IMAP_PORT = int(os.environ.get("IMAP_PORT", "8143"))
SMTP_PORT = int(os.environ.get("SMTP_PORT", "8925"))  # airflow_settings.yaml: smtp_default's ${SMTP_PORT:-8925}
HEALTH_TIMEOUT = 180
GRACE = 10  # seconds between SIGTERM and SIGKILL: time for the scheduler to shut down cleanly
sys.path[:0] = [str(REPO), str(REPO / "plugins")]  # `include` and `devops_automation`, for start and stop alike

from include.sandbox.processes import ProcessGuard, Root, Terminated, stat, terminate  # noqa: E402


def demo_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(HOME),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(PORT),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{PORT}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{PORT}/execution/",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "20",
            "SANDBOX_URL": f"http://127.0.0.1:{SANDBOX_PORT}",
            "IMAP_PORT": str(IMAP_PORT),
            "SMTP_PORT": str(SMTP_PORT),
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # standalone starts `airflow ...`
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(REPO), str(REPO / "plugins"), os.environ.get("PYTHONPATH")])
            ),
        }
    )
    return env


def _running(root: Root) -> bool:
    st = stat(root.pid)
    return st is not None and st.state != "Z" and (root.start is None or st.start == root.start)


def stop() -> int:
    """``make stop``: SIGTERM to the running demo (which stops all it started), then end what is left."""
    try:
        state = json.loads(PIDS.read_text())
    except FileNotFoundError:  # never started, or already stopped (by Ctrl-C or another `make stop`)
        print("demo: nothing to stop")
        return 0
    except ValueError:
        state = {}
    demo = Root(*state["demo"]) if state.get("demo") else None
    if demo and demo.pid != os.getpid() and _running(demo):
        os.kill(demo.pid, signal.SIGTERM)
        deadline = time.monotonic() + GRACE + 30
        while _running(demo) and time.monotonic() < deadline:
            time.sleep(0.2)
    # whatever is still there: the demo was killed with SIGKILL, or did not finish in time
    terminate([Root(*s) for s in state.get("sessions", [])] + [Root(pid) for pid in state.get("pgids", [])], GRACE)
    if state.get("dovecot_dir") and Path(state["dovecot_dir"]).exists():
        from include.sandbox.servers import DovecotServer

        server = DovecotServer(port=IMAP_PORT)
        server.dir = Path(state["dovecot_dir"])
        server.stop()
    if state.get("smtp_dir") and Path(state["smtp_dir"]).exists():
        from include.sandbox.servers import SmtpServer

        smtp = SmtpServer(port=SMTP_PORT)
        smtp.dir = Path(state["smtp_dir"])
        smtp.stop()
    PIDS.unlink(missing_ok=True)
    print("demo: stopped every process it started")
    return 0


def health() -> dict[str, str] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/api/v2/monitor/health", timeout=3) as r:
            data = json.load(r)
    except (OSError, ValueError, http.client.HTTPException):  # not up yet, or not answering JSON
        return None
    return {name: str(part.get("status")) for name, part in data.items() if isinstance(part, dict)}


def main() -> int:
    if "--stop" in sys.argv:
        return stop()
    if PIDS.exists():
        print("demo: a previous demo is still recorded as running; stopping it first")
        stop()
    try:
        return run()
    except Terminated:  # Ctrl-C, SIGTERM, `make stop`: an asked-for end, and everything is stopped by now
        print("demo: stopped every process it started", flush=True)
        return 0


def run() -> int:
    STATE.mkdir(parents=True, exist_ok=True)
    HOME.mkdir(parents=True, exist_ok=True)
    env = demo_env()
    log_dir = STATE / "logs"
    log_dir.mkdir(exist_ok=True)
    dovecot = None
    smtp = None
    me = Root.of(os.getpid())

    def record() -> None:
        state = {
            "demo": list(me),
            "sessions": [list(r) for r in guard.roots],
            "dovecot_dir": str(dovecot.dir) if dovecot and dovecot.dir else None,
            "smtp_dir": str(smtp.dir) if smtp and smtp.dir else None,
        }
        PIDS.with_suffix(".tmp").write_text(json.dumps(state))
        PIDS.with_suffix(".tmp").replace(PIDS)

    # on any exit (return, exception, SIGTERM, SIGINT, SIGHUP) every process started below is stopped
    with ProcessGuard("demo", grace=GRACE) as guard:
        guard.callback(lambda: PIDS.unlink(missing_ok=True))  # last: when all is stopped
        record()
        print("demo: migrating the Airflow metadata database ...", flush=True)
        with open(log_dir / "migrate.log", "wb") as log_file:
            guard.run(
                [str(VENV_BIN / "airflow"), "db", "migrate"],
                env=env,
                check=True,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        # a known admin password, so the airflow_api connection (run notes) can log in; standalone keeps it
        pw_file = HOME / "simple_auth_manager_passwords.json.generated"
        if not pw_file.exists():
            import secrets

            pw_file.write_text(json.dumps({"admin": secrets.token_urlsafe(12)}))
        env["AIRFLOW_API_PASSWORD"] = json.loads(pw_file.read_text())["admin"]
        env["AIRFLOW_API_URL"] = f"http://127.0.0.1:{PORT}"
        print("demo: applying airflow_settings.yaml ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "devops_automation.settings_loader", str(REPO / "airflow_settings.yaml")],
            env=env,
            check=True,
        )

        # a child writes to its own copy of the log's file descriptor: ours can be closed once it is started
        with open(log_dir / "sandbox.log", "wb") as log_file:
            sandbox = guard.popen(
                [sys.executable, "-m", "include.sandbox", "--port", str(SANDBOX_PORT)],
                cwd=REPO,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        record()
        try:
            from include.sandbox.servers import DovecotServer, MissingBinary

            dovecot = guard.start(DovecotServer(port=IMAP_PORT))
            record()
        except MissingBinary as exc:
            print(f"demo: no IMAP server ({exc}); e-mail intake is unavailable", flush=True)
        try:
            from include.sandbox.servers import SmtpServer

            smtp = SmtpServer(port=SMTP_PORT)  # smtp_default: airflow_settings.yaml
            guard.start(smtp)
            record()
        except MissingBinary as exc:
            smtp = None
            print(f"demo: no SMTP server ({exc}); e-mails are not delivered", flush=True)
        with open(log_dir / "airflow.log", "wb") as log_file:
            airflow = guard.popen(
                [str(VENV_BIN / "airflow"), "standalone"],
                cwd=REPO,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        record()

        print(f"demo: starting Airflow (logs in {log_dir}) ...", flush=True)
        t0 = time.monotonic()
        status: dict[str, str] | None = None
        while time.monotonic() - t0 < HEALTH_TIMEOUT:
            if airflow.poll() is not None or sandbox.poll() is not None:
                print(f"demo: a process exited early; see {log_dir}", file=sys.stderr)
                return 1
            status = health()
            if status and all(v == "healthy" for v in status.values()) and len(status) >= 4:
                break
            time.sleep(2)
        else:
            print(f"demo: Airflow not healthy after {HEALTH_TIMEOUT}s: {status}; see {log_dir}", file=sys.stderr)
            return 1
        pw_file = HOME / "simple_auth_manager_passwords.json.generated"
        password = json.loads(pw_file.read_text()).get("admin", "?") if pw_file.exists() else "(see airflow.log)"
        print(
            f"\n  Airflow UI:  http://127.0.0.1:{PORT}   user: admin   password: {password}\n"
            f"  healthy in {time.monotonic() - t0:.0f}s: {', '.join(f'{k}={v}' for k, v in sorted(status.items()))}\n"
            f"  sandbox:     http://127.0.0.1:{SANDBOX_PORT}/_sandbox/docs"
            + (f"\n  IMAP:        127.0.0.1:{IMAP_PORT} (user ci@example.test)" if dovecot else "")
            + (f"\n  SMTP:        127.0.0.1:{SMTP_PORT} (every message kept in {smtp.maildir})" if smtp else "")
            + "\n  Ctrl-C (or `make stop` in another shell) stops everything.\n",
            flush=True,
        )
        while airflow.poll() is None and sandbox.poll() is None:
            time.sleep(1)
        print("demo: a process exited; stopping the rest", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
