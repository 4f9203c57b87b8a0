"""Telegram sandbox: Bot API rules (TestClient), then python-telegram-bot and the provider's TelegramHook over HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import telegram
from fastapi.testclient import TestClient
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter

from include.sandbox.app import create_app
from include.sandbox.client import SandboxClient, SandboxServer
from include.sandbox.systems import telegram as tg

TOKEN = "123456:ABC-sandbox"
ALERTS = -1001234567890
BOT = f"/telegram/bot{TOKEN}"


def png(width: int, height: int) -> bytes:
    """A valid RGB PNG of the given size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80\x80\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture()
def api() -> TestClient:
    return TestClient(create_app(systems=["telegram"]))


def send(api: TestClient, text: str, chat_id: Any = ALERTS, **params: Any) -> tuple[int, dict[str, Any]]:
    response = api.post(f"{BOT}/sendMessage", data={"chat_id": str(chat_id), "text": text, **params})
    return response.status_code, response.json()


def bad(description: str) -> tuple[int, dict[str, Any]]:
    return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {description}"}


def sent(api: TestClient, chat_id: Any = ALERTS) -> list[dict[str, Any]]:
    return api.get("/_sandbox/telegram/messages", params={"chat_id": chat_id}).json()


# -- Bot API rules ---------------------------------------------------------------------------------
def test_tokens_and_methods(api: TestClient) -> None:
    me = api.get(f"{BOT}/getMe").json()
    assert (
        me["ok"]
        and me["result"]["id"] == 123456
        and me["result"]["is_bot"] is True
        and me["result"]["username"] == "sandbox_bot"
    )
    assert api.post(f"{BOT}/GETME").json()["ok"]  # method names are case-insensitive
    assert api.get("/telegram/bot999:WRONG/getMe").json() == {
        "ok": False,
        "error_code": 401,
        "description": "Unauthorized",
    }
    malformed = api.get("/telegram/botnot-a-token/getMe")
    assert (malformed.status_code, malformed.json()["description"]) == (404, "Not Found")
    assert api.post(f"{BOT}/sendSticker").status_code == 404


def test_tokens_control_replaces_the_valid_tokens(api: TestClient) -> None:
    assert api.put("/_sandbox/telegram/tokens", json={"tokens": ["42:NEW-token"]}).json() == {
        "tokens": ["42:NEW-token"]
    }
    assert api.get(f"{BOT}/getMe").status_code == 401
    assert api.get("/telegram/bot42:NEW-token/getMe").json()["ok"] is True


def test_json_bodies_and_the_messages_control(api: TestClient) -> None:
    answer = api.post(
        f"{BOT}/sendMessage",
        json={
            "chat_id": 555000111,
            "text": "<i>hi</i>",
            "parse_mode": "HTML",
            "disable_notification": True,
            "link_preview_options": {"is_disabled": True},
            "reply_parameters": {"message_id": 1},
        },
    )
    assert answer.status_code == 200 and answer.json()["result"]["chat"] == {
        "id": 555000111,
        "type": "private",
        "first_name": "Alice",
        "username": "alice_ops",
    }
    second = api.get(f"{BOT}/sendMessage", params={"chat_id": 555000111, "text": "again"}).json()["result"]
    assert second["message_id"] == answer.json()["result"]["message_id"] + 1
    api.post(
        f"{BOT}/sendDocument",
        data={"chat_id": "555000111", "caption": "c"},
        files={"document": ("a.txt", b"abc", "text/plain")},
    )
    listed = sent(api, 555000111)
    assert [
        (m["chat_id"], m["message_id"], m["method"], m.get("text") or m.get("caption"), m["parse_mode"]) for m in listed
    ] == [
        (555000111, 1, "sendMessage", "hi", "HTML"),
        (555000111, 2, "sendMessage", "again", None),
        (555000111, 3, "sendDocument", "c", None),
    ]
    assert (
        (listed[2]["filename"], listed[2]["size"]) == ("a.txt", 3)
        and listed[0]["ts"] <= listed[2]["ts"]
        and listed[0]["disable_notification"]
    )
    assert sent(api) == [] and len(api.get("/_sandbox/telegram/messages").json()) == 3


