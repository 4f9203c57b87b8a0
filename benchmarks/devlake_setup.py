"""devlake_project_setup at scale: API calls per repository, wall time, writes on a re-run, speed-up.

    .venv/bin/python benchmarks/devlake_setup.py [--repos 1000] [--latency-ms 20] [--pool-slots 8] [--batch-size 25]

Runs the DAG's own operators against the sandbox DevLake (every call delayed by ``--latency-ms``),
with the mapped steps (one sync per connection, one ensure per batch) spread over ``--pool-slots``
workers — what the ``devlake_api`` pool allows the executor to run at once. The same work is then
done again on a fresh DevLake one call at a time (one worker) to measure the speed-up, and the
parallel run is repeated against the unchanged DevLake to count its write calls (goal: 0).
Last line: ``repos=… calls_per_new_repo=… rerun_writes=… speedup=… wall_s=…``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "plugins")]
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-devlake-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")  # the table, not the task logs

LOGICAL = dt.datetime(2026, 11, 23, 6, tzinfo=dt.UTC)


class FakeTI:
    """What the operators need of a task instance outside Airflow: ``xcom_push`` (ensure_projects'
    report); the DAG's XComArgs are passed to the summary directly."""

    def __init__(self, store: dict[str, Any]) -> None:
        self.store = store

    def xcom_push(self, key: str, value: Any) -> None:
        self.store.setdefault(key, []).append(value)


def run_setup(workers: int, batch_size: int) -> float:
    """One DAG run's work: discover → sync (mapped) → plan → ensure (mapped) → summary."""
    from airflow.sdk.bases.operator import ExecutorSafeguard

    ExecutorSafeguard.test_mode = True  # we are the executor here: run the operators' execute() directly
    from devops_automation.workflows.devlake_project_setup.operators import (
        DevLakeDiscoverConnectionsOperator,
        DevLakeEnsureProjectsOperator,
        DevLakePlanProjectsOperator,
        DevLakeSetupSummaryOperator,
        DevLakeSyncScopesOperator,
    )

    xcom: dict[str, Any] = {}
    ti = FakeTI(xcom)
    ctx: dict[str, Any] = {"ti": ti, "logical_date": LOGICAL, "run_id": "bench"}
    t0 = time.perf_counter()
    connections = DevLakeDiscoverConnectionsOperator(task_id="discover_connections").execute(ctx)
    patterns = {"deploymentPattern": "(?i)deploy", "productionPattern": "(?i)prod"}
    with ThreadPoolExecutor(workers) as pool:
        synced = list(
            pool.map(
                lambda c: DevLakeSyncScopesOperator(
                    task_id="sync_scopes", connection=c, dora_patterns=patterns
                ).execute(ctx),
                connections,
            )
        )
    batches = DevLakePlanProjectsOperator(task_id="plan_projects", synced=synced, batch_size=batch_size).execute(ctx)

    def ensure(batch: dict[str, Any]) -> dict[str, Any]:
        return DevLakeEnsureProjectsOperator(task_id="ensure_projects", batch=batch).execute({**ctx, "ti": ti})

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(ensure, batches))
    DevLakeSetupSummaryOperator(
        task_id="summary",
        connections=connections,
        synced=synced,
        batches=batches,
        reports=xcom.pop("report", []),
        telegram_conn_id=None,
    ).execute(ctx)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repos", type=int, default=1000)
    ap.add_argument("--latency-ms", type=int, default=20)
    ap.add_argument(
        "--pool-slots", type=int, default=8, help="slots of the devlake_api pool (mapped tasks running at once)"
    )
    ap.add_argument("--batch-size", type=int, default=25)
    args = ap.parse_args()

    from include.sandbox.client import SandboxClient, SandboxServer
    from include.sandbox.processes import ProcessGuard

    # SIGTERM/SIGINT become an exception here, so the sandbox is stopped on any exit
    with ProcessGuard("devlake_setup"), SandboxServer(systems=["devlake"], latency_ms=args.latency_ms) as server:
        sb = SandboxClient(server.base_url, timeout=60)
        os.environ["AIRFLOW_CONN_DEVLAKE_DEFAULT"] = json.dumps(
            {"conn_type": "http", "host": f"{server.base_url}/devlake", "extra": {"timeout": 60}}
        )

        from unittest import mock

        rows = []
        results: dict[str, Any] = {}
        with mock.patch("airflow.sdk.Variable.set"):  # webhook keys: no metadata DB in a benchmark
            for label, workers in (("parallel", args.pool_slots), ("one call at a time", 1)):
                sb.reset()
                seeded = sum(1 for _ in _remote(server.base_url))
                sb.control("devlake", "POST", "/remote-repos/bulk", json={"count": max(0, args.repos - seeded)})
                sb.latency(args.latency_ms)
                sb.clear_requests()
                wall = run_setup(workers, args.batch_size)
                reqs = sb.requests(system="devlake")
                repos = sb.control("devlake", "GET", "/counts")["projects"]
                writes = sum(1 for r in reqs if r["method"] != "GET")
                rows.append((label, workers, repos, len(reqs), writes, wall))
                results[label] = {"repos": repos, "calls": len(reqs), "wall": wall}
                if label == "parallel":
                    sb.clear_requests()
                    rerun_wall = run_setup(workers, args.batch_size)
                    rerun = sb.requests(system="devlake")
                    rerun_writes = sum(1 for r in rerun if r["method"] != "GET")
                    rows.append(("re-run, unchanged", workers, repos, len(rerun), rerun_writes, rerun_wall))
    print(f"{'run':22} {'workers':>7} {'repos':>6} {'calls':>7} {'writes':>7} {'wall_s':>8} {'calls/repo':>10}")
    for label, workers, repos, calls, writes, wall in rows:
        print(f"{label:22} {workers:7} {repos:7} {calls:7} {writes:7} {wall:8.2f} {calls / max(repos, 1):10.2f}")
    par, seq = results["parallel"], results["one call at a time"]
    print(
        f"repos={par['repos']} calls_per_new_repo={par['calls'] / max(par['repos'], 1):.2f} "
        f"rerun_writes={rerun_writes} "
        f"speedup={seq['wall'] / par['wall']:.1f} wall_s={par['wall']:.1f}"
    )
    return 0


def _remote(base_url: str):
    from devops_automation.hooks.devlake import DevLakeHook

    os.environ["AIRFLOW_CONN_DEVLAKE_DEFAULT"] = json.dumps({"conn_type": "http", "host": f"{base_url}/devlake"})
    hook = DevLakeHook()
    for plugin in ("github", "gitlab", "bitbucket", "jira", "azuredevops_go"):
        for conn in hook.connections(plugin) or []:
            yield from hook.remote_scopes(plugin, int(conn["id"]))


if __name__ == "__main__":
    sys.exit(main())
