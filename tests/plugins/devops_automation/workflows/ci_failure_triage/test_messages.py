"""Triage messages: fingerprints stable across runs, Slack/Telegram limits, escaping of hostile text."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from devops_automation.messaging import visible_length
from devops_automation.workflows.ci_failure_triage.messages import (
    ATTENTION_LIMIT,
    fingerprint,
    first_error_line,
    needs_attention_text,
    normalise_error,
    run_note,
    slack_message,
    slack_repeat_text,
    telegram_message,
    telegram_repeat_text,
)

BASE = "https://gitlab.example.com/acme/api"
PIPELINE = {
    "project_path": "acme/api",
    "project_id": "12",
    "pipeline_id": "345",
    "pipeline_url": f"{BASE}/-/pipelines/345",
    "ref": "main",
    "sha": "a1b2c3d4",
    "source": "email",
    "test_summary": {"total": 120, "failed": 3},
}
HOSTILE = (
    "<!channel> <!here> @channel @here <@U123> <https://evil.example|click me> "
    '& <b>bold</b> ```rm -rf``` </pre><a href="x">'
)


def make_job(i: int = 1, **over: Any) -> dict[str, Any]:
    job = {
        "job_id": str(900 + i),
        "job_name": f"unit-tests-{i}",
        "stage": "test",
        "job_url": f"{BASE}/-/jobs/{900 + i}",
        "failure_reason": "script_failure",
        "category": "test_failure",
        "root_cause": "test_login fails: expected 200, got 500.",
        "fix_steps": [f"step {n}" for n in range(1, 8)],
        "evidence": [{"line": 120 + n, "text": f"E   AssertionError number {n}"} for n in range(5)],
        "is_transient": False,
        "confidence": 0.8,
        "analyser": "llm",
        "analyser_note": None,
        "model": "gpt-4o-mini",
        "occurrences": 1,
        "retried_job_id": None,
        "skipped": False,
    }
    job.update(over)
    return job


# ---- fingerprints ------------------------------------------------------------------------------
RUN_A = (
    "2024-03-01T10:11:12.123456Z 01O+ ERROR: connection to 10.0.0.12:5432 failed after 1.52s "
    "(request 123e4567-e89b-12d3-a456-426614174000, commit 3f2a9c1d) "
    "at /tmp/pytest-of-ci/pytest-12/test_db0/conftest.py:41:7 "
    "in /builds/Zx8aBcDe/0/acme/api job 901 tmpab12cd_x on [fe80::1ff:fe23:4567:890a]:8080 at 0x7f3a2b1c"
)
RUN_B = (
    "2024-03-02T23:59:01.000001Z 02E+ ERROR: connection to 10.1.7.3:6543 failed after 12.07s "
    "(request 9f8e7d6c-1234-4abc-9def-0123456789ab, commit 0b1c2d3e) "
    "at /tmp/pytest-of-ci/pytest-907/test_db1/conftest.py:44:9 "
    "in /builds/Qw3eRtYu/2/acme/api job 1234 tmpzz98yy_q on [2001:db8::8a2e:370:7334]:80 at 0x55d0c0ffee"
)


def test_normalise_error_masks_volatile_parts() -> None:
    assert normalise_error(RUN_A) == normalise_error(RUN_B)
    norm = normalise_error(RUN_A)
    for volatile in (
        "2024",
        "10.0.0.12",
        "5432",
        "1.52",
        "123e4567",
        "3f2a9c1d",
        "pytest-12",
        "Zx8aBcDe".lower(),
        "901",
        "tmpab12cd",
        "fe80",
        "0x7f",
    ):
        assert volatile not in norm, volatile
    assert "error: connection to" in norm
    assert "conftest.py" not in norm  # the temp path is masked as a whole
    assert normalise_error("Mon, 02 Jan 2006 15:04:05 +0000 took 2m 3s") == normalise_error(
        "Tue, 14 Feb 2023 01:02:03 +0000 took 45s"
    )
    assert normalise_error("src/app.ts:12:5 - error TS2322") == normalise_error("src/app.ts:130:17 - error TS2322")
    assert normalise_error("  std::vector   failed  ") == "std::vector failed"


def test_fingerprint_same_error_other_run() -> None:
    a = fingerprint("acme/api", "unit-tests", RUN_A)
    assert a == fingerprint("acme/api", "unit-tests", RUN_B)
    assert re.fullmatch(r"[0-9a-f]{32}", a)
    assert a == fingerprint("Acme/API ", "unit-tests", RUN_A)  # project path case/spacing does not matter


def test_fingerprint_differs_by_job_project_and_error() -> None:
    base = fingerprint("acme/api", "unit-tests", "ModuleNotFoundError: No module named 'requests'")
    others = {
        fingerprint("acme/web", "unit-tests", "ModuleNotFoundError: No module named 'requests'"),
        fingerprint("acme/api", "lint", "ModuleNotFoundError: No module named 'requests'"),
        fingerprint("acme/api", "unit-tests", "ModuleNotFoundError: No module named 'httpx'"),
        fingerprint("acme/api", "unit-tests", "npm ERR! code ERESOLVE"),
        fingerprint("acme/api", "unit-tests", ""),
    }
    assert base not in others
    assert len(others) == 5


def test_first_error_line() -> None:
    assert first_error_line(make_job()) == "E   AssertionError number 0"
    assert first_error_line(make_job(evidence=[{"line": 1, "text": "  "}, {"line": 2, "text": " boom "}])) == "boom"
    assert first_error_line(make_job(evidence=[], root_cause="\n  first line\nsecond")) == "first line"
    assert first_error_line({"evidence_lines": [{"line": 3, "text": "stored"}]}) == "stored"
    assert first_error_line({}) == ""


# ---- Slack -------------------------------------------------------------------------------------
def slack_texts(blocks: list[dict[str, Any]]) -> list[str]:
    out = []
    for b in blocks:
        if b["type"] in ("section", "header"):
            out.append(b["text"]["text"])
        elif b["type"] == "context":
            out += [e["text"] for e in b["elements"]]
    return out


def check_slack_limits(text: str, blocks: list[dict[str, Any]]) -> None:
    assert 0 < len(text) <= 4000
    assert len(blocks) <= 50
    header = [b for b in blocks if b["type"] == "header"]
    assert len(header) == 1
    assert len(header[0]["text"]["text"]) <= 150
    assert header[0]["text"]["type"] == "plain_text"
    for b in blocks:
        if b["type"] == "section":
            assert b["text"]["type"] == "mrkdwn"
            assert 0 < len(b["text"]["text"]) <= 3000
        if b["type"] == "context":
            assert len(b["elements"]) <= 10
            assert all(len(e["text"]) <= 3000 for e in b["elements"])
        if b["type"] == "actions":
            assert b["elements"]
            assert all(len(e["text"]["text"]) <= 75 for e in b["elements"])
            assert all(len(e["url"]) <= 3000 for e in b["elements"])
    assert sum(len(t) for t in slack_texts(blocks)) <= 12_000


def sections(blocks: list[dict[str, Any]]) -> list[str]:
    return [b["text"]["text"] for b in blocks if b["type"] == "section"]


def test_slack_one_job_has_everything() -> None:
    text, blocks = slack_message(PIPELINE, [make_job(retried_job_id="999", occurrences=3)])
    check_slack_limits(text, blocks)
    assert blocks[0]["text"]["text"] == "❌ acme/api · main · pipeline #345"
    context = blocks[1]["elements"][0]["text"]
    assert f"<{BASE}/-/pipelines/345|Pipeline #345>" in context
    assert "a1b2c3d4" in context
    assert "via e-mail" in context
    assert "3 failed of 120" in context
    [section] = sections(blocks)
    assert section.startswith(f"*<{BASE}/-/jobs/901|🔴 unit-tests-1>*")
    assert "stage `test`" in section
    assert "`test_failure`" in section
    assert "confidence 80%" in section
    assert "test_login fails" in section
    assert "5. step 5" in section
    assert "step 6" not in section
    assert "…and 2 more" in section
    assert "   120 | E   AssertionError number 0" in section
    assert "number 2" in section
    assert "number 3" not in section
    assert section.count("```") == 2
    assert "analysed by LLM (gpt-4o-mini)" in section
    assert f"retried automatically as job <{BASE}/-/jobs/999|#999>" in section
    assert "seen 3 times" in section
    assert blocks[-1]["elements"][0]["url"] == f"{BASE}/-/pipelines/345"
    assert "unit-tests-1" in text
    assert "pipeline #345" in text


def test_slack_sixty_jobs_with_huge_root_causes() -> None:
    jobs = [
        make_job(
            i,
            root_cause=("x" * 99 + " ") * 100,
            fix_steps=["y" * 2000] * 9,
            evidence=[{"line": n, "text": "z" * 5000} for n in range(9)],
        )
        for i in range(60)
    ]
    text, blocks = slack_message(PIPELINE, jobs)
    check_slack_limits(text, blocks)
    shown = sections(blocks)
    assert len(shown) == 10
    assert all(s.startswith(f"*<{BASE}/-/jobs/{900 + i}|") for i, s in enumerate(shown))
    assert all("…" in s for s in shown)  # cut, not dropped
    more = [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"] if e["text"].startswith("+")]
    assert more
    assert more[0].startswith("+50 more failed jobs")
    assert "60 failed jobs" in blocks[1]["elements"][0]["text"]


def test_slack_share_is_fair_and_passes_on_unused_room() -> None:
    jobs = [make_job(1), make_job(2, root_cause="r" * 20_000), make_job(3, root_cause="s" * 20_000)]
    _, blocks = slack_message(PIPELINE, jobs)
    small, big1, big2 = sections(blocks)
    assert "test_login fails" in small
    assert "5. step 5" in small
    assert abs(len(big1) - len(big2)) < 400
    assert len(big1) > 1000


def test_slack_escapes_hostile_text() -> None:
    job = make_job(
        job_name=HOSTILE,
        stage="te`st",
        category=HOSTILE,
        root_cause=HOSTILE,
        fix_steps=[HOSTILE],
        evidence=[{"line": 7, "text": HOSTILE}],
        analyser="heuristic_fallback",
        analyser_note=HOSTILE,
        model=HOSTILE,
    )
    pipeline = {**PIPELINE, "project_path": HOSTILE, "ref": HOSTILE, "sha": HOSTILE}
    text, blocks = slack_message(pipeline, [job])
    check_slack_limits(text, blocks)
    header, *mrkdwn = slack_texts(blocks)
    assert "<" not in header
    assert ">" not in header
    assert "@channel" not in header
    for t in [*mrkdwn, text]:
        for inner in re.findall(r"<([^>]*)>", t):  # every Slack markup is one of our own links
            assert inner.startswith(f"{BASE}/-/"), inner
        assert "@channel" not in t
        assert "@here" not in t
        assert "&lt;!channel&gt;" in t
        assert not re.search(r"&(?!amp;|lt;|gt;)", t)
    section = sections(blocks)[0]
    assert section.count("```") == 2  # the hostile fences cannot open or close a code block
    assert "&lt;https://evil.example|click me&gt;" in section
    assert "&lt;b&gt;bold&lt;/b&gt;" in section


def test_slack_unsafe_urls_are_not_linked() -> None:
    job = make_job(job_url="javascript:alert(1)")
    _, blocks = slack_message({**PIPELINE, "pipeline_url": "https://x.example/a b"}, [job])
    texts = slack_texts(blocks)
    assert texts
    assert [t for t in texts if "javascript" in t] == []
    assert [t for t in texts if "x.example" in t] == []
    assert not [b for b in blocks if b["type"] == "actions"]


@pytest.mark.parametrize(
    ("over", "marker"),
    [
        ({"analyser": "heuristic"}, "heuristic analysis (no LLM)"),
        ({"analyser": "heuristic_fallback", "analyser_note": "LLM timed out"}, "LLM timed out"),
        ({"analyser": "unavailable", "analyser_note": "no log"}, "analysis unavailable"),
        ({"skipped": True}, "log analysis skipped"),
        ({"is_transient": True, "category": "infrastructure"}, "likely transient"),
        ({"model": "sandbox"}, "analysed by LLM (sandbox)"),
        ({"occurrences": 4}, "seen 4 times"),
        ({"retried_job_id": "902"}, "retried automatically as job"),
    ],
)
def test_markers_in_both_outputs(over: dict[str, Any], marker: str) -> None:
    _, blocks = slack_message(PIPELINE, [make_job(**over)])
    assert marker in sections(blocks)[0]
    assert marker in html.unescape(telegram_message(PIPELINE, [make_job(**over)]))
    assert marker not in sections(slack_message(PIPELINE, [make_job()])[1])[0]


# ---- Telegram ----------------------------------------------------------------------------------
ALLOWED = {"b", "i", "a", "code", "pre"}


class TagChecker(HTMLParser):
    """Parses Telegram HTML: only allowed tags, properly nested; collects links and decoded text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in ALLOWED, tag
        assert not self.stack or tag != "pre", "pre nested"
        if tag == "a":
            assert [k for k, _ in attrs] == ["href"]
            self.links.append(attrs[0][1] or "")
        else:
            assert attrs == []
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack, f"unbalanced </{tag}>"
        assert self.stack.pop() == tag, f"unbalanced </{tag}>"

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check_telegram(message: str) -> TagChecker:
    assert 0 < len(message) < 4096
    assert visible_length(message) < 4096
    stripped = re.sub(r'</?(?:b|i|code|pre)>|<a href="[^"<>]*">|</a>', "", message)
    assert "<" not in stripped
    assert ">" not in stripped  # every angle bracket belongs to one of our tags
    assert not re.search(r"&(?!amp;|lt;|gt;|quot;)", message)
    checker = TagChecker()
    checker.feed(message)
    checker.close()
    assert checker.stack == []
    return checker


