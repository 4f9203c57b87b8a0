"""Redaction: every planted secret disappears, no look-alike is damaged, real logs are left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from devops_automation.ci_logs.excerpt import excerpt
from devops_automation.ci_logs.redact import redact, redact_lines, redact_obj, shannon_entropy

from .secrets_corpus import LOOKALIKES, PLANTED

DATASET = Path(__file__).resolve().parents[4] / ".." / "shared" / "datasets" / "ci-breakages" / "cases"


@pytest.mark.parametrize(("kind", "text", "secrets"), PLANTED, ids=[f"{i}-{p[0]}" for i, p in enumerate(PLANTED)])
def test_planted_secret_is_removed(kind: str, text: str, secrets: list[str]) -> None:
    result = redact(text)
    assert secrets  # each case names what must disappear
    for secret in secrets:
        assert secret not in result.text
    assert "[REDACTED:" in result.text
    assert result.total >= 1


def test_every_planted_secret_removed_in_one_document() -> None:
    """All planted secrets mixed into one text (as a log would hold them): 100 % removed."""
    doc = "\n".join(f"line {i}: {text}" for i, (_, text, _) in enumerate(PLANTED))
    out = redact(doc).text
    leaked = [s for _, _, secrets in PLANTED for s in secrets if s in out]
    assert leaked == []


def test_kinds_are_reported() -> None:
    kinds = {k for _, text, _ in PLANTED for k in redact(text).counts}
    for expected in (
        "private_key",
        "aws_access_key",
        "github_token",
        "gitlab_token",
        "slack_token",
        "openai_key",
        "jwt",
        "authorization",
        "url_password",
        "secret",
        "high_entropy",
    ):
        assert expected in kinds


@pytest.mark.parametrize("text", LOOKALIKES)
def test_lookalike_survives(text: str) -> None:
    assert redact(text).text == text


def test_header_and_scheme_are_kept() -> None:
    out = redact("> Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123456789").text
    assert out == "> Authorization: Bearer [REDACTED:authorization]"
    assert (
        redact("https://deploy:pa55w0rdXYZ@git.example.com/x.git").text
        == "https://deploy:[REDACTED:url_password]@git.example.com/x.git"
    )


def test_redaction_is_idempotent() -> None:
    doc = "\n".join(text for _, text, _ in PLANTED)
    once = redact(doc).text
    twice = redact(once)
    assert twice.text == once
    assert twice.total == 0


def test_pem_body_without_begin_line() -> None:
    """An excerpt can keep a middle line of a key without its BEGIN line (numbered as in an excerpt)."""
    body_line = PLANTED[0][2][3]
    out = redact(f"17: {body_line}").text
    assert body_line not in out
    assert out.startswith("17: ")


def test_redact_lines_and_objects() -> None:
    secret = PLANTED[8][2][0]  # a GitHub token
    lines, counts = redact_lines(["ok", f"token {secret}"])
    assert lines[0] == "ok"
    assert secret not in lines[1]
    assert sum(counts.values()) == 1
    obj = redact_obj({"a": [f"GITHUB_TOKEN={secret}", 3], "b": ("x", {"c": f"Bearer {secret}"})})
    assert secret not in repr(obj)
    assert obj["a"][1] == 3  # type: ignore[index]


def test_entropy() -> None:
    assert shannon_entropy("aaaa") == 0
    assert shannon_entropy("abcd") == 2


@pytest.mark.skipif(not DATASET.is_dir(), reason="ci-breakages dataset not present")
def test_real_logs_have_no_false_positives() -> None:
    """~12 MB of real build logs contain no credentials: nothing may be redacted in them."""
    hits = []
    for path in sorted(DATASET.glob("*/*.log")):
        r = redact(path.read_bytes().decode("utf-8", errors="replace"))
        if r.counts:
            hits.append((path.parent.name, r.counts))
    assert hits == []


def test_excerpt_text_is_redacted() -> None:
    """Secrets printed on error lines never reach the excerpt's text, line texts or signals."""
    secrets = [s for _, _, ss in PLANTED[4:20] for s in ss]
    log = "\n".join(["step 1", *[f"ERROR: deploy failed: {text}" for _, text, _ in PLANTED[4:20]], "Finished: FAILURE"])
    ex = excerpt(log.encode(), budget=20000)
    blob = ex.text + repr(ex.line_text) + repr([s.text for s in ex.signals])
    assert [s for s in secrets if s in blob] == []
    assert ex.redactions
    assert sum(ex.redactions.values()) >= len(PLANTED[4:20])


def test_private_key_block_in_a_log_is_never_shown() -> None:
    """Line-by-line redaction cannot recognise the short last line of a key: the excerpt tracks the
    BEGIN … END block while streaming and hides every line in it."""
    kind, block, body = PLANTED[0]
    assert kind == "private_key"
    assert len(body) >= 3  # the key's body lines
    rows = [f"[INFO] step {i}" for i in range(30)] + ["ERROR: writing deploy key failed, key was:"] + block.splitlines()
    rows += ["ERROR: deploy failed", "Finished: FAILURE"]
    ex = excerpt("\n".join(rows).encode(), budget=20000)
    assert set(range(31, 31 + len(body) + 3)) <= set(ex.lines)  # the block is kept (it sits among errors) ...
    for secret in body:
        assert secret not in ex.text  # ... but never shown
    assert ex.text.count("[REDACTED:private_key]") >= len(body)
