"""The mailbox sweep of ``ci_failure_triage``: every message in the watched folder is sorted once.

* a GitLab "Failed pipeline" e-mail from an allowed sender -> a failure event (the message stays in
  the folder until the run has stored the analysis, then it is flagged and moved to the processed
  folder by the ``archive`` step);
* a "Successful" / "Fixed" pipeline e-mail, a person's reply or forward, a GitLab notification about
  something else (issue, merge request, comment) -> recorded as ``ignored`` with the named reason,
  flagged seen, moved to the processed folder;
* anything else (unknown sender, headers/subject/body that contradict each other, an unreadable
  body) -> recorded as ``needs_attention`` with the reason, moved to the needs-attention folder and
  reported once (the report names the reason; see ``messages.needs_attention_text``).

The decision for each message is
:func:`~devops_automation.workflows.ci_failure_triage.mail.classify_mail`'s.

Nothing is ever deleted. The Message-ID (or a hash of the raw message when it has none) is the
key: a message seen before is not processed again, only put where it belongs. A Message-ID that
carries a secret is keyed by :func:`~devops_automation.workflows.ci_failure_triage.store.intake_key`
(redacted, plus the original's hash) from the start, so neither the store, the XComs nor the log
ever see it; the store redacts sender, subject and reason itself (``record_intake``).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from devops_automation.ci_logs.redact import redact_text
from devops_automation.store import ResultsStore
from devops_automation.workflows.ci_failure_triage.mail import classify_mail, message_id_of
from devops_automation.workflows.ci_failure_triage.store import get_event, intake_key, intake_row, record_intake

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
        mid = intake_key(message_id_of(msg.raw))  # as stored: a secret in it is redacted
        prior = intake_row(store, "email", mid)
        if prior is not None and prior["status"] in ("processed", "ignored"):
            to_processed.append(msg.uid)  # done before; only its move was lost
            out.count("already_processed")
            continue
        if prior is not None and prior["status"] == "needs_attention":
            to_attention.append(msg.uid)
            out.count("needs_attention")
            continue
        decision = classify_mail(msg.raw, allowed_senders=hook.allowed_senders)
        if decision.action == "reject":
            reason = redact_text(f"{decision.reason}: {decision.detail}")
            record_intake(
                store,
                {
                    "source": "email",
                    "message_id": mid,
                    "status": "needs_attention",
                    "reason": reason,  # redacted, cut by record_intake
                    "sender": decision.sender or None,
                    "subject": decision.subject,
                    "folder": hook.needs_attention_folder,
                    "size_bytes": msg.size,
                },
                now=now,
            )
            to_attention.append(msg.uid)
            out.attention.append(  # what notify reports (an XCom): redacted, the reason before it is cut
                {
                    "message_id": mid,
                    "kind": decision.reason,
                    "reason": redact_text(decision.detail)[:500],
                    "sender": redact_text(decision.sender) if decision.sender else decision.sender,
                    "subject": redact_text(decision.subject) if decision.subject else decision.subject,
                    "folder": hook.needs_attention_folder,
                }
            )
            out.count("needs_attention")
            log.warning("E-mail %s needs attention (%s); moved to %r", mid, reason, hook.needs_attention_folder)
            continue
        mail = decision.mail
        if decision.action == "ignore" or mail is None:
            reason = redact_text(
                decision.detail if decision.reason == "pipeline_status" else f"{decision.reason}: {decision.detail}"
            )
            record_intake(
                store,
                {
                    "source": "email",
                    "message_id": mid,
                    "status": "ignored",
                    "reason": reason,  # redacted, cut by record_intake
                    "sender": decision.sender or None,
                    "subject": decision.subject,
                    "folder": hook.processed_folder,
                    "size_bytes": msg.size,
                },
                now=now,
            )
            to_processed.append(msg.uid)
            out.count("ignored")
            log.info("E-mail %s ignored (%s)", mid, reason)
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
