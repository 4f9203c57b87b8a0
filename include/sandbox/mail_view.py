"""``/_sandbox/mail``: the messages the demo's SMTP server received, readable from the sandbox's docs page.

The demo's SMTP server (aiosmtpd, ``include/sandbox/servers.py`` ``SmtpServer``) keeps every message in a
Maildir; the demo starts it first and passes that folder to the sandbox as ``SANDBOX_MAILDIR``. Without
it the routes answer 404 naming the variable. Read-only: nothing here sends or deletes mail.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import os
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["mail (the demo's SMTP server)"])


def _maildir() -> mailbox.Maildir:
    folder = os.environ.get("SANDBOX_MAILDIR")
    if not folder or not Path(folder, "new").is_dir():
        raise HTTPException(404, "no SMTP Maildir: the sandbox was started without SANDBOX_MAILDIR (make demo sets it)")
    return mailbox.Maildir(folder, factory=None, create=False)


def _parse(box: mailbox.Maildir, key: str) -> email.message.EmailMessage:
    try:
        raw = box.get_bytes(key)
    except KeyError:
        raise HTTPException(404, f"no message {key!r}") from None
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def _summary(key: str, msg: email.message.EmailMessage) -> dict[str, Any]:
    parts = [p.get_content_type() for p in msg.walk() if not p.is_multipart()]
    return {
        "id": key,
        "from": str(msg["From"] or ""),
        "to": str(msg["To"] or ""),
        "subject": str(msg["Subject"] or ""),
        "date": str(msg["Date"] or ""),
        "parts": parts,
    }


@router.get("/messages")
def list_messages() -> list[dict[str, Any]]:
    """Every message received, oldest first."""
    box = _maildir()
    keys = sorted(box.keys())  # a Maildir key starts with its delivery time
    return [_summary(k, _parse(box, k)) for k in keys]


@router.get("/messages/{key}")
def get_message(key: str) -> dict[str, Any]:
    """One message: its headers and its plain-text body."""
    msg = _parse(_maildir(), key)
    text = msg.get_body(preferencelist=("plain",))
    return {**_summary(key, msg), "text": text.get_content() if text is not None else None}


@router.get("/messages/{key}/html", response_class=HTMLResponse)
def get_message_html(key: str) -> HTMLResponse:
    """One message's HTML body as a mail client shows it (``cid:`` images inlined as data URLs)."""
    import base64

    msg = _parse(_maildir(), key)
    body = msg.get_body(preferencelist=("html",))
    if body is None:
        raise HTTPException(404, f"message {key!r} has no HTML body")
    html = body.get_content()
    for part in msg.walk():
        cid = part["Content-ID"]
        if cid and not part.is_multipart():
            data = base64.b64encode(part.get_payload(decode=True) or b"").decode()
            html = html.replace(f"cid:{str(cid).strip('<>')}", f"data:{part.get_content_type()};base64,{data}")
    return HTMLResponse(
        html, headers={"Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'"}
    )
