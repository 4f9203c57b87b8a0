"""Offline failure classification: category, transient or not, evidence lines, and a templated
explanation and next step. Used when no LLM is configured and as the fallback when the LLM fails.

It works on the error signals that :func:`~devops_automation.ci_logs.excerpt.excerpt` collected from the
*whole* log (not only the excerpt): every distinct error message with its score (already lowered when
the passing log shows the same message or when it sits in runner boilerplate), its family and
category (:mod:`~devops_automation.ci_logs.signals`).

Scoring: per category, the strongest signal counts fully, the next two at 1/2 and 1/4 (many lines
of one kind should not outvote one strong line of another). Infrastructure problems cause cascades
(a full disk makes compilers and tests fail too), so they get a small bonus. The winning category's
strongest signal also decides whether a retry is worthwhile.
"""

from __future__ import annotations

from collections import defaultdict

from .excerpt import excerpt as make_excerpt
from .models import Classification, EvidenceLine, Excerpt, Signal
from .normalize import LogSource
from .signals import CATEGORIES

#: Multipliers for categories whose errors tend to cause others (applied to the category score).
CATEGORY_BIAS = {"infrastructure": 1.2, "timeout": 1.1, "permission": 1.05, "dependency": 1.05}
#: Families that make a failure worth one automatic retry.
TRANSIENT_FAMILIES = frozenset({"disk_full", "runner_lost", "network"})

EXPLANATIONS: dict[str, tuple[str, str]] = {
    "compile_error": (
        "The code did not compile: {first}",
        (
            "Fix the first compiler error at the file and line it names (later errors are often consequences of it). "
            "If the change does not touch that code, look for an API change in an upgraded dependency."
        ),
    ),
    "test_failure": (
        "Tests failed: {first}",
        (
            "Run the failing test locally and compare expected with actual values. If it passes locally and on "
            "a retry, treat it as flaky: quarantine it and open an issue."
        ),
    ),
    "dependency": (
        "A dependency could not be resolved or installed: {first}",
        (
            "Check the coordinates/version named in the error, the lock file and the registry or repository settings; "
            "if the registry was unreachable, retry once."
        ),
    ),
    "infrastructure": (
        "The build machine or its network failed: {first}",
        "Retry the job once; if it fails the same way, fix the runner (disk space, memory, network access).",
    ),
    "timeout": (
        "The job or one of its steps ran out of time: {first}",
        (
            "Find the step that hung (the last lines before the timeout); raise the limit only if the work "
            "legitimately grew."
        ),
    ),
    "configuration": (
        "The job's configuration or environment is wrong: {first}",
        "Check the CI configuration, paths, environment variables and tool versions named in the error.",
    ),
    "lint": (
        "A lint, formatting or static-analysis check failed: {first}",
        "Run the same checker locally and fix or reformat the files it reports.",
    ),
    "permission": (
        "Access was denied: {first}",
        (
            "Check the credentials the job uses (expiry, scopes, protected variables) and the file permissions "
            "on the runner."
        ),
    ),
    "unknown": (
        "No known failure pattern matched; the most error-like line is: {first}",
        "Read the excerpt from its first error line; re-run with verbose logging if it does not say enough.",
    ),
}

#: More precise wording for the infrastructure families.
INFRA_DETAILS: dict[str, tuple[str, str]] = {
    "disk_full": (
        "The runner ran out of disk space: {first}",
        (
            "Retry on a clean runner; free space on the machine (workspaces, caches, docker images) or give it "
            "a bigger disk."
        ),
    ),
    "out_of_memory": (
        "The build ran out of memory: {first}",
        (
            "Raise the memory limit (JVM -Xmx, NODE_OPTIONS=--max-old-space-size, container limits) or reduce "
            "parallelism; check tests for leaks."
        ),
    ),
    "network": (
        "A network request failed: {first}",
        (
            "Retry once; if it persists, check the remote service's status, DNS/proxy settings and the registry "
            "credentials."
        ),
    ),
    "runner_lost": (
        "The runner was lost or shut down during the job: {first}",
        "Retry the job; if it recurs, check the runner host (agent logs, resource usage, spot/preemptible instances).",
    ),
}


