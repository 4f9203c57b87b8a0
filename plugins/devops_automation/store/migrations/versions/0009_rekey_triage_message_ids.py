"""Rekey what ``ci_failure_triage``'s intake stored under a raw Message-ID before commit ecd9f0e:
``intake_messages.message_id`` becomes the key the code gives it now (``store.intake_key``), and the
needs-attention ``notifications`` are renamed to match.

0008 redacted the other columns but left ``message_id`` alone, so a Message-ID that carries a secret
(``<ghp_...@host>``) still held it, and that mail seen again would be keyed differently by the current
code and get a second row. A Message-ID the redactor leaves alone is its own key (every GitLab one, and
the ``sha256:`` key of a mail without one): those rows are not written. Otherwise the key is the
redacted Message-ID plus ``#sha256:`` and the SHA-256 of the original, cut to :data:`MESSAGE_ID_CHARS`
(the stored Message-ID is the whole original: ``message_id_of`` never gives more than 998 characters).
A key maps to itself, so a row stored since ecd9f0e is left alone, and running this again changes
nothing.

When the mail was seen again after ecd9f0e, a row with ``(source, new key)`` already exists. That row
is kept: it holds the mail's current state (its status and folder are what the last run that saw the
mail decided and where it put it). It takes from the old row what it lacks (``event_id``, ``reason``,
``sender``, ``subject``, ``folder``, ``size_bytes`` where it has none), the earlier ``received_at``
(when the mail was first seen) and the later ``updated_at``; the old row is then deleted. Nothing else
refers to an intake row by its id.

A needs-attention report's ``notifications.dedup_key`` is a channel prefix (:data:`ATTENTION_PREFIXES`)
plus the SHA-256 digest of the stored Message-ID (``store.attention_digest``), so each key of an old
Message-ID is renamed to the key of its new one: ``attention_owed`` then neither reports again a mail
already reported nor forgets one still owed. When the renamed key already exists (the mail was
reported again under its new key), "sent" wins: an old key that was sent replaces a new one that was
not; otherwise the old one is dropped (the new one is sent, or neither is and the mail is still owed).

Nothing else in the results store holds the Message-ID: ``failure_events`` (columns and payload) and
``failure_analyses`` hold what the pipeline and GitLab said, ``notifications.error`` the channel's API
error, never the message text; the web UI and the read API do not read ``intake_messages``. What the
DAG put in Airflow's own database before ecd9f0e (XComs, task logs) is outside this store.

Rows are read in batches of :data:`BATCH` by primary key (keyset), only their id, source and
Message-ID (a whole row only for a merge), so memory stays bounded; the notifications of a batch's
rekeyed rows are looked up by their exact keys. Only rekeyed rows, merged rows and their notifications
are written. The whole revision is one transaction (``env.py``), so either every row is rekeyed or none.

Downgrade does nothing: the original Message-ID cannot be recovered from its key, and the older code
reads a rekeyed row as it reads any other (only a mail seen again would get a row of its raw
Message-ID, as before this revision).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from alembic import op

from devops_automation.store.schema import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

log = logging.getLogger("devops_automation.store")

#: Rows read per query (and held in memory).
BATCH = 500

# The key rule of the workflow's ``devops_automation.workflows.ci_failure_triage.store`` (``intake_key``,
# ``attention_digest``, and the operators' ``TriageNotifyOperator.ATTENTION_KEYS``) as of this revision;
# written out here because the store package never imports a workflow (README "Layout"), and so that a
# later change there does not change this history.
MESSAGE_ID_CHARS = 998
KEY_HASH = "#sha256:"
ATTENTION_PREFIXES = ("triage:attention:slack:", "triage:attention:telegram:")
#: intake_messages columns the kept row takes from the old one when it has none
FILLED = ("event_id", "reason", "sender", "subject", "folder", "size_bytes")

intake_messages = sa.table(
    "intake_messages",
    sa.column("id", sa.Integer),
    sa.column("source", sa.String),
    sa.column("message_id", sa.String),
    sa.column("event_id", sa.Integer),
    sa.column("reason", sa.Text),
    sa.column("sender", sa.String),
    sa.column("subject", sa.Text),
    sa.column("folder", sa.String),
    sa.column("size_bytes", sa.Integer),
    sa.column("received_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
)
notifications = sa.table(
    "notifications", sa.column("id", sa.Integer), sa.column("dedup_key", sa.String), sa.column("status", sa.String)
)


def _redact_text() -> Callable[[str], str]:
    # Imported only when there is a row to look at: ci_logs pulls in jinja2 and pydantic.
    from devops_automation.ci_logs.redact import redact_text

    return redact_text


def _key(message_id: str, redact_text: Callable[[str], str]) -> str:
    """The key the intake stores for ``message_id`` (``intake_key``)."""
    red = redact_text(message_id)
    if red == message_id:
        return message_id[:MESSAGE_ID_CHARS]
    suffix = KEY_HASH + hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()
    return red[: MESSAGE_ID_CHARS - len(suffix)] + suffix


def _digest(message_id: str) -> str:
    """What a needs-attention report's dedup key ends with (``attention_digest``)."""
    return hashlib.sha256(message_id.encode()).hexdigest()[:32]