def test_telegram_one_job() -> None:
    message = telegram_message(PIPELINE, [make_job(retried_job_id="902", occurrences=2)])
    parsed = check_telegram(message)
    assert parsed.links == [f"{BASE}/-/pipelines/345", f"{BASE}/-/jobs/901", f"{BASE}/-/jobs/902"]
    text = "".join(parsed.text)
    for part in (
        "acme/api",
        "main",
        "pipeline #345",
        "a1b2c3d4",
        "via e-mail",
        "3 failed of 120",
        "unit-tests-1",
        "stage test",
        "test_failure",
        "confidence 80%",
        "test_login fails",
        "5. step 5",
        "…and 2 more",
        "   122 | E   AssertionError number 2",
        "analysed by LLM (gpt-4o-mini)",
        "retried automatically as job #902",
        "seen 2 times",
    ):
        assert part in text, part
    assert "step 6" not in text
    assert "number 3" not in text


@pytest.mark.parametrize("filler", ["x", "&", "<"])
def test_telegram_sixty_jobs_stays_under_the_limit(filler: str) -> None:
    jobs = [
        make_job(
            i,
            root_cause=filler * 10_000,
            fix_steps=[filler * 3000] * 9,
            evidence=[{"line": n, "text": filler * 5000} for n in range(9)],
            analyser_note=filler * 2000,
        )
        for i in range(60)
    ]
    message = telegram_message(PIPELINE, jobs)
    parsed = check_telegram(message)
    text = "".join(parsed.text)
    assert parsed.links[0] == f"{BASE}/-/pipelines/345"
    assert [f"{BASE}/-/jobs/{900 + i}" for i in range(10)] == parsed.links[1:11]
    assert "+50 more failed jobs" in text
    assert "60 failed jobs" in text
    assert len(message) > 3000  # the room is used, not wasted


