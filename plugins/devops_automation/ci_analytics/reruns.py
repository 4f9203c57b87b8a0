"""Re-runs of a window split by who asked: through ``ci_run_action`` (its audit table tags them) or otherwise.

Plain Python over the results store (no Airflow; SQLAlchemy Core, queries of its own, so it does not
depend on how :mod:`.analytics` loads rows). The same re-runs as the figures' ``rerun_attempts`` /
``rerun_minutes`` (:mod:`.figures`: every completed non-final attempt of the window's runs, and for GitLab,
whose pipelines have one attempt, every retried job), each one *requested* when ``ci_run_action`` started
what replaced it:

* GitHub: attempt *n* is re-run cost; it was requested here when attempt *n + 1* is a
  ``ci_run_actions.result_attempt`` of that run;
* GitLab: a retried job is re-run cost; requested here when its id is one the action retried
  (``retried_job_ids``) or created (``new_job_ids``, a job it created and retried again later).

So the flaky and re-run figures can be read with and without the re-runs made on purpose (say, to check
whether a failure was flaky). Dry runs, refusals and cancels tag nothing.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from devops_automation.store import run_actions, schema

if TYPE_CHECKING:
    from devops_automation.store import ResultsStore

BATCH = 500
Key = tuple[str, str, str]


def _add(acc: dict[str, Any], seconds: float | None) -> None:
    acc["attempts"] += 1
    acc["minutes"] += (seconds or 0.0) / 60.0


def _completed(t: Any) -> Any:
    return sa.and_(t.c.finished_at.is_not(None), t.c.status.is_not(None), t.c.status != "running")


def _window_runs(
    conn: sa.Connection, start: dt.datetime, end: dt.datetime, provider: str | None, repos: list[str] | None
) -> dict[Key, list[tuple[int, float | None]]]:
    """The window's runs (final completed attempt finished in ``[start, end)``) with their completed
    attempts ``(attempt, duration_s)`` in attempt order: the figures' window rule."""
    r = schema.ci_runs
    where = [_completed(r), r.c.finished_at >= start, r.c.finished_at < end]
    if provider is not None:
        where.append(r.c.provider == provider)
    if repos is not None:
        where.append(r.c.repo.in_(repos))
    touched = sorted(set(conn.execute(sa.select(r.c.provider, r.c.repo, r.c.run_id).where(*where)).all()))
    runs: dict[Key, list[tuple[int, float | None, dt.datetime]]] = {}
    for offset in range(0, len(touched), BATCH):
        keys = [tuple(k) for k in touched[offset : offset + BATCH]]
        q = sa.select(r.c.provider, r.c.repo, r.c.run_id, r.c.attempt, r.c.duration_s, r.c.finished_at).where(
            _completed(r), sa.tuple_(r.c.provider, r.c.repo, r.c.run_id).in_(keys)
        )
        for p, repo, run_id, attempt, seconds, finished in conn.execute(q):
            runs.setdefault((p, repo, run_id), []).append((int(attempt or 1), seconds, finished))
    out: dict[Key, list[tuple[int, float | None]]] = {}
    for key, attempts in runs.items():
        attempts.sort(key=lambda a: a[0])
        finished = attempts[-1][2]
        finished = finished if finished.tzinfo else finished.replace(tzinfo=dt.UTC)
        if start <= finished < end:  # a later attempt finished after the window: the run is a later window's
            out[key] = [(a, seconds) for a, seconds, _ in attempts]
    return out


def rerun_origins(
    store: ResultsStore,
    *,
    start: dt.datetime,
    end: dt.datetime,
    provider: str | None = None,
    repos: str | Iterable[str] | None = None,
) -> dict[str, Any]:
    """The window's re-runs: ``{"rerun_attempts", "rerun_minutes", "requested": {"attempts", "minutes",
    "runs"}, "other": {"attempts", "minutes"}}``; ``requested.runs`` lists each run with re-runs asked for
    through ``ci_run_action`` (``provider``, ``repo``, ``run_id``, the GitHub ``attempts`` it started or the
    GitLab ``jobs`` it retried). ``rerun_*`` are the figures' ``rerun_attempts`` / ``rerun_minutes``."""
    repo_list = [repos] if isinstance(repos, str) else (list(repos) if repos is not None else None)
    requested = {"attempts": 0, "minutes": 0.0}
    other = {"attempts": 0, "minutes": 0.0}
    asked: dict[Key, dict[str, Any]] = {}
    j = schema.ci_jobs
    with store.engine.connect() as conn:
        window = _window_runs(conn, start, end, provider, repo_list)
        tags = run_actions.rerun_tags(conn, runs=window)
        for key, attempts in window.items():
            for (_, seconds), (number, _) in itertools.pairwise(attempts):
                if (*key, number) in tags["attempts"]:
                    _add(requested, seconds)
                    asked.setdefault(key, {"attempts": [], "jobs": []})["attempts"].append(number)
                else:
                    _add(other, seconds)
        gitlab = sorted(k for k in window if k[0] == "gitlab")
        for offset in range(0, len(gitlab), BATCH):
            q = sa.select(j.c.provider, j.c.repo, j.c.run_id, j.c.job_id, j.c.duration_s).where(
                j.c.retried.is_(True),
                j.c.status.is_not(None),
                j.c.status != "running",
                sa.tuple_(j.c.provider, j.c.repo, j.c.run_id).in_(gitlab[offset : offset + BATCH]),
            )
            for job_provider, repo, run_id, job_id, seconds in conn.execute(q):
                key = (job_provider, repo, run_id)
                if (*key, str(job_id)) in tags["jobs"]:
                    _add(requested, seconds)
                    asked.setdefault(key, {"attempts": [], "jobs": []})["jobs"].append(str(job_id))
                else:
                    _add(other, seconds)
    runs = [
        {"provider": p, "repo": r, "run_id": i, "attempts": sorted(v["attempts"]), "jobs": sorted(v["jobs"])}
        for (p, r, i), v in sorted(asked.items())
    ]
    return {
        "rerun_attempts": requested["attempts"] + other["attempts"],
        "rerun_minutes": requested["minutes"] + other["minutes"],
        "requested": {**requested, "runs": runs},
        "other": other,
    }
