"""daily_project_metrics at scale: API calls per project, wall time with the pools against one project
at a time, and what collecting the same day again writes.

    .venv/bin/python benchmarks/metrics.py [--projects 500] [--latency-ms 20] [--items 90] [--seed 0]
        [--github-slots N] [--prometheus-slots N] [--sonarqube-slots N]

**Projects.** A projects file of ``--projects`` projects is generated and read with the DAG's own parser
(``projects.parse_projects``). Each project has its own GitHub repository and its own SonarQube
project, seeded in the sandbox before the latency is switched on:

* GitHub (``POST /_sandbox/github/repos``, batches of 25): repository ``bench/<project>`` with 90 days
  of default-branch commits and ``--items`` issues and PRs over the 90 days with comments and reviews
  (the sandbox's ``seed_activity``, as ``acme/shop``'s); every other one has a protected default
  branch, every third two open security alerts;
* SonarQube (``POST /_sandbox/sonarqube/projects``): key ``bench_<n>`` with random measures and the
  Sonar way gate;
* Prometheus: the sandbox has three jobs (``api``, ``web``, ``worker``), so the projects **share them**:
  project *n* gets the queries of the *n*-th (mod 3) project of ``include/config/projects.yaml`` that
  has Prometheus queries (its instant and range queries as shipped). Neither ``PrometheusHook`` nor the
  sandbox caches a query, so a later project costs what the first did (the same requests, evaluated
  again); only the repositories and SonarQube projects are distinct.

**Collection.** The day collected is the sandbox's yesterday (UTC), the latest interval
(``is_latest_interval``: point-in-time figures included). Per project and source, the DAG's own code
runs as its mapped ``collect_*`` task does: ``github_figures`` with a ``GitHubHook`` whose ETag cache is
the results store's ``http_cache`` (``StoreHttpCache``), ``prometheus_figures`` with a
``PrometheusHook``, ``sonarqube_figures`` with a ``SonarQubeHook`` (connections from ``AIRFLOW_CONN_*``),
then ``store.write_metrics(store, rows, end)`` into a throwaway PostgreSQL database. Every repository
is distinct, so the ETag cache makes no project cheaper than another in a first collection.

* **with the pools**: each source's projects on as many threads as its pool has slots in
  ``airflow_settings.yaml`` (``github_api``, ``prometheus_api``, ``sonarqube_api``), the three sources
  at once, as the scheduler runs the three mapped tasks; into a fresh database;
* **again**: the same day collected again into the same database (the ETag cache now answers 304s
  for GitHub's constant URLs); rows new or changed must be 0;
* **one at a time**: every project and source in turn on one thread, into another fresh database.
  Run last, so that any warm-up (imports, connections, the sandbox's first answers) is paid by the
  pooled run: the speedup is not flattered.

API calls are the requests the sandbox recorded per system (its request log, cleared between phases);
the hooks' own counters (retries included) are shown beside them. With the pools the speedup cannot
exceed ``(G + P + S) / max(G / g, P / p, S / s)`` (each source's one-at-a-time time over its slots):
the table shows that bound too. GitHub takes about three quarters of the one-at-a-time time and has 4
slots, so the bound is about 5.5x; what is lost below it shows in the per-request times with the pools
against one at a time (the benchmark's workers, the sandbox and PostgreSQL share the machine's cores:
the table gives their CPU use). Each system is its own sandbox process, as GitHub, Prometheus and
SonarQube are separate servers: with one process for all three, a GitHub answer waited while it
evaluated a PromQL range query. The GitHub load row compares the
request rate with the secondary limits of ``/work/shared/api/github.md`` §1.8, which the sandbox does
not enforce unless told to.

Last line: ``projects=… calls_per_project=… speedup=… rerun_writes=…`` (calls per project of the pooled
first collection; speedup = one at a time / with the pools; re-run writes = rows new or changed by the
second collection). Every process it starts (the sandbox, PostgreSQL) is stopped on any exit,
SIGTERM/SIGINT/SIGHUP included (``include/sandbox/processes.py``); ended by a signal it exits with 128 +
the signal's number. Exit status 1 (after the table) when a project's collection failed or the two
databases do not hold the same figures.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import importlib
import json
import logging
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

GITHUB_TOKEN = "ghp_sandboxtoken000000000000000000000000"
SONAR_TOKEN = "squ_sandbox"
OWNER = "bench"
SOURCES = ("github", "prometheus", "sonarqube")
POOLS = {"github": "github_api", "prometheus": "prometheus_api", "sonarqube": "sonarqube_api"}
DAY = dt.timedelta(days=1)
BATCH = 25  # repositories per bulk-seeding call
#: what a collection imports (before the clock starts: neither timed phase pays for it)
MODULES = (
    "devops_automation.hooks.github",
    "devops_automation.hooks.prometheus",
    "devops_automation.hooks.sonarqube",
    "devops_automation.store.http_cache",
    "devops_automation.workflows.daily_project_metrics.github_metrics",
    "devops_automation.workflows.daily_project_metrics.prometheus_metrics",
    "devops_automation.workflows.daily_project_metrics.sonarqube_metrics",
    "devops_automation.workflows.daily_project_metrics.store",
)

log = logging.getLogger("benchmarks.metrics")


def progress(message: str) -> None:
    """A line on stderr while it runs (the table comes at the end, on stdout)."""
    print(f"metrics: {message}", file=sys.stderr, flush=True)


def pool_slots(name: str) -> int:
    """Slots of an Airflow pool as ``airflow_settings.yaml`` defines it."""
    import yaml

    settings = yaml.safe_load((REPO / "airflow_settings.yaml").read_text())
    for pool in settings["airflow"]["pools"]:
        if pool["pool_name"] == name:
            return int(pool["pool_slot"])
    raise SystemExit(f"airflow_settings.yaml defines no pool {name!r}")


# -- projects and seeding ------------------------------------------------------------------------
def projects_text(count: int) -> str:
    """A projects file of ``count`` projects: own repository and SonarQube key each, the Prometheus
    queries of the shipped projects file's projects in turn."""
    import yaml

    shipped = yaml.safe_load((REPO / "include" / "config" / "projects.yaml").read_text())["projects"]
    query_sets = [p["prometheus"] for p in shipped if p.get("prometheus")]
    if not query_sets:
        raise SystemExit("include/config/projects.yaml has no project with Prometheus queries to copy")
    width = max(3, len(str(count)))
    projects = [
        {
            "name": f"proj-{n:0{width}d}",
            "github": f"{OWNER}/proj-{n:0{width}d}",
            "sonarqube": f"bench_{n:0{width}d}",
            "prometheus": query_sets[(n - 1) % len(query_sets)],
        }
        for n in range(1, count + 1)
    ]
    return yaml.safe_dump({"projects": projects}, sort_keys=False)


