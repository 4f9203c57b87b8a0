"""ci_pipeline_analytics at scale: API calls per collected attempt, the cost of collecting an unchanged
interval again, wall time with the pools, and the window summary over 1,000,000 runs on PostgreSQL.

    .venv/bin/python benchmarks/analytics.py [--repos 50] [--days 30] [--runs-per-day 40] [--rerun-share 0.1]
        [--pool-slots N] [--analytics-runs 1000000] [--analytics-repos 200] [--analytics-days N]
        [--dense-days 30]

**Collection.** The sandbox GitHub gets ``--repos`` repositories with ``--runs-per-day`` runs a day over
``--days`` days, ``--rerun-share`` of them re-run (attempt 1 fails, attempt 2 passes), through its bulk
control (``POST /_sandbox/github/repos``). Every repository is collected for one data interval (the UTC
day two days before the sandbox's today, ``lookback_days`` 7 as the DAG does) with the DAG's own code:
``collect.collect_github`` with a ``GitHubHook`` whose ETag cache is the results store's ``http_cache``
(``StoreHttpCache``), on a throwaway PostgreSQL, the repositories spread over as many threads as the
``github_api`` pool has slots in ``airflow_settings.yaml`` (what the mapped tasks may run at once).
Then the same interval is collected again, unchanged. Rate-limit cost = requests that were not
answered 304 (GitHub does not charge a 304), from the hooks' counters; the sandbox's own
``x-ratelimit-used`` count is shown beside it. Goal: re-collecting costs at most 5 % of the first.

**Analytics.** ``--analytics-runs`` synthetic runs (about 10 % re-run, about three jobs an attempt,
GitHub and GitLab repositories, production deployments, failure analyses) for ``--analytics-repos``
repositories are COPYed into another PostgreSQL database, spread over ``--analytics-days`` days: by
default as many as the collection's rate gives (``--runs-per-day`` a repository a day: a million runs
of 200 repositories at 40 a day are 125 days of history). Then
``analytics.window_summary(group_by="repo")`` of the last week, with the previous week beside it, is
timed (best of 3). Goal: under 3 s. ``--dense-days`` (default 30, 0 = skip) times the same million
runs packed into that many days as well (167 runs a repository a day: the two weeks read hold 3.4
times the rows), a row of the table, not of the summary line.

Last line: ``runs=… calls_per_attempt=… recollect_cost_ratio=… analytics_1m_s=…`` (``runs``: the runs the
first collection stored). Every process it starts (the sandbox, PostgreSQL) is stopped on any exit,
SIGTERM/SIGINT/SIGHUP included (``include/sandbox/processes.py``); ended by a signal it exits with 128 +
the signal's number.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

TOKEN = "ghp_sandboxtoken000000000000000000000000"
OWNER = "bench"
LOOKBACK_DAYS = 7
DAY = dt.timedelta(days=1)


def pool_slots(name: str = "github_api") -> int:
    """Slots of an Airflow pool as ``airflow_settings.yaml`` defines it."""
    import yaml

    settings = yaml.safe_load((REPO / "airflow_settings.yaml").read_text())
    for pool in settings["airflow"]["pools"]:
        if pool["pool_name"] == name:
            return int(pool["pool_slot"])
    raise SystemExit(f"airflow_settings.yaml defines no pool {name!r}")


# -- collection ----------------------------------------------------------------------------------
def seed_sandbox(sandbox: Any, repos: int, days: int, runs_per_day: int, rerun_share: float) -> list[str]:
    """Bulk-seed the sandbox GitHub (batches of 10 repositories per control call); returns their names."""
    names: list[str] = []
    for first in range(0, repos, 10):
        batch = [f"svc-{n:03d}" for n in range(first + 1, min(repos, first + 10) + 1)]
        made = sandbox.control(
            "github",
            "POST",
            "/repos",
            json={
                "owner": OWNER,
                "names": batch,
                "runs_per_day": runs_per_day,
                "days": days,
                "rerun_share": rerun_share,
                "seed": first,
            },
        )
        names += made["created"]
    # far above what the benchmark spends: the collection must not wait for a reset
    sandbox.control("github", "POST", "/rate_limit", json={"limit": 10_000_000, "remaining": 10_000_000})
    return names


def sandbox_used(sandbox: Any) -> int:
    """Rate-limit points the sandbox charged the token so far (its ``x-ratelimit-used``)."""
    return int(sandbox.control("github", "GET", "/counts")["rate"].get("token:core", {}).get("used", 0))


def cache_size(store: Any) -> tuple[int, int]:
    """Entries in ``http_cache`` and the table's size on disk (bytes)."""
    import sqlalchemy as sa

    with store.engine.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM http_cache")).scalar_one()
        size = conn.execute(sa.text("SELECT pg_total_relation_size('http_cache')")).scalar_one()
    return int(count), int(size)


