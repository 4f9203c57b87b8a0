"""GitLab pipeline e-mail parsing: real sandbox-built mails, the three subject eras, header-less and
HTML-only bodies, the allow-list, spoofing, garbage and size limits, link unwrapping and subject tags.
(Every GitLab version's mails, gateways and look-alikes: test_mail_corpus.py.)"""

from __future__ import annotations

import base64
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
    MailIgnored,
    MailRejected,
    PipelineMail,
    classify_mail,
    message_id_of,
    parse_pipeline_mail,
    sender_allowed,
    strip_subject_tags,
    unwrap_url,
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
    assert (job["name"], job["stage"], job["kind"]) == ("unit-tests", "test", "job")
    assert (mail.header_status, mail.failed_count, mail.notes) == ("failed", len(s["failed_job_ids"]), ())
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
def sandbox_sha(client: TestClient, s: dict[str, Any], pipeline_id: int) -> str:
    return client.get(
        f"/gitlab/api/v4/projects/{s['project_id']}/pipelines/{pipeline_id}",
        headers={"PRIVATE-TOKEN": "glpat-sandbox-token"},
    ).json()["sha"][:8]


@pytest.mark.parametrize(
    "subject, status, project",
    [
        ("fast-billing | Failed pipeline for main | {sha}", "failed", "fast-billing"),  # current
        ("Failed pipeline for main | fast-billing | {sha}", "failed", "fast-billing"),  # intermediate
        ("fast-billing | Failed pipeline for main | {sha} | [ACME]", "failed", "fast-billing"),  # + suffix
        ("[EXTERNAL] fast-billing | Failed pipeline for main | {sha}", "failed", "fast-billing"),  # gateway tag
        ("fast-billing | Pipeline #{id} has failed for main | {sha} in !12", "failed", "fast-billing"),  # oldest
        ("Fast Billing | Pipeline #{id} has succeeded for main | {sha}", "success", "Fast Billing"),  # oldest
    ],
)
def test_subject_eras(client: TestClient, scenarios: dict[str, Any], subject: str, status: str, project: str) -> None:
    """Without X-GitLab-* headers the subject (any era, any tag in front) and the body are read together."""
    s = scenarios["pytest"]
    pipeline_id = s["pipeline_id"] if status == "failed" else s["good_pipeline_id"]
    sha = sandbox_sha(client, s, pipeline_id)
    raw = edit(
        build(client, pipeline_id, status=status), drop=GITLAB_HEADERS, Subject=subject.format(sha=sha, id=pipeline_id)
    )
    mail = parse_pipeline_mail(raw)
    assert (mail.parsed_from, mail.status, mail.project_name, mail.pipeline_id) == (
        "body",
        status,
        project,
        str(pipeline_id),
    )
    assert (mail.ref, mail.sha, mail.header_status) == ("main", sha, None)


def test_subject_that_contradicts_the_body_is_spoofed(client: TestClient, scenarios: dict[str, Any]) -> None:
    s = scenarios["pytest"]
    raw = build(client, s["pipeline_id"])
    exc = rejected(edit(raw, Subject="fast-billing | Failed pipeline for main | 1a2b3c4d"), "spoofed")
    assert "commit: subject says '1a2b3c4d'" in str(exc)
    exc = rejected(edit(raw, Subject=f"x | Pipeline #{s['pipeline_id'] + 1} has failed for main | 1a2b3c4d"), "spoofed")
    assert "pipeline id" in str(exc)
    exc = rejected(edit(raw, X_GitLab_Pipeline_Ref="release"), "spoofed")
    assert "ref: X-GitLab-Pipeline-Ref says 'release'" in str(exc)


def test_subject_alone_is_not_enough() -> None:
    """A subject naming a pipeline, no GitLab headers, a body that is not a pipeline notification."""
    exc = rejected(message(None, subject="fast-billing | Pipeline #77 has failed for main | 1a2b3c4d"), "unparseable")
    assert "body is not a pipeline notification" in str(exc)


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
            "kind": "job",
        },
    )
    assert mail.project_path == "gitlab/" + s["project_path"]  # the project link's path (relative root included)


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
    assert "X-GitLab-Pipeline-Id is 1500000091 but the body shows no pipeline" in str(exc)
    assert exc.sender == "news@gitlab.example.test"
    assert exc.subject == "Newsletter"


