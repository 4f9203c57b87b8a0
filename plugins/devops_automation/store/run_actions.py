"""The audit trail of ``ci_run_action`` (table ``ci_run_actions``) and the tag of the re-runs made there.

No Airflow here (SQLAlchemy Core through :class:`~devops_automation.store.ResultsStore`): the DAG writes
through :func:`begin`, :func:`update` and :func:`add_call`; the analytics (``ci_analytics``) and any read
API read through :func:`recent` and :func:`rerun_tags`.

One row per Airflow run (``dag_id``, ``airflow_run_id``), so a retried task finds what its earlier try
recorded. ``state`` moves ``sending`` (the write is about to go out: written *before* it is sent) →
``sent`` (GitHub/GitLab accepted it; what it started is recorded) → ``done`` or ``failed``; or it is
``refused`` (a guard said no, nothing was sent) or ``dry_run`` (nothing was sent). A row left in
``sending`` means the try died while the write was in flight: the next try asks GitHub/GitLab whether it
took effect before sending anything (:mod:`devops_automation.workflows.ci_run_action.plan`).

The tag: a re-run made here is the row's ``result_attempt`` on GitHub (the ``ci_runs.attempt`` it
started, of ``provider``/``repo``/``run_id``) and its ``new_job_ids`` / ``retried_job_ids`` on GitLab
(``ci_jobs.job_id``: a GitLab re-run is retried jobs inside the same pipeline).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from devops_automation.store import ResultsStore, schema

#: states after which nothing more happens to a row
FINAL_STATES = frozenset({"refused", "dry_run", "done", "failed"})
#: states in which the write went out (a retried try must not send it again)
SENT_STATES = frozenset({"sent", "done", "failed"})
#: the longest answer body kept per call (characters of its JSON text)
ANSWER_LIMIT = 4000

_COLUMNS = frozenset(c.name for c in schema.ci_run_actions.columns)


def _checked(values: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(values) - _COLUMNS)
    if unknown:
        raise KeyError(f"ci_run_actions has no column(s) {', '.join(unknown)}")
    return dict(values)


def get(store: ResultsStore, dag_id: str, airflow_run_id: str) -> dict[str, Any] | None:
    """The row of one Airflow run, or None."""
    t = schema.ci_run_actions
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t).where(t.c.dag_id == dag_id, t.c.airflow_run_id == airflow_run_id)).first()
    return dict(row._mapping) if row is not None else None


def begin(store: ResultsStore, row: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """Insert the row of an Airflow run unless it exists: ``(the stored row, inserted now)``. The row
    needs ``dag_id``, ``airflow_run_id``, ``requested_at``, ``provider``, ``repo``, ``action``, ``state``
    and ``created_at``."""
    values = _checked(row)
    inserted = store.insert_missing(schema.ci_run_actions, [values], keys=["dag_id", "airflow_run_id"])
    stored = get(store, values["dag_id"], values["airflow_run_id"])
    assert stored is not None
    return stored, bool(inserted)


def update(store: ResultsStore, dag_id: str, airflow_run_id: str, **values: Any) -> dict[str, Any]:
    """Set columns of an Airflow run's row; returns the row as stored."""
    t = schema.ci_run_actions
    with store.begin() as conn:
        done = conn.execute(
            sa.update(t).where(t.c.dag_id == dag_id, t.c.airflow_run_id == airflow_run_id).values(**_checked(values))
        )
        if done.rowcount == 0:
            raise LookupError(f"no ci_run_actions row for {dag_id} {airflow_run_id}")
    stored = get(store, dag_id, airflow_run_id)
    assert stored is not None
    return stored


def add_call(store: ResultsStore, dag_id: str, airflow_run_id: str, call: Mapping[str, Any], **values: Any) -> dict:
    """Append one write (``method``, ``path``, ``status``, ``at``, ``answer``...) to ``api_calls`` and set
    ``values`` in the same transaction; returns the row. ``answer`` longer than :data:`ANSWER_LIMIT`
    characters of JSON is cut (kept as text)."""
    import json

    t = schema.ci_run_actions
    entry = dict(call)
    if "answer" in entry:
        text = json.dumps(entry["answer"], default=str)
        if len(text) > ANSWER_LIMIT:
            entry["answer"] = text[:ANSWER_LIMIT] + " …"
    where = (t.c.dag_id == dag_id, t.c.airflow_run_id == airflow_run_id)
    with store.begin() as conn:
        calls = conn.execute(sa.select(t.c.api_calls).where(*where)).scalar_one()
        conn.execute(sa.update(t).where(*where).values(api_calls=[*(calls or []), entry], **_checked(values)))
    stored = get(store, dag_id, airflow_run_id)
    assert stored is not None
    return stored


def recent(
    store: ResultsStore,
    *,
    provider: str | None = None,
    repo: str | None = None,
    run_id: str | int | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The newest actions first (by ``requested_at``, then id), filtered; what a read API shows."""
    t = schema.ci_run_actions
    q = sa.select(t).order_by(t.c.requested_at.desc(), t.c.id.desc()).limit(max(1, int(limit)))
    if provider is not None:
        q = q.where(t.c.provider == provider)
    if repo is not None:
        q = q.where(t.c.repo == repo)
    if run_id is not None:
        q = q.where(t.c.run_id == str(run_id))
    if since is not None:
        q = q.where(t.c.requested_at >= since)
    if until is not None:
        q = q.where(t.c.requested_at < until)
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def rerun_tags(
    store: ResultsStore | sa.Connection, *, runs: Iterable[tuple[str, str, str]] | None = None
) -> dict[str, Any]:
    """The re-runs made through ``ci_run_action`` (rows in a sent state, dry runs and refusals never):

    ``{"attempts": {(provider, repo, run_id, attempt), ...}, "jobs": {(provider, repo, run_id, job_id), ...}}``
    where ``attempts`` are GitHub attempts started here and ``jobs`` GitLab jobs retried or created here.
    ``runs``: only those ``(provider, repo, run_id)`` (else every one)."""
    t = schema.ci_run_actions
    q = sa.select(t.c.provider, t.c.repo, t.c.run_id, t.c.result_attempt, t.c.new_job_ids, t.c.retried_job_ids).where(
        t.c.state.in_(sorted(SENT_STATES)), t.c.action != "cancel", t.c.run_id.is_not(None)
    )
    wanted = set(runs) if runs is not None else None

    def read(conn: sa.Connection) -> list[Any]:
        return list(conn.execute(q))

    if isinstance(store, sa.Connection):
        found = read(store)
    else:
        with store.engine.connect() as conn:
            found = read(conn)
    attempts: set[tuple[str, str, str, int]] = set()
    jobs: set[tuple[str, str, str, str]] = set()
    for provider, repo, run_id, attempt, new_jobs, retried in found:
        if wanted is not None and (provider, repo, run_id) not in wanted:
            continue
        if attempt is not None:
            attempts.add((provider, repo, run_id, int(attempt)))
        for job in [*(new_jobs or []), *(retried or [])]:
            jobs.add((provider, repo, run_id, str(job)))
    return {"attempts": attempts, "jobs": jobs}
