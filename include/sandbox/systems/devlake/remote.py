"""DevLake's view of the remote tools, per data-source plugin (``../shared/api/devlake.md`` §3-§4).

* **scope models**: the id field and the columns of each plugin's scope table, and how a ``PUT
  .../scopes`` item is decoded into them (keys case-insensitive, like mapstructure);
* **page tokens**: base64 of a JSON page struct, decoded with DevLake's 400/500 split;
* **remote trees**: the groups and repositories/boards a connection "sees" on its tool, seeded
  deterministically (the gitlab tree is ``_seed.gitlab_layout``, shared with the GitLab sandbox),
  listed one level at a time with each plugin's own paging rules, and searched.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import random
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

from include.sandbox.systems._seed import (
    GITLAB_USER_ID,
    GITLAB_USERNAME,
    LONG_NAME,
    github_layout,
    gitlab_layout,
    slugify,
    word_names,
)

# ---- scope models ---------------------------------------------------------------------------------

#: The scope id field of each plugin's scope JSON; the blueprint ``scopeId`` is its value as a string.
SCOPE_ID_FIELD = {
    "github": "githubId",
    "gitlab": "gitlabId",
    "bitbucket": "bitbucketId",
    "jira": "boardId",
    "azuredevops_go": "id",
}
#: Plugins whose scope id is an integer.
INT_ID_PLUGINS = frozenset({"github", "gitlab", "jira"})
#: The column ``searchTerm`` matches (LIKE) on ``GET .../scopes``; azuredevops_go has none.
SEARCH_FIELD: dict[str, str | None] = {
    "github": "fullName",
    "gitlab": "name",
    "bitbucket": "name",
    "jira": "name",
    "azuredevops_go": None,
}

#: Plugin columns of each scope table (JSON key -> zero value), in output order.
SCOPE_FIELDS: dict[str, dict[str, Any]] = {
    "github": {
        "githubId": 0,
        "name": "",
        "fullName": "",
        "HTMLUrl": "",
        "cloneUrl": "",
        "ownerId": 0,
        "description": "",
        "language": "",
        "parentId": 0,
        "createdDate": None,
        "updatedDate": None,
    },
    "gitlab": {
        "gitlabId": 0,
        "name": "",
        "pathWithNamespace": "",
        "webUrl": "",
        "httpUrlToRepo": "",
        "defaultBranch": "",
        "visibility": "",
        "archived": False,
        "forkedFromProjectId": 0,
        "createdDate": None,
        "updatedDate": None,
    },
    "bitbucket": {
        "bitbucketId": "",
        "name": "",
        "fullName": "",
        "HTMLUrl": "",
        "cloneUrl": "",
        "owner": "",
        "description": "",
        "createdDate": None,
        "updatedDate": None,
    },
    "jira": {"boardId": 0, "name": "", "projectId": 0, "self": "", "type": "", "jql": ""},
    "azuredevops_go": {
        "id": "",
        "type": "",
        "name": "",
        "url": "",
        "remoteUrl": "",
        "OrganizationId": "",
        "ProjectId": "",
        "ExternalId": "",
        "IsFork": False,
        "IsPrivate": False,
    },
}
#: Decode keys that differ from the JSON key (github's fork parent decodes from ``parentGithubId``).
_DECODE_ALIASES = {"github": {"parentgithubid": "parentId"}}


def scope_id_of(plugin: str, data: dict[str, Any]) -> str:
    """A stored scope's id as the string a blueprint uses."""
    return str(data[SCOPE_ID_FIELD[plugin]])


