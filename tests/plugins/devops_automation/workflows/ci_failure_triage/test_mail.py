"""GitLab pipeline e-mail parsing: real sandbox-built mails, the three subject eras, header-less and
HTML-only bodies, the allow-list, spoofing, garbage and size limits."""

from __future__ import annotations

import email
import json
import pickle
import re
import time
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
from fastapi.testclient import TestClient

from devops_automation.workflows.ci_failure_triage.mail import (
    MailRejected,
    PipelineMail,
    message_id_of,
    parse_pipeline_mail,
    sender_allowed,
)
from include.sandbox.app import create_app

CONTROL = "/_sandbox/gitlab"
HOST = "gitlab.example.test"
GITLAB_HEADERS = (
    "X-GitLab-Project",
    "X-GitLab-Project-Id",
    "X-GitLab-Project-Path",
    "X-GitLab-Pipeline-Id",
    "X-GitLab-Pipeline-Ref",
    "X-GitLab-Pipeline-Status",
    "List-Id",
)


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(systems=["gitlab"]))


@pytest.fixture(scope="module")
def scenarios(client: TestClient) -> dict[str, dict[str, Any]]:
    return client.get(f"{CONTROL}/scenarios").json()


def build(client: TestClient, pipeline_id: int, **fields: Any) -> bytes:
    r = client.post(f"{CONTROL}/emails/pipeline", json={"pipeline_id": pipeline_id, **fields})
    assert r.status_code == 200, r.text
    return r.json()["eml"].encode()


def edit(raw: bytes, drop: tuple[str, ...] = (), **headers: str) -> bytes:
    """The message with headers removed / replaced (``X_GitLab_Pipeline_Id=...`` -> ``X-GitLab-Pipeline-Id``)."""
    msg = email.message_from_bytes(raw, policy=policy.SMTP)
    for name in (*drop, *(k.replace("_", "-") for k in headers)):
        del msg[name]
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    return msg.as_bytes()


def message(
    body: str | None = None,
    *,
    subject: str = "Hello",
    sender: str = f"gitlab@{HOST}",
    html: str | None = None,
    charset: str = "utf-8",
    cte: str | None = None,
    **headers: str,
) -> bytes:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"], msg["To"], msg["Subject"] = sender, "ci@example.test", subject
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    if body is not None:
        msg.set_content(body, charset=charset, cte=cte)
    if html is not None:
        (msg.add_alternative if body is not None else msg.set_content)(html, subtype="html", cte=cte)
    return msg.as_bytes()


def rejected(raw: bytes, kind: str, **kw: Any) -> MailRejected:
    with pytest.raises(MailRejected) as info:
        parse_pipeline_mail(raw, **kw)
    assert info.value.kind == kind, str(info.value)
    return info.value


# -- real e-mails from the sandbox builder --------------------------------------------------------
def test_failed_mail_from_sandbox(client: TestClient, scenarios: dict[str, Any]) -> None:
    s = scenarios["pytest"]
    raw = build(client, s["pipeline_id"])
    sha = client.get(
        f"/gitlab/api/v4/projects/{s['project_id']}/pipelines/{s['pipeline_id']}",
        headers={"PRIVATE-TOKEN": "glpat-sandbox-token"},
    ).json()["sha"]
    mail = parse_pipeline_mail(raw, allowed_senders=[f"gitlab@{HOST}"])
    assert (mail.status, mail.is_failure, mail.parsed_from) == ("failed", True, "headers")
    assert (mail.project_id, mail.project_path, mail.pipeline_id) == (
        str(s["project_id"]),
        s["project_path"],
        str(s["pipeline_id"]),
    )
    assert (mail.ref, mail.sha, mail.sender) == (s["ref"], sha[:8], f"gitlab@{HOST}")
    assert mail.project_name == s["project_path"].rsplit("/", 1)[1]
    assert mail.pipeline_url == f"http://testserver/gitlab/{s['project_path']}/-/pipelines/{s['pipeline_id']}"
    assert [j["id"] for j in mail.failed_jobs] == [str(i) for i in s["failed_job_ids"]]
    job = mail.failed_jobs[0]
    assert (job["name"], job["stage"]) == ("unit-tests", "test")
    assert job["url"].endswith(f"/-/jobs/{job['id']}")
    assert mail.message_id == message_id_of(raw)
    assert mail.message_id.endswith(f"@{HOST}")
    assert "<" not in mail.message_id
    assert mail.subject.endswith(f"| Failed pipeline for main | {sha[:8]}")
    data = mail.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["failed_jobs"][0]["id"] == job["id"]
    assert PipelineMail.from_dict(data) == mail


