"""Slack delivery on the Slack provider's ``SlackHook`` (Web API, bot token), sent at most once.

    on_failure_callback=SlackNotifier(
        text="*{{ dag.dag_id }}* failed: {{ ti.task_id }}", dedup_key="{{ run_id }}:failed"
    )

Connection: the provider's type ``slack`` (password = bot token ``xoxb-…``; extra ``channel`` = the
default channel id, ``base_url`` only for a non-default API). The provider's hook retries only
connection errors; here 429 answers are retried too, honouring ``Retry-After``
(``slack_sdk.http_retry.RateLimitErrorRetryHandler``). With a ``dedup_key`` a message is posted once
however often the task runs (:func:`devops_automation.notifiers.send_once`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from devops_automation.notifiers import RESULTS_CONN_ID, send_once

if TYPE_CHECKING:
    from airflow.sdk import Context

SLACK_CONN_ID = "slack_default"


def post_slack_once(
    text: str,
    *,
    dedup_key: str | None,
    slack_conn_id: str = SLACK_CONN_ID,
    channel: str | None = None,
    blocks: list[dict[str, Any]] | None = None,
    thread_ts: str | None = None,
    results_conn_id: str = RESULTS_CONN_ID,
) -> str | None:
    """Post ``text`` (and ``blocks``) unless ``dedup_key`` was already delivered; returns the message ts."""
    from airflow.providers.slack.hooks.slack import SlackHook
    from slack_sdk.http_retry import RateLimitErrorRetryHandler

    hook = SlackHook(slack_conn_id=slack_conn_id, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=3)])
    target = channel or (hook.get_connection(slack_conn_id).extra_dejson or {}).get("channel")
    if not target:
        raise ValueError(f"no Slack channel: pass channel or set extra 'channel' on connection {slack_conn_id!r}")
    payload: dict[str, Any] = {"channel": target, "text": text, "unfurl_links": False}
    if blocks:
        payload["blocks"] = blocks
    if thread_ts:
        payload["thread_ts"] = thread_ts
    return send_once(
        "slack",
        target,
        dedup_key,
        lambda: hook.call("chat.postMessage", json=payload).get("ts"),
        results_conn_id=results_conn_id,
    )


class SlackNotifier(BaseNotifier):
    """Post a message to Slack from a callback (sync or async), optionally only once per ``dedup_key``."""

    template_fields: Sequence[str] = ("text", "channel", "slack_conn_id", "dedup_key", "blocks")

    def __init__(
        self,
        *,
        text: str,
        channel: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
        slack_conn_id: str = SLACK_CONN_ID,
        dedup_key: str | None = None,
        results_conn_id: str = RESULTS_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.text = text
        self.channel = channel
        self.blocks = blocks
        self.slack_conn_id = slack_conn_id
        self.dedup_key = dedup_key
        self.results_conn_id = results_conn_id

    def notify(self, context: Context) -> None:
        post_slack_once(
            self.text,
            dedup_key=self.dedup_key,
            slack_conn_id=self.slack_conn_id,
            channel=self.channel,
            blocks=self.blocks,
            results_conn_id=self.results_conn_id,
        )

    async def async_notify(self, context: Context) -> None:
        from asgiref.sync import sync_to_async

        await sync_to_async(self.notify)(context)


send_slack_notification = SlackNotifier
