"""Heuristic classification of failed jobs (offline): category, transient, evidence, explanation."""

from __future__ import annotations

from pathlib import Path

import pytest

from devops_automation.ci_logs.classify import EXPLANATIONS, classify, classify_excerpt
from devops_automation.ci_logs.excerpt import excerpt
from devops_automation.ci_logs.signals import CATEGORIES

DATASET = Path(__file__).resolve().parents[4] / ".." / "shared" / "datasets" / "ci-breakages" / "cases"
needs_dataset = pytest.mark.skipif(not DATASET.is_dir(), reason="ci-breakages dataset not present")

FILLER = [f"[INFO] step {i}: ok" for i in range(40)]


def job(*lines: str, tail: tuple[str, ...] = ("ERROR: Job failed: exit code 1",)) -> bytes:
    return "\n".join([*FILLER, *lines, *tail]).encode()


CASES: dict[str, tuple[bytes, str, bool]] = {
    "javac": (
        job(
            "[ERROR] COMPILATION ERROR : ",
            "[ERROR] /builds/app/src/main/java/app/Cart.java:[42,17] cannot find symbol",
            "  symbol:   method discount()",
            (
                "[ERROR] Failed to execute goal org.apache.maven.plugins:maven-compiler-plugin:3.11.0:compile "
                "(default-compile) on project app: Compilation failure"
            ),
        ),
        "compile_error",
        False,
    ),
    "gcc": (
        job(
            "src/main.c:12:5: error: 'foo' undeclared (first use in this function)",
            "make: *** [Makefile:4: main.o] Error 1",
        ),
        "compile_error",
        False,
    ),
    "rustc": (
        job(
            "error[E0425]: cannot find value `total` in this scope",
            "  --> src/lib.rs:10:9",
            "error: could not compile `cart` (lib) due to 1 previous error",
        ),
        "compile_error",
        False,
    ),
    "go": (
        job("# example.com/cart", "./cart.go:12:2: undefined: Discount", "FAIL\texample.com/cart [build failed]"),
        "compile_error",
        False,
    ),
    "tsc": (
        job("src/cart.ts(12,5): error TS2304: Cannot find name 'discount'.", "npm ERR! code ELIFECYCLE"),
        "compile_error",
        False,
    ),
    "pytest": (
        job(
            "tests/test_cart.py::test_discount FAILED",
            "E       assert 100 == 90",
            "FAILED tests/test_cart.py::test_discount - assert 100 == 90",
            "========================= 1 failed, 41 passed in 3.21s =========================",
        ),
        "test_failure",
        False,
    ),
    "surefire": (
        job(
            (
                "[ERROR] Tests run: 12, Failures: 1, Errors: 0, Skipped: 0, "
                "Time elapsed: 0.5 s <<< FAILURE! - in app.CartTest"
            ),
            "[ERROR] app.CartTest.discount  Time elapsed: 0.01 s  <<< FAILURE!",
            "org.opentest4j.AssertionFailedError: expected: <90> but was: <100>",
            (
                "[ERROR] Failed to execute goal org.apache.maven.plugins:maven-surefire-plugin:3.2.5:test "
                "(default-test) on project app: There are test failures."
            ),
        ),
        "test_failure",
        False,
    ),
    "go test": (
        job(
            "--- FAIL: TestDiscount (0.00s)", "    cart_test.go:14: got 100, want 90", "FAIL\texample.com/cart\t0.012s"
        ),
        "test_failure",
        False,
    ),
    "npm resolve": (
        job(
            "npm ERR! code ERESOLVE",
            "npm ERR! ERESOLVE unable to resolve dependency tree",
            "npm ERR! Could not resolve dependency:",
            'npm ERR! peer react@"^17.0.0" from react-dom@17.0.2',
        ),
        "dependency",
        False,
    ),
    "pip": (
        job(
            "ERROR: Could not find a version that satisfies the requirement numpy==9.9.9 (from versions: 1.26.4)",
            "ERROR: No matching distribution found for numpy==9.9.9",
        ),
        "dependency",
        False,
    ),
    "maven dependency": (
        job(
            "[ERROR] Failed to execute goal on project app: Could not resolve dependencies "
            "for project acme:app:jar:1.0: Could not find artifact acme:lib:jar:2.0 in central"
        ),
        "dependency",
        False,
    ),
    "disk": (
        job("java.io.IOException: No space left on device", "\tat java.io.FileOutputStream.writeBytes(Native Method)"),
        "infrastructure",
        True,
    ),
    "oom": (job("Killed", "ERROR: Job failed: exit code 137"), "infrastructure", False),
    "node oom": (
        job("FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"),
        "infrastructure",
        False,
    ),
    "dns": (
        job("fatal: unable to access 'https://github.com/acme/app.git/': Could not resolve host: github.com"),
        "infrastructure",
        True,
    ),
    "registry 503": (
        job("npm ERR! code E503", "npm ERR! 503 Service Unavailable - GET https://registry.npmjs.org/react"),
        "infrastructure",
        True,
    ),
    "runner lost": (
        job("ERROR: Job failed (system failure): runner system failure: lost communication with the server"),
        "infrastructure",
        True,
    ),
    "timeout": (
        job("Running integration tests...", tail=("ERROR: Job failed: execution took longer than 1h0m0s seconds",)),
        "timeout",
        False,
    ),
    "github timeout": (
        job(
            "##[error]The job running on runner GitHub Actions 2 "
            "has exceeded the maximum execution time of 360 minutes."
        ),
        "timeout",
        False,
    ),
    "eslint": (
        job(
            "/builds/app/src/cart.js",
            "  12:5  error  'x' is assigned a value but never used  no-unused-vars",
            "\u2716 1 problem (1 error, 0 warnings)",
        ),
        "lint",
        False,
    ),
    "black": (
        job(
            "would reformat src/cart.py",
            "Oh no! \U0001f4a5 \U0001f494 \U0001f4a5",
            "1 file would be reformatted, 12 files would be left unchanged.",
        ),
        "lint",
        False,
    ),
    "permission": (
        job("git@github.com: Permission denied (publickey).", "fatal: Could not read from remote repository."),
        "permission",
        False,
    ),
    "docker 403": (
        job("denied: requested access to the resource is denied", "Error: Process completed with exit code 1."),
        "permission",
        False,
    ),
    "configuration": (job("/bin/sh: 1: gradle: command not found"), "configuration", False),
    "yaml": (job("Error: yaml: line 12: mapping values are not allowed in this context"), "configuration", False),
    "unknown": (
        job("Build step 'Execute shell' marked build as failure", tail=("Finished: FAILURE",)),
        "unknown",
        False,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_synthetic_logs(name: str) -> None:
    data, category, transient = CASES[name]
    result = classify(data)
    assert result.category == category, (name, result.scores)
    assert result.is_transient is transient
    ex = excerpt(data)
    assert set(result.evidence_lines) <= set(ex.lines)
    assert result.evidence
    assert result.next_step
    assert 0 < result.confidence <= 1


def test_explanation_quotes_the_evidence() -> None:
    result = classify(CASES["javac"][0])
    assert "cannot find symbol" in result.explanation
    assert result.explanation.startswith("The code did not compile")
    assert result.to_dict()["evidence_lines"] == result.evidence_lines


def test_templates_cover_every_category() -> None:
    assert set(EXPLANATIONS) == set(CATEGORIES)


def test_passing_log_lowers_confidence_in_a_shared_error() -> None:
    fail = job("[ERROR] Flaky plugin: connection reset by peer while fetching stats")
    passing = job("[ERROR] Flaky plugin: connection reset by peer while fetching stats", tail=("Job succeeded",))
    alone = classify(fail)
    compared = classify(fail, passing)
    assert compared.confidence < alone.confidence


def test_empty_log() -> None:
    result = classify(b"")
    assert result.category == "unknown"
    assert result.evidence == []


@needs_dataset
@pytest.mark.parametrize(
    ("case", "category", "transient"),
    [
        ("astor_1260", "compile_error", False),
        ("jimfs_1890", "compile_error", False),
        ("cidiff_11", "test_failure", False),
        ("assertfixer_1320", "infrastructure", True),  # HTTP 503 from the git server
        ("sorald_445", "infrastructure", True),  # disk full
        ("guava_2087", "infrastructure", True),
        ("nopol_1590", "infrastructure", True),
    ],
)
def test_dataset_cases(case: str, category: str, transient: bool) -> None:
    d = DATASET / case
    result = classify_excerpt(excerpt(d / "fail.log", d / "pass.log"))
    assert (result.category, result.is_transient) == (category, transient)


@pytest.mark.parametrize(
    ("reason", "category", "transient"),
    [
        ("runner_system_failure", "infrastructure", True),
        ("stuck_or_timeout_failure", "timeout", True),
        ("job_execution_timeout", "timeout", True),
        ("api_failure", "infrastructure", True),
        ("missing_dependency_failure", "dependency", False),
        ("protected_environment_failure", "permission", False),
        ("RUNNER_SYSTEM_FAILURE", "infrastructure", True),
    ],
)
def test_gitlab_failure_reason_decides(reason: str, category: str, transient: bool) -> None:
    log, _, _ = CASES["javac"]
    result = classify(log, failure_reason=reason)
    assert (result.category, result.is_transient) == (category, transient)
    assert reason.lower() in result.explanation
    assert result.confidence == 0.9
    assert result.evidence  # still points at lines of the excerpt


@pytest.mark.parametrize("reason", [None, "", "script_failure", "unknown_failure", "some_future_reason"])
def test_script_failure_leaves_it_to_the_log(reason: str | None) -> None:
    log, category, transient = CASES["javac"]
    result = classify(log, failure_reason=reason)
    assert (result.category, result.is_transient) == (category, transient)


def test_needs_log_analysis() -> None:
    from devops_automation.ci_logs.classify import needs_log_analysis

    assert needs_log_analysis("script_failure")
    assert needs_log_analysis(None)
    assert needs_log_analysis("job_execution_timeout")
    assert not needs_log_analysis("runner_system_failure")
    assert not needs_log_analysis("api_failure")


def test_analyse_without_llm_uses_the_failure_reason() -> None:
    from devops_automation.ci_logs import analyse

    log, _, _ = CASES["javac"]
    result = analyse(log, job={"failure_reason": "runner_system_failure"})
    assert result.analyser == "heuristic"
    assert result.category == "infrastructure"
    assert result.is_transient
