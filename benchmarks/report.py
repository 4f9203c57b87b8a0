"""weekly_report at scale: the time to build one report with all its charts from a big results store, the
build's peak memory, and the size of its HTML and e-mail.

    .venv/bin/python benchmarks/report.py [--repos 200] [--weeks 8] [--runs-per-day 40] [--alerts 120]

**Store.** A throwaway PostgreSQL gets ``--weeks`` weeks of synthetic CI history for ``--repos``
repositories, ``--runs-per-day`` runs a repository a day (:func:`benchmarks.analytics.load_synthetic`: about
10 % re-run, three jobs an attempt, two production deployments a day per repository, failure analyses of
a fifth of the failed GitLab jobs; 200 x 8 weeks x 40 a day = 448,000 runs), ending Monday 2026-11-30
00:00 UTC. The analyses get fingerprints (40 of them, each with its ``failure_fingerprints`` row), so
recurring fingerprints have data. ``daily_project_metrics`` rows for as many projects over the same days
are written with that DAG's own ``store.write_metrics`` / ``write_health``: per project and day six GitHub
figures (pull requests, issues, time to merge / first response), six SonarQube figures (quality gate,
ratings, coverage, debt), three Prometheus SLO figures and a health score. ``--alerts`` alert episodes
(``alert_events``, a third still firing) are spread over the weeks.

**Build.** The report of the last week (2026-11-23 → 2026-11-30, UTC), as ``ReportBuildOperator`` builds
it: :func:`.figures.report_figures` (8 weeks of history) → :func:`.render.render_report` (the templates of
``include/templates/weekly_report``, every chart) → :func:`.archive.report_files` → the e-mail
(:func:`devops_automation.notifiers.email.build_report_message` with every chart inline, serialised with
``as_bytes()``: the bytes an SMTP server receives). It runs in a child process, three times: the first
build in the fresh process (*cold*: imports excluded and timed apart; the first chart and template pay
their set-up) is ``build_s``, the best of the other two (*warm*) is shown beside it. The child's
``ru_maxrss`` is ``peak_rss_mb`` (the whole process: interpreter, imports and the builds); the table shows
the part the builds added. The table says whether the three builds gave byte-identical archive files (the
e-mail's MIME boundaries are random, so its bytes differ from build to build).

Last line: ``repos=… build_s=… peak_rss_mb=… email_kb=…``. Goals: build < 10 s, e-mail < 1 MB. PostgreSQL
and the child are stopped on any exit, SIGTERM/SIGINT/SIGHUP included (``include/sandbox/processes.py``);
ended by a signal it exits with 128 + the signal's number.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

DAY = dt.timedelta(days=1)
#: the end of the history and of the report's week (a Monday, 00:00 UTC)
END = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
TEMPLATES = REPO / "include" / "templates" / "weekly_report"
BUILDS = 3
FINGERPRINTS = 40


# -- the store ------------------------------------------------------------------------------------
def project_names(count: int) -> list[str]:
    return [f"bench/project-{i:03d}" for i in range(count)]


def metric_rows(day: dt.date, project: str, rng: random.Random) -> list[dict[str, Any]]:
    """One project's ``project_metrics`` rows of one day (``metric_rows.metric_row`` dicts)."""
    from devops_automation.workflows.daily_project_metrics.metric_rows import metric_row

    gate = "ERROR" if rng.random() < 0.1 else "OK"
    figures = [
        ("github", "prs_merged", rng.randint(0, 12), "count"),
        ("github", "prs_opened", rng.randint(0, 14), "count"),
        ("github", "issues_opened", rng.randint(0, 6), "count"),
        ("github", "issues_closed", rng.randint(0, 6), "count"),
        ("github", "time_to_merge_p50_s", round(rng.expovariate(1 / 30_000)), "s"),
        ("github", "time_to_first_response_p50_s", round(rng.expovariate(1 / 7_200)), "s"),
        ("sonarqube", "reliability_rating", rng.choice((1, 1, 1, 2, 3)), "rating"),
        ("sonarqube", "security_rating", rng.choice((1, 1, 2, 4)), "rating"),
        ("sonarqube", "maintainability_rating", rng.choice((1, 1, 2)), "rating"),
        ("sonarqube", "coverage", round(rng.uniform(40, 95), 1), "%"),
        ("sonarqube", "technical_debt", rng.randint(0, 5_000), "min"),
        ("prometheus", "availability", round(rng.uniform(0.985, 1.0), 5), "ratio"),
        ("prometheus", "error_rate", round(rng.uniform(0, 0.02), 5), "ratio"),
        ("prometheus", "p95_latency", round(rng.uniform(0.08, 1.5), 3), "s"),
    ]
    rows = [
        metric_row(day, source, project, metric, value, float(value), unit) for source, metric, value, unit in figures
    ]
    rows.append(metric_row(day, "sonarqube", project, "quality_gate", gate, 1.0 if gate == "OK" else 0.0, None))
    return rows


