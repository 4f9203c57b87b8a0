"""post_slack_once / SlackNotifier against the sandbox Slack Web API (real slack_sdk and the provider's SlackHook)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from airflow.sdk import BaseNotifier
from slack_sdk.errors import SlackApiError

from devops_automation.notifiers.slack import SlackNotifier, post_slack_once, send_slack_notification
from devops_automation.store import ResultsStore

CHANNEL = "C0CIFAIL"  # the slack_default connection's extra "channel" (tests/conftest.py)


def posted(sandbox, channel: str = CHANNEL) -> list[dict]:
    return sandbox.control("slack", "GET", "/messages", params={"channel": channel})


def api_calls(sandbox, method: str) -> list[dict]:
    return [r for r in sandbox.requests(system="slack") if r["path"].endswith("/" + method)]


def test_a_message_is_posted_to_the_connection_channel(sandbox, sandbox_conns) -> None:
    ts = post_slack_once("*build* failed", dedup_key=None)
    (msg,) = posted(sandbox)
    assert msg["text"] == "*build* failed"
    assert msg["ts"] == ts
    assert ts
    call = api_calls(sandbox, "chat.postMessage")[-1]
    assert call["headers"]["authorization"] == "Bearer xoxb-sandbox-token"
    assert "xoxb-sandbox-token" not in call["body"]  # the token only in the header


def test_channel_blocks_and_thread(sandbox, sandbox_conns) -> None:
    parent = post_slack_once("parent", dedup_key=None, channel="C0REPORTS")
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*bold* block"}}]
    reply = post_slack_once("reply", dedup_key=None, channel="C0REPORTS", blocks=blocks, thread_ts=parent)
    assert posted(sandbox) == []  # not the connection's channel
    msgs = posted(sandbox, "C0REPORTS")
    assert [m["text"] for m in msgs] == ["parent", "reply"]
    assert msgs[1]["blocks"] == blocks
    assert msgs[1]["thread_ts"] == parent
    assert msgs[1]["ts"] == reply
    assert reply != parent
    body = json.loads(api_calls(sandbox, "chat.postMessage")[-1]["body"])
    assert (body["channel"], body["text"], body["thread_ts"], body["blocks"]) == ("C0REPORTS", "reply", parent, blocks)
    assert body["unfurl_links"] is False


def test_no_channel_anywhere_is_a_clear_error(sandbox, sandbox_conns, monkeypatch) -> None:
    conn = json.loads(sandbox_conns["AIRFLOW_CONN_SLACK_DEFAULT"])
    conn["extra"].pop("channel")
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", json.dumps(conn))
    with pytest.raises(ValueError, match=r"no Slack channel.*'slack_default'"):
        post_slack_once("hello", dedup_key="k-0")
    assert api_calls(sandbox, "chat.postMessage") == []
    assert ResultsStore.from_connection().pending_notifications() == []  # nothing claimed


def test_post_once_never_posts_the_same_key_twice(sandbox, sandbox_conns) -> None:
    first = post_slack_once("first", dedup_key="k-1")
    assert first
    assert post_slack_once("first again", dedup_key="k-1") is None
    assert [m["text"] for m in posted(sandbox)] == ["first"]
    assert len(api_calls(sandbox, "chat.postMessage")) == 1


def test_rate_limit_retry_after_is_honoured(sandbox, sandbox_conns) -> None:
    sandbox.fault(system="slack", path="/chat.postMessage", status=429, retry_after=1, times=1)
    t0 = time.monotonic()
    assert post_slack_once("after a 429", dedup_key="k-429")
    assert time.monotonic() - t0 >= 1.0
    assert len(api_calls(sandbox, "chat.postMessage")) == 2
    assert [m["text"] for m in posted(sandbox)] == ["after a 429"]


def test_a_failed_post_is_recorded_and_posted_later(sandbox, sandbox_conns) -> None:
    sandbox.fault(system="slack", path="/chat.postMessage", status=500, times=1000)
    with pytest.raises(SlackApiError):
        post_slack_once("will fail", dedup_key="k-2")
    (pending,) = ResultsStore.from_connection().pending_notifications("slack")
    assert (pending["dedup_key"], pending["status"], pending["target"]) == ("k-2", "failed", CHANNEL)
    assert pending["error"]
    assert posted(sandbox) == []
    sandbox.clear_faults()
    assert post_slack_once("will fail", dedup_key="k-2")
    assert [m["text"] for m in posted(sandbox)] == ["will fail"]
    assert ResultsStore.from_connection().pending_notifications() == []


def test_notifier_is_a_base_notifier_with_templated_fields() -> None:
    notifier = SlackNotifier(text="x")
    assert isinstance(notifier, BaseNotifier)
    assert send_slack_notification is SlackNotifier
    assert set(SlackNotifier.template_fields) == {"text", "channel", "slack_conn_id", "dedup_key", "blocks"}
    assert (notifier.channel, notifier.slack_conn_id, notifier.dedup_key, notifier.results_conn_id) == (
        None,
        "slack_default",
        None,
        "devops_results_db",
    )


def test_notifier_renders_its_template_and_dedups(sandbox, sandbox_conns) -> None:
    notifier = SlackNotifier(
        text="*{{ dag_id }}* failed in {{ run_id }}",
        dedup_key="{{ run_id }}:failed",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "run {{ run_id }}"}}],
    )
    context = {"dag_id": "demo_dag", "run_id": "manual__1"}
    notifier(context)
    notifier(context)  # a second callback for the same run: no second message
    (msg,) = posted(sandbox)
    assert msg["text"] == "*demo_dag* failed in manual__1"
    assert msg["blocks"][0]["text"]["text"] == "run manual__1"
    (row,) = [n for n in _notifications() if n["dedup_key"] == "manual__1:failed"]
    assert (row["channel"], row["target"], row["status"], row["message_ref"]) == ("slack", CHANNEL, "sent", msg["ts"])


def test_notifier_without_a_key_posts_every_time(sandbox, sandbox_conns) -> None:
    notifier = SlackNotifier(text="tick {{ run_id }}", channel="C0REPORTS")
    notifier({"run_id": "r1"})
    notifier({"run_id": "r1"})
    assert [m["text"] for m in posted(sandbox, "C0REPORTS")] == ["tick r1", "tick r1"]


def test_notifier_awaited_in_the_triggerer(sandbox, sandbox_conns) -> None:
    async def fire() -> None:
        await SlackNotifier(text="async {{ run_id }}", dedup_key="async-{{ run_id }}", context={"run_id": "r2"})

    asyncio.run(fire())
    asyncio.run(fire())
    assert [m["text"] for m in posted(sandbox)] == ["async r2"]


def _notifications() -> list[dict]:
    import sqlalchemy as sa

    from devops_automation.store import schema

    with ResultsStore.from_connection().engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(schema.notifications))]
