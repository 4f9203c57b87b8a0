"""Alert rules: the file format and its errors (file, line, field), evaluation per kind, transitions, texts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import textwrap
from pathlib import Path

import pytest

from devops_automation.workflows.ci_pipeline_analytics import alert_rules as ar
from devops_automation.workflows.ci_pipeline_analytics.alert_rules import (
    AlertEvent,
    AlertRulesError,
    Condition,
    DurationP90,
    FlakyJob,
    QueueP90,
    RedStreak,
    RerunMinutes,
    ScopeKey,
    SuccessRate,
)

REPO = Path(__file__).resolve().parents[5]
SHIPPED = REPO / "include" / "config" / "alert_rules.yaml"
END = dt.datetime(2026, 11, 17, 0, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
MAIN = ScopeKey("github", "acme/api", "CI", "main")


def parse(text: str) -> list[ar.Rule]:
    return ar.parse_rules(textwrap.dedent(text).lstrip("\n"))


def problems(text: str) -> list[str]:
    with pytest.raises(AlertRulesError) as info:
        parse(text)
    return [str(p) for p in info.value.problems]


def rule(kind: str, **fields: object) -> ar.Rule:
    """One valid rule of a kind, its own fields given as YAML flow values."""
    own = "".join(f"    {k}: {v}\n" for k, v in fields.items())
    (r,) = parse(f"rules:\n  - id: r1\n    kind: {kind}\n    severity: warning\n{own}    channels: {{slack: '#ci'}}\n")
    return r


# ---- the shipped file ------------------------------------------------------------------------------


def test_the_shipped_file_validates_and_uses_every_kind() -> None:
    rules = ar.load_rules(SHIPPED)
    assert [r.id for r in rules] == [
        "default-branch-red",
        "release-branch-red",
        "main-success-rate",
        "ci-slower",
        "new-flaky-job",
        "runner-queue",
        "rerun-cost",
        "gitlab-success-rate",
    ]
    assert {r.kind for r in rules} == set(ar.KINDS)
    red = rules[0]
    assert red.severity == "critical"
    assert red.channels == ar.Channels(slack="#alerts", telegram="-1001234567890")
    assert [p.text for p in red.branch_pattern] == ["main", "master"]
    assert rules[1].branch_pattern[0].matches("release/v2.10")
    assert not rules[1].branch_pattern[0].matches("release/next")
    assert rules[2].channels.email == ("devops@example.com",)
    assert rules[3].channels == ar.Channels(slack="#alerts")  # from defaults
    assert rules[3].severity == "warning"  # from defaults
    assert rules[-1].enabled is False


def test_the_shipped_file_documents_every_kind_and_the_error_format() -> None:
    text = SHIPPED.read_text()
    header = text[: text.index("\ndefaults:")]
    for kind in ar.KINDS:
        assert f"#   {kind}" in header
    assert 'alert_rules.yaml line 12, rules[2].threshold: must be a number between 0 and 1, got "high"' in header


# ---- a valid file ----------------------------------------------------------------------------------

FULL = """
defaults:
  severity: warning
  channels: &team
    slack: "#ci-alerts"
rules:
  - id: main.success-rate_1
    kind: success_rate_below
    severity: critical
    description: keep main green
    threshold: 0.75
    window_days: 14
    min_runs: 20
    scope:
      provider: [github, gitlab]
      repos: ["Acme/*", "re:tools/.+"]
      branches: main
      workflows: [CI, "deploy-*"]
    channels:
      slack: C0CIFAIL
      telegram: -1001234567890
      email: [a@example.com, b@example.org]
  - id: red
    kind: red_longer_than
    hours: 1.5
    branch_pattern: "release/*"
    enabled: no
  - id: slower
    kind: duration_regression
    percent: 20
    channels:
      <<: *team
      telegram: "@acme_ci"
