"""The alert history (table ``alert_events``) shared by every DAG that raises alerts.

No Airflow here (SQLAlchemy Core through :class:`~devops_automation.store.ResultsStore`). A DAG brings
its own rules and their evaluation, messages and channels; this module keeps the episodes. One
evaluation, for the data interval ending at ``end``::

    before = open_alerts(store, as_of=end, source="my_dag")        # the alerts open before this interval
    started, still, resolved = transitions(conditions, before, at=end, source="my_dag", held=held)
    done = record(store, started, resolved, still, evaluated_at=end)
    for event in done.started:                                    # and done.resolved
        send_once(channel, target, dedup_key(event, "start", channel, prefix="my-alert"), ...)

Sources
-------
Every row belongs to one ``source`` (the DAG that raised it, at most 64 characters). Each DAG reads
and writes only its own: :func:`open_alerts` returns one source's alerts, :func:`transitions` refuses
open alerts of another source and stamps the ones it starts with its own, :func:`record` keys every
row by ``(source, rule_id, scope_key, started_at)``. So one DAG's run never resolves another DAG's
alert, even for the same rule id and scope key. :func:`history` reads one source or all of them.

Episodes
--------
One row per episode: ``started_at`` = the end of the interval in which the condition was first seen
firing; ``state`` ``firing`` until an interval finds it resolved (``resolved_at`` = that interval's
end); ``last_evaluated_at``, ``severity``, ``value``, ``threshold`` and ``details`` follow the latest
evaluation.

Conditions
----------
:func:`transitions` takes any objects with ``rule_id``, ``scope_key``, ``state`` (``firing``, ``ok``
or ``hold``), ``severity``, ``value``, ``threshold`` and a ``details`` mapping (JSON-ready; stored as
the episode's ``details``; its ``figures`` entry, when a mapping, is kept as ``resolved_figures`` on
resolve). ``hold`` = not enough evidence either way: an open alert stays exactly as it is, none starts.

Re-runs and backfills
---------------------
* :func:`open_alerts` with ``as_of`` gives the alerts as they were *before* that interval (started
  before it, not resolved before it), so a re-run of an interval sees what its first run saw and
  computes the same transitions; :func:`record` then changes no row (``changed == 0``) and
  :func:`dedup_key` gives the same keys, which ``notifiers.send_once`` skips because they were sent.
* :func:`record` never rewrites what a later interval wrote: a row whose ``last_evaluated_at`` is after
  this evaluation is left as it is.
* Backfilling intervals *before* the first evaluated one can leave two episodes of the same alert where
  the backfilled one ends open (the later run never saw it): :func:`open_alerts` returns only the latest
  open episode per (rule, scope), and the older row keeps ``last_evaluated_at`` = the last interval
  that saw it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import sqlalchemy as sa

from devops_automation.store import ResultsStore, schema

#: The length of ``alert_events.source``.
SOURCE_MAX = 64
#: Messages for episodes older than this when the evaluation runs are not sent: a catch-up run of an old
#: interval pages nobody (both alerting DAGs).
MESSAGE_MAX_AGE = dt.timedelta(hours=36)
#: What a condition's ``state`` may be.
CONDITION_STATES = ("firing", "ok", "hold")
_COLUMNS = ("severity", "state", "resolved_at", "last_evaluated_at", "value", "threshold", "details")
_KEY = ("source", "rule_id", "scope_key", "started_at")


def _utc(value: dt.datetime, name: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(dt.UTC)


def _source(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > SOURCE_MAX:
        raise ValueError(
            f"an alert source must be a non-empty string of at most {SOURCE_MAX} characters, got {value!r}"
        )
    return value


@dataclass(frozen=True)
class AlertEvent:
    """One alert episode (a row of ``alert_events``): from the interval in which its condition started
    to the one in which it resolved. ``details`` is the condition's (on resolve it also holds
    ``resolved_value`` / ``resolved_figures``). ``source``: the DAG the alert belongs to (keyword only)."""

    rule_id: str
    scope_key: str
    severity: str
    state: str  # firing | resolved
    started_at: dt.datetime
    last_evaluated_at: dt.datetime
    resolved_at: dt.datetime | None = None
    value: float | None = None
    threshold: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None
    source: str = field(kw_only=True)

    @property
    def kind(self) -> str | None:
        """``details["kind"]`` (the rule kind, by convention), if any."""
        kind = self.details.get("kind")
        return kind if isinstance(kind, str) else None


class Condition(Protocol):
    """What :func:`transitions` reads of a condition (a rule evaluated on one scope)."""

    @property
    def rule_id(self) -> str: ...

    @property
    def scope_key(self) -> str: ...

    @property
    def state(self) -> str: ...  # firing | ok | hold

    @property
    def severity(self) -> str: ...

    @property
    def value(self) -> float | None: ...

    @property
    def threshold(self) -> float | None: ...

    @property
    def details(self) -> Mapping[str, Any]: ...


class Transitions(NamedTuple):
    """What changed at one evaluation; each list holds the episodes as they should now be stored."""

    started: list[AlertEvent]
    still_firing: list[AlertEvent]
    resolved: list[AlertEvent]


def _never(event: AlertEvent) -> bool:
    return False


def transitions(
    conditions: Iterable[Condition],
    open_alerts: Iterable[AlertEvent],
    *,
    at: dt.datetime,
    source: str,
    held: Callable[[AlertEvent], bool] = _never,
) -> Transitions:
    """Compare the conditions evaluated at ``at`` with the alerts of ``source`` open before it.

    * firing, no open alert -> started (``started_at`` = ``at``, ``source`` = ``source``);
    * firing, open alert -> still firing (severity, value, threshold, details, ``last_evaluated_at``
      updated);
    * ok, open alert -> resolved (``resolved_at`` = ``at``; the ok value kept as ``resolved_value``,
      ``details["figures"]`` as ``resolved_figures``);
    * hold -> nothing: an open alert stays exactly as it is, none starts;
    * an open alert without any condition -> resolved, unless ``held(event)`` is true (say, its data
      could not be collected this time: no news is not good news there).

    Of several open episodes of one (rule, scope) only the latest-started counts. An open alert of
    another source is a ``ValueError`` (this evaluation must not resolve it), as are two conditions
    for one (rule, scope) and a state other than firing, ok, hold.
    """
    at = _utc(at, "at")
    source = _source(source)
    open_by: dict[tuple[str, str], AlertEvent] = {}
    for ev in open_alerts:
        if ev.source != source:
            raise ValueError(
                f"open alert {ev.rule_id!r} on {ev.scope_key!r} belongs to source {ev.source!r}, not {source!r}"
            )
        k = (ev.rule_id, ev.scope_key)
        if k not in open_by or ev.started_at > open_by[k].started_at:
            open_by[k] = ev
    started: list[AlertEvent] = []
    still: list[AlertEvent] = []
    resolved: list[AlertEvent] = []
    seen: set[tuple[str, str]] = set()
    for c in conditions:
        k = (c.rule_id, c.scope_key)
        if k in seen:
            raise ValueError(f"two conditions for rule {c.rule_id!r} on {c.scope_key!r}")
        seen.add(k)
        if c.state not in CONDITION_STATES:
            raise ValueError(
                f"condition {c.rule_id!r} on {c.scope_key!r}: state must be one of "
                f"{', '.join(CONDITION_STATES)}, got {c.state!r}"
            )
        ev = open_by.get(k)
        if c.state == "firing":
            details = dict(c.details)
            if ev is None:
                started.append(
                    AlertEvent(
                        c.rule_id,
                        c.scope_key,
                        c.severity,
                        "firing",
                        at,
                        at,
                        None,
                        c.value,
                        c.threshold,
                        details,
                        source=source,
                    )
                )
            else:
                still.append(
                    dataclasses.replace(
                        ev,
                        severity=c.severity,
                        state="firing",
                        resolved_at=None,
                        last_evaluated_at=at,
                        value=c.value,
                        threshold=c.threshold,
                        details=details,
                    )
                )
        elif c.state == "ok" and ev is not None:
            resolved.append(_resolve(ev, at, c))
    for k, ev in open_by.items():
        if k not in seen and not held(ev):
            resolved.append(_resolve(ev, at, None))
    return Transitions(started, still, resolved)


def _resolve(ev: AlertEvent, at: dt.datetime, c: Condition | None) -> AlertEvent:
    details = {k: v for k, v in ev.details.items() if k not in ("resolved_value", "resolved_figures")}
    figures = None if c is None else c.details.get("figures")
    details["resolved_value"] = None if c is None else c.value
    details["resolved_figures"] = dict(figures) if isinstance(figures, Mapping) else None
    return dataclasses.replace(ev, state="resolved", resolved_at=at, last_evaluated_at=at, details=details)


# ---- the store -----------------------------------------------------------------------------------


def _event(row: Mapping[str, Any]) -> AlertEvent:
    return AlertEvent(
        rule_id=row["rule_id"],
        scope_key=row["scope_key"],
        severity=row["severity"],
        state=row["state"],
        started_at=row["started_at"],
        last_evaluated_at=row["last_evaluated_at"],
        resolved_at=row["resolved_at"],
        value=row["value"],
        threshold=row["threshold"],
        details=dict(row["details"] or {}),
        id=row["id"],
        source=row["source"],
    )


def _row(ev: AlertEvent) -> dict[str, Any]:
    return {
        "source": _source(ev.source),
        "rule_id": ev.rule_id,
        "scope_key": ev.scope_key,
        "severity": ev.severity,
        "state": ev.state,
        "started_at": ev.started_at,
        "resolved_at": ev.resolved_at,
        "last_evaluated_at": ev.last_evaluated_at,
        "value": ev.value,
        "threshold": ev.threshold,
        "details": dict(ev.details),
    }


def open_alerts(store: ResultsStore, *, as_of: dt.datetime | None, source: str) -> list[AlertEvent]:
    """The open alerts of ``source``, at most one per (rule, scope): the latest-started.

    ``as_of`` = the end of the interval about to be evaluated: the alerts open *before* it (started
    before ``as_of`` and not resolved before it), which is what makes a re-run repeat its first run.
    ``None``: the alerts firing now (for a dashboard).
    """
    t = schema.alert_events
    q = sa.select(t).where(t.c.source == _source(source))
    if as_of is None:
        q = q.where(t.c.state == "firing")
    else:
        as_of = _utc(as_of, "as_of")
        q = q.where(t.c.started_at < as_of, sa.or_(t.c.resolved_at.is_(None), t.c.resolved_at >= as_of))
    latest: dict[tuple[str, str], AlertEvent] = {}
    with store.engine.connect() as conn:
        for r in conn.execute(q.order_by(t.c.rule_id, t.c.scope_key, t.c.started_at)):
            ev = _event(r._mapping)
            latest[(ev.rule_id, ev.scope_key)] = ev  # ordered by started_at: the last one wins
    return list(latest.values())


def history(
    store: ResultsStore,
    *,
    since: dt.datetime,
    until: dt.datetime,
    source: str | None = None,
    rule_id: str | None = None,
) -> list[AlertEvent]:
    """Alerts active at some time in ``[since, until)`` (started before ``until``, not resolved before
    ``since``), oldest first: "alerts fired in the period" for a report. ``source`` None: every DAG's."""
    t = schema.alert_events
    q = sa.select(t).where(
        t.c.started_at < _utc(until, "until"),
        sa.or_(t.c.resolved_at.is_(None), t.c.resolved_at >= _utc(since, "since")),
    )
    if source is not None:
        q = q.where(t.c.source == _source(source))
    if rule_id is not None:
        q = q.where(t.c.rule_id == rule_id)
    order = (t.c.started_at, t.c.source, t.c.rule_id, t.c.scope_key)
    with store.engine.connect() as conn:
        return [_event(r._mapping) for r in conn.execute(q.order_by(*order))]


