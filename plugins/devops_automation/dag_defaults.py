"""What every devops-automation DAG shares (imported by the thin files in dags/)."""

from __future__ import annotations

import datetime as dt
import os

START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
OWNER = "devops-automation"


def default_args(retry_minutes: float = 1) -> dict[str, object]:
    """Owner and retries: every task is idempotent, so a failed try is retried with backoff."""
    return {
        "owner": OWNER,
        "retries": 2,
        "retry_delay": dt.timedelta(minutes=retry_minutes),
        "retry_exponential_backoff": 2.0,
    }


#: The time zone of the report periods (a week from Monday 00:00 to Monday 00:00 there). A setting read
#: from the environment when the DAG file is parsed (no I/O): DEVOPS_AUTOMATION_REPORT_TIMEZONE.
REPORT_TIMEZONE = os.environ.get("DEVOPS_AUTOMATION_REPORT_TIMEZONE", "UTC")