"""


def test_a_valid_file_gives_every_field() -> None:
    first, red, slower = parse(FULL)
    assert first.id == "main.success-rate_1"
    assert first.kind == "success_rate_below"
    assert first.severity == "critical"
    assert first.description == "keep main green"
    assert (first.threshold, first.window_days, first.min_runs) == (0.75, 14, 20)
    assert first.scope.providers == ("github", "gitlab")
    assert [p.text for p in first.scope.repos] == ["Acme/*", "re:tools/.+"]
    assert [p.text for p in first.scope.branches] == ["main"]
    assert [p.text for p in first.scope.workflows] == ["CI", "deploy-*"]
    assert first.channels == ar.Channels("C0CIFAIL", "-1001234567890", ("a@example.com", "b@example.org"))
    assert first.enabled is True
    assert first.line == 6
    # fields of other kinds stay unset
    assert (first.hours, first.percent, first.minutes, first.baseline_weeks) == (None, None, None, None)

    assert red.severity == "warning"  # defaults.severity
    assert red.channels == ar.Channels(slack="#ci-alerts")  # defaults.channels
    assert (red.hours, [p.text for p in red.branch_pattern], red.enabled) == (1.5, ["release/*"], False)
    assert red.line == 22

    assert (slower.percent, slower.baseline_weeks, slower.window_days, slower.min_runs) == (20, 4, 7, 5)
    assert slower.channels == ar.Channels(slack="#ci-alerts", telegram="@acme_ci")  # << merge + own key


@pytest.mark.parametrize(
    "kind, fields, expected",
    [
        ("success_rate_below", {"threshold": 0.9}, {"threshold": 0.9, "window_days": 7, "min_runs": 5}),
        ("red_longer_than", {"hours": 4, "branch_pattern": "main"}, {"hours": 4.0, "window_days": None}),
        (
            "duration_regression",
            {"percent": 30},
            {"percent": 30.0, "baseline_weeks": 4, "window_days": 7, "min_runs": 5},
        ),
        ("new_flaky_job", {}, {"window_days": 7, "baseline_weeks": 4, "min_flaky_rate": 0.0}),
        ("queue_p90_above", {"minutes": 10}, {"minutes": 10.0, "window_days": 1, "min_runs": 5}),
        ("rerun_minutes_above", {"minutes": 90}, {"minutes": 90.0, "window_days": 1, "min_runs": None}),
    ],
)
def test_kind_defaults(kind: str, fields: dict, expected: dict) -> None:
    r = rule(kind, **fields)
    assert r.kind == kind
    assert {k: getattr(r, k) for k in expected} == expected


@pytest.mark.parametrize(
    "kind, required",
    [
        ("success_rate_below", ["threshold"]),
        ("red_longer_than", ["hours", "branch_pattern"]),
        ("duration_regression", ["percent"]),
        ("queue_p90_above", ["minutes"]),
        ("rerun_minutes_above", ["minutes"]),
    ],
)
def test_each_kind_names_its_missing_required_fields(kind: str, required: list[str]) -> None:
    got = problems(f"""
        rules:
          - id: r
            kind: {kind}
            severity: warning
            channels: {{slack: "#ci"}}
        """)
    assert [p.split(": required")[0] for p in got] == [f"alert_rules.yaml line 2, rules[0].{f}" for f in required]
    assert all(f"required for kind {kind} (" in p for p in got)


def test_new_flaky_job_needs_no_field_of_its_own() -> None:
    assert rule("new_flaky_job").kind == "new_flaky_job"


def test_an_empty_rule_list_is_valid() -> None:
    assert parse("rules: []") == []
    assert parse("rules:\n#  - id: off\n#    kind: new_flaky_job\n") == []  # every rule commented out


# ---- bad files: every message names file, line and field -------------------------------------------

HEAD = 'rules:\n  - id: r\n    kind: success_rate_below\n    severity: warning\n    channels: {slack: "#ci"}\n'


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param(
            HEAD + "    threshold: high\n",
            'alert_rules.yaml line 6, rules[0].threshold: must be a number between 0 and 1, got "high"',
            id="wrong-type-string",
        ),
        pytest.param(
            HEAD + "    threshold: 80\n",
            "alert_rules.yaml line 6, rules[0].threshold: must be a number between 0 and 1 (a fraction: 0.8 for 80%),"
            " got 80",
            id="percent-instead-of-fraction",
        ),
        pytest.param(
            HEAD + "    threshold: 0\n",
            "alert_rules.yaml line 6, rules[0].threshold: must be above 0 (nothing is below 0), got 0",
            id="zero-threshold",
        ),
        pytest.param(
            HEAD + "    threshold: [0.8]\n",
            "alert_rules.yaml line 6, rules[0].threshold: must be a number between 0 and 1, got a list",
            id="list-instead-of-number",
        ),
        pytest.param(
            HEAD + "    threshold: 0.8\n    window_days: 1.5\n",
            "alert_rules.yaml line 7, rules[0].window_days: must be a whole number from 1 to 90, got 1.5",
            id="float-days",
        ),
        pytest.param(
            HEAD + "    threshold: 0.8\n    min_runs: true\n",
            "alert_rules.yaml line 7, rules[0].min_runs: must be a whole number from 1 to 100000, got true",
            id="bool-runs",
        ),
        pytest.param(
            HEAD + "    threshold: 0.8\n    enabled: maybe\n",
            'alert_rules.yaml line 7, rules[0].enabled: must be true or false, got "maybe"',
            id="bad-enabled",
        ),
        pytest.param(
            HEAD + "    treshold: 0.8\n",
            "alert_rules.yaml line 2, rules[0].threshold: required for kind success_rate_below (the lowest acceptable"
            " success rate, a fraction such as 0.8)\n"
            "alert_rules.yaml line 6, rules[0].treshold: unknown field (did you mean threshold?); a success_rate_below"
            " rule takes id, kind, severity, enabled, description, scope, channels, threshold, window_days, min_runs",
            id="unknown-key-typo",
        ),
        pytest.param(
            HEAD + "    threshold: 0.8\n    hours: 4\n",
            "alert_rules.yaml line 7, rules[0].hours: unknown field for kind success_rate_below (hours belongs to"
            " red_longer_than)",
            id="field-of-another-kind",
        ),
        pytest.param(
            'rules:\n  - id: r\n    kind: success_rate\n    severity: warning\n    channels: {slack: "#ci"}\n',
            'alert_rules.yaml line 3, rules[0].kind: unknown kind "success_rate" (did you mean success_rate_below?);'
            " the kinds are success_rate_below, red_longer_than, duration_regression, new_flaky_job,"
            " queue_p90_above, rerun_minutes_above",
            id="unknown-kind",
        ),
        pytest.param(
            HEAD + "    threshold: 0.8\n" + HEAD.replace("rules:\n", "").replace("success_rate_below", "new_flaky_job"),
            'alert_rules.yaml line 7, rules[1].id: duplicate id "r" (first at line 2, rules[0])',
            id="duplicate-id",
        ),
        pytest.param(
            HEAD.replace("warning", "high") + "    threshold: 0.8\n",
            'alert_rules.yaml line 4, rules[0].severity: must be one of critical, warning, got "high"',
            id="bad-severity",
        ),
        pytest.param(
            HEAD + "    threshold: 0.8\n    scope:\n      branches: ['release/[0-9']\n",
            "alert_rules.yaml line 8, rules[0].scope.branches[0]: invalid glob \"release/[0-9\": the '[' at position 9"
            " is never closed",
            id="bad-glob",
        ),
        pytest.param(
            HEAD + "    threshold: 0.8\n    scope:\n      repos: 're:acme/(api'\n",
            'alert_rules.yaml line 8, rules[0].scope.repos: invalid regular expression "acme/(api": missing ),'
            " unterminated subpattern at position 5",
            id="bad-regex",
        ),
        pytest.param(
            HEAD + "    threshold: 0.8\n    scope:\n      branches: []\n",
            "alert_rules.yaml line 8, rules[0].scope.branches: must not be an empty list (leave the field out to"
            " match everything)",
            id="empty-filter",
        ),
        pytest.param(
            HEAD + "    threshold: 0.8\n    scope:\n      provider: bitbucket\n",
            'alert_rules.yaml line 8, rules[0].scope.provider: must be one of github, gitlab, got "bitbucket"',
            id="bad-provider",
        ),
        pytest.param(
            HEAD + "    threshold: 0.8\n    scope:\n      repo: acme/api\n",
            "alert_rules.yaml line 8, rules[0].scope.repo: unknown field (did you mean repos?); scope takes provider,"
            " repos, branches, workflows",
            id="unknown-scope-key",
        ),
        pytest.param(
            "rules:\n  - id: r\n    kind: success_rate_below\n    severity: warning\n    threshold: 0.8\n",
            "alert_rules.yaml line 2, rules[0].channels: required (at least one of slack, telegram, email; or set"
            " defaults.channels)",
            id="missing-channels",
        ),
        pytest.param(
            HEAD.replace('{slack: "#ci"}', "{}") + "    threshold: 0.8\n",
            "alert_rules.yaml line 5, rules[0].channels: name at least one of slack, telegram, email",
            id="empty-channels",
        ),
        pytest.param(
            HEAD.replace('{slack: "#ci"}', "\n      slack: #ci") + "    threshold: 0.8\n",
            'alert_rules.yaml line 6, rules[0].channels.slack: is empty: a "#channel" must be quoted in YAML'
            ' (# starts a comment): slack: "#ci-alerts"',
            id="unquoted-slack-channel",
        ),
        pytest.param(
            HEAD.replace('{slack: "#ci"}', "{slack: '#CI Alerts'}") + "    threshold: 0.8\n",
            'alert_rules.yaml line 5, rules[0].channels.slack: must be "#channel-name" (lower case) or a channel id'
            ' such as C0123ABCD, got "#CI Alerts"',
            id="bad-slack-channel",
        ),
        pytest.param(
            HEAD.replace('{slack: "#ci"}', "{telegram: ci-chat}") + "    threshold: 0.8\n",
            "alert_rules.yaml line 5, rules[0].channels.telegram: must be a chat id (such as -1001234567890) or"
            ' @channelusername, got "ci-chat"',
            id="bad-telegram-chat",
        ),
        pytest.param(
            HEAD.replace('{slack: "#ci"}', "{email: [ok@example.com, not-an-address]}") + "    threshold: 0.8\n",
            'alert_rules.yaml line 5, rules[0].channels.email[1]: must be an e-mail address, got "not-an-address"',
            id="bad-email",
        ),
        pytest.param(
            HEAD.replace('{slack: "#ci"}', "{slack: '#ci', webhook: x}") + "    threshold: 0.8\n",
            "alert_rules.yaml line 5, rules[0].channels.webhook: unknown field; channels are slack, telegram, email",
            id="unknown-channel",
        ),
        pytest.param(
            HEAD + "    threshold: 0.8\n    threshold: 0.9\n",
            "alert_rules.yaml line 7, rules[0].threshold: duplicate key (first at line 6)",
            id="duplicate-key",
        ),
        pytest.param(
            'rules:\n  - id: r\n    kind: new_flaky_job\n    severity: warning\n    channels: {slack: "#ci"}\n'
            "    scope: {branches: main}\n",
            "alert_rules.yaml line 6, rules[0].scope.branches: not used by new_flaky_job (flaky jobs are counted"
            " across branches)",
            id="flaky-with-branches",
        ),
        pytest.param(
            'rules:\n  - id: "main red!"\n    kind: new_flaky_job\n    severity: warning\n'
            '    channels: {slack: "#c"}\n',
            "alert_rules.yaml line 2, rules[0].id: must be 1 to 64 letters, digits, '.', '_' or '-' (starting with a"
            ' letter or digit), got "main red!"',
            id="bad-id",
        ),
        pytest.param(
            HEAD + "    threshold: 0.8\n  - just a string\n",
            "alert_rules.yaml line 7, rules[1]: must be a mapping (a rule with id, kind, severity, scope, channels),"
            ' got "just a string"',
            id="rule-not-a-mapping",
        ),
        pytest.param(
            HEAD + "    threshold: !!float high\n",
            "alert_rules.yaml line 6, rules[0].threshold: cannot read this value: could not convert string to float:"
            " 'high'",
            id="bad-explicit-tag",
        ),
        pytest.param(
            HEAD.replace("id: r", "id: !!python/name:os.system r") + "    threshold: 0.8\n",
            "alert_rules.yaml line 2, rules[0].id: cannot read this value: could not determine a constructor for the"
            " tag 'tag:yaml.org,2002:python/name:os.system'",
            id="unsafe-tag",
        ),
        pytest.param(
            "rules:\n  id: r\n",
            "alert_rules.yaml line 2, rules: must be a list of rules, got a mapping",
            id="rules-not-a-list",
        ),
        pytest.param(
            "rule: []\n",
            "alert_rules.yaml line 1, rule: unknown field (did you mean rules?); the top-level keys are rules and"
            " defaults\n"
            "alert_rules.yaml line 1, rules: required (the list of rules; rules: [] for none)",
            id="unknown-top-level-key",
        ),
        pytest.param(
            "defaults:\n  severity: urgent\nrules: []\n",
            'alert_rules.yaml line 2, defaults.severity: must be one of critical, warning, got "urgent"',
            id="bad-default",
        ),
        pytest.param(
            "",
            "alert_rules.yaml line 1: the file is empty: expected a mapping with the key 'rules'",
            id="empty-file",
        ),
        pytest.param(
            HEAD + "    threshold: 0.8\n   window_days: 7\n",
            "alert_rules.yaml line 7: YAML syntax error: expected <block end>, but found '<block mapping start>'"
            " (while parsing a block collection at line 2)",
            id="yaml-syntax-indentation",
        ),
        pytest.param(
            HEAD + "    threshold: [0.8\n",
            "alert_rules.yaml line 7: YAML syntax error: expected ',' or ']', but got '<stream end>'"
            " (while parsing a flow sequence at line 6)",
            id="yaml-syntax-unclosed",
        ),
    ],
)
def test_bad_files_name_file_line_and_field(text: str, expected: str) -> None:
    with pytest.raises(AlertRulesError) as info:
        ar.parse_rules(text)
    assert "\n".join(str(p) for p in info.value.problems) == expected


def test_every_problem_is_collected_into_one_error_in_line_order() -> None:
    text = (
        "rules:\n"
        "  - id: a\n"
        "    kind: red_longer_than\n"
        "    severity: critical\n"
        "    hours: -1\n"
        "    branch_pattern: main\n"
        "    channels: {slack: '#ci'}\n"
        "  - id: b\n"
        "    kind: queue_p90_above\n"
        "    severity: warning\n"
        "    minutes: 5\n"
        "    channels: {email: nobody}\n"
        "  - id: a\n"
        "    kind: rerun_minutes_above\n"
        "    severity: warning\n"
        "    minutes: 5\n"
        "    channels: {slack: '#ci'}\n"
    )
    with pytest.raises(AlertRulesError) as info:
        ar.parse_rules(text, source="team.yaml")
    assert [(p.source, p.line, p.field) for p in info.value.problems] == [
        ("team.yaml", 5, "rules[0].hours"),
        ("team.yaml", 12, "rules[1].channels.email"),
        ("team.yaml", 13, "rules[2].id"),
    ]
    assert str(info.value) == (
        "3 problems in the alert rules:\n"
        "  team.yaml line 5, rules[0].hours: must be a number above 0, got -1\n"
        '  team.yaml line 12, rules[1].channels.email: must be an e-mail address, got "nobody"\n'
        '  team.yaml line 13, rules[2].id: duplicate id "a" (first at line 2, rules[0])'
    )


def test_load_rules_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "alert_rules.yaml"
    path.write_text(HEAD + "    threshold: high\n")
    with pytest.raises(AlertRulesError, match=r'^alert_rules.yaml line 6, rules\[0\].threshold: .* got "high"$'):
        ar.load_rules(path)
    path.write_bytes(b"rules: [\xff]\n")
    with pytest.raises(AlertRulesError, match=r"^alert_rules.yaml line 1: not UTF-8 text"):
        ar.load_rules(path)


def test_a_character_yaml_does_not_allow_names_the_file_and_line(tmp_path: Path) -> None:
    """A control character (here BEL in a comment) is refused by YAML's reader before any parsing: it
    used to escape as a bare yaml.ReaderError without the file's name."""
    text = HEAD + "    threshold: 0.8\n    # pasted from a terminal \x07\n"
    with pytest.raises(AlertRulesError) as info:
        ar.parse_rules(text, source="team.yaml")
    (problem,) = info.value.problems
    assert (problem.source, problem.line, problem.field) == ("team.yaml", 7, None)
    assert str(problem).startswith("team.yaml line 7: YAML error: unacceptable character #x0007")
    path = tmp_path / "alert_rules.yaml"
    path.write_text("rules: []\n\x1b[31m\n")
    with pytest.raises(AlertRulesError, match=r"^alert_rules.yaml line 2: YAML error: unacceptable character #x001b"):
        ar.load_rules(path)


