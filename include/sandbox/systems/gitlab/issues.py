"""Issues and their notes in the GitLab sandbox (plain Python; ``api.py`` serves them).

GitLab semantics kept: ``iid`` counts per project (paths use it), ``id`` is global; ``state`` is
``opened``/``closed``; closing or reopening (``state_event``) adds a *system* note ("closed",
"reopened") as GitLab does, and ``user_notes_count`` counts only the others; labels are names (GitLab
creates a missing project label when an issue names it) and the ``labels`` filter compares them
exactly, its ``None``/``Any`` wildcards in any case; the basic ``search`` matches every word of the
query (at least 3 characters each, case-insensitive) in the title and/or description, as
``Issuable.search``'s fuzzy matching does for short queries. A new issue's title is stripped and must
be present and at most 255 characters, its description at most 1 MiB; a note's body must not be blank
and at most 1,000,000 characters (:func:`issue_errors`, :func:`note_errors`).
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
#: ``Issuable::TITLE_LENGTH_MAX`` (characters) and ``DESCRIPTION_LENGTH_MAX`` (bytes, 1 MiB).
TITLE_MAX = 255
DESCRIPTION_MAX_BYTES = 1_048_576
#: A note's body, in characters (the Notes API: "limited to 1,000,000 characters").
NOTE_MAX = 1_000_000
#: The label filter's wildcards (``labels=None``: no label, ``labels=Any``: at least one; any letter case).
LABEL_NONE, LABEL_ANY = "none", "any"


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


def issue_errors(title: str, description: str) -> dict[str, list[str]]:
    """ActiveRecord's validation of a new issue (``Issuable``): title present (after stripping) and at
    most 255 characters, description at most 1 MiB in UTF-8; ``{}`` when valid."""
    errors: dict[str, list[str]] = {}
    if not title.strip():
        errors["title"] = ["can't be blank"]
    elif len(title.strip()) > TITLE_MAX:
        errors["title"] = [f"is too long (maximum is {TITLE_MAX} characters)"]
    if len(description.encode("utf-8")) > DESCRIPTION_MAX_BYTES:
        errors["description"] = [f"is too long (maximum is {DESCRIPTION_MAX_BYTES} characters)"]
    return errors


def note_errors(body: str) -> list[str]:
    """The ``note`` errors of a new note (blank, too long); ``[]`` when valid."""
    if not body.strip():
        return ["can't be blank"]
    if len(body) > NOTE_MAX:
        return [f"is too long (maximum is {NOTE_MAX} characters)"]
    return []


def labels_match(issue: Issue, labels: list[str]) -> bool:
    """GitLab's label filter (``Issuables::LabelFilter``): ``None`` / ``Any`` in any letter case (among
    the names) for no label / at least one; otherwise every name, matched exactly (label titles are
    compared as stored: ``Bug`` is not ``bug``)."""
    if not labels:
        return True
    lowered = [name.lower() for name in labels]
    if LABEL_NONE in lowered:
        return not issue.labels
    if LABEL_ANY in lowered:
        return bool(issue.labels)
    return set(labels) <= set(issue.labels)


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
