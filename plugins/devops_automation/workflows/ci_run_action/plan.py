"""What ``ci_run_action`` may send, decided before anything is sent (plain Python, no Airflow).

* :func:`parse_request` checks the trigger form's values together (each Param alone is checked by its
  JSON schema) and names the Param that is wrong;
* the guards (:func:`plan_github_run`, :func:`choose_deployment`, :func:`plan_github_redeploy`,
  :func:`plan_gitlab_pipeline`, :func:`plan_gitlab_redeploy`) read the state GitHub/GitLab answered and
  either raise :class:`Refused` with a clear reason (nothing is sent) or return the :class:`Plan`: the one
  write to send, what the trigger then watches, and what is recorded;
* :func:`took_effect` tells a retried task whether the write its earlier try recorded as ``sending`` went
  through (so it is not sent twice);
* :func:`outcome` turns the trigger's final observation into the recorded outcome.

Decisions where the API documents are silent:

* GitHub ``rerun`` with ``job_id`` re-runs that job and its dependents (``/jobs/{id}/rerun``); without
  it the whole run. GitLab has no "re-run the whole pipeline" in place: ``rerun`` and ``rerun_failed``
  both retry the pipeline (its failed and canceled jobs, in the same pipeline); a pipeline with none is
  refused (GitLab would answer 403), ``rerun`` with ``job_id`` retries that one job.
* A re-run of a run that has not completed is refused (GitHub answers 403; GitLab would retry the jobs
  that failed so far while others still run); so is a cancel of a finished run (GitHub: 409).
* The 30-day and 50-attempt limits of GitHub re-runs are checked against the Airflow run's own time
  (``run_after``), not the clock.
* Redeploy: the target is a deployment id or a SHA (at least 7 hex characters, a prefix) of a
  deployment to that environment with a successful status (GitHub: ``success``, or ``inactive`` = it had
  succeeded and was superseded; GitLab: status ``success``). A SHA that never deployed successfully
  there is refused, listing the ones that did; so is the SHA the environment runs now (its newest
  successful deployment): that is no going back.
* GitHub redeploy ``rerun_workflow`` re-runs the workflow run a status of the deployment links to
  (``log_url``/``target_url`` ``…/actions/runs/{id}``, as ``environment:`` jobs write them): a re-run
  uses the run's original SHA. No linked run, or one older than 30 days: refused, naming
  ``create_deployment``, which creates a deployment of the SHA (no auto-merge, no required checks) for
  whatever executes deployments to pick up.
* GitLab redeploy retries the deployment's deploy job (GitLab's "rollback" does the same); when that job
  was retried since, its newest attempt (same pipeline, same SHA) is retried instead.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

ACTIONS = ("rerun", "rerun_failed", "cancel", "redeploy")
PROVIDERS = ("github", "gitlab")
REDEPLOY_MODES = ("rerun_workflow", "create_deployment")
CHANNELS = ("slack", "telegram")
GITHUB_REPO_RE = re.compile(r"(?!\.{1,2}(?:/|$))[A-Za-z0-9_.-]+/(?!\.{1,2}$)[A-Za-z0-9_.-]+")
GITLAB_PATH_RE = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+")
SHA_RE = re.compile(r"[0-9a-f]{7,40}")
RUN_LINK_RE = re.compile(r"/actions/runs/(\d+)")
#: GitHub: a run's status once it has ended
COMPLETED = "completed"
GITHUB_FAILED = frozenset({"failure", "timed_out", "cancelled", "startup_failure"})
RERUN_MAX_AGE = dt.timedelta(days=30)
RERUN_MAX_ATTEMPTS = 50
GITLAB_COMPLETED = frozenset({"success", "failed", "canceled", "skipped"})
#: GitHub deployment status states that mean "this deployment succeeded"
GITHUB_DEPLOYED = frozenset({"success", "inactive"})
#: outcome words (ours, as ci_runs' vocabulary where they overlap)
OUTCOMES = ("success", "failure", "timed_out", "cancelled", "skipped", "other", "refused", "dry_run", "error")
_GITHUB_OUTCOME = {"success": "success", "failure": "failure", "startup_failure": "failure", "timed_out": "timed_out"}
_GITHUB_OUTCOME |= {"cancelled": "cancelled", "skipped": "skipped", "neutral": "skipped"}
_GITLAB_OUTCOME = {"success": "success", "failed": "failure", "canceled": "cancelled", "skipped": "skipped"}
_DEPLOYMENT_OUTCOME = {"success": "success", "inactive": "success", "failure": "failure", "error": "failure"}


class Refused(ValueError):
    """A guard refused the action: it makes no sense as asked, and nothing was sent."""


@dataclasses.dataclass(frozen=True)
class Request:
    """The trigger form's values, checked together."""

    provider: str
    repo: str
    action: str
    run_id: int | None = None
    job_id: int | None = None
    reason: str = ""
    environment: str = ""
    deployment: str = ""  # redeploy: a deployment id or a SHA (prefix)
    redeploy_mode: str = "rerun_workflow"
    dry_run: bool = False
    force_cancel_after_s: float | None = 300.0
    timeout_s: float = 7200.0
    poll_interval_s: float = 30.0
    notify: tuple[str, ...] = ()
    slack_channel: str = ""
    telegram_chat: str = ""

    def describe(self) -> str:
        """``rerun_failed of github acme/api run 123`` and the like."""
        if self.action == "redeploy":
            return f"redeploy of {self.deployment} to {self.environment} on {self.provider} {self.repo}"
        noun = "run" if self.provider == "github" else "pipeline"
        job = f" job {self.job_id}" if self.job_id else ""
        return f"{self.action} of {self.provider} {self.repo} {noun} {self.run_id}{job}"