def collect_all(store: Any, repos: list[str], start: dt.datetime, end: dt.datetime, slots: int) -> dict[str, Any]:
    """Collect every repository for ``[start, end)`` as the mapped ``collect_github`` tasks do, ``slots``
    at a time; returns the summed results and hook counters and the wall time."""
    from devops_automation.hooks.github import GitHubHook
    from devops_automation.store.http_cache import StoreHttpCache
    from devops_automation.workflows.ci_pipeline_analytics import collect

    hooks: list[Any] = []

    def one(repo: str) -> Any:
        hook = GitHubHook(cache=StoreHttpCache(store))  # one task: its own hook, the shared cache
        hooks.append(hook)
        return collect.collect_github(
            hook, store, repo, start=start, end=end, lookback_days=LOOKBACK_DAYS, collected_at=end
        )

    t0 = time.perf_counter()
    with ThreadPoolExecutor(slots) as pool:
        results = list(pool.map(one, repos))
    wall = time.perf_counter() - t0
    requests = sum(h.request_count for h in hooks)
    not_modified = sum(h.not_modified_count for h in hooks)
    return {
        "runs": sum(r.runs_listed for r in results),
        "attempts": sum(r.attempts_stored for r in results),
        "skipped": sum(r.attempts_skipped for r in results),
        "jobs": sum(r.jobs_stored for r in results),
        "warnings": sum(len(r.warnings) for r in results),
        "requests": requests,
        "not_modified": not_modified,
        "cost": requests - not_modified,
        "wall": wall,
    }


def collection(args: argparse.Namespace, guard: Any, pg: Any, rows: list[tuple[str, str, str]]) -> dict[str, Any]:
    from include.sandbox.client import SandboxClient, SandboxServer

    server = guard.start(SandboxServer(systems=["github"]))
    sandbox = SandboxClient(server.base_url, timeout=600)
    os.environ["AIRFLOW_CONN_GITHUB_DEFAULT"] = json.dumps(
        {"conn_type": "github", "host": f"{server.base_url}/github", "password": TOKEN, "extra": {"timeout": 60}}
    )
    t0 = time.perf_counter()
    repos = seed_sandbox(sandbox, args.repos, args.days, args.runs_per_day, args.rerun_share)
    seeded = time.perf_counter() - t0
    now = dt.datetime.fromtimestamp(sandbox.advance(0), dt.UTC)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0) - 2 * DAY
    end = start + DAY

    from devops_automation.store import ResultsStore

    store = ResultsStore(pg.create_database("collection"))
    try:
        store.ensure_schema()  # migrated before the clock starts
        used = sandbox_used(sandbox)
        first = collect_all(store, repos, start, end, args.pool_slots)
        first["sandbox_used"] = sandbox_used(sandbox) - used
        cache = cache_size(store)
        used = sandbox_used(sandbox)
        again = collect_all(store, repos, start, end, args.pool_slots)
        again["sandbox_used"] = sandbox_used(sandbox) - used
    finally:
        store.dispose()
    total_runs = args.repos * args.days * args.runs_per_day
    calls_per_attempt = first["requests"] / max(first["attempts"], 1)
    ratio = again["cost"] / max(first["cost"], 1)
    rows += [
        (
            "sandbox GitHub",
            f"{args.repos} repos x {args.days} d x {args.runs_per_day} runs/d",
            f"{total_runs} runs, {args.rerun_share:.0%} re-run; seeded in {seeded:.1f} s",
        ),
        (
            "interval collected",
            f"{start:%Y-%m-%d}",
            f"runs created in [{start - LOOKBACK_DAYS * DAY:%Y-%m-%d}, {end:%Y-%m-%d}) (lookback {LOOKBACK_DAYS} d)",
        ),
        ("pool (threads)", f"{args.pool_slots}", "github_api slots in airflow_settings.yaml"),
    ]
    for label, r in (("first collection", first), ("again, unchanged", again)):
        rows += [
            (
                f"{label}: runs / attempts",
                f"{r['runs']} / {r['attempts']}",
                f"{r['skipped']} attempts already stored, {r['jobs']} jobs, {r['warnings']} warnings",
            ),
            (
                f"{label}: API calls",
                f"{r['requests']}",
                f"{r['not_modified']} answered 304"
                + (f"; {r['requests'] / r['attempts']:.2f} per stored attempt" if r["attempts"] else ""),
            ),
            (
                f"{label}: rate-limit cost",
                f"{r['cost']}",
                f"requests not answered 304 (sandbox x-ratelimit-used: +{r['sandbox_used']})",
            ),
            (f"{label}: wall time", f"{r['wall']:.1f} s", f"{args.pool_slots} threads"),
        ]
    rows.append(("re-collection cost / first", f"{ratio:.2%}", "goal <= 5 %"))
    rows.append(("http_cache after the first", f"{cache[0]} entries", f"{cache[1] / 1e6:.0f} MB (ETags and bodies)"))
    return {"runs": first["runs"], "calls_per_attempt": calls_per_attempt, "ratio": ratio}


