"""Redact what ``ci_failure_triage``'s intake stored before it redacted its writes (commit ecd9f0e):
``intake_messages.reason``, ``.sender``, ``.subject`` and ``failure_events``' text columns
(``project_path``, ``ref``, ``sha``, ``status``, ``source``, ``pipeline_url``) and ``payload``.

A value is redacted (:func:`devops_automation.ci_logs.redact.redact_text`; every string in the payload
through ``redact_obj``) before it is cut to its column, as the workflow's ``store.redacted`` does
now. A value the redactor leaves alone is left alone, cut or not, and a row with nothing to redact is
not written at all. The keys stay as they are: ``intake_messages.source``/``message_id`` and
``failure_events.provider``/``project_id``/``pipeline_id`` (``message_id`` is what dedup finds a
mail by). Rows are read in batches of :data:`BATCH` by primary key (keyset), only the columns this
revision rewrites, so memory stays bounded; the whole revision is one transaction (``env.py``), so
either every row is redacted or none is. Running it again changes nothing: redacted text redacts to
itself.

Downgrade does nothing: the secrets are gone, and redacted text works with the code of 0007 too.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from alembic import op

from devops_automation.store.schema import JSONType

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

log = logging.getLogger("devops_automation.store")

#: Rows read per query (and held in memory) per table.
BATCH = 500

# Characters kept after redaction, per column (None: all). The same cuts as the workflow's
# ``devops_automation.workflows.ci_failure_triage.store`` (EVENT_TEXT, INTAKE_TEXT, and ``source``
# cut to 16 in ``claim_event``) as of this revision; written out here because the store package never
# imports a workflow (README "Layout"), and so that a later change there does not change this history.
INTAKE_TEXT: dict[str, int | None] = {"reason": 2000, "sender": 512, "subject": None}
EVENT_TEXT: dict[str, int | None] = {
    "project_path": 512,
    "ref": 512,
    "sha": 64,
    "status": 32,
    "source": 16,
    "pipeline_url": None,
}
#: ``failure_events.payload["sources"]`` holds ``source`` values: cut like the column.
SOURCE_CHARS = 16

intake_messages = sa.table(
    "intake_messages", sa.column("id", sa.Integer), *(sa.column(name, sa.Text) for name in INTAKE_TEXT)
)
failure_events = sa.table(
    "failure_events",
    sa.column("id", sa.Integer),
    *(sa.column(name, sa.Text) for name in EVENT_TEXT),
    sa.column("payload", JSONType),
)

Redactors = tuple[Callable[[str], str], Callable[[object], object]]


def _redactors() -> Redactors:
    # Imported only when there is a row to look at: ci_logs pulls in jinja2 and pydantic.
    from devops_automation.ci_logs.redact import redact_obj, redact_text

    return redact_text, redact_obj


def _text_changes(row: Mapping[str, Any], limits: Mapping[str, int | None], redact_text: Callable[[str], str]) -> dict:
    changes: dict[str, Any] = {}
    for name, limit in limits.items():
        value = row[name]
        if value is None:
            continue
        new = redact_text(value)
        if new != value:
            changes[name] = new[:limit] if limit is not None else new
    return changes


def _payload(payload: Any, redact_obj: Callable[[object], object]) -> Any:
    """The payload with every string redacted; a ``sources`` entry the redactor changed is cut like ``source``."""
    new = redact_obj(payload)
    if isinstance(payload, dict) and isinstance(new, dict):
        old_sources, new_sources = payload.get("sources"), new.get("sources")
        if isinstance(old_sources, list) and isinstance(new_sources, list):
            new["sources"] = [
                n[:SOURCE_CHARS] if isinstance(n, str) and n != o else n
                for o, n in zip(old_sources, new_sources, strict=True)
            ]
    return new


def _redact_table(
    conn: sa.Connection, table: sa.TableClause, limits: Mapping[str, int | None], with_payload: bool
) -> int:
    """Redact ``table``'s columns in ``limits`` (and its payload); returns the number of rows rewritten."""
    id_col = table.c.id
    columns = [table.c[name] for name in limits] + ([table.c.payload] if with_payload else [])
    redactors: Redactors | None = None
    last_id, rewritten = None, 0
    while True:
        query = sa.select(id_col, *columns).order_by(id_col).limit(BATCH)
        if last_id is not None:
            query = query.where(id_col > last_id)
        batch = conn.execute(query).mappings().all()
        if not batch:
            return rewritten
        if redactors is None:
            redactors = _redactors()
        redact_text, redact_obj = redactors
        for row in batch:
            changes = _text_changes(row, limits, redact_text)
            if with_payload and row["payload"] is not None:
                payload = _payload(row["payload"], redact_obj)
                if payload != row["payload"]:
                    changes["payload"] = payload
            if changes:
                conn.execute(sa.update(table).where(id_col == row["id"]).values(**changes))
                rewritten += 1
        last_id = batch[-1]["id"]


def upgrade() -> None:
    conn = op.get_bind()
    intake = _redact_table(conn, intake_messages, INTAKE_TEXT, with_payload=False)
    events = _redact_table(conn, failure_events, EVENT_TEXT, with_payload=True)
    log.info("Redacted %d intake_messages and %d failure_events rows stored before redaction", intake, events)


def downgrade() -> None:
    """Nothing to undo: redaction cannot be reversed, and the older code reads redacted rows as it read raw ones."""
