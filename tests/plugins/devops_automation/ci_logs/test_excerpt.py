"""The failure-log excerpt: line numbering, formats (GitLab, GitHub), signals, budget, streaming."""

from __future__ import annotations

import io
import re
import tracemalloc
from pathlib import Path

import pytest

from devops_automation.ci_logs.excerpt import ExcerptConfig, excerpt, tail_excerpt
from devops_automation.ci_logs.normalize import (
    LINE_BREAKS,
    clean_line,
    iter_line_batches,
    norm_key,
    read_text,
    template_key,
)
from devops_automation.ci_logs.signals import FAMILIES, is_candidate, score_line

DATASET = Path(__file__).resolve().parents[4] / ".." / "shared" / "datasets" / "ci-breakages" / "cases"
needs_dataset = pytest.mark.skipif(not DATASET.is_dir(), reason="ci-breakages dataset not present")


def lines_of(source: object, chunk_size: int) -> list[str]:
    return [line for batch in iter_line_batches(source, chunk_size) for line in batch]  # type: ignore[arg-type]


def groundtruth(case: Path) -> list[tuple[int, int]]:
    blocks = []
    for row in (case / "groundtruth").read_text().splitlines()[1:]:
        kind, _, rng = row.partition(" ")
        a, _, b = rng.partition("-")
        if kind == "E":
            blocks.append((int(a), int(b or a)))
    return blocks


# ---- line numbering --------------------------------------------------------------------------------
TRICKY = [
    b"",
    b"\n",
    b"a",
    b"a\n",
    b"a\r\nb\r\n",
    b"a\rb\rc",
    b"\r\n\r\n\n\r",
    b"x\x0by\x0cz\x1cw\x1dv\x1eu",
    "one\u2028two\u2029three\x85four".encode(),
    b"section_start:1700000000:step_script\r\x1b[0KRunning\n",
    b"bad \xff\xfe utf8 \xe2\x82 split",
    "multi byte \u20ac\u20ac\u20ac at chunk edges \U0001f600\n".encode() * 5,
    b"trailing cr\r",
]


@pytest.mark.parametrize("data", TRICKY)
@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1 << 20])
def test_line_split_matches_splitlines(data: bytes, chunk: int) -> None:
    expected = data.decode("utf-8", errors="replace").splitlines()
    assert lines_of(data, chunk) == expected
    assert lines_of(io.BytesIO(data), chunk) == expected
    assert lines_of(iter([data[i : i + 5] for i in range(0, len(data), 5)]), chunk) == expected
    assert lines_of(data.decode("utf-8", errors="replace"), chunk) == expected


def test_every_break_character_counts() -> None:
    text = "".join(f"l{i}{c}" for i, c in enumerate(LINE_BREAKS)) + "last"
    assert lines_of(text.encode(), 3) == text.splitlines()
    assert len(text.splitlines()) == len(LINE_BREAKS) + 1


@needs_dataset
@pytest.mark.parametrize("chunk", [997, 1 << 16, 1 << 20])
def test_dataset_numbering_matches_splitlines(chunk: int) -> None:
    paths = sorted(DATASET.glob("*/*.log"))
    assert len(paths) >= 10  # the dataset's logs (failing and passing runs) are really there
    for path in paths:
        data = path.read_bytes()
        assert lines_of(path, chunk) == data.decode("utf-8", errors="replace").splitlines(), path


