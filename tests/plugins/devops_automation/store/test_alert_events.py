"""The shared alert history on SQLite and the real PostgreSQL: sources never see or resolve each other's
alerts, the generic transitions, and migration 0004 (the source column) over a 0003 database."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

import pytest
import sqlalchemy as sa

from devops_automation.store import ResultsStore, schema
from devops_automation.store import alert_events as ae
from devops_automation.workflows.ci_pipeline_analytics import alert_store as ci_store

DAY = dt.timedelta(days=1)
T1 = dt.datetime(2026, 11, 16, 0, 0, tzinfo=dt.UTC)
T2, T3 = T1 + DAY, T1 + 2 * DAY
CI = "ci_pipeline_analytics"
DPM = "daily_project_metrics"
SCOPE = "acme/api"


@dataclasses.dataclass(frozen=True)
class Cond:
    """A condition as another DAG would make one: only the fields transitions reads."""

    rule_id: str
    scope_key: str
    state: str
    value: float | None = 0.5
    threshold: float | None = 0.8
    severity: str = "warning"
    details: Mapping[str, Any] = dataclasses.field(default_factory=lambda: {"kind": "below", "figures": {"n": 3}})


def rows(store: ResultsStore) -> list[dict[str, Any]]:
    t = schema.alert_events
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(t).order_by(t.c.id))]


def evaluate(store: ResultsStore, source: str, end: dt.datetime, conditions: list[Cond]) -> ae.Recorded:
    """One evaluation of one source: what each DAG's alert task does."""
    before = ae.open_alerts(store, as_of=end, source=source)
    started, still, resolved = ae.transitions(conditions, before, at=end, source=source)
    return ae.record(store, started, resolved, still, evaluated_at=end)


# ---- sources in the store ----------------------------------------------------------------------------


def test_one_source_never_reads_or_resolves_another_sources_alert(results_store: ResultsStore) -> None:
    store = results_store
    # both DAGs start an alert with the same rule id and scope key at the same time: two rows
    assert evaluate(store, DPM, T1, [Cond("coverage", SCOPE, "firing")]).new_started == 1
    assert evaluate(store, CI, T1, [Cond("coverage", SCOPE, "firing", value=0.1)]).new_started == 1
    assert [(r["source"], r["rule_id"], r["scope_key"], r["started_at"], r["value"]) for r in rows(store)] == [
        (DPM, "coverage", SCOPE, T1, 0.5),
        (CI, "coverage", SCOPE, T1, 0.1),
    ]
    # ci's next run has no condition at all for it: it resolves its own alert, not daily_project_metrics'
    done = evaluate(store, CI, T2, [])
    assert [(e.source, e.rule_id, e.state) for e in done.resolved] == [(CI, "coverage", "resolved")]
    assert [(r["source"], r["state"], r["resolved_at"], r["last_evaluated_at"]) for r in rows(store)] == [
        (DPM, "firing", None, T1),
        (CI, "resolved", T2, T2),
    ]
    # each source sees only its own open alerts
    assert [(e.source, e.rule_id) for e in ae.open_alerts(store, as_of=T3, source=DPM)] == [(DPM, "coverage")]
    assert ae.open_alerts(store, as_of=T3, source=CI) == []
    assert [e.source for e in ae.open_alerts(store, as_of=None, source=DPM)] == [DPM]
    # ci_pipeline_analytics' own store functions see nothing of daily_project_metrics
    assert ci_store.open_alerts(store, as_of=T3) == []
    assert [e.source for e in ci_store.history(store, since=T1, until=T3)] == [CI]
    # and daily_project_metrics resolves its alert when its own run says ok
    done = evaluate(store, DPM, T3, [Cond("coverage", SCOPE, "ok", value=0.9)])
    assert [(e.source, e.details["resolved_value"], e.details["resolved_figures"]) for e in done.resolved] == [
        (DPM, 0.9, {"n": 3})
    ]
    assert [(r["source"], r["state"], r["resolved_at"]) for r in rows(store)] == [
        (DPM, "resolved", T3),
        (CI, "resolved", T2),
    ]


def test_history_reads_one_source_or_all(results_store: ResultsStore) -> None:
    store = results_store
    evaluate(store, CI, T1, [Cond("r", "b", "firing")])
    evaluate(store, DPM, T1, [Cond("r", "a", "firing")])
    evaluate(store, DPM, T2, [Cond("r", "a", "ok"), Cond("s", "a", "firing")])
    every = ae.history(store, since=T1, until=T3)
    assert [(e.started_at, e.source, e.rule_id, e.scope_key) for e in every] == [
        (T1, CI, "r", "b"),
        (T1, DPM, "r", "a"),
        (T2, DPM, "s", "a"),
    ]
    assert [(e.rule_id, e.state) for e in ae.history(store, since=T1, until=T3, source=DPM)] == [
        ("r", "resolved"),
        ("s", "firing"),
    ]
    assert [e.scope_key for e in ae.history(store, since=T1, until=T3, source=DPM, rule_id="r")] == ["a"]
    assert ae.history(store, since=T2 + dt.timedelta(hours=1), until=T3, source=DPM, rule_id="r") == []