def test_a_single_problem_reads_as_one_line() -> None:
    with pytest.raises(AlertRulesError) as info:
        ar.parse_rules(HEAD + "    threshold: high\n")
    assert (
        str(info.value) == 'alert_rules.yaml line 6, rules[0].threshold: must be a number between 0 and 1, got "high"'
    )
    assert isinstance(info.value, ValueError)


# ---- patterns and scope ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern, ignore_case, name, expected",
    [
        ("main", False, "main", True),
        ("main", False, "maintenance", False),
        ("release/*", False, "release/1.2", True),
        ("release/*", False, "hotfix/release/1", False),
        ("*", False, "feature/a/b", True),  # * also crosses /
        ("acme/*", True, "ACME/Api", True),
        ("acme/*", False, "ACME/Api", False),
        ("re:main|master", False, "master", True),
        ("re:main|master", False, "maintenance", False),  # the whole name must match
        ("re:release/v?\\d+", False, "release/v12", True),
        ("[!x]*", False, "main", True),
        ("v[]]", False, "v]", True),
    ],
)
def test_pattern_matching(pattern: str, ignore_case: bool, name: str, expected: bool) -> None:
    p = ar._pattern(pattern, ignore_case=ignore_case)
    assert p.matches(name) is expected


def test_scope_filters_all_have_to_match() -> None:
    (r,) = parse("""
        rules:
          - id: s
            kind: success_rate_below
            severity: warning
            threshold: 0.5
            scope: {provider: github, repos: "acme/*", branches: [main, "release/*"], workflows: CI}
            channels: {slack: "#ci"}
        """)
    assert r.scope.matches(MAIN)
    assert r.scope.matches(ScopeKey("github", "Acme/web", "CI", "release/2"))
    assert not r.scope.matches(ScopeKey("gitlab", "acme/api", "CI", "main"))
    assert not r.scope.matches(ScopeKey("github", "other/api", "CI", "main"))
    assert not r.scope.matches(ScopeKey("github", "acme/api", "CI", "feature/x"))
    assert not r.scope.matches(ScopeKey("github", "acme/api", "Lint", "main"))
    assert ar.Scope().matches(ScopeKey("gitlab", "x/y", "push", "dev"))


