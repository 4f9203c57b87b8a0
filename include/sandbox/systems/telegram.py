"""Telegram Bot API stand-in (telegram.md §5.1): getMe, sendMessage, sendDocument, sendPhoto, getFile.

Clients: ``telegram.Bot("123456:ABC-sandbox", base_url="http://127.0.0.1:PORT/telegram/bot",
base_file_url="http://127.0.0.1:PORT/telegram/file/bot")``; PTB appends the token, so requests go
to ``/telegram/bot<token>/<method>`` (GET or POST; query, form, multipart or JSON parameters) and
downloads to ``/telegram/file/bot<token>/<file_path>``. A malformed token is 404 "Not Found", an
unknown one 401 "Unauthorized"; errors are ``{"ok": false, "error_code": N, "description": "..."}``
and flood control is 429 ``"Too Many Requests: retry after N"`` with ``parameters.retry_after``.

Text is checked like Telegram does after entity parsing (the parser follows tdlib's, with its error
wording): 1..4096 characters for messages, at most 1024 for captions; ``parse_mode`` HTML (unknown
or unclosed tags fail, ``&`` that starts no known entity stays literal as in Telegram) or none. The
product sends HTML only, so MarkdownV2 and legacy Markdown are answered 400 ``Bad Request: sandbox:
parse_mode ... is not supported by the sandbox`` instead of being passed unchecked. Uploads: documents
up to 50 MB, photos up to 10 MB and at most 10000 for width + height with an aspect ratio of at most
20 (PNG, JPEG or GIF).

Seeded chats: ``-1001234567890`` "Alerts" (supergroup), ``-1009876543210`` "CI failures" (forum
supergroup, topics 1 and 42), ``-1001111111111`` channel ``@devops_announce``, ``555000111`` a user
chat, ``555000222`` a user who blocked the bot and ``-1002222222222`` a group the bot was kicked
from (both 403). Per-chat flood control is off until ``POST /_sandbox/telegram/flood`` sets it.
"""

from __future__ import annotations

import itertools
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AliasChoices, BaseModel, Field

from include.sandbox.systems._common import (
    ApiError,
    ErrorRoute,
    Params,
    SlidingWindow,
    Upload,
    read_params,
    retry_after_seconds,
)

NAME = "telegram"
PREFIX = "/telegram"
BOT_TOKEN = "123456:ABC-sandbox"
BOT_USER: dict[str, Any] = {
    "id": 123456,
    "is_bot": True,
    "first_name": "DevOps Sandbox",
    "username": "sandbox_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
    "can_connect_to_business": False,
    "has_main_web_app": False,
}
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_UPLOAD = 50 * 1024 * 1024
MAX_PHOTO = 10 * 1024 * 1024
MAX_DOWNLOAD = 20 * 1024 * 1024
_TOKEN_FORMAT = re.compile(r"^\d+:[A-Za-z0-9_-]+$")


# -- errors ----------------------------------------------------------------------------------------
class TelegramError(ApiError):
    """A Bot API error; 429 carries ``parameters.retry_after`` (and a Retry-After header)."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after

    def response(self) -> Response:
        body: dict[str, Any] = {"ok": False, "error_code": self.status, "description": self.description}
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
            headers["Retry-After"] = str(self.retry_after)
        return JSONResponse(body, status_code=self.status, headers=headers)


def bad_request(detail: str) -> TelegramError:
    return TelegramError(400, f"Bad Request: {detail}")


def too_many_requests(wait: float) -> TelegramError:
    seconds = retry_after_seconds(wait)
    return TelegramError(429, f"Too Many Requests: retry after {seconds}", retry_after=seconds)


def error_response(status: int, message: str, retry_after: float | None) -> Response:
    """Injected faults in the Bot API's format (429: ``retry after N``, 1 s when not given)."""
    if status == 429:
        return too_many_requests(retry_after if retry_after is not None else 1).response()
    return TelegramError(status, message).response()


# -- entity parsing (tdlib's parse_html) -----------------------------------------------------------
class EntityError(ValueError):
    """Text that Telegram cannot parse; the message is tdlib's."""


@dataclass
class Parsed:
    text: str
    entities: list[dict[str, Any]] = field(default_factory=list)


