"""ImapMailboxHook against the real test Dovecot (each test works in folders of its own)."""

from __future__ import annotations

import imaplib
import json
import threading
import uuid

import pytest

from devops_automation.hooks.imap import ImapLoginError, ImapMailboxHook, RawMessage, parse_fetch, parse_senders

pytestmark = pytest.mark.imap


def mail(n: int = 1, body: str = "The pipeline failed.") -> bytes:
    return (
        f"From: GitLab <gitlab@gitlab.example.test>\r\nTo: ci@example.test\r\nSubject: Failed pipeline {n}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@gitlab.example.test>\r\nX-GitLab-Pipeline-Id: {n}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n\xfcml\xe4ut \u2713\r\n"
    ).encode()


def conn_json(server, **extra) -> str:
    return json.dumps(
        {
            "conn_type": "imap",
            "host": "127.0.0.1",
            "port": server.port,
            "login": server.user,
            "password": server.password,
            "extra": {"use_ssl": False, **extra},
        }
    )


@pytest.fixture
def folder() -> str:
    return f"hook-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def hook(dovecot_server, monkeypatch, folder) -> ImapMailboxHook:
    monkeypatch.setenv(
        "AIRFLOW_CONN_IMAP_DEFAULT", conn_json(dovecot_server, folder=folder, processed_folder=f"{folder}-done")
    )
    return ImapMailboxHook()


def raw_imap(server) -> imaplib.IMAP4:
    """A plain imaplib session: checks what really reached the server, independent of the hook."""
    m = imaplib.IMAP4("127.0.0.1", server.port)
    m.login(server.user, server.password)
    return m


def server_messages(server, folder: str) -> list[tuple[bytes, str]]:
    with raw_imap(server) as m:
        typ, _ = m.select(folder, readonly=True)
        if typ != "OK":
            return []
        _, data = m.uid("SEARCH", None, "ALL")
        out = []
        for uid in data[0].split():
            _, parts = m.uid("FETCH", uid, "(FLAGS BODY.PEEK[])")
            tup = next(p for p in parts if isinstance(p, tuple))
            out.append((tup[1], tup[0].decode()))
        return out


