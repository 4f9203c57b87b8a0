"""The alert history on SQLite and the real PostgreSQL: start -> one message, still failing -> none,
resolved -> one; re-runs change no row and send nothing; backfills record and page nobody."""

from __future__ import annotations

import dataclasses
import datetime as dt
import textwrap
from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from devops_automation.store import ResultsStore, schema
from devops_automation.workflows.ci_pipeline_analytics import alert_rules as ar
from devops_automation.workflows.ci_pipeline_analytics import alert_store as st
from devops_automation.workflows.ci_pipeline_analytics.alert_rules import (
    AlertEvent,
    RedStreak,
    ScopeKey,
    SuccessRate,
)

DAY = dt.timedelta(days=1)
T1 = dt.datetime(2026, 11, 16, 0, 0, tzinfo=dt.UTC)  # interval ends: T1, T2 = T1 + 1 day, ...
T2, T3, T4 = T1 + DAY, T1 + 2 * DAY, T1 + 3 * DAY
SOON = dt.timedelta(minutes=7)  # a scheduled run starts a few minutes after its interval ends
API = ScopeKey("github", "acme/api", "CI", "main")
WEB = ScopeKey("github", "acme/web", "CI", "main")

RULES = ar.parse_rules(
    textwrap.dedent("""
    rules:
      - id: main-rate
        kind: success_rate_below
        severity: critical
        threshold: 0.8
        scope: {branches: main}
        channels: {slack: "#ci-alerts", telegram: "-1001234567890"}
      - id: main-red
        kind: red_longer_than
        severity: warning
        hours: 4
        branch_pattern: main
        channels: {email: [a@example.com, b@example.com]}
    """)
)


def rows(store: ResultsStore) -> list[dict[str, Any]]:
    t = schema.alert_events
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(t).order_by(t.c.id))]


def notifications(store: ResultsStore) -> list[tuple[str, str, str | None, str, int]]:
    t = schema.notifications
    with store.engine.connect() as conn:
        q = sa.select(t.c.dedup_key, t.c.channel, t.c.target, t.c.status, t.c.attempts).order_by(t.c.id)
        return [tuple(r) for r in conn.execute(q)]


@dataclasses.dataclass
class Run:
    recorded: st.Recorded
    planned: list[st.OutgoingMessage]
    sent: list[st.OutgoingMessage]


def run_interval(
    store: ResultsStore,
    end: dt.datetime,
    observations: Sequence[Any],
    *,
    page: bool = True,
    now: dt.datetime | None = None,
    rules: Sequence[ar.Rule] = RULES,
    held_repos: Sequence[str] = (),
) -> Run:
    """What the DAG's alert task does for one interval, with send_once's claim -> send -> mark sent."""
    before = st.open_alerts(store, as_of=end)
    conditions = ar.evaluate(rules, observations, interval_end=end)
    started, still, resolved = ar.transitions(conditions, before, at=end, held_repos=held_repos)
    recorded = st.record(store, started, resolved, still, evaluated_at=end)
    planned = st.plan_notifications(rules, recorded.started, recorded.resolved, page=page, now=now or end + SOON)
    sent = []
    for msg in planned:
        if store.claim_notification(msg.dedup_key, msg.channel, msg.target, now=end + SOON):
            store.notification_sent(msg.dedup_key, message_ref="m1", now=end + SOON)
            sent.append(msg)
    return Run(recorded, planned, sent)


def failing(runs: int = 10, successes: int = 5) -> list[Any]:
    return [SuccessRate(API, 7, runs, successes)]


def healthy() -> list[Any]:
    return [SuccessRate(API, 7, 10, 10)]


