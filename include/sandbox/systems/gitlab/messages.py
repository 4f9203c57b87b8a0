"""What GitLab *sends* about a pipeline: webhook deliveries and notification e-mails (gitlab.md §1.1-1.2).

The sandbox does not deliver them; tests and the demo ask the control API to build them and then
post the webhook to the DAG's receiver or drop the e-mail into the IMAP mailbox.

* ``pipeline_hook`` / ``job_hook``: the ``Pipeline Hook`` / ``Job Hook`` bodies of
  ``lib/gitlab/data_builder/{pipeline,build}.rb`` (timestamps as ``2016-08-12 15:23:28 UTC``;
  the pipeline's ``builds`` are its latest jobs only; a job hook's ``commit.id`` is the pipeline id);
* ``hook_headers``: the delivery headers (``X-Gitlab-Event``, ``X-Gitlab-Token`` sent verbatim, ...);
* ``pipeline_email``: the ``Notify.pipeline_{failed,success,fixed}_email`` message with its
  ``X-GitLab-*`` and ``List-Id`` headers and a text + HTML body.
"""

from __future__ import annotations

import html
import uuid
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from urllib.parse import urlsplit

from include.sandbox.systems.gitlab.state import (
    GITLAB_VERSION,
    Commit,
    Job,
    Links,
    Pipeline,
    Project,
    User,
    hook_time,
    runner_of,
)

DEFAULT_EMAIL_HOST = "gitlab.example.test"
VISIBILITY_PRIVATE = 0


# -- webhooks -------------------------------------------------------------------------------------
def user_hook(user: User, links: Links) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "username": user.username,
        "avatar_url": links.avatar(user),
        "email": user.email,
    }


def repo_urls(project: Project, links: Links) -> tuple[str, str]:
    """(ssh, http) clone URLs."""
    host = urlsplit(links.base).hostname or "localhost"
    return f"git@{host}:{project.path_with_namespace}.git", f"{links.project(project)}.git"


def project_hook(project: Project, links: Links) -> dict[str, Any]:
    ssh, http = repo_urls(project, links)
    return {
        "id": project.id,
        "name": project.name,
        "description": project.description,
        "web_url": links.project(project),
        "avatar_url": None,
        "git_ssh_url": ssh,
        "git_http_url": http,
        "namespace": project.namespace.name,
        "visibility_level": VISIBILITY_PRIVATE,
        "path_with_namespace": project.path_with_namespace,
        "default_branch": project.default_branch,
        "ci_config_path": "",
    }


def commit_hook(commit: Commit, project: Project, links: Links) -> dict[str, Any]:
    return {
        "id": commit.sha,
        "message": commit.message,
        "title": commit.title,
        "timestamp": datetime.fromtimestamp(commit.created_at, UTC).isoformat(timespec="seconds"),
        "url": links.commit(project, commit.sha),
        "author": {"name": commit.author.name, "email": commit.author.email},
    }


def environment_of(job: Job) -> dict[str, str] | None:
    """``deploy-<env>`` jobs deploy to ``<env>``; other jobs have no environment."""
    if not job.name.startswith("deploy-"):
        return None
    env = job.name.removeprefix("deploy-")
    return {"name": env, "action": "start", "deployment_tier": env}


def _runner_hook(job: Job) -> dict[str, Any] | None:
    runner = runner_of(job)
    if runner is None:
        return None
    return {
        "id": runner.id,
        "description": runner.description,
        "runner_type": "instance_type",
        "active": True,
        "is_shared": True,
        "tags": list(runner.tags),
    }


def _build_hook(job: Job, links: Links) -> dict[str, Any]:
    return {
        "id": job.id,
        "stage": job.stage,
        "name": job.name,
        "status": job.status,
        "created_at": hook_time(job.created_at),
        "started_at": hook_time(job.started_at),
        "finished_at": hook_time(job.finished_at),
        "duration": job.duration,
        "queued_duration": job.queued_duration,
        "failure_reason": job.failure_reason if job.status == "failed" else None,
        "when": "on_success",
        "manual": False,
        "allow_failure": job.allow_failure,
        "user": user_hook(job.pipeline.user, links),
        "runner": _runner_hook(job),
        "artifacts_file": {"filename": "artifacts.zip", "size": 2048 + 96 * len(job.tests)}
        if job.tests
        else {"filename": None, "size": None},
        "environment": environment_of(job),
    }


