"""``sweep_mailbox`` directly: a fake mailbox (exactly the hook API the sweep uses), real sandbox-built
GitLab e-mails, and the results store on SQLite and PostgreSQL. Table-driven over the kinds of mail."""

from __future__ import annotations

import datetime as dt
import inspect
from typing import Any

import pytest
from fastapi.testclient import TestClient

from devops_automation.hooks.imap import ImapMailboxHook, RawMessage
from devops_automation.store import ResultsStore
from devops_automation.workflows.ci_failure_triage import store as triage
from devops_automation.workflows.ci_failure_triage.intake import SweepResult, sweep_mailbox
from devops_automation.workflows.ci_failure_triage.mail import message_id_of
from include.sandbox.app import create_app
from tests.plugins.devops_automation.workflows.ci_failure_triage.test_mail import CONTROL, HOST, build, edit, message

T0 = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC)
SENDER = f"gitlab@{HOST}"


class FakeMailbox:
    """Stands in for :class:`ImapMailboxHook`: the folder names, the allow-list, and the three calls the
    sweep makes (``fetch_messages``, ``flag``, ``move``), which it records. Anything else is an AttributeError."""

    folder = "INBOX"
    processed_folder = "Processed"
    needs_attention_folder = "needs-attention"

    def __init__(self, raws: list[bytes], allowed_senders: list[str] | None = None) -> None:
        self.allowed_senders = [SENDER] if allowed_senders is None else allowed_senders
        self.messages = [
            RawMessage(uid=str(i), raw=raw, flags=(), size=len(raw)) for i, raw in enumerate(raws, start=101)
        ]
        self.calls: list[tuple[Any, ...]] = []

    def fetch_messages(self, folder: str | None = None, uids: Any = None, limit: int | None = None) -> list[RawMessage]:
        self.calls.append(("fetch", folder, uids, limit))
        return self.messages[:limit] if limit is not None else list(self.messages)

    def flag(self, uids: Any, flags: Any, value: bool = True, *, folder: str | None = None) -> int:
        self.calls.append(("flag", list(uids), list(flags) if not isinstance(flags, str) else flags))
        return len(list(uids))

    def move(self, uids: Any, folder: str, *, source: str | None = None) -> int:
        self.calls.append(("move", list(uids), folder))
        return len(list(uids))


def test_the_fake_matches_the_real_hook() -> None:
    """The fake's methods take the real hook's parameters, and the real hook has the attributes used."""
    for name in ("fetch_messages", "flag", "move"):
        fake = list(inspect.signature(getattr(FakeMailbox, name)).parameters)
        real = list(inspect.signature(getattr(ImapMailboxHook, name)).parameters)
        assert fake == real, name
    for name in ("folder", "processed_folder", "needs_attention_folder", "allowed_senders"):
        assert hasattr(ImapMailboxHook, name), name


@pytest.fixture(scope="module")
def gitlab() -> TestClient:
    return TestClient(create_app(systems=["gitlab"]))


@pytest.fixture(scope="module")
def scenarios(gitlab: TestClient) -> dict[str, dict[str, Any]]:
    return gitlab.get(f"{CONTROL}/scenarios").json()


def mail_of_kind(gitlab: TestClient, scenarios: dict[str, Any], kind: str) -> bytes:
    s = scenarios["pytest"]
    if kind == "failed":
        return build(gitlab, s["pipeline_id"])
    if kind in ("success", "fixed"):
        return build(gitlab, scenarios["pytest"]["good_pipeline_id"], status=kind)
    if kind == "unknown_sender":
        return build(gitlab, s["pipeline_id"], host="evil.test")
    if kind == "spoofed":
        return edit(build(gitlab, s["pipeline_id"]), X_GitLab_Pipeline_Id="1500000001")
    if kind == "not_gitlab":
        return message("Lunch at noon?", subject="Lunch", sender=SENDER, Message_ID="<lunch-1@example.test>")
    if kind == "unparseable":
        return message(
            "\x00\x01 garbage !!!", subject="fast-billing | Failed pipeline for main | 1a2b3c4d", sender=SENDER
        )
    if kind == "garbage":
        return b"\x00\xff\xfe garbage"
    raise AssertionError(kind)


