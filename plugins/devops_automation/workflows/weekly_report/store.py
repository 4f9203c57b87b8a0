"""The ``reports`` row of a report period (pure: SQLAlchemy Core, no Airflow).

One row per ``kind`` and ``period_start`` (the table's unique key): ``kind`` is ``weekly`` / ``monthly``,
or a scoped kind such as ``weekly:platform`` for a team's report (at most 32 characters). A rebuilt
period that equals what is stored writes nothing; a changed one is updated in place (``created_at``
kept, ``updated_at`` = ``at``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from devops_automation.store import ResultsStore, schema

KIND_MAX = 32
_COMPARED = ("period_end", "markdown", "html", "summary", "archive_path")


def _day(value: dt.date, name: str) -> dt.date:
    """A date; a datetime gives its own (local) date, the day the period starts/ends where it is reported."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    raise TypeError(f"{name} must be a date or datetime, got {value!r}")


def record_report(
    store: ResultsStore,
    *,
    kind: str,
    period_start: dt.date,
    period_end: dt.date,
    markdown: str | None,
    html: str | None,
    summary: Mapping[str, Any] | None,
    archive_path: str | None,
    at: dt.datetime,
) -> bool:
    """Insert or update the ``reports`` row of ``kind`` and ``period_start``; returns whether it changed
    (False: the row was there with the same period end, Markdown, HTML, summary and archive path).

    ``at`` (aware) is ``created_at`` of a new row and ``updated_at`` of a new or changed one.
    """
    if not kind or len(kind) > KIND_MAX:
        raise ValueError(f"report kind must be 1 to {KIND_MAX} characters, got {kind!r}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"at must be an aware datetime, got {at!r}")
    start, end = _day(period_start, "period_start"), _day(period_end, "period_end")
    if end < start:
        raise ValueError(f"period_end {end} is before period_start {start}")
    values: dict[str, Any] = {
        "period_end": end,
        "markdown": markdown,
        "html": html,
        # as stored (JSON: tuples become lists...), so an unchanged summary compares equal
        "summary": json.loads(json.dumps(dict(summary))) if summary is not None else None,
        "archive_path": archive_path,
    }
    t = schema.reports
    with store.begin() as conn:
        row = conn.execute(
            sa.select(*(t.c[c] for c in _COMPARED)).where(t.c.kind == kind, t.c.period_start == start)
        ).first()
        if row is not None and dict(row._mapping) == values:
            return False
        store.upsert(
            t,
            [{"kind": kind, "period_start": start, **values, "created_at": at, "updated_at": at}],
            keys=("kind", "period_start"),
            update=(*_COMPARED, "updated_at"),
            only_changed=True,
            ignore=("updated_at",),
            conn=conn,
        )
    return True