# -- analytics -----------------------------------------------------------------------------------
RUN_COLUMNS = (
    *("provider", "repo", "run_id", "attempt", "name", "branch", "sha", "author", "event", "status", "conclusion"),
    *("created_at", "started_at", "finished_at", "duration_s", "queue_s", "url", "collected_at", "status_raw"),
    *("run_number", "workflow_id", "workflow", "actor", "updated_at"),
)
JOB_COLUMNS = (
    *("provider", "repo", "run_id", "attempt", "job_id", "name", "stage", "status", "conclusion", "started_at"),
    *("finished_at", "duration_s", "queue_s", "runner", "failure_reason", "url", "status_raw", "created_at"),
    *("retried", "allow_failure"),
)
DEPLOYMENT_COLUMNS = (
    *("provider", "repo", "deployment_id", "environment", "sha", "ref", "status", "status_raw", "created_at"),
    *("finished_at", "url", "collected_at", "commits"),
)
BRANCHES = ["main"] * 8 + [f"feature-{k}" for k in range(24)]
ACTORS = [f"dev{k:02d}" for k in range(40)]
GITHUB_WORKFLOWS = (("CI", 0.6), ("Lint", 0.3), ("Release", 0.1))
GITLAB_SOURCES = (("push", 0.6), ("merge_request_event", 0.3), ("schedule", 0.1))
JOB_NAMES = ("setup", "test", "build")
#: final status of a run, cumulative: running, failure, timed out, cancelled, skipped, else success
STATUS_ROLL = ((0.001, "running"), (0.071, "failure"), (0.076, "timed_out"), (0.106, "cancelled"), (0.121, "skipped"))
CATEGORIES = ("test_failure", "infrastructure", "dependency", "compile_error")


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    x = rng.random()
    for value, weight in weighted:
        x -= weight
        if x < 0:
            return value
    return weighted[-1][0]


