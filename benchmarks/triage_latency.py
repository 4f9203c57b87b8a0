"""ci_failure_triage: time from a GitLab failure e-mail landing in the mailbox to its stored analysis.

    .venv/bin/python benchmarks/triage_latency.py [--emails 20] [--interval 1.0] [--timeout 300]

Runs the real thing, as deployed: ``airflow standalone`` (scheduler, dag-processor, triggerer,
api-server, LocalExecutor) on a throwaway home, the sandbox (GitLab, Slack, Telegram) and a real
Dovecot. The heuristic analyser is used (no ``llm_default`` connection). For each of ``--emails``
new failed pipelines a GitLab failure e-mail is APPENDed to the watched folder (``--interval``
seconds apart; 0 = all at once); the mail watcher (``ImapMailTrigger``, IMAP IDLE in the triggerer)
raises the asset event, the scheduler starts ``ci_failure_triage``, ``collect`` sweeps the mailbox
and the mapped ``analyse`` stores each job's analysis. The results database is polled every 0.1 s.

Prints one row per e-mail (append → stored analysis) and ends with
``emails=… p50_s=… max_s=… analyses=…`` (goal: p50 under 10 s; the tool it replaces polls every 60 s).

Every process it starts (Airflow with all its components and task processes, the sandbox, Dovecot) is
stopped on any exit, SIGTERM, SIGINT and SIGHUP included (e.g. under ``timeout``): see
``include/sandbox/processes.py``. Ended by a signal, it exits with 128 + the signal's number.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "plugins")]
VENV_BIN = Path(sys.executable).parent


# airflow_settings.yaml (argv[1]) applied without the connections named after it, in one process (an
# `airflow connections delete` afterwards would start Airflow's CLI once more: ~2 s)
APPLY_SETTINGS = """\
import sys
from devops_automation.settings_loader import apply_settings, load_settings
settings = load_settings(sys.argv[1])
settings.connections = [c for c in settings.connections if c.conn_id not in sys.argv[2:]]
print(apply_settings(settings))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(home: Path, port: int, sandbox_port: int, imap_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}",
            "IMAP_PORT": str(imap_port),
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "plugins")]),
        }
    )
    return env


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=3) as r:
            data = json.load(r)
    except (OSError, ValueError, http.client.HTTPException):  # not up yet, or not answering JSON
        return False
    parts = {k: v.get("status") for k, v in data.items() if isinstance(v, dict)}
    return len(parts) >= 4 and all(s == "healthy" for s in parts.values())


def wait(what: str, check, timeout: float, every: float = 0.5) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if check():
            return time.monotonic() - t0
        time.sleep(every)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f}s")


def watcher_running(airflow_db: Path) -> bool:
    try:
        with sqlite3.connect(airflow_db) as c:
            rows = c.execute("SELECT classpath, triggerer_id FROM trigger").fetchall()
    except sqlite3.Error:
        return False
    return any(cp.endswith("ImapMailTrigger") and tid is not None for cp, tid in rows)


