"""``ImapMailboxHook``: the mailbox that receives GitLab pipeline e-mails (connection ``imap_default``).

Connection (type ``imap_mailbox``; ``imap`` works too): host, port (default 993 with SSL, 143
without), login, password.
Extras (all optional):

* ``use_ssl`` (default true; the strings "false"/"0"/"no" count as false), ``starttls`` (default
  false: plain TCP upgraded with STARTTLS, default port 143), ``timeout`` (socket seconds, default 30);
* ``folder`` (watched folder, default ``INBOX``), ``processed_folder`` (default ``Processed``),
  ``needs_attention_folder`` (default ``needs-attention``);
* ``allowed_senders``: addresses and ``@domain`` entries, as a list or a comma-separated string.

Built on ``imap-tools`` (imported inside the methods: DAG files import this module). Why not just
``imap_tools.MailBox.fetch``: it re-serialises the parsed message (not byte-exact) and its ``flag``
expunges the folder. Here messages are fetched with ``BODY.PEEK[]`` (never marked seen) and returned
as the server's own bytes, flags are set with ``UID STORE`` only, and IDLE is started in a way that
tolerates untagged responses arriving before the continuation (see :func:`idle_start`).

Every method opens its own session and logs out; :meth:`get_conn` / :meth:`mailbox` hand out a
logged-in ``MailBox`` for callers (such as the trigger) that keep one open. Errors name host:port and
the user, never the password.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from devops_automation import as_bool

if TYPE_CHECKING:
    from airflow.sdk import Connection
    from imap_tools import BaseMailBox

FETCH_CHUNK = 100


class ImapError(RuntimeError):
    """An IMAP operation failed (the message says where and why; it never holds the password)."""


class ImapConnectError(ImapError):
    """The server could not be reached."""


class ImapLoginError(ImapError):
    """The server refused the login."""


class ImapFolderError(ImapError):
    """A folder is missing or could not be created/selected."""


@dataclass(frozen=True)
class RawMessage:
    uid: str
    raw: bytes
    flags: tuple[str, ...]
    size: int


def parse_senders(value: Any) -> list[str]:
    """``allowed_senders`` from a list, a JSON list string or a comma-separated string (lowercased)."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        value = json.loads(text) if text.startswith("[") else text.split(",")
    return [s.strip().lower() for s in value if str(s).strip()]


def mailbox_capabilities(mb: BaseMailBox) -> set[str]:
    """Capabilities of a logged-in session (asked again: many servers add some after LOGIN)."""
    typ, data = mb.client.capability()
    if typ == "OK" and data and data[0]:
        return {c.upper() for c in data[0].decode(errors="replace").split()}
    return {str(c).upper() for c in mb.client.capabilities}


def idle_start(mb: BaseMailBox) -> bool:
    """Send IDLE and wait for the server's continuation; True when untagged responses (new mail)
    arrived before it (imap-tools' own ``idle.start`` fails in that case)."""
    from imap_tools.errors import MailboxTaggedResponseError

    client = mb.client
    tag = client._command("IDLE")
    activity = False
    while True:
        resp = client._get_response()
        if resp is None:
            break
        if client.tagged_commands.get(tag):
            client.tagged_commands.pop(tag, None)
            raise MailboxTaggedResponseError((resp, "IDLE start"), None)
        activity = True
    mb.idle._idle_tag = tag
    return activity


def idle_poll(mb: BaseMailBox, timeout: float) -> list[bytes]:
    """Wait up to ``timeout`` seconds in IDLE for one server line (``[]`` when none came).

    Unlike imap-tools' ``idle.poll`` this also sees data already read into imaplib's buffer (a
    response that came in the same packet as "+ idling"), and a connection the server closed raises
    (imaplib's "socket error: EOF") instead of returning nothing again and again.
    """
    import select
    import ssl

    client = mb.client
    sock = client.sock
    old = sock.gettimeout()
    try:
        sock.settimeout(0)
        try:
            ready = bool(client.file.peek(1))
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            ready = False
        if not ready:
            if hasattr(select, "poll"):
                poller = select.poll()
                poller.register(sock.fileno(), select.POLLIN | select.POLLPRI)
                ready = bool(poller.poll(max(0.0, timeout) * 1000))
            else:  # pragma: no cover - Windows
                ready = bool(select.select([sock], [], [], max(0.0, timeout))[0])
    finally:
        sock.settimeout(old)
    if not ready:
        return []
    return [client._get_line()]


def idle_done(mb: BaseMailBox) -> None:
    """End IDLE (DONE) and consume the tagged answer."""
    mb.idle.stop()


def close_socket(mb: BaseMailBox | None) -> None:
    """Drop a session at once without talking to the server (wakes a thread blocked reading it)."""
    if mb is None:
        return
    with contextlib.suppress(Exception):
        mb.client.sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(Exception):
        mb.client.shutdown()


_UID = re.compile(rb"UID (\d+)")
_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_FETCH_START = re.compile(rb"^\d+ \(")


def parse_fetch(data: list[Any]) -> list[RawMessage]:
    """Messages from an imaplib ``UID FETCH (UID FLAGS RFC822.SIZE BODY.PEEK[])`` answer.

    Each message is a ``(prefix, literal)`` tuple, then a bytes trailer (``)`` or attributes the
    server put after the literal). Unsolicited FETCH responses (flag changes of other messages)
    carry no literal and are skipped.
    """
    out: list[RawMessage] = []
    i = 0
    while i < len(data):
        item = data[i]
        if isinstance(item, tuple) and len(item) == 2:
            meta, body = bytes(item[0]), bytes(item[1])
            nxt = data[i + 1] if i + 1 < len(data) else None
            if isinstance(nxt, bytes) and not _FETCH_START.match(nxt):
                meta += b" " + nxt
                i += 1
            uid = _UID.search(meta)
            if uid:
                flags = _FLAGS.search(meta)
                size = _SIZE.search(meta)
                out.append(
                    RawMessage(
                        uid=uid.group(1).decode(),
                        raw=body,
                        flags=tuple(flags.group(1).decode(errors="replace").split()) if flags else (),
                        size=int(size.group(1)) if size else len(body),
                    )
                )
        i += 1
    return out


def _uid_set(uids: Iterable[str | int]) -> list[str]:
    cleaned = sorted({str(u).strip() for u in uids if str(u).strip()}, key=int)
    return cleaned


def _check(result: tuple, what: str) -> Any:
    typ, data = result[0], result[1]
    if typ != "OK":
        detail = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace") if data else ""
        raise ImapError(f"IMAP {what} failed: {typ} {detail}".strip())
    return data


class ImapMailboxHook(BaseHook):
    conn_name_attr = "imap_conn_id"
    default_conn_name = "imap_default"
    conn_type = "imap_mailbox"  # not "imap": that is the IMAP provider's type (other extras)
    hook_name = "IMAP mailbox"

    def __init__(self, imap_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.imap_conn_id = imap_conn_id

    @classmethod
    def from_connection(cls, connection: Connection, **kwargs: Any) -> ImapMailboxHook:
        """A hook on an already looked-up connection (the trigger fetches it with ``aget_connection``)."""
        hook = cls(connection.conn_id or cls.default_conn_name, **kwargs)
        hook.connection = connection  # fills the cached_property
        return hook

    # ---- configuration -------------------------------------------------------------------------

    @cached_property
    def connection(self) -> Connection:
        return self.get_connection(self.imap_conn_id)

    @cached_property
    def extras(self) -> dict[str, Any]:
        return dict(self.connection.extra_dejson or {})

    @property
    def host(self) -> str:
        if not self.connection.host:
            raise ImapError(f"IMAP connection {self.imap_conn_id!r} has no host")
        return self.connection.host

    @property
    def use_ssl(self) -> bool:
        return as_bool(self.extras.get("use_ssl"), True) and not self.starttls

    @property
    def starttls(self) -> bool:
        return as_bool(self.extras.get("starttls"), False)

    @property
    def port(self) -> int:
        return int(self.connection.port or (993 if self.use_ssl else 143))

    @property
    def user(self) -> str:
        return self.connection.login or ""

    @property
    def timeout(self) -> float:
        return float(self.extras.get("timeout") or 30)

    @property
    def folder(self) -> str:
        return str(self.extras.get("folder") or "INBOX")

    @property
    def processed_folder(self) -> str:
        return str(self.extras.get("processed_folder") or "Processed")

    @property
    def needs_attention_folder(self) -> str:
        return str(self.extras.get("needs_attention_folder") or "needs-attention")

    @property
    def allowed_senders(self) -> list[str]:
        return parse_senders(self.extras.get("allowed_senders"))

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    # ---- sessions ------------------------------------------------------------------------------

    def open_session(self, on_connect: Callable[[BaseMailBox], None] | None = None) -> BaseMailBox:
        """A logged-in session with no folder selected. ``on_connect`` gets the session before the
        login (the trigger keeps it to shut the socket down if it is cancelled meanwhile)."""
        import ssl

        from imap_tools import MailBox, MailBoxStartTls, MailBoxUnencrypted
        from imap_tools.errors import MailboxLoginError, MailboxStarttlsError

        try:
            if self.starttls:
                mb: BaseMailBox = MailBoxStartTls(
                    self.host, self.port, timeout=self.timeout, ssl_context=ssl.create_default_context()
                )
            elif self.use_ssl:
                mb = MailBox(self.host, self.port, timeout=self.timeout, ssl_context=ssl.create_default_context())
            else:
                mb = MailBoxUnencrypted(self.host, self.port, timeout=self.timeout)
        except (OSError, MailboxStarttlsError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise ImapConnectError(
                f"cannot connect to IMAP server {self.where} (connection {self.imap_conn_id!r}): {reason}"
            ) from None
        if on_connect is not None:
            on_connect(mb)
        try:
            mb.login(self.user, self.connection.password or "", initial_folder=None)
        except MailboxLoginError as exc:
            close_socket(mb)
            said = b" ".join(d for d in (exc.command_result[1] or []) if isinstance(d, bytes)).decode(errors="replace")
            raise ImapLoginError(
                f"IMAP login to {self.where} as {self.user!r} failed: {said or exc.command_result[0]}"
            ) from None
        except Exception as exc:  # noqa: BLE001 - imaplib errors/aborts: never chain (the frame holds the password)
            close_socket(mb)
            raise ImapLoginError(
                f"IMAP login to {self.where} as {self.user!r} failed: {type(exc).__name__}: {exc}"
            ) from None
        return mb

    def select(self, mb: BaseMailBox, folder: str) -> str:
        """Select ``folder``; returns its UIDVALIDITY."""
        typ, data = mb.client.select(_quote(folder))
        if typ != "OK":
            said = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
            raise ImapFolderError(f"cannot select IMAP folder {folder!r} on {self.where}: {said}")
        mb.folder._current_folder = folder
        validity = mb.client.untagged_responses.get("UIDVALIDITY") or [b""]
        value = validity[-1].decode() if isinstance(validity[-1], bytes) else str(validity[-1])
        if not value:
            value = str(mb.folder.status(folder, ["UIDVALIDITY"]).get("UIDVALIDITY", ""))
        return value

    def get_conn(self, folder: str | None = None) -> BaseMailBox:
        """A logged-in imap-tools ``MailBox`` with ``folder`` (default: the connection's) selected.
        The caller logs out (or use :meth:`mailbox`)."""
        mb = self.open_session()
        try:
            self.select(mb, folder or self.folder)
        except Exception:
            _logout(mb)
            raise
        return mb

    @contextlib.contextmanager
    def mailbox(self, folder: str | None = None, *, select: bool = True) -> Iterator[BaseMailBox]:
        """``with hook.mailbox() as mb:`` a session (folder selected unless ``select=False``), logged out after."""
        mb = self.get_conn(folder) if select else self.open_session()
        try:
            yield mb
        finally:
            _logout(mb)

    # ---- operations ----------------------------------------------------------------------------

    def capabilities(self) -> set[str]:
        with self.mailbox(select=False) as mb:
            return mailbox_capabilities(mb)

    def supports_idle(self) -> bool:
        return "IDLE" in self.capabilities()

    def list_uids(self, folder: str | None = None) -> list[str]:
        """UIDs of every message in the folder, oldest first."""
        with self.mailbox(folder) as mb:
            return sorted(mb.uids("ALL", charset=None), key=int)

    def fetch_messages(
        self, folder: str | None = None, uids: Iterable[str | int] | None = None, limit: int | None = None
    ) -> list[RawMessage]:
        """The raw RFC 822 bytes (as stored on the server), flags and size of messages, oldest first.
        Messages are not marked seen. ``uids`` that are gone are skipped."""
        with self.mailbox(folder) as mb:
            wanted = _uid_set(uids) if uids is not None else sorted(mb.uids("ALL", charset=None), key=int)
            if limit is not None:
                wanted = wanted[: max(0, int(limit))]
            out: list[RawMessage] = []
            for i in range(0, len(wanted), FETCH_CHUNK):
                chunk = ",".join(wanted[i : i + FETCH_CHUNK])
                data = _check(
                    mb.client.uid("FETCH", chunk, "(UID FLAGS RFC822.SIZE BODY.PEEK[])"),
                    f"UID FETCH in {folder or self.folder!r}",
                )
                out += parse_fetch(data)
        by_uid = {m.uid: m for m in out}
        return [by_uid[u] for u in sorted(by_uid, key=int)]

    def _ensure(self, mb: BaseMailBox, name: str) -> bool:
        """Create ``name`` when missing; True when it was created."""
        if mb.folder.exists(name):
            return False
        typ, data = mb.client._simple_command("CREATE", _quote(name))
        if typ != "OK":
            said = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
            if "ALREADYEXISTS" in said.upper() or mb.folder.exists(name):
                return False
            raise ImapFolderError(f"cannot create IMAP folder {name!r} on {self.where}: {said}")
        with contextlib.suppress(Exception):
            mb.client.subscribe(_quote(name))
        self.log.info("Created IMAP folder %r on %s", name, self.where)
        return True

    def ensure_folder(self, name: str) -> bool:
        """Create the folder when it does not exist (idempotent); True when it was created."""
        with self.mailbox(select=False) as mb:
            return self._ensure(mb, name)

    def move(self, uids: Iterable[str | int], folder: str, *, source: str | None = None) -> int:
        """Move messages from ``source`` (default: the watched folder) to ``folder``, creating it."""
        wanted = _uid_set(uids)
        if not wanted:
            return 0
        with self.mailbox(source) as mb:
            self._ensure(mb, folder)
            if "MOVE" in mailbox_capabilities(mb):
                _check(mb.client.uid("MOVE", ",".join(wanted), _quote(folder)), f"UID MOVE to {folder!r}")
            else:  # copy, mark deleted, expunge only those (UIDPLUS) or the folder
                _check(mb.client.uid("COPY", ",".join(wanted), _quote(folder)), f"UID COPY to {folder!r}")
                _check(mb.client.uid("STORE", ",".join(wanted), "+FLAGS.SILENT", r"(\Deleted)"), "UID STORE \\Deleted")
                if "UIDPLUS" in mailbox_capabilities(mb):
                    _check(mb.client.uid("EXPUNGE", ",".join(wanted)), "UID EXPUNGE")
                else:
                    _check(mb.client.expunge(), "EXPUNGE")
        self.log.info("Moved %d message(s) to %r", len(wanted), folder)
        return len(wanted)

    def flag(
        self, uids: Iterable[str | int], flags: str | Iterable[str], value: bool = True, *, folder: str | None = None
    ) -> int:
        """Set (or clear, ``value=False``) flags such as ``\\Seen``/``\\Flagged`` on messages."""
        wanted = _uid_set(uids)
        names = [flags] if isinstance(flags, str) else list(flags)
        if not wanted or not names:
            return 0
        with self.mailbox(folder) as mb:
            _check(
                mb.client.uid(
                    "STORE", ",".join(wanted), ("+" if value else "-") + "FLAGS.SILENT", f"({' '.join(names)})"
                ),
                f"UID STORE {' '.join(names)}",
            )
        return len(wanted)

    def append(self, raw: bytes, folder: str | None = None, flags: Iterable[str] = ()) -> None:
        """Drop a message into ``folder`` (created when missing). imaplib sends line ends as CRLF."""
        import imaplib
        import time

        target = folder or self.folder
        names = list(flags)
        with self.mailbox(select=False) as mb:
            self._ensure(mb, target)
            _check(
                mb.client.append(
                    _quote(target),
                    f"({' '.join(names)})" if names else None,
                    imaplib.Time2Internaldate(time.time()),
                    raw,
                ),
                f"APPEND to {target!r}",
            )

    def test_connection(self) -> tuple[bool, str]:
        """Log in and select the watched folder (what the UI's "Test" button reports)."""
        try:
            with self.mailbox() as mb:
                count = len(mb.uids("ALL", charset=None))
                idle = "IDLE" in mailbox_capabilities(mb)
            return (
                True,
                (
                    f"Logged in to {self.where} as {self.user!r}; folder {self.folder!r} has {count} message(s); "
                    f"IDLE {'supported' if idle else 'not supported'}"
                ),
            )
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            return False, str(exc)


def _quote(folder: str) -> bytes:
    from imap_tools.utils import encode_folder

    return encode_folder(folder)  # modified UTF-7, quoted


def _logout(mb: BaseMailBox) -> None:
    try:
        mb.logout()
    except Exception:  # noqa: BLE001 - the session is over either way
        close_socket(mb)