def test_telegram_fair_share() -> None:
    jobs = [make_job(1), make_job(2, root_cause="r" * 20_000), make_job(3, root_cause="s" * 20_000)]
    text = "".join(check_telegram(telegram_message(PIPELINE, jobs)).text)
    assert "test_login fails" in text
    assert "5. step 5" in text  # the short job is whole
    assert text.count("r") > 400
    assert abs(text.count("r") - text.count("s")) < 300


def test_telegram_escapes_hostile_text() -> None:
    job = make_job(
        job_name=HOSTILE,
        stage=HOSTILE,
        category=HOSTILE,
        root_cause=HOSTILE,
        fix_steps=[HOSTILE],
        evidence=[{"line": "<7>", "text": HOSTILE}],
        analyser="unavailable",
        analyser_note=HOSTILE,
        model=HOSTILE,
        retried_job_id="<b>",
        job_url=f'{BASE}/-/jobs/901"><b>x',
    )
    pipeline = {**PIPELINE, "project_path": HOSTILE, "ref": HOSTILE, "sha": HOSTILE, "source": HOSTILE}
    message = telegram_message(pipeline, [job])
    parsed = check_telegram(message)
    assert parsed.links == [f"{BASE}/-/pipelines/345"]  # the broken job URL is not linked
    text = "".join(parsed.text)
    assert "<https://evil.example|click me>" in text
    assert "<b>bold</b>" in text
    assert "```rm -rf```" in text
    assert "@channel" not in text
    assert "@\u2060channel" in text