def test_record_keys_updates_by_source(results_store: ResultsStore) -> None:
    store = results_store
    (started,) = evaluate(store, DPM, T1, [Cond("r", SCOPE, "firing")]).started
    # the same episode claimed by another source is not there to update
    foreign = dataclasses.replace(started, source=CI, state="resolved", resolved_at=T2, last_evaluated_at=T2)
    with pytest.raises(ValueError, match=r"no alert 'r' on 'acme/api' started at .* to update \(source 'ci_pipeline"):
        ae.record(store, [], [foreign], [], evaluated_at=T2)
    assert [r["state"] for r in rows(store)] == ["firing"]
    again = ae.record(store, [started], [], [], evaluated_at=T1)  # idempotent under its own source
    assert (again.changed, again.new_started, [e.id for e in again.started]) == (0, 0, [started.id])
    with pytest.raises(ValueError, match="an alert source must be a non-empty string of at most 64 characters"):
        ae.record(store, [dataclasses.replace(started, source="")], [], [], evaluated_at=T1)
    with pytest.raises(ValueError, match="at most 64 characters"):
        ae.open_alerts(store, as_of=T2, source="x" * 65)


def test_ci_record_refuses_another_sources_episode(results_store: ResultsStore) -> None:
    (started,) = ae.transitions([Cond("r", SCOPE, "firing")], [], at=T1, source=DPM).started
    with pytest.raises(ValueError, match="belongs to 'daily_project_metrics', not 'ci_pipeline_analytics'"):
        ci_store.record(results_store, [started], [], [], evaluated_at=T1)
    assert rows(results_store) == []


# ---- transitions (pure) --------------------------------------------------------------------------------


def opened(rule_id: str = "r", scope_key: str = SCOPE, source: str = DPM, **kw: Any) -> ae.AlertEvent:
    fields: dict[str, Any] = {"severity": "warning", "state": "firing", "value": 0.4, "threshold": 0.8, **kw}
    return ae.AlertEvent(rule_id, scope_key, started_at=T1, last_evaluated_at=T1, source=source, **fields)


def test_transitions_start_update_resolve_and_hold() -> None:
    conditions = [
        Cond("new", SCOPE, "firing", value=0.2, severity="critical", details={"kind": "below", "x": 1}),
        Cond("still", SCOPE, "firing", value=0.3),
        Cond("ok", SCOPE, "ok", value=0.95, details={"kind": "below"}),  # no figures: resolved_figures None
        Cond("hold", SCOPE, "hold"),
    ]
    before = [opened("still", id=1), opened("ok", id=2), opened("hold", id=3), opened("gone", id=4)]
    started, still, resolved = ae.transitions(conditions, before, at=T2, source=DPM)
    assert started == [
        ae.AlertEvent("new", SCOPE, "critical", "firing", T2, T2, None, 0.2, 0.8, {"kind": "below", "x": 1}, source=DPM)
    ]
    assert [(e.id, e.value, e.last_evaluated_at, e.started_at, dict(e.details)) for e in still] == [
        (1, 0.3, T2, T1, {"kind": "below", "figures": {"n": 3}})
    ]
    assert [
        (e.id, e.state, e.resolved_at, e.details["resolved_value"], e.details["resolved_figures"]) for e in resolved
    ] == [
        (2, "resolved", T2, 0.95, None),
        (4, "resolved", T2, None, None),  # no condition at all: resolved
    ]
    assert started[0].kind == "below"


def test_transitions_held_predicate_keeps_alerts_without_a_condition_open() -> None:
    before = [opened("a", "proj-1"), opened("a", "proj-2")]
    _, _, resolved = ae.transitions([], before, at=T2, source=DPM, held=lambda ev: ev.scope_key == "proj-2")
    assert [e.scope_key for e in resolved] == ["proj-1"]
    # a held alert with an ok condition still resolves: held only speaks for missing conditions
    _, _, resolved = ae.transitions([Cond("a", "proj-2", "ok")], before, at=T2, source=DPM, held=lambda ev: True)
    assert [e.scope_key for e in resolved] == ["proj-2"]


def test_transitions_refuses_another_sources_alerts_and_bad_input() -> None:
    with pytest.raises(ValueError, match="open alert 'r' on 'acme/api' belongs to source 'ci_pipeline_analytics', not"):
        ae.transitions([], [opened(source=CI)], at=T2, source=DPM)
    with pytest.raises(ValueError, match="state must be one of firing, ok, hold, got 'resolved'"):
        ae.transitions([Cond("r", SCOPE, "resolved")], [], at=T2, source=DPM)
    with pytest.raises(ValueError, match="two conditions for rule 'r' on 'acme/api'"):
        ae.transitions([Cond("r", SCOPE, "ok"), Cond("r", SCOPE, "firing")], [], at=T2, source=DPM)
    with pytest.raises(ValueError, match="at must be a timezone-aware datetime"):
        ae.transitions([], [], at=dt.datetime(2026, 11, 16), source=DPM)
    with pytest.raises(ValueError, match="an alert source must be a non-empty string"):
        ae.transitions([], [], at=T2, source="")
    with pytest.raises(TypeError, match="source"):
        ae.AlertEvent("r", SCOPE, "warning", "firing", T1, T1)  # type: ignore[call-arg]


