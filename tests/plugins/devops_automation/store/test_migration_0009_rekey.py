"""Migration 0009: an intake row stored before ecd9f0e under a Message-ID that carries a secret gets the key the
code gives it now, on SQLite and PostgreSQL: the secret is gone from every table, the current code finds the
row by the mail's Message-ID, a mail seen again since (a second row) is merged into one, the needs-attention
notifications follow their mail so nothing is reported twice and nothing owed is lost, clean rows are never
rewritten, and running the revision again writes nothing."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa

from devops_automation.store import ResultsStore, schema
from devops_automation.workflows.ci_failure_triage import store as triage
from tests.plugins.devops_automation.store.migration_rows import downgrade, log_writes, raw, typed, writes

T0 = dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)  # the mail first seen (before ecd9f0e)
T1 = T0 + dt.timedelta(days=3)  # seen again (after ecd9f0e)

GHP = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
GLPAT = "glpat-Zq7Xw2Rk9Vb4Tn6Lp3Hs"
SECRETS = (GHP, GLPAT)
#: Message-IDs as ``message_id_of`` gives them: reported everywhere; reported on Slack only; accepted, then
#: seen again; reported on Slack, seen again and reported on Telegram (longer than the key's room: cut)
MID1 = f"{GHP}@evil.example"
MID2 = f"deploy.{GHP}@evil.example"
MID3 = f"{GLPAT}@relay.example"
MID4 = "y" * 950 + "." + GHP + "@h"
KEYS = {"slack": "triage:attention:slack:", "telegram": "triage:attention:telegram:"}

#: the migration's batch size; rows enough for three batches, a secret Message-ID in each
BATCH = 500
CLEAN_PER_GAP = BATCH + 20
MIGRATION = (
    Path(__file__).parents[4] / "plugins/devops_automation/store/migrations/versions/0009_rekey_triage_message_ids.py"
)


def intake(message_id: str, status: str, **fields: Any) -> dict[str, Any]:
    return {
        "source": "email",
        "message_id": message_id,
        "event_id": None,
        "status": status,
        "reason": None,
        "sender": None,
        "subject": None,
        "folder": None,
        "size_bytes": None,
        "received_at": T0,
        "updated_at": None,
        **fields,
    }


def clean(n: int) -> dict[str, Any]:
    return intake(
        f"pipeline_{n}@gitlab.example.com",
        "processed",
        reason="failed pipeline",
        sender="GitLab <gitlab@example.com>",
        subject="Échec du pipeline ✓ acme/api | main",
        folder="processed",
        size_bytes=n,
    )


def notification(key: str, status: str, ref: str | None = None) -> dict[str, Any]:
    return {
        "dedup_key": key,
        "channel": key.split(":")[2] if key.startswith("triage:attention:") else "slack",
        "target": "C123",
        "status": status,
        "attempts": 1,
        "message_ref": ref,
        "error": None if status == "sent" else "channel down",
        "created_at": T0,
        "sent_at": T0 if status == "sent" else None,
    }


def attention(channel: str, message_id: str) -> str:
    return KEYS[channel] + triage.attention_digest(message_id)


def insert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> list[int]:
    return list(conn.execute(sa.insert(table).returning(table.c.id), rows).scalars())


def seed(store: ResultsStore) -> dict[str, int]:
    """The rows of the four Message-IDs (``old3``/``new3``: the row before and after ecd9f0e), two clean
    needs-attention mails (one owed, one reported) and clean rows between: their ids by name."""
    key3, key4 = triage.intake_key(MID3), triage.intake_key(MID4)
    with store.engine.begin() as conn:
        (event_id,) = insert(
            conn,
            schema.failure_events,
            [{"provider": "gitlab", "project_id": "42", "pipeline_id": "9001", "source": "email", "received_at": T0}],
        )
        ids = {"event": event_id}
        (ids["mid1"],) = insert(
            conn, schema.intake_messages, [intake(MID1, "needs_attention", reason="unknown_sender: x", folder="na")]
        )
        insert(conn, schema.intake_messages, [clean(i) for i in range(CLEAN_PER_GAP)])
        (ids["mid2"],) = insert(conn, schema.intake_messages, [intake(MID2, "needs_attention", reason="spoofed: y")])
        insert(conn, schema.intake_messages, [clean(CLEAN_PER_GAP + i) for i in range(CLEAN_PER_GAP)])
        ids["old3"], ids["old4"], ids["new3"], ids["new4"], ids["owed"], ids["done"] = insert(
            conn,
            schema.intake_messages,
            [
                intake(
                    MID3,
                    "accepted",
                    event_id=event_id,
                    sender="GitLab <gitlab@example.com>",
                    subject="Failed pipeline",
                    folder="INBOX",
                    size_bytes=4321,
                    updated_at=T0 + dt.timedelta(minutes=5),
                ),
                intake(MID4, "needs_attention", reason="unknown_sender: old", sender="m@evil.example", folder="na"),
                intake(key3, "processed", folder="processed", received_at=T1, updated_at=T1),
                intake(key4, "needs_attention", reason="unknown_sender: new", folder="na", received_at=T1),
                intake("stranger@mail.example", "needs_attention", reason="unknown_sender: z"),
                intake("known@mail.example", "needs_attention", reason="unknown_sender: w"),
            ],
        )
        rows = [
            notification(attention("slack", MID1), "sent", "1.0001"),
            notification(attention("telegram", MID1), "sent", "11"),
            notification(attention("slack", MID2), "sent", "1.0002"),
            notification(attention("telegram", MID2), "failed"),
            notification(attention("slack", MID4), "sent", "1.0004"),  # sent before ecd9f0e ...
            notification(attention("telegram", MID4), "failed"),
            notification(attention("slack", key4), "failed"),  # ... failed after: the old one wins
            notification(attention("telegram", key4), "sent", "44"),  # sent after: this one wins
            notification(attention("slack", "known@mail.example"), "sent", "1.0005"),
            notification(attention("telegram", "known@mail.example"), "sent", "55"),
            notification("triage:slack:1", "sent", "1.0006"),
        ]
        names = ["1s", "1t", "2s", "2t", "old4s", "old4t", "new4s", "new4t", "done_s", "done_t", "event"]
        ids.update(zip([f"n{name}" for name in names], insert(conn, schema.notifications, rows), strict=True))
    return ids


def test_0009_rekeys_secret_message_ids_merges_second_rows_and_moves_their_notifications(results_url: str) -> None:
    store = ResultsStore(results_url, auto_migrate=False)
    store.migrate("0008")
    ids = seed(store)
    log_writes(store, ("intake_messages", "notifications"))
    tables = ("intake_messages", "notifications", "failure_events")
    raw_before = {t: raw(store, t) for t in tables}
    before = typed(store, schema.intake_messages)
    assert len(before) == 8 + 2 * CLEAN_PER_GAP
    assert [ids["mid1"], ids["mid2"], ids["old3"]] == [1, CLEAN_PER_GAP + 2, 2 * CLEAN_PER_GAP + 3]  # 3 batches
    assert all(s in repr(before) for s in SECRETS)  # planted
    key1, key2, key3, key4 = (triage.intake_key(m) for m in (MID1, MID2, MID3, MID4))
    assert key1 == "[REDACTED:github_token]@evil.example#sha256:" + hashlib.sha256(MID1.encode()).hexdigest()
    assert len(key4) == 998

    store.migrate("0009")
    assert store.current_revision() == "0009"

    # only the rows of the four Message-IDs and their notifications were written or deleted, each once
    assert writes(store) == sorted(
        [("intake_messages", "UPDATE", ids[n]) for n in ("mid1", "mid2", "new3", "new4")]
        + [("intake_messages", "DELETE", ids[n]) for n in ("old3", "old4")]
        + [("notifications", "UPDATE", ids[n]) for n in ("n1s", "n1t", "n2s", "n2t", "nold4s")]
        + [("notifications", "DELETE", ids[n]) for n in ("nnew4s", "nold4t")]
    )
    raw_after = {t: raw(store, t) for t in tables}
    assert not any(s in repr(raw_after) for s in SECRETS)  # gone from every table
    assert raw_after["failure_events"] == raw_before["failure_events"]
    gone = {ids[n] for n in ("mid1", "mid2", "old3", "old4", "new3", "new4")}
    assert {i: r for i, r in raw_after["intake_messages"].items() if i not in gone} == {
        i: r for i, r in raw_before["intake_messages"].items() if i not in gone
    }
    assert raw_after["intake_messages"].keys() == raw_before["intake_messages"].keys() - {ids["old3"], ids["old4"]}

    # rekeyed in place: only the key changed
    after = typed(store, schema.intake_messages)
    for name, key in (("mid1", key1), ("mid2", key2)):
        assert after[ids[name]] == {**before[ids[name]], "message_id": key}
    # seen again: the row the mail got since is kept (its state), given what only the old one had
    assert after[ids["new3"]] == {
        **before[ids["new3"]],
        **{k: before[ids["old3"]][k] for k in ("event_id", "sender", "subject", "size_bytes", "received_at")},
    }
    assert (after[ids["new3"]]["status"], after[ids["new3"]]["folder"], after[ids["new3"]]["event_id"]) == (
        "processed",
        "processed",
        ids["event"],
    )
    assert after[ids["new4"]] == {**before[ids["new4"]], "sender": "m@evil.example", "received_at": T0}
    assert after[ids["new4"]]["reason"] == "unknown_sender: new"

    # the current code finds each row by the mail's Message-ID, and by its key
    for mid, key, name in ((MID1, key1, "mid1"), (MID2, key2, "mid2"), (MID3, key3, "new3"), (MID4, key4, "new4")):
        row = triage.intake_row(store, "email", mid)
        assert row is not None
        assert (row["id"], row["message_id"]) == (ids[name], key)
        assert triage.intake_row(store, "email", key) == row

    # each report follows its mail; sent wins where the new key had one too
    notes = {r["dedup_key"]: r for r in typed(store, schema.notifications).values()}
    assert {k: (r["id"], r["status"], r["message_ref"]) for k, r in notes.items() if k.startswith("triage:att")} == {
        attention("slack", key1): (ids["n1s"], "sent", "1.0001"),
        attention("telegram", key1): (ids["n1t"], "sent", "11"),
        attention("slack", key2): (ids["n2s"], "sent", "1.0002"),
        attention("telegram", key2): (ids["n2t"], "failed", None),
        attention("slack", key4): (ids["nold4s"], "sent", "1.0004"),
        attention("telegram", key4): (ids["nnew4t"], "sent", "44"),
        attention("slack", "known@mail.example"): (ids["ndone_s"], "sent", "1.0005"),
        attention("telegram", "known@mail.example"): (ids["ndone_t"], "sent", "55"),
    }
    # what a later run reports: the mail whose Telegram report failed, and the one never reported; not again
    # the mails reported before (under their old key) nor the one reported on both channels across the two rows
    assert [r["message_id"] for r in triage.attention_owed(store, KEYS)] == [key2, "stranger@mail.example"]
    assert [r["message_id"] for r in triage.attention_owed(store, {"slack": KEYS["slack"]})] == [
        "stranger@mail.example"
    ]

    # at 0009, migrating to it again runs nothing; downgrading keeps the rekeyed rows; the revision again
    # writes nothing
    store.migrate("0009")
    downgrade(store, "0008")
    assert {t: raw(store, t) for t in tables} == raw_after
    store.migrate("0009")
    assert store.current_revision() == "0009"
    assert {t: raw(store, t) for t in tables} == raw_after
    assert len(writes(store)) == 13

    # the mail seen once more: its row, no second one
    triage.record_intake(store, {"source": "email", "message_id": MID1, "status": "needs_attention"}, now=T1)
    assert len(typed(store, schema.intake_messages)) == len(after)
    store.dispose()


def load_migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("migration_0009", MIGRATION)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "message_id",
    [MID1, MID2, MID3, MID4, "pipeline_1001@gitlab.example.com", "sha256:" + "0f" * 32, "x" * 998],
)
def test_0009s_frozen_rule_is_the_codes_as_of_this_revision(message_id: str) -> None:
    """The migration's copy gives the keys and digests the workflow gives now. Should the workflow's rule change,
    this fails: the keys stored until then need a migration of their own."""
    from devops_automation.ci_logs.redact import redact_text

    migration = load_migration()
    assert migration._key(message_id, redact_text) == triage.intake_key(message_id)
    assert migration._digest(message_id) == triage.attention_digest(message_id)
    assert migration.MESSAGE_ID_CHARS == triage.MESSAGE_ID_CHARS
    from devops_automation.workflows.ci_failure_triage.operators.notify import TriageNotifyOperator

    assert tuple(TriageNotifyOperator.ATTENTION_KEYS.values()) == migration.ATTENTION_PREFIXES
