"""``TelegramNotifier``: a reusable Airflow notifier (task or DAG callback) for Telegram.

    on_failure_callback=TelegramNotifier(text="<b>{{ dag.dag_id }}</b> failed: {{ ti.task_id }}")

Text is HTML (escape values with ``| e``); long text is split below Telegram's limit. With a
``dedup_key`` the notifier records the send in the results store and never sends the same key twice,
so a retried task or a cleared run does not alert again. See :mod:`devops_automation.hooks.telegram`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from devops_automation.hooks.telegram import TelegramBotHook

if TYPE_CHECKING:
    from airflow.sdk import Context


def send_once(text: str, *, dedup_key: str | None, telegram_conn_id: str = TelegramBotHook.default_conn_name,
              chat_id: str | int | None = None, results_conn_id: str = "devops_results_db") -> list[int] | None:
    """Send ``text`` unless ``dedup_key`` was already delivered; returns message ids, or None if skipped.

    A send that fails is recorded as failed (and raised), so a later retry sends it again.
    """
    hook = TelegramBotHook(telegram_conn_id, chat_id=chat_id)
    if dedup_key is None:
        return hook.send_message(text)
    from devops_automation.store import ResultsStore

    store = ResultsStore.from_connection(results_conn_id)
    target = str(chat_id or hook.chat_id)
    if not store.claim_notification(dedup_key, "telegram", target):
        hook.log.info("Telegram message %s was already sent; not sending it again", dedup_key)
        return None
    try:
        ids = hook.send_message(text)
    except Exception as exc:
        store.notification_failed(dedup_key, f"{type(exc).__name__}: {exc}")
        raise
    store.notification_sent(dedup_key, message_ref=",".join(map(str, ids)))
    return ids


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
        results_conn_id: str = "devops_results_db",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.text = text
        self.chat_id = chat_id
        self.telegram_conn_id = telegram_conn_id
        self.dedup_key = dedup_key
        self.results_conn_id = results_conn_id

    def notify(self, context: Context) -> None:
        send_once(self.text, dedup_key=self.dedup_key, telegram_conn_id=self.telegram_conn_id, chat_id=self.chat_id, results_conn_id=self.results_conn_id)

    async def async_notify(self, context: Context) -> None:
        from asgiref.sync import sync_to_async

        await sync_to_async(self.notify)(context)


send_telegram_notification = TelegramNotifier