def test_headers_contradicting_body_are_spoofed(client: TestClient, scenarios: dict[str, Any]) -> None:
    s = scenarios["pytest"]
    raw = build(client, s["pipeline_id"])
    exc = rejected(edit(raw, X_GitLab_Pipeline_Id="1500000001"), "spoofed")
    assert f"X-GitLab-Pipeline-Id says '1500000001' but body title says '{s['pipeline_id']}'" in str(exc)
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
    assert "body is not a pipeline notification" in str(exc)
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
        {
            "id": "77",
            "name": "pytest",
            "stage": "test",
            "url": "https://git.corp.test/shop/buecher/-/jobs/77",
            "kind": "job",
        },
    )


OLD_BODY = (  # the GitLab < 13.2 text layout (gitlab.md §1.1b), hand-written
    "\n\nYour pipeline has failed.\n\nProject: Bücher-Café ( https://git.corp.test/shop/buecher )\n"
    "Branch: main ( https://git.corp.test/shop/buecher/commits/main )\n\n"
    "Commit: abcdef12 ( https://git.corp.test/shop/buecher/commit/abcdef1234567890 )\n"
    "Commit Message: Fix it\nCommit Author: Kim ( https://git.corp.test/kim )\n\n"
    "Pipeline #5 ( https://git.corp.test/shop/buecher/pipelines/5 ) triggered by API\nhad 2 failed builds.\n\n"
    "Job #70 ( https://git.corp.test/shop/buecher/-/jobs/70/raw )\n\nStage: test\nName: pytest\n"
    "Trace: collected 3 items\n\nJob #1 ( https://git.corp.test/shop/buecher/-/jobs/1 )\nsee pipeline "
    "https://git.corp.test/other/x/pipelines/4\n\n"
    "Build #71\n\nStage: external\nName: ci/jenkins\n\n-- \nYou're receiving this email because of your account.\n"
)


def test_encoded_word_subject_and_the_old_body() -> None:
    raw = message(OLD_BODY, subject="Bücher-Café | Pipeline #5 has failed for main | abcdef12")
    assert b"=?utf-8?" in raw
    mail = parse_pipeline_mail(raw)
    assert (mail.project_name, mail.pipeline_id, mail.status, mail.project_path) == (
        "Bücher-Café",
        "5",
        "failed",
        "shop/buecher",
    )
    assert mail.pipeline_url == "https://git.corp.test/shop/buecher/pipelines/5"  # before URLs moved under /-/
    assert [(j["id"], j["name"], j["stage"], j["url"], j["kind"]) for j in mail.failed_jobs] == [
        ("70", "pytest", "test", "https://git.corp.test/shop/buecher/-/jobs/70", "job"),  # /raw dropped
        ("71", "ci/jenkins", "external", None, "external"),  # an external commit status: Build #<id>, no link
    ]  # the log line "Job #1 ( ... )" after a blank line is no job: no Stage: line follows it
    assert mail.failed_count == 2


def test_unknown_charset_and_bad_base64_do_not_crash() -> None:
    encoded = base64.b64encode(OLD_BODY.encode("utf-8"))
    raw = (
        b"From: gitlab@h.test\nSubject: p | Failed pipeline for main | abcdef12\nMIME-Version: 1.0\n"
        b"Content-Type: text/plain; charset=x-made-up\nContent-Transfer-Encoding: base64\n\n"
        + encoded
        + b"\n!!!not base64***\n"
    )
    mail = parse_pipeline_mail(raw)
    assert (mail.pipeline_id, mail.project_path) == ("5", "shop/buecher")
    assert classify_mail(b"\xff" * 10).reason == "unparseable"
    assert classify_mail(None).reason == "unparseable"  # type: ignore[arg-type]


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


# -- gateways, people and other notifications ------------------------------------------------------
SAFELINK = (
    "https://eur03.safelinks.protection.outlook.com/?url=https%3A%2F%2Fgit.corp.test%2Fa%2Fb%2F-%2Fpipelines"
    "%2F5&data=05%7C02&sdata=x&reserved=0"
)
NESTED = (
    "https://eur03.safelinks.protection.outlook.com/?url="
    "https%3A%2F%2Furldefense.com%2Fv3%2F__https%3A%2F%2Fgit.corp.test%2Fa__%3B!!x%24&reserved=0"
)


