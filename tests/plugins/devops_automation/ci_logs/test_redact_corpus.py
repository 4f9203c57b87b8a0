"""Redaction against the generated corpus of ``benchmarks/redaction_corpus.py``: every documented
format in every context is caught, every look-alike class survives, and the fast path only hands
trigger lines to the rules."""

from __future__ import annotations

import importlib
import re

import pytest

from benchmarks.redaction_corpus import FORMATS, Case, LookAlike, cases, caught, lookalikes
from devops_automation.ci_logs.redact import redact
from devops_automation.ci_logs.secret_formats import FORMATS as TOKEN_FORMATS

redact_module = importlib.import_module("devops_automation.ci_logs.redact")

CASES = cases()
LOOKALIKES = lookalikes()
LOOKALIKE_CLASSES = sorted({la.cls for la in LOOKALIKES})


@pytest.mark.parametrize("case", CASES, ids=[f"{c.format}-{c.context}" for c in CASES])
def test_format_in_context_is_redacted(case: Case) -> None:
    out = redact(case.text)
    assert caught(case, out.text), out.text
    assert out.total >= 1
    assert redact(out.text).text == out.text  # idempotent: markers and what is left trigger nothing


@pytest.mark.parametrize("cls", LOOKALIKE_CLASSES)
def test_lookalike_class_survives(cls: str) -> None:
    lines = [la.text for la in LOOKALIKES if la.cls == cls]
    assert lines
    changed = [(t, redact(t).text) for t in lines if redact(t).text != t]
    assert changed == []


@pytest.mark.parametrize("la", LOOKALIKES, ids=[f"{la.cls}-{i}" for i, la in enumerate(LOOKALIKES)])
def test_lookalike_line_is_not_counted(la: LookAlike) -> None:
    assert redact(la.text).counts == {}


def test_corpus_covers_every_context_and_is_deterministic() -> None:
    keyword_contexts = {c.context for c in CASES if c.category == "keyword"}
    assert {"env", "yaml", "json", "header", "url", "cli", "stack", "maven_debug"} <= keyword_contexts
    assert {c.context for c in CASES if c.category == "self"} >= {"bare", "argument", "message"}
    for fmt in FORMATS:  # >= 6 contexts per format, bare ones for self-identifying formats
        contexts = {c.context for c in CASES if c.format == fmt.name}
        assert len(contexts) >= (11 if fmt.self_identifying else 8), fmt.name
    assert [c.text for c in cases()] == [c.text for c in CASES]  # seeded
    assert cases(seed=1)[0].text != CASES[0].text


def test_caught_needs_every_piece_gone() -> None:
    case = Case("x", "env", "keyword", "TOKEN=abcdefghijklmnop", ("abcdefghijklmnop",))
    assert caught(case, "TOKEN=[REDACTED:secret]")
    assert not caught(case, "TOKEN=[REDACTED:secret]ijklmnop")  # 8 characters survived
    assert not caught(case, "TOKEN=abcdefgh[REDACTED:secret]")


def test_every_self_identifying_format_has_a_trigger_that_starts_with_a_literal() -> None:
    for fmt in TOKEN_FORMATS:
        assert fmt.triggers or fmt.trigger_patterns, fmt.kind
        for t in (*fmt.triggers, *fmt.trigger_patterns):
            assert t == t.lower(), (fmt.kind, t)
            assert re.match(r"\\?[^\\\[(?*+{]", t), (fmt.kind, t)


def test_fast_path_hands_only_trigger_lines_to_the_rules() -> None:
    lines = [
        "[INFO] Building app 1.0",
        "export GITHUB_TOKEN=" + "gh" + "p_" + "a1B2" * 9,
        "[INFO] BUILD SUCCESS",
        "Tests run: 3, Failures: 0",
        "password: hunter2!x",
    ]
    text = "\n".join(lines)
    spans = redact_module._candidate_lines(text)
    assert [text[s:e] for s, e in spans] == [lines[1], lines[4]]
    assert redact_module._candidate_lines("[INFO] BUILD SUCCESS\nTotal time: 3.2 s") == []
    out = redact(text).text.split("\n")
    assert out[0] == lines[0] and out[2:4] == lines[2:4]
    assert out[1] == "export GITHUB_TOKEN=[REDACTED:github_token]"
    assert out[4] == "password: [REDACTED:secret]"