class _Builder:
    """Plain text under construction, with entity offsets in UTF-16 code units as Telegram counts them."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.utf16 = 0
        self.entities: list[dict[str, Any]] = []

    def add(self, s: str) -> None:
        self.parts.append(s)
        self.utf16 += len(s.encode("utf-16-le")) // 2

    def entity(self, kind: str, start: int, **extra: Any) -> None:
        if self.utf16 > start:
            self.entities.append({"type": kind, "offset": start, "length": self.utf16 - start, **extra})

    def result(self) -> Parsed:
        return Parsed("".join(self.parts), sorted(self.entities, key=lambda e: (e["offset"], -e["length"])))


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


_HTML_TAGS = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "tg-spoiler": "spoiler",
    "span": "spoiler", "a": "text_link", "code": "code", "pre": "pre", "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}  # fmt: skip
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _html_entity(text: str, i: int) -> tuple[str, int] | None:
    """Decode the HTML entity at ``text[i] == "&"`` like tdlib: None leaves the "&" literal."""
    j = i + 1
    if text[j : j + 1] == "#":
        j += 1
        hexadecimal = text[j : j + 1] == "x"
        j += hexadecimal
        start = j
        while j < len(text) and (text[j] in "0123456789abcdefABCDEF" if hexadecimal else text[j].isdigit()):
            j += 1
        code = int(text[start:j], 16 if hexadecimal else 10) if j > start else 0
        if code == 0 or code >= 0x10FFFF or j - i >= 10:
            return None
        char = chr(code)
    else:
        while j < len(text) and text[j].isascii() and text[j].isalpha():
            j += 1
        if text[i + 1 : j] not in _NAMED_ENTITIES:
            return None
        char = _NAMED_ENTITIES[text[i + 1 : j]]
    return char, j + 1 if text[j : j + 1] == ";" else j


def parse_html(text: str) -> Parsed:
    out = _Builder()
    stack: list[tuple[str, int, dict[str, str]]] = []  # tag, utf16 start, attributes
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "&" and (decoded := _html_entity(text, i)):
            out.add(decoded[0])
            i = decoded[1]
            continue
        if c != "<":
            out.add(c)
            i += 1
            continue
        begin = i
        if text[i + 1 : i + 2] == "/":
            if not stack:
                raise EntityError(f"Unexpected end tag at byte offset {_byte_offset(text, begin)}")
            j = i + 2
            while j < n and not text[j].isspace() and text[j] != ">":
                j += 1
            end_name = text[i + 2 : j].lower()
            while j < n and text[j].isspace():
                j += 1
            if j >= n or text[j] != ">":
                raise EntityError(f"Unclosed end tag at byte offset {_byte_offset(text, begin)}")
            tag, start, attrs = stack.pop()
            if end_name and end_name != tag:
                raise EntityError(
                    f"Unmatched end tag at byte offset {_byte_offset(text, begin)}, "
                    f'expected "</{tag}>", found "</{end_name}>"'
                )
            _close_html(out, tag, start, attrs, text)
            i = j + 1
            continue
        j = i + 1
        while j < n and not text[j].isspace() and text[j] != ">":
            j += 1
        if j >= n:
            raise EntityError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
        tag = text[i + 1 : j].lower()
        if tag not in _HTML_TAGS:
            raise EntityError(f'Unsupported start tag "{tag}" at byte offset {_byte_offset(text, begin)}')
        attrs, i = _html_attributes(text, j, tag, begin)
        stack.append((tag, out.utf16, attrs))
    if stack:
        raise EntityError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return out.result()


def _html_attributes(text: str, j: int, tag: str, begin: int) -> tuple[dict[str, str], int]:
    """Parse the attributes of a start tag from ``j`` to its ``>``; return them and the index after it."""
    attrs: dict[str, str] = {}
    n = len(text)
    while True:
        while j < n and text[j].isspace():
            j += 1
        if j >= n:
            raise EntityError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
        if text[j] == ">":
            return attrs, j + 1
        start = j
        while j < n and not text[j].isspace() and text[j] not in "=>":
            j += 1
        name = text[start:j].lower()
        while j < n and text[j].isspace():
            j += 1
        if tag == "blockquote" and name == "expandable" and text[j : j + 1] != "=":
            attrs[name] = ""
            continue
        if not name or text[j : j + 1] != "=":
            raise EntityError(
                f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                f"at byte offset {_byte_offset(text, begin)}"
            )
        j += 1
        while j < n and text[j].isspace():
            j += 1
        if j >= n:
            raise EntityError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
        value: list[str] = []
        if text[j] in "'\"":
            quote = text[j]
            j += 1
            while j < n and text[j] != quote:
                if text[j] == "&" and (decoded := _html_entity(text, j)):
                    value.append(decoded[0])
                    j = decoded[1]
                    continue
                value.append(text[j])
                j += 1
            j += 1
        else:
            start = j
            while j < n and (text[j].isalnum() or text[j] in ".-"):
                j += 1
            value.append(text[start:j].lower())
            if j < n and not text[j].isspace() and text[j] != ">":
                raise EntityError(f"Unexpected end of name token at byte offset {_byte_offset(text, start)}")
        attrs[name] = "".join(value)


def _close_html(out: _Builder, tag: str, start: int, attrs: dict[str, str], text: str) -> None:
    kind = _HTML_TAGS[tag]
    if tag == "span" and attrs.get("class") != "tg-spoiler":
        return  # a span without the spoiler class is no entity
    if kind == "text_link":
        url = attrs.get("href") or "".join(out.parts)[start:]
        out.entity(kind, start, url=url)
    elif kind == "code" and attrs.get("class", "").startswith("language-"):
        out.entity("pre", start, language=attrs["class"].removeprefix("language-"))
    elif kind == "pre" and any(
        e["type"] == "pre" and e["offset"] == start and e["offset"] + e["length"] == out.utf16 for e in out.entities
    ):
        return  # <pre><code class="language-x">: one pre entity, with the code's language
    elif kind == "blockquote" and "expandable" in attrs:
        out.entity("expandable_blockquote", start)
    elif kind == "custom_emoji":
        out.entity(kind, start, custom_emoji_id=attrs.get("emoji-id", ""))
    else:
        out.entity(kind, start)


#: Parse modes Telegram knows but the sandbox does not check (the product sends HTML only): refused
#: rather than accepted unchecked, so that nothing comes to rely on them silently.
UNCHECKED_PARSE_MODES = frozenset({"markdownv2", "markdown"})


def parse_text(text: str, parse_mode: str | None) -> Parsed:
    """Plain text and entities of ``text`` under ``parse_mode`` (None/empty: as is; only HTML is parsed)."""
    if not parse_mode:
        return Parsed(text)
    mode = parse_mode.lower()
    if mode in UNCHECKED_PARSE_MODES:
        raise bad_request(f"sandbox: parse_mode {parse_mode} is not supported by the sandbox (it checks HTML only)")
    if mode != "html":
        raise bad_request("unsupported parse_mode")
    try:
        return parse_html(text)
    except EntityError as exc:
        raise bad_request(f"can't parse entities: {exc}") from None


# -- images ----------------------------------------------------------------------------------------
def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, GIF or JPEG image, None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(data) and data[i] == 0xFF:
            marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return width, height
            i += 2 + length
    return None


# -- state -----------------------------------------------------------------------------------------
@dataclass
class Chat:
    id: int
    type: str  # private | group | supergroup | channel
    title: str = ""
    username: str | None = None
    is_forum: bool = False
    topics: set[int] = field(default_factory=set)
    status: str = "member"  # member | kicked (groups) | blocked (private chats)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.type == "private":
            out["first_name"] = self.title
        else:
            out["title"] = self.title
        if self.username:
            out["username"] = self.username
        if self.is_forum:
            out["is_forum"] = True
        return out


@dataclass
class StoredFile:
    file_id: str
    unique_id: str
    kind: str  # "documents" | "photos"
    name: str
    mime_type: str
    data: bytes | None  # None for a document sent by URL (not downloaded)
    url: str | None = None

    @property
    def path(self) -> str:
        return f"{self.kind}/{self.unique_id}_{self.name}"


@dataclass
class TelegramState:
    now: Callable[[], float]
    tokens: set[str] = field(default_factory=lambda: {BOT_TOKEN})
    chats: dict[int, Chat] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)  # what the control route lists
    files: dict[str, StoredFile] = field(default_factory=dict)
    flood: SlidingWindow | None = None  # per chat id
    message_ids: dict[int, Iterator[int]] = field(default_factory=dict)  # per chat
    file_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))


def make_state(seed: int, sandbox: Any) -> TelegramState:
    chats = [
        Chat(-1001234567890, "supergroup", "Alerts"),
        Chat(-1009876543210, "supergroup", "CI failures", is_forum=True, topics={1, 42}),
        Chat(-1001111111111, "channel", "DevOps announcements", username="devops_announce"),
        Chat(555000111, "private", "Alice", username="alice_ops"),
        Chat(555000222, "private", "Bob", status="blocked"),
        Chat(-1002222222222, "supergroup", "Old team", status="kicked"),
    ]
    return TelegramState(now=lambda: sandbox.clock.now(), chats={c.id: c for c in chats})


def _state(request: Request) -> TelegramState:
    return request.app.state.sandbox.state(NAME)


# -- request helpers -------------------------------------------------------------------------------
def _authenticate(request: Request, token: str) -> TelegramState:
    if not _TOKEN_FORMAT.match(token):
        raise TelegramError(404, "Not Found")
    state = _state(request)
    if token not in state.tokens:
        raise TelegramError(401, "Unauthorized")
    return state


def _chat(state: TelegramState, params: Params) -> Chat:
    ref = str(params.get("chat_id") or "").strip()
    if not ref:
        raise bad_request("chat_id is empty")
    if ref.startswith("@"):
        chat = next((c for c in state.chats.values() if c.username and c.username.lower() == ref[1:].lower()), None)
    else:
        chat = state.chats.get(int(ref)) if re.fullmatch(r"-?\d+", ref) else None
    if chat is None:
        raise bad_request("chat not found")
    if chat.status == "blocked":
        raise TelegramError(403, "Forbidden: bot was blocked by the user")
    if chat.status == "kicked":
        raise TelegramError(403, f"Forbidden: bot was kicked from the {chat.type} chat")
    thread = str(params.get("message_thread_id") or "")
    if thread and (not thread.isdigit() or (chat.is_forum and int(thread) not in chat.topics)):
        raise bad_request("message thread not found")
    return chat


def _json_param(params: Params, name: str) -> Any:
    try:
        return params.json_value(name)
    except ValueError:
        raise bad_request(f"can't parse {name.replace('_', ' ')} JSON object") from None


def _check_flood(state: TelegramState, chat: Chat) -> None:
    if state.flood is not None and (wait := state.flood.take(chat.id, state.now())) is not None:
        raise too_many_requests(wait)


def _caption(params: Params) -> Parsed | None:
    if params.get("caption") in (None, ""):
        return None
    caption = parse_text(str(params.get("caption")), params.get("parse_mode"))
    if len(caption.text) > MAX_CAPTION:
        raise bad_request("message caption is too long")
    return caption


def _upload(params: Params, name: str) -> Upload | str | None:
    """A file parameter: an uploaded part (directly or via ``attach://``), or a file_id/URL string."""
    value = params.get(name)
    if isinstance(value, str) and value.startswith("attach://"):
        return params.files.get(value.removeprefix("attach://"))
    return params.files.get(name) or value or None


def _store_file(state: TelegramState, kind: str, source: Upload | str, missing: str) -> StoredFile:
    """Keep an upload, or resolve a file_id / HTTP URL sent in its place."""
    if isinstance(source, Upload):
        n = next(state.file_ids)
        stored = StoredFile(
            f"BQACAgIAAxk-sandbox-{n:06d}", f"AgAD{n:04d}", kind, source.filename, source.content_type, source.data
        )
        state.files[stored.file_id] = stored
        return stored
    if source in state.files:
        return state.files[source]
    if re.match(r"https?://", source):
        n = next(state.file_ids)
        name = source.rstrip("/").rsplit("/", 1)[-1] or "file"
        stored = StoredFile(
            f"BQACAgIAAxk-sandbox-{n:06d}", f"AgAD{n:04d}", kind, name, "application/octet-stream", None, url=source
        )
        state.files[stored.file_id] = stored
        return stored
    raise bad_request(missing if not source else "wrong file identifier/HTTP URL specified")


def _message(
    state: TelegramState, chat: Chat, params: Params, kind: str, content: dict[str, Any], record: dict[str, Any]
) -> dict[str, Any]:
    """Record a sent message (``record``: what the control route shows besides the common fields) and
    return the Bot API ``Message`` object with ``content`` (text, document, photo, caption...)."""
    ids = state.message_ids.setdefault(chat.id, itertools.count(1))
    message: dict[str, Any] = {
        "message_id": next(ids),
        "from": BOT_USER,
        "chat": chat.as_json(),
        "date": int(state.now()),
    }
    thread = params.get("message_thread_id")
    if thread not in (None, ""):
        message.update(message_thread_id=int(thread), is_topic_message=True)
    message.update(content)
    state.messages.append(
        {
            "chat_id": chat.id,
            "message_id": message["message_id"],
            "date": message["date"],
            "ts": state.now(),
            "type": kind,
            "method": _METHOD_OF[kind],
            "parse_mode": params.get("parse_mode"),
            "message_thread_id": message.get("message_thread_id"),
            "disable_notification": str(params.get("disable_notification")).lower() == "true",
            **record,
        }
    )
    return message


_METHOD_OF = {"text": "sendMessage", "document": "sendDocument", "photo": "sendPhoto"}


def _entities(key: str, parsed: Parsed) -> dict[str, Any]:
    return {key: parsed.entities} if parsed.entities else {}


def _caption_fields(caption: Parsed | None) -> dict[str, Any]:
    return {"caption": caption.text, **_entities("caption_entities", caption)} if caption else {}


# -- Bot API methods -------------------------------------------------------------------------------
def get_me(state: TelegramState, params: Params) -> Any:
    return BOT_USER


def send_message(state: TelegramState, params: Params) -> Any:
    chat = _chat(state, params)
    raw = params.get("text")
    parsed = parse_text(str(raw or ""), params.get("parse_mode"))
    if not parsed.text.strip():
        raise bad_request("message text is empty")
    if len(parsed.text) > MAX_TEXT:
        raise bad_request("message is too long")
    options = _json_param(params, "link_preview_options")
    _check_flood(state, chat)
    record = {"text": parsed.text, "raw_text": raw, "entities": parsed.entities, "link_preview_options": options,
              "disable_web_page_preview": params.get("disable_web_page_preview")}  # fmt: skip
    return _message(state, chat, params, "text", {"text": parsed.text, **_entities("entities", parsed)}, record)


def send_document(state: TelegramState, params: Params) -> Any:
    chat = _chat(state, params)
    source = _upload(params, "document")
    if isinstance(source, Upload) and len(source.data) > MAX_UPLOAD:
        raise bad_request("file is too big")
    caption = _caption(params)
    stored = _store_file(state, "documents", source or "", "there is no document in the request")
    _check_flood(state, chat)
    document: dict[str, Any] = {
        "file_name": stored.name,
        "mime_type": stored.mime_type,
        "file_id": stored.file_id,
        "file_unique_id": stored.unique_id,
    }
    if stored.data is not None:
        document["file_size"] = len(stored.data)
    record = {"caption": caption.text if caption else None, "raw_caption": params.get("caption"),
              "filename": stored.name, "size": len(stored.data or b""),
              "document": {"file_id": stored.file_id, "filename": stored.name, "size": len(stored.data or b""),
                           "url": stored.url}}  # fmt: skip
    return _message(state, chat, params, "document", {"document": document, **_caption_fields(caption)}, record)


def send_photo(state: TelegramState, params: Params) -> Any:
    chat = _chat(state, params)
    source = _upload(params, "photo")
    if isinstance(source, Upload):
        if len(source.data) > MAX_PHOTO:
            raise bad_request("file is too big")
        size = image_size(source.data)
        if size is None:
            raise bad_request("IMAGE_PROCESS_FAILED")
        width, height = size
        if width + height > 10000 or max(width, height) > 20 * max(1, min(width, height)):
            raise bad_request("PHOTO_INVALID_DIMENSIONS")
    caption = _caption(params)
    stored = _store_file(state, "photos", source or "", "there is no photo in the request")
    _check_flood(state, chat)
    width, height = image_size(stored.data or b"") or (0, 0)
    scale = min(1.0, 1280 / max(width, height, 1))
    photo = [
        {"file_id": f"{stored.file_id}-s", "file_unique_id": f"{stored.unique_id}s",
         "width": round(width * min(1.0, 90 / max(width, height, 1))),
         "height": round(height * min(1.0, 90 / max(width, height, 1)))},
        {"file_id": stored.file_id, "file_unique_id": stored.unique_id,
         "width": round(width * scale), "height": round(height * scale), "file_size": len(stored.data or b"")},
    ]  # fmt: skip
    record = {"caption": caption.text if caption else None, "raw_caption": params.get("caption"),
              "filename": stored.name, "size": len(stored.data or b""),
              "photo": {"file_id": stored.file_id, "filename": stored.name, "size": len(stored.data or b""),
                        "width": width, "height": height}}  # fmt: skip
    return _message(state, chat, params, "photo", {"photo": photo, **_caption_fields(caption)}, record)


def get_file(state: TelegramState, params: Params) -> Any:
    stored = state.files.get(str(params.get("file_id") or "").removesuffix("-s"))
    if stored is None or stored.data is None:
        raise bad_request("invalid file_id")
    if len(stored.data) > MAX_DOWNLOAD:
        raise bad_request("file is too big")
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.unique_id,
        "file_size": len(stored.data),
        "file_path": stored.path,
    }


