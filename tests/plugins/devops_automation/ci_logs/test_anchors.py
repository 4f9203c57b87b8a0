"""Failed-command anchors: every CI system's "command failed" marker, the failed command's own output
kept ahead of generic signals (bounded), and the budget filled when the signals are weak."""

from __future__ import annotations

import pytest

from devops_automation.ci_logs.anchors import failure_marker, is_command_start
from devops_automation.ci_logs.excerpt import excerpt
from devops_automation.ci_logs.signals import is_candidate, score_line

# A failure that never says "error": a link checker's findings (the kind of output that is missed
# when only error keywords are looked for).
FINDINGS = [
    "Issues :-(",
    "> Links",
    "  1. [L012] https://example.org/gone 404",
    "  2. [L044] https://example.org/moved 301",
    "> Dupes",
    "  1. [L020] https://example.org/twice",
    "Total: 3 issues in README.md",
]
NOISE = [f"Downloading package-{i}.tar.gz (12 kB at 3.1 MB/s)" for i in range(3000)]


def system_log(system: str) -> tuple[list[str], str, str]:
    """A log of ``system`` in its own format: noise, the command echo, findings, the failure marker,
    then the runner's own lines. Returns (lines, command echo line, marker line)."""
    cmd = "awesome_bot README.md --allow-redirect"
    if system == "travis":
        head = ["travis_fold:start:install", "$ bundle install", *NOISE, "travis_fold:end:install"]
        echo, marker = f"$ {cmd}", f'The command "{cmd}" exited with 1.'
        after = ["", "", "Done. Your build exited with 1."]
    elif system == "github":
        head = ["##[group]Run actions/checkout@v4", "##[endgroup]", *NOISE]
        echo, marker = f"##[group]Run {cmd}", "##[error]Process completed with exit code 1."
        head += [echo, cmd, "shell: /usr/bin/bash -e {0}", "##[endgroup]"]
        echo = ""
        after = ["Post job cleanup.", "[command]/usr/bin/git version", "git version 2.45.0"]
    elif system == "gitlab":
        head = ["section_start:1700000000:step_script", "$ gem install awesome_bot", *NOISE]
        echo, marker = f"$ {cmd}", "ERROR: Job failed: exit code 1"
        after = []
    elif system == "jenkins":
        head = ["[Pipeline] stage", "[Pipeline] { (Docs)", "[Pipeline] sh", *NOISE]
        echo, marker = f"+ {cmd}", "ERROR: script returned exit code 1"
        after = ["[Pipeline] }", "[Pipeline] // stage", "[Pipeline] End of Pipeline", "Finished: FAILURE"]
    elif system == "jenkins_freestyle":
        head = ["[docs] $ /bin/sh -xe /tmp/jenkins123.sh", *NOISE]
        echo, marker = f"+ {cmd}", "Build step 'Execute shell' marked build as failure"
        after = ["Archiving artifacts", "Finished: FAILURE"]
    elif system == "circleci":
        head = ["#!/bin/bash -eo pipefail", "bundle install", *NOISE]
        echo, marker = "#!/bin/bash -eo pipefail", "Exited with code exit status 1"
        after = ["CircleCI received exit code 1"]
    elif system == "buildkite":
        head = ["~~~ Preparing working directory", *NOISE, "--- :link: Checking links"]
        echo, marker = f"$ {cmd}", "🚨 Error: The command exited with status 1"
        after = ["^^^ +++", "user command error: exit status 1"]
    elif system == "azure":
        head = ["##[section]Starting: Install", *NOISE, "##[section]Finishing: Install", "##[section]Starting: Links"]
        echo = "========================== Starting Command Output ==========================="
        marker = "##[error]Bash exited with code '1'."
        after = ["##[section]Finishing: Links", "##[section]Starting: Finalize Job", "Cleaning up task key"]
    elif system == "drone":
        head = ["+ gem install awesome_bot", *NOISE]
        echo, marker = f"+ {cmd}", "exit status 1"
        after = []
    elif system == "taskcluster":  # every line carries the worker's "[task <timestamp>] " prefix
        ts = "[task 2024-05-01T12:00:01.000Z] "
        head = ["[taskcluster 2024-05-01T12:00:00.000Z] Worker Node Type: t3", *(ts + n for n in NOISE)]
        echo, marker = f"{ts}+ {cmd}", "[taskcluster 2024-05-01 12:10:00.000Z] "
        marker += "Unsuccessful task run with exit code: 1 completed in 600 seconds"
        lines = head + [echo] + [ts + f for f in FINDINGS] + [marker]
        return lines, echo, marker
    else:  # pragma: no cover - the parametrisation names every system
        raise AssertionError(system)
    body = [echo] if echo else []
    lines = head + body + FINDINGS + [marker] + after
    if system == "gitlab":
        lines = head + body + FINDINGS + ["section_end:1700000100:step_script"]
        lines += [
            "section_start:1700000100:after_script",
            "$ echo cleanup",
            "cleanup",
            "section_end:1700000101:after_script",
        ]
        lines += ["section_start:1700000101:upload_artifacts_on_failure", "Uploading artifacts for failed job"]
        lines += ["WARNING: coverage/: no matching files", "section_end:1700000102:upload_artifacts_on_failure"]
        lines += [marker]
    return lines, echo, marker


