"""CI rows of daily_project_metrics from a window summary grouped by repository (plain Python)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from devops_automation.workflows.daily_project_metrics.ci_metrics import ci_rows, ci_sources

DAY = dt.date(2026, 12, 3)


@dataclasses.dataclass
class P:
    name: str
    github: str | None = None
    gitlab: str | int | None = None


def test_a_project_reads_its_github_repository_else_its_gitlab_project() -> None:
    got = ci_sources([P("api", github="acme/api", gitlab="grp/api"), P("pay", gitlab=2001), P("docs")])
    assert got == {"api": ("github", "acme/api"), "pay": ("gitlab", "2001")}


def test_rows_for_repositories_with_runs_and_dora_only_where_deployments_counted() -> None:
    summary = {
        "groups": [
            {
                "key": {"provider": "github", "repo": "acme/api"},
                "current": {
                    "runs": 41, "success_rate": 0.78, "first_attempt_success_rate": 0.7, "mttr_s": None,
                    "flaky_jobs": [{"job": "e2e"}, {"job": "lint"}],
                    "dora": {"deployments": 3, "failed_deployments": 1, "deployments_per_day": 3 / 7,
                             "lead_time_p50_s": 7200.0, "change_failure_rate": 1 / 3, "recovery_time_p50_s": None},
                },
            },
            {"key": {"provider": "gitlab", "repo": "2001"}, "current": {"runs": 0, "dora": None}},
        ]
    }  # fmt: skip
    rows = ci_rows(summary, {"api": ("github", "acme/api"), "pay": ("gitlab", "2001")}, DAY)
    got = {r["metric"]: (r["value_raw"], r["value"], r["unit"]) for r in rows}
    assert {r["project"] for r in rows} == {"api"}  # no runs: no CI rows ("no data")
    assert got == {
        "success_rate": ("0.78", 0.78, "ratio"),
        "first_attempt_success_rate": ("0.7", 0.7, "ratio"),
        "runs": ("41", 41, "count"),
        "mttr_s": ("no data", None, "s"),
        "flaky_jobs": ("2", 2.0, "count"),
        "deployments_per_day": (f"{3 / 7:g}", 3 / 7, "1/d"),
        "lead_time_p50_s": ("7200", 7200.0, "s"),
        "change_failure_rate": (f"{1 / 3:g}", 1 / 3, "ratio"),
        "recovery_time_p50_s": ("no data", None, "s"),
    }
    assert all(r["day"] == DAY and r["source"] == "ci" for r in rows)
