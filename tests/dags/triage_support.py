"""Helpers for the ci_failure_triage end-to-end tests: mailboxes, e-mails, the store, the sandbox."""

from __future__ import annotations

import imaplib
import json
import uuid
from typing import Any

from tests.conftest import TELEGRAM_CHAT

DAG_ID = "ci_failure_triage"
SLACK_CHANNEL = "C0CIFAIL"
GITLAB_SENDER = "gitlab@gitlab.example.test"


class Mailbox:
    """A private set of folders on the shared test Dovecot, and the imap_default connection for it."""

    def __init__(self, server: Any, monkeypatch: Any) -> None:
        self.server = server
        tag = uuid.uuid4().hex[:8]
        self.folder, self.processed, self.attention = f"in-{tag}", f"done-{tag}", f"attention-{tag}"
        extra = {
            "use_ssl": False,
            "folder": self.folder,
            "processed_folder": self.processed,
            "needs_attention_folder": self.attention,
            "allowed_senders": [GITLAB_SENDER],
        }
        conn = {
            "conn_type": "imap",
            "host": "127.0.0.1",
            "port": server.port,
            "login": server.user,
            "password": server.password,
            "extra": extra,
        }
        monkeypatch.setenv("AIRFLOW_CONN_IMAP_DEFAULT", json.dumps(conn))
        with self._imap() as m:
            m.create(self.folder)

    def _imap(self) -> imaplib.IMAP4:
        m = imaplib.IMAP4("127.0.0.1", self.server.port)
        m.login(self.server.user, self.server.password)
        return m

    def append(self, raw: bytes | str, folder: str | None = None) -> None:
        data = raw.encode() if isinstance(raw, str) else raw
        with self._imap() as m:
            typ, _ = m.append(folder or self.folder, "", None, data)
            assert typ == "OK"

    def messages(self, folder: str) -> list[tuple[bytes, str]]:
        """(raw bytes, flags) of every message in ``folder`` ([] when it does not exist)."""
        with self._imap() as m:
            typ, _ = m.select(folder, readonly=True)
            if typ != "OK":
                return []
            _, data = m.uid("SEARCH", None, "ALL")
            out = []
            for uid in data[0].split():
                _, parts = m.uid("FETCH", uid, "(FLAGS BODY.PEEK[])")
                raw = next(p[1] for p in parts if isinstance(p, tuple))
                flags = next(p[0] for p in parts if isinstance(p, tuple)).decode()
                out.append((raw, flags))
            return out


def failure_email(sandbox: Any, pipeline_id: int, status: str | None = None) -> str:
    body: dict[str, Any] = {"pipeline_id": pipeline_id}
    if status:
        body["status"] = status
    return sandbox.control("gitlab", "POST", "/emails/pipeline", json=body)["eml"]


def scenario(sandbox: Any, name: str) -> dict[str, Any]:
    return sandbox.control("gitlab", "GET", "/scenarios")[name]


def slack_messages(sandbox: Any) -> list[dict[str, Any]]:
    return sandbox.control("slack", "GET", "/messages", params={"channel": SLACK_CHANNEL})


def telegram_messages(sandbox: Any) -> list[dict[str, Any]]:
    return sandbox.control("telegram", "GET", "/messages", params={"chat_id": TELEGRAM_CHAT})


def store() -> Any:
    from devops_automation.store import ResultsStore

    return ResultsStore.from_connection("devops_results_db")


def rows(table: str) -> list[dict[str, Any]]:
    import sqlalchemy as sa

    from devops_automation.store import schema

    t = getattr(schema, table)
    with store().engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(t).order_by(t.c[next(iter(t.c.keys()))]))]


def add_failed_pipeline(
    sandbox: Any,
    project_id: int,
    trace: Any,
    *,
    name: str = "unit-tests",
    reason: str = "script_failure",
    ref: str = "main",
    extra_jobs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A new pipeline whose job ``name`` failed with ``trace`` (text, or {"generate_bytes": n, ...})."""
    jobs = [
        {"name": "build", "stage": "build", "trace": "ok\n"},
        {"name": name, "stage": "test", "status": "failed", "failure_reason": reason, "trace": trace},
    ]
    return sandbox.control(
        "gitlab", "POST", f"/projects/{project_id}/pipelines", json={"ref": ref, "jobs": jobs + (extra_jobs or [])}
    )


def webhook_event(sandbox: Any, pipeline_id: int) -> dict[str, Any]:
    """The triage event the webhook receiver would put in the run's conf for this pipeline."""
    from devops_automation.workflows.ci_failure_triage.webhook import parse_gitlab_hook

    hook = sandbox.control("gitlab", "POST", "/hooks/pipeline", json={"pipeline_id": pipeline_id, "token": "s3cret"})
    return parse_gitlab_hook(hook["headers"].get("X-Gitlab-Event"), hook["body"]).to_event()
