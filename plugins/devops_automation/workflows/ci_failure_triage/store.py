"""Results-store operations of ``ci_failure_triage`` (SQLAlchemy Core, no Airflow imports).

The store is what makes the DAG idempotent and each failure analysed once, whatever told us of it:

* ``failure_events``: one row per (provider, project, pipeline). The first run that inserts it owns
  it (``payload.claimed_by`` = its run id); another run (the same failure by e-mail *and* webhook)
  leaves it alone. A retry of the owning run, ``force``, or a claim older than ``stale_after`` with
  no result takes it over. ``state``: ``new`` -> ``analysed`` (every job has an analysis) ->
  ``notified`` (every configured channel has its message); ``gone`` when GitLab no longer has the
  pipeline (nothing to analyse or announce).
* ``failure_analyses``: one row per (event, job), written as soon as the job is analysed, so a
  failed notification never loses an analysis.
* ``intake_messages``: every e-mail seen, by Message-ID, with what became of it.
* ``failure_fingerprints``: the same first error of the same job in the same project, with the
  Slack thread where it was first reported.

Nothing taken from a mail or a webhook is written raw: the event's text columns and payload, and the
intake row's sender, subject and reason are redacted (:func:`redacted`) before they are cut to their
column; a Message-ID the redactor would change is stored as :func:`intake_key` gives it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from devops_automation.store import ResultsStore, schema

PROVIDER = "gitlab"
DONE_STATES = frozenset({"analysed", "notified", "gone"})  # gone: the pipeline was deleted before we looked
#: failure_events columns taken from the event (a mail, a webhook, the run's conf): characters kept (None: all)
EVENT_TEXT = {"project_path": 512, "ref": 512, "sha": 64, "status": 32, "pipeline_url": None}
#: intake_messages columns taken from the e-mail: characters kept (None: all)
INTAKE_TEXT = {"reason": 2000, "sender": 512, "subject": None}
MESSAGE_ID_CHARS = 998  #: the RFC 5322 line limit, and the column's size


def redacted(value: Any, limit: int | None = None) -> str | None:
    """``value`` as text with every secret replaced (:func:`ci_logs.redact.redact_text`), then cut to
    ``limit`` characters: redacted before it is cut, so a cut never leaves the start of a secret the
    redactor no longer recognises. ``None`` stays ``None``."""
    if value is None:
        return None
    from devops_automation.ci_logs.redact import redact_text  # pulls in jinja2 and pydantic: only when writing

    text = redact_text(str(value))
    return text[:limit] if limit is not None else text


def intake_key(message_id: Any) -> str:
    """The key ``intake_messages`` stores for a Message-ID (or a webhook's Idempotency-Key).

    A Message-ID is chosen by whoever sends the mail, and the needs-attention folder takes mail from
    anyone, so it can carry a token like any other header. One the redactor leaves alone (every
    GitLab Message-ID, and the ``sha256:`` key of a mail without one) is its own key, cut to 998
    characters as before. Otherwise the key is the redacted Message-ID plus ``#sha256:`` and the
    SHA-256 of the original: the same Message-ID always gives the same key (dedup holds across runs),
    two different ones never share it, and the key maps to itself, so a stored key given back
    (archive, notify) finds its row."""
    text = str(message_id)
    red = redacted(text) or ""
    if red == text:
        return text[:MESSAGE_ID_CHARS]
    suffix = "#sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return red[: MESSAGE_ID_CHARS - len(suffix)] + suffix


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def parse_time(value: Any) -> dt.datetime | None:
    """GitLab times: ISO-8601 (``...Z``) or the webhook form ``2016-08-12 15:23:28 UTC``."""
    if not value:
        return None
    if isinstance(value, dt.datetime):
        return _utc(value)
    text = str(value).strip().replace(" UTC", "+00:00")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        return _utc(dt.datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text))
    except ValueError:
        return None


# -- events ------------------------------------------------------------------------------------------
def get_event(store: ResultsStore, event_id: int) -> dict[str, Any] | None:
    t = schema.failure_events
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t).where(t.c.id == event_id)).first()
    return dict(row._mapping) if row else None


def find_event(store: ResultsStore, project_id: str, pipeline_id: str) -> dict[str, Any] | None:
    t = schema.failure_events
    q = sa.select(t).where(
        t.c.provider == PROVIDER, t.c.project_id == str(project_id), t.c.pipeline_id == str(pipeline_id)
    )
    with store.engine.connect() as conn:
        row = conn.execute(q).first()
    return dict(row._mapping) if row else None


def claim_event(
    store: ResultsStore,
    event: Mapping[str, Any],
    *,
    run_id: str,
    now: dt.datetime,
    force: bool = False,
    stale_after: dt.timedelta = dt.timedelta(hours=1),
) -> tuple[int, bool, str]:
    """Record a pipeline failure; returns ``(event_id, mine, why)``.

    ``mine`` says whether this run should analyse it (see the module docstring)."""
    t = schema.failure_events
    source = redacted(event.get("source") or "manual", 16)
    row = {
        "provider": PROVIDER,
        "project_id": str(event["project_id"]),
        "pipeline_id": str(event["pipeline_id"]),
        **{name: redacted(event.get(name), limit) for name, limit in EVENT_TEXT.items()},
        "source": source,
        "state": "new",
        "payload": {"claimed_by": run_id, "claimed_at": now.isoformat(), "sources": [source]},
        "received_at": now,
        "updated_at": now,
    }
    row["status"] = row["status"] or "failed"
    with store.begin() as conn:
        inserted = store.insert_missing(t, [row], keys=["provider", "project_id", "pipeline_id"], conn=conn)
        current = conn.execute(
            sa.select(t).where(
                t.c.provider == PROVIDER, t.c.project_id == row["project_id"], t.c.pipeline_id == row["pipeline_id"]
            )
        ).first()
        assert current is not None
        cur = dict(current._mapping)
        payload = dict(cur.get("payload") or {})
        if inserted:
            return cur["id"], True, "new failure"
        if source not in payload.get("sources", []):
            payload["sources"] = [*payload.get("sources", []), source]
        owner = payload.get("claimed_by")
        claimed_at = parse_time(payload.get("claimed_at"))
        if force:
            why = "forced"
        elif cur["state"] in DONE_STATES:
            conn.execute(sa.update(t).where(t.c.id == cur["id"]).values(payload=payload))
            return cur["id"], False, f"already {cur['state']} (first told by {cur['source']})"
        elif owner == run_id:
            why = "retry of the run that claimed it"
        elif claimed_at is None or now - claimed_at > stale_after:
            why = f"claim by {owner} went stale"
        else:
            conn.execute(sa.update(t).where(t.c.id == cur["id"]).values(payload=payload))
            return cur["id"], False, f"being analysed by run {owner}"
        payload.update(claimed_by=run_id, claimed_at=now.isoformat())
        state = "new" if force else cur["state"]
        conn.execute(sa.update(t).where(t.c.id == cur["id"]).values(payload=payload, state=state, updated_at=now))
        return cur["id"], True, why


def update_event(
    store: ResultsStore, event_id: int, *, now: dt.datetime | None = None, state: str | None = None, **payload: Any
) -> None:
    """Set ``state`` and merge ``payload`` keys into the event's payload (every text in them redacted:
    the pipeline's fields can come from a mail or a webhook, an error names what it was given)."""
    from devops_automation.ci_logs.redact import redact_obj

    t = schema.failure_events
    with store.begin() as conn:
        cur = conn.execute(sa.select(t.c.payload).where(t.c.id == event_id)).scalar_one()
        values: dict[str, Any] = {"payload": {**(cur or {}), **redact_obj(payload)}} if payload else {}
        if state:
            values["state"] = state
        if now:
            values["updated_at"] = now
        if values:
            conn.execute(sa.update(t).where(t.c.id == event_id).values(**values))


def owed_by_another_run(
    event: Mapping[str, Any], *, run_id: str, now: dt.datetime, stale_after: dt.timedelta = dt.timedelta(hours=1)
) -> bool:
    """Whether this run should announce an event another run claimed (an ``analysed`` one it did not
    collect): only when that run's notification failed (``payload.notify_failed_at``) or its claim
    went stale. Otherwise the claiming run announces it itself: its analyses can be stored (and
    ``archive`` move the event to ``analysed``) a moment before its own ``notify`` runs, and two runs
    sending at once would both post the message."""
    payload = event.get("payload") or {}
    if payload.get("claimed_by") in (None, run_id) or payload.get("notify_failed_at"):
        return True
    claimed_at = parse_time(payload.get("claimed_at"))
    return claimed_at is None or now - claimed_at > stale_after


def events_in_state(store: ResultsStore, state: str, limit: int = 50) -> list[dict[str, Any]]:
    t = schema.failure_events
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t).where(t.c.state == state).order_by(t.c.id).limit(limit))
        return [dict(r._mapping) for r in rows]


