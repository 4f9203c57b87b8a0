"""Slack stand-in (slack.md): the Web API methods we use, file upload v2 and incoming webhooks.

Clients: ``slack_sdk.WebClient(token="xoxb-sandbox-token", base_url="http://127.0.0.1:PORT/slack/api/")``
(the Airflow ``slack`` connection takes the same URL in ``extra.base_url``); incoming webhooks are
``http://127.0.0.1:PORT/slack/services/T000/B000/XXXX`` and ``.../T0SANDBOX/B0ALERTS/alerts-secret``
(both #alerts) and ``.../T0SANDBOX/B0CIFAIL/ci-secret`` (#ci-failures).

Web API methods (``/slack/api/<method>``, GET or POST with query, form or JSON parameters, token as
``Authorization: Bearer`` or ``token=``): ``auth.test``, ``chat.postMessage``, ``chat.update``,
``conversations.list``, ``conversations.replies``, ``files.getUploadURLExternal``,
``files.completeUploadExternal`` (``channel_id`` must be an ID: ``#name`` is ``invalid_channel``); the
upload URL (``/slack/upload/<file_id>``) takes the raw bytes and ``url_private`` downloads them.
Errors are HTTP 200 ``{"ok": false, "error": "<code>"}``
(``invalid_blocks`` also lists the problems with JSON pointers); rate limits are HTTP 429 with
``Retry-After`` and ``{"ok": false, "error": "ratelimited"}``. Webhook errors are plain-text codes
with a non-200 status (``invalid_payload``, ``no_text``, ``invalid_blocks``, ``channel_not_found``,
``channel_is_archived``, ``invalid_token``, ``no_service``, ``rate_limited``).

Seeded channels: ``C0ALERTS`` #alerts, ``C0CIFAIL`` #ci-failures, ``C0REPORTS`` #reports, ``C0GENERAL``
#general (the bot is a member), ``C0RANDOM`` #random and ``C0PRIVATE`` #private (public, bot not a
member: ``not_in_channel``), ``G0OPS`` ops-private
(private, member), ``G0LEADS`` leadership (private, not a member: invisible, ``channel_not_found``),
``C0ARCHIVED`` #old-alerts (archived: ``is_archived``) and 22 ``team-*`` channels so that
``conversations.list`` has several pages. The per-channel posting limit (``limit`` messages in any
``window_seconds`` on the virtual clock) is off until ``POST /_sandbox/slack/rate-limit`` sets it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import itertools
import json
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field

from include.sandbox.systems._common import (
    ApiError,
    ErrorRoute,
    Params,
    SlidingWindow,
    read_params,
    retry_after_seconds,
)
from include.sandbox.systems._seed import word_names

NAME = "slack"
PREFIX = "/slack"
BOT_TOKEN = "xoxb-sandbox-token"
TEAM_ID = "T0SANDBOX"
TEAM_NAME = "Sandbox"
BOT_USER_ID = "U0SANDBOXBOT"
BOT_ID = "B0SANDBOXBOT"
APP_ID = "A0SANDBOX"

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_BLOCK_ID = 255
MAX_MARKDOWN_TEXT = 12000
MAX_MESSAGE_TEXT = 40000
_MIMETYPES = {
    "html": "text/html",
    "md": "text/markdown",
    "txt": "text/plain",
    "png": "image/png",
    "csv": "text/csv",
    "json": "application/json",
    "pdf": "application/pdf",
}
BLOCK_TYPES = {
    "section",
    "header",
    "divider",
    "context",
    "actions",
    "image",
    "input",
    "rich_text",
    "markdown",
    "file",
    "video",
    "table",
}


# -- state -----------------------------------------------------------------------------------------
@dataclass
class Channel:
    id: str
    name: str
    is_private: bool = False
    is_member: bool = True
    is_archived: bool = False
    created: int = 1_600_000_000
    topic: str = ""
    purpose: str = ""


@dataclass
class Message:
    ts: str
    channel: str
    text: str
    blocks: list[Any] | None = None
    attachments: list[Any] | None = None
    thread_ts: str | None = None
    username: str | None = None
    files: list[str] = field(default_factory=list)
    via: str = "api"  # "api" (chat.postMessage), "webhook" or "file" (completeUploadExternal)
    edited_ts: str | None = None
    replies: list[str] = field(default_factory=list)  # ts of thread replies (parents only)


@dataclass
class SlackFile:
    id: str
    name: str
    length: int  # declared in files.getUploadURLExternal
    created: int
    title: str = ""
    data: bytes | None = None  # None until the bytes reach the upload URL
    completed: bool = False
    channels: list[str] = field(default_factory=list)


@dataclass
class SlackState:
    now: Callable[[], float]
    tokens: set[str] = field(default_factory=lambda: {BOT_TOKEN})
    channels: dict[str, Channel] = field(default_factory=dict)
    messages: dict[str, list[Message]] = field(default_factory=dict)  # channel id -> in posting order
    files: dict[str, SlackFile] = field(default_factory=dict)
    uploads: dict[str, str] = field(default_factory=dict)  # upload id -> file id
    webhooks: dict[str, str] = field(default_factory=dict)  # "T../B../secret" -> channel id
    rate_limit: SlidingWindow | None = None  # per channel id
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    last_ts: float = 0.0

    def next_ts(self) -> str:
        """A unique, increasing message timestamp ("1700000000.000100") on the virtual clock."""
        self.last_ts = max(self.now(), self.last_ts + 0.000001)
        return f"{self.last_ts:.6f}"

    def find_message(self, channel: str, ts: str) -> Message | None:
        return next((m for m in self.messages.get(channel, []) if m.ts == ts), None)


def make_state(seed: int, sandbox: Any) -> SlackState:
    state = SlackState(now=lambda: sandbox.clock.now())
    seeded = [
        Channel("C0ALERTS", "alerts", topic="Production alerts"),
        Channel("C0CIFAIL", "ci-failures", topic="Failed CI runs"),
        Channel("C0REPORTS", "reports", topic="Weekly reports"),
        Channel("C0GENERAL", "general"),
        Channel("C0RANDOM", "random", is_member=False),
        Channel("C0PRIVATE", "private", is_member=False),
        Channel("G0OPS", "ops-private", is_private=True),
        Channel("G0LEADS", "leadership", is_private=True, is_member=False),
        Channel("C0ARCHIVED", "old-alerts", is_archived=True),
    ]
    rng = random.Random(f"slack-{seed}")
    seeded += [
        Channel(f"C0TEAM{n:03d}", f"team-{name}", created=1_600_000_000 + n * 86400)
        for n, name in enumerate(word_names(rng, 22))
    ]
    state.channels = {c.id: c for c in seeded}
    state.webhooks = {
        "T000/B000/XXXX": "C0ALERTS",
        f"{TEAM_ID}/B0ALERTS/alerts-secret": "C0ALERTS",
        f"{TEAM_ID}/B0CIFAIL/ci-secret": "C0CIFAIL",
        f"{TEAM_ID}/B0ARCHIVED/old-secret": "C0ARCHIVED",
    }
    return state


def _state(request: Request) -> SlackState:
    return request.app.state.sandbox.state(NAME)


# -- errors ----------------------------------------------------------------------------------------
class SlackError(ApiError):
    """A Web API error: HTTP 200 (429 for rate limits) with ``{"ok": false, "error": code, ...}``."""

    def __init__(self, code: str, status: int = 200, retry_after: float | None = None, **extra: Any) -> None:
        super().__init__(code)
        self.code, self.status, self.retry_after, self.extra = code, status, retry_after, extra

    def response(self) -> Response:
        headers = {"Retry-After": str(retry_after_seconds(self.retry_after))} if self.retry_after is not None else {}
        return JSONResponse({"ok": False, "error": self.code, **self.extra}, status_code=self.status, headers=headers)


def invalid(code: str, problems: list[str]) -> SlackError:
    """An error that lists its problems the way Slack does (``invalid_blocks``, ``invalid_arguments``)."""
    return SlackError(code, errors=problems, response_metadata={"messages": [f"[ERROR] {p}" for p in problems]})


def error_response(status: int, message: str, retry_after: float | None) -> Response:
    """Injected faults: 429 is Slack's ``ratelimited`` (with Retry-After), others carry ``message`` as the code."""
    if status == 429:
        return SlackError("ratelimited", 429, retry_after if retry_after is not None else 1).response()
    return SlackError(message, status).response()