@needs_dataset
def test_kept_lines_show_the_original_lines() -> None:
    """Each kept line number points at the same line of ``text.splitlines()`` (cleaned)."""
    cases = sorted(DATASET.iterdir())
    assert len(cases) >= 10
    compared = 0
    for case in cases:
        original = (case / "fail.log").read_bytes().decode("utf-8", errors="replace").splitlines()
        ex = excerpt(case / "fail.log", budget=4000)
        assert ex.total_lines == len(original)
        assert ex.lines, case.name
        for n in ex.lines:
            shown = ex.line_text[n]
            expected = clean_line(original[n - 1], ex.prefix_mode)
            if "…[" in shown or "[REDACTED" in shown:
                continue
            assert shown.split("  [×")[0] == expected.rstrip(), (case.name, n)
            compared += 1
        for row in ex.text.splitlines():  # the text holds exactly the kept lines, in order
            m = re.match(r"(\d+): ", row)
            assert m or row.startswith("… ("), row
        assert [int(r.split(":", 1)[0]) for r in ex.text.splitlines() if not r.startswith("… (")] == ex.lines
    assert compared >= 10 * len(cases)  # shortened or redacted lines are skipped, but most are compared


# ---- the dataset -----------------------------------------------------------------------------------
@needs_dataset
def test_dataset_recall_and_size() -> None:
    """Regression guard for the benchmark (benchmarks/excerpt.py prints the full table)."""
    all_hit = {2000: 0, 4000: 0, 8000: 0}
    cases = sorted(DATASET.iterdir())
    assert len(cases) >= 10
    for case in cases:
        blocks = groundtruth(case)
        assert blocks, case.name  # every case marks at least one error block
        for budget in all_hit:
            ex = excerpt(case / "fail.log", budget=budget)
            assert ex.chars <= budget
            kept = set(ex.lines)
            hit = [any(n in kept for n in range(a, b + 1)) for a, b in blocks]
            assert any(hit), (case.name, budget)
            all_hit[budget] += all(hit)
    assert all_hit[4000] >= len(cases) - 1
    assert all_hit[8000] >= len(cases) - 1
    tail_hits = 0
    for c in cases:
        tail = set(tail_excerpt(c / "fail.log", 4000)[0])
        tail_hits += all(any(n in tail for n in range(a, b + 1)) for a, b in groundtruth(c))
    assert all_hit[4000] > tail_hits


# ---- CI formats ------------------------------------------------------------------------------------
def gitlab_log() -> bytes:
    """A GitLab job log with FF_TIMESTAMPS prefixes, ANSI colours and section markers."""
    out: list[str] = []
    t = 0

    def emit(text: str) -> None:
        nonlocal t
        t += 1
        out.append(f"2024-05-01T12:00:{t % 60:02d}.{t:06d}Z 00O {text}\n")

    def section(name: str, header: str, body: list[str]) -> None:
        emit(f"\x1b[0Ksection_start:17145648{t:02d}:{name}\r\x1b[0K\x1b[36;1m{header}\x1b[0;m")
        for line in body:
            emit(line)
        emit(f"\x1b[0Ksection_end:17145649{t:02d}:{name}\r\x1b[0K")

    emit("\x1b[0KRunning with gitlab-runner 17.0.0 (abcdef12)\x1b[0;m")
    section(
        "prepare_executor",
        'Preparing the "docker" executor',
        ["Using docker image node:20", "WARNING: could not find cache, error ignored"],
    )
    section(
        "get_sources",
        "Getting source from Git repository",
        ["Fetching changes with git depth set to 20...", "Checking out 1a2b3c4d as detached HEAD"],
    )
    body = [f"$ npm test -- --shard {i}" if i == 0 else f"  PASS src/module{i}.test.js ({i}.1 s)" for i in range(60)]
    body += [
        "  FAIL src/cart.test.js",
        "  \u25cf Cart \u203a applies discount",
        "    expect(received).toBe(expected) // Object.is equality",
        "    Expected: 90",
        "    Received: 100",
        "Tests:       1 failed, 59 passed, 60 total",
        "npm ERR! code ELIFECYCLE",
        "npm ERR! Test failed.  See above for more details.",
    ]
    section("step_script", 'Executing "step_script" stage of the job script', body)
    section(
        "upload_artifacts_on_failure",
        "Uploading artifacts for failed job",
        ["Uploading artifacts...", "WARNING: coverage/: no matching files", "ERROR: No files to upload"],
    )
    section("cleanup_file_variables", "Cleaning up project directory and file based variables", [])
    emit("\x1b[31;1mERROR: Job failed: exit code 1\x1b[0;m")
    return "".join(out).encode()


