"""GitHub REST API stand-in (github.md, github-actions.md) and its test controls.

Base URL ``http://127.0.0.1:PORT/github`` (what ``https://api.github.com`` is for the real API).
Auth: ``Authorization: Bearer <token>`` or ``token <token>``; valid token
``ghp_sandboxtoken000000000000000000000000`` (controls can change it). A wrong token is 401
``{"message": "Bad credentials"}``; no token is allowed at the unauthenticated limit (60/h).

Served: repository metadata, contributors, ``stats/*`` (with 202/204), pulls, issues, search/issues,
releases (+latest), ``/rate_limit``, Actions workflows, runs (filters, 1,000-result cap), run
attempts, jobs (``filter=latest|all``), job/run logs (302 to a sandbox blob URL that expires after
60 s of sandbox time), re-runs, cancel and force-cancel (a run added with ``ignores_cancel`` answers
``/cancel`` 202 and goes on until ``/force-cancel``); ``/orgs/{org}/repos``, deployments and their statuses
(newest first; GitHub's ``auto_inactive`` in non-production environments; ``POST /deployments`` with a
simulated CD system posting its statuses; ``GET /environments``; a re-run of a workflow run a deployment
links to deploys its SHA again), and
``compare/{base}...{head}`` over each default branch's linear history (250 newest commits without
paging parameters; with ``per_page``/``page`` oldest first, ``files`` on page 1 only). Every response
carries ``x-ratelimit-*`` headers and an ``etag``; ``if-none-match`` answers 304 without spending
the primary rate limit.

Project health (issue 12): ``GET /repos/{o}/{r}/commits`` (``sha``, ``since``/``until`` inclusive on the
committer date, ``author``; 409 for an empty repository), issue and PR conversation comments
(``GET``/``POST /issues/{n}/comments``), PR reviews (``GET /pulls/{n}/reviews``; pending ones only to
their author), ``GET /issues/{n}``, ``POST /issues`` and ``PATCH /issues/{n}`` (state, state_reason,
labels; as the token's user ``devops-automation[bot]``; 401 anonymous, 403 archived), ``labels=`` on
the issues list, Dependabot alerts (cursor paging with ``after``), code-scanning and secret-scanning
alerts (states, severities), ``GET /branches/{b}`` (``protected``) and ``/branches/{b}/protection``
(404 "Branch not protected"). A repository can refuse an area with GitHub's status and message (a
token that may not read the alerts: 403; "no analysis found": 404). See "project health" below for
the seed (``acme-labs/ledger`` has hand-computable figures per day) and the controls (``/security``,
``/protection``, ``/alerts`` per repository).

Seeded organisation ``acme``: ``api`` (busy; production deployments with a failed one and a
rollback), ``web``, ``infra``, ``empty``; ``shop`` (issue 11's stories with known answers: a closed
and an open red streak on main, re-runs two to three days after creation, one job failing and passing
on the same SHA in two runs, production and staging deployments with a failure and a rollback),
``monorepo`` (more than 1,000 runs on one UTC day: the filtered list's cap) and ``legacy``
(archived). ``GET /_sandbox/github/scenarios`` names the ids.

Time: data is seeded over the 30 days (runs) / one year (commits) before the sandbox clock's now at
reset. Job and run status are derived from planned times against the clock, so advancing the clock
(``POST /_sandbox/clock/advance``) finishes queued and re-run jobs; deployment statuses dated later
than now appear as it advances.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import io
import itertools
import json
import random
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel

from include.sandbox.systems._common import ApiError, ErrorRoute, retry_after_headers

NAME = "github"
PREFIX = "/github"
DEFAULT_TOKEN = "ghp_sandboxtoken000000000000000000000000"
TOKEN_LOGIN = "devops-automation[bot]"  # whom the sandbox's tokens belong to (author of issues they open)
DOCS = "https://docs.github.com/rest"
API_VERSIONS = ("2022-11-28", "2026-03-10")
MAX_PER_PAGE = 100
SEARCH_CAP = 1000  # results reachable per filtered search (runs, search/issues)
LOG_URL_TTL = 60.0
RERUN_WINDOW = 30 * 86400
DAY = 86400
WEEK = 7 * DAY

SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID {rid}."
)


# -- time helpers ----------------------------------------------------------------------------------
def iso(ts: float | None) -> str | None:
    """GitHub's timestamp format: ``2026-01-01T12:00:00Z`` (UTC, seconds)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def day_start(ts: float) -> float:
    d = datetime.fromtimestamp(ts, UTC)
    return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()


def week_start(ts: float) -> float:
    """Sunday 00:00 UTC of the week holding ``ts`` (GitHub's stats weeks)."""
    d0 = day_start(ts)
    weekday = (datetime.fromtimestamp(d0, UTC).weekday() + 1) % 7  # Sunday = 0
    return d0 - weekday * DAY


class BadDate(ValueError):
    pass


def _parse_instant(text: str) -> tuple[float, bool]:
    """(timestamp, date_only) for ``YYYY-MM-DD`` or an ISO date-time (``Z`` or an offset)."""
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp(), True
        dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError as exc:
        raise BadDate(text) from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp(), False


def date_range(expr: str) -> tuple[float, float]:
    """GitHub search date syntax -> half-open ``[lo, hi)`` in epoch seconds.

    ``D``, ``>D``, ``>=D``, ``<D``, ``<=D``, ``A..B``, ``A..*``, ``*..B``; ``D`` is a date (whole
    days) or a date-time (its whole second, inclusive: GitHub's times have second resolution, and
    the sandbox's stored times have fractions that its answers cut off)."""
    inf = float("inf")
    expr = expr.strip()
    if ".." in expr:
        a, b = expr.split("..", 1)
        lo = -inf if a.strip() in ("", "*") else _parse_instant(a)[0]
        if b.strip() in ("", "*"):
            hi = inf
        else:
            t, date_only = _parse_instant(b)
            hi = t + DAY if date_only else t + 1
        return lo, hi
    m = re.fullmatch(r"(>=|<=|>|<)?(.+)", expr)
    if not m:
        raise BadDate(expr)
    op, value = m.group(1) or "", m.group(2)
    t, date_only = _parse_instant(value)
    end = t + DAY if date_only else t + 1
    if op == ">=":
        return t, inf
    if op == ">":
        return end, inf
    if op == "<":
        return -inf, t
    if op == "<=":
        return -inf, end
    return t, end


# -- model -----------------------------------------------------------------------------------------
@dataclass
class User:
    id: int
    login: str
    type: str = "User"


@dataclass
class Repo:
    id: int
    owner: User
    name: str
    default_branch: str
    created_at: float
    pushed_at: float
    stars: int
    forks: int
    subscribers: int
    language: str
    license: str | None
    archived: bool = False
    private: bool = False
    description: str = ""

    @property
    def full_name(self) -> str:
        return f"{self.owner.login}/{self.name}"


@dataclass
class Issue:
    number: int
    title: str
    user: User
    is_pr: bool
    created_at: float
    updated_at: float
    closed_at: float | None = None
    merged_at: float | None = None
    draft: bool = False
    labels: list[str] = field(default_factory=list)
    head_branch: str = ""
    base_branch: str = "main"
    body: str = ""
    state_reason: str | None = None  # completed | not_planned | reopened (issue 12)

    @property
    def state(self) -> str:
        return "closed" if self.closed_at is not None else "open"


@dataclass
class Release:
    id: int
    tag_name: str
    name: str
    author: User
    created_at: float
    published_at: float | None
    draft: bool = False
    prerelease: bool = False


@dataclass
class Commit:
    ts: float
    author: User | None  # None: an e-mail not linked to a GitHub user
    email: str
    additions: int
    deletions: int
    merge: bool = False


@dataclass
class Workflow:
    id: int
    name: str
    path: str
    jobs: tuple[str, ...]
    events: tuple[str, ...]


@dataclass
class Job:
    id: int
    run_id: int
    run_attempt: int
    name: str
    created_at: float
    started_at: float
    completed_at: float
    conclusion: str  # planned conclusion once completed
    runner: str
    labels: tuple[str, ...] = ("ubuntu-latest",)
    cancelled_at: float | None = None
    failure_text: str = ""

    def status(self, now: float) -> str:
        if self.cancelled_at is not None and self.cancelled_at <= now:
            return "completed"
        if now < self.started_at:
            return "queued"
        return "in_progress" if now < self.completed_at else "completed"

    def outcome(self, now: float) -> str | None:
        if self.cancelled_at is not None and self.cancelled_at <= now and self.cancelled_at < self.completed_at:
            return "cancelled"
        return self.conclusion if self.status(now) == "completed" else None

    def finished_at(self, now: float) -> float | None:
        if self.status(now) != "completed":
            return None
        return min(self.completed_at, self.cancelled_at) if self.cancelled_at is not None else self.completed_at


@dataclass
class Attempt:
    number: int
    run_started_at: float
    triggering_actor: User
    jobs: list[Job] = field(default_factory=list)


@dataclass
class Run:
    id: int
    repo: Repo
    workflow: Workflow
    run_number: int
    event: str
    head_branch: str
    head_sha: str
    actor: User
    created_at: float
    display_title: str
    check_suite_id: int
    attempts: list[Attempt] = field(default_factory=list)
    pull_request: int | None = None
    #: a job with ``if: always()`` steps that ignores ``/cancel`` (answered 202); only ``/force-cancel`` stops it
    cancel_resistant: bool = False

    @property
    def run_attempt(self) -> int:
        return len(self.attempts)

    def latest_jobs(self, upto: int | None = None) -> list[Job]:
        """Per job name the newest execution up to attempt ``upto`` (``filter=latest``)."""
        latest: dict[str, Job] = {}
        for attempt in self.attempts[: upto or len(self.attempts)]:
            for job in attempt.jobs:
                latest[job.name] = job
        return list(latest.values())

    def status(self, now: float, upto: int | None = None) -> str:
        """From the jobs this attempt (re-)ran; jobs carried over from earlier attempts are done."""
        statuses = [j.status(now) for j in self.attempts[(upto or len(self.attempts)) - 1].jobs]
        if all(s == "completed" for s in statuses):
            return "completed"
        return "in_progress" if any(s != "queued" for s in statuses) else "queued"

    def conclusion(self, now: float, upto: int | None = None) -> str | None:
        if self.status(now, upto) != "completed":
            return None
        outcomes = [j.outcome(now) for j in self.latest_jobs(upto)]
        for bad in ("cancelled", "failure", "timed_out"):
            if bad in outcomes:
                return bad
        return "success"

    def updated_at(self, now: float, upto: int | None = None) -> float:
        attempt = self.attempts[(upto or len(self.attempts)) - 1]
        times = [attempt.run_started_at] + [
            t for j in self.latest_jobs(upto) for t in (j.started_at, j.finished_at(now)) if t is not None and t <= now
        ]
        return max(times)


@dataclass
class DeploymentStatus:
    id: int
    state: str  # error | failure | inactive | in_progress | queued | pending | success
    created_at: float
    description: str = ""
    log_url: str = ""


@dataclass
class Deployment:
    id: int
    repo: Repo
    sha: str
    ref: str
    environment: str
    created_at: float
    creator: User
    task: str = "deploy"
    description: str = ""
    production: bool = True
    transient: bool = False
    statuses: list[DeploymentStatus] = field(default_factory=list)  # oldest first
    payload: dict[str, Any] = field(default_factory=dict)

    def visible_statuses(self, now: float) -> list[DeploymentStatus]:
        return [s for s in self.statuses if s.created_at <= now]


@dataclass
class RateBucket:
    limit: int
    remaining: int
    reset: float
    used: int = 0
    status: int = 403  # 403 or 429 when exhausted


@dataclass
class GitHubState:
    now: Callable[[], float]
    tokens: set[str] = field(default_factory=lambda: {DEFAULT_TOKEN})
    users: dict[str, User] = field(default_factory=dict)
    repos: dict[str, Repo] = field(default_factory=dict)  # "owner/name" (lower case) -> repo
    issues: dict[str, list[Issue]] = field(default_factory=dict)
    releases: dict[str, list[Release]] = field(default_factory=dict)
    commits: dict[str, list[Commit]] = field(default_factory=dict)
    workflows: dict[str, list[Workflow]] = field(default_factory=dict)
    runs: dict[int, Run] = field(default_factory=dict)
    jobs: dict[int, Job] = field(default_factory=dict)
    rates: dict[tuple[str, str], RateBucket] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=lambda: {"core": 5000, "search": 30, "anonymous": 60})
    secondary: dict[str, Any] = field(default_factory=dict)  # {"remaining": n|None, "retry_after": s, "path": regex}
    stats_pending: dict[str, int] = field(default_factory=dict)  # repo -> 202 answers still to give
    rerun_conclusion: str = "success"
    #: the final status a simulated CD system posts on a deployment made through the API (ci_run_action)
    deploy_outcome: str = "success"
    counts: dict[str, Any] = field(default_factory=dict)
    blobs: dict[str, tuple[float, str, bytes]] = field(default_factory=dict)  # key -> (expires, type, data)
    run_ids: Any = field(default_factory=lambda: itertools.count(7_000_000_001))
    job_ids: Any = field(default_factory=lambda: itertools.count(20_000_000_001))
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    runs_by_repo: dict[str, list[Run]] = field(default_factory=dict)  # "owner/name" (lower case) -> its runs
    deployments: dict[str, list[Deployment]] = field(default_factory=dict)  # "owner/name" -> oldest first
    deployment_ids: Any = field(default_factory=lambda: itertools.count(3_000_000_001))
    status_ids: Any = field(default_factory=lambda: itertools.count(4_000_000_001))
    forbidden: dict[str, dict[str, str]] = field(default_factory=dict)  # repo -> {"message", "path"} (control)
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)  # repo -> scenario ids (GET /scenarios)
    _shas: dict[str, dict[str, int]] = field(default_factory=dict)  # repo -> commit sha -> index (lazy)
    # issue 12 (project health): conversation comments and reviews per issue/PR number, security alerts,
    # areas a token may not read, default-branch protection, and the user the tokens belong to
    comments: dict[str, dict[int, list[Comment]]] = field(default_factory=dict)  # repo -> number -> oldest first
    reviews: dict[str, dict[int, list[Review]]] = field(default_factory=dict)  # repo -> PR number -> oldest first
    alerts: dict[str, list[SecurityAlert]] = field(default_factory=dict)  # repo -> alerts of every kind
    refusals: dict[str, dict[str, tuple[int, str]]] = field(default_factory=dict)  # repo -> area -> (status, message)
    protection: dict[str, dict[str, Any]] = field(default_factory=dict)  # repo -> protected branch -> settings
    token_login: str = TOKEN_LOGIN
    comment_ids: Any = field(default_factory=lambda: itertools.count(1_900_000_001))
    review_ids: Any = field(default_factory=lambda: itertools.count(2_600_000_001))

    def repo(self, owner: str, name: str) -> Repo | None:
        return self.repos.get(f"{owner}/{name}".lower())

    def commit_sha(self, repo: Repo, index: int) -> str:
        """SHA of the ``index``-th commit (oldest first) of the default branch's linear history."""
        return _sha(repo.full_name, "commit", index, int(self.commits[repo.full_name.lower()][index].ts))

    def commit_index(self, repo: Repo) -> dict[str, int]:
        key = repo.full_name.lower()
        if key not in self._shas or len(self._shas[key]) != len(self.commits.get(key, [])):
            self._shas[key] = {self.commit_sha(repo, i): i for i in range(len(self.commits.get(key, [])))}
        return self._shas[key]

    def user(self, login: str) -> User:
        if login not in self.users:
            self.users[login] = User(100 + len(self.users), login, "Bot" if login.endswith("[bot]") else "User")
        return self.users[login]

    def repo_runs(self, repo: Repo) -> list[Run]:
        return list(self.runs_by_repo.get(repo.full_name.lower(), ()))

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


ACTORS = ("alice", "bob", "carol", "dave", "erin", "dependabot[bot]")
BRANCHES = (
    "main",
    "main",
    "main",
    "develop",
    "feature/login",
    "feature/search",
    "fix/flaky-cache",
    "dependabot/pip/requests-2.32",
)
SEED_REPOS = (
    # name, default branch, runs per day, stars, forks, watchers, language, license
    ("api", "main", 36, 1250, 210, 48, "Python", "mit"),
    ("web", "main", 10, 430, 57, 19, "TypeScript", "apache-2.0"),
    ("infra", "master", 3, 88, 12, 7, "HCL", None),
    ("empty", "main", 0, 0, 0, 1, "", None),
)
SEED_WORKFLOWS = {
    "api": [
        ("CI", "ci.yml", ("lint", "test", "build"), ("push", "pull_request")),
        ("Deploy", "deploy.yml", ("deploy",), ("push",)),
        ("Nightly", "nightly.yml", ("e2e",), ("schedule",)),
    ],
    "web": [
        ("CI", "ci.yml", ("lint", "unit", "build"), ("push", "pull_request")),
        ("Release", "release.yml", ("publish",), ("workflow_dispatch",)),
    ],
    "infra": [("Terraform", "terraform.yml", ("plan", "apply"), ("push", "pull_request"))],
    "empty": [],
}
FAILURES = (
    "FAILED tests/test_orders.py::test_refund_rounding - AssertionError: assert 10.01 == 10.0",
    "E   TimeoutError: timed out waiting for postgres on port 5432",
    "npm ERR! code ELIFECYCLE",
    "Error: Process completed with exit code 137 (out of memory)",
)


def _sha(*parts: Any) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