# -- validation ------------------------------------------------------------------------------------
def _text_problems(obj: Any, pointer: str, limit: int, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return [f"must provide an object [json-pointer:{pointer}]"]
    problems = []
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if obj.get("type") not in allowed:
        problems.append(f"must be a valid enum value [json-pointer:{pointer}/type]")
    if not obj["text"]:
        problems.append(f"must be more than 0 characters [json-pointer:{pointer}/text]")
    elif len(obj["text"]) > limit:
        problems.append(f"must be less than {limit + 1} characters [json-pointer:{pointer}/text]")
    return problems


def block_problems(blocks: list[Any]) -> list[str]:
    """Block Kit limit violations (slack.md §6.1), worded like Slack's ``invalid_blocks`` errors."""
    if len(blocks) > MAX_BLOCKS:
        return [f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]"]
    problems: list[str] = []
    for i, block in enumerate(blocks):
        at = f"/blocks/{i}"
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            problems.append(f"must provide a valid block type [json-pointer:{at}/type]")
            continue
        if len(str(block.get("block_id", ""))) > MAX_BLOCK_ID:
            problems.append(f"must be less than {MAX_BLOCK_ID + 1} characters [json-pointer:{at}/block_id]")
        kind = block["type"]
        if kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"must provide either text or fields [json-pointer:{at}]")
            if "text" in block:
                problems += _text_problems(block["text"], f"{at}/text", MAX_SECTION_TEXT)
            fields = block.get("fields") or []
            if len(fields) > MAX_FIELDS:
                problems.append(f"no more than {MAX_FIELDS} items allowed [json-pointer:{at}/fields]")
            for j, item in enumerate(fields):
                problems += _text_problems(item, f"{at}/fields/{j}", MAX_FIELD_TEXT)
        elif kind == "header":
            problems += _text_problems(block.get("text"), f"{at}/text", MAX_HEADER_TEXT, plain_only=True)
        elif kind == "markdown":
            text = block.get("text")
            if not isinstance(text, str) or not text:
                problems.append(f"must provide a string [json-pointer:{at}/text]")
            elif len(text) > MAX_MARKDOWN_TEXT:
                problems.append(f"must be less than {MAX_MARKDOWN_TEXT + 1} characters [json-pointer:{at}/text]")
        elif kind == "context" and len(block.get("elements") or []) > MAX_FIELDS:
            problems.append(f"no more than {MAX_FIELDS} items allowed [json-pointer:{at}/elements]")
    return problems


