"""Alert rules of ``ci_pipeline_analytics``: parse and validate the rule file, evaluate it, word the alerts.

Pure Python (no Airflow, no database access). The line-numbered YAML walking is
:mod:`devops_automation.yaml_config`'s; the episodes and their transitions are the shared
:mod:`devops_automation.store.alert_events` (this DAG's alerts are its ``source`` :data:`SOURCE`). The
store side (history, dedup keys, what to send) is :mod:`.alert_store`.

The file (``include/config/alert_rules.yaml``)
----------------------------------------------

.. code-block:: yaml

    defaults:                       # optional: used by every rule that does not set its own
      severity: warning
      channels: {slack: "#ci-alerts"}
    rules:
      - id: main-success-rate       # unique; letters, digits, . _ - (at most 64)
        kind: success_rate_below
        severity: critical          # critical | warning
        threshold: 0.8              # a fraction: 0.8 = 80 %
        window_days: 7              # default 7
        min_runs: 5                 # default 5: fewer runs decide nothing
        scope:                      # every filter is optional; all given filters must match
          provider: github          # github | gitlab (or a list)
          repos: ["acme/*"]         # glob patterns (case-insensitive), or "re:<regex>"
          branches: [main]          # glob patterns, or "re:<regex>" (the whole name must match)
          workflows: [CI]           # glob patterns, or "re:<regex>"
        channels:                   # at least one (here or in defaults.channels)
          slack: "#ci-alerts"       # "#channel-name" (quoted: # starts a YAML comment) or an id C0123ABCD
          telegram: "-1001234567890"   # chat id, or @channelusername
          email: [ci@example.com]   # one address or a list
        enabled: true               # default true; false keeps the rule in the file but silent
        description: free text (not sent)

Kinds and their own fields (``*`` = required), with the scope each one is evaluated on:

==========================  ===========================================================================
``success_rate_below``      ``threshold*`` (0 < t <= 1), ``window_days`` (7), ``min_runs`` (5).
                            Success rate (definitions §3) of the runs whose final attempt finished in the
                            last ``window_days``, per repo x workflow x branch; fires when below ``threshold``
                            with at least ``min_runs`` runs.
``red_longer_than``         ``hours*`` (> 0), ``branch_pattern*`` (patterns as in ``scope.branches``).
                            An open red streak (definitions §3) on a matching branch older than ``hours``
                            at the end of the interval.
``duration_regression``     ``percent*`` (> 0), ``baseline_weeks`` (4), ``window_days`` (7), ``min_runs`` (5).
                            p90 duration of the last ``window_days`` more than ``percent`` % above the p90
                            of the ``baseline_weeks`` weeks before that window (both need ``min_runs``).
``new_flaky_job``           ``window_days`` (7), ``baseline_weeks`` (4), ``min_flaky_rate`` (0).
                            A job (repo x workflow x job name; flaky jobs are counted across branches, so
                            ``scope.branches`` is refused) flaky in the window (flaky rate above 0 and at
                            least ``min_flaky_rate``) and not flaky in the ``baseline_weeks`` before it.
``queue_p90_above``         ``minutes*`` (> 0), ``window_days`` (1), ``min_runs`` (5).
                            p90 run queue time over the window above ``minutes``.
``rerun_minutes_above``     ``minutes*`` (> 0), ``window_days`` (1).
                            Minutes spent in non-final attempts over the window above ``minutes``.
==========================  ===========================================================================

Every problem in the file is collected and raised together as one :class:`AlertRulesError`, each line
naming the file, the line and the field, e.g.
``alert_rules.yaml line 12, rules[2].threshold: must be a number between 0 and 1, got "high"``.
Unknown keys are errors (a typo must not silently disable a rule), as are duplicate keys in a mapping
and duplicate rule ids (naming both lines). Anchors, aliases and ``<<`` merge keys work.

Evaluation
----------
The analytics give one observation per scope and kind (:class:`SuccessRate`, :class:`RedStreak`,
:class:`DurationP90`, :class:`FlakyJob`, :class:`QueueP90`, :class:`RerunMinutes`), computed over the
windows :func:`needs` lists. :func:`evaluate` gives one :class:`Condition` per (enabled rule, observation
in its scope): ``firing``, ``ok``, or ``hold`` (not enough evidence either way: too few runs, no
baseline, or a flaky job that is already known; an open alert stays open as it is and none starts).
:func:`transitions` compares them with the open alerts: started, still firing, resolved. An open
alert whose (rule, scope) has no condition at all is resolved (a branch that turned green has no open
streak; a rule removed from the file or disabled ends its alerts), unless its repository is in
``held_repos`` (the caller's list of repositories whose collection failed this time).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, ClassVar

import yaml

from devops_automation import yaml_config as yc
from devops_automation.messaging import escape_html
from devops_automation.store import alert_events
from devops_automation.store.alert_events import Transitions
from devops_automation.yaml_config import MISSING, Bad
from devops_automation.yaml_config import Problem as Problem  # re-exported: ar.Problem

#: This DAG's alerts in the shared table ``alert_events`` (its column ``source``).
SOURCE = "ci_pipeline_analytics"

KINDS = (
    "success_rate_below",
    "red_longer_than",
    "duration_regression",
    "new_flaky_job",
    "queue_p90_above",
    "rerun_minutes_above",
)
SEVERITIES = ("critical", "warning")
PROVIDERS = ("github", "gitlab")
CHANNEL_NAMES = ("slack", "telegram", "email")
STATES = ("firing", "ok", "hold")

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SLACK_NAME = re.compile(r"#[a-z0-9_][a-z0-9._-]{0,79}")
_SLACK_ID = re.compile(r"[CGD][A-Z0-9]{6,20}")
_TELEGRAM = re.compile(r"-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31}")
_EMAIL = re.compile(r"[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\"]+")


# ---- errors --------------------------------------------------------------------------------------


class AlertRulesError(yc.ConfigError):
    """The rule file is not valid; ``problems`` lists every problem found (each a
    :class:`~devops_automation.yaml_config.Problem` naming file, line, field)."""

    what = "the alert rules"


# ---- the parsed rules ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pattern:
    """A name pattern: a glob (``*``, ``?``, ``[...]``; ``*`` also matches ``/``) or ``re:<regex>``
    (the whole name must match)."""

    text: str
    ignore_case: bool = False
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, name: str) -> bool:
        if self.regex is not None:
            return self.regex.fullmatch(name) is not None
        if self.ignore_case:
            return fnmatchcase(name.lower(), self.text.lower())
        return fnmatchcase(name, self.text)


def _any(patterns: Sequence[Pattern], name: str) -> bool:
    return any(p.matches(name) for p in patterns)


@dataclass(frozen=True)
class ScopeKey:
    """What a figure is about: ``provider:repo:workflow:branch`` (flaky jobs: ``...:*:job``)."""

    provider: str
    repo: str
    workflow: str
    branch: str
    job: str | None = None

    @property
    def key(self) -> str:
        base = f"{self.provider}:{self.repo}:{self.workflow}:{self.branch}"
        return f"{base}:{self.job}" if self.job is not None else base

    def as_dict(self) -> dict[str, str | None]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Scope:
    """A rule's filters; an empty filter matches everything, all given filters must match."""

    providers: tuple[str, ...] = ()
    repos: tuple[Pattern, ...] = ()
    branches: tuple[Pattern, ...] = ()
    workflows: tuple[Pattern, ...] = ()

    def matches(self, key: ScopeKey) -> bool:
        return (
            (not self.providers or key.provider in self.providers)
            and (not self.repos or _any(self.repos, key.repo))
            and (not self.branches or _any(self.branches, key.branch))
            and (not self.workflows or _any(self.workflows, key.workflow))
        )


