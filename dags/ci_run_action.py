"""
### CI run action: re-run, re-run failed jobs, cancel, or redeploy a previous version

Trigger it from the UI (▶, the form below) or the CLI. The trigger form is the front end, the run
history the audit trail, Airflow's permissions who may do it (anyone allowed to trigger this DAG).

**Actions** (GitHub Actions through `github_default`, GitLab CI through `gitlab_default`):

- `rerun`: GitHub `POST …/actions/runs/{run_id}/rerun` (with `job_id`: `…/actions/jobs/{job_id}/rerun`,
  the job and its dependents); GitLab `POST …/pipelines/:id/retry` (with `job_id`: `…/jobs/:job_id/retry`).
- `rerun_failed`: GitHub `…/rerun-failed-jobs`; GitLab `…/pipelines/:id/retry` (it retries the failed and
  canceled jobs, in the same pipeline).
- `cancel`: GitHub `…/cancel`, and `…/force-cancel` when the run is still going after
  `force_cancel_after_minutes`; GitLab `…/pipelines/:id/cancel`.
- `redeploy`: GitHub re-runs the workflow run that made the chosen deployment (`redeploy_mode`
  `rerun_workflow`: same SHA) or creates a deployment of its SHA (`create_deployment`); GitLab retries
  that deployment's deploy job (what GitLab's own rollback does).

**Refused before anything is sent** (the run fails with the reason): a re-run of a run still in
progress, a cancel of a finished run, re-running failed jobs of a run without any, a GitHub run older
than 30 days or with 50 attempts, a redeploy of a SHA that never deployed successfully to that
environment (the error lists the ones that did) or of the SHA it runs now. `dry_run` shows the call
that would be made and sends nothing.

**Finding the deployment to go back to**: the environment's successful deployments, newest first —
GitHub: `GET /repos/{owner}/{repo}/deployments?environment=production` and each one's
`/deployments/{id}/statuses` (a `success` status, or `inactive` once superseded), or the repository's
*Deployments* page; GitLab: `GET /projects/:id/deployments?environment=production&status=success`
with `order_by=id&sort=desc`, or *Operate → Environments → production*. Give its id, or its commit
SHA (7+ characters).

**Steps**
1. **act_github** / **act_gitlab** (pools `github_api` / `gitlab_api`; the other provider's task is
   skipped): reads the run / pipeline / deployments, applies the guards, records the request in the
   audit table `ci_run_actions`, sends the one write, then waits **deferred** (in the triggerer, no
   worker slot) until it took effect: the new attempt or the retried jobs finished, the cancel landed,
   the deployment ended. A retried task finds what its earlier try sent and never sends it twice.
   Extra link **CI run** to the run, pipeline or job.
2. **report**: the outcome as the run's note (connection `airflow_api`) and, when `notify` asks, one
   Slack (`slack_default`) / Telegram (`telegram_default`) message; fails when the action was refused,
   failed or did not finish.

Every action (who triggered the run, when, what, GitHub's/GitLab's answers, the outcome) is a row of
`ci_run_actions` in the results database; the attempts and jobs started here are tagged there, so the
analytics can tell these re-runs from the others.

```bash
airflow dags trigger ci_run_action -c '{"provider": "github", "repository": "acme/api",
  "action": "rerun_failed", "run_id": 7000000123, "reason": "flaky test"}'
```
"""

from __future__ import annotations

from airflow.sdk import DAG, Param

from devops_automation.dag_defaults import START_DATE, default_args
from devops_automation.workflows.ci_run_action.operators import CIRunActionOperator, CIRunActionReportOperator

with DAG(
    dag_id="ci_run_action",
    description="Re-run, re-run failed jobs, cancel or redeploy a GitHub Actions run / GitLab pipeline, audited",
    doc_md=__doc__,
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=8,
    render_template_as_native_obj=True,
    tags=["github", "gitlab", "ci", "devops-automation"],
    default_args=default_args(retry_minutes=1),
    params={
        "provider": Param(
            "github",
            enum=["github", "gitlab"],
            title="Provider",
            description="GitHub Actions (connection github_default) or GitLab CI (gitlab_default).",
        ),
        "repository": Param(
            "",
            type="string",
            title="Repository / project",
            description="GitHub: owner/name. GitLab: the project id or its path group/project.",
        ),
        "action": Param(
            "rerun_failed",
            enum=["rerun", "rerun_failed", "cancel", "redeploy"],
            title="Action",
            description=(
                "rerun: every job again (or only job_id); rerun_failed: the failed jobs; cancel: stop the run; "
                "redeploy: put an earlier successful deployment back in an environment."
            ),
        ),
        "run_id": Param(
            "",
            type=["string", "integer"],
            title="Run or pipeline id",
            description="GitHub workflow run id / GitLab pipeline id (from its URL). Empty for redeploy.",
        ),
        "job_id": Param(
            "",
            type=["string", "integer"],
            title="Job id (optional)",
            description="rerun only this job (GitHub: with its dependents). Leave empty otherwise.",
        ),
        "reason": Param(
            "",
            type="string",
            title="Reason",
            description="Why (kept in the audit trail and in the message).",
        ),
        "environment": Param(
            "",
            type="string",
            title="Environment",
            description="redeploy: the environment to go back in, e.g. production.",
            section="Redeploy",
        ),
        "deployment": Param(
            "",
            type="string",
            title="Deployment id or commit SHA",
            description=(
                "redeploy: one of the environment's earlier successful deployments (its id, or its SHA, 7+ "
                "characters). The DAG's docs say how to list them."
            ),
            section="Redeploy",
        ),
        "redeploy_mode": Param(
            "rerun_workflow",
            enum=["rerun_workflow", "create_deployment"],
            title="GitHub redeploy by",
            description=(
                "rerun_workflow: re-run the workflow run that made that deployment (same SHA); create_deployment: "
                "create a deployment of its SHA for your deployment automation. GitLab always retries the deploy job."
            ),
            section="Redeploy",
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Check and show the call that would be made; send nothing.",
        ),
        "force_cancel_after_minutes": Param(
            5,
            type="number",
            minimum=0,
            title="Force-cancel after (minutes)",
            description="GitHub cancel: a run still going this long after the cancel is force-cancelled (0: never).",
            section="Waiting",
        ),
        "timeout_minutes": Param(
            120,
            type="number",
            minimum=1,
            title="Wait at most (minutes)",
            description="How long to wait for the action to take effect before the run fails.",
            section="Waiting",
        ),
        "poll_interval_seconds": Param(
            30,
            type="integer",
            minimum=1,
            title="Look every (seconds)",
            description="How often the wait asks GitHub / GitLab (one request, in the triggerer).",
            section="Waiting",
        ),
        "notify": Param(
            [],
            type="array",
            items={"type": "string", "enum": ["slack", "telegram"]},
            title="Tell",
            description="Send the outcome to Slack (slack_default) and/or Telegram (telegram_default).",
            section="Notify",
        ),
        "slack_channel": Param(
            "",
            type="string",
            title="Slack channel",
            description="Channel id; empty: the connection's channel.",
            section="Notify",
        ),
        "telegram_chat": Param(
            "",
            type="string",
            title="Telegram chat",
            description="Chat id; empty: the connection's chat.",
            section="Notify",
        ),
    },
) as dag:
    act = [
        CIRunActionOperator(task_id="act_github", provider="github", pool="github_api"),
        CIRunActionOperator(task_id="act_gitlab", provider="gitlab", pool="gitlab_api"),
    ]
    report = CIRunActionReportOperator(task_id="report", trigger_rule="all_done")
    act >> report