METHODS: dict[str, Callable[[TelegramState, Params], Any]] = {
    "getme": get_me,
    "sendmessage": send_message,
    "senddocument": send_document,
    "sendphoto": send_photo,
    "getfile": get_file,
}

router = APIRouter(route_class=ErrorRoute)
control = APIRouter()


@router.api_route("/bot{token}/{method}", methods=["GET", "POST"])
async def bot_api(request: Request, token: str, method: str) -> Response:
    state = _authenticate(request, token)
    handler = METHODS.get(method.lower())  # Bot API method names are case-insensitive
    if handler is None:
        raise TelegramError(404, "Not Found")
    params = await read_params(request)
    return JSONResponse({"ok": True, "result": handler(state, params)})


@router.get("/file/bot{token}/{file_path:path}")
async def download(request: Request, token: str, file_path: str) -> Response:
    state = _authenticate(request, token)
    stored = next((f for f in state.files.values() if f.path == file_path and f.data is not None), None)
    if stored is None:
        raise TelegramError(404, "Not Found")
    return Response(stored.data, media_type=stored.mime_type)


# -- controls (/_sandbox/telegram) -----------------------------------------------------------------
class FloodBody(BaseModel):
    """``limit`` messages per chat per ``window_seconds`` (``messages``/``window_s`` also accepted)."""

    limit: int | None = Field(20, validation_alias=AliasChoices("limit", "messages"))  # None/0 turns it off
    window_seconds: float = Field(60.0, gt=0, validation_alias=AliasChoices("window_seconds", "window_s"))


