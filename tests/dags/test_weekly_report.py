"""weekly_report and monthly_report end to end with dag.test(): the week built from the results store
(after ci_pipeline_analytics stored the sandbox's CI history), archived, recorded in ``reports`` and
delivered once to the sandbox Slack and Telegram and a real SMTP server; a re-run sends nothing and
changes no byte; ``resend`` sends again; Slack down does not stop the others and the next run sends it;
an empty week is a short "no data" report; the e-mail renders in Chromium at 700 px; a month; a team's
own report; a rebuilt week equals the original bytes and a backfill sends nothing.

The CI history is stored once per module (seven ci_pipeline_analytics runs) and copied into each test's
fresh results store (:func:`ci_week`)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from pathlib import Path
from types import SimpleNamespace
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


def results_db(conns: dict[str, str]) -> Path:
    return Path(json.loads(conns["AIRFLOW_CONN_DEVOPS_RESULTS_DB"])["host"])


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database (the backup API: committed data, WAL or not)."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


@pytest.fixture(scope="module")
def ci_history(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Where the module's stored CI history is kept once the first test has made it."""
    return {"db": tmp_path_factory.mktemp("ci_history") / "results.db", "monday": None}


@pytest.fixture
def ci_week(sandbox, run_dag, sandbox_conns, ci_history, monkeypatch) -> dt.datetime:
    """This Monday, with the week before's CI history in this test's results store: ci_pipeline_analytics
    for its seven days (acme/shop) the first time in the module, a copy of that store afterwards."""
    monday = this_monday(sandbox)
    db = results_db(sandbox_conns)
    if ci_history["monday"] != monday:
        monkeypatch.setenv("AIRFLOW_VAR_CI_PIPELINE_ANALYTICS_SOURCES", "{}")
        for day in range(7):
            dag_run, states = run_dag(
                "ci_pipeline_analytics",
                logical_date=monday - dt.timedelta(days=6 - day),
                # no paging: on a Monday before ~01:45 UTC the seeded red main branch is 4 h red at the
                # last day's end and would post its alert to the chat the report goes to
                conf={"github_repos": ["acme/shop"], "lookback_days": 0, "page": False},
            )
            assert str(dag_run.state) == "success", states
        copy_sqlite(db, ci_history["db"])
        ci_history["monday"] = monday
    else:
        copy_sqlite(ci_history["db"], db)
    return monday


def slack_messages(sandbox: Any) -> list[dict[str, Any]]:
    return sandbox.control("slack", "GET", "/messages", params={"channel": REPORTS})


def telegram_messages(sandbox: Any) -> list[dict[str, Any]]:
    return sandbox.control("telegram", "GET", "/messages", params={"chat_id": CHAT})


def delivery_conf(archive: Path, **more: Any) -> dict[str, Any]:
    return {
        "slack_channel": REPORTS,
        "telegram_chat": CHAT,
        "recipients": ["team@example.test"],
        "archive": f"file://{archive}",
        **more,
    }


def folder_of(row: dict[str, Any]) -> Path:
    return Path(row["archive_path"].removeprefix("file://"))


