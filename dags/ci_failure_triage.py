"""
### CI failure triage

The first look at a failed GitLab pipeline, seconds after it failed: which job, which lines of its
log matter, what the cause most likely is and how to fix it — stored, and told to the team once.

**How failures arrive** (both at once is fine: a pipeline is analysed once)
- **E-mail** (any GitLab, no admin rights): GitLab's "Failed pipeline" notification reaches the
  `imap_default` mailbox. The asset `gitlab_failure_mail` has an `AssetWatcher` whose trigger
  waits with IMAP IDLE in the triggerer: a new message starts this DAG within seconds. Every run
  also sweeps the folder, so mail that came while Airflow was down is not missed (and an hourly run
  catches anything else).
- **Webhook**: GitLab → `POST <api-server>/devops-automation/webhooks/gitlab` (secret token checked
  in constant time) starts a run with the event as conf.
- **By hand**: trigger with `project` + `pipeline_id`.

**Steps**
1. **collect**: sort the mailbox (GitLab failure mails → events; success/fixed → processed folder;
   unknown senders, spoofed or unreadable mail → `needs-attention`, reported once), merge with the
   webhook/manual events, claim each pipeline in the results store, list its failed jobs
   (`allow_failure` jobs skipped) and the test report summary.
2. **analyse** (mapped, one per failed job, pool `gitlab_api`): job log (streamed, capped, tail
   kept) → excerpt (diffed against the last green run of the job) → secrets redacted → LLM
   (`llm_default`, any OpenAI-compatible endpoint) or the built-in heuristic → stored at once.
   Optional: retry a job once when the analysis says transient with high confidence.
3. **notify**: one Slack (Block Kit) and one Telegram message per pipeline, grouped by job, with
   links; never twice (dedup keys in the store); a recurring failure (same fingerprint within the
   window) is counted in the first message's thread instead of re-sent; a failed send is retried by
   later runs — the analysis is already stored.
4. **archive**: flag the pipeline's e-mails and move them to the processed folder.
"""

from __future__ import annotations

from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable, Param

from devops_automation.assets import gitlab_failure_mail
from devops_automation.dag_defaults import START_DATE, default_args
from devops_automation.workflows.ci_failure_triage.operators.analyse import TriageAnalyseOperator
from devops_automation.workflows.ci_failure_triage.operators.archive import TriageArchiveOperator
from devops_automation.workflows.ci_failure_triage.operators.collect import TriageCollectOperator
from devops_automation.workflows.ci_failure_triage.operators.notify import TriageNotifyOperator

with DAG(
    dag_id="ci_failure_triage",
    description="GitLab pipeline failures (e-mail, webhook) -> root cause and fix -> stored and notified",
    doc_md=__doc__,
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("17 * * * *", timezone="UTC"), assets=[gitlab_failure_mail()]
    ),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=16,  # webhook runs (one per pipeline) must not queue behind each other
    render_template_as_native_obj=True,
    tags=["gitlab", "ci", "devops-automation"],
    default_args=default_args(retry_minutes=1),
    params={
        "project": Param(
            "",
            type="string",
            description=(
                "Triage one pipeline by hand: GitLab project id or path (group/project). Leave empty otherwise."
            ),
        ),
        "pipeline_id": Param(
            "", type=["string", "integer"], description="Triage one pipeline by hand: its id (with project)."
        ),
        "events": Param(
            [],
            type="array",
            description="Failure events given by the webhook receiver (filled in automatically; leave empty).",
        ),
        "sweep_mailbox": Param(
            True, type="boolean", description="Read the imap_default mailbox for GitLab failure e-mails."
        ),
        "force": Param(
            False,
            type="boolean",
            description="Analyse again even when the pipeline was analysed before (messages are still sent once).",
        ),
        "retry_transient": Param(
            False,
            type="boolean",
            description="Retry a failed job once through the GitLab API when the analysis calls it transient "
            "with high confidence.",
        ),
        "retry_min_confidence": Param(
            0.8, type="number", minimum=0, maximum=1, description="Confidence needed for the automatic retry."
        ),
        "budget": Param(
            4000, type="integer", minimum=500, description="Size of the log excerpt sent to the LLM, in characters."
        ),
        "max_trace_mb": Param(
            20,
            type="number",
            minimum=1,
            description="Read at most this many MB of a job log (the end of the log is kept).",
        ),
        "fingerprint_window_hours": Param(
            24,
            type="number",
            minimum=0,
            description=(
                "The same failure again within this window is counted in the first message's thread, not re-sent."
            ),
        ),
        "notify": Param(
            True, type="boolean", description="Send Slack/Telegram messages (the analysis is stored either way)."
        ),
    },
) as dag:
    collected = TriageCollectOperator(
        task_id="collect",
        events="{{ params.events }}",
        project="{{ params.project }}",
        pipeline_id="{{ params.pipeline_id }}",
        force="{{ params.force }}",
        sweep_mailbox="{{ params.sweep_mailbox }}",
        weight_rule="absolute",  # started work first: a new run's collect waits behind analyses in flight
        priority_weight=1,
    )
    analysed = TriageAnalyseOperator.partial(
        task_id="analyse",
        budget="{{ params.budget }}",
        max_trace_bytes="{{ (params.max_trace_mb * 1000000) | int }}",
        retry_transient="{{ params.retry_transient }}",
        retry_min_confidence="{{ params.retry_min_confidence }}",
        force="{{ params.force }}",
        pool="gitlab_api",
        weight_rule="absolute",  # people wait for it: ahead of batch collection (ci_pipeline_analytics) in the pool
        priority_weight=10,
        map_index_template="{{ task.job.job_name }} #{{ task.job.job_id }}",
    ).expand(job=collected.output)
    notified = TriageNotifyOperator(
        task_id="notify",
        collected=collected.output["summary"],
        fingerprint_window_hours="{{ params.fingerprint_window_hours }}",
        enabled="{{ params.notify }}",
        trigger_rule="all_done",
    )
    archived = TriageArchiveOperator(task_id="archive", collected=collected.output["summary"], trigger_rule="all_done")
    analysed >> [notified, archived]