def synthetic_rows(runs: int, repos: int, days: int, end: dt.datetime, seed: int = 0) -> Iterator[dict[str, list]]:
    """Batches of rows ``{"ci_runs": [...], "ci_jobs": [...], "ci_deployments": [...], "failed_gitlab":
    [...]}`` for ``runs`` runs over the ``days`` days before ``end``: a fifth of the repositories are GitLab
    projects (a tenth of their pipelines retry a job), the others GitHub (a tenth of the runs re-run);
    three jobs an attempt; two production deployments a day per repository."""
    rng = random.Random(seed)
    start = end - days * DAY
    span = days * 86_400 - 3_600
    gitlab = repos // 5
    names = [("github", f"bench/repo-{i:03d}") for i in range(repos - gitlab)]
    names += [("gitlab", f"bench-group/project-{i:03d}") for i in range(gitlab)]
    run_id, job_id, deployment_id = 10_000_000, 500_000_000, 7_000_000
    batch: dict[str, list] = {"ci_runs": [], "ci_jobs": [], "ci_deployments": [], "failed_gitlab": []}
    for index, (provider, repo) in enumerate(names):
        count = runs // repos + (1 if index < runs % repos else 0)
        github = provider == "github"
        numbers: dict[str, int] = {}
        last_sha: dict[str, str] = {}
        for offset in sorted(rng.random() * span for _ in range(count)):
            run_id += 1
            created = start + dt.timedelta(seconds=int(offset))
            workflow = _pick(rng, GITHUB_WORKFLOWS if github else GITLAB_SOURCES)
            branch = rng.choice(BRANCHES)
            if branch in last_sha and rng.random() < 0.3:  # the same commit built again
                sha = last_sha[branch]
            else:
                sha = last_sha[branch] = f"{rng.getrandbits(160):040x}"
            number = numbers[workflow] = numbers.get(workflow, 0) + 1
            actor = rng.choice(ACTORS)
            roll = rng.random()
            final = next((status for limit, status in STATUS_ROLL if roll < limit), "success")
            if github and final in ("success", "failure") and rng.random() < 0.1:
                attempts = [("failure", rng.choice(ACTORS)), ("success" if rng.random() < 0.8 else "failure", actor)]
            else:
                attempts = [(final, actor)]
            event = "push" if branch == "main" else "pull_request"
            at = created
            for attempt, (status, who) in enumerate(attempts, start=1):
                if attempt > 1:  # re-run minutes to hours after the failure
                    at += dt.timedelta(seconds=int(rng.expovariate(1 / 7200)) + 60)
                queue = int(rng.expovariate(1 / 20)) + 1
                started = at + dt.timedelta(seconds=queue)
                failing = rng.randrange(3) if status in ("failure", "timed_out") else -1
                retry = not github and status == "success" and rng.random() < 0.1
                jobs = []
                for k, name in enumerate(JOB_NAMES):
                    job_queue = queue + int(rng.expovariate(1 / 10))
                    took = rng.randint(30, 600)
                    if status in ("failure", "timed_out"):
                        job_status = status if k == failing else ("skipped" if k > failing else "success")
                    else:
                        job_status = status
                    job_start = at + dt.timedelta(seconds=job_queue)
                    job_end = job_start + dt.timedelta(seconds=took)
                    if retry and k == 1:  # GitLab: the failed try of a job retried green
                        job_id += 1
                        jobs.append((job_id, name, "failure", job_start, job_end, took, job_queue, True))
                        job_start = job_end + dt.timedelta(seconds=5)
                        job_end = job_start + dt.timedelta(seconds=took)
                    job_id += 1
                    jobs.append((job_id, name, job_status, job_start, job_end, took, job_queue, False))
                running = status == "running"
                finished = None if running else max(j[4] for j in jobs)
                batch["ci_runs"].append(
                    (
                        provider, repo, str(run_id), attempt, workflow, branch, sha, who, event, status,
                        status if github else None, at, started, finished,
                        None if finished is None else (finished - started).total_seconds(), float(queue),
                        f"https://ci.example/{repo}/runs/{run_id}/{attempt}", end, status, number,
                        "1" if github else None, workflow, who, finished or at,
                    )
                )  # fmt: skip
                for jid, name, job_status, job_start, job_end, took, job_queue, retried in jobs:
                    batch["ci_jobs"].append(
                        (
                            provider, repo, str(run_id), attempt, str(jid), name, name, job_status,
                            job_status if github else None, job_start, None if running else job_end,
                            None if running else float(took), float(job_queue), "runner-1", None, None, job_status,
                            at, retried, False,
                        )
                    )  # fmt: skip
                    if not github and job_status == "failure" and rng.random() < 0.2:
                        batch["failed_gitlab"].append((repo, str(run_id), str(jid), job_end))
                at = finished or at
            if len(batch["ci_jobs"]) >= 50_000:
                yield batch
                batch = {"ci_runs": [], "ci_jobs": [], "ci_deployments": [], "failed_gitlab": []}
        previous = None
        for d in range(days):  # two production deployments a day, one in twenty fails
            for hour in (10, 16):
                deployment_id += 1
                when = start + d * DAY + dt.timedelta(hours=hour, minutes=rng.randint(0, 59))
                sha = f"{rng.getrandbits(160):040x}"
                status = "failure" if rng.random() < 0.05 else "success"
                commits = [
                    {"sha": f"{rng.getrandbits(160):040x}", "authored_at": (when - dt.timedelta(hours=h)).isoformat()}
                    for h in (2, 20)
                ]
                batch["ci_deployments"].append(
                    (
                        provider, repo, str(deployment_id), "production", sha, "main", status, status,
                        when - dt.timedelta(minutes=5), when, None, end,
                        json.dumps(commits) if status == "success" and previous else None,
                    )
                )  # fmt: skip
                previous = sha
    yield batch