def pipeline_hook(pipeline: Pipeline, links: Links) -> dict[str, Any]:
    """The ``Pipeline Hook`` body (``object_kind: "pipeline"``)."""
    project = pipeline.project
    return {
        "object_kind": "pipeline",
        "object_attributes": {
            "id": pipeline.id,
            "iid": pipeline.iid,
            "name": pipeline.name,
            "ref": pipeline.ref,
            "tag": pipeline.tag,
            "sha": pipeline.commit.sha,
            "before_sha": pipeline.before_sha,
            "source": pipeline.source,
            "status": pipeline.status,
            "detailed_status": pipeline.detailed_label,
            "stages": pipeline.stages,
            "created_at": hook_time(pipeline.created_at),
            "finished_at": hook_time(pipeline.finished_at),
            "duration": pipeline.duration,
            "queued_duration": pipeline.queued_duration,
            "protected_ref": pipeline.ref == project.default_branch,
            "variables": pipeline.variables,
            "url": links.pipeline(pipeline),
        },
        "merge_request": None,
        "user": user_hook(pipeline.user, links),
        "project": project_hook(project, links),
        "commit": commit_hook(pipeline.commit, project, links),
        "builds": [_build_hook(j, links) for j in pipeline.latest_jobs(bridges=False)],
    }


def job_hook(job: Job, links: Links) -> dict[str, Any]:
    """The ``Job Hook`` body (``object_kind: "build"``); ``commit.id`` is the *pipeline* id."""
    pipeline, project = job.pipeline, job.pipeline.project
    ssh, http = repo_urls(project, links)
    author = pipeline.commit.author
    return {
        "object_kind": "build",
        "ref": pipeline.ref,
        "tag": pipeline.tag,
        "before_sha": pipeline.before_sha,
        "sha": pipeline.commit.sha,
        "retries_count": job.retries_count,
        "build_id": job.id,
        "build_name": job.name,
        "build_stage": job.stage,
        "build_status": job.status,
        "build_created_at": hook_time(job.created_at),
        "build_started_at": hook_time(job.started_at),
        "build_finished_at": hook_time(job.finished_at),
        "build_duration": job.duration,
        "build_queued_duration": job.queued_duration,
        "build_allow_failure": job.allow_failure,
        "build_failure_reason": job.failure_reason or "unknown_failure",
        "pipeline_id": pipeline.id,
        "runner": _runner_hook(job),
        "project_id": project.id,
        "project_name": project.name_with_namespace,
        "user": user_hook(pipeline.user, links),
        "commit": {
            "id": pipeline.id,
            "name": pipeline.name,
            "sha": pipeline.commit.sha,
            "message": pipeline.commit.message,
            "author_name": author.name,
            "author_email": author.email,
            "author_url": links.user(author),
            "status": pipeline.status,
            "duration": pipeline.duration,
            "started_at": hook_time(pipeline.started_at),
            "finished_at": hook_time(pipeline.finished_at),
        },
        "repository": {
            "name": project.name,
            "url": ssh,
            "description": project.description,
            "homepage": links.project(project),
            "git_http_url": http,
            "git_ssh_url": ssh,
            "visibility_level": VISIBILITY_PRIVATE,
        },
        "project": project_hook(project, links),
        "environment": (
            {k: v for k, v in env.items() if k != "deployment_tier"} if (env := environment_of(job)) else None
        ),
    }


def hook_headers(
    event: str,
    token: str | None,
    instance: str,
    webhook_uuid: str,
    event_uuid: str | None = None,
    idempotency_key: str | None = None,
) -> dict[str, str]:
    """Delivery headers; the event UUID and idempotency key are new unless given (a resend)."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"GitLab/{GITLAB_VERSION}",
        "X-Gitlab-Event": event,
        "X-Gitlab-Instance": instance,
        "X-Gitlab-Webhook-UUID": webhook_uuid,
        "X-Gitlab-Event-UUID": event_uuid or str(uuid.uuid4()),
        "Idempotency-Key": idempotency_key or str(uuid.uuid4()),
    }
    if token is not None:
        headers["X-Gitlab-Token"] = token
    return headers


# -- notification e-mail --------------------------------------------------------------------------
#: kind -> (subject status word, body title, X-GitLab-Pipeline-Status); {label} is the name or #id
EMAIL_KINDS = {
    "failed": ("Failed", "Pipeline {label} has failed!", "failed"),
    "success": ("Successful", "Pipeline {label} has passed!", "success"),
    "fixed": ("Fixed", "Your pipeline has been fixed!", "success"),
}


def list_id(project: Project, host: str, max_length: int = 255) -> str:
    """``List-Id`` as ``Notify#add_project_headers`` builds it: ``<full_path> <id.reversed.path.host>``."""
    domain = "/".join(reversed(project.path_with_namespace.lower().split("/")))
    domain = "".join(c if c.isascii() and (c.isalnum() or c == "/") else "-" for c in domain)
    domain = ".".join(part for part in domain.split("/") if part).strip(".")
    room = max_length - len(host) - len(str(project.id)) - 2
    if room < 3:
        return f"{project.path_with_namespace} <{project.id}...{host}>"
    if len(domain) > room:
        domain = domain[:room]
        last_dot = domain[:-1].rfind(".")
        domain = domain[: last_dot if last_dot >= 0 else room - 2] + ".."
    return f"{project.path_with_namespace} <{project.id}.{domain}.{host}>"