# kind -> intake status, folder recorded, where the sweep puts the message (None = stays), count key
MAIL_TABLE = [
    pytest.param("failed", "accepted", "INBOX", None, "accepted", id="failure-mail"),
    pytest.param("success", "ignored", "Processed", "Processed", "ignored", id="success-mail"),
    pytest.param("fixed", "ignored", "Processed", "Processed", "ignored", id="fixed-mail"),
    pytest.param(
        "unknown_sender",
        "needs_attention",
        "needs-attention",
        "needs-attention",
        "needs_attention",
        id="unknown-sender",
    ),
    pytest.param("spoofed", "needs_attention", "needs-attention", "needs-attention", "needs_attention", id="spoofed"),
    pytest.param(
        "not_gitlab", "needs_attention", "needs-attention", "needs-attention", "needs_attention", id="not-gitlab"
    ),
    pytest.param(
        "unparseable", "needs_attention", "needs-attention", "needs-attention", "needs_attention", id="unparseable"
    ),
    pytest.param(
        "garbage", "needs_attention", "needs-attention", "needs-attention", "needs_attention", id="garbage-bytes"
    ),
]


@pytest.mark.parametrize("kind, status, folder, moved_to, counted", MAIL_TABLE)
def test_one_message_of_each_kind(
    gitlab,
    scenarios,
    results_store: ResultsStore,
    kind: str,
    status: str,
    folder: str,
    moved_to: str | None,
    counted: str,
) -> None:
    raw = mail_of_kind(gitlab, scenarios, kind)
    box = FakeMailbox([raw])
    got = sweep_mailbox(box, results_store, now=T0, limit=50)
    mid = message_id_of(raw)

    assert got.counts == {counted: 1, "seen": 1}
    row = triage.intake_row(results_store, "email", mid)
    assert row is not None
    assert (row["status"], row["folder"], row["size_bytes"], row["received_at"]) == (status, folder, len(raw), T0)

    expected_calls: list[tuple[Any, ...]] = [("fetch", None, None, 50)]
    if moved_to == "Processed":
        expected_calls += [("flag", ["101"], ["\\Seen", "\\Flagged"]), ("move", ["101"], "Processed")]
    elif moved_to == "needs-attention":
        expected_calls += [("move", ["101"], "needs-attention")]
    assert box.calls == expected_calls

    if status == "accepted":
        (ev,) = got.events
        s = scenarios["pytest"]
        assert (ev["source"], ev["message_ids"], ev["uids"]) == ("email", [mid], ["101"])
        assert (ev["project_id"], ev["pipeline_id"], ev["status"]) == (
            str(s["project_id"]),
            str(s["pipeline_id"]),
            "failed",
        )
        assert [j["id"] for j in ev["failed_jobs"]] == [str(i) for i in s["failed_job_ids"]]
        assert (row["sender"], row["reason"]) == (SENDER, None)
    else:
        assert got.events == []
    if status == "needs_attention":
        expected_kind = "unparseable" if kind == "garbage" else kind
        (item,) = got.attention
        assert (item["message_id"], item["kind"], item["folder"]) == (mid, expected_kind, "needs-attention")
        assert row["reason"].startswith(f"{expected_kind}: ")
        assert item["reason"]
        assert item["reason"] in row["reason"]
    else:
        assert got.attention == []
    if status == "ignored":
        assert row["reason"] == f"pipeline status {kind}"


def test_needs_attention_keeps_sender_and_subject(gitlab, scenarios, results_store: ResultsStore) -> None:
    raw = mail_of_kind(gitlab, scenarios, "unknown_sender")
    got = sweep_mailbox(FakeMailbox([raw]), results_store, now=T0)
    (item,) = got.attention
    row = triage.intake_row(results_store, "email", message_id_of(raw))
    assert row is not None
    assert item["sender"] == "gitlab@evil.test"
    assert row["sender"] == "gitlab@evil.test"
    assert item["subject"]
    assert row["subject"] == item["subject"]
    assert "not on the allowed-senders list" in item["reason"]


