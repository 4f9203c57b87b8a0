"""``make demo``: a local Airflow (standalone: SQLite + LocalExecutor) wired to the sandbox.

Steps: prepare ``.demo/airflow`` as AIRFLOW_HOME, migrate its metadata DB, apply
``airflow_settings.yaml``, start the sandbox (port 8900), a Dovecot IMAP server (port 8143, when
installed), an SMTP sink (aiosmtpd, port 8925, when installed: ``smtp_default`` points at it, every
message is kept in a Maildir) and ``airflow standalone`` (port 8080); wait until
``/api/v2/monitor/health`` reports every component healthy (before the start, the backfills behind
the first weekly report are created: ``DEMO_REPORT_HISTORY=0`` turns them off); drop the GitLab
failure e-mail of a seeded failed pipeline into the demo mailbox (so ``ci_failure_triage`` has
analysed a failure by the time the UI is opened: ``DEMO_FIRST_FAILURE`` names the sandbox scenario,
default ``pytest``; ``0`` turns it off); print the UI URL and the admin password, then how long the
first failure took to reach Slack, with its run's note.
Ctrl-C, SIGTERM, SIGHUP or ``make stop`` ends every process it started, whenever it comes
(``include/sandbox/processes.py``): each runs in a session of its own and the whole session is
ended, because ``airflow standalone`` leaves its scheduler, triggerer, workers and task processes
(process groups of their own) running when only it is killed. ``make stop`` sends SIGTERM to the
running demo, then ends whatever ``.demo/pids.json`` still names (after a demo killed with SIGKILL).

Ports can be changed with DEMO_PORT, SANDBOX_PORT, IMAP_PORT and SMTP_PORT, the state directory
(``.demo``: Airflow home, logs, pid file) with DEMO_DIR.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import re
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
FIRST_FAILURE_WAIT = 300  # seconds the demo watches for the first failure's Slack message
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
            # standalone's scheduler starts the backfills' tasks before its API server listens: a task's
            # first call to the Execution API waits for it (28 s at least, 10 s apart at most) instead of
            # failing its try after Airflow's default 5 attempts (a few seconds)
            "AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "15",
            "AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MIN": "2",
            "AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MAX": "10",
            # wait for SQLite's lock instead of stopping on it (include/scripts/demo_sqlite.py)
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "include.scripts.demo_sqlite.CONNECT_ARGS",
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


def _api(method: str, path: str, token: str | None = None, body: dict | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}", data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.load(r)


def last_full_week(now: float | None = None) -> tuple[dt.datetime, dt.datetime]:
    """The last full Monday-to-Monday week in the reports' timezone (``DEVOPS_AUTOMATION_REPORT_TIMEZONE``)."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(os.environ.get("DEVOPS_AUTOMATION_REPORT_TIMEZONE", "UTC"))
    today = dt.datetime.fromtimestamp(time.time() if now is None else now, tz).date()
    monday = today - dt.timedelta(days=today.weekday())
    end = dt.datetime.combine(monday, dt.time(), tz)
    return end - dt.timedelta(days=7), end