@dataclasses.dataclass
class Plan:
    """The one write to send and what follows from it."""

    method: str
    path: str
    what: str  # the write in words, for the log, the note and dry runs
    watch: dict[str, Any]  # for the trigger; ``None`` values are filled from the write's answer
    body: dict[str, Any] | None = None
    call: str = ""  # which hook write: rerun rerun_failed rerun_job cancel create_deployment retry_pipeline ...
    repo: str = ""  # the canonical name (GitHub full_name; GitLab path_with_namespace)
    project: str | None = None  # GitLab: the numeric project id the writes and the wait use
    run_id: str | None = None
    job_id: str | None = None
    url: str | None = None
    attempt_before: int | None = None
    after_job_id: str | None = None
    deployment_id: str | None = None
    target_sha: str | None = None
    retried_job_ids: list[str] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# -- the form --------------------------------------------------------------------------------------
def _text(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name)
    return "" if value is None else str(value).strip()


def _id(params: Mapping[str, Any], name: str, what: str) -> int | None:
    value = params.get(name)
    if value in (None, ""):
        return None
    text = str(value).strip().lstrip("#")
    if isinstance(value, bool) or not text.isdigit() or int(text) <= 0:
        raise ValueError(f"Param {name}: {what} must be a positive number, got {value!r}")
    return int(text)


def _seconds(params: Mapping[str, Any], name: str, default: float, scale: float) -> float:
    value = params.get(name)
    if value in (None, ""):
        return default
    try:
        number = float(value) * scale
    except (TypeError, ValueError):
        raise ValueError(f"Param {name}: a number is needed, got {value!r}") from None
    if number < 0:
        raise ValueError(f"Param {name}: must not be negative, got {value!r}")
    return number


