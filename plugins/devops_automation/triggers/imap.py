"""``ImapMailTrigger``: turn mail arriving in an IMAP folder into asset events (an AssetWatcher).

Runs in the triggerer, forever. It keeps one IMAP session with the folder selected and:

1. lists the folder's UIDs and yields ``{"source": "imap", "conn_id", "folder", "uids", "count",
   "uidvalidity"}`` for those it has not fired for yet (remembered in memory, keyed with the
   folder's UIDVALIDITY, and pruned to what is still in the folder: UIDs are never reused);
2. waits for new mail with IMAP IDLE when the server offers it (re-issued every ``idle_timeout``
   seconds, as RFC 2177 asks), else sleeps ``poll_interval`` and looks again.

Mail that stays in the folder is not fired for again by the same instance (the DAG moves what it
processed out of the folder); a new instance after a triggerer restart fires once for what is still
there, which is intended: the DAG then re-sorts it.

Every blocking ``imaplib`` call runs in ``asyncio.to_thread``; an IDLE wait is read in chunks of at
most ``IDLE_CHUNK`` seconds, and cancellation or :meth:`cleanup` shuts the socket down, which wakes
a reader thread at once. Nothing stops the trigger: an unreachable server, a refused login or a
missing connection is logged (once per distinct error, never with the password) and retried with
exponential backoff up to ``reconnect_max`` seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

if TYPE_CHECKING:
    from imap_tools import BaseMailBox

    from devops_automation.hooks.imap import ImapMailboxHook

CLASSPATH = "devops_automation.triggers.imap.ImapMailTrigger"
IDLE_CHUNK = 2.0  # seconds one thread blocks waiting for IDLE data (bounds cancellation delay)
INITIAL_BACKOFF = 1.0


class ImapMailTrigger(BaseEventTrigger):
    def __init__(
        self,
        imap_conn_id: str = "imap_default",
        folder: str | None = None,
        poll_interval: float = 30.0,
        idle_timeout: float = 240.0,
        reconnect_max: float = 300.0,
    ) -> None:
        super().__init__()
        self.imap_conn_id = imap_conn_id
        self.folder = folder
        self.poll_interval = float(poll_interval)
        self.idle_timeout = float(idle_timeout)
        self.reconnect_max = float(reconnect_max)
        self._mb: BaseMailBox | None = None
        self._last_error: str | None = None
        self.use_idle: bool | None = None  # what the current session does (for logs and tests)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            CLASSPATH,
            {
                "imap_conn_id": self.imap_conn_id,
                "folder": self.folder,
                "poll_interval": self.poll_interval,
                "idle_timeout": self.idle_timeout,
                "reconnect_max": self.reconnect_max,
            },
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ImapMailTrigger) and self.serialize() == other.serialize()

    def __hash__(self) -> int:
        classpath, kwargs = self.serialize()
        return hash((classpath, tuple(sorted(kwargs.items()))))

    # ---- pieces (overridable in tests) ---------------------------------------------------------

    async def _hook(self) -> ImapMailboxHook:
        from airflow.sdk import BaseHook

        from devops_automation.hooks.imap import ImapMailboxHook

        return ImapMailboxHook.from_connection(await BaseHook.aget_connection(self.imap_conn_id))

    def _supports_idle(self, hook: ImapMailboxHook, mb: BaseMailBox) -> bool:
        from devops_automation.hooks.imap import mailbox_capabilities

        return "IDLE" in mailbox_capabilities(mb)

    def _keep(self, mb: BaseMailBox) -> None:
        self._mb = mb  # before the login: a cancelled trigger can shut the socket down at once

    def _close(self) -> None:
        from devops_automation.hooks.imap import close_socket

        mb, self._mb = self._mb, None
        close_socket(mb)

    def _failed(self, exc: BaseException, delay: float) -> None:
        text = f"{type(exc).__name__}: {exc}"[:500]
        if text != self._last_error:
            self.log.warning(
                "IMAP watcher on %r (folder %r) cannot read mail: %s; retrying with backoff up to %gs",
                self.imap_conn_id,
                self.folder or "<connection default>",
                text,
                self.reconnect_max,
            )
            self._last_error = text
        else:
            self.log.debug("IMAP watcher still failing (%s); next try in %.1fs", text, delay)

    # ---- main loop -----------------------------------------------------------------------------

    async def run(self) -> AsyncIterator[TriggerEvent]:
        fired: set[tuple[str, str]] = set()
        delay = min(INITIAL_BACKOFF, self.reconnect_max)
        try:
            while True:
                try:
                    hook = await self._hook()
                    folder = self.folder or hook.folder
                    self._mb = mb = await asyncio.to_thread(hook.open_session, self._keep)
                    validity = await asyncio.to_thread(hook.select, mb, folder)
                    self.use_idle = await asyncio.to_thread(self._supports_idle, hook, mb)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - never die: log once, back off, try again
                    self._close()
                    self._failed(exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.reconnect_max)
                    continue
                if self._last_error is not None:
                    self.log.info("IMAP watcher on %r connected again to %s", self.imap_conn_id, hook.where)
                self._last_error = None
                delay = min(INITIAL_BACKOFF, self.reconnect_max)
                self.log.info(
                    "Watching IMAP folder %r on %s (%s)",
                    folder,
                    hook.where,
                    "IDLE" if self.use_idle else f"polling every {self.poll_interval:.0f}s",
                )
                try:
                    while True:
                        uids = await asyncio.to_thread(_list_uids, mb)
                        present = set(uids)
                        fired = {(v, u) for v, u in fired if v == validity and u in present}  # UIDs never come back
                        new = [u for u in uids if (validity, u) not in fired]
                        if new:
                            fired.update((validity, u) for u in new)
                            self.log.info("%d new message(s) in %r: UIDs %s", len(new), folder, ",".join(new[:20]))
                            yield TriggerEvent(
                                {
                                    "source": "imap",
                                    "conn_id": self.imap_conn_id,
                                    "folder": folder,
                                    "uids": new,
                                    "count": len(new),
                                    "uidvalidity": validity,
                                }
                            )
                        if self.use_idle:
                            await self._idle(mb)
                        else:
                            await asyncio.sleep(self.poll_interval)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - session lost: reconnect
                    self._close()
                    self._failed(exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.reconnect_max)
        finally:
            self._close()

    async def _idle(self, mb: BaseMailBox) -> None:
        """Wait in IDLE until the server reports something or ``idle_timeout`` passes."""
        from devops_automation.hooks.imap import idle_done, idle_poll, idle_start

        if await asyncio.to_thread(idle_start, mb):
            await asyncio.to_thread(idle_done, mb)
            return
        deadline = time.monotonic() + self.idle_timeout
        while (left := deadline - time.monotonic()) > 0:
            responses = await asyncio.to_thread(idle_poll, mb, min(IDLE_CHUNK, left))
            if responses:
                self.log.debug("IDLE: %s", responses[:5])
                break
        await asyncio.to_thread(idle_done, mb)

    async def cleanup(self) -> None:
        self._close()


def _list_uids(mb: BaseMailBox) -> list[str]:
    return sorted(mb.uids("ALL", charset=None), key=int)