def _merged(old: Mapping[str, Any], kept: Mapping[str, Any]) -> dict[str, Any]:
    """The changes that give the kept row what only the old one has (see the module docstring)."""
    changes = {name: old[name] for name in FILLED if kept[name] is None and old[name] is not None}
    if old["received_at"] < kept["received_at"]:
        changes["received_at"] = old["received_at"]
    if old["updated_at"] is not None and (kept["updated_at"] is None or old["updated_at"] > kept["updated_at"]):
        changes["updated_at"] = old["updated_at"]
    return changes


def _rename_notifications(conn: sa.Connection, digests: Mapping[str, str]) -> tuple[int, int]:
    """Rename each attention key ending in an old digest to the new one; returns (renamed, dropped)."""
    n = notifications
    renames = {prefix + old: prefix + new for old, new in digests.items() for prefix in ATTENTION_PREFIXES}
    if not renames:
        return 0, 0
    rows = conn.execute(sa.select(n.c.id, n.c.dedup_key, n.c.status).where(n.c.dedup_key.in_(sorted(renames))))
    renamed = dropped = 0
    for row in rows.mappings().all():
        target = renames[row["dedup_key"]]
        there = conn.execute(sa.select(n.c.id, n.c.status).where(n.c.dedup_key == target)).mappings().first()
        if there is not None:
            dropped += 1
            if there["status"] == "sent" or row["status"] != "sent":
                conn.execute(sa.delete(n).where(n.c.id == row["id"]))
                continue
            conn.execute(sa.delete(n).where(n.c.id == there["id"]))  # sent wins
        conn.execute(sa.update(n).where(n.c.id == row["id"]).values(dedup_key=target))
        renamed += 1
    return renamed, dropped


def _rekey(conn: sa.Connection) -> dict[str, int]:
    """Rekey every intake row not stored under its key; returns the counts logged."""
    t = intake_messages
    counts = dict.fromkeys(("rekeyed", "merged", "renamed", "dropped"), 0)
    redact_text: Callable[[str], str] | None = None
    last_id = None
    while True:
        query = sa.select(t.c.id, t.c.source, t.c.message_id).order_by(t.c.id).limit(BATCH)
        if last_id is not None:
            query = query.where(t.c.id > last_id)
        batch = conn.execute(query).mappings().all()
        if not batch:
            return counts
        if redact_text is None:
            redact_text = _redact_text()
        digests: dict[str, str] = {}
        for row in batch:
            key = _key(row["message_id"], redact_text)
            if key == row["message_id"]:
                continue
            kept = conn.execute(sa.select(t).where(t.c.source == row["source"], t.c.message_id == key)).mappings()
            kept_row = kept.first()
            if kept_row is None:
                conn.execute(sa.update(t).where(t.c.id == row["id"]).values(message_id=key))
                counts["rekeyed"] += 1
            else:
                old = conn.execute(sa.select(t).where(t.c.id == row["id"])).mappings().one()
                changes = _merged(old, kept_row)
                if changes:
                    conn.execute(sa.update(t).where(t.c.id == kept_row["id"]).values(**changes))
                conn.execute(sa.delete(t).where(t.c.id == row["id"]))
                counts["merged"] += 1
            digests[_digest(row["message_id"])] = _digest(key)
        renamed, dropped = _rename_notifications(conn, digests)
        counts["renamed"] += renamed
        counts["dropped"] += dropped
        last_id = batch[-1]["id"]


def upgrade() -> None:
    counts = _rekey(op.get_bind())
    log.info(
        "Rekeyed %d intake_messages rows stored under a Message-ID that carries a secret, merged %d into the row "
        "the mail got again; renamed %d needs-attention notifications, dropped %d the new key already had",
        counts["rekeyed"],
        counts["merged"],
        counts["renamed"],
        counts["dropped"],
    )


def downgrade() -> None:
    """Nothing to undo: a key cannot be turned back into the Message-ID it hides, and the older code reads
    a rekeyed row as it reads any other."""
