"""Delivering a report to chat against the sandbox: the summary as Slack blocks with the charts and the HTML
uploaded in its thread (upload v2 through the provider's SlackHook client), the Telegram summary text, a
photo and a document; each at most once per dedup key, a failure recorded and sent by a later call."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError

from devops_automation.hooks.telegram import TelegramSendError
from devops_automation.messaging import TELEGRAM_TEXT_LIMIT
from devops_automation.notifiers import sent_message_ref
from devops_automation.notifiers.slack import post_slack_once, upload_slack_files_once
from devops_automation.notifiers.telegram import (
    send_telegram_document_once,
    send_telegram_once,
    send_telegram_photo_once,
)
from devops_automation.store import ResultsStore
from devops_automation.workflows.weekly_report import charts, chat
from tests.conftest import TELEGRAM_CHAT

REPORTS = "C0REPORTS"
HTML = b"<!DOCTYPE html><html><body><table width='700'><tr><td>Weekly report</td></tr></table></body></html>"

SUMMARY: dict[str, Any] = {
    "title": "Weekly engineering report 2026-W47",
    "period": {"kind": "week", "label": "2026-W47", "start": "2026-11-16T00:00", "end": "2026-11-23T00:00"},
    "has_data": True,
    "headlines": [
        {
            "section": "ci_runs",
            "figure": "success_rate",
            "label": "Success rate",
            "value_text": "66.7%",
            "change_text": "▲ +16.7 pp",
            "tone": "good",
            "text": "Success rate: 66.7% (▲ +16.7 pp, better)",
        }
    ],
    "movers": [],
    "project_movers": [{"project": "api", "score": 80.0, "previous": 70.0, "change": 10.0}],
    "omitted": [],
}


@pytest.fixture(scope="module")
def pngs() -> list[tuple[str, bytes, str]]:
    return [
        ("chart-ci_runs-success_rate.png", charts.sparkline([0.5, 0.6, 0.7], width_px=680, height_px=300), "Success"),
        ("spark-ci_runs-runs.png", charts.sparkline([1, 3, 2], width_px=120, height_px=28), "Runs"),
    ]


def slack_messages(sandbox, channel: str = REPORTS) -> list[dict]:
    return sandbox.control("slack", "GET", "/messages", params={"channel": channel})


def slack_calls(sandbox, method: str) -> list[dict]:
    return [r for r in sandbox.requests(system="slack") if r["path"].endswith("/" + method)]


def telegram_messages(sandbox) -> list[dict]:
    return sandbox.control("telegram", "GET", "/messages", params={"chat_id": TELEGRAM_CHAT})


def notification(key: str) -> dict[str, Any]:
    import sqlalchemy as sa

    from devops_automation.store import schema

    t = schema.notifications
    with ResultsStore.from_connection().engine.connect() as conn:
        return dict(conn.execute(sa.select(t).where(t.c.dedup_key == key)).one()._mapping)


def post_report(files: list[tuple[str, bytes, str]]) -> tuple[str | None, list[str] | None]:
    """What the DAG does for Slack: the summary, then the files in its thread (the ts of an earlier run's
    summary comes from the store)."""
    ts = post_slack_once(
        chat.slack_fallback_text(SUMMARY),
        blocks=chat.report_blocks(SUMMARY),
        channel=REPORTS,
        dedup_key="weekly:2026-W47:slack:summary",
    )
    thread = ts or sent_message_ref("weekly:2026-W47:slack:summary")
    ids = upload_slack_files_once(
        files,
        channel=REPORTS,
        thread_ts=thread,
        initial_comment="Charts and the full report",
        dedup_key="weekly:2026-W47:slack:files",
    )
    return ts, ids


# ---- Slack ----------------------------------------------------------------------------------------------


def test_summary_blocks_then_files_in_its_thread_each_once(sandbox, sandbox_conns, pngs) -> None:
    files = [*pngs, ("report-2026-W47.html", HTML, "Weekly report 2026-W47 (HTML)")]
    ts, ids = post_report(files)
    assert ts and ids and len(ids) == 3
    summary, upload = slack_messages(sandbox)
    assert summary["ts"] == ts
    assert summary["blocks"] == chat.report_blocks(SUMMARY)
    assert summary["text"] == "Weekly engineering report 2026-W47\n• Success rate: 66.7% (▲ +16.7 pp, better)"
    assert summary["thread_ts"] is None
    assert (upload["via"], upload["thread_ts"], upload["text"]) == ("file", ts, "Charts and the full report")
    assert [(f["id"], f["name"], f["title"], f["size"]) for f in upload["files"]] == [
        (ids[0], "chart-ci_runs-success_rate.png", "Success", len(pngs[0][1])),
        (ids[1], "spark-ci_runs-runs.png", "Runs", len(pngs[1][1])),
        (ids[2], "report-2026-W47.html", "Weekly report 2026-W47 (HTML)", len(HTML)),
    ]
    for file_id, (_, data, _) in zip(ids, files, strict=True):
        got = sandbox.session.get(f"{sandbox.base_url}/_sandbox/slack/files/{file_id}/content", timeout=10)
        assert got.content == data
    stored = {f["id"]: f for f in sandbox.control("slack", "GET", "/files")}
    assert all(stored[i]["completed"] and stored[i]["channels"] == [REPORTS] for i in ids)
    # one upload-v2 call: a URL per file, one completion for all of them, in the thread
    assert len(slack_calls(sandbox, "files.getUploadURLExternal")) == 3
    (complete,) = slack_calls(sandbox, "files.completeUploadExternal")
    assert complete["headers"]["authorization"] == "Bearer xoxb-sandbox-token"
    assert notification("weekly:2026-W47:slack:files")["message_ref"] == ",".join(ids)
    assert notification("weekly:2026-W47:slack:files")["target"] == REPORTS

    # a re-run (or a backfill of the same week) sends nothing
    assert post_report(files) == (None, None)
    assert len(slack_messages(sandbox)) == 2
    assert len(slack_calls(sandbox, "chat.postMessage")) == 1
    assert len(slack_calls(sandbox, "files.getUploadURLExternal")) == 3
    assert len(slack_calls(sandbox, "files.completeUploadExternal")) == 1


def test_a_failed_upload_is_recorded_and_the_next_run_uploads_into_the_thread(sandbox, sandbox_conns, pngs) -> None:
    sandbox.fault(system="slack", path="/files.completeUploadExternal", status=500, message="internal_error")
    with pytest.raises(SlackApiError, match="internal_error"):
        post_report(pngs)
    (summary,) = slack_messages(sandbox)  # the summary went out, the files did not
    (pending,) = ResultsStore.from_connection().pending_notifications("slack")
    assert (pending["dedup_key"], pending["status"], pending["target"]) == (
        "weekly:2026-W47:slack:files",
        "failed",
        REPORTS,
    )
    assert "internal_error" in pending["error"]

    sandbox.clear_faults()
    ts, ids = post_report(pngs)  # the next run: summary skipped, files into the first run's thread
    assert ts is None and ids and len(ids) == 2
    messages = slack_messages(sandbox)
    assert len(messages) == 2
    assert messages[1]["thread_ts"] == summary["ts"]
    assert [f["name"] for f in messages[1]["files"]] == [name for name, _, _ in pngs]
    assert ResultsStore.from_connection().pending_notifications() == []
    assert post_report(pngs) == (None, None)
    assert len(slack_messages(sandbox)) == 2


def test_a_channel_name_is_resolved_to_its_id(sandbox, sandbox_conns, pngs) -> None:
    ids = upload_slack_files_once(pngs[:1], channel="#reports", dedup_key="by-name")
    (msg,) = slack_messages(sandbox)
    assert [f["id"] for f in msg["files"]] == ids
    assert slack_calls(sandbox, "conversations.list")
    assert notification("by-name")["target"] == REPORTS


def test_an_unknown_channel_name_is_a_clear_error(sandbox, sandbox_conns, pngs) -> None:
    with pytest.raises(ValueError, match=r"Slack channel '#nope' not found.*channel ID"):
        upload_slack_files_once(pngs, channel="#nope", dedup_key="nope")
    assert slack_calls(sandbox, "files.getUploadURLExternal") == []
    assert ResultsStore.from_connection().pending_notifications() == []  # nothing claimed


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([], r"no files"),
        ([("a.png", b"", "A")], r"files\[0\] 'a.png': content must be non-empty bytes"),
        ([("", b"x", "A")], r"files\[0\]: the file name is empty"),
        ([("a.png", b"x", "A"), ("a.png", b"y", "B")], r"files\[1\]: file name 'a.png' is used twice"),
        ([("a.png", b"x")], r"files\[0\]: expected \(filename, content, title\)"),
    ],
)
def test_bad_files_are_refused_before_anything_is_sent(sandbox, sandbox_conns, files, message) -> None:
    with pytest.raises(ValueError, match=message):
        upload_slack_files_once(files, channel=REPORTS, dedup_key="bad")
    assert sandbox.requests(system="slack") == []


# ---- Telegram -------------------------------------------------------------------------------------------


def test_photo_and_document_each_once(sandbox, sandbox_conns, pngs) -> None:
    name, png, _ = pngs[0]
    caption = chat.telegram_caption(SUMMARY, "Success rate, last 8 weeks")
    photo_id = send_telegram_photo_once(png, filename=name, caption=caption, dedup_key="w47:tg:photo")
    doc_id = send_telegram_document_once(HTML, filename="report-2026-W47.html", dedup_key="w47:tg:html")
    assert photo_id and doc_id and photo_id != doc_id
    photo, document = telegram_messages(sandbox)
    assert (photo["method"], photo["message_id"], photo["filename"], photo["size"]) == (
        "sendPhoto",
        photo_id,
        name,
        len(png),
    )
    assert (photo["photo"]["width"], photo["photo"]["height"]) == (680, 300)
    assert photo["caption"] == "Weekly engineering report 2026-W47\nSuccess rate, last 8 weeks"
    assert photo["raw_caption"] == caption
    assert (document["method"], document["message_id"], document["filename"], document["size"]) == (
        "sendDocument",
        doc_id,
        "report-2026-W47.html",
        len(HTML),
    )
    assert document["caption"] is None
    upload = [r for r in sandbox.requests(system="telegram") if r["path"].endswith("/sendPhoto")][-1]
    assert upload["headers"]["content-type"].startswith("multipart/form-data")
    assert notification("w47:tg:photo")["message_ref"] == str(photo_id)
    assert notification("w47:tg:photo")["target"] == TELEGRAM_CHAT

    assert send_telegram_photo_once(png, filename=name, caption=caption, dedup_key="w47:tg:photo") is None
    assert send_telegram_document_once(HTML, filename="report-2026-W47.html", dedup_key="w47:tg:html") is None
    assert len(telegram_messages(sandbox)) == 2


def test_photo_flood_control_retry_after_is_honoured(sandbox, sandbox_conns, pngs) -> None:
    sandbox.fault(system="telegram", path="/sendPhoto$", status=429, retry_after=1, times=1)
    t0 = time.monotonic()
    assert send_telegram_photo_once(pngs[1][1], filename=pngs[1][0], dedup_key="flood")
    assert time.monotonic() - t0 >= 1.0
    assert len([r for r in sandbox.requests(system="telegram") if r["path"].endswith("/sendPhoto")]) == 2
    assert [m["method"] for m in telegram_messages(sandbox)] == ["sendPhoto"]


def test_a_refused_document_is_recorded_and_sent_later(sandbox, sandbox_conns) -> None:
    sandbox.fault(system="telegram", path="/sendDocument$", status=400, message="Bad Request: injected", times=1)
    with pytest.raises(TelegramSendError, match=r"(?i)refused document r.html: injected"):
        send_telegram_document_once(HTML, filename="r.html", dedup_key="doc-later")
    (pending,) = ResultsStore.from_connection().pending_notifications("telegram")
    assert (pending["dedup_key"], pending["status"]) == ("doc-later", "failed")
    assert telegram_messages(sandbox) == []
    assert send_telegram_document_once(HTML, filename="r.html", dedup_key="doc-later")
    assert [m["filename"] for m in telegram_messages(sandbox)] == ["r.html"]


def test_a_long_summary_reaches_telegram_split_below_4096(sandbox, sandbox_conns) -> None:
    headline = SUMMARY["headlines"][0]
    long = {
        **SUMMARY,
        "headlines": [{**headline, "label": f"Figure {i:03d} <x&y> " + "z" * 60} for i in range(150)],
    }
    chunks = chat.telegram_text(long)
    assert len(chunks) >= 3
    for i, chunk in enumerate(chunks):
        assert send_telegram_once(chunk, dedup_key=f"long:{i}")
    got = telegram_messages(sandbox)
    assert [m["raw_text"] for m in got] == chunks  # each chunk one message, as sent
    assert all(0 < len(m["text"]) <= TELEGRAM_TEXT_LIMIT for m in got)
    assert all(len(m["text"]) > TELEGRAM_TEXT_LIMIT - 200 for m in got[:-1])  # full up to the last line
    lines = "\n".join(m["text"] for m in got).splitlines()
    assert [line for line in lines if line.startswith("• Figure")] == [
        f"• Figure {i:03d} <x&y> {'z' * 60}: 66.7% (▲ +16.7 pp, better)" for i in range(150)
    ]


def test_no_file_data_is_a_clear_error(sandbox, sandbox_conns) -> None:
    with pytest.raises(ValueError, match=r"Telegram photo 'a.png': data must be non-empty bytes"):
        send_telegram_photo_once(b"", filename="a.png", dedup_key="empty")
    with pytest.raises(ValueError, match=r"Telegram document: the file name is empty"):
        send_telegram_document_once(b"x", filename=" ", dedup_key="empty")
    assert sandbox.requests(system="telegram") == []
    assert json.dumps(ResultsStore.from_connection().pending_notifications()) == "[]"


TOKEN = "ghp_abcdefghijklmnopqrstuvwxyz0123456789AB"


def test_every_chat_message_and_text_file_is_redacted_before_it_leaves(sandbox, sandbox_conns, pngs) -> None:
    """Whoever built the text (a job log line, a repository description), a token never reaches Slack or
    Telegram: message text, blocks, captions and text files are redacted; images are sent as they are."""
    leaky = f"deploy failed: token {TOKEN} rejected"
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": leaky}}]
    ts = post_slack_once(leaky, blocks=blocks, dedup_key="leak:slack", channel=REPORTS)
    html = f"<html><body><p>{leaky}</p></body></html>".encode()
    upload_slack_files_once(
        [("report.html", html, "report"), pngs[0]], dedup_key="leak:files", channel=REPORTS, thread_ts=ts
    )
    send_telegram_once(leaky, dedup_key="leak:tg")
    send_telegram_document_once(html, filename="report.html", caption=leaky, dedup_key="leak:tg:doc")
    sent = json.dumps(sandbox.requests(system="slack")) + json.dumps(sandbox.requests(system="telegram"))
    assert TOKEN not in sent
    message = next(m for m in slack_messages(sandbox) if m.get("blocks"))
    assert message["text"] == "deploy failed: token [REDACTED:github_token] rejected"
    assert message["blocks"][0]["text"]["text"] == message["text"]
    stored = {f["name"]: f for f in sandbox.control("slack", "GET", "/files")}
    content = sandbox.session.get(
        f"{sandbox.base_url}/_sandbox/slack/files/{stored['report.html']['id']}/content", timeout=10
    ).content
    assert TOKEN.encode() not in content and b"[REDACTED:github_token]" in content
    png = sandbox.session.get(
        f"{sandbox.base_url}/_sandbox/slack/files/{stored[pngs[0][0]]['id']}/content", timeout=10
    ).content
    assert png == pngs[0][1]  # an image is not touched
    text, document = telegram_messages(sandbox)
    assert text["text"] == "deploy failed: token [REDACTED:github_token] rejected"
    assert "[REDACTED:github_token]" in document["caption"] and document["size"] == len(
        "<html><body><p>deploy failed: token [REDACTED:github_token] rejected</p></body></html>"
    )
