"""A scheduled report waits, deferred, for the source DAGs' run of the period's last day; a manual run or
a backfill does not wait."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from devops_automation.workflows.weekly_report.operators import (
    SOURCE_DAGS,
    SOURCE_WAIT,
    ReportSourceSensor,
    last_source_day,
)

UTC = dt.UTC


@pytest.mark.parametrize(
    ("end", "expected"),
    [
        (dt.datetime(2026, 11, 30, tzinfo=UTC), dt.datetime(2026, 11, 29, tzinfo=UTC)),  # week, UTC: Sunday's run
        # a Berlin week ends Sunday 23:00 UTC: still Sunday's UTC run
        (dt.datetime(2026, 11, 30, tzinfo=ZoneInfo("Europe/Berlin")), dt.datetime(2026, 11, 29, tzinfo=UTC)),
        # a New York week ends Monday 05:00 UTC: Monday's UTC run holds its last hours
        (dt.datetime(2026, 11, 30, tzinfo=ZoneInfo("America/New_York")), dt.datetime(2026, 11, 30, tzinfo=UTC)),
        (dt.datetime(2026, 12, 1, tzinfo=UTC), dt.datetime(2026, 11, 30, tzinfo=UTC)),  # a month: its last day
    ],
)
def test_last_source_day(end: dt.datetime, expected: dt.datetime) -> None:
    assert last_source_day(None, data_interval_end=end) == expected


def _context(run_type: str) -> dict:
    start, end = dt.datetime(2026, 11, 23, tzinfo=UTC), dt.datetime(2026, 11, 30, tzinfo=UTC)
    return {
        "dag_run": SimpleNamespace(run_type=run_type),
        "logical_date": start,
        "data_interval_start": start,
        "data_interval_end": end,
    }


@pytest.mark.parametrize("run_type", ["manual", "backfill", "asset_triggered"])
def test_unscheduled_runs_do_not_wait(run_type: str) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    sensor = ReportSourceSensor(task_id="wait", source_dag_id="ci_pipeline_analytics")
    with pytest.raises(AirflowSkipException, match=run_type):
        sensor.execute(_context(run_type))


def test_a_scheduled_run_defers_on_the_last_days_source_run() -> None:
    from airflow.sdk.exceptions import TaskDeferred

    sensor = ReportSourceSensor(task_id="wait", source_dag_id="daily_project_metrics")
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(_context("scheduled"))
    trigger = deferred.value.trigger
    assert trigger.external_dag_id == "daily_project_metrics"
    assert trigger.logical_dates == [dt.datetime(2026, 11, 29, tzinfo=UTC)]
    assert set(trigger.allowed_states) == {"success", "failed"}  # a failed collection does not hold the report
    assert deferred.value.timeout == SOURCE_WAIT
    assert sensor.soft_fail  # not finished in time: skipped, and the report is built anyway


def test_the_report_dags_wait_before_they_build() -> None:
    import importlib

    for name in ("dags.weekly_report", "dags.monthly_report"):
        dag = importlib.import_module(name).dag
        build = dag.get_task("build")
        assert build.trigger_rule == "none_failed"  # skipped waits still build
        assert {f"wait_for_{d}" for d in SOURCE_DAGS} == set(build.upstream_task_ids)
