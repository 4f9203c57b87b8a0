"""The projects of ``daily_project_metrics``: parse and validate ``include/config/projects.yaml``.

Pure Python (PyYAML only; no Airflow, no database).

The file
--------

.. code-block:: yaml

    projects:
      - name: api                     # unique (case-insensitive); letters, digits, . _ - (at most 64)
        description: free text        # optional, not used
        github: acme/api              # optional: "owner/name"
        gitlab: payments/checkout-api # optional: a project id (2001) or its full path
        sonarqube: acme_api           # optional: the SonarQube project key
        prometheus:                   # optional: a list of named PromQL queries
          - name: availability        # conventional: unit "%", higher_is_better (may be left out)
            query: 100 * avg(avg_over_time(up{job="api"}[1d]))
          - name: requests_per_second # any other name: unit and direction are required
            query: sum(rate(http_requests_total{job="api"}[1d]))
            unit: req/s
            direction: higher_is_better
          - name: worst_error_rate_5m
            query: >-
              100 * sum(rate(http_requests_total{job="api",code=~"5.."}[5m]))
              / sum(rate(http_requests_total{job="api"}[5m]))
            unit: "%"
            direction: lower_is_better
            kind: range               # instant (default) | range
            aggregation: max          # range only: avg (default) | min | max | last
            step: 5m                  # range only: a PromQL duration or seconds (default 5m)
        slos:                         # optional: query name -> target
          availability: ">= 99.9"     # an operator and a number (quoted: > starts a YAML block)
          p95_latency: 0.5            # a number alone: <= for lower_is_better, >= for higher_is_better

A project needs at least one source (``github``, ``gitlab``, ``sonarqube``, ``prometheus``); with only
some it gets the figures those give.

Prometheus queries
------------------
* ``name``: lower-case letters, digits and ``_`` (starting with a letter, at most 64); the figure is
  stored as source ``prometheus``, metric ``<name>`` (the health score reads it as ``prometheus.<name>``).
* The three conventional names carry fixed units and directions, which may be left out (given, they
  must match): ``availability`` (``%``, 0-100, higher is better), ``error_rate`` (``%``, 0-100, lower is
  better: multiply a ratio by 100), ``p95_latency`` (``s``, lower is better). The health score's default
  SLOs and the default alert thresholds (``include/config/health.yaml``) read them in these units.
* ``kind: instant`` (the default): the query is evaluated once, **at the data interval's end**
  (``/api/v1/query`` with ``time=<end>``); the query itself covers the interval, e.g.
  ``avg_over_time(...[1d])`` for a daily schedule. A backfilled day gives what that day was.
* ``kind: range``: ``/api/v1/query_range`` from the interval's start to its end every ``step``; the
  samples are reduced by ``aggregation`` (``avg``, ``min``, ``max`` or ``last``). For "the worst 5
  minutes of the day" and the like.
* Either way the query must give **one** series (or a scalar): aggregate it (``sum``, ``avg``,
  ``max``...). An empty result or NaN is "no data", never 0.
* The query text is checked for balanced brackets and closed quotes only; Prometheus itself judges the
  rest (a bad query is named in the run's errors for that project, the others go on).

SLOs
----
``slos`` maps a Prometheus query name of the same project to a target: ``">= 99.9"``, ``"< 0.3"`` or a
number alone (``>=`` for a higher-is-better query, ``<=`` for a lower-is-better one). The operator must
agree with the query's direction. The health score's reliability sub-score rates each SLO.

Errors
------
Every problem is collected and raised together as one :class:`ProjectsError`, each line naming the
file, the line and the field, e.g. ``projects.yaml line 7, projects[1].github: must be "owner/name"
(such as acme/api), got "acme"``. Unknown keys, duplicate keys and duplicate project names (naming
both lines) are errors. Anchors, aliases and ``<<`` merge keys work.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devops_automation.yaml_config import (
    MISSING,
    Bad,
    ConfigError,
    NodeParser,
    got,
    is_null,
    line_of,
    one_of,
    parse_document,
    read_config_text,
    shape,
    text,
)

HIGHER = "higher_is_better"
LOWER = "lower_is_better"
DIRECTIONS = (HIGHER, LOWER)
KINDS = ("instant", "range")
AGGREGATIONS = ("avg", "min", "max", "last")
SOURCES = ("github", "gitlab", "sonarqube", "prometheus")
DEFAULT_STEP_S = 300.0

#: The conventional queries: name -> (unit, direction).
CONVENTIONAL: dict[str, tuple[str, str]] = {
    "availability": ("%", HIGHER),
    "error_rate": ("%", LOWER),
    "p95_latency": ("s", LOWER),
}
#: SLO operators allowed per direction (the first is used for a bare number).
SLO_OPERATORS: dict[str, tuple[str, str]] = {HIGHER: (">=", ">"), LOWER: ("<=", "<")}

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_QUERY_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_GITHUB = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
_GITLAB_PATH = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_.][A-Za-z0-9_.-]*)+")
_SONAR_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,400}")
_TARGET = re.compile(r"\s*(>=|<=|>|<)\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_UNIT = re.compile(r"\S(?:.{0,30}\S)?")

_PROJECT_FIELDS = ("name", "description", *SOURCES, "slos")
_QUERY_FIELDS = ("name", "query", "unit", "direction", "kind", "aggregation", "step", "description")


class ProjectsError(ConfigError):
    """The projects file is not valid; ``problems`` lists every problem (each names file, line, field)."""

    what = "the projects file"


# ---- the parsed file -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PromQuery:
    """One named PromQL query of a project (see the module doc for ``kind``)."""

    name: str
    query: str
    unit: str
    direction: str  # higher_is_better | lower_is_better
    kind: str = "instant"  # instant | range
    aggregation: str | None = None  # range only: avg | min | max | last
    step_s: float | None = None  # range only: seconds between samples
    description: str = ""
    line: int = 0

    @property
    def metric(self) -> str:
        """The key of its value in the health score's input: ``prometheus.<name>``."""
        return f"prometheus.{self.name}"