def test_scope_keys() -> None:
    assert MAIN.key == "github:acme/api:CI:main"
    assert ScopeKey("gitlab", "g/sub/p", "push", "*", "unit tests").key == "gitlab:g/sub/p:push:*:unit tests"


# ---- evaluation ------------------------------------------------------------------------------------

FLAKY = ScopeKey("github", "acme/api", "CI", "*", "test (3.12)")


@pytest.mark.parametrize(
    "kind, fields, observation, state, value",
    [
        # success rate: below the threshold fires; at it is ok; too few runs hold
        ("success_rate_below", {"threshold": 0.8}, SuccessRate(MAIN, 7, runs=10, successes=7), "firing", 0.7),
        ("success_rate_below", {"threshold": 0.8}, SuccessRate(MAIN, 7, runs=10, successes=8), "ok", 0.8),
        ("success_rate_below", {"threshold": 0.8}, SuccessRate(MAIN, 7, runs=4, successes=0), "hold", 0.0),
        ("success_rate_below", {"threshold": 0.8}, SuccessRate(MAIN, 7, runs=0, successes=0), "hold", None),
        ("success_rate_below", {"threshold": 0.8, "min_runs": 4}, SuccessRate(MAIN, 7, 4, 0), "firing", 0.0),
        # red streak: older than the limit fires; exactly the limit or younger is ok; green is ok
        (
            "red_longer_than",
            {"hours": 4, "branch_pattern": "main"},
            RedStreak(MAIN, END - dt.timedelta(hours=5)),
            "firing",
            5.0,
        ),
        (
            "red_longer_than",
            {"hours": 4, "branch_pattern": "main"},
            RedStreak(MAIN, END - dt.timedelta(hours=4)),
            "ok",
            4.0,
        ),
        ("red_longer_than", {"hours": 4, "branch_pattern": "main"}, RedStreak(MAIN, None), "ok", 0.0),
        (
            "red_longer_than",
            {"hours": 4, "branch_pattern": "main"},
            RedStreak(MAIN, END + dt.timedelta(hours=1)),
            "ok",
            0.0,
        ),
        # duration: +50% over the baseline fires at a 25% limit; +25% exactly is ok; thin data holds
        ("duration_regression", {"percent": 25}, DurationP90(MAIN, 7, 4, 600, 10, 400, 40), "firing", 50.0),
        ("duration_regression", {"percent": 25}, DurationP90(MAIN, 7, 4, 500, 10, 400, 40), "ok", 25.0),
        ("duration_regression", {"percent": 25}, DurationP90(MAIN, 7, 4, 300, 10, 400, 40), "ok", -25.0),
        ("duration_regression", {"percent": 25}, DurationP90(MAIN, 7, 4, 900, 4, 400, 40), "hold", None),
        ("duration_regression", {"percent": 25}, DurationP90(MAIN, 7, 4, 900, 10, 400, 4), "hold", None),
        ("duration_regression", {"percent": 25}, DurationP90(MAIN, 7, 4, 900, 10, None, 0), "hold", None),
        # flaky: new fires, already known holds, not flaky is ok, below min_flaky_rate is ok
        ("new_flaky_job", {}, FlakyJob(FLAKY, 7, 4, flaky_shas=2, shas=10, known=False), "firing", 0.2),
        ("new_flaky_job", {}, FlakyJob(FLAKY, 7, 4, flaky_shas=2, shas=10, known=True), "hold", 0.2),
        ("new_flaky_job", {}, FlakyJob(FLAKY, 7, 4, flaky_shas=0, shas=10, known=False), "ok", 0.0),
        ("new_flaky_job", {"min_flaky_rate": 0.25}, FlakyJob(FLAKY, 7, 4, 2, 10, False), "ok", 0.2),
        # queue p90 in minutes
        ("queue_p90_above", {"minutes": 10}, QueueP90(MAIN, 1, p90_s=900, runs=8), "firing", 15.0),
        ("queue_p90_above", {"minutes": 10}, QueueP90(MAIN, 1, p90_s=600, runs=8), "ok", 10.0),
        ("queue_p90_above", {"minutes": 10}, QueueP90(MAIN, 1, p90_s=900, runs=2), "hold", 15.0),
        ("queue_p90_above", {"minutes": 10}, QueueP90(MAIN, 1, p90_s=None, runs=0), "hold", None),
        # re-run minutes
        ("rerun_minutes_above", {"minutes": 60}, RerunMinutes(MAIN, 1, minutes=61.5), "firing", 61.5),
        ("rerun_minutes_above", {"minutes": 60}, RerunMinutes(MAIN, 1, minutes=60), "ok", 60.0),
        ("rerun_minutes_above", {"minutes": 60}, RerunMinutes(MAIN, 1, minutes=0), "ok", 0.0),
    ],
)
def test_evaluation_per_kind(kind: str, fields: dict, observation: object, state: str, value: float | None) -> None:
    r = rule(kind, **fields)
    (c,) = ar.evaluate([r], [observation], interval_end=END)
    assert (c.rule_id, c.kind, c.severity, c.scope, c.at) == ("r1", kind, "warning", observation.scope, END)
    assert c.state == state
    assert c.value == (pytest.approx(value) if value is not None else None)