def test_start_still_firing_resolve_and_reruns(results_store: ResultsStore) -> None:
    store = results_store
    # T1: the success rate drops -> one alert, one start message per channel of the rule
    first = run_interval(store, T1, failing(10, 5))
    assert [(m.channel, m.target, m.kind) for m in first.sent] == [
        ("slack", "#ci-alerts", "start"),
        ("telegram", "-1001234567890", "start"),
    ]
    assert first.recorded.changed == 1
    assert first.sent[0].text == (
        "🔴 *CRITICAL* main-rate · github *acme/api* › CI › main: success rate 50% below 80% "
        "(5 of 10 runs in the last 7 days)"
    )
    assert first.sent[1].text.startswith("🔴 <b>CRITICAL</b> main-rate · github <b>acme/api</b> › CI › main: ")
    assert first.sent[0].subject == first.sent[0].text.replace("*", "")
    (row,) = rows(store)
    assert {k: row[k] for k in ("rule_id", "scope_key", "severity", "state", "value", "threshold")} == {
        "rule_id": "main-rate",
        "scope_key": "github:acme/api:CI:main",
        "severity": "critical",
        "state": "firing",
        "value": 0.5,
        "threshold": 0.8,
    }
    assert (row["started_at"], row["last_evaluated_at"], row["resolved_at"]) == (T1, T1, None)
    assert row["details"]["figures"] == {"runs": 10, "successes": 5, "window_days": 7}

    # T2: still failing -> no message; the row follows the latest value
    second = run_interval(store, T2, failing(10, 4))
    assert (second.planned, second.sent) == ([], [])
    assert [e.value for e in second.recorded.still_firing] == [0.4]
    (row,) = rows(store)
    assert (row["state"], row["started_at"], row["last_evaluated_at"], row["value"]) == ("firing", T1, T2, 0.4)

    # T3: recovered -> one resolve message per channel
    third = run_interval(store, T3, healthy())
    assert [(m.channel, m.kind) for m in third.sent] == [("slack", "resolve"), ("telegram", "resolve")]
    assert third.sent[0].text == (
        "✅ *RESOLVED* *CRITICAL* main-rate · github *acme/api* › CI › main: success rate back to 100% "
        "(threshold 80%); lasted 2 d"
    )
    (row,) = rows(store)
    assert (row["state"], row["resolved_at"], row["last_evaluated_at"], row["value"]) == ("resolved", T3, T3, 0.4)
    assert row["details"]["resolved_value"] == 1.0
    sent_keys = [n[0] for n in notifications(store)]
    assert sent_keys == [
        st.dedup_key(first.recorded.started[0], "start", "slack"),
        st.dedup_key(first.recorded.started[0], "start", "telegram"),
        st.dedup_key(third.recorded.resolved[0], "resolve", "slack"),
        st.dedup_key(third.recorded.resolved[0], "resolve", "telegram"),
    ]

    # re-running every interval (same data): no row changes, the same messages planned, none sent
    snapshot, sent_before = rows(store), notifications(store)
    for end, obs, kinds in (
        (T3, healthy(), ["resolve"] * 2),
        (T1, failing(10, 5), ["start"] * 2),
        (T2, failing(10, 4), []),
    ):
        again = run_interval(store, end, obs, now=end + SOON)
        assert again.recorded.changed == 0
        assert [m.kind for m in again.planned] == kinds
        assert again.sent == []
    assert rows(store) == snapshot
    assert notifications(store) == sent_before
    assert all(status == "sent" and attempts == 1 for _, _, _, status, attempts in sent_before)

    # T4: failing again -> a new episode, a new start message
    fourth = run_interval(store, T4, failing(10, 7))
    assert [(m.channel, m.kind) for m in fourth.sent] == [("slack", "start"), ("telegram", "start")]
    assert [(r["started_at"], r["state"]) for r in rows(store)] == [(T1, "resolved"), (T4, "firing")]


def test_a_failed_send_is_retried_by_the_rerun_and_then_never_again(results_store: ResultsStore) -> None:
    store = results_store
    first = run_interval(store, T1, failing())
    store.notification_failed(first.sent[1].dedup_key, "chat not found")  # Telegram did not take it
    again = run_interval(store, T1, failing())
    assert [(m.channel, m.kind) for m in again.sent] == [("telegram", "start")]
    assert again.recorded.changed == 0
    assert run_interval(store, T1, failing()).sent == []


def test_a_backfill_records_the_history_and_pages_nobody(results_store: ResultsStore) -> None:
    store = results_store
    history = [(T1, failing()), (T2, failing()), (T3, healthy()), (T4, failing())]
    for end, obs in history:
        run = run_interval(store, end, obs, page=False)
        assert (run.planned, run.sent) == ([], [])
    assert [(r["started_at"], r["state"], r["resolved_at"], r["last_evaluated_at"]) for r in rows(store)] == [
        (T1, "resolved", T3, T3),
        (T4, "firing", None, T4),
    ]
    assert notifications(store) == []


def test_a_catch_up_run_of_an_old_interval_does_not_page(results_store: ResultsStore) -> None:
    store = results_store
    late = run_interval(store, T1, failing(), now=T1 + 3 * DAY)  # runs three days after its interval
    assert (late.planned, late.sent) == ([], [])
    assert [r["state"] for r in rows(store)] == ["firing"]
    on_time = run_interval(store, T2, healthy(), now=T2 + dt.timedelta(hours=35))
    assert [(m.channel, m.kind) for m in on_time.sent] == [("slack", "resolve"), ("telegram", "resolve")]