def test_connection_settings_and_defaults(dovecot_server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_IMAP_DEFAULT", dovecot_server.airflow_conn())  # URI: use_ssl=false as a string
    hook = ImapMailboxHook()
    assert (hook.use_ssl, hook.starttls, hook.port) == (False, False, dovecot_server.port)
    assert (hook.folder, hook.processed_folder, hook.needs_attention_folder, hook.allowed_senders) == (
        "INBOX",
        "Processed",
        "needs-attention",
        [],
    )
    monkeypatch.setenv("AIRFLOW_CONN_IMAP_OTHER", json.dumps({"conn_type": "imap", "host": "mail.example.test"}))
    other = ImapMailboxHook("imap_other")
    assert (other.use_ssl, other.port, other.timeout) == (True, 993, 30.0)
    monkeypatch.setenv(
        "AIRFLOW_CONN_IMAP_TLS", json.dumps({"conn_type": "imap", "host": "m", "extra": {"starttls": "true"}})
    )
    assert (
        ImapMailboxHook("imap_tls").use_ssl,
        ImapMailboxHook("imap_tls").starttls,
        ImapMailboxHook("imap_tls").port,
    ) == (False, True, 143)


def test_init_does_not_read_the_connection(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_NOPE", raising=False)
    hook = ImapMailboxHook("nope")  # no lookup yet
    assert hook.imap_conn_id == "nope"
    with pytest.raises(Exception, match="nope"):
        _ = hook.folder


def test_allowed_senders_parsing(dovecot_server, monkeypatch):
    assert parse_senders("Gitlab@Example.test, @corp.example ,") == ["gitlab@example.test", "@corp.example"]
    assert parse_senders('["a@b.c", "@d.e"]') == ["a@b.c", "@d.e"]
    assert parse_senders(None) == []
    monkeypatch.setenv(
        "AIRFLOW_CONN_IMAP_DEFAULT", conn_json(dovecot_server, allowed_senders=["GitLab@x.test", "@y.test"])
    )
    assert ImapMailboxHook().allowed_senders == ["gitlab@x.test", "@y.test"]
    monkeypatch.setenv("AIRFLOW_CONN_IMAP_DEFAULT", dovecot_server.airflow_conn() + "&allowed_senders=a%40b.c,%40d.e")
    assert ImapMailboxHook().allowed_senders == ["a@b.c", "@d.e"]


def test_connect_capabilities_and_test_connection(hook, folder):
    hook.ensure_folder(folder)
    with hook.mailbox() as mb:
        assert mb.folder.get() == folder
        assert mb.client.state == "SELECTED"
    assert mb.client.state == "LOGOUT"
    assert "IDLE" in hook.capabilities()
    assert hook.supports_idle()
    ok, message = hook.test_connection()
    assert ok
    assert folder in message
    assert "IDLE supported" in message


def test_append_fetch_round_trip_is_byte_exact(dovecot_server, hook, folder):
    sent = [mail(1), mail(2, "x" * 5000)]
    for raw in sent:
        hook.append(raw)  # creates the folder
    assert [raw for raw, _ in server_messages(dovecot_server, folder)] == sent
    uids = hook.list_uids()
    assert len(uids) == 2
    assert uids == sorted(uids, key=int)
    got = hook.fetch_messages()
    assert [m.raw for m in got] == sent
    assert [m.uid for m in got] == uids
    assert [type(m) for m in got] == [RawMessage, RawMessage]
    assert [m.size for m in got] == [len(raw) for raw in sent]
    assert "\\Seen" not in got[0].flags
    # fetching did not mark anything seen on the server
    assert ["\\Seen" in flags for _, flags in server_messages(dovecot_server, folder)] == [False, False]
    assert [m.raw for m in hook.fetch_messages(uids=[uids[1], "999999"])] == [sent[1]]
    assert [m.uid for m in hook.fetch_messages(limit=1)] == [uids[0]]


def test_append_with_flags_and_other_folder(dovecot_server, hook, folder):
    hook.append(mail(3), folder=f"{folder}-x", flags=["\\Seen"])
    ((raw, flags),) = server_messages(dovecot_server, f"{folder}-x")
    assert raw == mail(3)[: raw.index(b"Message-ID")] + raw[raw.index(b"Message-ID") :]
    assert "\\Seen" in flags
    (msg,) = hook.fetch_messages(folder=f"{folder}-x")
    assert "\\Seen" in msg.flags


def test_move_creates_the_folder(dovecot_server, hook, folder):
    for n in range(3):
        hook.append(mail(n))
    uids = hook.list_uids()
    target = f"{folder}-done"
    assert hook.move(uids[:2], target) == 2
    assert hook.list_uids() == uids[2:]
    assert len(server_messages(dovecot_server, target)) == 2
    assert hook.move([], target) == 0


def test_ensure_folder_is_idempotent(dovecot_server, hook, folder):
    name = f"{folder}-new"
    assert hook.ensure_folder(name) is True
    assert hook.ensure_folder(name) is False
    with raw_imap(dovecot_server) as m:
        typ, data = m.list('""', name)
    assert typ == "OK"
    assert data[0]
    assert name.encode() in data[0]


def test_flag_sets_and_clears_flags(dovecot_server, hook, folder):
    hook.append(mail(1))
    hook.append(mail(2))
    first, _second = hook.list_uids()
    hook.flag([first], ["\\Flagged", "\\Seen"])
    flags = [f for _, f in server_messages(dovecot_server, folder)]
    assert "\\Flagged" in flags[0]
    assert "\\Seen" in flags[0]
    assert "\\Flagged" not in flags[1]
    assert "\\Seen" not in flags[1]
    hook.flag(first, "\\Flagged", value=False)
    flags = [f for _, f in server_messages(dovecot_server, folder)]
    assert "\\Flagged" not in flags[0]
    assert "\\Seen" in flags[0]


def test_wrong_password_is_a_clear_error_without_the_password(monkeypatch):
    from include.sandbox.servers import DovecotServer

    server = DovecotServer().start()  # private: failed logins make Dovecot slow down later logins from this IP
    try:
        secret = "Wr0ng-Secret-pw"
        monkeypatch.setenv(
            "AIRFLOW_CONN_IMAP_DEFAULT",
            json.dumps(
                {
                    "conn_type": "imap",
                    "host": "127.0.0.1",
                    "port": server.port,
                    "login": server.user,
                    "password": secret,
                    "extra": {"use_ssl": False},
                }
            ),
        )
        with pytest.raises(ImapLoginError) as info:
            ImapMailboxHook().list_uids()
        text = str(info.value)
        assert f"127.0.0.1:{server.port}" in text
        assert server.user in text
        assert "failed" in text
        assert secret not in text
        assert info.value.__cause__ is None
        assert secret not in repr(info.value.__context__)
    finally:
        threading.Thread(
            target=server.stop, daemon=False
        ).start()  # takes seconds: overlaps the other tests (joined at exit)


def test_unreachable_server_names_host_and_port(monkeypatch):
    from include.sandbox.servers import free_port

    port = free_port()
    monkeypatch.setenv(
        "AIRFLOW_CONN_IMAP_DEFAULT",
        json.dumps(
            {
                "conn_type": "imap",
                "host": "127.0.0.1",
                "port": port,
                "login": "u",
                "password": "p4ss-word",
                "extra": {"use_ssl": "false"},
            }
        ),
    )
    ok, message = ImapMailboxHook().test_connection()
    assert not ok
    assert f"127.0.0.1:{port}" in message
    assert "p4ss-word" not in message


def test_missing_folder_is_a_clear_error(hook, folder):
    with pytest.raises(Exception, match=folder):
        hook.list_uids()


def test_parse_fetch_handles_trailing_attributes_and_unsolicited_fetches():
    data = [
        (b"1 (UID 7 RFC822.SIZE 5 BODY[] {5}", b"hello"),
        b" FLAGS (\\Seen \\Flagged))",
        b"3 (FLAGS (\\Deleted))",  # unsolicited update of another message
        (b"2 (UID 9 FLAGS () RFC822.SIZE 3 BODY[] {3}", b"abc"),
        b")",
    ]
    assert parse_fetch(data) == [RawMessage("7", b"hello", ("\\Seen", "\\Flagged"), 5), RawMessage("9", b"abc", (), 3)]