def test_telegram_unsafe_urls_and_missing_fields() -> None:
    sparse = {"job_id": "5", "job_name": None, "evidence": None, "fix_steps": "not a list", "confidence": "high"}
    message = telegram_message({"project_id": "12", "pipeline_url": "javascript:alert(1)"}, [sparse])
    parsed = check_telegram(message)
    assert parsed.links == []
    assert "job 5" in "".join(parsed.text)
    assert "project 12" in "".join(parsed.text)
    text, blocks = slack_message({}, [])
    check_slack_limits(text, blocks)
    assert "No job details" in sections(blocks)[0]


# ---- short texts -------------------------------------------------------------------------------
def test_repeat_texts() -> None:
    jobs = [make_job(i, occurrences=3) for i in range(7)]
    slack = slack_repeat_text(PIPELINE, jobs, 3)
    assert "seen again (3 times now)" in slack
    assert f"<{BASE}/-/pipelines/345|pipeline #345>" in slack
    assert f"<{BASE}/-/jobs/904|unit-tests-4>" in slack
    assert "unit-tests-5" not in slack
    assert "+2 more" in slack
    tg = telegram_repeat_text(PIPELINE, jobs[:1], 2)
    parsed = check_telegram(tg)
    assert parsed.links == [f"{BASE}/-/pipelines/345", f"{BASE}/-/jobs/900"]
    assert "seen again (twice now)" in tg
    hostile = [make_job(job_name=HOSTILE)]
    assert "<!channel>" not in slack_repeat_text({**PIPELINE, "ref": HOSTILE}, hostile, 2)
    check_telegram(telegram_repeat_text({**PIPELINE, "ref": HOSTILE, "project_path": HOSTILE}, hostile, 2))


