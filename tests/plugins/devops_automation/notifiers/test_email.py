"""send_email_once / EmailNotifier through the SMTP provider's SmtpHook against a real SMTP server
(aiosmtpd, every message kept in a Maildir), with the results store on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from airflow.sdk import BaseNotifier

from devops_automation.notifiers.email import (
    EmailNotifier,
    addresses,
    send_email_notification,
    send_email_once,
    target_of,
)
from devops_automation.store import ResultsStore, schema
from include.sandbox.client import free_port

TO = ["oncall@example.test", "lead@example.test"]


@pytest.fixture
def store(smtp, results_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ResultsStore]:
    """``smtp_default`` names the SMTP server; ``devops_results_db`` a fresh database (SQLite or PostgreSQL)."""
    url = sa.make_url(results_url)
    if url.get_backend_name() == "sqlite":
        conn = {"conn_type": "sqlite", "host": url.database}
    else:
        conn = {
            "conn_type": "postgres",
            "host": url.host,
            "port": url.port,
            "login": url.username,
            "password": url.password or "",
            "schema": url.database,
        }
    monkeypatch.setenv("AIRFLOW_CONN_DEVOPS_RESULTS_DB", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp.airflow_conn())
    s = ResultsStore(results_url)
    yield s
    s.dispose()


def notifications(store: ResultsStore) -> list[dict[str, Any]]:
    t = schema.notifications
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(t).order_by(t.c.id))]


def body(msg: Any) -> str:
    part = msg.get_body(("html",))
    assert part is not None and part.get_content_type() == "text/html"
    return part.get_content()


def test_an_email_reaches_the_server_with_subject_recipients_and_message_id(smtp, store) -> None:
    ref = send_email_once("Build failed", "line 1\n  <b>x</b> & y", dedup_key=None, to=TO)
    (msg,) = smtp.messages()
    assert msg["Subject"] == "Build failed"
    assert msg["To"] == "oncall@example.test, lead@example.test"
    assert msg["X-RcptTo"] == "oncall@example.test, lead@example.test"  # the envelope: both got it
    assert msg["From"] == smtp.from_email == msg["X-MailFrom"]
    assert msg["Message-ID"] == ref
    assert ref.startswith("<") and ref.endswith("@example.test>")  # the sender's domain, no FQDN lookup
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Date"]
    # plain text goes out escaped, line breaks and spacing kept
    assert '<div style="white-space: pre-wrap">line 1\n  &lt;b&gt;x&lt;/b&gt; &amp; y</div>' in body(msg)
    assert notifications(store) == []  # no key: nothing recorded


def test_non_ascii_subject_and_body_arrive_intact(smtp, store) -> None:
    send_email_once("🔴 shop: coverage 41 % (Grenze < 50)", "Größe — ✓", dedup_key=None, to=["a@example.test"])
    (msg,) = smtp.messages()
    assert msg["Subject"] == "🔴 shop: coverage 41 % (Grenze < 50)"
    assert "Größe — ✓" in body(msg)


def test_the_same_key_is_sent_once_and_recorded_with_its_message_id(smtp, store) -> None:
    ref = send_email_once("CI red", "main is red", dedup_key="mail-1", to=TO)
    assert send_email_once("CI red", "main is red", dedup_key="mail-1", to=TO) is None
    (msg,) = smtp.messages()
    assert msg["Message-ID"] == ref
    (row,) = notifications(store)
    assert (row["dedup_key"], row["channel"], row["target"], row["status"], row["message_ref"], row["error"]) == (
        "mail-1",
        "email",
        "oncall@example.test, lead@example.test",
        "sent",
        ref,
        None,
    )


def test_a_failed_send_is_recorded_and_a_later_call_sends_it(smtp, store, monkeypatch) -> None:
    down = json.loads(smtp.airflow_conn())
    down["port"] = free_port()  # nothing listens there
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(down))
    with pytest.raises(ConnectionRefusedError):
        send_email_once("CI red", "main is red", dedup_key="mail-2", to=TO)
    (pending,) = store.pending_notifications("email")
    assert (pending["dedup_key"], pending["status"], pending["target"]) == (
        "mail-2",
        "failed",
        "oncall@example.test, lead@example.test",
    )
    assert pending["error"].startswith("ConnectionRefusedError")
    assert smtp.messages() == []
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp.airflow_conn())
    ref = send_email_once("CI red", "main is red", dedup_key="mail-2", to=TO)
    (msg,) = smtp.messages()
    assert (msg["Message-ID"], msg["Subject"]) == (ref, "CI red")
    assert store.pending_notifications() == []
    (row,) = notifications(store)
    assert (row["status"], row["message_ref"], row["attempts"]) == ("sent", ref, 2)
    assert send_email_once("CI red", "main is red", dedup_key="mail-2", to=TO) is None
    assert len(smtp.messages()) == 1


def test_no_smtp_connection_is_recorded_as_failed_naming_it(smtp, store, monkeypatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT")
    with pytest.raises(Exception, match="smtp_default"):
        send_email_once("CI red", "main is red", dedup_key="mail-3", to=TO)
    (pending,) = store.pending_notifications("email")
    assert pending["status"] == "failed" and "smtp_default" in pending["error"]
    assert smtp.messages() == []


def test_a_uri_connection_saying_disable_tls_false_is_refused_not_sent_in_clear(smtp, store, monkeypatch) -> None:
    # the hook reads bool("false") == True: STARTTLS would silently be off, the password sent in clear text
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        f"smtp://u:secret@127.0.0.1:{smtp.port}/?from_email=a%40example.test&disable_ssl=true&disable_tls=false",
    )
    with pytest.raises(ValueError, match=r"extra disable_tls is the string 'false'.*JSON boolean"):
        send_email_once("CI red", "main is red", dedup_key="mail-tls", to=TO)
    (pending,) = store.pending_notifications("email")
    assert pending["status"] == "failed" and "disable_tls" in pending["error"]
    assert smtp.messages() == []


def test_secrets_are_redacted_from_subject_and_body(smtp, store) -> None:
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    send_email_once(
        f"deploy failed with {token}",
        f"curl -H 'Authorization: Bearer {token}' https://deploy:hunter2secret@ci.example.test/x",
        dedup_key="mail-4",
        to=TO,
    )
    (msg,) = smtp.messages()
    raw = msg.as_string()
    assert token not in raw and "hunter2secret" not in raw
    assert "[REDACTED:" in msg["Subject"]
    assert msg["Subject"].startswith("deploy failed with ")
    assert body(msg).count("[REDACTED:") == 2
    assert "ci.example.test/x" in body(msg)  # only the secrets go


def test_html_is_sent_as_given_and_redacted_too(smtp, store) -> None:
    token = "glpat-" + "x7Kq2Lm9Np4Rs8Tv1Wy3"
    send_email_once("report", "ignored", dedup_key=None, to=TO, html=f"<h1>Week 48</h1><p>token {token}</p>")
    (msg,) = smtp.messages()
    assert body(msg).startswith("<h1>Week 48</h1><p>token [REDACTED:")
    assert token not in msg.as_string()


def test_a_line_break_in_the_subject_cannot_add_a_header(smtp, store) -> None:
    send_email_once("alert\r\nBcc: attacker@evil.test", "x", dedup_key=None, to=["a@example.test"])
    (msg,) = smtp.messages()
    assert msg["Subject"] == "alert Bcc: attacker@evil.test"
    assert msg["Bcc"] is None
    assert msg["X-RcptTo"] == "a@example.test"


def test_recipients_are_parsed_and_bad_ones_refused_before_anything_is_claimed(smtp, store) -> None:
    assert addresses("a@x.test; b@y.test, A@X.test") == ["a@x.test", "b@y.test"]
    assert addresses(["a@x.test, b@y.test", " c@z.test "]) == ["a@x.test", "b@y.test", "c@z.test"]
    with pytest.raises(ValueError, match="not an e-mail address: 'oncall'"):
        send_email_once("s", "t", dedup_key="mail-5", to=["oncall"])
    with pytest.raises(ValueError, match="no e-mail recipients"):
        send_email_once("s", "t", dedup_key="mail-6", to=[" , "])
    assert notifications(store) == []
    assert smtp.messages() == []


def test_a_long_recipient_list_is_recorded_shortened_and_every_address_gets_it(smtp, store) -> None:
    many = [f"member-{i:02d}@platform-team.example.test" for i in range(12)]
    assert len(", ".join(many)) > 255
    send_email_once("s", "t", dedup_key="mail-7", to=many)
    (msg,) = smtp.messages()
    assert msg["X-RcptTo"] == ", ".join(many)
    (row,) = notifications(store)
    assert row["target"] == target_of(many)
    assert len(row["target"]) <= 255 and row["target"].endswith(" more)")
    assert row["target"].startswith("member-00@platform-team.example.test, member-01@")


def test_notifier_is_a_base_notifier_with_templated_fields() -> None:
    notifier = EmailNotifier(to="a@example.test", subject="s")
    assert isinstance(notifier, BaseNotifier)
    assert send_email_notification is EmailNotifier
    assert set(EmailNotifier.template_fields) == {"to", "subject", "text", "html", "smtp_conn_id", "dedup_key"}
    assert (notifier.text, notifier.html, notifier.smtp_conn_id, notifier.dedup_key, notifier.results_conn_id) == (
        "",
        None,
        "smtp_default",
        None,
        "devops_results_db",
    )


def test_notifier_renders_its_template_and_dedups(smtp, store) -> None:
    notifier = EmailNotifier(
        to=["{{ params.oncall }}"],
        subject="{{ dag_id }} failed",
        text="run {{ run_id }} failed",
        dedup_key="{{ run_id }}:failed",
    )
    context = {"dag_id": "demo_dag", "run_id": "manual__1", "params": {"oncall": "oncall@example.test"}}
    notifier(context)
    notifier(context)  # a second callback for the same run: no second e-mail
    (msg,) = smtp.messages()
    assert (msg["Subject"], msg["X-RcptTo"]) == ("demo_dag failed", "oncall@example.test")
    assert "run manual__1 failed" in body(msg)
    (row,) = notifications(store)
    assert (row["dedup_key"], row["channel"], row["target"], row["status"], row["message_ref"]) == (
        "manual__1:failed",
        "email",
        "oncall@example.test",
        "sent",
        msg["Message-ID"],
    )


def test_notifier_awaited_in_the_triggerer(smtp, store) -> None:
    async def fire() -> None:
        await EmailNotifier(
            to="a@example.test", subject="async {{ run_id }}", dedup_key="async-{{ run_id }}", context={"run_id": "r2"}
        )

    asyncio.run(fire())
    asyncio.run(fire())
    assert [m["Subject"] for m in smtp.messages()] == ["async r2"]
