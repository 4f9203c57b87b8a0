"""E-mail delivery on the SMTP provider's ``SmtpHook``, sent at most once.

    on_failure_callback=EmailNotifier(
        to=["oncall@example.com"],
        subject="{{ dag.dag_id }} failed",
        text="{{ ti.task_id }} failed in {{ run_id }}",
        dedup_key="{{ run_id }}:failed",
    )

Connection: the SMTP provider's type ``smtp`` (``smtp_default``): host, port, login and password (the
hook logs in only when both are set), extra ``from_email`` (the sender; required), ``disable_ssl``,
``disable_tls``, ``timeout``, ``retry_limit``. Port 465 (implicit TLS): ``disable_tls: true``; port 587
(STARTTLS): ``disable_ssl: true``; a plain relay: both. Give the flags as JSON booleans: the hook reads
them with ``bool(...)``, so ``?disable_tls=false`` in a URI (a string) would turn STARTTLS *off*: such
a string is refused here (the send fails, naming the flag).

The hook sends the body as one ``text/html`` part (it has no plain-text alternative), so ``text`` goes
out HTML-escaped with its line breaks kept, or ``html`` as given. Subject and body are redacted
(:func:`devops_automation.ci_logs.redact`) before they leave the process. Each message carries a
``Message-ID`` (returned, and kept as the notification's ``message_ref``) and ``Auto-Submitted:
auto-generated`` (RFC 3834: no vacation auto-replies). With a ``dedup_key`` it is sent once however
often the task runs (:func:`devops_automation.notifiers.send_once`); a send that fails (server
unreachable, refused, no connection) is recorded and sent by a later call.

The hook retries ``sendmail`` itself (``retry_limit``, default 5, at once) and ignores a partial
refusal (some recipients refused, others accepted): such a message counts as sent.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from devops_automation.notifiers import RESULTS_CONN_ID, send_once

if TYPE_CHECKING:
    from airflow.sdk import Context

SMTP_CONN_ID = "smtp_default"
#: ``notifications.target`` is a VARCHAR(255): a longer recipient list is recorded shortened
TARGET_MAX = 255
_SEPARATORS = re.compile(r"[,;]")
_ADDRESS = re.compile(r"[^@\s,;<>\"]+@[^@\s,;<>\"]+")


def addresses(to: str | Iterable[str]) -> list[str]:
    """The recipients of ``to`` (one string, comma/semicolon separated, or a list of such strings),
    stripped, without duplicates (case-insensitive), in their order; a malformed one is a ValueError."""
    items = [to] if isinstance(to, str) else list(to)
    out: list[str] = []
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"e-mail recipients must be strings, got {item!r}")
        for part in _SEPARATORS.split(item):
            address = part.strip()
            if not address:
                continue
            if not _ADDRESS.fullmatch(address):
                raise ValueError(f"not an e-mail address: {address!r}")
            if address.lower() not in seen:
                seen.add(address.lower())
                out.append(address)
    return out


def text_to_html(text: str) -> str:
    """Plain text as the HTML body the hook sends: escaped, line breaks and spacing kept."""
    return f'<html><body><div style="white-space: pre-wrap">{html_lib.escape(text)}</div></body></html>'


def target_of(recipients: Sequence[str], limit: int = TARGET_MAX) -> str:
    """The recipients as the notification's target: ``"a@x, b@y"``, or the first ones that fit in
    ``limit`` characters and ``" (+N more)"``."""
    full = ", ".join(recipients)
    if len(full) <= limit:
        return full
    for n in range(len(recipients) - 1, 0, -1):
        short = f"{', '.join(recipients[:n])} (+{len(recipients) - n} more)"
        if len(short) <= limit:
            return short
    return f"{recipients[0][: limit - 20]}… (+{len(recipients) - 1} more)"


def check_tls_flags(conn_id: str, extra: dict[str, Any]) -> None:
    """Refuse ``disable_ssl``/``disable_tls`` given as a string that means false ("false", "0", "no"):
    the hook reads them with ``bool()``, so such a value would turn TLS *off* (and send the password in
    clear text) while saying the opposite. This happens with URI connections (``?disable_tls=false``)."""
    for flag in ("disable_ssl", "disable_tls"):
        value = extra.get(flag)
        if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off"):
            raise ValueError(
                f"connection {conn_id!r}: extra {flag} is the string {value!r}, which the SMTP hook reads as "
                "true (TLS off); give a JSON boolean (false), or leave the key out"
            )


def _msgid_domain(from_email: str | None) -> str:
    from email.utils import parseaddr

    domain = parseaddr(from_email or "")[1].rpartition("@")[2]
    return domain or "localhost"  # never the FQDN lookup make_msgid would do without a domain


def send_email_once(
    subject: str,
    text: str,
    *,
    dedup_key: str | None,
    to: Sequence[str],
    smtp_conn_id: str = SMTP_CONN_ID,
    html: str | None = None,
    results_conn_id: str = RESULTS_CONN_ID,
) -> str | None:
    """Send an e-mail unless ``dedup_key`` was already delivered; returns its Message-ID, or None if skipped.

    ``text`` is the plain-text body (sent as escaped HTML), ``html`` replaces it when given. ``to``: the
    addresses (a comma-separated string works too); they are the notification's target (shortened to
    fit the column). A send that fails is recorded as failed (and raised), so a later call sends it again.
    """
    recipients = addresses(to)
    if not recipients:
        raise ValueError("no e-mail recipients: pass to=[address, ...]")
    from devops_automation.ci_logs.redact import redact_text

    one_line_subject = " ".join(redact_text(subject).split())  # a line break would start another header
    body = redact_text(html) if html is not None else text_to_html(redact_text(text))

    def send() -> str:
        from email.utils import make_msgid

        from airflow.providers.smtp.hooks.smtp import SmtpHook

        # a missing connection is named here (the hook only says "not found"); string TLS flags are refused
        check_tls_flags(smtp_conn_id, SmtpHook.get_connection(smtp_conn_id).extra_dejson or {})
        with SmtpHook(smtp_conn_id=smtp_conn_id) as hook:
            message_id = make_msgid(domain=_msgid_domain(hook.from_email))
            hook.send_email_smtp(
                to=recipients,
                subject=one_line_subject,
                html_content=body,
                mime_charset="utf-8",
                custom_headers={"Message-ID": message_id, "Auto-Submitted": "auto-generated"},
            )
        return message_id

    return send_once("email", target_of(recipients), dedup_key, send, results_conn_id=results_conn_id)


class EmailNotifier(BaseNotifier):
    """Send an e-mail from a callback (sync or async), optionally only once per ``dedup_key``."""

    template_fields: Sequence[str] = ("to", "subject", "text", "html", "smtp_conn_id", "dedup_key")

    def __init__(
        self,
        *,
        to: str | Sequence[str],
        subject: str,
        text: str = "",
        html: str | None = None,
        smtp_conn_id: str = SMTP_CONN_ID,
        dedup_key: str | None = None,
        results_conn_id: str = RESULTS_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.to = to
        self.subject = subject
        self.text = text
        self.html = html
        self.smtp_conn_id = smtp_conn_id
        self.dedup_key = dedup_key
        self.results_conn_id = results_conn_id

    def notify(self, context: Context) -> None:
        send_email_once(
            self.subject,
            self.text,
            dedup_key=self.dedup_key,
            to=addresses(self.to),
            smtp_conn_id=self.smtp_conn_id,
            html=self.html,
            results_conn_id=self.results_conn_id,
        )

    async def async_notify(self, context: Context) -> None:
        from asgiref.sync import sync_to_async

        await sync_to_async(self.notify)(context)


send_email_notification = EmailNotifier