def load_synthetic(url: str, runs: int, repos: int, days: int, end: dt.datetime) -> dict[str, int]:
    """COPY the synthetic rows in (psycopg), with the failure analyses of a fifth of the failed GitLab
    jobs; ANALYZE afterwards. Returns row counts."""
    import psycopg

    counts = {"ci_runs": 0, "ci_jobs": 0, "ci_deployments": 0, "failure_analyses": 0}
    columns = {"ci_runs": RUN_COLUMNS, "ci_jobs": JOB_COLUMNS, "ci_deployments": DEPLOYMENT_COLUMNS}
    rng = random.Random(1)
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        with conn.cursor() as cur:
            for batch in synthetic_rows(runs, repos, days, end):
                for table, cols in columns.items():
                    with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                        for row in batch[table]:
                            copy.write_row(row)
                    counts[table] += len(batch[table])
                for repo, pipeline, job, when in batch["failed_gitlab"]:
                    event = cur.execute(
                        "INSERT INTO failure_events (provider, project_id, project_path, pipeline_id, source, "
                        "received_at) VALUES ('gitlab', %s, %s, %s, 'email', %s) "
                        "ON CONFLICT (provider, project_id, pipeline_id) "
                        "DO UPDATE SET updated_at = excluded.received_at RETURNING id",
                        (repo, repo, pipeline, when),
                    ).fetchone()
                    cur.execute(
                        "INSERT INTO failure_analyses (event_id, job_id, category, analyser, created_at) "
                        "VALUES (%s, %s, %s, 'heuristic', %s)",
                        (event[0], job, rng.choice(CATEGORIES), when + dt.timedelta(minutes=2)),
                    )
                    counts["failure_analyses"] += 1
        conn.commit()
        conn.autocommit = True
        for table in ("ci_runs", "ci_jobs", "ci_deployments", "failure_events", "failure_analyses"):
            conn.execute(f"VACUUM ANALYZE {table}")
    return counts


def analytics_days(args: argparse.Namespace) -> int:
    """``--analytics-days``, or the days ``--analytics-runs`` take at ``--runs-per-day`` per repository."""
    if args.analytics_days:
        return args.analytics_days
    return max(1, math.ceil(args.analytics_runs / (args.analytics_repos * args.runs_per_day)))


def time_summary(pg: Any, database: str, runs: int, repos: int, days: int) -> tuple[dict[str, int], float, list, dict]:
    """Load ``runs`` synthetic runs over ``days`` days into a new database; time the weekly summary
    (best of 3). Returns (row counts, load seconds, the three times, the summary)."""
    from devops_automation.ci_analytics import analytics as an
    from devops_automation.store import ResultsStore

    end = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    store = ResultsStore(pg.create_database(database))
    try:
        store.ensure_schema()
        t0 = time.perf_counter()
        url = store.url.render_as_string(hide_password=False)
        counts = load_synthetic(url, runs, repos, days, end)
        loaded = time.perf_counter() - t0
        times = []
        summary: dict[str, Any] = {}
        for _ in range(3):
            t0 = time.perf_counter()
            summary = an.window_summary(store, start=end - 7 * DAY, end=end, group_by="repo")
            times.append(time.perf_counter() - t0)
    finally:
        store.dispose()
    return counts, loaded, times, summary


