"""The CI figures of ``../shared/api/ci-analytics-definitions.md`` (§3 runs, §4 DORA) over row dicts.

Plain Python: no Airflow, no database. The inputs are rows as :mod:`.normalize` builds them and the
results store holds them (the columns of ``ci_runs``, ``ci_jobs`` and ``ci_deployments``; only the
columns a figure reads need to be there; ``run_id`` and ``job_id`` as text), times are aware datetimes.
:mod:`.analytics` loads the rows and calls :func:`compute_windows`; every figure also has a function of
its own, so that each definition can be checked by hand.

**Which runs a window holds.** A run belongs to the window ``[start, end)`` when its *final attempt*
(the highest attempt number that has completed) finished inside it; then *all* its completed attempts
and their jobs count for that window, wherever they finished. So every run is counted in exactly one
window, and a re-run that completes later moves the run to the later window (recompute the days
:func:`days_touched` names). Whatever a function is given beyond that (history, later runs) is used only
where a definition needs it: red streaks look back, change failure looks forward.

**Percentiles** are PostgreSQL's ``percentile_cont`` (linear interpolation between the closest ranks,
see :func:`percentile`), so that a SQL version of a figure gives the same number. A percentile of no
values, and a ratio whose denominator is 0, is ``None`` (no data), never 0.

Decisions where the definitions are silent (each repeated where it is implemented):

* *Completed* = a status other than ``running`` **and** a finish time; an attempt without a finish
  time cannot be placed in a window and counts as not completed.
* ``other`` (a provider value we do not know) is completed but, like ``cancelled`` and ``skipped``,
  outside every success/failure ratio and streak.
* Durations and queue times are the stored ``duration_s`` / ``queue_s``: :mod:`.normalize` computes them
  by §3 when it builds the rows (GitHub: the span of the attempt's jobs, else ``updated_at −
  run_started_at``; GitLab: ``duration`` and ``queued_duration`` as sent). A row without one is left
  out of that figure; nothing is recomputed here, so SQL and Python agree.
* Duration percentiles are over the final attempts that gave a verdict (success, failure, timed out):
  one value per run, the time it took to get its answer. Queue percentiles are over every completed
  attempt (runs) and every job of those attempts that has a queue time (jobs, GitLab retried jobs too):
  every execution waited for a runner.
* Re-run cost: the duration of every completed non-final attempt plus, for GitLab (one attempt per
  pipeline, definitions §1), the duration of every retried job; added up exactly (``math.fsum``), so
  that the order a database returns rows in (none is fixed) cannot change the last digits.
* The first-attempt and attempt failure rates are run level: a GitLab pipeline has one attempt, so a
  pipeline rescued by retrying jobs counts as a first-attempt success (its retried jobs show in the
  flaky jobs and the re-run cost).
* Failures by branch, workflow and actor count runs whose final attempt failed or timed out (actor: the
  final attempt's); branch and workflow are per repository. Failures by job and by category count
  every failed or timed-out job execution of the window's attempts (GitLab retried jobs too), except
  jobs allowed to fail; a job without an analysis is ``unanalysed``.
* Flaky jobs look at every job execution with a verdict, jobs allowed to fail included (they ran and
  can be flaky); a run's commit is its final attempt's ``sha`` (a re-run runs the same commit).
* Red streaks: equal finish times are ordered by run number, then run id (both grow with creation).
* DORA: bands and the other §4 choices are documented at :func:`dora` and the ``*_band`` functions.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import math
import re
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from itertools import islice
from operator import eq, itemgetter
from typing import Any

Row = Mapping[str, Any]
RunKey = tuple[str, str, str]  # provider, repo, run_id
Window = tuple[dt.datetime, dt.datetime]

SUCCESS = "success"
FAILED = frozenset({"failure", "timed_out"})
#: Statuses that are a verdict on the code: the success and failure ratios and red streaks use only these.
VERDICT = frozenset({"success", "failure", "timed_out"})
STATUSES = ("success", "failure", "timed_out", "cancelled", "skipped", "other")
_STATUS_SET = frozenset(STATUSES)
UNANALYSED = "unanalysed"
#: Production-like environment names (definitions §4): ``prod``, ``production``, ``prod-eu``,
#: ``Production``; not ``preprod`` or ``staging``.
DEFAULT_ENVIRONMENTS = r"(?i)\b(prod|production)\b"
DAY_S = 86_400.0
#: Fields a summary can be grouped by (a streak key has all four).
GROUP_FIELDS = ("provider", "repo", "workflow", "branch")
#: The job columns the figures read, in the order of a job record ``(run_row, *JOB_FIELDS)``.
JOB_FIELDS = ("job_id", "name", "status", "duration_s", "queue_s", "retried", "allow_failure")
_JOB_ID, _NAME, _STATUS, _DURATION, _QUEUE, _RETRIED, _ALLOW_FAILURE = range(1, 8)


# -- small helpers ----------------------------------------------------------------------------------
def percentile(values: Iterable[float | None], q: float) -> float | None:
    """The ``q`` quantile (0..1) of the values, as PostgreSQL's ``percentile_cont(q)`` computes it.

    Sort the n values, take the position ``q × (n − 1)`` and interpolate linearly between the values at
    the ranks below and above it. ``None`` values are left out; no values at all gives ``None``.
    Example: ``[10, 20, 30, 40]`` has p50 = 25 and p90 = 37.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"percentile {q!r} is not between 0 and 1")
    ordered = sorted(float(v) for v in values if v is not None)
    return _sorted_percentile(ordered, q)


