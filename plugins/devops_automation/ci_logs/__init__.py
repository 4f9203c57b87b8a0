"""Failed CI job logs: excerpt, redaction, heuristic classification and LLM analysis (no Airflow imports).

The functions a DAG calls::

    from devops_automation.ci_logs import excerpt, redact, classify, analyse

    ex = excerpt(fail_log_bytes, passed=last_green_log_bytes, budget=4000)   # Excerpt: .lines, .text, .signals
    safe = redact(text).text                                                  # before anything leaves the process
    verdict = classify(ex, failure_reason=job.get("failure_reason"))          # Classification (offline)
    if needs_log_analysis(failure_reason): ...                                # runner/quota/policy reasons need no LLM
    result = analyse(ex, base_url=..., api_key=..., model=..., timeout=60, max_retries=2, job={...})
    # Analysis: analyser "llm" | "heuristic" | "heuristic_fallback", usage (model, tokens, latency)

Command line: ``PYTHONPATH=plugins python -m devops_automation.ci_logs FAIL_LOG [--passed PASS_LOG]
[--budget N] [--lines|--text|--json]``.
"""

from .classify import FAILURE_REASONS, classify, classify_excerpt, needs_log_analysis, reason_verdict
from .excerpt import ExcerptConfig, excerpt, tail_excerpt
from .llm import analyse, analyze, build_prompt, parse_answer
from .models import (
    Analysis,
    Classification,
    EvidenceLine,
    Excerpt,
    LLMUsage,
    Section,
    Signal,
    format_ranges,
    line_ranges,
)
from .redact import Redaction, redact, redact_obj, redact_text

__all__ = [
    "FAILURE_REASONS",
    "Analysis",
    "Classification",
    "EvidenceLine",
    "Excerpt",
    "ExcerptConfig",
    "LLMUsage",
    "Redaction",
    "Section",
    "Signal",
    "analyse",
    "analyze",
    "build_prompt",
    "classify",
    "classify_excerpt",
    "excerpt",
    "format_ranges",
    "line_ranges",
    "needs_log_analysis",
    "parse_answer",
    "reason_verdict",
    "redact",
    "redact_obj",
    "redact_text",
    "tail_excerpt",
]