def test_needs_attention_item_is_redacted(gitlab, scenarios, results_store: ResultsStore) -> None:
    """The item notify reports (an XCom) carries the reason redacted before it is cut, and the subject redacted."""
    token = "glpat-Zq7Xw2Rk9Vb4Tn6Lp3Hs"  # a GitLab personal access token's shape (not a real one)
    bad_status = edit(build(gitlab, scenarios["pytest"]["pipeline_id"]), X_GitLab_Pipeline_Status=f"token={token}")
    lunch = message("Lunch at noon?", subject=f"Lunch token={token}", sender=SENDER, Message_ID="<lunch-2@x.test>")
    got = sweep_mailbox(FakeMailbox([bad_status, lunch]), results_store, now=T0)
    assert [a["kind"] for a in got.attention] == ["unparseable", "not_gitlab"]
    status_item, lunch_item = got.attention
    assert status_item["reason"] == "X-GitLab-Pipeline-Status is not a status word: 'token=[REDACTED:gitlab_token]'"
    assert lunch_item["subject"] == "Lunch token=[REDACTED:gitlab_token]"
    assert token[6:14] not in repr(got.attention)


def test_an_empty_allow_list_accepts_any_sender(gitlab, scenarios, results_store: ResultsStore) -> None:
    raw = mail_of_kind(gitlab, scenarios, "unknown_sender")
    got = sweep_mailbox(FakeMailbox([raw], allowed_senders=[]), results_store, now=T0)
    assert got.counts == {"accepted": 1, "seen": 1}
    assert len(got.events) == 1


def test_an_empty_mailbox_touches_nothing(results_store: ResultsStore) -> None:
    box = FakeMailbox([])
    got = sweep_mailbox(box, results_store, now=T0)
    assert got == SweepResult(events=[], attention=[], counts={"seen": 0})
    assert box.calls == [("fetch", None, None, 200)]  # the default limit


def test_limit_is_passed_to_the_fetch(gitlab, scenarios, results_store: ResultsStore) -> None:
    raws = [mail_of_kind(gitlab, scenarios, "success") for _ in range(3)]
    box = FakeMailbox(raws)
    got = sweep_mailbox(box, results_store, now=T0, limit=2)
    assert box.calls[0] == ("fetch", None, None, 2)
    assert got.counts == {"ignored": 2, "seen": 2}


def test_a_mixed_folder_is_sorted_in_one_pass(gitlab, scenarios, results_store: ResultsStore) -> None:
    kinds = ["failed", "success", "spoofed", "fixed", "garbage", "failed"]
    raws = [mail_of_kind(gitlab, scenarios, k) for k in kinds]
    box = FakeMailbox(raws)
    got = sweep_mailbox(box, results_store, now=T0)
    assert got.counts == {"accepted": 2, "ignored": 2, "needs_attention": 2, "seen": 6}
    assert [e["uids"] for e in got.events] == [["101"], ["106"]]
    assert [a["kind"] for a in got.attention] == ["spoofed", "unparseable"]
    assert box.calls[1:] == [
        ("flag", ["102", "104"], ["\\Seen", "\\Flagged"]),
        ("move", ["102", "104"], "Processed"),
        ("move", ["103", "105"], "needs-attention"),
    ]


# -- the same Message-ID twice, and messages seen by an earlier sweep -------------------------------
@pytest.mark.parametrize(
    "kind, counts, calls",
    [
        pytest.param("failed", {"accepted": 2, "seen": 2}, [], id="failure-twice"),
        pytest.param(
            "success",
            {"ignored": 1, "already_processed": 1, "seen": 2},
            [("flag", ["101", "102"], ["\\Seen", "\\Flagged"]), ("move", ["101", "102"], "Processed")],
            id="success-twice",
        ),
        pytest.param(
            "spoofed",
            {"needs_attention": 2, "seen": 2},
            [("move", ["101", "102"], "needs-attention")],
            id="spoofed-twice",
        ),
    ],
)
def test_duplicate_message_id_in_one_sweep(
    gitlab, scenarios, results_store: ResultsStore, kind: str, counts: dict[str, int], calls: list[tuple[Any, ...]]
) -> None:
    raw = mail_of_kind(gitlab, scenarios, kind)
    box = FakeMailbox([raw, raw])
    got = sweep_mailbox(box, results_store, now=T0)
    assert got.counts == counts
    assert box.calls[1:] == calls
    row = triage.intake_row(results_store, "email", message_id_of(raw))  # one row for the Message-ID
    assert row is not None
    if kind == "failed":  # both copies go to the run (collect merges them by pipeline), each with its uid
        assert [e["uids"] for e in got.events] == [["101"], ["102"]]
        assert {e["pipeline_id"] for e in got.events} == {str(scenarios["pytest"]["pipeline_id"])}
        assert row["status"] == "accepted"
    if kind == "spoofed":  # reported once: the copy is recognised by its Message-ID
        assert len(got.attention) == 1
        assert row["status"] == "needs_attention"