def load_daily(store: Any, projects: list[str], days: int, end: dt.datetime) -> dict[str, int]:
    """``project_metrics`` and ``health_scores`` of every project and day, one write per day."""
    from devops_automation.workflows.daily_project_metrics.store import write_health, write_metrics

    rng = random.Random(2)
    base = {p: rng.uniform(55, 90) for p in projects}
    counts = {"project_metrics": 0, "health_scores": 0}
    for d in range(days, 0, -1):
        day = (end - d * DAY).date()
        at = end - (d - 1) * DAY
        rows = [row for project in projects for row in metric_rows(day, project, rng)]
        counts["project_metrics"] += write_metrics(store, rows, collected_at=at)
        health = []
        for project in projects:
            base[project] = min(100.0, max(0.0, base[project] + rng.gauss(0, 2)))
            score = round(base[project], 1)
            grade = "A" if score >= 90 else "B" if score >= 75 else "C" if score >= 60 else "D" if score >= 40 else "F"
            components = {"ci": round(score + rng.uniform(-5, 5), 1), "quality": round(score + rng.uniform(-5, 5), 1)}
            health.append({"day": day, "project": project, "score": score, "grade": grade, "components": components})
        counts["health_scores"] += write_health(store, health, created_at=at)
    return counts


def load_alerts(store: Any, count: int, repos: int, projects: list[str], days: int, end: dt.datetime) -> int:
    """``count`` alert episodes spread over the days; a third of them still firing at ``end``."""
    import sqlalchemy as sa

    from devops_automation.store import schema

    rng = random.Random(3)
    rows = []
    for n in range(count):
        started = end - dt.timedelta(seconds=rng.randint(3_600, days * 86_400))
        resolved = None if n % 3 == 0 else min(end, started + dt.timedelta(seconds=rng.randint(600, 3 * 86_400)))
        if n % 2:
            source, rule, scope = (
                "ci_pipeline_analytics",
                "success_rate_low",
                f"github:bench/repo-{n % repos:03d}:CI:main",
            )
        else:
            source, rule, scope = "daily_project_metrics", "coverage_low", projects[n % len(projects)]
        rows.append(
            {
                "source": source,
                "rule_id": rule,
                "scope_key": scope,
                "severity": "critical" if n % 5 == 0 else "warning",
                "state": "firing" if resolved is None else "resolved",
                "started_at": started,
                "resolved_at": resolved,
                "last_evaluated_at": resolved or end,
                "value": round(rng.uniform(0.4, 0.8), 3),
                "threshold": 0.8,
                "details": {"bench": True},
            }
        )
    if rows:
        with store.engine.begin() as conn:
            conn.execute(sa.insert(schema.alert_events), rows)
    return len(rows)


def add_fingerprints(store: Any) -> int:
    """Give the synthetic failure analyses one of :data:`FINGERPRINTS` fingerprints and each fingerprint its
    ``failure_fingerprints`` row; returns how many fingerprints there are."""
    import sqlalchemy as sa

    with store.engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE failure_analyses SET fingerprint = md5((id % {FINGERPRINTS})::text)"))
        conn.execute(
            sa.text(
                "INSERT INTO failure_fingerprints (fingerprint, project_path, job_name, first_error, occurrences, "
                "first_seen, last_seen) SELECT fa.fingerprint, min(fe.project_path), 'test', "
                "'AssertionError: expected 200, got 503', count(*), min(fa.created_at), max(fa.created_at) "
                "FROM failure_analyses fa JOIN failure_events fe ON fe.id = fa.event_id GROUP BY fa.fingerprint"
            )
        )
        return int(conn.execute(sa.text("SELECT count(*) FROM failure_fingerprints")).scalar_one())