def test_text_length_is_counted_after_parsing(api: TestClient) -> None:
    status, answer = send(api, "<b>" + "x" * 4000 + "</b>" + "&lt;" * 96, parse_mode="HTML")
    assert status == 200 and len(answer["result"]["text"]) == 4096
    assert answer["result"]["entities"] == [{"type": "bold", "offset": 0, "length": 4000}]
    assert send(api, "x" * 4097) == bad("message is too long")
    assert send(api, "") == bad("message text is empty")
    assert send(api, "<b> </b>", parse_mode="HTML") == bad("message text is empty")
    (listed,) = sent(api)
    assert listed["parse_mode"] == "HTML" and listed["raw_text"].startswith("<b>xxx") and listed["text"].endswith("<<<")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("<b>unclosed", 'Can\'t find end tag corresponding to start tag "b"'),
        ("line<br>next", 'Unsupported start tag "br" at byte offset 4'),
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("done</b>", "Unexpected end tag at byte offset 4"),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("é<b", "Unclosed start tag at byte offset 2"),
        ('<a href="x"', "Unclosed start tag at byte offset 0"),
    ],
)
def test_malformed_html_cannot_be_parsed(api: TestClient, text: str, error: str) -> None:
    assert send(api, text, parse_mode="HTML") == bad(f"can't parse entities: {error}")
    assert sent(api) == []


def test_html_entities_and_tags_as_telegram_reads_them(api: TestClient) -> None:
    text = (
        '<b>R&D</b> &amp; &#916; &nbsp; <a href="https://ci.example/1?a=1&amp;b=2">run</a> '
        '<pre><code class="language-python">x = 1</code></pre>'
    )
    status, answer = send(api, text, parse_mode="html")
    assert status == 200 and answer["result"]["text"] == "R&D & Δ &nbsp; run x = 1"
    assert answer["result"]["entities"] == [
        {"type": "bold", "offset": 0, "length": 3},
        {"type": "text_link", "offset": 15, "length": 3, "url": "https://ci.example/1?a=1&b=2"},
        {"type": "pre", "offset": 19, "length": 5, "language": "python"},
    ]


@pytest.mark.parametrize("mode", ["MarkdownV2", "Markdown", "markdownv2"])
def test_markdown_parse_modes_are_refused_not_passed_unchecked(api: TestClient, mode: str) -> None:
    assert send(api, "*Build 1.2* failed", parse_mode=mode) == bad(
        f"sandbox: parse_mode {mode} is not supported by the sandbox (it checks HTML only)"
    )
    caption = api.post(
        f"{BOT}/sendDocument",
        data={"chat_id": str(ALERTS), "caption": "*c*", "parse_mode": mode},
        files={"document": ("a.txt", b"abc", "text/plain")},
    )
    assert (caption.status_code, caption.json()["description"]) == (
        400,
        f"Bad Request: sandbox: parse_mode {mode} is not supported by the sandbox (it checks HTML only)",
    )
    assert sent(api) == []


def test_unknown_parse_mode_is_unsupported(api: TestClient) -> None:
    assert send(api, "x", parse_mode="Textile") == bad("unsupported parse_mode")