# -- analyses -----------------------------------------------------------------------------------------
def get_analysis(store: ResultsStore, event_id: int, job_id: str) -> dict[str, Any] | None:
    t = schema.failure_analyses
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t).where(t.c.event_id == event_id, t.c.job_id == str(job_id))).first()
    return dict(row._mapping) if row else None


def save_analysis(store: ResultsStore, row: Mapping[str, Any]) -> None:
    store.upsert(schema.failure_analyses, [dict(row)], keys=["event_id", "job_id"])


def analyses_of(store: ResultsStore, event_id: int) -> list[dict[str, Any]]:
    t = schema.failure_analyses
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(t).where(t.c.event_id == event_id).order_by(t.c.id))]


def fingerprint_occurrences(
    store: ResultsStore, fingerprint: str, *, until: dt.datetime, window: dt.timedelta
) -> list[dict[str, Any]]:
    """Earlier-or-same pipelines whose analysis has this fingerprint, within ``window`` before ``until``
    (pipeline times, so a re-run or a backfill counts the same)."""
    a, e = schema.failure_analyses, schema.failure_events
    q = (
        sa.select(a.c.event_id, a.c.job_id, e.c.pipeline_id, e.c.payload)
        .join(e, e.c.id == a.c.event_id)
        .where(a.c.fingerprint == fingerprint)
    )
    with store.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(q)]
    out = []
    for r in rows:
        at = parse_time((r.get("payload") or {}).get("pipeline_at"))
        if at is not None and until - window <= at <= until:
            out.append({**r, "pipeline_at": at})
    return sorted(out, key=lambda r: (r["pipeline_at"], r["event_id"]))


