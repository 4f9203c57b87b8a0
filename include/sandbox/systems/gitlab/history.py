"""Weeks of CI history for ``ci_pipeline_analytics``, seeded after ``state._Seeder``'s triage scenarios.

Group ``payments`` (id 200) with the subgroup ``payments/mobile`` (id 201):

* ``payments/checkout-api`` (2001, Python): 3-4 ``main`` pipelines a day (build, unit-tests with a
  JUnit report, lint, integration-tests, ``deploy-staging`` to the ``staging`` environment) and
  ``deploy-production`` (environment ``production``) in the last ``main`` pipeline of every even day;
  1-3 pipelines a day on the feature branch of the moment (build, unit-tests, lint; some fail);
* ``payments/ledger-service`` (2002, Go): 3-5 ``main`` pipelines a day whose ``trigger-integration``
  bridge starts a child pipeline (``source: parent_pipeline``; the bridge mirrors the child's
  status, ``strategy: depend``), and ``feature/multi-currency`` pipelines; the busiest project;
* ``payments/mobile/ios-app`` (2003): a scheduled pipeline named ``Nightly build`` at 02:00 every day,
  1-2 ``main`` pipelines and ``release/*`` pipelines;
* ``payments/mobile/legacy-sdk`` (2004): archived, three pipelines 50-60 days ago.

**Time.** Day ``k`` (1..``HISTORY_DAYS``) is ``[midnight - k days, midnight - (k-1) days)`` where
midnight starts the UTC day of the sandbox clock at seeding. Every pipeline of the history is created
and finished inside its day, in whole seconds (the late retry and the rollback below update two of them
days later), so a daily data interval holds the same pipelines whatever time of day the sandbox was
reset. Pipelines, jobs (retries included) and
deployments get their ids in time order, after every id of the triage scenarios.

**Scenarios** (ids and times in ``GET /_sandbox/gitlab/history``, i.e. ``GitLabState.history``):

* flaky on the same SHA: on days 3, 8, 14, 19, 27 and 31 the first checkout ``main`` pipeline's
  ``integration-tests`` fails (``script_failure``) and its retry a few minutes later passes (the
  pipeline ends ``success``; ``include_retried=true`` lists both attempts); on day 22 a failed
  ``main`` pipeline is re-run as a new pipeline (``source: web``) of the same commit, which passes;
  on day 10 a ledger child pipeline's ``integration-db`` fails and passes on retry;
* red streaks: checkout ``main`` fails at 09:10, 10:30 and 12:45 on day 12 and is green again at
  15:40; ledger ``main`` fails at 20:10 on day 13 and 07:30 on day 12, green at 08:40 on day 12;
  ledger's child ``integration-api`` fails on day 18 (bridge and parent failed);
* ``integration-tests`` of checkout fails with ``job_execution_timeout`` after 1 h on day 20;
* late retry: a ``feature/3ds2`` pipeline of day 9 whose ``unit-tests`` failed is retried green on
  day 7 (its ``updated_at`` moves to day 7);
* a nightly ios pipeline fails with ``runner_system_failure`` on day 4; a ``main`` pipeline is canceled
  on day 15; checkout's jobs wait 5-15 minutes for a runner all day 17 (queue storm);
* deployments: ``deploy-production`` fails on day 16 (recovered on day 15), ``deploy-staging`` fails on
  day 25; on day 5 the production deploy job of day 6 is retried (a rollback: a later deployment of an
  older SHA). A skipped deploy job leaves a ``skipped`` deployment, as on GitLab.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from include.sandbox.systems.gitlab.state import (
    ESC,
    GREEN,
    IMAGES,
    RED,
    RESET,
    USERS,
    Commit,
    GitLabState,
    Job,
    JobSpec,
    Namespace,
    Pipeline,
    Project,
    RunnerLog,
    TestCase,
    TextTrace,
    User,
    _preamble,
    go_script,
    go_tests,
    iso,
    python_script,
    python_tests,
    render_job_log,
    runner_number,
)

HISTORY_DAYS = 35
DAY = 86_400
HOUR = 3_600
#: (id, name, path, parent id) of the groups; projects: key -> (id, name, path, group id, language)
GROUPS = ((200, "Payments", "payments", None), (201, "Mobile", "mobile", 200))
PROJECTS = {
    "checkout": (2001, "checkout-api", "checkout-api", 200, "python"),
    "ledger": (2002, "ledger-service", "ledger-service", 200, "go"),
    "ios": (2003, "ios-app", "ios-app", 201, "swift"),
    "legacy": (2004, "legacy-sdk", "legacy-sdk", 201, "swift"),
}
IMAGES_BY_LANG = {**IMAGES, "swift": "ghcr.io/cirruslabs/macos-runner:sonoma"}
#: seconds of running time per job name (low, high)
DURATIONS = {
    "build": (40, 90),
    "unit-tests": (90, 200),
    "lint": (20, 50),
    "integration-tests": (180, 360),
    "deploy-staging": (60, 120),
    "deploy-production": (90, 150),
    "integration-db": (120, 240),
    "integration-api": (150, 300),
    "build-app": (300, 600),
    "ui-tests": (400, 900),
    "package": (120, 240),
}
TIMEOUT_S = 3600.0
FLAKY_DAYS = (3, 8, 14, 19, 27, 31)
CHECKOUT_BRANCHES = (
    (28, "feature/apple-pay", "mei.chen"),
    (18, "feature/refund-api", "jonas.weber"),
    (10, "fix/currency-rounding", "olivier.durand"),
    (1, "feature/3ds2", "ana.lima"),
)  # (last day, branch, author): the branch is active from the previous entry's last day - 1 down to this one
CHECKOUT_JOBS = (("build", "build"), ("unit-tests", "test"), ("lint", "test"), ("integration-tests", "test"))
LEDGER_JOBS = (("build", "build"), ("unit-tests", "test"), ("lint", "test"))
IOS_JOBS = (("build-app", "build"), ("unit-tests", "test"), ("ui-tests", "test"))


@dataclass(frozen=True)
class LazyTrace:
    """A job log rendered only when it is read (thousands of seeded jobs cost nothing until then)."""

    render: Callable[[], str]

    def available(self) -> bool:
        return True

    def chunks(self) -> Iterator[bytes]:
        yield from TextTrace(self.render().encode()).chunks()


def timeout_log(*, start: float, image: str, project_path: str, sha: str, ref: str, runner: int) -> str:
    """A job the runner killed at the project's 1 h timeout."""
    log = RunnerLog(start)
    _preamble(log, image, project_path, sha, ref, runner)
    log.start_section("step_script", 'Executing "step_script" stage of the job script')
    log.command("pytest -q tests/integration --maxfail=1", f"{GREEN}....{RESET}")
    log.line("tests/integration/test_settlement.py::test_batch_settlement waiting for ledger lock ...")
    log.end_section("step_script", TIMEOUT_S)
    log.line(f"{ESC}[0;33mWARNING: step_script could not run to completion because the timeout was exceeded.{RESET}")
    log.line(f"{RED}ERROR: Job failed: execution took longer than 1h0m0s seconds{RESET}")
    return log.text()