class Seeder:
    def __init__(self, state: GitHubState, seed: int) -> None:
        self.s = state
        self.seed = seed
        self.rng = random.Random(seed)
        self.t0 = state.now()

    def build(self) -> GitHubState:
        owner = self.s.user("acme")
        owner.type = "Organization"
        for login in ACTORS:
            self.s.user(login)
        for i, (name, branch, per_day, stars, forks, subs, lang, lic) in enumerate(SEED_REPOS):
            repo = Repo(
                1_000_001 + i,
                owner,
                name,
                branch,
                self.t0 - (900 - 100 * i) * DAY,
                self.t0 - 3600 * (i + 1),
                stars,
                forks,
                subs,
                lang,
                lic,
                description=f"acme {name}",
            )
            key = repo.full_name.lower()
            self.s.repos[key] = repo
            self.s.workflows[key] = [
                Workflow(90_000_000 + 10 * i + k, wf, f".github/workflows/{path}", tuple(jobs), tuple(events))
                for k, (wf, path, jobs, events) in enumerate(SEED_WORKFLOWS[name])
            ]
            self.s.commits[key] = self.commits(repo, per_day)
            self.s.issues[key] = self.issues(repo, per_day)
            self.s.releases[key] = self.releases(repo, per_day)
            self.runs(repo, per_day)
        self.live_runs(self.s.repos["acme/api"])
        # issue 11 additions, from their own random stream so that everything above stays as it was
        seed_analytics(self.s, random.Random(f"analytics-{self.seed}"), self.t0)
        # issue 12 additions (comments, reviews, alerts, protection, acme-labs/ledger), likewise
        seed_project_health(self.s, random.Random(f"health-{self.seed}"), self.t0)
        return self.s

    def commits(self, repo: Repo, per_day: int) -> list[Commit]:
        out = []
        if not per_day:
            return out
        anon = [f"contractor{n}@example.com" for n in range(3)]
        for d in range(364, -1, -1):
            day = day_start(self.t0) - d * DAY
            for _ in range(self.rng.randint(0, max(1, per_day // 4))):
                ts = day + self.rng.randint(8 * 3600, 20 * 3600)
                if ts > self.t0:
                    continue
                login = self.rng.choice(ACTORS[:5])
                linked = self.rng.random() > 0.08
                out.append(
                    Commit(
                        ts,
                        self.s.user(login) if linked else None,
                        f"{login}@acme.dev" if linked else self.rng.choice(anon),
                        self.rng.randint(1, 400),
                        self.rng.randint(0, 200),
                        merge=self.rng.random() < 0.1,
                    )
                )
        out.sort(key=lambda c: c.ts)
        return out

    def issues(self, repo: Repo, per_day: int) -> list[Issue]:
        out: list[Issue] = []
        total = 0 if not per_day else 40 + per_day * 2
        for n in range(1, total + 1):
            created = self.t0 - (total - n + 1) * 90 * DAY / total - self.rng.randint(0, 3600)
            is_pr = self.rng.random() < 0.6
            user = self.s.user(self.rng.choice(ACTORS))
            issue = Issue(
                n,
                f"{'Change' if is_pr else 'Bug'} #{n}: "
                f"{self.rng.choice(['cache', 'login', 'search', 'deploy', 'docs'])}",
                user,
                is_pr,
                created,
                created,
            )
            r = self.rng.random()
            if r < 0.65:  # closed (PRs: mostly merged)
                issue.closed_at = min(self.t0 - 60, created + self.rng.randint(600, 5 * DAY))
                if is_pr and self.rng.random() < 0.85:
                    issue.merged_at = issue.closed_at
            elif is_pr:
                issue.draft = self.rng.random() < 0.2
            if is_pr:
                issue.head_branch = f"feature/{n}"
                issue.base_branch = repo.default_branch
            issue.labels = ["bug"] if not is_pr and r < 0.5 else []
            issue.updated_at = issue.closed_at or min(self.t0 - 30, created + self.rng.randint(0, 2 * DAY))
            out.append(issue)
        return out

    def releases(self, repo: Repo, per_day: int) -> list[Release]:
        if per_day < 5:
            return []
        out = []
        for k in range(12):
            created = self.t0 - (12 - k) * WEEK + 3600
            out.append(
                Release(
                    5_000_000 + repo.id * 100 + k,
                    f"v1.{k}.0",
                    f"v1.{k}.0",
                    self.s.user("alice"),
                    created,
                    created + 600,
                )
            )
        out.append(
            Release(
                5_000_000 + repo.id * 100 + 50,
                "v1.12.0-rc1",
                "v1.12.0 RC1",
                self.s.user("bob"),
                self.t0 - 2 * DAY,
                self.t0 - 2 * DAY + 60,
                prerelease=True,
            )
        )
        out.append(
            Release(
                5_000_000 + repo.id * 100 + 51,
                "v1.12.0",
                "v1.12.0 (draft)",
                self.s.user("bob"),
                self.t0 - DAY,
                None,
                draft=True,
            )
        )
        return out

    def runs(self, repo: Repo, per_day: int) -> None:
        workflows = self.s.workflows[repo.full_name.lower()]
        if not per_day or not workflows:
            return
        total = per_day * 30
        numbers: dict[int, int] = {}
        for k in range(total):
            created = self.t0 - 30 * DAY + (k + self.rng.random() * 0.8) * (30 * DAY - 3 * 3600) / total
            wf = workflows[0] if self.rng.random() < 0.7 or len(workflows) == 1 else self.rng.choice(workflows[1:])
            event = self.rng.choice(wf.events)
            branch = (
                repo.default_branch
                if event in ("schedule", "workflow_dispatch") or wf.name in ("Deploy", "Release")
                else self.rng.choice(BRANCHES).replace("main", repo.default_branch)
            )
            if event == "pull_request" and branch == repo.default_branch:
                branch = "feature/login"
            roll = self.rng.random()
            outcome = (
                "flaky" if roll < 0.06 else "failure" if roll < 0.18 else "cancelled" if roll < 0.21 else "success"
            )
            actor = "dependabot[bot]" if branch.startswith("dependabot/") else self.rng.choice(ACTORS[:5])
            numbers[wf.id] = numbers.get(wf.id, 0) + 1
            self.add_run(repo, wf, numbers[wf.id], event, branch, actor, created, outcome, self.rng)

    def live_runs(self, repo: Repo) -> None:
        """Two runs that are still going at reset time: one queued, one in progress."""
        wf = self.s.workflows[repo.full_name.lower()][0]
        n = sum(1 for r in self.s.repo_runs(repo) if r.workflow is wf)
        self.add_run(
            repo,
            wf,
            n + 1,
            "push",
            "main",
            "alice",
            self.t0 - 120,
            "success",
            self.rng,
            queue=(60, 60),
            duration=(600, 600),
        )
        self.add_run(
            repo,
            wf,
            n + 2,
            "pull_request",
            "feature/search",
            "bob",
            self.t0 - 30,
            "success",
            self.rng,
            queue=(900, 900),
            duration=(300, 300),
        )

    def add_run(
        self,
        repo: Repo,
        wf: Workflow,
        number: int,
        event: str,
        branch: str,
        actor: str,
        created: float,
        outcome: str,
        rng: random.Random,
        queue: tuple[int, int] | None = None,
        duration: tuple[int, int] | None = None,
    ) -> Run:
        return add_run(self.s, repo, wf, number, event, branch, actor, created, outcome, rng, queue, duration)


def add_run(
    state: GitHubState,
    repo: Repo,
    wf: Workflow,
    number: int,
    event: str,
    branch: str,
    actor: str,
    created: float,
    outcome: str,
    rng: random.Random,
    queue: tuple[int, int] | None = None,
    duration: tuple[int, int] | None = None,
    *,
    sha: str | None = None,
    failing_job: str | None = None,
    rerun_delay: tuple[int, int] = (60, 1800),
) -> Run:
    """Add one run. ``outcome``: success | failure | cancelled | timed_out | flaky (attempt 1 fails,
    attempt 2 re-runs the failed job and succeeds ``rerun_delay`` seconds after it failed).
    ``sha``: the head commit (default: one of its own); ``failing_job``: which job fails (default: random)."""
    run_id = next(state.run_ids)
    user = state.user(actor)
    pr = None
    if event == "pull_request":
        pr = 1 + (run_id % 50)
    run = Run(
        run_id,
        repo,
        wf,
        number,
        event,
        branch,
        sha or _sha(repo.full_name, run_id),
        user,
        created,
        f"{wf.name} #{number} on {branch}",
        30_000_000_000 + run_id % 10_000_000,
        pull_request=pr,
    )
    failing: int | None = None
    if outcome in ("failure", "flaky", "timed_out"):
        failing = wf.jobs.index(failing_job) if failing_job in wf.jobs else rng.randrange(len(wf.jobs))
    first = Attempt(1, created + rng.randint(0, 3), user)
    for idx, job_name in enumerate(wf.jobs):
        conclusion = "success"
        if idx == failing:
            conclusion = "failure" if outcome in ("failure", "flaky") else "timed_out"
        first.jobs.append(plan_job(state, run, 1, job_name, first.run_started_at, conclusion, rng, queue, duration))
    if outcome == "cancelled":
        last = first.jobs[-1]
        last.cancelled_at = (last.started_at + last.completed_at) / 2
    run.attempts.append(first)
    if outcome == "flaky":
        failed = first.jobs[failing]  # type: ignore[index]
        again = Attempt(2, failed.completed_at + rng.randint(*rerun_delay), state.user(rng.choice(ACTORS[:5])))
        again.jobs.append(plan_job(state, run, 2, failed.name, again.run_started_at, "success", rng, queue, duration))
        run.attempts.append(again)
    state.runs[run.id] = run
    state.runs_by_repo.setdefault(repo.full_name.lower(), []).append(run)
    return run


def plan_job(
    state: GitHubState,
    run: Run,
    attempt: int,
    name: str,
    created: float,
    conclusion: str,
    rng: random.Random,
    queue: tuple[int, int] | None = None,
    duration: tuple[int, int] | None = None,
) -> Job:
    wait = rng.randint(*queue) if queue else (rng.randint(300, 1200) if rng.random() < 0.08 else rng.randint(2, 90))
    took = rng.randint(*duration) if duration else rng.randint(30, 900)
    started = created + wait
    job = Job(
        next(state.job_ids),
        run.id,
        attempt,
        name,
        created,
        started,
        started + took,
        conclusion,
        f"GitHub Actions {rng.randint(1, 999)}",
        failure_text=rng.choice(FAILURES) if conclusion != "success" else "",
    )
    state.jobs[job.id] = job
    return job


def make_state(seed: int, sandbox: Any) -> GitHubState:
    state = GitHubState(now=lambda: sandbox.clock.now(), rng=random.Random(seed + 1))
    return Seeder(state, seed).build()


# -- analytics history (issue 11) ------------------------------------------------------------------
# Deployments with statuses, a commit history per default branch (compare), a repository with more
# than 1,000 runs in one UTC day, and CI stories with known answers: red streaks (one closed, one
# still open), re-runs two to three days after the run was created, and a job that fails and passes
# on the same commit SHA in two different runs. GET /_sandbox/github/scenarios names their ids.
ANALYTICS_REPOS = (
    # name, default branch, stars, forks, watchers, language, archived
    ("shop", "main", 310, 40, 12, "Go", False),
    ("monorepo", "main", 95, 8, 6, "Python", False),
    ("legacy", "master", 12, 3, 2, "Perl", True),
)
ANALYTICS_WORKFLOWS: dict[str, list[tuple[str, str, tuple[str, ...], tuple[str, ...]]]] = {
    "shop": [
        ("CI", "ci.yml", ("lint", "unit", "integration", "build"), ("push", "pull_request")),
        ("Deploy", "deploy.yml", ("deploy",), ("push",)),
    ],
    "monorepo": [("CI", "ci.yml", ("build", "test"), ("push", "pull_request"))],
    "legacy": [],
}
BUSY_DAY_AGO = 3  # monorepo: the UTC day this many days before the reset day holds BUSY_DAY_RUNS runs
BUSY_DAY_RUNS = 1250
QUIET_DAY_RUNS = 20
FEATURE_BRANCHES = ("feature/cart", "feature/checkout", "fix/tax-rounding", "dependabot/go_modules/x-net-0.30")
DEPLOY_BOT = "github-actions[bot]"


def new_repo(
    state: GitHubState,
    owner: str,
    name: str,
    *,
    created: float,
    default_branch: str = "main",
    stars: int = 0,
    forks: int = 0,
    subscribers: int = 0,
    language: str = "",
    license: str | None = None,
    archived: bool = False,
    private: bool = False,
    workflows: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]] | None = None,
) -> Repo:
    """A repository with empty issues/releases/commits and the given workflows."""
    if state.repo(owner, name) is not None:
        raise ValueError(f"repository {owner}/{name} exists")
    known = owner in state.users
    user = state.user(owner)
    if not known:
        user.type = "Organization"
    index = len(state.repos)
    repo = Repo(
        1_000_001 + index,
        user,
        name,
        default_branch,
        created,
        created,
        stars,
        forks,
        subscribers,
        language,
        license,
        archived=archived,
        private=private,
        description=f"{owner} {name}",
    )
    key = repo.full_name.lower()
    state.repos[key] = repo
    state.workflows[key] = [
        Workflow(90_000_000 + 10 * index + k, wf, f".github/workflows/{path}", tuple(jobs), tuple(events))
        for k, (wf, path, jobs, events) in enumerate(workflows or [])
    ]
    state.commits[key] = []
    state.issues[key] = []
    state.releases[key] = []
    return repo


def make_commits(
    state: GitHubState, rng: random.Random, t0: float, days: int, per_day: tuple[int, int]
) -> list[Commit]:
    """A linear default-branch history over the last ``days`` days (working hours), oldest first."""
    out = []
    for d in range(days, -1, -1):
        day = day_start(t0) - d * DAY
        for _ in range(rng.randint(*per_day)):
            ts = day + rng.randint(8 * 3600, 20 * 3600)
            if ts > t0 - 600:
                continue
            login = rng.choice(ACTORS[:5])
            out.append(
                Commit(
                    ts,
                    state.user(login),
                    f"{login}@acme.dev",
                    rng.randint(1, 300),
                    rng.randint(0, 150),
                    merge=rng.random() < 0.1,
                )
            )
    out.sort(key=lambda c: c.ts)
    return out


def commit_at(state: GitHubState, repo: Repo, ts: float) -> int | None:
    """Index of the newest default-branch commit made at or before ``ts`` (None: none yet)."""
    times = [c.ts for c in state.commits[repo.full_name.lower()]]
    k = bisect.bisect_right(times, ts) - 1
    return k if k >= 0 else None


def append_attempt(
    state: GitHubState, run: Run, names: list[str], start: float, conclusion: str, rng: random.Random, actor: str
) -> Attempt:
    """A further attempt of ``run`` re-running the jobs ``names``, started at ``start``."""
    attempt = Attempt(run.run_attempt + 1, start, state.user(actor))
    for name in names:
        attempt.jobs.append(plan_job(state, run, attempt.number, name, start, conclusion, rng, (5, 60), (120, 600)))
    run.attempts.append(attempt)
    return attempt


def add_deployment(
    state: GitHubState,
    repo: Repo,
    environment: str,
    sha: str,
    created: float,
    states: list[str],
    rng: random.Random,
    *,
    ref: str | None = None,
    creator: str = DEPLOY_BOT,
    description: str = "",
    production: bool | None = None,
    transient: bool = False,
    step: tuple[int, int] = (20, 240),
    log_url: str = "",
) -> Deployment:
    """A deployment and its statuses (``states`` in order, ``step`` seconds apart). A ``success`` in a
    non-production, non-transient environment marks the environment's earlier successful deployments
    ``inactive``, as GitHub's ``auto_inactive`` (default true) does; production deployments keep theirs."""
    key = repo.full_name.lower()
    dep = Deployment(
        next(state.deployment_ids),
        repo,
        sha,
        ref or repo.default_branch,
        environment,
        created,
        state.user(creator),
        description=description,
        production=environment.lower() in ("production", "prod") if production is None else production,
        transient=transient,
    )
    short = sha[:7]
    texts = {
        "queued": "Deployment queued",
        "pending": "Deployment pending",
        "in_progress": f"Deploying {short}",
        "success": f"Deployed {short}",
        "failure": f"Health check failed after deploying {short}",
        "error": f"Deployment of {short} errored",
        "inactive": "",
    }
    t = created
    for n, st in enumerate(states):
        t += 0 if n == 0 else rng.randint(*step)
        dep.statuses.append(DeploymentStatus(next(state.status_ids), st, t, texts.get(st, ""), log_url))
        if st == "success" and not dep.production and not dep.transient:
            for old in state.deployments.get(key, []):
                last = old.statuses[-1] if old.statuses else None
                if old.environment == environment and last and last.state == "success" and last.created_at <= t:
                    old.statuses.append(DeploymentStatus(next(state.status_ids), "inactive", t))
    state.deployments.setdefault(key, []).append(dep)
    return dep


def plan_production(
    state: GitHubState,
    repo: Repo,
    rng: random.Random,
    t0: float,
    *,
    environment: str = "production",
    days: int = 28,
    hour: int = 14,
    failed_day: int = 9,
    rollback_day: int = 5,
    creator: str = DEPLOY_BOT,
) -> dict[str, Any]:
    """Weekday deployments of the newest commit over ``days`` days (a day without a new commit has
    none); on the first deploy day at most ``failed_day`` days ago the deployment fails and the next
    commit is deployed hours later; on the first at most ``rollback_day`` days ago a successful
    deployment is followed two hours later by a redeploy of the SHA deployed before it (a rollback)."""
    notes: dict[str, Any] = {"deployments": [], "failed": [], "recovery": [], "rollbacks": [], "successful": []}
    successes: list[Deployment] = []
    last_sha: str | None = None
    failed_done = rollback_done = False

    def deploy(sha: str, when: float, outcome: str, description: str = "") -> Deployment:
        dep = add_deployment(
            state,
            repo,
            environment,
            sha,
            when,
            ["queued", "in_progress", outcome],
            rng,
            creator=creator,
            description=description,
        )
        notes["deployments"].append(dep.id)
        if outcome == "success":
            successes.append(dep)
            notes["successful"].append(dep.id)
        return dep

    for d in range(days, 0, -1):
        day = day_start(t0) - d * DAY
        designed_fail = not failed_done and d <= failed_day
        designed_rollback = failed_done and not rollback_done and d <= rollback_day
        if datetime.fromtimestamp(day, UTC).weekday() >= 5 and not (designed_fail or designed_rollback):
            continue
        when = day + hour * 3600 + rng.randint(0, 1800)
        k = commit_at(state, repo, when - 600)
        if k is None or state.commit_sha(repo, k) == last_sha:
            continue
        sha = state.commit_sha(repo, k)
        if designed_fail:
            notes["failed"].append(deploy(sha, when, "failure").id)
            commits = state.commits[repo.full_name.lower()]
            later = k + 1 if k + 1 < len(commits) and commits[k + 1].ts < when + 8 * 3600 else None
            fix_at = max(when + 3 * 3600, commits[later].ts + 1200) if later is not None else when + 3 * 3600
            fix_sha = state.commit_sha(repo, later) if later is not None else sha
            notes["recovery"].append(deploy(fix_sha, fix_at, "success").id)
            last_sha, failed_done = fix_sha, True
            continue
        deploy(sha, when, "success")
        last_sha = sha
        if designed_rollback and len(successes) >= 2 and successes[-2].sha != sha:
            target = successes[-2].sha
            back = deploy(target, when + 2 * 3600, "success", f"Rollback to {target[:7]}")
            notes["rollbacks"].append(back.id)
            last_sha, rollback_done = target, True
    return notes


def _planned_runs(
    state: GitHubState, repo: Repo, rng: random.Random, plans: list[tuple[float, str, dict[str, Any]]]
) -> dict[int, Run]:
    """Create planned runs ``(created, workflow name, add_run keywords)`` in creation order, so that
    run ids and numbers grow with time as GitHub's do; returns plan index -> run."""
    workflows = {wf.name: wf for wf in state.workflows[repo.full_name.lower()]}
    numbers = {wf.id: sum(1 for r in state.repo_runs(repo) if r.workflow is wf) for wf in workflows.values()}
    made: dict[int, Run] = {}
    for n in sorted(range(len(plans)), key=lambda i: plans[i][0]):
        created, wf_name, kw = plans[n]
        wf = workflows[wf_name]
        numbers[wf.id] += 1
        kw = dict(kw)
        made[n] = add_run(
            state,
            repo,
            wf,
            numbers[wf.id],
            kw.pop("event", "push"),
            kw.pop("branch", repo.default_branch),
            kw.pop("actor", "alice"),
            created,
            kw.pop("outcome", "success"),
            rng,
            **kw,
        )
    return made


def seed_shop(state: GitHubState, repo: Repo, rng: random.Random, t0: float) -> None:
    """acme/shop: 30 days of CI with known stories, production and staging deployments."""
    key = repo.full_name.lower()
    state.commits[key] = make_commits(state, rng, t0, 45, (2, 6))
    d0 = day_start(t0)
    streak_day = d0 - 12 * DAY
    plans: list[tuple[float, str, dict[str, Any]]] = []
    used_shas: set[str] = set()
    for d in range(30, 0, -1):
        day = d0 - d * DAY
        weekend = datetime.fromtimestamp(day, UTC).weekday() >= 5
        for _ in range(3 if weekend else 10):
            created = day + 8 * 3600 + rng.random() * 9 * 3600
            if rng.random() < 0.4:
                if day == streak_day or created > t0 - 7 * 3600:
                    continue
                k = commit_at(state, repo, created)
                sha = state.commit_sha(repo, k) if k is not None else None
                if sha in used_shas:
                    sha = None
                used_shas.add(sha or "")
                plans.append(
                    (
                        created,
                        "CI",
                        {"branch": "main", "actor": rng.choice(ACTORS[:5]), "sha": sha, "outcome": "success"},
                    )
                )
                continue
            branch = rng.choice(FEATURE_BRANCHES)
            roll = rng.random()
            outcome = (
                "flaky" if roll < 0.05 else "failure" if roll < 0.14 else "cancelled" if roll < 0.17 else "success"
            )
            actor = "dependabot[bot]" if branch.startswith("dependabot/") else rng.choice(ACTORS[:5])
            event = rng.choice(("push", "pull_request"))
            plans.append((created, "CI", {"branch": branch, "event": event, "actor": actor, "outcome": outcome}))
    # a closed red streak on main: six failing pushes in a row, then the fix
    streak = [len(plans) + j for j in range(6)]
    for j in range(6):
        plans.append(
            (streak_day + 9 * 3600 + j * 3300, "CI", {"outcome": "failure", "failing_job": "unit", "actor": "carol"})
        )
    fix = len(plans)
    plans.append((streak_day + 9 * 3600 + 6 * 3300, "CI", {"outcome": "success", "actor": "carol"}))
    # an open red streak on main: the last four pushes fail
    open_streak = [len(plans) + j for j in range(4)]
    for j in range(4):
        plans.append((t0 - 6 * 3600 + j * 5400, "CI", {"outcome": "failure", "failing_job": "integration"}))
    # re-runs two to three days after the run was created
    late = {}
    for d in (20, 15, 6):
        late[len(plans)] = d
        plans.append(
            (
                d0 - d * DAY + 10.5 * 3600,
                "CI",
                {
                    "branch": "feature/checkout",
                    "event": "pull_request",
                    "actor": "dave",
                    "outcome": "flaky",
                    "failing_job": "integration",
                    "rerun_delay": (2 * DAY, 2 * DAY + 20 * 3600),
                },
            )
        )
    twice = len(plans)  # attempt 2 fails again, attempt 3 passes
    plans.append(
        (
            d0 - 9 * DAY + 11 * 3600,
            "CI",
            {
                "branch": "feature/checkout",
                "event": "pull_request",
                "actor": "erin",
                "outcome": "failure",
                "failing_job": "integration",
            },
        )
    )
    # the same commit built twice (push and pull_request): integration fails in one run only
    pairs = []
    for n, d in enumerate((18, 11, 4)):
        sha = _sha(repo.full_name, "pair", d)
        at = d0 - d * DAY + 13 * 3600
        fail_first = n % 2 == 0
        pairs.append((len(plans), len(plans) + 1, sha))
        plans.append(
            (
                at,
                "CI",
                {
                    "branch": "feature/cart",
                    "event": "push",
                    "actor": "bob",
                    "sha": sha,
                    "outcome": "failure" if fail_first else "success",
                    "failing_job": "integration",
                },
            )
        )
        plans.append(
            (
                at + 90,
                "CI",
                {
                    "branch": "feature/cart",
                    "event": "pull_request",
                    "actor": "bob",
                    "sha": sha,
                    "outcome": "success" if fail_first else "failure",
                    "failing_job": "integration",
                },
            )
        )
    production = plan_production(state, repo, rng, t0)
    deploy_plans: dict[int, Deployment] = {}
    for dep_id in production["deployments"]:
        dep = next(x for x in state.deployments[key] if x.id == dep_id)
        if dep.id in production["rollbacks"]:
            continue  # rolled back by hand (workflow_dispatch of an old ref): no Deploy run on main
        outcome = "failure" if dep.id in production["failed"] else "success"
        deploy_plans[len(plans)] = dep
        plans.append((dep.created_at - 90, "Deploy", {"sha": dep.sha, "outcome": outcome, "failing_job": "deploy"}))
    made = _planned_runs(state, repo, rng, plans)
    for n, dep in deploy_plans.items():
        for status in dep.statuses:
            status.log_url = f"https://github.com/{repo.full_name}/actions/runs/{made[n].id}"
    third = made[twice]
    first_fail = third.attempts[0].jobs[-1].completed_at
    append_attempt(state, third, ["integration", "build"], first_fail + 2 * DAY, "failure", rng, "erin")
    append_attempt(state, third, ["integration", "build"], first_fail + 2 * DAY + 18 * 3600, "success", rng, "erin")
    staging: dict[str, Any] = {"deployments": [], "auto_inactive": True}
    last_sha = None
    for d in range(28, 0, -1):
        day = d0 - d * DAY
        if datetime.fromtimestamp(day, UTC).weekday() >= 5:
            continue
        for hour in (11, 16):
            when = day + hour * 3600 + rng.randint(0, 900)
            k = commit_at(state, repo, when - 600)
            if k is None or state.commit_sha(repo, k) == last_sha:
                continue
            last_sha = state.commit_sha(repo, k)
            dep = add_deployment(state, repo, "staging", last_sha, when, ["queued", "in_progress", "success"], rng)
            staging["deployments"].append(dep.id)
    state.notes[key] = {
        "red_streak_closed": {
            "workflow": "CI",
            "branch": "main",
            "run_ids": [made[n].id for n in streak],
            "fixed_by": made[fix].id,
        },
        "red_streak_open": {"workflow": "CI", "branch": "main", "run_ids": [made[n].id for n in open_streak]},
        "late_reruns": sorted([made[n].id for n in late] + [third.id]),
        "same_sha_flaky": [
            {"job": "integration", "sha": sha, "run_ids": [made[a].id, made[b].id]} for a, b, sha in pairs
        ],
        "deployments": {"production": production, "staging": staging},
    }


def seed_monorepo(state: GitHubState, repo: Repo, rng: random.Random, t0: float) -> None:
    """acme/monorepo: QUIET_DAY_RUNS runs a day for 30 days, BUSY_DAY_RUNS on one of them (over the cap)."""
    busy = day_start(t0) - BUSY_DAY_AGO * DAY
    plans: list[tuple[float, str, dict[str, Any]]] = []
    for d in range(30, 0, -1):
        day = day_start(t0) - d * DAY
        n = BUSY_DAY_RUNS if day == busy else QUIET_DAY_RUNS
        for k in range(n):
            created = day + (k + rng.random() * 0.9) * DAY / n
            roll = rng.random()
            outcome = "flaky" if roll < 0.03 else "failure" if roll < 0.09 else "cancelled" if roll < 0.1 else "success"
            branch = rng.choice(BRANCHES)
            event = "push" if branch == "main" else rng.choice(("push", "pull_request"))
            actor = "dependabot[bot]" if branch.startswith("dependabot/") else rng.choice(ACTORS[:5])
            plans.append((created, "CI", {"branch": branch, "event": event, "actor": actor, "outcome": outcome}))
    _planned_runs(state, repo, rng, plans)
    state.notes[repo.full_name.lower()] = {
        "busy_day": datetime.fromtimestamp(busy, UTC).strftime("%Y-%m-%d"),
        "busy_day_runs": BUSY_DAY_RUNS,
    }


def seed_analytics(state: GitHubState, rng: random.Random, t0: float) -> None:
    for k, (name, branch, stars, forks, subs, lang, archived) in enumerate(ANALYTICS_REPOS):
        new_repo(
            state,
            "acme",
            name,
            created=t0 - (500 - 50 * k) * DAY,
            default_branch=branch,
            stars=stars,
            forks=forks,
            subscribers=subs,
            language=lang,
            archived=archived,
            workflows=ANALYTICS_WORKFLOWS[name],
        )
    seed_shop(state, state.repos["acme/shop"], rng, t0)
    seed_monorepo(state, state.repos["acme/monorepo"], rng, t0)
    api = state.repos["acme/api"]
    notes = plan_production(state, api, rng, t0, hour=15, failed_day=8, rollback_day=4, creator="deploy-bot")
    state.notes["acme/api"] = {"deployments": {"production": notes}}


# -- errors and request plumbing -------------------------------------------------------------------
def error_response(status: int, message: str, retry_after: float | None) -> Response:
    """GitHub's error body ``{"message", "documentation_url", "status"}``; 403/429 add rate headers."""
    headers: dict[str, str] = {"x-github-request-id": "SANDBOX:FAULT"}
    headers.update(retry_after_headers(retry_after))
    if status in (403, 429) and retry_after is None:
        headers.update({"x-ratelimit-remaining": "0", "x-ratelimit-limit": "5000", "x-ratelimit-resource": "core"})
    return JSONResponse(
        {"message": message, "documentation_url": DOCS, "status": str(status)}, status_code=status, headers=headers
    )


class GitHubError(ApiError):
    def __init__(
        self,
        status: int,
        message: str,
        doc: str = DOCS,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.doc, self.headers, self.extra = (
            status,
            message,
            doc,
            dict(headers or {}),
            extra or {},
        )

    def response(self) -> Response:
        if self.status == 401 and self.message == "Bad credentials":
            body: dict[str, Any] = {"message": self.message, "documentation_url": DOCS, "status": "401"}
        else:
            body = {"message": self.message, **self.extra, "documentation_url": self.doc, "status": str(self.status)}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def not_found() -> GitHubError:
    return GitHubError(404, "Not Found", f"{DOCS}/repos/repos#get-a-repository")


def validation_failed(message: str, field_name: str = "q", code: str = "invalid") -> GitHubError:
    return GitHubError(
        422,
        "Validation Failed",
        extra={"errors": [{"message": message, "resource": "Search", "field": field_name, "code": code}]},
    )


router = APIRouter(route_class=ErrorRoute)
control = APIRouter()


def gh_state(request: Request) -> GitHubState:
    return request.app.state.sandbox.state(NAME)


@dataclass
class Ctx:
    request: Request
    state: GitHubState
    identity: str  # the token, or "anonymous"
    resource: str
    bucket: RateBucket
    version: str
    now: float

    @functools.cached_property
    def base(self) -> str:  # asked for several times per item of a list
        return str(self.request.base_url).rstrip("/") + PREFIX

    @property
    def authenticated(self) -> bool:
        return self.identity != "anonymous"


def _bucket(state: GitHubState, identity: str, resource: str, now: float) -> RateBucket:
    key = (identity, resource)
    bucket = state.rates.get(key)
    limit = (
        state.limits["anonymous"]
        if identity == "anonymous" and resource == "core"
        else state.limits.get(resource, 5000)
    )
    if resource == "search" and identity == "anonymous":
        limit = 10
    window = 60 if resource == "search" else 3600
    if bucket is None or now >= bucket.reset:
        status = bucket.status if bucket else 403
        bucket = RateBucket(limit, limit, now + window, status=status)
        state.rates[key] = bucket
    return bucket


def rate_headers(bucket: RateBucket, resource: str) -> dict[str, str]:
    return {
        "x-ratelimit-limit": str(bucket.limit),
        "x-ratelimit-remaining": str(max(0, bucket.remaining)),
        "x-ratelimit-used": str(bucket.used),
        "x-ratelimit-reset": str(int(bucket.reset)),
        "x-ratelimit-resource": resource,
    }


def ctx(request: Request, resource: str = "core", spend: bool = True) -> Ctx:
    """Authenticate and apply the secondary and primary rate limits (``spend=False``: /rate_limit)."""
    state = gh_state(request)
    now = state.now()
    state.count("requests")
    version = request.headers.get("x-github-api-version", API_VERSIONS[0])
    if version not in API_VERSIONS:
        raise GitHubError(400, f"API version {version} is not supported.", f"{DOCS}/about-the-rest-api/api-versions")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if not scheme:
        identity = "anonymous"
    elif scheme.lower() in ("bearer", "token") and token.strip() in state.tokens:
        identity = token.strip()
    else:
        state.count("unauthorized")
        raise GitHubError(401, "Bad credentials")
    bucket = _bucket(state, identity, resource, now)
    sec = state.secondary
    if (
        sec
        and (sec.get("remaining") is None or sec["remaining"] > 0)
        and re.search(sec.get("path") or ".*", request.url.path[len(PREFIX) :])
    ):
        if sec.get("remaining") is not None:
            sec["remaining"] -= 1
        state.count("secondary_rate_limited")
        rid = f"SANDBOX:{state.counts['requests']:08X}"
        headers = {**rate_headers(bucket, resource), **retry_after_headers(sec.get("retry_after", 60))}
        raise GitHubError(
            403,
            SECONDARY_MESSAGE.format(rid=rid),
            f"{DOCS}/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
            headers,
        )
    if spend and bucket.remaining <= 0:
        state.count("rate_limited")
        who = "user ID 1" if identity != "anonymous" else "127.0.0.1"
        raise GitHubError(
            bucket.status,
            f"API rate limit exceeded for {who}.",
            f"{DOCS}/overview/rate-limits-for-the-rest-api#about-primary-rate-limits",
            rate_headers(bucket, resource),
        )
    return Ctx(request, state, identity, resource, bucket, version, now)


def etag_of(payload: bytes) -> str:
    return 'W/"' + hashlib.sha256(payload).hexdigest()[:40] + '"'


def respond(
    c: Ctx, body: Any, status: int = 200, headers: dict[str, str] | None = None, spend: bool = True
) -> Response:
    """JSON answer with rate-limit headers and an ETag; ``if-none-match`` on an unchanged body -> 304
    (which spends no rate limit when authenticated)."""
    payload = b"" if status == 204 else json.dumps(body, separators=(",", ":")).encode()
    tag = etag_of(payload)
    wanted = [t.strip() for t in c.request.headers.get("if-none-match", "").split(",") if t.strip()]
    not_modified = status == 200 and any(t in (tag, tag[2:], "*") for t in wanted)
    if spend and not (not_modified and c.authenticated):
        c.bucket.remaining -= 1
        c.bucket.used += 1
    h = {
        **rate_headers(c.bucket, c.resource),
        "x-github-api-version-selected": c.version,
        "x-github-media-type": "github.v3; format=json",
        "x-github-request-id": f"SANDBOX:{c.state.counts.get('requests', 0):08X}",
        "etag": tag,
        "cache-control": "private, max-age=60, s-maxage=60",
        "vary": "Accept, Authorization, Cookie, X-GitHub-OTP",
        **(headers or {}),
    }
    if not_modified:
        c.state.count("not_modified")
        return Response(status_code=304, headers=h)
    if status == 204:
        h.pop("etag")
        return Response(status_code=204, headers=h)
    return Response(payload, status_code=status, headers=h, media_type="application/json; charset=utf-8")


def page_params(request: Request, default: int = 30) -> tuple[int, int]:
    def number(name: str, fallback: int) -> int:
        raw = request.query_params.get(name)
        try:
            return int(raw) if raw not in (None, "") else fallback
        except ValueError:
            return fallback

    per_page = min(MAX_PER_PAGE, max(1, number("per_page", default)))
    return per_page, max(1, number("page", 1))


def paginate(c: Ctx, items: list[Any], default: int = 30, cap: int | None = None) -> tuple[list[Any], dict[str, str]]:
    """One page of ``items`` plus the ``link`` header (page-based, per_page kept in the URLs).
    ``cap``: only the first ``cap`` items are reachable (GitHub's 1,000-result search cap)."""
    per_page, page = page_params(c.request, default)
    reachable = len(items) if cap is None else min(cap, len(items))
    start = (page - 1) * per_page
    chunk = items[start : min(start + per_page, reachable)] if start < reachable else []
    pages = max(1, -(-reachable // per_page))
    query = [(k, v) for k, v in parse_qsl(c.request.url.query, keep_blank_values=True) if k != "page"]

    def href(n: int) -> str:
        return f"{c.base}{c.request.url.path[len(PREFIX) :]}?{urlencode([*query, ('page', str(n))])}"

    links = []
    if page < pages:
        links.append(f'<{href(page + 1)}>; rel="next"')
        links.append(f'<{href(pages)}>; rel="last"')
    if page > 1:
        links.append(f'<{href(1)}>; rel="first"')
        links.append(f'<{href(min(page - 1, pages))}>; rel="prev"')
    return chunk, ({"link": ", ".join(links)} if links else {})


def repo_of(c: Ctx, owner: str, name: str) -> Repo:
    repo = c.state.repo(owner, name)
    if repo is None or (repo.private and not c.authenticated):
        raise not_found()
    rule = c.state.forbidden.get(repo.full_name.lower())
    if rule and re.search(rule["path"], c.request.url.path[len(PREFIX) :]):
        # a token without the permission (fine-grained PAT, GitHub App): 403 with the usual rate headers
        c.bucket.remaining -= 1
        c.bucket.used += 1
        c.state.count("forbidden")
        raise GitHubError(403, rule["message"], DOCS, rate_headers(c.bucket, c.resource))
    return repo


# -- JSON ------------------------------------------------------------------------------------------
def user_json(c: Ctx, u: User | None) -> dict[str, Any] | None:
    if u is None:
        return None
    return {
        "login": u.login,
        "id": u.id,
        "node_id": f"U_{u.id}",
        "type": u.type,
        "site_admin": False,
        "url": f"{c.base}/users/{u.login}",
        "html_url": f"https://github.com/{u.login}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{u.id}",
    }


def repo_json(c: Ctx, r: Repo, full: bool = True) -> dict[str, Any]:
    key = r.full_name.lower()
    open_items = sum(1 for i in c.state.issues.get(key, []) if i.state == "open")
    url = f"{c.base}/repos/{r.full_name}"
    out: dict[str, Any] = {
        "id": r.id,
        "node_id": f"R_{r.id}",
        "name": r.name,
        "full_name": r.full_name,
        "private": r.private,
        "owner": user_json(c, r.owner),
        "html_url": f"https://github.com/{r.full_name}",
        "description": r.description,
        "fork": False,
        "url": url,
        "created_at": iso(r.created_at),
        "updated_at": iso(r.pushed_at),
        "pushed_at": iso(r.pushed_at),
        "stargazers_count": r.stars,
        "watchers_count": r.stars,
        "watchers": r.stars,
        "forks_count": r.forks,
        "forks": r.forks,
        "open_issues_count": open_items,
        "open_issues": open_items,
        "language": r.language or None,
        "archived": r.archived,
        "disabled": False,
        "visibility": "private" if r.private else "public",
        "default_branch": r.default_branch,
        "license": {"key": r.license, "name": r.license.upper(), "spdx_id": r.license.upper()} if r.license else None,
        "has_issues": True,
        "has_projects": True,
        "has_wiki": True,
        "has_downloads": True,
        "size": 1024 + r.id % 977,
    }
    if c.version >= "2026-03-10":
        out.pop("has_downloads")
    if full:
        out["subscribers_count"] = r.subscribers
        out["network_count"] = r.forks
    return out


def issue_json(c: Ctx, repo: Repo, i: Issue, as_pull: bool = False) -> dict[str, Any]:
    base = f"{c.base}/repos/{repo.full_name}"
    out: dict[str, Any] = {
        "id": repo.id * 10_000 + i.number,
        "node_id": f"I_{repo.id}_{i.number}",
        "number": i.number,
        "title": i.title,
        "user": user_json(c, i.user),
        "state": i.state,
        "locked": False,
        "labels": [{"name": n} for n in i.labels],
        "created_at": iso(i.created_at),
        "updated_at": iso(i.updated_at),
        "closed_at": iso(i.closed_at),
        "body": i.body or None,
        "comments": len(c.state.comments.get(repo.full_name.lower(), {}).get(i.number, ())),
        "state_reason": i.state_reason,
        "url": f"{base}/{'pulls' if as_pull else 'issues'}/{i.number}",
        "html_url": f"https://github.com/{repo.full_name}/{'pull' if i.is_pr else 'issues'}/{i.number}",
        "author_association": "MEMBER",
    }
    if as_pull:
        out.update(
            {
                "merged_at": iso(i.merged_at),
                "draft": i.draft,
                "head": {"ref": i.head_branch, "sha": _sha(repo.full_name, i.number)},
                "base": {"ref": i.base_branch},
                "merge_commit_sha": _sha("merge", i.number) if i.merged_at else None,
            }
        )
    elif i.is_pr:
        out["draft"] = i.draft
        out["pull_request"] = {
            "url": f"{base}/pulls/{i.number}",
            "html_url": out["html_url"],
            "merged_at": iso(i.merged_at),
        }
    return out


def release_json(c: Ctx, repo: Repo, r: Release) -> dict[str, Any]:
    return {
        "id": r.id,
        "tag_name": r.tag_name,
        "name": r.name,
        "draft": r.draft,
        "prerelease": r.prerelease,
        "created_at": iso(r.created_at),
        "published_at": iso(r.published_at),
        "author": user_json(c, r.author),
        "url": f"{c.base}/repos/{repo.full_name}/releases/{r.id}",
        "html_url": f"https://github.com/{repo.full_name}/releases/tag/{r.tag_name}",
        "target_commitish": repo.default_branch,
        "assets": [],
    }


# -- repository routes -----------------------------------------------------------------------------
@router.get("/rate_limit")
async def rate_limit(request: Request) -> Response:
    c = ctx(request, spend=False)
    resources = {}
    for res in ("core", "search", "graphql"):
        b = _bucket(c.state, c.identity, res, c.now)
        resources[res] = {"limit": b.limit, "used": b.used, "remaining": max(0, b.remaining), "reset": int(b.reset)}
    body: dict[str, Any] = {"resources": resources}
    if c.version < "2026-03-10":
        body["rate"] = resources["core"]
    return respond(c, body, spend=False)


@router.get("/repos/{owner}/{repo}")
async def get_repo(request: Request, owner: str, repo: str) -> Response:
    c = ctx(request)
    return respond(c, repo_json(c, repo_of(c, owner, repo)))


@router.get("/repos/{owner}/{repo}/contributors")
async def contributors(request: Request, owner: str, repo: str) -> Response:
    c = ctx(request)
    r = repo_of(c, owner, repo)
    commits = c.state.commits[r.full_name.lower()]
    if not commits:
        return respond(c, None, status=204)
    anon = request.query_params.get("anon", "").lower() in ("1", "true")
    tally: dict[str, list[Any]] = {}
    for cm in commits:
        if cm.author is None and not anon:
            continue
        key = cm.author.login if cm.author else cm.email
        tally.setdefault(key, [cm, 0])[1] += 1
    rows = []
    for _key, (cm, n) in sorted(tally.items(), key=lambda kv: (-kv[1][1], kv[0])):
        if cm.author is not None:
            rows.append({**(user_json(c, cm.author) or {}), "contributions": n})
        else:
            rows.append({"type": "Anonymous", "email": cm.email, "name": cm.email.split("@")[0], "contributions": n})
    page, link = paginate(c, rows)
    return respond(c, page, headers=link)


def _stats_gate(c: Ctx, r: Repo) -> list[Commit] | None:
    """Cold-cache 202s (control ``stats``), then the non-merge commits (None: an empty repo, 204)."""
    key = r.full_name.lower()
    if c.state.stats_pending.get(key, 0) > 0:
        c.state.stats_pending[key] -= 1
        c.state.count("stats_202")
        raise _Accepted()
    commits = [cm for cm in c.state.commits[key] if not cm.merge]
    return commits or None


class _Accepted(Exception):
    pass


async def _stats(request: Request, owner: str, repo: str, build: Callable[[Ctx, list[Commit]], Any]) -> Response:
    c = ctx(request)
    r = repo_of(c, owner, repo)
    try:
        commits = _stats_gate(c, r)
    except _Accepted:
        return respond(c, {}, status=202)
    if commits is None:
        return respond(c, None, status=204)
    return respond(c, build(c, commits))


def _weeks(c: Ctx, count: int = 52) -> list[float]:
    last = week_start(c.now)
    return [last - (count - 1 - k) * WEEK for k in range(count)]


@router.get("/repos/{owner}/{repo}/stats/commit_activity")
async def commit_activity(request: Request, owner: str, repo: str) -> Response:
    def build(c: Ctx, commits: list[Commit]) -> Any:
        weeks = _weeks(c)
        out = [{"week": int(w), "total": 0, "days": [0] * 7} for w in weeks]
        for cm in commits:
            k = int((week_start(cm.ts) - weeks[0]) // WEEK)
            if 0 <= k < len(out):
                out[k]["total"] += 1
                out[k]["days"][int((day_start(cm.ts) - weeks[k]) // DAY)] += 1
        return out

    return await _stats(request, owner, repo, build)


@router.get("/repos/{owner}/{repo}/stats/contributors")
async def stats_contributors(request: Request, owner: str, repo: str) -> Response:
    def build(c: Ctx, commits: list[Commit]) -> Any:
        big = len(commits) >= 10_000
        weeks = sorted({week_start(cm.ts) for cm in commits})
        per: dict[str, dict[float, list[int]]] = {}
        authors: dict[str, User | None] = {}
        for cm in commits:
            key = cm.author.login if cm.author else cm.email
            authors[key] = cm.author
            wk = per.setdefault(key, {w: [0, 0, 0] for w in weeks})[week_start(cm.ts)]
            wk[0] += 0 if big else cm.additions
            wk[1] += 0 if big else cm.deletions
            wk[2] += 1
        rows = [
            {
                "author": user_json(c, authors[k]),
                "total": sum(v[2] for v in ws.values()),
                "weeks": [{"w": int(w), "a": v[0], "d": v[1], "c": v[2]} for w, v in sorted(ws.items())],
            }
            for k, ws in per.items()
        ]
        return sorted(rows, key=lambda r: r["total"])

    return await _stats(request, owner, repo, build)


@router.get("/repos/{owner}/{repo}/stats/code_frequency")
async def code_frequency(request: Request, owner: str, repo: str) -> Response:
    c = ctx(request)
    r = repo_of(c, owner, repo)
    if len(c.state.commits[r.full_name.lower()]) >= 10_000:
        raise GitHubError(422, "The repository is too large to compute this statistic.")

    def build(c: Ctx, commits: list[Commit]) -> Any:
        weeks: dict[float, list[int]] = {}
        for cm in commits:
            w = weeks.setdefault(week_start(cm.ts), [0, 0])
            w[0] += cm.additions
            w[1] -= cm.deletions
        return [[int(w), a, d] for w, (a, d) in sorted(weeks.items())]

    return await _stats(request, owner, repo, build)


@router.get("/repos/{owner}/{repo}/stats/participation")
async def participation(request: Request, owner: str, repo: str) -> Response:
    def build(c: Ctx, commits: list[Commit]) -> Any:
        end = day_start(c.now)
        all_, own = [0] * 52, [0] * 52
        owner_login = c.state.repo(owner, repo).owner.login  # type: ignore[union-attr]
        for cm in commits:
            k = 51 - int((end - cm.ts) // WEEK) if cm.ts < end else None
            if k is not None and 0 <= k < 52:
                all_[k] += 1
                if cm.author is not None and cm.author.login in (owner_login, "alice"):
                    own[k] += 1
        return {"all": all_, "owner": own}

    return await _stats(request, owner, repo, build)


def _sort_items(
    items: list[Issue], request: Request, keys: dict[str, Callable[[Issue], Any]], default: str
) -> list[Issue]:
    sort = request.query_params.get("sort", default)
    if sort not in keys:
        sort = default
    direction = request.query_params.get("direction", "desc")
    return sorted(items, key=keys[sort], reverse=direction != "asc")


def _state_filter(request: Request, items: list[Issue]) -> list[Issue]:
    wanted = request.query_params.get("state", "open")
    if wanted not in ("open", "closed", "all"):
        raise GitHubError(
            422, "Validation Failed", extra={"errors": [{"resource": "Issue", "field": "state", "code": "invalid"}]}
        )
    return [i for i in items if wanted == "all" or i.state == wanted]


@router.get("/repos/{owner}/{repo}/pulls")
async def list_pulls(request: Request, owner: str, repo: str) -> Response:
    c = ctx(request)
    r = repo_of(c, owner, repo)
    items = _state_filter(request, [i for i in c.state.issues[r.full_name.lower()] if i.is_pr])
    if request.query_params.get("base"):
        items = [i for i in items if i.base_branch == request.query_params["base"]]
    keys = {
        "created": lambda i: i.created_at,
        "updated": lambda i: i.updated_at,
        "popularity": lambda i: i.number % 7,
        "long-running": lambda i: (i.closed_at or c.now) - i.created_at,
    }
    items = _sort_items(items, request, keys, "created")
    page, link = paginate(c, items)
    return respond(c, [issue_json(c, r, i, as_pull=True) for i in page], headers=link)


@router.get("/repos/{owner}/{repo}/pulls/{number}")
async def get_pull(request: Request, owner: str, repo: str, number: int) -> Response:
    c = ctx(request)
    r = repo_of(c, owner, repo)
    found = next((i for i in c.state.issues[r.full_name.lower()] if i.number == number and i.is_pr), None)
    if found is None:
        raise not_found()
    return respond(c, {**issue_json(c, r, found, as_pull=True), "merged": found.merged_at is not None})


@router.get("/repos/{owner}/{repo}/issues")
async def list_issues(request: Request, owner: str, repo: str) -> Response:
    """Issues *and* pull requests (PRs carry a ``pull_request`` key), like the real endpoint."""
    c = ctx(request)
    r = repo_of(c, owner, repo)
    items = _state_filter(request, list(c.state.issues[r.full_name.lower()]))
    since = request.query_params.get("since")
    if since:
        try:
            t = _parse_instant(since)[0]
        except BadDate:
            raise GitHubError(
                422, "Validation Failed", extra={"errors": [{"resource": "Issue", "field": "since", "code": "invalid"}]}
            ) from None
        items = [i for i in items if i.updated_at >= t]
    wanted = [n.strip() for n in request.query_params.get("labels", "").split(",") if n.strip()]
    if wanted:  # every named label (case-insensitive, as GitHub matches label names)
        items = [i for i in items if {n.lower() for n in wanted} <= {n.lower() for n in i.labels}]
    counts = c.state.comments.get(r.full_name.lower(), {})
    keys = {
        "created": lambda i: i.created_at,
        "updated": lambda i: i.updated_at,
        "comments": lambda i: (len(counts.get(i.number, ())), i.created_at),
    }
    items = _sort_items(items, request, keys, "created")
    page, link = paginate(c, items)
    return respond(c, [issue_json(c, r, i) for i in page], headers=link)


@router.get("/repos/{owner}/{repo}/releases")
async def list_releases(request: Request, owner: str, repo: str) -> Response:
    c = ctx(request)
    r = repo_of(c, owner, repo)
    items = sorted(c.state.releases[r.full_name.lower()], key=lambda x: x.created_at, reverse=True)
    page, link = paginate(c, items)
    return respond(c, [release_json(c, r, x) for x in page], headers=link)


@router.get("/repos/{owner}/{repo}/releases/latest")
async def latest_release(request: Request, owner: str, repo: str) -> Response:
    c = ctx(request)
    r = repo_of(c, owner, repo)
    items = [x for x in c.state.releases[r.full_name.lower()] if not x.draft and not x.prerelease]
    if not items:
        raise not_found()
    return respond(c, release_json(c, r, max(items, key=lambda x: x.created_at)))


# -- search ----------------------------------------------------------------------------------------
_QUALIFIER = re.compile(r'(-?)([a-z\-]+):("[^"]*"|\S+)')


def _search_filter(c: Ctx, q: str) -> list[tuple[Repo, Issue]]:
    words = re.findall(r'"[^"]*"|\S+', q)
    text_len = sum(len(w) for w in words if not _QUALIFIER.fullmatch(w) and w.upper() not in ("AND", "OR", "NOT"))
    if text_len > 256:
        raise validation_failed("The search is longer than 256 characters.")
    if sum(1 for w in words if w.upper() in ("AND", "OR", "NOT")) > 5:
        raise validation_failed("The search contains more than 5 AND / OR / NOT operators.")
    repos: list[Repo] = []
    checks: list[Callable[[Issue], bool]] = []
    terms: list[str] = []
    for w in words:
        m = _QUALIFIER.fullmatch(w)
        if not m:
            if w.upper() not in ("AND", "OR", "NOT"):
                terms.append(w.strip('"').lower())
            continue
        neg, key, value = m.group(1) == "-", m.group(2), m.group(3).strip('"')
        check: Callable[[Issue], bool] | None = None
        if key == "repo":
            owner, _, name = value.partition("/")
            found = c.state.repo(owner, name)
            if found is None or (found.private and not c.authenticated):
                raise validation_failed(
                    "The listed users and repositories cannot be searched either because the resources do not exist "
                    "or you do not have permission to view them."
                )
            repos.append(found)
            continue
        if key in ("is", "type", "state"):
            check = {
                "pr": lambda i: i.is_pr,
                "issue": lambda i: not i.is_pr,
                "open": lambda i: i.state == "open",
                "closed": lambda i: i.state == "closed",
                "merged": lambda i: i.merged_at is not None,
                "unmerged": lambda i: i.is_pr and i.closed_at is not None and i.merged_at is None,
                "draft": lambda i: i.draft,
            }.get(value)
        elif key in ("created", "updated", "closed", "merged"):
            try:
                lo, hi = date_range(value)
            except BadDate:
                raise validation_failed(f"Invalid date {value!r} for qualifier {key}.") from None
            attr = {"created": "created_at", "updated": "updated_at", "closed": "closed_at", "merged": "merged_at"}[key]

            def check(i: Issue, lo: float = lo, hi: float = hi, attr: str = attr) -> bool:
                t = getattr(i, attr)
                return t is not None and lo <= t < hi
        elif key == "author":
            check = lambda i, v=value: i.user.login == v  # noqa: E731
        elif key == "label":
            check = lambda i, v=value: v in i.labels  # noqa: E731
        elif key == "base":
            check = lambda i, v=value: i.base_branch == v  # noqa: E731
        if check is None:
            continue  # unknown qualifiers are ignored, as text would be
        checks.append((lambda i, f=check: not f(i)) if neg else check)
    if not repos:
        repos = [r for r in c.state.repos.values() if not r.private]
    out = []
    for r in repos:
        for i in c.state.issues[r.full_name.lower()]:
            if all(f(i) for f in checks) and all(t in i.title.lower() for t in terms):
                out.append((r, i))
    return out


@router.get("/search/issues")
async def search_issues(request: Request) -> Response:
    c = ctx(request, resource="search")
    q = request.query_params.get("q")
    if not q:
        raise validation_failed("q is missing", code="missing")
    c.state.count("search")
    items = _search_filter(c, q)
    sort = request.query_params.get("sort")
    if sort in ("created", "updated"):
        items.sort(
            key=lambda ri: getattr(ri[1], f"{sort}_at"), reverse=request.query_params.get("order", "desc") != "asc"
        )
    else:
        items.sort(key=lambda ri: (ri[0].id, -ri[1].number))
    per_page, page = page_params(request)
    if (page - 1) * per_page >= SEARCH_CAP:
        raise validation_failed("Only the first 1000 search results are available", field_name="page")
    chunk, link = paginate(c, items, cap=SEARCH_CAP)
    body = {
        "total_count": len(items),
        "incomplete_results": False,
        "items": [{**issue_json(c, r, i), "score": 1.0} for r, i in chunk],
    }
    return respond(c, body, headers=link)


# -- organisations, deployments, compare (issue 11) -------------------------------------------------
@router.get("/orgs/{org}/repos")
async def org_repos(request: Request, org: str) -> Response:
    """``type`` all|public|private|forks|sources|member, ``sort`` created|updated|pushed|full_name,
    ``direction`` (asc for full_name, else desc by default). Archived repositories are listed (the
    ``archived`` field tells them apart); private ones only with a token."""
    c = ctx(request)
    owner = c.state.users.get(org) or next((u for u in c.state.users.values() if u.login.lower() == org.lower()), None)
    if owner is None or owner.type != "Organization":
        raise GitHubError(404, "Not Found", f"{DOCS}/repos/repos#list-organization-repositories")
    q = request.query_params
    kind = q.get("type", "all")
    if kind not in ("all", "public", "private", "forks", "sources", "member"):
        raise GitHubError(
            422,
            "Validation Failed",
            extra={"errors": [{"resource": "Repository", "field": "type", "code": "invalid"}]},
        )
    repos = [r for r in c.state.repos.values() if r.owner is owner and (c.authenticated or not r.private)]
    if kind == "public":
        repos = [r for r in repos if not r.private]
    elif kind == "private":
        repos = [r for r in repos if r.private]
    elif kind == "forks":
        repos = []  # the sandbox has no forks
    sort = q.get("sort", "created")
    keys: dict[str, Callable[[Repo], Any]] = {
        "created": lambda r: (r.created_at, r.id),
        "updated": lambda r: (r.pushed_at, r.id),
        "pushed": lambda r: (r.pushed_at, r.id),
        "full_name": lambda r: r.full_name.lower(),
    }
    if sort not in keys:
        sort = "created"
    direction = q.get("direction", "asc" if sort == "full_name" else "desc")
    repos.sort(key=keys[sort], reverse=direction != "asc")
    page, link = paginate(c, repos)
    return respond(c, [repo_json(c, r, full=False) for r in page], headers=link)


def deployment_json(c: Ctx, d: Deployment) -> dict[str, Any]:
    base = f"{c.base}/repos/{d.repo.full_name}"
    statuses = d.visible_statuses(c.now)
    return {
        "url": f"{base}/deployments/{d.id}",
        "id": d.id,
        "node_id": f"DE_{d.id}",
        "sha": d.sha,
        "ref": d.ref,
        "task": d.task,
        "payload": dict(d.payload),
        "original_environment": d.environment,
        "environment": d.environment,
        "description": d.description or None,
        "creator": user_json(c, d.creator),
        "created_at": iso(d.created_at),
        "updated_at": iso(statuses[-1].created_at if statuses else d.created_at),
        "statuses_url": f"{base}/deployments/{d.id}/statuses",
        "repository_url": base,
        "transient_environment": d.transient,
        "production_environment": d.production,
        "performed_via_github_app": None,
    }


def deployment_status_json(c: Ctx, d: Deployment, s: DeploymentStatus) -> dict[str, Any]:
    base = f"{c.base}/repos/{d.repo.full_name}"
    env_url = f"https://{d.environment.lower()}.{d.repo.name}.acme.dev" if s.state == "success" else ""
    return {
        "url": f"{base}/deployments/{d.id}/statuses/{s.id}",
        "id": s.id,
        "node_id": f"DES_{s.id}",
        "state": s.state,
        "creator": user_json(c, d.creator),
        "description": s.description,
        "environment": d.environment,
        "target_url": s.log_url,
        "created_at": iso(s.created_at),
        "updated_at": iso(s.created_at),
        "deployment_url": f"{base}/deployments/{d.id}",
        "repository_url": base,
        "environment_url": env_url,
        "log_url": s.log_url,
        "performed_via_github_app": None,
    }


def _deployment(c: Ctx, owner: str, repo: str, deployment_id: int) -> Deployment:
    r = repo_of(c, owner, repo)
    for d in c.state.deployments.get(r.full_name.lower(), []):
        if d.id == deployment_id and d.created_at <= c.now:
            return d
    raise GitHubError(404, "Not Found", f"{DOCS}/deployments/deployments#get-a-deployment")


@router.get("/repos/{owner}/{repo}/deployments")
async def list_deployments(request: Request, owner: str, repo: str) -> Response:
    """Newest first; filters ``sha``, ``ref``, ``task``, ``environment`` (exact values)."""
    c = ctx(request)
    r = repo_of(c, owner, repo)
    q = request.query_params
    items = [d for d in c.state.deployments.get(r.full_name.lower(), []) if d.created_at <= c.now]
    for name in ("sha", "ref", "task", "environment"):
        if q.get(name):
            items = [d for d in items if getattr(d, name) == q[name]]
    items.sort(key=lambda d: (d.created_at, d.id), reverse=True)
    page, link = paginate(c, items)
    return respond(c, [deployment_json(c, d) for d in page], headers=link)


@router.get("/repos/{owner}/{repo}/deployments/{deployment_id}")
async def get_deployment(request: Request, owner: str, repo: str, deployment_id: int) -> Response:
    c = ctx(request)
    return respond(c, deployment_json(c, _deployment(c, owner, repo, deployment_id)))


@router.get("/repos/{owner}/{repo}/deployments/{deployment_id}/statuses")
async def list_deployment_statuses(request: Request, owner: str, repo: str, deployment_id: int) -> Response:
    """Newest first (the first item is the deployment's current state)."""
    c = ctx(request)
    d = _deployment(c, owner, repo, deployment_id)
    items = sorted(d.visible_statuses(c.now), key=lambda s: (s.created_at, s.id), reverse=True)
    page, link = paginate(c, items)
    return respond(c, [deployment_status_json(c, d, s) for s in page], headers=link)


def commit_json(c: Ctx, repo: Repo, index: int) -> dict[str, Any]:
    """A commit as the compare and commits endpoints send it. The author date is up to 36 hours
    before the commit reached the default branch (the committer date), as with reviewed changes."""
    commits = c.state.commits[repo.full_name.lower()]
    cm = commits[index]
    sha = c.state.commit_sha(repo, index)
    authored = cm.ts - int(sha[:6], 16) % (36 * 3600)
    name = cm.author.login if cm.author else cm.email.split("@")[0]
    base = f"{c.base}/repos/{repo.full_name}"
    parents = [c.state.commit_sha(repo, index - 1)] if index > 0 else []
    if cm.merge and index > 1:
        parents.append(_sha(repo.full_name, "side", index))
    tree = _sha("tree", sha)
    user = user_json(c, cm.author)
    return {
        "sha": sha,
        "node_id": f"C_{sha[:20]}",
        "commit": {
            "author": {"name": name, "email": cm.email, "date": iso(authored)},
            "committer": {"name": "GitHub" if cm.merge else name, "email": "noreply@github.com", "date": iso(cm.ts)},
            "message": f"{'Merge pull request' if cm.merge else 'Change'} #{index}",
            "tree": {"sha": tree, "url": f"{base}/git/trees/{tree}"},
            "url": f"{base}/git/commits/{sha}",
            "comment_count": 0,
            "verification": {
                "verified": False,
                "reason": "unsigned",
                "signature": None,
                "payload": None,
                "verified_at": None,
            },
        },
        "url": f"{base}/commits/{sha}",
        "html_url": f"https://github.com/{repo.full_name}/commit/{sha}",
        "comments_url": f"{base}/commits/{sha}/comments",
        "author": user,
        "committer": None if user is None else dict(user),
        "parents": [
            {"sha": p, "url": f"{base}/commits/{p}", "html_url": f"https://github.com/{repo.full_name}/commit/{p}"}
            for p in parents
        ],
    }


def _resolve_ref(c: Ctx, repo: Repo, ref: str) -> int | None:
    """A full or abbreviated (7+ characters) SHA, or the default branch, in the default branch's history."""
    shas = c.state.commit_index(repo)
    if not shas:
        return None
    if ref in (repo.default_branch, "HEAD"):
        return len(shas) - 1
    if ref in shas:
        return shas[ref]
    if len(ref) >= 7 and re.fullmatch(r"[0-9a-f]+", ref):
        found = [i for s, i in shas.items() if s.startswith(ref)]
        return found[0] if len(found) == 1 else None
    return None


@router.get("/repos/{owner}/{repo}/compare/{basehead:path}")
async def compare_commits(request: Request, owner: str, repo: str, basehead: str) -> Response:
    """``BASE...HEAD`` on the default branch's (linear) history, as ``git log BASE..HEAD`` in
    chronological order. Without ``per_page``/``page`` at most the newest 250 commits of the range;
    with either, pages of ``per_page`` (default 30, max 100) oldest first, linked by ``Link``, and the
    changed ``files`` only on page 1."""
    c = ctx(request)
    r = repo_of(c, owner, repo)
    base_ref, sep, head_ref = basehead.partition("...")
    b = _resolve_ref(c, r, base_ref) if sep else None
    h = _resolve_ref(c, r, head_ref) if sep else None
    if b is None or h is None:
        raise GitHubError(404, "Not Found", f"{DOCS}/commits/commits#compare-two-commits")
    ahead, behind = max(0, h - b), max(0, b - h)
    indexes = list(range(b + 1, h + 1))
    q = request.query_params
    paged = "per_page" in q or "page" in q
    if paged:
        chunk, link = paginate(c, indexes)
        _, page = page_params(request)
    else:
        chunk, link, page = indexes[-250:], {}, 1
    base_url = f"{c.base}/repos/{r.full_name}"
    body: dict[str, Any] = {
        "url": f"{base_url}/compare/{basehead}",
        "html_url": f"https://github.com/{r.full_name}/compare/{basehead}",
        "permalink_url": f"https://github.com/{r.full_name}/compare/{r.owner.login}:"
        f"{c.state.commit_sha(r, b)[:7]}...{r.owner.login}:{c.state.commit_sha(r, h)[:7]}",
        "diff_url": f"https://github.com/{r.full_name}/compare/{basehead}.diff",
        "patch_url": f"https://github.com/{r.full_name}/compare/{basehead}.patch",
        "base_commit": commit_json(c, r, b),
        "merge_base_commit": commit_json(c, r, min(b, h)),
        "status": "identical" if b == h else "ahead" if h > b else "behind",
        "ahead_by": ahead,
        "behind_by": behind,
        "total_commits": ahead,
        "commits": [commit_json(c, r, i) for i in chunk],
    }
    if page == 1:
        files: dict[str, list[int]] = {}
        commits = c.state.commits[r.full_name.lower()]
        for i in indexes:
            area = ("api", "core", "db", "ui", "util", "cli", "tests")[i % 7]
            f = files.setdefault(f"src/{area}/module_{i % 23}.go", [0, 0])
            f[0] += commits[i].additions
            f[1] += commits[i].deletions
        body["files"] = [
            {
                "sha": _sha("blob", name, adds, dels),
                "filename": name,
                "status": "modified",
                "additions": adds,
                "deletions": dels,
                "changes": adds + dels,
            }
            for name, (adds, dels) in sorted(files.items())[:300]
        ]
    return respond(c, body, headers=link)


# -- Actions ---------------------------------------------------------------------------------------
def workflow_json(c: Ctx, repo: Repo, wf: Workflow) -> dict[str, Any]:
    return {
        "id": wf.id,
        "node_id": f"W_{wf.id}",
        "name": wf.name,
        "path": wf.path,
        "state": "active",
        "created_at": iso(repo.created_at),
        "updated_at": iso(repo.pushed_at),
        "url": f"{c.base}/repos/{repo.full_name}/actions/workflows/{wf.id}",
        "html_url": f"https://github.com/{repo.full_name}/blob/{repo.default_branch}/{wf.path}",
    }


def run_json(c: Ctx, run: Run, attempt: int | None = None, exclude_prs: bool = False) -> dict[str, Any]:
    n = attempt or run.run_attempt
    att = run.attempts[n - 1]
    repo = run.repo
    url = f"{c.base}/repos/{repo.full_name}/actions/runs/{run.id}"
    prs = (
        []
        if exclude_prs or run.pull_request is None
        else [
            {
                "number": run.pull_request,
                "url": f"{c.base}/repos/{repo.full_name}/pulls/{run.pull_request}",
                "head": {"ref": run.head_branch, "sha": run.head_sha},
                "base": {"ref": repo.default_branch},
            }
        ]
    )
    small_repo = {
        "id": repo.id,
        "name": repo.name,
        "full_name": repo.full_name,
        "owner": user_json(c, repo.owner),
        "private": repo.private,
        "url": f"{c.base}/repos/{repo.full_name}",
    }
    return {
        "id": run.id,
        "name": run.workflow.name,
        "node_id": f"WFR_{run.id}",
        "check_suite_id": run.check_suite_id,
        "head_branch": run.head_branch,
        "head_sha": run.head_sha,
        "path": run.workflow.path,
        "display_title": run.display_title,
        "run_number": run.run_number,
        "event": run.event,
        "status": run.status(c.now, n),
        "conclusion": run.conclusion(c.now, n),
        "workflow_id": run.workflow.id,
        "url": url,
        "html_url": f"https://github.com/{repo.full_name}/actions/runs/{run.id}",
        "pull_requests": prs,
        "created_at": iso(run.created_at),
        "updated_at": iso(run.updated_at(c.now, n)),
        "actor": user_json(c, run.actor),
        "triggering_actor": user_json(c, att.triggering_actor),
        "run_attempt": n,
        "run_started_at": iso(att.run_started_at),
        "jobs_url": f"{url}/jobs",
        "logs_url": f"{url}/logs",
        "check_suite_url": f"{c.base}/repos/{repo.full_name}/check-suites/{run.check_suite_id}",
        "artifacts_url": f"{url}/artifacts",
        "cancel_url": f"{url}/cancel",
        "rerun_url": f"{url}/rerun",
        "previous_attempt_url": f"{url}/attempts/{n - 1}" if n > 1 else None,
        "workflow_url": f"{c.base}/repos/{repo.full_name}/actions/workflows/{run.workflow.id}",
        "head_commit": {
            "id": run.head_sha,
            "tree_id": _sha("tree", run.head_sha),
            "message": run.display_title,
            "timestamp": iso(run.created_at - 5),
            "author": {"name": run.actor.login, "email": f"{run.actor.login}@acme.dev"},
        },
        "repository": small_repo,
        "head_repository": small_repo,
    }


def _steps(job: Job, now: float) -> list[dict[str, Any]]:
    names = ["Set up job", "Checkout", f"Run {job.name}", "Complete job"]
    span = job.completed_at - job.started_at
    cuts = [
        job.started_at,
        job.started_at + span * 0.05,
        job.started_at + span * 0.15,
        job.started_at + span * 0.97,
        job.completed_at,
    ]
    end = job.finished_at(now)
    outcome = job.outcome(now)
    out = []
    for k, name in enumerate(names):
        start, stop = cuts[k], cuts[k + 1]
        if now < start or (end is not None and start > end):
            status, conclusion, s_at, c_at = (
                ("completed", "skipped", None, None) if end is not None else ("queued", None, None, None)
            )
        elif now < stop and end is None:
            status, conclusion, s_at, c_at = "in_progress", None, start, None
        else:
            status, s_at, c_at = "completed", start, min(stop, end) if end else stop
            conclusion = outcome if k == 2 and outcome != "success" else "success"
            if k == 3 and outcome == "cancelled":
                conclusion = "cancelled"
        out.append(
            {
                "name": name,
                "status": status,
                "conclusion": conclusion,
                "number": k + 1,
                "started_at": iso(s_at),
                "completed_at": iso(c_at),
            }
        )
    return out


def job_json(c: Ctx, run: Run, job: Job) -> dict[str, Any]:
    repo = run.repo.full_name
    status = job.status(c.now)
    return {
        "id": job.id,
        "run_id": run.id,
        "run_attempt": job.run_attempt,
        "node_id": f"CR_{job.id}",
        "head_sha": run.head_sha,
        "head_branch": run.head_branch,
        "workflow_name": run.workflow.name,
        "name": job.name,
        "status": status,
        "conclusion": job.outcome(c.now),
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at if status != "queued" else job.created_at),
        "completed_at": iso(job.finished_at(c.now)),
        "url": f"{c.base}/repos/{repo}/actions/jobs/{job.id}",
        "html_url": f"https://github.com/{repo}/actions/runs/{run.id}/job/{job.id}",
        "run_url": f"{c.base}/repos/{repo}/actions/runs/{run.id}",
        "check_run_url": f"{c.base}/repos/{repo}/check-runs/{job.id}",
        "steps": _steps(job, c.now),
        "labels": list(job.labels),
        "runner_id": None if status == "queued" else job.id % 1000,
        "runner_name": None if status == "queued" else job.runner,
        "runner_group_id": None if status == "queued" else 1,
        "runner_group_name": None if status == "queued" else "GitHub Actions",
    }


_STATUSES = {"queued", "in_progress", "completed", "requested", "waiting", "pending"}
_CONCLUSIONS = {
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "skipped",
    "stale",
    "startup_failure",
    "success",
    "timed_out",
}
_CAPPING = ("actor", "branch", "check_suite_id", "created", "event", "head_sha", "status")


def _filter_runs(c: Ctx, runs: list[Run]) -> tuple[list[Run], bool]:
    q = c.request.query_params
    out = runs
    if q.get("actor"):
        out = [r for r in out if r.actor.login == q["actor"]]
    if q.get("branch"):
        out = [r for r in out if r.head_branch == q["branch"]]
    if q.get("event"):
        out = [r for r in out if r.event == q["event"]]
    if q.get("head_sha"):
        out = [r for r in out if r.head_sha == q["head_sha"]]
    if q.get("check_suite_id"):
        out = [r for r in out if str(r.check_suite_id) == q["check_suite_id"]]
    if q.get("status"):
        wanted = q["status"]
        if wanted not in _STATUSES | _CONCLUSIONS:
            raise GitHubError(
                422,
                f"Invalid status: {wanted}",
                extra={"errors": [{"resource": "WorkflowRun", "field": "status", "code": "invalid"}]},
            )
        out = [r for r in out if r.status(c.now) == wanted or r.conclusion(c.now) == wanted]
    if q.get("created"):
        try:
            lo, hi = date_range(q["created"])
        except BadDate:
            raise GitHubError(
                422,
                f"Invalid created parameter: {q['created']}",
                extra={"errors": [{"resource": "WorkflowRun", "field": "created", "code": "invalid"}]},
            ) from None
        out = [r for r in out if lo <= r.created_at < hi]
    return out, any(q.get(k) for k in _CAPPING)


def _list_runs(c: Ctx, runs: list[Run]) -> Response:
    runs, capped = _filter_runs(c, sorted(runs, key=lambda r: (r.created_at, r.id), reverse=True))
    exclude = c.request.query_params.get("exclude_pull_requests", "").lower() in ("1", "true")
    page, link = paginate(c, runs, cap=SEARCH_CAP if capped else None)
    c.state.count("runs_listed", len(page))
    return respond(
        c,
        {"total_count": len(runs), "workflow_runs": [run_json(c, r, exclude_prs=exclude) for r in page]},
        headers=link,
    )


@router.get("/repos/{owner}/{repo}/actions/workflows")
async def list_workflows(request: Request, owner: str, repo: str) -> Response:
    c = ctx(request)
    r = repo_of(c, owner, repo)
    wfs = c.state.workflows[r.full_name.lower()]
    page, link = paginate(c, wfs)
    return respond(c, {"total_count": len(wfs), "workflows": [workflow_json(c, r, w) for w in page]}, headers=link)


def _workflow(c: Ctx, r: Repo, workflow_id: str) -> Workflow:
    for wf in c.state.workflows[r.full_name.lower()]:
        if str(wf.id) == workflow_id or wf.path.rsplit("/", 1)[-1] == workflow_id:
            return wf
    raise not_found()


@router.get("/repos/{owner}/{repo}/actions/workflows/{workflow_id}")
async def get_workflow(request: Request, owner: str, repo: str, workflow_id: str) -> Response:
    c = ctx(request)
    r = repo_of(c, owner, repo)
    return respond(c, workflow_json(c, r, _workflow(c, r, workflow_id)))


@router.get("/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs")
async def list_workflow_runs(request: Request, owner: str, repo: str, workflow_id: str) -> Response:
    c = ctx(request)
    r = repo_of(c, owner, repo)
    wf = _workflow(c, r, workflow_id)
    return _list_runs(c, [x for x in c.state.repo_runs(r) if x.workflow is wf])


@router.get("/repos/{owner}/{repo}/actions/runs")
async def list_runs(request: Request, owner: str, repo: str) -> Response:
    c = ctx(request)
    return _list_runs(c, c.state.repo_runs(repo_of(c, owner, repo)))


def _run(c: Ctx, owner: str, repo: str, run_id: int) -> Run:
    r = repo_of(c, owner, repo)
    run = c.state.runs.get(run_id)
    if run is None or run.repo is not r:
        raise not_found()
    return run


def _attempt_no(run: Run, n: int) -> int:
    if not 1 <= n <= run.run_attempt:
        raise not_found()
    return n


@router.get("/repos/{owner}/{repo}/actions/runs/{run_id}")
async def get_run(request: Request, owner: str, repo: str, run_id: int) -> Response:
    c = ctx(request)
    return respond(c, run_json(c, _run(c, owner, repo, run_id)))


@router.get("/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt}")
async def get_attempt(request: Request, owner: str, repo: str, run_id: int, attempt: int) -> Response:
    c = ctx(request)
    run = _run(c, owner, repo, run_id)
    return respond(c, run_json(c, run, _attempt_no(run, attempt)))


def _jobs_page(c: Ctx, run: Run, jobs: list[Job]) -> Response:
    jobs = sorted(jobs, key=lambda j: (j.run_attempt, j.id))
    page, link = paginate(c, jobs)
    return respond(c, {"total_count": len(jobs), "jobs": [job_json(c, run, j) for j in page]}, headers=link)


@router.get("/repos/{owner}/{repo}/actions/runs/{run_id}/jobs")
async def list_jobs(request: Request, owner: str, repo: str, run_id: int) -> Response:
    c = ctx(request)
    run = _run(c, owner, repo, run_id)
    which = request.query_params.get("filter", "latest")
    if which not in ("latest", "all"):
        raise GitHubError(
            422,
            f"Invalid filter: {which}",
            extra={"errors": [{"resource": "WorkflowJob", "field": "filter", "code": "invalid"}]},
        )
    jobs = [j for a in run.attempts for j in a.jobs] if which == "all" else run.latest_jobs()
    return _jobs_page(c, run, jobs)


@router.get("/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt}/jobs")
async def list_attempt_jobs(request: Request, owner: str, repo: str, run_id: int, attempt: int) -> Response:
    c = ctx(request)
    run = _run(c, owner, repo, run_id)
    return _jobs_page(c, run, run.attempts[_attempt_no(run, attempt) - 1].jobs)


def _job(c: Ctx, owner: str, repo: str, job_id: int) -> tuple[Run, Job]:
    r = repo_of(c, owner, repo)
    job = c.state.jobs.get(job_id)
    if job is None or c.state.runs[job.run_id].repo is not r:
        raise not_found()
    return c.state.runs[job.run_id], job


@router.get("/repos/{owner}/{repo}/actions/jobs/{job_id}")
async def get_job(request: Request, owner: str, repo: str, job_id: int) -> Response:
    c = ctx(request)
    run, job = _job(c, owner, repo, job_id)
    return respond(c, job_json(c, run, job))


# -- logs ------------------------------------------------------------------------------------------
def _stamp(ts: float) -> str:
    d = datetime.fromtimestamp(ts, UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond * 10:07d}Z"


def job_log(run: Run, job: Job, now: float) -> str:
    """The plain-text job log: every line starts with a 7-digit-fraction UTC timestamp."""
    end = job.finished_at(now) or now
    span = max(1.0, job.completed_at - job.started_at)
    t = job.started_at
    lines: list[tuple[float, str]] = [
        (t, "Current runner version: '2.321.0'"),
        (t, f"Runner name: '{job.runner}'"),
        (t, "##[group]Operating System"),
        (t, "Ubuntu 24.04"),
        (t, "##[endgroup]"),
        (t + span * 0.05, "##[group]Run actions/checkout@v4"),
        (t + span * 0.05, f"Syncing repository: {run.repo.full_name}"),
        (t + span * 0.06, f"Checking out ref: refs/heads/{run.head_branch} ({run.head_sha[:7]})"),
        (t + span * 0.14, "##[endgroup]"),
        (t + span * 0.15, f"##[group]Run make {job.name}"),
        (t + span * 0.15, f"make {job.name}"),
        (t + span * 0.16, "##[endgroup]"),
    ]
    for k in range(5):
        lines.append((t + span * (0.2 + 0.15 * k), f"[{job.name}] step {k + 1}/5 ok"))
    outcome = job.outcome(now)
    if outcome in ("failure", "timed_out"):
        lines.append((t + span * 0.95, job.failure_text or "tests failed"))
        lines.append((t + span * 0.96, "##[warning]Some tests were retried"))
        msg = (
            "Process completed with exit code 1."
            if outcome == "failure"
            else f"The job running on runner {job.runner} has exceeded the maximum execution time of 360 minutes."
        )
        lines.append((t + span * 0.96, f"##[error]{msg}"))
    elif outcome == "cancelled":
        lines.append((end, "##[error]The operation was canceled."))
    lines.append((t + span * 0.98, "Cleaning up orphan processes"))
    return "".join(f"{_stamp(ts)} {text}\n" for ts, text in lines if ts <= end)


def _blob(c: Ctx, kind: str, content_type: str, data: bytes) -> RedirectResponse:
    key = hashlib.sha1(f"{kind}/{len(c.state.blobs)}/{c.now}".encode()).hexdigest()[:24]
    expires = c.now + LOG_URL_TTL
    c.state.blobs[key] = (expires, content_type, data)
    url = f"{c.base}/_blobs/{kind}/{key}?sv=2025-01-05&se={iso(expires)}&sp=r&sig={key[:12]}"
    response = RedirectResponse(url, status_code=302)
    response.headers.update(rate_headers(c.bucket, c.resource))
    c.bucket.remaining -= 1
    c.bucket.used += 1
    return response


@router.get("/_blobs/{kind}/{key}")
async def get_blob(request: Request, kind: str, key: str) -> Response:
    state = gh_state(request)
    found = state.blobs.get(key)
    if found is None:
        return Response(
            '<?xml version="1.0"?><Error><Code>BlobNotFound</Code></Error>',
            status_code=404,
            media_type="application/xml",
        )
    expires, content_type, data = found
    if state.now() > expires:
        body = (
            '<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code>'
            "<Message>Server failed to authenticate the request. "
            f"Signed expiry time [{iso(expires)}] must be after current time [{iso(state.now())}]</Message></Error>"
        )
        return Response(body, status_code=403, media_type="application/xml")
    return Response(data, media_type=content_type)


@router.get("/repos/{owner}/{repo}/actions/jobs/{job_id}/logs")
async def job_logs(request: Request, owner: str, repo: str, job_id: int) -> Response:
    c = ctx(request)
    run, job = _job(c, owner, repo, job_id)
    if job.status(c.now) == "queued":
        raise not_found()
    c.state.count("job_logs")
    return _blob(c, "job-logs", "text/plain; charset=utf-8", job_log(run, job, c.now).encode())


def _logs_zip(c: Ctx, run: Run, jobs: list[Job]) -> Response:
    if run.status(c.now) != "completed":
        raise not_found()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, job in enumerate(jobs):
            text = job_log(run, job, c.now)
            zf.writestr(f"{n}_{job.name}.txt", text)
            for step in _steps(job, c.now):
                zf.writestr(
                    f"{job.name}/{step['number']}_{step['name']}.txt",
                    "".join(
                        line + "\n" for line in text.splitlines() if step["name"] != "Set up job" or "Runner" in line
                    ),
                )
    c.state.count("run_logs")
    return _blob(c, "run-logs", "application/zip", buf.getvalue())


@router.get("/repos/{owner}/{repo}/actions/runs/{run_id}/logs")
async def run_logs(request: Request, owner: str, repo: str, run_id: int) -> Response:
    c = ctx(request)
    run = _run(c, owner, repo, run_id)
    return _logs_zip(c, run, run.attempts[-1].jobs)


@router.get("/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt}/logs")
async def attempt_logs(request: Request, owner: str, repo: str, run_id: int, attempt: int) -> Response:
    c = ctx(request)
    run = _run(c, owner, repo, run_id)
    return _logs_zip(c, run, run.attempts[_attempt_no(run, attempt) - 1].jobs)


# -- re-runs and cancel ----------------------------------------------------------------------------
def _check_rerunnable(c: Ctx, run: Run) -> None:
    if run.status(c.now) != "completed":
        raise GitHubError(403, "This workflow is already running", f"{DOCS}/actions/workflow-runs#re-run-a-workflow")
    if c.now - run.created_at > RERUN_WINDOW:
        raise GitHubError(
            403,
            "Unable to re-run this workflow run because it was created over a month ago",
            f"{DOCS}/actions/workflow-runs#re-run-a-workflow",
        )
    if run.run_attempt >= 50:
        raise GitHubError(
            403,
            "This workflow run has reached the maximum number of re-run attempts",
            f"{DOCS}/actions/workflow-runs#re-run-a-workflow",
        )


def rerun(state: GitHubState, run: Run, names: list[str], now: float, actor: str = "sandbox-bot") -> Attempt:
    """A new attempt re-running ``names`` (queued at ``now``; outcome ``state.rerun_conclusion``)."""
    attempt = Attempt(run.run_attempt + 1, now, state.user(actor))
    for name in names:
        attempt.jobs.append(
            plan_job(state, run, attempt.number, name, now, state.rerun_conclusion, state.rng, (5, 30), (60, 300))
        )
    run.attempts.append(attempt)
    state.count("reruns")
    _deploy_again(state, run, attempt)
    return attempt


def _deploy_again(state: GitHubState, run: Run, attempt: Attempt) -> None:
    """A re-run of a workflow run that deployed (a deployment's status links to the run, as GitHub's
    ``environment:`` jobs do) deploys its SHA again: a new deployment of the same environment whose
    statuses follow the new attempt's last job (queued, in_progress, then success or failure)."""
    marker = f"/actions/runs/{run.id}"
    linked = [
        d
        for d in state.deployments.get(run.repo.full_name.lower(), [])
        if any(st.log_url.endswith(marker) for st in d.statuses)
    ]
    if not linked or not attempt.jobs:
        return
    source = max(linked, key=lambda d: d.created_at)
    job = attempt.jobs[-1]
    dep = Deployment(
        next(state.deployment_ids),
        run.repo,
        source.sha,
        source.ref,
        source.environment,
        attempt.run_started_at,
        attempt.triggering_actor,
        description=f"Re-run of {run.workflow.name} #{run.run_number} (attempt {attempt.number})",
        production=source.production,
        transient=source.transient,
    )
    final = "success" if job.conclusion == "success" else "failure"
    log_url = f"https://github.com/{run.repo.full_name}{marker}"
    for at, st in ((attempt.run_started_at, "queued"), (job.started_at, "in_progress"), (job.completed_at, final)):
        dep.statuses.append(DeploymentStatus(next(state.status_ids), st, at, "", log_url))
    state.deployments.setdefault(run.repo.full_name.lower(), []).append(dep)


def _dependents(run: Run, first: str) -> list[str]:
    order = list(run.workflow.jobs)
    return order[order.index(first) :] if first in order else [first]


@router.post("/repos/{owner}/{repo}/actions/runs/{run_id}/rerun")
async def rerun_run(request: Request, owner: str, repo: str, run_id: int) -> Response:
    c = ctx(request)
    run = _run(c, owner, repo, run_id)
    _check_rerunnable(c, run)
    rerun(c.state, run, list(run.workflow.jobs), c.now)
    return respond(c, {}, status=201)


@router.post("/repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs")
async def rerun_failed(request: Request, owner: str, repo: str, run_id: int) -> Response:
    c = ctx(request)
    run = _run(c, owner, repo, run_id)
    _check_rerunnable(c, run)
    failed = [j.name for j in run.latest_jobs() if j.outcome(c.now) in ("failure", "cancelled", "timed_out")]
    if not failed:
        raise GitHubError(
            403,
            "This workflow run cannot be re-run because it has no failed jobs",
            f"{DOCS}/actions/workflow-runs#re-run-failed-jobs-from-a-workflow-run",
        )
    names = [n for n in run.workflow.jobs if n in set().union(*(_dependents(run, f) for f in failed))]
    rerun(c.state, run, names, c.now)
    return respond(c, {}, status=201)


@router.post("/repos/{owner}/{repo}/actions/jobs/{job_id}/rerun")
async def rerun_job(request: Request, owner: str, repo: str, job_id: int) -> Response:
    c = ctx(request)
    run, job = _job(c, owner, repo, job_id)
    _check_rerunnable(c, run)
    rerun(c.state, run, _dependents(run, job.name), c.now)
    return respond(c, {}, status=201)


async def _cancel(request: Request, owner: str, repo: str, run_id: int, force: bool = False) -> Response:
    """202 for a run not completed yet (409 once completed). A ``cancel_resistant`` run (a job with
    ``always()`` steps) answers the cancel 202 but goes on; ``force-cancel`` stops it."""
    c = ctx(request)
    run = _run(c, owner, repo, run_id)
    if run.status(c.now) == "completed":
        raise GitHubError(
            409,
            "Cannot cancel a workflow run that is completed.",
            f"{DOCS}/actions/workflow-runs#cancel-a-workflow-run",
        )
    if run.cancel_resistant and not force:
        c.state.count("cancels_ignored")
        return respond(c, {}, status=202)
    for job in run.latest_jobs():
        if job.status(c.now) != "completed":
            job.cancelled_at = c.now
    c.state.count("cancels")
    return respond(c, {}, status=202)


@router.post("/repos/{owner}/{repo}/actions/runs/{run_id}/cancel")
async def cancel_run(request: Request, owner: str, repo: str, run_id: int) -> Response:
    return await _cancel(request, owner, repo, run_id)


@router.post("/repos/{owner}/{repo}/actions/runs/{run_id}/force-cancel")
async def force_cancel_run(request: Request, owner: str, repo: str, run_id: int) -> Response:
    return await _cancel(request, owner, repo, run_id, force=True)


# -- creating deployments, environments (ci_run_action) ----------------------------------------------
CD_STEPS = (("queued", 0), ("in_progress", 20), ("final", 90))  # a CD system's statuses, seconds after creation


@router.post("/repos/{owner}/{repo}/deployments")
async def create_deployment(request: Request, owner: str, repo: str) -> Response:
    """201 with the deployment of ``ref`` (a branch, tag or SHA of the default branch's history; 422
    otherwise) to ``environment`` (default ``production``). Without a token: 401 (``Requires
    authentication``). A CD system is simulated: statuses queued, in_progress and ``deploy_outcome``
    (control ``/deploy_outcome``) follow at 0, 20 and 90 seconds of sandbox time."""
    c = ctx(request)
    r = repo_of(c, owner, repo)
    if not c.authenticated:
        raise GitHubError(401, "Requires authentication")
    body = await _body(request)
    ref = body.get("ref")
    if not isinstance(ref, str) or not ref.strip():
        raise GitHubError(
            422,
            'Invalid request.\n\n"ref" wasn\'t supplied.',
            extra={"errors": [{"resource": "Deployment", "field": "ref", "code": "missing_field"}]},
        )
    ref = ref.strip()
    index = c.state.commit_index(r)
    sha = next((s for s in index if s == ref or (len(ref) >= 7 and s.startswith(ref))), None)
    if sha is None and ref in (r.default_branch, f"refs/heads/{r.default_branch}") and index:
        sha = c.state.commit_sha(r, len(index) - 1)
    known_shas = {d.sha for d in c.state.deployments.get(r.full_name.lower(), [])}
    if sha is None and ref in known_shas:
        sha = ref
    if sha is None:
        raise GitHubError(422, f"No ref found for: {ref}")
    environment = str(body.get("environment") or "production")
    dep = Deployment(
        next(c.state.deployment_ids),
        r,
        sha,
        ref,
        environment,
        c.now,
        c.state.user(c.state.token_login),
        task=str(body.get("task") or "deploy"),
        description=str(body.get("description") or ""),
        production=environment.lower() in ("production", "prod")
        if body.get("production_environment") is None
        else bool(body["production_environment"]),
        transient=bool(body.get("transient_environment")),
    )
    dep.payload = dict(body["payload"]) if isinstance(body.get("payload"), dict) else {}
    for st, after in CD_STEPS:
        state_name = c.state.deploy_outcome if st == "final" else st
        dep.statuses.append(DeploymentStatus(next(c.state.status_ids), state_name, c.now + after))
    c.state.deployments.setdefault(r.full_name.lower(), []).append(dep)
    c.state.count("deployments_created")
    return respond(c, deployment_json(c, dep), status=201)


@router.get("/repos/{owner}/{repo}/environments")
async def list_environments(request: Request, owner: str, repo: str) -> Response:
    """``{total_count, environments}``: one per environment the repository has deployed to, by name."""
    c = ctx(request)
    r = repo_of(c, owner, repo)
    names: dict[str, float] = {}
    for d in c.state.deployments.get(r.full_name.lower(), []):
        if d.created_at <= c.now:
            names[d.environment] = min(names.get(d.environment, d.created_at), d.created_at)
    items = sorted(names.items())
    page, link = paginate(c, items)
    base = f"{c.base}/repos/{r.full_name}/environments"
    envs = [
        {
            "id": 161_000_000 + sum(map(ord, name)),
            "node_id": f"EN_{name}",
            "name": name,
            "url": f"{base}/{name}",
            "html_url": f"https://github.com/{r.full_name}/deployments/activity_log?environments_filter={name}",
            "created_at": iso(first),
            "updated_at": iso(first),
            "protection_rules": [],
            "deployment_branch_policy": None,
        }
        for name, first in page
    ]
    return respond(c, {"total_count": len(items), "environments": envs}, headers=link)


# -- controls (/_sandbox/github) -------------------------------------------------------------------
class TokensBody(BaseModel):
    tokens: list[str]


class RunSpec(BaseModel):
    workflow: str | None = None  # name, id or file name; default: the repo's first workflow
    event: str = "push"
    branch: str | None = None  # default: the default branch
    actor: str = "alice"
    created_at: str | float | None = None  # ISO or epoch; default: now - age_s
    age_s: float = 0
    outcome: str = "success"  # success | failure | cancelled | timed_out | flaky
    queue_s: int | None = None
    duration_s: int | None = None
    count: int = 1  # this many runs, spaced spacing_s apart going back in time
    spacing_s: float = 600
    ignores_cancel: bool = False  # /cancel is answered 202 but the run goes on; /force-cancel stops it


class RunsBody(BaseModel):
    runs: list[RunSpec]


class RateBody(BaseModel):
    resource: str = "core"
    token: str | None = None  # default: the default token
    limit: int | None = None
    remaining: int | None = None
    reset_in: float | None = None
    status: int | None = None  # 403 (default) or 429 when exhausted


class SecondaryBody(BaseModel):
    times: int | None = 1  # None: until cleared
    retry_after: float = 60
    path: str = ".*"  # regex on the path below /github


class StatsBody(BaseModel):
    pending: int = 1  # answer this many stats requests with 202 first


class RerunBody(BaseModel):
    conclusion: str = "success"


@control.put("/tokens")
def set_tokens(request: Request, body: TokensBody) -> dict[str, Any]:
    gh_state(request).tokens = set(body.tokens)
    return {"tokens": sorted(body.tokens)}


@control.post("/repos/{owner}/{repo}/runs")
def add_runs(request: Request, owner: str, repo: str, body: RunsBody) -> dict[str, Any]:
    state = gh_state(request)
    r = state.repo(owner, repo)
    if r is None:
        raise HTTPException(404, f"unknown repo {owner}/{repo}; known: {sorted(state.repos)}")
    wfs = state.workflows[r.full_name.lower()]
    if not wfs:
        wfs.append(Workflow(90_000_000 + r.id % 1000 * 10 + 9, "CI", ".github/workflows/ci.yml", ("build",), ("push",)))
    now = state.now()
    created: list[int] = []
    for spec in body.runs:
        if spec.outcome not in ("success", "failure", "cancelled", "timed_out", "flaky"):
            raise HTTPException(400, f"bad outcome {spec.outcome!r}")
        wf = (
            wfs[0]
            if spec.workflow is None
            else next((w for w in wfs if spec.workflow in (w.name, str(w.id), w.path.rsplit("/", 1)[-1])), None)
        )
        if wf is None:
            raise HTTPException(400, f"unknown workflow {spec.workflow!r}")
        if spec.created_at is None:
            start = now - spec.age_s
        elif isinstance(spec.created_at, (int, float)):
            start = float(spec.created_at)
        else:
            start = _parse_instant(spec.created_at)[0]
        for k in range(spec.count):
            number = 1 + sum(1 for x in state.repo_runs(r) if x.workflow is wf)
            q = (spec.queue_s, spec.queue_s) if spec.queue_s is not None else None
            d = (spec.duration_s, spec.duration_s) if spec.duration_s is not None else None
            run = add_run(
                state,
                r,
                wf,
                number,
                spec.event,
                spec.branch or r.default_branch,
                spec.actor,
                start - k * spec.spacing_s,
                spec.outcome,
                state.rng,
                q,
                d,
            )
            run.cancel_resistant = spec.ignores_cancel
            created.append(run.id)
    return {"created": len(created), "run_ids": created}


@control.post("/rate_limit")
def set_rate_limit(request: Request, body: RateBody) -> dict[str, Any]:
    state = gh_state(request)
    now = state.now()
    if body.limit is not None:
        state.limits[body.resource] = body.limit
    bucket = _bucket(state, body.token or DEFAULT_TOKEN, body.resource, now)
    if body.limit is not None:
        bucket.limit = body.limit
        bucket.remaining = min(bucket.remaining, body.limit)
    if body.remaining is not None:
        bucket.remaining = body.remaining
        bucket.used = bucket.limit - body.remaining
    if body.reset_in is not None:
        bucket.reset = now + body.reset_in
    if body.status is not None:
        bucket.status = body.status
    return {
        "resource": body.resource,
        "limit": bucket.limit,
        "remaining": bucket.remaining,
        "used": bucket.used,
        "reset": int(bucket.reset),
        "status": bucket.status,
    }


@control.post("/secondary_rate_limit")
def set_secondary(request: Request, body: SecondaryBody) -> dict[str, Any]:
    gh_state(request).secondary = {"remaining": body.times, "retry_after": body.retry_after, "path": body.path}
    return gh_state(request).secondary


@control.delete("/secondary_rate_limit")
def clear_secondary(request: Request) -> dict[str, Any]:
    gh_state(request).secondary = {}
    return {}


@control.post("/repos/{owner}/{repo}/stats")
def set_stats(request: Request, owner: str, repo: str, body: StatsBody) -> dict[str, Any]:
    state = gh_state(request)
    r = state.repo(owner, repo)
    if r is None:
        raise HTTPException(404, f"unknown repo {owner}/{repo}")
    state.stats_pending[r.full_name.lower()] = body.pending
    return {"repo": r.full_name, "pending": body.pending}


@control.post("/rerun_conclusion")
def set_rerun_conclusion(request: Request, body: RerunBody) -> dict[str, Any]:
    gh_state(request).rerun_conclusion = body.conclusion
    return {"conclusion": body.conclusion}


class DeployOutcomeBody(BaseModel):
    state: str = "success"  # success | failure | error


@control.post("/deploy_outcome")
def set_deploy_outcome(request: Request, body: DeployOutcomeBody) -> dict[str, Any]:
    """The final status the simulated CD system posts on deployments created through the API."""
    if body.state not in ("success", "failure", "error"):
        raise HTTPException(400, f"bad state {body.state!r}: success, failure or error")
    gh_state(request).deploy_outcome = body.state
    return {"state": body.state}


class DeploymentSpec(BaseModel):
    environment: str = "production"
    sha: str | None = None  # default: the newest default-branch commit at created_at (or a SHA of its own)
    ref: str | None = None
    created_at: str | float | None = None  # ISO or epoch; default: now - age_s
    age_s: float = 0
    states: list[str] = ["queued", "in_progress", "success"]
    step_s: int = 60  # seconds between statuses (later ones appear as the clock advances)
    description: str = ""
    creator: str = DEPLOY_BOT
    production: bool | None = None  # default: environment is production/prod
    transient: bool = False


class DeploymentsBody(BaseModel):
    deployments: list[DeploymentSpec]


class ForbiddenBody(BaseModel):
    message: str = "Resource not accessible by personal access token"
    path: str = ".*"  # regex on the path below /github, e.g. "/actions/"


class NewReposBody(BaseModel):
    owner: str = "acme"
    names: list[str] = []
    count: int = 0  # plus this many named f"{prefix}{n:03d}"
    prefix: str = "svc-"
    runs_per_day: int = 0
    days: int = 30
    rerun_share: float = 0.1  # runs whose attempt 1 fails and a re-run (attempt 2) passes
    fail_share: float = 0.08
    archived: bool = False
    private: bool = False
    seed: int = 0
    items: int = 0  # issues and PRs over the last 90 days, with comments and reviews (seed_activity)


def _when(state: GitHubState, created_at: str | float | None, age_s: float) -> float:
    if created_at is None:
        return state.now() - age_s
    if isinstance(created_at, (int, float)):
        return float(created_at)
    try:
        return _parse_instant(created_at)[0]
    except BadDate:
        raise HTTPException(400, f"bad time {created_at!r}") from None


@control.post("/repos/{owner}/{repo}/deployments")
def add_deployments(request: Request, owner: str, repo: str, body: DeploymentsBody) -> dict[str, Any]:
    """Add deployments with their statuses; statuses after the sandbox's now appear as the clock advances."""
    state = gh_state(request)
    r = state.repo(owner, repo)
    if r is None:
        raise HTTPException(404, f"unknown repo {owner}/{repo}")
    allowed = {"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}
    made = []
    for spec in body.deployments:
        bad = [s for s in spec.states if s not in allowed]
        if bad:
            raise HTTPException(400, f"bad states {bad}; allowed: {sorted(allowed)}")
        created = _when(state, spec.created_at, spec.age_s)
        sha = spec.sha
        if sha is None:
            k = commit_at(state, r, created)
            sha = state.commit_sha(r, k) if k is not None else _sha(r.full_name, "deploy", created)
        dep = add_deployment(
            state,
            r,
            spec.environment,
            sha,
            created,
            list(spec.states),
            state.rng,
            ref=spec.ref,
            creator=spec.creator,
            description=spec.description,
            production=spec.production,
            transient=spec.transient,
            step=(spec.step_s, spec.step_s),
        )
        made.append({"id": dep.id, "sha": dep.sha, "status_ids": [s.id for s in dep.statuses]})
    return {"created": len(made), "deployments": made}


@control.post("/repos/{owner}/{repo}/forbidden")
def set_forbidden(request: Request, owner: str, repo: str, body: ForbiddenBody) -> dict[str, Any]:
    """Answer 403 ``message`` (with normal rate-limit headers) on this repository's paths matching
    ``path``: a token that lacks a permission. DELETE lifts it."""
    state = gh_state(request)
    r = state.repo(owner, repo)
    if r is None:
        raise HTTPException(404, f"unknown repo {owner}/{repo}")
    try:
        re.compile(body.path)
    except re.error as exc:
        raise HTTPException(400, f"bad path regex: {exc}") from None
    state.forbidden[r.full_name.lower()] = {"message": body.message, "path": body.path}
    return {"repo": r.full_name, **state.forbidden[r.full_name.lower()]}


@control.delete("/repos/{owner}/{repo}/forbidden")
def clear_forbidden(request: Request, owner: str, repo: str) -> dict[str, Any]:
    gh_state(request).forbidden.pop(f"{owner}/{repo}".lower(), None)
    return {}


@control.get("/repos/{owner}/{repo}/run_ids")
def run_ids(
    request: Request, owner: str, repo: str, created_from: str | None = None, created_to: str | None = None
) -> dict[str, Any]:
    """Ground truth for tests: ids of the repository's runs created in ``[created_from, created_to)``
    (ISO times or epoch seconds; open ends when left out), ascending."""
    state = gh_state(request)
    r = state.repo(owner, repo)
    if r is None:
        raise HTTPException(404, f"unknown repo {owner}/{repo}")

    def bound(value: str | None, default: float) -> float:
        if value is None:
            return default
        try:
            return float(value)
        except ValueError:
            return _when(state, value, 0)

    lo, hi = bound(created_from, float("-inf")), bound(created_to, float("inf"))
    ids = sorted(x.id for x in state.repo_runs(r) if lo <= x.created_at < hi)
    return {"count": len(ids), "run_ids": ids}


@control.post("/repos")
def add_repos(request: Request, body: NewReposBody) -> dict[str, Any]:
    """Add repositories (``names`` and/or ``count`` generated ones) to an organisation, each with a
    default-branch history and ``runs_per_day`` CI runs a day over ``days`` days (workflow CI: lint,
    test, build), ``rerun_share`` of them re-run (attempt 2 passes), ``fail_share`` failed, and ``items``
    issues and PRs over the 90 days before today with comments and reviews (as ``acme/shop``'s)."""
    state = gh_state(request)
    names = list(body.names) + [f"{body.prefix}{n:03d}" for n in range(1, body.count + 1)]
    clash = [n for n in names if state.repo(body.owner, n) is not None]
    if clash:
        raise HTTPException(409, f"repositories exist: {clash}")
    rng = random.Random(f"repos-{body.seed}-{body.owner}-{len(state.repos)}")
    now = state.now()
    total = 0
    for name in names:
        r = new_repo(
            state,
            body.owner,
            name,
            created=now - 500 * DAY,
            archived=body.archived,
            private=body.private,
            language="Python",
            workflows=[("CI", "ci.yml", ("lint", "test", "build"), ("push", "pull_request"))],
        )
        state.commits[r.full_name.lower()] = make_commits(state, rng, now, body.days, (1, 4))
        if body.items:
            seed_activity(state, r, rng, day_start(now), days=90, items=body.items)
        plans: list[tuple[float, str, dict[str, Any]]] = []
        n_runs = body.runs_per_day * body.days
        for k in range(n_runs):
            created = now - body.days * DAY + (k + rng.random() * 0.8) * (body.days * DAY - 3 * 3600) / n_runs
            roll = rng.random()
            outcome = (
                "flaky"
                if roll < body.rerun_share
                else "failure"
                if roll < body.rerun_share + body.fail_share
                else "success"
            )
            branch = rng.choice(BRANCHES)
            event = "push" if branch == "main" else rng.choice(("push", "pull_request"))
            plans.append(
                (created, "CI", {"branch": branch, "event": event, "actor": rng.choice(ACTORS[:5]), "outcome": outcome})
            )
        total += len(_planned_runs(state, r, rng, plans))
    return {"created": [f"{body.owner}/{n}" for n in names], "runs": total}


@control.get("/counts")
def counts(request: Request) -> dict[str, Any]:
    state = gh_state(request)
    rates = {
        f"{'anonymous' if ident == 'anonymous' else 'token'}:{res}": {
            "limit": b.limit,
            "remaining": b.remaining,
            "used": b.used,
        }
        for (ident, res), b in state.rates.items()
    }
    return {**state.counts, "rate": rates}


@control.get("/scenarios")
def scenarios(request: Request) -> dict[str, Any]:
    """Example run ids per repo: flaky (attempt 2 passed), failed, cancelled, queued, in_progress; and
    the designed stories (issue 11): acme/shop's red streaks, late re-runs, same-SHA flaky runs and
    deployments (production: failed, recovery, rollbacks), acme/monorepo's busy day, acme/api's deployments."""
    state = gh_state(request)
    now = state.now()
    out: dict[str, Any] = {}
    for key, repo in state.repos.items():
        runs = sorted(state.repo_runs(repo), key=lambda r: r.id)
        pick = {
            "flaky": [r.id for r in runs if r.run_attempt == 2 and r.conclusion(now) == "success"][:3],
            "failed": [r.id for r in runs if r.conclusion(now) == "failure"][:3],
            "cancelled": [r.id for r in runs if r.conclusion(now) == "cancelled"][:3],
            "queued": [r.id for r in runs if r.status(now) == "queued"],
            "in_progress": [r.id for r in runs if r.status(now) == "in_progress"],
        }
        commits = state.commits.get(key, [])
        out[key] = {
            "runs": len(runs),
            "workflows": [w.name for w in state.workflows[key]],
            "archived": repo.archived,
            **pick,
            "commits": {
                "count": len(commits),
                "first": state.commit_sha(repo, 0) if commits else None,
                "head": state.commit_sha(repo, len(commits) - 1) if commits else None,
            },
            **state.notes.get(key, {}),
        }
    return out


# -- project health (issue 12) -------------------------------------------------------------------
# Conversation comments and reviews (time to first response), Dependabot / code-scanning /
# secret-scanning alerts with severities, default-branch protection, the default branch's commits
# (``GET /commits`` with since/until), and writing issues (open, comment, close). Seeded:
#
# * ``acme-labs/ledger``: a designed history with hand-computable figures per UTC day (see
#   ``seed_ledger``; every time is "k days before the reset day, at h o'clock"), protected, every alert
#   kind readable;
# * ``acme/shop``: protected, a few alerts, 90 days of issues and PRs with comments and reviews;
# * ``acme/api``: protected, but the token may not read the protection (403; ``GET /branches/main``
#   still says ``protected: true``); no code-scanning analysis (404), secret scanning disabled (404);
# * ``acme/web``: not protected (404 "Branch not protected"); the token may not read any alert (403);
# * ``acme/infra``: not protected; Dependabot alerts disabled (403), no code scanning, no secret scanning.
# Other repositories (and those added by controls) are readable, unprotected and have no alerts.
SECURITY_AREAS = ("dependabot", "code_scanning", "secret_scanning", "protection")
NO_TOKEN_ACCESS = "Resource not accessible by personal access token"
NO_ANALYSIS = "no analysis found"
SECRET_SCANNING_DISABLED = "Secret scanning is disabled on this repository."
DEPENDABOT_DISABLED = "Dependabot alerts are disabled for this repository."
NOT_PROTECTED = "Branch not protected"
REVIEW_STATES = ("APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED", "PENDING")
SEVERITIES = ("critical", "high", "medium", "low")
DEPENDABOT_CLOSED = ("fixed", "dismissed", "auto_dismissed")
CODE_SCANNING_CLOSED = ("fixed", "dismissed")
SECRET_RESOLUTIONS = ("false_positive", "wont_fix", "revoked", "used_in_tests")
LEDGER = "acme-labs/ledger"


@dataclass
class Comment:
    id: int
    number: int  # the issue or pull request it belongs to
    user: User
    body: str
    created_at: float
    updated_at: float


@dataclass
class Review:
    id: int
    number: int  # the pull request
    user: User
    state: str  # APPROVED | CHANGES_REQUESTED | COMMENTED | DISMISSED | PENDING
    submitted_at: float | None  # None while PENDING
    body: str = ""


@dataclass
class SecurityAlert:
    kind: str  # dependabot | code_scanning | secret_scanning
    number: int
    created_at: float
    name: str  # package (dependabot), rule id (code scanning), secret type (secret scanning)
    severity: str | None = None  # dependabot: low..critical; code scanning: security severity level or None
    closed_at: float | None = None
    closed_as: str | None = None  # dependabot: fixed|dismissed|auto_dismissed; code scanning: fixed|dismissed;
    # secret scanning: a resolution (revoked, false_positive, ...)
    rule_severity: str = "error"  # code scanning: error | warning | note
    validity: str = "active"  # secret scanning

    def closed(self, now: float) -> bool:
        return self.closed_at is not None and self.closed_at <= now

    def state(self, now: float) -> str:
        if not self.closed(now):
            return "open"
        return "resolved" if self.kind == "secret_scanning" else str(self.closed_as)


def add_comment(state: GitHubState, repo: Repo, issue: Issue, login: str, at: float, body: str = "") -> Comment:
    """A conversation comment on an issue or PR (its ``updated_at`` moves to the comment's time)."""
    comment = Comment(next(state.comment_ids), issue.number, state.user(login), body or f"Comment by {login}", at, at)
    bucket = state.comments.setdefault(repo.full_name.lower(), {}).setdefault(issue.number, [])
    bucket.append(comment)
    bucket.sort(key=lambda x: (x.created_at, x.id))
    issue.updated_at = max(issue.updated_at, at)
    return comment


def add_review(
    state: GitHubState, repo: Repo, pull: Issue, login: str, review_state: str, at: float | None, body: str = ""
) -> Review:
    review = Review(next(state.review_ids), pull.number, state.user(login), review_state, at, body)
    bucket = state.reviews.setdefault(repo.full_name.lower(), {}).setdefault(pull.number, [])
    bucket.append(review)
    bucket.sort(key=lambda x: (x.submitted_at or float("inf"), x.id))
    if at is not None:
        pull.updated_at = max(pull.updated_at, at)
    return review


def add_alert(state: GitHubState, repo: Repo, kind: str, created: float, name: str, **kw: Any) -> SecurityAlert:
    alerts = state.alerts.setdefault(repo.full_name.lower(), [])
    number = 1 + sum(1 for a in alerts if a.kind == kind)
    alert = SecurityAlert(kind, number, created, name, **kw)
    alerts.append(alert)
    return alert


def protect(state: GitHubState, repo: Repo, branch: str | None = None, **settings: Any) -> None:
    rules = {"required_approving_review_count": 1, "status_checks": ["CI / build"], "enforce_admins": False}
    rules.update(settings)
    state.protection.setdefault(repo.full_name.lower(), {})[branch or repo.default_branch] = rules


def refuse(state: GitHubState, repo: Repo, area: str, status: int, message: str) -> None:
    state.refusals.setdefault(repo.full_name.lower(), {})[area] = (status, message)


def seed_project_health(state: GitHubState, rng: random.Random, t0: float) -> None:
    d0 = day_start(t0)
    seed_ledger(state, d0)
    shop, api, web, infra = (state.repos[f"acme/{n}"] for n in ("shop", "api", "web", "infra"))
    protect(state, shop, required_approving_review_count=2, enforce_admins=True)
    protect(state, api)
    refuse(state, api, "protection", 403, NO_TOKEN_ACCESS)  # a token without Administration: read
    refuse(state, api, "code_scanning", 404, NO_ANALYSIS)
    refuse(state, api, "secret_scanning", 404, SECRET_SCANNING_DISABLED)
    for area in ("dependabot", "code_scanning", "secret_scanning"):
        refuse(state, web, area, 403, NO_TOKEN_ACCESS)
    refuse(state, infra, "dependabot", 403, DEPENDABOT_DISABLED)
    refuse(state, infra, "code_scanning", 404, NO_ANALYSIS)
    refuse(state, infra, "secret_scanning", 404, SECRET_SCANNING_DISABLED)
    # acme/shop: alerts and 90 days of issues/PRs with responses, weekly releases
    add_alert(state, shop, "dependabot", d0 - 40 * DAY + 3600, "golang.org/x/net", severity="high")
    add_alert(state, shop, "dependabot", d0 - 12 * DAY + 3600, "github.com/gin-gonic/gin", severity="medium")
    add_alert(
        state,
        shop,
        "dependabot",
        d0 - 30 * DAY,
        "golang.org/x/crypto",
        severity="critical",
        closed_at=d0 - 20 * DAY,
        closed_as="fixed",
    )
    add_alert(state, shop, "code_scanning", d0 - 9 * DAY, "go/sql-injection", severity="medium")
    seed_activity(state, shop, rng, d0, days=90, items=180)
    for k in range(12):
        created = d0 - (12 - k) * WEEK + 15 * 3600
        state.releases[shop.full_name.lower()].append(
            Release(
                6_000_000 + shop.id * 100 + k, f"v2.{k}.0", f"v2.{k}.0", state.user("alice"), created, created + 300
            )
        )
    add_alert(state, api, "dependabot", d0 - 25 * DAY, "requests", severity="medium")
    add_alert(state, api, "dependabot", d0 - 6 * DAY, "jinja2", severity="high")
    for repo in (api, web, infra):  # responses on the issues and PRs seeded before issue 12
        respond_to_issues(state, repo, rng, t0)
    state.notes[LEDGER] = {
        "story": "project metrics with hand-computable figures per day (seed_ledger)",
        "day0": datetime.fromtimestamp(d0, UTC).strftime("%Y-%m-%d"),  # the reset day: t(k, h) counts back from it
    }


def respond_to_issues(state: GitHubState, repo: Repo, rng: random.Random, t0: float) -> None:
    """Most items get a first response from someone else (a bot sometimes comments first); PRs get reviews."""
    humans = list(ACTORS[:5])
    for issue in state.issues[repo.full_name.lower()]:
        if rng.random() < 0.2:
            add_comment(state, repo, issue, "github-actions[bot]", min(t0 - 120, issue.created_at + 60), "Thanks!")
        if rng.random() < 0.75:
            at = min(t0 - 60, issue.created_at + rng.randint(600, 40 * 3600))
            who = rng.choice([h for h in humans if h != issue.user.login])
            if issue.is_pr and rng.random() < 0.7:
                add_review(state, repo, issue, who, rng.choice(("APPROVED", "COMMENTED", "CHANGES_REQUESTED")), at)
            else:
                add_comment(state, repo, issue, who, at)
        if rng.random() < 0.3:
            add_comment(state, repo, issue, issue.user.login, min(t0 - 30, issue.created_at + 300))
        if issue.closed_at is not None:
            issue.updated_at = max(issue.updated_at, issue.closed_at)


def seed_activity(state: GitHubState, repo: Repo, rng: random.Random, d0: float, *, days: int, items: int) -> None:
    """``items`` issues and PRs created over the last ``days`` days (before the reset day), some
    closed/merged, with comments and reviews (see :func:`respond_to_issues`)."""
    key = repo.full_name.lower()
    people = [*ACTORS[:5], "zoe", "yuri"]
    made = []
    for n in range(items):
        created = d0 - days * DAY + (n + rng.random() * 0.9) * (days - 1) * DAY / items
        is_pr = rng.random() < 0.55
        author = "dependabot[bot]" if is_pr and rng.random() < 0.15 else rng.choice(people)
        issue = Issue(
            0,
            f"{'Change' if is_pr else 'Bug'}: {rng.choice(['cart', 'tax', 'auth', 'docs'])}",
            state.user(author),
            is_pr,
            created,
            created,
        )
        if rng.random() < 0.6:
            issue.closed_at = min(d0 - 60, created + rng.randint(1800, 6 * DAY))
            if is_pr and rng.random() < 0.85:
                issue.merged_at = issue.closed_at
            issue.updated_at = issue.closed_at
        if is_pr:
            issue.head_branch, issue.base_branch = f"feature/{n}", repo.default_branch
        made.append(issue)
    first = 1 + max((i.number for i in state.issues[key]), default=0)
    for n, issue in enumerate(sorted(made, key=lambda i: i.created_at)):
        issue.number = first + n
        state.issues[key].append(issue)
    respond_to_issues(state, repo, rng, d0 - 30)


def seed_ledger(state: GitHubState, d0: float) -> None:
    """``acme-labs/ledger``: every time is ``t(k, h)`` = ``k`` days before the reset day (UTC), ``h`` o'clock.

    Commits (default branch ``main``): alice on days k % 4 == 0 at 10, bob k % 3 == 0 at 11, carol
    k % 10 == 0 at 12, dave t(2, 9.5), t(2, 14), t(5, 14), erin t(1, 15), t(100, 15), an unlinked e-mail
    (contractor@example.com) t(4, 13), dependabot[bot] k % 7 == 0 at 6, merge commits (bob) k % 15 == 0
    at 16; k = 1..120. Issues, PRs, comments, reviews, releases and alerts: the tables below."""
    repo = new_repo(
        state,
        "acme-labs",
        "ledger",
        created=d0 - 400 * DAY,
        stars=57,
        forks=9,
        subscribers=4,
        language="Rust",
        license="apache-2.0",
        workflows=[("CI", "ci.yml", ("test",), ("push", "pull_request"))],
    )
    key = repo.full_name.lower()

    def t(k: float, h: float = 0.0) -> float:
        return d0 - k * DAY + h * 3600

    plan: list[tuple[float, str | None, bool]] = []  # (time, login or None for the unlinked e-mail, merge)
    for k in range(1, 121):
        for every, login, hour in ((4, "alice", 10), (3, "bob", 11), (10, "carol", 12), (7, "dependabot[bot]", 6)):
            if k % every == 0:
                plan.append((t(k, hour), login, False))
        if k % 15 == 0:
            plan.append((t(k, 16), "bob", True))
    plan += [(t(2, 9.5), "dave", False), (t(2, 14), "dave", False), (t(5, 14), "dave", False)]
    plan += [(t(1, 15), "erin", False), (t(100, 15), "erin", False), (t(4, 13), None, False)]
    state.commits[key] = sorted(
        (
            Commit(
                at,
                state.user(login) if login else None,
                f"{login}@acme.dev" if login else "contractor@example.com",
                10,
                2,
                merge=merge,
            )
            for at, login, merge in plan
        ),
        key=lambda c: c.ts,
    )
    repo.pushed_at = state.commits[key][-1].ts
    # issues and PRs: (label, is_pr, author, created, closed, merged, comments, reviews, labels)
    items: list[tuple[Any, ...]] = [
        ("P1", True, "alice", t(10, 9), t(9, 9), True, [], [("bob", "APPROVED", t(9, 8))], []),
        ("P2", True, "dave", t(3, 10), t(2, 10), True, [("dave", t(3, 11))], [("alice", "APPROVED", t(2, 9))], []),
        ("P3", True, "erin", t(2, 8), t(2, 12), True, [],
         [("bob", "COMMENTED", t(2, 8.5)), ("bob", "APPROVED", t(2, 11))], []),
        ("P4", True, "zoe", t(2, 9), t(2, 17), False, [], [], []),
        ("P5", True, "carol", t(2, 13), None, False, [], [("alice", "CHANGES_REQUESTED", t(1, 10))], []),
        ("P6", True, "bob", t(5, 10), t(1, 10), True, [], [("carol", "APPROVED", t(4, 10))], []),
        ("P7", True, "alice", t(1, 9), None, False, [], [], []),
        ("P8", True, "dependabot[bot]", t(2, 6), t(2, 7), True, [],
         [("github-actions[bot]", "COMMENTED", t(2, 6.1)), ("bob", "APPROVED", t(2, 6.75))], ["dependencies"]),
        ("P9", True, "carol", t(40, 10), None, False, [("bob", t(39, 10))], [], []),
        ("P10", True, "erin", t(1, 11), None, False, [], [], []),
        ("I11", False, "carol", t(30, 9), t(20, 9), False, [("alice", t(29, 9))], [], []),
        ("I12", False, "zoe", t(3, 9), None, False, [("alice", t(2, 9))], [], []),
        ("I13", False, "yuri", t(2, 10), t(2, 18), False,
         [("github-actions[bot]", t(2, 10.5)), ("yuri", t(2, 11)), ("bob", t(2, 16))], [], ["bug"]),
        ("I14", False, "zoe", t(2, 20), None, False, [], [], []),
        ("I15", False, "yuri", t(4, 12), None, False, [("carol", t(1, 12))], [], []),
        ("I16", False, "dave", t(5, 8), t(1, 8), False, [("erin", t(5, 9))], [], []),
        ("I17", False, "zoe", t(1, 15), None, False, [], [], []),
        ("I18", False, "alice", t(100, 9), t(95, 9), False, [], [], []),
        ("I19", False, "carol", t(60, 9), None, False, [], [], ["bug"]),
        ("I20", False, "yuri", t(1, 16), None, False, [], [], []),
    ]  # fmt: skip
    for n, (label, is_pr, author, created, closed, merged, comments, reviews, labels) in enumerate(
        sorted(items, key=lambda item: item[3]), start=1
    ):
        issue = Issue(
            n,
            f"{label}: {'change' if is_pr else 'problem'} {n}",
            state.user(author),
            is_pr,
            created,
            closed or created,
            closed,
            closed if merged else None,
            labels=list(labels),
        )
        issue.state_reason = "completed" if closed and not is_pr else None
        if is_pr:
            issue.head_branch, issue.base_branch = f"change-{n}", "main"
        state.issues[key].append(issue)
        for login, at in comments:
            add_comment(state, repo, issue, login, at)
        for login, review_state, at in reviews:
            add_review(state, repo, issue, login, review_state, at)
    rid = 7_000_000 + repo.id % 1000 * 100
    state.releases[key] += [
        Release(rid + 1, "v0.9.0", "v0.9.0", state.user("alice"), t(40, 12), t(40, 12)),
        Release(rid + 2, "v1.0.0", "v1.0.0", state.user("alice"), t(10, 12), t(10, 12.5)),
        Release(rid + 3, "v1.1.0-rc1", "v1.1.0 RC1", state.user("bob"), t(3, 12), t(3, 12), prerelease=True),
        Release(rid + 4, "v1.1.0", "v1.1.0", state.user("bob"), t(3, 13), t(2, 15)),  # drafted, published a day later
        Release(rid + 5, "v1.2.0", "v1.2.0 (draft)", state.user("bob"), t(1, 10), None, draft=True),
    ]
    for created, name, severity, closed, closed_as in (
        (t(50, 8), "openssl", "critical", t(30, 8), "fixed"),
        (t(20, 8), "serde_yaml", "high", None, None),
        (t(3, 8), "hyper", "high", None, None),
        (t(10, 8), "time", "medium", t(1, 8), "dismissed"),
        (t(1, 9), "regex", "low", None, None),
        (t(5, 8), "chrono", "critical", t(4, 8), "auto_dismissed"),
    ):
        add_alert(state, repo, "dependabot", created, name, severity=severity, closed_at=closed, closed_as=closed_as)
    for created, rule, level, rule_severity, closed, closed_as in (
        (t(15, 8), "rust/sql-injection", "high", "error", None, None),
        (t(2, 11), "rust/hardcoded-credentials", "critical", "error", t(1, 11), "fixed"),
        (t(30, 8), "rust/unused-variable", None, "warning", None, None),
        (t(12, 8), "rust/weak-hash", "medium", "warning", t(6, 8), "dismissed"),
    ):
        add_alert(
            state,
            repo,
            "code_scanning",
            created,
            rule,
            severity=level,
            rule_severity=rule_severity,
            closed_at=closed,
            closed_as=closed_as,
        )
    for created, closed, validity in (
        (t(8, 8), None, "active"),
        (t(2, 14), t(2, 20), "inactive"),
        (t(25, 8), t(1, 9), "inactive"),
    ):
        add_alert(
            state,
            repo,
            "secret_scanning",
            created,
            "github_personal_access_token",
            validity=validity,
            closed_at=closed,
            closed_as="revoked" if closed else None,
        )
    protect(state, repo, required_approving_review_count=1)


# -- project health: JSON and routes ----------------------------------------------------------------
def comment_json(c: Ctx, repo: Repo, cm: Comment) -> dict[str, Any]:
    base = f"{c.base}/repos/{repo.full_name}"
    return {
        "id": cm.id,
        "node_id": f"IC_{cm.id}",
        "url": f"{base}/issues/comments/{cm.id}",
        "html_url": f"https://github.com/{repo.full_name}/issues/{cm.number}#issuecomment-{cm.id}",
        "issue_url": f"{base}/issues/{cm.number}",
        "body": cm.body,
        "user": user_json(c, cm.user),
        "created_at": iso(cm.created_at),
        "updated_at": iso(cm.updated_at),
        "author_association": "NONE" if cm.user.type == "Bot" else "MEMBER",
    }


def review_json(c: Ctx, repo: Repo, rv: Review) -> dict[str, Any]:
    out = {
        "id": rv.id,
        "node_id": f"PRR_{rv.id}",
        "user": user_json(c, rv.user),
        "body": rv.body,
        "state": rv.state,
        "html_url": f"https://github.com/{repo.full_name}/pull/{rv.number}#pullrequestreview-{rv.id}",
        "pull_request_url": f"{c.base}/repos/{repo.full_name}/pulls/{rv.number}",
        "commit_id": _sha(repo.full_name, rv.number),
        "author_association": "NONE" if rv.user.type == "Bot" else "MEMBER",
    }
    if rv.submitted_at is not None:  # a pending review has no submitted_at
        out["submitted_at"] = iso(rv.submitted_at)
    return out


def _issue(c: Ctx, repo: Repo, number: int) -> Issue:
    found = next((i for i in c.state.issues[repo.full_name.lower()] if i.number == number), None)
    if found is None:
        raise GitHubError(404, "Not Found", f"{DOCS}/issues/issues#get-an-issue")
    return found


def _refused(c: Ctx, repo: Repo, area: str) -> None:
    """The answer for an area this repository's token may not read (or that is disabled): its status
    and message, with the usual rate-limit headers (the request is counted)."""
    rule = c.state.refusals.get(repo.full_name.lower(), {}).get(area)
    if rule is None:
        return
    c.bucket.remaining -= 1
    c.bucket.used += 1
    c.state.count(f"refused_{area}")
    raise GitHubError(rule[0], rule[1], DOCS, rate_headers(c.bucket, c.resource))


def _writer(c: Ctx, repo: Repo) -> User:
    """The user a write is made as (the token's); anonymous requests and archived repositories are refused."""
    if not c.authenticated:
        raise GitHubError(401, "Requires authentication", f"{DOCS}/issues/issues#create-an-issue")
    if repo.archived:
        raise GitHubError(403, "Repository was archived so is read-only.", f"{DOCS}/issues/issues#create-an-issue")
    return c.state.user(c.state.token_login)


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise GitHubError(400, "Problems parsing JSON") from None
    if not isinstance(body, dict):
        raise GitHubError(400, "Problems parsing JSON")
    return body


def _invalid_request(what: str) -> GitHubError:
    return GitHubError(422, f'Invalid request.\n\n"{what}" wasn\'t supplied.')


def _labels(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, (str, dict)) for v in value):
        raise GitHubError(
            422, "Validation Failed", extra={"errors": [{"resource": "Issue", "field": "labels", "code": "invalid"}]}
        )
    names = [v if isinstance(v, str) else str(v.get("name", "")) for v in value]
    return list(dict.fromkeys(n for n in names if n))


@router.get("/repos/{owner}/{repo}/issues/{number}")
async def get_issue(request: Request, owner: str, repo: str, number: int) -> Response:
    c = ctx(request)
    r = repo_of(c, owner, repo)
    return respond(c, issue_json(c, r, _issue(c, r, number)))


@router.post("/repos/{owner}/{repo}/issues")
async def create_issue(request: Request, owner: str, repo: str) -> Response:
    """``{title, body, labels}`` -> 201 with the issue; missing labels are created (the token can push)."""
    c = ctx(request)
    r = repo_of(c, owner, repo)
    author = _writer(c, r)
    body = await _body(request)
    title = body.get("title")
    if title in (None, ""):
        raise _invalid_request("title")
    key = r.full_name.lower()
    issue = Issue(
        1 + max((i.number for i in c.state.issues[key]), default=0),
        str(title),
        author,
        False,
        c.now,
        c.now,
        labels=_labels(body.get("labels")),
        body=str(body.get("body") or ""),
    )
    c.state.issues[key].append(issue)
    c.state.count("issues_created")
    return respond(c, issue_json(c, r, issue), status=201)


@router.patch("/repos/{owner}/{repo}/issues/{number}")
async def update_issue(request: Request, owner: str, repo: str, number: int) -> Response:
    """``state`` open|closed with ``state_reason`` completed|not_planned|reopened, ``title``, ``body``, ``labels``."""
    c = ctx(request)
    r = repo_of(c, owner, repo)
    _writer(c, r)
    issue = _issue(c, r, number)
    body = await _body(request)
    wanted = body.get("state")
    if wanted not in (None, "open", "closed"):
        raise GitHubError(
            422, "Validation Failed", extra={"errors": [{"resource": "Issue", "field": "state", "code": "invalid"}]}
        )
    reason = body.get("state_reason")
    if reason not in (None, "completed", "not_planned", "reopened"):
        raise GitHubError(
            422,
            "Validation Failed",
            extra={"errors": [{"resource": "Issue", "field": "state_reason", "code": "invalid"}]},
        )
    if wanted == "closed" and issue.closed_at is None:
        issue.closed_at = c.now
        issue.state_reason = reason or "completed"
        c.state.count("issues_closed")
    elif wanted == "open" and issue.closed_at is not None:
        issue.closed_at = issue.merged_at = None
        issue.state_reason = "reopened"
    if body.get("title"):
        issue.title = str(body["title"])
    if "body" in body:
        issue.body = str(body.get("body") or "")
    if "labels" in body:
        issue.labels = _labels(body["labels"])
    issue.updated_at = c.now
    return respond(c, issue_json(c, r, issue))


@router.get("/repos/{owner}/{repo}/issues/{number}/comments")
async def list_issue_comments(request: Request, owner: str, repo: str, number: int) -> Response:
    """Oldest first; ``since`` keeps comments updated at or after it."""
    c = ctx(request)
    r = repo_of(c, owner, repo)
    _issue(c, r, number)
    items = list(c.state.comments.get(r.full_name.lower(), {}).get(number, ()))
    since = request.query_params.get("since")
    if since:
        try:
            lo = _parse_instant(since)[0]
        except BadDate:
            raise GitHubError(
                422,
                "Validation Failed",
                extra={"errors": [{"resource": "IssueComment", "field": "since", "code": "invalid"}]},
            ) from None
        items = [x for x in items if x.updated_at >= lo]
    page, link = paginate(c, items)
    return respond(c, [comment_json(c, r, x) for x in page], headers=link)


@router.post("/repos/{owner}/{repo}/issues/{number}/comments")
async def create_issue_comment(request: Request, owner: str, repo: str, number: int) -> Response:
    c = ctx(request)
    r = repo_of(c, owner, repo)
    author = _writer(c, r)
    issue = _issue(c, r, number)
    body = await _body(request)
    if body.get("body") in (None, ""):
        raise _invalid_request("body")
    comment = add_comment(c.state, r, issue, author.login, c.now, str(body["body"]))
    c.state.count("comments_created")
    return respond(c, comment_json(c, r, comment), status=201)


@router.get("/repos/{owner}/{repo}/pulls/{number}/reviews")
async def list_reviews(request: Request, owner: str, repo: str, number: int) -> Response:
    """Chronological; a pending review is listed only to its author (the token's user)."""
    c = ctx(request)
    r = repo_of(c, owner, repo)
    pull = _issue(c, r, number)
    if not pull.is_pr:
        raise not_found()
    items = [
        x
        for x in c.state.reviews.get(r.full_name.lower(), {}).get(number, ())
        if x.state != "PENDING" or x.user.login == c.state.token_login
    ]
    page, link = paginate(c, items)
    return respond(c, [review_json(c, r, x) for x in page], headers=link)


@router.get("/repos/{owner}/{repo}/commits")
async def list_commits(request: Request, owner: str, repo: str) -> Response:
    """The default branch's history from ``sha`` (default: its head), newest first; ``since`` and
    ``until`` (ISO 8601, both inclusive) on the committer date; ``author`` a login or an e-mail. An
    empty repository answers 409."""
    c = ctx(request)
    r = repo_of(c, owner, repo)
    commits = c.state.commits.get(r.full_name.lower(), [])
    if not commits:
        raise GitHubError(409, "Git Repository is empty.", f"{DOCS}/commits/commits#list-commits")
    q = request.query_params
    head = _resolve_ref(c, r, q.get("sha") or r.default_branch)
    if head is None:
        raise GitHubError(422, f"No commit found for SHA: {q.get('sha')}", f"{DOCS}/commits/commits#list-commits")
    bounds = []
    for name, default in (("since", float("-inf")), ("until", float("inf"))):
        value = q.get(name)
        try:
            bounds.append(_parse_instant(value)[0] if value else default)
        except BadDate:
            raise GitHubError(
                422, "Validation Failed", extra={"errors": [{"resource": "Commit", "field": name, "code": "invalid"}]}
            ) from None
    lo, hi = bounds
    author = (q.get("author") or "").lower()
    picked = [
        k
        for k in range(head, -1, -1)
        if lo <= int(commits[k].ts) <= hi
        and (
            not author
            or (commits[k].author is not None and commits[k].author.login.lower() == author)  # type: ignore[union-attr]
            or commits[k].email.lower() == author
        )
    ]
    page, link = paginate(c, picked)
    return respond(c, [commit_json(c, r, k) for k in page], headers=link)


def _branch(c: Ctx, repo: Repo, branch: str) -> str:
    """The branch if it exists (the sandbox keeps only default branches), else 404 "Branch not found"."""
    if branch != repo.default_branch or not c.state.commits.get(repo.full_name.lower()):
        raise GitHubError(404, "Branch not found", f"{DOCS}/branches/branches#get-a-branch")
    return branch


def protection_json(c: Ctx, repo: Repo, branch: str, rules: dict[str, Any]) -> dict[str, Any]:
    url = f"{c.base}/repos/{repo.full_name}/branches/{branch}/protection"
    checks = list(rules.get("status_checks") or [])
    return {
        "url": url,
        "required_status_checks": {
            "url": f"{url}/required_status_checks",
            "strict": True,
            "contexts": checks,
            "checks": [{"context": name, "app_id": None} for name in checks],
            "contexts_url": f"{url}/required_status_checks/contexts",
        },
        "required_pull_request_reviews": {
            "url": f"{url}/required_pull_request_reviews",
            "dismiss_stale_reviews": True,
            "require_code_owner_reviews": False,
            "require_last_push_approval": False,
            "required_approving_review_count": int(rules.get("required_approving_review_count", 1)),
        },
        "enforce_admins": {"url": f"{url}/enforce_admins", "enabled": bool(rules.get("enforce_admins"))},
        "required_signatures": {"url": f"{url}/required_signatures", "enabled": False},
        "required_linear_history": {"enabled": True},
        "allow_force_pushes": {"enabled": False},
        "allow_deletions": {"enabled": False},
        "block_creations": {"enabled": False},
        "required_conversation_resolution": {"enabled": False},
        "lock_branch": {"enabled": False},
        "allow_fork_syncing": {"enabled": False},
    }


@router.get("/repos/{owner}/{repo}/branches/{branch:path}/protection")
async def get_branch_protection(request: Request, owner: str, repo: str, branch: str) -> Response:
    """Needs the Administration permission (a token without it: the repository's ``protection``
    refusal); an unprotected branch answers 404 "Branch not protected"."""
    c = ctx(request)
    r = repo_of(c, owner, repo)
    _refused(c, r, "protection")
    name = _branch(c, r, branch)
    rules = c.state.protection.get(r.full_name.lower(), {}).get(name)
    if rules is None:
        raise GitHubError(404, NOT_PROTECTED, f"{DOCS}/branches/branch-protection#get-branch-protection")
    return respond(c, protection_json(c, r, name, rules))


@router.get("/repos/{owner}/{repo}/branches/{branch:path}")
async def get_branch(request: Request, owner: str, repo: str, branch: str) -> Response:
    """``protected`` and a summary of the protection, readable with Contents: read."""
    c = ctx(request)
    r = repo_of(c, owner, repo)
    name = _branch(c, r, branch)
    rules = c.state.protection.get(r.full_name.lower(), {}).get(name)
    head = len(c.state.commits[r.full_name.lower()]) - 1
    base = f"{c.base}/repos/{r.full_name}"
    checks = list((rules or {}).get("status_checks") or [])
    return respond(
        c,
        {
            "name": name,
            "commit": commit_json(c, r, head),
            "_links": {"self": f"{base}/branches/{name}", "html": f"https://github.com/{r.full_name}/tree/{name}"},
            "protected": rules is not None,
            "protection": {
                "enabled": rules is not None,
                "required_status_checks": {
                    "enforcement_level": "non_admins" if rules is not None else "off",
                    "contexts": checks,
                    "checks": [{"context": n, "app_id": None} for n in checks],
                },
            },
            "protection_url": f"{base}/branches/{name}/protection",
        },
    )


def _alerts(c: Ctx, repo: Repo, kind: str) -> list[SecurityAlert]:
    return [a for a in c.state.alerts.get(repo.full_name.lower(), []) if a.kind == kind and a.created_at <= c.now]


def _sorted_alerts(request: Request, items: list[SecurityAlert], now: float) -> list[SecurityAlert]:
    sort = request.query_params.get("sort", "created")
    if sort not in ("created", "updated"):
        raise validation_failed(f"sort must be created or updated, got {sort!r}", field_name="sort")

    def key(a: SecurityAlert) -> tuple[float, int]:
        updated = a.closed_at if a.closed(now) and a.closed_at is not None else a.created_at
        return (a.created_at if sort == "created" else updated, a.number)

    return sorted(items, key=key, reverse=request.query_params.get("direction", "desc") != "asc")


def _csv_filter(request: Request, name: str, allowed: tuple[str, ...]) -> set[str] | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    values = {v.strip() for v in raw.split(",") if v.strip()}
    bad = sorted(values - set(allowed))
    if bad:
        raise GitHubError(
            422,
            "Validation Failed",
            extra={"errors": [{"resource": "Alert", "field": name, "code": "invalid", "value": bad[0]}]},
        )
    return values


def _cursor_page(c: Ctx, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
    """Cursor paging as the Dependabot alerts list does it: ``per_page`` (<= 100) and an opaque
    ``after`` cursor; ``Link: rel="next"`` carries the next cursor (``page`` is not used)."""
    per_page, _ = page_params(c.request)
    after = c.request.query_params.get("after")
    start = 0
    if after:
        try:
            start = int(bytes.fromhex(after).decode().removeprefix("cursor:"))
        except ValueError:
            raise validation_failed("after is not a valid cursor", field_name="after") from None
    chunk = items[start : start + per_page]
    if start + per_page >= len(items):
        return chunk, {}
    query = [(k, v) for k, v in parse_qsl(c.request.url.query, keep_blank_values=True) if k not in ("after", "page")]
    cursor = f"cursor:{start + per_page}".encode().hex()
    url = f"{c.base}{c.request.url.path[len(PREFIX) :]}?{urlencode([*query, ('after', cursor)])}"
    return chunk, {"link": f'<{url}>; rel="next"'}


def dependabot_json(c: Ctx, repo: Repo, a: SecurityAlert) -> dict[str, Any]:
    state = a.state(c.now)
    closed = iso(a.closed_at) if a.closed(c.now) else None
    ghsa = "GHSA-" + "-".join(_sha(repo.full_name, a.name, a.number)[k : k + 4] for k in (0, 4, 8))
    package = {"ecosystem": "cargo" if repo.language == "Rust" else "pip", "name": a.name}
    severity = a.severity or "medium"
    return {
        "number": a.number,
        "state": state,
        "dependency": {"package": package, "manifest_path": "Cargo.lock", "scope": "runtime", "relationship": "direct"},
        "security_advisory": {
            "ghsa_id": ghsa,
            "cve_id": None,
            "summary": f"{a.name} is vulnerable",
            "description": f"A vulnerability in {a.name}.",
            "severity": severity,
            "identifiers": [{"type": "GHSA", "value": ghsa}],
            "references": [],
            "published_at": iso(a.created_at - DAY),
            "updated_at": iso(a.created_at - DAY),
            "withdrawn_at": None,
        },
        "security_vulnerability": {
            "package": package,
            "severity": severity,
            "vulnerable_version_range": "< 2.0.0",
            "first_patched_version": {"identifier": "2.0.0"},
        },
        "url": f"{c.base}/repos/{repo.full_name}/dependabot/alerts/{a.number}",
        "html_url": f"https://github.com/{repo.full_name}/security/dependabot/{a.number}",
        "created_at": iso(a.created_at),
        "updated_at": closed or iso(a.created_at),
        "fixed_at": closed if state == "fixed" else None,
        "dismissed_at": closed if state == "dismissed" else None,
        "dismissed_by": user_json(c, c.state.user("alice")) if state == "dismissed" else None,
        "dismissed_reason": "tolerable_risk" if state == "dismissed" else None,
        "dismissed_comment": None,
        "auto_dismissed_at": closed if state == "auto_dismissed" else None,
    }


def code_scanning_json(c: Ctx, repo: Repo, a: SecurityAlert) -> dict[str, Any]:
    state = a.state(c.now)
    closed = iso(a.closed_at) if a.closed(c.now) else None
    return {
        "number": a.number,
        "created_at": iso(a.created_at),
        "updated_at": closed or iso(a.created_at),
        "url": f"{c.base}/repos/{repo.full_name}/code-scanning/alerts/{a.number}",
        "html_url": f"https://github.com/{repo.full_name}/security/code-scanning/{a.number}",
        "instances_url": f"{c.base}/repos/{repo.full_name}/code-scanning/alerts/{a.number}/instances",
        "state": state,
        "fixed_at": closed if state == "fixed" else None,
        "dismissed_at": closed if state == "dismissed" else None,
        "dismissed_by": user_json(c, c.state.user("alice")) if state == "dismissed" else None,
        "dismissed_reason": "won't fix" if state == "dismissed" else None,
        "dismissed_comment": None,
        "rule": {
            "id": a.name,
            "name": a.name.rsplit("/", 1)[-1],
            "severity": a.rule_severity,
            "security_severity_level": a.severity,
            "description": a.name.replace("/", ": ").replace("-", " "),
            "tags": ["security"] if a.severity else ["maintainability"],
        },
        "tool": {"name": "CodeQL", "guid": None, "version": "2.19.3"},
        "most_recent_instance": {
            "ref": f"refs/heads/{repo.default_branch}",
            "analysis_key": ".github/workflows/codeql.yml:analyze",
            "category": ".github/workflows/codeql.yml:analyze/language:rust",
            "environment": "{}",
            "state": state,
            "commit_sha": _sha(repo.full_name, "codeql", a.number),
            "message": {"text": f"{a.name} found here."},
            "location": {"path": "src/lib.rs", "start_line": 10 + a.number, "end_line": 10 + a.number},
            "classifications": [],
        },
    }


def secret_scanning_json(c: Ctx, repo: Repo, a: SecurityAlert) -> dict[str, Any]:
    resolved = a.closed(c.now)
    return {
        "number": a.number,
        "created_at": iso(a.created_at),
        "updated_at": iso(a.closed_at) if resolved else iso(a.created_at),
        "url": f"{c.base}/repos/{repo.full_name}/secret-scanning/alerts/{a.number}",
        "html_url": f"https://github.com/{repo.full_name}/security/secret-scanning/{a.number}",
        "locations_url": f"{c.base}/repos/{repo.full_name}/secret-scanning/alerts/{a.number}/locations",
        "state": "resolved" if resolved else "open",
        "resolution": a.closed_as if resolved else None,
        "resolved_at": iso(a.closed_at) if resolved else None,
        "resolved_by": user_json(c, c.state.user("alice")) if resolved else None,
        "resolution_comment": None,
        "secret_type": a.name,
        "secret_type_display_name": a.name.replace("_", " ").title(),
        "validity": a.validity,
        "push_protection_bypassed": False,
        "publicly_leaked": False,
        "multi_repo": False,
    }


@router.get("/repos/{owner}/{repo}/dependabot/alerts")
async def list_dependabot_alerts(request: Request, owner: str, repo: str) -> Response:
    """``state`` and ``severity`` (comma-separated lists), ``sort``, ``direction``; cursor paging."""
    c = ctx(request)
    r = repo_of(c, owner, repo)
    _refused(c, r, "dependabot")
    states = _csv_filter(request, "state", ("open", *DEPENDABOT_CLOSED))
    severities = _csv_filter(request, "severity", SEVERITIES)
    items = [
        a
        for a in _alerts(c, r, "dependabot")
        if (states is None or a.state(c.now) in states) and (severities is None or a.severity in severities)
    ]
    page, link = _cursor_page(c, _sorted_alerts(request, items, c.now))
    return respond(c, [dependabot_json(c, r, a) for a in page], headers=link)


@router.get("/repos/{owner}/{repo}/code-scanning/alerts")
async def list_code_scanning_alerts(request: Request, owner: str, repo: str) -> Response:
    """``state`` open|closed|dismissed|fixed, ``severity`` (a security level or a rule severity); page paging."""
    c = ctx(request)
    r = repo_of(c, owner, repo)
    _refused(c, r, "code_scanning")
    state = request.query_params.get("state")
    if state not in (None, "open", "closed", "dismissed", "fixed"):
        raise validation_failed(f"state {state!r} is not valid", field_name="state")
    severity = request.query_params.get("severity")
    if severity not in (None, *SEVERITIES, "error", "warning", "note"):
        raise validation_failed(f"severity {severity!r} is not valid", field_name="severity")
    items = [
        a
        for a in _alerts(c, r, "code_scanning")
        if (state is None or a.state(c.now) == state or (state == "closed" and a.closed(c.now)))
        and (severity is None or severity in (a.severity, a.rule_severity))
    ]
    page, link = paginate(c, _sorted_alerts(request, items, c.now))
    return respond(c, [code_scanning_json(c, r, a) for a in page], headers=link)


@router.get("/repos/{owner}/{repo}/secret-scanning/alerts")
async def list_secret_scanning_alerts(request: Request, owner: str, repo: str) -> Response:
    """``state`` open|resolved; page paging."""
    c = ctx(request)
    r = repo_of(c, owner, repo)
    _refused(c, r, "secret_scanning")
    state = request.query_params.get("state")
    if state not in (None, "open", "resolved"):
        raise validation_failed(f"state {state!r} is not valid", field_name="state")
    items = [a for a in _alerts(c, r, "secret_scanning") if state is None or (state == "resolved") == a.closed(c.now)]
    page, link = paginate(c, _sorted_alerts(request, items, c.now))
    return respond(c, [secret_scanning_json(c, r, a) for a in page], headers=link)


# -- project health: controls ------------------------------------------------------------------------
class SecurityBody(BaseModel):
    area: str  # dependabot | code_scanning | secret_scanning | protection
    status: int | None = 403  # None: readable again
    message: str = NO_TOKEN_ACCESS


class ProtectionBody(BaseModel):
    protected: bool = True
    branch: str | None = None  # default: the default branch
    required_approving_review_count: int = 1
    enforce_admins: bool = False


class AlertSpec(BaseModel):
    kind: str  # dependabot | code_scanning | secret_scanning
    name: str = "example"
    severity: str | None = "high"
    created_at: str | float | None = None  # ISO or epoch; default: now - age_s
    age_s: float = 3600
    closed_at: str | float | None = None
    closed_as: str | None = None
    rule_severity: str = "error"


class AlertsBody(BaseModel):
    alerts: list[AlertSpec]


def _control_repo(state: GitHubState, owner: str, repo: str) -> Repo:
    r = state.repo(owner, repo)
    if r is None:
        raise HTTPException(404, f"unknown repo {owner}/{repo}")
    return r


@control.post("/repos/{owner}/{repo}/security")
def set_security(request: Request, owner: str, repo: str, body: SecurityBody) -> dict[str, Any]:
    """Refuse an area (``status`` and ``message``, e.g. 403 for a token that may not read the alerts,
    404 "no analysis found") or, with ``status: null``, make it readable again."""
    state = gh_state(request)
    r = _control_repo(state, owner, repo)
    if body.area not in SECURITY_AREAS:
        raise HTTPException(400, f"area must be one of {SECURITY_AREAS}")
    if body.status is None:
        state.refusals.get(r.full_name.lower(), {}).pop(body.area, None)
    else:
        refuse(state, r, body.area, body.status, body.message)
    return {
        "repo": r.full_name,
        "refusals": {k: list(v) for k, v in state.refusals.get(r.full_name.lower(), {}).items()},
    }


@control.post("/repos/{owner}/{repo}/protection")
def set_protection(request: Request, owner: str, repo: str, body: ProtectionBody) -> dict[str, Any]:
    state = gh_state(request)
    r = _control_repo(state, owner, repo)
    branch = body.branch or r.default_branch
    if body.protected:
        protect(
            state,
            r,
            branch,
            required_approving_review_count=body.required_approving_review_count,
            enforce_admins=body.enforce_admins,
        )
    else:
        state.protection.get(r.full_name.lower(), {}).pop(branch, None)
    return {"repo": r.full_name, "protected": sorted(state.protection.get(r.full_name.lower(), {}))}


@control.post("/repos/{owner}/{repo}/alerts")
def add_alerts(request: Request, owner: str, repo: str, body: AlertsBody) -> dict[str, Any]:
    state = gh_state(request)
    r = _control_repo(state, owner, repo)
    made = []
    for spec in body.alerts:
        if spec.kind not in ("dependabot", "code_scanning", "secret_scanning"):
            raise HTTPException(400, f"bad kind {spec.kind!r}")
        closed = None if spec.closed_at is None else _when(state, spec.closed_at, 0)
        alert = add_alert(
            state,
            r,
            spec.kind,
            _when(state, spec.created_at, spec.age_s),
            spec.name,
            severity=spec.severity,
            closed_at=closed,
            closed_as=spec.closed_as or ({"secret_scanning": "revoked"}.get(spec.kind, "fixed") if closed else None),
            rule_severity=spec.rule_severity,
        )
        made.append({"kind": alert.kind, "number": alert.number})
    return {"created": made}
