"""weekly_report end to end with dag.test(): the week built from the results store (after
ci_pipeline_analytics stored the sandbox's CI history), archived, recorded in ``reports`` and delivered
once to the sandbox Slack and Telegram and a real SMTP server; a re-run sends nothing and changes no
byte; ``resend`` sends again."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.slow

DAG_ID = "weekly_report"
DAY = dt.timedelta(days=1)
REPORTS = "C0REPORTS"
CHAT = "-1001234567890"


def this_monday(sandbox: Any) -> dt.datetime:
    now = dt.datetime.fromtimestamp(sandbox.advance(0), dt.UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - dt.timedelta(days=midnight.weekday())


def results_store(conns: dict[str, str]) -> Any:
    from devops_automation.store import ResultsStore, sqlite_url

    return ResultsStore(sqlite_url(json.loads(conns["AIRFLOW_CONN_DEVOPS_RESULTS_DB"])["host"]))


def reports(store: Any) -> list[dict[str, Any]]:
    from devops_automation.store import schema

    with store.begin() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(schema.reports))]


def test_a_week_is_built_archived_and_delivered_once_and_resend_sends_again(
    sandbox, run_dag, sandbox_conns, smtp, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_CI_PIPELINE_ANALYTICS_SOURCES", "{}")
    monday = this_monday(sandbox)
    # the CI history of the week before: ci_pipeline_analytics for its seven days (acme/shop)
    for day in range(7):
        dag_run, states = run_dag(
            "ci_pipeline_analytics",
            logical_date=monday - dt.timedelta(days=6 - day),
            conf={"github_repos": ["acme/shop"], "lookback_days": 0},
        )
        assert str(dag_run.state) == "success", states
    archive = tmp_path / "reports"
    conf = {
        "slack_channel": REPORTS,
        "telegram_chat": CHAT,
        "recipients": ["team@example.test"],
        "archive": f"file://{archive}",
    }
    dag_run, states = run_dag(DAG_ID, logical_date=monday, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    store = results_store(sandbox_conns)
    (row,) = reports(store)
    start = (monday - 7 * DAY).date()
    assert (row["kind"], row["period_start"], row["period_end"]) == ("weekly", start, monday.date())
    folder = Path(row["archive_path"].removeprefix("file://"))
    names = sorted(p.name for p in folder.iterdir())
    assert {"report.md", "report.html", "report.txt", "figures.json"} <= set(names)
    pngs = [n for n in names if n.endswith(".png")]
    assert pngs, names
    figures = json.loads((folder / "figures.json").read_text())
    assert figures["sections"]["ci_runs"]["runs"]["value"] > 0
    first = {name: (folder / name).read_bytes() for name in names}

    # Slack: the summary, then the charts and the HTML in its thread
    messages = sandbox.control("slack", "GET", "/messages", params={"channel": REPORTS})
    summary = [m for m in messages if m.get("blocks")]
    files = [m for m in messages if m.get("via") == "file"]
    assert len(summary) == 1 and len(files) == 1, messages
    assert files[0].get("thread_ts") == summary[0]["ts"]  # the charts and the HTML in the summary's thread
    # Telegram: the text, the headline chart, the HTML document
    sent = sandbox.control("telegram", "GET", "/messages", params={"chat_id": CHAT})
    methods = [m["method"] for m in sent]
    assert methods.count("sendPhoto") == 1 and methods.count("sendDocument") == 1, methods
    assert methods.count("sendMessage") >= 1 and "Success rate" in sent[0]["text"], sent[0]
    # e-mail: one message with the HTML, its inline charts and a plain-text part
    (mail,) = smtp.messages()
    assert mail["To"] == "team@example.test"
    assert mail.get_content_type() == "multipart/alternative"
    related = [p for p in mail.walk() if p.get_content_type() == "multipart/related"]
    assert related
    cids = {p["Content-ID"].strip("<>") for p in mail.walk() if p.get("Content-ID")}
    html = next(p for p in mail.walk() if p.get_content_type() == "text/html").get_content()
    assert all(f"cid:{c}" in html for c in cids) and cids

    # a re-run: the same bytes, nothing sent again
    dag_run, states = run_dag(DAG_ID, logical_date=monday, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    assert {name: (folder / name).read_bytes() for name in names} == first
    assert len(sandbox.control("slack", "GET", "/messages", params={"channel": REPORTS})) == len(messages)
    assert len(sandbox.control("telegram", "GET", "/messages", params={"chat_id": CHAT})) == len(sent)
    assert len(smtp.messages()) == 1
    assert len(reports(store)) == 1

    # resend: each channel once more
    dag_run, states = run_dag(DAG_ID, logical_date=monday, conf={**conf, "resend": True}, retries=0)
    assert str(dag_run.state) == "success", states
    assert len(smtp.messages()) == 2
    assert len(sandbox.control("telegram", "GET", "/messages", params={"chat_id": CHAT})) == 2 * len(sent)