def _sorted_percentile(ordered: Sequence[float], q: float) -> float | None:
    if not ordered:
        return None
    position = q * (len(ordered) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def median(values: Iterable[float | None]) -> float | None:
    """``percentile(values, 0.5)``: the mean of the two middle values when there is an even number."""
    return percentile(values, 0.5)


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``, or ``None`` when the denominator is 0 (no data is not 0 %)."""
    return numerator / denominator if denominator else None


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat()


def _seconds(start: dt.datetime, end: dt.datetime) -> float:
    return (end - start).total_seconds()


def _id_order(value: Any) -> tuple[int, int, str]:
    """Ids in numeric order when they are numbers (GitHub and GitLab ids are), else as text."""
    text = str(value)
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def _key_order(value: Any) -> tuple[int, str]:
    return (0, "") if value is None else (1, str(value))


def is_completed(row: Row) -> bool:
    """An attempt has completed: a status other than ``running`` and a finish time."""
    status = row.get("status")
    return status is not None and status != "running" and row.get("finished_at") is not None


# -- runs, attempts and the window -----------------------------------------------------------------
class RunAttempts:
    """One run: its completed attempts in attempt order, the final one, and the jobs of those attempts."""

    __slots__ = ("attempts", "final", "first", "jobs", "key")

    def __init__(self, key: RunKey) -> None:
        self.key = key
        self.attempts: list[Row] = []
        self.final: Row = {}
        self.first: Row | None = None  # attempt 1, when it is in the data and completed
        self.jobs: list[Sequence[Any]] = []  # job records (run_row, *JOB_FIELDS)

    def field(self, name: str) -> Any:
        """A grouping field of the run: provider and repo from its key, the rest from its final attempt."""
        if name == "provider":
            return self.key[0]
        if name == "repo":
            return self.key[1]
        return self.final.get(name)


def _attempt_no(row: Row) -> int:
    return int(row.get("attempt") or 1)


class RunIndex:
    """Completed attempts grouped by run, the final attempt resolved, jobs attached: built once, read by
    every figure (the functions below also accept plain row lists and build it themselves).

    Runs without a completed attempt are not in it; the same attempt given twice counts once (the first
    row given). Jobs are attached to their run when their attempt has completed. They come either as
    row dicts (``jobs``: matched on provider, repo, run_id and attempt) or as records (``job_records``:
    tuples ``(run_row, *JOB_FIELDS)`` whose ``run_row`` is the ``id`` of their attempt's run row, as
    :mod:`.analytics` fetches them: no dict per job).
    """

    def __init__(
        self, runs: Iterable[Row] = (), jobs: Iterable[Row] = (), *, job_records: Iterable[Sequence[Any]] = ()
    ) -> None:
        self.runs: dict[RunKey, RunAttempts] = {}
        by_row_id: dict[Any, RunAttempts] = {}
        index = self.runs
        for row in runs:
            status = row["status"]
            if status is None or status == "running" or row["finished_at"] is None:
                continue
            key = (row["provider"], row["repo"], row["run_id"])
            run = index.get(key)
            if run is None:
                run = index[key] = RunAttempts(key)
            run.attempts.append(row)
            row_id = row.get("id")
            if row_id is not None:
                by_row_id[row_id] = run
        done: dict[RunKey, set[int]] = {}
        for key, run in self.runs.items():
            attempts = run.attempts
            if len(attempts) > 1:
                attempts.sort(key=_attempt_no)  # stable: of the same attempt given twice, the first is kept
                seen: set[int] = set()
                unique = []
                for attempt in attempts:
                    if _attempt_no(attempt) not in seen:
                        seen.add(_attempt_no(attempt))
                        unique.append(attempt)
                attempts = run.attempts = unique
                done[key] = seen
                run.final = attempts[-1]  # the highest attempt number that has completed (definitions §1)
                run.first = attempts[0] if _attempt_no(attempts[0]) == 1 else None
            else:  # most runs: one attempt (the same as above, without the calls)
                only = run.final = attempts[0]
                number = only.get("attempt")
                run.first = only if not number or number == 1 or int(number) == 1 else None
        attach = by_row_id.get
        for record in job_records:
            found = attach(record[0])
            if found is not None:
                found.jobs.append(record)
        for job in jobs:
            key = (job["provider"], job["repo"], job["run_id"])
            found = self.runs.get(key)
            if found is None:
                continue
            numbers = done.get(key)
            number = _attempt_no(job)
            if (number in numbers) if numbers is not None else number == _attempt_no(found.final):
                found.jobs.append((None, *(job.get(f) for f in JOB_FIELDS)))

    def window(self, start: dt.datetime, end: dt.datetime) -> list[RunAttempts]:
        """The runs whose final attempt finished inside ``[start, end)`` (the window rule)."""
        return [r for r in self.runs.values() if start <= r.final["finished_at"] < end]


def _index(runs: Iterable[Row] | RunIndex, jobs: Iterable[Row] = ()) -> RunIndex:
    return runs if isinstance(runs, RunIndex) else RunIndex(runs, jobs)


def final_attempts(runs: Iterable[Row] | RunIndex) -> dict[RunKey, Row]:
    """The final attempt of every run that has a completed attempt, by ``(provider, repo, run_id)``.

    Final = the highest attempt number that has completed; a higher attempt still running does not
    replace it until it completes.
    """
    return {key: run.final for key, run in _index(runs).runs.items()}


def window_runs(runs: Iterable[Row] | RunIndex, start: dt.datetime, end: dt.datetime) -> list[Row]:
    """The final attempts that finished inside ``[start, end)``: one row per run of the window."""
    return [run.final for run in _index(runs).window(start, end)]


def days_touched(runs: Iterable[Row]) -> set[dt.date]:
    """The UTC days whose daily figures a set of collected attempts can change.

    A new attempt moves its run to the day the attempt finished, away from the day of the attempt that
    was final before, so every finish day of every attempt given counts (pass all attempts of the runs
    collected, as the collector has them).
    """
    return {row["finished_at"].astimezone(dt.UTC).date() for row in runs if row.get("finished_at") is not None}


# -- the window's figures, accumulated in one pass -------------------------------------------------
class _Acc:
    """Counts and value lists of the runs of one window (and group); :meth:`merge` adds another."""

    def __init__(self) -> None:
        self.runs = 0
        self.by_status: Counter[str] = Counter()
        self.decided = self.succeeded = self.first_decided = self.first_succeeded = 0
        self.attempts = self.failed_attempts = 0
        self.durations: list[float] = []
        self.run_queues: list[float] = []
        self.job_queues: list[float] = []
        #: the duration of every re-run (0.0 when it has none), added up with math.fsum: the exact sum,
        #: whatever order the rows come in (a database gives them in no fixed order)
        self.reruns: list[float] = []
        self.by_branch: Counter[tuple[Any, ...]] = Counter()
        self.by_workflow: Counter[tuple[Any, ...]] = Counter()
        self.by_actor: Counter[tuple[Any, ...]] = Counter()
        self.by_job: Counter[tuple[Any, ...]] = Counter()
        self.by_category: Counter[tuple[Any, ...]] = Counter()
        #: (provider, repo, workflow, job name, sha) -> 1 succeeded | 2 failed (bits)
        self.outcomes: dict[tuple[Any, ...], int] = {}

    def add(self, run: RunAttempts, categories: Mapping[Any, str] | None) -> None:
        final = run.final
        get = final.get
        status = final["status"]
        provider, repo, _ = run.key
        workflow = get("workflow")
        self.runs += 1
        self.by_status[status if status in _STATUS_SET else "other"] += 1
        if status in VERDICT:
            self.decided += 1
            if status == SUCCESS:
                self.succeeded += 1
            duration = get("duration_s")
            if duration is not None:
                self.durations.append(duration)
            if status != SUCCESS:
                self.by_branch[(provider, repo, get("branch"))] += 1
                self.by_workflow[(provider, repo, workflow)] += 1
                self.by_actor[(get("actor"),)] += 1
        first = run.first
        if first is not None:
            first_status = first["status"]
            if first_status in VERDICT:
                self.first_decided += 1
                if first_status == SUCCESS:
                    self.first_succeeded += 1
        attempts = run.attempts
        if len(attempts) == 1:  # most runs: the final attempt is the only one, nothing was re-run
            self.attempts += 1
            if status in FAILED:
                self.failed_attempts += 1
            queue = get("queue_s")
            if queue is not None:
                self.run_queues.append(queue)
        else:
            self.attempts += len(attempts)
            for attempt in attempts:
                if attempt["status"] in FAILED:
                    self.failed_attempts += 1
                queue = attempt.get("queue_s")
                if queue is not None:
                    self.run_queues.append(queue)
            for attempt in attempts[:-1]:  # every completed attempt but the final one
                self.reruns.append(attempt.get("duration_s") or 0.0)
        if run.jobs:
            self._add_jobs(run, provider, repo, workflow, get("sha"), categories)

    def _add_jobs(
        self,
        run: RunAttempts,
        provider: str,
        repo: str,
        workflow: Any,
        sha: Any,
        categories: Mapping[Any, str] | None,
    ) -> None:
        gitlab = provider == "gitlab"
        outcomes = self.outcomes
        outcome = outcomes.get
        job_queues = self.job_queues
        for job in run.jobs:
            queue = job[_QUEUE]
            if queue is not None:
                job_queues.append(queue)
            status = job[_STATUS]
            if status == SUCCESS:
                key = (provider, repo, workflow, job[_NAME], sha)
                outcomes[key] = outcome(key, 0) | 1
            elif status in FAILED:
                name = job[_NAME]
                if not job[_ALLOW_FAILURE]:
                    self.by_job[(provider, repo, workflow, name)] += 1
                    self.by_category[(_job_category(job[_JOB_ID], provider, categories),)] += 1
                key = (provider, repo, workflow, name, sha)
                outcomes[key] = outcome(key, 0) | 2
            if gitlab and job[_RETRIED] and status not in (None, "running"):
                # a pipeline has one attempt: its retried jobs are the re-runs
                self.reruns.append(job[_DURATION] or 0.0)

    def merge(self, other: _Acc, *, outcomes: bool = True) -> None:
        for name in (
            "runs",
            "decided",
            "succeeded",
            "first_decided",
            "first_succeeded",
            "attempts",
            "failed_attempts",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("durations", "run_queues", "job_queues", "reruns"):
            getattr(self, name).extend(getattr(other, name))
        for name in ("by_status", "by_branch", "by_workflow", "by_actor", "by_job", "by_category"):
            getattr(self, name).update(getattr(other, name))
        if outcomes:
            for key, bits in other.outcomes.items():
                self.outcomes[key] = self.outcomes.get(key, 0) | bits

    def sort_values(self) -> None:
        """Sort the value lists in place (percentiles read them sorted)."""
        self.durations.sort()
        self.run_queues.sort()
        self.job_queues.sort()

    def flaky(self) -> dict[str, Any]:
        shas_of = Counter(map(_JOB_OF, self.outcomes))  # SHAs each job ran on
        flaky_on: dict[tuple[Any, ...], list[str]] = defaultdict(list)
        for key in [key for key, bits in self.outcomes.items() if bits == 3]:
            flaky_on[key[:4]].append(str(key[4]))
        listed = [
            {
                "provider": provider,
                "repo": repo,
                "workflow": workflow,
                "job": name,
                "flaky_shas": len(shas),
                "shas": shas_of[(provider, repo, workflow, name)],
                "rate": len(shas) / shas_of[(provider, repo, workflow, name)],
                "flaky_on": sorted(shas),
            }
            for (provider, repo, workflow, name), shas in flaky_on.items()
        ]
        listed.sort(key=_flaky_order)
        flaky_pairs = sum(j["flaky_shas"] for j in listed)
        return {"jobs": listed, "rate": ratio(flaky_pairs, len(self.outcomes))}

    def failures(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "branch": _counted(self.by_branch, ("provider", "repo", "branch")),
            "workflow": _counted(self.by_workflow, ("provider", "repo", "workflow")),
            "actor": _counted(self.by_actor, ("actor",)),
            "job": _counted(self.by_job, ("provider", "repo", "workflow", "job")),
            "category": _counted(self.by_category, ("category",)),
        }


#: (provider, repo, workflow, job name) of an outcome key (provider, repo, workflow, job name, sha)
_JOB_OF = itemgetter(0, 1, 2, 3)


def _flaky_order(job: Mapping[str, Any]) -> tuple[Any, ...]:
    return (-job["flaky_shas"], -job["rate"], job["provider"], job["repo"], str(job["workflow"]), str(job["job"]))


def _job_category(job_id: Any, provider: str, categories: Mapping[Any, str] | None) -> str:
    if not categories:
        return UNANALYSED
    job_id = str(job_id)
    found = categories.get((provider, job_id))
    if found is None and provider == "gitlab":
        found = categories.get(job_id)
    return found or UNANALYSED


def _counted(counter: Counter[Any], fields: Sequence[str]) -> list[dict[str, Any]]:
    """A counter as a JSON list, most failures first, then by key."""
    items = sorted(counter.items(), key=lambda kv: (-kv[1], tuple(_key_order(k) for k in kv[0])))
    return [{**dict(zip(fields, key, strict=True)), "failures": n} for key, n in items]


def _window_acc(
    runs: Iterable[Row] | RunIndex,
    jobs: Iterable[Row],
    start: dt.datetime,
    end: dt.datetime,
    categories: Mapping[Any, str] | None = None,
) -> _Acc:
    acc = _Acc()
    for run in _index(runs, jobs).window(start, end):
        acc.add(run, categories)
    return acc


# -- §3 figures, one function each -----------------------------------------------------------------
def success_rate(runs: Iterable[Row] | RunIndex, start: dt.datetime, end: dt.datetime) -> float | None:
    """Runs whose final attempt succeeded ÷ runs whose final attempt succeeded, failed or timed out.

    Cancelled, skipped and ``other`` runs are in neither number.
    """
    acc = _window_acc(runs, (), start, end)
    return ratio(acc.succeeded, acc.decided)


def first_attempt_success_rate(runs: Iterable[Row] | RunIndex, start: dt.datetime, end: dt.datetime) -> float | None:
    """As :func:`success_rate`, judged on attempt 1 of each run of the window instead of the final one.

    A run re-run green counts as a success here only if its first attempt already was one. A run whose
    attempt 1 is not in the data (or not completed) is left out.
    """
    acc = _window_acc(runs, (), start, end)
    return ratio(acc.first_succeeded, acc.first_decided)


def attempt_failure_rate(runs: Iterable[Row] | RunIndex, start: dt.datetime, end: dt.datetime) -> float | None:
    """Failed or timed-out attempts ÷ all completed attempts (cancelled and skipped ones included) of
    the window's runs."""
    acc = _window_acc(runs, (), start, end)
    return ratio(acc.failed_attempts, acc.attempts)


def duration_stats(runs: Iterable[Row] | RunIndex, start: dt.datetime, end: dt.datetime) -> dict[str, float | None]:
    """p50, p90 and max of the final attempt's ``duration_s``, over the window's runs with a verdict."""
    durations = sorted(_window_acc(runs, (), start, end).durations)
    return {
        "p50": _sorted_percentile(durations, 0.5),
        "p90": _sorted_percentile(durations, 0.9),
        "max": durations[-1] if durations else None,
    }


def queue_stats(
    runs: Iterable[Row] | RunIndex, jobs: Iterable[Row], start: dt.datetime, end: dt.datetime
) -> dict[str, float | None]:
    """p50 and p90 of the ``queue_s`` of every completed attempt (``run_*``) and of every job of those
    attempts (``job_*``) in the window; executions without a queue time are left out."""
    acc = _window_acc(runs, jobs, start, end)
    return {
        "run_p50": percentile(acc.run_queues, 0.5),
        "run_p90": percentile(acc.run_queues, 0.9),
        "job_p50": percentile(acc.job_queues, 0.5),
        "job_p90": percentile(acc.job_queues, 0.9),
    }


def rerun_minutes(runs: Iterable[Row] | RunIndex, jobs: Iterable[Row], start: dt.datetime, end: dt.datetime) -> float:
    """Minutes spent in non-final attempts of the window's runs: the ``duration_s`` of every completed
    attempt before the final one, and for GitLab of every retried job (its job-level attempts). 0 when
    nothing was re-run."""
    return math.fsum(_window_acc(runs, jobs, start, end).reruns) / 60.0


def failures_by(
    runs: Iterable[Row] | RunIndex,
    jobs: Iterable[Row],
    start: dt.datetime,
    end: dt.datetime,
    *,
    categories: Mapping[Any, str] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Failures of the window grouped five ways (lists, most failures first, then by key).

    ``branch`` (per provider and repo), ``workflow`` (per provider and repo) and ``actor``: runs whose
    final attempt failed or timed out (the actor of that attempt: GitHub ``triggering_actor`` else
    ``actor``, GitLab ``user.username``). ``job`` (per provider, repo, workflow) and ``category``: every
    failed or timed-out job execution of the window's attempts, GitLab retried jobs included, jobs
    allowed to fail excluded. ``categories`` maps ``(provider, job_id)`` (or a bare GitLab job id) to the
    category ``ci_failure_triage`` stored for that job; jobs without one are ``unanalysed``.
    """
    return _window_acc(runs, jobs, start, end, categories).failures()


def flaky_jobs(
    runs: Iterable[Row] | RunIndex, jobs: Iterable[Row], start: dt.datetime, end: dt.datetime
) -> dict[str, Any]:
    """Flaky jobs of the window and the overall flaky rate.

    A job (provider, repo, workflow, job name) is flaky on a commit SHA when, among its executions in
    the window's runs (every attempt, GitLab retried jobs included, a run re-run green too), at least
    one failed or timed out and at least one succeeded on that same SHA. Failing on one SHA and passing
    on another is not flaky. The job's rate = SHAs it was flaky on ÷ SHAs it ran on (ran = had a
    success, failure or timed-out execution; jobs allowed to fail count too). ``rate`` overall = flaky
    (job, SHA) pairs ÷ all (job, SHA) pairs; ``jobs`` lists the jobs flaky at least once, most flaky SHAs
    first, with the SHAs (``flaky_on``).
    """
    return _window_acc(runs, jobs, start, end).flaky()


# -- red streaks and MTTR --------------------------------------------------------------------------
#: What red streaks read of a run's final attempt: ``(finished_at, status, run_number, run_id, url)``.
StreakRecord = tuple[dt.datetime, str, Any, Any, Any]
_AT, _VERDICT, _RUN_NUMBER, _RUN_ID, _URL = range(5)


class _Streak:
    __slots__ = ("_shown", "failures", "fixed_by", "key", "start_known", "times")

    def __init__(self, key: tuple[Any, ...], first: StreakRecord, start_known: bool) -> None:
        self.key = key
        self.failures: list[StreakRecord] = [first]
        self.times: list[dt.datetime] = [first[_AT]]
        self.fixed_by: StreakRecord | None = None
        self.start_known = start_known
        self._shown: tuple[dict[str, Any], tuple[Any, ...], str | None] | None = None

    def shown(self) -> tuple[dict[str, Any], tuple[Any, ...], str | None]:
        """Its key as a dict of :data:`GROUP_FIELDS`, the key's sort order and its start as ISO text
        (the same in every window and group it is listed in: made once)."""
        if self._shown is None:
            self._shown = (
                dict(zip(GROUP_FIELDS, self.key, strict=True)),
                tuple(_key_order(v) for v in self.key),
                _iso(self.times[0]),
            )
        return self._shown


def _run_order(record: StreakRecord) -> tuple[Any, ...]:
    """Order of completion; equal finish times: the lower run number, then the lower id, first."""
    number = record[_RUN_NUMBER]
    return (record[_AT], -1 if number is None else number, _id_order(record[_RUN_ID]))


def _by_completion(sequence: list[StreakRecord]) -> None:
    """Sort final attempts in :func:`_run_order` (by finish time; the full key only where times tie)."""
    sequence.sort(key=_finished_at)
    times = list(map(_finished_at, sequence))
    if not any(map(eq, times, islice(times, 1, None))):  # no two finished at the same time (the usual case)
        return
    position = 0
    while position < len(sequence) - 1:
        tie_end = position + 1
        while tie_end < len(sequence) and sequence[tie_end][_AT] == sequence[position][_AT]:
            tie_end += 1
        if tie_end - position > 1:
            sequence[position:tie_end] = sorted(sequence[position:tie_end], key=_run_order)
        position = tie_end


_finished_at = itemgetter(_AT)


def _walk_streaks(
    index: RunIndex, until: dt.datetime, history_start: dt.datetime | None, history_end: dt.datetime
) -> list[_Streak]:
    """Every red streak of the runs finished before ``until``, per (provider, repo, workflow, branch)."""
    sequences: dict[tuple[Any, ...], list[StreakRecord]] = defaultdict(list)
    for run in index.runs.values():
        final = run.final
        status = final["status"]
        if status in VERDICT and final["finished_at"] < until:
            provider, repo, _ = run.key
            sequences[(provider, repo, final.get("workflow"), final.get("branch"))].append(
                (final["finished_at"], status, final.get("run_number"), final["run_id"], final.get("url"))
            )
    return walk_streaks(sequences, history_start, history_end)


def walk_streaks(
    sequences: Mapping[tuple[Any, ...], list[StreakRecord]],
    history_start: dt.datetime | None,
    history_end: dt.datetime,
) -> list[_Streak]:
    """The red streaks of the final attempts of runs with a verdict, per (provider, repo, workflow, branch)
    key, as :data:`StreakRecord` (:func:`red_streaks` explains the rules; each list is sorted in place):
    what :func:`compute_windows` walks over its runs, and :mod:`.series` over a report's history."""
    streaks: list[_Streak] = []
    for key, sequence in sequences.items():
        _by_completion(sequence)
        current: _Streak | None = None
        for position, final in enumerate(sequence):
            if final[_VERDICT] != SUCCESS:
                if current is None:
                    known = position > 0 or history_start is None or final[_AT] >= history_end
                    current = _Streak(key, final, known)
                    streaks.append(current)
                else:
                    current.failures.append(final)
                    current.times.append(final[_AT])
            elif current is not None:  # a success ends the streak
                current.fixed_by = final
                current = None
    return streaks


def _streaks_in(streaks: Iterable[_Streak], start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    ended: list[tuple[tuple[Any, ...], dict[str, Any]]] = []  # (sort key, entry)
    still_open: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    for streak in streaks:
        began = streak.times[0]
        if began >= end:
            continue
        fixed = streak.fixed_by
        fixed_at = fixed[_AT] if fixed is not None else None
        key, order, started_at = streak.shown()
        if fixed is not None and fixed_at is not None and start <= fixed_at < end:
            ended_at = _iso(fixed_at)
            entry = {
                **key,
                "started_at": started_at,
                "ended_at": ended_at,
                "length_s": _seconds(began, fixed_at),
                "failed_runs": len(streak.failures),
                "start_known": streak.start_known,
                "first_run_id": str(streak.failures[0][_RUN_ID]),
                "fixed_by_run_id": str(fixed[_RUN_ID]),
            }
            ended.append(((ended_at, *order), entry))
        elif fixed_at is None or fixed_at >= end:  # still red at the window's end
            failed = bisect_left(streak.times, end)  # the failures before the end
            last = streak.failures[failed - 1]
            entry = {
                **key,
                "started_at": started_at,
                "age_s": _seconds(began, end),
                "failed_runs": failed,
                "start_known": streak.start_known,
                "first_run_id": str(streak.failures[0][_RUN_ID]),
                "last_run_id": str(last[_RUN_ID]),
                "last_run_url": last[_URL],
            }
            still_open.append((order, entry))
    # by end time, then key / by key (stable: the order of the streaks given where those are equal)
    ended.sort(key=_SORT_KEY)
    still_open.sort(key=_SORT_KEY)
    return {
        "mttr_s": median(entry["length_s"] for _, entry in ended if entry["start_known"]),
        "ended": [entry for _, entry in ended],
        "open": [entry for _, entry in still_open],
    }


_SORT_KEY = itemgetter(0)


def red_streaks(
    runs: Iterable[Row] | RunIndex,
    start: dt.datetime,
    end: dt.datetime,
    *,
    history_start: dt.datetime | None = None,
    history_end: dt.datetime | None = None,
) -> dict[str, Any]:
    """Red streaks per (provider, repo, workflow, branch) and MTTR (red → green) for the window.

    Give every run up to ``end``, including the history before ``start`` (a streak may have started
    long before the window). The runs of a key are taken in the order their final attempts completed
    (ties: lower run number, then lower id, first); only verdicts count, so cancelled, skipped and
    ``other`` runs neither start nor end a streak. A streak starts at the completion of a failed or
    timed-out run whose previous counted run was a success (or that has none); it ends at the
    completion of the next successful run. Its length is end − start.

    Returns ``mttr_s`` (the median length of the streaks that **ended** inside ``[start, end)``),
    ``ended`` (those streaks) and ``open`` (streaks not ended by ``end``, with their age at ``end`` and
    the failed runs so far).

    ``history_start``: where the history given begins (``None``: it is all of it); ``history_end``: where
    it ends (default ``start``). When the earliest run given for a key is a failure inside the history,
    the key may already have been red before the history began: that streak is marked
    ``start_known: False`` (its length or age is a lower bound) and left out of the median. A key whose
    first run given is a failure after the history starts a streak there ("there was none" before it).
    """
    index = _index(runs)
    return _streaks_in(_walk_streaks(index, end, history_start, history_end or start), start, end)


# -- DORA (§4) -------------------------------------------------------------------------------------
def deployment_time(deployment: Row) -> dt.datetime | None:
    """When a deployment happened: the time of its final status (``finished_at``), else its creation."""
    return deployment.get("finished_at") or deployment.get("created_at")


def environment_matches(environment: str | None, environments: str | Collection[str] | None) -> bool:
    """Whether an environment is in scope: ``environments`` is a regular expression searched in the
    name (default :data:`DEFAULT_ENVIRONMENTS`), a collection of exact names, or ``None`` for all."""
    if environments is None:
        return True
    if isinstance(environments, str):
        return re.search(environments, environment or "") is not None
    return environment in environments


def deployment_frequency_band(per_day: float | None) -> str | None:
    """2023 band of deployment frequency (deployments per day): ``elite`` on demand (≥ 1 a day),
    ``high`` daily–weekly (≥ 1 a week), ``medium`` weekly–monthly (≥ 1 in 30 days), else ``low`` (the
    2023 table gives Low the same "weekly–monthly" as Medium; less than monthly is read as Low)."""
    if per_day is None:
        return None
    if per_day >= 1.0:
        return "elite"
    if per_day >= 1.0 / 7.0:
        return "high"
    if per_day >= 1.0 / 30.0:
        return "medium"
    return "low"


def lead_time_band(seconds: float | None) -> str | None:
    """2023 band of change lead time: ``elite`` < 1 day, ``high`` < 1 week, ``medium`` < 30 days, else
    ``low`` (each edge belongs to the slower band: exactly 1 day is ``high``)."""
    return _band_below(seconds, (DAY_S, 7 * DAY_S, 30 * DAY_S))


def change_failure_band(rate: float | None) -> str | None:
    """2023 band of change failure rate (DevLake's reading of the 2023 table): ``elite`` ≤ 5 %,
    ``high`` ≤ 10 %, ``medium`` ≤ 15 %, else ``low`` (each edge belongs to the better band)."""
    if rate is None:
        return None
    for band, limit in (("elite", 0.05), ("high", 0.10), ("medium", 0.15)):
        if rate <= limit + 1e-12:
            return band
    return "low"


def recovery_time_band(seconds: float | None) -> str | None:
    """2023 band of failed deployment recovery time: ``elite`` < 1 hour, ``high`` < 1 day, ``medium``
    < 1 week, else ``low`` (DevLake closes the 2023 table's gap between a week and a month the same way;
    exactly 1 hour is ``high``)."""
    return _band_below(seconds, (3600.0, DAY_S, 7 * DAY_S))


def _band_below(value: float | None, limits: tuple[float, float, float]) -> str | None:
    if value is None:
        return None
    for band, limit in zip(("elite", "high", "medium"), limits, strict=True):
        if value < limit:
            return band
    return "low"


def dora_bands(
    deployments_per_day: float | None,
    lead_time_s: float | None,
    change_failure_rate: float | None,
    recovery_time_s: float | None,
) -> dict[str, str | None]:
    """The 2023 band of each key (``health-score-anchors.md`` §4.3); ``None`` where the key has no value."""
    return {
        "deployment_frequency": deployment_frequency_band(deployments_per_day),
        "lead_time": lead_time_band(lead_time_s),
        "change_failure_rate": change_failure_band(change_failure_rate),
        "recovery_time": recovery_time_band(recovery_time_s),
    }


def _deployment_order(deployment: Row) -> tuple[Any, ...]:
    when = deployment_time(deployment)
    return (when, deployment.get("created_at") or when, _id_order(deployment["deployment_id"]))


def dora(
    deployments: Iterable[Row],
    start: dt.datetime,
    end: dt.datetime,
    *,
    commit_times: Mapping[Any, Sequence[dt.datetime]] | None = None,
    incidents: Iterable[Row] | None = None,
    environments: str | Collection[str] | None = DEFAULT_ENVIRONMENTS,
    as_of: dt.datetime | None = None,
) -> dict[str, Any] | None:
    """The DORA four keys of the window, with rollbacks and the 2023 bands; ``None`` without deployments.

    A *deployment* is a deployment with status ``success`` to an environment in scope (see
    :func:`environment_matches`), at :func:`deployment_time`; each environment of each repository is its
    own sequence, in time order (ties: created first, then lower id). Give the deployments before the
    window too (previous SHAs) and, for the change failure rate, those after it.

    * ``deployments_per_day`` = deployments in the window ÷ its length in days; ``deployment_days`` =
      UTC days with at least one.
    * ``lead_time_p50_s``: median over every (deployment in the window, commit it added) of deployment
      time − commit author time. ``commit_times`` maps ``(provider, repo, deployment_id)`` (or the bare
      deployment id) to the author times of the commits the deployment added (compare API, previous
      successful deployment's SHA → this one); without it the lead time is ``None``.
    * ``change_failure_rate`` = deployments of the window that were followed, before the next
      successful deployment to their environment, by a failed deployment, by a rollback (the next
      successful deployment is one), or by an incident (``incidents``: rows with provider, repo and
      ``created_at``) ÷ deployments of the window.
    * ``rollbacks``: deployments of the window whose SHA equals the SHA of an earlier deployment to the
      same environment other than the previous one, and differs from the previous one's (deploying the
      current code again is not a rollback).
    * ``recovery_time_p50_s``: median over recoveries that completed in the window of the first failed
      deployment after a success → the next successful deployment to that environment (several failures
      in a row are one recovery, timed from the first).
    * ``as_of``: ignore everything from this time on (a figure as known at that time: ``ci_daily``
      judges a day with what was known at its end, so a re-run or backfill gives the same row).
    """
    acc = dora_acc(
        deployments,
        start,
        end,
        commit_times=commit_times,
        incidents=incidents,
        environments=environments,
        as_of=as_of,
    )
    return None if acc is None else dora_result(acc, start, end)


def dora_acc(
    deployments: Iterable[Row],
    start: dt.datetime,
    end: dt.datetime,
    *,
    commit_times: Mapping[Any, Sequence[dt.datetime]] | None = None,
    incidents: Iterable[Row] | None = None,
    environments: str | Collection[str] | None = DEFAULT_ENVIRONMENTS,
    as_of: dt.datetime | None = None,
) -> _DoraAcc | None:
    """What :func:`dora` counts, before the medians and bands (``None`` without deployments in scope):
    the accumulators of deployments that share no (repository, environment) add up with
    :meth:`_DoraAcc.merge` to those of all of them."""
    return _dora_accs(
        deployments,
        [(start, end)],
        commit_times=commit_times,
        incidents=incidents,
        environments=environments,
        as_of=as_of,
    )[0]


def dora_windows(
    deployments: Iterable[Row],
    windows: Sequence[tuple[dt.datetime, dt.datetime]],
    *,
    commit_times: Mapping[Any, Sequence[dt.datetime]] | None = None,
    incidents: Iterable[Row] | None = None,
    environments: str | Collection[str] | None = DEFAULT_ENVIRONMENTS,
    as_of: dt.datetime | None = None,
) -> list[dict[str, Any] | None]:
    """:func:`dora` of each window, from one walk over the deployments (their order, SHAs and failures do
    not depend on the window: only what is counted does)."""
    accs = _dora_accs(
        deployments, windows, commit_times=commit_times, incidents=incidents, environments=environments, as_of=as_of
    )
    return [
        None if acc is None else dora_result(acc, start, end) for acc, (start, end) in zip(accs, windows, strict=True)
    ]


def _dora_accs(
    deployments: Iterable[Row],
    windows: Sequence[tuple[dt.datetime, dt.datetime]],
    *,
    commit_times: Mapping[Any, Sequence[dt.datetime]] | None,
    incidents: Iterable[Row] | None,
    environments: str | Collection[str] | None,
    as_of: dt.datetime | None,
) -> list[_DoraAcc | None]:
    """:func:`dora_acc` of each window (all ``None`` without deployments in scope)."""
    matches: dict[Any, bool] = {}
    in_scope = []
    for d in deployments:
        environment = d.get("environment")
        matched = matches.get(environment)
        if matched is None:
            matched = matches[environment] = environment_matches(environment, environments)
        when = deployment_time(d)
        if matched and when is not None and (as_of is None or when < as_of):
            in_scope.append(d)
    if not in_scope:
        return [None for _ in windows]
    incident_times: dict[tuple[str, str], list[dt.datetime]] = defaultdict(list)
    for incident in incidents or ():
        when = incident.get("created_at")
        if when is not None and (as_of is None or when < as_of):
            incident_times[(incident["provider"], incident["repo"])].append(when)
    for times in incident_times.values():
        times.sort()
    sequences: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for deployment in in_scope:
        sequences[(deployment["provider"], deployment["repo"], deployment.get("environment") or "")].append(deployment)

    accs = [_DoraAcc() for _ in windows]
    for (provider, repo, environment), sequence in sequences.items():
        sequence.sort(key=_deployment_order)
        _walk_environment(sequence, windows, incident_times.get((provider, repo), []), commit_times, accs)
        for acc in accs:
            acc.environments.add(environment)
    return list(accs)


def dora_result(acc: _DoraAcc, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """:func:`dora`'s figures of the window ``[start, end)`` from its accumulator."""
    days = (end - start).total_seconds() / DAY_S
    per_day = acc.deployments / days if days > 0 else None
    lead = median(acc.lead_times)
    cfr = ratio(acc.failed_changes, acc.deployments)
    recovery = median(acc.recoveries)
    return {
        "environments": sorted(acc.environments),
        "deployments": acc.deployments,
        "deployments_per_day": per_day,
        "deployment_days": len(acc.days),
        "lead_time_p50_s": lead,
        "lead_time_commits": len(acc.lead_times),
        "change_failure_rate": cfr,
        "failed_changes": acc.failed_changes,
        "failed_deployments": acc.failed_deployments,
        "rollbacks": len(acc.rollbacks),
        "rollback_deployments": sorted(acc.rollbacks, key=_rollback_order),
        "recovery_time_p50_s": recovery,
        "recoveries": len(acc.recoveries),
        "bands": dora_bands(per_day, lead, cfr, recovery),
    }


def _rollback_order(rollback: Mapping[str, Any]) -> tuple[Any, ...]:
    return (rollback["at"] or "", rollback["provider"], rollback["repo"], str(rollback["environment"]))


class _DoraAcc:
    def __init__(self) -> None:
        self.environments: set[str] = set()
        self.deployments = 0
        self.days: set[dt.date] = set()
        self.lead_times: list[float] = []
        self.failed_changes = 0
        self.failed_deployments = 0
        self.rollbacks: list[dict[str, Any]] = []
        self.recoveries: list[float] = []

    def merge(self, other: _DoraAcc) -> None:
        """Add the counts of deployments to other (repository, environment) sequences."""
        self.environments |= other.environments
        self.deployments += other.deployments
        self.days |= other.days
        self.lead_times += other.lead_times
        self.failed_changes += other.failed_changes
        self.failed_deployments += other.failed_deployments
        self.rollbacks += other.rollbacks
        self.recoveries += other.recoveries


def _commit_times_of(deployment: Row, commit_times: Mapping[Any, Sequence[dt.datetime]] | None) -> Sequence[Any]:
    """The author times of the commits a deployment added: from ``commit_times`` when given, else from
    the row's own ``commits`` (``[{"sha", "authored_at"}]``, what the collector stores)."""
    if commit_times:
        deployment_id = str(deployment["deployment_id"])
        found = commit_times.get((deployment["provider"], deployment["repo"], deployment_id))
        if found is None:
            found = commit_times.get(deployment_id)
        if found is not None:
            return found
    times = []
    for commit in deployment.get("commits") or ():
        try:
            when = dt.datetime.fromisoformat(str(commit.get("authored_at")))
        except (TypeError, ValueError, AttributeError):
            continue  # a commit without a readable author time tells nothing about lead time
        times.append(when if when.tzinfo else when.replace(tzinfo=dt.UTC))
    return times


def _walk_environment(
    sequence: Sequence[Row],
    windows: Sequence[tuple[dt.datetime, dt.datetime]],
    incidents: Sequence[dt.datetime],
    commit_times: Mapping[Any, Sequence[dt.datetime]] | None,
    accs: Sequence[_DoraAcc],
) -> None:
    """One environment's deployments in order, counted in the accumulator of each window they are in."""
    successes = [d for d in sequence if d.get("status") == SUCCESS]
    success_times: list[dt.datetime] = [deployment_time(d) or windows[0][0] for d in successes]  # never None here
    failed_change: set[int] = set()  # indexes into successes
    for when in incidents:  # an incident marks the latest successful deployment before it
        position = bisect_right(success_times, when) - 1
        if position >= 0:
            failed_change.add(position)

    previous: int | None = None  # index of the previous successful deployment
    older_shas: set[Any] = set()  # SHAs of successful deployments before the previous one
    first_failure: dt.datetime | None = None
    for deployment in sequence:
        when = deployment_time(deployment)
        assert when is not None
        inside = [acc for acc, (start, end) in zip(accs, windows, strict=True) if start <= when < end]
        status = deployment.get("status")
        if status == "failure":
            for acc in inside:
                acc.failed_deployments += 1
            if previous is not None:
                failed_change.add(previous)
            if first_failure is None:
                first_failure = when
        elif status == SUCCESS:
            current = previous + 1 if previous is not None else 0
            sha = deployment.get("sha")
            previous_sha = successes[previous].get("sha") if previous is not None else None
            rollback = previous is not None and sha is not None and sha != previous_sha and sha in older_shas
            if rollback and previous is not None:
                failed_change.add(previous)
            lead_times = (
                [(when - t).total_seconds() for t in _commit_times_of(deployment, commit_times)] if inside else []
            )
            for acc in inside:
                acc.deployments += 1
                acc.days.add(when.astimezone(dt.UTC).date())
                acc.lead_times.extend(lead_times)
                if rollback:
                    acc.rollbacks.append(
                        {
                            "provider": deployment["provider"],
                            "repo": deployment["repo"],
                            "environment": deployment.get("environment"),
                            "deployment_id": str(deployment["deployment_id"]),
                            "sha": sha,
                            "at": _iso(when),
                        }
                    )
                if first_failure is not None:
                    acc.recoveries.append((when - first_failure).total_seconds())
            if previous_sha is not None:
                older_shas.add(previous_sha)
            previous, first_failure = current, None
    for acc, (start, end) in zip(accs, windows, strict=True):
        acc.failed_changes += sum(1 for i in failed_change if start <= success_times[i] < end)


# -- everything at once ----------------------------------------------------------------------------
@dataclasses.dataclass
class Figures:
    """Every figure of one window (and group): JSON-serialisable through :meth:`to_dict`, the value
    stored in ``ci_daily.figures`` and shown in reports. Seconds as floats, times as ISO-8601 text,
    rates as fractions (0.0–1.0); ``None`` = no data."""

    start: str
    end: str
    runs: int = 0
    runs_by_status: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    success_rate: float | None = None
    first_attempt_success_rate: float | None = None
    attempts: int = 0
    failed_attempts: int = 0
    attempt_failure_rate: float | None = None
    duration_p50_s: float | None = None
    duration_p90_s: float | None = None
    duration_max_s: float | None = None
    queue_run_p50_s: float | None = None
    queue_run_p90_s: float | None = None
    queue_job_p50_s: float | None = None
    queue_job_p90_s: float | None = None
    rerun_minutes: float = 0.0
    rerun_attempts: int = 0
    failures_by_branch: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    failures_by_workflow: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    failures_by_actor: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    failures_by_job: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    failures_by_category: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    mttr_s: float | None = None
    streaks_ended: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    open_streaks: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    flaky_jobs: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    flaky_rate: float | None = None
    dora: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A deep copy as plain dicts and lists (what :func:`dataclasses.asdict` gives, without its
        generic per-value machinery: a summary holds tens of thousands of list entries)."""
        return {name: _copied(getattr(self, name)) for name in _FIGURE_FIELDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Figures:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def is_empty(self) -> bool:
        """Nothing to show: no runs, no open streak, no deployment activity."""
        return not self.runs and not self.open_streaks and not dora_active(self.dora)


_FIGURE_FIELDS = tuple(f.name for f in dataclasses.fields(Figures))
_ATOMIC = frozenset({str, int, float, bool, type(None)})


def _copied(value: Any) -> Any:
    """A deep copy of JSON-like data: dicts with text keys and lists are rebuilt, immutable scalars
    shared (as :func:`copy.deepcopy` does), anything else deep-copied."""
    kind = type(value)
    if kind in _ATOMIC:
        return value
    if kind is list:
        return [v if type(v) in _ATOMIC else _copied(v) for v in value]
    if kind is dict and all(type(k) is str for k in value):
        return {k: v if type(v) in _ATOMIC else _copied(v) for k, v in value.items()}
    return copy.deepcopy(value)


def dora_active(dora_figures: Mapping[str, Any] | None) -> bool:
    """Whether a DORA result had deployments or failed deployments in its window."""
    return bool(dora_figures and (dora_figures["deployments"] or dora_figures["failed_deployments"]))


def _figures(
    acc: _Acc,
    window: Window,
    streaks: Iterable[_Streak],
    dora_figures: dict[str, Any] | None,
    flaky: dict[str, Any] | None = None,
) -> Figures:
    start, end = window
    durations = sorted(acc.durations)
    run_queues = sorted(acc.run_queues)
    job_queues = sorted(acc.job_queues)
    failures = acc.failures()
    flaky = flaky or acc.flaky()
    streak_figures = _streaks_in(streaks, start, end)
    return Figures(
        start=_iso(start) or "",
        end=_iso(end) or "",
        runs=acc.runs,
        runs_by_status={s: acc.by_status.get(s, 0) for s in STATUSES},
        success_rate=ratio(acc.succeeded, acc.decided),
        first_attempt_success_rate=ratio(acc.first_succeeded, acc.first_decided),
        attempts=acc.attempts,
        failed_attempts=acc.failed_attempts,
        attempt_failure_rate=ratio(acc.failed_attempts, acc.attempts),
        duration_p50_s=_sorted_percentile(durations, 0.5),
        duration_p90_s=_sorted_percentile(durations, 0.9),
        duration_max_s=durations[-1] if durations else None,
        queue_run_p50_s=_sorted_percentile(run_queues, 0.5),
        queue_run_p90_s=_sorted_percentile(run_queues, 0.9),
        queue_job_p50_s=_sorted_percentile(job_queues, 0.5),
        queue_job_p90_s=_sorted_percentile(job_queues, 0.9),
        rerun_minutes=math.fsum(acc.reruns) / 60.0,
        rerun_attempts=len(acc.reruns),
        failures_by_branch=failures["branch"],
        failures_by_workflow=failures["workflow"],
        failures_by_actor=failures["actor"],
        failures_by_job=failures["job"],
        failures_by_category=failures["category"],
        mttr_s=streak_figures["mttr_s"],
        streaks_ended=streak_figures["ended"],
        open_streaks=streak_figures["open"],
        flaky_jobs=flaky["jobs"],
        flaky_rate=flaky["rate"],
        dora=dora_figures,
    )


def _check_fields(group_by: Sequence[str]) -> tuple[str, ...]:
    for name in group_by:
        if name not in GROUP_FIELDS:
            raise ValueError(f"cannot group by {name!r}: use {', '.join(GROUP_FIELDS)}")
    return tuple(group_by)


def compute_windows(
    runs: Iterable[Row] | RunIndex,
    jobs: Iterable[Row] = (),
    *,
    windows: Sequence[Window],
    group_by: Sequence[str] = (),
    categories: Mapping[Any, str] | None = None,
    history_start: dt.datetime | None = None,
    history_end: dt.datetime | None = None,
    deployments: Iterable[Row] | None = None,
    commit_times: Mapping[Any, Sequence[dt.datetime]] | None = None,
    incidents: Iterable[Row] | None = None,
    environments: str | Collection[str] | None = DEFAULT_ENVIRONMENTS,
    dora_as_of: dt.datetime | None = None,
) -> tuple[list[Figures], dict[tuple[Any, ...], list[Figures]]]:
    """The figures of several windows, in total and per group, from one pass over the runs.

    Returns ``(total, groups)``: ``total[i]`` are the figures of ``windows[i]`` over every run given;
    ``groups[key][i]`` those of the runs whose ``group_by`` fields (of :data:`GROUP_FIELDS`, read from the
    run's final attempt) equal ``key``, for every key with runs, streaks or deployments given (the
    figures of a window may still be empty: see :meth:`Figures.is_empty`). Each figure is defined in
    the function of its name above. DORA (:func:`dora`) only when ``deployments`` is given, for groups
    only when they group by provider and/or repo (deployments have no workflow or branch). Red streaks
    use ``history_start`` / ``history_end`` (default: the earliest window start) as :func:`red_streaks`.
    """
    fields = _check_fields(group_by)
    if not windows:
        raise ValueError("no window given")
    for start, end in windows:
        if end <= start:
            raise ValueError(f"empty window: start {start} is not before end {end}")
    index = _index(runs, jobs)
    group_of = _group_key(fields)
    accs: dict[tuple[Any, ...], list[_Acc]] = {}
    for run in index.runs.values():
        finished = run.final["finished_at"]
        for position, (start, end) in enumerate(windows):
            if start <= finished < end:
                key = group_of(run)
                per_window = accs.get(key)
                if per_window is None:
                    per_window = accs[key] = [_Acc() for _ in windows]
                per_window[position].add(run, categories)
    # A job (provider, repo, workflow, name) lies in one group unless groups split workflows by branch:
    # then the total's flaky jobs are the groups' lists put together, without merging the outcomes.
    disjoint_jobs = bool(fields) and "branch" not in fields
    if fields:
        totals = [_Acc() for _ in windows]
        for per_window in accs.values():
            for total, acc in zip(totals, per_window, strict=True):
                acc.sort_values()  # the total's lists are then sorted runs, which sort fast
                total.merge(acc, outcomes=not disjoint_jobs)
    else:
        totals = accs.get((), [_Acc() for _ in windows])

    until = max(end for _, end in windows)
    earliest = min(start for start, _ in windows)
    streaks = _walk_streaks(index, until, history_start, history_end or earliest)
    streaks_of: dict[tuple[Any, ...], list[_Streak]] = defaultdict(list)
    for streak in streaks:
        named = dict(zip(GROUP_FIELDS, streak.key, strict=True))
        streaks_of[tuple(named[f] for f in fields)].append(streak)

    dora_options = {
        "commit_times": commit_times,
        "incidents": list(incidents) if incidents is not None else None,
        "environments": environments,
        "as_of": dora_as_of,
    }
    deployment_list = list(deployments) if deployments is not None else None
    deployments_of: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
    per_repo = deployment_list is not None and set(fields) <= {"provider", "repo"}
    if per_repo and deployment_list is not None:
        for d in deployment_list:
            deployments_of[tuple(d[f] for f in fields)].append(d)

    # Grouped by provider and/or repository, the groups' deployments are disjoint sequences: the total's
    # DORA is their accumulators added up, not a second walk over every deployment.
    total_dora: list[_DoraAcc | None] = [None for _ in windows]

    def dora_of(rows: list[Row] | None, position: int, *, total: bool = False) -> dict[str, Any] | None:
        start, end = windows[position]
        if rows is None:
            return None
        if total and per_repo and fields:
            merged = total_dora[position]
            return None if merged is None else dora_result(merged, start, end)
        acc = dora_acc(rows, start, end, **dora_options)
        if acc is None:
            return None
        if per_repo and fields:
            merged = total_dora[position]
            if merged is None:
                merged = total_dora[position] = _DoraAcc()
            merged.merge(acc)
        return dora_result(acc, start, end)

    groups: dict[tuple[Any, ...], list[Figures]] = {}
    if fields:
        for key in sorted(set(accs) | set(streaks_of) | set(deployments_of), key=_group_order):
            per_window = accs.get(key) or [_Acc() for _ in windows]
            group_deployments = deployments_of.get(key, []) if per_repo else None
            groups[key] = [
                _figures(acc, window, streaks_of.get(key, ()), dora_of(group_deployments, position))
                for position, (acc, window) in enumerate(zip(per_window, windows, strict=True))
            ]
    total_figures = []
    for position, (acc, window) in enumerate(zip(totals, windows, strict=True)):
        flaky = None
        if disjoint_jobs:
            listed = sorted((j for g in groups.values() for j in g[position].flaky_jobs), key=_flaky_order)
            pairs = sum(len(per_window[position].outcomes) for per_window in accs.values())
            flaky = {"jobs": listed, "rate": ratio(sum(j["flaky_shas"] for j in listed), pairs)}
        total_figures.append(_figures(acc, window, streaks, dora_of(deployment_list, position, total=True), flaky))
    return total_figures, groups


def _group_order(key: tuple[Any, ...]) -> tuple[tuple[int, str], ...]:
    return tuple(_key_order(v) for v in key)


def _group_key(fields: tuple[str, ...]) -> Any:
    """A function run -> its group key (fast paths for the usual groupings)."""
    if fields == ():
        return lambda run: ()
    if fields == ("provider", "repo"):
        return lambda run: run.key[:2]
    return lambda run: tuple(run.field(f) for f in fields)


def compute_figures(
    runs: Iterable[Row] | RunIndex,
    jobs: Iterable[Row] = (),
    *,
    start: dt.datetime,
    end: dt.datetime,
    categories: Mapping[Any, str] | None = None,
    history_start: dt.datetime | None = None,
    history_end: dt.datetime | None = None,
    deployments: Iterable[Row] | None = None,
    commit_times: Mapping[Any, Sequence[dt.datetime]] | None = None,
    incidents: Iterable[Row] | None = None,
    environments: str | Collection[str] | None = DEFAULT_ENVIRONMENTS,
    dora_as_of: dt.datetime | None = None,
) -> Figures:
    """All figures of ``[start, end)`` (each defined in the function of its name above). ``runs`` may
    hold history and later runs: the window rule picks the window's runs, red streaks read the history.
    DORA only when ``deployments`` is given (``None`` = not applicable)."""
    total, _ = compute_windows(
        runs,
        jobs,
        windows=[(start, end)],
        categories=categories,
        history_start=history_start,
        history_end=history_end,
        deployments=deployments,
        commit_times=commit_times,
        incidents=incidents,
        environments=environments,
        dora_as_of=dora_as_of,
    )
    return total[0]