def test_gitlab_sections_timestamps_and_numbering() -> None:
    data = gitlab_log()
    original = data.decode().splitlines()
    ex = excerpt(data, budget=1500)
    assert ex.prefix_mode == "gitlab"
    assert ex.total_lines == len(original)
    names = [s.name for s in ex.sections]
    assert names == [
        "prepare_executor",
        "get_sources",
        "step_script",
        "upload_artifacts_on_failure",
        "cleanup_file_variables",
    ]
    assert ex.failing_section == "step_script"
    by_name = {s.name: s for s in ex.sections}
    assert by_name["prepare_executor"].boilerplate
    assert not by_name["step_script"].boilerplate
    kept_text = {n: original[n - 1] for n in ex.lines}
    assert any("Tests:       1 failed" in t for t in kept_text.values())
    assert any("FAIL src/cart.test.js" in t for t in kept_text.values())
    assert any("Job failed: exit code 1" in t for t in kept_text.values())
    assert "2024-05-01T" not in ex.text
    assert "\x1b" not in ex.text  # prefixes and colours stripped
    # the marker lines are lines of their own (the \r ends them), numbered like splitlines()
    marker_lines = [i for i, line in enumerate(original, 1) if "section_start:" in line]
    assert len(marker_lines) == 5


def github_log() -> bytes:
    ts = "2024-05-01T12:00:00.1234567Z "
    rows = ["Current runner version: '2.316.0'", "##[group]Operating System", "Ubuntu", "##[endgroup]"]
    rows += [
        "##[group]Run actions/checkout@v4",
        "with:",
        "  repository: acme/app",
        "##[endgroup]",
        "Syncing repository: acme/app",
    ]
    rows += ["##[group]Run ./gradlew build", "./gradlew build", "shell: /usr/bin/bash -e {0}", "##[endgroup]"]
    rows += [f"> Task :app:compileJava{i}" for i in range(40)]
    rows += [
        "> Task :app:test",
        "",
        "CartTest > appliesDiscount() FAILED",
        "    org.opentest4j.AssertionFailedError at CartTest.java:42",
        "",
        "12 tests completed, 1 failed",
        "",
        "FAILURE: Build failed with an exception.",
        "",
        "* What went wrong:",
        "Execution failed for task ':app:test'.",
        "> There were failing tests. See the report at: file:///home/runner/work/app/build/reports/tests/test/index.html",
        "BUILD FAILED in 41s",
        "##[error]Process completed with exit code 1.",
        "Post job cleanup.",
        "[command]/usr/bin/git version",
        "git version 2.45.0",
        "[command]/usr/bin/git config --local --name-only --get-regexp core\\.sshCommand",
        "error: could not lock config file .git/config: File exists",  # noise in a post step
        "Cleaning up orphan processes",
    ]
    return "".join(f"{ts}{r}\n" for r in rows).encode()


def test_github_failed_step_is_favoured() -> None:
    data = github_log()
    original = data.decode().splitlines()
    ex = excerpt(data, budget=1200)
    assert ex.prefix_mode == "github"
    assert ex.failing_section == "Run ./gradlew build"
    failed = [s for s in ex.sections if s.failed]
    assert [s.name for s in failed] == ["Run ./gradlew build"]
    assert [s.name for s in ex.sections if s.boilerplate] == ["Set up job", "Post job cleanup"]
    kept = {n: original[n - 1] for n in ex.lines}
    assert any("appliesDiscount() FAILED" in t for t in kept.values())
    assert any("Execution failed for task" in t for t in kept.values())
    top = ex.signals[0]
    assert "could not lock config" not in top.text  # the post-step error is not the headline