def _json_list(params: Params, name: str, error: str) -> list[Any] | None:
    """A list parameter (``blocks``, ``attachments``) sent as JSON or as a JSON string in a form."""
    if params.get(name) in (None, ""):
        return None
    try:
        value = params.json_value(name)
    except ValueError:
        raise SlackError(error) from None
    if not isinstance(value, list):
        raise SlackError(error)
    return value


def _blocks(params: Params) -> list[Any] | None:
    blocks = _json_list(params, "blocks", "invalid_blocks_format")
    if blocks is not None:
        problems = block_problems(blocks)
        if problems:
            raise invalid("invalid_blocks", problems)
    return blocks


# -- channels and auth -----------------------------------------------------------------------------
def _authenticate(request: Request, params: Params) -> SlackState:
    state = _state(request)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else str(params.get("token") or "")
    if not token:
        raise SlackError("not_authed")
    if token not in state.tokens:
        raise SlackError("invalid_auth")
    return state


def _visible(state: SlackState, ref: Any) -> Channel:
    """A channel by ID, ``#name`` or name that the bot can see (private ones only as a member)."""
    ref = str(ref or "")
    channel = state.channels.get(ref) or next(
        (c for c in state.channels.values() if c.name == ref.removeprefix("#")), None
    )
    if channel is None or (channel.is_private and not channel.is_member):
        raise SlackError("channel_not_found")
    return channel


