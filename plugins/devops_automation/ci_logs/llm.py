"""Root-cause analysis of a failed CI job with an OpenAI-compatible model (the official ``openai`` SDK).

Works with any endpoint that speaks ``/v1/chat/completions``: OpenAI, Azure OpenAI (v1 API), OpenRouter,
vLLM, Ollama, LM Studio — the connection is plain arguments (``base_url``, ``api_key``, ``model``,
``timeout``, ``max_retries``) or a ready ``openai.OpenAI`` client (what an Airflow hook would pass).

Flow of :func:`analyse`:

1. excerpt the log (unless given an :class:`~devops_automation.ci_logs.models.Excerpt`) and classify it
   heuristically (:mod:`~devops_automation.ci_logs.classify`) — the fallback, and a hint for the model;
2. no model configured → the heuristic result, ``analyser="heuristic"``;
3. render the prompts from ``ci_logs/prompts/`` (Jinja2): the log sits in a delimited data block with
   a random id, and the system prompt tells the model to ignore instructions found inside it;
4. **redact** the whole user message (and the job metadata in it) before it leaves the process;
5. ``chat.completions.create`` with ``response_format`` ``json_schema`` (strict); if the server rejects
   that (HTTP 400, e.g. some local servers), ``json_object`` and our own validation;
6. validate the answer (pydantic + every evidence line must be a kept line of the excerpt); a
   refused, truncated or invalid answer is retried once with the reason, then →
   ``analyser="heuristic_fallback"`` with ``reason``; API errors (after the SDK's own retries of
   429/5xx/timeouts) → the same fallback;
7. record model, prompt/completion tokens (summed over attempts) and latency.

The model's answer is treated as text: it is parsed as JSON, validated, redacted, and never executed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import jinja2
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .classify import classify_excerpt
from .excerpt import excerpt as make_excerpt
from .models import Analysis, Classification, EvidenceLine, Excerpt, LLMUsage
from .normalize import LogSource
from .redact import redact, redact_obj
from .signals import CATEGORIES

if TYPE_CHECKING:  # the SDK is imported lazily: the heuristic path must work without it
    from openai import OpenAI

logger = logging.getLogger(__name__)

#: ci_logs/prompts/, package data (so an installed package finds them as well as a copied plugins folder);
#: the environment variable ``DEVOPS_AUTOMATION_PROMPTS_DIR`` or the ``prompts_dir`` argument override it.
DEFAULT_PROMPTS_DIR = Path(__file__).resolve().with_name("prompts")
PROMPTS_DIR_ENV = "DEVOPS_AUTOMATION_PROMPTS_DIR"
SYSTEM_TEMPLATE = "failure_analysis_system.md"
USER_TEMPLATE = "failure_analysis_user.md"
RETRY_TEMPLATE = "failure_analysis_retry.md"
SCHEMA_NAME = "ci_failure_analysis"
MAX_EVIDENCE = 8


class LLMAnswer(BaseModel):
    """The structured answer we ask the model for."""

    model_config = ConfigDict(extra="forbid")

    category: Literal[
        "compile_error",
        "test_failure",
        "dependency",
        "infrastructure",
        "timeout",
        "configuration",
        "lint",
        "permission",
        "unknown",
    ]
    root_cause: str = Field(min_length=3, max_length=2000)
    fix_steps: list[str] = Field(min_length=1, max_length=10)
    evidence_lines: list[int] = Field(min_length=1)
    is_transient: bool
    confidence: float = Field(ge=0.0, le=1.0)


#: The JSON schema sent with ``response_format`` (strict: every property required, no extras).
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["category", "root_cause", "fix_steps", "evidence_lines", "is_transient", "confidence"],
    "properties": {
        "category": {"type": "string", "enum": list(CATEGORIES), "description": "Kind of failure."},
        "root_cause": {"type": "string", "description": "One or two sentences naming the cause."},
        "fix_steps": {
            "type": "array",
            "items": {"type": "string"},
            "description": "1 to 5 concrete steps, most useful first.",
        },
        "evidence_lines": {
            "type": "array",
            "items": {"type": "integer"},
            "description": "Line numbers (as shown before the colon in the excerpt) that prove the cause.",
        },
        "is_transient": {"type": "boolean", "description": "True if a plain retry would likely pass."},
        "confidence": {"type": "number", "description": "0 to 1."},
    },
}


@dataclass(frozen=True)
class Prompt:
    """The rendered (and redacted) messages of one analysis."""

    system: str
    user: str
    nonce: str
    redactions: dict[str, int]

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user}]


class InvalidAnswer(ValueError):
    """The model answered, but not usably (refusal, truncation, bad JSON, evidence not in the excerpt)."""


# ---- prompts -------------------------------------------------------------------------------------
def _env(prompts_dir: Path | None) -> jinja2.Environment:
    folder = prompts_dir or os.environ.get(PROMPTS_DIR_ENV) or DEFAULT_PROMPTS_DIR
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=False,
    )


_MARKER_LIKE = re.compile(r"<<<|>>>")


def build_prompt(
    ex: Excerpt,
    hint: Classification,
    job: dict[str, Any] | None = None,
    prompts_dir: Path | None = None,
    nonce: str | None = None,
) -> Prompt:
    """Render the system and user messages; the user message (log, job metadata) is redacted."""
    env = _env(prompts_dir)
    nonce = nonce or secrets.token_hex(6)
    system = env.get_template(SYSTEM_TEMPLATE).render(
        nonce=nonce, categories=list(CATEGORIES), schema_json=json.dumps(ANSWER_SCHEMA, indent=1)
    )
    data = _MARKER_LIKE.sub(
        lambda m: "‹‹‹" if m.group(0) == "<<<" else "›››", ex.text
    )  # the log cannot fake our markers
    job_items = {str(k): " ".join(str(v).split())[:300] for k, v in (job or {}).items() if v not in (None, "")}
    user = env.get_template(USER_TEMPLATE).render(
        nonce=nonce,
        job=job_items,
        total_lines=ex.total_lines,
        kept_lines=len(ex.lines),
        failing_section=ex.failing_section,
        used_passing_log=ex.used_passing_log,
        hint_category=hint.category,
        hint_explanation=hint.explanation,
        excerpt=data,
    )
    red = redact(user)
    return Prompt(system=system, user=red.text, nonce=nonce, redactions=red.counts)


def _retry_message(problem: str, ex: Excerpt, prompts_dir: Path | None) -> str:
    example = ", ".join(str(n) for n in ex.lines[:3]) or "12"
    return _env(prompts_dir).get_template(RETRY_TEMPLATE).render(problem=problem, example_lines=example)


# ---- answers -------------------------------------------------------------------------------------
_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$")


def parse_answer(content: str | None, ex: Excerpt) -> LLMAnswer:
    """Parse and validate the model's text; raises :class:`InvalidAnswer` with a short reason."""
    if content is None or not content.strip():
        raise InvalidAnswer("the answer was empty")
    text = _FENCE.sub("", content.strip())
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidAnswer(f"the answer was not valid JSON ({exc.msg} at position {exc.pos})") from None
    if not isinstance(data, dict):
        raise InvalidAnswer("the answer was not a JSON object")
    try:
        answer = LLMAnswer.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "answer"
        raise InvalidAnswer(f"field {where}: {first.get('msg')}") from None
    kept = set(ex.lines)
    missing = [n for n in answer.evidence_lines if n not in kept]
    if missing:
        raise InvalidAnswer(f"evidence_lines {missing[:5]} are not lines of the excerpt")
    if not any(step.strip() for step in answer.fix_steps):
        raise InvalidAnswer("fix_steps are empty")
    return answer


