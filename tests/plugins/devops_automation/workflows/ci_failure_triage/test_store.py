"""The results-store operations of ci_failure_triage, called directly on SQLite and the real PostgreSQL.

``claim_event`` is what makes a pipeline analysed once whichever way it was reported (e-mail, webhook,
by hand): the table below walks every branch of its contract.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
import sqlalchemy as sa

from devops_automation.store import ResultsStore, schema
from devops_automation.workflows.ci_failure_triage import store as triage

T0 = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)


def event(
    pipeline_id: str = "1001", project_id: str = "42", source: str | None = "email", **fields: Any
) -> dict[str, Any]:
    return {
        "project_id": project_id,
        "project_path": "acme/api",
        "pipeline_id": pipeline_id,
        "ref": "main",
        "sha": "1a2b3c4d",
        "status": "failed",
        "source": source,
        "pipeline_url": f"https://gitlab.test/acme/api/-/pipelines/{pipeline_id}",
        **fields,
    }


def all_events(store: ResultsStore) -> list[dict[str, Any]]:
    t = schema.failure_events
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(t).order_by(t.c.id))]


# -- parse_time -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, expected",
    [
        pytest.param("2026-11-23T06:00:00Z", T0, id="iso-z"),
        pytest.param("2026-11-23T06:00:00.000Z", T0, id="iso-z-millis"),
        pytest.param("2026-11-23T07:00:00+01:00", T0, id="iso-offset"),
        pytest.param("2026-11-23T06:00:00", T0, id="iso-naive-is-utc"),
        pytest.param("2026-11-23 06:00:00 UTC", T0, id="webhook-form"),
        pytest.param(" 2026-11-23 06:00:00 UTC ", T0, id="webhook-form-padded"),
        pytest.param(dt.datetime(2026, 11, 23, 6, 0), T0, id="naive-datetime-is-utc"),
        pytest.param(T0, T0, id="aware-datetime"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="none"),
        pytest.param("yesterday", None, id="garbage"),
    ],
)
def test_parse_time(value: Any, expected: dt.datetime | None) -> None:
    got = triage.parse_time(value)
    assert got == expected
    if got is not None:
        assert got.tzinfo is not None


# -- claim_event ------------------------------------------------------------------------------------
def test_first_claim_inserts_the_event_and_owns_it(results_store: ResultsStore) -> None:
    event_id, mine, why = triage.claim_event(results_store, event(), run_id="run-a", now=T0)
    assert (mine, why) == (True, "new failure")
    (row,) = all_events(results_store)
    assert row["id"] == event_id
    assert (row["provider"], row["project_id"], row["pipeline_id"], row["project_path"]) == (
        "gitlab",
        "42",
        "1001",
        "acme/api",
    )
    assert (row["ref"], row["sha"], row["status"], row["source"], row["state"]) == (
        "main",
        "1a2b3c4d",
        "failed",
        "email",
        "new",
    )
    assert row["pipeline_url"] == "https://gitlab.test/acme/api/-/pipelines/1001"
    assert row["payload"] == {"claimed_by": "run-a", "claimed_at": T0.isoformat(), "sources": ["email"]}
    assert row["received_at"] == T0
    assert row["updated_at"] == T0
    assert triage.get_event(results_store, event_id) == row
    assert triage.find_event(results_store, "42", "1001") == row


def test_claim_defaults_source_and_status(results_store: ResultsStore) -> None:
    ev = {"project_id": 42, "pipeline_id": 7}  # ints, no source, no status
    event_id, mine, _ = triage.claim_event(results_store, ev, run_id="run-a", now=T0)
    row = triage.get_event(results_store, event_id)
    assert mine is True
    assert row is not None
    assert (row["project_id"], row["pipeline_id"], row["source"], row["status"]) == ("42", "7", "manual", "failed")
    assert row["payload"]["sources"] == ["manual"]


# Each case: the event was claimed first by run-a at T0 from e-mail (and then set to ``state``);
# then a second claim: run, minutes after T0, force, source -> mine, why, state, claimed_by, sources.
CLAIM_TABLE = [
    pytest.param(
        "new",
        "run-b",
        5,
        False,
        "webhook",
        False,
        r"^being analysed by run run-a$",
        "new",
        "run-a",
        ["email", "webhook"],
        id="other-run-while-claimed",
    ),
    pytest.param(
        "new",
        "run-b",
        5,
        False,
        "email",
        False,
        r"^being analysed by run run-a$",
        "new",
        "run-a",
        ["email"],
        id="other-run-same-source",
    ),
    pytest.param(
        "new",
        "run-a",
        5,
        False,
        "webhook",
        True,
        r"^retry of the run that claimed it$",
        "new",
        "run-a",
        ["email", "webhook"],
        id="retry-of-owner",
    ),
    pytest.param(
        "new",
        "run-b",
        61,
        False,
        "webhook",
        True,
        r"^claim by run-a went stale$",
        "new",
        "run-b",
        ["email", "webhook"],
        id="stale-claim-taken-over",
    ),
    pytest.param(
        "new",
        "run-b",
        60,
        False,
        "webhook",
        False,
        r"^being analysed by run run-a$",
        "new",
        "run-a",
        ["email", "webhook"],
        id="exactly-stale-after-is-not-stale",
    ),
    pytest.param(
        "new",
        "run-b",
        5,
        True,
        "manual",
        True,
        r"^forced$",
        "new",
        "run-b",
        ["email", "manual"],
        id="forced-while-claimed",
    ),
    pytest.param(
        "analysed",
        "run-b",
        5,
        False,
        "webhook",
        False,
        r"^already analysed \(first told by email\)$",
        "analysed",
        "run-a",
        ["email", "webhook"],
        id="already-analysed",
    ),
    pytest.param(
        "notified",
        "run-a",
        5,
        False,
        "email",
        False,
        r"^already notified \(first told by email\)$",
        "notified",
        "run-a",
        ["email"],
        id="already-notified-even-for-owner",
    ),
    pytest.param(
        "gone",
        "run-b",
        600,
        False,
        "webhook",
        False,
        r"^already gone \(first told by email\)$",
        "gone",
        "run-a",
        ["email", "webhook"],
        id="gone-never-stale",
    ),
    pytest.param(
        "notified",
        "run-b",
        5,
        True,
        "manual",
        True,
        r"^forced$",
        "new",
        "run-b",
        ["email", "manual"],
        id="forced-after-notified-starts-over",
    ),
    pytest.param(
        "failed",
        "run-b",
        5,
        False,
        "webhook",
        False,
        r"^being analysed by run run-a$",
        "failed",
        "run-a",
        ["email", "webhook"],
        id="failed-state-is-not-done",
    ),
    pytest.param(
        "failed",
        "run-a",
        5,
        False,
        "email",
        True,
        r"^retry of the run that claimed it$",
        "failed",
        "run-a",
        ["email"],
        id="retry-keeps-state",
    ),
]


@pytest.mark.parametrize(
    "state, run_id, minutes, force, source, mine, why, state_after, owner_after, sources_after", CLAIM_TABLE
)
def test_second_claim(
    results_store: ResultsStore,
    state: str,
    run_id: str,
    minutes: int,
    force: bool,
    source: str,
    mine: bool,
    why: str,
    state_after: str,
    owner_after: str,
    sources_after: list[str],
) -> None:
    first_id, first_mine, _ = triage.claim_event(results_store, event(source="email"), run_id="run-a", now=T0)
    assert first_mine is True
    if state != "new":
        triage.update_event(results_store, first_id, state=state)
    now = T0 + minutes * MINUTE
    event_id, got_mine, got_why = triage.claim_event(
        results_store, event(source=source), run_id=run_id, now=now, force=force
    )
    assert event_id == first_id
    assert got_mine is mine
    assert re.search(why, got_why), got_why
    (row,) = all_events(results_store)  # never a second row for the same (project, pipeline)
    assert row["state"] == state_after
    assert row["payload"]["claimed_by"] == owner_after
    assert row["payload"]["sources"] == sources_after
    assert row["source"] == "email"  # the first that told us stays
    assert row["payload"]["claimed_at"] == (now if mine else T0).isoformat()
    assert row["updated_at"] == (now if mine else T0)


def test_a_claim_without_claimed_at_is_stale(results_store: ResultsStore) -> None:
    event_id, _, _ = triage.claim_event(results_store, event(), run_id="run-a", now=T0)
    t = schema.failure_events
    with results_store.begin() as conn:
        conn.execute(
            sa.update(t).where(t.c.id == event_id).values(payload={"claimed_by": "run-a", "sources": ["email"]})
        )
    _, mine, why = triage.claim_event(results_store, event(), run_id="run-b", now=T0 + MINUTE)
    assert mine is True
    assert why == "claim by run-a went stale"


def test_stale_after_is_a_parameter(results_store: ResultsStore) -> None:
    triage.claim_event(results_store, event(), run_id="run-a", now=T0)
    _, mine, _ = triage.claim_event(
        results_store, event(), run_id="run-b", now=T0 + 3 * MINUTE, stale_after=dt.timedelta(minutes=5)
    )
    assert mine is False
    _, mine, why = triage.claim_event(
        results_store, event(), run_id="run-b", now=T0 + 6 * MINUTE, stale_after=dt.timedelta(minutes=5)
    )
    assert mine is True
    assert why == "claim by run-a went stale"


def test_claims_are_per_project_and_pipeline(results_store: ResultsStore) -> None:
    a, mine_a, _ = triage.claim_event(results_store, event("1001", "42"), run_id="run-a", now=T0)
    b, mine_b, _ = triage.claim_event(results_store, event("1002", "42"), run_id="run-a", now=T0)
    c, mine_c, _ = triage.claim_event(results_store, event("1001", "43"), run_id="run-a", now=T0)
    d, mine_d, why_d = triage.claim_event(results_store, event("1001", "42", source="webhook"), run_id="run-b", now=T0)
    assert [mine_a, mine_b, mine_c, mine_d] == [True, True, True, False]
    assert len({a, b, c}) == 3
    assert d == a
    assert why_d == "being analysed by run run-a"
    assert [(r["project_id"], r["pipeline_id"]) for r in all_events(results_store)] == [
        ("42", "1001"),
        ("42", "1002"),
        ("43", "1001"),
    ]


def test_many_runs_claiming_the_same_pipeline_one_wins(results_store: ResultsStore) -> None:
    results = [
        triage.claim_event(results_store, event(source=src), run_id=f"run-{i}", now=T0)
        for i, src in enumerate(["email", "webhook", "email", "manual"])
    ]
    assert [mine for _, mine, _ in results] == [True, False, False, False]
    assert len({event_id for event_id, _, _ in results}) == 1
    (row,) = all_events(results_store)
    assert row["payload"]["claimed_by"] == "run-0"
    assert row["payload"]["sources"] == ["email", "webhook", "manual"]


# -- update_event, events_in_state ------------------------------------------------------------------
def test_update_event_merges_payload_and_sets_state(results_store: ResultsStore) -> None:
    event_id, _, _ = triage.claim_event(results_store, event(), run_id="run-a", now=T0)
    triage.update_event(
        results_store, event_id, state="analysed", now=T0 + MINUTE, jobs=2, pipeline_at="2026-11-23T05:59:00Z"
    )
    row = triage.get_event(results_store, event_id)
    assert row is not None
    assert row["state"] == "analysed"
    assert row["updated_at"] == T0 + MINUTE
    assert row["payload"] == {
        "claimed_by": "run-a",
        "claimed_at": T0.isoformat(),
        "sources": ["email"],
        "jobs": 2,
        "pipeline_at": "2026-11-23T05:59:00Z",
    }
    triage.update_event(results_store, event_id)  # nothing to change: a no-op
    assert triage.get_event(results_store, event_id) == row


def test_events_in_state(results_store: ResultsStore) -> None:
    ids = [triage.claim_event(results_store, event(str(p)), run_id="r", now=T0)[0] for p in range(1, 6)]
    for event_id in ids[1:4]:
        triage.update_event(results_store, event_id, state="analysed")
    assert [e["id"] for e in triage.events_in_state(results_store, "analysed")] == ids[1:4]
    assert [e["id"] for e in triage.events_in_state(results_store, "analysed", limit=2)] == ids[1:3]
    assert [e["id"] for e in triage.events_in_state(results_store, "new")] == [ids[0], ids[4]]
    assert triage.events_in_state(results_store, "notified") == []


def test_missing_events_are_none(results_store: ResultsStore) -> None:
    assert triage.get_event(results_store, 12345) is None
    assert triage.find_event(results_store, "42", "1001") is None


# -- analyses and fingerprints ---------------------------------------------------------------------
def analysis(event_id: int, job_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "job_id": job_id,
        "category": "test_failure",
        "analyser": "heuristic",
        "created_at": T0,
        **fields,
    }


def test_save_analysis_is_one_row_per_event_and_job(results_store: ResultsStore) -> None:
    event_id, _, _ = triage.claim_event(results_store, event(), run_id="r", now=T0)
    triage.save_analysis(results_store, analysis(event_id, "7", root_cause="first"))
    triage.save_analysis(results_store, analysis(event_id, "8"))
    triage.save_analysis(results_store, analysis(event_id, "7", root_cause="second", fingerprint="fp"))
    rows = triage.analyses_of(results_store, event_id)
    assert [(a["job_id"], a["root_cause"], a["fingerprint"]) for a in rows] == [
        ("7", "second", "fp"),
        ("8", None, None),
    ]
    got = triage.get_analysis(results_store, event_id, 7)  # job ids are matched as text
    assert got is not None
    assert got["root_cause"] == "second"
    assert triage.get_analysis(results_store, event_id, "9") is None


def test_fingerprint_occurrences_within_the_window(results_store: ResultsStore) -> None:
    def failed_at(pipeline_id: str, at: dt.datetime | None, fingerprint: str = "fp-1") -> int:
        event_id, _, _ = triage.claim_event(results_store, event(pipeline_id), run_id="r", now=T0)
        if at is not None:
            triage.update_event(results_store, event_id, pipeline_at=at.isoformat())
        triage.save_analysis(results_store, analysis(event_id, "7", fingerprint=fingerprint))
        return event_id

    too_old = failed_at("1", T0 - dt.timedelta(hours=25))
    first = failed_at("2", T0 - dt.timedelta(hours=23))
    second = failed_at("3", T0)
    failed_at("4", T0 + MINUTE)  # after `until`
    failed_at("5", None)  # no pipeline time: not counted
    failed_at("6", T0 - dt.timedelta(hours=1), fingerprint="fp-other")
    got = triage.fingerprint_occurrences(results_store, "fp-1", until=T0, window=dt.timedelta(hours=24))
    assert [(o["event_id"], o["pipeline_id"], o["pipeline_at"]) for o in got] == [
        (first, "2", T0 - dt.timedelta(hours=23)),
        (second, "3", T0),
    ]
    assert too_old not in {o["event_id"] for o in got}
    assert triage.fingerprint_occurrences(results_store, "fp-none", until=T0, window=dt.timedelta(hours=24)) == []


def test_save_fingerprint_creates_then_merges(results_store: ResultsStore) -> None:
    slack = {"slack": {"channel": "C0CIFAIL", "ts": "1.000100"}}
    telegram = {"telegram": {"chat": "-100", "message_id": 5}}
    triage.save_fingerprint(
        results_store,
        "fp",
        project_path="acme/api",
        job_name="unit",
        first_error="E" * 3000,
        occurrences=1,
        seen_at=T0,
        thread_refs=slack,
    )
    first = triage.get_fingerprint(results_store, "fp")
    assert first is not None
    assert (first["project_path"], first["job_name"], first["occurrences"]) == ("acme/api", "unit", 1)
    assert first["first_error"] == "E" * 2000
    assert first["thread_refs"] == slack
    assert (first["first_seen"], first["last_seen"]) == (T0, T0)
    triage.save_fingerprint(
        results_store,
        "fp",
        project_path="acme/api",
        job_name="unit",
        first_error="other",
        occurrences=3,
        seen_at=T0 - MINUTE,
        thread_refs=telegram,
    )
    triage.save_fingerprint(
        results_store,
        "fp",
        project_path="acme/api",
        job_name="unit",
        first_error="other",
        occurrences=0,
        seen_at=T0 + MINUTE,
    )
    got = triage.get_fingerprint(results_store, "fp")
    assert got is not None
    assert got["occurrences"] == 1  # the last call's count, at least 1
    assert got["thread_refs"] == {**slack, **telegram}
    assert (got["first_seen"], got["last_seen"]) == (T0 - MINUTE, T0 + MINUTE)
    assert got["first_error"] == "E" * 2000  # the first error is kept
    assert triage.get_fingerprint(results_store, "unknown") is None


# -- intake ----------------------------------------------------------------------------------------
def test_record_intake_inserts_then_updates_only_given_fields(results_store: ResultsStore) -> None:
    row = triage.record_intake(
        results_store,
        {
            "source": "email",
            "message_id": "m1@x",
            "status": "accepted",
            "sender": "gitlab@x",
            "subject": "s",
            "folder": "INBOX",
            "size_bytes": 10,
        },
        now=T0,
    )
    assert (row["status"], row["sender"], row["subject"], row["folder"], row["size_bytes"], row["received_at"]) == (
        "accepted",
        "gitlab@x",
        "s",
        "INBOX",
        10,
        T0,
    )
    event_id, _, _ = triage.claim_event(results_store, event(), run_id="r", now=T0)
    row = triage.record_intake(
        results_store,
        {
            "source": "email",
            "message_id": "m1@x",
            "status": "processed",
            "folder": "Processed",
            "event_id": event_id,
            "reason": None,
            "sender": "other@x",
        },
        now=T0 + MINUTE,
    )
    assert (row["status"], row["folder"], row["event_id"]) == ("processed", "Processed", event_id)
    assert (row["sender"], row["subject"], row["received_at"]) == (
        "gitlab@x",
        "s",
        T0,
    )  # only status/reason/folder/event_id change
    assert triage.intake_row(results_store, "email", "m1@x") == row
    assert triage.intake_row(results_store, "webhook", "m1@x") is None


def test_record_intake_caps_the_message_id(results_store: ResultsStore) -> None:
    row = triage.record_intake(
        results_store, {"source": "email", "message_id": "x" * 1200, "status": "ignored"}, now=T0
    )
    assert row["message_id"] == "x" * 998


def test_intake_for_events(results_store: ResultsStore) -> None:
    a, _, _ = triage.claim_event(results_store, event("1"), run_id="r", now=T0)
    b, _, _ = triage.claim_event(results_store, event("2"), run_id="r", now=T0)
    for mid, ev, status in [
        ("m1", a, "accepted"),
        ("m2", a, "accepted"),
        ("m3", b, "accepted"),
        ("m4", a, "processed"),
    ]:
        triage.record_intake(
            results_store, {"source": "email", "message_id": mid, "status": status, "event_id": ev}, now=T0
        )
    assert sorted(r["message_id"] for r in triage.intake_for_events(results_store, [a])) == ["m1", "m2"]
    assert sorted(r["message_id"] for r in triage.intake_for_events(results_store, [a, b])) == ["m1", "m2", "m3"]
    assert [r["message_id"] for r in triage.intake_for_events(results_store, [a], status="processed")] == ["m4"]
    assert triage.intake_for_events(results_store, []) == []


# -- nothing from a mail or an event is stored raw ---------------------------------------------------
GLPAT = "glpat-Zq7Xw2Rk9Vb4Tn6Lp3Hs"  # a GitLab personal access token's shape (not a real one)
GHP = "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"  # a GitHub token's shape (not a real one)


def leaked(secret: str, text: str) -> list[str]:
    """The 8-character pieces of ``secret`` found in ``text`` (the redaction benchmark's test)."""
    return [secret[i : i + 8] for i in range(len(secret) - 7) if secret[i : i + 8] in text]


def stored(store: ResultsStore, table: sa.Table) -> str:
    with store.engine.connect() as conn:
        return repr([dict(r._mapping) for r in conn.execute(sa.select(table))])


INTAKE_FIELDS = {"subject": "Failed pipeline", "sender": "gitlab@x.test", "reason": "not_gitlab: no pipeline"}
PLANTED = {
    "subject": (f"Failed pipeline token={GLPAT}", "Failed pipeline token=[REDACTED:gitlab_token]"),
    "sender": (f"{GLPAT}@evil.test", "[REDACTED:gitlab_token]@evil.test"),
    "reason": (
        f"unparseable: X-GitLab-Pipeline-Status is not a status word: 'token={GLPAT}'",
        "unparseable: X-GitLab-Pipeline-Status is not a status word: 'token=[REDACTED:gitlab_token]'",
    ),
}


@pytest.mark.parametrize("status", ["accepted", "ignored", "needs_attention"])
@pytest.mark.parametrize("column", sorted(PLANTED))
def test_record_intake_never_stores_a_secret_from_the_mail(
    results_store: ResultsStore, column: str, status: str
) -> None:
    planted, expected = PLANTED[column]
    row = triage.record_intake(
        results_store,
        {"source": "email", "message_id": "m1@x", "status": status, **INTAKE_FIELDS, column: planted, "size_bytes": 9},
        now=T0,
    )
    assert row[column] == expected
    assert {k: row[k] for k in INTAKE_FIELDS if k != column} == {k: v for k, v in INTAKE_FIELDS.items() if k != column}
    assert (row["status"], row["message_id"], row["size_bytes"]) == (status, "m1@x", 9)
    assert leaked(GLPAT, stored(results_store, schema.intake_messages)) == []


def test_record_intake_redacts_an_updated_reason(results_store: ResultsStore) -> None:
    triage.record_intake(results_store, {"source": "email", "message_id": "m1@x", "status": "accepted"}, now=T0)
    row = triage.record_intake(
        results_store,
        {"source": "email", "message_id": "m1@x", "status": "needs_attention", "reason": f"spoofed: saw {GHP}"},
        now=T0,
    )
    assert (row["status"], row["reason"]) == ("needs_attention", "spoofed: saw [REDACTED:github_token]")
    assert leaked(GHP, stored(results_store, schema.intake_messages)) == []


@pytest.mark.parametrize("column, limit", [("reason", 2000), ("sender", 512)])
def test_record_intake_redacts_before_it_cuts(results_store: ResultsStore, column: str, limit: int) -> None:
    """The cut falls inside the token: cut first, its first 10 characters would be stored, and no longer
    recognised as a token."""
    value = "x" * (limit - 10) + " " + GHP
    row = triage.record_intake(
        results_store, {"source": "email", "message_id": "m1@x", "status": "ignored", column: value}, now=T0
    )
    assert row[column] == ("x" * (limit - 10) + " [REDACTED:github_token]")[:limit]
    assert leaked(GHP, stored(results_store, schema.intake_messages)) == []


@pytest.mark.parametrize(
    "message_id",
    [
        "pipeline_1001@gitlab.example.test",
        "CAKv3+Uy1b6Q8Xq8k2uN_9wQpQ-+Xb1g0gZx3yW5=K2u4aXq2Lg@mail.gmail.com",
        "6f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b@outlook.com",
        "sha256:" + "0f" * 32,  # the key of a mail without a Message-ID
    ],
)
def test_a_message_id_without_a_secret_is_its_own_key(message_id: str) -> None:
    assert triage.intake_key(message_id) == message_id


def test_a_message_id_with_a_secret_is_keyed_stably_and_uniquely(results_store: ResultsStore) -> None:
    import hashlib

    mid, other = f"{GLPAT}@evil.test", f"{GLPAT[:-1]}X@evil.test"
    key = triage.intake_key(mid)
    assert key == "[REDACTED:gitlab_token]@evil.test#sha256:" + hashlib.sha256(mid.encode()).hexdigest()
    assert triage.intake_key(mid) == key  # stable: the same mail is the same row, run after run
    assert triage.intake_key(other) != key  # unique: both redact to the same text
    assert triage.intake_key(key) == key  # a stored key given back (archive, notify) is the same row
    for m in (mid, mid, key, other):
        triage.record_intake(results_store, {"source": "email", "message_id": m, "status": "needs_attention"}, now=T0)
    row = triage.intake_row(results_store, "email", mid)
    assert row is not None
    assert row["message_id"] == key
    assert triage.intake_row(results_store, "email", key) == row
    assert sorted(r["message_id"] for r in triage.attention_owed(results_store, KEYS)) == sorted(
        [key, triage.intake_key(other)]
    )
    assert leaked(GLPAT, stored(results_store, schema.intake_messages)) == []


def test_a_long_message_id_with_a_secret_keeps_the_column_size() -> None:
    mid = "y" * 990 + " " + GHP
    key = triage.intake_key(mid)
    assert len(key) == 998
    assert key.startswith("y" * 900)
    assert key != triage.intake_key("y" * 990 + " " + GHP[:-1] + "Z")
    assert triage.intake_key(key) == key
    assert leaked(GHP, key) == []


def test_claim_and_update_event_never_store_a_secret_from_the_event(results_store: ResultsStore) -> None:
    url = f"https://oauth2:{GLPAT}@gitlab.test/acme/api/-/pipelines/1001"
    ev = event(ref=f"fix/{GLPAT}", project_path=f"acme/{GHP}", pipeline_url=url)
    event_id, mine, _ = triage.claim_event(results_store, ev, run_id="r", now=T0)
    assert mine
    triage.update_event(
        results_store,
        event_id,
        pipeline={"ref": ev["ref"], "project_path": ev["project_path"], "pipeline_url": url},
        error=f"pipeline not found: 404 for token {GHP}",
        jobs=["7001", "7002"],
        pipeline_at="2026-11-23T06:00:00.000Z",
    )
    (row,) = all_events(results_store)
    assert (row["project_id"], row["pipeline_id"], row["sha"], row["status"], row["source"]) == (
        "42",
        "1001",
        "1a2b3c4d",
        "failed",
        "email",
    )
    assert (row["ref"], row["project_path"]) == ("fix/[REDACTED:gitlab_token]", "acme/[REDACTED:github_token]")
    assert row["pipeline_url"] == "https://oauth2:[REDACTED:gitlab_token]@gitlab.test/acme/api/-/pipelines/1001"
    payload = row["payload"]
    assert payload["pipeline"]["ref"] == "fix/[REDACTED:gitlab_token]"
    assert payload["error"] == "pipeline not found: 404 for token [REDACTED:github_token]"
    assert (payload["jobs"], payload["pipeline_at"]) == (["7001", "7002"], "2026-11-23T06:00:00.000Z")
    assert leaked(GLPAT, stored(results_store, schema.failure_events)) == []
    assert leaked(GHP, stored(results_store, schema.failure_events)) == []
    assert triage.claim_event(results_store, ev, run_id="r2", now=T0 + MINUTE)[:2] == (event_id, False)  # dedup


# -- notifications owed ------------------------------------------------------------------------------
KEYS = {"slack": "triage:attention:slack:", "telegram": "triage:attention:telegram:"}


def test_attention_owed_until_every_channel_has_it(results_store: ResultsStore) -> None:
    for mid in ("a@x", "b@x", "c@x"):
        triage.record_intake(results_store, {"source": "email", "message_id": mid, "status": "needs_attention"}, now=T0)
    triage.record_intake(results_store, {"source": "email", "message_id": "ok@x", "status": "ignored"}, now=T0)

    def deliver(channel: str, mid: str, ok: bool = True) -> None:
        key = f"{KEYS[channel]}{triage.attention_digest(mid)}"
        assert results_store.claim_notification(key, channel)
        if ok:
            results_store.notification_sent(key, message_ref="ref")
        else:
            results_store.notification_failed(key, "down")

    deliver("slack", "a@x")
    deliver("telegram", "a@x")  # a: everywhere
    deliver("slack", "b@x")
    deliver("telegram", "b@x", ok=False)  # b: Telegram failed
    owed = triage.attention_owed(results_store, KEYS)
    assert [r["message_id"] for r in owed] == ["b@x", "c@x"]
    assert [r["message_id"] for r in triage.attention_owed(results_store, {"slack": KEYS["slack"]})] == ["c@x"]
    assert [r["message_id"] for r in triage.attention_owed(results_store, KEYS, limit=1)] == ["b@x"]


def test_attention_digest_is_stable_and_short() -> None:
    assert triage.attention_digest("a@x") == triage.attention_digest("a@x")
    assert re.fullmatch(r"[0-9a-f]{32}", triage.attention_digest("a@x"))
    assert triage.attention_digest("a@x") != triage.attention_digest("b@x")


def test_notification_ref_only_for_sent(results_store: ResultsStore) -> None:
    assert results_store.claim_notification("k-sent", "slack")
    results_store.notification_sent("k-sent", message_ref="1.000200")
    assert results_store.claim_notification("k-failed", "slack")
    results_store.notification_failed("k-failed", "boom")
    assert triage.notification_ref(results_store, "k-sent") == "1.000200"
    assert triage.notification_ref(results_store, "k-failed") is None
    assert triage.notification_ref(results_store, "k-unknown") is None


def test_an_event_another_run_is_announcing_is_not_owed_to_this_run(results_store: ResultsStore) -> None:
    """Two runs at once (the hourly sweep and the mail watcher's run): the one that claimed the pipeline
    announces it; the other sends it only when that run's notification failed or its claim went stale."""
    event_id, mine, _ = triage.claim_event(results_store, event(), run_id="run-a", now=T0)
    assert mine
    triage.update_event(results_store, event_id, state="analysed", now=T0 + MINUTE)  # archive, before a's notify
    [analysed] = triage.events_in_state(results_store, "analysed")
    assert triage.owed_by_another_run(analysed, run_id="run-a", now=T0 + MINUTE)  # its own
    assert not triage.owed_by_another_run(analysed, run_id="run-b", now=T0 + MINUTE)
    assert triage.owed_by_another_run(analysed, run_id="run-b", now=T0 + 61 * MINUTE)  # stale claim
    triage.update_event(results_store, event_id, notify_failed_at=(T0 + 2 * MINUTE).isoformat())
    [failed] = triage.events_in_state(results_store, "analysed")
    assert triage.owed_by_another_run(failed, run_id="run-b", now=T0 + 3 * MINUTE)  # a's send failed
    assert failed["payload"]["claimed_by"] == "run-a"
