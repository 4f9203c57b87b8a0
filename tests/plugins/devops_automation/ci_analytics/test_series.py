"""The figures of consecutive windows from one read (:mod:`.series`, SQLite and PostgreSQL): window for
window what :func:`.figures.compute_windows` gives over every row of seeded histories (re-runs, runs moved
on by a later attempt, GitLab retried jobs, shared finish times, categories, deployments), the
per-workflow durations and job durations of the last windows, and the failure lists only there."""

from __future__ import annotations

from typing import Any

import pytest

from devops_automation.ci_analytics import analytics as an
from devops_automation.ci_analytics import figures as f
from devops_automation.ci_analytics import series
from devops_automation.store import ResultsStore
from tests.plugins.devops_automation.ci_analytics.test_analytics import (
    WEEK,
    T,
    random_history,
    seed,
    store_history,
)

#: eight weeks ending with the week from T: the random histories have runs from T - 34 d to T + 9 d (some
#: attempts after the last window: their runs are in none)
WINDOWS = [(T + (n - 7) * WEEK, T + (n - 6) * WEEK) for n in range(8)]
FAILURE_LISTS = ("failures_by_branch", "failures_by_workflow", "failures_by_actor", "failures_by_job")


def categories_of(history: dict[str, list[Any]]) -> dict[tuple[str, str], str]:
    repo_of = {j["job_id"]: j["repo"] for j in history["jobs"]}
    categories: dict[tuple[str, str], str] = {}
    for job_id, path, category, _ in sorted(history["analyses"], key=lambda a: a[3]):  # the latest wins
        if path is None or path == repo_of[job_id]:
            categories[("gitlab", job_id)] = category
    return categories


def reference(history: dict[str, list[Any]]) -> dict[str, Any]:
    """What the series must give, from every row: compute_windows over all runs and jobs."""
    history_start = WINDOWS[0][0] - an.DEFAULT_HISTORY
    index = f.RunIndex(history["runs"], history["jobs"])
    common: dict[str, Any] = {
        "categories": categories_of(history),
        "history_start": history_start,
        "history_end": WINDOWS[0][0],
    }
    deployments = [d for d in history["deployments"] if d["finished_at"] >= history_start]
    totals, _ = f.compute_windows(index, windows=WINDOWS, deployments=deployments, **common)
    _, groups = f.compute_windows(index, windows=WINDOWS[-2:], group_by=("provider", "repo", "workflow"), **common)
    # job durations: every job with a verdict and a duration of every attempt that completed in the window
    attempts = {
        (r["provider"], r["repo"], r["run_id"], r["attempt"]): r
        for r in history["runs"]
        if r["finished_at"] is not None and r["status"] != "running"
    }
    durations: list[dict[tuple[Any, ...], list[float]]] = [{}, {}]
    for job in history["jobs"]:
        attempt = attempts.get((job["provider"], job["repo"], job["run_id"], job["attempt"]))
        if attempt is None or job["status"] not in f.VERDICT or job["duration_s"] is None:
            continue
        for position, (start, end) in enumerate(WINDOWS[-2:]):
            if start <= attempt["finished_at"] < end:
                key = (job["provider"], job["repo"], attempt["workflow"], job["name"])
                durations[position].setdefault(key, []).append(float(job["duration_s"]))
    return {
        "totals": [figures.to_dict() for figures in totals],
        "workflows": {
            key: [{"runs": g.runs, "duration_p50_s": g.duration_p50_s, "duration_p90_s": g.duration_p90_s} for g in got]
            for key, got in groups.items()
            if any(g.runs for g in got)
        },
        "job_durations": [{k: sorted(v) for k, v in d.items()} for d in durations],
    }


@pytest.mark.parametrize("history_seed", [1, 2, 3])
def test_every_window_equals_compute_windows_over_every_row(results_store: ResultsStore, history_seed: int) -> None:
    history = random_history(history_seed)
    store_history(results_store, history)
    got = series.windows_figures(results_store, windows=WINDOWS)
    expected = reference(history)
    assert len(got.totals) == len(WINDOWS)
    for position, (figures, want) in enumerate(zip(got.totals, expected["totals"], strict=True)):
        data = figures.to_dict()
        if position < len(WINDOWS) - 2:  # the older windows: everything but the failure lists
            for name in (*FAILURE_LISTS, "failures_by_category"):
                assert data.pop(name) == [], (position, name)
                want.pop(name)
        assert data == want, position
    assert got.workflows == expected["workflows"]
    assert [{k: sorted(v) for k, v in d.items()} for d in got.job_durations] == expected["job_durations"]
    # it means something: runs in five windows, re-runs, flaky jobs, streaks, categories, DORA, job durations
    runs = [figures.runs for figures in got.totals]
    assert sum(1 for n in runs if n) >= 5 and min(runs[-4:]) > 20, runs
    current = got.totals[-1]
    assert current.rerun_attempts and current.failures_by_category and current.streaks_ended
    assert any(figures.flaky_jobs for figures in got.totals) and any(figures.dora for figures in got.totals)
    assert got.job_durations[0] and got.job_durations[1]


def test_the_last_windows_equal_window_summary(results_store: ResultsStore) -> None:
    history = random_history(4)
    store_history(results_store, history)
    got = series.windows_figures(results_store, windows=[(T - WEEK, T), (T, T + WEEK)], detail=2)
    summary = an.window_summary(results_store, start=T, end=T + WEEK)["total"]
    assert got.totals[1].to_dict() == summary["current"]
    assert got.totals[0].to_dict() == summary["previous"]


def test_windows_and_detail_are_checked(results_store: ResultsStore) -> None:
    with pytest.raises(ValueError, match="no window"):
        series.windows_figures(results_store, windows=[])
    with pytest.raises(ValueError, match="oldest first"):
        series.windows_figures(results_store, windows=[WINDOWS[1], WINDOWS[0]])
    with pytest.raises(ValueError, match="empty window"):
        series.windows_figures(results_store, windows=[(T, T)])
    with pytest.raises(ValueError, match="detail"):
        series.windows_figures(results_store, windows=WINDOWS[:2], detail=3)
    with pytest.raises(ValueError, match="timezone-aware"):
        series.windows_figures(results_store, windows=[(T.replace(tzinfo=None), T + WEEK)])


def test_an_empty_store_gives_empty_figures(results_store: ResultsStore) -> None:
    got = series.windows_figures(results_store, windows=WINDOWS)
    assert [figures.runs for figures in got.totals] == [0] * 8
    assert got.workflows == {} and got.job_durations == [{}, {}]
    assert all(figures.dora is None and figures.success_rate is None for figures in got.totals)


def test_a_failure_while_reading_stops_the_readers_and_returns_every_connection(
    results_store: ResultsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_history(results_store, random_history(1))

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(series, "_add_jobs", broken)
    with pytest.raises(RuntimeError, match="boom"):
        series.windows_figures(results_store, windows=WINDOWS)
    assert results_store.engine.pool.checkedout() == 0
    monkeypatch.undo()
    assert series.windows_figures(results_store, windows=WINDOWS).totals[-1].runs > 20  # and it works again


def test_fixed_store_by_hand(results_store: ResultsStore) -> None:
    """The fixed store of test_analytics: the week and the one before, as window_summary gives them."""
    seed(results_store)
    got = series.windows_figures(results_store, windows=[(T - WEEK, T), (T, T + WEEK)])
    summary = an.window_summary(results_store, start=T, end=T + WEEK)["total"]
    assert [figures.to_dict() for figures in got.totals] == [summary["previous"], summary["current"]]
    assert got.totals[1].runs == 6
