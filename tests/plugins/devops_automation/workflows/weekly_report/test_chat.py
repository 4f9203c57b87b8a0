"""The summary as chat messages: Slack Block Kit (limits checked with the sandbox Slack's validator) and
Telegram HTML split on line boundaries below 4,096 visible characters."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devops_automation.messaging import TELEGRAM_TEXT_LIMIT, visible_length
from devops_automation.workflows.weekly_report import chat
from devops_automation.workflows.weekly_report import render as rr
from include.sandbox.systems.slack import block_problems
from include.sandbox.systems.telegram import parse_text

HERE = Path(__file__).parent
REPO = HERE.parents[4]
TEMPLATES = REPO / "include" / "templates" / "weekly_report"


@pytest.fixture(scope="module")
def summary() -> dict[str, Any]:
    figures = json.loads((HERE / "golden" / "figures.json").read_text(encoding="utf-8"))
    return rr.render_report(figures, templates_dir=TEMPLATES).summary


def figure(i: int, label: str, tone: str = "neutral") -> dict[str, Any]:
    return {
        "section": "ci_runs",
        "figure": f"f{i}",
        "label": label,
        "value_text": f"{i}",
        "change_text": "▲ +1",
        "tone": tone,
        "text": f"{label}: {i} (▲ +1)",
    }


def long_summary(n: int = 120) -> dict[str, Any]:
    """A summary whose Telegram text is several times 4,096 characters, with markup in its values."""
    return {
        "title": "Weekly engineering report 2026-W47 <team & co>",
        "period": {"kind": "week", "label": "2026-W47", "start": "2026-11-16T00:00", "end": "2026-11-23T00:00"},
        "has_data": True,
        "headlines": [figure(i, f"Figure {i:03d} <a&b> " + "x" * (i % 70), "good") for i in range(n)],
        "movers": [figure(i, f"Mover {i} & more", "bad") for i in range(5)],
        "project_movers": [
            {"project": f"group/<p{i}>", "score": 80.0, "previous": 70.0, "change": 10.0} for i in (1, 2)
        ],
        "omitted": [{"section": "dora", "title": "DORA four keys", "why": "no deployment <prod>"}],
    }


# ---- Slack --------------------------------------------------------------------------------------------


def test_golden_summary_blocks(summary: dict[str, Any]) -> None:
    blocks = chat.report_blocks(summary)
    assert block_problems(blocks) == []
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Weekly engineering report 2026-W47", "emoji": True},
    }
    assert blocks[1]["elements"][0]["text"] == "2026-W47: 16 Nov 2026 – 23 Nov 2026 (end exclusive, UTC)"
    sections = [b for b in blocks if b.get("block_id", "").startswith("headline-")]
    assert [b["text"]["text"] for b in sections] == [
        "*Runs*\n3 (▲ +1)",
        "*Success rate*\n66.7% (▲ +16.7 pp, better)",
        "*Run duration p50*\n6 min 40 s (▲ +4 min 10 s, worse)",
        "*MTTR on default branches*\n5 d (–)",
        "*Flaky rate*\n25.0% (▲ +25.0 pp, worse)",
        "*Analysed failures*\n4 (▲ +3, worse)",
        "*PRs merged*\n5 (▲ +4, better)",
        "*Mean health score*\n70.0 (▲ +2.5, better)",
        "*Alerts fired*\n1 (= 0)",
    ]
    assert sections[1]["block_id"] == "headline-ci_runs-success_rate"
    by_id = {b.get("block_id"): b for b in blocks}
    assert by_id["movers"]["text"]["text"].splitlines() == [
        "*Biggest movers*",
        "• PRs merged: 5 (▲ +4, better)",
        "• Analysed failures: 4 (▲ +3, worse)",
        "• Run duration p50: 6 min 40 s (▲ +4 min 10 s, worse)",
        "• Run duration p90: 8 min (▲ +4 min 50 s, worse)",
        "• Run queue time p90: 47 s (▲ +28 s, worse)",
    ]
    assert by_id["project-movers"]["text"]["text"].splitlines() == [
        "*Health score movers*",
        "• `api` 80.0 (▲ +10.0 from 70.0)",
        "• `web` 60.0 (▼ −5.0 from 65.0)",
    ]
    assert blocks[-1] == {
        "type": "context",
        "elements": [
            {
                "type": "mrkdwn",
                "text": "Not in this report: DORA four keys (no deployment to a production environment in the period).",
            }
        ],
    }
    assert [b["type"] for b in blocks].count("divider") == 1
    assert chat.slack_fallback_text(summary).splitlines()[:3] == [
        "Weekly engineering report 2026-W47",
        "• Runs: 3 (▲ +1)",
        "• Success rate: 66.7% (▲ +16.7 pp, better)",
    ]


def test_blocks_stay_within_block_kit_limits() -> None:
    big = long_summary(120)
    big["title"] = "T" * 400
    big["movers"] = [figure(i, "M" * 200) for i in range(40)]  # ~8,000 characters of movers
    blocks = chat.report_blocks(big)
    assert len(blocks) == chat.SLACK_MAX_BLOCKS
    assert block_problems(blocks) == []
    assert blocks[0]["text"]["text"] == "T" * 149 + "…"
    movers = next(b for b in blocks if b.get("block_id") == "movers")["text"]["text"]
    assert len(movers) <= 3000 and movers.endswith("\n…")
    assert movers.count("\n• ") == 13  # whole lines only: 13 of the 40 movers fit
    more = next(b for b in blocks if b.get("block_id") == "headlines-more")
    shown = [b for b in blocks if b.get("block_id", "").startswith("headline-")]
    # the last section lists the headlines that did not get their own, as far as 3,000 characters go
    first_rest = big["headlines"][len(shown)]
    assert more["text"]["text"].startswith(f"• {chat._mrkdwn(first_rest['text'])}\n")
    assert len(more["text"]["text"]) <= 3000
    assert len(chat.slack_fallback_text(big)) <= 3000
    assert chat.report_blocks(big, max_blocks=10)[-1]["type"] == "context"
    assert len(chat.report_blocks(big, max_blocks=10)) == 10


def test_slack_text_is_escaped() -> None:
    s = long_summary(1)
    blocks = chat.report_blocks(s)
    headline = next(b for b in blocks if b.get("block_id") == "headline-ci_runs-f0")
    assert headline["text"]["text"] == "*Figure 000 &lt;a&amp;b&gt; *\n0 (▲ +1, better)"
    projects = next(b for b in blocks if b.get("block_id") == "project-movers")["text"]["text"]
    assert "• `group/&lt;p1&gt;` 80.0 (▲ +10.0 from 70.0)" in projects
    assert blocks[-1]["elements"][0]["text"] == "Not in this report: DORA four keys (no deployment &lt;prod&gt;)."


def test_no_data_summary() -> None:
    s = {
        "title": "Weekly engineering report 2026-W48",
        "period": {"kind": "week", "label": "2026-W48", "start": "2026-11-23T00:00", "end": "2026-11-30T00:00"},
        "has_data": False,
        "headlines": [],
        "movers": [],
        "project_movers": [],
        "omitted": [{"section": "ci_runs", "title": "CI runs and success rate", "why": "no runs"}],
    }
    blocks = chat.report_blocks(s)
    assert block_problems(blocks) == []
    assert [b["type"] for b in blocks] == ["header", "context", "section", "context"]
    assert blocks[2]["text"]["text"] == "*No data for this period.*"
    lines = [
        "<b>Weekly engineering report 2026-W48</b>",
        "2026-W48: 23 Nov 2026 – 30 Nov 2026 (end exclusive, UTC)",
        "",
        "<b>No data for this period.</b>",
        "",
        "<i>Not in this report:</i>",
        "• CI runs and success rate (no runs)",
    ]
    assert chat.telegram_text(s) == ["\n".join(lines)]


@pytest.mark.parametrize("bad", [7, 51, True, "50"])
def test_max_blocks_is_checked(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"max_blocks must be a whole number from 8 to 50"):
        chat.report_blocks(long_summary(1), max_blocks=bad)


# ---- Telegram -----------------------------------------------------------------------------------------


def test_golden_summary_telegram(summary: dict[str, Any]) -> None:
    (text,) = chat.telegram_text(summary)
    lines = text.splitlines()
    assert lines[:5] == [
        "<b>Weekly engineering report 2026-W47</b>",
        "2026-W47: 16 Nov 2026 – 23 Nov 2026 (end exclusive, UTC)",
        "",
        "<b>Headlines</b>",
        "• Runs: 3 (▲ +1)",
    ]
    assert "• <code>web</code> 60.0 (▼ −5.0 from 65.0)" in lines
    assert lines[-1] == "• DORA four keys (no deployment to a production environment in the period)"
    assert parse_text(text, "HTML").text.startswith("Weekly engineering report 2026-W47\n")  # Telegram parses it


def test_long_summary_is_split_on_lines_just_below_4096() -> None:
    s = long_summary(120)
    chunks = chat.telegram_text(s)
    assert len(chunks) >= 3
    for i, chunk in enumerate(chunks):
        size = visible_length(chunk)
        assert 0 < size <= TELEGRAM_TEXT_LIMIT, i
        assert len(parse_text(chunk, "HTML").text) == size  # balanced HTML; Telegram counts the same
        if i + 1 < len(chunks):  # full: the next chunk's first line would not have fitted
            assert size + 1 + visible_length(chunks[i + 1].split("\n")[0]) > TELEGRAM_TEXT_LIMIT, i
    # nothing lost, nothing cut: every line whole and in order (blank lines at a cut dropped)
    whole = [line for line in "\n".join(chunks).split("\n") if line]
    expected_headlines = [f"• {chat.escape_html(h['label'])}: {h['value_text']} (▲ +1, better)" for h in s["headlines"]]
    assert [line for line in whole if line.startswith("• Figure")] == expected_headlines
    assert "• Figure 005 &lt;a&amp;b&gt; xxxxx: 5 (▲ +1, better)" in whole
    assert whole[0] == "<b>Weekly engineering report 2026-W47 &lt;team &amp; co&gt;</b>"
    assert whole[-1] == "• DORA four keys (no deployment &lt;prod&gt;)"


def test_telegram_caption() -> None:
    s = long_summary(1)
    assert chat.telegram_caption(s, "Success rate <8 weeks>") == (
        "<b>Weekly engineering report 2026-W47 &lt;team &amp; co&gt;</b>\nSuccess rate &lt;8 weeks&gt;"
    )
    s2 = copy.deepcopy(s)
    s2["title"] = "y" * 2000
    assert visible_length(chat.telegram_caption(s2)) <= 1024


def test_module_imports_no_airflow() -> None:
    code = (
        "import sys; import devops_automation.workflows.weekly_report.chat; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('airflow', 'slack_sdk', 'telegram')))"
    )
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'plugins'}"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    source = (REPO / "plugins/devops_automation/workflows/weekly_report/chat.py").read_text()
    assert "import airflow" not in source and "from airflow" not in source