@dataclass(frozen=True)
class Channels:
    slack: str | None = None
    telegram: str | None = None
    email: tuple[str, ...] = ()

    def targets(self) -> list[tuple[str, str]]:
        """``(channel, target)`` per configured channel; e-mail is one message to all its addresses."""
        out: list[tuple[str, str]] = []
        if self.slack:
            out.append(("slack", self.slack))
        if self.telegram:
            out.append(("telegram", self.telegram))
        if self.email:
            out.append(("email", ", ".join(self.email)))
        return out


@dataclass(frozen=True)
class Rule:
    id: str
    kind: str
    severity: str
    channels: Channels
    scope: Scope = Scope()
    enabled: bool = True
    description: str = ""
    line: int = 0  # where the rule starts in its file
    # kind-specific (None where the kind has no such field; defaults filled in by the parser)
    threshold: float | None = None  # success_rate_below
    window_days: int | None = None
    min_runs: int | None = None
    hours: float | None = None  # red_longer_than
    branch_pattern: tuple[Pattern, ...] = ()  # red_longer_than
    percent: float | None = None  # duration_regression
    baseline_weeks: int | None = None  # duration_regression, new_flaky_job
    min_flaky_rate: float | None = None  # new_flaky_job
    minutes: float | None = None  # queue_p90_above, rerun_minutes_above


# ---- parsing -------------------------------------------------------------------------------------


# Converters raise yaml_config.Bad (its text completes "<field>: ..."); the node walking, the YAML
# errors and the generic converters are devops_automation.yaml_config's.
_REQUIRED = object()


def _fraction(*, zero_ok: bool) -> Any:
    def conv(value: Any) -> float:
        v = yc.as_number(value)
        if v is None or not 0 <= v <= 1:
            hint = ""
            if (v is not None and 1 < v <= 100) or (isinstance(value, str) and value.strip().endswith("%")):
                hint = " (a fraction: 0.8 for 80%)"
            raise Bad(f"must be a number between 0 and 1{hint}, got {yc.got(value)}")
        if v == 0 and not zero_ok:
            raise Bad("must be above 0 (nothing is below 0), got 0")
        return v

    return conv


def _rule_id(value: Any) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise Bad(
            f"must be 1 to 64 letters, digits, '.', '_' or '-' (starting with a letter or digit), got {yc.got(value)}"
        )
    return value


def _severity(value: Any) -> str:
    if value not in SEVERITIES:
        raise Bad(f"must be one of {', '.join(SEVERITIES)}, got {yc.got(value)}")
    return str(value)


def _kind(value: Any) -> str:
    if value not in KINDS:
        close = difflib.get_close_matches(str(value), KINDS, n=1) if isinstance(value, str) else []
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise Bad(f"unknown kind {yc.got(value)}{hint}; the kinds are {', '.join(KINDS)}")
    return str(value)


def _provider(value: Any) -> str:
    if value not in PROVIDERS:
        raise Bad(f"must be one of {', '.join(PROVIDERS)}, got {yc.got(value)}")
    return str(value)


def _unclosed_bracket(glob: str) -> int | None:
    """Index of a ``[`` that is never closed (fnmatch would silently take it literally), else None."""
    i, n = 0, len(glob)
    while i < n:
        if glob[i] == "[":
            j = i + 1
            if j < n and glob[j] == "!":
                j += 1
            if j < n and glob[j] == "]":
                j += 1
            end = glob.find("]", j)
            if end < 0:
                return i
            i = end
        i += 1
    return None