def parse_request(params: Mapping[str, Any]) -> Request:
    """The form's values as a :class:`Request`; a ``ValueError`` names the Param that is wrong."""
    provider = _text(params, "provider").lower()
    if provider not in PROVIDERS:
        raise ValueError(f"Param provider: github or gitlab, got {params.get('provider')!r}")
    action = _text(params, "action").lower()
    if action not in ACTIONS:
        raise ValueError(f"Param action: one of {', '.join(ACTIONS)}, got {params.get('action')!r}")
    repo = _text(params, "repository").strip("/")
    if provider == "github" and not GITHUB_REPO_RE.fullmatch(repo):
        raise ValueError(f"Param repository: a GitHub repository is 'owner/name', got {params.get('repository')!r}")
    if provider == "gitlab" and not (repo.isdigit() or GITLAB_PATH_RE.fullmatch(repo)):
        raise ValueError(
            f"Param repository: a GitLab project is its id or path 'group/project', got {params.get('repository')!r}"
        )
    noun = "the run id" if provider == "github" else "the pipeline id"
    run_id = _id(params, "run_id", noun)
    job_id = _id(params, "job_id", "the job id")
    environment, deployment = _text(params, "environment"), _text(params, "deployment").lower()
    mode = _text(params, "redeploy_mode") or "rerun_workflow"
    if mode not in REDEPLOY_MODES:
        raise ValueError(f"Param redeploy_mode: one of {', '.join(REDEPLOY_MODES)}, got {mode!r}")
    if action == "redeploy":
        if not environment:
            raise ValueError("Param environment: redeploy needs the environment to go back in (e.g. production)")
        if not deployment:
            raise ValueError(
                "Param deployment: redeploy needs the deployment id or the commit SHA to go back to "
                "(one of the environment's earlier successful deployments; the DAG's docs say how to list them)"
            )
        if not (deployment.isdigit() or SHA_RE.fullmatch(deployment)):
            raise ValueError(
                f"Param deployment: a deployment id or a commit SHA (7 to 40 hex characters), got {deployment!r}"
            )
        if run_id is not None or job_id is not None:
            raise ValueError("Params run_id / job_id: leave them empty for redeploy (the deployment says what runs)")
        if mode == "create_deployment" and provider == "gitlab":
            raise ValueError("Param redeploy_mode: create_deployment is GitHub's; GitLab redeploys by retrying the job")
    else:
        if run_id is None:
            raise ValueError(f"Param run_id: {action} needs {noun}")
        if job_id is not None and action != "rerun":
            raise ValueError(f"Param job_id: only a rerun can be limited to one job, not {action}")
    notify = params.get("notify") or []
    if isinstance(notify, str):
        notify = [n for n in re.split(r"[,\s]+", notify) if n]
    if not isinstance(notify, list | tuple) or any(str(n).lower() not in CHANNELS for n in notify):
        raise ValueError(f"Param notify: a list of {', '.join(CHANNELS)}, got {params.get('notify')!r}")
    force_after = _seconds(params, "force_cancel_after_minutes", 300.0, 60.0)
    poll = max(1.0, _seconds(params, "poll_interval_seconds", 30.0, 1.0))
    return Request(
        provider=provider,
        repo=repo,
        action=action,
        run_id=run_id,
        job_id=job_id,
        reason=_text(params, "reason"),
        environment=environment,
        deployment=deployment,
        redeploy_mode=mode,
        dry_run=_flag(params.get("dry_run")),
        force_cancel_after_s=force_after if force_after > 0 else None,
        timeout_s=max(poll, _seconds(params, "timeout_minutes", 7200.0, 60.0)),
        poll_interval_s=poll,
        notify=tuple(dict.fromkeys(str(n).lower() for n in notify)),
        slack_channel=_text(params, "slack_channel"),
        telegram_chat=_text(params, "telegram_chat"),
    )


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0", "no", "off")
    return bool(value)