def test_condition_threshold_and_figures() -> None:
    r = rule("duration_regression", percent=25)
    (c,) = ar.evaluate([r], [DurationP90(MAIN, 7, 4, 600, 10, 400, 40)], interval_end=END)
    assert c.threshold == 25
    assert c.figures == {
        "p90_s": 600,
        "runs": 10,
        "baseline_p90_s": 400,
        "baseline_runs": 40,
        "window_days": 7,
        "baseline_weeks": 4,
    }
    red = rule("red_longer_than", hours=2, branch_pattern="main")
    (c,) = ar.evaluate([red], [RedStreak(MAIN, END - dt.timedelta(hours=3), failed_runs=4)], interval_end=END)
    assert c.figures == {"open_since": "2026-11-16T21:00:00Z", "failed_runs": 4}
    assert c.threshold == 2


def test_observations_over_another_window_scope_or_branch_are_not_used() -> None:
    rate = rule("success_rate_below", threshold=0.9, window_days=14)
    red = rule("red_longer_than", hours=1, branch_pattern="release/*")
    flaky = rule("new_flaky_job", baseline_weeks=2)
    observations = [
        SuccessRate(MAIN, 7, 10, 1),  # 7-day window, the rule reads 14 days
        RedStreak(MAIN, END - 10 * DAY),  # main is not a release branch
        FlakyJob(FLAKY, 7, 4, 3, 3, False),  # 4-week baseline, the rule reads 2
    ]
    assert ar.evaluate([rate, red, flaky], observations, interval_end=END) == []
    # the same with matching windows and branch
    matching = [
        SuccessRate(MAIN, 14, 10, 1),
        RedStreak(dataclasses.replace(MAIN, branch="release/2"), END - 10 * DAY),
        FlakyJob(FLAKY, 7, 2, 3, 3, False),
    ]
    got = ar.evaluate([rate, red, flaky], matching, interval_end=END)
    assert [(c.kind, c.state) for c in got] == [
        ("success_rate_below", "firing"),
        ("red_longer_than", "firing"),
        ("new_flaky_job", "firing"),
    ]


