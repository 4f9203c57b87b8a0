"""``notify``: one Slack (Block Kit) and one Telegram message per analysed pipeline, grouped by job.

* A run announces the pipelines it collected, and those another run could not announce (its send
  failed, or its claim went stale): not those another run is still working on.
* Only pipelines whose every failed job has a stored analysis are announced; the state moves to
  ``notified`` once every configured channel (connections ``slack_default``, ``telegram_default``)
  has its message. Each message has a dedup key in the results store, so a retried task or a
  cleared run never sends it twice.
* A send that fails (Slack down, say) leaves the pipeline ``analysed``: the analysis is stored, the
  task fails (Airflow retries it) and every later run sends what is still owed.
* Recurring failures: when every job of a pipeline failed with a fingerprint (normalised first
  error line + job + project) already announced within ``fingerprint_window_hours``, no new
  message is sent: a short "seen again (N times)" reply goes to the first message's Slack thread
  and the count is kept in ``failure_fingerprints``.
* E-mails that needed attention are reported once each, with the classifier's reason (a report
  that could not be delivered is sent by a later run, its reason read back from ``intake_messages``).
* The run's note (connection ``airflow_api``) says in one line what the run did: the pipelines it
  analysed with their categories, the messages sent per channel, what was skipped or failed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from devops_automation.workflows.ci_failure_triage.operators.base import TriageOperator, run_time

if TYPE_CHECKING:
    from airflow.sdk import Context


class TriageNotifyOperator(TriageOperator):
    template_fields: Sequence[str] = ("collected", "fingerprint_window_hours", "enabled")

    def __init__(
        self, *, collected: Any, fingerprint_window_hours: Any = 24, enabled: Any = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.collected = collected
        self.fingerprint_window_hours = fingerprint_window_hours
        self.enabled = enabled

    def execute(self, context: Context) -> dict[str, Any]:
        from devops_automation import as_bool
        from devops_automation.hooks import connection_exists
        from devops_automation.workflows.ci_failure_triage.store import (
            events_in_state,
            owed_by_another_run,
            update_event,
        )

        collected = self.collected or {}
        self.sent = {"slack": 0, "telegram": 0}
        self.channels = [
            c
            for c, conn in (("slack", self.slack_conn_id), ("telegram", self.telegram_conn_id))
            if connection_exists(conn)
        ]
        if not as_bool(self.enabled):
            self.log.info("Notifications are off for this run (param notify = false)")
            self._note(context, collected, enabled=False, errors=[])
            return {"sent": [], "errors": []}
        if not self.channels:
            self.log.warning(
                "Neither %r nor %r exists: analyses are stored, nothing is sent",
                self.slack_conn_id,
                self.telegram_conn_id,
            )
        ids = [int(i) for i in collected.get("events") or []]
        now, run_id = run_time(context), context["run_id"]
        owed = [
            e["id"]
            for e in events_in_state(self.store, "analysed")
            if e["id"] not in ids and owed_by_another_run(e, run_id=run_id, now=now)
        ]
        if owed:
            self.log.info("Also sending what earlier runs owe: events %s", owed)
        sent, errors = [], []
        for event_id in ids + owed:
            try:
                if self._event(event_id, context):
                    sent.append(event_id)
            except Exception as exc:  # noqa: BLE001 - the next pipeline still gets its message
                self.log.error("Notification for event %s failed: %s", event_id, exc)
                errors.append(f"event {event_id}: {exc}")
                update_event(self.store, event_id, notify_failed_at=now.isoformat())  # any later run sends it
        for item in self._attention_items(collected):
            try:
                self._attention(item)
            except Exception as exc:  # noqa: BLE001
                errors.append(f"attention {item.get('message_id')}: {exc}")
        self._note(context, collected, enabled=True, errors=errors)
        if errors:
            raise RuntimeError(
                f"{len(errors)} notification(s) failed (the analyses are stored; they are sent again later): "
                + "; ".join(errors)
            )
        return {"sent": sent, "errors": errors}

    # -- the run note ----------------------------------------------------------------------------
    def _count(self, channel: str, result: Any) -> None:
        """One more message sent on ``channel`` (``result`` is None when the dedup key was sent before)."""
        if result is not None:
            self.sent[channel] = self.sent.get(channel, 0) + 1

    def _note(self, context: Context, collected: dict[str, Any], *, enabled: bool, errors: list[str]) -> str:
        from devops_automation.hooks.airflow_api import set_run_note
        from devops_automation.workflows.ci_failure_triage.messages import run_note
        from devops_automation.workflows.ci_failure_triage.store import analyses_of, get_event

        pipelines = []
        for event_id in collected.get("events") or []:
            event = get_event(self.store, int(event_id)) or {}
            pipelines.append(
                {
                    "project_path": event.get("project_path") or event.get("project_id"),
                    "pipeline_id": event.get("pipeline_id"),
                    "categories": [a["category"] for a in analyses_of(self.store, int(event_id))],
                }
            )
        note = run_note(
            pipelines,
            self.sent,
            skipped=len(collected.get("skipped") or []),
            attention=len(collected.get("attention") or []),
            enabled=enabled,
            errors=errors,
        )
        self.log.info(note)
        set_run_note(context, note)
        return note

    # -- one pipeline ----------------------------------------------------------------------------
    def _event(self, event_id: int, context: Context) -> bool:
        from devops_automation.workflows.ci_failure_triage.store import analyses_of, get_event, parse_time, update_event

        event = get_event(self.store, event_id)
        if event is None or event["state"] == "notified":
            return False
        payload = event.get("payload") or {}
        analyses = analyses_of(self.store, event_id)
        missing = set(payload.get("jobs") or []) - {a["job_id"] for a in analyses}
        if missing:
            self.log.warning("Event %s: jobs %s have no analysis yet; not announced", event_id, sorted(missing))
            return False
        if event["state"] == "new":
            update_event(self.store, event_id, state="analysed", now=run_time(context))
        at = parse_time(payload.get("pipeline_at")) or event["received_at"]
        window = dt.timedelta(hours=float(self.fingerprint_window_hours))
        jobs, repeats = self._jobs(event_id, analyses, at, window)
        pipeline = {
            **(payload.get("pipeline") or {}),
            "source": event["source"],
            "test_summary": payload.get("test_summary"),
        }
        for key in ("project_id", "project_path", "pipeline_id", "pipeline_url", "ref", "sha"):
            pipeline.setdefault(key, event.get(key))
        thread = next(iter(repeats.values()), None) if jobs and len(repeats) == len(jobs) else None
        refs = self._send(event_id, pipeline, jobs, thread)
        self._remember(jobs, at, refs, pipeline.get("project_path"))
        update_event(self.store, event_id, state="notified", now=run_time(context))
        return True

    def _jobs(
        self, event_id: int, analyses: list[dict[str, Any]], at: dt.datetime, window: dt.timedelta
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        from devops_automation.workflows.ci_failure_triage.store import fingerprint_occurrences, get_fingerprint

        jobs, repeats = [], {}
        for a in analyses:
            occ = (
                fingerprint_occurrences(self.store, a["fingerprint"], until=at, window=window)
                if a.get("fingerprint")
                else []
            )
            events = {o["event_id"] for o in occ} | {event_id}
            earlier = [o for o in occ if o["event_id"] != event_id]
            known = get_fingerprint(self.store, a["fingerprint"]) if earlier else None
            if known and (known.get("thread_refs") or {}).get("slack"):
                repeats[a["job_id"]] = known["thread_refs"]["slack"]
            jobs.append({**a, "evidence": a.get("evidence_lines") or [], "occurrences": len(events)})
        return jobs, repeats

    def _send(
        self, event_id: int, pipeline: dict[str, Any], jobs: list[dict[str, Any]], thread: dict[str, Any] | None
    ) -> dict[str, Any]:
        from devops_automation.workflows.ci_failure_triage.messages import (
            slack_message,
            slack_repeat_text,
            telegram_message,
        )

        refs: dict[str, Any] = {}
        errors: list[str] = []
        if "slack" in self.channels:
            from devops_automation.notifiers.slack import post_slack_once
            from devops_automation.workflows.ci_failure_triage.store import notification_ref

            key = f"triage:slack:{event_id}"
            try:
                if thread:
                    count = max(j["occurrences"] for j in jobs)
                    ts = post_slack_once(
                        slack_repeat_text(pipeline, jobs, count),
                        dedup_key=key,
                        slack_conn_id=self.slack_conn_id,
                        channel=thread.get("channel"),
                        thread_ts=thread.get("ts"),
                        results_conn_id=self.results_conn_id,
                    )
                    self._count("slack", ts)
                else:
                    text, blocks = slack_message(pipeline, jobs)
                    ts = post_slack_once(
                        text,
                        blocks=blocks,
                        dedup_key=key,
                        slack_conn_id=self.slack_conn_id,
                        results_conn_id=self.results_conn_id,
                    )
                    self._count("slack", ts)
                    refs["slack"] = {"channel": self._slack_channel(), "ts": notification_ref(self.store, key)}
            except Exception as exc:  # noqa: BLE001 - Telegram still gets its message
                errors.append(f"Slack: {exc}")
        if "telegram" in self.channels and not thread:  # a recurrence is counted, not re-sent
            from devops_automation.notifiers.telegram import send_telegram_once

            try:
                ids = send_telegram_once(
                    telegram_message(pipeline, jobs),
                    dedup_key=f"triage:telegram:{event_id}",
                    telegram_conn_id=self.telegram_conn_id,
                    results_conn_id=self.results_conn_id,
                )
                self._count("telegram", ids)
            except Exception as exc:  # noqa: BLE001
                errors.append(f"Telegram: {exc}")
        if errors:
            raise RuntimeError("; ".join(errors))
        return refs

    def _slack_channel(self) -> str | None:
        from airflow.sdk import BaseHook

        return (BaseHook.get_connection(self.slack_conn_id).extra_dejson or {}).get("channel")

    def _remember(
        self, jobs: list[dict[str, Any]], at: dt.datetime, refs: dict[str, Any], project_path: str | None
    ) -> None:
        from devops_automation.workflows.ci_failure_triage.messages import first_error_line
        from devops_automation.workflows.ci_failure_triage.store import save_fingerprint

        for job in jobs:
            if not job.get("fingerprint"):
                continue
            first_time = job["occurrences"] <= 1
            save_fingerprint(
                self.store,
                job["fingerprint"],
                project_path=project_path,
                job_name=job.get("job_name"),
                first_error=first_error_line(job),
                occurrences=job["occurrences"],
                seen_at=at,
                thread_refs=refs if first_time and refs.get("slack", {}).get("ts") else None,
            )

    # -- e-mails that need a person --------------------------------------------------------------
    ATTENTION_KEYS: ClassVar[dict[str, str]] = {
        "slack": "triage:attention:slack:",
        "telegram": "triage:attention:telegram:",
    }

    def _attention_items(self, collected: dict[str, Any]) -> list[dict[str, Any]]:
        """This run's rejected e-mails, and earlier ones whose report could not be delivered."""
        from devops_automation.workflows.ci_failure_triage.store import attention_owed

        items = list(collected.get("attention") or [])
        seen = {i.get("message_id") for i in items}
        keys = {c: k for c, k in self.ATTENTION_KEYS.items() if c in self.channels}
        for row in attention_owed(self.store, keys) if keys else []:
            if row["message_id"] in seen:
                continue
            kind, _, reason = (row.get("reason") or "unparseable: ?").partition(": ")
            items.append(
                {
                    "message_id": row["message_id"],
                    "kind": kind,
                    "reason": reason,
                    "sender": row.get("sender"),
                    "subject": row.get("subject"),
                    "folder": row.get("folder") or "needs-attention",
                }
            )
        return items

    def _attention(self, item: dict[str, Any]) -> None:
        from devops_automation.workflows.ci_failure_triage.messages import needs_attention_text

        slack_text, html = needs_attention_text(
            item.get("kind") or "unparseable",
            item.get("sender"),
            item.get("subject"),
            item.get("message_id") or "?",
            item.get("folder") or "needs-attention",
            reason=item.get("reason"),
        )
        from devops_automation.workflows.ci_failure_triage.store import attention_digest

        digest = attention_digest(item.get("message_id") or "?")
        errors = []
        if "slack" in self.channels:
            from devops_automation.notifiers.slack import post_slack_once

            try:
                ts = post_slack_once(
                    slack_text,
                    dedup_key=f"{self.ATTENTION_KEYS['slack']}{digest}",
                    slack_conn_id=self.slack_conn_id,
                    results_conn_id=self.results_conn_id,
                )
                self._count("slack", ts)
            except Exception as exc:  # noqa: BLE001 - Telegram still gets its report
                errors.append(f"Slack: {exc}")
        if "telegram" in self.channels:
            from devops_automation.notifiers.telegram import send_telegram_once

            try:
                ids = send_telegram_once(
                    html,
                    dedup_key=f"{self.ATTENTION_KEYS['telegram']}{digest}",
                    telegram_conn_id=self.telegram_conn_id,
                    results_conn_id=self.results_conn_id,
                )
                self._count("telegram", ids)
            except Exception as exc:  # noqa: BLE001
                errors.append(f"Telegram: {exc}")
        if errors:
            raise RuntimeError("; ".join(errors))
