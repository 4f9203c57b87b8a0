"""OpenAI sandbox: the real ``openai`` SDK against a sandbox on a real port (scripts, errors, schemas)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

import openai
import pydantic
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from include.sandbox.app import create_app
from include.sandbox.client import SandboxClient, SandboxServer
from include.sandbox.systems.openai import generate, line_numbers, strict_problem

KEY = "sk-sandbox"
MSG = [{"role": "user", "content": "Summarise the weekly report."}]


class Finding(BaseModel):
    title: str
    severity: Literal["low", "medium", "high"]
    lines: list[int]


class Summary(BaseModel):
    headline: str
    score: float
    healthy: bool
    findings: list[Finding]
    note: str | None


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(systems=["openai"]) as srv:
        yield srv


@pytest.fixture()
def sb(server: SandboxServer) -> SandboxClient:
    c = SandboxClient(server.base_url)
    c.reset()
    return c


def make_client(sb: SandboxClient, key: str = KEY, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=sb.url("openai", "/v1"), **kw)


def script(sb: SandboxClient, *items: dict[str, Any]) -> None:
    sb.control("openai", "POST", "/script", json=list(items))


# -- plain completions ------------------------------------------------------------------------------
def test_create_returns_scripted_content_and_usage(sb: SandboxClient) -> None:
    script(sb, {"content": "All green this week."}, {"content": "second", "prompt_tokens": 7, "completion_tokens": 3})
    client = make_client(sb)
    first = client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert first.choices[0].message.content == "All green this week."
    assert first.choices[0].finish_reason == "stop"
    assert first.usage is not None
    assert first.usage.prompt_tokens == pytest.approx(len(MSG[0]["content"]) / 4, abs=1)
    assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens
    second = client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert (second.choices[0].message.content, second.usage.prompt_tokens, second.usage.completion_tokens) == (
        "second",
        7,
        3,
    )
    assert sb.control("openai", "GET", "/script")["queued"] == 0
    sent = sb.requests(system="openai", path="/v1/chat/completions")
    assert sent[0]["headers"]["authorization"] == f"Bearer {KEY}"
    assert json.loads(sent[0]["body"])["messages"] == MSG


def test_empty_queue_answers_deterministic_text(sb: SandboxClient) -> None:
    client = make_client(sb)
    a = client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    b = client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert a.choices[0].message.content == b.choices[0].message.content
    assert a.choices[0].message.content
    assert a.usage.prompt_tokens == pytest.approx(len(MSG[0]["content"]) / 4, abs=1)


def test_script_queue_can_be_listed_and_cleared(sb: SandboxClient) -> None:
    script(sb, {"content": "a"}, {"content": "b"})
    assert [i["content"] for i in sb.control("openai", "GET", "/script")["script"]] == ["a", "b"]
    assert sb.control("openai", "DELETE", "/script") == {"cleared": 2}
    with pytest.raises(RuntimeError, match="unknown script keys"):
        sb.control("openai", "POST", "/script", json={"contnet": "typo"})


def test_models_list(sb: SandboxClient) -> None:
    ids = [m.id for m in make_client(sb).models.list()]
    assert "gpt-4o-mini" in ids


def test_wrong_key_is_401(sb: SandboxClient) -> None:
    with pytest.raises(openai.AuthenticationError) as exc:
        make_client(sb, key="sk-wrong-key-0000").chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert exc.value.status_code == 401
    assert exc.value.code == "invalid_api_key"
    assert exc.value.body["type"] == "invalid_request_error"
    assert exc.value.body["param"] is None


# -- structured output ------------------------------------------------------------------------------
def test_parse_with_pydantic_model_uses_generated_object(sb: SandboxClient) -> None:
    text = "Failing lines:\n12: assert x\n 40: raise Boom\nsee also L77"
    done = make_client(sb).chat.completions.parse(
        model="gpt-4o-mini", messages=[{"role": "user", "content": text}], response_format=Summary
    )
    parsed = done.choices[0].message.parsed
    assert isinstance(parsed, Summary)
    assert parsed.findings[0].severity == "low"
    assert parsed.findings[0].lines == [12, 40, 77]
    sent = json.loads(sb.requests(system="openai")[-1]["body"])
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["strict"] is True


def test_parse_with_scripted_json_content(sb: SandboxClient) -> None:
    obj = {"headline": "ok", "score": 0.5, "healthy": False, "findings": [], "note": None}
    script(sb, {"content": json.dumps(obj)})
    parsed = (
        make_client(sb)
        .chat.completions.parse(model="gpt-4o-mini", messages=MSG, response_format=Summary)
        .choices[0]
        .message.parsed
    )
    assert parsed == Summary(**obj)


def test_invalid_json_content_reaches_the_client(sb: SandboxClient) -> None:
    script(sb, {"content": "{not json"}, {"content": '{"headline": 1}'})
    client = make_client(sb)
    raw = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[*MSG, {"role": "user", "content": "json"}],
        response_format={"type": "json_object"},
    )
    assert raw.choices[0].message.content == "{not json"
    with pytest.raises(pydantic.ValidationError):  # raised by the SDK's parsing of message.content
        client.chat.completions.parse(model="gpt-4o-mini", messages=MSG, response_format=Summary)


def test_refusal_is_returned(sb: SandboxClient) -> None:
    script(sb, {"refusal": "I can't help with that."})
    msg = (
        make_client(sb)
        .chat.completions.parse(model="gpt-4o-mini", messages=MSG, response_format=Summary)
        .choices[0]
        .message
    )
    assert msg.refusal == "I can't help with that."
    assert msg.parsed is None and msg.content is None


def test_length_finish_reason_raises_in_parse(sb: SandboxClient) -> None:
    script(sb, {"finish_reason": "length", "content": '{"headline": "tru'})
    with pytest.raises(openai.LengthFinishReasonError):
        make_client(sb).chat.completions.parse(model="gpt-4o-mini", messages=MSG, response_format=Summary)


def test_json_object_default_answer(sb: SandboxClient) -> None:
    out = make_client(sb).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Answer in JSON"}],
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(out.choices[0].message.content), dict)


def test_strict_schema_violations_are_400(sb: SandboxClient) -> None:
    client = make_client(sb)
    loose = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    with pytest.raises(openai.BadRequestError, match="additionalProperties"):
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MSG,
            response_format={"type": "json_schema", "json_schema": {"name": "X", "strict": True, "schema": loose}},
        )
    partial = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    with pytest.raises(openai.BadRequestError, match="Missing 'b'"):
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MSG,
            response_format={"type": "json_schema", "json_schema": {"name": "X", "strict": True, "schema": partial}},
        )
    ok = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MSG,
        response_format={"type": "json_schema", "json_schema": {"name": "X", "strict": False, "schema": partial}},
    )
    assert json.loads(ok.choices[0].message.content) == {"a": "sandbox a", "b": 1}


def test_json_schema_unsupported_mode_allows_json_object_fallback(sb: SandboxClient) -> None:
    assert (
        sb.control("openai", "POST", "/mode", json={"json_schema_supported": False})["json_schema_supported"] is False
    )
    client = make_client(sb)
    with pytest.raises(openai.BadRequestError, match="json_schema is not supported") as exc:
        client.chat.completions.parse(model="gpt-4o-mini", messages=MSG, response_format=Summary)
    assert exc.value.status_code == 400
    fallback = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[*MSG, {"role": "system", "content": "reply in json"}],
        response_format={"type": "json_object"},
    )
    assert json.loads(fallback.choices[0].message.content)


# -- errors, retries, timeouts ----------------------------------------------------------------------
def test_429_then_success_is_retried_by_the_sdk(sb: SandboxClient) -> None:
    script(sb, {"status": 429, "retry_after": 0}, {"content": "after retry"})
    out = make_client(sb, max_retries=2).chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert out.choices[0].message.content == "after retry"
    sent = sb.requests(system="openai", path="/v1/chat/completions")
    assert [r["status"] for r in sent] == [429, 200]
    assert sent[1]["headers"].get("x-stainless-retry-count") == "1"


def test_429_without_retries_raises_rate_limit_error(sb: SandboxClient) -> None:
    script(sb, {"status": 429, "retry_after_ms": 5, "message": "slow down"})
    with pytest.raises(openai.RateLimitError) as exc:
        make_client(sb, max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert exc.value.code == "rate_limit_exceeded"
    assert exc.value.body["type"] == "requests"
    assert exc.value.response.headers["retry-after-ms"] == "5"
    assert "slow down" in str(exc.value)


def test_500_is_internal_server_error(sb: SandboxClient) -> None:
    script(sb, {"status": 503})
    with pytest.raises(openai.InternalServerError) as exc:
        make_client(sb, max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert exc.value.status_code == 503
    assert exc.value.body["type"] == "server_error"


def test_slow_answer_times_out(sb: SandboxClient) -> None:
    script(sb, {"delay_ms": 2000, "content": "too late"})
    with pytest.raises(openai.APITimeoutError):
        make_client(sb, timeout=0.5, max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=MSG)


def test_injected_fault_uses_openai_error_shape(sb: SandboxClient) -> None:
    sb.fault(system="openai", path="/chat/completions", status=429, retry_after=0, times=1)
    out = make_client(sb, max_retries=1).chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert out.choices[0].message.content
    first = sb.requests(system="openai", path="/v1/chat/completions")[0]
    assert first["status"] == 429 and first["fault"] is not None


def test_streaming_with_usage(sb: SandboxClient) -> None:
    script(sb, {"content": "streamed answer"})
    stream = make_client(sb).chat.completions.create(
        model="gpt-4o-mini", messages=MSG, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "streamed answer"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


# -- unit level: schema generation and rules ---------------------------------------------------------
def test_generated_object_validates_against_pydantic_schema() -> None:
    schema = openai.lib._pydantic.to_strict_json_schema(Summary)
    assert strict_problem(schema) is None
    Summary.model_validate(generate(schema, schema, "", "no numbers here"))
    assert generate(schema, schema)["findings"][0]["lines"] == [1]


def test_line_numbers() -> None:
    assert line_numbers("10: a\n  11: b\nat 12:30 see L99 and XL5") == [10, 11, 99]


def test_bad_requests_in_process() -> None:
    c = TestClient(create_app(systems=["openai"]))
    h = {"Authorization": f"Bearer {KEY}"}
    assert c.post("/openai/v1/chat/completions", headers=h, content=b"{oops").status_code == 400
    r = c.post("/openai/v1/chat/completions", headers=h, json={"model": "m"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    r = c.post("/openai/v1/chat/completions", json={"model": "m", "messages": MSG})
    assert r.status_code == 401 and r.json()["error"]["type"] == "invalid_request_error"
    assert c.get("/_sandbox/openai/counts").json() == {"completions": 0, "queued": 0}