@pytest.mark.parametrize("kind", ["success", "fixed"])
def test_success_and_fixed_mails(client: TestClient, scenarios: dict[str, Any], kind: str) -> None:
    s = scenarios["dbt"]  # the non-ASCII project name "Données Analytics" travels RFC 2047-encoded
    raw = build(client, s["good_pipeline_id"], status=kind, host="git.corp.test")
    mail = parse_pipeline_mail(raw, allowed_senders=["@git.corp.test"])
    assert b"X-GitLab-Pipeline-Status: success" in raw  # GitLab marks a fixed mail "success" ...
    assert mail.status == kind  # ... the subject word makes it "fixed"
    assert not mail.is_failure
    assert (mail.pipeline_id, mail.project_name, mail.failed_jobs) == (
        str(s["good_pipeline_id"]),
        "Données Analytics",
        (),
    )


def test_every_seeded_failure_parses(client: TestClient, scenarios: dict[str, Any]) -> None:
    assert {"pytest", "compile", "dbt", "bridge"} <= set(scenarios)  # the seeded scenarios are really there
    for name, s in scenarios.items():
        mail = parse_pipeline_mail(build(client, s["pipeline_id"], status="failed"))
        assert (mail.pipeline_id, mail.project_path, mail.ref) == (
            str(s["pipeline_id"]),
            s["project_path"],
            s["ref"],
        ), name
        assert [j["id"] for j in mail.failed_jobs] == [str(i) for i in s["failed_job_ids"]], name


# -- header-less mails: subject eras, text and HTML bodies ---------------------------------------
@pytest.mark.parametrize(
    "subject, status, project, pipeline",
    [
        ("fast-billing | Failed pipeline for main | 1a2b3c4d", "failed", "fast-billing", None),  # current
        ("Failed pipeline for main | fast-billing | 1a2b3c4d", "failed", "fast-billing", None),  # intermediate
        (
            "fast-billing | Successful pipeline for main | 1a2b3c4d | [ACME]",
            "success",
            "fast-billing",
            None,
        ),  # + suffix
        ("fast-billing | Pipeline #77 has failed for main | 1a2b3c4d in !12", "failed", "fast-billing", "77"),  # old
        ("Fast Billing | Pipeline #77 has succeeded for main | 1a2b3c4d", "success", "Fast Billing", "77"),  # old
    ],
)
def test_subject_eras(
    client: TestClient, scenarios: dict[str, Any], subject: str, status: str, project: str, pipeline: str | None
) -> None:
    s = scenarios["pytest"]
    if pipeline is None:  # the subject has no id: the sandbox body gives it
        raw = edit(build(client, s["pipeline_id"]), drop=GITLAB_HEADERS, Subject=subject)
        pipeline = str(s["pipeline_id"])
    else:  # the old subject alone is enough
        raw = message(None, subject=subject)
    mail = parse_pipeline_mail(raw)
    assert (mail.parsed_from, mail.status, mail.project_name, mail.pipeline_id) == ("body", status, project, pipeline)
    assert (mail.ref, mail.sha) == ("main", "1a2b3c4d")


