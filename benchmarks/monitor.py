"""devlake_blueprint_monitor's watcher at scale: requests per poll, total requests, worker-slot time.

    .venv/bin/python benchmarks/monitor.py [--blueprints 500] [--minutes 30] [--poll-s 60] [--page-size 100]

One pipeline per blueprint, finishing at spread-out times over ``--minutes`` simulated minutes on the
sandbox DevLake's clock (moved forward one poll interval per poll, so the benchmark takes seconds).
The DAG's own sensor and trigger run: ``execute`` defers, the trigger polls (its ``asyncio.sleep``
is where the clock is advanced), and ``execute_complete`` resumes — only those two calls would hold a
worker slot, and the benchmark times them. Last line:
``blueprints=… requests_per_poll_max=… requests_total=… worker_slot_s=…``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "plugins")]
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-monitor-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

PLAN = [[{"plugin": "github", "subtasks": [], "options": {}}], [{"plugin": "dora", "subtasks": [], "options": {}}]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blueprints", type=int, default=500)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--poll-s", type=float, default=60)
    ap.add_argument("--page-size", type=int, default=100)
    args = ap.parse_args()

    from airflow.sdk.bases.operator import ExecutorSafeguard
    from airflow.sdk.exceptions import TaskDeferred

    from include.sandbox.client import SandboxClient, SandboxServer
    from include.sandbox.processes import ProcessGuard

    ExecutorSafeguard.test_mode = True
    rng = random.Random(7)
    # SIGTERM/SIGINT become an exception here, so the sandbox is stopped on any exit
    with ProcessGuard("monitor"), SandboxServer(systems=["devlake"]) as server:
        sb = SandboxClient(server.base_url, timeout=60)
        os.environ["AIRFLOW_CONN_DEVLAKE_DEFAULT"] = json.dumps(
            {"conn_type": "http", "host": f"{server.base_url}/devlake"}
        )
        sb.control("devlake", "POST", "/settings", json={"maxParallel": args.blueprints + 1})
        from devops_automation.hooks.devlake import DevLakeHook
        from devops_automation.sensors.devlake import DevLakePipelinesSensor

        hook = DevLakeHook()
        ids = []
        for i in range(args.blueprints):
            pid = int(
                hook.request_json("POST", "/pipelines", json={"name": f"bp-{i}", "plan": PLAN, "blueprintId": i + 1})[
                    "id"
                ]
            )
            # two tasks: the pipeline ends somewhere within the simulated window
            sb.control(
                "devlake",
                "POST",
                "/scripts",
                json={"pipelineId": pid, "taskSeconds": rng.uniform(30, args.minutes * 30)},
            )
            ids.append(pid)
        sb.clear_requests()

        polls: list[int] = []

        async def advance_clock(seconds: float) -> None:
            """Between two polls: count the poll's requests, move DevLake's clock one interval on."""
            polls.append(trigger.requests_made - sum(polls))
            sb.advance(seconds)

        sensor = DevLakePipelinesSensor(
            task_id="watch",
            pipelines=ids,
            poll_interval=args.poll_s,
            page_size=args.page_size,
            alert=False,
            max_wait_s=args.minutes * 60 * 4,
        )
        ctx = {"run_id": "bench", "ti": None}
        slot = 0.0
        t0 = time.perf_counter()
        try:
            sensor.execute(ctx)
        except TaskDeferred as deferred:
            slot += time.perf_counter() - t0
            trigger = deferred.trigger
        wall0 = time.perf_counter()
        with mock.patch.object(trigger, "_sleep", advance_clock):
            event = asyncio.run(trigger.run().__anext__())
        wait_wall = time.perf_counter() - wall0
        polls.append(trigger.requests_made - sum(polls))
        t1 = time.perf_counter()
        final = sensor.execute_complete(ctx, event.payload)
        slot += time.perf_counter() - t1
        total = len(sb.requests(system="devlake"))
    statuses: dict[str, int] = {}
    for p in final.values():
        statuses[p["status"]] = statuses.get(p["status"], 0) + 1
    print(f"{'poll':>5} {'requests':>9}")
    for i, n in enumerate(polls, 1):
        if i <= 5 or i > len(polls) - 3:
            print(f"{i:5d} {n:9d}")
        elif i == 6:
            print(f"{'…':>5}")
    print(
        f"polls={len(polls)} simulated_minutes={len(polls) * args.poll_s / 60:.0f} final={statuses} "
        f"wait_wall_s={wait_wall:.1f} (pages of {args.page_size}: ceil({args.blueprints}/{args.page_size}) = "
        f"{-(-args.blueprints // args.page_size)} requests per poll at most)"
    )
    print(
        f"for comparison, one GET /pipelines/{{id}} per watched pipeline would be {args.blueprints} requests per poll, "
        f"{args.blueprints * len(polls)} in all"
    )
    print(
        f"blueprints={args.blueprints} requests_per_poll_max={max(polls)} requests_total={total} "
        f"worker_slot_s={slot:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