def sonar_measures(rng: random.Random) -> dict[str, float | int]:
    return {
        "coverage": round(rng.uniform(35, 95), 1),
        "new_coverage": round(rng.uniform(20, 100), 1),
        "bugs": rng.randint(0, 25),
        "vulnerabilities": rng.randint(0, 6),
        "new_vulnerabilities": rng.randint(0, 2),
        "code_smells": rng.randint(5, 500),
        "security_hotspots": rng.randint(0, 8),
        "security_hotspots_reviewed": round(rng.uniform(0, 100), 1),
        "duplicated_lines_density": round(rng.uniform(0, 15), 1),
        "ncloc": rng.randint(1_500, 150_000),
        "sqale_index": rng.randint(60, 9_000),
        "reliability_rating": float(rng.randint(1, 4)),
        "security_rating": float(rng.randint(1, 3)),
    }


def seed_sandbox(sandbox: Any, projects: Sequence[Any], items: int, seed: int) -> dict[str, int]:
    """Seed each project's repository and SonarQube project (no latency yet); returns counts."""
    rng = random.Random(seed)
    names = [str(p.github).split("/", 1)[1] for p in projects]
    for first in range(0, len(names), BATCH):
        batch = names[first : first + BATCH]
        sandbox.control(
            "github", "POST", "/repos", json={"owner": OWNER, "names": batch, "days": 90, "items": items, "seed": seed}
        )
    protected = alerted = 0
    for n, name in enumerate(names, start=1):
        if n % 2 == 0:
            sandbox.control("github", "POST", f"/repos/{OWNER}/{name}/protection", json={})
            protected += 1
        if n % 3 == 0:
            alerts = [
                {"kind": "dependabot", "name": "requests", "severity": "high", "age_s": 20 * 86400},
                {"kind": "code_scanning", "name": "py/sql-injection", "severity": "medium", "age_s": 5 * 86400},
            ]
            sandbox.control("github", "POST", f"/repos/{OWNER}/{name}/alerts", json={"alerts": alerts})
            alerted += 1
    for project in projects:
        body = {"key": project.sonarqube, "name": project.name, "measures": sonar_measures(rng), "gate": True}
        sandbox.control("sonarqube", "POST", "/projects", json=body)
    # far above what the benchmark spends: no collection waits for a reset
    sandbox.control("github", "POST", "/rate_limit", json={"limit": 10_000_000, "remaining": 10_000_000})
    return {"repos": len(names), "protected": protected, "alerted": alerted, "sonar": len(projects)}