def backfill_report_history(guard: ProcessGuard, env: dict[str, str], log_dir: Path, weeks: int = 2) -> tuple:
    """History for the first weekly report: Airflow's own backfills of ``ci_pipeline_analytics`` and
    ``daily_project_metrics`` over the last full week and the one before (its changes), from the
    sandbox's history. Backfilled runs record and send nothing; the scheduled ``weekly_report`` run of
    that week waits (deferred) for their last day and then delivers.

    They are created with ``airflow backfill create`` (after ``airflow dags reserialize``, so the DAGs
    are known) before Airflow starts, not with ``POST /api/v2/backfills`` once it is healthy: on the
    demo's SQLite metadata database, creating a backfill's runs while the scheduler, triggerer and DAG
    processor write their first runs either failed at once (HTTP 503 "Database is locked") or, sent
    again, held the database for 30 s, so that their heartbeats failed and all three stopped. Before
    the start nothing else writes. A demo restarted on the same ``DEMO_DIR`` has them already: the
    command's refusal is logged and the demo goes on. Returns the week (start, end)."""
    start, end = last_full_week()
    from_date = (start - dt.timedelta(days=7 * (weeks - 1))).astimezone(dt.UTC).replace(hour=0, minute=0)
    # through the last UTC day of the week and of the last full month: the scheduled weekly_report and
    # monthly_report runs wait for the sources' runs of their period's last day
    today = dt.datetime.fromtimestamp(time.time(), end.tzinfo).date()
    month_end = dt.datetime.combine(today.replace(day=1), dt.time(), end.tzinfo)
    to_date = max(
        (last - dt.timedelta(microseconds=1)).astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        for last in (end, month_end)
    )
    airflow = str(VENV_BIN / "airflow")
    with open(log_dir / "backfill.log", "ab") as log_file:
        guard.run([airflow, "dags", "reserialize"], env=env, check=True, stdout=log_file, stderr=subprocess.STDOUT)
        for dag_id in ("ci_pipeline_analytics", "daily_project_metrics"):
            done = guard.run(
                [
                    *(airflow, "backfill", "create", "--dag-id", dag_id, "--max-active-runs", "2"),
                    *("--from-date", from_date.isoformat(), "--to-date", to_date.isoformat()),
                ],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            print(
                f"demo: backfill of {dag_id}: {from_date:%Y-%m-%d} .. {to_date:%Y-%m-%d}"
                + ("" if done.returncode == 0 else f" not created (see {log_dir / 'backfill.log'})"),
                flush=True,
            )
    return start, end


def _sandbox(method: str, path: str, body: dict | None = None, base: str | None = None) -> object:
    """A call to the sandbox's control API (``/_sandbox/...``)."""
    data = json.dumps(body).encode() if body is not None else None
    url = f"{base or f'http://127.0.0.1:{SANDBOX_PORT}'}/_sandbox{path}"
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method=method)
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.load(r)


def deliver_first_failure(imap: dict, scenario: str = "pytest", sandbox_url: str | None = None) -> dict:
    """The failure on the first screen: GitLab's "Failed pipeline" e-mail of the seeded failed pipeline
    of ``scenario`` (``GET /_sandbox/gitlab/scenarios``), built by the sandbox GitLab and APPENDed to
    the mailbox ``imap`` (host, port, user, password, folder) that ``imap_default`` watches, exactly as
    the README's curl command does. The mail watcher in the triggerer starts ``ci_failure_triage``
    within seconds (it also fires for mail that was there before it started). Returns the scenario
    (project and pipeline ids and path) with the delivered ``message_id``."""
    seeded = _sandbox("GET", "/gitlab/scenarios", base=sandbox_url)
    if not isinstance(seeded, dict) or scenario not in seeded:
        raise KeyError(f"no sandbox GitLab scenario {scenario!r} (known: {sorted(seeded or {})})")
    sc = dict(seeded[scenario])
    got = _sandbox("POST", "/gitlab/emails/deliver", {"pipeline_id": sc["pipeline_id"], "imap": imap}, sandbox_url)
    assert isinstance(got, dict)
    return {**sc, "scenario": scenario, "message_id": got["message_id"], "folder": got["folder"]}


def first_failure_message(pipeline_id: object, sandbox_url: str | None = None) -> dict | None:
    """The Slack message ``ci_failure_triage`` sent for the pipeline (sandbox Slack), or None yet."""
    messages = _sandbox("GET", "/slack/messages", base=sandbox_url)
    return next((m for m in messages or [] if isinstance(m, dict) and _names(str(m.get("text")), pipeline_id)), None)


def _names(text: str, pipeline_id: object) -> bool:
    """Whether ``text`` names pipeline ``#<pipeline_id>`` (not a longer number that starts the same)."""
    return re.search(rf"#{re.escape(str(pipeline_id))}(?!\d)", text) is not None


def triage_note(password: str, pipeline_id: object) -> str | None:
    """The note of the latest ``ci_failure_triage`` run that names the pipeline (Airflow REST API)."""
    token = _api("POST", "/auth/token", body={"username": "admin", "password": password})["access_token"]
    runs = _api("GET", "/api/v2/dags/ci_failure_triage/dagRuns?order_by=-run_after&limit=10", token)
    notes = [str(r.get("note") or "") for r in runs.get("dag_runs", [])]
    return next((n for n in notes if _names(n, pipeline_id)), None)