def render_log(
    *,
    lang: str,
    job: str,
    project: Project,
    ok: bool,
    reason: str | None,
    start: float,
    sha: str,
    ref: str,
) -> str:
    """The log of a history job, rendered when it is read."""
    common = {
        "start": start,
        "image": IMAGES_BY_LANG[lang],
        "project_path": project.path_with_namespace,
        "sha": sha,
        "ref": ref,
        "runner": runner_number(project.id),
    }
    if reason == "job_execution_timeout":
        return timeout_log(**common)
    if lang == "python" and job in ("build", "unit-tests", "lint"):
        script = python_script(job, project, ok)
    elif lang == "go" and job in ("build", "unit-tests", "lint"):
        script = go_script(job, project, ok)
    else:
        script = generic_script(job, ok)
    return render_job_log(script=script, failed=not ok, **common)


def generic_script(job: str, ok: bool) -> list[tuple[str, str]]:
    """Commands and output of the jobs that are neither Python nor Go (deploys, iOS, integration)."""
    if job.startswith("deploy-"):
        env = job.removeprefix("deploy-")
        if ok:
            return [(f"./scripts/deploy.sh {env}", f"Deploying to {env} ...\nRollout complete.")]
        return [
            (
                f"./scripts/deploy.sh {env}",
                f'Deploying to {env} ...\nerror: deployment "checkout-api" exceeded its progress deadline',
            )
        ]
    if ok:
        return [(f"make {job}", f"{job}: all checks passed")]
    return [(f"make {job}", f"{job}: 1 failing\nmake: *** [Makefile:31: {job}] Error 1")]