class Sandboxes:
    """The sandbox servers, one per system, behind the few calls of ``SandboxClient`` used here."""

    def __init__(self, clients: dict[str, Any]) -> None:
        self.clients = clients

    def control(self, system: str, method: str, path: str, **kw: Any) -> Any:
        return self.clients[system].control(system, method, path, **kw)

    def latency(self, ms: int) -> None:
        for client in self.clients.values():
            client.latency(ms)

    def advance(self, seconds: float) -> float:
        return min(client.advance(seconds) for client in self.clients.values())

    def clear_requests(self) -> None:
        for client in self.clients.values():
            client.clear_requests()

    def requests(self, *, system: str) -> list[dict[str, Any]]:
        return self.clients[system].requests(system=system)


# -- collection ----------------------------------------------------------------------------------
@dataclass
class Unit:
    """One project's collection from one source (one mapped task instance)."""

    source: str
    project: str
    rows: int = 0
    written: int = 0
    requests: int = 0
    not_modified: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


def collect(source: str, project: Any, store: Any, start: dt.datetime, end: dt.datetime, latest: bool) -> Unit:
    """What ``MetricsCollectOperator`` does for one project and source: the figures with the DAG's
    hook, then the upsert."""
    from devops_automation.workflows.daily_project_metrics import store as metrics_store

    t0 = time.perf_counter()
    if source == "github":
        from devops_automation.hooks.github import GitHubHook
        from devops_automation.store.http_cache import StoreHttpCache
        from devops_automation.workflows.daily_project_metrics.github_metrics import github_figures

        cache = StoreHttpCache(store)
        hook: Any = GitHubHook(cache=cache)
        with cache.batch():
            result = github_figures(hook, project.name, str(project.github), start, end, latest=latest)
    elif source == "prometheus":
        from devops_automation.hooks.prometheus import PrometheusHook
        from devops_automation.workflows.daily_project_metrics.prometheus_metrics import prometheus_figures

        hook = PrometheusHook()
        result = prometheus_figures(hook, project.name, project.prometheus, start, end)
    else:
        from devops_automation.hooks.sonarqube import SonarQubeHook
        from devops_automation.workflows.daily_project_metrics.sonarqube_metrics import sonarqube_figures

        hook = SonarQubeHook()
        result = sonarqube_figures(hook, project.name, str(project.sonarqube), start, end, latest=latest)
    written = metrics_store.write_metrics(store, result.rows, end)
    return Unit(
        source,
        project.name,
        rows=len(result.rows),
        written=written,
        requests=hook.request_count,
        not_modified=getattr(hook, "not_modified_count", 0),
        seconds=time.perf_counter() - t0,
        problems=result.problems(),
    )


