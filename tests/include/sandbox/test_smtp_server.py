"""include.sandbox.servers.SmtpServer: a real SMTP sink (aiosmtpd) that keeps every message, and leaves
nothing behind when stopped."""

from __future__ import annotations

import smtplib
import socket

import pytest

from include.sandbox import processes
from include.sandbox.servers import MissingBinary, SmtpServer
from tests.conftest import _unavailable


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_messages_keep_the_envelope_and_clear_forgets_them(smtp) -> None:
    with smtplib.SMTP("127.0.0.1", smtp.port, timeout=10) as client:
        client.sendmail("ci@example.test", ["a@example.test", "b@example.test"], b"Subject: first\r\n\r\nbody 1\r\n")
        client.sendmail("ci@example.test", ["c@example.test"], b"Subject: second\r\n\r\nbody 2\r\n")
    first, second = smtp.messages()
    assert (first["Subject"], first["X-MailFrom"], first["X-RcptTo"]) == (
        "first",
        "ci@example.test",
        "a@example.test, b@example.test",
    )
    assert first.get_content() == "body 1\n"
    assert (second["Subject"], second["X-RcptTo"]) == ("second", "c@example.test")
    smtp.clear()
    assert smtp.messages() == []


def test_stop_ends_the_server_and_removes_its_directory() -> None:
    try:
        server = SmtpServer().start()
    except MissingBinary as exc:
        _unavailable("SMTP server (aiosmtpd)", exc)
    maildir = str(server.maildir)
    directory = server.dir
    assert listening(server.port)
    assert processes.pids_with_arg(maildir)
    server.stop()
    assert not listening(server.port)
    assert processes.pids_with_arg(maildir) == []
    assert directory is not None and not directory.exists()
    server.stop()  # a second stop does nothing


def test_without_aiosmtpd_the_debian_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from include.sandbox import servers

    monkeypatch.setattr(servers, "DEBIAN_AIOSMTPD", "/nonexistent/aiosmtpd/__main__.py")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(MissingBinary, match=r"aiosmtpd not found: install the Debian package 'python3-aiosmtpd'"):
        SmtpServer().start()


def test_the_connection_is_json_with_real_booleans(smtp) -> None:
    import json

    conn = json.loads(smtp.airflow_conn())
    assert conn == {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": smtp.port,
        "extra": {"from_email": smtp.from_email, "disable_ssl": True, "disable_tls": True, "timeout": 10},
    }
