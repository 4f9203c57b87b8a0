"""send_report_email_once: an HTML report with inline cid: images and a text/plain alternative, through the
SMTP provider's hook to a real SMTP server (aiosmtpd, Maildir), sent once; results store on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from devops_automation.notifiers.email import build_report_message, cid_references, send_report_email_once
from devops_automation.store import ResultsStore, schema
from devops_automation.workflows.weekly_report import charts
from include.sandbox.client import free_port

TO = ["team@example.test", "lead@example.test"]
SPARK = charts.sparkline([1.0, 3.0, None, 2.0])
CHART = charts.line_chart("CI success rate", ["W1", "W2"], {"all": [0.5, 0.75]}, y_label="Success rate", unit="%")
IMAGES = {"spark-ci_runs-success_rate.png": SPARK, "chart-success.png": CHART}
HTML = (
    '<html><body><table width="700"><tr><td><h1>Week 47 — CI</h1>'
    '<img src="cid:spark-ci_runs-success_rate.png" width="120" height="28" alt="spark">'
    '<img src="cid:chart-success.png" width="680" height="300" alt="chart">'
    '<img src="cid:chart-success.png" width="680" height="300" alt="again"></td></tr></table></body></html>'
)
TEXT = "Week 47 — CI\n\n- Success rate: 75 % ▲ +25.0 pp\n"


@pytest.fixture
def store(smtp, results_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ResultsStore]:
    url = sa.make_url(results_url)
    if url.get_backend_name() == "sqlite":
        conn = {"conn_type": "sqlite", "host": url.database}
    else:
        conn = {
            "conn_type": "postgres",
            "host": url.host,
            "port": url.port,
            "login": url.username,
            "password": url.password or "",
            "schema": url.database,
        }
    monkeypatch.setenv("AIRFLOW_CONN_DEVOPS_RESULTS_DB", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp.airflow_conn())
    s = ResultsStore(results_url)
    yield s
    s.dispose()


def notifications(store: ResultsStore) -> list[dict[str, Any]]:
    t = schema.notifications
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(t).order_by(t.c.id))]


def raw_messages(smtp) -> list[bytes]:
    return [p.read_bytes() for sub in ("new", "cur") for p in sorted((smtp.maildir / sub).glob("*"))]


def test_the_report_arrives_as_alternative_of_plain_and_related_html_with_every_image(smtp, store, caplog) -> None:
    caplog.set_level(logging.INFO, logger="devops_automation.notifiers.email")
    ref = send_report_email_once("Weekly report 2026-W47", html=HTML, text=TEXT, images=IMAGES, dedup_key="r1", to=TO)
    (msg,) = smtp.messages()
    assert (msg["Message-ID"], msg["Subject"], msg["X-RcptTo"]) == (ref, "Weekly report 2026-W47", ", ".join(TO))
    assert (msg["From"], msg["Auto-Submitted"]) == (smtp.from_email, "auto-generated")
    assert msg.get_content_type() == "multipart/alternative"
    plain, related = msg.get_payload()
    assert plain.get_content_type() == "text/plain"
    assert plain.get_content() == TEXT
    assert related.get_content_type() == "multipart/related"
    html_part, *image_parts = related.get_payload()
    assert html_part.get_content_type() == "text/html"
    assert html_part.get_content() == HTML + "\n"  # a text part ends with a line break
    assert [p.get_content_type() for p in image_parts] == ["image/png", "image/png"]
    by_cid = {p["Content-ID"]: p for p in image_parts}
    assert set(by_cid) == {"<spark-ci_runs-success_rate.png>", "<chart-success.png>"}
    for name, data in IMAGES.items():
        part = by_cid[f"<{name}>"]
        assert part.get_content_disposition() == "inline"
        assert part.get_filename() == name
        assert part.get_content() == data
    # every cid: of the HTML has its part
    assert cid_references(html_part.get_content()) == ["spark-ci_runs-success_rate.png", "chart-success.png"]
    # the size is reported: the message as sent (the sink adds only its envelope headers)
    (size_line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("report e-mail")]
    sent = int(re.search(r": (\d+) bytes \(2 inline images\) to 2 recipient", size_line).group(1))
    (raw,) = raw_messages(smtp)
    assert sent > 4 * (len(SPARK) + len(CHART)) // 3  # base64 of the images
    on_the_wire = len(raw.replace(b"\n", b"\r\n"))  # the Maildir keeps LF line ends
    assert sent <= on_the_wire < sent + 400
    assert max(len(line) for line in raw.splitlines()) <= 78  # 7-bit, short lines
    raw.decode("ascii")
    # once: a re-call sends nothing
    assert (
        send_report_email_once("Weekly report 2026-W47", html=HTML, text=TEXT, images=IMAGES, dedup_key="r1", to=TO)
        is None
    )
    assert len(smtp.messages()) == 1
    (row,) = notifications(store)
    assert (row["dedup_key"], row["channel"], row["status"], row["message_ref"]) == ("r1", "email", "sent", ref)


def test_a_cid_without_its_image_is_refused_before_anything_is_claimed(smtp, store) -> None:
    images = {"spark-ci_runs-success_rate.png": SPARK}
    with pytest.raises(ValueError, match=r"cid: image\(s\) 'chart-success.png' that are not among the images"):
        send_report_email_once("r", html=HTML, text=TEXT, images=images, dedup_key="r2", to=TO)
    assert notifications(store) == []
    assert smtp.messages() == []


def test_subject_text_and_html_are_redacted(smtp, store) -> None:
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    send_report_email_once(
        f"report {token}",
        html=HTML.replace("Week 47", f"Week 47 {token}"),
        text=f"{TEXT}token {token}\n",
        images=IMAGES,
        dedup_key=None,
        to=TO,
    )
    (msg,) = smtp.messages()
    plain, related = msg.get_payload()
    assert token not in msg.as_string()
    assert msg["Subject"].startswith("report [REDACTED:")
    assert "token [REDACTED:" in plain.get_content()
    assert "Week 47 [REDACTED:" in related.get_payload()[0].get_content()
    assert len(related.get_payload()) == 3  # the images are still there
    assert notifications(store) == []


def test_a_failed_send_is_recorded_and_a_later_call_sends_it(smtp, store, monkeypatch) -> None:
    down = json.loads(smtp.airflow_conn())
    down["port"] = free_port()
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(down))
    with pytest.raises(ConnectionRefusedError):
        send_report_email_once("r", html=HTML, text=TEXT, images=IMAGES, dedup_key="r3", to=TO)
    (pending,) = store.pending_notifications("email")
    assert (pending["dedup_key"], pending["status"]) == ("r3", "failed")
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp.airflow_conn())
    ref = send_report_email_once("r", html=HTML, text=TEXT, images=IMAGES, dedup_key="r3", to=TO)
    assert [m["Message-ID"] for m in smtp.messages()] == [ref]
    assert store.pending_notifications() == []


def test_message_checks_name_what_is_wrong() -> None:
    common: dict[str, Any] = {"text": "t", "from_email": "a@x.test", "to": ["b@x.test"], "message_id": "<1@x.test>"}
    with pytest.raises(ValueError, match=r"inline image name 'my chart.png' must match"):
        build_report_message("s", html="", images={"my chart.png": SPARK}, **common)
    with pytest.raises(ValueError, match=r"inline image 'c.png' is not a PNG, JPEG or GIF"):
        build_report_message("s", html="", images={"c.png": b"<svg/>"}, **common)
    with pytest.raises(ValueError, match=r"inline image 'c.png' has no bytes"):
        build_report_message("s", html="", images={"c.png": b""}, **common)
    with pytest.raises(ValueError, match="needs a subject"):
        build_report_message(" ", html="", images={}, **common)
    msg = build_report_message(
        "s",
        html='<img src="cid:a%2Bb.png">',
        images={"a+b.png": SPARK},
        date="Mon, 23 Nov 2026 00:00:00 +0000",
        **common,
    )
    (related,) = [p for p in msg.walk() if p.get_content_type() == "multipart/related"]
    assert related.get_payload()[1]["Content-ID"] == "<a+b.png>"
    assert msg["Date"] == "Mon, 23 Nov 2026 00:00:00 +0000"