def _worker_process(jobs: Any, results: Any, store_url: str, spec: tuple) -> None:
    """One Airflow worker slot: a process of its own (as each task instance is), with its own database
    connection, taking the next job until the queue says stop (``None``)."""
    from devops_automation.store import ResultsStore

    projects, start, end, latest = spec
    store = ResultsStore(store_url)
    try:
        while True:
            job = jobs.get()
            if job is None:
                return
            source, index = job
            try:
                results.put(("done", collect(source, projects[index], store, start, end, latest)))
            except Exception as exc:  # one project failing does not stop the others (as in the DAG)
                log.exception("%s %s failed", source, projects[index].name)
                results.put(("failed", f"{source} {projects[index].name}: {exc.__class__.__name__}: {exc}"))
    finally:
        store.dispose()
        results.put(("exit", os.getpid()))


def run_queues(
    queues: dict[str, tuple[int, list[tuple[str, int]]]], store: Any, spec: tuple
) -> tuple[list[Unit], list[str], float, float]:
    """Run each queue's jobs ``(source, project index)`` on its number of worker processes, every queue at
    once, as the scheduler runs each mapped task's instances up to its pool's slots, each task instance in
    a process of its own (the executor's), so they do not share one interpreter lock. Returns the units,
    the failures (a job that raised), the wall time and the workers' CPU seconds. Workers are forked
    daemons; a signal (an exception here) terminates them before the guard's clean-up runs."""
    import multiprocessing
    import resource

    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    workers = []
    done: list[Unit] = []
    failed: list[str] = []
    url = store.url.render_as_string(hide_password=False)
    children_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    try:
        for name, (slots, jobs) in queues.items():
            shared = ctx.Queue()
            for job in jobs:
                shared.put(job)
            for _ in range(slots):
                shared.put(None)
            for k in range(slots):
                worker = ctx.Process(
                    target=_worker_process, args=(shared, results, url, spec), name=f"{name}-{k}", daemon=True
                )
                worker.start()
                workers.append(worker)
        running = len(workers)
        while running:
            kind, value = results.get()
            if kind == "done":
                done.append(value)
            elif kind == "failed":
                failed.append(value)
            else:
                running -= 1
        wall = time.perf_counter() - t0
        for worker in workers:
            worker.join()
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
                worker.join(5)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - children_cpu.ru_utime) + (after.ru_stime - children_cpu.ru_stime)
    return done, failed, wall, cpu