SYSTEMS = [
    "travis",
    "github",
    "gitlab",
    "jenkins",
    "jenkins_freestyle",
    "circleci",
    "buildkite",
    "azure",
    "drone",
    "taskcluster",
]


@pytest.mark.parametrize("system", SYSTEMS)
def test_marker_recognised(system: str) -> None:
    _lines, _echo, marker = system_log(system)
    found = failure_marker(marker)
    assert found is not None
    expected = {"jenkins_freestyle": "jenkins"}.get(system, system)
    assert found.system == expected
    assert is_candidate(marker)  # the prefilter lets every marker through


@pytest.mark.parametrize("system", SYSTEMS)
def test_failed_command_output_is_kept(system: str) -> None:
    """No line of the failure says "error"; the findings before the marker are kept anyway."""
    lines, echo, marker = system_log(system)
    data = ("\n".join(lines) + "\n").encode()
    ex = excerpt(data, budget=1500)
    kept = {lines[n - 1] for n in ex.lines}
    assert marker in kept
    for finding in FINDINGS:
        assert any(k.endswith(finding) for k in kept), (system, finding, ex.text)
    if echo:
        assert echo in kept  # what failed
    assert ex.chars <= 1500
    assert not any("Downloading package-2" in line for line in kept)  # the noise stays out


def test_gitlab_failing_section_and_after_script() -> None:
    lines, _echo, _marker = system_log("gitlab")
    data = ("\n".join(lines) + "\n").encode()
    ex = excerpt(data, budget=900)
    assert ex.failing_section == "step_script"
    kept = [lines[n - 1] for n in ex.lines]
    assert "Total: 3 issues in README.md" in kept
    assert "Issues :-(" in kept
    assert "$ echo cleanup" not in kept  # after_script is not the failed command's output


def test_github_step_header_names_the_command() -> None:
    lines, _echo, _marker = system_log("github")
    ex = excerpt(("\n".join(lines) + "\n").encode(), budget=1200)
    kept = [lines[n - 1] for n in ex.lines]
    assert "##[group]Run awesome_bot README.md --allow-redirect" in kept
    assert ex.failing_section == "Run awesome_bot README.md --allow-redirect"


@pytest.mark.parametrize(
    "line",
    [
        'The command "bundle exec rake" exited with 0.',
        "Process completed with exit code 0.",
        "exit status 0",
        "Job succeeded",
        "script returned exit code 0",
        "Finished: SUCCESS",
    ],
)
def test_success_lines_are_no_markers(line: str) -> None:
    assert failure_marker(line) is None


def test_command_start_lines() -> None:
    assert is_command_start("$ make test")
    assert is_command_start("+ go test ./...")
    assert is_command_start("##[group]Run npm ci")
    assert is_command_start("[Pipeline] sh")
    assert not is_command_start("make test")
    assert not is_command_start("$")