def analytics(args: argparse.Namespace, pg: Any, rows: list[tuple[str, str, str]]) -> float:
    days = analytics_days(args)
    counts, loaded, times, summary = time_summary(pg, "analytics", args.analytics_runs, args.analytics_repos, days)
    seconds = min(times)
    now, before = summary["total"]["current"], summary["total"]["previous"]
    rows += [
        (
            "synthetic results DB",
            f"{counts['ci_runs']} attempts",
            (
                f"{args.analytics_runs} runs, {counts['ci_jobs']} jobs, {counts['ci_deployments']} deployments, "
                f"{counts['failure_analyses']} analyses; {args.analytics_repos} repos over {days} d "
                f"({args.analytics_runs / args.analytics_repos / days:.0f} runs a repo a day); loaded in {loaded:.0f} s"
            ),
        ),
        (
            "window_summary(group_by=repo)",
            f"{min(times):.2f} s",
            f"best of 3 ({', '.join(f'{t:.2f}' for t in times)}); goal < 3 s",
        ),
        (
            "  last week / week before",
            f"{now['runs']} / {before['runs']} runs",
            (
                f"{len(summary['groups'])} groups; success {now['success_rate'] or 0:.1%}, "
                f"{len(now['flaky_jobs'])} flaky jobs, {len(now['open_streaks'])} open red streaks"
            ),
        ),
    ]
    if args.dense_days:
        counts, loaded, times, summary = time_summary(
            pg, "analytics_dense", args.analytics_runs, args.analytics_repos, args.dense_days
        )
        now, before = summary["total"]["current"], summary["total"]["previous"]
        rows.append(
            (
                f"  the same runs over {args.dense_days} d",
                f"{min(times):.2f} s",
                (
                    f"best of 3 ({', '.join(f'{t:.2f}' for t in times)}); "
                    f"{args.analytics_runs / args.analytics_repos / args.dense_days:.0f} runs a repo a day: "
                    f"{now['runs']} / {before['runs']} runs in the two weeks (not the summary line)"
                ),
            )
        )
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repos", type=int, default=50)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--runs-per-day", type=int, default=40)
    ap.add_argument("--rerun-share", type=float, default=0.1)
    ap.add_argument("--pool-slots", type=int, default=None, help="default: the github_api pool's slots")
    ap.add_argument("--analytics-runs", type=int, default=1_000_000)
    ap.add_argument("--analytics-repos", type=int, default=200)
    ap.add_argument("--analytics-days", type=int, default=None, help="default: runs / (repos x runs-per-day)")
    ap.add_argument("--dense-days", type=int, default=30, help="also time the runs packed into N days (0: skip)")
    args = ap.parse_args()
    if args.pool_slots is None:
        args.pool_slots = pool_slots()

    from include.sandbox.processes import ProcessGuard
    from include.sandbox.servers import PostgresServer

    home = Path(tempfile.mkdtemp(prefix="bench-analytics-"))
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"  # the table, not the migration and hook logs
    rows: list[tuple[str, str, str]] = []
    # SIGTERM/SIGINT/SIGHUP become an exception here: the sandbox and PostgreSQL are stopped on any exit
    with ProcessGuard("analytics") as guard:
        guard.callback(lambda: shutil.rmtree(home, ignore_errors=True))
        pg = guard.start(PostgresServer())
        collected = collection(args, guard, pg, rows)
        seconds = analytics(args, pg, rows)
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print(f"{'measure':{width}}  {'value':>{value_width}}  note")
    for label, value, note in rows:
        print(f"{label:{width}}  {value:>{value_width}}  {note}")
    print(
        f"runs={collected['runs']} calls_per_attempt={collected['calls_per_attempt']:.2f} "
        f"recollect_cost_ratio={collected['ratio']:.4f} analytics_1m_s={seconds:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
