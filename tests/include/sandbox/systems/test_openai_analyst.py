"""The sandbox model's own failure analysis: ``ci_logs.analyse`` (the real ``openai`` SDK) against the
sandbox, on the seeded GitLab scenarios' logs, compared with the package's heuristic."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from devops_automation.ci_logs import analyse, build_prompt, classify_excerpt, excerpt
from include.sandbox.client import SandboxClient, SandboxServer
from include.sandbox.systems import openai_analyst

TOKEN = "glpat-sandbox-token"


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(systems=["gitlab", "openai"]) as srv:
        yield srv


@pytest.fixture
def sb(server: SandboxServer) -> SandboxClient:
    client = SandboxClient(server.base_url)
    client.reset()
    return client


def job_log(sb: SandboxClient, name: str) -> bytes:
    sc = sb.control("gitlab", "GET", "/scenarios")[name]
    url = sb.url("gitlab", f"/api/v4/projects/{sc['project_id']}/jobs/{sc['failed_job_ids'][0]}/trace")
    r = requests.get(url, headers={"PRIVATE-TOKEN": TOKEN}, timeout=10)
    r.raise_for_status()
    return r.content


def run(sb: SandboxClient, log: bytes, **job: Any) -> Any:
    ex = excerpt(log, budget=4000)
    result = analyse(
        ex, base_url=sb.url("openai", "/v1"), api_key="sk-sandbox", model="gpt-4o-mini", job=job, max_retries=0
    )
    return ex, result


@pytest.mark.parametrize(
    ("scenario", "job_name", "category", "decisive", "in_root", "in_steps"),
    [
        (
            "pytest",
            "unit-tests",
            "test_failure",
            "E       AssertionError: assert Decimal('59.99') == Decimal('60.00')",
            "tests/test_ledger.py::test_balance_after_partial_refund",
            "pytest tests/test_ledger.py::test_balance_after_partial_refund",
        ),
        (
            "compile",
            "build",
            "compile_error",
            "internal/retry/budget.go:57:9: undefined: backoffPolicy",
            'internal/retry/budget.go line 57: "undefined: backoffPolicy". 1 more compiler error follows',
            "go build ./...",
        ),
    ],
)
def test_the_answer_reads_the_excerpt_like_the_heuristic(
    sb: SandboxClient, scenario: str, job_name: str, category: str, decisive: str, in_root: str, in_steps: str
) -> None:
    ex, result = run(sb, job_log(sb, scenario), job_name=job_name, failure_reason="script_failure")
    heuristic = classify_excerpt(ex)
    assert result.analyser == "llm", result.reason  # valid against the schema and the excerpt, first time
    assert result.usage.attempts == 1
    assert result.usage.model == openai_analyst.SANDBOX_MODEL
    assert result.category == heuristic.category == category
    assert result.evidence[0].text == decisive
    assert result.evidence_lines[0] == heuristic.evidence_lines[0]
    assert set(result.evidence_lines) <= set(ex.lines)
    assert in_root in result.root_cause
    assert result.root_cause != heuristic.explanation  # reworded, not the hint copied
    assert any(in_steps in step for step in result.fix_steps), result.fix_steps
    assert result.is_transient is False
    assert 0.5 <= result.confidence <= 0.85


def test_json_object_mode_gets_the_same_analysis(sb: SandboxClient) -> None:
    sb.control("openai", "POST", "/mode", json={"json_schema_supported": False})
    _, result = run(sb, job_log(sb, "compile"), job_name="build")
    assert result.analyser == "llm", result.reason
    assert result.usage.response_format == "json_object"
    assert result.category == "compile_error"
    assert "backoffPolicy" in result.evidence[0].text


def test_a_network_failure_is_transient_and_a_log_the_hint_cannot_place_gets_its_own_reading(
    sb: SandboxClient,
) -> None:
    ex, result = run(sb, job_log(sb, "system"), job_name="integration-tests")
    assert (result.category, result.is_transient) == ("infrastructure", True)
    assert "connection refused" in result.evidence[0].text
    ex, result = run(sb, job_log(sb, "dbt"), job_name="dbt-build")
    assert classify_excerpt(ex).category == "unknown"
    assert result.category == "test_failure"
    assert "Failure in test not_null_fct_ventes_montant_ttc" in result.evidence[0].text
    assert any("dbt test --select not_null_fct_ventes_montant_ttc" in s for s in result.fix_steps)
    assert result.confidence < 0.85  # its own reading only: less sure than when the hint agrees


def test_scripted_answers_still_win_and_report_the_requested_model(sb: SandboxClient) -> None:
    log = job_log(sb, "pytest")
    line = excerpt(log, budget=4000).lines[-1]
    content = (
        '{"category": "timeout", "root_cause": "scripted", "fix_steps": ["x"], '
        f'"evidence_lines": [{line}], "is_transient": true, "confidence": 0.5}}'
    )
    sb.control("openai", "POST", "/script", json={"content": content})
    _, result = run(sb, log)
    assert (result.category, result.root_cause, result.usage.model) == ("timeout", "scripted", "gpt-4o-mini")


def test_only_a_prompt_with_an_excerpt_gets_an_analysis() -> None:
    assert openai_analyst.answer("Summarise the weekly report.") is None
    ex = excerpt(b"$ make\nsrc/a.c:3:1: error: expected ';' before '}' token\nERROR: Job failed: exit code 2\n")
    prompt = build_prompt(ex, classify_excerpt(ex), {"job_name": "build"})
    got = openai_analyst.answer(prompt.user, prompt.system)
    assert got is not None
    assert (got["category"], got["evidence_lines"], got["is_transient"]) == ("compile_error", [2], False)
    assert "src/a.c line 3" in got["root_cause"]
    assert "more compiler" not in got["root_cause"]  # one error only
    assert any("(make)" in s for s in got["fix_steps"])
    assert openai_analyst.wants_analysis({"properties": {key: {} for key in openai_analyst.ANSWER_KEYS}})
    assert not openai_analyst.wants_analysis({"properties": {"headline": {}}})