def _writable(state: SlackState, ref: Any) -> Channel:
    channel = _visible(state, ref)
    if channel.is_archived:
        raise SlackError("is_archived")
    if not channel.is_member:
        raise SlackError("not_in_channel")
    return channel


_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")


def _by_id(state: SlackState, ref: Any) -> Channel:
    """File sharing takes channel IDs only (slack.md §6.1): ``#alerts`` is ``invalid_channel``, an
    unknown ID ``channel_not_found``."""
    if not _CHANNEL_ID.match(str(ref)):
        raise SlackError("invalid_channel")
    if str(ref) not in state.channels:
        raise SlackError("channel_not_found")
    return _writable(state, ref)


def _check_rate(state: SlackState, channel: str) -> None:
    if state.rate_limit is not None and (wait := state.rate_limit.take(channel, state.now())) is not None:
        raise SlackError("ratelimited", 429, wait)


# -- JSON shapes -----------------------------------------------------------------------------------
def channel_json(c: Channel) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "name_normalized": c.name,
        "is_channel": not c.is_private,
        "is_group": c.is_private,
        "is_im": False,
        "is_mpim": False,
        "is_private": c.is_private,
        "is_archived": c.is_archived,
        "is_general": c.name == "general",
        "is_member": c.is_member,
        "is_shared": False,
        "is_ext_shared": False,
        "is_org_shared": False,
        "created": c.created,
        "creator": "U0SANDBOXADMIN",
        "context_team_id": TEAM_ID,
        "topic": {"value": c.topic, "creator": "", "last_set": 0},
        "purpose": {"value": c.purpose, "creator": "", "last_set": 0},
        "num_members": 5 if c.is_member else 4,
    }


def file_json(request: Request, f: SlackFile) -> dict[str, Any]:
    ext = f.name.rsplit(".", 1)[-1].lower() if "." in f.name else "binary"
    url = str(request.base_url).rstrip("/") + f"{PREFIX}/files-pri/{TEAM_ID}-{f.id}/{f.name}"
    return {
        "id": f.id,
        "created": f.created,
        "timestamp": f.created,
        "name": f.name,
        "title": f.title or f.name,
        "mimetype": _MIMETYPES.get(ext, "application/octet-stream"),
        "filetype": ext,
        "user": BOT_USER_ID,
        "user_team": TEAM_ID,
        "editable": False,
        "size": len(f.data or b""),
        "mode": "hosted",
        "is_external": False,
        "is_public": any(not _is_private_id(c) for c in f.channels),
        "url_private": url,
        "url_private_download": url + "?download=1",
        "permalink": f"https://sandbox.slack.com/files/{BOT_USER_ID}/{f.id}/{f.name}",
        "channels": [c for c in f.channels if not _is_private_id(c)],
        "groups": [c for c in f.channels if _is_private_id(c)],
    }


def _is_private_id(channel_id: str) -> bool:
    return channel_id.startswith("G")