# -- times -----------------------------------------------------------------------------------------
def parse_time(value: Any) -> dt.datetime | None:
    """An API timestamp (ISO 8601, ``Z`` or an offset) as an aware UTC datetime; None if unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _day(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "?"


# -- GitHub ----------------------------------------------------------------------------------------
def _github_rerun_guards(label: str, run: Mapping[str, Any], now: dt.datetime, hint: str = "") -> int:
    status, conclusion = run.get("status"), run.get("conclusion")
    attempt = int(run.get("run_attempt") or 1)
    if status != COMPLETED:
        raise Refused(f"{label} is still {status} (attempt {attempt}): re-run it once it has completed, or cancel it")
    created = parse_time(run.get("created_at"))
    if created is not None and now - created > RERUN_MAX_AGE:
        raise Refused(
            f"{label} was created {_day(created)}, more than 30 days before this request ({_day(now)}): "
            f"GitHub re-runs runs up to 30 days old{hint}"
        )
    if attempt >= RERUN_MAX_ATTEMPTS:
        raise Refused(f"{label} has had {attempt} attempts: GitHub allows at most {RERUN_MAX_ATTEMPTS}")
    if conclusion is None:
        raise Refused(f"{label} completed without a conclusion: nothing to re-run")
    return attempt


def plan_github_run(
    req: Request, run: Mapping[str, Any], now: dt.datetime, job: Mapping[str, Any] | None = None
) -> Plan:
    """Guards and the write for ``rerun`` / ``rerun_failed`` / ``cancel`` of a GitHub run (``GET
    /actions/runs/{id}``); ``job`` is ``GET /actions/jobs/{job_id}`` when the re-run names one job."""
    repo = str((run.get("repository") or {}).get("full_name") or req.repo)
    base = f"/repos/{repo}/actions"
    label = f"{repo} run {req.run_id}"
    status, conclusion = run.get("status"), run.get("conclusion")
    attempt = int(run.get("run_attempt") or 1)
    common = {"repo": repo, "run_id": str(req.run_id), "url": run.get("html_url"), "attempt_before": attempt}
    if req.action == "cancel":
        if status == COMPLETED:
            raise Refused(f"{label} has already completed ({conclusion}): there is nothing to cancel")
        return Plan(
            "POST",
            f"{base}/runs/{req.run_id}/cancel",
            f"cancel {label} (status {status}, attempt {attempt})",
            {"kind": "cancel", "run_id": req.run_id},
            call="cancel",
            **common,
        )
    _github_rerun_guards(label, run, now)
    watch = {"kind": "attempt", "run_id": req.run_id, "attempt": attempt + 1}
    if req.action == "rerun_failed":
        if conclusion not in GITHUB_FAILED:
            raise Refused(f"{label} concluded {conclusion}: it has no failed jobs to re-run")
        what = f"re-run the failed jobs of {label} ({conclusion}; attempt {attempt} -> {attempt + 1})"
        return Plan("POST", f"{base}/runs/{req.run_id}/rerun-failed-jobs", what, watch, call="rerun_failed", **common)
    if req.job_id is not None:
        if job is None or int(job.get("run_id") or 0) != req.run_id:
            raise Refused(f"job {req.job_id} is not a job of {label}")
        if job.get("status") != COMPLETED:
            raise Refused(f"job {req.job_id} ({job.get('name')}) of {label} is still {job.get('status')}")
        what = f"re-run job {req.job_id} ({job.get('name')}) of {label} and its dependents (attempt {attempt + 1})"
        job_id = str(req.job_id)
        return Plan("POST", f"{base}/jobs/{job_id}/rerun", what, watch, call="rerun_job", job_id=job_id, **common)
    what = f"re-run every job of {label} ({conclusion}; attempt {attempt} -> {attempt + 1})"
    return Plan("POST", f"{base}/runs/{req.run_id}/rerun", what, watch, call="rerun", **common)


def _deployed(statuses: Sequence[Mapping[str, Any]], states: frozenset[str]) -> bool:
    return any(s.get("state") in states for s in statuses)


def _short(sha: Any) -> str:
    return str(sha or "?")[:7]


def _candidates(found: Sequence[Mapping[str, Any]], shown: int = 5) -> str:
    names = [
        f"{_short(d.get('sha'))} (deployment {d.get('id')}, {_day(parse_time(d.get('created_at')))})" for d in found
    ]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more if names else "none"


def _match(req: Request, deployments: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    wanted = req.deployment
    if wanted.isdigit() and any(str(d.get("id")) == wanted for d in deployments):
        return [d for d in deployments if str(d.get("id")) == wanted]
    return [d for d in deployments if str(d.get("sha") or "").lower().startswith(wanted)]


def choose_deployment(
    req: Request,
    deployments: Sequence[Mapping[str, Any]],
    *,
    succeeded: Any,
    environments: Sequence[str] | None = None,
) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """``(target, current)``: the newest successful deployment matching the form's ``deployment`` (id or
    SHA prefix) and the environment's newest successful one. ``deployments``: the environment's, newest
    first; ``succeeded(d)`` tells whether one succeeded. Refuses when the environment has none, when the
    SHA (or id) never deployed successfully there, and when it is what runs there now."""
    env = req.environment
    good = [d for d in deployments if succeeded(d)]
    if not deployments:
        known = f" (its environments: {', '.join(environments)})" if environments else ""
        raise Refused(
            f"{req.provider} {req.repo} has no deployment to environment {env!r}{known}: nothing to go back to"
        )
    matches = _match(req, deployments)
    target = next((d for d in matches if succeeded(d)), None)
    if target is None:
        tried = "was deployed there but never successfully" if matches else "was never deployed to"
        raise Refused(
            f"{req.deployment} {tried} {env!r} of {req.repo}; its successful deployments, newest first: "
            f"{_candidates(good)}"
        )
    current = good[0]
    if str(current.get("sha")) == str(target.get("sha")):
        raise Refused(
            f"{_short(target.get('sha'))} is what {env!r} of {req.repo} runs now (deployment {current.get('id')}, "
            f"{_day(parse_time(current.get('created_at')))}): choose an earlier deployment to go back to "
            f"(earlier ones: {_candidates([d for d in good if d.get('sha') != current.get('sha')])})"
        )
    return target, current


def github_succeeded(deployment: Mapping[str, Any]) -> bool:
    return _deployed(deployment.get("statuses") or [], GITHUB_DEPLOYED)


def linked_run_id(deployment: Mapping[str, Any]) -> int | None:
    """The workflow run a GitHub deployment's statuses link to (newest status first), or None."""
    statuses = sorted(
        deployment.get("statuses") or [], key=lambda s: (str(s.get("created_at") or ""), int(s.get("id") or 0))
    )
    for status in reversed(statuses):
        for field in ("log_url", "target_url"):
            found = RUN_LINK_RE.search(str(status.get(field) or ""))
            if found:
                return int(found.group(1))
    return None