def test_needs_attention_text() -> None:
    slack, tg = needs_attention_text(
        "unparseable", "ci@gitlab.example.com", "Pipeline #345 failed", "<abc.123@mail>", "INBOX/needs-attention"
    )
    assert "moved to folder `INBOX/needs-attention`" in slack
    assert "`&lt;abc.123@mail&gt;`" in slack
    assert "ci@gitlab.example.com" in slack
    parsed = check_telegram(tg)
    assert "INBOX/needs-attention" in "".join(parsed.text)
    assert "<abc.123@mail>" in "".join(parsed.text)
    slack, tg = needs_attention_text("no_pipeline", None, HOSTILE, HOSTILE, "x`y")
    assert "<!channel>" not in slack
    assert "<https://evil" not in slack
    assert "x`y" not in slack
    assert "unknown sender" in slack
    check_telegram(tg)


# ---- needs attention: the classifier's reason, redacted, escaped, bounded ------------------------
GLPAT = "glpat-Zq7Xw2Rk9Vb4Tn6Lp3Hs"  # a GitLab personal access token's shape (not a real one)
SPOOFED = "X-GitLab-Pipeline-Id is 1500000001 but the body shows no pipeline"


def slack_outside_code(text: str) -> str:
    """Slack mrkdwn with its inline code spans removed: what Slack would format."""
    return re.sub(r"`[^`\n]*`", "", text)


