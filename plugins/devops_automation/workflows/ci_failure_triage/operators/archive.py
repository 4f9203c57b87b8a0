"""``archive``: after the analyses are stored, flag each accepted e-mail and move it to the
processed folder (``imap_default`` extra ``processed_folder``).

Runs whatever happened to the notifications (a Slack outage must not keep mail in the inbox: the
message is owed by the store, not by the mailbox). A pipeline whose analysis did not complete keeps
its e-mail in the folder, so the next sweep picks it up again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from devops_automation.workflows.ci_failure_triage.operators.base import TriageOperator, run_time

if TYPE_CHECKING:
    from airflow.sdk import Context


class TriageArchiveOperator(TriageOperator):
    template_fields: Sequence[str] = ("collected",)

    def __init__(self, *, collected: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.collected = collected

    def execute(self, context: Context) -> dict[str, Any]:
        from devops_automation.workflows.ci_failure_triage.store import (
            analyses_of,
            get_event,
            intake_for_events,
            record_intake,
            update_event,
        )

        uids_by_event: dict[str, list[str]] = (self.collected or {}).get("uids") or {}
        if not uids_by_event:
            return {"moved": 0, "kept": 0}
        now = run_time(context)
        done, kept = [], []
        for event_id, uids in uids_by_event.items():
            event = get_event(self.store, int(event_id))
            if event is None:
                continue
            wanted = set((event.get("payload") or {}).get("jobs") or [])
            have = {a["job_id"] for a in analyses_of(self.store, int(event_id))}
            if event["state"] in ("analysed", "notified", "gone") or wanted <= have:
                if event["state"] == "new":
                    update_event(self.store, int(event_id), state="analysed", now=now)
                done.append((int(event_id), uids))
            else:
                kept.extend(uids)
        if done:
            from devops_automation.hooks.imap import ImapMailboxHook

            hook = ImapMailboxHook(self.imap_conn_id)
            uids = [u for _, us in done for u in us]
            hook.flag(uids, ["\\Seen", "\\Flagged"])
            hook.move(uids, hook.processed_folder)
            for row in intake_for_events(self.store, [e for e, _ in done]):
                record_intake(
                    self.store,
                    {
                        "source": row["source"],
                        "message_id": row["message_id"],
                        "status": "processed",
                        "folder": hook.processed_folder,
                    },
                    now=now,
                )
        if kept:
            self.log.warning("%d e-mail(s) stay in the inbox: their pipeline's analysis is incomplete", len(kept))
        return {"moved": sum(len(u) for _, u in done), "kept": len(kept)}