@pytest.mark.parametrize(
    "prior_status, counted, moved_to",
    [
        pytest.param("processed", "already_processed", "Processed", id="processed-before"),
        pytest.param("ignored", "already_processed", "Processed", id="ignored-before"),
        pytest.param("needs_attention", "needs_attention", "needs-attention", id="needs-attention-before"),
    ],
)
def test_a_message_seen_before_is_only_put_where_it_belongs(
    gitlab, scenarios, results_store: ResultsStore, prior_status: str, counted: str, moved_to: str
) -> None:
    raw = mail_of_kind(gitlab, scenarios, "failed")  # a failure mail: were it parsed again, it would become an event
    mid = message_id_of(raw)
    triage.record_intake(
        results_store, {"source": "email", "message_id": mid, "status": prior_status, "reason": "earlier"}, now=T0
    )
    box = FakeMailbox([raw])
    got = sweep_mailbox(box, results_store, now=T0 + dt.timedelta(hours=1))
    assert got.counts == {counted: 1, "seen": 1}
    assert got.events == []
    assert got.attention == []  # reported by the earlier sweep, not again
    expected = [("move", ["101"], moved_to)]
    if moved_to == "Processed":
        expected.insert(0, ("flag", ["101"], ["\\Seen", "\\Flagged"]))
    assert box.calls[1:] == expected
    row = triage.intake_row(results_store, "email", mid)
    assert row is not None
    assert (row["status"], row["reason"], row["received_at"]) == (prior_status, "earlier", T0)


@pytest.mark.parametrize(
    "event_state, accepted_again",
    [
        pytest.param("new", True, id="event-not-done"),
        pytest.param("failed", True, id="event-failed"),
        pytest.param("analysed", False, id="event-analysed"),
        pytest.param("notified", False, id="event-notified"),
        pytest.param("gone", False, id="event-gone"),
    ],
)
def test_an_accepted_message_whose_event_is_done_is_processed(
    gitlab, scenarios, results_store: ResultsStore, event_state: str, accepted_again: bool
) -> None:
    raw = mail_of_kind(gitlab, scenarios, "failed")
    mid = message_id_of(raw)
    first = sweep_mailbox(FakeMailbox([raw]), results_store, now=T0)
    (ev,) = first.events
    event_id, _, _ = triage.claim_event(results_store, ev, run_id="run-1", now=T0)
    triage.record_intake(
        results_store, {"source": "email", "message_id": mid, "status": "accepted", "event_id": event_id}, now=T0
    )
    triage.update_event(results_store, event_id, state=event_state)

    box = FakeMailbox([raw])
    got = sweep_mailbox(box, results_store, now=T0 + dt.timedelta(hours=1))
    row = triage.intake_row(results_store, "email", mid)
    assert row is not None
    assert row["event_id"] == event_id
    if accepted_again:  # the run that claimed it did not finish: the mail goes to this run too
        assert got.counts == {"accepted": 1, "seen": 1}
        assert [e["message_ids"] for e in got.events] == [[mid]]
        assert box.calls[1:] == []
        assert (row["status"], row["folder"]) == ("accepted", "INBOX")
    else:  # analysed already: only its archive step was lost
        assert got.counts == {"already_processed": 1, "seen": 1}
        assert got.events == []
        assert box.calls[1:] == [("flag", ["101"], ["\\Seen", "\\Flagged"]), ("move", ["101"], "Processed")]
        assert (row["status"], row["folder"]) == ("processed", "Processed")


def test_a_message_without_message_id_is_keyed_by_its_hash(gitlab, scenarios, results_store: ResultsStore) -> None:
    raw = edit(mail_of_kind(gitlab, scenarios, "success"), drop=("Message-ID",))
    got = sweep_mailbox(FakeMailbox([raw]), results_store, now=T0)
    mid = message_id_of(raw)
    assert mid.startswith("sha256:")
    assert got.counts == {"ignored": 1, "seen": 1}
    row = triage.intake_row(results_store, "email", mid)
    assert row is not None
    assert row["status"] == "ignored"
    again = FakeMailbox([raw])
    assert sweep_mailbox(again, results_store, now=T0).counts == {"already_processed": 1, "seen": 1}