def message_json(state: SlackState, m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "message",
        "text": m.text,
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "app_id": APP_ID,
        "team": TEAM_ID,
        "ts": m.ts,
    }
    if m.blocks is not None:
        out["blocks"] = m.blocks
    if m.attachments is not None:
        out["attachments"] = m.attachments
    if m.username:
        out["username"] = m.username
    if m.thread_ts:
        out["thread_ts"] = m.thread_ts
    if m.replies:
        out.update(
            thread_ts=m.ts,
            reply_count=len(m.replies),
            reply_users=[BOT_USER_ID],
            reply_users_count=1,
            latest_reply=m.replies[-1],
        )
    if m.edited_ts:
        out["edited"] = {"user": BOT_USER_ID, "ts": m.edited_ts}
    if m.files:
        out["files"] = [{"id": fid, "name": state.files[fid].name} for fid in m.files]
    return out


def _post(state: SlackState, channel: Channel, text: str, **kw: Any) -> Message:
    """Store a message (and link a reply to its thread parent)."""
    message = Message(state.next_ts(), channel.id, text, **kw)
    state.messages.setdefault(channel.id, []).append(message)
    parent = state.find_message(channel.id, message.thread_ts) if message.thread_ts else None
    if parent is not None:
        parent.replies.append(message.ts)
    return message


# -- cursors ---------------------------------------------------------------------------------------
def encode_cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        kind, _, value = base64.b64decode(cursor, validate=True).decode().partition(":")
        if kind == "offset" and value.isdigit():
            return int(value)
    except (binascii.Error, UnicodeDecodeError):
        pass
    raise SlackError("invalid_cursor")


def _page(params: Params, items: list[Any], default: int, maximum: int) -> tuple[list[Any], str]:
    try:
        limit = int(params.get("limit") or default)
    except ValueError:
        raise SlackError("invalid_limit") from None
    limit = min(max(limit, 1), maximum)
    start = decode_cursor(str(params.get("cursor"))) if params.get("cursor") else 0
    page = items[start : start + limit]
    return page, encode_cursor(start + limit) if start + limit < len(items) else ""


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("1", "true")


# -- Web API methods -------------------------------------------------------------------------------
def auth_test(request: Request, state: SlackState, params: Params) -> dict[str, Any]:
    return {
        "url": "https://sandbox.slack.com/",
        "team": TEAM_NAME,
        "user": "devops-bot",
        "team_id": TEAM_ID,
        "user_id": BOT_USER_ID,
        "bot_id": BOT_ID,
        "is_enterprise_install": False,
    }


def chat_post_message(request: Request, state: SlackState, params: Params) -> dict[str, Any]:
    channel = _writable(state, params.get("channel"))
    text = str(params.get("text") or "")
    blocks = _blocks(params)
    attachments = _json_list(params, "attachments", "invalid_attachments")
    if not text and not blocks and not attachments:
        raise SlackError("no_text")
    if len(text) > MAX_MESSAGE_TEXT:
        raise SlackError("msg_too_long")
    _check_rate(state, channel.id)
    thread_ts = str(params.get("thread_ts") or "") or None
    message = _post(
        state,
        channel,
        text,
        blocks=blocks,
        attachments=attachments,
        thread_ts=thread_ts,
        username=params.get("username"),
    )
    return {"channel": channel.id, "ts": message.ts, "message": message_json(state, message)}


def chat_update(request: Request, state: SlackState, params: Params) -> dict[str, Any]:
    channel = _writable(state, params.get("channel"))
    message = state.find_message(channel.id, str(params.get("ts") or ""))
    if message is None:
        raise SlackError("message_not_found")
    if message.via == "webhook":
        raise SlackError("cant_update_message")
    blocks = _blocks(params)
    text = params.get("text")
    if text is None and blocks is None:
        raise SlackError("no_text")
    if text is not None:
        if len(str(text)) > MAX_MESSAGE_TEXT:
            raise SlackError("msg_too_long")
        message.text = str(text)
    if blocks is not None:
        message.blocks = blocks
    message.edited_ts = state.next_ts()
    return {"channel": channel.id, "ts": message.ts, "text": message.text, "message": message_json(state, message)}


