"""The CI figures of consecutive windows from one read of the store: a period and the periods before it,
as a report shows them (each figure with its change and an 8-period sparkline).

SQLAlchemy Core through :mod:`.analytics`, no Airflow. :func:`windows_figures` reads the rows of every
window at once (:func:`.analytics.reading`: the rows :func:`.analytics.load_rows` reads for ``[first
start, last end)``, as tuples, as they come) and returns each window's :class:`.figures.Figures`: the
values :func:`.figures.compute_windows` gives over those rows, window for window (the tests compare them
over seeded histories). Only the failure lists (``failures_by_branch``, ``_workflow``, ``_actor``,
``_job``, ``_category``) are left empty in the windows before the last ``detail`` ones: a report lists
the failures of its period, and the categories of older jobs are not read.

How, without a dict or an object per attempt and job (for 200 repositories x 8 weeks, 450,000 runs and
1.4 million jobs, those were most of a report's build time and memory):

* a run with one attempt (most) is added to its window as its row comes (what
  :class:`.figures.RunIndex` and :meth:`.figures._Acc.add` do, written out over the tuple); runs with
  several attempts are grouped and added at the end (:func:`_attempts`, :func:`_add`);
* each job is added as it comes (:meth:`.figures._Acc._add_jobs` over the tuple), its outcome in a
  tree per window (:data:`_Outcomes`: a run's jobs share all of the key but the job name);
* values for percentiles are kept as ``array("d")`` (no object each), re-run time is summed exactly
  (order-free) as in :mod:`.figures`;
* red streaks are walked once over the final attempts of every run read, the history included
  (:func:`.figures.walk_streaks`), DORA over all windows at once (:func:`.figures.dora_windows`), as
  ``compute_windows`` does; percentiles, rates and the failure lists come from the same code
  (:func:`.figures._figures`), the flaky jobs from the tree (:func:`_flaky`, as ``_Acc.flaky``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from array import array
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from itertools import chain
from typing import TYPE_CHECKING, Any

from devops_automation.ci_analytics import analytics
from devops_automation.ci_analytics.figures import (
    _STATUS_SET,
    DEFAULT_ENVIRONMENTS,
    FAILED,
    JOB_FIELDS,
    SUCCESS,
    VERDICT,
    Figures,
    StreakRecord,
    _Acc,
    _figures,
    _flaky_order,
    _job_category,
    dora_windows,
    percentile,
    ratio,
    walk_streaks,
)

if TYPE_CHECKING:
    from devops_automation.store import ResultsStore

Window = tuple[dt.datetime, dt.datetime]
RunKey = tuple[str, str, str]
VERDICTS = {status: status for status in VERDICT}

_C = {name: i for i, name in enumerate(analytics.RUN_COLUMNS)}
_ID, _PROVIDER, _REPO, _RUN_ID, _ATTEMPT = (_C[c] for c in ("id", "provider", "repo", "run_id", "attempt"))
_NUMBER, _WORKFLOW, _BRANCH, _SHA, _ACTOR = (_C[c] for c in ("run_number", "workflow", "branch", "sha", "actor"))
_STATUS, _FINISHED, _DURATION, _QUEUE, _URL = (_C[c] for c in ("status", "finished_at", "duration_s", "queue_s", "url"))
#: Where each :data:`.analytics.HISTORY_COLUMNS` value goes in a :data:`.analytics.RUN_COLUMNS` tuple.
_FROM_HISTORY = tuple(analytics.HISTORY_COLUMNS.index(c) if c in analytics.HISTORY_COLUMNS else None for c in _C)
_J_ID, _J_NAME, _J_STATUS, _J_DURATION, _J_QUEUE, _J_RETRIED, _J_ALLOW = (
    1 + JOB_FIELDS.index(c) for c in ("job_id", "name", "status", "duration_s", "queue_s", "retried", "allow_failure")
)
_J_ATTEMPT_DURATION = 1 + len(JOB_FIELDS)  # (reading's job_durations_from)


@dataclasses.dataclass
class WindowsFigures:
    """What :func:`windows_figures` gives."""

    #: the figures of each window, in the order of the windows (oldest first)
    totals: list[Figures]
    #: per (provider, repo, workflow) with runs in a detail window (the last ``detail``), for each detail
    #: window ``{"runs", "duration_p50_s", "duration_p90_s"}``: what the figures of that group give
    #: (:func:`.figures.compute_windows` with ``group_by=("provider", "repo", "workflow")``)
    workflows: dict[tuple[Any, ...], list[dict[str, Any]]]
    #: for each detail window, per (provider, repo, workflow, job name): the ``duration_s`` of the jobs with
    #: a verdict of every attempt that *completed* in the window (any attempt, final or not, of any run),
    #: in no particular order; the workflow is the attempt's
    job_durations: list[dict[tuple[Any, ...], list[float]]]


#: A window's job outcomes: (provider, repo, workflow) -> commit SHA -> job name -> 1 succeeded | 2 failed
#: (bits), the ``outcomes`` of :class:`.figures._Acc` as a tree: a run's jobs share all but the name.
_Outcomes = dict[tuple[Any, ...], dict[Any, dict[Any, int]]]


def _check_windows(windows: Sequence[Window], detail: int) -> list[Window]:
    out = [(analytics._aware(s, "window start"), analytics._aware(e, "window end")) for s, e in windows]
    if not out:
        raise ValueError("no window given")
    for (start, end), following in zip(out, [*out[1:], None], strict=True):
        if end <= start:
            raise ValueError(f"empty window: start {start} is not before end {end}")
        if following is not None and following[0] < end:
            raise ValueError(f"windows must be given oldest first, without overlapping: {end} > {following[0]}")
    if isinstance(detail, bool) or not isinstance(detail, int) or not 1 <= detail <= len(out):
        raise ValueError(f"detail must be a whole number from 1 to {len(out)} (the windows), got {detail!r}")
    return out


def _attempt_no(row: Sequence[Any]) -> int:
    return int(row[_ATTEMPT] or 1)


def _attempts(rows: list[Sequence[Any]]) -> tuple[list[Sequence[Any]], Sequence[Any], Sequence[Any] | None]:
    """A run's completed attempts in attempt order (the first row of an attempt number kept), its final
    and its first attempt (``None`` when attempt 1 is not there): as :class:`.figures.RunIndex`."""
    if len(rows) == 1:
        only = rows[0]
        number = only[_ATTEMPT]
        return rows, only, only if not number or number == 1 or int(number) == 1 else None
    ordered = sorted(rows, key=_attempt_no)
    seen: set[int] = set()
    unique = []
    for attempt in ordered:
        if _attempt_no(attempt) not in seen:
            seen.add(_attempt_no(attempt))
            unique.append(attempt)
    return unique, unique[-1], unique[0] if _attempt_no(unique[0]) == 1 else None


def _add_runs(
    got: analytics.RowTuples,
    windows: list[Window],
    older: int,
    accs: list[_Acc],
    outcomes: list[_Outcomes],
    sequences: dict[tuple[Any, ...], list[StreakRecord]],
    workflows: dict[tuple[Any, ...], list[list[Any]]],
) -> tuple[dict[Any, tuple[Any, ...]], dict[Any, tuple[int, tuple[Any, ...]]], list[Sequence[Any]]]:
    """Add every run whose final attempt finished in a window to that window (:func:`_add`; in the
    windows from ``older`` on, also its duration to ``workflows``), and the streak record of every final
    attempt with a verdict to ``sequences``. Returns what the jobs are counted by: ``ci_runs.id`` of each
    attempt of those runs -> ``(position, (provider, repo, workflow), the job outcomes of the run's
    commit in ``outcomes[position]``)``; each attempt that completed in a window from ``older`` on ->
    ``(that window - older, (provider, repo, workflow))`` (its job durations); and the attempts of the
    GitLab runs of those windows (their failure categories)."""
    starts = [start for start, _ in windows]
    ends = [end for _, end in windows]
    until = ends[-1]
    detail_from = starts[older]
    detail = len(windows) - older
    attempt_of: dict[Any, tuple[int, tuple[Any, ...]]] = {}
    slot_of: dict[Any, tuple[Any, ...]] = {}
    gitlab_attempts: list[Sequence[Any]] = []
    job_keys: dict[tuple[Any, ...], tuple[Any, ...]] = {}  # one tuple each, shared by its runs

    def add(
        key: RunKey,
        rows: Sequence[Sequence[Any]],
        attempts: list[Sequence[Any]],
        final: Sequence[Any],
        first: Sequence[Any] | None,
    ) -> None:
        """A run given by all its rows (``attempts``, ``final``, ``first``: :func:`_attempts`): one of
        several attempts, or one of the history (a red streak record only)."""
        finished, status = final[_FINISHED], final[_STATUS]
        if status in VERDICT and finished < until:
            status = VERDICTS[status]  # (one string for all; the URL is read for failures only)
            sequences[(key[0], key[1], final[_WORKFLOW], final[_BRANCH])].append(
                (finished, status, final[_NUMBER], final[_RUN_ID], final[_URL] if status != SUCCESS else None)
            )
        position = bisect_right(starts, finished) - 1
        if position < 0 or finished >= ends[position]:
            return
        job_key = (key[0], key[1], final[_WORKFLOW])
        job_key = job_keys.setdefault(job_key, job_key)
        by_sha = outcomes[position].get(job_key)
        if by_sha is None:
            by_sha = outcomes[position][job_key] = {}
        names = by_sha.get(final[_SHA])
        if names is None:
            names = by_sha[final[_SHA]] = {}
        slot = (position, job_key, names)
        for row in rows:
            if row[_ID] is not None:
                slot_of[row[_ID]] = slot
        if position >= older:
            group = workflows.get(job_key)
            if group is None:
                group = workflows[job_key] = [[0, []] for _ in range(detail)]
            group[position - older][0] += 1
            if status in VERDICT and final[_DURATION] is not None:
                group[position - older][1].append(final[_DURATION])
            if key[0] == "gitlab":
                gitlab_attempts.extend(rows)
        _add(accs[position], key, attempts, final, first, detail=position >= older)

    def durations_of(row: Sequence[Any]) -> None:
        finished = row[_FINISHED]
        if finished >= detail_from:
            position = bisect_right(starts, finished) - 1
            if finished < ends[position]:
                job_key = (row[_PROVIDER], row[_REPO], row[_WORKFLOW])
                attempt_of[row[_ID]] = (position - older, job_keys.setdefault(job_key, job_key))

    # runs of one attempt each (most): each row as it comes, :func:`add` and :func:`_add` written out (the
    # same steps, without a call and a tuple per run)
    by_status = [acc.by_status for acc in accs]
    durations = [acc.durations for acc in accs]
    run_queues = [acc.run_queues for acc in accs]
    counts = [[0, 0, 0, 0] for _ in accs]  # decided, succeeded, failed attempts, runs (first = final)
    for batch in got.runs:
        for row in batch:
            (
                row_id,
                provider,
                repo,
                run_id,
                _,
                number,
                workflow,
                branch,
                sha,
                actor,
                status,
                finished,
                duration,
                queue,
                url,
            ) = row
            if finished >= detail_from:
                durations_of(row)
            verdict = status in VERDICT
            if verdict and finished < until:
                status = VERDICTS[status]
                sequences[(provider, repo, workflow, branch)].append(
                    (finished, status, number, run_id, url if status != SUCCESS else None)
                )
            position = bisect_right(starts, finished) - 1
            if position < 0 or finished >= ends[position]:
                continue
            job_key = (provider, repo, workflow)
            job_key = job_keys.setdefault(job_key, job_key)
            by_sha = outcomes[position].get(job_key)
            if by_sha is None:
                by_sha = outcomes[position][job_key] = {}
            names = by_sha.get(sha)
            if names is None:
                names = by_sha[sha] = {}
            slot_of[row_id] = (position, job_key, names)
            count = counts[position]
            count[3] += 1
            by_status[position][status if status in _STATUS_SET else "other"] += 1
            if verdict:
                count[0] += 1
                if status == SUCCESS:
                    count[1] += 1
                elif status in FAILED:
                    count[2] += 1
                if duration is not None:
                    durations[position].append(duration)
            if queue is not None:
                run_queues[position].append(queue)
            if position >= older:
                group = workflows.get(job_key)
                if group is None:
                    group = workflows[job_key] = [[0, []] for _ in range(detail)]
                group[position - older][0] += 1
                if verdict and duration is not None:
                    group[position - older][1].append(duration)
                if provider == "gitlab":
                    gitlab_attempts.append(row)
                if verdict and status != SUCCESS:
                    accs[position].by_branch[(provider, repo, branch)] += 1
                    accs[position].by_workflow[(provider, repo, workflow)] += 1
                    accs[position].by_actor[(actor,)] += 1
    for acc, (decided, succeeded, failed, runs) in zip(accs, counts, strict=True):
        acc.runs += runs
        acc.decided += decided
        acc.succeeded += succeeded
        acc.first_decided += decided  # (attempt 1 is the final attempt)
        acc.first_succeeded += succeeded
        acc.attempts += runs
        acc.failed_attempts += failed
    grouped: dict[RunKey, list[Sequence[Any]]] = defaultdict(list)
    for row in got.several:
        durations_of(row)
        grouped[(row[_PROVIDER], row[_REPO], row[_RUN_ID])].append(row)
    for key, rows in grouped.items():
        add(key, rows, *_attempts(rows))
    got.several = []
    history: dict[RunKey, list[Sequence[Any]]] = defaultdict(list)  # other runs, before the windows
    for row in got.history:
        run = tuple(None if i is None else row[i] for i in _FROM_HISTORY)
        history[(run[_PROVIDER], run[_REPO], run[_RUN_ID])].append(run)
    for key, rows in history.items():
        add(key, rows, *_attempts(rows))  # (a red streak record only)
    return slot_of, attempt_of, gitlab_attempts


def _add_jobs(
    accs: list[_Acc],
    batches: Iterable[list[Sequence[Any]]],
    slot_of: dict[Any, tuple[Any, ...]],
    older: int,
    attempt_of: dict[Any, tuple[int, tuple[Any, ...]]],
    job_durations: list[dict[tuple[Any, ...], list[float]]],
) -> list[tuple[int, str, Sequence[Any]]]:
    """:meth:`.figures._Acc._add_jobs` of every job as it comes (the outcomes in the run's dict of
    :data:`_Outcomes`), but for the failure categories: the failed jobs of the windows from ``older`` on
    are returned as ``(position, provider, job)``; the durations of the jobs with a verdict of
    ``attempt_of`` added to ``job_durations``."""
    queues = [acc.job_queues for acc in accs]
    by_job = [acc.by_job for acc in accs]
    reruns = [acc.reruns for acc in accs]
    failed_jobs: list[tuple[int, str, Sequence[Any]]] = []
    find = slot_of.get
    same = {}.setdefault  # one string per job name, not one per job
    add_queue = [values.append for values in queues]
    for batch in batches:
        for job in batch:
            run_row, _, name, status, duration, queue, retried, allowed, attempt_duration = job
            if attempt_duration is not None and status in VERDICT:
                attempt = attempt_of.get(run_row)
                if attempt is not None:
                    job_durations[attempt[0]].setdefault((*attempt[1], name), []).append(float(attempt_duration))
            slot = find(run_row)
            if slot is None:
                continue
            position, job_key, names = slot
            if queue is not None:
                add_queue[position](queue)
            if status == SUCCESS:
                name = same(name, name)
                names[name] = names.get(name, 0) | 1
            elif status in FAILED:
                name = same(name, name)
                names[name] = names.get(name, 0) | 2
                if position >= older and not allowed:
                    by_job[position][(*job_key, name)] += 1
                    failed_jobs.append((position, job_key[0], job))
            if retried and job_key[0] == "gitlab" and status not in (None, "running"):
                reruns[position].append(duration or 0.0)  # a pipeline's re-runs: its retried jobs
    return failed_jobs


@analytics._collector_paused
def windows_figures(
    store: ResultsStore,
    *,
    windows: Sequence[Window],
    detail: int = 2,
    history: dt.timedelta = analytics.DEFAULT_HISTORY,
    repos: str | Iterable[str] | None = None,
    environments: str | Collection[str] | None = DEFAULT_ENVIRONMENTS,
) -> WindowsFigures:
    """The figures of each window (given oldest first, not overlapping), see the module docstring.

    Red streaks and deployments are looked up ``history`` before the first window (a streak older than
    that is ``start_known: False``); ``repos`` filters the CI tables; ``environments`` as in
    :func:`.figures.dora`."""
    windows = _check_windows(windows, detail)
    first, until = windows[0][0], windows[-1][1]
    history_start = first - history
    older = len(windows) - detail
    starts = [start for start, _ in windows]
    accs = [_Acc() for _ in windows]
    for acc in accs:  # values without an object each (the percentiles sort them)
        acc.durations, acc.run_queues, acc.job_queues = array("d"), array("d"), array("d")
    outcomes: list[_Outcomes] = [{} for _ in windows]
    sequences: dict[tuple[Any, ...], list[StreakRecord]] = defaultdict(list)
    workflows: dict[tuple[Any, ...], list[list[Any]]] = {}
    job_durations: list[dict[tuple[Any, ...], list[float]]] = [{} for _ in range(detail)]
    with analytics.reading(
        store,
        start=first,
        end=until,
        history_start=history_start,
        repos=repos,
        job_durations_from=windows[older][0],
        jobs_in_one_query=True,
        failed_details_only=True,
        stream_runs=True,
    ) as got:
        slot_of, attempt_of, gitlab_attempts = _add_runs(got, windows, older, accs, outcomes, sequences, workflows)
        failed_jobs = _add_jobs(accs, got.jobs, slot_of, older, attempt_of, job_durations)
        del slot_of, attempt_of
        for provider, repo, workflow, name, duration, finished in analytics.superseded_job_durations(
            got, windows[older][0], until
        ):
            position = bisect_right(starts, finished) - 1
            if finished < windows[position][1]:
                job_durations[position - older].setdefault((provider, repo, workflow, name), []).append(float(duration))
        categories = analytics.load_categories(got.conn, gitlab_attempts, [job for _, _, job in failed_jobs])
    for position, provider, job in failed_jobs:
        accs[position].by_category[(_job_category(job[_J_ID], provider, categories),)] += 1

    streaks = walk_streaks(sequences, history_start, first)
    doras = dora_windows(got.deployments, windows, environments=environments)
    totals = [
        _figures(acc, window, streaks, dora_figures, _flaky(by_job))
        for acc, window, dora_figures, by_job in zip(accs, windows, doras, outcomes, strict=True)
    ]
    return WindowsFigures(
        totals,
        {
            key: [
                {"runs": runs, "duration_p50_s": percentile(values, 0.5), "duration_p90_s": percentile(values, 0.9)}
                for runs, values in per_window
            ]
            for key, per_window in workflows.items()
        },
        job_durations,
    )


def _flaky(outcomes: _Outcomes) -> dict[str, Any]:
    """:meth:`.figures._Acc.flaky` of the outcomes tree: the same list and rate."""
    pairs = 0
    listed = []
    for (provider, repo, workflow), by_sha in outcomes.items():
        flaky_on: dict[Any, list[str]] = {}
        for sha, names in by_sha.items():
            pairs += len(names)
            if 3 in names.values():
                for name, bits in names.items():
                    if bits == 3:
                        flaky_on.setdefault(name, []).append(str(sha))
        if not flaky_on:
            continue
        shas_of = Counter(chain.from_iterable(by_sha.values()))  # SHAs each job ran on
        for name, shas in flaky_on.items():
            ran = shas_of[name]
            listed.append(
                {
                    "provider": provider,
                    "repo": repo,
                    "workflow": workflow,
                    "job": name,
                    "flaky_shas": len(shas),
                    "shas": ran,
                    "rate": len(shas) / ran,
                    "flaky_on": sorted(shas),
                }
            )
    listed.sort(key=_flaky_order)
    return {"jobs": listed, "rate": ratio(sum(j["flaky_shas"] for j in listed), pairs)}


def _add(
    acc: _Acc,
    key: RunKey,
    attempts: list[Sequence[Any]],
    final: Sequence[Any],
    first: Sequence[Any] | None,
    *,
    detail: bool,
) -> None:
    """:meth:`.figures._Acc.add` of a run of tuples (``attempts``, ``final``, ``first``: :func:`_attempts`),
    but for its jobs (:func:`_add_jobs`); the failures by branch, workflow and actor only in a ``detail``
    window."""
    status = final[_STATUS]
    acc.runs += 1
    acc.by_status[status if status in _STATUS_SET else "other"] += 1
    if status in VERDICT:
        acc.decided += 1
        if status == SUCCESS:
            acc.succeeded += 1
        duration = final[_DURATION]
        if duration is not None:
            acc.durations.append(duration)
        if status != SUCCESS and detail:
            provider, repo, _ = key
            acc.by_branch[(provider, repo, final[_BRANCH])] += 1
            acc.by_workflow[(provider, repo, final[_WORKFLOW])] += 1
            acc.by_actor[(final[_ACTOR],)] += 1
    if first is not None:
        first_status = first[_STATUS]
        if first_status in VERDICT:
            acc.first_decided += 1
            if first_status == SUCCESS:
                acc.first_succeeded += 1
    if len(attempts) == 1:
        acc.attempts += 1
        if status in FAILED:
            acc.failed_attempts += 1
        queue = final[_QUEUE]
        if queue is not None:
            acc.run_queues.append(queue)
    else:
        acc.attempts += len(attempts)
        for attempt in attempts:
            if attempt[_STATUS] in FAILED:
                acc.failed_attempts += 1
            queue = attempt[_QUEUE]
            if queue is not None:
                acc.run_queues.append(queue)
        for attempt in attempts[:-1]:  # every completed attempt but the final one
            acc.reruns.append(attempt[_DURATION] or 0.0)
