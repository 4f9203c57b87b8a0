"""The DevOps view at scale: p95 latency of the read API and of the pages with concurrent clients, and how
soon a stored failure reaches a connected event stream.

    .venv/bin/python benchmarks/dashboard.py [--runs 1000000] [--analyses 50000] [--repos 200]
        [--projects 200] [--clients 8] [--requests 2000] [--workers 2] [--events 20]

**The store.** A throwaway PostgreSQL (``include/sandbox/servers.py``) with ``--runs`` synthetic CI runs of
``--repos`` repositories up to now, COPYed in by ``benchmarks/analytics.py``'s ``load_synthetic`` (40 runs a
repository a day: a million runs are 125 days; about 10 % re-run, three jobs an attempt, deployments);
failure analyses topped up to ``--analyses`` in SQL (each with root cause, fix steps, evidence and a 1.5 KB
excerpt, one failed pipeline each, three pipelines per ci_failure_triage run, recurring fingerprints);
60 days of health scores of ``--projects`` projects (with their inputs), 120 alert episodes, 8 weekly
reports; ``ci_daily`` of the last 8 days computed by ``analytics.store_daily`` (as ci_pipeline_analytics
does). Then ``VACUUM ANALYZE``.

**The server.** The real ``airflow api-server`` (``--workers`` uvicorn worker processes, its own
SQLite metadata database, the simple auth manager) with the plugin ``plugins/devops_automation_webui.py``,
reading the store through the ``devops_results_db`` connection, as deployed; every request carries a JWT
from ``POST /auth/token``, so Airflow's token check and auth manager are in every measurement.

**The load.** ``--clients`` threads (one keep-alive connection each) share ``--requests`` requests, round
robin over the main API routes, the pages' HTML documents and their chart images. Every distinct URL is
asked for a few times at once first, so that each worker process has it (cold: the first CI summary of a
filter set computes ``window_summary`` over the week and the week before, the first chart is drawn; the
table shows the slowest of those cold answers), then the measured round.
p95 per route, and over all API requests and all page documents (goal < 300 ms).

**Events.** While the load runs, a client holds the event stream open and a failure analysis is stored
every 0.5 s (``--events`` of them): the lag is from the commit to the event arriving on the stream
(goal < 2 s; the server polls every 0.5 s by default).

Last line: ``runs=… api_p95_ms=… page_p95_ms=… event_lag_s=…`` (``event_lag_s``: the largest lag).
PostgreSQL and the API server are stopped on any exit, SIGTERM/SIGINT/SIGHUP included
(``include/sandbox/processes.py``); ended by a signal it exits with 128 + the signal's number.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

DAY = dt.timedelta(days=1)
USER = "bench"
PASSWORD = "bench-dashboard-pw"
CATEGORIES = ("test_failure", "dependency", "compile_error", "infrastructure", "timeout", "configuration", "lint")
EXCERPT = "\n".join(
    [f"{n}: [INFO] step {n}: running the test suite of the service, shard {n % 4}" for n in range(120, 140)]
    + ["… (35 lines)"]
    + [f"{n}: E   AssertionError: expected 200, got 503 from http://payments:8080/health" for n in range(175, 180)]
)


# -- the store ---------------------------------------------------------------------------------------
def top_up_analyses(url: str, wanted: int, days: int, now: dt.datetime) -> int:
    """Failure analyses (one failed pipeline each) until there are ``wanted``; returns how many were added."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        have = conn.execute("SELECT count(*) FROM failure_analyses").fetchone()[0]
        add = max(0, wanted - have)
        if not add:
            return 0
        span = days * 86_400
        conn.execute(
            """
            INSERT INTO failure_events (provider, project_id, project_path, pipeline_id, ref, sha, status, source,
                                        pipeline_url, state, payload, received_at, updated_at)
            SELECT 'gitlab', 'bench-' || (g %% 40), 'bench-group/project-' || lpad((g %% 40)::text, 3, '0'),
                   'bench-' || g, CASE WHEN g %% 3 = 0 THEN 'main' ELSE 'feature-' || (g %% 24) END,
                   md5(g::text) || substr(md5((g + 1)::text), 1, 8), 'failed',
                   CASE WHEN g %% 2 = 0 THEN 'webhook' ELSE 'email' END,
                   'https://gitlab.example.com/bench-group/project-' || lpad((g %% 40)::text, 3, '0')
                       || '/-/pipelines/' || g,
                   'notified', jsonb_build_object('claimed_by', 'webhook__bench-' || (g / 3), 'sources',
                       jsonb_build_array('webhook')),
                   %(now)s - make_interval(secs => (%(n)s - g)::float8 * %(span)s / %(n)s),
                   %(now)s - make_interval(secs => (%(n)s - g)::float8 * %(span)s / %(n)s) + interval '2 minutes'
            FROM generate_series(1, %(n)s) AS g
            """,
            {"n": add, "now": now, "span": span},
        )
        conn.execute(
            """
            INSERT INTO failure_analyses (event_id, job_id, job_name, stage, job_url, category, root_cause, fix_steps,
                                          evidence_lines, is_transient, confidence, analyser, model, prompt_tokens,
                                          completion_tokens, latency_ms, excerpt, excerpt_lines, created_at)
            SELECT e.id, 'job-' || e.id, (ARRAY['pytest', 'build', 'lint', 'deploy'])[1 + e.id %% 4],
                   (ARRAY['test', 'build', 'test', 'deploy'])[1 + e.id %% 4], e.pipeline_url || '/jobs/' || e.id,
                   (%(categories)s::text[])[1 + e.id %% %(ncat)s],
                   'The payments health check answers 503 while the database migration runs (' || e.id || ').',
                   '["Wait for the migration job before the tests", "Re-run the pipeline"]'::jsonb,
                   '[{"line": 176, "text": "E   AssertionError: expected 200, got 503"}]'::jsonb,
                   e.id %% 5 = 0, 0.8, 'llm', 'gpt-4o-mini', 1800, 220, 2500, %(excerpt)s,
                   '["120-139", "175-179"]'::jsonb, e.received_at + interval '1 minute'
            FROM failure_events e WHERE e.pipeline_id LIKE 'bench-%%'
            """,
            {"categories": list(CATEGORIES), "ncat": len(CATEGORIES), "excerpt": EXCERPT},
        )
        conn.execute("UPDATE failure_analyses SET fingerprint = md5((id % 40)::text)")  # forty recurring failures
        conn.execute(
            "INSERT INTO failure_fingerprints (fingerprint, project_path, job_name, first_error, occurrences, "
            "first_seen, last_seen) SELECT fa.fingerprint, min(fe.project_path), min(fa.job_name), "
            "'AssertionError: expected 200, got 503', count(*), min(fa.created_at), max(fa.created_at) "
            "FROM failure_analyses fa JOIN failure_events fe ON fe.id = fa.event_id GROUP BY fa.fingerprint "
            "ON CONFLICT DO NOTHING"
        )
        conn.commit()
    return add