def conversations_list(request: Request, state: SlackState, params: Params) -> dict[str, Any]:
    types = {t.strip() for t in str(params.get("types") or "public_channel").split(",")}
    unknown = types - {"public_channel", "private_channel", "mpim", "im"}
    if unknown:
        raise SlackError("invalid_types")
    channels = [
        c
        for c in state.channels.values()
        if (
            ("private_channel" in types and c.is_private and c.is_member)
            or ("public_channel" in types and not c.is_private)
        )
        and not (c.is_archived and _truthy(params.get("exclude_archived")))
    ]
    page, next_cursor = _page(params, channels, default=100, maximum=1000)
    return {"channels": [channel_json(c) for c in page], "response_metadata": {"next_cursor": next_cursor}}


def conversations_replies(request: Request, state: SlackState, params: Params) -> dict[str, Any]:
    channel = _visible(state, params.get("channel"))
    if not channel.is_member:
        raise SlackError("not_in_channel")
    parent = state.find_message(channel.id, str(params.get("ts") or ""))
    if parent is None:
        raise SlackError("thread_not_found")
    thread = [parent] + [m for m in state.messages[channel.id] if m.ts in parent.replies]
    page, next_cursor = _page(params, thread, default=1000, maximum=1000)
    return {
        "messages": [message_json(state, m) for m in page],
        "has_more": bool(next_cursor),
        "response_metadata": {"next_cursor": next_cursor},
    }


def files_get_upload_url_external(request: Request, state: SlackState, params: Params) -> dict[str, Any]:
    missing = [name for name in ("filename", "length") if params.get(name) in (None, "")]
    if missing:
        raise invalid("invalid_arguments", [f"missing required field: {name}" for name in missing])
    try:
        length = int(params.get("length"))
    except ValueError:
        raise invalid("invalid_arguments", ["invalid value for field: length"]) from None
    n = next(state.ids)
    file = SlackFile(
        f"F0SANDBOX{n:04d}", str(params.get("filename")), length, int(state.now()), title=str(params.get("title") or "")
    )
    state.files[file.id] = file
    state.uploads[file.id] = file.id
    upload_url = str(request.base_url).rstrip("/") + f"{PREFIX}/upload/{file.id}"
    return {"upload_url": upload_url, "file_id": file.id}


def files_complete_upload_external(request: Request, state: SlackState, params: Params) -> dict[str, Any]:
    try:
        entries = params.json_value("files")
    except ValueError:
        raise invalid("invalid_arguments", ["files must be a JSON array"]) from None
    if not isinstance(entries, list) or not entries:
        raise invalid("invalid_arguments", ["missing required field: files"])
    files = []
    for entry in entries:
        file = state.files.get(str((entry or {}).get("id")))
        if file is None or file.data is None or file.completed:
            raise SlackError("file_not_found")
        files.append((file, entry))
    targets = [params.get("channel_id")] if params.get("channel_id") else []
    targets += [c for c in str(params.get("channels") or "").split(",") if c]
    channels = [_by_id(state, ref) for ref in targets]
    thread_ts = str(params.get("thread_ts") or "") or None
    if thread_ts and len(channels) != 1:
        raise invalid("invalid_arguments", ["thread_ts requires exactly one channel"])
    for file, entry in files:
        file.completed = True
        file.title = str(entry.get("title") or file.title or file.name)
        file.channels = [c.id for c in channels]
    for channel in channels:
        _post(
            state,
            channel,
            str(params.get("initial_comment") or ""),
            thread_ts=thread_ts,
            files=[f.id for f, _ in files],
            via="file",
        )
    return {"files": [file_json(request, f) for f, _ in files]}


METHODS: dict[str, Callable[[Request, SlackState, Params], dict[str, Any]]] = {
    "auth.test": auth_test,
    "chat.postMessage": chat_post_message,
    "chat.update": chat_update,
    "conversations.list": conversations_list,
    "conversations.replies": conversations_replies,
    "files.getUploadURLExternal": files_get_upload_url_external,
    "files.completeUploadExternal": files_complete_upload_external,
}