def load_store(args: argparse.Namespace, url: str, rows: list[tuple[str, str, str]]) -> None:
    from benchmarks.analytics import load_synthetic
    from devops_automation.store import ResultsStore

    days = args.weeks * 7
    runs = args.repos * days * args.runs_per_day
    store = ResultsStore(url)
    try:
        store.ensure_schema()
        t0 = time.perf_counter()
        counts = load_synthetic(url, runs, args.repos, days, END)
        fingerprints = add_fingerprints(store)
        ci_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        projects = project_names(args.repos)
        daily = load_daily(store, projects, days, END)
        alerts = load_alerts(store, args.alerts, args.repos, projects, days, END)
        daily_s = time.perf_counter() - t0
    finally:
        store.dispose()
    rows += [
        (
            "synthetic CI history",
            f"{runs} runs",
            (
                f"{args.repos} repos x {days} d x {args.runs_per_day} runs/d up to {END:%Y-%m-%d}: "
                f"{counts['ci_runs']} attempts, {counts['ci_jobs']} jobs, {counts['ci_deployments']} deployments, "
                f"{counts['failure_analyses']} analyses ({fingerprints} fingerprints); loaded in {ci_s:.0f} s"
            ),
        ),
        (
            "daily metrics",
            f"{daily['project_metrics']} rows",
            (
                f"{len(projects)} projects x {days} d x 15 metrics (write_metrics); {daily['health_scores']} "
                f"health scores (write_health); {alerts} alert episodes; written in {daily_s:.0f} s"
            ),
        ),
    ]


# -- the build (in a child process) ------------------------------------------------------------------
def maxrss_mb() -> float:
    """This process's peak resident set so far (``ru_maxrss``: KiB on Linux), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_child(url: str) -> dict[str, Any]:
    """Build the last week's report :data:`BUILDS` times in this process; returns timings, sizes, memory."""
    t0 = time.perf_counter()
    from devops_automation.notifiers.email import build_report_message
    from devops_automation.store import ResultsStore
    from devops_automation.workflows.weekly_report.archive import report_files
    from devops_automation.workflows.weekly_report.figures import report_figures
    from devops_automation.workflows.weekly_report.render import render_report

    imports = time.perf_counter() - t0
    rss_imports = maxrss_mb()
    store = ResultsStore(url, auto_migrate=False)
    builds: list[dict[str, Any]] = []
    result: dict[str, Any] = {}
    try:
        for _ in range(BUILDS):
            stage: dict[str, float] = {}
            t = time.perf_counter()
            figures = report_figures(store, start=END - 7 * DAY, end=END, period="week")
            stage["figures"] = time.perf_counter() - t
            t = time.perf_counter()
            rendered = render_report(figures, templates_dir=TEMPLATES)
            stage["render"] = time.perf_counter() - t
            t = time.perf_counter()
            files = report_files(
                markdown=rendered.markdown, html=rendered.html, charts=rendered.charts, figures=figures
            )
            stage["files"] = time.perf_counter() - t
            t = time.perf_counter()
            message = build_report_message(
                f"{rendered.summary.get('title') or 'DevOps report'}: {figures['period']['label']}",
                html=rendered.html,
                text=rendered.text,
                images=rendered.charts,
                from_email="reports@example.com",
                to=["team@example.com"],
                message_id="<bench@example.com>",
                date="Mon, 30 Nov 2026 06:00:00 +0000",
            )
            email = message.as_bytes()
            stage["email"] = time.perf_counter() - t
            digest = hashlib.sha256()
            for name in sorted(files):
                digest.update(name.encode() + b"\0" + files[name] + b"\0")
            builds.append({"stages": stage, "total": sum(stage.values()), "sha256": digest.hexdigest()})
        result = {
            "imports_s": imports,
            "builds": builds,
            "rss_imports_mb": rss_imports,
            "peak_rss_mb": maxrss_mb(),
            "html_bytes": len(rendered.html.encode()),
            "markdown_bytes": len(rendered.markdown.encode()),
            "figures_json_bytes": len(files["figures.json"]),
            "charts": len(rendered.charts),
            "charts_bytes": sum(len(png) for png in rendered.charts.values()),
            "email_bytes": len(email),
            "sections": [s for s in figures["sections_order"] if "no_data" not in figures["sections"][s]],
            "no_data": [s for s in figures["sections_order"] if "no_data" in figures["sections"][s]],
            "label": figures["period"]["label"],
        }
    finally:
        store.dispose()
    return result