def _truncate(text: str, length: int = 50) -> str:
    """Rails' ``String#truncate``: at most ``length`` characters, ending in "..." when cut."""
    return text if len(text) <= length else text[: length - 3] + "..."


Segment = tuple[str, str | None]  # (text, link or None)


def _email_lines(pipeline: Pipeline, kind: str, links: Links) -> list[list[Segment]]:
    """The body as lines of (text, link) segments, shared by the text and HTML parts (§1.1 order)."""
    project, commit = pipeline.project, pipeline.commit
    label = pipeline.name or f"#{pipeline.id}"
    title = EMAIL_KINDS[kind][1].format(label=label)
    lines: list[list[Segment]] = [
        [(title, None)],
        [],
        [("Project: ", None), (project.name, links.project(project))],
        [("Branch: ", None), (pipeline.ref, links.commits(project, pipeline.ref))],
        [],
        [("Commit: ", None), (commit.short_id, links.commit(project, commit.sha))],
        [(f"Commit Message: {_truncate(commit.message.rstrip())}", None)],
        [("Commit Author: ", None), (commit.author.name, links.user(commit.author))],
        [],
        [
            ("Pipeline ", None),
            (label, links.pipeline(pipeline)),
            (" triggered by ", None),
            (pipeline.user.name, links.user(pipeline.user)),
        ],
    ]
    if kind == "failed":
        failed = [j for j in pipeline.latest_jobs(bridges=None) if j.status == "failed"]
        lines += [[(f"had {len(failed)} failed {'job' if len(failed) == 1 else 'jobs'}.", None)], []]
        for job in failed:
            lines += [
                [("Job ", None), (f"#{job.id}", links.job(job))],
                [(f"Stage: {job.stage}", None)],
                [(f"Name: {job.name}", None)],
            ]
    else:
        jobs, stages = len(pipeline.latest_jobs(bridges=None)), len(pipeline.stages)
        done = (
            f"successfully completed {jobs} {'job' if jobs == 1 else 'jobs'} "
            f"in {stages} {'stage' if stages == 1 else 'stages'}."
        )
        lines.append([(done, None)])
    return lines


def _text_body(lines: list[list[Segment]], host: str) -> str:
    text = "\n".join("".join(t + (f" ( {link} )" if link else "") for t, link in line) for line in lines)
    return f"{text}\n\n-- \nYou're receiving this email because of your account on {host}.\n"


def _html_body(lines: list[list[Segment]], host: str) -> str:
    rows = []
    for line in lines:
        cells = "".join(
            f'<a href="{html.escape(link)}">{html.escape(t)}</a>' if link else html.escape(t) for t, link in line
        )
        rows.append(f"<tr><td>{cells or '&nbsp;'}</td></tr>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>GitLab</title></head>\n'
        f'<body><table class="wrapper">{"".join(rows)}</table>\n'
        f'<p class="footer">You\'re receiving this email because of your account on {html.escape(host)}.</p>'
        "</body></html>\n"
    )


def pipeline_email(pipeline: Pipeline, kind: str, links: Links, *, host: str, to: str, now: float) -> bytes:
    """The RFC 5322 bytes of ``Notify.pipeline_<kind>_email`` (kind: failed, success, fixed)."""
    word, _, status = EMAIL_KINDS[kind]
    project = pipeline.project
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = Address("GitLab", "gitlab", host)
    msg["Reply-To"] = Address("GitLab", "noreply", host)
    msg["To"] = to
    msg["Date"] = format_datetime(datetime.fromtimestamp(now, UTC))
    msg["Message-ID"] = make_msgid(idstring=f"pipeline-{pipeline.id}", domain=host)
    msg["Subject"] = f"{project.name} | {word} pipeline for {pipeline.ref} | {pipeline.commit.short_id}"
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg["X-GitLab-Project"] = project.name
    msg["X-GitLab-Project-Id"] = str(project.id)
    msg["X-GitLab-Project-Path"] = project.path_with_namespace
    msg["List-Id"] = list_id(project, host)
    msg["X-GitLab-Pipeline-Id"] = str(pipeline.id)
    msg["X-GitLab-Pipeline-Ref"] = pipeline.ref
    msg["X-GitLab-Pipeline-Status"] = status
    lines = _email_lines(pipeline, kind, links)
    msg.set_content(_text_body(lines, host), cte="quoted-printable")
    msg.add_alternative(_html_body(lines, host), subtype="html", cte="quoted-printable")
    return msg.as_bytes()