def test_needs_attention_names_the_classifiers_reason() -> None:
    slack, tg = needs_attention_text(
        "spoofed", "gitlab@gitlab.example.com", "Pipeline #345 failed", "<m-1@mail>", "needs-attention", SPOOFED
    )
    assert f"\nReason: `{SPOOFED}`\n" in slack
    assert "(`spoofed`)" in slack
    assert "From: `gitlab@gitlab.example.com` · Subject: `Pipeline #345 failed`" in slack
    assert f"\nReason: {SPOOFED}\n" in tg
    assert SPOOFED in "".join(check_telegram(tg).text)
    # no reason known (an old row): no Reason line, the rest as before
    slack, tg = needs_attention_text("unparseable", None, None, "<m-2@mail>", "needs-attention")
    assert "Reason" not in slack
    assert "Reason" not in tg
    assert "From: `unknown sender` · Subject: `(no subject)`" in slack


def test_needs_attention_reason_is_escaped_for_each_channel() -> None:
    slack, _ = needs_attention_text("unknown_sender", "a*b_c@x.example", "*Urgent* _now_", "<m@x>", "f")
    assert "`*Urgent* _now_`" in slack  # subject and sender are untrusted too: in code, not formatted
    assert "`a*b_c@x.example`" in slack
    reason = "sender '<!channel>' & <@U1> *bold* _italic_ ~strike~ `code` <https://evil.example|click>"
    slack, tg = needs_attention_text("unknown_sender", "a*b_c@x.example", "*Urgent* _now_", "<m@x>", "f", reason)
    (line,) = [x for x in slack.splitlines() if x.startswith("Reason: ")]
    assert line == (  # in inline code, where mrkdwn formats nothing; the @ mention broken by a word joiner
        "Reason: `sender '&lt;!channel&gt;' &amp; &lt;@\u2060U1&gt; *bold* _italic_ ~strike~ \u02cbcode\u02cb "
        "&lt;https://evil.example|click&gt;`"
    )
    outside = slack_outside_code(slack)
    for marker in ("*bold*", "_italic_", "~strike~", "*Urgent*", "_now_", "a*b_c", "<!channel>", "<@U1>", "<https"):
        assert marker not in outside, marker
    assert not re.search(r"&(?!amp;|lt;|gt;)", slack)
    assert slack.count("`") % 2 == 0
    parsed = check_telegram(tg)
    shown = "".join(parsed.text)
    assert "sender '<!channel>' & <@\u2060U1> *bold* _italic_ ~strike~ `code` <https://evil.example|click>" in shown
    assert "*Urgent* _now_" in shown
    assert parsed.links == []


def test_needs_attention_redacts_secrets_even_where_a_field_is_cut() -> None:
    slack, tg = needs_attention_text(
        "not_gitlab", "https://deploy:hunter2secretpw@gitlab.example.com", f"Failed token={GLPAT}", "<m@x>", "f"
    )
    for text in (slack, tg):
        assert GLPAT[6:14] not in text
        assert "hunter2secretpw" not in text
        assert "token=[REDACTED:" in text
    # the subject is cut right inside the token: what is left of it must not be shown either
    slack, tg = needs_attention_text("not_gitlab", None, "x" * 290 + " " + GLPAT, "<m@x>", "f")
    for text in (slack, tg):
        assert "glpat-" not in text
        assert GLPAT[6:10] not in text
        assert "x" * 290 in text
    slack, tg = needs_attention_text("spoofed", None, None, "<m@x>", "f", f"no pipeline; Authorization: Bearer {GLPAT}")
    for text in (slack, tg):
        assert GLPAT[6:14] not in text
        assert "Authorization: Bearer [REDACTED:" in text


@pytest.mark.parametrize("filler", ["&", "<", "x", "*"])
def test_needs_attention_is_bounded(filler: str) -> None:
    huge = filler * 50_000
    slack, tg = needs_attention_text(huge, huge, huge, huge, huge)
    assert len(slack) <= ATTENTION_LIMIT
    assert len(tg) <= ATTENTION_LIMIT
    slack, tg = needs_attention_text(huge, huge, huge, huge, huge, huge)
    assert len(slack) <= ATTENTION_LIMIT
    assert len(tg) <= ATTENTION_LIMIT
    assert not re.search(r"&(?!amp;|lt;|gt;)", slack)  # no entity cut in half
    check_telegram(tg)
    (line,) = [x for x in slack.splitlines() if x.startswith("Reason: ")]
    assert line.endswith("…`")
    assert 300 <= len(line) <= 620
    assert slack.count("…") == 6  # every field was cut, and says so


