"""Slack delivery on the Slack provider's ``SlackHook`` (Web API, bot token), sent at most once.

    on_failure_callback=SlackNotifier(
        text="*{{ dag.dag_id }}* failed: {{ ti.task_id }}", dedup_key="{{ run_id }}:failed"
    )

Connection: the provider's type ``slack`` (password = bot token ``xoxb-…``; extra ``channel`` = the
default channel id, ``base_url`` only for a non-default API). The provider's hook retries only
connection errors; here 429 answers are retried too, honouring ``Retry-After``
(``slack_sdk.http_retry.RateLimitErrorRetryHandler``). With a ``dedup_key`` a message is posted once
however often the task runs (:func:`devops_automation.notifiers.send_once`).

Files go up with :func:`upload_slack_files_once` (upload v2: ``files.getUploadURLExternal``, the bytes,
``files.completeUploadExternal``, all through ``WebClient.files_upload_v2`` of the hook's client): several
files in one call, shared to one channel, optionally in a thread. Upload v2 takes channel IDs only
(``C…``/``G…``); a ``#name`` is looked up with ``conversations.list`` (``SlackHook.get_channel_id``,
scopes ``channels:read``/``groups:read``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from devops_automation.notifiers import RESULTS_CONN_ID, redacted, redacted_file, send_once

if TYPE_CHECKING:
    from airflow.sdk import Context

SLACK_CONN_ID = "slack_default"
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_REF_LIMIT = 255  # notifications.message_ref


def _hook(slack_conn_id: str) -> Any:
    from airflow.providers.slack.hooks.slack import SlackHook
    from slack_sdk.http_retry import RateLimitErrorRetryHandler

    return SlackHook(slack_conn_id=slack_conn_id, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=3)])


def _default_channel(hook: Any, slack_conn_id: str, channel: str | None) -> str:
    target = channel or (hook.get_connection(slack_conn_id).extra_dejson or {}).get("channel")
    if not target:
        raise ValueError(f"no Slack channel: pass channel or set extra 'channel' on connection {slack_conn_id!r}")
    return str(target)


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
    hook = _hook(slack_conn_id)
    target = _default_channel(hook, slack_conn_id, channel)
    payload: dict[str, Any] = {"channel": target, "text": redacted(text), "unfurl_links": False}
    if blocks:
        payload["blocks"] = redacted(blocks)
    if thread_ts:
        payload["thread_ts"] = thread_ts
    return send_once(
        "slack",
        target,
        dedup_key,
        lambda: hook.call("chat.postMessage", json=payload).get("ts"),
        results_conn_id=results_conn_id,
    )


def _file_ids_ref(ids: list[str]) -> str:
    """The uploaded file ids for ``notifications.message_ref`` (as many whole ids as fit in 255)."""
    ref = ""
    for file_id in ids:
        candidate = f"{ref},{file_id}" if ref else file_id
        if len(candidate) > _REF_LIMIT:
            break
        ref = candidate
    return ref


def upload_slack_files_once(
    files: Sequence[tuple[str, bytes, str]],
    *,
    dedup_key: str | None,
    channel: str | None = None,
    thread_ts: str | None = None,
    initial_comment: str | None = None,
    slack_conn_id: str = SLACK_CONN_ID,
    results_conn_id: str = RESULTS_CONN_ID,
) -> list[str] | None:
    """Upload ``files`` (``(filename, content, title)`` each) to ``channel`` in one upload-v2 call, under
    ``thread_ts`` when given, unless ``dedup_key`` was already delivered; returns the Slack file ids
    (None if skipped). ``channel`` defaults to the connection's extra ``channel``; a ``#name`` (or bare
    name) is resolved to its ID first. The upload is all or nothing for the dedup key: if it fails, it is
    recorded as failed and the next call uploads every file again.

    Raises ``ValueError`` for no files, a file without a name, content that is not non-empty bytes, a
    name used twice, or a channel name that does not exist (nothing is claimed then)."""
    if not files:
        raise ValueError("upload_slack_files_once: no files to upload")
    uploads = []
    for i, item in enumerate(files):
        if not isinstance(item, tuple) or len(item) != 3:
            raise ValueError(f"files[{i}]: expected (filename, content, title), got {type(item).__name__}")
        name, content, title = item
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"files[{i}]: the file name is empty")
        if not isinstance(content, bytes | bytearray) or not content:
            raise ValueError(f"files[{i}] {name!r}: content must be non-empty bytes")
        if any(u["filename"] == name for u in uploads):
            raise ValueError(f"files[{i}]: file name {name!r} is used twice")
        uploads.append(
            {"content": redacted_file(name, bytes(content)), "filename": name, "title": redacted(title or name)}
        )
    hook = _hook(slack_conn_id)
    target = _default_channel(hook, slack_conn_id, channel)
    if not _CHANNEL_ID.match(target):
        try:
            target = hook.get_channel_id(target.removeprefix("#"))
        except LookupError:
            raise ValueError(
                f"Slack channel {target!r} not found (or the bot cannot see it) on connection {slack_conn_id!r}; "
                "file uploads need a channel ID such as C0123ABCD"
            ) from None

    def upload() -> list[str]:
        response = hook.client.files_upload_v2(
            file_uploads=uploads,
            channel=target,
            thread_ts=thread_ts,
            initial_comment=redacted(initial_comment) if initial_comment else None,
        )
        return [str(f["id"]) for f in response.get("files") or []]

    return send_once("slack", target, dedup_key, upload, message_ref=_file_ids_ref, results_conn_id=results_conn_id)


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
