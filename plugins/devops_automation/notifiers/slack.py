"""Slack delivery on the Slack provider's ``SlackHook`` (Web API, bot token), sent at most once.

Connection: the provider's type ``slack`` (password = bot token ``xoxb-…``; extra ``channel`` = the
default channel id, ``base_url`` only for a non-default API). The provider's hook retries only
connection errors; here 429 answers are retried too, honouring ``Retry-After``
(``slack_sdk.http_retry.RateLimitErrorRetryHandler``). With a ``dedup_key`` a message is posted once
however often the task runs (recorded in the results store).
"""

from __future__ import annotations

from typing import Any


def post_slack_once(
    text: str,
    *,
    dedup_key: str | None,
    slack_conn_id: str = "slack_default",
    channel: str | None = None,
    blocks: list[dict[str, Any]] | None = None,
    thread_ts: str | None = None,
    results_conn_id: str = "devops_results_db",
) -> str | None:
    """Post ``text`` (and ``blocks``) unless ``dedup_key`` was already delivered; returns the message ts."""
    from slack_sdk.http_retry import RateLimitErrorRetryHandler

    from airflow.providers.slack.hooks.slack import SlackHook

    hook = SlackHook(slack_conn_id=slack_conn_id, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=3)])
    target = channel or (hook.get_connection(slack_conn_id).extra_dejson or {}).get("channel")
    if not target:
        raise ValueError(f"no Slack channel: pass channel or set extra 'channel' on connection {slack_conn_id!r}")
    store = None
    if dedup_key:
        from devops_automation.store import ResultsStore

        store = ResultsStore.from_connection(results_conn_id)
        if not store.claim_notification(dedup_key, "slack", target):
            return None
    payload: dict[str, Any] = {"channel": target, "text": text, "unfurl_links": False}
    if blocks:
        payload["blocks"] = blocks
    if thread_ts:
        payload["thread_ts"] = thread_ts
    try:
        response = hook.call("chat.postMessage", json=payload)
    except Exception as exc:
        if store:
            store.notification_failed(dedup_key, f"{type(exc).__name__}: {exc}")
        raise
    ts = response.get("ts")
    if store:
        store.notification_sent(dedup_key, message_ref=ts)
    return ts