def test_headerless_mail_parsed_from_text_body(client: TestClient, scenarios: dict[str, Any]) -> None:
    s = scenarios["compile"]
    raw = edit(build(client, s["pipeline_id"]), drop=(*GITLAB_HEADERS, "Subject"))
    mail = parse_pipeline_mail(raw)
    assert (mail.parsed_from, mail.status, mail.pipeline_id, mail.ref) == (
        "body",
        "failed",
        str(s["pipeline_id"]),
        s["ref"],
    )
    assert mail.project_id is None
    assert mail.project_name == "edge-api"
    assert re.fullmatch(r"[0-9a-f]{8}", mail.sha or "")
    assert mail.project_path == "gitlab/" + s["project_path"]  # the URL path, relative root included (documented)
    assert [j["id"] for j in mail.failed_jobs] == [str(i) for i in s["failed_job_ids"]]
    with_list_id = parse_pipeline_mail(edit(build(client, s["pipeline_id"]), drop=GITLAB_HEADERS[:-1]))
    assert (with_list_id.project_id, with_list_id.project_path) == (str(s["project_id"]), s["project_path"])


def test_html_only_body(client: TestClient, scenarios: dict[str, Any]) -> None:
    s = scenarios["bridge"]
    original = email.message_from_bytes(build(client, s["pipeline_id"]), policy=policy.default)
    html = original.get_body(("html",)).get_content()
    raw = message(None, html=html, subject="Notification", cte="base64")
    mail = parse_pipeline_mail(raw)
    assert (mail.parsed_from, mail.status, mail.pipeline_id, mail.ref) == (
        "body",
        "failed",
        str(s["pipeline_id"]),
        "main",
    )
    assert mail.pipeline_url == f"http://testserver/gitlab/{s['project_path']}/-/pipelines/{s['pipeline_id']}"
    assert mail.failed_jobs == (
        {
            "id": str(s["failed_job_ids"][0]),
            "name": "trigger-docs",
            "stage": "docs",
            "url": f"http://testserver/gitlab/{s['project_path']}/-/jobs/{s['failed_job_ids'][0]}",
        },
    )


# -- allow-list -----------------------------------------------------------------------------------
def test_unknown_sender_is_rejected(client: TestClient, scenarios: dict[str, Any]) -> None:
    raw = build(client, scenarios["pytest"]["pipeline_id"], host="evil.test")
    exc = rejected(raw, "unknown_sender", allowed_senders=[f"gitlab@{HOST}", "@corp.test"])
    assert exc.sender == "gitlab@evil.test"
    assert "gitlab@evil.test" in str(exc)
    assert exc.subject
    assert exc.message_id == message_id_of(raw)
    assert parse_pipeline_mail(raw, allowed_senders=["@EVIL.test"]).sender == "gitlab@evil.test"
    assert parse_pipeline_mail(raw, allowed_senders=[]).pipeline_id == str(scenarios["pytest"]["pipeline_id"])
    rejected(message("x", sender="GitLab <gitlab@sub.evil.test>"), "unknown_sender", allowed_senders=["@evil.test"])


def test_sender_allowed_rules() -> None:
    assert sender_allowed("x@a.test", None)
    assert sender_allowed("x@a.test", [])
    assert sender_allowed("x@a.test", ["", " "])
    assert sender_allowed("GitLab@A.test", ["gitlab@a.test"])
    assert sender_allowed("x@a.test", [" @A.TEST "])
    assert not sender_allowed("x@b.a.test", ["@a.test"])
    assert not sender_allowed("x@a.test", ["a.test"])
    assert not sender_allowed("", ["@a.test"])
    assert not sender_allowed("y@a.test", ["x@a.test"])