def get_fingerprint(store: ResultsStore, fingerprint: str) -> dict[str, Any] | None:
    t = schema.failure_fingerprints
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t).where(t.c.fingerprint == fingerprint)).first()
    return dict(row._mapping) if row else None


def save_fingerprint(
    store: ResultsStore,
    fingerprint: str,
    *,
    project_path: str | None,
    job_name: str | None,
    first_error: str,
    occurrences: int,
    seen_at: dt.datetime,
    thread_refs: Mapping[str, Any] | None = None,
) -> None:
    t = schema.failure_fingerprints
    cur = get_fingerprint(store, fingerprint)
    if cur is None:
        store.insert_missing(
            t,
            [
                {
                    "fingerprint": fingerprint,
                    "project_path": project_path,
                    "job_name": job_name,
                    "first_error": first_error[:2000],
                    "occurrences": occurrences,
                    "thread_refs": dict(thread_refs or {}),
                    "first_seen": seen_at,
                    "last_seen": seen_at,
                }
            ],
            keys=["fingerprint"],
        )
        cur = get_fingerprint(store, fingerprint)
        assert cur is not None
    refs = {**(cur.get("thread_refs") or {}), **dict(thread_refs or {})}
    with store.begin() as conn:
        conn.execute(
            sa.update(t)
            .where(t.c.fingerprint == fingerprint)
            .values(
                occurrences=max(occurrences, 1),
                thread_refs=refs,
                first_seen=min(_utc(cur["first_seen"]), seen_at),
                last_seen=max(_utc(cur["last_seen"]), seen_at),
            )
        )