def test_red_streak_alert_goes_to_every_email_address_in_one_message(results_store: ResultsStore) -> None:
    store = results_store
    red = [RedStreak(API, T1 - dt.timedelta(hours=6), failed_runs=3)]
    run = run_interval(store, T1, red)
    (msg,) = run.sent
    assert (msg.channel, msg.target, msg.recipients) == (
        "email",
        "a@example.com, b@example.com",
        ("a@example.com", "b@example.com"),
    )
    assert (
        msg.text
        == msg.subject
        == (
            "🟠 WARNING main-red · github acme/api › CI › main: red for 6 h, longer than 4 h "
            "(red since 2026-11-15 18:00 UTC)"
        )
    )
    # green: the branch has no open streak any more (no observation) -> resolved
    done = run_interval(store, T2, [])
    assert [(m.kind, m.text) for m in done.sent] == [
        (
            "resolve",
            "✅ RESOLVED WARNING main-red · github acme/api › CI › main: no longer red for more than 4 h; lasted 1 d",
        )
    ]


def test_held_repositories_keep_their_alerts_open(results_store: ResultsStore) -> None:
    store = results_store
    run_interval(store, T1, [SuccessRate(API, 7, 10, 1), SuccessRate(WEB, 7, 10, 1)])
    # acme/web could not be collected at T2: its alert is neither resolved nor updated
    run = run_interval(store, T2, [SuccessRate(API, 7, 10, 1)], held_repos=["acme/web"])
    assert run.sent == []
    assert [(r["scope_key"], r["state"], r["last_evaluated_at"]) for r in rows(store)] == [
        ("github:acme/api:CI:main", "firing", T2),
        ("github:acme/web:CI:main", "firing", T1),
    ]


def test_too_few_runs_hold_an_open_alert(results_store: ResultsStore) -> None:
    store = results_store
    run_interval(store, T1, failing(10, 5))
    quiet = run_interval(store, T2, failing(3, 3))  # 3 runs < min_runs 5: decides nothing
    assert quiet.sent == []
    assert quiet.recorded.changed == 0
    assert [(r["state"], r["last_evaluated_at"], r["value"]) for r in rows(store)] == [("firing", T1, 0.5)]


def test_a_removed_rule_resolves_its_alerts_without_a_message(results_store: ResultsStore) -> None:
    store = results_store
    run_interval(store, T1, failing())
    rest = [r for r in RULES if r.id != "main-rate"]
    run = run_interval(store, T2, failing(), rules=rest)
    assert [e.rule_id for e in run.recorded.resolved] == ["main-rate"]
    assert run.planned == []
    assert [(r["state"], r["resolved_at"]) for r in rows(store)] == [("resolved", T2)]


def test_open_alerts_as_of_an_interval(results_store: ResultsStore) -> None:
    store = results_store
    run_interval(store, T1, failing())
    run_interval(store, T2, failing())
    run_interval(store, T3, healthy())
    assert [e.started_at for e in st.open_alerts(store, as_of=T1)] == []  # started at T1: not open before it
    assert [e.started_at for e in st.open_alerts(store, as_of=T2)] == [T1]
    assert [e.state for e in st.open_alerts(store, as_of=T3)] == ["resolved"]  # open before T3, resolved at it
    assert st.open_alerts(store, as_of=T4) == []
    assert st.open_alerts(store, as_of=None) == []
    run_interval(store, T4, failing())
    (now_open,) = st.open_alerts(store, as_of=None)
    assert (now_open.rule_id, now_open.started_at, now_open.state, now_open.kind) == (
        "main-rate",
        T4,
        "firing",
        "success_rate_below",
    )
    assert now_open.scope == API


def test_record_never_rewrites_a_later_evaluation(results_store: ResultsStore) -> None:
    store = results_store
    run_interval(store, T1, failing())
    run_interval(store, T2, failing(10, 4))
    before = rows(store)
    # T1 again, but with data that now says "healthy": the T2 evaluation is newer and stays
    run = run_interval(store, T1, healthy())
    assert run.recorded.changed == 0
    assert rows(store) == before


def test_record_is_idempotent_for_the_same_transitions(results_store: ResultsStore) -> None:
    store = results_store
    conditions = ar.evaluate(RULES, failing(), interval_end=T1)
    started, still, resolved = ar.transitions(conditions, [], at=T1)
    assert st.record(store, started, resolved, still, evaluated_at=T1).changed == 1
    snapshot = rows(store)
    again = st.record(store, started, resolved, still, evaluated_at=T1)
    assert again.changed == 0
    assert rows(store) == snapshot
    assert [e.id for e in again.started] == [snapshot[0]["id"]]


def test_record_counts_only_the_starts_and_resolves_it_recorded(results_store: ResultsStore) -> None:
    store = results_store

    def counts(run: Run) -> tuple[int, int, int, int, int]:
        r = run.recorded
        return len(r.started), len(r.still_firing), len(r.resolved), r.new_started, r.new_resolved

    assert counts(run_interval(store, T1, failing())) == (1, 0, 0, 1, 0)
    # T1 again: the transition is computed again (a start), but its start was recorded by the first run
    assert counts(run_interval(store, T1, failing())) == (1, 0, 0, 0, 0)
    assert counts(run_interval(store, T2, failing(10, 4))) == (0, 1, 0, 0, 0)
    assert counts(run_interval(store, T3, healthy())) == (0, 0, 1, 0, 1)
    assert counts(run_interval(store, T3, healthy())) == (0, 0, 1, 0, 0)
    # T2 again after T3 resolved it: still firing as of T2, nothing recorded
    assert counts(run_interval(store, T2, failing(10, 4))) == (0, 1, 0, 0, 0)