def archived(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_week_is_built_archived_and_delivered_once_and_resend_sends_again(
    sandbox, run_dag, sandbox_conns, smtp, tmp_path, ci_week
) -> None:
    monday = ci_week
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


def test_slack_down_the_others_are_sent_and_the_next_run_sends_slack_once(
    sandbox, run_dag, sandbox_conns, smtp, tmp_path, ci_week, capfd
) -> None:
    conf = delivery_conf(tmp_path / "reports")
    capfd.readouterr()
    sandbox.fault(system="slack", path="chat.postMessage", status=500, message="internal_error")
    dag_run, states = run_dag(DAG_ID, logical_date=ci_week, conf=conf, retries=0)
    assert str(dag_run.state) == "failed", states
    assert (states["build"], states["deliver_slack"], states["summary"]) == ("success", "failed", "failed"), states
    assert (states["deliver_telegram"], states["deliver_email"]) == ("success", "success"), states
    logged = "".join(capfd.readouterr())  # the task logs (dag.test() prints them)
    assert "delivery failed on slack" in logged and "slack FAILED" in logged, logged[-2000:]
    assert "telegram FAILED" not in logged and "email FAILED" not in logged
    assert slack_messages(sandbox) == []
    sent = telegram_messages(sandbox)
    methods = [m["method"] for m in sent]
    assert methods.count("sendDocument") == 1 and methods.count("sendPhoto") == 1, methods
    assert len(smtp.messages()) == 1

    # Slack is back: the next run sends Slack (the summary and its files) once, and nothing else again
    sandbox.clear_faults()
    dag_run, states = run_dag(DAG_ID, logical_date=ci_week, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    messages = slack_messages(sandbox)
    summary = [m for m in messages if m.get("blocks")]
    files = [m for m in messages if m.get("via") == "file"]
    assert len(summary) == 1 and len(files) == 1 and len(messages) == 2, messages
    assert files[0].get("thread_ts") == summary[0]["ts"]
    assert len(telegram_messages(sandbox)) == len(sent)
    assert len(smtp.messages()) == 1
    # and once more: nothing anywhere
    dag_run, states = run_dag(DAG_ID, logical_date=ci_week, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    assert len(slack_messages(sandbox)) == 2 and len(telegram_messages(sandbox)) == len(sent)
    assert len(smtp.messages()) == 1


def test_an_empty_week_is_a_short_no_data_report_built_archived_and_delivered(
    sandbox, run_dag, sandbox_conns, smtp, tmp_path
) -> None:
    monday = this_monday(sandbox)  # nothing stored at all
    dag_run, states = run_dag(DAG_ID, logical_date=monday, conf=delivery_conf(tmp_path / "reports"), retries=0)
    assert str(dag_run.state) == "success", states
    (row,) = reports(results_store(sandbox_conns))
    assert (row["kind"], row["period_start"], row["period_end"]) == ("weekly", (monday - 7 * DAY).date(), monday.date())
    folder = folder_of(row)
    files = archived(folder)
    assert {"report.md", "report.html", "report.txt", "figures.json"} <= set(files), sorted(files)
    figures = json.loads(files["figures.json"])
    assert figures["has_data"] is False
    assert figures["sections"] and all("no_data" in s for s in figures["sections"].values()), figures["sections"]
    markdown = files["report.md"].decode()
    assert "No data for this period" in markdown and row["markdown"] == markdown
    assert "Success rate" not in markdown  # no figures: the short report
    # every section is listed with why it has no data (the Markdown escapes "_")
    text = files["report.txt"].decode()
    assert "No data for this period" in text
    for name, section in figures["sections"].items():
        assert f"{section['no_data']}." in text, (name, section)
        assert f"{section['no_data']}.".replace("_", "\\_") in markdown, (name, section)

    messages = slack_messages(sandbox)
    summary = [m for m in messages if m.get("blocks")]
    assert len(summary) == 1 and "No data for this period" in summary[0]["text"], messages
    sent = telegram_messages(sandbox)
    texts = [m for m in sent if m["method"] == "sendMessage"]
    assert len(texts) == 1 and "No data for this period" in texts[0]["text"], sent
    assert [m["method"] for m in sent].count("sendDocument") == 1
    (mail,) = smtp.messages()
    assert "No data for this period" in mail.get_body(preferencelist=("plain",)).get_content()


def test_the_email_renders_in_a_browser_without_broken_images_or_overflow_at_700px(
    sandbox, run_dag, sandbox_conns, smtp, tmp_path, ci_week, browser
) -> None:
    dag_run, states = run_dag(DAG_ID, logical_date=ci_week, conf=delivery_conf(tmp_path / "reports"), retries=0)
    assert str(dag_run.state) == "success", states
    (mail,) = smtp.messages()
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert html.count("cid:") >= 2  # the charts are inline parts (more than one image to load)
    page = browser.check_email(mail, width=700)
    (tmp_path / "email.png").write_bytes(page.screenshot_png)
    assert page.broken_images == [], page.broken_images
    assert page.overflow_px == 0 and page.width == 700, (page.overflow_px, page.width)
    assert "Success rate" in page.text, page.text[:500]
    assert page.screenshot_png.startswith(b"\x89PNG")


def test_monthly_report_builds_the_calendar_month_and_delivers_it_once(
    sandbox, run_dag, sandbox_conns, smtp, tmp_path, ci_week
) -> None:
    now = dt.datetime.fromtimestamp(sandbox.advance(0), dt.UTC)
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)  # the run ending on this 1st
    last_month = (first - DAY).replace(day=1)  # reports the last full month
    dag_run, states = run_dag("monthly_report", logical_date=first, conf=delivery_conf(tmp_path / "reports"), retries=0)
    assert str(dag_run.state) == "success", states
    (row,) = reports(results_store(sandbox_conns))
    assert (row["kind"], row["period_start"], row["period_end"]) == ("monthly", last_month.date(), first.date())
    folder = folder_of(row)
    label = f"{last_month.year:04d}-{last_month.month:02d}"
    assert folder.name == label
    figures = json.loads((folder / "figures.json").read_text())
    assert figures["period"]["kind"] == "month" and figures["period"]["label"] == label, figures["period"]
    assert figures["period"]["start"].startswith(last_month.date().isoformat()), figures["period"]
    assert figures["period"]["end"].startswith(first.date().isoformat()), figures["period"]
    ci_runs = figures["sections"]["ci_runs"]
    if ci_week - 7 * DAY >= last_month:  # the stored CI week is in that month (not in its first days)
        assert ci_runs["runs"]["value"] > 0 and len(ci_runs["runs"]["series"]) == 8, ci_runs  # 8-month sparkline

    messages = slack_messages(sandbox)
    assert len([m for m in messages if m.get("blocks")]) == 1 and len(messages) == 2, messages
    methods = [m["method"] for m in telegram_messages(sandbox)]
    assert methods.count("sendDocument") == 1, methods
    (mail,) = smtp.messages()
    assert label in mail["Subject"], mail["Subject"]


def test_a_team_report_has_its_own_label_and_reports_row_beside_the_all_projects_one(
    sandbox, run_dag, sandbox_conns, smtp, tmp_path, ci_week
) -> None:
    conf = delivery_conf(tmp_path / "reports")
    dag_run, states = run_dag(DAG_ID, logical_date=ci_week, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    team = {**conf, "team": "shop", "repos": ["acme/shop"]}
    dag_run, states = run_dag(DAG_ID, logical_date=ci_week, conf=team, retries=0)
    assert str(dag_run.state) == "success", states

    rows = {r["kind"]: r for r in reports(results_store(sandbox_conns))}
    assert sorted(rows) == ["weekly", "weekly:shop"], sorted(rows)
    start = (ci_week - 7 * DAY).date()
    assert {(r["period_start"], r["period_end"]) for r in rows.values()} == {(start, ci_week.date())}
    year, week, _ = start.isocalendar()
    label = f"{year:04d}-W{week:02d}"
    everything, shop = folder_of(rows["weekly"]), folder_of(rows["weekly:shop"])
    assert (everything.name, shop.name) == (label, f"{label}-shop")
    assert everything.parent == shop.parent == tmp_path / "reports"
    for folder, row in ((everything, rows["weekly"]), (shop, rows["weekly:shop"])):
        assert (folder / "report.md").read_text() == row["markdown"]
        assert json.loads((folder / "figures.json").read_text())["sections"]["ci_runs"]["runs"]["value"] > 0
    # each report delivered once on each channel
    assert len([m for m in slack_messages(sandbox) if m.get("blocks")]) == 2
    assert [m["method"] for m in telegram_messages(sandbox)].count("sendDocument") == 2
    subjects = sorted(m["Subject"] for m in smtp.messages())
    assert len(subjects) == 2 and subjects[0] != subjects[1], subjects


def test_a_rebuilt_week_is_byte_identical_and_a_backfill_sends_nothing(
    sandbox, run_dag, sandbox_conns, smtp, tmp_path, ci_week
) -> None:
    from airflow.utils.types import DagRunType

    from devops_automation.store import schema
    from devops_automation.workflows.weekly_report.operators import ReportDeliverOperator

    conf = delivery_conf(tmp_path / "reports")
    dag_run, states = run_dag(DAG_ID, logical_date=ci_week, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    store = results_store(sandbox_conns)
    (row,) = reports(store)
    folder = folder_of(row)
    first = archived(folder)
    assert any(name.endswith(".png") for name in first), sorted(first)
    slack, telegram = len(slack_messages(sandbox)), len(telegram_messages(sandbox))

    # the archive folder and the reports row gone: rebuilt from the store, the same bytes
    shutil.rmtree(folder)
    with store.begin() as conn:
        conn.execute(sa.delete(schema.reports))
    dag_run, states = run_dag(DAG_ID, logical_date=ci_week, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    assert archived(folder) == first
    (again,) = reports(store)
    assert {k: again[k] for k in ("kind", "period_start", "period_end", "markdown", "html", "summary")} == {
        k: row[k] for k in ("kind", "period_start", "period_end", "markdown", "html", "summary")
    }
    assert (len(slack_messages(sandbox)), len(telegram_messages(sandbox)), len(smtp.messages())) == (slack, telegram, 1)

    # a backfill run records the report and sends nothing, on every channel (dag.test() always makes a
    # manual run, so the delivery task runs here with a backfill dag_run in its context); the connections
    # are set and the dedup key is new, so the skip is the backfill's
    backfill = {"dag_run": SimpleNamespace(run_type=DagRunType.BACKFILL_JOB), "run_id": "backfill__x"}
    built = {"kind": "weekly:backfill", "label": "backfill", "folder": f"file://{folder}", "charts": [], "summary": {}}
    for channel, target in (("slack", REPORTS), ("telegram", CHAT), ("email", "team@example.test")):
        task = ReportDeliverOperator(task_id=f"deliver_{channel}", channel=channel, built=built, target=target)
        out = task.execute(backfill)
        assert out["sent"] == 0 and "backfill" in out["skipped"], out
    assert (len(slack_messages(sandbox)), len(telegram_messages(sandbox)), len(smtp.messages())) == (slack, telegram, 1)


def test_without_the_recipients_param_the_report_goes_to_the_report_recipients_variable(
    sandbox, run_dag, sandbox_conns, smtp, tmp_path, monkeypatch
) -> None:
    """Scheduled runs use the Params' defaults: the Variable report_recipients says who gets the e-mail."""
    monkeypatch.setenv("AIRFLOW_VAR_REPORT_RECIPIENTS", "ops@example.test, lead@example.test")
    monday = this_monday(sandbox)
    conf = delivery_conf(tmp_path / "reports")
    del conf["recipients"]
    dag_run, states = run_dag(DAG_ID, logical_date=monday, conf=conf, retries=0)
    assert str(dag_run.state) == "success", states
    (mail,) = smtp.messages()
    assert mail["To"] == "ops@example.test, lead@example.test"