# ---- what the messages claim -------------------------------------------------------------------
@pytest.mark.parametrize("category", ["compile_error", "test_failure", "lint", "configuration"])
def test_a_category_a_retry_cannot_fix_is_never_called_transient(category: str) -> None:
    job = make_job(category=category, is_transient=True)
    for text in (sections(slack_message(PIPELINE, [job])[1])[0], html.unescape(telegram_message(PIPELINE, [job]))):
        assert f"{category}" in text
        assert "transient" not in text


@pytest.mark.parametrize(
    ("over", "says", "never"),
    [
        ({"analyser": "llm", "model": "gpt-4o-mini"}, "analysed by LLM (gpt-4o-mini)", "sandbox"),
        ({"analyser": "llm", "model": "sandbox"}, "analysed by LLM (sandbox)", "gpt-4o-mini"),
        ({"analyser": "heuristic", "model": None}, "heuristic analysis (no LLM)", "analysed by LLM"),
    ],
)
def test_the_analyser_named_is_what_wrote_the_text(over: dict[str, Any], says: str, never: str) -> None:
    job = make_job(**over)
    for text in (sections(slack_message(PIPELINE, [job])[1])[0], html.unescape(telegram_message(PIPELINE, [job]))):
        assert says in text
        assert never not in text


# ---- the run note ------------------------------------------------------------------------------
def test_run_note_names_pipelines_categories_and_messages_sent() -> None:
    pipelines = [
        {"project_path": "acme/api", "pipeline_id": "345", "categories": ["test_failure", "test_failure"]},
        {"project_path": "acme/edge", "pipeline_id": "346", "categories": ["compile_error"]},
    ]
    note = run_note(pipelines, {"slack": 2, "telegram": 2}, skipped=1, attention=1)
    assert note == (
        "2 pipelines analysed (acme/api #345, acme/edge #346), 3 failed jobs: test_failure 2, compile_error 1; "
        "messages sent: Slack 2, Telegram 2; 1 pipeline skipped (analysed before or by another run); "
        "1 e-mail needs attention"
    )
    assert "\n" not in note


def test_run_note_of_an_idle_run_with_notifications_off_and_a_failure() -> None:
    assert run_note([], {"slack": 0, "telegram": 0}) == "no new failed pipeline; messages sent: none"
    one = [{"project_path": "acme/api", "pipeline_id": "9", "categories": ["unknown"]}]
    assert (
        run_note(one, {}, enabled=False)
        == "1 pipeline analysed (acme/api #9), 1 failed job: unknown 1; notifications off"
    )
    failed = run_note(one, {"telegram": 1}, errors=["event 3: Slack: HTTP 500 " + "x" * 400])
    assert failed.startswith("1 pipeline analysed (acme/api #9), 1 failed job: unknown 1; messages sent: Telegram 1; ")
    assert "FAILED: event 3: Slack: HTTP 500" in failed
    assert len(failed) < 400
    many = [{"project_path": f"g/p{i}", "pipeline_id": str(i), "categories": ["lint"]} for i in range(5)]
    assert run_note(many, {"slack": 5}).startswith("5 pipelines analysed (g/p0 #0, g/p1 #1, g/p2 #2 +2 more), 5 failed")


def test_a_pipeline_without_test_results_does_not_say_0_failed_of_0() -> None:
    quiet = {**PIPELINE, "test_summary": {"total": 0, "failed": 0}}
    _, blocks = slack_message(quiet, [make_job()])
    assert "tests:" not in blocks[1]["elements"][0]["text"]
    assert "tests:" not in telegram_message(quiet, [make_job()])
    assert "tests: 0 failed of 12" in telegram_message({**PIPELINE, "test_summary": {"total": 12, "failed": 0}}, [])
