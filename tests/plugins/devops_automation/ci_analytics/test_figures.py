"""The CI figures (definitions §3, §4) against hand-computed expectations on small fixed histories."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from typing import Any

import pytest

from devops_automation.ci_analytics import figures as f

T0 = dt.datetime(2026, 11, 16, tzinfo=dt.UTC)  # the window is one day: [T0, T0 + 24 h)
START, END = T0, T0 + dt.timedelta(days=1)
H = 3600.0


def at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def run(
    run_id: str | int,
    status: str,
    finished_h: float | None,
    *,
    attempt: int = 1,
    provider: str = "github",
    repo: str = "acme/api",
    workflow: str | None = "CI",
    branch: str | None = "main",
    sha: str = "sha1",
    actor: str | None = "alice",
    duration: float | None = 60.0,
    queue: float | None = None,
    created_h: float | None = None,
    started_h: float | None = None,
    run_number: int | None = None,
    url: str | None = None,
) -> dict[str, Any]:
    finished = at(finished_h) if finished_h is not None else None
    return {
        "provider": provider,
        "repo": repo,
        "run_id": str(run_id),
        "attempt": attempt,
        "run_number": run_number,
        "workflow": workflow,
        "branch": branch,
        "sha": sha,
        "actor": actor,
        "status": status,
        "created_at": at(created_h) if created_h is not None else finished,
        "started_at": at(started_h) if started_h is not None else None,
        "finished_at": finished,
        "duration_s": duration,
        "queue_s": queue,
        "url": url,
    }


def job(
    run_id: str | int,
    name: str,
    status: str,
    *,
    job_id: str | int,
    attempt: int = 1,
    provider: str = "github",
    repo: str = "acme/api",
    queue: float | None = None,
    duration: float | None = None,
    retried: bool = False,
    allow_failure: bool = False,
) -> dict[str, Any]:
    return {
        "provider": provider,
        "repo": repo,
        "run_id": str(run_id),
        "attempt": attempt,
        "job_id": str(job_id),
        "name": name,
        "status": status,
        "queue_s": queue,
        "duration_s": duration,
        "retried": retried,
        "allow_failure": allow_failure,
    }


def deployment(
    deployment_id: str | int,
    status: str,
    hours: float,
    sha: str,
    *,
    environment: str = "production",
    provider: str = "github",
    repo: str = "acme/api",
) -> dict[str, Any]:
    return {
        "provider": provider,
        "repo": repo,
        "deployment_id": str(deployment_id),
        "environment": environment,
        "sha": sha,
        "status": status,
        "created_at": at(hours) - dt.timedelta(minutes=5),
        "finished_at": at(hours),
    }


# ---- percentiles and ratios ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([10, 20, 30, 40], 0.5, 25.0),  # even count: between the two middle values
        ([10, 20, 30, 40], 0.9, 37.0),  # position 2.7: 30 + 0.7 x 10
        ([40, 10, 30, 20], 0.9, 37.0),  # order of the input does not matter
        ([10, 20, 30, 40, 100], 0.5, 30.0),
        ([10, 20, 30, 40, 100], 0.9, 76.0),  # position 3.6: 40 + 0.6 x 60
        ([5, 5, 5, 10], 0.5, 5.0),  # ties
        ([5, 5, 5, 10], 0.9, 8.5),  # position 2.7: 5 + 0.7 x 5
        ([7], 0.9, 7.0),
        ([1, 2, 3], 0.0, 1.0),
        ([1, 2, 3], 1.0, 3.0),
        ([None, 4, None, 2], 0.5, 3.0),  # missing values are left out
    ],
)
def test_percentile_is_linear_interpolation_like_percentile_cont(values: list, q: float, expected: float) -> None:
    assert f.percentile(values, q) == pytest.approx(expected)


def test_percentile_of_nothing_is_none() -> None:
    assert f.percentile([], 0.5) is None
    assert f.percentile([None, None], 0.9) is None
    assert f.median([]) is None


def test_percentile_rejects_a_fraction_outside_0_1() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        f.percentile([1.0], 90)


def test_ratio_with_zero_denominator_is_none_not_zero() -> None:
    assert f.ratio(0, 0) is None
    assert f.ratio(0, 4) == 0.0
    assert f.ratio(3, 4) == 0.75


# ---- final attempt and the window rule -----------------------------------------------------------


def test_final_attempt_is_the_highest_completed_one() -> None:
    rows = [
        run(1, "failure", 1, attempt=1),
        run(1, "success", 2, attempt=2),
        run(1, "running", None, attempt=3),  # a third attempt still running does not replace attempt 2
        run(2, "failure", 3, attempt=1),
        run(2, "cancelled", None, attempt=2),  # no finish time: cannot be placed, not completed
        run(3, "running", None, attempt=1),  # nothing completed: no final attempt
    ]
    finals = f.final_attempts(rows)
    assert sorted(finals) == [("github", "acme/api", "1"), ("github", "acme/api", "2")]
    assert finals[("github", "acme/api", "1")]["attempt"] == 2
    assert finals[("github", "acme/api", "1")]["status"] == "success"
    assert finals[("github", "acme/api", "2")]["attempt"] == 1


def test_window_is_half_open_and_follows_the_final_attempt() -> None:
    rows = [
        run(1, "success", 0),  # finished exactly at start: inside
        run(2, "success", 24),  # finished exactly at end: outside
        run(3, "failure", -30, attempt=1),  # attempt 1 before the window ...
        run(3, "success", 5, attempt=2),  # ... final attempt inside: the run is in the window
        run(4, "failure", 6, attempt=1),  # attempt 1 inside ...
        run(4, "success", 30, attempt=2),  # ... but re-run after the window: the run belongs to the next window
        run(5, "success", -1),
    ]
    inside = sorted((r["run_id"], r["attempt"]) for r in f.window_runs(rows, START, END))
    assert inside == [("1", 1), ("3", 2)]
    next_day = sorted(r["run_id"] for r in f.window_runs(rows, END, END + dt.timedelta(days=1)))
    assert next_day == ["2", "4"]


def test_days_touched_are_the_finish_days_of_every_attempt() -> None:
    rows = [run(1, "failure", 23, attempt=1), run(1, "success", 49, attempt=2), run(2, "running", None)]
    assert f.days_touched(rows) == {dt.date(2026, 11, 16), dt.date(2026, 11, 18)}


# ---- success rates -------------------------------------------------------------------------------


def test_success_rate_leaves_cancelled_skipped_and_other_out() -> None:
    rows = [
        run(1, "success", 1),
        run(2, "failure", 2),
        run(3, "timed_out", 3),  # a failure
        run(4, "cancelled", 4),
        run(5, "skipped", 5),
        run(6, "other", 6),
    ]
    assert f.success_rate(rows, START, END) == pytest.approx(1 / 3)


def test_success_rate_without_decided_runs_is_none() -> None:
    assert f.success_rate([], START, END) is None
    assert f.success_rate([run(1, "cancelled", 1), run(2, "skipped", 2)], START, END) is None
    assert f.first_attempt_success_rate([run(1, "cancelled", 1)], START, END) is None
    assert f.attempt_failure_rate([], START, END) is None


def test_a_run_rerun_green_counts_as_final_success_but_not_first_attempt_success() -> None:
    rows = [
        run(1, "failure", 1, attempt=1),
        run(1, "success", 2, attempt=2),  # rescued by a re-run
        run(2, "success", 3),
        run(3, "failure", 4),
        run(4, "cancelled", 5),
    ]
    assert f.success_rate(rows, START, END) == pytest.approx(2 / 3)
    assert f.first_attempt_success_rate(rows, START, END) == pytest.approx(1 / 3)
    # attempts: 1a fail, 1b ok, 2 ok, 3 fail, 4 cancelled -> 2 failed of 5 completed (cancelled counts here)
    assert f.attempt_failure_rate(rows, START, END) == pytest.approx(2 / 5)


def test_first_attempt_rate_leaves_out_runs_whose_first_attempt_is_unknown() -> None:
    rows = [run(1, "success", 2, attempt=2), run(2, "failure", 3)]  # attempt 1 of run 1 never collected
    assert f.first_attempt_success_rate(rows, START, END) == 0.0
    assert f.success_rate(rows, START, END) == 0.5


def test_timed_out_attempts_are_failed_attempts() -> None:
    rows = [run(1, "timed_out", 1, attempt=1), run(1, "success", 2, attempt=2), run(2, "skipped", 3)]
    assert f.attempt_failure_rate(rows, START, END) == pytest.approx(1 / 3)


# ---- durations, queue, re-run cost ---------------------------------------------------------------


def test_duration_p50_p90_max_over_final_attempts_with_a_verdict() -> None:
    rows = [
        run(1, "success", 1, duration=60),
        run(2, "failure", 2, duration=120),
        run(3, "timed_out", 3, duration=600),
        run(4, "success", 4, duration=240),
        run(5, "success", 5, attempt=1, duration=9000),  # non-final attempt: not this run's duration
        run(5, "success", 6, attempt=2, duration=180),
        run(6, "cancelled", 7, duration=99999),  # no verdict: left out
    ]
    # values 60, 120, 180, 240, 600: p50 = 180; p90 at position 3.6 = 240 + 0.6 x 360 = 456
    assert f.duration_stats(rows, START, END) == {
        "p50": pytest.approx(180.0),
        "p90": pytest.approx(456.0),
        "max": 600.0,
    }


def test_duration_ties_and_runs_without_a_duration() -> None:
    rows = [
        run(1, "success", 1, duration=100),
        run(2, "success", 2, duration=100),
        run(3, "failure", 3, duration=None, started_h=2.5),  # no stored duration: left out, not recomputed
        run(4, "failure", 4, duration=400),
    ]
    stats = f.duration_stats(rows, START, END)
    assert stats["p50"] == 100.0  # 100, 100, 400
    assert stats["p90"] == pytest.approx(100 + 0.8 * 300)  # position 1.8 between 100 and 400
    assert stats["max"] == 400.0


def test_duration_of_an_empty_window_is_none() -> None:
    assert f.duration_stats([run(1, "success", -5)], START, END) == {"p50": None, "p90": None, "max": None}


def test_queue_of_runs_and_jobs() -> None:
    rows = [
        run(1, "failure", 1, attempt=1, queue=10),
        run(1, "success", 2, attempt=2, queue=30),  # every completed attempt queued
        run(2, "success", 3, queue=20),
        run(3, "success", 4, queue=None),  # no queue time: left out
        run(9, "success", -3, queue=5000),  # outside the window
    ]
    jobs = [
        job(1, "build", "failure", job_id=11, attempt=1, queue=1),
        job(1, "build", "success", job_id=12, attempt=2, queue=3),
        job(2, "build", "success", job_id=21, queue=5),
        job(2, "test", "success", job_id=22, queue=7),
        job(9, "build", "success", job_id=91, queue=999),
    ]
    # runs: 10, 20, 30 -> p50 20, p90 28; jobs: 1, 3, 5, 7 -> p50 4, p90 6.4
    assert f.queue_stats(rows, jobs, START, END) == {
        "run_p50": pytest.approx(20.0),
        "run_p90": pytest.approx(28.0),
        "job_p50": pytest.approx(4.0),
        "job_p90": pytest.approx(6.4),
    }


def test_queue_of_an_empty_window_is_none() -> None:
    assert f.queue_stats([], [], START, END) == {"run_p50": None, "run_p90": None, "job_p50": None, "job_p90": None}


def test_rerun_cost_counts_non_final_attempts_and_gitlab_retried_jobs() -> None:
    rows = [
        run(1, "failure", 1, attempt=1, duration=300),  # 5 min, re-run
        run(1, "failure", 2, attempt=2, duration=240),  # 4 min, re-run
        run(1, "success", 3, attempt=3, duration=600),  # final: not a re-run
        run(1, "running", None, attempt=4),  # not completed: nothing yet
        run(2, "success", 4, duration=900),
        run(50, "success", 5, provider="gitlab", repo="grp/app", duration=1000),
    ]
    jobs = [
        job(50, "rspec", "failure", job_id=501, provider="gitlab", repo="grp/app", duration=120, retried=True),
        job(50, "rspec", "success", job_id=502, provider="gitlab", repo="grp/app", duration=130),
    ]
    assert f.rerun_minutes(rows, jobs, START, END) == pytest.approx(5 + 4 + 2)
    assert f.rerun_minutes([run(2, "success", 4)], [], START, END) == 0.0


def test_rerun_minutes_do_not_depend_on_the_order_rows_come_in() -> None:
    """A database gives rows in no fixed order: the re-run time is their exact sum (math.fsum), so the
    same rows give the same last digits in any order (a sum added up row by row would not)."""
    durations = [0.1, 0.2, 0.3, 1e9, -1e9 + 0.7, 123.456, 0.01, 7.77]  # (a negative one: exactness shows)
    rows = [run(1, "failure", 1 + n / 100, attempt=n + 1, duration=d) for n, d in enumerate(durations)]
    rows.append(run(1, "success", 2, attempt=len(durations) + 1))
    forward = f.compute_figures(rows, start=START, end=END)
    backward = f.compute_figures(list(reversed(rows)), start=START, end=END)
    assert forward.rerun_attempts == backward.rerun_attempts == 8
    assert forward.rerun_minutes == backward.rerun_minutes == math.fsum(durations) / 60.0
    assert sum(durations) != math.fsum(durations)  # (the row-by-row sum is off here)


# ---- failures by ----------------------------------------------------------------------------------


def test_failures_by_branch_actor_workflow_job_and_category() -> None:
    rows = [
        run(1, "failure", 1, branch="main", actor="alice"),
        run(2, "timed_out", 2, branch="main", actor="bob", workflow="Nightly"),
        run(3, "failure", 3, branch="feat", actor="alice"),
        run(4, "failure", 4, attempt=1, branch="feat", actor="carol"),
        run(4, "success", 5, attempt=2, branch="feat", actor="dave"),  # rescued: not a failed run
        run(5, "cancelled", 6, actor="erin"),
        run(60, "failure", 7, provider="gitlab", repo="grp/app", workflow="push", branch="main", actor="alice"),
    ]
    jobs = [
        job(1, "test", "failure", job_id=101),
        job(3, "test", "failure", job_id=301),
        job(3, "lint", "success", job_id=302),
        job(4, "test", "failure", job_id=401, attempt=1),  # failed execution of a run re-run green: counted
        job(4, "test", "success", job_id=402, attempt=2),
        job(60, "rspec", "failure", job_id=601, provider="gitlab", repo="grp/app", retried=True),
        job(60, "rspec", "failure", job_id=602, provider="gitlab", repo="grp/app"),
        job(60, "docs", "failure", job_id=603, provider="gitlab", repo="grp/app", allow_failure=True),
    ]
    categories = {("gitlab", "601"): "infrastructure", "602": "test_failure", "101": "lint"}
    by = f.failures_by(rows, jobs, START, END, categories=categories)
    assert by["branch"] == [
        {"provider": "github", "repo": "acme/api", "branch": "main", "failures": 2},
        {"provider": "github", "repo": "acme/api", "branch": "feat", "failures": 1},
        {"provider": "gitlab", "repo": "grp/app", "branch": "main", "failures": 1},
    ]
    assert by["actor"] == [{"actor": "alice", "failures": 3}, {"actor": "bob", "failures": 1}]
    assert by["workflow"] == [
        {"provider": "github", "repo": "acme/api", "workflow": "CI", "failures": 2},
        {"provider": "github", "repo": "acme/api", "workflow": "Nightly", "failures": 1},
        {"provider": "gitlab", "repo": "grp/app", "workflow": "push", "failures": 1},
    ]
    assert by["job"] == [
        {"provider": "github", "repo": "acme/api", "workflow": "CI", "job": "test", "failures": 3},
        {"provider": "gitlab", "repo": "grp/app", "workflow": "push", "job": "rspec", "failures": 2},
    ]
    # "101" is a bare id: it names a GitLab job, not the GitHub job 101
    assert by["category"] == [
        {"category": "unanalysed", "failures": 3},
        {"category": "infrastructure", "failures": 1},
        {"category": "test_failure", "failures": 1},
    ]


def test_failures_of_an_empty_window() -> None:
    assert f.failures_by([], [], START, END) == {"branch": [], "workflow": [], "actor": [], "job": [], "category": []}


# ---- red streaks and MTTR -------------------------------------------------------------------------


def test_streak_started_before_the_window_and_ended_in_it() -> None:
    rows = [
        run(1, "success", -48),
        run(2, "failure", -24),  # the streak starts here, a day before the window
        run(3, "failure", 2),
        run(4, "cancelled", 3),  # neither ends nor continues it
        run(5, "success", 5),  # ends it: 29 h
        run(6, "failure", 6),  # a new streak, still open at the end: 18 h old
    ]
    streaks = f.red_streaks(rows, START, END)
    assert streaks["mttr_s"] == 29 * H
    assert [(s["started_at"], s["ended_at"], s["length_s"], s["failed_runs"]) for s in streaks["ended"]] == [
        (at(-24).isoformat(), at(5).isoformat(), 29 * H, 2)
    ]
    assert streaks["ended"][0]["start_known"] is True
    assert [(s["first_run_id"], s["age_s"], s["failed_runs"]) for s in streaks["open"]] == [("6", 18 * H, 1)]


def test_mttr_is_the_median_of_streaks_ended_in_the_window_only() -> None:
    rows = [
        run(1, "failure", -10, branch="old"),
        run(2, "success", -9, branch="old"),  # ended before the window: not in MTTR
        run(3, "failure", 1, branch="main"),
        run(4, "success", 2, branch="main"),  # 1 h
        run(5, "failure", 3, branch="main"),
        run(6, "success", 7, branch="main"),  # 4 h
        run(7, "failure", 10, branch="dev"),
        run(8, "failure", 11, branch="dev"),
        run(9, "success", 20, branch="dev"),  # 10 h
    ]
    streaks = f.red_streaks(rows, START, END)
    assert sorted(s["length_s"] for s in streaks["ended"]) == [1 * H, 4 * H, 10 * H]
    assert streaks["mttr_s"] == 4 * H
    assert streaks["open"] == []


def test_streaks_are_per_repo_workflow_and_branch() -> None:
    rows = [
        run(1, "failure", 1, workflow="CI"),
        run(2, "success", 2, workflow="Nightly"),  # another workflow: does not end the CI streak
        run(3, "success", 3, repo="acme/web"),  # another repository: neither
    ]
    streaks = f.red_streaks(rows, START, END)
    assert streaks["ended"] == []
    assert [(s["repo"], s["workflow"], s["branch"], s["age_s"]) for s in streaks["open"]] == [
        ("acme/api", "CI", "main", 23 * H)
    ]


def test_open_streak_age_is_measured_at_the_window_end_and_uses_the_final_attempt() -> None:
    rows = [
        run(1, "success", -5),
        run(2, "failure", 4, attempt=1, url="https://ci/2"),
        run(2, "failure", 6, attempt=2, url="https://ci/2/attempts/2"),  # a red re-run: the run completes at 6 h
        run(3, "success", 30),  # after the window: ignored for this window
    ]
    streaks = f.red_streaks(rows, START, END)
    assert streaks["mttr_s"] is None
    assert [(s["started_at"], s["age_s"], s["last_run_url"]) for s in streaks["open"]] == [
        (at(6).isoformat(), 18 * H, "https://ci/2/attempts/2")
    ]
    # the next day sees the streak end after 24 h
    next_day = f.red_streaks(rows, END, END + dt.timedelta(days=1))
    assert next_day["mttr_s"] == 24 * H
    assert next_day["open"] == []


def test_a_rerun_green_is_not_a_streak() -> None:
    rows = [run(1, "success", -2), run(2, "failure", 1, attempt=1), run(2, "success", 2, attempt=2)]
    assert f.red_streaks(rows, START, END) == {"mttr_s": None, "ended": [], "open": []}


def test_streak_ties_on_finish_time_are_ordered_by_run_number_then_id() -> None:
    # a success and a failure finished at the same second: the later-numbered run completed "later"
    red_last = [run(1, "success", 3, run_number=11), run(2, "failure", 3, run_number=12)]
    green_last = [run(1, "success", 3, run_number=12), run(2, "failure", 3, run_number=11)]
    assert [s["first_run_id"] for s in f.red_streaks(red_last, START, END)["open"]] == ["2"]
    green = f.red_streaks(green_last, START, END)
    assert green["open"] == []
    assert green["mttr_s"] == 0.0  # started and ended at the same second
    no_numbers = [run(8, "failure", 3, run_number=None), run(10, "success", 3, run_number=None)]
    assert f.red_streaks(no_numbers, START, END)["mttr_s"] == 0.0  # ids in numeric order: 8 before 10


def test_a_streak_whose_start_is_before_the_history_is_marked_and_left_out_of_mttr() -> None:
    history_start = at(-48)
    rows = [
        run(1, "failure", -30, branch="main"),  # first run loaded for main: red since before the history?
        run(2, "success", 3, branch="main"),
        run(3, "failure", 4, branch="feat"),  # first run of a new branch inside the window: known start
        run(4, "success", 6, branch="feat"),
    ]
    streaks = f.red_streaks(rows, START, END, history_start=history_start)
    known = {s["branch"]: s["start_known"] for s in streaks["ended"]}
    assert known == {"main": False, "feat": True}
    assert streaks["mttr_s"] == 2 * H  # only feat's
    assert f.red_streaks(rows, START, END)["mttr_s"] == pytest.approx((33 * H + 2 * H) / 2)


# ---- flaky jobs ------------------------------------------------------------------------------------


def test_flaky_on_the_same_sha_but_not_across_shas() -> None:
    rows = [
        run(1, "failure", 1, attempt=1, sha="aaa"),
        run(1, "success", 2, attempt=2, sha="aaa"),  # re-run green: still counts
        run(2, "failure", 3, sha="bbb"),
        run(3, "success", 4, sha="ccc"),  # fails on bbb, passes on ccc: not flaky
    ]
    jobs = [
        job(1, "test", "failure", job_id=11, attempt=1),
        job(1, "lint", "success", job_id=12, attempt=1),
        job(1, "test", "success", job_id=13, attempt=2),
        job(2, "test", "failure", job_id=21),
        job(3, "test", "success", job_id=31),
        job(3, "lint", "skipped", job_id=32),  # skipped: did not run on ccc
    ]
    flaky = f.flaky_jobs(rows, jobs, START, END)
    assert flaky["jobs"] == [
        {
            "provider": "github",
            "repo": "acme/api",
            "workflow": "CI",
            "job": "test",
            "flaky_shas": 1,
            "shas": 3,
            "rate": pytest.approx(1 / 3),
            "flaky_on": ["aaa"],
        }
    ]
    # (test, aaa) flaky; pairs: (test, aaa), (test, bbb), (test, ccc), (lint, aaa)
    assert flaky["rate"] == pytest.approx(1 / 4)


def test_gitlab_retried_jobs_are_attempts_for_flakiness() -> None:
    gl = {"provider": "gitlab", "repo": "grp/app"}
    rows = [run(70, "success", 5, workflow="push", sha="g1", **gl)]
    jobs = [
        job(70, "rspec", "failure", job_id=701, retried=True, **gl),
        job(70, "rspec", "success", job_id=702, **gl),
        job(70, "build", "success", job_id=703, **gl),
    ]
    flaky = f.flaky_jobs(rows, jobs, START, END)
    assert [(j["repo"], j["job"], j["flaky_on"], j["rate"]) for j in flaky["jobs"]] == [
        ("grp/app", "rspec", ["g1"], 1.0)
    ]
    assert flaky["rate"] == 0.5


def test_flaky_only_counts_runs_of_the_window() -> None:
    rows = [run(1, "failure", -3, sha="aaa"), run(2, "success", 3, sha="aaa")]
    jobs = [job(1, "test", "failure", job_id=1), job(2, "test", "success", job_id=2)]
    flaky = f.flaky_jobs(rows, jobs, START, END)
    assert flaky == {"jobs": [], "rate": 0.0}
    assert f.flaky_jobs([], [], START, END) == {"jobs": [], "rate": None}


# ---- DORA ----------------------------------------------------------------------------------------


def dora_history() -> list[dict[str, Any]]:
    return [
        deployment(1, "success", -240, "A"),  # history: 10 days before
        deployment(2, "success", 1, "B"),
        deployment(3, "failure", 3, "C"),  # B's change failed
        deployment(4, "success", 5, "C"),  # recovered after 2 h
        deployment(5, "success", 8, "B"),  # a rollback to B (not the previous SHA): C's change failed
        deployment(6, "success", 9, "B"),  # B again: a redeploy of the current code, not a rollback
        deployment(7, "success", 2, "X", environment="staging"),  # not production-like: ignored
        deployment(8, "running", 10, "D"),  # not finished: neither deployment nor failure
    ]


def test_dora_with_a_rollback_and_a_failed_deployment_then_recovery() -> None:
    commits = {
        ("github", "acme/api", "2"): [at(-23), at(-1)],  # 24 h and 2 h
        "4": [at(1)],  # bare id works too: 4 h
    }
    got = f.dora(dora_history(), START, END, commit_times=commits)
    assert got is not None
    assert got["environments"] == ["production"]
    assert got["deployments"] == 4  # 2, 4, 5, 6
    assert got["deployments_per_day"] == 4.0
    assert got["deployment_days"] == 1
    assert got["lead_time_p50_s"] == 4 * H  # median of 24 h, 2 h, 4 h
    assert got["lead_time_commits"] == 3
    assert got["failed_changes"] == 2  # 2 (failed deployment 3), 4 (rolled back by 5)
    assert got["change_failure_rate"] == 0.5
    assert got["failed_deployments"] == 1
    assert got["rollbacks"] == 1
    assert [r["deployment_id"] for r in got["rollback_deployments"]] == ["5"]
    assert got["recovery_time_p50_s"] == 2 * H
    assert got["recoveries"] == 1
    assert got["bands"] == {
        "deployment_frequency": "elite",
        "lead_time": "elite",
        "change_failure_rate": "low",
        "recovery_time": "high",
    }


def test_dora_without_deployments_is_none_and_without_commit_times_has_no_lead_time() -> None:
    assert f.dora([], START, END) is None
    assert f.dora([deployment(1, "success", 1, "A", environment="staging")], START, END) is None
    got = f.dora([deployment(1, "success", -30, "A")], START, END)
    assert got is not None
    assert got["deployments"] == 0
    assert got["deployments_per_day"] == 0.0
    assert got["bands"]["deployment_frequency"] == "low"
    assert got["lead_time_p50_s"] is None
    assert got["change_failure_rate"] is None  # no deployment in the window: no rate
    assert got["bands"]["change_failure_rate"] is None


def test_dora_change_failure_looks_past_the_window_unless_as_of() -> None:
    deployments = [deployment(1, "success", 20, "A"), deployment(2, "failure", 30, "B")]
    assert f.dora(deployments, START, END)["change_failure_rate"] == 1.0  # type: ignore[index]
    assert f.dora(deployments, START, END, as_of=END)["change_failure_rate"] == 0.0  # type: ignore[index]


def test_dora_incident_marks_the_deployment_before_it() -> None:
    deployments = [deployment(1, "success", 2, "A"), deployment(2, "success", 6, "B")]
    incidents = [{"provider": "github", "repo": "acme/api", "created_at": at(4)}]  # between 1 and 2
    got = f.dora(deployments, START, END, incidents=incidents)
    assert got is not None
    assert (got["failed_changes"], got["change_failure_rate"]) == (1, 0.5)
    other_repo = [{"provider": "github", "repo": "acme/web", "created_at": at(4)}]
    assert f.dora(deployments, START, END, incidents=other_repo)["failed_changes"] == 0  # type: ignore[index]


def test_dora_recovery_is_timed_from_the_first_failure_and_environments_are_separate() -> None:
    deployments = [
        deployment(1, "success", 1, "A"),
        deployment(2, "failure", 2, "B"),
        deployment(3, "failure", 3, "B"),
        deployment(4, "success", 6, "B"),  # 4 h after the first failure
        deployment(5, "failure", 7, "C", environment="prod-eu"),
        deployment(6, "success", 7.5, "C", environment="prod-eu"),  # 30 min
        deployment(7, "success", 8, "A", environment="prod-eu"),  # A was never deployed to prod-eu
    ]
    got = f.dora(deployments, START, END)
    assert got is not None
    assert got["environments"] == ["prod-eu", "production"]
    assert got["recoveries"] == 2
    assert got["recovery_time_p50_s"] == pytest.approx((4 * H + 0.5 * H) / 2)
    assert got["failed_deployments"] == 3
    assert got["rollbacks"] == 0
    assert got["failed_changes"] == 1  # deployment 1


def test_dora_of_several_windows_is_dora_of_each() -> None:
    rng = random.Random(5)
    deployments = [
        deployment(
            n,
            rng.choice(["success", "success", "success", "failure", "running"]),
            rng.uniform(-100, 200),
            rng.choice("ABCDE"),
            environment=rng.choice(["production", "production", "staging"]),
        )
        for n in range(80)
    ]
    commits = {str(n): [at(rng.uniform(-200, 0))] for n in range(0, 80, 3)}
    incidents = [{"provider": "github", "repo": "acme/api", "created_at": at(rng.uniform(-50, 150))} for _ in range(4)]
    windows = [(at(h), at(h + 24)) for h in range(-96, 192, 24)]
    options: dict[str, Any] = {"commit_times": commits, "incidents": incidents}
    got = f.dora_windows(deployments, windows, **options)
    assert got == [f.dora(deployments, start, end, **options) for start, end in windows]
    assert sum(1 for d in got if d and d["deployments"]) >= 5 and any(d and d["rollbacks"] for d in got)
    assert f.dora_windows([], windows) == [None] * len(windows)


def test_environment_scope() -> None:
    assert f.environment_matches("production", f.DEFAULT_ENVIRONMENTS)
    assert f.environment_matches("Prod-EU", f.DEFAULT_ENVIRONMENTS)
    assert not f.environment_matches("preprod", f.DEFAULT_ENVIRONMENTS)
    assert not f.environment_matches("staging", f.DEFAULT_ENVIRONMENTS)
    assert f.environment_matches("live", ["live"])
    assert not f.environment_matches("production", ["live"])
    assert f.environment_matches("anything", None)


@pytest.mark.parametrize(
    ("per_day", "band"),
    [
        (3.0, "elite"),
        (1.0, "elite"),
        (0.99, "high"),
        (1 / 7, "high"),
        (0.14, "medium"),
        (1 / 30, "medium"),
        (0.033, "low"),
        (0.0, "low"),
        (None, None),
    ],
)
def test_deployment_frequency_band_edges(per_day: float | None, band: str | None) -> None:
    assert f.deployment_frequency_band(per_day) == band


@pytest.mark.parametrize(
    ("seconds", "band"),
    [
        (0.0, "elite"),
        (86_399.0, "elite"),
        (86_400.0, "high"),
        (7 * 86_400.0 - 1, "high"),
        (7 * 86_400.0, "medium"),
        (30 * 86_400.0 - 1, "medium"),
        (30 * 86_400.0, "low"),
        (None, None),
    ],
)
def test_lead_time_band_edges(seconds: float | None, band: str | None) -> None:
    assert f.lead_time_band(seconds) == band


@pytest.mark.parametrize(
    ("rate", "band"),
    [
        (0.0, "elite"),
        (0.05, "elite"),
        (0.0501, "high"),
        (0.10, "high"),
        (0.15, "medium"),
        (0.1501, "low"),
        (1.0, "low"),
        (None, None),
    ],
)
def test_change_failure_band_edges(rate: float | None, band: str | None) -> None:
    assert f.change_failure_band(rate) == band


@pytest.mark.parametrize(
    ("seconds", "band"),
    [
        (3599.0, "elite"),
        (3600.0, "high"),
        (86_399.0, "high"),
        (86_400.0, "medium"),
        (7 * 86_400.0, "low"),
        (None, None),
    ],
)
def test_recovery_time_band_edges(seconds: float | None, band: str | None) -> None:
    assert f.recovery_time_band(seconds) == band


def test_change_failure_band_of_a_computed_ratio_on_the_edge() -> None:
    assert f.change_failure_band(f.ratio(1, 20)) == "elite"  # 0.05 exactly as a float division
    assert f.change_failure_band(f.ratio(3, 20)) == "medium"  # 0.15000000000000002 is still 15 %


# ---- everything at once ---------------------------------------------------------------------------


def mixed_history() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows = [
        run(1, "success", -30),
        run(2, "failure", -5),  # history: the streak on main starts here
        run(3, "failure", 1, attempt=1, duration=100, queue=10, sha="s3"),
        run(3, "success", 2, attempt=2, duration=200, queue=20, sha="s3"),  # ends the streak: 7 h
        run(4, "success", 3, duration=300, queue=30, sha="s4"),
        run(5, "cancelled", 4, duration=5, queue=40, sha="s5"),
        run(6, "failure", 5, duration=400, queue=50, branch="feat", actor="bob", sha="s6"),
    ]
    jobs = [
        job(3, "test", "failure", job_id=31, attempt=1, queue=1),
        job(3, "test", "success", job_id=32, attempt=2, queue=2),
        job(4, "test", "success", job_id=41, queue=3),
        job(6, "test", "failure", job_id=61, queue=4),
    ]
    return rows, jobs


def test_compute_figures_agrees_with_each_definition() -> None:
    rows, jobs = mixed_history()
    got = f.compute_figures(rows, jobs, start=START, end=END, deployments=dora_history())
    assert got.runs == 4
    assert got.runs_by_status == {
        "success": 2,
        "failure": 1,
        "timed_out": 0,
        "cancelled": 1,
        "skipped": 0,
        "other": 0,
    }
    assert got.success_rate == pytest.approx(2 / 3) == f.success_rate(rows, START, END)
    assert got.first_attempt_success_rate == pytest.approx(1 / 3) == f.first_attempt_success_rate(rows, START, END)
    assert (got.attempts, got.failed_attempts) == (5, 2)
    assert got.attempt_failure_rate == pytest.approx(2 / 5)
    assert (got.duration_p50_s, got.duration_p90_s, got.duration_max_s) == (300.0, pytest.approx(380.0), 400.0)
    assert (got.queue_run_p50_s, got.queue_run_p90_s) == (30.0, pytest.approx(46.0))
    assert (got.queue_job_p50_s, got.queue_job_p90_s) == (2.5, pytest.approx(3.7))
    assert got.rerun_minutes == pytest.approx(100 / 60)
    assert got.rerun_attempts == 1
    assert got.failures_by_actor == [{"actor": "bob", "failures": 1}]
    assert got.failures_by_job == [
        {"provider": "github", "repo": "acme/api", "workflow": "CI", "job": "test", "failures": 2}
    ]
    assert got.failures_by_category == [{"category": "unanalysed", "failures": 2}]
    assert got.mttr_s == 7 * H
    assert [(s["branch"], s["age_s"]) for s in got.open_streaks] == [("feat", 19 * H)]
    assert [(j["job"], j["flaky_on"]) for j in got.flaky_jobs] == [("test", ["s3"])]
    assert got.flaky_rate == pytest.approx(1 / 3)
    assert got.dora is not None
    assert got.dora["rollbacks"] == 1


def test_figures_are_json_serialisable_and_round_trip() -> None:
    rows, jobs = mixed_history()
    got = f.compute_figures(rows, jobs, start=START, end=END, deployments=dora_history())
    data = json.loads(json.dumps(got.to_dict()))
    assert data["start"] == START.isoformat()
    assert data["open_streaks"][0]["started_at"] == at(5).isoformat()
    assert f.Figures.from_dict(data) == f.Figures.from_dict(got.to_dict())
    assert f.Figures.from_dict(data).mttr_s == 7 * H


def test_figures_of_an_empty_window() -> None:
    got = f.compute_figures([run(1, "success", -3)], [], start=START, end=END)
    assert got.runs == 0
    assert got.is_empty()
    for name in (
        "success_rate",
        "first_attempt_success_rate",
        "attempt_failure_rate",
        "duration_p50_s",
        "duration_p90_s",
        "duration_max_s",
        "queue_run_p50_s",
        "queue_job_p90_s",
        "mttr_s",
        "flaky_rate",
        "dora",
    ):
        assert getattr(got, name) is None, name
    assert got.rerun_minutes == 0.0
    assert got.failures_by_branch == []


def test_compute_figures_rejects_an_empty_window() -> None:
    with pytest.raises(ValueError, match="empty window"):
        f.compute_figures([], start=END, end=START)


def test_compute_windows_groups_and_totals_agree_with_single_windows() -> None:
    rows, jobs = mixed_history()
    rows = [*rows, run(9, "success", -20, branch="feat", sha="s9")]  # in the previous day
    jobs = [*jobs, job(9, "test", "failure", job_id=91, queue=8)]
    previous = (START - dt.timedelta(days=1), START)
    for group_by in ((), ("provider", "repo"), ("branch",), ("provider", "repo", "workflow", "branch")):
        total, groups = f.compute_windows(rows, jobs, windows=[(START, END), previous], group_by=group_by)
        assert total[0] == f.compute_figures(rows, jobs, start=START, end=END), group_by
        assert total[1] == f.compute_figures(rows, jobs, start=previous[0], end=previous[1]), group_by
        assert sum(g[0].runs for g in groups.values()) == (total[0].runs if group_by else 0)
    _, by_branch = f.compute_windows(rows, jobs, windows=[(START, END), previous], group_by=("branch",))
    assert sorted(by_branch) == [("feat",), ("main",)]
    assert (by_branch[("feat",)][0].runs, by_branch[("feat",)][1].runs) == (1, 1)
    assert [s["age_s"] for s in by_branch[("feat",)][0].open_streaks] == [19 * H]
    assert by_branch[("main",)][0].mttr_s == 7 * H
    with pytest.raises(ValueError, match="cannot group by 'team'"):
        f.compute_windows(rows, jobs, windows=[(START, END)], group_by=("team",))


def test_compute_windows_total_dora_of_groups_equals_one_walk_over_every_deployment() -> None:
    """Grouped by repository, the total's DORA is the groups' accumulators added up: the same figures as
    one walk over every deployment of every repository, rollbacks listed in time order."""
    other = [
        deployment(d.get("deployment_id") + "0", d["status"], (d["finished_at"] - START).total_seconds() / H + 0.5,
                   d["sha"], environment=d["environment"], repo="acme/web")
        for d in dora_history()
    ]  # fmt: skip
    everything = [*dora_history(), *other, deployment(99, "failure", 3, "Z", provider="gitlab", repo="grp/app")]
    commits = {("github", "acme/api", "2"): [at(-23)], ("github", "acme/web", "20"): [at(-1)]}
    expected = f.dora(everything, START, END, commit_times=commits)
    assert expected is not None and expected["deployments"] == 8 and expected["failed_deployments"] == 3
    for group_by in (("provider", "repo"), ("provider",), ("repo",)):
        total, groups = f.compute_windows(
            [], windows=[(START, END)], group_by=group_by, deployments=everything, commit_times=commits
        )
        assert total[0].dora == expected, group_by
    _, groups = f.compute_windows(
        [], windows=[(START, END)], group_by=("provider", "repo"), deployments=everything, commit_times=commits
    )
    web = groups[("github", "acme/web")][0].dora
    assert web == f.dora(other, START, END, commit_times=commits)
    assert web is not None and web["deployments"] == 4 and web["lead_time_commits"] == 1
    assert [r["repo"] for r in expected["rollback_deployments"]] == ["acme/api", "acme/web"]


def test_lead_time_reads_the_commits_the_collector_stored_on_the_deployment() -> None:
    from devops_automation.ci_analytics.figures import _commit_times_of

    row = {
        "provider": "github",
        "repo": "acme/shop",
        "deployment_id": "7",
        "commits": [
            {"sha": "a", "authored_at": "2026-11-20T10:00:00Z"},
            {"sha": "b", "authored_at": "2026-11-20T12:00:00"},
            {"sha": "c", "authored_at": None},
        ],
    }
    assert _commit_times_of(row, None) == [
        dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC),
    ]
    given = [dt.datetime(2026, 11, 19, tzinfo=dt.UTC)]
    assert _commit_times_of(row, {("github", "acme/shop", "7"): given}) == given