def health_rows(projects: list[str], days: int, now: dt.datetime) -> list[dict[str, Any]]:
    rng = random.Random(7)
    rows = []
    level = {p: rng.uniform(45, 92) for p in projects}
    for back in range(days, 0, -1):
        day = (now - back * DAY).date()
        for project in projects:
            level[project] = min(100.0, max(0.0, level[project] + rng.gauss(0, 1.5)))
            score = round(level[project], 1)
            dims = {d: round(min(100.0, max(0.0, score + rng.uniform(-8, 8))), 1) for d in ("delivery", "quality")}
            components = [
                {
                    "dimension": "delivery",
                    "name": "ci_success_rate",
                    "weight": 7.5,
                    "inputs": {"ci.success_rate": round(score / 100, 3)},
                    "score": round(score / 10, 3),
                    "status": "ok",
                    "detail": f"ci.success_rate = {score / 100:.3f}",
                }
            ]
            rows.append(
                {
                    "day": day,
                    "project": project,
                    "score": score,
                    "grade": "A" if score >= 85 else "B" if score >= 70 else "C" if score >= 55 else "D",
                    "components": {"score": score, "dimensions": dims, "components": components},
                    "created_at": now,
                }
            )
    return rows


def alert_rows(count: int, repos: int, projects: list[str], now: dt.datetime) -> list[dict[str, Any]]:
    rng = random.Random(3)
    rows = []
    for n in range(count):
        started = now - dt.timedelta(seconds=rng.randint(3_600, 60 * 86_400))
        resolved = None if n % 3 == 0 else min(now, started + dt.timedelta(seconds=rng.randint(600, 3 * 86_400)))
        ci = n % 2 == 1
        rows.append(
            {
                "source": "ci_pipeline_analytics" if ci else "daily_project_metrics",
                "rule_id": "success_rate_low" if ci else "threshold:coverage",
                "scope_key": f"github:bench/repo-{n % repos:03d}:CI:main" if ci else projects[n % len(projects)],
                "severity": "critical" if n % 5 == 0 else "warning",
                "state": "firing" if resolved is None else "resolved",
                "started_at": started,
                "resolved_at": resolved,
                "last_evaluated_at": resolved or now,
                "value": round(rng.uniform(0.4, 0.8), 3),
                "threshold": 0.8,
                "details": {"bench": True},
            }
        )
    return rows


