"""Operators of ``weekly_report`` and ``monthly_report``: build (figures → render → archive → ``reports``
row) → deliver to Slack, Telegram and e-mail (each its own task: one failing does not stop the others,
and the next run sends what it owes) → summary.

The period is the run's data interval, so ``airflow dags backfill`` of a past week rebuilds it from the
store, byte for byte what was sent when the data did not change. Each delivery goes out once per period
and channel (dedup keys in ``notifications``): a re-run sends nothing, Param ``resend`` sends again, and a
backfill records the report without sending it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk import BaseOperator

from devops_automation import as_bool
from devops_automation.operators.runtime import data_interval, is_backfill, param_names, project_file

if TYPE_CHECKING:
    from airflow.sdk import Context

RESULTS_CONN_ID = "devops_results_db"
TEMPLATES = "include/templates/weekly_report"
CHANNELS = ("slack", "telegram", "email")
CONN_IDS = {"slack": "slack_default", "telegram": "telegram_default", "email": "smtp_default"}
_TEAM = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def _list(value: Any, what: str) -> list[str] | None:
    """A Param list of names, sorted, each once (None when empty: no filter)."""
    return sorted(set(param_names(value, what))) or None


def report_kind(period: str, team: str | None) -> str:
    """``weekly`` / ``monthly``, ``weekly:<team>`` for a team's report (the ``reports`` key with the period)."""
    kind = {"week": "weekly", "month": "monthly"}[period]
    if not team:
        return kind
    if not _TEAM.fullmatch(team):
        raise ValueError(f"team {team!r}: lower-case letters, digits, - and _ (at most 32), e.g. 'platform'")
    return f"{kind}:{team}"


