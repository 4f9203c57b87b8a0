"""Demo-like data for the browser tests and the README's screenshots: four weeks up to ``now`` of six
repositories' CI runs (a red branch, a flaky job, a slow week), analysed failures with their excerpts (three
of them today), six projects' health scores with their inputs, alerts and archived reports.

Deterministic for a given ``now`` (one seeded random generator); the pages read it through the real
queries, so tests compare the page with what the queries return, not with numbers written here.
``ci_daily`` is computed by ``ci_analytics.analytics.store_daily``, as ci_pipeline_analytics does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from devops_automation.ci_analytics import analytics
from devops_automation.store import ResultsStore, schema

DAYS = 28
REPOS = (  # provider, repo, workflows, runs a day, failure rate
    ("github", "acme/api", ("CI", "Lint", "Release"), 14, 0.08),
    ("github", "acme/web", ("CI", "Lint"), 12, 0.12),
    ("github", "acme/payments", ("CI", "Release"), 8, 0.18),
    ("gitlab", "platform/infra", ("pipeline", "nightly"), 9, 0.10),
    ("gitlab", "platform/deploy-tools", ("pipeline",), 5, 0.05),
    ("gitlab", "mobile/app", ("pipeline", "nightly"), 10, 0.22),
)
PROJECTS = ("api", "web", "payments", "infra", "deploy-tools", "mobile")
JOBS = ("build", "test", "lint")
ACTORS = ("alice", "bob", "chen", "dana", "emre")
TRIAGE_RUN = "webhook__demo-payments-1"

#: (project path, job, stage, category, root cause, fix steps, log lines, evidence line numbers, transient)
FAILURES: tuple[tuple[Any, ...], ...] = (
    (
        "platform/infra",
        "terraform-plan",
        "plan",
        "configuration",
        "Terraform cannot read variable 'region': the CI variable TF_VAR_region is not set for protected branches.",
        ["Add TF_VAR_region to the project's CI/CD variables (protected)", "Re-run the pipeline"],
        [
            (212, "$ terraform plan -input=false -out=plan.tfplan"),
            (213, "Error: No value for required variable"),
            (214, '  on variables.tf line 3: 3: variable "region" {'),
            (215, 'The root module input variable "region" is not set, and has no default value.'),
        ],
        (213, 215),
        False,
    ),
    (
        "mobile/app",
        "unit-tests",
        "test",
        "test_failure",
        "CartTotalTest.testDiscountRounding expects 19.99 but the new rounding mode gives 20.00.",
        ["Use RoundingMode.HALF_EVEN in CartTotal.applyDiscount", "Run ./gradlew test --tests CartTotalTest"],
        [
            (1841, "> Task :app:testDebugUnitTest"),
            (1842, "CartTotalTest > testDiscountRounding FAILED"),
            (1843, "    org.junit.ComparisonFailure: expected:<19.9[9]> but was:<20.0[0]>"),
            (1844, "        at CartTotalTest.testDiscountRounding(CartTotalTest.kt:48)"),
            (1856, "42 tests completed, 1 failed"),
        ],
        (1842, 1843),
        False,
    ),
    (
        "mobile/app",
        "ui-tests",
        "test",
        "infrastructure",
        "The Android emulator did not boot within 300 s on runner gitlab-runner-7 (out of disk space).",
        ["Clean the runner's /var/lib/docker or move the job to a larger runner", "Retry the job"],
        [
            (96, "Starting emulator for AVD 'pixel_6_api_33'"),
            (97, "emulator: ERROR: Not enough disk space to run AVD 'pixel_6_api_33'."),
            (130, "Timeout waiting for emulator to boot (300 s)"),
        ],
        (97, 130),
        True,
    ),
    (
        "platform/deploy-tools",
        "build",
        "build",
        "dependency",
        "pip cannot find kubernetes==31.0.2: the pin names a release that was yanked from PyPI.",
        ["Pin kubernetes==31.0.0 in requirements.txt", "Regenerate the lock file"],
        [
            (54, "$ pip install -r requirements.txt"),
            (61, "ERROR: Could not find a version that satisfies the requirement kubernetes==31.0.2"),
            (62, "ERROR: No matching distribution found for kubernetes==31.0.2"),
        ],
        (61, 62),
        False,
    ),
    (
        "platform/infra",
        "lint",
        "test",
        "lint",
        "tflint: aws_instance.bastion uses the deprecated instance type t2.micro.",
        ["Change the bastion's instance_type to t3.micro", "Run tflint locally"],
        [
            (18, "$ tflint --recursive"),
            (22, "Warning: instance type t2.micro is previous generation (aws_instance_previous_type)"),
        ],
        (22,),
        False,
    ),
    (
        "mobile/app",
        "build",
        "build",
        "compile_error",
        "Kotlin compile error: unresolved reference 'formatPrice' in CheckoutScreen.kt (utils package renamed).",
        ["Import com.acme.mobile.money.formatPrice in CheckoutScreen.kt", "Build with ./gradlew assembleDebug"],
        [
            (402, "> Task :app:compileDebugKotlin FAILED"),
            (403, "e: CheckoutScreen.kt: (88, 21): Unresolved reference: formatPrice"),
            (410, "BUILD FAILED in 1m 12s"),
        ],
        (403,),
        False,
    ),
)


def _at(day: dt.datetime, rng: random.Random) -> dt.datetime:
    return day + dt.timedelta(seconds=rng.randrange(6 * 3600, 22 * 3600))


def _sha(rng: random.Random) -> str:
    return f"{rng.getrandbits(160):040x}"


def _insert(conn: sa.Connection, table: sa.Table, row: dict[str, Any]) -> int:
    return conn.execute(sa.insert(table).values(**row).returning(table.c.id)).scalar_one()


def ci_rows(now: dt.datetime, rng: random.Random) -> tuple[list[dict], list[dict]]:
    """Runs and jobs of the ``DAYS`` days before ``now`` (and today so far)."""
    today = dt.datetime(now.year, now.month, now.day, tzinfo=dt.UTC)
    runs: list[dict] = []
    jobs: list[dict] = []
    run_id = 700000
    for provider, repo, workflows, per_day, fail_rate in REPOS:
        number = 0
        for back in range(DAYS, -1, -1):
            day = today - dt.timedelta(days=back)
            slow = 7 <= back < 14  # a slow week: everything takes longer
            for _ in range(per_day if back else per_day // 3):
                created = _at(day, rng)
                if created >= now:
                    continue
                run_id += 1
                number += 1
                workflow = workflows[0] if rng.random() < 0.7 else rng.choice(workflows)
                branch = "main" if rng.random() < 0.6 else rng.choice(("feature/login", "feature/search", "release"))
                failed = rng.random() < fail_rate
                if repo == "acme/payments" and branch == "main" and back <= 2 and workflow == "CI":
                    failed = True  # red since two days ago
                sha = _sha(rng)
                queue = rng.expovariate(1 / (40 if slow else 12)) + 2
                attempts = [("failure" if failed else "success")]
                flaky = repo == "acme/web" and failed and rng.random() < 0.6
                if flaky or (provider == "github" and failed and rng.random() < 0.2):
                    attempts.append("success")
                at = created
                for attempt, status in enumerate(attempts, start=1):
                    started = at + dt.timedelta(seconds=queue)
                    took = rng.uniform(240, 720) * (1.6 if slow else 1.0) * (0.4 if workflow == "Lint" else 1.0)
                    finished = started + dt.timedelta(seconds=took)
                    if finished >= now:
                        break
                    failing = rng.randrange(len(JOBS)) if status == "failure" else -1
                    if flaky:
                        failing = 1
                    runs.append(
                        {
                            "provider": provider,
                            "repo": repo,
                            "run_id": str(run_id),
                            "attempt": attempt,
                            "run_number": number,
                            "name": workflow,
                            "workflow": workflow,
                            "branch": branch,
                            "sha": sha,
                            "actor": rng.choice(ACTORS),
                            "event": "push" if branch == "main" else "pull_request",
                            "status": status,
                            "created_at": at,
                            "started_at": started,
                            "finished_at": finished,
                            "duration_s": round(took, 1),
                            "queue_s": round(queue, 1),
                            "url": f"https://{provider}.example.com/{repo}/runs/{run_id}/{attempt}",
                            "collected_at": now,
                        }
                    )
                    for k, job in enumerate(JOBS):
                        job_status = "failure" if k == failing else ("skipped" if 0 <= failing < k else "success")
                        if status == "success":
                            job_status = "success"
                        jobs.append(
                            {
                                "provider": provider,
                                "repo": repo,
                                "run_id": str(run_id),
                                "attempt": attempt,
                                "job_id": f"{run_id}{attempt}{k}",
                                "name": job,
                                "stage": job,
                                "status": job_status,
                                "started_at": started,
                                "finished_at": finished,
                                "duration_s": round(took / 3, 1),
                                "queue_s": round(queue, 1),
                                "url": f"https://{provider}.example.com/{repo}/jobs/{run_id}{attempt}{k}",
                            }
                        )
                    at = finished + dt.timedelta(minutes=rng.randrange(5, 90))
    return runs, jobs


def _components(rng: random.Random, level: float, day: int = 0) -> tuple[float, dict[str, Any]]:
    """A health score in the stored shape (``HealthScore.as_json``), around ``level`` (sub-scores drift
    slowly with ``day``)."""
    subs = {
        "delivery": [("ci_success_rate", 7.5, "ci.success_rate"), ("ci_mttr", 5.0, "ci.mttr_s")],
        "quality": [("coverage", 5.0, "sonarqube.coverage"), ("bugs", 5.0, "sonarqube.bugs")],
        "security": [("open_alerts", 7.5, "github.open_security_alerts")],
        "activity": [("prs_merged", 2.5, "github.prs_merged")],
        "reliability": [("availability", 7.5, "prometheus.availability")],
    }
    components = []
    dims: dict[str, float] = {}
    for dim, parts in subs.items():
        scores = []
        for name, weight, figure in parts:
            phase = len(name) + len(dim)
            score = max(0.0, min(10.0, level / 10 + 0.9 * math.sin(day / 5 + phase) + rng.uniform(-0.25, 0.25)))
            value = {
                "ci.success_rate": round(0.6 + score / 25, 3),
                "ci.mttr_s": round(36000 / (score + 1)),
                "sonarqube.coverage": round(40 + score * 5, 1),
                "sonarqube.bugs": round(12 - score),
                "github.open_security_alerts": round(8 - score * 0.7),
                "github.prs_merged": round(score * 2),
                "prometheus.availability": round(99 + score / 10, 2),
            }[figure]
            components.append(
                {
                    "dimension": dim,
                    "name": name,
                    "weight": weight,
                    "inputs": {figure: value},
                    "score": round(score, 3),
                    "status": "ok",
                    "detail": f"{figure} = {value}",
                }
            )
            scores.append((weight, score))
        dims[dim] = round(10 * sum(w * s for w, s in scores) / sum(w for w, _ in scores), 1)
    total = round(10 * sum(c["weight"] * c["score"] for c in components) / sum(c["weight"] for c in components), 1)
    grade = next(g for limit, g in ((85, "A"), (70, "B"), (55, "C"), (40, "D"), (0, "E")) if total >= limit)
    return total, {
        "formula_version": "1",
        "score": total,
        "grade": grade,
        "weight_with_data": sum(c["weight"] for c in components),
        "weight_total": sum(c["weight"] for c in components),
        "dimensions": dims,
        "components": components,
    }


def _excerpt(lines: list[tuple[int, str]], total: int) -> str:
    out, prev = [], 0
    for n, text in lines:
        if n > prev + 1:
            out.append(f"… ({n - prev - 1} lines)")
        out.append(f"{n}: {text}")
        prev = n
    out.append(f"… ({total - prev} lines)")
    return "\n".join(out)


def _report_html(title: str, week: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>" + title + "</title></head>"
        "<body style='font-family:sans-serif;max-width:680px;margin:auto'>"
        f"<h1>{title}</h1><p>Week {week}: 1,912 CI runs, success rate 88.4 % (−2.1 pt), MTTR 3.2 h.</p>"
        "<h2>1. CI runs and success rate</h2><img src='chart-ci_runs-success_rate.png' alt='CI success rate'>"
        "</body></html>"
    )


def demo_seed(store: ResultsStore, archive_dir: Path | None = None, now: dt.datetime | None = None) -> dict[str, Any]:
    """Write the demo rows for the ``DAYS`` days before ``now`` (default: the wall clock, as the API
    server's pages use it); returns ``{"ids": {...}}``."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    today = dt.datetime(now.year, now.month, now.day, tzinfo=dt.UTC)
    rng = random.Random(20261204)
    ids: dict[str, Any] = {"now": now, "triage_run": TRIAGE_RUN}
    store.ensure_schema()
    runs, jobs = ci_rows(now, rng)
    with store.begin() as conn:
        conn.execute(sa.insert(schema.ci_runs), runs)
        conn.execute(sa.insert(schema.ci_jobs), jobs)
    analytics.store_daily(store, [(today - dt.timedelta(days=b)).date() for b in range(DAYS, -1, -1)], computed_at=now)
    ids["runs"] = len(runs)

    with store.begin() as conn:
        # -- failures: one per FAILURES entry a day over two weeks, the latest three today
        analyses: list[int] = []
        events: list[int] = []
        fingerprints: dict[str, dict[str, Any]] = {}
        pipeline = 91000
        schedule = [(k % len(FAILURES), 13 - k // 2) for k in range(26)] + [(0, 0), (1, 0), (3, 0)]
        for n, (which, back) in enumerate(schedule):
            path, job, stage, category, cause, fix, lines, evidence, transient = FAILURES[which]
            pipeline += 1
            when = min(_at(today - dt.timedelta(days=back), rng), now - dt.timedelta(minutes=20 + 7 * n % 60))
            if back == 0:  # today's, in order, the last about half an hour ago
                left = len(schedule) - n
                when = max(today, now - dt.timedelta(minutes=35 * left))
            run = TRIAGE_RUN if n == len(schedule) - 1 else f"asset_triggered__{when:%Y-%m-%dT%H%M%S}"
            project_id = str(100 + PROJECTS.index(path.split("/")[-1].replace("app", "mobile")))
            event = _insert(
                conn,
                schema.failure_events,
                {
                    "provider": "gitlab",
                    "project_id": project_id,
                    "project_path": path,
                    "pipeline_id": str(pipeline),
                    "ref": "main" if n % 3 else "feature/checkout",
                    "sha": _sha(rng),
                    "status": "failed",
                    "source": "webhook" if n % 2 else "email",
                    "pipeline_url": f"https://gitlab.example.com/{path}/-/pipelines/{pipeline}",
                    "state": "notified",
                    "payload": {"claimed_by": run, "sources": ["webhook" if n % 2 else "email"]},
                    "received_at": when,
                    "updated_at": when + dt.timedelta(minutes=2),
                },
            )
            events.append(event)
            fingerprint = hashlib.sha256(f"{path}:{job}:{lines[1][1]}".encode()).hexdigest()[:16]
            job_id = str(5_500_000 + n)
            analyses.append(
                _insert(
                    conn,
                    schema.failure_analyses,
                    {
                        "event_id": event,
                        "job_id": job_id,
                        "job_name": job,
                        "stage": stage,
                        "job_url": f"https://gitlab.example.com/{path}/-/jobs/{job_id}",
                        "category": category,
                        "root_cause": cause,
                        "fix_steps": fix,
                        "evidence_lines": [{"line": ln, "text": t} for ln, t in lines if ln in evidence],
                        "is_transient": transient,
                        "confidence": 0.9 if not transient else 0.75,
                        "analyser": "llm",
                        "model": "gpt-4o-mini",
                        "prompt_tokens": 1800 + 37 * n,
                        "completion_tokens": 210 + n,
                        "latency_ms": 2400 + 50 * n,
                        "excerpt": _excerpt(lines, lines[-1][0] + 40),
                        "excerpt_lines": [f"{lines[0][0]}-{lines[-1][0]}"],
                        "fingerprint": fingerprint,
                        "created_at": when + dt.timedelta(minutes=1),
                    },
                )
            )
            seen = fingerprints.setdefault(
                fingerprint,
                {
                    "fingerprint": fingerprint,
                    "project_path": path,
                    "job_name": job,
                    "first_error": lines[1][1],
                    "occurrences": 0,
                    "first_seen": when,
                    "last_seen": when,
                },
            )
            seen["occurrences"] += 1
            seen["last_seen"] = max(seen["last_seen"], when)
        conn.execute(sa.insert(schema.failure_fingerprints), list(fingerprints.values()))
        ids.update(analyses=analyses, events=events, today_analyses=analyses[-3:])

        # -- health: six projects, a score a day with its inputs
        levels = {"api": 82, "web": 74, "payments": 58, "infra": 69, "deploy-tools": 88, "mobile": 49}
        rows = []
        for project, level in levels.items():
            for back in range(DAYS, 0, -1):
                drift = (DAYS - back) * (0.6 if project == "web" else -0.5 if project == "payments" else 0.05)
                score, components = _components(rng, level + drift, DAYS - back)
                rows.append(
                    {
                        "day": (today - dt.timedelta(days=back)).date(),
                        "project": project,
                        "score": score,
                        "grade": components["grade"],
                        "components": components,
                        "created_at": now,
                    }
                )
        conn.execute(sa.insert(schema.health_scores), rows)

        # -- alerts: two firing, three resolved
        ci, dpm = "ci_pipeline_analytics", "daily_project_metrics"
        alert_rows = [  # source, rule, scope, severity, state, started/resolved days ago, value, threshold
            (ci, "main-success-rate", "github:acme/payments:CI:main", "critical", "firing", 2, None, 0.42, 0.8),
            (dpm, "threshold:sonarqube.coverage", "mobile", "warning", "firing", 1, None, 58.0, 60.0),
            (ci, "queue-time-p90", "gitlab:platform/infra", "warning", "resolved", 12, 9, 610.0, 600.0),
            (dpm, "threshold:prometheus.availability", "payments", "critical", "resolved", 6, 5, 98.7, 99.0),
            (ci, "flaky-rate", "github:acme/web", "warning", "resolved", 20, 16, 0.12, 0.1),
        ]
        ids["alerts"] = [
            _insert(
                conn,
                schema.alert_events,
                {
                    "source": source,
                    "rule_id": rule,
                    "scope_key": scope,
                    "severity": severity,
                    "state": state,
                    "started_at": today - dt.timedelta(days=started),
                    "resolved_at": None if resolved is None else today - dt.timedelta(days=resolved),
                    "last_evaluated_at": today if resolved is None else today - dt.timedelta(days=resolved),
                    "value": value,
                    "threshold": threshold,
                    "details": {},
                },
            )
            for source, rule, scope, severity, state, started, resolved, value, threshold in alert_rows
        ]

        # -- reports: the last three weeks (archived as files) and last month
        reports = []
        monday = today - dt.timedelta(days=today.weekday())
        for k in (1, 2, 3):
            start = (monday - dt.timedelta(weeks=k)).date()
            week = f"{start.isocalendar().year}-W{start.isocalendar().week:02d}"
            title = f"Weekly engineering report {week}"
            folder = None
            if archive_dir is not None:
                from devops_automation import charts

                path = archive_dir / week
                path.mkdir(parents=True, exist_ok=True)
                (path / "report.html").write_text(_report_html(title, week))
                (path / "report.md").write_text(f"# {title}\n\nCI runs: 1,912; success rate 88.4 %\n")
                png = charts.line_chart(
                    "CI success rate",
                    [f"W{n}" for n in range(1, 9)],
                    {"Success rate": [91.0, 90.2, 92.5, 89.9, 90.8, 88.1, 89.5, 88.4]},
                    y_label="Success rate",
                    unit="%",
                )
                (path / "chart-ci_runs-success_rate.png").write_bytes(png)
                folder = f"file://{path}"
            reports.append(
                {
                    "kind": "weekly",
                    "period_start": start,
                    "period_end": start + dt.timedelta(days=7),
                    "markdown": f"# {title}\n",
                    "html": _report_html(title, week),
                    "summary": {
                        "title": title,
                        "has_data": True,
                        "headlines": [
                            {"label": "CI runs", "value_text": "1,912", "change_text": "+4.2 %", "tone": "neutral"},
                            {"label": "Success rate", "value_text": "88.4 %", "change_text": "−2.1 pt", "tone": "bad"},
                            {"label": "MTTR", "value_text": "3.2 h", "change_text": "−0.8 h", "tone": "good"},
                        ],
                    },
                    "archive_path": folder,
                    "created_at": datetime_of(start + dt.timedelta(days=7)),
                }
            )
        first = today.date().replace(day=1)
        last_month = (first - dt.timedelta(days=1)).replace(day=1)
        reports.append(
            {
                "kind": "monthly",
                "period_start": last_month,
                "period_end": first,
                "markdown": "# Monthly engineering report\n",
                "html": "<h1>Monthly engineering report</h1>",
                "summary": {"title": f"Monthly engineering report {last_month:%Y-%m}", "has_data": True},
                "archive_path": None,
                "created_at": datetime_of(first),
            }
        )
        ids["reports"] = [_insert(conn, schema.reports, r) for r in reports]
    return {"ids": ids}


def datetime_of(day: dt.date, hour: int = 6) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)