def _from_answer(
    answer: LLMAnswer, ex: Excerpt, heuristic: Classification, usage: LLMUsage, redactions: dict[str, int]
) -> Analysis:
    lines = list(dict.fromkeys(answer.evidence_lines))[:MAX_EVIDENCE]
    clean = redact_obj(
        {"root_cause": answer.root_cause.strip(), "fix_steps": [s.strip() for s in answer.fix_steps if s.strip()][:10]}
    )
    assert isinstance(clean, dict)
    return Analysis(
        category=answer.category,
        root_cause=clean["root_cause"],
        fix_steps=clean["fix_steps"],
        evidence_lines=lines,
        is_transient=answer.is_transient,
        confidence=round(answer.confidence, 3),
        analyser="llm",
        reason=None,
        evidence=[EvidenceLine(n, ex.line_text.get(n, "")) for n in lines],
        usage=usage,
        heuristic=heuristic,
        excerpt_lines=list(ex.lines),
        excerpt_chars=ex.chars,
        redactions=redactions,
    )


def heuristic_analysis(
    ex: Excerpt,
    heuristic: Classification | None = None,
    analyser: Literal["heuristic", "heuristic_fallback"] = "heuristic",
    reason: str | None = None,
    usage: LLMUsage | None = None,
    redactions: dict[str, int] | None = None,
) -> Analysis:
    """An :class:`Analysis` built from the heuristic classification."""
    h = heuristic or classify_excerpt(ex)
    return Analysis(
        category=h.category,
        root_cause=h.explanation,
        fix_steps=[h.next_step],
        evidence_lines=h.evidence_lines,
        is_transient=h.is_transient,
        confidence=h.confidence,
        analyser=analyser,
        reason=reason,
        evidence=list(h.evidence),
        usage=usage,
        heuristic=h,
        excerpt_lines=list(ex.lines),
        excerpt_chars=ex.chars,
        redactions=dict(redactions or ex.redactions),
    )