def test_record_refuses_to_update_an_episode_it_does_not_have(results_store: ResultsStore) -> None:
    ghost = AlertEvent("main-rate", API.key, "critical", "resolved", T1, T2, T2, 0.5, 0.8, {})
    with pytest.raises(ValueError, match="no alert 'main-rate' on 'github:acme/api:CI:main' started at"):
        st.record(results_store, [], [ghost], [], evaluated_at=T2)


def test_history_lists_alerts_active_in_a_period(results_store: ResultsStore) -> None:
    store = results_store
    run_interval(store, T1, failing())
    run_interval(store, T2, healthy())
    run_interval(store, T4, [SuccessRate(WEB, 7, 10, 1)])
    week = st.history(store, since=T1 - 7 * DAY, until=T1 + 7 * DAY)
    assert [(e.scope_key, e.started_at, e.resolved_at) for e in week] == [
        ("github:acme/api:CI:main", T1, T2),
        ("github:acme/web:CI:main", T4, None),
    ]
    assert [e.scope_key for e in st.history(store, since=T3, until=T3 + DAY)] == []
    assert [e.scope_key for e in st.history(store, since=T3, until=T4 + DAY, rule_id="main-rate")] == [WEB.key]
    assert st.history(store, since=T3, until=T4 + DAY, rule_id="main-red") == []


# ---- pure parts --------------------------------------------------------------------------------------

EVENT = AlertEvent(
    "main-rate", "github:acme/api:CI:main", "critical", "firing", T1, T1, None, 0.5, 0.8, {"kind": "success_rate_below"}
)


def test_dedup_keys_are_per_episode_kind_and_channel() -> None:
    key = st.dedup_key(EVENT, "start", "slack")
    assert key == "ci-alert:main-rate:487c6c7a8ffaf95d:20261116T000000Z:start:slack"
    assert st.dedup_key(EVENT, "resolve", "slack") == key.replace(":start:", ":resolve:")
    assert st.dedup_key(EVENT, "start", "telegram") == key.replace(":slack", ":telegram")
    assert st.dedup_key(dataclasses.replace(EVENT, started_at=T2), "start", "slack") != key
    assert st.dedup_key(dataclasses.replace(EVENT, scope_key=WEB.key), "start", "slack") != key
    # the same episode read back later (other value, resolved) keeps its keys
    later = dataclasses.replace(EVENT, value=0.1, state="resolved", resolved_at=T3, last_evaluated_at=T3)
    assert st.dedup_key(later, "start", "slack") == key
    long = dataclasses.replace(EVENT, rule_id="r" * 64, scope_key="x" * 512)
    assert len(st.dedup_key(long, "resolve", "telegram")) <= 255
    with pytest.raises(ValueError, match="kind must be 'start' or 'resolve'"):
        st.dedup_key(EVENT, "started", "slack")


def test_plan_notifications_page_false_is_empty_and_needs_an_aware_now() -> None:
    assert st.plan_notifications(RULES, [EVENT], [], page=False, now=T1) == []
    assert [m.channel for m in st.plan_notifications(RULES, [EVENT], [], now=T1)] == ["slack", "telegram"]
    with pytest.raises(ValueError, match="now must be a timezone-aware datetime"):
        st.plan_notifications(RULES, [EVENT], [], now=dt.datetime(2026, 11, 16))


def test_plan_notifications_freshness_limit() -> None:
    limit = st.DEFAULT_MAX_AGE
    assert st.plan_notifications(RULES, [EVENT], [], now=T1 + limit) != []
    assert st.plan_notifications(RULES, [EVENT], [], now=T1 + limit + dt.timedelta(seconds=1)) == []
    assert st.plan_notifications(RULES, [EVENT], [], now=T1 + 10 * DAY, max_age=11 * DAY) != []
    resolved = dataclasses.replace(EVENT, state="resolved", resolved_at=T1 + 5 * DAY)
    assert [m.kind for m in st.plan_notifications(RULES, [], [resolved], now=T1 + 5 * DAY + SOON)] == [
        "resolve",
        "resolve",
    ]


def test_plan_notifications_skips_disabled_and_unknown_rules() -> None:
    off = [dataclasses.replace(r, enabled=False) for r in RULES]
    assert st.plan_notifications(off, [EVENT], [], now=T1) == []
    assert st.plan_notifications(RULES, [dataclasses.replace(EVENT, rule_id="gone")], [], now=T1) == []