def watch_first_failure(first: dict, password: str) -> dict | None:
    """One look at the first failure (called about once a second): prints how long after its e-mail
    its Slack message was sent and, once written, the triage run's note; None when that is told."""
    try:
        if "slack_s" not in first and first_failure_message(first["pipeline_id"]):
            first["slack_s"] = time.monotonic() - first["at"]
        if "slack_s" not in first:
            return first
        note = triage_note(password, first["pipeline_id"])
    except (OSError, ValueError, KeyError, http.client.HTTPException):
        return first
    if note or time.monotonic() - first["at"] - first["slack_s"] > 30:
        print(
            f"demo: the first failure was analysed and sent to Slack {first['slack_s']:.0f}s after its e-mail"
            + (f"; run note: {note}" if note else ""),
            flush=True,
        )
        return None
    return first


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

        report_week = None
        if os.environ.get("DEMO_REPORT_HISTORY", "1") != "0":
            print("demo: creating the backfills behind the first weekly report ...", flush=True)
            try:
                report_week = backfill_report_history(guard, env, log_dir)
            except (OSError, subprocess.CalledProcessError) as exc:
                print(f"demo: could not create the backfills for the weekly report ({exc})", file=sys.stderr)

        try:
            from include.sandbox.servers import MissingBinary, SmtpServer

            smtp = SmtpServer(port=SMTP_PORT)  # smtp_default: airflow_settings.yaml
            guard.start(smtp)
            record()
        except MissingBinary as exc:
            smtp = None
            print(f"demo: no SMTP server ({exc}); e-mails are not delivered", flush=True)
        if smtp is not None:  # the sandbox shows what it received: /_sandbox/mail/messages
            env["SANDBOX_MAILDIR"] = str(smtp.maildir)
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
        healthy_s = time.monotonic() - t0
        first, scenario = None, os.environ.get("DEMO_FIRST_FAILURE", "pytest")
        if dovecot and scenario not in ("", "0"):
            # the folder imap_default watches (airflow_settings.yaml)
            imap = {"host": "127.0.0.1", "port": IMAP_PORT, "user": dovecot.user, "password": dovecot.password}
            try:
                first = deliver_first_failure({**imap, "folder": "INBOX"}, scenario)
                first["at"] = time.monotonic()
            except (OSError, ValueError, KeyError, http.client.HTTPException) as exc:
                print(f"demo: could not deliver the first failure e-mail ({exc})", file=sys.stderr)
        print(
            f"\n  Airflow UI:  http://127.0.0.1:{PORT}   user: admin   password: {password}\n"
            f"  healthy in {healthy_s:.0f}s: {', '.join(f'{k}={v}' for k, v in sorted(status.items()))}\n"
            f"  sandbox:     http://127.0.0.1:{SANDBOX_PORT}/_sandbox/docs"
            + (f"\n  IMAP:        127.0.0.1:{IMAP_PORT} (user ci@example.test)" if dovecot else "")
            + (
                f"\n  SMTP:        127.0.0.1:{SMTP_PORT} (every message kept in {smtp.maildir}; http://127.0.0.1:{SANDBOX_PORT}/_sandbox/mail/messages)"
                if smtp
                else ""
            )
            + (
                f"\n  report:      weekly_report of {report_week[0]:%Y-%m-%d} .. {report_week[1]:%Y-%m-%d} goes to the"
                " sandbox Slack and Telegram, SMTP and reports/ once the backfills of its days are done"
                if report_week
                else ""
            )
            + (
                f"\n  failure:     GitLab's e-mail for {first['project_path']} pipeline #{first['pipeline_id']}"
                f" ({first['scenario']}) is in the demo mailbox: ci_failure_triage analyses it now;"
                f" Slack: http://127.0.0.1:{SANDBOX_PORT}/_sandbox/slack/messages"
                if first
                else ""
            )
            + "\n  Ctrl-C (or `make stop` in another shell) stops everything.\n",
            flush=True,
        )
        while airflow.poll() is None and sandbox.poll() is None:
            time.sleep(1)
            if first and time.monotonic() - first["at"] < FIRST_FAILURE_WAIT:
                first = watch_first_failure(first, password)
        print("demo: a process exited; stopping the rest", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