def test_dedup_key_prefix_names_the_dag() -> None:
    ev = opened()
    assert ae.dedup_key(ev, "start", "slack", prefix="metrics-alert") == (
        "metrics-alert:r:c7198fbc19453717:20261116T000000Z:start:slack"
    )
    assert ae.dedup_key(ev, "start", "slack", prefix="ci-alert") == ci_store.dedup_key(ev, "start", "slack")
    with pytest.raises(ValueError, match="prefix must not be empty"):
        ae.dedup_key(ev, "start", "slack", prefix="")
    with pytest.raises(ValueError, match="kind must be 'start' or 'resolve'"):
        ae.dedup_key(ev, "stop", "slack", prefix="x")


# ---- migration 0004 ------------------------------------------------------------------------------------


def test_migration_0004_gives_existing_alerts_the_ci_source(results_url: str) -> None:
    old = ResultsStore(results_url, auto_migrate=False)
    old.migrate("0003")
    assert old.current_revision() == "0003"
    assert "source" not in {c["name"] for c in sa.inspect(old.engine).get_columns("alert_events")}
    row = {
        "rule_id": "main-rate",
        "scope_key": "github:acme/api:CI:main",
        "severity": "critical",
        "state": "firing",
        "started_at": T1,
        "last_evaluated_at": T2,
        "value": 0.5,
        "threshold": 0.8,
        "details": {"kind": "success_rate_below", "figures": {"runs": 10}},
    }
    with old.engine.begin() as conn:  # the 0003 table has no source column: only these are written
        row_id = conn.execute(
            sa.insert(schema.alert_events).values(**row).returning(schema.alert_events.c.id)
        ).scalar_one()
    old.dispose()

    new = ResultsStore(results_url)
    (stored,) = rows(new)  # the first touch migrates to head
    assert new.current_revision() == new.head_revision()
    assert stored == {**row, "id": row_id, "source": CI, "resolved_at": None}
    # the ci DAG finds its alert, another source does not
    (ev,) = ci_store.open_alerts(new, as_of=T3)
    assert (ev.id, ev.source, ev.rule_id, ev.started_at, ev.last_evaluated_at) == (row_id, CI, "main-rate", T1, T2)
    assert ae.open_alerts(new, as_of=T3, source=DPM) == []
    # the natural key includes the source: the same rule, scope and start under another source is a new row
    clash = Cond("main-rate", "github:acme/api:CI:main", "firing")
    (other,) = ae.transitions([clash], [], at=T1, source=DPM).started
    assert ae.record(new, [other], [], [], evaluated_at=T1).new_started == 1
    assert [(r["source"], r["started_at"]) for r in rows(new)] == [(CI, T1), (DPM, T1)]
    # ...and the same key under the same source is still refused by the database
    with pytest.raises(sa.exc.IntegrityError), new.engine.begin() as conn:
        conn.execute(sa.insert(schema.alert_events).values(**row, source=DPM))
    inspector = sa.inspect(new.engine)
    uniques = {u["name"]: u["column_names"] for u in inspector.get_unique_constraints("alert_events")}
    assert uniques == {
        "uq_alert_events_source_rule_id_scope_key_started_at": ["source", "rule_id", "scope_key", "started_at"]
    }
    indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes("alert_events")}
    assert indexes["ix_alert_events_open"] == ["source", "rule_id", "scope_key", "state"]
    new.dispose()


def test_migration_0004_downgrade_keeps_only_the_ci_alerts(results_store: ResultsStore) -> None:
    from alembic import command

    store = results_store
    evaluate(store, CI, T1, [Cond("r", SCOPE, "firing")])
    evaluate(store, DPM, T1, [Cond("r", SCOPE, "firing")])
    with store.engine.connect() as conn:
        command.downgrade(store._alembic_config(conn), "0003")
        conn.commit()
    assert store.current_revision() == "0003"
    with store.engine.connect() as conn:
        left = conn.execute(sa.text("SELECT rule_id, scope_key FROM alert_events")).all()
    assert [tuple(r) for r in left] == [("r", SCOPE)]
    inspector = sa.inspect(store.engine)
    assert "source" not in {c["name"] for c in inspector.get_columns("alert_events")}
    assert {u["name"] for u in inspector.get_unique_constraints("alert_events")} == {
        "uq_alert_events_rule_id_scope_key_started_at"
    }
    store.migrate()  # and up again
    assert [(r["source"], r["rule_id"]) for r in rows(store)] == [(CI, "r")]
