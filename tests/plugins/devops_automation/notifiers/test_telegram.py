"""TelegramBotHook / TelegramNotifier against the sandbox Telegram Bot API (real python-telegram-bot)."""

from __future__ import annotations

import json
import time

import pytest

from devops_automation.hooks.telegram import TelegramBotHook, TelegramSendError
from devops_automation.notifiers.telegram import TelegramNotifier, send_telegram_once
from tests.conftest import TELEGRAM_CHAT


def sent(sandbox) -> list[dict]:
    return sandbox.control("telegram", "GET", "/messages", params={"chat_id": TELEGRAM_CHAT})


def api_calls(sandbox, method: str) -> list[dict]:
    return [r for r in sandbox.requests(system="telegram") if r["path"].endswith("/" + method)]


def test_html_message_is_delivered(sandbox, sandbox_conns) -> None:
    ids = TelegramBotHook().send_message("<b>build</b> failed: <code>a &lt; b</code>")
    assert len(ids) == 1
    (msg,) = sent(sandbox)
    assert msg["parse_mode"] == "HTML"
    assert msg["text"] == "build failed: a < b"
    assert msg["raw_text"] == "<b>build</b> failed: <code>a &lt; b</code>"
    assert "123456:ABC-sandbox" not in json.dumps(
        sandbox.requests(system="telegram")[-1]["body"]
    )  # token only in the URL


def test_long_text_is_split_below_the_limit(sandbox, sandbox_conns) -> None:
    text = "\n".join(f"<b>line {i}</b> " + "x" * 80 for i in range(150))  # ~13k characters
    ids = TelegramBotHook().send_message(text)
    assert len(ids) == len(sent(sandbox)) >= 4
    assert all(len(m["text"]) <= 4096 for m in sent(sandbox))


def test_flood_control_retry_after_is_honoured(sandbox, sandbox_conns) -> None:
    sandbox.fault(system="telegram", path="/sendMessage$", status=429, retry_after=1, times=1)
    t0 = time.monotonic()
    TelegramBotHook().send_message("after a 429")
    assert time.monotonic() - t0 >= 1.0
    assert len(api_calls(sandbox, "sendMessage")) == 2
    assert len(sent(sandbox)) == 1


def test_bad_chat_id_is_a_clear_error_without_retries(sandbox, sandbox_conns) -> None:
    with pytest.raises(TelegramSendError, match=r"(?i)chat not found.*check the chat id"):
        TelegramBotHook(chat_id="-100999").send_message("hello")
    assert len(api_calls(sandbox, "sendMessage")) == 1


def test_malformed_html_is_not_retried(sandbox, sandbox_conns) -> None:
    with pytest.raises(TelegramSendError, match=r"(?i)can't parse entities"):
        TelegramBotHook().send_message("<b>unclosed")
    assert len(api_calls(sandbox, "sendMessage")) == 1


def test_send_once_never_sends_the_same_key_twice(sandbox, sandbox_conns) -> None:
    assert send_telegram_once("first", dedup_key="k-1")
    assert send_telegram_once("first again", dedup_key="k-1") is None
    assert [m["text"] for m in sent(sandbox)] == ["first"]


def test_a_failed_send_is_recorded_and_retried_later(sandbox, sandbox_conns) -> None:
    from telegram.error import NetworkError

    from devops_automation.store import ResultsStore

    sandbox.fault(system="telegram", path="/sendMessage$", status=500, times=10)
    with pytest.raises(NetworkError):  # the sandbox's 500, after the hook's network retries
        send_telegram_once("will fail", dedup_key="k-2")
    (pending,) = ResultsStore.from_connection().pending_notifications("telegram")
    assert pending["dedup_key"] == "k-2"
    assert pending["status"] == "failed"
    sandbox.clear_faults()
    assert send_telegram_once("will fail", dedup_key="k-2")
    assert [m["text"] for m in sent(sandbox)] == ["will fail"]


def test_notifier_renders_its_template_and_dedups(sandbox, sandbox_conns) -> None:
    notifier = TelegramNotifier(text="<b>{{ dag_id }}</b> failed in {{ run_id }}", dedup_key="{{ run_id }}:failed")
    context = {"dag_id": "demo_dag", "run_id": "manual__1"}
    notifier(context)
    notifier(context)  # a second callback for the same run: no second message
    assert [m["raw_text"] for m in sent(sandbox)] == ["<b>demo_dag</b> failed in manual__1"]