def plan_github_redeploy(
    req: Request,
    target: Mapping[str, Any],
    now: dt.datetime,
    *,
    repo: str,
    run: Mapping[str, Any] | None = None,
    marker: Mapping[str, Any] | None = None,
) -> Plan:
    """The write of a GitHub redeploy of ``target`` (from :func:`choose_deployment`): re-run the linked
    workflow run ``run`` (mode ``rerun_workflow``), or create a deployment of its SHA carrying ``marker``
    in its payload (``create_deployment``)."""
    sha = str(target.get("sha"))
    common = {"repo": repo, "deployment_id": str(target.get("id")), "target_sha": sha}
    label = f"{_short(sha)} (deployment {target.get('id')}) to {req.environment!r} of {repo}"
    if req.redeploy_mode == "create_deployment":
        body = {
            "ref": sha,
            "environment": req.environment,
            "description": f"Redeploy of {_short(sha)} (deployment {target.get('id')}) by ci_run_action",
            "payload": {"ci_run_action": dict(marker or {})},
        }
        what = f"create a deployment of {label}"
        watch = {"kind": "deployment", "deployment_id": None}
        return Plan("POST", f"/repos/{repo}/deployments", what, watch, body, call="create_deployment", **common)
    run_id = linked_run_id(target)
    if run_id is None or run is None:
        raise Refused(
            f"deployment {target.get('id')} of {_short(sha)} links to no workflow run (its statuses have no "
            f"…/actions/runs/<id> URL): set redeploy_mode to create_deployment"
        )
    run_label = f"workflow run {run_id} that deployed it"
    attempt = _github_rerun_guards(run_label, run, now, hint="; set redeploy_mode to create_deployment")
    what = f"re-run {run_label} ({run.get('name')}): redeploy {label}"
    watch = {"kind": "attempt", "run_id": run_id, "attempt": attempt + 1}
    return Plan(
        "POST",
        f"/repos/{repo}/actions/runs/{run_id}/rerun",
        what,
        watch,
        call="rerun",
        run_id=str(run_id),
        url=run.get("html_url"),
        attempt_before=attempt,
        **common,
    )