@pytest.mark.parametrize(
    "wrapped, target",
    [
        (SAFELINK, "https://git.corp.test/a/b/-/pipelines/5"),
        (  # Proofpoint v2: '-' stands for '%', '_' for '/'
            "https://urldefense.proofpoint.com/v2/url?u=https-3A__git.corp.test_a_my-5Fapp_-2D_jobs_7&d=DwMF&e=",
            "https://git.corp.test/a/my_app/-/jobs/7",
        ),
        ("https://urldefense.com/v3/__https://git.corp.test/a/b__;!!Q0cT!abc$", "https://git.corp.test/a/b"),
        ("https://www.google.com/url?q=https://git.corp.test/a/b&sa=D", "https://git.corp.test/a/b"),
        (NESTED, "https://git.corp.test/a"),  # two gateways, one inside the other
        ("https://git.corp.test/a/b/-/pipelines/5", "https://git.corp.test/a/b/-/pipelines/5"),
        ("https://protect-eu.mimecast.com/s/AbCdEf?domain=git.corp.test", None),  # hides its target
        ("", None),
    ],
)
def test_unwrap_url(wrapped: str, target: str | None) -> None:
    assert unwrap_url(wrapped) == target


@pytest.mark.parametrize(
    "subject, stripped",
    [
        ("[EXTERNAL] app | Failed pipeline for main | abcdef12", "app | Failed pipeline for main | abcdef12"),
        ("EXTERNAL: [ci-list]  app | Failed pipeline", "app | Failed pipeline"),
        ("*SPAM* (External) Re: x", "Re: x"),
        ("EXT-tools | Failed pipeline for main | abcdef12", "EXT-tools | Failed pipeline for main | abcdef12"),
        ("Pipeline #5 has failed for main | abcdef12", "Pipeline #5 has failed for main | abcdef12"),
    ],
)
def test_strip_subject_tags(subject: str, stripped: str) -> None:
    assert strip_subject_tags(subject) == stripped


@pytest.mark.parametrize(
    "headers, kind, words",
    [
        ({"In_Reply_To": "<abc@mail.test>"}, "reply", "In-Reply-To"),
        ({"Subject": "Re: app | Failed pipeline for main | abcdef12"}, "reply", "reply"),
        ({"Subject": "WG: app | Failed pipeline for main | abcdef12"}, "forward", "forward"),
        ({"X_GitLab_Issue_ID": "9"}, "not_pipeline", "issue notification"),
        ({"X_GitLab_MergeRequest_IID": "4"}, "not_pipeline", "merge request notification"),
        ({"X_GitLab_NotificationReason": "mentioned"}, "not_pipeline", "issue, merge request or comment"),
        ({"Message_ID": "<note_77@gitlab.example.test>"}, "not_pipeline", "note notification"),
    ],
)
def test_people_and_other_notifications_are_ignored_from_their_headers(
    client: TestClient, scenarios: dict[str, Any], headers: dict[str, str], kind: str, words: str
) -> None:
    """A sandbox failure mail without its pipeline headers, plus what a person's mail client or another
    GitLab notification adds: ignored with a named reason, whatever the body says."""
    raw = edit(build(client, scenarios["pytest"]["pipeline_id"]), drop=GITLAB_HEADERS, **headers)
    with pytest.raises(MailIgnored) as info:
        parse_pipeline_mail(raw)
    assert info.value.kind == kind
    assert words in str(info.value)
    decision = classify_mail(raw)
    assert (decision.action, decision.reason, decision.mail) == ("ignore", kind, None)
    assert decision.sender == f"gitlab@{HOST}"


def test_pipeline_headers_on_a_reply_or_an_issue_mail_are_spoofed(
    client: TestClient, scenarios: dict[str, Any]
) -> None:
    raw = build(client, scenarios["pytest"]["pipeline_id"])
    assert "person's reply" in str(rejected(edit(raw, In_Reply_To="<abc@mail.test>"), "spoofed"))
    assert "issue notification" in str(rejected(edit(raw, X_GitLab_Issue_ID="9"), "spoofed"))
    # a header GitLab may add to any notification does not turn a pipeline mail into another kind
    assert parse_pipeline_mail(edit(raw, X_GitLab_NotificationReason="own_activity")).is_failure


