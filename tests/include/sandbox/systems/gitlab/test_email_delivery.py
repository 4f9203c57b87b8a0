"""``POST /_sandbox/gitlab/emails/deliver``: the pipeline e-mail APPENDed into a real Dovecot folder."""

from __future__ import annotations

import email
import imaplib
import re
import uuid
from collections.abc import Iterator
from email import policy
from typing import Any

import pytest

from devops_automation.workflows.ci_failure_triage.mail import parse_pipeline_mail

pytestmark = [pytest.mark.imap, pytest.mark.slow]


@pytest.fixture
def folder(dovecot_server: Any) -> Iterator[str]:
    """A folder name private to this test (not created yet); deleted afterwards."""
    name = f"deliver-{uuid.uuid4().hex[:8]}"
    yield name
    with imap(dovecot_server) as m:
        for candidate in (name, f"{name} spaced"):
            m.delete(f'"{candidate}"')


def imap(server: Any) -> imaplib.IMAP4:
    m = imaplib.IMAP4("127.0.0.1", server.port, timeout=10)
    m.login(server.user, server.password)
    return m


def target(server: Any, folder: str, **over: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": server.port,
        "user": server.user,
        "password": server.password,
        "folder": folder,
        **over,
    }


def messages(server: Any, folder: str) -> list[bytes]:
    with imap(server) as m:
        typ, _ = m.select(f'"{folder}"', readonly=True)
        assert typ == "OK", f"folder {folder!r} does not exist"
        _, data = m.uid("SEARCH", None, "ALL")
        out = []
        for uid in data[0].split():
            _, parts = m.uid("FETCH", uid, "(BODY.PEEK[])")
            out.append(next(p[1] for p in parts if isinstance(p, tuple)))
        return out


def exists(server: Any, folder: str) -> bool:
    with imap(server) as m:
        _, found = m.list('""', f'"{folder}"')
        return any(found)


def test_deliver_failure_mail_into_new_folder(sandbox: Any, dovecot_server: Any, folder: str) -> None:
    s = sandbox.control("gitlab", "GET", "/scenarios")["pytest"]
    assert not exists(dovecot_server, folder)
    out = sandbox.control(
        "gitlab",
        "POST",
        "/emails/deliver",
        json={"pipeline_id": s["pipeline_id"], "to": "oncall@example.test", "imap": target(dovecot_server, folder)},
    )
    assert exists(dovecot_server, folder)  # created on the way
    stored = messages(dovecot_server, folder)
    assert len(stored) == 1 and out["folder"] == folder and out["bytes"] == len(stored[0])
    mail = parse_pipeline_mail(stored[0], allowed_senders=["gitlab@gitlab.example.test"])
    assert (mail.project_id, mail.project_path, mail.pipeline_id) == (
        str(s["project_id"]),
        s["project_path"],
        str(s["pipeline_id"]),
    )
    assert mail.is_failure and mail.parsed_from == "headers" and mail.message_id == out["message_id"]
    assert [j["id"] for j in mail.failed_jobs] == [str(i) for i in s["failed_job_ids"]]
    # built exactly like /emails/pipeline (Message-ID, Date and the MIME boundary differ between two builds)
    built = email.message_from_string(
        sandbox.control(
            "gitlab", "POST", "/emails/pipeline", json={"pipeline_id": s["pipeline_id"], "to": "oncall@example.test"}
        )["eml"],
        policy=policy.default,
    )
    got = email.message_from_bytes(stored[0], policy=policy.default)
    same = [(k, str(v)) for k, v in built.items() if k not in ("Message-ID", "Date", "Content-Type")]
    assert [(k, str(v)) for k, v in got.items() if k not in ("Message-ID", "Date", "Content-Type")] == same and len(
        same
    ) > 10
    assert got.get_body(("plain",)).get_content() == built.get_body(("plain",)).get_content()


def test_deliver_into_existing_and_spaced_folders(sandbox: Any, dovecot_server: Any, folder: str) -> None:
    s = sandbox.control("gitlab", "GET", "/scenarios")["dbt"]
    spaced = f"{folder} spaced"
    for name, status in ((spaced, "fixed"), (spaced, "failed")):
        sandbox.control(
            "gitlab",
            "POST",
            "/emails/deliver",
            json={
                "pipeline_id": s["good_pipeline_id"] if status == "fixed" else s["pipeline_id"],
                "status": status,
                "host": "git.corp.test",
                "imap": target(dovecot_server, name),
            },
        )
    stored = [parse_pipeline_mail(raw, allowed_senders=["@git.corp.test"]) for raw in messages(dovecot_server, spaced)]
    assert [(m.status, m.pipeline_id) for m in stored] == [
        ("fixed", str(s["good_pipeline_id"])),
        ("failed", str(s["pipeline_id"])),
    ]


def test_imap_failures_are_502_without_the_password(sandbox: Any, dovecot_server: Any, folder: str) -> None:
    s = sandbox.control("gitlab", "GET", "/scenarios")["pytest"]
    with pytest.raises(RuntimeError, match=r"-> 502") as info:
        sandbox.control(
            "gitlab",
            "POST",
            "/emails/deliver",
            json={"pipeline_id": s["pipeline_id"], "imap": target(dovecot_server, folder, password="not-the-Pa55word")},
        )
    assert "not-the-Pa55word" not in str(info.value) and re.search(
        r"IMAP delivery to 127\.0\.0\.1:\d+", str(info.value)
    )
    assert not exists(dovecot_server, folder)
    with pytest.raises(RuntimeError, match=r"-> 400"):
        sandbox.control(
            "gitlab",
            "POST",
            "/emails/deliver",
            json={"pipeline_id": s["pipeline_id"], "imap": target(dovecot_server, "Boîte")},
        )
    with pytest.raises(RuntimeError, match=r"-> 404"):
        sandbox.control(
            "gitlab", "POST", "/emails/deliver", json={"pipeline_id": 1, "imap": target(dovecot_server, folder)}
        )
