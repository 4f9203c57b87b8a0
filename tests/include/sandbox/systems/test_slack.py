"""Slack sandbox: Web API and webhook rules (TestClient), then slack_sdk and the Airflow Slack hooks over HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from include.sandbox.app import create_app
from include.sandbox.client import SandboxClient, SandboxServer

TOKEN = "xoxb-sandbox-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ALERTS_HOOK = "/slack/services/T0SANDBOX/B0ALERTS/alerts-secret"


@pytest.fixture()
def api() -> TestClient:
    return TestClient(create_app(systems=["slack"]))


def call(api: TestClient, method: str, **params: Any) -> dict[str, Any]:
    response = api.post(f"/slack/api/{method}", headers=AUTH, json=params)
    assert response.status_code == 200, response.text
    return response.json()


def posted(api: TestClient, channel: str | None = None) -> list[dict[str, Any]]:
    return api.get("/_sandbox/slack/messages", params={"channel": channel} if channel else {}).json()


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


# -- Web API rules ---------------------------------------------------------------------------------
def test_auth_errors_are_http_200_with_ok_false(api: TestClient) -> None:
    assert api.post("/slack/api/auth.test").json() == {"ok": False, "error": "not_authed"}
    wrong = api.post("/slack/api/auth.test", headers={"Authorization": "Bearer xoxb-wrong"})
    assert (wrong.status_code, wrong.json()) == (200, {"ok": False, "error": "invalid_auth"})
    by_param = api.post("/slack/api/auth.test", data={"token": TOKEN}).json()
    assert by_param["ok"] and by_param["team_id"] == "T0SANDBOX" and by_param["user_id"] == "U0SANDBOXBOT"


def test_tokens_control_replaces_the_valid_tokens(api: TestClient) -> None:
    assert api.put("/_sandbox/slack/tokens", json={"tokens": ["xoxb-rotated"]}).json() == {"tokens": ["xoxb-rotated"]}
    assert api.post("/slack/api/auth.test", headers=AUTH).json() == {"ok": False, "error": "invalid_auth"}
    assert api.post("/slack/api/auth.test", headers={"Authorization": "Bearer xoxb-rotated"}).json()["ok"] is True


def test_reports_channel_and_form_bodies(api: TestClient) -> None:
    answer = api.post(
        "/slack/api/chat.postMessage", headers=AUTH, data={"channel": "#reports", "text": "weekly"}
    ).json()
    assert (
        answer["ok"]
        and answer["channel"] == "C0REPORTS"
        and answer["ts"].split(".")[1].isdigit()
        and len(answer["ts"].split(".")[1]) == 6
    )
    assert [m["text"] for m in posted(api, "C0REPORTS")] == ["weekly"]


def test_upload_url_takes_raw_or_multipart_bytes(api: TestClient) -> None:
    def new_upload(name: str, length: int) -> dict[str, Any]:
        return api.post(
            "/slack/api/files.getUploadURLExternal", headers=AUTH, data={"filename": name, "length": str(length)}
        ).json()

    raw, multi = new_upload("a.txt", 3), new_upload("b.csv", 4)
    assert raw["upload_url"] == f"http://testserver/slack/upload/{raw['file_id']}"
    assert api.post(f"/slack/upload/{raw['file_id']}", content=b"abc").text == "OK - 3"
    assert (
        api.post(f"/slack/upload/{multi['file_id']}", files={"file": ("b.csv", b"a,b\n", "text/csv")}).text == "OK - 4"
    )
    assert (
        api.post(f"/slack/upload/{raw['file_id']}", content=b"again").status_code == 404
    )  # an upload URL is used once
    assert call(api, "files.getUploadURLExternal", filename="x")["error"] == "invalid_arguments"
    files = json.dumps([{"id": raw["file_id"], "title": "A"}, {"id": multi["file_id"]}])
    done = api.post(
        "/slack/api/files.completeUploadExternal",
        headers=AUTH,
        data={"files": files, "channel_id": "C0REPORTS", "initial_comment": "two files"},
    ).json()
    assert done["ok"] and [(f["id"], f["title"], f["size"]) for f in done["files"]] == [
        (raw["file_id"], "A", 3),
        (multi["file_id"], "b.csv", 4),
    ]
    assert (
        call(api, "files.completeUploadExternal", files=[{"id": raw["file_id"]}], channel_id="C0REPORTS")["error"]
        == "file_not_found"
    )  # completed already
    (message,) = posted(api, "C0REPORTS")
    assert message["text"] == "two files" and [f["name"] for f in message["files"]] == ["a.txt", "b.csv"]
    assert [(f["filename"], f["channel"]) for f in api.get("/_sandbox/slack/files").json()] == [
        ("a.txt", "C0REPORTS"),
        ("b.csv", "C0REPORTS"),
    ]


def test_post_message_answers_channel_id_and_ts_and_is_listed(api: TestClient) -> None:
    first = call(api, "chat.postMessage", channel="#alerts", text="disk full", blocks=[section("*disk* full")])
    second = call(api, "chat.postMessage", channel="C0ALERTS", text="again")
    assert first["ok"] and first["channel"] == "C0ALERTS" and first["message"]["text"] == "disk full"
    assert float(second["ts"]) > float(first["ts"])
    (listed, _) = posted(api, "#alerts")
    assert listed == {
        **listed,
        "channel": "C0ALERTS",
        "ts": first["ts"],
        "text": "disk full",
        "blocks": [section("*disk* full")],
        "thread_ts": None,
        "via": "api",
    }
    assert posted(api, "C0CIFAIL") == []


@pytest.mark.parametrize(
    ("channel", "error"),
    [
        ("C0NOPE", "channel_not_found"),
        ("G0LEADS", "channel_not_found"),
        ("#random", "not_in_channel"),
        ("C0PRIVATE", "not_in_channel"),
        ("C0ARCHIVED", "is_archived"),
        ("", "channel_not_found"),
    ],
)
def test_channel_errors(api: TestClient, channel: str, error: str) -> None:
    assert call(api, "chat.postMessage", channel=channel, text="x") == {"ok": False, "error": error}


@pytest.mark.parametrize(
    ("blocks", "pointer"),
    [
        ([section("x")] * 51, "no more than 50 items allowed [json-pointer:/blocks]"),
        ([section("x" * 3001)], "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"),
        (
            [section("ok"), {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
            "must be less than 151 characters [json-pointer:/blocks/1/text/text]",
        ),
        (
            [{"type": "header", "text": {"type": "mrkdwn", "text": "*h*"}}],
            "must be a valid enum value [json-pointer:/blocks/0/text/type]",
        ),
        (
            [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
            "no more than 10 items allowed [json-pointer:/blocks/0/fields]",
        ),
        ([{"type": "paragraph", "text": "x"}], "must provide a valid block type [json-pointer:/blocks/0/type]"),
    ],
)
def test_block_kit_limits_give_invalid_blocks(api: TestClient, blocks: list[Any], pointer: str) -> None:
    answer = call(api, "chat.postMessage", channel="C0ALERTS", text="fallback", blocks=blocks)
    assert answer["ok"] is False and answer["error"] == "invalid_blocks"
    assert answer["errors"] == [pointer] and answer["response_metadata"]["messages"] == [f"[ERROR] {pointer}"]
    assert posted(api) == []


def test_blocks_at_the_limits_are_accepted(api: TestClient) -> None:
    header = {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}}
    assert call(api, "chat.postMessage", channel="C0ALERTS", text="t", blocks=[header] + [section("x" * 3000)] * 49)[
        "ok"
    ]


def test_text_rules_and_form_encoded_blocks(api: TestClient) -> None:
    assert call(api, "chat.postMessage", channel="C0ALERTS")["error"] == "no_text"
    assert call(api, "chat.postMessage", channel="C0ALERTS", text="x" * 40001)["error"] == "msg_too_long"
    form = {"channel": "C0ALERTS", "text": "t"}
    assert (
        api.post("/slack/api/chat.postMessage", headers=AUTH, data={**form, "blocks": "[{not json"}).json()["error"]
        == "invalid_blocks_format"
    )
    ok = api.post(
        "/slack/api/chat.postMessage", headers=AUTH, data={**form, "blocks": json.dumps([section("from a form")])}
    ).json()
    assert ok["ok"] and ok["message"]["blocks"] == [section("from a form")]


def test_update_and_thread_replies(api: TestClient) -> None:
    parent = call(api, "chat.postMessage", channel="C0CIFAIL", text="build 7 failed")
    reply = call(api, "chat.postMessage", channel="C0CIFAIL", text="log excerpt", thread_ts=parent["ts"])
    updated = call(api, "chat.update", channel="C0CIFAIL", ts=parent["ts"], text="build 7 failed (flaky)")
    assert updated["ok"] and updated["ts"] == parent["ts"] and updated["text"] == "build 7 failed (flaky)"
    thread = call(api, "conversations.replies", channel="C0CIFAIL", ts=parent["ts"])
    assert [m["text"] for m in thread["messages"]] == ["build 7 failed (flaky)", "log excerpt"]
    assert thread["messages"][0]["reply_count"] == 1 and thread["messages"][1]["thread_ts"] == parent["ts"]
    assert thread["has_more"] is False and thread["response_metadata"]["next_cursor"] == ""
    assert call(api, "conversations.replies", channel="C0CIFAIL", ts="1.000001")["error"] == "thread_not_found"
    assert call(api, "chat.update", channel="C0CIFAIL", ts="1.000001", text="x")["error"] == "message_not_found"
    assert [m["edited"] for m in posted(api, "C0CIFAIL")] == [True, False] and posted(api)[1]["thread_ts"] == parent[
        "ts"
    ]
    assert reply["message"]["thread_ts"] == parent["ts"]


def test_conversations_list_pages_with_cursors(api: TestClient) -> None:
    names, cursor, pages = [], "", 0
    while True:
        page = call(api, "conversations.list", types="public_channel,private_channel", limit=10, cursor=cursor)
        names += [c["name"] for c in page["channels"]]
        pages += 1
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert pages == 3 and len(names) == len(set(names)) == 30
    assert {"alerts", "ci-failures", "ops-private", "old-alerts"} <= set(names) and "leadership" not in names
    public = call(api, "conversations.list", limit=1000, exclude_archived=True)["channels"]
    assert {c["name"] for c in public} == set(names) - {"ops-private", "old-alerts"}
    assert call(api, "conversations.list", cursor="bogus")["error"] == "invalid_cursor"


def test_per_channel_rate_limit_is_off_by_default_then_answers_429(api: TestClient) -> None:
    assert all(call(api, "chat.postMessage", channel="C0ALERTS", text=str(i))["ok"] for i in range(10))
    assert api.post("/_sandbox/slack/rate-limit", json={"limit": 2, "window_seconds": 5}).json() == {
        "limit": 2,
        "window_seconds": 5,
    }
    assert (
        call(api, "chat.postMessage", channel="C0ALERTS", text="a")["ok"]
        and call(api, "chat.postMessage", channel="C0ALERTS", text="b")["ok"]
    )
    limited = api.post("/slack/api/chat.postMessage", headers=AUTH, json={"channel": "C0ALERTS", "text": "c"})
    assert (limited.status_code, limited.headers["Retry-After"], limited.json()) == (
        429,
        "5",
        {"ok": False, "error": "ratelimited"},
    )
    assert call(api, "chat.postMessage", channel="C0CIFAIL", text="other channel")["ok"]
    assert api.post(ALERTS_HOOK, json={"text": "hook"}).status_code == 429  # webhooks share the channel's limit
    api.post("/_sandbox/clock/advance", json={"seconds": 3})
    assert (
        api.post("/slack/api/chat.postMessage", headers=AUTH, json={"channel": "C0ALERTS", "text": "c"}).status_code
        == 429
    )
    api.post("/_sandbox/clock/advance", json={"seconds": 2})
    assert call(api, "chat.postMessage", channel="C0ALERTS", text="c")["ok"]
    api.post("/_sandbox/slack/rate-limit", json={"limit": None})
    assert all(call(api, "chat.postMessage", channel="C0ALERTS", text=str(i))["ok"] for i in range(5))


def test_injected_faults_use_slack_error_bodies(api: TestClient) -> None:
    api.post(
        "/_sandbox/faults",
        json={"system": "slack", "path": "chat.postMessage", "status": 429, "retry_after": 3, "times": 1},
    )
    api.post(
        "/_sandbox/faults", json={"system": "slack", "path": "auth.test", "status": 500, "message": "internal_error"}
    )
    limited = api.post("/slack/api/chat.postMessage", headers=AUTH, json={"channel": "C0ALERTS", "text": "x"})
    assert (limited.status_code, limited.headers["Retry-After"], limited.json()) == (
        429,
        "3",
        {"ok": False, "error": "ratelimited"},
    )
    failed = api.post("/slack/api/auth.test", headers=AUTH)
    assert (failed.status_code, failed.json()) == (500, {"ok": False, "error": "internal_error"})


# -- incoming webhooks -----------------------------------------------------------------------------
def test_seeded_webhook_path(api: TestClient) -> None:
    answer = api.post("/slack/services/T000/B000/XXXX", json={"blocks": [section("only blocks")]})
    assert (answer.status_code, answer.text) == (200, "ok")
    assert [(m["channel"], m["blocks"]) for m in posted(api)] == [("C0ALERTS", [section("only blocks")])]
    assert (
        api.post("/slack/services/T000/B999/XXXX", json={"text": "t"}).status_code,
        api.post("/slack/services/T000/B999/XXXX", json={"text": "t"}).text,
    ) == (404, "no_service")


def test_incoming_webhook_posts_to_its_fixed_channel(api: TestClient) -> None:
    answer = api.post(
        ALERTS_HOOK, json={"text": "deploy done", "channel": "#general", "username": "x", "blocks": [section("done")]}
    )
    assert (answer.status_code, answer.text) == (200, "ok")
    form = api.post(ALERTS_HOOK, data={"payload": json.dumps({"text": "as a form"})})
    assert (form.status_code, form.text) == (200, "ok")
    assert [(m["channel"], m["text"], m["via"], m["username"]) for m in posted(api)] == [
        ("C0ALERTS", "deploy done", "webhook", None),
        ("C0ALERTS", "as a form", "webhook", None),
    ]


@pytest.mark.parametrize(
    ("path", "body", "status", "text"),
    [
        (ALERTS_HOOK, b"{not json", 400, "invalid_payload"),
        (ALERTS_HOOK, b'{"username": "x"}', 400, "no_text"),
        (ALERTS_HOOK, json.dumps({"text": "t", "blocks": [section("x" * 3001)]}).encode(), 400, "invalid_blocks"),
        ("/slack/services/T0SANDBOX/B0ALERTS/wrong", b'{"text": "t"}', 403, "invalid_token"),
        ("/slack/services/T0SANDBOX/B0NOPE/x", b'{"text": "t"}', 404, "no_service"),
        ("/slack/services/T0SANDBOX/B0ARCHIVED/old-secret", b'{"text": "t"}', 410, "channel_is_archived"),
    ],
)
def test_incoming_webhook_errors_are_plain_text(
    api: TestClient, path: str, body: bytes, status: int, text: str
) -> None:
    answer = api.post(path, content=body, headers={"Content-Type": "application/json"})
    assert (answer.status_code, answer.text, answer.headers["content-type"].split(";")[0]) == (
        status,
        text,
        "text/plain",
    )
    assert posted(api) == []


def test_webhook_control_adds_a_hook(api: TestClient) -> None:
    hook = api.post("/_sandbox/slack/webhooks", json={"channel": "G0OPS"}).json()
    assert api.post(hook["path"], json={"text": "private"}).text == "ok"
    assert [m["text"] for m in posted(api, "ops-private")] == ["private"]


# -- real clients over HTTP ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(systems=["telegram", "slack"]) as srv:
        yield srv


@pytest.fixture()
def sb(server: SandboxServer) -> SandboxClient:
    client = SandboxClient(server.base_url)
    client.reset()
    return client


def web(sb: SandboxClient, **kw: Any) -> WebClient:
    return WebClient(token=TOKEN, base_url=sb.url("slack", "/api/"), **kw)


def sent(sb: SandboxClient, channel: str | None = None) -> list[dict[str, Any]]:
    return sb.control("slack", "GET", "/messages", params={"channel": channel} if channel else {})


def test_slack_sdk_posts_updates_and_walks_pages(sb: SandboxClient) -> None:
    client = web(sb)
    assert client.auth_test()["bot_id"] == "B0SANDBOXBOT"
    answer = client.chat_postMessage(channel="C0CIFAIL", text="CI failed", blocks=[section("*CI* failed")])
    client.chat_update(channel=answer["channel"], ts=answer["ts"], text="CI failed (retried)")
    assert [(m["text"], m["edited"]) for m in sent(sb, "C0CIFAIL")] == [("CI failed (retried)", True)]
    names = [c["name"] for page in client.conversations_list(limit=10) for c in page["channels"]]
    assert len(names) == 29 and "ci-failures" in names and "ops-private" not in names
    assert len(sb.requests(system="slack", path="conversations.list")) == 3
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C0ALERTS", text="t", blocks=[section("x" * 3001)])
    assert err.value.response["error"] == "invalid_blocks" and "3001" in err.value.response["errors"][0]
    sent_body = sb.requests(system="slack", path="chat.postMessage")[0]
    assert sent_body["headers"]["authorization"] == f"Bearer {TOKEN}"


def test_files_upload_v2_takes_three_calls_and_needs_a_channel_id(sb: SandboxClient) -> None:
    client = web(sb)
    html = "<html><body>weekly report</body></html>"
    done = client.files_upload_v2(
        channel="C0ALERTS", content=html, filename="report.html", title="Weekly", initial_comment="This week"
    )
    file_id = done["file"]["id"]
    assert [r["path"] for r in sb.requests(system="slack")] == [
        "/api/files.getUploadURLExternal",
        f"/upload/{file_id}",
        "/api/files.completeUploadExternal",
    ]
    (message,) = sent(sb, "C0ALERTS")
    assert (
        message["text"] == "This week"
        and message["via"] == "file"
        and message["files"] == [{"id": file_id, "name": "report.html", "title": "Weekly", "size": len(html)}]
    )
    download = requests.get(done["file"]["url_private"], headers=AUTH, timeout=10)
    assert (
        download.content.decode()
        == html
        == requests.get(f"{sb.base_url}/_sandbox/slack/files/{file_id}/content", timeout=10).text
    )
    with pytest.raises(SlackApiError) as err:
        client.files_upload_v2(channel="#alerts", content="x", filename="x.txt")
    assert err.value.response["error"] == "invalid_channel"
    with pytest.raises(SlackApiError) as err:
        client.files_upload_v2(channel="C0NOPE", content="x", filename="x.txt")
    assert err.value.response["error"] == "channel_not_found"
    (listed, _, _) = sb.control("slack", "GET", "/files")
    assert {k: listed[k] for k in ("id", "filename", "size", "title", "channel")} == {
        "id": file_id,
        "filename": "report.html",
        "size": len(html),
        "title": "Weekly",
        "channel": "C0ALERTS",
    }


def test_rate_limit_retry_handler_honours_retry_after(sb: SandboxClient) -> None:
    sb.control("slack", "POST", "/rate-limit", json={"limit": 1, "window_seconds": 1})
    plain = web(sb)
    plain.chat_postMessage(channel="C0ALERTS", text="first")
    with pytest.raises(SlackApiError) as err:
        plain.chat_postMessage(channel="C0ALERTS", text="too soon")  # slack_sdk does not retry 429 by default
    assert err.value.response.status_code == 429 and err.value.response["error"] == "ratelimited"
    patient = web(sb, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)])
    t0 = time.monotonic()
    assert patient.chat_postMessage(channel="C0ALERTS", text="after waiting")["ok"]
    assert time.monotonic() - t0 >= 0.9
    assert [m["text"] for m in sent(sb, "C0ALERTS")] == ["first", "after waiting"]


def test_injected_429_is_retried_by_the_rate_limit_handler(sb: SandboxClient) -> None:
    sb.fault(system="slack", path="/api/chat.postMessage", status=429, retry_after=1, times=1)
    client = web(sb, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])
    t0 = time.monotonic()
    answer = client.chat_postMessage(channel="C0ALERTS", text="after the 429", blocks=[section("after the 429")])
    assert answer["ok"] and time.monotonic() - t0 >= 0.9
    assert [r["status"] for r in sb.requests(system="slack", path="chat.postMessage")] == [429, 200]
    assert [m["text"] for m in sent(sb, "C0ALERTS")] == ["after the 429"]


def test_airflow_slack_hook_uses_the_connection_base_url(sb: SandboxClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.slack.hooks.slack import SlackHook

    conn = {"conn_type": "slack", "password": TOKEN, "extra": {"base_url": sb.url("slack", "/api/")}}
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_SANDBOX", json.dumps(conn))
    hook = SlackHook(slack_conn_id="slack_sandbox", retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=3)])
    assert hook.get_channel_id("ci-failures") == "C0CIFAIL"
    hook.call(
        "chat.postMessage", json={"channel": "C0CIFAIL", "text": "from the hook", "blocks": [section("from the hook")]}
    )
    hook.send_file_v2(
        channel_id="C0CIFAIL",
        file_uploads={"content": "# Report\n", "filename": "report.md", "title": "Report"},
        initial_comment="attached",
    )
    assert [(m["text"], [f["name"] for f in m["files"]]) for m in sent(sb, "C0CIFAIL")] == [
        ("from the hook", []),
        ("attached", ["report.md"]),
    ]


def test_webhook_clients(sb: SandboxClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    answer = WebhookClient(sb.base_url + ALERTS_HOOK).send(text="via slack_sdk")
    assert (answer.status_code, answer.body) == (200, "ok")
    missing = WebhookClient(sb.url("slack", "/services/T000/B999/nope")).send(text="x")
    assert (missing.status_code, missing.body) == (404, "no_service")
    conn = {
        "conn_type": "slackwebhook",
        "host": sb.url("slack", "/services"),
        "password": "T0SANDBOX/B0ALERTS/alerts-secret",
    }
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_WEBHOOK_SANDBOX", json.dumps(conn))
    SlackWebhookHook(slack_webhook_conn_id="slack_webhook_sandbox").send(text="via the Airflow hook")
    assert [m["text"] for m in sent(sb, "C0ALERTS")] == ["via slack_sdk", "via the Airflow hook"]