def test_gh_cli_format_steps() -> None:
    """``gh run view --log``: job<TAB>step<TAB>timestamp text; the step column makes the sections."""
    rows = [("build", "Set up job", "Current runner version"), ("build", "Run make", "make all")]
    rows += [("build", "Run make", f"cc -c file{i}.c") for i in range(30)]
    rows += [
        ("build", "Run make", "src/main.c:12:5: error: 'foo' undeclared (first use in this function)"),
        ("build", "Run make", "make: *** [Makefile:4: main.o] Error 1"),
        ("build", "Run make", "##[error]Process completed with exit code 2."),
        ("build", "Complete job", "Cleaning up orphan processes"),
    ]
    data = "".join(f"{job}\t{step}\t2024-05-01T12:00:00.1234567Z {text}\n" for job, step, text in rows).encode()
    ex = excerpt(data, budget=800)
    assert ex.prefix_mode == "gh_cli"
    assert [s.name for s in ex.sections] == ["Set up job", "Run make", "Complete job"]
    assert ex.failing_section == "Run make"
    assert 33 in ex.lines
    assert ex.line_text[33].startswith("src/main.c:12:5: error")
    assert ex.signals[0].category == "compile_error"


# ---- signals, repetition, passing log -------------------------------------------------------------
def test_repeated_errors_are_collapsed() -> None:
    rows = (
        ["start"]
        + [f"ERROR: upload of chunk {i} failed: connection reset by peer" for i in range(500)]
        + ["Finished: FAILURE"]
    )
    ex = excerpt("\n".join(rows).encode(), budget=4000)
    assert ex.chars < 1500
    first = ex.line_text[2]
    assert "[×500, last at line 501]" in first
    assert 501 in ex.lines
    assert 502 in ex.lines


def test_passing_log_demotes_shared_errors() -> None:
    noise = [f"[ERROR] Failed to parse optional plugin config {i}: not found (ignored)" for i in range(20)]
    build = [f"[INFO] Compiling module {i}" for i in range(300)]
    real = "[ERROR] /src/main/java/app/Cart.java:[42,17] cannot find symbol"
    fail = "\n".join(noise + build[:150] + [real] + build[150:] + ["[INFO] BUILD FAILURE"])
    passing = "\n".join(noise + build + ["[INFO] BUILD SUCCESS"])
    with_pass = excerpt(fail.encode(), passing.encode(), budget=600)
    without = excerpt(fail.encode(), budget=600)
    assert with_pass.used_passing_log
    assert not without.used_passing_log
    assert 171 in with_pass.lines  # the real error
    top = with_pass.signals[0]
    assert top.line == 171
    assert not top.in_passing_log
    noise_with = next(s for s in with_pass.signals if s.line == 1)
    noise_without = next(s for s in without.signals if s.line == 1)
    assert noise_with.in_passing_log
    assert noise_with.score < noise_without.score / 2
    tight = excerpt(fail.encode(), passing.encode(), budget=200)
    assert 171 in tight.lines
    assert not any(n <= 20 for n in tight.lines)  # the green run's noise goes first


def test_tail_is_always_considered() -> None:
    rows = [f"step {i} ok" for i in range(2000)] + ["Something odd happened", "Exited with status 3"]
    ex = excerpt("\n".join(rows).encode(), budget=500)
    assert 2002 in ex.lines
    assert 2001 in ex.lines


def test_budget_is_respected_and_lines_are_shortened() -> None:
    rows = [f"[ERROR] failure {i}: " + "x" * 900 for i in range(200)]
    for budget in (300, 1000, 4000):
        ex = excerpt("\n".join(rows).encode(), budget=budget)
        assert 0 < ex.chars <= budget
        assert ex.lines
        assert all(len(t) <= 400 for t in ex.line_text.values())
    tokens = excerpt("\n".join(rows).encode(), config=ExcerptConfig(budget=500, unit="tokens"))
    assert tokens.budget == 2000
    assert tokens.chars <= 2000