def test_a_from_with_two_addresses_is_rejected(client: TestClient, scenarios: dict[str, Any]) -> None:
    raw = build(client, scenarios["pytest"]["pipeline_id"])
    two = edit(raw, From=f"GitLab <gitlab@{HOST}>, Eve <eve@evil.test>")
    exc = rejected(two, "unknown_sender", allowed_senders=[f"gitlab@{HOST}"])
    assert "From: names 2 addresses" in str(exc)
    rejected(two, "unknown_sender")  # even when any sender is allowed: a notification has one sender
    spoof = edit(raw, From=f'"gitlab@{HOST}" <eve@evil.test>')  # the display name is no address
    assert rejected(spoof, "unknown_sender", allowed_senders=[f"gitlab@{HOST}"]).sender == "eve@evil.test"


def test_running_status_header_on_a_failed_mail_is_a_failure(client: TestClient, scenarios: dict[str, Any]) -> None:
    """GitLab reads the status header when the queued mail is rendered: after a quick retry it says
    ``running`` on a "Failed pipeline" mail. The mail still reports the failure."""
    raw = edit(build(client, scenarios["pytest"]["pipeline_id"]), X_GitLab_Pipeline_Status="running")
    decision = classify_mail(raw)
    assert (decision.action, decision.reason) == ("accept", "failed")
    assert decision.mail is not None
    assert (decision.mail.status, decision.mail.header_status) == ("failed", "running")
    assert "'running' on a failed mail" in decision.mail.notes[0]


def test_decisions_and_exceptions_pickle_and_old_dicts_load() -> None:
    for cls, kind in ((MailRejected, "spoofed"), (MailIgnored, "reply")):
        exc = cls(kind, "why", message_id="m@x", sender="a@b", subject="s")
        again = pickle.loads(pickle.dumps(exc))
        assert (type(again), again.kind, str(again), again.message_id, again.sender, again.subject) == (
            cls,
            kind,
            "why",
            "m@x",
            "a@b",
            "s",
        )
    old = {  # an event dict written before header_status/failed_count/notes existed
        "message_id": "m",
        "sender": "s",
        "subject": "x",
        "status": "failed",
        "project_id": "1",
        "project_path": "a/b",
        "project_name": "b",
        "pipeline_id": "2",
        "ref": "main",
        "sha": "abcdef12",
        "pipeline_url": None,
        "failed_jobs": [{"id": "3", "name": "t", "stage": "s", "url": None}],
        "parsed_from": "headers",
    }
    mail = PipelineMail.from_dict(old)
    assert (mail.header_status, mail.notes, mail.failed_jobs[0]["id"]) == (None, (), "3")
    assert PipelineMail.from_dict(mail.to_dict()) == mail


def test_a_translated_html_body_is_read_by_its_link_to_the_pipeline(
    client: TestClient, scenarios: dict[str, Any]
) -> None:
    """GitLab translates its HTML labels per recipient. With pipeline headers, a layout in another
    language counts when it links to that very pipeline (and the link's project must agree)."""
    s = scenarios["pytest"]
    original = email.message_from_bytes(build(client, s["pipeline_id"]), policy=policy.default)
    html = original.get_body(("html",)).get_content()
    for english, german in (
        ("has failed!", "ist fehlgeschlagen!"),
        ("Project:", "Projekt:"),
        ("Branch:", "Zweig:"),
        ("Commit:", "Revision:"),
        ("Pipeline ", "Pipeline-Lauf "),
        ("triggered by", "ausgelöst von"),
    ):
        html = html.replace(english, german)
    headers = {
        k.replace("-", "_"): str(v) for k, v in original.items() if k.lower().startswith(("x-gitlab", "list-id"))
    }

    def mail_with(body: str) -> bytes:
        return message(None, html=body, subject=str(original["Subject"]), sender=f"gitlab@{HOST}", **headers)

    mail = parse_pipeline_mail(mail_with(html))
    assert (mail.pipeline_id, mail.status, mail.project_path) == (str(s["pipeline_id"]), "failed", s["project_path"])
    assert "another language" in mail.notes[0]
    link = f"{s['project_path']}/-/pipelines/{s['pipeline_id']}"
    assert link in html
    moved = mail_with(html.replace(link, f"acme/elsewhere/-/pipelines/{s['pipeline_id']}"))
    assert "project path" in str(rejected(moved, "spoofed"))
    other = mail_with(html.replace(link, f"{s['project_path']}/-/pipelines/1"))
    assert "shows no pipeline" in str(rejected(other, "spoofed"))