@dataclass(frozen=True)
class Slo:
    """A target on one Prometheus query of a project: ``value <op> target`` is met."""

    query: str
    op: str  # >= | > (higher_is_better) ; <= | < (lower_is_better)
    target: float
    direction: str
    unit: str
    line: int = 0

    @property
    def metric(self) -> str:
        return f"prometheus.{self.query}"

    def met(self, value: float) -> bool:
        return {
            ">=": value >= self.target,
            ">": value > self.target,
            "<=": value <= self.target,
            "<": value < self.target,
        }[self.op]

    def __str__(self) -> str:
        return f"{self.query} {self.op} {self.target:g}"


@dataclass(frozen=True)
class Project:
    name: str
    github: str | None = None  # "owner/name"
    gitlab: int | str | None = None  # project id or full path
    sonarqube: str | None = None  # project key
    prometheus: tuple[PromQuery, ...] = ()
    slos: tuple[Slo, ...] = ()
    description: str = ""
    line: int = 0

    @property
    def sources(self) -> tuple[str, ...]:
        """The sources this project names, in the order of :data:`SOURCES`."""
        return tuple(s for s in SOURCES if getattr(self, s))

    def query(self, name: str) -> PromQuery | None:
        return next((q for q in self.prometheus if q.name == name), None)


# ---- converters ----------------------------------------------------------------------------------