#: GitLab's ``failure_reason`` of a failed job -> (category, worth one automatic retry). Reasons that
#: say the job's own script failed (``script_failure``, ``unknown_failure``) are not here: the log decides.
FAILURE_REASONS: dict[str, tuple[str, bool]] = {
    # runner and server side
    "runner_system_failure": ("infrastructure", True),
    "runner_interrupted": ("infrastructure", True),
    "runner_external_dependency_failure": ("infrastructure", True),
    "api_failure": ("infrastructure", True),
    "scheduler_failure": ("infrastructure", True),
    "data_integrity_failure": ("infrastructure", True),
    "unmet_prerequisites": ("infrastructure", True),
    "job_router_failure": ("infrastructure", True),
    "reached_downstream_pipeline_trigger_rate_limit": ("infrastructure", True),
    "no_matching_runner": ("infrastructure", False),
    "ci_quota_exceeded": ("infrastructure", False),
    "runner_unsupported": ("configuration", False),
    "runner_configuration_error": ("configuration", False),
    # time
    "stuck_or_timeout_failure": ("timeout", True),
    "stuck_pending_with_matching_runners": ("timeout", True),
    "stuck_pending_no_matching_runners": ("timeout", True),
    "no_updates_running": ("timeout", True),
    "no_updates_canceling": ("timeout", True),
    "job_execution_timeout": ("timeout", True),
    "job_execution_server_timeout": ("timeout", True),
    "server_timeout_running": ("timeout", True),
    "server_timeout_canceling": ("timeout", True),
    # dependencies, schedule, configuration
    "missing_dependency_failure": ("dependency", False),
    "stale_schedule": ("configuration", False),
    "archived_failure": ("configuration", False),
    "pipeline_loop_detected": ("configuration", False),
    "trace_size_exceeded": ("configuration", False),
    "secrets_provider_not_found": ("configuration", False),
    "environment_creation_failure": ("configuration", False),
    "forward_deployment_failure": ("configuration", False),
    "failed_outdated_deployment_job": ("configuration", False),
    "invalid_bridge_trigger": ("configuration", False),
    "bridge_pipeline_is_child_pipeline": ("configuration", False),
    "downstream_pipeline_creation_failed": ("configuration", False),
    "downstream_bridge_project_not_found": ("configuration", False),
    "upstream_bridge_project_not_found": ("configuration", False),
    "downstream_project_trigger_resolved_to_empty": ("configuration", False),
    "reached_max_descendant_pipelines_depth": ("configuration", False),
    "reached_max_pipeline_hierarchy_size": ("configuration", False),
    # access
    "deployment_rejected": ("permission", False),
    "protected_environment_failure": ("permission", False),
    "user_blocked": ("permission", False),
    "project_deleted": ("permission", False),
    "builds_disabled": ("permission", False),
    "ip_restriction_failure": ("permission", False),
    "insufficient_bridge_permissions": ("permission", False),
    "insufficient_upstream_permissions": ("permission", False),
    "duo_workflow_not_allowed": ("permission", False),
    "id_token_burned_project_path": ("permission", False),
    "job_token_expired": ("permission", True),
}
#: Reasons that leave the diagnosis to the log (and so to the LLM).
SCRIPT_REASONS = frozenset({"script_failure", "unknown_failure", ""})


def reason_verdict(failure_reason: str | None) -> tuple[str, bool] | None:
    """(category, transient) that GitLab's ``failure_reason`` implies, or None when the log must decide."""
    if not failure_reason:
        return None
    return FAILURE_REASONS.get(failure_reason.strip().lower())


def needs_log_analysis(failure_reason: str | None) -> bool:
    """Whether the log is worth an LLM analysis: the job's own script failed (or the reason is unknown)."""
    verdict = reason_verdict(failure_reason)
    return verdict is None or verdict[0] == "timeout"


