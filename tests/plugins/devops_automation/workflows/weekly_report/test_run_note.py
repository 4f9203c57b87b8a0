"""The run note of ``weekly_report`` / ``monthly_report`` (``ReportSummaryOperator``): the period, the
sections, what each channel did and the archive; written through ``set_run_note``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from devops_automation.workflows.weekly_report.operators import ReportSummaryOperator

BUILT = {
    "kind": "weekly",
    "label": "2026-W47",
    "folder": "file:///srv/reports/2026-W47",
    "summary": {"sections": ["ci", "durations", "mttr", "dora"]},
}


@pytest.fixture
def notes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    written: list[str] = []

    def fake(context: Any, note: str, conn_id: str = "airflow_api") -> bool:
        written.append(note)
        return True

    monkeypatch.setattr("devops_automation.hooks.airflow_api.set_run_note", fake)
    return written


def test_note_names_the_period_and_what_each_channel_sent(notes: list[str]) -> None:
    delivered = [{"sent": 3}, {"skipped": "no connection telegram_default"}, {"sent": 1}]
    out = ReportSummaryOperator(task_id="summary", built=BUILT, delivered=delivered).execute({})
    expected = (
        "weekly 2026-W47: 4 sections; slack 3 sent, telegram skipped (no connection telegram_default), "
        "email 1 sent; archive file:///srv/reports/2026-W47"
    )
    assert notes == [expected]
    assert out == {"note": expected}


def test_a_failed_channel_is_in_the_note_and_fails_the_run(notes: list[str]) -> None:
    monthly = {**BUILT, "kind": "monthly", "label": "2026-11", "folder": "file:///srv/reports/2026-11"}
    op = ReportSummaryOperator(task_id="summary", built=monthly, delivered=[{"sent": 0}, None, {"sent": 1}])
    with pytest.raises(RuntimeError, match="delivery failed on telegram"):
        op.execute({})
    assert notes == [
        "monthly 2026-11: 4 sections; slack 0 sent, telegram FAILED, email 1 sent; archive file:///srv/reports/2026-11"
    ]


def test_a_report_that_was_not_built_says_so_in_the_note(notes: list[str]) -> None:
    context = {
        "data_interval_start": dt.datetime(2026, 11, 23, tzinfo=dt.UTC),
        "data_interval_end": dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
    }
    with pytest.raises(RuntimeError, match="not built"):
        ReportSummaryOperator(task_id="summary", built=None, delivered=None).execute(context)
    assert notes == ["report 2026-11-23 .. 2026-11-30: not built (see the build task's log)"]