def load_store(args: argparse.Namespace, url: str, now: dt.datetime, rows: list[tuple[str, str, str]]) -> dict:
    import sqlalchemy as sa

    from benchmarks.analytics import load_synthetic
    from devops_automation.ci_analytics import analytics
    from devops_automation.store import ResultsStore, schema

    days = max(8, math.ceil(args.runs / (args.repos * args.runs_per_day)))
    store = ResultsStore(url)
    try:
        store.ensure_schema()
        t0 = time.perf_counter()
        counts = load_synthetic(url, args.runs, args.repos, days, now)
        added = top_up_analyses(url, args.analyses, days, now)
        ci_s = time.perf_counter() - t0
        projects = [f"bench/project-{i:03d}" for i in range(args.projects)]
        t0 = time.perf_counter()
        health = health_rows(projects, 60, now)
        with store.begin() as conn:
            conn.execute(sa.insert(schema.health_scores), health)
            conn.execute(sa.insert(schema.alert_events), alert_rows(120, args.repos, projects, now))
            monday = (now - dt.timedelta(days=now.weekday())).date()
            for k in range(1, 9):
                start = monday - dt.timedelta(weeks=k)
                conn.execute(
                    sa.insert(schema.reports).values(
                        kind="weekly",
                        period_start=start,
                        period_end=start + dt.timedelta(days=7),
                        markdown="# Weekly engineering report\n",
                        html="<h1>Weekly engineering report</h1>",
                        summary={"title": f"Weekly engineering report {start}", "has_data": True},
                        created_at=now - dt.timedelta(weeks=k - 1),
                    )
                )
        daily_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        today = now.date()
        written = analytics.store_daily(store, [today - d * DAY for d in range(8)], computed_at=now)
        ci_daily_s = time.perf_counter() - t0
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("failure_events", "failure_analyses", "failure_fingerprints", "health_scores", "ci_daily"):
                conn.execute(sa.text(f"VACUUM ANALYZE {table}"))
            analyses = conn.execute(sa.text("SELECT count(*) FROM failure_analyses")).scalar_one()
            attempts = conn.execute(sa.text("SELECT count(*) FROM ci_runs")).scalar_one()
            sample = {
                "analysis_ids": [
                    r[0] for r in conn.execute(sa.text("SELECT id FROM failure_analyses ORDER BY random() LIMIT 50"))
                ],
                "run_row_ids": [
                    r[0] for r in conn.execute(sa.text("SELECT id FROM ci_runs ORDER BY random() LIMIT 50"))
                ],
                "triage_runs": [
                    r[0]
                    for r in conn.execute(
                        sa.text(
                            "SELECT payload->>'claimed_by' FROM failure_events WHERE pipeline_id LIKE 'bench-%' "
                            "ORDER BY id DESC LIMIT 20"
                        )
                    )
                ],
                "event_id": conn.execute(sa.text("SELECT max(id) FROM failure_events")).scalar_one(),
            }
    finally:
        store.dispose()
    rows += [
        (
            "synthetic CI history",
            f"{args.runs} runs",
            (
                f"{attempts} attempts, {counts['ci_jobs']} jobs over {days} d, {args.repos} repos; "
                f"{analyses} failure analyses ({added} added in SQL); loaded in {ci_s:.0f} s"
            ),
        ),
        (
            "health, alerts, reports",
            f"{len(health)} scores",
            f"{args.projects} projects x 60 d, 120 alert episodes, 8 reports; {daily_s:.1f} s",
        ),
        ("ci_daily (last 8 days)", f"{written} rows", f"analytics.store_daily: {ci_daily_s:.1f} s"),
    ]
    return {"days": days, "projects": projects, **sample}