def _clip(text: str, limit: int = 220) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def category_scores(signals: list[Signal]) -> dict[str, float]:
    """Score per category from the signals (see the module docstring)."""
    by_cat: dict[str, list[float]] = defaultdict(list)
    for s in signals:
        if s.category:
            by_cat[s.category].append(s.score)
    scores = {}
    for cat, values in by_cat.items():
        values.sort(reverse=True)
        total = sum(v * w for v, w in zip(values, (1.0, 0.5, 0.25), strict=False))  # at most the three strongest count
        scores[cat] = round(total * CATEGORY_BIAS.get(cat, 1.0), 3)
    return scores


def classify_excerpt(ex: Excerpt, max_evidence: int = 5, failure_reason: str | None = None) -> Classification:
    """Classify from an excerpt's signals; evidence lines are always lines of the excerpt.

    ``failure_reason`` (GitLab's, of the failed job) decides the category and whether to retry when it
    names a runner, timeout, quota or policy problem (see :data:`FAILURE_REASONS`).
    """
    signals = list(ex.signals)
    scores = category_scores(signals)
    kept = set(ex.lines)
    verdict = reason_verdict(failure_reason)
    if verdict is not None:
        category = verdict[0]
    elif scores:
        category = max(scores, key=lambda c: (scores[c], -CATEGORIES.index(c)))
    else:
        category = "unknown"
    in_cat = [s for s in signals if s.category == category] if category != "unknown" else []
    generic = [s for s in signals if s.category is None]
    ranked = sorted(in_cat, key=lambda s: -s.score)
    if ranked:  # the root cause is usually the first of the strong errors, not the loudest
        strong = [s for s in ranked if s.score >= 0.9 * ranked[0].score]
        first_strong = min(strong, key=lambda s: s.line)
        ranked.remove(first_strong)
        ranked.insert(0, first_strong)
    ranked += sorted(generic, key=lambda s: -s.score)
    if not ranked:
        ranked = sorted(signals, key=lambda s: -s.score)
    evidence: list[EvidenceLine] = []
    for s in ranked:
        line = s.line if s.line in kept else (s.last_line if s.last_line in kept else None)
        if line is None or any(e.line == line for e in evidence):
            continue
        evidence.append(EvidenceLine(line, ex.line_text.get(line, s.text)))
        if len(evidence) >= max_evidence:
            break
    if not evidence and ex.lines:  # nothing scored: the last kept line (usually the job's final status)
        last = ex.lines[-1]
        evidence.append(EvidenceLine(last, ex.line_text.get(last, "")))
    top = ranked[0] if ranked else None
    first = _clip(evidence[0].text) if evidence else "(the log is empty)"
    template = EXPLANATIONS[category]
    if category == "infrastructure" and top is not None and top.family in INFRA_DETAILS:
        template = INFRA_DETAILS[top.family]
    transient = bool(top is not None and category == "infrastructure" and top.family in TRANSIENT_FAMILIES)
    total = sum(scores.values())
    confidence = 0.2 if not scores else round(min(0.9, 0.3 + 0.6 * scores.get(category, 0.0) / total), 2)
    if category != "unknown" and top is not None and top.in_passing_log:
        confidence = round(confidence * 0.6, 2)  # the passing run printed the same thing
    explanation = template[0].format(first=first)
    if verdict is not None:  # GitLab itself says what went wrong
        transient = verdict[1]
        confidence = 0.9
        explanation = f"GitLab reports failure_reason={failure_reason.strip().lower()}. " + explanation  # type: ignore[union-attr]
    return Classification(
        category=category,
        is_transient=transient,
        confidence=confidence,
        evidence=evidence,
        explanation=explanation,
        next_step=template[1],
        scores=scores,
    )


def classify(
    log: Excerpt | LogSource, passed: LogSource | None = None, *, budget: int = 4000, failure_reason: str | None = None
) -> Classification:
    """Classify a failed job from its log (or from an :class:`Excerpt` already made)."""
    ex = log if isinstance(log, Excerpt) else make_excerpt(log, passed, budget=budget)
    return classify_excerpt(ex, failure_reason=failure_reason)
