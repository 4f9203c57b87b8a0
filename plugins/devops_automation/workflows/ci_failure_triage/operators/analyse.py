"""``analyse`` (mapped, one task per failed job): log -> excerpt -> redaction -> LLM or heuristic -> store.

* The job's log is streamed from GitLab and capped (``max_trace_bytes``, the tail is kept: that is
  where jobs fail); the same job's log in the last green pipeline on the same ref is the diff base.
* The LLM (connection ``llm_default``: host = OpenAI-compatible base URL, password = key, extras
  ``model``, ``timeout``, ``max_retries``) gets the redacted excerpt only. Without that connection,
  for runner/infrastructure ``failure_reason`` values, for binary logs or a missing log, the
  built-in heuristic answers (marked as such in ``analyser`` / ``analyser_note``).
* The analysis is stored at once (``failure_analyses``), so a failed notification loses nothing; a
  re-run finds it and does not call GitLab or the LLM again (``force`` re-analyses).
* Optional (``retry_transient``): a job the analysis calls transient with confidence >=
  ``retry_min_confidence`` is retried once through GitLab's API, recorded in ``retried_job_id``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from devops_automation import as_bool
from devops_automation.workflows.ci_failure_triage.operators.base import (
    GitLabJobLink,
    GitLabPipelineLink,
    TriageOperator,
    run_time,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

EXCERPT_STORE_CHARS = 20_000


def is_binary(data: bytes, sample: int = 65_536) -> bool:
    """A log that is mostly not text (NULs, or > 30 % bytes outside printable/UTF-8)."""
    head = data[:sample]
    if not head:
        return False
    if head.count(b"\x00") > max(8, len(head) // 1000):
        return True
    text = head.decode("utf-8", errors="replace")
    bad = sum(1 for ch in text if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\r\n\t\x1b\x08\x0c"))
    return bad > len(text) * 0.3


class TriageAnalyseOperator(TriageOperator):
    template_fields: Sequence[str] = (
        "job",
        "budget",
        "max_trace_bytes",
        "retry_transient",
        "retry_min_confidence",
        "force",
    )
    operator_extra_links = (GitLabJobLink(), GitLabPipelineLink())

    def __init__(
        self,
        *,
        job: Any,
        budget: Any = 4000,
        max_trace_bytes: Any = 20_000_000,
        retry_transient: Any = False,
        retry_min_confidence: Any = 0.8,
        force: Any = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job = job
        self.budget = budget
        self.max_trace_bytes = max_trace_bytes
        self.retry_transient = retry_transient
        self.retry_min_confidence = retry_min_confidence
        self.force = force

    def _llm(self) -> dict[str, Any] | None:
        from devops_automation.hooks import connection_exists

        if not connection_exists(self.llm_conn_id):
            return None
        from devops_automation.hooks.llm import LLMHook

        return LLMHook(self.llm_conn_id).analyse_kwargs()

    def execute(self, context: Context) -> dict[str, Any]:
        from devops_automation.workflows.ci_failure_triage.store import get_analysis

        job: Mapping[str, Any] = self.job
        self.push_link(context, "job_url", job.get("job_url"))
        self.push_link(context, "pipeline_url", job.get("pipeline_url"))
        existing = get_analysis(self.store, int(job["event_id"]), str(job["job_id"]))
        if existing is not None and not as_bool(self.force):
            self.log.info(
                "Job %s (%s) was analysed before (%s): kept", job["job_id"], job.get("job_name"), existing["analyser"]
            )
            return _summary(existing)
        row = self._analyse(job, context)
        from devops_automation.workflows.ci_failure_triage.store import save_analysis

        save_analysis(self.store, row)
        self.log.info(
            "Job %s (%s): %s by %s, confidence %.2f, transient %s",
            job["job_id"],
            job.get("job_name"),
            row["category"],
            row["analyser"],
            row["confidence"] or 0,
            row["is_transient"],
        )
        if as_bool(self.retry_transient):
            self._maybe_retry(job, row, existing)
        return _summary(row)

    def _analyse(self, job: Mapping[str, Any], context: Context) -> dict[str, Any]:
        from devops_automation.ci_logs import analyse, excerpt, needs_log_analysis, reason_verdict
        from devops_automation.workflows.ci_failure_triage.messages import fingerprint, first_error_line

        reason = job.get("failure_reason")
        meta = {k: job.get(k) for k in ("project_path", "job_name", "stage", "ref", "failure_reason")}
        trace = (
            None
            if job.get("bridge")
            else self.gitlab.trace(job["project_id"], job["job_id"], max_bytes=int(self.max_trace_bytes))
        )
        note: list[str] = []
        if job.get("bridge"):
            note.append("trigger job (bridge): no log of its own")
        elif trace is None:
            note.append("job log not available (GitLab 404: job deleted or log expired)")
        elif trace.truncated:
            note.append(f"log cut to its last {len(trace.data) // 1_000_000} MB of {trace.total_bytes // 1_000_000} MB")
        binary = trace is not None and is_binary(trace.data)
        if binary:
            note.append("log is binary, not text: not sent to the LLM")
        usable = trace is not None and not binary and bool(trace.data.strip())
        llm = self._llm() if usable and needs_log_analysis(reason) else None
        if usable:
            passed = self._passing_log(job)
            ex = excerpt(trace.data, passed, budget=int(self.budget))
            result = analyse(ex, job=meta, **(llm or {}))
            data = result.to_dict()
            evidence = data.get("evidence") or []
            usage = data.get("usage") or {}
            row = {
                "category": result.category,
                "root_cause": result.root_cause,
                "fix_steps": list(result.fix_steps),
                "evidence_lines": [{"line": e["line"], "text": e["text"]} for e in evidence][:20],
                "is_transient": bool(result.is_transient),
                "confidence": float(result.confidence),
                "analyser": result.analyser,
                "model": usage.get("model") if result.analyser == "llm" else None,
                "prompt_tokens": usage.get("prompt_tokens"),
                "completion_tokens": usage.get("completion_tokens"),
                "latency_ms": int(usage["latency_s"] * 1000) if usage.get("latency_s") is not None else None,
                "excerpt": ex.text[:EXCERPT_STORE_CHARS],
                "excerpt_lines": data.get("excerpt_lines"),
            }
            if result.reason:
                note.append(result.reason)
            if llm is None and not needs_log_analysis(reason):
                note.append(f"failure_reason {reason}: infrastructure, no LLM needed")
        else:
            category, transient = reason_verdict(reason) or ("unknown", False)
            cause = {
                True: f"GitLab reports failure_reason '{reason}'.",
                False: "The job failed, but its log could not be analysed.",
            }[bool(reason and reason != "unknown_failure")]
            row = {
                "category": category,
                "root_cause": f"{cause} {'; '.join(note)}.",
                "fix_steps": ["Open the job in GitLab and read its log."],
                "evidence_lines": [],
                "is_transient": transient,
                "confidence": 0.3,
                "analyser": "heuristic",
                "model": None,
                "prompt_tokens": None,
                "completion_tokens": None,
                "latency_ms": None,
                "excerpt": None,
                "excerpt_lines": None,
            }
        base = {"job_name": job.get("job_name"), "evidence": row["evidence_lines"], "root_cause": row["root_cause"]}
        return {
            **row,
            "event_id": int(job["event_id"]),
            "job_id": str(job["job_id"]),
            "job_name": job.get("job_name"),
            "stage": job.get("stage"),
            "job_url": job.get("job_url"),
            "analyser_note": "; ".join(note) or None,
            "fingerprint": fingerprint(
                job.get("project_path") or str(job["project_id"]), job.get("job_name") or "", first_error_line(base)
            ),
            "retried_job_id": None,
            "created_at": run_time(context),
        }

    def _passing_log(self, job: Mapping[str, Any]) -> bytes | None:
        """The same job's log in the last green pipeline on the same ref (the excerpt's diff base)."""
        from devops_automation.hooks.api import ApiError

        try:
            good = self.gitlab.last_successful_job(
                job["project_id"], job.get("ref"), job.get("job_name"), before_pipeline_id=job["pipeline_id"]
            )
            if not good:
                return None
            trace = self.gitlab.trace(
                job["project_id"], good["id"], max_bytes=min(int(self.max_trace_bytes), 5_000_000)
            )
        except ApiError as exc:  # the diff base is a nicety: never fail the analysis for it
            self.log.warning("No passing log for job %s: %s", job.get("job_name"), exc)
            return None
        return trace.data if trace is not None and not is_binary(trace.data) else None

    def _maybe_retry(self, job: Mapping[str, Any], row: dict[str, Any], existing: Mapping[str, Any] | None) -> None:
        from devops_automation.workflows.ci_failure_triage.store import save_analysis

        if job.get("bridge") or (existing or {}).get("retried_job_id") or row.get("retried_job_id"):
            return
        if not row["is_transient"] or float(row["confidence"] or 0) < float(self.retry_min_confidence):
            return
        new = self.gitlab.retry_job(job["project_id"], job["job_id"])
        row["retried_job_id"] = str(new.get("id"))
        save_analysis(self.store, row)
        self.log.info(
            "Job %s looked transient (confidence %.2f): retried as job %s",
            job["job_id"],
            row["confidence"],
            row["retried_job_id"],
        )


def _summary(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: row.get(k)
        for k in (
            "event_id",
            "job_id",
            "job_name",
            "category",
            "analyser",
            "is_transient",
            "confidence",
            "retried_job_id",
        )
    }
