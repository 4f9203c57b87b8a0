"""``daily_project_metrics``' reads and writes in the results store (SQLAlchemy Core, no Airflow).

* ``project_metrics``: one row per day x source x project x metric, upserted on that key with
  ``only_changed`` (``collected_at`` not compared): collecting the same day again writes nothing.
* ``health_scores``: one row per day x project; a day whose inputs are all missing has no row (the
  score is "no data", never 0).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from devops_automation.store import ResultsStore, schema

METRIC_KEYS = ("day", "source", "project", "metric")


def _changed(store: ResultsStore, table: sa.Table, rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> int:
    """How many of ``rows`` are new or differ from the stored row with the same ``keys`` (time columns
    ``collected_at``/``created_at`` not compared): what an ``only_changed`` upsert rewrites. One query
    per day and batch of projects, compared here."""
    if not rows:
        return 0
    compared = [c for c in rows[0] if c not in keys and c not in ("collected_at", "created_at", "id")]
    wanted: dict[Any, set[str]] = {}
    for row in rows:
        wanted.setdefault(row["day"], set()).add(row["project"])
    stored: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    with store.engine.connect() as conn:
        for day, projects in wanted.items():
            names = sorted(projects)
            for offset in range(0, len(names), 500):
                q = sa.select(*(table.c[k] for k in keys), *(table.c[c] for c in compared)).where(
                    table.c.day == day, table.c.project.in_(names[offset : offset + 500])
                )
                for found in conn.execute(q):
                    stored[tuple(found[: len(keys)])] = tuple(found[len(keys) :])
    changed = 0
    for row in rows:
        before = stored.get(tuple(row[k] for k in keys))
        if before is None or any(_differs(before[i], row[c]) for i, c in enumerate(compared)):
            changed += 1
    return changed


def _differs(stored: Any, given: Any) -> bool:
    if isinstance(stored, float) and isinstance(given, int | float):
        return abs(stored - float(given)) > 1e-9 * max(1.0, abs(stored))
    return stored != given


def write_metrics(store: ResultsStore, rows: Iterable[Mapping[str, Any]], collected_at: dt.datetime) -> int:
    """Upsert ``project_metrics`` rows (``metric_rows.metric_row`` dicts, days as dates); returns how
    many rows were new or changed (0 when the same figures are written again)."""
    full = [{**row, "collected_at": collected_at} for row in rows]
    for row in full:
        if isinstance(row["day"], str):
            row["day"] = dt.date.fromisoformat(row["day"])
    t = schema.project_metrics
    changed = _changed(store, t, full, METRIC_KEYS)
    store.upsert(t, full, keys=list(METRIC_KEYS), only_changed=True, ignore=["collected_at"])
    return changed


def day_rows(store: ResultsStore, day: dt.date, projects: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The ``project_metrics`` rows of one day (of ``projects``), ordered by project, source, metric."""
    t = schema.project_metrics
    q = sa.select(t).where(t.c.day == day)
    if projects is not None:
        q = q.where(t.c.project.in_(list(projects)))
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q.order_by(t.c.project, t.c.source, t.c.metric))]


def write_health(store: ResultsStore, rows: Sequence[Mapping[str, Any]], created_at: dt.datetime) -> int:
    """Upsert ``health_scores`` rows ``{day, project, score, grade, components}``; returns how many were
    new or changed."""
    full = [{**row, "created_at": created_at} for row in rows]
    t = schema.health_scores
    changed = _changed(store, t, full, ("day", "project"))
    store.upsert(t, full, keys=["day", "project"], only_changed=True, ignore=["created_at"])
    return changed


def health_history(store: ResultsStore, project: str, *, since: dt.date, until: dt.date) -> list[dict[str, Any]]:
    """A project's stored scores in ``[since, until)``, oldest first."""
    t = schema.health_scores
    q = sa.select(t).where(t.c.project == project, t.c.day >= since, t.c.day < until).order_by(t.c.day)
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]