def _pattern(value: Any, *, ignore_case: bool = False) -> Pattern:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # a branch or workflow named 2024
    if not isinstance(value, str) or not value.strip():
        raise Bad(f"must be a non-empty pattern (a glob, or re:<regex>), got {yc.got(value)}")
    if value.startswith("re:"):
        try:
            return Pattern(value, ignore_case, re.compile(value[3:], re.IGNORECASE if ignore_case else 0))
        except re.error as exc:
            raise Bad(f"invalid regular expression {yc.got(value[3:])}: {exc}") from None
    at = _unclosed_bracket(value)
    if at is not None:
        raise Bad(f"invalid glob {yc.got(value)}: the '[' at position {at + 1} is never closed")
    return Pattern(value, ignore_case)


def _repo_pattern(value: Any) -> Pattern:
    return _pattern(value, ignore_case=True)


def _slack(value: Any) -> str:
    if value is None:
        raise Bad('is empty: a "#channel" must be quoted in YAML (# starts a comment): slack: "#ci-alerts"')
    if not isinstance(value, str) or not (_SLACK_NAME.fullmatch(value) or _SLACK_ID.fullmatch(value)):
        raise Bad(f'must be "#channel-name" (lower case) or a channel id such as C0123ABCD, got {yc.got(value)}')
    return value