def test_chats(api: TestClient) -> None:
    assert send(api, "hi", chat_id=-100999) == bad("chat not found")
    assert send(api, "hi", chat_id="") == bad("chat_id is empty")
    assert send(api, "hi", chat_id=555000222) == (
        403,
        {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"},
    )
    assert (
        send(api, "hi", chat_id=-1002222222222)[1]["description"]
        == "Forbidden: bot was kicked from the supergroup chat"
    )
    status, answer = send(api, "announcement", chat_id="@devops_announce")
    assert status == 200 and answer["result"]["chat"] == {
        "id": -1001111111111,
        "type": "channel",
        "title": "DevOps announcements",
        "username": "devops_announce",
    }
    assert send(api, "topic", chat_id=-1009876543210, message_thread_id="7") == bad("message thread not found")
    status, answer = send(api, "topic", chat_id=-1009876543210, message_thread_id="42")
    assert status == 200 and answer["result"]["message_thread_id"] == 42
    api.post("/_sandbox/telegram/chats", json={"id": -100777, "title": "New group"})
    assert send(api, "hello", chat_id=-100777)[0] == 200


def test_link_preview_options_with_or_without_the_old_flag(api: TestClient) -> None:
    assert send(api, "a", link_preview_options='{"is_disabled": true}', disable_web_page_preview="true")[0] == 200
    assert send(api, "b", link_preview_options="{nope") == bad("can't parse link preview options JSON object")
    assert sent(api)[0]["link_preview_options"] == {"is_disabled": True}


def test_documents_and_photos(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    html = b"<html>weekly</html>"
    doc = api.post(
        f"{BOT}/sendDocument",
        data={"chat_id": str(ALERTS), "caption": "<b>Weekly</b> report", "parse_mode": "HTML"},
        files={"document": ("report.html", html, "text/html")},
    ).json()
    assert doc["result"]["document"]["file_name"] == "report.html" and doc["result"]["document"]["file_size"] == len(
        html
    )
    assert doc["result"]["caption"] == "Weekly report" and doc["result"]["caption_entities"] == [
        {"type": "bold", "offset": 0, "length": 6}
    ]
    file_id = doc["result"]["document"]["file_id"]
    again = api.post(f"{BOT}/sendDocument", data={"chat_id": str(ALERTS), "document": file_id}).json()
    assert again["result"]["document"]["file_id"] == file_id  # a file_id is re-sent without an upload
    path = api.post(f"{BOT}/getFile", data={"file_id": file_id}).json()["result"]["file_path"]
    assert (
        api.get(f"/telegram/file/bot{TOKEN}/{path}").content
        == html
        == api.get(f"/_sandbox/telegram/files/{file_id}/content").content
    )
    photo = api.post(
        f"{BOT}/sendPhoto",
        data={"chat_id": str(ALERTS), "caption": "chart"},
        files={"photo": ("chart.png", png(1600, 800), "image/png")},
    ).json()
    assert [(p["width"], p["height"]) for p in photo["result"]["photo"]] == [(90, 45), (1280, 640)]
    assert [(m["type"], (m.get("document") or m.get("photo"))["filename"]) for m in sent(api)] == [
        ("document", "report.html"),
        ("document", "report.html"),
        ("photo", "chart.png"),
    ]
    assert sent(api)[2]["photo"]["width"] == 1600

    def upload(method: str, field: str, content: bytes, **data: str) -> tuple[int, dict[str, Any]]:
        response = api.post(
            f"{BOT}/{method}", data={"chat_id": str(ALERTS), **data}, files={field: ("f.png", content, "image/png")}
        )
        return response.status_code, response.json()

    assert upload("sendDocument", "document", b"x", caption="c" * 1025) == bad("message caption is too long")
    assert upload("sendPhoto", "photo", b"not an image") == bad("IMAGE_PROCESS_FAILED")
    assert upload("sendPhoto", "photo", png(9000, 1001)) == bad("PHOTO_INVALID_DIMENSIONS")
    assert upload("sendPhoto", "photo", png(2100, 100)) == bad("PHOTO_INVALID_DIMENSIONS")  # aspect ratio over 20
    assert (
        api.post(f"{BOT}/sendDocument", data={"chat_id": str(ALERTS)}).json()["description"]
        == "Bad Request: there is no document in the request"
    )
    assert (
        api.post(f"{BOT}/sendDocument", data={"chat_id": str(ALERTS), "document": "no-such-id"}).json()["description"]
        == "Bad Request: wrong file identifier/HTTP URL specified"
    )
    monkeypatch.setattr(tg, "MAX_UPLOAD", 10)
    monkeypatch.setattr(tg, "MAX_PHOTO", 10)
    assert upload("sendDocument", "document", b"x" * 11) == bad("file is too big")
    assert upload("sendPhoto", "photo", png(2, 2)) == bad("file is too big")


def test_image_sizes_of_png_gif_and_jpeg() -> None:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, 480, 640, 3) + b"\x00" * 9
    assert tg.image_size(b"\xff\xd8" + app0 + sof0) == (640, 480)
    assert tg.image_size(b"GIF89a" + struct.pack("<HH", 32, 16)) == (32, 16)
    assert tg.image_size(png(3, 2)) == (3, 2)
    assert tg.image_size(b"%PDF-1.7") is None


def test_flood_control_per_chat_is_off_by_default(api: TestClient) -> None:
    assert all(send(api, str(i))[0] == 200 for i in range(10))
    assert api.post("/_sandbox/telegram/flood", json={"limit": 2, "window_seconds": 10}).json() == {
        "limit": 2,
        "window_seconds": 10,
    }
    assert send(api, "a")[0] == send(api, "b")[0] == 200
    limited = api.post(f"{BOT}/sendMessage", data={"chat_id": str(ALERTS), "text": "c"})
    expected = {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 10",
        "parameters": {"retry_after": 10},
    }
    assert (limited.status_code, limited.json(), limited.headers["Retry-After"]) == (429, expected, "10")
    assert send(api, "other chat", chat_id=555000111)[0] == 200
    api.post("/_sandbox/clock/advance", json={"seconds": 6})
    assert send(api, "c")[0] == 429  # both sends are still inside the 10 s window
    api.post("/_sandbox/clock/advance", json={"seconds": 4})
    assert send(api, "c")[0] == 200
    assert [m["text"] for m in sent(api)][-3:] == ["a", "b", "c"]
    api.post("/_sandbox/telegram/flood", json={"limit": None})
    assert all(send(api, str(i))[0] == 200 for i in range(5))


def test_injected_faults_use_the_bot_api_error_format(api: TestClient) -> None:
    api.post(
        "/_sandbox/faults",
        json={"system": "telegram", "path": "/sendMessage$", "status": 429, "retry_after": 3, "times": 1},
    )
    api.post(
        "/_sandbox/faults", json={"system": "telegram", "path": "/getMe$", "status": 502, "message": "Bad Gateway"}
    )
    assert send(api, "x") == (
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 3",
            "parameters": {"retry_after": 3},
        },
    )
    assert api.get(f"{BOT}/getMe").json() == {"ok": False, "error_code": 502, "description": "Bad Gateway"}


