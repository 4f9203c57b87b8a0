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

The history is the shared table ``alert_events`` (:mod:`devops_automation.store.alert_events`), where
this DAG's rows have ``source`` = :data:`~.alert_rules.SOURCE`: :func:`open_alerts`, :func:`history` and
:func:`record` read and write only those (another DAG's alerts are never resolved here), and return
:class:`~.alert_rules.AlertEvent`. One row per episode, natural key ``(source, rule_id, scope_key,
started_at)``: ``started_at`` = the end of the interval in which the condition was first seen firing,
``state`` ``firing`` until an interval finds it resolved (``resolved_at`` = that interval's end);
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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from devops_automation.store import ResultsStore, alert_events
from devops_automation.store.alert_events import Recorded
from devops_automation.workflows.ci_pipeline_analytics.alert_rules import SOURCE, AlertEvent, Rule, alert_text

#: Messages for events older than this (against ``now``) are not sent: a catch-up run of an old interval.
DEFAULT_MAX_AGE = alert_events.MESSAGE_MAX_AGE
#: The markup each channel gets.
CHANNEL_MARKUP = {"slack": "mrkdwn", "telegram": "html", "email": "text"}
#: The start of this DAG's ``notifications`` dedup keys (keys already sent depend on it: keep it).
DEDUP_PREFIX = "ci-alert"


def _utc(value: dt.datetime, name: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(dt.UTC)


def open_alerts(store: ResultsStore, *, as_of: dt.datetime | None) -> list[AlertEvent]:
    """This DAG's open alerts, at most one per (rule, scope): the latest-started.

    ``as_of`` = the end of the interval about to be evaluated: the alerts open *before* it (started
    before ``as_of`` and not resolved before it), which is what makes a re-run repeat its first run.
    ``None``: the alerts firing now (for a dashboard).
    """
    return [AlertEvent.of(ev) for ev in alert_events.open_alerts(store, as_of=as_of, source=SOURCE)]


def history(
    store: ResultsStore, *, since: dt.datetime, until: dt.datetime, rule_id: str | None = None
) -> list[AlertEvent]:
    """This DAG's alerts active at some time in ``[since, until)`` (started before ``until``, not resolved
    before ``since``), oldest first: "alerts fired in the period" for a report."""
    events = alert_events.history(store, since=since, until=until, source=SOURCE, rule_id=rule_id)
    return [AlertEvent.of(ev) for ev in events]


def record(
    store: ResultsStore,
    started: Sequence[AlertEvent],
    resolved: Sequence[AlertEvent],
    still_firing: Sequence[AlertEvent],
    *,
    evaluated_at: dt.datetime,
) -> Recorded:
    """Write one evaluation's transitions (from :func:`~.alert_rules.transitions`) in one transaction.

    Idempotent on ``(source, rule_id, scope_key, started_at)``: recording the same evaluation again
    changes nothing. A row already evaluated after ``evaluated_at`` (a later interval) is never touched:
    a re-run of an old interval does not rewrite newer history. Returns the rows as stored. An episode
    of another DAG (``source``) is a ``ValueError``: nothing is written then.
    """
    for ev in (*started, *resolved, *still_firing):
        if ev.source != SOURCE:
            raise ValueError(f"alert {ev.rule_id!r} on {ev.scope_key!r} belongs to {ev.source!r}, not {SOURCE!r}")
    done = alert_events.record(store, started, resolved, still_firing, evaluated_at=evaluated_at)
    return done._replace(
        started=[AlertEvent.of(ev) for ev in done.started],
        still_firing=[AlertEvent.of(ev) for ev in done.still_firing],
        resolved=[AlertEvent.of(ev) for ev in done.resolved],
    )


def dedup_key(event: alert_events.AlertEvent, kind: str, channel: str) -> str:
    """The ``notifications`` key of one message: this episode's start or resolve, on this channel
    (:func:`devops_automation.store.alert_events.dedup_key` with the prefix ``ci-alert``).

    The same for every run that computes the same episode, so each is sent at most once per channel
    (the target is not part of it: changing a rule's Slack channel does not re-send old alerts).
    At most about 140 characters (the scope key is hashed).
    """
    return alert_events.dedup_key(event, kind, channel, prefix=DEDUP_PREFIX)


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