# -- the server ----------------------------------------------------------------------------------------
def start_server(guard: Any, home: Path, pg: Any, database: str, workers: int, log: Any) -> str:
    from include.sandbox.client import free_port

    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD}))
    port = free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API__WORKERS": str(workers),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW_CONN_DEVOPS_RESULTS_DB": f"postgres://{pg.user}@127.0.0.1:{pg.port}/{database}",
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "plugins")]),
    }
    airflow = str(Path(sys.executable).parent / "airflow")
    guard.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    guard.popen(
        [airflow, "api-server", "--port", str(port), "--host", "127.0.0.1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/v2/version", timeout=2):
                return url
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"the API server did not start within 180 s: see {home / 'api-server.log'}") from None
            time.sleep(0.5)


def token(url: str) -> str:
    body = json.dumps({"username": USER, "password": PASSWORD}).encode()
    req = urllib.request.Request(f"{url}/auth/token", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)["access_token"]


# -- the load --------------------------------------------------------------------------------------------
def scenarios(info: dict[str, Any], repos: int, now: dt.datetime) -> list[tuple[str, str, list[str]]]:
    """``(kind, label, [paths])``: the API routes, pages and charts the clients ask for."""
    rng = random.Random(11)
    repo = [f"bench/repo-{rng.randrange(repos - repos // 5):03d}" for _ in range(3)]
    since = (now - DAY).date().isoformat()
    project = info["projects"][:3]
    a = info["analysis_ids"][:20]
    api, ui = "/devops/api/v1", "/devops/ui"
    return [
        ("api", "failures/jobs", [f"{api}/failures/jobs?limit=50"]),
        ("api", "failures/jobs?category&since", [f"{api}/failures/jobs?category=test_failure&since={since}"]),
        ("api", "failures/jobs/{id}", [f"{api}/failures/jobs/{i}" for i in a]),
        ("api", "failures/pipelines", [f"{api}/failures/pipelines?limit=50"]),
        ("api", "failures/fingerprints", [f"{api}/failures/fingerprints"]),
        ("api", "ci/summary (7 d, by repo)", [f"{api}/ci/summary?group_by=repo"]),
        ("api", "ci/flaky-jobs", [f"{api}/ci/flaky-jobs"]),
        ("api", "ci/red-branches", [f"{api}/ci/red-branches"]),
        ("api", "ci/repos", [f"{api}/ci/repos"]),
        ("api", "ci/runs?repo", [f"{api}/ci/runs?provider=github&repo={r}&limit=50" for r in repo]),
        ("api", "ci/runs/{id}", [f"{api}/ci/runs/{i}" for i in info["run_row_ids"][:20]]),
        ("api", "health", [f"{api}/health"]),
        ("api", "health/history", [f"{api}/health/history?project={p}" for p in project]),
        ("api", "alerts?state=firing", [f"{api}/alerts?state=firing"]),
        ("api", "reports", [f"{api}/reports"]),
        ("page", "overview", [f"{ui}/"]),
        ("page", "failures", [f"{ui}/failures"]),
        ("page", "failure", [f"{ui}/failures/{i}" for i in a]),
        ("page", "ci", [f"{ui}/ci"]),
        ("page", "ci?repo", [f"{ui}/ci?repo={r}" for r in repo]),
        ("page", "health", [f"{ui}/health"]),
        ("page", "health?project", [f"{ui}/health?project={p}" for p in project]),
        ("page", "reports", [f"{ui}/reports"]),
        ("page", "dag-run view", [f"{ui}/dag-runs/ci_failure_triage/{r}" for r in info["triage_runs"][:5]]),
        ("chart", "ci charts", [f"{ui}/charts/ci-{m}.svg" for m in ("success_rate", "duration_p90_s", "mttr_s")]),
        ("chart", "failures, health charts", [f"{ui}/charts/failures.svg", f"{ui}/charts/health.svg"]),
    ]