@dataclass
class Run:
    """A pipeline of the history, created (by an event) at ``at``."""

    key: str
    project: Project
    ref: str
    at: float
    author: User
    jobs: tuple[tuple[str, str], ...]
    source: str = "push"
    name: str | None = None
    fail: dict[str, str] = field(default_factory=dict)  # job name -> failure_reason
    retry_after: dict[str, float] = field(default_factory=dict)  # job name -> seconds to a green retry
    retry_at: float | None = None  # when the retries are created instead (days later: a late retry)
    cancel: str | None = None  # this job is canceled (and with it the pipeline)
    environments: dict[str, str] = field(default_factory=dict)  # job name -> environment
    bridge: tuple[str, str] | None = None  # (name, stage) of a bridge that starts ``child``
    child: Run | None = None
    same_commit_as: str | None = None  # key of an earlier run whose commit is run again
    queue: tuple[int, int] = (2, 25)
    made: Pipeline | None = None


class HistorySeeder:
    """Builds the history into ``state`` (see the module docstring) and records its facts in
    ``state.history``."""

    def __init__(self, state: GitLabState) -> None:
        self.state = state
        self.rng = random.Random(f"gitlab-history-{state.seed}")
        self.t0 = state.now()
        self.day0 = float(int(self.t0 // DAY) * DAY)
        self.users = {u.username: u for u in USERS}
        self.devs = list(USERS[1:])
        self.bot = USERS[0]
        self.projects: dict[str, Project] = {}
        self.lang: dict[int, str] = {}
        self.runs: dict[str, Run] = {}
        self.events: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.planned: dict[int, tuple[float, float]] = {}  # job id -> (queued, duration)
        self.parent_bridge: dict[int, Job] = {}  # child pipeline id -> bridge
        self._tests: dict[tuple[int, bool], tuple[TestCase, ...]] = {}
        self.facts: dict[str, Any] = {
            "days": HISTORY_DAYS,
            "day0": iso(self.day0),
            "day0_epoch": self.day0,
            "flaky": [],
            "children": [],
        }

    # -- time --------------------------------------------------------------------------------------
    def at(self, day: int, hour: float, minute: float = 0) -> float:
        """Epoch seconds of ``hour:minute`` UTC on history day ``day``."""
        return self.day0 - day * DAY + hour * HOUR + minute * 60

    def slots(self, day: int, count: int, first: float, last: float) -> list[float]:
        """``count`` times between ``first`` and ``last`` o'clock on ``day``, one per equal slot, in whole
        seconds (so every time of the history is exact in the API's milliseconds)."""
        width = (last - first) / count
        return [round(self.at(day, first + i * width + self.rng.uniform(0.05, 0.75) * width)) for i in range(count)]

    def schedule(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self.events, (when, next(self._seq), action))

    # -- layout ------------------------------------------------------------------------------------
    def layout(self) -> None:
        state = self.state
        for gid, name, path, parent_id in GROUPS:
            parent = next((n for n in state.namespaces.values() if n.id == parent_id), None)
            full_path = f"{parent.full_path}/{path}" if parent else path
            full_name = f"{parent.full_name} / {name}" if parent else name
            state.namespaces[full_path] = Namespace(gid, name, path, full_path, "group", parent_id, full_name)
        by_id = {n.id: n for n in state.namespaces.values() if n.kind == "group"}
        for i, (key, (pid, name, path, gid, lang)) in enumerate(PROJECTS.items()):
            project = Project(
                pid,
                name,
                path,
                by_id[gid],
                self.day0 - (300 - 10 * i) * DAY,
                description=f"{name}: seeded CI history for ci_pipeline_analytics",
                archived=key == "legacy",
            )
            state.projects[pid] = project
            state.project_pipelines[pid] = []
            self.projects[key] = project
            self.lang[pid] = lang
        checkout = self.projects["checkout"]
        start = self.day0 - (HISTORY_DAYS + 5) * DAY
        state.environment(checkout, "staging", start, "https://staging.checkout.example.test")
        state.environment(checkout, "production", start, "https://checkout.example.test")
        self.facts["group"] = {"id": 200, "full_path": "payments"}
        self.facts["subgroup"] = {"id": 201, "full_path": "payments/mobile"}
        self.facts["projects"] = {
            key: {"id": p.id, "path": p.path_with_namespace, "archived": p.archived} for key, p in self.projects.items()
        }

    # -- runs ----------------------------------------------------------------------------------------
    def add(self, run: Run) -> Run:
        assert run.key not in self.runs, run.key
        self.runs[run.key] = run
        self.schedule(run.at, functools.partial(self.create, run))
        return run

    def dev(self) -> User:
        return self.rng.choice(self.devs)

    def checkout_runs(self) -> None:
        project = self.projects["checkout"]
        main = (*CHECKOUT_JOBS, ("deploy-staging", "deploy"))
        envs = {"deploy-staging": "staging", "deploy-production": "production"}
        for day in range(HISTORY_DAYS, 0, -1):
            queue = (300, 900) if day == 17 else (2, 25)
            if day == 12:  # red streak: 09:10 -> 15:40
                times = [self.at(12, 8, 20), self.at(12, 9, 10), self.at(12, 10, 30), self.at(12, 12, 45)]
                times += [self.at(12, 15, 40), self.at(12, 17, 30)]
            elif day == 20:  # the 1 h timeout needs room
                times = [self.at(20, 8, 0), self.at(20, 10, 30), self.at(20, 14, 0), self.at(20, 17, 15)]
            elif day == 22:  # 11:00 fails, 11:40 re-runs the same commit
                times = [self.at(22, 8, 30), self.at(22, 11, 0), self.at(22, 14, 10), self.at(22, 17, 0)]
            else:
                times = self.slots(day, self.rng.randint(3, 4), 7.5, 18.5)
            for i, when in enumerate(times):
                run = Run(f"checkout-main-{day}-{i}", project, "main", when, self.dev(), main, queue=queue)
                run.environments = dict(envs)
                last = i == len(times) - 1
                if (day % 2 == 0 and last) or (day in (15, 5) and i == 0):
                    run.jobs = (*main, ("deploy-production", "production"))
                if day in FLAKY_DAYS and i == 0:
                    run.fail["integration-tests"] = "script_failure"
                    run.retry_after["integration-tests"] = self.rng.randint(180, 600)
                if day == 12 and i in (1, 2, 3):
                    run.fail["unit-tests"] = "script_failure"
                    run.author = self.users["jonas.weber"]
                if day == 20 and i == 0:
                    run.fail["integration-tests"] = "job_execution_timeout"
                if day == 22 and i == 1:
                    run.fail["integration-tests"] = "script_failure"
                if day == 16 and last:
                    run.fail["deploy-production"] = "script_failure"
                if day == 25 and i == 1:
                    run.fail["deploy-staging"] = "script_failure"
                self.add(run)
            if day == 22:
                rerun = Run(
                    "checkout-rerun-22",
                    project,
                    "main",
                    self.at(22, 11, 40),
                    self.users["ana.lima"],
                    main,
                    source="web",
                    same_commit_as="checkout-main-22-1",
                )
                rerun.environments = dict(envs)
                self.add(rerun)
        self.schedule(self.at(5, 14, 30), self.rollback)
        # one feature branch at a time, 1-3 pipelines a day, some red
        first = HISTORY_DAYS
        for last_day, branch, author in CHECKOUT_BRANCHES:
            for day in range(first, last_day - 1, -1):
                for i, when in enumerate(self.slots(day, self.rng.randint(1, 3), 9, 18)):
                    run = Run(
                        f"checkout-{branch}-{day}-{i}",
                        project,
                        branch,
                        when,
                        self.users[author],
                        CHECKOUT_JOBS[:3],
                        queue=(300, 900) if day == 17 else (2, 25),
                    )
                    if self.rng.random() < 0.15:
                        run.fail[self.rng.choice(("unit-tests", "lint"))] = "script_failure"
                    self.add(run)
            first = last_day - 1
        late = Run(
            "checkout-late-retry",
            project,
            "feature/3ds2",
            self.at(9, 19, 20),
            self.users["ana.lima"],
            CHECKOUT_JOBS[:3],
        )
        late.fail["unit-tests"] = "script_failure"
        late.retry_after["unit-tests"] = 0.0
        late.retry_at = self.at(7, 10, 5)
        self.add(late)

    def ledger_runs(self) -> None:
        project = self.projects["ledger"]
        for day in range(HISTORY_DAYS, 0, -1):
            if day == 12:
                times = [self.at(12, 7, 30), self.at(12, 8, 40), *self.slots(12, 2, 10, 18.5)]
            else:
                times = self.slots(day, self.rng.randint(3, 5), 7.5, 18.5)
            if day == 13:
                times.append(self.at(13, 20, 10))
            for i, when in enumerate(times):
                run = Run(f"ledger-main-{day}-{i}", project, "main", when, self.dev(), LEDGER_JOBS)
                run.bridge = ("trigger-integration", "integration")
                child = Run(
                    f"ledger-child-{day}-{i}",
                    project,
                    "main",
                    when,
                    run.author,
                    (("integration-db", "test"), ("integration-api", "test")),
                    source="parent_pipeline",
                )
                run.child = child
                if (day == 13 and when == times[-1]) or (day == 12 and i == 0):
                    run.fail["unit-tests"] = "script_failure"
                if day == 10 and i == 0:
                    child.fail["integration-db"] = "script_failure"
                    child.retry_after["integration-db"] = self.rng.randint(120, 420)
                if day == 18 and i == 1:
                    child.fail["integration-api"] = "script_failure"
                self.add(run)
            for i, when in enumerate(self.slots(day, self.rng.randint(1, 2), 9.5, 18)):
                run = Run(
                    f"ledger-feature-{day}-{i}",
                    project,
                    "feature/multi-currency",
                    when,
                    self.users["mei.chen"],
                    LEDGER_JOBS,
                )
                if self.rng.random() < 0.1:
                    run.fail["lint"] = "script_failure"
                self.add(run)

    def ios_runs(self) -> None:
        project = self.projects["ios"]
        for day in range(HISTORY_DAYS, 0, -1):
            nightly = Run(
                f"ios-nightly-{day}",
                project,
                "main",
                self.at(day, 2, 0),
                self.bot,
                IOS_JOBS,
                source="schedule",
                name="Nightly build",
            )
            if day == 4:
                nightly.fail["ui-tests"] = "runner_system_failure"
            self.add(nightly)
            for i, when in enumerate(self.slots(day, self.rng.randint(1, 2), 9, 18)):
                run = Run(f"ios-main-{day}-{i}", project, "main", when, self.dev(), IOS_JOBS)
                if day == 15 and i == 0:
                    run.cancel = "ui-tests"
                self.add(run)
            release = "release/2.4" if 14 <= day <= 20 else "release/2.5" if day <= 6 else None
            if release:
                jobs = (*IOS_JOBS, ("package", "package"))
                self.add(Run(f"ios-{release}-{day}", project, release, self.at(day, 16, 30), self.dev(), jobs))
        legacy = self.projects["legacy"]
        for day in (60, 55, 50):
            self.add(Run(f"legacy-{day}", legacy, "main", self.at(day, 11, 0), self.dev(), IOS_JOBS[:2]))

    # -- creation (events) ---------------------------------------------------------------------------
    def commit(self, run: Run) -> Commit:
        if run.same_commit_as:
            made = self.runs[run.same_commit_as].made
            assert made is not None
            return made.commit
        if run.source == "parent_pipeline" or run.source == "schedule":
            same_ref = [p for p in self.state.project_pipelines[run.project.id] if p.ref == run.ref]
            if same_ref:
                return same_ref[-1].commit
        message = self.rng.choice(("Add retry to settlement export", "Bump dependencies", "Fix rounding in fees"))
        return self.state.new_commit(run.project, message, run.author, run.at - self.rng.randint(120, 1500))

    def spec(self, run: Run, commit: Commit, name: str, stage: str, status: str) -> JobSpec:
        duration = self.between(*DURATIONS.get(name, (30, 90)))
        reason = run.fail.get(name) if status == "failed" else None
        if reason == "job_execution_timeout":
            duration = TIMEOUT_S
        tests = self.tests(run.project, status != "failed") if name == "unit-tests" else ()
        return JobSpec(
            name,
            stage,
            status=status,
            failure_reason=reason,
            trace=self.trace(run, commit, name, ok=status != "failed", reason=reason) if status != "skipped" else None,
            tests=tests,
            coverage=(84.2 if status == "success" else None) if name == "unit-tests" else None,
            duration=duration,
            queued=self.between(*run.queue),
            environment=run.environments.get(name),
        )

    def trace(self, run: Run, commit: Commit, name: str, *, ok: bool, reason: str | None = None) -> LazyTrace:
        render = functools.partial(
            render_log,
            lang=self.lang[run.project.id],
            job=name,
            project=run.project,
            ok=ok,
            reason=reason,
            start=run.at,
            sha=commit.sha,
            ref=run.ref,
        )
        return LazyTrace(render)

    def tests(self, project: Project, ok: bool) -> tuple[TestCase, ...]:
        """The unit-tests job's test cases (shared: they are immutable)."""
        key = (project.id, ok)
        if key not in self._tests:
            lang = self.lang[project.id]
            self._tests[key] = python_tests(project, ok) if lang == "python" else go_tests() if lang == "go" else ()
        return self._tests[key]

    def between(self, low: int, high: int) -> float:
        """A whole number of seconds in [low, high] (``randint``, cheaper)."""
        return float(low + int(self.rng.random() * (high - low + 1)))

    def create(self, run: Run) -> None:
        """Create ``run``'s pipeline (jobs laid out stage after stage) and schedule what follows."""
        commit = self.commit(run)
        specs: list[JobSpec] = []
        blocked: str | None = None
        for name, stage in run.jobs:
            if blocked is not None and stage != blocked:
                specs.append(JobSpec(name, stage, status="skipped", environment=run.environments.get(name)))
                continue
            status = "canceled" if name == run.cancel else "failed" if name in run.fail else "success"
            specs.append(self.spec(run, commit, name, stage, status))
            if status != "success":
                blocked = stage
        if run.bridge is not None:
            name, stage = run.bridge
            status = "skipped" if blocked is not None else "success"  # set from the child when it is created
            specs.append(JobSpec(name, stage, status=status, bridge=True, duration=1.0, queued=2.0))
        pipeline = self.state.add_pipeline(
            run.project,
            run.ref,
            specs,
            commit=commit,
            user=run.author,
            source=run.source,
            created_at=run.at,
            name=run.name,
        )
        run.made = pipeline
        for job, spec in zip(pipeline.jobs, specs, strict=True):
            self.planned[job.id] = (spec.queued, spec.duration)
        for name, delay in run.retry_after.items():
            failed = next(j for j in pipeline.jobs if j.name == name)
            assert failed.finished_at is not None
            when = run.retry_at if run.retry_at is not None else failed.finished_at + delay
            self.schedule(when, functools.partial(self.retry, run, failed, when))
        bridge = next((j for j in pipeline.jobs if j.bridge), None)
        if bridge is not None and bridge.status == "success" and run.child is not None:
            assert bridge.started_at is not None
            child = run.child
            child.at, child.author = bridge.started_at, run.author
            child.same_commit_as = run.key
            self.schedule(bridge.started_at, functools.partial(self.create_child, child, bridge))

    def create_child(self, child: Run, bridge: Job) -> None:
        self.runs[child.key] = child
        self.create(child)
        assert child.made is not None
        bridge.downstream_pipeline_id = child.made.id
        self.parent_bridge[child.made.id] = bridge
        self.sync_bridge(child.made)
        self.facts["children"].append(
            {
                "project_id": child.project.id,
                "parent_pipeline_id": bridge.pipeline.id,
                "bridge_id": bridge.id,
                "child_pipeline_id": child.made.id,
            }
        )

    def sync_bridge(self, child: Pipeline) -> None:
        """The bridge mirrors its child (``strategy: depend``): success, or failed when the child is."""
        bridge = self.parent_bridge.get(child.id)
        if bridge is None:
            return
        status = child.status
        bridge.status = "success" if status == "success" else "failed"
        bridge.failure_reason = None if status == "success" else "unknown_failure"
        bridge.finished_at = (child.finished_at or child.created_at) + 2.0

    def retry(self, run: Run, failed: Job, when: float) -> None:
        """A green retry of ``failed`` created at ``when``; the jobs its failure skipped run after it."""
        queued, duration = self.planned[failed.id]
        assert run.made is not None
        attempt = self.state.add_attempt(
            failed,
            created_at=when,
            status="success",
            started_at=when + queued,
            finished_at=when + queued + duration,
            trace=self.trace(run, run.made.commit, failed.name, ok=True),
        )
        if failed.name == "unit-tests":  # the green attempt's own test report
            attempt.tests, attempt.coverage = list(self.tests(run.project, True)), 84.2
        assert attempt.finished_at is not None
        stage_start = attempt.finished_at
        later = [j for j in run.made.latest_jobs(None) if j.status == "skipped"]
        for stage in dict.fromkeys(j.stage for j in later):
            span = 0.0
            for job in (j for j in later if j.stage == stage):
                assert not job.bridge, "a skipped bridge is not re-run in the history"
                wait, took = self.between(*run.queue), self.between(*DURATIONS.get(job.name, (30, 90)))
                job.status, job.queued_at = "success", stage_start
                job.started_at, job.finished_at = stage_start + wait, stage_start + wait + took
                job.trace = self.trace(run, run.made.commit, job.name, ok=True)
                span = max(span, wait + took)
            stage_start += span
        self.sync_bridge(run.made)
        fact = {
            "project_id": run.project.id,
            "pipeline_id": run.made.id,
            "job": failed.name,
            "failed_job_id": failed.id,
            "retry_job_id": attempt.id,
            "sha": run.made.commit.sha,
            "ref": run.ref,
        }
        if run.retry_at is not None:
            self.facts["late_retry"] = {**fact, "day": 9, "retried_day": 7, "updated_at": iso(run.made.updated_at)}
        else:
            self.facts["flaky"].append(fact)

    def rollback(self) -> None:
        """Day 5, 14:30: the production deploy job of day 6 runs again (its older SHA goes back out)."""
        state, project = self.state, self.projects["checkout"]
        day6 = self.runs[f"checkout-main-6-{self.last_index(6)}"].made
        assert day6 is not None
        deploy = next(j for j in day6.latest_jobs() if j.name == "deploy-production")
        when = self.at(5, 14, 30)
        original = next(d for d in state.deployments[project.id] if d.job is deploy)
        attempt = state.add_attempt(
            deploy,
            created_at=when,
            status="success",
            started_at=when + 6,
            finished_at=when + 6 + 104,
            trace=self.trace(self.runs[f"checkout-main-6-{self.last_index(6)}"], day6.commit, deploy.name, ok=True),
        )
        deployment = state.deployments[project.id][-1]
        assert deployment.job is attempt
        self.facts["rollback"] = {
            "project_id": project.id,
            "environment": "production",
            "deployment_id": deployment.id,
            "original_deployment_id": original.id,
            "sha": deployment.sha,
            "pipeline_id": day6.id,
            "job_id": attempt.id,
            "day": 5,
        }

    def last_index(self, day: int) -> int:
        keys = [k for k in self.runs if k.startswith(f"checkout-main-{day}-")]
        return len(keys) - 1

    # -- run -----------------------------------------------------------------------------------------
    def run(self) -> None:
        self.layout()
        self.checkout_runs()
        self.ledger_runs()
        self.ios_runs()
        while self.events:
            _, _, action = heapq.heappop(self.events)
            action()
        self.record_facts()
        self.state.history = self.facts

    def made(self, key: str) -> Pipeline:
        pipeline = self.runs[key].made
        assert pipeline is not None, key
        return pipeline

    def record_facts(self) -> None:
        facts, state = self.facts, self.state
        checkout, ledger, ios = (self.projects[k] for k in ("checkout", "ledger", "ios"))
        streak = [self.made(f"checkout-main-12-{i}") for i in (1, 2, 3)]
        green = self.made("checkout-main-12-4")
        facts["red_streak"] = {
            "project_id": checkout.id,
            "ref": "main",
            "day": 12,
            "failed_pipeline_ids": [p.id for p in streak],
            "green_pipeline_id": green.id,
            "started_at": iso(streak[0].finished_at),
            "ended_at": iso(green.finished_at),
        }
        last13 = max(k for k in self.runs if k.startswith("ledger-main-13-"))
        night = [self.made(last13), self.made("ledger-main-12-0")]
        green = self.made("ledger-main-12-1")
        facts["overnight_streak"] = {
            "project_id": ledger.id,
            "ref": "main",
            "failed_pipeline_ids": [p.id for p in night],
            "green_pipeline_id": green.id,
            "started_at": iso(night[0].finished_at),
            "ended_at": iso(green.finished_at),
        }
        timeout = self.made("checkout-main-20-0")
        facts["timeout"] = {
            "project_id": checkout.id,
            "pipeline_id": timeout.id,
            "job_id": next(j.id for j in timeout.jobs if j.failure_reason == "job_execution_timeout"),
            "day": 20,
        }
        failed, rerun = self.made("checkout-main-22-1"), self.made("checkout-rerun-22")
        facts["rerun_pipeline"] = {
            "project_id": checkout.id,
            "failed_pipeline_id": failed.id,
            "green_pipeline_id": rerun.id,
            "sha": rerun.commit.sha,
            "day": 22,
        }
        child_failed = self.made("ledger-child-18-1")
        facts["child_failure"] = {
            "project_id": ledger.id,
            "parent_pipeline_id": self.parent_bridge[child_failed.id].pipeline.id,
            "child_pipeline_id": child_failed.id,
            "day": 18,
        }
        canceled = self.made("ios-main-15-0")
        facts["canceled"] = {"project_id": ios.id, "pipeline_id": canceled.id, "day": 15}
        nightly = self.made("ios-nightly-4")
        facts["runner_failure"] = {"project_id": ios.id, "pipeline_id": nightly.id, "day": 4}
        facts["queue_storm"] = {"project_id": checkout.id, "day": 17}
        deployments = state.deployments[checkout.id]
        by_env: dict[str, dict[str, int]] = {}
        for d in deployments:
            counts = by_env.setdefault(d.environment.name, {})
            counts[d.status] = counts.get(d.status, 0) + 1
        prod_failed = next(d for d in deployments if d.environment.name == "production" and d.status == "failed")
        recovery = next(
            d
            for d in deployments
            if d.environment.name == "production" and d.status == "success" and d.id > prod_failed.id
        )
        stage_failed = next(d for d in deployments if d.environment.name == "staging" and d.status == "failed")
        facts["deployments"] = {
            "project_id": checkout.id,
            "counts": by_env,
            "failed_production": {"deployment_id": prod_failed.id, "day": 16},
            "recovery": {"deployment_id": recovery.id, "day": 15},
            "failed_staging": {"deployment_id": stage_failed.id, "day": 25},
        }
        facts["pipeline_counts"] = {key: len(state.project_pipelines[p.id]) for key, p in self.projects.items()}
        per_day: dict[str, dict[int, int]] = {}
        for key, project in self.projects.items():
            counts: dict[int, int] = {}
            for p in state.project_pipelines[project.id]:
                day = int((self.day0 - p.updated_at) // DAY) + 1
                counts[day] = counts.get(day, 0) + 1
            per_day[key] = dict(sorted(counts.items()))
        facts["updated_per_day"] = per_day


def seed_history(state: GitLabState) -> None:
    """Add the analytics history to a state already holding the triage seed."""
    HistorySeeder(state).run()