class TokensBody(BaseModel):
    tokens: list[str]


class ChatBody(BaseModel):
    id: int
    type: str = "supergroup"
    title: str = ""
    username: str | None = None
    is_forum: bool = False
    topics: list[int] = []
    status: str = "member"


@control.get("/messages")
def list_messages(request: Request, chat_id: str | None = None) -> list[dict[str, Any]]:
    """Everything delivered, in order: ``chat_id``, ``message_id``, ``method``, ``text`` (as parsed;
    ``raw_text`` as sent) or ``caption``, ``parse_mode``, ``filename`` and ``size`` (files), ``ts``
    (virtual clock); ``chat_id`` keeps one chat's."""
    return [m for m in _state(request).messages if chat_id is None or str(m["chat_id"]) == str(chat_id)]


@control.post("/flood")
def set_flood(request: Request, body: FloodBody) -> dict[str, Any]:
    """Per-chat flood control: at most ``limit`` messages per chat in any ``window_seconds`` (on the
    virtual clock), then 429 ``retry after N``; ``limit`` null turns it off."""
    state = _state(request)
    state.flood = SlidingWindow(body.limit, body.window_seconds) if body.limit else None
    return {"limit": body.limit if state.flood else None, "window_seconds": body.window_seconds}


@control.put("/tokens")
def set_tokens(request: Request, body: TokensBody) -> dict[str, list[str]]:
    """Replace the valid bot tokens (others get 401 Unauthorized)."""
    _state(request).tokens = set(body.tokens)
    return {"tokens": sorted(body.tokens)}


@control.post("/chats")
def add_chat(request: Request, body: ChatBody) -> dict[str, Any]:
    """Add (or replace) a chat; ``status`` "kicked" or "blocked" makes sends 403."""
    chat = Chat(body.id, body.type, body.title, body.username, body.is_forum, set(body.topics), body.status)
    _state(request).chats[chat.id] = chat
    return chat.as_json()


@control.get("/files/{file_id}/content")
def file_content(request: Request, file_id: str) -> Response:
    """The uploaded bytes of a document or photo."""
    stored = _state(request).files.get(file_id)
    if stored is None or stored.data is None:
        raise HTTPException(404, f"no uploaded bytes for {file_id!r}")
    return Response(stored.data, media_type=stored.mime_type)