class Client:
    """One keep-alive connection (one per thread)."""

    local = threading.local()

    def __init__(self, url: str, jwt: str) -> None:
        self.host, self.port = url.removeprefix("http://").split(":")
        self.headers = {"Authorization": f"Bearer {jwt}"}

    def get(self, path: str) -> tuple[int, float, int]:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection(self.host, int(self.port), timeout=120)
        t0 = time.perf_counter()
        try:
            conn.request("GET", path, headers=self.headers)
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            self.local.conn = None
            raise
        return resp.status, time.perf_counter() - t0, len(body)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)] if ordered else float("nan")


class EventProbe:
    """Holds the event stream open; stores a failure every ``interval`` s; the lag of each to the stream."""

    def __init__(self, url: str, jwt: str, db_url: str, event_id: int, count: int, interval: float = 0.5) -> None:
        self.url, self.jwt, self.db_url, self.event_id = url, jwt, db_url, event_id
        self.count, self.interval = count, interval
        self.stored: dict[int, float] = {}
        self.arrived: dict[int, float] = {}
        self.ready = threading.Event()
        self.done = threading.Event()
        self._conn: http.client.HTTPConnection | None = None
        self._reader = threading.Thread(target=self._read, name="sse", daemon=True)

    def _read(self) -> None:
        host, port = self.url.removeprefix("http://").split(":")
        self._conn = conn = http.client.HTTPConnection(host, int(port), timeout=60)
        conn.request("GET", "/devops/api/v1/events", headers={"Authorization": f"Bearer {self.jwt}"})
        resp = conn.getresponse()
        event = None
        while not self.done.is_set():
            line = resp.fp.readline()
            if not line:
                break
            text = line.decode().rstrip("\r\n")
            if text.startswith("event: "):
                event = text[7:]
                if event == "ready":
                    self.ready.set()
            elif text.startswith("data: ") and event == "failure":
                self.arrived[json.loads(text[6:])["id"]] = time.monotonic()
        conn.close()

    def run(self) -> None:
        import psycopg

        self._reader.start()
        if not self.ready.wait(60):
            raise SystemExit("the event stream did not open")
        with psycopg.connect(self.db_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as db:
            for n in range(self.count):
                row = db.execute(
                    "INSERT INTO failure_analyses (event_id, job_id, job_name, category, root_cause, analyser, "
                    "created_at) VALUES (%s, %s, 'probe', 'timeout', 'the probe timed out', 'heuristic', now()) "
                    "RETURNING id",
                    (self.event_id, f"probe-{n}"),
                ).fetchone()
                self.stored[row[0]] = time.monotonic()  # committed (autocommit)
                time.sleep(self.interval)
        deadline = time.monotonic() + 10
        while len(self.arrived) < len(self.stored) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.done.set()
        # hang up, as a closed page does: an open stream would hold the API server's shutdown (uvicorn waits
        # for open responses) until the SIGKILL after the guard's grace period
        sock = self._conn.sock if self._conn is not None else None  # None: the reader closed it already
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._reader.join(10)

    def lags(self) -> list[float]:
        return [self.arrived[i] - t for i, t in self.stored.items() if i in self.arrived]


def measure(
    args: argparse.Namespace, url: str, db_url: str, info: dict[str, Any], now: dt.datetime, rows: list
) -> dict[str, float]:
    jwt = token(url)
    client = Client(url, jwt)
    plan = scenarios(info, args.repos, now)
    cold: dict[tuple[str, str], float] = {}

    def warm(job: tuple[str, str, str]) -> None:
        kind, label, path = job
        status, seconds, _ = client.get(path)
        if status != 200:
            raise SystemExit(f"{path}: HTTP {status}")
        cold[(kind, label)] = max(cold.get((kind, label), 0.0), seconds)

    # every distinct URL a few times at once, so that each worker process has its caches, charts and imports
    for kind, label, paths in plan:
        with ThreadPoolExecutor(2 * args.workers) as pool:
            list(pool.map(warm, [(kind, label, p) for p in paths for _ in range(2 * args.workers)]))
    jobs = []
    for n in range(args.requests):  # round robin over the routes, then over each route's URLs
        kind, label, paths = plan[n % len(plan)]
        jobs.append((kind, label, paths[(n // len(plan)) % len(paths)]))
    times: dict[tuple[str, str], list[float]] = defaultdict(list)
    kinds: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    probe = EventProbe(url, jwt, db_url, info["event_id"], args.events)
    probe_thread = threading.Thread(target=probe.run, name="probe")

    def one(job: tuple[str, str, str]) -> None:
        kind, label, path = job
        try:
            status, seconds, _ = client.get(path)
        except (OSError, http.client.HTTPException) as exc:
            errors.append(f"{path}: {exc}")
            return
        if status != 200:
            errors.append(f"{path}: HTTP {status}")
        times[(kind, label)].append(seconds)
        kinds[kind].append(seconds)

    t0 = time.perf_counter()
    probe_thread.start()
    with ThreadPoolExecutor(args.clients) as pool:
        list(pool.map(one, jobs))
    wall = time.perf_counter() - t0
    probe_thread.join(120)
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, e.g. {errors[:3]}")
    for kind, label, _ in plan:
        values = times[(kind, label)]
        rows.append(
            (
                f"  {kind} {label}",
                f"{p95(values) * 1000:.0f} ms",
                (
                    f"p95 of {len(values)}; p50 {sorted(values)[len(values) // 2] * 1000:.0f} ms; "
                    f"cold {cold[(kind, label)] * 1000:.0f} ms"
                ),
            )
        )
    lags = sorted(probe.lags())
    missed = len(probe.stored) - len(lags)
    result = {
        "api": p95(kinds["api"]) * 1000,
        "page": p95(kinds["page"]) * 1000,
        "chart": p95(kinds["chart"]) * 1000,
        "lag": max(lags) if lags and not missed else float("inf"),
    }
    rows += [
        (
            "API requests",
            f"{result['api']:.0f} ms",
            (
                f"p95 of {len(kinds['api'])} (goal < 300 ms); {args.clients} clients, {len(jobs)} requests in "
                f"{wall:.1f} s ({len(jobs) / wall:.0f}/s)"
            ),
        ),
        ("page documents", f"{result['page']:.0f} ms", f"p95 of {len(kinds['page'])} (goal < 300 ms)"),
        ("chart images", f"{result['chart']:.0f} ms", f"p95 of {len(kinds['chart'])} (drawn once a minute)"),
        (
            "event lag",
            f"{result['lag']:.2f} s",
            (
                f"max of {len(lags)} failures stored during the load (p50 {lags[len(lags) // 2] if lags else 0:.2f} s"
                f"{f', {missed} never arrived' if missed else ''}); goal < 2 s"
            ),
        ),
    ]
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--analyses", type=int, default=50_000)
    ap.add_argument("--repos", type=int, default=200)
    ap.add_argument("--runs-per-day", type=int, default=40, help="runs a repository a day (sets the days)")
    ap.add_argument("--projects", type=int, default=200)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2, help="API server worker processes")
    ap.add_argument("--events", type=int, default=20)
    args = ap.parse_args()
    if args.repos < 5 or args.runs < args.repos or args.projects < 3 or args.clients < 1 or args.events < 1:
        ap.error(
            "--repos at least 5, --runs at least --repos, --projects at least 3, --clients and --events at least 1"
        )

    from include.sandbox.processes import ProcessGuard
    from include.sandbox.servers import PostgresServer

    home = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)  # the server's pages read the wall clock too
    rows: list[tuple[str, str, str]] = []
    # SIGTERM/SIGINT/SIGHUP become an exception here: PostgreSQL and the API server are stopped on any exit
    with ProcessGuard("dashboard") as guard:
        guard.callback(lambda: shutil.rmtree(home, ignore_errors=True))
        pg = guard.start(PostgresServer())
        db_url = pg.create_database("dashboard")
        info = load_store(args, db_url, now, rows)
        t0 = time.perf_counter()
        with open(home / "api-server.log", "wb") as log:
            url = start_server(guard, home, pg, "dashboard", args.workers, log)
            rows.append(
                (
                    "airflow api-server",
                    f"{args.workers} workers",
                    (
                        f"simple auth manager, a JWT on every request; migrated and started in "
                        f"{time.perf_counter() - t0:.0f} s"
                    ),
                )
            )
            result = measure(args, url, db_url, info, now, rows)
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print(f"{'measure':{width}}  {'value':>{value_width}}  note")
    for label, value, note in rows:
        print(f"{label:{width}}  {value:>{value_width}}  {note}")
    print(
        f"runs={args.runs} api_p95_ms={result['api']:.0f} page_p95_ms={result['page']:.0f} "
        f"event_lag_s={result['lag']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