def _telegram(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _TELEGRAM.fullmatch(value):
        raise Bad(f"must be a chat id (such as -1001234567890) or @channelusername, got {yc.got(value)}")
    return value


def _email(value: Any) -> str:
    if not isinstance(value, str) or not _EMAIL.fullmatch(value.strip()):
        raise Bad(f"must be an e-mail address, got {yc.got(value)}")
    return value.strip()


_DAYS = yc.whole(1, 90)
_WEEKS = yc.whole(1, 52)
_RUNS = yc.whole(1, 100_000)

#: Fields every rule may have (besides id and kind); scope and channels are read by their own code.
_COMMON: dict[str, Any] = {
    "severity": _severity,
    "enabled": yc.boolean,
    "description": yc.text,
    "scope": None,
    "channels": None,
}

#: Per kind: field -> (converter, default or _REQUIRED).
_KIND_FIELDS: dict[str, dict[str, tuple[Any, Any]]] = {
    "success_rate_below": {
        "threshold": (_fraction(zero_ok=False), _REQUIRED),
        "window_days": (_DAYS, 7),
        "min_runs": (_RUNS, 5),
    },
    "red_longer_than": {
        "hours": (yc.positive, _REQUIRED),
        "branch_pattern": (_pattern, _REQUIRED),
    },
    "duration_regression": {
        "percent": (yc.positive, _REQUIRED),
        "baseline_weeks": (_WEEKS, 4),
        "window_days": (_DAYS, 7),
        "min_runs": (_RUNS, 5),
    },
    "new_flaky_job": {
        "window_days": (_DAYS, 7),
        "baseline_weeks": (_WEEKS, 4),
        "min_flaky_rate": (_fraction(zero_ok=True), 0.0),
    },
    "queue_p90_above": {
        "minutes": (yc.positive, _REQUIRED),
        "window_days": (_DAYS, 1),
        "min_runs": (_RUNS, 5),
    },
    "rerun_minutes_above": {
        "minutes": (yc.positive, _REQUIRED),
        "window_days": (_DAYS, 1),
    },
}
_LIST_FIELDS = {"branch_pattern"}
_FIELD_HELP = {
    "threshold": " (the lowest acceptable success rate, a fraction such as 0.8)",
    "hours": " (how long a branch may stay red)",
    "branch_pattern": " (the branches that must not stay red, e.g. main or [main, release/*])",
    "percent": " (how much slower the p90 may get, in %)",
    "minutes": " (the limit in minutes)",
}
_SCOPE_FIELDS = ("provider", "repos", "branches", "workflows")


_EMPTY_LIST = "must not be an empty list (leave the field out to match everything)"


class _Parser:
    """Reads the rule file from the composed YAML nodes through a :class:`yaml_config.NodeParser`
    (which keeps line numbers and collects every problem)."""

    def __init__(self, p: yc.NodeParser) -> None:
        self.p = p

    def items(self, node: yaml.Node, where: str, conv: Any) -> Any:
        """A list of values, or one value standing for a list of one; MISSING when wrong."""
        return self.p.items(node, where, conv, empty=_EMPTY_LIST)

    # -- the file ------------------------------------------------------------------------------
    def parse(self, root: yaml.Node | None) -> list[Rule]:
        if root is None:
            self.p.problem(1, None, "the file is empty: expected a mapping with the key 'rules'")
            return []
        top = self.p.mapping(root, "", "with the key 'rules' and optionally 'defaults'")
        if top is None:
            return []
        for name, (key_node, _) in top.items():
            if name not in ("rules", "defaults"):
                self.p.unknown(key_node, "", ("rules", "defaults"), "; the top-level keys are rules and defaults")
        defaults = self.defaults(top["defaults"][1]) if "defaults" in top else {}
        if "rules" not in top:
            self.p.problem(root, "rules", "required (the list of rules; rules: [] for none)")
            return []
        node = top["rules"][1]
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            return []  # "rules:" with every rule commented out
        if not isinstance(node, yaml.SequenceNode):
            self.p.problem(node, "rules", f"must be a list of rules, got {yc.shape(node)}")
            return []
        rules: list[Rule] = []
        first: dict[str, tuple[int, int]] = {}
        for i, item in enumerate(node.value):
            rule, rid, id_node = self.rule(item, f"rules[{i}]", defaults)
            if rid is not None and id_node is not None:
                if rid in first:
                    line, j = first[rid]
                    self.p.problem(
                        id_node, f"rules[{i}].id", f"duplicate id {yc.got(rid)} (first at line {line}, rules[{j}])"
                    )
                    continue
                first[rid] = (id_node.start_mark.line + 1, i)
            if rule is not None:
                rules.append(rule)
        return rules

    def defaults(self, node: yaml.Node) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, (key_node, value_node) in (self.p.mapping(node, "defaults", "severity, channels") or {}).items():
            if name == "severity":
                value = self.p.convert(value_node, "defaults.severity", _severity)
            elif name == "channels":
                value = self.channels(value_node, "defaults.channels")
            else:
                self.p.unknown(key_node, "defaults", ("severity", "channels"), "; defaults takes severity, channels")
                continue
            if value is not MISSING:
                out[name] = value
        return out

    def rule(self, node: yaml.Node, where: str, defaults: Mapping[str, Any]) -> tuple[Rule | None, str | None, Any]:
        """The rule (None when anything is wrong), its id and the id's node (for duplicate checks)."""
        before = len(self.p.problems)
        pairs = self.p.mapping(node, where, "a rule with id, kind, severity, scope, channels")
        if pairs is None:
            return None, None, None
        values: dict[str, Any] = {}
        rid = id_node = None
        if "id" in pairs:
            id_node = pairs["id"][1]
            got = self.p.convert(id_node, f"{where}.id", _rule_id)
            rid = None if got is MISSING else got
        else:
            self.p.problem(node, f"{where}.id", "required (a unique name for the rule)")
        kind = None
        if "kind" in pairs:
            got = self.p.convert(pairs["kind"][1], f"{where}.kind", _kind)
            kind = None if got is MISSING else got
        else:
            self.p.problem(node, f"{where}.kind", f"required (one of {', '.join(KINDS)})")
        own = _KIND_FIELDS.get(kind or "", {})
        every_kind_field = {f for fields in _KIND_FIELDS.values() for f in fields}
        for name, (key_node, value_node) in pairs.items():
            path = f"{where}.{name}"
            if name in ("id", "kind"):
                continue
            if name == "scope":
                value = self.scope(value_node, path, kind)
            elif name == "channels":
                value = self.channels(value_node, path)
            elif name in _COMMON:
                value = self.p.convert(value_node, path, _COMMON[name])
            elif name in own:
                conv = own[name][0]
                value = (
                    self.items(value_node, path, conv)
                    if name in _LIST_FIELDS
                    else self.p.convert(value_node, path, conv)
                )
            elif kind is None and name in every_kind_field:
                continue  # cannot tell without a valid kind; the kind's own error is reported
            elif name in every_kind_field:
                owners = ", ".join(k for k in KINDS if name in _KIND_FIELDS[k])
                self.p.problem(key_node, path, f"unknown field for kind {kind} ({name} belongs to {owners})")
                continue
            else:
                known = ["id", "kind", *_COMMON, *own]
                suffix = f"; a {kind} rule takes {', '.join(known)}" if kind else ""
                self.p.unknown(key_node, where, known if kind else [*known, *every_kind_field], suffix)
                continue
            if value is not MISSING:
                values[name] = value
        for name, (_conv, default) in own.items():
            if name not in pairs:
                if default is _REQUIRED:
                    self.p.problem(node, f"{where}.{name}", f"required for kind {kind}{_FIELD_HELP.get(name, '')}")
                else:
                    values[name] = default
        for name, help_ in (
            ("severity", "critical or warning; or set defaults.severity"),
            ("channels", "at least one of slack, telegram, email; or set defaults.channels"),
        ):
            if name not in pairs:
                if name in defaults:
                    values[name] = defaults[name]
                else:
                    self.p.problem(node, f"{where}.{name}", f"required ({help_})")
        if len(self.p.problems) > before or rid is None or kind is None:
            return None, rid, id_node
        return Rule(id=rid, kind=kind, line=node.start_mark.line + 1, **values), rid, id_node

    def scope(self, node: yaml.Node, where: str, kind: str | None) -> Any:
        pairs = self.p.mapping(node, where, "provider, repos, branches, workflows")
        if pairs is None:
            return MISSING
        out: dict[str, Any] = {}
        ok = True
        for name, (key_node, value_node) in pairs.items():
            path = f"{where}.{name}"
            if name not in _SCOPE_FIELDS:
                self.p.unknown(key_node, where, _SCOPE_FIELDS, f"; scope takes {', '.join(_SCOPE_FIELDS)}")
                ok = False
                continue
            if name == "branches" and kind == "new_flaky_job":
                self.p.problem(key_node, path, "not used by new_flaky_job (flaky jobs are counted across branches)")
                ok = False
                continue
            conv = {"provider": _provider, "repos": _repo_pattern}.get(name, _pattern)
            value = self.items(value_node, path, conv)
            if value is MISSING:
                ok = False
            else:
                out["providers" if name == "provider" else name] = value
        return Scope(**out) if ok else MISSING

    def channels(self, node: yaml.Node, where: str) -> Any:
        pairs = self.p.mapping(node, where, "slack, telegram and/or email")
        if pairs is None:
            return MISSING
        out: dict[str, Any] = {}
        ok = True
        for name, (key_node, value_node) in pairs.items():
            path = f"{where}.{name}"
            if name == "slack":
                value = self.p.convert(value_node, path, _slack)
            elif name == "telegram":
                value = self.p.convert(value_node, path, _telegram)
            elif name == "email":
                value = self.items(value_node, path, _email)
            else:
                self.p.unknown(key_node, where, CHANNEL_NAMES, f"; channels are {', '.join(CHANNEL_NAMES)}")
                ok = False
                continue
            if value is MISSING:
                ok = False
            else:
                out[name] = value
        if ok and not out:
            self.p.problem(node, where, "name at least one of slack, telegram, email")
            return MISSING
        return Channels(**out) if ok else MISSING


def parse_rules(text: str, source: str = "alert_rules.yaml") -> list[Rule]:
    """The rules in a rule file's text (disabled ones included, ``enabled=False``).

    Raises :class:`AlertRulesError` listing every problem, each naming ``source``, the line and the field
    (a YAML syntax error or a character YAML does not allow too).
    """
    return yc.parse_document(text, source, AlertRulesError, lambda p, root: _Parser(p).parse(root))


def load_rules(path: str | Path) -> list[Rule]:
    """:func:`parse_rules` of a file; errors name the file by its name (``alert_rules.yaml``)."""
    text, source = yc.read_config_text(path, AlertRulesError)
    return parse_rules(text, source=source)


# ---- observations (what the analytics give) ------------------------------------------------------


@dataclass(frozen=True)
class SuccessRate:
    """Runs whose final attempt finished in the last ``window_days`` (definitions §3): ``runs`` counts
    final attempts ``success``/``failure``/``timed_out`` (cancelled and skipped left out), ``successes``
    those that are ``success``."""

    KIND: ClassVar[str] = "success_rate_below"
    scope: ScopeKey
    window_days: int
    runs: int
    successes: int


@dataclass(frozen=True)
class RedStreak:
    """The branch's red streak open at the interval's end (definitions §3), or None when it is green
    (give every branch that has runs: a branch without an observation counts as green too)."""

    KIND: ClassVar[str] = "red_longer_than"
    scope: ScopeKey
    open_since: dt.datetime | None
    failed_runs: int = 0  # runs in the open streak (shown in the message)


@dataclass(frozen=True)
class DurationP90:
    """p90 attempt duration over the last ``window_days`` and over the ``baseline_weeks`` weeks before
    that window, with the number of attempts behind each."""

    KIND: ClassVar[str] = "duration_regression"
    scope: ScopeKey
    window_days: int
    baseline_weeks: int
    p90_s: float | None
    runs: int
    baseline_p90_s: float | None
    baseline_runs: int


@dataclass(frozen=True)
class FlakyJob:
    """A job (``scope.job`` set, ``scope.branch`` = ``"*"``) over the last ``window_days``: SHAs on which
    it was flaky and SHAs on which it ran (definitions §3); ``known`` = it was flaky at least once in the
    ``baseline_weeks`` weeks before the window."""

    KIND: ClassVar[str] = "new_flaky_job"
    scope: ScopeKey
    window_days: int
    baseline_weeks: int
    flaky_shas: int
    shas: int
    known: bool


@dataclass(frozen=True)
class QueueP90:
    """p90 run queue time (definitions §3) over the last ``window_days`` and the runs behind it."""

    KIND: ClassVar[str] = "queue_p90_above"
    scope: ScopeKey
    window_days: int
    p90_s: float | None
    runs: int


@dataclass(frozen=True)
class RerunMinutes:
    """Minutes spent in non-final attempts (definitions §3) over the last ``window_days``."""

    KIND: ClassVar[str] = "rerun_minutes_above"
    scope: ScopeKey
    window_days: int
    minutes: float


Observation = SuccessRate | RedStreak | DurationP90 | FlakyJob | QueueP90 | RerunMinutes
OBSERVATION_TYPES: dict[str, type] = {
    t.KIND: t for t in (SuccessRate, RedStreak, DurationP90, FlakyJob, QueueP90, RerunMinutes)
}


@dataclass(frozen=True, order=True)
class Need:
    """Observations :func:`evaluate` needs: this kind, over this window (and baseline)."""

    kind: str
    window_days: int | None = None
    baseline_weeks: int | None = None

    @property
    def observation(self) -> type:
        return OBSERVATION_TYPES[self.kind]


def needs(rules: Iterable[Rule]) -> list[Need]:
    """The (kind, window, baseline) combinations the enabled rules read, sorted, each once."""
    out = set()
    for r in rules:
        if r.enabled:
            window = None if r.kind == "red_longer_than" else r.window_days
            base = r.baseline_weeks if r.kind in ("duration_regression", "new_flaky_job") else None
            out.add(Need(r.kind, window, base))
    return sorted(out, key=lambda n: (KINDS.index(n.kind), n.window_days or 0, n.baseline_weeks or 0))


# ---- evaluation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """A rule evaluated on one scope at ``at`` (the interval's end).

    ``state``: ``firing``; ``ok``; ``hold`` = not enough evidence either way (an open alert stays as it
    is, none starts). ``value`` and ``threshold`` are in the kind's unit (:data:`UNITS`); ``figures``
    are the inputs behind the value (JSON-ready), kept in the alert's history.
    """

    rule_id: str
    kind: str
    severity: str
    scope: ScopeKey
    state: str
    value: float | None
    threshold: float
    at: dt.datetime
    figures: Mapping[str, Any] = field(default_factory=dict)

    @property
    def scope_key(self) -> str:
        return self.scope.key

    @property
    def firing(self) -> bool:
        return self.state == "firing"

    @property
    def details(self) -> dict[str, Any]:
        """What an alert episode keeps of this condition: kind, unit, the scope's parts, the figures."""
        return _details(self)


#: The unit of a condition's value and threshold, per kind.
UNITS = {
    "success_rate_below": "fraction",
    "red_longer_than": "hours",
    "duration_regression": "percent",
    "new_flaky_job": "fraction",
    "queue_p90_above": "minutes",
    "rerun_minutes_above": "minutes",
}


def _aware(value: dt.datetime, name: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(dt.UTC)


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _eval_success_rate(r: Rule, o: SuccessRate, at: dt.datetime) -> tuple[str, float | None, float, dict[str, Any]]:
    rate = o.successes / o.runs if o.runs else None
    figures = {"runs": o.runs, "successes": o.successes, "window_days": o.window_days}
    assert r.threshold is not None and r.min_runs is not None
    if rate is None or o.runs < r.min_runs:
        return "hold", rate, r.threshold, {**figures, "min_runs": r.min_runs}
    return ("firing" if rate < r.threshold else "ok"), rate, r.threshold, figures


def _eval_red(r: Rule, o: RedStreak, at: dt.datetime) -> tuple[str, float | None, float, dict[str, Any]]:
    assert r.hours is not None
    if o.open_since is None:
        return "ok", 0.0, r.hours, {"open_since": None}
    since = _aware(o.open_since, "RedStreak.open_since")
    hours = max((at - since).total_seconds(), 0.0) / 3600
    figures = {"open_since": _iso(since), "failed_runs": o.failed_runs}
    return ("firing" if hours > r.hours else "ok"), hours, r.hours, figures


def _eval_duration(r: Rule, o: DurationP90, at: dt.datetime) -> tuple[str, float | None, float, dict[str, Any]]:
    assert r.percent is not None and r.min_runs is not None
    figures = {
        "p90_s": o.p90_s,
        "runs": o.runs,
        "baseline_p90_s": o.baseline_p90_s,
        "baseline_runs": o.baseline_runs,
        "window_days": o.window_days,
        "baseline_weeks": o.baseline_weeks,
    }
    if o.p90_s is None or not o.baseline_p90_s or o.runs < r.min_runs or o.baseline_runs < r.min_runs:
        return "hold", None, r.percent, {**figures, "min_runs": r.min_runs}
    change = (o.p90_s / o.baseline_p90_s - 1) * 100
    return ("firing" if change > r.percent else "ok"), change, r.percent, figures


def _eval_flaky(r: Rule, o: FlakyJob, at: dt.datetime) -> tuple[str, float | None, float, dict[str, Any]]:
    assert r.min_flaky_rate is not None
    rate = o.flaky_shas / o.shas if o.shas else 0.0
    figures = {
        "flaky_shas": o.flaky_shas,
        "shas": o.shas,
        "known": o.known,
        "window_days": o.window_days,
        "baseline_weeks": o.baseline_weeks,
    }
    if o.flaky_shas <= 0 or rate < r.min_flaky_rate:
        return "ok", rate, r.min_flaky_rate, figures
    return ("hold" if o.known else "firing"), rate, r.min_flaky_rate, figures


def _eval_queue(r: Rule, o: QueueP90, at: dt.datetime) -> tuple[str, float | None, float, dict[str, Any]]:
    assert r.minutes is not None and r.min_runs is not None
    value = None if o.p90_s is None else o.p90_s / 60
    figures = {"p90_s": o.p90_s, "runs": o.runs, "window_days": o.window_days}
    if value is None or o.runs < r.min_runs:
        return "hold", value, r.minutes, {**figures, "min_runs": r.min_runs}
    return ("firing" if value > r.minutes else "ok"), value, r.minutes, figures


def _eval_rerun(r: Rule, o: RerunMinutes, at: dt.datetime) -> tuple[str, float | None, float, dict[str, Any]]:
    assert r.minutes is not None
    figures = {"window_days": o.window_days}
    return ("firing" if o.minutes > r.minutes else "ok"), float(o.minutes), r.minutes, figures


_EVALUATORS: dict[str, Any] = {
    "success_rate_below": _eval_success_rate,
    "red_longer_than": _eval_red,
    "duration_regression": _eval_duration,
    "new_flaky_job": _eval_flaky,
    "queue_p90_above": _eval_queue,
    "rerun_minutes_above": _eval_rerun,
}


def _fits(rule: Rule, obs: Any) -> bool:
    """Whether an observation was computed over the rule's window (and baseline)."""
    if getattr(obs, "window_days", rule.window_days) != rule.window_days:
        return False
    return getattr(obs, "baseline_weeks", rule.baseline_weeks) == rule.baseline_weeks


def evaluate(
    rules: Iterable[Rule], observations: Iterable[Observation], *, interval_end: dt.datetime
) -> list[Condition]:
    """One :class:`Condition` per enabled rule and observation of its kind, window and scope.

    Observations over another window than the rule's are not used (compute what :func:`needs` lists).
    A ``red_longer_than`` rule also needs the branch to match its ``branch_pattern``. The same
    observation twice (kind, scope, window) is a ``ValueError``: the caller double-counted.
    """
    at = _aware(interval_end, "interval_end")
    by_kind: dict[str, list[Any]] = {k: [] for k in KINDS}
    seen: set[tuple[Any, ...]] = set()
    for obs in observations:
        kind = getattr(type(obs), "KIND", None)
        if kind not in by_kind:
            raise TypeError(f"not an observation: {obs!r}")
        if kind == "new_flaky_job" and obs.scope.job is None:
            raise ValueError(f"a FlakyJob observation needs scope.job: {obs!r}")
        ident = (kind, obs.scope.key, getattr(obs, "window_days", None), getattr(obs, "baseline_weeks", None))
        if ident in seen:
            raise ValueError(f"the same observation twice: {kind} {obs.scope.key} (window {ident[2]}, {ident[3]})")
        seen.add(ident)
        by_kind[kind].append(obs)
    out: list[Condition] = []
    for rule in rules:
        if not rule.enabled:
            continue
        for obs in by_kind[rule.kind]:
            if not _fits(rule, obs) or not rule.scope.matches(obs.scope):
                continue
            if rule.kind == "red_longer_than" and not _any(rule.branch_pattern, obs.scope.branch):
                continue
            state, value, threshold, figures = _EVALUATORS[rule.kind](rule, obs, at)
            out.append(Condition(rule.id, rule.kind, rule.severity, obs.scope, state, value, threshold, at, figures))
    return out


# ---- the history's view: alert episodes ----------------------------------------------------------


@dataclass(frozen=True)
class AlertEvent(alert_events.AlertEvent):
    """One alert episode of this DAG: :class:`devops_automation.store.alert_events.AlertEvent` with
    ``source`` = :data:`SOURCE` by default, and the scope read back from ``details``. ``details`` holds
    the rule kind, the scope's parts, the unit and the figures behind the latest value (on resolve also
    ``resolved_value`` / ``resolved_figures``)."""

    source: str = field(default=SOURCE, kw_only=True)

    @classmethod
    def of(cls, event: alert_events.AlertEvent) -> AlertEvent:
        """The same episode as this class (the shared store functions return the shared class)."""
        if isinstance(event, cls):
            return event
        return cls(**{f.name: getattr(event, f.name) for f in dataclasses.fields(event)})

    @property
    def scope(self) -> ScopeKey | None:
        parts = self.details.get("scope")
        return ScopeKey(**parts) if isinstance(parts, Mapping) else None

    @property
    def repo(self) -> str | None:
        scope = self.scope
        if scope is not None:
            return scope.repo
        parts = self.scope_key.split(":", 2)  # provider:repo:... (neither contains ":")
        return parts[1] if len(parts) > 2 else None


def _details(c: Condition) -> dict[str, Any]:
    return {"kind": c.kind, "unit": UNITS[c.kind], "scope": c.scope.as_dict(), "figures": dict(c.figures)}


def transitions(
    conditions: Iterable[Condition],
    open_alerts: Iterable[alert_events.AlertEvent],
    *,
    at: dt.datetime,
    held_repos: Collection[str] = (),
) -> Transitions:
    """Compare the conditions evaluated at ``at`` with the alerts open before it
    (:func:`devops_automation.store.alert_events.transitions` for :data:`SOURCE`):

    * firing, no open alert -> started (``started_at`` = ``at``);
    * firing, open alert -> still firing (value, figures, ``last_evaluated_at`` updated);
    * ok, open alert -> resolved (``resolved_at`` = ``at``; the ok value kept as ``resolved_value``);
    * hold -> nothing: an open alert stays exactly as it is, none starts;
    * an open alert without any condition -> resolved, unless its repository is in ``held_repos``
      (say, the repositories whose collection failed this time: no news is not good news there).

    Passing only the firing conditions works too (everything else open is then resolved). An open alert
    of another DAG (``source``) is a ``ValueError``. The episodes come back as :class:`AlertEvent`.
    """
    at = _aware(at, "at")
    held = frozenset(held_repos)
    moves = alert_events.transitions(
        conditions,
        [AlertEvent.of(ev) for ev in open_alerts],
        at=at,
        source=SOURCE,
        held=lambda ev: AlertEvent.of(ev).repo in held,
    )
    return Transitions(*([AlertEvent.of(ev) for ev in events] for events in moves))


# ---- messages ------------------------------------------------------------------------------------

SEVERITY_EMOJI = {"critical": "\U0001f534", "warning": "\U0001f7e0"}  # red circle, orange circle
RESOLVED_EMOJI = "\u2705"  # check mark
MARKUPS = ("html", "mrkdwn", "text")
_NAME_LIMIT = 120
_CTRL = re.compile("[\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_MENTION = re.compile(r"(?<![\w.+-])([@＠])(?=\w)")


def _clean(value: Any) -> str:
    """Names come from repositories and branches anyone may create: one line, no mentions, cut."""
    text = " ".join(_CTRL.sub(" ", str(value)).split())
    text = _MENTION.sub("\\1\u2060", text)
    return text if len(text) <= _NAME_LIMIT else text[: _NAME_LIMIT - 1] + "…"


class _Markup:
    def __init__(self, markup: str) -> None:
        if markup not in MARKUPS:
            raise ValueError(f"markup must be one of {', '.join(MARKUPS)}, got {markup!r}")
        self.markup = markup

    def esc(self, text: str) -> str:
        if self.markup == "html":
            return escape_html(text)
        if self.markup == "mrkdwn":
            return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return text

    def name(self, value: Any) -> str:
        """An untrusted name, cleaned and escaped (in Slack its markup characters are neutral look-alikes)."""
        text = _clean(value)
        if self.markup == "mrkdwn":
            text = text.replace("*", "\u2217").replace("_", "\uff3f").replace("`", "\u02cb").replace("~", "\u223c")
        return self.esc(text)

    def bold(self, escaped: str) -> str:
        return {"html": f"<b>{escaped}</b>", "mrkdwn": f"*{escaped}*"}.get(self.markup, escaped)

    def code(self, escaped: str) -> str:
        return {"html": f"<code>{escaped}</code>", "mrkdwn": f"`{escaped}`"}.get(self.markup, escaped)


def _num(value: float, digits: int = 1) -> str:
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _pct(fraction: float | None) -> str:
    return "?" if fraction is None else f"{_num(fraction * 100)}%"


def _hours(hours: float | None) -> str:
    return "?" if hours is None else f"{_num(hours)} h"


def _minutes(minutes: float | None) -> str:
    return "?" if minutes is None else f"{_num(minutes)} min"


def _days(days: Any) -> str:
    return "the last day" if days == 1 else f"the last {days} days"


def _seconds(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m} min {s} s" if s else f"{m} min"
    h, m = divmod(m, 60)
    return f"{h} h {m} min" if m else f"{h} h"


def span(delta: dt.timedelta) -> str:
    """A duration for people: ``45 min``, ``3 h 20 min``, ``2 d 3 h``."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _scope_text(m: _Markup, ev: AlertEvent) -> str:
    scope = ev.scope
    if scope is None:
        return m.name(ev.scope_key)
    where = f"{m.bold(m.name(scope.repo))} › {m.name(scope.workflow)}"
    if scope.job is not None:
        where += f" › job {m.code(m.name(scope.job))}"
    else:
        where += f" › {m.name(scope.branch)}"
    return f"{m.esc(scope.provider)} {where}"


def _start_what(ev: AlertEvent) -> str:
    f = ev.details.get("figures") or {}
    v, t = ev.value, ev.threshold
    kind = ev.kind
    if kind == "success_rate_below":
        return (
            f"success rate {_pct(v)} below {_pct(t)} "
            f"({f.get('successes', '?')} of {f.get('runs', '?')} runs in {_days(f.get('window_days'))})"
        )
    if kind == "red_longer_than":
        since = f.get("open_since")
        tail = f" (red since {since[:16].replace('T', ' ')} UTC)" if isinstance(since, str) else ""
        return f"red for {_hours(v)}, longer than {_hours(t)}{tail}"
    if kind == "duration_regression":
        weeks = f.get("baseline_weeks", "?")
        return (
            f"p90 duration {_seconds(f.get('p90_s'))} is {_num(v or 0)}% above the {weeks}-week baseline "
            f"{_seconds(f.get('baseline_p90_s'))} (limit +{_num(t or 0)}%)"
        )
    if kind == "new_flaky_job":
        limit = f", limit {_pct(t)}" if t else ""
        return (
            f"new flaky job: flaky on {f.get('flaky_shas', '?')} of {f.get('shas', '?')} commits ({_pct(v)}{limit}) "
            f"in {_days(f.get('window_days'))}"
        )
    if kind == "queue_p90_above":
        return (
            f"p90 queue time {_minutes(v)} above {_minutes(t)} "
            f"({f.get('runs', '?')} runs in {_days(f.get('window_days'))})"
        )
    if kind == "rerun_minutes_above":
        return f"{_minutes(v)} spent in re-runs in {_days(f.get('window_days'))}, above {_minutes(t)}"
    return f"value {v} vs threshold {t}"


def _resolve_what(ev: AlertEvent) -> str:
    rv = ev.details.get("resolved_value")
    t = ev.threshold
    kind = ev.kind
    if kind == "success_rate_below":
        return (
            f"success rate back to {_pct(rv)} (threshold {_pct(t)})"
            if rv is not None
            else f"success rate no longer below {_pct(t)}"
        )
    if kind == "red_longer_than":
        return "green again" if rv == 0 else f"no longer red for more than {_hours(t)}"
    if kind == "duration_regression":
        if rv is None:
            return f"p90 duration no longer more than {_num(t or 0)}% above its baseline"
        return f"p90 duration now {'+' if rv >= 0 else ''}{_num(rv)}% against its baseline (limit +{_num(t or 0)}%)"
    if kind == "new_flaky_job":
        return "no longer flaky" if not rv else f"flaky rate now {_pct(rv)} (limit {_pct(t)})"
    if kind == "queue_p90_above":
        return (
            f"p90 queue time back to {_minutes(rv)} (threshold {_minutes(t)})"
            if rv is not None
            else f"p90 queue time no longer above {_minutes(t)}"
        )
    if kind == "rerun_minutes_above":
        return (
            f"re-runs back to {_minutes(rv)} (threshold {_minutes(t)})"
            if rv is not None
            else f"re-runs no longer above {_minutes(t)}"
        )
    return "condition ended"


def alert_text(event: AlertEvent, kind: str = "start", markup: str = "html") -> str:
    """One line announcing that an alert started (``kind="start"``) or resolved (``"resolve"``).

    ``markup``: ``html`` (Telegram; names escaped with :func:`~devops_automation.messaging.escape_html`),
    ``mrkdwn`` (Slack) or ``text`` (e-mail subject, logs). Severity emoji and label, the rule, the scope,
    the value against the threshold, and for a resolve how long the alert lasted.
    """
    if kind not in ("start", "resolve"):
        raise ValueError(f"kind must be 'start' or 'resolve', got {kind!r}")
    m = _Markup(markup)
    head = f"{m.bold(m.esc(event.severity.upper()))} {m.name(event.rule_id)}"
    where = _scope_text(m, event)
    if kind == "start":
        emoji = SEVERITY_EMOJI.get(event.severity, "\u26a0\ufe0f")
        return f"{emoji} {head} · {where}: {m.esc(_start_what(event))}"
    lasted = ""
    if event.resolved_at is not None:
        lasted = f"; lasted {span(event.resolved_at - event.started_at)}"
    return f"{RESOLVED_EMOJI} {m.bold('RESOLVED')} {head} · {where}: {m.esc(_resolve_what(event) + lasted)}"
