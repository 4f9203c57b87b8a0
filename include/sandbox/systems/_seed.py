"""Deterministic names shared by the sandbox systems.

The GitLab layout (groups, nested subgroups and projects with their ids) is used twice: as the
projects of the GitLab sandbox and as the remote tree of DevLake's seeded ``gitlab`` connection, so a
DAG that maps DevLake scopes to GitLab projects finds the same ids and paths in both.

The names deliberately include hard cases: unicode, characters that need sanitising before they can
become identifiers, and one very long name.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass

_ADJECTIVES = ("fast", "blue", "core", "edge", "smart", "quiet", "bright", "solid", "rapid", "open", "prime", "lucid")
_NOUNS = (
    "api",
    "worker",
    "gateway",
    "billing",
    "search",
    "ledger",
    "portal",
    "auth",
    "catalog",
    "notifier",
    "scheduler",
    "metrics",
)

#: GitLab project (name, path) pairs with unicode or characters that need sanitising (GitLab allows
#: letters, digits, emoji, "_", ".", "+", "-" and spaces in names; the path is an ASCII slug).
GITLAB_HARD_NAMES = (
    ("Données Analytics", "donnees-analytics"),
    ("服务网关", "gateway-zh"),
    ("API + Gateway v2", "api-gateway-v2"),
    ("Ünïcødé Façade", "unicode-facade"),
)
#: A name far over DevLake's 100-character project-name limit.
LONG_NAME = "platform-observability-and-reliability-engineering-shared-infrastructure-deployment-automation-toolkit-v2"

GITLAB_USER_ID = 4242
GITLAB_USERNAME = "sandbox-bot"


def slugify(name: str) -> str:
    """An ASCII path slug the way GitLab/Bitbucket derive one: accents stripped, other runs become "-"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9._]+", "-", ascii_name.lower()).strip("-.")
    return slug or "project"


def word_names(rng: random.Random, count: int, numbered_from: int | None = None) -> list[str]:
    """``count`` distinct "adjective-noun" names (at most 144), or "adjective-noun-<n>" numbered from
    ``numbered_from`` when given (any count, for bulk generation)."""
    if numbered_from is not None:
        return [
            f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}-{n}" for n in range(numbered_from, numbered_from + count)
        ]
    return rng.sample([f"{a}-{n}" for a in _ADJECTIVES for n in _NOUNS], count)


@dataclass(frozen=True)
class SeedGroup:
    id: int
    name: str
    path: str
    full_path: str
    parent_id: int | None


@dataclass(frozen=True)
class SeedProject:
    id: int
    name: str
    path: str
    namespace_id: int  # a group id, or GITLAB_USER_ID for the user's personal namespace
    namespace_path: str  # group full path, or GITLAB_USERNAME

    @property
    def path_with_namespace(self) -> str:
        return f"{self.namespace_path}/{self.path}"

    @property
    def personal(self) -> bool:
        return self.namespace_path == GITLAB_USERNAME


def gitlab_layout(seed: int) -> tuple[list[SeedGroup], list[SeedProject]]:
    """Groups nested up to four levels ("acme/platform/backend/services") and ~18 projects."""
    rng = random.Random(f"gitlab-layout-{seed}")
    groups: list[SeedGroup] = []

    def group(gid: int, name: str, parent: SeedGroup | None) -> SeedGroup:
        path = slugify(name)
        g = SeedGroup(gid, name, path, f"{parent.full_path}/{path}" if parent else path, parent.id if parent else None)
        groups.append(g)
        return g

    acme = group(100, "Acme", None)
    platform = group(101, "Platform", acme)
    backend = group(102, "Backend", platform)
    services = group(103, "Services", backend)
    frontend = group(104, "Frontend", platform)
    data = group(105, "Data Team", acme)
    labs = group(106, "Acme Labs", None)

    placement = [
        (services, 4),
        (backend, 2),
        (frontend, 2),
        (platform, 1),
        (data, 2),
        (acme, 1),
        (labs, 2),
    ]
    projects: list[SeedProject] = []
    pid = 1000
    names = iter(word_names(rng, sum(n for _, n in placement)))
    for g, count in placement:
        for _ in range(count):
            pid += 1
            name = next(names)
            projects.append(SeedProject(pid, name, slugify(name), g.id, g.full_path))
    hard = zip((data, services, frontend, labs, platform), (*GITLAB_HARD_NAMES, (LONG_NAME, LONG_NAME)), strict=True)
    for g, (name, path) in hard:
        pid += 1
        projects.append(SeedProject(pid, name, path, g.id, g.full_path))
    for name in ("dotfiles", "scratchpad"):
        pid += 1
        projects.append(SeedProject(pid, name, name, GITLAB_USER_ID, GITLAB_USERNAME))
    return groups, projects


#: GitHub repository names that need sanitising before they can become identifiers (GitHub allows
#: only ASCII letters, digits, ".", "_" and "-", so there is no unicode here).
GITHUB_HARD_NAMES = ("API.Gateway_v2", "-legacy-monolith-", "docs.acme.io")


@dataclass(frozen=True)
class SeedRepo:
    id: int
    owner: str
    name: str

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


def github_layout(seed: int, owners: dict[str, int], first_id: int) -> list[SeedRepo]:
    """Repositories for the given owners (login -> repository count), with ids from ``first_id``.

    The first owner also gets the :data:`GITHUB_HARD_NAMES` repositories.
    """
    rng = random.Random(f"github-layout-{seed}-{first_id}")
    names = iter(word_names(rng, sum(owners.values())))
    placed = [(owner, next(names)) for owner, count in owners.items() for _ in range(count)]
    placed += [(next(iter(owners)), name) for name in GITHUB_HARD_NAMES]
    return [SeedRepo(first_id + i, owner, name) for i, (owner, name) in enumerate(placed)]
