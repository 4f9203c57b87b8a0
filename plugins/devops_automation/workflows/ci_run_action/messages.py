"""The texts of ``ci_run_action`` from its audit row (plain Python, no Airflow): the run's note and the
optional Slack (mrkdwn) and Telegram (HTML) messages."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

#: how each recorded state is said
HEADLINES = {
    "refused": "REFUSED",
    "dry_run": "DRY RUN",
    "sending": "SENDING",
    "sent": "SENT, waiting",
    "done": "DONE",
    "failed": "FAILED",
}


def _target(row: Mapping[str, Any]) -> str:
    provider, repo = row.get("provider"), row.get("repo")
    if row.get("action") == "redeploy":
        sha = str(row.get("target_sha") or row.get("target") or "?")[:7]
        return f"redeploy {sha} to {row.get('environment')} ({provider} {repo})"
    noun = "run" if provider == "github" else "pipeline"
    job = f" job {row['job_id']}" if row.get("job_id") else ""
    return f"{row.get('action')} {provider} {repo} {noun} {row.get('run_id')}{job}"


def _who(row: Mapping[str, Any]) -> str:
    who = f"by {row.get('triggered_by') or 'unknown'}"
    return f"{who}: {row['reason']}" if row.get("reason") else who


def _planned(row: Mapping[str, Any]) -> str:
    plan = row.get("plan") or {}
    return f"{plan.get('method', '?')} {plan.get('path', '?')}" if plan else ""


def summary(row: Mapping[str, Any]) -> str:
    """One line for the run's note (and the log)."""
    state = str(row.get("state"))
    head = HEADLINES.get(state, state.upper())
    parts = [f"{head}: {_target(row)}"]
    if state == "refused":
        parts.append(f"nothing sent: {row.get('outcome_detail')}")
    elif state == "dry_run":
        parts.append(f"would send {_planned(row)} ({(row.get('plan') or {}).get('what', '')})")
    else:
        if row.get("outcome"):
            parts.append(f"outcome {row.get('outcome')}: {row.get('outcome_detail') or ''}".rstrip(": "))
        elif row.get("outcome_detail"):
            parts.append(str(row.get("outcome_detail")))
        calls = row.get("api_calls") or []
        if calls:
            parts.append("sent " + ", ".join(f"{c.get('method')} {c.get('path')} -> {c.get('status')}" for c in calls))
    parts.append(_who(row))
    if row.get("url"):
        parts.append(str(row["url"]))
    return "; ".join(parts)


def slack_text(row: Mapping[str, Any]) -> str:
    """Slack mrkdwn: headline, what, who, link."""
    state = str(row.get("state"))
    link = f" <{row['url']}|open>" if row.get("url") else ""
    lines = [f"*ci_run_action {HEADLINES.get(state, state)}*: {_target(row)}{link}"]
    if row.get("outcome") or row.get("outcome_detail"):
        lines.append(f"{row.get('outcome') or ''} {row.get('outcome_detail') or ''}".strip())
    lines.append(_who(row))
    return "\n".join(lines)


def telegram_text(row: Mapping[str, Any]) -> str:
    """Telegram HTML (every value escaped)."""
    state = str(row.get("state"))
    target = html.escape(_target(row))
    link = f' <a href="{html.escape(str(row["url"]), quote=True)}">open</a>' if row.get("url") else ""
    lines = [f"<b>ci_run_action {html.escape(HEADLINES.get(state, state))}</b>: {target}{link}"]
    if row.get("outcome") or row.get("outcome_detail"):
        lines.append(html.escape(f"{row.get('outcome') or ''} {row.get('outcome_detail') or ''}".strip()))
    lines.append(html.escape(_who(row)))
    return "\n".join(lines)
