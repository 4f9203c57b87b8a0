"""OpenAI API stand-in (openai.md §8): ``/openai/v1/chat/completions`` and ``/openai/v1/models``.

Clients use ``base_url="http://127.0.0.1:PORT/openai/v1"`` and ``api_key="sk-sandbox"``.

Answers are *scripted*: ``POST /_sandbox/openai/script`` appends items to a FIFO queue, each used by
one chat completion request::

    {"content": "text"}                         # a normal answer
    {"refusal": "I can't help with that"}       # message.refusal set, content null
    {"finish_reason": "length", "content": ".."}# truncated answer
    {"status": 429, "retry_after": 0, "retry_after_ms": 10, "message": "..."}  # an error answer
    {"delay_ms": 2000, "content": "..."}        # a slow answer (client timeouts)
    ... each optionally with {"prompt_tokens": n, "completion_tokens": n}

With an empty queue the answer is deterministic: a prompt with a CI log excerpt (``ci_failure_triage``'s)
gets the sandbox model's own analysis of that excerpt (``openai_analyst.py``); otherwise, for
``response_format`` json_schema an object generated from the schema, for json_object a small object,
otherwise a short text. Such answers report the model ``"sandbox"`` (what wrote them); scripted ones
report the requested model.

``POST /_sandbox/openai/mode {"json_schema_supported": false}`` makes json_schema requests fail with
400 like some OpenAI-compatible local servers; ``{"api_keys": [...]}`` changes the valid keys.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from include.sandbox.systems import openai_analyst as analyst
from include.sandbox.systems._common import ApiError, ErrorRoute, retry_after_headers

NAME = "openai"
PREFIX = "/openai"
DEFAULT_KEY = "sk-sandbox"
MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "o4-mini")

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    409: ("invalid_request_error", None),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}


@dataclass
class OpenAIState:
    now: Callable[[], float]
    api_keys: set[str] = field(default_factory=lambda: {DEFAULT_KEY})
    script: list[dict[str, Any]] = field(default_factory=list)
    json_schema_supported: bool = True
    completions: int = 0
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))


def make_state(seed: int, sandbox: Any) -> OpenAIState:
    return OpenAIState(now=lambda: sandbox.clock.now())


def _state(request: Request) -> OpenAIState:
    return request.app.state.sandbox.state(NAME)


def error_body(
    status: int, message: str, type_: str | None = None, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    default_type, default_code = _ERROR_TYPES.get(
        status, ("server_error", None) if status >= 500 else ("invalid_request_error", None)
    )
    return {
        "error": {
            "message": message,
            "type": type_ or default_type,
            "param": param,
            "code": code if code is not None else default_code,
        }
    }


def error_response(status: int, message: str, retry_after: float | None, retry_after_ms: int | None = None) -> Response:
    headers = retry_after_headers(retry_after)
    if retry_after_ms is not None:
        headers["retry-after-ms"] = str(int(retry_after_ms))
    if status == 429:
        headers.update(
            {
                "x-ratelimit-limit-requests": "500",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": "1s",
            }
        )
    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


class OpenAIError(ApiError):
    def __init__(
        self, status: int, message: str, code: str | None = None, param: str | None = None, type_: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param, self.type_ = status, message, code, param, type_

    def response(self) -> JSONResponse:
        return JSONResponse(
            error_body(self.status, self.message, self.type_, self.code, self.param), status_code=self.status
        )


def _authenticate(request: Request) -> OpenAIState:
    state = _state(request)
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise OpenAIError(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            code="",
        )
    if key not in state.api_keys:
        shown = key[:3] + "*" * max(0, len(key) - 7) + key[-4:] if len(key) > 8 else key
        raise OpenAIError(
            401,
            f"Incorrect API key provided: {shown}. You can find your API key at https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )
    return state


# -- token counting and deterministic answers ------------------------------------------------------
def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return " ".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return json.dumps(content)


def count_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4) if text else 0


def _prompt_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(_text_of(m.get("content")) for m in messages if isinstance(m, dict))


def _user_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(_text_of(m.get("content")) for m in messages if isinstance(m, dict) and m.get("role") == "user")


_LINE_NUMBERS = re.compile(r"^[ \t]*(\d+):|\bL(\d+)\b", re.MULTILINE)


def line_numbers(text: str) -> list[int]:
    """Numbers used as line prefixes in ``text``: ``123: ...`` at a line start or ``L123`` anywhere."""
    out: list[int] = []
    for m in _LINE_NUMBERS.finditer(text):
        n = int(m.group(1) or m.group(2))
        if n not in out:
            out.append(n)
    return out


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 32:
        ref = schema["$ref"]
        node: Any = root
        if ref.startswith("#"):
            for part in [p for p in ref[1:].split("/") if p]:
                node = node.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(node, dict) else {}
        else:
            node = {}
        schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
        seen += 1
    return schema


def _string_for(name: str, schema: dict[str, Any]) -> str:
    fmt = schema.get("format")
    if fmt == "date-time":
        return "2026-01-01T00:00:00Z"
    if fmt == "date":
        return "2026-01-01"
    if fmt == "email":
        return "sandbox@example.com"
    if fmt in ("uri", "url"):
        return "https://example.com/sandbox"
    if fmt == "uuid":
        return "00000000-0000-4000-8000-000000000000"
    text = f"sandbox {name}".strip() if name else "sandbox"
    lo, hi = int(schema.get("minLength", 0)), schema.get("maxLength")
    if len(text) < lo:
        text = text + "x" * (lo - len(text))
    if hi is not None:
        text = text[: int(hi)]
    return text


def _number_for(schema: dict[str, Any], integer: bool) -> int | float:
    lo = schema.get("minimum", schema.get("exclusiveMinimum"))
    hi = schema.get("maximum", schema.get("exclusiveMaximum"))
    value: float = 1
    if lo is not None and value < lo:
        value = lo + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0)
    if hi is not None and value > hi:
        value = hi - (1 if "exclusiveMaximum" in schema and "maximum" not in schema else 0)
    return int(value) if integer else float(value)


def generate(schema: Any, root: dict[str, Any], name: str = "", user_text: str = "", depth: int = 0) -> Any:
    """A value valid against ``schema`` (deterministic; the subset of JSON Schema that structured
    outputs use). Integer arrays whose name contains "line" take line numbers from the user text."""
    if not isinstance(schema, dict) or depth > 20:
        return None
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            options = [_resolve(o, root) for o in schema[key]]
            chosen = next((o for o in options if o.get("type") != "null"), options[0])
            return generate(chosen, root, name, user_text, depth + 1)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged.update(_resolve(part, root))
        return generate(merged, root, name, user_text, depth + 1)
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), "null")
    if typ is None:
        typ = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if typ == "object":
        props = schema.get("properties") or {}
        return {k: generate(v, root, k, user_text, depth + 1) for k, v in props.items()}
    if typ == "array":
        items = _resolve(schema.get("items") or {}, root)
        item_type = items.get("type")
        count = max(1, int(schema.get("minItems", 1)))
        if "maxItems" in schema:
            count = min(count, int(schema["maxItems"]))
        if item_type == "integer" and "line" in name.lower():
            found = line_numbers(user_text)
            if found:
                return found if "maxItems" not in schema else found[: int(schema["maxItems"])]
            return [1]
        return [generate(items, root, name.rstrip("s"), user_text, depth + 1) for _ in range(count)]
    if typ == "string":
        return _string_for(name, schema)
    if typ == "integer":
        return _number_for(schema, True)
    if typ == "number":
        return _number_for(schema, False)
    if typ == "boolean":
        return True
    return None


def strict_problem(schema: Any, root: dict[str, Any] | None = None, context: tuple[str, ...] = ()) -> str | None:
    """The first violation of OpenAI's strict structured-output rules, worded like OpenAI, or None."""
    if not isinstance(schema, dict):
        return None
    root = root if root is not None else schema
    ctx = "(" + ", ".join(repr(c) for c in context) + ("," if len(context) == 1 else "") + ")"
    typ = schema.get("type")
    is_object = typ == "object" or (isinstance(typ, list) and "object" in typ) or "properties" in schema
    if is_object and "$ref" not in schema and not any(k in schema for k in ("anyOf", "oneOf", "allOf")):
        if schema.get("additionalProperties") is not False:
            return f"In context={ctx}, 'additionalProperties' is required to be supplied and to be false."
        props = list((schema.get("properties") or {}).keys())
        required = schema.get("required") or []
        missing = [p for p in props if p not in required]
        if missing:
            return (
                f"In context={ctx}, 'required' is required to be supplied and to be an array including every key "
                f"in properties. Missing '{missing[0]}'."
            )
        for key, sub in (schema.get("properties") or {}).items():
            problem = strict_problem(sub, root, (*context, "properties", key))
            if problem:
                return problem
    if isinstance(schema.get("items"), dict):
        problem = strict_problem(schema["items"], root, (*context, "items"))
        if problem:
            return problem
    for key in ("anyOf", "oneOf", "allOf"):
        for i, sub in enumerate(schema.get(key) or []):
            problem = strict_problem(sub, root, (*context, key, str(i)))
            if problem:
                return problem
    for defs in ("$defs", "definitions"):
        for key, sub in (schema.get(defs) or {}).items():
            problem = strict_problem(sub, root, (*context, defs, key))
            if problem:
                return problem
    return None