# ---- the call ------------------------------------------------------------------------------------
def make_client(base_url: str | None, api_key: str | None, timeout: float = 60.0, max_retries: int = 2) -> OpenAI:
    """An ``openai.OpenAI`` client; local servers without keys get a placeholder key."""
    from openai import OpenAI

    return OpenAI(api_key=api_key or "not-needed", base_url=base_url or None, timeout=timeout, max_retries=max_retries)


def _response_format(mode: str) -> dict[str, Any]:
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": SCHEMA_NAME, "strict": True, "schema": ANSWER_SCHEMA}}
    return {"type": "json_object"}


def _adaptation(exc: Exception, kwargs: dict[str, Any]) -> str | None:
    """What to change after an HTTP 400 from an OpenAI-compatible server, or None (a real error).

    Servers differ: some reject ``response_format`` json_schema (→ json_object and our own
    validation), reasoning models reject ``temperature``, older servers want ``max_tokens``.
    """
    from openai import BadRequestError

    if not isinstance(exc, BadRequestError):
        return None
    text = f"{getattr(exc, 'message', '')} {getattr(exc, 'body', '')}".lower()
    if "temperature" in text and "temperature" in kwargs:
        return "temperature"
    if "max_completion_tokens" in text and "max_completion_tokens" in kwargs:
        return "max_tokens"
    fmt = kwargs.get("response_format") or {}
    if fmt.get("type") == "json_schema" and any(
        w in text for w in ("response_format", "json_schema", "schema", "structured", "not supported", "unsupported")
    ):
        return "json_object"
    return None