def test_disabled_rules_are_not_evaluated_and_need_nothing() -> None:
    off = rule("rerun_minutes_above", minutes=1, enabled="false")
    assert off.enabled is False
    assert ar.evaluate([off], [RerunMinutes(MAIN, 1, 500)], interval_end=END) == []
    assert ar.needs([off]) == []


def test_needs_lists_each_window_once() -> None:
    rules = [
        rule("success_rate_below", threshold=0.8),
        rule("success_rate_below", threshold=0.5, window_days=30),
        rule("success_rate_below", threshold=0.9),
        rule("red_longer_than", hours=1, branch_pattern="main"),
        rule("duration_regression", percent=10, baseline_weeks=8),
        rule("new_flaky_job"),
    ]
    assert ar.needs(rules) == [
        ar.Need("success_rate_below", 7),
        ar.Need("success_rate_below", 30),
        ar.Need("red_longer_than"),
        ar.Need("duration_regression", 7, 8),
        ar.Need("new_flaky_job", 7, 4),
    ]
    assert ar.needs(rules)[2].observation is RedStreak


def test_evaluate_refuses_bad_input() -> None:
    r = rule("rerun_minutes_above", minutes=1)
    with pytest.raises(ValueError, match="the same observation twice: rerun_minutes_above github:acme/api:CI:main"):
        ar.evaluate([r], [RerunMinutes(MAIN, 1, 5), RerunMinutes(MAIN, 1, 6)], interval_end=END)
    with pytest.raises(ValueError, match="interval_end must be a timezone-aware datetime"):
        ar.evaluate([r], [], interval_end=dt.datetime(2026, 11, 17))
    with pytest.raises(ValueError, match=r"needs scope\.job"):
        ar.evaluate([r], [FlakyJob(MAIN, 7, 4, 1, 1, False)], interval_end=END)
    with pytest.raises(TypeError, match="not an observation"):
        ar.evaluate([r], [{"minutes": 5}], interval_end=END)  # type: ignore[list-item]


# ---- transitions -----------------------------------------------------------------------------------


def cond(state: str, value: float | None = 0.5, scope: ScopeKey = MAIN, rule_id: str = "rate") -> Condition:
    return Condition(rule_id, "success_rate_below", "critical", scope, state, value, 0.8, END, {"runs": 10})


