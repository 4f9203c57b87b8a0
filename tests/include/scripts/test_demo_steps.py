"""Steps of ``make demo`` (``include/scripts/demo.py``) on their own: the failure it puts on the first screen
(the e-mail it drops into the demo mailbox is a GitLab failure mail for a seeded failed pipeline, which the
triage parses), how it finds that failure's Slack message, and the backfills behind the first weekly report."""

from __future__ import annotations

import datetime as dt
import imaplib
import importlib.util
import subprocess
import uuid
from types import ModuleType
from typing import Any

import pytest
import requests
import yaml

from devops_automation.workflows.ci_failure_triage.mail import parse_pipeline_mail
from tests.conftest import REPO

pytestmark = pytest.mark.imap


@pytest.fixture(scope="module")
def demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_script", REPO / "include" / "scripts" / "demo.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def allowed_senders() -> list[str]:
    """What the demo's imap_default accepts (airflow_settings.yaml)."""
    settings = yaml.safe_load((REPO / "airflow_settings.yaml").read_text())
    conn = next(c for c in settings["airflow"]["connections"] if c["conn_id"] == "imap_default")
    return list(conn["conn_extra"]["allowed_senders"])


def fetch_all(server: Any, folder: str) -> list[bytes]:
    m = imaplib.IMAP4("127.0.0.1", server.port)
    try:
        m.login(server.user, server.password)
        assert m.select(folder, readonly=True)[0] == "OK"
        _, data = m.uid("SEARCH", None, "ALL")
        out = []
        for uid in data[0].split():
            _, parts = m.uid("FETCH", uid, "(BODY.PEEK[])")
            out.append(next(p[1] for p in parts if isinstance(p, tuple)))
        return out
    finally:
        m.logout()


@pytest.mark.parametrize("name", ["pytest", "compile"])
def test_the_dropped_mail_is_a_failure_mail_for_the_seeded_pipeline(demo, sandbox, dovecot_server, name) -> None:
    folder = f"demo-{uuid.uuid4().hex[:8]}"
    imap = {
        "host": "127.0.0.1",
        "port": dovecot_server.port,
        "user": dovecot_server.user,
        "password": dovecot_server.password,
        "folder": folder,
    }
    first = demo.deliver_first_failure(imap, name, sandbox_url=sandbox.base_url)
    seeded = sandbox.control("gitlab", "GET", "/scenarios")[name]
    assert (first["scenario"], first["pipeline_id"], first["project_id"]) == (
        name,
        seeded["pipeline_id"],
        seeded["project_id"],
    )
    [raw] = fetch_all(dovecot_server, folder)
    mail = parse_pipeline_mail(raw, allowed_senders=allowed_senders())
    assert mail.is_failure
    assert mail.message_id.strip("<>") == first["message_id"]
    assert (mail.pipeline_id, mail.project_path) == (str(seeded["pipeline_id"]), seeded["project_path"])
    assert mail.project_id in (None, str(seeded["project_id"]))
    assert seeded["failed_job_ids"]  # the triage has a failed job to analyse


def test_an_unknown_scenario_is_named(demo, sandbox) -> None:
    with pytest.raises(KeyError, match="no sandbox GitLab scenario 'nope'"):
        demo.deliver_first_failure({"host": "127.0.0.1", "port": 1}, "nope", sandbox_url=sandbox.base_url)


def test_the_first_failure_message_is_found_by_its_pipeline(demo, sandbox) -> None:
    assert demo.first_failure_message(12345, sandbox_url=sandbox.base_url) is None
    sandbox.control("slack", "POST", "/channels", json={"id": "C0DEMO", "name": "demo"})
    r = requests.post(
        sandbox.url("slack", "/api/chat.postMessage"),
        headers={"Authorization": "Bearer xoxb-sandbox-token"},
        json={"channel": "C0DEMO", "text": "❌ acme/api · main · pipeline #12345 failed: unit-tests"},
        timeout=10,
    )
    assert r.json()["ok"], r.text
    found = demo.first_failure_message(12345, sandbox_url=sandbox.base_url)
    assert found is not None and "pipeline #12345" in found["text"]
    assert demo.first_failure_message(1234, sandbox_url=sandbox.base_url) is None


def test_the_report_history_backfills_are_created_before_airflow_starts(demo, monkeypatch, tmp_path) -> None:
    """``airflow dags reserialize`` then one ``airflow backfill create`` per DAG, for the last full week
    and the one before (UTC days) through the last day of the last full month (the monthly report waits for
    it too), through the demo's process guard; a refused one does not stop the demo."""

    class Guard:
        def __init__(self) -> None:
            self.commands: list[list[str]] = []

        def run(self, args: list[str], **kw: Any) -> subprocess.CompletedProcess:
            self.commands.append([a.rsplit("/", 1)[-1] for a in args])
            refused = "daily_project_metrics" in args  # as on a restart: the backfill exists already
            return subprocess.CompletedProcess(args, 1 if refused else 0)

    friday = dt.datetime(2026, 12, 4, 19, 0, tzinfo=dt.UTC).timestamp()
    monkeypatch.setattr(demo.time, "time", lambda: friday)
    monkeypatch.delenv("DEVOPS_AUTOMATION_REPORT_TIMEZONE", raising=False)
    guard = Guard()
    week = demo.backfill_report_history(guard, {}, tmp_path)
    assert week == (dt.datetime(2026, 11, 23, tzinfo=dt.UTC), dt.datetime(2026, 11, 30, tzinfo=dt.UTC))
    window = ["--from-date", "2026-11-16T00:00:00+00:00", "--to-date", "2026-11-30T00:00:00+00:00"]
    assert guard.commands == [
        ["airflow", "dags", "reserialize"],
        ["airflow", "backfill", "create", "--dag-id", "ci_pipeline_analytics", "--max-active-runs", "2", *window],
        ["airflow", "backfill", "create", "--dag-id", "daily_project_metrics", "--max-active-runs", "2", *window],
    ]