# -- spoofing, strangers and garbage --------------------------------------------------------------
def test_newsletter_with_copied_pipeline_header_is_spoofed() -> None:
    """Decision: X-GitLab-Pipeline-Id with a body that never names that pipeline is ``spoofed``
    (the headers claim GitLab, so it is not merely ``not_gitlab``; a human should look)."""
    raw = message(
        "Our March newsletter: ten tips for faster builds!",
        subject="Newsletter",
        sender="news@gitlab.example.test",
        X_GitLab_Pipeline_Id="1500000091",
        X_GitLab_Pipeline_Status="failed",
    )
    exc = rejected(raw, "spoofed", allowed_senders=["@gitlab.example.test"])
    assert "does not mention" in str(exc)
    assert exc.sender == "news@gitlab.example.test"
    assert exc.subject == "Newsletter"


def test_headers_contradicting_body_are_spoofed(client: TestClient, scenarios: dict[str, Any]) -> None:
    s = scenarios["pytest"]
    raw = build(client, s["pipeline_id"])
    exc = rejected(edit(raw, X_GitLab_Pipeline_Id="1500000001"), "spoofed")
    assert f"#{s['pipeline_id']}" in str(exc)
    exc = rejected(edit(raw, X_GitLab_Project_Path="acme/other/project"), "spoofed")
    assert "acme/other/project" in str(exc)
    doubled = raw.replace(b"X-GitLab-Pipeline-Id:", b"X-GitLab-Pipeline-Id: 1500000001\r\nX-GitLab-Pipeline-Id:", 1)
    assert "several" in str(rejected(doubled, "spoofed"))


def test_unrecognisable_mails() -> None:
    rejected(message("Lunch at noon?", subject="Lunch"), "not_gitlab")
    rejected(message(None, html="<p>Team update</p>", subject="Update"), "not_gitlab")
    exc = rejected(
        message("\x00\x01 garbage !!!", subject="fast-billing | Failed pipeline for main | 1a2b3c4d"), "unparseable"
    )
    assert "pipeline id" in str(exc)
    assert exc.subject


@pytest.mark.parametrize("raw", [b"", b"\x00\xff\xfe garbage", b"just text\n", b"\xff" * 3000])
def test_garbage_is_unparseable(raw: bytes) -> None:
    exc = rejected(raw, "unparseable")
    assert exc.message_id == message_id_of(raw)


def test_bad_header_values_are_unparseable(client: TestClient, scenarios: dict[str, Any]) -> None:
    raw = build(client, scenarios["pytest"]["pipeline_id"])
    assert "not a number" in str(rejected(edit(raw, X_GitLab_Pipeline_Id="12; DROP"), "unparseable"))
    assert "X-GitLab-Project-Id" in str(rejected(edit(raw, X_GitLab_Project_Id="abc"), "unparseable"))
    broken = raw.replace(b'boundary="', b'boundary="x', 1)  # parts are never found
    assert rejected(broken, "spoofed").kind == "spoofed"  # headers claim a pipeline the unreadable body cannot back


def test_rejection_pickles() -> None:
    exc = MailRejected("spoofed", "why", message_id="m@x", sender="a@b", subject="s")
    again = pickle.loads(pickle.dumps(exc))
    assert (again.kind, str(again), again.message_id, again.sender, again.subject) == (
        "spoofed",
        "why",
        "m@x",
        "a@b",
        "s",
    )