def build(guard: Any, url: str, rows: list[tuple[str, str, str]]) -> dict[str, Any]:
    """Run :func:`build_child` in a fresh interpreter (its own ``ru_maxrss``); add its rows to the table."""
    done = guard.run(
        [sys.executable, str(Path(__file__).resolve()), "--build-child", url],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"the report build failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    r = json.loads(done.stdout.strip().splitlines()[-1])
    cold, warm = r["builds"][0], min(r["builds"][1:], key=lambda b: b["total"])
    identical = len({b["sha256"] for b in r["builds"]}) == 1
    r["build_s"] = cold["total"]

    added = r["peak_rss_mb"] - r["rss_imports_mb"]

    def split(b: dict[str, Any]) -> str:
        return ", ".join(f"{name} {seconds:.2f}" for name, seconds in b["stages"].items())

    rows += [
        (
            "report",
            r["label"],
            f"sections with data: {', '.join(r['sections'])}; without: {', '.join(r['no_data']) or '-'}",
        ),
        (
            "imports (child process)",
            f"{r['imports_s']:.2f} s",
            "figures, render, archive, notifiers.email (airflow.sdk)",
        ),
        ("build, cold", f"{cold['total']:.2f} s", f"first build in the process: {split(cold)} s; goal < 10 s"),
        (
            "build, warm",
            f"{warm['total']:.2f} s",
            f"best of {len(r['builds']) - 1} more: {split(warm)} s",
        ),
        (
            "  archive files identical",
            "yes" if identical else "NO",
            f"{len(r['builds'])} builds (the e-mail differs only in its random MIME boundaries)",
        ),
        (
            "peak RSS (child)",
            f"{r['peak_rss_mb']:.0f} MB",
            f"ru_maxrss; {r['rss_imports_mb']:.0f} MB after the imports, +{added:.0f} MB by the builds",
        ),
        (
            "HTML",
            f"{r['html_bytes'] / 1024:.0f} KB",
            f"Markdown {r['markdown_bytes'] / 1024:.0f} KB, figures.json {r['figures_json_bytes'] / 1024:.0f} KB",
        ),
        ("charts", f"{r['charts']} PNGs", f"{r['charts_bytes'] / 1024:.0f} KB"),
        (
            "e-mail",
            f"{r['email_bytes'] / 1024:.0f} KB",
            "build_report_message(...).as_bytes(): text + HTML quoted-printable, PNGs base64; goal < 1 MB",
        ),
    ]
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repos", type=int, default=200, help="repositories, and as many projects")
    ap.add_argument("--weeks", type=int, default=8)
    ap.add_argument("--runs-per-day", type=int, default=40, help="runs a repository a day")
    ap.add_argument("--alerts", type=int, default=120, help="alert episodes over the weeks")
    ap.add_argument("--build-child", metavar="URL", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build_child:
        print(json.dumps(build_child(args.build_child)))
        return 0
    if args.weeks < 2 or args.repos < 1 or args.runs_per_day < 1:
        ap.error("--weeks must be at least 2 (the week and the one before), --repos and --runs-per-day at least 1")

    from include.sandbox.processes import ProcessGuard
    from include.sandbox.servers import PostgresServer

    home = Path(tempfile.mkdtemp(prefix="bench-report-"))
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    rows: list[tuple[str, str, str]] = []
    # SIGTERM/SIGINT/SIGHUP become an exception here: PostgreSQL and the child are stopped on any exit
    with ProcessGuard("report") as guard:
        guard.callback(lambda: shutil.rmtree(home, ignore_errors=True))
        pg = guard.start(PostgresServer())
        url = pg.create_database("report")
        load_store(args, url, rows)
        result = build(guard, url, rows)
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print(f"{'measure':{width}}  {'value':>{value_width}}  note")
    for label, value, note in rows:
        print(f"{label:{width}}  {value:>{value_width}}  {note}")
    print(
        f"repos={args.repos} build_s={result['build_s']:.2f} peak_rss_mb={result['peak_rss_mb']:.0f} "
        f"email_kb={result['email_bytes'] / 1024:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