class ReportBuildOperator(BaseOperator):
    """Build the period's report from the results store (:func:`.figures.report_figures`, rendered with
    the Jinja2 templates of ``include/templates/weekly_report``), write it to the archive (Markdown, HTML,
    PNGs, ``figures.json`` under ``<archive>/<period label>/``) and the ``reports`` table. Returns what the
    delivery tasks need (the summary, the archive folder), never the report's bytes."""

    template_fields: Sequence[str] = ("team", "repos", "projects", "archive", "archive_conn_id", "title")

    def __init__(
        self,
        *,
        period: str,
        team: str = "",
        repos: Any = (),
        projects: Any = (),
        archive: str = "",
        archive_conn_id: str = "",
        title: str = "",
        results_conn_id: str = RESULTS_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if period not in ("week", "month"):
            raise ValueError(f"period must be 'week' or 'month', got {period!r}")
        self.period = period
        self.team = team
        self.repos = repos
        self.projects = projects
        self.archive = archive
        self.archive_conn_id = archive_conn_id
        self.title = title
        self.results_conn_id = results_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from devops_automation.store import ResultsStore
        from devops_automation.workflows.weekly_report.archive import archive_report, report_files
        from devops_automation.workflows.weekly_report.figures import report_figures
        from devops_automation.workflows.weekly_report.render import render_report
        from devops_automation.workflows.weekly_report.store import record_report

        start, end = data_interval(context, f"{self.period}ly report")
        team = str(self.team or "").strip()
        kind = report_kind(self.period, team)
        store = ResultsStore.from_connection(self.results_conn_id)
        figures = report_figures(
            store,
            start=start,
            end=end,
            period=self.period,
            repos=_list(self.repos, "repos"),
            projects=_list(self.projects, "projects"),
        )
        label = figures["period"]["label"] + (f"-{team}" if team else "")
        title = str(self.title or "").strip() or None
        rendered = render_report(figures, templates_dir=project_file(TEMPLATES), title=title)
        files = report_files(markdown=rendered.markdown, html=rendered.html, charts=rendered.charts, figures=figures)
        files["report.txt"] = rendered.text.encode()
        paths = archive_report(self.archive or None, label, files, conn_id=self.archive_conn_id or None)
        folder = paths[0].rsplit("/", 1)[0]
        changed = record_report(
            store,
            kind=kind,
            period_start=start.date(),
            period_end=end.date(),
            markdown=rendered.markdown,
            html=rendered.html,
            summary=rendered.summary,
            archive_path=folder,
            at=end,
        )
        self.log.info(
            "%s report %s: %d sections with data, %d charts, HTML %d bytes; archived in %s; reports row %s",
            kind, label, len(rendered.summary.get("sections") or []), len(rendered.charts), len(rendered.html),
            folder, "written" if changed else "unchanged",
        )  # fmt: skip
        return {
            "kind": kind,
            "label": label,
            "period": figures["period"],
            "has_data": figures["has_data"],
            "folder": folder,
            "charts": sorted(rendered.charts),
            "summary": rendered.summary,
        }


def _read(folder: str, name: str, conn_id: str | None = None) -> bytes:
    from airflow.sdk import ObjectStoragePath

    return (ObjectStoragePath(folder, conn_id=conn_id) / name).read_bytes()


class ReportDeliverOperator(BaseOperator):
    """Send the built report on one channel (``slack``: the summary as Block Kit, then the charts and the
    HTML in its thread; ``telegram``: the summary text, the headline chart as a photo, the HTML as a
    document; ``email``: the HTML with inline images and a plain-text part), each part once per period
    (``resend``: once more, for this run). Skipped with a log line when the channel's connection or target
    is not set, and on a backfill (it records, it never sends)."""

    template_fields: Sequence[str] = ("built", "target", "resend", "archive_conn_id")

    def __init__(
        self,
        *,
        channel: str,
        built: Any,
        target: Any = "",
        resend: bool | str = False,
        archive_conn_id: str = "",
        conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if channel not in CHANNELS:
            raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, got {channel!r}")
        self.channel = channel
        self.built = built
        self.target = target
        self.resend = resend
        self.archive_conn_id = archive_conn_id
        self.conn_id = conn_id or CONN_IDS[channel]

    def execute(self, context: Context) -> dict[str, Any]:
        from devops_automation.hooks import connection_exists

        built = dict(self.built or {})
        out = {"channel": self.channel, "sent": 0, "skipped": None}
        resend = as_bool(self.resend, False)
        if is_backfill(context) and not resend:
            out["skipped"] = "backfill (records the report, sends nothing)"
        elif not connection_exists(self.conn_id):
            out["skipped"] = f"no connection {self.conn_id}"
        if out["skipped"]:
            self.log.info("%s: skipped: %s", self.channel, out["skipped"])
            return out
        key = f"report:{built['kind']}:{built['label']}:{self.channel}"
        if resend:
            key += f":resend:{context['run_id']}"
        send = {"slack": self._slack, "telegram": self._telegram, "email": self._email}[self.channel]
        out["sent"] = send(built, key)
        self.log.info("%s: %d part(s) sent now (key %s)", self.channel, out["sent"], key)
        return out

    def _file(self, built: dict[str, Any], name: str) -> bytes:
        return _read(built["folder"], name, self.archive_conn_id or None)

    def _slack(self, built: dict[str, Any], key: str) -> int:
        from devops_automation.notifiers import sent_message_ref
        from devops_automation.notifiers.slack import post_slack_once, upload_slack_files_once
        from devops_automation.workflows.weekly_report.chat import report_blocks, slack_fallback_text

        summary, channel = built["summary"], str(self.target or "").strip() or None
        ts = post_slack_once(
            slack_fallback_text(summary),
            blocks=report_blocks(summary),
            dedup_key=f"{key}:summary",
            slack_conn_id=self.conn_id,
            channel=channel,
        )
        sent = ts is not None
        thread = ts or sent_message_ref(f"{key}:summary")
        files = [(name, self._file(built, name), name) for name in built["charts"] if not name.startswith("spark-")]
        files.append((f"report-{built['label']}.html", self._file(built, "report.html"), "The report (HTML)"))
        uploaded = upload_slack_files_once(
            files, dedup_key=f"{key}:files", channel=channel, thread_ts=thread, slack_conn_id=self.conn_id
        )
        return sent + (uploaded is not None)

    def _telegram(self, built: dict[str, Any], key: str) -> int:
        from devops_automation.notifiers.telegram import (
            send_telegram_document_once,
            send_telegram_once,
            send_telegram_photo_once,
        )
        from devops_automation.workflows.weekly_report.chat import telegram_caption, telegram_text

        summary, chat = built["summary"], str(self.target or "").strip() or None
        sent = 0
        for i, chunk in enumerate(telegram_text(summary)):
            sent += (
                send_telegram_once(chunk, dedup_key=f"{key}:text:{i}", telegram_conn_id=self.conn_id, chat_id=chat)
                is not None
            )
        charts = [name for name in built["charts"] if not name.startswith("spark-")]
        if charts:
            sent += (
                send_telegram_photo_once(
                    self._file(built, charts[0]),
                    filename=charts[0],
                    caption=telegram_caption(summary),
                    dedup_key=f"{key}:photo",
                    chat_id=chat,
                    telegram_conn_id=self.conn_id,
                )
                is not None
            )
        sent += (
            send_telegram_document_once(
                self._file(built, "report.html"),
                filename=f"report-{built['label']}.html",
                caption=telegram_caption(summary, "the full report"),
                dedup_key=f"{key}:document",
                chat_id=chat,
                telegram_conn_id=self.conn_id,
            )
            is not None
        )
        return sent

    def _email(self, built: dict[str, Any], key: str) -> int:
        from devops_automation.notifiers.email import addresses, send_report_email_once

        recipients = addresses(self.target) if self.target else []
        if not recipients:
            self.log.info("email: no recipients (Param recipients): nothing to send")
            return 0
        html = _cid_html(self._file(built, "report.html").decode(), built["charts"])
        images = {name: self._file(built, name) for name in built["charts"]}
        subject = f"{built['summary'].get('title') or 'DevOps report'}: {built['label']}"
        message_id = send_report_email_once(
            subject,
            html=html,
            text=self._file(built, "report.txt").decode(),
            images=images,
            dedup_key=key,
            to=recipients,
            smtp_conn_id=self.conn_id,
        )
        return int(message_id is not None)


def _cid_html(archived: str, charts: Sequence[str]) -> str:
    """The e-mail's HTML from the archived page: its images point at the PNGs beside it (``src="x.png"``);
    in the e-mail they are the inline parts (``src="cid:x.png"``)."""
    for name in charts:
        archived = archived.replace(f'src="{name}"', f'src="cid:{name}"')
    return archived


class ReportSummaryOperator(BaseOperator):
    """The run's last step: the run note (period, sections, what each channel did); fails naming every
    channel that failed (the next run sends what they owe)."""

    template_fields: Sequence[str] = ("built", "delivered")

    def __init__(self, *, built: Any, delivered: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.built = built
        self.delivered = delivered

    def execute(self, context: Context) -> dict[str, Any]:
        from devops_automation.hooks.airflow_api import set_run_note

        if self.built is None:
            start, end = context.get("data_interval_start"), context.get("data_interval_end")
            period = f" {start:%Y-%m-%d} .. {end:%Y-%m-%d}" if start and end else ""
            set_run_note(context, f"report{period}: not built (see the build task's log)")
            raise RuntimeError("the report was not built (see the build task's log)")
        results = dict(zip(CHANNELS, list(self.delivered or []) + [None] * 3, strict=False))
        failed = [c for c, r in results.items() if r is None]
        parts = []
        for channel, r in results.items():
            if r is None:
                parts.append(f"{channel} FAILED")
            elif r.get("skipped"):
                parts.append(f"{channel} skipped ({r['skipped']})")
            else:
                parts.append(f"{channel} {r.get('sent', 0)} sent")
        summary = self.built.get("summary") or {}
        sections = len(summary.get("sections") or [])
        built = self.built
        note = f"{built['kind']} {built['label']}: {sections} sections; {', '.join(parts)}; archive {built['folder']}"
        self.log.info(note)
        set_run_note(context, note)
        if failed:
            raise RuntimeError(f"delivery failed on {', '.join(failed)} (the next run sends what it owes)")
        return {"note": note}


def report_params() -> dict[str, object]:
    """The Params of weekly_report and monthly_report (titles and descriptions for the trigger form)."""
    from airflow.sdk import Param

    return {
        "team": Param(
            "",
            type="string",
            title="Team",
            description="A team's own report (its name, e.g. platform); empty = everything.",
        ),
        "repos": Param(
            [],
            type="array",
            title="Repositories",
            description="CI scope: provider repositories (owner/name, group/project); empty = all.",
        ),
        "projects": Param(
            [],
            type="array",
            title="Projects",
            description="Daily-metrics scope: project names of projects.yaml; empty = all.",
        ),
        "title": Param("", type="string", title="Title", description="The report's title (default: DevOps report)."),
        "slack_channel": Param(
            "",
            type="string",
            title="Slack channel",
            description="Channel ID or #name; empty = the connection's default.",
        ),
        "telegram_chat": Param(
            "", type="string", title="Telegram chat", description="Chat id; empty = the connection's default."
        ),
        "recipients": Param(
            [],
            type="array",
            title="E-mail recipients",
            description=(
                "Addresses for the HTML report; empty = the Variable report_recipients (comma-separated), "
                "and no e-mail when that is empty too."
            ),
        ),
        "archive": Param(
            "",
            type="string",
            title="Archive",
            description="Folder URL (file://, s3://, gs://...); empty = file://$AIRFLOW_HOME/reports.",
        ),
        "archive_conn_id": Param(
            "", type="string", title="Archive connection", description="Connection for a remote archive URL."
        ),
        "resend": Param(
            False, type="boolean", title="Resend", description="Send the report again even if this period was sent."
        ),
    }


#: The DAGs whose daily runs write what a report reads, and how long a scheduled report waits for them.
SOURCE_DAGS = ("ci_pipeline_analytics", "daily_project_metrics")
SOURCE_WAIT = dt.timedelta(hours=6)


def last_source_day(logical_date: Any = None, *, data_interval_end: Any = None, **_: Any) -> dt.datetime:
    """The logical date of the daily (UTC) source run whose interval holds the period's last moment: the
    run that writes the period's last day (``ExternalTaskSensor``'s ``execution_date_fn``)."""
    end = (data_interval_end or logical_date).astimezone(dt.UTC) - dt.timedelta(microseconds=1)
    return end.replace(hour=0, minute=0, second=0, microsecond=0)


class ReportSourceSensor(ExternalTaskSensor):
    """Wait, deferred (no worker slot), until ``source_dag_id``'s run for the period's last day has finished
    (success, or failed: the report is then built from what is there), so a report scheduled at the same
    moment as the day's collection does not miss that day. Only scheduled runs wait: a manual run or a
    backfill is built at once from what the store holds. Not finished within ``SOURCE_WAIT`` (the source DAG
    not deployed, paused, or behind): skipped, and the report is built anyway."""

    def __init__(self, *, source_dag_id: str, **kwargs: Any) -> None:
        kwargs.setdefault("timeout", SOURCE_WAIT.total_seconds())
        kwargs.setdefault("poke_interval", 60)
        super().__init__(
            external_dag_id=source_dag_id,
            allowed_states=["success", "failed"],
            execution_date_fn=last_source_day,
            deferrable=True,
            soft_fail=True,
            **kwargs,
        )

    def execute(self, context: Context) -> None:
        from airflow.sdk.exceptions import AirflowSkipException

        run_type = str(getattr(context.get("dag_run"), "run_type", "")).lower()
        if not run_type.endswith("scheduled"):
            raise AirflowSkipException(f"a {run_type or 'manual'} run: built from what the store holds now")
        self.log.info(
            "waiting for %s's run of %s (the period's last day)",
            self.external_dag_id,
            last_source_day(data_interval_end=context["data_interval_end"]).date(),
        )
        super().execute(context)


def wire(period: str, *, inlets: Sequence[Any] = ()) -> None:
    """The tasks of a report DAG (called inside ``with DAG(...)`` by ``dags/weekly_report.py`` and
    ``dags/monthly_report.py``, which declare the schedule and the Params it reads)."""
    waits = [ReportSourceSensor(task_id=f"wait_for_{dag_id}", source_dag_id=dag_id) for dag_id in SOURCE_DAGS]
    built = ReportBuildOperator(
        task_id="build",
        trigger_rule="none_failed",
        period=period,
        team="{{ params.team }}",
        repos="{{ params.repos }}",
        projects="{{ params.projects }}",
        archive="{{ params.archive }}",
        archive_conn_id="{{ params.archive_conn_id }}",
        title="{{ params.title }}",
        inlets=list(inlets),
    )
    waits >> built
    targets = {
        "slack": "{{ params.slack_channel }}",
        "telegram": "{{ params.telegram_chat }}",
        # the Param, else the Variable report_recipients (comma-separated): what scheduled runs use
        "email": "{{ params.recipients or var.value.get('report_recipients', '') }}",
    }
    delivered = [
        ReportDeliverOperator(
            task_id=f"deliver_{channel}",
            channel=channel,
            built=built.output,
            target=targets[channel],
            resend="{{ params.resend }}",
            archive_conn_id="{{ params.archive_conn_id }}",
            pool=f"{channel}_api" if channel != "email" else None,
        )
        for channel in CHANNELS
    ]
    ReportSummaryOperator(
        task_id="summary", built=built.output, delivered=[d.output for d in delivered], trigger_rule="all_done"
    )