def _describe(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    msg = " ".join(str(getattr(exc, "message", None) or exc).split())[:200]
    return f"{type(exc).__name__}{f' ({status})' if status else ''}: {redact(msg).text}"


def analyse(
    log: Excerpt | LogSource,
    passed: LogSource | None = None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    model: str | None = None,
    timeout: float = 60.0,
    max_retries: int = 2,
    budget: int = 4000,
    job: dict[str, Any] | None = None,
    client: OpenAI | None = None,
    prompts_dir: Path | None = None,
    temperature: float | None = 0.0,
    max_completion_tokens: int = 1200,
) -> Analysis:
    """Analyse a failed job's log: the LLM's answer when it is valid, the heuristic otherwise.

    ``log`` is the failed job's log (or an excerpt already made); ``passed`` the log of the last
    successful run of the same job. ``job`` is metadata shown to the model (project, job name, stage,
    ref, failure_reason, …; redacted like the log). Pass either ``client`` or ``base_url``/``api_key``;
    without ``model`` (or without both a client and an endpoint/key) only the heuristic runs.
    """
    ex = log if isinstance(log, Excerpt) else make_excerpt(log, passed, budget=budget)
    failure_reason = str((job or {}).get("failure_reason") or "") or None
    heuristic = classify_excerpt(ex, failure_reason=failure_reason)
    if not model or (client is None and not base_url and not api_key):
        return heuristic_analysis(ex, heuristic, "heuristic", "no LLM connection configured")
    prompt = build_prompt(ex, heuristic, job, prompts_dir)
    redactions = dict(ex.redactions)
    for k, v in prompt.redactions.items():
        redactions[k] = redactions.get(k, 0) + v
    if client is None:
        client = make_client(base_url, api_key, timeout, max_retries)
    usage = LLMUsage(model=model, base_url=_safe_url(base_url or str(getattr(client, "base_url", "") or "")))
    messages: list[dict[str, str]] = prompt.messages()
    mode = "json_schema"
    problem: str | None = None
    started = time.perf_counter()
    try:
        adapted: set[str] = set()
        while usage.attempts < 2:
            usage.attempts += 1
            kwargs: dict[str, Any] = {"model": model, "messages": messages, "response_format": _response_format(mode)}
            if temperature is not None and "temperature" not in adapted:
                kwargs["temperature"] = temperature
            if max_completion_tokens:
                kwargs["max_tokens" if "max_tokens" in adapted else "max_completion_tokens"] = max_completion_tokens
            try:
                completion = client.chat.completions.create(**kwargs)
            except Exception as exc:
                change = _adaptation(exc, kwargs)
                if change is None or change in adapted:
                    raise
                logger.info("model endpoint rejected the request (%s); retrying with %s", _describe(exc), change)
                adapted.add(change)
                if change == "json_object":
                    mode = "json_object"
                    usage.response_format = mode
                usage.attempts -= 1  # not the model's fault: does not count as an attempt
                continue
            usage.model = getattr(completion, "model", None) or model
            u = getattr(completion, "usage", None)
            if u is not None:
                usage.prompt_tokens += int(getattr(u, "prompt_tokens", 0) or 0)
                usage.completion_tokens += int(getattr(u, "completion_tokens", 0) or 0)
                usage.total_tokens = usage.prompt_tokens + usage.completion_tokens
            choice = completion.choices[0] if completion.choices else None
            try:
                if choice is None:
                    raise InvalidAnswer("the response had no choices")
                message = choice.message
                if getattr(message, "refusal", None):
                    raise InvalidAnswer(f"the model refused: {' '.join(str(message.refusal).split())[:200]}")
                if choice.finish_reason == "length":
                    raise InvalidAnswer("the answer was cut off (finish_reason=length)")
                answer = parse_answer(message.content, ex)
            except InvalidAnswer as bad:
                problem = str(bad)
                logger.warning("invalid LLM answer (attempt %d): %s", usage.attempts, problem)
                content = getattr(getattr(choice, "message", None), "content", None) if choice else None
                if content:
                    messages = [*messages, {"role": "assistant", "content": redact(content[:4000]).text}]
                messages = [*messages, {"role": "user", "content": _retry_message(problem, ex, prompts_dir)}]
                continue
            usage.latency_s = round(time.perf_counter() - started, 3)
            return _from_answer(answer, ex, heuristic, usage, redactions)
    except Exception as exc:  # API errors after the SDK's own retries, connection errors, timeouts
        from openai import OpenAIError

        logger.warning(
            "LLM analysis failed, using the heuristic: %s", _describe(exc), exc_info=not isinstance(exc, OpenAIError)
        )
        usage.latency_s = round(time.perf_counter() - started, 3)
        return heuristic_analysis(
            ex, heuristic, "heuristic_fallback", f"LLM call failed: {_describe(exc)}", usage, redactions
        )
    usage.latency_s = round(time.perf_counter() - started, 3)
    return heuristic_analysis(
        ex, heuristic, "heuristic_fallback", f"invalid LLM answer twice: {problem}", usage, redactions
    )


def _safe_url(url: str) -> str | None:
    """The endpoint without credentials or query (for the record)."""
    if not url:
        return None
    return redact(url.split("?", 1)[0]).text


analyze = analyse  # American spelling
