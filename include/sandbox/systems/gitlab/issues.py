"""Issues and their notes in the GitLab sandbox (plain Python; ``api.py`` serves them).

GitLab semantics kept: ``iid`` counts per project (paths use it), ``id`` is global; ``state`` is
``opened``/``closed``; closing or reopening (``state_event``) adds a *system* note ("closed",
"reopened") as GitLab does, and ``user_notes_count`` counts only the others; labels are names (GitLab
creates a missing project label when an issue names it); the basic ``search`` matches every word of
the query (at least 3 characters each, case-insensitive) in the title and/or description, as
``Issuable.search``'s fuzzy matching does for short queries.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from include.sandbox.systems.gitlab.state import GitLabState, User

FIRST_ISSUE_ID = 160_000_001
FIRST_NOTE_ID = 2_400_000_001
STATE_EVENTS = ("close", "reopen")
SEARCH_IN = ("title", "description")


@dataclass
class Note:
    id: int
    body: str
    author: User
    created_at: float
    system: bool = False

    @property
    def updated_at(self) -> float:
        return self.created_at


@dataclass
class Issue:
    id: int
    iid: int
    project_id: int
    title: str
    description: str
    author: User
    created_at: float
    updated_at: float
    labels: list[str] = field(default_factory=list)
    closed_at: float | None = None
    closed_by: User | None = None
    notes: list[Note] = field(default_factory=list)

    @property
    def state(self) -> str:
        return "closed" if self.closed_at is not None else "opened"

    def matches(self, words: list[str], where: tuple[str, ...]) -> bool:
        text = " ".join(self.title if w == "title" else self.description for w in where).lower()
        return all(word in text for word in words)


class IssueBook:
    """Every project's issues (``by_project``: project id -> issues in iid order)."""

    def __init__(self) -> None:
        self.by_project: dict[int, list[Issue]] = {}
        self._ids = itertools.count(FIRST_ISSUE_ID)
        self._note_ids = itertools.count(FIRST_NOTE_ID)

    def of(self, project_id: int) -> list[Issue]:
        return self.by_project.setdefault(project_id, [])

    def get(self, project_id: int, iid: int) -> Issue | None:
        return next((i for i in self.of(project_id) if i.iid == iid), None)

    def add(
        self, project_id: int, title: str, description: str, author: User, at: float, labels: list[str] | None = None
    ) -> Issue:
        issues = self.of(project_id)
        issue = Issue(
            next(self._ids),
            1 + max((i.iid for i in issues), default=0),
            project_id,
            title,
            description,
            author,
            at,
            at,
            list(dict.fromkeys(labels or [])),
        )
        issues.append(issue)
        return issue

    def note(self, issue: Issue, body: str, author: User, at: float, *, system: bool = False) -> Note:
        note = Note(next(self._note_ids), body, author, at, system)
        issue.notes.append(note)
        issue.updated_at = max(issue.updated_at, at)
        return note

    def close(self, issue: Issue, by: User, at: float) -> None:
        if issue.closed_at is None:
            issue.closed_at, issue.closed_by = at, by
            self.note(issue, "closed", by, at, system=True)

    def reopen(self, issue: Issue, by: User, at: float) -> None:
        if issue.closed_at is not None:
            issue.closed_at = issue.closed_by = None
            self.note(issue, "reopened", by, at, system=True)


def search_words(query: str) -> list[str]:
    """The words of a basic search that count (3 characters or more), lower case."""
    return [w for w in query.lower().split() if len(w) >= 3]


def seed_issues(state: GitLabState) -> None:
    """Two issues in ``payments/checkout-api`` (one open bug with a comment, one closed)."""
    project = state.project("payments/checkout-api")
    if project is None:
        return
    t0 = state.now()
    ana, jonas = state.users["ana.lima"], state.users["jonas.weber"]
    bug = state.issues.add(
        project.id, "Refund rounding off by a cent", "Seen in `test_refund_rounding`.", ana, t0 - 5 * 86400, ["bug"]
    )
    state.issues.note(bug, "I can reproduce it on main.", jonas, t0 - 4 * 86400)
    done = state.issues.add(project.id, "Document the ledger API", "", jonas, t0 - 20 * 86400, ["docs"])
    state.issues.close(done, ana, t0 - 12 * 86400)