@dataclass
class Phase:
    label: str
    wall: float
    units: list[Unit]
    failed: list[str]
    calls: dict[str, int]  # sandbox-recorded requests per system
    statuses: dict[str, collections.Counter]
    cpu: float  # CPU seconds of the worker processes
    sandbox_cpu: float  # CPU seconds of the sandbox's process
    routes: collections.Counter  # GitHub requests per route (``/repos/{o}/{r}/issues/{n}/comments``)
    machine_busy: float  # share of all the machine's cores busy (anything: this process, sandbox, PostgreSQL)

    def total(self, attr: str, source: str | None = None) -> int:
        return sum(getattr(u, attr) for u in self.units if source in (None, u.source))

    def busy(self, source: str) -> float:
        return sum(u.seconds for u in self.units if u.source == source)

    def problems(self) -> list[str]:
        return [*self.failed, *(p for u in self.units for p in u.problems)]


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU time of the whole machine so far, in clock ticks (``/proc/stat``; zeros elsewhere)."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:9]]
    except OSError:
        return 0.0, 0.0
    idle = ticks[3] + ticks[4]  # idle + iowait
    return float(sum(ticks) - idle), float(sum(ticks))


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def phase(
    label: str,
    sandbox: Any,
    sandbox_pids: Sequence[int],
    store: Any,
    projects: Sequence[Any],
    start: dt.datetime,
    end: dt.datetime,
    latest: bool,
    slots: dict[str, int] | None,
) -> Phase:
    """One collection of every project: ``slots`` per source at once, or (None) one at a time."""

    if slots is None:
        queues = {"one-at-a-time": (1, [(s, i) for i in range(len(projects)) for s in SOURCES])}
    else:
        queues = {s: (slots[s], [(s, i) for i in range(len(projects))]) for s in SOURCES}
    sandbox.clear_requests()
    progress(f"{label}: collecting {len(projects)} projects")
    sandbox_cpu, machine = sum(map(process_cpu, sandbox_pids)), machine_cpu()
    units, failed, wall, cpu = run_queues(queues, store, (projects, start, end, latest))
    sandbox_cpu = sum(map(process_cpu, sandbox_pids)) - sandbox_cpu
    busy, total = (after - before for after, before in zip(machine_cpu(), machine, strict=True))
    calls: dict[str, int] = {}
    statuses: dict[str, collections.Counter] = {}
    routes: collections.Counter[str] = collections.Counter()
    for source in SOURCES:
        recorded = sandbox.requests(system=source)
        calls[source] = len(recorded)
        statuses[source] = collections.Counter(r["status"] for r in recorded)
        if source == "github":
            routes.update(route(r["path"]) for r in recorded)
    return Phase(label, wall, units, failed, calls, statuses, cpu, sandbox_cpu, routes, busy / total if total else 0.0)


def route(path: str) -> str:
    """A GitHub request path as its endpoint: ``/repos/bench/proj-001/issues/7/comments`` ->
    ``/repos/{o}/{r}/issues/{n}/comments``."""
    path = re.sub(r"^/repos/[^/]+/[^/]+", "/repos/{o}/{r}", path.split("?", 1)[0])
    return re.sub(r"/\d+(?=/|$)", "/{n}", path)


def stored_figures(store: Any, day: dt.date) -> set[tuple[Any, ...]]:
    from devops_automation.workflows.daily_project_metrics.store import day_rows

    return {
        (r["source"], r["project"], r["metric"], r["value_raw"], r["value"], r["unit"]) for r in day_rows(store, day)
    }


# -- report --------------------------------------------------------------------------------------
def describe_calls(p: Phase, projects: int) -> str:
    parts = []
    for source in SOURCES:
        counts = p.statuses[source]
        extra = [f"{n} x {status}" for status, n in sorted(counts.items()) if status != 200]
        parts.append(f"{source} {p.calls[source]}" + (f" ({', '.join(extra)})" if extra else ""))
    return "; ".join(parts) + f"; {sum(p.calls.values()) / projects:.2f} per project"