class Recorded(NamedTuple):
    """The episodes as stored after :func:`record`, and how many rows it inserted or changed.

    ``new_started`` / ``new_resolved``: how many starts this call inserted and how many firing episodes it
    moved to resolved. A re-run of an interval passes the same ``started``/``resolved`` again (they were
    computed from the alerts open before the interval) and records neither: both are 0 then."""

    started: list[AlertEvent]
    still_firing: list[AlertEvent]
    resolved: list[AlertEvent]
    changed: int
    new_started: int = 0
    new_resolved: int = 0


def record(
    store: ResultsStore,
    started: Sequence[AlertEvent],
    resolved: Sequence[AlertEvent],
    still_firing: Sequence[AlertEvent],
    *,
    evaluated_at: dt.datetime,
) -> Recorded:
    """Write one evaluation's transitions (from :func:`transitions`) in one transaction.

    Each episode is written under its own ``source``. Idempotent on ``(source, rule_id, scope_key,
    started_at)``: recording the same evaluation again changes nothing. A row already evaluated after
    ``evaluated_at`` (a later interval) is never touched: a re-run of an old interval does not rewrite
    newer history. Returns the rows as stored.
    """
    at = _utc(evaluated_at, "evaluated_at")
    t = schema.alert_events
    changed = new_started = new_resolved = 0
    out: dict[str, list[AlertEvent]] = {"started": [], "still": [], "resolved": []}
    with store.begin() as conn:
        for name, events in (("started", started), ("still", still_firing), ("resolved", resolved)):
            for ev in events:
                row = _row(ev)
                key = [t.c[k] == row[k] for k in _KEY]
                existing = conn.execute(sa.select(t).where(*key)).first()
                if existing is None:
                    if name != "started":
                        raise ValueError(
                            f"no alert {ev.rule_id!r} on {ev.scope_key!r} started at {ev.started_at} to update "
                            f"(source {ev.source!r})"
                        )
                    got = store.insert_missing(t, [row], keys=list(_KEY), conn=conn)
                    changed += len(got)
                    new_started += len(got)
                else:
                    current = dict(existing._mapping)
                    newer = current["last_evaluated_at"] > at
                    update = {c: row[c] for c in _COLUMNS if row[c] != current[c]}
                    if update and not newer:
                        conn.execute(sa.update(t).where(t.c.id == current["id"]).values(**update))
                        changed += 1
                        new_resolved += name == "resolved" and current["state"] != "resolved"
                stored = conn.execute(sa.select(t).where(*key)).first()
                assert stored is not None
                out[name].append(_event(stored._mapping))
    return Recorded(out["started"], out["still"], out["resolved"], changed, new_started, new_resolved)


def dedup_key(event: AlertEvent, kind: str, channel: str, *, prefix: str) -> str:
    """The ``notifications`` key of one message: this episode's start or resolve, on this channel.

    ``prefix`` names the DAG's alerts (``ci-alert`` for ``ci_pipeline_analytics``): keep it stable, the
    keys of messages already sent depend on it. The same for every run that computes the same episode,
    so each is sent at most once per channel (the target is not part of it: changing a rule's channel
    does not re-send old alerts). Its length: prefix + rule id + at most 51 characters (the scope key is
    hashed).
    """
    if kind not in ("start", "resolve"):
        raise ValueError(f"kind must be 'start' or 'resolve', got {kind!r}")
    if not prefix:
        raise ValueError("prefix must not be empty")
    scope = hashlib.sha256(event.scope_key.encode()).hexdigest()[:16]
    started = event.started_at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{prefix}:{event.rule_id}:{scope}:{started}:{kind}:{channel}"