# -- GitLab ----------------------------------------------------------------------------------------
def _latest(jobs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The newest attempt of each job name (GitLab lists every attempt with ``include_retried``)."""
    newest: dict[Any, Mapping[str, Any]] = {}
    for job in jobs:
        name = job.get("name")
        if name not in newest or int(job["id"]) > int(newest[name]["id"]):
            newest[name] = job
    return sorted(newest.values(), key=lambda j: int(j["id"]))


def plan_gitlab_pipeline(
    req: Request, project: Mapping[str, Any], pipeline: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]]
) -> Plan:
    """Guards and the write for ``rerun`` / ``rerun_failed`` / ``cancel`` of a GitLab pipeline; ``jobs``
    are its jobs and bridges with every attempt (``include_retried=true``)."""
    path = str(project.get("path_with_namespace") or req.repo)
    pid = int(project.get("id") or 0) or req.repo
    base = f"/projects/{pid}"
    label = f"{path} pipeline {req.run_id}"
    status = str(pipeline.get("status"))
    after = max((int(j["id"]) for j in jobs), default=0)
    common = {"repo": path, "project": str(pid), "run_id": str(req.run_id), "url": pipeline.get("web_url")}
    common["after_job_id"] = str(after)
    if req.action == "cancel":
        if status in GITLAB_COMPLETED:
            raise Refused(f"{label} has already finished ({status}): there is nothing to cancel")
        return Plan(
            "POST",
            f"{base}/pipelines/{req.run_id}/cancel",
            f"cancel {label} (status {status})",
            {"kind": "cancel", "pipeline_id": req.run_id},
            call="cancel_pipeline",
            **common,
        )
    if status not in GITLAB_COMPLETED:
        raise Refused(f"{label} is still {status}: re-run it once it has finished, or cancel it")
    latest = _latest(jobs)
    if req.job_id is not None:
        job = next((j for j in jobs if int(j["id"]) == req.job_id), None)
        if job is None:
            raise Refused(f"job {req.job_id} is not a job of {label}")
        if job not in latest:
            newer = next(j for j in latest if j.get("name") == job.get("name"))
            raise Refused(
                f"job {req.job_id} ({job.get('name')}) was retried since: its newest attempt is {newer['id']}"
            )
        what = f"retry job {req.job_id} ({job.get('name')}, {job.get('status')}) of {label}"
        return Plan(
            "POST",
            f"{base}/jobs/{req.job_id}/retry",
            what,
            {"kind": "job", "job_id": None},
            call="retry_job",
            job_id=str(req.job_id),
            retried_job_ids=[str(req.job_id)],
            **common,
        )
    retryable = [j for j in latest if j.get("status") in ("failed", "canceled")]
    if not retryable:
        raise Refused(
            f"{label} has no failed or canceled job ({status}): GitLab retries only those; re-run one job with "
            f"job_id, or start a new pipeline"
        )
    names = ", ".join(str(j.get("name")) for j in retryable)
    what = f"retry {label} ({status}): its failed/canceled jobs {names}"
    return Plan(
        "POST",
        f"{base}/pipelines/{req.run_id}/retry",
        what,
        {"kind": "pipeline", "pipeline_id": req.run_id, "after_job_id": after},
        call="retry_pipeline",
        retried_job_ids=[str(j["id"]) for j in retryable],
        **common,
    )


def gitlab_succeeded(deployment: Mapping[str, Any]) -> bool:
    return deployment.get("status") == "success"


def plan_gitlab_redeploy(
    req: Request,
    project: Mapping[str, Any],
    target: Mapping[str, Any],
    pipeline_jobs: Sequence[Mapping[str, Any]],
) -> Plan:
    """The write of a GitLab redeploy of ``target`` (from :func:`choose_deployment`): retry its deploy job,
    or that job's newest attempt in the same pipeline (``pipeline_jobs``: every attempt)."""
    path = str(project.get("path_with_namespace") or req.repo)
    pid = int(project.get("id") or 0) or req.repo
    deployable = target.get("deployable") or {}
    if not deployable.get("id"):
        raise Refused(f"deployment {target.get('id')} has no deploy job to retry")
    name = deployable.get("name")
    same = [j for j in pipeline_jobs if j.get("name") == name] or [deployable]
    job = max(same, key=lambda j: int(j["id"]))
    if job.get("status") not in GITLAB_COMPLETED:
        raise Refused(f"deploy job {job['id']} ({name}) of {_short(target.get('sha'))} is still {job.get('status')}")
    pipeline_id = (deployable.get("pipeline") or {}).get("id")
    sha = str(target.get("sha"))
    what = (
        f"retry deploy job {job['id']} ({name}, pipeline {pipeline_id}): redeploy {_short(sha)} "
        f"(deployment {target.get('id')}) to {req.environment!r} of {path}"
    )
    return Plan(
        "POST",
        f"/projects/{pid}/jobs/{job['id']}/retry",
        what,
        {"kind": "job", "job_id": None},
        call="retry_job",
        repo=path,
        project=str(pid),
        run_id=str(pipeline_id) if pipeline_id else None,
        job_id=str(job["id"]),
        url=job.get("web_url") or deployable.get("web_url"),
        deployment_id=str(target.get("id")),
        target_sha=sha,
        retried_job_ids=[str(job["id"])],
    )


# -- after the write ---------------------------------------------------------------------------------
def took_effect(plan: Mapping[str, Any], *, run: Mapping[str, Any] | None = None, jobs: Any = None) -> bool:
    """Whether the write a try recorded as ``sending`` (and then died) went through, from what the API
    shows now: a GitHub re-run -> the run's ``run_attempt`` passed ``attempt_before``; a cancel -> the run
    or pipeline stopped (or is stopping); a GitLab retry -> jobs newer than ``after_job_id`` exist (a job
    retry: a newer job of that name); a created deployment -> ``jobs`` holds the deployments carrying our
    marker (any). A write that did not go through is sent (once) by the retried try."""
    watch = plan.get("watch") or {}
    kind = watch.get("kind")
    if kind == "attempt":
        return int((run or {}).get("run_attempt") or 0) > int(plan.get("attempt_before") or 0)
    if kind == "cancel":
        status = str((run or {}).get("status"))
        return status in (COMPLETED, "canceling", *GITLAB_COMPLETED)
    if kind == "deployment":
        return bool(jobs)
    after = int(plan.get("after_job_id") or 0)
    if kind == "pipeline":
        return any(int(j["id"]) > after for j in jobs or [])
    if kind == "job":
        retried = {str(i) for i in plan.get("retried_job_ids") or []}
        names = {j.get("name") for j in jobs or [] if str(j.get("id")) in retried}
        return any(j.get("name") in names and int(j["id"]) > max(map(int, retried or ["0"])) for j in jobs or [])
    raise ValueError(f"unknown watch kind {kind!r}")


def outcome(req: Request, plan: Mapping[str, Any], observed: Mapping[str, Any]) -> tuple[str, str, bool]:
    """``(outcome, detail, as_asked)`` of a finished wait: ``as_asked`` is False when the result is not what
    the action was for (a redeploy that failed, a cancel that found the run finished otherwise)."""
    kind = (plan.get("watch") or {}).get("kind")
    if kind in ("attempt", "cancel") and req.provider == "github":
        conclusion = str(observed.get("conclusion"))
        result = _GITHUB_OUTCOME.get(conclusion, "other")
        attempt = observed.get("run_attempt")
        if kind == "cancel":
            if result == "cancelled":
                return result, f"run {plan.get('run_id')} cancelled (attempt {attempt})", True
            return result, f"run {plan.get('run_id')} finished {conclusion} before the cancel landed", False
        detail = f"attempt {attempt} of run {plan.get('run_id')} finished: {conclusion}"
        return result, detail, result == "success" or req.action != "redeploy"
    if kind == "deployment":
        state = str(observed.get("state"))
        result = _DEPLOYMENT_OUTCOME.get(state, "other")
        return result, f"deployment {plan.get('deployment_id')} ended {state}", result == "success"
    status = str(observed.get("status"))
    result = _GITLAB_OUTCOME.get(status, "other")
    if kind == "cancel":
        as_asked = result == "cancelled"
        ended = "canceled" if as_asked else f"finished {status} before the cancel"
        detail = f"pipeline {plan.get('run_id')} {ended}"
        return result, detail, as_asked
    if kind == "job":
        detail = f"job {observed.get('id')} ({observed.get('name')}) finished: {status}"
        return result, detail, result == "success" or req.action != "redeploy"
    jobs = ", ".join(f"{j.get('name')} {j.get('status')}" for j in observed.get("new_jobs") or [])
    return result, f"pipeline {plan.get('run_id')} finished {status} (retried: {jobs})", True