router = APIRouter(route_class=ErrorRoute)
control = APIRouter()


@router.api_route("/api/{method}", methods=["GET", "POST"])
async def web_api(request: Request, method: str) -> Response:
    handler = METHODS.get(method)
    if handler is None:
        raise SlackError("unknown_method", req_method=method)
    params = await read_params(request)
    state = _authenticate(request, params)
    return JSONResponse({"ok": True, **handler(request, state, params)})


@router.post("/upload/{upload_id}")
async def upload_bytes(request: Request, upload_id: str) -> Response:
    """Step 2 of upload v2: the raw bytes (or a multipart ``file`` part) for a pending file."""
    state = _state(request)
    file_id = state.uploads.pop(upload_id, None)
    if file_id is None:
        return PlainTextResponse("upload_url_not_found", status_code=404)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        files = (await read_params(request)).files
        data = next(iter(files.values())).data if files else b""
    else:  # raw bytes (urllib, as slack_sdk sends them, labels them form-urlencoded)
        data = await request.body()
    state.files[file_id].data = data
    return PlainTextResponse(f"OK - {len(data)}")


@router.get("/files-pri/{team_file}/{name}")
async def download(request: Request, team_file: str, name: str) -> Response:
    """``url_private``: the uploaded bytes, for a request with the bot token."""
    state = _authenticate(request, Params())
    file = state.files.get(team_file.removeprefix(f"{TEAM_ID}-"))
    if file is None or file.data is None or file.name != name:
        return PlainTextResponse("file_not_found", status_code=404)
    return Response(file.data, media_type=file_json(request, file)["mimetype"])


@router.post("/services/{team}/{bot}/{secret}")
async def incoming_webhook(request: Request, team: str, bot: str, secret: str) -> Response:
    """An incoming webhook: fixed channel, no overrides, plain-text answers."""
    state = _state(request)
    channel_id = state.webhooks.get(f"{team}/{bot}/{secret}")
    if channel_id is None:
        known = any(key.startswith(f"{team}/{bot}/") for key in state.webhooks)
        return PlainTextResponse("invalid_token" if known else "no_service", status_code=403 if known else 404)
    body: Any = None
    if request.headers.get("content-type", "").split(";")[0].strip() == "application/x-www-form-urlencoded":
        with contextlib.suppress(ValueError):  # form-encoded webhooks carry the JSON in "payload"
            body = (await read_params(request)).json_value("payload")
    else:
        with contextlib.suppress(ValueError):
            body = json.loads(await request.body())
    if not isinstance(body, dict):
        return PlainTextResponse("invalid_payload", status_code=400)
    blocks, attachments = body.get("blocks"), body.get("attachments")
    if blocks is not None and (not isinstance(blocks, list) or block_problems(blocks)):
        return PlainTextResponse("invalid_blocks", status_code=400)
    if not body.get("text") and not blocks and not attachments:
        return PlainTextResponse("no_text", status_code=400)
    channel = state.channels.get(channel_id)
    if channel is None:
        return PlainTextResponse("channel_not_found", status_code=404)
    if channel.is_archived:
        return PlainTextResponse("channel_is_archived", status_code=410)
    try:
        _check_rate(state, channel.id)
    except SlackError as exc:
        return PlainTextResponse(
            "rate_limited", status_code=429, headers={"Retry-After": str(retry_after_seconds(exc.retry_after or 1))}
        )
    _post(state, channel, str(body.get("text") or ""), blocks=blocks, attachments=attachments, via="webhook")
    return PlainTextResponse("ok")


# -- controls (/_sandbox/slack) --------------------------------------------------------------------
class ChannelBody(BaseModel):
    id: str
    name: str
    is_private: bool = False
    is_member: bool = True
    is_archived: bool = False


class RateLimitBody(BaseModel):
    limit: int | None = 1  # None/0 turns the per-channel limit off
    window_seconds: float = Field(1.0, gt=0)


