"""The mailbox sweep of ``ci_failure_triage``: every message in the watched folder is sorted once.

* a GitLab "Failed pipeline" e-mail from an allowed sender -> a failure event (the message stays in
  the folder until the run has stored the analysis, then it is flagged and moved to the processed
  folder by the ``archive`` step);
* a "Successful" / "Fixed" pipeline e-mail -> recorded as ``ignored``, flagged seen, moved to the
  processed folder;
* anything else (unknown sender, spoofed or missing GitLab headers, an unreadable body) -> recorded
  as ``needs_attention`` with the reason, moved to the needs-attention folder and reported once.

Nothing is ever deleted. The Message-ID (or a hash of the raw message when it has none) is the
key: a message seen before is not processed again, only put where it belongs.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from devops_automation.store import ResultsStore
from devops_automation.workflows.ci_failure_triage.mail import MailRejected, message_id_of, parse_pipeline_mail
from devops_automation.workflows.ci_failure_triage.store import get_event, intake_row, record_intake

log = logging.getLogger(__name__)
DONE = {"analysed", "notified", "gone"}


@dataclass
class SweepResult:
    events: list[dict[str, Any]] = field(default_factory=list)
    attention: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1


def sweep_mailbox(hook: Any, store: ResultsStore, *, now: dt.datetime, limit: int = 200) -> SweepResult:
    """Sort every message of ``hook.folder`` (an :class:`~devops_automation.hooks.imap.ImapMailboxHook`)."""
    out = SweepResult()
    messages = hook.fetch_messages(limit=limit)
    to_processed: list[str] = []
    to_attention: list[str] = []
    for msg in messages:
        mid = message_id_of(msg.raw)
        prior = intake_row(store, "email", mid)
        if prior is not None and prior["status"] in ("processed", "ignored"):
            to_processed.append(msg.uid)  # done before; only its move was lost
            out.count("already_processed")
            continue
        if prior is not None and prior["status"] == "needs_attention":
            to_attention.append(msg.uid)
            out.count("needs_attention")
            continue
        try:
            mail = parse_pipeline_mail(msg.raw, allowed_senders=hook.allowed_senders)
        except MailRejected as exc:
            reason = f"{exc.kind}: {exc}"
            record_intake(
                store,
                {
                    "source": "email",
                    "message_id": mid,
                    "status": "needs_attention",
                    "reason": reason[:2000],
                    "sender": (getattr(exc, "sender", None) or "")[:512] or None,
                    "subject": getattr(exc, "subject", None),
                    "folder": hook.needs_attention_folder,
                    "size_bytes": msg.size,
                },
                now=now,
            )
            to_attention.append(msg.uid)
            out.attention.append(
                {
                    "message_id": mid,
                    "kind": exc.kind,
                    "reason": str(exc)[:500],
                    "sender": getattr(exc, "sender", None),
                    "subject": getattr(exc, "subject", None),
                    "folder": hook.needs_attention_folder,
                }
            )
            out.count("needs_attention")
            log.warning("E-mail %s needs attention (%s); moved to %r", mid, reason, hook.needs_attention_folder)
            continue
        if not mail.is_failure:
            record_intake(
                store,
                {
                    "source": "email",
                    "message_id": mid,
                    "status": "ignored",
                    "reason": f"pipeline status {mail.status}",
                    "sender": mail.sender,
                    "subject": mail.subject,
                    "folder": hook.processed_folder,
                    "size_bytes": msg.size,
                },
                now=now,
            )
            to_processed.append(msg.uid)
            out.count("ignored")
            continue
        if prior is not None and prior.get("event_id"):
            event = get_event(store, prior["event_id"])
            if event is not None and event["state"] in DONE:
                record_intake(
                    store,
                    {"source": "email", "message_id": mid, "status": "processed", "folder": hook.processed_folder},
                    now=now,
                )
                to_processed.append(msg.uid)
                out.count("already_processed")
                continue
        record_intake(
            store,
            {
                "source": "email",
                "message_id": mid,
                "status": "accepted",
                "reason": None,
                "sender": mail.sender,
                "subject": mail.subject,
                "folder": hook.folder,
                "size_bytes": msg.size,
            },
            now=now,
        )
        out.events.append({**mail.to_dict(), "source": "email", "message_ids": [mid], "uids": [msg.uid]})
        out.count("accepted")
    if to_processed:
        hook.flag(to_processed, ["\\Seen", "\\Flagged"])
        hook.move(to_processed, hook.processed_folder)
    if to_attention:
        hook.move(to_attention, hook.needs_attention_folder)
    out.counts["seen"] = len(messages)
    return out
