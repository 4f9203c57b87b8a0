"""Telegram Bot API hook (connection ``telegram_default``) with the handling the provider lacks.

Connection: the Telegram provider's type ``telegram``: password = bot token, host = default chat id;
extra ``base_url`` (only to point at a Bot API server other than Telegram's, e.g. the sandbox or a
local Bot API server). The provider's ``TelegramHook`` looks its connection up in ``__init__``,
retries every error after a fixed second (ignoring ``retry_after``, re-sending malformed messages)
and does not split long text (``../shared/api/telegram.md`` §5.2). This hook talks to the Bot API
through ``python-telegram-bot`` with: a lazy connection lookup; 4,096-character splitting on line
boundaries; flood control honoured (``RetryAfter.retry_after``, capped); network errors and
timeouts retried with backoff; ``BadRequest``/``Forbidden`` never retried and reported with what
to fix. The token is never logged (it is part of every Bot API URL).
"""

from __future__ import annotations

import asyncio
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from devops_automation.messaging import TELEGRAM_CAPTION_LIMIT, split_html

if TYPE_CHECKING:
    from airflow.sdk import Connection


class TelegramSendError(RuntimeError):
    """Telegram refused a message for a reason a retry cannot fix (bad chat id, blocked bot, bad HTML)."""


class TelegramBotHook(BaseHook):
    conn_name_attr = "telegram_conn_id"
    default_conn_name = "telegram_default"
    conn_type = "telegram"
    hook_name = "Telegram Bot"

    def __init__(
        self,
        telegram_conn_id: str = default_conn_name,
        *,
        chat_id: str | int | None = None,
        timeout: float = 20.0,
        max_attempts: int = 4,
        max_retry_wait: float = 60.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.telegram_conn_id = telegram_conn_id
        self._chat_id = chat_id
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_retry_wait = max_retry_wait

    @cached_property
    def connection(self) -> Connection:
        return self.get_connection(self.telegram_conn_id)

    @property
    def chat_id(self) -> str:
        chat = self._chat_id or self.connection.host
        if not chat:
            raise ValueError(
                f"no Telegram chat id: pass chat_id or set the host of connection {self.telegram_conn_id!r}"
            )
        return str(chat)

    def _bot(self) -> Any:
        from telegram import Bot
        from telegram.request import HTTPXRequest

        token = self.connection.password
        if not token:
            raise ValueError(f"connection {self.telegram_conn_id!r} has no bot token (password)")
        request = HTTPXRequest(
            connect_timeout=self.timeout,
            read_timeout=self.timeout,
            write_timeout=self.timeout,
            media_write_timeout=max(60.0, self.timeout),
        )
        base_url = (self.connection.extra_dejson or {}).get("base_url")
        kwargs: dict[str, Any] = {"request": request}
        if base_url:
            kwargs["base_url"] = base_url
        return Bot(token, **kwargs)

    async def _call(self, what: str, fn: Any) -> Any:
        """Run one Bot API call with flood-control and network retries; refuse to retry bad requests."""
        from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut

        delay = 1.0
        for attempt in range(1, self.max_attempts + 1):
            try:
                return await fn()
            except RetryAfter as exc:
                wait = float(
                    exc.retry_after.total_seconds() if hasattr(exc.retry_after, "total_seconds") else exc.retry_after
                )
                if wait > self.max_retry_wait or attempt == self.max_attempts:
                    raise
                self.log.warning("Telegram flood control on %s: waiting %.1fs (attempt %d)", what, wait, attempt)
                await asyncio.sleep(wait)
            except (BadRequest, Forbidden, InvalidToken) as exc:
                hint = (
                    " -- check the chat id (host of the Telegram connection)"
                    if "chat not found" in str(exc).lower()
                    else ""
                )
                raise TelegramSendError(f"Telegram refused {what}: {exc}{hint}") from exc
            except (TimedOut, NetworkError) as exc:
                if attempt == self.max_attempts:
                    raise
                self.log.warning("Telegram %s failed (%s); retry in %.1fs", what, exc, delay)
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    async def asend_message(
        self, text: str, *, chat_id: str | int | None = None, parse_mode: str | None = "HTML"
    ) -> list[int]:
        """Send ``text`` (split when long) and return the message ids."""
        chat = str(chat_id) if chat_id is not None else self.chat_id
        chunks = split_html(text) if parse_mode == "HTML" else [text[i : i + 4096] for i in range(0, len(text), 4096)]
        from telegram import LinkPreviewOptions

        ids = []
        async with self._bot() as bot:
            for i, chunk in enumerate(chunks, 1):
                msg = await self._call(
                    f"message part {i}/{len(chunks)}",
                    lambda chunk=chunk: bot.send_message(
                        chat_id=chat,
                        text=chunk,
                        parse_mode=parse_mode,
                        link_preview_options=LinkPreviewOptions(is_disabled=True),
                    ),
                )
                ids.append(msg.message_id)
        return ids

    async def asend_file(
        self, data: bytes, filename: str, *, caption: str = "", photo: bool = False, chat_id: str | int | None = None
    ) -> int:
        """Send a document (or an inline photo) with an HTML caption cut to Telegram's 1,024 limit."""
        chat = str(chat_id) if chat_id is not None else self.chat_id
        caption = split_html(caption, TELEGRAM_CAPTION_LIMIT)[0] if caption else ""
        async with self._bot() as bot:
            if photo:
                msg = await self._call(
                    f"photo {filename}",
                    lambda: bot.send_photo(
                        chat_id=chat, photo=data, caption=caption or None, parse_mode="HTML", filename=filename
                    ),
                )
            else:
                msg = await self._call(
                    f"document {filename}",
                    lambda: bot.send_document(
                        chat_id=chat, document=data, filename=filename, caption=caption or None, parse_mode="HTML"
                    ),
                )
        return msg.message_id

    def send_message(self, text: str, **kwargs: Any) -> list[int]:
        """Synchronous :meth:`asend_message` (for tasks and callbacks)."""
        return asyncio.run(self.asend_message(text, **kwargs))

    def send_file(self, data: bytes, filename: str, **kwargs: Any) -> int:
        return asyncio.run(self.asend_file(data, filename, **kwargs))

    def test_connection(self) -> tuple[bool, str]:
        async def me() -> Any:
            async with self._bot() as bot:
                return await bot.get_me()

        try:
            user = asyncio.run(me())
        except Exception as exc:  # noqa: BLE001 - shown in the UI
            return False, str(exc)
        return True, f"bot @{user.username}"