def _project_name(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise Bad(
            f"must be 1 to 64 letters, digits, '.', '_' or '-' (starting with a letter or digit), got {got(value)}"
        )
    return value


def _github(value: Any) -> str:
    if not isinstance(value, str) or not _GITHUB.fullmatch(value.strip()) or value.strip().endswith((".", "/")):
        raise Bad(f'must be "owner/name" (such as acme/api), got {got(value)}')
    return value.strip()


def _gitlab(value: Any) -> int | str:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise Bad(f"a project id must be above 0, got {got(value)}")
        return value
    if not isinstance(value, str) or not _GITLAB_PATH.fullmatch(value.strip().strip("/")):
        raise Bad(
            f"must be a project id (such as 2001) or its full path (such as payments/checkout-api), got {got(value)}"
        )
    return value.strip().strip("/")


def _sonar_key(value: Any) -> str:
    if not isinstance(value, str) or not _SONAR_KEY.fullmatch(value) or value.isdigit():
        raise Bad(
            "must be a SonarQube project key (letters, digits, '-', '_', '.', ':'; at least one non-digit), "
            f"got {got(value)}"
        )
    return value


def _query_name(value: Any) -> str:
    if not isinstance(value, str) or not _QUERY_NAME.fullmatch(value):
        raise Bad(
            "must be 1 to 64 lower-case letters, digits or '_', starting with a letter "
            f"(such as availability or p95_latency), got {got(value)}"
        )
    return value


def promql_problem(query: str) -> str | None:
    """What is obviously wrong with a PromQL text (unbalanced brackets, an unclosed quote), else None."""
    closing = {"(": ")", "{": "}", "[": "]"}
    stack: list[tuple[str, int]] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c in "\"'`":
            j = i + 1
            while j < n and query[j] != c:
                j += 2 if c != "`" and query[j] == "\\" else 1
            if j >= n:
                return f"the quote {c} at position {i + 1} is never closed"
            i = j + 1
            continue
        if c == "#":  # a comment runs to the end of the line
            end = query.find("\n", i)
            i = n if end < 0 else end
            continue
        if c in closing:
            stack.append((c, i))
        elif c in ")}]":
            if not stack or closing[stack[-1][0]] != c:
                return f"the {c!r} at position {i + 1} closes nothing"
            stack.pop()
        i += 1
    if stack:
        c, at = stack[-1]
        return f"the {c!r} at position {at + 1} is never closed"
    return None


def _promql(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Bad(f"must be a PromQL expression, got {got(value)}")
    problem = promql_problem(value)
    if problem:
        raise Bad(f"is not valid PromQL: {problem}")
    return value.strip()


def _unit(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _UNIT.fullmatch(value) or "\n" in value:
        raise Bad(f'must be a short unit (1 to 32 characters, such as "%", s, req/s, count), got {got(value)}')
    return value


def _step(value: Any) -> float:
    seconds: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        seconds = float(value)
    elif isinstance(value, str):
        pos, total = 0, 0.0
        for m in _DURATION.finditer(value.strip()):
            if m.start() != pos:
                break
            total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
            pos = m.end()
        if value.strip() and pos == len(value.strip()):
            seconds = total
    if seconds is None or not 1 <= seconds <= 86400:
        raise Bad(f"must be a duration from 1s to 1d (such as 30s, 5m, 1h) or seconds, got {got(value)}")
    return seconds


def parse_target(value: Any, direction: str) -> tuple[str, float]:
    """``(op, target)`` of an SLO target: ``">= 99.9"`` or a number (the direction's inclusive operator).

    Raises :class:`~devops_automation.yaml_config.Bad` when the text is not a target or its operator goes
    against ``direction``.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise Bad(f"must be a finite number, got {got(value)}")
        return SLO_OPERATORS[direction][0], float(value)
    m = _TARGET.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        hint = " (without the %)" if isinstance(value, str) and "%" in value else ""
        raise Bad(
            f'must be an operator and a number, such as ">= 99.9" or "< 0.5"{hint}, or a number, got {got(value)}'
        )
    op, target = m.group(1), float(m.group(2))
    if op not in SLO_OPERATORS[direction]:
        allowed = " or ".join(SLO_OPERATORS[direction])
        raise Bad(f"the query is {direction}, so the operator must be {allowed}, got {got(value)}")
    return op, target


# ---- parsing -------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, p: NodeParser) -> None:
        self.p = p

    def file(self, root: yaml.Node | None) -> list[Project]:
        p = self.p
        if root is None:
            p.problem(1, None, "the file is empty: expected a mapping with the key 'projects'")
            return []
        top = p.mapping(root, "", "with the key 'projects'")
        if top is None:
            return []
        for name, (key_node, _) in top.items():
            if name != "projects":
                p.unknown(key_node, "", ("projects",), "; the top-level key is projects")
        if "projects" not in top:
            p.problem(root, "projects", "required (the list of projects)")
            return []
        node = top["projects"][1]
        if is_null(node):
            return []  # "projects:" with every project commented out
        if not isinstance(node, yaml.SequenceNode):
            p.problem(node, "projects", f"must be a list of projects, got {shape(node)}")
            return []
        projects: list[Project] = []
        first: dict[str, tuple[int, int, str]] = {}
        for i, item in enumerate(node.value):
            project, name_node = self.project(item, f"projects[{i}]")
            if project is None:
                continue
            folded = project.name.casefold()
            if folded in first:
                line, j, earlier = first[folded]
                same = "" if earlier == project.name else f" as {got(earlier)}"
                p.problem(
                    name_node or item,
                    f"projects[{i}].name",
                    f"duplicate name {got(project.name)} (first at line {line}, projects[{j}]{same}; "
                    "names are compared ignoring case)",
                )
                continue
            first[folded] = (line_of(name_node or item), i, project.name)
            projects.append(project)
        return projects

    def project(self, node: yaml.Node, where: str) -> tuple[Project | None, yaml.Node | None]:
        p = self.p
        before = len(p.problems)
        pairs = p.mapping(node, where, "a project with name and at least one of github, gitlab, sonarqube, prometheus")
        if pairs is None:
            return None, None
        values: dict[str, Any] = {}
        name_node = None
        if "name" in pairs:
            name_node = pairs["name"][1]
            value = p.convert(name_node, f"{where}.name", _project_name)
            if value is not MISSING:
                values["name"] = value
        else:
            p.problem(node, f"{where}.name", "required (a unique name for the project)")
        convs = {"description": text, "github": _github, "gitlab": _gitlab, "sonarqube": _sonar_key}
        for name, (key_node, value_node) in pairs.items():
            path = f"{where}.{name}"
            if name in ("name", "slos"):
                continue
            if name in convs:
                if is_null(value_node) and name in SOURCES:
                    continue  # "github:" left empty: the project has no such source
                value = p.convert(value_node, path, convs[name])
            elif name == "prometheus":
                value = self.queries(value_node, path)
            else:
                p.unknown(key_node, where, _PROJECT_FIELDS, f"; a project takes {', '.join(_PROJECT_FIELDS)}")
                continue
            if value is not MISSING:
                values[name] = value
        queries: tuple[PromQuery, ...] = values.get("prometheus", ())
        if "slos" in pairs and not is_null(pairs["slos"][1]):
            slos = self.slos(pairs["slos"][1], f"{where}.slos", queries, "prometheus" in pairs)
            if slos is not MISSING:
                values["slos"] = slos
        if not any(s in pairs and not is_null(pairs[s][1]) for s in SOURCES):
            p.problem(
                node,
                where,
                f"names no source: give at least one of {', '.join(SOURCES)}"
                + (f" (project {got(values['name'])})" if "name" in values else ""),
            )
        if len(p.problems) > before or "name" not in values:
            return None, name_node
        return Project(line=line_of(node), **values), name_node

    def queries(self, node: yaml.Node, where: str) -> Any:
        p = self.p
        if not isinstance(node, yaml.SequenceNode):
            p.problem(node, where, f"must be a list of named queries (name, query, ...), got {shape(node)}")
            return MISSING
        if not node.value:
            p.problem(node, where, "must not be an empty list (leave prometheus out)")
            return MISSING
        out: list[PromQuery] = []
        first: dict[str, tuple[int, int]] = {}
        ok = True
        for i, item in enumerate(node.value):
            q, name_node = self.query(item, f"{where}[{i}]")
            if q is None:
                ok = False
                continue
            if q.name in first:
                line, j = first[q.name]
                p.problem(
                    name_node or item,
                    f"{where}[{i}].name",
                    f"duplicate query name {got(q.name)} (first at line {line}, {where}[{j}])",
                )
                ok = False
                continue
            first[q.name] = (line_of(name_node or item), i)
            out.append(q)
        return tuple(out) if ok else MISSING

    def query(self, node: yaml.Node, where: str) -> tuple[PromQuery | None, yaml.Node | None]:
        p = self.p
        before = len(p.problems)
        pairs = p.mapping(node, where, "a query with name, query, unit, direction")
        if pairs is None:
            return None, None
        convs: dict[str, Any] = {
            "name": _query_name,
            "query": _promql,
            "unit": _unit,
            "direction": one_of(DIRECTIONS),
            "kind": one_of(KINDS),
            "aggregation": one_of(AGGREGATIONS),
            "step": _step,
            "description": text,
        }
        values: dict[str, Any] = {}
        for name, (key_node, value_node) in pairs.items():
            if name not in convs:
                p.unknown(key_node, where, _QUERY_FIELDS, f"; a query takes {', '.join(_QUERY_FIELDS)}")
                continue
            value = p.convert(value_node, f"{where}.{name}", convs[name])
            if value is not MISSING:
                values[name] = value
        for name, help_ in (("name", "a name such as availability"), ("query", "the PromQL expression")):
            if name not in pairs:
                p.problem(node, f"{where}.{name}", f"required ({help_})")
        qname = values.get("name")
        if qname in CONVENTIONAL:
            unit, direction = CONVENTIONAL[qname]
            for name, fixed in (("unit", unit), ("direction", direction)):
                if name in values and values[name] != fixed:
                    hint = " (multiply a ratio by 100)" if name == "unit" and fixed == "%" else ""
                    p.problem(
                        pairs[name][1],
                        f"{where}.{name}",
                        f"{qname} is always {got(fixed)}{hint}, got {got(values[name])}",
                    )
                values.setdefault(name, fixed)
        elif qname is not None:
            for name, help_ in (
                ("unit", 'such as "%", s, req/s, count'),
                ("direction", " or ".join(DIRECTIONS)),
            ):
                if name not in pairs:
                    p.problem(node, f"{where}.{name}", f"required for the query {qname} ({help_})")
        kind = values.get("kind", None if "kind" in pairs else "instant")  # None: a wrong kind (reported)
        if kind == "range":
            values.setdefault("aggregation", "avg")
            values["step_s"] = values.pop("step", DEFAULT_STEP_S)
        elif kind == "instant":
            for name in ("aggregation", "step"):
                if name in pairs:
                    p.problem(
                        pairs[name][0], f"{where}.{name}", "only for kind: range (an instant query has one value)"
                    )
        values.pop("step", None)
        values["kind"] = kind or "instant"
        if len(p.problems) > before:
            return None, pairs.get("name", (None, None))[1]
        return PromQuery(line=line_of(node), **values), pairs["name"][1]

    def slos(self, node: yaml.Node, where: str, queries: Sequence[PromQuery], has_prometheus: bool) -> Any:
        p = self.p
        pairs = p.mapping(node, where, 'Prometheus query name -> target, such as availability: ">= 99.9"')
        if pairs is None:
            return MISSING
        by_name = {q.name: q for q in queries}
        out: list[Slo] = []
        ok = True
        for name, (key_node, value_node) in pairs.items():
            path = f"{where}.{name}"
            q = by_name.get(name)
            if q is None:
                if has_prometheus and not queries:
                    ok = False  # the queries themselves are wrong (reported); cannot tell
                    continue
                known = ", ".join(by_name) or "none (add a prometheus list)"
                p.problem(
                    key_node, path, f"no Prometheus query named {got(name)} in this project (its queries: {known})"
                )
                ok = False
                continue
            value = p.value(value_node, path)
            if value is MISSING:
                ok = False
                continue
            try:
                op, target = parse_target(value, q.direction)
            except Bad as exc:
                p.problem(value_node, path, str(exc))
                ok = False
                continue
            out.append(Slo(name, op, target, q.direction, q.unit, line_of(key_node)))
        return tuple(out) if ok else MISSING


def parse_projects(text: str, source: str = "projects.yaml") -> list[Project]:
    """The projects in a projects file's text, in file order.

    Raises :class:`ProjectsError` listing every problem, each naming ``source``, the line and the field.
    """
    return parse_document(text, source, ProjectsError, lambda p, root: _Parser(p).file(root))


def load_projects(path: str | Path) -> list[Project]:
    """:func:`parse_projects` of a file; errors name the file by its name (``projects.yaml``)."""
    content, source = read_config_text(path, ProjectsError)
    return parse_projects(content, source)