def test_output_ahead_of_generic_signals_is_bounded() -> None:
    """Hundreds of output lines before the marker: only a bounded tail is valued above the real error."""
    out = [f"{chr(97 + i % 26)}{chr(97 + i * 7 % 26)}_module/{i}.txt: {i * 7 % 13} rules checked" for i in range(400)]
    rows = ["$ ./check.sh", "src/app.c:12:5: error: 'x' undeclared (first use in this function)", *out]
    rows += ['The command "./check.sh" exited with 2.']
    ex = excerpt(("\n".join(rows) + "\n").encode(), budget=2000)
    assert 2 in ex.lines  # the compiler error (a strong signal) is kept
    assert len(rows) in ex.lines  # and the marker
    kept_output = [n for n in ex.lines if 3 <= n <= 402]
    assert 5 <= len(kept_output) <= 80
    assert ex.chars <= 2000


def test_weak_signals_fill_the_budget_with_the_failed_output() -> None:
    """Nothing says error: the budget is used for the failed command's output, not left at ~the tail."""
    rows = [*NOISE[:500], "$ ./bin/check-links"]
    rows += [f"  {i}. https://example.org/page-{i} -> 404" for i in range(300)]
    rows += ['The command "./bin/check-links" exited with 1.', "Done. Your build exited with 1."]
    ex = excerpt(("\n".join(rows) + "\n").encode(), budget=4000)
    assert ex.chars > 3000
    assert ex.chars <= 4000
    assert min(ex.lines) > 500  # the noise before the command stays out
    strong = ["$ make", "src/main.c:3:1: error: expected ';' before '}' token", *rows[501:560]]
    strong += ['The command "make" exited with 2.']
    small = excerpt(("\n".join(strong) + "\n").encode(), budget=4000)
    assert small.chars < 3000  # a strong signal: no filling


NO_ERROR_WORD = [
    ("** (CompileError) lib/app.ex:3: undefined function foo/0", "compile_error"),
    ("=ERROR REPORT==== 1-Jan-2024::10:00:00 ===", None),
    ("** gen_event handler my_handler crashed.", None),
    ("! Undefined control sequence.", "compile_error"),
    ("! LaTeX Error: File `foo.sty' not found.", "compile_error"),
    ("src/Main.hs:3:1: error: [-Wunused-imports, -Werror=unused-imports]", "compile_error"),
    ("main.c:3:5: error: unused variable 'x' [-Werror=unused-variable]", "compile_error"),
    ("not ok 3 - parses dates", "test_failure"),
    ("Dubious, test returned 1 (wstat 256, 0x100)", "test_failure"),
    ("Result: FAIL", "test_failure"),
    ("FAILURES!", "test_failure"),
    ("3 examples, 1 failure", "test_failure"),
    ("0 successes / 1 failure / 0 errors / 0 pending : 0.01 seconds", "test_failure"),
    ("1 failures, 0 errors.", "test_failure"),
    ("Executed 5 tests, with 1 failure (0 unexpected) in 0.102 (0.104) seconds", "test_failure"),
    ("FAIL\tgithub.com/acme/app/cart\t0.012s", "test_failure"),
    ("FAIL in (test-add) (core_test.clj:7)", "test_failure"),
    ("  Failed: 1.  Skipped: 0.  Passed: 3.", "test_failure"),
    ("Test suite spec: FAIL", "test_failure"),
    ("11:00:27     INFO - TEST-UNEXPECTED-FAIL | browser_a.js | A promise chain failed", "test_failure"),
    ("Status: 1 ERROR", "test_failure"),
    ("flag provided but not defined: -race2", "configuration"),
    ("No Rakefile found (looking for: rakefile, Rakefile, rakefile.rb, Rakefile.rb)", "configuration"),
    ("/home/travis/build.sh: line 45: shellcheck: command not found", "configuration"),
    ("Please rebuild the generated docs and commit the changes.", "lint"),
    ("1 file inspected, 2 offenses detected", "lint"),
]


@pytest.mark.parametrize(("line", "category"), NO_ERROR_WORD)
def test_failures_without_the_word_error(line: str, category: str | None) -> None:
    assert is_candidate(line)
    score = score_line(line)
    assert score.value >= 7, (line, score)
    assert score.category == category


@pytest.mark.parametrize(
    "line",
    [
        "0 examples, 0 failures",
        "10 tests, 0 failures",
        "ok 3 - parses dates",
        "Result: PASS",
        "Compiling with -Werror enabled",
    ],
)
def test_passing_summaries_stay_low(line: str) -> None:
    assert score_line(line).value <= 1.0
