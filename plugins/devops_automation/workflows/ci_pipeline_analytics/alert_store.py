"""The alert history of ``ci_pipeline_analytics`` in the results store, and the messages it owes.

No Airflow here (SQLAlchemy Core through :class:`~devops_automation.store.ResultsStore`). One run of
the DAG, for the data interval ending at ``end``::

    rules = alert_rules.load_rules("include/config/alert_rules.yaml")
    before = open_alerts(store, as_of=end)                       # the alerts open before this interval
    conditions = alert_rules.evaluate(rules, observations, interval_end=end)
    started, still, resolved = alert_rules.transitions(conditions, before, at=end, held_repos=failed)
    done = record(store, started, resolved, still, evaluated_at=end)
    for msg in plan_notifications(rules, done.started, done.resolved, page=not backfill, now=now):
        send_once(msg.channel, msg.target, msg.dedup_key, lambda: send(msg))   # notifiers.send_once

Table ``alert_events``: one row per episode, natural key ``(rule_id, scope_key, started_at)``:
``started_at`` = the end of the interval in which the condition was first seen firing, ``state``
``firing`` until an interval finds it resolved (``resolved_at`` = that interval's end);
``last_evaluated_at``, ``value``, ``threshold`` and ``details`` follow the latest evaluation.

Re-runs and backfills
---------------------
* :func:`open_alerts` with ``as_of`` gives the alerts as they were *before* that interval (started
  before it, not resolved before it), so a re-run of an interval sees what its first run saw and
  computes the same transitions: :func:`record` then changes no row (``changed == 0``) and
  :func:`plan_notifications` plans the same messages with the same dedup keys, which ``send_once``
  skips because they were sent (and sends if they failed the first time).
* :func:`record` never rewrites what a later interval wrote: a row whose ``last_evaluated_at`` is after
  this evaluation is left as it is.
* A backfill records the history like any run but pages nobody: ``plan_notifications(page=False)`` is
  empty. Neither does a run page for events older than ``max_age`` (a catch-up run of an old interval).
* Backfilling intervals *before* the first evaluated one can leave two episodes of the same alert where
  the backfilled one ends open (the later run never saw it): :func:`open_alerts` returns only the latest
  open episode per (rule, scope), and the older row keeps ``last_evaluated_at`` = the last interval
  that saw it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa

from devops_automation.store import ResultsStore, schema
from devops_automation.workflows.ci_pipeline_analytics.alert_rules import AlertEvent, Rule, alert_text

#: Messages for events older than this (against ``now``) are not sent: a catch-up run of an old interval.
DEFAULT_MAX_AGE = dt.timedelta(hours=36)
#: The markup each channel gets.
CHANNEL_MARKUP = {"slack": "mrkdwn", "telegram": "html", "email": "text"}
_COLUMNS = ("severity", "state", "resolved_at", "last_evaluated_at", "value", "threshold", "details")


def _utc(value: dt.datetime, name: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(dt.UTC)


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
    )


def _row(ev: AlertEvent) -> dict[str, Any]:
    return {
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


def open_alerts(store: ResultsStore, *, as_of: dt.datetime | None) -> list[AlertEvent]:
    """The open alerts, at most one per (rule, scope): the latest-started.

    ``as_of`` = the end of the interval about to be evaluated: the alerts open *before* it (started
    before ``as_of`` and not resolved before it), which is what makes a re-run repeat its first run.
    ``None``: the alerts firing now (for a dashboard).
    """
    t = schema.alert_events
    q = sa.select(t)
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
    store: ResultsStore, *, since: dt.datetime, until: dt.datetime, rule_id: str | None = None
) -> list[AlertEvent]:
    """Alerts active at some time in ``[since, until)`` (started before ``until``, not resolved before
    ``since``), oldest first: "alerts fired in the period" for a report."""
    t = schema.alert_events
    q = sa.select(t).where(
        t.c.started_at < _utc(until, "until"),
        sa.or_(t.c.resolved_at.is_(None), t.c.resolved_at >= _utc(since, "since")),
    )
    if rule_id is not None:
        q = q.where(t.c.rule_id == rule_id)
    with store.engine.connect() as conn:
        return [_event(r._mapping) for r in conn.execute(q.order_by(t.c.started_at, t.c.rule_id, t.c.scope_key))]


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
    """Write one evaluation's transitions (from :func:`~.alert_rules.transitions`) in one transaction.

    Idempotent on ``(rule_id, scope_key, started_at)``: recording the same evaluation again changes
    nothing. A row already evaluated after ``evaluated_at`` (a later interval) is never touched: a
    re-run of an old interval does not rewrite newer history. Returns the rows as stored.
    """
    at = _utc(evaluated_at, "evaluated_at")
    t = schema.alert_events
    changed = new_started = new_resolved = 0
    out: dict[str, list[AlertEvent]] = {"started": [], "still": [], "resolved": []}
    with store.begin() as conn:
        for name, events in (("started", started), ("still", still_firing), ("resolved", resolved)):
            for ev in events:
                row = _row(ev)
                key = (t.c.rule_id == ev.rule_id, t.c.scope_key == ev.scope_key, t.c.started_at == ev.started_at)
                existing = conn.execute(sa.select(t).where(*key)).first()
                if existing is None:
                    if name != "started":
                        raise ValueError(
                            f"no alert {ev.rule_id!r} on {ev.scope_key!r} started at {ev.started_at} to update"
                        )
                    got = store.insert_missing(t, [row], keys=["rule_id", "scope_key", "started_at"], conn=conn)
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


def dedup_key(event: AlertEvent, kind: str, channel: str) -> str:
    """The ``notifications`` key of one message: this episode's start or resolve, on this channel.

    The same for every run that computes the same episode, so each is sent at most once per channel
    (the target is not part of it: changing a rule's Slack channel does not re-send old alerts).
    At most about 140 characters (the scope key is hashed).
    """
    if kind not in ("start", "resolve"):
        raise ValueError(f"kind must be 'start' or 'resolve', got {kind!r}")
    scope = hashlib.sha256(event.scope_key.encode()).hexdigest()[:16]
    started = event.started_at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"ci-alert:{event.rule_id}:{scope}:{started}:{kind}:{channel}"


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to send through ``notifiers.send_once(channel, target, dedup_key, ...)``."""

    channel: str  # slack | telegram | email
    target: str  # "#ci-alerts" / channel id, chat id, "a@example.com, b@example.com"
    recipients: tuple[str, ...]  # the e-mail addresses (or just the target)
    dedup_key: str
    kind: str  # start | resolve
    subject: str  # the same line as plain text (e-mail subject, logs)
    text: str  # mrkdwn for Slack, HTML for Telegram, plain text for e-mail
    event: AlertEvent


def plan_notifications(
    rules: Iterable[Rule],
    started: Iterable[AlertEvent],
    resolved: Iterable[AlertEvent],
    *,
    now: dt.datetime,
    page: bool = True,
    max_age: dt.timedelta = DEFAULT_MAX_AGE,
) -> list[OutgoingMessage]:
    """The messages owed for these transitions: one per event and channel of its rule.

    ``page``: False for a backfill (or a dry run): the history is recorded, nothing is sent, the list is
    empty. ``now``: when the evaluation runs (the task's start); an event older than ``max_age`` at that
    time (its ``started_at``, or ``resolved_at`` for a resolve) is not sent either, so a catch-up run of
    an interval days old pages nobody. Events of rules no longer in the file, or disabled, send nothing.
    """
    if not page:
        return []
    now = _utc(now, "now")
    by_id = {r.id: r for r in rules if r.enabled}
    out: list[OutgoingMessage] = []
    for kind, events in (("start", started), ("resolve", resolved)):
        for ev in events:
            when = ev.started_at if kind == "start" else ev.resolved_at
            rule = by_id.get(ev.rule_id)
            if rule is None or when is None or now - when > max_age:
                continue
            subject = alert_text(ev, kind, "text")
            for channel, target in rule.channels.targets():
                out.append(
                    OutgoingMessage(
                        channel=channel,
                        target=target,
                        recipients=rule.channels.email if channel == "email" else (target,),
                        dedup_key=dedup_key(ev, kind, channel),
                        kind=kind,
                        subject=subject,
                        text=alert_text(ev, kind, CHANNEL_MARKUP[channel]),
                        event=ev,
                    )
                )
    return out
