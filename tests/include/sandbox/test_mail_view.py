"""/_sandbox/mail: what the demo's SMTP server received (its Maildir), listed and shown from the sandbox."""

from __future__ import annotations

import mailbox
from email.message import EmailMessage
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from include.sandbox.app import create_app


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app(systems=["slack"]))


def _report_mail() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "reports@example.test"
    msg["To"] = "devops-team@example.test"
    msg["Subject"] = "Weekly engineering report 2026-W48"
    msg["Date"] = "Mon, 30 Nov 2026 00:05:00 +0000"
    msg.set_content("Runs: 445")
    msg.add_alternative('<p>Runs: <b>445</b></p><img src="cid:chart1@report">', subtype="html")
    msg.get_payload()[1].add_related(b"\x89PNG-bytes", maintype="image", subtype="png", cid="<chart1@report>")
    return msg


def test_lists_and_shows_the_messages_of_the_maildir(client: TestClient, tmp_path: Path, monkeypatch) -> None:
    box = mailbox.Maildir(tmp_path / "maildir", create=True)
    key = box.add(_report_mail())
    monkeypatch.setenv("SANDBOX_MAILDIR", str(tmp_path / "maildir"))

    (listed,) = client.get("/_sandbox/mail/messages").json()
    assert listed["id"] == key
    assert listed["to"] == "devops-team@example.test"
    assert listed["subject"] == "Weekly engineering report 2026-W48"
    assert listed["parts"] == ["text/plain", "text/html", "image/png"]

    one = client.get(f"/_sandbox/mail/messages/{key}").json()
    assert one["text"].strip() == "Runs: 445"
    html = client.get(f"/_sandbox/mail/messages/{key}/html")
    assert html.status_code == 200 and "<b>445</b>" in html.text
    assert "cid:" not in html.text and "data:image/png;base64," in html.text  # the chart shows
    assert client.get("/_sandbox/mail/messages/nope").status_code == 404


def test_without_a_maildir_the_routes_say_what_is_missing(client: TestClient, monkeypatch) -> None:
    monkeypatch.delenv("SANDBOX_MAILDIR", raising=False)
    got = client.get("/_sandbox/mail/messages")
    assert got.status_code == 404 and "SANDBOX_MAILDIR" in got.json()["detail"]