def stored(results_db: Path) -> dict[str, float]:
    """pipeline id -> first time (monotonic) an analysis of it was seen."""
    try:
        with sqlite3.connect(results_db, timeout=1) as c:
            return {
                str(p): 0.0
                for (p,) in c.execute(
                    "SELECT DISTINCT e.pipeline_id FROM failure_analyses a JOIN failure_events e ON e.id = a.event_id"
                )
            }
    except sqlite3.Error:
        return {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--emails", type=int, default=20)
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between two appends (0 = all at once)")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--keep", action="store_true", help="keep the temporary home (logs) afterwards")
    args = ap.parse_args()

    from include.sandbox.client import SandboxClient
    from include.sandbox.processes import ProcessGuard
    from include.sandbox.servers import DovecotServer

    port, sandbox_port, imap_port = free_port(), free_port(), free_port()
    with ProcessGuard("triage_latency") as guard:  # on any exit (a signal too) what is started below is stopped
        home = Path(tempfile.mkdtemp(prefix="bench-triage-"))

        def remove_home() -> None:  # called by the guard after every process is gone
            if args.keep:
                print(f"kept {home}")
            else:
                shutil.rmtree(home, ignore_errors=True)

        guard.callback(remove_home)
        env = env_for(home, port, sandbox_port, imap_port)
        logs = home / "bench-logs"
        logs.mkdir()
        print(
            f"triage_latency: Airflow 127.0.0.1:{port}, sandbox :{sandbox_port}, IMAP :{imap_port}; logs in {logs}",
            flush=True,
        )
        with open(logs / "migrate.log", "wb") as log_file:
            guard.run(
                [str(VENV_BIN / "airflow"), "db", "migrate"],
                env=env,
                check=True,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        with open(logs / "settings.log", "wb") as log_file:  # without llm_default: the heuristic analyser
            guard.run(
                [sys.executable, "-c", APPLY_SETTINGS, str(REPO / "airflow_settings.yaml"), "llm_default"],
                env=env,
                check=True,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        # the children write to their own copies of the log's file descriptor: ours can be closed at once
        with open(logs / "sandbox.log", "wb") as log_file:
            guard.popen(
                [sys.executable, "-m", "include.sandbox", "--port", str(sandbox_port)],
                cwd=REPO,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        dovecot = guard.start(DovecotServer(port=imap_port))
        with open(logs / "airflow.log", "wb") as log_file:
            guard.popen(
                [str(VENV_BIN / "airflow"), "standalone"], cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT
            )
        boot = wait("Airflow health", lambda: healthy(port), 240, 0.25)
        armed = wait("mail watcher in the triggerer", lambda: watcher_running(home / "airflow.db"), 240, 0.25)
        print(f"Airflow healthy after {boot:.0f}s, mail watcher running {armed:.0f}s later", flush=True)

        sandbox = SandboxClient(f"http://127.0.0.1:{sandbox_port}")
        project = sandbox.control("gitlab", "GET", "/scenarios")["pytest"]["project_id"]
        pipelines = []
        for i in range(args.emails):
            log = (
                f"$ pytest -q\nFAILED tests/test_case_{i}.py::test_{i} - AssertionError: assert {i} == {i + 1}\n"
                "ERROR: Job failed: exit code 1\n"
            )
            jobs = [
                {"name": "build", "stage": "build", "trace": "ok\n"},
                {
                    "name": f"unit-tests-{i}",
                    "stage": "test",
                    "status": "failed",
                    "failure_reason": "script_failure",
                    "trace": log,
                },
            ]
            pipelines.append(
                sandbox.control("gitlab", "POST", f"/projects/{project}/pipelines", json={"jobs": jobs})["id"]
            )
        emails = [
            sandbox.control("gitlab", "POST", "/emails/pipeline", json={"pipeline_id": p})["eml"].encode()
            for p in pipelines
        ]

        import imaplib

        results_db = home / "devops_results.db"
        appended: dict[str, float] = {}
        seen: dict[str, float] = {}
        imap = imaplib.IMAP4("127.0.0.1", imap_port)
        imap.login(dovecot.user, dovecot.password)
        deadline = time.monotonic() + args.timeout
        next_append = time.monotonic()
        while len(seen) < len(pipelines) and time.monotonic() < deadline:
            now = time.monotonic()
            if len(appended) < len(pipelines) and now >= next_append:
                pid = str(pipelines[len(appended)])
                imap.append("INBOX", "", None, emails[len(appended)])
                appended[pid] = time.monotonic()
                next_append = now + args.interval
                continue
            for pid in stored(results_db):
                if pid in appended and pid not in seen:
                    seen[pid] = time.monotonic()
            time.sleep(0.1)
        imap.logout()

        lat = {p: seen[p] - appended[p] for p in seen}
        print(f"\n{'#':>3} {'pipeline':>9} {'append→analysis s':>18}")
        for i, p in enumerate(str(x) for x in pipelines):
            print(f"{i + 1:>3} {p:>9} {lat[p]:>18.2f}" if p in lat else f"{i + 1:>3} {p:>9} {'(not stored)':>18}")
        with sqlite3.connect(results_db) as c:
            analyses = c.execute("SELECT COUNT(*) FROM failure_analyses").fetchone()[0]
            runs = (
                sqlite3.connect(home / "airflow.db")
                .execute("SELECT COUNT(*) FROM dag_run WHERE dag_id='ci_failure_triage'")
                .fetchone()[0]
            )
        values = sorted(lat.values())
        p50 = statistics.median(values) if values else float("nan")
        mx = max(values) if values else float("nan")
        print(
            f"\nDAG runs: {runs}; interval between e-mails: {args.interval}s; analyser: heuristic; "
            f"missing: {len(pipelines) - len(lat)}"
        )
        print(f"emails={len(pipelines)} p50_s={p50:.2f} max_s={mx:.2f} analyses={analyses}")
        return 0 if len(lat) == len(pipelines) else 1


if __name__ == "__main__":
    sys.exit(main())
