"""ci_failure_triage's notify step reports an e-mail that needs attention with the classifier's reason:
from this run's sweep (XCom) and, for a report owed by an earlier run, from ``intake_messages``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from devops_automation.store import ResultsStore
from devops_automation.workflows.ci_failure_triage import store as triage
from devops_automation.workflows.ci_failure_triage.operators.notify import TriageNotifyOperator

T0 = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC)
GLPAT = "glpat-Zq7Xw2Rk9Vb4Tn6Lp3Hs"  # a GitLab personal access token's shape (not a real one)
REASON = "sender 'gitlab@evil.test' is not on the allowed-senders list"


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[tuple[str, str]]]:
    """What ``_attention`` hands to each channel's sender: (text, dedup key)."""
    out: dict[str, list[tuple[str, str]]] = {"slack": [], "telegram": []}

    def slack(text: str, *, dedup_key: str, **_: Any) -> str:
        out["slack"].append((text, dedup_key))
        return "1.0"

    def telegram(text: str, *, dedup_key: str, **_: Any) -> list[int]:
        out["telegram"].append((text, dedup_key))
        return [1]

    monkeypatch.setattr("devops_automation.notifiers.slack.post_slack_once", slack)
    monkeypatch.setattr("devops_automation.notifiers.telegram.send_telegram_once", telegram)
    return out


def notify_op(store: ResultsStore | None = None) -> TriageNotifyOperator:
    op = TriageNotifyOperator(task_id="notify", collected={})
    op.channels = ["slack", "telegram"]
    op.sent = {"slack": 0, "telegram": 0}
    if store is not None:
        op.__dict__["store"] = store  # the cached property, without a connection
    return op


def test_this_runs_attention_item_is_reported_with_its_reason(sent) -> None:
    item = {
        "message_id": "<m-1@evil.test>",
        "kind": "unknown_sender",
        "reason": REASON,
        "sender": "gitlab@evil.test",
        "subject": "acme/api | Failed pipeline for main | 1a2b3c4d",
        "folder": "needs-attention",
    }
    op = notify_op()
    op._attention(item)
    ((slack, _),) = sent["slack"]
    ((telegram, _),) = sent["telegram"]
    assert f"\nReason: `{REASON}`\n" in slack
    assert f"\nReason: {REASON}\n" in telegram
    assert "(<code>unknown_sender</code>)" in telegram
    assert op.sent == {"slack": 1, "telegram": 1}


def test_a_report_owed_by_an_earlier_run_has_its_reason_and_no_secret(sent, results_store: ResultsStore) -> None:
    triage.record_intake(
        results_store,
        {
            "source": "email",
            "message_id": "<m-2@gitlab.example.test>",
            "status": "needs_attention",
            "reason": "spoofed: X-GitLab-Pipeline-Id is 1500000001 but the body shows no pipeline",
            "sender": "gitlab@gitlab.example.test",
            "subject": f"Failed pipeline token={GLPAT}",
            "folder": "attention-x",
        },
        now=T0,
    )
    op = notify_op(results_store)
    (item,) = op._attention_items({})
    op._attention(item)
    ((slack, _),) = sent["slack"]
    ((telegram, _),) = sent["telegram"]
    assert "(`spoofed`)" in slack
    assert "\nReason: `X-GitLab-Pipeline-Id is 1500000001 but the body shows no pipeline`\n" in slack
    assert "\nReason: X-GitLab-Pipeline-Id is 1500000001 but the body shows no pipeline\n" in telegram
    assert "folder `attention-x`" in slack
    for text in (slack, telegram):
        assert GLPAT[6:14] not in text
        assert "token=[REDACTED:" in text
