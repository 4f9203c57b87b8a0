"""Notifiers: how a message leaves the process, each channel sent at most once per dedup key.

* :func:`send_once` is the one "send once" mechanism every channel uses (Telegram, Slack, e-mail):
  claim the dedup key in the results store, send, mark it sent; a failed send is recorded and raised,
  so a later run (or retry) sends it again, and a message that went out is never sent twice.
* :mod:`~devops_automation.notifiers.telegram`, :mod:`~devops_automation.notifiers.slack` and
  :mod:`~devops_automation.notifiers.email` (SMTP) hold the channel functions and their
  :class:`~airflow.sdk.BaseNotifier` classes (usable as task or DAG callbacks); :func:`alert` sends one
  alert to Telegram and, when its connection exists, Slack.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)

RESULTS_CONN_ID = "devops_results_db"


#: Files whose bytes are text and are redacted before they leave (by name; images are not).
TEXT_FILES = (".html", ".htm", ".md", ".txt", ".json", ".csv", ".log")


def redacted(value: T) -> T:
    """``value`` with every secret the failure-log engine knows replaced (:func:`ci_logs.redact.redact_text`):
    a string, or the strings inside lists and dicts (Block Kit). What leaves the process is redacted first,
    on every channel, whoever built the text."""
    from devops_automation.ci_logs.redact import redact_text

    if isinstance(value, str):
        return redact_text(value)  # type: ignore[return-value]
    if isinstance(value, list):
        return [redacted(v) for v in value]  # type: ignore[return-value]
    if isinstance(value, dict):
        return {k: redacted(v) for k, v in value.items()}  # type: ignore[return-value]
    return value


def redacted_file(name: str, content: bytes) -> bytes:
    """A file's bytes with secrets redacted when it is text (:data:`TEXT_FILES`, UTF-8); others as given."""
    if not name.lower().endswith(TEXT_FILES):
        return content
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return content
    return redacted(text).encode("utf-8")


def send_once(
    channel: str,
    target: str | None,
    dedup_key: str | None,
    send: Callable[[], T],
    *,
    message_ref: Callable[[T], str | None] = lambda result: None if result is None else str(result),
    results_conn_id: str = RESULTS_CONN_ID,
) -> T | None:
    """Run ``send()`` unless ``dedup_key`` was delivered before; returns its result, or None if skipped.

    Without a ``dedup_key`` the message is simply sent. With one, the key is claimed in the results
    store first (``channel`` and ``target`` are recorded with it), and afterwards marked sent with
    ``message_ref(result)`` (a message id, a thread ts...). A send that raises is recorded as failed
    and re-raised: the next claim of the same key succeeds, so a later run delivers what is owed.
    """
    if dedup_key is None:
        return send()
    from devops_automation.store import ResultsStore

    store = ResultsStore.from_connection(results_conn_id)
    if not store.claim_notification(dedup_key, channel, target):
        log.info("%s message %s was already sent; not sending it again", channel, dedup_key)
        return None
    try:
        result = send()
    except Exception as exc:
        store.notification_failed(dedup_key, f"{type(exc).__name__}: {exc}")
        raise
    store.notification_sent(dedup_key, message_ref=message_ref(result))
    return result


def sent_message_ref(dedup_key: str, *, results_conn_id: str = RESULTS_CONN_ID) -> str | None:
    """The ``message_ref`` recorded when ``dedup_key`` was sent (a Slack ts, Telegram message ids...), or
    None if it was not sent (yet). A re-run whose message went out earlier uses it, e.g. to upload files
    into the thread of a Slack message that :func:`send_once` skipped."""
    import sqlalchemy as sa

    from devops_automation.store import ResultsStore, schema

    t = schema.notifications
    store = ResultsStore.from_connection(results_conn_id)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t.c.status, t.c.message_ref).where(t.c.dedup_key == dedup_key)).first()
    return row.message_ref if row is not None and row.status == "sent" else None


def alert(text: str, key: str, *, telegram_conn_id: str | None, slack_conn_id: str | None, logger: Any = log) -> None:
    """One HTML alert to Telegram, and to Slack (as mrkdwn) when that connection exists; each channel
    at most once for ``key``. A channel that fails is logged, not fatal: it is recorded as failed in
    the results store and sent by a later run."""
    from devops_automation.hooks import connection_exists
    from devops_automation.messaging import html_to_mrkdwn
    from devops_automation.notifiers.slack import post_slack_once
    from devops_automation.notifiers.telegram import send_telegram_once

    if telegram_conn_id:
        try:
            send_telegram_once(text, dedup_key=f"{key}:telegram", telegram_conn_id=telegram_conn_id)
        except Exception as exc:  # noqa: BLE001 - recorded as failed in the store, retried next time
            logger.error("Telegram alert %s not sent: %s", key, exc)
    if slack_conn_id and connection_exists(slack_conn_id):
        try:
            post_slack_once(html_to_mrkdwn(text), dedup_key=f"{key}:slack", slack_conn_id=slack_conn_id)
        except Exception as exc:  # noqa: BLE001
            logger.error("Slack alert %s not sent: %s", key, exc)


@dataclass(frozen=True)
class Outgoing:
    """One message for :func:`deliver`: ``text`` in the channel's markup (Slack mrkdwn, Telegram HTML,
    plain text for e-mail); ``subject`` and ``recipients`` for e-mail (``target`` is their list)."""

    channel: str  # slack | telegram | email
    target: str
    dedup_key: str
    text: str
    subject: str = ""
    recipients: tuple[str, ...] = ()


def deliver(
    messages: Iterable[Outgoing],
    *,
    slack_conn_id: str = "slack_default",
    telegram_conn_id: str = "telegram_default",
    smtp_conn_id: str = "smtp_default",
    logger: Any = log,
) -> int:
    """Send each message once per dedup key on its channel; returns how many went out now (those sent
    by an earlier run are skipped). A message that fails is recorded as failed (a later run sends it)
    and the others are still sent; then a ``RuntimeError`` names the ones not sent."""
    from devops_automation.notifiers.email import send_email_once
    from devops_automation.notifiers.slack import post_slack_once
    from devops_automation.notifiers.telegram import send_telegram_once

    sent, failed = 0, []
    for m in messages:
        try:
            if m.channel == "slack":
                result = post_slack_once(m.text, dedup_key=m.dedup_key, slack_conn_id=slack_conn_id, channel=m.target)
            elif m.channel == "telegram":
                result = send_telegram_once(
                    m.text, dedup_key=m.dedup_key, telegram_conn_id=telegram_conn_id, chat_id=m.target
                )
            elif m.channel == "email":
                subject = m.subject or m.text.partition("\n")[0]
                result = send_email_once(
                    subject, m.text, dedup_key=m.dedup_key, to=m.recipients, smtp_conn_id=smtp_conn_id
                )
            else:
                raise ValueError(f"unknown channel {m.channel!r} (slack, telegram or email)")
        except Exception:  # recorded as failed by send_once; a later run sends it
            logger.exception("message %s to %s %s not sent", m.dedup_key, m.channel, m.target)
            failed.append(m.dedup_key)
            continue
        sent += result is not None
    if failed:
        raise RuntimeError(f"{len(failed)} message(s) not sent (a later run sends them): {', '.join(failed[:5])}")
    return sent