def per_project(p: Phase) -> str:
    totals: collections.Counter[str] = collections.Counter()
    for u in p.units:
        totals[u.project] += u.requests
    values = sorted(totals.values())
    if not values:
        return "-"
    return f"min {values[0]}, median {statistics.median(values):g}, max {values[-1]} (hook counters)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--projects", type=int, default=500)
    ap.add_argument("--latency-ms", type=int, default=20, help="the sandbox's latency on every API request")
    ap.add_argument("--items", type=int, default=90, help="issues and PRs per repository over 90 days")
    ap.add_argument("--seed", type=int, default=0)
    for source in SOURCES:
        ap.add_argument(f"--{source}-slots", type=int, default=None, help=f"default: the {POOLS[source]} pool's slots")
    args = ap.parse_args()
    if args.projects < 1:
        ap.error("--projects must be at least 1")
    slots = {s: getattr(args, f"{s}_slots") or pool_slots(POOLS[s]) for s in SOURCES}

    from include.sandbox.client import SandboxClient, SandboxServer
    from include.sandbox.processes import ProcessGuard
    from include.sandbox.servers import PostgresServer

    home = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"  # the table, not the hook logs
    rows: list[tuple[str, str, str]] = []
    # SIGTERM/SIGINT/SIGHUP become an exception here: the sandbox and PostgreSQL are stopped on any exit
    with ProcessGuard("metrics") as guard:
        guard.callback(lambda: shutil.rmtree(home, ignore_errors=True))
        pg = guard.start(PostgresServer())
        # one sandbox process per system, as GitHub, Prometheus and SonarQube are separate servers: one
        # process for all three would make a GitHub answer wait while it evaluates a PromQL range query
        servers = {s: guard.start(SandboxServer(systems=[s], seed=args.seed)) for s in SOURCES}
        sandbox = Sandboxes({s: SandboxClient(servers[s].base_url, timeout=600) for s in SOURCES})
        sandbox_pids = [servers[s].proc.pid for s in SOURCES]
        for source in SOURCES:
            conn = {"conn_type": source, "host": f"{servers[source].base_url}/{source}", "extra": {"timeout": 60}}
            password = {"github": GITHUB_TOKEN, "sonarqube": SONAR_TOKEN}.get(source)
            if password:
                conn["password"] = password
            os.environ[f"AIRFLOW_CONN_{source.upper()}_DEFAULT"] = json.dumps(conn)

        from devops_automation.store import ResultsStore
        from devops_automation.workflows.daily_project_metrics.projects import parse_projects
        from devops_automation.workflows.daily_project_metrics.sonarqube_metrics import is_latest_interval

        text = projects_text(args.projects)
        t0 = time.perf_counter()
        projects = parse_projects(text, "bench-projects.yaml")
        parsed = time.perf_counter() - t0
        t0 = time.perf_counter()
        progress(f"seeding the sandbox with {len(projects)} projects")
        seeded = seed_sandbox(sandbox, projects, args.items, args.seed)
        seeding = time.perf_counter() - t0
        sandbox.latency(args.latency_ms)
        now = dt.datetime.fromtimestamp(sandbox.advance(0), dt.UTC)
        start = now.replace(hour=0, minute=0, second=0, microsecond=0) - DAY
        end = start + DAY
        latest = is_latest_interval(start, end, now)

        pooled_store = ResultsStore(pg.create_database("pooled"))
        serial_store = ResultsStore(pg.create_database("one_at_a_time"))
        guard.callback(pooled_store.dispose)
        guard.callback(serial_store.dispose)
        pooled_store.ensure_schema()  # migrated before the clock starts
        serial_store.ensure_schema()
        for module in MODULES:
            importlib.import_module(module)
        pooled = phase("with the pools", sandbox, sandbox_pids, pooled_store, projects, start, end, latest, slots)
        again = phase("again, same day", sandbox, sandbox_pids, pooled_store, projects, start, end, latest, slots)
        serial = phase("one at a time", sandbox, sandbox_pids, serial_store, projects, start, end, latest, None)
        same = stored_figures(pooled_store, start.date()) == stored_figures(serial_store, start.date())
        stored = len(stored_figures(pooled_store, start.date()))

    n = args.projects
    speedup = serial.wall / pooled.wall if pooled.wall else 0.0
    busy = {s: serial.busy(s) for s in SOURCES}
    bound = sum(busy.values()) / max(busy[s] / slots[s] for s in SOURCES) if any(busy.values()) else 0.0
    calls_per_project = sum(pooled.calls.values()) / n
    rerun_writes = again.total("written")
    top_route, top_count = (pooled.routes.most_common(1) or [("-", 0)])[0]
    queries = collections.Counter(len(p.prometheus) for p in projects)
    rows += [
        ("sandbox", f"{args.latency_ms} ms", "latency added to every GitHub, Prometheus and SonarQube request"),
        (
            "projects",
            f"{n}",
            f"generated projects file parsed in {parsed * 1000:.0f} ms; Prometheus queries per project: "
            + ", ".join(f"{k} x {v}" for k, v in sorted(queries.items())),
        ),
        (
            "seeded",
            f"{seeding:.1f} s",
            (
                f"{seeded['repos']} repos ({args.items} issues/PRs in 90 d, {seeded['protected']} protected, "
                f"{seeded['alerted']} with alerts), {seeded['sonar']} SonarQube projects; Prometheus jobs shared"
            ),
        ),
        ("day collected", f"{start:%Y-%m-%d}", f"latest interval: {latest}"),
        (
            "pool slots",
            "/".join(str(slots[s]) for s in SOURCES),
            "github_api/prometheus_api/sonarqube_api: a worker process each",
        ),
    ]
    for p in (pooled, again, serial):
        rows += [
            (
                f"{p.label}: wall time",
                f"{p.wall:.1f} s",
                (
                    f"{p.wall / n * 1000:.0f} ms per project; CPU: the workers {p.cpu:.1f} s "
                    f"({p.cpu / p.wall:.0%} of the wall time), the sandbox {p.sandbox_cpu:.1f} s; "
                    f"the machine's {os.cpu_count()} cores {p.machine_busy:.0%} busy"
                ),
            ),
            (f"{p.label}: API calls", f"{sum(p.calls.values())}", describe_calls(p, n)),
            (
                f"{p.label}: hook requests",
                f"{p.total('requests')}",
                f"{p.total('not_modified')} answered 304 (GitHub ETag cache); per project {per_project(p)}",
            ),
            (
                f"{p.label}: rows",
                f"{p.total('rows')} / {p.total('written')}",
                f"figures / new or changed; {len(p.problems())} problems",
            ),
        ]
    rows += [
        (
            "one at a time, per source",
            "/".join(f"{busy[s]:.1f}" for s in SOURCES),
            "seconds spent on github/prometheus/sonarqube",
        ),
        ("speedup with the pools", f"{speedup:.2f}x", f"goal >= 5x; at most {bound:.2f}x with these pool sizes"),
        (
            "  time per request",
            "/".join(f"{pooled.busy(s) / max(1, pooled.total('requests', s)) * 1000:.0f}" for s in SOURCES),
            "ms with the pools (github/prometheus/sonarqube) against "
            + "/".join(f"{serial.busy(s) / max(1, serial.total('requests', s)) * 1000:.0f}" for s in SOURCES)
            + " one at a time: figures, hook and store included",
        ),
        (
            "GitHub load with the pools",
            f"{pooled.calls['github'] / pooled.wall * 60:.0f}/min",
            (
                f"requests; busiest endpoint {top_route} {top_count / pooled.wall * 60:.0f}/min (GitHub's secondary "
                f"limit: 900 points/min per endpoint, a GET 1); {pooled.busy('github') / pooled.wall * 60:.0f} s of "
                "response time per minute (limit: 90 s CPU per 60 s, estimated from response times)"
            ),
        ),
        (
            "GitHub calls per project",
            f"{pooled.calls['github'] / n:.2f}",
            ", ".join(f"{r} {c / n:.2f}" for r, c in pooled.routes.most_common()),
        ),
        ("re-run writes", f"{rerun_writes}", "rows new or changed collecting the same day again; goal 0"),
        ("same figures both ways", "yes" if same else "NO", f"{stored} rows of the day in each database"),
    ]
    problems = [*pooled.problems(), *again.problems(), *serial.problems()]
    for problem in problems[:20]:
        print(f"problem: {problem}", file=sys.stderr)
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print(f"{'measure':{width}}  {'value':>{value_width}}  note")
    for label, value, note in rows:
        print(f"{label:{width}}  {value:>{value_width}}  {note}")
    print(f"projects={n} calls_per_project={calls_per_project:.2f} speedup={speedup:.2f} rerun_writes={rerun_writes}")
    return 1 if problems or not same else 0


if __name__ == "__main__":
    sys.exit(main())
