"""What every devops-automation DAG shares (imported by the thin files in dags/)."""

from __future__ import annotations

import datetime as dt

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