# -- identity, encodings, size --------------------------------------------------------------------
def test_missing_message_id_gives_stable_hash(client: TestClient, scenarios: dict[str, Any]) -> None:
    raw = edit(build(client, scenarios["pytest"]["pipeline_id"]), drop=("Message-ID",))
    first = parse_pipeline_mail(raw).message_id
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", first)
    assert first == message_id_of(raw) == parse_pipeline_mail(bytes(raw)).message_id
    assert message_id_of(raw + b"\n") != first
    assert message_id_of(b"Message-ID:  <abc@x.test>  \n\nbody") == "abc@x.test"
    assert message_id_of(b"Message-ID: bare-id@x.test\n\n") == "bare-id@x.test"
    assert message_id_of(b"Message-ID: <>\n\n").startswith("sha256:")
    assert message_id_of(None).startswith("sha256:")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "charset, cte, name",
    [
        ("iso-8859-1", "base64", "Bücher-Café"),
        ("windows-1252", "quoted-printable", "Bücher–Café"),
        ("shift_jis", "base64", "ビルド本"),
        ("koi8-r", "8bit", "Сборка"),
        ("utf-8", "8bit", "Bücher ✓"),
    ],
)
def test_non_utf8_and_encoded_bodies(charset: str, cte: str, name: str) -> None:
    body = (
        f"Pipeline #4242 has failed!\n\nProject: {name} ( https://git.corp.test/shop/buecher )\n"
        "Branch: main ( https://git.corp.test/shop/buecher/-/commits/main )\n"
        "Commit: deadbeef ( https://git.corp.test/shop/buecher/-/commit/deadbeef )\n"
        "Pipeline #4242 ( https://git.corp.test/shop/buecher/-/pipelines/4242 ) triggered by API\nhad 1 failed job.\n\n"
        "Job #77 ( https://git.corp.test/shop/buecher/-/jobs/77 )\nStage: test\nName: pytest\n"
    )
    raw = message(body, subject="Notification", charset=charset, cte=cte)
    assert name.encode("utf-8") not in raw or charset == "utf-8"  # really sent in that charset
    mail = parse_pipeline_mail(raw)
    assert (mail.pipeline_id, mail.status, mail.project_path, mail.sha) == (
        "4242",
        "failed",
        "shop/buecher",
        "deadbeef",
    )
    assert (mail.project_name, mail.ref, mail.parsed_from) == (name, "main", "body")
    assert mail.failed_jobs == (
        {"id": "77", "name": "pytest", "stage": "test", "url": "https://git.corp.test/shop/buecher/-/jobs/77"},
    )


def test_encoded_word_subject() -> None:
    raw = message(None, subject="Bücher-Café | Pipeline #5 has failed for main | abcdef12")
    assert b"=?utf-8?" in raw
    mail = parse_pipeline_mail(raw)
    assert (mail.project_name, mail.pipeline_id, mail.status) == ("Bücher-Café", "5", "failed")


def test_unknown_charset_and_bad_base64_do_not_crash() -> None:
    raw = (
        b"From: gitlab@h.test\nSubject: p | Failed pipeline for main | abcdef12\nMIME-Version: 1.0\n"
        b"Content-Type: text/plain; charset=x-made-up\nContent-Transfer-Encoding: base64\n\n"
        b"UGlwZWxpbmUgIzkgaGFzIGZhaWxlZCE=\n!!!not base64***\n"
    )
    assert parse_pipeline_mail(raw).pipeline_id == "9"


@pytest.mark.parametrize("cte", ["quoted-printable", "base64", "8bit"])
def test_five_megabyte_body_is_fast(client: TestClient, scenarios: dict[str, Any], cte: str) -> None:
    s = scenarios["pytest"]
    original = email.message_from_bytes(build(client, s["pipeline_id"]), policy=policy.default)
    text = original.get_body(("plain",)).get_content() + ("lorem ipsum dolor sit amet " * 40 + "\n") * 4_700
    msg = EmailMessage(policy=policy.SMTP)
    for name, value in original.items():
        if not name.lower().startswith(("content-", "mime-")):
            msg[name] = value
    msg.set_content(text, cte=cte)
    raw = msg.as_bytes()
    assert len(raw) > 5_000_000
    start = time.perf_counter()
    mail = parse_pipeline_mail(raw)
    assert time.perf_counter() - start < 1.0
    assert mail.pipeline_id == str(s["pipeline_id"])
    assert len(mail.failed_jobs) == 1
    one_line = message("x (" * 1_800_000, subject="big")
    start = time.perf_counter()
    rejected(one_line, "not_gitlab")
    assert time.perf_counter() - start < 1.0