# -- routes ----------------------------------------------------------------------------------------
router = APIRouter(route_class=ErrorRoute)
control = APIRouter()


def _model_obj(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 1_700_000_000, "owned_by": "sandbox"}


@router.get("/v1/models")
async def list_models(request: Request) -> dict[str, Any]:
    _authenticate(request)
    return {"object": "list", "data": [_model_obj(m) for m in MODELS]}


@router.get("/v1/models/{model_id:path}")
async def get_model(request: Request, model_id: str) -> dict[str, Any]:
    _authenticate(request)
    if model_id not in MODELS:
        raise OpenAIError(
            404, f"The model '{model_id}' does not exist or you do not have access to it.", code="model_not_found"
        )
    return _model_obj(model_id)


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise OpenAIError(
            400,
            "We could not parse the JSON body of your request. "
            "(HINT: This likely means you aren't using your HTTP library correctly. "
            "The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
        )
    return body


def _check_request(state: OpenAIState, body: dict[str, Any]) -> dict[str, Any] | None:
    """Validate the request; return the json_schema block of response_format, if any."""
    if not body.get("model"):
        raise OpenAIError(400, "you must provide a model parameter", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise OpenAIError(
            400,
            "Missing required parameter: 'messages'."
            if messages is None
            else "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            param="messages",
            code="missing_required_parameter" if messages is None else "empty_array",
        )
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in (
            "system",
            "developer",
            "user",
            "assistant",
            "tool",
            "function",
        ):
            raise OpenAIError(
                400, f"Invalid value for 'messages[{i}].role'.", param=f"messages[{i}].role", code="invalid_value"
            )
    fmt = body.get("response_format")
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        raise OpenAIError(
            400,
            f"Invalid value: '{kind}'. Supported values are: 'json_object', 'json_schema', and 'text'.",
            param="response_format.type",
            code="invalid_value",
        )
    if kind != "json_schema":
        if kind == "json_object" and "json" not in _prompt_text(messages).lower():
            raise OpenAIError(
                400,
                "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
                param="messages",
            )
        return None
    if not state.json_schema_supported:
        raise OpenAIError(400, "response_format json_schema is not supported", param="response_format")
    block = fmt.get("json_schema")
    if not isinstance(block, dict) or not block.get("name"):
        raise OpenAIError(
            400,
            "Missing required parameter: 'response_format.json_schema.name'.",
            param="response_format.json_schema.name",
            code="missing_required_parameter",
        )
    schema = block.get("schema") or {}
    if block.get("strict"):
        problem = strict_problem(schema)
        if problem:
            raise OpenAIError(
                400,
                f"Invalid schema for response_format '{block['name']}': {problem}",
                param="response_format",
                code="invalid_json_schema",
            )
    return block


def _default_content(body: dict[str, Any], schema_block: dict[str, Any] | None) -> str:
    messages = body["messages"]
    fmt = body.get("response_format") or {}
    schema = (schema_block or {}).get("schema") or {}
    if (schema_block is not None and analyst.wants_analysis(schema)) or (
        isinstance(fmt, dict) and fmt.get("type") == "json_object"
    ):
        system = "\n".join(
            _text_of(m.get("content"))
            for m in messages
            if isinstance(m, dict) and m.get("role") in ("system", "developer")
        )
        analysis = analyst.answer(_user_text(messages), system, schema or None)
        if analysis is not None:
            return json.dumps(analysis)
    if schema_block is not None:
        schema = schema_block.get("schema") or {}
        return json.dumps(generate(schema, schema, "", _user_text(messages)))
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        return json.dumps({"summary": "sandbox summary", "ok": True})
    last = _text_of(messages[-1].get("content"))
    return f"Sandbox answer ({len(last)} characters of input)."


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    state = _authenticate(request)
    body = await _json_body(request)
    schema_block = _check_request(state, body)
    item: dict[str, Any] = state.script.pop(0) if state.script else {}
    if item.get("delay_ms"):
        await asyncio.sleep(float(item["delay_ms"]) / 1000)
    if item.get("status"):
        status = int(item["status"])
        message = item.get("message") or (
            "Rate limit reached for requests"
            if status == 429
            else "The server had an error while processing your request. Sorry about that!"
        )
        return error_response(status, message, item.get("retry_after"), item.get("retry_after_ms"))
    state.completions += 1
    refusal = item.get("refusal")
    if refusal is not None:
        content: str | None = None
    elif "content" in item:
        raw = item["content"]
        content = raw if isinstance(raw, str) or raw is None else json.dumps(raw)
    else:
        content = _default_content(body, schema_block)
    model = body["model"] if "content" in item or refusal is not None else analyst.SANDBOX_MODEL
    prompt_tokens = int(item.get("prompt_tokens", count_tokens(_prompt_text(body["messages"]))))
    completion_tokens = int(item.get("completion_tokens", count_tokens(content or refusal or "")))
    created = int(state.now())
    cid = f"chatcmpl-sandbox{next(state.ids):06d}"
    message = {"role": "assistant", "content": content, "refusal": refusal, "annotations": []}
    finish = item.get("finish_reason", "stop")
    usage = _usage(prompt_tokens, completion_tokens)
    if body.get("stream"):
        return _stream(cid, created, model, content, refusal, finish, usage, body)
    return JSONResponse(
        {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": "fp_sandbox",
        }
    )


def _stream(
    cid: str,
    created: int,
    model: str,
    content: str | None,
    refusal: str | None,
    finish: str,
    usage: dict[str, Any],
    body: dict[str, Any],
) -> Response:
    def chunk(delta: dict[str, Any], finish_reason: str | None, with_usage: Any = None, choices: bool = True) -> str:
        data = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_sandbox",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
            if choices
            else [],
        }
        if with_usage is not None:
            data["usage"] = with_usage
        return f"data: {json.dumps(data)}\n\n"

    parts = [chunk({"role": "assistant", "content": "", "refusal": None}, None)]
    if refusal is not None:
        parts.append(chunk({"refusal": refusal}, None))
    elif content:
        step = max(1, len(content) // 3 + 1)
        parts += [chunk({"content": content[i : i + step]}, None) for i in range(0, len(content), step)]
    parts.append(chunk({}, finish))
    if (body.get("stream_options") or {}).get("include_usage"):
        parts.append(chunk({}, None, usage, choices=False))
    parts.append("data: [DONE]\n\n")
    return Response("".join(parts), media_type="text/event-stream")


# -- controls (/_sandbox/openai) -------------------------------------------------------------------
_ITEM_KEYS = {
    "content",
    "refusal",
    "finish_reason",
    "status",
    "retry_after",
    "retry_after_ms",
    "message",
    "delay_ms",
    "prompt_tokens",
    "completion_tokens",
}


class ModeBody(BaseModel):
    json_schema_supported: bool | None = None
    api_keys: list[str] | None = None


def _mode(state: OpenAIState) -> dict[str, Any]:
    return {"json_schema_supported": state.json_schema_supported, "api_keys": sorted(state.api_keys)}


@control.post("/script")
async def add_script(request: Request) -> dict[str, Any]:
    """Append one item, a list of items, or ``{"items": [...]}`` to the answer queue."""
    body = await request.json()
    items = body.get("items") if isinstance(body, dict) and "items" in body else body
    items = items if isinstance(items, list) else [items]
    for item in items:
        if not isinstance(item, dict):
            raise HTTPException(400, "script items must be objects")
        unknown = set(item) - _ITEM_KEYS
        if unknown:
            raise HTTPException(400, f"unknown script keys {sorted(unknown)}; allowed: {sorted(_ITEM_KEYS)}")
    state = _state(request)
    state.script.extend(dict(i) for i in items)
    return {"queued": len(state.script), "script": state.script}


@control.get("/script")
def get_script(request: Request) -> dict[str, Any]:
    state = _state(request)
    return {"queued": len(state.script), "script": state.script}


@control.delete("/script")
def clear_script(request: Request) -> dict[str, Any]:
    state = _state(request)
    n = len(state.script)
    state.script.clear()
    return {"cleared": n}


@control.post("/mode")
def set_mode(request: Request, body: ModeBody) -> dict[str, Any]:
    state = _state(request)
    if body.json_schema_supported is not None:
        state.json_schema_supported = body.json_schema_supported
    if body.api_keys is not None:
        state.api_keys = set(body.api_keys)
    return _mode(state)


@control.get("/mode")
def get_mode(request: Request) -> dict[str, Any]:
    return _mode(_state(request))


@control.get("/counts")
def counts(request: Request) -> dict[str, Any]:
    state = _state(request)
    return {"completions": state.completions, "queued": len(state.script)}
