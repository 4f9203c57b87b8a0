"""``make demo``: a local Airflow (standalone: SQLite + LocalExecutor) wired to the sandbox.

Steps: prepare ``.demo/airflow`` as AIRFLOW_HOME, migrate its metadata DB, apply
``airflow_settings.yaml``, start the sandbox (port 8900), a Dovecot IMAP server (port 8143, when
installed) and ``airflow standalone`` (port 8080); wait until ``/api/v2/monitor/health`` reports every
component healthy; print the UI URL and the admin password. Ctrl-C, SIGTERM or ``make stop`` ends
every process it started: each runs in its own process group and the whole group is killed, because
``airflow standalone`` leaves its scheduler, triggerer and workers running when only it is killed.

Ports can be changed with DEMO_PORT, SANDBOX_PORT and IMAP_PORT.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STATE = REPO / ".demo"
HOME = STATE / "airflow"
PIDS = STATE / "pids.json"
VENV_BIN = Path(sys.executable).parent
PORT = int(os.environ.get("DEMO_PORT", "8080"))
SANDBOX_PORT = int(os.environ.get("SANDBOX_PORT", "8900"))
IMAP_PORT = int(os.environ.get("IMAP_PORT", "8143"))
HEALTH_TIMEOUT = 180
sys.path[:0] = [str(REPO), str(REPO / "plugins")]  # `include` and `devops_automation`, for start and stop alike


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
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # standalone starts `airflow ...`
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), str(REPO / "plugins"), os.environ.get("PYTHONPATH")])),
        }
    )
    return env


def kill_groups(pgids: list[int]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = []
        for pgid in pgids:
            try:
                os.killpg(pgid, sig)
                alive.append(pgid)
            except ProcessLookupError:
                pass
        if not alive:
            return
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_group_alive(g) for g in alive):
            time.sleep(0.2)
        pgids = [g for g in alive if _group_alive(g)]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def stop() -> int:
    try:
        state = json.loads(PIDS.read_text())
    except FileNotFoundError:  # never started, or already stopped (by Ctrl-C or another `make stop`)
        print("demo: nothing to stop")
        return 0
    PIDS.unlink(missing_ok=True)  # first: the running demo then knows the stop was asked for
    kill_groups(state.get("pgids", []))
    if state.get("dovecot_dir"):
        from include.sandbox.servers import DovecotServer

        server = DovecotServer(port=IMAP_PORT)
        server.dir = Path(state["dovecot_dir"])
        server.stop()
    print("demo: stopped every process it started")
    return 0


def health() -> dict[str, str] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/api/v2/monitor/health", timeout=3) as r:
            data = json.load(r)
    except Exception:
        return None
    return {name: str(part.get("status")) for name, part in data.items() if isinstance(part, dict)}


def main() -> int:
    if "--stop" in sys.argv:
        return stop()
    if PIDS.exists():
        print("demo: a previous demo is still recorded as running; stopping it first")
        stop()
    STATE.mkdir(exist_ok=True)
    HOME.mkdir(parents=True, exist_ok=True)
    env = demo_env()
    pgids: list[int] = []
    dovecot = None

    def record() -> None:
        PIDS.write_text(json.dumps({"pgids": pgids, "dovecot_dir": str(dovecot.dir) if dovecot and dovecot.dir else None}))

    def shutdown(*_: object) -> None:
        print("\ndemo: stopping ...", flush=True)
        stop()
        sys.exit(0)

    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)
    log_dir = STATE / "logs"
    log_dir.mkdir(exist_ok=True)
    try:
        print("demo: migrating the Airflow metadata database ...", flush=True)
        subprocess.run([str(VENV_BIN / "airflow"), "db", "migrate"], env=env, check=True, stdout=open(log_dir / "migrate.log", "wb"), stderr=subprocess.STDOUT)
        # a known admin password, so the airflow_api connection (run notes) can log in; standalone keeps it
        pw_file = HOME / "simple_auth_manager_passwords.json.generated"
        if not pw_file.exists():
            import secrets

            pw_file.write_text(json.dumps({"admin": secrets.token_urlsafe(12)}))
        env["AIRFLOW_API_PASSWORD"] = json.loads(pw_file.read_text())["admin"]
        env["AIRFLOW_API_URL"] = f"http://127.0.0.1:{PORT}"
        print("demo: applying airflow_settings.yaml ...", flush=True)
        subprocess.run([sys.executable, "-m", "devops_automation.settings_loader", str(REPO / "airflow_settings.yaml")], env=env, check=True)

        sandbox = subprocess.Popen(
            [sys.executable, "-m", "include.sandbox", "--port", str(SANDBOX_PORT)],
            cwd=REPO, env=env, stdout=open(log_dir / "sandbox.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        pgids.append(sandbox.pid)
        record()
        try:
            from include.sandbox.servers import DovecotServer, MissingBinary

            dovecot = DovecotServer(port=IMAP_PORT).start()
            record()
        except MissingBinary as exc:
            print(f"demo: no IMAP server ({exc}); e-mail intake is unavailable", flush=True)
        airflow = subprocess.Popen(
            [str(VENV_BIN / "airflow"), "standalone"],
            cwd=REPO, env=env, stdout=open(log_dir / "airflow.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        pgids.append(airflow.pid)
        record()

        print(f"demo: starting Airflow (logs in {log_dir}) ...", flush=True)
        t0 = time.monotonic()
        status: dict[str, str] | None = None
        while time.monotonic() - t0 < HEALTH_TIMEOUT:
            if airflow.poll() is not None or sandbox.poll() is not None:
                print(f"demo: a process exited early; see {log_dir}", file=sys.stderr)
                stop()
                return 1
            status = health()
            if status and all(v == "healthy" for v in status.values()) and len(status) >= 4:
                break
            time.sleep(2)
        else:
            print(f"demo: Airflow not healthy after {HEALTH_TIMEOUT}s: {status}; see {log_dir}", file=sys.stderr)
            stop()
            return 1
        pw_file = HOME / "simple_auth_manager_passwords.json.generated"
        password = json.loads(pw_file.read_text()).get("admin", "?") if pw_file.exists() else "(see airflow.log)"
        print(
            f"\n  Airflow UI:  http://127.0.0.1:{PORT}   user: admin   password: {password}\n"
            f"  healthy in {time.monotonic() - t0:.0f}s: {', '.join(f'{k}={v}' for k, v in sorted(status.items()))}\n"
            f"  sandbox:     http://127.0.0.1:{SANDBOX_PORT}/_sandbox/docs"
            + (f"\n  IMAP:        127.0.0.1:{IMAP_PORT} (user ci@example.test)" if dovecot else "")
            + "\n  Ctrl-C (or `make stop` in another shell) stops everything.\n",
            flush=True,
        )
        while airflow.poll() is None and sandbox.poll() is None:
            time.sleep(1)
        if not PIDS.exists():  # `make stop` from another shell
            return 0
        print("demo: a process exited; stopping the rest", file=sys.stderr)
        stop()
        return 1
    except BaseException:
        stop()
        raise


if __name__ == "__main__":
    sys.exit(main())