def open_event(scope: ScopeKey = MAIN, rule_id: str = "rate", started: dt.datetime = END - 2 * DAY) -> AlertEvent:
    return AlertEvent(
        rule_id,
        scope.key,
        "critical",
        "firing",
        started,
        END - DAY,
        None,
        0.5,
        0.8,
        {"kind": "success_rate_below", "unit": "fraction", "scope": scope.as_dict(), "figures": {"runs": 9}},
        id=7,
    )


def test_a_firing_condition_without_an_open_alert_starts_one() -> None:
    t = ar.transitions([cond("firing", 0.6)], [], at=END)
    assert t.still_firing == []
    assert t.resolved == []
    assert t.started == [
        AlertEvent(
            "rate",
            "github:acme/api:CI:main",
            "critical",
            "firing",
            END,
            END,
            None,
            0.6,
            0.8,
            {
                "kind": "success_rate_below",
                "unit": "fraction",
                "scope": {"provider": "github", "repo": "acme/api", "workflow": "CI", "branch": "main", "job": None},
                "figures": {"runs": 10},
            },
        )
    ]


def test_a_firing_condition_with_an_open_alert_is_still_firing() -> None:
    started, still, resolved = ar.transitions([cond("firing", 0.4)], [open_event()], at=END)
    assert (started, resolved) == ([], [])
    (ev,) = still
    assert (ev.id, ev.started_at, ev.last_evaluated_at, ev.value, ev.state) == (7, END - 2 * DAY, END, 0.4, "firing")
    assert ev.details["figures"] == {"runs": 10}


def test_an_ok_condition_resolves_the_open_alert_and_keeps_the_ok_value() -> None:
    started, still, resolved = ar.transitions([cond("ok", 0.9)], [open_event()], at=END)
    assert (started, still) == ([], [])
    (ev,) = resolved
    assert (ev.state, ev.resolved_at, ev.last_evaluated_at, ev.value) == ("resolved", END, END, 0.5)
    assert (ev.details["resolved_value"], ev.details["resolved_figures"]) == (0.9, {"runs": 10})


def test_hold_keeps_an_open_alert_as_it_is_and_starts_nothing() -> None:
    assert ar.transitions([cond("hold")], [open_event()], at=END) == ([], [], [])
    assert ar.transitions([cond("hold")], [], at=END) == ([], [], [])


def test_an_ok_condition_without_an_open_alert_changes_nothing() -> None:
    assert ar.transitions([cond("ok")], [], at=END) == ([], [], [])


def test_an_open_alert_without_a_condition_resolves_unless_its_repo_is_held() -> None:
    other = ScopeKey("github", "acme/web", "CI", "main")
    opened = [open_event(), open_event(other)]
    _, _, resolved = ar.transitions([], opened, at=END)
    assert [(e.scope_key, e.details["resolved_value"]) for e in resolved] == [
        ("github:acme/api:CI:main", None),
        ("github:acme/web:CI:main", None),
    ]
    _, _, resolved = ar.transitions([], opened, at=END, held_repos={"acme/web"})
    assert [e.scope_key for e in resolved] == ["github:acme/api:CI:main"]


def test_only_the_latest_open_episode_of_a_key_counts() -> None:
    old = open_event(started=END - 9 * DAY)
    new = dataclasses.replace(open_event(), id=8)
    _, still, _ = ar.transitions([cond("firing")], [new, old], at=END)
    assert [e.id for e in still] == [8]


def test_transitions_refuses_the_same_condition_twice() -> None:
    with pytest.raises(ValueError, match="two conditions for rule 'rate'"):
        ar.transitions([cond("firing"), cond("ok")], [], at=END)


# ---- messages --------------------------------------------------------------------------------------


def event(kind: str, value: float, threshold: float, figures: dict, scope: ScopeKey = MAIN, **kw: object) -> AlertEvent:
    details = {"kind": kind, "unit": ar.UNITS[kind], "scope": scope.as_dict(), "figures": figures}
    details.update(kw.pop("details", {}))  # type: ignore[call-overload]
    fields = {"severity": "critical", "state": "firing", "resolved_at": None, **kw}
    return AlertEvent(
        rule_id="main-rate",
        scope_key=scope.key,
        started_at=END,
        last_evaluated_at=END,
        value=value,
        threshold=threshold,
        details=details,
        **fields,  # type: ignore[arg-type]
    )


RATE = event("success_rate_below", 0.625, 0.8, {"runs": 16, "successes": 10, "window_days": 7})


@pytest.mark.parametrize(
    "markup, expected",
    [
        (
            "text",
            (
                "🔴 CRITICAL main-rate · github acme/api › CI › main: success rate 62.5% below 80% "
                "(10 of 16 runs in the last 7 days)"
            ),
        ),
        (
            "html",
            (
                "🔴 <b>CRITICAL</b> main-rate · github <b>acme/api</b> › CI › main: success rate 62.5% below 80% "
                "(10 of 16 runs in the last 7 days)"
            ),
        ),
        (
            "mrkdwn",
            (
                "🔴 *CRITICAL* main-rate · github *acme/api* › CI › main: success rate 62.5% below 80% "
                "(10 of 16 runs in the last 7 days)"
            ),
        ),
    ],
)
def test_start_text_in_each_markup(markup: str, expected: str) -> None:
    assert ar.alert_text(RATE, "start", markup) == expected