# -- nothing from the mail is stored raw --------------------------------------------------------------
GLPAT = "glpat-Zq7Xw2Rk9Vb4Tn6Lp3Hs"  # a GitLab personal access token's shape (not a real one)
GHP = "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"  # a GitHub token's shape (not a real one)


def leaked(text: str) -> list[str]:
    """The 8-character pieces of either planted token found in ``text``."""
    return [s[i : i + 8] for s in (GLPAT, GHP) for i in range(len(s) - 7) if s[i : i + 8] in text]


def intake_table(store: ResultsStore) -> list[dict[str, Any]]:
    import sqlalchemy as sa

    from devops_automation.store import schema

    t = schema.intake_messages
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(t).order_by(t.c.id))]


def test_secrets_in_a_mail_never_reach_intake_messages(gitlab, scenarios, results_store: ResultsStore, caplog) -> None:
    """Tokens planted in the Message-ID, the sender, the subject and (through them) the classifier's reason,
    for an accepted, an ignored and three needs-attention mails: none reaches the table, the XComs or the log,
    and the next sweep still knows every message by its (redacted, hashed) Message-ID."""
    good = build(gitlab, scenarios["pytest"]["pipeline_id"])
    raws = {
        "accepted": edit(good, Message_ID=f"<{GLPAT}@gitlab.example.test>"),
        "reply": message("thanks", subject="Re: " + "a" * 60 + " " + GHP, sender=SENDER, Message_ID="<r-1@x.test>"),
        "stranger": edit(good, From=f"GitLab <{GHP}@evil.test>", Message_ID="<s-1@x.test>"),
        "bad_status": edit(good, X_GitLab_Pipeline_Status=f"token={GLPAT}", Message_ID="<b-1@x.test>"),
        "lunch": message("Lunch?", subject=f"Lunch token={GLPAT}", sender=SENDER, Message_ID=f"<{GHP}@x.test>"),
    }
    caplog.set_level("INFO")
    got = sweep_mailbox(FakeMailbox(list(raws.values())), results_store, now=T0)
    assert got.counts == {"accepted": 1, "ignored": 1, "needs_attention": 3, "seen": 5}
    rows = intake_table(results_store)
    assert [(r["status"], (r["reason"] or "").split(":")[0]) for r in rows] == [
        ("accepted", ""),
        ("ignored", "reply"),
        ("needs_attention", "unknown_sender"),
        ("needs_attention", "unparseable"),
        ("needs_attention", "not_gitlab"),
    ]
    assert leaked(repr(rows)) == []
    assert leaked(repr(got.attention)) == []
    assert leaked(repr([e["message_ids"] for e in got.events])) == []
    assert leaked(caplog.text) == []
    accepted, reply, stranger, bad_status, lunch = rows
    assert accepted["message_id"] == triage.intake_key(message_id_of(raws["accepted"]))
    assert accepted["message_id"].startswith("[REDACTED:gitlab_token]@gitlab.example.test#sha256:")
    assert got.events[0]["message_ids"] == [accepted["message_id"]]
    assert reply["reason"].endswith(f"the subject 'Re: {'a' * 60} [REDACTED:githu' is a reply")  # cut at 80
    assert reply["subject"] == f"Re: {'a' * 60} [REDACTED:github_token]"
    assert stranger["sender"] == "[REDACTED:github_token]@evil.test"
    assert (
        stranger["reason"]
        == "unknown_sender: sender '[REDACTED:github_token]@evil.test' is not on the allowed-senders list"
    )
    assert bad_status["reason"].endswith("'token=[REDACTED:gitlab_token]'")
    assert lunch["subject"] == "Lunch token=[REDACTED:gitlab_token]"
    assert [a["message_id"] for a in got.attention] == [r["message_id"] for r in (stranger, bad_status, lunch)]

    again = sweep_mailbox(FakeMailbox(list(raws.values())), results_store, now=T0 + dt.timedelta(hours=1))
    assert again.counts == {"accepted": 1, "already_processed": 1, "needs_attention": 3, "seen": 5}
    assert again.attention == []  # reported once: known by the same key
    assert len(intake_table(results_store)) == 5
