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

**Reports** (:func:`send_report_email_once`): HTML with inline images and a plain-text alternative. The
hook's ``send_email_smtp`` cannot send that (one ``text/html`` part, files as attachments), so the
message is built here (:func:`build_report_message`)::

    multipart/alternative
    ├── text/plain                      (the text; shown by clients without HTML)
    └── multipart/related
        ├── text/html                   (<img src="cid:chart.png">)
        └── image/png ...               (Content-ID: <chart.png>, inline, filename="chart.png")

and sent through the hook's SMTP client (the hook opens, secures and logs in the connection as for
every e-mail), with the hook's ``retry_limit``.
"""

from __future__ import annotations

import html as html_lib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from devops_automation.notifiers import RESULTS_CONN_ID, send_once

if TYPE_CHECKING:
    from email.message import EmailMessage

    from airflow.sdk import Context

log = logging.getLogger(__name__)

SMTP_CONN_ID = "smtp_default"
#: ``notifications.target`` is a VARCHAR(255): a longer recipient list is recorded shortened
TARGET_MAX = 255
_SEPARATORS = re.compile(r"[,;]")
_ADDRESS = re.compile(r"[^@\s,;<>\"]+@[^@\s,;<>\"]+")
#: an inline image's name: its ``Content-ID`` (``<name>``), ``cid:name`` in the HTML and its file name
_IMAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_CID_REF = re.compile(r"""cid:([^"'\s)>]+)""", re.IGNORECASE)
_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg"), (b"GIF87a", "gif"), (b"GIF89a", "gif"))


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


def cid_references(html: str) -> list[str]:
    """The names the HTML shows as inline images (``cid:name``, RFC 2392: percent-decoded), in order,
    without duplicates."""
    from urllib.parse import unquote

    return list(dict.fromkeys(unquote(m.group(1)) for m in _CID_REF.finditer(html)))


def _image_subtype(name: str, data: bytes) -> str:
    """``png``/``jpeg``/``gif``, from the bytes' signature (e-mail clients show no other type reliably)."""
    for magic, subtype in _IMAGE_MAGIC:
        if data.startswith(magic):
            return subtype
    raise ValueError(f"inline image {name!r} is not a PNG, JPEG or GIF (by its bytes)")


def build_report_message(
    subject: str,
    *,
    html: str,
    text: str,
    images: Mapping[str, bytes],
    from_email: str,
    to: Sequence[str],
    message_id: str,
    date: str | None = None,
) -> EmailMessage:
    """The report e-mail (see the module doc for its structure), as given: no redaction here.

    ``images`` maps each name (``cid:name`` in ``html``) to its bytes; every one becomes an inline part
    (``Content-ID: <name>``, ``Content-Disposition: inline; filename=name``) in the order given. A
    ``cid:`` in the HTML without its image, a name that cannot be a Content-ID or file name
    (``[A-Za-z0-9][A-Za-z0-9._+-]*``), or bytes that are not a PNG/JPEG/GIF is a ValueError. Text parts
    are quoted-printable, images base64: the message is 7-bit (any server relays it). ``date``: the
    ``Date`` header (RFC 5322), default the current time.
    """
    from email.message import EmailMessage
    from email.policy import SMTP
    from email.utils import formatdate

    if not subject.strip():
        raise ValueError("the report e-mail needs a subject")
    for name, data in images.items():
        if not isinstance(name, str) or not _IMAGE_NAME.fullmatch(name):
            raise ValueError(f"inline image name {name!r} must match {_IMAGE_NAME.pattern} (it is its Content-ID)")
        if not isinstance(data, bytes | bytearray) or not data:
            raise ValueError(f"inline image {name!r} has no bytes")
    missing = [name for name in cid_references(html) if name not in images]
    if missing:
        raise ValueError(
            f"the HTML shows cid: image(s) {', '.join(map(repr, missing))} that are not among the images "
            f"({', '.join(images) or 'none'})"
        )
    msg = EmailMessage(policy=SMTP)  # CRLF line ends, as sent
    msg["Subject"] = subject
    msg["From"] = from_email
    msg["To"] = ", ".join(to)
    msg["Date"] = date or formatdate(usegmt=True)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    html_part = msg.get_payload()[1]
    for name, data in images.items():
        html_part.add_related(
            bytes(data),
            maintype="image",
            subtype=_image_subtype(name, bytes(data)),
            cid=f"<{name}>",
            disposition="inline",
            filename=name,
        )
    return msg


def send_report_email_once(
    subject: str,
    *,
    html: str,
    text: str,
    images: Mapping[str, bytes],
    dedup_key: str | None,
    to: str | Sequence[str],
    smtp_conn_id: str = SMTP_CONN_ID,
    results_conn_id: str = RESULTS_CONN_ID,
) -> str | None:
    """Send a report (HTML with inline images, plain-text alternative) unless ``dedup_key`` was already
    delivered; returns its Message-ID, or None if skipped.

    Subject, text and HTML are redacted first; the recipients, the ``cid:`` references and the images are
    checked before anything is claimed (a ValueError, nothing recorded). Connection handling as
    :func:`send_email_once` (missing connection named, string TLS flags refused, ``from_email``
    required); a send that fails is recorded as failed (and raised), so a later call sends it again. The
    message's size is logged (``report e-mail ...: N bytes``).
    """
    recipients = addresses(to)
    if not recipients:
        raise ValueError("no e-mail recipients: pass to=[address, ...]")
    from devops_automation.ci_logs.redact import redact_text

    one_line_subject = " ".join(redact_text(subject).split())
    body_html, body_text = redact_text(html), redact_text(text)
    # checked now (placeholder sender and id), so a bad report fails before its key is claimed
    build_report_message(
        one_line_subject,
        html=body_html,
        text=body_text,
        images=images,
        from_email="check@localhost",
        to=recipients,
        message_id="<check@localhost>",
        date="Thu, 01 Jan 1970 00:00:00 +0000",
    )

    def send() -> str:
        from email.utils import make_msgid

        from airflow.providers.smtp.hooks.smtp import SmtpHook

        check_tls_flags(smtp_conn_id, SmtpHook.get_connection(smtp_conn_id).extra_dejson or {})
        with SmtpHook(smtp_conn_id=smtp_conn_id) as hook:
            from_email = hook.from_email
            if not from_email:
                raise ValueError(f"connection {smtp_conn_id!r} has no extra from_email (the sender)")
            message_id = make_msgid(domain=_msgid_domain(from_email))
            message = build_report_message(
                one_line_subject,
                html=body_html,
                text=body_text,
                images=images,
                from_email=from_email,
                to=recipients,
                message_id=message_id,
            )
            payload = message.as_bytes()
            log.info(
                "report e-mail %s: %d bytes (%d inline images) to %d recipient(s)",
                message_id,
                len(payload),
                len(images),
                len(recipients),
            )
            # the hook's send_email_smtp builds its own message (one text/html part): its connected client
            # sends this one, retried as the hook does (retry_limit)
            client = hook._smtp_client
            if client is None:
                raise RuntimeError(f"SMTP connection {smtp_conn_id!r} is not open")
            for attempt in range(hook.smtp_retry_limit + 1):
                try:
                    client.sendmail(from_email, recipients, payload)
                    break
                except Exception:
                    if attempt == hook.smtp_retry_limit:
                        raise
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
