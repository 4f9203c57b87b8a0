"""Operators of ``ci_run_action``: ``act_github`` / ``act_gitlab`` (:class:`CIRunActionOperator`, one per
provider so that each runs in its API's pool; the one the form does not ask for skips) and ``report``
(:class:`CIRunActionReportOperator`).

The action task, idempotent through its audit row (``store/run_actions.py``, one per Airflow run):

1. reads the run / pipeline / deployments, and the guards of :mod:`.plan` refuse what makes no sense
   (recorded as ``refused``; nothing sent; the task fails without retrying);
2. ``dry_run``: records the write it would send (``dry_run``) and ends;
3. records ``sending``, sends the one write, records ``sent`` with the answer and what it started;
4. defers to :class:`~devops_automation.triggers.ci_run.CIRunActionTrigger` (no worker slot) until it
   took effect; a GitHub run that ignores the cancel for ``force_cancel_after_minutes`` is force-cancelled
   (a second write) and waited for again;
5. records ``done`` (or ``failed`` when the result is not what was asked: a redeploy that failed, a cancel
   that found the run finished otherwise) with the outcome and GitHub's/GitLab's end time.

A retried task reads the row first: ``sent`` -> it only waits again; ``sending`` (the try died with the
write in flight) -> it asks GitHub/GitLab whether the write went through (:func:`.plan.took_effect`) and
sends only if it did not; a final state -> nothing is done again. So one Airflow run sends its write once.
Extra link *CI run*: the run, pipeline or job page (pushed before the write, so a failed try has it too).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from devops_automation.operators.runtime import XComUrlLink

if TYPE_CHECKING:
    from airflow.sdk import Context

    from devops_automation.store import ResultsStore
    from devops_automation.workflows.ci_run_action.plan import Plan, Request

DAG_ID = "ci_run_action"
RESULTS_CONN_ID = "devops_results_db"
CONN_IDS = {"github": "github_default", "gitlab": "gitlab_default"}
#: XCom key of the run / pipeline / job page (the extra link)
RUN_URL_KEY = "run_url"
#: a GitHub run older than this many deployments back is not looked for (one status request each)
DEPLOYMENTS_LOOKED_AT = 30


class CIRunLink(XComUrlLink):
    """The GitHub run (attempt) or GitLab pipeline / job the action went to."""

    name = "CI run"
    key = RUN_URL_KEY


def _fail(message: str) -> Exception:
    from airflow.sdk.exceptions import AirflowFailException

    return AirflowFailException(message)


def requested_at(context: Context) -> dt.datetime:
    """The Airflow run's own time (``run_after``): the audit's "when", and "now" for the guards."""
    dag_run = context.get("dag_run")
    when = getattr(dag_run, "run_after", None) or getattr(dag_run, "logical_date", None) or context.get("logical_date")
    if when is None:
        raise RuntimeError("the task has no dag_run.run_after or logical_date")
    return dt.datetime.fromtimestamp(when.timestamp(), dt.UTC)


def _server_time(date_header: str | None) -> dt.datetime | None:
    try:
        when = email.utils.parsedate_to_datetime(date_header or "")
    except (TypeError, ValueError):
        return None
    return when.astimezone(dt.UTC) if when and when.tzinfo else None


class CIRunActionOperator(BaseOperator):
    """Act on one GitHub run or GitLab pipeline (or redeploy) as the trigger form asks (see the module
    docstring); ``provider`` is the one this task serves (the other task skips)."""

    operator_extra_links = (CIRunLink(),)
    template_fields: Sequence[str] = ()

    def __init__(
        self,
        *,
        provider: str,
        conn_id: str | None = None,
        results_conn_id: str = RESULTS_CONN_ID,
        unreachable_timeout_s: float = 600.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if provider not in CONN_IDS:
            raise ValueError(f"provider must be github or gitlab, got {provider!r}")
        self.provider = provider
        self.conn_id = conn_id or CONN_IDS[provider]
        self.results_conn_id = results_conn_id
        self.unreachable_timeout_s = unreachable_timeout_s

    # -- the request and the store -------------------------------------------------------------
    def _request(self, context: Context) -> Request:
        from airflow.sdk.exceptions import AirflowSkipException

        from devops_automation.workflows.ci_run_action.plan import parse_request

        params = context["params"]
        asked = str(params.get("provider") or "").strip().lower()
        if asked in CONN_IDS and asked != self.provider:
            raise AirflowSkipException(f"the form asks for {asked}, not {self.provider}")
        try:
            return parse_request(params)
        except ValueError as exc:
            raise _fail(f"the trigger form is not usable: {exc}") from None

    def _store(self) -> ResultsStore:
        from devops_automation.store import ResultsStore

        return ResultsStore.from_connection(self.results_conn_id)

    def _hook(self) -> Any:
        if self.provider == "github":
            from devops_automation.hooks.github import GitHubHook

            return GitHubHook(self.conn_id)
        from devops_automation.hooks.gitlab import GitLabHook

        return GitLabHook(self.conn_id)

    def _keys(self, context: Context) -> tuple[str, str]:
        return context["dag"].dag_id, context["run_id"]

    def _link(self, context: Context, url: Any) -> None:
        if not url:
            return
        try:
            context["ti"].xcom_push(key=RUN_URL_KEY, value=str(url))
        except Exception:  # a link must never fail the task
            self.log.exception("could not store the extra link %s", url)

    # -- execute ------------------------------------------------------------------------------
    def execute(self, context: Context) -> dict[str, Any]:
        from devops_automation.store import run_actions

        req = self._request(context)
        store = self._store()
        dag_id, run_id = self._keys(context)
        row = run_actions.get(store, dag_id, run_id)
        if row is not None:
            self._link(context, row.get("url"))
            if row["state"] in ("refused", "failed"):  # a cleared task stays red: nothing is done again
                raise _fail(f"this Airflow run's action already ended {row['state']}: {row.get('outcome_detail')}")
            if row["state"] in run_actions.FINAL_STATES:
                self.log.info("this Airflow run already acted (%s): nothing is done again", row["state"])
                return self._result(row)
            if row["state"] == "sent":
                self.log.info("the write went out in an earlier try: waiting for it again, nothing is sent")
                self._defer(req, row)
            if row["state"] == "sending":
                row = self._recover(req, store, row)
                if row["state"] == "sent":
                    self._defer(req, row)
                return self._send(context, req, store, row)
        return self._start(context, req, store)

    def _base_row(self, context: Context, req: Request) -> dict[str, Any]:
        dag_id, run_id = self._keys(context)
        when = requested_at(context)
        return {
            "dag_id": dag_id,
            "airflow_run_id": run_id,
            "triggered_by": getattr(context.get("dag_run"), "triggering_user_name", None),
            "requested_at": when,
            "provider": req.provider,
            "repo": req.repo,
            "run_id": str(req.run_id) if req.run_id else None,
            "job_id": str(req.job_id) if req.job_id else None,
            "action": req.action,
            "reason": req.reason or None,
            "environment": req.environment or None,
            "target": req.deployment or None,
            "dry_run": req.dry_run,
            "created_at": when,
        }

    def _start(self, context: Context, req: Request, store: ResultsStore) -> dict[str, Any]:
        from devops_automation.hooks.api import ApiError
        from devops_automation.store import run_actions
        from devops_automation.workflows.ci_run_action import plan as planning

        base = self._base_row(context, req)
        hook = self._hook()
        try:
            p = self._plan(context, req, hook, base["requested_at"])
        except planning.Refused as exc:
            row, _ = run_actions.begin(
                store, {**base, "state": "refused", "outcome": "refused", "outcome_detail": str(exc)}
            )
            self.log.error("refused (nothing sent): %s", exc)
            raise _fail(f"refused, nothing was sent: {exc}") from None
        except ApiError as exc:
            detail = self._api_problem(req, exc)
            if _transient(exc):  # retried: nothing recorded yet, the next try reads again
                raise RuntimeError(detail) from None
            run_actions.begin(store, {**base, "state": "failed", "outcome": "error", "outcome_detail": detail})
            raise _fail(detail) from None
        plan_dict = {**p.as_dict()}
        values = {
            **base,
            "repo": p.repo or req.repo,
            "run_id": p.run_id or base["run_id"],
            "job_id": p.job_id or base["job_id"],
            "deployment_id": p.deployment_id,
            "target_sha": p.target_sha,
            "attempt_before": p.attempt_before,
            "after_job_id": p.after_job_id,
            "retried_job_ids": p.retried_job_ids or None,
            "url": p.url,
            "plan": plan_dict,
        }
        self._link(context, p.url)
        if req.dry_run:
            row, _ = run_actions.begin(
                store, {**values, "state": "dry_run", "outcome": "dry_run", "outcome_detail": f"would {p.what}"}
            )
            self.log.info("dry run: would send %s %s (%s)", p.method, p.path, p.what)
            return self._result(row)
        row, inserted = run_actions.begin(store, {**values, "state": "sending"})
        if not inserted and row["state"] != "sending":  # another try got here first: follow what it recorded
            return self.execute(context)
        return self._send(context, req, store, row)

    def _api_problem(self, req: Request, exc: Any) -> str:
        noun = {"github": "run", "gitlab": "pipeline"}[req.provider]
        if exc.status == 404 and req.action != "redeploy":
            return (
                f"{req.provider} {noun} {req.run_id} of {req.repo} was not found (404), or the token of "
                f"{self.conn_id!r} cannot see it: {exc}"
            )
        if exc.status == 404:
            return (
                f"{req.provider} {req.repo} was not found (404), or the token of {self.conn_id!r} cannot see it: {exc}"
            )
        return str(exc)

    # -- planning (reads only) -------------------------------------------------------------------
    def _plan(self, context: Context, req: Request, hook: Any, now: dt.datetime) -> Plan:
        if self.provider == "github":
            return self._plan_github(context, req, hook, now)
        return self._plan_gitlab(req, hook)

    def _plan_github(self, context: Context, req: Request, hook: Any, now: dt.datetime) -> Plan:
        from devops_automation.hooks.github import repo_path
        from devops_automation.workflows.ci_run_action import plan as planning

        if req.action == "redeploy":
            found = hook.deployments_with_statuses(req.repo, req.environment, limit=DEPLOYMENTS_LOOKED_AT)
            names = [str(e.get("name")) for e in hook.environments(req.repo)] if not found else None
            target, _ = planning.choose_deployment(req, found, succeeded=planning.github_succeeded, environments=names)
            run = None
            if req.redeploy_mode == "rerun_workflow":
                linked = planning.linked_run_id(target)
                run = hook.workflow_run(req.repo, linked) if linked is not None else None
            marker = {"dag_id": context["dag"].dag_id, "run_id": context["run_id"], "deployment_id": target.get("id")}
            return planning.plan_github_redeploy(req, target, now, repo=req.repo, run=run, marker=marker)
        run = hook.workflow_run(req.repo, req.run_id)
        job = None
        if req.job_id is not None:
            job = hook.fetch(f"{repo_path(req.repo)}/actions/jobs/{req.job_id}", cached=False)[0]
        return planning.plan_github_run(req, run, now, job)

    def _plan_gitlab(self, req: Request, hook: Any) -> Plan:
        from devops_automation.workflows.ci_run_action import plan as planning

        project = hook.project(req.repo)
        if req.action == "redeploy":
            found = hook.latest_deployments(req.repo, req.environment, status=None)
            names = [str(e.get("name")) for e in hook.environments(req.repo)] if not found else None
            target, _ = planning.choose_deployment(req, found, succeeded=planning.gitlab_succeeded, environments=names)
            pipeline_id = ((target.get("deployable") or {}).get("pipeline") or {}).get("id")
            jobs = hook.pipeline_jobs(req.repo, pipeline_id, include_retried=True) if pipeline_id else []
            return planning.plan_gitlab_redeploy(req, project, target, jobs)
        pipeline = hook.pipeline(req.repo, req.run_id)
        jobs = hook.pipeline_jobs(req.repo, req.run_id, include_retried=True)
        jobs += hook.pipeline_jobs(req.repo, req.run_id, bridges=True, include_retried=True)
        return planning.plan_gitlab_pipeline(req, project, pipeline, jobs)

    # -- the write -------------------------------------------------------------------------------
    def _write(self, hook: Any, p: dict[str, Any], call: str | None = None) -> tuple[int, Any, str | None]:
        call = call or p["call"]
        repo, run_id, job_id = p["repo"], p.get("run_id"), p.get("job_id")
        if self.provider == "github":
            if call in ("rerun", "rerun_failed"):
                return hook.rerun_run(repo, run_id, failed_only=call == "rerun_failed")
            if call == "rerun_job":
                return hook.rerun_job(repo, job_id)
            if call in ("cancel", "force_cancel"):
                return hook.cancel_run(repo, run_id, force=call == "force_cancel")
            if call == "create_deployment":
                body = p["body"]
                return hook.create_deployment(
                    repo, body["ref"], body["environment"], description=body["description"], payload=body["payload"]
                )
        else:
            project = p.get("project") or repo
            if call == "retry_pipeline":
                return hook.retry_pipeline(project, run_id)
            if call == "cancel_pipeline":
                return hook.cancel_pipeline(project, run_id)
            if call == "retry_job":
                return hook.retry_job_write(project, job_id)
        raise ValueError(f"unknown {self.provider} write {call!r}")

    def _send(self, context: Context, req: Request, store: ResultsStore, row: dict[str, Any]) -> dict[str, Any]:
        from devops_automation.hooks.api import ApiError
        from devops_automation.notifiers import redacted
        from devops_automation.store import run_actions

        dag_id, run_id = row["dag_id"], row["airflow_run_id"]
        p = dict(row["plan"])
        self.log.info("sending %s %s: %s", p["method"], p["path"], p["what"])
        try:
            status, body, date = self._write(self._hook(), p)
        except ApiError as exc:
            call = {"method": p["method"], "path": p["path"], "status": exc.status, "answer": redacted(exc.message)}
            if exc.status == 409 and p["call"] == "cancel":  # completed between our look and the cancel
                detail = f"the run completed before the cancel reached it: {exc.message}"
                run_actions.add_call(
                    store, dag_id, run_id, call, state="failed", outcome="other", outcome_detail=detail
                )
                raise _fail(detail) from None
            if not _transient(exc):
                detail = str(exc)
                run_actions.add_call(
                    store, dag_id, run_id, call, state="failed", outcome="error", outcome_detail=detail
                )
                raise _fail(detail) from None
            run_actions.add_call(store, dag_id, run_id, call, outcome_detail=f"write failed (retried): {exc}")
            raise
        sent_at = _server_time(date)
        answer = redacted(body) if body is not None else None
        values: dict[str, Any] = {"state": "sent", "sent_at": sent_at}
        watch = dict(p["watch"])
        if watch["kind"] == "attempt":
            values["result_attempt"] = watch["attempt"]
        if p["call"] == "retry_job" and isinstance(body, dict):
            watch["job_id"] = body.get("id")
            values["new_job_ids"] = [str(body.get("id"))]
            values["url"] = body.get("web_url") or row.get("url")
        if p["call"] == "create_deployment" and isinstance(body, dict):
            watch["deployment_id"] = body.get("id")
            values["new_deployment_id"] = str(body.get("id"))
        now = time.time()
        p["watch"] = watch
        p["deadline"] = now + req.timeout_s
        if p["call"] == "cancel" and req.force_cancel_after_s is not None:
            p["grace_until"] = now + req.force_cancel_after_s
        values["plan"] = p
        call = {"method": p["method"], "path": p["path"], "status": status, "at": sent_at, "answer": answer}
        row = run_actions.add_call(store, dag_id, run_id, _jsonable(call), **values)
        self._link(context, row.get("url"))
        self.log.info("%s answered %s", req.provider, status)
        self._defer(req, row)
        raise AssertionError("defer() raises")  # pragma: no cover

    def _recover(self, req: Request, store: ResultsStore, row: dict[str, Any]) -> dict[str, Any]:
        """A try died with the write in flight: did it go through? (reads only)."""
        from devops_automation.store import run_actions
        from devops_automation.workflows.ci_run_action import plan as planning

        p = dict(row["plan"])
        hook = self._hook()
        watch = dict(p["watch"])
        kind, values = watch["kind"], {}
        if self.provider == "github" and kind in ("attempt", "cancel"):
            found = planning.took_effect(p, run=hook.workflow_run(p["repo"], watch["run_id"]))
            if found and kind == "attempt":
                values["result_attempt"] = watch["attempt"]
        elif kind == "deployment":
            body = p["body"]
            mine = [
                d
                for d in hook.fetch(
                    f"/repos/{p['repo']}/deployments",
                    {"environment": body["environment"], "sha": body["ref"], "per_page": 100},
                    cached=False,
                )[0]
                or []
                if (d.get("payload") or {}).get("ci_run_action") == body["payload"]["ci_run_action"]
            ]
            found = planning.took_effect(p, jobs=mine)
            if found:
                watch["deployment_id"] = mine[0]["id"]
                values["new_deployment_id"] = str(mine[0]["id"])
        elif kind == "cancel":
            found = planning.took_effect(p, run=hook.pipeline(p.get("project") or p["repo"], watch["pipeline_id"]))
        else:
            pipeline_id = p.get("run_id")
            project = p.get("project") or p["repo"]
            jobs = hook.pipeline_jobs(project, pipeline_id, include_retried=True) if pipeline_id else []
            found = planning.took_effect(p, jobs=jobs)
            if found and kind == "job":
                old = max(int(i) for i in p["retried_job_ids"])
                name = next(j.get("name") for j in jobs if int(j["id"]) == old)
                new = max(int(j["id"]) for j in jobs if j.get("name") == name)
                watch["job_id"] = new
                values["new_job_ids"] = [str(new)]
        if not found:
            self.log.info("the write of the earlier try did not go through: sending it now")
            return row
        self.log.info("the earlier try's write went through: not sending it again")
        now = time.time()
        p["watch"] = watch
        p.setdefault("deadline", now + req.timeout_s)
        if p["call"] == "cancel" and req.force_cancel_after_s is not None:
            p.setdefault("grace_until", now + req.force_cancel_after_s)
        call = {"method": p["method"], "path": p["path"], "status": None, "answer": "found (sent by an earlier try)"}
        return run_actions.add_call(store, row["dag_id"], row["airflow_run_id"], call, state="sent", plan=p, **values)

    # -- waiting ---------------------------------------------------------------------------------
    def _defer(self, req: Request, row: dict[str, Any]) -> None:
        from devops_automation.triggers.ci_run import CIRunActionTrigger

        p = row["plan"]
        now = time.time()
        deadline = float(p.get("deadline") or now + req.timeout_s)
        grace = p.get("grace_until") if not p.get("forced") else None
        trigger = CIRunActionTrigger(
            provider=self.provider,
            repo=p.get("project") or p["repo"],
            watch=p["watch"],
            deadline=deadline,
            conn_id=self.conn_id,
            poll_interval=req.poll_interval_s,
            grace_until=grace,
            unreachable_timeout_s=self.unreachable_timeout_s,
        )
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            timeout=dt.timedelta(seconds=max(60.0, deadline - now + 120.0)),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        from devops_automation.store import run_actions
        from devops_automation.workflows.ci_run_action import plan as planning

        req = self._request(context)
        store = self._store()
        dag_id, run_id = self._keys(context)
        row = run_actions.get(store, dag_id, run_id)
        if row is None:
            raise RuntimeError(f"no audit row for {dag_id} {run_id}: cannot resume")
        status = event.get("status")
        observed = event.get("observed") or {}
        if status == "not_cancelled":
            return self._force_cancel(context, req, store, row)
        if status == "error":
            detail = f"waiting failed: {event.get('message')}"
            run_actions.update(store, dag_id, run_id, outcome_detail=detail)
            raise RuntimeError(detail)  # retried: the next try waits again, nothing is sent again
        if status == "timeout":
            minutes = req.timeout_s / 60
            detail = f"gave up waiting after {minutes:.0f} min; last seen: {observed or 'nothing'}"
            row = run_actions.update(store, dag_id, run_id, state="failed", outcome="other", outcome_detail=detail)
            raise _fail(detail)
        if status != "done":
            raise ValueError(f"unexpected trigger event {event!r}")
        result, detail, as_asked = planning.outcome(req, row["plan"], observed)
        values: dict[str, Any] = {"state": "done" if as_asked else "failed", "outcome": result}
        values["outcome_detail"] = detail
        ended = observed.get("updated_at") or observed.get("finished_at") or observed.get("at")
        values["finished_at"] = planning.parse_time(ended)
        if observed.get("new_jobs"):
            values["new_job_ids"] = [str(j["id"]) for j in observed["new_jobs"]]
            values["retried_job_ids"] = [str(i) for i in observed.get("retried_jobs") or []] or row["retried_job_ids"]
        if observed.get("html_url") and row["plan"]["watch"]["kind"] == "attempt":
            values["url"] = f"{str(observed['html_url']).rstrip('/')}/attempts/{observed.get('run_attempt')}"
        elif observed.get("web_url"):
            values["url"] = observed["web_url"]
        row = run_actions.update(store, dag_id, run_id, **values)
        self._link(context, row.get("url"))
        self.log.info("%s: %s", result, detail)
        if not as_asked:
            raise _fail(f"{req.describe()}: {detail}")
        return self._result(row)

    def _force_cancel(self, context: Context, req: Request, store: ResultsStore, row: dict[str, Any]) -> dict:
        from devops_automation.hooks.api import ApiError
        from devops_automation.notifiers import redacted
        from devops_automation.store import run_actions

        p = dict(row["plan"])
        if p.get("forced"):  # a retried try after the force-cancel went out: wait only
            self._defer(req, row)
        path = p["path"].removesuffix("/cancel") + "/force-cancel"
        minutes = (req.force_cancel_after_s or 0) / 60
        self.log.warning("the run ignored the cancel for %.0f min: force-cancelling it (%s)", minutes, path)
        keys = (row["dag_id"], row["airflow_run_id"])
        try:
            status, body, date = self._write(self._hook(), p, "force_cancel")
        except ApiError as exc:
            call = {"method": "POST", "path": path, "status": exc.status, "answer": redacted(exc.message)}
            if exc.status == 409:  # it completed meanwhile: the wait shows how
                self._defer(req, run_actions.add_call(store, *keys, call, plan={**p, "forced": True}))
            raise  # not sent: the retried task waits out the grace again and force-cancels then
        call = {"method": "POST", "path": path, "status": status, "at": _server_time(date), "answer": redacted(body)}
        row = run_actions.add_call(store, *keys, _jsonable(call), plan={**p, "forced": True})
        self._defer(req, row)
        raise AssertionError("defer() raises")  # pragma: no cover

    @staticmethod
    def _result(row: dict[str, Any]) -> dict[str, Any]:
        keys = ("provider", "repo", "action", "run_id", "state", "outcome", "outcome_detail", "url", "result_attempt")
        return {k: row.get(k) for k in keys}


def _transient(exc: Any) -> bool:
    """An API error worth another try: no answer, 429, 5xx, or a rate limit (GitHub's 403/429 with reset)."""
    status = getattr(exc, "status", None)
    return status is None or status == 429 or status >= 500 or getattr(exc, "reset_at", None) is not None


def _jsonable(call: dict[str, Any]) -> dict[str, Any]:
    """A recorded call with its time as ISO text (the column is JSON)."""
    at = call.get("at")
    return {**call, "at": at.isoformat() if isinstance(at, dt.datetime) else at}


class CIRunActionReportOperator(BaseOperator):
    """The run's last step (whatever the action task did): the outcome as the run's note, and to Slack /
    Telegram when the form asks (each once per Airflow run); fails when the action was refused, failed or
    did not finish, so the run's colour says it."""

    def __init__(
        self,
        *,
        results_conn_id: str = RESULTS_CONN_ID,
        slack_conn_id: str = "slack_default",
        telegram_conn_id: str = "telegram_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.results_conn_id = results_conn_id
        self.slack_conn_id = slack_conn_id
        self.telegram_conn_id = telegram_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from devops_automation.hooks.airflow_api import set_run_note
        from devops_automation.store import ResultsStore, run_actions
        from devops_automation.workflows.ci_run_action import messages
        from devops_automation.workflows.ci_run_action.plan import parse_request

        try:
            req = parse_request(context["params"])
        except ValueError as exc:
            note = f"FAILED: the trigger form is not usable: {exc}"
            set_run_note(context, note)
            raise _fail(note) from None
        store = ResultsStore.from_connection(self.results_conn_id)
        row = run_actions.get(store, context["dag"].dag_id, context["run_id"])
        if row is None:
            note = f"FAILED before anything was recorded or sent: {req.describe()} (see the act_{req.provider} log)"
            set_run_note(context, note)
            raise _fail(note)
        note = messages.summary(row)
        if row["state"] in ("sent", "sending"):
            note = f"{note}; the action task did not finish (see its log)"
        self.log.info(note)
        set_run_note(context, note)
        self._notify(context, req, row)
        if row["state"] not in ("done", "dry_run"):
            raise _fail(note)
        return {"state": row["state"], "outcome": row["outcome"], "note": note}

    def _notify(self, context: Context, req: Request, row: dict[str, Any]) -> None:
        from devops_automation.workflows.ci_run_action import messages

        key = f"ci_run_action:{context['dag'].dag_id}:{context['run_id']}"
        failed = []
        if "slack" in req.notify:
            from devops_automation.notifiers.slack import post_slack_once

            try:
                post_slack_once(
                    messages.slack_text(row),
                    dedup_key=f"{key}:slack",
                    slack_conn_id=self.slack_conn_id,
                    channel=req.slack_channel or None,
                    results_conn_id=self.results_conn_id,
                )
            except Exception:  # recorded as failed by send_once; the next try sends it
                self.log.exception("Slack message not sent")
                failed.append("slack")
        if "telegram" in req.notify:
            from devops_automation.notifiers.telegram import send_telegram_once

            try:
                send_telegram_once(
                    messages.telegram_text(row),
                    dedup_key=f"{key}:telegram",
                    telegram_conn_id=self.telegram_conn_id,
                    chat_id=req.telegram_chat or None,
                    results_conn_id=self.results_conn_id,
                )
            except Exception:  # recorded as failed by send_once; the next try sends it
                self.log.exception("Telegram message not sent")
                failed.append("telegram")
        if failed:
            raise RuntimeError(f"message(s) not sent: {', '.join(failed)} (a retry sends them)")