# -- intake --------------------------------------------------------------------------------------------
def intake_row(store: ResultsStore, source: str, message_id: str) -> dict[str, Any] | None:
    """The row of a Message-ID, given as the mail has it or as stored (see :func:`intake_key`)."""
    t = schema.intake_messages
    key = intake_key(message_id)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t).where(t.c.source == source, t.c.message_id == key)).first()
    return dict(row._mapping) if row else None


def record_intake(store: ResultsStore, row: Mapping[str, Any], *, now: dt.datetime) -> dict[str, Any]:
    """Insert the message's row if new, else update status/reason/folder/event; returns the row.

    What came from the mail is redacted before it is cut and written: ``reason`` (2,000 characters),
    ``sender`` (512), ``subject``; the Message-ID is stored as :func:`intake_key` gives it."""
    t = schema.intake_messages
    full = {"received_at": now, **dict(row)}
    full["message_id"] = intake_key(full["message_id"])
    for name, limit in INTAKE_TEXT.items():
        if full.get(name) is not None:
            full[name] = redacted(full[name], limit)
    if not store.insert_missing(t, [full], keys=["source", "message_id"]):
        changes = {k: v for k, v in full.items() if k in ("status", "reason", "folder", "event_id") and v is not None}
        with store.begin() as conn:
            conn.execute(
                sa.update(t).where(t.c.source == full["source"], t.c.message_id == full["message_id"]).values(**changes)
            )
    got = intake_row(store, full["source"], full["message_id"])
    assert got is not None
    return got


def intake_for_events(store: ResultsStore, event_ids: Sequence[int], status: str = "accepted") -> list[dict[str, Any]]:
    t = schema.intake_messages
    if not event_ids:
        return []
    with store.engine.connect() as conn:
        q = sa.select(t).where(t.c.event_id.in_(list(event_ids)), t.c.status == status)
        return [dict(r._mapping) for r in conn.execute(q)]


def notification_ref(store: ResultsStore, dedup_key: str) -> str | None:
    """The message reference (Slack ts, Telegram message ids) of a notification that was sent."""
    t = schema.notifications
    with store.engine.connect() as conn:
        return conn.execute(
            sa.select(t.c.message_ref).where(t.c.dedup_key == dedup_key, t.c.status == "sent")
        ).scalar_one_or_none()


def attention_owed(store: ResultsStore, keys: Mapping[str, str], limit: int = 20) -> list[dict[str, Any]]:
    """E-mails moved to needs-attention whose report was not delivered on every channel in ``keys``
    (channel -> dedup-key prefix): what a later run reports again."""
    t, n = schema.intake_messages, schema.notifications
    with store.engine.connect() as conn:
        rows = [
            dict(r._mapping) for r in conn.execute(sa.select(t).where(t.c.status == "needs_attention").order_by(t.c.id))
        ]
        sent = {
            r[0]
            for r in conn.execute(
                sa.select(n.c.dedup_key).where(n.c.status == "sent", n.c.dedup_key.like("triage:attention:%"))
            )
        }
    out = []
    for row in rows:
        digest = attention_digest(row["message_id"])
        if any(f"{prefix}{digest}" not in sent for prefix in keys.values()):
            out.append(row)
    return out[:limit]


def attention_digest(message_id: str) -> str:
    import hashlib

    return hashlib.sha256(str(message_id).encode()).hexdigest()[:32]
