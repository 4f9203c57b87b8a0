"""Migration 0008: the ci_failure_triage rows stored raw before ecd9f0e are redacted in place (SQLite and
PostgreSQL): every planted secret is gone, keys and other columns are kept, clean rows are never rewritten,
and running the revision again writes nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from devops_automation.ci_logs.redact import redact_obj, redact_text
from devops_automation.store import ResultsStore, schema
from tests.plugins.devops_automation.store.migration_rows import downgrade, log_writes, raw, typed, writes

T0 = dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(minutes=5)

GHP = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
BEARER = "9f8Ak2LmQ7xZ3pWv5NcR1tYb"  # after "Authorization: Bearer "
URL_PASSWORD = "S3cr3tPassw0rd"
SHORT_PASSWORD = "Zx9pQ"  # in a URL, where the column is too short for the others
SECRETS = (GHP, BEARER, URL_PASSWORD, SHORT_PASSWORD)

#: the migration's batch size; rows enough for three batches, a dirty row in each
BATCH = 500
CLEAN_PER_GAP = BATCH + 20
TEXT_INTAKE = ("reason", "sender", "subject")
TEXT_EVENT = ("project_path", "ref", "sha", "status", "source", "pipeline_url", "payload")


def dirty_intake(n: int, event_id: int) -> dict[str, Any]:
    return {
        "source": "email",
        "message_id": f"<dirty-{n}@mail.example.com>",
        "event_id": event_id,
        "status": "needs_attention",
        # redacted, then cut to 2,000 characters
        "reason": f"unknown sender; it said Authorization: Bearer {BEARER}\n" + "the rest of the explanation\n" * 100,
        # 510 characters raw (the column holds 512), 519 redacted: cut to 512
        "sender": "Mallory <mallory@evil.example> " + "x" * 429 + f" https://deploy:{URL_PASSWORD}@gitlab.example.com/",
        "subject": f"Failed pipeline for main | token {GHP}",
        "folder": "needs-attention",
        "size_bytes": 4321,
        "received_at": T0,
        "updated_at": T1,
    }


def dirty_event(n: int) -> dict[str, Any]:
    return {
        "provider": "gitlab",
        "project_id": f"{n}",
        "pipeline_id": f"9{n}",
        "project_path": f"acme/{GHP}",
        "ref": f"feature/x Authorization: Bearer {BEARER}",
        "sha": GHP,
        "status": f"https://ci:{SHORT_PASSWORD}7@gl.io",  # 23 characters; redacted 40, cut to 32
        "source": f"ftp://u:{SHORT_PASSWORD}@h",  # 15 characters; redacted 34, cut to 16
        "pipeline_url": f"https://deploy:{URL_PASSWORD}@gitlab.example.com/acme/api/-/pipelines/9{n}",
        "state": "analysed",
        "payload": {
            "claimed_by": "manual__2026-11-16T12:00:00+00:00",
            "claimed_at": T0.isoformat(),
            "sources": ["webhook", f"ftp://u:{SHORT_PASSWORD}@h"],
            "error": f"GET failed: Authorization: Bearer {BEARER}",
            "jobs": [{"id": 7, "name": f"deploy {GHP}"}],
            "count": 3,
        },
        "received_at": T0,
        "updated_at": T1,
    }


def clean_intake(n: int, event_id: int | None) -> dict[str, Any]:
    return {
        "source": "email",
        "message_id": f"<clean-{n}@gitlab.example.com>",
        "event_id": event_id,
        "status": "accepted",
        # longer than the new cut: left whole, since there is nothing to redact
        "reason": ("a failed pipeline mail, token count 4000, see https://gitlab.example.com/acme/api\n" * 30)
        if n == 0
        else "failed pipeline",
        "sender": "GitLab <gitlab@example.com>",
        "subject": "Échec du pipeline ✓ acme/api | main | 1a2b3c4d  ",
        "folder": "processed",
        "size_bytes": n,
        "received_at": T0,
        "updated_at": None,
    }


def clean_event(n: int) -> dict[str, Any]:
    return {
        "provider": "gitlab",
        "project_id": "42",
        "pipeline_id": str(n),
        "project_path": "acme/api",
        "ref": "main",
        "sha": "0123456789abcdef0123456789abcdef01234567",
        "status": "failed",
        "source": "email",
        "pipeline_url": f"https://gitlab.example.com/acme/api/-/pipelines/{n}",
        "state": "notified",
        "payload": {"claimed_by": "scheduled__2026-11-16T12:00:00+00:00", "sources": ["email"], "jobs": [1, 2]},
        "received_at": T0,
        "updated_at": T1,
    }


def insert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> list[int]:
    return list(conn.execute(sa.insert(table).returning(table.c.id), rows).scalars())


def seed(store: ResultsStore) -> tuple[list[int], list[int]]:
    """Three dirty rows per table (the first, one in the middle, the last), clean ones between: ids of the dirty."""
    dirty_events, dirty_intakes = [], []
    with store.engine.begin() as conn:
        for gap in range(3):
            (event_id,) = insert(conn, schema.failure_events, [dirty_event(gap)])
            dirty_events.append(event_id)
            dirty_intakes += insert(conn, schema.intake_messages, [dirty_intake(gap, event_id)])
            if gap < 2:
                first = gap * CLEAN_PER_GAP
                ids = insert(conn, schema.failure_events, [clean_event(first + i) for i in range(CLEAN_PER_GAP)])
                insert(
                    conn,
                    schema.intake_messages,
                    [clean_intake(first + i, ids[i] if i % 3 else None) for i in range(CLEAN_PER_GAP)],
                )
    return dirty_events, dirty_intakes


def rewrites(store: ResultsStore) -> list[tuple[str, int]]:
    """``(table, row id)`` of every UPDATE recorded since ``log_writes``."""
    return [(table, row_id) for table, _, row_id in writes(store)]


def expected_payload(payload: dict[str, Any]) -> dict[str, Any]:
    new = redact_obj(payload)
    assert isinstance(new, dict)
    return {
        **new,
        "sources": [n if n == o else n[:16] for o, n in zip(payload["sources"], new["sources"], strict=True)],
    }


def test_0008_redacts_rows_stored_raw_and_rewrites_nothing_else(results_url: str) -> None:
    store = ResultsStore(results_url, auto_migrate=False)
    store.migrate("0007")
    dirty_events, dirty_intakes = seed(store)
    log_writes(store, ("intake_messages", "failure_events"), ops=("UPDATE",))
    raw_before = {t: raw(store, t) for t in ("intake_messages", "failure_events")}
    before_intake, before_events = typed(store, schema.intake_messages), typed(store, schema.failure_events)
    assert len(before_intake) == len(before_events) == 3 + 2 * CLEAN_PER_GAP
    assert dirty_events == [1, CLEAN_PER_GAP + 2, 2 * CLEAN_PER_GAP + 3]  # in the first, second and third batch
    assert all(s in repr(before_intake) + repr(before_events) for s in SECRETS)  # planted

    store.migrate("0008")
    assert store.current_revision() == "0008"

    # only the dirty rows were written, each once
    assert rewrites(store) == sorted(
        [("failure_events", i) for i in dirty_events] + [("intake_messages", i) for i in dirty_intakes]
    )
    raw_after = {t: raw(store, t) for t in ("intake_messages", "failure_events")}
    intake, events = typed(store, schema.intake_messages), typed(store, schema.failure_events)
    assert not any(s in repr(intake) + repr(events) + repr(raw_after) for s in SECRETS)

    # clean rows: byte-identical
    for t, dirty in (("intake_messages", dirty_intakes), ("failure_events", dirty_events)):
        assert raw_after[t].keys() == raw_before[t].keys()
        assert {i: r for i, r in raw_after[t].items() if i not in dirty} == {
            i: r for i, r in raw_before[t].items() if i not in dirty
        }
    assert len(intake[2]["reason"]) > 2000  # a clean text longer than the cut stays whole

    # dirty rows: the text columns redacted before they are cut, everything else as it was
    for i in dirty_intakes:
        old, new = before_intake[i], intake[i]
        assert {k: v for k, v in new.items() if k not in TEXT_INTAKE} == {
            k: v for k, v in old.items() if k not in TEXT_INTAKE
        }
        assert new["reason"] == redact_text(old["reason"])[:2000]
        assert new["reason"].startswith("unknown sender; it said Authorization: Bearer [REDACTED:")
        assert len(new["reason"]) == 2000 < len(redact_text(old["reason"]))
        assert len(old["sender"]) == 510
        assert new["sender"] == redact_text(old["sender"])[:512]
        assert new["sender"].endswith(" https://deploy:[REDACTED:url_password]@gitlab.examp")
        assert new["subject"] == "Failed pipeline for main | token [REDACTED:github_token]"
    for i in dirty_events:
        old, new = before_events[i], events[i]
        assert {k: v for k, v in new.items() if k not in TEXT_EVENT} == {
            k: v for k, v in old.items() if k not in TEXT_EVENT
        }
        assert (new["provider"], new["project_id"], new["pipeline_id"]) == (
            old["provider"],
            old["project_id"],
            old["pipeline_id"],
        )
        assert new["project_path"] == "acme/[REDACTED:github_token]"
        assert new["ref"] == "feature/x Authorization: Bearer [REDACTED:authorization]"
        assert new["sha"] == "[REDACTED:github_token]"
        assert new["status"] == redact_text(old["status"])[:32] == "https://ci:[REDACTED:url_passwor"
        assert new["source"] == "ftp://u:[REDACTE"
        assert new["pipeline_url"] == redact_text(old["pipeline_url"])
        assert new["pipeline_url"].startswith("https://deploy:[REDACTED:url_password]@gitlab.example.com/")
        assert new["payload"] == expected_payload(old["payload"])
        assert new["payload"]["sources"] == ["webhook", "ftp://u:[REDACTE"]
        assert new["payload"]["claimed_by"] == old["payload"]["claimed_by"]
        assert new["payload"]["jobs"] == [{"id": 7, "name": "deploy [REDACTED:github_token]"}]
        assert new["payload"]["count"] == 3
    assert [intake[i]["event_id"] for i in dirty_intakes] == dirty_events  # the links are kept

    # at 0008, migrating to it again runs nothing; downgrading keeps the redacted rows; the revision again writes
    # nothing
    store.migrate("0008")
    downgrade(store, "0007")
    assert {t: raw(store, t) for t in raw_after} == raw_after
    store.migrate("0008")
    assert store.current_revision() == "0008"
    assert {t: raw(store, t) for t in raw_after} == raw_after
    assert len(rewrites(store)) == 6
    store.dispose()