# -- python-telegram-bot and the Airflow provider over HTTP ----------------------------------------
@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(systems=["telegram", "slack"]) as srv:
        yield srv


@pytest.fixture()
def sb(server: SandboxServer) -> SandboxClient:
    client = SandboxClient(server.base_url)
    client.reset()
    return client


def bot(sb: SandboxClient, token: str = TOKEN) -> telegram.Bot:
    return telegram.Bot(token, base_url=sb.url("telegram", "/bot"), base_file_url=sb.url("telegram", "/file/bot"))


def messages(sb: SandboxClient, chat_id: Any = ALERTS) -> list[dict[str, Any]]:
    return sb.control("telegram", "GET", "/messages", params={"chat_id": chat_id})


def test_python_telegram_bot_sends_text_files_and_photos(sb: SandboxClient) -> None:
    async def scenario() -> bytes:
        async with bot(sb) as b:
            message = await b.send_message(
                ALERTS,
                "<b>build</b> failed: <code>a &lt; b</code>",
                parse_mode="HTML",
                link_preview_options=telegram.LinkPreviewOptions(is_disabled=True),
            )
            assert message.text == "build failed: a < b" and message.entities[0].type == "bold"
            document = await b.send_document(ALERTS, document=b"# Report\n", filename="report.md", caption="weekly")
            await b.send_photo(ALERTS, photo=png(64, 32), caption="<i>chart</i>", parse_mode="HTML")
            file = await b.get_file(document.document.file_id)
            return bytes(await file.download_as_bytearray())

    assert asyncio.run(scenario()) == b"# Report\n"
    assert [(m["type"], m.get("text") or m.get("caption")) for m in messages(sb)] == [
        ("text", "build failed: a < b"),
        ("document", "weekly"),
        ("photo", "chart"),
    ]
    assert all(TOKEN not in r["body"] for r in sb.requests(system="telegram"))  # the token travels in the URL only


def test_python_telegram_bot_raises_typed_errors(sb: SandboxClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "PTB_TIMEDELTA", "1"
    )  # RetryAfter.retry_after as a timedelta (PTB 22.2+; no deprecation warning)
    sb.control("telegram", "POST", "/flood", json={"limit": 1, "window_seconds": 30})

    async def scenario() -> None:
        async with bot(sb) as b:
            with pytest.raises(BadRequest, match="Chat not found"):
                await b.send_message(-100999, "x")
            with pytest.raises(BadRequest, match="Can't parse entities: can't find end tag"):
                await b.send_message(ALERTS, "<b>unclosed", parse_mode="HTML")
            with pytest.raises(
                BadRequest, match=r"(?i)parse_mode MarkdownV2 is not supported by the sandbox"
            ):  # PTB capitalize()s descriptions
                await b.send_message(ALERTS, "v1.2", parse_mode="MarkdownV2")
            with pytest.raises(Forbidden, match="blocked by the user"):
                await b.send_message(555000222, "x")
            with pytest.raises(ValueError):  # both preview options: PTB refuses before sending
                await b.send_message(
                    ALERTS,
                    "x",
                    disable_web_page_preview=True,
                    link_preview_options=telegram.LinkPreviewOptions(is_disabled=True),
                )
            await b.send_message(ALERTS, "first")
            with pytest.raises(RetryAfter) as flood:
                await b.send_message(ALERTS, "second")
            assert flood.value.retry_after == dt.timedelta(seconds=30)
        with pytest.raises(InvalidToken):
            await bot(sb, "123456:WRONG").get_me()

    asyncio.run(scenario())
    assert [m["text"] for m in messages(sb)] == ["first"]


def test_provider_telegram_hook(sb: SandboxClient, tmp_path: Path) -> None:
    from airflow.providers.telegram.hooks.telegram import TelegramHook

    def hook() -> TelegramHook:
        """A hook per call: one Bot reused across the provider's asyncio.run calls keeps a connection of
        the closed loop, the next request reaches the server, then fails and is retried (sent twice)."""
        h = TelegramHook(telegram_conn_id=None, token=TOKEN, chat_id=str(ALERTS))
        h.connection = bot(sb)  # the provider builds telegram.Bot(token) with no base_url
        return h

    hook().send_message({"text": "<b>deploy</b> done"})
    report = tmp_path / "report.html"
    report.write_text("<html>r</html>")
    hook().send_file({"file": str(report), "caption": "report"})
    text, document = messages(sb)
    assert (text["type"], text["parse_mode"], text["text"], text["link_preview_options"]) == (
        "text",
        "HTML",
        "deploy done",
        {"is_disabled": True},
    )
    assert (document["type"], document["caption"], document["document"]["filename"], document["document"]["size"]) == (
        "document",
        "report",
        "report.html",
        14,
    )