def test_resolve_text_says_how_long_it_lasted() -> None:
    done = dataclasses.replace(
        RATE,
        state="resolved",
        resolved_at=END + 2 * DAY + dt.timedelta(hours=3),
        details={**RATE.details, "resolved_value": 0.85},
    )
    assert ar.alert_text(done, "resolve", "html") == (
        "✅ <b>RESOLVED</b> <b>CRITICAL</b> main-rate · github <b>acme/api</b> › CI › main: "
        "success rate back to 85% (threshold 80%); lasted 2 d 3 h"
    )
    unknown = dataclasses.replace(done, details={**RATE.details, "resolved_value": None})
    assert ar.alert_text(unknown, "resolve", "text").endswith("success rate no longer below 80%; lasted 2 d 3 h")


@pytest.mark.parametrize(
    "ev, start, resolve",
    [
        (
            event(
                "red_longer_than",
                7.5,
                4,
                {"open_since": "2026-11-16T16:30:00Z", "failed_runs": 3},
                severity="warning",
                details={"resolved_value": 0.0},
            ),
            (
                "🟠 WARNING main-rate · github acme/api › CI › main: red for 7.5 h, longer than 4 h "
                "(red since 2026-11-16 16:30 UTC)"
            ),
            "green again",
        ),
        (
            event(
                "duration_regression",
                50,
                25,
                {"p90_s": 750, "baseline_p90_s": 500, "baseline_weeks": 4},
                details={"resolved_value": 10.0},
            ),
            (
                "🔴 CRITICAL main-rate · github acme/api › CI › main: p90 duration 12 min 30 s is 50% above the 4-week "
                "baseline 8 min 20 s (limit +25%)"
            ),
            "p90 duration now +10% against its baseline (limit +25%)",
        ),
        (
            event(
                "new_flaky_job",
                0.15,
                0.0,
                {"flaky_shas": 3, "shas": 20, "window_days": 7},
                scope=FLAKY,
                details={"resolved_value": 0.0},
            ),
            (
                "🔴 CRITICAL main-rate · github acme/api › CI › job test (3.12): new flaky job: "
                "flaky on 3 of 20 commits (15%) in the last 7 days"
            ),
            "no longer flaky",
        ),
        (
            event("queue_p90_above", 14.25, 10, {"runs": 23, "window_days": 1}, details={"resolved_value": 3.0}),
            (
                "🔴 CRITICAL main-rate · github acme/api › CI › main: p90 queue time 14.2 min above 10 min "
                "(23 runs in the last day)"
            ),
            "p90 queue time back to 3 min (threshold 10 min)",
        ),
        (
            event("rerun_minutes_above", 130, 60, {"window_days": 1}, details={"resolved_value": None}),
            (
                "🔴 CRITICAL main-rate · github acme/api › CI › main: 130 min spent in re-runs in the last day, "
                "above 60 min"
            ),
            "re-runs no longer above 60 min",
        ),
    ],
)
def test_texts_per_kind(ev: AlertEvent, start: str, resolve: str) -> None:
    assert ar.alert_text(ev, "start", "text") == start
    done = dataclasses.replace(ev, state="resolved", resolved_at=ev.started_at + dt.timedelta(minutes=45))
    assert ar.alert_text(done, "resolve", "text").endswith(f": {resolve}; lasted 45 min")


def test_untrusted_names_are_escaped_and_cannot_mention() -> None:
    scope = ScopeKey("github", "acme/api", "<b>CI</b> & co", "feat/@channel_*x*`")
    ev = event("rerun_minutes_above", 130, 60, {"window_days": 1}, scope=scope)
    html_text = ar.alert_text(ev, "start", "html")
    assert "› &lt;b&gt;CI&lt;/b&gt; &amp; co › feat/@\u2060channel_*x*`:" in html_text
    slack = ar.alert_text(ev, "start", "mrkdwn")
    assert "› &lt;b&gt;CI&lt;/b&gt; &amp; co › feat/@\u2060channel＿∗x∗ˋ:" in slack
    plain = ar.alert_text(ev, "start", "text")
    assert "› <b>CI</b> & co › feat/@\u2060channel_*x*`:" in plain


def test_long_names_are_cut_and_text_is_one_line() -> None:
    scope = ScopeKey("github", "acme/api", "CI\nnext line", "b" * 300)
    ev = event("rerun_minutes_above", 130, 60, {"window_days": 1}, scope=scope)
    text = ar.alert_text(ev, "start", "text")
    assert "\n" not in text
    assert "CI next line › " + "b" * 119 + "…:" in text


@pytest.mark.parametrize(
    "delta, expected",
    [
        (dt.timedelta(minutes=45), "45 min"),
        (dt.timedelta(hours=3), "3 h"),
        (dt.timedelta(hours=3, minutes=20), "3 h 20 min"),
        (dt.timedelta(days=1), "1 d"),
        (dt.timedelta(days=2, hours=3, minutes=59), "2 d 3 h"),
        (dt.timedelta(seconds=-5), "0 min"),
    ],
)
def test_span(delta: dt.timedelta, expected: str) -> None:
    assert ar.span(delta) == expected


def test_alert_text_refuses_unknown_kinds_and_markups() -> None:
    with pytest.raises(ValueError, match="kind must be 'start' or 'resolve'"):
        ar.alert_text(RATE, "stop")
    with pytest.raises(ValueError, match="markup must be one of html, mrkdwn, text"):
        ar.alert_text(RATE, "start", "markdown")