class TokensBody(BaseModel):
    tokens: list[str]


class WebhookBody(BaseModel):
    channel: str


def control_message(state: SlackState, m: Message) -> dict[str, Any]:
    return {
        "channel": m.channel,
        "ts": m.ts,
        "text": m.text,
        "blocks": m.blocks,
        "attachments": m.attachments,
        "thread_ts": m.thread_ts,
        "username": m.username,
        "via": m.via,
        "edited": m.edited_ts is not None,
        "files": [
            {
                "id": fid,
                "name": state.files[fid].name,
                "title": state.files[fid].title,
                "size": len(state.files[fid].data or b""),
            }
            for fid in m.files
        ],
    }


@control.get("/messages")
def list_messages(request: Request, channel: str | None = None) -> list[dict[str, Any]]:
    """Posted messages in posting order, each with its ``channel`` id; ``channel`` (id, name or
    ``#name``) keeps one channel's."""
    state = _state(request)
    wanted = (
        None
        if channel is None
        else next((c.id for c in state.channels.values() if channel in (c.id, c.name, "#" + c.name)), channel)
    )
    messages = sorted(
        (m for cid, msgs in state.messages.items() if wanted in (None, cid) for m in msgs), key=lambda m: float(m.ts)
    )
    return [control_message(state, m) for m in messages]


@control.post("/channels")
def add_channel(request: Request, body: ChannelBody) -> dict[str, Any]:
    """Add (or replace) a channel."""
    channel = Channel(**body.model_dump())
    _state(request).channels[channel.id] = channel
    return channel_json(channel)


@control.post("/rate-limit")
def set_rate_limit(request: Request, body: RateLimitBody) -> dict[str, Any]:
    """Per-channel posting limit (chat.postMessage and webhooks): at most ``limit`` posts per channel
    in any ``window_seconds`` (virtual clock), then HTTP 429 ``ratelimited`` with Retry-After."""
    state = _state(request)
    state.rate_limit = SlidingWindow(body.limit, body.window_seconds) if body.limit else None
    return {"limit": body.limit if state.rate_limit else None, "window_seconds": body.window_seconds}


@control.put("/tokens")
def set_tokens(request: Request, body: TokensBody) -> dict[str, list[str]]:
    """Replace the valid tokens (others get ``invalid_auth``)."""
    _state(request).tokens = set(body.tokens)
    return {"tokens": sorted(body.tokens)}


@control.post("/webhooks")
def add_webhook(request: Request, body: WebhookBody) -> dict[str, str]:
    """A new incoming webhook for a channel id; returns its URL."""
    state = _state(request)
    if body.channel not in state.channels:
        raise HTTPException(404, f"unknown channel {body.channel!r}")
    key = f"{TEAM_ID}/B0HOOK{next(state.ids):04d}/secret-{body.channel.lower()}"
    state.webhooks[key] = body.channel
    return {"path": f"{PREFIX}/services/{key}", "url": str(request.base_url).rstrip("/") + f"{PREFIX}/services/{key}"}


@control.get("/files")
def list_files(request: Request) -> list[dict[str, Any]]:
    """Every file from upload v2: id, filename (also ``name``), title, declared length, uploaded size,
    completed, channel (the first shared to, else None) and channels."""
    return [
        {
            "id": f.id,
            "filename": f.name,
            "name": f.name,
            "title": f.title,
            "length": f.length,
            "size": len(f.data or b""),
            "completed": f.completed,
            "channel": f.channels[0] if f.channels else None,
            "channels": f.channels,
        }
        for f in _state(request).files.values()
    ]


@control.get("/files/{file_id}/content")
def file_content(request: Request, file_id: str) -> Response:
    """The uploaded bytes of one file."""
    file = _state(request).files.get(file_id)
    if file is None or file.data is None:
        raise HTTPException(404, f"no uploaded bytes for {file_id!r}")
    return Response(file.data, media_type="application/octet-stream")