def decode_scope(plugin: str, item: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Decode a request item into the plugin's scope columns over ``base`` (zero values when None).

    Keys match case-insensitively and unknown keys are dropped; an explicit ``null`` zeroes a
    column. Returns None when the id field ends up missing or of the wrong type (DevLake's
    "failed to save item N").
    """
    columns = SCOPE_FIELDS[plugin]
    by_lower = {k.lower(): k for k in columns} | _DECODE_ALIASES.get(plugin, {})
    out = copy.deepcopy(base) if base is not None else copy.deepcopy(columns)
    for key, value in item.items():
        column = by_lower.get(key.lower())
        if column is not None:
            out[column] = copy.deepcopy(columns[column]) if value is None else value
    id_field = SCOPE_ID_FIELD[plugin]
    value = out[id_field]
    if plugin in INT_ID_PLUGINS:
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            return None
    elif not isinstance(value, str) or not value:
        return None
    out[id_field] = value
    return out


# ---- page tokens ----------------------------------------------------------------------------------

#: Default remote page size of the plugins that emit page tokens.
DEFAULT_PAGE_SIZE = {"github": 100, "gitlab": 100, "jira": 50}
#: Every token carries this member: three "~" and three "?" make the base64 contain "+" and "/".
_TOKEN_PAD = "~~~???"


class TokenError(ValueError):
    """A ``pageToken`` DevLake rejects: 400 when it is not base64, 500 when it is not the page JSON."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def encode_token(page: dict[str, Any]) -> str:
    """Standard base64 of the page JSON, built so the token always holds ``+``, ``/`` and ``=``.

    Real tokens contain those characters only sometimes; always having them catches clients that
    pass the token back without URL-encoding it.
    """
    raw = json.dumps(page | {"pad": _TOKEN_PAD}, separators=(",", ":"))
    raw += " " * ((1 - len(raw)) % 3)  # JSON allows trailing spaces; length 1 mod 3 gives "=="
    return base64.b64encode(raw.encode()).decode()


def decode_token(token: str) -> dict[str, int | str]:
    """Decode a page token as DevLake does. A ``+`` sent unencoded arrives as a space: not base64."""
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TokenError(400, f"invalid page token: {exc}") from exc
    try:
        page = json.loads(raw)
    except ValueError as exc:
        raise TokenError(500, f"failed to unmarshal page token: {exc}") from exc
    if not isinstance(page, dict):
        raise TokenError(500, "failed to unmarshal page token: not an object")
    for key in ("page", "per_page", "maxResults", "startAt"):
        if key in page and (isinstance(page[key], bool) or not isinstance(page[key], int)):
            raise TokenError(500, f"failed to unmarshal page token: {key} is not a number")
    return page


# ---- remote trees ---------------------------------------------------------------------------------

#: Dates put into seeded remote scope data.
_CREATED = "2024-03-01T09:00:00Z"
_UPDATED = "2025-10-20T16:30:00Z"


@dataclass
class RemoteEntry:
    """One ``remote-scopes`` child: a ``group`` to drill into or a selectable ``scope``."""

    type: str
    id: str
    name: str
    full_name: str
    parent_id: str | None = None
    data: dict[str, Any] | None = None  # the plugin's scope object (connectionId 0) for scopes

    def as_json(self, with_parent: bool = True) -> dict[str, Any]:
        return {
            "type": self.type,
            "parentId": self.parent_id if with_parent else None,
            "id": self.id,
            "name": self.name,
            "fullName": self.full_name,
            "data": copy.deepcopy(self.data) if self.data is not None else None,
        }


@dataclass
class RemoteTree:
    """The remote hierarchy one connection sees: groups (owners, namespaces, workspaces, projects)
    and scopes (repositories, boards). Scope ids minted for added repos continue from ``next_id``."""

    plugin: str
    groups: list[RemoteEntry] = field(default_factory=list)
    scopes: list[RemoteEntry] = field(default_factory=list)
    next_id: int = 1
    failure: tuple[int, str] | None = None  # (status, message) answered by remote-scopes calls

    def group(self, group_id: str) -> RemoteEntry | None:
        return next((g for g in self.groups if g.id == group_id), None)

    def subgroups(self, parent_id: str | None) -> list[RemoteEntry]:
        return [g for g in self.groups if g.parent_id == parent_id]

    def scopes_in(self, parent_id: str | None) -> list[RemoteEntry]:
        return [s for s in self.scopes if s.parent_id == parent_id]

    def add_group(self, name: str) -> RemoteEntry:
        """Add a top-level owner / group / workspace / project named ``name`` (ids follow the plugin)."""
        slug = slugify(name)
        if self.plugin == "gitlab":
            entry = RemoteEntry("group", str(self.mint_id()), name, slug)
        elif self.plugin == "azuredevops_go":  # "<org>/<project>"; a bare name goes into "sandbox-org"
            full = name if "/" in name else f"sandbox-org/{name}"
            entry = RemoteEntry("group", full, full.split("/", 1)[1], full)
        else:
            entry = RemoteEntry("group", slug, name, slug)
        self.groups.append(entry)
        return entry

    def add_repo(self, name: str, group_id: str | None = None, path: str | None = None) -> RemoteEntry:
        """Add a repository (a board for jira) named ``name`` in ``group_id``.

        An unknown ``group_id`` becomes a new top-level group; without one the repo goes into the
        first group, created as "sandbox" when there is none (jira boards have no group). ``path``
        overrides the slug derived from the name.
        """
        group: RemoteEntry | None = None
        if self.plugin != "jira":
            group = (
                self.group(group_id)
                if group_id
                else next((g for g in self.groups if not g.id.startswith("user:")), None)
            )
            if group is None:
                group = self.add_group(group_id or "sandbox")
        entry = _SCOPE_BUILDERS[self.plugin](self, group, name, path or slugify(name))
        self.scopes.append(entry)
        return entry

    def mint_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def _owner_id(login: str) -> int:
    return zlib.crc32(login.encode()) % 10_000_000


def _github_scope(tree: RemoteTree, owner: RemoteEntry | None, name: str, slug: str) -> RemoteEntry:
    assert owner is not None
    repo_id, full = tree.mint_id(), f"{owner.id}/{name}"
    data = {
        "githubId": repo_id,
        "name": name,
        "fullName": full,
        "HTMLUrl": f"https://github.com/{full}",
        "cloneUrl": f"https://github.com/{full}.git",
        "ownerId": _owner_id(owner.id),
        "description": f"{name} service",
        "language": "Python",
        "parentId": 0,
        "createdDate": _CREATED,
        "updatedDate": _UPDATED,
    }
    return RemoteEntry("scope", str(repo_id), name, full, owner.id, data | {"connectionId": 0})


def _gitlab_scope(tree: RemoteTree, namespace: RemoteEntry | None, name: str, slug: str) -> RemoteEntry:
    assert namespace is not None
    project_id, full = tree.mint_id(), f"{namespace.full_name}/{slug}"
    data = {
        "gitlabId": project_id,
        "name": name,
        "pathWithNamespace": full,
        "webUrl": f"https://gitlab.example.test/{full}",
        "httpUrlToRepo": f"https://gitlab.example.test/{full}.git",
        "defaultBranch": "main",
        "visibility": "private",
        "archived": False,
        "forkedFromProjectId": 0,
        "createdDate": _CREATED,
        "updatedDate": _UPDATED,
    }
    return RemoteEntry("scope", str(project_id), name, full, namespace.id, data | {"connectionId": 0})


def _bitbucket_scope(tree: RemoteTree, workspace: RemoteEntry | None, name: str, slug: str) -> RemoteEntry:
    assert workspace is not None
    taken = {s.id for s in tree.scopes}
    full = f"{workspace.id}/{slug}"
    n = 1
    while full in taken:
        n += 1
        full = f"{workspace.id}/{slug}-{n}"
    data = {
        "bitbucketId": full,
        "name": name,
        "fullName": full,
        "HTMLUrl": f"https://bitbucket.org/{full}",
        "cloneUrl": f"https://bitbucket.org/{full}.git",
        "owner": workspace.id,
        "description": "",
        "createdDate": _CREATED,
        "updatedDate": _UPDATED,
    }
    return RemoteEntry("scope", full, name, full, workspace.id, data | {"connectionId": 0})


def _jira_scope(tree: RemoteTree, _: RemoteEntry | None, name: str, slug: str) -> RemoteEntry:
    board_id = tree.mint_id()
    data = {
        "boardId": board_id,
        "name": name,
        "projectId": 10000 + board_id,
        "type": "scrum",
        "jql": "",
        "self": f"https://acme.atlassian.net/rest/agile/1.0/board/{board_id}",
    }
    return RemoteEntry("scope", str(board_id), name, name, None, data | {"connectionId": 0})


def _azuredevops_scope(tree: RemoteTree, project: RemoteEntry | None, name: str, slug: str) -> RemoteEntry:
    assert project is not None
    org, project_name = project.id.split("/", 1)
    guid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{project.id}/{name}"))
    url = f"https://dev.azure.com/{org}/{project_name}/_git/{slug}"
    data = {
        "id": guid,
        "type": "TfsGit",
        "name": name,
        "url": url,
        "remoteUrl": url,
        "OrganizationId": org,
        "ProjectId": project_name,
        "ExternalId": "",
        "IsFork": False,
        "IsPrivate": True,
    }
    return RemoteEntry("scope", guid, name, f"{project.id}/{name}", project.id, data | {"connectionId": 0})


_SCOPE_BUILDERS = {
    "github": _github_scope,
    "gitlab": _gitlab_scope,
    "bitbucket": _bitbucket_scope,
    "jira": _jira_scope,
    "azuredevops_go": _azuredevops_scope,
}


# ---- listing and search ---------------------------------------------------------------------------

#: bitbucket lists at most this many workspaces or repos and never sets a next token.
BITBUCKET_CAP = 100
_Page = dict[str, Any]
_Listing = tuple[list[RemoteEntry], _Page | None]


def _slice(items: list[RemoteEntry], page: int, size: int) -> list[RemoteEntry]:
    start = (max(page, 1) - 1) * size
    return items[start : start + size]


def _list_github(tree: RemoteTree, group_id: str | None, page: _Page, size: int) -> _Listing:
    """Owners at the top, an owner's repos below; a next page exists while a page comes back full."""
    items = tree.subgroups(None) if group_id is None else tree.scopes_in(group_id)
    number, per_page = int(page.get("page") or 1), int(page.get("per_page") or size)
    chunk = _slice(items, number, per_page)
    return chunk, ({"page": number + 1, "per_page": per_page} if len(chunk) == per_page else None)


def _list_gitlab(tree: RemoteTree, group_id: str | None, page: _Page, size: int) -> _Listing:
    """Subgroups page by page; when they run out, projects follow in the same response."""
    number, per_page = int(page.get("page") or 1), int(page.get("per_page") or size)
    step = page.get("step") or "group"
    groups, projects = tree.subgroups(group_id), tree.scopes_in(group_id)
    children: list[RemoteEntry] = []
    if step == "group":
        children += _slice(groups, number, per_page)
        if number * per_page < len(groups):
            return children, {"page": number + 1, "per_page": per_page, "step": "group"}
        number = 1
    children += _slice(projects, number, per_page)
    more = number * per_page < len(projects)
    return children, ({"page": number + 1, "per_page": per_page, "step": "project"} if more else None)


def _list_jira(tree: RemoteTree, group_id: str | None, page: _Page, size: int) -> _Listing:
    """A flat list of boards (``groupId`` ignored), paged with ``startAt`` until Jira's ``isLast``."""
    start, max_results = int(page.get("startAt") or 0), int(page.get("maxResults") or size)
    chunk = tree.scopes[start : start + max_results]
    is_last = start + max_results >= len(tree.scopes)
    return chunk, (None if is_last else {"maxResults": max_results, "startAt": start + max_results})


def _list_bitbucket(tree: RemoteTree, group_id: str | None, page: _Page, size: int) -> _Listing:
    """Workspaces, then a workspace's repos: only the first 100, never a next token."""
    items = tree.subgroups(None) if group_id is None else tree.scopes_in(group_id)
    return items[:BITBUCKET_CAP], None


def _list_azuredevops(tree: RemoteTree, group_id: str | None, page: _Page, size: int) -> _Listing:
    """Projects as groups, a project's repos as scopes; no pagination."""
    return (tree.subgroups(None) if group_id is None else tree.scopes_in(group_id)), None


_LISTERS = {
    "github": _list_github,
    "gitlab": _list_gitlab,
    "jira": _list_jira,
    "bitbucket": _list_bitbucket,
    "azuredevops_go": _list_azuredevops,
}


def list_remote(
    tree: RemoteTree, group_id: str | None, token: str, page_size: int | None
) -> tuple[list[dict[str, Any]], str]:
    """One ``remote-scopes`` page: (children, nextPageToken or ""). Raises :class:`TokenError`.

    ``page_size`` (the sandbox's control; None = the plugin's default) sizes first pages; later
    pages keep the size stored in their token, as the real plugins do.
    """
    page = decode_token(token) if token else {}
    size = page_size or DEFAULT_PAGE_SIZE.get(tree.plugin, 100)
    entries, next_page = _LISTERS[tree.plugin](tree, group_id or None, page, size)
    return [e.as_json() for e in entries], (encode_token(next_page) if next_page else "")


def search_remote(tree: RemoteTree, search: str, page: int, page_size: int) -> list[dict[str, Any]]:
    """One ``search-remote-scopes`` page: scopes whose full name holds every search word.

    GitHub-style ``org:<owner>`` / ``user:<owner>`` qualifiers restrict the owner (github only).
    """
    words = search.lower().split()
    owners = {w.split(":", 1)[1] for w in words if tree.plugin == "github" and w.startswith(("org:", "user:"))}
    terms = [w for w in words if not (tree.plugin == "github" and w.startswith(("org:", "user:")))]
    found = [
        s
        for s in tree.scopes
        if all(t in s.full_name.lower() for t in terms) and (not owners or (s.parent_id or "").lower() in owners)
    ]
    return [e.as_json(with_parent=False) for e in _slice(found, page, page_size)]


def grow(trees: list[RemoteTree], count: int, seed: int, start: int) -> None:
    """Add ``count`` numbered repositories round-robin over ``trees`` and over each tree's groups."""
    names = word_names(random.Random(f"devlake-bulk-{seed}-{start}"), count, numbered_from=start)
    for i, name in enumerate(names):
        tree = trees[i % len(trees)]
        groups = [g for g in tree.groups if not g.id.startswith("user:")]
        tree.add_repo(name, groups[(i // len(trees)) % len(groups)].id if groups else None)


# ---- seeded connections ---------------------------------------------------------------------------

#: Jira boards and Bitbucket repositories of the seed: unicode and names that need sanitising.
_JIRA_BOARDS = (
    "Platform Scrum",
    "Équipe Données",
    "サポート Board",
    "Ops 🚀 Kanban",
    "R&D / Research",
    "Mobile App",
    "Billing Q4",
    LONG_NAME,
)
_BITBUCKET_REPOS = {
    "acme-ws": ("Données Pipeline", "infra.terraform", "web portal", "payments_core", "ci-templates"),
    "ops-ws": ("runbooks", "Ops Tools (legacy)", "alerting"),
}


@dataclass(frozen=True)
class SeedConnection:
    plugin: str
    name: str
    fields: dict[str, Any]
    tree: RemoteTree


def _github_tree(seed: int, owners: dict[str, int], first_id: int) -> RemoteTree:
    tree = RemoteTree("github")
    for owner in owners:
        tree.add_group(owner)
    for repo in github_layout(seed, owners, first_id):
        tree.next_id = repo.id
        tree.add_repo(repo.name, repo.owner)
    return tree


def _gitlab_tree(seed: int) -> RemoteTree:
    groups, projects = gitlab_layout(seed)
    user_group = f"user:{GITLAB_USER_ID}"
    tree = RemoteTree("gitlab", groups=[RemoteEntry("group", user_group, GITLAB_USERNAME, GITLAB_USERNAME)])
    tree.groups += [
        RemoteEntry("group", str(g.id), g.name, g.full_path, str(g.parent_id) if g.parent_id else None) for g in groups
    ]
    for project in projects:
        tree.next_id = project.id
        tree.add_repo(project.name, user_group if project.personal else str(project.namespace_id), project.path)
    return tree


def _bitbucket_tree() -> RemoteTree:
    tree = RemoteTree("bitbucket")
    for workspace, repos in _BITBUCKET_REPOS.items():
        tree.add_group(workspace)
        for name in repos:
            tree.add_repo(name, workspace)
    return tree


def _jira_tree() -> RemoteTree:
    tree = RemoteTree("jira")
    for name in _JIRA_BOARDS:
        tree.add_repo(name)
    return tree


def seeded_connections(seed: int) -> list[SeedConnection]:
    """The five connections of a fresh sandbox DevLake and their remote trees (~64 scopes)."""
    return [
        SeedConnection(
            "github",
            "github-acme",
            {"endpoint": "https://api.github.com/", "token": "ghp_sandboxacme0001"},
            _github_tree(seed, {"sandbox-bot": 2, "acme": 9, "acme-labs": 4}, 700_001),
        ),
        SeedConnection(
            "github",
            "github-oss",
            {"endpoint": "https://api.github.com/", "token": "ghp_sandboxoss0002,ghp_sandboxoss0003"},
            _github_tree(seed, {"sandbox-bot": 1, "open-tools": 5}, 800_001),
        ),
        SeedConnection(
            "gitlab",
            "gitlab-main",
            {"endpoint": "https://gitlab.example.test/api/v4/", "token": "glpat-sandbox0001"},
            _gitlab_tree(seed),
        ),
        SeedConnection(
            "bitbucket", "bitbucket-acme", {"username": "sandbox-bot", "password": "bb-app-password"}, _bitbucket_tree()
        ),
        SeedConnection(
            "jira",
            "jira-cloud",
            {"endpoint": "https://acme.atlassian.net/rest/", "username": "bot@acme.test", "password": "jira-token"},
            _jira_tree(),
        ),
    ]
