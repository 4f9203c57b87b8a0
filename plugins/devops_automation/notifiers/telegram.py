"""``TelegramNotifier``: a reusable Airflow notifier (task or DAG callback) for Telegram.

    on_failure_callback=TelegramNotifier(text="<b>{{ dag.dag_id }}</b> failed: {{ ti.task_id }}")

Text is HTML (escape values with ``| e``); long text is split below Telegram's limit. With a
``dedup_key`` the notifier records the send in the results store and never sends the same key twice,
so a retried task or a cleared run does not alert again (:func:`devops_automation.notifiers.send_once`).
See :mod:`devops_automation.hooks.telegram` for the connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from devops_automation.hooks.telegram import TelegramBotHook
from devops_automation.notifiers import RESULTS_CONN_ID, redacted, redacted_file, send_once

if TYPE_CHECKING:
    from airflow.sdk import Context


def send_telegram_once(
    text: str,
    *,
    dedup_key: str | None,
    telegram_conn_id: str = TelegramBotHook.default_conn_name,
    chat_id: str | int | None = None,
    results_conn_id: str = RESULTS_CONN_ID,
) -> list[int] | None:
    """Send ``text`` unless ``dedup_key`` was already delivered; returns message ids, or None if skipped.

    A send that fails is recorded as failed (and raised), so a later retry sends it again.
    """
    hook = TelegramBotHook(telegram_conn_id, chat_id=chat_id)
    target = str(chat_id or hook.chat_id) if dedup_key is not None else None
    return send_once(
        "telegram",
        target,
        dedup_key,
        lambda: hook.send_message(redacted(text)),
        message_ref=lambda ids: ",".join(map(str, ids)),
        results_conn_id=results_conn_id,
    )


def _send_file_once(
    data: bytes,
    *,
    photo: bool,
    filename: str,
    caption: str | None,
    dedup_key: str | None,
    chat_id: str | int | None,
    telegram_conn_id: str,
    results_conn_id: str,
) -> int | None:
    what = "photo" if photo else "document"
    if not isinstance(data, bytes | bytearray) or not data:
        raise ValueError(f"Telegram {what} {filename!r}: data must be non-empty bytes")
    if not isinstance(filename, str) or not filename.strip():
        raise ValueError(f"Telegram {what}: the file name is empty")
    hook = TelegramBotHook(telegram_conn_id, chat_id=chat_id)
    target = str(chat_id or hook.chat_id) if dedup_key is not None else None
    return send_once(
        "telegram",
        target,
        dedup_key,
        lambda: hook.send_file(
            bytes(data) if photo else redacted_file(filename, bytes(data)),
            filename,
            caption=redacted(caption or ""),
            photo=photo,
        ),
        results_conn_id=results_conn_id,
    )


def send_telegram_photo_once(
    photo: bytes,
    *,
    filename: str,
    caption: str | None = None,
    dedup_key: str | None,
    chat_id: str | int | None = None,
    telegram_conn_id: str = TelegramBotHook.default_conn_name,
    results_conn_id: str = RESULTS_CONN_ID,
) -> int | None:
    """Send ``photo`` (PNG/JPEG bytes, shown inline; ``sendPhoto`` as a multipart upload) with an HTML
    ``caption`` (cut to 1,024 visible characters) unless ``dedup_key`` was already delivered; returns the
    message id, or None if skipped. Flood control (429 ``retry_after``) is waited out, a refused photo
    raises :class:`~devops_automation.hooks.telegram.TelegramSendError`; a failure is recorded and raised,
    so a later call sends it."""
    return _send_file_once(
        photo,
        photo=True,
        filename=filename,
        caption=caption,
        dedup_key=dedup_key,
        chat_id=chat_id,
        telegram_conn_id=telegram_conn_id,
        results_conn_id=results_conn_id,
    )


def send_telegram_document_once(
    data: bytes,
    *,
    filename: str,
    caption: str | None = None,
    dedup_key: str | None,
    chat_id: str | int | None = None,
    telegram_conn_id: str = TelegramBotHook.default_conn_name,
    results_conn_id: str = RESULTS_CONN_ID,
) -> int | None:
    """Send ``data`` as a document named ``filename`` (``sendDocument``, multipart upload) with an HTML
    ``caption``, like :func:`send_telegram_photo_once`; returns the message id, or None if skipped."""
    return _send_file_once(
        data,
        photo=False,
        filename=filename,
        caption=caption,
        dedup_key=dedup_key,
        chat_id=chat_id,
        telegram_conn_id=telegram_conn_id,
        results_conn_id=results_conn_id,
    )


class TelegramNotifier(BaseNotifier):
    """Send an HTML message to Telegram from a callback (sync or async), optionally only once."""

    template_fields: Sequence[str] = ("text", "chat_id", "telegram_conn_id", "dedup_key")

    def __init__(
        self,
        *,
        text: str,
        chat_id: str | int | None = None,
        telegram_conn_id: str = TelegramBotHook.default_conn_name,
        dedup_key: str | None = None,
        results_conn_id: str = RESULTS_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.text = text
        self.chat_id = chat_id
        self.telegram_conn_id = telegram_conn_id
        self.dedup_key = dedup_key
        self.results_conn_id = results_conn_id

    def notify(self, context: Context) -> None:
        send_telegram_once(
            self.text,
            dedup_key=self.dedup_key,
            telegram_conn_id=self.telegram_conn_id,
            chat_id=self.chat_id,
            results_conn_id=self.results_conn_id,
        )

    async def async_notify(self, context: Context) -> None:
        from asgiref.sync import sync_to_async

        await sync_to_async(self.notify)(context)


send_telegram_notification = TelegramNotifier
