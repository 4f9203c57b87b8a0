"""Messages about DevLake pipelines (pure formatting; sending lives in the notifiers).

One Telegram message per failed pipeline: project, blueprint, failed task (plugin / subtask), the
error, duration and a link to the project in DevLake's UI; HTML escaped for Telegram.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from devops_automation.messaging import escape_html


def duration(seconds: Any) -> str:
    try:
        s = int(float(seconds))
    except (TypeError, ValueError):
        return "?"
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {s:02d}s"


def project_url(ui_url: str, project: str | None) -> str:
    return f"{ui_url.rstrip('/')}/projects/{quote(project, safe='')}" if project else ui_url.rstrip("/")


def failure_message(
    pipeline: dict[str, Any], project: str | None, failed_tasks: list[dict[str, Any]], ui_url: str
) -> str:
    """The alert for one failed (or partial) pipeline."""
    status = pipeline.get("status", "")
    title = "partially failed" if status == "TASK_PARTIAL" else "failed"
    lines = [
        f"❌ <b>DevLake pipeline {title}</b>: <b>{escape_html(project or pipeline.get('name') or '?')}</b>",
        (
            f"pipeline #{pipeline['id']} · blueprint #{pipeline.get('blueprint_id') or '-'} · {escape_html(status)} "
            f"· ran {duration(pipeline.get('spent_seconds'))}"
        ),
    ]
    for t in failed_tasks[:5]:
        where = "/".join(x for x in (t.get("plugin"), t.get("failedSubTask")) if x)
        lines.append(f"task <code>{escape_html(where or '?')}</code>: {escape_html((t.get('message') or '')[:500])}")
    if not failed_tasks and pipeline.get("message"):
        lines.append(f"error: {escape_html(pipeline['message'][:500])}")
    lines.append(f'<a href="{escape_html(project_url(ui_url, project))}">open in DevLake</a>')
    return "\n".join(lines)


def stale_message(pipeline: dict[str, Any], project: str | None, minutes: float, ui_url: str) -> str:
    return "\n".join(
        [
            f"⏳ <b>DevLake pipeline still running</b>: <b>{escape_html(project or pipeline.get('name') or '?')}</b>",
            (
                f"pipeline #{pipeline['id']} has been running for more than {minutes:.0f} minutes "
                f"(since {escape_html(pipeline.get('began_at') or '?')})"
            ),
            f'<a href="{escape_html(project_url(ui_url, project))}">open in DevLake</a>',
        ]
    )


def recovered_message(pipeline: dict[str, Any], project: str | None, ui_url: str) -> str:
    return "\n".join(
        [
            f"✅ <b>DevLake pipeline recovered</b>: <b>{escape_html(project or pipeline.get('name') or '?')}</b>",
            f"pipeline #{pipeline['id']} completed after an automatic rerun",
            f'<a href="{escape_html(project_url(ui_url, project))}">open in DevLake</a>',
        ]
    )


def unreachable_message(run_id: str, detail: str) -> str:
    return f"⚠️ <b>DevLake unreachable</b> while watching pipelines ({escape_html(run_id)}): {escape_html(detail[:500])}"