def test_one_huge_line_without_newline() -> None:
    data = b"Error: " + b"z" * 3_000_000
    ex = excerpt(data, budget=500)
    assert ex.total_lines == 1
    assert ex.lines == [1]
    assert ex.chars <= 500


def test_empty_and_blank_logs() -> None:
    assert excerpt(b"").lines == []
    assert excerpt(b"").text == ""
    ex = excerpt(b"\n\n\n")
    assert ex.total_lines == 3
    assert ex.chars <= 4000


def test_sources_give_the_same_excerpt(tmp_path: Path) -> None:
    data = github_log()
    path = tmp_path / "job.log"
    path.write_bytes(data)
    ref = excerpt(data, budget=900)
    for source in (path, io.BytesIO(data), iter([data[:100], data[100:]]), data.decode()):
        ex = excerpt(source, budget=900)  # type: ignore[arg-type]
        assert (ex.lines, ex.text) == (ref.lines, ref.text)
    small_chunks = excerpt(data, config=ExcerptConfig(budget=900, chunk_size=97))
    assert (small_chunks.lines, small_chunks.text) == (ref.lines, ref.text)


def test_streaming_memory_is_bounded() -> None:
    """An 8 MB log read as a stream of chunks: peak traced memory stays a small multiple of a batch."""
    line = (
        b"[INFO] Downloading from central: "
        b"https://repo.maven.apache.org/maven2/org/x/y/1.0/y-1.0.pom (2.1 kB at 12 kB/s)\n"
    )
    n = 8 * 1024 * 1024 // len(line)

    def chunks():
        block = line * 1000
        for _ in range(n // 1000):
            yield block
        yield b"[ERROR] Failed to execute goal x: No space left on device\n"

    tracemalloc.start()
    try:
        ex = excerpt(chunks(), config=ExcerptConfig(budget=2000, chunk_size=256 * 1024))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert ex.total_lines == (n // 1000) * 1000 + 1
    assert ex.lines[-1] == ex.total_lines
    assert peak < 12 * 1024 * 1024


# ---- building blocks -------------------------------------------------------------------------------
def test_clean_line_strips_ansi_and_controls() -> None:
    assert clean_line("[\x1b[1;31mERROR\x1b[m] boom\x07") == "[ERROR] boom"
    assert clean_line("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\") == "link"
    assert clean_line("2024-05-01T12:00:00.1234567Z hello", "github") == "hello"


def test_norm_and_template_keys() -> None:
    a = "12:00:01 Build 4f3a2b1c9 took 12.5 s in /tmp/abc123/x (id 123e4567-e89b-12d3-a456-426614174000)"
    b = "13:14:15 Build 9e8d7c6b5 took 3.1 s in /tmp/zz9/x (id 00000000-1111-2222-3333-444444444444)"
    assert norm_key(a) == norm_key(b)
    assert template_key("Unable to create file /a/b/Foo.txt (No space left on device)") == template_key(
        "Unable to create file /c/Bar.txt (No space left on device)"
    )
    assert template_key("cannot find symbol 'foo'") == template_key('cannot find symbol "bar"')


SAMPLES = {
    "disk_full": "java.io.IOException: No space left on device",
    "out_of_memory": "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
    "runner_lost": "ERROR: Job failed (system failure): runner system failure: lost communication with the server",
    "network": "fatal: unable to access 'https://github.com/acme/app.git/': Could not resolve host: github.com",
    "job_timeout": "ERROR: Job failed: execution took longer than 1h0m0s seconds",
    "permission": "git@github.com: Permission denied (publickey).",
    "dependency": "npm ERR! code ERESOLVE",
    "compile_location": "src/main.rs:12:5: error[E0425]: cannot find value `x` in this scope",
    "compile_message": "error[E0425]: cannot find value `x` in this scope",
    "test_failure": "Tests run: 12, Failures: 2, Errors: 0, Skipped: 0",
    "test_failure_cased": "FAILED tests/test_cart.py::test_discount - assert 100 == 90",
    "configuration": "/bin/sh: 1: gradle: command not found",
    "lint": "\u2716 3 problems (3 errors, 0 warnings)",
    "process_exit": "make: *** [Makefile:12: all] Error 2",
    "build_failed": (
        "[ERROR] Failed to execute goal org.apache.maven.plugins:maven-surefire-plugin:3.0.0:test (default-test)"
    ),
    "exception": "Traceback (most recent call last):",
    "fatal": "fatal: not a git repository (or any of the parent directories): .git",
    "error_word": "Error while loading the thing",
    "diff_check": "Please run `make generate` and commit the changes",
    "harness_failure": "not ok 3 - parses dates",
    "test_summary": "3 examples, 1 failure",
    "beam_error": "** (Mix) Could not compile dependency :jason",
    "tex": "! Undefined control sequence.",
    "r_check": "* checking tests ... ERROR",
    "usage": "usage: tool [-h] [--verbose] FILE",
    "soft": "could not read the cache",
}


@pytest.mark.parametrize("family", [f.name for f in FAMILIES])
def test_every_family_has_a_sample_that_passes_the_prefilter(family: str) -> None:
    line = SAMPLES[family]
    assert is_candidate(line), line
    assert score_line(line).value > 0


@pytest.mark.parametrize(
    "line",
    [
        "[INFO] Tests run: 5, Failures: 0, Errors: 0, Skipped: 0, Time elapsed: 0.1 s",
        "\tat org.junit.runners.ParentRunner.run(ParentRunner.java:413)",
        "[ERROR] To see the full stack trace of the errors, re-run Maven with the -e switch.",
        "[INFO] BUILD SUCCESS",
        "Compiling with -Werror enabled",
        "Running com.example.errors.ScopeNotFoundErrorTest",  # "enotfound" inside a class name is no DNS error
        "Running com.example.TimeoutConnResetHandlerTest",
    ],
)
def test_not_errors_score_low(line: str) -> None:
    assert score_line(line).value <= 1.0


def test_read_text_helper() -> None:
    assert read_text(io.BytesIO(b"a\xffb")) == "a\ufffdb"


BURIED = {
    "npm": ["npm ERR! code ERESOLVE", "npm ERR! ERESOLVE unable to resolve dependency tree"],
    "pytest": ["FAILED tests/test_cart.py::test_discount - AssertionError: assert 100 == 90"],
    "cargo": ["error[E0308]: mismatched types", "  --> src/main.rs:4:18"],
    "go": ["--- FAIL: TestCart (0.00s)", "    cart_test.go:12: got 100, want 90"],
    "gradle": [
        "> Task :app:compileKotlin FAILED",
        "e: file:///builds/app/src/main/kotlin/App.kt:12:5 Unresolved reference: discount",
    ],
    "docker": ['ERROR: failed to solve: process "/bin/sh -c npm ci" did not complete successfully: exit code: 1'],
    "dotnet": [
        (
            "/src/App/Cart.cs(12,17): error CS0103: The name 'discount' "
            "does not exist in the current context [/src/App/App.csproj]"
        )
    ],
    "oom": ["Killed"],
}


@pytest.mark.parametrize("name", list(BURIED))
def test_buried_first_error_is_found(name: str) -> None:
    """The first real error sits far from the end, followed by thousands of lines of benign output."""
    before = [f"[{i:05d}] Downloading artifact-{i}.jar (12 kB at 3.1 MB/s)" for i in range(5000)]
    after = [f"[{i:05d}] Cleaning up workspace file {i}" for i in range(3000)]
    rows = before + BURIED[name] + after + ["Job finished with status 1"]
    ex = excerpt("\n".join(rows).encode(), budget=2000)
    first = len(before) + 1
    assert first in ex.lines, ex.text
