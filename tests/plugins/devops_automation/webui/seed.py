"""Known rows in every table the view reads, for the query, API and server tests (values asserted there).

The CI rows are a small history of two repositories; ``ci_daily`` is computed from them by
``ci_analytics.analytics.store_daily`` (what ci_pipeline_analytics stores), so red branches come from the
real figures code.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from devops_automation.ci_analytics import analytics
from devops_automation.store import ResultsStore, schema
from devops_automation.store.alert_events import AlertEvent, dedup_key

T0 = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
WINDOW = (dt.datetime(2026, 11, 13, tzinfo=dt.UTC), dt.datetime(2026, 11, 20, tzinfo=dt.UTC))
CI_DAYS = [dt.date(2026, 11, d) for d in (10, 14, 15, 16, 17, 18)]


def at(day: int, hour: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=dt.UTC)


def _insert(conn: sa.Connection, table: sa.Table, row: dict[str, Any]) -> int:
    return conn.execute(sa.insert(table).values(**row).returning(table.c.id)).scalar_one()


def _run(provider: str, repo: str, run_id: str, attempt: int, status: str | None, finished: Any, **kw: Any) -> dict:
    return {
        "provider": provider,
        "repo": repo,
        "run_id": run_id,
        "attempt": attempt,
        "run_number": int(run_id),
        "name": "CI",
        "workflow": "CI",
        "branch": kw.pop("branch", "main"),
        "sha": kw.pop("sha", f"sha{run_id}"),
        "actor": "alice",
        "event": "push",
        "status": status,
        "created_at": kw.pop("created_at", (finished or at(19)) - dt.timedelta(minutes=10)),
        "started_at": (finished or at(19)) - dt.timedelta(minutes=5),
        "finished_at": finished,
        "duration_s": kw.pop("duration_s", 100.0),
        "queue_s": 5.0,
        "url": f"https://ci.example.test/{repo}/runs/{run_id}/{attempt}",
        "collected_at": T0,
        **kw,
    }


def _job(provider: str, repo: str, run_id: str, attempt: int, job_id: str, status: str, finished: Any) -> dict:
    return {
        "provider": provider,
        "repo": repo,
        "run_id": run_id,
        "attempt": attempt,
        "job_id": job_id,
        "name": "test",
        "stage": "test",
        "status": status,
        "started_at": finished - dt.timedelta(minutes=4),
        "finished_at": finished,
        "duration_s": 240.0,
        "queue_s": 3.0,
        "url": f"https://ci.example.test/jobs/{job_id}",
    }


def seed(store: ResultsStore, archive_dir: Path | None = None) -> dict[str, Any]:
    """Write the rows; returns their ids (``ids``) and what the tests compare with."""
    ids: dict[str, Any] = {}
    with store.begin() as conn:
        # -- ci_failure_triage
        e1 = _insert(
            conn,
            schema.failure_events,
            {
                "provider": "gitlab",
                "project_id": "101",
                "project_path": "acme/api",
                "pipeline_id": "5001",
                "ref": "main",
                "sha": "abc",
                "status": "failed",
                "source": "webhook",
                "pipeline_url": "https://gitlab.example.test/acme/api/-/pipelines/5001",
                "state": "notified",
                "payload": {
                    "claimed_by": "manual__run1",
                    "sources": ["webhook"],
                    "pipeline_at": "2026-11-20T09:55:00Z",
                },
                "received_at": at(20, 10),
                "updated_at": at(20, 10, 5),
            },
        )
        e2 = _insert(
            conn,
            schema.failure_events,
            {
                "provider": "gitlab",
                "project_id": "102",
                "project_path": "group/web",
                "pipeline_id": "6001",
                "ref": "main",
                "status": "failed",
                "source": "email",
                "state": "analysed",
                "payload": {"claimed_by": "asset_triggered__run2", "sources": ["email"]},
                "received_at": at(20, 11),
            },
        )
        analysis = {
            "stage": "test",
            "analyser": "heuristic",
            "is_transient": False,
            "confidence": 0.8,
        }
        a1 = _insert(
            conn,
            schema.failure_analyses,
            {
                **analysis,
                "event_id": e1,
                "job_id": "9001",
                "job_name": "pytest",
                "job_url": "https://gitlab.example.test/acme/api/-/jobs/9001",
                "category": "test_failure",
                "root_cause": "test_total asserts 1 == 2",
                "fix_steps": ["Fix test_total", "Run pytest -k total"],
                "evidence_lines": [{"line": 11, "text": "E   assert 1 == 2"}],
                "excerpt": "tests/test_total.py F\nE   assert 1 == 2\nTOKEN=[REDACTED]",
                "excerpt_lines": ["10-12"],
                "fingerprint": "aaaa1111",
                "created_at": at(20, 10, 1),
            },
        )
        a2 = _insert(
            conn,
            schema.failure_analyses,
            {
                **analysis,
                "event_id": e1,
                "job_id": "9002",
                "job_name": "deps",
                "category": "dependency",
                "root_cause": "package foo 9.9 not found",
                "fix_steps": ["Pin foo"],
                "evidence_lines": [],
                "fingerprint": "bbbb2222",
                "created_at": at(20, 10, 2),
            },
        )
        a3 = _insert(
            conn,
            schema.failure_analyses,
            {
                **analysis,
                "event_id": e2,
                "job_id": "9101",
                "job_name": "pytest",
                "category": "test_failure",
                "root_cause": "flaky network test",
                "is_transient": True,
                "fingerprint": "cccc3333",
                "created_at": at(20, 11, 1),
            },
        )
        ids.update(events=[e1, e2], analyses=[a1, a2, a3])
        conn.execute(
            sa.insert(schema.failure_fingerprints),
            [
                {
                    "fingerprint": "aaaa1111",
                    "project_path": "acme/api",
                    "job_name": "pytest",
                    "first_error": "E   assert 1 == 2",
                    "occurrences": 3,
                    "first_seen": at(18),
                    "last_seen": at(20, 10),
                },
                {
                    "fingerprint": "cccc3333",
                    "project_path": "group/web",
                    "job_name": "pytest",
                    "first_error": "ConnectionResetError",
                    "occurrences": 1,
                    "first_seen": at(20, 11),
                    "last_seen": at(20, 11),
                },
                {
                    "fingerprint": "dddd4444",
                    "project_path": "group/web",
                    "job_name": "build",
                    "first_error": "out of memory",
                    "occurrences": 5,
                    "first_seen": at(1),
                    "last_seen": at(19),
                },
            ],
        )
        # -- ci_pipeline_analytics: github acme/api (r1..r6) and gitlab group/web (g7)
        gh, repo = "github", "acme/api"
        runs = [
            _run(gh, repo, "6", 1, "success", at(10), duration_s=80.0),
            _run(gh, repo, "1", 1, "success", at(14), duration_s=100.0),
            _run(gh, repo, "2", 1, "failure", at(15), duration_s=200.0),
            _run(gh, repo, "3", 1, "failure", at(16), duration_s=120.0, sha="sha3"),
            _run(gh, repo, "3", 2, "success", at(16, 11), duration_s=150.0, sha="sha3"),
            _run(gh, repo, "4", 1, "failure", at(17), duration_s=50.0, branch="feature"),
            _run(gh, repo, "5", 1, "running", None, created_at=at(19, 9)),
            _run("gitlab", "group/web", "7", 1, "failure", at(18), duration_s=60.0),
        ]
        run_ids = {(r["run_id"], r["attempt"]): _insert(conn, schema.ci_runs, r) for r in runs}
        ids["runs"] = run_ids
        conn.execute(
            sa.insert(schema.ci_jobs),
            [
                _job(gh, repo, "1", 1, "11", "success", at(14)),
                _job(gh, repo, "2", 1, "21", "failure", at(15)),
                _job(gh, repo, "3", 1, "31", "failure", at(16)),
                _job(gh, repo, "3", 2, "32", "success", at(16, 11)),
                _job(gh, repo, "4", 1, "41", "failure", at(17)),
                _job("gitlab", "group/web", "7", 1, "71", "failure", at(18)),
            ],
        )
        # -- daily_project_metrics
        metrics = []
        for day, value in ((dt.date(2026, 11, 18), 3.0), (dt.date(2026, 11, 19), 5.0)):
            for project in ("web", "api"):
                metrics.append(
                    {
                        "day": day,
                        "source": "github",
                        "project": project,
                        "metric": "prs_merged",
                        "value_raw": str(value),
                        "value": value + (10 if project == "api" else 0),
                        "unit": "count",
                        "collected_at": T0,
                    }
                )
            metrics.append(
                {
                    "day": day,
                    "source": "sonarqube",
                    "project": "web",
                    "metric": "coverage",
                    "value_raw": "81.5",
                    "value": 81.5,
                    "unit": "percent",
                    "collected_at": T0,
                }
            )
        conn.execute(sa.insert(schema.project_metrics), metrics)
        conn.execute(
            sa.insert(schema.health_scores),
            [
                {
                    "day": dt.date(2026, 11, 12),
                    "project": "web",
                    "score": 70.0,
                    "grade": "C",
                    "components": {"ci": 60},
                    "created_at": T0,
                },
                {
                    "day": dt.date(2026, 11, 19),
                    "project": "web",
                    "score": 80.0,
                    "grade": "B",
                    "components": {"ci": 75},
                    "created_at": T0,
                },
                {
                    "day": dt.date(2026, 11, 12),
                    "project": "api",
                    "score": 65.0,
                    "grade": "C",
                    "components": {"ci": 70},
                    "created_at": T0,
                },
                {
                    "day": dt.date(2026, 11, 18),
                    "project": "api",
                    "score": 60.0,
                    "grade": "C",
                    "components": {"ci": 55},
                    "created_at": T0,
                },
                {
                    "day": dt.date(2026, 10, 1),
                    "project": "old",
                    "score": 50.0,
                    "grade": "D",
                    "components": {},
                    "created_at": T0,
                },
            ],
        )
        # -- alerts: two DAGs, with the messages ci_pipeline_analytics sent for its first one
        alerts = [
            {
                "source": "ci_pipeline_analytics",
                "rule_id": "main-success-rate",
                "scope_key": "github:acme/api:CI:main",
                "severity": "critical",
                "state": "firing",
                "started_at": at(19, 0),
                "last_evaluated_at": at(20, 0),
                "value": 0.5,
                "threshold": 0.8,
                "details": {"kind": "success_rate_below"},
            },
            {
                "source": "daily_project_metrics",
                "rule_id": "threshold:coverage",
                "scope_key": "web",
                "severity": "warning",
                "state": "resolved",
                "started_at": at(17, 0),
                "resolved_at": at(19, 0),
                "last_evaluated_at": at(19, 0),
                "value": 60.0,
                "threshold": 70.0,
                "details": {},
            },
            {
                "source": "ci_pipeline_analytics",
                "rule_id": "queue-time",
                "scope_key": "github:acme/api",
                "severity": "warning",
                "state": "resolved",
                "started_at": at(10, 0),
                "resolved_at": at(12, 0),
                "last_evaluated_at": at(12, 0),
                "value": 900.0,
                "threshold": 600.0,
                "details": {},
            },
        ]
        ids["alerts"] = [_insert(conn, schema.alert_events, a) for a in alerts]
        first = AlertEvent(
            rule_id=alerts[0]["rule_id"],
            scope_key=alerts[0]["scope_key"],
            severity="critical",
            state="firing",
            started_at=alerts[0]["started_at"],
            last_evaluated_at=alerts[0]["last_evaluated_at"],
            source="ci_pipeline_analytics",
        )
        for message in [
            {
                "dedup_key": dedup_key(first, "start", "slack", prefix="ci-alert"),
                "channel": "slack",
                "target": "C0ALERTS",
                "status": "sent",
                "attempts": 1,
                "message_ref": "1700000000.1",
                "created_at": at(20, 0, 1),
                "sent_at": at(20, 0, 2),
            },
            {
                "dedup_key": dedup_key(first, "start", "telegram", prefix="ci-alert"),
                "channel": "telegram",
                "target": "-100",
                "status": "failed",
                "attempts": 2,
                "error": "chat not found",
                "created_at": at(20, 0, 1),
            },
            {  # another alert's message: not listed with the first one
                "dedup_key": "ci-alert:queue-time:0000:20261110T000000Z:start:slack",
                "channel": "slack",
                "status": "sent",
                "attempts": 1,
                "created_at": at(10),
            },
        ]:
            _insert(conn, schema.notifications, message)
        # -- reports: a weekly one archived as files, a monthly one only in its row, a team's weekly one
        folder = None
        if archive_dir is not None:
            week = archive_dir / "2026-W46"
            week.mkdir(parents=True, exist_ok=True)
            (week / "report.html").write_text('<html><body><h1>Week 46</h1><img src="runs.png"></body></html>')
            (week / "report.md").write_text("# Week 46\n\nRuns: 4\n")
            (week / "runs.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
            folder = f"file://{week}"
        reports = [
            {
                "kind": "weekly",
                "period_start": dt.date(2026, 11, 9),
                "period_end": dt.date(2026, 11, 16),
                "markdown": "# Week 46 (row)\n",
                "html": '<h1>Week 46 (row)</h1><img src="cid:runs.png">',
                "summary": {"title": "Weekly engineering report 2026-W46", "has_data": True, "headlines": []},
                "archive_path": folder,
                "created_at": at(16, 0),
            },
            {
                "kind": "monthly",
                "period_start": dt.date(2026, 10, 1),
                "period_end": dt.date(2026, 11, 1),
                "markdown": "# October\n",
                "html": '<h1>October</h1><img src="cid:runs.png">',
                "summary": {"title": "Monthly engineering report 2026-10", "has_data": False},
                "archive_path": None,
                "created_at": at(1, 0),
            },
            {
                "kind": "weekly:platform",
                "period_start": dt.date(2026, 11, 2),
                "period_end": dt.date(2026, 11, 9),
                "markdown": "# Platform\n",
                "html": "<h1>Platform</h1>",
                "summary": {"title": "Platform week 45", "has_data": True},
                "archive_path": None,
                "created_at": at(9, 0),
            },
        ]
        ids["reports"] = [_insert(conn, schema.reports, r) for r in reports]
        # -- ci_run_action's audit trail: on runs the CI rows above do not have (the figures stay as they are)
        action = {"dag_id": "ci_run_action", "dry_run": False, "created_at": at(20, 9)}
        actions = [
            {
                **action,
                "airflow_run_id": "manual__a1",
                "triggered_by": "alice",
                "requested_at": at(19, 9),
                "provider": "github",
                "repo": "acme/api",
                "run_id": "90",
                "action": "rerun_failed",
                "reason": "flaky network test",
                "state": "done",
                "plan": {"method": "POST", "path": "/repos/acme/api/actions/runs/90/rerun-failed-jobs"},
                "api_calls": [{"method": "POST", "status": 201, "answer": {"token": "[REDACTED:github_pat]"}}],
                "attempt_before": 1,
                "result_attempt": 2,
                "outcome": "success",
                "url": "https://ci.example.test/acme/api/runs/90/2",
                "sent_at": at(19, 9, 1),
                "finished_at": at(19, 9, 20),
            },
            {
                **action,
                "airflow_run_id": "manual__a2",
                "triggered_by": "bob",
                "requested_at": at(19, 10),
                "provider": "gitlab",
                "repo": "group/web",
                "run_id": "91",
                "action": "cancel",
                "state": "refused",
                "outcome": "refused",
                "outcome_detail": "pipeline 91 has already finished (success): nothing to cancel",
            },
            {
                **action,
                "airflow_run_id": "manual__a3",
                "triggered_by": "alice",
                "requested_at": at(20, 8),
                "provider": "gitlab",
                "repo": "group/web",
                "run_id": "92",
                "job_id": "920",
                "action": "redeploy",
                "environment": "production",
                "target": "d0c5",
                "target_sha": "d0c5",
                "deployment_id": "55",
                "state": "done",
                "new_job_ids": [921],
                "outcome": "success",
            },
        ]
        ids["actions"] = [_insert(conn, schema.ci_run_actions, a) for a in actions]
    analytics.store_daily(store, CI_DAYS, computed_at=T0)
    return {"ids": ids}
