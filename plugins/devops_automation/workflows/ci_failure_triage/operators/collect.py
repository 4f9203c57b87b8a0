"""``collect``: gather the pipeline failures to triage and list their failed jobs.

Sources, merged and deduplicated by (project, pipeline): the webhook's events (``events``, the
run's conf), a pipeline named in the trigger form (``project`` + ``pipeline_id``), and the mailbox
(every message in the watched folder, see :mod:`devops_automation.workflows.ci_failure_triage.intake`). Each pipeline
is claimed in the results store; one already analysed (told by the other source, or an earlier
run) is skipped. For the claimed ones GitLab gives the failed jobs (``allow_failure`` jobs are
skipped) and the test report summary.

XCom: the return value has one item per failed job (what ``analyse`` is mapped over); the key
``summary`` lists the claimed events, the e-mails needing attention and the mail UIDs to archive
per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from devops_automation import as_bool
from devops_automation.workflows.ci_failure_triage.operators.base import GitLabPipelineLink, TriageOperator, run_time

if TYPE_CHECKING:
    from airflow.sdk import Context

PIPELINE_KEYS = ("project_id", "project_path", "pipeline_id", "ref", "sha", "status", "pipeline_url", "source")


class TriageCollectOperator(TriageOperator):
    template_fields: Sequence[str] = ("events", "project", "pipeline_id", "force", "sweep_mailbox", "max_messages")
    operator_extra_links = (GitLabPipelineLink(),)

    def __init__(
        self,
        *,
        events: Any = None,
        project: str = "",
        pipeline_id: Any = "",
        force: Any = False,
        sweep_mailbox: Any = True,
        max_messages: Any = 200,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.events = events
        self.project = project
        self.pipeline_id = pipeline_id
        self.force = force
        self.sweep_mailbox = sweep_mailbox
        self.max_messages = max_messages

    # -- sources ---------------------------------------------------------------------------------
    def _given_events(self, context: Context) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for i, ev in enumerate(self.events or []):
            if (
                not isinstance(ev, dict)
                or not ev.get("pipeline_id")
                or not (ev.get("project_id") or ev.get("project_path"))
            ):
                raise ValueError(f"events[{i}] needs project_id (or project_path) and pipeline_id, got {ev!r}")
            events.append({**ev, "source": ev.get("source") or "webhook"})
        if str(self.project or "").strip() and str(self.pipeline_id or "").strip():
            events.append(
                {
                    "source": "manual",
                    "project_path": str(self.project).strip(),
                    "pipeline_id": str(self.pipeline_id).strip(),
                }
            )
        elif str(self.project or "").strip() or str(self.pipeline_id or "").strip():
            raise ValueError("give both 'project' and 'pipeline_id' to triage one pipeline (or neither)")
        for asset_events in (context.get("triggering_asset_events") or {}).values():
            for ae in asset_events:
                payload = (getattr(ae, "extra", None) or {}).get("payload") or {}
                for ev in payload.get("events") or []:  # a producer may pass events; the mail watcher only signals
                    events.append({**ev, "source": ev.get("source") or "asset"})
        return events

    def _mail_events(self, context: Context, result: dict[str, Any]) -> list[dict[str, Any]]:
        from devops_automation.hooks import connection_exists

        if not as_bool(self.sweep_mailbox):
            return []
        if not connection_exists(self.imap_conn_id):
            self.log.info(
                "No connection %r: the mailbox is not read (webhook and manual triage only)", self.imap_conn_id
            )
            return []
        from devops_automation.hooks.imap import ImapMailboxHook
        from devops_automation.workflows.ci_failure_triage.intake import sweep_mailbox

        swept = sweep_mailbox(
            ImapMailboxHook(self.imap_conn_id), self.store, now=run_time(context), limit=int(self.max_messages)
        )
        self.log.info("Mailbox: %s", ", ".join(f"{k} {v}" for k, v in sorted(swept.counts.items())) or "empty")
        result["attention"] = swept.attention
        result["mail"] = swept.counts
        return swept.events

    # -- main ------------------------------------------------------------------------------------
    def _resolve(self, ev: dict[str, Any]) -> dict[str, Any]:
        """Numeric project id (the store's key) for an event that only has a path."""
        if str(ev.get("project_id") or "").isdigit():
            return ev
        project = self.gitlab.project(ev.get("project_id") or ev["project_path"])
        return {
            **ev,
            "project_id": str(project["id"]),
            "project_path": project.get("path_with_namespace") or ev.get("project_path"),
        }

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from devops_automation.workflows.ci_failure_triage.store import claim_event

        result: dict[str, Any] = {"events": [], "skipped": [], "attention": [], "mail": {}, "uids": {}}
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for ev in self._given_events(context) + self._mail_events(context, result):
            ev = self._resolve(ev)
            key = (str(ev["project_id"]), str(ev["pipeline_id"]))
            if key in merged:
                merged[key]["uids"] = merged[key].get("uids", []) + ev.get("uids", [])
                merged[key]["message_ids"] = merged[key].get("message_ids", []) + ev.get("message_ids", [])
            else:
                merged[key] = ev
        now, run_id = run_time(context), context["run_id"]
        jobs: list[dict[str, Any]] = []
        for (project_id, pipeline_id), ev in merged.items():
            event_id, mine, why = claim_event(self.store, ev, run_id=run_id, now=now, force=as_bool(self.force))
            self._link_mail(ev, event_id, now)
            if ev.get("uids"):
                result["uids"][str(event_id)] = ev["uids"]
            if not mine:
                self.log.info("Pipeline %s of project %s: not analysed again (%s)", pipeline_id, project_id, why)
                result["skipped"].append({"event_id": event_id, "pipeline_id": pipeline_id, "why": why})
                continue
            found = self._jobs_of(event_id, ev, now)
            result["events"].append(event_id)
            jobs.extend(found)
        self.push_link(context, "pipeline_url", next((j["pipeline_url"] for j in jobs if j.get("pipeline_url")), None))
        context["ti"].xcom_push(key="summary", value=result)
        self.log.info(
            "%d pipeline(s) to triage, %d failed job(s); %d skipped",
            len(result["events"]),
            len(jobs),
            len(result["skipped"]),
        )
        return jobs

    def _link_mail(self, ev: dict[str, Any], event_id: int, now: Any) -> None:
        from devops_automation.workflows.ci_failure_triage.store import record_intake

        for mid in ev.get("message_ids", []):
            record_intake(
                self.store, {"source": "email", "message_id": mid, "status": "accepted", "event_id": event_id}, now=now
            )

    def _jobs_of(self, event_id: int, ev: dict[str, Any], now: Any) -> list[dict[str, Any]]:
        from devops_automation.hooks.api import ApiError
        from devops_automation.workflows.ci_failure_triage.store import update_event

        project_id, pipeline_id = str(ev["project_id"]), str(ev["pipeline_id"])
        try:
            pipeline = self.gitlab.pipeline(project_id, pipeline_id)
        except ApiError as exc:
            if exc.status == 404:
                self.log.warning("Pipeline %s of project %s is gone (404): nothing to analyse", pipeline_id, project_id)
                update_event(self.store, event_id, now=now, state="gone", error=f"pipeline not found: {exc}")
                return []
            raise
        failed = self.gitlab.failed_jobs(project_id, pipeline_id)
        kept = [j for j in failed if not j.get("allow_failure")]
        skipped = [
            {"job_id": str(j["id"]), "job_name": j.get("name"), "why": "allow_failure"}
            for j in failed
            if j.get("allow_failure")
        ]
        summary = self.gitlab.test_report_summary(project_id, pipeline_id)
        total = (summary or {}).get("total") or {}
        project_path = ev.get("project_path") or self.gitlab.project(project_id).get("path_with_namespace")
        base = {
            "event_id": event_id,
            "project_id": project_id,
            "project_path": project_path,
            "pipeline_id": pipeline_id,
            "pipeline_url": pipeline.get("web_url") or ev.get("pipeline_url"),
            "ref": pipeline.get("ref") or ev.get("ref"),
            "sha": (pipeline.get("sha") or ev.get("sha") or "")[:40] or None,
        }
        update_event(
            self.store,
            event_id,
            now=now,
            pipeline={
                **base,
                "status": pipeline.get("status"),
                "source": ev.get("source"),
                "yaml_errors": pipeline.get("yaml_errors"),
            },
            pipeline_at=pipeline.get("created_at") or pipeline.get("updated_at"),
            jobs=[str(j["id"]) for j in kept],
            skipped_jobs=skipped,
            test_summary={"total": total.get("count"), "failed": total.get("failed"), "error": total.get("error")}
            if total
            else None,
        )
        if not kept:
            update_event(self.store, event_id, now=now, state="analysed")
        return [
            {
                **base,
                "job_id": str(j["id"]),
                "job_name": j.get("name"),
                "stage": j.get("stage"),
                "job_url": j.get("web_url"),
                "failure_reason": j.get("failure_reason"),
                "bridge": bool(j.get("bridge")),
            }
            for j in kept
        ]
